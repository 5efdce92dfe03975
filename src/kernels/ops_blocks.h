/* Kernels on ggml's weight blocks (GGUF's Q8_0 and Q4_0), with the
 * activations quantized as llama.cpp does for them: Q8_0 blocks of 32
 * int8 values and an fp16 scale. A table per level (the scalar reference,
 * AVX2, AVX512-VNNI). The quantizer is the reference's bits in every
 * table. The Q8_0 dots may add the scaled block sums in another order
 * (AVX2: in vector lanes, ggml's way), so they are within rounding of the
 * reference's, and a table's four-row dot is its one-row dot's bits for
 * each row. Q4_0 matrices run as panels (below), the reference's bits at
 * every level. The forward pass runs GGUF's Q8_0 and Q4_0 matrices with
 * them (src/run/products.c). */
#ifndef LLAMA2_OPS_BLOCKS_H
#define LLAMA2_OPS_BLOCKS_H

#include <stddef.h>
#include <stdint.h>

#define L2_BLOCK 32 /* values in a Q8_0 or Q4_0 block */

/* An fp16 scale, then 32 int8 values. */
typedef struct l2_block_q8_0 {
    uint16_t d;
    int8_t qs[L2_BLOCK];
} l2_block_q8_0;

/* An fp16 scale, then 32 4-bit values stored plus 8: byte j holds value j
 * in its low nibble and value j + 16 in its high one. */
typedef struct l2_block_q4_0 {
    uint16_t d;
    uint8_t qs[L2_BLOCK / 2];
} l2_block_q4_0;

/* What the Q4_0 panel kernels need of an activation block besides its
 * values: its scale widened to fp32 and the sum of its 32 values (the
 * stored nibbles are the values plus 8: a row's dot is the nibbles' dot
 * less 8 times this sum). */
typedef struct l2_block_q8_0_summary {
    float d;
    int32_t sum;
} l2_block_q8_0_summary;

/* Q4_0 panels: a matrix's rows in panels of 16, a panel's blocks side by
 * side so that one vector holds the same 4 values of all 16 rows (each
 * 32-bit lane a row): a product step multiplies 16 rows by one 4-byte
 * piece of the input, and the block scales of the 16 rows are one 32-byte
 * load. Panel p (64-byte aligned, l2_q4_0_panel_bytes apart) holds, for
 * block b: at b * 256, for k = 0..3 and row r = 0..15, bytes 4k..4k+3 of
 * row 16p + r's block b (low nibbles: values 4k..4k+3, high nibbles:
 * values 16+4k..16+4k+3); then from n_blocks * 256 on, block b's 16 fp16
 * scales at b * 32. The rows past the matrix's last are zero. */
#define L2_PANEL_ROWS 16
/* The panel kernels ask for the bytes this far ahead of the block they
 * read, into L2 (x86's T1 hint): the hardware's own prefetch alone left one
 * thread waiting on memory for half its time, and 8 KiB ahead into L1 still
 * a fifth of it (bench/RESULTS.md). */
#define L2_PANEL_PREFETCH 32768
#define L2_PANEL_PREFETCH_HINT _MM_HINT_T1

size_t l2_q4_0_panel_bytes(int n_blocks);
/* The panels of a rows x (n_blocks * 32) Q4_0 matrix (w, row by row):
 * returns their size, and writes them at dst (64-byte aligned) unless dst
 * is NULL. */
size_t l2_q4_0_panels_pack(void *dst, const l2_block_q4_0 *w, int rows, int n_blocks);

