/*
 * The sampler chain: each stage on fixed logits with the probabilities it
 * must leave (llama2_sampler_distribution, and the stage functions of
 * sampler_stages.h alone), the fallback when a stage leaves no token, the
 * options' validation, and the whole chain with its defaults against an
 * independent re-implementation of llama2.c's sample() on random logits;
 * the greedy argmax against llama2.c's loop.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llama2.h"
#include "text/sampler_stages.h"
#include "support.h"

/* ------------------------------------------------------------ helpers */

/* Logits ln 1, ln 2, ln 4, ln 8: probabilities 1/15, 2/15, 4/15, 8/15. */
#define N4 4
static void powers_of_two(float *logits) {
    for (int i = 0; i < N4; i++) logits[i] = (float)i * logf(2.0f);
}

/* The distribution a chain with these options leaves on logits, after the
 * tokens in history were accepted. */
static void distribution(const llama2_sampler_options *o, const float *logits_in, int n, const int *history,
                         int n_history, float *probs) {
    llama2_sampler *s = NULL;
    llama2_error err = {0};
    assert_int_equal(llama2_sampler_create(n, o, &s, &err), LLAMA2_OK);
    for (int i = 0; i < n_history; i++) llama2_sampler_accept(s, history[i]);
    float logits[64];
    memcpy(logits, logits_in, (size_t)n * sizeof *logits);
    llama2_sampler_distribution(s, logits, probs);
    llama2_sampler_destroy(s);
}

/* probs must be expected[] / sum(expected) within 1e-6. */
static void expect_probs(const char *what, const float *probs, const double *expected, int n) {
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += expected[i];
    for (int i = 0; i < n; i++) {
        double want = expected[i] / sum;
        if (fabs((double)probs[i] - want) > 1e-6)
            fail_msg("%s: token %d has probability %.9f, expected %.9f", what, i, (double)probs[i], want);
    }
}

static void expect_stage(const char *what, llama2_sampler_options o, const double *expected) {
    float logits[N4], probs[N4];
    powers_of_two(logits);
    distribution(&o, logits, N4, NULL, 0, probs);
    expect_probs(what, probs, expected, N4);
}

/* ------------------------------------------------------------ one stage at a time */

static void test_temperature(void **state) {
    (void)state;
    const double whole[N4] = {1, 2, 4, 8};
    expect_stage("temperature 1", (llama2_sampler_options){.temperature = 1.0f}, whole);
    const double half[N4] = {1, 4, 16, 64}; /* logits doubled: probabilities squared */
    expect_stage("temperature 0.5", (llama2_sampler_options){.temperature = 0.5f}, half);
    const double twice[N4] = {1, sqrt(2.0), 2, 2 * sqrt(2.0)};
    expect_stage("temperature 2", (llama2_sampler_options){.temperature = 2.0f}, twice);
    const double greedy[N4] = {0, 0, 0, 1};
    expect_stage("temperature 0", (llama2_sampler_options){.temperature = 0.0f, .top_k = 3, .min_p = 0.5f}, greedy);
}

static void test_top_k(void **state) {
    (void)state;
    const double two[N4] = {0, 0, 4, 8};
    expect_stage("top-k 2", (llama2_sampler_options){.temperature = 1.0f, .top_k = 2}, two);
    const double one[N4] = {0, 0, 0, 1};
    expect_stage("top-k 1", (llama2_sampler_options){.temperature = 1.0f, .top_k = 1}, one);
    const double all[N4] = {1, 2, 4, 8};
    expect_stage("top-k 4 of 4: off", (llama2_sampler_options){.temperature = 1.0f, .top_k = 4}, all);
    expect_stage("top-k 100 of 4: off", (llama2_sampler_options){.temperature = 1.0f, .top_k = 100}, all);

    /* The stage alone: ties keep index order, and the heap finds the best
     * wherever they are. */
    const float ties[6] = {0.1f, 0.3f, 0.3f, 0.05f, 0.3f, 0.0f};
    l2_candidate out[6], tmp[6];
    assert_int_equal(l2_top_k(ties, 6, 2, out, tmp), 2);
    assert_int_equal(out[0].index, 1);
    assert_int_equal(out[1].index, 2);
    assert_int_equal(l2_top_k(ties, 6, 4, out, tmp), 4);
    const int order[4] = {1, 2, 4, 0};
    for (int i = 0; i < 4; i++) assert_int_equal(out[i].index, order[i]);
    assert_int_equal(l2_top_k(ties, 6, 9, out, tmp), 6);
}

