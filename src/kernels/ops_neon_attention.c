/*
 * The NEON attention of the neon exact table: the reference's arithmetic,
 * query by query, with a vectorised values sum that gives l2_values_ref's
 * bits (this file is compiled with -ffp-contract=off, so nothing is fused).
 * The fast table uses the reference's attention (one query at a time).
 */
#if defined(__aarch64__)

#include <arm_neon.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ops.h"
#include "ops_isa.h"


/* values: columns in chunks of up to 64 (16 vectors), held in registers
 * across every position, so that out is read and written once; each
 * element's sum is the reference's (multiply, then add, in t order). */
static inline void values_cols_neon(float *out, const float *att, const float *v, size_t stride, int n_keys, int nv) {
    float32x4_t acc[16];
    for (int j = 0; j < nv; j++) acc[j] = vld1q_f32(out + 4 * j);
    for (int t = 0; t < n_keys; t++) {
        const float *vt = v + (size_t)t * stride;
        const float32x4_t a = vdupq_n_f32(att[t]);
        for (int j = 0; j < nv; j++) acc[j] = vaddq_f32(acc[j], vmulq_f32(a, vld1q_f32(vt + 4 * j)));
    }
    for (int j = 0; j < nv; j++) vst1q_f32(out + 4 * j, acc[j]);
}

void l2_values_neon(float *out, const float *att, const float *v, int kv_stride, int n_keys, int hs) {
    const size_t stride = (size_t)kv_stride;
    int i = 0;
    for (; i + 64 <= hs; i += 64) values_cols_neon(out + i, att, v + i, stride, n_keys, 16);
    if (i + 4 <= hs) {
        const int nv = (hs - i) / 4;
        values_cols_neon(out + i, att, v + i, stride, n_keys, nv);
        i += 4 * nv;
    }
    for (; i < hs; i++) {
        float sum = out[i];
        for (int t = 0; t < n_keys; t++) sum += att[t] * v[(size_t)t * stride + (size_t)i];
        out[i] = sum;
    }
}

/* --------------------------------------------------------- attention */

/* The exact table's attention: the reference's arithmetic, query by query,
 * with the vectorised (exact) values sum. */
void l2_attention_exact_neon(float *const *out, const float *const *q, const int *n_keys, int nq, const float *k,
                             const float *v, int kv_stride, int hs, float *scratch) {
    l2_attention_of_parts(out, q, n_keys, nq, k, v, kv_stride, hs, scratch, l2_scores_ref, l2_values_neon);
}

#else

/* ISO C forbids an empty translation unit. */
typedef int l2_ops_neon_attention_unused;

#endif
