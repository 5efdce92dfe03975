/* Pieces of the K-quant kernels on 256-bit vectors shared by their files
 * (ops_kquants_avx2.c, ops_kquants_avx2_q5.c). Included after ops_x86.h. */
#ifndef LLAMA2_OPS_KQUANTS_AVX2_H
#define LLAMA2_OPS_KQUANTS_AVX2_H

#include <stdint.h>
#include <string.h>

#include "ops_blocks.h"
#include "ops_isa.h"
#include "ops_kquants.h"
#include "ops_x86.h"

#define INLINE L2_INLINE(L2_AVX2)
/* Loops over constant counts (rows, inputs, a block's parts) unrolled, so
 * that the accumulators stay in registers and the masks are constants. */
#define PRAGMA(x) _Pragma(#x)
#define UNROLL(n) PRAGMA(GCC unroll n)

INLINE __m256i load32(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }

/* fp16 bits to fp32, the bits of l2_f16_to_f32 (as ops_blocks_avx2.c's
 * vector form): the magnitude's bits moved to fp32's places and scaled by
 * 2^112 (exact, subnormals included), infinities and NaNs rebuilt. */
INLINE float half_to_float(uint16_t h) {
    const uint32_t magnitude = h & 0x7FFFu, sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t bits;
    float f;
    if (magnitude > 0x7BFFu) {
        bits = 0x7F800000u | (magnitude & 0x3FFu) << 13;
    } else {
        bits = magnitude << 13;
        memcpy(&f, &bits, sizeof f);
        f *= 0x1p112f;
        memcpy(&bits, &f, sizeof bits);
    }
    bits |= sign;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* A Q4_K block's eight 6-bit scales (bytes 0-7) and mins (bytes 8-15):
 * with the 12 bytes as words a, b, c, sub-blocks 0-3 are the low 6 bits
 * of a's bytes (scales) and b's (mins); 4-7 are c's low (scales) and high
 * (mins) nibbles, under the top 2 bits of a's (b's) bytes. */
INLINE __m128i q4_K_scales_mins(const uint8_t packed[12]) {
    uint32_t a, b, c;
    memcpy(&a, packed, 4);
    memcpy(&b, packed + 4, 4);
    memcpy(&c, packed + 8, 4);
    const uint32_t low6 = 0x3F3F3F3Fu, nibbles = 0x0F0F0F0Fu, top2 = 0x30303030u;
    return _mm_setr_epi32((int)(a & low6), (int)((c & nibbles) | ((a >> 2) & top2)), (int)(b & low6),
                          (int)(((c >> 4) & nibbles) | ((b >> 2) & top2)));
}

/* The min term of a Q4_K or Q5_K block (scales_mins as above): four int32
 * lanes summing to the sum of min_j times the activations' sum over
 * sub-block j (bsums 2j and 2j + 1). */
INLINE __m128i k_min_sums(__m128i scales_mins, const l2_block_q8_K *x) {
    const __m128i pair_sums = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)(const void *)x->bsums),
                                             _mm_loadu_si128((const __m128i *)(const void *)(x->bsums + 8)));
    return _mm_madd_epi16(_mm_cvtepu8_epi16(_mm_srli_si128(scales_mins, 8)), pair_sums);
}

/* Byte-shuffle masks putting 16-bit lane j of a 128-bit half in all eight
 * lanes of that half. */
#define LANE16(j) _mm256_set1_epi16((short)(0x0100 + 0x0202 * (j)))

/* Bit j of each byte of qh moved to bit 4 (16 or 0): Q5_K's fifth bits
 * of sub-block j, for the run of 32 values whose nibbles they complete. */
INLINE __m256i fifth_bits(__m256i qh, int j) {
    const __m256i bit4 = _mm256_set1_epi8(0x10);
    if (j <= 4) return _mm256_and_si256(_mm256_slli_epi16(qh, 4 - j), bit4);
    return _mm256_and_si256(_mm256_srli_epi16(qh, j - 4), bit4);
}

/* A Q4_K block (qh NULL) or Q5_K block (qh its fifth bits) against one
 * input: the sum over sub-blocks j of scale_j times the products of its
 * 32 values (0-15, or 0-31 with the fifth bit), in eight int32 lanes;
 * *mins four int32 lanes summing to the min term. Inline, so that Q4_K's
 * NULL folds; each kind's values written whole in its branch, so that
 * each compiles to its own former loop's instructions. */
