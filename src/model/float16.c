/*
 * F16 and BF16 to and from fp32, bit by bit (no F16C: the same results on
 * every machine).
 *
 * binary16: sign, 5 exponent bits (bias 15), 10 fraction bits.
 * bfloat16: the upper half of an fp32: sign, 8 exponent bits, 7 fraction bits.
 */
#include <math.h>

#include "float16.h"
#include "platform/bits.h"

float l2_f16_to_f32(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t exponent = (h >> 10) & 0x1fu, fraction = h & 0x3ffu;
    if (exponent == 0x1f) return l2_bits_float(sign | 0x7f800000u | (fraction << 13)); /* inf, NaN */
    if (exponent != 0) return l2_bits_float(sign | ((exponent + 127 - 15) << 23) | (fraction << 13));
    /* Zero or subnormal: fraction * 2^-24, exact in fp32. */
    return l2_bits_float(sign | l2_float_bits((float)fraction * 0x1p-24f));
}

float l2_bf16_to_f32(uint16_t b) { return l2_bits_float((uint32_t)b << 16); }

uint16_t l2_f32_to_f16(float f) {
    const uint32_t x = l2_float_bits(f), magnitude = x & 0x7fffffffu;
    const uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    if (magnitude > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((magnitude >> 13) & 0x3ffu)); /* NaN */
    /* 65520 = 65504 + half an ulp rounds (to even) up to infinity. */
    if (magnitude >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);
    if (magnitude >= 0x38800000u) { /* a normal binary16: at least 2^-14 */
        uint32_t rebiased = magnitude - ((127u - 15u) << 23);
        rebiased += 0xfffu + ((rebiased >> 13) & 1u); /* round the 13 dropped bits, ties to even */
        return (uint16_t)(sign | (rebiased >> 13));
    }
    /* Subnormal or zero: |f| in units of 2^-24 (the scaling is exact), rounded
     * ties to even; 1024 units is the smallest normal, whose bits follow on. */
    return (uint16_t)(sign | (uint16_t)rintf(fabsf(f) * 0x1p24f));
}

uint16_t l2_f32_to_bf16(float f) {
    uint32_t x = l2_float_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u); /* NaN, kept quiet */
    x += 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}
