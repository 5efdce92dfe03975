/*
 * The AVX2 + FMA kernel table (x86-64 CPUs from Haswell and Zen on).
 *
 * Every function carries target("avx2,fma") so that the file builds without
 * -march=native (PORTABLE=1) and on any compiler that knows the attribute;
 * select.c hands this table out only when the CPU has both extensions.
 *
 * Accuracy against ops_ref.c:
 *   dot, rmsnorm, matmul_f32 for one input: fused multiply-adds in several
 *       accumulators, so the sums are reordered (differences of the order of
 *       n * 2^-24 * sum |a[i] * b[i]|);
 *   matmul_f32 for several inputs: one chain of fused multiply-adds per
 *       output in column order (the reference's order, with fused roundings);
 *   softmax, swiglu: a vectorised expf within 1.3 ulp (measured over the
 *       whole range);
 *   attention: the reference's sums in its order, with fused roundings and
 *       the vectorised expf;
 *   axpy, add, values: the reference's arithmetic element by element (same
 *       bits);
 *   quantize_q8, matmul_q8: in ops_avx2_q8.c, the reference's bits exactly.
 *
 * For one input (generation) matmul_f32 streams whole rows and leaves the
 * prefetching to the hardware (software prefetching did not help on Zen 3).
 * For several inputs it is a packed, blocked product with its own
 * prefetching: see gemm_f32.
 */
#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>
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

/* [sum a, sum b, sum c, sum d] */
AVX2_INLINE __m128 hsum4x8(__m256 a, __m256 b, __m256 c, __m256 d) {
    __m256 ab = _mm256_hadd_ps(a, b);
    __m256 cd = _mm256_hadd_ps(c, d);
    __m256 abcd = _mm256_hadd_ps(ab, cd);
    return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

/* e^x within about 1-2 ulp over the whole float range: 0 below about -104,
 * +inf above 88.72, subnormal results rounded once, NaN kept.
 * x = n ln2 + r with |r| <= ln2 / 2 (Cody and Waite's two-part ln2), e^r by
 * a degree-7 minimax-style polynomial 1 + r + r^2 P(r) (the classic Cephes
 * expf coefficients), and 2^n applied as two exact power-of-two factors so
 * that n down to -150 and up to 128 stays in the exponent range. */
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

/* ----------------------------------------------------------- vectors */

AVX2_FN static float dot_avx2(const float *a, const float *b, int n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    if (i < n) {
        __m256i m = tail_mask(n - i);
        s1 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m), s1);
    }
    return hsum8(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

AVX2_FN static void rmsnorm_avx2(float *out, const float *x, const float *weight, int n) {
    float ss = dot_avx2(x, x, n);
    ss /= (float)n;
    ss += 1e-5f;
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

    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 e0 = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), max));
        __m256 e1 = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), max));
        _mm256_storeu_ps(x + i, e0);
        _mm256_storeu_ps(x + i + 8, e1);
        s0 = _mm256_add_ps(s0, e0);
        s1 = _mm256_add_ps(s1, e1);
    }
    for (; i + 8 <= n; i += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), max));
        _mm256_storeu_ps(x + i, e);
        s0 = _mm256_add_ps(s0, e);
    }
    if (i < n) {
        __m256i m = tail_mask(n - i);
        __m256 e = exp8(_mm256_sub_ps(_mm256_maskload_ps(x + i, m), max));
        e = _mm256_and_ps(e, _mm256_castsi256_ps(m));
        _mm256_maskstore_ps(x + i, m, e);
        s1 = _mm256_add_ps(s1, e);
    }
    const __m256 sum = _mm256_set1_ps(hsum8(_mm256_add_ps(s0, s1)));

    i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_div_ps(_mm256_loadu_ps(x + i), sum));
    if (i < n) {
        __m256i m = tail_mask(n - i);
        _mm256_maskstore_ps(x + i, m, _mm256_div_ps(_mm256_maskload_ps(x + i, m), sum));
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

/* y += a * x, multiply then add as the reference does (same bits). */
AVX2_FN static void axpy_avx2(float *y, float a, const float *x, int n) {
    const __m256 av = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i), _mm256_mul_ps(av, _mm256_loadu_ps(x + i))));
    if (i < n) {
        __m256i m = tail_mask(n - i);
        _mm256_maskstore_ps(y + i, m,
                            _mm256_add_ps(_mm256_maskload_ps(y + i, m), _mm256_mul_ps(av, _mm256_maskload_ps(x + i, m))));
    }
}

