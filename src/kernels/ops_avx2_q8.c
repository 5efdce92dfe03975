/*
 * The x86 int8 (Q8_0) kernels on 256-bit vectors: quantizing activations
 * and the int8 weight products, bit for bit the reference's results
 * (ops_ref.c, llama2.c's runq.c). quantize_q8 divides by the scale and
 * rounds half away from zero like roundf. In matmul_q8 the integer dot of a
 * group is exact in any order; the float accumulation runs across 8 rows at
 * once, one row per lane, in the reference's order (val += ((float)ival *
 * ws) * xs, group by group, no fused operations):
 *   one input (generation): 8 rows read group by group, the group's integer
 *       sums reduced across lanes; the 8 rows come from 8 equal parts of the
 *       row range, so that the weights are read as 8 long streams;
 *   several inputs (prompt blocks): 8 rows transposed 4 bytes at a time so
 *       that each lane is a row from the start (no reduction), every
 *       transposed vector serving up to 8 inputs.
 *
 * The file is built three times (ops_isa.h): as it stands, with AVX2's
 * multiply-adds; with Q8_DOT_AVX_VNNI (ops_avx2_vnni_q8.c), with AVX-VNNI's
 * dot instructions; with Q8_DOT_AVX512_VNNI (ops_avx512_vnni_q8.c), with
 * AVX512-VNNI's on 256-bit vectors. Only the integer dot steps (q8_dot_u,
 * q8_dot16) differ; integer sums are exact, so all three give the same
 * bits.
 */
#if defined(__x86_64__) || defined(__i386__)

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ops.h"
#include "ops_avx2_util.h"
#include "ops_isa.h"

#if defined(Q8_DOT_AVX_VNNI)
#define Q8_TARGET L2_AVX_VNNI
#define Q8_NAME(f) f##_avxvnni
#elif defined(Q8_DOT_AVX512_VNNI)
#define Q8_TARGET L2_AVX512_VNNI
#define Q8_NAME(f) f##_avx512vnni
#else
#define Q8_TARGET L2_AVX2
#define Q8_NAME(f) f##_avx2
#endif
#define Q8_FN L2_TARGET(Q8_TARGET)
#define Q8_INLINE L2_INLINE(Q8_TARGET)

/* acc + the sums of 4 products u[i] * s[i] of unsigned u and signed s
 * bytes (lane i: bytes 4i..4i+3). Exact where every pair of products fits
 * int16 (maddubs saturates its pair sums; the VNNI instruction does not):
 * the callers' u are |w| <= 128 and their s within [-127, 127]. */
Q8_INLINE __m256i q8_dot_u(__m256i acc, __m256i u, __m256i s) {
#if defined(Q8_DOT_AVX_VNNI)
    return _mm256_dpbusd_avx_epi32(acc, u, s);
#elif defined(Q8_DOT_AVX512_VNNI)
    return _mm256_dpbusd_epi32(acc, u, s);
#else
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
#endif
}

/* acc + the sums of pairs of int16 products a[i] * b[i] (exact). */
Q8_INLINE __m256i q8_dot16(__m256i acc, __m256i a, __m256i b) {
#if defined(Q8_DOT_AVX_VNNI)
    return _mm256_dpwssd_avx_epi32(acc, a, b);
#elif defined(Q8_DOT_AVX512_VNNI)
    return _mm256_dpwssd_epi32(acc, a, b);
#else
    return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b));
#endif
}

/* ------------------------------------------------------- quantize_q8 */

/* The same in every build: only the first exports it. */
#if !defined(Q8_DOT_AVX_VNNI) && !defined(Q8_DOT_AVX512_VNNI)

/* roundf (half away from zero) on 8 lanes, exactly: truncate, then step
 * away from zero when the dropped fraction (exact) is at least one half. */
Q8_INLINE __m256 round_half_away(__m256 v) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __m256 frac = _mm256_andnot_ps(sign, _mm256_sub_ps(v, t));
    __m256 up = _mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ);
    __m256 step = _mm256_or_ps(_mm256_and_ps(v, sign), _mm256_set1_ps(1.0f));
    return _mm256_add_ps(t, _mm256_and_ps(up, step));
}

/* 8 int32 to 8 int8 keeping the low byte of each, as the reference's
 * (int8_t) conversion does on this architecture. */
Q8_INLINE void store_low_bytes(int8_t *q, __m256i v) {
    v = _mm256_and_si256(v, _mm256_set1_epi32(0xff));
    __m128i p = _mm_packus_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    p = _mm_packus_epi16(p, p);
    _mm_storel_epi64((__m128i *)q, p);
}

