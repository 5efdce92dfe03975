/*
 * The Llama 2 forward pass (https://arxiv.org/abs/2307.09288) over a block
 * of rows, each a token at a position of a sequence: the token embedding,
 * then in every layer
 *     attention block:    x += Wo . attention(rope(Wq . rmsnorm(x)), rope(Wk . rmsnorm(x)), Wv . rmsnorm(x))
 *     feed-forward block: x += W2 . swiglu(W1 . rmsnorm(x), W3 . rmsnorm(x))
 * then the final RMSNorm and the classifier, for the rows that ask for
 * logits.
 *
 * A block of one row is token-by-token generation; longer blocks turn the
 * weight products into matrix-matrix products, and rows of several
 * sequences share one pass over the weights. Every step computes each row
 * (each query of the attention) with the same arithmetic whatever else is
 * in the block, so a row's logits do not depend on the batch.
 */
#include <string.h>

#include "backend.h"
#include "platform/checks.h"
#include "session.h"
#include "platform/threadpool.h"
#include "model/ggml_dequant.h"
#include "model/gguf.h"

/* ------------------------------------------------------ row-wise steps */

/* A step applied to every row of the block by row_fn. */
typedef struct rows_job rows_job;
typedef void (*row_fn)(const rows_job *job, int b);
struct rows_job {
    llama2_session *s;
    const llama2_batch_row *rows;
    row_fn fn;
    float *out;
    const float *in;
    const float *gain;
    int layer;
    int per_task;
    int n;
};

/* Rows at which a step is spread over the pool: below it, a parallel
 * section costs more than it saves. */
#define PARALLEL_ROWS 16

static void rows_task(void *ctx, int task, int worker) {
    (void)worker;
    const rows_job *job = ctx;
    const int end = (task + 1) * job->per_task < job->n ? (task + 1) * job->per_task : job->n;
    for (int b = task * job->per_task; b < end; b++) job->fn(job, b);
}

/* Each row is computed whole by one thread, the same way on any. */
static void for_each_row(rows_job *job, int n) {
    llama2_session *s = job->s;
    job->n = n;
    if (n >= PARALLEL_ROWS && s->n_workers > 1) {
        job->per_task = (n + 4 * s->n_workers - 1) / (4 * s->n_workers); /* about four tasks per worker */
        l2_pool_run(s->pool, (n + job->per_task - 1) / job->per_task, rows_task, job);
    } else {
        for (int b = 0; b < n; b++) job->fn(job, b);
    }
}

/* Token embedding: the token's row of the embedding table (an int8 table's
 * values times their group's scale; a table of ggml blocks, each block's
 * values times its fp16 scale, as ggml dequantizes them). */
static void embed_row(const rows_job *job, int b) {
    const tensor *t = &job->s->model->token_embedding;
    const size_t dim = (size_t)t->cols, token = (size_t)job->rows[b].token;
    float *out = job->out + (size_t)b * dim;
    if (t->type == LLAMA2_WEIGHTS_F32) {
        memcpy(out, t->f32 + token * dim, dim * sizeof(float));
        return;
    }
    if (l2_weights_are_k(t->type)) { /* as ggml's reference dequantizes them */
        const size_t block_bytes = t->type == LLAMA2_WEIGHTS_Q4_K   ? sizeof(l2_block_q4_K)
                                   : t->type == LLAMA2_WEIGHTS_Q5_K ? sizeof(l2_block_q5_K)
                                                                    : sizeof(l2_block_q6_K);
        l2_ggml_dequantize(t->type == LLAMA2_WEIGHTS_Q4_K   ? L2_GGML_Q4_K
                           : t->type == LLAMA2_WEIGHTS_Q5_K ? L2_GGML_Q5_K
                                                            : L2_GGML_Q6_K,
                           (const unsigned char *)t->blocks + token * (dim / L2_SUPER_BLOCK) * block_bytes, dim, out);
        return;
    }
    if (t->type == LLAMA2_WEIGHTS_Q4_0 || t->type == LLAMA2_WEIGHTS_GGML_Q8_0) {
        const size_t n_blocks = dim / L2_BLOCK;
        for (size_t i = 0; i < n_blocks; i++) {
            float *o = out + i * L2_BLOCK;
            if (t->type == LLAMA2_WEIGHTS_Q4_0) {
                const l2_block_q4_0 *blk = (const l2_block_q4_0 *)t->blocks + token * n_blocks + i;
                const float d = l2_block_scale(blk->d);
                for (int j = 0; j < L2_BLOCK / 2; j++) {
                    o[j] = (float)((blk->qs[j] & 0x0F) - 8) * d;
                    o[j + L2_BLOCK / 2] = (float)((blk->qs[j] >> 4) - 8) * d;
                }
            } else {
                const l2_block_q8_0 *blk = (const l2_block_q8_0 *)t->blocks + token * n_blocks + i;
                const float d = l2_block_scale(blk->d);
                for (int j = 0; j < L2_BLOCK; j++) o[j] = (float)blk->qs[j] * d;
            }
        }
        return;
    }
    const int8_t *q = t->q + token * dim;
    const float *scales = t->scales + token * dim / (size_t)t->group_size;
    for (size_t i = 0; i < dim; i++) out[i] = (float)q[i] * scales[i / (size_t)t->group_size];
}

