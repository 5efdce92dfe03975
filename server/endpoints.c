/* The endpoints (endpoints.h): OpenAI's completions, chat completions and
 * model list, and llama-server's /health, /metrics, /tokenize and
 * /detokenize. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "endpoints.h"
#include "response.h"
#include "webui.h"

/* How long a waiting request goes between looks at its client, in ms: a
 * client that hangs up frees its slot within about this long. */
#define CLIENT_PROBE_MS 100

typedef void (*handler_fn)(server_app *app, const char *body, size_t len, const server_client *client,
                           server_answer *out);

struct server_route {
    const char *method;
    const char *path;
    int open; /* answers without the API key */
    handler_fn handle;
};

/* ------------------------------------------------------------- answers */

static void answer_json(int status, char *json, server_answer *out) {
    *out = (server_answer){.status = json ? status : 500, .content_type = "application/json", .body = json,
                           .body_len = json ? strlen(json) : 0};
}

void server_answer_error(const server_error *e, server_answer *out) {
    answer_json(e->status, server_error_json(e), out);
    out->retry_after = e->status == 503 ? 1 : 0;
}

static void fail_with(int status, const char *type, const char *code, const char *message, server_answer *out) {
    server_error e;
    server_fail(&e, status, type, code, NULL, "%s", message);
    server_answer_error(&e, out);
}

/* splitmix64's finaliser: request ids and seeds that differ for nearby
 * counts. */
