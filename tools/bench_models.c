/*
 * llama2-bench: the model shapes, their file sizes (which give the bandwidth
 * bound), and the cache of models written by l2_write_random_model, so that
 * they are made once and reused.
 */
#include "bench_models.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "write/checkpoint_writer.h"
#include "write/gguf_writer.h"
#include "text/tokenizer_internal.h"
#include "platform/checks.h"
#include "platform/platform.h"

/* Llama 3.2 1B: its real shape and vocabulary (tied embeddings: the
 * 128,256-row classifier is read whole every token), a context of 2048
 * (the bench's rows are short; its real one, 131072, would only make the
 * KV cache larger). Measured when --shapes names it. */
const shape SHAPES[MAX_SHAPES] = {
    {"stories15M", 288, 768, 6, 6, 6, 1024, 1, 32000, 1},
    {"stories42M", 512, 1376, 8, 8, 8, 1024, 1, 32000, 1},
    {"stories110M", 768, 2048, 12, 12, 12, 1024, 1, 32000, 1},
    {"tinyllama1.1B", 2048, 5632, 22, 32, 4, 2048, 0, 32000, 1},
    {"llama3.2-1B", 2048, 8192, 16, 32, 8, 2048, 1, 128256, 0},
};

const char *const TYPE_NAMES[N_TYPES] = {"f32", "q8", "q4_0", "q4_k_m"};

llama2_config shape_config(const shape *s, int type) {
    /* int8: the largest group size up to 64 dividing both widths (64, but
     * 48 for stories15M and 32 for stories42M's 1376). */
    llama2_config c = l2_random_model_config(s->dim, s->hidden_dim, s->n_layers, s->n_heads, s->n_kv_heads, s->vocab_size,
                                             s->seq_len, s->shared_classifier, type == TYPE_Q8 ? 2 : 1, 0);
    /* q4_0: the fp32 model's GGUF Q4_0 twin (every shape's widths are
     * whole blocks of 32). */
    if (type == TYPE_Q4_0) c.weight_type = LLAMA2_WEIGHTS_Q4_0;
    /* q4_k_m: its Q4_K_M twin (llama.cpp's mix and fallbacks, as
     * llama2-quantize writes it). */
    if (type == TYPE_Q4_K_M) c.weight_type = LLAMA2_WEIGHTS_Q4_K;
    return c;
}

static int is_gguf(int type) { return type == TYPE_Q4_0 || type == TYPE_Q4_K_M; }

/* A Q4_K_M file's bytes, tensor by tensor (its types vary), the embedding
 * table's apart; the fp32 norms included. */
static uint64_t q4_k_m_bytes(const llama2_config *c, uint64_t *embedding) {
    llama2_config v1 = *c;
    v1.file_version = 1;
    l2_tensor_walk walk = l2_tensor_walk_start(&v1, 0);
    l2_file_tensor f;
    uint64_t total = 0;
    *embedding = 0;
    while (l2_tensor_walk_next(&walk, &f)) {
        size_t values, bytes;
        l2_ggml_type_block(l2_gguf_written_type(L2_GGUF_MIX_Q4_K_M, f.kind, f.layer, f.cols, c), &values, &bytes);
        const uint64_t n = (uint64_t)f.rows * (f.cols / values) * bytes;
        total += n;
        if (f.kind == L2_TENSOR_TOKEN_EMBEDDING) *embedding = n;
    }
    return total;
}

/* Bytes a matrix of n values takes in the file. */
static uint64_t matrix_bytes(const llama2_config *c, uint64_t n) {
    if (c->weight_type == LLAMA2_WEIGHTS_Q8_0) return n + n / (uint64_t)c->group_size * 4;
    if (c->weight_type == LLAMA2_WEIGHTS_Q4_0) return n / 32 * 18;
    return n * 4;
}

static uint64_t embedding_bytes(const llama2_config *c) {
    uint64_t embedding;
    if (c->weight_type == LLAMA2_WEIGHTS_Q4_K) {
        q4_k_m_bytes(c, &embedding);
        return embedding;
    }
    return matrix_bytes(c, (uint64_t)c->vocab_size * (uint64_t)c->dim);
}

