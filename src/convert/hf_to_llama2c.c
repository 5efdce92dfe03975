/*
 * Hugging Face -> llama2.c: a model folder to a checkpoint, and a
 * SentencePiece tokenizer.model to tokenizer.bin.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "write/checkpoint_writer.h"
#include "convert.h"
#include "hf_model.h"
#include "platform/checks.h"
#include "platform/platform.h"
#include "write/output_file.h"
#include "sentencepiece.h"
#include "small_file.h"

#define TOKENIZER_LIMIT ((size_t)64 << 20)

/* ------------------------------------------------------- tokenizer */

/* tokenizer.bin's bytes for the SentencePiece model at path. */
static llama2_status tokenizer_bytes(const char *path, unsigned char **out, size_t *len, llama2_error *err) {
    char *data;
    size_t size;
    llama2_status s = l2_read_small_file(path, TOKENIZER_LIMIT, &data, &size, err);
    if (s != LLAMA2_OK) return s;
    l2_sp_model sp;
    s = l2_sp_parse(data, size, path, &sp, err);
    if (s == LLAMA2_OK) {
        s = l2_sp_to_llama2c(&sp, path, out, len, err);
        l2_sp_free(&sp);
    }
    free(data);
    return s;
}

/* Opens the output `path` (made from `inputs`) and writes len bytes to it,
 * not yet named: the caller commits or aborts it. Failures are named. */
static llama2_status write_aside(l2_output *out, const char *path, const char *const *inputs, unsigned flags,
                                 const void *bytes, size_t len, llama2_error *err) {
    llama2_status s = l2_output_open(out, path, inputs, flags, err);
    if (s == LLAMA2_OK && (s = l2_output_write(out, bytes, len, err)) != LLAMA2_OK) l2_output_abort(out);
    return l2_error_prefix_path(s, NULL, path, err);
}

llama2_status l2_convert_sentencepiece(const char *in_path, const char *out_path, unsigned output_flags,
                                       llama2_error *err) {
    const char *inputs[2] = {in_path, NULL};
    unsigned char *bytes = NULL;
    size_t len = 0;
    llama2_status s = tokenizer_bytes(in_path, &bytes, &len, err);
    l2_output out;
    if (s == LLAMA2_OK) s = write_aside(&out, out_path, inputs, output_flags, bytes, len, err);
    if (s == LLAMA2_OK) s = l2_error_prefix_path(l2_output_commit(&out, err), NULL, out_path, err);
    free(bytes);
    return s;
}

/* ------------------------------------------------------ checkpoint */

static llama2_status hf_rows(void *user, l2_tensor_kind kind, int layer, size_t row, size_t n_rows, float *out,
                             llama2_error *err) {
    l2_hf_model_rows(user, kind, layer, row, n_rows, out);
    return LLAMA2_OK;
}

/* The files the conversion reads: the folder's safetensors files and, with
 * a tokenizer, its tokenizer.model (NULL-terminated, malloc'd; NULL when
 * out of memory). */
static const char **input_files(const l2_hf_model *m, const char *tokenizer_model) {
    const char **inputs = calloc(m->n_files + 2, sizeof *inputs);
    if (!inputs) return NULL;
    size_t n = 0;
    for (size_t i = 0; i < m->n_files; i++) inputs[n++] = m->files[i].path;
    inputs[n] = tokenizer_model;
    return inputs;
}

/* tokenizer.bin's bytes from the folder's tokenizer.model, which must hold
 * at least the model's vocabulary. */
static llama2_status folder_tokenizer(const char *model_path, int vocab_size, unsigned char **bytes, size_t *len,
                                      llama2_error *err) {
    llama2_status s = tokenizer_bytes(model_path, bytes, len, err);
    uint32_t count = 0;
    for (size_t pos = 4; s == LLAMA2_OK && pos < *len; count++) {
        uint32_t piece_len;
        memcpy(&piece_len, *bytes + pos + 4, 4);
        pos += 8 + piece_len;
    }
    if (s == LLAMA2_OK && count < (uint32_t)vocab_size)
        s = l2_fail(err, LLAMA2_E_UNSUPPORTED,
                    "%s: %u pieces, the model's vocabulary has %d (added tokens are not converted)", model_path, count,
                    vocab_size);
    return s;
}

