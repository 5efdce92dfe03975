/*
 * The aarch64 Advanced SIMD (NEON) kernel tables. NEON is part of every
 * aarch64 CPU, so no run-time check is needed.
 *
 * The fast table against ops_ref.c, as for the AVX2 table:
 *   rmsnorm: fused multiply-adds in several accumulators (a reordered sum);
 *   matmul_f32: every dot product one fixed arithmetic (dot4 below),
 *       whatever the inputs and rows computed with it;
 *   softmax, swiglu: a vectorised expf within about 2 ulp;
 *   attention: the reference's (one query at a time);
 *   add: the same bits;
 *   quantize_q8, matmul_q8: the reference's bits exactly. The integer dot of
 *       a group is formed with widening multiplies (exact); the float
 *       accumulation is plain scalar C in the reference's order. This file is
 *       compiled with -ffp-contract=off, so nothing is fused there.
 * The exact table keeps the reference's rmsnorm, softmax, swiglu and
 * matmul_f32, and an attention whose values sum (l2_values_neon) is exact.
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

static void rmsnorm_neon(float *out, const float *x, const float *weight, int n, float eps) {
    float ss = sum_of_squares(x, n);
    ss /= (float)n;
    ss += eps;
    ss = 1.0f / sqrtf(ss);
    const float32x4_t s = vdupq_n_f32(ss);
    int i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(out + i, vmulq_f32(vld1q_f32(weight + i), vmulq_f32(s, vld1q_f32(x + i))));
    for (; i < n; i++) out[i] = weight[i] * (ss * x[i]);
}

static void softmax_neon(float *x, int n) {
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

static void swiglu_neon(float *gate, const float *up, int n) {
    int i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(gate + i, swiglu4(vld1q_f32(gate + i), vld1q_f32(up + i)));
    for (; i < n; i++) gate[i] = vgetq_lane_f32(swiglu4(vdupq_n_f32(gate[i]), vdupq_n_f32(up[i])), 0);
}

/* values: columns in chunks of up to 64 (16 vectors), held in registers
 * across every position, so that out is read and written once; each
 * element's sum is the reference's (multiply, then add, in t order). */
static inline void values_cols_neon(float *out, const float *att, const float *v, size_t stride, int n_keys, int nv) {
    float32x4_t acc[16];
    for (int j = 0; j < nv; j++) acc[j] = vld1q_f32(out + 4 * j);
    for (int t = 0; t < n_keys; t++) {
        const float *vt = v + (size_t)t * stride;
        const float32x4_t a = vdupq_n_f32(att[t]);
        for (int j = 0; j < nv; j++) acc[j] = vaddq_f32(acc[j], vmulq_f32(a, vld1q_f32(vt + 4 * j)));
    }
    for (int j = 0; j < nv; j++) vst1q_f32(out + 4 * j, acc[j]);
}

void l2_values_neon(float *out, const float *att, const float *v, int kv_stride, int n_keys, int hs) {
    const size_t stride = (size_t)kv_stride;
    int i = 0;
    for (; i + 64 <= hs; i += 64) values_cols_neon(out + i, att, v + i, stride, n_keys, 16);
    if (i + 4 <= hs) {
        const int nv = (hs - i) / 4;
        values_cols_neon(out + i, att, v + i, stride, n_keys, nv);
        i += 4 * nv;
    }
    for (; i < hs; i++) {
        float sum = out[i];
        for (int t = 0; t < n_keys; t++) sum += att[t] * v[(size_t)t * stride + (size_t)i];
        out[i] = sum;
    }
}

static void add_neon(float *y, const float *x, int n) {
    int i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vaddq_f32(vld1q_f32(y + i), vld1q_f32(x + i)));
    for (; i < n; i++) y[i] += x[i];
}

/* -------------------------------------------------------- matmul_f32 */

/* Every dot product of W[r] and x[b] is summed as dot4: lane j (0..3) of
 * one accumulator takes the columns k = j, j + 4, ... below the last
 * multiple of 4, one fused multiply-add each, from +0; the lanes are added
 * by vaddvq_f32; then the last 1-3 columns one by one, multiplied then
 * added. So a row's result does not depend on the number of inputs, the
 * rows around it or the split into tasks. R rows (w, stride cols) x B
 * inputs (x, stride cols) at a time, out[b * os + r]. */
