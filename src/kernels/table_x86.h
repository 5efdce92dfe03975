/* The x86 levels' tables, one macro that each level's file (table_avx2.c,
 * table_avx2_vnni.c, table_avx512.c, table_avx512_vnni.c, table_amx.c)
 * expands once with its kernels; the README's table shows them side by side.
 *
 * The fast table: the FP32 level's element-wise kernels, fp32 product and
 * attention (within the tests' tolerance of the reference), the INT8
 * level's int8 products (ops_avx2_q8.c built for it: the reference's bits)
 * over REPACK's copy of the weights, PACKED's products over that copy (or
 * NULL), and GEMV's one-input products in stripes (or NULL: PACKED then
 * takes one input too).
 * The exact table keeps the reference's rmsnorm and matmul_f32, and takes
 * the exact softmax and swiglu (ops_avx2_vector.c) and the level's exact
 * attention: every entry the reference's bits. Both take rows in groups of TASK_ROWS for one input and BLOCK_ROWS
 * for a block of inputs (the AMX tiles' and the int8 panels' 16). */
#ifndef LLAMA2_TABLE_X86_H
#define LLAMA2_TABLE_X86_H

#include "ops_isa.h"

#define X86_INT8_ENTRIES(INT8, GEMV, TASK_ROWS, BLOCK_ROWS, REPACK, PACKED)                                     \
    .quantize_q8 = l2_quantize_q8_avx2, .matmul_q8 = l2_matmul_q8_##INT8, .repack_q8 = REPACK,                   \
    .gemv_q8_stripes = GEMV, .matmul_q8_packed = PACKED, .q8_stripes = l2_q8_stripes, .stripe_rows = 8,          \
    .task_rows = TASK_ROWS, .block_task_rows = BLOCK_ROWS

#define X86_TABLES(LEVEL, NAME, FP32, INT8, GEMV, TASK_ROWS, BLOCK_ROWS, REPACK, PACKED)                       \
    static const l2_kernels fast = {                                                                             \
        .name = NAME, .rmsnorm = l2_rmsnorm_##FP32, .softmax = l2_softmax_##FP32, .swiglu = l2_swiglu_##FP32,    \
        .add = l2_add_##FP32, .matmul_f32 = l2_matmul_f32_##FP32, .attention = l2_attention_##FP32,              \
        X86_INT8_ENTRIES(INT8, GEMV, TASK_ROWS, BLOCK_ROWS, REPACK, PACKED)};                                                     \
    static const l2_kernels exact = {                                                                            \
        .name = NAME "-exact", .rmsnorm = l2_rmsnorm_ref, .softmax = l2_softmax_exact_avx2,                      \
        .swiglu = l2_swiglu_exact_avx2,                                                                          \
        .add = l2_add_##FP32, .matmul_f32 = l2_matmul_f32_ref, .attention = l2_attention_exact_##FP32,           \
        X86_INT8_ENTRIES(INT8, GEMV, TASK_ROWS, BLOCK_ROWS, REPACK, PACKED)};                                                     \
    const l2_kernels *l2_kernels_##LEVEL(void) { return &fast; }                                                 \
    const l2_kernels *l2_kernels_##LEVEL##_exact(void) { return &exact; }

#endif
