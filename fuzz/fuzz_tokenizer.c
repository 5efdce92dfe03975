/*
 * libFuzzer target: arbitrary bytes as a tokenizer.bin, loaded with
 * vocab_size 0 (every entry the bytes hold) and with a fixed size of 8. A
 * tokenizer that loads is used: every piece decoded, and two texts (a fixed
 * one and the tail of the input) encoded, each id checked to be in range.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "llama2.h"

#define FIXED_VOCAB 8
#define MAX_PIECES 4096 /* pieces decoded per tokenizer */
#define TAIL_TEXT 64    /* bytes of the input encoded as text */

static void encode(const llama2_tokenizer *t, const char *text) {
    size_t len = strlen(text);
    int *ids = malloc(llama2_tokenize_capacity(len) * sizeof *ids);
    if (!ids) abort();
    int n = -1;
    llama2_error err = {0};
    llama2_status s = llama2_tokenize(t, text, 1, 1, ids, &n, &err);
    fuzz_check_message(s, &err);
    if (s == LLAMA2_OK) {
        int vocab = llama2_tokenizer_vocab_size(t);
        if (n < 0 || (size_t)n > llama2_tokenize_capacity(len)) abort();
        for (int i = 0; i < n; i++)
            if (ids[i] < 0 || ids[i] >= vocab) {
                fprintf(stderr, "id %d outside the vocabulary of %d\n", ids[i], vocab);
                abort();
            }
    }
    free(ids);
}

static void use(const llama2_tokenizer *t, const uint8_t *data, size_t size) {
    int vocab = llama2_tokenizer_vocab_size(t);
    if (vocab <= 0) abort();
    int n = vocab < MAX_PIECES ? vocab : MAX_PIECES;
    llama2_text_filter filter;
    llama2_text_filter_init(&filter);
    for (int id = -1; id <= n; id++) {
        size_t len = 99;
        const char *piece = llama2_token_piece(t, id == 0 ? LLAMA2_TOKEN_BOS : id - 1, id, &len);
        if (!piece || ((id < 0 || id >= vocab) && len != 0)) abort();
        char *out = malloc(len + 4);
        if (!out) abort();
        llama2_text_filter_push(&filter, piece, len, out);
        free(out);
    }
    encode(t, "Once upon a time, \xe2\x9c\x93 \xff<0x41>");
    char text[TAIL_TEXT + 1];
    size_t tail = size < TAIL_TEXT ? size : TAIL_TEXT;
    memcpy(text, data + size - tail, tail);
    text[tail] = '\0';
    encode(t, text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const int sizes[2] = {0, FIXED_VOCAB};
    for (int i = 0; i < 2; i++) {
        llama2_tokenizer *t = NULL;
        llama2_error err = {0};
        llama2_status s = llama2_tokenizer_from_memory(data, size, sizes[i], &t, &err);
        fuzz_check_message(s, &err);
        if ((s == LLAMA2_OK) != (t != NULL)) abort();
        if (s != LLAMA2_OK) continue;
        if (sizes[i] > 0 && llama2_tokenizer_vocab_size(t) != sizes[i]) abort();
        use(t, data, size);
        llama2_tokenizer_close(t);
    }
    return 0;
}
