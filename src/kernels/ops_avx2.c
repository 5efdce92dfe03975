/*
 * The AVX2 + FMA kernel tables (x86-64 CPUs from Haswell and Zen on), and
 * the avx2-vnni level's, which differ only in their int8 dot products
 * (ops_avx2_vnni_q8.c).
 *
 * The fast table against ops_ref.c:
 *   rmsnorm: the sum of squares in several accumulators (reordered);
 *   softmax, swiglu: a vectorised expf within 1.3 ulp (measured over the
 *       whole range); softmax sums in index order;
 *   matmul_f32: every dot product one fixed arithmetic, whatever the inputs
 *       and rows computed with it (dot8 below);
 *   attention: per query, the reference's sums in its order with fused
 *       roundings and the vectorised expf, the same bits for a query alone
 *       or in a block;
 *   add, and quantize_q8, matmul_q8 (ops_avx2_q8.c): the reference's bits.
 * The exact table keeps the reference's rmsnorm, softmax, swiglu and
 * matmul_f32, and an attention made of exact parts (l2_scores_avx2,
 * l2_values_avx2): every entry gives the reference's bits.
 */
#if defined(__x86_64__) || defined(__i386__)

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ops.h"
#include "ops_avx2_util.h"
#include "ops_isa.h"

/* ------------------------------------------------------------ helpers */

/* -1 for the first `rem` lanes of the load at mask_bits + 8 - rem. */
static const int32_t mask_bits[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

AVX2_INLINE __m256i tail_mask(int rem) { return _mm256_loadu_si256((const __m256i *)(mask_bits + 8 - rem)); }

AVX2_INLINE float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* [p[0..3], q[0..3]] */
AVX2_INLINE __m256 load_2x4(const float *p, const float *q) {
    return _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(p)), _mm_loadu_ps(q), 1);
}

/* ----------------------------------------------------------- vectors */

AVX2_FN static float sum_of_squares(const float *x, int n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + 8);
        __m256 c = _mm256_loadu_ps(x + i + 16), d = _mm256_loadu_ps(x + i + 24);
        s0 = _mm256_fmadd_ps(a, a, s0);
        s1 = _mm256_fmadd_ps(b, b, s1);
        s2 = _mm256_fmadd_ps(c, c, s2);
        s3 = _mm256_fmadd_ps(d, d, s3);
    }
    for (; i + 8 <= n; i += 8) {
        __m256 a = _mm256_loadu_ps(x + i);
        s0 = _mm256_fmadd_ps(a, a, s0);
    }
    if (i < n) {
        __m256 a = _mm256_maskload_ps(x + i, tail_mask(n - i));
        s1 = _mm256_fmadd_ps(a, a, s1);
    }
    return hsum8(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

AVX2_FN static void rmsnorm_avx2(float *out, const float *x, const float *weight, int n, float eps) {
    float ss = sum_of_squares(x, n);
    ss /= (float)n;
    ss += eps;
    ss = 1.0f / sqrtf(ss);
    const __m256 s = _mm256_set1_ps(ss);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_loadu_ps(weight + i), _mm256_mul_ps(s, _mm256_loadu_ps(x + i))));
    if (i < n) {
        __m256i m = tail_mask(n - i);
        __m256 v = _mm256_mul_ps(_mm256_maskload_ps(weight + i, m), _mm256_mul_ps(s, _mm256_maskload_ps(x + i, m)));
        _mm256_maskstore_ps(out + i, m, v);
    }
}

/* The exponentials are vectorised; their sum runs in index order, as each
 * query's does in the blocked attention (attn_softmax), so that a query
 * alone and in a block get the same bits. */
AVX2_FN static void softmax_avx2(float *x, int n) {
    if (n <= 0) return;
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    __m256 mv = ninf;
    int i = 0;
    for (; i + 8 <= n; i += 8) mv = _mm256_max_ps(_mm256_loadu_ps(x + i), mv);
    if (i < n) {
        __m256i m = tail_mask(n - i);
        __m256 v = _mm256_blendv_ps(ninf, _mm256_maskload_ps(x + i, m), _mm256_castsi256_ps(m));
        mv = _mm256_max_ps(v, mv);
    }
    const __m256 max = _mm256_set1_ps(hmax8(mv));
    float sum = 0.0f;
    i = 0;
    for (; i + 8 <= n; i += 8) {
        _Alignas(32) float e[8];
        _mm256_store_ps(e, exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), max)));
        _mm256_storeu_ps(x + i, _mm256_load_ps(e));
        for (int j = 0; j < 8; j++) sum += e[j];
    }
    if (i < n) {
        __m256i m = tail_mask(n - i);
        _Alignas(32) float e[8];
        _mm256_store_ps(e, exp8(_mm256_sub_ps(_mm256_maskload_ps(x + i, m), max)));
        _mm256_maskstore_ps(x + i, m, _mm256_load_ps(e));
        for (int j = 0; j < n - i; j++) sum += e[j];
    }
    const __m256 sv = _mm256_set1_ps(sum);
    i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_div_ps(_mm256_loadu_ps(x + i), sv));
    if (i < n) {
        __m256i m = tail_mask(n - i);
        _mm256_maskstore_ps(x + i, m, _mm256_div_ps(_mm256_maskload_ps(x + i, m), sv));
    }
}

