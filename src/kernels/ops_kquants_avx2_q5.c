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

/* Bit j of each byte of qh moved to bit 4 (16 or 0): sub-block j's fifth
 * bits, for the run of 32 values whose nibbles they complete. */
INLINE __m256i fifth_bits(__m256i qh, int j) {
    const __m256i bit4 = _mm256_set1_epi8(0x10);
    if (j <= 4) return _mm256_and_si256(_mm256_slli_epi16(qh, 4 - j), bit4);
    return _mm256_and_si256(_mm256_srli_epi16(qh, j - 4), bit4);
}

/* A Q5_K block against one input: the sum over sub-blocks j of scale_j
 * times the products of its 32 values, in eight int32 lanes; *mins four
 * int32 lanes summing to the min term. */
INLINE __m256i q5_K_block(const l2_block_q5_K *w, const l2_block_q8_K *x, __m128i *mins) {
    const __m128i sm = q4_K_scales_mins(w->scales);
    *mins = k_min_sums(sm, x);
    const __m128i scales16 = _mm_cvtepu8_epi16(sm);
    const __m256i scales = _mm256_set_m128i(scales16, scales16);
    const __m256i nibble = _mm256_set1_epi8(0x0F), qh = load32(w->qh);
    __m256i acc = _mm256_setzero_si256();
    UNROLL(4) for (int k = 0; k < 4; k++) {
        const __m256i q = load32(w->qs + 32 * k);
        const __m256i lo = _mm256_or_si256(_mm256_and_si256(q, nibble), fifth_bits(qh, 2 * k));
        const __m256i hi =
            _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), nibble), fifth_bits(qh, 2 * k + 1));
        const __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, load32(x->qs + 64 * k)),
                                             _mm256_shuffle_epi8(scales, LANE16(2 * k)));
        const __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, load32(x->qs + 64 * k + 32)),
                                             _mm256_shuffle_epi8(scales, LANE16(2 * k + 1)));
        acc = _mm256_add_epi32(acc, _mm256_add_epi32(p0, p1));
    }
    return acc;
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
