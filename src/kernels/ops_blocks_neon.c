/*
 * The neon level's block table (ops_blocks.h): ggml's Q8_0 and Q4_0 blocks
 * on aarch64's Advanced SIMD, part of every aarch64 CPU. The integer sums
 * are exact in int32 lanes (vmull_s8 widens each product to int16,
 * vpadalq_s16 adds pairs into int32); the float steps are the reference's,
 * block by block (the dots) or lane by lane (the Q4_0 panels, a row a
 * lane), so every entry gives the reference's bits.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ops_blocks.h"

#if defined(__aarch64__)

#include <arm_neon.h>

/* The exact dot of 32 int8 values with 32 others. */
static inline int32_t dot_32(int8x16_t a0, int8x16_t a1, const int8_t *b) {
    const int8x16_t b0 = vld1q_s8(b), b1 = vld1q_s8(b + 16);
    /* |a * b| <= 128 * 128: one product fits int16. */
    int32x4_t acc = vpaddlq_s16(vmull_s8(vget_low_s8(a0), vget_low_s8(b0)));
    acc = vpadalq_s16(acc, vmull_s8(vget_high_s8(a0), vget_high_s8(b0)));
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(a1), vget_low_s8(b1)));
    acc = vpadalq_s16(acc, vmull_s8(vget_high_s8(a1), vget_high_s8(b1)));
    return vaddvq_s32(acc);
}

static float dot_q8_0_neon(const l2_block_q8_0 *w, const l2_block_q8_0 *x, int n_blocks) {
    float sum = 0.0f;
    for (int b = 0; b < n_blocks; b++) {
        const int32_t isum = dot_32(vld1q_s8(w[b].qs), vld1q_s8(w[b].qs + 16), x[b].qs);
        sum += (float)isum * (l2_block_scale(w[b].d) * l2_block_scale(x[b].d));
    }
    return sum;
}

static float dot_q4_0_neon(const l2_block_q4_0 *w, const l2_block_q8_0 *x, int n_blocks) {
    const uint8x16_t low = vdupq_n_u8(0x0F);
    const int8x16_t eight = vdupq_n_s8(8);
    float sum = 0.0f;
    for (int b = 0; b < n_blocks; b++) {
        const uint8x16_t packed = vld1q_u8(w[b].qs);
        const int8x16_t lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(packed, low)), eight);
        const int8x16_t hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(packed, 4)), eight);
        const int32_t isum = dot_32(lo, hi, x[b].qs);
        sum += (float)isum * (l2_block_scale(w[b].d) * l2_block_scale(x[b].d));
    }
    return sum;
}

static void dot4_q8_0_neon(float out[4], const l2_block_q8_0 *w, size_t row_blocks, const l2_block_q8_0 *x,
                           int n_blocks) {
    for (size_t r = 0; r < 4; r++) out[r] = dot_q8_0_neon(w + r * row_blocks, x, n_blocks);
}

static void dot4x2_q8_0_neon(float out[8], const l2_block_q8_0 *w, size_t row_blocks, const l2_block_q8_0 *x,
                             size_t x_stride, int n_blocks) {
    for (size_t i = 0; i < 2; i++) dot4_q8_0_neon(out + 4 * i, w, row_blocks, x + i * x_stride, n_blocks);
}

/* Input bytes 4j..4j+3 in both 32-bit lanes. */
static inline int8x8_t piece(const int8_t *q, int j) {
    uint32_t v;
    memcpy(&v, q + 4 * j, sizeof v);
    return vreinterpret_s8_u32(vdup_n_u32(v));
}

/* Four rows (a quarter of a panel, a row a lane) by one input's block: the
 * nibbles lo[k] / hi[k] hold bytes 4k..4k+3 of the four rows' low and high
 * halves. The pairs of rows 0-1 and 2-3 are added apart, then pairwise. */
static inline int32x4_t quarter_isum(const int8x16_t lo[4], const int8x16_t hi[4], const int8x8_t p[8]) {
    int32x4_t r01 = vpaddlq_s16(vmull_s8(vget_low_s8(lo[0]), p[0]));
    int32x4_t r23 = vpaddlq_s16(vmull_s8(vget_high_s8(lo[0]), p[0]));
    for (int k = 1; k < 4; k++) {
        r01 = vpadalq_s16(r01, vmull_s8(vget_low_s8(lo[k]), p[k]));
        r23 = vpadalq_s16(r23, vmull_s8(vget_high_s8(lo[k]), p[k]));
    }
    for (int k = 0; k < 4; k++) {
        r01 = vpadalq_s16(r01, vmull_s8(vget_low_s8(hi[k]), p[4 + k]));
        r23 = vpadalq_s16(r23, vmull_s8(vget_high_s8(hi[k]), p[4 + k]));
    }
    return vpaddq_s32(r01, r23);
}

#define PANEL_INPUTS 4