/* The size of a version 1 or 2 file of this shape: the 256-byte header, the
 * fp32 norms, then every matrix (a GGUF file: its header is larger). */
uint64_t file_bytes(const llama2_config *c) {
    uint64_t embedding;
    if (c->weight_type == LLAMA2_WEIGHTS_Q4_K) return 256 + q4_k_m_bytes(c, &embedding);
    const uint64_t d = (uint64_t)c->dim, h = (uint64_t)c->hidden_dim, L = (uint64_t)c->n_layers;
    const uint64_t kv = d / (uint64_t)c->n_heads * (uint64_t)c->n_kv_heads;
    uint64_t total = 256 + (2 * L + 1) * d * 4 + embedding_bytes(c);
    total += L * (2 * matrix_bytes(c, d * d) + 2 * matrix_bytes(c, kv * d) + 3 * matrix_bytes(c, h * d));
    if (!c->shared_classifier) total += embedding_bytes(c);
    return total;
}

/* Weight bytes read for one generated token: everything but the embedding
 * table, which is read only a row at a time -- unless it is also the
 * classifier, which reads all of it. */
uint64_t bytes_per_token(const llama2_config *c) {
    uint64_t total = file_bytes(c);
    return c->shared_classifier ? total : total - embedding_bytes(c);
}

static void model_path(const bench_context *ctx, char *buf, size_t size, const shape *s, int type,
                       const llama2_config *c) {
    const bench_options *o = &ctx->options;
    int n;
    if (type == TYPE_Q8)
        n = snprintf(buf, size, "%s/%s-q8g%d.bin", o->models_dir, s->name, c->group_size);
    else if (is_gguf(type))
        n = snprintf(buf, size, "%s/%s-%s.gguf", o->models_dir, s->name, TYPE_NAMES[type]);
    else
        n = snprintf(buf, size, "%s/%s-f32.bin", o->models_dir, s->name);
    if (n < 0 || (size_t)n >= size) bench_fail(ctx, "model folder path too long");
}

static int file_has_size(const char *path, uint64_t size) {
    int64_t bytes = -1;
    return l2_path_lookup(path, NULL, &bytes) == L2_PATH_FILE && (uint64_t)bytes == size;
}

/* A GGUF file of this shape: its tensors' bytes and a header (the
 * metadata, a tokenizer of made-up pieces, one a row, the padding) of less
 * than 4 MiB. */
static int gguf_has_size(const char *path, uint64_t tensors) {
    int64_t bytes = -1;
    return l2_path_lookup(path, NULL, &bytes) == L2_PATH_FILE && (uint64_t)bytes > tensors &&
           (uint64_t)bytes < tensors + (4u << 20);
}

/* The GGUF twin (of ggml type or mix `type`) of the fp32 model of config
 * c (written first beside it, then removed), with a tokenizer of made-up
 * pieces "p0", "p1"... */
static llama2_status write_gguf_model(const char *path, const llama2_config *c, uint64_t seed, uint32_t type,
                                      llama2_error *err) {
    char f32_path[4200];
    snprintf(f32_path, sizeof f32_path, "%s.f32-part", path);
    llama2_config fc = *c;
    fc.weight_type = LLAMA2_WEIGHTS_F32;
    llama2_status s = l2_write_random_model(f32_path, &fc, seed, L2_OUTPUT_FORCE, err);
    llama2_model *m = NULL;
    llama2_tokenizer *tok = NULL;
    const int vocab = c->vocab_size;
    char *text = malloc((size_t)vocab * 8);
    size_t *lengths = malloc((size_t)vocab * sizeof *lengths);
    float *scores = malloc((size_t)vocab * sizeof *scores);
    if (s == LLAMA2_OK && (!text || !lengths || !scores)) s = l2_fail(err, LLAMA2_E_NOMEM, "out of memory");
    if (s == LLAMA2_OK) {
        size_t at = 0;
        for (int t = 0; t < vocab; t++) {
            lengths[t] = (size_t)snprintf(text + at, (size_t)vocab * 8 - at, "p%d", t);
            at += lengths[t];
            scores[t] = (float)-t;
        }
        s = l2_tokenizer_from_pieces(vocab, text, lengths, scores, &tok, err);
    }
    if (s == LLAMA2_OK) s = llama2_model_open(f32_path, NULL, &m, err);
    if (s == LLAMA2_OK) s = l2_gguf_write_model(path, m, tok, type, NULL, L2_OUTPUT_FORCE, NULL, err);
    llama2_model_close(m);
    llama2_tokenizer_close(tok);
    free(text);
    free(lengths);
    free(scores);
    remove(f32_path);
    return s;
}

