/*
 * llama2.c checkpoints from a source of weights, streamed in chunks of rows
 * (the layouts are described in src/checkpoint.c).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint_out.h"
#include "checkpoint_writer.h"
#include "internal.h"
#include "output.h"

#define CHUNK_FLOATS ((size_t)1 << 22)

static void put_i32(l2_output *o, int32_t v) { l2_output_write(o, &v, sizeof v); }

/* One tensor, every layer when it has one per layer, in chunks of rows. */
static void put_role(l2_output *o, const l2_checkpoint_plan *p, const l2_weight_source *src, l2_role role, float *chunk) {
    size_t rows, cols;
    int n_dims;
    l2_role_shape(role, &p->config, &rows, &cols, &n_dims);
    const size_t step = CHUNK_FLOATS / cols ? CHUNK_FLOATS / cols : 1;
    const int layers = l2_role_per_layer(role) ? p->config.n_layers : 1;
    for (int l = 0; l < layers; l++)
        for (size_t r = 0; r < rows; r += step) {
            size_t n = rows - r < step ? rows - r : step;
            src->rows(src->user, role, l, r, n, chunk);
            l2_output_write(o, chunk, n * cols * sizeof(float));
        }
}

/* The fp32 files: version 1, or version 0 with llama2.c's RoPE tables. */
static llama2_status write_fp32(const char *path, const l2_checkpoint_plan *p, const l2_weight_source *src,
                                llama2_error *err) {
    const llama2_config *c = &p->config;
    /* A chunk is at most CHUNK_FLOATS values, or one row when rows are longer. */
    const size_t widest = (size_t)(c->dim > c->hidden_dim ? c->dim : c->hidden_dim);
    float *chunk = malloc((CHUNK_FLOATS + widest) * sizeof *chunk);
    if (!chunk) return l2_fail(err, LLAMA2_E_NOMEM, "%s: out of memory", path);
    l2_output o;
    llama2_status s = l2_output_open(&o, path, err);
    if (s != LLAMA2_OK) {
        free(chunk);
        return s;
    }
    static const l2_role matrices[7] = {L2_ROLE_ATTENTION_QUERY, L2_ROLE_ATTENTION_KEY, L2_ROLE_ATTENTION_VALUE,
                                        L2_ROLE_ATTENTION_OUTPUT, L2_ROLE_FFN_GATE, L2_ROLE_FFN_DOWN, L2_ROLE_FFN_UP};
    const int shared = c->shared_classifier;
    if (c->file_version == 1) {
        put_i32(&o, 0x616b3432);
        put_i32(&o, 1);
        const int32_t shape[7] = {c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->vocab_size, c->seq_len};
        l2_output_write(&o, shape, sizeof shape);
        unsigned char pad[256 - 36] = {0};
        pad[0] = (unsigned char)shared;
        l2_output_write(&o, pad, sizeof pad);
        put_role(&o, p, src, L2_ROLE_ATTENTION_NORM, chunk);
        put_role(&o, p, src, L2_ROLE_FFN_NORM, chunk);
        put_role(&o, p, src, L2_ROLE_FINAL_NORM, chunk);
        put_role(&o, p, src, L2_ROLE_TOKEN_EMBEDDING, chunk);
        for (int k = 0; k < 7; k++) put_role(&o, p, src, matrices[k], chunk);
    } else {
        const int32_t shape[7] = {c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads,
                                  shared ? c->vocab_size : -c->vocab_size, c->seq_len};
        l2_output_write(&o, shape, sizeof shape);
        put_role(&o, p, src, L2_ROLE_TOKEN_EMBEDDING, chunk);
        put_role(&o, p, src, L2_ROLE_ATTENTION_NORM, chunk);
        for (int k = 0; k < 4; k++) put_role(&o, p, src, matrices[k], chunk);
        put_role(&o, p, src, L2_ROLE_FFN_NORM, chunk);
        for (int k = 4; k < 7; k++) put_role(&o, p, src, matrices[k], chunk);
        put_role(&o, p, src, L2_ROLE_FINAL_NORM, chunk);
        /* freqs_cos and freqs_sin, which llama2.c's run.c skips. */
        const size_t half = (size_t)(c->dim / c->n_heads / 2);
        for (int table = 0; table < 2; table++)
            for (int pos = 0; pos < c->seq_len; pos++) {
                for (size_t j = 0; j < half; j++) {
                    float freq = 1.0f / powf(p->rope_theta, (float)(2 * j) / (float)(2 * half));
                    float angle = (float)pos * freq;
                    chunk[j] = table == 0 ? cosf(angle) : sinf(angle);
                }
                l2_output_write(&o, chunk, half * sizeof(float));
            }
    }
    if (!shared) put_role(&o, p, src, L2_ROLE_CLASSIFIER, chunk);
    free(chunk);
    s = l2_output_commit(&o, err);
    if (s != LLAMA2_OK) l2_output_abort(&o);
    return s;
}

/* Writes the checkpoint: the one place that knows how llama2.c files are
 * laid out here. Version 2 is the version 1 file quantized by the project's
 * quantizer, so that its bytes are the quantizer's. */
llama2_status l2_write_checkpoint(const char *path, const l2_checkpoint_plan *p, const l2_weight_source *src,
                                      llama2_error *err) {
    if (p->rope_theta != L2_LLAMA2C_THETA || p->norm_eps != L2_LLAMA2C_EPS)
        return l2_fail(err, LLAMA2_E_UNSUPPORTED,
                       "%s: rope_theta %g and rms_norm_eps %g differ from llama2.c's 10000 and 1e-05, which "
                       "this build's files cannot record",
                       path, (double)p->rope_theta, (double)p->norm_eps);
    if (p->config.file_version != 2) return write_fp32(path, p, src, err);
    l2_checkpoint_plan v1 = *p;
    v1.config.file_version = 1;
    size_t n = strlen(path) + 16;
    char *tmp = malloc(n);
    if (!tmp) return l2_fail(err, LLAMA2_E_NOMEM, "%s: out of memory", path);
    snprintf(tmp, n, "%s.fp32.tmp", path);
    llama2_status s = write_fp32(tmp, &v1, src, err);
    if (s == LLAMA2_OK) {
        s = l2_quantize_file(tmp, path, p->config.group_size, err);
        if (s != LLAMA2_OK) {
            char why[sizeof err->message];
            snprintf(why, sizeof why, "%s", err->message);
            s = l2_fail(err, s, "%s: %s", path, why);
        }
    }
    unlink(tmp);
    free(tmp);
    return s;
}

