/*
 * llama2-server, driven as its users drive it: started on a free loopback
 * port (--port 0, the port read from its ready line), called with curl and
 * with the official `openai` npm package (tests/openai_client.mjs, installed
 * at test time into build/npm; skipped by name without node, npm or the
 * registry). Checked: the completions match the llama2 program's text; a
 * stream is the same text as the whole answer; 16 concurrent streams each
 * get the text they get alone (fp32 and int8); n choices; stop strings;
 * a client that hangs up frees its slot; the prefix cache gives the text a
 * server without it gives (fp32 and int8, streams, n > 1) and keeps only
 * what a hung-up prompt evaluated; logprobs match the library's logits and
 * logit_bias bans and forces tokens; the chat page works in headless
 * chromium (tests/webui.mjs); a full queue gives 503; the
 * bad-input table (docs/HOSTILE.md, printed by LLAMA2_SERVER_TABLE=1);
 * /tokenize, /detokenize, /v1/models, /health, /metrics; SIGTERM finishes
 * the requests in flight and exits 0. The request parser (server/request.c)
 * is also called directly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "write/checkpoint_writer.h"
#include "llama2.h"
#include "platform/platform.h"
#include "request.h"
#include "support.h"

static char tmp_dir[4096];
static char slow_model[4200]; /* a random model slow enough to hang up on */
static char int8_model[4200]; /* a random int8 model of stories260K's size */

/* ------------------------------------------------------------ processes */

typedef struct server_proc {
    pid_t pid;
    int port;
    char err_path[4200];
} server_proc;

static const char *server_bin(void) { return test_require_tool("llama2-server"); }

/* The servers running: a test that fails leaves its servers to the
 * teardown, which kills them. */
static pid_t running[8];

static void track(pid_t pid, int add) {
    for (int i = 0; i < 8; i++)
        if (add ? running[i] == 0 : running[i] == pid) {
            running[i] = add ? pid : 0;
            return;
        }
}

static int kill_leftovers(void **state) {
    (void)state;
    for (int i = 0; i < 8; i++)
        if (running[i] > 0) {
            kill(running[i], SIGKILL);
            waitpid(running[i], NULL, 0);
            running[i] = 0;
        }
    return 0;
}

/* Starts llama2-server on model (tok512.bin as its tokenizer, but for a
 * GGUF file, which carries its own) with the NULL-terminated extra
 * arguments; waits for its ready line. */
