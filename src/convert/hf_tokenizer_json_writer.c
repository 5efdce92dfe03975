/*
 * The engine's BPE tokenizer file back to Hugging Face's tokenizer.json and
 * tokenizer_config.json, in the form hf_tokenizer_json.c reads (and Llama
 * 3's files have): a BPE model whose vocab holds the normal tokens in GPT-2's
 * byte-to-unicode characters and whose merges are "left right" strings by
 * rank, the special and added tokens in added_tokens, no normalizer, Llama
 * 3's Split then ByteLevel, a ByteLevel decoder and BOS put first by a
 * TemplateProcessing. tokenizer_config.json names BOS and EOS (the first end
 * token); reading the pair back gives the same tokenizer file.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "convert.h"
#include "platform/checks.h"
#include "text/bpe.h"
#include "text/tokenizer_internal.h"

#define LLAMA3_SPLIT                                                                                              \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"     \
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

/* A normal token's bytes in GPT-2's characters, as a new JSON string. */
static json_t *byte_chars(const char *s, size_t n) {
    char *text = malloc(2 * n + 1);
    if (!text) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const unsigned c = l2_bpe_byte_char((unsigned char)s[i]);
        if (c < 0x80) {
            text[k++] = (char)c;
        } else {
            text[k++] = (char)(0xC0 | c >> 6);
            text[k++] = (char)(0x80 | (c & 0x3F));
        }
    }
    json_t *v = json_stringn(text, k);
    free(text);
    return v;
}

static json_t *pre_tokenizer(void) {
    return json_pack("{s:s, s:[{s:s, s:{s:s}, s:s, s:b}, {s:s, s:b, s:b, s:b}]}", "type", "Sequence", "pretokenizers",
                     "type", "Split", "pattern", "Regex", LLAMA3_SPLIT, "behavior", "Isolated", "invert", 0, "type",
                     "ByteLevel", "add_prefix_space", 0, "trim_offsets", 1, "use_regex", 0);
}

/* BOS before the text (and before each of a pair), as Llama 3's files do. */
static json_t *post_processor(const l2_bpe_spec *spec) {
    if (spec->bos < 0) return json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel", "add_prefix_space", 1,
                                        "trim_offsets", 0, "use_regex", 1);
    json_t *bos = json_stringn(spec->pieces[spec->bos], spec->lengths[spec->bos]);
    const char *name = bos ? json_string_value(bos) : "";
    json_t *p = json_pack(
        "{s:s, s:[{s:s, s:b, s:b, s:b}, {s:s, s:[{s:{s:s, s:i}}, {s:{s:s, s:i}}], "
        "s:[{s:{s:s, s:i}}, {s:{s:s, s:i}}, {s:{s:s, s:i}}, {s:{s:s, s:i}}], s:{s:{s:s, s:[i], s:[s]}}}]}",
        "type", "Sequence", "processors", "type", "ByteLevel", "add_prefix_space", 1, "trim_offsets", 0, "use_regex",
        1, "type", "TemplateProcessing", "single", "SpecialToken", "id", name, "type_id", 0, "Sequence", "id", "A",
        "type_id", 0, "pair", "SpecialToken", "id", name, "type_id", 0, "Sequence", "id", "A", "type_id", 0,
        "SpecialToken", "id", name, "type_id", 1, "Sequence", "id", "B", "type_id", 1, "special_tokens", name, "id",
        name, "ids", spec->bos, "tokens", name);
    json_decref(bos);
    return p;
}

