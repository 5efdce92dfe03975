/*
 * The AVX2 + FMA attention of the avx2 and avx2-vnni tables (and of the
 * AVX-512 tables for fewer than 4 queries), fast and exact. The fast one
 * against ops_ref.c: per query, the reference's sums in its order with
 * fused roundings and the vectorised expf, the same bits for a query alone
 * or in a block. The exact one is the reference's bits: one to three
 * queries from exact parts (l2_scores_avx2, l2_softmax_exact_avx2,
 * l2_values_avx2), more as the blocked tiles with the reference's
 * roundings (ops_x86_tiles.h).
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

#define AT_KT 6 /* keys per score tile */
#define AT_QT 6 /* queries per output tile */
/* Tiles of 6 queries; a remainder of 1 or 2 joins the last full tile as
 * 4 + 3 or 4 + 4. */
#define AT_NEXT_QUERIES(left) ((left) == 7 || (left) == 8 ? 4 : (left) < 6 ? (left) : 6)

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
#define X86_ATTENTION_TILES
#include "ops_x86_tiles.h"

/* The softmax of every lane of s[0..n)[16] over its first n_keys[lane]
 * rows; the rows past a lane's n_keys become 0. */
AVX2_FN static void attn_softmax(float *s, int n, const int *n_keys, int nq) {
    int32_t lim[AT_Q];
    keys_per_lane(lim, n_keys, nq);
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
    l2_softmax_avx2(att, n_keys);
    memset(out, 0, (size_t)hs * sizeof(float));
    values_fused(out, att, v, (int)kvs, n_keys, hs);
}

AVX2_FN void l2_attention_avx2(float *const *out, const float *const *q, const int *n_keys, int nq, const float *k,
                               const float *v, int kv_stride, int hs, float *scratch) {
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
    attention_block(out, q, n_keys, nq, k, v, kvs, hs, scratch, 0);
}

/* The exact tables' attention: the reference's arithmetic. One to three
 * queries one by one from exact parts, more (hs % 8 == 0) as the blocked
 * attention's exact form. */
AVX2_FN void l2_attention_exact_avx2(float *const *out, const float *const *q, const int *n_keys, int nq,
                                     const float *k, const float *v, int kv_stride, int hs, float *scratch) {
    if (nq >= 4 && hs % 8 == 0) {
        attention_block(out, q, n_keys, nq, k, v, (size_t)kv_stride, hs, scratch, 1);
        return;
    }
    for (int i = 0; i < nq; i++) {
        l2_scores_avx2(scratch, q[i], k, kv_stride, n_keys[i], hs);
        l2_softmax_exact_avx2(scratch, n_keys[i]);
        memset(out[i], 0, (size_t)hs * sizeof(float));
        l2_values_avx2(out[i], scratch, v, kv_stride, n_keys[i], hs);
    }
}

#else

/* ISO C forbids an empty translation unit. */
typedef int l2_ops_avx2_attention_unused;

#endif