Q8_FN void l2_quantize_q8_avx2(int8_t *q, float *scales, const float *x, int n, int gs) {
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
                qg[i] = l2_q8_round(v);
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

#endif

/* --------------------------------------------------------- matmul_q8 */

/* Eight int32 vectors a0..a7 (one per row) to two: lo[j] = sum of lanes 0-3
 * of aj, hi[j] = sum of lanes 4-7 of aj. */
Q8_INLINE void reduce8x8(__m256i a0, __m256i a1, __m256i a2, __m256i a3, __m256i a4, __m256i a5, __m256i a6,
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

/* Two int32 vectors to one holding a's pair sums in the even lanes and b's
 * in the odd ones: blends (any vector pipe) and one in-lane shuffle, where
 * hadd costs several shuffles. */
Q8_INLINE __m256i fold32(__m256i a, __m256i b) {
    __m256i x = _mm256_blend_epi32(a, b, 0xaa), y = _mm256_blend_epi32(b, a, 0xaa);
    return _mm256_add_epi32(x, _mm256_shuffle_epi32(y, _MM_SHUFFLE(2, 3, 0, 1)));
}

/* The same at 64-bit granularity: lanes 0-1 and 4-5 from a, 2-3, 6-7 from b. */
Q8_INLINE __m256i fold64(__m256i a, __m256i b) {
    __m256i x = _mm256_blend_epi32(a, b, 0xcc), y = _mm256_blend_epi32(b, a, 0xcc);
    return _mm256_add_epi32(x, _mm256_shuffle_epi32(y, _MM_SHUFFLE(1, 0, 3, 2)));
}

/* Eight int32 vectors a0..a7 to one: lane j = the sum of aj's lanes. */
Q8_INLINE __m256i reduce8(__m256i a0, __m256i a1, __m256i a2, __m256i a3, __m256i a4, __m256i a5, __m256i a6,
                            __m256i a7) {
    __m256i b0123 = fold64(fold32(a0, a1), fold32(a2, a3)); /* a0..a3 | a0..a3 (half sums) */
    __m256i b4567 = fold64(fold32(a4, a5), fold32(a6, a7));
    return _mm256_add_epi32(_mm256_blend_epi32(b0123, b4567, 0xf0), _mm256_permute2x128_si256(b0123, b4567, 0x21));
}

Q8_INLINE __m256i load16_i8_as_i16(const int8_t *p) {
    return _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)p));
}

/* Two runs of 8 int8 (a, and b when has_b) as 16 int16: a in lanes 0-7. */
Q8_INLINE __m256i load8x2_i8_as_i16(const int8_t *a, const int8_t *b, int has_b) {
    __m128i lo = _mm_loadl_epi64((const __m128i *)a);
    __m128i v = has_b ? _mm_unpacklo_epi64(lo, _mm_loadl_epi64((const __m128i *)b)) : lo;
    return _mm256_cvtepi8_epi16(v);
}

#define Q8_FOR8(OP) OP(0) OP(1) OP(2) OP(3) OP(4) OP(5) OP(6) OP(7)

/* The integer dot of one group for 8 rows (row j at w + j * cols), gs a
 * multiple of 16: lane j of the result is row j's sum. */
Q8_INLINE __m256i q8_dots_g16(const int8_t *w, size_t cols, const int8_t *xg, int gs) {
#define Q8_ZERO(j) __m256i a##j = _mm256_setzero_si256();
    Q8_FOR8(Q8_ZERO)
#undef Q8_ZERO
    int k = 0;
    for (; k + 32 <= gs; k += 32) {
        __m256i xl = load16_i8_as_i16(xg + k), xh = load16_i8_as_i16(xg + k + 16);
#define Q8_ROW32(j)                                                                                  \
    {                                                                                                \
        const int8_t *p = w + (size_t)(j) * cols + k;                                                \
        a##j = q8_dot16(q8_dot16(a##j, load16_i8_as_i16(p), xl), load16_i8_as_i16(p + 16), xh);      \
    }
        Q8_FOR8(Q8_ROW32)
#undef Q8_ROW32
    }
    if (k < gs) {
        __m256i xl = load16_i8_as_i16(xg + k);
#define Q8_ROW16(j)                                                                                  \
    a##j = q8_dot16(a##j, load16_i8_as_i16(w + (size_t)(j) * cols + k), xl);
        Q8_FOR8(Q8_ROW16)
#undef Q8_ROW16
    }
    return reduce8(a0, a1, a2, a3, a4, a5, a6, a7);
}

/* The integer dots of two consecutive groups (the second only when has_b)
 * for 8 rows, gs a multiple of 8: *ga for the first group, *gb the second. */
