/*
 * Checkpoint loading: a file in any of llama2.c's three layouts (the header
 * and the table of tensors in checkpoint_format.c, docs/FORMAT.md), checked
 * to be exactly as long as its header implies, then viewed in place.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint_format.h"
#include "file_kind.h"
#include "platform/checks.h"
#include "model.h"
#include "platform/platform.h"
#include "gguf.h"
#include "text/tokenizer_internal.h"

/* ------------------------------------------------------------- layout */

tensor_place l2_model_place(llama2_model *m, l2_tensor_kind kind, int layer) {
    layer_weights *w = &m->layers[layer];
    tensor_place p = {NULL, NULL};
    switch (kind) {
    case L2_TENSOR_TOKEN_EMBEDDING: p.matrix = &m->token_embedding; break;
    case L2_TENSOR_ATTENTION_NORM: p.vector = &w->attention_norm; break;
    case L2_TENSOR_ATTENTION_QUERY: p.matrix = &w->attention_query; break;
    case L2_TENSOR_ATTENTION_KEY: p.matrix = &w->attention_key; break;
    case L2_TENSOR_ATTENTION_VALUE: p.matrix = &w->attention_value; break;
    case L2_TENSOR_ATTENTION_OUTPUT: p.matrix = &w->attention_output; break;
    case L2_TENSOR_FFN_NORM: p.vector = &w->ffn_norm; break;
    case L2_TENSOR_FFN_GATE: p.matrix = &w->ffn_gate; break;
    case L2_TENSOR_FFN_DOWN: p.matrix = &w->ffn_down; break;
    case L2_TENSOR_FFN_UP: p.matrix = &w->ffn_up; break;
    case L2_TENSOR_FINAL_NORM: p.vector = &m->final_norm; break;
    case L2_TENSOR_CLASSIFIER: p.matrix = &m->classifier; break;
    case L2_TENSOR_ROPE_COS: p.vector = &m->rope_cos; break;
    case L2_TENSOR_ROPE_SIN: p.vector = &m->rope_sin; break;
    case L2_TENSOR_KINDS: break;
    }
    return p;
}

/* Points every tensor of the model at its bytes in the file, walking the
 * format table; the file's size has been checked against it. */
static void lay_out(llama2_model *m, const unsigned char *data, size_t header_bytes, int with_rope) {
    const llama2_config *c = &m->config;
    size_t offset = header_bytes;
    l2_tensor_walk walk = l2_tensor_walk_start(c, with_rope);
    l2_file_tensor f;
    while (l2_tensor_walk_next(&walk, &f)) {
        const unsigned char *p = data + offset;
        tensor_place place = l2_model_place(m, f.kind, f.layer);
        if (place.vector) {
            *place.vector = (const float *)p;
        } else {
            tensor *t = place.matrix;
            t->type = f.type;
            t->rows = (int)f.rows;
            t->cols = (int)f.cols;
            if (f.type == LLAMA2_WEIGHTS_F32) {
                t->f32 = (const float *)p;
            } else {
                t->group_size = c->group_size;
                t->q = (const int8_t *)p;
                t->scales = (const float *)(p + f.rows * f.cols);
            }
        }
        offset += f.bytes;
    }
    if (c->shared_classifier) m->classifier = m->token_embedding;
}

const float *l2_model_f32(const llama2_model *m, l2_tensor_kind kind, int layer) {
    /* place_of only computes addresses: the model is not changed. */
    tensor_place place = l2_model_place((llama2_model *)m, kind, layer);
    return place.vector ? *place.vector : place.matrix->f32;
}

/* Checks the file is exactly as long as the header implies; picks whether a
 * v0 file with a shared classifier carries the unused RoPE tables. */