/* Writes the model unless a file of the right size is there. Returns 0 when
 * a q8 or q4_0 model cannot be written (its rows are skipped). */
static int ensure_model(const bench_context *ctx, const char *path, const llama2_config *c, uint64_t seed, int type) {
    uint64_t want = file_bytes(c);
    if (is_gguf(type) ? gguf_has_size(path, want) : file_has_size(path, want)) return 1;
    fprintf(stderr, "%s: writing %s (%.0f MiB)...", ctx->program, path, (double)want / (1 << 20));
    fflush(stderr);
    double t0 = llama2_time_seconds();
    llama2_error err;
    memset(&err, 0, sizeof err);
    const llama2_status written =
        is_gguf(type) ? write_gguf_model(path, c, seed, type == TYPE_Q4_0 ? L2_GGML_Q4_0 : L2_GGUF_MIX_Q4_K_M, &err)
                      : l2_write_random_model(path, c, seed, L2_OUTPUT_FORCE, &err);
    if (written != LLAMA2_OK) {
        fputc('\n', stderr);
        if (type != TYPE_F32) {
            fprintf(stderr, "%s: skipping %s rows: cannot write %s: %s\n", ctx->program, TYPE_NAMES[type], path,
                    err.message);
            return 0;
        }
        bench_fail(ctx, "cannot write %s: %s", path, err.message);
    }
    fprintf(stderr, " %.1f s\n", llama2_time_seconds() - t0);
    if (is_gguf(type) ? !gguf_has_size(path, want) : !file_has_size(path, want))
        bench_fail(ctx, "%s: the writer produced a file of another size than the expected %llu bytes", path,
            (unsigned long long)want);
    /* Its bytes are on the disk already (the writer syncs before it names
     * the file): no writeback runs during the timings. */
    return 1;
}

const char *default_models_dir(const bench_context *ctx, char *buf, size_t size) {
    const char *cache = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    int n;
    if (cache && cache[0] == '/') /* the XDG spec: a relative path is to be ignored */
        n = snprintf(buf, size, "%s/llama2", cache);
    else if (home && home[0])
        n = snprintf(buf, size, "%s/.cache/llama2", home);
    else
        n = snprintf(buf, size, "bench-models");
    if (n < 0 || (size_t)n >= size) bench_fail(ctx, "model folder path too long");
    return buf;
}

/* Creates the folder and those above it that are missing. */
static void make_folders(const bench_context *ctx, const char *path) {
    char partial[4096];
    if (snprintf(partial, sizeof partial, "%s", path) >= (int)sizeof partial)
        bench_fail(ctx, "model folder path too long");
    for (char *p = partial + 1;; p++) {
        if (*p != '/' && *p != '\0') continue;
        const char was = *p;
        *p = '\0';
        int e = l2_make_folder(partial);
        if (e != 0 && e != EEXIST) bench_fail(ctx, "cannot create %s: %s", partial, strerror(e));
        if (was == '\0') break;
        *p = was;
    }
}

void prepare_models(const bench_context *ctx, model_set *m) {
    const bench_options *o = &ctx->options;
    memset(m->usable, 0, sizeof m->usable);
    fprintf(stderr, "%s: models in %s (written once, then reused; --models DIR picks another folder)\n", ctx->program,
            o->models_dir);
    make_folders(ctx, o->models_dir);
    for (int s = 0; s < MAX_SHAPES; s++) {
        if (!o->shape_on[s]) continue;
        for (int t = 0; t < N_TYPES; t++) {
            if (!o->type_on[t]) continue;
            llama2_config c = shape_config(&SHAPES[s], t);
            model_path(ctx, m->paths[s][t], sizeof m->paths[s][t], &SHAPES[s], t, &c);
            m->usable[s][t] = ensure_model(ctx, m->paths[s][t], &c, 1000 + (uint64_t)s * 10 + (uint64_t)t, t);
        }
    }
}