AVX2_INLINE __m256 swiglu8(__m256 g, __m256 u) {
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), g));
    __m256 s = _mm256_div_ps(one, _mm256_add_ps(one, e));
    return _mm256_mul_ps(_mm256_mul_ps(g, s), u);
}

AVX2_FN static void swiglu_avx2(float *gate, const float *up, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(gate + i, swiglu8(_mm256_loadu_ps(gate + i), _mm256_loadu_ps(up + i)));
    if (i < n) {
        __m256i m = tail_mask(n - i);
        _mm256_maskstore_ps(gate + i, m, swiglu8(_mm256_maskload_ps(gate + i, m), _mm256_maskload_ps(up + i, m)));
    }
}

AVX2_FN static void add_avx2(float *y, const float *x, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i), _mm256_loadu_ps(x + i)));
    if (i < n) {
        __m256i m = tail_mask(n - i);
        _mm256_maskstore_ps(y + i, m, _mm256_add_ps(_mm256_maskload_ps(y + i, m), _mm256_maskload_ps(x + i, m)));
    }
}

/* ------------------------------------------------------------ values */

/* The weighted sum of one query's values onto out (ops.h: l2_values_ref's
 * loop when !FUSED, every product rounded before it is added; with FUSED,
 * one fused multiply-add per product, as the blocked attention's value
 * tiles do): nv vectors of columns, and a last vector of tail columns when
 * tail > 0, held in registers across every position, so that out is read
 * and written once and each element's chain runs in t order. Value rows
 * kv_stride apart are no stream the hardware prefetchers follow, so rows a
 * few positions ahead are prefetched. */
#define VALUES_AHEAD 8

AVX2_INLINE void values_cols(float *out, const float *att, const float *v, size_t stride, int n_keys, int nv,
                             int tail, int FUSED) {
    __m256 acc[9];
    const __m256i m = tail_mask(tail > 0 ? tail : 1);
    const int nacc = nv + (tail > 0);
#pragma GCC unroll 9
    for (int j = 0; j < 9; j++) acc[j] = j < nv ? _mm256_loadu_ps(out + 8 * j) : _mm256_setzero_ps();
    if (tail > 0) acc[nv] = _mm256_maskload_ps(out + 8 * nv, m);
    for (int t = 0; t < n_keys; t++) {
        const float *vt = v + (size_t)t * stride;
        if (t + VALUES_AHEAD < n_keys)
            for (int c = 0; c < 8 * nacc; c += 16)
                _mm_prefetch((const char *)(vt + VALUES_AHEAD * stride + (size_t)c), _MM_HINT_T0);
        const __m256 a = _mm256_broadcast_ss(att + t);
#pragma GCC unroll 8
        for (int j = 0; j < nv; j++)
            acc[j] = FUSED ? _mm256_fmadd_ps(a, _mm256_loadu_ps(vt + 8 * j), acc[j])
                           : _mm256_add_ps(acc[j], _mm256_mul_ps(a, _mm256_loadu_ps(vt + 8 * j)));
        if (tail > 0)
            acc[nv] = FUSED ? _mm256_fmadd_ps(a, _mm256_maskload_ps(vt + 8 * nv, m), acc[nv])
                            : _mm256_add_ps(acc[nv], _mm256_mul_ps(a, _mm256_maskload_ps(vt + 8 * nv, m)));
    }
#pragma GCC unroll 8
    for (int j = 0; j < nv; j++) _mm256_storeu_ps(out + 8 * j, acc[j]);
    if (tail > 0) _mm256_maskstore_ps(out + 8 * nv, m, acc[nv]);
}

AVX2_INLINE void values_any(float *out, const float *att, const float *v, int kv_stride, int n_keys, int hs,
                            int FUSED) {
    const size_t stride = (size_t)kv_stride;
    int i = 0;
    for (; i + 64 < hs; i += 64) values_cols(out + i, att, v + i, stride, n_keys, 8, 0, FUSED);
    const int left = hs - i, tail = left % 8;
    out += i;
    v += i;
    /* The vector count as a constant, for registers that stay registers. */
    switch (left / 8) {
    case 0: values_cols(out, att, v, stride, n_keys, 0, tail, FUSED); break;
    case 1: values_cols(out, att, v, stride, n_keys, 1, tail, FUSED); break;
    case 2: values_cols(out, att, v, stride, n_keys, 2, tail, FUSED); break;
    case 3: values_cols(out, att, v, stride, n_keys, 3, tail, FUSED); break;
    case 4: values_cols(out, att, v, stride, n_keys, 4, tail, FUSED); break;
    case 5: values_cols(out, att, v, stride, n_keys, 5, tail, FUSED); break;
    case 6: values_cols(out, att, v, stride, n_keys, 6, tail, FUSED); break;
    case 7: values_cols(out, att, v, stride, n_keys, 7, tail, FUSED); break;
    default: values_cols(out, att, v, stride, n_keys, 8, 0, FUSED); break;
    }
}

AVX2_FN void l2_values_avx2(float *out, const float *att, const float *v, int kv_stride, int n_keys, int hs) {
    values_any(out, att, v, kv_stride, n_keys, hs, 0);
}

AVX2_FN static void values_fused(float *out, const float *att, const float *v, int kv_stride, int n_keys, int hs) {
    values_any(out, att, v, kv_stride, n_keys, hs, 1);
}

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

