/*
 * The engine's expf, sinf, cosf and powf (src/platform/float_math.c) give
 * glibc's bits:
 *   - everywhere (Windows included): at inputs where glibc's result is not
 *     the correctly rounded one, and where MinGW-w64's C runtime differs;
 *   - on glibc itself, input by input against the C library: expf at all
 *     2^32 floats; sinf and cosf at every float from 0 to 2^16 (every RoPE
 *     angle of a context up to 65536 positions is one), and at every angle
 *     pos * frequency the engine forms for the usual head sizes and thetas
 *     over 8192 positions; powf at every (theta, 2j / head_size) the
 *     engine asks for, for those thetas and every even head size up to
 *     1024, and at every 251st float theta and exponent.
 * The comparisons with the C library run where it is glibc on x86-64 with
 * FMA and AVX2 (glibc's FMA variant, which the recordings were made with);
 * elsewhere they skip by name. The sanitized build takes every 97th input
 * of the large sweeps (it runs each several times slower).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "platform/float_math.h"
#include "platform/bits.h"
#include "support.h"
#include "platform/platform.h"

/* The stride of the large sweeps (a prime: every bit pattern of the low
 * bits is met). */
#define SWEEP_STRIDE (SANITIZED ? 97u : 1u)

/* The same float, or both NaN (a NaN's sign and payload are the CPU's). */
static int same(float a, float b) { return l2_float_bits(a) == l2_float_bits(b) || (a != a && b != b); }

/* ------------------------------------------------- known values, everywhere */

/* glibc's results, recorded with glibc 2.36 on x86-64: where glibc is not
 * correctly rounded (the first expf, sinf and cosf rows), where MinGW-w64's
 * runtime rounds otherwise, and at the ends of the ranges. */
static void test_glibc_values(void **state) {
    (void)state;
    static const float exps[][2] = {
        {0x1.9655ecp-13f, 0x1.000cb4p+0f}, {-0x1.0c3d1p+2f, 0x1.efb472p-7f}, {-0x1.042214p+3f, 0x1.352302p-12f},
        {-0x1.9ep+6f, 0x1p-149f},          {0x1.62p+6f, 0x1.99b988p+127f},  {0.0f, 1.0f},
        {-200.0f, 0.0f},                   {100.0f, INFINITY},
    };
    for (size_t i = 0; i < sizeof exps / sizeof exps[0]; i++)
        if (!same(l2_expf(exps[i][0]), exps[i][1]))
            fail_msg("l2_expf(%a) = %a, glibc gives %a", (double)exps[i][0], (double)l2_expf(exps[i][0]),
                     (double)exps[i][1]);
    static const float sincos[][3] = {
        {0x1.012fc6p+0f, 0x1.b01c5cp-1f, 0x1.12a282p-1f},   {0x1.477882p+0f, 0x1.ea624cp-1f, 0x1.2665fp-2f},
        {0x1.fep+6f, 0x1.ee0f82p-1f, -0x1.0cafcep-2f},      {0x1.ffep+11f, -0x1.fee26cp-1f, -0x1.0e3cd8p-4f},
        {0x1.e8p+16f, -0x1.15c854p-1f, 0x1.ae1812p-1f},     {0x1.65a0bcp+31f, 0x1.f958b4p-1f, -0x1.4917f8p-3f},
        {0.0f, 0.0f, 1.0f},
    };
    for (size_t i = 0; i < sizeof sincos / sizeof sincos[0]; i++) {
        const float x = sincos[i][0];
        if (!same(l2_sinf(x), sincos[i][1]))
            fail_msg("l2_sinf(%a) = %a, glibc gives %a", (double)x, (double)l2_sinf(x), (double)sincos[i][1]);
        if (!same(l2_cosf(x), sincos[i][2]))
            fail_msg("l2_cosf(%a) = %a, glibc gives %a", (double)x, (double)l2_cosf(x), (double)sincos[i][2]);
    }
    static const float pows[][3] = {
        {0x1.388p+13f, 0x1p-2f, 0x1.4p+3f},
        {0x1.388p+13f, 0x1.8p-2f, 0x1.f9f6e4p+4f},
        {0x1.388p+13f, 0x1.ep-1f, 0x1.5f769cp+12f},
        {0x1.e848p+18f, 0x1.555556p-2f, 0x1.3d7af2p+6f},
        {0x1.e848p+19f, 0x1.fp-1f, 0x1.3d14b4p+19f},
        {10000.0f, 0.0f, 1.0f},
    };
    for (size_t i = 0; i < sizeof pows / sizeof pows[0]; i++) {
        const float got = l2_powf(pows[i][0], pows[i][1]);
        if (!same(got, pows[i][2]))
            fail_msg("l2_powf(%a, %a) = %a, glibc gives %a", (double)pows[i][0], (double)pows[i][1], (double)got,
                     (double)pows[i][2]);
    }
    assert_true(isnan(l2_expf(NAN)) && isnan(l2_sinf(INFINITY)) && isnan(l2_cosf(NAN)) && isnan(l2_powf(-2, 0.5f)));
}

