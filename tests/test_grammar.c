/*
 * GBNF grammars: the parser's exact errors (hostile sizes included), the
 * matcher on known languages, and the sampler stage: over many seeds at
 * temperature 1 every text drawn is a text of the language, with the 512-
 * and the 32,000-token vocabularies (random logits), and in generation with
 * stories260K; a grammar that allows everything leaves the draws alone.
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

#include "write/checkpoint_writer.h"
#include "llama2.h"
#include "support.h"

/* ------------------------------------------------------------ helpers */

static llama2_grammar *parse_ok(const char *text) {
    llama2_grammar *g = NULL;
    llama2_error err = {0};
    llama2_status s = llama2_grammar_parse(text, strlen(text), &g, &err);
    if (s != LLAMA2_OK) fail_msg("%s: %s", text, err.message);
    return g;
}

static void expect_error(const char *text, size_t len, const char *message) {
    llama2_grammar *g = NULL;
    llama2_error err = {0};
    assert_int_equal(llama2_grammar_parse(text, len, &g, &err), LLAMA2_E_INVALID);
    assert_null(g);
    assert_string_equal(err.message, message);
}
#define EXPECT_ERROR(text, message) expect_error(text, strlen(text), message)

static int matches(const llama2_grammar *g, const char *text) {
    return llama2_grammar_match(g, text, strlen(text));
}

/* ------------------------------------------------------------ parsing */

static void test_errors(void **state) {
    (void)state;
    EXPECT_ERROR("root ::= foo", "1:10: unknown rule 'foo'");
    EXPECT_ERROR("root ::= a\na ::= \"x\" b", "2:11: unknown rule 'b'");
    EXPECT_ERROR("root ::= (\"a\"", "1:10: unbalanced '(' (no ')' closes it)");
    EXPECT_ERROR("root ::= \"a\")", "1:13: unbalanced ')'");
    EXPECT_ERROR("root ::= [a-z", "1:10: unbalanced '[' (the class does not end on its line)");
    EXPECT_ERROR("root ::= \"abc", "1:10: unbalanced '\"' (the string does not end on its line)");
    EXPECT_ERROR("root ::= \"a\" {2", "1:14: unbalanced '{' (expected '}')");
    EXPECT_ERROR("root ::= \"a\" | ", "1:16: empty alternative (write \"\" for the empty string)");
    EXPECT_ERROR("root ::= \"a\" | | \"b\"", "1:16: empty alternative (write \"\" for the empty string)");
    EXPECT_ERROR("root ::= ()", "1:11: empty alternative (write \"\" for the empty string)");
    EXPECT_ERROR("root ::=", "1:9: empty alternative (write \"\" for the empty string)");
    EXPECT_ERROR("root ::= \"\\q\"", "1:11: bad escape: \\q");
    EXPECT_ERROR("root ::= \"\\x4\"", "1:11: bad escape: \\x needs 2 hex digits");
    EXPECT_ERROR("root ::= \"\\uD800\"", "1:11: bad escape: U+D800 is not a character");
    EXPECT_ERROR("root ::= [z-a]", "1:11: bad range: its end comes before its start");
    EXPECT_ERROR("root ::= * \"a\"", "1:10: '*' repeats nothing");
    EXPECT_ERROR("root ::= \"a\"{3,2}", "1:13: bad repetition: {m,n} with n < m");
    EXPECT_ERROR("root ::= \"a\"\nroot ::= \"b\"", "2:1: rule 'root' defined twice");
    EXPECT_ERROR("a ::= \"x\"", "1:10: no rule named 'root' (where the text starts)");
    EXPECT_ERROR("root ::= \"a\" other ::= \"b\"", "1:14: a rule must start on a new line");
    EXPECT_ERROR("root ::= \"a\"\n| \"b\"", "2:1: expected a rule name");
    EXPECT_ERROR("root \"a\"", "1:6: expected '::=' after the rule name");
    EXPECT_ERROR("root ::= \"a\" ]", "1:14: unexpected ']'");
    EXPECT_ERROR("root ::= expr\nexpr ::= expr \"+\" \"1\" | \"1\"",
                 "2:1: left recursion: rule 'expr' can reach itself before matching any character");
    EXPECT_ERROR("root ::= x \"a\"\nx ::= \"\" | root",
                 "1:1: left recursion: rule 'root' can reach itself before matching any character");
    EXPECT_ERROR("root ::= (\"a\"?)*",
                 "1:16: left recursion: rule 'root' can reach itself before matching any character");
    expect_error("root ::= \"\xff\"", 13, "1:11: invalid UTF-8");
}

