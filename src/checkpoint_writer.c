/*
 * Writing llama2.c checkpoints (the layouts are described in checkpoint.c):
 * random-weight models in any of the three formats, and the version 2
 * (Q8_0) export of an fp32 file as llama2.c's export.py writes it.
 *
 * Output goes to a temporary file beside the destination through fixed-size
 * buffers written with pwrite, and is renamed into place only once every
 * byte is written, so that a failure never leaves a partial file behind.
 * A Q8_0 matrix is its int8 values followed by its scales: the values and
 * the scales are produced together and go through two buffers, each aimed
 * at its own place in the file.
 */
#define _FILE_OFFSET_BITS 64

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint_writer.h"
#include "internal.h"
#include "model.h"

#define CHECKPOINT_MAGIC 0x616b3432u
#define V1_HEADER_BYTES 256
#define STREAM_BYTES ((size_t)4 << 20)  /* each output buffer */
#define SCRATCH_FLOATS ((size_t)1 << 18) /* random values generated per step */
#define MAX_GROUP 64

/* ------------------------------------------------------------ output */

/* A buffer that lands at file offset `pos` when flushed. */
typedef struct stream {
    unsigned char *buf;
    size_t len;
    off_t pos;
} stream;

typedef struct writer {
    int fd;
    char *tmp_path;
    int io_errno;  /* first write error, 0 while none */
    stream main;   /* everything, in file order */
    stream side;   /* the scales of the Q8_0 matrix being written */
    float *scratch;
    size_t scratch_floats;
} writer;

static void stream_flush(writer *w, stream *s) {
    size_t done = 0;
    while (done < s->len && !w->io_errno) {
        ssize_t n = pwrite(w->fd, s->buf + done, s->len - done, s->pos + (off_t)done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) w->io_errno = errno;
        else if (n == 0) w->io_errno = ENOSPC;
        else done += (size_t)n;
    }
    s->pos += (off_t)s->len;
    s->len = 0;
}

/* Room for at least one byte at the end of the buffer; returns how much. */
static size_t stream_room(writer *w, stream *s) {
    if (s->len == STREAM_BYTES) stream_flush(w, s);
    return STREAM_BYTES - s->len;
}

static void stream_put(writer *w, stream *s, const void *data, size_t n) {
    const unsigned char *p = data;
    while (n > 0) {
        size_t room = stream_room(w, s), k = n < room ? n : room;
        memcpy(s->buf + s->len, p, k);
        s->len += k;
        p += k;
        n -= k;
    }
}

static void stream_zeros(writer *w, stream *s, size_t n) {
    while (n > 0) {
        size_t room = stream_room(w, s), k = n < room ? n : room;
        memset(s->buf + s->len, 0, k);
        s->len += k;
        n -= k;
    }
}

static off_t stream_end(const stream *s) { return s->pos + (off_t)s->len; }

static llama2_status io_failure(const writer *w, llama2_error *err) {
    return l2_fail(err, LLAMA2_E_IO, "write failed: %s", strerror(w->io_errno));
}

static void writer_free(writer *w) {
    free(w->tmp_path);
    free(w->main.buf);
    free(w->side.buf);
    free(w->scratch);
    memset(w, 0, sizeof *w);
    w->fd = -1;
}

/* Creates a fresh temporary file next to `path` (mode 0666 less the umask);
 * on failure leaves nothing to clean up. */
