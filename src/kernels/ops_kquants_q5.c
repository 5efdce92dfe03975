/* The scalar reference of Q5_K's dots (ops_kquants.h), as the reference's
 * Q4_K dot (ops_kquants_ref.c) with a fifth bit: each block's products,
 * times their sub-block's scale, summed exactly into eight int32 lanes
 * (value i into lane i % 8); each lane times the block's scale product
 * added into its float lane; the min term, an exact integer sum of bsums
 * times mins, subtracted from a float sum block by block; the eight lanes
 * added to it in order at the end, as ggml's generic dot does. */
#include "model/float16.h"
#include "ops_kquants.h"

/* Value i (0-255) of a Q5_K block, 0-31. */
static int q5_K_value(const l2_block_q5_K *w, int i) {
    const uint8_t byte = w->qs[(i / 64) * 32 + i % 32];
    const int low = (i / 32) % 2 ? byte >> 4 : byte & 0x0F;
    return low | ((w->qh[i % 32] >> (i / 32)) & 1) << 4;
}

float l2_dot_q5_K_ref(const l2_block_q5_K *w, const l2_block_q8_K *x, int n_blocks) {
    float lanes[8] = {0}, sum = 0.0f;
    for (int b = 0; b < n_blocks; b++) {
        int32_t isum[8] = {0}, mins = 0;
        for (int j = 0; j < 8; j++) {
            int scale, min;
            l2_q4_K_scale_min(w[b].scales, j, &scale, &min);
            mins += min * (x[b].bsums[2 * j] + x[b].bsums[2 * j + 1]);
            for (int i = 32 * j; i < 32 * j + 32; i++) isum[i % 8] += scale * (q5_K_value(&w[b], i) * x[b].qs[i]);
        }
        const float d = l2_f16_to_f32(w[b].d) * x[b].d, dmin = l2_f16_to_f32(w[b].dmin) * x[b].d;
        for (int l = 0; l < 8; l++) lanes[l] += d * (float)isum[l];
        sum -= dmin * (float)mins;
    }
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