static void embed(llama2_session *s, const llama2_batch_row *rows, int n) {
    rows_job job = {.s = s, .rows = rows, .fn = embed_row, .out = s->x};
    for_each_row(&job, n);
}

/* RMSNorm (https://arxiv.org/abs/1910.07467): out = gain * x / rms(x). */
static void rmsnorm_row(const rows_job *job, int b) {
    const llama2_model *m = job->s->model;
    const size_t at = (size_t)b * (size_t)m->config.dim;
    job->s->kernels->rmsnorm(job->out + at, job->in + at, job->gain, m->config.dim, m->config.norm_eps);
}

static void rmsnorm(llama2_session *s, float *out, const float *x, const float *gain, int n) {
    rows_job job = {.s = s, .fn = rmsnorm_row, .out = out, .in = x, .gain = gain};
    for_each_row(&job, n);
}

/* Rotary position embedding (https://arxiv.org/abs/2104.09864): each
 * adjacent pair (v[2j], v[2j+1]) of every head of the row's query and new
 * key, rotated by the angle of (position, j). */
static void rotate(float *v, int width, int head_size, const float *cos_row, const float *sin_row) {
    for (int h = 0; h < width; h += head_size) {
        float *vh = v + h;
        for (int j = 0; j < head_size / 2; j++) {
            float fcr = cos_row[j], fci = sin_row[j];
            float v0 = vh[2 * j], v1 = vh[2 * j + 1];
            vh[2 * j] = v0 * fcr - v1 * fci;
            vh[2 * j + 1] = v0 * fci + v1 * fcr;
        }
    }
}

static void rope_row(const rows_job *job, int b) {
    llama2_session *s = job->s;
    const llama2_model *m = s->model;
    const size_t half = (size_t)(m->head_size / 2), pos = (size_t)job->rows[b].position;
    const float *c = s->rope_cos + pos * half, *sn = s->rope_sin + pos * half;
    rotate(s->q + (size_t)b * (size_t)m->config.dim, m->config.dim, m->head_size, c, sn);
    rotate(s->k + (size_t)b * (size_t)m->kv_dim, m->kv_dim, m->head_size, c, sn);
}

static void rope(llama2_session *s, const llama2_batch_row *rows, int n) {
    rows_job job = {.s = s, .rows = rows, .fn = rope_row};
    for_each_row(&job, n);
}

/* The row's new key and value into its sequence's cache at its position. */
static void store_kv_row(const rows_job *job, int b) {
    llama2_session *s = job->s;
    const size_t kv_dim = (size_t)s->model->kv_dim;
    const size_t at = l2_cache_row(s, job->rows[b].sequence, job->layer, job->rows[b].position);
    memcpy(s->key_cache + at, s->k + (size_t)b * kv_dim, kv_dim * sizeof(float));
    memcpy(s->value_cache + at, s->v + (size_t)b * kv_dim, kv_dim * sizeof(float));
}

static void store_kv(llama2_session *s, int layer, const llama2_batch_row *rows, int n) {
    rows_job job = {.s = s, .rows = rows, .fn = store_kv_row, .layer = layer};
    for_each_row(&job, n);
}

