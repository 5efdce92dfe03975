/*
 * Sessions: the run state of a model, sized and allocated once. A session
 * holds a KV-cache region per sequence ([n_layers][context][kv_dim] keys,
 * the same of values), the activations of one block of rows, the rotary
 * embedding tables, and how many positions each sequence has cached.
 * The evaluation calls check their rows, cut them into blocks and run each
 * through the forward pass (transformer.c).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "platform/checks.h"
#include "platform/float_math.h"
#include "platform/platform.h"
#include "session.h"

/* Attention scratch of one worker, in floats: the kernels' (context and
 * head_size are bounded by the loader, so this cannot overflow). */
static size_t att_scratch_floats(const llama2_model *m, int context) {
    return L2_ATTENTION_SCRATCH(context, m->head_size);
}

/* Attention chunks of a block of `batch` rows at most: a run of r rows
 * brings r * group queries in chunks of at most L2_ATTENTION_MAX_QUERIES,
 * one more chunk per run at worst. */
static int max_attention_chunks(const llama2_model *m, int batch) {
    const int group = m->config.n_heads / m->config.n_kv_heads;
    return batch + (int)(((long long)batch * group) / L2_ATTENTION_MAX_QUERIES) + 1;
}

/* Sizes of every buffer, in elements, checked for overflow. */
typedef struct session_sizes {
    size_t x, kv, hidden, att, logits, xq, xq_scales, xq_summaries, xq_sums, cache, rope;
    size_t total_bytes;
} session_sizes;

static int plan_sizes(const llama2_model *m, int batch, int context, int n_sequences, int n_workers,
                      session_sizes *z) {
    const llama2_config *c = &m->config;
    const size_t B = (size_t)batch;
    size_t widest = (size_t)(c->hidden_dim > c->dim ? c->hidden_dim : c->dim);
    size_t t, u, total = 0;
    int ok = l2_mul_size(B, (size_t)c->dim, &z->x) && l2_mul_size(B, (size_t)m->kv_dim, &z->kv) &&
             l2_mul_size(B, (size_t)c->hidden_dim, &z->hidden) &&
             l2_mul_size((size_t)n_workers, att_scratch_floats(m, context), &z->att) &&
             l2_mul_size(B, (size_t)c->vocab_size, &z->logits) &&
             l2_mul_size((size_t)n_sequences, (size_t)c->n_layers, &t) && l2_mul_size(t, (size_t)context, &u) &&
             l2_mul_size(u, (size_t)m->kv_dim, &z->cache) &&
             l2_mul_size((size_t)context, (size_t)(m->head_size / 2), &z->rope);
    if (!ok) return 0;
    z->xq = 0;
    z->xq_scales = 0;
    z->xq_summaries = 0;
    z->xq_sums = 0;
    if (c->weight_type == LLAMA2_WEIGHTS_Q8_0) {
        if (!l2_mul_size(B, widest, &z->xq)) return 0;
        z->xq_scales = z->xq / (size_t)c->group_size;
        if (m->kernels->matmul_q8_packed) z->xq_sums = z->xq_scales * sizeof(int32_t);
    } else if (c->weight_type != LLAMA2_WEIGHTS_F32) {
        /* ggml blocks: xq holds each input's Q8_0 blocks, then its Q8_K
         * blocks (session.h). */
        size_t q8_0, q8_k;
        if (!l2_mul_size(B, widest / L2_BLOCK * sizeof(l2_block_q8_0), &q8_0) || q8_0 > SIZE_MAX - 64 ||
            !l2_mul_size(B, widest / L2_SUPER_BLOCK * sizeof(l2_block_q8_K), &q8_k) ||
            !l2_add_size((q8_0 + 63) / 64 * 64, q8_k, &z->xq))
            return 0;
        if (!l2_mul_size(B, widest / L2_BLOCK * sizeof(l2_block_q8_0_summary), &z->xq_summaries)) return 0;
    }
    /* Everything in bytes: 4 of x, 2 of kv, 2 hidden, att, logits, 2
     * caches, 2 rope, the scales; then xq and the small tables. */
    size_t floats[] = {z->x, z->x, z->x, z->x, z->kv, z->kv, z->hidden, z->hidden, z->att, z->logits,
                       z->cache, z->cache, z->rope, z->rope, z->xq_scales};
    for (size_t i = 0; i < sizeof floats / sizeof floats[0]; i++) {
        size_t bytes;
        if (!l2_mul_size(floats[i], sizeof(float), &bytes) || !l2_add_size(total, bytes, &total)) return 0;
    }
    size_t small = B * sizeof(llama2_batch_row) + (size_t)max_attention_chunks(m, batch) * sizeof(l2_attention_chunk) +
                   2 * (size_t)n_sequences * sizeof(int);
    if (!l2_add_size(total, z->xq, &total) || !l2_add_size(total, z->xq_summaries, &total) ||
        !l2_add_size(total, z->xq_sums, &total) ||
        !l2_add_size(total, small, &total))
        return 0;
    z->total_bytes = total;
    return 1;
}

