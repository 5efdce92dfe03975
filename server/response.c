/* Response bodies (response.h), built with jansson. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "response.h"
#include "schema/json_safe.h"

/* Serialises and frees v. */
static char *dump(json_t *v) {
    if (!v) return NULL;
    char *s = l2_json_dumps(v, JSON_COMPACT);
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

/* The serialiser's output into an event buffer. A failed write is
 * remembered: jansson 2.14 does not check every one (an object's key). */
typedef struct event_dump {
    server_events *ev;
    int failed;
} event_dump;

static int dump_piece(const char *bytes, size_t n, void *user) {
    event_dump *d = user;
    if (!d->failed && !events_append(d->ev, bytes, n)) d->failed = 1;
    return d->failed ? -1 : 0;
}

/* Appends "data: <v as JSON>\n\n" (the serialiser writes straight into
 * the buffer) and frees v; on failure the buffer is left as it was. */
static int put_event(server_events *ev, json_t *v) {
    const size_t start = ev->len;
    event_dump d = {ev, 0};
    const int ok = v && events_append(ev, "data: ", 6) && json_dump_callback(v, dump_piece, &d, JSON_COMPACT) == 0 &&
                   !d.failed && events_append(ev, "\n\n", 2);
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

/* json_object_set_new and json_array_append_new that clear *ok when the
 * value is missing (out of memory) or cannot be added (jansson frees it
 * either way): an answer is whole, or none (500). */
static void set_value(json_t *object, const char *key, json_t *value, int *ok) {
    if (json_object_set_new(object, key, value) != 0) *ok = 0;
}
static void append_value(json_t *array, json_t *value, int *ok) {
    if (json_array_append_new(array, value) != 0) *ok = 0;
}
/* v when ok, else NULL (v freed). */
static json_t *whole(json_t *v, int ok) {
    if (ok) return v;
    json_decref(v);
    return NULL;
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
    int ok = a != NULL;
    for (size_t i = 0; ok && i < len; i++) append_value(a, json_integer((unsigned char)piece[i]), &ok);
    return whole(a, ok);
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
    int ok = content != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        json_t *entry = chat_token(r, lp[i].prev, lp[i].token, lp[i].logprob);
        json_t *top = json_array();
        ok = top != NULL;
        for (int j = 0; ok && j < lp[i].n_top; j++)
            append_value(top, chat_token(r, lp[i].prev, lp[i].top_token[j], lp[i].top_logprob[j]), &ok);
        set_value(entry, "top_logprobs", top, &ok);
        append_value(content, entry, &ok);
    }
    return json_pack("{s:o}", "content", whole(content, ok));
}

/* Completions, the legacy shape: {"tokens", "token_logprobs",
 * "top_logprobs": [{token: logprob}], "text_offset"}. */
static json_t *legacy_logprobs(const server_reply *r, const server_logprob *lp, size_t n) {
    json_t *tokens = json_array(), *values = json_array(), *tops = json_array(), *offsets = json_array();
    int ok = tokens && values && tops && offsets;
    for (size_t i = 0; ok && i < n; i++) {
        size_t len;
        const char *piece = llama2_token_piece(r->tokenizer, lp[i].prev, lp[i].token, &len);
        append_value(tokens, token_value(piece, len), &ok);
        append_value(values, json_real((double)lp[i].logprob), &ok);
        json_t *top = json_object();
        ok = ok && top;
        for (int j = 0; ok && j < lp[i].n_top; j++) {
            piece = llama2_token_piece(r->tokenizer, lp[i].prev, lp[i].top_token[j], &len);
            json_t *key = token_value(piece, len);
            if (!key) ok = 0;
            else if (!json_object_get(top, json_string_value(key)))
                set_value(top, json_string_value(key), json_real((double)lp[i].top_logprob[j]), &ok);
            json_decref(key);
        }
        append_value(tops, top, &ok);
        append_value(offsets, json_integer(lp[i].offset), &ok);
    }
    if (!ok) {
        json_decref(tokens);
        json_decref(values);
        json_decref(tops);
        json_decref(offsets);
        return NULL;
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
    int completion_tokens = 0, ok = root && choices;
    for (int i = 0; ok && i < delta->n_choices; i++) {
        const server_text_delta *c = &delta->choices[i];
        json_t *text = text_value(c->text, c->len);
        json_t *choice = r->chat ? json_pack("{s:i, s:{s:s, s:o}, s:o, s:o}", "index", i, "message", "role",
                                             "assistant", "content", text, "logprobs", logprobs_value(r, c),
                                             "finish_reason", reason_value(c->finish_reason))
                                 : json_pack("{s:i, s:o, s:o, s:o}", "index", i, "text", text, "logprobs",
                                             logprobs_value(r, c), "finish_reason", reason_value(c->finish_reason));
        append_value(choices, choice, &ok);
        completion_tokens += c->completion_tokens;
    }
    set_value(root, "choices", choices, &ok);
    set_value(root, "usage", usage(delta->prompt_tokens, delta->cached_tokens, completion_tokens), &ok);
    return dump(whole(root, ok));
}

int server_chunk_event(server_events *ev, const server_reply *r, int index, const server_text_delta *c, int role,
                       const char *finish_reason) {
    json_t *root = head(r, r->chat ? "chat.completion.chunk" : "text_completion");
    json_t *choice;
    /* The role's chunk comes before any token: no logprobs yet. */
    json_t *logprobs = role ? json_null() : logprobs_value(r, c);
    int ok = 1;
    if (r->chat) {
        json_t *delta = json_object();
        if (role) set_value(delta, "role", json_string("assistant"), &ok);
        if (c->len > 0 || role) set_value(delta, "content", text_value(c->text, c->len), &ok);
        delta = whole(delta, ok);
        choice = json_pack("{s:i, s:o, s:o, s:o}", "index", index, "delta", delta, "logprobs", logprobs,
                           "finish_reason", reason_value(finish_reason));
    } else {
        choice = json_pack("{s:i, s:o, s:o, s:o}", "index", index, "text", text_value(c->text, c->len), "logprobs",
                           logprobs, "finish_reason", reason_value(finish_reason));
    }
    set_value(root, "choices", json_pack("[o]", choice), &ok);
    return put_event(ev, whole(root, ok));
}

int server_usage_event(server_events *ev, const server_reply *r, int prompt_tokens, int cached_tokens,
                       int completion_tokens) {
    json_t *root = head(r, r->chat ? "chat.completion.chunk" : "text_completion");
    int ok = 1;
    set_value(root, "choices", json_array(), &ok);
    set_value(root, "usage", usage(prompt_tokens, cached_tokens, completion_tokens), &ok);
    return put_event(ev, whole(root, ok));
}

char *server_models_json(const char *model, long long created, const llama2_config *c, int context_length) {
    return dump(json_pack("{s:s, s:[{s:s, s:s, s:I, s:s, s:{s:i, s:i, s:i, s:i, s:s}}]}", "object", "list", "data",
                          "id", model, "object", "model", "created", (json_int_t)created, "owned_by", "llama2",
                          "meta", "context_length", context_length, "vocab_size", c->vocab_size, "dim", c->dim,
                          "n_layers", c->n_layers, "weights",
                          c->weight_type == LLAMA2_WEIGHTS_Q4_0   ? "q4_0"
                          : c->weight_type == LLAMA2_WEIGHTS_Q4_K ? "q4_k"
                          : c->weight_type == LLAMA2_WEIGHTS_Q5_K ? "q5_k"
                          : c->weight_type == LLAMA2_WEIGHTS_Q6_K ? "q6_k"
                          : c->weight_type == LLAMA2_WEIGHTS_F32  ? "f32"
                                                                  : "q8_0"));
}

char *server_tokens_json(const int *ids, int n_ids) {
    json_t *tokens = json_array();
    int ok = tokens != NULL;
    for (int i = 0; ok && i < n_ids; i++) append_value(tokens, json_integer(ids[i]), &ok);
    return dump(json_pack("{s:o}", "tokens", whole(tokens, ok)));
}

char *server_content_json(const char *text) { return dump(json_pack("{s:o}", "content", text_value(text, strlen(text)))); }