static void test_top_p(void **state) {
    (void)state;
    /* Sorted mass: 8/15 = 0.533, 12/15 = 0.8, 14/15 = 0.933, 1. */
    const double one[N4] = {0, 0, 0, 1};
    expect_stage("top-p 0.5", (llama2_sampler_options){.temperature = 1.0f, .top_p = 0.5f}, one);
    const double two[N4] = {0, 0, 4, 8};
    expect_stage("top-p 0.6", (llama2_sampler_options){.temperature = 1.0f, .top_p = 0.6f}, two);
    const double three[N4] = {0, 2, 4, 8};
    expect_stage("top-p 0.9", (llama2_sampler_options){.temperature = 1.0f, .top_p = 0.9f}, three);
    const double all[N4] = {1, 2, 4, 8};
    expect_stage("top-p 1: off", (llama2_sampler_options){.temperature = 1.0f, .top_p = 1.0f}, all);
    expect_stage("top-p 0: off", (llama2_sampler_options){.temperature = 1.0f, .top_p = 0.0f}, all);

    /* The stage alone: the first candidates whose sum exceeds top_p * mass. */
    const l2_candidate c[4] = {{0.4f, 7}, {0.3f, 2}, {0.2f, 5}, {0.1f, 1}};
    assert_int_equal(l2_top_p(c, 4, 0.5f, 1.0f), 2);
    assert_int_equal(l2_top_p(c, 4, 0.5f, 0.5f), 1);  /* 0.4 > 0.25 */
    assert_int_equal(l2_top_p(c, 4, 0.99f, 1.0f), 4); /* never exceeds: all */
    /* Exceeds, as llama2.c: reaching top_p exactly is not enough. */
    const l2_candidate exact[4] = {{0.5f, 0}, {0.25f, 1}, {0.125f, 2}, {0.125f, 3}};
    assert_int_equal(l2_top_p(exact, 4, 0.75f, 1.0f), 3);
}

static void test_min_p(void **state) {
    (void)state;
    const double two[N4] = {0, 0, 4, 8};
    expect_stage("min-p 0.3", (llama2_sampler_options){.temperature = 1.0f, .min_p = 0.3f}, two);
    const double three[N4] = {0, 2, 4, 8};
    expect_stage("min-p 0.2", (llama2_sampler_options){.temperature = 1.0f, .min_p = 0.2f}, three);
    const double one[N4] = {0, 0, 0, 1};
    expect_stage("min-p 1", (llama2_sampler_options){.temperature = 1.0f, .min_p = 1.0f}, one);

    const l2_candidate c[4] = {{0.4f, 7}, {0.3f, 2}, {0.2f, 5}, {0.1f, 1}};
    assert_int_equal(l2_min_p(c, 4, 0.5f), 3); /* 0.2 >= 0.2 stays */
    assert_int_equal(l2_min_p(c, 4, 0.9f), 1);
    assert_int_equal(l2_min_p(c, 0, 0.5f), 0);
}