/* values (see ops.h): nv vectors of columns, and a last vector of tail
 * columns when tail > 0, held in registers across every position, so that
 * out is read and written once and each element's chain is the reference's
 * (product rounded, then added, in t order). Value rows kv_stride apart are
 * no stream the hardware prefetchers follow, so rows a few positions ahead
 * are prefetched. */
#define VALUES_AHEAD 8

AVX2_INLINE void values_cols(float *out, const float *att, const float *v, size_t stride, int n_keys, int nv,
                             int tail) {
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
        for (int j = 0; j < nv; j++) acc[j] = _mm256_add_ps(acc[j], _mm256_mul_ps(a, _mm256_loadu_ps(vt + 8 * j)));
        if (tail > 0) acc[nv] = _mm256_add_ps(acc[nv], _mm256_mul_ps(a, _mm256_maskload_ps(vt + 8 * nv, m)));
    }
#pragma GCC unroll 8
    for (int j = 0; j < nv; j++) _mm256_storeu_ps(out + 8 * j, acc[j]);
    if (tail > 0) _mm256_maskstore_ps(out + 8 * nv, m, acc[nv]);
}

AVX2_FN static void values_avx2(float *out, const float *att, const float *v, int kv_stride, int n_keys, int hs) {
    const size_t stride = (size_t)kv_stride;
    int i = 0;
    for (; i + 64 < hs; i += 64) values_cols(out + i, att, v + i, stride, n_keys, 8, 0);
    const int left = hs - i, tail = left % 8;
    out += i;
    v += i;
    /* The vector count as a constant, for registers that stay registers. */
    switch (left / 8) {
    case 0: values_cols(out, att, v, stride, n_keys, 0, tail); break;
    case 1: values_cols(out, att, v, stride, n_keys, 1, tail); break;
    case 2: values_cols(out, att, v, stride, n_keys, 2, tail); break;
    case 3: values_cols(out, att, v, stride, n_keys, 3, tail); break;
    case 4: values_cols(out, att, v, stride, n_keys, 4, tail); break;
    case 5: values_cols(out, att, v, stride, n_keys, 5, tail); break;
    case 6: values_cols(out, att, v, stride, n_keys, 6, tail); break;
    case 7: values_cols(out, att, v, stride, n_keys, 7, tail); break;
    default: values_cols(out, att, v, stride, n_keys, 8, 0); break;
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

/* -------------------------------------------------------- matmul_f32 */

/* One input, four rows (any four: w0..w3): the bandwidth-bound
 * matrix-vector product. Two accumulators per row hide the FMA latency; the
 * four row streams and x are read once. Each row's sum depends on that row
 * alone (hsum4x8 adds each vector on its own). */
AVX2_INLINE __m128 gemv4_f32(const float *x, const float *w0, const float *w1, const float *w2, const float *w3,
                             size_t cols) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    __m256 b0 = _mm256_setzero_ps(), b1 = _mm256_setzero_ps(), b2 = _mm256_setzero_ps(), b3 = _mm256_setzero_ps();
    size_t k = 0;
    for (; k + 16 <= cols; k += 16) {
        __m256 x0 = _mm256_loadu_ps(x + k), x1 = _mm256_loadu_ps(x + k + 8);
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + k), x0, a0);
        b0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + k + 8), x1, b0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + k), x0, a1);
        b1 = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + k + 8), x1, b1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w2 + k), x0, a2);
        b2 = _mm256_fmadd_ps(_mm256_loadu_ps(w2 + k + 8), x1, b2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w3 + k), x0, a3);
        b3 = _mm256_fmadd_ps(_mm256_loadu_ps(w3 + k + 8), x1, b3);
    }
    if (k + 8 <= cols) {
        __m256 x0 = _mm256_loadu_ps(x + k);
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + k), x0, a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + k), x0, a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w2 + k), x0, a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w3 + k), x0, a3);
        k += 8;
    }
    if (k < cols) {
        __m256i m = tail_mask((int)(cols - k));
        __m256 x1 = _mm256_maskload_ps(x + k, m);
        b0 = _mm256_fmadd_ps(_mm256_maskload_ps(w0 + k, m), x1, b0);
        b1 = _mm256_fmadd_ps(_mm256_maskload_ps(w1 + k, m), x1, b1);
        b2 = _mm256_fmadd_ps(_mm256_maskload_ps(w2 + k, m), x1, b2);
        b3 = _mm256_fmadd_ps(_mm256_maskload_ps(w3 + k, m), x1, b3);
    }
    return hsum4x8(_mm256_add_ps(a0, b0), _mm256_add_ps(a1, b1), _mm256_add_ps(a2, b2), _mm256_add_ps(a3, b3));
}

