/*
 * The llama2.c tokenizer: loading tokenizer.bin, encoding text exactly as
 * llama2.c's encode() does, and decoding ids to bytes as its decode() does.
 * A byte-level BPE tokenizer file (bpe_file.c) loads here too: the public
 * functions then hand over to bpe_tokenizer.c.
 *
 * File layout (native byte order, as llama2.c's fwrite leaves it):
 *   int32 max_token_length, then per token: float32 score, int32 len, len bytes.
 *
 * llama2.c keeps every piece as a C string, so a piece holding a NUL byte
 * counts only up to it, for lookups and merges as well as for printing; the
 * pieces here are stored the same way.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/file_kind.h"
#include "platform/checks.h"
#include "platform/platform.h"
#include "bpe.h"
#include "tokenizer_internal.h"

#define HEADER_BYTES 4       /* int32 max_token_length */
#define ENTRY_HEADER_BYTES 8 /* float32 score, int32 len */
#define FNV_OFFSET 0xcbf29ce484222325u
#define FNV_PRIME 0x100000001b3u
/* llama2.c's encode() starts its search for the best merge at this score
 * (as a float) and only takes strictly higher ones. */
#define MERGE_FLOOR (-1e10f)

/* What a lookup needs of a token, together in one place. */
typedef struct token_entry {
    const char *piece; /* NUL-terminated, into text */
    int length;        /* up to the first NUL */
    float score;
} token_entry;

struct llama2_tokenizer {
    int vocab_size;
    token_entry *tokens;
    char *text;            /* every piece, each followed by a NUL */
    int *slots;            /* open-addressing hash of the pieces: token id or -1 */
    size_t slot_mask;      /* slot count - 1; the count is a power of two */
    char byte_pieces[256]; /* byte_pieces[b] == b, for "<0xHH>" pieces */
    l2_bpe *bpe;           /* a byte-level BPE tokenizer: the fields above are unused */
};

/* ------------------------------------------------------------ loading */

static int32_t read_i32(const unsigned char *p) {
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static float read_f32(const unsigned char *p) {
    float v;
    memcpy(&v, p, sizeof v);
    return v;
}

static llama2_status truncated(llama2_error *err, int entry, int vocab_size, size_t need, size_t left) {
    if (vocab_size > 0)
        return l2_fail(err, LLAMA2_E_FORMAT, "tokenizer truncated: entry %d of %d needs %zu bytes, %zu left",
                       entry, vocab_size, need, left);
    return l2_fail(err, LLAMA2_E_FORMAT, "tokenizer truncated: entry %d needs %zu bytes, %zu left", entry,
                   need, left);
}

/* Checks that each entry the file must hold lies whole inside it and counts
 * them: vocab_size entries, or, when it is 0, every entry to the end of the
 * file, which must fall exactly on an entry's end. */
static llama2_status count_entries(const unsigned char *data, size_t size, int vocab_size, int *count,
                                   llama2_error *err) {
    size_t pos = HEADER_BYTES;
    int i = 0;
    while (vocab_size > 0 ? i < vocab_size : pos < size) {
        size_t left = size - pos;
        if (left == 0)
            return l2_fail(err, LLAMA2_E_FORMAT, "tokenizer has %d tokens, the model needs %d", i, vocab_size);
        if (left < ENTRY_HEADER_BYTES) return truncated(err, i, vocab_size, ENTRY_HEADER_BYTES, left);
        int32_t len = read_i32(data + pos + 4);
        if (len < 0)
            return l2_fail(err, LLAMA2_E_FORMAT, "tokenizer entry %d has a negative length (%ld)", i, (long)len);
        if ((size_t)len > left - ENTRY_HEADER_BYTES)
            return truncated(err, i, vocab_size, ENTRY_HEADER_BYTES + (size_t)len, left);
        if (i == INT_MAX) return l2_fail(err, LLAMA2_E_FORMAT, "tokenizer has too many tokens");
        pos += ENTRY_HEADER_BYTES + (size_t)len;
        i++;
    }
    if (i == 0) return l2_fail(err, LLAMA2_E_FORMAT, "tokenizer has no tokens");
    *count = i;
    return LLAMA2_OK;
}

/* Room for count entries out of a file of `size` bytes: each piece takes at
 * most its entry's bytes in the file, so `size` bytes of text suffice. */
static llama2_status allocate_tables(llama2_tokenizer *t, int count, size_t size, llama2_error *err) {
    size_t slots = 16;
    while (slots < 2 * (size_t)count) slots *= 2; /* load factor at most 1/2 */
    size_t tokens_bytes, slots_bytes;
    if (!l2_mul_size((size_t)count, sizeof *t->tokens, &tokens_bytes) ||
        !l2_mul_size(slots, sizeof *t->slots, &slots_bytes))
        return l2_fail(err, LLAMA2_E_NOMEM, "tokenizer too large: %d tokens", count);
    t->tokens = malloc(tokens_bytes);
    t->text = malloc(size);
    t->slots = malloc(slots_bytes);
    if (!t->tokens || !t->text || !t->slots)
        return l2_fail(err, LLAMA2_E_NOMEM, "out of memory for a tokenizer of %d tokens", count);
    t->slot_mask = slots - 1;
    return LLAMA2_OK;
}

/* Copies the entries count_entries has checked. */
static void copy_entries(llama2_tokenizer *t, const unsigned char *data) {
    size_t pos = HEADER_BYTES;
    char *dst = t->text;
    for (int i = 0; i < t->vocab_size; i++) {
        size_t len = (size_t)read_i32(data + pos + 4);
        const char *src = (const char *)data + pos + ENTRY_HEADER_BYTES;
        size_t kept = strnlen(src, len);
        memcpy(dst, src, kept);
        dst[kept] = '\0';
        t->tokens[i] = (token_entry){dst, (int)kept, read_f32(data + pos)};
        dst += kept + 1;
        pos += ENTRY_HEADER_BYTES + len;
    }
}

static uint64_t fnv1a(uint64_t hash, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        hash ^= (unsigned char)s[i];
        hash *= FNV_PRIME;
    }
    return hash;
}

