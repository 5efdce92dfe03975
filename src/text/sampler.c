/*
 * The sampler chain: penalties, temperature, top-k, top-p, min-p, one draw
 * (the order and why are in llama2.h). With top-k and min-p off and no
 * penalties it is llama2.c's sampler, decision for decision: argmax at
 * temperature 0; otherwise softmax of logits / temperature and either a draw
 * from the whole distribution or nucleus (top-p) sampling,
 * https://arxiv.org/abs/1904.09751, with llama2.c's xorshift generator.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "platform/checks.h"
#include "kernels/ops.h"
#include "sampler_stages.h"

struct llama2_sampler {
    int vocab_size;
    llama2_sampler_options options;
    int penalties_on;
    uint64_t rng_state;
    l2_candidate *candidates; /* [vocab_size] what survives the cut-offs */
    l2_candidate *scratch;    /* [vocab_size] sort workspace */
    int *counts;              /* [vocab_size] zeros between calls (penalties) */
    int *history;             /* [repeat_last_n] a ring of the last accepted tokens */
    int n_history, history_next;
    int last_token;           /* the last accepted token, for the piece of the next (-1: none) */
    l2_grammar_stage *grammar;
    int grammar_started;      /* a sample was drawn since the grammar was set */
    float *saved;             /* [vocab_size] the logits, for a second draw under the grammar */
};

/* What the stages before the draw leave. */
typedef enum chain_result {
    CHAIN_PICKED, /* one token, no draw (temperature 0, or a stage left nothing) */
    CHAIN_WHOLE,  /* the whole distribution, in vocabulary order */
    CHAIN_CUT,    /* the sorted candidates that survived the cut-offs */
} chain_result;

/* xorshift* (https://en.wikipedia.org/wiki/Xorshift#xorshift*), as llama2.c. */
static uint32_t random_u32(uint64_t *state) {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return (uint32_t)((*state * 0x2545F4914F6CDD1Dull) >> 32);
}

/* A float in [0, 1) from the top 24 bits. */
static float random_f32(uint64_t *state) { return (float)(random_u32(state) >> 8) / 16777216.0f; }

/* xorshift stays at 0 from 0: a zero seed stands for this one. */
#define ZERO_SEED_STANDIN 0x9E3779B97F4A7C15ull

llama2_sampler_options llama2_sampler_defaults(void) {
    return (llama2_sampler_options){.temperature = 1.0f, .top_p = 0.9f, .repeat_penalty = 1.0f, .repeat_last_n = 64};
}

static llama2_status check_options(const llama2_sampler_options *o, llama2_error *err) {
    if (!(o->temperature >= 0.0f) || isinf(o->temperature))
        return l2_fail(err, LLAMA2_E_INVALID, "temperature must be a non-negative number");
    if (!(o->top_p >= 0.0f && o->top_p <= 1.0f)) return l2_fail(err, LLAMA2_E_INVALID, "top-p must be in [0, 1]");
    if (o->top_k < 0) return l2_fail(err, LLAMA2_E_INVALID, "top-k must not be negative");
    if (!(o->min_p >= 0.0f && o->min_p <= 1.0f)) return l2_fail(err, LLAMA2_E_INVALID, "min-p must be in [0, 1]");
    if (!(o->repeat_penalty >= 0.0f) || isinf(o->repeat_penalty))
        return l2_fail(err, LLAMA2_E_INVALID, "the repeat penalty must be a positive number (0: off)");
    if (o->repeat_last_n < 0) return l2_fail(err, LLAMA2_E_INVALID, "repeat_last_n must not be negative");
    if (!isfinite(o->presence_penalty) || !isfinite(o->frequency_penalty))
        return l2_fail(err, LLAMA2_E_INVALID, "the presence and frequency penalties must be finite numbers");
    return LLAMA2_OK;
}

