/* The tokenizer's merge step, exposed so that tests can check the fast
 * version against the plain one llama2.c uses, and the BPE tables behind a
 * tokenizer (the converter writes them). Not part of the public API. */
#ifndef LLAMA2_TOKENIZER_INTERNAL_H
#define LLAMA2_TOKENIZER_INTERNAL_H

#include "llama2.h"

typedef struct l2_bpe l2_bpe;

/* A tokenizer over BPE tables (taking them: freed on failure too). */
llama2_status l2_tokenizer_from_bpe_tables(l2_bpe *bpe, llama2_tokenizer **out, llama2_error *err);
/* The BPE tables of a BPE tokenizer, NULL for a llama2.c one. */
const l2_bpe *l2_tokenizer_bpe(const llama2_tokenizer *tokenizer);

/* Both apply llama2.c's greedy merges to ids[0..n) in place (every id must be
 * in the vocabulary) and return the new count. */

/* llama2.c's loop: O(n) pair lookups per merge, O(n^2) in all. */
int l2_tokenizer_merge_naive(const llama2_tokenizer *tokenizer, int *ids, int n);

/* The same result with a linked list and a heap of candidate pairs,
 * O(n log n); returns -1 when out of memory. */
int l2_tokenizer_merge_fast(const llama2_tokenizer *tokenizer, int *ids, int n);

#endif
