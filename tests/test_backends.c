/*
 * Every backend compiled in besides "cpu" against the CPU.
 *
 * For each such backend and each of stories260K.bin (legacy fp32),
 * stories260K_v1.bin (version 1, fp32) and stories260K_q80_gs4.bin (int8,
 * group size 4): a 40-token prompt as one block, then 30 single positions
 * (generation, the CUDA graph path), through a cpu session and a session of
 * the backend, with the logits compared after every evaluation as
 * max |a - b| / max |a| (a: the CPU's row, b: the backend's). Bounds:
 *   fp32 weights: 1e-4 (the backend's reordered float sums; cuBLAS runs plain
 *       fp32, no TF32);
 *   int8 weights: 5e-2. The activations are quantized to int8 before every
 *       product; a one-ulp difference in an activation (a GPU's reduction
 *       order, its expf) can flip one value's rounding, which moves that
 *       product by a whole quantization step. Bit-exact parity is a CPU-only
 *       property (ops.h); a real bug gives errors of order 1.
 * Then the golden manifest's fp32 generate cases through the llama2 program
 * with --backend <name>, byte for byte, one test per fp32 model file. A test
 * whose model file is absent is skipped by name.
 *
 * A backend whose session cannot be created with LLAMA2_E_UNSUPPORTED (the
 * CUDA backend on a machine without a GPU or driver) is skipped, not failed.
 * With only the cpu backend built, the backend list and the refusal of an
 * unknown backend are tested, and so is a failing backend (a test double
 * put in a cpu session's place): the call stops at its first failure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#include "llama2.h"
#include "platform/checks.h"
#include "run/backend.h"
#include "run/session.h"
#include "write/checkpoint_writer.h"
#include "write/output_file.h"
#include "support.h"

#define PROMPT_TOKENS 40
#define GENERATED_TOKENS 30
#define BATCH 64 /* the whole prompt as one block */
#define F32_BOUND 1e-4
#define INT8_BOUND 5e-2

static const char *const model_files[] = {"stories260K.bin", "stories260K_v1.bin", "stories260K_q80_gs4.bin"};
#define N_MODELS (int)(sizeof model_files / sizeof model_files[0])

/* ------------------------------------------------------------ helpers */

/* The model file's path; skips the running test when it is absent. */
static const char *model_path(const char *file) { return test_require_model(file); }

/* max |ref - got| / max |ref|; infinite when got holds a NaN or infinity. */
static double relative_error(const float *ref, const float *got, int n) {
    double max_ref = 0.0, max_diff = 0.0;
    for (int i = 0; i < n; i++) {
        if (!isfinite(got[i])) return INFINITY;
        double a = fabs((double)ref[i]), d = fabs((double)ref[i] - (double)got[i]);
        if (a > max_ref) max_ref = a;
        if (d > max_diff) max_diff = d;
    }
    return max_ref > 0.0 ? max_diff / max_ref : max_diff;
}

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* A session of `backend` on `model`; LLAMA2_E_UNSUPPORTED when this machine
 * cannot run it (why says so). */
static llama2_status open_session(const llama2_model *model, const char *backend, llama2_session **out, char *why,
                                  size_t why_size) {
    llama2_error err = {0};
    llama2_session_options options = {.batch_size = BATCH, .backend = backend};
    llama2_status st = llama2_session_create(model, &options, out, &err);
    if (st != LLAMA2_OK) snprintf(why, why_size, "%s: %s", backend, err.message);
    return st;
}

/* Whether `backend` can run here: LLAMA2_OK, or LLAMA2_E_UNSUPPORTED with
 * the reason (any other failure is a test failure). */
static llama2_status backend_available(const char *backend, char *why, size_t why_size) {
    llama2_model *m = NULL;
    llama2_error err = {0};
    llama2_status st = llama2_model_open(model_path(model_files[0]), NULL, &m, &err);
    if (st != LLAMA2_OK) {
        snprintf(why, why_size, "%s: %s", model_files[0], err.message);
        return st;
    }
    llama2_session *s = NULL;
    st = open_session(m, backend, &s, why, why_size);
    llama2_session_destroy(s);
    llama2_model_close(m);
    return st;
}

