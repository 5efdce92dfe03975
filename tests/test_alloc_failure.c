/*
 * Allocation failure: every operation below runs again and again with its
 * 1st, 2nd, 3rd... allocation failed (tests/fault_alloc.c, on every thread),
 * until a run has no allocation left to fail. At each step the operation
 * must give an error with a message (the server: 500 or 503), or, where it
 * can do without what it was refused, the same result as without failure;
 * no partial output file is left; and the same call with nothing failed
 * then succeeds with the same result (the process is still usable). Under
 * AddressSanitizer, LeakSanitizer checks after each operation's sweep that
 * nothing was leaked on any of those paths (make test runs this program in
 * the sanitized build too).
 *
 * The operations: opening a llama2.c checkpoint (mapped and read) and a
 * GGUF one with its tokenizer, a tokenizer and a tokenization, a session and
 * an evaluation, generation (greedy, sampled, with a grammar), a chat, the
 * converter (llama2.c to Hugging Face and back, a
 * SentencePiece tokenizer), quantization (version 2 and GGUF), and a
 * completion (whole and streamed) and a chat in JSON through the server's endpoint and
 * scheduler, in this process. The converter and version 2 quantization
 * run on a small random model: a few kilobytes to write on each of their
 * thousands of runs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "convert/convert.h"
#include "endpoints.h"
#include "fault_alloc.h"
#include "llama2.h"
#include "metrics.h"
#include "scheduler.h"
#include "support.h"
#include "write/checkpoint_writer.h"
#include "write/gguf_writer.h"

#if SANITIZED
#include <sanitizer/lsan_interface.h>
#endif

#define MODEL "stories260K.bin"
#define TOKENIZER "tok512.bin"
#define PROMPT "Once upon a time, a little girl"

static char tmp_dir[4096];
static char work_dir[4096]; /* each run's outputs; emptied before each */
static char gguf_path[4096];
/* A small random model of 512 tokens (tok512.bin's), for the converter and
 * quantization: a few kilobytes to write on each of their thousands of runs. */
static char small_path[4096];

/* What an operation gave: a text that stands for its result (token ids,
 * generated text, file hashes), or its error. */
typedef struct op_result {
    char text[16384];
    size_t len;
    char error[512];
} op_result;

static void result_add(op_result *r, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(r->text + r->len, sizeof r->text - r->len, fmt, ap);
    va_end(ap);
    if (n > 0) r->len += (size_t)n < sizeof r->text - r->len ? (size_t)n : sizeof r->text - r->len - 1;
}

/* The operation's error: 1 (the run failed), its message kept. */
static int failed(op_result *r, llama2_status s, const llama2_error *err) {
    snprintf(r->error, sizeof r->error, "%s: %s", llama2_status_string(s), err->message);
    return 1;
}

/* FNV-1a of the file's bytes, added to the result; "absent" when none. */
static void result_add_file(op_result *r, const char *dir, const char *name) {
    size_t size = 0;
    char *data = test_read_file(test_path_in(dir, name), &size);
    if (!data) {
        result_add(r, "%s absent;", name);
        return;
    }
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < size; i++) h = (h ^ (unsigned char)data[i]) * 1099511628211ull;
    free(data);
    result_add(r, "%s %zu bytes %016llx;", name, size, (unsigned long long)h);
}

/* --------------------------------------------------------------- the operations */

typedef int (*op_fn)(op_result *r);

static int open_checkpoint(op_result *r, int no_mmap) {
    llama2_model_options o = {.no_mmap = no_mmap};
    llama2_model *m = NULL;
    llama2_error err = {0};
    llama2_status s = llama2_model_open(test_model_path(MODEL), &o, &m, &err);
    if (s != LLAMA2_OK) return failed(r, s, &err);
    fault_alloc_pause(1);
    const llama2_config *c = llama2_model_config(m);
    result_add(r, "%s; %d %d %d %d %d", llama2_model_format(m), c->dim, c->hidden_dim, c->n_layers, c->vocab_size,
               c->seq_len);
    llama2_model_close(m);
    return 0;
}
static int op_open_mapped(op_result *r) { return open_checkpoint(r, 0); }
static int op_open_read(op_result *r) { return open_checkpoint(r, 1); }

