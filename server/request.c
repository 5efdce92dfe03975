/* Request bodies to generation parameters (request.h). Every field is read
 * by one small function that either fills a value, leaves the default (the
 * field absent or null, as OpenAI allows), or fails naming the field. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "request.h"
#include "schema/json_safe.h"
#include "schema/json_schema.h"

int server_fail(server_error *e, int status, const char *type, const char *code, const char *param,
                const char *fmt, ...) {
    e->status = status;
    e->type = type;
    e->code = code;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return -1;
}

#define INVALID "invalid_request_error"

static int bad_type(server_error *e, const char *field, const char *expected, const json_t *v) {
    static const char *const names[] = {"an object", "an array", "a string", "an integer", "a number",
                                        "true",      "false",    "null"};
    const char *got = names[json_typeof(v)];
    return server_fail(e, 400, INVALID, "invalid_type", field, "'%s' must be %s, got %s", field, expected, got);
}

/* Reads the body as a JSON object. */
static json_t *load_object(const char *body, size_t len, server_error *e) {
    json_error_t jerr;
    json_t *root = l2_json_loadb(body, len, 0, &jerr);
    if (!root && json_error_code(&jerr) == json_error_out_of_memory) {
        server_fail(e, 500, "server_error", NULL, NULL, "out of memory");
        return NULL;
    }
    if (!root) {
        server_fail(e, 400, INVALID, "invalid_json", NULL, "the body is not valid JSON: %s (line %d, column %d)",
                    jerr.text, jerr.line, jerr.column);
        return NULL;
    }
    if (!json_is_object(root)) {
        server_fail(e, 400, INVALID, "invalid_json", NULL, "the body must be a JSON object");
        json_decref(root);
        return NULL;
    }
    return root;
}

/* The field, or NULL when it is absent or null. */
static json_t *field(json_t *obj, const char *name) {
    json_t *v = json_object_get(obj, name);
    return v && !json_is_null(v) ? v : NULL;
}

/* Each reader returns 0 (absent: *out unchanged), 1 (read) or -1 (error). */
static int read_number(json_t *obj, const char *name, double lo, double hi, double *out, server_error *e) {
    json_t *v = field(obj, name);
    if (!v) return 0;
    if (!json_is_number(v)) return bad_type(e, name, "a number", v);
    double x = json_number_value(v);
    if (!(x >= lo && x <= hi))
        return server_fail(e, 400, INVALID, "invalid_value", name, "'%s' must be a number from %g to %g, got %g",
                           name, lo, hi, x);
    *out = x;
    return 1;
}

static int read_int(json_t *obj, const char *name, long long lo, long long hi, long long *out, server_error *e) {
    json_t *v = field(obj, name);
    if (!v) return 0;
    if (!json_is_integer(v)) return bad_type(e, name, "an integer", v);
    long long x = json_integer_value(v);
    if (x < lo || x > hi)
        return server_fail(e, 400, INVALID, "invalid_value", name, "'%s' must be an integer from %lld to %lld, got %lld",
                           name, lo, hi, x);
    *out = x;
    return 1;
}

static int read_bool(json_t *obj, const char *name, int *out, server_error *e) {
    json_t *v = field(obj, name);
    if (!v) return 0;
    if (!json_is_boolean(v)) return bad_type(e, name, "a boolean", v);
    *out = json_is_true(v);
    return 1;
}

static char *copy_string(const char *s, size_t len) {
    char *c = malloc(len + 1);
    if (c) {
        memcpy(c, s, len);
        c[len] = '\0';
    }
    return c;
}

static int out_of_memory(server_error *e) {
    return server_fail(e, 500, "server_error", NULL, NULL, "out of memory");
}

/* ------------------------------------------------------------ sampling */

