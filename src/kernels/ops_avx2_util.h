/* Pieces shared by the AVX2 kernel files (ops_avx2_*.c, ops_avx2_q8.c) and
 * the AVX-512 ones, which run on CPUs that have AVX2 too. */
#ifndef LLAMA2_OPS_AVX2_UTIL_H
#define LLAMA2_OPS_AVX2_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ops.h"
#include "ops_x86.h"
#include "platform/float_math.h"

#define AVX2_FN L2_TARGET(L2_AVX2)
#define AVX2_INLINE L2_INLINE(L2_AVX2)

/* -1 for the first `rem` lanes of the load at mask_bits + 8 - rem. */
static const int32_t mask_bits[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

AVX2_INLINE __m256i tail_mask(int rem) { return _mm256_loadu_si256((const __m256i *)(mask_bits + 8 - rem)); }

AVX2_INLINE float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Eight fp16 scales to fp32, the bits of l2_f16_to_f32: the magnitude's
 * bits moved to fp32's places and scaled by 2^112 (exact, subnormals
 * included), infinities and NaNs rebuilt, the sign put back. */
AVX2_INLINE __m256 f16_to_f32_8(__m128i h) {
    const __m256i v = _mm256_cvtepu16_epi32(h);
    const __m256i magnitude = _mm256_and_si256(v, _mm256_set1_epi32(0x7FFF));
    const __m256i sign = _mm256_slli_epi32(_mm256_and_si256(v, _mm256_set1_epi32(0x8000)), 16);
    const __m256 finite = _mm256_mul_ps(_mm256_castsi256_ps(_mm256_slli_epi32(magnitude, 13)),
                                        _mm256_castsi256_ps(_mm256_set1_epi32((127 + 112) << 23)));
    const __m256i special = _mm256_or_si256(_mm256_set1_epi32(0x7F800000),
                                            _mm256_slli_epi32(_mm256_and_si256(v, _mm256_set1_epi32(0x3FF)), 13));
    const __m256i is_special = _mm256_cmpgt_epi32(magnitude, _mm256_set1_epi32(0x7BFF));
    const __m256i bits = _mm256_blendv_epi8(_mm256_castps_si256(finite), special, is_special);
    return _mm256_castsi256_ps(_mm256_or_si256(bits, sign));
}

/* Bytes 4k..4k+3 of q in every 32-bit lane (a broadcast load): the input
 * side of a panel's vpmaddubsw step. */
AVX2_INLINE __m256i broadcast_piece(const int8_t *q, int k) {
    int32_t v;
    memcpy(&v, q + 4 * k, sizeof v);
    return _mm256_set1_epi32(v);
}

/* [p[0..3], q[0..3]] */
AVX2_INLINE __m256 load_2x4(const float *p, const float *q) {
    return _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(p)), _mm_loadu_ps(q), 1);
}

