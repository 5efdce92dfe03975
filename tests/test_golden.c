/*
 * Parity with llama2.c: every case of tests/golden/MANIFEST.tsv run through
 * the llama2 program must print exactly the expected bytes and exit 0, at
 * several thread counts, batch sizes and with --no-mmap; and the library,
 * driven token by token, must pick exactly the recorded token ids. One test
 * per case and check, skipped by name when its model or tokenizer is absent.
 * Then the library's ids again at every other kernel level (LLAMA2_KERNELS),
 * one test per level, skipped by name where this CPU lacks the level; built
 * as test_golden_emulated (with the emulated x86 kernels, see
 * tests/emulate_x86.h), only that, for the levels beyond AVX2.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "../cli/args.h"
#include "llama2.h"
#include "kernels/ops.h"
#include "support.h"

static golden_case *cases;
static int n_cases;

/* The tokenizer a case's arguments name (-z, --tokenizer; llama2.c's
 * default tokenizer.bin). */
static const char *case_tokenizer(char **args, int n_args) {
    const char *t = "tokenizer.bin";
    for (int i = 0; i + 1 < n_args; i++)
        if (strcmp(args[i], "-z") == 0 || strcmp(args[i], "--tokenizer") == 0) t = args[i + 1];
    return t;
}

/* Skips the running test unless the case's model and tokenizer are there. */
static void require_files(const golden_case *c) {
    char **args = NULL;
    int n_args = test_parse_json_strings(c->argv_json, &args);
    assert_true(n_args >= 0);
    char tokenizer[256];
    snprintf(tokenizer, sizeof tokenizer, "%s", case_tokenizer(args, n_args));
    test_free_strings(args);
    test_require_model(c->model);
    test_require_model(tokenizer);
}

/* The program runs: in test_golden only (the emulated kernels are the
 * library's, tested through it). */
#ifndef L2_EMULATED_X86

/* Extra flags for each run of the whole manifest. */
static const char *const variants[][5] = {
    {NULL},
    {"--threads", "1", "--batch", "1", NULL},
    {"--threads", "2", "--batch", "7", NULL},
    {"--threads", "3", NULL},
    {"--no-mmap", "--threads", "2", NULL},
};
#define N_VARIANTS (int)(sizeof variants / sizeof variants[0])

static int run_case(const golden_case *c, const char *const *extra, char *why, size_t why_size) {
    char **args = NULL;
    int n_args = test_parse_json_strings(c->argv_json, &args);
    if (n_args < 0) {
        snprintf(why, why_size, "bad argv_json");
        return 0;
    }
    char models[4096], model[4200], expected_path[4200], stdin_path[4200];
    snprintf(models, sizeof models, "%s", test_models_dir());
    snprintf(model, sizeof model, "%s", test_model_path(c->model));
    snprintf(expected_path, sizeof expected_path, "%s", test_golden_path(c->expected));
    char *argv[64];
    int k = 0;
    argv[k++] = (char *)test_llama2_bin();
    argv[k++] = model;
    for (int i = 0; i < n_args && k < 50; i++) argv[k++] = args[i];
    argv[k++] = "--no-timer";
    for (int i = 0; extra[i] && k < 62; i++) argv[k++] = (char *)extra[i];
    argv[k] = NULL;

    size_t stdin_len = 0;
    char *stdin_data = NULL;
    if (c->stdin_file[0]) {
        snprintf(stdin_path, sizeof stdin_path, "%s", test_golden_path(c->stdin_file));
        stdin_data = test_read_file(stdin_path, &stdin_len);
    }
    size_t expected_len = 0;
    char *expected = test_read_file(expected_path, &expected_len);
    test_run r;
    test_run_program(argv, models, stdin_data, stdin_len, &r);
    int ok = expected && r.status == 0 && r.out_len == expected_len && memcmp(r.out, expected, expected_len) == 0;
    if (!ok) {
        char flags[256] = "";
        for (int i = 0; extra[i]; i++) {
            strncat(flags, " ", sizeof flags - strlen(flags) - 1);
            strncat(flags, extra[i], sizeof flags - strlen(flags) - 1);
        }
        snprintf(why, why_size, "%s%s%s: status %d, %zu bytes (expected %zu)\n  got:      %.300s\n  expected: %.300s\n  stderr: %.300s",
                 c->id, flags[0] ? " with" : "", flags, r.status, r.out_len, expected_len, r.out,
                 expected ? expected : "(unreadable)", r.err);
    }
    test_run_free(&r);
    free(expected);
    free(stdin_data);
    test_free_strings(args);
    return ok;
}

