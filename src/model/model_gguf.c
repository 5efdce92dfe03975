/*
 * A GGUF file (gguf.c parses it) as a model: the llama hyperparameters from
 * the metadata, every tensor llama.cpp names found, typed and shaped as the
 * metadata implies, viewed in place (F32; Q8_0, Q4_0, Q4_K, Q5_K and Q6_K
 * blocks) or
 * converted at load (see held_as_blocks), and the tokenizer the file carries. docs/FORMAT.md says what is read and what is refused.
 *
 * Q and K rows: llama.cpp's converter stores them in Meta's order (the two
 * values a rotation turns are neighbours), undoing the permutation of
 * Hugging Face's files; llama2.c's export and this engine's RoPE use the
 * same order, so the rows are used as they are.
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "float16.h"
#include "ggml_dequant.h"
#include "gguf.h"
#include "model.h"
#include "platform/checks.h"
#include "platform/platform.h"
#include "text/bpe.h"
#include "text/tokenizer_internal.h"

/* ------------------------------------------------------- hyperparameters */

static llama2_status int_key(const l2_gguf *g, const char *key, int required, int fallback, int *out,
                             llama2_error *err) {
    const l2_gguf_kv *kv = l2_gguf_find(g, key);
    if (!kv) {
        if (required) return l2_fail(err, LLAMA2_E_FORMAT, "GGUF: missing the key %s", key);
        *out = fallback;
        return LLAMA2_OK;
    }
    int64_t v;
    if (!l2_gguf_int(kv, 1, INT_MAX, &v))
        return l2_fail(err, LLAMA2_E_FORMAT, "GGUF: %s must be an integer from 1 to %d", key, INT_MAX);
    *out = (int)v;
    return LLAMA2_OK;
}

static llama2_status float_key(const l2_gguf *g, const char *key, int required, float fallback, float *out,
                               llama2_error *err) {
    const l2_gguf_kv *kv = l2_gguf_find(g, key);
    if (!kv) {
        if (required) return l2_fail(err, LLAMA2_E_FORMAT, "GGUF: missing the key %s", key);
        *out = fallback;
        return LLAMA2_OK;
    }
    float v;
    if (!l2_gguf_float(kv, &v) || !isfinite(v) || v <= 0.0f)
        return l2_fail(err, LLAMA2_E_FORMAT, "GGUF: %s must be a positive finite float", key);
    *out = v;
    return LLAMA2_OK;
}

static int str_is(l2_gguf_str s, const char *text) { return s.len == strlen(text) && memcmp(s.data, text, s.len) == 0; }

/* The shape from the metadata; the vocabulary's size from the embedding
 * table (the metadata's llama.vocab_size, where present, must agree). */
