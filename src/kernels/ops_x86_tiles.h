/* The register tiles that the AVX2 and AVX-512 levels share, written once
 * for both vector widths (ops_x86_width.h): the fp32 product's dot tile
 * (ops_avx2_matmul.c, ops_avx512_matmul.c) and the blocked attention's
 * score and value tiles (ops_avx2_attention.c, ops_avx512_attention.c). A
 * level's file includes this after defining X86_W and
 *   MM_R, MM_B     with X86_DOT_TILE: the dot tile's rows and inputs (at
 *                  most), and MM_NEXT_TILE(left), the inputs of the next
 *                  tile of a row tile's inputs when `left` remain;
 *   AT_KT, AT_QT   with X86_ATTENTION_TILES: the keys of a score tile and
 *                  the queries of a value tile (at most), and
 *                  AT_NEXT_QUERIES(left), the queries of the next value
 *                  tile when `left` remain; after the include, the level's
 *                  attn_softmax (declared below).
 * The arithmetic of a tile is the same at both widths: a level's results
 * depend on its width only through its lanes. */
#ifndef LLAMA2_OPS_X86_TILES_H
#define LLAMA2_OPS_X86_TILES_H

#include "ops_x86_width.h"

#define L2_PRAGMA(x) _Pragma(#x)
/* Unroll n times (n a macro: expanded first). */
#define L2_UNROLL(n) L2_PRAGMA(GCC unroll n)

/* The cases of a switch that calls CALL(c) with c a constant, 1 to N (N
 * for anything larger): a tile's counts, known to the compiler. */
#define L2_CASES_TO_5(CALL)                                                                                    \
    case 1: CALL(1); break;                                                                                    \
    case 2: CALL(2); break;                                                                                    \
    case 3: CALL(3); break;                                                                                    \
    case 4: CALL(4); break;                                                                                    \
    case 5: CALL(5); break;
#define L2_CASES_3(CALL) case 1: CALL(1); break; case 2: CALL(2); break; default: CALL(3); break;
#define L2_CASES_6(CALL) L2_CASES_TO_5(CALL) default: CALL(6); break;
#define L2_CASES_8(CALL) L2_CASES_TO_5(CALL) case 6: CALL(6); break; case 7: CALL(7); break; default: CALL(8); break;
#define L2_CASES_(N, CALL) L2_CASES_##N(CALL)
#define L2_CASES(N, CALL) L2_CASES_(N, CALL)

#endif

#ifdef X86_DOT_TILE
#undef X86_DOT_TILE
/* Several inputs of the fp32 product: tiles of R <= MM_R rows x B <= MM_B
 * inputs over the columns of one block [k0, k1), lane j of an accumulator
 * taking the columns j, j + V_LANES, ... in order. The empty asm
 * statements keep each loaded vector in a register: without them the
 * compiler folds the loads into the multiply-adds and loads every vector
 * MM_R or MM_B times.
 *
 * With `ahead` (a constant), as a row's vector is read the line MM_AHEAD
 * floats on in the row's stream (row r at ahead_of.at + r * ahead_of.stride
 * floats) is asked into L2. A few inputs multiply each weight for too short a
 * time for the hardware prefetcher to keep its streams ahead: without it
 * the loads wait on memory, then the multiply-adds on the loads. */
#define MM_AHEAD 1024
typedef struct row_streams {
    uintptr_t at; /* an integer: the lines ahead may lie past the matrix */
    size_t stride;
} row_streams;

