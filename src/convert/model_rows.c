/* Reading a loaded llama2.c model's weights by role. */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "model.h"
#include "model_rows.h"

static const tensor *matrix_of(const llama2_model *m, l2_role role, int layer) {
    const layer_weights *lw = &m->layers[layer];
    switch (role) {
    case L2_ROLE_TOKEN_EMBEDDING: return &m->token_embedding;
    case L2_ROLE_ATTENTION_QUERY: return &lw->attention_query;
    case L2_ROLE_ATTENTION_KEY: return &lw->attention_key;
    case L2_ROLE_ATTENTION_VALUE: return &lw->attention_value;
    case L2_ROLE_ATTENTION_OUTPUT: return &lw->attention_output;
    case L2_ROLE_FFN_GATE: return &lw->ffn_gate;
    case L2_ROLE_FFN_DOWN: return &lw->ffn_down;
    case L2_ROLE_FFN_UP: return &lw->ffn_up;
    case L2_ROLE_CLASSIFIER: return &m->classifier;
    default: return NULL; /* a norm */
    }
}

static const float *vector_of(const llama2_model *m, l2_role role, int layer) {
    return role == L2_ROLE_ATTENTION_NORM ? m->layers[layer].attention_norm
           : role == L2_ROLE_FFN_NORM     ? m->layers[layer].ffn_norm
                                          : m->final_norm;
}

void l2_model_rows(const llama2_model *m, l2_role role, int layer, size_t row0, size_t n_rows, float *out) {
    const tensor *t = matrix_of(m, role, layer);
    if (!t) {
        memcpy(out, vector_of(m, role, layer) + row0, n_rows * sizeof(float));
        return;
    }
    const size_t cols = (size_t)t->cols;
    if (t->type == LLAMA2_WEIGHTS_F32) {
        memcpy(out, t->f32 + row0 * cols, n_rows * cols * sizeof(float));
        return;
    }
    const size_t gs = (size_t)t->group_size;
    const int8_t *q = t->q + row0 * cols;
    const float *scales = t->scales + row0 * cols / gs;
    for (size_t i = 0; i < n_rows * cols; i++) out[i] = (float)q[i] * scales[i / gs];
}

/* The pages of [p, p + bytes) inside the model's mapping. */
static void release(const llama2_model *m, const void *p, size_t bytes) {
    if (!m->mapping || bytes == 0) return;
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    const size_t offset = (size_t)((const unsigned char *)p - (const unsigned char *)m->mapping);
    size_t begin = offset / page * page, end = offset + bytes;
    if (end > m->mapping_size) end = m->mapping_size;
    /* Advice only: a failure leaves the pages where they are. */
    (void)madvise((unsigned char *)m->mapping + begin, end - begin, MADV_DONTNEED);
}

void l2_model_release(const llama2_model *m, l2_role role, int layer) {
    const tensor *t = matrix_of(m, role, layer);
    if (!t) {
        release(m, vector_of(m, role, layer), (size_t)m->config.dim * sizeof(float));
        return;
    }
    const size_t n = (size_t)t->rows * (size_t)t->cols;
    if (t->type == LLAMA2_WEIGHTS_F32) {
        release(m, t->f32, n * sizeof(float));
    } else {
        release(m, t->q, n);
        release(m, t->scales, n / (size_t)t->group_size * sizeof(float));
    }
}
