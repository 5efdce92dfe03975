/*
 * The AVX-512 fp32 product (matmul_f32) of the avx512, avx512-vnni and amx
 * tables: every dot product one fixed arithmetic, whatever the inputs and
 * rows computed with it (dot16 below), for one input or many; the exact
 * tables use the reference's. The int8 products are ops_avx2_q8.c's (built
 * with AVX512-VNNI in ops_avx512_vnni_q8.c) and ops_amx.c's.
 */
#if defined(__x86_64__) || defined(__i386__)

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ops.h"
#include "ops_isa.h"

#define X86_W 512
#include "ops_x86_width.h"

/* -------------------------------------------------------- matmul_f32 */

/* Every dot product of W[r] and x[b] is summed as dot16: the columns in
 * blocks of MM_BLOCK from column 0; in a block, lane j (0..15) of one
 * accumulator takes the columns j, j + 16, j + 32, ... in order, one fused
 * multiply-add each, from +0 (the columns past the block's last multiple of
 * 16 are a masked load: their lanes add exact zeros); lanes j and j + 8 are
 * added (fold16), then the 8 sums as ((s0 + s1) + (s2 + s3)) + ((s4 + s5) +
 * (s6 + s7)) (hsum4x8); the blocks' sums are added in order. So a row's
 * result does not depend on the number of inputs, the rows around it or the
 * split into tasks: an input's logits are the same alone and in a batch.
 *
 * One input (generation) is bound by memory bandwidth: rows are read eight
 * at a time from eight parts of the range (eight long streams), one
 * accumulator each. Several inputs (prompt blocks, batches of sequences)
 * are bound by the multiply-adds: a register tile of 4 rows x 6 inputs, 24
 * accumulators of the 32 registers, loads 10 vectors per 24 multiply-adds;
 * the blocks keep the inputs' columns of a block in L2 while every row
 * passes over them. */
#define MM_BLOCK 512

/* One input, eight rows w[0..7] (any eight), columns [k0, k1): lanes 0-3
 * of *lo the dots of rows 0-3, of *hi rows 4-7. */
AVX512_INLINE void gemv8_f32(__m128 *lo, __m128 *hi, const float *x, const float *const w[8], size_t k0, size_t k1) {
    __m512 a[8];
#pragma GCC unroll 8
    for (int r = 0; r < 8; r++) a[r] = _mm512_setzero_ps();
    size_t k = k0;
    for (; k + 16 <= k1; k += 16) {
        const __m512 xv = _mm512_loadu_ps(x + k);
#pragma GCC unroll 8
        for (int r = 0; r < 8; r++) a[r] = _mm512_fmadd_ps(_mm512_loadu_ps(w[r] + k), xv, a[r]);
    }
    if (k < k1) {
        const __mmask16 m = tail16((int)(k1 - k));
        const __m512 xv = _mm512_maskz_loadu_ps(m, x + k);
#pragma GCC unroll 8
        for (int r = 0; r < 8; r++) a[r] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w[r] + k), xv, a[r]);
    }
    *lo = hsum4x8(fold16(a[0]), fold16(a[1]), fold16(a[2]), fold16(a[3]));
    *hi = hsum4x8(fold16(a[4]), fold16(a[5]), fold16(a[6]), fold16(a[7]));
}

/* The eight dots over all the columns, block by block, into out8[0..7]. */
AVX512_INLINE void gemv8_blocks(float out8[8], const float *x, const float *const w[8], size_t cols) {
    __m128 lo, hi;
    gemv8_f32(&lo, &hi, x, w, 0, cols < MM_BLOCK ? cols : MM_BLOCK);
    for (size_t k0 = MM_BLOCK; k0 < cols; k0 += MM_BLOCK) {
        __m128 l, h;
        gemv8_f32(&l, &h, x, w, k0, cols - k0 < MM_BLOCK ? cols : k0 + MM_BLOCK);
        lo = _mm_add_ps(lo, l);
        hi = _mm_add_ps(hi, h);
    }
    _mm_storeu_ps(out8, lo);
    _mm_storeu_ps(out8 + 4, hi);
}

/* One input: the rows [row_begin, row_end) as eight parts, each row of a
 * group of eight from its own part; the rows left over run through the
 * same code with their row repeated. */
AVX512_FN static void gemv_f32(float *out, const float *x, const float *w, size_t cols, int row_begin, int row_end) {
    const int q = (row_end - row_begin) / 8;
    float o[8];
    for (int i = 0; i < q; i++) {
        const float *w8[8];
        for (int j = 0; j < 8; j++) w8[j] = w + (size_t)(row_begin + i + j * q) * cols;
        gemv8_blocks(o, x, w8, cols);
        for (int j = 0; j < 8; j++) out[row_begin + i + j * q] = o[j];
    }
    for (int r = row_begin + 8 * q; r < row_end; r++) {
        const float *wr = w + (size_t)r * cols;
        const float *w8[8] = {wr, wr, wr, wr, wr, wr, wr, wr};
        gemv8_blocks(o, x, w8, cols);
        out[r] = o[0];
    }
}

/* Several inputs: tiles of 4 rows x 6 inputs (ops_x86_tiles.h) and one of
 * the remainder. */
#define MM_R 4
#define MM_B 6
#define MM_NEXT_TILE(left) ((left) < 6 ? (left) : 6)
#define X86_DOT_TILE
#include "ops_x86_tiles.h"

#include "ops_x86_matmul_f32.h"

#else

/* ISO C forbids an empty translation unit. */
typedef int l2_ops_avx512_matmul_unused;

#endif