static llama2_status read_config(const l2_gguf *g, llama2_config *c, llama2_error *err) {
    const l2_gguf_kv *arch = l2_gguf_find(g, L2_GGUF_KEY_ARCH);
    if (!arch) return l2_fail(err, LLAMA2_E_FORMAT, "GGUF: missing the key %s", L2_GGUF_KEY_ARCH);
    if (arch->type != L2_GGUF_STRING) return l2_fail(err, LLAMA2_E_FORMAT, "GGUF: %s must be a string", L2_GGUF_KEY_ARCH);
    l2_gguf_str name = l2_gguf_string_at(arch, 0);
    if (!str_is(name, "llama")) {
        char shown[40];
        size_t n = name.len < sizeof shown - 1 ? name.len : sizeof shown - 1;
        for (size_t i = 0; i < n; i++)
            shown[i] = (unsigned char)name.data[i] < 0x20 || (unsigned char)name.data[i] >= 0x7F ? '?' : name.data[i];
        shown[n] = '\0';
        return l2_fail(err, LLAMA2_E_UNSUPPORTED, "GGUF: architecture \"%s\" (this build runs llama)", shown);
    }
    memset(c, 0, sizeof *c);
    llama2_status s = LLAMA2_OK;
    const struct { const char *key; int *value; } keys[] = {
        {L2_GGUF_KEY_DIM, &c->dim},         {L2_GGUF_KEY_HIDDEN, &c->hidden_dim}, {L2_GGUF_KEY_LAYERS, &c->n_layers},
        {L2_GGUF_KEY_HEADS, &c->n_heads},   {L2_GGUF_KEY_CONTEXT, &c->seq_len},
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0] && s == LLAMA2_OK; i++)
        s = int_key(g, keys[i].key, 1, 0, keys[i].value, err);
    if (s == LLAMA2_OK) s = int_key(g, L2_GGUF_KEY_KV_HEADS, 0, c->n_heads, &c->n_kv_heads, err);
    if (s == LLAMA2_OK) s = float_key(g, L2_GGUF_KEY_NORM_EPS, 1, 0, &c->norm_eps, err);
    if (s == LLAMA2_OK) s = float_key(g, L2_GGUF_KEY_ROPE_THETA, 0, L2_DEFAULT_ROPE_THETA, &c->rope_theta, err);
    if (s != LLAMA2_OK) return s;
    const l2_gguf_tensor *embedding = l2_gguf_find_tensor(g, "token_embd.weight");
    if (!embedding) return l2_fail(err, LLAMA2_E_FORMAT, "GGUF: missing the tensor token_embd.weight");
    if (embedding->n_dims != 2 || embedding->dims[1] > INT_MAX)
        return l2_fail(err, LLAMA2_E_FORMAT, "GGUF: token_embd.weight must be a matrix of at most %d rows", INT_MAX);
    c->vocab_size = (int)embedding->dims[1];
    int vocab = c->vocab_size;
    if ((s = int_key(g, L2_GGUF_KEY_VOCAB_SIZE, 0, vocab, &vocab, err)) != LLAMA2_OK) return s;
    if (vocab != c->vocab_size)
        return l2_fail(err, LLAMA2_E_FORMAT, "GGUF: %s is %d, the embedding table has %d rows", L2_GGUF_KEY_VOCAB_SIZE,
                       vocab, c->vocab_size);
    c->shared_classifier = l2_gguf_find_tensor(g, "output.weight") == NULL;
    c->file_version = 1;
    c->weight_type = LLAMA2_WEIGHTS_F32;
    if ((s = l2_check_shape(c, LLAMA2_E_FORMAT, "GGUF: ", err)) != LLAMA2_OK) return s;
    int rope_dims;
    if ((s = int_key(g, L2_GGUF_KEY_ROPE_DIMS, 0, c->dim / c->n_heads, &rope_dims, err)) != LLAMA2_OK) return s;
    if (rope_dims != c->dim / c->n_heads)
        return l2_fail(err, LLAMA2_E_UNSUPPORTED, "GGUF: %s is %d, the head size %d (partial rotary is not supported)",
                       L2_GGUF_KEY_ROPE_DIMS, rope_dims, c->dim / c->n_heads);
    return LLAMA2_OK;
}

/* ------------------------------------------------------------- tensors */

static int matrix_type_supported(uint32_t type) {
    return type == L2_GGML_F32 || type == L2_GGML_F16 || type == L2_GGML_BF16 || type == L2_GGML_Q8_0 ||
           type == L2_GGML_Q4_0 || type == L2_GGML_Q4_K || type == L2_GGML_Q5_K || type == L2_GGML_Q6_K;
}

static llama2_status check_tensor(const l2_gguf_tensor *t, const char *name, const l2_file_tensor *f,
                                  llama2_error *err) {
    const int vector = !l2_tensor_table[f->kind].matrix;
    const uint32_t want_dims = vector ? 1 : 2;
    const int shape_ok = t->n_dims == want_dims && t->dims[0] == f->cols && (vector || t->dims[1] == f->rows);
    if (!shape_ok) {
        char got[96] = "", want[48];
        size_t n = 0;
        for (uint32_t d = 0; d < t->n_dims && n < sizeof got; d++)
            n += (size_t)snprintf(got + n, sizeof got - n, "%s%llu", d ? ", " : "", (unsigned long long)t->dims[d]);
        if (vector)
            snprintf(want, sizeof want, "%zu", f->cols);
        else
            snprintf(want, sizeof want, "%zu, %zu", f->cols, f->rows);
        return l2_fail(err, LLAMA2_E_FORMAT, "GGUF: tensor %s has the shape [%s], the metadata implies [%s]", name,
                       got, want);
    }
    if (vector ? t->type != L2_GGML_F32 : !matrix_type_supported(t->type))
        return l2_fail(err, LLAMA2_E_UNSUPPORTED, "GGUF: tensor %s has type %s (this build reads %s)", name,
                       l2_ggml_type_name(t->type), vector ? "F32 for a norm" : L2_GGUF_SUPPORTED_TYPES);
    if (t->type == L2_GGML_F32 && (uintptr_t)t->data % _Alignof(float) != 0)
        return l2_fail(err, LLAMA2_E_FORMAT, "GGUF: tensor %s is not aligned for its type", name);
    return LLAMA2_OK;
}

/* Every tensor of the config's table, found by its llama.cpp name. */
typedef struct found_tensor {
    l2_file_tensor f;
    const l2_gguf_tensor *t;
} found_tensor;

