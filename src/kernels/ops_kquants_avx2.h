/* Pieces of the K-quant kernels on 256-bit vectors shared by their files
 * (ops_kquants_avx2.c, ops_kquants_avx2_q5.c). Included after ops_x86.h. */
#ifndef LLAMA2_OPS_KQUANTS_AVX2_H
#define LLAMA2_OPS_KQUANTS_AVX2_H

#include <stdint.h>
#include <string.h>

#include "ops_isa.h"
#include "ops_kquants.h"
#include "ops_x86.h"

#define INLINE L2_INLINE(L2_AVX2)
/* Loops over constant counts (rows, inputs, a block's parts) unrolled, so
 * that the accumulators stay in registers and the masks are constants. */
#define PRAGMA(x) _Pragma(#x)
#define UNROLL(n) PRAGMA(GCC unroll n)

INLINE __m256i load32(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }

/* fp16 bits to fp32, the bits of l2_f16_to_f32 (as ops_blocks_avx2.c's
 * vector form): the magnitude's bits moved to fp32's places and scaled by
 * 2^112 (exact, subnormals included), infinities and NaNs rebuilt. */
INLINE float half_to_float(uint16_t h) {
    const uint32_t magnitude = h & 0x7FFFu, sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t bits;
    float f;
    if (magnitude > 0x7BFFu) {
        bits = 0x7F800000u | (magnitude & 0x3FFu) << 13;
    } else {
        bits = magnitude << 13;
        memcpy(&f, &bits, sizeof f);
        f *= 0x1p112f;
        memcpy(&bits, &f, sizeof bits);
    }
    bits |= sign;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* A Q4_K block's eight 6-bit scales (bytes 0-7) and mins (bytes 8-15):
 * with the 12 bytes as words a, b, c, sub-blocks 0-3 are the low 6 bits
 * of a's bytes (scales) and b's (mins); 4-7 are c's low (scales) and high
 * (mins) nibbles, under the top 2 bits of a's (b's) bytes. */
INLINE __m128i q4_K_scales_mins(const uint8_t packed[12]) {
    uint32_t a, b, c;
    memcpy(&a, packed, 4);
    memcpy(&b, packed + 4, 4);
    memcpy(&c, packed + 8, 4);
    const uint32_t low6 = 0x3F3F3F3Fu, nibbles = 0x0F0F0F0Fu, top2 = 0x30303030u;
    return _mm_setr_epi32((int)(a & low6), (int)((c & nibbles) | ((a >> 2) & top2)), (int)(b & low6),
                          (int)(((c >> 4) & nibbles) | ((b >> 2) & top2)));
}

/* The min term of a Q4_K or Q5_K block (scales_mins as above): four int32
 * lanes summing to the sum of min_j times the activations' sum over
 * sub-block j (bsums 2j and 2j + 1). */
INLINE __m128i k_min_sums(__m128i scales_mins, const l2_block_q8_K *x) {
    const __m128i pair_sums = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)(const void *)x->bsums),
                                             _mm_loadu_si128((const __m128i *)(const void *)(x->bsums + 8)));
    return _mm_madd_epi16(_mm_cvtepu8_epi16(_mm_srli_si128(scales_mins, 8)), pair_sums);
}

/* Byte-shuffle masks putting 16-bit lane j of a 128-bit half in all eight
 * lanes of that half. */
#define LANE16(j) _mm256_set1_epi16((short)(0x0100 + 0x0202 * (j)))

#endif