static void server_start(server_proc *sp, const char *model, const char *const *extra) {
    static int count;
    const char *bin = server_bin();
    const char *tokenizer = test_require_model("tok512.bin");
    const size_t model_len = strlen(model);
    const int gguf = model_len > 5 && strcmp(model + model_len - 5, ".gguf") == 0;
    char *argv[40];
    int n = 0;
    argv[n++] = (char *)bin;
    argv[n++] = (char *)model;
    if (!gguf) {
        argv[n++] = "-z";
        argv[n++] = (char *)tokenizer;
    }
    argv[n++] = "--port";
    argv[n++] = "0";
    for (int i = 0; extra && extra[i] && n < 38; i++) argv[n++] = (char *)extra[i];
    argv[n] = NULL;
    snprintf(sp->err_path, sizeof sp->err_path, "%s/server-%d.err", tmp_dir, count++);
    int out[2];
    assert_int_equal(pipe(out), 0);
    sp->pid = fork();
    assert_true(sp->pid >= 0);
    if (sp->pid == 0) {
        int err = open(sp->err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(out[1], 1);
        dup2(err, 2);
        close(out[0]);
        close(out[1]);
        close(err);
        test_default_signals();
        execv(bin, argv);
        _exit(127);
    }
    close(out[1]);
    track(sp->pid, 1);
    /* The ready line, within a minute (sanitized builds start slowly). */
    char line[256];
    size_t len = 0;
    while (len < sizeof line - 1 && !memchr(line, '\n', len)) {
        struct pollfd p = {out[0], POLLIN, 0};
        if (poll(&p, 1, 60000) <= 0) break;
        ssize_t got = read(out[0], line + len, sizeof line - 1 - len);
        if (got <= 0) break;
        len += (size_t)got;
    }
    line[len] = '\0';
    close(out[0]);
    const char *prefix = "llama2-server: listening on http://127.0.0.1:";
    if (strncmp(line, prefix, strlen(prefix)) != 0) {
        char *err = test_read_file(sp->err_path, NULL);
        fail_msg("llama2-server did not start: stdout '%s', stderr '%s'", line, err ? err : "");
    }
    sp->port = atoi(line + strlen(prefix));
}

/* Sends sig and waits for the exit; returns the exit status (128 + the
 * signal when killed). */
static int server_stop_with(server_proc *sp, int sig) {
    kill(sp->pid, sig);
    int status = 0;
    waitpid(sp->pid, &status, 0);
    track(sp->pid, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void server_stop(server_proc *sp) { assert_int_equal(server_stop_with(sp, SIGTERM), 0); }

/* ----------------------------------------------------------------- HTTP */

typedef struct reply {
    int status;
    char *head; /* the status line and headers */
    char *body;
} reply;

static void reply_free(reply *r) {
    free(r->head);
    free(r->body);
    memset(r, 0, sizeof *r);
}

/* The curl command for a request: -i so that the headers come first; no
 * "Expect: 100-continue". headers is NULL-terminated. */
static int curl_argv(char **argv, const server_proc *sp, const char *method, const char *path,
                     const char *const *headers, const char *body_source, char *url, size_t url_size) {
    int n = 0;
    snprintf(url, url_size, "http://127.0.0.1:%d%s", sp->port, path);
    argv[n++] = "/usr/bin/curl";
    argv[n++] = "-sS";
    argv[n++] = "-i";
    argv[n++] = "--max-time";
    argv[n++] = "300";
    argv[n++] = "-H";
    argv[n++] = "Expect:";
    argv[n++] = "-X";
    argv[n++] = (char *)method;
    for (int i = 0; headers && headers[i] && n < 28; i++) {
        argv[n++] = "-H";
        argv[n++] = (char *)headers[i];
    }
    if (body_source) {
        argv[n++] = "--data-binary";
        argv[n++] = (char *)body_source;
    }
    argv[n++] = url;
    argv[n] = NULL;
    return n;
}

/* Splits curl -i output into status, head and body. */
static void parse_reply(const char *out, size_t len, reply *r) {
    memset(r, 0, sizeof *r);
    const char *end = strstr(out, "\r\n\r\n");
    if (!end || sscanf(out, "HTTP/%*s %d", &r->status) != 1) fail_msg("not an HTTP answer: '%.300s'", out);
    r->head = strndup(out, (size_t)(end - out));
    r->body = strndup(end + 4, len - (size_t)(end + 4 - out));
}

static void http(const server_proc *sp, const char *method, const char *path, const char *const *headers,
                 const char *body, reply *r) {
    if (access("/usr/bin/curl", X_OK) != 0) skip();
    char *argv[40], url[256];
    curl_argv(argv, sp, method, path, headers, body ? "@-" : NULL, url, sizeof url);
    test_run run;
    assert_int_equal(test_run_program(argv, NULL, body, body ? strlen(body) : 0, &run), 0);
    parse_reply(run.out, run.out_len, r);
    test_run_free(&run);
}

static void post(const server_proc *sp, const char *path, const char *body, reply *r) {
    http(sp, "POST", path, NULL, body, r);
}

static json_t *parse_json(const char *text) {
    json_error_t e;
    json_t *v = json_loads(text, 0, &e);
    if (!v) fail_msg("not JSON (%s): '%.300s'", e.text, text);
    return v;
}

/* POSTs and returns the JSON answer, asserting the status. */
static json_t *post_json(const server_proc *sp, const char *path, const char *body, int status) {
    reply r;
    post(sp, path, body, &r);
    if (r.status != status) fail_msg("%s answered %d, not %d: %s", path, r.status, status, r.body);
    json_t *v = parse_json(r.body);
    reply_free(&r);
    return v;
}

static const char *str_at(json_t *root, const char *path) {
    json_t *v = root;
    char key[64];
    for (const char *p = path; *p && v;) {
        size_t n = strcspn(p, ".");
        snprintf(key, sizeof key, "%.*s", (int)n, p);
        v = key[0] >= '0' && key[0] <= '9' ? json_array_get(v, (size_t)atoi(key)) : json_object_get(v, key);
        p += n + (p[n] == '.');
    }
    if (!json_is_string(v)) fail_msg("no string at %s", path);
    return json_string_value(v);
}

static long long int_at(json_t *root, const char *a, const char *b) {
    json_t *v = json_object_get(json_object_get(root, a), b);
    if (!json_is_integer(v)) fail_msg("no integer at %s.%s", a, b);
    return json_integer_value(v);
}

/* The value of one metric in /metrics. */
static double metric(const server_proc *sp, const char *name, const char *const *headers) {
    reply r;
    http(sp, "GET", "/metrics", headers, NULL, &r);
    assert_int_equal(r.status, 200);
    char key[128];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *at = strstr(r.body, key);
    if (!at) fail_msg("/metrics has no %s", name);
    double v = atof(at + strlen(key));
    reply_free(&r);
    return v;
}

/* ------------------------------------------------------------- streams */

/* The text of a stream: every event is "data: {...}" and the last
 * "data: [DONE]"; the chunks' text (choice `index`) joined. Returns the
 * finish reason in *finish and the usage chunk's completion_tokens (-1:
 * none). */
static char *stream_text(const char *body, int chat, int index, char *finish, size_t finish_size, int *usage) {
    size_t cap = strlen(body) + 1, len = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    text[0] = '\0';
    finish[0] = '\0';
    *usage = -1;
    int done = 0;
    for (const char *p = body; *p;) {
        const char *end = strstr(p, "\n\n");
        if (!end) fail_msg("an event does not end with a blank line: '%.200s'", p);
        if (strncmp(p, "data: ", 6) != 0) fail_msg("an event is not 'data: ...': '%.200s'", p);
        if (done) fail_msg("an event after [DONE]");
        char *data = strndup(p + 6, (size_t)(end - p - 6));
        if (strcmp(data, "[DONE]") == 0) {
            done = 1;
        } else {
            json_t *chunk = parse_json(data);
            assert_string_equal(str_at(chunk, "object"), chat ? "chat.completion.chunk" : "text_completion");
            json_t *choices = json_object_get(chunk, "choices");
            if (json_array_size(choices) == 0) {
                *usage = (int)int_at(chunk, "usage", "completion_tokens");
            }
            for (size_t i = 0; i < json_array_size(choices); i++) {
                json_t *c = json_array_get(choices, i);
                if (json_integer_value(json_object_get(c, "index")) != index) continue;
                json_t *t = chat ? json_object_get(json_object_get(c, "delta"), "content") : json_object_get(c, "text");
                if (json_is_string(t)) {
                    memcpy(text + len, json_string_value(t), json_string_length(t));
                    len += json_string_length(t);
                    text[len] = '\0';
                }
                json_t *f = json_object_get(c, "finish_reason");
                if (json_is_string(f)) snprintf(finish, finish_size, "%s", json_string_value(f));
            }
            json_decref(chunk);
        }
        free(data);
        p = end + 2;
    }
    if (!done) fail_msg("the stream does not end with data: [DONE]");
    return text;
}

/* ------------------------------------------------------------- fixtures */

static int setup(void **state) {
    (void)state;
    snprintf(tmp_dir, sizeof tmp_dir, "%s/llama2-server-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmp_dir)) return -1;
    /* Slow enough (a few ms a token) that a hang-up or a SIGTERM comes
     * while it generates. */
    snprintf(slow_model, sizeof slow_model, "%s/slow.bin", tmp_dir);
    llama2_config c = l2_random_model_config(256, 768, 6, 8, 8, 512, 2048, 1, 0, 0);
    llama2_error err;
    if (l2_write_random_model(slow_model, &c, 7, 0, &err) != LLAMA2_OK) return -1;
    /* Group size 64, grouped-query attention: faster than
     * stories260K_q80_gs4.bin (group size 4), which matters under the
     * sanitizers. */
    snprintf(int8_model, sizeof int8_model, "%s/int8.bin", tmp_dir);
    c = l2_random_model_config(64, 192, 5, 8, 4, 512, 512, 1, 2, 64);
    return l2_write_random_model(int8_model, &c, 8, 0, &err) == LLAMA2_OK ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    test_tmp_dir_remove(tmp_dir);
    return 0;
}

/* ------------------------------------------------------------- the tests */

/* The greedy completion is the llama2 program's text after the prompt. */
static void test_completion_matches_cli(void **state) {
    (void)state;
    const char *model = test_require_model("stories260K.bin");
    server_proc sp;
    server_start(&sp, model, NULL);
    json_t *v = post_json(&sp, "/v1/completions",
                          "{\"model\":\"x\",\"prompt\":\"Once upon a time\",\"max_tokens\":60,\"temperature\":0}", 200);
    assert_string_equal(str_at(v, "object"), "text_completion");
    assert_string_equal(str_at(v, "model"), "stories260K.bin");
    assert_string_equal(str_at(v, "choices.0.finish_reason"), "length");
    assert_int_equal(int_at(v, "usage", "prompt_tokens"), 5);
    assert_int_equal(int_at(v, "usage", "completion_tokens"), 60);
    assert_int_equal(int_at(v, "usage", "total_tokens"), 65);
    assert_true(strncmp(str_at(v, "id"), "cmpl-", 5) == 0);

    const char *args[] = {model, "-z", test_model_path("tok512.bin"), "-t", "0", "-n", "64", "-i", "Once upon a time",
                          "--no-timer", NULL};
    test_run run;
    assert_int_equal(test_run_tool(test_llama2_bin(), args, &run), 0);
    char expected[8192];
    snprintf(expected, sizeof expected, "Once upon a time%s\n", str_at(v, "choices.0.text"));
    assert_string_equal(run.out, expected);
    test_run_free(&run);
    json_decref(v);
    server_stop(&sp);
}

/* A GGUF twin of the model, served with the tokenizer it carries (no -z),
 * completes as the llama2 program does on the checkpoint. */
static void test_gguf_completion_matches_cli(void **state) {
    (void)state;
    const char *model = test_require_model("stories260K.bin");
    char bin_path[4096], twin[4200];
    snprintf(bin_path, sizeof bin_path, "%s", model);
    snprintf(twin, sizeof twin, "%.4000s/stories260K.gguf", tmp_dir);
    const char *quantize[] = {bin_path, twin, "--type", "f32", "-z", test_model_path("tok512.bin"), "--force", NULL};
    test_run run;
    assert_int_equal(test_run_tool(test_require_tool("llama2-quantize"), quantize, &run), 0);
    test_run_free(&run);
    server_proc sp;
    server_start(&sp, twin, NULL);
    json_t *v = post_json(&sp, "/v1/completions",
                          "{\"model\":\"x\",\"prompt\":\"Once upon a time\",\"max_tokens\":60,\"temperature\":0}", 200);
    assert_string_equal(str_at(v, "model"), "stories260K.gguf");
    assert_int_equal(int_at(v, "usage", "prompt_tokens"), 5);
    const char *args[] = {bin_path, "-z", test_model_path("tok512.bin"), "-t", "0", "-n", "64", "-i", "Once upon a time",
                          "--no-timer", NULL};
    assert_int_equal(test_run_tool(test_llama2_bin(), args, &run), 0);
    char expected[8192];
    snprintf(expected, sizeof expected, "Once upon a time%s\n", str_at(v, "choices.0.text"));
    assert_string_equal(run.out, expected);
    test_run_free(&run);
    json_decref(v);
    server_stop(&sp);
}

/* A stream is the whole answer's text in chunks, and ends as OpenAI's. */
static void test_stream_equals_whole_answer(void **state) {
    (void)state;
    server_proc sp;
    server_start(&sp, test_require_model("stories260K.bin"), NULL);
    for (int chat = 0; chat < 2; chat++) {
        const char *path = chat ? "/v1/chat/completions" : "/v1/completions";
        const char *input = chat ? "\"messages\":[{\"role\":\"system\",\"content\":\"Tell a story.\"},"
                                   "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"A cat\"}]}]"
                                 : "\"prompt\":\"The dog\"";
        char body[512];
        snprintf(body, sizeof body, "{%s,\"max_tokens\":80,\"seed\":42,\"temperature\":0.9,\"top_k\":40}", input);
        json_t *whole = post_json(&sp, path, body, 200);
        snprintf(body, sizeof body,
                 "{%s,\"max_tokens\":80,\"seed\":42,\"temperature\":0.9,\"top_k\":40,\"stream\":true,"
                 "\"stream_options\":{\"include_usage\":true}}",
                 input);
        reply r;
        post(&sp, path, body, &r);
        assert_int_equal(r.status, 200);
        assert_non_null(strstr(r.head, "Content-Type: text/event-stream"));
        char finish[32];
        int usage;
        char *text = stream_text(r.body, chat, 0, finish, sizeof finish, &usage);
        assert_string_equal(text, str_at(whole, chat ? "choices.0.message.content" : "choices.0.text"));
        assert_string_equal(finish, str_at(whole, "choices.0.finish_reason"));
        assert_int_equal(usage, int_at(whole, "usage", "completion_tokens"));
        if (chat) {
            assert_string_equal(str_at(whole, "object"), "chat.completion");
            assert_string_equal(str_at(whole, "choices.0.message.role"), "assistant");
            assert_non_null(strstr(r.body, "\"delta\":{\"role\":\"assistant\",\"content\":\"\"}"));
        }
        free(text);
        reply_free(&r);
        json_decref(whole);
    }
    server_stop(&sp);
}

/* A connection with an HTTP/1.0 request written but for its last byte
 * (HTTP/1.0: the answer is not chunked, and ends when the server closes). */
static int start_request(const server_proc *sp, const char *path, const char *body) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)sp->port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    char request[4096];
    int n = snprintf(request, sizeof request,
                     "POST %s HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s", path,
                     strlen(body), body);
    assert_int_equal(write(fd, request, (size_t)n - 1), n - 1);
    return fd;
}

/* 16 prompts, each alone, then all 16 at once as streams (their last bytes
 * sent together, so that they arrive within moments and run side by side):
 * every client gets its solo text, complete; and they shared the steps. */
static void sixteen_clients(const char *model) {
    server_proc sp;
    const char *args[] = {"--parallel", "16", "--batch", "32", NULL};
    server_start(&sp, model, args);
    enum { N = 16 };
    static const char *const starts[N] = {"Once", "The cat", "Tom", "A big dog", "Lily", "The sun", "One day",
                                          "Sam and Sue", "The bird", "In the park", "Ben", "A little boy",
                                          "The tree", "Mia", "The red ball", "Max"};
    char *solo[N], streamed[N][256];
    for (int i = 0; i < N; i++) {
        char body[256];
        snprintf(body, sizeof body, "{\"prompt\":\"%s\",\"max_tokens\":64,\"temperature\":0,\"ignore_eos\":%s}",
                 starts[i], i % 2 ? "true" : "false");
        json_t *v = post_json(&sp, "/v1/completions", body, 200);
        solo[i] = strdup(str_at(v, "choices.0.text"));
        json_decref(v);
        snprintf(streamed[i], sizeof streamed[i],
                 "{\"prompt\":\"%s\",\"max_tokens\":64,\"temperature\":0,\"ignore_eos\":%s,\"stream\":true}",
                 starts[i], i % 2 ? "true" : "false");
    }
    const double steps_before = metric(&sp, "llama2_steps_total", NULL);
    const double tokens_before = metric(&sp, "llama2_generated_tokens_total", NULL);
    int fds[N];
    for (int i = 0; i < N; i++) fds[i] = start_request(&sp, "/v1/completions", streamed[i]);
    for (int i = 0; i < N; i++) assert_int_equal(write(fds[i], streamed[i] + strlen(streamed[i]) - 1, 1), 1);
    for (int i = 0; i < N; i++) {
        size_t len = 0, cap = 65536;
        char *out = malloc(cap);
        for (ssize_t n; (n = read(fds[i], out + len, cap - len - 1)) > 0;) {
            len += (size_t)n;
            if (len + 4096 > cap) out = realloc(out, cap *= 2);
        }
        out[len] = '\0';
        close(fds[i]);
        reply r;
        parse_reply(out, len, &r);
        assert_int_equal(r.status, 200);
        char finish[32];
        int usage;
        char *text = stream_text(r.body, 0, 0, finish, sizeof finish, &usage);
        if (strcmp(text, solo[i]) != 0)
            fail_msg("client %d ('%s'): alone '%s', with 15 others '%s'", i, starts[i], solo[i], text);
        free(text);
        reply_free(&r);
        free(out);
        free(solo[i]);
    }
    /* Batched: far fewer steps than tokens (one step a token each, alone). */
    const double steps = metric(&sp, "llama2_steps_total", NULL) - steps_before;
    const double tokens = metric(&sp, "llama2_generated_tokens_total", NULL) - tokens_before;
    if (!(steps < tokens / 4)) fail_msg("%.0f steps for %.0f tokens: the streams were not batched", steps, tokens);
    assert_int_equal((int)metric(&sp, "llama2_slots_busy", NULL), 0);
    server_stop(&sp);
}

static void test_sixteen_streams_f32(void **state) {
    (void)state;
    sixteen_clients(test_require_model("stories260K.bin"));
}

static void test_sixteen_streams_int8(void **state) {
    (void)state;
    sixteen_clients(int8_model);
}

/* n choices: the prompt once, each choice the text of a request with that
 * choice's seed (the seed + its index) alone. */
static void test_n_choices(void **state) {
    (void)state;
    server_proc sp;
    const char *args[] = {"--parallel", "3", NULL};
    server_start(&sp, test_require_model("stories260K.bin"), args);
    json_t *v = post_json(&sp, "/v1/completions",
                          "{\"prompt\":\"Once upon a time\",\"max_tokens\":50,\"n\":3,\"seed\":100,\"temperature\":1}",
                          200);
    json_t *choices = json_object_get(v, "choices");
    assert_int_equal(json_array_size(choices), 3);
    assert_int_equal(int_at(v, "usage", "prompt_tokens"), 5);
    for (int i = 0; i < 3; i++) {
        char body[256], key[64];
        snprintf(body, sizeof body, "{\"prompt\":\"Once upon a time\",\"max_tokens\":50,\"seed\":%d,\"temperature\":1}",
                 100 + i);
        json_t *one = post_json(&sp, "/v1/completions", body, 200);
        snprintf(key, sizeof key, "choices.%d.text", i);
        assert_string_equal(str_at(v, key), str_at(one, "choices.0.text"));
        json_decref(one);
    }
    assert_string_not_equal(str_at(v, "choices.0.text"), str_at(v, "choices.1.text"));
    json_decref(v);
    server_stop(&sp);
}

/* A stop string ends the text before it, also in a stream, where no byte
 * of it is sent. */
static void test_stop_strings(void **state) {
    (void)state;
    server_proc sp;
    server_start(&sp, test_require_model("stories260K.bin"), NULL);
    json_t *full = post_json(&sp, "/v1/completions",
                             "{\"prompt\":\"Once upon a time\",\"max_tokens\":60,\"temperature\":0}", 200);
    const char *text = str_at(full, "choices.0.text");
    const char *at = strstr(text, " park");
    assert_non_null(at);
    for (int stream = 0; stream < 2; stream++) {
        char body[256];
        snprintf(body, sizeof body,
                 "{\"prompt\":\"Once upon a time\",\"max_tokens\":60,\"temperature\":0,\"stop\":[\"zzz\",\" park\"],"
                 "\"stream\":%s}",
                 stream ? "true" : "false");
        reply r;
        post(&sp, "/v1/completions", body, &r);
        assert_int_equal(r.status, 200);
        char finish[32];
        int usage;
        char *got;
        if (stream) {
            got = stream_text(r.body, 0, 0, finish, sizeof finish, &usage);
            assert_null(strstr(r.body, " park"));
            assert_null(strstr(r.body, "\" p\""));
        } else {
            json_t *v = parse_json(r.body);
            got = strdup(str_at(v, "choices.0.text"));
            snprintf(finish, sizeof finish, "%s", str_at(v, "choices.0.finish_reason"));
            json_decref(v);
        }
        assert_int_equal(strlen(got), (size_t)(at - text));
        assert_memory_equal(got, text, strlen(got));
        assert_string_equal(finish, "stop");
        free(got);
        reply_free(&r);
    }
    json_decref(full);
    server_stop(&sp);
}

/* A client that hangs up mid-stream frees its slot at once; with the slot
 * and the queue taken, the next request is a 503. */
static void test_disconnect_frees_slot(void **state) {
    (void)state;
    server_proc sp;
    const char *args[] = {"--parallel", "1", "--queue", "1", NULL};
    server_start(&sp, slow_model, args);
    /* A stream read to its first text, then the socket closed. */
    const char *body = "{\"prompt\":\"Once\",\"max_tokens\":2000,\"ignore_eos\":true,\"stream\":true}";
    int fd = start_request(&sp, "/v1/completions", body);
    assert_int_equal(write(fd, body + strlen(body) - 1, 1), 1);
    char seen[65536];
    size_t len = 0;
    while (len < sizeof seen - 1) {
        ssize_t n = read(fd, seen + len, sizeof seen - 1 - len);
        assert_true(n > 0);
        len += (size_t)n;
        seen[len] = '\0';
        if (strstr(seen, "\"text\":\"")) break;
    }
    assert_int_equal((int)metric(&sp, "llama2_slots_busy", NULL), 1);

    /* While it runs: one more waits in the queue, the next is turned away. */
    char queued_out[4200];
    snprintf(queued_out, sizeof queued_out, "%s/queued.txt", tmp_dir);
    reply r;
    pid_t queued = fork();
    if (queued == 0) {
        int out = open(queued_out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(out, 1);
        char *argv[40], url[256];
        curl_argv(argv, &sp, "POST", "/v1/completions", NULL, "{\"prompt\":\"Once\",\"max_tokens\":5}", url, sizeof url);
        execv(argv[0], argv);
        _exit(127);
    }
    for (int i = 0; i < 200 && metric(&sp, "llama2_queue_length", NULL) < 1; i++) usleep(10000);
    assert_int_equal((int)metric(&sp, "llama2_queue_length", NULL), 1);
    post(&sp, "/v1/completions", "{\"prompt\":\"Once\",\"max_tokens\":5}", &r);
    assert_int_equal(r.status, 503);
    assert_non_null(strstr(r.head, "Retry-After: 1"));
    json_t *e = parse_json(r.body);
    assert_string_equal(str_at(e, "error.type"), "server_error");
    assert_string_equal(str_at(e, "error.code"), "overloaded");
    json_decref(e);
    reply_free(&r);
    assert_int_equal((int)metric(&sp, "llama2_requests_rejected_total", NULL), 1);

    /* The hang-up: the slot goes to the queued request within moments. */
    const double hung_up = llama2_time_seconds();
    close(fd);
    int status;
    waitpid(queued, &status, 0);
    const double waited = llama2_time_seconds() - hung_up;
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (waited > 5.0) fail_msg("the queued request waited %.1f s after the hang-up", waited);
    for (int i = 0; i < 100 && metric(&sp, "llama2_slots_busy", NULL) > 0; i++) usleep(10000);
    assert_int_equal((int)metric(&sp, "llama2_slots_busy", NULL), 0);
    assert_int_equal((int)metric(&sp, "llama2_requests_cancelled_total", NULL), 1);
    assert_int_equal((int)metric(&sp, "llama2_requests_finished_total", NULL), 1);
    /* The hung-up stream stopped far short of its 2000 tokens. */
    assert_true(metric(&sp, "llama2_generated_tokens_total", NULL) < 1500);
    server_stop(&sp);
}

/* ---------------------------------------------------- the prefix cache */

/* usage.prompt_tokens_details.cached_tokens of an answer or of a stream's
 * usage chunk. */
static int cached_tokens_in(const char *body) {
    const char *key = "\"prompt_tokens_details\":{\"cached_tokens\":";
    const char *at = strstr(body, key);
    if (!at) fail_msg("no prompt_tokens_details.cached_tokens in '%.300s'", body);
    return atoi(at + strlen(key));
}

/* One request to a server: choice i's text in texts[i] (malloc'd), the
 * cached tokens returned. */
static int ask(const server_proc *sp, const char *path, json_t *body, int n, char **texts) {
    char *text = json_dumps(body, JSON_COMPACT);
    reply r;
    post(sp, path, text, &r);
    free(text);
    if (r.status != 200) fail_msg("%s answered %d: %s", path, r.status, r.body);
    const int chat = strstr(path, "chat") != NULL;
    if (json_is_true(json_object_get(body, "stream"))) {
        for (int i = 0; i < n; i++) {
            char finish[32];
            int usage;
            texts[i] = stream_text(r.body, chat, i, finish, sizeof finish, &usage);
        }
    } else {
        json_t *v = parse_json(r.body);
        for (int i = 0; i < n; i++) {
            char key[64];
            snprintf(key, sizeof key, chat ? "choices.%d.message.content" : "choices.%d.text", i);
            texts[i] = strdup(str_at(v, key));
        }
        json_decref(v);
    }
    const int cached = cached_tokens_in(r.body);
    reply_free(&r);
    return cached;
}

/* A conversation of four turns (chat: each turn the one before, its reply
 * and a new message; then completions that continue their own text), asked
 * of a server with the prefix cache and of one without: the same text, turn
 * by turn, whole and streamed, one choice and three; the cache reused the
 * turns before, and /metrics counts it. */
static void prefix_cache_same_text(const char *model) {
    server_proc on, off;
    const char *on_args[] = {"--parallel", "3", NULL};
    const char *off_args[] = {"--parallel", "3", "--no-prefix-cache", NULL};
    server_start(&on, model, on_args);
    server_start(&off, model, off_args);
    json_t *messages = json_pack("[{s:s, s:s}, {s:s, s:s}]", "role", "system", "content", "You tell short stories.",
                                 "role", "user", "content", "Tell me a story about a cat.");
    char prompt[8192] = "Once upon a time, there was a dog";
    int hits = 0, reused = 0;
    for (int turn = 0; turn < 8; turn++) {
        const int chat = turn < 4, n = turn % 4 == 2 ? 3 : 1, stream = turn % 2 == 1;
        json_t *body = json_pack("{s:i, s:f, s:i, s:i, s:b, s:{s:b}}", "max_tokens", 40, "temperature", 0.8, "seed",
                                 11 + turn, "n", n, "stream", stream, "stream_options", "include_usage", 1);
        if (!stream) json_object_del(body, "stream_options");
        if (chat)
            json_object_set(body, "messages", messages);
        else
            json_object_set_new(body, "prompt", json_string(prompt));
        char *with[3], *without[3];
        const char *path = chat ? "/v1/chat/completions" : "/v1/completions";
        const int cached = ask(&on, path, body, n, with);
        assert_int_equal(ask(&off, path, body, n, without), 0);
        for (int i = 0; i < n; i++)
            if (strcmp(with[i], without[i]) != 0)
                fail_msg("turn %d choice %d: with the prefix cache '%s', without '%s'", turn, i, with[i], without[i]);
        /* Each turn after a conversation's first begins with the last. */
        if (turn % 4 != 0 && cached < 10) fail_msg("turn %d reused %d tokens", turn, cached);
        if (cached > 0) hits++;
        reused += cached;
        if (chat) {
            json_array_append_new(messages, json_pack("{s:s, s:s}", "role", "assistant", "content", with[0]));
            json_array_append_new(messages, json_pack("{s:s, s:s}", "role", "user", "content", "And then?"));
        } else {
            snprintf(prompt + strlen(prompt), sizeof prompt - strlen(prompt), "%s", with[0]);
        }
        for (int i = 0; i < n; i++) {
            free(with[i]);
            free(without[i]);
        }
        json_decref(body);
    }
    json_decref(messages);
    assert_int_equal((int)metric(&on, "llama2_prefix_cache_hits_total", NULL), hits);
    assert_int_equal((int)metric(&on, "llama2_prefix_cache_misses_total", NULL), 8 - hits);
    assert_int_equal((int)metric(&on, "llama2_prefix_cache_tokens_total", NULL), reused);
    assert_int_equal((int)metric(&off, "llama2_prefix_cache_hits_total", NULL), 0);
    server_stop(&on);
    server_stop(&off);
}

static void test_prefix_cache_f32(void **state) {
    (void)state;
    prefix_cache_same_text(test_require_model("stories260K.bin"));
}

static void test_prefix_cache_int8(void **state) {
    (void)state;
    prefix_cache_same_text(test_require_model("stories260K_q80_gs4.bin"));
}

/* --cache-ram: one slot, four conversations of 395 token ids each (with
 * the 7 tokens generated and fed back, 402 positions: 126 pages of 4 KiB
 * and 1,608 bytes of tokens on stories260K, 517,704 bytes as the store
 * counts them) and a store of 1 MiB, which holds two: the store never
 * holds more; a conversation that comes back after another took the
 * slot gets its positions from the store while it holds them (the oldest
 * goes first); one that shares only its beginning with a stored entry
 * reuses that much and leaves the entry for its own conversation; the text
 * is always that of a server without a cache. */
static void test_prefix_cache_ram(void **state) {
    (void)state;
    const char *model = test_require_model("stories260K.bin");
    server_proc on, off;
    const char *on_args[] = {"--parallel", "1", "--cache-ram", "1", NULL};
    const char *off_args[] = {"--parallel", "1", "--no-prefix-cache", NULL};
    server_start(&on, model, on_args);
    server_start(&off, model, off_args);
    /* A, B, C; D: A's first 40 tokens, then its own. */
    json_t *prompts[4];
    uint32_t x = 12345;
    for (int c = 0; c < 4; c++) {
        prompts[c] = json_array();
        json_array_append_new(prompts[c], json_integer(1));
        for (int i = 1; i < 395; i++) {
            x = x * 1664525u + 1013904223u;
            json_t *id = c == 3 && i < 40 ? json_incref(json_array_get(prompts[0], (size_t)i))
                                          : json_integer(3 + (x >> 8) % 509);
            json_array_append_new(prompts[c], id);
        }
    }
    /* A, B, C (the store: A, B); A: C's positions push A's out (the store:
     * B, C), so A is evaluated again; C: from the store (A's push B's out);
     * A: from the store; B: long gone (the store: C, A); D: A's first 40
     * from the store, which keeps A (B's push C's out); A: from the store.
     * STORE: at least 390 reused; else exactly so many. */
    enum { STORE = -1 };
    static const int order[] = {0, 1, 2, 0, 2, 0, 1, 3, 0};
    static const int expect_reused[] = {0, 1, 1, 1, STORE, STORE, 1, 40, STORE};
    for (size_t k = 0; k < sizeof order / sizeof order[0]; k++) {
        json_t *body = json_pack("{s:O, s:i, s:i}", "prompt", prompts[order[k]], "max_tokens", 8, "temperature", 0);
        char *with, *without;
        const int cached = ask(&on, "/v1/completions", body, 1, &with);
        ask(&off, "/v1/completions", body, 1, &without);
        if (strcmp(with, without) != 0) fail_msg("request %zu: with the store '%s', without '%s'", k, with, without);
        if (expect_reused[k] == STORE ? cached < 390 : cached != expect_reused[k])
            fail_msg("request %zu (conversation %d) reused %d tokens", k, order[k], cached);
        const double held = metric(&on, "llama2_prefix_cache_ram_bytes", NULL);
        if (held > 1048576) fail_msg("request %zu: the store holds %.0f bytes, over its 1 MiB", k, held);
        /* The store's high-water mark: within the cap; two entries once the
         * third conversation has come. */
        const double peak = metric(&on, "llama2_prefix_cache_ram_peak_bytes", NULL);
        if (peak > 1048576 || (k >= 2 && peak != 2 * 517704))
            fail_msg("request %zu: the store's peak is %.0f bytes", k, peak);
        free(with);
        free(without);
        json_decref(body);
    }
    for (int c = 0; c < 4; c++) json_decref(prompts[c]);
    server_stop(&on);
    server_stop(&off);
}

/* A client that hangs up mid-prompt: the slot keeps only the positions it
 * evaluated, and the same prompt asked again goes on from there to the
 * text a server without the cache gives. */
static void test_prefix_cache_hang_up(void **state) {
    (void)state;
    char prompt[6000] = "";
    for (int i = 0; i < 60; i++) strcat(prompt, "The cat sat on the mat and ");
    char stream_body[6400], body[6400];
    snprintf(stream_body, sizeof stream_body, "{\"prompt\":\"%s\",\"max_tokens\":20,\"temperature\":0,\"stream\":true}",
             prompt);
    snprintf(body, sizeof body, "{\"prompt\":\"%s\",\"max_tokens\":20,\"temperature\":0}", prompt);
    server_proc sp;
    const char *args[] = {"--parallel", "1", "--batch", "2", NULL};
    server_start(&sp, slow_model, args);
    int fd = start_request(&sp, "/v1/completions", stream_body);
    assert_int_equal(write(fd, stream_body + strlen(stream_body) - 1, 1), 1);
    for (int i = 0; i < 1000 && metric(&sp, "llama2_prompt_tokens_total", NULL) < 20; i++) usleep(2000);
    close(fd);
    for (int i = 0; i < 500 && metric(&sp, "llama2_slots_busy", NULL) > 0; i++) usleep(10000);
    assert_int_equal((int)metric(&sp, "llama2_requests_cancelled_total", NULL), 1);
    json_t *again = post_json(&sp, "/v1/completions", body, 200);
    const int n_prompt = (int)int_at(again, "usage", "prompt_tokens");
    const int cached = (int)json_integer_value(
        json_object_get(json_object_get(json_object_get(again, "usage"), "prompt_tokens_details"), "cached_tokens"));
    if (cached <= 0 || cached >= n_prompt - 1)
        fail_msg("the hung-up prompt left %d of its %d tokens cached: not part of it", cached, n_prompt);
    server_stop(&sp);
    const char *off_args[] = {"--parallel", "1", "--no-prefix-cache", NULL};
    server_start(&sp, slow_model, off_args);
    json_t *fresh = post_json(&sp, "/v1/completions", body, 200);
    assert_string_equal(str_at(again, "choices.0.text"), str_at(fresh, "choices.0.text"));
    json_decref(again);
    json_decref(fresh);
    server_stop(&sp);
}

/* ------------------------------------------------ logprobs, logit_bias */

/* The library's view of a greedy completion: the log-softmax of the
 * logits after each position (llama2_session_eval), in double. */
typedef struct reference {
    llama2_model *model;
    llama2_session *session;
    llama2_tokenizer *tokenizer;
    int vocab;
} reference;

static void reference_open(reference *ref, const char *model) {
    llama2_error err;
    assert_int_equal(llama2_model_open(model, NULL, &ref->model, &err), LLAMA2_OK);
    assert_int_equal(llama2_session_create(ref->model, NULL, &ref->session, &err), LLAMA2_OK);
    ref->vocab = llama2_model_config(ref->model)->vocab_size;
    assert_int_equal(llama2_tokenizer_open(test_require_model("tok512.bin"), ref->vocab, &ref->tokenizer, &err),
                     LLAMA2_OK);
}

static void reference_close(reference *ref) {
    llama2_tokenizer_close(ref->tokenizer);
    llama2_session_destroy(ref->session);
    llama2_model_close(ref->model);
}

/* Evaluates tokens at pos and writes the log-probabilities that follow. */
static void reference_logprobs(reference *ref, const int *tokens, int n, int pos, double *out) {
    float *logits;
    llama2_error err;
    assert_int_equal(llama2_session_eval(ref->session, tokens, n, pos, &logits, &err), LLAMA2_OK);
    double top = logits[0], sum = 0;
    for (int i = 1; i < ref->vocab; i++) top = logits[i] > top ? logits[i] : top;
    for (int i = 0; i < ref->vocab; i++) sum += exp(logits[i] - top);
    for (int i = 0; i < ref->vocab; i++) out[i] = logits[i] - top - log(sum);
}

static int argmax(const double *v, int n, int skip) {
    int best = skip == 0 ? 1 : 0;
    for (int i = 0; i < n; i++)
        if (i != skip && v[i] > v[best]) best = i;
    return best;
}

static const char *piece_of(const reference *ref, int prev, int token, char *buf, size_t size) {
    size_t len;
    const char *p = llama2_token_piece(ref->tokenizer, prev, token, &len);
    snprintf(buf, size, "%.*s", (int)len, p);
    return buf;
}

/* logprobs are the model's own distribution: for a greedy completion, each
 * token's logprob, its top 5 and text_offset match the library's logits on
 * the same tokens (legacy shape); a chat stream carries the same entries as
 * the whole answer (chat shape); logit_bias changes the text and not the
 * logprobs: -100 bans the likeliest token, +100 forces another. */
static void test_logprobs_and_bias(void **state) {
    (void)state;
    const char *model = test_require_model("stories260K.bin");
    server_proc sp;
    server_start(&sp, model, NULL);
    reference ref;
    reference_open(&ref, model);
    double *lp = malloc((size_t)ref.vocab * sizeof *lp);
    int tokens[64] = {1};
    int n = 0;
    llama2_error err;
    assert_int_equal(llama2_tokenize(ref.tokenizer, "Once upon a time", 1, 0, tokens, &n, &err), LLAMA2_OK);
    json_t *v = post_json(&sp, "/v1/completions",
                          "{\"prompt\":\"Once upon a time\",\"max_tokens\":12,\"temperature\":0,\"logprobs\":5}", 200);
    json_t *got = json_object_get(json_array_get(json_object_get(v, "choices"), 0), "logprobs");
    const size_t n_got = json_array_size(json_object_get(got, "tokens"));
    assert_int_equal(n_got, 12);
    int pos = 0, offset = 0;
    for (size_t i = 0; i < n_got; i++) {
        reference_logprobs(&ref, tokens + pos, n - pos, pos, lp);
        pos = n;
        const int next = argmax(lp, ref.vocab, -1);
        char piece[64], key[64];
        assert_string_equal(json_string_value(json_array_get(json_object_get(got, "tokens"), i)),
                            piece_of(&ref, tokens[n - 1], next, piece, sizeof piece));
        const double server = json_real_value(json_array_get(json_object_get(got, "token_logprobs"), i));
        if (fabs(server - lp[next]) > 1e-4) fail_msg("token %zu: logprob %g, the library's %g", i, server, lp[next]);
        assert_int_equal(json_integer_value(json_array_get(json_object_get(got, "text_offset"), i)), offset);
        json_t *top = json_array_get(json_object_get(got, "top_logprobs"), i);
        assert_int_equal(json_object_size(top), 5);
        double rest[512];
        memcpy(rest, lp, (size_t)ref.vocab * sizeof *lp);
        for (int k = 0; k < 5; k++) {
            const int t = argmax(rest, ref.vocab, -1);
            json_t *x = json_object_get(top, piece_of(&ref, tokens[n - 1], t, key, sizeof key));
            if (!x || fabs(json_real_value(x) - lp[t]) > 1e-4)
                fail_msg("token %zu: top %d '%s' (%g) is not in the answer's top_logprobs", i, k, key, lp[t]);
            rest[t] = -INFINITY;
        }
        offset += (int)strlen(piece);
        tokens[n++] = next;
    }
    json_decref(v);

    /* Chat: whole and streamed, the same entries; each token's bytes its text. */
    const char *chat = "\"messages\":[{\"role\":\"user\",\"content\":\"Tell me a story.\"}],\"max_tokens\":16,"
                       "\"seed\":3,\"logprobs\":true,\"top_logprobs\":3";
    char body[512];
    snprintf(body, sizeof body, "{%s}", chat);
    v = post_json(&sp, "/v1/chat/completions", body, 200);
    json_t *choice = json_array_get(json_object_get(v, "choices"), 0);
    json_t *whole = json_object_get(json_object_get(choice, "logprobs"), "content");
    snprintf(body, sizeof body, "{%s,\"stream\":true}", chat);
    reply r;
    post(&sp, "/v1/chat/completions", body, &r);
    assert_int_equal(r.status, 200);
    json_t *streamed = json_array();
    for (const char *p = strstr(r.body, "data: {"); p; p = strstr(p + 1, "data: {")) {
        const char *end = strstr(p, "\n\n");
        char *data = strndup(p + 6, (size_t)(end - p - 6));
        json_t *chunk = parse_json(data);
        json_t *c = json_object_get(json_object_get(json_array_get(json_object_get(chunk, "choices"), 0), "logprobs"),
                                    "content");
        if (c) json_array_extend(streamed, c);
        json_decref(chunk);
        free(data);
    }
    assert_true(json_array_size(whole) > 0);
    assert_true(json_equal(whole, streamed));
    char text[4096] = "";
    for (size_t i = 0; i < json_array_size(whole); i++) {
        json_t *e = json_array_get(whole, i);
        json_t *bytes = json_object_get(e, "bytes");
        char token[64] = "";
        for (size_t b = 0; b < json_array_size(bytes); b++)
            token[b] = (char)json_integer_value(json_array_get(bytes, b));
        assert_string_equal(token, str_at(e, "token"));
        strcat(text, token);
        assert_int_equal(json_array_size(json_object_get(e, "top_logprobs")), 3);
        assert_true(json_real_value(json_object_get(e, "logprob")) <= 0);
    }
    assert_string_equal(text, str_at(v, "choices.0.message.content"));
    reply_free(&r);
    json_decref(streamed);
    json_decref(v);

    /* logit_bias: the greedy first token banned, then another forced. */
    reference_logprobs(&ref, tokens, 5, 0, lp);
    const int first = argmax(lp, ref.vocab, -1), second = argmax(lp, ref.vocab, first);
    char piece[64];
    snprintf(body, sizeof body,
             "{\"prompt\":\"Once upon a time\",\"max_tokens\":1,\"temperature\":0,\"logprobs\":0,"
             "\"logit_bias\":{\"%d\":-100}}",
             first);
    v = post_json(&sp, "/v1/completions", body, 200);
    assert_string_equal(str_at(v, "choices.0.text"), piece_of(&ref, tokens[4], second, piece, sizeof piece));
    /* The logprob is the model's, before the bias. */
    got = json_object_get(json_array_get(json_object_get(v, "choices"), 0), "logprobs");
    assert_true(fabs(json_real_value(json_array_get(json_object_get(got, "token_logprobs"), 0)) - lp[second]) < 1e-4);
    json_decref(v);
    const int forced = 400;
    snprintf(body, sizeof body,
             "{\"prompt\":\"Once upon a time\",\"max_tokens\":4,\"temperature\":1,\"seed\":5,"
             "\"logit_bias\":{\"%d\":100}}",
             forced);
    v = post_json(&sp, "/v1/completions", body, 200);
    char expected[256];
    snprintf(expected, sizeof expected, "%s%s%s%s", piece_of(&ref, tokens[4], forced, piece, sizeof piece), piece,
             piece, piece);
    assert_string_equal(str_at(v, "choices.0.text"), expected);
    json_decref(v);
    free(lp);
    reference_close(&ref);
    server_stop(&sp);
}

/* ------------------------------------------------------- the bad inputs */

typedef struct bad_case {
    const char *what;
    const char *method, *path;
    const char *headers[3];
    const char *body;      /* NULL: none; "@big": larger than --max-body */
    int status;
    const char *code;      /* the error object's code, NULL for null */
    const char *param;     /* NULL for null */
    const char *message;   /* a part of the message */
} bad_case;

#define KEY "Authorization: Bearer sesame"
static const bad_case bad_cases[] = {
    {"malformed JSON", "POST", "/v1/chat/completions", {KEY}, "{\"messages\": [", 400, "invalid_json", NULL,
     "the body is not valid JSON"},
    {"not an object", "POST", "/v1/completions", {KEY}, "[1, 2]", 400, "invalid_json", NULL,
     "the body must be a JSON object"},
    {"empty body", "POST", "/v1/completions", {KEY}, NULL, 400, "invalid_json", NULL, "the body is not valid JSON"},
    {"invalid UTF-8", "POST", "/v1/completions", {KEY}, "{\"prompt\": \"\xff\xfe\"}", 400, "invalid_json", NULL,
     "the body is not valid JSON"},
    {"missing prompt", "POST", "/v1/completions", {KEY}, "{\"max_tokens\": 5}", 400, "missing_required_parameter",
     "prompt", "'prompt' is required"},
    {"missing messages", "POST", "/v1/chat/completions", {KEY}, "{\"prompt\": \"hi\"}", 400,
     "missing_required_parameter", "messages", "'messages' is required"},
    {"prompt of the wrong type", "POST", "/v1/completions", {KEY}, "{\"prompt\": 5}", 400, "invalid_type", "prompt",
     "'prompt' must be a string or an array of token ids, got an integer"},
    {"several prompts", "POST", "/v1/completions", {KEY}, "{\"prompt\": [\"a\", \"b\"]}", 400, "invalid_value",
     "prompt", "one prompt per request"},
    {"a token id outside the vocabulary", "POST", "/v1/completions", {KEY}, "{\"prompt\": [1, 512]}", 400,
     "invalid_value", "prompt", "token ids from 0 to 511 (item 1 is not one)"},
    {"messages not an array", "POST", "/v1/chat/completions", {KEY}, "{\"messages\": \"hi\"}", 400, "invalid_type",
     "messages", "'messages' must be an array, got a string"},
    {"empty messages", "POST", "/v1/chat/completions", {KEY}, "{\"messages\": []}", 400, "invalid_value", "messages",
     "'messages' is empty"},
    {"an unknown role", "POST", "/v1/chat/completions", {KEY}, "{\"messages\": [{\"role\": \"tool\", \"content\": \"x\"}]}",
     400, "invalid_value", "messages", "role 'tool' is not one of system, developer, user, assistant"},
    {"a message without content", "POST", "/v1/chat/completions", {KEY}, "{\"messages\": [{\"role\": \"user\"}]}", 400,
     "missing_required_parameter", "messages", "a 'user' message needs a 'content'"},
    {"an image part", "POST", "/v1/chat/completions", {KEY},
     "{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image_url\", \"image_url\": {}}]}]}", 400,
     "invalid_value", "messages", "this model reads text only"},
    {"a system message after a user's", "POST", "/v1/chat/completions", {KEY},
     "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"system\", \"content\": \"b\"}]}", 400,
     "invalid_value", "messages", "system"},
    {"an unimplemented field", "POST", "/v1/chat/completions", {KEY},
     "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}], \"tools\": [{\"type\": \"function\"}]}", 400,
     "unsupported_parameter", "tools", "'tools' is not implemented by this server"},
    {"an unknown field", "POST", "/v1/completions", {KEY}, "{\"prompt\": \"a\", \"max_token\": 5}", 400,
     "unknown_parameter", "max_token", "'max_token' is not a parameter of /v1/completions"},
    {"max_tokens a string", "POST", "/v1/completions", {KEY}, "{\"prompt\": \"a\", \"max_tokens\": \"5\"}", 400,
     "invalid_type", "max_tokens", "'max_tokens' must be an integer, got a string"},
    {"max_tokens 0", "POST", "/v1/completions", {KEY}, "{\"prompt\": \"a\", \"max_tokens\": 0}", 400, "invalid_value",
     "max_tokens", "'max_tokens' must be an integer from 1 to 2147483647, got 0"},
    {"temperature a string", "POST", "/v1/completions", {KEY}, "{\"prompt\": \"a\", \"temperature\": \"hot\"}", 400,
     "invalid_type", "temperature", "'temperature' must be a number, got a string"},
    {"temperature 3", "POST", "/v1/completions", {KEY}, "{\"prompt\": \"a\", \"temperature\": 3}", 400, "invalid_value",
     "temperature", "'temperature' must be a number from 0 to 2, got 3"},
    {"top_p 1.5", "POST", "/v1/completions", {KEY}, "{\"prompt\": \"a\", \"top_p\": 1.5}", 400, "invalid_value",
     "top_p", "'top_p' must be a number from 0 to 1, got 1.5"},
    {"top_k -1", "POST", "/v1/completions", {KEY}, "{\"prompt\": \"a\", \"top_k\": -1}", 400, "invalid_value", "top_k",
     "'top_k' must be an integer from 0"},
    {"presence_penalty 5", "POST", "/v1/completions", {KEY}, "{\"prompt\": \"a\", \"presence_penalty\": 5}", 400,
     "invalid_value", "presence_penalty", "from -2 to 2, got 5"},
    {"seed a float", "POST", "/v1/completions", {KEY}, "{\"prompt\": \"a\", \"seed\": 1.5}", 400, "invalid_type", "seed",
     "'seed' must be an integer, got a number"},
    {"stream a string", "POST", "/v1/completions", {KEY}, "{\"prompt\": \"a\", \"stream\": \"yes\"}", 400,
     "invalid_type", "stream", "'stream' must be a boolean, got a string"},
    {"stream_options not an object", "POST", "/v1/completions", {KEY},
     "{\"prompt\": \"a\", \"stream\": true, \"stream_options\": 1}", 400, "invalid_type", "stream_options",
     "'stream_options' must be an object, got an integer"},
    {"stop a number", "POST", "/v1/completions", {KEY}, "{\"prompt\": \"a\", \"stop\": 3}", 400, "invalid_type", "stop",
     "'stop' must be a string or an array of strings, got an integer"},
    {"n more than --parallel", "POST", "/v1/completions", {KEY}, "{\"prompt\": \"a\", \"n\": 3}", 400, "invalid_value",
     "n", "'n' is 3, this server generates at most 2 choices at once (--parallel)"},
    {"n 0", "POST", "/v1/completions", {KEY}, "{\"prompt\": \"a\", \"n\": 0}", 400, "invalid_value", "n",
     "'n' must be an integer from 1"},
    {"logit_bias: a key not a number", "POST", "/v1/completions", {KEY},
     "{\"prompt\": \"a\", \"logit_bias\": {\"abc\": 1}}", 400, "invalid_value", "logit_bias",
     "'logit_bias': the key 'abc' is not a token id (0 to 511)"},
    {"logit_bias: a token past the vocabulary", "POST", "/v1/completions", {KEY},
     "{\"prompt\": \"a\", \"logit_bias\": {\"512\": 1}}", 400, "invalid_value", "logit_bias",
     "'logit_bias': the key '512' is not a token id (0 to 511)"},
    {"logit_bias: a value over 100", "POST", "/v1/chat/completions", {KEY},
     "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}], \"logit_bias\": {\"5\": 101}}", 400,
     "invalid_value", "logit_bias", "'logit_bias': the value of token 5 must be a number from -100 to 100, got 101"},
    {"logit_bias: a value not a number", "POST", "/v1/completions", {KEY},
     "{\"prompt\": \"a\", \"logit_bias\": {\"5\": \"NaN\"}}", 400, "invalid_type", "logit_bias",
     "'logit_bias': the value of token 5 must be a number"},
    {"logit_bias: NaN", "POST", "/v1/completions", {KEY}, "{\"prompt\": \"a\", \"logit_bias\": {\"5\": NaN}}", 400,
     "invalid_json", NULL, "the body is not valid JSON"},
    {"logit_bias not an object", "POST", "/v1/completions", {KEY}, "{\"prompt\": \"a\", \"logit_bias\": [5]}", 400,
     "invalid_type", "logit_bias", "'logit_bias' must be an object, got an array"},
    {"top_logprobs 21", "POST", "/v1/chat/completions", {KEY},
     "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}], \"logprobs\": true, \"top_logprobs\": 21}",
     400, "invalid_value", "top_logprobs", "'top_logprobs' must be an integer from 0 to 20, got 21"},
    {"top_logprobs -1", "POST", "/v1/chat/completions", {KEY},
     "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}], \"logprobs\": true, \"top_logprobs\": -1}",
     400, "invalid_value", "top_logprobs", "'top_logprobs' must be an integer from 0 to 20, got -1"},
    {"top_logprobs not an integer", "POST", "/v1/chat/completions", {KEY},
     "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}], \"logprobs\": true, \"top_logprobs\": 2.5}",
     400, "invalid_type", "top_logprobs", "'top_logprobs' must be an integer, got a number"},
    {"completions: logprobs 21", "POST", "/v1/completions", {KEY}, "{\"prompt\": \"a\", \"logprobs\": 21}", 400,
     "invalid_value", "logprobs", "'logprobs' must be an integer from 0 to 20, got 21"},
    {"completions: logprobs -1", "POST", "/v1/completions", {KEY}, "{\"prompt\": \"a\", \"logprobs\": -1}", 400,
     "invalid_value", "logprobs", "'logprobs' must be an integer from 0 to 20, got -1"},
    {"top_logprobs without logprobs", "POST", "/v1/chat/completions", {KEY},
     "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}], \"top_logprobs\": 2}", 400, "invalid_value",
     "top_logprobs", "'top_logprobs' needs 'logprobs': true"},
    {"completions: logprobs true", "POST", "/v1/completions", {KEY}, "{\"prompt\": \"a\", \"logprobs\": true}", 400,
     "invalid_type", "logprobs", "'logprobs' must be an integer, got true"},
    {"a prompt longer than the context", "POST", "/v1/completions", {KEY}, "@long", 400, "context_length_exceeded",
     "prompt", "the context window holds 64"},
    {"a conversation longer than the context", "POST", "/v1/chat/completions", {KEY}, "@longchat", 400,
     "context_length_exceeded", "messages", "the context window holds 64"},
    {"a body over --max-body", "POST", "/v1/completions", {KEY}, "@big", 413, "request_too_large", NULL,
     "larger than 4096 bytes"},
    {"a body over --max-body, chunked", "POST", "/v1/completions", {KEY, "Transfer-Encoding: chunked"}, "@big", 413,
     "request_too_large", NULL, "larger than 4096 bytes"},
    {"no API key", "POST", "/v1/completions", {NULL}, "{\"prompt\": \"a\"}", 401, "invalid_api_key", NULL,
     "no API key"},
    {"a wrong API key", "GET", "/v1/models", {"Authorization: Bearer sesame2"}, NULL, 401, "invalid_api_key", NULL,
     "incorrect API key"},
    {"a key without Bearer", "GET", "/metrics", {"Authorization: sesame"}, NULL, 401, "invalid_api_key", NULL,
     "incorrect API key"},
    {"an unknown endpoint", "GET", "/v1/engines", {KEY}, NULL, 404, "not_found", NULL, "no such endpoint"},
    {"a path that is not UTF-8", "GET", "/v1/%ff%fe", {KEY}, NULL, 404, "not_found", NULL,
     "no such endpoint: GET /v1/??"},
    {"a role cut inside a character", "POST", "/v1/chat/completions", {KEY},
     "{\"messages\": [{\"role\": \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\u00e9\", \"content\": \"x\"}]}",
     400, "invalid_value", "messages", "role 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa?'"},
    {"the wrong method", "GET", "/v1/chat/completions", {KEY}, NULL, 405, "method_not_allowed", NULL, "use POST"},
    {"/tokenize without content", "POST", "/tokenize", {KEY}, "{\"text\": \"a\"}", 400, "missing_required_parameter",
     "content", "'content' is required"},
    {"/detokenize with a bad id", "POST", "/detokenize", {KEY}, "{\"tokens\": [5, -1]}", 400, "invalid_value",
     "tokens", "item 1 is not one"},
    {"a bad grammar", "POST", "/v1/completions", {KEY}, "{\"prompt\": \"a\", \"grammar\": \"root ::= foo\"}", 400,
     "invalid_value", "grammar", "'grammar': 1:10: unknown rule 'foo'"},
    {"a grammar not a string", "POST", "/v1/completions", {KEY}, "{\"prompt\": \"a\", \"grammar\": 1}", 400,
     "invalid_type", "grammar", "'grammar' must be a string, got an integer"},
    {"a JSON Schema keyword not supported", "POST", "/v1/completions", {KEY},
     "{\"prompt\": \"a\", \"json_schema\": {\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"string\", "
     "\"pattern\": \"x+\"}}}}",
     400, "invalid_value", "json_schema", "'json_schema': #/properties/a: unsupported keyword 'pattern'"},
    {"a response_format of an unknown type", "POST", "/v1/chat/completions", {KEY},
     "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"response_format\": {\"type\": \"xml\"}}", 400,
     "invalid_value", "response_format", "unknown 'response_format' type 'xml' (text, json_object or json_schema)"},
    {"a json_schema response_format without a schema", "POST", "/v1/chat/completions", {KEY},
     "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"response_format\": {\"type\": \"json_schema\"}}",
     400, "invalid_value", "response_format", "needs 'json_schema': {\"schema\": {...}}"},
    {"a $ref cycle in a response_format", "POST", "/v1/chat/completions", {KEY},
     "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"response_format\": {\"type\": \"json_schema\", "
     "\"json_schema\": {\"name\": \"a\", \"schema\": {\"$ref\": \"#/$defs/a\", \"$defs\": {\"a\": {\"$ref\": "
     "\"#/$defs/b\"}, \"b\": {\"$ref\": \"#/$defs/a\"}}}}}}",
     400, "invalid_value", "response_format", "'response_format': #: a '$ref' cycle that never writes a character"},
    {"two grammars", "POST", "/v1/completions", {KEY},
     "{\"prompt\": \"a\", \"grammar\": \"root ::= \\\"x\\\"\", \"response_format\": {\"type\": \"json_object\"}}", 400,
     "invalid_value", "response_format", "'grammar' and 'response_format' both constrain the output: give one of them"},
    {"ignore_eos with a grammar", "POST", "/v1/completions", {KEY},
     "{\"prompt\": \"a\", \"ignore_eos\": true, \"grammar\": \"root ::= \\\"x\\\"\"}", 400, "invalid_value",
     "ignore_eos", "'ignore_eos' cannot go with 'grammar': the output ends where its grammar does"},
};

/* The body of a case, in a malloc'd string. */
static char *case_body(const bad_case *c) {
    if (!c->body) return NULL;
    if (strcmp(c->body, "@big") == 0) {
        char *big = malloc(8001);
        memset(big, 'a', 8000);
        big[8000] = '\0';
        memcpy(big, "{\"prompt\":\"", 11);
        return big;
    }
    if (strcmp(c->body, "@long") == 0 || strcmp(c->body, "@longchat") == 0) {
        char *s = malloc(2048);
        int n = sprintf(s, strcmp(c->body, "@long") == 0 ? "{\"prompt\":\"" : "{\"messages\":[{\"role\":\"user\",\"content\":\"");
        for (int i = 0; i < 70; i++) n += sprintf(s + n, "cat ");
        sprintf(s + n, strcmp(c->body, "@long") == 0 ? "\"}" : "\"}]}");
        return s;
    }
    return strdup(c->body);
}

/* Every bad request: its status and error object; the server carries on. */
static void test_bad_requests(void **state) {
    (void)state;
    server_proc sp;
    const char *args[] = {"--parallel", "2", "--ctx", "64", "--max-body", "4096", "--api-key", "sesame", NULL};
    server_start(&sp, test_require_model("stories260K.bin"), args);
    const int table = getenv("LLAMA2_SERVER_TABLE") != NULL;
    if (table) printf("| request | status | error (code, param): message |\n| --- | --- | --- |\n");
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const bad_case *c = &bad_cases[i];
        char *body = case_body(c);
        reply r;
        http(&sp, c->method, c->path, c->headers, body, &r);
        if (r.status != c->status) fail_msg("%s: status %d, not %d: %s", c->what, r.status, c->status, r.body);
        json_t *e = parse_json(r.body);
        json_t *err = json_object_get(e, "error");
        if (!json_is_object(err) || json_object_size(err) != 4) fail_msg("%s: not an error object: %s", c->what, r.body);
        const char *type = str_at(e, "error.type");
        assert_string_equal(type, c->status == 503 ? "server_error" : "invalid_request_error");
        json_t *code = json_object_get(err, "code"), *param = json_object_get(err, "param");
        if (c->code ? !json_is_string(code) || strcmp(json_string_value(code), c->code) != 0 : !json_is_null(code))
            fail_msg("%s: code %s, not %s", c->what, r.body, c->code ? c->code : "null");
        if (c->param ? !json_is_string(param) || strcmp(json_string_value(param), c->param) != 0 : !json_is_null(param))
            fail_msg("%s: param %s, not %s", c->what, r.body, c->param ? c->param : "null");
        const char *message = str_at(e, "error.message");
        if (!strstr(message, c->message)) fail_msg("%s: message '%s' lacks '%s'", c->what, message, c->message);
        if (c->status == 401) assert_non_null(strstr(r.head, "WWW-Authenticate: Bearer"));
        if (table)
            printf("| %s | %d | `%s`, `%s`: %s |\n", c->what, r.status, c->code ? c->code : "null",
                   c->param ? c->param : "null", message);
        json_decref(e);
        reply_free(&r);
        free(body);
    }
    /* /health needs no key; the server still answers, and a request fits
     * the 64-position context. */
    reply r;
    http(&sp, "GET", "/health", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    reply_free(&r);
    const char *key[] = {KEY, NULL};
    http(&sp, "POST", "/v1/completions", key, "{\"prompt\":\"Once\",\"max_tokens\":100,\"temperature\":0}", &r);
    assert_int_equal(r.status, 200);
    json_t *v = parse_json(r.body);
    assert_string_equal(str_at(v, "choices.0.finish_reason"), "length");
    /* Every position holds a token, and one more is sampled after the last. */
    assert_int_equal(int_at(v, "usage", "prompt_tokens") + int_at(v, "usage", "completion_tokens"), 65);
    json_decref(v);
    reply_free(&r);
    server_stop(&sp);
    /* Not one line of the server's on stderr but the one at start (the
     * model, its weights, the kernels, the slots and the KV cache: 2 slots
     * of 64 positions, 5 layers of 32 key/value floats) and its shutdown
     * note. */
    char *err = test_read_file(sp.err_path, NULL);
    assert_non_null(err);
    llama2_model *m = NULL;
    llama2_error lerr;
    assert_int_equal(llama2_model_open(test_require_model("stories260K.bin"), NULL, &m, &lerr), LLAMA2_OK);
    char start[8192];
    snprintf(start, sizeof start,
             "llama2-server: model %s (fp32 weights, 1.0 MiB), kernels %s, 2 slots of 64 positions, KV cache 0.2 MiB\n"
             "llama2-server: SIGTERM: ",
             test_require_model("stories260K.bin"), llama2_model_kernels_name(m));
    llama2_model_close(m);
    if (strncmp(err, start, strlen(start)) != 0) fail_msg("stderr '%s', expected it to start '%s'", err, start);
    const char *rest = err + strlen(start);
    assert_true(strchr(rest, '\n') == err + strlen(err) - 1); /* the shutdown note is the last line */
    free(err);
}

/* The command line: usage errors are status 2, a bad file 1, one line. */
static void test_command_line(void **state) {
    (void)state;
    const char *bin = server_bin();
    const char *model = test_require_model("stories260K.bin");
    const char *tok = test_require_model("tok512.bin");
    struct {
        const char *args[8];
        int status;
        const char *line;
    } cases[] = {
        {{NULL}, 2, "llama2-server: no checkpoint given"},
        {{model, "--port", "70000"}, 2, "llama2-server: --port: 70000 is out of range: must be an integer from 0 to 65535"},
        {{model, "--parallel", "0"}, 2, "llama2-server: --parallel: 0 is out of range: must be an integer from 1 to 256"},
        {{model, "--cache-ram", "-1"}, 2,
         "llama2-server: --cache-ram: -1 is out of range: must be an integer from 0 to 1048576"},
        {{model, "--chat-template", "x"}, 2, "llama2-server: --chat-template: unknown chat template 'x'"},
        {{model, "--bogus"}, 2, "llama2-server: --bogus: unknown option"},
        {{model, "-z", tok, "--ctx", "100000"}, 2, "llama2-server: --ctx: the model's context is 512 positions"},
        {{"/nonexistent.bin", "-z", tok}, 1, "llama2-server: /nonexistent.bin: cannot open"},
        {{model, "-z", "/nonexistent.tok"}, 1, "llama2-server: /nonexistent.tok: cannot open"},
        {{model, "-z", tok, "--host", "no.such.host.invalid"}, 1, "llama2-server: --host: cannot resolve"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        test_run r;
        assert_int_equal(test_run_tool(bin, cases[i].args, &r), cases[i].status);
        if (strncmp(r.err, cases[i].line, strlen(cases[i].line)) != 0 || strchr(r.err, '\n') != r.err + r.err_len - 1)
            fail_msg("case %zu: stderr '%s', expected one line starting '%s'", i, r.err, cases[i].line);
        assert_int_equal(r.out_len, 0);
        test_run_free(&r);
    }
    /* More threads than processors: a warning, then the start goes on. */
    const int online = l2_processor_count();
    if (online < 1024) {
        char threads[16], expected[512];
        snprintf(threads, sizeof threads, "%d", online + 1);
        const char *args[] = {model, "-z", tok, "--threads", threads, "--host", "no.such.host.invalid", NULL};
        test_run r;
        assert_int_equal(test_run_tool(bin, args, &r), 1);
        test_threads_warning(expected, sizeof expected - 64, "llama2-server", online + 1);
        strcat(expected, "llama2-server: --host: cannot resolve");
        if (strncmp(r.err, expected, strlen(expected)) != 0) fail_msg("stderr '%s', expected '%s...'", r.err, expected);
        test_run_free(&r);
    }
    /* A port in use. */
    server_proc sp;
    server_start(&sp, model, NULL);
    char port[16];
    snprintf(port, sizeof port, "%d", sp.port);
    const char *args[] = {model, "-z", tok, "--port", port, NULL};
    test_run r;
    assert_int_equal(test_run_tool(bin, args, &r), 1);
    assert_non_null(strstr(r.err, "llama2-server: --port: cannot listen on 127.0.0.1 port"));
    assert_non_null(strstr(r.err, "Address already in use"));
    test_run_free(&r);
    server_stop(&sp);
    /* Without -z, where the folder has no tokenizer.bin: the CLI's hint. */
    char *no_z[] = {(char *)bin, (char *)model, NULL};
    test_run_program(no_z, tmp_dir, NULL, 0, &r);
    assert_int_equal(r.status, 1);
    assert_string_equal(r.err,
                        "llama2-server: tokenizer.bin: cannot open: No such file or directory (pass the model's "
                        "tokenizer with -z)\n");
    test_run_free(&r);
    /* --help names every option. */
    const char *help[] = {"--help", NULL};
    assert_int_equal(test_run_tool(bin, help, &r), 0);
    assert_non_null(strstr(r.out, "--api-key"));
    test_run_free(&r);
}

/* Slots whose KV cache does not fit in memory are refused at once, with
 * the numbers: a model of 65536 positions and 32 key/value floats a layer
 * (16 MiB of cache a layer and slot), with layers enough that 256 slots
 * need twice this machine's memory. */
static void test_memory_refused(void **state) {
    (void)state;
    const char *bin = server_bin();
    const char *tok = test_require_model("tok512.bin");
    const size_t memory = l2_physical_memory();
    if (memory == SIZE_MAX) {
        print_message("skipped: the machine's memory cannot be known here\n");
        skip();
    }
    const double per_layer = 256.0 * 65536 * 32 * 2 * sizeof(float);
    const int layers = (int)(2.0 * (double)memory / per_layer) + 1;
    char model[4200];
    snprintf(model, sizeof model, "%s/long.bin", tmp_dir);
    llama2_config c = l2_random_model_config(64, 64, layers, 8, 4, 512, 65536, 1, 1, 0);
    llama2_error err;
    assert_int_equal(l2_write_random_model(model, &c, 5, 0, &err), LLAMA2_OK);
    const char *args[] = {model, "-z", tok, "--parallel", "256", NULL};
    test_run r;
    assert_int_equal(test_run_tool(bin, args, &r), 2);
    int64_t file_bytes = 0;
    l2_path_lookup(model, NULL, &file_bytes);
    char expected[1024];
    const double gib = 1024.0 * 1024.0 * 1024.0;
    snprintf(expected, sizeof expected,
             "llama2-server: --parallel: 256 slots of 65536 positions need a KV cache of %.1f GiB, which with the "
             "weights (%.1f MiB) is more than this machine's memory (%.1f GiB): lower --parallel or --ctx\n",
             per_layer * layers / gib, (double)file_bytes / (1024.0 * 1024.0), (double)memory / gib);
    assert_string_equal(r.err, expected);
    assert_int_equal(r.out_len, 0);
    test_run_free(&r);
    unlink(model);
}

/* SIGTERM while the model loads ends the server at once: here the tokenizer
 * is a FIFO that nobody writes, so the load waits. */
static void test_sigterm_while_loading(void **state) {
    (void)state;
    const char *bin = server_bin();
    const char *model = test_require_model("stories260K.bin");
    char fifo[4200];
    snprintf(fifo, sizeof fifo, "%s/tokenizer.fifo", tmp_dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        test_default_signals();
        execl(bin, bin, model, "-z", fifo, "--port", "0", (char *)NULL);
        _exit(127);
    }
    struct timespec pause = {0, 300000000};
    nanosleep(&pause, NULL);
    assert_int_equal(kill(pid, SIGTERM), 0);
    int status = 0;
    pid_t done = 0;
    for (int i = 0; i < 100 && (done = waitpid(pid, &status, WNOHANG)) == 0; i++) nanosleep(&(struct timespec){0, 50000000}, NULL);
    if (done != pid) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        unlink(fifo);
        fail_msg("the server did not end within 5 s of SIGTERM while loading");
    }
    unlink(fifo);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGTERM);
}

/* /tokenize, /detokenize, /v1/models, /health and /metrics. */
static void test_other_endpoints(void **state) {
    (void)state;
    server_proc sp;
    const char *args[] = {"--alias", "storyteller", "--parallel", "2", NULL};
    server_start(&sp, test_require_model("stories260K.bin"), args);
    json_t *v = post_json(&sp, "/tokenize", "{\"content\":\"Once upon a time\"}", 200);
    char *tokens = json_dumps(json_object_get(v, "tokens"), JSON_COMPACT);
    assert_string_equal(tokens, "[403,407,261,378]");
    free(tokens);
    json_decref(v);
    v = post_json(&sp, "/tokenize", "{\"content\":\"Hi\",\"add_special\":true}", 200);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(v, "tokens"), 0)), 1);
    json_decref(v);
    v = post_json(&sp, "/detokenize", "{\"tokens\":[1,403,407,261,378,2]}", 200);
    assert_string_equal(str_at(v, "content"), "Once upon a time");
    json_decref(v);

    reply r;
    http(&sp, "GET", "/v1/models", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    v = parse_json(r.body);
    assert_string_equal(str_at(v, "object"), "list");
    assert_string_equal(str_at(v, "data.0.id"), "storyteller");
    assert_string_equal(str_at(v, "data.0.object"), "model");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(json_array_get(json_object_get(v, "data"), 0),
                                                                         "meta"),
                                                        "context_length")),
                     512);
    json_decref(v);
    reply_free(&r);
    http(&sp, "GET", "/health", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"status\":\"ok\"}");
    reply_free(&r);

    static const char *const names[] = {
        "llama2_requests_total", "llama2_requests_rejected_total", "llama2_requests_finished_total",
        "llama2_requests_cancelled_total", "llama2_requests_failed_total", "llama2_prompt_tokens_total",
        "llama2_generated_tokens_total", "llama2_steps_total", "llama2_busy_seconds_total",
        "llama2_prompt_tokens_per_second", "llama2_generated_tokens_per_second", "llama2_slots_busy",
        "llama2_slots_total", "llama2_queue_length", "llama2_queue_capacity"};
    http(&sp, "GET", "/metrics", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.head, "Content-Type: text/plain; version=0.0.4"));
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char help[128], type[128];
        snprintf(help, sizeof help, "# HELP %s ", names[i]);
        snprintf(type, sizeof type, "# TYPE %s ", names[i]);
        if (!strstr(r.body, help) || !strstr(r.body, type)) fail_msg("/metrics lacks %s", names[i]);
    }
    reply_free(&r);
    assert_int_equal((int)metric(&sp, "llama2_slots_total", NULL), 2);
    assert_int_equal((int)metric(&sp, "llama2_queue_capacity", NULL), 64);
    assert_int_equal((int)metric(&sp, "llama2_requests_total", NULL), 0);
    v = post_json(&sp, "/v1/completions", "{\"prompt\":\"Once upon a time\",\"max_tokens\":7,\"n\":2,\"ignore_eos\":true}", 200);
    json_decref(v);
    assert_int_equal((int)metric(&sp, "llama2_requests_total", NULL), 1);
    assert_int_equal((int)metric(&sp, "llama2_requests_finished_total", NULL), 1);
    assert_int_equal((int)metric(&sp, "llama2_prompt_tokens_total", NULL), 5); /* once for both choices */
    assert_int_equal((int)metric(&sp, "llama2_generated_tokens_total", NULL), 14);
    assert_true(metric(&sp, "llama2_generated_tokens_per_second", NULL) > 0);
    server_stop(&sp);
}

