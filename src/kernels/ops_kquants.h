/* Kernels on ggml's K-quant super-blocks (GGUF's Q4_K and Q6_K, 256
 * values each), with the activations quantized as llama.cpp does for
 * them: Q8_K blocks of 256 int8 values, an fp32 scale and the sums of
 * each 16 values (Q4_K's mins and Q6_K's offset of 32 need them). A table
 * per level (the scalar reference, AVX2), beside ops_blocks.h's. Every
 * integer sum is exact; the reference adds the scaled sums as ggml's
 * generic dot does (eight lanes, the lanes summed at the end); AVX2 in
 * its own lanes, so within rounding of the reference's, and a table's
 * four-row and two-input dots are its one-row dot's bits for each row and
 * input. The forward pass runs GGUF's Q4_K, Q5_K and Q6_K matrices with them
 * (src/run/products.c). */
#ifndef LLAMA2_OPS_KQUANTS_H
#define LLAMA2_OPS_KQUANTS_H

#include <stddef.h>
#include <stdint.h>

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
    /* Q5_K's one-row, four-row and two-input dots (ops_kquants_q5.c). */
    float (*dot_q5_K)(const l2_block_q5_K *w, const l2_block_q8_K *x, int n_blocks);
    void (*dot4_q5_K)(float out[4], const l2_block_q5_K *w, size_t row_blocks, const l2_block_q8_K *x, int n_blocks);
    void (*dot4x2_q5_K)(float out[8], const l2_block_q5_K *w, size_t row_blocks, const l2_block_q8_K *x,
                        size_t x_stride, int n_blocks);
} l2_kquant_kernels;

const l2_kquant_kernels *l2_kquant_kernels_reference(void);
/* The AVX2 table; NULL where this build or CPU has no AVX2. */
const l2_kquant_kernels *l2_kquant_kernels_avx2(void);
/* The table that goes with a kernel table of ops.h, by its name, as
 * l2_block_kernels_for picks: AVX2 at every x86 level, else the reference. */
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