/* Skips the running test when the backend cannot run on this machine. */
#define SKIP_IF_UNAVAILABLE(backend)                                                   \
    do {                                                                               \
        char why_[512] = "";                                                           \
        llama2_status st_ = backend_available((backend), why_, sizeof why_);           \
        if (st_ == LLAMA2_E_UNSUPPORTED) {                                             \
            print_message("skipped: %s\n", why_);                                      \
            skip();                                                                    \
        }                                                                              \
        if (st_ != LLAMA2_OK) print_message("%s\n", why_);                             \
        assert_int_equal(st_, LLAMA2_OK);                                              \
    } while (0)

/* A random model of n_layers tiny layers (vocabulary 8, context 8) in a new
 * temporary folder dir, opened; no model file is needed. */
static llama2_model *random_model(char *dir, size_t dir_size, int n_layers) {
    char path[4200];
    assert_int_equal(test_tmp_dir_create(dir, dir_size, "test-backends"), 0);
    snprintf(path, sizeof path, "%s", test_path_in(dir, "m.bin"));
    llama2_config shape = l2_random_model_config(16, 32, n_layers, 2, 2, 8, 8, 1, 0, 0);
    llama2_error err = {0};
    assert_int_equal(l2_write_random_model(path, &shape, 1, L2_OUTPUT_FORCE, &err), LLAMA2_OK);
    llama2_model *m = NULL;
    llama2_status opened = llama2_model_open(path, NULL, &m, &err);
    if (opened != LLAMA2_OK) print_message("%s\n", err.message);
    assert_int_equal(opened, LLAMA2_OK);
    return m;
}

/* --------------------------------------------- the backend list (always) */

static void test_backend_list(void **state) {
    (void)state;
    const char *first = llama2_backend_name(0);
    assert_non_null(first);
    assert_string_equal(first, "cpu");
    assert_null(llama2_backend_name(-1));
    int n = 0;
    while (llama2_backend_name(n)) n++;
    assert_true(n >= 1 && n <= 3);
    for (int i = 0; i < n; i++) {
        const char *name = llama2_backend_name(i);
        assert_true(strcmp(name, "cpu") == 0 || strcmp(name, "blas") == 0 || strcmp(name, "cuda") == 0);
        for (int j = 0; j < i; j++) assert_string_not_equal(name, llama2_backend_name(j));
    }

    /* A small random model: this needs no model file. */
    char dir[4096];
    llama2_model *m = random_model(dir, sizeof dir, 1);
    llama2_error err = {0};

    /* An unknown backend is refused, with a message and no session. */
    static char not_a_session;
    llama2_session *s = (llama2_session *)(void *)&not_a_session; /* create must reset it to NULL */
    llama2_session_options nope = {.backend = "nope"};
    assert_int_equal(llama2_session_create(m, &nope, &s, &err), LLAMA2_E_UNSUPPORTED);
    assert_null(s);
    assert_int_equal(err.status, LLAMA2_E_UNSUPPORTED);
    assert_non_null(strstr(err.message, "nope"));

    /* No name and "cpu" are the CPU, and it evaluates. */
    const char *names[] = {NULL, "cpu"};
    for (int i = 0; i < 2; i++) {
        llama2_session_options options = {.backend = names[i]};
        assert_int_equal(llama2_session_create(m, &options, &s, &err), LLAMA2_OK);
        int token = 1;
        float *logits = NULL;
        assert_int_equal(llama2_session_eval(s, &token, 1, 0, &logits, &err), LLAMA2_OK);
        assert_non_null(logits);
        assert_true(isfinite(logits[0]));
        llama2_session_destroy(s);
    }
    llama2_model_close(m);
    test_tmp_dir_remove(dir);
}

/* ------------------------------------------------- a backend that fails */

/* A test double: its products fail at call `fail_at` (counted from 1), or
 * its blocks fail at once when fail_block is set; it counts its calls. */