llama2_status llama2_sampler_create(int vocab_size, const llama2_sampler_options *options, llama2_sampler **out,
                                    llama2_error *err) {
    *out = NULL;
    llama2_sampler_options o = options ? *options : llama2_sampler_defaults();
    if (vocab_size <= 0) return l2_fail(err, LLAMA2_E_INVALID, "vocabulary size %d", vocab_size);
    llama2_status st = check_options(&o, err);
    if (st != LLAMA2_OK) return st;
    if (o.repeat_penalty == 0.0f) o.repeat_penalty = 1.0f;
    llama2_sampler *s = calloc(1, sizeof *s);
    if (!s) return l2_fail(err, LLAMA2_E_NOMEM, "out of memory");
    s->vocab_size = vocab_size;
    s->options = o;
    s->rng_state = o.seed ? o.seed : ZERO_SEED_STANDIN;
    s->last_token = -1;
    s->penalties_on = o.repeat_last_n > 0 &&
                      (o.repeat_penalty != 1.0f || o.presence_penalty != 0.0f || o.frequency_penalty != 0.0f);
    s->candidates = malloc((size_t)vocab_size * sizeof *s->candidates);
    s->scratch = malloc((size_t)vocab_size * sizeof *s->scratch);
    int ok = s->candidates && s->scratch;
    if (ok && s->penalties_on) {
        s->counts = calloc((size_t)vocab_size, sizeof *s->counts);
        s->history = malloc((size_t)o.repeat_last_n * sizeof *s->history);
        ok = s->counts && s->history;
    }
    if (!ok) {
        llama2_sampler_destroy(s);
        return l2_fail(err, LLAMA2_E_NOMEM, "out of memory for a sampler of %d tokens", vocab_size);
    }
    *out = s;
    return LLAMA2_OK;
}

void llama2_sampler_destroy(llama2_sampler *s) {
    if (!s) return;
    free(s->candidates);
    free(s->scratch);
    free(s->counts);
    free(s->history);
    l2_grammar_stage_destroy(s->grammar);
    free(s->saved);
    free(s);
}

llama2_status llama2_sampler_set_grammar(llama2_sampler *s, const llama2_grammar *grammar,
                                         const llama2_tokenizer *tokenizer, llama2_error *err) {
    l2_grammar_stage_destroy(s->grammar);
    s->grammar = NULL;
    s->grammar_started = 0;
    if (!grammar) return LLAMA2_OK;
    if (!tokenizer) return l2_fail(err, LLAMA2_E_INVALID, "a grammar needs the tokenizer");
    if (!s->saved) {
        s->saved = malloc((size_t)s->vocab_size * sizeof *s->saved);
        if (!s->saved) return l2_fail(err, LLAMA2_E_NOMEM, "out of memory for the grammar stage");
    }
    return l2_grammar_stage_create(grammar, tokenizer, s->vocab_size, &s->grammar, err);
}

int l2_sampler_has_grammar(const llama2_sampler *s) { return s->grammar != NULL; }

int l2_sampler_out_of_memory(const llama2_sampler *s) {
    return s->grammar && l2_grammar_stage_out_of_memory(s->grammar);
}

void llama2_sampler_accept(llama2_sampler *s, int token) {
    if (s->grammar && s->grammar_started) l2_grammar_stage_accept(s->grammar, s->last_token, token);
    s->last_token = token;
    if (!s->penalties_on || token < 0 || token >= s->vocab_size) return;
    s->history[s->history_next] = token;
    s->history_next = (s->history_next + 1) % s->options.repeat_last_n;
    if (s->n_history < s->options.repeat_last_n) s->n_history++;
}

/* ------------------------------------------------------------ the stages */

void l2_penalize(float *logits, const int *history, int n_history, int *counts, float repeat_penalty,
                 float presence_penalty, float frequency_penalty) {
    for (int i = 0; i < n_history; i++) counts[history[i]]++;
    /* Each distinct token once: its count is cleared as it is used. */
    for (int i = 0; i < n_history; i++) {
        const int t = history[i];
        const int count = counts[t];
        if (count == 0) continue;
        counts[t] = 0;
        float logit = logits[t];
        if (repeat_penalty != 1.0f) logit = logit <= 0.0f ? logit * repeat_penalty : logit / repeat_penalty;
        logits[t] = logit - ((float)count * frequency_penalty + presence_penalty);
    }
}

/* The first index of the largest value, NaNs passed over (index 0 when p[0]
 * is NaN), as the loop `if (p[i] > p[best]) best = i` gives it. That loop is
 * one chain of dependent loads and compares (a greedy server step over 16
 * rows of 32000 logits spent 2 ms in it); here the maximum is found in
 * eight independent lanes that compilers vectorise (the ternary is x86's
 * maxps, NaN and signed zeros included), then its first index by ==, which
 * cannot tell +0 from -0: neither can the loop's >. */
#define ARGMAX_LANES 8

int l2_argmax(const float *p, int n) {
    if (n <= 1 || p[0] != p[0]) return 0;
    float lane[ARGMAX_LANES];
    for (int j = 0; j < ARGMAX_LANES; j++) lane[j] = p[0];
    int i = 0;
    for (; i + ARGMAX_LANES <= n; i += ARGMAX_LANES)
        for (int j = 0; j < ARGMAX_LANES; j++) lane[j] = p[i + j] > lane[j] ? p[i + j] : lane[j];
    float max = lane[0];
    for (int j = 1; j < ARGMAX_LANES; j++) max = lane[j] > max ? lane[j] : max;
    for (; i < n; i++) max = p[i] > max ? p[i] : max;
    int best = 0;
    while (p[best] != max) best++;
    return best;
}

