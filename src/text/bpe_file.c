/*
 * The BPE tokenizer file (docs/FORMAT.md): a header, then llama2.c's
 * tokenizer.bin layout for the tokens (max_token_length, then per token a
 * float32 score, an int32 length and the bytes), then one type byte per
 * token and the merges as (left, right) id pairs in rank order. Every
 * number is little-endian. The magic read as llama2.c's int32
 * max_token_length is negative, which no llama2.c tokenizer has.
 */
#include <stdlib.h>
#include <string.h>

#include "bpe.h"
#include "platform/checks.h"

static const unsigned char magic[4] = {'B', 'P', 'E', 0xFF};
#define VERSION 1
#define HEADER_WORDS (7 + L2_BPE_MAX_END_TOKENS) /* magic, version, tokens, merges, pre, bos, n_end, end[] */
#define HEADER_BYTES (4 * HEADER_WORDS)

static uint32_t get_u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int32_t get_i32(const unsigned char *p) {
    uint32_t u = get_u32(p);
    int32_t v;
    memcpy(&v, &u, sizeof v);
    return v;
}

static void put_u32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

int l2_bpe_file_is(const void *data, size_t size) { return size >= 4 && memcmp(data, magic, 4) == 0; }

llama2_status l2_bpe_file_read(const void *data, size_t size, l2_bpe **out, llama2_error *err) {
    const unsigned char *d = data;
    *out = NULL;
    if (size < HEADER_BYTES + 4)
        return l2_fail(err, LLAMA2_E_FORMAT, "BPE tokenizer truncated: %zu bytes, the header needs %d", size,
                       HEADER_BYTES + 4);
    uint32_t version = get_u32(d + 4);
    if (version != VERSION)
        return l2_fail(err, LLAMA2_E_FORMAT, "BPE tokenizer version %lu, this build reads %d", (unsigned long)version,
                       VERSION);
    l2_bpe_spec spec;
    memset(&spec, 0, sizeof spec);
    uint32_t n_tokens = get_u32(d + 8), n_merges = get_u32(d + 12);
    if (n_tokens == 0 || n_tokens > (1u << 30) || n_merges > (1u << 30))
        return l2_fail(err, LLAMA2_E_FORMAT, "BPE tokenizer header: %lu tokens, %lu merges",
                       (unsigned long)n_tokens, (unsigned long)n_merges);
    spec.n_tokens = (int)n_tokens;
    spec.n_merges = (int)n_merges;
    spec.pre_tokenizer = get_i32(d + 16);
    spec.bos = get_i32(d + 20);
    spec.n_end = get_i32(d + 24);
    for (int i = 0; i < L2_BPE_MAX_END_TOKENS; i++) spec.end[i] = get_i32(d + 28 + 4 * i);
    /* The tokens: each entry must lie whole inside the file. An entry takes
     * at least 8 bytes, so the file holds at most `room` of them: no more are
     * allocated, whatever the header's count (the loop stops at the first
     * entry past the end). */
    const size_t room = (size - (HEADER_BYTES + 4)) / 8 + 1;
    const size_t slots = n_tokens < room ? n_tokens : room;
    const char **pieces = malloc(slots * sizeof *pieces);
    size_t *lengths = malloc(slots * sizeof *lengths);
    int32_t *merges = NULL;
    llama2_status st = pieces && lengths ? LLAMA2_OK : l2_fail(err, LLAMA2_E_NOMEM, "out of memory for a BPE tokenizer");
    size_t pos = HEADER_BYTES + 4;
    for (uint32_t i = 0; st == LLAMA2_OK && i < n_tokens; i++) {
        if (size - pos < 8) {
            st = l2_fail(err, LLAMA2_E_FORMAT, "BPE tokenizer truncated in token %lu of %lu", (unsigned long)i,
                         (unsigned long)n_tokens);
            break;
        }
        uint32_t len = get_u32(d + pos + 4);
        if (len > size - pos - 8) {
            st = l2_fail(err, LLAMA2_E_FORMAT, "BPE tokenizer truncated in token %lu of %lu", (unsigned long)i,
                         (unsigned long)n_tokens);
            break;
        }
        pieces[i] = (const char *)d + pos + 8;
        lengths[i] = len;
        pos += 8 + (size_t)len;
    }
    size_t merge_bytes = (size_t)n_merges * 8;
    if (st == LLAMA2_OK && (size - pos < n_tokens || size - pos - n_tokens != merge_bytes))
        st = l2_fail(err, LLAMA2_E_FORMAT,
                     "BPE tokenizer size: %zu bytes after the tokens, %lu types and %lu merges need %zu", size - pos,
                     (unsigned long)n_tokens, (unsigned long)n_merges, (size_t)n_tokens + merge_bytes);
    if (st == LLAMA2_OK) {
        spec.types = d + pos;
        pos += n_tokens;
        merges = malloc(merge_bytes ? merge_bytes : 1);
        if (!merges) st = l2_fail(err, LLAMA2_E_NOMEM, "out of memory for %lu BPE merges", (unsigned long)n_merges);
        for (size_t i = 0; merges && i < 2 * (size_t)n_merges; i++) merges[i] = get_i32(d + pos + 4 * i);
    }
    if (st == LLAMA2_OK) {
        spec.pieces = pieces;
        spec.lengths = lengths;
        spec.merges = merges;
        st = l2_bpe_create(&spec, out, err);
    }
    free(pieces);
    free(lengths);
    free(merges);
    return st;
}

llama2_status l2_bpe_file_write(const l2_bpe *b, unsigned char **data, size_t *size, llama2_error *err) {
    const l2_bpe_spec *s = l2_bpe_get_spec(b);
    size_t total = HEADER_BYTES + 4 + (size_t)s->n_tokens * 9 + (size_t)s->n_merges * 8, longest = 1;
    for (int i = 0; i < s->n_tokens; i++) {
        total += s->lengths[i];
        if (s->lengths[i] > longest) longest = s->lengths[i];
    }
    unsigned char *d = calloc(1, total), *p = d;
    if (!d) return l2_fail(err, LLAMA2_E_NOMEM, "out of memory writing a BPE tokenizer");
    memcpy(p, magic, 4);
    put_u32(p + 4, VERSION);
    put_u32(p + 8, (uint32_t)s->n_tokens);
    put_u32(p + 12, (uint32_t)s->n_merges);
    put_u32(p + 16, (uint32_t)s->pre_tokenizer);
    put_u32(p + 20, (uint32_t)s->bos);
    put_u32(p + 24, (uint32_t)s->n_end);
    for (int i = 0; i < L2_BPE_MAX_END_TOKENS; i++) put_u32(p + 28 + 4 * i, (uint32_t)(i < s->n_end ? s->end[i] : -1));
    p += HEADER_BYTES;
    put_u32(p, (uint32_t)longest);
    p += 4;
    for (int i = 0; i < s->n_tokens; i++) {
        put_u32(p, 0); /* the score: 0.0f, unused (merges carry the order) */
        put_u32(p + 4, (uint32_t)s->lengths[i]);
        if (s->lengths[i]) memcpy(p + 8, s->pieces[i], s->lengths[i]);
        p += 8 + s->lengths[i];
    }
    memcpy(p, s->types, (size_t)s->n_tokens);
    p += s->n_tokens;
    for (size_t i = 0; i < 2 * (size_t)s->n_merges; i++, p += 4) put_u32(p, (uint32_t)s->merges[i]);
    *data = d;
    *size = total;
    return LLAMA2_OK;
}
