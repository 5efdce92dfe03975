/*
 * The sampler's grammar stage: which tokens keep the text in the grammar.
 * A token is allowed when the bytes of its piece (byte tokens <0xNN> are
 * their byte) all step the matcher; BOS and EOS (the tokens that end a text)
 * when the grammar may end there. One token is checked by stepping its
 * bytes; the whole vocabulary by walking a trie of the pieces, so that
 * tokens sharing a prefix share its steps and a dead prefix skips its
 * subtree.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "platform/checks.h"
#include "grammar.h"
#include "sampler_stages.h"

struct l2_grammar_stage {
    const llama2_tokenizer *tokenizer;
    int vocab;    /* tokens with pieces: the sampler's and the tokenizer's, the fewer */
    int n_logits; /* the sampler's vocabulary */
    uint8_t *allowed; /* [n_logits] the mask being built */
    l2_gmatch m;
    int dead; /* the text left the grammar (or its limits): only an end is allowed */
    /* the trie, in preorder: node i's subtree is i .. skip[i] - 1 */
    int n_trie, max_depth;
    uint8_t *byte;
    int32_t *skip, *depth, *tok_begin, *tok_count;
    int32_t *tokens; /* token ids, those of each node together */
    /* one set per trie depth while walking */
    size_t *lvl_begin, *lvl_end, *lvl_nodes;
};

static int is_end_token(int t) { return t == LLAMA2_TOKEN_BOS || t == LLAMA2_TOKEN_EOS; }

/* The bytes a token adds to the text; empty for the special tokens. */
static const char *piece_of(const l2_grammar_stage *st, int prev, int token, size_t *len) {
    if (token <= LLAMA2_TOKEN_EOS) {
        *len = 0;
        return "";
    }
    return llama2_token_piece(st->tokenizer, prev, token, len);
}

typedef struct sort_ctx {
    const char *piece;
    size_t len;
    int32_t id;
} sort_item;

static int compare_pieces(const void *x, const void *y) {
    const sort_item *a = x, *b = y;
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->piece, b->piece, n);
    if (c) return c;
    if (a->len != b->len) return a->len < b->len ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

static int build_trie(l2_grammar_stage *st) {
    const int vocab = st->vocab;
    sort_item *items = malloc((size_t)vocab * sizeof *items);
    if (!items) return 0;
    int n = 0;
    size_t total = 0;
    int max_len = 0;
    for (int t = 0; t < vocab; t++) {
        size_t len;
        const char *p = piece_of(st, -1, t, &len);
        if (len == 0) continue;
        items[n++] = (sort_item){p, len, t};
        total += len;
        if ((int)len > max_len) max_len = (int)len;
    }
    qsort(items, (size_t)n, sizeof *items, compare_pieces);
    st->max_depth = max_len;
    size_t cap = total + 1;
    st->byte = malloc(cap);
    st->skip = malloc(cap * sizeof *st->skip);
    st->depth = malloc(cap * sizeof *st->depth);
    st->tok_begin = malloc(cap * sizeof *st->tok_begin);
    st->tok_count = malloc(cap * sizeof *st->tok_count);
    st->tokens = malloc(((size_t)n + 1) * sizeof *st->tokens);
    int32_t *path = malloc(((size_t)max_len + 1) * sizeof *path);
    st->lvl_begin = malloc(((size_t)max_len + 1) * sizeof *st->lvl_begin);
    st->lvl_end = malloc(((size_t)max_len + 1) * sizeof *st->lvl_end);
    st->lvl_nodes = malloc(((size_t)max_len + 1) * sizeof *st->lvl_nodes);
    int ok = st->byte && st->skip && st->depth && st->tok_begin && st->tok_count && st->tokens && path &&
             st->lvl_begin && st->lvl_end && st->lvl_nodes;
    if (ok) {
        int n_nodes = 0, depth = 0;
        for (int k = 0; k < n; k++) {
            const sort_item *it = &items[k];
            /* the prefix shared with the previous piece stays on the path */
            size_t common = 0;
            if (k > 0) {
                const sort_item *pv = &items[k - 1];
                while (common < pv->len && common < it->len && pv->piece[common] == it->piece[common]) common++;
            }
            while (depth > (int)common) st->skip[path[--depth]] = n_nodes;
            for (size_t i = common; i < it->len; i++) {
                st->byte[n_nodes] = (uint8_t)it->piece[i];
                st->depth[n_nodes] = depth + 1;
                st->tok_begin[n_nodes] = k;
                st->tok_count[n_nodes] = 0;
                path[depth++] = n_nodes++;
            }
            st->tok_count[path[depth - 1]]++;
            if (st->tok_count[path[depth - 1]] == 1) st->tok_begin[path[depth - 1]] = k;
            st->tokens[k] = it->id;
        }
        while (depth > 0) st->skip[path[--depth]] = n_nodes;
        st->n_trie = n_nodes;
    }
    free(path);
    free(items);
    return ok;
}

void l2_grammar_stage_destroy(l2_grammar_stage *st) {
    if (!st) return;
    l2_gmatch_free(&st->m);
    free(st->byte);
    free(st->skip);
    free(st->depth);
    free(st->tok_begin);
    free(st->tok_count);
    free(st->tokens);
    free(st->lvl_begin);
    free(st->lvl_end);
    free(st->lvl_nodes);
    free(st->allowed);
    free(st);
}