/* rope_freqs.weight, where llama.cpp's converter puts Llama 3's RoPE
 * scaling: one positive divisor per frequency, F32. */
static llama2_status find_rope_factors(llama2_model *m, const l2_gguf *g, const l2_gguf_tensor **out,
                                       llama2_error *err) {
    const l2_gguf_tensor *t = *out = l2_gguf_find_tensor(g, L2_GGUF_ROPE_FREQS);
    if (!t) return LLAMA2_OK;
    const int half = m->head_size / 2;
    if (t->n_dims != 1 || t->dims[0] != (uint64_t)half)
        return l2_fail(err, LLAMA2_E_FORMAT, "GGUF: tensor %s must have %d values (half the head size %d)",
                       L2_GGUF_ROPE_FREQS, half, m->head_size);
    if (t->type != L2_GGML_F32 || (uintptr_t)t->data % _Alignof(float) != 0)
        return l2_fail(err, LLAMA2_E_UNSUPPORTED, "GGUF: tensor %s must be F32, aligned", L2_GGUF_ROPE_FREQS);
    const float *factors = (const float *)t->data;
    for (int j = 0; j < half; j++)
        if (!(isfinite(factors[j]) && factors[j] > 0.0f))
            return l2_fail(err, LLAMA2_E_FORMAT, "GGUF: %s[%d] is %g, not a positive finite divisor",
                           L2_GGUF_ROPE_FREQS, j, (double)factors[j]);
    m->rope_freq_factors = factors;
    return LLAMA2_OK;
}

static llama2_status find_tensors(const llama2_model *m, const l2_gguf *g, const l2_gguf_tensor *rope,
                                  found_tensor *list, size_t *count, llama2_error *err) {
    l2_tensor_walk walk = l2_tensor_walk_start(&m->config, 0);
    l2_file_tensor f;
    size_t n = 0;
    while (l2_tensor_walk_next(&walk, &f)) {
        char name[64];
        l2_gguf_tensor_name(f.kind, f.layer, name, sizeof name);
        const l2_gguf_tensor *t = l2_gguf_find_tensor(g, name);
        if (!t) return l2_fail(err, LLAMA2_E_FORMAT, "GGUF: missing the tensor %s", name);
        llama2_status s = check_tensor(t, name, &f, err);
        if (s != LLAMA2_OK) return s;
        list[n].f = f;
        list[n++].t = t;
    }
    *count = n;
    if (n + (rope != NULL) == g->n_tensors) return LLAMA2_OK;
    /* Every name was looked up once and names are unique: one is left. */
    for (size_t i = 0; i < g->n_tensors; i++) {
        const l2_gguf_tensor *t = &g->tensors[i];
        int known = t == rope;
        for (size_t k = 0; k < n && !known; k++) known = list[k].t == t;
        if (known) continue;
        char shown[80];
        size_t len = t->name.len < sizeof shown - 1 ? t->name.len : sizeof shown - 1;
        for (size_t k = 0; k < len; k++)
            shown[k] = (unsigned char)t->name.data[k] < 0x20 || (unsigned char)t->name.data[k] >= 0x7F ? '?'
                                                                                                       : t->name.data[k];
        shown[len] = '\0';
        return l2_fail(err, LLAMA2_E_UNSUPPORTED, "GGUF: unexpected tensor %s (not part of a llama model of %d layers)",
                       shown, m->config.n_layers);
    }
    return LLAMA2_OK;
}

/* The weight type a ggml type is held as in place, or F32 for one that
 * is not. */
static llama2_weight_type block_type(uint32_t ggml_type) {
    switch (ggml_type) {
    case L2_GGML_Q8_0: return LLAMA2_WEIGHTS_GGML_Q8_0;
    case L2_GGML_Q4_0: return LLAMA2_WEIGHTS_Q4_0;
    case L2_GGML_Q4_K: return LLAMA2_WEIGHTS_Q4_K;
    case L2_GGML_Q5_K: return LLAMA2_WEIGHTS_Q5_K;
    case L2_GGML_Q6_K: return LLAMA2_WEIGHTS_Q6_K;
    default: return LLAMA2_WEIGHTS_F32;
    }
}

/* How a matrix is held: Q8_0, Q4_0, Q4_K, Q5_K and Q6_K in place, as ggml's
 * blocks (the block and K-quant kernels run them; a K-quant's rows are
 * whole blocks of 256, as gguf.c checks); F32 in place; F16 and BF16
 * converted to fp32 at load (their values are exact in fp32). A block
 * whose fp16 scales would sit at an odd address (a file aligned to 1) is
 * converted too, as ggml's reference dequantization computes it. */
