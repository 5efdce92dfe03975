/*
 * llama2.c's checkpoint format: the table of tensors, their order in each
 * version, and the headers (see checkpoint_format.h and docs/FORMAT.md).
 */
#include <limits.h>
#include <math.h>
#include <string.h>

#include "checkpoint_format.h"
#include "platform/checks.h"

/* ------------------------------------------------------------- tensors */

const l2_tensor_info l2_tensor_table[L2_TENSOR_KINDS] = {
    [L2_TENSOR_TOKEN_EMBEDDING] = {"token_embedding_table", L2_EXTENT_VOCAB, L2_EXTENT_DIM, 0, 1},
    [L2_TENSOR_ATTENTION_NORM] = {"rms_att_weight", L2_EXTENT_ONE, L2_EXTENT_DIM, 1, 0},
    [L2_TENSOR_ATTENTION_QUERY] = {"wq", L2_EXTENT_DIM, L2_EXTENT_DIM, 1, 1},
    [L2_TENSOR_ATTENTION_KEY] = {"wk", L2_EXTENT_KV_DIM, L2_EXTENT_DIM, 1, 1},
    [L2_TENSOR_ATTENTION_VALUE] = {"wv", L2_EXTENT_KV_DIM, L2_EXTENT_DIM, 1, 1},
    [L2_TENSOR_ATTENTION_OUTPUT] = {"wo", L2_EXTENT_DIM, L2_EXTENT_DIM, 1, 1},
    [L2_TENSOR_FFN_NORM] = {"rms_ffn_weight", L2_EXTENT_ONE, L2_EXTENT_DIM, 1, 0},
    [L2_TENSOR_FFN_GATE] = {"w1", L2_EXTENT_HIDDEN, L2_EXTENT_DIM, 1, 1},
    [L2_TENSOR_FFN_DOWN] = {"w2", L2_EXTENT_DIM, L2_EXTENT_HIDDEN, 1, 1},
    [L2_TENSOR_FFN_UP] = {"w3", L2_EXTENT_HIDDEN, L2_EXTENT_DIM, 1, 1},
    [L2_TENSOR_FINAL_NORM] = {"rms_final_weight", L2_EXTENT_ONE, L2_EXTENT_DIM, 0, 0},
    [L2_TENSOR_CLASSIFIER] = {"wcls", L2_EXTENT_VOCAB, L2_EXTENT_DIM, 0, 1},
    [L2_TENSOR_ROPE_COS] = {"freq_cis_real", L2_EXTENT_SEQ_LEN, L2_EXTENT_HALF_HEAD, 0, 0},
    [L2_TENSOR_ROPE_SIN] = {"freq_cis_imag", L2_EXTENT_SEQ_LEN, L2_EXTENT_HALF_HEAD, 0, 0},
};

/* Version 0 is the order of run.c's TransformerWeights (llama2.c's legacy
 * export); versions 1 and 2 put the fp32 norms first, so that in version 2
 * the int8 matrices follow one another. */
static const l2_tensor_kind order_v0[] = {
    L2_TENSOR_TOKEN_EMBEDDING, L2_TENSOR_ATTENTION_NORM, L2_TENSOR_ATTENTION_QUERY, L2_TENSOR_ATTENTION_KEY,
    L2_TENSOR_ATTENTION_VALUE, L2_TENSOR_ATTENTION_OUTPUT, L2_TENSOR_FFN_NORM,     L2_TENSOR_FFN_GATE,
    L2_TENSOR_FFN_DOWN,        L2_TENSOR_FFN_UP,           L2_TENSOR_FINAL_NORM,   L2_TENSOR_ROPE_COS,
    L2_TENSOR_ROPE_SIN,        L2_TENSOR_CLASSIFIER,
};
static const l2_tensor_kind order_v1[] = {
    L2_TENSOR_ATTENTION_NORM,  L2_TENSOR_FFN_NORM,         L2_TENSOR_FINAL_NORM, L2_TENSOR_TOKEN_EMBEDDING,
    L2_TENSOR_ATTENTION_QUERY, L2_TENSOR_ATTENTION_KEY,    L2_TENSOR_ATTENTION_VALUE, L2_TENSOR_ATTENTION_OUTPUT,
    L2_TENSOR_FFN_GATE,        L2_TENSOR_FFN_DOWN,         L2_TENSOR_FFN_UP,     L2_TENSOR_CLASSIFIER,
};

