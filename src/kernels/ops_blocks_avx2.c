/*
 * The block kernels (ops_blocks.h) on 256-bit vectors. The quantizer is the
 * reference's bits. The dots are ggml's way: a block's integer products in
 * eight int32 lanes (exact: |w| <= 128 and activations within [-127, 127],
 * so maddubs's pair sums never saturate), converted to float and added into
 * a float vector per row with one FMA by the block's scale product, the
 * eight lanes summed once at the end. That differs from the reference's
 * block-by-block sum in rounding only; a row's result is the same bits
 * whether it runs alone or with three others.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ops.h"
#include "ops_blocks.h"

#if defined(__x86_64__) || defined(__i386__)

#include "model/float16.h"
#include "ops_avx2_util.h"
#include "ops_isa.h"
#include "ops_x86.h"

#define FN L2_TARGET(L2_AVX2)
#define INLINE L2_INLINE(L2_AVX2)

FN static void quantize_q8_0_avx2(l2_block_q8_0 *y, const float *x, int n) {
    const __m256 sign = _mm256_set1_ps(-0.0f), half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f);
    const __m256 hi = _mm256_set1_ps(127.0f), lo = _mm256_set1_ps(-127.0f);
    for (int b = 0; b < n / L2_BLOCK; b++) {
        const float *v = x + (size_t)b * L2_BLOCK;
        /* max of |x|; a NaN lane keeps the running maximum (as the
         * reference's comparison skips it). */
        __m256 m = _mm256_setzero_ps();
        for (int j = 0; j < L2_BLOCK; j += 8) m = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(v + j)), m);
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 1));
        const float amax = _mm_cvtss_f32(m4), d = amax / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        if (!isfinite(id)) id = 0.0f;
        y[b].d = l2_f32_to_f16(d);
        const __m256 vid = _mm256_set1_ps(id);
        for (int j = 0; j < L2_BLOCK; j += 8) {
            const __m256 p = _mm256_mul_ps(_mm256_loadu_ps(v + j), vid);
            /* roundf: the truncation, plus one away from zero where the
             * dropped part is at least a half (exact: p - t is). */
            const __m256 t = _mm256_round_ps(p, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
            const __m256 away = _mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_sub_ps(p, t)), half, _CMP_GE_OQ);
            __m256 r = _mm256_add_ps(t, _mm256_and_ps(away, _mm256_or_ps(_mm256_and_ps(p, sign), one)));
            r = _mm256_and_ps(r, _mm256_cmp_ps(p, p, _CMP_ORD_Q)); /* NaN: 0 */
            r = _mm256_min_ps(_mm256_max_ps(r, lo), hi);
            const __m256i q32 = _mm256_cvtps_epi32(r);
            const __m128i q16 = _mm_packs_epi32(_mm256_castsi256_si128(q32), _mm256_extracti128_si256(q32, 1));
            _mm_storel_epi64((__m128i *)(void *)(y[b].qs + j), _mm_packs_epi16(q16, q16));
        }
    }
}

INLINE __m256i q8_values(const l2_block_q8_0 *b) { return _mm256_loadu_si256((const __m256i *)(const void *)b->qs); }

/* A block's products in 16 int16 pair sums. x8 holds 8 * (x[2i] + x[2i+1])
 * (used by Q4_0 only). Q8_0: |w| times x with w's sign. */
INLINE __m256i q8_pairs(const l2_block_q8_0 *w, __m256i x, __m256i x8) {
    (void)x8;
    const __m256i v = q8_values(w);
    return _mm256_maddubs_epi16(_mm256_sign_epi8(v, v), _mm256_sign_epi8(x, v));
}

/* Q4_0: the stored nibbles (0-15, values 0-15 from the low ones, 16-31
 * from the high ones) times x, less 8 times x: the same integers as
 * (nibble - 8) * x, computed once per input for every row. */
INLINE __m256i q4_pairs(const l2_block_q4_0 *w, __m256i x, __m256i x8) {
    const __m128i packed = _mm_loadu_si128((const __m128i *)(const void *)w->qs);
    const __m256i nibbles = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(packed, 4), packed), _mm256_set1_epi8(0x0F));
    return _mm256_sub_epi16(_mm256_maddubs_epi16(nibbles, x), x8);
}

/* The scales of blocks p[0..8) as eight 16-bit lanes (built in registers:
 * a vector load of eight just-stored scalars would stall on store
 * forwarding). */