/* ------------------------------------------------- against glibc itself */

#if defined(__GLIBC__) && (defined(__x86_64__) || defined(_M_X64))
#define AGAINST_GLIBC 1
#else
#define AGAINST_GLIBC 0
#endif

/* Skips the running test where the C library is not glibc's FMA variant. */
static void require_glibc_fma(void) {
#if AGAINST_GLIBC
    __builtin_cpu_init();
    if (__builtin_cpu_supports("fma") && __builtin_cpu_supports("avx2")) return;
    print_message("skipped: glibc runs its variant without FMA on this CPU (the recordings used the FMA one)\n");
#else
    print_message("skipped: the C library here is not glibc on x86-64 (the reference these compare with)\n");
#endif
    skip();
}

/* One of the two halves of a sweep over the float bit patterns [begin, end):
 * each thread takes every other stride. */
typedef struct {
    uint64_t begin, end;
    int part, function; /* 0 expf, 1 sinf, 2 cosf */
    uint64_t checked, wrong;
    uint32_t first_wrong;
} sweep;

enum { EXPF, SINF, COSF };

static void sweep_part(void *arg) {
    sweep *s = arg;
    const uint64_t step = 2ull * SWEEP_STRIDE;
    for (uint64_t u = s->begin + (uint64_t)s->part * SWEEP_STRIDE; u < s->end; u += step) {
        const float x = l2_bits_float((uint32_t)u);
        float ours, theirs;
        switch (s->function) {
        case EXPF:
            ours = l2_expf(x);
            theirs = expf(x);
            break;
        case SINF:
            ours = l2_sinf(x);
            theirs = sinf(x);
            break;
        default:
            ours = l2_cosf(x);
            theirs = cosf(x);
        }
        s->checked++;
        if (!same(ours, theirs) && s->wrong++ == 0) s->first_wrong = (uint32_t)u;
    }
}

static const char *const function_names[] = {"expf", "sinf", "cosf"};

/* Every float with bits in [begin, end), on two threads; fails at the first
 * input where the engine's function and glibc's differ. */
static void sweep_bits(int function, uint64_t begin, uint64_t end) {
    sweep parts[2];
    l2_thread *threads[2] = {NULL, NULL};
    for (int i = 0; i < 2; i++) {
        parts[i] = (sweep){.begin = begin, .end = end, .part = i, .function = function};
        assert_int_equal(l2_thread_start(&threads[i], sweep_part, &parts[i]), 0);
    }
    for (int i = 0; i < 2; i++) l2_thread_join(threads[i]);
    const uint64_t wrong = parts[0].wrong + parts[1].wrong, checked = parts[0].checked + parts[1].checked;
    if (wrong) {
        const uint32_t u = parts[0].wrong ? parts[0].first_wrong : parts[1].first_wrong;
        fail_msg("%s: %llu of %llu inputs differ from glibc's, among them %a", function_names[function],
                 (unsigned long long)wrong, (unsigned long long)checked, (double)l2_bits_float(u));
    }
    print_message("%s: %llu inputs, all glibc's bits\n", function_names[function], (unsigned long long)checked);
}

