/* Kernels on ggml's K-quant super-blocks (GGUF's Q4_K and Q6_K, 256
 * values each), with the activations quantized as llama.cpp does for
 * them: Q8_K blocks of 256 int8 values, an fp32 scale and the sums of
 * each 16 values (Q4_K's mins and Q6_K's offset of 32 need them). A table
 * per level (the scalar reference, AVX2, AVX512-VNNI), beside
 * ops_blocks.h's. Every integer sum is exact; the reference's row dots
 * add the scaled sums as ggml's generic dot does (eight lanes, the lanes
 * summed at the end); AVX2 in its own lanes, so within rounding of the
 * reference's, and a table's four-row and two-input dots are its one-row
 * dot's bits for each row and input. Where a table has panel kernels (the
 * reference, AVX512-VNNI, NEON), Q4_K and Q6_K matrices run as panels of 16
 * rows instead (below), in an order of their own (blockwise) whose bits
 * every such table gives; Q5_K runs row by row. The forward pass runs
 * GGUF's Q4_K, Q5_K and Q6_K matrices with them (src/run/products.c). */
#ifndef LLAMA2_OPS_KQUANTS_H
#define LLAMA2_OPS_KQUANTS_H

#include <stddef.h>
#include <stdint.h>

#include "model/float16.h"

#define L2_SUPER_BLOCK 256 /* values in a Q4_K, Q5_K, Q6_K or Q8_K block */

/* 256 4-bit values in 8 sub-blocks of 32, each with a 6-bit scale and a
 * 6-bit min: x = d * scale * q - dmin * min. scales: sub-block j < 4 in
 * the low 6 bits of bytes j (scale) and j + 4 (min); j >= 4 in byte
 * j + 4's nibbles (scale low, min high) with their top 2 bits in the top
 * bits of bytes j - 4 (scale) and j (min). qs: each 32 bytes hold
 * sub-block 2k in their low nibbles and 2k + 1 in their high ones. */
typedef struct l2_block_q4_K {
    uint16_t d, dmin; /* fp16 */
    uint8_t scales[12];
    uint8_t qs[L2_SUPER_BLOCK / 2];
} l2_block_q4_K;

/* 256 6-bit values stored plus 32, a signed 8-bit scale per 16:
 * x = d * scale * (q - 32). Per half h of 128 values, value
 * 128h + 32k + l (k < 4, l < 32) has its low 4 bits in ql[64h + 32 (k % 2)
 * + l] (low nibble for k < 2, high for k >= 2) and its high 2 bits at bit
 * 2k of qh[32h + l]. */
typedef struct l2_block_q6_K {
    uint8_t ql[L2_SUPER_BLOCK / 2];
    uint8_t qh[L2_SUPER_BLOCK / 4];
    int8_t scales[L2_SUPER_BLOCK / 16];
    uint16_t d; /* fp16 */
} l2_block_q6_K;

/* Q4_K with a fifth bit: 256 5-bit values (0-31), the same scales, mins
 * and nibbles as Q4_K; value i's fifth bit is bit i / 32 of qh[i % 32]. */
typedef struct l2_block_q5_K {
    uint16_t d, dmin; /* fp16 */
    uint8_t scales[12];
    uint8_t qh[L2_SUPER_BLOCK / 8];
    uint8_t qs[L2_SUPER_BLOCK / 2];
} l2_block_q5_K;

/* The activations: x = d * q, and bsums[i] the sum of q[16i .. 16i + 16). */
typedef struct l2_block_q8_K {
    float d;
    int8_t qs[L2_SUPER_BLOCK];
    int16_t bsums[L2_SUPER_BLOCK / 16];
} l2_block_q8_K;

