/* The scalar reference of the K-quant kernels (ops_kquants.h), and the
 * choice of a table. The dots follow ggml's generic ones: each block's
 * integer products, times their sub-block's scale, summed exactly into
 * eight int32 lanes (value i into lane i % 8); each lane times the block's
 * scale product added into its float lane; Q4_K's min term, an exact
 * integer sum of bsums times mins, subtracted from a float sum block by
 * block; the eight lanes added to it in order at the end. */
#include <math.h>
#include <string.h>

#include "model/float16.h"
#include "ops_kquants.h"

int l2_nearest_int(float v) {
    /* 1.5 * 2^23 added: the float's low mantissa bits are then v rounded
     * to the nearest integer (ties to even), offset by 2^22. */
    const float shifted = v + 12582912.0f;
    int32_t bits;
    memcpy(&bits, &shifted, sizeof bits);
    return (bits & 0x007FFFFF) - 0x00400000;
}

void l2_quantize_q8_K_ref(l2_block_q8_K *y, const float *x, int n) {
    for (int b = 0; b < n / L2_SUPER_BLOCK; b++, x += L2_SUPER_BLOCK) {
        float max = 0.0f, amax = 0.0f;
        for (int j = 0; j < L2_SUPER_BLOCK; j++)
            if (fabsf(x[j]) > amax) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        if (amax == 0.0f) {
            memset(&y[b], 0, sizeof y[b]);
            continue;
        }
        const float iscale = -127.0f / max;
        for (int j = 0; j < L2_SUPER_BLOCK; j++) {
            const int v = l2_nearest_int(iscale * x[j]);
            y[b].qs[j] = (int8_t)(v < 127 ? v : 127);
        }
        for (int g = 0; g < L2_SUPER_BLOCK / 16; g++) {
            int sum = 0;
            for (int j = 0; j < 16; j++) sum += y[b].qs[16 * g + j];
            y[b].bsums[g] = (int16_t)sum;
        }
        y[b].d = 1.0f / iscale;
    }
}

/* Value i of a Q6_K block, less 32: -32 to 31. */
static int q6_K_value(const l2_block_q6_K *w, int i) {
    const int h = i / 128, k = (i % 128) / 32, l = i % 32;
    const uint8_t low = w->ql[64 * h + 32 * (k % 2) + l];
    const int q = (k < 2 ? low & 0x0F : low >> 4) | ((w->qh[32 * h + l] >> (2 * k)) & 3) << 4;
    return q - 32;
}

static float dot_q4_K_ref(const l2_block_q4_K *w, const l2_block_q8_K *x, int n_blocks) {
    float lanes[8] = {0}, sum = 0.0f;
    for (int b = 0; b < n_blocks; b++)
        l2_q4_K_block_ref(lanes, &sum, w[b].d, w[b].dmin, w[b].scales, w[b].qs, NULL, &x[b]);
    for (int l = 0; l < 8; l++) sum += lanes[l];
    return sum;
}

static float dot_q6_K_ref(const l2_block_q6_K *w, const l2_block_q8_K *x, int n_blocks) {
    float lanes[8] = {0}, sum = 0.0f;
    for (int b = 0; b < n_blocks; b++) {
        int32_t isum[8] = {0};
        for (int i = 0; i < L2_SUPER_BLOCK; i++) isum[i % 8] += w[b].scales[i / 16] * (q6_K_value(&w[b], i) * x[b].qs[i]);
        const float d = l2_f16_to_f32(w[b].d) * x[b].d;
        for (int l = 0; l < 8; l++) lanes[l] += d * (float)isum[l];
    }
    for (int l = 0; l < 8; l++) sum += lanes[l];
    return sum;
}

static void dot4_q4_K_ref(float out[4], const l2_block_q4_K *w, size_t row_blocks, const l2_block_q8_K *x,
                          int n_blocks) {
    for (size_t r = 0; r < 4; r++) out[r] = dot_q4_K_ref(w + r * row_blocks, x, n_blocks);
}

static void dot4_q6_K_ref(float out[4], const l2_block_q6_K *w, size_t row_blocks, const l2_block_q8_K *x,
                          int n_blocks) {
    for (size_t r = 0; r < 4; r++) out[r] = dot_q6_K_ref(w + r * row_blocks, x, n_blocks);
}

static void dot4x2_q4_K_ref(float out[8], const l2_block_q4_K *w, size_t row_blocks, const l2_block_q8_K *x,
                            size_t x_stride, int n_blocks) {
    for (size_t i = 0; i < 2; i++) dot4_q4_K_ref(out + 4 * i, w, row_blocks, x + i * x_stride, n_blocks);
}

static void dot4x2_q6_K_ref(float out[8], const l2_block_q6_K *w, size_t row_blocks, const l2_block_q8_K *x,
                            size_t x_stride, int n_blocks) {
    for (size_t i = 0; i < 2; i++) dot4_q6_K_ref(out + 4 * i, w, row_blocks, x + i * x_stride, n_blocks);
}

/* The reference's row kernels, under a level's name and with its Q4_K and
 * Q6_K panel kernels. */
#define REFERENCE_ROWS_TABLE(level, q4_K, q6_K)                                                                        \
    {.name = level,                                                                                                    \
     .quantize_q8_K = l2_quantize_q8_K_ref,                                                                            \
     .dot_q4_K = dot_q4_K_ref,                                                                                         \
     .dot_q6_K = dot_q6_K_ref,                                                                                         \
     .dot4_q4_K = dot4_q4_K_ref,                                                                                       \
     .dot4_q6_K = dot4_q6_K_ref,                                                                                       \
     .dot4x2_q4_K = dot4x2_q4_K_ref,                                                                                   \
     .dot4x2_q6_K = dot4x2_q6_K_ref,                                                                                   \
     .q4_K_panels = q4_K,                                                                                              \
     .q6_K_panels = q6_K,                                                                                              \
     .dot_q5_K = l2_dot_q5_K_ref,                                                                                      \
     .dot4_q5_K = l2_dot4_q5_K_ref,                                                                                    \
     .dot4x2_q5_K = l2_dot4x2_q5_K_ref}

const l2_kquant_kernels *l2_kquant_kernels_reference(void) {
    static const l2_kquant_kernels table = REFERENCE_ROWS_TABLE("scalar", l2_q4_K_panels_ref, l2_q6_K_panels_ref);
    return &table;
}

const l2_kquant_kernels *l2_kquant_kernels_neon(void) {
#if defined(__aarch64__)
    static const l2_kquant_kernels table = REFERENCE_ROWS_TABLE("neon", l2_q4_K_panels_neon, l2_q6_K_panels_neon);
    return l2_kquant_panels_neon() ? &table : NULL;
#else
    return NULL;
#endif
}

const l2_kquant_kernels *l2_kquant_kernels_for(const char *kernels_name) {
    if (kernels_name && strncmp(kernels_name, "neon", 4) == 0 && l2_kquant_kernels_neon())
        return l2_kquant_kernels_neon();
    const int x86 = kernels_name && (strncmp(kernels_name, "avx", 3) == 0 || strncmp(kernels_name, "amx", 3) == 0);
    /* The levels with AVX512-VNNI: "avx512-vnni" and "amx" (fast or exact). */
    const int vnni512 = kernels_name && (strncmp(kernels_name, "avx512-vnni", 11) == 0 || strncmp(kernels_name, "amx", 3) == 0);
    const l2_kquant_kernels *table = vnni512 ? l2_kquant_kernels_avx512_vnni() : NULL;
    if (!table && x86) table = l2_kquant_kernels_avx2();
    return table ? table : l2_kquant_kernels_reference();
}