static int read_sampling(json_t *obj, const server_limits *limits, server_params *p, server_error *e) {
    double temperature = 1.0, top_p = 1.0, min_p = 0.0, presence = 0.0, frequency = 0.0, repeat = 1.0;
    long long top_k = 0, seed = 0;
    if (read_number(obj, "temperature", 0.0, 2.0, &temperature, e) < 0 ||
        read_number(obj, "top_p", 0.0, 1.0, &top_p, e) < 0 || read_number(obj, "min_p", 0.0, 1.0, &min_p, e) < 0 ||
        read_int(obj, "top_k", 0, 1LL << 30, &top_k, e) < 0 ||
        read_number(obj, "presence_penalty", -2.0, 2.0, &presence, e) < 0 ||
        read_number(obj, "frequency_penalty", -2.0, 2.0, &frequency, e) < 0 ||
        read_number(obj, "repeat_penalty", 0.0, 100.0, &repeat, e) < 0)
        return -1;
    int seed_read = read_int(obj, "seed", INT64_MIN, INT64_MAX, &seed, e);
    if (seed_read < 0) return -1;
    p->seed_given = seed_read;
    p->sampling = (llama2_sampler_options){
        .temperature = (float)temperature,
        .top_p = (float)top_p,
        .top_k = (int)top_k,
        .min_p = (float)min_p,
        .repeat_penalty = (float)repeat,
        /* OpenAI's penalties count every token of the context. */
        .repeat_last_n = limits->context_length,
        .presence_penalty = (float)presence,
        .frequency_penalty = (float)frequency,
        .seed = (uint64_t)seed,
    };
    return 0;
}

/* ------------------------------------------------------------ grammar */

/* The output's grammar: llama-server's `grammar` (GBNF) and `json_schema`,
 * or OpenAI's `response_format` ({"type": "text"}, {"type": "json_object"},
 * {"type": "json_schema", "json_schema": {"name", "schema", "strict"}}); at
 * most one of them. */
static int read_grammar(json_t *obj, server_params *p, server_error *e) {
    static const char *const fields[] = {"grammar", "json_schema", "response_format"};
    const char *given = NULL;
    for (size_t i = 0; i < 3; i++) {
        if (!field(obj, fields[i])) continue;
        if (given)
            return server_fail(e, 400, INVALID, "invalid_value", fields[i],
                               "'%s' and '%s' both constrain the output: give one of them", given, fields[i]);
        given = fields[i];
    }
    if (!given) return 0;
    json_t *v = field(obj, given);
    llama2_error err = {0};
    llama2_status st;
    if (!strcmp(given, "grammar")) {
        if (!json_is_string(v)) return bad_type(e, "grammar", "a string", v);
        st = llama2_grammar_parse(json_string_value(v), json_string_length(v), &p->grammar, &err);
    } else if (!strcmp(given, "json_schema")) {
        if (!json_is_object(v) && !json_is_boolean(v)) return bad_type(e, "json_schema", "an object", v);
        st = l2_json_schema_value_grammar(v, &p->grammar, &err);
    } else {
        if (!json_is_object(v)) return bad_type(e, "response_format", "an object", v);
        json_t *type = json_object_get(v, "type");
        const char *t = json_string_value(type);
        if (!t)
            return server_fail(e, 400, INVALID, "invalid_value", "response_format",
                               "'response_format' needs a 'type': text, json_object or json_schema");
        if (!strcmp(t, "text")) return 0;
        if (!strcmp(t, "json_object")) {
            /* llama-server also takes a schema here */
            json_t *schema = json_object_get(v, "schema");
            st = l2_json_schema_value_grammar(json_is_null(schema) ? NULL : schema, &p->grammar, &err);
        } else if (!strcmp(t, "json_schema")) {
            json_t *js = json_object_get(v, "json_schema"), *schema = json_object_get(js, "schema");
            if (!json_is_object(js) || !(json_is_object(schema) || json_is_boolean(schema)))
                return server_fail(e, 400, INVALID, "invalid_value", "response_format",
                                   "'response_format' of type json_schema needs 'json_schema': {\"schema\": {...}}");
            json_t *strict = json_object_get(js, "strict"), *name = json_object_get(js, "name");
            if (strict && !json_is_boolean(strict) && !json_is_null(strict))
                return server_fail(e, 400, INVALID, "invalid_type", "response_format",
                                   "'response_format.json_schema.strict' must be a boolean");
            if (name && !json_is_string(name) && !json_is_null(name))
                return server_fail(e, 400, INVALID, "invalid_type", "response_format",
                                   "'response_format.json_schema.name' must be a string");
            /* The output always follows the schema, strict or not. */
            st = l2_json_schema_value_grammar(schema, &p->grammar, &err);
        } else {
            return server_fail(e, 400, INVALID, "invalid_value", "response_format",
                               "unknown 'response_format' type '%.64s' (text, json_object or json_schema)", t);
        }
    }
    if (st == LLAMA2_E_NOMEM) return out_of_memory(e);
    if (st != LLAMA2_OK) return server_fail(e, 400, INVALID, "invalid_value", given, "'%s': %s", given, err.message);
    if (p->ignore_eos) {
        llama2_grammar_free(p->grammar);
        p->grammar = NULL;
        return server_fail(e, 400, INVALID, "invalid_value", "ignore_eos",
                           "'ignore_eos' cannot go with '%s': the output ends where its grammar does", given);
    }
    return 0;
}