static int held_as_blocks(const found_tensor *ft) {
    return l2_tensor_table[ft->f.kind].matrix && block_type(ft->t->type) != LLAMA2_WEIGHTS_F32 &&
           (uintptr_t)ft->t->data % _Alignof(uint16_t) == 0;
}

/* The bytes a matrix takes once converted (0 when used in place). */
static size_t converted_bytes(const found_tensor *ft) {
    const size_t n = ft->f.rows * ft->f.cols; /* the shape was checked: it fits */
    if (!l2_tensor_table[ft->f.kind].matrix || ft->t->type == L2_GGML_F32 || held_as_blocks(ft)) return 0;
    return n * sizeof(float);
}

/* The model's weight type: the first of Q4_0, Q4_K, Q5_K, Q6_K and
 * GGML_Q8_0 that a matrix is held as (a Q4_K_M or Q4_K_S file is Q4_K, a
 * Q5_K_M file Q5_K), else F32. */
static llama2_weight_type model_type(const found_tensor *list, size_t n) {
    static const llama2_weight_type order[] = {LLAMA2_WEIGHTS_Q4_0, LLAMA2_WEIGHTS_Q4_K, LLAMA2_WEIGHTS_Q5_K,
                                               LLAMA2_WEIGHTS_Q6_K, LLAMA2_WEIGHTS_GGML_Q8_0};
    for (size_t k = 0; k < sizeof order / sizeof order[0]; k++)
        for (size_t i = 0; i < n; i++)
            if (held_as_blocks(&list[i]) && block_type(list[i].t->type) == order[k]) return order[k];
    return LLAMA2_WEIGHTS_F32;
}

/* Points every tensor of the model at its values: in the file, or in the
 * converted copies (one allocation, m->converted). */
static llama2_status lay_out(llama2_model *m, const l2_gguf *g, llama2_error *err) {
    const size_t max = (size_t)m->config.n_layers * 9 + 3;
    found_tensor *list = malloc(max * sizeof *list);
    if (!list) return l2_fail(err, LLAMA2_E_NOMEM, "out of memory for %zu tensors", max);
    size_t n = 0;
    const l2_gguf_tensor *rope = NULL;
    llama2_status s = find_rope_factors(m, g, &rope, err);
    if (s == LLAMA2_OK) s = find_tensors(m, g, rope, list, &n, err);
    size_t total = 0;
    for (size_t i = 0; i < n && s == LLAMA2_OK; i++)
        if (!l2_add_size(total, converted_bytes(&list[i]), &total))
            s = l2_fail(err, LLAMA2_E_NOMEM, "the converted weights' size overflows");
    if (s == LLAMA2_OK && total > 0 && !(m->converted = l2_aligned_zeroed(total)))
        s = l2_fail(err, LLAMA2_E_NOMEM, "cannot allocate %.1f MiB for the converted weights",
                    (double)total / (1 << 20));
    if (s == LLAMA2_OK) m->config.weight_type = model_type(list, n);
    unsigned char *dst = m->converted;
    for (size_t i = 0; i < n && s == LLAMA2_OK; i++) {
        const found_tensor *ft = &list[i];
        tensor_place place = l2_model_place(m, ft->f.kind, ft->f.layer);
        if (place.vector) {
            *place.vector = (const float *)ft->t->data;
            continue;
        }
        tensor *t = place.matrix;
        const size_t count = ft->f.rows * ft->f.cols;
        t->rows = (int)ft->f.rows;
        t->cols = (int)ft->f.cols;
        if (held_as_blocks(ft)) {
            t->type = block_type(ft->t->type);
            t->group_size = l2_weights_are_k(t->type) ? 256 : 32;
            t->blocks = ft->t->data;
        } else {
            t->type = LLAMA2_WEIGHTS_F32;
            if (ft->t->type == L2_GGML_F32) {
                t->f32 = (const float *)ft->t->data;
            } else {
                t->f32 = (const float *)dst;
                l2_ggml_dequantize(ft->t->type, ft->t->data, count, (float *)dst);
            }
        }
        /* Nothing is allocated (dst NULL) when nothing is converted. */
        const size_t step = converted_bytes(ft);
        if (step) dst += step;
    }
    if (s == LLAMA2_OK && m->config.shared_classifier) m->classifier = m->token_embedding;
    free(list);
    return s;
}

/* ----------------------------------------------------------- tokenizer */

#define SPIECE_SPACE "\xe2\x96\x81" /* U+2581, SentencePiece's mark for a space */

