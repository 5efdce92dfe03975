/* Response bodies, as OpenAI writes them: completions and chat completions
 * (whole, or as the chunks of a server-sent event stream), errors, the model
 * list, and the token endpoints' answers. Each *_json function returns a
 * malloc'd NUL-terminated JSON text, or NULL when memory ran out; each
 * *_event function appends an event to a stream's buffer. */
#ifndef LLAMA2_SERVER_RESPONSE_H
#define LLAMA2_SERVER_RESPONSE_H

#include <stddef.h>

#include "request.h"
#include "scheduler.h"

/* What every completion object of one request shares. */
typedef struct server_reply {
    int chat;           /* chat.completion(.chunk) or text_completion */
    const char *id;     /* "chatcmpl-..." or "cmpl-..." */
    long long created;  /* Unix time */
    const char *model;  /* the model's id */
    int logprobs;       /* the request asked for logprobs */
    const llama2_tokenizer *tokenizer; /* for the logprobs' token text */
} server_reply;

/* {"error": {"message", "type", "param", "code"}} */
char *server_error_json(const server_error *e);

/* The whole answer: every choice's text and finish_reason, and usage. */
char *server_completion_json(const server_reply *r, const server_job_delta *delta);

/* A stream's server-sent events, "data: <json>\n\n" each, written by the
 * functions below straight into data[0..len), which the stream reads out.
 * Each returns 0 when memory ran out (then the buffer is as it was). */
typedef struct server_events {
    char *data;
    size_t len, cap;
} server_events;

/* One chunk: choice `index` with c's text (chat: the delta's content;
 * with `role` the first delta, which names the assistant), its logprobs
 * when asked for, and its finish_reason when it has ended (NULL: not yet). */
int server_chunk_event(server_events *ev, const server_reply *r, int index, const server_text_delta *c, int role,
                       const char *finish_reason);

/* The stream's last chunk when stream_options.include_usage is set: no
 * choices, and the usage (cached_tokens: usage.prompt_tokens_details). */
int server_usage_event(server_events *ev, const server_reply *r, int prompt_tokens, int cached_tokens,
                       int completion_tokens);

/* The error that cut the stream, as server_error_json writes it. */
int server_error_event(server_events *ev, const server_error *e);

/* The end of the stream: "data: [DONE]". */
int server_done_event(server_events *ev);

/* GET /v1/models: the one model this server runs. */
char *server_models_json(const char *model, long long created, const llama2_config *config, int context_length);

/* POST /tokenize and /detokenize. */
char *server_tokens_json(const int *ids, int n_ids);
char *server_content_json(const char *text);

#endif
