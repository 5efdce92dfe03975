/*
 * The aarch64 Advanced SIMD (NEON) element-wise kernels of the neon tables
 * (table_neon.c). NEON is part of every aarch64 CPU, so no run-time check is
 * needed. Against ops_ref.c:
 *   rmsnorm: fused multiply-adds in several accumulators (a reordered sum);
 *   softmax, swiglu: a vectorised expf within about 2 ulp;
 *   add: the same bits.
 */
#if defined(__aarch64__)

#include <arm_neon.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ops.h"
#include "ops_isa.h"

/* ------------------------------------------------------------ helpers */

/* e^x within about 1-2 ulp: 0 below about -104, +inf above 88.72,
 * subnormal results rounded once, NaN kept. See ops_avx2_util.h's exp8. */
static inline float32x4_t exp4(float32x4_t x) {
    /* vmaxq/vminq propagate NaN. */
    x = vmaxq_f32(x, vdupq_n_f32(-104.0f));
    x = vminq_f32(x, vdupq_n_f32(88.8f));
    float32x4_t n = vrndnq_f32(vmulq_f32(x, vdupq_n_f32(1.44269504088896341f)));
    float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(0.693359375f));
    r = vfmsq_f32(r, n, vdupq_n_f32(-2.12194440e-4f));
    float32x4_t p = vdupq_n_f32(1.9875691500e-4f);
    p = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), p, r);
    p = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), p, r);
    float32x4_t r2 = vmulq_f32(r, r);
    p = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.0f)), p, r2);
    int32x4_t ni = vcvtq_s32_f32(n); /* n is integral already */
    int32x4_t n1 = vshrq_n_s32(ni, 1);
    int32x4_t n2 = vsubq_s32(ni, n1);
    const int32x4_t bias = vdupq_n_s32(127);
    float32x4_t f1 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n1, bias), 23));
    float32x4_t f2 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n2, bias), 23));
    return vmulq_f32(vmulq_f32(p, f1), f2);
}

/* ----------------------------------------------------------- vectors */

static float sum_of_squares(const float *x, int n) {
    float32x4_t s0 = vdupq_n_f32(0.0f), s1 = s0, s2 = s0, s3 = s0;
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        float32x4_t a = vld1q_f32(x + i), b = vld1q_f32(x + i + 4), c = vld1q_f32(x + i + 8), d = vld1q_f32(x + i + 12);
        s0 = vfmaq_f32(s0, a, a);
        s1 = vfmaq_f32(s1, b, b);
        s2 = vfmaq_f32(s2, c, c);
        s3 = vfmaq_f32(s3, d, d);
    }
    for (; i + 4 <= n; i += 4) {
        float32x4_t a = vld1q_f32(x + i);
        s0 = vfmaq_f32(s0, a, a);
    }
    float sum = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
    for (; i < n; i++) sum += x[i] * x[i];
    return sum;
}

void l2_rmsnorm_neon(float *out, const float *x, const float *weight, int n, float eps) {
    float ss = sum_of_squares(x, n);
    ss /= (float)n;
    ss += eps;
    ss = 1.0f / sqrtf(ss);
    const float32x4_t s = vdupq_n_f32(ss);
    int i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(out + i, vmulq_f32(vld1q_f32(weight + i), vmulq_f32(s, vld1q_f32(x + i))));
    for (; i < n; i++) out[i] = weight[i] * (ss * x[i]);
}

void l2_softmax_neon(float *x, int n) {
    if (n <= 0) return;
    float max = x[0];
    int i = 0;
    if (n >= 4) {
        float32x4_t mv = vld1q_f32(x);
        for (i = 4; i + 4 <= n; i += 4) mv = vmaxq_f32(mv, vld1q_f32(x + i));
        max = vmaxvq_f32(mv);
    }
    for (; i < n; i++)
        if (x[i] > max) max = x[i];
    const float32x4_t mx = vdupq_n_f32(max);
    float32x4_t s0 = vdupq_n_f32(0.0f), s1 = s0;
    i = 0;
    for (; i + 8 <= n; i += 8) {
        float32x4_t e0 = exp4(vsubq_f32(vld1q_f32(x + i), mx));
        float32x4_t e1 = exp4(vsubq_f32(vld1q_f32(x + i + 4), mx));
        vst1q_f32(x + i, e0);
        vst1q_f32(x + i + 4, e1);
        s0 = vaddq_f32(s0, e0);
        s1 = vaddq_f32(s1, e1);
    }
    for (; i + 4 <= n; i += 4) {
        float32x4_t e = exp4(vsubq_f32(vld1q_f32(x + i), mx));
        vst1q_f32(x + i, e);
        s0 = vaddq_f32(s0, e);
    }
    float sum = vaddvq_f32(vaddq_f32(s0, s1));
    for (; i < n; i++) {
        float e = vgetq_lane_f32(exp4(vdupq_n_f32(x[i] - max)), 0);
        x[i] = e;
        sum += e;
    }
    const float32x4_t sv = vdupq_n_f32(sum);
    i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(x + i, vdivq_f32(vld1q_f32(x + i), sv));
    for (; i < n; i++) x[i] /= sum;
}

static inline float32x4_t swiglu4(float32x4_t g, float32x4_t u) {
    const float32x4_t one = vdupq_n_f32(1.0f);
    float32x4_t s = vdivq_f32(one, vaddq_f32(one, exp4(vnegq_f32(g))));
    return vmulq_f32(vmulq_f32(g, s), u);
}

void l2_swiglu_neon(float *gate, const float *up, int n) {
    int i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(gate + i, swiglu4(vld1q_f32(gate + i), vld1q_f32(up + i)));
    for (; i < n; i++) gate[i] = vgetq_lane_f32(swiglu4(vdupq_n_f32(gate[i]), vdupq_n_f32(up[i])), 0);
}

void l2_add_neon(float *y, const float *x, int n) {
    int i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vaddq_f32(vld1q_f32(y + i), vld1q_f32(x + i)));
    for (; i < n; i++) y[i] += x[i];
}

#else

/* ISO C forbids an empty translation unit. */
typedef int l2_ops_neon_vector_unused;

#endif
