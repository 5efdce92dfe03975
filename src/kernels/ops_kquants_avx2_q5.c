/*
 * Q5_K's dots (ops_kquants.h) on 256-bit vectors, as ops_kquants_avx2.c's
 * Q4_K: each run of 32 values is its nibbles with the fifth bit from qh
 * added as 16 (0-31, unsigned for maddubs, whose pair sums stay inside
 * int16 against |x| <= 127), times the activations, madd'd by the
 * sub-block's scale into eight exact int32 lanes; the min term the mins
 * times the activations' sums of 16, an integer, subtracted in float. A
 * (row, input) pair's steps do not depend on the rows or inputs beside
 * it, so four rows or two inputs give the bits of one.
 */
#include <stddef.h>

#include "ops_kquants.h"

#if defined(__x86_64__) || defined(__i386__)

#include "ops_avx2_util.h"
#include "ops_kquants_avx2.h"

#define FN L2_TARGET(L2_AVX2)

/* A Q5_K block against one input (q4_K_lanes with its fifth bits). */
INLINE __m256i q5_K_block(const l2_block_q5_K *w, const l2_block_q8_K *x, __m128i *mins) {
    return q4_K_lanes(w->scales, w->qs, w->qh, x, mins);
}

ROWS_WITH_MINS(rows_q5_K, l2_block_q5_K, q5_K_block)

FN float l2_dot_q5_K_avx2(const l2_block_q5_K *w, const l2_block_q8_K *x, int n_blocks) {
    float out;
    rows_q5_K(&out, w, 0, x, 0, n_blocks, 1, 1);
    return out;
}

FN void l2_dot4_q5_K_avx2(float out[4], const l2_block_q5_K *w, size_t row_blocks, const l2_block_q8_K *x,
                          int n_blocks) {
    rows_q5_K(out, w, row_blocks, x, 0, n_blocks, 4, 1);
}

FN void l2_dot4x2_q5_K_avx2(float out[8], const l2_block_q5_K *w, size_t row_blocks, const l2_block_q8_K *x,
                            size_t x_stride, int n_blocks) {
    rows_q5_K(out, w, row_blocks, x, x_stride, n_blocks, 4, 2);
}

#endif