/* SwiGLU (https://arxiv.org/abs/2002.05202): gate = silu(gate) * up. */
static void swiglu_row(const rows_job *job, int b) {
    llama2_session *s = job->s;
    const size_t hidden = (size_t)s->model->config.hidden_dim;
    s->kernels->swiglu(s->hb + (size_t)b * hidden, s->hb2 + (size_t)b * hidden, (int)hidden);
}

static void swiglu(llama2_session *s, int n) {
    rows_job job = {.s = s, .fn = swiglu_row};
    for_each_row(&job, n);
}

/* The residual connection: x += delta. (Folding it into the next step's
 * RMSNorm, one pass over x instead of two, made no difference measurable
 * above the noise of A/B runs on the stories15M and 110M shapes.) */
static void residual_add_row(const rows_job *job, int b) {
    const int dim = job->s->model->config.dim;
    job->s->kernels->add(job->out + (size_t)b * (size_t)dim, job->in + (size_t)b * (size_t)dim, dim);
}

static void residual_add(llama2_session *s, float *x, const float *delta, int n) {
    rows_job job = {.s = s, .fn = residual_add_row, .out = x, .in = delta};
    for_each_row(&job, n);
}

/* ----------------------------------------------------------- attention */

/* Grouped-query attention (https://arxiv.org/abs/2305.13245), causal, over
 * each row's sequence up to its position. The queries of a KV head are
 * taken in chunks of at most L2_ATTENTION_MAX_QUERIES from runs of
 * consecutive rows of one sequence, position-major (the group's heads at
 * one position, then at the next), so that a kernel can read each cached
 * key and value row once for the whole chunk. A query's result does not
 * depend on its chunk (ops.h), so neither the block nor the thread count
 * changes any bits. */
static void plan_attention(llama2_session *s, const llama2_batch_row *rows, int n) {
    const int group = s->model->config.n_heads / s->model->config.n_kv_heads;
    s->n_chunks = 0;
    for (int r0 = 0; r0 < n;) {
        int r1 = r0 + 1;
        while (r1 < n && rows[r1].sequence == rows[r0].sequence) r1++;
        /* Chunks as even as possible: the first n_queries % n_chunks take
         * one more query. */
        const int n_queries = (r1 - r0) * group;
        const int n_chunks = (n_queries + L2_ATTENTION_MAX_QUERIES - 1) / L2_ATTENTION_MAX_QUERIES;
        const int base = n_queries / n_chunks, extra = n_queries % n_chunks;
        for (int c = 0; c < n_chunks; c++)
            s->chunks[s->n_chunks++] =
                (l2_attention_chunk){r0, c * base + (c < extra ? c : extra), base + (c < extra)};
        r0 = r1;
    }
}

typedef struct attention_job {
    llama2_session *s;
    const llama2_batch_row *rows;
    int layer;
} attention_job;

static void attend_chunk(void *ctx, int task, int worker) {
    const attention_job *job = ctx;
    llama2_session *s = job->s;
    const llama2_model *m = s->model;
    const int head_size = m->head_size, dim = m->config.dim;
    const int group = m->config.n_heads / m->config.n_kv_heads;
    const int kv_head = task / s->n_chunks;
    const l2_attention_chunk *chunk = &s->chunks[task % s->n_chunks];
    float *out[L2_ATTENTION_MAX_QUERIES];
    const float *q[L2_ATTENTION_MAX_QUERIES];
    int n_keys[L2_ATTENTION_MAX_QUERIES];
    for (int i = 0; i < chunk->n_queries; i++) {
        const int query = chunk->first_query + i;
        const int b = chunk->run_row + query / group, h = kv_head * group + query % group;
        const size_t offset = (size_t)b * (size_t)dim + (size_t)h * (size_t)head_size;
        q[i] = s->q + offset;
        out[i] = s->xb + offset;
        n_keys[i] = job->rows[b].position + 1;
    }
    const size_t cache = l2_cache_row(s, job->rows[chunk->run_row].sequence, job->layer, 0) +
                         (size_t)kv_head * (size_t)head_size;
    s->kernels->attention(out, q, n_keys, chunk->n_queries, s->key_cache + cache, s->value_cache + cache, m->kv_dim,
                          head_size, s->att + (size_t)worker * s->att_floats);
}

