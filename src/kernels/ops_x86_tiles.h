/* The register tiles that the AVX2 and AVX-512 levels share, written once
 * for both vector widths: the fp32 product's dot tile (ops_avx2_matmul.c,
 * ops_avx512_matmul.c) and the blocked attention's score and value tiles
 * (ops_avx2_attention.c, ops_avx512_attention.c). A level's file includes
 * this after defining
 *   X86_W             its vector width in bits (256 or 512);
 *   V_FN, V_INLINE    its target attributes (AVX2_FN, AVX2_INLINE, ...);
 *   MM_R, MM_B        with X86_DOT_TILE: the dot tile's rows and inputs;
 *   AT_Q, AT_KT, AT_QT, AT_QV
 *                     with X86_ATTENTION_TILES: the queries of a call, the
 *                     keys of a score tile, the queries of a value tile, and
 *                     the vectors the queries fill (16 / lanes);
 * and the width's helpers (ops_avx2_util.h, ops_avx512_util.h: vmaskW,
 * v_tailW, v_no_maskW, v_maskz_loadW, v_bcastW, v_fold8W for W = X86_W).
 * The arithmetic of a tile is the same at both widths: a level's results
 * depend on its width only through its lanes. */
#ifndef LLAMA2_OPS_X86_TILES_H
#define LLAMA2_OPS_X86_TILES_H

#define X86_CAT_(a, b) a##b
#define X86_CAT(a, b) X86_CAT_(a, b)
/* _mm256_<op> or _mm512_<op> */
#define V_OP(op) X86_CAT(X86_CAT(_mm, X86_W), X86_CAT(_, op))
#define VEC X86_CAT(__m, X86_W)
#define VMASK X86_CAT(vmask, X86_W)
#define V_LANES (X86_W / 32)
#define v_tail X86_CAT(v_tail, X86_W)
#define v_no_mask X86_CAT(v_no_mask, X86_W)
#define v_maskz_load X86_CAT(v_maskz_load, X86_W)
#define v_bcast X86_CAT(v_bcast, X86_W)
#define v_fold8 X86_CAT(v_fold8, X86_W)

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
 * MM_R or MM_B times. */
V_INLINE void dot_tile_step(VEC acc[MM_R][MM_B], const float *const w[MM_R], const float *x, size_t cols, size_t k,
                            size_t kw, VMASK m, int masked, int R, int B) {
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
                       size_t k1, int R, int B) {
    VEC acc[MM_R][MM_B];
    L2_UNROLL(MM_R)
    for (int r = 0; r < MM_R; r++)
        L2_UNROLL(MM_B)
        for (int b = 0; b < MM_B; b++) acc[r][b] = V_OP(setzero_ps)();
    size_t k = k0;
    for (; k + V_LANES <= k1; k += V_LANES) dot_tile_step(acc, w, x, cols, k, k - k0, v_no_mask(), 0, R, B);
    if (k < k1) dot_tile_step(acc, w, x, cols, k, k - k0, v_tail((int)(k1 - k)), 1, R, B);
    L2_UNROLL(MM_B)
    for (int b = 0; b < MM_B; b++) {
        if (b >= B) continue;
        store_row_dots(out + (size_t)b * os, v_fold8(acc[0][b]), v_fold8(acc[1][b]), v_fold8(acc[2][b]),
                       v_fold8(acc[3][b]), k0, R);
    }
}
#endif

#ifdef X86_ATTENTION_TILES
#undef X86_ATTENTION_TILES
/* The blocked attention takes the queries as the vector lanes: qt[d][AT_Q]
 * holds dimension d of every query (AT_QV vectors), the scores go to
 * s[t][AT_Q]. */

/* s[(t + j) * AT_Q + lane] = dot(query lane, key t + j) / scale for
 * j < KT, the dot a fused multiply-add per dimension in order; the first
 * QV vectors of queries. */
V_INLINE void attn_scores_tile(float *s, const float *qt, const float *k, size_t kv_stride, int hs, VEC scale, int KT,
                               int QV) {
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
                if (u < QV) acc[j][u] = V_OP(fmadd_ps)(q[u], kb, acc[j][u]);
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
 * both constants for the compiler. */
V_FN static void attn_scores(float *s, const float *qt, const float *k, size_t kv_stride, int hs, VEC scale, int kt,
                             int qv) {
#define SCORES_1(KT) attn_scores_tile(s, qt, k, kv_stride, hs, scale, KT, 1)
#define SCORES_2(KT) attn_scores_tile(s, qt, k, kv_stride, hs, scale, KT, 2)
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

/* out[j][0..DV vectors) = sum over t < n of s[t][j] * v[t][...] for j < QT,
 * a fused multiply-add per position in order; s points at the tile's first
 * query lane. */
V_INLINE void attn_values_tile(float *const *out, const float *s, const float *v, size_t kv_stride, int n, int QT,
                               int DV) {
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
            acc[j][0] = V_OP(fmadd_ps)(p, v0, acc[j][0]);
            if (DV > 1) acc[j][1] = V_OP(fmadd_ps)(p, v1, acc[j][1]);
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
 * (1 or 2), both constants for the compiler. */
V_FN static void attn_values(float *const *out, const float *s, const float *v, size_t kv_stride, int n, int qt,
                             int dv) {
#define VALUES_1(QT) attn_values_tile(out, s, v, kv_stride, n, QT, 1)
#define VALUES_2(QT) attn_values_tile(out, s, v, kv_stride, n, QT, 2)
    if (dv > 1) {
        switch (qt) { L2_CASES(AT_QT, VALUES_2) }
        return;
    }
    switch (qt) { L2_CASES(AT_QT, VALUES_1) }
#undef VALUES_1
#undef VALUES_2
}
#endif
