/* The per-instruction-set kernels and tables. Each exists only where its
 * files are compiled for the architecture (the ops_avx*, ops_amx and
 * table_avx*, table_amx files on x86, the ops_neon* files and table_neon.c
 * on aarch64); l2_kernels_for() in select.c picks among the tables at run
 * time. The _exact tables give the reference's bits in every entry
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

/* Each level's tables (table_<level>.c): its fastest and its exact form. */
const l2_kernels *l2_kernels_avx2(void);
const l2_kernels *l2_kernels_avx2_exact(void);
const l2_kernels *l2_kernels_avx2_vnni(void);
const l2_kernels *l2_kernels_avx2_vnni_exact(void);
const l2_kernels *l2_kernels_avx512(void);
const l2_kernels *l2_kernels_avx512_exact(void);
const l2_kernels *l2_kernels_avx512_vnni(void);
const l2_kernels *l2_kernels_avx512_vnni_exact(void);
const l2_kernels *l2_kernels_amx(void);
const l2_kernels *l2_kernels_amx_exact(void);

/* The element-wise kernels of the 256-bit (ops_avx2_vector.c) and 512-bit
 * (ops_avx512_vector.c) levels, and their fp32 products (ops_avx2_matmul.c,
 * ops_avx512_matmul.c). */
#define L2_X86_FP32_ENTRIES(suffix)                                                                             \
    void l2_rmsnorm_##suffix(float *out, const float *x, const float *weight, int n, float eps);                \
    void l2_softmax_##suffix(float *x, int n);                                                                  \
    void l2_swiglu_##suffix(float *gate, const float *up, int n);                                               \
    void l2_add_##suffix(float *y, const float *x, int n);                                                      \
    void l2_matmul_f32_##suffix(float *out, int out_stride, const float *x, int nb, const float *w, int cols,    \
                                int row_begin, int row_end);                                                    \
    void l2_attention_##suffix(float *const *out, const float *const *q, const int *n_keys, int nq,             \
                               const float *k, const float *v, int kv_stride, int hs, float *scratch);          \
    void l2_attention_exact_##suffix(float *const *out, const float *const *q, const int *n_keys, int nq,       \
                                     const float *k, const float *v, int kv_stride, int hs, float *scratch);
L2_X86_FP32_ENTRIES(avx2)
L2_X86_FP32_ENTRIES(avx512)

/* The exact parts of the x86 exact tables' attention (l2_attention_exact_*:
 * l2_attention_ref's bits), l2_scores_ref's, l2_softmax_ref's and
 * l2_values_ref's bits, in ops_avx2_attention.c; the AVX2 attentions (fast
 * and exact) are also the AVX-512 tables' for fewer than 4 queries. */
void l2_softmax_exact_avx2(float *x, int n);
void l2_swiglu_exact_avx2(float *gate, const float *up, int n);
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
void l2_matmul_q8_packed_amx(float *out, int out_stride, const int8_t *xq, const float *xs, const int32_t *x_sums,
                             int nb, const int8_t *w, const float *ws, const void *packed, int rows, int cols, int gs,
                             int row_begin, int row_end);
/* The int8 products over panels of 16 rows (ops_q8_panels.h): the repack_q8
 * of the levels that read them (ops_q8_panels.c): the panels of w + 128
 * (avx512-vnni); the stripe-ordered scales, then the panels of w + 128
 * (avx2-vnni) or of w (avx2, avx512); and the product over them at each
 * level (ops_x86_q8_panels.h, built as ops_avx2_panels.c,
 * ops_avx2_vnni_panels.c, ops_avx512_vnni_panels.c). */
size_t l2_repack_q8_panels(void *dst, const int8_t *w, const float *ws, int rows, int cols, int gs);
size_t l2_repack_q8_stripes_panels(void *dst, const int8_t *w, const float *ws, int rows, int cols, int gs);
size_t l2_repack_q8_stripes_signed_panels(void *dst, const int8_t *w, const float *ws, int rows, int cols, int gs);
#define L2_Q8_PANEL_ENTRY(suffix)                                                                                  \
    void l2_matmul_q8_packed_##suffix(float *out, int out_stride, const int8_t *xq, const float *xs,              \
                                      const int32_t *x_sums, int nb, const int8_t *w, const float *ws,          \
                                      const void *packed, int rows, int cols, int gs, int row_begin, int row_end);
L2_Q8_PANEL_ENTRY(avx2)
L2_Q8_PANEL_ENTRY(avxvnni)
L2_Q8_PANEL_ENTRY(avx512vnni)
#endif

#if defined(__aarch64__)
/* Advanced SIMD (always present on aarch64): the tables (table_neon.c) and
 * their kernels (ops_neon_vector.c, ops_neon_attention.c,
 * ops_neon_matmul.c). */
const l2_kernels *l2_kernels_neon(void);
const l2_kernels *l2_kernels_neon_exact(void);
void l2_rmsnorm_neon(float *out, const float *x, const float *weight, int n, float eps);
void l2_softmax_neon(float *x, int n);
void l2_swiglu_neon(float *gate, const float *up, int n);
void l2_add_neon(float *y, const float *x, int n);
void l2_values_neon(float *out, const float *att, const float *v, int kv_stride, int n_keys, int hs);
void l2_attention_exact_neon(float *const *out, const float *const *q, const int *n_keys, int nq, const float *k,
                             const float *v, int kv_stride, int hs, float *scratch);
void l2_matmul_f32_neon(float *out, int out_stride, const float *x, int nb, const float *w, int cols, int row_begin,
                        int row_end);
void l2_quantize_q8_neon(int8_t *q, float *scales, const float *x, int n, int gs);
void l2_matmul_q8_neon(float *out, int out_stride, const int8_t *xq, const float *xs, int nb, const int8_t *w,
                       const float *ws, int cols, int gs, int row_begin, int row_end);
/* matmul_q8_neon's two ways, which it picks between, for the tests:
 * widening multiplies (every aarch64 CPU), and sdot (the CPUs with the dot
 * product instructions, where l2_neon_dotprod says so). */
int l2_neon_dotprod(void);
void l2_matmul_q8_neon_widening(float *out, int out_stride, const int8_t *xq, const float *xs, int nb,
                                const int8_t *w, const float *ws, int cols, int gs, int row_begin, int row_end);
void l2_matmul_q8_neon_sdot(float *out, int out_stride, const int8_t *xq, const float *xs, int nb, const int8_t *w,
                            const float *ws, int cols, int gs, int row_begin, int row_end);
#endif

#endif
