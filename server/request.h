/* Request bodies to generation parameters: the JSON of a completion or chat
 * completion request (OpenAI's fields, and llama-server's top_k, min_p,
 * repeat_penalty and ignore_eos), checked and turned into token ids and
 * sampler options, and the output's grammar (`grammar`, `json_schema`,
 * `response_format`). Unknown fields are ignored, as OpenAI does; a field of
 * the wrong type or out of range is a 400 that names it. Pure functions of
 * their inputs, safe to call from any thread: the fuzz target drives them. */
#ifndef LLAMA2_SERVER_REQUEST_H
#define LLAMA2_SERVER_REQUEST_H

#include <stddef.h>

#include "llama2.h"

/* An HTTP error as OpenAI reports it:
 * {"error": {"message", "type", "param", "code"}}. */
typedef struct server_error {
    int status;         /* the HTTP status */
    const char *type;   /* "invalid_request_error", "server_error", ... */
    const char *code;   /* NULL, or "invalid_type", "context_length_exceeded", ... */
    char param[64];     /* the field at fault; "" for none */
    char message[512];
} server_error;

/* Fills *e and returns 0, so that parsers can `return server_fail(...)`. */
int server_fail(server_error *e, int status, const char *type, const char *code, const char *param,
                const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 6, 7)))
#endif
    ;

/* What every request is checked against. */
typedef struct server_limits {
    const llama2_tokenizer *tokenizer;
    llama2_chat_template chat_template;
    int context_length; /* positions per slot */
    int max_choices;    /* n at most: the slots */
    int vocab_size;
} server_limits;

#define SERVER_MAX_STOPS 16
#define SERVER_MAX_TOP_LOGPROBS 20

/* A completion request, ready for the scheduler. */
typedef struct server_params {
    int chat;              /* 1: /v1/chat/completions, 0: /v1/completions */
    int *prompt;           /* the prompt's token ids (malloc'd), BOS first unless given as ids */
    int n_prompt;
    int max_tokens;        /* most tokens sampled per choice; 0: until the context is full */
    int n;                 /* choices */
    int stream;            /* answer with server-sent events */
    int include_usage;     /* stream_options.include_usage */
    int ignore_eos;        /* never sample EOS or BOS (llama-server's field) */
    char **stop;           /* n_stop stop strings (malloc'd): the request's, then the template's */
    int n_stop;
    llama2_sampler_options sampling; /* repeat_last_n: the context */
    int seed_given;        /* 0: sampling.seed is to be chosen by the caller */
    llama2_grammar *grammar; /* the output's grammar (owned); NULL: none */
    int logprobs;          /* chat: logprobs true; completions: logprobs given */
    int top_logprobs;      /* alternatives per token, 0..SERVER_MAX_TOP_LOGPROBS */
    int n_bias;            /* logit_bias: n_bias distinct token ids (malloc'd) and the values added */
    int *bias_tokens;
    float *bias_values;    /* -100..100; -100 bans the token */
} server_params;

/* Parses the body of a completion (chat = 0) or chat completion (chat = 1)
 * request. Returns 0 and fills *out (free it with server_params_free), or -1
 * with the error in *e (and nothing to free). */
int server_parse_completion(const server_limits *limits, int chat, const char *body, size_t len, server_params *out,
                            server_error *e);
void server_params_free(server_params *p);

/* POST /tokenize: {"content": string, "add_special": bool (BOS; default
 * false)}. Returns 0 with the ids in *ids (malloc'd) and their count, or -1. */
int server_parse_tokenize(const server_limits *limits, const char *body, size_t len, int **ids, int *n_ids,
                          server_error *e);

/* POST /detokenize: {"tokens": [ids]}. Returns 0 with the text in *text
 * (malloc'd, NUL-terminated, valid UTF-8), or -1. */
int server_parse_detokenize(const server_limits *limits, const char *body, size_t len, char **text,
                            server_error *e);

#endif
