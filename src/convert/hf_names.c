/* Hugging Face's names of a Llama model's weights (LlamaForCausalLM's
 * state dict), one table for both directions of conversion. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hf_names.h"

#define LAYER_PREFIX "model.layers."

/* Per-layer tensors are LAYER_PREFIX "<N>." suffix. */
static const struct {
    const char *name; /* the whole name, or the suffix after the layer number */
    int per_layer, rope_rows;
} roles[L2_N_ROLES] = {
    [L2_ROLE_TOKEN_EMBEDDING] = {"model.embed_tokens.weight", 0, 0},
    [L2_ROLE_ATTENTION_NORM] = {"input_layernorm.weight", 1, 0},
    [L2_ROLE_ATTENTION_QUERY] = {"self_attn.q_proj.weight", 1, 1},
    [L2_ROLE_ATTENTION_KEY] = {"self_attn.k_proj.weight", 1, 1},
    [L2_ROLE_ATTENTION_VALUE] = {"self_attn.v_proj.weight", 1, 0},
    [L2_ROLE_ATTENTION_OUTPUT] = {"self_attn.o_proj.weight", 1, 0},
    [L2_ROLE_FFN_NORM] = {"post_attention_layernorm.weight", 1, 0},
    [L2_ROLE_FFN_GATE] = {"mlp.gate_proj.weight", 1, 0},
    [L2_ROLE_FFN_DOWN] = {"mlp.down_proj.weight", 1, 0},
    [L2_ROLE_FFN_UP] = {"mlp.up_proj.weight", 1, 0},
    [L2_ROLE_FINAL_NORM] = {"model.norm.weight", 0, 0},
    [L2_ROLE_CLASSIFIER] = {"lm_head.weight", 0, 0},
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

int l2_role_per_layer(l2_role role) { return roles[role].per_layer; }

int l2_role_rope_rows(l2_role role) { return roles[role].rope_rows; }

void l2_role_shape(l2_role role, const llama2_config *c, size_t *rows, size_t *cols, int *n_dims) {
    const size_t dim = (size_t)c->dim, hidden = (size_t)c->hidden_dim, vocab = (size_t)c->vocab_size;
    const size_t kv_dim = dim / (size_t)c->n_heads * (size_t)c->n_kv_heads;
    *n_dims = 2;
    *cols = dim;
    switch (role) {
    case L2_ROLE_TOKEN_EMBEDDING:
    case L2_ROLE_CLASSIFIER: *rows = vocab; break;
    case L2_ROLE_ATTENTION_QUERY:
    case L2_ROLE_ATTENTION_OUTPUT: *rows = dim; break;
    case L2_ROLE_ATTENTION_KEY:
    case L2_ROLE_ATTENTION_VALUE: *rows = kv_dim; break;
    case L2_ROLE_FFN_GATE:
    case L2_ROLE_FFN_UP: *rows = hidden; break;
    case L2_ROLE_FFN_DOWN:
        *rows = dim;
        *cols = hidden;
        break;
    default: /* the norms */
        *rows = dim;
        *cols = 1;
        *n_dims = 1;
        break;
    }
}

const char *l2_hf_name(l2_role role, int layer, char *buf, size_t cap) {
    if (roles[role].per_layer)
        snprintf(buf, cap, LAYER_PREFIX "%d.%s", layer, roles[role].name);
    else
        snprintf(buf, cap, "%s", roles[role].name);
    return buf;
}

int l2_hf_parse_name(const char *name, int n_layers, l2_role *role, int *layer, const char **why) {
    static const char unexpected[] = "unexpected tensor: not part of a Llama model";
    *why = unexpected;
    if (strncmp(name, LAYER_PREFIX, strlen(LAYER_PREFIX)) != 0) {
        for (int r = 0; r < L2_N_ROLES; r++)
            if (!roles[r].per_layer && strcmp(name, roles[r].name) == 0) {
                *role = (l2_role)r;
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
    for (int r = 0; r < L2_N_ROLES; r++)
        if (roles[r].per_layer && strcmp(suffix, roles[r].name) == 0) {
            *role = (l2_role)r;
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