llama2_status l2_grammar_stage_create(const llama2_grammar *g, const llama2_tokenizer *tokenizer, int vocab,
                                      l2_grammar_stage **out, llama2_error *err) {
    *out = NULL;
    l2_grammar_stage *st = calloc(1, sizeof *st);
    if (!st) return l2_fail(err, LLAMA2_E_NOMEM, "out of memory for the grammar stage");
    st->tokenizer = tokenizer;
    st->n_logits = vocab;
    st->allowed = malloc((size_t)vocab);
    st->vocab = vocab < llama2_tokenizer_vocab_size(tokenizer) ? vocab : llama2_tokenizer_vocab_size(tokenizer);
    if (!st->allowed || !l2_gmatch_init(&st->m, g) || !build_trie(st)) {
        l2_grammar_stage_destroy(st);
        return l2_fail(err, LLAMA2_E_NOMEM, "out of memory for the grammar stage, or its first step is too large");
    }
    *out = st;
    return LLAMA2_OK;
}

int l2_grammar_stage_out_of_memory(const l2_grammar_stage *st) { return st->m.out_of_memory; }

/* Whether bytes[0..n) step the matcher from the current set (the arena
 * is left as it was). */
static int bytes_fit(l2_grammar_stage *st, const char *bytes, size_t n) {
    l2_gmatch *m = &st->m;
    const size_t sets_mark = m->n_sets, nodes_mark = m->n_nodes;
    size_t b = m->cur_begin, e = m->cur_end;
    int ok = 1;
    for (size_t i = 0; i < n && ok; i++) {
        size_t nb = l2_gmatch_step(m, b, e, (unsigned char)bytes[i]);
        ok = nb != SIZE_MAX;
        b = nb;
        e = m->n_sets;
    }
    m->n_sets = sets_mark;
    m->n_nodes = nodes_mark;
    return ok;
}

int l2_grammar_stage_allows(l2_grammar_stage *st, int prev, int token) {
    if (is_end_token(token)) return st->dead || l2_gmatch_can_end(&st->m, st->m.cur_begin, st->m.cur_end);
    if (st->dead || token < 0 || token >= st->vocab) return 0;
    size_t len;
    const char *p = piece_of(st, prev, token, &len);
    return len > 0 && bytes_fit(st, p, len);
}

int l2_grammar_stage_mask(l2_grammar_stage *st, int prev, float *logits, int n_logits) {
    l2_gmatch *m = &st->m;
    int allowed_any = 0;
    const int end_ok = st->dead || l2_gmatch_can_end(m, m->cur_begin, m->cur_end);
    if (n_logits > st->n_logits) n_logits = st->n_logits;
    uint8_t *allowed = st->allowed;
    memset(allowed, 0, (size_t)n_logits);
    if (end_ok) {
        if (LLAMA2_TOKEN_BOS < n_logits) allowed[LLAMA2_TOKEN_BOS] = 1;
        if (LLAMA2_TOKEN_EOS < n_logits) allowed[LLAMA2_TOKEN_EOS] = 1;
    }
    if (!st->dead) {
        const size_t sets_mark = m->n_sets, nodes_mark = m->n_nodes;
        st->lvl_begin[0] = m->cur_begin;
        st->lvl_end[0] = m->cur_end;
        st->lvl_nodes[0] = nodes_mark;
        for (int i = 0; i < st->n_trie;) {
            const int d = st->depth[i];
            m->n_sets = d == 1 ? sets_mark : st->lvl_end[d - 1];
            m->n_nodes = st->lvl_nodes[d - 1];
            size_t nb = l2_gmatch_step(m, st->lvl_begin[d - 1], st->lvl_end[d - 1], st->byte[i]);
            if (nb == SIZE_MAX) {
                i = st->skip[i];
                continue;
            }
            st->lvl_begin[d] = nb;
            st->lvl_end[d] = m->n_sets;
            st->lvl_nodes[d] = m->n_nodes;
            for (int k = 0; k < st->tok_count[i]; k++) {
                int t = st->tokens[st->tok_begin[i] + k];
                if (t < n_logits) allowed[t] = 1;
            }
            i++;
        }
        m->n_sets = sets_mark;
        m->n_nodes = nodes_mark;
        /* After BOS a piece loses its leading space: those tokens again, one by one. */
        if (prev == LLAMA2_TOKEN_BOS) {
            for (int t = LLAMA2_TOKEN_EOS + 1; t < st->vocab && t < n_logits; t++) {
                size_t len;
                const char *raw = piece_of(st, -1, t, &len);
                if (len > 0 && raw[0] == ' ') allowed[t] = (uint8_t)l2_grammar_stage_allows(st, prev, t);
            }
        }
    }
    for (int i = 0; i < n_logits; i++) {
        if (allowed[i])
            allowed_any = 1;
        else
            logits[i] = -INFINITY;
    }
    return allowed_any;
}

void l2_grammar_stage_accept(l2_grammar_stage *st, int prev, int token) {
    if (st->dead || is_end_token(token)) return;
    size_t len;
    const char *p = piece_of(st, prev, token, &len);
    if (len == 0 || token >= st->vocab || !l2_gmatch_accept(&st->m, p, len)) st->dead = 1;
}
