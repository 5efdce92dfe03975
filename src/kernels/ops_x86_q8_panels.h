/*
 * The x86 int8 products over panels of 16 rows (runq.c's Q8_0, the
 * reference's bits), written once for the three levels that read them:
 * one vector holds the same 4 values of 16 rows (512 bits) or of 8 rows (a
 * 256-bit half of a panel's run; ops_q8_panels.h has the layout), a row a
 * 32-bit lane, and one dot step multiplies them by 4 bytes of an input
 * broadcast from memory: each weight vector loaded once for up to 8
 * inputs (at 256 bits a group's first half, then its second, from the same
 * cache lines), every lane a row from the start (no reduction, no
 * transposition at run time).
 *
 * The dot step, the one part that differs (Q8P_DOT):
 *   Q8P_VNNI512, Q8P_VNNI256: vpdpbusd (AVX512-VNNI; AVX-VNNI's VEX form)
 *       multiplies the panels' unsigned w + 128 by the signed input; a
 *       group's integer dot is the sum less 128 times the input group's sum
 *       (x_sums);
 *   Q8P_MADDUBS (AVX2): vpmaddubsw would saturate pairs of (w + 128) * x,
 *       so these panels hold w itself, and |w| (at most 128)
 *       meets x with w's sign (vpsignb; |x| <= 127: inputs that hold -128,
 *       which quantize_q8 never makes, go to the level's matmul_q8): pairs
 *       within 2 * 128 * 127, exact in int16, then vpmaddwd by ones.
 * Then runq.c's float steps for every lane, group by group:
 * val += ((float)ival * ws) * xs, nothing fused.
 *
 * The including file defines X86_W (256 or 512), Q8P_DOT, Q8P_TARGET (the
 * target features), Q8P_NAME (the exported name), Q8P_MATMUL_Q8 (the
 * level's matmul_q8, for what the panels do not hold) and Q8P_AFTER_STRIPES
 * (1: the panels follow the stripe-ordered scales in the level's copy).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ops.h"
#include "ops_isa.h"
#include "ops_q8_panels.h"
#include "ops_x86.h"
#include "ops_x86_width.h"

#define Q8P_VNNI512 1
#define Q8P_VNNI256 2
#define Q8P_MADDUBS 3
#if Q8P_DOT == Q8P_MADDUBS && X86_W != 256
#error "the vpmaddubsw dot step is written for 256-bit vectors"
#endif

#define FN L2_TARGET(Q8P_TARGET)
#define INLINE L2_INLINE(Q8P_TARGET)

#define VECI V_SEL(__m256i, __m512i)
#define V_BYTES (X86_W / 8)
/* The vectors one run of a panel (4 bytes of 16 rows) fills. */
#define HALVES (L2_Q8_PANEL_ROWS / V_LANES)
#define RUN_BYTES (4 * L2_Q8_PANEL_ROWS)
#define PREFETCH_AHEAD 8192
/* Inputs per pass over a panel (at 256 bits, over a half of it): as many
 * accumulators as leave the weights and an input's bytes registers. */
#define PANEL_INPUTS 8

/* One run's vector as the dot step takes it: u the unsigned operand, s
 * (MADDUBS) the signs it gives the input. */
typedef struct {
    VECI u, s;
} run_vec;

INLINE run_vec load_run(const unsigned char *p) {
    const VECI v = V_SEL(_mm256_loadu_si256((const __m256i *)(const void *)p), _mm512_loadu_si512((const void *)p));
#if Q8P_DOT == Q8P_MADDUBS
    return (run_vec){_mm256_abs_epi8(v), v};
#else
    return (run_vec){v, v};
#endif
}

/* acc + the 4-byte dots of each lane's row with input bytes x (one 32-bit
 * piece broadcast). */
INLINE VECI dot_run(VECI acc, run_vec w, VECI x) {
#if Q8P_DOT == Q8P_VNNI512
    return _mm512_dpbusd_epi32(acc, w.u, x);
#elif Q8P_DOT == Q8P_VNNI256
    return _mm256_dpbusd_avx_epi32(acc, w.u, x);
#else
    const __m256i pairs = _mm256_maddubs_epi16(w.u, _mm256_sign_epi8(x, w.s));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
#endif
}

/* A group's integer dots from the dot steps' sums. */
INLINE VECI group_dots(VECI acc, int32_t x_sum) {
#if Q8P_DOT == Q8P_MADDUBS
    (void)x_sum;
    return acc;
#else
    return V_OP(sub_epi32)(acc, V_OP(set1_epi32)(128 * x_sum));
#endif
}

/* Input bytes 4j..4j+3 in every lane (a broadcast load). */
INLINE VECI piece(const int8_t *x, int j) {
    int32_t v;
    memcpy(&v, x + 4 * j, sizeof v);
    return V_OP(set1_epi32)(v);
}

/* One panel against NI inputs (input i at xq + i * cols): each run's
 * vectors read once for all of them. val[i * HALVES + h]: input i's rows
 * of half h. */
