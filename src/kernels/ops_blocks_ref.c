/* The scalar reference of the block kernels (ops_blocks.h), and the
 * choice of a table. */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "model/float16.h"
#include "ops.h"
#include "ops_blocks.h"

float l2_block_scale(uint16_t h) { return l2_f16_to_f32(h); }

void l2_quantize_q8_0_ref(l2_block_q8_0 *y, const float *x, int n) {
    for (int b = 0; b < n / L2_BLOCK; b++) {
        const float *v = x + (size_t)b * L2_BLOCK;
        float amax = 0.0f;
        for (int j = 0; j < L2_BLOCK; j++) amax = fabsf(v[j]) > amax ? fabsf(v[j]) : amax;
        const float d = amax / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        if (!isfinite(id)) id = 0.0f;
        y[b].d = l2_f32_to_f16(d);
        /* roundf, a NaN as 0 (l2_q8_round). */
        for (int j = 0; j < L2_BLOCK; j++) y[b].qs[j] = l2_q8_round(v[j] * id);
    }
}

static float dot_q8_0_ref(const l2_block_q8_0 *w, const l2_block_q8_0 *x, int n_blocks) {
    float sum = 0.0f;
    for (int b = 0; b < n_blocks; b++) {
        int isum = 0;
        for (int j = 0; j < L2_BLOCK; j++) isum += (int)w[b].qs[j] * (int)x[b].qs[j];
        sum += (float)isum * (l2_block_scale(w[b].d) * l2_block_scale(x[b].d));
    }
    return sum;
}

float l2_q4_0_dot_from(float sum, const l2_block_q4_0 *w, const l2_block_q8_0 *x, int n_blocks) {
    for (int b = 0; b < n_blocks; b++) {
        int isum = 0;
        for (int j = 0; j < L2_BLOCK / 2; j++) {
            isum += ((int)(w[b].qs[j] & 0x0F) - 8) * (int)x[b].qs[j];
            isum += ((int)(w[b].qs[j] >> 4) - 8) * (int)x[b].qs[j + L2_BLOCK / 2];
        }
        sum += (float)isum * (l2_block_scale(w[b].d) * l2_block_scale(x[b].d));
    }
    return sum;
}

static float dot_q4_0_ref(const l2_block_q4_0 *w, const l2_block_q8_0 *x, int n_blocks) {
    return l2_q4_0_dot_from(0.0f, w, x, n_blocks);
}

static void dot4_q8_0_ref(float out[4], const l2_block_q8_0 *w, size_t row_blocks, const l2_block_q8_0 *x,
                          int n_blocks) {
    for (size_t r = 0; r < 4; r++) out[r] = dot_q8_0_ref(w + r * row_blocks, x, n_blocks);
}

static void dot4x2_q8_0_ref(float out[8], const l2_block_q8_0 *w, size_t row_blocks, const l2_block_q8_0 *x,
                            size_t x_stride, int n_blocks) {
    for (size_t i = 0; i < 2; i++) dot4_q8_0_ref(out + 4 * i, w, row_blocks, x + i * x_stride, n_blocks);
}

const l2_block_kernels *l2_block_kernels_reference(void) {
    static const l2_block_kernels table = {.name = "scalar",
                                           .quantize_q8_0 = l2_quantize_q8_0_ref,
                                           .dot_q8_0 = dot_q8_0_ref,
                                           .dot_q4_0 = dot_q4_0_ref,
                                           .dot4_q8_0 = dot4_q8_0_ref,
                                           .dot4x2_q8_0 = dot4x2_q8_0_ref,
                                           .q4_0_panels = l2_q4_0_panels_ref};
    return &table;
}

const l2_block_kernels *l2_block_kernels_for(const char *kernels_name) {
    const int x86 = kernels_name && (strncmp(kernels_name, "avx", 3) == 0 || strncmp(kernels_name, "amx", 3) == 0);
    /* The levels with AVX512-VNNI: "avx512-vnni" and "amx" (fast or exact). */
    const int vnni512 = kernels_name && (strncmp(kernels_name, "avx512-vnni", 11) == 0 || strncmp(kernels_name, "amx", 3) == 0);
    const l2_block_kernels *table = vnni512 ? l2_block_kernels_avx512_vnni() : NULL;
    if (!table && x86) table = l2_block_kernels_avx2();
    /* "neon" and "neon-exact": every entry there is the reference's bits. */
    if (!table && kernels_name && strncmp(kernels_name, "neon", 4) == 0) table = l2_block_kernels_neon();
    return table ? table : l2_block_kernels_reference();
}