/* "<0xHH>" (upper-case hex, as SentencePiece writes them): the byte, or -1. */
static int byte_token(l2_gguf_str s) {
    if (s.len != 6 || memcmp(s.data, "<0x", 3) != 0 || s.data[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        const char ch = s.data[i];
        const int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

static llama2_status array_key(const l2_gguf *g, const char *key, l2_gguf_value_type element, int count,
                               const l2_gguf_kv **out, llama2_error *err) {
    const l2_gguf_kv *kv = l2_gguf_find(g, key);
    *out = kv;
    if (!kv) return LLAMA2_OK;
    if (kv->type != L2_GGUF_ARRAY || kv->array_type != element)
        return l2_fail(err, LLAMA2_E_FORMAT, "GGUF: %s must be an array of %s", key, l2_gguf_value_type_name(element));
    if (kv->array_len != (size_t)count)
        return l2_fail(err, LLAMA2_E_FORMAT, "GGUF: %s has %zu entries, the vocabulary %d", key, kv->array_len, count);
    return LLAMA2_OK;
}

static llama2_status special_id(const l2_gguf *g, const char *key, int want, const char *what, llama2_error *err) {
    const l2_gguf_kv *kv = l2_gguf_find(g, key);
    int64_t v;
    if (!kv) return LLAMA2_OK;
    if (!l2_gguf_int(kv, 0, INT_MAX, &v)) return l2_fail(err, LLAMA2_E_FORMAT, "GGUF: %s must be a token id", key);
    if (v != want)
        return l2_fail(err, LLAMA2_E_UNSUPPORTED, "GGUF: %s is %lld (this build's tokenizer has %s at %d)", key,
                       (long long)v, what, want);
    return LLAMA2_OK;
}

/* The pieces as llama2.c's export writes them to tokenizer.bin: U+2581 as
 * a space, BOS and EOS between newlines. */
static size_t piece_bytes(l2_gguf_str s, int id, char *out) {
    size_t n = 0;
    const int special = id == LLAMA2_TOKEN_BOS || id == LLAMA2_TOKEN_EOS;
    if (special && out) out[n] = '\n';
    n += (size_t)special;
    for (size_t i = 0; i < s.len; i++) {
        if (s.len - i >= 3 && memcmp(s.data + i, SPIECE_SPACE, 3) == 0) {
            if (out) out[n] = ' ';
            n++;
            i += 2;
            continue;
        }
        if (out) out[n] = s.data[i];
        n++;
    }
    if (special && out) out[n] = '\n';
    return n + (size_t)special;
}

/* ------------------------------------------- the byte-level BPE tokenizer */

/* At most size - 1 bytes of s, the unprintable ones as '?', for a message. */
static const char *shown_str(l2_gguf_str s, char *buf, size_t size) {
    size_t n = s.len < size - 1 ? s.len : size - 1;
    for (size_t i = 0; i < n; i++)
        buf[i] = (unsigned char)s.data[i] < 0x20 || (unsigned char)s.data[i] >= 0x7F ? '?' : s.data[i];
    buf[n] = '\0';
    return buf;
}

/* tokenizer.ggml.pre: Llama 3's split, under any of the names llama.cpp
 * gives it; a file without the key (made before llama.cpp had it) is taken
 * as Llama 3's. */
static llama2_status check_pre_tokenizer(const l2_gguf *g, llama2_error *err) {
    const l2_gguf_kv *kv = l2_gguf_find(g, L2_GGUF_KEY_PRE);
    if (!kv) return LLAMA2_OK;
    if (kv->type != L2_GGUF_STRING) return l2_fail(err, LLAMA2_E_FORMAT, "GGUF: %s must be a string", L2_GGUF_KEY_PRE);
    const l2_gguf_str pre = l2_gguf_string_at(kv, 0);
    if (str_is(pre, "llama-bpe") || str_is(pre, "llama3") || str_is(pre, "llama-v3")) return LLAMA2_OK;
    char shown[48];
    return l2_fail(err, LLAMA2_E_UNSUPPORTED, "GGUF: %s \"%s\" is not supported (this build splits text as llama-bpe, Llama 3's)",
                   L2_GGUF_KEY_PRE, shown_str(pre, shown, sizeof shown));
}

/* The strings of an array as NUL-terminated copies: one block of text
 * (*text) and pointers into it (*list). A string holding a NUL byte is
 * refused: no token or merge has one. */
static llama2_status copy_strings(const l2_gguf_kv *kv, char **text, const char ***list, llama2_error *err) {
    const size_t n = kv->array_len;
    size_t total = 0;
    const unsigned char *p = kv->value;
    for (size_t i = 0; i < n; i++) {
        uint64_t len;
        memcpy(&len, p, sizeof len);
        total += (size_t)len + 1; /* the parser checked every string lies in the file */
        p += 8 + (size_t)len;
    }
    *text = malloc(total ? total : 1);
    *list = malloc((n ? n : 1) * sizeof **list);
    if (!*text || !*list)
        return l2_fail(err, LLAMA2_E_NOMEM, "out of memory for %zu strings of %.*s", n, (int)kv->key.len, kv->key.data);
    char *dst = *text;
    p = kv->value;
    for (size_t i = 0; i < n; i++) {
        uint64_t len;
        memcpy(&len, p, sizeof len);
        if (memchr(p + 8, 0, (size_t)len))
            return l2_fail(err, LLAMA2_E_FORMAT, "GGUF: entry %zu of %.*s holds a NUL byte", i, (int)kv->key.len,
                           kv->key.data);
        memcpy(dst, p + 8, (size_t)len);
        dst[len] = '\0';
        (*list)[i] = dst;
        dst += (size_t)len + 1;
        p += 8 + (size_t)len;
    }
    return LLAMA2_OK;
}

/* A token id key: -1 when absent, else an id of the n tokens. */
static llama2_status token_id_key(const l2_gguf *g, const char *key, int n, int *out, llama2_error *err) {
    const l2_gguf_kv *kv = l2_gguf_find(g, key);
    int64_t v;
    *out = -1;
    if (!kv) return LLAMA2_OK;
    if (!l2_gguf_int(kv, 0, INT_MAX, &v)) return l2_fail(err, LLAMA2_E_FORMAT, "GGUF: %s must be a token id", key);
    if (v >= n) return l2_fail(err, LLAMA2_E_FORMAT, "GGUF: %s is %lld, past the %d tokens", key, (long long)v, n);
    *out = (int)v;
    return LLAMA2_OK;
}

/* The tokens that end a reply: EOS, EOT and EOM where the keys name them,
 * then those of Llama 3's <|end_of_text|>, <|eot_id|> and <|eom_id|> that
 * the vocabulary has among its special tokens (as for tokenizer.json). */
static int end_tokens(const char *const *tokens, const int *types, int n, const int ids[3], int end[L2_BPE_MAX_END_TOKENS]) {
    static const char *const names[] = {"<|end_of_text|>", "<|eot_id|>", "<|eom_id|>"};
    int candidates[6], k = 0, n_end = 0;
    for (int i = 0; i < 3; i++) candidates[k++] = ids[i];
    for (int i = 0; i < 3; i++) {
        int id = -1;
        for (int t = 0; t < n && id < 0; t++)
            if (types[t] != L2_BPE_NORMAL && strcmp(tokens[t], names[i]) == 0) id = t;
        candidates[k++] = id;
    }
    for (int i = 0; i < k; i++) {
        int seen = candidates[i] < 0;
        for (int j = 0; j < n_end && !seen; j++) seen = end[j] == candidates[i];
        if (!seen && n_end < L2_BPE_MAX_END_TOKENS) end[n_end++] = candidates[i];
    }
    return n_end;
}

/* tokenizer.ggml.model "gpt2": tokens, merges, types and special ids into
 * a BPE tokenizer, checked whole here and kept as its file (m->bpe_file).
 * Trailing tokens of type unused (padding rows, "[PAD259]") are left out:
 * a BPE tokenizer may have fewer tokens than the model's vocabulary. */
static llama2_status read_bpe_tokenizer(llama2_model *m, const l2_gguf *g, llama2_error *err) {
    const int n = m->config.vocab_size;
    const l2_gguf_kv *tokens, *types_kv, *merges;
    llama2_status s = check_pre_tokenizer(g, err);
    if (s == LLAMA2_OK) s = array_key(g, L2_GGUF_KEY_TOKENS, L2_GGUF_STRING, n, &tokens, err);
    if (s == LLAMA2_OK && !tokens) s = l2_fail(err, LLAMA2_E_FORMAT, "GGUF: missing the key %s", L2_GGUF_KEY_TOKENS);
    if (s == LLAMA2_OK) s = array_key(g, L2_GGUF_KEY_TOKEN_TYPES, L2_GGUF_INT32, n, &types_kv, err);
    if (s != LLAMA2_OK) return s;
    merges = l2_gguf_find(g, L2_GGUF_KEY_MERGES);
    if (!merges)
        return l2_fail(err, LLAMA2_E_FORMAT, "GGUF: missing the key %s (a gpt2 tokenizer needs its merges)",
                       L2_GGUF_KEY_MERGES);
    if (merges->type != L2_GGUF_ARRAY || merges->array_type != L2_GGUF_STRING || merges->array_len > INT_MAX)
        return l2_fail(err, LLAMA2_E_FORMAT, "GGUF: %s must be an array of strings", L2_GGUF_KEY_MERGES);
    char *token_text = NULL, *merge_text = NULL;
    const char **token_list = NULL, **merge_list = NULL;
    int *types = malloc((size_t)n * sizeof *types);
    if (!types) s = l2_fail(err, LLAMA2_E_NOMEM, "out of memory for %d token types", n);
    for (int i = 0; s == LLAMA2_OK && i < n; i++) {
        int32_t t = L2_BPE_NORMAL;
        if (types_kv) memcpy(&t, types_kv->value + (size_t)i * sizeof t, sizeof t);
        types[i] = t;
    }
    if (s == LLAMA2_OK) s = copy_strings(tokens, &token_text, &token_list, err);
    if (s == LLAMA2_OK) s = copy_strings(merges, &merge_text, &merge_list, err);
    int used = n;
    while (s == LLAMA2_OK && used > 1 && types[used - 1] == L2_GGUF_TOKEN_UNUSED) used--;
    int ids[4] = {-1, -1, -1, -1}; /* BOS, EOS, EOT, EOM */
    const char *const id_keys[4] = {L2_GGUF_KEY_BOS, L2_GGUF_KEY_EOS, L2_GGUF_KEY_EOT, L2_GGUF_KEY_EOM};
    for (int i = 0; i < 4 && s == LLAMA2_OK; i++) s = token_id_key(g, id_keys[i], used, &ids[i], err);
    llama2_tokenizer *tok = NULL;
    if (s == LLAMA2_OK) {
        int end[L2_BPE_MAX_END_TOKENS];
        llama2_bpe_vocab v = {.n_tokens = used, .tokens = token_list, .token_types = types,
                              .n_merges = (int)merges->array_len, .merges = merge_list,
                              .pre_tokenizer = "llama-bpe", .bos_id = ids[0], .end_ids = end};
        v.n_end = end_tokens(token_list, types, used, ids + 1, end);
        s = llama2_tokenizer_from_bpe(&v, &tok, err);
        if (s != LLAMA2_OK && err) { /* name the format */
            char inner[sizeof err->message];
            memcpy(inner, err->message, sizeof inner);
            l2_fail(err, s, "GGUF: %s", inner);
        }
    }
    if (s == LLAMA2_OK) s = l2_bpe_file_write(l2_tokenizer_bpe(tok), &m->bpe_file, &m->bpe_file_size, err);
    llama2_tokenizer_close(tok);
    free(types);
    free(token_text);
    free(token_list);
    free(merge_text);
    free(merge_list);
    return s;
}

/* ------------------------------------------- the tokenizer a file carries */

static llama2_status read_tokenizer(llama2_model *m, const l2_gguf *g, llama2_error *err) {
    const l2_gguf_kv *model = l2_gguf_find(g, L2_GGUF_KEY_TOK_MODEL);
    if (!model) return LLAMA2_OK; /* no tokenizer: the caller passes one */
    if (model->type == L2_GGUF_STRING && str_is(l2_gguf_string_at(model, 0), "gpt2"))
        return read_bpe_tokenizer(m, g, err);
    if (model->type != L2_GGUF_STRING || !str_is(l2_gguf_string_at(model, 0), "llama"))
        return l2_fail(err, LLAMA2_E_UNSUPPORTED,
                       "GGUF: %s must be \"llama\" (SentencePiece) or \"gpt2\" (byte-level BPE), the tokenizers this "
                       "build runs",
                       L2_GGUF_KEY_TOK_MODEL);
    const int n = m->config.vocab_size;
    const l2_gguf_kv *tokens, *scores, *types;
    llama2_status s = array_key(g, L2_GGUF_KEY_TOKENS, L2_GGUF_STRING, n, &tokens, err);
    if (s == LLAMA2_OK && !tokens) {
        const l2_gguf_kv *kv = l2_gguf_find(g, L2_GGUF_KEY_TOKENS);
        s = kv ? s : l2_fail(err, LLAMA2_E_FORMAT, "GGUF: missing the key %s", L2_GGUF_KEY_TOKENS);
    }
    if (s == LLAMA2_OK) s = array_key(g, L2_GGUF_KEY_SCORES, L2_GGUF_FLOAT32, n, &scores, err);
    if (s == LLAMA2_OK) s = array_key(g, L2_GGUF_KEY_TOKEN_TYPES, L2_GGUF_INT32, n, &types, err);
    if (s == LLAMA2_OK) s = special_id(g, L2_GGUF_KEY_BOS, LLAMA2_TOKEN_BOS, "BOS", err);
    if (s == LLAMA2_OK) s = special_id(g, L2_GGUF_KEY_EOS, LLAMA2_TOKEN_EOS, "EOS", err);
    if (s != LLAMA2_OK) return s;
    /* One walk over the strings: their total size, and the byte tokens
     * where llama2.c's encoder looks for them (id = byte + 3). */
    size_t text_bytes = 0;
    const unsigned char *p = tokens->value;
    for (int i = 0; i < n; i++) {
        l2_gguf_str piece;
        uint64_t len;
        memcpy(&len, p, sizeof len);
        piece.data = (const char *)p + 8;
        piece.len = (size_t)len;
        p += 8 + piece.len;
        const int byte = byte_token(piece);
        if (byte >= 0 && byte + 3 != i)
            return l2_fail(err, LLAMA2_E_UNSUPPORTED, "GGUF: the byte token <0x%02X> is id %d (this build's tokenizer needs it at %d)",
                           (unsigned)byte, i, byte + 3);
        if (!l2_add_size(text_bytes, piece_bytes(piece, i, NULL), &text_bytes))
            return l2_fail(err, LLAMA2_E_NOMEM, "GGUF: the vocabulary is too large");
    }
    m->vocab_text = malloc(text_bytes ? text_bytes : 1);
    m->vocab_lengths = malloc((size_t)n * sizeof *m->vocab_lengths);
    m->vocab_scores = malloc((size_t)n * sizeof *m->vocab_scores);
    if (!m->vocab_text || !m->vocab_lengths || !m->vocab_scores)
        return l2_fail(err, LLAMA2_E_NOMEM, "out of memory for a vocabulary of %d tokens", n);
    p = tokens->value;
    char *dst = m->vocab_text;
    for (int i = 0; i < n; i++) {
        uint64_t len;
        memcpy(&len, p, sizeof len);
        l2_gguf_str piece = {(const char *)p + 8, (size_t)len};
        p += 8 + piece.len;
        m->vocab_lengths[i] = piece_bytes(piece, i, dst);
        dst += m->vocab_lengths[i];
        float score = 0.0f;
        if (scores) memcpy(&score, scores->value + (size_t)i * sizeof score, sizeof score);
        m->vocab_scores[i] = score;
    }
    m->vocab_count = n;
    return LLAMA2_OK;
}

/* ---------------------------------------------------------------- load */

static void describe(llama2_model *m, const l2_gguf *g) {
    /* The count of tensors of each type, in ggml's type order. */
    int n = snprintf(m->format, sizeof m->format, "GGUF v%u:", g->version);
    int first = 1;
    for (uint32_t type = 0; type <= L2_GGML_BF16; type++) {
        size_t count = 0;
        for (size_t i = 0; i < g->n_tensors; i++) count += g->tensors[i].type == type;
        if (count == 0 || n < 0 || (size_t)n >= sizeof m->format) continue;
        n += snprintf(m->format + n, sizeof m->format - (size_t)n, "%s %zu %s", first ? "" : ",", count,
                      l2_ggml_type_name(type));
        first = 0;
    }
    if (n > 0 && (size_t)n < sizeof m->format) snprintf(m->format + n, sizeof m->format - (size_t)n, " tensors");
}

llama2_status l2_gguf_model_load(llama2_model *m, const unsigned char *data, size_t size, llama2_error *err) {
    l2_gguf g;
    llama2_status s = l2_gguf_parse(data, size, &g, err);
    if (s == LLAMA2_OK) s = read_config(&g, &m->config, err);
    /* Each layer has nine tensors: refuse a count the file cannot hold
     * before allocating for it. */
    if (s == LLAMA2_OK && (size_t)m->config.n_layers > g.n_tensors / 9)
        s = l2_fail(err, LLAMA2_E_FORMAT, "GGUF: %s is %d, the file holds %zu tensors", L2_GGUF_KEY_LAYERS,
                    m->config.n_layers, g.n_tensors);
    if (s == LLAMA2_OK) {
        m->head_size = m->config.dim / m->config.n_heads;
        m->kv_dim = m->head_size * m->config.n_kv_heads;
        m->layers = calloc((size_t)m->config.n_layers, sizeof *m->layers);
        if (!m->layers) s = l2_fail(err, LLAMA2_E_NOMEM, "out of memory for %d layers", m->config.n_layers);
    }
    if (s == LLAMA2_OK) s = lay_out(m, &g, err);
    if (s == LLAMA2_OK) s = read_tokenizer(m, &g, err);
    if (s == LLAMA2_OK) describe(m, &g);
    l2_gguf_free(&g);
    return s;
}
