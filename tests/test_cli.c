/*
 * The llama2 program's prompts, context and messages, run as a user would
 * ($LLAMA2_BIN, models in $LLAMA2_MODELS: a test whose files are absent is
 * skipped by name): a prompt from a file and from
 * standard input, stop strings, --ctx (the same text in a shorter context,
 * and less memory), the sampler flags, --verbose, --version, the seed, and
 * the messages about the tokenizer.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "write/checkpoint_writer.h"
#include "llama2.h"
#include "support.h"

static char tmp_dir[4096];
static char prompt_file[4200], empty_file[4200], long_model[4200];
static char model[4200], tokenizer[4200], tokenizer32k[4200];

static int setup(void **state) {
    (void)state;
    if (test_tmp_dir_create(tmp_dir, sizeof tmp_dir, "cli") != 0) return -1;
    snprintf(prompt_file, sizeof prompt_file, "%s/prompt.txt", tmp_dir);
    snprintf(empty_file, sizeof empty_file, "%s/empty.txt", tmp_dir);
    snprintf(long_model, sizeof long_model, "%s/long.bin", tmp_dir);
    const char *prompt = "Tom had a cat.\nThe cat was black.\n";
    test_write_file(prompt_file, prompt, strlen(prompt), 0644);
    test_write_file(empty_file, "", 0, 0644);
    /* A context of 65536 positions: its KV cache alone is 128 MiB. */
    llama2_config c = l2_random_model_config(64, 128, 4, 4, 4, 512, 65536, 1, 1, 0);
    llama2_error err;
    if (l2_write_random_model(long_model, &c, 5, 0, &err) != LLAMA2_OK) return -1;
    snprintf(model, sizeof model, "%s", test_model_path("stories260K.bin"));
    snprintf(tokenizer, sizeof tokenizer, "%s", test_model_path("tok512.bin"));
    snprintf(tokenizer32k, sizeof tokenizer32k, "%s", test_model_path("tokenizer.bin"));
    return 0;
}

/* Skips the running test unless stories260K.bin and tok512.bin are there. */
static void need_model(void) {
    test_require_model("stories260K.bin");
    test_require_model("tok512.bin");
}

static int teardown(void **state) {
    (void)state;
    test_tmp_dir_remove(tmp_dir);
    return 0;
}

/* Runs llama2 with the arguments (NULL-terminated), stdin from `input`. */
static int run(test_run *r, const char *input, ...) {
    char *argv[48];
    int n = 0;
    argv[n++] = (char *)test_llama2_bin();
    va_list ap;
    va_start(ap, input);
    for (const char *a; n < 47 && (a = va_arg(ap, const char *)) != NULL;) argv[n++] = (char *)a;
    va_end(ap);
    argv[n] = NULL;
    return test_run_program(argv, NULL, input, input ? strlen(input) : 0, r);
}

#define GREEDY "-z", tokenizer, "-t", "0", "--no-timer"

static void expect_same(const char *what, const test_run *a, const test_run *b) {
    if (a->status != 0 || b->status != 0 || a->out_len != b->out_len || memcmp(a->out, b->out, a->out_len) != 0)
        fail_msg("%s: '%s' (status %d, %s) and '%s' (status %d, %s)", what, a->out, a->status, a->err, b->out,
                 b->status, b->err);
}

/* -f FILE and -f - give what -i gives with the file's text (without its
 * final newline). */
