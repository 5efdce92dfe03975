/* ggml's K-quant quantizers (Q4_K, Q5_K and Q6_K), as ggml's reference
 * defines them with no importance matrix: the facts of
 * quantize_row_q4_K_ref and quantize_row_q5_K_ref (make_qkx2_quants: a
 * scale and a min per 32 values, fitted by weighted least squares over 21
 * candidate scales for Q4_K, 16 for Q5_K) and quantize_row_q6_K_ref
 * (make_qx_quants: a scale per 16 values, the best of 19 candidates by
 * x^2-weighted error), written here. Used by the GGUF writer; not part of
 * the public API. */
#ifndef LLAMA2_KQUANTIZE_H
#define LLAMA2_KQUANTIZE_H

#include <stddef.h>

/* n values (a multiple of 256, all finite) into n / 256 blocks of 144
 * (Q4_K), 176 (Q5_K) or 210 (Q6_K) bytes at out. */
void l2_quantize_q4_K(const float *x, size_t n, unsigned char *out);
void l2_quantize_q5_K(const float *x, size_t n, unsigned char *out);
void l2_quantize_q6_K(const float *x, size_t n, unsigned char *out);

#endif