static int op_open_gguf(op_result *r) {
    llama2_model *m = NULL;
    llama2_tokenizer *tok = NULL;
    llama2_error err = {0};
    llama2_status s = llama2_model_open(gguf_path, NULL, &m, &err);
    if (s != LLAMA2_OK) return failed(r, s, &err);
    s = llama2_model_tokenizer(m, &tok, &err);
    if (s != LLAMA2_OK) {
        llama2_model_close(m);
        return failed(r, s, &err);
    }
    fault_alloc_pause(1);
    result_add(r, "%s; vocab %d bos %d", llama2_model_format(m), llama2_tokenizer_vocab_size(tok),
               llama2_tokenizer_bos(tok));
    llama2_tokenizer_close(tok);
    llama2_model_close(m);
    return 0;
}

static int op_tokenize(op_result *r) {
    llama2_tokenizer *tok = NULL;
    llama2_error err = {0};
    llama2_status s = llama2_tokenizer_open(test_model_path(TOKENIZER), 512, &tok, &err);
    if (s != LLAMA2_OK) return failed(r, s, &err);
    int ids[256], n = 0;
    s = llama2_tokenize(tok, PROMPT " \xc3\xa9t\xc3\xa9 \xf0\x9f\x99\x82", 1, 0, ids, &n, &err);
    if (s == LLAMA2_OK)
        for (int i = 0; i < n; i++) result_add(r, "%d ", ids[i]);
    llama2_tokenizer_close(tok);
    return s == LLAMA2_OK ? 0 : failed(r, s, &err);
}

/* Opened once, outside the sweeps, for the operations that need them. */
static llama2_model *model;
static llama2_tokenizer *tokenizer;

static int op_session(op_result *r) {
    llama2_session_options o = {.n_sequences = 2, .batch_size = 8};
    llama2_session *session = NULL;
    llama2_error err = {0};
    llama2_status s = llama2_session_create(model, &o, &session, &err);
    if (s != LLAMA2_OK) return failed(r, s, &err);
    const int tokens[] = {1, 403, 407, 261, 378, 275, 6, 259, 1024 % 512, 300, 301, 302};
    float *logits = NULL;
    s = llama2_session_eval(session, tokens, (int)(sizeof tokens / sizeof tokens[0]), 0, &logits, &err);
    if (s == LLAMA2_OK) result_add(r, "ctx %d: %a %a %a", llama2_session_context_length(session), logits[0],
                                   logits[100], logits[511]);
    llama2_session_destroy(session);
    return s == LLAMA2_OK ? 0 : failed(r, s, &err);
}

/* A session, a sampler and a generation of 48 positions. */
static int generate(op_result *r, const llama2_sampler_options *so, const char *grammar_text) {
    llama2_session *session = NULL;
    llama2_sampler *sampler = NULL;
    llama2_grammar *grammar = NULL;
    llama2_error err = {0};
    llama2_status s = llama2_session_create(model, NULL, &session, &err);
    if (s == LLAMA2_OK) s = llama2_sampler_create(512, so, &sampler, &err);
    if (s == LLAMA2_OK && grammar_text) s = llama2_grammar_parse(grammar_text, strlen(grammar_text), &grammar, &err);
    if (s == LLAMA2_OK && grammar) s = llama2_sampler_set_grammar(sampler, grammar, tokenizer, &err);
    test_text text = {{0}, 0};
    llama2_generate_options go = {.steps = 48};
    llama2_io io = {.user = &text, .write = test_collect};
    llama2_stats stats;
    if (s == LLAMA2_OK) s = llama2_generate(session, tokenizer, sampler, PROMPT, &go, &io, &stats, &err);
    if (s == LLAMA2_OK) result_add(r, "%s|%d", text.text, stats.generated_tokens);
    llama2_sampler_destroy(sampler);
    llama2_grammar_free(grammar);
    llama2_session_destroy(session);
    return s == LLAMA2_OK ? 0 : failed(r, s, &err);
}
static int op_generate_greedy(op_result *r) {
    llama2_sampler_options so = {0};
    return generate(r, &so, NULL);
}
static int op_generate_sampled(op_result *r) {
    llama2_sampler_options so = llama2_sampler_defaults();
    so.seed = 42;
    so.top_k = 40;
    so.repeat_penalty = 1.1f;
    return generate(r, &so, NULL);
}
static int op_generate_grammar(op_result *r) {
    llama2_sampler_options so = llama2_sampler_defaults();
    so.seed = 7;
    return generate(r, &so, "root ::= (\" \" word)+ \".\"\nword ::= [a-z]+ | \"Lily\" | \"Tom\"\n");
}

/* A chat's next user turn: two, then the end of input. The line is the
 * test's own allocation, not counted. */
