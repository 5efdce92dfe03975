/* A GBNF grammar compiled to bytes, and the matcher that follows text
 * through it (grammar_parse.c builds it, grammar_match.c runs it,
 * grammar_stage.c is the sampler stage on top). */
#ifndef LLAMA2_GRAMMAR_H
#define LLAMA2_GRAMMAR_H

#include <stddef.h>
#include <stdint.h>

#include "llama2.h"

/* The compiled form. Characters are gone: a character class is a rule whose
 * alternatives are UTF-8 byte sequences, so the matcher works on bytes and a
 * character split across tokens needs nothing special. Each element is a
 * uint32: its kind in the low 2 bits, its argument above them. A rule is its
 * alternatives one after the other, each ended by L2_G_ALT except the last,
 * ended by L2_G_END. */
enum {
    L2_G_END = 0,   /* the end of a rule's last alternative */
    L2_G_ALT = 1,   /* the end of an alternative, another follows */
    L2_G_REF = 2,   /* argument: a rule */
    L2_G_BYTES = 3, /* argument: a byte set, one byte of it */
};
#define L2_G_KIND(e) ((e) & 3u)
#define L2_G_ARG(e) ((e) >> 2)
#define L2_G_ELEM(kind, arg) (((uint32_t)(arg) << 2) | (uint32_t)(kind))

struct llama2_grammar {
    uint32_t *elems;
    uint32_t *rule_start; /* [n_rules] index of each rule's first element */
    uint32_t *rule_alts;  /* [n_rules + 1] rule r's alternatives: alt_start[rule_alts[r]..rule_alts[r + 1]) */
    uint32_t *alt_start;  /* the first element of each alternative */
    uint8_t (*sets)[32];  /* [n_sets] 256-bit byte sets */
    int n_rules, n_sets;
    size_t n_elems;
    int root;
};

static inline int l2_byte_in_set(const uint8_t *set, unsigned byte) { return (set[byte >> 3] >> (byte & 7)) & 1; }

/* The most elements and rules a grammar may compile to: bigger ones are
 * refused, so that memory and time stay bounded. */
#define L2_GRAMMAR_MAX_ELEMS (1u << 20)
#define L2_GRAMMAR_MAX_RULES (1 << 18)
#define L2_GRAMMAR_MAX_NESTING 128

/* ------------------------------------------------------------ matcher */

/* The parses alive after some text: a set of stacks. A stack is a chain of
 * nodes (the next element to match, then the positions to return to), kept
 * in an arena that grows as text is tried and is cut back to a mark
 * afterwards; entry -1 in a set is the empty stack (the text may end). */
typedef struct l2_gnode {
    uint32_t pos;
    int32_t parent;
    uint32_t hash;
} l2_gnode;

typedef struct l2_gmatch {
    const struct llama2_grammar *g;
    l2_gnode *nodes;
    size_t n_nodes, cap_nodes;
    int32_t *sets; /* the sets, one after the other, as a stack */
    size_t n_sets, cap_sets;
    size_t cur_begin, cur_end; /* the current (accepted) set within sets */
    /* work list and dedup table of one closure */
    struct l2_gwork {
        uint32_t pos;
        int32_t parent;
    } *work;             /* [L2_GMATCH_MAX_STEPS] */
    struct l2_gseen {
        uint32_t stamp;
        int32_t node;
    } *seen;             /* [L2_GMATCH_SEEN] */
    uint32_t stamp;
    int32_t *remap; /* compaction scratch */
    size_t cap_remap;
    /* 1 once an allocation failed: a byte was then refused for want of
     * memory, not by the grammar, and the text can no longer be trusted. */
    int out_of_memory;
} l2_gmatch;

/* Limits of one step: a set of more stacks, or a closure of more steps, is
 * taken as a dead end (the byte is not allowed). */
#define L2_GMATCH_MAX_SET 4096
#define L2_GMATCH_MAX_STEPS (1 << 16)
#define L2_GMATCH_MAX_NODES (1 << 22)
#define L2_GMATCH_SEEN (2 * L2_GMATCH_MAX_SET)

/* Starts at the root: returns 0 when out of memory or past the limits. */
int l2_gmatch_init(l2_gmatch *m, const struct llama2_grammar *g);
void l2_gmatch_free(l2_gmatch *m);

/* Appends to m->sets the set that follows the set [begin, end) after `byte`
 * and returns its begin (its end is m->n_sets); returns SIZE_MAX when the
 * set is empty, too big, or memory ran out (then nothing was appended).
 * Nodes are appended to the arena: cut back with n_nodes / n_sets marks. */
size_t l2_gmatch_step(l2_gmatch *m, size_t begin, size_t end, unsigned byte);

/* Whether the set [begin, end) holds the empty stack (the text may end). */
int l2_gmatch_can_end(const l2_gmatch *m, size_t begin, size_t end);

/* Makes the text bytes[0..n) part of the accepted text: returns 0 (and
 * changes nothing) when it leaves the grammar. */
int l2_gmatch_accept(l2_gmatch *m, const char *bytes, size_t n);

#endif
