/*
 * libFuzzer target: arbitrary token id sequences decoded as llama2.c does
 * (llama2_token_piece after the previous id) and streamed through the text
 * filter, with both shared tokenizers.
 *
 * Every two input bytes are one id (little-endian, minus an offset, so that
 * negative ids and ids past the vocabulary come up as well as valid ones).
 * Checks: a piece outside the vocabulary is empty; the filter writes at most
 * n + 4 bytes per push (the buffer is exactly that long, so the sanitizer
 * sees any overrun); and everything it writes, over the whole sequence, is
 * valid UTF-8 with no control bytes other than whitespace.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "llama2.h"

static llama2_tokenizer *tokenizers[2];
static int n_tokenizers;

/* The length of the valid UTF-8 character at s (at most n bytes), or 0:
 * no overlong forms, no surrogates, nothing above U+10FFFF. */
static size_t utf8_char(const unsigned char *s, size_t n) {
    unsigned char b = s[0];
    if (b < 0x80) return 1;
    size_t len;
    unsigned lo = 0x80, hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) len = 2;
    else if (b >= 0xE0 && b <= 0xEF) len = 3;
    else if (b >= 0xF0 && b <= 0xF4) len = 4;
    else return 0;
    if (b == 0xE0) lo = 0xA0;
    if (b == 0xED) hi = 0x9F;
    if (b == 0xF0) lo = 0x90;
    if (b == 0xF4) hi = 0x8F;
    if (n < len || s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    return len;
}

static void check_text(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        if (s[i] < 0x20 && !(s[i] >= '\t' && s[i] <= '\r')) {
            fprintf(stderr, "fuzz_decode: control byte 0x%02X in the output\n", s[i]);
            abort();
        }
        if (s[i] == 0x7F) {
            fprintf(stderr, "fuzz_decode: DEL in the output\n");
            abort();
        }
        size_t len = utf8_char(s + i, n - i);
        if (len == 0) {
            fprintf(stderr, "fuzz_decode: invalid UTF-8 at byte %zu of the output\n", i);
            abort();
        }
        i += len;
    }
}

static void decode(const llama2_tokenizer *t, const uint8_t *data, size_t size, int offset) {
    int vocab = llama2_tokenizer_vocab_size(t);
    size_t n_ids = size / 2, cap = 256, len = 0;
    unsigned char *text = malloc(cap);
    if (!text) abort();
    llama2_text_filter filter;
    llama2_text_filter_init(&filter);
    int prev = LLAMA2_TOKEN_BOS;
    for (size_t i = 0; i < n_ids; i++) {
        int id = (int)(data[2 * i] | (unsigned)data[2 * i + 1] << 8) - offset;
        size_t piece_len = 12345;
        const char *piece = llama2_token_piece(t, prev, id, &piece_len);
        if (!piece) abort();
        if ((id < 0 || id >= vocab) && piece_len != 0) {
            fprintf(stderr, "fuzz_decode: id %d outside the vocabulary gave %zu bytes\n", id, piece_len);
            abort();
        }
        char *out = malloc(piece_len + 4);
        if (!out) abort();
        size_t got = llama2_text_filter_push(&filter, piece, piece_len, out);
        if (got > piece_len + 4) abort();
        while (len + got > cap) {
            cap *= 2;
            text = realloc(text, cap);
            if (!text) abort();
        }
        memcpy(text + len, out, got);
        len += got;
        free(out);
        prev = id;
    }
    check_text(text, len);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (n_tokenizers == 0) n_tokenizers = fuzz_load_tokenizers(tokenizers, 2);
    for (int i = 0; i < n_tokenizers; i++) {
        /* Ids around the vocabulary: from -64 up, most of them valid. */
        int vocab = llama2_tokenizer_vocab_size(tokenizers[i]);
        decode(tokenizers[i], data, size, 64);
        /* The same bytes folded into the vocabulary's range. */
        if (size >= 2 && vocab > 0) {
            uint8_t *folded = malloc(size);
            if (!folded) abort();
            for (size_t k = 0; k + 1 < size; k += 2) {
                unsigned v = (data[k] | (unsigned)data[k + 1] << 8) % (unsigned)vocab;
                folded[k] = (uint8_t)v;
                folded[k + 1] = (uint8_t)(v >> 8);
            }
            decode(tokenizers[i], folded, size & ~(size_t)1, 0);
            free(folded);
        }
    }
    return 0;
}