/* cos and sin of pos * theta^(-2j / head_size) (scaled: rope.c): computed
 * once with the same float expressions llama2.c evaluates at every step
 * (theta 10000), and glibc's powf, cosf and sinf on every C runtime
 * (float_math.h). */
static void fill_rope_tables(llama2_session *s) {
    const int half = s->model->head_size / 2;
    for (int j = 0; j < half; j++) {
        const float freq = l2_rope_frequency(s->model, j);
        for (int pos = 0; pos < s->context; pos++) {
            float val = (float)pos * freq;
            s->rope_cos[(size_t)pos * (size_t)half + (size_t)j] = l2_cosf(val);
            s->rope_sin[(size_t)pos * (size_t)half + (size_t)j] = l2_sinf(val);
        }
    }
}

llama2_status llama2_session_create(const llama2_model *m, const llama2_session_options *options,
                                    llama2_session **out, llama2_error *err) {
    *out = NULL;
    const llama2_config *c = &m->config;
    const llama2_session_options none = {0};
    if (!options) options = &none;
    if (options->context_length < 0)
        return l2_fail(err, LLAMA2_E_INVALID, "context length %d is negative", options->context_length);
    if (options->n_sequences < 0)
        return l2_fail(err, LLAMA2_E_INVALID, "sequence count %d is negative", options->n_sequences);
    const l2_backend_ops *backend = l2_backend_find(options->backend);
    if (!backend)
        return l2_fail(err, LLAMA2_E_UNSUPPORTED, "backend '%s' is not compiled into this build", options->backend);
    int context = options->context_length == 0 || options->context_length > c->seq_len ? c->seq_len
                                                                                          : options->context_length;
    int n_sequences = options->n_sequences == 0 ? 1 : options->n_sequences;
    int batch = options->batch_size > 0 ? options->batch_size : LLAMA2_DEFAULT_BATCH;
    /* A block never needs more rows than all the sequences' positions. */
    if ((long long)batch > (long long)context * n_sequences) batch = (int)((long long)context * n_sequences);
    llama2_threadpool *pool = options->pool;
    int n_workers = llama2_threadpool_size(pool);

    session_sizes z;
    if (!plan_sizes(m, batch, context, n_sequences, n_workers, &z))
        return l2_fail(err, LLAMA2_E_NOMEM, "the run state's size overflows (%d sequences of %d positions, %d layers)",
                       n_sequences, context, c->n_layers);
    size_t memory = l2_physical_memory();
    if (z.total_bytes > memory)
        return l2_fail(err, LLAMA2_E_NOMEM, "the KV cache and buffers need %.1f GiB, this machine has %.1f GiB",
                       (double)z.total_bytes / (1 << 30), (double)memory / (1 << 30));

    llama2_session *s = calloc(1, sizeof *s);
    if (!s) return l2_fail(err, LLAMA2_E_NOMEM, "out of memory");
    s->model = m;
    s->kernels = m->kernels;
    s->backend = backend;
    s->pool = pool;
    s->n_workers = n_workers;
    s->batch = batch;
    s->context = context;
    s->n_sequences = n_sequences;
    s->att_floats = att_scratch_floats(m, context);
    s->max_chunks = max_attention_chunks(m, batch);
    float **f32_buffers[] = {&s->x,   &s->xb,     &s->xb2,       &s->q,           &s->k,
                             &s->v,   &s->hb,     &s->hb2,       &s->att,         &s->logits,
                             &s->key_cache, &s->value_cache, &s->rope_cos, &s->rope_sin, &s->xq_scales};
    size_t f32_sizes[] = {z.x, z.x, z.x, z.x, z.kv, z.kv, z.hidden, z.hidden, z.att, z.logits,
                          z.cache, z.cache, z.rope, z.rope, z.xq_scales};
    int ok = 1;
    for (size_t i = 0; i < sizeof f32_sizes / sizeof f32_sizes[0]; i++)
        ok = ok && (*f32_buffers[i] = l2_aligned_zeroed(f32_sizes[i] * sizeof(float))) != NULL;
    ok = ok && (s->xq = l2_aligned_zeroed(z.xq)) != NULL;
    ok = ok && (z.xq_summaries == 0 || (s->xq_summaries = l2_aligned_zeroed(z.xq_summaries)) != NULL);
    ok = ok && (z.xq_sums == 0 || (s->xq_sums = l2_aligned_zeroed(z.xq_sums)) != NULL);
    ok = ok && (s->rows = calloc((size_t)batch, sizeof *s->rows)) != NULL;
    ok = ok && (s->chunks = calloc((size_t)s->max_chunks, sizeof *s->chunks)) != NULL;
    ok = ok && (s->lengths = calloc((size_t)n_sequences, sizeof *s->lengths)) != NULL;
    ok = ok && (s->expected = calloc((size_t)n_sequences, sizeof *s->expected)) != NULL;
    if (!ok) {
        llama2_session_destroy(s);
        return l2_fail(err, LLAMA2_E_NOMEM, "cannot allocate the run state (%.1f MiB)",
                       (double)z.total_bytes / (1 << 20));
    }
    for (int i = 0; i < n_sequences; i++) s->expected[i] = -1;
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
    void *buffers[] = {s->x,      s->xb,        s->xb2,         s->q,        s->k,        s->v,
                       s->hb,     s->hb2,       s->att,         s->logits,   s->key_cache, s->value_cache,
                       s->rope_cos, s->rope_sin, s->xq_scales,  s->xq,        s->xq_summaries, s->xq_sums};
    for (size_t i = 0; i < sizeof buffers / sizeof buffers[0]; i++) l2_aligned_free(buffers[i]);
    free(s->rows);
    free(s->chunks);
    free(s->lengths);
    free(s->expected);
    free(s);
}

