/*
 * The Llama 2 forward pass (https://arxiv.org/abs/2307.09288) over a block
 * of consecutive positions: each layer is RMSNorm, grouped-query attention
 * with rotary embeddings over the KV cache, a residual add, RMSNorm, a
 * SwiGLU feed-forward block and another residual add; then the final norm
 * and the classifier for the last position only.
 *
 * A block of one position is token-by-token generation; longer blocks turn
 * the prompt's weight products into matrix-matrix products.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "internal.h"
#include "session.h"
#include "threadpool.h"

/* ------------------------------------------------------------ session */

static size_t physical_memory(void) {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0) return SIZE_MAX;
    size_t total;
    return l2_mul_size((size_t)pages, (size_t)page, &total) ? total : SIZE_MAX;
}

/* Attention scratch of one worker, in floats: a row of scores for
 * attend_run, or the kernels' blocked attention scratch for fp32 models
 * (the context is at most seq_len, and seq_len and head_size are bounded
 * by the loader, so this cannot overflow). */
static size_t att_scratch_floats(const llama2_model *m, int context_length) {
    size_t n = (size_t)context_length;
    if (m->config.weight_type == LLAMA2_WEIGHTS_F32) {
        size_t blocked = L2_ATTENTION_SCRATCH(context_length, m->head_size);
        if (blocked > n) n = blocked;
    }
    return n;
}

/* Sizes of every buffer, in floats (or bytes for xq), checked for overflow. */
typedef struct session_sizes {
    size_t x, hidden, att, logits, xq, xq_scales, cache, rope;
    size_t total_bytes;
} session_sizes;

static int plan_sizes(const llama2_model *m, int batch, int n_workers, int context_length, session_sizes *z) {
    const llama2_config *c = &m->config;
    const size_t B = (size_t)batch;
    size_t widest = (size_t)(c->hidden_dim > c->dim ? c->hidden_dim : c->dim);
    size_t t, total = 0;
    int ok = l2_mul_size(B, (size_t)c->dim, &z->x) && l2_mul_size(B, (size_t)c->hidden_dim, &z->hidden) &&
             l2_mul_size((size_t)n_workers, att_scratch_floats(m, context_length), &z->att) && l2_mul_size(B, (size_t)c->vocab_size, &z->logits) &&
             l2_mul_size((size_t)c->n_layers, (size_t)context_length, &t) && l2_mul_size(t, (size_t)m->kv_dim, &z->cache) &&
             l2_mul_size((size_t)context_length, (size_t)(m->head_size / 2), &z->rope);
    if (!ok) return 0;
    z->xq = 0;
    z->xq_scales = 0;
    if (c->weight_type == LLAMA2_WEIGHTS_Q8_0) {
        if (!l2_mul_size(B, widest, &z->xq)) return 0;
        z->xq_scales = z->xq / (size_t)c->group_size;
    }
    /* Everything in bytes: 4 of x, 2 hidden, att, logits, 2 caches, 2 rope. */
    size_t parts[] = {z->x, z->x, z->x, z->x, z->hidden, z->hidden, z->att, z->logits,
                      z->cache, z->cache, z->rope, z->rope, z->xq_scales};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        size_t bytes;
        if (!l2_mul_size(parts[i], sizeof(float), &bytes) || !l2_add_size(total, bytes, &total)) return 0;
    }
    if (!l2_add_size(total, z->xq, &total)) return 0;
    z->total_bytes = total;
    return 1;
}

/* cos and sin of pos * 10000^(-2j / head_size): computed once with the same
 * float expressions llama2.c evaluates at every step. */
static void fill_rope_tables(llama2_session *s) {
    const int head_size = s->model->head_size, half = head_size / 2;
    for (int pos = 0; pos < s->context_length; pos++) {
        for (int j = 0; j < half; j++) {
            float freq = 1.0f / powf(10000.0f, (float)(2 * j) / (float)head_size);
            float val = (float)pos * freq;
            s->rope_cos[(size_t)pos * (size_t)half + (size_t)j] = cosf(val);
            s->rope_sin[(size_t)pos * (size_t)half + (size_t)j] = sinf(val);
        }
    }
}