/* ---------------------------------------------------------------- stop */

#define TEMPLATE_STOPS 4 /* the most stop strings a template has, with room */

static int add_stop(server_params *p, const char *s, size_t len, server_error *e) {
    if (len == 0) return 0; /* nothing can end at an empty string */
    if (p->n_stop == SERVER_MAX_STOPS)
        return server_fail(e, 400, INVALID, "invalid_value", "stop", "'stop' holds more than %d strings",
                           SERVER_MAX_STOPS);
    if (!(p->stop[p->n_stop] = copy_string(s, len))) return out_of_memory(e);
    p->n_stop++;
    return 0;
}

static int read_stops(json_t *obj, const server_limits *limits, server_params *p, server_error *e) {
    /* Places are kept for the template's stop strings. */
    if (!(p->stop = calloc(SERVER_MAX_STOPS + TEMPLATE_STOPS, sizeof *p->stop))) return out_of_memory(e);
    json_t *v = field(obj, "stop");
    if (v && json_is_string(v)) {
        if (add_stop(p, json_string_value(v), json_string_length(v), e) < 0) return -1;
    } else if (v && json_is_array(v)) {
        size_t i;
        json_t *s;
        json_array_foreach(v, i, s) {
            if (!json_is_string(s)) return bad_type(e, "stop", "a string or an array of strings", s);
            if (add_stop(p, json_string_value(s), json_string_length(s), e) < 0) return -1;
        }
    } else if (v) {
        return bad_type(e, "stop", "a string or an array of strings", v);
    }
    if (p->chat) {
        const char *const *own = llama2_chat_template_stops(limits->chat_template);
        for (int i = 0; own[i]; i++) {
            if (p->n_stop == SERVER_MAX_STOPS + TEMPLATE_STOPS) break;
            if (!(p->stop[p->n_stop] = copy_string(own[i], strlen(own[i])))) return out_of_memory(e);
            p->n_stop++;
        }
    }
    return 0;
}

/* -------------------------------------------------------------- prompts */

static int tokenize(const server_limits *limits, const char *text, size_t len, int add_bos, int **ids, int *n_ids,
                    const char *param, server_error *e) {
    *ids = malloc(llama2_tokenize_capacity(len) * sizeof **ids);
    if (!*ids) return out_of_memory(e);
    llama2_error err;
    const llama2_status s = llama2_tokenize(limits->tokenizer, text, add_bos, 0, *ids, n_ids, &err);
    if (s != LLAMA2_OK) {
        free(*ids);
        *ids = NULL;
        if (s == LLAMA2_E_NOMEM) return out_of_memory(e);
        return server_fail(e, 400, INVALID, "invalid_value", param, "'%s' cannot be encoded: %s", param, err.message);
    }
    return 0;
}

