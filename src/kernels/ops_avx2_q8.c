/*
 * The AVX2 int8 (Q8_0) kernels: quantizing activations and the int8 weight
 * products, bit for bit the reference's results (ops_ref.c, llama2.c's
 * runq.c). quantize_q8 divides by the scale and rounds half away from zero
 * like roundf. In matmul_q8 the integer dot of a group is exact in any
 * order; the float accumulation runs across 8 rows at once, one row per
 * lane, in the reference's order (val += ((float)ival * ws) * xs, group by
 * group, no fused operations).
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

AVX2_INLINE float hmax8(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

/* ------------------------------------------------------- quantize_q8 */

/* roundf (half away from zero) on 8 lanes, exactly: truncate, then step
 * away from zero when the dropped fraction (exact) is at least one half. */
AVX2_INLINE __m256 round_half_away(__m256 v) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __m256 frac = _mm256_andnot_ps(sign, _mm256_sub_ps(v, t));
    __m256 up = _mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ);
    __m256 step = _mm256_or_ps(_mm256_and_ps(v, sign), _mm256_set1_ps(1.0f));
    return _mm256_add_ps(t, _mm256_and_ps(up, step));
}

/* 8 int32 to 8 int8 keeping the low byte of each, as the reference's
 * (int8_t) conversion does on this architecture. */
AVX2_INLINE void store_low_bytes(int8_t *q, __m256i v) {
    v = _mm256_and_si256(v, _mm256_set1_epi32(0xff));
    __m128i p = _mm_packus_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    p = _mm_packus_epi16(p, p);
    _mm_storel_epi64((__m128i *)q, p);
}

AVX2_FN void l2_quantize_q8_avx2(int8_t *q, float *scales, const float *x, int n, int gs) {
    const float q_max = 127.0f;
    const int groups = n / gs;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int g = 0; g < groups; g++) {
        const float *xg = x + (size_t)g * (size_t)gs;
        int8_t *qg = q + (size_t)g * (size_t)gs;
        if (gs % 8 != 0) {
            float wmax = 0.0f;
            for (int i = 0; i < gs; i++) {
                float v = fabsf(xg[i]);
                if (v > wmax) wmax = v;
            }
            float scale = wmax / q_max;
            scales[g] = scale;
            for (int i = 0; i < gs; i++) {
                float v = scale != 0.0f ? xg[i] / scale : 0.0f;
                qg[i] = (int8_t)roundf(v);
            }
            continue;
        }
        /* max|x|: a NaN never wins (max returns its second operand, the
         * running maximum, when one is NaN), as in the reference's '>'. */
        __m256 m0 = _mm256_setzero_ps(), m1 = _mm256_setzero_ps();
        int i = 0;
        for (; i + 16 <= gs; i += 16) {
            m0 = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(xg + i)), m0);
            m1 = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(xg + i + 8)), m1);
        }
        if (i < gs) m0 = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(xg + i)), m0);
        float wmax = hmax8(_mm256_max_ps(m0, m1));
        float scale = wmax / q_max;
        scales[g] = scale;
        if (scale == 0.0f) {
            memset(qg, 0, (size_t)gs);
            continue;
        }
        const __m256 sv = _mm256_set1_ps(scale);
        for (i = 0; i < gs; i += 8) {
            __m256 v = round_half_away(_mm256_div_ps(_mm256_loadu_ps(xg + i), sv));
            store_low_bytes(qg + i, _mm256_cvttps_epi32(v));
        }
    }
}

/* --------------------------------------------------------- matmul_q8 */

/* Eight int32 vectors a0..a7 (one per row) to two: lo[j] = sum of lanes 0-3
 * of aj, hi[j] = sum of lanes 4-7 of aj. */
AVX2_INLINE void reduce8x8(__m256i a0, __m256i a1, __m256i a2, __m256i a3, __m256i a4, __m256i a5, __m256i a6,
                           __m256i a7, __m256i *lo, __m256i *hi) {
    __m256i h01 = _mm256_hadd_epi32(a0, a1);
    __m256i h23 = _mm256_hadd_epi32(a2, a3);
    __m256i h45 = _mm256_hadd_epi32(a4, a5);
    __m256i h67 = _mm256_hadd_epi32(a6, a7);
    __m256i h0123 = _mm256_hadd_epi32(h01, h23);
    __m256i h4567 = _mm256_hadd_epi32(h45, h67);
    *lo = _mm256_permute2x128_si256(h0123, h4567, 0x20);
    *hi = _mm256_permute2x128_si256(h0123, h4567, 0x31);
}