/* Sizes that would take unbounded memory or time are refused. */
static void test_hostile_sizes(void **state) {
    (void)state;
    EXPECT_ERROR("root ::= \"a\"{0,1000000}", "1:13: repetition count larger than 100000");
    EXPECT_ERROR("root ::= \"a\"{0,100000} \"b\"{0,100000} \"c\"{0,100000}", "1:41: the grammar is too large (more than 1048576 elements)");
    /* a million alternatives */
    size_t n = 1000000;
    char *text = malloc(16 + 6 * n);
    assert_non_null(text);
    size_t len = (size_t)sprintf(text, "root ::= \"a\"");
    for (size_t i = 1; i < n; i++) len += (size_t)sprintf(text + len, " | \"a\"");
    llama2_grammar *g = NULL;
    llama2_error err = {0};
    assert_int_equal(llama2_grammar_parse(text, len, &g, &err), LLAMA2_E_INVALID);
    assert_non_null(strstr(err.message, ": the grammar is too large (more than 1048576 elements)"));
    /* deep nesting */
    len = (size_t)sprintf(text, "root ::= ");
    for (int i = 0; i < 200; i++) text[len++] = '(';
    len += (size_t)sprintf(text + len, "\"a\"");
    for (int i = 0; i < 200; i++) text[len++] = ')';
    expect_error(text, len, "1:138: groups nested more than 128 deep");
    /* a long chain of rules is fine (no recursion in the checks) */
    len = 0;
    for (int i = 0; i < 100000; i++) len += (size_t)sprintf(text + len, "r%d ::= \"x\" r%d\n", i, i + 1);
    len += (size_t)sprintf(text + len, "r100000 ::= \"y\"\nroot ::= r0\n");
    g = parse_ok(text);
    llama2_grammar_free(g);
    free(text);
}

/* ------------------------------------------------------------ matching */

