/*
 * The kernels of the forward pass, as a table so that a build can carry
 * several (scalar reference; AVX2, AVX-512, VNNI and AMX on x86-64; NEON)
 * and pick one at run time.
 *
 * ops_ref.c and ops_ref_matmul.c hold the plain scalar reference of every
 * entry: it is the test oracle and the fallback. A fast table may differ from it only by float
 * reordering (tests state the tolerance), except where noted. Each
 * instruction-set level gives two tables: its fastest, and an exact one in
 * which every entry gives the reference's bits (l2_kernels_for says which a
 * model uses).
 *
 * Whatever the table, a result never depends on what else is computed with
 * it: a row of a product, a query of the attention, a row of a row-wise
 * step is the same bits whether it runs alone or in a block, on any thread.
 */
#ifndef LLAMA2_OPS_H
#define LLAMA2_OPS_H

#include <stddef.h>
#include <math.h>
#include <stdint.h>

#include "llama2.h"

typedef struct l2_kernels {
    const char *name;

    /* The rows this table's products take together, which the callers cut
     * their tasks by (products.c): a task of one input starts at a multiple
     * of task_rows, a task of a block of inputs at a multiple of
     * block_task_rows (the AMX tiles' 16 rows: a task then holds whole
     * tiles). Any range gives the same bits; these only keep the kernels'
     * row groups whole. */
    int task_rows, block_task_rows;

    /* out = weight * x / sqrt(mean(x^2) + eps); out may alias x.
     * https://arxiv.org/abs/1910.07467 */
    void (*rmsnorm)(float *out, const float *x, const float *weight, int n, float eps);

    /* x = exp(x - max) / sum, in place. */
    void (*softmax)(float *x, int n);

    /* gate = silu(gate) * up, silu(v) = v / (1 + exp(-v)).
     * https://arxiv.org/abs/2002.05202 */
    void (*swiglu)(float *gate, const float *up, int n);

    /* y += x (the residual connection); the reference's bits in every
     * table. */
    void (*add)(float *y, const float *x, int n);

    /* Matrix product over a block of rows of W: for each of the nb inputs
     * x[b] (length cols, consecutive with stride cols) and each row r in
     * [row_begin, row_end): out[b * out_stride + r] = dot(W[r], x[b]).
     * W is row-major with `cols` columns. Each dot is summed by one fixed
     * arithmetic that depends on cols alone: not on nb, the row range or
     * the other inputs. */
    void (*matmul_f32)(float *out, int out_stride, const float *x, int nb, const float *w, int cols,
                       int row_begin, int row_end);

    /* Q8_0 (llama2.c runq.c): x quantized per group of gs values with
     * scale = max|x| / 127 and q = round(x / scale) (half away from zero).
     * Must give exactly the reference's bits: it feeds integer arithmetic. */
    void (*quantize_q8)(int8_t *q, float *scales, const float *x, int n, int gs);

    /* As matmul_f32 for int8 weights (w, ws) and quantized inputs (xq, xs,
     * nb rows of cols values and cols / gs scales): per row, the integer
     * dot of each group scaled by w scale then x scale, summed in fp32 in
     * group order (runq.c's arithmetic, bit for bit, in every table). */
    void (*matmul_q8)(float *out, int out_stride, const int8_t *xq, const float *xs, int nb, const int8_t *w,
                      const float *ws, int cols, int gs, int row_begin, int row_end);

    /* Optional: a rearranged copy of an int8 weight matrix (rows x cols
     * values, a scale per group of gs) for this table's products, made once
     * when the model is opened and owned by the model
     * (l2_model_attach_kernels). Returns the bytes the copy needs (0: none
     * for this matrix) and, unless dst is NULL, writes it there (64-byte
     * aligned). A table without it pays nothing. In a table with
     * gemv_q8_stripes the copy starts with the scales in stripe order
     * (l2_q8_stripe_scale) that it reads; the AMX table adds whole matrices
     * in tile order for matmul_q8_packed, the avx2, avx2-vnni and avx512
     * tables the matrix in panels of 16 rows (ops_q8_panels.h) for theirs;
     * the avx512-vnni table's copy is the panels alone, all its products
     * read. */
    size_t (*repack_q8)(void *dst, const int8_t *w, const float *ws, int rows, int cols, int gs);

    /* One quantized input against the rows of w taken in stripes (see
     * l2_q8_stripes): for each stripe i in [stripe_begin, stripe_end) and j < 8,
     * row r = i + j * stripes gives out[r] exactly as matmul_q8 would, the
     * scales read from `packed`, this table's repack_q8 of the matrix.
     * NULL in a table that has no such kernel (products then use
     * matmul_q8). */
    void (*gemv_q8_stripes)(float *out, const int8_t *xq, const float *xs, const int8_t *w, const void *packed,
                            int cols, int gs, int stripes, int stripe_begin, int stripe_end);
    /* With gemv_q8_stripes: the stripes a matrix of `rows` rows is read as
     * (l2_q8_stripes), of stripe_rows rows each; the rows from
     * stripe_rows * stripes on are left to matmul_q8. */
    int (*q8_stripes)(int rows);
    int stripe_rows;

    /* Optional: matmul_q8 (the same arguments, the same bits) for a matrix
     * of `rows` rows of which `packed` is this table's repack_q8 copy, which
     * it may read instead of w and ws; x_sums holds the sum of each group
     * of each input's quantized values (l2_q8_group_sums). NULL in a table
     * that has no such kernel (products then use matmul_q8). */
    void (*matmul_q8_packed)(float *out, int out_stride, const int8_t *xq, const float *xs, const int32_t *x_sums,
                             int nb, const int8_t *w, const float *ws, const void *packed, int rows, int cols, int gs,
                             int row_begin, int row_end);

    /* Causal attention of nq <= L2_ATTENTION_MAX_QUERIES queries over the
     * cached keys and values of one head (grouped-query attention: the
     * queries may come from several query heads that share it). For each
     * query i, with hs floats at q[i] and out[i]:
     *     s[t] = dot(q[i], k + t * kv_stride) / sqrtf(hs) for t < n_keys[i],
     *     p = softmax(s),  out[i] = sum over t of p[t] * (v + t * kv_stride);
     * n_keys[i] >= 1. scratch holds L2_ATTENTION_SCRATCH(max n_keys, hs)
     * floats. The reference is llama2.c's loop (dot, softmax, then axpy per
     * position). A query's result is the same bits whatever the other
     * queries of the call (a fast table may share loads between them; its
     * speed is best when their n_keys are close). */
    void (*attention)(float *const *out, const float *const *q, const int *n_keys, int nq, const float *k,
                      const float *v, int kv_stride, int hs, float *scratch);
} l2_kernels;