#define SCALES_8(p)                                                                                               \
    _mm_setr_epi16((short)(p)[0].d, (short)(p)[1].d, (short)(p)[2].d, (short)(p)[3].d, (short)(p)[4].d,           \
                   (short)(p)[5].d, (short)(p)[6].d, (short)(p)[7].d)

/* One block of one row into the row's accumulator: the integer lanes
 * times the block's scale product, fused. */
#define BLOCK_STEP(acc, PAIRS, wb, xv, x8, d)                                                                    \
    acc = _mm256_fmadd_ps(_mm256_broadcast_ss(d),                                                                \
                          _mm256_cvtepi32_ps(_mm256_madd_epi16(PAIRS(wb, xv, x8), _mm256_set1_epi16(1))), acc)

/* The scale products of blocks [b, b + n) of `rows` rows against one
 * input: eight at once with vector multiplies, fewer one by one. */
#define SCALES(dst, w, row_blocks, x, b, n, rows)                                                                \
    do {                                                                                                         \
        if ((n) == 8) {                                                                                          \
            const __m256 dx = f16_to_f32_8(SCALES_8((x) + (b)));                                                 \
            for (int r = 0; r < (rows); r++)                                                                     \
                _mm256_storeu_ps((dst)[r], _mm256_mul_ps(f16_to_f32_8(SCALES_8((w) + (size_t)r * (row_blocks) + (b))), dx)); \
        } else {                                                                                                 \
            for (int r = 0; r < (rows); r++)                                                                     \
                for (int j = 0; j < (n); j++)                                                                    \
                    (dst)[r][j] = l2_f16_to_f32((w)[(size_t)r * (row_blocks) + (size_t)((b) + j)].d) *             \
                                l2_f16_to_f32((x)[(b) + j].d);                                                   \
        }                                                                                                        \
    } while (0)

/* `rows` (1 or 4) weight rows (row r at w + r * row_blocks) against
 * `inputs` (1 or 2) inputs (input i at x + i * x_stride), eight blocks at
 * a time: the eight blocks' scale products per row and input in one vector
 * multiply, then each block's integer lanes FMA'd into the (row, input)
 * float accumulator (each input's block loaded once for the rows; the
 * accumulators named one by one so that they stay in registers). The steps
 * of a (row, input) pair do not depend on `rows` or `inputs`. */
#define DOT_ROWS(NAME, TYPE, PAIRS)                                                                                \
    INLINE void NAME(float *out, const TYPE *w, size_t row_blocks, const l2_block_q8_0 *x, size_t x_stride,     \
                     int n_blocks, int rows, int inputs) {                                                       \
        const __m256i eights = _mm256_set1_epi8(8);                                                              \
        const TYPE *w0 = w, *w1 = w + row_blocks, *w2 = w + 2 * row_blocks, *w3 = w + 3 * row_blocks;          \
        const l2_block_q8_0 *x0 = x, *x1 = x + x_stride;                                                         \
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, c0 = a0, c1 = a0, c2 = a0, c3 = a0;          \
        float d[4][8], e[4][8];                                                                                  \
        for (int b = 0; b < n_blocks; b += 8) {                                                                  \
            const int n = n_blocks - b < 8 ? n_blocks - b : 8;                                                   \
            SCALES(d, w, row_blocks, x0, b, n, rows);                                                            \
            if (inputs == 2) SCALES(e, w, row_blocks, x1, b, n, rows);                                           \
            for (int j = 0; j < n; j++) {                                                                        \
                const __m256i xv = q8_values(&x0[b + j]);                                                        \
                const __m256i x8 = _mm256_maddubs_epi16(eights, xv);                                             \
                BLOCK_STEP(a0, PAIRS, &w0[b + j], xv, x8, &d[0][j]);                                             \
                if (rows == 4) {                                                                                 \
                    BLOCK_STEP(a1, PAIRS, &w1[b + j], xv, x8, &d[1][j]);                                         \
                    BLOCK_STEP(a2, PAIRS, &w2[b + j], xv, x8, &d[2][j]);                                         \
                    BLOCK_STEP(a3, PAIRS, &w3[b + j], xv, x8, &d[3][j]);                                         \
                }                                                                                                \
                if (inputs == 2) {                                                                               \
                    const __m256i yv = q8_values(&x1[b + j]);                                                    \
                    const __m256i y8 = _mm256_maddubs_epi16(eights, yv);                                         \
                    BLOCK_STEP(c0, PAIRS, &w0[b + j], yv, y8, &e[0][j]);                                         \
                    BLOCK_STEP(c1, PAIRS, &w1[b + j], yv, y8, &e[1][j]);                                         \
                    BLOCK_STEP(c2, PAIRS, &w2[b + j], yv, y8, &e[2][j]);                                         \
                    BLOCK_STEP(c3, PAIRS, &w3[b + j], yv, y8, &e[3][j]);                                         \
                }                                                                                                \
            }                                                                                                    \
        }                                                                                                        \
        out[0] = hsum8(a0);                                                                                    \
        if (rows == 4) {                                                                                         \
            out[1] = hsum8(a1);                                                                                \
            out[2] = hsum8(a2);                                                                                \
            out[3] = hsum8(a3);                                                                                \
        }                                                                                                        \
        if (inputs == 2) {                                                                                       \
            out[4] = hsum8(c0);                                                                                \
            out[5] = hsum8(c1);                                                                                \
            out[6] = hsum8(c2);                                                                                \
            out[7] = hsum8(c3);                                                                                \
        }                                                                                                        \
    }

