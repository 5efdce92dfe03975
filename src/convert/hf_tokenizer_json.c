/*
 * Hugging Face's tokenizer.json (with tokenizer_config.json beside it, when
 * there is one) to the engine's byte-level BPE tokenizer file. Only what the
 * engine encodes exactly is accepted: a BPE model, no normalizer, and Llama
 * 3's pre-tokenizer (a Split on its regex, then ByteLevel without a regex of
 * its own). The tokens and merges go through llama2_tokenizer_from_bpe,
 * which checks every merge names tokens of the vocabulary.
 *
 * BOS is tokenizer_config.json's bos_token; the end tokens are its
 * eos_token, then those of Llama 3's <|end_of_text|>, <|eot_id|> and
 * <|eom_id|> that the vocabulary has (a chat reply ends at any of them).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert.h"
#include "platform/checks.h"
#include "schema/json_safe.h"
#include "printable.h"
#include "small_file.h"
#include "text/bpe.h"
#include "text/tokenizer_internal.h"

#define LLAMA3_SPLIT                                                                                              \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"     \
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define JSON_LIMIT ((size_t)256 << 20)

static const char *const llama3_end_tokens[] = {"<|end_of_text|>", "<|eot_id|>", "<|eom_id|>"};

/* flags: JSON_DECODE_INT_AS_REAL for tokenizer_config.json, whose
 * model_max_length can be larger than any integer type. */
static json_t *load_json(const char *path, size_t flags, llama2_error *err) {
    char *text = NULL;
    size_t len = 0;
    if (l2_read_small_file(path, JSON_LIMIT, &text, &len, err) != LLAMA2_OK) return NULL;
    json_error_t jerr;
    json_t *root = l2_json_loadb(text, len, JSON_REJECT_DUPLICATES | flags, &jerr);
    free(text);
    char shown[96];
    if (!root)
        l2_fail(err, LLAMA2_E_FORMAT, "%s: not valid JSON: %s (line %d, column %d)", path,
                l2_printable(jerr.text, shown, sizeof shown), jerr.line, jerr.column);
    else if (!json_is_object(root)) {
        json_decref(root);
        root = NULL;
        l2_fail(err, LLAMA2_E_FORMAT, "%s: not a JSON object", path);
    }
    return root;
}

static int string_is(json_t *v, const char *s) { return json_is_string(v) && strcmp(json_string_value(v), s) == 0; }

/* Llama 3's pre-tokenizer, and nothing else. */
static int is_llama3_pre_tokenizer(json_t *pre) {
    json_t *list = json_object_get(pre, "pretokenizers");
    if (!string_is(json_object_get(pre, "type"), "Sequence") || json_array_size(list) != 2) return 0;
    json_t *split = json_array_get(list, 0), *byte_level = json_array_get(list, 1);
    json_t *invert = json_object_get(split, "invert");
    json_t *use_regex = json_object_get(byte_level, "use_regex");
    return string_is(json_object_get(split, "type"), "Split") &&
           string_is(json_object_get(json_object_get(split, "pattern"), "Regex"), LLAMA3_SPLIT) &&
           string_is(json_object_get(split, "behavior"), "Isolated") && (!invert || json_is_false(invert)) &&
           string_is(json_object_get(byte_level, "type"), "ByteLevel") && json_is_false(use_regex);
}