static int chat_turns;
static int read_turn(void *user, char **line) {
    if (chat_turns >= 2) return 0;
    fault_alloc_pause(1);
    *line = strdup(chat_turns++ == 0 ? "Tell me a story." : "And then?");
    fault_alloc_pause(0);
    return *line != NULL;
}

/* A chat of two turns (chatml's template). */
static int op_chat(op_result *r) {
    llama2_session *session = NULL;
    llama2_sampler *sampler = NULL;
    llama2_error err = {0};
    llama2_sampler_options so = llama2_sampler_defaults();
    so.seed = 11;
    llama2_status s = llama2_session_create(model, NULL, &session, &err);
    if (s == LLAMA2_OK) s = llama2_sampler_create(512, &so, &sampler, &err);
    test_text text = {{0}, 0};
    llama2_chat_options co = {.system_prompt = "Be brief.", .steps = 200, .reply_tokens = 24,
                              .chat_template = LLAMA2_TEMPLATE_CHATML};
    llama2_io io = {.user = &text, .write = test_collect, .read_line = read_turn};
    llama2_stats stats;
    chat_turns = 0;
    if (s == LLAMA2_OK) s = llama2_chat(session, tokenizer, sampler, &co, &io, &stats, &err);
    if (s == LLAMA2_OK) result_add(r, "%s|%d", text.text, stats.generated_tokens);
    llama2_sampler_destroy(sampler);
    llama2_session_destroy(session);
    return s == LLAMA2_OK ? 0 : failed(r, s, &err);
}

/* The converter: llama2.c to a Hugging Face folder and back; a
 * SentencePiece tokenizer. */
static char hf_dir[4096];

static int op_convert_to_hf(op_result *r) {
    l2_convert_options o = {.tokenizer = test_model_path(TOKENIZER), .dtype = L2_DTYPE_F32};
    llama2_error err = {0};
    const char *out = test_path_in(work_dir, "hf");
    char out_dir[4096];
    snprintf(out_dir, sizeof out_dir, "%s", out);
    llama2_status s = l2_convert_llama2c_to_hf(small_path, out_dir, &o, &err);
    if (s != LLAMA2_OK) return failed(r, s, &err);
    fault_alloc_pause(1);
    result_add_file(r, out_dir, "config.json");
    result_add_file(r, out_dir, "model.safetensors");
    result_add_file(r, out_dir, "tokenizer.model");
    return 0;
}

static int op_convert_from_hf(op_result *r) {
    char out[4096], tok_out[4096];
    snprintf(out, sizeof out, "%s", test_path_in(work_dir, "back.bin"));
    snprintf(tok_out, sizeof tok_out, "%s", test_path_in(work_dir, "back_tok.bin"));
    l2_convert_options o = {.version = 1, .tokenizer = tok_out};
    llama2_error err = {0};
    llama2_status s = l2_convert_hf_to_llama2c(hf_dir, out, &o, &err);
    if (s != LLAMA2_OK) return failed(r, s, &err);
    fault_alloc_pause(1);
    result_add_file(r, work_dir, "back.bin");
    result_add_file(r, work_dir, "back_tok.bin");
    return 0;
}

static int op_convert_sentencepiece(op_result *r) {
    char out[4096];
    snprintf(out, sizeof out, "%s", test_path_in(work_dir, "sp.bin"));
    llama2_error err = {0};
    llama2_status s = l2_convert_sentencepiece(test_path_in(hf_dir, "tokenizer.model"), out, 0, &err);
    if (s != LLAMA2_OK) return failed(r, s, &err);
    fault_alloc_pause(1);
    result_add_file(r, work_dir, "sp.bin");
    return 0;
}

static int op_quantize(op_result *r) {
    char out[4096];
    snprintf(out, sizeof out, "%s", test_path_in(work_dir, "q80.bin"));
    llama2_error err = {0};
    llama2_status s = l2_quantize_file(small_path, out, 0, 0, &err);
    if (s != LLAMA2_OK) return failed(r, s, &err);
    fault_alloc_pause(1);
    result_add_file(r, work_dir, "q80.bin");
    return 0;
}

static int op_quantize_gguf(op_result *r) {
    char out[4096];
    snprintf(out, sizeof out, "%s", test_path_in(work_dir, "q.gguf"));
    llama2_error err = {0};
    llama2_status s = l2_gguf_write_model(out, model, tokenizer, L2_GGML_Q8_0, NULL, 0, NULL, &err);
    if (s != LLAMA2_OK) return failed(r, s, &err);
    fault_alloc_pause(1);
    result_add_file(r, work_dir, "q.gguf");
    return 0;
}

