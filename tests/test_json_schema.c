/*
 * JSON Schema to grammar (src/schema/): the exact errors for what it does
 * not support, and the texts drawn under the grammars of the schemas of
 * tests/json_schemas.json (over 100) at temperature 1, in generation with
 * stories260K and with random logits over the 512- and the 32,000-token
 * vocabularies: every text that ends (the grammar complete) must parse and
 * be valid under its schema, as python3-jsonschema (Draft 2020-12) judges
 * it (tests/validate_json.py; skipped by name without it).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "llama2.h"
#include "schema/json_schema.h"
#include "support.h"

#define PYTHON "/usr/bin/python3"

static void expect_error(const char *schema, const char *message) {
    llama2_grammar *g = NULL;
    llama2_error err = {0};
    llama2_status s = l2_json_schema_grammar(schema, strlen(schema), &g, &err);
    if (s != LLAMA2_E_INVALID || strcmp(err.message, message) != 0)
        fail_msg("%s: status %d, '%s', wanted '%s'", schema, s, err.message, message);
    assert_null(g);
}

static void test_errors(void **state) {
    (void)state;
    expect_error("{\"type\":\"string\",\"pattern\":\"a+\"}", "#: unsupported keyword 'pattern'");
    expect_error("{\"type\":\"object\",\"properties\":{\"age\":{\"type\":\"integer\",\"multipleOf\":2}}}",
                 "#/properties/age: unsupported keyword 'multipleOf'");
    expect_error("{\"type\":\"array\",\"items\":{\"not\":{}}}", "#/items: unsupported keyword 'not'");
    /* A name holding a newline (fuzz_json_schema's find): still one line. */
    expect_error("{\"type\":\"array\",\"items\":{\"\\num\":[1]}}", "#/items: unsupported keyword '?um'");
    expect_error("{\"anyOf\":[{\"type\":\"integer\"},{\"if\":{}}]}", "#/anyOf/1: unsupported keyword 'if'");
    expect_error("{\"type\":\"number\",\"minimum\":0.5}",
                 "#: 'minimum' on a number is not supported (on an integer it is)");
    expect_error("{\"type\":\"string\",\"format\":\"email\"}",
                 "#: unsupported format 'email' (date, time, date-time and uuid are)");
    expect_error("{\"type\":\"string\",\"minimum\":3}", "#: 'minimum' does not apply to type 'string'");
    expect_error("{\"type\":\"integer\",\"minimum\":10,\"maximum\":5}",
                 "#: no integer is between the minimum and the maximum");
    expect_error("{\"type\":\"integer\",\"minimum\":1e20}", "#: 'minimum' beyond 16 digits is not supported");
    expect_error("{\"type\":\"array\",\"maxItems\":1000000}", "#: 'maxItems' above 100000 is not supported");
    expect_error("{\"type\":\"array\",\"minItems\":3,\"maxItems\":2}", "#: 'maxItems' is less than 'minItems'");
    expect_error("{\"type\":\"strng\"}", "#: unknown type 'strng'");
    expect_error("{\"$ref\":\"http://example.com/s.json\"}",
                 "#: '$ref' to 'http://example.com/s.json': only #, #/$defs/NAME and #/definitions/NAME are supported");
    expect_error("{\"$ref\":\"#/$defs/missing\"}", "#: '$ref' to '#/$defs/missing': no such definition");
    expect_error("{\"$ref\":\"#/$defs/a\",\"$defs\":{\"a\":{\"$ref\":\"#/$defs/b\"},\"b\":{\"$ref\":\"#/$defs/a\"}}}",
                 "#: a '$ref' cycle that never writes a character");
    expect_error("{\"allOf\":[{\"type\":\"string\"}]}", "#/allOf/0: 'allOf' of objects only");
    expect_error("{\"const\":1,\"enum\":[1]}", "#: 'const' and 'enum' together are not supported");
    expect_error("{\"enum\":[]}", "#: 'enum' must be a non-empty array");
    expect_error("false", "#: the schema false matches nothing");
    expect_error("[1]", "#: a schema must be an object or a boolean");
    expect_error("{\"type\":", "1:8: unexpected token near end of file");
    /* an enum too large for a grammar */
    {
        char *big = malloc(16 + 12 * 200000);
        assert_non_null(big);
        size_t len = (size_t)sprintf(big, "{\"enum\":[");
        for (int i = 0; i < 200000; i++) len += (size_t)sprintf(big + len, "%s\"v%d\"", i ? "," : "", i);
        sprintf(big + len, "]}");
        expect_error(big, "#: the schema makes a grammar that is refused: the grammar is too large (more than 1048576 "
                          "elements)");
        free(big);
    }
    /* nesting past the limit */
    char deep[2000];
    size_t n = 0;
    for (int i = 0; i < 70; i++) n += (size_t)sprintf(deep + n, "{\"type\":\"array\",\"items\":");
    n += (size_t)sprintf(deep + n, "true");
    for (int i = 0; i < 70; i++) deep[n++] = '}';
    deep[n] = 0;
    llama2_grammar *g = NULL;
    llama2_error err = {0};
    assert_int_equal(l2_json_schema_grammar(deep, n, &g, &err), LLAMA2_E_INVALID);
    assert_string_equal(err.message, "#.../items/items/items/items/items/items/items/items/items/items/items/items/items: "
                                    "schemas nested more than 64 deep");
}

