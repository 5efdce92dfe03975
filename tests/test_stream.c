/*
 * From token ids to text, and the loops around it: the text stream (stop
 * strings spanning tokens, held back until decided; special tokens; echo),
 * the chat templates' token ids, and llama2_generate / llama2_chat driven
 * through the library with scripted input: stop strings, a write callback
 * that stops, reply caps, why a chat ended, a shorter context.
 *
 * Uses stories260K.bin and tok512.bin of the models folder; a test whose
 * file is absent is skipped by name.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/chat_template.h"
#include "llama2.h"
#include "support.h"

static llama2_tokenizer *tok512;
static llama2_model *model;

static int setup(void **state) {
    (void)state;
    llama2_error err;
    if ((test_have_model("tok512.bin") &&
         llama2_tokenizer_open(test_model_path("tok512.bin"), 512, &tok512, &err) != LLAMA2_OK) ||
        (test_have_model("stories260K.bin") &&
         llama2_model_open(test_model_path("stories260K.bin"), NULL, &model, &err) != LLAMA2_OK)) {
        fprintf(stderr, "test_stream: %s\n", err.message);
        return -1;
    }
    return 0;
}

/* Skips the running test unless tok512.bin (and, with model_too,
 * stories260K.bin) loaded. */
static void need(int model_too) {
    test_require_model("tok512.bin");
    if (model_too) test_require_model("stories260K.bin");
}

static int teardown(void **state) {
    (void)state;
    llama2_tokenizer_close(tok512);
    llama2_model_close(model);
    return 0;
}

/* A growing byte buffer. */
typedef struct buffer {
    char data[1 << 16];
    size_t len;
} buffer;

static void append(buffer *b, const char *text, size_t len) {
    assert_true(b->len + len < sizeof b->data);
    memcpy(b->data + b->len, text, len);
    b->len += len;
    b->data[b->len] = '\0';
}

/* The ids of text (BOS first). */
static int encode(const char *text, int bos, int *ids) {
    int n = 0;
    llama2_error err;
    assert_int_equal(llama2_tokenize(tok512, text, bos, 0, ids, &n, &err), LLAMA2_OK);
    return n;
}

static llama2_text_stream *stream_with(const char *const *stops, int n_stops, int show_special) {
    llama2_text_stream *s = NULL;
    llama2_error err;
    llama2_text_stream_options o = {.stop = stops, .n_stop = n_stops, .show_special = show_special};
    assert_int_equal(llama2_text_stream_create(tok512, &o, &s, &err), LLAMA2_OK);
    return s;
}

/* ------------------------------------------------------------ the text stream */

static const char *const story =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.";

/* Streams the ids of `story` through a stream with `stop`: the text must
 * be the story up to the stop string, never a byte of it early, and the
 * stop must be reported by the token that completes it. */
static void check_stop(const char *stop) {
    int ids[256];
    int n = encode(story, 1, ids);
    const char *found = strstr(story, stop);
    assert_non_null(found);
    const size_t allowed = (size_t)(found - story);
    llama2_text_stream *s = stream_with(&stop, 1, 0);
    buffer out = {.len = 0};
    buffer seen = {.len = 0}; /* the whole decoded text so far, for when the stop must be found */
    int reported_at = -1, held_back = 0;
    for (int i = 1; i < n; i++) {
        const char *text;
        size_t len;
        int r = llama2_text_stream_push(s, ids[i - 1], ids[i], &text, &len);
        append(&out, text, len);
        size_t piece_len;
        const char *piece = llama2_token_piece(tok512, ids[i - 1], ids[i], &piece_len);
        append(&seen, piece, piece_len);
        if (out.len > allowed) fail_msg("stop '%s': '%s' shown, past the %zu bytes before it", stop, out.data, allowed);
        if (out.len < seen.len && !r) held_back = 1;
        if (r) {
            assert_int_equal(r, 1);
            reported_at = i;
            break;
        }
    }
    /* The token that completes it: the decoded text ends at or after the
     * stop string, and did not reach its end one token earlier. */
    assert_true(reported_at > 0);
    assert_true(seen.len >= allowed + strlen(stop));
    assert_int_equal(out.len, allowed);
    assert_memory_equal(out.data, story, allowed);
    (void)held_back;
    /* After a stop: nothing more until finish. */
    const char *text;
    size_t len;
    assert_int_equal(llama2_text_stream_push(s, ids[1], ids[2], &text, &len), 0);
    assert_int_equal(len, 0);
    llama2_text_stream_finish(s, &text, &len);
    assert_int_equal(len, 0);
    llama2_text_stream_destroy(s);
}