/* One input: the rows [row_begin, row_end) as four quarters, each row of a
 * group of four taken from its own quarter, so that the weights are read as
 * four long sequential streams (rows of a few KiB read four at a time, side
 * by side, are short streams that the hardware prefetcher follows poorly:
 * about 2/3 of the bandwidth on Zen 3). The rows left over are run through
 * the same code (the same bits) with their row repeated. */
AVX2_FN static void gemv_f32(float *out, const float *x, const float *w, size_t cols, int row_begin, int row_end) {
    const int q = (row_end - row_begin) / 4;
    const size_t qc = (size_t)q * cols;
    for (int i = 0; i < q; i++) {
        const int r = row_begin + i;
        const float *w0 = w + (size_t)r * cols;
        __m128 v = gemv4_f32(x, w0, w0 + qc, w0 + 2 * qc, w0 + 3 * qc, cols);
        out[r] = _mm_cvtss_f32(v);
        out[r + q] = _mm_cvtss_f32(_mm_shuffle_ps(v, v, 1));
        out[r + 2 * q] = _mm_cvtss_f32(_mm_shuffle_ps(v, v, 2));
        out[r + 3 * q] = _mm_cvtss_f32(_mm_shuffle_ps(v, v, 3));
    }
    for (int r = row_begin + 4 * q; r < row_end; r++) {
        const float *wr = w + (size_t)r * cols;
        out[r] = _mm_cvtss_f32(gemv4_f32(x, wr, wr, wr, wr, cols));
    }
}

/* Several inputs: a blocked matrix product. The rows are taken in panels of
 * MM_NR = 16 and the columns in blocks of MM_KC (up to MM_KC_MAX for the
 * last); each panel block is packed (transposed) into wp[k][16], so that one
 * column k of 16 rows is two aligned vectors. The register tile is up to 6
 * inputs x 16 rows: per column two weight vectors, one broadcast value of
 * each input, 12 fused multiply-adds into 12 accumulators that hold the
 * outputs themselves (no horizontal sums). The packed block (16 KiB) stays
 * in L1 while every input passes over it, and each weight is read from
 * memory once per call.
 *
 * The outputs of a column block are added onto those of the previous block
 * by starting the accumulators from them, so every output is one chain of
 * multiply-adds in column order, whatever the row range, the inputs or the
 * blocking. */
#define MM_NR 16
#define MM_MR 6
#define MM_KC 256
#define MM_KC_MAX (MM_KC + MM_KC / 2)

/* Columns of the block at k0: MM_KC, or all that are left when that is at
 * most MM_KC_MAX (no short last block). The split does not change any sum:
 * each output's chain continues from block to block. */
static int gemm_block_cols(size_t k0, size_t cols) {
    size_t left = cols - k0;
    return left <= MM_KC_MAX ? (int)left : MM_KC;
}

/* Loads the 8 floats at p and q + 0..3 into the low lane and p + 4.. and so
 * on: [p[0..3], q[0..3]]. */
AVX2_INLINE __m256 load_2x4(const float *p, const float *q) {
    return _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(p)), _mm_loadu_ps(q), 1);
}

/* dst[k * 16 + r] = w[r * cols + k] for r < nr (nr <= 16), k < kc; the rows
 * from nr to 15 are zero. */