static void test_penalties(void **state) {
    (void)state;
    /* The stage alone: a positive logit divided, a negative one multiplied,
     * then count * frequency + presence subtracted once per token. */
    float logits[4] = {-1.0f, 2.0f, 3.0f, 0.5f};
    const int history[5] = {0, 1, 1, 0, 1};
    int counts[4] = {0};
    l2_penalize(logits, history, 5, counts, 2.0f, 0.5f, 0.25f);
    assert_true(logits[0] == -2.0f - (2 * 0.25f + 0.5f));
    assert_true(logits[1] == 1.0f - (3 * 0.25f + 0.5f));
    assert_true(logits[2] == 3.0f && logits[3] == 0.5f);
    for (int i = 0; i < 4; i++) assert_int_equal(counts[i], 0);

    /* In the chain, over the last repeat_last_n accepted tokens only: token
     * 0 was accepted before the window of 3. */
    float in[N4];
    powers_of_two(in);
    const int accepted[4] = {0, 3, 3, 1};
    float probs[N4];
    llama2_sampler_options o = {.temperature = 1.0f, .repeat_penalty = 2.0f, .repeat_last_n = 3,
                                .presence_penalty = 0.5f, .frequency_penalty = 0.25f};
    distribution(&o, in, N4, accepted, 4, probs);
    const double l2 = log(2.0);
    const double expected[N4] = {1.0, exp(l2 / 2 - 0.75), 4.0, exp(1.5 * l2 - 1.0)};
    expect_probs("penalties", probs, expected, N4);

    /* Repeat penalty 1 and 0 are off; so is a window of 0. */
    const double whole[N4] = {1, 2, 4, 8};
    o = (llama2_sampler_options){.temperature = 1.0f, .repeat_penalty = 1.0f, .repeat_last_n = 64};
    distribution(&o, in, N4, accepted, 4, probs);
    expect_probs("repeat penalty 1", probs, whole, N4);
    o.repeat_penalty = 0.0f;
    distribution(&o, in, N4, accepted, 4, probs);
    expect_probs("repeat penalty 0", probs, whole, N4);
    o = (llama2_sampler_options){.temperature = 1.0f, .repeat_penalty = 3.0f, .presence_penalty = 1.0f};
    distribution(&o, in, N4, accepted, 4, probs);
    expect_probs("repeat_last_n 0", probs, whole, N4);

    /* Greedy decoding sees the penalties too: 3 is penalised below 2. */
    llama2_sampler *s = NULL;
    llama2_error err;
    o = (llama2_sampler_options){.repeat_penalty = 4.0f, .repeat_last_n = 8};
    assert_int_equal(llama2_sampler_create(N4, &o, &s, &err), LLAMA2_OK);
    llama2_sampler_accept(s, 3);
    llama2_sampler_accept(s, 99); /* outside the vocabulary: ignored */
    llama2_sampler_accept(s, -1);
    powers_of_two(in);
    assert_int_equal(llama2_sampler_sample(s, in), 2);
    llama2_sampler_destroy(s);
}

static void test_stages_together(void **state) {
    (void)state;
    /* Top-k 3 leaves 8, 4, 2 of mass 14/15; top-p 0.6 of that mass (0.56)
     * is passed by 8 + 4: the cut-offs renormalise what came before. */
    const double kp[N4] = {0, 0, 4, 8};
    expect_stage("top-k 3 then top-p 0.6",
                 (llama2_sampler_options){.temperature = 1.0f, .top_k = 3, .top_p = 0.6f}, kp);
    /* Top-p 0.9 leaves 8, 4, 2; min-p 0.3 then drops 2. */
    expect_stage("top-p 0.9 then min-p 0.3",
                 (llama2_sampler_options){.temperature = 1.0f, .top_p = 0.9f, .min_p = 0.3f}, kp);
    /* Temperature comes before the cut-offs: at 0.5 the best token alone
     * (64/85 = 0.75) passes top-p 0.7. */
    const double one[N4] = {0, 0, 0, 1};
    expect_stage("temperature 0.5 then top-p 0.7",
                 (llama2_sampler_options){.temperature = 0.5f, .top_p = 0.7f}, one);
}

static void test_draw(void **state) {
    (void)state;
    const l2_candidate c[3] = {{0.5f, 9}, {0.3f, 4}, {0.2f, 6}};
    assert_int_equal(l2_draw(c, 3, 0.0f), 9);
    assert_int_equal(l2_draw(c, 3, 0.49f), 9);
    assert_int_equal(l2_draw(c, 3, 0.5f), 4);
    assert_int_equal(l2_draw(c, 3, 0.79f), 4);
    assert_int_equal(l2_draw(c, 3, 0.81f), 6);
    assert_int_equal(l2_draw(c, 3, 0.99999994f), 6);
    /* Renormalised: two candidates of mass 0.8. */
    assert_int_equal(l2_draw(c, 2, 0.6f), 9);
    assert_int_equal(l2_draw(c, 2, 0.7f), 4);
}

