/*
 * config.json of a Hugging Face Llama model, read with jansson. Whatever the
 * llama2.c format cannot express is refused by name here, before any tensor
 * is read: other architectures, activations, rope_scaling, biases, a head
 * size that is not hidden_size / num_attention_heads.
 */
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hf_config.h"
#include "platform/checks.h"
#include "schema/json_safe.h"
#include "model/model.h"
#include "printable.h"
#include "small_file.h"

#define HF_DEFAULT_CONTEXT 2048
#define HF_DEFAULT_THETA 10000.0
#define HF_DEFAULT_EPS 1e-6

/* A positive int field: required, or `fallback` when absent (or null) and
 * fallback > 0. */
static llama2_status int_field(const json_t *root, const char *key, int fallback, int *out, const char *path,
                               llama2_error *err) {
    const json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        if (fallback > 0) {
            *out = fallback;
            return LLAMA2_OK;
        }
        return l2_fail(err, LLAMA2_E_FORMAT, "%s: %s is missing", path, key);
    }
    if (!json_is_integer(v) || json_integer_value(v) <= 0 || json_integer_value(v) > INT_MAX)
        return l2_fail(err, LLAMA2_E_FORMAT, "%s: %s is not a positive integer below 2^31", path, key);
    *out = (int)json_integer_value(v);
    return LLAMA2_OK;
}

/* A positive finite number, `fallback` when absent. */
static llama2_status float_field(const json_t *root, const char *key, double fallback, float *out,
                                 const char *path, llama2_error *err) {
    const json_t *v = json_object_get(root, key);
    double d = fallback;
    if (v && !json_is_null(v)) {
        if (!json_is_number(v))
            return l2_fail(err, LLAMA2_E_FORMAT, "%s: %s is not a number", path, key);
        d = json_number_value(v);
    }
    float f = (float)d;
    if (!(f > 0.0f) || !isfinite(f))
        return l2_fail(err, LLAMA2_E_FORMAT, "%s: %s is %g, must be a positive number", path, key, d);
    *out = f;
    return LLAMA2_OK;
}

/* A true boolean field is refused with `why`. */
static llama2_status refuse_true(const json_t *root, const char *key, const char *why, const char *path,
                                 llama2_error *err) {
    if (json_is_true(json_object_get(root, key)))
        return l2_fail(err, LLAMA2_E_UNSUPPORTED, "%s: %s is true: %s", path, key, why);
    return LLAMA2_OK;
}

static llama2_status check_architecture(const json_t *root, const char *path, llama2_error *err) {
    char shown[64];
    const json_t *archs = json_object_get(root, "architectures"), *type = json_object_get(root, "model_type");
    if (archs && !json_is_null(archs)) {
        if (!json_is_array(archs) || json_array_size(archs) == 0)
            return l2_fail(err, LLAMA2_E_FORMAT, "%s: architectures is not a list of names", path);
        for (size_t i = 0; i < json_array_size(archs); i++) {
            const json_t *a = json_array_get(archs, i);
            if (!json_is_string(a))
                return l2_fail(err, LLAMA2_E_FORMAT, "%s: architectures is not a list of names", path);
            if (strcmp(json_string_value(a), "LlamaForCausalLM") != 0)
                return l2_fail(err, LLAMA2_E_UNSUPPORTED,
                               "%s: architecture %s is not supported: only LlamaForCausalLM converts", path,
                               l2_printable(json_string_value(a), shown, sizeof shown));
        }
    }
    if (type && !json_is_null(type)) {
        if (!json_is_string(type)) return l2_fail(err, LLAMA2_E_FORMAT, "%s: model_type is not a string", path);
        if (strcmp(json_string_value(type), "llama") != 0)
            return l2_fail(err, LLAMA2_E_UNSUPPORTED, "%s: model_type %s is not supported: only llama converts",
                           path, l2_printable(json_string_value(type), shown, sizeof shown));
    } else if (!archs || json_is_null(archs)) {
        return l2_fail(err, LLAMA2_E_FORMAT, "%s: neither architectures nor model_type says this is a Llama model",
                       path);
    }
    return LLAMA2_OK;
}

