/*
 * Checkpoint loading: llama2.c's three file layouts, validated before use.
 *
 *   v0 (legacy): 7 int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads,
 *       vocab_size, seq_len), fp32 tensors in run.c's order, the two unused
 *       RoPE tables, then the classifier when vocab_size is negative.
 *   v1: "ak42" magic, version 1, the 7 ints, a shared-classifier byte,
 *       zero padding to 256 bytes; norms first, then the fp32 matrices.
 *   v2: as v1 plus an int32 group size; fp32 norms, then every matrix as
 *       int8 values followed by one fp32 scale per group (Q8_0).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "model.h"
#include "ops.h"

#define CHECKPOINT_MAGIC 0x616b3432u /* "ak42" read as a little-endian uint32 */
#define V0_HEADER_BYTES 28
#define V1_HEADER_BYTES 256

static int32_t read_i32(const unsigned char *p) {
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* ------------------------------------------------------------- header */

llama2_status l2_check_shape(const llama2_config *c, llama2_status status, const char *prefix, llama2_error *err) {
    const struct { const char *name; int value; } fields[] = {
        {"dim", c->dim},           {"hidden_dim", c->hidden_dim}, {"n_layers", c->n_layers},
        {"n_heads", c->n_heads},   {"n_kv_heads", c->n_kv_heads}, {"vocab_size", c->vocab_size},
        {"seq_len", c->seq_len},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (fields[i].value <= 0)
            return l2_fail(err, status, "%s%s is %d, must be positive", prefix, fields[i].name, fields[i].value);
    if (c->dim % c->n_heads != 0)
        return l2_fail(err, status, "%sdim %d is not divisible by n_heads %d", prefix, c->dim, c->n_heads);
    if (c->n_kv_heads > c->n_heads || c->n_heads % c->n_kv_heads != 0)
        return l2_fail(err, status, "%sn_heads %d is not a multiple of n_kv_heads %d", prefix, c->n_heads,
                       c->n_kv_heads);
    if ((c->dim / c->n_heads) % 2 != 0)
        return l2_fail(err, status, "%shead size %d (dim / n_heads) is odd", prefix, c->dim / c->n_heads);
    if (c->weight_type == LLAMA2_WEIGHTS_Q8_0) {
        if (c->group_size <= 0)
            return l2_fail(err, status, "%sgroup size %d, must be positive", prefix, c->group_size);
        if (c->dim % c->group_size != 0)
            return l2_fail(err, status, "%sgroup size %d does not divide dim %d", prefix, c->group_size, c->dim);
        if (c->hidden_dim % c->group_size != 0)
            return l2_fail(err, status, "%sgroup size %d does not divide hidden_dim %d", prefix, c->group_size,
                           c->hidden_dim);
    }
    return LLAMA2_OK;
}

static llama2_status parse_header(const unsigned char *data, size_t size, llama2_config *c, size_t *header_bytes,
                                  llama2_error *err) {
    memset(c, 0, sizeof *c);
    if (size < 4 || (read_i32(data) != (int32_t)CHECKPOINT_MAGIC && size < V0_HEADER_BYTES))
        return l2_fail(err, LLAMA2_E_FORMAT, "too short for a checkpoint header (%zu bytes)", size);
    if ((uint32_t)read_i32(data) == CHECKPOINT_MAGIC) {
        if (size < V1_HEADER_BYTES)
            return l2_fail(err, LLAMA2_E_FORMAT, "too short for a version 1/2 header (%zu of 256 bytes)", size);
        int version = read_i32(data + 4);
        if (version != 1 && version != 2)
            return l2_fail(err, LLAMA2_E_UNSUPPORTED, "unknown checkpoint version %d (this build reads 0, 1 and 2)",
                           version);
        int *dst[7] = {&c->dim, &c->hidden_dim, &c->n_layers, &c->n_heads, &c->n_kv_heads, &c->vocab_size,
                       &c->seq_len};
        for (int i = 0; i < 7; i++) *dst[i] = read_i32(data + 8 + 4 * i);
        unsigned shared = data[36];
        if (shared > 1)
            return l2_fail(err, LLAMA2_E_FORMAT, "bad header: shared-classifier flag is %u, must be 0 or 1", shared);
        c->shared_classifier = (int)shared;
        c->file_version = version;
        if (version == 2) {
            c->weight_type = LLAMA2_WEIGHTS_Q8_0;
            c->group_size = read_i32(data + 37);
        }
        *header_bytes = V1_HEADER_BYTES;
    } else {
        int *dst[7] = {&c->dim, &c->hidden_dim, &c->n_layers, &c->n_heads, &c->n_kv_heads, &c->vocab_size,
                       &c->seq_len};
        for (int i = 0; i < 7; i++) *dst[i] = read_i32(data + 4 * i);
        /* A negative vocabulary size marks a separate classifier. */
        c->shared_classifier = c->vocab_size > 0;
        if (c->vocab_size < 0 && c->vocab_size != INT_MIN) c->vocab_size = -c->vocab_size;
        c->file_version = 0;
        *header_bytes = V0_HEADER_BYTES;
    }
    return l2_check_shape(c, LLAMA2_E_FORMAT, "bad header: ", err);
}

/* ------------------------------------------------------------- layout */

/* Walks the file from the header on, handing out views of consecutive
 * tensors. Sizes are computed in size_t with overflow checks; a walk that
 * overflows or passes the end of the file is remembered and reported once. */
typedef struct cursor {
    const unsigned char *base; /* NULL while only measuring */
    size_t offset;
    int overflow;
} cursor;

static const void *take(cursor *cur, size_t count, size_t elem_size) {
    size_t bytes, end;
    if (!l2_mul_size(count, elem_size, &bytes) || !l2_add_size(cur->offset, bytes, &end)) {
        cur->overflow = 1;
        return NULL;
    }
    const void *p = cur->base ? cur->base + cur->offset : NULL;
    cur->offset = end;
    return p;
}

static size_t mul3(size_t a, size_t b, size_t c, int *overflow) {
    size_t ab, abc;
    if (!l2_mul_size(a, b, &ab) || !l2_mul_size(ab, c, &abc)) {
        *overflow = 1;
        return 0;
    }
    return abc;
}

static void take_f32_tensor(cursor *cur, tensor *t, int rows, int cols) {
    t->type = LLAMA2_WEIGHTS_F32;
    t->rows = rows;
    t->cols = cols;
    t->f32 = take(cur, mul3((size_t)rows, (size_t)cols, 1, &cur->overflow), sizeof(float));
}

static void take_q8_tensor(cursor *cur, tensor *t, int rows, int cols, int group_size) {
    size_t n = mul3((size_t)rows, (size_t)cols, 1, &cur->overflow);
    t->type = LLAMA2_WEIGHTS_Q8_0;
    t->rows = rows;
    t->cols = cols;
    t->group_size = group_size;
    t->q = take(cur, n, 1);
    t->scales = take(cur, n / (size_t)group_size, sizeof(float));
}

static void take_matrix(cursor *cur, const llama2_config *c, tensor *t, int rows, int cols) {
    if (c->weight_type == LLAMA2_WEIGHTS_Q8_0)
        take_q8_tensor(cur, t, rows, cols, c->group_size);
    else
        take_f32_tensor(cur, t, rows, cols);
}

/* Lays the tensors out over the file. With m->layers == NULL only measures. */
static size_t layout(llama2_model *m, cursor *cur, size_t header_bytes, int with_rope_tables) {
    const llama2_config *c = &m->config;
    const int dim = c->dim, hidden = c->hidden_dim, L = c->n_layers, kv_dim = m->kv_dim;
    layer_weights scratch;
    cur->offset = header_bytes;
#define LAYER(l) (m->layers ? &m->layers[(l)] : &scratch)
    if (c->file_version == 0) {
        take_f32_tensor(cur, &m->token_embedding, c->vocab_size, dim);
        for (int l = 0; l < L; l++) LAYER(l)->attention_norm = take(cur, (size_t)dim, sizeof(float));
        for (int l = 0; l < L; l++) take_f32_tensor(cur, &LAYER(l)->attention_query, dim, dim);
        for (int l = 0; l < L; l++) take_f32_tensor(cur, &LAYER(l)->attention_key, kv_dim, dim);
        for (int l = 0; l < L; l++) take_f32_tensor(cur, &LAYER(l)->attention_value, kv_dim, dim);
        for (int l = 0; l < L; l++) take_f32_tensor(cur, &LAYER(l)->attention_output, dim, dim);
        for (int l = 0; l < L; l++) LAYER(l)->ffn_norm = take(cur, (size_t)dim, sizeof(float));
        for (int l = 0; l < L; l++) take_f32_tensor(cur, &LAYER(l)->ffn_gate, hidden, dim);
        for (int l = 0; l < L; l++) take_f32_tensor(cur, &LAYER(l)->ffn_down, dim, hidden);
        for (int l = 0; l < L; l++) take_f32_tensor(cur, &LAYER(l)->ffn_up, hidden, dim);
        m->final_norm = take(cur, (size_t)dim, sizeof(float));
        if (with_rope_tables) take(cur, mul3((size_t)c->seq_len, (size_t)m->head_size, 1, &cur->overflow), sizeof(float));
        if (c->shared_classifier)
            m->classifier = m->token_embedding;
        else
            take_f32_tensor(cur, &m->classifier, c->vocab_size, dim);
    } else {
        for (int l = 0; l < L; l++) LAYER(l)->attention_norm = take(cur, (size_t)dim, sizeof(float));
        for (int l = 0; l < L; l++) LAYER(l)->ffn_norm = take(cur, (size_t)dim, sizeof(float));
        m->final_norm = take(cur, (size_t)dim, sizeof(float));
        take_matrix(cur, c, &m->token_embedding, c->vocab_size, dim);
        for (int l = 0; l < L; l++) take_matrix(cur, c, &LAYER(l)->attention_query, dim, dim);
        for (int l = 0; l < L; l++) take_matrix(cur, c, &LAYER(l)->attention_key, kv_dim, dim);
        for (int l = 0; l < L; l++) take_matrix(cur, c, &LAYER(l)->attention_value, kv_dim, dim);
        for (int l = 0; l < L; l++) take_matrix(cur, c, &LAYER(l)->attention_output, dim, dim);
        for (int l = 0; l < L; l++) take_matrix(cur, c, &LAYER(l)->ffn_gate, hidden, dim);
        for (int l = 0; l < L; l++) take_matrix(cur, c, &LAYER(l)->ffn_down, dim, hidden);
        for (int l = 0; l < L; l++) take_matrix(cur, c, &LAYER(l)->ffn_up, hidden, dim);
        if (c->shared_classifier)
            m->classifier = m->token_embedding;
        else
            take_matrix(cur, c, &m->classifier, c->vocab_size, dim);
    }
#undef LAYER
    return cur->offset;
}

/* Checks the file is exactly as long as the header implies; picks whether a
 * v0 file with a shared classifier carries the unused RoPE tables. */
/* The bytes the layout implies: measured with no layer and with one, then
 * fixed + n_layers * per_layer, so that a header claiming two billion layers
 * costs no more to check than one claiming two. Returns 0 on overflow. */
static int measure(const llama2_model *m, size_t header_bytes, int with_rope, size_t *total) {
    llama2_model probe = *m;
    probe.layers = NULL;
    cursor none = {0}, one = {0};
    probe.config.n_layers = 0;
    size_t fixed = layout(&probe, &none, header_bytes, with_rope);
    probe.config.n_layers = 1;
    size_t per_layer = layout(&probe, &one, header_bytes, with_rope) - fixed, layers;
    return !none.overflow && !one.overflow && l2_mul_size(per_layer, (size_t)m->config.n_layers, &layers) &&
           l2_add_size(fixed, layers, total);
}

static llama2_status check_size(llama2_model *m, size_t header_bytes, size_t file_size, int *with_rope,
                                llama2_error *err) {
    size_t full = 0;
    if (!measure(m, header_bytes, 1, &full))
        return l2_fail(err, LLAMA2_E_FORMAT, "bad header: the tensor sizes it implies overflow");
    *with_rope = 1;
    if (file_size == full) return LLAMA2_OK;
    if (m->config.file_version == 0 && m->config.shared_classifier) {
        size_t without = 0;
        if (measure(m, header_bytes, 0, &without) && file_size == without) {
            *with_rope = 0;
            return LLAMA2_OK;
        }
    }
    if (file_size < full)
        return l2_fail(err, LLAMA2_E_FORMAT, "truncated: the header implies %zu bytes, the file has %zu", full,
                       file_size);
    return l2_fail(err, LLAMA2_E_FORMAT, "%zu unexpected bytes after the last tensor (the header implies %zu bytes)",
                   file_size - full, full);
}

/* Every distinct weight matrix of the model, for passes over all of them. */
static size_t list_matrices(llama2_model *m, tensor **list) {
    size_t n = 0;
    list[n++] = &m->token_embedding;
    for (int l = 0; l < m->config.n_layers; l++) {
        layer_weights *w = &m->layers[l];
        tensor *ts[7] = {&w->attention_query, &w->attention_key, &w->attention_value, &w->attention_output,
                         &w->ffn_gate,        &w->ffn_down,      &w->ffn_up};
        for (int i = 0; i < 7; i++) list[n++] = ts[i];
    }
    if (!m->config.shared_classifier) list[n++] = &m->classifier;
    return n;
}

static int scales_misaligned(const tensor *t) { return (uintptr_t)t->scales % _Alignof(float) != 0; }

/* Q8_0 scales sit right after int8 data, so they may be unaligned for a
 * float; copy those tensors' scales into aligned memory. */
static llama2_status align_scales(llama2_model *m, llama2_error *err) {
    if (m->config.weight_type != LLAMA2_WEIGHTS_Q8_0) return LLAMA2_OK;
    tensor **list = malloc(((size_t)m->config.n_layers * 7 + 2) * sizeof *list);
    if (!list) return l2_fail(err, LLAMA2_E_NOMEM, "out of memory");
    size_t n = list_matrices(m, list), total = 0;
    for (size_t i = 0; i < n; i++)
        if (scales_misaligned(list[i])) total += (size_t)list[i]->rows * (size_t)list[i]->cols / (size_t)list[i]->group_size;
    llama2_status s = LLAMA2_OK;
    if (total > 0 && !(m->owned_scales = l2_alloc_aligned(total * sizeof(float)))) {
        s = l2_fail(err, LLAMA2_E_NOMEM, "cannot allocate %zu scales", total);
    } else if (total > 0) {
        float *dst = m->owned_scales;
        for (size_t i = 0; i < n; i++) {
            if (!scales_misaligned(list[i])) continue;
            size_t count = (size_t)list[i]->rows * (size_t)list[i]->cols / (size_t)list[i]->group_size;
            memcpy(dst, list[i]->scales, count * sizeof(float));
            list[i]->scales = dst;
            dst += count;
        }
        if (m->config.shared_classifier) m->classifier = m->token_embedding;
    }
    free(list);
    return s;
}

/* The slot-ordered copy of every Q8_0 product's scales (see tensor). */
static llama2_status build_slot_scales(llama2_model *m, llama2_error *err) {
    if (m->config.weight_type != LLAMA2_WEIGHTS_Q8_0) return LLAMA2_OK;
    tensor **list = malloc(((size_t)m->config.n_layers * 7 + 2) * sizeof *list);
    if (!list) return l2_fail(err, LLAMA2_E_NOMEM, "out of memory");
    size_t n = list_matrices(m, list), total = 0;
    /* The embedding table (first) is a product only as the classifier. */
    const size_t first = m->config.shared_classifier ? 0 : 1;
    for (size_t i = first; i < n; i++) {
        const tensor *t = list[i];
        total += (size_t)l2_q8_slots(t->rows) * 8 * (size_t)(t->cols / t->group_size);
    }
    llama2_status s = LLAMA2_OK;
    if (total > 0 && !(m->slot_scales = l2_alloc_aligned(total * sizeof(float)))) {
        s = l2_fail(err, LLAMA2_E_NOMEM, "cannot allocate %zu scales", total);
    } else {
        float *dst = m->slot_scales;
        for (size_t i = first; i < n; i++) {
            tensor *t = list[i];
            const int slots = l2_q8_slots(t->rows);
            const size_t groups = (size_t)(t->cols / t->group_size);
            if (slots == 0) continue;
            t->slots = slots;
            t->slot_scales = dst;
            for (int k = 0; k < slots; k++)
                for (int j = 0; j < 8; j++)
                    for (size_t g = 0; g < groups; g++)
                        dst[l2_q8_slot_scale(k, (int)g, j, (int)groups)] =
                            t->scales[((size_t)k + (size_t)j * (size_t)slots) * groups + g];
            dst += (size_t)slots * 8 * groups;
        }
        if (m->config.shared_classifier) m->classifier = m->token_embedding;
    }
    free(list);
    return s;
}

/* --------------------------------------------------------------- files */

static llama2_status read_whole(int fd, size_t size, void **out, llama2_error *err) {
    unsigned char *buf = l2_alloc_aligned(size);
    if (!buf) return l2_fail(err, LLAMA2_E_NOMEM, "cannot allocate %zu bytes to read the file", size);
    size_t done = 0;
    while (done < size) {
        ssize_t got = read(fd, buf + done, size - done);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) {
            l2_free_aligned(buf);
            return l2_fail(err, LLAMA2_E_IO, "read failed after %zu bytes: %s", done,
                           got < 0 ? strerror(errno) : "unexpected end of file");
        }
        done += (size_t)got;
    }
    *out = buf;
    return LLAMA2_OK;
}

llama2_status llama2_model_open(const char *path, const llama2_model_options *options, llama2_model **out,
                                llama2_error *err) {
    if (!out) return l2_fail(err, LLAMA2_E_INVALID, "model_open: no place to return the model");
    *out = NULL;
    if (!path) return l2_fail(err, LLAMA2_E_INVALID, "model_open: no path");
    int no_mmap = options && options->no_mmap;
    /* O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused
     * below as not a regular file); reads of regular files ignore it. */
    int fd = open(path, O_RDONLY | O_NONBLOCK);
    if (fd < 0) return l2_fail(err, LLAMA2_E_IO, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return l2_fail(err, LLAMA2_E_IO, "cannot stat: %s", strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return l2_fail(err, LLAMA2_E_IO, "not a regular file");
    }
    if (st.st_size == 0) {
        close(fd);
        return l2_fail(err, LLAMA2_E_FORMAT, "empty file");
    }
    if ((uintmax_t)st.st_size > SIZE_MAX) {
        close(fd);
        return l2_fail(err, LLAMA2_E_NOMEM, "file too large for this machine's address space");
    }
    size_t size = (size_t)st.st_size;

    llama2_model *m = calloc(1, sizeof *m);
    if (!m) {
        close(fd);
        return l2_fail(err, LLAMA2_E_NOMEM, "out of memory");
    }
    llama2_status s;
    const unsigned char *data;
    if (no_mmap) {
        s = read_whole(fd, size, &m->buffer, err);
        data = m->buffer;
    } else {
        void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            s = l2_fail(err, LLAMA2_E_IO, "cannot map: %s", strerror(errno));
        } else {
            m->mapping = map;
            m->mapping_size = size;
            s = LLAMA2_OK;
        }
        data = m->mapping;
    }
    close(fd);
    if (s != LLAMA2_OK) {
        llama2_model_close(m);
        return s;
    }

    size_t header_bytes = 0;
    int with_rope = 1;
    s = parse_header(data, size, &m->config, &header_bytes, err);
    if (s == LLAMA2_OK) {
        m->head_size = m->config.dim / m->config.n_heads;
        m->kv_dim = m->head_size * m->config.n_kv_heads;
        s = check_size(m, header_bytes, size, &with_rope, err);
    }
    if (s == LLAMA2_OK) {
        m->layers = calloc((size_t)m->config.n_layers, sizeof *m->layers);
        if (!m->layers) s = l2_fail(err, LLAMA2_E_NOMEM, "out of memory for %d layers", m->config.n_layers);
    }
    if (s == LLAMA2_OK) {
        cursor cur = {.base = data};
        layout(m, &cur, header_bytes, with_rope);
        s = align_scales(m, err);
        if (s == LLAMA2_OK) s = build_slot_scales(m, err);
    }
    if (s != LLAMA2_OK) {
        llama2_model_close(m);
        return s;
    }
    *out = m;
    return LLAMA2_OK;
}

void llama2_model_close(llama2_model *m) {
    if (!m) return;
    if (m->mapping) munmap(m->mapping, m->mapping_size);
    l2_free_aligned(m->buffer);
    l2_free_aligned(m->owned_scales);
    l2_free_aligned(m->slot_scales);
    free(m->layers);
    free(m);
}

const llama2_config *llama2_model_config(const llama2_model *m) { return &m->config; }

void model_embed(const llama2_model *m, int token, float *out) {
    const tensor *t = &m->token_embedding;
    const size_t dim = (size_t)t->cols;
    if (t->type == LLAMA2_WEIGHTS_F32) {
        memcpy(out, t->f32 + (size_t)token * dim, dim * sizeof(float));
        return;
    }
    const int8_t *q = t->q + (size_t)token * dim;
    const float *s = t->scales + (size_t)token * dim / (size_t)t->group_size;
    for (size_t i = 0; i < dim; i++) out[i] = (float)q[i] * s[i / (size_t)t->group_size];
}
