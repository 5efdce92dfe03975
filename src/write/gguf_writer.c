/*
 * Writing a model as GGUF (gguf_writer.h; the format in src/model/gguf.c
 * and docs/FORMAT.md). The header (key-value pairs and tensor infos) is
 * built in memory, then the tensors are streamed row by row, each at an
 * offset aligned to L2_GGUF_DEFAULT_ALIGNMENT. Q and K rows keep their
 * order: llama2.c's and GGUF's are the same (model_gguf.c).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf_writer.h"
#include "kquantize.h"
#include "kernels/ops_blocks.h"
#include "model/float16.h"
#include "model/ggml_dequant.h"
#include "model/model.h"
#include "platform/checks.h"
#include "text/bpe.h"
#include "text/tokenizer_internal.h"

#define ALIGN ((size_t)L2_GGUF_DEFAULT_ALIGNMENT)
#define SPIECE_SPACE "\xe2\x96\x81"

/* ------------------------------------------------------- header bytes */

typedef struct bytes {
    unsigned char *p;
    size_t len, cap;
    int failed;
} bytes;

static void put(bytes *b, const void *data, size_t n) {
    if (b->failed) return;
    if (b->cap - b->len < n) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap - b->len < n && cap <= SIZE_MAX / 2) cap *= 2;
        unsigned char *p = cap - b->len >= n ? realloc(b->p, cap) : NULL;
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void put_u32(bytes *b, uint32_t v) { put(b, &v, sizeof v); }
static void put_u64(bytes *b, uint64_t v) { put(b, &v, sizeof v); }

static void put_str(bytes *b, const char *s, size_t n) {
    put_u64(b, n);
    put(b, s, n);
}

static void put_key(bytes *b, const char *key, l2_gguf_value_type type) {
    put_str(b, key, strlen(key));
    put_u32(b, (uint32_t)type);
}

static void kv_u32(bytes *b, const char *key, uint32_t v) {
    put_key(b, key, L2_GGUF_UINT32);
    put_u32(b, v);
}

static void kv_f32(bytes *b, const char *key, float v) {
    put_key(b, key, L2_GGUF_FLOAT32);
    put(b, &v, sizeof v);
}

static void kv_str(bytes *b, const char *key, const char *v) {
    put_key(b, key, L2_GGUF_STRING);
    put_str(b, v, strlen(v));
}

static void kv_array(bytes *b, const char *key, l2_gguf_value_type element, size_t n) {
    put_key(b, key, L2_GGUF_ARRAY);
    put_u32(b, (uint32_t)element);
    put_u64(b, n);
}

/* "<0xHH>": a byte token. */
static int is_byte_piece(const char *s, size_t n) {
    return n == 6 && memcmp(s, "<0x", 3) == 0 && s[5] == '>';
}

/* A tokenizer.bin piece as llama.cpp's converter stores SentencePiece's:
 * spaces as U+2581, BOS and EOS without the newlines llama2.c's export
 * puts around them. */
static void put_piece(bytes *b, const char *s, size_t n, int id) {
    if ((id == LLAMA2_TOKEN_BOS || id == LLAMA2_TOKEN_EOS) && n >= 2 && s[0] == '\n' && s[n - 1] == '\n') {
        s++;
        n -= 2;
    }
    size_t spaces = 0;
    for (size_t i = 0; i < n; i++) spaces += s[i] == ' ';
    put_u64(b, n + 2 * spaces);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ')
            put(b, SPIECE_SPACE, 3);
        else
            put(b, &s[i], 1);
    }
}

/* A byte-level BPE tokenizer as llama.cpp's converter stores a Hugging
 * Face one (tokenizer.ggml.model "gpt2"): normal tokens and the merges in
 * GPT-2's byte-to-unicode characters, special tokens as their text, the
 * rows past the tokenizer's tokens as unused "[PAD<id>]" tokens (llama.cpp
 * wants a token per row). Returns the count of pairs written. */
static void put_byte_chars(bytes *b, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const unsigned c = l2_bpe_byte_char((unsigned char)s[i]);
        unsigned char u[2] = {(unsigned char)c, 0};
        if (c >= 0x80) {
            u[0] = (unsigned char)(0xC0 | c >> 6);
            u[1] = (unsigned char)(0x80 | (c & 0x3F));
        }
        put(b, u, c >= 0x80 ? 2 : 1);
    }
}