AVX2_INLINE void transpose8(float *d, const float *p, size_t c) {
    __m256 r0 = load_2x4(p, p + 4 * c), r1 = load_2x4(p + c, p + 5 * c);
    __m256 r2 = load_2x4(p + 2 * c, p + 6 * c), r3 = load_2x4(p + 3 * c, p + 7 * c);
    __m256 r4 = load_2x4(p + 4, p + 4 * c + 4), r5 = load_2x4(p + c + 4, p + 5 * c + 4);
    __m256 r6 = load_2x4(p + 2 * c + 4, p + 6 * c + 4), r7 = load_2x4(p + 3 * c + 4, p + 7 * c + 4);
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    _mm256_store_ps(d + 0 * MM_NR, _mm256_shuffle_ps(t0, t2, 0x44));
    _mm256_store_ps(d + 1 * MM_NR, _mm256_shuffle_ps(t0, t2, 0xee));
    _mm256_store_ps(d + 2 * MM_NR, _mm256_shuffle_ps(t1, t3, 0x44));
    _mm256_store_ps(d + 3 * MM_NR, _mm256_shuffle_ps(t1, t3, 0xee));
    _mm256_store_ps(d + 4 * MM_NR, _mm256_shuffle_ps(t4, t6, 0x44));
    _mm256_store_ps(d + 5 * MM_NR, _mm256_shuffle_ps(t4, t6, 0xee));
    _mm256_store_ps(d + 6 * MM_NR, _mm256_shuffle_ps(t5, t7, 0x44));
    _mm256_store_ps(d + 7 * MM_NR, _mm256_shuffle_ps(t5, t7, 0xee));
}

/* dst[k * 16 + r] = w[r * cols + k] for r < nr (nr <= 16), k < kc; the rows
 * from nr to 15 are zero. Each row is read 16 columns (a cache line) at a
 * time. */
AVX2_FN static void pack_panel(float *dst, const float *w, size_t cols, int nr, int kc) {
    int k = 0;
    if (nr == MM_NR) {
        for (; k + 16 <= kc; k += 16) {
            float *d = dst + (size_t)k * MM_NR;
            const float *p = w + (size_t)k;
            transpose8(d, p, cols);
            transpose8(d + 8 * MM_NR, p + 8, cols);
            transpose8(d + 8, p + 8 * cols, cols);
            transpose8(d + 8 * MM_NR + 8, p + 8 * cols + 8, cols);
        }
        for (; k + 8 <= kc; k += 8) {
            transpose8(dst + (size_t)k * MM_NR, w + (size_t)k, cols);
            transpose8(dst + (size_t)k * MM_NR + 8, w + 8 * cols + (size_t)k, cols);
        }
    }
    for (; k < kc; k++)
        for (int r = 0; r < MM_NR; r++) dst[(size_t)k * MM_NR + (size_t)r] = r < nr ? w[(size_t)r * cols + (size_t)k] : 0.0f;
}

/* The cache lines of the next block to pack (rows of lpr lines), requested
 * one at a time from inside the tiles' column loops, so that they arrive
 * while this block is multiplied: the hardware prefetcher follows 16 row
 * streams poorly, and a burst of requests stalls on the miss buffers. */
typedef struct gemm_prefetch {
    const float *base;
    size_t stride;
    int lpr, rows; /* lines per row, rows */
    int r, c;      /* the next line: row r, line c */
    int every;     /* one line per `every` columns of a tile */
} gemm_prefetch;

AVX2_INLINE void prefetch_line(gemm_prefetch *pf) {
    if (pf->r >= pf->rows) return;
    _mm_prefetch((const char *)(pf->base + (size_t)pf->r * pf->stride + (size_t)pf->c * 16), _MM_HINT_T0);
    if (++pf->c == pf->lpr) {
        pf->c = 0;
        pf->r++;
    }
}

/* out[i * os + r] (+)= sum_k wp[k * 16 + r] * x[i * xs + k] for i < MR,
 * r < nr (nr is 16 when FULL); accumulate: start from the outputs already
 * there. The masks of a partial panel are made outside the column loop's
 * reach: the loop needs all 16 vector registers. */
