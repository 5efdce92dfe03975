/*
 * Batched prompt processing against the token-by-token path, and thread
 * counts against each other, on random models larger than the goldens'
 * (grouped-query attention, several row blocks per product, prompts that
 * span many blocks and a partial last block).
 *
 * For each model a 150-token prompt is run token by token (batch 1, one
 * thread: the reference), then through llama2_session_eval_all with other
 * batch sizes and thread counts, and the logits after every position are
 * compared:
 *   fp32 weights: max |ref - got| / max |ref| <= 1e-5 against the reference
 *       (the blocked matrix products and blocked attention sum in another
 *       order; observed about 1e-6; a real bug gives errors of order 1);
 *       bit for bit between thread counts at the same batch size;
 *   int8 weights: bit for bit everywhere (runq.c's arithmetic is evaluated
 *       exactly in every path, see ops.h).
 * Then 20 generated positions (one token at a time) continue each session,
 * checked the same way, so the KV cache written by the blocks is checked too.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint_writer.h"
#include "llama2.h"

#define PROMPT 150
#define GENERATED 20
#define POSITIONS (PROMPT + GENERATED)
#define F32_BOUND 1e-5

typedef struct model_case {
    const char *name;
    llama2_config config;
} model_case;

/* Two layers, 517 tokens, 192 positions. */
static llama2_config shape(int dim, int hidden, int heads, int kv_heads, int shared, int version, int gs) {
    return l2_random_model_config(dim, hidden, 2, heads, kv_heads, 517, 192, shared, version, gs);
}

/* One run: batch size and threads (0 threads: no pool). */
typedef struct run_config {
    int batch, threads;
} run_config;

static const run_config runs[] = {{7, 1}, {7, 3}, {128, 1}, {128, 2}, {64, 3}, {1, 2}};
#define N_RUNS (int)(sizeof runs / sizeof runs[0])

typedef struct logits_sink {
    float *rows; /* POSITIONS x vocab */
    int vocab;
} logits_sink;

static void keep_logits(void *user, int index, float *logits) {
    logits_sink *s = user;
    memcpy(s->rows + (size_t)index * (size_t)s->vocab, logits, (size_t)s->vocab * sizeof(float));
}

/* All POSITIONS rows of logits of the prompt then the generated tokens,
 * the prompt as one eval_all call (or token by token when by_token). */
static void run_model(const llama2_model *m, const int *tokens, run_config rc, int by_token, float *rows) {
    llama2_error err = {0};
    llama2_threadpool *pool = NULL;
    if (rc.threads > 0) assert_int_equal(llama2_threadpool_create(rc.threads, &pool, &err), LLAMA2_OK);
    llama2_session *s = NULL;
    llama2_session_options o = {.pool = pool, .batch_size = rc.batch};
    assert_int_equal(llama2_session_create(m, &o, &s, &err), LLAMA2_OK);
    const int vocab = llama2_model_config(m)->vocab_size;
    logits_sink sink = {rows, vocab};
    int pos = 0;
    if (!by_token) {
        assert_int_equal(llama2_session_eval_all(s, tokens, PROMPT, 0, keep_logits, &sink, &err), LLAMA2_OK);
        pos = PROMPT;
    }
    for (; pos < POSITIONS; pos++) {
        float *logits = NULL;
        assert_int_equal(llama2_session_eval(s, tokens + pos, 1, pos, &logits, &err), LLAMA2_OK);
        memcpy(rows + (size_t)pos * (size_t)vocab, logits, (size_t)vocab * sizeof(float));
    }
    llama2_session_destroy(s);
    llama2_threadpool_destroy(pool);
}

/* max |ref - got| / max |ref| over one row; infinite for a NaN. */
static double relative_error(const float *ref, const float *got, int n) {
    double max_ref = 0.0, max_diff = 0.0;
    for (int i = 0; i < n; i++) {
        double d = fabs((double)ref[i] - (double)got[i]);
        if (!(d == d)) return INFINITY;
        if (fabs((double)ref[i]) > max_ref) max_ref = fabs((double)ref[i]);
        if (d > max_diff) max_diff = d;
    }
    return max_ref > 0.0 ? max_diff / max_ref : max_diff;
}