/* Several inputs: tiles of R <= 4 rows x B <= 3 inputs over the columns of
 * one block [k0, k1). The empty asm statements keep each loaded vector in a
 * register: without them the compiler folds the loads into the
 * multiply-adds and loads every vector three or four times. */
#define MM_R 4
#define MM_B 3

AVX2_INLINE void dot_tile_step(__m256 acc[MM_R][MM_B], const float *const w[MM_R], const float *x, size_t cols,
                               size_t k, size_t kw, __m256i m, int masked, int R, int B) {
    __m256 xv[MM_B];
#pragma GCC unroll 3
    for (int b = 0; b < MM_B; b++) {
        if (b >= B) continue;
        xv[b] = masked ? _mm256_maskload_ps(x + (size_t)b * cols + k, m) : _mm256_loadu_ps(x + (size_t)b * cols + k);
        L2_KEEP_IN_REGISTER(xv[b]);
    }
#pragma GCC unroll 4
    for (int r = 0; r < MM_R; r++) {
        if (r >= R) continue;
        __m256 wv = masked ? _mm256_maskload_ps(w[r] + kw, m) : _mm256_loadu_ps(w[r] + kw);
        L2_KEEP_IN_REGISTER(wv);
#pragma GCC unroll 3
        for (int b = 0; b < MM_B; b++) {
            if (b >= B) continue;
            acc[r][b] = _mm256_fmadd_ps(wv, xv[b], acc[r][b]);
        }
    }
}

/* One tile: out[b * os + r] = the block's dot, or the sum so far plus it
 * after the first block. w[r] points at row r's column k0. */
AVX2_INLINE void dot_tile(float *out, size_t os, const float *x, const float *const w[MM_R], size_t cols, size_t k0,
                          size_t k1, int R, int B) {
    __m256 acc[MM_R][MM_B];
#pragma GCC unroll 4
    for (int r = 0; r < MM_R; r++)
#pragma GCC unroll 3
        for (int b = 0; b < MM_B; b++) acc[r][b] = _mm256_setzero_ps();
    size_t k = k0;
    for (; k + 8 <= k1; k += 8) dot_tile_step(acc, w, x, cols, k, k - k0, _mm256_setzero_si256(), 0, R, B);
    if (k < k1) dot_tile_step(acc, w, x, cols, k, k - k0, tail_mask((int)(k1 - k)), 1, R, B);
#pragma GCC unroll 3
    for (int b = 0; b < MM_B; b++) {
        if (b >= B) continue;
        store_row_dots(out + (size_t)b * os, acc[0][b], acc[1][b], acc[2][b], acc[3][b], k0, R);
    }
}

/* R rows against nb inputs over one block (ops_x86_matmul_f32.h): tiles of
 * 3 inputs, a remainder as tiles of 2 and 1 (4 as 2 + 2). One call per row
 * tile keeps the row pointers in registers across the inputs. */
AVX2_INLINE void dot_rows(float *out, size_t os, const float *x, int nb, const float *w, size_t ws, size_t cols,
                          size_t k0, size_t k1, uintptr_t next, size_t ns, int R) {
    const float *wr[MM_R];
    for (int r = 0; r < MM_R; r++) wr[r] = w + (size_t)(r < R ? r : 0) * ws;
    next_block ahead = next_block_of(next, ns, MM_R, k1 - k0, (size_t)(nb + MM_B - 1) / MM_B);
    int b = 0;
    for (; nb - b >= MM_B && nb - b != MM_B + 1; b += MM_B) {
        next_block_share(&ahead);
        dot_tile(out + (size_t)b * os, os, x + (size_t)b * cols, wr, cols, k0, k1, R, 3);
    }
    for (; nb - b >= 2; b += 2) dot_tile(out + (size_t)b * os, os, x + (size_t)b * cols, wr, cols, k0, k1, R, 2);
    if (b < nb) dot_tile(out + (size_t)b * os, os, x + (size_t)b * cols, wr, cols, k0, k1, R, 1);
}

#define MM_FN AVX2_FN
#include "ops_x86_matmul_f32.h"

AVX2_FN static void matmul_f32_avx2(float *out, int out_stride, const float *x, int nb, const float *w, int cols,
                                    int row_begin, int row_end) {
    if (nb == 1)
        gemv_f32(out, x, w, (size_t)cols, row_begin, row_end);
    else if (nb <= MM_FEW_INPUTS)
        gemm_few_f32(out, (size_t)out_stride, x, nb, w, (size_t)cols, row_begin, row_end);
    else
        gemm_f32(out, (size_t)out_stride, x, nb, w, (size_t)cols, row_begin, row_end);
}

/* ------------------------------------------------------------ scores */

/* att[t] = dot(q, key t) / sqrtf(hs) with every dot summed like the
 * reference's: sum = 0, then sum += q[d] * key[d] for d = 0, 1, ... (each
 * product rounded, then added; no fused operations). Eight keys at once,
 * one per lane: keys j and j + 4 are loaded four dimensions at a time into
 * the two halves of a vector, multiplied by the query (a product's bits do
 * not depend on the order of its operands), and transposed in-lane so that
 * each add takes one dimension's products of all eight keys, in order.
 * Up to four such groups of eight keys run together to hide the latency of
 * those sequential sums. */

