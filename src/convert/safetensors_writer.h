/* Writing safetensors files: the header for a list of tensors laid out one
 * after the other, and values converted from fp32 to a file dtype. */
#ifndef LLAMA2_CONVERT_SAFETENSORS_WRITER_H
#define LLAMA2_CONVERT_SAFETENSORS_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "llama2.h"
#include "safetensors.h"

typedef struct l2_st_entry {
    char name[128];
    l2_dtype dtype; /* F32, F16 or BF16 */
    int n_dims;     /* 1 or 2 */
    uint64_t shape[2];
} l2_st_entry;

/* The bytes before the data: the 8-byte length, then the JSON header
 * ({"__metadata__": {"format": "pt"}, then each entry in order with its
 * data right after the previous one's}) padded with spaces so that the data
 * starts 8-byte aligned. In a malloc'd buffer. */
llama2_status l2_safetensors_header(const l2_st_entry *entries, size_t n, unsigned char **out, size_t *len,
                                    llama2_error *err);

/* n fp32 values as dtype (rounded to nearest even) into out. */
void l2_values_from_f32(l2_dtype dtype, const float *src, size_t n, void *out);

#endif
