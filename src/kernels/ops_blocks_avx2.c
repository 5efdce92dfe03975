/*
 * The block kernels (ops_blocks.h) on 256-bit vectors, the reference's bits:
 * a block's integer sum is exact in any order (|w| <= 128 and activations
 * within [-127, 127], so maddubs's pair sums never saturate), and the float
 * steps are the reference's, block after block (eight blocks' sums and
 * products at once, then their additions in order).
 */
#include <math.h>
#include <stddef.h>

#include "ops.h"
#include "ops_blocks.h"

#if defined(__x86_64__) || defined(__i386__)

#include "model/float16.h"
#include "ops_isa.h"
#include "ops_x86.h"

#define FN L2_TARGET(L2_AVX2)
#define INLINE L2_INLINE(L2_AVX2)

/* The sum of the 8 int32 lanes. */
INLINE int hsum_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

/* The sum of the products of 32 signed bytes w and x. */
INLINE int block_dot(__m256i w, __m256i x) {
    const __m256i products = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
    return hsum_i32(_mm256_madd_epi16(products, _mm256_set1_epi16(1)));
}

FN static void quantize_q8_0_avx2(l2_block_q8_0 *y, const float *x, int n) {
    const __m256 sign = _mm256_set1_ps(-0.0f), half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f);
    const __m256 hi = _mm256_set1_ps(127.0f), lo = _mm256_set1_ps(-127.0f);
    for (int b = 0; b < n / L2_BLOCK; b++) {
        const float *v = x + (size_t)b * L2_BLOCK;
        /* max of |x|; a NaN lane keeps the running maximum (as the
         * reference's comparison skips it). */
        __m256 m = _mm256_setzero_ps();
        for (int j = 0; j < L2_BLOCK; j += 8) m = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(v + j)), m);
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 1));
        const float amax = _mm_cvtss_f32(m4), d = amax / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        if (!isfinite(id)) id = 0.0f;
        y[b].d = l2_f32_to_f16(d);
        const __m256 vid = _mm256_set1_ps(id);
        for (int j = 0; j < L2_BLOCK; j += 8) {
            const __m256 p = _mm256_mul_ps(_mm256_loadu_ps(v + j), vid);
            /* roundf: the truncation, plus one away from zero where the
             * dropped part is at least a half (exact: p - t is). */
            const __m256 t = _mm256_round_ps(p, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
            const __m256 away = _mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_sub_ps(p, t)), half, _CMP_GE_OQ);
            __m256 r = _mm256_add_ps(t, _mm256_and_ps(away, _mm256_or_ps(_mm256_and_ps(p, sign), one)));
            r = _mm256_and_ps(r, _mm256_cmp_ps(p, p, _CMP_ORD_Q)); /* NaN: 0 */
            r = _mm256_min_ps(_mm256_max_ps(r, lo), hi);
            const __m256i q32 = _mm256_cvtps_epi32(r);
            const __m128i q16 = _mm_packs_epi32(_mm256_castsi256_si128(q32), _mm256_extracti128_si256(q32, 1));
            _mm_storel_epi64((__m128i *)(void *)(y[b].qs + j), _mm_packs_epi16(q16, q16));
        }
    }
}

/* Eight fp16 scales to fp32, the bits of l2_f16_to_f32: the magnitude's
 * bits moved to fp32's places and scaled by 2^112 (exact, subnormals
 * included), infinities and NaNs rebuilt, the sign put back. */
