/* The run state of a session, shared by its creation and evaluation
 * calls (session.c), the forward pass (transformer.c), the product
 * dispatcher (products.c) and the backends. */
#ifndef LLAMA2_SESSION_H
#define LLAMA2_SESSION_H

#include "llama2.h"
#include "model/model.h"
#include "kernels/ops.h"
#include "kernels/ops_blocks.h"
#include "kernels/ops_kquants.h"

struct l2_backend_ops;

/* A block's attention work: runs of consecutive rows of one sequence, cut
 * into chunks of at most L2_ATTENTION_MAX_QUERIES queries (each row brings
 * one query per query head of a KV head). */
typedef struct l2_attention_chunk {
    int run_row;     /* the first row of its run */
    int first_query; /* its first query in the run: row in run * group + head in group */
    int n_queries;
} l2_attention_chunk;

struct llama2_session {
    const llama2_model *model;
    const l2_kernels *kernels; /* the model's table */
    const struct l2_backend_ops *backend; /* where products and blocks run */
    void *backend_state;
    llama2_threadpool *pool;
    int n_workers;   /* threads that may run tasks at once */
    int batch;       /* most rows in one block */
    int context;     /* cached positions per sequence */
    int n_sequences;
    int *lengths;    /* positions cached per sequence [n_sequences] */

    /* Activations of one block, [batch][width] row-major. */
    float *x;   /* the residual stream [batch][dim] */
    float *xb;  /* normalised input, then attention output [batch][dim] */
    float *xb2; /* a projection's output [batch][dim] */
    float *q;   /* queries [batch][dim] */
    float *k;   /* new keys [batch][kv_dim] */
    float *v;   /* new values [batch][kv_dim] */
    float *hb;  /* feed-forward gate, then its activation [batch][hidden_dim] */
    float *hb2; /* feed-forward up projection [batch][hidden_dim] */
    float *att; /* attention scratch, one per worker [n_workers][att_floats] */
    size_t att_floats;
    float *logits; /* [batch][vocab_size]: the one-sequence calls' rows */

    /* Q8_0 models: the activations quantized before each product. Models
     * of ggml blocks: xq holds them as Q8_0 blocks (l2_block_q8_0
     * [batch][max(dim, hidden_dim) / 32]), xq_summaries what the Q4_0
     * panels need of each block (the same places); then, from
     * l2_xq_k_offset, xq holds them as Q8_K blocks for the K-quants
     * (l2_block_q8_K [batch][max / 256]); xq_scales is NULL. */
    int8_t *xq;       /* [batch][max(dim, hidden_dim)] */
    float *xq_scales; /* [batch][max(dim, hidden_dim) / group_size] */
    l2_block_q8_0_summary *xq_summaries;
    /* Q8_0 models whose table has a packed product: the sum of each group
     * of each input's quantized values (matmul_q8_packed's x_sums). */
    int32_t *xq_sums; /* [batch][max(dim, hidden_dim) / group_size] */

    /* The KV cache, [n_sequences][n_layers][context][kv_dim]. */
    float *key_cache;
    float *value_cache;

    /* Rotary embedding factors for every position, [context][head_size / 2]. */
    float *rope_cos;
    float *rope_sin;

    /* Scratch of one call: the one-sequence calls' rows, a block's
     * attention chunks, and the next position expected of each sequence
     * while a batch is checked. */
    llama2_batch_row *rows;       /* [batch] */
    l2_attention_chunk *chunks;   /* [max_chunks] */
    int max_chunks, n_chunks;
    int *expected;                /* [n_sequences] */
};

/* Where the cached key (or value) row of (sequence, layer, position)
 * starts, in floats from the cache's start. */
static inline size_t l2_cache_row(const llama2_session *s, int sequence, int layer, int position) {
    const size_t per_layer = (size_t)s->context * (size_t)s->model->kv_dim;
    return ((size_t)sequence * (size_t)s->model->config.n_layers + (size_t)layer) * per_layer +
           (size_t)position * (size_t)s->model->kv_dim;
}

/* The widest input a product of model m takes. */
static inline size_t l2_widest_input(const llama2_model *m) {
    const llama2_config *c = &m->config;
    return (size_t)(c->hidden_dim > c->dim ? c->hidden_dim : c->dim);
}

/* Models of ggml blocks: where xq's Q8_K blocks start, in bytes, after the
 * Q8_0 blocks of `batch` inputs (rounded up to a cache line, which aligns
 * the Q8_K blocks' floats). The sizes fit: session.c checked them. */
static inline size_t l2_xq_k_offset(const llama2_model *m, int batch) {
    const size_t q8_0 = (size_t)batch * (l2_widest_input(m) / L2_BLOCK) * sizeof(l2_block_q8_0);
    return (q8_0 + 63) / 64 * 64;
}

/* One weight product of a parallel section: out[b * out_stride + r] =
 * W[r] . x[b] for all rows r of w. */
typedef struct l2_product {
    float *out;
    int out_stride;
    const tensor *w;
} l2_product;

/* Runs products that share the input x ([nb][cols]) as one parallel
 * section: the rows of all of them are split into tasks for the pool.
 * Fails only where a backend fails them. (products.c) */
llama2_status l2_session_products(llama2_session *s, const float *x, int nb, const l2_product *products,
                                  int n_products, llama2_error *err);

/* The forward pass of one block of n <= batch checked rows: the logits of
 * the rows that ask into `logits`, vocab_size floats each in row order.
 * Stops at the first failure. (transformer.c) */
llama2_status l2_forward_block(llama2_session *s, const llama2_batch_row *rows, int n, float *logits,
                               llama2_error *err);

#endif
