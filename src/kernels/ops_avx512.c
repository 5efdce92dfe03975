/*
 * The AVX-512 kernel tables (AVX-512 F, BW and VL: Skylake-X, Ice Lake,
 * Sapphire Rapids, Zen 4 and later): three levels that share the fp32
 * kernels of this file and differ in their int8 products:
 *   avx512: the AVX2 int8 kernels (ops_avx2_q8.c);
 *   avx512-vnni: the same with AVX512-VNNI's dot instructions
 *       (ops_avx512_vnni_q8.c);
 *   amx: those, and AMX-INT8 tile products for int8 prompt blocks over a
 *       copy of the weights in tile order (ops_amx.c).
 *
 * The fast table against ops_ref.c:
 *   rmsnorm: the sum of squares in several accumulators (reordered);
 *   softmax, swiglu: the AVX2 tables' vectorised expf (exp8 on each half of
 *       a vector: the same bits); softmax sums in index order;
 *   matmul_f32: every dot product one fixed arithmetic, whatever the inputs
 *       and rows computed with it (dot16 below), for one input or many;
 *   attention: per query, the reference's sums in its order with fused
 *       roundings and the vectorised expf: exactly the AVX2 fast table's
 *       arithmetic, which it calls for fewer than 4 queries, so that a query
 *       alone and in a block get the same bits;
 *   add and the int8 entries: the reference's bits.
 * The exact tables keep the reference's rmsnorm, softmax, swiglu and
 * matmul_f32 and the AVX2 exact attention: every entry gives the
 * reference's bits.
 */
#if defined(__x86_64__) || defined(__i386__)

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ops.h"
#include "ops_avx2_util.h"
#include "ops_isa.h"

#define AVX512_FN L2_TARGET(L2_AVX512)
#define AVX512_INLINE L2_INLINE(L2_AVX512)

/* ------------------------------------------------------------ helpers */

/* The first rem (1..16) lanes. */
AVX512_INLINE __mmask16 tail16(int rem) { return (__mmask16)((1u << rem) - 1u); }

AVX512_INLINE __m256 low8(__m512 v) { return _mm512_castps512_ps256(v); }
AVX512_INLINE __m256 high8(__m512 v) { return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)); }
AVX512_INLINE __m512 join8(__m256 lo, __m256 hi) {
    return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(_mm512_castps256_ps512(lo)), _mm256_castps_pd(hi), 1));
}

/* Lane j + lane j + 8 of v, j < 8. */
AVX512_INLINE __m256 fold16(__m512 v) { return _mm256_add_ps(low8(v), high8(v)); }

/* The largest of 16 lanes. */
AVX512_INLINE float hmax16(__m512 v) { return hmax8(_mm256_max_ps(low8(v), high8(v))); }

/* e^x: ops_avx2_util.h's exp8 on each half, the AVX2 tables' bits. */
AVX512_INLINE __m512 exp16(__m512 x) { return join8(exp8(low8(x)), exp8(high8(x))); }

/* ----------------------------------------------------------- vectors */

AVX512_FN static float sum_of_squares(const float *x, int n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 64 <= n; i += 64) {
        __m512 a = _mm512_loadu_ps(x + i), b = _mm512_loadu_ps(x + i + 16);
        __m512 c = _mm512_loadu_ps(x + i + 32), d = _mm512_loadu_ps(x + i + 48);
        s0 = _mm512_fmadd_ps(a, a, s0);
        s1 = _mm512_fmadd_ps(b, b, s1);
        s2 = _mm512_fmadd_ps(c, c, s2);
        s3 = _mm512_fmadd_ps(d, d, s3);
    }
    for (; i + 16 <= n; i += 16) {
        __m512 a = _mm512_loadu_ps(x + i);
        s0 = _mm512_fmadd_ps(a, a, s0);
    }
    if (i < n) {
        __m512 a = _mm512_maskz_loadu_ps(tail16(n - i), x + i);
        s1 = _mm512_fmadd_ps(a, a, s1);
    }
    __m256 s = fold16(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
    return _mm_cvtss_f32(hsum4x8(s, s, s, s));
}

