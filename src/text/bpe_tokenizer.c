/*
 * Byte-level BPE as Hugging Face's tokenizers and tiktoken run it: the text
 * is cut at special tokens (when asked) and by the pre-tokenizer's split;
 * a piece that is a token whole is that token (tokenizer.json's
 * ignore_merges, which Llama 3 sets); else it starts as one token per byte
 * and the adjacent pair of lowest merge rank is merged, the leftmost on a
 * tie, until no pair has a rank.
 */
#include <stdlib.h>
#include <string.h>

#include "bpe.h"
#include "platform/checks.h"

#define FNV_OFFSET 0xcbf29ce484222325u
#define FNV_PRIME 0x100000001b3u

/* A merge: the pair (left, right) as one key, its rank and what it makes. */
typedef struct merge_slot {
    uint64_t pair; /* UINT64_MAX: empty */
    int32_t rank, result;
} merge_slot;

struct l2_bpe {
    l2_bpe_spec spec;         /* pieces, lengths, types and merges point into the copies below */
    char *text;               /* every piece, back to back */
    const char **pieces;
    size_t *lengths;
    unsigned char *types;
    int32_t *merges;
    int *slots;               /* hash of the normal tokens' bytes: id or -1 */
    size_t slot_mask;
    merge_slot *pairs;        /* hash of the merges */
    size_t pair_mask;
    int byte_token[256];
    int *matched;             /* control and user-defined tokens, longest first */
    int n_matched;
    unsigned char first_bytes[256]; /* 1 where some matched token starts with that byte */
};

/* FNV-1a over 4-byte words, then the tail byte by byte: pieces are short
 * and looked up once per pre-token, so the hash must be cheap. */
static uint64_t fnv1a(const char *s, size_t n) {
    uint64_t h = FNV_OFFSET;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        uint32_t w;
        memcpy(&w, s + i, 4);
        h ^= w;
        h *= FNV_PRIME;
    }
    for (; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= FNV_PRIME;
    }
    return h ^ h >> 29;
}

static size_t table_size(size_t count) {
    size_t n = 16;
    while (n < 2 * count) n *= 2;
    return n;
}

int l2_bpe_find(const l2_bpe *b, const char *piece, size_t len) {
    for (size_t i = (size_t)fnv1a(piece, len) & b->slot_mask;; i = (i + 1) & b->slot_mask) {
        int id = b->slots[i];
        if (id < 0) return -1;
        if (b->lengths[id] == len && memcmp(b->pieces[id], piece, len) == 0) return id;
    }
}

static uint64_t pair_key(int left, int right) { return (uint64_t)(uint32_t)left << 32 | (uint32_t)right; }

static size_t pair_hash(uint64_t key) {
    key ^= key >> 31;
    key *= 0x9E3779B97F4A7C15u;
    return (size_t)(key ^ key >> 29);
}

static const merge_slot *find_pair(const l2_bpe *b, int left, int right) {
    uint64_t key = pair_key(left, right);
    for (size_t i = pair_hash(key) & b->pair_mask;; i = (i + 1) & b->pair_mask) {
        const merge_slot *s = &b->pairs[i];
        if (s->pair == key) return s;
        if (s->pair == UINT64_MAX) return NULL;
    }
}

/* ------------------------------------------------------------ building */

static llama2_status copy_spec(l2_bpe *b, const l2_bpe_spec *spec, llama2_error *err) {
    size_t total = 0, n = (size_t)spec->n_tokens, m = (size_t)spec->n_merges;
    for (size_t i = 0; i < n; i++)
        if (!spec->pieces[i] && spec->lengths[i] > 0)
            return l2_fail(err, LLAMA2_E_INVALID, "BPE token %zu has no bytes", i);
        else if (!l2_add_size(total, spec->lengths[i], &total))
            return l2_fail(err, LLAMA2_E_FORMAT, "BPE tokens too large");
    b->text = malloc(total ? total : 1);
    b->pieces = malloc(n * sizeof *b->pieces);
    b->lengths = malloc(n * sizeof *b->lengths);
    b->types = malloc(n);
    b->merges = malloc((m ? m : 1) * 2 * sizeof *b->merges);
    if (!b->text || !b->pieces || !b->lengths || !b->types || !b->merges)
        return l2_fail(err, LLAMA2_E_NOMEM, "out of memory for a BPE tokenizer of %d tokens", spec->n_tokens);
    char *dst = b->text;
    for (size_t i = 0; i < n; i++) {
        if (spec->lengths[i]) memcpy(dst, spec->pieces[i], spec->lengths[i]);
        b->pieces[i] = dst;
        b->lengths[i] = spec->lengths[i];
        dst += spec->lengths[i];
    }
    memcpy(b->types, spec->types, n);
    if (m) memcpy(b->merges, spec->merges, m * 2 * sizeof *b->merges);
    b->spec = *spec;
    b->spec.pieces = b->pieces;
    b->spec.lengths = b->lengths;
    b->spec.types = b->types;
    b->spec.merges = b->merges;
    return LLAMA2_OK;
}

