/*
 * The Q4_K and Q6_K panels (ops_kquants.h) on 256-bit vectors, for the
 * AVX2 levels' K-quant table: a panel's 16 rows as two halves of 8 (a row
 * a 32-bit lane), each block read once for up to PANEL_INPUTS inputs, the
 * panel's bytes asked for ahead (one long stream, where the rows' kernels
 * read a few kilobytes a call). The dot step is vpmaddubsw: the stored
 * values (Q4_K 0-15, Q6_K 0-63) unsigned against 4 signed activation bytes
 * broadcast, whose 16-bit pair sums add up without overflow (Q4_K: eight
 * steps, at most 8 * 2 * 15 * 127; Q6_K: two, 2 * 2 * 63 * 127), then
 * vpmaddwd by the sub-block's scale in both halves of each lane widens and
 * scales at once. Every integer is exact and the float steps are the panel
 * reference's, lane by lane, so the results are its bits (those of the
 * AVX512-VNNI and NEON panels).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ops_blocks.h"
#include "ops_kquants.h"

#if defined(__x86_64__) || defined(__i386__)

#include "ops_avx2_util.h"
#include "ops_isa.h"
#include "ops_x86.h"

#define FN L2_TARGET(L2_AVX2)
#define INLINE L2_INLINE(L2_AVX2)
#define UNROLL(n) L2_UNROLL_NATIVE(n)

/* Inputs a pass over a panel: their sums, the four value vectors of a
 * step and the constants fill the 16 registers. */
#define PANEL_INPUTS 4

/* Eight bytes (a half panel's rows) as int32 lanes with the value in both
 * 16-bit halves: vpmaddwd's multiplier of a lane's two pair sums. */
INLINE __m256i scale_pairs(const uint8_t *bytes, int is_signed) {
    const __m128i b = _mm_loadl_epi64((const __m128i *)(const void *)bytes);
    const __m256i s = is_signed ? _mm256_cvtepi8_epi32(b) : _mm256_cvtepu8_epi32(b);
    return _mm256_blend_epi16(s, _mm256_slli_epi32(s, 16), 0xAA);
}

/* The activations' sums a and b as two int16 in every 32-bit lane. */
INLINE __m256i int16_pair(int a, int b) {
    return _mm256_set1_epi32((int32_t)((uint32_t)(uint16_t)a | (uint32_t)(uint16_t)b << 16));
}

/* The blocks' bytes this far ahead, a line a call (ops_blocks.h). */
INLINE void prefetch_line(const uint8_t *v, int line) {
    _mm_prefetch((const char *)(v + L2_PANEL_PREFETCH + 64 * line), L2_PANEL_PREFETCH_HINT);
}

/* The float steps of a block for input i and half h (the panel
 * reference's): acc + (float)isum * (d * dx), then less (float)mins *
 * (dmin * dx) where there are mins. */
INLINE __m256 block_sum(__m256 acc, __m256i isum, __m256 d, float dx) {
    return _mm256_add_ps(acc, _mm256_mul_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(d, _mm256_set1_ps(dx))));
}

/* Half h of a Q4_K panel's block v against ni inputs (input i's block at
 * x[i * x_stride]), added into acc[2 * i + h]. Sub-block j: chunk j / 2,
 * low nibbles for even j, high for odd; its eight pieces of 4 values in
 * two runs of four. */
INLINE void q4_K_half(__m256 *acc, const uint8_t *v, int h, const l2_block_q8_K *x, size_t x_stride, int ni) {
    const __m256i low = _mm256_set1_epi8(0x0F);
    __m256i isum[PANEL_INPUTS];
    UNROLL(4) for (int i = 0; i < ni; i++) isum[i] = _mm256_setzero_si256();
    for (int j = 0; j < 8; j++) {
        if (h == 0) {
            UNROLL(5) for (int t = 0; t < 5; t++) prefetch_line(v, 5 * j + t); /* the block's 37 lines */
        }
        const uint8_t *chunk = v + 512 * (j / 2) + 32 * h;
        const __m256i scale = scale_pairs(v + 2048 + 16 * j + 8 * h, 0);
        __m256i pairs[PANEL_INPUTS];
        UNROLL(4) for (int i = 0; i < ni; i++) pairs[i] = _mm256_setzero_si256();
        UNROLL(2) for (int run = 0; run < 2; run++) {
            __m256i nib[4];
            UNROLL(4) for (int k = 0; k < 4; k++) {
                const __m256i packed = _mm256_loadu_si256((const __m256i *)(const void *)(chunk + 64 * (4 * run + k)));
                nib[k] = _mm256_and_si256(j % 2 ? _mm256_srli_epi16(packed, 4) : packed, low);
            }
            UNROLL(4) for (int i = 0; i < ni; i++) {
                const int8_t *q = x[(size_t)i * x_stride].qs + 32 * j;
                UNROLL(4) for (int k = 0; k < 4; k++)
                    pairs[i] = _mm256_add_epi16(pairs[i], _mm256_maddubs_epi16(nib[k], broadcast_piece(q, 4 * run + k)));
            }
        }
        UNROLL(4) for (int i = 0; i < ni; i++) isum[i] = _mm256_add_epi32(isum[i], _mm256_madd_epi16(pairs[i], scale));
    }
    const __m256 d = f16_to_f32_8(_mm_loadu_si128((const __m128i *)(const void *)(v + 2304 + 16 * h)));
    const __m256 dmin = f16_to_f32_8(_mm_loadu_si128((const __m128i *)(const void *)(v + 2336 + 16 * h)));
    UNROLL(4) for (int i = 0; i < ni; i++) {
        const l2_block_q8_K *xb = &x[(size_t)i * x_stride];
        /* The mins: sub-blocks 2m and 2m + 1 of each row, an int16 pair,
         * against the activations' sums of those sub-blocks. */
        __m256i m = _mm256_setzero_si256();
        UNROLL(4) for (int k = 0; k < 4; k++) {
            const __m256i mins = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(v + 2176 + 32 * k + 16 * h)));
            const int s0 = xb->bsums[4 * k] + xb->bsums[4 * k + 1], s1 = xb->bsums[4 * k + 2] + xb->bsums[4 * k + 3];
            m = _mm256_add_epi32(m, _mm256_madd_epi16(mins, int16_pair(s0, s1)));
        }
        __m256 a = block_sum(acc[2 * i + h], isum[i], d, xb->d);
        acc[2 * i + h] = _mm256_sub_ps(a, _mm256_mul_ps(_mm256_cvtepi32_ps(m), _mm256_mul_ps(dmin, _mm256_set1_ps(xb->d))));
    }
}

