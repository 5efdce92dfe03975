/*
 * llama2.c's checkpoint format, described once (docs/FORMAT.md in prose):
 * the headers of versions 0, 1 and 2, and one table of the tensors that
 * follow them (name, shape from the config, which are weight matrices) with
 * their order in each version. The reader (checkpoint.c) lays the file out
 * by walking the table; the writer (checkpoint_writer.c) writes by walking
 * the same table, for random models, the quantizer, rewrites and the
 * Hugging Face converter.
 */
#ifndef LLAMA2_CHECKPOINT_FORMAT_H
#define LLAMA2_CHECKPOINT_FORMAT_H

#include <stddef.h>

#include "llama2.h"

#define L2_CHECKPOINT_MAGIC 0x616b3432u /* "ak42" read as a little-endian uint32 */
#define L2_V0_HEADER_BYTES 28           /* 7 int32 */
#define L2_V1_HEADER_BYTES 256          /* versions 1 and 2, zero-padded */

/* The header extension in the padding of versions 1 and 2: two fp32 values,
 * each 0 for llama2.c's hard-coded value. */
#define L2_HEADER_ROPE_THETA_AT 64
#define L2_HEADER_NORM_EPS_AT 68
/* RoPE scaling of type llama3: fp32 factor, low and high frequency factors,
 * int32 original context; all zero: no scaling. */
#define L2_HEADER_ROPE_SCALING_AT 72
#define L2_HEADER_ROPE_SCALING_BYTES 16
#define L2_DEFAULT_ROPE_THETA 10000.0f
#define L2_DEFAULT_NORM_EPS 1e-5f

/* Every kind of tensor a checkpoint can hold. */
typedef enum l2_tensor_kind {
    L2_TENSOR_TOKEN_EMBEDDING,
    L2_TENSOR_ATTENTION_NORM,
    L2_TENSOR_ATTENTION_QUERY,
    L2_TENSOR_ATTENTION_KEY,
    L2_TENSOR_ATTENTION_VALUE,
    L2_TENSOR_ATTENTION_OUTPUT,
    L2_TENSOR_FFN_NORM,
    L2_TENSOR_FFN_GATE,
    L2_TENSOR_FFN_DOWN,
    L2_TENSOR_FFN_UP,
    L2_TENSOR_FINAL_NORM,
    L2_TENSOR_CLASSIFIER,
    L2_TENSOR_ROPE_COS, /* version 0 only: RoPE tables llama2.c no longer reads */
    L2_TENSOR_ROPE_SIN,
    L2_TENSOR_KINDS
} l2_tensor_kind;

/* A tensor's rows or columns, as a function of the config. */
typedef enum l2_extent {
    L2_EXTENT_ONE,
    L2_EXTENT_DIM,
    L2_EXTENT_HIDDEN,
    L2_EXTENT_KV_DIM,    /* n_kv_heads * head_size */
    L2_EXTENT_VOCAB,
    L2_EXTENT_SEQ_LEN,
    L2_EXTENT_HALF_HEAD, /* head_size / 2 */
} l2_extent;

typedef struct l2_tensor_info {
    const char *name;      /* llama2.c's name for it (run.c's TransformerWeights) */
    l2_extent rows, cols;  /* row-major; a vector is one row */
    unsigned char per_layer; /* one per layer, stored layer after layer */
    unsigned char matrix;    /* a weight matrix: int8 Q8_0 in version 2 (the rest stays fp32) */
} l2_tensor_info;

extern const l2_tensor_info l2_tensor_table[L2_TENSOR_KINDS];

/* The kinds in file order for a version (0, 1 or 2; 2 is 1's order), *count
 * of them. Which of them a file holds: see l2_tensor_present. */
const l2_tensor_kind *l2_tensor_order(int version, int *count);

/* Whether a file of config c holds tensors of this kind: the classifier
 * only when not shared, the RoPE tables only in version 0 (and there only
 * when with_rope: llama2.c reads files without them when the classifier is
 * shared). */
int l2_tensor_present(const llama2_config *c, l2_tensor_kind kind, int with_rope);

/* The rows and columns of one tensor of this kind for a valid config. */
void l2_tensor_shape(const llama2_config *c, l2_tensor_kind kind, size_t *rows, size_t *cols);

/* How a tensor of this kind is stored in a file of config c: fp32, or Q8_0
 * (rows * cols int8 values, then rows * cols / group_size fp32 scales). */
llama2_weight_type l2_tensor_type(const llama2_config *c, l2_tensor_kind kind);

/* One tensor of a file, as l2_tensor_walk gives them. */
typedef struct l2_file_tensor {
    l2_tensor_kind kind;
    int layer;         /* 0 for the tensors that are not per layer */
    size_t rows, cols;
    llama2_weight_type type;
    size_t bytes;      /* its size in the file */
} l2_file_tensor;

/* Walks the tensors of a file of config c in file order:
 *     l2_tensor_walk walk = l2_tensor_walk_start(c, with_rope);
 *     l2_file_tensor t;
 *     while (l2_tensor_walk_next(&walk, &t)) ...
 * The config must be valid and its size checked (l2_checkpoint_bytes). */
typedef struct l2_tensor_walk {
    const llama2_config *config;
    int with_rope;
    int index, n_kinds, layer;
    const l2_tensor_kind *order;
} l2_tensor_walk;

l2_tensor_walk l2_tensor_walk_start(const llama2_config *c, int with_rope);
int l2_tensor_walk_next(l2_tensor_walk *walk, l2_file_tensor *out);

/* The bytes of a whole file of config c (header included) into *total, in
 * a time independent of n_layers; returns 0 when the count overflows. */
int l2_checkpoint_bytes(const llama2_config *c, int with_rope, size_t *total);

/* Checks a shape: positive sizes, heads that divide, an even head size and,
 * for Q8_0, a group size dividing dim and hidden_dim. Failures return
 * `status` with a message starting with `prefix`. */
llama2_status l2_check_shape(const llama2_config *c, llama2_status status, const char *prefix, llama2_error *err);

/* Reads the header at the start of a file of `size` bytes into *c (shape,
 * format, rope_theta and norm_eps: llama2.c's values where the file records
 * none) and *header_bytes, and validates it (LLAMA2_E_FORMAT or
 * LLAMA2_E_UNSUPPORTED with a message). */
llama2_status l2_header_decode(const unsigned char *data, size_t size, llama2_config *c, size_t *header_bytes,
                               llama2_error *err);

/* Writes the header of config c (file_version, the shape, shared_classifier,
 * group_size for version 2, rope_theta and norm_eps: 0 or llama2.c's value
 * are written as zeros) into out; returns its length in bytes. Version 0
 * cannot record other values of rope_theta and norm_eps: l2_header_check
 * refuses them first. */
size_t l2_header_encode(const llama2_config *c, unsigned char out[L2_V1_HEADER_BYTES]);

/* Whether l2_header_encode can write config c's format fields faithfully:
 * a version of 0, 1 or 2, rope_theta and norm_eps finite and positive (or
 * 0 for llama2.c's) and, in version 0, llama2.c's. LLAMA2_E_INVALID with a
 * message saying why not. */
llama2_status l2_header_check(const llama2_config *c, llama2_error *err);

#endif