/* The order of the sorted candidates: more likely first, then lower index. */
static int comes_before(l2_candidate a, l2_candidate b) {
    return a.prob > b.prob || (a.prob == b.prob && a.index < b.index);
}

/* Bottom-up merge sort: on candidates in index order it keeps equal
 * probabilities in index order, which is what glibc's qsort (a merge sort)
 * gives llama2.c. */
void l2_sort_candidates(l2_candidate *a, int n, l2_candidate *tmp) {
    for (int width = 1; width < n; width *= 2) {
        for (int lo = 0; lo < n; lo += 2 * width) {
            int mid = lo + width < n ? lo + width : n;
            int hi = lo + 2 * width < n ? lo + 2 * width : n;
            int i = lo, j = mid, k = lo;
            while (i < mid && j < hi) tmp[k++] = comes_before(a[j], a[i]) ? a[j++] : a[i++];
            while (i < mid) tmp[k++] = a[i++];
            while (j < hi) tmp[k++] = a[j++];
        }
        for (int i = 0; i < n; i++) a[i] = tmp[i];
    }
}

/* Restores the heap below `at` in a heap whose root is the candidate that
 * comes last (so the root is the one to replace). */
static void sift_down(l2_candidate *heap, int size, int at) {
    for (;;) {
        int worst = at, l = 2 * at + 1, r = l + 1;
        if (l < size && comes_before(heap[worst], heap[l])) worst = l;
        if (r < size && comes_before(heap[worst], heap[r])) worst = r;
        if (worst == at) return;
        l2_candidate t = heap[at];
        heap[at] = heap[worst];
        heap[worst] = t;
        at = worst;
    }
}

/* The k best in O(n log k): a heap of the k best so far, its worst at the
 * root, so that most tokens cost one comparison. */
int l2_top_k(const float *probs, int n, int k, l2_candidate *out, l2_candidate *tmp) {
    if (k > n) k = n;
    for (int i = 0; i < k; i++) out[i] = (l2_candidate){probs[i], i};
    for (int i = k / 2 - 1; i >= 0; i--) sift_down(out, k, i);
    for (int i = k; i < n; i++) {
        l2_candidate c = {probs[i], i};
        if (comes_before(c, out[0])) {
            out[0] = c;
            sift_down(out, k, 0);
        }
    }
    l2_sort_candidates(out, k, tmp);
    return k;
}

int l2_candidates_above(const float *probs, int n, float threshold, l2_candidate *out) {
    int m = 0;
    for (int i = 0; i < n; i++)
        if (probs[i] >= threshold) out[m++] = (l2_candidate){probs[i], i};
    return m;
}

int l2_top_p(const l2_candidate *c, int n, float top_p, float mass) {
    const float target = top_p * mass;
    float cumulative = 0.0f;
    for (int i = 0; i < n; i++) {
        cumulative += c[i].prob;
        if (cumulative > target) return i + 1;
    }
    return n;
}

int l2_min_p(const l2_candidate *c, int n, float min_p) {
    if (n == 0) return 0;
    const float threshold = min_p * c[0].prob;
    int m = 1;
    while (m < n && c[m].prob >= threshold) m++;
    return m;
}

int l2_draw(const l2_candidate *c, int n, float coin) {
    float mass = 0.0f;
    for (int i = 0; i < n; i++) mass += c[i].prob;
    const float r = coin * mass;
    float cdf = 0.0f;
    for (int i = 0; i < n; i++) {
        cdf += c[i].prob;
        if (r < cdf) return c[i].index;
    }
    return c[n - 1].index; /* rounding left the sum below r */
}

/* Inverse-CDF draw from the whole distribution, as llama2.c. */
static int draw_whole(const float *p, int n, float coin) {
    float cdf = 0.0f;
    for (int i = 0; i < n; i++) {
        cdf += p[i];
        if (coin < cdf) return i;
    }
    return n - 1;
}

/* ------------------------------------------------------------ the chain */

/* Stages 1 to 6. CHAIN_PICKED: the token is in *token. CHAIN_WHOLE: logits
 * hold the probabilities. CHAIN_CUT: s->candidates[0..*n) do. */