AVX512_FN static void rmsnorm_avx512(float *out, const float *x, const float *weight, int n, float eps) {
    float ss = sum_of_squares(x, n);
    ss /= (float)n;
    ss += eps;
    ss = 1.0f / sqrtf(ss);
    const __m512 s = _mm512_set1_ps(ss);
    int i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(out + i, _mm512_mul_ps(_mm512_loadu_ps(weight + i), _mm512_mul_ps(s, _mm512_loadu_ps(x + i))));
    if (i < n) {
        const __mmask16 m = tail16(n - i);
        __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, weight + i), _mm512_mul_ps(s, _mm512_maskz_loadu_ps(m, x + i)));
        _mm512_mask_storeu_ps(out + i, m, v);
    }
}

/* The exponentials are vectorised; their sum runs in index order, as each
 * query's does in the blocked attention (attn_softmax), so that a query
 * alone and in a block get the same bits. */
AVX512_FN static void softmax_avx512(float *x, int n) {
    if (n <= 0) return;
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    __m512 mv = ninf;
    int i = 0;
    for (; i + 16 <= n; i += 16) mv = _mm512_max_ps(_mm512_loadu_ps(x + i), mv);
    if (i < n) mv = _mm512_max_ps(_mm512_mask_loadu_ps(ninf, tail16(n - i), x + i), mv);
    const __m512 max = _mm512_set1_ps(hmax16(mv));
    float sum = 0.0f;
    _Alignas(64) float e[16];
    for (i = 0; i < n; i += 16) {
        const int len = n - i < 16 ? n - i : 16;
        const __mmask16 m = tail16(len);
        _mm512_store_ps(e, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), max)));
        _mm512_mask_storeu_ps(x + i, m, _mm512_load_ps(e));
        for (int j = 0; j < len; j++) sum += e[j];
    }
    const __m512 sv = _mm512_set1_ps(sum);
    for (i = 0; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, _mm512_div_ps(_mm512_loadu_ps(x + i), sv));
    if (i < n) {
        const __mmask16 m = tail16(n - i);
        _mm512_mask_storeu_ps(x + i, m, _mm512_div_ps(_mm512_maskz_loadu_ps(m, x + i), sv));
    }
}

AVX512_INLINE __m512 swiglu16(__m512 g, __m512 u) {
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), g));
    __m512 s = _mm512_div_ps(one, _mm512_add_ps(one, e));
    return _mm512_mul_ps(_mm512_mul_ps(g, s), u);
}

AVX512_FN static void swiglu_avx512(float *gate, const float *up, int n) {
    int i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(gate + i, swiglu16(_mm512_loadu_ps(gate + i), _mm512_loadu_ps(up + i)));
    if (i < n) {
        const __mmask16 m = tail16(n - i);
        _mm512_mask_storeu_ps(gate + i, m, swiglu16(_mm512_maskz_loadu_ps(m, gate + i), _mm512_maskz_loadu_ps(m, up + i)));
    }
}

AVX512_FN static void add_avx512(float *y, const float *x, int n) {
    int i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_add_ps(_mm512_loadu_ps(y + i), _mm512_loadu_ps(x + i)));
    if (i < n) {
        const __mmask16 m = tail16(n - i);
        _mm512_mask_storeu_ps(y + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, y + i), _mm512_maskz_loadu_ps(m, x + i)));
    }
}

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

/* Several inputs: tiles of R <= 4 rows x B <= 6 inputs over the columns of
 * one block [k0, k1). The empty asm statements keep each loaded vector in a
 * register (without them the compiler folds the loads into the
 * multiply-adds and loads every vector four or six times). */
#define MM_R 4
#define MM_B 6

AVX512_INLINE void dot_tile_step(__m512 acc[MM_R][MM_B], const float *const w[MM_R], const float *x, size_t cols,
                                 size_t k, size_t kw, __mmask16 m, int masked, int R, int B) {
    __m512 xv[MM_B];
#pragma GCC unroll 6
    for (int b = 0; b < MM_B; b++) {
        if (b >= B) continue;
        xv[b] = masked ? _mm512_maskz_loadu_ps(m, x + (size_t)b * cols + k) : _mm512_loadu_ps(x + (size_t)b * cols + k);
        L2_KEEP_IN_REGISTER(xv[b]);
    }
#pragma GCC unroll 4
    for (int r = 0; r < MM_R; r++) {
        if (r >= R) continue;
        __m512 wv = masked ? _mm512_maskz_loadu_ps(m, w[r] + kw) : _mm512_loadu_ps(w[r] + kw);
        L2_KEEP_IN_REGISTER(wv);
#pragma GCC unroll 6
        for (int b = 0; b < MM_B; b++) {
            if (b >= B) continue;
            acc[r][b] = _mm512_fmadd_ps(wv, xv[b], acc[r][b]);
        }
    }
}

