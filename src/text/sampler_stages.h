/* The sampler chain's stages, each a small function on its own (see the
 * order in llama2.h), declared here so that tests can run each one alone. */
#ifndef LLAMA2_SAMPLER_STAGES_H
#define LLAMA2_SAMPLER_STAGES_H

#include "llama2.h"

/* A token and its probability: the candidates the cut-off stages work on. */
typedef struct l2_candidate {
    float prob;
    int index;
} l2_candidate;

/* Penalties: for each distinct token among history[0..n_history), its logit
 * is divided by repeat_penalty when positive and multiplied when not, then
 * count * frequency_penalty + presence_penalty is subtracted. counts[] (one
 * per vocabulary entry) must be all zero; it is left all zero. */
void l2_penalize(float *logits, const int *history, int n_history, int *counts, float repeat_penalty,
                 float presence_penalty, float frequency_penalty);

/* The first index of the largest value, compared with > as llama2.c does. */
int l2_argmax(const float *values, int n);

/* Top-k: the k most likely of probs[0..n) into out[0..k), most likely first,
 * ties in index order. out holds k entries, heap k more. Returns k, or n
 * when n < k. */
int l2_top_k(const float *probs, int n, int k, l2_candidate *out, l2_candidate *heap);

/* The candidates of probs[0..n) at or above threshold, in index order;
 * returns how many. */
int l2_candidates_above(const float *probs, int n, float threshold, l2_candidate *out);

/* Sorts by descending probability, ties in index order (tmp: n entries). */
void l2_sort_candidates(l2_candidate *c, int n, l2_candidate *tmp);

/* Top-p on sorted candidates whose probabilities sum to `mass`: how many of
 * the first ones it takes for their sum to exceed top_p * mass (all of them
 * if it never does). */
int l2_top_p(const l2_candidate *c, int n, float top_p, float mass);

/* Min-p on sorted candidates: how many of the first ones are at least min_p
 * times as likely as the first. */
int l2_min_p(const l2_candidate *c, int n, float min_p);

/* One draw from the first n sorted candidates, renormalised: the first whose
 * running sum exceeds coin * (their sum); the last if rounding leaves none. */
int l2_draw(const l2_candidate *c, int n, float coin);

/* The grammar stage (grammar_stage.c). BOS and EOS end the text: they are
 * allowed where the grammar may end (or once the text has left it, which
 * only a caller's own token can do). */
typedef struct l2_grammar_stage l2_grammar_stage;
llama2_status l2_grammar_stage_create(const llama2_grammar *grammar, const llama2_tokenizer *tokenizer, int vocab,
                                      l2_grammar_stage **out, llama2_error *err);
void l2_grammar_stage_destroy(l2_grammar_stage *stage);
/* Whether `token`, after `prev` (for the piece: a leading space is dropped
 * after BOS), keeps the text in the grammar. */
int l2_grammar_stage_allows(l2_grammar_stage *stage, int prev, int token);
/* Sets logits[i] to -INFINITY for every token not allowed; returns 0 when
 * none is. */
int l2_grammar_stage_mask(l2_grammar_stage *stage, int prev, float *logits, int n_logits);
/* Adds the token to the text (a token that leaves the grammar ends it: then
 * only BOS and EOS are allowed). */
void l2_grammar_stage_accept(l2_grammar_stage *stage, int prev, int token);
/* 1 once the matcher ran out of memory: since then a token may have been
 * refused for want of memory rather than by the grammar. */
int l2_grammar_stage_out_of_memory(const l2_grammar_stage *stage);

/* Whether a grammar constrains the sampler (generation then ends at EOS too). */
int l2_sampler_has_grammar(const llama2_sampler *sampler);
/* 1 once the sampler's grammar ran out of memory (for good): what it
 * sampled since is not to be used, and the generation fails. */
int l2_sampler_out_of_memory(const llama2_sampler *sampler);

#endif
