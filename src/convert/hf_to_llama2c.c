/*
 * Hugging Face -> llama2.c: a model folder to a checkpoint, and a
 * SentencePiece tokenizer.model to tokenizer.bin.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint_out.h"
#include "checkpoint_writer.h"
#include "convert.h"
#include "hf_model.h"
#include "internal.h"
#include "output.h"
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
static llama2_status write_whole(l2_output *o, const char *path, const void *bytes, size_t len, llama2_error *err) {
    llama2_status s = l2_output_open(o, path, err);
    if (s != LLAMA2_OK) return s;
    l2_output_write(o, bytes, len);
    s = l2_output_close(o, err);
    if (s != LLAMA2_OK) l2_output_abort(o);
    return s;
}

llama2_status l2_convert_sentencepiece(const char *in_path, const char *out_path, int force, llama2_error *err) {
    const char *inputs[1] = {in_path};
    llama2_status s = l2_output_check(out_path, force, inputs, 1, err);
    unsigned char *bytes = NULL;
    size_t len = 0;
    if (s == LLAMA2_OK) s = tokenizer_bytes(in_path, &bytes, &len, err);
    l2_output o;
    if (s == LLAMA2_OK) s = write_whole(&o, out_path, bytes, len, err);
    if (s == LLAMA2_OK && (s = l2_output_commit(&o, err)) != LLAMA2_OK) l2_output_abort(&o);
    free(bytes);
    return s;
}

/* ------------------------------------------------------ checkpoint */

static void hf_rows(void *user, l2_role role, int layer, size_t row0, size_t n_rows, float *out) {
    l2_hf_model_rows(user, role, layer, row0, n_rows, out);
}

llama2_status l2_convert_hf_to_llama2c(const char *dir, const char *out_path, const l2_convert_options *options,
                                       llama2_error *err) {
    const int version = options->version;
    if (version < 0 || version > 2)
        return l2_fail(err, LLAMA2_E_INVALID, "--version %d: must be 0, 1 or 2", version);
    const char *inputs[1] = {dir};
    llama2_status s = l2_output_check(out_path, options->force, inputs, 1, err);
    if (s == LLAMA2_OK && options->tokenizer) s = l2_output_check(options->tokenizer, options->force, inputs, 1, err);
    if (s == LLAMA2_OK && options->tokenizer && strcmp(options->tokenizer, out_path) == 0)
        s = l2_fail(err, LLAMA2_E_INVALID, "%s: the checkpoint and the tokenizer cannot be the same file", out_path);
    if (s != LLAMA2_OK) return s;

    l2_hf_model m;
    if ((s = l2_hf_model_open(dir, &m, err)) != LLAMA2_OK) return s;
    l2_checkpoint_plan plan = {m.config.shape, m.config.rope_theta, m.config.norm_eps};
    plan.config.file_version = version;
    plan.config.shared_classifier = m.shared_classifier;
    plan.config.weight_type = version == 2 ? LLAMA2_WEIGHTS_Q8_0 : LLAMA2_WEIGHTS_F32;
    plan.config.group_size = version == 2 ? (options->group_size ? options->group_size
                                                                 : l2_default_group_size(plan.config.dim, plan.config.hidden_dim))
                                          : 0;
    if (version == 2 && (plan.config.dim % plan.config.group_size || plan.config.hidden_dim % plan.config.group_size))
        s = l2_fail(err, LLAMA2_E_INVALID, "--group-size %d does not divide dim %d and hidden_dim %d",
                    plan.config.group_size, plan.config.dim, plan.config.hidden_dim);
    if (s == LLAMA2_OK && version == 0 && (plan.rope_theta != L2_LLAMA2C_THETA || plan.norm_eps != L2_LLAMA2C_EPS))
        s = l2_fail(err, LLAMA2_E_UNSUPPORTED,
                    "%s/config.json: rope_theta %g and rms_norm_eps %g differ from llama2.c's 10000 and 1e-05: a "
                    "version 0 file cannot record them (use --version 1 or 2)",
                    dir, (double)plan.rope_theta, (double)plan.norm_eps);

    /* The tokenizer is checked and written aside before the checkpoint, and
     * put in place after it. */
    l2_output tok = {0};
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
        if (s == LLAMA2_OK && count < (uint32_t)plan.config.vocab_size)
            s = l2_fail(err, LLAMA2_E_UNSUPPORTED,
                        "%s: %u pieces, the model's vocabulary has %d (added tokens are not converted)", model_path,
                        count, plan.config.vocab_size);
        if (s == LLAMA2_OK) s = write_whole(&tok, options->tokenizer, bytes, len, err);
        free(bytes);
        free(model_path);
    }
    if (s == LLAMA2_OK) {
        l2_weight_source src = {hf_rows, &m};
        s = l2_write_checkpoint(out_path, &plan, &src, err);
    }
    if (s == LLAMA2_OK && options->tokenizer) s = l2_output_commit(&tok, err);
    if (options->tokenizer) l2_output_abort(&tok);
    l2_hf_model_close(&m);
    return s;
}
