/* Reading safetensors files: an 8-byte little-endian header length, a JSON
 * header {"name": {"dtype", "shape", "data_offsets"}, "__metadata__": ...},
 * then the tensors' bytes. The file is mapped, never read whole. */
#ifndef LLAMA2_CONVERT_SAFETENSORS_H
#define LLAMA2_CONVERT_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "llama2.h"

/* The element types conversion reads and writes; every other safetensors
 * dtype is L2_DTYPE_OTHER (its tensors can be skipped, not converted). */
typedef enum l2_dtype { L2_DTYPE_F32, L2_DTYPE_F16, L2_DTYPE_BF16, L2_DTYPE_OTHER } l2_dtype;

#define L2_ST_MAX_DIMS 8
#define L2_ST_MAX_HEADER ((uint64_t)100 << 20) /* the format's own limit */

typedef struct l2_st_tensor {
    char *name;
    char dtype_name[8]; /* as the header spells it: "BF16" */
    l2_dtype dtype;
    int n_dims;
    uint64_t shape[L2_ST_MAX_DIMS];
    size_t offset; /* of its first byte, from the start of the file */
    size_t bytes;
} l2_st_tensor;

typedef struct l2_safetensors {
    char *path;            /* the file, as given (for messages) */
    const unsigned char *data; /* the whole file */
    size_t size;
    int mapped;            /* 1: data is our mapping of the file */
    l2_st_tensor *tensors; /* sorted by name */
    size_t n_tensors;
} l2_safetensors;

/* Validates the header of the size bytes at data (which the caller keeps)
 * and lists its tensors: each with a known dtype, a shape of at most 8
 * dimensions, and data offsets inside the data that hold exactly the shape's
 * bytes, no two tensors overlapping. `path` is used in messages, which read
 * "<path>: <tensor>: <what>". */
llama2_status l2_safetensors_parse(const void *data, size_t size, const char *path, l2_safetensors *out,
                                   llama2_error *err);

/* Maps the file at path and parses it. */
llama2_status l2_safetensors_open(const char *path, l2_safetensors *out, llama2_error *err);

/* Unmaps and frees; st may be zeroed or half opened. */
void l2_safetensors_close(l2_safetensors *st);

/* The tensor of that name, NULL if none. */
const l2_st_tensor *l2_safetensors_find(const l2_safetensors *st, const char *name);

/* Bytes per element of a dtype the reader knows. */
size_t l2_dtype_size(l2_dtype dtype);
/* "F32", "F16", "BF16". */
const char *l2_dtype_name(l2_dtype dtype);

/* n values of type dtype (F32, F16 or BF16) at src as fp32 into out. */
void l2_values_to_f32(l2_dtype dtype, const void *src, size_t n, float *out);

/* Tells the kernel that the mapped pages holding [offset, offset + bytes) of
 * the file are no longer needed, so that they stop counting against this
 * process's memory (they are read again from the file if touched). */
void l2_safetensors_release(const l2_safetensors *st, size_t offset, size_t bytes);

#endif