static size_t byte_chars_len(const char *s, size_t n) {
    size_t len = 0;
    for (size_t i = 0; i < n; i++) len += l2_bpe_byte_char((unsigned char)s[i]) >= 0x80 ? 2 : 1;
    return len;
}

static int put_bpe_tokenizer(bytes *b, const l2_bpe *bpe, int vocab) {
    const l2_bpe_spec *spec = l2_bpe_get_spec(bpe);
    kv_str(b, L2_GGUF_KEY_TOK_MODEL, "gpt2");
    kv_str(b, L2_GGUF_KEY_PRE, "llama-bpe");
    kv_array(b, L2_GGUF_KEY_TOKENS, L2_GGUF_STRING, (size_t)vocab);
    for (int i = 0; i < vocab; i++) {
        if (i >= spec->n_tokens) {
            char pad[32];
            snprintf(pad, sizeof pad, "[PAD%d]", i);
            put_str(b, pad, strlen(pad));
        } else if (spec->types[i] == L2_BPE_NORMAL) {
            put_u64(b, byte_chars_len(spec->pieces[i], spec->lengths[i]));
            put_byte_chars(b, spec->pieces[i], spec->lengths[i]);
        } else {
            put_str(b, spec->pieces[i], spec->lengths[i]);
        }
    }
    kv_array(b, L2_GGUF_KEY_TOKEN_TYPES, L2_GGUF_INT32, (size_t)vocab);
    for (int i = 0; i < vocab; i++) {
        const int32_t type = i < spec->n_tokens ? spec->types[i] : L2_GGUF_TOKEN_UNUSED;
        put(b, &type, sizeof type);
    }
    kv_array(b, L2_GGUF_KEY_MERGES, L2_GGUF_STRING, (size_t)spec->n_merges);
    for (int r = 0; r < spec->n_merges; r++) {
        const int left = spec->merges[2 * r], right = spec->merges[2 * r + 1];
        const size_t left_len = byte_chars_len(spec->pieces[left], spec->lengths[left]);
        put_u64(b, left_len + 1 + byte_chars_len(spec->pieces[right], spec->lengths[right]));
        put_byte_chars(b, spec->pieces[left], spec->lengths[left]);
        put(b, " ", 1);
        put_byte_chars(b, spec->pieces[right], spec->lengths[right]);
    }
    int pairs = 5;
    if (spec->bos >= 0) {
        kv_u32(b, L2_GGUF_KEY_BOS, (uint32_t)spec->bos);
        pairs++;
    }
    if (spec->n_end > 0) {
        kv_u32(b, L2_GGUF_KEY_EOS, (uint32_t)spec->end[0]);
        pairs++;
    }
    return pairs;
}

static int put_tokenizer(bytes *b, const llama2_tokenizer *tok, int vocab) {
    const l2_bpe *bpe = l2_tokenizer_bpe(tok);
    if (bpe) return put_bpe_tokenizer(b, bpe, vocab);
    const int n = llama2_tokenizer_vocab_size(tok);
    kv_str(b, L2_GGUF_KEY_TOK_MODEL, "llama");
    kv_array(b, L2_GGUF_KEY_TOKENS, L2_GGUF_STRING, (size_t)n);
    for (int i = 0; i < n; i++) {
        size_t len;
        float score;
        const char *piece = l2_tokenizer_entry(tok, i, &len, &score);
        put_piece(b, piece, len, i);
    }
    kv_array(b, L2_GGUF_KEY_SCORES, L2_GGUF_FLOAT32, (size_t)n);
    for (int i = 0; i < n; i++) {
        size_t len;
        float score;
        l2_tokenizer_entry(tok, i, &len, &score);
        put(b, &score, sizeof score);
    }
    kv_array(b, L2_GGUF_KEY_TOKEN_TYPES, L2_GGUF_INT32, (size_t)n);
    for (int i = 0; i < n; i++) {
        size_t len;
        float score;
        const char *piece = l2_tokenizer_entry(tok, i, &len, &score);
        int32_t type = i == 0 ? L2_GGUF_TOKEN_UNKNOWN
                       : i == LLAMA2_TOKEN_BOS || i == LLAMA2_TOKEN_EOS ? L2_GGUF_TOKEN_CONTROL
                       : is_byte_piece(piece, len)                      ? L2_GGUF_TOKEN_BYTE
                                                                        : L2_GGUF_TOKEN_NORMAL;
        put(b, &type, sizeof type);
    }
    kv_u32(b, L2_GGUF_KEY_BOS, LLAMA2_TOKEN_BOS);
    kv_u32(b, L2_GGUF_KEY_EOS, LLAMA2_TOKEN_EOS);
    kv_u32(b, L2_GGUF_KEY_UNK, 0);
    return 7;
}

