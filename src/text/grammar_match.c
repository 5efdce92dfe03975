/*
 * Following text through a compiled grammar, a byte at a time: the set of
 * parse stacks alive (a pushdown automaton run on every parse at once, as
 * llama.cpp's grammar does), each stack a chain of nodes in an arena.
 * Stacks in a set are kept distinct, so an ambiguous grammar does not
 * multiply them; limits on a set and on one step's work bound the rest.
 */
#include <stdlib.h>
#include <string.h>

#include "grammar.h"

static uint32_t mix(uint32_t h, uint32_t v) {
    h ^= v + 0x9E3779B9u + (h << 6) + (h >> 2);
    return h * 0x85EBCA6Bu;
}

static uint32_t node_hash(const l2_gmatch *m, int32_t node) { return node < 0 ? 0x12345u : m->nodes[node].hash; }

/* A node (pos over parent); -1 past the limit or out of memory. */
static int32_t new_node(l2_gmatch *m, uint32_t pos, int32_t parent) {
    if (m->n_nodes == m->cap_nodes) {
        if (m->cap_nodes >= L2_GMATCH_MAX_NODES) return -1;
        size_t cap = m->cap_nodes ? 2 * m->cap_nodes : 1024;
        l2_gnode *n = realloc(m->nodes, cap * sizeof *n);
        if (!n) {
            m->out_of_memory = 1;
            return -1;
        }
        m->nodes = n;
        m->cap_nodes = cap;
    }
    m->nodes[m->n_nodes] = (l2_gnode){pos, parent, mix(node_hash(m, parent), pos)};
    return (int32_t)m->n_nodes++;
}

static int push_set(l2_gmatch *m, int32_t entry) {
    if (m->n_sets == m->cap_sets) {
        size_t cap = m->cap_sets ? 2 * m->cap_sets : 1024;
        int32_t *s = realloc(m->sets, cap * sizeof *s);
        if (!s) {
            m->out_of_memory = 1;
            return 0;
        }
        m->sets = s;
        m->cap_sets = cap;
    }
    m->sets[m->n_sets++] = entry;
    return 1;
}

/* Whether the stacks below nodes a and b are the same. */
static int same_stack(const l2_gmatch *m, int32_t a, int32_t b) {
    while (a != b) {
        if (a < 0 || b < 0) return 0;
        const l2_gnode *x = &m->nodes[a], *y = &m->nodes[b];
        if (x->pos != y->pos || x->hash != y->hash) return 0;
        a = x->parent;
        b = y->parent;
    }
    return 1;
}

/* Runs the work list work[0..n_work) to its end: every stack that stops
 * at a byte element joins the new set, appended to m->sets. Returns the set's
 * begin, or SIZE_MAX (nothing appended, the arena cut back) when it is
 * empty or past the limits. */
static size_t close_set(l2_gmatch *m, size_t n_work) {
    const llama2_grammar *g = m->g;
    const size_t out = m->n_sets, nodes_mark = m->n_nodes;
    if (++m->stamp == 0) {
        memset(m->seen, 0, L2_GMATCH_SEEN * sizeof *m->seen);
        m->stamp = 1;
    }
    int can_end = 0;
    size_t steps = 0, size = 0;
    while (n_work > 0) {
        struct l2_gwork w = m->work[--n_work];
        uint32_t e = g->elems[w.pos];
        switch (L2_G_KIND(e)) {
        case L2_G_END:
        case L2_G_ALT:
            if (w.parent < 0) {
                if (!can_end) {
                    can_end = 1;
                    if (!push_set(m, -1)) goto fail;
                    size++;
                }
            } else {
                m->work[n_work++] = (struct l2_gwork){m->nodes[w.parent].pos, m->nodes[w.parent].parent};
            }
            break;
        case L2_G_BYTES: {
            uint32_t h = mix(node_hash(m, w.parent), w.pos);
            size_t slot = h & (L2_GMATCH_SEEN - 1);
            int dup = 0;
            for (; m->seen[slot].stamp == m->stamp; slot = (slot + 1) & (L2_GMATCH_SEEN - 1)) {
                const l2_gnode *n = &m->nodes[m->seen[slot].node];
                if (n->hash == h && n->pos == w.pos && same_stack(m, n->parent, w.parent)) {
                    dup = 1;
                    break;
                }
            }
            if (dup) break;
            if (++size > L2_GMATCH_MAX_SET) goto fail;
            int32_t id = new_node(m, w.pos, w.parent);
            if (id < 0 || !push_set(m, id)) goto fail;
            m->seen[slot].stamp = m->stamp;
            m->seen[slot].node = id;
            break;
        }
        case L2_G_REF: {
            uint32_t r = L2_G_ARG(e);
            int32_t parent = w.parent;
            /* A reference last in its alternative returns straight to the
             * parent (so right recursion does not deepen the stack). */
            if (L2_G_KIND(g->elems[w.pos + 1]) > L2_G_ALT) {
                parent = new_node(m, w.pos + 1, w.parent);
                if (parent < 0) goto fail;
            }
            uint32_t a0 = g->rule_alts[r], a1 = g->rule_alts[r + 1];
            steps += a1 - a0;
            if (steps + n_work > L2_GMATCH_MAX_STEPS) goto fail;
            for (uint32_t a = a1; a-- > a0;) m->work[n_work++] = (struct l2_gwork){g->alt_start[a], parent};
            break;
        }
        }
        if (++steps > L2_GMATCH_MAX_STEPS) goto fail;
    }
    if (m->n_sets == out) goto fail;
    return out;
fail:
    m->n_sets = out;
    m->n_nodes = nodes_mark;
    return SIZE_MAX;
}

