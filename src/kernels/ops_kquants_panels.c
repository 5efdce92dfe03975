/*
 * Q4_K and Q6_K matrices as panels of 16 rows (ops_kquants.h): the packing, made
 * once when a model is opened, the panels' float order on ggml's blocks
 * (l2_q4_K_dot_blockwise, l2_q6_K_dot_blockwise), and the reference's
 * panel kernels, which reads
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

/* Q6_K: the panels' step for one block, on ggml's block. */
static float q6_K_block_step(float sum, const l2_block_q6_K *w, const l2_block_q8_K *x) {
    int32_t isum = 0;
    for (int s = 0; s < 16; s++) {
        int32_t dot = 0;
        for (int i = 16 * s; i < 16 * s + 16; i++) {
            const int h = i / 128, k = (i % 128) / 32, l = i % 32;
            const uint8_t low = w->ql[64 * h + 32 * (k % 2) + l];
            const int q = (k < 2 ? low & 0x0F : low >> 4) | ((w->qh[32 * h + l] >> (2 * k)) & 3) << 4;
            dot += q * x->qs[i];
        }
        isum += w->scales[s] * (dot - 32 * x->bsums[s]);
    }
    return sum + (float)isum * (l2_f16_to_f32(w->d) * x->d);
}

float l2_q6_K_dot_blockwise(const l2_block_q6_K *w, const l2_block_q8_K *x, int n_blocks) {
    float sum = 0.0f;
    for (int b = 0; b < n_blocks; b++) sum = q6_K_block_step(sum, &w[b], &x[b]);
    return sum;
}

size_t l2_q6_K_panel_bytes(int n_blocks) { return (size_t)n_blocks * L2_Q6_K_PANEL_BLOCK; }

#define Q6_QH_AT 2048
#define Q6_SCALES_AT 3072
#define Q6_D_AT 3328

/* Row r's block between a panel's bytes and ggml's (a block's bytes: ql
 * at 0, qh at 128, scales at 192, d at 208): each piece's offset in the
 * panel and in the block, copied from src to dst one way or the other. */
_Static_assert(offsetof(l2_block_q6_K, qh) == 128 && offsetof(l2_block_q6_K, scales) == 192 &&
                   offsetof(l2_block_q6_K, d) == 208,
               "q6_K_copy's offsets are ggml's block's");
static void q6_K_copy(uint8_t *dst, const uint8_t *src, int r, int to_panel) {
#define PIECE(panel_at, block_at, n)                                                                                   \
    memcpy(dst + (to_panel ? (panel_at) : (block_at)), src + (to_panel ? (block_at) : (panel_at)), n)
    for (int c = 0; c < 4; c++)
        for (int k = 0; k < 8; k++) PIECE(512 * c + 64 * k + 4 * r, 32 * c + 4 * k, 4);
    for (int h = 0; h < 2; h++)
        for (int k = 0; k < 8; k++) PIECE(Q6_QH_AT + 512 * h + 64 * k + 4 * r, 128 + 32 * h + 4 * k, 4);
    for (int s = 0; s < 16; s++) PIECE(Q6_SCALES_AT + 16 * s + r, 192 + s, 1);
    PIECE(Q6_D_AT + 2 * r, 208, 2);
#undef PIECE
}

size_t l2_q6_K_panels_pack(void *dst, const l2_block_q6_K *w, int rows, int n_blocks) {
    const size_t n_panels = ((size_t)rows + L2_PANEL_ROWS - 1) / L2_PANEL_ROWS, panel = l2_q6_K_panel_bytes(n_blocks);
    if (!dst) return n_panels * panel;
    memset(dst, 0, n_panels * panel);
    for (size_t p = 0; p < n_panels; p++)
        for (int r = 0; r < L2_PANEL_ROWS && p * L2_PANEL_ROWS + (size_t)r < (size_t)rows; r++)
            for (int b = 0; b < n_blocks; b++) {
                const l2_block_q6_K *block = &w[(p * L2_PANEL_ROWS + (size_t)r) * (size_t)n_blocks + (size_t)b];
                q6_K_copy((uint8_t *)dst + p * panel + (size_t)b * L2_Q6_K_PANEL_BLOCK, (const uint8_t *)block, r, 1);
            }
    return n_panels * panel;
}

void l2_q6_K_panels_ref(float *out, size_t out_stride, const void *panels, int rows, int panel_begin, int panel_end,
                        const l2_block_q8_K *x, size_t x_stride, int n_inputs, int n_blocks) {
    const size_t panel = l2_q6_K_panel_bytes(n_blocks);
    for (int p = panel_begin; p < panel_end; p++)
        for (int r = 0; r < L2_PANEL_ROWS && p * L2_PANEL_ROWS + r < rows; r++) {
            const size_t row_index = (size_t)p * L2_PANEL_ROWS + (size_t)r;
            for (int i = 0; i < n_inputs; i++) out[(size_t)i * out_stride + row_index] = 0.0f;
            for (int b = 0; b < n_blocks; b++) {
                l2_block_q6_K block;
                q6_K_copy((uint8_t *)&block,
                          (const uint8_t *)panels + (size_t)p * panel + (size_t)b * L2_Q6_K_PANEL_BLOCK, r, 0);
                for (int i = 0; i < n_inputs; i++) {
                    float *o = &out[(size_t)i * out_stride + row_index];
                    *o = q6_K_block_step(*o, &block, x + (size_t)i * x_stride + (size_t)b);
                }
            }
        }
}