/* The id whose piece is the bytes of a followed by those of b, or -1. Hashing
 * the two parts in turn spares building the concatenation. */
static int lookup(const llama2_tokenizer *t, const char *a, size_t a_len, const char *b, size_t b_len) {
    size_t i = (size_t)fnv1a(fnv1a(FNV_OFFSET, a, a_len), b, b_len) & t->slot_mask;
    for (;; i = (i + 1) & t->slot_mask) {
        int id = t->slots[i];
        if (id < 0) return -1;
        const token_entry *e = &t->tokens[id];
        if ((size_t)e->length == a_len + b_len && memcmp(e->piece, a, a_len) == 0 &&
            memcmp(e->piece + a_len, b, b_len) == 0)
            return id;
    }
}

/* Indexes every piece; when two are equal the lower id keeps the slot. */
static void build_index(llama2_tokenizer *t) {
    for (size_t i = 0; i <= t->slot_mask; i++) t->slots[i] = -1;
    for (int id = 0; id < t->vocab_size; id++) {
        const char *p = t->tokens[id].piece;
        size_t len = (size_t)t->tokens[id].length;
        if (lookup(t, p, len, "", 0) >= 0) continue;
        size_t i = (size_t)fnv1a(FNV_OFFSET, p, len) & t->slot_mask;
        while (t->slots[i] >= 0) i = (i + 1) & t->slot_mask;
        t->slots[i] = id;
    }
}

llama2_status l2_tokenizer_from_bpe_tables(l2_bpe *bpe, llama2_tokenizer **out, llama2_error *err) {
    llama2_tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        l2_bpe_free(bpe);
        return l2_fail(err, LLAMA2_E_NOMEM, "out of memory for a tokenizer");
    }
    t->bpe = bpe;
    t->vocab_size = l2_bpe_get_spec(bpe)->n_tokens;
    *out = t;
    return LLAMA2_OK;
}

const l2_bpe *l2_tokenizer_bpe(const llama2_tokenizer *tokenizer) { return tokenizer ? tokenizer->bpe : NULL; }

/* A BPE file serves a model whose vocabulary has at least its tokens (the
 * embedding may have padding rows that no text makes). */
static llama2_status parse_bpe(const unsigned char *data, size_t size, int vocab_size, llama2_tokenizer **out,
                               llama2_error *err) {
    l2_bpe *bpe = NULL;
    llama2_status st = l2_bpe_file_read(data, size, &bpe, err);
    if (st != LLAMA2_OK) return st;
    int n = l2_bpe_get_spec(bpe)->n_tokens;
    if (vocab_size > 0 && n > vocab_size) {
        l2_bpe_free(bpe);
        return l2_fail(err, LLAMA2_E_FORMAT, "the BPE tokenizer has %d tokens, the model %d", n, vocab_size);
    }
    return l2_tokenizer_from_bpe_tables(bpe, out, err);
}

