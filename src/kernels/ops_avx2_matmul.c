/*
 * The AVX2 + FMA fp32 product (matmul_f32) of the avx2 and avx2-vnni tables:
 * every dot product one fixed arithmetic, whatever the inputs and rows
 * computed with it (dot8 below); the exact tables use the reference's. The
 * int8 products are ops_avx2_q8.c's.
 */
#if defined(__x86_64__) || defined(__i386__)

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ops.h"
#include "ops_isa.h"

#define X86_W 256
#include "ops_x86_width.h"

/* -------------------------------------------------------- matmul_f32 */

/* Every dot product of W[r] and x[b] is summed as dot8: the columns in
 * blocks of MM_BLOCK from column 0; in a block, lane j (0..7) of one
 * accumulator takes the columns j, j + 8, j + 16, ... in order, one fused
 * multiply-add each, from +0 (the columns past the block's last multiple of
 * 8 are a masked load: their lanes add exact zeros), and the 8 lanes are
 * added as ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)) (hsum4x8,
 * which reduces each of its vectors on its own); the blocks' sums are added
 * in order. So a row's result does not depend on the number of inputs, the
 * rows around it or the split into tasks: an input's logits are the same
 * alone and in a batch.
 *
 * One input (generation) is bound by memory bandwidth: rows are read four
 * at a time, one accumulator each. Several inputs (prompt blocks, batches of
 * sequences) are bound by the multiply-adds: a register tile of 4 rows x 3
 * inputs, 12 accumulators, loads 7 vectors per 12 multiply-adds; the blocks
 * keep the inputs' columns of a block in L2 while every row passes over
 * them. */
#define MM_BLOCK 512

/* One input, four rows (any four: w0..w3), columns [k0, k1). */
AVX2_INLINE __m128 gemv4_f32(const float *x, const float *w0, const float *w1, const float *w2, const float *w3,
                             size_t k0, size_t k1) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    size_t k = k0;
    for (; k + 8 <= k1; k += 8) {
        __m256 xv = _mm256_loadu_ps(x + k);
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + k), xv, a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + k), xv, a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w2 + k), xv, a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w3 + k), xv, a3);
    }
    if (k < k1) {
        __m256i m = tail_mask((int)(k1 - k));
        __m256 xv = _mm256_maskload_ps(x + k, m);
        a0 = _mm256_fmadd_ps(_mm256_maskload_ps(w0 + k, m), xv, a0);
        a1 = _mm256_fmadd_ps(_mm256_maskload_ps(w1 + k, m), xv, a1);
        a2 = _mm256_fmadd_ps(_mm256_maskload_ps(w2 + k, m), xv, a2);
        a3 = _mm256_fmadd_ps(_mm256_maskload_ps(w3 + k, m), xv, a3);
    }
    return hsum4x8(a0, a1, a2, a3);
}

/* The four dots over all the columns, block by block. */
AVX2_INLINE __m128 gemv4_blocks(const float *x, const float *w0, const float *w1, const float *w2, const float *w3,
                                size_t cols) {
    __m128 sum = gemv4_f32(x, w0, w1, w2, w3, 0, cols < MM_BLOCK ? cols : MM_BLOCK);
    for (size_t k0 = MM_BLOCK; k0 < cols; k0 += MM_BLOCK)
        sum = _mm_add_ps(sum, gemv4_f32(x, w0, w1, w2, w3, k0, cols - k0 < MM_BLOCK ? cols : k0 + MM_BLOCK));
    return sum;
}

/* One input: the rows [row_begin, row_end) as four quarters, each row of a
 * group of four taken from its own quarter, so that the weights are read as
 * four long sequential streams (rows of a few KiB read four at a time, side
 * by side, are short streams that the hardware prefetcher follows poorly).
 * The rows left over are run through the same code with their row
 * repeated. */
AVX2_FN static void gemv_f32(float *out, const float *x, const float *w, size_t cols, int row_begin, int row_end) {
    const int q = (row_end - row_begin) / 4;
    const size_t qc = (size_t)q * cols;
    for (int i = 0; i < q; i++) {
        const int r = row_begin + i;
        const float *w0 = w + (size_t)r * cols;
        __m128 v = gemv4_blocks(x, w0, w0 + qc, w0 + 2 * qc, w0 + 3 * qc, cols);
        out[r] = _mm_cvtss_f32(v);
        out[r + q] = _mm_cvtss_f32(_mm_shuffle_ps(v, v, 1));
        out[r + 2 * q] = _mm_cvtss_f32(_mm_shuffle_ps(v, v, 2));
        out[r + 3 * q] = _mm_cvtss_f32(_mm_shuffle_ps(v, v, 3));
    }
    for (int r = row_begin + 4 * q; r < row_end; r++) {
        const float *wr = w + (size_t)r * cols;
        out[r] = _mm_cvtss_f32(gemv4_blocks(x, wr, wr, wr, wr, cols));
    }
}

/* Several inputs: tiles of 4 rows x 3 inputs (ops_x86_tiles.h), a
 * remainder as tiles of 2 and 1 (4 as 2 + 2). */
#define MM_R 4
#define MM_B 3
#define MM_NEXT_TILE(left) ((left) >= 3 && (left) != 4 ? 3 : (left) >= 2 ? 2 : 1)
#define X86_DOT_TILE
#include "ops_x86_tiles.h"

#include "ops_x86_matmul_f32.h"

#else

/* ISO C forbids an empty translation unit. */
typedef int l2_ops_avx2_matmul_unused;

#endif
