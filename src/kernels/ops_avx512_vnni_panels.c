/*
 * The avx512-vnni level's int8 prompt products (runq.c's Q8_0, the
 * reference's bits): the weights repacked once, when the model is opened,
 * into panels of 16 rows, so that one 512-bit vector holds the same 4
 * values of 16 rows (a row a 32-bit lane) and one vpdpbusd multiplies them
 * by 4 bytes of an input broadcast from memory: 64 exact multiply-adds an
 * instruction, each weight vector loaded once for up to 8 inputs, with no
 * transposition left to do at run time.
 *
 * vpdpbusd multiplies unsigned by signed bytes: the panels hold w + 128
 * (w ^ 0x80 as an unsigned byte), the inputs stay signed, and a group's
 * integer dot is the sum less 128 times the sum of the input's group
 * (x_sums). Then runq.c's float steps for every lane, group by group:
 * val += ((float)ival * ws) * xs, nothing fused.
 */
#if defined(__x86_64__) || defined(__i386__)

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ops.h"
#include "ops_isa.h"
#include "ops_x86.h"

#define FN L2_TARGET(L2_AVX512_VNNI)
#define INLINE L2_INLINE(L2_AVX512_VNNI)

#define PANEL_ROWS 16
#define PREFETCH_AHEAD 8192
#define PANEL_INPUTS 8

/* Where the parts of a repacked matrix lie: the panels, each group of a
 * panel gs * 16 bytes of weights (gs / 4 vectors) followed by the 16 rows'
 * scales of the group. No panels (nothing) where gs is not a multiple of
 * 4: the products then read the matrix as it is. */
typedef struct panel_layout {
    size_t group_bytes, panel_bytes, total;
    int n_panels, groups;
} panel_layout;

static panel_layout layout_of(int rows, int cols, int gs) {
    panel_layout l = {0};
    if (gs % 4 != 0) return l;
    l.groups = cols / gs;
    l.n_panels = (rows + PANEL_ROWS - 1) / PANEL_ROWS;
    l.group_bytes = (size_t)gs * PANEL_ROWS + PANEL_ROWS * sizeof(float);
    l.panel_bytes = (size_t)l.groups * l.group_bytes;
    l.total = (size_t)l.n_panels * l.panel_bytes;
    return l;
}

size_t l2_repack_q8_vnni_panels(void *dst, const int8_t *w, const float *ws, int rows, int cols, int gs) {
    const panel_layout l = layout_of(rows, cols, gs);
    if (!dst) return l.total;
    unsigned char *p = dst;
    /* The rows past the matrix's last (whose lanes are computed but never
     * stored) zero, not left to chance. */
    if (rows % PANEL_ROWS != 0) memset(p + (size_t)(l.n_panels - 1) * l.panel_bytes, 0, l.panel_bytes);
    for (int pn = 0; pn < l.n_panels; pn++)
        for (int r = 0; r < PANEL_ROWS && pn * PANEL_ROWS + r < rows; r++) {
            const size_t row = (size_t)(pn * PANEL_ROWS + r);
            for (int g = 0; g < l.groups; g++) {
                unsigned char *group = p + (size_t)pn * l.panel_bytes + (size_t)g * l.group_bytes;
                for (int k = 0; k < gs / 4; k++)
                    for (int j = 0; j < 4; j++)
                        group[(size_t)k * 64 + (size_t)r * 4 + (size_t)j] =
                            (unsigned char)((unsigned char)w[row * (size_t)cols + (size_t)g * (size_t)gs + 4 * (size_t)k + (size_t)j] ^ 0x80u);
                float *scales = (float *)(void *)(group + (size_t)gs * PANEL_ROWS);
                scales[r] = ws[row * (size_t)l.groups + (size_t)g];
            }
        }
    return l.total;
}

/* Input bytes 4j..4j+3 in every lane (a broadcast load). */
INLINE __m512i piece(const int8_t *x, int j) {
    int32_t v;
    memcpy(&v, x + 4 * j, sizeof v);
    return _mm512_set1_epi32(v);
}

/* One panel against NI inputs (input i at xq + i * cols): each group's
 * weight vectors read once for all of them. */