#define L2_ATTENTION_MAX_QUERIES 16
#define L2_ATTENTION_SCRATCH(n_keys, hs) ((size_t)L2_ATTENTION_MAX_QUERIES * ((size_t)(n_keys) + (size_t)(hs)))

/* The reference's entries (ops_ref.c; the products ops_ref_matmul.c), which
 * the exact tables reuse. */
void l2_rmsnorm_ref(float *out, const float *x, const float *weight, int n, float eps);
void l2_softmax_ref(float *x, int n);
void l2_swiglu_ref(float *gate, const float *up, int n);
void l2_add_ref(float *y, const float *x, int n);
void l2_matmul_f32_ref(float *out, int out_stride, const float *x, int nb, const float *w, int cols, int row_begin,
                       int row_end);
void l2_quantize_q8_ref(int8_t *q, float *scales, const float *x, int n, int gs);
void l2_matmul_q8_ref(float *out, int out_stride, const int8_t *xq, const float *xs, int nb, const int8_t *w,
                      const float *ws, int cols, int gs, int row_begin, int row_end);
void l2_attention_ref(float *const *out, const float *const *q, const int *n_keys, int nq, const float *k,
                      const float *v, int kv_stride, int hs, float *scratch);

/* The parts of the reference attention, which fast exact tables replace one
 * by one: the scores of one query q (hs floats) against n_keys cached keys
 * (key t at k + t * kv_stride), att[t] = dot(q, key t) / sqrtf(hs), each
 * dot summed in index order; and the weighted sum of the values added onto
 * out, out[i] += att[t] * v_t[i] for t = 0, 1, ..., every product rounded
 * before it is added (llama2.c's axpy loop). */