INLINE void panel_inputs(VEC *val, const unsigned char *panel, const l2_q8_panel_layout *l, const int8_t *xq,
                         const float *xs, const int32_t *x_sums, int cols, int gs, int ni) {
#pragma GCC unroll 16
    for (int i = 0; i < ni * HALVES; i++) val[i] = V_OP(setzero_ps)();
    for (int g = 0; g < l->groups; g++) {
        const unsigned char *group = panel + (size_t)g * l->group_bytes;
        const size_t at = (size_t)g * (size_t)gs;
        VECI acc[PANEL_INPUTS * HALVES];
#pragma GCC unroll 16
        for (int i = 0; i < ni * HALVES; i++) acc[i] = V_SEL(_mm256_setzero_si256(), _mm512_setzero_si512());
        /* A half of the group at a time (the second half's bytes are in
         * the cache lines the first brought in): only the half's
         * accumulators live, so that they stay in registers. */
#pragma GCC unroll 2
        for (int h = 0; h < HALVES; h++)
            for (int k = 0; k < gs / 4; k++) {
                const unsigned char *run = group + (size_t)k * RUN_BYTES;
                if (h == 0) _mm_prefetch((const char *)(run + PREFETCH_AHEAD), _MM_HINT_T0);
                const run_vec wv = load_run(run + (size_t)h * V_BYTES);
#pragma GCC unroll 8
                for (int i = 0; i < ni; i++)
                    acc[i * HALVES + h] = dot_run(acc[i * HALVES + h], wv, piece(xq + (size_t)i * (size_t)cols + at, k));
            }
        const float *scales = (const float *)(const void *)(group + (size_t)gs * L2_Q8_PANEL_ROWS);
        VEC wscale[HALVES];
#pragma GCC unroll 2
        for (int h = 0; h < HALVES; h++) wscale[h] = V_OP(loadu_ps)(scales + h * V_LANES);
#pragma GCC unroll 8
        for (int i = 0; i < ni; i++) {
            const size_t gi = (size_t)i * (size_t)l->groups + (size_t)g;
            const VEC xscale = V_OP(set1_ps)(xs[gi]);
#pragma GCC unroll 2
            for (int h = 0; h < HALVES; h++) {
                const VEC ival = V_OP(cvtepi32_ps)(group_dots(acc[i * HALVES + h], x_sums[gi]));
                val[i * HALVES + h] = V_OP(add_ps)(val[i * HALVES + h], V_OP(mul_ps)(V_OP(mul_ps)(ival, wscale[h]), xscale));
            }
        }
    }
}

#if Q8P_DOT == Q8P_MADDUBS
/* Whether the inputs hold a -128, which vpsignb cannot negate. */
static int has_int8_min(const int8_t *x, size_t n) { return memchr(x, 0x80, n) != NULL; }
#endif

#define PANEL_CASE(n)                                                                                            \
    case n: panel_inputs(val, panel, &l, x, s, sums, cols, gs, n); break;

FN void Q8P_NAME(float *out, int out_stride, const int8_t *xq, const float *xs, const int32_t *x_sums, int nb,
                 const int8_t *w, const float *ws, const void *packed, int rows, int cols, int gs, int row_begin,
                 int row_end) {
    const l2_q8_panel_layout l = l2_q8_panel_layout_of(rows, cols, gs);
    if (l.n_panels == 0
#if Q8P_DOT == Q8P_MADDUBS
        || has_int8_min(xq, (size_t)nb * (size_t)cols)
#endif
    ) {
        Q8P_MATMUL_Q8(out, out_stride, xq, xs, nb, w, ws, cols, gs, row_begin, row_end);
        return;
    }
    /* Every panel the range touches, whole; only the range's rows stored
     * (the products' tasks start and end on panels). */
    const unsigned char *panels = (const unsigned char *)packed + (Q8P_AFTER_STRIPES ? l2_q8_panels_offset(rows, cols, gs) : 0);
    for (int pn = row_begin / L2_Q8_PANEL_ROWS; pn * L2_Q8_PANEL_ROWS < row_end; pn++) {
        const int row0 = pn * L2_Q8_PANEL_ROWS, lo = row_begin > row0 ? row_begin - row0 : 0,
                  hi = row_end - row0 < L2_Q8_PANEL_ROWS ? row_end - row0 : L2_Q8_PANEL_ROWS;
        const unsigned char *panel = panels + (size_t)pn * l.panel_bytes;
        for (int i0 = 0; i0 < nb; i0 += PANEL_INPUTS) {
            const int ni = nb - i0 < PANEL_INPUTS ? nb - i0 : PANEL_INPUTS;
            const int8_t *x = xq + (size_t)i0 * (size_t)cols;
            const float *s = xs + (size_t)i0 * (size_t)l.groups;
            const int32_t *sums = x_sums + (size_t)i0 * (size_t)l.groups;
            VEC val[PANEL_INPUTS * HALVES];
            /* The tile's width a constant in each call, so that the
             * accumulators stay in registers. */
            switch (ni) {
                PANEL_CASE(8)
                PANEL_CASE(7)
                PANEL_CASE(6)
                PANEL_CASE(5)
                PANEL_CASE(4)
                PANEL_CASE(3)
                PANEL_CASE(2)
            default: panel_inputs(val, panel, &l, x, s, sums, cols, gs, 1); break;
            }
            for (int i = 0; i < ni; i++) {
                float *o = out + (size_t)(i0 + i) * (size_t)out_stride + (size_t)row0;
                if (lo == 0 && hi == L2_Q8_PANEL_ROWS) {
#pragma GCC unroll 2
                    for (int h = 0; h < HALVES; h++) V_OP(storeu_ps)(o + h * V_LANES, val[i * HALVES + h]);
                } else {
                    _Alignas(64) float t[L2_Q8_PANEL_ROWS];
#pragma GCC unroll 2
                    for (int h = 0; h < HALVES; h++) V_OP(store_ps)(t + h * V_LANES, val[i * HALVES + h]);
                    memcpy(o + lo, t + lo, (size_t)(hi - lo) * sizeof(float));
                }
            }
        }
    }
}

#undef PANEL_CASE
