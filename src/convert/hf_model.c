/*
 * Reading a Hugging Face Llama directory. Every check happens in
 * l2_hf_model_open, so that a bad directory fails before a byte is written;
 * reading rows afterwards cannot fail (the tensors are mapped and in
 * bounds). Pages are released as soon as their rows are converted, so that
 * memory stays bounded by a chunk of rows, not by the model.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hf_model.h"
#include "platform/checks.h"
#include "printable.h"
#include "qk_order.h"

#define INDEX_NAME "model.safetensors.index.json"
#define SINGLE_NAME "model.safetensors"
#define COMPARE_ROWS 256

static char *join_path(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static const char *shape_text(const uint64_t *shape, int n_dims, char *buf, size_t cap) {
    size_t used = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < n_dims && used < cap; d++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%llu", d ? ", " : "", (unsigned long long)shape[d]);
    if (used < cap) snprintf(buf + used, cap - used, "]");
    return buf;
}

/* ------------------------------------------------------------ files */

/* A shard's name from the index: a plain file name in the directory. */
static int plain_file_name(const char *name) {
    return name[0] != '\0' && strchr(name, '/') == NULL && strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

static llama2_status open_file(l2_hf_model *m, const char *dir, const char *name, llama2_error *err) {
    char *path = join_path(dir, name);
    if (!path) return l2_fail(err, LLAMA2_E_NOMEM, "out of memory");
    llama2_status s = l2_safetensors_open(path, &m->files[m->n_files], err);
    free(path);
    if (s == LLAMA2_OK) m->n_files++;
    return s;
}

/* The shards the index lists, each opened once; every tensor the index
 * places in a shard must be in it. */
static llama2_status open_shards(l2_hf_model *m, const char *dir, const char *index_path, llama2_error *err) {
    json_error_t jerr;
    json_t *root = json_load_file(index_path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        char shown[96];
        return l2_fail(err, LLAMA2_E_FORMAT, "%s: not valid JSON: %s (line %d, column %d)", index_path,
                       l2_printable(jerr.text, shown, sizeof shown), jerr.line, jerr.column);
    }
    llama2_status s = LLAMA2_OK;
    const json_t *map = json_object_get(root, "weight_map");
    if (!json_is_object(map) || json_object_size(map) == 0) {
        json_decref(root);
        return l2_fail(err, LLAMA2_E_FORMAT, "%s: no weight_map object naming the files of the tensors", index_path);
    }
    m->files = calloc(json_object_size(map), sizeof *m->files);
    if (!m->files) {
        json_decref(root);
        return l2_fail(err, LLAMA2_E_NOMEM, "%s: out of memory", index_path);
    }
    const char *name;
    const json_t *file;
    char a[96], b[96];
    json_object_foreach((json_t *)map, name, file) {
        if (!json_is_string(file) || !plain_file_name(json_string_value(file))) {
            s = l2_fail(err, LLAMA2_E_FORMAT, "%s: %s: its file is not a file name in the folder", index_path,
                        l2_printable(name, a, sizeof a));
            break;
        }
        const char *shard = json_string_value(file);
        const l2_safetensors *holder = NULL;
        for (size_t i = 0; i < m->n_files && !holder; i++) {
            const char *base = strrchr(m->files[i].path, '/') + 1;
            if (strcmp(base, shard) == 0) holder = &m->files[i];
        }
        if (!holder) {
            if ((s = open_file(m, dir, shard, err)) != LLAMA2_OK) break;
            holder = &m->files[m->n_files - 1];
        }
        if (!l2_safetensors_find(holder, name)) {
            s = l2_fail(err, LLAMA2_E_FORMAT, "%s: %s: listed in %s but not in the file", holder->path,
                        l2_printable(name, a, sizeof a), l2_printable(INDEX_NAME, b, sizeof b));
            break;
        }
    }
    json_decref(root);
    return s;
}

/* ----------------------------------------------------------- tensors */

static l2_hf_source *source_of(const l2_hf_model *m, l2_tensor_kind kind, int layer) {
    return &m->sources[(size_t)kind * (size_t)m->config.shape.n_layers + (size_t)layer];
}

/* Places every tensor of every file, refusing what cannot be converted. */
static llama2_status place_tensors(l2_hf_model *m, llama2_error *err) {
    char a[96], b[96];
    for (size_t f = 0; f < m->n_files; f++) {
        const l2_safetensors *file = &m->files[f];
        for (size_t i = 0; i < file->n_tensors; i++) {
            const l2_st_tensor *t = &file->tensors[i];
            l2_tensor_kind kind;
            int layer;
            const char *why;
            if (!l2_hf_parse_name(t->name, m->config.shape.n_layers, &kind, &layer, &why)) {
                if (!why) continue;
                return l2_fail(err, LLAMA2_E_UNSUPPORTED, "%s: %s: %s", file->path,
                               l2_printable(t->name, a, sizeof a), why);
            }
            l2_hf_source *src = source_of(m, kind, layer);
            if (src->tensor)
                return l2_fail(err, LLAMA2_E_FORMAT, "%s: %s: also in %s", file->path,
                               l2_printable(t->name, a, sizeof a), l2_printable(src->file->path, b, sizeof b));
            src->file = file;
            src->tensor = t;
        }
    }
    return LLAMA2_OK;
}

/* Every needed tensor is there with the config's shape and a float dtype. */
static llama2_status check_tensors(l2_hf_model *m, const char *weights_path, llama2_error *err) {
    const llama2_config *c = &m->config.shape;
    char name[128], got[128], want[64];
    for (int k = 0; k < L2_HF_KINDS; k++) {
        const l2_tensor_kind kind = (l2_tensor_kind)k;
        if (kind == L2_TENSOR_CLASSIFIER && m->config.tie_word_embeddings) continue;
        uint64_t shape[2];
        int n_dims;
        l2_hf_shape(c, kind, shape, &n_dims);
        for (int l = 0; l < (l2_tensor_table[kind].per_layer ? c->n_layers : 1); l++) {
            const l2_hf_source *src = source_of(m, kind, l);
            l2_hf_name(kind, l, name, sizeof name);
            if (!src->tensor)
                return l2_fail(err, LLAMA2_E_FORMAT, "%s: %s is missing%s", weights_path, name,
                               kind == L2_TENSOR_CLASSIFIER ? " (config.json says tie_word_embeddings is false)" : "");
            const l2_st_tensor *t = src->tensor;
            if (t->dtype == L2_DTYPE_OTHER)
                return l2_fail(err, LLAMA2_E_UNSUPPORTED, "%s: %s: dtype %s is not supported (F32, F16 or BF16)",
                               src->file->path, name, t->dtype_name);
            if (t->n_dims != n_dims || t->shape[0] != shape[0] || (n_dims == 2 && t->shape[1] != shape[1]))
                return l2_fail(err, LLAMA2_E_FORMAT, "%s: %s: shape %s, config.json implies %s", src->file->path,
                               name, shape_text(t->shape, t->n_dims, got, sizeof got),
                               shape_text(shape, n_dims, want, sizeof want));
        }
    }
    return LLAMA2_OK;
}

/* export.py stores one table when lm_head equals the embedding table
 * (torch.equal: the same values, so -0 equals 0 and NaN nothing). */
static int classifier_is_embedding(const l2_hf_model *m) {
    if (m->config.tie_word_embeddings) return 1;
    const size_t vocab = (size_t)m->config.shape.vocab_size, dim = (size_t)m->config.shape.dim;
    float *x = malloc(COMPARE_ROWS * dim * sizeof *x), *y = malloc(COMPARE_ROWS * dim * sizeof *y);
    int equal = x && y;
    for (size_t row = 0; row < vocab && equal; row += COMPARE_ROWS) {
        size_t n = vocab - row < COMPARE_ROWS ? vocab - row : COMPARE_ROWS;
        l2_hf_model_rows(m, L2_TENSOR_TOKEN_EMBEDDING, 0, row, n, x);
        l2_hf_model_rows(m, L2_TENSOR_CLASSIFIER, 0, row, n, y);
        for (size_t i = 0; i < n * dim && equal; i++) equal = x[i] == y[i];
    }
    free(x);
    free(y);
    return equal;
}

llama2_status l2_hf_model_open(const char *dir, l2_hf_model *m, llama2_error *err) {
    memset(m, 0, sizeof *m);
    struct stat st;
    if (stat(dir, &st) != 0) return l2_fail(err, LLAMA2_E_IO, "%s: cannot open: %s", dir, strerror(errno));
    char *config_path = join_path(dir, "config.json"), *index_path = join_path(dir, INDEX_NAME),
         *single_path = join_path(dir, SINGLE_NAME);
    llama2_status s = LLAMA2_OK;
    if (!config_path || !index_path || !single_path) s = l2_fail(err, LLAMA2_E_NOMEM, "out of memory");
    if (s == LLAMA2_OK) s = l2_hf_config_read(config_path, &m->config, err);
    const char *weights_path = single_path;
    if (s == LLAMA2_OK) {
        if (file_exists(index_path)) {
            weights_path = index_path;
            s = open_shards(m, dir, index_path, err);
        } else if (file_exists(single_path)) {
            if (!(m->files = calloc(1, sizeof *m->files)))
                s = l2_fail(err, LLAMA2_E_NOMEM, "out of memory");
            else
                s = open_file(m, dir, SINGLE_NAME, err);
        } else {
            s = l2_fail(err, LLAMA2_E_IO, "%s: no %s or %s (only safetensors weights convert)", dir, SINGLE_NAME,
                        INDEX_NAME);
        }
    }
    if (s == LLAMA2_OK &&
        !(m->sources = calloc((size_t)L2_HF_KINDS * (size_t)m->config.shape.n_layers, sizeof *m->sources)))
        s = l2_fail(err, LLAMA2_E_NOMEM, "out of memory");
    if (s == LLAMA2_OK) s = place_tensors(m, err);
    if (s == LLAMA2_OK) s = check_tensors(m, weights_path, err);
    if (s == LLAMA2_OK) m->shared_classifier = classifier_is_embedding(m);
    free(config_path);
    free(index_path);
    free(single_path);
    if (s != LLAMA2_OK) l2_hf_model_close(m);
    return s;
}

void l2_hf_model_close(l2_hf_model *m) {
    for (size_t i = 0; i < m->n_files; i++) l2_safetensors_close(&m->files[i]);
    free(m->files);
    free(m->sources);
    memset(m, 0, sizeof *m);
}

void l2_hf_model_rows(const l2_hf_model *m, l2_tensor_kind kind, int layer, size_t row0, size_t n_rows,
                      float *out) {
    const l2_hf_source *src = source_of(m, kind, l2_tensor_table[kind].per_layer ? layer : 0);
    const l2_st_tensor *t = src->tensor;
    const size_t cols = (size_t)t->shape[t->n_dims - 1], row_bytes = cols * l2_dtype_size(t->dtype);
    const unsigned char *base = src->file->data + t->offset;
    size_t first = row0, last = row0 + n_rows; /* the span of source rows read */
    if (l2_hf_rope_rows(kind)) {
        const size_t head_size = (size_t)(m->config.shape.dim / m->config.shape.n_heads);
        for (size_t r = 0; r < n_rows; r++)
            l2_values_to_f32(t->dtype, base + l2_hf_row_of(row0 + r, head_size) * row_bytes, cols, out + r * cols);
        first = row0 / head_size * head_size;
        last = (last + head_size - 1) / head_size * head_size;
    } else {
        l2_values_to_f32(t->dtype, base + row0 * row_bytes, n_rows * cols, out);
    }
    l2_safetensors_release(src->file, t->offset + first * row_bytes, (last - first) * row_bytes);
}