static void test_prompt_file(void **state) {
    (void)state;
    need_model();
    test_run direct, file, piped;
    run(&direct, NULL, model, GREEDY, "-n", "48", "-i", "Tom had a cat.\nThe cat was black.", NULL);
    run(&file, NULL, model, GREEDY, "-n", "48", "-f", prompt_file, NULL);
    run(&piped, "Tom had a cat.\nThe cat was black.\n", model, GREEDY, "-n", "48", "-f", "-", NULL);
    expect_same("-f FILE", &direct, &file);
    expect_same("-f -", &direct, &piped);
    assert_int_equal(strncmp(file.out, "Tom had a cat.\nThe cat was black.", 33), 0);
    test_run_free(&direct);
    test_run_free(&file);
    test_run_free(&piped);

    /* An empty file is an empty prompt. */
    test_run empty, none;
    run(&empty, NULL, model, GREEDY, "-n", "16", "-f", empty_file, NULL);
    run(&none, NULL, model, GREEDY, "-n", "16", "-i", "", NULL);
    expect_same("-f empty", &empty, &none);
    test_run_free(&empty);
    test_run_free(&none);

    /* The file is the first user turn in chat. */
    test_run chat;
    run(&chat, "\n", model, GREEDY, "-m", "chat", "--reply-tokens", "4", "-f", prompt_file, NULL);
    assert_int_equal(chat.status, 0);
    assert_int_equal(strncmp(chat.out, "Enter system prompt (optional): Assistant: ", 43), 0);
    assert_string_equal(chat.err, "llama2: chat ended: end of input\n");
    test_run_free(&chat);
}

/* --ctx: the first positions are the same text; the cache is that much
 * smaller; -n 0 means the shorter context. */
static void test_context(void **state) {
    (void)state;
    need_model();
    test_run full, ctx;
    run(&full, NULL, model, GREEDY, "-n", "40", NULL);
    run(&ctx, NULL, model, GREEDY, "-n", "40", "--ctx", "40", NULL);
    expect_same("--ctx 40", &full, &ctx);
    test_run_free(&ctx);
    run(&ctx, NULL, model, GREEDY, "-n", "0", "--ctx", "40", NULL);
    expect_same("--ctx 40 -n 0", &full, &ctx);
    test_run_free(&full);
    test_run_free(&ctx);

    /* Peak memory with the model's 65536 positions and with 64. */
    long rss[2];
    const char *contexts[2] = {NULL, "64"};
    for (int i = 0; i < 2; i++) {
        test_run r;
        if (contexts[i])
            run(&r, NULL, long_model, GREEDY, "-n", "8", "--verbose", "--ctx", contexts[i], NULL);
        else
            run(&r, NULL, long_model, GREEDY, "-n", "8", "--verbose", NULL);
        assert_int_equal(r.status, 0);
        const char *at = strstr(r.err, "peak_rss_kib=");
        assert_non_null(at);
        rss[i] = strtol(at + 13, NULL, 10);
        if (contexts[i]) assert_non_null(strstr(r.err, "context=64 seq_len=65536"));
        test_run_free(&r);
    }
    /* The cache of 65536 positions: 4 layers x 2 x 64 floats each. */
    if (rss[0] - rss[1] < 100 * 1024)
        fail_msg("peak memory %ld KiB with the whole context, %ld KiB with --ctx 64", rss[0], rss[1]);

    /* A prompt longer than --ctx is refused like one longer than the model's. */
    test_run r;
    run(&r, NULL, model, GREEDY, "--ctx", "8", "-i", "Once upon a time, there was a little girl named Lily.", NULL);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "llama2: -i: the prompt is"));
    assert_non_null(strstr(r.err, "the context window holds 8\n"));
    test_run_free(&r);
}

static void test_stop(void **state) {
    (void)state;
    need_model();
    test_run whole, cut;
    run(&whole, NULL, model, GREEDY, "-n", "64", NULL);
    run(&cut, NULL, model, GREEDY, "-n", "64", "--stop", "xyz", "--stop", "girl named", NULL);
    const char *at = strstr(whole.out, "girl named");
    assert_non_null(at);
    size_t before = (size_t)(at - whole.out);
    assert_int_equal(cut.status, 0);
    assert_int_equal(cut.out_len, before + 1);
    assert_memory_equal(cut.out, whole.out, before);
    assert_string_equal(cut.out + before, "\n");
    test_run_free(&whole);
    test_run_free(&cut);
}