Q8_INLINE void q8_dots_pair8(const int8_t *w, size_t cols, const int8_t *xg, int gs, int has_b, __m256i *ga,
                               __m256i *gb) {
#define Q8_ZERO(j) __m256i a##j = _mm256_setzero_si256();
    Q8_FOR8(Q8_ZERO)
#undef Q8_ZERO
    for (int k = 0; k < gs; k += 8) {
        __m256i xv = load8x2_i8_as_i16(xg + k, xg + gs + k, has_b);
#define Q8_ROW8(j)                                                                                   \
    {                                                                                                \
        const int8_t *p = w + (size_t)(j) * cols + k;                                                \
        a##j = q8_dot16(a##j, load8x2_i8_as_i16(p, p + gs, has_b), xv);                              \
    }
        Q8_FOR8(Q8_ROW8)
#undef Q8_ROW8
    }
    reduce8x8(a0, a1, a2, a3, a4, a5, a6, a7, ga, gb);
}

/* Scales of 8 rows x 8 groups (row j at ws + j * groups), transposed so
 * that t[i] holds the 8 rows' scales of group i. */
Q8_INLINE void transpose_scales8(float t[8][8], const float *ws, size_t groups) {
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
Q8_INLINE __m256 q8_accumulate(__m256 val, __m256i ival, const float *wsv, float xs) {
    __m256 t = _mm256_mul_ps(_mm256_cvtepi32_ps(ival), _mm256_loadu_ps(wsv));
    return _mm256_add_ps(val, _mm256_mul_ps(t, _mm256_set1_ps(xs)));
}

/* acc + the 8 sums of 4 products w[i] * x[i] (lane i: bytes 4i..4i+3).
 * The dot steps multiply unsigned by signed bytes, so they are fed |w| and
 * x with w's sign: exact for any w provided x != -128 (-x must exist). */
Q8_INLINE __m256i q8_dot(__m256i acc, __m256i w, __m256i x) {
    return q8_dot_u(acc, _mm256_abs_epi8(w), _mm256_sign_epi8(x, w));
}

Q8_INLINE __m256i load32_i8(const int8_t *p) { return _mm256_loadu_si256((const __m256i *)p); }

/* One group of gs (a multiple of 32) for 8 rows, x without -128. */
Q8_INLINE __m256i q8_dots_g32(const int8_t *w, size_t cols, const int8_t *xg, int gs) {
    __m256i xv = load32_i8(xg);
#define Q8_FIRST(j) __m256i a##j = q8_dot(_mm256_setzero_si256(), load32_i8(w + (size_t)(j) * cols), xv);
    Q8_FOR8(Q8_FIRST)
#undef Q8_FIRST
    for (int k = 32; k < gs; k += 32) {
        xv = load32_i8(xg + k);
#define Q8_NEXT(j) a##j = q8_dot(a##j, load32_i8(w + (size_t)(j) * cols + k), xv);
        Q8_FOR8(Q8_NEXT)
#undef Q8_NEXT
    }
    return reduce8(a0, a1, a2, a3, a4, a5, a6, a7);
}

/* Two groups of 16 (one 32-byte load per row) for 8 rows, x without -128:
 * the first group fills lanes 0-3 of each row's sums, the second 4-7. With
 * only one group (has_b 0) the upper half is zero. */
Q8_INLINE void q8_dots_pair16(const int8_t *w, size_t cols, const int8_t *xg, int has_b, __m256i *ga, __m256i *gb) {
#define Q8_LOAD16X2(p)                                                                               \
    (has_b ? load32_i8(p) : _mm256_set_m128i(_mm_setzero_si128(), _mm_loadu_si128((const __m128i *)(p))))
    __m256i xv = Q8_LOAD16X2(xg);
#define Q8_ROW(j) __m256i a##j = q8_dot(_mm256_setzero_si256(), Q8_LOAD16X2(w + (size_t)(j) * cols), xv);
    Q8_FOR8(Q8_ROW)
#undef Q8_ROW
#undef Q8_LOAD16X2
    reduce8x8(a0, a1, a2, a3, a4, a5, a6, a7, ga, gb);
}

/* Four groups of 8 (one 32-byte load per row) for 8 rows, x without -128:
 * g[i] gets group i's 8 row sums. */
Q8_INLINE void q8_dots_quad8(const int8_t *w, size_t cols, const int8_t *xg, __m256i g[4]) {
    __m256i xv = load32_i8(xg);
#define Q8_ROW(j) __m256i a##j = q8_dot(_mm256_setzero_si256(), load32_i8(w + (size_t)(j) * cols), xv);
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
    Q8_G32,    /* gs % 32 == 0, unsigned x signed bytes */
    Q8_G16,    /* gs == 16, the same, two groups per load */
    Q8_G8,     /* gs == 8, the same, four groups per load */
    Q8_WIDE16, /* gs % 16 == 0, widening to int16 */
    Q8_WIDE8,  /* gs % 8 == 0, widening, two groups at a time */
};

/* Software prefetch of the weights, in two patterns.
 * Blocks of 8 neighbouring rows (the several-input path, where stripes do not
 * apply) are read group by group, as eight short interleaved streams, which
 * the hardware prefetchers follow poorly; so each group step also prefetches
 * as many bytes as it reads, in plain address order, one block of 8 rows
 * ahead: a single sequential stream, which the hardware then follows as
 * well. Lines past the caller's rows are only prefetched, never read
 * (usually they are the next task's). One block ahead, with the T0 hint, is
 * what measured best (bench/RESULTS.md).
 * Stripes (one input) read 8 long streams, which the hardware follows, but
 * not far enough ahead: a group of 8 rows takes about 100 vector
 * instructions, so the core itself has only a group or two of loads in
 * flight, and with both cores reading, memory then idles while they compute.
 * So each group step also prefetches, in each stream, the lines
 * Q8_STRIPE_AHEAD bytes past what it reads (past a stripe's last row comes the
 * next stripe's first one). Addresses are kept as integers: they run past the
 * matrix, where a pointer may not point. */
typedef struct q8_prefetch {
    int mode;       /* Q8_PF_OFF, Q8_PF_BLOCK or Q8_PF_SLOTS */
    uintptr_t next; /* the next line to prefetch (stripes: of stream 0) */
    uintptr_t end;  /* stripes: the end of what has been read, in stream 0 */
    size_t step;    /* bytes read per group step: 8 rows' (block), 1 row's (stripes) */
    size_t stride;  /* stripes: bytes between the streams */
} q8_prefetch;

enum { Q8_PF_OFF, Q8_PF_BLOCK, Q8_PF_SLOTS };

/* Far enough ahead to cover the memory latency of the loads a group step
 * cannot keep in flight itself, near enough that the lines are still in
 * cache when read: the middle of the range that measured best
 * (bench/RESULTS.md). */
#define Q8_STRIPE_AHEAD 320

/* Block mode for the 8 rows at w. */
Q8_INLINE void q8_prefetch_block(q8_prefetch *p, const int8_t *w, size_t cols, int gs) {
    p->mode = Q8_PF_BLOCK;
    p->next = (uintptr_t)w + 8 * cols;
    p->step = 8 * (size_t)gs;
}

/* Stripes mode for 8 streams from w, stride bytes apart. */
Q8_INLINE void q8_prefetch_stripes(q8_prefetch *p, const int8_t *w, size_t stride, int gs) {
    p->mode = Q8_PF_SLOTS;
    p->end = (uintptr_t)w;
    p->next = p->end + Q8_STRIPE_AHEAD;
    p->step = (size_t)gs;
    p->stride = stride;
}

/* Prefetches for n group steps. */
Q8_INLINE void q8_prefetch_groups(q8_prefetch *p, int n) {
    if (p->mode == Q8_PF_BLOCK) {
        const uintptr_t end = p->next + (size_t)n * p->step;
        for (uintptr_t a = p->next; a < end; a += 64) _mm_prefetch((const char *)a, _MM_HINT_T0);
        p->next = end;
    } else if (p->mode == Q8_PF_SLOTS) {
        p->end += (size_t)n * p->step;
        for (; p->next < p->end + Q8_STRIPE_AHEAD; p->next += 64)
            for (int j = 0; j < 8; j++) _mm_prefetch((const char *)(p->next + (size_t)j * p->stride), _MM_HINT_T0);
    }
}

/* Eight rows (row j at w + j * wstride) against one quantized input: out[j *
 * ostride]. Their scales are either row j's at ws + j * sstride (ws8 NULL)
 * or already side by side, group g's 8 at ws8 + 8 * g. pf (any mode) is
 * positioned at w's first group. */
Q8_FN static void q8_rows8(float *out, size_t ostride, const int8_t *xb, const float *xsb, const int8_t *w,
                             size_t wstride, const float *ws, size_t sstride, const float *ws8, int gs, int groups,
                             int mode, q8_prefetch *pf) {
    _Alignas(32) float wsbuf[8][8];
    __m256 val = _mm256_setzero_ps();
    for (int g0 = 0; g0 < groups; g0 += 8) {
        int ng = groups - g0 < 8 ? groups - g0 : 8;
        const float(*wst)[8] = wsbuf;
        if (ws8) {
            wst = (const float(*)[8])(ws8 + (size_t)g0 * 8);
        } else if (ng == 8) {
            transpose_scales8(wsbuf, ws + g0, sstride);
        } else {
            for (int i = 0; i < ng; i++)
                for (int j = 0; j < 8; j++) wsbuf[i][j] = ws[(size_t)j * sstride + (size_t)(g0 + i)];
        }
        const size_t off = (size_t)g0 * (size_t)gs;
        int i = 0;
        switch (mode) {
        case Q8_G32:
            /* The common group sizes as constants, for a fully unrolled group. */
#define Q8_G32_LOOP(GS)                                                                              \
    for (; i < ng; i++) {                                                                            \
        size_t o = off + (size_t)i * (size_t)(GS);                                                   \
        q8_prefetch_groups(pf, 1);                                                                   \
        val = q8_accumulate(val, q8_dots_g32(w + o, wstride, xb + o, GS), wst[i], xsb[g0 + i]);      \
    }
            if (gs == 64) {
                Q8_G32_LOOP(64)
            } else if (gs == 32) {
                Q8_G32_LOOP(32)
            } else {
                Q8_G32_LOOP(gs)
            }
#undef Q8_G32_LOOP
            break;
        case Q8_G16:
            for (; i < ng; i += 2) {
                size_t o = off + (size_t)i * 16;
                __m256i ia, ib;
                if (i + 2 <= ng) {
                    q8_prefetch_groups(pf, 2);
                    q8_dots_pair16(w + o, wstride, xb + o, 1, &ia, &ib);
                    val = q8_accumulate(val, ia, wst[i], xsb[g0 + i]);
                    val = q8_accumulate(val, ib, wst[i + 1], xsb[g0 + i + 1]);
                } else {
                    q8_prefetch_groups(pf, 1);
                    q8_dots_pair16(w + o, wstride, xb + o, 0, &ia, &ib);
                    val = q8_accumulate(val, ia, wst[i], xsb[g0 + i]);
                }
            }
            break;
        case Q8_G8:
            for (; i + 4 <= ng; i += 4) {
                size_t o = off + (size_t)i * 8;
                __m256i iv[4];
                q8_prefetch_groups(pf, 4);
                q8_dots_quad8(w + o, wstride, xb + o, iv);
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
                    q8_prefetch_groups(pf, 2);
                    q8_dots_pair8(w + o, wstride, xb + o, gs, 1, &ia, &ib);
                    val = q8_accumulate(val, ia, wst[i], xsb[g0 + i]);
                    val = q8_accumulate(val, ib, wst[i + 1], xsb[g0 + i + 1]);
                } else {
                    q8_prefetch_groups(pf, 1);
                    q8_dots_pair8(w + o, wstride, xb + o, gs, 0, &ia, &ib);
                    val = q8_accumulate(val, ia, wst[i], xsb[g0 + i]);
                }
            }
            break;
        default: /* Q8_WIDE16 */
            for (; i < ng; i++) {
                size_t o = off + (size_t)i * (size_t)gs;
                q8_prefetch_groups(pf, 1);
                val = q8_accumulate(val, q8_dots_g16(w + o, wstride, xb + o, gs), wst[i], xsb[g0 + i]);
            }
            break;
        }
    }
    if (ostride == 1) {
        _mm256_storeu_ps(out, val);
    } else {
        _Alignas(32) float v[8];
        _mm256_store_ps(v, val);
        for (int j = 0; j < 8; j++) out[(size_t)j * ostride] = v[j];
    }
}