llama2_status l2_convert_hf_to_llama2c(const char *dir, const char *out_path, const l2_convert_options *options,
                                       llama2_error *err) {
    const int version = options->version;
    if (version < 0 || version > 2)
        return l2_fail(err, LLAMA2_E_INVALID, "version %d, must be 0, 1 or 2", version);
    if (options->tokenizer && strcmp(options->tokenizer, out_path) == 0)
        return l2_fail(err, LLAMA2_E_INVALID, "%s: the checkpoint and the tokenizer cannot be the same file",
                       out_path);

    l2_hf_model m;
    llama2_status s = l2_hf_model_open(dir, &m, err);
    if (s != LLAMA2_OK) return s;
    llama2_config c = m.config.shape;
    c.file_version = version;
    c.group_size = version == 2 ? options->group_size : 0;
    c.shared_classifier = m.shared_classifier;
    c.rope_theta = m.config.rope_theta;
    c.norm_eps = m.config.norm_eps;
    if (version == 0 && c.rope_scaling_factor != 0.0f)
        s = l2_fail(err, LLAMA2_E_UNSUPPORTED,
                    "%s/config.json: rope_scaling: a version 0 file cannot record it (use --version 1 or 2)", dir);
    else if (version == 0 && (c.rope_theta != L2_DEFAULT_ROPE_THETA || c.norm_eps != L2_DEFAULT_NORM_EPS))
        s = l2_fail(err, LLAMA2_E_UNSUPPORTED,
                    "%s/config.json: rope_theta %g and rms_norm_eps %g differ from llama2.c's 10000 and 1e-05: a "
                    "version 0 file cannot record them (use --format-version 1 or 2)",
                    dir, (double)c.rope_theta, (double)c.norm_eps);
    char *model_path = NULL;
    const char **inputs = NULL;
    int from_json = 0; /* Llama 3: tokenizer.json, no tokenizer.model */
    if (s == LLAMA2_OK && options->tokenizer) {
        size_t n = strlen(dir) + 32;
        if ((model_path = malloc(n)) != NULL) {
            snprintf(model_path, n, "%s/tokenizer.json", dir);
            from_json = l2_path_lookup(model_path, NULL, NULL) == L2_PATH_FILE;
            snprintf(model_path, n, "%s/tokenizer.model", dir);
            if (from_json && l2_path_lookup(model_path, NULL, NULL) != L2_PATH_NONE) from_json = 0;
            if (from_json) snprintf(model_path, n, "%s/tokenizer.json", dir);
        }
    }
    if (s == LLAMA2_OK && ((options->tokenizer && !model_path) || !(inputs = input_files(&m, model_path))))
        s = l2_fail(err, LLAMA2_E_NOMEM, "out of memory");

    /* The tokenizer is checked and written aside before the checkpoint, and
     * named after it. */
    l2_output tok;
    int tok_aside = 0;
    if (s == LLAMA2_OK && options->tokenizer) {
        unsigned char *bytes = NULL;
        size_t len = 0;
        s = from_json ? l2_tokenizer_json_bytes(model_path, c.vocab_size, &bytes, &len, err)
                      : folder_tokenizer(model_path, c.vocab_size, &bytes, &len, err);
        if (s == LLAMA2_OK)
            s = write_aside(&tok, options->tokenizer, inputs, options->output_flags, bytes, len, err);
        tok_aside = s == LLAMA2_OK;
        free(bytes);
    }
    if (s == LLAMA2_OK) {
        const l2_tensor_source source = {&m, hf_rows, 0, inputs};
        s = l2_error_prefix_path(l2_checkpoint_write(out_path, &c, &source, options->output_flags, err), dir, out_path,
                             err);
    }
    if (tok_aside && s == LLAMA2_OK)
        s = l2_error_prefix_path(l2_output_commit(&tok, err), NULL, options->tokenizer, err);
    else if (tok_aside)
        l2_output_abort(&tok);
    free(inputs);
    free(model_path);
    l2_hf_model_close(&m);
    return s;
}