/* The sums of the keys at r + j * stride (j < 8) over dimensions [d, d + 4),
 * in order; qv holds q[d..d+3] in both halves. */
AVX2_INLINE __m256 scores_step4(__m256 acc, const float *r, size_t stride, size_t d, __m256 qv) {
    const float *p = r + d;
    __m256 m0 = _mm256_mul_ps(qv, load_2x4(p, p + 4 * stride));
    __m256 m1 = _mm256_mul_ps(qv, load_2x4(p + stride, p + 5 * stride));
    __m256 m2 = _mm256_mul_ps(qv, load_2x4(p + 2 * stride, p + 6 * stride));
    __m256 m3 = _mm256_mul_ps(qv, load_2x4(p + 3 * stride, p + 7 * stride));
    __m256 t0 = _mm256_unpacklo_ps(m0, m1), t1 = _mm256_unpackhi_ps(m0, m1); /* m0_0 m1_0 m0_1 m1_1 */
    __m256 t2 = _mm256_unpacklo_ps(m2, m3), t3 = _mm256_unpackhi_ps(m2, m3);
    acc = _mm256_add_ps(acc, _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0))); /* dimension d */
    acc = _mm256_add_ps(acc, _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2)));
    acc = _mm256_add_ps(acc, _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0)));
    return _mm256_add_ps(acc, _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2)));
}

/* scores_step4 for the keys p[j]. */
AVX2_INLINE __m256 scores_step4p(__m256 acc, const float *const p[8], size_t d, __m256 qv) {
    __m256 m0 = _mm256_mul_ps(qv, load_2x4(p[0] + d, p[4] + d));
    __m256 m1 = _mm256_mul_ps(qv, load_2x4(p[1] + d, p[5] + d));
    __m256 m2 = _mm256_mul_ps(qv, load_2x4(p[2] + d, p[6] + d));
    __m256 m3 = _mm256_mul_ps(qv, load_2x4(p[3] + d, p[7] + d));
    __m256 t0 = _mm256_unpacklo_ps(m0, m1), t1 = _mm256_unpackhi_ps(m0, m1);
    __m256 t2 = _mm256_unpacklo_ps(m2, m3), t3 = _mm256_unpackhi_ps(m2, m3);
    acc = _mm256_add_ps(acc, _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0)));
    acc = _mm256_add_ps(acc, _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2)));
    acc = _mm256_add_ps(acc, _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0)));
    return _mm256_add_ps(acc, _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2)));
}

/* One dimension d of the eight keys p[j], for a head size that is not a
 * multiple of 4. */
AVX2_INLINE __m256 scores_step1(__m256 acc, const float *const p[8], size_t d, const float *q) {
    __m256 k = _mm256_set_ps(p[7][d], p[6][d], p[5][d], p[4][d], p[3][d], p[2][d], p[1][d], p[0][d]);
    return _mm256_add_ps(acc, _mm256_mul_ps(_mm256_set1_ps(q[d]), k));
}

/* ng groups of eight consecutive keys from r (group i at r + 8 i stride). */
AVX2_INLINE void scores_groups(float *att, const float *q, const float *r, size_t stride, int hs, __m256 scale,
                               int ng) {
    __m256 acc[4];
    for (int i = 0; i < ng; i++) acc[i] = _mm256_setzero_ps();
    size_t d = 0;
    for (; d + 4 <= (size_t)hs; d += 4) {
        const __m256 qv = _mm256_broadcast_ps((const __m128 *)(q + d));
        for (int i = 0; i < ng; i++) acc[i] = scores_step4(acc[i], r + (size_t)i * 8 * stride, stride, d, qv);
    }
    for (; d < (size_t)hs; d++) {
        for (int i = 0; i < ng; i++) {
            const float *g = r + (size_t)i * 8 * stride;
            const float *p[8] = {g, g + stride, g + 2 * stride, g + 3 * stride,
                                 g + 4 * stride, g + 5 * stride, g + 6 * stride, g + 7 * stride};
            acc[i] = scores_step1(acc[i], p, d, q);
        }
    }
    for (int i = 0; i < ng; i++) _mm256_storeu_ps(att + 8 * i, _mm256_div_ps(acc[i], scale));
}

/* Keys kv_stride apart are no stream the hardware prefetchers follow:
 * each block of 32 keys prefetches the next block's rows. */
AVX2_INLINE void scores_prefetch(const float *k, size_t stride, int t0, int t1, int hs) {
    for (int t = t0; t < t1; t++)
        for (int d = 0; d < hs; d += 16) _mm_prefetch((const char *)(k + (size_t)t * stride + (size_t)d), _MM_HINT_T0);
}

