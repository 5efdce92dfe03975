/* The scalar reference of Q5_K's dots (ops_kquants.h), as the reference's
 * Q4_K dot (ops_kquants_ref.c) with a fifth bit: each block's products,
 * times their sub-block's scale, summed exactly into eight int32 lanes
 * (value i into lane i % 8); each lane times the block's scale product
 * added into its float lane; the min term, an exact integer sum of bsums
 * times mins, subtracted from a float sum block by block; the eight lanes
 * added to it in order at the end, as ggml's generic dot does. */
#include "ops_kquants.h"

float l2_dot_q5_K_ref(const l2_block_q5_K *w, const l2_block_q8_K *x, int n_blocks) {
    float lanes[8] = {0}, sum = 0.0f;
    for (int b = 0; b < n_blocks; b++)
        l2_q4_K_block_ref(lanes, &sum, w[b].d, w[b].dmin, w[b].scales, w[b].qs, w[b].qh, &x[b]);
    for (int l = 0; l < 8; l++) sum += lanes[l];
    return sum;
}

void l2_dot4_q5_K_ref(float out[4], const l2_block_q5_K *w, size_t row_blocks, const l2_block_q8_K *x, int n_blocks) {
    for (size_t r = 0; r < 4; r++) out[r] = l2_dot_q5_K_ref(w + r * row_blocks, x, n_blocks);
}

void l2_dot4x2_q5_K_ref(float out[8], const l2_block_q5_K *w, size_t row_blocks, const l2_block_q8_K *x,
                        size_t x_stride, int n_blocks) {
    for (size_t i = 0; i < 2; i++) l2_dot4_q5_K_ref(out + 4 * i, w, row_blocks, x + i * x_stride, n_blocks);
}