static llama2_status check_spec(const l2_bpe_spec *s, llama2_error *err) {
    if (s->n_tokens <= 0 || s->n_tokens > (1 << 30))
        return l2_fail(err, LLAMA2_E_FORMAT, "BPE tokenizer has %d tokens", s->n_tokens);
    if (s->n_merges < 0 || s->n_merges > (1 << 30))
        return l2_fail(err, LLAMA2_E_FORMAT, "BPE tokenizer has %d merges", s->n_merges);
    if (s->pre_tokenizer != L2_BPE_PRE_LLAMA3)
        return l2_fail(err, LLAMA2_E_FORMAT, "unknown BPE pre-tokenizer %d", s->pre_tokenizer);
    for (int i = 0; i < s->n_tokens; i++) {
        int t = s->types[i];
        if (t != L2_BPE_NORMAL && t != L2_BPE_CONTROL && t != L2_BPE_USER_DEFINED)
            return l2_fail(err, LLAMA2_E_FORMAT, "BPE token %d has type %d (known: 1 normal, 3 control, 4 user-defined)",
                           i, t);
        if (s->lengths[i] == 0 && t != L2_BPE_NORMAL)
            return l2_fail(err, LLAMA2_E_FORMAT, "BPE special token %d is empty", i);
    }
    if (s->bos < -1 || s->bos >= s->n_tokens)
        return l2_fail(err, LLAMA2_E_FORMAT, "BPE BOS token %d is outside the %d tokens", s->bos, s->n_tokens);
    if (s->n_end < 0 || s->n_end > L2_BPE_MAX_END_TOKENS)
        return l2_fail(err, LLAMA2_E_FORMAT, "BPE tokenizer has %d end tokens (at most %d)", s->n_end,
                       L2_BPE_MAX_END_TOKENS);
    for (int i = 0; i < s->n_end; i++)
        if (s->end[i] < 0 || s->end[i] >= s->n_tokens)
            return l2_fail(err, LLAMA2_E_FORMAT, "BPE end token %d is outside the %d tokens", s->end[i],
                           s->n_tokens);
    return LLAMA2_OK;
}

/* Indexes the normal tokens by their bytes; the lower id keeps a duplicate. */
static llama2_status index_tokens(l2_bpe *b, llama2_error *err) {
    size_t n = table_size((size_t)b->spec.n_tokens);
    b->slots = malloc(n * sizeof *b->slots);
    if (!b->slots) return l2_fail(err, LLAMA2_E_NOMEM, "out of memory for a BPE tokenizer's index");
    b->slot_mask = n - 1;
    for (size_t i = 0; i < n; i++) b->slots[i] = -1;
    for (int id = 0; id < b->spec.n_tokens; id++) {
        if (b->types[id] != L2_BPE_NORMAL || l2_bpe_find(b, b->pieces[id], b->lengths[id]) >= 0) continue;
        size_t i = (size_t)fnv1a(b->pieces[id], b->lengths[id]) & b->slot_mask;
        while (b->slots[i] >= 0) i = (i + 1) & b->slot_mask;
        b->slots[i] = id;
    }
    for (int c = 0; c < 256; c++) {
        char byte = (char)c;
        b->byte_token[c] = l2_bpe_find(b, &byte, 1);
        if (b->byte_token[c] < 0)
            return l2_fail(err, LLAMA2_E_FORMAT, "BPE vocabulary has no token for byte 0x%02X", (unsigned)c);
    }
    return LLAMA2_OK;
}