/* ------------------------------------------------------------ sampling */

typedef struct cases {
    FILE *f; /* JSON lines: {"schema", "text"} */
    int complete, drawn;
} cases;

static void record(cases *c, const json_t *schema, const char *text) {
    json_t *line = json_pack("{s:O,s:s}", "schema", (json_t *)schema, "text", text);
    assert_non_null(line);
    char *s = json_dumps(line, JSON_COMPACT | JSON_ENSURE_ASCII);
    fprintf(c->f, "%s\n", s);
    free(s);
    json_decref(line);
    c->complete++;
}

static uint64_t rng = 0xfeedbeef;

/* A text drawn with random logits under g; NULL when it did not end. */
static char *draw(const llama2_tokenizer *tok, const llama2_grammar *g, uint64_t seed) {
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
    size_t cap = 1 << 16, len = 0;
    char *text = malloc(cap);
    int prev = LLAMA2_TOKEN_BOS, ended = 0;
    for (int i = 0; i < 400 && len + 64 < cap; i++) {
        for (int k = 0; k < vocab; k++) logits[k] = (float)(test_rng_next(&rng) % 8000) / 1000.0f;
        /* the structure's tokens, and an end, likelier: texts that finish */
        logits[LLAMA2_TOKEN_EOS] += 6.0f;
        int t = llama2_sampler_sample(s, logits);
        if (t == LLAMA2_TOKEN_BOS || t == LLAMA2_TOKEN_EOS) {
            ended = 1;
            break;
        }
        size_t n;
        const char *piece = llama2_token_piece(tok, prev, t, &n);
        memcpy(text + len, piece, n);
        len += n;
        llama2_sampler_accept(s, t);
        prev = t;
    }
    text[len] = 0;
    free(logits);
    llama2_sampler_destroy(s);
    if (!ended) {
        free(text);
        return NULL;
    }
    return text;
}