/* ------------------------------------------- several inputs at once */

/* With several inputs (prompt blocks) the weights are transposed instead:
 * for 8 rows, 4 bytes of each row side by side in one vector (lane i: row
 * i), so that one input's 4 bytes, broadcast, meet 8 rows at once and the
 * int32 sums of madd are already per row: no horizontal reduction, and one
 * transposed weight vector (and its |w|) serves many inputs. The float
 * accumulation is lane by lane in the reference's order, as in q8_rows8.
 * Rows are taken 8 at a time, columns a panel of whole groups (about 256
 * bytes) at a time, so that the transposed panel and the inputs' slices of
 * it stay in L1 while every input passes over them. */

/* 8 rows (w, stride cols) x 32 bytes to 8 vectors: t[s] lane i = bytes
 * 4s..4s+3 of row i. */
Q8_INLINE void transpose8x32(__m256i *t, const int8_t *w, size_t cols) {
    __m256i r0 = load32_i8(w), r1 = load32_i8(w + cols), r2 = load32_i8(w + 2 * cols);
    __m256i r3 = load32_i8(w + 3 * cols), r4 = load32_i8(w + 4 * cols), r5 = load32_i8(w + 5 * cols);
    __m256i r6 = load32_i8(w + 6 * cols), r7 = load32_i8(w + 7 * cols);
    /* dwords: a0 = r0d0 r1d0 r0d1 r1d1 | r0d4 r1d4 r0d5 r1d5, a1 the same for d2 d3 | d6 d7 */
    __m256i a0 = _mm256_unpacklo_epi32(r0, r1), a1 = _mm256_unpackhi_epi32(r0, r1);
    __m256i a2 = _mm256_unpacklo_epi32(r2, r3), a3 = _mm256_unpackhi_epi32(r2, r3);
    __m256i a4 = _mm256_unpacklo_epi32(r4, r5), a5 = _mm256_unpackhi_epi32(r4, r5);
    __m256i a6 = _mm256_unpacklo_epi32(r6, r7), a7 = _mm256_unpackhi_epi32(r6, r7);
    /* b0 = rows 0-3 of d0 | of d4, b1: d1 | d5, b2: d2 | d6, b3: d3 | d7; b4-b7 rows 4-7 */
    __m256i b0 = _mm256_unpacklo_epi64(a0, a2), b1 = _mm256_unpackhi_epi64(a0, a2);
    __m256i b2 = _mm256_unpacklo_epi64(a1, a3), b3 = _mm256_unpackhi_epi64(a1, a3);
    __m256i b4 = _mm256_unpacklo_epi64(a4, a6), b5 = _mm256_unpackhi_epi64(a4, a6);
    __m256i b6 = _mm256_unpacklo_epi64(a5, a7), b7 = _mm256_unpackhi_epi64(a5, a7);
    t[0] = _mm256_permute2x128_si256(b0, b4, 0x20);
    t[1] = _mm256_permute2x128_si256(b1, b5, 0x20);
    t[2] = _mm256_permute2x128_si256(b2, b6, 0x20);
    t[3] = _mm256_permute2x128_si256(b3, b7, 0x20);
    t[4] = _mm256_permute2x128_si256(b0, b4, 0x31);
    t[5] = _mm256_permute2x128_si256(b1, b5, 0x31);
    t[6] = _mm256_permute2x128_si256(b2, b6, 0x31);
    t[7] = _mm256_permute2x128_si256(b3, b7, 0x31);
}

