/*
 * The Q4_K and Q6_K panels (ops_kquants.h) on NEON with the dot product
 * instructions: a panel's 16 rows as four vectors of four rows (a row a
 * 32-bit lane, the panel's 64-byte lines read as four 16-byte quarters).
 * The stored values (0-15, or 0-63) are positive as signed bytes, so sdot
 * (vdotq_s32) of them against four activation bytes in every lane gives
 * each sub-block's dot as an exact int32; the scales, Q4_K's mins and the
 * float steps are the panel reference's, lane by lane: its bits. Each
 * panel is run for one input after the other (the next input reads it
 * from cache). Without sdot (the CPU's, or a build that cannot ask), the
 * neon K-quant table is the reference's.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ops_blocks.h"
#include "ops_kquants.h"

#if defined(__aarch64__)

#include <arm_neon.h>

#include "ops_isa.h"
#include "ops_neon_dotprod.h"

#if defined(DOTPROD_FN)

/* Activation bytes 4k..4k+3 of q in every 32-bit lane. */
DOTPROD_FN static inline int8x16_t piece(const int8_t *q, int k) {
    int32_t v;
    memcpy(&v, q + 4 * k, sizeof v);
    return vreinterpretq_s8_s32(vdupq_n_s32(v));
}

/* Four bytes at p, one a lane: unsigned, signed; four fp16 at p. */
DOTPROD_FN static inline int32x4_t u8x4(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(vmovl_u8(vreinterpret_u8_u32(vdup_n_u32(v))))));
}

DOTPROD_FN static inline int32x4_t s8x4(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return vmovl_s16(vget_low_s16(vmovl_s8(vreinterpret_s8_u32(vdup_n_u32(v)))));
}

DOTPROD_FN static inline float32x4_t f16x4(const uint8_t *p) {
    uint16_t h[4];
    memcpy(h, p, sizeof h);
    /* fcvtl: exact for every fp16 value. */
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(h)));
}

/* The stored bytes at p shifted by `shift` (negative: right), masked. */
DOTPROD_FN static inline int8x16_t bits(const uint8_t *p, int shift, uint8x16_t mask) {
    return vreinterpretq_s8_u8(vandq_u8(vshlq_u8(vld1q_u8(p), vdupq_n_s8((int8_t)shift)), mask));
}

/* One Q4_K panel block (at v) against one input block: rows 4qr..4qr+3's
 * isum (each sub-block's dot times its scale) and mins (each min times
 * its activations' sum of 32). */
DOTPROD_FN static inline void q4_K_quarter(int32x4_t *isum, int32x4_t *mins, const uint8_t *v, int qr,
                                           const l2_block_q8_K *x) {
    const uint8x16_t low = vdupq_n_u8(0x0F);
    int32x4_t s = vdupq_n_s32(0);
    for (int j = 0; j < 8; j++) {
        /* Sub-block j: the low nibbles of its chunk (j even) or the high. */
        const uint8_t *chunk = v + 512 * (j / 2) + 16 * qr;
        const int8_t *q = x->qs + 32 * j;
        const int shift = j % 2 ? -4 : 0;
        int32x4_t c0 = vdupq_n_s32(0), c1 = vdupq_n_s32(0);
        for (int k = 0; k < 8; k += 2) {
            c0 = vdotq_s32(c0, bits(chunk + 64 * k, shift, low), piece(q, k));
            c1 = vdotq_s32(c1, bits(chunk + 64 * (k + 1), shift, low), piece(q, k + 1));
        }
        s = vmlaq_s32(s, vaddq_s32(c0, c1), u8x4(v + 2048 + 16 * j + 4 * qr));
    }
    /* The mins of sub-blocks 2m and 2m + 1, a pair a row, against the
     * activations' sums of those sub-blocks. */
    int32x4_t m = vdupq_n_s32(0);
    for (int p = 0; p < 4; p++) {
        const int16x8_t pairs = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(v + 2176 + 32 * p + 8 * qr)));
        const int16_t s0 = (int16_t)(x->bsums[4 * p] + x->bsums[4 * p + 1]),
                      s1 = (int16_t)(x->bsums[4 * p + 2] + x->bsums[4 * p + 3]);
        const int16x8_t sums = vreinterpretq_s16_s32(vdupq_n_s32((int32_t)((uint32_t)(uint16_t)s0 | (uint32_t)(uint16_t)s1 << 16)));
        m = vaddq_s32(m, vpaddq_s32(vmull_s16(vget_low_s16(pairs), vget_low_s16(sums)), vmull_high_s16(pairs, sums)));
    }
    *isum = s;
    *mins = m;
}