static chain_result run_chain(llama2_sampler *s, float *logits, int *token, int *n) {
    const llama2_sampler_options *o = &s->options;
    const int vocab = s->vocab_size;
    if (s->penalties_on)
        l2_penalize(logits, s->history, s->n_history, s->counts, o->repeat_penalty, o->presence_penalty,
                    o->frequency_penalty);
    if (o->temperature == 0.0f) {
        *token = l2_argmax(logits, vocab);
        return CHAIN_PICKED;
    }
    for (int i = 0; i < vocab; i++) logits[i] /= o->temperature;
    l2_kernels_reference()->softmax(logits, vocab); /* llama2.c's arithmetic */

    const int top_k = o->top_k > 0 && o->top_k < vocab;
    const int top_p = o->top_p > 0.0f && o->top_p < 1.0f && vocab > 1;
    const int min_p = o->min_p > 0.0f;
    if (!top_k && !top_p && !min_p) return CHAIN_WHOLE;

    /* Gather the candidates: the k best; or, as llama2.c, the tokens that can
     * be in the nucleus: below (1 - top_p) / (n - 1) a token cannot, since
     * it and the tokens after it, at most n - 1 and none likelier, would
     * have to hold the 1 - top_p the nucleus leaves out (llama2.c's pull
     * request 276, https://github.com/karpathy/llama2.c/pull/276); or the
     * tokens min-p keeps. */
    l2_candidate *c = s->candidates;
    int m;
    float mass = 1.0f; /* a softmax sums to 1 */
    if (top_k) {
        m = l2_top_k(logits, vocab, o->top_k, c, s->scratch);
        mass = 0.0f;
        for (int i = 0; i < m; i++) mass += c[i].prob;
    } else {
        float threshold = top_p ? (1.0f - o->top_p) / (float)(vocab - 1)
                                : o->min_p * logits[l2_argmax(logits, vocab)];
        m = l2_candidates_above(logits, vocab, threshold, c);
        l2_sort_candidates(c, m, s->scratch);
    }
    if (m > 0 && top_p) m = l2_top_p(c, m, o->top_p, mass);
    if (m > 0 && min_p) m = l2_min_p(c, m, o->min_p);
    if (m == 0) { /* NaN probabilities, or a nucleus filter with no token left */
        *token = l2_argmax(logits, vocab);
        return CHAIN_PICKED;
    }
    *n = m;
    return CHAIN_CUT;
}

/* The chain and one draw, without the grammar. */
static int sample_chain(llama2_sampler *s, float *logits) {
    int token = 0, n = 0;
    chain_result r = run_chain(s, logits, &token, &n);
    if (s->options.temperature == 0.0f) return token;
    /* One number per draw at any temperature above 0, as llama2.c. */
    const float coin = random_f32(&s->rng_state);
    switch (r) {
    case CHAIN_PICKED: return token;
    case CHAIN_WHOLE: return draw_whole(logits, s->vocab_size, coin);
    case CHAIN_CUT: return l2_draw(s->candidates, n, coin);
    }
    return token;
}

/* With a grammar: the drawn token if it is allowed; else the chain again on
 * the allowed tokens' logits only, and a second draw. */
int llama2_sampler_sample(llama2_sampler *s, float *logits) {
    if (!s->grammar) return sample_chain(s, logits);
    s->grammar_started = 1;
    const size_t bytes = (size_t)s->vocab_size * sizeof *logits;
    memcpy(s->saved, logits, bytes);
    int token = sample_chain(s, logits);
    if (l2_grammar_stage_allows(s->grammar, s->last_token, token)) return token;
    memcpy(logits, s->saved, bytes);
    if (!l2_grammar_stage_mask(s->grammar, s->last_token, logits, s->vocab_size)) return LLAMA2_TOKEN_EOS;
    memcpy(s->saved, logits, bytes);
    token = sample_chain(s, logits);
    /* A draw that rounding pushed onto a token of probability 0: the likeliest allowed one. */
    if (!(s->saved[token] > -INFINITY)) token = l2_argmax(s->saved, s->vocab_size);
    return token;
}

void llama2_sampler_distribution(llama2_sampler *s, float *logits, float *probs) {
    int token = 0, n = 0;
    if (s->grammar && !l2_grammar_stage_mask(s->grammar, s->last_token, logits, s->vocab_size)) {
        for (int i = 0; i < s->vocab_size; i++) probs[i] = i == LLAMA2_TOKEN_EOS;
        return;
    }
    chain_result r = run_chain(s, logits, &token, &n);
    const int vocab = s->vocab_size;
    if (r == CHAIN_WHOLE) {
        for (int i = 0; i < vocab; i++) probs[i] = logits[i];
        return;
    }
    for (int i = 0; i < vocab; i++) probs[i] = 0.0f;
    if (r == CHAIN_PICKED) {
        probs[token] = 1.0f;
        return;
    }
    float mass = 0.0f;
    for (int i = 0; i < n; i++) mass += s->candidates[i].prob;
    for (int i = 0; i < n; i++) probs[s->candidates[i].index] = s->candidates[i].prob / mass;
}