static void test_sampled_texts_are_valid(void **state) {
    (void)state;
    const char *model_path = test_require_model("stories260K.bin");
    const char *tok512_path = test_require_model("tok512.bin");
    const char *tok32k_path = test_require_model("tokenizer.bin");
    const char *validator = test_source_path("tests/validate_json.py");
    if (access(PYTHON, X_OK) != 0 || access(validator, R_OK) != 0) {
        print_message("skipped: needs %s with jsonschema (python3-jsonschema) and %s\n", PYTHON, validator);
        skip();
    }
    char *argv_check[] = {PYTHON, "-c", "import jsonschema", NULL};
    test_run r;
    int has = test_run_program(argv_check, NULL, NULL, 0, &r) == 0;
    test_run_free(&r);
    if (!has) {
        print_message("skipped: needs %s with jsonschema (python3-jsonschema)\n", PYTHON);
        skip();
    }

    json_error_t je;
    json_t *schemas = json_load_file(test_source_path("tests/json_schemas.json"), 0, &je);
    if (!schemas) fail_msg("tests/json_schemas.json: %d:%d: %s", je.line, je.column, je.text);
    assert_true(json_array_size(schemas) >= 100);

    llama2_model *model = NULL;
    llama2_tokenizer *tok512 = NULL, *tok32k = NULL;
    llama2_session *session = NULL;
    llama2_error err = {0};
    assert_int_equal(llama2_model_open(model_path, NULL, &model, &err), LLAMA2_OK);
    assert_int_equal(llama2_tokenizer_open(tok512_path, 512, &tok512, &err), LLAMA2_OK);
    assert_int_equal(llama2_tokenizer_open(tok32k_path, 0, &tok32k, &err), LLAMA2_OK);
    assert_int_equal(llama2_session_create(model, NULL, &session, &err), LLAMA2_OK);

    char dir[4096], path[4200];
    assert_int_equal(test_tmp_dir_create(dir, sizeof dir, "schema"), 0);
    snprintf(path, sizeof path, "%s/texts.jsonl", dir);
    cases c = {.f = fopen(path, "w")};
    assert_non_null(c.f);
    int by_kind[3] = {0};
    for (size_t i = 0; i < json_array_size(schemas); i++) {
        const json_t *schema = json_array_get(schemas, i);
        char *text = json_dumps(schema, JSON_ENCODE_ANY | JSON_COMPACT);
        llama2_grammar *g = NULL;
        if (l2_json_schema_grammar(text, strlen(text), &g, &err) != LLAMA2_OK)
            fail_msg("schema %zu %s: %s", i, text, err.message);
        free(text);
        for (uint64_t seed = 1; seed <= 2; seed++) {
            /* generation with stories260K, from an empty prompt */
            llama2_sampler_options o = llama2_sampler_defaults();
            o.seed = seed * 1000 + i;
            llama2_sampler *s = NULL;
            assert_int_equal(llama2_sampler_create(512, &o, &s, &err), LLAMA2_OK);
            assert_int_equal(llama2_sampler_set_grammar(s, g, tok512, &err), LLAMA2_OK);
            test_text b = {.len = 0};
            llama2_io io = {.user = &b, .write = test_collect};
            llama2_generate_options go = {.steps = 256};
            llama2_stats st;
            assert_int_equal(llama2_generate(session, tok512, s, "", &go, &io, &st, &err), LLAMA2_OK);
            llama2_sampler_destroy(s);
            c.drawn++;
            if (st.stop == LLAMA2_STOP_TOKEN) {
                assert_true(b.len > 0 && b.text[b.len - 1] == '\n');
                b.text[--b.len] = 0;
                record(&c, schema, b.text);
                by_kind[0]++;
            }
            /* random logits, both vocabularies */
            for (int v = 0; v < 2; v++) {
                char *t = draw(v ? tok32k : tok512, g, seed * 7 + i);
                c.drawn++;
                if (t) {
                    record(&c, schema, t);
                    by_kind[1 + v]++;
                }
                free(t);
            }
        }
        llama2_grammar_free(g);
    }
    fclose(c.f);
    char *argv[] = {PYTHON, (char *)validator, path, NULL};
    int status = test_run_program(argv, NULL, NULL, 0, &r);
    if (status != 0) fail_msg("%s%s", r.out, r.err);
    if (getenv("VERBOSE"))
        printf("%d of %d texts complete (stories260K %d, random 512 %d, random 32000 %d): %s", c.complete, c.drawn,
               by_kind[0], by_kind[1], by_kind[2], r.out);
    test_run_free(&r);
    /* most texts end within their steps, with each way of drawing */
    assert_true(c.complete >= c.drawn / 2);
    for (int k = 0; k < 3; k++) assert_true(by_kind[k] >= (int)json_array_size(schemas) / 2);
    test_tmp_dir_remove(dir);
    json_decref(schemas);
    llama2_session_destroy(session);
    llama2_tokenizer_close(tok512);
    llama2_tokenizer_close(tok32k);
    llama2_model_close(model);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_sampled_texts_are_valid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