V_INLINE void dot_tile_step(VEC acc[MM_R][MM_B], const float *const w[MM_R], const float *x, size_t cols, size_t k,
                            size_t kw, VMASK m, int masked, int R, int B, int ahead, row_streams ahead_of) {
    VEC xv[MM_B];
    L2_UNROLL(MM_B)
    for (int b = 0; b < MM_B; b++) {
        if (b >= B) continue;
        xv[b] = masked ? v_maskz_load(m, x + (size_t)b * cols + k) : V_OP(loadu_ps)(x + (size_t)b * cols + k);
        L2_KEEP_IN_REGISTER(xv[b]);
    }
    L2_UNROLL(MM_R)
    for (int r = 0; r < MM_R; r++) {
        if (r >= R) continue;
        if (ahead && !masked)
            _mm_prefetch((const char *)(ahead_of.at + ((size_t)r * ahead_of.stride + kw + MM_AHEAD) * sizeof(float)),
                         _MM_HINT_T1);
        VEC wv = masked ? v_maskz_load(m, w[r] + kw) : V_OP(loadu_ps)(w[r] + kw);
        L2_KEEP_IN_REGISTER(wv);
        L2_UNROLL(MM_B)
        for (int b = 0; b < MM_B; b++) {
            if (b >= B) continue;
            acc[r][b] = V_OP(fmadd_ps)(wv, xv[b], acc[r][b]);
        }
    }
}

/* One tile: out[b * os + r] = the block's dot, or the sum so far plus it
 * after the first block (store_row_dots, on the lanes folded to 8). w[r]
 * points at row r's column k0. */
V_INLINE void dot_tile(float *out, size_t os, const float *x, const float *const w[MM_R], size_t cols, size_t k0,
                       size_t k1, int R, int B, int ahead, row_streams ahead_of) {
    VEC acc[MM_R][MM_B];
    L2_UNROLL(MM_R)
    for (int r = 0; r < MM_R; r++)
        L2_UNROLL(MM_B)
        for (int b = 0; b < MM_B; b++) acc[r][b] = V_OP(setzero_ps)();
    size_t k = k0;
    for (; k + V_LANES <= k1; k += V_LANES)
        dot_tile_step(acc, w, x, cols, k, k - k0, v_no_mask(), 0, R, B, ahead, ahead_of);
    if (k < k1) dot_tile_step(acc, w, x, cols, k, k - k0, v_tail((int)(k1 - k)), 1, R, B, ahead, ahead_of);
    L2_UNROLL(MM_B)
    for (int b = 0; b < MM_B; b++) {
        if (b >= B) continue;
        store_row_dots(out + (size_t)b * os, v_fold8(acc[0][b]), v_fold8(acc[1][b]), v_fold8(acc[2][b]),
                       v_fold8(acc[3][b]), k0, R);
    }
}

/* The B-input tile for a count known only at run time, its constants for
 * the compiler. */
V_INLINE void dot_tile_any(float *out, size_t os, const float *x, const float *const w[MM_R], size_t cols, size_t k0,
                           size_t k1, int R, int B) {
#define TILE(N) dot_tile(out, os, x, w, cols, k0, k1, R, N, 0, (row_streams){0, 0})
    switch (B) { L2_CASES(MM_B, TILE) }
#undef TILE
}

/* R rows against nb inputs over one block (ops_x86_matmul_f32.h), in tiles
 * of MM_NEXT_TILE inputs; a share of the next row tile's block is
 * prefetched before each full tile, or, where ahead_of.at is not 0, the
 * full tiles prefetch the rows' streams as they go (dot_tile_step). One
 * call per row tile keeps the row pointers in registers across the
 * inputs. */
V_INLINE void dot_rows(float *out, size_t os, const float *x, int nb, const float *w, size_t ws, size_t cols, size_t k0,
                       size_t k1, uintptr_t next, size_t ns, row_streams ahead_of, int R) {
    const float *wr[MM_R];
    for (int r = 0; r < MM_R; r++) wr[r] = w + (size_t)(r < R ? r : 0) * ws;
    next_block next_tile = next_block_of(next, ns, MM_R, k1 - k0, (size_t)(nb + MM_B - 1) / MM_B);
    for (int b = 0; b < nb;) {
        const int bn = MM_NEXT_TILE(nb - b);
        if (bn == MM_B) {
            next_block_share(&next_tile);
            if (ahead_of.at)
                dot_tile(out + (size_t)b * os, os, x + (size_t)b * cols, wr, cols, k0, k1, R, MM_B, 1, ahead_of);
            else
                dot_tile(out + (size_t)b * os, os, x + (size_t)b * cols, wr, cols, k0, k1, R, MM_B, 0, ahead_of);
        } else {
            dot_tile_any(out + (size_t)b * os, os, x + (size_t)b * cols, wr, cols, k0, k1, R, bn);
        }
        b += bn;
    }
}
#endif

