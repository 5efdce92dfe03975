/*
 * The Q4_K and Q6_K panels (ops_kquants.h) of the AVX512-VNNI levels'
 * K-quant table (made in ops_kquants_avx2.c, AVX2's entries but these) on
 * 512-bit vectors, a whole panel (16 rows, a row a 32-bit lane) at once. The
 * stored nibbles (0-15) are VNNI's unsigned operand against the signed
 * Q8_K activations (vpdpbusd: each sub-block's dot an exact int32), times
 * the sub-block's 6-bit scale in int32; the mins times the activations'
 * sums of 32 by vpdpwssd; Q6_K's stored values (0-63) the same way, less
 * 32 times the activations' sums of 16, times the signed 8-bit scales.
 * The float steps are the panel reference's, lane by lane, so the
 * results are its bits.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ops_blocks.h"
#include "ops_kquants.h"

#if defined(__x86_64__) || defined(__i386__)

#include "ops_isa.h"
#include "ops_x86.h"
#include "ops_avx512_panels.h"

#define FN L2_TARGET(L2_AVX512_VNNI)
#define INLINE L2_INLINE(L2_AVX512_VNNI)
#define UNROLL(n) L2_UNROLL_NATIVE(n)

/* Input bytes 4k..4k+3 of q in every 32-bit lane (a broadcast load). */
INLINE __m512i piece_512(const int8_t *q, int k) {
    int32_t v;
    memcpy(&v, q + 4 * k, sizeof v);
    return _mm512_set1_epi32(v);
}

/* The activations' sums of sub-blocks 2m and 2m + 1 as two int16 in one
 * int32 (|sum| <= 32 * 127), against the panel's min pairs. */
INLINE __m512i sum_pair(const l2_block_q8_K *x, int m) {
    const int s0 = x->bsums[4 * m] + x->bsums[4 * m + 1], s1 = x->bsums[4 * m + 2] + x->bsums[4 * m + 3];
    return _mm512_set1_epi32((int32_t)((uint32_t)(uint16_t)s0 | (uint32_t)(uint16_t)s1 << 16));
}

/* Block b of a panel against ni inputs from i0 (the step of
 * ops_avx512_panels.h's loop): per sub-block its 8 nibble vectors made
 * once, then per input two chains of four dot steps, their sum times the
 * scales added to the input's isum; then the mins, and the two float
 * steps. */
INLINE void q4_K_block(__m512 *acc, const uint8_t *panel, int b, int i0, int ni, const l2_block_q8_K *x0,
                       size_t x_stride) {
    const __m512i low = _mm512_set1_epi8(0x0F);
    const l2_block_q8_K *x = x0 + (size_t)i0 * x_stride;
    const uint8_t *v = panel + (size_t)b * L2_Q4_K_PANEL_BLOCK;
    __m512i isum[8];
    UNROLL(8)
    for (int i = 0; i < ni; i++)
        isum[i] = _mm512_setzero_si512();
    for (int c = 0; c < 4; c++) {
        /* 4 x 10 lines ahead: a block's 37 and 3 more. */
        UNROLL(10)
        for (int t = 0; t < 10; t++)
            _mm_prefetch((const char *)(v + L2_PANEL_PREFETCH + 64 * (10 * c + t)), L2_PANEL_PREFETCH_HINT);
        const uint8_t *chunk = v + 512 * c;
        UNROLL(2)
        for (int h = 0; h < 2; h++) {
            const int j = 2 * c + h;
            __m512i nib[8];
            UNROLL(8)
            for (int k = 0; k < 8; k++) {
                const __m512i packed = _mm512_loadu_si512((const void *)(chunk + 64 * k));
                nib[k] = _mm512_and_si512(h ? _mm512_srli_epi16(packed, 4) : packed, low);
            }
            const __m512i scale =
                _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(v + 2048 + 16 * j)));
            UNROLL(8)
            for (int i = 0; i < ni; i++) {
                const int8_t *q = x[(size_t)i * x_stride + (size_t)b].qs + 32 * j;
                __m512i c0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), nib[0], piece_512(q, 0));
                __m512i c1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), nib[1], piece_512(q, 1));
                UNROLL(8)
                for (int k = 2; k < 8; k += 2) {
                    c0 = _mm512_dpbusd_epi32(c0, nib[k], piece_512(q, k));
                    c1 = _mm512_dpbusd_epi32(c1, nib[k + 1], piece_512(q, k + 1));
                }
                isum[i] = _mm512_add_epi32(isum[i], _mm512_mullo_epi32(_mm512_add_epi32(c0, c1), scale));
            }
        }
    }
    /* The mins (0-63) widened to int16, a pair a row. */
    __m512i mins[4];
    UNROLL(4)
    for (int m = 0; m < 4; m++)
        mins[m] = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(const void *)(v + 2176 + 32 * m)));
    /* vcvtph2ps: exact for every fp16 value. */
    const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(v + 2304)));
    const __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(v + 2336)));
    UNROLL(8)
    for (int i = 0; i < ni; i++) {
        const l2_block_q8_K *xb = &x[(size_t)i * x_stride + (size_t)b];
        __m512i m = _mm512_dpwssd_epi32(_mm512_setzero_si512(), mins[0], sum_pair(xb, 0));
        UNROLL(4)
        for (int k = 1; k < 4; k++)
            m = _mm512_dpwssd_epi32(m, mins[k], sum_pair(xb, k));
        const __m512 dx = _mm512_set1_ps(xb->d);
        acc[i] = _mm512_add_ps(acc[i], _mm512_mul_ps(_mm512_cvtepi32_ps(isum[i]), _mm512_mul_ps(d, dx)));
        acc[i] = _mm512_sub_ps(acc[i], _mm512_mul_ps(_mm512_cvtepi32_ps(m), _mm512_mul_ps(dmin, dx)));
    }
}