typedef struct l2_kquant_kernels {
    const char *name;
    /* x[n] (n a multiple of 256) into n / 256 blocks, as ggml's reference:
     * the value of largest magnitude, max, maps to -127; d = -max / 127 (a
     * block of zeros: d = 0, q = 0); q = min(127, round-half-even(x * -127
     * / max)). x must be finite. */
    void (*quantize_q8_K)(l2_block_q8_K *y, const float *x, int n);
    /* The dot product of n_blocks weight blocks with as many activation
     * blocks. */
    float (*dot_q4_K)(const l2_block_q4_K *w, const l2_block_q8_K *x, int n_blocks);
    float (*dot_q6_K)(const l2_block_q6_K *w, const l2_block_q8_K *x, int n_blocks);
    /* Four weight rows (row r at w + r * row_blocks) against the same
     * activations: out[r] is the same table's one-row dot's bits. */
    void (*dot4_q4_K)(float out[4], const l2_block_q4_K *w, size_t row_blocks, const l2_block_q8_K *x, int n_blocks);
    void (*dot4_q6_K)(float out[4], const l2_block_q6_K *w, size_t row_blocks, const l2_block_q8_K *x, int n_blocks);
    /* Four rows against two inputs (input i at x + i * x_stride), for
     * prompts: out[4 * i + r] is the one-row dot's bits for row r, input i. */
    void (*dot4x2_q4_K)(float out[8], const l2_block_q4_K *w, size_t row_blocks, const l2_block_q8_K *x,
                        size_t x_stride, int n_blocks);
    void (*dot4x2_q6_K)(float out[8], const l2_block_q6_K *w, size_t row_blocks, const l2_block_q8_K *x,
                        size_t x_stride, int n_blocks);
    /* Rows [16 * panel_begin, min(16 * panel_end, rows)) of a Q4_K matrix
     * held as panels (l2_q4_K_panels_pack) against n_inputs inputs of
     * n_blocks Q8_K blocks (input i's at x + i * x_stride):
     * out[i * out_stride + r] is l2_q4_K_dot_blockwise of row r and input
     * i, bit for bit, whatever the other rows and inputs. NULL in a table
     * that runs Q4_K row by row (the matrices are then not packed). */
    void (*q4_K_panels)(float *out, size_t out_stride, const void *panels, int rows, int panel_begin, int panel_end,
                        const l2_block_q8_K *x, size_t x_stride, int n_inputs, int n_blocks);
    /* The same for Q6_K (l2_q6_K_panels_pack, l2_q6_K_dot_blockwise). */
    void (*q6_K_panels)(float *out, size_t out_stride, const void *panels, int rows, int panel_begin, int panel_end,
                        const l2_block_q8_K *x, size_t x_stride, int n_inputs, int n_blocks);
    /* Q5_K's one-row, four-row and two-input dots (ops_kquants_q5.c). */
    float (*dot_q5_K)(const l2_block_q5_K *w, const l2_block_q8_K *x, int n_blocks);
    void (*dot4_q5_K)(float out[4], const l2_block_q5_K *w, size_t row_blocks, const l2_block_q8_K *x, int n_blocks);
    void (*dot4x2_q5_K)(float out[8], const l2_block_q5_K *w, size_t row_blocks, const l2_block_q8_K *x,
                        size_t x_stride, int n_blocks);
} l2_kquant_kernels;

/* Q4_K panels: a matrix's rows in panels of 16 (ops_blocks.h's
 * L2_PANEL_ROWS), one vector holding the same 4 stored bytes of all 16
 * rows (a row a 32-bit lane), so that one VNNI step multiplies 16 rows by
 * 4 bytes of the input. Panel p (64-byte aligned, l2_q4_K_panel_bytes
 * apart) holds its blocks one after the other, L2_Q4_K_PANEL_BLOCK bytes
 * each; block b of the panel, for row r = 0..15 (rows past the matrix's
 * last are zero):
 *   at 512c + 64k + 4r (c = 0..3, k = 0..7): qs[32c + 4k .. 32c + 4k + 3]
 *     (low nibbles: sub-block 2c's values 4k..4k+3; high: 2c + 1's);
 *   at 2048 + 16j + r (j = 0..7): sub-block j's 6-bit scale, a byte;
 *   at 2176 + 32m + 2r + t (m = 0..3, t = 0, 1): sub-block 2m + t's min;
 *   at 2304 + 2r: d; at 2336 + 2r: dmin (fp16). */
#define L2_Q4_K_PANEL_BLOCK 2368

/* The panel kernels' float order (the row-by-row dots add in ggml's eight
 * lanes instead): per block, the exact int32 sum of the scales times
 * their sub-blocks' integer dots, isum, and of the mins times the
 * activations' sums, mins; then sum = sum + (float)isum * (d * dx), then
 * sum = sum - (float)mins * (dmin * dx), blocks in order from 0, nothing
 * fused. */
float l2_q4_K_dot_blockwise(const l2_block_q4_K *w, const l2_block_q8_K *x, int n_blocks);
size_t l2_q4_K_panel_bytes(int n_blocks);
/* The panels of a rows x (n_blocks * 256) Q4_K matrix (w, row by row):
 * returns their size, and writes them at dst (64-byte aligned) unless dst
 * is NULL. */