#ifdef X86_ATTENTION_TILES
#undef X86_ATTENTION_TILES
/* The blocked attention takes the queries as the vector lanes: qt[d][AT_Q]
 * holds dimension d of every query (AT_QV vectors), the scores go to
 * s[t][AT_Q]. */
#define AT_Q L2_ATTENTION_MAX_QUERIES
#define AT_QV (16 / V_LANES)
_Static_assert(L2_ATTENTION_MAX_QUERIES == 16, "AT_QV counts vectors of 16 queries");

/* lim[lane] = the keys that query lane sees (0 past nq), for the masks of
 * the softmax down each lane. */
V_INLINE void keys_per_lane(int32_t lim[AT_Q], const int *n_keys, int nq) {
    for (int i = 0; i < AT_Q; i++) lim[i] = i < nq ? n_keys[i] : 0;
}

/* acc + a * b: fused (the fast tables), or the product rounded and then
 * added (the exact tables: the reference's arithmetic). */
#define AT_MADD(a, b, acc, FUSED) ((FUSED) ? V_OP(fmadd_ps)(a, b, acc) : V_OP(add_ps)(acc, V_OP(mul_ps)(a, b)))

/* s[(t + j) * AT_Q + lane] = dot(query lane, key t + j) / scale for
 * j < KT, the dot a multiply-add (AT_MADD) per dimension in order; the
 * first QV vectors of queries. */
V_INLINE void attn_scores_tile(float *s, const float *qt, const float *k, size_t kv_stride, int hs, VEC scale, int KT,
                               int QV, int FUSED) {
    VEC acc[AT_KT][AT_QV];
    L2_UNROLL(AT_KT)
    for (int j = 0; j < AT_KT; j++)
        for (int u = 0; u < AT_QV; u++) acc[j][u] = V_OP(setzero_ps)();
    for (int d = 0; d < hs; d++) {
        VEC q[AT_QV];
        for (int u = 0; u < AT_QV; u++)
            if (u < QV) q[u] = V_OP(loadu_ps)(qt + (size_t)d * AT_Q + (size_t)u * V_LANES);
        L2_UNROLL(AT_KT)
        for (int j = 0; j < AT_KT; j++) {
            if (j >= KT) continue;
            const VEC kb = v_bcast(k + (size_t)j * kv_stride + (size_t)d);
            for (int u = 0; u < AT_QV; u++)
                if (u < QV) acc[j][u] = AT_MADD(q[u], kb, acc[j][u], FUSED);
        }
    }
    L2_UNROLL(AT_KT)
    for (int j = 0; j < AT_KT; j++) {
        if (j >= KT) continue;
        for (int u = 0; u < AT_QV; u++)
            if (u < QV) V_OP(storeu_ps)(s + (size_t)j * AT_Q + (size_t)u * V_LANES, V_OP(div_ps)(acc[j][u], scale));
    }
}

/* The score tile of kt keys (1..AT_KT) and qv query vectors (1..AT_QV),
 * constants for the compiler, fused or not (a constant). */
V_INLINE void attn_scores_any(float *s, const float *qt, const float *k, size_t kv_stride, int hs, VEC scale, int kt,
                              int qv, int FUSED) {
#define SCORES_1(KT) attn_scores_tile(s, qt, k, kv_stride, hs, scale, KT, 1, FUSED)
#define SCORES_2(KT) attn_scores_tile(s, qt, k, kv_stride, hs, scale, KT, 2, FUSED)
#if AT_QV > 1
    if (qv > 1) {
        switch (kt) { L2_CASES(AT_KT, SCORES_2) }
        return;
    }
#endif
    switch (kt) { L2_CASES(AT_KT, SCORES_1) }
#undef SCORES_1
#undef SCORES_2
}