static void check_model(const model_case *mc) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/llama2-test-batch-%ld.bin", (long)getpid());
    llama2_error err = {0};
    if (l2_write_random_model(path, &mc->config, 11, L2_OUTPUT_FORCE, &err) != LLAMA2_OK)
        fail_msg("write %s: %s", mc->name, err.message);
    llama2_model *m = NULL;
    llama2_status st = llama2_model_open(path, NULL, &m, &err);
    unlink(path);
    if (st != LLAMA2_OK) fail_msg("open %s: %s", mc->name, err.message);

    const int vocab = mc->config.vocab_size;
    const int exact = mc->config.weight_type == LLAMA2_WEIGHTS_Q8_0;
    int tokens[POSITIONS];
    uint32_t r = 12345;
    for (int i = 0; i < POSITIONS; i++) {
        r = r * 1664525u + 1013904223u;
        tokens[i] = (int)((r >> 8) % (uint32_t)vocab);
    }
    const size_t row_floats = (size_t)POSITIONS * (size_t)vocab;
    float *ref = malloc(row_floats * sizeof(float));
    float *got[N_RUNS];
    assert_non_null(ref);
    run_model(m, tokens, (run_config){1, 0}, 1, ref);

    double worst = 0.0;
    for (int k = 0; k < N_RUNS; k++) {
        got[k] = malloc(row_floats * sizeof(float));
        assert_non_null(got[k]);
        run_model(m, tokens, runs[k], 0, got[k]);
        for (int p = 0; p < POSITIONS; p++) {
            const float *a = ref + (size_t)p * (size_t)vocab, *b = got[k] + (size_t)p * (size_t)vocab;
            if (exact) {
                if (memcmp(a, b, (size_t)vocab * sizeof(float)) != 0)
                    fail_msg("%s: batch %d, %d threads: logits at position %d differ from token by token", mc->name,
                             runs[k].batch, runs[k].threads, p);
                continue;
            }
            double e = relative_error(a, b, vocab);
            if (e > worst) worst = e;
            if (!(e <= F32_BOUND))
                fail_msg("%s: batch %d, %d threads: position %d relative error %.3g > %.0e", mc->name, runs[k].batch,
                         runs[k].threads, p, e, F32_BOUND);
        }
        /* The same batch size at another thread count: the same bits. */
        if (runs[k].batch == 1 && memcmp(ref, got[k], row_floats * sizeof(float)) != 0)
            fail_msg("%s: batch 1: %d threads differ from token by token", mc->name, runs[k].threads);
        for (int j = 0; j < k; j++) {
            if (runs[j].batch == runs[k].batch && memcmp(got[j], got[k], row_floats * sizeof(float)) != 0)
                fail_msg("%s: batch %d: %d and %d threads give different logits", mc->name, runs[k].batch,
                         runs[j].threads, runs[k].threads);
        }
    }
    print_message("%s: worst relative error against token by token %.3g\n", mc->name, worst);
    for (int k = 0; k < N_RUNS; k++) free(got[k]);
    free(ref);
    llama2_model_close(m);
}

/* The models: the test's state is its row. */
static void test_model(void **state) { check_model(*state); }

int main(void) {
    static model_case cases[6];
    cases[0] = (model_case){"fp32, 6 heads / 2 kv heads, own classifier", shape(96, 256, 6, 2, 0, 1, 0)};
    cases[1] = (model_case){"fp32 legacy, 4 heads, shared classifier", shape(64, 172, 4, 4, 1, 0, 0)};
    cases[2] = (model_case){"int8 gs 32, 6 heads / 2 kv heads", shape(96, 256, 6, 2, 0, 2, 32)};
    cases[3] = (model_case){"int8 gs 8, 8 heads / 4 kv heads", shape(64, 176, 8, 4, 1, 2, 8)};
    cases[4] = (model_case){"fp32, dim 256, 8 heads / 2 kv heads", shape(256, 704, 8, 2, 0, 1, 0)};
    cases[5] = (model_case){"int8 gs 64, dim 256, 8 heads / 2 kv heads", shape(256, 704, 8, 2, 0, 2, 64)};
    struct CMUnitTest tests[6];
    for (int i = 0; i < 6; i++)
        tests[i] = (struct CMUnitTest){cases[i].name, test_model, NULL, NULL, &cases[i]};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