/* The server: a completion through the endpoint and the scheduler's thread,
 * as an HTTP thread runs it. */
static llama2_session *server_session;
static server_scheduler *scheduler;
static server_metrics metrics;
static server_app app;

static int client_here(void *user) { return 0; }

/* The answer to body at path: its choices' texts, or its error (500 or 503:
 * 1, anything else: -1). */
static int server_request(op_result *r, const char *path, const char *body, int chat) {
    server_error e = {0};
    const server_route *route = server_find_route("POST", path, &e);
    server_client client = {client_here, NULL};
    server_answer a = {0};
    server_handle(&app, route, body, strlen(body), &client, &a);
    fault_alloc_pause(1);
    int status = a.status;
    char *answer = a.body ? strndup(a.body, a.body_len) : NULL;
    free(a.body);
    if (status != 200) {
        snprintf(r->error, sizeof r->error, "status %d: %s", status, answer ? answer : "(no body)");
        free(answer);
        return status == 500 || status == 503 ? 1 : -1;
    }
    /* The texts of the choices, not the request's id and time. */
    json_error_t je;
    json_t *root = answer ? json_loads(answer, 0, &je) : NULL;
    json_t *choices = json_object_get(root, "choices");
    for (size_t i = 0; i < json_array_size(choices); i++) {
        json_t *choice = json_array_get(choices, i);
        json_t *text = chat ? json_object_get(json_object_get(choice, "message"), "content")
                            : json_object_get(choice, "text");
        result_add(r, "[%s|%s]", json_string_value(text), json_string_value(json_object_get(choice, "finish_reason")));
    }
    int bad = !root || json_array_size(choices) == 0;
    if (bad) snprintf(r->error, sizeof r->error, "status 200 but no choices: %s", answer ? answer : "(no body)");
    json_decref(root);
    free(answer);
    return bad ? -1 : 0;
}

static int op_server_completion(op_result *r) {
    return server_request(r, "/v1/completions",
                          "{\"prompt\": \"" PROMPT "\", \"max_tokens\": 24, \"temperature\": 0, \"n\": 2}", 0);
}

/* A streamed completion: the text of each choice, its events' deltas put
 * together (how the text is cut into events depends on timing). An error
 * event, or a
 * stream cut (the server's answer to memory running out once the 200 is
 * sent): 1. */
static int op_server_stream(op_result *r) {
    static const char body[] =
        "{\"prompt\": \"" PROMPT "\", \"max_tokens\": 16, \"temperature\": 0, \"stream\": true, \"n\": 2}";
    server_error e = {0};
    const server_route *route = server_find_route("POST", "/v1/completions", &e);
    server_client client = {client_here, NULL};
    server_answer a = {0};
    server_handle(&app, route, body, strlen(body), &client, &a);
    if (a.status != 200 || !a.stream) {
        fault_alloc_pause(1);
        snprintf(r->error, sizeof r->error, "status %d: %.*s", a.status, (int)a.body_len, a.body ? a.body : "");
        free(a.body);
        return a.status == 500 || a.status == 503 ? 1 : -1;
    }
    static char events[1 << 16];
    size_t len = 0;
    ssize_t n;
    char buf[512];
    while ((n = server_stream_read(a.stream, buf, sizeof buf)) > 0) {
        if (len + (size_t)n < sizeof events) memcpy(events + len, buf, (size_t)n);
        len += (size_t)n;
    }
    server_stream_free(a.stream);
    fault_alloc_pause(1);
    if (len >= sizeof events) len = sizeof events - 1;
    events[len] = '\0';
    if (n == -2) {
        snprintf(r->error, sizeof r->error, "stream: cut after %zu bytes", len);
        return 1;
    }
    int done = 0;
    op_result texts[2];
    memset(texts, 0, sizeof texts);
    for (char *line = strtok(events, "\n"); line; line = strtok(NULL, "\n")) {
        if (strcmp(line, "data: [DONE]") == 0) {
            done = 1;
            continue;
        }
        json_t *event = strncmp(line, "data: ", 6) == 0 ? json_loads(line + 6, 0, NULL) : NULL;
        json_t *error = json_object_get(event, "error");
        if (error) {
            snprintf(r->error, sizeof r->error, "stream: error event: %s",
                     json_string_value(json_object_get(error, "message")));
            json_decref(event);
            return 1;
        }
        json_t *choice = json_array_get(json_object_get(event, "choices"), 0);
        if (!event || (!choice && !json_object_get(event, "usage"))) {
            snprintf(r->error, sizeof r->error, "stream: not an event: %.200s", line);
            json_decref(event);
            return -1;
        }
        const json_int_t index = json_integer_value(json_object_get(choice, "index"));
        if (choice && index >= 0 && index < 2)
            result_add(&texts[index], "%s", json_string_value(json_object_get(choice, "text")));
        json_decref(event);
    }
    result_add(r, "[%s][%s]", texts[0].text, texts[1].text);
    if (!done) snprintf(r->error, sizeof r->error, "stream: no [DONE]");
    return done ? 0 : -1;
}

