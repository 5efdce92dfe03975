/* expf, sinf, cosf and powf as glibc computes them (its float functions
 * come from Arm's optimized-routines, MIT licensed; the tables and
 * polynomial coefficients below are theirs, the code is written anew).
 *
 * Each evaluates in double and rounds once to float. glibc's x86-64 build
 * runs a variant compiled with FMA on every CPU that has AVX2 (the machines
 * llama2.c's outputs were recorded on), and a fused multiply-add rounds
 * once where a multiply then an add round twice. So every multiply-add that
 * variant fuses is fused here too, formed exactly from plain operations
 * (fused_madd): the same bits with or without an FMA instruction. Where
 * glibc fuses but the output is the same either way for every input (the
 * polynomial of expf; tests/test_float_math.c runs all 2^32), the plain
 * form is kept: expf is on the int8 path's hot loop. This file is compiled
 * with -ffp-contract=off like every other: no operation is fused behind
 * the code's back. */
#include "float_math.h"
#include "bits.h"

#include <stdint.h>

/* --------------------------------------------- exact products and sums */

/* a = hi + lo exactly, hi with at most 26 significant bits, lo 27
 * (Veltkamp's split; |a| far below the overflow threshold). */
static void split(double a, double *hi, double *lo) {
    const double c = 134217729.0 * a; /* 2^27 + 1 */
    *hi = c - (c - a);
    *lo = a - *hi;
}

/* a * b = *hi + *lo exactly, *hi the rounded product (Dekker). */
static void exact_product(double a, double b, double *hi, double *lo) {
    double ah, al, bh, bl;
    split(a, &ah, &al);
    split(b, &bh, &bl);
    *hi = a * b;
    *lo = ((ah * bh - *hi) + ah * bl + al * bh) + al * bl;
}

/* a + b = *sum + *err exactly, *sum the rounded sum (Knuth). */
static void exact_sum(double a, double b, double *sum, double *err) {
    const double s = a + b, bb = s - a;
    *sum = s;
    *err = (a - (s - bb)) + (b - bb);
}

/* a + b rounded to odd: toward zero, and then to the odd neighbour if the
 * sum was inexact. */
static double sum_to_odd(double a, double b) {
    double s, e;
    exact_sum(a, b, &s, &e);
    if (e == 0.0 || (l2_double_bits(s) & 1)) return s;
    /* s is even and the exact sum lies between s and its neighbour toward
     * e, which is odd. */
    const int away = (e > 0.0) == (s > 0.0);
    return l2_bits_double(l2_double_bits(s) + (away ? 1 : (uint64_t)-1));
}

/* a * b + c rounded once, as an FMA instruction gives it (Boldo and
 * Melquiond's emulation: the product's error and the sum's error added
 * with rounding to odd, then the final sum rounded to nearest). Exact for
 * the magnitudes here, far from overflow and underflow. */
static double fused_madd(double a, double b, double c) {
    double ph, pl, th, tl;
    exact_product(a, b, &ph, &pl);
    exact_sum(c, ph, &th, &tl);
    return th + sum_to_odd(tl, pl);
}

/* f * d - k rounded once, f a float (24 bits): f times each half of d is
 * exact, f * dh - k is exact where it is small against k (the callers'
 * case), and the one rounding is the last addition. */
static double float_product_minus(double f, double d, double k) {
    double dh, dl;
    split(d, &dh, &dl);
    return (f * dh - k) + f * dl;
}

/* ------------------------------------------------------ exp2 by table */

#define EXP2_TABLE_BITS 5
#define EXP2_N (1 << EXP2_TABLE_BITS)

/* The bits of 2^(i/32) rounded to double, less i << 47, so that adding
 * k << 47 to entry k % 32 gives the bits of 2^(k/32). */