AVX2_FN void l2_scores_avx2(float *att, const float *q, const float *k, int kv_stride, int n_keys, int hs) {
    const size_t stride = (size_t)kv_stride;
    const __m256 scale = _mm256_set1_ps(sqrtf((float)hs));
    int t = 0;
    for (; t + 32 <= n_keys; t += 32) {
        scores_prefetch(k, stride, t + 32, t + 64 < n_keys ? t + 64 : n_keys, hs);
        scores_groups(att + t, q, k + (size_t)t * stride, stride, hs, scale, 4);
    }
    for (; t + 8 <= n_keys; t += 8) scores_groups(att + t, q, k + (size_t)t * stride, stride, hs, scale, 1);
    if (t < n_keys) {
        /* The last 1-7 keys: lanes past the end repeat the last key (never
         * reading past it) and are not stored. */
        const int left = n_keys - t;
        const float *p[8];
        for (int j = 0; j < 8; j++) p[j] = k + (size_t)(t + (j < left ? j : left - 1)) * stride;
        __m256 acc = _mm256_setzero_ps();
        size_t d = 0;
        for (; d + 4 <= (size_t)hs; d += 4)
            acc = scores_step4p(acc, p, d, _mm256_broadcast_ps((const __m128 *)(q + d)));
        for (; d < (size_t)hs; d++) acc = scores_step1(acc, p, d, q);
        _Alignas(32) float v[8];
        _mm256_store_ps(v, _mm256_div_ps(acc, scale));
        memcpy(att + t, v, (size_t)left * sizeof(float));
    }
}

/* --------------------------------------------------------- attention */

/* The queries are the vector lanes: qt[d][16] holds dimension d of every
 * query (two vectors), and the scores go to s[t][16], so that the scores
 * are register tiles of up to 6 keys x 16 queries (each key value
 * broadcast), the softmax of every query runs down its lane with vertical
 * operations, and the output tiles are up to 6 queries x 16 dimensions
 * (each probability broadcast). Each key and value row is read once per
 * call for all its queries.
 *
 * Per query, every sum is in the reference's order (the dot product over
 * d, the softmax sums over t, the output over t); the differences are the
 * fused multiply-adds and the vectorised expf. Queries that see fewer keys
 * than the call's largest n_keys get exactly 0 for the positions past
 * theirs, which changes none of their sums: a query's result does not
 * depend on which other queries share its call. */
#define AT_Q 16 /* L2_ATTENTION_MAX_QUERIES */
#define AT_KT 6 /* keys per score tile */
#define AT_QT 6 /* queries per output tile */

/* s[(t + j) * 16 + lane] = dot(query lane, key t + j) / scale for j < KT;
 * QV vectors of queries. */
AVX2_INLINE void attn_scores_tile(float *s, const float *qt, const float *k, size_t kv_stride, int hs,
                                  __m256 scale, int KT, int QV) {
    __m256 acc[AT_KT][2];
#pragma GCC unroll 6
    for (int j = 0; j < AT_KT; j++) acc[j][0] = acc[j][1] = _mm256_setzero_ps();
    for (int d = 0; d < hs; d++) {
        __m256 q0 = _mm256_loadu_ps(qt + (size_t)d * AT_Q), q1 = q0;
        if (QV > 1) q1 = _mm256_loadu_ps(qt + (size_t)d * AT_Q + 8);
#pragma GCC unroll 6
        for (int j = 0; j < AT_KT; j++) {
            if (j >= KT) continue;
            __m256 kb = _mm256_broadcast_ss(k + (size_t)j * kv_stride + (size_t)d);
            acc[j][0] = _mm256_fmadd_ps(q0, kb, acc[j][0]);
            if (QV > 1) acc[j][1] = _mm256_fmadd_ps(q1, kb, acc[j][1]);
        }
    }
#pragma GCC unroll 6
    for (int j = 0; j < AT_KT; j++) {
        if (j >= KT) continue;
        _mm256_storeu_ps(s + (size_t)j * AT_Q, _mm256_div_ps(acc[j][0], scale));
        if (QV > 1) _mm256_storeu_ps(s + (size_t)j * AT_Q + 8, _mm256_div_ps(acc[j][1], scale));
    }
}

typedef void (*attn_scores_fn)(float *s, const float *qt, const float *k, size_t kv_stride, int hs, __m256 scale);
#define ATTN_SCORES(KT, QV)                                                                                    \
    AVX2_FN static void attn_scores_##KT##_##QV(float *s, const float *qt, const float *k, size_t kv_stride,   \
                                                int hs, __m256 scale) {                                        \
        attn_scores_tile(s, qt, k, kv_stride, hs, scale, KT, QV);                                              \
    }
ATTN_SCORES(1, 1)
ATTN_SCORES(2, 1)
ATTN_SCORES(3, 1)
ATTN_SCORES(4, 1)
ATTN_SCORES(5, 1)
ATTN_SCORES(6, 1)
ATTN_SCORES(1, 2)
ATTN_SCORES(2, 2)
ATTN_SCORES(3, 2)
ATTN_SCORES(4, 2)
ATTN_SCORES(5, 2)
ATTN_SCORES(6, 2)
/* [QV - 1][KT] */
static const attn_scores_fn attn_scores[2][AT_KT + 1] = {
    {NULL, attn_scores_1_1, attn_scores_2_1, attn_scores_3_1, attn_scores_4_1, attn_scores_5_1, attn_scores_6_1},
    {NULL, attn_scores_1_2, attn_scores_2_2, attn_scores_3_2, attn_scores_4_2, attn_scores_5_2, attn_scores_6_2}};

/* out[j][0..DW) = sum over t < n of s[t][j] * v[t][0..DW) for j < QT; s
 * points at the tile's first query lane. */