/* Half h of a Q6_K panel's block v against ni inputs, added into acc[2 *
 * i + h]. Group g of 32 values: ql's chunk 2 (g / 4) + g % 2 (high
 * nibbles from g % 4 = 2 on), qh's bits 2 (g % 4) and up moved to bits 4
 * and 5; its first 16 values scaled by scales[2g], the next by [2g + 1].
 * The stored offset of 32 comes off per row once a block: 32 times the
 * sum of each scale times its 16 activations' sum. */
INLINE void q6_K_half(__m256 *acc, const uint8_t *v, int h, const l2_block_q8_K *x, size_t x_stride, int ni) {
    const __m256i low = _mm256_set1_epi8(0x0F), high = _mm256_set1_epi8(0x30);
    __m256i isum[PANEL_INPUTS];
    UNROLL(4) for (int i = 0; i < ni; i++) isum[i] = _mm256_setzero_si256();
    for (int g = 0; g < 8; g++) {
        if (h == 0) {
            UNROLL(7) for (int t = 0; t < 7; t++) prefetch_line(v, 7 * g + t); /* the block's 53 lines */
        }
        const int k4 = g % 4;
        const uint8_t *ql = v + 512 * (2 * (g / 4) + k4 % 2) + 32 * h, *qh = v + 2048 + 512 * (g / 4) + 32 * h;
        UNROLL(2) for (int run = 0; run < 2; run++) {
            const int s = 2 * g + run;
            const __m256i scale = scale_pairs(v + 3072 + 16 * s + 8 * h, 1);
            __m256i q[4];
            UNROLL(4) for (int k = 0; k < 4; k++) {
                const int t = 4 * run + k;
                const __m256i l4 = _mm256_loadu_si256((const __m256i *)(const void *)(ql + 64 * t));
                const __m256i h2 = _mm256_loadu_si256((const __m256i *)(const void *)(qh + 64 * t));
                /* qh's bits 2 k4 and 2 k4 + 1 to bits 4 and 5 (the bits a
                 * 16-bit shift carries across bytes are masked off). */
                const __m256i up = k4 == 0   ? _mm256_slli_epi16(h2, 4)
                                   : k4 == 1 ? _mm256_slli_epi16(h2, 2)
                                   : k4 == 2 ? h2
                                             : _mm256_srli_epi16(h2, 2);
                q[k] = _mm256_or_si256(_mm256_and_si256(k4 >= 2 ? _mm256_srli_epi16(l4, 4) : l4, low),
                                       _mm256_and_si256(up, high));
            }
            UNROLL(4) for (int i = 0; i < ni; i++) {
                const int8_t *qx = x[(size_t)i * x_stride].qs + 32 * g + 16 * run;
                const __m256i p01 = _mm256_add_epi16(_mm256_maddubs_epi16(q[0], broadcast_piece(qx, 0)),
                                                     _mm256_maddubs_epi16(q[1], broadcast_piece(qx, 1)));
                const __m256i p23 = _mm256_add_epi16(_mm256_maddubs_epi16(q[2], broadcast_piece(qx, 2)),
                                                     _mm256_maddubs_epi16(q[3], broadcast_piece(qx, 3)));
                isum[i] = _mm256_add_epi32(isum[i], _mm256_add_epi32(_mm256_madd_epi16(p01, scale),
                                                                     _mm256_madd_epi16(p23, scale)));
            }
        }
    }
    const __m256 d = f16_to_f32_8(_mm_loadu_si128((const __m128i *)(const void *)(v + 3328 + 16 * h)));
    UNROLL(4) for (int i = 0; i < ni; i++) {
        const l2_block_q8_K *xb = &x[(size_t)i * x_stride];
        /* 32 times the scales times the sums, pairs of sub-blocks of 16
         * (scales 2k and 2k + 1 of each row interleaved as an int16 pair). */
        __m256i offset = _mm256_setzero_si256();
        UNROLL(8) for (int k = 0; k < 8; k++) {
            const __m128i even = _mm_loadl_epi64((const __m128i *)(const void *)(v + 3072 + 16 * (2 * k) + 8 * h));
            const __m128i odd = _mm_loadl_epi64((const __m128i *)(const void *)(v + 3072 + 16 * (2 * k + 1) + 8 * h));
            const __m256i scales = _mm256_cvtepi8_epi16(_mm_unpacklo_epi8(even, odd));
            offset = _mm256_add_epi32(offset, _mm256_madd_epi16(scales, int16_pair(xb->bsums[2 * k], xb->bsums[2 * k + 1])));
        }
        acc[2 * i + h] = block_sum(acc[2 * i + h], _mm256_sub_epi32(isum[i], _mm256_slli_epi32(offset, 5)), d, xb->d);
    }
}

