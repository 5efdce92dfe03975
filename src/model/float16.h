/* The 16-bit floats of Hugging Face checkpoints and GGUF files (IEEE binary16 "F16" and
 * bfloat16 "BF16") to and from fp32. */
#ifndef LLAMA2_FLOAT16_H
#define LLAMA2_FLOAT16_H

#include <stdint.h>

/* Exact: every F16 and BF16 value is an fp32 value. */
float l2_f16_to_f32(uint16_t h);
float l2_bf16_to_f32(uint16_t b);

/* Rounded to nearest, ties to even (as PyTorch's casts): too large gives an
 * infinity, too small a subnormal or zero; a NaN stays a (quiet) NaN. */
uint16_t l2_f32_to_f16(float f);
uint16_t l2_f32_to_bf16(float f);

#endif
