/*
 * The llama2 program's prompts, context and messages, run as a user would
 * ($LLAMA2_BIN, models in $LLAMA2_MODELS: a test whose files are absent is
 * skipped by name): a prompt from a file and from
 * standard input, stop strings, --ctx (the same text in a shorter context,
 * and less memory), the sampler flags, --verbose, --version, the seed, the
 * messages about the tokenizer, numbers out of range and --threads above
 * the processors online.
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
#include "numbers.h"
#include "platform/platform.h"
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

/* A file of another kind given as the model or as the tokenizer: the
 * message says what the file is and what to do (a GGUF file goes to the
 * GGUF reader, which says what it lacks). */
static void test_wrong_file_kinds(void **state) {
    (void)state;
    need_model();
    const char *sentencepiece = test_require_model("tokenizer.model");
    char gguf[4200], expected[8192];
    snprintf(gguf, sizeof gguf, "%s/model.gguf", tmp_dir);
    unsigned char head[64] = {'G', 'G', 'U', 'F', 3};
    test_write_file(gguf, head, sizeof head, 0644);
    test_run r;
    run(&r, NULL, gguf, "-z", tokenizer, NULL);
    assert_int_equal(r.status, 1);
    snprintf(expected, sizeof expected,
             "llama2: %s: GGUF: missing the key general.architecture\n", gguf);
    assert_string_equal(r.err, expected);
    test_run_free(&r);

    run(&r, NULL, tokenizer, "-z", tokenizer, NULL);
    assert_int_equal(r.status, 1);
    snprintf(expected, sizeof expected,
             "llama2: %s: a llama2.c tokenizer (tokenizer.bin), not a model: give the model's checkpoint, and this "
             "file as the tokenizer (-z)\n",
             tokenizer);
    assert_string_equal(r.err, expected);
    test_run_free(&r);

    run(&r, NULL, sentencepiece, NULL);
    assert_int_equal(r.status, 1);
    snprintf(expected, sizeof expected,
             "llama2: %s: a SentencePiece tokenizer.model, not a model: give the model's checkpoint, and as the "
             "tokenizer (-z) the tokenizer.bin that `llama2-convert tokenizer.model tokenizer.bin` makes of this "
             "file\n",
             sentencepiece);
    assert_string_equal(r.err, expected);
    test_run_free(&r);

    run(&r, NULL, model, "-z", sentencepiece, NULL);
    assert_int_equal(r.status, 1);
    snprintf(expected, sizeof expected,
             "llama2: %s: a SentencePiece tokenizer.model, not a llama2.c tokenizer: `llama2-convert tokenizer.model "
             "tokenizer.bin` makes one of it\n",
             sentencepiece);
    assert_string_equal(r.err, expected);
    test_run_free(&r);

    run(&r, NULL, model, "-z", model, NULL);
    assert_int_equal(r.status, 1);
    snprintf(expected, sizeof expected,
             "llama2: %s: a llama2.c checkpoint (version 0), not a tokenizer: the tokenizer is the model's "
             "tokenizer.bin\n",
             model);
    assert_string_equal(r.err, expected);
    test_run_free(&r);
}

/* Chat replies end at BOS as in llama2-server (here with the template
 * "none": the model ends its story with BOS, the reply ends there), and a
 * reply without an end is capped at 256 tokens unless --reply-tokens says
 * otherwise. */
static void test_chat_reply_ends(void **state) {
    (void)state;
    need_model();
    test_run r;
    run(&r, "Once upon a time\n", model, GREEDY, "-m", "chat", "--chat-template", "none", "-y", "", NULL);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out,
                        "User: Assistant: One day, a little girl named Lily went to the park with her mom. She saw a "
                        "big, red ball and wanted to play with it. She asked her mom, \"Can I play with it?\" Her mom "
                        "said, \"Yes, it is.\"\nLily was very excited to see the ball. She put the ball in the ball and "
                        "put it in the ball. But then, she saw a big ball. The ball was not scared. It was a big ball. "
                        "The ball was not scared.\nLily wanted to help the ball. She said, \"I want to play with the "
                        "ball. I will help you.\" The ball was happy and said, \"Yes, I will help you.\" The ball was "
                        "happy and they played together. They played together every day.\nUser: \n");
    test_run_free(&r);

    const char *turns = "You are a storyteller.\nTell me a story about a cat.\n";
    test_run capped, by_default, uncapped;
    run(&by_default, turns, model, GREEDY, "-m", "chat", NULL);
    run(&capped, turns, model, GREEDY, "-m", "chat", "--reply-tokens", "256", NULL);
    run(&uncapped, turns, model, GREEDY, "-m", "chat", "--reply-tokens", "0", NULL);
    expect_same("the default cap and --reply-tokens 256", &by_default, &capped);
    assert_int_equal(uncapped.status, 0);
    assert_true(uncapped.out_len > capped.out_len);
    assert_memory_equal(uncapped.out, capped.out, capped.out_len - strlen("\nUser: \n"));
    test_run_free(&by_default);
    test_run_free(&capped);
    test_run_free(&uncapped);
}

