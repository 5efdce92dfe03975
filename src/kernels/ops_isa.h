/* The per-instruction-set kernel tables. Each getter exists only where its
 * file is compiled for the architecture (ops_avx2.c on x86, ops_neon.c on
 * aarch64); l2_kernels_best() in select.c picks among them at run time. */
#ifndef LLAMA2_OPS_ISA_H
#define LLAMA2_OPS_ISA_H

#include "ops.h"

#if defined(__x86_64__) || defined(__i386__)
/* AVX2 + FMA (the functions carry their own target attribute, so this exists
 * in portable builds too; only call it when the CPU has both). */
const l2_kernels *l2_kernels_avx2(void);
#endif

#if defined(__aarch64__)
/* Advanced SIMD (always present on aarch64). */
const l2_kernels *l2_kernels_neon(void);
#endif

#endif