INLINE __m256 f16_to_f32_8(__m128i h) {
    const __m256i v = _mm256_cvtepu16_epi32(h);
    const __m256i magnitude = _mm256_and_si256(v, _mm256_set1_epi32(0x7FFF));
    const __m256i sign = _mm256_slli_epi32(_mm256_and_si256(v, _mm256_set1_epi32(0x8000)), 16);
    const __m256 finite = _mm256_mul_ps(_mm256_castsi256_ps(_mm256_slli_epi32(magnitude, 13)),
                                        _mm256_castsi256_ps(_mm256_set1_epi32((127 + 112) << 23)));
    const __m256i special = _mm256_or_si256(_mm256_set1_epi32(0x7F800000),
                                            _mm256_slli_epi32(_mm256_and_si256(v, _mm256_set1_epi32(0x3FF)), 13));
    const __m256i is_special = _mm256_cmpgt_epi32(magnitude, _mm256_set1_epi32(0x7BFF));
    const __m256i bits = _mm256_blendv_epi8(_mm256_castps_si256(finite), special, is_special);
    return _mm256_castsi256_ps(_mm256_or_si256(bits, sign));
}

/* Eight blocks' int32 partial sums (8 lanes each) into their eight sums. */
INLINE __m256i sums_of_8(const __m256i p[8]) {
    const __m256i a = _mm256_hadd_epi32(_mm256_hadd_epi32(p[0], p[1]), _mm256_hadd_epi32(p[2], p[3]));
    const __m256i b = _mm256_hadd_epi32(_mm256_hadd_epi32(p[4], p[5]), _mm256_hadd_epi32(p[6], p[7]));
    return _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20), _mm256_permute2x128_si256(a, b, 0x31));
}

/* sum += (float)isum * (dw * dx) for eight blocks, in block order: the
 * products in a vector (the same roundings), the additions one by one.
 * The scales come as eight 16-bit lanes, built in registers (a vector load
 * of eight just-stored scalars would stall on store forwarding). */
INLINE float add_8(float sum, const __m256i p[8], __m128i dw, __m128i dx) {
    float terms[8];
    _mm256_storeu_ps(terms, _mm256_mul_ps(_mm256_cvtepi32_ps(sums_of_8(p)),
                                          _mm256_mul_ps(f16_to_f32_8(dw), f16_to_f32_8(dx))));
    for (int j = 0; j < 8; j++) sum += terms[j];
    return sum;
}

/* The int32 partial sums of a block of 32 signed bytes w and x. */
INLINE __m256i block_partial(__m256i w, __m256i x) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w)),
                             _mm256_set1_epi16(1));
}

INLINE __m256i q4_values(const l2_block_q4_0 *w) {
    const __m128i packed = _mm_loadu_si128((const __m128i *)(const void *)w->qs);
    /* Values 0-15 from the low nibbles, 16-31 from the high ones. */
    const __m256i both = _mm256_set_m128i(_mm_srli_epi16(packed, 4), packed);
    return _mm256_sub_epi8(_mm256_and_si256(both, _mm256_set1_epi8(0x0F)), _mm256_set1_epi8(8));
}

INLINE __m256i q8_values(const l2_block_q8_0 *b) { return _mm256_loadu_si256((const __m256i *)(const void *)b->qs); }

/* The scales of blocks p[0..8) as eight 16-bit lanes. */
#define SCALES_8(p)                                                                                               \
    _mm_setr_epi16((short)(p)[0].d, (short)(p)[1].d, (short)(p)[2].d, (short)(p)[3].d, (short)(p)[4].d,           \
                   (short)(p)[5].d, (short)(p)[6].d, (short)(p)[7].d)

FN static float dot_q8_0_avx2(const l2_block_q8_0 *w, const l2_block_q8_0 *x, int n_blocks) {
    float sum = 0.0f;
    int b = 0;
    for (; b + 8 <= n_blocks; b += 8) {
        __m256i p[8];
        for (int j = 0; j < 8; j++) p[j] = block_partial(q8_values(&w[b + j]), q8_values(&x[b + j]));
        sum = add_8(sum, p, SCALES_8(w + b), SCALES_8(x + b));
    }
    for (; b < n_blocks; b++) {
        const int isum = block_dot(q8_values(&w[b]), q8_values(&x[b]));
        sum += (float)isum * (l2_f16_to_f32(w[b].d) * l2_f16_to_f32(x[b].d));
    }
    return sum;
}