/* A chat in JSON: the template, and a grammar from the server's schema. */
static int op_server_chat_json(op_result *r) {
    return server_request(r, "/v1/chat/completions",
                          "{\"messages\": [{\"role\": \"system\", \"content\": \"Tell a story.\"}, "
                          "{\"role\": \"user\", \"content\": \"" PROMPT "\"}], \"max_tokens\": 16, "
                          "\"seed\": 5, \"response_format\": {\"type\": \"json_object\"}, \"logprobs\": true, "
                          "\"top_logprobs\": 2}",
                          1);
}

/* ---------------------------------------------------------------- the sweep */

/* Each test needs the model and its tokenizer (a skip by name otherwise). */
static void need_model(void) {
    test_require_model(MODEL);
    test_require_model(TOKENIZER);
}

/* Runs op with its 1st, 2nd... allocation failed, as said at the top. */
static void sweep(const char *name, op_fn op, int writes) {
    need_model();
    static op_result ref;
    memset(&ref, 0, sizeof ref);
    if (writes) test_dir_entries(work_dir, 1);
    int rc = op(&ref);
    fault_alloc_disarm();
    if (rc != 0) fail_msg("%s, nothing failed: %s", name, ref.error);
    if (writes) test_dir_entries(work_dir, 1);
    int errors = 0, absorbed = 0;
    long n;
    for (n = 1;; n++) {
        op_result *r = calloc(1, sizeof *r);
        assert_non_null(r);
        fault_alloc_arm(n);
        rc = op(r);
        int fired = fault_alloc_disarm();
        if (rc < 0) fail_msg("%s, allocation %ld failed: %s", name, n, r->error);
        if (rc == 0) {
            if (strcmp(r->text, ref.text) != 0) {
                fprintf(stderr, "%s\ninstead of\n%s\n", r->text, ref.text);
                fail_msg("%s, allocation %ld failed: succeeded with another result (above)", name, n);
            }
        } else {
            if (!fired) fail_msg("%s: failed with no allocation failed: %s", name, r->error);
            /* An error message that says something: "<status>: <text>". */
            const char *colon = strstr(r->error, ": ");
            if (!colon || strlen(colon) < 4) fail_msg("%s, allocation %ld failed: an empty message: %s", name, n,
                                                      r->error);
            if (writes && test_dir_entries(work_dir, 0) != 0)
                fail_msg("%s, allocation %ld failed (%s): left %s in its folder", name, n, r->error,
                         test_dir_listing(work_dir));
        }
        if (writes) test_dir_entries(work_dir, 1);
        if (!fired) {
            free(r);
            break;
        }
        errors += rc != 0;
        absorbed += rc == 0;
        /* Still usable: the same call again, nothing failed. */
        memset(r, 0, sizeof *r);
        rc = op(r);
        fault_alloc_disarm();
        if (rc != 0) fail_msg("%s, after allocation %ld failed: the next call failed: %s", name, n, r->error);
        if (strcmp(r->text, ref.text) != 0) {
            fprintf(stderr, "%s\ninstead of\n%s\n", r->text, ref.text);
            fail_msg("%s, after allocation %ld failed: the next call gave another result (above)", name, n);
        }
        if (writes) test_dir_entries(work_dir, 1);
        free(r);
    }
    printf("%s: %ld allocations, each failed in turn: %d errors, %d done without it\n", name, n - 1, errors,
           absorbed);
    assert_true(n > 1);
#if SANITIZED
    if (__lsan_do_recoverable_leak_check() != 0) fail_msg("%s: memory leaked (LeakSanitizer's report above)", name);
#endif
}

static void test_open_checkpoint(void **state) {
    sweep("open mapped", op_open_mapped, 0);
    sweep("open read", op_open_read, 0);
}

static void test_open_gguf(void **state) { sweep("open GGUF", op_open_gguf, 0); }

