/*
 * The kernels of the forward pass, as a table so that a build can carry
 * several (scalar reference, AVX2, NEON) and pick one at run time.
 *
 * ops_ref.c holds the plain scalar reference of every entry: it is the test
 * oracle and the fallback. A fast table may differ from it only by float
 * reordering (tests state the tolerance), except where noted.
 */
#ifndef LLAMA2_OPS_H
#define LLAMA2_OPS_H

#include <stddef.h>
#include <stdint.h>

typedef struct l2_kernels {
    const char *name;

    /* sum a[i] * b[i] */
    float (*dot)(const float *a, const float *b, int n);

    /* out = weight * x / sqrt(mean(x^2) + 1e-5); out may alias x.
     * https://arxiv.org/abs/1910.07467 */
    void (*rmsnorm)(float *out, const float *x, const float *weight, int n);

    /* x = exp(x - max) / sum, in place. */
    void (*softmax)(float *x, int n);

    /* gate = silu(gate) * up, silu(v) = v / (1 + exp(-v)).
     * https://arxiv.org/abs/2002.05202 */
    void (*swiglu)(float *gate, const float *up, int n);

    /* y += a * x */
    void (*axpy)(float *y, float a, const float *x, int n);

    /* y += x (the residual connection) */
    void (*add)(float *y, const float *x, int n);

    /* Matrix product over a block of rows of W: for each of the nb inputs
     * x[b] (length cols, consecutive with stride cols) and each row r in
     * [row_begin, row_end): out[b * out_stride + r] = dot(W[r], x[b]).
     * W is row-major with `cols` columns. */
    void (*matmul_f32)(float *out, int out_stride, const float *x, int nb, const float *w, int cols,
                       int row_begin, int row_end);

    /* Q8_0 (llama2.c runq.c): x quantized per group of gs values with
     * scale = max|x| / 127 and q = round(x / scale) (half away from zero).
     * Must give exactly the reference's bits: it feeds integer arithmetic. */
    void (*quantize_q8)(int8_t *q, float *scales, const float *x, int n, int gs);

    /* As matmul_f32 for int8 weights (w, ws) and quantized inputs (xq, xs,
     * nb rows of cols values and cols / gs scales): per row, the integer
     * dot of each group scaled by w scale then x scale, summed in fp32 in
     * group order (runq.c's arithmetic, bit for bit). */
    void (*matmul_q8)(float *out, int out_stride, const int8_t *xq, const float *xs, int nb, const int8_t *w,
                      const float *ws, int cols, int gs, int row_begin, int row_end);
} l2_kernels;

/* The scalar reference table. */
const l2_kernels *l2_kernels_reference(void);

/* The fastest table this build and this CPU can run. */
const l2_kernels *l2_kernels_best(void);

#endif
