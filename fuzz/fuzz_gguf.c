/*
 * libFuzzer target: arbitrary bytes as a GGUF file.
 *
 * First the parser alone, on the bytes in memory: whatever it accepts must
 * hold what it promised (every string, array and tensor inside the bytes).
 * Then the bytes as a file (a memfd, or a temporary file where memfd_create
 * is missing), opened as a model, mapped and read into memory: both opens
 * must agree; a model that opens gives its tokenizer (SentencePiece or
 * byte-level BPE), which encodes a text
 * and decodes every id, and, when small, runs a few tokens.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "llama2.h"
#include "model/gguf.h"

#define MAX_RUN_FLOATS (1u << 20)

static fuzz_file input = {-1, ""};

static int inside(const uint8_t *data, size_t size, const void *p, size_t n) {
    const uint8_t *q = p;
    return q >= data && q <= data + size && n <= (size_t)(data + size - q);
}

static void check_parse(const uint8_t *data, size_t size) {
    l2_gguf g;
    llama2_error err = {0};
    llama2_status s = l2_gguf_parse(data, size, &g, &err);
    fuzz_check_message(s, &err);
    if (s == LLAMA2_OK) {
        for (size_t i = 0; i < g.n_kv; i++) {
            const l2_gguf_kv *kv = &g.kv[i];
            if (!inside(data, size, kv->key.data, kv->key.len)) abort();
            if (kv->type == L2_GGUF_STRING) {
                l2_gguf_str v = l2_gguf_string_at(kv, 0);
                if (!inside(data, size, v.data, v.len)) abort();
            } else if (kv->type == L2_GGUF_ARRAY && kv->array_type == L2_GGUF_STRING) {
                for (size_t k = 0; k < kv->array_len; k++) {
                    l2_gguf_str v = l2_gguf_string_at(kv, k);
                    if (!inside(data, size, v.data, v.len)) abort();
                }
            } else if (kv->type == L2_GGUF_ARRAY) {
                if (!inside(data, size, kv->value, kv->array_len * l2_gguf_value_size(kv->array_type))) abort();
            } else if (!inside(data, size, kv->value, l2_gguf_value_size(kv->type))) {
                abort();
            }
        }
        for (size_t i = 0; i < g.n_tensors; i++)
            if (!inside(data, size, g.tensors[i].data, g.tensors[i].bytes)) abort();
    }
    l2_gguf_free(&g);
}

static void use_model(const llama2_model *m) {
    const llama2_config *c = llama2_model_config(m);
    llama2_tokenizer *tok = NULL;
    llama2_error err = {0};
    llama2_status s = llama2_model_tokenizer(m, &tok, &err);
    fuzz_check_message(s, &err);
    if (s == LLAMA2_OK) {
        /* SentencePiece: a token a row; byte-level BPE: padding rows of
         * type unused are left out, so no more tokens than rows. */
        const int n_tokens = llama2_tokenizer_vocab_size(tok);
        if (llama2_tokenizer_get_kind(tok) == LLAMA2_TOKENIZER_BPE ? n_tokens > c->vocab_size || n_tokens < 1
                                                                    : n_tokens != c->vocab_size)
            abort();
        int ids[64], n = 0;
        s = llama2_tokenize(tok, "Once upon a time \xc3\xa9", 1, 1, ids, &n, &err);
        fuzz_check_message(s, &err);
        for (int i = 0; s == LLAMA2_OK && i < n; i++)
            if (ids[i] < 0 || ids[i] >= c->vocab_size) abort();
        for (int id = 0; id < c->vocab_size; id++) {
            size_t len;
            llama2_token_piece(tok, LLAMA2_TOKEN_BOS, id, &len);
        }
        llama2_tokenizer_close(tok);
    }
    const uint64_t floats = (uint64_t)c->n_layers * (uint64_t)c->seq_len * (uint64_t)c->dim * 2 +
                            (uint64_t)c->vocab_size + (uint64_t)c->hidden_dim * 4;
    if (c->seq_len > 64 || floats > MAX_RUN_FLOATS) return;
    llama2_session *session = NULL;
    llama2_session_options opts = {.batch_size = 2};
    s = llama2_session_create(m, &opts, &session, &err);
    fuzz_check_message(s, &err);
    if (s != LLAMA2_OK) return;
    int tokens[2] = {LLAMA2_TOKEN_BOS % c->vocab_size, c->vocab_size - 1};
    float *logits = NULL;
    s = llama2_session_eval(session, tokens, c->seq_len < 2 ? 1 : 2, 0, &logits, &err);
    if (s != LLAMA2_OK || !logits) abort();
    llama2_session_destroy(session);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    check_parse(data, size);
    if (input.fd < 0) fuzz_file_prepare(&input, "gguf");
    fuzz_file_put(&input, data, size);
    llama2_model *mapped = NULL, *read = NULL;
    llama2_error e1 = {0}, e2 = {0};
    llama2_model_options mmap_opts = {0}, read_opts = {.no_mmap = 1};
    llama2_status s1 = llama2_model_open(input.path, &mmap_opts, &mapped, &e1);
    llama2_status s2 = llama2_model_open(input.path, &read_opts, &read, &e2);
    fuzz_check_message(s1, &e1);
    fuzz_check_message(s2, &e2);
    if (s1 != s2 || (s1 == LLAMA2_OK) != (mapped != NULL) || (s2 == LLAMA2_OK) != (read != NULL)) abort();
    if (s1 != LLAMA2_OK && strcmp(e1.message, e2.message) != 0) abort();
    if (s1 == LLAMA2_OK) {
        use_model(mapped);
        use_model(read);
    }
    llama2_model_close(mapped);
    llama2_model_close(read);
    return 0;
}