/* SIGTERM: the request in flight gets its whole answer, new connections
 * are refused, the server exits 0; past --shutdown-timeout the requests
 * left are cut with an error. */
/* A loopback connection to the server, kept open between requests. */
static int connect_to(const server_proc *sp) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)sp->port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    return fd;
}

/* The next answer on connection fd: its status (an interim 100 Continue
 * with `interim`, else skipped; the body, whose length the headers give,
 * read and dropped); 0 if the connection ends first or nothing comes
 * within 30 s. */
static int answer_on(int fd, int interim) {
    char buf[16384];
    size_t len = 0;
    for (;;) {
        buf[len] = '\0';
        const char *end = strstr(buf, "\r\n\r\n");
        if (end && strncmp(buf, "HTTP/1.1 100", 12) == 0) {
            if (interim) return 100;
            len -= (size_t)(end + 4 - buf);
            memmove(buf, end + 4, len + 1);
            continue;
        }
        const char *cl = end ? strstr(buf, "Content-Length: ") : NULL;
        if (cl && len - (size_t)(end + 4 - buf) >= strtoul(cl + 16, NULL, 10)) break;
        struct pollfd p = {fd, POLLIN, 0};
        if (len >= sizeof buf - 1 || poll(&p, 1, 30000) <= 0) return 0;
        const ssize_t got = read(fd, buf + len, sizeof buf - 1 - len);
        if (got <= 0) return 0;
        len += (size_t)got;
    }
    return strncmp(buf, "HTTP/1.1 ", 9) == 0 ? atoi(buf + 9) : 0;
}