static llama2_status check_unsupported(const json_t *root, const char *path, llama2_error *err) {
    char shown[64];
    const json_t *act = json_object_get(root, "hidden_act");
    if (act && !json_is_null(act) && (!json_is_string(act) || strcmp(json_string_value(act), "silu") != 0))
        return l2_fail(err, LLAMA2_E_UNSUPPORTED, "%s: hidden_act %s is not supported: only silu", path,
                       json_is_string(act) ? l2_printable(json_string_value(act), shown, sizeof shown) : "(not a string)");
    const json_t *scaling = json_object_get(root, "rope_scaling");
    if (scaling && !json_is_null(scaling)) {
        const json_t *kind = json_is_object(scaling) ? json_object_get(scaling, "rope_type") : NULL;
        if (!json_is_string(kind) && json_is_object(scaling)) kind = json_object_get(scaling, "type");
        if (json_is_string(kind) && strcmp(json_string_value(kind), "llama3") == 0) return LLAMA2_OK;
        return l2_fail(err, LLAMA2_E_UNSUPPORTED,
                       "%s: rope_scaling%s%s is not supported: only llama3 scaling", path,
                       json_is_string(kind) ? " " : "",
                       json_is_string(kind) ? l2_printable(json_string_value(kind), shown, sizeof shown) : "");
    }
    llama2_status s = refuse_true(root, "attention_bias", "attention biases are not supported", path, err);
    if (s == LLAMA2_OK) s = refuse_true(root, "mlp_bias", "MLP biases are not supported", path, err);
    return s;
}

/* rope_scaling of type llama3: its four numbers, each required. */
static llama2_status read_rope_scaling(const json_t *root, const char *path, llama2_config *c, llama2_error *err) {
    const json_t *scaling = json_object_get(root, "rope_scaling");
    if (!scaling || json_is_null(scaling)) return LLAMA2_OK;
    static const char *const keys[4] = {"factor", "low_freq_factor", "high_freq_factor",
                                         "original_max_position_embeddings"};
    double v[4];
    for (int k = 0; k < 4; k++) {
        const json_t *x = json_object_get(scaling, keys[k]);
        if (!json_is_number(x))
            return l2_fail(err, LLAMA2_E_FORMAT, "%s: rope_scaling.%s is missing or not a number", path, keys[k]);
        v[k] = json_number_value(x);
    }
    if (!(v[0] >= 1.0 && v[1] > 0.0 && v[2] > v[1] && v[3] >= 1.0 && v[3] <= INT_MAX && isfinite(v[0]) &&
          isfinite(v[2]) && v[3] == floor(v[3])))
        return l2_fail(err, LLAMA2_E_FORMAT,
                       "%s: rope_scaling factor %g, low_freq_factor %g, high_freq_factor %g, "
                       "original_max_position_embeddings %g: need factor >= 1, 0 < low < high, a positive integer",
                       path, v[0], v[1], v[2], v[3]);
    c->rope_scaling_factor = (float)v[0];
    c->rope_low_freq_factor = (float)v[1];
    c->rope_high_freq_factor = (float)v[2];
    c->rope_original_context = (int)v[3];
    return LLAMA2_OK;
}