/* A file that does not parse as a tokenizer: when it is a file of another
 * kind, says which, and what to do with it, instead of the parser's
 * complaint. */
static llama2_status not_a_tokenizer(const unsigned char *data, size_t size, llama2_status s, llama2_error *err) {
    const l2_file_kind kind = l2_file_kind_of(data, size);
    const char *name = l2_file_kind_name(kind);
    switch (kind) {
    case L2_FILE_SENTENCEPIECE:
        return l2_fail(err, LLAMA2_E_FORMAT,
                       "%s, not a llama2.c tokenizer: `llama2-convert tokenizer.model tokenizer.bin` makes one of it",
                       name);
    case L2_FILE_CHECKPOINT_V0:
    case L2_FILE_CHECKPOINT_V1:
    case L2_FILE_CHECKPOINT_V2:
    case L2_FILE_CHECKPOINT_VERSION:
    case L2_FILE_GGUF:
    case L2_FILE_SAFETENSORS:
    case L2_FILE_ZIP:
        return l2_fail(err, LLAMA2_E_FORMAT, "%s, not a tokenizer: the tokenizer is the model's tokenizer.bin", name);
    default: return s;
    }
}

static llama2_status parse_tokenizer(const unsigned char *data, size_t size, int vocab_size,
                                     llama2_tokenizer **out, llama2_error *err);

static llama2_status parse(const unsigned char *data, size_t size, int vocab_size, llama2_tokenizer **out,
                           llama2_error *err) {
    if (l2_bpe_file_is(data, size)) return parse_bpe(data, size, vocab_size, out, err);
    llama2_status st = parse_tokenizer(data, size, vocab_size, out, err);
    return st == LLAMA2_E_FORMAT ? not_a_tokenizer(data, size, st, err) : st;
}

static llama2_status parse_tokenizer(const unsigned char *data, size_t size, int vocab_size,
                                     llama2_tokenizer **out, llama2_error *err) {
    if (size < HEADER_BYTES)
        return l2_fail(err, LLAMA2_E_FORMAT, "tokenizer too short: %zu bytes, the header alone needs %d", size,
                       HEADER_BYTES);
    int32_t max_token_length = read_i32(data);
    if (max_token_length <= 0)
        return l2_fail(err, LLAMA2_E_FORMAT, "tokenizer header: max_token_length is %ld, must be positive",
                       (long)max_token_length);
    int count = 0;
    llama2_status st = count_entries(data, size, vocab_size, &count, err);
    if (st != LLAMA2_OK) return st;

    llama2_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return l2_fail(err, LLAMA2_E_NOMEM, "out of memory for a tokenizer");
    t->vocab_size = count;
    st = allocate_tables(t, count, size, err);
    if (st != LLAMA2_OK) {
        llama2_tokenizer_close(t);
        return st;
    }
    copy_entries(t, data);
    build_index(t);
    for (int b = 0; b < 256; b++) t->byte_pieces[b] = (char)(unsigned char)b;
    *out = t;
    return LLAMA2_OK;
}

llama2_status l2_tokenizer_from_pieces(int count, const char *text, const size_t *lengths, const float *scores,
                                      llama2_tokenizer **out, llama2_error *err) {
    *out = NULL;
    if (count <= 0) return l2_fail(err, LLAMA2_E_FORMAT, "tokenizer has no tokens");
    size_t text_bytes = 0;
    for (int i = 0; i < count; i++)
        if (!l2_add_size(text_bytes, lengths[i] + 1, &text_bytes))
            return l2_fail(err, LLAMA2_E_NOMEM, "tokenizer too large: %d tokens", count);
    llama2_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return l2_fail(err, LLAMA2_E_NOMEM, "out of memory for a tokenizer");
    t->vocab_size = count;
    llama2_status st = allocate_tables(t, count, text_bytes, err);
    if (st != LLAMA2_OK) {
        llama2_tokenizer_close(t);
        return st;
    }
    char *dst = t->text;
    for (int i = 0; i < count; i++) {
        /* Kept up to a NUL, as a piece read from tokenizer.bin is. */
        size_t kept = strnlen(text, lengths[i]);
        memcpy(dst, text, kept);
        dst[kept] = '\0';
        t->tokens[i] = (token_entry){dst, (int)kept, scores[i]};
        dst += kept + 1;
        text += lengths[i];
    }
    build_index(t);
    for (int b = 0; b < 256; b++) t->byte_pieces[b] = (char)(unsigned char)b;
    *out = t;
    return LLAMA2_OK;
}

