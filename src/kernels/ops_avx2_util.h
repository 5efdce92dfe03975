/* Pieces shared by the AVX2 kernel files (ops_avx2.c, ops_avx2_q8.c). */
#ifndef LLAMA2_OPS_AVX2_UTIL_H
#define LLAMA2_OPS_AVX2_UTIL_H

#include <immintrin.h>

/* Every function carries its own target, so the files build without
 * -march=native; select.c calls them only on CPUs with AVX2 and FMA. */
#define AVX2_FN __attribute__((target("avx2,fma")))
#define AVX2_INLINE static inline __attribute__((target("avx2,fma"), always_inline))

/* The largest of 8 lanes. */
AVX2_INLINE float hmax8(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

#endif
