/* Model, tokenizer, pool and session from the usual flags (open.h). */
#include "open.h"

#include <stdio.h>
#include <string.h>

#include "messages.h"

double cli_parameter_count(const llama2_config *c) {
    const double dim = c->dim, kv_dim = (double)c->dim * c->n_kv_heads / c->n_heads;
    const double per_layer = 2.0 * dim * dim + 2.0 * dim * kv_dim + 3.0 * dim * c->hidden_dim + 2.0 * dim;
    return c->n_layers * per_layer + (double)c->vocab_size * dim * (c->shared_classifier ? 1 : 2) + dim;
}

/* The checkpoint, with --ctx checked against its context. */
static int open_model(const cli_open_options *o, llama2_model **model, const char **culprit, llama2_error *err) {
    llama2_model_options options = {.no_mmap = o->no_mmap};
    if (llama2_model_open(o->checkpoint, &options, model, err) != LLAMA2_OK) {
        *culprit = o->checkpoint;
        return 1;
    }
    const int seq_len = llama2_model_config(*model)->seq_len;
    if (o->context_length > seq_len) {
        snprintf(err->message, sizeof err->message, "the model's context is %d positions, got %d", seq_len,
                 o->context_length);
        *culprit = "--ctx";
        return 2;
    }
    return 0;
}

/* The tokenizer for the model's vocabulary. A file with more entries works,
 * as in llama2.c (only the first vocab_size are read), but usually means the
 * wrong file: the warning says so. */
static llama2_status open_tokenizer(const cli_open_options *o, int vocab_size, cli_opened *out, const char **source,
                                    llama2_error *err) {
    /* Without -z, the tokenizer the model file carries (GGUF), if any. */
    llama2_status s = o->tokenizer_given ? LLAMA2_E_UNSUPPORTED : llama2_model_tokenizer(out->model, &out->tokenizer, err);
    *source = o->checkpoint;
    if (s != LLAMA2_E_UNSUPPORTED) return s;
    *source = o->tokenizer;
    s = llama2_tokenizer_open(o->tokenizer, vocab_size, &out->tokenizer, err);
    if (s != LLAMA2_OK) {
        if (s == LLAMA2_E_IO && !o->tokenizer_given) {
            size_t len = strlen(err->message);
            snprintf(err->message + len, sizeof err->message - len, " (pass the model's tokenizer with -z)");
        }
        return s;
    }
    llama2_tokenizer *whole = NULL;
    llama2_error ignored;
    if (llama2_tokenizer_open(o->tokenizer, 0, &whole, &ignored) == LLAMA2_OK &&
        llama2_tokenizer_vocab_size(whole) > vocab_size) {
        char line[768];
        snprintf(line, sizeof line,
                 "%s: %s: warning: the tokenizer has %d tokens, the model %d; using the first %d "
                 "(is it this model's tokenizer?)",
                 o->program, o->tokenizer, llama2_tokenizer_vocab_size(whole), vocab_size, vocab_size);
        cli_fail(out->tokenizer_warning, sizeof out->tokenizer_warning, "%s", line);
    }
    llama2_tokenizer_close(whole);
    return LLAMA2_OK;
}

int cli_open(const cli_open_options *o, cli_opened *out, const char **culprit, llama2_error *err) {
    memset(out, 0, sizeof *out);
    int rc = open_model(o, &out->model, culprit, err);
    if (rc != 0) goto failed;
    rc = 1;
    const llama2_config *config = llama2_model_config(out->model);
    if (open_tokenizer(o, config->vocab_size, out, &out->tokenizer_source, err) != LLAMA2_OK) {
        *culprit = out->tokenizer_source;
        goto failed;
    }
    if (o->before_session && (rc = o->before_session(o->user, out->model, culprit, err)) != 0) goto failed;
    rc = 1;
    /* A model so small (stories260K) that handing work to a second thread
     * costs more than it saves may run on fewer. */
    int threads = o->threads;
    if (threads == 0 && o->small_model_threads > 0 && cli_parameter_count(config) < 1e6)
        threads = o->small_model_threads;
    cli_warn_threads(o->program, o->threads);
    if (llama2_threadpool_create(threads, &out->pool, err) != LLAMA2_OK) {
        *culprit = o->threads_culprit;
        goto failed;
    }
    llama2_session_options sopts = {.pool = out->pool, .batch_size = o->batch, .backend = o->backend,
                                    .context_length = o->context_length, .n_sequences = o->n_sequences};
    llama2_status created = llama2_session_create(out->model, &sopts, &out->session, err);
    if (created != LLAMA2_OK) {
        *culprit = created == LLAMA2_E_UNSUPPORTED ? "--backend" : o->checkpoint;
        rc = created == LLAMA2_E_UNSUPPORTED ? 2 : 1;
        goto failed;
    }
    return 0;
failed:
    cli_close(out);
    return rc;
}

void cli_close(cli_opened *o) {
    llama2_session_destroy(o->session);
    llama2_threadpool_destroy(o->pool);
    llama2_tokenizer_close(o->tokenizer);
    llama2_model_close(o->model);
    o->session = NULL;
    o->pool = NULL;
    o->tokenizer = NULL;
    o->model = NULL;
}