/* The model's checks: what the engine cannot encode exactly is refused. */
static llama2_status check_model(json_t *root, const char *path, llama2_error *err) {
    json_t *model = json_object_get(root, "model");
    char shown[96];
    if (!json_is_object(model)) return l2_fail(err, LLAMA2_E_FORMAT, "%s: no model object", path);
    json_t *type = json_object_get(model, "type");
    if (!string_is(type, "BPE"))
        return l2_fail(err, LLAMA2_E_FORMAT, "%s: model type \"%s\" is not supported (only BPE)", path,
                       json_is_string(type) ? l2_printable(json_string_value(type), shown, sizeof shown) : "");
    if (!json_is_object(json_object_get(model, "vocab")))
        return l2_fail(err, LLAMA2_E_FORMAT, "%s: model.vocab is missing", path);
    if (!json_is_array(json_object_get(model, "merges")))
        return l2_fail(err, LLAMA2_E_FORMAT, "%s: model.merges is missing", path);
    if (json_is_false(json_object_get(model, "ignore_merges")))
        return l2_fail(err, LLAMA2_E_FORMAT, "%s: model.ignore_merges false is not supported", path);
    if (json_is_true(json_object_get(model, "byte_fallback")))
        return l2_fail(err, LLAMA2_E_FORMAT, "%s: model.byte_fallback is not supported", path);
    json_t *normalizer = json_object_get(root, "normalizer");
    if (normalizer && !json_is_null(normalizer))
        return l2_fail(err, LLAMA2_E_FORMAT, "%s: a normalizer is not supported", path);
    if (!is_llama3_pre_tokenizer(json_object_get(root, "pre_tokenizer")))
        return l2_fail(err, LLAMA2_E_FORMAT,
                       "%s: pre_tokenizer is not supported (only Llama 3's: a Split on its regex, then ByteLevel)",
                       path);
    return LLAMA2_OK;
}

typedef struct vocab_lists {
    const char **tokens;
    int *types;
    int n_tokens;
    const char **merges;
    char **joined; /* merges given as [left, right], joined with a space */
    int n_merges;
} vocab_lists;

static void free_lists(vocab_lists *v) {
    for (int i = 0; v->joined && i < v->n_merges; i++) free(v->joined[i]);
    free(v->joined);
    free(v->tokens);
    free(v->types);
    free(v->merges);
}

/* Puts `name` at `id`; an id out of range or taken twice is an error. */
static llama2_status place(vocab_lists *v, long long id, const char *name, int type, const char *path,
                           llama2_error *err) {
    char shown[96];
    if (id < 0 || id >= v->n_tokens)
        return l2_fail(err, LLAMA2_E_FORMAT, "%s: token \"%s\" has id %lld, outside 0..%d", path,
                       l2_printable(name, shown, sizeof shown), id, v->n_tokens - 1);
    if (v->tokens[id] && (strcmp(v->tokens[id], name) != 0 || type == L2_BPE_NORMAL))
        return l2_fail(err, LLAMA2_E_FORMAT, "%s: id %lld is given to two tokens", path, id);
    v->tokens[id] = name;
    v->types[id] = type;
    return LLAMA2_OK;
}

