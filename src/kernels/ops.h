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
#include <math.h>
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

    /* One quantized input against the rows of w taken in slots (see
     * l2_q8_slots): for each slot i in [slot_begin, slot_end) and j < 8,
     * row r = i + j * slots gives out[r] exactly as matmul_q8 would, the
     * scale of its group g read from slot_scales[l2_q8_slot_scale(i, g, j,
     * cols / gs)]. NULL in a table that has no such kernel (products then
     * use matmul_q8). */
    void (*gemv_q8_slots)(float *out, const int8_t *xq, const float *xs, const int8_t *w, const float *slot_scales,
                          int cols, int gs, int slots, int slot_begin, int slot_end);

    /* Causal attention of nq <= L2_ATTENTION_MAX_QUERIES queries over the
     * cached keys and values of one head (grouped-query attention: the
     * queries may come from several query heads that share it). For each
     * query i, with hs floats at q[i] and out[i]:
     *     s[t] = dot(q[i], k + t * kv_stride) / sqrtf(hs) for t < n_keys[i],
     *     p = softmax(s),  out[i] = sum over t of p[t] * (v + t * kv_stride);
     * n_keys[i] >= 1. scratch holds L2_ATTENTION_SCRATCH(max n_keys, hs)
     * floats. The reference is llama2.c's loop (dot, softmax, then axpy per
     * position); the speed of a fast table is best when the queries' n_keys
     * are close (it may run every query over the largest). */
    void (*attention)(float *const *out, const float *const *q, const int *n_keys, int nq, const float *k,
                      const float *v, int kv_stride, int hs, float *scratch);

    /* Attention scores of one query q (hs floats) against n_keys cached
     * keys (key t at k + t * kv_stride): att[t] = dot(q, key t) / sqrtf(hs),
     * every dot summed in index order as the reference's dot. Bit-exact
     * with the reference in every table: int8 models use it (see
     * llama2_session_create). */
    void (*scores)(float *att, const float *q, const float *k, int kv_stride, int n_keys, int hs);

    /* The attention's weighted sum of one head's cached values (value t at
     * v + t * kv_stride), added onto out: out[i] += att[t] * v_t[i] for t =
     * 0, 1, ..., n_keys - 1 in that order, every product rounded before it
     * is added: the reference's axpy loop (after a memset of out, or
     * continuing it over later positions), bit for bit in every table. */
    void (*values)(float *out, const float *att, const float *v, int kv_stride, int n_keys, int hs);
} l2_kernels;

#define L2_ATTENTION_MAX_QUERIES 16
#define L2_ATTENTION_SCRATCH(n_keys, hs) ((size_t)L2_ATTENTION_MAX_QUERIES * ((size_t)(n_keys) + (size_t)(hs)))

/* The reference attention entry, for tables that have no faster one. */
void l2_attention_ref(float *const *out, const float *const *q, const int *n_keys, int nq, const float *k,
                      const float *v, int kv_stride, int hs, float *scratch);

/* The reference scores entry (also the NEON table's: it must be exact). */
void l2_scores_ref(float *att, const float *q, const float *k, int kv_stride, int n_keys, int hs);

/* round(v) half away from zero as an int8, for quantized activations: v is
 * within [-127, 127] for finite input; NaN (from a NaN or infinite
 * activation) becomes 0, as the vector conversions give, instead of
 * undefined behaviour. */
static inline int8_t l2_q8_round(float v) {
    if (!(v == v)) return 0;
    float r = roundf(v);
    return (int8_t)(r > 127.0f ? 127.0f : r < -127.0f ? -127.0f : r);
}

/* Int8 generation reads a product's rows as 8 long streams instead of 8
 * neighbouring rows at a time (short streams that the hardware prefetchers
 * follow poorly): slot i holds rows i, i + slots, ..., i + 7 * slots, and
 * the model keeps a copy of the scales in slot order so that they are one
 * stream too. The slot count is odd: streams whose distance is a multiple of
 * a large power of two contend for the same cache sets and memory banks
 * (measured on Zen 3: 128-row parts of 5632 columns read at 2/3 the speed of
 * 127-row ones). Rows 8 * slots .. rows-1 are left to matmul_q8. 0 for
 * fewer than 8 rows. */
static inline int l2_q8_slots(int rows) {
    int q = rows / 8;
    return q > 1 && !(q & 1) ? q - 1 : q;
}

/* Where the slot-ordered scale copy keeps the scale of group g of row
 * slot + lane * slots: a slot's scales group by group, the 8 rows' scales
 * of a group side by side, so that a kernel loads them as one vector. */
static inline size_t l2_q8_slot_scale(int slot, int g, int lane, int groups) {
    return ((size_t)slot * (size_t)groups + (size_t)g) * 8 + (size_t)lane;
}

/* The scalar reference table. */
const l2_kernels *l2_kernels_reference(void);

/* The fastest table this build and this CPU can run, no faster than the
 * level named in $LLAMA2_KERNELS, if set. */
const l2_kernels *l2_kernels_best(void);

/* The index-th kernel level this build carries, fastest first ("scalar",
 * the reference, last); NULL past the last. */
const char *l2_kernel_level_name(int index);

/* The table of the named level; NULL when this build lacks it or this CPU
 * cannot run it. */
const l2_kernels *l2_kernels_level(const char *name);

#endif