/* A panel of n_blocks blocks of `bytes` each against ni (a constant in
 * each use) inputs from x; acc[2 * i + h]: input i's rows of half h. */
#define PANEL_PASS(half, acc, panel, bytes, x, x_stride, n_blocks, ni)                                                 \
    do {                                                                                                               \
        UNROLL(8) for (int i_ = 0; i_ < 2 * (ni); i_++) acc[i_] = _mm256_setzero_ps();                                 \
        for (int b_ = 0; b_ < (n_blocks); b_++) {                                                                      \
            const uint8_t *v_ = (panel) + (size_t)b_ * (bytes);                                                        \
            half(acc, v_, 0, (x) + b_, x_stride, ni);                                                                  \
            half(acc, v_, 1, (x) + b_, x_stride, ni);                                                                  \
        }                                                                                                              \
    } while (0)

/* A panel kernel of ops_kquants.h over a kind's half-block step. */
#define PANELS_KERNEL(name, half, block_bytes, panel_bytes)                                                            \
    FN void name(float *out, size_t out_stride, const void *panels, int rows, int panel_begin, int panel_end,          \
                 const l2_block_q8_K *x, size_t x_stride, int n_inputs, int n_blocks) {                                \
        const size_t bytes = panel_bytes(n_blocks);                                                                    \
        for (int p = panel_begin; p < panel_end; p++) {                                                                \
            const uint8_t *panel = (const uint8_t *)panels + (size_t)p * bytes;                                        \
            const int row0 = p * L2_PANEL_ROWS, n_rows = rows - row0 < L2_PANEL_ROWS ? rows - row0 : L2_PANEL_ROWS;    \
            for (int i0 = 0; i0 < n_inputs; i0 += PANEL_INPUTS) {                                                      \
                const int ni = n_inputs - i0 < PANEL_INPUTS ? n_inputs - i0 : PANEL_INPUTS;                            \
                const l2_block_q8_K *xi = x + (size_t)i0 * x_stride;                                                   \
                __m256 acc[2 * PANEL_INPUTS];                                                                          \
                switch (ni) {                                                                                          \
                case 4: PANEL_PASS(half, acc, panel, block_bytes, xi, x_stride, n_blocks, 4); break;                   \
                case 3: PANEL_PASS(half, acc, panel, block_bytes, xi, x_stride, n_blocks, 3); break;                   \
                case 2: PANEL_PASS(half, acc, panel, block_bytes, xi, x_stride, n_blocks, 2); break;                   \
                default: PANEL_PASS(half, acc, panel, block_bytes, xi, x_stride, n_blocks, 1); break;                  \
                }                                                                                                      \
                for (int i = 0; i < ni; i++) {                                                                         \
                    float lanes[L2_PANEL_ROWS];                                                                        \
                    _mm256_storeu_ps(lanes, acc[2 * i]);                                                               \
                    _mm256_storeu_ps(lanes + 8, acc[2 * i + 1]);                                                       \
                    memcpy(out + (size_t)(i0 + i) * out_stride + (size_t)row0, lanes, (size_t)n_rows * sizeof(float)); \
                }                                                                                                      \
            }                                                                                                          \
        }                                                                                                              \
    }

PANELS_KERNEL(l2_q4_K_panels_avx2, q4_K_half, L2_Q4_K_PANEL_BLOCK, l2_q4_K_panel_bytes)
PANELS_KERNEL(l2_q6_K_panels_avx2, q6_K_half, L2_Q6_K_PANEL_BLOCK, l2_q6_K_panel_bytes)

#else

/* ISO C forbids an empty translation unit. */
typedef int l2_ops_kquants_avx2_panels_unused;

#endif