void l2_scores_ref(float *att, const float *q, const float *k, int kv_stride, int n_keys, int hs);
void l2_values_ref(float *out, const float *att, const float *v, int kv_stride, int n_keys, int hs);

/* The reference's attention made of a level's exact parts (l2_scores_ref's
 * and l2_values_ref's bits), query by query: scores, l2_softmax_ref, then
 * the values summed onto zeros. */
typedef void (*l2_scores_fn)(float *att, const float *q, const float *k, int kv_stride, int n_keys, int hs);
typedef void (*l2_values_fn)(float *out, const float *att, const float *v, int kv_stride, int n_keys, int hs);
void l2_attention_of_parts(float *const *out, const float *const *q, const int *n_keys, int nq, const float *k,
                           const float *v, int kv_stride, int hs, float *scratch, l2_scores_fn scores,
                           l2_values_fn values);

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
 * follow poorly): stripe i holds rows i, i + stripes, ..., i + 7 * stripes, and
 * the table's repack_q8 keeps a copy of the scales in stripe order so that
 * they are one stream too. The stripe count is odd: streams whose distance is
 * a multiple of a large power of two contend for the same cache sets and
 * memory banks (bench/RESULTS.md has the figures). Rows 8 * stripes .. rows-1
 * are left to matmul_q8. 0 for fewer than 8 rows. */
static inline int l2_q8_stripes(int rows) {
    int q = rows / 8;
    return q > 1 && !(q & 1) ? q - 1 : q;
}

/* Where the stripe-ordered scale copy keeps the scale of group g of row
 * stripe + lane * stripes: a stripe's scales group by group, the 8 rows' scales
 * of a group side by side, so that a kernel loads them as one vector. */
static inline size_t l2_q8_stripe_scale(int stripe, int g, int lane, int groups) {
    return ((size_t)stripe * (size_t)groups + (size_t)g) * 8 + (size_t)lane;
}

/* The sums of the values of each group of gs in xq[n] (n / gs of them),
 * which the VNNI panel products take (matmul_q8_packed). */
void l2_q8_group_sums(int32_t *sums, const int8_t *xq, int n, int gs);

/* The stripe-ordered scale copy (a repack_q8 for tables with gemv_q8_stripes):
 * l2_q8_stripes(rows) * 8 * (cols / gs) floats. */
size_t l2_repack_q8_stripe_scales(void *dst, const int8_t *w, const float *ws, int rows, int cols, int gs);

/* The scalar reference table (exact by definition). */
const l2_kernels *l2_kernels_reference(void);

/* The table a model with these weights uses: the fastest level this build
 * carries and this CPU runs, no faster than the level named in
 * $LLAMA2_KERNELS if set, in its exact form for int8 weights (select.c says
 * why). */
const l2_kernels *l2_kernels_for(llama2_weight_type type);
/* 0, with the message, when LLAMA2_KERNELS names a level this build does
 * not have; 1 when it is unset or known. */
int l2_kernels_check_cap(char *message, size_t size);

/* The index-th kernel level this build carries, fastest first ("scalar",
 * the reference, last); NULL past the last. */
const char *l2_kernel_level_name(int index);

/* The named level's table for these weights (its fast or its exact form);
 * NULL when this build lacks the level or this CPU cannot run it. */
const l2_kernels *l2_kernels_level(const char *name, llama2_weight_type type);

/* The same whether or not this CPU runs the level (for looking at which
 * entries it has: calling them there may fault); NULL when this build lacks
 * the level. */
const l2_kernels *l2_kernels_level_any(const char *name, llama2_weight_type type);

#endif