INLINE __m256i q4_K_lanes(const uint8_t scales_mins[12], const uint8_t *qs, const uint8_t *qh,
                          const l2_block_q8_K *x, __m128i *mins) {
    const __m128i sm = q4_K_scales_mins(scales_mins);
    *mins = k_min_sums(sm, x);
    const __m128i scales16 = _mm_cvtepu8_epi16(sm);
    const __m256i scales = _mm256_set_m128i(scales16, scales16);
    const __m256i nibble = _mm256_set1_epi8(0x0F), fifth = qh ? load32(qh) : _mm256_setzero_si256();
    __m256i acc = _mm256_setzero_si256();
    UNROLL(4) for (int k = 0; k < 4; k++) {
        const __m256i q = load32(qs + 32 * k);
        const __m256i lo = qh ? _mm256_or_si256(_mm256_and_si256(q, nibble), fifth_bits(fifth, 2 * k))
                              : _mm256_and_si256(q, nibble);
        const __m256i hi = qh ? _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), nibble),
                                                fifth_bits(fifth, 2 * k + 1))
                              : _mm256_and_si256(_mm256_srli_epi16(q, 4), nibble);
        const __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, load32(x->qs + 64 * k)),
                                             _mm256_shuffle_epi8(scales, LANE16(2 * k)));
        const __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, load32(x->qs + 64 * k + 32)),
                                             _mm256_shuffle_epi8(scales, LANE16(2 * k + 1)));
        acc = _mm256_add_epi32(acc, _mm256_add_epi32(p0, p1));
    }
    return acc;
}

/* The row-by-row kernels read a few kilobytes of consecutive rows a call,
 * too short a stream for the hardware prefetchers to run ahead of: each
 * block asks for its bytes L2_PANEL_PREFETCH ahead (the rows after the
 * call's) into L2, a line for every 64 of the block's bytes. */
INLINE void prefetch_block_ahead(const void *block, size_t bytes) {
    for (size_t at = 0; at < bytes; at += 64)
        _mm_prefetch((const char *)block + L2_PANEL_PREFETCH + at, L2_PANEL_PREFETCH_HINT);
}

/* ROWS_WITH_MINS(name, block_t, block_dot) defines name: `rows` (1 or 4)
 * weight rows of a K-quant with d, dmin and a min term (Q4_K, Q5_K)
 * against `inputs` (1 or 2) inputs, block by block; out[4 * i + r] for
 * row r, input i. block_dot(w, x, &mins) gives a block's eight int32
 * lanes and its four of the min term. A macro, so that each kind's block
 * step is inlined into its own loop. Expanded after ops_avx2_util.h. */
#define ROWS_WITH_MINS(name, block_t, block_dot)                                                                       \
    INLINE void name(float *out, const block_t *w, size_t row_blocks, const l2_block_q8_K *x, size_t x_stride,       \
                     int n_blocks, int rows, int inputs) {                                                             \
        __m256 acc[2][4];                                                                                              \
        __m128 mins[2][4];                                                                                             \
        for (int i = 0; i < inputs; i++)                                                                               \
            for (int r = 0; r < rows; r++) {                                                                           \
                acc[i][r] = _mm256_setzero_ps();                                                                       \
                mins[i][r] = _mm_setzero_ps();                                                                         \
            }                                                                                                          \
        for (int b = 0; b < n_blocks; b++)                                                                             \
            UNROLL(2) for (int i = 0; i < inputs; i++) {                                                               \
                const l2_block_q8_K *xb = x + (size_t)i * x_stride + b;                                                \
                UNROLL(4) for (int r = 0; r < rows; r++) {                                                             \
                    const block_t *wb = w + (size_t)r * row_blocks + b;                                                \
                    if (i == 0) prefetch_block_ahead(wb, sizeof *wb);                                                  \
                    __m128i m;                                                                                         \
                    const __m256i isum = block_dot(wb, xb, &m);                                                        \
                    const float d = half_to_float(wb->d) * xb->d, dmin = half_to_float(wb->dmin) * xb->d;             \
                    acc[i][r] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(isum), acc[i][r]);               \
                    mins[i][r] = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(m), mins[i][r]);                      \
                }                                                                                                      \
            }                                                                                                          \
        for (int i = 0; i < inputs; i++)                                                                               \
            for (int r = 0; r < rows; r++) {                                                                           \
                __m128 s = _mm_add_ps(mins[i][r], _mm_movehl_ps(mins[i][r], mins[i][r]));                              \
                s = _mm_add_ss(s, _mm_movehdup_ps(s));                                                                 \
                out[4 * i + r] = hsum8(acc[i][r]) - _mm_cvtss_f32(s);                                                  \
            }                                                                                                          \
    }

#endif
