/* The weights of a Llama model under Hugging Face's names, with their shapes
 * in llama2.c's terms. */
#ifndef LLAMA2_CONVERT_HF_NAMES_H
#define LLAMA2_CONVERT_HF_NAMES_H

#include <stddef.h>

#include "llama2.h"

typedef enum l2_role {
    L2_ROLE_TOKEN_EMBEDDING, /* model.embed_tokens.weight [vocab, dim] */
    L2_ROLE_ATTENTION_NORM,  /* model.layers.N.input_layernorm.weight [dim] */
    L2_ROLE_ATTENTION_QUERY, /* ...self_attn.q_proj.weight [n_heads * head_size, dim] */
    L2_ROLE_ATTENTION_KEY,   /* ...self_attn.k_proj.weight [n_kv_heads * head_size, dim] */
    L2_ROLE_ATTENTION_VALUE, /* ...self_attn.v_proj.weight [n_kv_heads * head_size, dim] */
    L2_ROLE_ATTENTION_OUTPUT, /* ...self_attn.o_proj.weight [dim, n_heads * head_size] */
    L2_ROLE_FFN_NORM,        /* ...post_attention_layernorm.weight [dim] */
    L2_ROLE_FFN_GATE,        /* ...mlp.gate_proj.weight [hidden, dim] (llama2.c's w1) */
    L2_ROLE_FFN_DOWN,        /* ...mlp.down_proj.weight [dim, hidden] (w2) */
    L2_ROLE_FFN_UP,          /* ...mlp.up_proj.weight [hidden, dim] (w3) */
    L2_ROLE_FINAL_NORM,      /* model.norm.weight [dim] */
    L2_ROLE_CLASSIFIER,      /* lm_head.weight [vocab, dim] */
    L2_N_ROLES
} l2_role;

/* Whether a role has one tensor per layer. */
int l2_role_per_layer(l2_role role);

/* Whether its rows are RoPE's pairs, in different orders in the two formats
 * (qk_order.h). */
int l2_role_rope_rows(l2_role role);

/* Its shape: rows x cols, or a vector of rows values (cols 1, n_dims 1). */
void l2_role_shape(l2_role role, const llama2_config *c, size_t *rows, size_t *cols, int *n_dims);

/* Its Hugging Face name, for layer `layer` when per layer, into buf. */
const char *l2_hf_name(l2_role role, int layer, char *buf, size_t cap);

/* What a Hugging Face tensor name is: its role and layer (returns 1), or
 * why it cannot be converted (returns 0, *why set; NULL *why: a tensor with
 * no part in the model, to be ignored). n_layers bounds the layer numbers. */
int l2_hf_parse_name(const char *name, int n_layers, l2_role *role, int *layer, const char **why);

#endif