static void test_stop_strings(void **state) {
    (void)state;
    need(0);
    /* Stop strings of several tokens, inside a token, at a token's start. */
    const char *const stops[] = {"a time", "girl named Lily", "ed", " in the park", "Lil", "O", "park."};
    for (size_t i = 0; i < sizeof stops / sizeof stops[0]; i++) check_stop(stops[i]);

    /* It spans tokens: "girl named Lily" is more than one token. */
    int ids[64];
    assert_true(encode("girl named Lily", 0, ids) > 1);
}

/* A stop string whose start appears but which never completes: its start is
 * held back, then handed out when it is decided; the whole text comes out. */
static void test_hold_back(void **state) {
    (void)state;
    need(0);
    int ids[256];
    int n = encode(story, 1, ids);
    const char *stop = "a timid";
    llama2_text_stream *s = stream_with(&stop, 1, 0);
    buffer out = {.len = 0};
    int held = 0;
    for (int i = 1; i < n; i++) {
        const char *text;
        size_t len;
        assert_int_equal(llama2_text_stream_push(s, ids[i - 1], ids[i], &text, &len), 0);
        append(&out, text, len);
        /* Once "Once upon a tim" is decoded, "a tim" must be held. */
        if (out.len >= 10 && strncmp(out.data, "Once upon ", 10) == 0 && out.len == 10) held = 1;
    }
    assert_true(held);
    const char *text;
    size_t len;
    llama2_text_stream_finish(s, &text, &len);
    append(&out, text, len);
    assert_string_equal(out.data, story);

    /* A stop prefix at the very end comes out at finish. */
    const char *stop2 = "park. The end";
    llama2_text_stream *s2 = stream_with(&stop2, 1, 0);
    out.len = 0;
    for (int i = 1; i < n; i++) {
        assert_int_equal(llama2_text_stream_push(s2, ids[i - 1], ids[i], &text, &len), 0);
        append(&out, text, len);
    }
    assert_true(out.len < strlen(story));
    llama2_text_stream_finish(s2, &text, &len);
    assert_memory_equal(text, "park.", 5);
    append(&out, text, len);
    assert_string_equal(out.data, story);
    llama2_text_stream_destroy(s);
    llama2_text_stream_destroy(s2);
}

/* Random stop strings cut from the story, and random sets of them: the
 * text stops at the first token whose text completes one of them, before
 * the earliest of those that are complete there. */
static void test_stop_random(void **state) {
    (void)state;
    need(0);
    uint64_t rng = 77;
    int ids[256];
    int n = encode(story, 1, ids);
    /* Where each token's text ends in the story (ASCII: the filter passes it all). */
    size_t ends[256], at_end = 0;
    for (int i = 1; i < n; i++) {
        size_t len;
        llama2_token_piece(tok512, ids[i - 1], ids[i], &len);
        ends[i] = at_end += len;
    }
    assert_int_equal(at_end, strlen(story));
    for (int round = 0; round < 500; round++) {
        char stop_text[3][32];
        const char *stops[3];
        int n_stops = 1 + (int)(test_rng_next(&rng) % 3);
        for (int k = 0; k < n_stops; k++) {
            size_t len = 1 + test_rng_next(&rng) % 12;
            size_t at = test_rng_next(&rng) % (at_end - len);
            memcpy(stop_text[k], story + at, len);
            stop_text[k][len] = '\0';
            if (k == 2) stop_text[k][len - 1] = '#'; /* one that never appears */
            stops[k] = stop_text[k];
        }
        /* The expected cut: the first token end by which a stop string is
         * complete, then the earliest start among those complete there. */
        size_t cut = at_end;
        for (int i = 1; i < n && cut == at_end; i++)
            for (int k = 0; k < n_stops; k++) {
                const char *hit = strstr(story, stops[k]);
                if (hit && (size_t)(hit - story) + strlen(stops[k]) <= ends[i] && (size_t)(hit - story) < cut)
                    cut = (size_t)(hit - story);
            }
        llama2_text_stream *s = stream_with(stops, n_stops, 0);
        buffer out = {.len = 0};
        int stopped = 0;
        for (int i = 1; i < n && !stopped; i++) {
            const char *text;
            size_t len;
            stopped = llama2_text_stream_push(s, ids[i - 1], ids[i], &text, &len);
            append(&out, text, len);
            if (out.len > cut)
                fail_msg("stops '%s' '%s' '%s': '%s' is past %zu", stops[0], n_stops > 1 ? stops[1] : "",
                         n_stops > 2 ? stops[2] : "", out.data, cut);
        }
        const char *text;
        size_t len;
        llama2_text_stream_finish(s, &text, &len);
        append(&out, text, len);
        assert_int_equal(stopped != 0, cut < at_end);
        assert_int_equal(out.len, cut);
        assert_memory_equal(out.data, story, cut);
        llama2_text_stream_destroy(s);
    }
}

