/*
 * libFuzzer target: arbitrary bytes as a GBNF grammar.
 *
 * The parse must succeed or fail with a one-line message that starts with
 * "line:column: " (or say it ran out of memory); it must never crash, hang
 * or take memory beyond its limits. A grammar that parses is then run: the
 * matcher on the empty text, the input itself and a few short texts, and
 * a sampler with it on tok512.bin's vocabulary ($LLAMA2_MODELS) draws a few
 * tokens from fixed logits, each of which must keep the text in the
 * grammar.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "llama2.h"

static llama2_tokenizer *tokenizer;

static void check_message(const char *message) {
    const char *p = message;
    int digits = 0;
    while (*p >= '0' && *p <= '9') p++, digits++;
    if (digits == 0 || *p++ != ':') goto bad;
    for (digits = 0; *p >= '0' && *p <= '9'; p++) digits++;
    if (digits == 0 || strncmp(p, ": ", 2) != 0) goto bad;
    return;
bad:
    fprintf(stderr, "fuzz_grammar: a message without its position: %s\n", message);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!tokenizer) {
        llama2_tokenizer *t[2];
        int n = fuzz_load_tokenizers(t, 2);
        tokenizer = t[0];
        for (int i = 1; i < n; i++) llama2_tokenizer_close(t[i]);
    }
    llama2_grammar *g = NULL;
    llama2_error err = {0};
    llama2_status s = llama2_grammar_parse((const char *)data, size, &g, &err);
    fuzz_check_message(s, &err);
    if (s == LLAMA2_E_INVALID) check_message(err.message);
    if (s != LLAMA2_OK) return 0;

    static const char *texts[] = {"", "a", "yes", "0", "[1,2]", "{\"a\": 1}", "\xc3\xa9"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) llama2_grammar_match(g, texts[i], strlen(texts[i]));
    llama2_grammar_match(g, (const char *)data, size);

    const int vocab = llama2_tokenizer_vocab_size(tokenizer);
    llama2_sampler_options o = llama2_sampler_defaults();
    o.seed = size + 1;
    llama2_sampler *sampler = NULL;
    float *logits = malloc((size_t)vocab * sizeof *logits);
    if (!logits || llama2_sampler_create(vocab, &o, &sampler, &err) != LLAMA2_OK) abort();
    if (llama2_sampler_set_grammar(sampler, g, tokenizer, &err) == LLAMA2_OK) {
        llama2_sampler_accept(sampler, LLAMA2_TOKEN_BOS);
        char text[512];
        size_t len = 0;
        int prev = LLAMA2_TOKEN_BOS;
        for (int step = 0; step < 16; step++) {
            for (int i = 0; i < vocab; i++) logits[i] = (float)((i * 7919 + step * 104729) % 1000) / 100.0f;
            int t = llama2_sampler_sample(sampler, logits);
            if (t == LLAMA2_TOKEN_BOS || t == LLAMA2_TOKEN_EOS) break;
            size_t n;
            const char *piece = llama2_token_piece(tokenizer, prev, t, &n);
            if (n == 0 || len + n > sizeof text) break;
            memcpy(text + len, piece, n);
            len += n;
            llama2_sampler_accept(sampler, t);
            prev = t;
        }
    }
    llama2_sampler_destroy(sampler);
    free(logits);
    llama2_grammar_free(g);
    return 0;
}