/* 4 bytes of x, broadcast. */
Q8_INLINE __m256i bcast4_i8(const int8_t *x) {
    int32_t v;
    memcpy(&v, x, sizeof v);
    return _mm256_set1_epi32(v);
}

/* nbt inputs (x, xs at the first; strides cols and groups) against the
 * panel's transposed rows wt (gs / 4 vectors per group) and their scales
 * wst ([group][8]) for groups g0..g0+npg-1: val[b] accumulates input b's 8
 * row sums. Inputs without -128 (see q8_dot). */
Q8_INLINE void q8_panel_inputs(__m256 *val, const __m256i *wt, const float *wst, const int8_t *x,
                                 const float *xs, size_t cols, size_t groups, int g0, int npg, int gs, int nbt) {
    for (int gi = 0; gi < npg; gi++) {
        const size_t g = (size_t)(g0 + gi);
        const __m256i *wg = wt + (size_t)gi * (size_t)(gs / 4);
        const int8_t *xg = x + g * (size_t)gs;
        __m256i acc[8];
#pragma GCC unroll 8
        for (int b = 0; b < nbt; b++) acc[b] = _mm256_setzero_si256();
        for (int k = 0; k < gs / 4; k++) {
            const __m256i v = _mm256_load_si256(wg + k), u = _mm256_abs_epi8(v);
#pragma GCC unroll 8
            for (int b = 0; b < nbt; b++) {
                acc[b] = q8_dot_u(acc[b], u, _mm256_sign_epi8(bcast4_i8(xg + (size_t)b * cols + 4 * (size_t)k), v));
            }
        }
        const __m256 wsv = _mm256_load_ps(wst + 8 * (size_t)gi);
#pragma GCC unroll 8
        for (int b = 0; b < nbt; b++) {
            __m256 t = _mm256_mul_ps(_mm256_cvtepi32_ps(acc[b]), wsv);
            val[b] = _mm256_add_ps(val[b], _mm256_mul_ps(t, _mm256_broadcast_ss(xs + (size_t)b * groups + g)));
        }
    }
}