static llama2_status writer_open(writer *w, const char *path, size_t scratch_floats, llama2_error *err) {
    memset(w, 0, sizeof *w);
    w->fd = -1;
    size_t len = strlen(path) + 64;
    w->tmp_path = malloc(len);
    w->main.buf = malloc(STREAM_BYTES);
    w->side.buf = malloc(STREAM_BYTES);
    w->scratch_floats = scratch_floats;
    w->scratch = scratch_floats ? malloc(scratch_floats * sizeof(float)) : NULL;
    if (!w->tmp_path || !w->main.buf || !w->side.buf || (scratch_floats && !w->scratch)) {
        writer_free(w);
        return l2_fail(err, LLAMA2_E_NOMEM, "out of memory for the output buffers");
    }
    static _Atomic unsigned counter;
    for (int attempt = 0; attempt < 100; attempt++) {
        snprintf(w->tmp_path, len, "%s.tmp-%ld-%u", path, (long)getpid(), atomic_fetch_add(&counter, 1u));
        w->fd = open(w->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (w->fd >= 0) return LLAMA2_OK;
        if (errno != EEXIST) break;
    }
    int e = errno;
    writer_free(w);
    return l2_fail(err, LLAMA2_E_IO, "cannot create: %s", strerror(e));
}

/* Drops the temporary file. */
static void writer_abort(writer *w) {
    if (w->fd >= 0) close(w->fd);
    if (w->tmp_path) unlink(w->tmp_path);
    writer_free(w);
}

/* Flushes, closes and renames the file into place; on any failure removes
 * it and reports why. */
static llama2_status writer_finish(writer *w, const char *path, llama2_error *err) {
    stream_flush(w, &w->main);
    llama2_status s = LLAMA2_OK;
    if (w->io_errno) s = io_failure(w, err);
    int fd = w->fd;
    w->fd = -1;
    if (close(fd) != 0 && s == LLAMA2_OK) s = l2_fail(err, LLAMA2_E_IO, "write failed: %s", strerror(errno));
    if (s == LLAMA2_OK && rename(w->tmp_path, path) != 0)
        s = l2_fail(err, LLAMA2_E_IO, "cannot rename the finished file into place: %s", strerror(errno));
    if (s != LLAMA2_OK) unlink(w->tmp_path);
    writer_free(w);
    return s;
}

static void put_i32(writer *w, int32_t v) { stream_put(w, &w->main, &v, sizeof v); }

/* v1/v2: magic, version, the shape, the shared byte, [group size,] zeros. */
static void put_header_v1(writer *w, const llama2_config *c, int version, int shared, int group_size) {
    put_i32(w, (int32_t)CHECKPOINT_MAGIC);
    put_i32(w, version);
    const int shape[7] = {c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->vocab_size, c->seq_len};
    for (int i = 0; i < 7; i++) put_i32(w, shape[i]);
    unsigned char flag = (unsigned char)(shared ? 1 : 0);
    stream_put(w, &w->main, &flag, 1);
    size_t used = 4 * 9 + 1;
    if (version == 2) {
        put_i32(w, group_size);
        used += 4;
    }
    stream_zeros(w, &w->main, V1_HEADER_BYTES - used);
}

/* --------------------------------------------------------- quantizing */

/* Quantizes n values (whole groups of group_size) as export.py does, in
 * float32: scale = max|w| / 127, q = round-half-even(w / scale), with an
 * all-zero group (or one whose scale underflows to 0) giving scale 0 and
 * q 0 (what torch's cast of 0/0 gives on x86). The values go to the main stream, the scales to the side stream.
 * Returns 0 when a value is not finite. */
static int quantize_values(writer *w, const float *v, size_t n, int group_size) {
    const size_t gs = (size_t)group_size;
    int ok = 1;
    for (size_t g = 0; g < n; g += gs) {
        const float *x = v + g;
        float wmax = 0.0f;
        for (size_t i = 0; i < gs; i++) {
            float a = fabsf(x[i]);
            if (a > wmax) wmax = a;
        }
        float scale = wmax / 127.0f;
        stream_put(w, &w->side, &scale, sizeof scale);
        for (size_t i = 0; i < gs;) {
            size_t room = stream_room(w, &w->main), k = gs - i < room ? gs - i : room;
            int8_t *q = (int8_t *)(w->main.buf + w->main.len);
            if (scale == 0.0f) {
                for (size_t j = 0; j < k; j++) {
                    if (!isfinite(x[i + j])) ok = 0;
                    q[j] = 0;
                }
            } else {
                for (size_t j = 0; j < k; j++) {
                    float r = rintf(x[i + j] / scale);
                    if (!(r >= -127.0f && r <= 127.0f)) {
                        /* A NaN or an infinity in the group; or a subnormal
                         * scale too coarse for its group: clamp that. */
                        if (isfinite(x[i + j]))
                            r = r < 0.0f ? -127.0f : 127.0f;
                        else
                            ok = 0, r = 0.0f;
                    }
                    q[j] = (int8_t)r;
                }
            }
            w->main.len += k;
            i += k;
        }
    }
    return ok;
}

/* Points the side stream at the end of a matrix of n values starting here. */
static void q8_begin(writer *w, size_t n) {
    w->side.pos = stream_end(&w->main) + (off_t)n;
    w->side.len = 0;
}

/* Moves the main stream past the matrix's scales. */
static void q8_end(writer *w, size_t n, int group_size) {
    stream_flush(w, &w->main);
    stream_flush(w, &w->side);
    w->main.pos += (off_t)(n / (size_t)group_size * sizeof(float));
}

/* ----------------------------------------------------- random weights */

/* SplitMix64 (Steele, Lea, Flood): a 64-bit counter through a mixer. */
static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t next_random(uint64_t *state) { return mix64(*state += 0x9E3779B97F4A7C15ull); }

/* Which tensor a random stream belongs to: each tensor draws from its own
 * stream, so every format holds the same weights whatever its order. */
enum {
    T_EMBEDDING = 1, T_ATT_NORM, T_WQ, T_WK, T_WV, T_WO, T_FFN_NORM, T_W1, T_W2, T_W3, T_FINAL_NORM, T_CLASSIFIER
};

typedef struct random_tensor {
    uint64_t state;
    float center, spread; /* values uniform in [center - spread, center + spread) */
} random_tensor;

static random_tensor random_matrix(uint64_t seed, int kind, int layer, int fan_in) {
    random_tensor r = {mix64(seed ^ mix64(((uint64_t)kind << 32) | (uint32_t)layer)), 0.0f,
                       sqrtf(3.0f / (float)fan_in)};
    return r;
}

static random_tensor random_norm(uint64_t seed, int kind, int layer) {
    random_tensor r = {mix64(seed ^ mix64(((uint64_t)kind << 32) | (uint32_t)layer)), 1.0f, 0.1f};
    return r;
}

static void random_fill(random_tensor *r, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) {
        /* 24 random bits as an exact float in [-1, 1). */
        float u = (float)(int32_t)(next_random(&r->state) >> 40) * (1.0f / 8388608.0f) - 1.0f;
        out[i] = r->center + u * r->spread;
    }
}