V_FN static void attn_scores(float *s, const float *qt, const float *k, size_t kv_stride, int hs, VEC scale, int kt,
                             int qv, int fused) {
    if (fused)
        attn_scores_any(s, qt, k, kv_stride, hs, scale, kt, qv, 1);
    else
        attn_scores_any(s, qt, k, kv_stride, hs, scale, kt, qv, 0);
}

/* out[j][0..DV vectors) = sum over t < n of s[t][j] * v[t][...] for j < QT,
 * a multiply-add (AT_MADD) per position in order; s points at the tile's
 * first query lane. */
V_INLINE void attn_values_tile(float *const *out, const float *s, const float *v, size_t kv_stride, int n, int QT,
                               int DV, int FUSED) {
    VEC acc[AT_QT][2];
    L2_UNROLL(AT_QT)
    for (int j = 0; j < AT_QT; j++) acc[j][0] = acc[j][1] = V_OP(setzero_ps)();
    for (int t = 0; t < n; t++) {
        const float *vt = v + (size_t)t * kv_stride;
        VEC v0 = V_OP(loadu_ps)(vt), v1 = v0;
        if (DV > 1) v1 = V_OP(loadu_ps)(vt + V_LANES);
        L2_UNROLL(AT_QT)
        for (int j = 0; j < AT_QT; j++) {
            if (j >= QT) continue;
            const VEC p = v_bcast(s + (size_t)t * AT_Q + (size_t)j);
            acc[j][0] = AT_MADD(p, v0, acc[j][0], FUSED);
            if (DV > 1) acc[j][1] = AT_MADD(p, v1, acc[j][1], FUSED);
        }
    }
    L2_UNROLL(AT_QT)
    for (int j = 0; j < AT_QT; j++) {
        if (j >= QT) continue;
        V_OP(storeu_ps)(out[j], acc[j][0]);
        if (DV > 1) V_OP(storeu_ps)(out[j] + V_LANES, acc[j][1]);
    }
}

/* The value tile of qt queries (1..AT_QT) and dv vectors of dimensions
 * (1 or 2), constants for the compiler, fused or not (a constant). */
V_INLINE void attn_values_any(float *const *out, const float *s, const float *v, size_t kv_stride, int n, int qt,
                              int dv, int FUSED) {
#define VALUES_1(QT) attn_values_tile(out, s, v, kv_stride, n, QT, 1, FUSED)
#define VALUES_2(QT) attn_values_tile(out, s, v, kv_stride, n, QT, 2, FUSED)
    if (dv > 1) {
        switch (qt) { L2_CASES(AT_QT, VALUES_2) }
        return;
    }
    switch (qt) { L2_CASES(AT_QT, VALUES_1) }
#undef VALUES_1
#undef VALUES_2
}

V_FN static void attn_values(float *const *out, const float *s, const float *v, size_t kv_stride, int n, int qt,
                             int dv, int fused) {
    if (fused)
        attn_values_any(out, s, v, kv_stride, n, qt, dv, 1);
    else
        attn_values_any(out, s, v, kv_stride, n, qt, dv, 0);
}

/* The softmax of every lane of s[0..n)[AT_Q] over its first n_keys[lane]
 * rows; the rows past a lane's n_keys become 0 (the level's). */
V_FN static void attn_softmax(float *s, int n, const int *n_keys, int nq);

/* The same, each lane l2_softmax_ref's bits: the first largest score (a
 * later one replaces it only where greater), l2_expf of each score less it
 * (expf8_exact), their sum in order, each divided by the sum. Eight lanes
 * at a time at both widths. */
