/* The scalar reference of the block kernels (ops_blocks.h), and the
 * choice of a table. */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "model/float16.h"
#include "ops.h"
#include "ops_blocks.h"

float l2_block_scale(uint16_t h) { return l2_f16_to_f32(h); }

static void quantize_q8_0_ref(l2_block_q8_0 *y, const float *x, int n) {
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

static float dot_q4_0_ref(const l2_block_q4_0 *w, const l2_block_q8_0 *x, int n_blocks) {
    float sum = 0.0f;
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

static void dot4_q8_0_ref(float out[4], const l2_block_q8_0 *w, size_t row_blocks, const l2_block_q8_0 *x,
                          int n_blocks) {
    for (size_t r = 0; r < 4; r++) out[r] = dot_q8_0_ref(w + r * row_blocks, x, n_blocks);
}

static void dot4_q4_0_ref(float out[4], const l2_block_q4_0 *w, size_t row_blocks, const l2_block_q8_0 *x,
                          int n_blocks) {
    for (size_t r = 0; r < 4; r++) out[r] = dot_q4_0_ref(w + r * row_blocks, x, n_blocks);
}

static void dot4x2_q8_0_ref(float out[8], const l2_block_q8_0 *w, size_t row_blocks, const l2_block_q8_0 *x,
                            size_t x_stride, int n_blocks) {
    for (size_t i = 0; i < 2; i++) dot4_q8_0_ref(out + 4 * i, w, row_blocks, x + i * x_stride, n_blocks);
}

static void dot4x2_q4_0_ref(float out[8], const l2_block_q4_0 *w, size_t row_blocks, const l2_block_q8_0 *x,
                            size_t x_stride, int n_blocks) {
    for (size_t i = 0; i < 2; i++) dot4_q4_0_ref(out + 4 * i, w, row_blocks, x + i * x_stride, n_blocks);
}

const l2_block_kernels *l2_block_kernels_reference(void) {
    static const l2_block_kernels table = {"scalar",        quantize_q8_0_ref, dot_q8_0_ref,   dot_q4_0_ref,
                                           dot4_q8_0_ref,   dot4_q4_0_ref,     dot4x2_q8_0_ref, dot4x2_q4_0_ref};
    return &table;
}

const l2_block_kernels *l2_block_kernels_for(const char *kernels_name) {
    const int x86 = kernels_name && (strncmp(kernels_name, "avx", 3) == 0 || strncmp(kernels_name, "amx", 3) == 0);
    const l2_block_kernels *avx2 = x86 ? l2_block_kernels_avx2() : NULL;
    return avx2 ? avx2 : l2_block_kernels_reference();
}