static void put_random_f32(writer *w, random_tensor r, size_t n) {
    while (n > 0 && !w->io_errno) {
        size_t k = n < w->scratch_floats ? n : w->scratch_floats;
        random_fill(&r, w->scratch, k);
        stream_put(w, &w->main, w->scratch, k * sizeof(float));
        n -= k;
    }
}

static void put_random_q8(writer *w, random_tensor r, size_t n, int group_size) {
    /* Whole groups per step: the scratch holds at least one group. */
    size_t step = w->scratch_floats / (size_t)group_size * (size_t)group_size;
    q8_begin(w, n);
    for (size_t done = 0; done < n && !w->io_errno;) {
        size_t k = n - done < step ? n - done : step;
        random_fill(&r, w->scratch, k);
        quantize_values(w, w->scratch, k, group_size);
        done += k;
    }
    q8_end(w, n, group_size);
}

static void put_random_matrix(writer *w, int version, random_tensor r, size_t n, int group_size) {
    if (version == 2)
        put_random_q8(w, r, n, group_size);
    else
        put_random_f32(w, r, n);
}

static llama2_status check_config(const llama2_config *c, int group_size, llama2_error *err) {
    if (c->file_version < 0 || c->file_version > 2)
        return l2_fail(err, LLAMA2_E_INVALID, "file version %d, must be 0, 1 or 2", c->file_version);
    llama2_config shape = *c;
    shape.weight_type = c->file_version == 2 ? LLAMA2_WEIGHTS_Q8_0 : LLAMA2_WEIGHTS_F32;
    shape.group_size = group_size;
    llama2_status s = l2_check_shape(&shape, LLAMA2_E_INVALID, "", err);
    if (s != LLAMA2_OK) return s;
    /* The whole file must be addressable: count its values in 64 bits
     * (every factor is below 2^31, so no product of two overflows). */
    const uint64_t dim = (uint64_t)c->dim, hidden = (uint64_t)c->hidden_dim, L = (uint64_t)c->n_layers;
    const uint64_t kv_dim = dim / (uint64_t)c->n_heads * (uint64_t)c->n_kv_heads;
    const uint64_t per_layer = 2 * dim * dim + 2 * dim * kv_dim + 3 * dim * hidden + 2 * dim;
    const uint64_t limit = (uint64_t)INT64_MAX / 8;
    if (per_layer > limit / L)
        return l2_fail(err, LLAMA2_E_INVALID, "the model is too large to write");
    uint64_t values = per_layer * L, extra = 2 * (uint64_t)c->vocab_size * dim + dim +
                                              (uint64_t)c->seq_len * (dim / (uint64_t)c->n_heads);
    if (values > limit - extra || (values + extra) * 4 > (uint64_t)SIZE_MAX)
        return l2_fail(err, LLAMA2_E_INVALID, "the model is too large to write");
    return LLAMA2_OK;
}