typedef struct failing_backend {
    int fail_at, fail_block;
    int product_calls, block_calls;
} failing_backend;

static l2_backend_result failing_products(void *state, llama2_session *s, const float *x, int nb,
                                          const l2_product *products, int n_products, llama2_error *err) {
    (void)s, (void)x, (void)nb, (void)products, (void)n_products;
    failing_backend *f = state;
    if (++f->product_calls < f->fail_at) return L2_BACKEND_DECLINED;
    l2_fail(err, LLAMA2_E_NOMEM, "test backend: product %d failed", f->product_calls);
    return L2_BACKEND_FAILED;
}

static l2_backend_result failing_block(void *state, llama2_session *s, const llama2_batch_row *rows, int n,
                                       float *logits, llama2_error *err) {
    (void)s, (void)rows, (void)n, (void)logits;
    failing_backend *f = state;
    f->block_calls++;
    if (!f->fail_block) return L2_BACKEND_DECLINED;
    l2_fail(err, LLAMA2_OK, "test backend: the block failed"); /* no status: the session picks one */
    return L2_BACKEND_FAILED;
}

static const l2_backend_ops failing_ops = {
    .name = "failing", .products = failing_products, .forward_block = failing_block};

/* A failed product ends the call at once: no later product runs (before,
 * the CPU ran every remaining layer), the caller gets the backend's error,
 * the sequence keeps nothing of the rows, and the session works on. */
static void test_failure_stops_the_pass(void **state) {
    (void)state;
    char dir[4096];
    llama2_model *m = random_model(dir, sizeof dir, 3);
    llama2_error err = {0};
    llama2_session *s = NULL;
    assert_int_equal(llama2_session_create(m, NULL, &s, &err), LLAMA2_OK);
    const int tokens[3] = {1, 5, 6};
    float *logits = NULL, want[8];
    assert_int_equal(llama2_session_eval(s, tokens, 3, 0, &logits, &err), LLAMA2_OK);
    memcpy(want, logits, sizeof want);
    assert_int_equal(llama2_session_clear_sequence(s, 0, &err), LLAMA2_OK);

    /* Products per block: 4 a layer (query-key-value, output, gate-up,
     * down), then the classifier's. */
    const struct {
        failing_backend f;
        llama2_status status;
        const char *message;
        int product_calls;
    } cases[] = {
        /* the 2nd (layer 0's output): none runs after it */
        {{.fail_at = 2}, LLAMA2_E_NOMEM, "test backend: product 2 failed", 2},
        /* the classifier's, the block's last: every layer ran, and still the call fails */
        {{.fail_at = 4 * 3 + 1}, LLAMA2_E_NOMEM, "test backend: product 13 failed", 13},
        /* the whole block, without a status: LLAMA2_E_UNSUPPORTED, and no product runs on the CPU after it */
        {{.fail_block = 1}, LLAMA2_E_UNSUPPORTED, "test backend: the block failed", 0},
    };
    const l2_backend_ops *cpu = s->backend;
    s->backend = &failing_ops;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        failing_backend f = cases[i].f;
        s->backend_state = &f;
        err = (llama2_error){0};
        assert_int_equal(llama2_session_eval(s, tokens, 3, 0, &logits, &err), cases[i].status);
        assert_int_equal(err.status, cases[i].status);
        assert_string_equal(err.message, cases[i].message);
        assert_int_equal(f.product_calls, cases[i].product_calls);
        assert_int_equal(f.block_calls, 1);
        assert_int_equal(llama2_session_sequence_length(s, 0), 0);
    }

    /* Back on the CPU: the same logits as before the failures. */
    s->backend = cpu;
    s->backend_state = NULL;
    assert_int_equal(llama2_session_eval(s, tokens, 3, 0, &logits, &err), LLAMA2_OK);
    assert_memory_equal(logits, want, sizeof want);
    assert_int_equal(llama2_session_sequence_length(s, 0), 3);
    llama2_session_destroy(s);
    llama2_model_close(m);
    test_tmp_dir_remove(dir);
}

