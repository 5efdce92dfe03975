/* The per-instruction-set kernel tables. Each getter exists only where its
 * file is compiled for the architecture (the ops_avx* and ops_amx files on
 * x86, ops_neon.c on aarch64); l2_kernels_for() in select.c picks among them
 * at run time. The _exact tables give the reference's bits in every entry
 * (ops.h). */
#ifndef LLAMA2_OPS_ISA_H
#define LLAMA2_OPS_ISA_H

#include "ops.h"

#if defined(__x86_64__) || defined(__i386__)
/* What this CPU and OS let the kernels run (x86_features.c). Each level
 * includes the ones before it: avx2 means AVX2 + FMA; avx_vnni, AVX-VNNI
 * (256-bit VEX int8 dot products); avx512, AVX-512 F, BW and VL; avx512_vnni,
 * AVX512-VNNI; amx_int8, AMX-TILE and AMX-INT8, with the tile state enabled
 * by the OS (a Linux process still asks for it: l2_x86_request_tiles). */
typedef struct l2_x86_features {
    unsigned avx2 : 1, avx_vnni : 1, avx512 : 1, avx512_vnni : 1, amx_int8 : 1;
} l2_x86_features;
l2_x86_features l2_x86_features_read(void);
/* 1 when this process may use the AMX tile registers (asked of the OS). */
int l2_x86_request_tiles(void);

/* Every function of the x86 kernel files carries its own target attribute,
 * so that they build without -march=native; select.c hands a table out only
 * where the CPU runs its level. */

/* The x86 tables' row layout (ops.h): rows in groups of 8, one input's int8
 * rows in stripes of 8 (the AMX tables take blocks of 16 rows). */
#define X86_LAYOUT(BLOCK_ROWS) .task_rows = 8, .block_task_rows = BLOCK_ROWS, .q8_stripes = l2_q8_stripes, .stripe_rows = 8

/* AVX2 + FMA (ops_avx2.c), and the same with AVX-VNNI int8 products. */
const l2_kernels *l2_kernels_avx2(void);
const l2_kernels *l2_kernels_avx2_exact(void);
const l2_kernels *l2_kernels_avx2_vnni(void);
const l2_kernels *l2_kernels_avx2_vnni_exact(void);
/* AVX-512 F/BW/VL (ops_avx512.c), with AVX512-VNNI int8 products, and with
 * AMX-INT8 tile products for int8 prompt blocks. */
const l2_kernels *l2_kernels_avx512(void);
const l2_kernels *l2_kernels_avx512_exact(void);
const l2_kernels *l2_kernels_avx512_vnni(void);
const l2_kernels *l2_kernels_avx512_vnni_exact(void);
const l2_kernels *l2_kernels_amx(void);
const l2_kernels *l2_kernels_amx_exact(void);

/* The AVX2 fast attention (the AVX-512 table's for fewer than 4 queries),
 * the exact attention of the x86 exact tables, and its exact parts
 * (l2_scores_ref, l2_values_ref's bits), in ops_avx2.c. */
void l2_attention_avx2(float *const *out, const float *const *q, const int *n_keys, int nq, const float *k,
                       const float *v, int kv_stride, int hs, float *scratch);
void l2_attention_exact_avx2(float *const *out, const float *const *q, const int *n_keys, int nq, const float *k,
                             const float *v, int kv_stride, int hs, float *scratch);
void l2_scores_avx2(float *att, const float *q, const float *k, int kv_stride, int n_keys, int hs);
void l2_values_avx2(float *out, const float *att, const float *v, int kv_stride, int n_keys, int hs);

/* The int8 entries of ops_avx2_q8.c, built three times: with AVX2's
 * multiply-adds (_avx2), with AVX-VNNI's dot instruction (_avxvnni, in
 * ops_avx2_vnni_q8.c) and with AVX512-VNNI's on 256-bit vectors
 * (_avx512vnni, in ops_avx512_vnni_q8.c). */
void l2_quantize_q8_avx2(int8_t *q, float *scales, const float *x, int n, int gs);
#define L2_Q8_X86_ENTRIES(suffix)                                                                                  \
    void l2_matmul_q8_##suffix(float *out, int out_stride, const int8_t *xq, const float *xs, int nb,              \
                               const int8_t *w, const float *ws, int cols, int gs, int row_begin, int row_end);    \
    void l2_gemv_q8_stripes_##suffix(float *out, const int8_t *xq, const float *xs, const int8_t *w,                 \
                                   const void *packed, int cols, int gs, int stripes, int stripe_begin, int stripe_end);
L2_Q8_X86_ENTRIES(avx2)
L2_Q8_X86_ENTRIES(avxvnni)
L2_Q8_X86_ENTRIES(avx512vnni)

/* The AMX entries (ops_amx.c): the repacked copy of an int8 matrix (the
 * stripe-ordered scales of the VNNI kernels, then the weights in tile order)
 * and the product over it (ops.h, matmul_q8_packed). */
size_t l2_repack_q8_amx(void *dst, const int8_t *w, const float *ws, int rows, int cols, int gs);
void l2_matmul_q8_packed_amx(float *out, int out_stride, const int8_t *xq, const float *xs, int nb, const int8_t *w,
                             const float *ws, const void *packed, int rows, int cols, int gs, int row_begin,
                             int row_end);
#endif

#if defined(__aarch64__)
/* Advanced SIMD (always present on aarch64). */
const l2_kernels *l2_kernels_neon(void);
const l2_kernels *l2_kernels_neon_exact(void);
void l2_values_neon(float *out, const float *att, const float *v, int kv_stride, int n_keys, int hs);
#endif

#endif