size_t l2_gmatch_step(l2_gmatch *m, size_t begin, size_t end, unsigned byte) {
    const llama2_grammar *g = m->g;
    size_t n_work = 0;
    for (size_t i = end; i-- > begin;) {
        int32_t id = m->sets[i];
        if (id < 0) continue;
        const l2_gnode *n = &m->nodes[id];
        if (l2_byte_in_set(g->sets[L2_G_ARG(g->elems[n->pos])], byte))
            m->work[n_work++] = (struct l2_gwork){n->pos + 1, n->parent};
    }
    return n_work ? close_set(m, n_work) : SIZE_MAX;
}

int l2_gmatch_can_end(const l2_gmatch *m, size_t begin, size_t end) {
    for (size_t i = begin; i < end; i++)
        if (m->sets[i] < 0) return 1;
    return 0;
}

int l2_gmatch_init(l2_gmatch *m, const llama2_grammar *g) {
    memset(m, 0, sizeof *m);
    m->g = g;
    m->work = malloc(L2_GMATCH_MAX_STEPS * sizeof *m->work);
    m->seen = calloc(L2_GMATCH_SEEN, sizeof *m->seen);
    if (!m->work || !m->seen) {
        m->out_of_memory = 1;
        return 0;
    }
    size_t n_work = 0;
    for (uint32_t a = g->rule_alts[g->root + 1]; a-- > g->rule_alts[g->root];) {
        if (n_work == L2_GMATCH_MAX_STEPS) return 0;
        m->work[n_work++] = (struct l2_gwork){g->alt_start[a], -1};
    }
    size_t b = close_set(m, n_work);
    if (b == SIZE_MAX) return 0;
    m->cur_begin = b;
    m->cur_end = m->n_sets;
    return 1;
}

void l2_gmatch_free(l2_gmatch *m) {
    free(m->nodes);
    free(m->sets);
    free(m->work);
    free(m->seen);
    free(m->remap);
    memset(m, 0, sizeof *m);
}

/* Keeps only the nodes of the set [begin, end), which becomes the current
 * one at the start of m->sets. Parents come before their children in the
 * arena, so one pass in order renumbers in place. */
static int compact(l2_gmatch *m, size_t begin, size_t end) {
    if (m->n_nodes > m->cap_remap) {
        int32_t *r = realloc(m->remap, m->n_nodes * sizeof *r);
        if (!r) {
            m->out_of_memory = 1;
            return 0;
        }
        m->remap = r;
        m->cap_remap = m->n_nodes;
    }
    int32_t *remap = m->remap;
    for (size_t i = 0; i < m->n_nodes; i++) remap[i] = -1;
    for (size_t i = begin; i < end; i++)
        for (int32_t id = m->sets[i]; id >= 0 && remap[id] == -1; id = m->nodes[id].parent) remap[id] = -2;
    size_t k = 0;
    for (size_t i = 0; i < m->n_nodes; i++) {
        if (remap[i] == -1) continue;
        l2_gnode n = m->nodes[i];
        if (n.parent >= 0) n.parent = remap[n.parent];
        m->nodes[k] = n;
        remap[i] = (int32_t)k++;
    }
    m->n_nodes = k;
    for (size_t i = begin; i < end; i++) {
        int32_t id = m->sets[i];
        m->sets[i - begin] = id < 0 ? -1 : remap[id];
    }
    m->cur_begin = 0;
    m->cur_end = end - begin;
    m->n_sets = m->cur_end;
    return 1;
}

int l2_gmatch_accept(l2_gmatch *m, const char *bytes, size_t n) {
    if (n == 0) return 1;
    const size_t sets_mark = m->n_sets, nodes_mark = m->n_nodes;
    size_t b = m->cur_begin, e = m->cur_end;
    for (size_t i = 0; i < n; i++) {
        size_t nb = l2_gmatch_step(m, b, e, (unsigned char)bytes[i]);
        if (nb == SIZE_MAX) {
            m->n_sets = sets_mark;
            m->n_nodes = nodes_mark;
            return 0;
        }
        b = nb;
        e = m->n_sets;
    }
    if (!compact(m, b, e)) {
        m->n_sets = sets_mark;
        m->n_nodes = nodes_mark;
        return 0;
    }
    return 1;
}

int llama2_grammar_match(const llama2_grammar *g, const char *text, size_t len) {
    if (!g) return 0;
    l2_gmatch m;
    if (!l2_gmatch_init(&m, g)) {
        l2_gmatch_free(&m);
        return -1;
    }
    size_t b = m.cur_begin, e = m.cur_end;
    int result = 1;
    for (size_t i = 0; i < len; i++) {
        /* Cut the arena back now and then: only the current set matters. */
        if (m.n_nodes > (1u << 20)) {
            if (!compact(&m, b, e)) {
                result = -1;
                break;
            }
            b = m.cur_begin;
            e = m.cur_end;
        }
        size_t nb = l2_gmatch_step(&m, b, e, (unsigned char)text[i]);
        if (nb == SIZE_MAX) {
            result = m.out_of_memory ? -1 : 0;
            break;
        }
        b = nb;
        e = m.n_sets;
    }
    if (result == 1) result = l2_gmatch_can_end(&m, b, e);
    l2_gmatch_free(&m);
    return result;
}
