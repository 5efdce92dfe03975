/* The weights of a loaded llama2.c model by role, as fp32 rows: the source
 * when a llama2.c file is converted or rewritten. */
#ifndef LLAMA2_CONVERT_MODEL_ROWS_H
#define LLAMA2_CONVERT_MODEL_ROWS_H

#include <stddef.h>

#include "hf_names.h"
#include "llama2.h"

/* Rows [row0, row0 + n_rows) of a weight in the file's (llama2.c's) order as
 * fp32 into out; Q8_0 values are dequantized (q * scale). A norm is `dim`
 * rows of one value (l2_role_shape). */
void l2_model_rows(const llama2_model *m, l2_role role, int layer, size_t row0, size_t n_rows, float *out);

/* Drops the mapped pages of a weight, once converted, so that they stop
 * counting against the process's memory. */
void l2_model_release(const llama2_model *m, l2_role role, int layer);

#endif