V_FN static void attn_softmax_exact(float *s, int n, const int *n_keys, int nq) {
    int32_t lim[AT_Q];
    keys_per_lane(lim, n_keys, nq);
    for (int h = 0; h < AT_Q; h += 8) {
        const __m256i limv = _mm256_loadu_si256((const __m256i *)(lim + h));
        __m256 m = _mm256_loadu_ps(s + h);
        for (int t = 1; t < n; t++) {
            const __m256 ok = _mm256_castsi256_ps(_mm256_cmpgt_epi32(limv, _mm256_set1_epi32(t)));
            const __m256 x = _mm256_loadu_ps(s + (size_t)t * AT_Q + h);
            m = _mm256_blendv_ps(m, x, _mm256_and_ps(ok, _mm256_cmp_ps(x, m, _CMP_GT_OQ)));
        }
        __m256 sum = _mm256_setzero_ps();
        for (int t = 0; t < n; t++) {
            const __m256 ok = _mm256_castsi256_ps(_mm256_cmpgt_epi32(limv, _mm256_set1_epi32(t)));
            float *st = s + (size_t)t * AT_Q + h;
            /* the lanes past their keys take e^0, then 0 */
            const __m256 x = _mm256_blendv_ps(m, _mm256_loadu_ps(st), ok);
            const __m256 e = _mm256_and_ps(expf8_exact(_mm256_sub_ps(x, m)), ok);
            _mm256_storeu_ps(st, e);
            sum = _mm256_add_ps(sum, e);
        }
        /* Lanes without keys: divide their zeros by 1. */
        sum = _mm256_blendv_ps(sum, _mm256_set1_ps(1.0f), _mm256_cmp_ps(sum, _mm256_setzero_ps(), _CMP_EQ_OQ));
        for (int t = 0; t < n; t++) {
            float *st = s + (size_t)t * AT_Q + h;
            _mm256_storeu_ps(st, _mm256_div_ps(_mm256_loadu_ps(st), sum));
        }
    }
}

/* The attention of 4 to AT_Q queries as lanes (hs a multiple of V_LANES):
 * each key row is read once for all its queries, each value row once per
 * value tile. With `exact`, every step is the reference's arithmetic (the
 * exact tables: products rounded before they are added, attn_softmax_exact),
 * so that each query gets l2_attention_ref's bits. */
V_FN static void attention_block(float *const *out, const float *const *q, const int *n_keys, int nq, const float *k,
                                 const float *v, size_t kvs, int hs, float *scratch, int exact) {
    const int n = most_keys(n_keys, nq);
    float *qt = scratch, *s = scratch + (size_t)hs * AT_Q;
    queries_as_lanes(qt, q, nq, hs);

    const VEC scale = V_OP(set1_ps)(sqrtf((float)hs));
    for (int t = 0; t < n; t += AT_KT)
        attn_scores(s + (size_t)t * AT_Q, qt, k + (size_t)t * kvs, kvs, hs, scale, n - t < AT_KT ? n - t : AT_KT,
                    nq > V_LANES ? 2 : 1, !exact);
    if (exact)
        attn_softmax_exact(s, n, n_keys, nq);
    else
        attn_softmax(s, n, n_keys, nq);

    /* Query tiles, each over the keys its queries see. */
    for (int i = 0; i < nq;) {
        const int qn = AT_NEXT_QUERIES(nq - i);
        const int tn = most_keys(n_keys + i, qn);
        float *o[AT_QT];
        int d = 0;
        for (; d + 2 * V_LANES <= hs; d += 2 * V_LANES) {
            for (int j = 0; j < qn; j++) o[j] = out[i + j] + d;
            attn_values(o, s + i, v + d, kvs, tn, qn, 2, !exact);
        }
        if (d < hs) {
            for (int j = 0; j < qn; j++) o[j] = out[i + j] + d;
            attn_values(o, s + i, v + d, kvs, tn, qn, 1, !exact);
        }
        i += qn;
    }
}
#endif
