/* GGUF, the file format of llama.cpp (versions 2 and 3, little-endian):
 * parsing a whole file held in memory into its key-value pairs and its
 * tensor infos, every count, length, offset and size checked against the
 * file before use (docs/FORMAT.md). Nothing is copied: strings and values
 * point into the file's bytes. Not part of the public API. */
#ifndef LLAMA2_GGUF_H
#define LLAMA2_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "checkpoint_format.h"
#include "llama2.h"

#define L2_GGUF_MAGIC "GGUF"
#define L2_GGUF_DEFAULT_ALIGNMENT 32
#define L2_GGUF_MAX_DIMS 4

/* The value types of the key-value pairs. */
typedef enum l2_gguf_value_type {
    L2_GGUF_UINT8 = 0,
    L2_GGUF_INT8 = 1,
    L2_GGUF_UINT16 = 2,
    L2_GGUF_INT16 = 3,
    L2_GGUF_UINT32 = 4,
    L2_GGUF_INT32 = 5,
    L2_GGUF_FLOAT32 = 6,
    L2_GGUF_BOOL = 7,
    L2_GGUF_STRING = 8,
    L2_GGUF_ARRAY = 9,
    L2_GGUF_UINT64 = 10,
    L2_GGUF_INT64 = 11,
    L2_GGUF_FLOAT64 = 12,
    L2_GGUF_VALUE_TYPES
} l2_gguf_value_type;

/* ggml's tensor types that this build names (the numbers are ggml's). */
typedef enum l2_ggml_type {
    L2_GGML_F32 = 0,
    L2_GGML_F16 = 1,
    L2_GGML_Q4_0 = 2,
    L2_GGML_Q4_1 = 3,
    L2_GGML_Q5_0 = 6,
    L2_GGML_Q5_1 = 7,
    L2_GGML_Q8_0 = 8,
    L2_GGML_Q8_1 = 9,
    L2_GGML_Q2_K = 10,
    L2_GGML_Q3_K = 11,
    L2_GGML_Q4_K = 12,
    L2_GGML_Q5_K = 13,
    L2_GGML_Q6_K = 14,
    L2_GGML_Q8_K = 15,
    L2_GGML_BF16 = 30,
} l2_ggml_type;

/* A string of the file: not NUL-terminated. */
typedef struct l2_gguf_str {
    const char *data;
    size_t len;
} l2_gguf_str;

typedef struct l2_gguf_kv {
    l2_gguf_str key;
    l2_gguf_value_type type;
    /* Arrays: the elements' type (never an array) and their count. */
    l2_gguf_value_type array_type;
    size_t array_len;
    /* The value's bytes (an array's: its first element's). */
    const unsigned char *value;
} l2_gguf_kv;

typedef struct l2_gguf_tensor {
    l2_gguf_str name;
    uint32_t n_dims;
    uint64_t dims[L2_GGUF_MAX_DIMS]; /* dims[0] varies fastest (a row's length) */
    uint32_t type;                   /* an l2_ggml_type */
    size_t offset;                   /* from the start of the data section */
    size_t bytes;
    const unsigned char *data;
} l2_gguf_tensor;

typedef struct l2_gguf {
    uint32_t version;
    size_t n_kv, n_tensors;
    l2_gguf_kv *kv;
    l2_gguf_tensor *tensors;
    size_t alignment;
    size_t data_offset; /* where the data section starts in the file */
} l2_gguf;

/* Parses and checks a whole file: the header (magic, a version of 2 or 3,
 * counts that the file can hold), every key-value pair (known value types,
 * no nested arrays, no key twice, general.alignment a power of two), every
 * tensor info (a name not seen before, 1 to 4 dimensions, none zero, a type
 * this build knows whose block divides the rows, an aligned offset), and
 * the data: every tensor inside the file, none overlapping another.
 * LLAMA2_E_FORMAT (or _UNSUPPORTED, _NOMEM) with a message on failure;
 * l2_gguf_free frees what it allocated either way. */
llama2_status l2_gguf_parse(const unsigned char *data, size_t size, l2_gguf *g, llama2_error *err);
void l2_gguf_free(l2_gguf *g);

/* The pair with this key, or NULL. */
const l2_gguf_kv *l2_gguf_find(const l2_gguf *g, const char *key);
/* The tensor with this name, or NULL. */
const l2_gguf_tensor *l2_gguf_find_tensor(const l2_gguf *g, const char *name);