/* A prompt given as token ids. */
static int read_ids(const server_limits *limits, json_t *array, int **ids, int *n_ids, const char *param,
                    server_error *e) {
    size_t n = json_array_size(array);
    if (n == 0) return server_fail(e, 400, INVALID, "invalid_value", param, "'%s' holds no tokens", param);
    *ids = malloc(n * sizeof **ids);
    if (!*ids) return out_of_memory(e);
    for (size_t i = 0; i < n; i++) {
        json_t *t = json_array_get(array, i);
        if (!json_is_integer(t) || json_integer_value(t) < 0 || json_integer_value(t) >= limits->vocab_size) {
            free(*ids);
            *ids = NULL;
            return server_fail(e, 400, INVALID, "invalid_value", param,
                               "'%s' must hold token ids from 0 to %d (item %zu is not one)", param,
                               limits->vocab_size - 1, i);
        }
        (*ids)[i] = (int)json_integer_value(t);
    }
    *n_ids = (int)n;
    return 0;
}

/* /v1/completions: a string, or an array of one string, of token ids, or of
 * one array of token ids. */
static int read_prompt(const server_limits *limits, json_t *obj, server_params *p, server_error *e) {
    json_t *v = field(obj, "prompt");
    if (!v) return server_fail(e, 400, INVALID, "missing_required_parameter", "prompt", "'prompt' is required");
    if (json_is_array(v) && json_array_size(v) == 1 &&
        (json_is_string(json_array_get(v, 0)) || json_is_array(json_array_get(v, 0))))
        v = json_array_get(v, 0);
    if (json_is_string(v)) return tokenize(limits, json_string_value(v), json_string_length(v), 1, &p->prompt,
                                           &p->n_prompt, "prompt", e);
    if (json_is_array(v)) {
        if (json_array_size(v) > 0 && !json_is_integer(json_array_get(v, 0)))
            return server_fail(e, 400, INVALID, "invalid_value", "prompt",
                               "'prompt' must be one prompt: this server answers one prompt per request");
        return read_ids(limits, v, &p->prompt, &p->n_prompt, "prompt", e);
    }
    return bad_type(e, "prompt", "a string or an array of token ids", v);
}

/* The text of a message: a string, or an array of {"type": "text", "text"}
 * parts, joined. *text is malloc'd. */
static int message_text(json_t *content, const char *role, char **text, server_error *e) {
    if (!content) {
        /* An assistant turn that only called tools has no content. */
        if (strcmp(role, "assistant") != 0)
            return server_fail(e, 400, INVALID, "missing_required_parameter", "messages",
                               "a '%s' message needs a 'content'", role);
        *text = copy_string("", 0);
        return *text ? 0 : out_of_memory(e);
    }
    if (json_is_string(content)) {
        *text = copy_string(json_string_value(content), json_string_length(content));
        return *text ? 0 : out_of_memory(e);
    }
    if (!json_is_array(content)) return bad_type(e, "messages", "content as a string or an array of parts", content);
    size_t total = 0, i;
    json_t *part;
    json_array_foreach(content, i, part) {
        json_t *type = json_object_get(part, "type"), *t = json_object_get(part, "text");
        if (!json_is_string(type) || strcmp(json_string_value(type), "text") != 0 || !json_is_string(t))
            return server_fail(e, 400, INVALID, "invalid_value", "messages",
                               "content part %zu is not {\"type\": \"text\", \"text\": string}: this model reads text only",
                               i);
        total += json_string_length(t);
    }
    if (!(*text = malloc(total + 1))) return out_of_memory(e);
    size_t at = 0;
    json_array_foreach(content, i, part) {
        json_t *t = json_object_get(part, "text");
        memcpy(*text + at, json_string_value(t), json_string_length(t));
        at += json_string_length(t);
    }
    (*text)[at] = '\0';
    return 0;
}

/* The roles a template knows; OpenAI's "developer" is the system prompt of
 * its newer models. */
static const char *known_role(const char *role) {
    static const char *const roles[] = {"system", "user", "assistant"};
    if (strcmp(role, "developer") == 0) return "system";
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
        if (strcmp(role, roles[i]) == 0) return roles[i];
    return NULL;
}