static llama2_status check_size(const llama2_config *c, size_t file_size, int *with_rope, llama2_error *err) {
    size_t full = 0;
    if (!l2_checkpoint_bytes(c, 1, &full))
        return l2_fail(err, LLAMA2_E_FORMAT, "bad header: the tensor sizes it implies overflow");
    *with_rope = 1;
    if (file_size == full) return LLAMA2_OK;
    if (c->file_version == 0 && c->shared_classifier) {
        size_t without = 0;
        if (l2_checkpoint_bytes(c, 0, &without) && file_size == without) {
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
    if (total > 0 && !(m->owned_scales = l2_aligned_zeroed(total * sizeof(float)))) {
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

/* A file whose header does not decode: when it is a file of another kind,
 * says which, and what to do with it, instead of the header's complaint. */
static llama2_status not_a_checkpoint(const unsigned char *data, size_t size, llama2_status s, llama2_error *err) {
    const l2_file_kind kind = l2_file_kind_of(data, size);
    const char *name = l2_file_kind_name(kind);
    switch (kind) {
    case L2_FILE_TOKENIZER_BIN:
        return l2_fail(err, LLAMA2_E_FORMAT,
                       "%s, not a model: give the model's checkpoint, and this file as the tokenizer (-z)", name);
    case L2_FILE_SENTENCEPIECE:
        return l2_fail(err, LLAMA2_E_FORMAT,
                       "%s, not a model: give the model's checkpoint, and as the tokenizer (-z) the tokenizer.bin "
                       "that `llama2-convert tokenizer.model tokenizer.bin` makes of this file",
                       name);
    case L2_FILE_SAFETENSORS:
    case L2_FILE_JSON:
        return l2_fail(err, LLAMA2_E_FORMAT,
                       "%s, not a llama2.c checkpoint: `llama2-convert FOLDER model.bin` makes one of the Hugging "
                       "Face model folder holding it",
                       name);
    case L2_FILE_ZIP:
        return l2_fail(err, LLAMA2_E_FORMAT,
                       "%s, not a llama2.c checkpoint: llama2.c's export.py makes one of a PyTorch checkpoint", name);
    default: return s;
    }
}

/* --------------------------------------------------------------- files */

static llama2_status read_whole(l2_file *f, size_t size, void **out, llama2_error *err) {
    unsigned char *buf = l2_aligned_zeroed(size);
    if (!buf) return l2_fail(err, LLAMA2_E_NOMEM, "cannot allocate %zu bytes to read the file", size);
    llama2_status s = l2_file_read(f, buf, size, err);
    if (s != LLAMA2_OK) {
        l2_aligned_free(buf);
        return s;
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
    l2_file *f = NULL;
    uint64_t file_size = 0;
    llama2_status s = l2_file_open(path, &f, &file_size, err);
    if (s != LLAMA2_OK) return s;
    if (file_size == 0) {
        l2_file_close(f);
        return l2_fail(err, LLAMA2_E_FORMAT, "empty file");
    }
    if (file_size > SIZE_MAX) {
        l2_file_close(f);
        return l2_fail(err, LLAMA2_E_NOMEM, "file too large for this machine's address space");
    }
    size_t size = (size_t)file_size;

    llama2_model *m = calloc(1, sizeof *m);
    if (!m) {
        l2_file_close(f);
        return l2_fail(err, LLAMA2_E_NOMEM, "out of memory");
    }
    const unsigned char *data;
    if (no_mmap) {
        s = read_whole(f, size, &m->buffer, err);
        data = m->buffer;
    } else {
        void *map = NULL;
        s = l2_file_map(f, size, &map, err);
        if (s == LLAMA2_OK) {
            m->mapping = map;
            m->mapping_size = size;
        }
        data = m->mapping;
    }
    l2_file_close(f);
    if (s != LLAMA2_OK) {
        llama2_model_close(m);
        return s;
    }

    if (l2_file_kind_of(data, size) == L2_FILE_GGUF) {
        s = l2_gguf_model_load(m, data, size, err);
        if (s == LLAMA2_OK) s = l2_model_attach_kernels(m, err);
        if (s != LLAMA2_OK) {
            llama2_model_close(m);
            return s;
        }
        *out = m;
        return LLAMA2_OK;
    }
    size_t header_bytes = 0;
    int with_rope = 1;
    s = l2_header_decode(data, size, &m->config, &header_bytes, err);
    if (s != LLAMA2_OK) s = not_a_checkpoint(data, size, s, err);
    if (s == LLAMA2_OK) {
        m->head_size = m->config.dim / m->config.n_heads;
        m->kv_dim = m->head_size * m->config.n_kv_heads;
        s = check_size(&m->config, size, &with_rope, err);
    }
    if (s == LLAMA2_OK) {
        m->layers = calloc((size_t)m->config.n_layers, sizeof *m->layers);
        if (!m->layers) s = l2_fail(err, LLAMA2_E_NOMEM, "out of memory for %d layers", m->config.n_layers);
    }
    if (s == LLAMA2_OK) {
        static const char *const formats[] = {"v0 fp32", "v1 fp32", "v2 int8 (Q8_0)"};
        snprintf(m->format, sizeof m->format, "%s", formats[m->config.file_version]);
        lay_out(m, data, header_bytes, with_rope);
        s = align_scales(m, err);
        if (s == LLAMA2_OK) s = l2_model_attach_kernels(m, err);
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
    l2_unmap(m->mapping, m->mapping_size);
    l2_aligned_free(m->buffer);
    l2_aligned_free(m->owned_scales);
    l2_model_detach_kernels(m);
    l2_aligned_free(m->converted);
    free(m->vocab_text);
    free(m->vocab_lengths);
    free(m->vocab_scores);
    free(m->bpe_file);
    free(m->layers);
    free(m);
}

const llama2_config *llama2_model_config(const llama2_model *m) { return &m->config; }

const char *llama2_model_format(const llama2_model *m) { return m->format; }

llama2_status llama2_model_tokenizer(const llama2_model *m, llama2_tokenizer **out, llama2_error *err) {
    if (!out) return l2_fail(err, LLAMA2_E_INVALID, "model_tokenizer: no place to return the tokenizer");
    *out = NULL;
    if (!m) return l2_fail(err, LLAMA2_E_INVALID, "model_tokenizer: no model");
    if (m->bpe_file) return llama2_tokenizer_from_memory(m->bpe_file, m->bpe_file_size, m->config.vocab_size, out, err);
    if (m->vocab_count == 0) return l2_fail(err, LLAMA2_E_UNSUPPORTED, "the model file carries no tokenizer");
    return l2_tokenizer_from_pieces(m->vocab_count, m->vocab_text, m->vocab_lengths, m->vocab_scores, out, err);
}
