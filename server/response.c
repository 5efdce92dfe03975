/* Response bodies (response.h), built with jansson. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "response.h"

/* Serialises and frees v. */
static char *dump(json_t *v) {
    if (!v) return NULL;
    char *s = json_dumps(v, JSON_COMPACT);
    json_decref(v);
    return s;
}

/* Appends n bytes to the events' buffer; 0 when memory ran out. */
static int events_append(server_events *ev, const char *bytes, size_t n) {
    if (ev->len + n > ev->cap) {
        size_t cap = ev->cap ? ev->cap : 1024;
        while (cap < ev->len + n) cap *= 2;
        char *p = realloc(ev->data, cap);
        if (!p) return 0;
        ev->data = p;
        ev->cap = cap;
    }
    memcpy(ev->data + ev->len, bytes, n);
    ev->len += n;
    return 1;
}

static int dump_piece(const char *bytes, size_t n, void *ev) { return events_append(ev, bytes, n) ? 0 : -1; }

/* Appends "data: <v as JSON>\n\n" (the serialiser writes straight into
 * the buffer) and frees v; on failure the buffer is left as it was. */
static int put_event(server_events *ev, json_t *v) {
    const size_t start = ev->len;
    const int ok = v && events_append(ev, "data: ", 6) && json_dump_callback(v, dump_piece, ev, JSON_COMPACT) == 0 &&
                   events_append(ev, "\n\n", 2);
    json_decref(v);
    if (!ok) ev->len = start;
    return ok;
}

/* A string of text[0..len). The scheduler hands out whole UTF-8
 * characters, but an error message may quote bytes of a request cut
 * anywhere (a URL, a role): then the bytes that are not ASCII become '?',
 * so that the answer is always valid JSON. */
static json_t *text_value(const char *text, size_t len) {
    if (!text) return json_string("");
    json_t *v = json_stringn(text, len);
    if (v) return v;
    char *ascii = malloc(len + 1);
    if (!ascii) return NULL;
    for (size_t i = 0; i < len; i++) ascii[i] = (unsigned char)text[i] < 0x80 && text[i] != '\0' ? text[i] : '?';
    v = json_stringn(ascii, len);
    free(ascii);
    return v;
}

/* ---------------------------------------------------------- logprobs */

/* A token's text as OpenAI writes it: the piece when it is valid UTF-8,
 * else "bytes:\\xHH..." (a byte token, part of a character). */
static json_t *token_value(const char *piece, size_t len) {
    json_t *v = json_stringn(piece, len);
    if (v) return v;
    char spelled[6 + 4 * 16 + 1] = "bytes:";
    size_t at = 6;
    for (size_t i = 0; i < len && i < 16; i++, at += 4)
        snprintf(spelled + at, sizeof spelled - at, "\\x%02x", (unsigned char)piece[i]);
    return json_string(spelled);
}

static json_t *bytes_value(const char *piece, size_t len) {
    json_t *a = json_array();
    for (size_t i = 0; a && i < len; i++) json_array_append_new(a, json_integer((unsigned char)piece[i]));
    return a;
}

/* {"token", "logprob", "bytes"} of `token` after `prev`. */
static json_t *chat_token(const server_reply *r, int prev, int token, float logprob) {
    size_t len;
    const char *piece = llama2_token_piece(r->tokenizer, prev, token, &len);
    return json_pack("{s:o, s:f, s:o}", "token", token_value(piece, len), "logprob", (double)logprob, "bytes",
                     bytes_value(piece, len));
}

/* Chat: {"content": [{token, logprob, bytes, top_logprobs: [...]}]}. */
static json_t *chat_logprobs(const server_reply *r, const server_logprob *lp, size_t n) {
    json_t *content = json_array();
    for (size_t i = 0; content && i < n; i++) {
        json_t *entry = chat_token(r, lp[i].prev, lp[i].token, lp[i].logprob);
        json_t *top = json_array();
        for (int j = 0; top && j < lp[i].n_top; j++)
            json_array_append_new(top, chat_token(r, lp[i].prev, lp[i].top_token[j], lp[i].top_logprob[j]));
        json_object_set_new(entry, "top_logprobs", top);
        json_array_append_new(content, entry);
    }
    return json_pack("{s:o}", "content", content);
}

/* Completions, the legacy shape: {"tokens", "token_logprobs",
 * "top_logprobs": [{token: logprob}], "text_offset"}. */
static json_t *legacy_logprobs(const server_reply *r, const server_logprob *lp, size_t n) {
    json_t *tokens = json_array(), *values = json_array(), *tops = json_array(), *offsets = json_array();
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const char *piece = llama2_token_piece(r->tokenizer, lp[i].prev, lp[i].token, &len);
        json_array_append_new(tokens, token_value(piece, len));
        json_array_append_new(values, json_real((double)lp[i].logprob));
        json_t *top = json_object();
        for (int j = 0; j < lp[i].n_top; j++) {
            piece = llama2_token_piece(r->tokenizer, lp[i].prev, lp[i].top_token[j], &len);
            json_t *key = token_value(piece, len);
            if (key && !json_object_get(top, json_string_value(key)))
                json_object_set_new(top, json_string_value(key), json_real((double)lp[i].top_logprob[j]));
            json_decref(key);
        }
        json_array_append_new(tops, top);
        json_array_append_new(offsets, json_integer(lp[i].offset));
    }
    return json_pack("{s:o, s:o, s:o, s:o}", "tokens", tokens, "token_logprobs", values, "top_logprobs", tops,
                     "text_offset", offsets);
}

