/* The model as the forward pass sees it: validated shapes and views of the
 * weight tensors inside the mapped (or read) checkpoint. */
#ifndef LLAMA2_MODEL_H
#define LLAMA2_MODEL_H

#include <stdint.h>

#include "checkpoint_format.h"
#include "llama2.h"

/* A rows x cols weight matrix, row-major (rows = outputs). For Q8_0 each row
 * is cols int8 values in groups of group_size, with one fp32 scale a group. */
typedef struct tensor {
    llama2_weight_type type;
    int rows, cols;
    const float *f32;     /* LLAMA2_WEIGHTS_F32 */
    const int8_t *q;      /* LLAMA2_WEIGHTS_Q8_0: rows * cols values */
    const float *scales;  /* LLAMA2_WEIGHTS_Q8_0: rows * cols / group_size */
    int group_size;
    /* LLAMA2_WEIGHTS_GGML_Q8_0 and LLAMA2_WEIGHTS_Q4_0: rows * cols / 32
     * blocks (l2_block_q8_0 or l2_block_q4_0 of ops_blocks.h);
     * LLAMA2_WEIGHTS_Q4_K, _Q5_K and _Q6_K: rows * cols / 256
     * (l2_block_q4_K, l2_block_q5_K or l2_block_q6_K of ops_kquants.h); row by row, in
     * the file's mapping. */
    const void *blocks;
    /* Q8_0: the model's kernel table's repack of this matrix (repack_q8 in
     * ops.h), or NULL (a table without one, the embedding table when it is
     * not the classifier). */
    const void *packed;
} tensor;

/* The K-quant types (256 values a block, Q8_K activations). */
static inline int l2_weights_are_k(llama2_weight_type type) {
    return type == LLAMA2_WEIGHTS_Q4_K || type == LLAMA2_WEIGHTS_Q5_K || type == LLAMA2_WEIGHTS_Q6_K;
}

/* GGUF's types held as ggml's blocks (Q8_0, Q4_0 and the K-quants). */
static inline int l2_weights_are_blocks(llama2_weight_type type) {
    return type == LLAMA2_WEIGHTS_GGML_Q8_0 || type == LLAMA2_WEIGHTS_Q4_0 || l2_weights_are_k(type);
}

typedef struct layer_weights {
    const float *attention_norm; /* [dim] RMSNorm gain before attention */
    tensor attention_query;      /* [n_heads * head_size, dim] */
    tensor attention_key;        /* [n_kv_heads * head_size, dim] */
    tensor attention_value;      /* [n_kv_heads * head_size, dim] */
    tensor attention_output;     /* [dim, n_heads * head_size] */
    const float *ffn_norm;       /* [dim] RMSNorm gain before the feed-forward block */
    tensor ffn_gate;             /* w1 [hidden_dim, dim] */
    tensor ffn_down;             /* w2 [dim, hidden_dim] */
    tensor ffn_up;               /* w3 [hidden_dim, dim] */
} layer_weights;

struct llama2_model {
    llama2_config config;
    int head_size;
    int kv_dim;
    tensor token_embedding; /* [vocab_size, dim] */
    layer_weights *layers;  /* [n_layers] */
    const float *final_norm;
    tensor classifier;      /* [vocab_size, dim]; the embedding table when shared */
    /* Version 0 files that carry them: llama2.c's RoPE tables, [seq_len,
     * head_size / 2] each. Never used to run; kept so that a rewrite of the
     * file keeps them. NULL otherwise. */
    const float *rope_cos, *rope_sin;
    /* Storage: a read-only mapping, or a buffer the file was read into. */
    void *mapping;
    size_t mapping_size;
    void *buffer;
    float *owned_scales; /* Q8_0 scales copied where the file leaves them unaligned */
    /* The kernel table for these weights (l2_kernels_for) and its repacked
     * copies of the int8 matrices (one allocation, NULL when none). */
    const struct l2_kernels *kernels;
    void *packed;
    /* The block kernels that go with it (ops_blocks.h), for ggml blocks. */
    const struct l2_block_kernels *block_kernels;
    /* And the K-quant kernels (ops_kquants.h), for Q4_K, Q5_K and Q6_K. */
    const struct l2_kquant_kernels *kquant_kernels;
    /* What the file is, for --verbose ("v1 fp32", "GGUF v3: 12 F32 tensors"). */
    char format[96];
    /* GGUF: weights converted at load (owned), and the tokenizer the file
     * carries, as llama2.c's tokenizer.bin would hold it: vocab_count
     * pieces back to back in vocab_text, their lengths and scores (NULL
     * and 0 when the file carries none). */
    void *converted;
    char *vocab_text;
    size_t *vocab_lengths;
    float *vocab_scores;
    int vocab_count;
    /* GGUF: a byte-level BPE tokenizer (tokenizer.ggml.model "gpt2") as the
     * BPE tokenizer file holds it (text/bpe_file.c), checked at load; NULL
     * when the file carries none. */
    unsigned char *bpe_file;
    size_t bpe_file_size;
    /* GGUF: rope_freqs.weight, llama.cpp's divisor of each RoPE frequency
     * (head_size / 2 of them, in the file); NULL when none. */
    const float *rope_freq_factors;
};

/* Where a tensor of a file goes in the model: a matrix, or an fp32 vector
 * (the norms and the RoPE tables). */
typedef struct tensor_place {
    tensor *matrix;
    const float **vector;
} tensor_place;

tensor_place l2_model_place(llama2_model *m, l2_tensor_kind kind, int layer);

/* The values of tensor `kind` (of layer `layer`) of an fp32 model, as the
 * format table describes it; NULL for a tensor the file does not hold (the
 * RoPE tables). */
/* Why a model with GGUF's rope_freqs.weight cannot become a llama2.c or
 * Hugging Face file (whose headers hold Llama 3's four numbers instead of a
 * divisor per frequency); %s: the header. */
#define L2_ROPE_FACTORS_REFUSED                                                                                    \
    "rope_freqs.weight (GGUF's RoPE scaling: a divisor per frequency) has no place in %s; convert the Hugging "   \
    "Face folder the file came from"

/* RoPE's frequency j (of head_size / 2) for this model, Llama 3's scaling
 * applied (rope.c). */
float l2_rope_frequency(const llama2_model *model, int j);
/* The divisor of each frequency, as GGUF's rope_freqs.weight holds them:
 * head_size / 2 into out. For a model with Llama 3's scaling. */
void l2_rope_factors(const llama2_model *model, float *out);

const float *l2_model_f32(const llama2_model *model, l2_tensor_kind kind, int layer);

/* Lays out a GGUF file (model_gguf.c) held at data: the config, the tensor
 * views, the tokenizer; m's storage is set, its other fields zero. */
llama2_status l2_gguf_model_load(llama2_model *m, const unsigned char *data, size_t size, llama2_error *err);

/* Picks the model's kernel table and makes its repacked copies of the
 * weights (after the tensors are laid out); l2_model_detach_kernels frees
 * them. Both live in model_kernels.c. */
llama2_status l2_model_attach_kernels(llama2_model *m, llama2_error *err);
void l2_model_detach_kernels(llama2_model *m);

#endif