AVX2_INLINE void gemm_tile(float *out, size_t os, const float *x, size_t xs, const float *wp, int kc, int nr,
                           int accumulate, gemm_prefetch *pf, int MR, int FULL) {
    __m256 acc[MM_MR][2];
#pragma GCC unroll 6
    for (int i = 0; i < MM_MR; i++) {
        if (i >= MR) continue;
        acc[i][0] = _mm256_setzero_ps();
        acc[i][1] = _mm256_setzero_ps();
    }
    if (accumulate) {
        if (FULL) {
#pragma GCC unroll 6
            for (int i = 0; i < MM_MR; i++) {
                if (i >= MR) continue;
                acc[i][0] = _mm256_loadu_ps(out + (size_t)i * os);
                acc[i][1] = _mm256_loadu_ps(out + (size_t)i * os + 8);
            }
        } else {
            const __m256i m0 = tail_mask(nr >= 8 ? 8 : nr), m1 = tail_mask(nr > 8 ? nr - 8 : 0);
#pragma GCC unroll 6
            for (int i = 0; i < MM_MR; i++) {
                if (i >= MR) continue;
                acc[i][0] = _mm256_maskload_ps(out + (size_t)i * os, m0);
                acc[i][1] = _mm256_maskload_ps(out + (size_t)i * os + 8, m1);
            }
        }
    }
    for (int k0 = 0; k0 < kc; k0 += pf->every) {
        const int kend = kc - k0 < pf->every ? kc : k0 + pf->every;
        prefetch_line(pf);
#pragma GCC unroll 2
        for (int k = k0; k < kend; k++) {
            __m256 w0 = _mm256_load_ps(wp + (size_t)k * MM_NR), w1 = _mm256_load_ps(wp + (size_t)k * MM_NR + 8);
#pragma GCC unroll 6
            for (int i = 0; i < MM_MR; i++) {
                if (i >= MR) continue;
                __m256 xb = _mm256_broadcast_ss(x + (size_t)i * xs + (size_t)k);
                acc[i][0] = _mm256_fmadd_ps(w0, xb, acc[i][0]);
                acc[i][1] = _mm256_fmadd_ps(w1, xb, acc[i][1]);
            }
        }
    }
    if (FULL) {
#pragma GCC unroll 6
        for (int i = 0; i < MM_MR; i++) {
            if (i >= MR) continue;
            _mm256_storeu_ps(out + (size_t)i * os, acc[i][0]);
            _mm256_storeu_ps(out + (size_t)i * os + 8, acc[i][1]);
        }
    } else {
        const __m256i m0 = tail_mask(nr >= 8 ? 8 : nr), m1 = tail_mask(nr > 8 ? nr - 8 : 0);
#pragma GCC unroll 6
        for (int i = 0; i < MM_MR; i++) {
            if (i >= MR) continue;
            _mm256_maskstore_ps(out + (size_t)i * os, m0, acc[i][0]);
            _mm256_maskstore_ps(out + (size_t)i * os + 8, m1, acc[i][1]);
        }
    }
}

typedef void (*gemm_tile_fn)(float *out, size_t os, const float *x, size_t xs, const float *wp, int kc, int nr,
                             int accumulate, gemm_prefetch *pf);
#define GEMM_TILE(MR)                                                                                           \
    AVX2_FN static void gemm_tile_##MR(float *out, size_t os, const float *x, size_t xs, const float *wp, int kc, \
                                       int nr, int accumulate, gemm_prefetch *pf) {                             \
        gemm_tile(out, os, x, xs, wp, kc, nr, accumulate, pf, MR, 1);                                           \
    }                                                                                                           \
    AVX2_FN static void gemm_tile_##MR##_part(float *out, size_t os, const float *x, size_t xs, const float *wp, \
                                              int kc, int nr, int accumulate, gemm_prefetch *pf) {              \
        gemm_tile(out, os, x, xs, wp, kc, nr, accumulate, pf, MR, 0);                                           \
    }