static inline void dot4_tile(float *out, size_t os, const float *x, const float *w, size_t cols, int R, int B) {
    float32x4_t acc[4][2];
    for (int r = 0; r < R; r++)
        for (int b = 0; b < B; b++) acc[r][b] = vdupq_n_f32(0.0f);
    size_t k = 0;
    for (; k + 4 <= cols; k += 4) {
        float32x4_t xv[2];
        for (int b = 0; b < B; b++) xv[b] = vld1q_f32(x + (size_t)b * cols + k);
        for (int r = 0; r < R; r++) {
            const float32x4_t wv = vld1q_f32(w + (size_t)r * cols + k);
            for (int b = 0; b < B; b++) acc[r][b] = vfmaq_f32(acc[r][b], wv, xv[b]);
        }
    }
    for (int r = 0; r < R; r++) {
        const float *wr = w + (size_t)r * cols;
        for (int b = 0; b < B; b++) {
            const float *xb = x + (size_t)b * cols;
            float sum = vaddvq_f32(acc[r][b]);
            for (size_t kk = k; kk < cols; kk++) sum += wr[kk] * xb[kk];
            out[(size_t)b * os + (size_t)r] = sum;
        }
    }
}

static void dot4_4x2(float *out, size_t os, const float *x, const float *w, size_t cols) {
    dot4_tile(out, os, x, w, cols, 4, 2);
}
static void dot4_4x1(float *out, size_t os, const float *x, const float *w, size_t cols) {
    dot4_tile(out, os, x, w, cols, 4, 1);
}
static void dot4_1x2(float *out, size_t os, const float *x, const float *w, size_t cols) {
    dot4_tile(out, os, x, w, cols, 1, 2);
}
static void dot4_1x1(float *out, size_t os, const float *x, const float *w, size_t cols) {
    dot4_tile(out, os, x, w, cols, 1, 1);
}

static void matmul_f32_neon(float *out, int out_stride, const float *x, int nb, const float *w, int cols,
                            int row_begin, int row_end) {
    const size_t c = (size_t)cols, os = (size_t)out_stride;
    for (int b = 0; b < nb; b += 2) {
        const int two = b + 2 <= nb;
        const float *xb = x + (size_t)b * c;
        float *ob = out + (size_t)b * os;
        int r = row_begin;
        for (; r + 4 <= row_end; r += 4) (two ? dot4_4x2 : dot4_4x1)(ob + r, os, xb, w + (size_t)r * c, c);
        for (; r < row_end; r++) (two ? dot4_1x2 : dot4_1x1)(ob + r, os, xb, w + (size_t)r * c, c);
    }
}

/* ------------------------------------------------------- quantize_q8 */

static void quantize_q8_neon(int8_t *q, float *scales, const float *x, int n, int gs) {
    const float q_max = 127.0f;
    const int groups = n / gs;
    for (int g = 0; g < groups; g++) {
        const float *xg = x + (size_t)g * (size_t)gs;
        int8_t *qg = q + (size_t)g * (size_t)gs;
        float wmax = 0.0f;
        int i = 0;
        if (gs >= 4) {
            /* vmaxnmq returns the number when the other operand is a NaN,
             * so a NaN never wins, as with the reference's '>'. */
            float32x4_t m = vdupq_n_f32(0.0f);
            for (; i + 4 <= gs; i += 4) m = vmaxnmq_f32(m, vabsq_f32(vld1q_f32(xg + i)));
            wmax = vmaxnmvq_f32(m);
        }
        for (; i < gs; i++) {
            float v = fabsf(xg[i]);
            if (v > wmax) wmax = v;
        }
        float scale = wmax / q_max;
        scales[g] = scale;
        if (scale == 0.0f) {
            memset(qg, 0, (size_t)gs);
            continue;
        }
        const float32x4_t sv = vdupq_n_f32(scale);
        i = 0;
        for (; i + 8 <= gs; i += 8) {
            /* vrndaq: round to nearest, ties away from zero (roundf). */
            int32x4_t v0 = vcvtq_s32_f32(vrndaq_f32(vdivq_f32(vld1q_f32(xg + i), sv)));
            int32x4_t v1 = vcvtq_s32_f32(vrndaq_f32(vdivq_f32(vld1q_f32(xg + i + 4), sv)));
            /* Keep the low byte of each, as the (int8_t) conversion does. */
            int16x8_t h = vcombine_s16(vmovn_s32(v0), vmovn_s32(v1));
            vst1_s8(qg + i, vmovn_s16(h));
        }
        for (; i < gs; i++) qg[i] = l2_q8_round(xg[i] / scale);
    }
}