const uint64_t l2_exp2_table[EXP2_N] = {
    0x3ff0000000000000, 0x3fefd9b0d3158574, 0x3fefb5586cf9890f, 0x3fef9301d0125b51, 0x3fef72b83c7d517b,
    0x3fef54873168b9aa, 0x3fef387a6e756238, 0x3fef1e9df51fdee1, 0x3fef06fe0a31b715, 0x3feef1a7373aa9cb,
    0x3feedea64c123422, 0x3feece086061892d, 0x3feebfdad5362a27, 0x3feeb42b569d4f82, 0x3feeab07dd485429,
    0x3feea47eb03a5585, 0x3feea09e667f3bcd, 0x3fee9f75e8ec5f74, 0x3feea11473eb0187, 0x3feea589994cce13,
    0x3feeace5422aa0db, 0x3feeb737b0cdc5e5, 0x3feec49182a3f090, 0x3feed503b23e255d, 0x3feee89f995ad3ad,
    0x3feeff76f2fb5e47, 0x3fef199bdd85529c, 0x3fef3720dcef9069, 0x3fef5818dcfba487, 0x3fef7c97337b9b5f,
    0x3fefa4afa2a490da, 0x3fefd0765b6e4540,
};

/* 2^r ~ 1 + r (C2 + r C1 + r^2 C0) for |r| <= 1/64 (glibc's exp2f
 * polynomial), and the same scaled for r in units of 1/32. */
const double l2_exp2_poly[3] = {0x1.c6af84b912394p-5, 0x1.ebfce50fac4f3p-3, 0x1.62e42ff0c52d6p-1};
#define EXP2_SHIFT 0x1.8p+52 /* adding it rounds to an integer, kept in the low bits */

/* 2^(k/32) with the sign bit set by sign_bias, ki holding k in its low bits. */
static double exp2_scale(uint64_t ki, uint64_t sign_bias) {
    return l2_bits_double(l2_exp2_table[ki % EXP2_N] + ((ki + sign_bias) << (52 - EXP2_TABLE_BITS)));
}

float l2_expf(float x) {
    const double xd = x;
    const uint32_t abstop = (l2_float_bits(x) >> 20) & 0x7ff;
    if (abstop >= l2_float_bits(88.0f) >> 20) {
        if (l2_float_bits(x) == 0xff800000u) return 0.0f; /* -inf */
        if (abstop >= 0x7f8) return x + x;             /* +inf, NaN */
        if (x > 0x1.62e42ep6f) return l2_bits_float(0x7f800000u);
        if (x < -0x1.9fe368p6f) return 0.0f;
    }
    /* x * 32 / ln2 = k + r with k an integer, |r| <= 1/2. r is that product
     * less k rounded once, as glibc's fused multiply-subtract gives it. */
    const double inv_ln2_n = 0x1.71547652b82fep+0 * EXP2_N;
    const double z = inv_ln2_n * xd;
    double kd = z + EXP2_SHIFT;
    const uint64_t ki = l2_double_bits(kd);
    kd -= EXP2_SHIFT;
    const double r = float_product_minus(xd, inv_ln2_n, kd);
    /* e^x = 2^(k/32) * 2^(r/32) */
    const double s = exp2_scale(ki, 0);
    const double c0 = l2_exp2_poly[0] / EXP2_N / EXP2_N / EXP2_N, c1 = l2_exp2_poly[1] / EXP2_N / EXP2_N,
                 c2 = l2_exp2_poly[2] / EXP2_N;
    const double p = c0 * r + c1, r2 = r * r;
    double y = c2 * r + 1.0;
    y = p * r2 + y;
    return (float)(y * s);
}

/* ------------------------------------------------------- sin and cos */

/* The polynomials of sin and cos on [-pi/4, pi/4] (glibc's): cos x ~ c0 +
 * c1 x^2 + ... + c4 x^8, sin x ~ x + s1 x^3 + s2 x^5 + s3 x^7. The second
 * set computes -cos x, for the quadrants where the sign turns. */
typedef struct {
    double c0, c1, c2, c3, c4, s1, s2, s3;
} sincos_poly;

static const sincos_poly sincos_polys[2] = {
    {0x1p0, -0x1.ffffffd0c621cp-2, 0x1.55553e1068f19p-5, -0x1.6c087e89a359dp-10, 0x1.99343027bf8c3p-16,
     -0x1.555545995a603p-3, 0x1.1107605230bc4p-7, -0x1.994eb3774cf24p-13},
    {-0x1p0, 0x1.ffffffd0c621cp-2, -0x1.55553e1068f19p-5, 0x1.6c087e89a359dp-10, -0x1.99343027bf8c3p-16,
     -0x1.555545995a603p-3, 0x1.1107605230bc4p-7, -0x1.994eb3774cf24p-13},
};