static int send_text(int fd, const char *text) { return write(fd, text, strlen(text)) == (ssize_t)strlen(text); }

/* GET path on the kept-alive connection fd: the answer's status. */
static int get_on(int fd, const char *path) {
    char req[256];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
    return send_text(fd, req) ? answer_on(fd, 0) : 0;
}

static void test_graceful_shutdown(void **state) {
    (void)state;
    for (int cut = 0; cut < 2; cut++) {
        server_proc sp;
        /* The drain's limit: 0 cuts the request; 600 lets it finish however
         * slow a loaded machine is (the point is that it finishes). */
        const char *args[] = {"--shutdown-timeout", cut ? "0" : "600", NULL};
        server_start(&sp, slow_model, args);
        char out_path[4200];
        snprintf(out_path, sizeof out_path, "%s/shutdown-%d.txt", tmp_dir, cut);
        pid_t client = fork();
        if (client == 0) {
            int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            dup2(out, 1);
            char *argv[40], url[256];
            /* Cut: long enough to be still running once the drain's first
             * 50 ms are over, however fast the host (at 150 tokens a fast
             * idle host finished it within them and answered 200). */
            curl_argv(argv, &sp, "POST", "/v1/completions", NULL,
                      cut ? "{\"prompt\":\"Once\",\"max_tokens\":480,\"ignore_eos\":true}"
                          : "{\"prompt\":\"Once\",\"max_tokens\":150,\"ignore_eos\":true}",
                      url, sizeof url);
            execv(argv[0], argv);
            _exit(127);
        }
        /* The signal only once the request holds a slot (the point is a
         * request in flight), within a minute. */
        int busy = 0;
        for (double until = llama2_time_seconds() + 60; !busy && llama2_time_seconds() < until;)
            if (!(busy = metric(&sp, "llama2_slots_busy", NULL) >= 1)) usleep(10000);
        if (!busy) fail_msg("the request did not reach a slot within a minute");
        /* A kept-alive connection, open before the signal. */
        const int kept = connect_to(&sp);
        assert_int_equal(get_on(kept, "/v1/models"), 200);
        /* A request whose headers the server has taken (its 100 Continue
         * says so) and whose body comes only after the signal. */
        const char *body = "{\"prompt\":\"Once\",\"max_tokens\":5}";
        char head[256];
        snprintf(head, sizeof head,
                 "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 "Expect: 100-continue\r\nContent-Length: %zu\r\n\r\n",
                 strlen(body));
        const int late = cut ? -1 : connect_to(&sp);
        if (!cut) {
            assert_true(send_text(late, head));
            assert_int_equal(answer_on(late, 1), 100);
        }
        const double t0 = llama2_time_seconds();
        kill(sp.pid, SIGTERM);
        if (!cut) {
            /* A request begun after the signal on the kept-alive connection
             * is refused (once the server has taken the signal: until then,
             * 200); the one still sending its body is served. */
            int status = 200;
            for (double until = llama2_time_seconds() + 30; status == 200 && llama2_time_seconds() < until;)
                if ((status = get_on(kept, "/v1/models")) == 200) usleep(10000);
            assert_int_equal(status, 503);
            assert_true(send_text(late, body));
            assert_int_equal(answer_on(late, 0), 200);
        }
        close(kept);
        if (late >= 0) close(late);
        int status;
        waitpid(sp.pid, &status, 0);
        track(sp.pid, 0);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        waitpid(client, &status, 0);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        size_t len;
        char *out = test_read_file(out_path, &len);
        reply r;
        parse_reply(out, len, &r);
        json_t *v = parse_json(r.body);
        if (cut) {
            assert_int_equal(r.status, 500);
            assert_string_equal(str_at(v, "error.message"), "the server is shutting down");
            assert_true(llama2_time_seconds() - t0 < 5.0);
        } else {
            if (r.status != 200) {
                char *err = test_read_file(sp.err_path, NULL);
                fail_msg("status %d after %.1f s, where the drain should have let it finish; the server said:\n%s",
                         r.status, llama2_time_seconds() - t0, err ? err : "");
            }
            assert_int_equal(int_at(v, "usage", "completion_tokens"), 150);
        }
        json_decref(v);
        reply_free(&r);
        free(out);
        /* Nobody listens there any more. */
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)sp.port)};
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_not_equal(connect(fd, (struct sockaddr *)&addr, sizeof addr), 0);
        close(fd);
    }
}

