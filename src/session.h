/* The run state of a session, shared by the forward pass and the product
 * dispatcher. */
#ifndef LLAMA2_SESSION_H
#define LLAMA2_SESSION_H

#include "llama2.h"
#include "model.h"
#include "ops.h"

struct l2_backend_ops;

struct llama2_session {
    const llama2_model *model;
    const struct l2_backend_ops *backend; /* where products and blocks run */
    void *backend_state;
    llama2_threadpool *pool;
    const l2_kernels *kernels; /* points at kernel_table */
    l2_kernels kernel_table;
    int batch;     /* most positions in one block */
    int context_length; /* positions this session holds (<= the model's seq_len) */
    int n_workers; /* threads that may run tasks at once */

    /* Activations of one block, [batch][width] row-major. */
    float *x;   /* the residual stream [batch][dim] */
    float *xb;  /* normalised input, then attention output [batch][dim] */
    float *xb2; /* a projection's output [batch][dim] */
    float *q;   /* queries [batch][dim] */
    float *hb;  /* feed-forward gate, then its activation [batch][hidden_dim] */
    float *hb2; /* feed-forward up projection [batch][hidden_dim] */
    float *att; /* attention scores, one row per worker [n_workers][context_length] */
    float *logits; /* [batch][vocab_size]: rows for the positions that asked */

    /* Q8_0 models: the activations quantized before each product. */
    int8_t *xq;       /* [batch][max(dim, hidden_dim)] */
    float *xq_scales; /* [batch][max(dim, hidden_dim) / group_size] */

    /* The KV cache, [n_layers][context_length][kv_dim]. */
    float *key_cache;
    float *value_cache;

    /* Rotary embedding factors for every position, [context_length][head_size / 2]. */
    float *rope_cos;
    float *rope_sin;
};

/* One weight product of a parallel section: out[b * out_stride + r] =
 * W[r] . x[b] for all rows r of w. */
typedef struct l2_product {
    float *out;
    int out_stride;
    const tensor *w;
} l2_product;

/* Runs products that share the input x ([nb][cols]) as one parallel
 * section: the rows of all of them are split into tasks for the pool. */
void session_products(llama2_session *s, const float *x, int nb, const l2_product *products, int n_products);

#endif