GEMM_TILE(1)
GEMM_TILE(2)
GEMM_TILE(3)
GEMM_TILE(4)
GEMM_TILE(5)
GEMM_TILE(6)
/* [partial][MR] */
static const gemm_tile_fn gemm_tiles[2][MM_MR + 1] = {
    {NULL, gemm_tile_1, gemm_tile_2, gemm_tile_3, gemm_tile_4, gemm_tile_5, gemm_tile_6},
    {NULL, gemm_tile_1_part, gemm_tile_2_part, gemm_tile_3_part, gemm_tile_4_part, gemm_tile_5_part,
     gemm_tile_6_part}};

/* The register tiles of nb inputs: tiles of 6; a remainder of 1 or 2 is
 * merged with the last full tile and split as 4 + 3 or 4 + 4 (a tile of
 * fewer than 4 inputs has too few accumulators to hide the FMA latency).
 * Returns the number of tiles. */
static int gemm_input_tiles(int nb, int *sizes) {
    int n = 0;
    for (int b = 0; b < nb;) {
        int left = nb - b, mr = left < MM_MR ? left : MM_MR;
        if (left == MM_MR + 1 || left == MM_MR + 2) mr = 4;
        sizes[n++] = mr;
        b += mr;
    }
    return n;
}

/* The blocks are visited group of panels by group (MM_GROUP panels), and
 * within a group column block by column block, so that a column block of
 * the inputs (nb x MM_KC) stays in L2 while it meets every panel of the
 * group, and the group's outputs (nb x 64) stay in cache between column
 * blocks. */
#define MM_GROUP 4

typedef struct gemm_block {
    int r, nr;  /* panel rows */
    size_t k0;  /* first column */
    int kc;     /* columns */
} gemm_block;

/* The block after b in the visiting order; nr == 0 past the last. */
static gemm_block gemm_next_block(gemm_block b, int row_begin, int row_end, size_t cols) {
    const int group_first = row_begin + (b.r - row_begin) / (MM_NR * MM_GROUP) * (MM_NR * MM_GROUP);
    int group_end = group_first + MM_NR * MM_GROUP;
    if (group_end > row_end) group_end = row_end;
    gemm_block n = b;
    if (b.r + MM_NR < group_end) {
        n.r = b.r + MM_NR; /* the group's next panel, same columns */
    } else if (b.k0 + (size_t)b.kc < cols) {
        n.r = group_first; /* the group's first panel, next columns */
        n.k0 = b.k0 + (size_t)b.kc;
    } else if (group_end < row_end) {
        n.r = group_end; /* the next group */
        n.k0 = 0;
    } else {
        n.nr = 0;
        return n;
    }
    n.nr = row_end - n.r < MM_NR ? row_end - n.r : MM_NR;
    n.kc = gemm_block_cols(n.k0, cols);
    return n;
}

AVX2_FN static void gemm_f32(float *out, size_t os, const float *x, int nb, const float *w, size_t cols,
                             int row_begin, int row_end) {
    enum { MAX_TILES = 64 };
    if (nb > MM_MR * MAX_TILES) {
        /* More inputs than the tile list holds: run them in parts. */
        for (int b = 0; b < nb; b += MM_MR * (MAX_TILES - 4)) {
            int part = nb - b < MM_MR * (MAX_TILES - 4) ? nb - b : MM_MR * (MAX_TILES - 4);
            gemm_f32(out + (size_t)b * os, os, x + (size_t)b * cols, part, w, cols, row_begin, row_end);
        }
        return;
    }
    _Alignas(64) float wp[MM_KC_MAX * MM_NR];
    int tiles[MAX_TILES];
    const int n_tiles = gemm_input_tiles(nb, tiles);
    if (row_begin >= row_end || cols == 0) return;
    gemm_block blk = {row_begin, row_end - row_begin < MM_NR ? row_end - row_begin : MM_NR, 0,
                      gemm_block_cols(0, cols)};
    while (blk.nr > 0) {
        pack_panel(wp, w + (size_t)blk.r * cols + blk.k0, cols, blk.nr, blk.kc);
        const gemm_block next = gemm_next_block(blk, row_begin, row_end, cols);
        gemm_prefetch pf = {NULL, cols, 1, 0, 0, 0, blk.kc};
        if (next.nr > 0) {
            /* Lines of a row (the block may start mid-line: one more),
             * spread evenly over all the tiles' columns. */
            pf.base = w + (size_t)next.r * cols + next.k0;
            pf.rows = next.nr;
            pf.lpr = (next.kc + 15) / 16 + 1;
            pf.every = n_tiles * blk.kc / (pf.lpr * pf.rows);
            if (pf.every < 1) pf.every = 1;
        }
        const gemm_tile_fn *fns = gemm_tiles[blk.nr < MM_NR];
        for (int t = 0, b = 0; t < n_tiles; b += tiles[t], t++)
            fns[tiles[t]](out + (size_t)b * os + (size_t)blk.r, os, x + (size_t)b * cols + blk.k0, cols, wp, blk.kc,
                          blk.nr, blk.k0 > 0, &pf);
        while (pf.r < pf.rows) prefetch_line(&pf);
        blk = next;
    }
}

