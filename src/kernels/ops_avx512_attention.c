/*
 * The AVX-512 attention of the avx512, avx512-vnni and amx fast tables (their
 * exact tables use the AVX2 exact attention). Per query, exactly the AVX2
 * fast table's arithmetic, which it calls for fewer than 4 queries, so that
 * a query alone and in a block get the same bits.
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

#define AT_KT 8 /* keys per score tile */
#define AT_QT 8 /* queries per output tile */
#define AT_NEXT_QUERIES(left) ((left) < 8 ? (left) : 8)

/* --------------------------------------------------------- attention */

/* As in ops_avx2_attention.c, the queries are the vector lanes: qt[d][16] holds
 * dimension d of every query (one vector), the scores go to s[t][16]; the
 * scores are register tiles of up to 8 keys x 16 queries (each key value
 * broadcast), the softmax of every query runs down its lane, and the output
 * tiles are up to 8 queries x 32 dimensions (each probability broadcast).
 * Per query every sum is the AVX2 fast table's, in the reference's order:
 * the dot product over d (fused), the division by the scale, exp8, the
 * softmax sums over t, the output over t (fused); queries that see fewer
 * keys than the call's largest n_keys get exactly 0 for the positions past
 * theirs, which changes none of their sums. */
#define X86_ATTENTION_TILES
#include "ops_x86_tiles.h"

/* The softmax of every lane of s[0..n)[16] over its first n_keys[lane]
 * rows; the rows past a lane's n_keys become 0. */
AVX512_FN static void attn_softmax(float *s, int n, const int *n_keys, int nq) {
    int32_t lim[AT_Q];
    keys_per_lane(lim, n_keys, nq);
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

AVX512_FN void l2_attention_avx512(float *const *out, const float *const *q, const int *n_keys, int nq,
                                   const float *k, const float *v, int kv_stride, int hs, float *scratch) {
    /* One query at a time, and head sizes that are not a multiple of 16:
     * the AVX2 table's (the same arithmetic). */
    if (nq < 4 || hs % 16 != 0) {
        l2_attention_avx2(out, q, n_keys, nq, k, v, kv_stride, hs, scratch);
        return;
    }
    attention_block(out, q, n_keys, nq, k, v, (size_t)kv_stride, hs, scratch, 0);
}

/* The exact tables' attention (l2_attention_ref's bits): the AVX2 exact
 * attention's, on 16 lanes for 4 queries and more. */
AVX512_FN void l2_attention_exact_avx512(float *const *out, const float *const *q, const int *n_keys, int nq,
                                         const float *k, const float *v, int kv_stride, int hs, float *scratch) {
    if (nq < 4 || hs % 16 != 0) {
        l2_attention_exact_avx2(out, q, n_keys, nq, k, v, kv_stride, hs, scratch);
        return;
    }
    attention_block(out, q, n_keys, nq, k, v, (size_t)kv_stride, hs, scratch, 1);
}

#else

/* ISO C forbids an empty translation unit. */
typedef int l2_ops_avx512_attention_unused;

#endif