/* Block b of a Q6_K panel against ni inputs from i0 (the step of
 * ops_avx512_panels.h's loop): per 32 values (g) its 8 vectors of stored
 * values (0-63: the low 4 bits from ql, the high 2 from qh) made once,
 * then per input a chain of four dot steps for each 16, less 32 times the
 * activations' sum of those 16, times their scale, added to the input's
 * isum; then the float step. */
INLINE void q6_K_block(__m512 *acc, const uint8_t *panel, int b, int i0, int ni, const l2_block_q8_K *x0,
                       size_t x_stride) {
    const __m512i low = _mm512_set1_epi8(0x0F), high = _mm512_set1_epi8(0x30);
    const l2_block_q8_K *x = x0 + (size_t)i0 * x_stride;
    const uint8_t *v = panel + (size_t)b * L2_Q6_K_PANEL_BLOCK;
    __m512i isum[8];
    UNROLL(8)
    for (int i = 0; i < ni; i++)
        isum[i] = _mm512_setzero_si512();
    for (int g = 0; g < 8; g++) {
        /* 8 x 7 lines ahead: a block's 53 and 3 more. */
        UNROLL(7)
        for (int t = 0; t < 7; t++)
            _mm_prefetch((const char *)(v + L2_PANEL_PREFETCH + 64 * (7 * g + t)), L2_PANEL_PREFETCH_HINT);
        const int h = g / 4, k = g % 4;
        const uint8_t *ql = v + 512 * (2 * h + k % 2), *qh = v + 2048 + 512 * h;
        __m512i q[8];
        UNROLL(8)
        for (int t = 0; t < 8; t++) {
            const __m512i l4 = _mm512_loadu_si512((const void *)(ql + 64 * t));
            const __m512i h2 = _mm512_loadu_si512((const void *)(qh + 64 * t));
            /* qh's bits 2k and 2k + 1 to bits 4 and 5 (the bits a
             * 16-bit shift carries across bytes are masked off). */
            const __m512i up = k == 0   ? _mm512_slli_epi16(h2, 4)
                               : k == 1 ? _mm512_slli_epi16(h2, 2)
                               : k == 2 ? h2
                                        : _mm512_srli_epi16(h2, 2);
            q[t] = _mm512_or_si512(_mm512_and_si512(k >= 2 ? _mm512_srli_epi16(l4, 4) : l4, low),
                                   _mm512_and_si512(up, high));
        }
        const __m512i s0 = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(v + 3072 + 32 * g)));
        const __m512i s1 =
            _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(v + 3072 + 32 * g + 16)));
        UNROLL(8)
        for (int i = 0; i < ni; i++) {
            const l2_block_q8_K *xb = &x[(size_t)i * x_stride + (size_t)b];
            const int8_t *qx = xb->qs + 32 * g;
            __m512i c0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q[0], piece_512(qx, 0));
            __m512i c1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q[4], piece_512(qx, 4));
            UNROLL(4)
            for (int t = 1; t < 4; t++) {
                c0 = _mm512_dpbusd_epi32(c0, q[t], piece_512(qx, t));
                c1 = _mm512_dpbusd_epi32(c1, q[4 + t], piece_512(qx, 4 + t));
            }
            c0 = _mm512_mullo_epi32(_mm512_sub_epi32(c0, _mm512_set1_epi32(32 * xb->bsums[2 * g])), s0);
            c1 = _mm512_mullo_epi32(_mm512_sub_epi32(c1, _mm512_set1_epi32(32 * xb->bsums[2 * g + 1])), s1);
            isum[i] = _mm512_add_epi32(isum[i], _mm512_add_epi32(c0, c1));
        }
    }
    const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(v + 3328)));
    UNROLL(8)
    for (int i = 0; i < ni; i++) {
        const __m512 dx = _mm512_set1_ps(x[(size_t)i * x_stride + (size_t)b].d);
        acc[i] = _mm512_add_ps(acc[i], _mm512_mul_ps(_mm512_cvtepi32_ps(isum[i]), _mm512_mul_ps(d, dx)));
    }
}

/* A panel kernel of ops_kquants.h: ops_avx512_panels.h's loop with a
 * kind's block step. */
#define PANELS_KERNEL(name, block_fn, panel_bytes)                                                                     \
    FN void name(float *out, size_t out_stride, const void *panels, int rows, int panel_begin, int panel_end,          \
                 const l2_block_q8_K *x, size_t x_stride, int n_inputs, int n_blocks) {                                \
        L2_PANELS_512(out, out_stride, panels, panel_bytes(n_blocks), rows, panel_begin, panel_end, n_inputs,          \
                      n_blocks, block_fn, x, x_stride);                                                                \
    }

PANELS_KERNEL(l2_q4_K_panels_avx512_vnni, q4_K_block, l2_q4_K_panel_bytes)
PANELS_KERNEL(l2_q6_K_panels_avx512_vnni, q6_K_block, l2_q6_K_panel_bytes)

#endif