size_t l2_q4_K_panels_pack(void *dst, const l2_block_q4_K *w, int rows, int n_blocks);
/* The reference's panel kernel (ops_kquants_panels.c) and AVX512-VNNI's
 * (ops_kquants_avx512.c). */
void l2_q4_K_panels_ref(float *out, size_t out_stride, const void *panels, int rows, int panel_begin, int panel_end,
                        const l2_block_q8_K *x, size_t x_stride, int n_inputs, int n_blocks);
void l2_q4_K_panels_avx512_vnni(float *out, size_t out_stride, const void *panels, int rows, int panel_begin,
                                int panel_end, const l2_block_q8_K *x, size_t x_stride, int n_inputs, int n_blocks);

/* Q6_K panels, as Q4_K's: block b of a panel, L2_Q6_K_PANEL_BLOCK bytes,
 * holds for row r = 0..15 (rows past the matrix's last are zero):
 *   at 512c + 64k + 4r (c = 0..3, k = 0..7): ql[32c + 4k .. 32c + 4k + 3];
 *   at 2048 + 512h + 64k + 4r (h = 0, 1; k = 0..7): qh[32h + 4k .. + 3];
 *   at 3072 + 16s + r (s = 0..15): scales[s], a signed byte;
 *   at 3328 + 2r: d (fp16); 32 bytes of zeros to a 64-byte multiple. */
#define L2_Q6_K_PANEL_BLOCK 3392

/* The Q6_K panels' float order: per block, the exact int32 sum over the
 * sub-blocks of 16 of scale * (the dot of the stored values (0-63) with
 * the activations less 32 times their sum), isum; then sum = sum +
 * (float)isum * (d * dx), blocks in order from 0, nothing fused. */
float l2_q6_K_dot_blockwise(const l2_block_q6_K *w, const l2_block_q8_K *x, int n_blocks);
size_t l2_q6_K_panel_bytes(int n_blocks);
size_t l2_q6_K_panels_pack(void *dst, const l2_block_q6_K *w, int rows, int n_blocks);
void l2_q6_K_panels_ref(float *out, size_t out_stride, const void *panels, int rows, int panel_begin, int panel_end,
                        const l2_block_q8_K *x, size_t x_stride, int n_inputs, int n_blocks);
void l2_q6_K_panels_avx512_vnni(float *out, size_t out_stride, const void *panels, int rows, int panel_begin,
                                int panel_end, const l2_block_q8_K *x, size_t x_stride, int n_inputs, int n_blocks);
/* The AVX2 levels' panels (ops_kquants_avx2_panels.c). */
void l2_q4_K_panels_avx2(float *out, size_t out_stride, const void *panels, int rows, int panel_begin, int panel_end,
                         const l2_block_q8_K *x, size_t x_stride, int n_inputs, int n_blocks);
void l2_q6_K_panels_avx2(float *out, size_t out_stride, const void *panels, int rows, int panel_begin, int panel_end,
                         const l2_block_q8_K *x, size_t x_stride, int n_inputs, int n_blocks);

/* The neon level's panels (ops_kquants_neon.c: sdot, the reference
 * panels' bits), where l2_kquant_panels_neon says this CPU and build run
 * them. */
int l2_kquant_panels_neon(void);
void l2_q4_K_panels_neon(float *out, size_t out_stride, const void *panels, int rows, int panel_begin, int panel_end,
                         const l2_block_q8_K *x, size_t x_stride, int n_inputs, int n_blocks);
void l2_q6_K_panels_neon(float *out, size_t out_stride, const void *panels, int rows, int panel_begin, int panel_end,
                         const l2_block_q8_K *x, size_t x_stride, int n_inputs, int n_blocks);

const l2_kquant_kernels *l2_kquant_kernels_reference(void);
/* The neon table: the reference's entries but the panels, NEON's; NULL
 * off aarch64 or without sdot. */
const l2_kquant_kernels *l2_kquant_kernels_neon(void);
/* The AVX2 table; NULL where this build or CPU has no AVX2. */
const l2_kquant_kernels *l2_kquant_kernels_avx2(void);
/* The AVX512-VNNI table: AVX2's entries and the Q4_K and Q6_K panels; NULL where
 * this build or CPU cannot run it. */