llama2_config l2_random_model_config(int dim, int hidden_dim, int n_layers, int n_heads, int n_kv_heads,
                                     int vocab_size, int seq_len, int shared_classifier, int file_version,
                                     int group_size) {
    llama2_config c = {0};
    c.dim = dim;
    c.hidden_dim = hidden_dim;
    c.n_layers = n_layers;
    c.n_heads = n_heads;
    c.n_kv_heads = n_kv_heads;
    c.vocab_size = vocab_size;
    c.seq_len = seq_len;
    c.shared_classifier = shared_classifier;
    c.file_version = file_version;
    c.group_size = file_version == 2 ? (group_size != 0 ? group_size : l2_default_group_size(dim, hidden_dim)) : 0;
    c.weight_type = file_version == 2 ? LLAMA2_WEIGHTS_Q8_0 : LLAMA2_WEIGHTS_F32;
    return c;
}

llama2_status l2_write_random_model(const char *path, const llama2_config *c, uint64_t seed, llama2_error *err) {
    if (!path || !c) return l2_fail(err, LLAMA2_E_INVALID, "no path or no config");
    int version = c->file_version;
    int gs = c->group_size;
    if (version == 2 && gs == 0) gs = l2_default_group_size(c->dim, c->hidden_dim);
    llama2_status s = check_config(c, gs, err);
    if (s != LLAMA2_OK) return s;

    const int dim = c->dim, hidden = c->hidden_dim, L = c->n_layers, shared = c->shared_classifier != 0;
    const size_t d = (size_t)dim, h = (size_t)hidden, kv_dim = d / (size_t)c->n_heads * (size_t)c->n_kv_heads;
    const size_t vocab = (size_t)c->vocab_size;
    size_t scratch = SCRATCH_FLOATS;
    if (version == 2 && (size_t)gs > scratch) scratch = (size_t)gs;
    writer w;
    s = writer_open(&w, path, scratch, err);
    if (s != LLAMA2_OK) return s;

    /* The matrices of one kind, every layer: kind, rows, cols. */
    const struct { int kind; size_t rows, cols; } per_layer[7] = {
        {T_WQ, d, d}, {T_WK, kv_dim, d}, {T_WV, kv_dim, d}, {T_WO, d, d},
        {T_W1, h, d}, {T_W2, d, h},      {T_W3, h, d},
    };
    if (version == 0) {
        put_i32(&w, dim);
        put_i32(&w, hidden);
        put_i32(&w, L);
        put_i32(&w, c->n_heads);
        put_i32(&w, c->n_kv_heads);
        put_i32(&w, shared ? c->vocab_size : -c->vocab_size);
        put_i32(&w, c->seq_len);
        put_random_f32(&w, random_matrix(seed, T_EMBEDDING, 0, dim), vocab * d);
        for (int l = 0; l < L; l++) put_random_f32(&w, random_norm(seed, T_ATT_NORM, l), d);
        for (int k = 0; k < 4; k++)
            for (int l = 0; l < L; l++)
                put_random_f32(&w, random_matrix(seed, per_layer[k].kind, l, (int)per_layer[k].cols),
                               per_layer[k].rows * per_layer[k].cols);
        for (int l = 0; l < L; l++) put_random_f32(&w, random_norm(seed, T_FFN_NORM, l), d);
        for (int k = 4; k < 7; k++)
            for (int l = 0; l < L; l++)
                put_random_f32(&w, random_matrix(seed, per_layer[k].kind, l, (int)per_layer[k].cols),
                               per_layer[k].rows * per_layer[k].cols);
        put_random_f32(&w, random_norm(seed, T_FINAL_NORM, 0), d);
        /* The RoPE tables llama2.c's run.c skips: seq_len * head_size / 2 each. */
        stream_zeros(&w, &w.main, (size_t)c->seq_len * (d / (size_t)c->n_heads) * sizeof(float));
        if (!shared) put_random_f32(&w, random_matrix(seed, T_CLASSIFIER, 0, dim), vocab * d);
    } else {
        put_header_v1(&w, c, version, shared, gs);
        for (int l = 0; l < L; l++) put_random_f32(&w, random_norm(seed, T_ATT_NORM, l), d);
        for (int l = 0; l < L; l++) put_random_f32(&w, random_norm(seed, T_FFN_NORM, l), d);
        put_random_f32(&w, random_norm(seed, T_FINAL_NORM, 0), d);
        put_random_matrix(&w, version, random_matrix(seed, T_EMBEDDING, 0, dim), vocab * d, gs);
        for (int k = 0; k < 7; k++)
            for (int l = 0; l < L; l++)
                put_random_matrix(&w, version, random_matrix(seed, per_layer[k].kind, l, (int)per_layer[k].cols),
                                  per_layer[k].rows * per_layer[k].cols, gs);
        if (!shared) put_random_matrix(&w, version, random_matrix(seed, T_CLASSIFIER, 0, dim), vocab * d, gs);
    }
    if (w.io_errno) {
        s = io_failure(&w, err);
        writer_abort(&w);
        return s;
    }
    return writer_finish(&w, path, err);
}