/* The input tile sizes, with constants for the compiler. */
__attribute__((noinline)) Q8_FN static void q8_panel_all(__m256 *val, const __m256i *wt, const float *wst,
                                                           const int8_t *x, const float *xs, size_t cols,
                                                           size_t groups, int g0, int npg, int gs, int nb) {
    int b = 0;
    for (; b + 8 <= nb; b += 8)
        q8_panel_inputs(val + b, wt, wst, x + (size_t)b * cols, xs + (size_t)b * groups, cols, groups, g0, npg, gs,
                        8);
    if (b + 4 <= nb) {
        q8_panel_inputs(val + b, wt, wst, x + (size_t)b * cols, xs + (size_t)b * groups, cols, groups, g0, npg, gs,
                        4);
        b += 4;
    }
    for (; b < nb; b++)
        q8_panel_inputs(val + b, wt, wst, x + (size_t)b * cols, xs + (size_t)b * groups, cols, groups, g0, npg, gs,
                        1);
}

/* Inputs per pass over a block of 8 rows (their sums stay in val[]). */
#define Q8_XT_INPUTS 64
/* Panel width in bytes per row (whole groups; a group may be wider). */
#define Q8_XT_PANEL 256

/* Rows [row_begin, row_end) (at least 8) against nb inputs, gs % 32 == 0,
 * gs <= Q8_XT_PANEL, inputs without -128; a last partial block of rows is
 * the range's last 8 rows (the same bits again for a few rows). */
