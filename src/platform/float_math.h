/* expf, sinf, cosf and powf with glibc's bits on every C runtime.
 *
 * The engine's text depends on the last bit of these functions (an int8
 * model rounds its activations to integers, and one ulp in a RoPE table or
 * an exponential can flip a rounding and then a token), and C runtimes
 * differ there: MinGW-w64's expf is (float)exp(x), its sinf and cosf round
 * otherwise than glibc's for about 1 input in 75. llama2.c's recorded
 * outputs were made with glibc, so these follow glibc's algorithms step by
 * step in double arithmetic, with glibc's tables and polynomials, and give
 * its result for every input in the ranges below on any C runtime, with or
 * without a fused multiply-add instruction. tests/test_float_math.c checks
 * them against glibc input by input. Not part of the public API. */
#ifndef LLAMA2_FLOAT_MATH_H
#define LLAMA2_FLOAT_MATH_H

#include <stdint.h>

/* e^x, for every float x (softmax and SiLU take any). */
float l2_expf(float x);
/* l2_expf's table (the bits of 2^(i/32), less i << 47) and exp2
 * polynomial, for the kernels that compute it on vectors, lane by lane
 * the same operations (kernels/ops_avx2_util.h: expf8_exact). */
extern const uint64_t l2_exp2_table[32];
extern const double l2_exp2_poly[3];
/* sin x and cos x, for every float x (RoPE's angles are pos * frequency,
 * at least 0 and below the context length). */
float l2_sinf(float x);
float l2_cosf(float x);
/* x^y, for every float x and y (RoPE's frequencies are
 * theta^(-2j / head_size): x the model's rope theta, y in [0, 1)). */
float l2_powf(float x, float y);

#endif