DOT_ROWS(rows_q8_0, l2_block_q8_0, q8_pairs)
DOT_ROWS(rows_q4_0, l2_block_q4_0, q4_pairs)

FN static float dot_q8_0_avx2(const l2_block_q8_0 *w, const l2_block_q8_0 *x, int n_blocks) {
    float out;
    rows_q8_0(&out, w, 0, x, 0, n_blocks, 1, 1);
    return out;
}

FN static float dot_q4_0_avx2(const l2_block_q4_0 *w, const l2_block_q8_0 *x, int n_blocks) {
    float out;
    rows_q4_0(&out, w, 0, x, 0, n_blocks, 1, 1);
    return out;
}

FN static void dot4_q8_0_avx2(float out[4], const l2_block_q8_0 *w, size_t row_blocks, const l2_block_q8_0 *x,
                              int n_blocks) {
    rows_q8_0(out, w, row_blocks, x, 0, n_blocks, 4, 1);
}

/* Four rows against two inputs (inputs == 2 runs the four rows only). */
FN static void dot4x2_q8_0_avx2(float out[8], const l2_block_q8_0 *w, size_t row_blocks, const l2_block_q8_0 *x,
                                size_t x_stride, int n_blocks) {
    rows_q8_0(out, w, row_blocks, x, x_stride, n_blocks, 4, 2);
}

/* Q4_0 panels (ops_blocks.h) against NI inputs at once, a panel's two
 * halves (8 rows each, a row a 32-bit lane) block by block: each half
 * block's nibbles unpacked once into eight vectors (the low nibbles of
 * vector k hold values 4k..4k+3 of the 8 rows, the high ones values
 * 16+4k..16+4k+3), multiplied by the input's matching 4 bytes broadcast.
 * The 16-bit pair sums of the eight steps add up without overflow (at
 * most 8 * 2 * 15 * 128), and the block's integer dot is the nibbles'
 * less 8 times the input's sum. Then the reference's float steps for
 * every lane: (float)isum * (dw * dx) added to the row's sum, block by
 * block, nothing fused. acc[2 * i + h]: input i, half h. */
INLINE void q4_0_panel(__m256 *acc, const uint8_t *nibbles, const uint8_t *scales, const l2_block_q8_0 *x,
                       const l2_block_q8_0_summary *xs, size_t x_stride, int n_blocks, int ni) {
    const __m256i low = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
#pragma GCC unroll 8
    for (int i = 0; i < 2 * ni; i++) acc[i] = _mm256_setzero_ps();
    for (int b = 0; b < n_blocks; b++) {
        const uint8_t *v = nibbles + (size_t)b * 256;
#pragma GCC unroll 8
        for (int k = 0; k < 4; k++) _mm_prefetch((const char *)(v + L2_PANEL_PREFETCH + 64 * k), L2_PANEL_PREFETCH_HINT);
#pragma GCC unroll 8
        for (int h = 0; h < 2; h++) {
            __m256i lo[4], hi[4];
#pragma GCC unroll 8
            for (int k = 0; k < 4; k++) {
                const __m256i packed = _mm256_loadu_si256((const __m256i *)(const void *)(v + 64 * k + 32 * h));
                lo[k] = _mm256_and_si256(packed, low);
                hi[k] = _mm256_and_si256(_mm256_srli_epi16(packed, 4), low);
            }
            const __m256 dw =
                f16_to_f32_8(_mm_loadu_si128((const __m128i *)(const void *)(scales + (size_t)b * 32 + 16 * h)));
#pragma GCC unroll 8
            for (int i = 0; i < ni; i++) {
                const int8_t *q = x[(size_t)i * x_stride + (size_t)b].qs;
                const l2_block_q8_0_summary *sm = &xs[(size_t)i * x_stride + (size_t)b];
                __m256i pairs = _mm256_maddubs_epi16(lo[0], broadcast_piece(q, 0));
#pragma GCC unroll 8
                for (int k = 1; k < 4; k++)
                    pairs = _mm256_add_epi16(pairs, _mm256_maddubs_epi16(lo[k], broadcast_piece(q, k)));
#pragma GCC unroll 8
                for (int k = 0; k < 4; k++)
                    pairs = _mm256_add_epi16(pairs, _mm256_maddubs_epi16(hi[k], broadcast_piece(q, 4 + k)));
                const __m256i isum = _mm256_sub_epi32(_mm256_madd_epi16(pairs, ones), _mm256_set1_epi32(8 * sm->sum));
                const __m256 scale = _mm256_mul_ps(dw, _mm256_set1_ps(sm->d));
                acc[2 * i + h] = _mm256_add_ps(acc[2 * i + h], _mm256_mul_ps(_mm256_cvtepi32_ps(isum), scale));
            }
        }
    }
}

