/*
 * A BPE vocabulary as Hugging Face's tokenizer.json and GGUF spell it, made
 * into raw bytes: GPT-2's byte-to-unicode map (each byte a printable
 * character: the printable Latin-1 bytes stand for themselves, the others
 * for U+0100 onwards in order), the merges' "left right" names resolved to
 * ids, and the public constructor llama2_tokenizer_from_bpe.
 */
#include <stdlib.h>
#include <string.h>

#include "bpe.h"
#include "platform/checks.h"
#include "tokenizer_internal.h"

static int stands_for_itself(unsigned b) { return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174; }

unsigned l2_bpe_byte_char(unsigned char b) {
    if (stands_for_itself(b)) return b;
    unsigned n = 0;
    for (unsigned c = 0; c < b; c++) n += !stands_for_itself(c);
    return 256 + n;
}

int l2_bpe_char_byte(unsigned cp) {
    if (cp < 256) return stands_for_itself(cp) ? (int)cp : -1;
    if (cp >= 256 + 68) return -1; /* 68 bytes do not stand for themselves */
    unsigned n = cp - 256;
    for (unsigned c = 0; c < 256; c++)
        if (!stands_for_itself(c) && n-- == 0) return (int)c;
    return -1;
}

/* Quotes at most 40 bytes of a name for a message. */
static const char *shown(const char *s, char buf[64]) {
    size_t n = strlen(s);
    if (n > 40) n = 40;
    memcpy(buf, s, n);
    strcpy(buf + n, strlen(s) > 40 ? "..." : "");
    return buf;
}

/* Spells a normal token's characters as the bytes they stand for, into out
 * (room for strlen(s) bytes); returns the length, or -1 (with *bad the
 * code point) where a character stands for no byte. */
static long map_to_bytes(const char *s, char *out, unsigned *bad) {
    size_t len = strlen(s), n = 0;
    for (size_t i = 0; i < len;) {
        unsigned cp;
        i += l2_utf8_next((const unsigned char *)s, len, i, &cp);
        int b = cp == L2_BPE_INVALID_CP ? -1 : l2_bpe_char_byte(cp);
        if (b < 0) {
            *bad = cp;
            return -1;
        }
        out[n++] = (char)b;
    }
    return (long)n;
}

typedef struct vocab_bytes {
    char *text;
    const char **pieces;
    size_t *lengths;
    unsigned char *types;
    int32_t *merges;
} vocab_bytes;

static void free_vocab_bytes(vocab_bytes *v) {
    free(v->text);
    free(v->pieces);
    free(v->lengths);
    free(v->types);
    free(v->merges);
}

static llama2_status decode_tokens(const llama2_bpe_vocab *v, vocab_bytes *out, llama2_error *err) {
    size_t total = 1, n = (size_t)v->n_tokens;
    for (size_t i = 0; i < n; i++) {
        if (!v->tokens[i]) return l2_fail(err, LLAMA2_E_INVALID, "BPE vocabulary: token %zu is NULL", i);
        total += strlen(v->tokens[i]);
    }
    out->text = malloc(total);
    out->pieces = malloc(n * sizeof *out->pieces);
    out->lengths = malloc(n * sizeof *out->lengths);
    out->types = malloc(n);
    if (!out->text || !out->pieces || !out->lengths || !out->types)
        return l2_fail(err, LLAMA2_E_NOMEM, "out of memory for a BPE vocabulary of %d tokens", v->n_tokens);
    char *dst = out->text, name[64];
    for (size_t i = 0; i < n; i++) {
        int type = v->token_types ? v->token_types[i] : L2_BPE_NORMAL;
        /* GGUF's unknown, unused and byte types do not occur in byte-level BPE vocabularies. */
        if (type != L2_BPE_NORMAL && type != L2_BPE_CONTROL && type != L2_BPE_USER_DEFINED)
            return l2_fail(err, LLAMA2_E_FORMAT, "BPE token %zu has type %d (known: 1 normal, 3 control, 4 user-defined)",
                           i, type);
        out->types[i] = (unsigned char)type;
        long len;
        if (type == L2_BPE_NORMAL) {
            unsigned bad = 0;
            len = map_to_bytes(v->tokens[i], dst, &bad);
            if (len < 0)
                return bad == L2_BPE_INVALID_CP
                           ? l2_fail(err, LLAMA2_E_FORMAT, "BPE token %zu (\"%s\") is not valid UTF-8", i,
                                     shown(v->tokens[i], name))
                           : l2_fail(err, LLAMA2_E_FORMAT,
                                     "BPE token %zu (\"%s\"): U+%04X is not one of GPT-2's byte characters", i,
                                     shown(v->tokens[i], name), bad);
        } else {
            len = (long)strlen(v->tokens[i]);
            memcpy(dst, v->tokens[i], (size_t)len);
        }
        out->pieces[i] = dst;
        out->lengths[i] = (size_t)len;
        dst += len;
    }
    return LLAMA2_OK;
}

