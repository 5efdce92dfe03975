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
    /* Q8_0 products: the scales again in slot order for one-input products
     * (l2_q8_slots in ops.h): slot i's 8 rows i + j * slots, j < 8, one
     * after the other. NULL (slots 0) for the embedding table when it is not
     * the classifier. */
    const float *slot_scales;
    int slots;
} tensor;

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
    float *slot_scales;  /* Q8_0: every product's slot_scales */
};

/* The values of tensor `kind` (of layer `layer`) of an fp32 model, as the
 * format table describes it; NULL for a tensor the file does not hold (the
 * RoPE tables). */
const float *l2_model_f32(const llama2_model *model, l2_tensor_kind kind, int layer);

/* Row `token` of the embedding table as fp32 into out[dim]. */
void model_embed(const llama2_model *model, int token, float *out);

#endif