/* One tile: out[b * os + r] = the block's dot, or the sum so far plus it
 * after the first block. w[r] points at row r's column k0. */
AVX512_INLINE void dot_tile(float *out, size_t os, const float *x, const float *const w[MM_R], size_t cols, size_t k0,
                            size_t k1, int R, int B) {
    __m512 acc[MM_R][MM_B];
#pragma GCC unroll 4
    for (int r = 0; r < MM_R; r++)
#pragma GCC unroll 6
        for (int b = 0; b < MM_B; b++) acc[r][b] = _mm512_setzero_ps();
    size_t k = k0;
    for (; k + 16 <= k1; k += 16) dot_tile_step(acc, w, x, cols, k, k - k0, 0, 0, R, B);
    if (k < k1) dot_tile_step(acc, w, x, cols, k, k - k0, tail16((int)(k1 - k)), 1, R, B);
#pragma GCC unroll 6
    for (int b = 0; b < MM_B; b++) {
        if (b >= B) continue;
        store_row_dots(out + (size_t)b * os, fold16(acc[0][b]), fold16(acc[1][b]), fold16(acc[2][b]),
                       fold16(acc[3][b]), k0, R);
    }
}

/* The B-input tile for a count known only at run time, its constants for
 * the compiler. */
AVX512_INLINE void dot_tile_any(float *out, size_t os, const float *x, const float *const w[MM_R], size_t cols,
                                size_t k0, size_t k1, int R, int B) {
    switch (B) {
    case 1: dot_tile(out, os, x, w, cols, k0, k1, R, 1); break;
    case 2: dot_tile(out, os, x, w, cols, k0, k1, R, 2); break;
    case 3: dot_tile(out, os, x, w, cols, k0, k1, R, 3); break;
    case 4: dot_tile(out, os, x, w, cols, k0, k1, R, 4); break;
    case 5: dot_tile(out, os, x, w, cols, k0, k1, R, 5); break;
    default: dot_tile(out, os, x, w, cols, k0, k1, R, 6); break;
    }
}

/* R rows against nb inputs over one block (ops_x86_matmul_f32.h): tiles of
 * 6 inputs and one of the remainder. */
AVX512_INLINE void dot_rows(float *out, size_t os, const float *x, int nb, const float *w, size_t ws, size_t cols,
                            size_t k0, size_t k1, uintptr_t next, size_t ns, int R) {
    const float *wr[MM_R];
    for (int r = 0; r < MM_R; r++) wr[r] = w + (size_t)(r < R ? r : 0) * ws;
    next_block ahead = next_block_of(next, ns, MM_R, k1 - k0, (size_t)(nb + MM_B - 1) / MM_B);
    for (int b = 0; b < nb; b += MM_B) {
        next_block_share(&ahead);
        if (nb - b >= MM_B)
            dot_tile(out + (size_t)b * os, os, x + (size_t)b * cols, wr, cols, k0, k1, R, MM_B);
        else
            dot_tile_any(out + (size_t)b * os, os, x + (size_t)b * cols, wr, cols, k0, k1, R, nb - b);
    }
}

#define MM_FN AVX512_FN
#include "ops_x86_matmul_f32.h"

AVX512_FN static void matmul_f32_avx512(float *out, int out_stride, const float *x, int nb, const float *w, int cols,
                                        int row_begin, int row_end) {
    if (nb == 1)
        gemv_f32(out, x, w, (size_t)cols, row_begin, row_end);
    else if (nb <= MM_FEW_INPUTS)
        gemm_few_f32(out, (size_t)out_stride, x, nb, w, (size_t)cols, row_begin, row_end);
    else
        gemm_f32(out, (size_t)out_stride, x, nb, w, (size_t)cols, row_begin, row_end);
}

/* --------------------------------------------------------- attention */

/* As in ops_avx2.c, the queries are the vector lanes: qt[d][16] holds
 * dimension d of every query (one vector), the scores go to s[t][16]; the
 * scores are register tiles of up to 8 keys x 16 queries (each key value
 * broadcast), the softmax of every query runs down its lane, and the output
 * tiles are up to 8 queries x 32 dimensions (each probability broadcast).
 * Per query every sum is the AVX2 fast table's, in the reference's order:
 * the dot product over d (fused), the division by the scale, exp8, the
 * softmax sums over t, the output over t (fused); queries that see fewer
 * keys than the call's largest n_keys get exactly 0 for the positions past
 * theirs, which changes none of their sums. */