INLINE void panel_inputs(__m512 *val, const unsigned char *panel, const panel_layout *l, const int8_t *xq,
                         const float *xs, const int32_t *x_sums, int cols, int gs, int ni) {
#pragma GCC unroll 8
    for (int i = 0; i < ni; i++) val[i] = _mm512_setzero_ps();
    for (int g = 0; g < l->groups; g++) {
        const unsigned char *group = panel + (size_t)g * l->group_bytes;
        const size_t at = (size_t)g * (size_t)gs;
        __m512i acc[PANEL_INPUTS];
#pragma GCC unroll 8
        for (int i = 0; i < ni; i++) acc[i] = _mm512_setzero_si512();
        for (int k = 0; k < gs / 4; k++) {
            _mm_prefetch((const char *)(group + (size_t)k * 64 + PREFETCH_AHEAD), _MM_HINT_T0);
            const __m512i wv = _mm512_loadu_si512((const void *)(group + (size_t)k * 64));
#pragma GCC unroll 8
            for (int i = 0; i < ni; i++)
                acc[i] = _mm512_dpbusd_epi32(acc[i], wv, piece(xq + (size_t)i * (size_t)cols + at, k));
        }
        const __m512 wscale = _mm512_loadu_ps((const float *)(const void *)(group + (size_t)gs * PANEL_ROWS));
#pragma GCC unroll 8
        for (int i = 0; i < ni; i++) {
            const size_t gi = (size_t)i * (size_t)l->groups + (size_t)g;
            const __m512i ival = _mm512_sub_epi32(acc[i], _mm512_set1_epi32(128 * x_sums[gi]));
            const __m512 term = _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(ival), wscale), _mm512_set1_ps(xs[gi]));
            val[i] = _mm512_add_ps(val[i], term);
        }
    }
}

FN void l2_matmul_q8_packed_avx512vnni(float *out, int out_stride, const int8_t *xq, const float *xs,
                                       const int32_t *x_sums, int nb, const int8_t *w, const float *ws,
                                       const void *packed, int rows, int cols, int gs, int row_begin, int row_end) {
    const panel_layout l = layout_of(rows, cols, gs);
    if (l.n_panels == 0) {
        l2_matmul_q8_avx512vnni(out, out_stride, xq, xs, nb, w, ws, cols, gs, row_begin, row_end);
        return;
    }
    /* Every panel the range touches, whole; only the range's rows stored
     * (the products' tasks start and end on panels). */
    const unsigned char *panels = packed;
    for (int pn = row_begin / PANEL_ROWS; pn * PANEL_ROWS < row_end; pn++) {
        const int row0 = pn * PANEL_ROWS, lo = row_begin > row0 ? row_begin - row0 : 0,
                  hi = row_end - row0 < PANEL_ROWS ? row_end - row0 : PANEL_ROWS;
        const __mmask16 keep = (__mmask16)(((1u << hi) - 1u) & ~((1u << lo) - 1u));
        const unsigned char *panel = panels + (size_t)pn * l.panel_bytes;
        for (int i0 = 0; i0 < nb; i0 += PANEL_INPUTS) {
            const int ni = nb - i0 < PANEL_INPUTS ? nb - i0 : PANEL_INPUTS;
            const int8_t *x = xq + (size_t)i0 * (size_t)cols;
            const float *s = xs + (size_t)i0 * (size_t)l.groups;
            const int32_t *sums = x_sums + (size_t)i0 * (size_t)l.groups;
            __m512 val[PANEL_INPUTS];
            /* The tile's width a constant in each call, so that the
             * accumulators stay in registers. */
            switch (ni) {
            case 8: panel_inputs(val, panel, &l, x, s, sums, cols, gs, 8); break;
            case 7: panel_inputs(val, panel, &l, x, s, sums, cols, gs, 7); break;
            case 6: panel_inputs(val, panel, &l, x, s, sums, cols, gs, 6); break;
            case 5: panel_inputs(val, panel, &l, x, s, sums, cols, gs, 5); break;
            case 4: panel_inputs(val, panel, &l, x, s, sums, cols, gs, 4); break;
            case 3: panel_inputs(val, panel, &l, x, s, sums, cols, gs, 3); break;
            case 2: panel_inputs(val, panel, &l, x, s, sums, cols, gs, 2); break;
            default: panel_inputs(val, panel, &l, x, s, sums, cols, gs, 1); break;
            }
            for (int i = 0; i < ni; i++)
                _mm512_mask_storeu_ps(out + (size_t)(i0 + i) * (size_t)out_stride + (size_t)row0, keep, val[i]);
        }
    }
}

#else

/* ISO C forbids an empty translation unit. */
typedef int l2_ops_avx512_vnni_panels_unused;

#endif
