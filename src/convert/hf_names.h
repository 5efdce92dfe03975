/* The weights of a Llama model under Hugging Face's names: the format
 * table's tensor kinds (checkpoint_format.h) as LlamaForCausalLM's state
 * dict calls them, with their shapes there. */
#ifndef LLAMA2_CONVERT_HF_NAMES_H
#define LLAMA2_CONVERT_HF_NAMES_H

#include <stddef.h>
#include <stdint.h>

#include "model/checkpoint_format.h"
#include "llama2.h"

/* The kinds a Hugging Face model holds: every kind up to the classifier
 * (the RoPE tables are llama2.c's alone). */
#define L2_HF_KINDS (L2_TENSOR_CLASSIFIER + 1)

/* Whether a kind's rows are RoPE's pairs, in different orders in the two
 * formats (qk_order.h): the query and key projections. */
int l2_hf_rope_rows(l2_tensor_kind kind);

/* Its Hugging Face name (of layer `layer` when per layer) into buf. */
const char *l2_hf_name(l2_tensor_kind kind, int layer, char *buf, size_t cap);

/* Its Hugging Face shape: [rows, cols] for a matrix, [dim] for a norm. */
void l2_hf_shape(const llama2_config *c, l2_tensor_kind kind, uint64_t shape[2], int *n_dims);

/* What a Hugging Face tensor name is: its kind and layer (returns 1), or
 * why it cannot be converted (returns 0 with *why set; *why NULL: a tensor
 * with no part in the model, to be ignored). n_layers bounds the layer
 * numbers. */
int l2_hf_parse_name(const char *name, int n_layers, l2_tensor_kind *kind, int *layer, const char **why);

#endif
