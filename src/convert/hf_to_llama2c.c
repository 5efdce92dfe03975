/*
 * Hugging Face -> llama2.c: a model folder to a checkpoint, and a
 * SentencePiece tokenizer.model to tokenizer.bin.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint_writer.h"
#include "convert.h"
#include "hf_model.h"
#include "internal.h"
#include "out_file.h"
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

/* Writes bytes to path's temporary file, closed but not yet in place. */
static llama2_status write_whole(l2_out *o, const char *path, const void *bytes, size_t len, llama2_error *err) {
    llama2_status s = l2_out_open(o, path, err);
    if (s != LLAMA2_OK) return s;
    l2_out_write(o, bytes, len);
    s = l2_out_close(o, err);
    if (s != LLAMA2_OK) l2_out_abort(o);
    return s;
}

llama2_status l2_convert_sentencepiece(const char *in_path, const char *out_path, int force, llama2_error *err) {
    const char *inputs[1] = {in_path};
    llama2_status s = l2_out_check(out_path, force, inputs, 1, err);
    unsigned char *bytes = NULL;
    size_t len = 0;
    if (s == LLAMA2_OK) s = tokenizer_bytes(in_path, &bytes, &len, err);
    l2_out o;
    if (s == LLAMA2_OK) s = write_whole(&o, out_path, bytes, len, err);
    if (s == LLAMA2_OK && (s = l2_out_commit(&o, err)) != LLAMA2_OK) l2_out_abort(&o);
    free(bytes);
    return s;
}

/* ------------------------------------------------------ checkpoint */

static llama2_status hf_rows(void *user, l2_tensor_kind kind, int layer, size_t row, size_t n_rows, float *out,
                             llama2_error *err) {
    l2_hf_model_rows(user, kind, layer, row, n_rows, out);
    return LLAMA2_OK;
}

llama2_status l2_convert_hf_to_llama2c(const char *dir, const char *out_path, const l2_convert_options *options,
                                       llama2_error *err) {
    const int version = options->version;
    if (version < 0 || version > 2)
        return l2_fail(err, LLAMA2_E_INVALID, "version %d, must be 0, 1 or 2", version);
    const char *inputs[1] = {dir};
    llama2_status s = l2_out_check(out_path, options->force, inputs, 1, err);
    if (s == LLAMA2_OK && options->tokenizer) s = l2_out_check(options->tokenizer, options->force, inputs, 1, err);
    if (s == LLAMA2_OK && options->tokenizer && strcmp(options->tokenizer, out_path) == 0)
        s = l2_fail(err, LLAMA2_E_INVALID, "%s: the checkpoint and the tokenizer cannot be the same file", out_path);
    if (s != LLAMA2_OK) return s;

    l2_hf_model m;
    if ((s = l2_hf_model_open(dir, &m, err)) != LLAMA2_OK) return s;
    llama2_config c = m.config.shape;
    c.file_version = version;
    c.group_size = version == 2 ? options->group_size : 0;
    c.shared_classifier = m.shared_classifier;
    c.rope_theta = m.config.rope_theta;
    c.norm_eps = m.config.norm_eps;
    if (version == 0 && (c.rope_theta != L2_DEFAULT_ROPE_THETA || c.norm_eps != L2_DEFAULT_NORM_EPS))
        s = l2_fail(err, LLAMA2_E_UNSUPPORTED,
                    "%s/config.json: rope_theta %g and rms_norm_eps %g differ from llama2.c's 10000 and 1e-05: a "
                    "version 0 file cannot record them (use --version 1 or 2)",
                    dir, (double)c.rope_theta, (double)c.norm_eps);

    /* The tokenizer is checked and written aside before the checkpoint, and
     * put in place after it. */
    l2_out tok = {0};
    if (s == LLAMA2_OK && options->tokenizer) {
        size_t n = strlen(dir) + 32;
        char *model_path = malloc(n);
        unsigned char *bytes = NULL;
        size_t len = 0;
        if (!model_path) s = l2_fail(err, LLAMA2_E_NOMEM, "out of memory");
        if (s == LLAMA2_OK) {
            snprintf(model_path, n, "%s/tokenizer.model", dir);
            s = tokenizer_bytes(model_path, &bytes, &len, err);
        }
        uint32_t count = 0;
        for (size_t pos = 4; s == LLAMA2_OK && pos < len; count++) {
            uint32_t piece_len;
            memcpy(&piece_len, bytes + pos + 4, 4);
            pos += 8 + piece_len;
        }
        if (s == LLAMA2_OK && count < (uint32_t)c.vocab_size)
            s = l2_fail(err, LLAMA2_E_UNSUPPORTED,
                        "%s: %u pieces, the model's vocabulary has %d (added tokens are not converted)", model_path,
                        count, c.vocab_size);
        if (s == LLAMA2_OK) s = write_whole(&tok, options->tokenizer, bytes, len, err);
        free(bytes);
        free(model_path);
    }
    if (s == LLAMA2_OK) {
        const l2_tensor_source source = {&m, hf_rows, 0};
        s = l2_out_name_the_file(l2_checkpoint_write(out_path, &c, &source, err), dir, out_path, err);
    }
    if (s == LLAMA2_OK && options->tokenizer) s = l2_out_commit(&tok, err);
    if (options->tokenizer) l2_out_abort(&tok);
    l2_hf_model_close(&m);
    return s;
}