const llama2_model *llama2_session_model(const llama2_session *s) { return s->model; }

int llama2_session_context_length(const llama2_session *s) { return s->context; }

int llama2_session_sequences(const llama2_session *s) { return s->n_sequences; }

/* ------------------------------------------------------------ sequences */

static llama2_status check_sequence(const llama2_session *s, int sequence, llama2_error *err) {
    if (sequence < 0 || sequence >= s->n_sequences)
        return l2_fail(err, LLAMA2_E_INVALID, "sequence %d does not exist (the session has %d)", sequence,
                       s->n_sequences);
    return LLAMA2_OK;
}

int llama2_session_sequence_length(const llama2_session *s, int sequence) {
    return sequence >= 0 && sequence < s->n_sequences ? s->lengths[sequence] : 0;
}

llama2_status llama2_session_clear_sequence(llama2_session *s, int sequence, llama2_error *err) {
    llama2_status st = check_sequence(s, sequence, err);
    if (st != LLAMA2_OK) return st;
    s->lengths[sequence] = 0;
    return LLAMA2_OK;
}

llama2_status llama2_session_trim_sequence(llama2_session *s, int sequence, int n_positions, llama2_error *err) {
    llama2_status st = check_sequence(s, sequence, err);
    if (st != LLAMA2_OK) return st;
    if (n_positions < 0 || n_positions > s->lengths[sequence])
        return l2_fail(err, LLAMA2_E_INVALID, "cannot keep %d positions of sequence %d: it has %d", n_positions,
                       sequence, s->lengths[sequence]);
    s->lengths[sequence] = n_positions;
    return LLAMA2_OK;
}

size_t llama2_session_sequence_bytes(const llama2_session *s, int n_positions) {
    return n_positions <= 0 ? 0
                            : 2 * (size_t)s->model->config.n_layers * (size_t)n_positions * (size_t)s->model->kv_dim *
                                  sizeof(float);
}

/* The host's copy of the cache is the cache only where the backend does
 * not keep its own (a backend that copies sequences itself does). */
static llama2_status check_host_cache(const llama2_session *s, llama2_error *err) {
    if (s->backend->copy_sequence)
        return l2_fail(err, LLAMA2_E_UNSUPPORTED, "the %s backend keeps the cache on its device: it cannot be "
                                                   "read or written from memory",
                       s->backend->name);
    return LLAMA2_OK;
}

llama2_status llama2_session_read_sequence(const llama2_session *s, int sequence, int n_positions, void *buf,
                                           llama2_error *err) {
    llama2_status st = check_sequence(s, sequence, err);
    if (st == LLAMA2_OK) st = check_host_cache(s, err);
    if (st != LLAMA2_OK) return st;
    if (n_positions < 0 || n_positions > s->lengths[sequence])
        return l2_fail(err, LLAMA2_E_INVALID, "cannot read %d positions of sequence %d: it has %d", n_positions,
                       sequence, s->lengths[sequence]);
    const size_t bytes = (size_t)n_positions * (size_t)s->model->kv_dim * sizeof(float);
    char *out = buf;
    for (int l = 0; l < s->model->config.n_layers; l++) {
        memcpy(out, s->key_cache + l2_cache_row(s, sequence, l, 0), bytes);
        memcpy(out + bytes, s->value_cache + l2_cache_row(s, sequence, l, 0), bytes);
        out += 2 * bytes;
    }
    return LLAMA2_OK;
}