AVX2_FN static void matmul_f32_avx2(float *out, int out_stride, const float *x, int nb, const float *w, int cols,
                                    int row_begin, int row_end) {
    const size_t c = (size_t)cols;
    if (nb == 1) {
        gemv_f32(out, x, w, c, row_begin, row_end);
        return;
    }
    gemm_f32(out, (size_t)out_stride, x, nb, w, c, row_begin, row_end);
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

AVX2_FN static void attention_avx2(float *const *out, const float *const *q, const int *n_keys, int nq,
                                   const float *k, const float *v, int kv_stride, int hs, float *scratch) {
    if (nq <= 0) return;
    if (hs % 8 != 0) {
        l2_attention_ref(out, q, n_keys, nq, k, v, kv_stride, hs, scratch);
        return;
    }
    const size_t kvs = (size_t)kv_stride;
    int n = 0;
    for (int i = 0; i < nq; i++) n = n_keys[i] > n ? n_keys[i] : n;
    float *qt = scratch, *s = scratch + (size_t)hs * AT_Q;

    /* The queries, transposed; lanes past nq are 0. */
    for (int d = 0; d < hs; d++)
        for (int i = 0; i < AT_Q; i++) qt[(size_t)d * AT_Q + (size_t)i] = i < nq ? q[i][d] : 0.0f;

    const __m256 scale = _mm256_set1_ps(sqrtf((float)hs));
    const attn_scores_fn *scores = attn_scores[nq > 8];
    for (int t = 0; t < n; t += AT_KT) {
        int kt = n - t < AT_KT ? n - t : AT_KT;
        scores[kt](s + (size_t)t * AT_Q, qt, k + (size_t)t * kvs, kvs, hs, scale);
    }
    attn_softmax(s, n, n_keys, nq);

    /* Query tiles as in gemm_f32 (a remainder of 1 or 2 joins the last
     * full tile as 4 + 3 or 4 + 4), each over the keys its queries see. */
    for (int i = 0; i < nq;) {
        int left = nq - i, qn = left < AT_QT ? left : AT_QT;
        if (left == AT_QT + 1 || left == AT_QT + 2) qn = 4;
        int tn = 0;
        for (int j = i; j < i + qn; j++) tn = n_keys[j] > tn ? n_keys[j] : tn;
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

/* ------------------------------------------------------------- table */

static const l2_kernels avx2_table = {
    .name = "avx2",
    .dot = dot_avx2,
    .rmsnorm = rmsnorm_avx2,
    .softmax = softmax_avx2,
    .swiglu = swiglu_avx2,
    .axpy = axpy_avx2,
    .add = add_avx2,
    .matmul_f32 = matmul_f32_avx2,
    .quantize_q8 = l2_quantize_q8_avx2,
    .matmul_q8 = l2_matmul_q8_avx2,
    .gemv_q8_slots = l2_gemv_q8_slots_avx2,
    .attention = attention_avx2,
    .scores = l2_scores_avx2,
    .values = values_avx2,
};

const l2_kernels *l2_kernels_avx2(void) { return &avx2_table; }

#else

/* ISO C forbids an empty translation unit. */
typedef int l2_ops_avx2_unused;

#endif
