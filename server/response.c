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

static json_t *reason_value(const char *finish_reason) {
    return finish_reason ? json_string(finish_reason) : json_null();
}

char *server_error_json(const server_error *e) {
    return dump(json_pack("{s:{s:o, s:s, s:o, s:o}}", "error", "message", text_value(e->message, strlen(e->message)),
                          "type", e->type, "param", e->param[0] ? text_value(e->param, strlen(e->param)) : json_null(),
                          "code", e->code ? json_string(e->code) : json_null()));
}

static json_t *usage(int prompt_tokens, int completion_tokens) {
    return json_pack("{s:i, s:i, s:i}", "prompt_tokens", prompt_tokens, "completion_tokens", completion_tokens,
                     "total_tokens", prompt_tokens + completion_tokens);
}

static json_t *head(const server_reply *r, const char *object) {
    return json_pack("{s:s, s:s, s:I, s:s}", "id", r->id, "object", object, "created", (json_int_t)r->created,
                     "model", r->model);
}

char *server_completion_json(const server_reply *r, const server_news *news) {
    json_t *root = head(r, r->chat ? "chat.completion" : "text_completion");
    json_t *choices = json_array();
    int completion_tokens = 0;
    for (int i = 0; i < news->n_choices; i++) {
        const server_choice_news *c = &news->choices[i];
        json_t *text = text_value(c->text, c->len);
        json_t *choice = r->chat ? json_pack("{s:i, s:{s:s, s:o}, s:n, s:o}", "index", i, "message", "role",
                                             "assistant", "content", text, "logprobs", "finish_reason",
                                             reason_value(c->finish_reason))
                                 : json_pack("{s:i, s:o, s:n, s:o}", "index", i, "text", text, "logprobs",
                                             "finish_reason", reason_value(c->finish_reason));
        json_array_append_new(choices, choice);
        completion_tokens += c->completion_tokens;
    }
    json_object_set_new(root, "choices", choices);
    json_object_set_new(root, "usage", usage(news->prompt_tokens, completion_tokens));
    return dump(root);
}

char *server_chunk_json(const server_reply *r, int index, const char *text, size_t len, int role,
                        const char *finish_reason) {
    json_t *root = head(r, r->chat ? "chat.completion.chunk" : "text_completion");
    json_t *choice;
    if (r->chat) {
        json_t *delta = json_object();
        if (role) json_object_set_new(delta, "role", json_string("assistant"));
        if (len > 0 || role) json_object_set_new(delta, "content", text_value(text, len));
        choice = json_pack("{s:i, s:o, s:n, s:o}", "index", index, "delta", delta, "logprobs", "finish_reason",
                           reason_value(finish_reason));
    } else {
        choice = json_pack("{s:i, s:o, s:n, s:o}", "index", index, "text", text_value(text, len), "logprobs",
                           "finish_reason", reason_value(finish_reason));
    }
    json_object_set_new(root, "choices", json_pack("[o]", choice));
    return dump(root);
}

char *server_usage_chunk_json(const server_reply *r, int prompt_tokens, int completion_tokens) {
    json_t *root = head(r, r->chat ? "chat.completion.chunk" : "text_completion");
    json_object_set_new(root, "choices", json_array());
    json_object_set_new(root, "usage", usage(prompt_tokens, completion_tokens));
    return dump(root);
}

char *server_models_json(const char *model, long long created, const llama2_config *c, int context_length) {
    return dump(json_pack("{s:s, s:[{s:s, s:s, s:I, s:s, s:{s:i, s:i, s:i, s:i, s:s}}]}", "object", "list", "data",
                          "id", model, "object", "model", "created", (json_int_t)created, "owned_by", "llama2",
                          "meta", "context_length", context_length, "vocab_size", c->vocab_size, "dim", c->dim,
                          "n_layers", c->n_layers, "weights", c->weight_type == LLAMA2_WEIGHTS_Q8_0 ? "q8_0" : "f32"));
}

char *server_tokens_json(const int *ids, int n_ids) {
    json_t *tokens = json_array();
    for (int i = 0; tokens && i < n_ids; i++) json_array_append_new(tokens, json_integer(ids[i]));
    return dump(json_pack("{s:o}", "tokens", tokens));
}

char *server_content_json(const char *text) { return dump(json_pack("{s:o}", "content", text_value(text, strlen(text)))); }
