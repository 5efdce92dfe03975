/* Hugging Face's names of a Llama model's weights (LlamaForCausalLM's
 * state dict), one table for both directions of conversion. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hf_names.h"

#define LAYER_PREFIX "model.layers."

/* A per-layer tensor is LAYER_PREFIX "<N>." name; the others are name. */
static const char *const names[L2_HF_KINDS] = {
    [L2_TENSOR_TOKEN_EMBEDDING] = "model.embed_tokens.weight",
    [L2_TENSOR_ATTENTION_NORM] = "input_layernorm.weight",
    [L2_TENSOR_ATTENTION_QUERY] = "self_attn.q_proj.weight",
    [L2_TENSOR_ATTENTION_KEY] = "self_attn.k_proj.weight",
    [L2_TENSOR_ATTENTION_VALUE] = "self_attn.v_proj.weight",
    [L2_TENSOR_ATTENTION_OUTPUT] = "self_attn.o_proj.weight",
    [L2_TENSOR_FFN_NORM] = "post_attention_layernorm.weight",
    [L2_TENSOR_FFN_GATE] = "mlp.gate_proj.weight",
    [L2_TENSOR_FFN_DOWN] = "mlp.down_proj.weight",
    [L2_TENSOR_FFN_UP] = "mlp.up_proj.weight",
    [L2_TENSOR_FINAL_NORM] = "model.norm.weight",
    [L2_TENSOR_CLASSIFIER] = "lm_head.weight",
};

/* Tensors of a layer that the format has no place for. */
static const struct {
    const char *suffix, *why; /* why NULL: ignored */
} extras[] = {
    {"self_attn.q_proj.bias", "attention biases are not supported"},
    {"self_attn.k_proj.bias", "attention biases are not supported"},
    {"self_attn.v_proj.bias", "attention biases are not supported"},
    {"self_attn.o_proj.bias", "attention biases are not supported"},
    {"mlp.gate_proj.bias", "MLP biases are not supported"},
    {"mlp.down_proj.bias", "MLP biases are not supported"},
    {"mlp.up_proj.bias", "MLP biases are not supported"},
    /* Older checkpoints store RoPE's frequencies: derived, not weights. */
    {"self_attn.rotary_emb.inv_freq", NULL},
};

int l2_hf_rope_rows(l2_tensor_kind kind) { return kind == L2_TENSOR_ATTENTION_QUERY || kind == L2_TENSOR_ATTENTION_KEY; }

const char *l2_hf_name(l2_tensor_kind kind, int layer, char *buf, size_t cap) {
    if (l2_tensor_table[kind].per_layer)
        snprintf(buf, cap, LAYER_PREFIX "%d.%s", layer, names[kind]);
    else
        snprintf(buf, cap, "%s", names[kind]);
    return buf;
}

void l2_hf_shape(const llama2_config *c, l2_tensor_kind kind, uint64_t shape[2], int *n_dims) {
    size_t rows, cols;
    l2_tensor_shape(c, kind, &rows, &cols);
    if (l2_tensor_table[kind].matrix) {
        shape[0] = rows;
        shape[1] = cols;
        *n_dims = 2;
    } else {
        shape[0] = cols; /* a norm: one row in the format's table, a vector here */
        shape[1] = 0;
        *n_dims = 1;
    }
}

int l2_hf_parse_name(const char *name, int n_layers, l2_tensor_kind *kind, int *layer, const char **why) {
    static const char unexpected[] = "unexpected tensor: not part of a Llama model";
    *why = unexpected;
    if (strncmp(name, LAYER_PREFIX, strlen(LAYER_PREFIX)) != 0) {
        for (int k = 0; k < L2_HF_KINDS; k++)
            if (!l2_tensor_table[k].per_layer && strcmp(name, names[k]) == 0) {
                *kind = (l2_tensor_kind)k;
                *layer = 0;
                return 1;
            }
        return 0;
    }
    /* A layer number: digits without a leading zero, below n_layers. */
    const char *p = name + strlen(LAYER_PREFIX);
    long long n = 0;
    const char *digits = p;
    for (; *p >= '0' && *p <= '9'; p++)
        if (n <= n_layers) n = n * 10 + (*p - '0'); /* stays small: only "past" matters */
    if (p == digits || *p != '.' || (p - digits > 1 && digits[0] == '0')) return 0;
    if (n >= n_layers) {
        *why = "unexpected tensor: its layer number is past num_hidden_layers";
        return 0;
    }
    const char *suffix = p + 1;
    for (int k = 0; k < L2_HF_KINDS; k++)
        if (l2_tensor_table[k].per_layer && strcmp(suffix, names[k]) == 0) {
            *kind = (l2_tensor_kind)k;
            *layer = (int)n;
            return 1;
        }
    for (size_t i = 0; i < sizeof extras / sizeof extras[0]; i++)
        if (strcmp(suffix, extras[i].suffix) == 0) {
            *why = extras[i].why;
            return 0;
        }
    return 0;
}