/* A stage that leaves no token gives the most likely one. */
static void test_fallback(void **state) {
    (void)state;
    llama2_sampler *s = NULL;
    llama2_error err;
    float probs[2];
    /* Two near-equal tokens and top-p 0.01: llama2.c's nucleus filter keeps
     * tokens of at least (1 - 0.01) / (2 - 1) = 0.99, so none. */
    llama2_sampler_options o = {.temperature = 1.0f, .top_p = 0.01f, .seed = 5};
    assert_int_equal(llama2_sampler_create(2, &o, &s, &err), LLAMA2_OK);
    for (int i = 0; i < 20; i++) {
        float logits[2] = {0.0f, 0.001f};
        assert_int_equal(llama2_sampler_sample(s, logits), 1);
        float again[2] = {0.001f, 0.0f};
        assert_int_equal(llama2_sampler_sample(s, again), 0);
    }
    float logits[2] = {0.0f, 0.001f};
    llama2_sampler_distribution(s, logits, probs);
    assert_true(probs[0] == 0.0f && probs[1] == 1.0f);
    llama2_sampler_destroy(s);

    /* NaN logits: min-p's threshold is NaN, no token passes it. */
    o = (llama2_sampler_options){.temperature = 1.0f, .min_p = 0.1f, .seed = 5};
    assert_int_equal(llama2_sampler_create(2, &o, &s, &err), LLAMA2_OK);
    float nan_logits[2] = {NAN, NAN};
    assert_int_equal(llama2_sampler_sample(s, nan_logits), 0);
    llama2_sampler_destroy(s);
}

static void test_options(void **state) {
    (void)state;
    const llama2_sampler_options d = llama2_sampler_defaults();
    assert_true(d.temperature == 1.0f && d.top_p == 0.9f && d.top_k == 0 && d.min_p == 0.0f);
    assert_true(d.repeat_penalty == 1.0f && d.repeat_last_n == 64 && d.presence_penalty == 0.0f &&
                d.frequency_penalty == 0.0f && d.seed == 0);
    const llama2_sampler_options bad[] = {
        {.temperature = -0.5f},           {.temperature = NAN},           {.temperature = INFINITY},
        {.top_p = 1.01f},                 {.top_p = -0.01f},              {.top_p = NAN},
        {.top_k = -1},                    {.min_p = 1.5f},                {.min_p = -0.1f},
        {.min_p = NAN},                   {.repeat_penalty = -1.0f},      {.repeat_penalty = INFINITY},
        {.repeat_penalty = NAN},          {.repeat_last_n = -1},          {.presence_penalty = NAN},
        {.frequency_penalty = INFINITY},  {.frequency_penalty = -INFINITY},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        llama2_sampler *s = (llama2_sampler *)&s;
        llama2_error err = {0};
        assert_int_equal(llama2_sampler_create(16, &bad[i], &s, &err), LLAMA2_E_INVALID);
        assert_null(s);
        assert_true(err.message[0] != '\0' && strchr(err.message, '\n') == NULL);
    }
    llama2_sampler *s = NULL;
    llama2_error err;
    assert_int_equal(llama2_sampler_create(0, NULL, &s, &err), LLAMA2_E_INVALID);
    /* NULL: the defaults; a zero seed still draws varied numbers. */
    assert_int_equal(llama2_sampler_create(8, NULL, &s, &err), LLAMA2_OK);
    int seen = 0;
    for (int i = 0; i < 64; i++) {
        float logits[8] = {0};
        seen |= 1 << llama2_sampler_sample(s, logits);
    }
    assert_true(seen != 1 && seen != 0x80);
    llama2_sampler_destroy(s);
}

/* ------------------------------------------------------------ llama2.c's sampler, written again */

typedef struct ref_candidate {
    float prob;
    int index;
} ref_candidate;

static uint32_t ref_random_u32(uint64_t *state) {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return (uint32_t)((*state * 0x2545F4914F6CDD1Dull) >> 32);
}