/* --------------------------------------------------------- matmul_q8 */

/* The exact integer dot of n int8 values. */
static inline int32_t dot_i8(const int8_t *a, const int8_t *b, int n) {
    int k = 0;
    int32_t sum = 0;
    if (n >= 16) {
        int32x4_t acc = vdupq_n_s32(0);
        for (; k + 16 <= n; k += 16) {
            int8x16_t va = vld1q_s8(a + k), vb = vld1q_s8(b + k);
            /* |a * b| <= 128 * 128: one product fits int16; widen while
             * adding pairs into int32. */
            acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(va), vget_low_s8(vb)));
            acc = vpadalq_s16(acc, vmull_s8(vget_high_s8(va), vget_high_s8(vb)));
        }
        sum = vaddvq_s32(acc);
    }
    for (; k + 8 <= n; k += 8) sum += vaddlvq_s16(vmull_s8(vld1_s8(a + k), vld1_s8(b + k)));
    for (; k < n; k++) sum += (int32_t)a[k] * (int32_t)b[k];
    return sum;
}

static void matmul_q8_neon(float *out, int out_stride, const int8_t *xq, const float *xs, int nb, const int8_t *w,
                           const float *ws, int cols, int gs, int row_begin, int row_end) {
    const int groups = cols / gs;
    const size_t c = (size_t)cols, ng = (size_t)groups, os = (size_t)out_stride;
    for (int r = row_begin; r < row_end; r++) {
        const int8_t *wr = w + (size_t)r * c;
        const float *wsr = ws + (size_t)r * ng;
        for (int b = 0; b < nb; b++) {
            const int8_t *xb = xq + (size_t)b * c;
            const float *xsb = xs + (size_t)b * ng;
            float val = 0.0f;
            for (int g = 0; g < groups; g++) {
                int32_t ival = dot_i8(xb + (size_t)g * (size_t)gs, wr + (size_t)g * (size_t)gs, gs);
                val += ((float)ival) * wsr[g] * xsb[g];
            }
            out[(size_t)b * os + (size_t)r] = val;
        }
    }
}

/* --------------------------------------------------------- attention */

/* The exact table's attention: the reference's arithmetic, query by query,
 * with the vectorised (exact) values sum. */
static void attention_exact_neon(float *const *out, const float *const *q, const int *n_keys, int nq, const float *k,
                                 const float *v, int kv_stride, int hs, float *scratch) {
    for (int i = 0; i < nq; i++) {
        l2_scores_ref(scratch, q[i], k, kv_stride, n_keys[i], hs);
        l2_softmax_ref(scratch, n_keys[i]);
        memset(out[i], 0, (size_t)hs * sizeof(float));
        l2_values_neon(out[i], scratch, v, kv_stride, n_keys[i], hs);
    }
}

/* ------------------------------------------------------------- tables */

static const l2_kernels neon_table = {
    .name = "neon",
    .rmsnorm = rmsnorm_neon,
    .softmax = softmax_neon,
    .swiglu = swiglu_neon,
    .add = add_neon,
    .matmul_f32 = matmul_f32_neon,
    .quantize_q8 = quantize_q8_neon,
    .matmul_q8 = matmul_q8_neon,
    .attention = l2_attention_ref,
    .task_rows = 8,
    .block_task_rows = 8,
};

static const l2_kernels neon_exact_table = {
    .name = "neon-exact",
    .rmsnorm = l2_rmsnorm_ref,
    .softmax = l2_softmax_ref,
    .swiglu = l2_swiglu_ref,
    .add = add_neon,
    .matmul_f32 = l2_matmul_f32_ref,
    .quantize_q8 = quantize_q8_neon,
    .matmul_q8 = matmul_q8_neon,
    .attention = attention_exact_neon,
    .task_rows = 8,
    .block_task_rows = 8,
};

const l2_kernels *l2_kernels_neon(void) { return &neon_table; }
const l2_kernels *l2_kernels_neon_exact(void) { return &neon_exact_table; }

#else

/* ISO C forbids an empty translation unit. */
typedef int l2_ops_neon_unused;

#endif