/* ------------------------------------------------ logits against the CPU */

typedef struct logits_case {
    const char *backend;
    const char *model;
} logits_case;

/* eval_all's callback: row i into rows[i * vocab]. */
typedef struct rows_sink {
    float *rows;
    int vocab;
} rows_sink;

static void keep_row(void *user, int index, float *logits) {
    rows_sink *sink = user;
    memcpy(sink->rows + (size_t)index * (size_t)sink->vocab, logits, (size_t)sink->vocab * sizeof(float));
}

static void test_logits_match_cpu(void **state) {
    const logits_case *c = *state;
    char why[512] = "";
    llama2_model *m = NULL;
    llama2_error err = {0};
    assert_int_equal(llama2_model_open(model_path(c->model), NULL, &m, &err), LLAMA2_OK);
    const llama2_config *config = llama2_model_config(m);
    const int vocab = config->vocab_size;
    const double bound = config->weight_type == LLAMA2_WEIGHTS_F32 ? F32_BOUND : INT8_BOUND;
    assert_true(config->seq_len >= PROMPT_TOKENS + GENERATED_TOKENS);

    llama2_session *cpu = NULL, *dev = NULL;
    assert_int_equal(open_session(m, "cpu", &cpu, why, sizeof why), LLAMA2_OK);
    llama2_status st = open_session(m, c->backend, &dev, why, sizeof why);
    if (st == LLAMA2_E_UNSUPPORTED) {
        llama2_session_destroy(cpu);
        llama2_model_close(m);
        print_message("skipped: %s\n", why);
        skip();
    }
    if (st != LLAMA2_OK) print_message("%s\n", why);
    assert_int_equal(st, LLAMA2_OK);

    /* The prompt: BOS, then ids spread over the vocabulary. */
    int tokens[PROMPT_TOKENS];
    tokens[0] = 1;
    for (int i = 1; i < PROMPT_TOKENS; i++) tokens[i] = 3 + (i * 97 + 13) % (vocab - 3);
    float *want = malloc((size_t)PROMPT_TOKENS * (size_t)vocab * sizeof(float));
    float *got = malloc((size_t)PROMPT_TOKENS * (size_t)vocab * sizeof(float));
    assert_non_null(want);
    assert_non_null(got);
    rows_sink want_sink = {want, vocab}, got_sink = {got, vocab};
    assert_int_equal(llama2_session_eval_all(cpu, tokens, PROMPT_TOKENS, 0, keep_row, &want_sink, &err), LLAMA2_OK);
    assert_int_equal(llama2_session_eval_all(dev, tokens, PROMPT_TOKENS, 0, keep_row, &got_sink, &err), LLAMA2_OK);

    double worst = 0.0;
    int failures = 0;
    for (int i = 0; i < PROMPT_TOKENS; i++) {
        double e = relative_error(want + (size_t)i * vocab, got + (size_t)i * vocab, vocab);
        if (e > worst) worst = e;
        if (!(e < bound)) {
            if (failures++ < 5) print_message("prompt position %d: relative error %.3g (bound %.0e)\n", i, e, bound);
        }
    }

    /* Generation: the CPU's greedy choice fed to both, one position at a time. */
    int token = argmax(want + (size_t)(PROMPT_TOKENS - 1) * vocab, vocab);
    for (int step = 0; step < GENERATED_TOKENS; step++) {
        const int pos = PROMPT_TOKENS + step;
        float *a = NULL, *b = NULL;
        assert_int_equal(llama2_session_eval(cpu, &token, 1, pos, &a, &err), LLAMA2_OK);
        assert_int_equal(llama2_session_eval(dev, &token, 1, pos, &b, &err), LLAMA2_OK);
        double e = relative_error(a, b, vocab);
        if (e > worst) worst = e;
        if (!(e < bound)) {
            if (failures++ < 5) print_message("position %d: relative error %.3g (bound %.0e)\n", pos, e, bound);
        }
        token = argmax(a, vocab);
    }
    print_message("%s %s: worst relative logits error %.3g over %d evaluations (bound %.0e)\n", c->backend, c->model,
                  worst, PROMPT_TOKENS + GENERATED_TOKENS, bound);
    free(want);
    free(got);
    llama2_session_destroy(dev);
    llama2_session_destroy(cpu);
    llama2_model_close(m);
    assert_int_equal(failures, 0);
}