/* One case through the program, with each variant's extra flags. */
static void test_case_program(void **state) {
    const golden_case *c = *state;
    require_files(c);
    int failures = 0;
    for (int v = 0; v < N_VARIANTS; v++) {
        char why[2048];
        if (!run_case(c, variants[v], why, sizeof why)) {
            print_message("FAIL %s\n", why);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

#endif

/* llama2.c's generate() loop written against the library, one position at
 * a time, recording the ids it prints. */
static int library_ids(const golden_case *c, int *ids, int max_ids, char *why, size_t why_size) {
    char **args = NULL;
    int n_args = test_parse_json_strings(c->argv_json, &args);
    char *argv[64];
    char model[4096];
    snprintf(model, sizeof model, "%s", test_model_path(c->model));
    int k = 0;
    argv[k++] = "llama2";
    argv[k++] = model;
    for (int i = 0; i < n_args && k < 60; i++) argv[k++] = args[i];
    argv[k] = NULL;
    cli_args a;
    char msg[256];
    int n = -1;
    if (cli_parse(k, argv, &a, msg, sizeof msg) != 0) {
        snprintf(why, why_size, "%s: %s", c->id, msg);
        test_free_strings(args);
        return -1;
    }
    char tok_path[4096];
    snprintf(tok_path, sizeof tok_path, "%s", test_model_path(a.tokenizer));
    llama2_model *m = NULL;
    llama2_tokenizer *t = NULL;
    llama2_sampler *s = NULL;
    llama2_session *sess = NULL;
    llama2_error err = {0};
    if (llama2_model_open(model, NULL, &m, &err) == LLAMA2_OK &&
        llama2_tokenizer_open(tok_path, llama2_model_config(m)->vocab_size, &t, &err) == LLAMA2_OK &&
        llama2_sampler_create(llama2_model_config(m)->vocab_size,
                              &(llama2_sampler_options){.temperature = a.temperature, .top_p = a.topp, .seed = a.seed},
                              &s, &err) == LLAMA2_OK &&
        llama2_session_create(m, &(llama2_session_options){.batch_size = 1}, &sess, &err) == LLAMA2_OK) {
        const char *prompt = a.prompt ? a.prompt : "";
        int *prompt_ids = malloc(llama2_tokenize_capacity(strlen(prompt)) * sizeof *prompt_ids);
        int n_prompt = 0;
        llama2_tokenize(t, prompt, 1, 0, prompt_ids, &n_prompt, &err);
        int seq_len = llama2_model_config(m)->seq_len;
        int steps = a.steps <= 0 || a.steps > seq_len ? seq_len : a.steps;
        int token = prompt_ids[0];
        n = 0;
        for (int pos = 0; pos < steps && n < max_ids;) {
            float *logits;
            if (llama2_session_eval(sess, &token, 1, pos, &logits, &err) != LLAMA2_OK) break;
            int next = pos < n_prompt - 1 ? prompt_ids[pos + 1] : llama2_sampler_sample(s, logits);
            pos++;
            if (next == 1) break;
            ids[n++] = next;
            token = next;
        }
        free(prompt_ids);
    } else {
        snprintf(why, why_size, "%s: %s", c->id, err.message);
    }
    llama2_session_destroy(sess);
    llama2_sampler_destroy(s);
    llama2_tokenizer_close(t);
    llama2_model_close(m);
    test_free_strings(args);
    return n;
}

/* Whether the library picks exactly the case's recorded ids; if not, why
 * in message. */
static int same_ids(const golden_case *c, char *message, size_t size) {
    char *text = test_read_file(test_golden_path(c->ids), NULL);
    if (!text) {
        snprintf(message, size, "%s: cannot read %s", c->id, c->ids);
        return 0;
    }
    int expected[4096], n_expected = 0;
    for (char *p = text; *p && n_expected < 4096;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p) break;
        expected[n_expected++] = (int)v;
        p = end;
    }
    free(text);
    int got[4096];
    char why[512] = "";
    int n = library_ids(c, got, 4096, why, sizeof why);
    if (n < 0 || n != n_expected || memcmp(got, expected, (size_t)n_expected * sizeof(int)) != 0) {
        int first = 0;
        while (first < n && first < n_expected && got[first] == expected[first]) first++;
        snprintf(message, size, "%s: %d ids, expected %d; first difference at %d %s", c->id, n, n_expected, first,
                 why);
        return 0;
    }
    return 1;
}

/* One case's recorded ids against the library's. */
static void test_case_library_ids(void **state) {
    const golden_case *c = *state;
    require_files(c);
    char message[1024];
    if (!same_ids(c, message, sizeof message)) fail_msg("%s", message);
}

/* Whether the case's model and tokenizer are there. */
static int have_files(const golden_case *c) {
    char **args = NULL;
    int n_args = test_parse_json_strings(c->argv_json, &args);
    if (n_args < 0) return 0;
    char tokenizer[256];
    snprintf(tokenizer, sizeof tokenizer, "%s", case_tokenizer(args, n_args));
    test_free_strings(args);
    return test_have_model(c->model) && test_have_model(tokenizer);
}

/* Every case's recorded ids against the library's with the kernels of one
 * level (LLAMA2_KERNELS caps the choice at it: the level itself where this
 * CPU runs it). */
static void test_level_library_ids(void **state) {
    const char *level = *state;
    if (!l2_kernels_level(level, LLAMA2_WEIGHTS_F32)) {
        print_message("skipped: this CPU cannot run the %s kernels\n", level);
        skip();
    }
    char *saved = getenv("LLAMA2_KERNELS") ? strdup(getenv("LLAMA2_KERNELS")) : NULL;
    test_set_env("LLAMA2_KERNELS", level);
    assert_string_equal(llama2_kernels_name(), level);
    int ran = 0, failures = 0;
    for (int i = 0; i < n_cases; i++) {
        if (!cases[i].ids[0] || !have_files(&cases[i])) continue;
        char message[1024] = "";
        if (!same_ids(&cases[i], message, sizeof message)) {
            print_message("FAIL [%s] %s\n", level, message);
            failures++;
        }
        ran++;
    }
    test_set_env("LLAMA2_KERNELS", saved);
    free(saved);
    if (ran == 0) {
        print_message("skipped: no case's model files are in %s\n", test_models_dir());
        skip();
    }
    assert_int_equal(failures, 0);
}

#ifdef L2_EMULATED_X86
/* Emulated, the x86 levels beyond AVX2 (the others run natively in
 * test_golden): each case at the fastest, then every case at each other. */
#define EMULATED ", emulated"
static int level_tested_here(const char *level, int fastest) {
    return !fastest && strcmp(level, "scalar") != 0 && strcmp(level, "avx2") != 0;
}
#else
/* Each case at the fastest level this CPU runs, then every case at each
 * other level. */
#define EMULATED ""
static int level_tested_here(const char *level, int fastest) { return !fastest; }
#endif

int main(void) {
    n_cases = test_read_manifest(&cases);
    if (n_cases <= 0) {
        fprintf(stderr, "cannot read %s\n", test_golden_path("MANIFEST.tsv"));
        return 1;
    }
    enum { MAX_LEVELS = 8 };
    struct CMUnitTest *tests = calloc(2 * (size_t)n_cases + MAX_LEVELS, sizeof *tests);
    char (*names)[160] = calloc(2 * (size_t)n_cases + MAX_LEVELS, sizeof *names);
    if (!tests || !names) return 1;
    int n = 0;
    /* The level the cases run at: the fastest this CPU runs. */
    const char *fastest = llama2_kernels_name();
    for (int i = 0; i < n_cases; i++) {
#ifndef L2_EMULATED_X86
        snprintf(names[n], sizeof names[n], "program %.120s", cases[i].id);
        tests[n] = (struct CMUnitTest){names[n], test_case_program, NULL, NULL, &cases[i]};
        n++;
#endif
        if (!cases[i].ids[0]) continue; /* chat cases have no ids */
        snprintf(names[n], sizeof names[n], "library ids %.120s%s%s%s", cases[i].id, EMULATED[0] ? " [" : "",
                 EMULATED[0] ? fastest : "", EMULATED[0] ? EMULATED "]" : "");
        tests[n] = (struct CMUnitTest){names[n], test_case_library_ids, NULL, NULL, &cases[i]};
        n++;
    }
    for (int level = 0; l2_kernel_level_name(level) && level < MAX_LEVELS; level++) {
        const char *name = l2_kernel_level_name(level);
        if (!level_tested_here(name, strcmp(name, fastest) == 0)) continue;
        snprintf(names[n], sizeof names[n], "library ids, every case [%s%s]", name, EMULATED);
        tests[n] = (struct CMUnitTest){names[n], test_level_library_ids, NULL, NULL, (void *)name};
        n++;
    }
    int rc = _cmocka_run_group_tests("golden", tests, (size_t)n, NULL, NULL);
    free(tests);
    free(names);
    test_free_manifest(cases, n_cases);
    return rc;
}