/* /v1/chat/completions: the messages, written with the chat template. */
static int read_messages(const server_limits *limits, json_t *obj, server_params *p, server_error *e) {
    json_t *v = field(obj, "messages");
    if (!v) return server_fail(e, 400, INVALID, "missing_required_parameter", "messages", "'messages' is required");
    if (!json_is_array(v)) return bad_type(e, "messages", "an array", v);
    const size_t n = json_array_size(v);
    if (n == 0) return server_fail(e, 400, INVALID, "invalid_value", "messages", "'messages' is empty");
    llama2_chat_message *messages = calloc(n, sizeof *messages);
    char **texts = calloc(n, sizeof *texts);
    int rc = messages && texts ? 0 : out_of_memory(e);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        json_t *m = json_array_get(v, i), *role = json_object_get(m, "role");
        if (!json_is_object(m)) {
            rc = bad_type(e, "messages", "an array of objects", m);
        } else if (!json_is_string(role)) {
            rc = server_fail(e, 400, INVALID, "invalid_type", "messages", "message %zu has no 'role' string", i);
        } else if (!(messages[i].role = known_role(json_string_value(role)))) {
            rc = server_fail(e, 400, INVALID, "invalid_value", "messages",
                             "message %zu: role '%.64s' is not one of system, developer, user, assistant", i,
                             json_string_value(role));
        } else {
            rc = message_text(field(m, "content"), messages[i].role, &texts[i], e);
            messages[i].content = texts[i];
        }
    }
    if (rc == 0) {
        llama2_error err;
        if (llama2_chat_encode(limits->tokenizer, limits->chat_template, messages, (int)n, 1, &p->prompt,
                               &p->n_prompt, &err) != LLAMA2_OK)
            rc = server_fail(e, err.status == LLAMA2_E_NOMEM ? 500 : 400, INVALID, "invalid_value", "messages",
                             "%s", err.message);
    }
    for (size_t i = 0; texts && i < n; i++) free(texts[i]);
    free(texts);
    free(messages);
    return rc;
}

/* -------------------------------------------------------- which fields */

/* The fields this server reads, on both endpoints (the prompt's own field is
 * the endpoint's). */
static const char *const read_fields[] = {
    "max_tokens", "max_completion_tokens", "n",    "stream",           "stream_options",    "temperature",
    "top_p",      "top_k",                 "min_p", "presence_penalty", "frequency_penalty", "repeat_penalty",
    "seed",       "stop",                  "ignore_eos", "grammar",          "json_schema",       "response_format",
    "logprobs",   "top_logprobs",          "logit_bias",
};

/* OpenAI's fields that cannot change this server's answer: accepted, and
 * otherwise left alone (docs/SERVING.md lists them). parallel_tool_calls
 * only matters with tools, which are refused. */
static const char *const harmless_fields[] = {
    "model",          "user",        "store", "metadata", "service_tier", "prompt_cache_key", "safety_identifier",
    "parallel_tool_calls",
};

/* OpenAI's fields that would change the answer and that this server does not
 * implement: a 400 naming the field, unless the value is the one that asks
 * for nothing (null, false, an empty array, object or string, 0, or as
 * noted). */
static const char *const unimplemented_fields[] = {
    "tools",      "tool_choice",     "functions", "function_call", "echo",      "suffix",
    "best_of",    "audio",
    "modalities", "prediction",      "reasoning_effort", "verbosity", "web_search_options",
};

static int listed(const char *name, const char *const *list, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(name, list[i]) == 0) return 1;
    return 0;
}

#define LISTED(name, list) listed(name, list, sizeof list / sizeof list[0])

