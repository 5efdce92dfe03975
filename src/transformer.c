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

/* Sizes of every buffer, in floats (or bytes for xq), checked for overflow. */
typedef struct session_sizes {
    size_t x, hidden, att, logits, xq, xq_scales, cache, rope;
    size_t total_bytes;
} session_sizes;

static int plan_sizes(const llama2_model *m, int batch, int n_workers, session_sizes *z) {
    const llama2_config *c = &m->config;
    const size_t B = (size_t)batch;
    size_t widest = (size_t)(c->hidden_dim > c->dim ? c->hidden_dim : c->dim);
    size_t t, total = 0;
    int ok = l2_mul_size(B, (size_t)c->dim, &z->x) && l2_mul_size(B, (size_t)c->hidden_dim, &z->hidden) &&
             l2_mul_size((size_t)n_workers, (size_t)c->seq_len, &z->att) && l2_mul_size(B, (size_t)c->vocab_size, &z->logits) &&
             l2_mul_size((size_t)c->n_layers, (size_t)c->seq_len, &t) && l2_mul_size(t, (size_t)m->kv_dim, &z->cache) &&
             l2_mul_size((size_t)c->seq_len, (size_t)(m->head_size / 2), &z->rope);
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
    for (int pos = 0; pos < s->model->config.seq_len; pos++) {
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
    if (batch > m->config.seq_len) batch = m->config.seq_len;

    session_sizes z;
    if (!plan_sizes(m, batch, n_workers, &z))
        return l2_fail(err, LLAMA2_E_NOMEM, "the run state's size overflows (seq_len %d, %d layers)",
                       m->config.seq_len, m->config.n_layers);
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
        s->kernel_table.axpy = ref->axpy;
        s->kernel_table.add = ref->add;
    }
    s->kernels = &s->kernel_table;
    s->batch = batch;
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

/* --------------------------------------------------------- operations */

/* Rotary position embedding (https://arxiv.org/abs/2104.09864): rotates each
 * adjacent pair (v[2j], v[2j+1]) of every head by the angle of (pos, j). */
static void rope_rotate(float *v, int width, int head_size, const float *cos_row, const float *sin_row) {
    for (int i = 0; i < width; i += 2) {
        int j = (i % head_size) / 2;
        float fcr = cos_row[j], fci = sin_row[j];
        float v0 = v[i], v1 = v[i + 1];
        v[i] = v0 * fcr - v1 * fci;
        v[i + 1] = v0 * fci + v1 * fcr;
    }
}

/* Grouped-query attention (https://arxiv.org/abs/2305.13245) of one query
 * head at one position over the cached keys and values of positions
 * 0..pos; the n_heads / n_kv_heads query heads of a group share a KV head. */
typedef struct attention_job {
    llama2_session *s;
    int layer;
    int pos0; /* position of the block's first token */
} attention_job;

static void attend_head(void *ctx, int task, int worker) {
    const attention_job *job = ctx;
    llama2_session *s = job->s;
    const llama2_model *m = s->model;
    const int n_heads = m->config.n_heads, head_size = m->head_size, kv_dim = m->kv_dim;
    const int b = task / n_heads, h = task % n_heads;
    const int pos = job->pos0 + b;
    const int kv_head = h / (n_heads / m->config.n_kv_heads);
    const size_t layer_offset = (size_t)job->layer * (size_t)m->config.seq_len * (size_t)kv_dim;
    const float *q = s->q + (size_t)b * (size_t)m->config.dim + (size_t)h * (size_t)head_size;
    const float *keys = s->key_cache + layer_offset + (size_t)kv_head * (size_t)head_size;
    const float *values = s->value_cache + layer_offset + (size_t)kv_head * (size_t)head_size;
    float *att = s->att + (size_t)worker * (size_t)m->config.seq_len;
    const float scale = sqrtf((float)head_size);

    for (int t = 0; t <= pos; t++) att[t] = s->kernels->dot(q, keys + (size_t)t * (size_t)kv_dim, head_size) / scale;
    s->kernels->softmax(att, pos + 1);
    float *out = s->xb + (size_t)b * (size_t)m->config.dim + (size_t)h * (size_t)head_size;
    memset(out, 0, (size_t)head_size * sizeof(float));
    for (int t = 0; t <= pos; t++) s->kernels->axpy(out, att[t], values + (size_t)t * (size_t)kv_dim, head_size);
}

/* --------------------------------------------------------------- layer */

static void attention_block(llama2_session *s, int l, int pos0, int n) {
    const llama2_model *m = s->model;
    const layer_weights *w = &m->layers[l];
    const int dim = m->config.dim, kv_dim = m->kv_dim, half = m->head_size / 2;
    const l2_kernels *k = s->kernels;
    const size_t cache_row = ((size_t)l * (size_t)m->config.seq_len + (size_t)pos0) * (size_t)kv_dim;
    float *keys = s->key_cache + cache_row, *values = s->value_cache + cache_row;

    for (int b = 0; b < n; b++)
        k->rmsnorm(s->xb + (size_t)b * dim, s->x + (size_t)b * dim, w->attention_norm, dim);

    /* The block's keys and values go straight into their cache rows. */
    l2_product qkv[3] = {{s->q, dim, &w->attention_query},
                         {keys, kv_dim, &w->attention_key},
                         {values, kv_dim, &w->attention_value}};
    session_products(s, s->xb, n, qkv, 3);

    for (int b = 0; b < n; b++) {
        const size_t pos = (size_t)(pos0 + b);
        const float *c = s->rope_cos + pos * (size_t)half, *sn = s->rope_sin + pos * (size_t)half;
        rope_rotate(s->q + (size_t)b * dim, dim, m->head_size, c, sn);
        rope_rotate(keys + (size_t)b * kv_dim, kv_dim, m->head_size, c, sn);
    }

    attention_job job = {s, l, pos0};
    l2_pool_run(s->pool, n * m->config.n_heads, attend_head, &job);

    l2_product out[1] = {{s->xb2, dim, &w->attention_output}};
    session_products(s, s->xb, n, out, 1);
    for (int b = 0; b < n; b++) k->add(s->x + (size_t)b * dim, s->xb2 + (size_t)b * dim, dim);
}

static void feed_forward_block(llama2_session *s, int l, int n) {
    const llama2_model *m = s->model;
    const layer_weights *w = &m->layers[l];
    const int dim = m->config.dim, hidden = m->config.hidden_dim;
    const l2_kernels *k = s->kernels;

    for (int b = 0; b < n; b++)
        k->rmsnorm(s->xb + (size_t)b * dim, s->x + (size_t)b * dim, w->ffn_norm, dim);

    l2_product gate_up[2] = {{s->hb, hidden, &w->ffn_gate}, {s->hb2, hidden, &w->ffn_up}};
    session_products(s, s->xb, n, gate_up, 2);
    for (int b = 0; b < n; b++) k->swiglu(s->hb + (size_t)b * hidden, s->hb2 + (size_t)b * hidden, hidden);

    l2_product down[1] = {{s->xb2, dim, &w->ffn_down}};
    session_products(s, s->hb, n, down, 1);
    for (int b = 0; b < n; b++) k->add(s->x + (size_t)b * dim, s->xb2 + (size_t)b * dim, dim);
}

/* One block of n consecutive positions; logits for its last n_logits
 * positions, into s->logits rows 0..n_logits-1. */
static void forward_block(llama2_session *s, const int *tokens, int n, int pos0, int n_logits) {
    if (s->backend->forward_block && s->backend->forward_block(s->backend_state, s, tokens, n, pos0, n_logits))
        return;
    const llama2_model *m = s->model;
    const int dim = m->config.dim;
    for (int b = 0; b < n; b++) model_embed(m, tokens[b], s->x + (size_t)b * dim);
    for (int l = 0; l < m->config.n_layers; l++) {
        attention_block(s, l, pos0, n);
        feed_forward_block(s, l, n);
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
    if (pos < 0 || pos > c->seq_len - n_tokens)
        return l2_fail(err, LLAMA2_E_CONTEXT, "positions %d..%lld do not fit the context window of %d", pos,
                       (long long)pos + n_tokens - 1, c->seq_len);
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
