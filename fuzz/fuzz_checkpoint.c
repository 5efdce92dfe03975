/*
 * libFuzzer target: arbitrary bytes as a checkpoint file.
 *
 * The bytes go into a memfd (a temporary file where memfd_create is missing)
 * and are opened through its /proc/self/fd path twice, mapped and read into
 * memory. Both opens must agree; a model that opens must have a shape the
 * loader vouched for, and when it is small enough (weights, KV cache) a
 * session is created, a few tokens are run through it (so that the forward
 * pass reads every tensor the loader handed out) and the logits are sampled.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "llama2.h"

/* Sessions are only built for models under these sizes, to keep each input
 * fast: the weights are bounded by the input, the run state is not. */
#define MAX_RUN_STATE_FLOATS (1u << 20)
#define MAX_SEQ_LEN 256

static fuzz_file input = {-1, ""};

static void check_message(llama2_status s, const llama2_error *err) {
    if (s == LLAMA2_OK) return;
    size_t len = strnlen(err->message, sizeof err->message);
    if (len == 0 || len == sizeof err->message || strchr(err->message, '\n')) {
        fprintf(stderr, "bad error message for status %d: '%.*s'\n", (int)s, (int)sizeof err->message,
                err->message);
        abort();
    }
}

static int small_enough(const llama2_config *c) {
    if (c->seq_len > MAX_SEQ_LEN) return 0;
    uint64_t head_size = (uint64_t)c->dim / (uint64_t)c->n_heads, kv_dim = head_size * (uint64_t)c->n_kv_heads;
    uint64_t cache = (uint64_t)c->n_layers * (uint64_t)c->seq_len * kv_dim * 2;
    uint64_t rope = (uint64_t)c->seq_len * head_size; /* cos and sin tables, computed per entry */
    uint64_t rows = (uint64_t)LLAMA2_DEFAULT_BATCH * ((uint64_t)c->dim * 4 + (uint64_t)c->hidden_dim * 2 +
                                                      (uint64_t)c->vocab_size);
    return cache + rows + rope <= MAX_RUN_STATE_FLOATS;
}

static void run_model(const llama2_model *model) {
    const llama2_config *c = llama2_model_config(model);
    if (!small_enough(c)) return;
    llama2_session *session = NULL;
    llama2_error err = {0};
    llama2_session_options opts = {0};
    opts.batch_size = 2;
    llama2_status s = llama2_session_create(model, &opts, &session, &err);
    check_message(s, &err);
    if (s != LLAMA2_OK) return;
    int tokens[3] = {LLAMA2_TOKEN_BOS % c->vocab_size, c->vocab_size - 1, 0};
    int n = c->seq_len < 3 ? c->seq_len : 3;
    float *logits = NULL;
    s = llama2_session_eval(session, tokens, n, 0, &logits, &err);
    check_message(s, &err);
    if (s != LLAMA2_OK || !logits) {
        fprintf(stderr, "eval of a valid model failed: %s\n", err.message);
        abort();
    }
    /* Whatever the weights make of the logits (NaN, inf), sampling must
     * give an id in the vocabulary: greedy, nucleus, and every stage on. */
    const llama2_sampler_options settings[] = {
        {.temperature = 0.0f, .top_p = 0.9f, .seed = 42},
        {.temperature = 1.0f, .top_p = 0.9f, .seed = 42},
        {.temperature = 0.8f, .top_p = 0.9f, .top_k = 3, .min_p = 0.05f, .repeat_penalty = 1.3f,
         .repeat_last_n = 4, .presence_penalty = 0.5f, .frequency_penalty = 0.25f, .seed = 42},
    };
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++) {
        llama2_sampler *sampler = NULL;
        if (llama2_sampler_create(c->vocab_size, &settings[i], &sampler, &err) != LLAMA2_OK) abort();
        llama2_sampler_accept(sampler, tokens[0]);
        int id = llama2_sampler_sample(sampler, logits);
        if (id < 0 || id >= c->vocab_size) {
            fprintf(stderr, "sampled id %d outside the vocabulary of %d\n", id, c->vocab_size);
            abort();
        }
        llama2_sampler_destroy(sampler);
        s = llama2_session_eval(session, tokens, 1, 0, &logits, &err);
        if (s != LLAMA2_OK) abort();
    }
    /* Past the window: must be refused, not run. */
    s = llama2_session_eval(session, tokens, 1, c->seq_len, &logits, &err);
    if (s == LLAMA2_OK) {
        fprintf(stderr, "eval at position seq_len was accepted\n");
        abort();
    }
    check_message(s, &err);
    llama2_session_destroy(session);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (input.fd < 0) fuzz_file_prepare(&input, "checkpoint");
    fuzz_file_put(&input, data, size);

    llama2_model *mapped = NULL, *read = NULL;
    llama2_error err_mapped = {0}, err_read = {0};
    llama2_model_options mmap_opts = {0}, read_opts = {0};
    read_opts.no_mmap = 1;
    llama2_status s1 = llama2_model_open(input.path, &mmap_opts, &mapped, &err_mapped);
    llama2_status s2 = llama2_model_open(input.path, &read_opts, &read, &err_read);
    check_message(s1, &err_mapped);
    check_message(s2, &err_read);
    if (s1 != s2 || (s1 == LLAMA2_OK) != (mapped != NULL) || (s2 == LLAMA2_OK) != (read != NULL)) {
        fprintf(stderr, "mmap and read disagree: %d '%s' / %d '%s'\n", (int)s1, err_mapped.message, (int)s2,
                err_read.message);
        abort();
    }
    if (s1 == LLAMA2_OK) {
        const llama2_config *a = llama2_model_config(mapped), *b = llama2_model_config(read);
        if (memcmp(a, b, sizeof *a) != 0) abort();
        if (a->dim <= 0 || a->hidden_dim <= 0 || a->n_layers <= 0 || a->n_heads <= 0 || a->n_kv_heads <= 0 ||
            a->vocab_size <= 0 || a->seq_len <= 0 || a->dim % a->n_heads != 0 || a->n_heads % a->n_kv_heads != 0) {
            fprintf(stderr, "a model with a bad shape was accepted\n");
            abort();
        }
        if (!(isfinite(a->rope_theta) && a->rope_theta > 0.0f && isfinite(a->norm_eps) && a->norm_eps > 0.0f)) {
            fprintf(stderr, "a model with rope theta %g and RMSNorm epsilon %g was accepted\n", (double)a->rope_theta,
                    (double)a->norm_eps);
            abort();
        }
        run_model(mapped);
        run_model(read);
    }
    llama2_model_close(mapped);
    llama2_model_close(read);
    return 0;
}
