/*
 * The AVX2 + FMA element-wise kernels (rmsnorm, softmax, swiglu, add) of the
 * avx2 and avx2-vnni tables (table_avx2.c, table_avx2_vnni.c). Against
 * ops_ref.c:
 *   rmsnorm: the sum of squares in several accumulators (reordered);
 *   softmax, swiglu: a vectorised expf within 1.3 ulp (measured over the
 *       whole range); softmax sums in index order;
 *   add: the reference's bits.
 */
#if defined(__x86_64__) || defined(__i386__)

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ops.h"
#include "ops_avx2_util.h"
#include "ops_isa.h"

AVX2_FN static float sum_of_squares(const float *x, int n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + 8);
        __m256 c = _mm256_loadu_ps(x + i + 16), d = _mm256_loadu_ps(x + i + 24);
        s0 = _mm256_fmadd_ps(a, a, s0);
        s1 = _mm256_fmadd_ps(b, b, s1);
        s2 = _mm256_fmadd_ps(c, c, s2);
        s3 = _mm256_fmadd_ps(d, d, s3);
    }
    for (; i + 8 <= n; i += 8) {
        __m256 a = _mm256_loadu_ps(x + i);
        s0 = _mm256_fmadd_ps(a, a, s0);
    }
    if (i < n) {
        __m256 a = _mm256_maskload_ps(x + i, tail_mask(n - i));
        s1 = _mm256_fmadd_ps(a, a, s1);
    }
    return hsum8(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

AVX2_FN void l2_rmsnorm_avx2(float *out, const float *x, const float *weight, int n, float eps) {
    float ss = sum_of_squares(x, n);
    ss /= (float)n;
    ss += eps;
    ss = 1.0f / sqrtf(ss);
    const __m256 s = _mm256_set1_ps(ss);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_loadu_ps(weight + i), _mm256_mul_ps(s, _mm256_loadu_ps(x + i))));
    if (i < n) {
        __m256i m = tail_mask(n - i);
        __m256 v = _mm256_mul_ps(_mm256_maskload_ps(weight + i, m), _mm256_mul_ps(s, _mm256_maskload_ps(x + i, m)));
        _mm256_maskstore_ps(out + i, m, v);
    }
}

/* The exponentials are vectorised; their sum runs in index order, as each
 * query's does in the blocked attention (attn_softmax), so that a query
 * alone and in a block get the same bits. */
AVX2_FN void l2_softmax_avx2(float *x, int n) {
    if (n <= 0) return;
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    __m256 mv = ninf;
    int i = 0;
    for (; i + 8 <= n; i += 8) mv = _mm256_max_ps(_mm256_loadu_ps(x + i), mv);
    if (i < n) {
        __m256i m = tail_mask(n - i);
        __m256 v = _mm256_blendv_ps(ninf, _mm256_maskload_ps(x + i, m), _mm256_castsi256_ps(m));
        mv = _mm256_max_ps(v, mv);
    }
    const __m256 max = _mm256_set1_ps(hmax8(mv));
    float sum = 0.0f;
    i = 0;
    for (; i + 8 <= n; i += 8) {
        _Alignas(32) float e[8];
        _mm256_store_ps(e, exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), max)));
        _mm256_storeu_ps(x + i, _mm256_load_ps(e));
        for (int j = 0; j < 8; j++) sum += e[j];
    }
    if (i < n) {
        __m256i m = tail_mask(n - i);
        _Alignas(32) float e[8];
        _mm256_store_ps(e, exp8(_mm256_sub_ps(_mm256_maskload_ps(x + i, m), max)));
        _mm256_maskstore_ps(x + i, m, _mm256_load_ps(e));
        for (int j = 0; j < n - i; j++) sum += e[j];
    }
    const __m256 sv = _mm256_set1_ps(sum);
    i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_div_ps(_mm256_loadu_ps(x + i), sv));
    if (i < n) {
        __m256i m = tail_mask(n - i);
        _mm256_maskstore_ps(x + i, m, _mm256_div_ps(_mm256_maskload_ps(x + i, m), sv));
    }
}

AVX2_INLINE __m256 swiglu8(__m256 g, __m256 u) {
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), g));
    __m256 s = _mm256_div_ps(one, _mm256_add_ps(one, e));
    return _mm256_mul_ps(_mm256_mul_ps(g, s), u);
}

AVX2_FN void l2_swiglu_avx2(float *gate, const float *up, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(gate + i, swiglu8(_mm256_loadu_ps(gate + i), _mm256_loadu_ps(up + i)));
    if (i < n) {
        __m256i m = tail_mask(n - i);
        _mm256_maskstore_ps(gate + i, m, swiglu8(_mm256_maskload_ps(gate + i, m), _mm256_maskload_ps(up + i, m)));
    }
}

AVX2_FN void l2_add_avx2(float *y, const float *x, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i), _mm256_loadu_ps(x + i)));
    if (i < n) {
        __m256i m = tail_mask(n - i);
        _mm256_maskstore_ps(y + i, m, _mm256_add_ps(_mm256_maskload_ps(y + i, m), _mm256_maskload_ps(x + i, m)));
    }
}

#else

/* ISO C forbids an empty translation unit. */
typedef int l2_ops_avx2_vector_unused;

#endif