llama2_status llama2_session_create(const llama2_model *m, const llama2_session_options *options,
                                    llama2_session **out, llama2_error *err) {
    *out = NULL;
    int batch = options && options->batch_size > 0 ? options->batch_size : LLAMA2_DEFAULT_BATCH;
    const l2_backend_ops *backend = l2_backend_find(options ? options->backend : NULL);
    if (!backend)
        return l2_fail(err, LLAMA2_E_UNSUPPORTED, "backend '%s' is not compiled into this build", options->backend);
    llama2_threadpool *pool = options ? options->pool : NULL;
    int n_workers = llama2_threadpool_size(pool);
    /* A context shorter than the model's holds only that many positions. */
    int context_length = m->config.seq_len;
    if (options && options->context_length < 0)
        return l2_fail(err, LLAMA2_E_INVALID, "context length %d", options->context_length);
    if (options && options->context_length > 0) {
        if (options->context_length > m->config.seq_len)
            return l2_fail(err, LLAMA2_E_INVALID, "a context of %d positions is longer than the model's (%d)",
                           options->context_length, m->config.seq_len);
        context_length = options->context_length;
    }
    if (batch > context_length) batch = context_length;

    session_sizes z;
    if (!plan_sizes(m, batch, n_workers, context_length, &z))
        return l2_fail(err, LLAMA2_E_NOMEM, "the run state's size overflows (context %d, %d layers)",
                       context_length, m->config.n_layers);
    size_t memory = physical_memory();
    if (z.total_bytes > memory)
        return l2_fail(err, LLAMA2_E_NOMEM, "the KV cache and buffers need %.1f GiB, this machine has %.1f GiB",
                       (double)z.total_bytes / (1 << 30), (double)memory / (1 << 30));

    llama2_session *s = calloc(1, sizeof *s);
    if (!s) return l2_fail(err, LLAMA2_E_NOMEM, "out of memory");
    s->model = m;
    s->backend = backend;
    s->pool = pool;
    s->kernel_table = *l2_kernels_best();
    if (m->config.weight_type == LLAMA2_WEIGHTS_Q8_0) {
        /* A one-ulp change in an activation can flip the int8 rounding of
         * the next product's input, so around int8 products every float
         * operation keeps llama2.c's plain evaluation order. The int8
         * kernels themselves are bit-exact in every table. */
        const l2_kernels *ref = l2_kernels_reference();
        s->kernel_table.dot = ref->dot;
        s->kernel_table.rmsnorm = ref->rmsnorm;
        s->kernel_table.softmax = ref->softmax;
        s->kernel_table.swiglu = ref->swiglu;
        /* axpy, add, scores and values keep the table's: they are the
         * reference's bits in every table (ops.h; test_kernels compares
         * them with memcmp). */
    }
    s->kernels = &s->kernel_table;
    s->batch = batch;
    s->context_length = context_length;
    s->n_workers = n_workers;
    float **f32_buffers[] = {&s->x, &s->xb, &s->xb2, &s->q, &s->hb, &s->hb2, &s->att, &s->logits,
                             &s->key_cache, &s->value_cache, &s->rope_cos, &s->rope_sin, &s->xq_scales};
    size_t f32_sizes[] = {z.x, z.x, z.x, z.x, z.hidden, z.hidden, z.att, z.logits,
                          z.cache, z.cache, z.rope, z.rope, z.xq_scales};
    int ok = 1;
    for (size_t i = 0; i < sizeof f32_sizes / sizeof f32_sizes[0]; i++)
        ok = ok && (*f32_buffers[i] = l2_alloc_aligned(f32_sizes[i] * sizeof(float))) != NULL;
    ok = ok && (s->xq = l2_alloc_aligned(z.xq)) != NULL;
    if (!ok) {
        llama2_session_destroy(s);
        return l2_fail(err, LLAMA2_E_NOMEM, "cannot allocate the run state (%.1f MiB)",
                       (double)z.total_bytes / (1 << 20));
    }
    fill_rope_tables(s);
    if (backend->create) {
        llama2_status st = backend->create(s, &s->backend_state, err);
        if (st != LLAMA2_OK) {
            llama2_session_destroy(s);
            return st;
        }
    }
    *out = s;
    return LLAMA2_OK;
}