AVX2_INLINE __m256i load16_i8_as_i16(const int8_t *p) {
    return _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)p));
}

/* Two runs of 8 int8 (a, and b when has_b) as 16 int16: a in lanes 0-7. */
AVX2_INLINE __m256i load8x2_i8_as_i16(const int8_t *a, const int8_t *b, int has_b) {
    __m128i lo = _mm_loadl_epi64((const __m128i *)a);
    __m128i v = has_b ? _mm_unpacklo_epi64(lo, _mm_loadl_epi64((const __m128i *)b)) : lo;
    return _mm256_cvtepi8_epi16(v);
}

#define Q8_FOR8(OP) OP(0) OP(1) OP(2) OP(3) OP(4) OP(5) OP(6) OP(7)

/* The integer dot of one group for 8 rows (row j at w + j * cols), gs a
 * multiple of 16: lane j of the result is row j's sum. */
AVX2_INLINE __m256i q8_dots_g16(const int8_t *w, size_t cols, const int8_t *xg, int gs) {
#define Q8_ZERO(j) __m256i a##j = _mm256_setzero_si256();
    Q8_FOR8(Q8_ZERO)
#undef Q8_ZERO
    int k = 0;
    for (; k + 32 <= gs; k += 32) {
        __m256i xl = load16_i8_as_i16(xg + k), xh = load16_i8_as_i16(xg + k + 16);
#define Q8_ROW32(j)                                                                                  \
    {                                                                                                \
        const int8_t *p = w + (size_t)(j) * cols + k;                                                \
        __m256i d = _mm256_add_epi32(_mm256_madd_epi16(load16_i8_as_i16(p), xl),                     \
                                     _mm256_madd_epi16(load16_i8_as_i16(p + 16), xh));               \
        a##j = _mm256_add_epi32(a##j, d);                                                            \
    }
        Q8_FOR8(Q8_ROW32)
#undef Q8_ROW32
    }
    if (k < gs) {
        __m256i xl = load16_i8_as_i16(xg + k);
#define Q8_ROW16(j)                                                                                  \
    a##j = _mm256_add_epi32(a##j, _mm256_madd_epi16(load16_i8_as_i16(w + (size_t)(j) * cols + k), xl));
        Q8_FOR8(Q8_ROW16)
#undef Q8_ROW16
    }
    __m256i lo, hi;
    reduce8x8(a0, a1, a2, a3, a4, a5, a6, a7, &lo, &hi);
    return _mm256_add_epi32(lo, hi);
}

/* The integer dots of two consecutive groups (the second only when has_b)
 * for 8 rows, gs a multiple of 8: *ga for the first group, *gb the second. */
AVX2_INLINE void q8_dots_pair8(const int8_t *w, size_t cols, const int8_t *xg, int gs, int has_b, __m256i *ga,
                               __m256i *gb) {
#define Q8_ZERO(j) __m256i a##j = _mm256_setzero_si256();
    Q8_FOR8(Q8_ZERO)
#undef Q8_ZERO
    for (int k = 0; k < gs; k += 8) {
        __m256i xv = load8x2_i8_as_i16(xg + k, xg + gs + k, has_b);
#define Q8_ROW8(j)                                                                                   \
    {                                                                                                \
        const int8_t *p = w + (size_t)(j) * cols + k;                                                \
        a##j = _mm256_add_epi32(a##j, _mm256_madd_epi16(load8x2_i8_as_i16(p, p + gs, has_b), xv));   \
    }
        Q8_FOR8(Q8_ROW8)
#undef Q8_ROW8
    }
    reduce8x8(a0, a1, a2, a3, a4, a5, a6, a7, ga, gb);
}

/* Scales of 8 rows x 8 groups (row j at ws + j * groups), transposed so
 * that t[i] holds the 8 rows' scales of group i. */