static json_t *tokenizer_json(const l2_bpe_spec *spec) {
    json_t *vocab = json_object(), *merges = json_array(), *added = json_array();
    int ok = vocab && merges && added;
    for (int id = 0; ok && id < spec->n_tokens; id++) {
        if (spec->types[id] == L2_BPE_NORMAL) {
            json_t *name = byte_chars(spec->pieces[id], spec->lengths[id]);
            ok = name && json_object_set_new(vocab, json_string_value(name), json_integer(id)) == 0;
            json_decref(name);
        } else {
            json_t *t = json_pack("{s:i, s:s%, s:b, s:b, s:b, s:b, s:b}", "id", id, "content", spec->pieces[id],
                                  spec->lengths[id], "single_word", 0, "lstrip", 0, "rstrip", 0, "normalized", 0,
                                  "special", spec->types[id] == L2_BPE_CONTROL);
            ok = t && json_array_append_new(added, t) == 0;
        }
    }
    for (int r = 0; ok && r < spec->n_merges; r++) {
        const int a = spec->merges[2 * r], b = spec->merges[2 * r + 1];
        json_t *left = byte_chars(spec->pieces[a], spec->lengths[a]), *right = byte_chars(spec->pieces[b], spec->lengths[b]);
        const size_t ln = left ? json_string_length(left) : 0, rn = right ? json_string_length(right) : 0;
        char *joined = left && right ? malloc(ln + rn + 2) : NULL;
        if (joined) {
            memcpy(joined, json_string_value(left), ln);
            joined[ln] = ' ';
            memcpy(joined + ln + 1, json_string_value(right), rn);
        }
        ok = joined && json_array_append_new(merges, json_stringn(joined, ln + rn + 1)) == 0;
        free(joined);
        json_decref(left);
        json_decref(right);
    }
    json_t *root = ok ? json_pack("{s:s, s:n, s:n, s:o, s:n, s:o, s:o, s:{s:s, s:b, s:b, s:b}, "
                                  "s:{s:s, s:n, s:n, s:n, s:n, s:b, s:b, s:b, s:o, s:o}}",
                                  "version", "1.0", "truncation", "padding", "added_tokens", added, "normalizer",
                                  "pre_tokenizer", pre_tokenizer(), "post_processor", post_processor(spec), "decoder",
                                  "type", "ByteLevel", "add_prefix_space", 1, "trim_offsets", 1, "use_regex", 1,
                                  "model", "type", "BPE", "dropout", "unk_token", "continuing_subword_prefix",
                                  "end_of_word_suffix", "fuse_unk", 0, "byte_fallback", 0, "ignore_merges", 1, "vocab",
                                  vocab, "merges", merges)
                      : NULL;
    if (!root) {
        if (!ok) {
            json_decref(vocab);
            json_decref(merges);
            json_decref(added);
        }
    }
    return root;
}

static json_t *config_json(const l2_bpe_spec *spec, int context) {
    json_t *root = json_pack("{s:s, s:b, s:I}", "tokenizer_class", "PreTrainedTokenizerFast",
                             "clean_up_tokenization_spaces", 1, "model_max_length", (json_int_t)context);
    if (root && spec->bos >= 0)
        json_object_set_new(root, "bos_token", json_stringn(spec->pieces[spec->bos], spec->lengths[spec->bos]));
    if (root && spec->n_end > 0)
        json_object_set_new(root, "eos_token", json_stringn(spec->pieces[spec->end[0]], spec->lengths[spec->end[0]]));
    return root;
}

llama2_status l2_tokenizer_json_from_bpe(const void *data, size_t size, int context, char **json, char **config,
                                         llama2_error *err) {
    *json = *config = NULL;
    llama2_tokenizer *t = NULL;
    llama2_status s = llama2_tokenizer_from_memory(data, size, 0, &t, err);
    if (s != LLAMA2_OK) return s;
    const l2_bpe_spec *spec = l2_bpe_get_spec(l2_tokenizer_bpe(t));
    json_t *root = tokenizer_json(spec), *cfg = config_json(spec, context);
    if (root) *json = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (cfg) *config = json_dumps(cfg, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    json_decref(cfg);
    llama2_tokenizer_close(t);
    if (!*json || !*config) {
        free(*json);
        free(*config);
        *json = *config = NULL;
        return l2_fail(err, LLAMA2_E_NOMEM, "out of memory writing tokenizer.json");
    }
    return LLAMA2_OK;
}
