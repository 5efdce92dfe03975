/*
 * The AVX2 + FMA kernel table (x86-64 CPUs from Haswell and Zen on).
 *
 * Every function carries target("avx2,fma") so that the file builds without
 * -march=native (PORTABLE=1) and on any compiler that knows the attribute;
 * select.c hands this table out only when the CPU has both extensions.
 *
 * Accuracy against ops_ref.c:
 *   dot, rmsnorm, matmul_f32: fused multiply-adds in several accumulators,
 *       so the sums are reordered (differences of the order of
 *       n * 2^-24 * sum |a[i] * b[i]|);
 *   softmax, swiglu: a vectorised expf within 1.3 ulp (measured over the
 *       whole range);
 *   axpy, add: the reference's arithmetic element by element (same bits);
 *   quantize_q8, matmul_q8: in ops_avx2_q8.c, the reference's bits exactly.
 *
 * matmul_f32 was tried with software prefetching (of the next rows, and of
 * the next block for several inputs) and with blocking over the columns:
 * neither helped on Zen 3, so the kernels stream whole rows and leave the
 * prefetching to the hardware.
 */
#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ops.h"
#include "ops_isa.h"

#define AVX2_FN __attribute__((target("avx2,fma")))
#define AVX2_INLINE static inline __attribute__((target("avx2,fma"), always_inline))

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

AVX2_INLINE float hmax8(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
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

AVX2_FN static void add_avx2(float *y, const float *x, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i), _mm256_loadu_ps(x + i)));
    if (i < n) {
        __m256i m = tail_mask(n - i);
        _mm256_maskstore_ps(y + i, m, _mm256_add_ps(_mm256_maskload_ps(y + i, m), _mm256_maskload_ps(x + i, m)));
    }
}

/* -------------------------------------------------------- matmul_f32 */

/* One input, four rows: the bandwidth-bound matrix-vector product. Two
 * accumulators per row hide the FMA latency; the four row streams and x are
 * read once. */
AVX2_FN static void gemv4_f32(float *out, const float *x, const float *w, size_t cols) {
    const float *w0 = w, *w1 = w + cols, *w2 = w + 2 * cols, *w3 = w + 3 * cols;
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
    _mm_storeu_ps(out, hsum4x8(_mm256_add_ps(a0, b0), _mm256_add_ps(a1, b1), _mm256_add_ps(a2, b2),
                               _mm256_add_ps(a3, b3)));
}

/* Several inputs: register tiles of R rows x B inputs (R <= 4, B <= 3), so
 * that each weight vector loaded feeds B products (4 x 3 takes 12
 * accumulators, 3 inputs and 1 weight register: all 16). */
AVX2_INLINE void tile_f32(float *out, size_t ostride, const float *x, size_t cols, const float *w, int R, int B) {
    __m256 acc[4][3];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++)
#pragma GCC unroll 3
        for (int b = 0; b < 3; b++) acc[r][b] = _mm256_setzero_ps();
    size_t k = 0;
    for (; k + 8 <= cols; k += 8) {
        __m256 xv[3];
#pragma GCC unroll 3
        for (int b = 0; b < 3; b++)
            if (b < B) xv[b] = _mm256_loadu_ps(x + (size_t)b * cols + k);
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            if (r < R) {
                __m256 wv = _mm256_loadu_ps(w + (size_t)r * cols + k);
#pragma GCC unroll 3
                for (int b = 0; b < 3; b++)
                    if (b < B) acc[r][b] = _mm256_fmadd_ps(wv, xv[b], acc[r][b]);
            }
        }
    }
    if (k < cols) {
        __m256i m = tail_mask((int)(cols - k));
        __m256 xv[3];
#pragma GCC unroll 3
        for (int b = 0; b < 3; b++)
            if (b < B) xv[b] = _mm256_maskload_ps(x + (size_t)b * cols + k, m);
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            if (r < R) {
                __m256 wv = _mm256_maskload_ps(w + (size_t)r * cols + k, m);
#pragma GCC unroll 3
                for (int b = 0; b < 3; b++)
                    if (b < B) acc[r][b] = _mm256_fmadd_ps(wv, xv[b], acc[r][b]);
            }
        }
    }
#pragma GCC unroll 3
    for (int b = 0; b < 3; b++) {
        if (b >= B) continue;
        float *o = out + (size_t)b * ostride;
        if (R == 4) {
            _mm_storeu_ps(o, hsum4x8(acc[0][b], acc[1][b], acc[2][b], acc[3][b]));
        } else {
#pragma GCC unroll 4
            for (int r = 0; r < 4; r++) {
                if (r >= R) continue;
                o[r] = hsum8(acc[r][b]);
            }
        }
    }
}

AVX2_FN static void tile_f32_4x3(float *out, size_t os, const float *x, size_t cols, const float *w) {
    tile_f32(out, os, x, cols, w, 4, 3);
}
AVX2_FN static void tile_f32_4x2(float *out, size_t os, const float *x, size_t cols, const float *w) {
    tile_f32(out, os, x, cols, w, 4, 2);
}
AVX2_FN static void tile_f32_4x1(float *out, size_t os, const float *x, size_t cols, const float *w) {
    tile_f32(out, os, x, cols, w, 4, 1);
}
AVX2_FN static void tile_f32_1x3(float *out, size_t os, const float *x, size_t cols, const float *w) {
    tile_f32(out, os, x, cols, w, 1, 3);
}
AVX2_FN static void tile_f32_1x2(float *out, size_t os, const float *x, size_t cols, const float *w) {
    tile_f32(out, os, x, cols, w, 1, 2);
}
AVX2_FN static void tile_f32_1x1(float *out, size_t os, const float *x, size_t cols, const float *w) {
    tile_f32(out, os, x, cols, w, 1, 1);
}

AVX2_FN static void matmul_f32_avx2(float *out, int out_stride, const float *x, int nb, const float *w, int cols,
                                    int row_begin, int row_end) {
    const size_t c = (size_t)cols;
    const size_t os = (size_t)out_stride;
    if (nb == 1) {
        int r = row_begin;
        for (; r + 4 <= row_end; r += 4) gemv4_f32(out + r, x, w + (size_t)r * c, c);
        for (; r < row_end; r++) out[r] = dot_avx2(w + (size_t)r * c, x, cols);
        return;
    }
    /* Each tile runs over all the columns: a row block's weights (4 rows)
     * are read from memory once, as long contiguous streams, and then
     * reused from cache by the other input tiles; the inputs stay in L2. */
    int r = row_begin;
    for (; r + 4 <= row_end; r += 4) {
        const float *wr = w + (size_t)r * c;
        int b = 0;
        for (; b + 3 <= nb; b += 3) tile_f32_4x3(out + b * os + r, os, x + b * c, c, wr);
        if (nb - b == 2) tile_f32_4x2(out + b * os + r, os, x + b * c, c, wr);
        else if (nb - b == 1) tile_f32_4x1(out + b * os + r, os, x + b * c, c, wr);
    }
    for (; r < row_end; r++) {
        const float *wr = w + (size_t)r * c;
        int b = 0;
        for (; b + 3 <= nb; b += 3) tile_f32_1x3(out + b * os + r, os, x + b * c, c, wr);
        if (nb - b == 2) tile_f32_1x2(out + b * os + r, os, x + b * c, c, wr);
        else if (nb - b == 1) tile_f32_1x1(out + b * os + r, os, x + b * c, c, wr);
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
};

const l2_kernels *l2_kernels_avx2(void) { return &avx2_table; }

#else

/* ISO C forbids an empty translation unit. */
typedef int l2_ops_avx2_unused;

#endif