static json_t *logprobs_value(const server_reply *r, const server_text_delta *c) {
    if (!r->logprobs) return json_null();
    return r->chat ? chat_logprobs(r, c->logprobs, c->n_logprobs) : legacy_logprobs(r, c->logprobs, c->n_logprobs);
}

/* ------------------------------------------------------------ answers */

static json_t *reason_value(const char *finish_reason) {
    return finish_reason ? json_string(finish_reason) : json_null();
}

static json_t *error_value(const server_error *e) {
    return json_pack("{s:{s:o, s:s, s:o, s:o}}", "error", "message", text_value(e->message, strlen(e->message)),
                     "type", e->type, "param", e->param[0] ? text_value(e->param, strlen(e->param)) : json_null(),
                     "code", e->code ? json_string(e->code) : json_null());
}

char *server_error_json(const server_error *e) { return dump(error_value(e)); }

int server_error_event(server_events *ev, const server_error *e) { return put_event(ev, error_value(e)); }

int server_done_event(server_events *ev) {
    static const char done[] = "data: [DONE]\n\n";
    return events_append(ev, done, sizeof done - 1);
}

static json_t *usage(int prompt_tokens, int cached_tokens, int completion_tokens) {
    return json_pack("{s:i, s:i, s:i, s:{s:i}}", "prompt_tokens", prompt_tokens, "completion_tokens",
                     completion_tokens, "total_tokens", prompt_tokens + completion_tokens, "prompt_tokens_details",
                     "cached_tokens", cached_tokens);
}

static json_t *head(const server_reply *r, const char *object) {
    return json_pack("{s:s, s:s, s:I, s:s}", "id", r->id, "object", object, "created", (json_int_t)r->created,
                     "model", r->model);
}

char *server_completion_json(const server_reply *r, const server_job_delta *delta) {
    json_t *root = head(r, r->chat ? "chat.completion" : "text_completion");
    json_t *choices = json_array();
    int completion_tokens = 0;
    for (int i = 0; i < delta->n_choices; i++) {
        const server_text_delta *c = &delta->choices[i];
        json_t *text = text_value(c->text, c->len);
        json_t *choice = r->chat ? json_pack("{s:i, s:{s:s, s:o}, s:o, s:o}", "index", i, "message", "role",
                                             "assistant", "content", text, "logprobs", logprobs_value(r, c),
                                             "finish_reason", reason_value(c->finish_reason))
                                 : json_pack("{s:i, s:o, s:o, s:o}", "index", i, "text", text, "logprobs",
                                             logprobs_value(r, c), "finish_reason", reason_value(c->finish_reason));
        json_array_append_new(choices, choice);
        completion_tokens += c->completion_tokens;
    }
    json_object_set_new(root, "choices", choices);
    json_object_set_new(root, "usage", usage(delta->prompt_tokens, delta->cached_tokens, completion_tokens));
    return dump(root);
}

int server_chunk_event(server_events *ev, const server_reply *r, int index, const server_text_delta *c, int role,
                       const char *finish_reason) {
    json_t *root = head(r, r->chat ? "chat.completion.chunk" : "text_completion");
    json_t *choice;
    /* The role's chunk comes before any token: no logprobs yet. */
    json_t *logprobs = role ? json_null() : logprobs_value(r, c);
    if (r->chat) {
        json_t *delta = json_object();
        if (role) json_object_set_new(delta, "role", json_string("assistant"));
        if (c->len > 0 || role) json_object_set_new(delta, "content", text_value(c->text, c->len));
        choice = json_pack("{s:i, s:o, s:o, s:o}", "index", index, "delta", delta, "logprobs", logprobs,
                           "finish_reason", reason_value(finish_reason));
    } else {
        choice = json_pack("{s:i, s:o, s:o, s:o}", "index", index, "text", text_value(c->text, c->len), "logprobs",
                           logprobs, "finish_reason", reason_value(finish_reason));
    }
    json_object_set_new(root, "choices", json_pack("[o]", choice));
    return put_event(ev, root);
}

int server_usage_event(server_events *ev, const server_reply *r, int prompt_tokens, int cached_tokens,
                       int completion_tokens) {
    json_t *root = head(r, r->chat ? "chat.completion.chunk" : "text_completion");
    json_object_set_new(root, "choices", json_array());
    json_object_set_new(root, "usage", usage(prompt_tokens, cached_tokens, completion_tokens));
    return put_event(ev, root);
}

char *server_models_json(const char *model, long long created, const llama2_config *c, int context_length) {
    return dump(json_pack("{s:s, s:[{s:s, s:s, s:I, s:s, s:{s:i, s:i, s:i, s:i, s:s}}]}", "object", "list", "data",
                          "id", model, "object", "model", "created", (json_int_t)created, "owned_by", "llama2",
                          "meta", "context_length", context_length, "vocab_size", c->vocab_size, "dim", c->dim,
                          "n_layers", c->n_layers, "weights",
                          c->weight_type == LLAMA2_WEIGHTS_Q4_0   ? "q4_0"
                          : c->weight_type == LLAMA2_WEIGHTS_Q4_K ? "q4_k"
                          : c->weight_type == LLAMA2_WEIGHTS_Q6_K ? "q6_k"
                          : c->weight_type == LLAMA2_WEIGHTS_F32  ? "f32"
                                                                  : "q8_0"));
}

char *server_tokens_json(const int *ids, int n_ids) {
    json_t *tokens = json_array();
    for (int i = 0; tokens && i < n_ids; i++) json_array_append_new(tokens, json_integer(ids[i]));
    return dump(json_pack("{s:o}", "tokens", tokens));
}

char *server_content_json(const char *text) { return dump(json_pack("{s:o}", "content", text_value(text, strlen(text)))); }