/* The whole file in a malloc'd buffer; read in chunks so that pipes work too. */
static llama2_status read_file(const char *path, unsigned char **data, size_t *size, llama2_error *err) {
    FILE *f = l2_fopen(path, "rb");
    if (!f) return l2_fail(err, LLAMA2_E_IO, "cannot open: %s", strerror(errno));
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = malloc(cap);
    llama2_status st = buf ? LLAMA2_OK : l2_fail(err, LLAMA2_E_NOMEM, "out of memory reading the tokenizer");
    while (st == LLAMA2_OK) {
        if (n == cap) {
            unsigned char *bigger = cap <= SIZE_MAX / 2 ? realloc(buf, cap * 2) : NULL;
            if (!bigger) {
                st = l2_fail(err, LLAMA2_E_NOMEM, "out of memory reading the tokenizer");
                break;
            }
            buf = bigger;
            cap *= 2;
        }
        n += fread(buf + n, 1, cap - n, f);
        if (ferror(f))
            st = l2_fail(err, LLAMA2_E_IO, "cannot read: %s", strerror(errno));
        else if (feof(f))
            break;
    }
    fclose(f);
    if (st != LLAMA2_OK) {
        free(buf);
        return st;
    }
    *data = buf;
    *size = n;
    return LLAMA2_OK;
}

llama2_status llama2_tokenizer_open(const char *path, int vocab_size, llama2_tokenizer **out, llama2_error *err) {
    if (out) *out = NULL;
    if (!path || !out || vocab_size < 0)
        return l2_fail(err, LLAMA2_E_INVALID, "tokenizer_open: no path, no output or a negative vocab_size");
    unsigned char *data = NULL;
    size_t size = 0;
    llama2_status st = read_file(path, &data, &size, err);
    if (st != LLAMA2_OK) return st;
    st = parse(data, size, vocab_size, out, err);
    free(data);
    return st;
}

llama2_status llama2_tokenizer_from_memory(const void *data, size_t size, int vocab_size, llama2_tokenizer **out,
                                           llama2_error *err) {
    if (out) *out = NULL;
    if ((!data && size > 0) || !out || vocab_size < 0)
        return l2_fail(err, LLAMA2_E_INVALID, "tokenizer_from_memory: no data, no output or a negative vocab_size");
    return parse(data ? data : "", size, vocab_size, out, err);
}

void llama2_tokenizer_close(llama2_tokenizer *tokenizer) {
    if (!tokenizer) return;
    l2_bpe_free(tokenizer->bpe);
    free(tokenizer->tokens);
    free(tokenizer->text);
    free(tokenizer->slots);
    free(tokenizer);
}

const char *l2_tokenizer_entry(const llama2_tokenizer *t, int id, size_t *len, float *score) {
    *len = (size_t)t->tokens[id].length;
    *score = t->tokens[id].score;
    return t->tokens[id].piece;
}

int llama2_tokenizer_vocab_size(const llama2_tokenizer *tokenizer) { return tokenizer ? tokenizer->vocab_size : 0; }

llama2_tokenizer_kind llama2_tokenizer_get_kind(const llama2_tokenizer *tokenizer) {
    return tokenizer && tokenizer->bpe ? LLAMA2_TOKENIZER_BPE : LLAMA2_TOKENIZER_LLAMA2C;
}

int llama2_tokenizer_bos(const llama2_tokenizer *tokenizer) {
    if (!tokenizer) return -1;
    if (tokenizer->bpe) return l2_bpe_get_spec(tokenizer->bpe)->bos;
    return LLAMA2_TOKEN_BOS < tokenizer->vocab_size ? LLAMA2_TOKEN_BOS : -1;
}

int llama2_tokenizer_eos(const llama2_tokenizer *tokenizer) {
    if (!tokenizer) return -1;
    if (tokenizer->bpe) {
        const l2_bpe_spec *s = l2_bpe_get_spec(tokenizer->bpe);
        return s->n_end > 0 ? s->end[0] : -1;
    }
    return LLAMA2_TOKEN_EOS < tokenizer->vocab_size ? LLAMA2_TOKEN_EOS : -1;
}

int llama2_tokenizer_is_end(const llama2_tokenizer *tokenizer, int token) {
    if (!tokenizer || token < 0) return 0;
    if (!tokenizer->bpe) return token == LLAMA2_TOKEN_EOS;
    const l2_bpe_spec *s = l2_bpe_get_spec(tokenizer->bpe);
    for (int i = 0; i < s->n_end; i++)
        if (s->end[i] == token) return 1;
    return 0;
}