const l2_kquant_kernels *l2_kquant_kernels_avx512_vnni(void);
/* The table that goes with a kernel table of ops.h, by its name, as
 * l2_block_kernels_for picks: AVX512-VNNI at the levels with it, AVX2 at
 * the other x86 levels, neon's at the neon levels where it runs, else the
 * reference. */
const l2_kquant_kernels *l2_kquant_kernels_for(const char *kernels_name);

/* Sub-block j's (0-7) 6-bit scale and min of a Q4_K block. */
static inline void l2_q4_K_scale_min(const uint8_t scales[12], int j, int *scale, int *min) {
    if (j < 4) {
        *scale = scales[j] & 63;
        *min = scales[j + 4] & 63;
    } else {
        *scale = (scales[j + 4] & 0x0F) | ((scales[j - 4] >> 6) << 4);
        *min = (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4);
    }
}

/* Value i (0-255) of a Q4_K block's nibbles qs, 0-15; with qh (Q5_K's
 * fifth bits) bit i / 32 of qh[i % 32] added as 16, 0-31. */
static inline int l2_q4_K_value(const uint8_t qs[L2_SUPER_BLOCK / 2], const uint8_t *qh, int i) {
    const uint8_t byte = qs[(i / 64) * 32 + i % 32];
    const int low = (i / 32) % 2 ? byte >> 4 : byte & 0x0F;
    return qh ? low | ((qh[i % 32] >> (i / 32)) & 1) << 4 : low;
}

/* One block of the reference's Q4_K dot (qh NULL) or Q5_K dot (qh its
 * fifth bits), as ggml's generic dot: the values' products with x times
 * their sub-block's scale summed exactly into eight int32 lanes (value i
 * into lane i % 8), each lane times w_d * x->d added into lanes[l]; the
 * min term, the exact sum of min_j times x's sum over sub-block j, times
 * w_dmin * x->d subtracted from *sum (w_d, w_dmin: the block's fp16 d and
 * dmin). Inline, so that Q4_K's NULL folds. */
static inline void l2_q4_K_block_ref(float lanes[8], float *sum, uint16_t w_d, uint16_t w_dmin,
                                     const uint8_t scales[12], const uint8_t qs[L2_SUPER_BLOCK / 2], const uint8_t *qh,
                                     const l2_block_q8_K *x) {
    int32_t isum[8] = {0}, mins = 0;
    for (int j = 0; j < 8; j++) {
        int scale, min;
        l2_q4_K_scale_min(scales, j, &scale, &min);
        mins += min * (x->bsums[2 * j] + x->bsums[2 * j + 1]);
        for (int i = 32 * j; i < 32 * j + 32; i++) isum[i % 8] += scale * (l2_q4_K_value(qs, qh, i) * x->qs[i]);
    }
    const float d = l2_f16_to_f32(w_d) * x->d, dmin = l2_f16_to_f32(w_dmin) * x->d;
    for (int l = 0; l < 8; l++) lanes[l] += d * (float)isum[l];
    *sum -= dmin * (float)mins;
}

/* Q5_K's dots of the reference and of AVX2 (ops_kquants_q5.c,
 * ops_kquants_q5_avx2.c), as their tables hold them. */
float l2_dot_q5_K_ref(const l2_block_q5_K *w, const l2_block_q8_K *x, int n_blocks);
void l2_dot4_q5_K_ref(float out[4], const l2_block_q5_K *w, size_t row_blocks, const l2_block_q8_K *x, int n_blocks);
void l2_dot4x2_q5_K_ref(float out[8], const l2_block_q5_K *w, size_t row_blocks, const l2_block_q8_K *x,
                        size_t x_stride, int n_blocks);
float l2_dot_q5_K_avx2(const l2_block_q5_K *w, const l2_block_q8_K *x, int n_blocks);
void l2_dot4_q5_K_avx2(float out[4], const l2_block_q5_K *w, size_t row_blocks, const l2_block_q8_K *x, int n_blocks);
void l2_dot4x2_q5_K_avx2(float out[8], const l2_block_q5_K *w, size_t row_blocks, const l2_block_q8_K *x,
                         size_t x_stride, int n_blocks);

/* The reference's quantizer, which every table holds. */
void l2_quantize_q8_K_ref(l2_block_q8_K *y, const float *x, int n);

/* Round half to even, as ggml's nearest_int (|v| below 2^22). */
int l2_nearest_int(float v);

#endif
