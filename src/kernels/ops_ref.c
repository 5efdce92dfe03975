/* The scalar reference's element-wise kernels and attention: llama2.c's
 * run.c arithmetic, written plainly (the products are ops_ref_matmul.c's,
 * the table table_ref.c). They are the oracle every fast kernel is tested
 * against. The library is compiled with -ffp-contract=off, so no
 * multiply-add is fused. */
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

void l2_add_ref(float *y, const float *x, int n) {
    for (int i = 0; i < n; i++) y[i] += x[i];
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
    l2_attention_of_parts(out, q, n_keys, nq, k, v, kv_stride, hs, scratch, l2_scores_ref, l2_values_ref);
}

void l2_attention_of_parts(float *const *out, const float *const *q, const int *n_keys, int nq, const float *k,
                           const float *v, int kv_stride, int hs, float *scratch, l2_scores_fn scores,
                           l2_values_fn values) {
    for (int i = 0; i < nq; i++) {
        scores(scratch, q[i], k, kv_stride, n_keys[i], hs);
        l2_softmax_ref(scratch, n_keys[i]);
        memset(out[i], 0, (size_t)hs * sizeof(float));
        values(out[i], scratch, v, kv_stride, n_keys[i], hs);
    }
}

void l2_scores_ref(float *att, const float *q, const float *k, int kv_stride, int n_keys, int hs) {
    const float scale = sqrtf((float)hs);
    for (int t = 0; t < n_keys; t++) att[t] = dot_ref(q, k + (size_t)t * (size_t)kv_stride, hs) / scale;
}