AVX2_INLINE void attn_values_tile(float *const *out, const float *s, const float *v, size_t kv_stride, int n,
                                  int QT, int DW) {
    __m256 acc[AT_QT][2];
#pragma GCC unroll 6
    for (int j = 0; j < AT_QT; j++) acc[j][0] = acc[j][1] = _mm256_setzero_ps();
    for (int t = 0; t < n; t++) {
        const float *vt = v + (size_t)t * kv_stride;
        __m256 v0 = _mm256_loadu_ps(vt), v1 = v0;
        if (DW > 8) v1 = _mm256_loadu_ps(vt + 8);
#pragma GCC unroll 6
        for (int j = 0; j < AT_QT; j++) {
            if (j >= QT) continue;
            __m256 p = _mm256_broadcast_ss(s + (size_t)t * AT_Q + (size_t)j);
            acc[j][0] = _mm256_fmadd_ps(p, v0, acc[j][0]);
            if (DW > 8) acc[j][1] = _mm256_fmadd_ps(p, v1, acc[j][1]);
        }
    }
#pragma GCC unroll 6
    for (int j = 0; j < AT_QT; j++) {
        if (j >= QT) continue;
        _mm256_storeu_ps(out[j], acc[j][0]);
        if (DW > 8) _mm256_storeu_ps(out[j] + 8, acc[j][1]);
    }
}

typedef void (*attn_values_fn)(float *const *out, const float *s, const float *v, size_t kv_stride, int n);
#define ATTN_VALUES(QT, DW)                                                                                    \
    AVX2_FN static void attn_values_##QT##_##DW(float *const *out, const float *s, const float *v,             \
                                                size_t kv_stride, int n) {                                     \
        attn_values_tile(out, s, v, kv_stride, n, QT, DW);                                                     \
    }
ATTN_VALUES(1, 8)
ATTN_VALUES(2, 8)
ATTN_VALUES(3, 8)
ATTN_VALUES(4, 8)
ATTN_VALUES(5, 8)
ATTN_VALUES(6, 8)
ATTN_VALUES(1, 16)
ATTN_VALUES(2, 16)
ATTN_VALUES(3, 16)
ATTN_VALUES(4, 16)
ATTN_VALUES(5, 16)
ATTN_VALUES(6, 16)
/* [DW / 8 - 1][QT] */
static const attn_values_fn attn_values[2][AT_QT + 1] = {
    {NULL, attn_values_1_8, attn_values_2_8, attn_values_3_8, attn_values_4_8, attn_values_5_8, attn_values_6_8},
    {NULL, attn_values_1_16, attn_values_2_16, attn_values_3_16, attn_values_4_16, attn_values_5_16,
     attn_values_6_16}};

/* The softmax of every lane of s[0..n)[16] over its first n_keys[lane]
 * rows; the rows past a lane's n_keys become 0. */
AVX2_FN static void attn_softmax(float *s, int n, const int *n_keys, int nq) {
    int32_t lim[AT_Q];
    for (int i = 0; i < AT_Q; i++) lim[i] = i < nq ? n_keys[i] : 0;
    const __m256i lim0 = _mm256_loadu_si256((const __m256i *)lim), lim1 = _mm256_loadu_si256((const __m256i *)(lim + 8));
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    __m256 m0 = ninf, m1 = ninf;
    for (int t = 0; t < n; t++) {
        __m256i tv = _mm256_set1_epi32(t);
        __m256 ok0 = _mm256_castsi256_ps(_mm256_cmpgt_epi32(lim0, tv));
        __m256 ok1 = _mm256_castsi256_ps(_mm256_cmpgt_epi32(lim1, tv));
        m0 = _mm256_max_ps(_mm256_blendv_ps(ninf, _mm256_loadu_ps(s + (size_t)t * AT_Q), ok0), m0);
        m1 = _mm256_max_ps(_mm256_blendv_ps(ninf, _mm256_loadu_ps(s + (size_t)t * AT_Q + 8), ok1), m1);
    }
    /* Lanes without keys: any finite maximum. */
    m0 = _mm256_blendv_ps(m0, _mm256_setzero_ps(), _mm256_cmp_ps(m0, ninf, _CMP_EQ_OQ));
    m1 = _mm256_blendv_ps(m1, _mm256_setzero_ps(), _mm256_cmp_ps(m1, ninf, _CMP_EQ_OQ));
    __m256 sum0 = _mm256_setzero_ps(), sum1 = _mm256_setzero_ps();
    for (int t = 0; t < n; t++) {
        __m256i tv = _mm256_set1_epi32(t);
        __m256 ok0 = _mm256_castsi256_ps(_mm256_cmpgt_epi32(lim0, tv));
        __m256 ok1 = _mm256_castsi256_ps(_mm256_cmpgt_epi32(lim1, tv));
        float *st = s + (size_t)t * AT_Q;
        __m256 e0 = _mm256_and_ps(exp8(_mm256_sub_ps(_mm256_loadu_ps(st), m0)), ok0);
        __m256 e1 = _mm256_and_ps(exp8(_mm256_sub_ps(_mm256_loadu_ps(st + 8), m1)), ok1);
        _mm256_storeu_ps(st, e0);
        _mm256_storeu_ps(st + 8, e1);
        sum0 = _mm256_add_ps(sum0, e0);
        sum1 = _mm256_add_ps(sum1, e1);
    }
    /* Lanes without keys: divide their zeros by 1. */
    const __m256 one = _mm256_set1_ps(1.0f);
    sum0 = _mm256_blendv_ps(sum0, one, _mm256_cmp_ps(sum0, _mm256_setzero_ps(), _CMP_EQ_OQ));
    sum1 = _mm256_blendv_ps(sum1, one, _mm256_cmp_ps(sum1, _mm256_setzero_ps(), _CMP_EQ_OQ));
    for (int t = 0; t < n; t++) {
        float *st = s + (size_t)t * AT_Q;
        _mm256_storeu_ps(st, _mm256_div_ps(_mm256_loadu_ps(st), sum0));
        _mm256_storeu_ps(st + 8, _mm256_div_ps(_mm256_loadu_ps(st + 8), sum1));
    }
}