llama2_status l2_hf_config_parse(const char *text, size_t len, const char *path, l2_hf_config *out,
                                 llama2_error *err) {
    memset(out, 0, sizeof *out);
    json_error_t jerr;
    json_t *root = l2_json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        char shown[96];
        return l2_fail(err, LLAMA2_E_FORMAT, "%s: not valid JSON: %s (line %d, column %d)", path,
                       l2_printable(jerr.text, shown, sizeof shown), jerr.line, jerr.column);
    }
    llama2_status s = LLAMA2_OK;
    llama2_config *c = &out->shape;
    if (!json_is_object(root)) s = l2_fail(err, LLAMA2_E_FORMAT, "%s: not a JSON object", path);
    if (s == LLAMA2_OK) s = check_architecture(root, path, err);
    if (s == LLAMA2_OK) s = check_unsupported(root, path, err);
    if (s == LLAMA2_OK) s = read_rope_scaling(root, path, &out->shape, err);
    if (s == LLAMA2_OK) s = int_field(root, "hidden_size", 0, &c->dim, path, err);
    if (s == LLAMA2_OK) s = int_field(root, "intermediate_size", 0, &c->hidden_dim, path, err);
    if (s == LLAMA2_OK) s = int_field(root, "num_hidden_layers", 0, &c->n_layers, path, err);
    if (s == LLAMA2_OK) s = int_field(root, "num_attention_heads", 0, &c->n_heads, path, err);
    if (s == LLAMA2_OK) s = int_field(root, "num_key_value_heads", c->n_heads, &c->n_kv_heads, path, err);
    if (s == LLAMA2_OK) s = int_field(root, "vocab_size", 0, &c->vocab_size, path, err);
    if (s == LLAMA2_OK) s = int_field(root, "max_position_embeddings", HF_DEFAULT_CONTEXT, &c->seq_len, path, err);
    if (s == LLAMA2_OK) s = float_field(root, "rope_theta", HF_DEFAULT_THETA, &out->rope_theta, path, err);
    if (s == LLAMA2_OK) s = float_field(root, "rms_norm_eps", HF_DEFAULT_EPS, &out->norm_eps, path, err);
    if (s == LLAMA2_OK) {
        const json_t *tie = json_object_get(root, "tie_word_embeddings");
        if (tie && !json_is_null(tie) && !json_is_boolean(tie))
            s = l2_fail(err, LLAMA2_E_FORMAT, "%s: tie_word_embeddings is not true or false", path);
        out->tie_word_embeddings = json_is_true(tie);
    }
    /* The shape checks of l2_check_shape, in config.json's own terms. */
    if (s == LLAMA2_OK && c->dim % c->n_heads != 0)
        s = l2_fail(err, LLAMA2_E_UNSUPPORTED, "%s: hidden_size %d is not a multiple of num_attention_heads %d", path,
                    c->dim, c->n_heads);
    if (s == LLAMA2_OK && (c->n_kv_heads > c->n_heads || c->n_heads % c->n_kv_heads != 0))
        s = l2_fail(err, LLAMA2_E_UNSUPPORTED,
                    "%s: num_attention_heads %d is not a multiple of num_key_value_heads %d", path, c->n_heads,
                    c->n_kv_heads);
    if (s == LLAMA2_OK && (c->dim / c->n_heads) % 2 != 0)
        s = l2_fail(err, LLAMA2_E_UNSUPPORTED,
                    "%s: the head size hidden_size / num_attention_heads is %d: RoPE needs an even one", path,
                    c->dim / c->n_heads);
    if (s == LLAMA2_OK) {
        int head_dim = 0;
        const json_t *hd = json_object_get(root, "head_dim");
        if (hd && !json_is_null(hd)) s = int_field(root, "head_dim", 0, &head_dim, path, err);
        if (s == LLAMA2_OK && head_dim && head_dim != c->dim / c->n_heads)
            s = l2_fail(err, LLAMA2_E_UNSUPPORTED,
                        "%s: head_dim %d is not hidden_size / num_attention_heads (%d): llama2.c cannot hold it", path,
                        head_dim, c->dim / c->n_heads);
    }
    json_decref(root);
    if (s != LLAMA2_OK) return s;
    char prefix[300];
    snprintf(prefix, sizeof prefix, "%s: ", path);
    return l2_check_shape(c, LLAMA2_E_UNSUPPORTED, prefix, err);
}

llama2_status l2_hf_config_read(const char *path, l2_hf_config *out, llama2_error *err) {
    memset(out, 0, sizeof *out);
    char *text;
    size_t len;
    /* config.json is small; a megabyte is far more than any holds. */
    llama2_status s = l2_read_small_file(path, (size_t)1 << 20, &text, &len, err);
    if (s != LLAMA2_OK) return s;
    s = l2_hf_config_parse(text, len, path, out, err);
    free(text);
    return s;
}
