/* Response bodies, as OpenAI writes them: completions and chat completions
 * (whole, or as the chunks of a server-sent event stream), errors, the model
 * list, and the token endpoints' answers. Each function returns a malloc'd
 * NUL-terminated JSON text, or NULL when memory ran out. */
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
} server_reply;

/* {"error": {"message", "type", "param", "code"}} */
char *server_error_json(const server_error *e);

/* The whole answer: every choice's text and finish_reason, and usage. */
char *server_completion_json(const server_reply *r, const server_news *news);

/* One chunk of a stream: choice `index` with text[0..len) (chat: the
 * delta's content; with `role` the first delta, which names the assistant),
 * and its finish_reason when it has ended (NULL: not yet). */
char *server_chunk_json(const server_reply *r, int index, const char *text, size_t len, int role,
                        const char *finish_reason);

/* The stream's last chunk when stream_options.include_usage is set: no
 * choices, and the usage. */
char *server_usage_chunk_json(const server_reply *r, int prompt_tokens, int completion_tokens);

/* GET /v1/models: the one model this server runs. */
char *server_models_json(const char *model, long long created, const llama2_config *config, int context_length);

/* POST /tokenize and /detokenize. */
char *server_tokens_json(const int *ids, int n_ids);
char *server_content_json(const char *text);

#endif
