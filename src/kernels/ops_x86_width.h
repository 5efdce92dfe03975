/* One x86 vector width as names that code written once for both widths
 * uses (ops_avx2_vector.c, ops_x86_tiles.h, ops_x86_matmul_f32.h,
 * ops_x86_q8_panels.h). The including file defines X86_W, 256 (AVX2 + FMA)
 * or 512 (AVX-512), first.
 * Each name below shows its two widths side by side: V_SEL(256-bit form,
 * 512-bit form). The 512-bit steps that reduce or exponentiate do it on 8
 * lanes at a time with the AVX2 steps (ops_avx512_util.h), so that both
 * widths give the same bits where the tables say so. */
#ifndef LLAMA2_OPS_X86_WIDTH_H
#define LLAMA2_OPS_X86_WIDTH_H

#if X86_W == 512
#include "ops_avx512_util.h"
#elif X86_W == 256
#include "ops_avx2_util.h"
#else
#error "X86_W must be 256 or 512"
#endif

#define X86_CAT_(a, b) a##b
#define X86_CAT(a, b) X86_CAT_(a, b)
#define V_SEL_256(a, b) a
#define V_SEL_512(a, b) b
#define V_SEL(a, b) X86_CAT(V_SEL_, X86_W)(a, b)

/* The level's name in exported symbols, its target attributes. */
#define V_NAME V_SEL(avx2, avx512)
#define V_FN V_SEL(AVX2_FN, AVX512_FN)
#define V_INLINE V_SEL(AVX2_INLINE, AVX512_INLINE)

/* The vector, its lanes, and the intrinsic _mm256_<op> or _mm512_<op>. */
#define VEC X86_CAT(__m, X86_W)
#define V_LANES (X86_W / 32)
#define V_OP(op) X86_CAT(X86_CAT(_mm, X86_W), X86_CAT(_, op))

/* A mask of the first n lanes (1..V_LANES), no lanes, and the loads and
 * stores under a mask (lanes outside it: 0, or src's; not stored). */
#define VMASK V_SEL(__m256i, __mmask16)
#define v_tail(n) V_SEL(tail_mask(n), tail16(n))
#define v_no_mask() V_SEL(_mm256_setzero_si256(), (__mmask16)0)
#define v_maskz_load(m, p) V_SEL(_mm256_maskload_ps(p, m), _mm512_maskz_loadu_ps(m, p))
#define v_mask_load_or(src, m, p)                                                                               \
    V_SEL(_mm256_blendv_ps(src, _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m)), _mm512_mask_loadu_ps(src, m, p))
#define v_mask_store(p, m, v) V_SEL(_mm256_maskstore_ps(p, m, v), _mm512_mask_storeu_ps(p, m, v))

/* *p in every lane; the lanes folded to 8 (lane j + lane j + 8); their sum
 * and their largest; e^x in every lane. */
#define v_bcast(p) V_SEL(_mm256_broadcast_ss(p), _mm512_set1_ps(*(p)))
#define v_fold8(v) V_SEL(v, fold16(v))
#define v_hsum(v) V_SEL(hsum8(v), hsum16(v))
#define v_hmax(v) V_SEL(hmax8(v), hmax16(v))
#define v_exp(v) V_SEL(exp8(v), exp16(v))

#endif
