/*
 * The AVX-512 element-wise kernels (rmsnorm, softmax, swiglu, add) of the
 * avx512, avx512-vnni and amx tables. Against ops_ref.c:
 *   rmsnorm: the sum of squares in several accumulators (reordered);
 *   softmax, swiglu: the AVX2 tables' vectorised expf (exp8 on each half of
 *       a vector: the same bits); softmax sums in index order;
 *   add: the reference's bits.
 */
#if defined(__x86_64__) || defined(__i386__)

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ops.h"
#include "ops_avx512_util.h"
#include "ops_isa.h"

AVX512_FN static float sum_of_squares(const float *x, int n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 64 <= n; i += 64) {
        __m512 a = _mm512_loadu_ps(x + i), b = _mm512_loadu_ps(x + i + 16);
        __m512 c = _mm512_loadu_ps(x + i + 32), d = _mm512_loadu_ps(x + i + 48);
        s0 = _mm512_fmadd_ps(a, a, s0);
        s1 = _mm512_fmadd_ps(b, b, s1);
        s2 = _mm512_fmadd_ps(c, c, s2);
        s3 = _mm512_fmadd_ps(d, d, s3);
    }
    for (; i + 16 <= n; i += 16) {
        __m512 a = _mm512_loadu_ps(x + i);
        s0 = _mm512_fmadd_ps(a, a, s0);
    }
    if (i < n) {
        __m512 a = _mm512_maskz_loadu_ps(tail16(n - i), x + i);
        s1 = _mm512_fmadd_ps(a, a, s1);
    }
    __m256 s = fold16(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
    return _mm_cvtss_f32(hsum4x8(s, s, s, s));
}

AVX512_FN void l2_rmsnorm_avx512(float *out, const float *x, const float *weight, int n, float eps) {
    float ss = sum_of_squares(x, n);
    ss /= (float)n;
    ss += eps;
    ss = 1.0f / sqrtf(ss);
    const __m512 s = _mm512_set1_ps(ss);
    int i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(out + i, _mm512_mul_ps(_mm512_loadu_ps(weight + i), _mm512_mul_ps(s, _mm512_loadu_ps(x + i))));
    if (i < n) {
        const __mmask16 m = tail16(n - i);
        __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, weight + i), _mm512_mul_ps(s, _mm512_maskz_loadu_ps(m, x + i)));
        _mm512_mask_storeu_ps(out + i, m, v);
    }
}

/* The exponentials are vectorised; their sum runs in index order, as each
 * query's does in the blocked attention (attn_softmax), so that a query
 * alone and in a block get the same bits. */
AVX512_FN void l2_softmax_avx512(float *x, int n) {
    if (n <= 0) return;
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    __m512 mv = ninf;
    int i = 0;
    for (; i + 16 <= n; i += 16) mv = _mm512_max_ps(_mm512_loadu_ps(x + i), mv);
    if (i < n) mv = _mm512_max_ps(_mm512_mask_loadu_ps(ninf, tail16(n - i), x + i), mv);
    const __m512 max = _mm512_set1_ps(hmax16(mv));
    float sum = 0.0f;
    _Alignas(64) float e[16];
    for (i = 0; i < n; i += 16) {
        const int len = n - i < 16 ? n - i : 16;
        const __mmask16 m = tail16(len);
        _mm512_store_ps(e, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), max)));
        _mm512_mask_storeu_ps(x + i, m, _mm512_load_ps(e));
        for (int j = 0; j < len; j++) sum += e[j];
    }
    const __m512 sv = _mm512_set1_ps(sum);
    for (i = 0; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, _mm512_div_ps(_mm512_loadu_ps(x + i), sv));
    if (i < n) {
        const __mmask16 m = tail16(n - i);
        _mm512_mask_storeu_ps(x + i, m, _mm512_div_ps(_mm512_maskz_loadu_ps(m, x + i), sv));
    }
}

AVX512_INLINE __m512 swiglu16(__m512 g, __m512 u) {
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), g));
    __m512 s = _mm512_div_ps(one, _mm512_add_ps(one, e));
    return _mm512_mul_ps(_mm512_mul_ps(g, s), u);
}

AVX512_FN void l2_swiglu_avx512(float *gate, const float *up, int n) {
    int i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(gate + i, swiglu16(_mm512_loadu_ps(gate + i), _mm512_loadu_ps(up + i)));
    if (i < n) {
        const __mmask16 m = tail16(n - i);
        _mm512_mask_storeu_ps(gate + i, m, swiglu16(_mm512_maskz_loadu_ps(m, gate + i), _mm512_maskz_loadu_ps(m, up + i)));
    }
}

AVX512_FN void l2_add_avx512(float *y, const float *x, int n) {
    int i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_add_ps(_mm512_loadu_ps(y + i), _mm512_loadu_ps(x + i)));
    if (i < n) {
        const __mmask16 m = tail16(n - i);
        _mm512_mask_storeu_ps(y + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, y + i), _mm512_maskz_loadu_ps(m, x + i)));
    }
}

#else

/* ISO C forbids an empty translation unit. */
typedef int l2_ops_avx512_vector_unused;

#endif