AVX2_INLINE void transpose_scales8(float t[8][8], const float *ws, size_t groups) {
    __m256 r0 = _mm256_loadu_ps(ws), r1 = _mm256_loadu_ps(ws + groups);
    __m256 r2 = _mm256_loadu_ps(ws + 2 * groups), r3 = _mm256_loadu_ps(ws + 3 * groups);
    __m256 r4 = _mm256_loadu_ps(ws + 4 * groups), r5 = _mm256_loadu_ps(ws + 5 * groups);
    __m256 r6 = _mm256_loadu_ps(ws + 6 * groups), r7 = _mm256_loadu_ps(ws + 7 * groups);
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xee);
    __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xee);
    __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xee);
    __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xee);
    _mm256_store_ps(t[0], _mm256_permute2f128_ps(s0, s4, 0x20));
    _mm256_store_ps(t[1], _mm256_permute2f128_ps(s1, s5, 0x20));
    _mm256_store_ps(t[2], _mm256_permute2f128_ps(s2, s6, 0x20));
    _mm256_store_ps(t[3], _mm256_permute2f128_ps(s3, s7, 0x20));
    _mm256_store_ps(t[4], _mm256_permute2f128_ps(s0, s4, 0x31));
    _mm256_store_ps(t[5], _mm256_permute2f128_ps(s1, s5, 0x31));
    _mm256_store_ps(t[6], _mm256_permute2f128_ps(s2, s6, 0x31));
    _mm256_store_ps(t[7], _mm256_permute2f128_ps(s3, s7, 0x31));
}

/* val += ((float)ival * ws) * xs, lane by lane: the reference's rounding. */
AVX2_INLINE __m256 q8_accumulate(__m256 val, __m256i ival, const float *wsv, float xs) {
    __m256 t = _mm256_mul_ps(_mm256_cvtepi32_ps(ival), _mm256_load_ps(wsv));
    return _mm256_add_ps(val, _mm256_mul_ps(t, _mm256_set1_ps(xs)));
}

/* 32 products w[i] * x[i] summed in pairs, then pairs of pairs, into 8
 * int32 (lane i: bytes 4i..4i+3). maddubs multiplies unsigned by signed
 * bytes, so it is fed |w| and x with w's sign: exact for any w provided
 * x != -128 (-x must exist); the int16 pair sums stay within
 * 2 * 128 * 127 < 32768, so nothing saturates. */
AVX2_INLINE __m256i q8_mul32(__m256i w, __m256i x) {
    __m256i p16 = _mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(x, w));
    return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
}

AVX2_INLINE __m256i load32_i8(const int8_t *p) { return _mm256_loadu_si256((const __m256i *)p); }

/* One group of gs (a multiple of 32) for 8 rows, x without -128. */
AVX2_INLINE __m256i q8_dots_g32(const int8_t *w, size_t cols, const int8_t *xg, int gs) {
    __m256i xv = load32_i8(xg);
#define Q8_FIRST(j) __m256i a##j = q8_mul32(load32_i8(w + (size_t)(j) * cols), xv);
    Q8_FOR8(Q8_FIRST)
#undef Q8_FIRST
    for (int k = 32; k < gs; k += 32) {
        xv = load32_i8(xg + k);
#define Q8_NEXT(j) a##j = _mm256_add_epi32(a##j, q8_mul32(load32_i8(w + (size_t)(j) * cols + k), xv));
        Q8_FOR8(Q8_NEXT)
#undef Q8_NEXT
    }
    __m256i lo, hi;
    reduce8x8(a0, a1, a2, a3, a4, a5, a6, a7, &lo, &hi);
    return _mm256_add_epi32(lo, hi);
}

/* Two groups of 16 (one 32-byte load per row) for 8 rows, x without -128:
 * the first group fills lanes 0-3 of each row's sums, the second 4-7. With
 * only one group (has_b 0) the upper half is zero. */
AVX2_INLINE void q8_dots_pair16(const int8_t *w, size_t cols, const int8_t *xg, int has_b, __m256i *ga, __m256i *gb) {
#define Q8_LOAD16X2(p)                                                                               \
    (has_b ? load32_i8(p) : _mm256_set_m128i(_mm_setzero_si128(), _mm_loadu_si128((const __m128i *)(p))))
    __m256i xv = Q8_LOAD16X2(xg);
#define Q8_ROW(j) __m256i a##j = q8_mul32(Q8_LOAD16X2(w + (size_t)(j) * cols), xv);
    Q8_FOR8(Q8_ROW)
#undef Q8_ROW
#undef Q8_LOAD16X2
    reduce8x8(a0, a1, a2, a3, a4, a5, a6, a7, ga, gb);
}

/* Four groups of 8 (one 32-byte load per row) for 8 rows, x without -128:
 * g[i] gets group i's 8 row sums. */
