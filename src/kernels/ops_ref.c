/* The scalar reference kernels: llama2.c's run.c and runq.c arithmetic,
 * written plainly. They are the oracle every fast kernel is tested against.
 * This file is compiled with -ffp-contract=off so that no multiply-add is
 * fused: runq.c's int8 path must be reproduced bit for bit. */
#include <math.h>
#include <string.h>

#include "ops.h"
#include "platform/float_math.h"

static float dot_ref(const float *a, const float *b, int n) {
    float sum = 0.0f;
    for (int i = 0; i < n; i++) sum += a[i] * b[i];
    return sum;
}

void l2_rmsnorm_ref(float *out, const float *x, const float *weight, int n, float eps) {
    float ss = 0.0f;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    ss /= (float)n;
    ss += eps;
    ss = 1.0f / sqrtf(ss);
    for (int i = 0; i < n; i++) out[i] = weight[i] * (ss * x[i]);
}

void l2_softmax_ref(float *x, int n) {
    float max = x[0];
    for (int i = 1; i < n; i++)
        if (x[i] > max) max = x[i];
    float sum = 0.0f;
    for (int i = 0; i < n; i++) {
        x[i] = l2_expf(x[i] - max);
        sum += x[i];
    }
    for (int i = 0; i < n; i++) x[i] /= sum;
}

void l2_swiglu_ref(float *gate, const float *up, int n) {
    for (int i = 0; i < n; i++) {
        float v = gate[i];
        v *= 1.0f / (1.0f + l2_expf(-v));
        gate[i] = v * up[i];
    }
}

static void add_ref(float *y, const float *x, int n) {
    for (int i = 0; i < n; i++) y[i] += x[i];
}

void l2_matmul_f32_ref(float *out, int out_stride, const float *x, int nb, const float *w, int cols, int row_begin,
                       int row_end) {
    for (int b = 0; b < nb; b++)
        for (int r = row_begin; r < row_end; r++)
            out[(size_t)b * (size_t)out_stride + (size_t)r] =
                dot_ref(w + (size_t)r * (size_t)cols, x + (size_t)b * (size_t)cols, cols);
}

static void quantize_q8_ref(int8_t *q, float *scales, const float *x, int n, int gs) {
    const float q_max = 127.0f;
    for (int g = 0; g < n / gs; g++) {
        float wmax = 0.0f;
        for (int i = 0; i < gs; i++) {
            float v = fabsf(x[g * gs + i]);
            if (v > wmax) wmax = v;
        }
        float scale = wmax / q_max;
        scales[g] = scale;
        for (int i = 0; i < gs; i++) {
            /* An all-zero group has scale 0: its values are 0, not 0/0. */
            float v = scale != 0.0f ? x[g * gs + i] / scale : 0.0f;
            q[g * gs + i] = l2_q8_round(v);
        }
    }
}

/* One row: the integer dot of each group, scaled by the row's then the
 * input's scale, summed in group order (runq.c's matmul). */
static float q8_row_ref(const int8_t *xb, const float *xsb, const int8_t *wr, const float *wsr, int gs, int groups) {
    float val = 0.0f;
    for (int g = 0; g < groups; g++) {
        int32_t ival = 0;
        for (int k = 0; k < gs; k++) ival += (int32_t)xb[g * gs + k] * (int32_t)wr[g * gs + k];
        val += ((float)ival) * wsr[g] * xsb[g];
    }
    return val;
}

static void matmul_q8_ref(float *out, int out_stride, const int8_t *xq, const float *xs, int nb, const int8_t *w,
                          const float *ws, int cols, int gs, int row_begin, int row_end) {
    const int groups = cols / gs;
    for (int b = 0; b < nb; b++)
        for (int r = row_begin; r < row_end; r++)
            out[(size_t)b * (size_t)out_stride + (size_t)r] =
                q8_row_ref(xq + (size_t)b * (size_t)cols, xs + (size_t)b * (size_t)groups, w + (size_t)r * (size_t)cols,
                           ws + (size_t)r * (size_t)groups, gs, groups);
}

size_t l2_repack_q8_slot_scales(void *dst, const int8_t *w, const float *ws, int rows, int cols, int gs) {
    (void)w;
    const int slots = l2_q8_slots(rows), groups = cols / gs;
    if (dst)
        for (int i = 0; i < slots; i++)
            for (int j = 0; j < 8; j++)
                for (int g = 0; g < groups; g++)
                    ((float *)dst)[l2_q8_slot_scale(i, g, j, groups)] =
                        ws[((size_t)i + (size_t)j * (size_t)slots) * (size_t)groups + (size_t)g];
    return (size_t)slots * 8 * (size_t)groups * sizeof(float);
}

void l2_values_ref(float *out, const float *att, const float *v, int kv_stride, int n_keys, int hs) {
    for (int t = 0; t < n_keys; t++) {
        const float *vt = v + (size_t)t * (size_t)kv_stride;
        for (int i = 0; i < hs; i++) out[i] += att[t] * vt[i];
    }
}

/* llama2.c's attention loop, one query after the other. */
void l2_attention_ref(float *const *out, const float *const *q, const int *n_keys, int nq, const float *k,
                      const float *v, int kv_stride, int hs, float *scratch) {
    const float scale = sqrtf((float)hs);
    for (int i = 0; i < nq; i++) {
        const int n = n_keys[i];
        for (int t = 0; t < n; t++) scratch[t] = dot_ref(q[i], k + (size_t)t * (size_t)kv_stride, hs) / scale;
        l2_softmax_ref(scratch, n);
        memset(out[i], 0, (size_t)hs * sizeof(float));
        l2_values_ref(out[i], scratch, v, kv_stride, n, hs);
    }
}

void l2_scores_ref(float *att, const float *q, const float *k, int kv_stride, int n_keys, int hs) {
    const float scale = sqrtf((float)hs);
    for (int t = 0; t < n_keys; t++) att[t] = dot_ref(q, k + (size_t)t * (size_t)kv_stride, hs) / scale;
}

static const l2_kernels reference = {
    .name = "scalar",
    .rmsnorm = l2_rmsnorm_ref,
    .softmax = l2_softmax_ref,
    .swiglu = l2_swiglu_ref,
    .add = add_ref,
    .matmul_f32 = l2_matmul_f32_ref,
    .quantize_q8 = quantize_q8_ref,
    .matmul_q8 = matmul_q8_ref,
    .attention = l2_attention_ref,
};

const l2_kernels *l2_kernels_reference(void) { return &reference; }