/* kt[i] lane j = dimension d + i of the key at p[j], i < 4. */
AVX2_INLINE void keys_transposed(__m256 kt[4], const float *const p[8], size_t d) {
    __m256 m0 = load_2x4(p[0] + d, p[4] + d), m1 = load_2x4(p[1] + d, p[5] + d);
    __m256 m2 = load_2x4(p[2] + d, p[6] + d), m3 = load_2x4(p[3] + d, p[7] + d);
    __m256 t0 = _mm256_unpacklo_ps(m0, m1), t1 = _mm256_unpackhi_ps(m0, m1); /* k0d0 k1d0 k0d1 k1d1 */
    __m256 t2 = _mm256_unpacklo_ps(m2, m3), t3 = _mm256_unpackhi_ps(m2, m3);
    kt[0] = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
    kt[1] = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    kt[2] = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
    kt[3] = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
}

/* att[8 g + j] for ng groups of 8 keys (group g's key j at p[g][j]): the
 * attention tiles' arithmetic for one query, a fused multiply-add per
 * dimension in order, then the division by the scale. hs % 4 == 0. */
AVX2_INLINE void scores_groups_fused(float *att, const float *q, const float *const p[4][8], int ng, int hs,
                                     __m256 scale) {
    __m256 acc[4];
    for (int g = 0; g < ng; g++) acc[g] = _mm256_setzero_ps();
    for (size_t d = 0; d < (size_t)hs; d += 4) {
        for (int g = 0; g < ng; g++) {
            __m256 kt[4];
            keys_transposed(kt, p[g], d);
            acc[g] = _mm256_fmadd_ps(_mm256_broadcast_ss(q + d), kt[0], acc[g]);
            acc[g] = _mm256_fmadd_ps(_mm256_broadcast_ss(q + d + 1), kt[1], acc[g]);
            acc[g] = _mm256_fmadd_ps(_mm256_broadcast_ss(q + d + 2), kt[2], acc[g]);
            acc[g] = _mm256_fmadd_ps(_mm256_broadcast_ss(q + d + 3), kt[3], acc[g]);
        }
    }
    for (int g = 0; g < ng; g++) _mm256_storeu_ps(att + 8 * g, _mm256_div_ps(acc[g], scale));
}

/* The scores of one query over n_keys keys: groups of 8 keys, up to four
 * groups at once to hide the latency of their sequential sums; the last 1-7
 * keys as a group whose lanes past the end repeat the last key (never
 * reading past it) and are not stored. Keys kv_stride apart are no stream
 * the hardware prefetchers follow: each block of 32 keys prefetches the
 * next block's rows. */
AVX2_FN static void scores_fused(float *att, const float *q, const float *k, size_t stride, int n_keys, int hs) {
    const __m256 scale = _mm256_set1_ps(sqrtf((float)hs));
    const float *p[4][8];
    int t = 0;
    while (t < n_keys) {
        const int left = n_keys - t, ng = left >= 32 ? 4 : (left + 7) / 8;
        if (left >= 64)
            for (int u = t + 32; u < t + 64; u++)
                for (int d = 0; d < hs; d += 16) _mm_prefetch((const char *)(k + (size_t)u * stride + (size_t)d), _MM_HINT_T0);
        for (int g = 0; g < ng; g++)
            for (int j = 0; j < 8; j++) {
                const int u = t + 8 * g + j < n_keys ? t + 8 * g + j : n_keys - 1;
                p[g][j] = k + (size_t)u * stride;
            }
        if (left >= 8 * ng) {
            scores_groups_fused(att + t, q, p, ng, hs, scale);
        } else {
            _Alignas(32) float v[32];
            scores_groups_fused(v, q, p, ng, hs, scale);
            memcpy(att + t, v, (size_t)left * sizeof(float));
        }
        t += 8 * ng;
    }
}

/* One query (hs % 8 == 0): the same bits as in a block of queries. */
AVX2_FN static void attend_one(float *out, const float *q, int n_keys, const float *k, const float *v, size_t kvs,
                               int hs, float *att) {
    scores_fused(att, q, k, kvs, n_keys, hs);
    softmax_avx2(att, n_keys);
    memset(out, 0, (size_t)hs * sizeof(float));
    values_fused(out, att, v, (int)kvs, n_keys, hs);
}

