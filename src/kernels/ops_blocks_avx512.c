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

#define FN L2_TARGET(L2_AVX512_VNNI)
#define INLINE L2_INLINE(L2_AVX512_VNNI)

/* Input bytes 4j..4j+3 in every 32-bit lane (a broadcast load). */
INLINE __m512i piece_512(const int8_t *q, int j) {
    int32_t v;
    memcpy(&v, q + 4 * j, sizeof v);
    return _mm512_set1_epi32(v);
}

/* A panel against NI inputs: each block's nibbles unpacked once into eight
 * vectors, then per input two chains of four dot steps (low and high
 * nibbles, so that two run at once), the block's integer dot less 8 times
 * the input's sum, and (float)isum * (dw * dx) added to each row's sum. */
INLINE void q4_0_panel(__m512 *acc, const uint8_t *nibbles, const uint8_t *scales, const l2_block_q8_0 *x,
                       const l2_block_q8_0_summary *xs, size_t x_stride, int n_blocks, int ni) {
    const __m512i low = _mm512_set1_epi8(0x0F);
#pragma GCC unroll 8
    for (int i = 0; i < ni; i++) acc[i] = _mm512_setzero_ps();
    for (int b = 0; b < n_blocks; b++) {
        const uint8_t *v = nibbles + (size_t)b * 256;
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
}

#define PANEL_INPUTS 8

FN void l2_q4_0_panels_avx512_vnni(float *out, size_t out_stride, const void *panels, int rows, int panel_begin,
                                  int panel_end, const l2_block_q8_0 *x, const l2_block_q8_0_summary *xs,
                                  size_t x_stride, int n_inputs, int n_blocks) {
    const size_t panel = l2_q4_0_panel_bytes(n_blocks);
    for (int p = panel_begin; p < panel_end; p++) {
        const uint8_t *nibbles = (const uint8_t *)panels + (size_t)p * panel,
                      *scales = nibbles + (size_t)n_blocks * 256;
        const int row0 = p * L2_PANEL_ROWS, n_rows = rows - row0 < L2_PANEL_ROWS ? rows - row0 : L2_PANEL_ROWS;
        const __mmask16 keep = (__mmask16)((1u << n_rows) - 1u);
        for (int i0 = 0; i0 < n_inputs; i0 += PANEL_INPUTS) {
            const int ni = n_inputs - i0 < PANEL_INPUTS ? n_inputs - i0 : PANEL_INPUTS;
            const l2_block_q8_0 *xi = x + (size_t)i0 * x_stride;
            const l2_block_q8_0_summary *si = xs + (size_t)i0 * x_stride;
            __m512 acc[PANEL_INPUTS];
            /* The tile's width a constant in each call, so that the
             * accumulators stay in registers. */
            switch (ni) {
            case 8: q4_0_panel(acc, nibbles, scales, xi, si, x_stride, n_blocks, 8); break;
            case 7: q4_0_panel(acc, nibbles, scales, xi, si, x_stride, n_blocks, 7); break;
            case 6: q4_0_panel(acc, nibbles, scales, xi, si, x_stride, n_blocks, 6); break;
            case 5: q4_0_panel(acc, nibbles, scales, xi, si, x_stride, n_blocks, 5); break;
            case 4: q4_0_panel(acc, nibbles, scales, xi, si, x_stride, n_blocks, 4); break;
            case 3: q4_0_panel(acc, nibbles, scales, xi, si, x_stride, n_blocks, 3); break;
            case 2: q4_0_panel(acc, nibbles, scales, xi, si, x_stride, n_blocks, 2); break;
            default: q4_0_panel(acc, nibbles, scales, xi, si, x_stride, n_blocks, 1); break;
            }
            for (int i = 0; i < ni; i++)
                _mm512_mask_storeu_ps(out + (size_t)(i0 + i) * out_stride + (size_t)row0, keep, acc[i]);
        }
    }
}

#endif
