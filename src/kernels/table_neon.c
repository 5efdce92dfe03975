/* The neon level's tables: aarch64 Advanced SIMD, part of every aarch64
 * CPU (no run-time check). The fast table: ops_neon_vector.c's element-wise
 * kernels and ops_neon_matmul.c's fp32 product (within the tests' tolerance
 * of the reference) and the reference's attention. The exact table: the
 * reference's rmsnorm, softmax, swiglu and matmul_f32 and an attention
 * whose values sum is vectorised (ops_neon_attention.c). Both: the NEON
 * add and int8 products (the reference's bits), rows in groups of 8. */
#if defined(__aarch64__)

#include "ops_isa.h"

#define NEON_COMMON                                                                                             \
    .add = l2_add_neon, .quantize_q8 = l2_quantize_q8_neon, .matmul_q8 = l2_matmul_q8_neon, .task_rows = 8,    \
    .block_task_rows = 8

static const l2_kernels fast = {.name = "neon", .rmsnorm = l2_rmsnorm_neon, .softmax = l2_softmax_neon,
                                .swiglu = l2_swiglu_neon, .matmul_f32 = l2_matmul_f32_neon,
                                .attention = l2_attention_ref, NEON_COMMON};
static const l2_kernels exact = {.name = "neon-exact", .rmsnorm = l2_rmsnorm_ref, .softmax = l2_softmax_ref,
                                 .swiglu = l2_swiglu_ref, .matmul_f32 = l2_matmul_f32_ref,
                                 .attention = l2_attention_exact_neon, NEON_COMMON};

const l2_kernels *l2_kernels_neon(void) { return &fast; }
const l2_kernels *l2_kernels_neon_exact(void) { return &exact; }

#else

/* ISO C forbids an empty translation unit. */
typedef int l2_table_neon_unused;

#endif