static void test_stream_rules(void **state) {
    (void)state;
    need(0);
    const char *text;
    size_t len;
    /* Special tokens: hidden by default, llama2.c's pieces when shown. */
    llama2_text_stream *hidden = stream_with(NULL, 0, 0), *shown = stream_with(NULL, 0, 1);
    for (int t = 0; t <= 2; t++) {
        llama2_text_stream_push(hidden, 5, t, &text, &len);
        assert_int_equal(len, 0);
    }
    llama2_text_stream_push(shown, 5, LLAMA2_TOKEN_EOS, &text, &len);
    assert_int_equal(len, 6);
    assert_memory_equal(text, "\n</s>\n", 6);

    /* A character of byte tokens is held inside the filter until complete,
     * and a stop string of it still holds back: "é" is <0xC3><0xA9>. */
    const char *stop = "\xc3\xa9t";
    llama2_text_stream *s = stream_with(&stop, 1, 0);
    buffer out = {.len = 0};
    const int caf[] = {'c' + 3, 'a' + 3, 'f' + 3, 0xC3 + 3, 0xA9 + 3, 'e' + 3, 0xC3 + 3, 0xA9 + 3, 't' + 3};
    int r = 0;
    for (size_t i = 0; i < sizeof caf / sizeof caf[0] && !r; i++) {
        r = llama2_text_stream_push(s, i ? caf[i - 1] : 0, caf[i], &text, &len);
        append(&out, text, len);
    }
    assert_int_equal(r, 1);
    assert_string_equal(out.data, "caf\xc3\xa9" "e");

    /* Echo: never searched, nothing held back (held text comes out first). */
    const char *stop_e = "ab";
    llama2_text_stream *e = stream_with(&stop_e, 1, 0);
    out.len = 0;
    assert_int_equal(llama2_text_stream_push(e, 0, 'a' + 3, &text, &len), 0);
    assert_int_equal(len, 0); /* "a" may start "ab" */
    assert_int_equal(llama2_text_stream_echo(e, 0, 'b' + 3, &text, &len), 0);
    append(&out, text, len);
    assert_string_equal(out.data, "ab");

    /* The second stop string found reports 2. */
    const char *two[] = {"zzz", "b"};
    llama2_text_stream *t2 = stream_with(two, 2, 0);
    assert_int_equal(llama2_text_stream_push(t2, 0, 'b' + 3, &text, &len), 2);

    /* Empty stop strings are refused. */
    const char *empty = "";
    llama2_text_stream *bad = (llama2_text_stream *)&bad;
    llama2_error err;
    llama2_text_stream_options o = {.stop = &empty, .n_stop = 1};
    assert_int_equal(llama2_text_stream_create(tok512, &o, &bad, &err), LLAMA2_E_INVALID);
    assert_null(bad);
    assert_string_equal(err.message, "stop string 1 is empty");

    llama2_text_stream_destroy(hidden);
    llama2_text_stream_destroy(shown);
    llama2_text_stream_destroy(s);
    llama2_text_stream_destroy(e);
    llama2_text_stream_destroy(t2);
}

/* ------------------------------------------------------------ chat templates */

/* The ids of a conversation must be the concatenation of these parts:
 * text ("T" + bos flag) or single ids. */