static void test_languages(void **state) {
    (void)state;
    llama2_grammar *g = parse_ok("root ::= \"yes\" | \"no\"");
    assert_int_equal(matches(g, "yes"), 1);
    assert_int_equal(matches(g, "no"), 1);
    assert_int_equal(matches(g, "ye"), 0);
    assert_int_equal(matches(g, "yess"), 0);
    assert_int_equal(matches(g, ""), 0);
    llama2_grammar_free(g);

    g = parse_ok("# a number\nroot ::= \"-\"? [0-9]+ (\".\" [0-9]+)?  # and a comment\n");
    assert_int_equal(matches(g, "12"), 1);
    assert_int_equal(matches(g, "-0.5"), 1);
    assert_int_equal(matches(g, "1."), 0);
    assert_int_equal(matches(g, "--1"), 0);
    llama2_grammar_free(g);

    g = parse_ok("root ::= list\nlist ::= \"[\" (\n  item (\",\" item)*\n)? \"]\"\nitem ::= [0-9] | list\n");
    assert_int_equal(matches(g, "[]"), 1);
    assert_int_equal(matches(g, "[1,[2,[]],3]"), 1);
    assert_int_equal(matches(g, "[1,]"), 0);
    assert_int_equal(matches(g, "[[1]"), 0);
    llama2_grammar_free(g);

    g = parse_ok("root ::= \"a\"{2,3} \"b\"{2} \"c\"{1,} \"d\"{0,1} \"e\"?");
    assert_int_equal(matches(g, "aabbc"), 1);
    assert_int_equal(matches(g, "aaabbcccde"), 1);
    assert_int_equal(matches(g, "abbc"), 0);
    assert_int_equal(matches(g, "aaaabbc"), 0);
    assert_int_equal(matches(g, "aabbbc"), 0);
    assert_int_equal(matches(g, "aabbcdd"), 0);
    llama2_grammar_free(g);

    /* characters beyond ASCII, classes, negation, `.` and escapes */
    g = parse_ok("root ::= [α-ω]+ \" \" [^a] \" \" . \"\\x41\\u00e9\\U0001F600\\n\\t\\\\\\\"\\[\\]\"");
    assert_int_equal(matches(g, "αβγ é 😀Aé😀\n\t\\\"[]"), 1);
    assert_int_equal(matches(g, "αβγ € x" "Aé😀\n\t\\\"[]"), 1);
    assert_int_equal(matches(g, "αβγ a xAé😀\n\t\\\"[]"), 0);
    assert_int_equal(matches(g, "abc é xAé😀\n\t\\\"[]"), 0);
    assert_int_equal(matches(g, "αβγ \xce xAé😀\n\t\\\"[]"), 0); /* a character cut short */
    llama2_grammar_free(g);

    g = parse_ok("root ::= [^\"\\\\]*");
    assert_int_equal(matches(g, "any text: ü 中文 😀"), 1);
    assert_int_equal(matches(g, "a\"b"), 0);
    assert_int_equal(matches(g, "\xed\xa0\x80"), 0); /* a surrogate is not UTF-8 */
    assert_int_equal(matches(g, "\xc0\x80"), 0);     /* an overlong form neither */
    llama2_grammar_free(g);

    /* an empty class matches nothing */
    g = parse_ok("root ::= \"a\" []? | [^\\x00-\\U0010FFFF] \"b\"");
    assert_int_equal(matches(g, "a"), 1);
    assert_int_equal(matches(g, "b"), 0);
    llama2_grammar_free(g);

    /* an ambiguous grammar stays small: the same parse is kept once */
    g = parse_ok("root ::= (\"a\" | \"a\" | [a])*");
    char text[2001];
    memset(text, 'a', 2000);
    text[2000] = 0;
    assert_int_equal(matches(g, text), 1);
    llama2_grammar_free(g);
}

/* ------------------------------------------------------------ sampling */

static uint64_t rng = 0x1234567;
static float random_logit(void) { return (float)(test_rng_next(&rng) % 10000) / 1000.0f - 5.0f; }

/* Draws a text with random logits until BOS or EOS (or max tokens), the
 * grammar on; returns the text's bytes (malloc'd) and sets *ended. */
static char *draw_text(const llama2_tokenizer *tok, const llama2_grammar *g, uint64_t seed, int max_tokens,
                       int *ended) {
    const int vocab = llama2_tokenizer_vocab_size(tok);
    llama2_sampler_options o = llama2_sampler_defaults();
    o.seed = seed;
    o.top_p = 1.0f;
    llama2_sampler *s = NULL;
    llama2_error err = {0};
    assert_int_equal(llama2_sampler_create(vocab, &o, &s, &err), LLAMA2_OK);
    assert_int_equal(llama2_sampler_set_grammar(s, g, tok, &err), LLAMA2_OK);
    llama2_sampler_accept(s, LLAMA2_TOKEN_BOS);
    float *logits = malloc((size_t)vocab * sizeof *logits);
    size_t cap = 4096, len = 0;
    char *text = malloc(cap);
    assert_true(logits && text);
    int prev = LLAMA2_TOKEN_BOS;
    *ended = 0;
    for (int i = 0; i < max_tokens; i++) {
        for (int k = 0; k < vocab; k++) logits[k] = random_logit();
        /* ends made unlikely, so that texts are not all cut short */
        logits[LLAMA2_TOKEN_EOS] -= 3.0f;
        int t = llama2_sampler_sample(s, logits);
        if (t == LLAMA2_TOKEN_BOS || t == LLAMA2_TOKEN_EOS) {
            *ended = 1;
            break;
        }
        size_t n;
        const char *piece = llama2_token_piece(tok, prev, t, &n);
        assert_true(n > 0);
        assert_true(len + n < cap);
        memcpy(text + len, piece, n);
        len += n;
        llama2_sampler_accept(s, t);
        prev = t;
    }
    text[len] = 0;
    free(logits);
    llama2_sampler_destroy(s);
    return text;
}