/* The new sampler flags change the text; top-k 1 is greedy. */
static void test_sampler_flags(void **state) {
    (void)state;
    need_model();
    test_run greedy, k1, penalised;
    run(&greedy, NULL, model, GREEDY, "-n", "64", NULL);
    run(&k1, NULL, model, "-z", tokenizer, "--no-timer", "-n", "64", "-t", "1", "--top-k", "1", "-s", "5", NULL);
    expect_same("--top-k 1", &greedy, &k1);
    run(&penalised, NULL, model, GREEDY, "-n", "64", "--repeat-penalty", "1.5", NULL);
    assert_int_equal(penalised.status, 0);
    assert_true(penalised.out_len != greedy.out_len || memcmp(penalised.out, greedy.out, greedy.out_len) != 0);
    test_run_free(&greedy);
    test_run_free(&k1);
    test_run_free(&penalised);
}

/* --verbose: the model line and the seed; without -s the seed differs
 * between two runs started at once. */
static void test_verbose_and_seed(void **state) {
    (void)state;
    need_model();
    test_require_model("stories260K_q80_gs4.bin");
    test_run a, b;
    run(&a, NULL, model, "-z", tokenizer, "--no-timer", "-n", "4", "--verbose", NULL);
    run(&b, NULL, model, "-z", tokenizer, "--no-timer", "-n", "4", "--verbose", NULL);
    assert_int_equal(a.status, 0);
    assert_non_null(strstr(a.err, "llama2-model format=\"v0 fp32\" dim=64 hidden_dim=172 layers=5 heads=8 kv_heads=4 "
                                  "vocab=512 context=512 seq_len=512 group_size=0 parameters=260032 "
                                  "file_bytes=1056540\n"));
    char kernels[128];
    snprintf(kernels, sizeof kernels, "llama2-kernels level=%s table=%s\n", llama2_kernels_name(), llama2_kernels_name());
    assert_non_null(strstr(a.err, kernels));
    const char *sa = strstr(a.err, "llama2-seed seed="), *sb = strstr(b.err, "llama2-seed seed=");
    assert_non_null(sa);
    assert_non_null(sb);
    unsigned long long seed_a = strtoull(sa + 17, NULL, 10), seed_b = strtoull(sb + 17, NULL, 10);
    assert_true(seed_a != 0 && seed_a != seed_b);
    test_run_free(&a);
    test_run_free(&b);

    /* The printed seed, given back with -s, gives the same text. */
    char seed_text[32];
    test_run c, d;
    run(&c, NULL, model, "-z", tokenizer, "--no-timer", "-n", "32", "--verbose", NULL);
    snprintf(seed_text, sizeof seed_text, "%llu", strtoull(strstr(c.err, "seed=") + 5, NULL, 10));
    run(&d, NULL, model, "-z", tokenizer, "--no-timer", "-n", "32", "-s", seed_text, NULL);
    expect_same("the printed seed", &c, &d);
    test_run_free(&c);
    test_run_free(&d);

    test_run q;
    run(&q, NULL, test_model_path("stories260K_q80_gs4.bin"), "-z", tokenizer, "--no-timer", "-n", "4",
        "--verbose", "-s", "1", NULL);
    assert_non_null(strstr(q.err, "format=\"v2 int8 (Q8_0)\""));
    assert_non_null(strstr(q.err, "group_size=4"));
    snprintf(kernels, sizeof kernels, "llama2-kernels level=%s table=%s%s\n", llama2_kernels_name(),
             llama2_kernels_name(), strcmp(llama2_kernels_name(), "scalar") ? "-exact" : "");
    assert_non_null(strstr(q.err, kernels));
    assert_non_null(strstr(q.err, "llama2-seed seed=1\n"));
    test_run_free(&q);
}

