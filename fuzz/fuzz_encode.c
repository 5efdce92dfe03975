/*
 * libFuzzer target: arbitrary bytes encoded as text with the shared
 * tokenizers (tok512.bin and tokenizer.bin, or $LLAMA2_FUZZ_TOKENIZER).
 *
 * The input, cut at its first NUL, is encoded with each tokenizer (and,
 * when under 4 KiB, again with BOS and EOS); short inputs are also encoded
 * repeated to 8 KiB, for long texts without waiting for the fuzzer to grow
 * them. (Encoding runs slowly under the fuzzer's comparison tracing, so each
 * input does only a few.) Checks: the count fits
 * llama2_tokenize_capacity, every id is in the vocabulary, and the pieces of
 * the ids (byte tokens as their byte) spell " " + text: merges never lose,
 * add or reorder a byte.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "llama2.h"

#define REPEAT_BELOW 256
#define REPEAT_TO (8u << 10)
#define BOS_EOS_BELOW 4096

static llama2_tokenizer *tokenizers[2];
static int n_tokenizers;

static void fail(const char *what, const char *text) {
    fprintf(stderr, "fuzz_encode: %s (text of %zu bytes)\n", what, strlen(text));
    abort();
}

static void check(const llama2_tokenizer *t, const char *text, int add_bos, int add_eos) {
    size_t len = strlen(text), cap = llama2_tokenize_capacity(len);
    int *ids = malloc(cap * sizeof *ids);
    char *spelled = malloc(len + 2);
    if (!ids || !spelled) abort();
    int n = -1;
    llama2_error err = {0};
    llama2_status s = llama2_tokenize(t, text, add_bos, add_eos, ids, &n, &err);
    if (s != LLAMA2_OK) {
        /* Both shared tokenizers have byte tokens, BOS, EOS and " ". */
        fprintf(stderr, "fuzz_encode: %s\n", err.message);
        fail("encoding failed", text);
    }
    if (n < 0 || (size_t)n > cap) fail("more ids than llama2_tokenize_capacity", text);
    int vocab = llama2_tokenizer_vocab_size(t);
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= vocab) fail("an id outside the vocabulary", text);
    if (add_bos && (n == 0 || ids[0] != LLAMA2_TOKEN_BOS)) fail("no BOS first", text);
    if (add_eos && (n == 0 || ids[n - 1] != LLAMA2_TOKEN_EOS)) fail("no EOS last", text);
    if (!add_bos && !add_eos) {
        size_t at = 0;
        for (int i = 0; i < n; i++) {
            size_t piece_len;
            const char *piece = llama2_token_piece(t, 0, ids[i], &piece_len);
            if (at + piece_len > len + 1) fail("the pieces are longer than the text", text);
            memcpy(spelled + at, piece, piece_len);
            at += piece_len;
        }
        int same = len == 0 ? at == 0 : at == len + 1 && spelled[0] == ' ' && memcmp(spelled + 1, text, len) == 0;
        if (!same) fail("the pieces do not spell the text", text);
    }
    free(spelled);
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (n_tokenizers == 0) n_tokenizers = fuzz_load_tokenizers(tokenizers, 2);
    char *text = malloc(size + 1);
    if (!text) abort();
    memcpy(text, data, size);
    text[size] = '\0';
    size_t len = strlen(text);
    for (int i = 0; i < n_tokenizers; i++) {
        check(tokenizers[i], text, 0, 0);
        if (len < BOS_EOS_BELOW) check(tokenizers[i], text, 1, (int)(size & 1));
    }
    if (len > 0 && len < REPEAT_BELOW) {
        char *longer = malloc(REPEAT_TO + 1);
        if (!longer) abort();
        for (size_t at = 0; at < REPEAT_TO; at += len)
            memcpy(longer + at, text, REPEAT_TO - at < len ? REPEAT_TO - at : len);
        longer[REPEAT_TO] = '\0';
        check(tokenizers[size % (size_t)n_tokenizers], longer, 0, 0);
        free(longer);
    }
    free(text);
    return 0;
}