/* The languages the sampling tests use, each with its own checker. */
static int is_yes_no(const char *s) { return !strcmp(s, "yes") || !strcmp(s, "no"); }

static int is_number(const char *s) {
    if (*s == '-') s++;
    int digits = 0;
    while (*s >= '0' && *s <= '9') s++, digits++;
    if (digits < 1 || digits > 6) return 0;
    if (*s == '.') {
        s++;
        digits = 0;
        while (*s >= '0' && *s <= '9') s++, digits++;
        if (digits < 1 || digits > 6) return 0;
    }
    return *s == 0;
}

static const char *list_at(const char *s, int depth) {
    if (*s != '[' || depth > 3) return NULL;
    s++;
    if (*s == ']') return s + 1;
    for (int items = 1; items <= 3; items++) {
        if (*s >= '0' && *s <= '9') {
            s++;
        } else {
            s = list_at(s, depth + 1);
            if (!s) return NULL;
        }
        if (*s == ']') return s + 1;
        if (*s != ',') return NULL;
        s++;
    }
    return NULL;
}
static int is_list(const char *s) {
    const char *end = list_at(s, 1);
    return end && *end == 0;
}

/* One to five Greek small letters (two UTF-8 bytes each: with tok512 only
 * byte tokens spell them, a character split across two tokens). */
static int is_greek(const char *s) {
    int n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p += 2, n++) {
        unsigned c = p[0] == 0xCE ? p[1] : p[0] == 0xCF ? 0x100u + p[1] : 0;
        if (!((c >= 0xB1 && c <= 0xBF) || (c >= 0x180 && c <= 0x189))) return 0; /* U+03B1..U+03C9 */
    }
    return n >= 1 && n <= 5;
}

typedef struct language {
    const char *grammar;
    int (*check)(const char *);
} language;

static const language languages[] = {
    {"root ::= \"yes\" | \"no\"", is_yes_no},
    {"root ::= \"-\"? [0-9]{1,6} (\".\" [0-9]{1,6})?", is_number},
    {"root ::= l1\nl1 ::= \"[\" (i1 (\",\" i1){0,2})? \"]\"\ni1 ::= [0-9] | l2\n"
     "l2 ::= \"[\" (i2 (\",\" i2){0,2})? \"]\"\ni2 ::= [0-9] | l3\nl3 ::= \"[\" ([0-9] (\",\" [0-9]){0,2})? \"]\"\n",
     is_list},
    {"root ::= [α-ω]{1,5}", is_greek},
};