/* Reads element i of an array (or i = 0 of a scalar) as a string; the pair
 * must have this element type (the parser checked the bytes). */
l2_gguf_str l2_gguf_string_at(const l2_gguf_kv *kv, size_t i);
/* The byte size of one element of a fixed-size type (0 for strings and
 * arrays). */
size_t l2_gguf_value_size(l2_gguf_value_type type);

/* An integer value of any integer type into *out; 0 when it is not an
 * integer or does not fit [lo, hi]. */
int l2_gguf_int(const l2_gguf_kv *kv, int64_t lo, int64_t hi, int64_t *out);
/* A float32 or float64 value as a float; 0 for other types. */
int l2_gguf_float(const l2_gguf_kv *kv, float *out);

/* The tensor types a model may hold, as messages name them. */
#define L2_GGUF_SUPPORTED_TYPES "F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K and Q6_K"

/* The metadata keys of a llama model. */
#define L2_GGUF_KEY_ARCH "general.architecture"
#define L2_GGUF_KEY_ALIGNMENT "general.alignment"
#define L2_GGUF_KEY_CONTEXT "llama.context_length"
#define L2_GGUF_KEY_DIM "llama.embedding_length"
#define L2_GGUF_KEY_LAYERS "llama.block_count"
#define L2_GGUF_KEY_HIDDEN "llama.feed_forward_length"
#define L2_GGUF_KEY_HEADS "llama.attention.head_count"
#define L2_GGUF_KEY_KV_HEADS "llama.attention.head_count_kv"
#define L2_GGUF_KEY_NORM_EPS "llama.attention.layer_norm_rms_epsilon"
#define L2_GGUF_KEY_ROPE_THETA "llama.rope.freq_base"
#define L2_GGUF_KEY_ROPE_DIMS "llama.rope.dimension_count"
#define L2_GGUF_KEY_VOCAB_SIZE "llama.vocab_size"
#define L2_GGUF_KEY_TOK_MODEL "tokenizer.ggml.model"
#define L2_GGUF_KEY_TOKENS "tokenizer.ggml.tokens"
#define L2_GGUF_KEY_SCORES "tokenizer.ggml.scores"
#define L2_GGUF_KEY_TOKEN_TYPES "tokenizer.ggml.token_type"
#define L2_GGUF_KEY_BOS "tokenizer.ggml.bos_token_id"
#define L2_GGUF_KEY_EOS "tokenizer.ggml.eos_token_id"
#define L2_GGUF_KEY_UNK "tokenizer.ggml.unknown_token_id"
#define L2_GGUF_KEY_MERGES "tokenizer.ggml.merges"
#define L2_GGUF_KEY_PRE "tokenizer.ggml.pre"
#define L2_GGUF_KEY_EOT "tokenizer.ggml.eot_token_id"
#define L2_GGUF_KEY_EOM "tokenizer.ggml.eom_token_id"
/* The tensor of Llama 3's RoPE scaling: a divisor per frequency. */
#define L2_GGUF_ROPE_FREQS "rope_freqs.weight"

/* SentencePiece's token types, as tokenizer.ggml.token_type holds them. */
enum { L2_GGUF_TOKEN_NORMAL = 1, L2_GGUF_TOKEN_UNKNOWN = 2, L2_GGUF_TOKEN_CONTROL = 3, L2_GGUF_TOKEN_UNUSED = 5,
       L2_GGUF_TOKEN_BYTE = 6 };

/* llama.cpp's name of a tensor of this kind ("blk.3.attn_q.weight") into
 * buf; NULL for the kinds GGUF has no name for (the RoPE tables). */
const char *l2_gguf_tensor_name(l2_tensor_kind kind, int layer, char *buf, size_t size);

/* ggml's name for a tensor type ("F32", "Q4_K", ...), or NULL for a type
 * this build does not know. */
const char *l2_ggml_type_name(uint32_t type);
/* A type's block: values per block and bytes per block; 0 when unknown. */
int l2_ggml_type_block(uint32_t type, size_t *values, size_t *bytes);
/* The name of a value type ("uint32", "array", ...). */
const char *l2_gguf_value_type_name(uint32_t type);

#endif