/* Indexes the merges; a pair listed again keeps its first rank. */
static llama2_status index_merges(l2_bpe *b, llama2_error *err) {
    size_t n = table_size((size_t)b->spec.n_merges);
    b->pairs = malloc(n * sizeof *b->pairs);
    if (!b->pairs) return l2_fail(err, LLAMA2_E_NOMEM, "out of memory for %d BPE merges", b->spec.n_merges);
    b->pair_mask = n - 1;
    for (size_t i = 0; i < n; i++) b->pairs[i].pair = UINT64_MAX;
    char buf[512];
    for (int r = 0; r < b->spec.n_merges; r++) {
        int left = b->merges[2 * r], right = b->merges[2 * r + 1];
        if (left < 0 || left >= b->spec.n_tokens || right < 0 || right >= b->spec.n_tokens)
            return l2_fail(err, LLAMA2_E_FORMAT, "BPE merge %d names token %d, outside the %d tokens", r,
                           left < 0 || left >= b->spec.n_tokens ? left : right, b->spec.n_tokens);
        size_t ln = b->lengths[left], rn = b->lengths[right];
        if (ln + rn > sizeof buf)
            return l2_fail(err, LLAMA2_E_FORMAT, "BPE merge %d makes a piece of %zu bytes (at most %zu)", r,
                           ln + rn, sizeof buf);
        memcpy(buf, b->pieces[left], ln);
        memcpy(buf + ln, b->pieces[right], rn);
        int result = l2_bpe_find(b, buf, ln + rn);
        if (result < 0)
            return l2_fail(err, LLAMA2_E_FORMAT, "BPE merge %d (tokens %d and %d) makes no token of the vocabulary",
                           r, left, right);
        uint64_t key = pair_key(left, right);
        size_t i = pair_hash(key) & b->pair_mask;
        while (b->pairs[i].pair != UINT64_MAX && b->pairs[i].pair != key) i = (i + 1) & b->pair_mask;
        if (b->pairs[i].pair == key) continue;
        b->pairs[i] = (merge_slot){key, r, result};
    }
    return LLAMA2_OK;
}