static void test_expf_every_float(void **state) {
    (void)state;
    require_glibc_fma();
    sweep_bits(EXPF, 0, 1ull << 32);
}

/* Every float from 2^-12 to 2^16 (the angles of any position below 65536;
 * below 2^-12 sinf is x and cosf 1, in both). */
static void test_sinf_cosf_sweep(void **state) {
    (void)state;
    require_glibc_fma();
    for (int f = SINF; f <= COSF; f++) sweep_bits(f, l2_float_bits(0x1p-12f), l2_float_bits(65536.0f));
}

/* RoPE as the engine builds it (src/run/session.c): for each theta and
 * head size, every position's angle pos * theta^(-2j / head_size). */
static const float thetas[] = {10000.0f, 500000.0f, 1000000.0f};

static void test_rope_angles(void **state) {
    (void)state;
    require_glibc_fma();
    static const int head_sizes[] = {8, 16, 32, 48, 64, 80, 96, 128, 256};
    const int positions = SANITIZED ? 512 : 8192;
    unsigned long long checked = 0;
    for (size_t t = 0; t < sizeof thetas / sizeof thetas[0]; t++)
        for (size_t h = 0; h < sizeof head_sizes / sizeof head_sizes[0]; h++)
            for (int j = 0; j < head_sizes[h] / 2; j++) {
                const float freq = 1.0f / l2_powf(thetas[t], (float)(2 * j) / (float)head_sizes[h]);
                for (int pos = 0; pos < positions; pos++) {
                    const float val = (float)pos * freq;
                    if (!same(l2_sinf(val), sinf(val)) || !same(l2_cosf(val), cosf(val)))
                        fail_msg("theta %g, head size %d, j %d, position %d: angle %a: sin %a cos %a, glibc %a %a",
                                 (double)thetas[t], head_sizes[h], j, pos, (double)val, (double)l2_sinf(val),
                                 (double)l2_cosf(val), (double)sinf(val), (double)cosf(val));
                    checked++;
                }
            }
    print_message("RoPE angles: %llu, all glibc's sin and cos\n", checked);
}

static void check_pow(float x, float y, unsigned long long *checked) {
    const float ours = l2_powf(x, y), theirs = powf(x, y);
    if (!same(ours, theirs))
        fail_msg("l2_powf(%a, %a) = %a, glibc gives %a", (double)x, (double)y, (double)ours, (double)theirs);
    (*checked)++;
}

/* Every (theta, 2j / head_size) of the thetas above and each even head size
 * up to 1024; then every 251st float theta from the smallest to the largest
 * with four exponents, and every 251st float exponent in [0, 1] with
 * theta 10000. */
static void test_powf(void **state) {
    (void)state;
    require_glibc_fma();
    unsigned long long checked = 0;
    for (size_t t = 0; t < sizeof thetas / sizeof thetas[0]; t++)
        for (int hs = 2; hs <= 1024; hs += 2)
            for (int j = 0; j < hs / 2; j++) check_pow(thetas[t], (float)(2 * j) / (float)hs, &checked);
    static const float exponents[] = {0.5f, 0.25f, 0x1.555556p-2f, 0.96875f};
    const uint32_t stride = 251 * SWEEP_STRIDE;
    for (size_t e = 0; e < sizeof exponents / sizeof exponents[0]; e++)
        for (uint32_t u = 1; u < 0x7f800000u; u += stride) check_pow(l2_bits_float(u), exponents[e], &checked);
    for (uint32_t u = 0; u <= l2_float_bits(1.0f); u += stride) check_pow(10000.0f, l2_bits_float(u), &checked);
    print_message("powf: %llu inputs, all glibc's bits\n", checked);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_glibc_values),     cmocka_unit_test(test_expf_every_float),
        cmocka_unit_test(test_sinf_cosf_sweep),  cmocka_unit_test(test_rope_angles),
        cmocka_unit_test(test_powf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