#define AT_Q 16 /* L2_ATTENTION_MAX_QUERIES */
#define AT_KT 8 /* keys per score tile */
#define AT_QT 8 /* queries per output tile */

/* s[(t + j) * 16 + lane] = dot(query lane, key t + j) / scale, j < KT. */
AVX512_INLINE void attn_scores_tile(float *s, const float *qt, const float *k, size_t kv_stride, int hs,
                                    __m512 scale, int KT) {
    __m512 acc[AT_KT];
#pragma GCC unroll 8
    for (int j = 0; j < AT_KT; j++) acc[j] = _mm512_setzero_ps();
    for (int d = 0; d < hs; d++) {
        const __m512 qv = _mm512_loadu_ps(qt + (size_t)d * AT_Q);
#pragma GCC unroll 8
        for (int j = 0; j < AT_KT; j++) {
            if (j >= KT) continue;
            acc[j] = _mm512_fmadd_ps(qv, _mm512_set1_ps(k[(size_t)j * kv_stride + (size_t)d]), acc[j]);
        }
    }
#pragma GCC unroll 8
    for (int j = 0; j < AT_KT; j++) {
        if (j >= KT) continue;
        _mm512_storeu_ps(s + (size_t)j * AT_Q, _mm512_div_ps(acc[j], scale));
    }
}

AVX512_FN static void attn_scores(float *s, const float *qt, const float *k, size_t kv_stride, int hs, __m512 scale,
                                  int kt) {
    switch (kt) {
    case 1: attn_scores_tile(s, qt, k, kv_stride, hs, scale, 1); break;
    case 2: attn_scores_tile(s, qt, k, kv_stride, hs, scale, 2); break;
    case 3: attn_scores_tile(s, qt, k, kv_stride, hs, scale, 3); break;
    case 4: attn_scores_tile(s, qt, k, kv_stride, hs, scale, 4); break;
    case 5: attn_scores_tile(s, qt, k, kv_stride, hs, scale, 5); break;
    case 6: attn_scores_tile(s, qt, k, kv_stride, hs, scale, 6); break;
    case 7: attn_scores_tile(s, qt, k, kv_stride, hs, scale, 7); break;
    default: attn_scores_tile(s, qt, k, kv_stride, hs, scale, 8); break;
    }
}

/* out[j][0..DW) = sum over t < n of s[t][j] * v[t][0..DW) for j < QT; s
 * points at the tile's first query lane. */
AVX512_INLINE void attn_values_tile(float *const *out, const float *s, const float *v, size_t kv_stride, int n,
                                    int QT, int DW) {
    __m512 acc[AT_QT][2];
#pragma GCC unroll 8
    for (int j = 0; j < AT_QT; j++) acc[j][0] = acc[j][1] = _mm512_setzero_ps();
    for (int t = 0; t < n; t++) {
        const float *vt = v + (size_t)t * kv_stride;
        __m512 v0 = _mm512_loadu_ps(vt), v1 = v0;
        if (DW > 16) v1 = _mm512_loadu_ps(vt + 16);
#pragma GCC unroll 8
        for (int j = 0; j < AT_QT; j++) {
            if (j >= QT) continue;
            const __m512 p = _mm512_set1_ps(s[(size_t)t * AT_Q + (size_t)j]);
            acc[j][0] = _mm512_fmadd_ps(p, v0, acc[j][0]);
            if (DW > 16) acc[j][1] = _mm512_fmadd_ps(p, v1, acc[j][1]);
        }
    }
#pragma GCC unroll 8
    for (int j = 0; j < AT_QT; j++) {
        if (j >= QT) continue;
        _mm512_storeu_ps(out[j], acc[j][0]);
        if (DW > 16) _mm512_storeu_ps(out[j] + 16, acc[j][1]);
    }
}