AVX2_FN void l2_attention_avx2(float *const *out, const float *const *q, const int *n_keys, int nq,
                                   const float *k, const float *v, int kv_stride, int hs, float *scratch) {
    if (nq <= 0) return;
    if (hs % 8 != 0) {
        l2_attention_ref(out, q, n_keys, nq, k, v, kv_stride, hs, scratch);
        return;
    }
    const size_t kvs = (size_t)kv_stride;
    if (nq < 4) {
        for (int i = 0; i < nq; i++) attend_one(out[i], q[i], n_keys[i], k, v, kvs, hs, scratch);
        return;
    }
    const int n = most_keys(n_keys, nq);
    float *qt = scratch, *s = scratch + (size_t)hs * AT_Q;
    queries_as_lanes(qt, q, nq, hs);

    const __m256 scale = _mm256_set1_ps(sqrtf((float)hs));
    const attn_scores_fn *scores = attn_scores[nq > 8];
    for (int t = 0; t < n; t += AT_KT) {
        int kt = n - t < AT_KT ? n - t : AT_KT;
        scores[kt](s + (size_t)t * AT_Q, qt, k + (size_t)t * kvs, kvs, hs, scale);
    }
    attn_softmax(s, n, n_keys, nq);

    /* Query tiles of up to 6 (a remainder of 1 or 2 joins the last
     * full tile as 4 + 3 or 4 + 4), each over the keys its queries see. */
    for (int i = 0; i < nq;) {
        int left = nq - i, qn = left < AT_QT ? left : AT_QT;
        if (left == AT_QT + 1 || left == AT_QT + 2) qn = 4;
        const int tn = most_keys(n_keys + i, qn);
        int d = 0;
        float *o[AT_QT];
        for (; d + 16 <= hs; d += 16) {
            for (int j = 0; j < qn; j++) o[j] = out[i + j] + d;
            attn_values[1][qn](o, s + i, v + d, kvs, tn);
        }
        if (d < hs) {
            for (int j = 0; j < qn; j++) o[j] = out[i + j] + d;
            attn_values[0][qn](o, s + i, v + d, kvs, tn);
        }
        i += qn;
    }
}

/* The exact table's attention: the reference's arithmetic, query by query,
 * from exact parts. */
AVX2_FN void l2_attention_exact_avx2(float *const *out, const float *const *q, const int *n_keys, int nq,
                                         const float *k, const float *v, int kv_stride, int hs, float *scratch) {
    for (int i = 0; i < nq; i++) {
        l2_scores_avx2(scratch, q[i], k, kv_stride, n_keys[i], hs);
        l2_softmax_ref(scratch, n_keys[i]);
        memset(out[i], 0, (size_t)hs * sizeof(float));
        l2_values_avx2(out[i], scratch, v, kv_stride, n_keys[i], hs);
    }
}

/* ------------------------------------------------------------- tables */

/* The entries of the fast and the exact table of both AVX2 levels: only the
 * name and the int8 products differ between them (AVX-VNNI's int8 dot
 * products for avx2-vnni). */
#define AVX2_FAST(NAME, MATMUL_Q8, GEMV_Q8_STRIPES)                                                             \
    .name = NAME, .rmsnorm = rmsnorm_avx2, .softmax = softmax_avx2, .swiglu = swiglu_avx2, .add = add_avx2,    \
    .matmul_f32 = matmul_f32_avx2, .quantize_q8 = l2_quantize_q8_avx2, .matmul_q8 = MATMUL_Q8,                 \
    .repack_q8 = l2_repack_q8_stripe_scales, .gemv_q8_stripes = GEMV_Q8_STRIPES, .attention = l2_attention_avx2,   \
    X86_LAYOUT(8)
#define AVX2_EXACT(NAME, MATMUL_Q8, GEMV_Q8_STRIPES)                                                            \
    .name = NAME, .rmsnorm = l2_rmsnorm_ref, .softmax = l2_softmax_ref, .swiglu = l2_swiglu_ref,               \
    .add = add_avx2, .matmul_f32 = l2_matmul_f32_ref, .quantize_q8 = l2_quantize_q8_avx2,                      \
    .matmul_q8 = MATMUL_Q8, .repack_q8 = l2_repack_q8_stripe_scales, .gemv_q8_stripes = GEMV_Q8_STRIPES,             \
    .attention = l2_attention_exact_avx2, X86_LAYOUT(8)

static const l2_kernels avx2_table = {AVX2_FAST("avx2", l2_matmul_q8_avx2, l2_gemv_q8_stripes_avx2)};
static const l2_kernels avx2_exact_table = {AVX2_EXACT("avx2-exact", l2_matmul_q8_avx2, l2_gemv_q8_stripes_avx2)};
static const l2_kernels avx2_vnni_table = {AVX2_FAST("avx2-vnni", l2_matmul_q8_avxvnni, l2_gemv_q8_stripes_avxvnni)};
static const l2_kernels avx2_vnni_exact_table = {
    AVX2_EXACT("avx2-vnni-exact", l2_matmul_q8_avxvnni, l2_gemv_q8_stripes_avxvnni)};

const l2_kernels *l2_kernels_avx2(void) { return &avx2_table; }
const l2_kernels *l2_kernels_avx2_exact(void) { return &avx2_exact_table; }
const l2_kernels *l2_kernels_avx2_vnni(void) { return &avx2_vnni_table; }
const l2_kernels *l2_kernels_avx2_vnni_exact(void) { return &avx2_vnni_exact_table; }

#else

/* ISO C forbids an empty translation unit. */
typedef int l2_ops_avx2_unused;

#endif