/* The official openai npm package against the server
 * (tests/openai_client.mjs): chat, a chat stream, a completion, the model
 * list, a wrong key. Skipped by name without node, npm or the package. */
static void test_openai_client(void **state) {
    (void)state;
    const char *model = test_require_model("stories260K.bin");
    if (system("node --version >/dev/null 2>&1") != 0) {
        printf("skipped: needs node (the openai client)\n");
        skip();
    }
    const char *npm_dir = test_source_path("build/npm");
    char check[4400], command[8800];
    snprintf(check, sizeof check, "%s/node_modules/openai/package.json", npm_dir);
    if (access(check, R_OK) != 0) {
        snprintf(command, sizeof command,
                 "mkdir -p '%s' && timeout 120 npm install --prefix '%s' --no-audit --no-fund --loglevel=error "
                 "--no-save openai@4 >'%s/npm.log' 2>&1",
                 npm_dir, npm_dir, tmp_dir);
        if (system(command) != 0 || access(check, R_OK) != 0) {
            /* The reason: npm's last line (no registry, no npm...). */
            char *log = test_read_file(test_path_in(tmp_dir, "npm.log"), NULL);
            char *last = log ? log + strlen(log) : NULL;
            while (last && last > log && (last[-1] == '\n' || last[-1] == '\r')) *--last = '\0';
            while (last && last > log && last[-1] != '\n') last--;
            printf("skipped: npm install openai failed: %.200s\n", last && *last ? last : "no output");
            free(log);
            skip();
        }
    }
    server_proc sp;
    const char *args[] = {"--api-key", "sesame", "--alias", "storyteller", NULL};
    server_start(&sp, model, args);
    char url[64], port[16];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1", sp.port);
    snprintf(port, sizeof port, "%d", sp.port);
    char *argv[] = {"/usr/bin/env", "node", (char *)test_source_path("tests/openai_client.mjs"), url, "sesame",
                    (char *)npm_dir, NULL};
    test_run run;
    assert_int_equal(test_run_program(argv, NULL, NULL, 0, &run), 0);
    if (run.status != 0) fail_msg("the openai client failed (%d): %s%s", run.status, run.out, run.err);
    /* Its lines: what the client saw, checked against curl's answers. */
    json_t *seen = parse_json(run.out);
    assert_string_equal(str_at(seen, "models"), "storyteller");
    assert_string_equal(str_at(seen, "wrong_key"), "401 invalid_api_key");
    assert_string_equal(str_at(seen, "chat_stream"), str_at(seen, "chat"));
    const char *key[] = {KEY, NULL};
    reply r;
    http(&sp, "POST", "/v1/chat/completions", key,
         "{\"model\":\"storyteller\",\"messages\":[{\"role\":\"user\",\"content\":\"Tell me a story.\"}],"
         "\"max_tokens\":40,\"temperature\":0}",
         &r);
    assert_int_equal(r.status, 200);
    json_t *v = parse_json(r.body);
    assert_string_equal(str_at(seen, "chat"), str_at(v, "choices.0.message.content"));
    json_decref(v);
    reply_free(&r);
    http(&sp, "POST", "/v1/completions", key,
         "{\"model\":\"storyteller\",\"prompt\":\"Once upon a time\",\"max_tokens\":30,\"temperature\":0}", &r);
    v = parse_json(r.body);
    assert_string_equal(str_at(seen, "completion"), str_at(v, "choices.0.text"));
    assert_string_equal(str_at(seen, "choices"), "2");
    json_decref(v);
    reply_free(&r);
    json_decref(seen);
    test_run_free(&run);
    server_stop(&sp);
}

