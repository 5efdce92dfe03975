/* ggml's tensor types as fp32 values, computed as ggml's reference
 * dequantization computes them (the same float operations in the same
 * order), for the types a GGUF model may hold. Not part of the public
 * API. */
#ifndef LLAMA2_GGML_DEQUANT_H
#define LLAMA2_GGML_DEQUANT_H

#include <stddef.h>
#include <stdint.h>

/* n values (whole blocks of the type) of type `type` (an l2_ggml_type:
 * F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K or Q6_K) at src into out[n]; 0 for a
 * type this file does not convert. */
int l2_ggml_dequantize(uint32_t type, const unsigned char *src, size_t n, float *out);

#endif
