/*
 * The K-quant kernels (ops_kquants.h) on 256-bit vectors. The quantizer is
 * the reference's. A block's integer sum against one input is built in
 * eight int32 lanes, exactly: maddubs multiplies the unsigned stored
 * values (Q4_K 0-15, Q6_K 0-63) by the signed activations (|x| <= 127, so
 * its pair sums stay far inside int16), madd by the sub-block's scale
 * widens to int32. Q6_K's stored offset of 32 comes off once per block as
 * 32 times the scales times the activations' sums of 16 (bsums); Q4_K's
 * min term is the mins times those sums, an integer, subtracted in float.
 * Each block's lanes are converted to float and FMA'd by the block's
 * scale product into a float vector per (row, input), summed once at the
 * end. The steps of a (row, input) pair do not depend on how many rows or
 * inputs run beside it, so four rows or two inputs give the bits of one.
 */
#include <stddef.h>
#include <string.h>

#include "ops_kquants.h"

#if defined(__x86_64__) || defined(__i386__)

#include "model/float16.h"
#include "ops_avx2_util.h"
#include "ops_isa.h"
#include "ops_x86.h"
#include "ops_kquants_avx2.h"

#define FN L2_TARGET(L2_AVX2)

/* A Q4_K block against one input (q4_K_lanes). */
INLINE __m256i q4_K_block(const l2_block_q4_K *w, const l2_block_q8_K *x, __m128i *mins) {
    return q4_K_lanes(w->scales, w->qs, NULL, x, mins);
}

/* A Q6_K block against one input: sum over groups g of 16 of scale_g
 * times the products of its values less 32, in eight int32 lanes. */
INLINE __m256i q6_K_block(const l2_block_q6_K *w, const l2_block_q8_K *x) {
    const __m256i nibble = _mm256_set1_epi8(0x0F), top = _mm256_set1_epi8(0x30);
    const __m128i scales8 = _mm_loadu_si128((const __m128i *)(const void *)w->scales);
    __m256i acc = _mm256_setzero_si256();
    UNROLL(2) for (int h = 0; h < 2; h++) {
        const __m256i ql0 = load32(w->ql + 64 * h), ql1 = load32(w->ql + 64 * h + 32), qh = load32(w->qh + 32 * h);
        /* The four runs of 32 values: low 4 bits from a nibble of ql0 or
         * ql1, high 2 from bits 2k of qh moved to bits 4-5. */
        const __m256i q[4] = {
            _mm256_or_si256(_mm256_and_si256(ql0, nibble), _mm256_and_si256(_mm256_slli_epi16(qh, 4), top)),
            _mm256_or_si256(_mm256_and_si256(ql1, nibble), _mm256_and_si256(_mm256_slli_epi16(qh, 2), top)),
            _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), nibble), _mm256_and_si256(qh, top)),
            _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), nibble),
                            _mm256_and_si256(_mm256_srli_epi16(qh, 2), top)),
        };
        UNROLL(4) for (int k = 0; k < 4; k++) {
            const int g = 8 * h + 2 * k; /* values 16g .. 16g + 32 */
            /* scale g in the low eight 16-bit lanes, g + 1 in the high. */
            const __m256i sc = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(
                scales8, _mm_set_epi64x((long long)(0x0101010101010101ull * (unsigned)(g + 1)),
                                        (long long)(0x0101010101010101ull * (unsigned)g))));
            const __m256i p = _mm256_maddubs_epi16(q[k], load32(x->qs + 128 * h + 32 * k));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, sc));
        }
    }
    /* The offset: 32 times the sum of scale_g times the values' sum. */
    const __m256i offset = _mm256_madd_epi16(load32(x->bsums), _mm256_cvtepi8_epi16(scales8));
    return _mm256_sub_epi32(acc, _mm256_slli_epi32(offset, 5));
}

ROWS_WITH_MINS(rows_q4_K, l2_block_q4_K, q4_K_block)

/* `rows` (1 or 4) weight rows against `inputs` (1 or 2) inputs, block by
 * block; out[4 * i + r] for row r, input i. */