/* ------------------------------------------------------- the chat page */

/* GET / is one self-contained page (nothing fetched from elsewhere), open
 * without the key; --no-webui makes it a 404. Then, in headless chromium
 * driven by puppeteer-core (tests/webui.mjs; skipped by name without node,
 * chromium or the package): at phone width a message gets a streamed reply
 * with its tokens/s and cached tokens, a second turn sends the first and
 * reuses it, stop ends a long reply, new chat empties the page, and markup
 * from the user or the model shows as text. A screenshot goes to
 * build/webui-chat.png. */
static void test_webui(void **state) {
    (void)state;
    server_proc sp;
    const char *args[] = {"--api-key", "sesame", NULL};
    server_start(&sp, slow_model, args);
    reply r;
    http(&sp, "GET", "/", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.head, "Content-Type: text/html; charset=utf-8"));
    assert_true(strncmp(r.body, "<!doctype html>", 15) == 0);
    assert_null(strstr(r.body, "http://"));
    assert_null(strstr(r.body, "https://"));
    assert_null(strstr(r.body, "innerHTML"));
    assert_non_null(strstr(r.body, "</html>"));
    reply_free(&r);

    if (system("node --version >/dev/null 2>&1") != 0) {
        printf("skipped: test_webui's browser part needs node\n");
        server_stop(&sp);
        skip();
    }
    if (access("/usr/bin/chromium", X_OK) != 0) {
        printf("skipped: test_webui's browser part needs chromium (Debian's chromium package)\n");
        server_stop(&sp);
        skip();
    }
    const char *npm_dir = test_source_path("build/npm-browser");
    char check[4400], command[8800];
    snprintf(check, sizeof check, "%s/node_modules/puppeteer-core/package.json", npm_dir);
    if (access(check, R_OK) != 0) {
        snprintf(command, sizeof command,
                 "mkdir -p '%s' && PUPPETEER_SKIP_DOWNLOAD=1 timeout 180 npm install --prefix '%s' --no-audit "
                 "--no-fund --loglevel=error --no-save puppeteer-core@24 >'%s/npm-browser.log' 2>&1",
                 npm_dir, npm_dir, tmp_dir);
        if (system(command) != 0 || access(check, R_OK) != 0) {
            printf("skipped: test_webui's browser part: npm install puppeteer-core failed (see npm's log)\n");
            server_stop(&sp);
            skip();
        }
    }
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", sp.port);
    const char *shot = test_source_path("build/webui-chat.png");
    unlink(shot);
    char *argv[] = {"/usr/bin/env", "node", (char *)test_source_path("tests/webui.mjs"), url, "sesame",
                    (char *)npm_dir, (char *)shot, NULL};
    test_run run;
    assert_int_equal(test_run_program(argv, NULL, NULL, 0, &run), 0);
    if (run.status != 0) fail_msg("the browser test failed (%d): %s%s", run.status, run.out, run.err);
    json_t *seen = parse_json(run.out);
    assert_string_equal(str_at(seen, "title"), "llama2 chat");
    assert_string_equal(str_at(seen, "user_text"), "<b>bold</b><script>window.pwned = 1</script>");
    assert_true(json_integer_value(json_object_get(seen, "second_cached")) > 0);
    if (json_integer_value(json_object_get(seen, "width")) > 390)
        fail_msg("the page is %lld pixels wide at a phone's 390",
                 (long long)json_integer_value(json_object_get(seen, "width")));
    assert_string_equal(str_at(seen, "stopped"), "stopped: stopped");
    assert_true(json_is_true(json_object_get(seen, "send_enabled")));
    assert_int_equal(json_integer_value(json_object_get(seen, "after_new_chat")), 0);
    assert_true(json_is_true(json_object_get(seen, "markup_shown")));
    assert_int_equal(json_integer_value(json_object_get(seen, "elements")), 0);
    assert_string_equal(str_at(seen, "pwned"), "no");
    assert_int_equal(json_array_size(json_object_get(seen, "outside")), 0);
    struct stat st;
    assert_int_equal(stat(shot, &st), 0);
    assert_true(st.st_size > 1000);
    json_decref(seen);
    test_run_free(&run);
    /* The stopped reply's slot came free: the client's hang-up was seen. */
    for (int i = 0; i < 200 && metric(&sp, "llama2_slots_busy", (const char *[]){KEY, NULL}) > 0; i++) usleep(10000);
    assert_int_equal((int)metric(&sp, "llama2_requests_cancelled_total", (const char *[]){KEY, NULL}), 1);
    server_stop(&sp);

    const char *off[] = {"--no-webui", NULL};
    server_start(&sp, slow_model, off);
    http(&sp, "GET", "/", NULL, NULL, &r);
    assert_int_equal(r.status, 404);
    json_t *e = parse_json(r.body);
    assert_string_equal(str_at(e, "error.message"), "no such endpoint: GET / (--no-webui)");
    json_decref(e);
    reply_free(&r);
    server_stop(&sp);
}