static uint64_t mix(uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* ---------------------------------------------------------- generation */

struct server_stream {
    server_app *app;
    server_job *job;
    server_job_delta *delta;
    server_reply reply;
    char id[48];
    int include_usage;
    unsigned char *finish_sent; /* per choice */
    server_events pending;      /* events written and not yet read */
    size_t off;                 /* pending's bytes read */
    int ended;                  /* the last event is in pending */
    server_client client;
    double last_probe;
};

/* Takes the job's delta and turns it into events: a chunk per choice with
 * new text or a finish, then at the end the usage (when asked) and
 * [DONE], or the error that cut the job. */
static int put_delta(server_stream *st) {
    server_job_delta *delta = st->delta;
    server_job_take(st->app->scheduler, st->job, delta);
    int ok = 1, completion_tokens = 0;
    for (int i = 0; i < delta->n_choices; i++) {
        server_text_delta *c = &delta->choices[i];
        const char *finish = c->finish_reason && !st->finish_sent[i] ? c->finish_reason : NULL;
        if (c->len > 0 || c->n_logprobs > 0 || finish)
            ok = ok && server_chunk_event(&st->pending, &st->reply, i, c, 0, finish);
        if (finish) st->finish_sent[i] = 1;
        c->len = 0;
        c->n_logprobs = 0;
        completion_tokens += c->completion_tokens;
    }
    if (delta->failed) {
        server_error e;
        server_fail(&e, 500, "server_error", NULL, NULL, "%s", delta->failure);
        ok = ok && server_error_event(&st->pending, &e);
        st->ended = 1;
    } else if (delta->done) {
        if (st->include_usage)
            ok = ok && server_usage_event(&st->pending, &st->reply, delta->prompt_tokens, delta->cached_tokens,
                                         completion_tokens);
        ok = ok && server_done_event(&st->pending);
        st->ended = 1;
    }
    return ok;
}

static int time_to_probe(double *last) {
    const double now = llama2_time_seconds();
    if (now - *last < CLIENT_PROBE_MS / 1000.0) return 0;
    *last = now;
    return 1;
}

ssize_t server_stream_read(server_stream *st, char *buf, size_t max) {
    for (;;) {
        if (st->off < st->pending.len) {
            size_t n = st->pending.len - st->off < max ? st->pending.len - st->off : max;
            memcpy(buf, st->pending.data + st->off, n);
            st->off += n;
            return (ssize_t)n;
        }
        st->off = st->pending.len = 0;
        if (st->ended) return -1;
        if (server_job_wait(st->app->scheduler, st->job, CLIENT_PROBE_MS, 0) && !put_delta(st))
            return -2; /* out of memory: cut the stream */
        if (time_to_probe(&st->last_probe) && st->client.gone(st->client.user)) return -2;
    }
}

static void stream_free(server_stream *st) {
    server_job_delta_free(st->delta);
    free(st->finish_sent);
    free(st->pending.data);
    free(st);
}

void server_stream_free(server_stream *st) {
    if (!st) return;
    server_job_release(st->app->scheduler, st->job);
    stream_free(st);
}

/* A stream for the job: the chat's first chunks, which name the assistant,
 * go out at once, before the first token. */
static server_stream *stream_create(server_app *app, server_job *job, const server_reply *reply, int n,
                                    int include_usage, const server_client *client) {
    server_stream *st = calloc(1, sizeof *st);
    if (!st) return NULL;
    st->app = app;
    st->job = job;
    st->reply = *reply;
    snprintf(st->id, sizeof st->id, "%s", reply->id);
    st->reply.id = st->id;
    st->include_usage = include_usage;
    st->client = *client;
    st->last_probe = llama2_time_seconds();
    st->delta = server_job_delta_create(n);
    st->finish_sent = calloc((size_t)n, 1);
    int ok = st->delta && st->finish_sent;
    const server_text_delta empty = {0};
    for (int i = 0; ok && reply->chat && i < n; i++)
        ok = server_chunk_event(&st->pending, &st->reply, i, &empty, 1, NULL);
    if (!ok) {
        stream_free(st);
        return NULL;
    }
    return st;
}

static void handle_generation(server_app *app, int chat, const char *body, size_t len, const server_client *client,
                              server_answer *out) {
    server_params p;
    server_error e;
    if (server_parse_completion(&app->limits, chat, body, len, &p, &e) < 0) return server_answer_error(&e, out);
    const uint64_t number = atomic_fetch_add(&app->counter, 1);
    if (!p.seed_given) p.sampling.seed = mix(app->seed ^ mix(number));
    const int stream = p.stream, include_usage = p.include_usage, n = p.n, logprobs = p.logprobs;
    server_job *job;
    switch (server_scheduler_submit(app->scheduler, &p, &job)) {
    case SERVER_SUBMITTED: break;
    case SERVER_QUEUE_FULL:
        return fail_with(503, "server_error", "overloaded",
                         "the server is busy: every slot is generating and the queue is full; try again later", out);
    case SERVER_CLOSED:
        return fail_with(503, "server_error", "shutting_down", "the server is shutting down", out);
    case SERVER_NO_MEMORY: return fail_with(500, "server_error", NULL, "out of memory", out);
    }
    char id[48];
    snprintf(id, sizeof id, "%s-%016llx", chat ? "chatcmpl" : "cmpl", (unsigned long long)mix(app->seed + number));
    const server_reply reply = {.chat = chat, .id = id, .created = (long long)time(NULL), .model = app->model_id,
                                .logprobs = logprobs, .tokenizer = app->limits.tokenizer};

    if (stream) {
        server_stream *st = stream_create(app, job, &reply, n, include_usage, client);
        if (!st) {
            server_job_release(app->scheduler, job);
            return fail_with(500, "server_error", NULL, "out of memory", out);
        }
        *out = (server_answer){.status = 200, .content_type = "text/event-stream", .stream = st};
        return;
    }
    /* The whole answer: the text is taken once, when the job has ended. */
    server_job_delta *delta = server_job_delta_create(n);
    double last_probe = llama2_time_seconds();
    while (delta && !server_job_wait(app->scheduler, job, CLIENT_PROBE_MS, 1)) {
        if (time_to_probe(&last_probe) && client->gone(client->user)) {
            server_job_release(app->scheduler, job);
            server_job_delta_free(delta);
            *out = (server_answer){.status = 0};
            return;
        }
    }
    if (delta) server_job_take(app->scheduler, job, delta);
    server_job_release(app->scheduler, job);
    if (!delta)
        fail_with(500, "server_error", NULL, "out of memory", out);
    else if (delta->failed)
        fail_with(500, "server_error", NULL, delta->failure, out);
    else
        answer_json(200, server_completion_json(&reply, delta), out);
    server_job_delta_free(delta);
}

static void handle_chat(server_app *app, const char *body, size_t len, const server_client *client,
                        server_answer *out) {
    handle_generation(app, 1, body, len, client, out);
}

static void handle_completion(server_app *app, const char *body, size_t len, const server_client *client,
                              server_answer *out) {
    handle_generation(app, 0, body, len, client, out);
}

/* --------------------------------------------------------- the others */

static void handle_models(server_app *app, const char *body, size_t len, const server_client *client,
                          server_answer *out) {
    answer_json(200, server_models_json(app->model_id, app->started, app->config, app->limits.context_length), out);
}

static void handle_health(server_app *app, const char *body, size_t len, const server_client *client,
                          server_answer *out) {
    if (atomic_load(&app->closing)) return fail_with(503, "server_error", "shutting_down", "the server is shutting down", out);
    answer_json(200, strdup("{\"status\":\"ok\"}"), out);
}

static void handle_metrics(server_app *app, const char *body, size_t len, const server_client *client,
                           server_answer *out) {
    server_load load = server_scheduler_load(app->scheduler);
    char *text = server_metrics_text(app->metrics, &load);
    if (!text) return fail_with(500, "server_error", NULL, "out of memory", out);
    *out = (server_answer){.status = 200, .content_type = "text/plain; version=0.0.4", .body = text,
                           .body_len = strlen(text)};
}

static void handle_tokenize(server_app *app, const char *body, size_t len, const server_client *client,
                            server_answer *out) {
    int *ids, n_ids;
    server_error e;
    if (server_parse_tokenize(&app->limits, body, len, &ids, &n_ids, &e) < 0) return server_answer_error(&e, out);
    answer_json(200, server_tokens_json(ids, n_ids), out);
    free(ids);
}

static void handle_detokenize(server_app *app, const char *body, size_t len, const server_client *client,
                              server_answer *out) {
    char *text;
    server_error e;
    if (server_parse_detokenize(&app->limits, body, len, &text, &e) < 0) return server_answer_error(&e, out);
    answer_json(200, server_content_json(text), out);
    free(text);
}

/* The chat page: open, as its API key field is where the key is typed;
 * the API it calls asks for the key. */
static void handle_webui(server_app *app, const char *body, size_t len, const server_client *client,
                         server_answer *out) {
    if (!app->webui) {
        server_error e;
        server_fail(&e, 404, "invalid_request_error", "not_found", NULL, "no such endpoint: GET / (--no-webui)");
        return server_answer_error(&e, out);
    }
    char *page = malloc(server_webui_html_len);
    if (!page) return fail_with(500, "server_error", NULL, "out of memory", out);
    memcpy(page, server_webui_html, server_webui_html_len);
    *out = (server_answer){.status = 200, .content_type = "text/html; charset=utf-8", .body = page,
                           .body_len = server_webui_html_len};
}

/* -------------------------------------------------------------- routes */

static const server_route routes[] = {
    {"GET", "/", 1, handle_webui},
    {"POST", "/v1/chat/completions", 0, handle_chat},
    {"POST", "/v1/completions", 0, handle_completion},
    {"GET", "/v1/models", 0, handle_models},
    {"GET", "/health", 1, handle_health},
    {"GET", "/metrics", 0, handle_metrics},
    {"POST", "/tokenize", 0, handle_tokenize},
    {"POST", "/detokenize", 0, handle_detokenize},
};

const server_route *server_find_route(const char *method, const char *path, server_error *e) {
    const server_route *other_method = NULL;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (strcmp(routes[i].path, path) != 0) continue;
        if (strcmp(routes[i].method, method) == 0) return &routes[i];
        other_method = &routes[i];
    }
    if (other_method)
        server_fail(e, 405, "invalid_request_error", "method_not_allowed", NULL, "%.16s %.200s: use %s", method, path,
                    other_method->method);
    else
        server_fail(e, 404, "invalid_request_error", "not_found", NULL, "no such endpoint: %.16s %.200s", method, path);
    return NULL;
}

int server_route_is_open(const server_route *route) { return route->open; }

void server_handle(server_app *app, const server_route *route, const char *body, size_t len,
                   const server_client *client, server_answer *out) {
    route->handle(app, body, len, client, out);
}
