/* The scalar reference's products: llama2.c's run.c matmul and runq.c's
 * quantization and int8 matmul, written plainly, and the stripe-ordered
 * scale copy of the tables whose int8 products read rows in stripes. The
 * library is compiled with -ffp-contract=off so that no multiply-add is
 * fused: runq.c's int8 path must be reproduced bit for bit. */
#include <math.h>
#include <string.h>

#include "ops.h"

static float dot_ref(const float *a, const float *b, int n) {
    float sum = 0.0f;
    for (int i = 0; i < n; i++) sum += a[i] * b[i];
    return sum;
}

void l2_matmul_f32_ref(float *out, int out_stride, const float *x, int nb, const float *w, int cols, int row_begin,
                       int row_end) {
    for (int b = 0; b < nb; b++)
        for (int r = row_begin; r < row_end; r++)
            out[(size_t)b * (size_t)out_stride + (size_t)r] =
                dot_ref(w + (size_t)r * (size_t)cols, x + (size_t)b * (size_t)cols, cols);
}

void l2_quantize_q8_ref(int8_t *q, float *scales, const float *x, int n, int gs) {
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

void l2_matmul_q8_ref(float *out, int out_stride, const int8_t *xq, const float *xs, int nb, const int8_t *w,
                      const float *ws, int cols, int gs, int row_begin, int row_end) {
    const int groups = cols / gs;
    for (int b = 0; b < nb; b++)
        for (int r = row_begin; r < row_end; r++)
            out[(size_t)b * (size_t)out_stride + (size_t)r] =
                q8_row_ref(xq + (size_t)b * (size_t)cols, xs + (size_t)b * (size_t)groups, w + (size_t)r * (size_t)cols,
                           ws + (size_t)r * (size_t)groups, gs, groups);
}

void l2_q8_group_sums(int32_t *sums, const int8_t *xq, int n, int gs) {
    for (int g = 0; g < n / gs; g++) {
        int32_t sum = 0;
        for (int j = 0; j < gs; j++) sum += xq[(size_t)g * (size_t)gs + (size_t)j];
        sums[g] = sum;
    }
}

size_t l2_repack_q8_stripe_scales(void *dst, const int8_t *w, const float *ws, int rows, int cols, int gs) {
    (void)w;
    const int stripes = l2_q8_stripes(rows), groups = cols / gs;
    if (dst)
        for (int i = 0; i < stripes; i++)
            for (int j = 0; j < 8; j++)
                for (int g = 0; g < groups; g++)
                    ((float *)dst)[l2_q8_stripe_scale(i, g, j, groups)] =
                        ws[((size_t)i + (size_t)j * (size_t)stripes) * (size_t)groups + (size_t)g];
    return (size_t)stripes * 8 * (size_t)groups * sizeof(float);
}