int llama2_tokenizer_is_special(const llama2_tokenizer *tokenizer, int token) {
    if (!tokenizer || token < 0 || token >= tokenizer->vocab_size) return 0;
    if (tokenizer->bpe) return l2_bpe_get_spec(tokenizer->bpe)->types[token] == L2_BPE_CONTROL;
    return token <= LLAMA2_TOKEN_EOS;
}

int llama2_tokenizer_find(const llama2_tokenizer *tokenizer, const char *piece) {
    if (!tokenizer || !piece) return -1;
    size_t len = strlen(piece);
    if (tokenizer->bpe) {
        const l2_bpe_spec *s = l2_bpe_get_spec(tokenizer->bpe);
        for (int id = 0; id < s->n_tokens; id++) /* the special tokens are not in the index of text pieces */
            if (s->types[id] != L2_BPE_NORMAL && s->lengths[id] == len && memcmp(s->pieces[id], piece, len) == 0)
                return id;
        return l2_bpe_find(tokenizer->bpe, piece, len);
    }
    return lookup(tokenizer, piece, len, "", 0);
}

/* ------------------------------------------------------------- merging */

/* The id of the piece spelled by a's piece then b's, or -1. */
static int merge_of(const llama2_tokenizer *t, int a, int b) {
    const token_entry *x = &t->tokens[a], *y = &t->tokens[b];
    return lookup(t, x->piece, (size_t)x->length, y->piece, (size_t)y->length);
}

int l2_tokenizer_merge_naive(const llama2_tokenizer *t, int *ids, int n) {
    for (;;) {
        float best_score = MERGE_FLOOR;
        int best_id = -1, best_i = -1;
        for (int i = 0; i + 1 < n; i++) {
            int id = merge_of(t, ids[i], ids[i + 1]);
            if (id >= 0 && t->tokens[id].score > best_score) {
                best_score = t->tokens[id].score;
                best_id = id;
                best_i = i;
            }
        }
        if (best_i < 0) return n;
        ids[best_i] = best_id;
        memmove(ids + best_i + 1, ids + best_i + 2, (size_t)(n - best_i - 2) * sizeof *ids);
        n--;
    }
}

/* A possible merge is a 64-bit key that orders candidates as llama2.c picks
 * them (a larger key goes first): the merged piece's score in an
 * order-preserving form, then the left symbol's position reversed, so that
 * the leftmost wins a tie. */
static uint32_t score_bits(float score) {
    uint32_t bits;
    if (score == 0) score = 0; /* -0.0 ties with 0.0, as in float comparison */
    memcpy(&bits, &score, sizeof bits);
    return (bits & 0x80000000u) ? ~bits : bits | 0x80000000u;
}

static uint64_t candidate_key(uint32_t bits, int left) {
    return (uint64_t)bits << 32 | (UINT32_MAX - (uint32_t)left);
}

static int candidate_left(uint64_t key) { return (int)(UINT32_MAX - (uint32_t)key); }

/* A symbol of the text being merged: its token, its neighbours' positions
 * (-1 at either end) and what it would merge into with the next one, kept
 * together so that a merge touches few cache lines. */
typedef struct merge_symbol {
    int id; /* -1 once merged into the symbol on its left */
    int prev, next;
    int pair_id;        /* the merge with the next symbol, or -1 */
    uint32_t pair_bits; /* its score_bits */
} merge_symbol;

/* Works out the merge of `left` with the symbol after it; returns whether
 * there is one llama2.c would take (in the vocabulary, scored above its floor). */
static int update_pair(const llama2_tokenizer *t, merge_symbol *sym, int left) {
    int right = sym[left].next;
    int id = right < 0 ? -1 : merge_of(t, sym[left].id, sym[right].id);
    if (id >= 0 && !(t->tokens[id].score > MERGE_FLOOR)) id = -1;
    sym[left].pair_id = id;
    sym[left].pair_bits = id < 0 ? 0 : score_bits(t->tokens[id].score);
    return id >= 0;
}

/* Whether a queued key still describes the merge of `left` with its next
 * symbol: the key is stale once either of them has changed. */
static int is_current(const merge_symbol *sym, uint64_t key) {
    const merge_symbol *s = &sym[candidate_left(key)];
    return s->id >= 0 && s->pair_id >= 0 && s->pair_bits == (uint32_t)(key >> 32);
}

/* A max-heap of keys with eight children per node, laid out so that each
 * node's children fill one 64-byte cache line: a pop touches one line per
 * level, over a third of a binary heap's depth. */