static const double quadrant_sign[4] = {1.0, -1.0, -1.0, 1.0};
static const double half_pi = 0x1.921FB54442D18p0;
static const double quarter_pi = 0x1.921FB54442D18p-1;
static const double two_over_pi_2_24 = 0x1.45F306DC9C883p+23; /* 2/pi * 2^24 */
static const double two_pi_2_64 = 0x1.921FB54442D18p-62;      /* 2 pi / 2^64 */

/* 4/pi to 192 bits, 8 more bits in each entry (entry i: bits 8i-24 to
 * 8i+8), so that any 32-bit window on a byte boundary is one load. */
static const uint32_t four_over_pi[24] = {
    0x000000a2, 0x0000a2f9, 0x00a2f983, 0xa2f9836e, 0xf9836e4e, 0x836e4e44, 0x6e4e4415, 0x4e441529,
    0x441529fc, 0x1529fc27, 0x29fc2757, 0xfc2757d1, 0x2757d1f5, 0x57d1f534, 0xd1f534dd, 0xf534ddc0,
    0x34ddc0db, 0xddc0db62, 0xc0db6295, 0xdb629599, 0x6295993c, 0x95993c43, 0x993c4390, 0x3c439041,
};

static uint32_t abstop12(float x) { return (l2_float_bits(x) >> 20) & 0x7ff; }

/* sin x (n even) or cos x (n odd) for x in [-pi/4, pi/4], x2 = x * x. */
static float sincos_eval(double x, double x2, const sincos_poly *p, int n) {
    if ((n & 1) == 0) {
        const double x3 = x * x2, s1 = fused_madd(x2, p->s3, p->s2);
        const double x7 = x3 * x2, s = fused_madd(x3, p->s1, x);
        return (float)fused_madd(x7, s1, s);
    }
    const double x4 = x2 * x2, c2 = fused_madd(x2, p->c4, p->c3), c1 = fused_madd(x2, p->c1, p->c0);
    const double x6 = x4 * x2, c = fused_madd(x4, p->c2, c1);
    return (float)fused_madd(x6, c2, c);
}

/* x less the nearest multiple n of pi/2, for |x| < 120: n pi/2 subtracted
 * with one rounding (glibc's fused multiply-subtract); pi/2's halves times
 * n (at most 77) are exact, and so is x less the first. */
static double reduce_small(double x, int *np) {
    const double r = x * two_over_pi_2_24;
    const int n = ((int32_t)r + 0x800000) >> 24;
    *np = n;
    double hh, hl;
    split(half_pi, &hh, &hl);
    return (x - (double)n * hh) - (double)n * hl;
}

/* The same for any finite |x| >= 2 given by its bits: the product of the
 * significand with 96 bits of 4/pi, in fixed point, exactly. */
static double reduce_large(uint32_t xi, int *np) {
    const uint32_t *arr = &four_over_pi[(xi >> 26) & 15];
    const int shift = (xi >> 23) & 7;
    xi = (xi & 0xffffff) | 0x800000;
    xi <<= shift;
    uint64_t res0 = (uint32_t)(xi * arr[0]);
    const uint64_t res1 = (uint64_t)xi * arr[4], res2 = (uint64_t)xi * arr[8];
    res0 = (res2 >> 32) | (res0 << 32);
    res0 += res1;
    const uint64_t n = (res0 + (1ull << 61)) >> 62;
    res0 -= n << 62;
    *np = (int)n;
    return (double)(int64_t)res0 * two_pi_2_64;
}

/* sin (cosine 0) or cos (cosine 1) of y. */
static float sin_or_cos(float y, int cosine) {
    double x = y;
    int n;
    const sincos_poly *p = &sincos_polys[0];
    if (abstop12(y) < abstop12((float)quarter_pi)) {
        if (abstop12(y) < abstop12(0x1p-12f)) return cosine ? 1.0f : y;
        return sincos_eval(x, x * x, p, cosine);
    }
    int sign = 0;
    if (abstop12(y) < abstop12(120.0f)) {
        x = reduce_small(x, &n);
    } else if (abstop12(y) < abstop12(l2_bits_float(0x7f800000u))) {
        sign = (int)(l2_float_bits(y) >> 31);
        x = reduce_large(l2_float_bits(y), &n);
    } else {
        return (y - y) / (y - y); /* inf, NaN: NaN */
    }
    const double s = quadrant_sign[(n + sign) & 3];
    if ((n + sign) & 2) p = &sincos_polys[1];
    return sincos_eval(x * s, x * x, p, n ^ cosine);
}

