/* Writing llama2.c checkpoints: any model from a source of tensors, a file
 * rewritten to another version (the int8 export among them), and
 * random-weight models for tests and benchmarks. Used by the tools and
 * tests; not part of the public API. */
#ifndef LLAMA2_CHECKPOINT_WRITER_H
#define LLAMA2_CHECKPOINT_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "model/checkpoint_format.h"
#include "llama2.h"
#include "output_file.h"

/* Where the writer gets a model's tensors, in fp32. read_rows fills
 * out[n_rows * cols] with rows [row, row + n_rows) of the tensor of this
 * kind (of layer `layer`; 0 for the tensors that are not per layer),
 * row-major, its shape as l2_tensor_shape gives it (a norm is one row).
 * The writer asks for the tensors in file order and for the rows of each
 * from the first to the last, a bounded number at a time (at least one
 * row, about a million bytes), so a source can stream from anywhere. It
 * asks for the RoPE tables (version 0) only when has_rope_tables; without
 * them it computes them as llama2.c's export does. A source that fails
 * returns a status and fills err: the writer stops and removes its output.
 * `inputs` names the files the source reads (NULL-terminated; NULL: none),
 * which the output may not be. */
typedef struct l2_tensor_source {
    void *user;
    llama2_status (*read_rows)(void *user, l2_tensor_kind kind, int layer, size_t row, size_t n_rows, float *out,
                               llama2_error *err);
    int has_rope_tables;
    const char *const *inputs;
} l2_tensor_source;

/* Writes the model of config *c from `source` to `path`, in version
 * c->file_version (0, 1, or 2: Q8_0 with c->group_size, 0 for
 * l2_default_group_size, quantized on the way byte for byte as export.py
 * does), with one classifier when c->shared_classifier (the source is then
 * never asked for L2_TENSOR_CLASSIFIER), and c->rope_theta and c->norm_eps
 * in the header (0 or llama2.c's values: written as zeros; version 0 can
 * hold no others). Streams tensor by tensor: memory use is independent of
 * the model's size. The file is written as output_file.h says, with
 * output_flags (L2_OUTPUT_FORCE: an existing file may be replaced): never
 * over an input, and it appears complete or not at all.
 * Errors: LLAMA2_E_INVALID for a config that cannot be written (the
 * message says why), LLAMA2_E_FORMAT for a weight version 2 cannot
 * quantize (not finite), LLAMA2_E_IO (the output's fault when
 * l2_output_failure(message)), or the source's own. */
llama2_status l2_checkpoint_write(const char *path, const llama2_config *c, const l2_tensor_source *source,
                                  unsigned output_flags, llama2_error *err);

/* Rewrites any llama2.c checkpoint as version 0, 1 or 2: fp32 to fp32 keeps
 * every weight exactly (and a version 0 file's RoPE tables), fp32 to
 * version 2 quantizes with group_size (0: l2_default_group_size; it must
 * divide dim and hidden_dim; only version 2 takes one). A separate
 * classifier equal to the embedding table is stored once, as export.py
 * does. An int8 (version 2) input is refused: LLAMA2_E_INVALID "already
 * int8" to version 2, LLAMA2_E_UNSUPPORTED to fp32. A model whose rope
 * theta or RMSNorm epsilon is not llama2.c's cannot go to version 0.
 * The output is written with output_flags, never over the input. */
llama2_status l2_checkpoint_rewrite(const char *in_path, const char *out_path, int version, int group_size,
                                    unsigned output_flags, llama2_error *err);

/* An fp32 checkpoint (v0 or v1) as a version 2 (Q8_0) file, byte for byte
 * what llama2.c's export.py writes for the same weights and group size:
 * l2_checkpoint_rewrite to version 2. */
llama2_status l2_quantize_file(const char *in_path, const char *out_path, int group_size, unsigned output_flags,
                               llama2_error *err);

/* The group size picked when none is given: the largest up to 64 that
 * divides both dim and hidden_dim. */
int l2_default_group_size(int dim, int hidden_dim);

/* The config of a random model: its shape and its format (file_version 0 or
 * 1: fp32; 2: Q8_0 with group_size, 0 for l2_default_group_size), with
 * llama2.c's rope theta and RMSNorm epsilon. */
llama2_config l2_random_model_config(int dim, int hidden_dim, int n_layers, int n_heads, int n_kv_heads,
                                     int vocab_size, int seq_len, int shared_classifier, int file_version,
                                     int group_size);

/* Writes a model of config *c (as l2_checkpoint_write) with random weights
 * drawn from `seed`: each tensor from its own stream, so every version
 * holds the same weights. Weights are scaled so that activations stay in a
 * sane range through every layer. Written with output_flags. */
llama2_status l2_write_random_model(const char *path, const llama2_config *c, uint64_t seed, unsigned output_flags,
                                    llama2_error *err);

#endif