/* A value of an unimplemented field that asks for nothing it would do. */
static int asks_nothing(const char *name, json_t *v) {
    switch (json_typeof(v)) {
    case JSON_NULL:
    case JSON_FALSE: return 1;
    case JSON_ARRAY:
        if (strcmp(name, "modalities") == 0) /* text is what it answers in */
            return json_array_size(v) == 0 ||
                   (json_array_size(v) == 1 && json_is_string(json_array_get(v, 0)) &&
                    strcmp(json_string_value(json_array_get(v, 0)), "text") == 0);
        return json_array_size(v) == 0;
    case JSON_OBJECT: {
        return json_object_size(v) == 0;
    }
    case JSON_STRING:
        return json_string_length(v) == 0 || (strcmp(name, "tool_choice") == 0 && strcmp(json_string_value(v), "none") == 0);
    case JSON_INTEGER:
        return strcmp(name, "best_of") == 0 && json_integer_value(v) == 1;
    default: return 0;
    }
}

/* Every field of the body is one this server reads, one that cannot change
 * the answer, or an unimplemented one that asks for nothing; any other is a
 * 400 naming it (as OpenAI answers a parameter it does not know). */
static int check_fields(json_t *obj, int chat, server_error *e) {
    const char *name;
    json_t *v;
    json_object_foreach(obj, name, v) {
        if (strcmp(name, chat ? "messages" : "prompt") == 0 || LISTED(name, read_fields) ||
            LISTED(name, harmless_fields))
            continue;
        if (LISTED(name, unimplemented_fields)) {
            if (asks_nothing(name, v)) continue;
            return server_fail(e, 400, INVALID, "unsupported_parameter", name,
                               "'%s' is not implemented by this server (docs/SERVING.md lists the fields it reads)",
                               name);
        }
        return server_fail(e, 400, INVALID, "unknown_parameter", name,
                           "'%.64s' is not a parameter of %s (docs/SERVING.md lists the fields it reads)", name,
                           chat ? "/v1/chat/completions" : "/v1/completions");
    }
    return 0;
}

/* ------------------------------------------------------------- the body */

/* ------------------------------------------------ logprobs, logit_bias */

/* Chat: logprobs (a boolean) and top_logprobs (0..20, only with logprobs).
 * Completions: logprobs, the number of alternatives (0..20), as the legacy
 * API has it. */
static int read_logprobs(json_t *obj, server_params *p, server_error *e) {
    long long top = 0;
    if (p->chat) {
        int want = 0;
        if (read_bool(obj, "logprobs", &want, e) < 0) return -1;
        const int got = read_int(obj, "top_logprobs", 0, SERVER_MAX_TOP_LOGPROBS, &top, e);
        if (got < 0) return -1;
        if (got && top > 0 && !want) /* 0 asks for nothing */
            return server_fail(e, 400, INVALID, "invalid_value", "top_logprobs",
                               "'top_logprobs' needs 'logprobs': true");
        p->logprobs = want;
    } else {
        const int got = read_int(obj, "logprobs", 0, SERVER_MAX_TOP_LOGPROBS, &top, e);
        if (got < 0) return -1;
        p->logprobs = got;
    }
    p->top_logprobs = (int)top;
    return 0;
}

/* logit_bias: {"token id": value from -100 to 100}, at most one entry per
 * token of the vocabulary; not every token banned. */
