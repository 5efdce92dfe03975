/*
 * llama2-bench's models folder: by default the user's cache folder
 * ($XDG_CACHE_HOME/llama2, else ~/.cache/llama2), said on standard error
 * before anything is written there. The runs here stop at once: the folder
 * cannot be made (a file stands where a folder would go), so no model is
 * written. The bound column's level comes from l2_l3_cache_bytes
 * (test_platform).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llama2.h"
#include "support.h"

static char tmp_dir[4096], blocker[4200];

static int setup(void **state) {
    (void)state;
    if (test_tmp_dir_create(tmp_dir, sizeof tmp_dir, "bench") != 0) return -1;
    snprintf(blocker, sizeof blocker, "%s/a-file", tmp_dir);
    test_write_file(blocker, "x", 1, 0644);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    test_tmp_dir_remove(tmp_dir);
    return 0;
}

/* llama2-bench --models-only with the environment variables given (NULL:
 * removed). */
static void run_bench(test_run *r, const char *xdg, const char *home) {
    const char *bench = test_require_tool("llama2-bench");
    char xdg_env[4300], home_env[4300];
    char *argv[16];
    int n = 0;
    argv[n++] = "/usr/bin/env";
    argv[n++] = "-u";
    argv[n++] = "XDG_CACHE_HOME";
    if (xdg) {
        snprintf(xdg_env, sizeof xdg_env, "XDG_CACHE_HOME=%s", xdg);
        argv[n++] = xdg_env;
    }
    snprintf(home_env, sizeof home_env, "HOME=%s", home);
    argv[n++] = home_env;
    argv[n++] = (char *)bench;
    argv[n++] = "--models-only";
    argv[n++] = "--shapes";
    argv[n++] = "stories15M";
    argv[n] = NULL;
    test_run_program(argv, NULL, NULL, 0, r);
}

static void test_models_in_xdg_cache(void **state) {
    (void)state;
    test_run r;
    run_bench(&r, blocker, tmp_dir);
    assert_int_equal(r.status, 1);
    char expected[16384];
    snprintf(expected, sizeof expected,
             "llama2-bench: models in %s/llama2 (written once, then reused; --models DIR picks another folder)\n"
             "llama2-bench: cannot create %s/llama2: Not a directory\n",
             blocker, blocker);
    assert_string_equal(r.err, expected);
    test_run_free(&r);
}

/* Without XDG_CACHE_HOME (or with a relative one, which the XDG rules
 * ignore): ~/.cache/llama2, the folders above it made as needed. */
static void test_models_in_home_cache(void **state) {
    (void)state;
    const char *xdg[] = {NULL, "relative/cache"};
    for (int i = 0; i < 2; i++) {
        test_run r;
        run_bench(&r, xdg[i], blocker);
        assert_int_equal(r.status, 1);
        char expected[16384];
        snprintf(expected, sizeof expected,
                 "llama2-bench: models in %s/.cache/llama2 (written once, then reused; --models DIR picks another "
                 "folder)\n"
                 "llama2-bench: cannot create %s/.cache: Not a directory\n",
                 blocker, blocker);
        assert_string_equal(r.err, expected);
        test_run_free(&r);
    }
}

/* --types q4_0: the fp32 model's GGUF Q4_0 twin is written (no part file
 * left beside it), held as Q4_0 blocks, and gets a row. */
static void test_q4_0_rows(void **state) {
    (void)state;
    const char *bench = test_require_tool("llama2-bench");
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", test_path_in(tmp_dir, "q4_models"));
    char *argv[] = {(char *)bench, "--models", dir, "--shapes", "stories15M", "--types", "q4_0", "--threads", "1",
                    "--reps", "1", "--pp", "8", "--tg", "4", "--no-bandwidth", NULL};
    test_run r;
    test_run_program(argv, NULL, NULL, 0, &r);
    if (r.status != 0) fail_msg("status %d: %s", r.status, r.err);
    assert_non_null(strstr(r.out, "\nstories15M     q4_0   cpu "));
    assert_null(strstr(r.out, "q8/"));
    test_run_free(&r);
    char path[4300];
    snprintf(path, sizeof path, "%s/stories15M-q4_0.gguf", dir);
    llama2_model *m = NULL;
    llama2_error err = {0};
    assert_int_equal(llama2_model_open(path, NULL, &m, &err), LLAMA2_OK);
    assert_int_equal(llama2_model_config(m)->weight_type, LLAMA2_WEIGHTS_Q4_0);
    assert_string_equal(llama2_model_format(m), "GGUF v3: 13 F32, 43 Q4_0 tensors");
    llama2_model_close(m);
    snprintf(path, sizeof path, "%s/stories15M-q4_0.gguf.f32-part", dir);
    FILE *f = fopen(path, "rb");
    assert_null(f);
    if (f) fclose(f);
}

/* --types q4_k_m: the Q4_K_M twin, llama.cpp's mix with its fallbacks for
 * stories15M's rows of 288 values (only ffn_down's 768 are whole blocks
 * of 256: Q4_K, Q6_K in layers 2 and 5; the rest Q4_0, Q6_K's Q8_0). */
static void test_q4_k_m_rows(void **state) {
    (void)state;
    const char *bench = test_require_tool("llama2-bench");
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", test_path_in(tmp_dir, "q4_k_m_models"));
    char *argv[] = {(char *)bench, "--models", dir, "--shapes", "stories15M", "--types", "q4_k_m", "--threads", "1",
                    "--reps", "1", "--pp", "8", "--tg", "4", "--no-bandwidth", NULL};
    test_run r;
    test_run_program(argv, NULL, NULL, 0, &r);
    if (r.status != 0) fail_msg("status %d: %s", r.status, r.err);
    assert_non_null(strstr(r.out, "\nstories15M     q4_k_m cpu "));
    test_run_free(&r);
    char path[4300];
    snprintf(path, sizeof path, "%s/stories15M-q4_k_m.gguf", dir);
    llama2_model *m = NULL;
    llama2_error err = {0};
    assert_int_equal(llama2_model_open(path, NULL, &m, &err), LLAMA2_OK);
    assert_string_equal(llama2_model_format(m), "GGUF v3: 13 F32, 34 Q4_0, 3 Q8_0, 4 Q4_K, 2 Q6_K tensors");
    llama2_model_close(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_q4_0_rows),
        cmocka_unit_test(test_q4_k_m_rows),
        cmocka_unit_test(test_models_in_xdg_cache),
        cmocka_unit_test(test_models_in_home_cache),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
