/* Writing llama2.c checkpoints: random-weight models for tests and
 * benchmarks, and the int8 (version 2) export of an fp32 file. Used by the
 * tools and tests; not part of the public API. */
#ifndef LLAMA2_CHECKPOINT_WRITER_H
#define LLAMA2_CHECKPOINT_WRITER_H

#include <stdint.h>

#include "llama2.h"

/* The config of a random model: its shape and its format (file_version 0 or
 * 1: fp32; 2: Q8_0 with group_size, 0 for l2_default_group_size). */
llama2_config l2_random_model_config(int dim, int hidden_dim, int n_layers, int n_heads, int n_kv_heads,
                                     int vocab_size, int seq_len, int shared_classifier, int file_version,
                                     int group_size);

/* Writes a model of shape *c with random weights drawn from `seed`, in
 * format c->file_version (0: legacy, 1, 2: Q8_0 with c->group_size), with a
 * shared classifier when c->shared_classifier. Weights are scaled so that
 * activations stay in a sane range through every layer. Streams tensor by
 * tensor: memory use is independent of the model size. */
llama2_status l2_write_random_model(const char *path, const llama2_config *c, uint64_t seed, llama2_error *err);

/* Reads a v0 or v1 fp32 checkpoint and writes it as a version 2 (Q8_0)
 * file, byte for byte what llama2.c's export.py writes for the same weights
 * and group size (values round half to even). group_size 0 picks the largest
 * size up to 64 that divides both dim and hidden_dim; a size that does not
 * divide both is refused. Streams tensor by tensor. */
llama2_status l2_quantize_file(const char *in_path, const char *out_path, int group_size, llama2_error *err);

/* The group size l2_quantize_file picks for a shape. */
int l2_default_group_size(int dim, int hidden_dim);

#endif
