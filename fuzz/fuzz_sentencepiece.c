/*
 * libFuzzer target: arbitrary bytes as a SentencePiece tokenizer.model and
 * as a llama2.c tokenizer.bin. A model that parses must export a
 * tokenizer.bin the engine loads, with one entry per piece; a tokenizer.bin
 * that converts must give a model that parses back with one piece per
 * entry. Refusals are one line.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "llama2.h"
#include "sentencepiece.h"

static void as_model(const uint8_t *data, size_t size) {
    l2_sp_model sp;
    llama2_error err = {0};
    llama2_status s = l2_sp_parse(data, size, "fuzz.model", &sp, &err);
    fuzz_check_message(s, &err);
    if (s != LLAMA2_OK) return;
    unsigned char *bin;
    size_t len;
    s = l2_sp_to_llama2c(&sp, "fuzz.model", &bin, &len, &err);
    fuzz_check_message(s, &err);
    if (s == LLAMA2_OK) {
        llama2_tokenizer *t = NULL;
        if (llama2_tokenizer_from_memory(bin, len, (int)sp.n_pieces, &t, &err) != LLAMA2_OK) {
            fprintf(stderr, "the exported tokenizer.bin does not load: %s\n", err.message);
            abort();
        }
        llama2_tokenizer_close(t);
        free(bin);
    }
    l2_sp_free(&sp);
}

static void as_tokenizer_bin(const uint8_t *data, size_t size) {
    unsigned char *proto;
    size_t len;
    llama2_error err = {0};
    llama2_status s = l2_sp_from_llama2c(data, size, "fuzz.bin", &proto, &len, &err);
    fuzz_check_message(s, &err);
    if (s != LLAMA2_OK) return;
    l2_sp_model sp;
    if (l2_sp_parse(proto, len, "fuzz.model", &sp, &err) != LLAMA2_OK) {
        fprintf(stderr, "the model written does not parse: %s\n", err.message);
        abort();
    }
    size_t entries = 0;
    for (size_t pos = 4; pos < size; entries++) {
        uint32_t n;
        memcpy(&n, data + pos + 4, 4);
        pos += 8 + n;
    }
    if (sp.n_pieces != entries) abort();
    l2_sp_free(&sp);
    free(proto);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    as_model(data, size);
    as_tokenizer_bin(data, size);
    return 0;
}