Q8_FN static void q8_rows_transposed(float *out, size_t os, const int8_t *xq, const float *xs, int nb,
                                       const int8_t *w, const float *ws, size_t c, int gs, int groups, int row_begin,
                                       int row_end) {
    const int pg = Q8_XT_PANEL / gs; /* groups per panel */
    const size_t ng = (size_t)groups;
    _Alignas(32) __m256i wt[Q8_XT_PANEL / 4];
    _Alignas(32) float wst[8 * (Q8_XT_PANEL / 32)];
    __m256 val[Q8_XT_INPUTS];
    for (int r0 = row_begin; r0 < row_end; r0 += 8) {
        const int r = r0 + 8 <= row_end ? r0 : row_end - 8;
        const int8_t *wr = w + (size_t)r * c;
        for (int b0 = 0; b0 < nb; b0 += Q8_XT_INPUTS) {
            const int nbc = nb - b0 < Q8_XT_INPUTS ? nb - b0 : Q8_XT_INPUTS;
            for (int b = 0; b < nbc; b++) val[b] = _mm256_setzero_ps();
            for (int g0 = 0; g0 < groups; g0 += pg) {
                const int npg = groups - g0 < pg ? groups - g0 : pg;
                const size_t off = (size_t)g0 * (size_t)gs, bytes = (size_t)npg * (size_t)gs;
                for (size_t k = 0; k < bytes; k += 32) transpose8x32(wt + k / 4, wr + off + k, c);
                /* The next block's rows, same columns. */
                if (b0 == 0)
                    for (int j = 0; j < 8; j++)
                        for (size_t l = 0; l < bytes; l += 64)
                            _mm_prefetch((const char *)((uintptr_t)wr + (size_t)(8 + j) * c + off + l), _MM_HINT_T0);
                for (int gi = 0; gi < npg; gi++)
                    for (int j = 0; j < 8; j++) wst[8 * gi + j] = ws[(size_t)(r + j) * ng + (size_t)(g0 + gi)];
                q8_panel_all(val, wt, wst, xq + (size_t)b0 * c, xs + (size_t)b0 * ng, c, ng, g0, npg, gs, nbc);
            }
            for (int b = 0; b < nbc; b++) _mm256_storeu_ps(out + (size_t)(b0 + b) * os + (size_t)r, val[b]);
        }
    }
}

/* Whether n int8 hold a -128 (which quantize_q8 never produces, but a
 * caller may pass). */
Q8_FN static int has_int8_min(const int8_t *x, size_t n) {
    const __m256i m = _mm256_set1_epi8(-128);
    __m256i any = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) any = _mm256_or_si256(any, _mm256_cmpeq_epi8(load32_i8(x + i), m));
    if (!_mm256_testz_si256(any, any)) return 1;
    for (; i < n; i++)
        if (x[i] == -128) return 1;
    return 0;
}

/* One row, the reference's arithmetic in plain C; group g's scale at
 * wsr[g * ws_stride]. */
static float q8_row_scalar(const int8_t *xb, const float *xsb, const int8_t *wr, const float *wsr, size_t ws_stride,
                           int gs, int groups) {
    float val = 0.0f;
    for (int g = 0; g < groups; g++) {
        int32_t ival = 0;
        const int8_t *xg = xb + (size_t)g * (size_t)gs, *wg = wr + (size_t)g * (size_t)gs;
        for (int k = 0; k < gs; k++) ival += (int32_t)xg[k] * (int32_t)wg[k];
        val += ((float)ival) * wsr[(size_t)g * ws_stride] * xsb[g];
    }
    return val;
}

/* Rows [row_begin, row_end) (at least 8) against inputs [b0, b1), 8 rows
 * at a time, each block against every input while it is in cache; a last
 * partial block is the range's last 8 rows, which recomputes a few rows to
 * the same bits. */
Q8_FN static void q8_rows_blocks(float *out, size_t os, const int8_t *xq, const float *xs, int b0, int b1,
                                   const int8_t *w, const float *ws, size_t c, int gs, int groups, int mode,
                                   int row_begin, int row_end) {
    const size_t ng = (size_t)groups;
    for (int r0 = row_begin; r0 < row_end; r0 += 8) {
        int r = r0 + 8 <= row_end ? r0 : row_end - 8;
        const int8_t *wr = w + (size_t)r * c;
        q8_prefetch pf;
        q8_prefetch_block(&pf, wr, c, gs);
        for (int b = b0; b < b1; b++) {
            q8_rows8(out + (size_t)b * os + (size_t)r, 1, xq + (size_t)b * c, xs + (size_t)b * ng, wr, c,
                     ws + (size_t)r * ng, ng, NULL, gs, groups, mode, &pf);
            pf.mode = Q8_PF_OFF; /* the block is in cache now */
        }
    }
}

/* The integer-dot form for group size gs and inputs xq (n values): the
 * sign-trick modes need inputs without -128. */
