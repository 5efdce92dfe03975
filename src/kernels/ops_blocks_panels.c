/*
 * Q4_0 matrices as panels of 16 rows (ops_blocks.h): the packing, made
 * once when a model is opened, and the reference's panel kernel, which
 * reads a row back out of its panel and takes the reference's dot.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ops_blocks.h"

#define PANEL_BLOCK_BYTES (L2_PANEL_ROWS * L2_BLOCK / 2) /* 256: the nibbles of 16 rows' block */
#define PANEL_SCALE_BYTES (L2_PANEL_ROWS * 2)           /* 32: their fp16 scales */

size_t l2_q4_0_panel_bytes(int n_blocks) {
    const size_t bytes = (size_t)n_blocks * (PANEL_BLOCK_BYTES + PANEL_SCALE_BYTES);
    return (bytes + 63) & ~(size_t)63;
}

size_t l2_q4_0_panels_pack(void *dst, const l2_block_q4_0 *w, int rows, int n_blocks) {
    const size_t n_panels = ((size_t)rows + L2_PANEL_ROWS - 1) / L2_PANEL_ROWS, panel = l2_q4_0_panel_bytes(n_blocks);
    if (!dst) return n_panels * panel;
    memset(dst, 0, n_panels * panel);
    for (size_t p = 0; p < n_panels; p++) {
        uint8_t *nibbles = (uint8_t *)dst + p * panel, *scales = nibbles + (size_t)n_blocks * PANEL_BLOCK_BYTES;
        for (int r = 0; r < L2_PANEL_ROWS && p * L2_PANEL_ROWS + (size_t)r < (size_t)rows; r++) {
            const l2_block_q4_0 *row = w + (p * L2_PANEL_ROWS + (size_t)r) * (size_t)n_blocks;
            for (int b = 0; b < n_blocks; b++) {
                for (int k = 0; k < 4; k++)
                    memcpy(nibbles + (size_t)b * PANEL_BLOCK_BYTES + (size_t)(k * 64 + r * 4), row[b].qs + 4 * k, 4);
                memcpy(scales + (size_t)b * PANEL_SCALE_BYTES + (size_t)r * 2, &row[b].d, 2);
            }
        }
    }
    return n_panels * panel;
}

void l2_block_q8_0_summarize(l2_block_q8_0_summary *s, const l2_block_q8_0 *x, int n) {
    for (int b = 0; b < n; b++) {
        int32_t sum = 0;
        for (int j = 0; j < L2_BLOCK; j++) sum += x[b].qs[j];
        s[b].d = l2_block_scale(x[b].d);
        s[b].sum = sum;
    }
}

void l2_q4_0_panels_ref(float *out, size_t out_stride, const void *panels, int rows, int panel_begin, int panel_end,
                        const l2_block_q8_0 *x, const l2_block_q8_0_summary *xs, size_t x_stride, int n_inputs,
                        int n_blocks) {
    (void)xs;
    const size_t panel = l2_q4_0_panel_bytes(n_blocks);
    l2_block_q4_0 row[64];
    for (int p = panel_begin; p < panel_end; p++) {
        const uint8_t *nibbles = (const uint8_t *)panels + (size_t)p * panel,
                      *scales = nibbles + (size_t)n_blocks * PANEL_BLOCK_BYTES;
        for (int r = 0; r < L2_PANEL_ROWS && p * L2_PANEL_ROWS + r < rows; r++) {
            const int row_index = p * L2_PANEL_ROWS + r;
            for (int i = 0; i < n_inputs; i++) out[(size_t)i * out_stride + (size_t)row_index] = 0.0f;
            /* The row back in ggml's blocks, 64 at a time; the partial
             * sums carried over in out (a float store and load are exact),
             * so the additions keep the reference's block order. */
            for (int b0 = 0; b0 < n_blocks; b0 += 64) {
                const int n = n_blocks - b0 < 64 ? n_blocks - b0 : 64;
                for (int b = 0; b < n; b++) {
                    for (int k = 0; k < 4; k++)
                        memcpy(row[b].qs + 4 * k, nibbles + (size_t)(b0 + b) * PANEL_BLOCK_BYTES + (size_t)(k * 64 + r * 4), 4);
                    memcpy(&row[b].d, scales + (size_t)(b0 + b) * PANEL_SCALE_BYTES + (size_t)r * 2, 2);
                }
                for (int i = 0; i < n_inputs; i++) {
                    float *o = &out[(size_t)i * out_stride + (size_t)row_index];
                    *o = l2_q4_0_dot_from(*o, row, x + (size_t)i * x_stride + (size_t)b0, n);
                }
            }
        }
    }
}