/* The number reader at its edges: what is a number, what is out of range. */
static void test_number_reader(void **state) {
    (void)state;
    long l = 7;
    assert_int_equal(cli_read_long("+5", 0, 10, &l), CLI_NUMBER_OK);
    assert_int_equal(l, 5);
    assert_int_equal(cli_read_long("-0", 0, 10, &l), CLI_NUMBER_OK);
    assert_int_equal(l, 0);
    const char *not_numbers[] = {"", " 5", "5 ", "0x10", "1e3", "-", "+", "5k", "--5"};
    for (size_t i = 0; i < sizeof not_numbers / sizeof not_numbers[0]; i++)
        assert_int_equal(cli_read_long(not_numbers[i], 0, 10, &l), CLI_NUMBER_NOT_A_NUMBER);
    assert_int_equal(cli_read_long("11", 0, 10, &l), CLI_NUMBER_OUT_OF_RANGE);
    assert_int_equal(cli_read_long("-1", 0, 10, &l), CLI_NUMBER_OUT_OF_RANGE);
    assert_int_equal(cli_read_long("99999999999999999999", 0, 10, &l), CLI_NUMBER_OUT_OF_RANGE);
    assert_int_equal(l, 0); /* unchanged by a failure */
    int i = 0;
    assert_int_equal(cli_read_int("2147483647", 0, 0x7fffffff, &i), CLI_NUMBER_OK);
    assert_int_equal(i, 0x7fffffff);
    assert_int_equal(cli_read_int("2147483648", 0, 0x7fffffff, &i), CLI_NUMBER_OUT_OF_RANGE);
    uint64_t u = 0;
    assert_int_equal(cli_read_u64("18446744073709551615", &u), CLI_NUMBER_OK);
    assert_true(u == UINT64_MAX);
    assert_int_equal(cli_read_u64("18446744073709551616", &u), CLI_NUMBER_OUT_OF_RANGE);
    assert_int_equal(cli_read_u64("-1", &u), CLI_NUMBER_OUT_OF_RANGE);
    assert_int_equal(cli_read_u64("-0", &u), CLI_NUMBER_OK);
    assert_true(u == 0);
    float f = 0;
    assert_int_equal(cli_read_float("0.5", 0, 1, &f), CLI_NUMBER_OK);
    assert_true(f == 0.5f);
    assert_int_equal(cli_read_float("1e-50", 0, 1, &f), CLI_NUMBER_OK); /* too small to tell from 0 */
    assert_true(f < 1e-37f);
    assert_int_equal(cli_read_float("nan", 0, 1, &f), CLI_NUMBER_NOT_A_NUMBER);
    assert_int_equal(cli_read_float(" 1", 0, 1, &f), CLI_NUMBER_NOT_A_NUMBER);
    assert_int_equal(cli_read_float("inf", 0, 1, &f), CLI_NUMBER_OUT_OF_RANGE);
    assert_int_equal(cli_read_float("1e39", -3.4e38f, 3.4e38f, &f), CLI_NUMBER_OUT_OF_RANGE);
    assert_int_equal(cli_read_float("1.5", 0, 1, &f), CLI_NUMBER_OUT_OF_RANGE);
}

/* A number out of its option's range says the range, in the same words for
 * every option (numbers.h); one that is not a number says what is wanted. */
static void test_range_messages(void **state) {
    (void)state;
    const struct {
        const char *flag, *value, *line;
    } cases[] = {
        {"-n", "99999999999", "llama2: -n: 99999999999 is out of range: must be an integer from 0 to 2147483647\n"},
        {"-t", "1e400", "llama2: -t: 1e400 is out of range: must be a number from 0 to 3.40282e+38\n"},
        {"--top-p", "1.5", "llama2: --top-p: 1.5 is out of range: must be a number from 0 to 1\n"},
        {"-s", "18446744073709551616",
         "llama2: -s: 18446744073709551616 is out of range: must be an integer from 0 to 18446744073709551615\n"},
        {"--threads", "1025", "llama2: --threads: 1025 is out of range: must be an integer from 1 to 1024\n"},
        {"--presence-penalty", "-1e39",
         "llama2: --presence-penalty: -1e39 is out of range: must be a number from -3.40282e+38 to 3.40282e+38\n"},
        {"-n", "ten", "llama2: -n: steps must be a non-negative integer, got 'ten'\n"},
        {"-n", " 5", "llama2: -n: steps must be a non-negative integer, got ' 5'\n"},
        {"-t", "nan", "llama2: -t: temperature must be a non-negative number, got 'nan'\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        test_run r;
        run(&r, NULL, "model.bin", cases[i].flag, cases[i].value, NULL);
        assert_int_equal(r.status, 2);
        assert_string_equal(r.err, cases[i].line);
        assert_int_equal(r.out_len, 0);
        test_run_free(&r);
    }
}

/* More threads than processors: one warning before the text, which is the
 * same as with one thread. */
static void test_threads_above_processors(void **state) {
    (void)state;
    need_model();
    const int online = l2_processor_count();
    if (online >= 1024) {
        print_message("skipped: %d processors online, more than --threads takes\n", online);
        skip();
    }
    char threads[16];
    snprintf(threads, sizeof threads, "%d", online + 1);
    test_run r, one;
    run(&r, NULL, model, GREEDY, "-n", "16", "--threads", threads, NULL);
    run(&one, NULL, model, GREEDY, "-n", "16", "--threads", "1", NULL);
    expect_same("--threads above the processors and --threads 1", &r, &one);
    char expected[512];
    test_threads_warning(expected, sizeof expected, "llama2", online + 1);
    assert_string_equal(r.err, expected);
    assert_string_equal(one.err, "");
    test_run_free(&r);
    test_run_free(&one);
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
        cmocka_unit_test(test_tokenizer_messages), cmocka_unit_test(test_wrong_file_kinds),
        cmocka_unit_test(test_chat_reply_ends),   cmocka_unit_test(test_range_messages),
        cmocka_unit_test(test_number_reader),
        cmocka_unit_test(test_threads_above_processors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
