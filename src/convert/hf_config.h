/* A Hugging Face model's config.json, for LlamaForCausalLM. */
#ifndef LLAMA2_CONVERT_HF_CONFIG_H
#define LLAMA2_CONVERT_HF_CONFIG_H

#include "llama2.h"

typedef struct l2_hf_config {
    /* dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len,
     * the rope_scaling fields (llama3 type); the other fields are left 0. */
    llama2_config shape;
    float rope_theta;        /* rope_theta, default 10000 */
    float norm_eps;          /* rms_norm_eps, default 1e-6 (Hugging Face's) */
    int tie_word_embeddings; /* default false */
} l2_hf_config;

/* Reads and checks config.json: a Llama causal language model (architecture
 * LlamaForCausalLM, model_type llama) with SiLU, rope_scaling of type llama3 or none, no biases,
 * and a shape the engine runs. Fields absent from the file take Hugging
 * Face's defaults where it has them (num_key_value_heads = the heads,
 * max_position_embeddings 2048). Messages begin with the path. */
llama2_status l2_hf_config_read(const char *path, l2_hf_config *out, llama2_error *err);

/* The same on JSON text in memory; path is only for messages. */
llama2_status l2_hf_config_parse(const char *text, size_t len, const char *path, l2_hf_config *out,
                                 llama2_error *err);

#endif
