/* The per-instruction-set kernel tables. Each getter exists only where its
 * file is compiled for the architecture (ops_avx2.c on x86, ops_neon.c on
 * aarch64); l2_kernels_for() in select.c picks among them at run time. The
 * _exact tables give the reference's bits in every entry (ops.h). */
#ifndef LLAMA2_OPS_ISA_H
#define LLAMA2_OPS_ISA_H

#include "ops.h"

#if defined(__x86_64__) || defined(__i386__)
/* AVX2 + FMA (the functions carry their own target attribute, so this exists
 * in portable builds too; only call it when the CPU has both). */
const l2_kernels *l2_kernels_avx2(void);
const l2_kernels *l2_kernels_avx2_exact(void);
/* Its int8 entries, in ops_avx2_q8.c. */
void l2_quantize_q8_avx2(int8_t *q, float *scales, const float *x, int n, int gs);
void l2_matmul_q8_avx2(float *out, int out_stride, const int8_t *xq, const float *xs, int nb, const int8_t *w,
                       const float *ws, int cols, int gs, int row_begin, int row_end);
void l2_gemv_q8_slots_avx2(float *out, const int8_t *xq, const float *xs, const int8_t *w, const void *packed,
                           int cols, int gs, int slots, int slot_begin, int slot_end);
/* The exact parts of its exact attention (l2_scores_ref, l2_values_ref's
 * bits), exported for the tests. */
void l2_scores_avx2(float *att, const float *q, const float *k, int kv_stride, int n_keys, int hs);
void l2_values_avx2(float *out, const float *att, const float *v, int kv_stride, int n_keys, int hs);
#endif

#if defined(__aarch64__)
/* Advanced SIMD (always present on aarch64). */
const l2_kernels *l2_kernels_neon(void);
const l2_kernels *l2_kernels_neon_exact(void);
void l2_values_neon(float *out, const float *att, const float *v, int kv_stride, int n_keys, int hs);
#endif

#endif