Q8_FN static int q8_mode(int gs, const int8_t *xq, size_t n) {
    int mode;
    if (gs % 32 == 0) mode = Q8_G32;
    else if (gs == 16) mode = Q8_G16;
    else if (gs == 8) mode = Q8_G8;
    else mode = gs % 16 == 0 ? Q8_WIDE16 : Q8_WIDE8;
    if (mode <= Q8_G8 && has_int8_min(xq, n)) mode = gs % 16 == 0 ? Q8_WIDE16 : Q8_WIDE8;
    return mode;
}

/* Stripes i in [stripe_begin, stripe_end) of one input: 8 rows i + j * stripes
 * (row r at w + r * c), 8 long streams (see l2_q8_stripes). The scales are
 * either in stripe order (stripe_scales, see l2_q8_stripe_scale) or, when that is
 * NULL, in row order at ws. */
Q8_FN static void q8_stripes(float *out, const int8_t *xq, const float *xs, const int8_t *w, const float *ws,
                             const float *stripe_scales, size_t c, int gs, int groups, int mode, int stripes,
                             int stripe_begin, int stripe_end) {
    const size_t q = (size_t)stripes, ng = (size_t)groups;
    q8_prefetch pf;
    q8_prefetch_stripes(&pf, w + (size_t)stripe_begin * c, q * c, gs);
    for (int i = stripe_begin; i < stripe_end; i++) {
        const int8_t *wi = w + (size_t)i * c;
        if (stripe_scales)
            q8_rows8(out + i, q, xq, xs, wi, q * c, NULL, 0, stripe_scales + (size_t)i * 8 * ng, gs, groups, mode, &pf);
        else
            q8_rows8(out + i, q, xq, xs, wi, q * c, ws + (size_t)i * ng, q * ng, NULL, gs, groups, mode, &pf);
    }
}

Q8_FN void Q8_NAME(l2_gemv_q8_stripes)(float *out, const int8_t *xq, const float *xs, const int8_t *w, const void *packed,
                                   int cols, int gs, int stripes, int stripe_begin, int stripe_end) {
    const float *stripe_scales = packed; /* l2_repack_q8_stripe_scales */
    const int groups = cols / gs;
    const size_t c = (size_t)cols;
    if (gs % 8 != 0) {
        for (int i = stripe_begin; i < stripe_end; i++)
            for (int j = 0; j < 8; j++) {
                const size_t r = (size_t)i + (size_t)j * (size_t)stripes;
                out[r] = q8_row_scalar(xq, xs, w + r * c, stripe_scales + l2_q8_stripe_scale(i, 0, j, groups), 8, gs,
                                       groups);
            }
        return;
    }
    q8_stripes(out, xq, xs, w, NULL, stripe_scales, c, gs, groups, q8_mode(gs, xq, c), stripes, stripe_begin, stripe_end);
}

Q8_FN void Q8_NAME(l2_matmul_q8)(float *out, int out_stride, const int8_t *xq, const float *xs, int nb,
                               const int8_t *w, const float *ws, int cols, int gs, int row_begin, int row_end) {
    const int groups = cols / gs;
    const size_t c = (size_t)cols, ng = (size_t)groups, os = (size_t)out_stride;
    const int rows = row_end - row_begin;
    if (rows <= 0) return;
    if (gs % 8 != 0 || rows < 8) {
        for (int b = 0; b < nb; b++)
            for (int r = row_begin; r < row_end; r++)
                out[(size_t)b * os + (size_t)r] =
                    q8_row_scalar(xq + (size_t)b * c, xs + (size_t)b * ng, w + (size_t)r * c, ws + (size_t)r * ng, 1,
                                  gs, groups);
        return;
    }
    const int mode = q8_mode(gs, xq, (size_t)nb * c);
    if (mode == Q8_G32 && gs <= Q8_XT_PANEL && nb >= 2) {
        q8_rows_transposed(out, os, xq, xs, nb, w, ws, c, gs, groups, row_begin, row_end);
        return;
    }
    if (nb == 1) {
        /* The range's rows as stripes (the scales in row order, so 8 scale
         * streams: products use gemv_q8_stripes and the stripe-ordered copy of
         * repack_q8 instead), the rows left over as one block. */
        const int stripes = l2_q8_stripes(rows);
        const size_t r0 = (size_t)row_begin;
        q8_stripes(out + r0, xq, xs, w + r0 * c, ws + r0 * ng, NULL, c, gs, groups, mode, stripes, 0, stripes);
        const int left = row_begin + 8 * stripes;
        if (left < row_end)
            q8_rows_blocks(out, 0, xq, xs, 0, 1, w, ws, c, gs, groups, mode, left < row_end - 8 ? left : row_end - 8,
                           row_end);
        return;
    }
    q8_rows_blocks(out, os, xq, xs, 0, nb, w, ws, c, gs, groups, mode, row_begin, row_end);
}

#else

/* ISO C forbids an empty translation unit. */
typedef int l2_ops_avx2_q8_unused;

#endif