/* ------------------------------------------------------------- tensors */

typedef struct out_tensor {
    int rope; /* 1: rope_freqs.weight (Llama 3's RoPE scaling), no kind */
    l2_tensor_kind kind;
    int layer;
    size_t rows, cols;
    uint32_t type;
    size_t bytes, offset;
    char name[64];
} out_tensor;

static size_t round_up(size_t n) { return (n + ALIGN - 1) / ALIGN * ALIGN; }

/* Row r of a tensor as fp32 (an int8 model's dequantized). */
static void read_row(const llama2_model *m, const out_tensor *t, size_t r, float *out) {
    if (t->rope) {
        l2_rope_factors(m, out);
        return;
    }
    tensor_place place = l2_model_place((llama2_model *)m, t->kind, t->layer);
    if (place.vector) {
        memcpy(out, *place.vector, t->cols * sizeof *out);
        return;
    }
    const tensor *w = place.matrix;
    if (w->type == LLAMA2_WEIGHTS_F32) {
        memcpy(out, w->f32 + r * t->cols, t->cols * sizeof *out);
        return;
    }
    if (l2_weights_are_blocks(w->type)) {
        const uint32_t type = w->type == LLAMA2_WEIGHTS_Q4_0   ? L2_GGML_Q4_0
                              : w->type == LLAMA2_WEIGHTS_Q4_K ? L2_GGML_Q4_K
                              : w->type == LLAMA2_WEIGHTS_Q5_K ? L2_GGML_Q5_K
                              : w->type == LLAMA2_WEIGHTS_Q6_K ? L2_GGML_Q6_K
                                                               : L2_GGML_Q8_0;
        size_t block_values, block_bytes;
        l2_ggml_type_block(type, &block_values, &block_bytes);
        l2_ggml_dequantize(type, (const unsigned char *)w->blocks + r * (t->cols / block_values) * block_bytes,
                           t->cols, out);
        return;
    }
    for (size_t j = 0; j < t->cols; j++) {
        const size_t at = r * t->cols + j;
        out[j] = (float)w->q[at] * w->scales[at / (size_t)w->group_size];
    }
}

/* 1 / d, or 0 where d is 0 or so small (subnormal) that 1 / d overflows:
 * the block's values then all round to 0, as its fp16 scale does. */
static float inverse(float d) {
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    return isfinite(id) ? id : 0.0f;
}

/* One row in the tensor's type, as ggml's reference code writes it. */
static int encode_row(const float *x, size_t n, uint32_t type, unsigned char *out) {
    if (type == L2_GGML_Q4_K || type == L2_GGML_Q5_K || type == L2_GGML_Q6_K) {
        for (size_t j = 0; j < n; j++)
            if (!isfinite(x[j])) return 0;
        if (type == L2_GGML_Q4_K)
            l2_quantize_q4_K(x, n, out);
        else if (type == L2_GGML_Q5_K)
            l2_quantize_q5_K(x, n, out);
        else
            l2_quantize_q6_K(x, n, out);
        return 1;
    }
    if (type == L2_GGML_F32) {
        memcpy(out, x, n * sizeof *x);
        return 1;
    }
    if (type == L2_GGML_F16) {
        for (size_t j = 0; j < n; j++) {
            uint16_t h = l2_f32_to_f16(x[j]);
            memcpy(out + 2 * j, &h, 2);
        }
        return 1;
    }
    if (type == L2_GGML_Q4_0) {
        for (size_t blk = 0; blk < n / 32; blk++) { /* an fp16 scale, 32 nibbles */
            const float *v = x + blk * 32;
            float amax = 0.0f, max = 0.0f;
            for (int j = 0; j < 32; j++) {
                if (!isfinite(v[j])) return 0;
                if (fabsf(v[j]) > amax) {
                    amax = fabsf(v[j]);
                    max = v[j];
                }
            }
            /* The largest magnitude maps to -8, the one end of [-8, 7]
             * reached exactly. */
            const float d = max / -8.0f, id = inverse(d);
            unsigned char *o = out + blk * 18;
            uint16_t h = l2_f32_to_f16(d);
            memcpy(o, &h, 2);
            for (int j = 0; j < 16; j++) {
                const int lo = (int)(int8_t)(v[j] * id + 8.5f), hi = (int)(int8_t)(v[16 + j] * id + 8.5f);
                o[2 + j] = (unsigned char)((lo < 15 ? lo : 15) | (hi < 15 ? hi : 15) << 4);
            }
        }
        return 1;
    }
    for (size_t blk = 0; blk < n / 32; blk++) { /* Q8_0: an fp16 scale, 32 int8 */
        const float *v = x + blk * 32;
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) {
            if (!isfinite(v[j])) return 0;
            if (fabsf(v[j]) > amax) amax = fabsf(v[j]);
        }
        const float d = amax / 127.0f, id = inverse(d);
        unsigned char *o = out + blk * 34;
        uint16_t h = l2_f32_to_f16(d);
        memcpy(o, &h, 2);
        for (int j = 0; j < 32; j++) o[2 + j] = (unsigned char)(int8_t)roundf(v[j] * id);
    }
    return 1;
}

