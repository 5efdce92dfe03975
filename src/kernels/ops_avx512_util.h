/* Pieces shared by the AVX-512 kernel files (ops_avx512_vector.c,
 * ops_avx512_attention.c, ops_avx512_matmul.c, through ops_x86_width.h): the halves of a 512-bit
 * vector, whose 8-lane steps are ops_avx2_util.h's, so that the AVX-512
 * tables give the AVX2 tables' bits where they say so. */
#ifndef LLAMA2_OPS_AVX512_UTIL_H
#define LLAMA2_OPS_AVX512_UTIL_H

#include "ops_avx2_util.h"

#define AVX512_FN L2_TARGET(L2_AVX512)
#define AVX512_INLINE L2_INLINE(L2_AVX512)

/* The first rem (1..16) lanes. */
AVX512_INLINE __mmask16 tail16(int rem) { return (__mmask16)((1u << rem) - 1u); }

AVX512_INLINE __m256 low8(__m512 v) { return _mm512_castps512_ps256(v); }
AVX512_INLINE __m256 high8(__m512 v) { return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)); }
AVX512_INLINE __m512 join8(__m256 lo, __m256 hi) {
    return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(_mm512_castps256_ps512(lo)), _mm256_castps_pd(hi), 1));
}

/* Lane j + lane j + 8 of v, j < 8. */
AVX512_INLINE __m256 fold16(__m512 v) { return _mm256_add_ps(low8(v), high8(v)); }

/* The sum of 16 lanes: fold16, then hsum4x8's order. */
AVX512_INLINE float hsum16(__m512 v) {
    const __m256 s = fold16(v);
    return _mm_cvtss_f32(hsum4x8(s, s, s, s));
}

/* The largest of 16 lanes. */
AVX512_INLINE float hmax16(__m512 v) { return hmax8(_mm256_max_ps(low8(v), high8(v))); }

/* e^x: ops_avx2_util.h's exp8 on each half, the AVX2 tables' bits. */
AVX512_INLINE __m512 exp16(__m512 x) { return join8(exp8(low8(x)), exp8(high8(x))); }

#endif
