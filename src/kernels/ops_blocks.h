/* Kernels on ggml's weight blocks (GGUF's Q8_0 and Q4_0), with the
 * activations quantized as llama.cpp does for them: Q8_0 blocks of 32
 * int8 values and an fp16 scale. A table per level (the scalar reference,
 * AVX2). The quantizer is the reference's bits in every table; the dots
 * may add the scaled block sums in another order (AVX2: in vector lanes,
 * ggml's way), so they are within rounding of the reference's, and a
 * table's four-row dot is its one-row dot's bits for each row. The forward
 * pass runs GGUF's Q8_0 and Q4_0 matrices with them (src/run/products.c). */
#ifndef LLAMA2_OPS_BLOCKS_H
#define LLAMA2_OPS_BLOCKS_H

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
     * same activations: out[r] is the same table's dot_q8_0's (dot_q4_0's)
     * bits for row r. */
    void (*dot4_q8_0)(float out[4], const l2_block_q8_0 *w, size_t row_blocks, const l2_block_q8_0 *x, int n_blocks);
    void (*dot4_q4_0)(float out[4], const l2_block_q4_0 *w, size_t row_blocks, const l2_block_q8_0 *x, int n_blocks);
    /* Four weight rows against two inputs (input i at x + i * x_stride),
     * for prompts (a row's blocks read once for both): out[4 * i + r] is
     * the same table's one-row dot's bits for row r and input i. */
    void (*dot4x2_q8_0)(float out[8], const l2_block_q8_0 *w, size_t row_blocks, const l2_block_q8_0 *x,
                        size_t x_stride, int n_blocks);
    void (*dot4x2_q4_0)(float out[8], const l2_block_q4_0 *w, size_t row_blocks, const l2_block_q8_0 *x,
                        size_t x_stride, int n_blocks);
} l2_block_kernels;

const l2_block_kernels *l2_block_kernels_reference(void);
/* The AVX2 table; NULL where this build or CPU has no AVX2. */
const l2_block_kernels *l2_block_kernels_avx2(void);
/* The block table that goes with a kernel table of ops.h (its name: every
 * x86 level's holds AVX2, so its blocks run AVX2; the others the
 * reference): the level a model runs, capped by LLAMA2_KERNELS, picks its
 * block kernels too, with no entry added to the level tables. */
const l2_block_kernels *l2_block_kernels_for(const char *kernels_name);

/* fp16 bits to fp32 (exact), for the kernels' scales. */
float l2_block_scale(uint16_t h);

#endif