FN static float dot_q4_0_avx2(const l2_block_q4_0 *w, const l2_block_q8_0 *x, int n_blocks) {
    float sum = 0.0f;
    int b = 0;
    for (; b + 8 <= n_blocks; b += 8) {
        __m256i p[8];
        for (int j = 0; j < 8; j++) p[j] = block_partial(q4_values(&w[b + j]), q8_values(&x[b + j]));
        sum = add_8(sum, p, SCALES_8(w + b), SCALES_8(x + b));
    }
    for (; b < n_blocks; b++) {
        const int isum = block_dot(q4_values(&w[b]), q8_values(&x[b]));
        sum += (float)isum * (l2_f16_to_f32(w[b].d) * l2_f16_to_f32(x[b].d));
    }
    return sum;
}

/* Four rows against one input: the input's values and scales are loaded
 * once for the four, and the four rows' additions are independent chains
 * (each still in block order). */
#define DOT4(TYPE, W_VALUES, w, row_blocks, x, n_blocks, out)                                                            \
    do {                                                                                                           \
        float sum[4] = {0.0f, 0.0f, 0.0f, 0.0f};                                                                   \
        int b = 0;                                                                                                 \
        for (; b + 8 <= (n_blocks); b += 8) {                                                                      \
            __m256i xv[8];                                                                                         \
            for (int j = 0; j < 8; j++) xv[j] = q8_values(&(x)[b + j]);                                            \
            const __m256 dx = f16_to_f32_8(SCALES_8((x) + b));                                                    \
            for (size_t r = 0; r < 4; r++) {                                                                       \
                const TYPE *row = (w) + r * (row_blocks) + b;                                              \
                __m256i p[8];                                                                                      \
                for (int j = 0; j < 8; j++) p[j] = block_partial(W_VALUES(&row[j]), xv[j]);                       \
                float terms[8];                                                                                    \
                _mm256_storeu_ps(terms, _mm256_mul_ps(_mm256_cvtepi32_ps(sums_of_8(p)),                            \
                                                      _mm256_mul_ps(f16_to_f32_8(SCALES_8(row)), dx)));            \
                for (int j = 0; j < 8; j++) sum[r] += terms[j];                                                    \
            }                                                                                                      \
        }                                                                                                          \
        for (; b < (n_blocks); b++)                                                                                \
            for (size_t r = 0; r < 4; r++) {                                                                       \
                const TYPE *blk = (w) + r * (row_blocks) + b;                                              \
                const int isum = block_dot(W_VALUES(blk), q8_values(&(x)[b]));                                     \
                sum[r] += (float)isum * (l2_f16_to_f32(blk->d) * l2_f16_to_f32((x)[b].d));                        \
            }                                                                                                      \
        for (int r = 0; r < 4; r++) (out)[r] = sum[r];                                                             \
    } while (0)

FN static void dot4_q8_0_avx2(float out[4], const l2_block_q8_0 *w, size_t row_blocks, const l2_block_q8_0 *x,
                              int n_blocks) {
    DOT4(l2_block_q8_0, q8_values, w, row_blocks, x, n_blocks, out);
}

FN static void dot4_q4_0_avx2(float out[4], const l2_block_q4_0 *w, size_t row_blocks, const l2_block_q8_0 *x,
                              int n_blocks) {
    DOT4(l2_block_q4_0, q4_values, w, row_blocks, x, n_blocks, out);
}

const l2_block_kernels *l2_block_kernels_avx2(void) {
    static const l2_block_kernels table = {"avx2",         quantize_q8_0_avx2, dot_q8_0_avx2, dot_q4_0_avx2,
                                           dot4_q8_0_avx2, dot4_q4_0_avx2};
    return l2_x86_features_read().avx2 ? &table : NULL;
}

#else

const l2_block_kernels *l2_block_kernels_avx2(void) { return NULL; }

#endif
