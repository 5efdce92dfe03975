/*
 * The x86 element-wise kernels (rmsnorm, softmax, swiglu, add), written once
 * for both vector widths (ops_x86_width.h): built here for 256 bits, the
 * avx2 and avx2-vnni tables' (l2_*_avx2), and again in
 * ops_avx512_vector.c for 512 bits, the avx512, avx512-vnni and amx
 * tables' (l2_*_avx512). Against ops_ref.c:
 *   rmsnorm: the sum of squares in several accumulators (reordered);
 *   softmax, swiglu: a vectorised expf within 1.3 ulp (measured over the
 *       whole range; at 512 bits exp8 on each half: the same bits);
 *       softmax sums in index order;
 *   add: the reference's bits.
 */
#if defined(__x86_64__) || defined(__i386__)

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "ops.h"
#include "ops_isa.h"

#ifndef X86_W
#define X86_W 256
#endif
#include "ops_x86_width.h"

#define ENTRY(name) X86_CAT(X86_CAT(l2_, name), X86_CAT(_, V_NAME))

V_FN static float sum_of_squares(const float *x, int n) {
    VEC s0 = V_OP(setzero_ps)(), s1 = V_OP(setzero_ps)();
    VEC s2 = V_OP(setzero_ps)(), s3 = V_OP(setzero_ps)();
    int i = 0;
    for (; i + 4 * V_LANES <= n; i += 4 * V_LANES) {
        VEC a = V_OP(loadu_ps)(x + i), b = V_OP(loadu_ps)(x + i + V_LANES);
        VEC c = V_OP(loadu_ps)(x + i + 2 * V_LANES), d = V_OP(loadu_ps)(x + i + 3 * V_LANES);
        s0 = V_OP(fmadd_ps)(a, a, s0);
        s1 = V_OP(fmadd_ps)(b, b, s1);
        s2 = V_OP(fmadd_ps)(c, c, s2);
        s3 = V_OP(fmadd_ps)(d, d, s3);
    }
    for (; i + V_LANES <= n; i += V_LANES) {
        VEC a = V_OP(loadu_ps)(x + i);
        s0 = V_OP(fmadd_ps)(a, a, s0);
    }
    if (i < n) {
        VEC a = v_maskz_load(v_tail(n - i), x + i);
        s1 = V_OP(fmadd_ps)(a, a, s1);
    }
    return v_hsum(V_OP(add_ps)(V_OP(add_ps)(s0, s1), V_OP(add_ps)(s2, s3)));
}

V_FN void ENTRY(rmsnorm)(float *out, const float *x, const float *weight, int n, float eps) {
    float ss = sum_of_squares(x, n);
    ss /= (float)n;
    ss += eps;
    ss = 1.0f / sqrtf(ss);
    const VEC s = V_OP(set1_ps)(ss);
    int i = 0;
    for (; i + V_LANES <= n; i += V_LANES)
        V_OP(storeu_ps)(out + i, V_OP(mul_ps)(V_OP(loadu_ps)(weight + i), V_OP(mul_ps)(s, V_OP(loadu_ps)(x + i))));
    if (i < n) {
        const VMASK m = v_tail(n - i);
        v_mask_store(out + i, m, V_OP(mul_ps)(v_maskz_load(m, weight + i), V_OP(mul_ps)(s, v_maskz_load(m, x + i))));
    }
}

/* The exponentials are vectorised; their sum runs in index order, as each
 * query's does in the blocked attention (attn_softmax), so that a query
 * alone and in a block get the same bits. */