#define PANEL_INPUTS 2

FN static void q4_0_panels_avx2(float *out, size_t out_stride, const void *panels, int rows, int panel_begin,
                                int panel_end, const l2_block_q8_0 *x, const l2_block_q8_0_summary *xs,
                                size_t x_stride, int n_inputs, int n_blocks) {
    const size_t panel = l2_q4_0_panel_bytes(n_blocks);
    for (int p = panel_begin; p < panel_end; p++) {
        const uint8_t *nibbles = (const uint8_t *)panels + (size_t)p * panel,
                      *scales = nibbles + (size_t)n_blocks * 256;
        const int row0 = p * L2_PANEL_ROWS, n_rows = rows - row0 < L2_PANEL_ROWS ? rows - row0 : L2_PANEL_ROWS;
        for (int i0 = 0; i0 < n_inputs; i0 += PANEL_INPUTS) {
            const int ni = n_inputs - i0 < PANEL_INPUTS ? n_inputs - i0 : PANEL_INPUTS;
            __m256 acc[2 * PANEL_INPUTS];
            /* The tile's width a constant in each call, so that the
             * accumulators stay in registers. */
            if (ni == 2)
                q4_0_panel(acc, nibbles, scales, x + (size_t)i0 * x_stride, xs + (size_t)i0 * x_stride, x_stride,
                           n_blocks, 2);
            else
                q4_0_panel(acc, nibbles, scales, x + (size_t)i0 * x_stride, xs + (size_t)i0 * x_stride, x_stride,
                           n_blocks, 1);
            for (int i = 0; i < ni; i++) {
                float lanes[L2_PANEL_ROWS];
                _mm256_storeu_ps(lanes, acc[2 * i]);
                _mm256_storeu_ps(lanes + 8, acc[2 * i + 1]);
                memcpy(out + (size_t)(i0 + i) * out_stride + (size_t)row0, lanes, (size_t)n_rows * sizeof(float));
            }
        }
    }
}

const l2_block_kernels *l2_block_kernels_avx2(void) {
    static const l2_block_kernels table = {.name = "avx2",
                                           .quantize_q8_0 = quantize_q8_0_avx2,
                                           .dot_q8_0 = dot_q8_0_avx2,
                                           .dot_q4_0 = dot_q4_0_avx2,
                                           .dot4_q8_0 = dot4_q8_0_avx2,
                                           .dot4x2_q8_0 = dot4x2_q8_0_avx2,
                                           .q4_0_panels = q4_0_panels_avx2};
    return l2_x86_features_read().avx2 ? &table : NULL;
}

const l2_block_kernels *l2_block_kernels_avx512_vnni(void) {
    static const l2_block_kernels table = {.name = "avx512-vnni",
                                           .quantize_q8_0 = quantize_q8_0_avx2,
                                           .dot_q8_0 = dot_q8_0_avx2,
                                           .dot_q4_0 = dot_q4_0_avx2,
                                           .dot4_q8_0 = dot4_q8_0_avx2,
                                           .dot4x2_q8_0 = dot4x2_q8_0_avx2,
                                           .q4_0_panels = l2_q4_0_panels_avx512_vnni};
    return l2_x86_features_read().avx512_vnni ? &table : NULL;
}

#else

const l2_block_kernels *l2_block_kernels_avx2(void) { return NULL; }
const l2_block_kernels *l2_block_kernels_avx512_vnni(void) { return NULL; }

#endif