typedef struct part {
    const char *text; /* NULL: the id */
    int bos;
    int id;
} part;

static void expect_ids(llama2_chat_template t, const llama2_chat_message *m, int n, int add_assistant, const part *parts,
                       int n_parts) {
    int want[1024], n_want = 0;
    for (int i = 0; i < n_parts; i++) {
        if (parts[i].text)
            n_want += encode(parts[i].text, parts[i].bos, want + n_want);
        else
            want[n_want++] = parts[i].id;
    }
    int *ids = NULL, n_ids = 0;
    llama2_error err;
    assert_int_equal(llama2_chat_encode(tok512, t, m, n, add_assistant, &ids, &n_ids, &err), LLAMA2_OK);
    assert_int_equal(n_ids, n_want);
    assert_memory_equal(ids, want, (size_t)n_want * sizeof *want);
    free(ids);
}

static void test_templates(void **state) {
    (void)state;
    need(0);
    const llama2_chat_message conversation[] = {
        {"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello."}, {"user", "A story?"}};

    /* Llama 2, llama2.c's exact turns: a system prompt in the first. */
    const part llama2_parts[] = {{"[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST]", 1, 0},
                                 {"Hello.", 0, 0},
                                 {NULL, 0, LLAMA2_TOKEN_EOS},
                                 {"[INST] A story? [/INST]", 1, 0}};
    expect_ids(LLAMA2_TEMPLATE_LLAMA2, conversation, 4, 1, llama2_parts, 4);
    const part llama2_no_system[] = {{"[INST] Hi [/INST]", 1, 0}};
    expect_ids(LLAMA2_TEMPLATE_LLAMA2, conversation + 1, 1, 1, llama2_no_system, 1);
    const llama2_chat_message empty_system[] = {{"system", ""}, {"user", "Hi"}};
    expect_ids(LLAMA2_TEMPLATE_LLAMA2, empty_system, 2, 1, llama2_no_system, 1);

    const part chatml[] = {{"<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                            "<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nA story?<|im_end|>\n"
                            "<|im_start|>assistant\n",
                            1, 0}};
    expect_ids(LLAMA2_TEMPLATE_CHATML, conversation, 4, 1, chatml, 1);

    const part zephyr[] = {{NULL, 0, LLAMA2_TOKEN_BOS}, {"<|system|>\nBe brief.", 0, 0}, {NULL, 0, LLAMA2_TOKEN_EOS},
                           {"\n<|user|>\nHi", 0, 0},    {NULL, 0, LLAMA2_TOKEN_EOS},   {"\n<|assistant|>\nHello.", 0, 0},
                           {NULL, 0, LLAMA2_TOKEN_EOS}, {"\n<|user|>\nA story?", 0, 0}, {NULL, 0, LLAMA2_TOKEN_EOS},
                           {"\n<|assistant|>\n", 0, 0}};
    expect_ids(LLAMA2_TEMPLATE_ZEPHYR, conversation, 4, 1, zephyr, 10);

    const part none[] = {{"Be brief.\nHi\nHello.\nA story?\n", 1, 0}};
    expect_ids(LLAMA2_TEMPLATE_NONE, conversation, 4, 0, none, 1);

    /* Names, stop strings, bad input. */
    for (int t = 0; t < 5; t++) {
        llama2_chat_template back;
        assert_true(llama2_chat_template_from_name(llama2_chat_template_name((llama2_chat_template)t), &back));
        assert_int_equal(back, t);
    }
    llama2_chat_template unused;
    assert_false(llama2_chat_template_from_name("vicuna", &unused));
    assert_null(llama2_chat_template_name((llama2_chat_template)5));
    assert_string_equal(llama2_chat_template_stops(LLAMA2_TEMPLATE_CHATML)[0], "<|im_end|>");
    assert_null(llama2_chat_template_stops(LLAMA2_TEMPLATE_CHATML)[1]);
    assert_null(llama2_chat_template_stops(LLAMA2_TEMPLATE_LLAMA2)[0]);

    const struct {
        llama2_chat_message m[2];
        const char *message;
    } bad[] = {
        {{{"user", "a"}, {"robot", "b"}}, "message 2: unknown role"},
        {{{"user", "a"}, {"system", "b"}}, "message 2: a system message must come first"},
        {{{"user", NULL}, {"user", "b"}}, "message 1: no content"},
        {{{NULL, "a"}, {"user", "b"}}, "message 1: unknown role"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int *ids = (int *)&ids, n_ids = 7;
        llama2_error err;
        assert_int_equal(llama2_chat_encode(tok512, LLAMA2_TEMPLATE_CHATML, bad[i].m, 2, 1, &ids, &n_ids, &err),
                         LLAMA2_E_INVALID);
        assert_null(ids);
        assert_int_equal(n_ids, 0);
        assert_string_equal(err.message, bad[i].message);
    }
    int *ids = NULL, n_ids = 0;
    llama2_error err;
    assert_int_equal(llama2_chat_encode(tok512, (llama2_chat_template)9, conversation, 1, 1, &ids, &n_ids, &err),
                     LLAMA2_E_INVALID);
}

/* A later turn, as the chat loop builds it: the token sampled last, the end
 * of the reply if the model did not write it, then the new turn. */
static void test_next_turn(void **state) {
    (void)state;
    need(0);
    const struct {
        llama2_chat_template t;
        int ended;
        const char *text;
        int eos_first;
    } cases[] = {
        {LLAMA2_TEMPLATE_CHATML, 0, "<|im_end|>\n<|im_start|>user\nx<|im_end|>\n<|im_start|>assistant\n", 0},
        {LLAMA2_TEMPLATE_CHATML, 1, "\n<|im_start|>user\nx<|im_end|>\n<|im_start|>assistant\n", 0},
        {LLAMA2_TEMPLATE_ZEPHYR, 0, NULL, 1},
        {LLAMA2_TEMPLATE_ZEPHYR, 1, NULL, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        l2_chat_builder b;
        llama2_error err;
        l2_chat_builder_init(&b, tok512, cases[i].t, 0, &err);
        l2_chat_add_token(&b, 77);
        l2_chat_close_reply(&b, cases[i].ended);
        l2_chat_add_message(&b, L2_ROLE_USER, "x");
        l2_chat_add_reply_start(&b);
        int *ids, n_ids;
        assert_int_equal(l2_chat_builder_finish(&b, &ids, &n_ids), LLAMA2_OK);
        int want[256], n_want = 0;
        want[n_want++] = 77;
        if (cases[i].text) {
            n_want += encode(cases[i].text, 0, want + n_want);
        } else {
            if (cases[i].eos_first) want[n_want++] = LLAMA2_TOKEN_EOS;
            n_want += encode("\n<|user|>\nx", 0, want + n_want);
            want[n_want++] = LLAMA2_TOKEN_EOS;
            n_want += encode("\n<|assistant|>\n", 0, want + n_want);
        }
        assert_int_equal(n_ids, n_want);
        assert_memory_equal(ids, want, (size_t)n_want * sizeof *want);
        free(ids);
    }
}

/* ------------------------------------------------------------ the loops */

typedef struct script {
    buffer out;
    int writes;
    int stop_after_writes; /* the write callback says stop at this write (0: never) */
    const char *const *lines;
    int n_lines, next_line;
    int stop_on_reply_write; /* chat: say stop at the first reply write after each "Assistant: " */
    int in_reply;
} script;

static int script_write(void *user, const char *text, size_t len) {
    script *s = user;
    append(&s->out, text, len);
    s->writes++;
    if (s->stop_on_reply_write) {
        if (len == 11 && memcmp(text, "Assistant: ", 11) == 0) {
            s->in_reply = 1;
            return 0;
        }
        if (s->in_reply) {
            s->in_reply = 0;
            return 1;
        }
    }
    return s->stop_after_writes && s->writes >= s->stop_after_writes;
}

static int script_read(void *user, char **line) {
    script *s = user;
    if (s->next_line == s->n_lines) return 0;
    const char *l = s->lines[s->next_line++];
    *line = malloc(strlen(l) + 1);
    memcpy(*line, l, strlen(l) + 1);
    return 1;
}

static llama2_session *new_session(int context_length) {
    llama2_session *session = NULL;
    llama2_error err;
    llama2_session_options o = {.context_length = context_length};
    assert_int_equal(llama2_session_create(model, &o, &session, &err), LLAMA2_OK);
    return session;
}

static llama2_sampler *greedy(void) {
    llama2_sampler *s = NULL;
    llama2_error err;
    llama2_sampler_options o = {0};
    assert_int_equal(llama2_sampler_create(512, &o, &s, &err), LLAMA2_OK);
    return s;
}

/* Generation: the text without options, then cut by a stop string and by
 * the caller, each with its reason. */
static void test_generate(void **state) {
    (void)state;
    need(1);
    llama2_session *session = new_session(0);
    llama2_sampler *sampler = greedy();
    llama2_error err;
    llama2_stats st;
    script whole = {.out.len = 0};
    llama2_io io = {.user = &whole, .write = script_write};
    llama2_generate_options o = {.steps = 64};
    assert_int_equal(llama2_generate(session, tok512, sampler, "Once upon a time", &o, &io, &st, &err), LLAMA2_OK);
    assert_int_equal(st.stop, LLAMA2_STOP_LENGTH);
    assert_int_equal(st.positions, 64);
    const char *lily = strstr(whole.out.data, "Lily");
    assert_non_null(lily);

    /* Stop at "Lily": the text before it, then the final newline. */
    const char *stop = "Lily";
    script cut = {.out.len = 0};
    io.user = &cut;
    o = (llama2_generate_options){.steps = 64, .stop = &stop, .n_stop = 1};
    assert_int_equal(llama2_generate(session, tok512, sampler, "Once upon a time", &o, &io, &st, &err), LLAMA2_OK);
    assert_int_equal(st.stop, LLAMA2_STOP_STRING);
    size_t before = (size_t)(lily - whole.out.data);
    assert_int_equal(cut.out.len, before + 1);
    assert_memory_equal(cut.out.data, whole.out.data, before);
    assert_int_equal(cut.out.data[before], '\n');

    /* A stop string inside the prompt does not stop the echo. */
    const char *in_prompt = "upon";
    script echo = {.out.len = 0};
    io.user = &echo;
    o = (llama2_generate_options){.steps = 64, .stop = &in_prompt, .n_stop = 1};
    assert_int_equal(llama2_generate(session, tok512, sampler, "Once upon a time", &o, &io, &st, &err), LLAMA2_OK);
    assert_string_equal(echo.out.data, whole.out.data);

    /* The caller stops at its 5th write: nothing is written after it but
     * the final newline. */
    script caller = {.out.len = 0, .stop_after_writes = 5};
    io.user = &caller;
    o = (llama2_generate_options){.steps = 64};
    assert_int_equal(llama2_generate(session, tok512, sampler, "Once upon a time", &o, &io, &st, &err), LLAMA2_OK);
    assert_int_equal(st.stop, LLAMA2_STOP_CALLER);
    assert_int_equal(caller.writes, 6);
    assert_memory_equal(caller.out.data, whole.out.data, caller.out.len - 1);

    /* -n 0 in a context of 32: the whole context, and it says so. */
    llama2_session *short_session = new_session(32);
    assert_int_equal(llama2_session_context_length(short_session), 32);
    script ctx = {.out.len = 0};
    io.user = &ctx;
    o = (llama2_generate_options){.steps = 0};
    assert_int_equal(llama2_generate(short_session, tok512, sampler, "Once upon a time", &o, &io, &st, &err),
                     LLAMA2_OK);
    assert_int_equal(st.stop, LLAMA2_STOP_CONTEXT);
    assert_int_equal(st.positions, 32);
    /* ... and the same tokens as the full context's first 32 positions. */
    assert_memory_equal(ctx.out.data, whole.out.data, ctx.out.len - 1);
    llama2_session_destroy(short_session);

    llama2_session_destroy(session);
    llama2_sampler_destroy(sampler);
}

static int count(const char *haystack, const char *needle) {
    int n = 0;
    for (const char *p = strstr(haystack, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

/* Chat: how a chat ends, reply caps, a caller that stops replies, special
 * tokens hidden outside the Llama 2 template. */
static void test_chat(void **state) {
    (void)state;
    need(1);
    llama2_error err;
    llama2_stats st;
    const char *lines[] = {"", "Tell me a story.", "And then?"};

    /* End of input after two capped replies. */
    for (int t = 0; t < 4; t++) {
        llama2_session *session = new_session(0);
        llama2_sampler *sampler = greedy();
        script sc = {.out.len = 0, .lines = lines, .n_lines = 3};
        llama2_io io = {.user = &sc, .write = script_write, .read_line = script_read};
        llama2_chat_options o = {.reply_tokens = 12, .chat_template = (llama2_chat_template)t};
        assert_int_equal(llama2_chat(session, tok512, sampler, &o, &io, &st, &err), LLAMA2_OK);
        assert_int_equal(st.stop, LLAMA2_STOP_INPUT);
        assert_int_equal(count(sc.out.data, "Assistant: "), 2);
        assert_int_equal(count(sc.out.data, "User: "), 3);
        if (t != LLAMA2_TEMPLATE_LLAMA2) {
            assert_null(strstr(sc.out.data, "<s>"));
            assert_null(strstr(sc.out.data, "</s>"));
            /* No sample at prompt positions: 12 per reply. */
            assert_int_equal(st.generated_tokens, 2 * 12);
        }
        assert_true(st.seconds_after_first <= st.prompt_seconds + st.generate_seconds + 1e-9);
        llama2_session_destroy(session);
        llama2_sampler_destroy(sampler);
    }

    /* The caller stops each reply at its first text: the chat goes on to
     * the next turn; both replies are cut short. */
    llama2_session *session = new_session(0);
    llama2_sampler *sampler = greedy();
    script cut = {.out.len = 0, .lines = lines, .n_lines = 3, .stop_on_reply_write = 1};
    llama2_io io = {.user = &cut, .write = script_write, .read_line = script_read};
    llama2_chat_options o = {.chat_template = LLAMA2_TEMPLATE_ZEPHYR};
    assert_int_equal(llama2_chat(session, tok512, sampler, &o, &io, &st, &err), LLAMA2_OK);
    assert_int_equal(st.stop, LLAMA2_STOP_INPUT);
    assert_int_equal(count(cut.out.data, "User: "), 3);
    assert_true(st.positions < 100);
    llama2_session_destroy(session);

    /* Without a cap, replies run until the context of 48 is full. */
    session = new_session(48);
    script full = {.out.len = 0, .lines = lines, .n_lines = 3};
    io.user = &full;
    o = (llama2_chat_options){.chat_template = LLAMA2_TEMPLATE_NONE};
    assert_int_equal(llama2_chat(session, tok512, sampler, &o, &io, &st, &err), LLAMA2_OK);
    assert_int_equal(st.stop, LLAMA2_STOP_CONTEXT);
    assert_int_equal(st.positions, 48);
    llama2_session_destroy(session);

    /* A step limit below the context. */
    session = new_session(0);
    script steps = {.out.len = 0, .lines = lines, .n_lines = 3};
    io.user = &steps;
    o = (llama2_chat_options){.steps = 40};
    assert_int_equal(llama2_chat(session, tok512, sampler, &o, &io, &st, &err), LLAMA2_OK);
    assert_int_equal(st.stop, LLAMA2_STOP_LENGTH);
    assert_int_equal(st.positions, 40);

    /* A stop string ends a reply, not the chat. */
    const char *stop = "a";
    script stopped = {.out.len = 0, .lines = lines, .n_lines = 3};
    io.user = &stopped;
    o = (llama2_chat_options){.chat_template = LLAMA2_TEMPLATE_CHATML, .stop = &stop, .n_stop = 1};
    llama2_session_destroy(session);
    session = new_session(0);
    assert_int_equal(llama2_chat(session, tok512, sampler, &o, &io, &st, &err), LLAMA2_OK);
    assert_int_equal(st.stop, LLAMA2_STOP_INPUT);
    const char *reply = strstr(stopped.out.data, "Assistant: ");
    assert_non_null(reply);
    const char *reply_end = strstr(reply, "\nUser: ");
    assert_non_null(reply_end);
    for (const char *p = reply + 11; p < reply_end; p++) assert_int_not_equal(*p, 'a');

    llama2_session_destroy(session);
    llama2_sampler_destroy(sampler);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stop_strings), cmocka_unit_test(test_hold_back), cmocka_unit_test(test_stop_random),
        cmocka_unit_test(test_stream_rules), cmocka_unit_test(test_templates), cmocka_unit_test(test_next_turn), cmocka_unit_test(test_generate),
        cmocka_unit_test(test_chat),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