/* -------------------------------------------------- the parser directly */

static llama2_tokenizer *parser_tokenizer;

static server_limits parser_limits(void) {
    if (!parser_tokenizer) {
        llama2_error err;
        assert_int_equal(llama2_tokenizer_open(test_require_model("tok512.bin"), 512, &parser_tokenizer, &err),
                         LLAMA2_OK);
    }
    return (server_limits){.tokenizer = parser_tokenizer, .chat_template = LLAMA2_TEMPLATE_CHATML,
                           .context_length = 100, .max_choices = 4, .vocab_size = 512};
}

static void test_parser_fields(void **state) {
    (void)state;
    server_limits lim = parser_limits();
    server_params p;
    server_error e;
    const char *body = "{\"messages\":[{\"role\":\"developer\",\"content\":\"Be brief.\"},{\"role\":\"user\","
                       "\"content\":\"Hi\"}],\"temperature\":0.5,\"top_p\":0.9,\"top_k\":40,\"min_p\":0.05,"
                       "\"presence_penalty\":0.5,\"frequency_penalty\":-0.25,\"seed\":-1,\"n\":2,\"stop\":\"END\","
                       "\"max_completion_tokens\":9,\"max_tokens\":100,\"stream\":true,"
                       "\"stream_options\":{\"include_usage\":true},\"user\":\"me\",\"model\":\"x\",\"store\":true,"
                       "\"metadata\":{\"k\":\"v\"},\"logprobs\":false,\"tools\":[],\"logit_bias\":{},"
                       "\"response_format\":{\"type\":\"text\"},\"tool_choice\":\"none\",\"top_logprobs\":0}";
    assert_int_equal(server_parse_completion(&lim, 1, body, strlen(body), &p, &e), 0);
    assert_int_equal(p.chat, 1);
    assert_true(p.sampling.temperature == 0.5f && p.sampling.top_p == 0.9f && p.sampling.min_p == 0.05f);
    assert_int_equal(p.sampling.top_k, 40);
    assert_true(p.sampling.presence_penalty == 0.5f && p.sampling.frequency_penalty == -0.25f);
    assert_int_equal(p.sampling.repeat_last_n, 100); /* the context: OpenAI's penalties see it all */
    assert_true(p.seed_given && p.sampling.seed == UINT64_MAX);
    assert_int_equal(p.n, 2);
    assert_int_equal(p.max_tokens, 9);
    assert_true(p.stream && p.include_usage && !p.ignore_eos);
    /* The request's stop, then ChatML's own. */
    assert_int_equal(p.n_stop, 2);
    assert_string_equal(p.stop[0], "END");
    assert_string_equal(p.stop[1], "<|im_end|>");
    /* The prompt is the template's encoding, "developer" as the system. */
    const llama2_chat_message m[] = {{"system", "Be brief."}, {"user", "Hi"}};
    int *ids, n_ids;
    llama2_error err;
    assert_int_equal(llama2_chat_encode(parser_tokenizer, LLAMA2_TEMPLATE_CHATML, m, 2, 1, &ids, &n_ids, &err),
                     LLAMA2_OK);
    assert_int_equal(p.n_prompt, n_ids);
    assert_memory_equal(p.prompt, ids, (size_t)n_ids * sizeof *ids);
    free(ids);
    server_params_free(&p);

    /* The defaults: OpenAI's temperature 1 and top_p 1, no seed. */
    body = "{\"prompt\":[[5,6,7]]}";
    assert_int_equal(server_parse_completion(&lim, 0, body, strlen(body), &p, &e), 0);
    assert_true(p.sampling.temperature == 1.0f && p.sampling.top_p == 1.0f && p.sampling.top_k == 0);
    assert_true(!p.seed_given && p.n == 1 && p.max_tokens == 0 && !p.stream && p.n_stop == 0);
    assert_int_equal(p.n_prompt, 3);
    assert_int_equal(p.prompt[2], 7);
    server_params_free(&p);

    /* null is the default, as OpenAI takes it; an empty stop is dropped. */
    body = "{\"prompt\":\"\",\"temperature\":null,\"stop\":[\"\",\"x\"],\"n\":null}";
    assert_int_equal(server_parse_completion(&lim, 0, body, strlen(body), &p, &e), 0);
    assert_true(p.sampling.temperature == 1.0f && p.n == 1 && p.n_stop == 1);
    assert_int_equal(p.n_prompt, 1); /* BOS alone */
    server_params_free(&p);

    /* The limit on stop strings. */
    body = "{\"prompt\":\"a\",\"stop\":[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\",\"10\",\"11\",\"12\","
           "\"13\",\"14\",\"15\",\"16\",\"17\"]}";
    assert_int_equal(server_parse_completion(&lim, 0, body, strlen(body), &p, &e), -1);
    assert_int_equal(e.status, 400);
    assert_string_equal(e.message, "'stop' holds more than 16 strings");

    /* A field that would change the answer and is not implemented, and an
     * unknown one: 400 naming the field. */
    static const struct { int chat; const char *body, *param, *code, *message; } refused[] = {
        {1, "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"tools\":[{\"type\":\"function\"}]}", "tools",
         "unsupported_parameter", "'tools' is not implemented by this server (docs/SERVING.md lists the fields it reads)"},
        {0, "{\"prompt\":\"a\",\"echo\":true}", "echo", "unsupported_parameter",
         "'echo' is not implemented by this server (docs/SERVING.md lists the fields it reads)"},
        {0, "{\"prompt\":\"a\",\"suffix\":\"end\"}", "suffix", "unsupported_parameter",
         "'suffix' is not implemented by this server (docs/SERVING.md lists the fields it reads)"},
        {0, "{\"prompt\":\"a\",\"best_of\":3}", "best_of", "unsupported_parameter",
         "'best_of' is not implemented by this server (docs/SERVING.md lists the fields it reads)"},
        {0, "{\"prompt\":\"a\",\"temprature\":0}", "temprature", "unknown_parameter",
         "'temprature' is not a parameter of /v1/completions (docs/SERVING.md lists the fields it reads)"},
        {0, "{\"prompt\":\"a\",\"stream_options\":{\"include_usage\":true,\"chunk_size\":2}}", "stream_options",
         "unknown_parameter", "'stream_options.chunk_size' is not a parameter of stream_options (include_usage is)"},
        {1, "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"prompt\":\"a\"}", "prompt",
         "unknown_parameter", "'prompt' is not a parameter of /v1/chat/completions (docs/SERVING.md lists the fields it reads)"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        body = refused[i].body;
        assert_int_equal(server_parse_completion(&lim, refused[i].chat, body, strlen(body), &p, &e), -1);
        assert_int_equal(e.status, 400);
        assert_string_equal(e.param, refused[i].param);
        assert_string_equal(e.code, refused[i].code);
        assert_string_equal(e.message, refused[i].message);
    }
    /* logprobs and logit_bias as read; 100,000 entries of logit_bias, an
     * id spelled with a leading zero and banning every token refused. */
    body = "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"logprobs\":true,\"top_logprobs\":20,"
           "\"logit_bias\":{\"7\":-100,\"9\":2.5}}";
    assert_int_equal(server_parse_completion(&lim, 1, body, strlen(body), &p, &e), 0);
    assert_true(p.logprobs && p.top_logprobs == 20 && p.n_bias == 2);
    assert_true(p.bias_tokens[0] == 7 && p.bias_values[0] == -100.0f);
    assert_true(p.bias_tokens[1] == 9 && p.bias_values[1] == 2.5f);
    server_params_free(&p);
    body = "{\"prompt\":\"a\",\"logprobs\":0}";
    assert_int_equal(server_parse_completion(&lim, 0, body, strlen(body), &p, &e), 0);
    assert_true(p.logprobs && p.top_logprobs == 0 && p.n_bias == 0);
    server_params_free(&p);
    size_t cap = 100000 * 12 + 64, len = 0;
    char *big = malloc(cap);
    len += (size_t)snprintf(big, cap, "{\"prompt\":\"a\",\"logit_bias\":{");
    for (int i = 0; i < 100000; i++) len += (size_t)snprintf(big + len, cap - len, "%s\"%d\":1", i ? "," : "", i);
    snprintf(big + len, cap - len, "}}");
    assert_int_equal(server_parse_completion(&lim, 0, big, strlen(big), &p, &e), -1);
    assert_int_equal(e.status, 400);
    assert_string_equal(e.param, "logit_bias");
    assert_string_equal(e.message, "'logit_bias' has 100000 entries, more than the 512 tokens of the vocabulary");
    len = (size_t)snprintf(big, cap, "{\"prompt\":\"a\",\"logit_bias\":{");
    for (int i = 0; i < lim.vocab_size; i++)
        len += (size_t)snprintf(big + len, cap - len, "%s\"%d\":-100", i ? "," : "", i);
    snprintf(big + len, cap - len, "}}");
    assert_int_equal(server_parse_completion(&lim, 0, big, strlen(big), &p, &e), -1);
    assert_string_equal(e.message, "'logit_bias' bans every token");
    free(big);
    body = "{\"prompt\":\"a\",\"logit_bias\":{\"7\":1,\"07\":2}}";
    assert_int_equal(server_parse_completion(&lim, 0, body, strlen(body), &p, &e), -1);
    assert_string_equal(e.message, "'logit_bias': the key '07' is not a token id (0 to 511)");
    llama2_tokenizer_close(parser_tokenizer);
    parser_tokenizer = NULL;
}

/* The output's grammar: GBNF, a JSON Schema, response_format json_object
 * and json_schema, on both endpoints; what ends complete is in the
 * language; max_tokens that cut it give finish_reason "length". */
static void test_structured_output(void **state) {
    (void)state;
    server_proc sp;
    server_start(&sp, test_require_model("stories260K.bin"), NULL);
    for (int seed = 1; seed <= 4; seed++) {
        char body[1024];
        snprintf(body, sizeof body,
                 "{\"prompt\":\"Is it? \",\"seed\":%d,\"grammar\":\"root ::= \\\"yes\\\" | \\\"no\\\"\"}", seed);
        json_t *v = post_json(&sp, "/v1/completions", body, 200);
        const char *text = str_at(v, "choices.0.text");
        if (strcmp(text, "yes") && strcmp(text, "no")) fail_msg("'%s'", text);
        assert_string_equal(str_at(v, "choices.0.finish_reason"), "stop");
        json_decref(v);

        snprintf(body, sizeof body,
                 "{\"messages\":[{\"role\":\"user\",\"content\":\"A person?\"}],\"seed\":%d,\"max_tokens\":200,"
                 "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"person\",\"strict\":true,"
                 "\"schema\":{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"maxLength\":12},"
                 "\"age\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":150},\"kind\":{\"enum\":[\"cat\",\"dog\"]}},"
                 "\"required\":[\"name\",\"age\",\"kind\"],\"additionalProperties\":false}}}}",
                 seed);
        v = post_json(&sp, "/v1/chat/completions", body, 200);
        const char *content = str_at(v, "choices.0.message.content");
        if (!strcmp(str_at(v, "choices.0.finish_reason"), "stop")) {
            json_error_t je;
            json_t *o = json_loads(content, 0, &je);
            if (!o) fail_msg("not JSON: '%s'", content);
            json_t *name = json_object_get(o, "name"), *age = json_object_get(o, "age"), *kind = json_object_get(o, "kind");
            assert_int_equal(json_object_size(o), 3);
            assert_true(json_is_string(name) && json_string_length(name) <= 12 * 4);
            assert_true(json_is_integer(age) && json_integer_value(age) >= 0 && json_integer_value(age) <= 150);
            assert_true(json_is_string(kind) &&
                        (!strcmp(json_string_value(kind), "cat") || !strcmp(json_string_value(kind), "dog")));
            json_decref(o);
        }
        json_decref(v);
    }
    /* json_object on completions; cut by max_tokens: "length", a prefix */
    json_t *v = post_json(&sp, "/v1/completions",
                          "{\"prompt\":\"Data:\",\"seed\":3,\"max_tokens\":3,\"response_format\":{\"type\":\"json_object\"}}",
                          200);
    assert_string_equal(str_at(v, "choices.0.finish_reason"), "length");
    assert_int_equal(str_at(v, "choices.0.text")[0], '{');
    json_decref(v);
    server_stop(&sp);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_structured_output, kill_leftovers),
        cmocka_unit_test_teardown(test_parser_fields, kill_leftovers),
        cmocka_unit_test_teardown(test_command_line, kill_leftovers),
        cmocka_unit_test_teardown(test_memory_refused, kill_leftovers),
        cmocka_unit_test_teardown(test_sigterm_while_loading, kill_leftovers),
        cmocka_unit_test_teardown(test_completion_matches_cli, kill_leftovers),
        cmocka_unit_test_teardown(test_gguf_completion_matches_cli, kill_leftovers),
        cmocka_unit_test_teardown(test_stream_equals_whole_answer, kill_leftovers),
        cmocka_unit_test_teardown(test_sixteen_streams_f32, kill_leftovers),
        cmocka_unit_test_teardown(test_sixteen_streams_int8, kill_leftovers),
        cmocka_unit_test_teardown(test_n_choices, kill_leftovers),
        cmocka_unit_test_teardown(test_stop_strings, kill_leftovers),
        cmocka_unit_test_teardown(test_disconnect_frees_slot, kill_leftovers),
        cmocka_unit_test_teardown(test_prefix_cache_f32, kill_leftovers),
        cmocka_unit_test_teardown(test_prefix_cache_int8, kill_leftovers),
        cmocka_unit_test_teardown(test_prefix_cache_hang_up, kill_leftovers),
        cmocka_unit_test_teardown(test_prefix_cache_ram, kill_leftovers),
        cmocka_unit_test_teardown(test_logprobs_and_bias, kill_leftovers),
        cmocka_unit_test_teardown(test_bad_requests, kill_leftovers),
        cmocka_unit_test_teardown(test_other_endpoints, kill_leftovers),
        cmocka_unit_test_teardown(test_graceful_shutdown, kill_leftovers),
        cmocka_unit_test_teardown(test_openai_client, kill_leftovers),
        cmocka_unit_test_teardown(test_webui, kill_leftovers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