static int longer_first(const void *pa, const void *pb, const l2_bpe *b) {
    int x = *(const int *)pa, y = *(const int *)pb;
    if (b->lengths[x] != b->lengths[y]) return b->lengths[x] > b->lengths[y] ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* The special and user-defined tokens, longest first, so that the longest
 * one starting at a position wins (the leftmost-longest match). Insertion
 * sort: there are few of them. */
static llama2_status index_matched(l2_bpe *b, llama2_error *err) {
    int n = 0;
    for (int id = 0; id < b->spec.n_tokens; id++) n += b->types[id] != L2_BPE_NORMAL;
    b->matched = malloc((size_t)(n ? n : 1) * sizeof *b->matched);
    if (!b->matched) return l2_fail(err, LLAMA2_E_NOMEM, "out of memory for a BPE tokenizer");
    for (int id = 0; id < b->spec.n_tokens; id++) {
        if (b->types[id] == L2_BPE_NORMAL) continue;
        int k = b->n_matched++;
        while (k > 0 && longer_first(&id, &b->matched[k - 1], b) < 0) {
            b->matched[k] = b->matched[k - 1];
            k--;
        }
        b->matched[k] = id;
        b->first_bytes[(unsigned char)b->pieces[id][0]] = 1;
    }
    return LLAMA2_OK;
}

llama2_status l2_bpe_create(const l2_bpe_spec *spec, l2_bpe **out, llama2_error *err) {
    *out = NULL;
    llama2_status st = check_spec(spec, err);
    if (st != LLAMA2_OK) return st;
    l2_bpe *b = calloc(1, sizeof *b);
    if (!b) return l2_fail(err, LLAMA2_E_NOMEM, "out of memory for a BPE tokenizer");
    st = copy_spec(b, spec, err);
    if (st == LLAMA2_OK) st = index_tokens(b, err);
    if (st == LLAMA2_OK) st = index_merges(b, err);
    if (st == LLAMA2_OK) st = index_matched(b, err);
    if (st != LLAMA2_OK) {
        l2_bpe_free(b);
        return st;
    }
    *out = b;
    return LLAMA2_OK;
}

void l2_bpe_free(l2_bpe *b) {
    if (!b) return;
    free(b->text);
    free(b->pieces);
    free(b->lengths);
    free(b->types);
    free(b->merges);
    free(b->slots);
    free(b->pairs);
    free(b->matched);
    free(b);
}

const l2_bpe_spec *l2_bpe_get_spec(const l2_bpe *b) { return &b->spec; }

const char *l2_bpe_piece(const l2_bpe *b, int id, size_t *len) {
    if (id < 0 || id >= b->spec.n_tokens) {
        *len = 0;
        return "";
    }
    *len = b->lengths[id];
    return b->pieces[id];
}

/* ------------------------------------------------------------- merging */

/* A symbol of the word being merged, in a list so that merges are O(1). */
typedef struct symbol {
    int id; /* -1 once merged into the symbol on its left */
    int prev, next;
} symbol;

/* A min-heap of candidate merges: rank in the high half, the left symbol's
 * position in the low half, so that the lowest rank, then the leftmost,
 * comes first. Entries go stale as merges change the word and are checked
 * when popped. */
typedef struct heap {
    uint64_t *items;
    size_t count;
} heap;

static void heap_push(heap *h, uint64_t key) {
    size_t i = h->count++;
    while (i > 0 && h->items[(i - 1) / 2] > key) {
        h->items[i] = h->items[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->items[i] = key;
}

static uint64_t heap_pop(heap *h) {
    uint64_t top = h->items[0], key = h->items[--h->count];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->count) break;
        if (c + 1 < h->count && h->items[c + 1] < h->items[c]) c++;
        if (h->items[c] >= key) break;
        h->items[i] = h->items[c];
        i = c;
    }
    h->items[i] = key;
    return top;
}

static void offer(const l2_bpe *b, heap *h, const symbol *sym, int left) {
    int right = sym[left].next;
    if (right < 0) return;
    const merge_slot *m = find_pair(b, sym[left].id, sym[right].id);
    if (m) heap_push(h, (uint64_t)(uint32_t)m->rank << 32 | (uint32_t)left);
}

/* Merges the bytes w[0..n) into ids appended at ids[*count]; sym has room
 * for n entries and the heap's items for 3n (n - 1 pairs to start with,
 * then each of the at most n - 1 merges pushes two). */
static void merge_word(const l2_bpe *b, const unsigned char *w, int n, symbol *sym, uint64_t *items, int *ids,
                       int *count) {
    for (int i = 0; i < n; i++) sym[i] = (symbol){b->byte_token[w[i]], i - 1, i + 1 < n ? i + 1 : -1};
    heap h = {items, 0};
    for (int i = 0; i + 1 < n; i++) offer(b, &h, sym, i);
    while (h.count > 0) {
        uint64_t key = heap_pop(&h);
        int left = (int)(uint32_t)key, right = sym[left].next;
        if (sym[left].id < 0 || right < 0) continue;
        const merge_slot *m = find_pair(b, sym[left].id, sym[right].id);
        if (!m || (uint32_t)m->rank != (uint32_t)(key >> 32)) continue; /* stale */
        sym[left].id = m->result;
        sym[left].next = sym[right].next;
        if (sym[right].next >= 0) sym[sym[right].next].prev = left;
        sym[right].id = -1;
        offer(b, &h, sym, left);
        if (sym[left].prev >= 0) offer(b, &h, sym, sym[left].prev);
    }
    for (int i = 0; i >= 0; i = sym[i].next) ids[(*count)++] = sym[i].id;
}

/* ------------------------------------------------------------ encoding */

/* The control or user-defined token that starts at text[i], or -1. */
static int match_special(const l2_bpe *b, const char *text, size_t len, size_t i, int parse_special) {
    if (!b->first_bytes[(unsigned char)text[i]]) return -1;
    for (int k = 0; k < b->n_matched; k++) {
        int id = b->matched[k];
        if (b->types[id] == L2_BPE_CONTROL && !parse_special) continue;
        if (b->lengths[id] <= len - i && memcmp(text + i, b->pieces[id], b->lengths[id]) == 0) return id;
    }
    return -1;
}

llama2_status l2_bpe_encode(const l2_bpe *b, const char *text, size_t len, int parse_special, int *ids, int *n,
                            llama2_error *err) {
    /* The longest pre-token sets the scratch's size; grown as needed. */
    size_t cap = 0;
    symbol *sym = NULL;
    uint64_t *items = NULL;
    const unsigned char *s = (const unsigned char *)text;
    size_t start = 0; /* the text before a special token is split on its own */
    for (size_t i = 0; i <= len; i++) {
        int special = i < len && b->n_matched ? match_special(b, text, len, i, parse_special) : -1;
        if (special < 0 && i < len) continue;
        for (size_t p = start; p < i;) {
            size_t e = l2_bpe_split_llama3(s + start, i - start, p - start) + start;
            int whole = l2_bpe_find(b, text + p, e - p);
            if (whole >= 0) {
                ids[(*n)++] = whole;
            } else {
                size_t wn = e - p;
                if (wn > cap) {
                    size_t want = wn < 64 ? 64 : wn;
                    symbol *ns = realloc(sym, want * sizeof *sym);
                    if (ns) sym = ns;
                    uint64_t *ni = ns ? realloc(items, want * 3 * sizeof *items) : NULL;
                    if (!ni || want > (size_t)INT32_MAX) {
                        if (ni) items = ni;
                        free(sym);
                        free(items);
                        return l2_fail(err, LLAMA2_E_NOMEM, "out of memory encoding a piece of %zu bytes", wn);
                    }
                    items = ni;
                    cap = want;
                }
                merge_word(b, s + p, (int)wn, sym, items, ids, n);
            }
            p = e;
        }
        if (special >= 0) {
            ids[(*n)++] = special;
            i += b->lengths[special] - 1;
            start = i + 1;
        }
    }
    free(sym);
    free(items);
    return LLAMA2_OK;
}