float l2_sinf(float x) { return sin_or_cos(x, 0); }

float l2_cosf(float x) { return sin_or_cos(x, 1); }

/* ------------------------------------------------------------ pow */

#define LOG2_TABLE_BITS 4
#define LOG2_N (1 << LOG2_TABLE_BITS)
#define LOG2_OFF 0x3f330000u

/* For each of 16 subintervals of [0x3f330000, 2 * that) (as float bits):
 * 1/c for a c near its middle, and log2(c) (glibc's powf table). */
static const struct {
    double invc, logc;
} log2_table[LOG2_N] = {
    {0x1.661ec79f8f3bep+0, -0x1.efec65b963019p-2}, {0x1.571ed4aaf883dp+0, -0x1.b0b6832d4fca4p-2},
    {0x1.49539f0f010bp+0, -0x1.7418b0a1fb77bp-2},  {0x1.3c995b0b80385p+0, -0x1.39de91a6dcf7bp-2},
    {0x1.30d190c8864a5p+0, -0x1.01d9bf3f2b631p-2}, {0x1.25e227b0b8eap+0, -0x1.97c1d1b3b7afp-3},
    {0x1.1bb4a4a1a343fp+0, -0x1.2f9e393af3c9fp-3}, {0x1.12358f08ae5bap+0, -0x1.960cbbf788d5cp-4},
    {0x1.0953f419900a7p+0, -0x1.a6f9db6475fcep-5}, {0x1p+0, 0x0p+0},
    {0x1.e608cfd9a47acp-1, 0x1.338ca9f24f53dp-4},  {0x1.ca4b31f026aap-1, 0x1.476a9543891bap-3},
    {0x1.b2036576afce6p-1, 0x1.e840b4ac4e4d2p-3},  {0x1.9c2d163a1aa2dp-1, 0x1.40645f0c6651cp-2},
    {0x1.886e6037841edp-1, 0x1.88e9c2c1b9ff8p-2},  {0x1.767dcf5534862p-1, 0x1.ce0a44eb17bccp-2},
};

/* log2(1 + r) ~ a4 r + a3 r^2 + ... + a0 r^5 (glibc's powf polynomial). */
static const double log2_poly[5] = {0x1.27616c9496e0bp-2, -0x1.71969a075c67ap-2, 0x1.ec70a6ca7baddp-2,
                                    -0x1.7154748bef6c8p-1, 0x1.71547652ab82bp0};

/* log2 of the positive float with bits ix (a subnormal's normalised, its
 * exponent field negative). */
static double log2_of_bits(uint32_t ix) {
    const uint32_t tmp = ix - LOG2_OFF;
    const int i = (int)((tmp >> (23 - LOG2_TABLE_BITS)) % LOG2_N);
    const uint32_t top = tmp & 0xff800000u;
    const int k = (int32_t)top >> 23;
    const double invc = log2_table[i].invc, logc = log2_table[i].logc;
    const double z = l2_bits_float(ix - top);
    /* log2(x) = log2(z/c) + log2(c) + k with z/c - 1 rounded once (glibc
     * fuses it); z is near c, so z times 1/c's high half less 1 is exact. */
    const double r = float_product_minus(z, invc, 1.0);
    const double y0 = logc + (double)k;
    const double r2 = r * r;
    double y = fused_madd(log2_poly[0], r, log2_poly[1]);
    const double p = fused_madd(log2_poly[2], r, log2_poly[3]);
    const double r4 = r2 * r2;
    double q = fused_madd(log2_poly[4], r, y0);
    q = fused_madd(p, r2, q);
    y = fused_madd(y, r4, q);
    return y;
}

