/*
 * The Q4_0 panels (ops_blocks.h) of the AVX512-VNNI levels' block table
 * (made in ops_blocks_avx2.c, AVX2's entries but this one) on 512-bit
 * vectors, a whole panel (16 rows,
 * a row a 32-bit lane) at once, the nibbles times the input's 4-byte
 * pieces by VNNI's unsigned-by-signed dot (vpdpbusd: exact int32 sums).
 * The float steps are the reference's, lane by lane, so the results are
 * its bits.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ops.h"
#include "ops_blocks.h"

#if defined(__x86_64__) || defined(__i386__)

#include "ops_isa.h"
#include "ops_x86.h"
#include "ops_avx512_panels.h"

#define FN L2_TARGET(L2_AVX512_VNNI)
#define INLINE L2_INLINE(L2_AVX512_VNNI)

/* Input bytes 4j..4j+3 in every 32-bit lane (a broadcast load). */
INLINE __m512i piece_512(const int8_t *q, int j) {
    int32_t v;
    memcpy(&v, q + 4 * j, sizeof v);
    return _mm512_set1_epi32(v);
}

/* Block b of a panel against ni inputs from i0 (the step of
 * ops_avx512_panels.h's loop): its nibbles unpacked once into eight
 * vectors, then per input two chains of four dot steps (low and high
 * nibbles, so that two run at once), the block's integer dot less 8 times
 * the input's sum, and (float)isum * (dw * dx) added to each row's sum. */
INLINE void q4_0_block(__m512 *acc, const uint8_t *panel, int b, int i0, int ni, const l2_block_q8_0 *x0,
                       const l2_block_q8_0_summary *xs0, size_t x_stride, int n_blocks) {
    const __m512i low = _mm512_set1_epi8(0x0F);
    const l2_block_q8_0 *x = x0 + (size_t)i0 * x_stride;
    const l2_block_q8_0_summary *xs = xs0 + (size_t)i0 * x_stride;
    const uint8_t *v = panel + (size_t)b * 256, *scales = panel + (size_t)n_blocks * 256;
#pragma GCC unroll 8
    for (int k = 0; k < 4; k++) _mm_prefetch((const char *)(v + L2_PANEL_PREFETCH + 64 * k), L2_PANEL_PREFETCH_HINT);
    __m512i lo[4], hi[4];
#pragma GCC unroll 8
    for (int k = 0; k < 4; k++) {
        const __m512i packed = _mm512_loadu_si512((const void *)(v + 64 * k));
        lo[k] = _mm512_and_si512(packed, low);
        hi[k] = _mm512_and_si512(_mm512_srli_epi16(packed, 4), low);
    }
    /* vcvtph2ps: exact for every fp16 value (AVX-512F's own conversion). */
    const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(scales + (size_t)b * 32)));
#pragma GCC unroll 8
    for (int i = 0; i < ni; i++) {
        const int8_t *q = x[(size_t)i * x_stride + (size_t)b].qs;
        const l2_block_q8_0_summary *sm = &xs[(size_t)i * x_stride + (size_t)b];
        __m512i c0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo[0], piece_512(q, 0));
        __m512i c1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), hi[0], piece_512(q, 4));
#pragma GCC unroll 8
        for (int k = 1; k < 4; k++) {
            c0 = _mm512_dpbusd_epi32(c0, lo[k], piece_512(q, k));
            c1 = _mm512_dpbusd_epi32(c1, hi[k], piece_512(q, 4 + k));
        }
        const __m512i isum = _mm512_sub_epi32(_mm512_add_epi32(c0, c1), _mm512_set1_epi32(8 * sm->sum));
        const __m512 scale = _mm512_mul_ps(dw, _mm512_set1_ps(sm->d));
        acc[i] = _mm512_add_ps(acc[i], _mm512_mul_ps(_mm512_cvtepi32_ps(isum), scale));
    }
}

FN void l2_q4_0_panels_avx512_vnni(float *out, size_t out_stride, const void *panels, int rows, int panel_begin,
                                  int panel_end, const l2_block_q8_0 *x, const l2_block_q8_0_summary *xs,
                                  size_t x_stride, int n_inputs, int n_blocks) {
    L2_PANELS_512(out, out_stride, panels, l2_q4_0_panel_bytes(n_blocks), rows, panel_begin, panel_end, n_inputs,
                  n_blocks, q4_0_block, x, xs, x_stride, n_blocks);
}

#endif