typedef struct l2_block_kernels {
    const char *name;
    /* x[n] (n a multiple of 32) into n / 32 blocks, as ggml's reference:
     * d = max|x| / 127, stored as fp16; q = roundf(x * (1 / d)) (0 where d
     * is 0 or 1 / d is not finite). */
    void (*quantize_q8_0)(l2_block_q8_0 *y, const float *x, int n);
    /* The dot product of n_blocks weight blocks with as many activation
     * blocks: the sum of (float)isum * (dw * dx), the scales widened from
     * fp16 (the reference adds them block by block). */
    float (*dot_q8_0)(const l2_block_q8_0 *w, const l2_block_q8_0 *x, int n_blocks);
    float (*dot_q4_0)(const l2_block_q4_0 *w, const l2_block_q8_0 *x, int n_blocks);
    /* Four weight rows at once (row r at w + r * row_blocks) against the
     * same activations: out[r] is the same table's dot_q8_0's bits for
     * row r. */
    void (*dot4_q8_0)(float out[4], const l2_block_q8_0 *w, size_t row_blocks, const l2_block_q8_0 *x, int n_blocks);
    /* Four weight rows against two inputs (input i at x + i * x_stride),
     * for prompts (a row's blocks read once for both): out[4 * i + r] is
     * the same table's one-row dot's bits for row r and input i. */
    void (*dot4x2_q8_0)(float out[8], const l2_block_q8_0 *w, size_t row_blocks, const l2_block_q8_0 *x,
                        size_t x_stride, int n_blocks);
    /* Rows [16 * panel_begin, min(16 * panel_end, rows)) of a Q4_0 matrix
     * held as panels (l2_q4_0_panels_pack) against n_inputs inputs of
     * n_blocks Q8_0 blocks (input i's blocks at x + i * x_stride, their
     * summaries at xs + i * x_stride): out[i * out_stride + r] is the
     * reference's dot_q4_0 of row r and input i, bit for bit (each
     * block's exact integer sum times the scale product, added in block
     * order, nothing fused), whatever the other rows and inputs. */
    void (*q4_0_panels)(float *out, size_t out_stride, const void *panels, int rows, int panel_begin,
                        int panel_end, const l2_block_q8_0 *x, const l2_block_q8_0_summary *xs, size_t x_stride,
                        int n_inputs, int n_blocks);
} l2_block_kernels;

const l2_block_kernels *l2_block_kernels_reference(void);
/* The AVX2 table; NULL where this build or CPU has no AVX2. */
const l2_block_kernels *l2_block_kernels_avx2(void);
/* The AVX512-VNNI table (AVX2's entries but for the Q4_0 panels); NULL
 * where this build or CPU cannot run it. */
const l2_block_kernels *l2_block_kernels_avx512_vnni(void);
/* The neon table (aarch64): every entry the reference's bits; NULL
 * elsewhere. */
const l2_block_kernels *l2_block_kernels_neon(void);
/* The reference's quantizer, which every table holds. */
void l2_quantize_q8_0_ref(l2_block_q8_0 *y, const float *x, int n);
/* The block table that goes with a kernel table of ops.h (its name: every
 * x86 level's holds AVX2, so its blocks run AVX2, the avx512-vnni and amx
 * levels their own panels; the neon levels the neon table; the others the
 * reference): the level a model runs, capped by LLAMA2_KERNELS, picks its
 * block kernels too, with no entry added to the level tables. */
const l2_block_kernels *l2_block_kernels_for(const char *kernels_name);

/* fp16 bits to fp32 (exact), for the kernels' scales. */
float l2_block_scale(uint16_t h);
/* The summaries of n blocks (l2_block_q8_0_summary). */
void l2_block_q8_0_summarize(l2_block_q8_0_summary *s, const l2_block_q8_0 *x, int n);
/* The AVX512-VNNI table's Q4_0 panel kernel (ops_blocks_avx512.c). */
void l2_q4_0_panels_avx512_vnni(float *out, size_t out_stride, const void *panels, int rows, int panel_begin,
                                int panel_end, const l2_block_q8_0 *x, const l2_block_q8_0_summary *xs,
                                size_t x_stride, int n_inputs, int n_blocks);
/* The reference's Q4_0 dot continued from `sum`: blocks added to it in
 * order (dot_q4_0 starts from 0). */
float l2_q4_0_dot_from(float sum, const l2_block_q4_0 *w, const l2_block_q8_0 *x, int n_blocks);
/* The reference's Q4_0 panel kernel, which the other tables fall back on
 * for what they do not vectorize. */
void l2_q4_0_panels_ref(float *out, size_t out_stride, const void *panels, int rows, int panel_begin, int panel_end,
                        const l2_block_q8_0 *x, const l2_block_q8_0_summary *xs, size_t x_stride, int n_inputs,
                        int n_blocks);

#endif