#define HEAP_ARITY 8
#define HEAP_ALIGN 64

typedef struct merge_heap {
    void *block;     /* the allocation; items starts HEAP_ARITY - 1 slots into it */
    uint64_t *items; /* the children of i are items[8i+1 .. 8i+8] */
    size_t count, capacity;
} merge_heap;

static int heap_reserve(merge_heap *h, size_t capacity) {
    size_t bytes;
    void *block;
    if (!l2_add_size(capacity, HEAP_ARITY, &bytes) || !l2_mul_size(bytes, sizeof(uint64_t), &bytes) ||
        !(block = l2_aligned_malloc(HEAP_ALIGN, bytes)))
        return 0;
    uint64_t *items = (uint64_t *)block + (HEAP_ARITY - 1);
    if (h->count) memcpy(items, h->items, h->count * sizeof *items);
    l2_aligned_free(h->block);
    h->block = block;
    h->items = items;
    h->capacity = capacity;
    return 1;
}

/* Returns 0 when out of memory. */
static int heap_push(merge_heap *h, uint64_t key) {
    if (h->count == h->capacity && !heap_reserve(h, h->capacity * 2)) return 0;
    size_t i = h->count++;
    while (i > 0 && h->items[(i - 1) / HEAP_ARITY] < key) {
        h->items[i] = h->items[(i - 1) / HEAP_ARITY];
        i = (i - 1) / HEAP_ARITY;
    }
    h->items[i] = key;
    return 1;
}

static uint64_t heap_pop(merge_heap *h) {
    uint64_t top = h->items[0], key = h->items[--h->count];
    size_t i = 0;
    for (;;) {
        size_t first = i * HEAP_ARITY + 1;
        if (first >= h->count) break;
        size_t end = h->count - first < HEAP_ARITY ? h->count : first + HEAP_ARITY, best = first;
        for (size_t k = first + 1; k < end; k++)
            if (h->items[k] > h->items[best]) best = k;
        if (h->items[best] <= key) break;
        h->items[i] = h->items[best];
        i = best;
    }
    h->items[i] = key;
    return top;
}

/* Sorts keys[0..n) into descending order of their high 32 bits (the score),
 * keeping the order of equal ones: an LSD radix sort, one byte per pass. */
static void sort_by_score(uint64_t *keys, uint64_t *tmp, size_t n) {
    for (int shift = 32; shift < 64; shift += 8) {
        size_t start[257] = {0};
        for (size_t i = 0; i < n; i++) start[255 - ((keys[i] >> shift) & 0xFF) + 1]++;
        for (int b = 0; b < 256; b++) start[b + 1] += start[b];
        for (size_t i = 0; i < n; i++) tmp[start[255 - ((keys[i] >> shift) & 0xFF)]++] = keys[i];
        memcpy(keys, tmp, n * sizeof *keys);
    }
}

/* Every pair that can merge has its key queued, put there when the pair
 * formed. The pairs of the text as it starts are sorted once and read in
 * order; those that merges create go to the heap. */
typedef struct merge_queue {
    uint64_t *initial;
    size_t n_initial, front;
    merge_heap heap;
} merge_queue;

/* The sorted pairs are read in order but point all over the text: fetching
 * the symbols a few pairs ahead hides most of the memory latency. */
#define PREFETCH_AHEAD 16
#if defined(__GNUC__)
#define prefetch(p) __builtin_prefetch(p)
#else
#define prefetch(p) ((void)(p))
#endif

/* Fills the queue with the pairs of the text as it starts; 0 when out of memory. */
static int queue_init(merge_queue *q, const llama2_tokenizer *t, merge_symbol *sym, int n) {
    size_t key_bytes;
    if (!l2_mul_size((size_t)n, sizeof(uint64_t), &key_bytes)) return 0;
    uint64_t *tmp = malloc(key_bytes);
    q->initial = malloc(key_bytes);
    int ok = tmp && q->initial && heap_reserve(&q->heap, 1024);
    for (int i = 0; ok && i < n; i++)
        if (update_pair(t, sym, i)) q->initial[q->n_initial++] = candidate_key(sym[i].pair_bits, i);
    if (ok) sort_by_score(q->initial, tmp, q->n_initial);
    free(tmp);
    return ok;
}