static int read_logit_bias(json_t *obj, const server_limits *limits, server_params *p, server_error *e) {
    json_t *bias = field(obj, "logit_bias");
    if (!bias) return 0;
    if (!json_is_object(bias)) return bad_type(e, "logit_bias", "an object", bias);
    const size_t n = json_object_size(bias);
    if (n > (size_t)limits->vocab_size)
        return server_fail(e, 400, INVALID, "invalid_value", "logit_bias",
                           "'logit_bias' has %zu entries, more than the %d tokens of the vocabulary", n,
                           limits->vocab_size);
    if (n == 0) return 0;
    /* The keys are distinct strings (jansson keeps the last of a repeated
     * key) and written without leading zeros, so the ids are distinct. */
    p->bias_tokens = malloc(n * sizeof *p->bias_tokens);
    p->bias_values = malloc(n * sizeof *p->bias_values);
    if (!p->bias_tokens || !p->bias_values) return out_of_memory(e);
    const char *key;
    json_t *v;
    int bans = 0, rc = 0;
    json_object_foreach(bias, key, v) {
        char *end;
        const long id = strtol(key, &end, 10);
        if (key[0] < '0' || key[0] > '9' || *end != '\0' || id >= limits->vocab_size || (key[0] == '0' && key[1])) {
            rc = server_fail(e, 400, INVALID, "invalid_value", "logit_bias",
                             "'logit_bias': the key '%.40s' is not a token id (0 to %d)", key, limits->vocab_size - 1);
            break;
        }
        if (!json_is_number(v) || !(json_number_value(v) >= -100 && json_number_value(v) <= 100)) {
            rc = json_is_number(v) ? server_fail(e, 400, INVALID, "invalid_value", "logit_bias",
                                                 "'logit_bias': the value of token %ld must be a number from -100 "
                                                 "to 100, got %g",
                                                 id, json_number_value(v))
                                   : server_fail(e, 400, INVALID, "invalid_type", "logit_bias",
                                                 "'logit_bias': the value of token %ld must be a number", id);
            break;
        }
        p->bias_tokens[p->n_bias] = (int)id;
        p->bias_values[p->n_bias++] = (float)json_number_value(v);
        bans += json_number_value(v) <= -100;
    }
    if (rc == 0 && bans == limits->vocab_size)
        rc = server_fail(e, 400, INVALID, "invalid_value", "logit_bias", "'logit_bias' bans every token");
    return rc < 0 ? -1 : 0;
}

static int read_completion(const server_limits *limits, json_t *obj, server_params *p, server_error *e) {
    const char *prompt_field = p->chat ? "messages" : "prompt";
    if ((p->chat ? read_messages(limits, obj, p, e) : read_prompt(limits, obj, p, e)) < 0) return -1;
    if (check_fields(obj, p->chat, e) < 0) return -1;
    if (p->n_prompt > limits->context_length)
        return server_fail(e, 400, INVALID, "context_length_exceeded", prompt_field,
                           "the prompt is %d tokens, the context window holds %d", p->n_prompt,
                           limits->context_length);
    long long max_tokens = 0, n = 1;
    int stream = 0, include_usage = 0, ignore_eos = 0;
    /* max_completion_tokens is the newer name of max_tokens. */
    int got = read_int(obj, "max_completion_tokens", 1, INT32_MAX, &max_tokens, e);
    if (got == 0) got = read_int(obj, "max_tokens", 1, INT32_MAX, &max_tokens, e);
    if (got < 0 || read_int(obj, "n", 1, INT32_MAX, &n, e) < 0 || read_bool(obj, "stream", &stream, e) < 0 ||
        read_bool(obj, "ignore_eos", &ignore_eos, e) < 0)
        return -1;
    if (n > limits->max_choices)
        return server_fail(e, 400, INVALID, "invalid_value", "n",
                           "'n' is %lld, this server generates at most %d choices at once (--parallel)", n,
                           limits->max_choices);
    json_t *options = field(obj, "stream_options");
    if (options && !json_is_object(options)) return bad_type(e, "stream_options", "an object", options);
    if (options && read_bool(options, "include_usage", &include_usage, e) < 0) return -1;
    if (options) {
        const char *key;
        json_t *value;
        json_object_foreach(options, key, value) {
            /* include_obfuscation pads chunks against a side channel of
             * OpenAI's: the answer is the same without it. */
            if (strcmp(key, "include_usage") != 0 && strcmp(key, "include_obfuscation") != 0)
                return server_fail(e, 400, INVALID, "unknown_parameter", "stream_options",
                                   "'stream_options.%.64s' is not a parameter of stream_options (include_usage is)",
                                   key);
        }
    }
    p->max_tokens = (int)max_tokens;
    p->n = (int)n;
    p->stream = stream;
    p->include_usage = include_usage;
    p->ignore_eos = ignore_eos;
    if (read_sampling(obj, limits, p, e) < 0 || read_grammar(obj, p, e) < 0 || read_logprobs(obj, p, e) < 0 ||
        read_logit_bias(obj, limits, p, e) < 0)
        return -1;
    return read_stops(obj, limits, p, e);
}