/* llama.cpp's use_more_bits: the layers Q4_K_M and Q5_K_M give Q6_K's
 * attn_v and ffn_down. */
static int more_bits(int layer, int n_layers) {
    return layer < n_layers / 8 || layer >= 7 * n_layers / 8 || (layer - n_layers / 8) % 3 == 2;
}

static int is_mix(uint32_t type) {
    return type == L2_GGUF_MIX_Q4_K_S || type == L2_GGUF_MIX_Q4_K_M || type == L2_GGUF_MIX_Q5_K_S ||
           type == L2_GGUF_MIX_Q5_K_M;
}

/* The type a matrix is written in: the file's, or the mix's choice (the
 * rules of llama.cpp's llama_tensor_get_type for a llama model without
 * experts, gguf_writer.h). */
static uint32_t chosen_type(uint32_t type, l2_tensor_kind kind, int layer, size_t cols, const llama2_config *c) {
    if (!is_mix(type)) return type;
    const int output = kind == L2_TENSOR_CLASSIFIER || (c->shared_classifier && kind == L2_TENSOR_TOKEN_EMBEDDING);
    if (output) return cols % 256 != 0 ? L2_GGML_Q8_0 : L2_GGML_Q6_K;
    const int value = kind == L2_TENSOR_ATTENTION_VALUE, down = kind == L2_TENSOR_FFN_DOWN;
    switch (type) {
    case L2_GGUF_MIX_Q4_K_S:
        return (value && layer < 4) || (down && layer < c->n_layers / 8) ? L2_GGML_Q5_K : L2_GGML_Q4_K;
    case L2_GGUF_MIX_Q4_K_M:
        return (value || down) && more_bits(layer, c->n_layers) ? L2_GGML_Q6_K : L2_GGML_Q4_K;
    case L2_GGUF_MIX_Q5_K_M:
        return (value || down) && more_bits(layer, c->n_layers) ? L2_GGML_Q6_K : L2_GGML_Q5_K;
    default: return L2_GGML_Q5_K; /* Q5_K_S */
    }
}

/* A type whose blocks do not divide a row's length, replaced as
 * llama.cpp's quantizer does (gguf_writer.h). */
static uint32_t fallback_type(uint32_t type, size_t cols) {
    size_t block_values, block_bytes;
    l2_ggml_type_block(type, &block_values, &block_bytes);
    if (cols % block_values == 0) return type;
    if (type == L2_GGML_Q6_K || type == L2_GGML_Q5_K) type = L2_GGML_Q8_0;
    if (type == L2_GGML_Q4_K) type = L2_GGML_Q4_0;
    l2_ggml_type_block(type, &block_values, &block_bytes);
    return cols % block_values == 0 ? type : L2_GGML_F32;
}

uint32_t l2_gguf_written_type(uint32_t type, l2_tensor_kind kind, int layer, size_t cols, const llama2_config *c) {
    return l2_tensor_table[kind].matrix ? fallback_type(chosen_type(type, kind, layer, cols, c), cols) : L2_GGML_F32;
}