static void test_version(void **state) {
    (void)state;
    test_run r;
    run(&r, NULL, "--version", NULL);
    assert_int_equal(r.status, 0);
    char expected[256];
    snprintf(expected, sizeof expected, "llama2 %s\nbackends: cpu", LLAMA2_VERSION);
    assert_int_equal(strncmp(r.out, expected, strlen(expected)), 0);
    snprintf(expected, sizeof expected, "\nkernels: %s (chosen on this CPU)\n", llama2_kernels_name());
    assert_non_null(strstr(r.out, expected));
    test_run_free(&r);
}

/* The tokenizer: a hint when the default file is missing; a warning, then
 * the text, when the tokenizer has more tokens than the model. */
static void test_tokenizer_messages(void **state) {
    (void)state;
    need_model();
    test_require_model("tokenizer.bin");
    test_run r;
    char *argv[] = {(char *)test_llama2_bin(), model, "-n", "4", NULL};
    test_run_program(argv, tmp_dir, NULL, 0, &r);
    assert_int_equal(r.status, 1);
    assert_string_equal(r.err,
                        "llama2: tokenizer.bin: cannot open: No such file or directory (pass the model's tokenizer "
                        "with -z)\n");
    test_run_free(&r);

    run(&r, NULL, model, "-z", tokenizer32k, "-t", "0", "-n", "4", "--no-timer", NULL);
    assert_int_equal(r.status, 0);
    assert_true(r.out_len > 1);
    char expected[8192];
    snprintf(expected, sizeof expected,
             "llama2: %s: warning: the tokenizer has 32000 tokens, the model 512; using the first 512 (is it this "
             "model's tokenizer?)\n",
             tokenizer32k);
    assert_string_equal(r.err, expected);
    test_run_free(&r);
}

/* --grammar and --grammar-file: the text after the prompt is in the
 * language; a bad grammar is one line with its position, status 2. */
static void test_grammar(void **state) {
    (void)state;
    need_model();
    test_run r;
    for (int seed = 1; seed <= 10; seed++) {
        char s[16];
        snprintf(s, sizeof s, "%d", seed);
        run(&r, NULL, model, "-z", tokenizer, "--no-timer", "-s", s, "-i", "Is it? ", "--grammar",
            "root ::= \"yes\" | \"no\"", NULL);
        assert_int_equal(r.status, 0);
        if (strcmp(r.out, "Is it? yes\n") != 0 && strcmp(r.out, "Is it? no\n") != 0) fail_msg("'%s'", r.out);
        test_run_free(&r);
    }
    char gfile[4200];
    snprintf(gfile, sizeof gfile, "%s/list.gbnf", tmp_dir);
    const char *list = "# a list of small numbers\nroot ::= \"[\" num (\", \" num){0,3} \"]\"\nnum ::= [0-9]{1,3}\n";
    test_write_file(gfile, list, strlen(list), 0644);
    run(&r, NULL, model, "-z", tokenizer, "--no-timer", "-s", "3", "--grammar-file", gfile, NULL);
    assert_int_equal(r.status, 0);
    llama2_grammar *g = NULL;
    assert_int_equal(llama2_grammar_parse(list, strlen(list), &g, NULL), LLAMA2_OK);
    assert_true(r.out_len > 1 && r.out[r.out_len - 1] == '\n');
    assert_int_equal(llama2_grammar_match(g, r.out, r.out_len - 1), 1);
    llama2_grammar_free(g);
    test_run_free(&r);

    const char *bad = "root ::= num\nnum ::= [0-9\n";
    test_write_file(gfile, bad, strlen(bad), 0644);
    run(&r, NULL, model, GREEDY, "--grammar-file", gfile, NULL);
    assert_int_equal(r.status, 2);
    char expected[8300];
    snprintf(expected, sizeof expected, "llama2: %s: 2:9: unbalanced '[' (the class does not end on its line)\n", gfile);
    assert_string_equal(r.err, expected);
    assert_string_equal(r.out, "");
    test_run_free(&r);
    run(&r, NULL, model, GREEDY, "--grammar", "root ::= foo", NULL);
    assert_int_equal(r.status, 2);
    assert_string_equal(r.err, "llama2: --grammar: 1:10: unknown rule 'foo'\n");
    test_run_free(&r);
    run(&r, NULL, model, GREEDY, "--grammar", "root ::= \"x\"", "--grammar-file", gfile, NULL);
    assert_int_equal(r.status, 2);
    assert_string_equal(r.err, "llama2: --grammar-file: --grammar gives the grammar already (use one of them)\n");
    test_run_free(&r);
    run(&r, NULL, model, GREEDY, "-m", "chat", "--grammar", "root ::= \"x\"", NULL);
    assert_int_equal(r.status, 2);
    assert_string_equal(r.err, "llama2: --grammar: a grammar constrains generate mode, not chat\n");
    test_run_free(&r);
}