/* llama2.c's sample(): argmax; or softmax(logits / T), one coin, then the
 * whole distribution or the nucleus. The sort is an insertion sort, stable
 * like glibc's qsort on these arrays. */
static int reference_sample(float *logits, int n, float temperature, float topp, uint64_t *rng,
                            ref_candidate *work) {
    if (temperature == 0.0f) {
        int best = 0;
        for (int i = 1; i < n; i++)
            if (logits[i] > logits[best]) best = i;
        return best;
    }
    for (int i = 0; i < n; i++) logits[i] /= temperature;
    float max = logits[0];
    for (int i = 1; i < n; i++)
        if (logits[i] > max) max = logits[i];
    float sum = 0.0f;
    for (int i = 0; i < n; i++) {
        logits[i] = expf(logits[i] - max);
        sum += logits[i];
    }
    for (int i = 0; i < n; i++) logits[i] /= sum;
    float coin = (float)(ref_random_u32(rng) >> 8) / 16777216.0f;
    if (topp <= 0.0f || topp >= 1.0f) {
        float cdf = 0.0f;
        for (int i = 0; i < n; i++) {
            cdf += logits[i];
            if (coin < cdf) return i;
        }
        return n - 1;
    }
    const float cutoff = (1.0f - topp) / (float)(n - 1);
    int n0 = 0;
    for (int i = 0; i < n; i++)
        if (logits[i] >= cutoff) {
            ref_candidate c = {logits[i], i};
            int j = n0++;
            while (j > 0 && work[j - 1].prob < c.prob) {
                work[j] = work[j - 1];
                j--;
            }
            work[j] = c;
        }
    float cumulative = 0.0f;
    int last = n0 - 1;
    for (int i = 0; i < n0; i++) {
        cumulative += work[i].prob;
        if (cumulative > topp) {
            last = i;
            break;
        }
    }
    float r = coin * cumulative, cdf = 0.0f;
    for (int i = 0; i <= last; i++) {
        cdf += work[i].prob;
        if (r < cdf) return work[i].index;
    }
    return work[last].index;
}

/* The chain with llama2.c's settings (and the neutral values of every new
 * stage) picks the reference's token at every draw. */
static void test_defaults_are_llama2c(void **state) {
    (void)state;
    enum { VOCAB = 512, DRAWS = 300 };
    const float temperatures[] = {0.0f, 0.5f, 0.8f, 1.0f, 1.5f};
    const float topps[] = {0.0f, 0.5f, 0.9f, 0.95f, 1.0f};
    const int vocabs[] = {VOCAB, 3};
    ref_candidate *work = malloc(VOCAB * sizeof *work);
    float *a = malloc(VOCAB * sizeof *a), *b = malloc(VOCAB * sizeof *b);
    uint64_t data_rng = 0x1234567u;
    int draws = 0;
    for (size_t v = 0; v < 2; v++)
        for (size_t ti = 0; ti < sizeof temperatures / sizeof temperatures[0]; ti++)
            for (size_t pi = 0; pi < sizeof topps / sizeof topps[0]; pi++) {
                const int n = vocabs[v];
                llama2_sampler_options o = llama2_sampler_defaults();
                o.temperature = temperatures[ti];
                o.top_p = topps[pi];
                o.seed = 42 + ti * 7 + pi;
                uint64_t ref_rng = o.seed;
                llama2_sampler *s = NULL;
                llama2_error err;
                assert_int_equal(llama2_sampler_create(n, &o, &s, &err), LLAMA2_OK);
                for (int d = 0; d < DRAWS; d++) {
                    /* Peaked logits, with ties now and then. */
                    for (int i = 0; i < n; i++) {
                        a[i] = (float)(test_rng_next(&data_rng) % 2000) / 100.0f - 10.0f;
                        if (i % 17 == 3) a[i] = a[0];
                    }
                    memcpy(b, a, (size_t)n * sizeof *a);
                    int want = reference_sample(a, n, o.temperature, o.top_p, &ref_rng, work);
                    int got = llama2_sampler_sample(s, b);
                    llama2_sampler_accept(s, got);
                    if (got != want)
                        fail_msg("vocab %d, t %.2f, p %.2f, draw %d: token %d, llama2.c's %d", n,
                                 (double)o.temperature, (double)o.top_p, d, got, want);
                    draws++;
                }
                llama2_sampler_destroy(s);
            }
    assert_int_equal(draws, 2 * 5 * 5 * DRAWS);
    free(work);
    free(a);
    free(b);
}