INLINE void rows_q6_K(float *out, const l2_block_q6_K *w, size_t row_blocks, const l2_block_q8_K *x,
                      size_t x_stride, int n_blocks, int rows, int inputs) {
    __m256 acc[2][4];
    for (int i = 0; i < inputs; i++)
        for (int r = 0; r < rows; r++) acc[i][r] = _mm256_setzero_ps();
    for (int b = 0; b < n_blocks; b++)
        UNROLL(2) for (int i = 0; i < inputs; i++) {
            const l2_block_q8_K *xb = x + (size_t)i * x_stride + b;
            UNROLL(4) for (int r = 0; r < rows; r++) {
                const l2_block_q6_K *wb = w + (size_t)r * row_blocks + b;
                if (i == 0) prefetch_block_ahead(wb, sizeof *wb);
                const float d = half_to_float(wb->d) * xb->d;
                acc[i][r] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(q6_K_block(wb, xb)), acc[i][r]);
            }
        }
    for (int i = 0; i < inputs; i++)
        for (int r = 0; r < rows; r++) out[4 * i + r] = hsum8(acc[i][r]);
}

FN static float dot_q4_K_avx2(const l2_block_q4_K *w, const l2_block_q8_K *x, int n_blocks) {
    float out;
    rows_q4_K(&out, w, 0, x, 0, n_blocks, 1, 1);
    return out;
}

FN static float dot_q6_K_avx2(const l2_block_q6_K *w, const l2_block_q8_K *x, int n_blocks) {
    float out;
    rows_q6_K(&out, w, 0, x, 0, n_blocks, 1, 1);
    return out;
}

FN static void dot4_q4_K_avx2(float out[4], const l2_block_q4_K *w, size_t row_blocks, const l2_block_q8_K *x,
                              int n_blocks) {
    rows_q4_K(out, w, row_blocks, x, 0, n_blocks, 4, 1);
}

FN static void dot4_q6_K_avx2(float out[4], const l2_block_q6_K *w, size_t row_blocks, const l2_block_q8_K *x,
                              int n_blocks) {
    rows_q6_K(out, w, row_blocks, x, 0, n_blocks, 4, 1);
}

FN static void dot4x2_q4_K_avx2(float out[8], const l2_block_q4_K *w, size_t row_blocks, const l2_block_q8_K *x,
                                size_t x_stride, int n_blocks) {
    rows_q4_K(out, w, row_blocks, x, x_stride, n_blocks, 4, 2);
}

FN static void dot4x2_q6_K_avx2(float out[8], const l2_block_q6_K *w, size_t row_blocks, const l2_block_q8_K *x,
                                size_t x_stride, int n_blocks) {
    rows_q6_K(out, w, row_blocks, x, x_stride, n_blocks, 4, 2);
}

/* AVX2's entries, under a level's name and with its Q4_K and Q6_K panel
 * kernels. */
#define KQUANT_TABLE(level, q4_K, q6_K)                                                                                    \
    {.name = level,                                                                                                    \
     .quantize_q8_K = l2_quantize_q8_K_ref,                                                                            \
     .dot_q4_K = dot_q4_K_avx2,                                                                                        \
     .dot_q6_K = dot_q6_K_avx2,                                                                                        \
     .dot4_q4_K = dot4_q4_K_avx2,                                                                                      \
     .dot4_q6_K = dot4_q6_K_avx2,                                                                                      \
     .dot4x2_q4_K = dot4x2_q4_K_avx2,                                                                                  \
     .dot4x2_q6_K = dot4x2_q6_K_avx2,                                                                                  \
     .q4_K_panels = q4_K,                                                                                              \
     .q6_K_panels = q6_K,                                                                                              \
     .dot_q5_K = l2_dot_q5_K_avx2,                                                                                     \
     .dot4_q5_K = l2_dot4_q5_K_avx2,                                                                                   \
     .dot4x2_q5_K = l2_dot4x2_q5_K_avx2}

const l2_kquant_kernels *l2_kquant_kernels_avx2(void) {
    static const l2_kquant_kernels table = KQUANT_TABLE("avx2", l2_q4_K_panels_avx2, l2_q6_K_panels_avx2);
    return l2_x86_features_read().avx2 ? &table : NULL;
}

const l2_kquant_kernels *l2_kquant_kernels_avx512_vnni(void) {
    static const l2_kquant_kernels table = KQUANT_TABLE("avx512-vnni", l2_q4_K_panels_avx512_vnni, l2_q6_K_panels_avx512_vnni);
    return l2_x86_features_read().avx512_vnni ? &table : NULL;
}

#else

const l2_kquant_kernels *l2_kquant_kernels_avx2(void) { return NULL; }
const l2_kquant_kernels *l2_kquant_kernels_avx512_vnni(void) { return NULL; }

#endif
