/*
 * Sampling the next token: llama2.c's sampler, decision for decision, so a
 * seed gives llama2.c's text. Argmax at temperature 0; otherwise softmax of
 * logits / temperature and either a draw from the whole distribution or
 * nucleus (top-p) sampling, https://arxiv.org/abs/1904.09751.
 */
#include <math.h>
#include <stdlib.h>

#include "internal.h"
#include "ops.h"

typedef struct prob_index {
    float prob;
    int index;
} prob_index;

struct llama2_sampler {
    int vocab_size;
    float temperature;
    float topp;
    uint64_t rng_state;
    prob_index *candidates; /* [vocab_size] top-p workspace */
    prob_index *merge_tmp;  /* [vocab_size] merge-sort workspace */
};

/* xorshift* (https://en.wikipedia.org/wiki/Xorshift#xorshift*), as llama2.c. */
static uint32_t random_u32(uint64_t *state) {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return (uint32_t)((*state * 0x2545F4914F6CDD1Dull) >> 32);
}

/* A float in [0, 1) from the top 24 bits. */
static float random_f32(uint64_t *state) { return (float)(random_u32(state) >> 8) / 16777216.0f; }

llama2_status llama2_sampler_create(int vocab_size, float temperature, float topp, uint64_t seed,
                                    llama2_sampler **out, llama2_error *err) {
    *out = NULL;
    if (vocab_size <= 0) return l2_fail(err, LLAMA2_E_INVALID, "vocabulary size %d", vocab_size);
    if (!(temperature >= 0.0f) || isinf(temperature))
        return l2_fail(err, LLAMA2_E_INVALID, "temperature must be a non-negative number");
    if (!(topp >= 0.0f && topp <= 1.0f)) return l2_fail(err, LLAMA2_E_INVALID, "top-p must be in [0, 1]");
    llama2_sampler *s = calloc(1, sizeof *s);
    if (!s) return l2_fail(err, LLAMA2_E_NOMEM, "out of memory");
    s->candidates = malloc((size_t)vocab_size * sizeof *s->candidates);
    s->merge_tmp = malloc((size_t)vocab_size * sizeof *s->merge_tmp);
    if (!s->candidates || !s->merge_tmp) {
        llama2_sampler_destroy(s);
        return l2_fail(err, LLAMA2_E_NOMEM, "out of memory");
    }
    s->vocab_size = vocab_size;
    s->temperature = temperature;
    s->topp = topp;
    s->rng_state = seed;
    *out = s;
    return LLAMA2_OK;
}

void llama2_sampler_destroy(llama2_sampler *s) {
    if (!s) return;
    free(s->candidates);
    free(s->merge_tmp);
    free(s);
}

/* The first index of the largest value. */
static int sample_argmax(const float *p, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (p[i] > p[best]) best = i;
    return best;
}

/* Inverse-CDF draw from the whole distribution. */
static int sample_multinomial(const float *p, int n, float coin) {
    float cdf = 0.0f;
    for (int i = 0; i < n; i++) {
        cdf += p[i];
        if (coin < cdf) return i;
    }
    return n - 1; /* rounding left the sum below coin */
}

/* Stable merge sort by descending probability: equal probabilities keep
 * index order, which is what glibc's qsort (a merge sort) gives llama2.c. */
static void sort_descending(prob_index *a, prob_index *tmp, int n) {
    for (int width = 1; width < n; width *= 2) {
        for (int lo = 0; lo < n; lo += 2 * width) {
            int mid = lo + width < n ? lo + width : n;
            int hi = lo + 2 * width < n ? lo + 2 * width : n;
            int i = lo, j = mid, k = lo;
            while (i < mid && j < hi) tmp[k++] = a[j].prob > a[i].prob ? a[j++] : a[i++];
            while (i < mid) tmp[k++] = a[i++];
            while (j < hi) tmp[k++] = a[j++];
        }
        for (int i = 0; i < n; i++) a[i] = tmp[i];
    }
}

/* Nucleus sampling: the smallest set of most likely tokens whose mass
 * exceeds topp, renormalised. Tokens below (1 - topp) / (n - 1) cannot be in
 * the nucleus, so they are filtered out before the sort. */
static int sample_topp(llama2_sampler *s, const float *p, float coin) {
    const int n = s->vocab_size;
    const float cutoff = (1.0f - s->topp) / (float)(n - 1);
    int n0 = 0;
    for (int i = 0; i < n; i++)
        if (p[i] >= cutoff) s->candidates[n0++] = (prob_index){p[i], i};
    if (n0 == 0) return sample_argmax(p, n); /* no finite probabilities (NaN logits) */
    sort_descending(s->candidates, s->merge_tmp, n0);
    float cumulative = 0.0f;
    int last = n0 - 1;
    for (int i = 0; i < n0; i++) {
        cumulative += s->candidates[i].prob;
        if (cumulative > s->topp) {
            last = i;
            break;
        }
    }
    float r = coin * cumulative;
    float cdf = 0.0f;
    for (int i = 0; i <= last; i++) {
        cdf += s->candidates[i].prob;
        if (r < cdf) return s->candidates[i].index;
    }
    return s->candidates[last].index;
}

int llama2_sampler_sample(llama2_sampler *s, float *logits) {
    const int n = s->vocab_size;
    if (s->temperature == 0.0f) return sample_argmax(logits, n);
    for (int i = 0; i < n; i++) logits[i] /= s->temperature;
    l2_kernels_reference()->softmax(logits, n); /* llama2.c's arithmetic */
    float coin = random_f32(&s->rng_state);
    if (s->topp <= 0.0f || s->topp >= 1.0f || n == 1) return sample_multinomial(logits, n, coin);
    return sample_topp(s, logits, coin);
}

void llama2_sampler_skip(llama2_sampler *s) {
    if (s->temperature != 0.0f) (void)random_f32(&s->rng_state);
}