/* The id of the normal token spelled by name[0..len), or -1. */
static int find_named(const l2_bpe *b, const char *name, size_t len, char *scratch) {
    char *copy = scratch + len + 1;
    memcpy(copy, name, len);
    copy[len] = '\0';
    unsigned bad;
    long n = map_to_bytes(copy, scratch, &bad);
    return n < 0 ? -1 : l2_bpe_find(b, scratch, (size_t)n);
}

static llama2_status resolve_merges(const llama2_bpe_vocab *v, const l2_bpe *plain, vocab_bytes *out,
                                    llama2_error *err) {
    out->merges = malloc((size_t)(v->n_merges ? v->n_merges : 1) * 2 * sizeof *out->merges);
    if (!out->merges) return l2_fail(err, LLAMA2_E_NOMEM, "out of memory for %d BPE merges", v->n_merges);
    char name[64];
    for (int r = 0; r < v->n_merges; r++) {
        const char *m = v->merges[r];
        const char *space = m ? strchr(m, ' ') : NULL;
        if (!space || space == m || !space[1] || strchr(space + 1, ' '))
            return l2_fail(err, LLAMA2_E_FORMAT, "BPE merge %d (\"%s\") is not two tokens with a space between", r,
                           m ? shown(m, name) : "");
        size_t len = strlen(m);
        char *scratch = malloc(2 * len + 2);
        if (!scratch) return l2_fail(err, LLAMA2_E_NOMEM, "out of memory for BPE merges");
        int left = find_named(plain, m, (size_t)(space - m), scratch);
        int right = find_named(plain, space + 1, strlen(space + 1), scratch);
        free(scratch);
        if (left < 0 || right < 0)
            return l2_fail(err, LLAMA2_E_FORMAT, "BPE merge %d (\"%s\") names a token not in the vocabulary", r,
                           shown(m, name));
        out->merges[2 * r] = left;
        out->merges[2 * r + 1] = right;
    }
    return LLAMA2_OK;
}

llama2_status llama2_tokenizer_from_bpe(const llama2_bpe_vocab *v, llama2_tokenizer **out, llama2_error *err) {
    if (out) *out = NULL;
    if (!v || !out || !v->tokens || v->n_tokens <= 0 || v->n_merges < 0 || (v->n_merges > 0 && !v->merges) ||
        v->n_end < 0 || (v->n_end > 0 && !v->end_ids))
        return l2_fail(err, LLAMA2_E_INVALID, "tokenizer_from_bpe: no vocabulary, no tokens or no output");
    l2_bpe_spec spec;
    memset(&spec, 0, sizeof spec);
    if (!v->pre_tokenizer || (strcmp(v->pre_tokenizer, "llama3") != 0 && strcmp(v->pre_tokenizer, "llama-bpe") != 0))
        return l2_fail(err, LLAMA2_E_FORMAT, "BPE pre-tokenizer \"%s\" is not supported (llama3 is)",
                       v->pre_tokenizer ? v->pre_tokenizer : "");
    if (v->n_end > L2_BPE_MAX_END_TOKENS)
        return l2_fail(err, LLAMA2_E_FORMAT, "BPE vocabulary has %d end tokens (at most %d)", v->n_end,
                       L2_BPE_MAX_END_TOKENS);
    vocab_bytes bytes = {0};
    llama2_status st = decode_tokens(v, &bytes, err);
    spec.n_tokens = v->n_tokens;
    spec.pieces = bytes.pieces;
    spec.lengths = bytes.lengths;
    spec.types = bytes.types;
    spec.pre_tokenizer = L2_BPE_PRE_LLAMA3;
    spec.bos = v->bos_id;
    spec.n_end = v->n_end;
    for (int i = 0; i < v->n_end; i++) spec.end[i] = v->end_ids[i];
    l2_bpe *plain = NULL, *bpe = NULL;
    if (st == LLAMA2_OK) st = l2_bpe_create(&spec, &plain, err); /* no merges yet: to look names up */
    if (st == LLAMA2_OK) st = resolve_merges(v, plain, &bytes, err);
    if (st == LLAMA2_OK) {
        spec.n_merges = v->n_merges;
        spec.merges = bytes.merges;
        st = l2_bpe_create(&spec, &bpe, err);
    }
    l2_bpe_free(plain);
    free_vocab_bytes(&bytes);
    if (st == LLAMA2_OK) st = l2_tokenizer_from_bpe_tables(bpe, out, err);
    return st;
}