llama2_status llama2_session_write_sequence(llama2_session *s, int sequence, int n_positions, const void *buf,
                                            llama2_error *err) {
    llama2_status st = check_sequence(s, sequence, err);
    if (st == LLAMA2_OK) st = check_host_cache(s, err);
    if (st != LLAMA2_OK) return st;
    if (n_positions < 0 || n_positions > s->context)
        return l2_fail(err, LLAMA2_E_INVALID, "cannot write %d positions into sequence %d: the context holds %d",
                       n_positions, sequence, s->context);
    const size_t bytes = (size_t)n_positions * (size_t)s->model->kv_dim * sizeof(float);
    const char *in = buf;
    for (int l = 0; l < s->model->config.n_layers; l++) {
        memcpy(s->key_cache + l2_cache_row(s, sequence, l, 0), in, bytes);
        memcpy(s->value_cache + l2_cache_row(s, sequence, l, 0), in + bytes, bytes);
        in += 2 * bytes;
    }
    s->lengths[sequence] = n_positions;
    return LLAMA2_OK;
}

llama2_status llama2_session_copy_sequence(llama2_session *s, int dst, int src, int n_positions, llama2_error *err) {
    llama2_status st = check_sequence(s, dst, err);
    if (st == LLAMA2_OK) st = check_sequence(s, src, err);
    if (st != LLAMA2_OK) return st;
    if (n_positions < 0 || n_positions > s->lengths[src])
        return l2_fail(err, LLAMA2_E_INVALID, "cannot copy %d positions of sequence %d: it has %d", n_positions, src,
                       s->lengths[src]);
    if (dst == src) {
        s->lengths[dst] = n_positions;
        return LLAMA2_OK;
    }
    if (s->backend->copy_sequence) {
        llama2_error berr = {0};
        if (s->backend->copy_sequence(s->backend_state, s, dst, src, n_positions, &berr) == L2_BACKEND_FAILED) {
            s->lengths[dst] = 0;
            return l2_backend_failure(&berr, err);
        }
    }
    const size_t bytes = (size_t)n_positions * (size_t)s->model->kv_dim * sizeof(float);
    for (int l = 0; l < s->model->config.n_layers; l++) {
        memcpy(s->key_cache + l2_cache_row(s, dst, l, 0), s->key_cache + l2_cache_row(s, src, l, 0), bytes);
        memcpy(s->value_cache + l2_cache_row(s, dst, l, 0), s->value_cache + l2_cache_row(s, src, l, 0), bytes);
    }
    s->lengths[dst] = n_positions;
    return LLAMA2_OK;
}

/* ----------------------------------------------------------- evaluation */

/* Runs rows[0..n_rows) (checked) in blocks; on success each sequence has
 * cached up to its last row, on a failure only up to its first. */
static llama2_status run_rows(llama2_session *s, const llama2_batch_row *rows, int n_rows, float *logits,
                              llama2_error *err) {
    const size_t vocab = (size_t)s->model->config.vocab_size;
    for (int done = 0; done < n_rows;) {
        const int n = n_rows - done < s->batch ? n_rows - done : s->batch;
        llama2_status st = l2_forward_block(s, rows + done, n, logits, err);
        if (st != LLAMA2_OK) {
            for (int i = 0; i < n_rows; i++)
                if (s->lengths[rows[i].sequence] > rows[i].position) s->lengths[rows[i].sequence] = rows[i].position;
            return st;
        }
        for (int b = 0; b < n; b++) {
            s->lengths[rows[done + b].sequence] = rows[done + b].position + 1;
            if (rows[done + b].logits) logits += vocab;
        }
        done += n;
    }
    return LLAMA2_OK;
}

static llama2_status check_tokens(const llama2_session *s, const int *tokens, int n_tokens, int pos,
                                  llama2_error *err) {
    const llama2_config *c = &s->model->config;
    if (n_tokens <= 0) return l2_fail(err, LLAMA2_E_INVALID, "no tokens to evaluate");
    if (pos < 0 || pos > s->context - n_tokens)
        return l2_fail(err, LLAMA2_E_CONTEXT, "positions %d..%lld do not fit the context window of %d", pos,
                       (long long)pos + n_tokens - 1, s->context);
    for (int i = 0; i < n_tokens; i++)
        if (tokens[i] < 0 || tokens[i] >= c->vocab_size)
            return l2_fail(err, LLAMA2_E_INVALID, "token id %d is outside the vocabulary (%d)", tokens[i],
                           c->vocab_size);
    return LLAMA2_OK;
}

