/*
 * The block kernels (ops_blocks.h) on 256-bit vectors, the reference's bits:
 * a block's integer sum is exact in any order (|w| <= 128 and activations
 * within [-127, 127], so maddubs's pair sums never saturate), and the float
 * steps are the reference's, block after block.
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

FN static float dot_q8_0_avx2(const l2_block_q8_0 *w, const l2_block_q8_0 *x, int n_blocks) {
    float sum = 0.0f;
    for (int b = 0; b < n_blocks; b++) {
        const int isum = block_dot(_mm256_loadu_si256((const __m256i *)(const void *)w[b].qs),
                                   _mm256_loadu_si256((const __m256i *)(const void *)x[b].qs));
        sum += (float)isum * (l2_f16_to_f32(w[b].d) * l2_f16_to_f32(x[b].d));
    }
    return sum;
}

FN static float dot_q4_0_avx2(const l2_block_q4_0 *w, const l2_block_q8_0 *x, int n_blocks) {
    const __m256i low = _mm256_set1_epi8(0x0F), eight = _mm256_set1_epi8(8);
    float sum = 0.0f;
    for (int b = 0; b < n_blocks; b++) {
        const __m128i packed = _mm_loadu_si128((const __m128i *)(const void *)w[b].qs);
        /* Values 0-15 from the low nibbles, 16-31 from the high ones. */
        const __m256i both = _mm256_set_m128i(_mm_srli_epi16(packed, 4), packed);
        const __m256i values = _mm256_sub_epi8(_mm256_and_si256(both, low), eight);
        const int isum = block_dot(values, _mm256_loadu_si256((const __m256i *)(const void *)x[b].qs));
        sum += (float)isum * (l2_f16_to_f32(w[b].d) * l2_f16_to_f32(x[b].d));
    }
    return sum;
}

const l2_block_kernels *l2_block_kernels_avx2(void) {
    static const l2_block_kernels table = {"avx2", quantize_q8_0_avx2, dot_q8_0_avx2, dot_q4_0_avx2};
    return l2_x86_features_read().avx2 ? &table : NULL;
}

#else

const l2_block_kernels *l2_block_kernels_avx2(void) { return NULL; }

#endif