#define ATTN_VALUES_CASES(DW)                                                                                  \
    switch (qt) {                                                                                              \
    case 1: attn_values_tile(out, s, v, kv_stride, n, 1, DW); break;                                           \
    case 2: attn_values_tile(out, s, v, kv_stride, n, 2, DW); break;                                           \
    case 3: attn_values_tile(out, s, v, kv_stride, n, 3, DW); break;                                           \
    case 4: attn_values_tile(out, s, v, kv_stride, n, 4, DW); break;                                           \
    case 5: attn_values_tile(out, s, v, kv_stride, n, 5, DW); break;                                           \
    case 6: attn_values_tile(out, s, v, kv_stride, n, 6, DW); break;                                           \
    case 7: attn_values_tile(out, s, v, kv_stride, n, 7, DW); break;                                           \
    default: attn_values_tile(out, s, v, kv_stride, n, 8, DW); break;                                          \
    }

AVX512_FN static void attn_values32(float *const *out, const float *s, const float *v, size_t kv_stride, int n,
                                    int qt) {
    ATTN_VALUES_CASES(32)
}

AVX512_FN static void attn_values16(float *const *out, const float *s, const float *v, size_t kv_stride, int n,
                                    int qt) {
    ATTN_VALUES_CASES(16)
}

/* The softmax of every lane of s[0..n)[16] over its first n_keys[lane]
 * rows; the rows past a lane's n_keys become 0. */
AVX512_FN static void attn_softmax(float *s, int n, const int *n_keys, int nq) {
    int32_t lim[AT_Q];
    for (int i = 0; i < AT_Q; i++) lim[i] = i < nq ? n_keys[i] : 0;
    const __m512i limv = _mm512_loadu_si512(lim);
    const __m512 ninf = _mm512_set1_ps(-INFINITY), zero = _mm512_setzero_ps();
    __m512 m = ninf;
    for (int t = 0; t < n; t++) {
        const __mmask16 ok = _mm512_cmpgt_epi32_mask(limv, _mm512_set1_epi32(t));
        m = _mm512_max_ps(_mm512_mask_mov_ps(ninf, ok, _mm512_loadu_ps(s + (size_t)t * AT_Q)), m);
    }
    /* Lanes without keys: any finite maximum. */
    m = _mm512_mask_mov_ps(m, _mm512_cmp_ps_mask(m, ninf, _CMP_EQ_OQ), zero);
    __m512 sum = zero;
    for (int t = 0; t < n; t++) {
        const __mmask16 ok = _mm512_cmpgt_epi32_mask(limv, _mm512_set1_epi32(t));
        float *st = s + (size_t)t * AT_Q;
        const __m512 e = _mm512_maskz_mov_ps(ok, exp16(_mm512_sub_ps(_mm512_loadu_ps(st), m)));
        _mm512_storeu_ps(st, e);
        sum = _mm512_add_ps(sum, e);
    }
    /* Lanes without keys: divide their zeros by 1. */
    sum = _mm512_mask_mov_ps(sum, _mm512_cmp_ps_mask(sum, zero, _CMP_EQ_OQ), _mm512_set1_ps(1.0f));
    for (int t = 0; t < n; t++) {
        float *st = s + (size_t)t * AT_Q;
        _mm512_storeu_ps(st, _mm512_div_ps(_mm512_loadu_ps(st), sum));
    }
}

AVX512_FN static void attention_avx512(float *const *out, const float *const *q, const int *n_keys, int nq,
                                       const float *k, const float *v, int kv_stride, int hs, float *scratch) {
    /* One query at a time, and head sizes that are not a multiple of 16:
     * the AVX2 table's (the same arithmetic). */
    if (nq < 4 || hs % 16 != 0) {
        l2_attention_avx2(out, q, n_keys, nq, k, v, kv_stride, hs, scratch);
        return;
    }
    const size_t kvs = (size_t)kv_stride;
    const int n = most_keys(n_keys, nq);
    float *qt = scratch, *s = scratch + (size_t)hs * AT_Q;
    queries_as_lanes(qt, q, nq, hs);

    const __m512 scale = _mm512_set1_ps(sqrtf((float)hs));
    for (int t = 0; t < n; t += AT_KT)
        attn_scores(s + (size_t)t * AT_Q, qt, k + (size_t)t * kvs, kvs, hs, scale, n - t < AT_KT ? n - t : AT_KT);
    attn_softmax(s, n, n_keys, nq);

    /* Query tiles of up to 8, each over the keys its queries see. */
    for (int i = 0; i < nq; i += AT_QT) {
        const int qn = nq - i < AT_QT ? nq - i : AT_QT;
        const int tn = most_keys(n_keys + i, qn);
        float *o[AT_QT];
        int d = 0;
        for (; d + 32 <= hs; d += 32) {
            for (int j = 0; j < qn; j++) o[j] = out[i + j] + d;
            attn_values32(o, s + i, v + d, kvs, tn, qn);
        }
        if (d < hs) {
            for (int j = 0; j < qn; j++) o[j] = out[i + j] + d;
            attn_values16(o, s + i, v + d, kvs, tn, qn);
        }
    }
}

