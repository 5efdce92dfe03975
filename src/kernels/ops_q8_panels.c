/* The packing of runq.c's int8 matrices into panels of 16 rows
 * (ops_q8_panels.h says the layout), the repack_q8 of the x86 tables whose
 * products read panels (ops_x86_q8_panels.h): the panels alone, or after
 * the stripe-ordered scales for the tables that keep gemv_q8_stripes for
 * one input. Plain C: it runs once, when a model is opened. */
#include <stdint.h>
#include <string.h>

#include "ops_isa.h"
#include "ops_q8_panels.h"

/* The x86 tables' entries only (ops_isa.h declares them there). */
#if defined(__x86_64__) || defined(__i386__)

/* The panels, each weight byte stored as w ^ flip. */
static size_t pack_panels(void *dst, const int8_t *w, const float *ws, int rows, int cols, int gs, unsigned flip) {
    const l2_q8_panel_layout l = l2_q8_panel_layout_of(rows, cols, gs);
    if (!dst) return l.total;
    unsigned char *p = dst;
    enum { R = L2_Q8_PANEL_ROWS };
    /* The rows past the matrix's last (whose lanes are computed but never
     * stored) zero, not left to chance. */
    if (rows % R != 0) memset(p + (size_t)(l.n_panels - 1) * l.panel_bytes, 0, l.panel_bytes);
    for (int pn = 0; pn < l.n_panels; pn++)
        for (int r = 0; r < R && pn * R + r < rows; r++) {
            const size_t row = (size_t)(pn * R + r);
            for (int g = 0; g < l.groups; g++) {
                unsigned char *group = p + (size_t)pn * l.panel_bytes + (size_t)g * l.group_bytes;
                const int8_t *wg = w + row * (size_t)cols + (size_t)g * (size_t)gs;
                for (int k = 0; k < gs / 4; k++)
                    for (int j = 0; j < 4; j++)
                        group[(size_t)k * 4 * R + (size_t)r * 4 + (size_t)j] =
                            (unsigned char)((unsigned char)wg[4 * k + j] ^ flip);
                float *scales = (float *)(void *)(group + (size_t)gs * R);
                scales[r] = ws[row * (size_t)l.groups + (size_t)g];
            }
        }
    return l.total;
}

size_t l2_repack_q8_panels(void *dst, const int8_t *w, const float *ws, int rows, int cols, int gs) {
    return pack_panels(dst, w, ws, rows, cols, gs, 0x80u);
}

size_t l2_q8_panels_offset(int rows, int cols, int gs) {
    return (l2_repack_q8_stripe_scales(NULL, NULL, NULL, rows, cols, gs) + 63) & ~(size_t)63;
}

/* The stripe-ordered scales, then at l2_q8_panels_offset the panels. */
static size_t pack_stripes_panels(void *dst, const int8_t *w, const float *ws, int rows, int cols, int gs,
                                  unsigned flip) {
    const size_t at = l2_q8_panels_offset(rows, cols, gs);
    const size_t panels = pack_panels(NULL, w, ws, rows, cols, gs, flip);
    if (!dst) return panels ? at + panels : l2_repack_q8_stripe_scales(NULL, w, ws, rows, cols, gs);
    const size_t scales = l2_repack_q8_stripe_scales(dst, w, ws, rows, cols, gs);
    if (!panels) return scales;
    memset((unsigned char *)dst + scales, 0, at - scales);
    return at + pack_panels((unsigned char *)dst + at, w, ws, rows, cols, gs, flip);
}

size_t l2_repack_q8_stripes_panels(void *dst, const int8_t *w, const float *ws, int rows, int cols, int gs) {
    return pack_stripes_panels(dst, w, ws, rows, cols, gs, 0x80u);
}

size_t l2_repack_q8_stripes_signed_panels(void *dst, const int8_t *w, const float *ws, int rows, int cols, int gs) {
    return pack_stripes_panels(dst, w, ws, rows, cols, gs, 0);
}

#else

/* ISO C forbids an empty translation unit. */
typedef int l2_ops_q8_panels_unused;

#endif