/* The largest of 8 lanes. */
AVX2_INLINE float hmax8(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

/* [sum a, sum b, sum c, sum d], each of its 8 lanes as
 * ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)). */
AVX2_INLINE __m128 hsum4x8(__m256 a, __m256 b, __m256 c, __m256 d) {
    __m256 ab = _mm256_hadd_ps(a, b);
    __m256 cd = _mm256_hadd_ps(c, d);
    __m256 abcd = _mm256_hadd_ps(ab, cd);
    return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

/* l2_expf(x) lane by lane, its bits (platform/float_math.c): the same
 * double operations in the same order on 4 lanes at a time, no fused
 * multiply-add where it has none. Lanes with |x| >= 88, where l2_expf
 * first sorts out infinities, NaN and underflow, are computed by l2_expf
 * itself (in a softmax, only scores far below the largest). */
AVX2_INLINE __m256d expf4_exact(__m128 x) {
    const double n = 32, inv_ln2_n = 0x1.71547652b82fep+0 * n, shift = 0x1.8p+52;
    /* float_product_minus's split of inv_ln2_n, and the polynomial scaled */
    const double c = 134217729.0 * inv_ln2_n, dh = c - (c - inv_ln2_n), dl = inv_ln2_n - dh;
    const double c0 = l2_exp2_poly[0] / n / n / n, c1 = l2_exp2_poly[1] / n / n, c2 = l2_exp2_poly[2] / n;
    const __m256d xd = _mm256_cvtps_pd(x);
    __m256d kd = _mm256_add_pd(_mm256_mul_pd(_mm256_set1_pd(inv_ln2_n), xd), _mm256_set1_pd(shift));
    const __m256i ki = _mm256_castpd_si256(kd);
    kd = _mm256_sub_pd(kd, _mm256_set1_pd(shift));
    const __m256d r = _mm256_add_pd(_mm256_sub_pd(_mm256_mul_pd(xd, _mm256_set1_pd(dh)), kd),
                                    _mm256_mul_pd(xd, _mm256_set1_pd(dl)));
    const __m256i t = _mm256_i64gather_epi64((const long long *)l2_exp2_table,
                                             _mm256_and_si256(ki, _mm256_set1_epi64x(31)), 8);
    /* The bits t + (ki << 47), which only the top 17 bits of t take part
     * in: added below them, so that no 64-bit addition wraps (SIMDe's
     * emulated one is a signed addition, which UBSan holds to that). */
    const __m256i top = _mm256_and_si256(_mm256_add_epi64(_mm256_srli_epi64(t, 47), ki), _mm256_set1_epi64x(0x1ffff));
    const __m256d s = _mm256_castsi256_pd(
        _mm256_or_si256(_mm256_and_si256(t, _mm256_set1_epi64x(((int64_t)1 << 47) - 1)), _mm256_slli_epi64(top, 47)));
    const __m256d p = _mm256_add_pd(_mm256_mul_pd(_mm256_set1_pd(c0), r), _mm256_set1_pd(c1));
    const __m256d r2 = _mm256_mul_pd(r, r);
    __m256d y = _mm256_add_pd(_mm256_mul_pd(_mm256_set1_pd(c2), r), _mm256_set1_pd(1.0));
    y = _mm256_add_pd(_mm256_mul_pd(p, r2), y);
    return _mm256_mul_pd(y, s);
}

AVX2_INLINE __m256 expf8_exact(__m256 x) {
    const __m128 lo = _mm256_cvtpd_ps(expf4_exact(_mm256_castps256_ps128(x)));
    const __m128 hi = _mm256_cvtpd_ps(expf4_exact(_mm256_extractf128_ps(x, 1)));
    __m256 e = _mm256_insertf128_ps(_mm256_castps128_ps256(lo), hi, 1);
    const __m256i abs = _mm256_and_si256(_mm256_castps_si256(x), _mm256_set1_epi32(0x7fffffff));
    const int far = _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(abs, _mm256_set1_epi32(0x42afffff))));
    if (far) {
        _Alignas(32) float xs[8], es[8];
        _mm256_store_ps(xs, x);
        _mm256_store_ps(es, e);
        for (int i = 0; i < 8; i++)
            if (far >> i & 1) es[i] = l2_expf(xs[i]);
        e = _mm256_load_ps(es);
    }
    return e;
}

/* e^x within about 1-2 ulp over the whole float range: 0 below about -104,
 * +inf above 88.72, subnormal results rounded once, NaN kept.
 * x = n ln2 + r with |r| <= ln2 / 2 (Cody and Waite's two-part ln2), e^r by
 * a degree-7 minimax-style polynomial 1 + r + r^2 P(r) (the classic Cephes
 * expf coefficients), and 2^n applied as two exact power-of-two factors so
 * that n down to -150 and up to 128 stays in the exponent range. The
 * AVX-512 kernels take it on each half of their vectors: the same bits. */
