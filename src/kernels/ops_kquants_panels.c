/*
 * Q4_K matrices as panels of 16 rows (ops_kquants.h): the packing, made
 * once when a model is opened, the panels' float order on ggml's blocks
 * (l2_q4_K_dot_blockwise), and the reference's panel kernel, which reads
 * a row's block back out of its panel and takes the same step.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "model/float16.h"
#include "ops_blocks.h"
#include "ops_kquants.h"

#define SCALES_AT 2048
#define MINS_AT 2176
#define D_AT 2304
#define DMIN_AT 2336

/* One Q4_K block unpacked: its 128 stored bytes, 8 scales and 8 mins, and
 * its fp16 d and dmin. */
typedef struct q4_K_unpacked {
    uint8_t qs[L2_SUPER_BLOCK / 2];
    uint8_t scales[8], mins[8];
    uint16_t d, dmin;
} q4_K_unpacked;

static void unpack_block(q4_K_unpacked *u, const l2_block_q4_K *w) {
    memcpy(u->qs, w->qs, sizeof u->qs);
    for (int j = 0; j < 8; j++) {
        int scale, min;
        l2_q4_K_scale_min(w->scales, j, &scale, &min);
        u->scales[j] = (uint8_t)scale;
        u->mins[j] = (uint8_t)min;
    }
    u->d = w->d;
    u->dmin = w->dmin;
}

/* The panels' step for one block: sum plus this block's terms. */
static float block_step(float sum, const q4_K_unpacked *u, const l2_block_q8_K *x) {
    int32_t isum = 0, mins = 0;
    for (int j = 0; j < 8; j++) {
        int32_t dot = 0;
        for (int l = 0; l < 32; l++) {
            const uint8_t byte = u->qs[32 * (j / 2) + l];
            dot += (j % 2 ? byte >> 4 : byte & 0x0F) * x->qs[32 * j + l];
        }
        isum += u->scales[j] * dot;
        mins += u->mins[j] * (x->bsums[2 * j] + x->bsums[2 * j + 1]);
    }
    const float d = l2_f16_to_f32(u->d) * x->d, dmin = l2_f16_to_f32(u->dmin) * x->d;
    sum = sum + (float)isum * d;
    return sum - (float)mins * dmin;
}

float l2_q4_K_dot_blockwise(const l2_block_q4_K *w, const l2_block_q8_K *x, int n_blocks) {
    float sum = 0.0f;
    for (int b = 0; b < n_blocks; b++) {
        q4_K_unpacked u;
        unpack_block(&u, &w[b]);
        sum = block_step(sum, &u, &x[b]);
    }
    return sum;
}

size_t l2_q4_K_panel_bytes(int n_blocks) { return (size_t)n_blocks * L2_Q4_K_PANEL_BLOCK; }

size_t l2_q4_K_panels_pack(void *dst, const l2_block_q4_K *w, int rows, int n_blocks) {
    const size_t n_panels = ((size_t)rows + L2_PANEL_ROWS - 1) / L2_PANEL_ROWS, panel = l2_q4_K_panel_bytes(n_blocks);
    if (!dst) return n_panels * panel;
    memset(dst, 0, n_panels * panel);
    for (size_t p = 0; p < n_panels; p++)
        for (int r = 0; r < L2_PANEL_ROWS && p * L2_PANEL_ROWS + (size_t)r < (size_t)rows; r++) {
            const l2_block_q4_K *row = w + (p * L2_PANEL_ROWS + (size_t)r) * (size_t)n_blocks;
            for (int b = 0; b < n_blocks; b++) {
                uint8_t *v = (uint8_t *)dst + p * panel + (size_t)b * L2_Q4_K_PANEL_BLOCK;
                q4_K_unpacked u;
                unpack_block(&u, &row[b]);
                for (int c = 0; c < 4; c++)
                    for (int k = 0; k < 8; k++) memcpy(v + 512 * c + 64 * k + 4 * r, u.qs + 32 * c + 4 * k, 4);
                for (int j = 0; j < 8; j++) {
                    v[SCALES_AT + 16 * j + r] = u.scales[j];
                    v[MINS_AT + 32 * (j / 2) + 2 * r + j % 2] = u.mins[j];
                }
                memcpy(v + D_AT + 2 * r, &u.d, 2);
                memcpy(v + DMIN_AT + 2 * r, &u.dmin, 2);
            }
        }
    return n_panels * panel;
}

void l2_q4_K_panels_ref(float *out, size_t out_stride, const void *panels, int rows, int panel_begin, int panel_end,
                        const l2_block_q8_K *x, size_t x_stride, int n_inputs, int n_blocks) {
    const size_t panel = l2_q4_K_panel_bytes(n_blocks);
    for (int p = panel_begin; p < panel_end; p++)
        for (int r = 0; r < L2_PANEL_ROWS && p * L2_PANEL_ROWS + r < rows; r++) {
            const size_t row_index = (size_t)p * L2_PANEL_ROWS + (size_t)r;
            for (int i = 0; i < n_inputs; i++) out[(size_t)i * out_stride + row_index] = 0.0f;
            for (int b = 0; b < n_blocks; b++) {
                const uint8_t *v = (const uint8_t *)panels + (size_t)p * panel + (size_t)b * L2_Q4_K_PANEL_BLOCK;
                q4_K_unpacked u;
                for (int c = 0; c < 4; c++)
                    for (int k = 0; k < 8; k++) memcpy(u.qs + 32 * c + 4 * k, v + 512 * c + 64 * k + 4 * r, 4);
                for (int j = 0; j < 8; j++) {
                    u.scales[j] = v[SCALES_AT + 16 * j + r];
                    u.mins[j] = v[MINS_AT + 32 * (j / 2) + 2 * r + j % 2];
                }
                memcpy(&u.d, v + D_AT + 2 * r, 2);
                memcpy(&u.dmin, v + DMIN_AT + 2 * r, 2);
                /* The sums carried over in out (a float store and load
                 * are exact). */
                for (int i = 0; i < n_inputs; i++) {
                    float *o = &out[(size_t)i * out_stride + row_index];
                    *o = block_step(*o, &u, x + (size_t)i * x_stride + (size_t)b);
                }
            }
        }
}