static llama2_status read_lists(json_t *root, const char *path, vocab_lists *v, llama2_error *err) {
    json_t *model = json_object_get(root, "model"), *vocab = json_object_get(model, "vocab");
    json_t *merges = json_object_get(model, "merges"), *added = json_object_get(root, "added_tokens");
    long long top = -1;
    const char *key;
    json_t *value;
    size_t i;
    json_object_foreach(vocab, key, value) {
        if (!json_is_integer(value)) return l2_fail(err, LLAMA2_E_FORMAT, "%s: a vocab id is not an integer", path);
        if (json_integer_value(value) > top) top = json_integer_value(value);
    }
    json_array_foreach(added, i, value) {
        json_t *id = json_object_get(value, "id");
        if (!json_is_integer(id) || !json_is_string(json_object_get(value, "content")))
            return l2_fail(err, LLAMA2_E_FORMAT, "%s: added token %zu has no id or content", path, i);
        if (json_integer_value(id) > top) top = json_integer_value(id);
    }
    if (top < 0 || top >= (1 << 30)) return l2_fail(err, LLAMA2_E_FORMAT, "%s: the vocabulary is empty or too large", path);
    v->n_tokens = (int)top + 1;
    v->n_merges = (int)json_array_size(merges);
    v->tokens = calloc((size_t)v->n_tokens, sizeof *v->tokens);
    v->types = calloc((size_t)v->n_tokens, sizeof *v->types);
    v->merges = calloc((size_t)v->n_merges + 1, sizeof *v->merges);
    v->joined = calloc((size_t)v->n_merges + 1, sizeof *v->joined);
    if (!v->tokens || !v->types || !v->merges || !v->joined) return l2_fail(err, LLAMA2_E_NOMEM, "%s: out of memory", path);
    llama2_status s = LLAMA2_OK;
    json_object_foreach(vocab, key, value) {
        if ((s = place(v, json_integer_value(value), key, L2_BPE_NORMAL, path, err)) != LLAMA2_OK) return s;
    }
    json_array_foreach(added, i, value) {
        int special = json_is_true(json_object_get(value, "special"));
        s = place(v, json_integer_value(json_object_get(value, "id")),
                  json_string_value(json_object_get(value, "content")),
                  special ? L2_BPE_CONTROL : L2_BPE_USER_DEFINED, path, err);
        if (s != LLAMA2_OK) return s;
    }
    for (int id = 0; id < v->n_tokens; id++)
        if (!v->tokens[id]) return l2_fail(err, LLAMA2_E_FORMAT, "%s: no token has id %d", path, id);
    json_array_foreach(merges, i, value) {
        if (json_is_string(value)) {
            v->merges[i] = json_string_value(value);
        } else if (json_array_size(value) == 2 && json_is_string(json_array_get(value, 0)) &&
                   json_is_string(json_array_get(value, 1))) {
            const char *a = json_string_value(json_array_get(value, 0)), *b = json_string_value(json_array_get(value, 1));
            size_t an = strlen(a), bn = strlen(b);
            if (!(v->joined[i] = malloc(an + bn + 2))) return l2_fail(err, LLAMA2_E_NOMEM, "%s: out of memory", path);
            memcpy(v->joined[i], a, an);
            v->joined[i][an] = ' ';
            memcpy(v->joined[i] + an + 1, b, bn + 1);
            v->merges[i] = v->joined[i];
        } else {
            return l2_fail(err, LLAMA2_E_FORMAT, "%s: merge %zu is neither \"left right\" nor [left, right]", path, i);
        }
    }
    return LLAMA2_OK;
}

/* A token's id by its text, among the added tokens and then the vocab. */
static int id_of(const vocab_lists *v, const char *text) {
    for (int id = 0; id < v->n_tokens; id++)
        if (v->types[id] != L2_BPE_NORMAL && strcmp(v->tokens[id], text) == 0) return id;
    return -1;
}

/* bos_token / eos_token: a string, or an object with "content". */
static const char *config_token(json_t *config, const char *name) {
    json_t *t = json_object_get(config, name);
    if (json_is_object(t)) t = json_object_get(t, "content");
    return json_is_string(t) ? json_string_value(t) : NULL;
}

static llama2_status special_ids(const vocab_lists *v, json_t *config, const char *config_path, llama2_bpe_vocab *out,
                                 int *end, llama2_error *err) {
    out->bos_id = -1;
    out->n_end = 0;
    char shown[96];
    const char *bos = config ? config_token(config, "bos_token") : NULL;
    const char *eos = config ? config_token(config, "eos_token") : NULL;
    if (bos && (out->bos_id = id_of(v, bos)) < 0)
        return l2_fail(err, LLAMA2_E_FORMAT, "%s: bos_token \"%s\" is not an added token", config_path,
                       l2_printable(bos, shown, sizeof shown));
    if (eos && (end[out->n_end++] = id_of(v, eos)) < 0)
        return l2_fail(err, LLAMA2_E_FORMAT, "%s: eos_token \"%s\" is not an added token", config_path,
                       l2_printable(eos, shown, sizeof shown));
    for (size_t k = 0; k < sizeof llama3_end_tokens / sizeof *llama3_end_tokens; k++) {
        int id = id_of(v, llama3_end_tokens[k]), seen = 0;
        for (int j = 0; j < out->n_end; j++) seen |= end[j] == id;
        if (id >= 0 && !seen) end[out->n_end++] = id;
    }
    out->end_ids = end;
    return LLAMA2_OK;
}