/* The rows of tokens[0..n) of sequence 0 from pos, logits for the last
 * `with_logits` of them, into s->rows. */
static void sequence0_rows(llama2_session *s, const int *tokens, int n, int pos, int with_logits) {
    for (int b = 0; b < n; b++) s->rows[b] = (llama2_batch_row){0, pos + b, tokens[b], b >= n - with_logits};
}

llama2_status llama2_session_eval(llama2_session *s, const int *tokens, int n_tokens, int pos, float **logits,
                                  llama2_error *err) {
    llama2_status st = check_tokens(s, tokens, n_tokens, pos, err);
    if (st != LLAMA2_OK) return st;
    for (int done = 0; done < n_tokens;) {
        const int n = n_tokens - done < s->batch ? n_tokens - done : s->batch;
        sequence0_rows(s, tokens + done, n, pos + done, done + n == n_tokens ? 1 : 0);
        st = run_rows(s, s->rows, n, s->logits, err);
        if (st != LLAMA2_OK) return st;
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
        const int n = n_tokens - done < s->batch ? n_tokens - done : s->batch;
        sequence0_rows(s, tokens + done, n, pos + done, n);
        st = run_rows(s, s->rows, n, s->logits, err);
        if (st != LLAMA2_OK) return st;
        for (int b = 0; b < n; b++) on_logits(user, done + b, s->logits + (size_t)b * vocab);
        done += n;
    }
    return LLAMA2_OK;
}

/* Every row valid, and every sequence continued without a gap (see
 * llama2.h); s->expected holds -1 for every sequence before and after. */
static llama2_status check_rows(llama2_session *s, const llama2_batch_row *rows, int n_rows, const float *logits,
                                llama2_error *err) {
    const llama2_config *c = &s->model->config;
    if (!rows || n_rows <= 0) return l2_fail(err, LLAMA2_E_INVALID, "no rows to evaluate");
    llama2_status st = LLAMA2_OK;
    int i = 0, wanted = 0;
    for (; i < n_rows && st == LLAMA2_OK; i++) {
        const llama2_batch_row *r = &rows[i];
        if (r->sequence < 0 || r->sequence >= s->n_sequences) {
            st = l2_fail(err, LLAMA2_E_INVALID, "row %d: sequence %d does not exist (the session has %d)", i,
                         r->sequence, s->n_sequences);
            break;
        }
        if (r->token < 0 || r->token >= c->vocab_size)
            st = l2_fail(err, LLAMA2_E_INVALID, "row %d: token id %d is outside the vocabulary (%d)", i, r->token,
                         c->vocab_size);
        else if (r->position < 0 || r->position >= s->context)
            st = l2_fail(err, LLAMA2_E_CONTEXT, "row %d: position %d does not fit the context window of %d", i,
                         r->position, s->context);
        else if (s->expected[r->sequence] < 0 && r->position > s->lengths[r->sequence])
            st = l2_fail(err, LLAMA2_E_INVALID, "row %d: position %d of sequence %d leaves a gap (it has %d cached)",
                         i, r->position, r->sequence, s->lengths[r->sequence]);
        else if (s->expected[r->sequence] >= 0 && r->position != s->expected[r->sequence])
            st = l2_fail(err, LLAMA2_E_INVALID, "row %d: position %d of sequence %d does not follow its previous row's %d",
                         i, r->position, r->sequence, s->expected[r->sequence] - 1);
        s->expected[r->sequence] = r->position + 1;
        wanted += r->logits != 0;
    }
    for (int j = 0; j < i && j < n_rows; j++)
        if (rows[j].sequence >= 0 && rows[j].sequence < s->n_sequences) s->expected[rows[j].sequence] = -1;
    if (st == LLAMA2_OK && wanted > 0 && !logits)
        st = l2_fail(err, LLAMA2_E_INVALID, "%d rows ask for logits and there is no buffer for them", wanted);
    return st;
}

llama2_status llama2_session_eval_batch(llama2_session *s, const llama2_batch_row *rows, int n_rows, float *logits,
                                        llama2_error *err) {
    llama2_status st = check_rows(s, rows, n_rows, logits, err);
    if (st != LLAMA2_OK) return st;
    return run_rows(s, rows, n_rows, logits, err);
}