/* A panel against ni (1..PANEL_INPUTS) inputs: acc[4 * i + g] the sums of
 * rows 4g..4g+3 for input i. The stored nibbles are the values plus 8: each
 * block's integer dot less 8 times the input's sum, then (float)isum *
 * (dw * dx) added, block by block as the reference adds. */
static void q4_0_panel(float32x4_t *acc, const uint8_t *nibbles, const uint8_t *scales, const l2_block_q8_0 *x,
                       const l2_block_q8_0_summary *xs, size_t x_stride, int n_blocks, int ni) {
    const uint8x16_t low = vdupq_n_u8(0x0F);
    for (int i = 0; i < 4 * ni; i++) acc[i] = vdupq_n_f32(0.0f);
    for (int b = 0; b < n_blocks; b++) {
        const uint8_t *v = nibbles + (size_t)b * 256;
        for (int k = 0; k < 4; k++) __builtin_prefetch(v + L2_PANEL_PREFETCH + 64 * k);
        int8x8_t p[PANEL_INPUTS][8];
        float32x4_t dx[PANEL_INPUTS];
        int32x4_t offset[PANEL_INPUTS];
        for (int i = 0; i < ni; i++) {
            const int8_t *q = x[(size_t)i * x_stride + (size_t)b].qs;
            const l2_block_q8_0_summary *sm = &xs[(size_t)i * x_stride + (size_t)b];
            for (int j = 0; j < 8; j++) p[i][j] = piece(q, j);
            dx[i] = vdupq_n_f32(sm->d);
            offset[i] = vdupq_n_s32(8 * sm->sum);
        }
        for (int g = 0; g < 4; g++) {
            int8x16_t lo[4], hi[4];
            for (int k = 0; k < 4; k++) {
                const uint8x16_t packed = vld1q_u8(v + 64 * k + 16 * g);
                lo[k] = vreinterpretq_s8_u8(vandq_u8(packed, low));
                hi[k] = vreinterpretq_s8_u8(vshrq_n_u8(packed, 4));
            }
            uint16_t h[4];
            memcpy(h, scales + (size_t)b * 32 + 8 * g, sizeof h);
            /* fcvtl: exact for every fp16 value. */
            const float32x4_t dw = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(h)));
            for (int i = 0; i < ni; i++) {
                const int32x4_t isum = vsubq_s32(quarter_isum(lo, hi, p[i]), offset[i]);
                const float32x4_t scale = vmulq_f32(dw, dx[i]);
                acc[4 * i + g] = vaddq_f32(acc[4 * i + g], vmulq_f32(vcvtq_f32_s32(isum), scale));
            }
        }
    }
}

static void q4_0_panels_neon(float *out, size_t out_stride, const void *panels, int rows, int panel_begin,
                             int panel_end, const l2_block_q8_0 *x, const l2_block_q8_0_summary *xs, size_t x_stride,
                             int n_inputs, int n_blocks) {
    const size_t panel = l2_q4_0_panel_bytes(n_blocks);
    for (int p = panel_begin; p < panel_end; p++) {
        const uint8_t *nibbles = (const uint8_t *)panels + (size_t)p * panel,
                      *scales = nibbles + (size_t)n_blocks * 256;
        const int row0 = p * L2_PANEL_ROWS, n_rows = rows - row0 < L2_PANEL_ROWS ? rows - row0 : L2_PANEL_ROWS;
        for (int i0 = 0; i0 < n_inputs; i0 += PANEL_INPUTS) {
            const int ni = n_inputs - i0 < PANEL_INPUTS ? n_inputs - i0 : PANEL_INPUTS;
            float32x4_t acc[4 * PANEL_INPUTS];
            q4_0_panel(acc, nibbles, scales, x + (size_t)i0 * x_stride, xs + (size_t)i0 * x_stride, x_stride,
                       n_blocks, ni);
            for (int i = 0; i < ni; i++) {
                float *o = out + (size_t)(i0 + i) * out_stride + (size_t)row0;
                if (n_rows == L2_PANEL_ROWS) {
                    for (int g = 0; g < 4; g++) vst1q_f32(o + 4 * g, acc[4 * i + g]);
                } else {
                    float all[L2_PANEL_ROWS];
                    for (int g = 0; g < 4; g++) vst1q_f32(all + 4 * g, acc[4 * i + g]);
                    memcpy(o, all, (size_t)n_rows * sizeof(float));
                }
            }
        }
    }
}

const l2_block_kernels *l2_block_kernels_neon(void) {
    static const l2_block_kernels table = {.name = "neon",
                                           .quantize_q8_0 = l2_quantize_q8_0_ref,
                                           .dot_q8_0 = dot_q8_0_neon,
                                           .dot_q4_0 = dot_q4_0_neon,
                                           .dot4_q8_0 = dot4_q8_0_neon,
                                           .dot4x2_q8_0 = dot4x2_q8_0_neon,
                                           .q4_0_panels = q4_0_panels_neon};
    return &table;
}

#else

const l2_block_kernels *l2_block_kernels_neon(void) { return NULL; }

#endif