const l2_tensor_kind *l2_tensor_order(int version, int *count) {
    if (version == 0) {
        *count = (int)(sizeof order_v0 / sizeof order_v0[0]);
        return order_v0;
    }
    *count = (int)(sizeof order_v1 / sizeof order_v1[0]);
    return order_v1;
}

int l2_tensor_present(const llama2_config *c, l2_tensor_kind kind, int with_rope) {
    if (kind == L2_TENSOR_CLASSIFIER) return !c->shared_classifier;
    if (kind == L2_TENSOR_ROPE_COS || kind == L2_TENSOR_ROPE_SIN) return c->file_version == 0 && with_rope;
    return 1;
}

static size_t extent(const llama2_config *c, l2_extent e) {
    const size_t head_size = (size_t)(c->dim / c->n_heads);
    switch (e) {
    case L2_EXTENT_ONE: return 1;
    case L2_EXTENT_DIM: return (size_t)c->dim;
    case L2_EXTENT_HIDDEN: return (size_t)c->hidden_dim;
    case L2_EXTENT_KV_DIM: return head_size * (size_t)c->n_kv_heads;
    case L2_EXTENT_VOCAB: return (size_t)c->vocab_size;
    case L2_EXTENT_SEQ_LEN: return (size_t)c->seq_len;
    case L2_EXTENT_HALF_HEAD: return head_size / 2;
    }
    return 0;
}

void l2_tensor_shape(const llama2_config *c, l2_tensor_kind kind, size_t *rows, size_t *cols) {
    *rows = extent(c, l2_tensor_table[kind].rows);
    *cols = extent(c, l2_tensor_table[kind].cols);
}

llama2_weight_type l2_tensor_type(const llama2_config *c, l2_tensor_kind kind) {
    return c->file_version == 2 && l2_tensor_table[kind].matrix ? LLAMA2_WEIGHTS_Q8_0 : LLAMA2_WEIGHTS_F32;
}

/* One tensor's bytes in the file; 0 on overflow (no tensor is empty). */
static size_t tensor_bytes(const llama2_config *c, l2_tensor_kind kind) {
    size_t rows, cols, n, bytes, scales;
    l2_tensor_shape(c, kind, &rows, &cols);
    if (!l2_mul_size(rows, cols, &n)) return 0;
    if (l2_tensor_type(c, kind) == LLAMA2_WEIGHTS_F32) return l2_mul_size(n, sizeof(float), &bytes) ? bytes : 0;
    if (!l2_mul_size(n / (size_t)c->group_size, sizeof(float), &scales) || !l2_add_size(n, scales, &bytes)) return 0;
    return bytes;
}

l2_tensor_walk l2_tensor_walk_start(const llama2_config *c, int with_rope) {
    l2_tensor_walk walk = {c, with_rope, 0, 0, 0, NULL};
    walk.order = l2_tensor_order(c->file_version, &walk.n_kinds);
    return walk;
}

int l2_tensor_walk_next(l2_tensor_walk *walk, l2_file_tensor *out) {
    const llama2_config *c = walk->config;
    for (; walk->index < walk->n_kinds; walk->index++, walk->layer = 0) {
        const l2_tensor_kind kind = walk->order[walk->index];
        const int count = l2_tensor_table[kind].per_layer ? c->n_layers : 1;
        if (!l2_tensor_present(c, kind, walk->with_rope) || walk->layer >= count) continue;
        out->kind = kind;
        out->layer = walk->layer++;
        l2_tensor_shape(c, kind, &out->rows, &out->cols);
        out->type = l2_tensor_type(c, kind);
        out->bytes = tensor_bytes(c, kind);
        return 1;
    }
    return 0;
}