/* --json-schema and --json-schema-file (where the program has the
 * converter: it says so otherwise). */
static void test_json_schema(void **state) {
    (void)state;
    need_model();
    test_run r;
    const char *schema = "{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"integer\",\"minimum\":1,"
                         "\"maximum\":20},\"ok\":{\"type\":\"boolean\"}},\"required\":[\"n\",\"ok\"],"
                         "\"additionalProperties\":false}";
    run(&r, NULL, model, "-z", tokenizer, "--no-timer", "-s", "4", "--json-schema", schema, NULL);
    if (r.status == 2 && strstr(r.err, "built without JSON Schema support")) {
        assert_string_equal(r.err, "llama2: --json-schema: this llama2 was built without JSON Schema support (jansson, "
                                   "libjansson-dev, was not installed)\n");
        test_run_free(&r);
        print_message("skipped: llama2 was built without jansson (no --json-schema)\n");
        skip();
    }
    assert_int_equal(r.status, 0);
    /* {"n": 1..20, "ok": true|false} in that order, JSON whitespace between */
    int n = -1, ok = -1;
    char rest[8];
    char *squeezed = malloc(r.out_len + 1);
    size_t k = 0;
    for (size_t i = 0; i < r.out_len; i++)
        if (!strchr(" \t\n", r.out[i])) squeezed[k++] = r.out[i];
    squeezed[k] = 0;
    if (sscanf(squeezed, "{\"n\":%d,\"ok\":%5[a-z]}", &n, rest) == 2) ok = !strcmp(rest, "true") || !strcmp(rest, "false");
    if (!(n >= 1 && n <= 20 && ok == 1)) fail_msg("'%s'", r.out);
    free(squeezed);
    test_run_free(&r);

    char sfile[4200];
    snprintf(sfile, sizeof sfile, "%s/schema.json", tmp_dir);
    const char *bad = "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\",\"pattern\":\"x\"}}}\n";
    test_write_file(sfile, bad, strlen(bad), 0644);
    run(&r, NULL, model, GREEDY, "--json-schema-file", sfile, NULL);
    assert_int_equal(r.status, 2);
    char expected[8300];
    snprintf(expected, sizeof expected, "llama2: %s: #/properties/a: unsupported keyword 'pattern'\n", sfile);
    assert_string_equal(r.err, expected);
    test_run_free(&r);
    run(&r, NULL, model, GREEDY, "--json-schema", "{\"type\":", NULL);
    assert_int_equal(r.status, 2);
    assert_string_equal(r.err, "llama2: --json-schema: 1:8: unexpected token near end of file\n");
    test_run_free(&r);
    run(&r, NULL, model, GREEDY, "--json-schema", "{}", "--grammar", "root ::= \"x\"", NULL);
    assert_int_equal(r.status, 2);
    assert_string_equal(r.err, "llama2: --grammar: --json-schema gives the grammar already (use one of them)\n");
    test_run_free(&r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_schema),
        cmocka_unit_test(test_grammar),
        cmocka_unit_test(test_prompt_file),      cmocka_unit_test(test_context),
        cmocka_unit_test(test_stop),             cmocka_unit_test(test_sampler_flags),
        cmocka_unit_test(test_verbose_and_seed), cmocka_unit_test(test_version),
        cmocka_unit_test(test_tokenizer_messages),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
