/* Byte-level BPE (Llama 3, GPT-2 style): the vocabulary as raw bytes, merges
 * by rank, the pre-tokenizer's split, and the tokenizer file that carries
 * them (docs/FORMAT.md). Internal: the public face is llama2_tokenizer. */
#ifndef LLAMA2_TEXT_BPE_H
#define LLAMA2_TEXT_BPE_H

#include <stddef.h>
#include <stdint.h>

#include "llama2.h"

/* Token types, numbered as GGUF's tokenizer.ggml.token_type numbers them. */
enum {
    L2_BPE_NORMAL = 1,       /* a piece of text, made by merges */
    L2_BPE_CONTROL = 3,      /* special: matched in text only when asked, hidden in output */
    L2_BPE_USER_DEFINED = 4  /* an added token that is text: always matched whole */
};

/* The pre-tokenizer splits the tokenizer knows. */
enum { L2_BPE_PRE_LLAMA3 = 1 };

#define L2_BPE_MAX_END_TOKENS 8

/* Everything a BPE tokenizer is made from, tokens as raw bytes. */
typedef struct l2_bpe_spec {
    int n_tokens;
    const char *const *pieces;  /* n_tokens byte strings */
    const size_t *lengths;      /* their lengths */
    const unsigned char *types; /* n_tokens L2_BPE_* types */
    int n_merges;
    const int32_t *merges;      /* n_merges (left id, right id) pairs, by rank */
    int pre_tokenizer;          /* L2_BPE_PRE_* */
    int bos;                    /* -1: none */
    int n_end;                  /* tokens that end generation; the first is EOS */
    int end[L2_BPE_MAX_END_TOKENS];
} l2_bpe_spec;

typedef struct l2_bpe l2_bpe;

/* Builds the tables; fails with a one-line message on a bad vocabulary
 * (a missing byte token, a merge whose result is not a token...). */
llama2_status l2_bpe_create(const l2_bpe_spec *spec, l2_bpe **out, llama2_error *err);
void l2_bpe_free(l2_bpe *bpe);
/* The spec the tokenizer was made from (its pieces point into it). */
const l2_bpe_spec *l2_bpe_get_spec(const l2_bpe *bpe);

/* Appends the ids of text[0..len) to ids (room for len ids) and adds their
 * count to *n. parse_special: the text of control tokens becomes them. */
llama2_status l2_bpe_encode(const l2_bpe *bpe, const char *text, size_t len, int parse_special, int *ids, int *n,
                            llama2_error *err);
/* The bytes of token id (empty outside the vocabulary). */
const char *l2_bpe_piece(const l2_bpe *bpe, int id, size_t *len);
/* The token whose bytes are piece[0..len), or -1. */
int l2_bpe_find(const l2_bpe *bpe, const char *piece, size_t len);

/* The end of the pre-token that starts at text[i] (i < len), by the Llama 3
 * split: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
 *  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ */
size_t l2_bpe_split_llama3(const unsigned char *text, size_t len, size_t i);

/* The file: recognising, reading (LLAMA2_E_FORMAT on a bad one) and writing
 * (a malloc'd image of the file). */
int l2_bpe_file_is(const void *data, size_t size);
llama2_status l2_bpe_file_read(const void *data, size_t size, l2_bpe **out, llama2_error *err);
llama2_status l2_bpe_file_write(const l2_bpe *bpe, unsigned char **data, size_t *size, llama2_error *err);

/* GPT-2's byte-to-unicode map: the code point that stands for byte b in
 * tokenizer.json's and GGUF's pieces, and back (-1: no byte). */
unsigned l2_bpe_byte_char(unsigned char b);
int l2_bpe_char_byte(unsigned cp);

/* Decodes one UTF-8 character of s[i..len): its code point in *cp and its
 * length; a byte that starts no valid character is one unit with cp
 * L2_BPE_INVALID_CP. */
#define L2_BPE_INVALID_CP 0xFFFFFFFFu
size_t l2_utf8_next(const unsigned char *s, size_t len, size_t i, unsigned *cp);

#endif