/* A Q4_K panel against one input: its 16 rows' dots into o[16]. */
DOTPROD_FN static void q4_K_panel(float o[16], const uint8_t *panel, const l2_block_q8_K *x, int n_blocks) {
    float32x4_t acc[4];
    for (int qr = 0; qr < 4; qr++) acc[qr] = vdupq_n_f32(0.0f);
    for (int b = 0; b < n_blocks; b++) {
        const uint8_t *v = panel + (size_t)b * L2_Q4_K_PANEL_BLOCK;
        const float32x4_t dx = vdupq_n_f32(x[b].d);
        for (int qr = 0; qr < 4; qr++) {
            int32x4_t isum, mins;
            q4_K_quarter(&isum, &mins, v, qr, &x[b]);
            const float32x4_t d = vmulq_f32(f16x4(v + 2304 + 8 * qr), dx),
                              dmin = vmulq_f32(f16x4(v + 2336 + 8 * qr), dx);
            acc[qr] = vaddq_f32(acc[qr], vmulq_f32(vcvtq_f32_s32(isum), d));
            acc[qr] = vsubq_f32(acc[qr], vmulq_f32(vcvtq_f32_s32(mins), dmin));
        }
    }
    for (int qr = 0; qr < 4; qr++) vst1q_f32(o + 4 * qr, acc[qr]);
}

/* One Q6_K panel block against one input block: rows 4qr..4qr+3's isum,
 * per 16 values the dot of the stored values (0-63: 4 bits from ql, 2 from
 * qh) less 32 times the activations' sum, times the signed scale. */
DOTPROD_FN static inline int32x4_t q6_K_quarter(const uint8_t *v, int qr, const l2_block_q8_K *x) {
    const uint8x16_t low = vdupq_n_u8(0x0F), high = vdupq_n_u8(0x30);
    int32x4_t isum = vdupq_n_s32(0);
    for (int g = 0; g < 8; g++) {
        /* Values 32g..32g+31: half h, and in it the quarter k (ql's low
         * nibbles for k < 2, high for k >= 2; qh's bits 2k and 2k + 1). */
        const int h = g / 4, k = g % 4;
        const uint8_t *ql = v + 512 * (2 * h + k % 2) + 16 * qr, *qh = v + 2048 + 512 * h + 16 * qr;
        const int8_t *q = x->qs + 32 * g;
        int32x4_t c[2] = {vdupq_n_s32(0), vdupq_n_s32(0)};
        for (int t = 0; t < 8; t++) {
            const int8x16_t value = vorrq_s8(bits(ql + 64 * t, k >= 2 ? -4 : 0, low), bits(qh + 64 * t, 4 - 2 * k, high));
            c[t / 4] = vdotq_s32(c[t / 4], value, piece(q, t));
        }
        for (int u = 0; u < 2; u++)
            isum = vmlaq_s32(isum, vsubq_s32(c[u], vdupq_n_s32(32 * x->bsums[2 * g + u])),
                             s8x4(v + 3072 + 32 * g + 16 * u + 4 * qr));
    }
    return isum;
}