static void sample_languages(const char *tokenizer_name, int seeds) {
    const char *path = test_require_model(tokenizer_name);
    llama2_tokenizer *tok = NULL;
    llama2_error err = {0};
    assert_int_equal(llama2_tokenizer_open(path, 0, &tok, &err), LLAMA2_OK);
    for (size_t l = 0; l < sizeof languages / sizeof languages[0]; l++) {
        llama2_grammar *g = parse_ok(languages[l].grammar);
        int complete = 0;
        for (int seed = 1; seed <= seeds; seed++) {
            int ended;
            char *text = draw_text(tok, g, (uint64_t)seed, 400, &ended);
            /* a text the grammar ended is in the language; ended or not, it
             * is a prefix the grammar accepts (the matcher's own check) */
            if (ended) {
                if (!languages[l].check(text)) fail_msg("%s, seed %d: \"%s\"", tokenizer_name, seed, text);
                assert_int_equal(llama2_grammar_match(g, text, strlen(text)), 1);
                complete++;
            }
            free(text);
        }
        assert_true(complete >= seeds / 2); /* most texts end */
        llama2_grammar_free(g);
    }
    llama2_tokenizer_close(tok);
}

static void test_sampling_512(void **state) {
    (void)state;
    sample_languages("tok512.bin", 100);
}

static void test_sampling_32000(void **state) {
    (void)state;
    sample_languages("tokenizer.bin", 30);
}

/* ------------------------------------------------------------ generation */

/* The generation tests' files, asked for before a grammar is parsed (a
 * skip leaves the test at once: what it holds then is never freed). */
static void require_generation_models(void) {
    test_require_model("stories260K.bin");
    test_require_model("tok512.bin");
}

/* llama2_generate on stories260K with a grammar (NULL: none); the text
 * without the final newline. */
static void generate(const llama2_grammar *g, uint64_t seed, const char *prompt, test_text *out, llama2_stats *stats) {
    const char *model_path = test_require_model("stories260K.bin");
    const char *tok_path = test_require_model("tok512.bin");
    llama2_model *model = NULL;
    llama2_tokenizer *tok = NULL;
    llama2_session *session = NULL;
    llama2_sampler *s = NULL;
    llama2_error err = {0};
    assert_int_equal(llama2_model_open(model_path, NULL, &model, &err), LLAMA2_OK);
    assert_int_equal(llama2_tokenizer_open(tok_path, llama2_model_config(model)->vocab_size, &tok, &err), LLAMA2_OK);
    assert_int_equal(llama2_session_create(model, NULL, &session, &err), LLAMA2_OK);
    llama2_sampler_options o = llama2_sampler_defaults();
    o.seed = seed;
    assert_int_equal(llama2_sampler_create(llama2_model_config(model)->vocab_size, &o, &s, &err), LLAMA2_OK);
    if (g) assert_int_equal(llama2_sampler_set_grammar(s, g, tok, &err), LLAMA2_OK);
    memset(out, 0, sizeof *out);
    llama2_io io = {.user = out, .write = test_collect};
    llama2_generate_options go = {.steps = 256};
    assert_int_equal(llama2_generate(session, tok, s, prompt, &go, &io, stats, &err), LLAMA2_OK);
    assert_true(out->len > 0 && out->text[out->len - 1] == '\n');
    out->text[--out->len] = 0;
    llama2_sampler_destroy(s);
    llama2_session_destroy(session);
    llama2_tokenizer_close(tok);
    llama2_model_close(model);
}

static void test_generate_languages(void **state) {
    (void)state;
    require_generation_models();
    for (size_t l = 0; l < sizeof languages / sizeof languages[0]; l++) {
        llama2_grammar *g = parse_ok(languages[l].grammar);
        int complete = 0;
        for (int seed = 1; seed <= 20; seed++) {
            test_text b;
            llama2_stats st;
            generate(g, (uint64_t)seed, "", &b, &st);
            if (st.stop == LLAMA2_STOP_TOKEN) {
                if (!languages[l].check(b.text)) fail_msg("seed %d: \"%s\"", seed, b.text);
                complete++;
            } else {
                assert_int_equal(st.stop, LLAMA2_STOP_LENGTH);
            }
        }
        if (complete < 10) fail_msg("%s: %d of 20 texts complete", languages[l].grammar, complete);
        llama2_grammar_free(g);
    }
}