int l2_checkpoint_bytes(const llama2_config *c, int with_rope, size_t *total) {
    size_t sum = c->file_version == 0 ? L2_V0_HEADER_BYTES : L2_V1_HEADER_BYTES;
    int n_kinds;
    const l2_tensor_kind *order = l2_tensor_order(c->file_version, &n_kinds);
    for (int i = 0; i < n_kinds; i++) {
        if (!l2_tensor_present(c, order[i], with_rope)) continue;
        size_t one = tensor_bytes(c, order[i]), all;
        const size_t count = l2_tensor_table[order[i]].per_layer ? (size_t)c->n_layers : 1;
        if (one == 0 || !l2_mul_size(one, count, &all) || !l2_add_size(sum, all, &sum)) return 0;
    }
    *total = sum;
    return 1;
}

/* -------------------------------------------------------------- header */

llama2_status l2_check_shape(const llama2_config *c, llama2_status status, const char *prefix, llama2_error *err) {
    const struct { const char *name; int value; } fields[] = {
        {"dim", c->dim},           {"hidden_dim", c->hidden_dim}, {"n_layers", c->n_layers},
        {"n_heads", c->n_heads},   {"n_kv_heads", c->n_kv_heads}, {"vocab_size", c->vocab_size},
        {"seq_len", c->seq_len},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (fields[i].value <= 0)
            return l2_fail(err, status, "%s%s is %d, must be positive", prefix, fields[i].name, fields[i].value);
    if (c->dim % c->n_heads != 0)
        return l2_fail(err, status, "%sdim %d is not divisible by n_heads %d", prefix, c->dim, c->n_heads);
    if (c->n_kv_heads > c->n_heads || c->n_heads % c->n_kv_heads != 0)
        return l2_fail(err, status, "%sn_heads %d is not a multiple of n_kv_heads %d", prefix, c->n_heads,
                       c->n_kv_heads);
    if ((c->dim / c->n_heads) % 2 != 0)
        return l2_fail(err, status, "%shead size %d (dim / n_heads) is odd", prefix, c->dim / c->n_heads);
    if (c->weight_type == LLAMA2_WEIGHTS_Q8_0) {
        if (c->group_size <= 0)
            return l2_fail(err, status, "%sgroup size %d, must be positive", prefix, c->group_size);
        if (c->dim % c->group_size != 0)
            return l2_fail(err, status, "%sgroup size %d does not divide dim %d", prefix, c->group_size, c->dim);
        if (c->hidden_dim % c->group_size != 0)
            return l2_fail(err, status, "%sgroup size %d does not divide hidden_dim %d", prefix, c->group_size,
                           c->hidden_dim);
    }
    return LLAMA2_OK;
}

static int32_t get_i32(const unsigned char *p) {
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static void set_i32(unsigned char *p, int32_t v) { memcpy(p, &v, sizeof v); }

/* The seven shape fields, in the order every version stores them. */
static void shape_fields(llama2_config *c, int *fields[7]) {
    int *f[7] = {&c->dim, &c->hidden_dim, &c->n_layers, &c->n_heads, &c->n_kv_heads, &c->vocab_size, &c->seq_len};
    memcpy(fields, f, sizeof f);
}

/* The bytes of the version 1/2 header that llama2.c's export sets: after
 * them and around the extension, zeros. */
static size_t v1_fields_bytes(int version) { return version == 2 ? 41 : 37; }

/* The extension values: finite and positive; 0 (all bits) is llama2.c's. */
static int extension_value_ok(float v) { return isfinite(v) && v > 0.0f; }

/* RoPE scaling: all four fields zero (none), or a factor of at least 1, a
 * high frequency factor above the low one (both positive) and a positive
 * original context. */
static llama2_status rope_scaling_check(const llama2_config *c, llama2_status status, const char *prefix,
                                        llama2_error *err) {
    if (c->rope_scaling_factor == 0.0f && c->rope_low_freq_factor == 0.0f && c->rope_high_freq_factor == 0.0f &&
        c->rope_original_context == 0)
        return LLAMA2_OK;
    if (!(isfinite(c->rope_scaling_factor) && c->rope_scaling_factor >= 1.0f) ||
        !extension_value_ok(c->rope_low_freq_factor) || !extension_value_ok(c->rope_high_freq_factor) ||
        !(c->rope_high_freq_factor > c->rope_low_freq_factor) || c->rope_original_context <= 0)
        return l2_fail(err, status,
                       "%srope scaling factor %g, low_freq_factor %g, high_freq_factor %g, original context %d: "
                       "need factor >= 1, 0 < low < high, context > 0",
                       prefix, (double)c->rope_scaling_factor, (double)c->rope_low_freq_factor,
                       (double)c->rope_high_freq_factor, c->rope_original_context);
    return LLAMA2_OK;
}

static llama2_status decode_extension(const unsigned char *data, int version, llama2_config *c, llama2_error *err) {
    for (size_t i = v1_fields_bytes(version); i < L2_V1_HEADER_BYTES; i++) {
        const int in_extension = i >= L2_HEADER_ROPE_THETA_AT && i < L2_HEADER_ROPE_SCALING_AT + L2_HEADER_ROPE_SCALING_BYTES;
        if (data[i] != 0 && !in_extension)
            return l2_fail(err, LLAMA2_E_FORMAT,
                           "bad header: byte %zu is 0x%02x, must be 0 (padding, or a field this build does not know)",
                           i, data[i]);
    }
    const struct { size_t at; float *value; const char *name; float fallback; } fields[2] = {
        {L2_HEADER_ROPE_THETA_AT, &c->rope_theta, "rope theta", L2_DEFAULT_ROPE_THETA},
        {L2_HEADER_NORM_EPS_AT, &c->norm_eps, "RMSNorm epsilon", L2_DEFAULT_NORM_EPS},
    };
    for (int k = 0; k < 2; k++) {
        static const unsigned char zero[sizeof(float)];
        if (memcmp(data + fields[k].at, zero, sizeof zero) == 0) {
            *fields[k].value = fields[k].fallback;
            continue;
        }
        float v;
        memcpy(&v, data + fields[k].at, sizeof v);
        if (!extension_value_ok(v))
            return l2_fail(err, LLAMA2_E_FORMAT,
                           "bad header: %s is %g, must be a positive finite number (or 0 for llama2.c's %g)",
                           fields[k].name, (double)v, (double)fields[k].fallback);
        *fields[k].value = v;
    }
    const unsigned char *r = data + L2_HEADER_ROPE_SCALING_AT;
    memcpy(&c->rope_scaling_factor, r, 4);
    memcpy(&c->rope_low_freq_factor, r + 4, 4);
    memcpy(&c->rope_high_freq_factor, r + 8, 4);
    c->rope_original_context = get_i32(r + 12);
    return rope_scaling_check(c, LLAMA2_E_FORMAT, "bad header: ", err);
}

llama2_status l2_header_decode(const unsigned char *data, size_t size, llama2_config *c, size_t *header_bytes,
                               llama2_error *err) {
    memset(c, 0, sizeof *c);
    c->rope_theta = L2_DEFAULT_ROPE_THETA;
    c->norm_eps = L2_DEFAULT_NORM_EPS;
    int *fields[7];
    shape_fields(c, fields);
    const int versioned = size >= 4 && (uint32_t)get_i32(data) == L2_CHECKPOINT_MAGIC;
    if (size < 4 || (!versioned && size < L2_V0_HEADER_BYTES))
        return l2_fail(err, LLAMA2_E_FORMAT, "too short for a checkpoint header (%zu bytes)", size);
    if (!versioned) {
        for (int i = 0; i < 7; i++) *fields[i] = get_i32(data + 4 * i);
        /* A negative vocabulary size marks a separate classifier. */
        c->shared_classifier = c->vocab_size > 0;
        if (c->vocab_size < 0 && c->vocab_size != INT_MIN) c->vocab_size = -c->vocab_size;
        c->file_version = 0;
        *header_bytes = L2_V0_HEADER_BYTES;
        return l2_check_shape(c, LLAMA2_E_FORMAT, "bad header: ", err);
    }
    if (size < L2_V1_HEADER_BYTES)
        return l2_fail(err, LLAMA2_E_FORMAT, "too short for a version 1/2 header (%zu of 256 bytes)", size);
    int version = get_i32(data + 4);
    if (version != 1 && version != 2)
        return l2_fail(err, LLAMA2_E_UNSUPPORTED, "unknown checkpoint version %d (this build reads 0, 1 and 2)",
                       version);
    for (int i = 0; i < 7; i++) *fields[i] = get_i32(data + 8 + 4 * i);
    unsigned shared = data[36];
    if (shared > 1)
        return l2_fail(err, LLAMA2_E_FORMAT, "bad header: shared-classifier flag is %u, must be 0 or 1", shared);
    c->shared_classifier = (int)shared;
    c->file_version = version;
    if (version == 2) {
        c->weight_type = LLAMA2_WEIGHTS_Q8_0;
        c->group_size = get_i32(data + 37);
    }
    *header_bytes = L2_V1_HEADER_BYTES;
    llama2_status s = l2_check_shape(c, LLAMA2_E_FORMAT, "bad header: ", err);
    return s != LLAMA2_OK ? s : decode_extension(data, version, c, err);
}

/* An extension value as stored: llama2.c's (or 0) as 0. */
static float stored_value(float v, float fallback) { return v == fallback ? 0.0f : v; }

size_t l2_header_encode(const llama2_config *c, unsigned char out[L2_V1_HEADER_BYTES]) {
    llama2_config copy = *c;
    int *fields[7];
    shape_fields(&copy, fields);
    memset(out, 0, L2_V1_HEADER_BYTES);
    if (c->file_version == 0) {
        if (!c->shared_classifier) copy.vocab_size = -copy.vocab_size;
        for (int i = 0; i < 7; i++) set_i32(out + 4 * i, *fields[i]);
        return L2_V0_HEADER_BYTES;
    }
    set_i32(out, (int32_t)L2_CHECKPOINT_MAGIC);
    set_i32(out + 4, c->file_version);
    for (int i = 0; i < 7; i++) set_i32(out + 8 + 4 * i, *fields[i]);
    out[36] = c->shared_classifier ? 1 : 0;
    if (c->file_version == 2) set_i32(out + 37, c->group_size);
    const float theta = stored_value(c->rope_theta, L2_DEFAULT_ROPE_THETA);
    const float eps = stored_value(c->norm_eps, L2_DEFAULT_NORM_EPS);
    memcpy(out + L2_HEADER_ROPE_THETA_AT, &theta, sizeof theta);
    memcpy(out + L2_HEADER_NORM_EPS_AT, &eps, sizeof eps);
    unsigned char *r = out + L2_HEADER_ROPE_SCALING_AT;
    memcpy(r, &c->rope_scaling_factor, 4);
    memcpy(r + 4, &c->rope_low_freq_factor, 4);
    memcpy(r + 8, &c->rope_high_freq_factor, 4);
    set_i32(r + 12, c->rope_original_context);
    return L2_V1_HEADER_BYTES;
}

llama2_status l2_header_check(const llama2_config *c, llama2_error *err) {
    if (c->file_version < 0 || c->file_version > 2)
        return l2_fail(err, LLAMA2_E_INVALID, "file version %d, must be 0, 1 or 2", c->file_version);
    const struct { float value; const char *name; float fallback; } fields[2] = {
        {c->rope_theta, "rope theta", L2_DEFAULT_ROPE_THETA},
        {c->norm_eps, "RMSNorm epsilon", L2_DEFAULT_NORM_EPS},
    };
    for (int k = 0; k < 2; k++) {
        const float v = fields[k].value;
        if (v != 0.0f && !extension_value_ok(v))
            return l2_fail(err, LLAMA2_E_INVALID, "%s %g, must be a positive finite number", fields[k].name,
                           (double)v);
        if (c->file_version == 0 && v != 0.0f && v != fields[k].fallback)
            return l2_fail(err, LLAMA2_E_INVALID,
                           "%s %g: version 0 cannot record it (llama2.c assumes %g); write version 1 or 2",
                           fields[k].name, (double)v, (double)fields[k].fallback);
    }
    if (c->file_version == 0 && c->rope_scaling_factor != 0.0f)
        return l2_fail(err, LLAMA2_E_INVALID, "rope scaling: version 0 cannot record it; write version 1 or 2");
    return rope_scaling_check(c, LLAMA2_E_INVALID, "", err);
}