/* 2^xd for xd in [-1021, 1023], the sign bit set by sign_bias. */
static double exp2_of(double xd, uint64_t sign_bias) {
    double kd = xd + EXP2_SHIFT / EXP2_N;
    const uint64_t ki = l2_double_bits(kd);
    kd -= EXP2_SHIFT / EXP2_N;
    const double r = xd - kd;
    const double s = exp2_scale(ki, sign_bias);
    const double z = fused_madd(l2_exp2_poly[0], r, l2_exp2_poly[1]), r2 = r * r;
    double y = fused_madd(l2_exp2_poly[2], r, 1.0);
    y = fused_madd(z, r2, y);
    return y * s;
}

/* 0 if y (bits, non-zero finite) is not an integer, 1 if odd, 2 if even. */
static int integer_kind(uint32_t iy) {
    const int e = (int)(iy >> 23 & 0xff);
    if (e < 0x7f) return 0;
    if (e > 0x7f + 23) return 2;
    if (iy & ((1u << (0x7f + 23 - e)) - 1)) return 0;
    if (iy & (1u << (0x7f + 23 - e))) return 1;
    return 2;
}

/* Whether the float with bits u is 0, infinite or NaN. */
static int zero_inf_nan(uint32_t u) { return 2 * u - 1 >= 2u * 0x7f800000u - 1; }

static int signaling_nan(uint32_t u) { return 2 * (u ^ 0x00400000u) > 2u * 0x7fc00000u; }

/* The sign given by bias and a value that overflows or underflows to it
 * (glibc's __math_oflowf, __math_uflowf, __math_may_uflowf). */
static float signed_square(uint64_t sign_bias, float v) { return (sign_bias ? -v : v) * v; }

#define POW_SIGN_BIAS (1u << (EXP2_TABLE_BITS + 11))

float l2_powf(float x, float y) {
    uint64_t sign_bias = 0;
    uint32_t ix = l2_float_bits(x);
    const uint32_t iy = l2_float_bits(y);
    if (ix - 0x00800000u >= 0x7f800000u - 0x00800000u || zero_inf_nan(iy)) {
        /* x below 2^-126, infinite or NaN, or y 0, infinite or NaN. */
        if (zero_inf_nan(iy)) {
            if (2 * iy == 0) return signaling_nan(ix) ? x + y : 1.0f;
            if (ix == 0x3f800000u) return signaling_nan(iy) ? x + y : 1.0f;
            if (2 * ix > 2u * 0x7f800000u || 2 * iy > 2u * 0x7f800000u) return x + y;
            if (2 * ix == 2 * 0x3f800000u) return 1.0f;
            if ((2 * ix < 2 * 0x3f800000u) == !(iy & 0x80000000u)) return 0.0f;
            return y * y;
        }
        if (zero_inf_nan(ix)) {
            float x2 = x * x;
            if ((ix & 0x80000000u) && integer_kind(iy) == 1) {
                x2 = -x2;
                sign_bias = 1;
            }
            if (2 * ix == 0 && (iy & 0x80000000u)) return (sign_bias ? -1.0f : 1.0f) / 0.0f;
            return (iy & 0x80000000u) ? 1 / x2 : x2;
        }
        if (ix & 0x80000000u) {
            const int yint = integer_kind(iy);
            if (yint == 0) return (x - x) / (x - x);
            if (yint == 1) sign_bias = POW_SIGN_BIAS;
            ix &= 0x7fffffffu;
        }
        if (ix < 0x00800000u) {
            ix = l2_float_bits(x * 0x1p23f) & 0x7fffffffu;
            ix -= 23u << 23;
        }
    }
    const double logx = log2_of_bits(ix);
    const double ylogx = (double)y * logx;
    if ((l2_double_bits(ylogx) >> 47 & 0xffff) >= l2_double_bits(126.0) >> 47) {
        /* |y log2 x| >= 126 */
        if (ylogx > 0x1.fffffffd1d571p+6) return signed_square(sign_bias, 0x1p97f);
        if (ylogx <= -150.0) return signed_square(sign_bias, 0x1p-95f);
        if (ylogx < -149.0) return signed_square(sign_bias, 0x1.4p-75f);
    }
    return (float)exp2_of(ylogx, sign_bias);
}