/* ------------------------------------------------------------- tables */

/* The entries every AVX-512 level's fast table, or its exact one, has:
 * only the name and the int8 products differ between the levels. */
#define AVX512_FAST(NAME, MATMUL_Q8, GEMV_Q8_STRIPES, BLOCK_ROWS)                                                           \
    .name = NAME, .rmsnorm = rmsnorm_avx512, .softmax = softmax_avx512, .swiglu = swiglu_avx512,               \
    .add = add_avx512, .matmul_f32 = matmul_f32_avx512, .quantize_q8 = l2_quantize_q8_avx2,                    \
    .matmul_q8 = MATMUL_Q8, .gemv_q8_stripes = GEMV_Q8_STRIPES, .attention = attention_avx512, X86_LAYOUT(BLOCK_ROWS)
#define AVX512_EXACT(NAME, MATMUL_Q8, GEMV_Q8_STRIPES, BLOCK_ROWS)                                                          \
    .name = NAME, .rmsnorm = l2_rmsnorm_ref, .softmax = l2_softmax_ref, .swiglu = l2_swiglu_ref,               \
    .add = add_avx512, .matmul_f32 = l2_matmul_f32_ref, .quantize_q8 = l2_quantize_q8_avx2,                    \
    .matmul_q8 = MATMUL_Q8, .gemv_q8_stripes = GEMV_Q8_STRIPES, .attention = l2_attention_exact_avx2, X86_LAYOUT(BLOCK_ROWS)

static const l2_kernels avx512_table = {
    AVX512_FAST("avx512", l2_matmul_q8_avx2, l2_gemv_q8_stripes_avx2, 8),
    .repack_q8 = l2_repack_q8_stripe_scales,
};
static const l2_kernels avx512_exact_table = {
    AVX512_EXACT("avx512-exact", l2_matmul_q8_avx2, l2_gemv_q8_stripes_avx2, 8),
    .repack_q8 = l2_repack_q8_stripe_scales,
};
static const l2_kernels avx512_vnni_table = {
    AVX512_FAST("avx512-vnni", l2_matmul_q8_avx512vnni, l2_gemv_q8_stripes_avx512vnni, 8),
    .repack_q8 = l2_repack_q8_stripe_scales,
};
static const l2_kernels avx512_vnni_exact_table = {
    AVX512_EXACT("avx512-vnni-exact", l2_matmul_q8_avx512vnni, l2_gemv_q8_stripes_avx512vnni, 8),
    .repack_q8 = l2_repack_q8_stripe_scales,
};
static const l2_kernels amx_table = {
    AVX512_FAST("amx", l2_matmul_q8_avx512vnni, l2_gemv_q8_stripes_avx512vnni, 16),
    .repack_q8 = l2_repack_q8_amx,
    .matmul_q8_packed = l2_matmul_q8_packed_amx,
};
static const l2_kernels amx_exact_table = {
    AVX512_EXACT("amx-exact", l2_matmul_q8_avx512vnni, l2_gemv_q8_stripes_avx512vnni, 16),
    .repack_q8 = l2_repack_q8_amx,
    .matmul_q8_packed = l2_matmul_q8_packed_amx,
};

const l2_kernels *l2_kernels_avx512(void) { return &avx512_table; }
const l2_kernels *l2_kernels_avx512_exact(void) { return &avx512_exact_table; }
const l2_kernels *l2_kernels_avx512_vnni(void) { return &avx512_vnni_table; }
const l2_kernels *l2_kernels_avx512_vnni_exact(void) { return &avx512_vnni_exact_table; }
const l2_kernels *l2_kernels_amx(void) { return &amx_table; }
const l2_kernels *l2_kernels_amx_exact(void) { return &amx_exact_table; }

#else

/* ISO C forbids an empty translation unit. */
typedef int l2_ops_avx512_unused;

#endif