/* tokenizer_config.json beside tokenizer.json, when there is one. */
static char *config_path_beside(const char *json_path) {
    const char *slash = strrchr(json_path, '/');
    size_t dir = slash ? (size_t)(slash - json_path) + 1 : 0;
    char *p = malloc(dir + sizeof "tokenizer_config.json");
    if (!p) return NULL;
    memcpy(p, json_path, dir);
    strcpy(p + dir, "tokenizer_config.json");
    return p;
}

llama2_status l2_load_tokenizer_json(const char *path, llama2_tokenizer **out, llama2_error *err) {
    *out = NULL;
    json_t *root = load_json(path, 0, err), *config = NULL;
    if (!root) return err ? err->status : LLAMA2_E_FORMAT;
    char *config_path = config_path_beside(path);
    llama2_status s = config_path ? check_model(root, path, err) : l2_fail(err, LLAMA2_E_NOMEM, "out of memory");
    FILE *probe = s == LLAMA2_OK ? fopen(config_path, "rb") : NULL;
    if (probe) {
        fclose(probe);
        if (!(config = load_json(config_path, JSON_DECODE_INT_AS_REAL, err))) s = err ? err->status : LLAMA2_E_FORMAT;
    }
    vocab_lists lists = {0};
    if (s == LLAMA2_OK) s = read_lists(root, path, &lists, err);
    llama2_bpe_vocab vocab = {0};
    int end[L2_BPE_MAX_END_TOKENS + 3];
    if (s == LLAMA2_OK) s = special_ids(&lists, config, config_path, &vocab, end, err);
    if (s == LLAMA2_OK) {
        vocab.n_tokens = lists.n_tokens;
        vocab.tokens = lists.tokens;
        vocab.token_types = lists.types;
        vocab.n_merges = lists.n_merges;
        vocab.merges = lists.merges;
        vocab.pre_tokenizer = "llama3";
        s = llama2_tokenizer_from_bpe(&vocab, out, err);
        if (s != LLAMA2_OK && err) { /* name the file */
            char inner[sizeof err->message];
            memcpy(inner, err->message, sizeof inner);
            l2_fail(err, s, "%s: %s", path, inner);
        }
    }
    free_lists(&lists);
    free(config_path);
    json_decref(config);
    json_decref(root);
    return s;
}

llama2_status l2_tokenizer_json_bytes(const char *path, int vocab_size, unsigned char **data, size_t *size,
                                      llama2_error *err) {
    llama2_tokenizer *t = NULL;
    llama2_status s = l2_load_tokenizer_json(path, &t, err);
    if (s != LLAMA2_OK) return s;
    if (vocab_size > 0 && llama2_tokenizer_vocab_size(t) > vocab_size)
        s = l2_fail(err, LLAMA2_E_UNSUPPORTED, "%s: %d tokens, the model's vocabulary has %d", path,
                    llama2_tokenizer_vocab_size(t), vocab_size);
    if (s == LLAMA2_OK) s = l2_bpe_file_write(l2_tokenizer_bpe(t), data, size, err);
    llama2_tokenizer_close(t);
    return s;
}

llama2_status l2_convert_tokenizer_json(const char *in_path, const char *out_path, unsigned output_flags,
                                        llama2_error *err) {
    unsigned char *data = NULL;
    size_t size = 0;
    llama2_status s = l2_tokenizer_json_bytes(in_path, 0, &data, &size, err);
    if (s != LLAMA2_OK) return s;
    l2_output out;
    const char *inputs[] = {in_path, NULL};
    s = l2_output_open(&out, out_path, inputs, output_flags, err);
    if (s == LLAMA2_OK) {
        s = l2_output_write(&out, data, size, err);
        if (s == LLAMA2_OK)
            s = l2_output_commit(&out, err);
        else
            l2_output_abort(&out);
    }
    free(data);
    return s;
}
