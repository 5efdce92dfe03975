/* runq.c's int8 matrices (Q8_0: groups of gs values with an fp32 scale) as
 * panels of 16 rows, made once when a model is opened (ops_q8_panels.c) and
 * read by the x86 levels' panel products (ops_x86_q8_panels.h): each group
 * of a panel is gs / 4 runs of 64 bytes, run k holding bytes 4k..4k+3 of
 * the 16 rows side by side (a row a 32-bit lane), stored as w ^ 0x80 (w +
 * 128 as an unsigned byte, the unsigned operand of vpdpbusd) or, for the
 * AVX2 dot step, as w, followed by the 16 rows' scales of the group. A
 * 512-bit vector holds a run; a 256-bit level reads it as two halves of 8
 * rows. The 256-bit levels keep the stripes for one input (gemv_q8_stripes):
 * their copy holds the stripe-ordered scales first, the panels at
 * l2_q8_panels_offset. */
#ifndef LLAMA2_OPS_Q8_PANELS_H
#define LLAMA2_OPS_Q8_PANELS_H

#include <stddef.h>

#define L2_Q8_PANEL_ROWS 16

/* Where the parts of a repacked matrix lie: group_bytes a group of a panel
 * (gs * 16 weights, then 16 scales), panel_bytes a panel, total all. No
 * panels (all zero) where gs is not a multiple of 4: the products then read
 * the matrix as it is. */
typedef struct l2_q8_panel_layout {
    size_t group_bytes, panel_bytes, total;
    int n_panels, groups;
} l2_q8_panel_layout;

static inline l2_q8_panel_layout l2_q8_panel_layout_of(int rows, int cols, int gs) {
    l2_q8_panel_layout l = {0, 0, 0, 0, 0};
    if (gs % 4 != 0) return l;
    l.groups = cols / gs;
    l.n_panels = (rows + L2_Q8_PANEL_ROWS - 1) / L2_Q8_PANEL_ROWS;
    l.group_bytes = (size_t)gs * L2_Q8_PANEL_ROWS + L2_Q8_PANEL_ROWS * sizeof(float);
    l.panel_bytes = (size_t)l.groups * l.group_bytes;
    l.total = (size_t)l.n_panels * l.panel_bytes;
    return l;
}

/* Where the panels start in a copy that holds the stripe-ordered scales
 * first (64-byte aligned). */
size_t l2_q8_panels_offset(int rows, int cols, int gs);

#endif