void llama2_session_destroy(llama2_session *s) {
    if (!s) return;
    if (s->backend && s->backend->destroy && s->backend_state) s->backend->destroy(s->backend_state);
    void *buffers[] = {s->x,         s->xb,          s->xb2,      s->q,        s->hb,      s->hb2,       s->att,
                       s->logits,    s->key_cache,   s->value_cache, s->rope_cos, s->rope_sin, s->xq_scales, s->xq};
    for (size_t i = 0; i < sizeof buffers / sizeof buffers[0]; i++) l2_free_aligned(buffers[i]);
    free(s);
}

const llama2_model *llama2_session_model(const llama2_session *s) { return s->model; }

int llama2_session_context_length(const llama2_session *s) { return s->context_length; }

/* --------------------------------------------------------- operations */

/* Rotary position embedding (https://arxiv.org/abs/2104.09864): rotates each
 * adjacent pair (v[2j], v[2j+1]) of every head by the angle of (pos, j). */
static void rope_rotate(float *v, int width, int head_size, const float *cos_row, const float *sin_row) {
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

/* The fp32 path's attention for blocks: one task per KV head and chunk of
 * at most L2_ATTENTION_MAX_QUERIES of its queries, taken position-major (the
 * group's heads at one position, then at the next), so that the kernel
 * reads each cached key and value row once for the whole chunk and the
 * queries of a chunk see nearly the same number of positions. A query's
 * result does not depend on its chunk (ops.h), so neither the block size nor
 * the thread count changes any bits. */
typedef struct attention_chunks_job {
    llama2_session *s;
    int layer;
    int pos0;
    int n_queries; /* n * queries per KV head */
    int n_chunks;  /* per KV head */
} attention_chunks_job;

static void attend_chunk(void *ctx, int task, int worker) {
    const attention_chunks_job *job = ctx;
    llama2_session *s = job->s;
    const llama2_model *m = s->model;
    const int head_size = m->head_size, kv_dim = m->kv_dim, dim = m->config.dim;
    const int group = m->config.n_heads / m->config.n_kv_heads;
    const int kv_head = task / job->n_chunks, chunk = task % job->n_chunks;
    /* Chunks as even as possible: the first n_queries % n_chunks take one
     * more query. */
    const int base = job->n_queries / job->n_chunks, extra = job->n_queries % job->n_chunks;
    const int first = chunk * base + (chunk < extra ? chunk : extra);
    const int count = base + (chunk < extra);
    float *out[L2_ATTENTION_MAX_QUERIES];
    const float *q[L2_ATTENTION_MAX_QUERIES];
    int n_keys[L2_ATTENTION_MAX_QUERIES];
    for (int i = 0; i < count; i++) {
        const int b = (first + i) / group, h = kv_head * group + (first + i) % group;
        const size_t offset = (size_t)b * (size_t)dim + (size_t)h * (size_t)head_size;
        q[i] = s->q + offset;
        out[i] = s->xb + offset;
        n_keys[i] = job->pos0 + b + 1;
    }
    const size_t cache = (size_t)job->layer * (size_t)s->context_length * (size_t)kv_dim +
                         (size_t)kv_head * (size_t)head_size;
    float *scratch = s->att + (size_t)worker * att_scratch_floats(m, s->context_length);
    s->kernels->attention(out, q, n_keys, count, s->key_cache + cache, s->value_cache + cache, kv_dim, head_size,
                          scratch);
}

/* Attention one position at a time (generation, and every int8 model's
 * attention): one task per position and run of consecutive heads, head
 * after head: scores, softmax, then the weighted sum of the values. The
 * scores and values kernels are the reference's bits in every table
 * (ops.h), so int8 models keep runq.c's arithmetic, and no result depends on
 * the runs. What limits it at long contexts is memory: each head reads a
 * few hundred bytes of every cached row (110M int8 at 1000 tokens: a third
 * of the time). Taking the positions in blocks for all the run's heads at
 * a time, and huge pages for the cache, changed nothing measurable. */
typedef struct attention_runs_job {
    llama2_session *s;
    int layer;
    int pos0;
    int heads_per_task, tasks_per_position;
} attention_runs_job;

static void attend_run(void *ctx, int task, int worker) {
    const attention_runs_job *job = ctx;
    llama2_session *s = job->s;
    const llama2_model *m = s->model;
    const l2_kernels *k = s->kernels;
    const int n_heads = m->config.n_heads, head_size = m->head_size, kv_dim = m->kv_dim, dim = m->config.dim;
    const int group = n_heads / m->config.n_kv_heads;
    const int b = task / job->tasks_per_position;
    const int h0 = task % job->tasks_per_position * job->heads_per_task;
    const int h1 = h0 + job->heads_per_task < n_heads ? h0 + job->heads_per_task : n_heads;
    const int n_keys = job->pos0 + b + 1;
    const size_t layer_offset = (size_t)job->layer * (size_t)s->context_length * (size_t)kv_dim;
    float *att = s->att + (size_t)worker * att_scratch_floats(m, s->context_length);
    for (int h = h0; h < h1; h++) {
        const size_t piece = layer_offset + (size_t)(h / group) * (size_t)head_size;
        const size_t offset = (size_t)b * (size_t)dim + (size_t)h * (size_t)head_size;
        float *out = s->xb + offset;
        k->scores(att, s->q + offset, s->key_cache + piece, kv_dim, n_keys, head_size);
        k->softmax(att, n_keys);
        memset(out, 0, (size_t)head_size * sizeof(float));
        k->values(out, att, s->value_cache + piece, kv_dim, n_keys, head_size);
    }
}

static void attention_heads(llama2_session *s, int l, int pos0, int n) {
    const llama2_model *m = s->model;
    const int group = m->config.n_heads / m->config.n_kv_heads;
    /* fp32 models: blocked where a chunk gets a few queries to share the
     * key rows (int8 models keep the reference's arithmetic instead). */
    if (m->config.weight_type == LLAMA2_WEIGHTS_F32 && n * group >= 4) {
        attention_chunks_job job = {s, l, pos0, n * group, 0};
        job.n_chunks = (job.n_queries + L2_ATTENTION_MAX_QUERIES - 1) / L2_ATTENTION_MAX_QUERIES;
        l2_pool_run(s->pool, m->config.n_kv_heads * job.n_chunks, attend_chunk, &job);
        return;
    }
    /* A run of heads per worker and position. */
    attention_runs_job job = {s, l, pos0, 0, 0};
    const int runs = s->n_workers < m->config.n_heads ? s->n_workers : m->config.n_heads;
    job.heads_per_task = (m->config.n_heads + runs - 1) / runs;
    job.tasks_per_position = (m->config.n_heads + job.heads_per_task - 1) / job.heads_per_task;
    l2_pool_run(s->pool, n * job.tasks_per_position, attend_run, &job);
}

/* ------------------------------------------------- per-position work */

/* The elementwise work between the products, position by position: spread
 * over the pool for long blocks (each position is computed whole by one
 * thread, in the same order as on one), inline for short ones, where a
 * parallel section would cost more than it saves. */
typedef enum {
    STAGE_NORM,     /* xb = rmsnorm(x, norm) */
    STAGE_ADD_NORM, /* x += xb2, then xb = rmsnorm(x, norm) if norm */
    STAGE_ROPE,     /* rotate the queries and the new keys */
    STAGE_SWIGLU,   /* hb = silu(hb) * hb2 */
} stage_kind;

typedef struct stage_job {
    llama2_session *s;
    stage_kind kind;
    const float *norm;
    float *keys; /* STAGE_ROPE: the block's first key row */
    int pos0, n;
    int per_task;
} stage_job;

#define PARALLEL_POSITIONS 16

static void stage_position(const stage_job *job, int b) {
    llama2_session *s = job->s;
    const llama2_model *m = s->model;
    const l2_kernels *k = s->kernels;
    const size_t dim = (size_t)m->config.dim, hidden = (size_t)m->config.hidden_dim, kv_dim = (size_t)m->kv_dim;
    float *x = s->x + (size_t)b * dim, *xb = s->xb + (size_t)b * dim;
    switch (job->kind) {
    case STAGE_ADD_NORM:
        k->add(x, s->xb2 + (size_t)b * dim, (int)dim);
        if (job->norm) k->rmsnorm(xb, x, job->norm, (int)dim);
        break;
    case STAGE_NORM:
        k->rmsnorm(xb, x, job->norm, (int)dim);
        break;
    case STAGE_ROPE: {
        const size_t half = (size_t)(m->head_size / 2), pos = (size_t)(job->pos0 + b);
        const float *c = s->rope_cos + pos * half, *sn = s->rope_sin + pos * half;
        rope_rotate(s->q + (size_t)b * dim, (int)dim, m->head_size, c, sn);
        rope_rotate(job->keys + (size_t)b * kv_dim, (int)kv_dim, m->head_size, c, sn);
        break;
    }
    case STAGE_SWIGLU:
        k->swiglu(s->hb + (size_t)b * hidden, s->hb2 + (size_t)b * hidden, (int)hidden);
        break;
    }
}

static void stage_task(void *ctx, int task, int worker) {
    (void)worker;
    const stage_job *job = ctx;
    int end = (task + 1) * job->per_task < job->n ? (task + 1) * job->per_task : job->n;
    for (int b = task * job->per_task; b < end; b++) stage_position(job, b);
}

static void run_stage(llama2_session *s, stage_kind kind, const float *norm, float *keys, int pos0, int n) {
    stage_job job = {s, kind, norm, keys, pos0, n, n};
    if (n >= PARALLEL_POSITIONS && s->n_workers > 1) {
        /* About four tasks per worker. */
        job.per_task = (n + 4 * s->n_workers - 1) / (4 * s->n_workers);
        l2_pool_run(s->pool, (n + job.per_task - 1) / job.per_task, stage_task, &job);
    } else {
        for (int b = 0; b < n; b++) stage_position(&job, b);
    }
}

/* --------------------------------------------------------------- layer */

/* Expects s->xb to hold the block's attention-normalised inputs; leaves
 * x updated and xb holding its feed-forward normalisation. */
static void attention_block(llama2_session *s, int l, int pos0, int n) {
    const llama2_model *m = s->model;
    const layer_weights *w = &m->layers[l];
    const int dim = m->config.dim, kv_dim = m->kv_dim;
    const size_t cache_row = ((size_t)l * (size_t)s->context_length + (size_t)pos0) * (size_t)kv_dim;
    float *keys = s->key_cache + cache_row, *values = s->value_cache + cache_row;

    /* The block's keys and values go straight into their cache rows. */
    l2_product qkv[3] = {{s->q, dim, &w->attention_query},
                         {keys, kv_dim, &w->attention_key},
                         {values, kv_dim, &w->attention_value}};
    session_products(s, s->xb, n, qkv, 3);
    run_stage(s, STAGE_ROPE, NULL, keys, pos0, n);

    attention_heads(s, l, pos0, n);

    l2_product out[1] = {{s->xb2, dim, &w->attention_output}};
    session_products(s, s->xb, n, out, 1);
    run_stage(s, STAGE_ADD_NORM, w->ffn_norm, NULL, pos0, n);
}

/* Expects xb to hold the feed-forward normalisation; leaves x updated and
 * xb holding next_norm's normalisation of it (if next_norm). */
static void feed_forward_block(llama2_session *s, int l, int n, const float *next_norm) {
    const llama2_model *m = s->model;
    const layer_weights *w = &m->layers[l];
    const int dim = m->config.dim, hidden = m->config.hidden_dim;

    l2_product gate_up[2] = {{s->hb, hidden, &w->ffn_gate}, {s->hb2, hidden, &w->ffn_up}};
    session_products(s, s->xb, n, gate_up, 2);
    run_stage(s, STAGE_SWIGLU, NULL, NULL, 0, n);

    l2_product down[1] = {{s->xb2, dim, &w->ffn_down}};
    session_products(s, s->hb, n, down, 1);
    run_stage(s, STAGE_ADD_NORM, next_norm, NULL, 0, n);
}

/* One block of n consecutive positions; logits for its last n_logits
 * positions, into s->logits rows 0..n_logits-1. */
static void forward_block(llama2_session *s, const int *tokens, int n, int pos0, int n_logits) {
    if (s->backend->forward_block && s->backend->forward_block(s->backend_state, s, tokens, n, pos0, n_logits))
        return;
    const llama2_model *m = s->model;
    const int dim = m->config.dim, n_layers = m->config.n_layers;
    for (int b = 0; b < n; b++) model_embed(m, tokens[b], s->x + (size_t)b * dim);
    run_stage(s, STAGE_NORM, m->layers[0].attention_norm, NULL, pos0, n);
    for (int l = 0; l < n_layers; l++) {
        attention_block(s, l, pos0, n);
        feed_forward_block(s, l, n, l + 1 < n_layers ? m->layers[l + 1].attention_norm : NULL);
    }
    if (n_logits == 0) return;
    float *first = s->x + (size_t)(n - n_logits) * dim;
    for (int b = 0; b < n_logits; b++) s->kernels->rmsnorm(first + (size_t)b * dim, first + (size_t)b * dim, m->final_norm, dim);
    l2_product classifier[1] = {{s->logits, m->config.vocab_size, &m->classifier}};
    session_products(s, first, n_logits, classifier, 1);
}

static llama2_status check_tokens(const llama2_session *s, const int *tokens, int n_tokens, int pos,
                                  llama2_error *err) {
    const llama2_config *c = &s->model->config;
    if (n_tokens <= 0) return l2_fail(err, LLAMA2_E_INVALID, "no tokens to evaluate");
    if (pos < 0 || pos > s->context_length - n_tokens)
        return l2_fail(err, LLAMA2_E_CONTEXT, "positions %d..%lld do not fit the context window of %d", pos,
                       (long long)pos + n_tokens - 1, s->context_length);
    for (int i = 0; i < n_tokens; i++)
        if (tokens[i] < 0 || tokens[i] >= c->vocab_size)
            return l2_fail(err, LLAMA2_E_INVALID, "token id %d is outside the vocabulary (%d)", tokens[i],
                           c->vocab_size);
    return LLAMA2_OK;
}

llama2_status llama2_session_eval(llama2_session *s, const int *tokens, int n_tokens, int pos, float **logits,
                                  llama2_error *err) {
    llama2_status st = check_tokens(s, tokens, n_tokens, pos, err);
    if (st != LLAMA2_OK) return st;
    for (int done = 0; done < n_tokens;) {
        int n = n_tokens - done < s->batch ? n_tokens - done : s->batch;
        forward_block(s, tokens + done, n, pos + done, done + n == n_tokens ? 1 : 0);
        done += n;
    }
    if (logits) *logits = s->logits;
    return LLAMA2_OK;
}

llama2_status llama2_session_eval_all(llama2_session *s, const int *tokens, int n_tokens, int pos,
                                      llama2_logits_fn on_logits, void *user, llama2_error *err) {
    llama2_status st = check_tokens(s, tokens, n_tokens, pos, err);
    if (st != LLAMA2_OK) return st;
    const size_t vocab = (size_t)s->model->config.vocab_size;
    for (int done = 0; done < n_tokens;) {
        int n = n_tokens - done < s->batch ? n_tokens - done : s->batch;
        forward_block(s, tokens + done, n, pos + done, n);
        for (int b = 0; b < n; b++) on_logits(user, done + b, s->logits + (size_t)b * vocab);
        done += n;
    }
    return LLAMA2_OK;
}