/* ------------------------------------------------------ golden manifest */

/* Generate mode, no standard input. */
static int is_generate(const golden_case *c) {
    return !c->stdin_file[0] && !strstr(c->argv_json, "\"chat\"");
}

/* The case's recorded ids replayed (BOS, then each printed id) through a cpu
 * session and a `backend` session one position at a time; 1 when the logits
 * agree within F32_BOUND at every position. */
static int logits_agree_on_ids(const golden_case *c, const char *backend, char *why, size_t why_size) {
    const char *path = test_golden_path(c->ids);
    char *text = test_read_file(path, NULL);
    if (!text) {
        snprintf(why, why_size, "cannot read %.400s", path);
        return 0;
    }
    llama2_model *m = NULL;
    llama2_session *cpu = NULL, *dev = NULL;
    llama2_error err = {0};
    int ok = llama2_model_open(model_path(c->model), NULL, &m, &err) == LLAMA2_OK &&
             open_session(m, "cpu", &cpu, why, why_size) == LLAMA2_OK &&
             open_session(m, backend, &dev, why, why_size) == LLAMA2_OK;
    if (ok) {
        const int vocab = llama2_model_config(m)->vocab_size, seq_len = llama2_model_config(m)->seq_len;
        int token = 1, pos = 0;
        double worst = 0.0;
        for (char *p = text; ok && pos < seq_len;) {
            float *a = NULL, *b = NULL;
            if (llama2_session_eval(cpu, &token, 1, pos, &a, &err) != LLAMA2_OK ||
                llama2_session_eval(dev, &token, 1, pos, &b, &err) != LLAMA2_OK) {
                snprintf(why, why_size, "position %d: %s", pos, err.message);
                ok = 0;
                break;
            }
            double e = relative_error(a, b, vocab);
            if (e > worst) worst = e;
            if (!(e < F32_BOUND)) {
                snprintf(why, why_size, "position %d: relative logits error %.3g", pos, e);
                ok = 0;
            }
            char *end;
            long next = strtol(p, &end, 10);
            if (end == p) break;
            p = end;
            token = (int)next;
            pos++;
        }
        if (ok) snprintf(why, why_size, "logits agree within %.3g over %d positions", worst, pos + 1);
    }
    llama2_session_destroy(dev);
    llama2_session_destroy(cpu);
    llama2_model_close(m);
    free(text);
    return ok;
}