/* Takes the largest key into *key; 0 when the queue is empty. */
static int queue_pop(merge_queue *q, const merge_symbol *sym, uint64_t *key) {
    int from_initial = q->front < q->n_initial;
    if (q->heap.count > 0 && (!from_initial || q->heap.items[0] > q->initial[q->front])) {
        *key = heap_pop(&q->heap);
        return 1;
    }
    if (!from_initial) return 0;
    *key = q->initial[q->front++];
    if (q->front + PREFETCH_AHEAD < q->n_initial)
        prefetch(&sym[candidate_left(q->initial[q->front + PREFETCH_AHEAD])]);
    return 1;
}

/* Works out the merge of `left` with its next symbol and queues it if there
 * is one; 0 when out of memory. */
static int offer(const llama2_tokenizer *t, merge_queue *q, merge_symbol *sym, int left) {
    return !update_pair(t, sym, left) || heap_push(&q->heap, candidate_key(sym[left].pair_bits, left));
}

/* Merges `left` with its next symbol; the left one stays (so positions keep
 * their order), the right one is marked dead. 0 when out of memory. */
static int merge_at(const llama2_tokenizer *t, merge_queue *q, merge_symbol *sym, int left) {
    int right = sym[left].next, after = sym[right].next, before = sym[left].prev;
    sym[left].id = sym[left].pair_id;
    sym[left].next = after;
    sym[right].id = -1;
    if (after >= 0) sym[after].prev = left;
    return offer(t, q, sym, left) && (before < 0 || offer(t, q, sym, before));
}

/* The largest key in the queue that is still current is the merge llama2.c's
 * scan would choose. */
int l2_tokenizer_merge_fast(const llama2_tokenizer *t, int *ids, int n) {
    if (n < 2) return n;
    size_t sym_bytes;
    if (!l2_mul_size((size_t)n, sizeof(merge_symbol), &sym_bytes)) return -1;
    merge_symbol *sym = malloc(sym_bytes);
    merge_queue queue = {NULL, 0, 0, {NULL, NULL, 0, 0}};
    int ok = sym != NULL;
    for (int i = 0; ok && i < n; i++) sym[i] = (merge_symbol){ids[i], i - 1, i + 1 < n ? i + 1 : -1, -1, 0};
    ok = ok && queue_init(&queue, t, sym, n);
    uint64_t key;
    while (ok && queue_pop(&queue, sym, &key))
        if (is_current(sym, key)) ok = merge_at(t, &queue, sym, candidate_left(key));
    int count = 0;
    if (ok)
        for (int i = 0; i >= 0; i = sym[i].next) ids[count++] = sym[i].id; /* symbol 0 is never merged away */
    l2_aligned_free(queue.heap.block);
    free(queue.initial);
    free(sym);
    return ok ? count : -1;
}

/* ------------------------------------------------------------ encoding */

size_t llama2_tokenize_capacity(size_t text_len) { return text_len + 3; }

static int is_continuation(unsigned char b) { return (b & 0xC0) == 0x80; }

/* The id llama2.c prepends to non-empty text: the piece " ", else the byte
 * token for a space; -1 when the vocabulary has neither. */
static int dummy_prefix(const llama2_tokenizer *t) {
    int id = lookup(t, " ", 1, "", 0);
    if (id < 0 && ' ' + 3 < t->vocab_size) id = ' ' + 3;
    return id;
}

/* Appends the ids for text's characters: each UTF-8 character (a lead byte and
 * up to three continuation bytes) is looked up whole, and spelled as byte
 * tokens (byte + 3) when the vocabulary lacks it. */
static llama2_status encode_characters(const llama2_tokenizer *t, const char *text, int *ids, int *n,
                                       llama2_error *err) {
    const unsigned char *s = (const unsigned char *)text;
    size_t start = 0;
    for (size_t i = 0; s[i] != '\0'; i++) {
        size_t len = i + 1 - start;
        if (is_continuation(s[i + 1]) && len < 4) continue;
        int id = lookup(t, text + start, len, "", 0);
        if (id >= 0) {
            ids[(*n)++] = id;
        } else {
            for (size_t j = start; j <= i; j++) {
                if (s[j] + 3 >= t->vocab_size)
                    return l2_fail(err, LLAMA2_E_FORMAT,
                                   "the tokenizer has no byte tokens (%d tokens) to spell byte 0x%02X",
                                   t->vocab_size, s[j]);
                ids[(*n)++] = s[j] + 3;
            }
        }
        start = i + 1;
    }
    return LLAMA2_OK;
}