V_FN void ENTRY(softmax)(float *x, int n) {
    if (n <= 0) return;
    const VEC ninf = V_OP(set1_ps)(-INFINITY);
    VEC mv = ninf;
    int i = 0;
    for (; i + V_LANES <= n; i += V_LANES) mv = V_OP(max_ps)(V_OP(loadu_ps)(x + i), mv);
    if (i < n) mv = V_OP(max_ps)(v_mask_load_or(ninf, v_tail(n - i), x + i), mv);
    const VEC max = V_OP(set1_ps)(v_hmax(mv));
    float sum = 0.0f;
    _Alignas(64) float e[V_LANES];
    for (i = 0; i < n; i += V_LANES) {
        const int len = n - i < V_LANES ? n - i : V_LANES;
        const VMASK m = v_tail(len);
        V_OP(store_ps)(e, v_exp(V_OP(sub_ps)(v_maskz_load(m, x + i), max)));
        v_mask_store(x + i, m, V_OP(load_ps)(e));
        for (int j = 0; j < len; j++) sum += e[j];
    }
    const VEC sv = V_OP(set1_ps)(sum);
    for (i = 0; i + V_LANES <= n; i += V_LANES) V_OP(storeu_ps)(x + i, V_OP(div_ps)(V_OP(loadu_ps)(x + i), sv));
    if (i < n) {
        const VMASK m = v_tail(n - i);
        v_mask_store(x + i, m, V_OP(div_ps)(v_maskz_load(m, x + i), sv));
    }
}

V_INLINE VEC swiglu_lanes(VEC g, VEC u) {
    const VEC one = V_OP(set1_ps)(1.0f);
    VEC e = v_exp(V_OP(sub_ps)(V_OP(setzero_ps)(), g));
    VEC s = V_OP(div_ps)(one, V_OP(add_ps)(one, e));
    return V_OP(mul_ps)(V_OP(mul_ps)(g, s), u);
}

V_FN void ENTRY(swiglu)(float *gate, const float *up, int n) {
    int i = 0;
    for (; i + V_LANES <= n; i += V_LANES)
        V_OP(storeu_ps)(gate + i, swiglu_lanes(V_OP(loadu_ps)(gate + i), V_OP(loadu_ps)(up + i)));
    if (i < n) {
        const VMASK m = v_tail(n - i);
        v_mask_store(gate + i, m, swiglu_lanes(v_maskz_load(m, gate + i), v_maskz_load(m, up + i)));
    }
}

V_FN void ENTRY(add)(float *y, const float *x, int n) {
    int i = 0;
    for (; i + V_LANES <= n; i += V_LANES)
        V_OP(storeu_ps)(y + i, V_OP(add_ps)(V_OP(loadu_ps)(y + i), V_OP(loadu_ps)(x + i)));
    if (i < n) {
        const VMASK m = v_tail(n - i);
        v_mask_store(y + i, m, V_OP(add_ps)(v_maskz_load(m, y + i), v_maskz_load(m, x + i)));
    }
}

#undef ENTRY

#if X86_W == 256
/* The exact tables' softmax and swiglu, once (both widths' exact tables
 * take them): the reference's operations in its order, l2_expf on eight
 * lanes at a time (expf8_exact), so the reference's bits. */

/* l2_softmax_ref's bits: its largest (the first of equals; a NaN found
 * after the first score is passed over, as its comparison is), its sum in
 * order, the exponentials eight at a time (expf8_exact) and the divisions. */
AVX2_FN void l2_softmax_exact_avx2(float *x, int n) {
    float max = x[0];
    for (int i = 1; i < n; i++)
        if (x[i] > max) max = x[i];
    const __m256 m = _mm256_set1_ps(max);
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, expf8_exact(_mm256_sub_ps(_mm256_loadu_ps(x + i), m)));
    for (; i < n; i++) x[i] = l2_expf(x[i] - max);
    float sum = 0.0f;
    for (i = 0; i < n; i++) sum += x[i];
    const __m256 sv = _mm256_set1_ps(sum);
    for (i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_div_ps(_mm256_loadu_ps(x + i), sv));
    for (; i < n; i++) x[i] /= sum;
}

/* l2_swiglu_ref's bits: gate * (1 / (1 + e^-gate)), times up. */
AVX2_FN void l2_swiglu_exact_avx2(float *gate, const float *up, int n) {
    const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 g = _mm256_loadu_ps(gate + i);
        const __m256 s = _mm256_div_ps(one, _mm256_add_ps(one, expf8_exact(_mm256_xor_ps(g, sign))));
        _mm256_storeu_ps(gate + i, _mm256_mul_ps(_mm256_mul_ps(g, s), _mm256_loadu_ps(up + i)));
    }
    for (; i < n; i++) {
        float v = gate[i];
        v *= 1.0f / (1.0f + l2_expf(-v));
        gate[i] = v * up[i];
    }
}
#endif

#else

/* ISO C forbids an empty translation unit. */
typedef int l2_ops_avx2_vector_unused;

#endif
