/*
 * libFuzzer target: llama2-server's request bodies to parameters
 * (server/request.c) and their error objects (server/response.c), with the
 * tok512.bin tokenizer.
 *
 * The first byte picks the endpoint (completion, chat completion, tokenize,
 * detokenize), the chat template and the context length; the rest is the
 * body. Checks: an accepted request has a prompt of 1 to context ids in the
 * vocabulary, 1 to max_choices choices, non-empty stop strings, and sampler
 * options and stop strings that the library accepts; a refused one has a
 * 400 (or 500) status, a type and a message, and its error object is valid
 * JSON.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fuzz_common.h"
#include "llama2.h"
#include "request.h"
#include "response.h"

static llama2_tokenizer *tokenizers[2];
static int n_tokenizers;

static void fail(const char *what) {
    fprintf(stderr, "fuzz_server_request: %s\n", what);
    abort();
}

static void check_error(const server_error *e) {
    if ((e->status != 400 && e->status != 500) || !e->type || e->message[0] == '\0') fail("a bad error");
    char *json = server_error_json(e);
    json_error_t jerr;
    json_t *v = json ? json_loads(json, 0, &jerr) : NULL;
    if (!v || !json_is_string(json_object_get(json_object_get(v, "error"), "message")))
        fail("an error object that is not valid JSON");
    json_decref(v);
    free(json);
}

static void check_params(const server_limits *lim, const server_params *p) {
    if (p->n_prompt < 1 || p->n_prompt > lim->context_length) fail("a prompt outside 1..context");
    for (int i = 0; i < p->n_prompt; i++)
        if (p->prompt[i] < 0 || p->prompt[i] >= lim->vocab_size) fail("a prompt id outside the vocabulary");
    if (p->n < 1 || p->n > lim->max_choices) fail("choices outside 1..max_choices");
    if (p->max_tokens < 0) fail("negative max_tokens");
    for (int i = 0; i < p->n_stop; i++)
        if (!p->stop[i] || p->stop[i][0] == '\0') fail("an empty stop string");
    llama2_error err = {0};
    llama2_sampler *sampler = NULL;
    if (llama2_sampler_create(lim->vocab_size, &p->sampling, &sampler, &err) != LLAMA2_OK)
        fail("sampler options the library refuses");
    llama2_sampler_destroy(sampler);
    llama2_text_stream *stream = NULL;
    llama2_text_stream_options o = {.stop = (const char *const *)p->stop, .n_stop = p->n_stop};
    if (llama2_text_stream_create(lim->tokenizer, &o, &stream, &err) != LLAMA2_OK)
        fail("stop strings the library refuses");
    llama2_text_stream_destroy(stream);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (n_tokenizers == 0) n_tokenizers = fuzz_load_tokenizers(tokenizers, 1);
    if (size < 1) return 0;
    const server_limits lim = {
        .tokenizer = tokenizers[0],
        .chat_template = (llama2_chat_template)((data[0] >> 2) & 3),
        .context_length = 1 + 16 * (data[0] >> 4),
        .max_choices = 4,
        .vocab_size = llama2_tokenizer_vocab_size(tokenizers[0]),
    };
    const char *body = (const char *)data + 1;
    const size_t len = size - 1;
    server_error e;
    switch (data[0] & 3) {
    case 0:
    case 1: {
        server_params p;
        if (server_parse_completion(&lim, data[0] & 1, body, len, &p, &e) == 0) {
            check_params(&lim, &p);
            server_params_free(&p);
        } else {
            check_error(&e);
        }
        break;
    }
    case 2: {
        int *ids, n_ids;
        if (server_parse_tokenize(&lim, body, len, &ids, &n_ids, &e) == 0) {
            for (int i = 0; i < n_ids; i++)
                if (ids[i] < 0 || ids[i] >= lim.vocab_size) fail("/tokenize: an id outside the vocabulary");
            free(server_tokens_json(ids, n_ids));
            free(ids);
        } else {
            check_error(&e);
        }
        break;
    }
    default: {
        char *text;
        if (server_parse_detokenize(&lim, body, len, &text, &e) == 0) {
            char *json = server_content_json(text);
            if (!json) fail("/detokenize: text that is not valid UTF-8");
            free(json);
            free(text);
        } else {
            check_error(&e);
        }
        break;
    }
    }
    return 0;
}
