/*
 * The NEON products of the neon tables:
 *   matmul_f32: every dot product one fixed arithmetic (dot4 below),
 *       whatever the inputs and rows computed with it (the exact table uses
 *       the reference's);
 *   quantize_q8, matmul_q8: the reference's bits exactly. The integer dot of
 *       a group is formed with sdot where the CPU has it, else widening
 *       multiplies (both exact); the float
 *       accumulation is plain scalar C in the reference's order. This file is
 *       compiled with -ffp-contract=off, so nothing is fused there.
 */
#if defined(__aarch64__)

#include <arm_neon.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ops.h"
#include "ops_isa.h"
#include "ops_neon_dotprod.h"

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

void l2_matmul_f32_neon(float *out, int out_stride, const float *x, int nb, const float *w, int cols,
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

void l2_quantize_q8_neon(int8_t *q, float *scales, const float *x, int n, int gs) {
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

/* Every row against every input, a group's exact integer dot by DOT, the
 * float steps in the reference's order. */
#define MATMUL_Q8_ROWS(DOT)                                                                          \
    const int groups = cols / gs;                                                                    \
    const size_t c = (size_t)cols, ng = (size_t)groups, os = (size_t)out_stride;                     \
    for (int r = row_begin; r < row_end; r++) {                                                      \
        const int8_t *wr = w + (size_t)r * c;                                                        \
        const float *wsr = ws + (size_t)r * ng;                                                      \
        for (int b = 0; b < nb; b++) {                                                               \
            const int8_t *xb = xq + (size_t)b * c;                                                   \
            const float *xsb = xs + (size_t)b * ng;                                                  \
            float val = 0.0f;                                                                        \
            for (int g = 0; g < groups; g++) {                                                       \
                int32_t ival = DOT(xb + (size_t)g * (size_t)gs, wr + (size_t)g * (size_t)gs, gs);    \
                val += ((float)ival) * wsr[g] * xsb[g];                                              \
            }                                                                                        \
            out[(size_t)b * os + (size_t)r] = val;                                                   \
        }                                                                                            \
    }

/* sdot where the CPU has it (ops_neon_dotprod.h). */
#if defined(DOTPROD_FN)
static int cpu_has_dotprod(void) {
#if L2_DOTPROD_ALWAYS
    return 1;
#else
    return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#endif
}
#endif

#if defined(DOTPROD_FN)
DOTPROD_FN static inline int32_t dot_i8_sdot(const int8_t *a, const int8_t *b, int n) {
    int k = 0;
    int32x4_t acc = vdupq_n_s32(0);
    for (; k + 16 <= n; k += 16) acc = vdotq_s32(acc, vld1q_s8(a + k), vld1q_s8(b + k));
    int32_t sum = vaddvq_s32(acc);
    for (; k < n; k++) sum += (int32_t)a[k] * (int32_t)b[k];
    return sum;
}

DOTPROD_FN static void matmul_q8_sdot(float *out, int out_stride, const int8_t *xq, const float *xs, int nb,
                                      const int8_t *w, const float *ws, int cols, int gs, int row_begin, int row_end) {
    MATMUL_Q8_ROWS(dot_i8_sdot)
}
#endif

void l2_matmul_q8_neon_widening(float *out, int out_stride, const int8_t *xq, const float *xs, int nb,
                                const int8_t *w, const float *ws, int cols, int gs, int row_begin, int row_end) {
    MATMUL_Q8_ROWS(dot_i8)
}

int l2_neon_dotprod(void) {
#if defined(DOTPROD_FN)
    return cpu_has_dotprod();
#else
    return 0;
#endif
}

void l2_matmul_q8_neon_sdot(float *out, int out_stride, const int8_t *xq, const float *xs, int nb, const int8_t *w,
                            const float *ws, int cols, int gs, int row_begin, int row_end) {
#if defined(DOTPROD_FN)
    matmul_q8_sdot(out, out_stride, xq, xs, nb, w, ws, cols, gs, row_begin, row_end);
#else
    l2_matmul_q8_neon_widening(out, out_stride, xq, xs, nb, w, ws, cols, gs, row_begin, row_end);
#endif
}

void l2_matmul_q8_neon(float *out, int out_stride, const int8_t *xq, const float *xs, int nb, const int8_t *w,
                       const float *ws, int cols, int gs, int row_begin, int row_end) {
    if (l2_neon_dotprod())
        l2_matmul_q8_neon_sdot(out, out_stride, xq, xs, nb, w, ws, cols, gs, row_begin, row_end);
    else
        l2_matmul_q8_neon_widening(out, out_stride, xq, xs, nb, w, ws, cols, gs, row_begin, row_end);
}

#else

/* ISO C forbids an empty translation unit. */
typedef int l2_ops_neon_matmul_unused;

#endif