AVX2_INLINE void q8_dots_quad8(const int8_t *w, size_t cols, const int8_t *xg, __m256i g[4]) {
    __m256i xv = load32_i8(xg);
#define Q8_ROW(j) __m256i a##j = q8_mul32(load32_i8(w + (size_t)(j) * cols), xv);
    Q8_FOR8(Q8_ROW)
#undef Q8_ROW
    /* Lanes of aj: group i in 2i, 2i+1 (128-bit halves: groups 0-1, 2-3).
     * hadd(a0, a1) = [r0g0 r0g1 r1g0 r1g1 | r0g2 r0g3 r1g2 r1g3]. */
#define Q8_ORDER _MM_SHUFFLE(3, 1, 2, 0)
    __m256i s01 = _mm256_shuffle_epi32(_mm256_hadd_epi32(a0, a1), Q8_ORDER); /* r0g0 r1g0 r0g1 r1g1 | ... */
    __m256i s23 = _mm256_shuffle_epi32(_mm256_hadd_epi32(a2, a3), Q8_ORDER);
    __m256i s45 = _mm256_shuffle_epi32(_mm256_hadd_epi32(a4, a5), Q8_ORDER);
    __m256i s67 = _mm256_shuffle_epi32(_mm256_hadd_epi32(a6, a7), Q8_ORDER);
#undef Q8_ORDER
    __m256i u0 = _mm256_unpacklo_epi64(s01, s23); /* r0-3 g0 | r0-3 g2 */
    __m256i u1 = _mm256_unpackhi_epi64(s01, s23); /* r0-3 g1 | r0-3 g3 */
    __m256i v0 = _mm256_unpacklo_epi64(s45, s67); /* r4-7 g0 | r4-7 g2 */
    __m256i v1 = _mm256_unpackhi_epi64(s45, s67); /* r4-7 g1 | r4-7 g3 */
    g[0] = _mm256_permute2x128_si256(u0, v0, 0x20);
    g[1] = _mm256_permute2x128_si256(u1, v1, 0x20);
    g[2] = _mm256_permute2x128_si256(u0, v0, 0x31);
    g[3] = _mm256_permute2x128_si256(u1, v1, 0x31);
}

/* How q8_rows8 forms the integer dots. The sign-trick modes need inputs
 * without -128; the widening modes are exact for any bytes. */
enum {
    Q8_G32,   /* gs % 32 == 0, maddubs */
    Q8_G16,   /* gs == 16, maddubs, two groups per load */
    Q8_G8,    /* gs == 8, maddubs, four groups per load */
    Q8_WIDE16, /* gs % 16 == 0, widening to int16 */
    Q8_WIDE8,  /* gs % 8 == 0, widening, two groups at a time */
};

/* Eight consecutive rows (w, ws at the first) against one quantized input:
 * out[0..8). */
AVX2_FN static void q8_rows8(float *out, const int8_t *xb, const float *xsb, const int8_t *w, const float *ws,
                             size_t cols, int gs, int groups, int mode) {
    _Alignas(32) float wst[8][8];
    __m256 val = _mm256_setzero_ps();
    for (int g0 = 0; g0 < groups; g0 += 8) {
        int ng = groups - g0 < 8 ? groups - g0 : 8;
        if (ng == 8) {
            transpose_scales8(wst, ws + g0, (size_t)groups);
        } else {
            for (int i = 0; i < ng; i++)
                for (int j = 0; j < 8; j++) wst[i][j] = ws[(size_t)j * (size_t)groups + (size_t)(g0 + i)];
        }
        const size_t off = (size_t)g0 * (size_t)gs;
        int i = 0;
        switch (mode) {
        case Q8_G32:
            for (; i < ng; i++) {
                size_t o = off + (size_t)i * (size_t)gs;
                val = q8_accumulate(val, q8_dots_g32(w + o, cols, xb + o, gs), wst[i], xsb[g0 + i]);
            }
            break;
        case Q8_G16:
            for (; i < ng; i += 2) {
                size_t o = off + (size_t)i * 16;
                __m256i ia, ib;
                if (i + 2 <= ng) {
                    q8_dots_pair16(w + o, cols, xb + o, 1, &ia, &ib);
                    val = q8_accumulate(val, ia, wst[i], xsb[g0 + i]);
                    val = q8_accumulate(val, ib, wst[i + 1], xsb[g0 + i + 1]);
                } else {
                    q8_dots_pair16(w + o, cols, xb + o, 0, &ia, &ib);
                    val = q8_accumulate(val, ia, wst[i], xsb[g0 + i]);
                }
            }
            break;
        case Q8_G8:
            for (; i + 4 <= ng; i += 4) {
                size_t o = off + (size_t)i * 8;
                __m256i iv[4];
                q8_dots_quad8(w + o, cols, xb + o, iv);
                val = q8_accumulate(val, iv[0], wst[i], xsb[g0 + i]);
                val = q8_accumulate(val, iv[1], wst[i + 1], xsb[g0 + i + 1]);
                val = q8_accumulate(val, iv[2], wst[i + 2], xsb[g0 + i + 2]);
                val = q8_accumulate(val, iv[3], wst[i + 3], xsb[g0 + i + 3]);
            }
            /* The last 1-3 groups: fall through to the widening pairs. */
            /* fall through */
        case Q8_WIDE8:
            for (; i < ng; i += 2) {
                size_t o = off + (size_t)i * (size_t)gs;
                __m256i ia, ib;
                if (i + 2 <= ng) {
                    q8_dots_pair8(w + o, cols, xb + o, gs, 1, &ia, &ib);
                    val = q8_accumulate(val, ia, wst[i], xsb[g0 + i]);
                    val = q8_accumulate(val, ib, wst[i + 1], xsb[g0 + i + 1]);
                } else {
                    q8_dots_pair8(w + o, cols, xb + o, gs, 0, &ia, &ib);
                    val = q8_accumulate(val, ia, wst[i], xsb[g0 + i]);
                }
            }
            break;
        default: /* Q8_WIDE16 */
            for (; i < ng; i++) {
                size_t o = off + (size_t)i * (size_t)gs;
                val = q8_accumulate(val, q8_dots_g16(w + o, cols, xb + o, gs), wst[i], xsb[g0 + i]);
            }
            break;
        }
    }
    _mm256_storeu_ps(out, val);
}