/* ----------------------------------------------------------- export */

int l2_default_group_size(int dim, int hidden_dim) {
    if (dim <= 0 || hidden_dim <= 0) return 0;
    for (int g = MAX_GROUP; g > 1; g--)
        if (dim % g == 0 && hidden_dim % g == 0) return g;
    return 1;
}

/* torch.equal on two fp32 tensors: equal values everywhere (so -0 equals
 * 0 and a NaN equals nothing). */
static int same_values(const float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!(a[i] == b[i])) return 0;
    return 1;
}

llama2_status l2_quantize_file(const char *in_path, const char *out_path, int group_size, llama2_error *err) {
    if (!in_path || !out_path) return l2_fail(err, LLAMA2_E_INVALID, "no input or no output path");
    if (group_size < 0) return l2_fail(err, LLAMA2_E_INVALID, "group size %d, must be positive", group_size);
    llama2_model *m = NULL;
    llama2_status s = llama2_model_open(in_path, NULL, &m, err);
    if (s != LLAMA2_OK) return s;
    const llama2_config config = m->config, *c = &config; /* outlives the model */
    if (c->weight_type != LLAMA2_WEIGHTS_F32) {
        llama2_model_close(m);
        return l2_fail(err, LLAMA2_E_INVALID, "already int8 (a version %d file with group size %d)",
                       c->file_version, c->group_size);
    }
    int gs = group_size ? group_size : l2_default_group_size(c->dim, c->hidden_dim);
    if (c->dim % gs != 0 || c->hidden_dim % gs != 0) {
        llama2_model_close(m);
        return l2_fail(err, LLAMA2_E_INVALID, "group size %d does not divide dim %d and hidden_dim %d", gs,
                       c->dim, c->hidden_dim);
    }
    const size_t d = (size_t)c->dim, vocab = (size_t)c->vocab_size;
    /* export.py stores one classifier when the two tables are equal. */
    int shared = c->shared_classifier ||
                 same_values(m->token_embedding.f32, m->classifier.f32, vocab * d);

    writer w;
    s = writer_open(&w, out_path, 0, err);
    if (s != LLAMA2_OK) {
        llama2_model_close(m);
        return s;
    }
    put_header_v1(&w, c, 2, shared, gs);
    const int L = c->n_layers;
    for (int l = 0; l < L; l++) stream_put(&w, &w.main, m->layers[l].attention_norm, d * sizeof(float));
    for (int l = 0; l < L; l++) stream_put(&w, &w.main, m->layers[l].ffn_norm, d * sizeof(float));
    stream_put(&w, &w.main, m->final_norm, d * sizeof(float));

    const size_t n_matrices = 1 + 7 * (size_t)L + (shared ? 0 : 1);
    int finite = 1;
    for (size_t i = 0; i < n_matrices && finite && !w.io_errno; i++) {
        const tensor *t;
        if (i == 0) {
            t = &m->token_embedding;
        } else if (i == n_matrices - 1 && !shared) {
            t = &m->classifier;
        } else {
            const layer_weights *lw = &m->layers[(i - 1) % (size_t)L];
            const tensor *kinds[7] = {&lw->attention_query, &lw->attention_key, &lw->attention_value,
                                      &lw->attention_output, &lw->ffn_gate, &lw->ffn_down, &lw->ffn_up};
            t = kinds[(i - 1) / (size_t)L];
        }
        size_t n = (size_t)t->rows * (size_t)t->cols;
        q8_begin(&w, n);
        finite = quantize_values(&w, t->f32, n, gs);
        q8_end(&w, n, gs);
    }
    llama2_model_close(m);
    if (!finite) {
        writer_abort(&w);
        return l2_fail(err, LLAMA2_E_FORMAT, "a weight is not a finite number: it cannot be quantized");
    }
    if (w.io_errno) {
        s = io_failure(&w, err);
        writer_abort(&w);
        return s;
    }
    return writer_finish(&w, out_path, err);
}