static void test_golden_with_backend(void **state) {
    const logits_case *g = *state;
    const char *backend = g->backend;
    model_path(g->model);
    test_require_model("tok512.bin");
    SKIP_IF_UNAVAILABLE(backend);
    golden_case *cases = NULL;
    int n_cases = test_read_manifest(&cases);
    assert_true(n_cases > 0);
    /* The program runs in the models folder: its path must not be relative. */
    char program[4096];
    assert_int_equal(test_absolute_path(test_llama2_bin(), program, sizeof program), 0);
    char models[4096];
    snprintf(models, sizeof models, "%s", test_models_dir());

    int checked = 0, failures = 0;
    for (int i = 0; i < n_cases; i++) {
        const golden_case *c = &cases[i];
        if (strcmp(c->model, g->model) != 0 || !is_generate(c)) continue;
        char **args = NULL;
        int n_args = test_parse_json_strings(c->argv_json, &args);
        assert_true(n_args >= 0 && n_args < 50);
        char model[4200], expected_path[4200];
        snprintf(model, sizeof model, "%s", test_model_path(c->model));
        snprintf(expected_path, sizeof expected_path, "%s", test_golden_path(c->expected));
        char *argv[64];
        int k = 0;
        argv[k++] = program;
        argv[k++] = model;
        for (int a = 0; a < n_args; a++) argv[k++] = args[a];
        argv[k++] = "--no-timer";
        argv[k++] = "--backend";
        argv[k++] = (char *)backend;
        argv[k] = NULL;
        size_t expected_len = 0;
        char *expected = test_read_file(expected_path, &expected_len);
        assert_non_null(expected);
        test_run r;
        test_run_program(argv, models, NULL, 0, &r);
        int same = r.status == 0 && r.out_len == expected_len && memcmp(r.out, expected, expected_len) == 0;
        if (!same) {
            char why[512] = "";
            /* On a GPU a sum in another order can move a logit by an ulp and
             * flip a near-tie of the greedy argmax or of a sampling draw, and
             * the text goes its own way from there. For the cuda backend a
             * different text therefore passes when the logits along the
             * recorded token ids match the CPU's within F32_BOUND; any other
             * backend must print the exact bytes. */
            if (strcmp(backend, "cuda") == 0 && r.status == 0 && c->ids[0] &&
                logits_agree_on_ids(c, backend, why, sizeof why)) {
                print_message("note %s: the text differs with --backend %s, but %s\n", c->id, backend, why);
            } else {
                print_message("FAIL %s --backend %s: status %d, %zu bytes (expected %zu) %s\n  got:      %.200s\n"
                              "  expected: %.200s\n  stderr: %.200s\n",
                              c->id, backend, r.status, r.out_len, expected_len, why, r.out, expected, r.err);
                failures++;
            }
        }
        checked++;
        test_run_free(&r);
        free(expected);
        test_free_strings(args);
    }
    test_free_manifest(cases, n_cases);
    print_message("%d generate cases of %s run with --backend %s, %d failed\n", checked, g->model, backend, failures);
    assert_true(checked > 0);
    assert_int_equal(failures, 0);
}

/* ----------------------------------------------------------------- main */

/* The fp32 models: the golden cases each backend must print byte for byte. */
static const char *const fp32_model_files[] = {"stories260K.bin", "stories260K_v1.bin"};
#define N_FP32 (int)(sizeof fp32_model_files / sizeof fp32_model_files[0])

int main(void) {
    static logits_case logits_cases[8 * (N_MODELS + N_FP32)];
    static char names[8 * (N_MODELS + N_FP32)][160];
    static char backends[8][32];
    struct CMUnitTest tests[2 + 8 * (N_MODELS + N_FP32)];
    int n_tests = 0, n_names = 0, n_logits = 0;

    tests[n_tests++] = (struct CMUnitTest){"cpu is listed first; an unknown backend is refused", test_backend_list,
                                           NULL, NULL, NULL};
    tests[n_tests++] = (struct CMUnitTest){"a failing backend stops the call at its first failure",
                                           test_failure_stops_the_pass, NULL, NULL, NULL};
    for (int i = 1; llama2_backend_name(i) && i <= 8; i++) {
        snprintf(backends[i - 1], sizeof backends[i - 1], "%s", llama2_backend_name(i));
        const char *backend = backends[i - 1];
        for (int mi = 0; mi < N_MODELS; mi++) {
            logits_cases[n_logits] = (logits_case){backend, model_files[mi]};
            snprintf(names[n_names], sizeof names[n_names], "%.31s logits match cpu: %.60s", backend, model_files[mi]);
            tests[n_tests++] = (struct CMUnitTest){names[n_names++], test_logits_match_cpu, NULL, NULL,
                                                   &logits_cases[n_logits++]};
        }
        for (int mi = 0; mi < N_FP32; mi++) {
            logits_cases[n_logits] = (logits_case){backend, fp32_model_files[mi]};
            snprintf(names[n_names], sizeof names[n_names], "%.31s golden generate cases: %.60s", backend,
                     fp32_model_files[mi]);
            tests[n_tests++] = (struct CMUnitTest){names[n_names++], test_golden_with_backend, NULL, NULL,
                                                   &logits_cases[n_logits++]};
        }
    }
    return _cmocka_run_group_tests("backends", tests, (size_t)n_tests, NULL, NULL);
}
