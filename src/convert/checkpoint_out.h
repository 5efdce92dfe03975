/* Writing llama2.c checkpoints from a source of weights. The one place in
 * conversion that knows the checkpoint layouts: it is to become the format
 * table's streaming writer. */
#ifndef LLAMA2_CONVERT_CHECKPOINT_OUT_H
#define LLAMA2_CONVERT_CHECKPOINT_OUT_H

#include <stddef.h>

#include "hf_names.h"
#include "llama2.h"

/* llama2.c's hard-coded RoPE theta and RMSNorm epsilon. */
#define L2_LLAMA2C_THETA 10000.0f
#define L2_LLAMA2C_EPS 1e-5f

/* Where the weights come from: rows of a tensor in llama2.c's layout. */
typedef struct l2_weight_source {
    void (*rows)(void *user, l2_role role, int layer, size_t row0, size_t n_rows, float *out);
    void *user;
} l2_weight_source;

typedef struct l2_checkpoint_plan {
    llama2_config config; /* file_version, group_size and shared_classifier set */
    float rope_theta, norm_eps;
} l2_checkpoint_plan;

/* Writes the checkpoint p describes with the weights of src, whole or not
 * at all. */
llama2_status l2_write_checkpoint(const char *path, const l2_checkpoint_plan *p, const l2_weight_source *src,
                                  llama2_error *err);

#endif