int server_parse_completion(const server_limits *limits, int chat, const char *body, size_t len, server_params *out,
                            server_error *e) {
    memset(out, 0, sizeof *out);
    out->chat = chat;
    json_t *root = load_object(body, len, e);
    if (!root) return -1;
    int rc = read_completion(limits, root, out, e);
    json_decref(root);
    if (rc < 0) server_params_free(out);
    return rc < 0 ? -1 : 0;
}

void server_params_free(server_params *p) {
    for (int i = 0; p->stop && i < p->n_stop; i++) free(p->stop[i]);
    free(p->stop);
    free(p->prompt);
    llama2_grammar_free(p->grammar);
    free(p->bias_tokens);
    free(p->bias_values);
    memset(p, 0, sizeof *p);
}

/* ------------------------------------------------- tokenize, detokenize */

int server_parse_tokenize(const server_limits *limits, const char *body, size_t len, int **ids, int *n_ids,
                          server_error *e) {
    *ids = NULL;
    *n_ids = 0;
    json_t *root = load_object(body, len, e);
    if (!root) return -1;
    int add_special = 0, rc = -1;
    json_t *content = field(root, "content");
    if (!content)
        server_fail(e, 400, INVALID, "missing_required_parameter", "content", "'content' is required");
    else if (!json_is_string(content))
        bad_type(e, "content", "a string", content);
    else if (read_bool(root, "add_special", &add_special, e) >= 0)
        rc = tokenize(limits, json_string_value(content), json_string_length(content), add_special, ids, n_ids,
                      "content", e);
    json_decref(root);
    return rc;
}

int server_parse_detokenize(const server_limits *limits, const char *body, size_t len, char **text,
                            server_error *e) {
    *text = NULL;
    json_t *root = load_object(body, len, e);
    if (!root) return -1;
    json_t *tokens = field(root, "tokens");
    int rc = -1;
    if (!tokens) {
        server_fail(e, 400, INVALID, "missing_required_parameter", "tokens", "'tokens' is required");
    } else if (!json_is_array(tokens)) {
        bad_type(e, "tokens", "an array of token ids", tokens);
    } else {
        /* Each piece, at most the longest in the vocabulary, through the
         * text filter: valid UTF-8 out, special tokens hidden. The first is
         * decoded after BOS, so that tokenize's dummy-prefix space goes and
         * a text comes back as it went in. */
        size_t cap = 64, used = 0;
        char *out = malloc(cap);
        llama2_text_filter filter;
        llama2_text_filter_init(&filter);
        int prev = LLAMA2_TOKEN_BOS;
        rc = out ? 0 : out_of_memory(e);
        for (size_t i = 0; rc == 0 && i < json_array_size(tokens); i++) {
            json_t *t = json_array_get(tokens, i);
            if (!json_is_integer(t) || json_integer_value(t) < 0 || json_integer_value(t) >= limits->vocab_size) {
                rc = server_fail(e, 400, INVALID, "invalid_value", "tokens",
                                 "'tokens' must hold token ids from 0 to %d (item %zu is not one)",
                                 limits->vocab_size - 1, i);
                break;
            }
            const int token = (int)json_integer_value(t);
            size_t n = 0;
            const char *piece = llama2_tokenizer_is_special(limits->tokenizer, token)
                                    ? ""
                                    : llama2_token_piece(limits->tokenizer, prev, token, &n);
            if (used + n + 5 > cap) {
                while (used + n + 5 > cap) cap *= 2;
                char *bigger = realloc(out, cap);
                if (!bigger) {
                    rc = out_of_memory(e);
                    break;
                }
                out = bigger;
            }
            used += llama2_text_filter_push(&filter, piece, n, out + used);
            prev = token;
        }
        if (rc == 0) {
            out[used] = '\0';
            *text = out;
        } else {
            free(out);
        }
    }
    json_decref(root);
    return rc;
}