AVX2_INLINE __m256 exp8(__m256 x) {
    const __m256 lo = _mm256_set1_ps(-104.0f);
    const __m256 hi = _mm256_set1_ps(88.8f);
    /* max/min return their second operand for a NaN: keep x second. */
    x = _mm256_max_ps(lo, x);
    x = _mm256_min_ps(hi, x);
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    __m256 r2 = _mm256_mul_ps(r, r);
    p = _mm256_fmadd_ps(p, r2, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    /* 2^n = 2^n1 * 2^n2 with n1 = floor(n / 2): both factors normal. */
    __m256i ni = _mm256_cvtps_epi32(n);
    __m256i n1 = _mm256_srai_epi32(ni, 1);
    __m256i n2 = _mm256_sub_epi32(ni, n1);
    const __m256i bias = _mm256_set1_epi32(127);
    __m256 f1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
    __m256 f2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
    return _mm256_mul_ps(_mm256_mul_ps(p, f1), f2);
}

/* The blocked attentions (ops_avx2_attention.c, ops_avx512_attention.c) take the queries as
 * the vector lanes: qt[d][L2_ATTENTION_MAX_QUERIES] holds dimension d of
 * every query, 0 in the lanes past nq. */
AVX2_INLINE void queries_as_lanes(float *qt, const float *const *q, int nq, int hs) {
    for (int d = 0; d < hs; d++)
        for (int i = 0; i < L2_ATTENTION_MAX_QUERIES; i++)
            qt[(size_t)d * L2_ATTENTION_MAX_QUERIES + (size_t)i] = i < nq ? q[i][d] : 0.0f;
}

/* The most keys any of n queries sees. */
AVX2_INLINE int most_keys(const int *n_keys, int n) {
    int most = 0;
    for (int i = 0; i < n; i++) most = n_keys[i] > most ? n_keys[i] : most;
    return most;
}

/* A matmul tile's results for one input, a0..a3 the accumulators of its
 * rows (8 lanes each, R of them in use): o[r] = row r's dot over a block,
 * or after the first block (k0 > 0) the sum so far plus it, for r < R. */
AVX2_INLINE void store_row_dots(float *o, __m256 a0, __m256 a1, __m256 a2, __m256 a3, size_t k0, int R) {
    const __m256 z = _mm256_setzero_ps();
    const __m128 s = hsum4x8(a0, R > 1 ? a1 : z, R > 2 ? a2 : z, R > 3 ? a3 : z);
    if (R == 4) {
        _mm_storeu_ps(o, k0 == 0 ? s : _mm_add_ps(_mm_loadu_ps(o), s));
    } else {
        _Alignas(16) float v[4];
        _mm_store_ps(v, s);
        for (int r = 0; r < R; r++) o[r] = k0 == 0 ? v[r] : o[r] + v[r];
    }
}

/* The matmuls' prefetch of the next row tile's block while one row tile is
 * multiplied: rows of `floats` floats ns floats apart from the address at
 * (0: none), a share of their cache lines before each of the row tile's
 * n_tiles input tiles, so that they arrive while it runs (such short
 * streams, side by side, the hardware prefetcher follows poorly). The
 * address is an integer: the last lines may lie past the matrix, where a
 * pointer may not point. */
typedef struct next_block {
    uintptr_t at;
    size_t ns, lines, total, share, line;
} next_block;

AVX2_INLINE next_block next_block_of(uintptr_t at, size_t ns, size_t rows, size_t floats, size_t n_tiles) {
    /* One line more than the floats fill: a row's block need not start at a
     * line's start. */
    const size_t lines = (floats + 15) / 16 + 1;
    const next_block p = {at, ns, lines, rows * lines, (rows * lines + n_tiles - 1) / n_tiles, 0};
    return p;
}

AVX2_INLINE void next_block_share(next_block *p) {
    if (p->at)
        for (size_t end = p->line + p->share; p->line < end && p->line < p->total; p->line++) {
            const size_t row = p->line / p->lines, line = p->line % p->lines;
            _mm_prefetch((const char *)(p->at + (row * p->ns + line * 16) * sizeof(float)), _MM_HINT_T0);
        }
}

#endif