/* Whether n int8 hold a -128 (which quantize_q8 never produces, but a
 * caller may pass). */
AVX2_FN static int has_int8_min(const int8_t *x, size_t n) {
    const __m256i m = _mm256_set1_epi8(-128);
    __m256i any = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) any = _mm256_or_si256(any, _mm256_cmpeq_epi8(load32_i8(x + i), m));
    if (!_mm256_testz_si256(any, any)) return 1;
    for (; i < n; i++)
        if (x[i] == -128) return 1;
    return 0;
}

/* One row, the reference's arithmetic in plain C. */
static float q8_row_scalar(const int8_t *xb, const float *xsb, const int8_t *wr, const float *wsr, int gs,
                           int groups) {
    float val = 0.0f;
    for (int g = 0; g < groups; g++) {
        int32_t ival = 0;
        const int8_t *xg = xb + (size_t)g * (size_t)gs, *wg = wr + (size_t)g * (size_t)gs;
        for (int k = 0; k < gs; k++) ival += (int32_t)xg[k] * (int32_t)wg[k];
        val += ((float)ival) * wsr[g] * xsb[g];
    }
    return val;
}

AVX2_FN void l2_matmul_q8_avx2(float *out, int out_stride, const int8_t *xq, const float *xs, int nb,
                                   const int8_t *w, const float *ws, int cols, int gs, int row_begin, int row_end) {
    const int groups = cols / gs;
    const size_t c = (size_t)cols, ng = (size_t)groups, os = (size_t)out_stride;
    const int rows = row_end - row_begin;
    if (rows <= 0) return;
    if (gs % 8 != 0 || rows < 8) {
        for (int b = 0; b < nb; b++)
            for (int r = row_begin; r < row_end; r++)
                out[(size_t)b * os + (size_t)r] =
                    q8_row_scalar(xq + (size_t)b * c, xs + (size_t)b * ng, w + (size_t)r * c, ws + (size_t)r * ng, gs,
                                  groups);
        return;
    }
    int mode;
    if (gs % 32 == 0) mode = Q8_G32;
    else if (gs == 16) mode = Q8_G16;
    else if (gs == 8) mode = Q8_G8;
    else mode = gs % 16 == 0 ? Q8_WIDE16 : Q8_WIDE8;
    if (mode <= Q8_G8 && has_int8_min(xq, (size_t)nb * c)) mode = gs % 16 == 0 ? Q8_WIDE16 : Q8_WIDE8;
    /* Blocks of 8 rows, each against every input while its weights are in
     * cache; a last partial block is the range's last 8 rows, which
     * recomputes a few rows to the same bits. */
    for (int r0 = row_begin; r0 < row_end; r0 += 8) {
        int r = r0 + 8 <= row_end ? r0 : row_end - 8;
        for (int b = 0; b < nb; b++)
            q8_rows8(out + (size_t)b * os + (size_t)r, xq + (size_t)b * c, xs + (size_t)b * ng, w + (size_t)r * c,
                     ws + (size_t)r * ng, c, gs, groups, mode);
    }
}

#else

/* ISO C forbids an empty translation unit. */
typedef int l2_ops_avx2_q8_unused;

#endif
