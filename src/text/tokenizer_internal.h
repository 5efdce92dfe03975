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

/* A tokenizer from its pieces, as a model file's metadata holds them
 * (GGUF): piece i is the next lengths[i] bytes of text (cut at a NUL, as a
 * piece of tokenizer.bin is), with scores[i]. */
llama2_status l2_tokenizer_from_pieces(int count, const char *text, const size_t *lengths, const float *scores,
                                      llama2_tokenizer **out, llama2_error *err);

/* Token id's piece as stored (up to its first NUL) and its score: for
 * writers that carry a tokenizer into another file. id must be valid. */
const char *l2_tokenizer_entry(const llama2_tokenizer *tokenizer, int id, size_t *len, float *score);

#endif