/* A random model (small, but the 32,000-token vocabulary of tokenizer.bin):
 * its nearly uniform draws are mostly refused, so the masks do the work. */
static void test_generate_random_32000(void **state) {
    (void)state;
    const char *tok_path = test_require_model("tokenizer.bin");
    char dir[4096], path[4200];
    assert_int_equal(test_tmp_dir_create(dir, sizeof dir, "grammar"), 0);
    snprintf(path, sizeof path, "%s/random32k.bin", dir);
    llama2_config c = l2_random_model_config(64, 128, 2, 4, 4, 32000, 512, 1, 0, 0);
    llama2_error err = {0};
    assert_int_equal(l2_write_random_model(path, &c, 11, 0, &err), LLAMA2_OK);
    llama2_model *model = NULL;
    llama2_tokenizer *tok = NULL;
    llama2_session *session = NULL;
    assert_int_equal(llama2_model_open(path, NULL, &model, &err), LLAMA2_OK);
    assert_int_equal(llama2_tokenizer_open(tok_path, 32000, &tok, &err), LLAMA2_OK);
    assert_int_equal(llama2_session_create(model, NULL, &session, &err), LLAMA2_OK);
    for (size_t l = 0; l < sizeof languages / sizeof languages[0]; l++) {
        llama2_grammar *g = parse_ok(languages[l].grammar);
        int complete = 0;
        for (int seed = 1; seed <= 10; seed++) {
            llama2_sampler_options o = llama2_sampler_defaults();
            o.seed = (uint64_t)seed;
            o.top_p = 1.0f;
            llama2_sampler *s = NULL;
            assert_int_equal(llama2_sampler_create(32000, &o, &s, &err), LLAMA2_OK);
            assert_int_equal(llama2_sampler_set_grammar(s, g, tok, &err), LLAMA2_OK);
            test_text b;
            memset(&b, 0, sizeof b);
            llama2_io io = {.user = &b, .write = test_collect};
            llama2_generate_options go = {.steps = 200};
            llama2_stats st;
            assert_int_equal(llama2_generate(session, tok, s, "Data:", &go, &io, &st, &err), LLAMA2_OK);
            llama2_sampler_destroy(s);
            assert_true(b.len > 6 && strncmp(b.text, "Data:", 5) == 0 && b.text[b.len - 1] == '\n');
            b.text[--b.len] = 0;
            if (st.stop == LLAMA2_STOP_TOKEN) {
                if (!languages[l].check(b.text + 5)) fail_msg("seed %d: \"%s\"", seed, b.text);
                complete++;
            }
        }
        if (complete < 5) fail_msg("%s: %d of 10 texts complete", languages[l].grammar, complete);
        llama2_grammar_free(g);
    }
    llama2_session_destroy(session);
    llama2_tokenizer_close(tok);
    llama2_model_close(model);
    test_tmp_dir_remove(dir);
}

/* A grammar that allows any text changes no draw: the drawn token is always
 * allowed, so the generator is never asked twice. */
static void test_permissive_grammar_changes_nothing(void **state) {
    (void)state;
    require_generation_models();
    llama2_grammar *g = parse_ok("root ::= .*");
    for (uint64_t seed = 1; seed <= 5; seed++) {
        test_text with, without;
        llama2_stats a, b;
        generate(g, seed, "Once upon a time", &with, &a);
        generate(NULL, seed, "Once upon a time", &without, &b);
        assert_string_equal(with.text, without.text);
        assert_true(strlen(with.text) > 40);
    }
    llama2_grammar_free(g);
}

/* The same seed gives the same constrained text. */
static void test_seeded(void **state) {
    (void)state;
    require_generation_models();
    llama2_grammar *g = parse_ok(languages[2].grammar);
    test_text x, y;
    llama2_stats a, b;
    generate(g, 7, "Lists:", &x, &a);
    generate(g, 7, "Lists:", &y, &b);
    assert_string_equal(x.text, y.text);
    assert_true(strncmp(x.text, "Lists:", 6) == 0);
    llama2_grammar_free(g);
}