static llama2_status list_tensors(const llama2_model *m, uint32_t type, out_tensor **out, size_t *count,
                                  int *fallbacks, llama2_error *err) {
    llama2_config c = m->config;
    c.file_version = 1; /* the tensors of a v1 file: no RoPE tables */
    size_t n = 0;
    l2_tensor_walk walk = l2_tensor_walk_start(&c, 0);
    l2_file_tensor f;
    while (l2_tensor_walk_next(&walk, &f)) n++;
    const int rope = m->rope_freq_factors != NULL || c.rope_scaling_factor != 0.0f;
    out_tensor *list = calloc(n + (size_t)rope, sizeof *list);
    if (!list) return l2_fail(err, LLAMA2_E_NOMEM, "out of memory for %zu tensors", n);
    walk = l2_tensor_walk_start(&c, 0);
    size_t offset = 0, i = 0;
    *fallbacks = 0;
    while (l2_tensor_walk_next(&walk, &f)) {
        out_tensor *t = &list[i++];
        t->kind = f.kind;
        t->layer = f.layer;
        t->rows = f.rows;
        t->cols = f.cols;
        size_t block_values, block_bytes;
        const uint32_t chosen = l2_tensor_table[f.kind].matrix ? chosen_type(type, f.kind, f.layer, f.cols, &c) : L2_GGML_F32;
        t->type = l2_gguf_written_type(type, f.kind, f.layer, f.cols, &c);
        *fallbacks += t->type != chosen;
        l2_ggml_type_block(t->type, &block_values, &block_bytes);
        t->bytes = t->rows * (t->cols / block_values) * block_bytes;
        t->offset = offset;
        offset += round_up(t->bytes);
        l2_gguf_tensor_name(f.kind, f.layer, t->name, sizeof t->name);
    }
    if (rope) { /* where llama.cpp's converter puts the scaling: a divisor per frequency */
        out_tensor *t = &list[n++];
        t->rope = 1;
        t->rows = 1;
        t->cols = (size_t)m->head_size / 2;
        t->type = L2_GGML_F32;
        t->bytes = t->cols * sizeof(float);
        t->offset = offset;
        snprintf(t->name, sizeof t->name, "%s", L2_GGUF_ROPE_FREQS);
    }
    *out = list;
    *count = n;
    return LLAMA2_OK;
}

static void put_header(bytes *b, const llama2_model *m, const llama2_tokenizer *tok, uint32_t type,
                       const out_tensor *ts, size_t n) {
    const llama2_config *c = &m->config;
    size_t n_kv = 15; /* and the tokenizer's: counted once written */
    put(b, L2_GGUF_MAGIC, 4);
    put_u32(b, 3);
    put_u64(b, n);
    const size_t n_kv_at = b->len;
    put_u64(b, n_kv);
    kv_str(b, L2_GGUF_KEY_ARCH, "llama");
    kv_str(b, "general.name", "llama2");
    /* llama.cpp's file types: all F32, mostly F16, Q4_0, Q8_0, Q4_K_S (and
     * for q4_k, the nearest), Q4_K_M, Q5_K_S (and for q5_k), Q5_K_M, Q6_K. */
    kv_u32(b, "general.file_type",
           type == L2_GGML_F32                                       ? 0
           : type == L2_GGML_F16                                     ? 1
           : type == L2_GGML_Q4_0                                    ? 2
           : type == L2_GGML_Q8_0                                    ? 7
           : type == L2_GGML_Q4_K || type == L2_GGUF_MIX_Q4_K_S      ? 14
           : type == L2_GGUF_MIX_Q4_K_M                              ? 15
           : type == L2_GGML_Q5_K || type == L2_GGUF_MIX_Q5_K_S      ? 16
           : type == L2_GGUF_MIX_Q5_K_M                              ? 17
                                                                     : 18);
    kv_u32(b, L2_GGUF_KEY_ALIGNMENT, (uint32_t)ALIGN);
    kv_u32(b, L2_GGUF_KEY_CONTEXT, (uint32_t)c->seq_len);
    kv_u32(b, L2_GGUF_KEY_DIM, (uint32_t)c->dim);
    kv_u32(b, L2_GGUF_KEY_LAYERS, (uint32_t)c->n_layers);
    kv_u32(b, L2_GGUF_KEY_HIDDEN, (uint32_t)c->hidden_dim);
    kv_u32(b, L2_GGUF_KEY_HEADS, (uint32_t)c->n_heads);
    kv_u32(b, L2_GGUF_KEY_KV_HEADS, (uint32_t)c->n_kv_heads);
    kv_u32(b, L2_GGUF_KEY_ROPE_DIMS, (uint32_t)(c->dim / c->n_heads));
    kv_f32(b, L2_GGUF_KEY_NORM_EPS, c->norm_eps);
    kv_f32(b, L2_GGUF_KEY_ROPE_THETA, c->rope_theta);
    kv_u32(b, L2_GGUF_KEY_VOCAB_SIZE, (uint32_t)c->vocab_size);
    kv_u32(b, "llama.attention.key_length", (uint32_t)(c->dim / c->n_heads));
    n_kv += (size_t)put_tokenizer(b, tok, c->vocab_size);
    if (!b->failed) memcpy(b->p + n_kv_at, &(uint64_t){n_kv}, sizeof(uint64_t));
    for (size_t i = 0; i < n; i++) {
        put_str(b, ts[i].name, strlen(ts[i].name));
        const int vector = ts[i].rope || !l2_tensor_table[ts[i].kind].matrix;
        put_u32(b, vector ? 1 : 2);
        put_u64(b, ts[i].cols);
        if (!vector) put_u64(b, ts[i].rows);
        put_u32(b, ts[i].type);
        put_u64(b, ts[i].offset);
    }
    static const unsigned char zeros[ALIGN];
    put(b, zeros, round_up(b->len) - b->len);
}