/* Top-k against a brute force: sort everything, keep k, draw. */
static void test_top_k_against_full_sort(void **state) {
    (void)state;
    enum { VOCAB = 1000 };
    const int ks[] = {1, 2, 5, 40, 999};
    float *a = malloc(VOCAB * sizeof *a), *probs = malloc(VOCAB * sizeof *probs);
    uint64_t data_rng = 99;
    for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
        llama2_sampler_options o = {.temperature = 1.0f, .top_k = ks[ki], .seed = 3};
        llama2_sampler *s = NULL;
        llama2_error err;
        assert_int_equal(llama2_sampler_create(VOCAB, &o, &s, &err), LLAMA2_OK);
        for (int d = 0; d < 50; d++) {
            for (int i = 0; i < VOCAB; i++) a[i] = (float)(test_rng_next(&data_rng) % 5000) / 500.0f;
            /* The k-th largest value, by counting. */
            llama2_sampler_distribution(s, a, probs);
            int kept = 0;
            float least_kept = INFINITY, most_dropped = -INFINITY;
            for (int i = 0; i < VOCAB; i++) {
                if (probs[i] > 0.0f) {
                    kept++;
                    if (a[i] < least_kept) least_kept = a[i];
                } else if (a[i] > most_dropped) {
                    most_dropped = a[i];
                }
            }
            assert_int_equal(kept, ks[ki]);
            assert_true(least_kept >= most_dropped);
        }
        llama2_sampler_destroy(s);
    }
    free(a);
    free(probs);
}

/* l2_argmax against llama2.c's loop (the first index whose value no earlier
 * one reaches, NaNs passed over) on random logits of every length 0-40 and
 * of a vocabulary, drawn from a few values so that ties are common, with
 * NaNs, infinities and both zeros among them, a NaN at index 0 included. */
static int argmax_loop(const float *p, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (p[i] > p[best]) best = i;
    return best;
}

static void test_argmax_against_loop(void **state) {
    (void)state;
    const float pool[] = {-0.0f, 0.0f, 1.0f, -1.0f, 2.5f, NAN, INFINITY, -INFINITY, 1e-30f, -3.0f};
    enum { POOL = sizeof pool / sizeof pool[0], VOCAB = 32000 };
    float *a = malloc(VOCAB * sizeof *a);
    assert_non_null(a);
    uint64_t rng = 17;
    for (int trial = 0; trial < 4000; trial++) {
        const int n = trial < 3000 ? trial % 41 : VOCAB - trial % 9;
        /* A few values per trial (ties), sometimes plain random ones. */
        const uint32_t kinds = 2 + test_rng_next(&rng) % 4, first = test_rng_next(&rng) % POOL;
        for (int i = 0; i < n; i++) {
            const uint32_t r = test_rng_next(&rng);
            a[i] = r % 7 == 0 ? (float)(r % 100000) / 1000.0f - 50.0f : pool[(first + (r >> 8) % kinds) % POOL];
        }
        const int got = l2_argmax(a, n), want = argmax_loop(a, n);
        if (got != want) fail_msg("trial %d, %d values: argmax %d, llama2.c's loop %d", trial, n, got, want);
    }
    free(a);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_temperature),
        cmocka_unit_test(test_top_k),
        cmocka_unit_test(test_top_p),
        cmocka_unit_test(test_min_p),
        cmocka_unit_test(test_penalties),
        cmocka_unit_test(test_stages_together),
        cmocka_unit_test(test_draw),
        cmocka_unit_test(test_fallback),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_defaults_are_llama2c),
        cmocka_unit_test(test_top_k_against_full_sort),
        cmocka_unit_test(test_argmax_against_loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