static void test_chat_refuses_a_grammar(void **state) {
    (void)state;
    const char *model_path = test_require_model("stories260K.bin");
    const char *tok_path = test_require_model("tok512.bin");
    llama2_model *model = NULL;
    llama2_tokenizer *tok = NULL;
    llama2_session *session = NULL;
    llama2_sampler *s = NULL;
    llama2_error err = {0};
    assert_int_equal(llama2_model_open(model_path, NULL, &model, &err), LLAMA2_OK);
    assert_int_equal(llama2_tokenizer_open(tok_path, 512, &tok, &err), LLAMA2_OK);
    assert_int_equal(llama2_session_create(model, NULL, &session, &err), LLAMA2_OK);
    assert_int_equal(llama2_sampler_create(512, NULL, &s, &err), LLAMA2_OK);
    llama2_grammar *g = parse_ok("root ::= \"x\"");
    assert_int_equal(llama2_sampler_set_grammar(s, g, tok, &err), LLAMA2_OK);
    llama2_chat_options co = {.system_prompt = "", .user_prompt = "hi"};
    assert_int_equal(llama2_chat(session, tok, s, &co, NULL, NULL, &err), LLAMA2_E_INVALID);
    assert_string_equal(err.message, "a grammar constrains generation, not chat");
    llama2_grammar_free(g);
    llama2_sampler_destroy(s);
    llama2_session_destroy(session);
    llama2_tokenizer_close(tok);
    llama2_model_close(model);
}

/* The distribution under a grammar: only the allowed tokens, renormalised. */
static void test_distribution(void **state) {
    (void)state;
    const char *path = test_require_model("tok512.bin");
    llama2_tokenizer *tok = NULL;
    llama2_error err = {0};
    assert_int_equal(llama2_tokenizer_open(path, 0, &tok, &err), LLAMA2_OK);
    llama2_grammar *g = parse_ok("root ::= [a-c]");
    llama2_sampler_options o = {.temperature = 1.0f};
    llama2_sampler *s = NULL;
    assert_int_equal(llama2_sampler_create(512, &o, &s, &err), LLAMA2_OK);
    assert_int_equal(llama2_sampler_set_grammar(s, g, tok, &err), LLAMA2_OK);
    llama2_sampler_accept(s, 100); /* not BOS: pieces as they are */
    float logits[512], probs[512];
    for (int i = 0; i < 512; i++) logits[i] = (float)(i % 7);
    llama2_sampler_distribution(s, logits, probs);
    float sum = 0.0f;
    int allowed = 0;
    for (int t = 0; t < 512; t++) {
        size_t n;
        const char *piece = llama2_token_piece(tok, 100, t, &n);
        int in = t > 2 && n == 1 && piece[0] >= 'a' && piece[0] <= 'c';
        if (in) allowed++;
        if (!in && probs[t] != 0.0f) fail_msg("token %d ('%.*s') has probability %g", t, (int)n, piece, probs[t]);
        sum += probs[t];
    }
    assert_true(allowed >= 3); /* the letters' own tokens and their byte tokens */
    assert_true(fabsf(sum - 1.0f) < 1e-5f);
    llama2_sampler_destroy(s);
    llama2_grammar_free(g);
    llama2_tokenizer_close(tok);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_hostile_sizes),
        cmocka_unit_test(test_languages),
        cmocka_unit_test(test_sampling_512),
        cmocka_unit_test(test_sampling_32000),
        cmocka_unit_test(test_generate_languages),
        cmocka_unit_test(test_generate_random_32000),
        cmocka_unit_test(test_permissive_grammar_changes_nothing),
        cmocka_unit_test(test_seeded),
        cmocka_unit_test(test_chat_refuses_a_grammar),
        cmocka_unit_test(test_distribution),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