static llama2_status write_tensors(l2_output *o, const llama2_model *m, const out_tensor *ts, size_t n,
                                   llama2_error *err) {
    size_t widest = 1;
    for (size_t i = 0; i < n; i++)
        if (ts[i].cols > widest) widest = ts[i].cols;
    float *row = malloc(widest * sizeof *row);
    unsigned char *encoded = malloc(widest * sizeof(float));
    llama2_status s = row && encoded ? LLAMA2_OK : l2_fail(err, LLAMA2_E_NOMEM, "out of memory for a row");
    static const unsigned char zeros[ALIGN];
    for (size_t i = 0; i < n && s == LLAMA2_OK; i++) {
        const size_t row_bytes = ts[i].bytes / ts[i].rows;
        for (size_t r = 0; r < ts[i].rows && s == LLAMA2_OK; r++) {
            read_row(m, &ts[i], r, row);
            if (!encode_row(row, ts[i].cols, ts[i].type, encoded))
                s = l2_fail(err, LLAMA2_E_FORMAT, "%s row %zu holds a value that is not finite", ts[i].name, r);
            else
                s = l2_output_write(o, encoded, row_bytes, err);
        }
        if (s == LLAMA2_OK) s = l2_output_write(o, zeros, round_up(ts[i].bytes) - ts[i].bytes, err);
    }
    free(row);
    free(encoded);
    return s;
}

llama2_status l2_gguf_write_model(const char *path, const llama2_model *m, const llama2_tokenizer *tok, uint32_t type,
                                  const char *const *inputs, unsigned output_flags, int *fallbacks,
                                  llama2_error *err) {
    if (type != L2_GGML_F32 && type != L2_GGML_F16 && type != L2_GGML_Q8_0 && type != L2_GGML_Q4_0 &&
        type != L2_GGML_Q4_K && type != L2_GGML_Q5_K && type != L2_GGML_Q6_K && !is_mix(type))
        return l2_fail(err, LLAMA2_E_INVALID,
                       "cannot write tensors of type %s (F32, F16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K and the Q4_K_S, "
                       "Q4_K_M, Q5_K_S and Q5_K_M mixes are written)",
                       l2_ggml_type_name(type) ? l2_ggml_type_name(type) : "unknown");
    /* A BPE tokenizer may have fewer tokens than the model has rows. */
    const int n_tokens = llama2_tokenizer_vocab_size(tok);
    if (l2_tokenizer_bpe(tok) ? n_tokens > m->config.vocab_size : n_tokens != m->config.vocab_size)
        return l2_fail(err, LLAMA2_E_INVALID, "the tokenizer has %d tokens, the model %d", n_tokens,
                       m->config.vocab_size);
    out_tensor *ts = NULL;
    size_t n = 0;
    int ignored;
    llama2_status s = list_tensors(m, type, &ts, &n, fallbacks ? fallbacks : &ignored, err);
    if (s != LLAMA2_OK) return s;
    bytes header = {0};
    put_header(&header, m, tok, type, ts, n);
    if (header.failed) s = l2_fail(err, LLAMA2_E_NOMEM, "out of memory for the GGUF header");
    l2_output o;
    if (s == LLAMA2_OK) s = l2_output_open(&o, path, inputs, output_flags, err);
    if (s == LLAMA2_OK) {
        s = l2_output_write(&o, header.p, header.len, err);
        if (s == LLAMA2_OK) s = write_tensors(&o, m, ts, n, err);
        if (s == LLAMA2_OK)
            s = l2_output_commit(&o, err);
        else
            l2_output_abort(&o);
    }
    free(header.p);
    free(ts);
    return s;
}