static llama2_status tokenize_bpe(const llama2_tokenizer *t, const char *text, size_t text_len, int add_bos,
                                  int add_eos, int parse_special, int *ids, int *n_ids, llama2_error *err) {
    int bos = llama2_tokenizer_bos(t), eos = llama2_tokenizer_eos(t);
    if ((add_bos && bos < 0) || (add_eos && eos < 0))
        return l2_fail(err, LLAMA2_E_FORMAT, "the tokenizer has no %s token", add_bos && bos < 0 ? "BOS" : "EOS");
    int n = 0;
    if (add_bos) ids[n++] = bos;
    llama2_status st = l2_bpe_encode(t->bpe, text, text_len, parse_special, ids, &n, err);
    if (st != LLAMA2_OK) return st;
    if (add_eos) ids[n++] = eos;
    *n_ids = n;
    return LLAMA2_OK;
}

static llama2_status tokenize(const llama2_tokenizer *tokenizer, const char *text, int add_bos, int add_eos,
                              int parse_special, int *ids, int *n_ids, llama2_error *err) {
    if (!tokenizer || !text || !ids || !n_ids)
        return l2_fail(err, LLAMA2_E_INVALID, "tokenize: no tokenizer, text, ids or count");
    size_t text_len = strlen(text);
    if (text_len > (size_t)INT_MAX - 3)
        return l2_fail(err, LLAMA2_E_INVALID, "tokenize: text of %zu bytes is too long", text_len);
    if (tokenizer->bpe) return tokenize_bpe(tokenizer, text, text_len, add_bos, add_eos, parse_special, ids, n_ids, err);
    if ((add_bos && LLAMA2_TOKEN_BOS >= tokenizer->vocab_size) ||
        (add_eos && LLAMA2_TOKEN_EOS >= tokenizer->vocab_size))
        return l2_fail(err, LLAMA2_E_FORMAT, "the tokenizer's %d tokens leave out BOS (1) or EOS (2)",
                       tokenizer->vocab_size);
    int n = 0;
    if (add_bos) ids[n++] = LLAMA2_TOKEN_BOS;
    if (text_len > 0) {
        int prefix = dummy_prefix(tokenizer);
        if (prefix < 0)
            return l2_fail(err, LLAMA2_E_FORMAT, "the tokenizer has no \" \" piece for the dummy prefix");
        ids[n++] = prefix;
    }
    llama2_status st = encode_characters(tokenizer, text, ids, &n, err);
    if (st != LLAMA2_OK) return st;
    /* BOS takes part in merges, as in llama2.c; EOS comes after them. */
    n = l2_tokenizer_merge_fast(tokenizer, ids, n);
    if (n < 0) return l2_fail(err, LLAMA2_E_NOMEM, "out of memory merging %zu bytes of text", text_len);
    if (add_eos) ids[n++] = LLAMA2_TOKEN_EOS;
    *n_ids = n;
    return LLAMA2_OK;
}

llama2_status llama2_tokenize(const llama2_tokenizer *tokenizer, const char *text, int add_bos, int add_eos,
                              int *ids, int *n_ids, llama2_error *err) {
    return tokenize(tokenizer, text, add_bos, add_eos, 0, ids, n_ids, err);
}

llama2_status llama2_tokenize_special(const llama2_tokenizer *tokenizer, const char *text, int add_bos, int add_eos,
                                      int *ids, int *n_ids, llama2_error *err) {
    return tokenize(tokenizer, text, add_bos, add_eos, 1, ids, n_ids, err);
}

/* ------------------------------------------------------------ decoding */

static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* The byte a piece "<0xHH>" stands for, or -1 for any other piece. */
static int byte_piece_value(const char *p, size_t len) {
    if (len != 6 || memcmp(p, "<0x", 3) != 0 || p[5] != '>') return -1;
    int hi = hex_value(p[3]), lo = hex_value(p[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

const char *llama2_token_piece(const llama2_tokenizer *tokenizer, int prev_token, int token, size_t *len) {
    size_t n = 0;
    const char *p = "";
    if (tokenizer && tokenizer->bpe) {
        p = l2_bpe_piece(tokenizer->bpe, token, &n);
    } else if (tokenizer && token >= 0 && token < tokenizer->vocab_size) {
        p = tokenizer->tokens[token].piece;
        n = (size_t)tokenizer->tokens[token].length;
        if (prev_token == LLAMA2_TOKEN_BOS && n > 0 && p[0] == ' ') {
            p++;
            n--;
        }
        int byte = byte_piece_value(p, n);
        if (byte >= 0) {
            p = &tokenizer->byte_pieces[byte];
            n = 1;
        }
    }
    if (len) *len = n;
    return p;
}