/* xb = the attention of every row's queries (the block's keys and values
 * are in the cache already). */
static void attention(llama2_session *s, int layer, const llama2_batch_row *rows) {
    attention_job job = {s, rows, layer};
    l2_pool_run(s->pool, s->model->config.n_kv_heads * s->n_chunks, attend_chunk, &job);
}

/* --------------------------------------------------------------- layer */

/* Each block returns at the first failed product (a backend's): the rest
 * of the pass would only compute on garbage. */
static llama2_status attention_block(llama2_session *s, int l, const llama2_batch_row *rows, int n,
                                     llama2_error *err) {
    const llama2_model *m = s->model;
    const layer_weights *w = &m->layers[l];
    const int dim = m->config.dim, kv_dim = m->kv_dim;

    rmsnorm(s, s->xb, s->x, w->attention_norm, n);
    l2_product qkv[3] = {{s->q, dim, &w->attention_query},
                         {s->k, kv_dim, &w->attention_key},
                         {s->v, kv_dim, &w->attention_value}};
    llama2_status st = l2_session_products(s, s->xb, n, qkv, 3, err);
    if (st != LLAMA2_OK) return st;
    rope(s, rows, n);
    store_kv(s, l, rows, n);
    attention(s, l, rows);
    l2_product out[1] = {{s->xb2, dim, &w->attention_output}};
    st = l2_session_products(s, s->xb, n, out, 1, err);
    if (st != LLAMA2_OK) return st;
    residual_add(s, s->x, s->xb2, n);
    return LLAMA2_OK;
}

static llama2_status feed_forward_block(llama2_session *s, int l, int n, llama2_error *err) {
    const llama2_model *m = s->model;
    const layer_weights *w = &m->layers[l];
    const int dim = m->config.dim, hidden = m->config.hidden_dim;

    rmsnorm(s, s->xb, s->x, w->ffn_norm, n);
    l2_product gate_up[2] = {{s->hb, hidden, &w->ffn_gate}, {s->hb2, hidden, &w->ffn_up}};
    llama2_status st = l2_session_products(s, s->xb, n, gate_up, 2, err);
    if (st != LLAMA2_OK) return st;
    swiglu(s, n);
    l2_product down[1] = {{s->xb2, dim, &w->ffn_down}};
    st = l2_session_products(s, s->hb, n, down, 1, err);
    if (st != LLAMA2_OK) return st;
    residual_add(s, s->x, s->xb2, n);
    return LLAMA2_OK;
}

/* The final norm and the classifier for the rows that ask, into logits
 * (vocab_size floats a row, in row order). */
static llama2_status classifier(llama2_session *s, const llama2_batch_row *rows, int n, float *logits,
                                llama2_error *err) {
    const llama2_model *m = s->model;
    const size_t dim = (size_t)m->config.dim;
    int n_logits = 0;
    for (int b = 0; b < n; b++)
        if (rows[b].logits) memcpy(s->xb + (size_t)n_logits++ * dim, s->x + (size_t)b * dim, dim * sizeof(float));
    if (n_logits == 0) return LLAMA2_OK;
    rmsnorm(s, s->xb, s->xb, m->final_norm, n_logits);
    l2_product out[1] = {{logits, m->config.vocab_size, &m->classifier}};
    return l2_session_products(s, s->xb, n_logits, out, 1, err);
}

/* ------------------------------------------------------------ a block */

llama2_status l2_forward_block(llama2_session *s, const llama2_batch_row *rows, int n, float *logits,
                               llama2_error *err) {
    if (s->backend->forward_block) {
        llama2_error berr = {0};
        l2_backend_result r = s->backend->forward_block(s->backend_state, s, rows, n, logits, &berr);
        if (r == L2_BACKEND_DONE) return LLAMA2_OK;
        if (r == L2_BACKEND_FAILED) return l2_backend_failure(&berr, err);
    }
    plan_attention(s, rows, n);
    embed(s, rows, n);
    for (int l = 0; l < s->model->config.n_layers; l++) {
        llama2_status st = attention_block(s, l, rows, n, err);
        if (st == LLAMA2_OK) st = feed_forward_block(s, l, n, err);
        if (st != LLAMA2_OK) return st;
    }
    return classifier(s, rows, n, logits, err);
}
