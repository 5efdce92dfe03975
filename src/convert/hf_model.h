/* A Hugging Face model directory as a source of llama2.c's tensors: its
 * config.json and its safetensors file (model.safetensors) or files (listed
 * in model.safetensors.index.json), mapped, never read whole. */
#ifndef LLAMA2_CONVERT_HF_MODEL_H
#define LLAMA2_CONVERT_HF_MODEL_H

#include <stddef.h>

#include "hf_config.h"
#include "hf_names.h"
#include "llama2.h"
#include "safetensors.h"

typedef struct l2_hf_source {
    const l2_safetensors *file;
    const l2_st_tensor *tensor;
} l2_hf_source;

typedef struct l2_hf_model {
    l2_hf_config config;
    l2_safetensors *files;
    size_t n_files;
    l2_hf_source *sources;  /* [L2_HF_KINDS * n_layers]: kind * n_layers + layer */
    int shared_classifier;  /* the classifier is the embedding table */
} l2_hf_model;

/* Opens the directory and checks everything before any output is written:
 * the config, each safetensors header, that every tensor the model needs is
 * there once, with a shape that agrees with config.json and an F32, F16 or
 * BF16 dtype, and that no tensor the format cannot hold (biases, other
 * modules) is. A separate lm_head equal to the embedding table counts as
 * shared, as llama2.c's export.py decides. Messages name the file and the
 * tensor. */
llama2_status l2_hf_model_open(const char *dir, l2_hf_model *m, llama2_error *err);
void l2_hf_model_close(l2_hf_model *m);

/* Rows [row0, row0 + n_rows) of a weight in llama2.c's layout (query and
 * key rows reordered, qk_order.h) as fp32 into out: n_rows * cols values,
 * the shape as l2_tensor_shape gives it (a norm is one row). The pages read
 * are released. */
void l2_hf_model_rows(const l2_hf_model *m, l2_tensor_kind kind, int layer, size_t row0, size_t n_rows,
                      float *out);

#endif
