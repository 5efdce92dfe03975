/*
 * Parity with llama2.c: every case of ../shared/goldens/MANIFEST.tsv run
 * through the llama2 program must print exactly the expected bytes and exit
 * 0, at several thread counts, batch sizes and with --no-mmap; and the
 * library, driven token by token, must pick exactly the recorded token ids.
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
#include "support.h"

static golden_case *cases;
static int n_cases;

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
    char models[2048], model[4200], expected_path[4200], stdin_path[4200];
    snprintf(models, sizeof models, "%s/models", test_shared_dir());
    snprintf(model, sizeof model, "%s/%s", models, c->model);
    snprintf(expected_path, sizeof expected_path, "%s/goldens/%s", test_shared_dir(), c->expected);
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
        snprintf(stdin_path, sizeof stdin_path, "%s/goldens/%s", test_shared_dir(), c->stdin_file);
        stdin_data = test_read_file(stdin_path, &stdin_len);
    }
    size_t expected_len = 0;
    char *expected = test_read_file(expected_path, &expected_len);
    test_run r;
    test_run_program(argv, models, stdin_data, stdin_len, &r);
    int ok = expected && r.status == 0 && r.out_len == expected_len && memcmp(r.out, expected, expected_len) == 0;
    if (!ok) {
        snprintf(why, why_size, "%s%s%s: status %d, %zu bytes (expected %zu)\n  got:      %.300s\n  expected: %.300s\n  stderr: %.300s",
                 c->id, extra[0] ? " with " : "", extra[0] ? extra[0] : "", r.status, r.out_len, expected_len,
                 r.out, expected ? expected : "(unreadable)", r.err);
    }
    test_run_free(&r);
    free(expected);
    free(stdin_data);
    test_free_strings(args);
    return ok;
}

static void test_manifest_variant(void **state) {
    const char *const *extra = *state;
    assert_true(n_cases > 0);
    int failures = 0;
    for (int i = 0; i < n_cases; i++) {
        char why[2048];
        if (!run_case(&cases[i], extra, why, sizeof why)) {
            print_message("FAIL %s\n", why);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

/* llama2.c's generate() loop written against the library, one position at
 * a time, recording the ids it prints. */
static int library_ids(const golden_case *c, int *ids, int max_ids, char *why, size_t why_size) {
    char **args = NULL;
    int n_args = test_parse_json_strings(c->argv_json, &args);
    char *argv[64];
    char model[4096];
    snprintf(model, sizeof model, "%s/models/%s", test_shared_dir(), c->model);
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
    snprintf(tok_path, sizeof tok_path, "%s/models/%s", test_shared_dir(), a.tokenizer);
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

static void test_library_token_ids(void **state) {
    (void)state;
    int checked = 0, failures = 0;
    for (int i = 0; i < n_cases; i++) {
        const golden_case *c = &cases[i];
        if (!c->ids[0]) continue; /* chat cases have no ids */
        char path[4096], why[512] = "";
        snprintf(path, sizeof path, "%s/goldens/%s", test_shared_dir(), c->ids);
        char *text = test_read_file(path, NULL);
        assert_non_null(text);
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
        int n = library_ids(c, got, 4096, why, sizeof why);
        if (n < 0 || n != n_expected || memcmp(got, expected, (size_t)n_expected * sizeof(int)) != 0) {
            int first = 0;
            while (first < n && first < n_expected && got[first] == expected[first]) first++;
            print_message("FAIL %s: %d ids, expected %d; first difference at %d %s\n", c->id, n, n_expected, first, why);
            failures++;
        }
        checked++;
    }
    assert_true(checked > 0);
    assert_int_equal(failures, 0);
}

int main(void) {
    n_cases = test_read_manifest(&cases);
    if (n_cases <= 0) {
        fprintf(stderr, "cannot read %s\n", test_shared_path("goldens/MANIFEST.tsv"));
        return 1;
    }
    struct CMUnitTest tests[N_VARIANTS + 1];
    static char names[N_VARIANTS][128];
    for (int v = 0; v < N_VARIANTS; v++) {
        snprintf(names[v], sizeof names[v], "manifest");
        for (int i = 0; variants[v][i]; i++) {
            strncat(names[v], " ", sizeof names[v] - strlen(names[v]) - 1);
            strncat(names[v], variants[v][i], sizeof names[v] - strlen(names[v]) - 1);
        }
        tests[v] = (struct CMUnitTest){names[v], test_manifest_variant, NULL, NULL, (void *)variants[v]};
    }
    tests[N_VARIANTS] = (struct CMUnitTest){"library token ids", test_library_token_ids, NULL, NULL, NULL};
    int rc = _cmocka_run_group_tests("golden", tests, N_VARIANTS + 1, NULL, NULL);
    test_free_manifest(cases, n_cases);
    return rc;
}