static void test_tokenize(void **state) { sweep("tokenizer and tokenize", op_tokenize, 0); }

static void test_session(void **state) { sweep("session and eval", op_session, 0); }

static void test_generate(void **state) {
    sweep("generate greedy", op_generate_greedy, 0);
    sweep("generate sampled", op_generate_sampled, 0);
    sweep("generate with a grammar", op_generate_grammar, 0);
    sweep("chat", op_chat, 0);
}

static void test_convert(void **state) {
    sweep("convert to Hugging Face", op_convert_to_hf, 1);
    sweep("convert from Hugging Face", op_convert_from_hf, 1);
    sweep("convert SentencePiece", op_convert_sentencepiece, 1);
}

static void test_quantize(void **state) {
    sweep("quantize", op_quantize, 1);
    sweep("quantize to GGUF", op_quantize_gguf, 1);
}

static void test_server(void **state) {
    sweep("server completion", op_server_completion, 0);
    sweep("server chat in JSON", op_server_chat_json, 0);
    sweep("server stream", op_server_stream, 0);
}

/* ---------------------------------------------------------------- set-up */

static int group_setup(void **state) {
    /* jansson allocates through the wrappers too. */
    json_set_alloc_funcs(fault_alloc_malloc, fault_alloc_free);
    if (test_tmp_dir_create(tmp_dir, sizeof tmp_dir, "test-alloc-failure") != 0) return -1;
    snprintf(work_dir, sizeof work_dir, "%s", test_path_in(tmp_dir, "work"));
    snprintf(gguf_path, sizeof gguf_path, "%s", test_path_in(tmp_dir, "f32.gguf"));
    snprintf(hf_dir, sizeof hf_dir, "%s", test_path_in(tmp_dir, "hf"));
    snprintf(small_path, sizeof small_path, "%s", test_path_in(tmp_dir, "small.bin"));
    if (!test_have_model(MODEL) || !test_have_model(TOKENIZER)) return 0; /* each test skips */
    llama2_error err = {0};
    l2_convert_options o = {.tokenizer = test_model_path(TOKENIZER), .dtype = L2_DTYPE_F32};
    llama2_session_options so = {.n_sequences = 2, .batch_size = 2 + 32};
    server_scheduler_options sched = {.queue_capacity = 4, .prompt_batch = 32, .prefix_cache = 1, .cache_ram = 1 << 20};
    server_metrics_init(&metrics);
    const llama2_config small = l2_random_model_config(32, 64, 1, 4, 2, 512, 32, 1, 0, 0);
    if (mkdir(work_dir, 0755) != 0 || l2_write_random_model(small_path, &small, 3, 0, &err) != LLAMA2_OK ||
        llama2_model_open(test_model_path(MODEL), NULL, &model, &err) != LLAMA2_OK ||
        llama2_tokenizer_open(test_model_path(TOKENIZER), 512, &tokenizer, &err) != LLAMA2_OK ||
        l2_gguf_write_model(gguf_path, model, tokenizer, L2_GGML_F32, NULL, 0, NULL, &err) != LLAMA2_OK ||
        l2_convert_llama2c_to_hf(small_path, hf_dir, &o, &err) != LLAMA2_OK ||
        llama2_session_create(model, &so, &server_session, &err) != LLAMA2_OK ||
        server_scheduler_create(server_session, tokenizer, &sched, &metrics, &scheduler, &err) != LLAMA2_OK) {
        fprintf(stderr, "set-up: %s\n", err.message);
        return -1;
    }
    app.scheduler = scheduler;
    app.metrics = &metrics;
    app.limits = (server_limits){.tokenizer = tokenizer, .chat_template = LLAMA2_TEMPLATE_LLAMA2,
                                 .context_length = llama2_session_context_length(server_session), .max_choices = 2,
                                 .vocab_size = 512};
    app.config = llama2_model_config(model);
    app.model_id = MODEL;
    app.seed = 1;
    return 0;
}

static int group_teardown(void **state) {
    server_scheduler_destroy(scheduler);
    llama2_session_destroy(server_session);
    server_metrics_destroy(&metrics);
    llama2_tokenizer_close(tokenizer);
    llama2_model_close(model);
    test_tmp_dir_remove(tmp_dir);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_checkpoint), cmocka_unit_test(test_open_gguf),
        cmocka_unit_test(test_tokenize),        cmocka_unit_test(test_session),
        cmocka_unit_test(test_generate),        cmocka_unit_test(test_convert),
        cmocka_unit_test(test_quantize),        cmocka_unit_test(test_server),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