DOTPROD_FN static void q6_K_panel(float o[16], const uint8_t *panel, const l2_block_q8_K *x, int n_blocks) {
    float32x4_t acc[4];
    for (int qr = 0; qr < 4; qr++) acc[qr] = vdupq_n_f32(0.0f);
    for (int b = 0; b < n_blocks; b++) {
        const uint8_t *v = panel + (size_t)b * L2_Q6_K_PANEL_BLOCK;
        const float32x4_t dx = vdupq_n_f32(x[b].d);
        for (int qr = 0; qr < 4; qr++) {
            const float32x4_t d = vmulq_f32(f16x4(v + 3328 + 8 * qr), dx);
            acc[qr] = vaddq_f32(acc[qr], vmulq_f32(vcvtq_f32_s32(q6_K_quarter(v, qr, &x[b])), d));
        }
    }
    for (int qr = 0; qr < 4; qr++) vst1q_f32(o + 4 * qr, acc[qr]);
}

typedef void (*panel_fn)(float o[16], const uint8_t *panel, const l2_block_q8_K *x, int n_blocks);

/* Each panel of the range against each input; the rows past the matrix's
 * last are not stored. */
static void run_panels(panel_fn panel_of, size_t bytes, float *out, size_t out_stride, const void *panels, int rows,
                       int panel_begin, int panel_end, const l2_block_q8_K *x, size_t x_stride, int n_inputs,
                       int n_blocks) {
    for (int p = panel_begin; p < panel_end; p++) {
        const uint8_t *panel = (const uint8_t *)panels + (size_t)p * bytes;
        const int row0 = p * L2_PANEL_ROWS, n_rows = rows - row0 < L2_PANEL_ROWS ? rows - row0 : L2_PANEL_ROWS;
        for (int i = 0; i < n_inputs; i++) {
            float o[L2_PANEL_ROWS];
            panel_of(o, panel, x + (size_t)i * x_stride, n_blocks);
            memcpy(out + (size_t)i * out_stride + (size_t)row0, o, (size_t)n_rows * sizeof(float));
        }
    }
}

int l2_kquant_panels_neon(void) { return l2_neon_dotprod(); }

void l2_q4_K_panels_neon(float *out, size_t out_stride, const void *panels, int rows, int panel_begin, int panel_end,
                         const l2_block_q8_K *x, size_t x_stride, int n_inputs, int n_blocks) {
    run_panels(q4_K_panel, l2_q4_K_panel_bytes(n_blocks), out, out_stride, panels, rows, panel_begin, panel_end, x,
               x_stride, n_inputs, n_blocks);
}

void l2_q6_K_panels_neon(float *out, size_t out_stride, const void *panels, int rows, int panel_begin, int panel_end,
                         const l2_block_q8_K *x, size_t x_stride, int n_inputs, int n_blocks) {
    run_panels(q6_K_panel, l2_q6_K_panel_bytes(n_blocks), out, out_stride, panels, rows, panel_begin, panel_end, x,
               x_stride, n_inputs, n_blocks);
}

#else

int l2_kquant_panels_neon(void) { return 0; }

/* Never chosen (l2_kquant_panels_neon says so); the reference's. */
void l2_q4_K_panels_neon(float *out, size_t out_stride, const void *panels, int rows, int panel_begin, int panel_end,
                         const l2_block_q8_K *x, size_t x_stride, int n_inputs, int n_blocks) {
    l2_q4_K_panels_ref(out, out_stride, panels, rows, panel_begin, panel_end, x, x_stride, n_inputs, n_blocks);
}

void l2_q6_K_panels_neon(float *out, size_t out_stride, const void *panels, int rows, int panel_begin, int panel_end,
                         const l2_block_q8_K *x, size_t x_stride, int n_inputs, int n_blocks) {
    l2_q6_K_panels_ref(out, out_stride, panels, rows, panel_begin, panel_end, x, x_stride, n_inputs, n_blocks);
}

#endif

#else

/* ISO C forbids an empty translation unit. */
typedef int l2_ops_kquants_neon_unused;

#endif
