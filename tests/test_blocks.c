/*
 * The block kernels (src/kernels/ops_blocks.h: ggml's Q8_0 and Q4_0 with
 * Q8_0 activations): the scalar reference against plain double-precision
 * arithmetic and ggml's definitions, and every other table (AVX2, skipped
 * by name where the CPU lacks it) against the reference on random blocks
 * with extreme scales: zero, subnormal, fp16's largest, and weights of
 * -128. The quantizer is the reference's bits; the Q8_0 dots sum the
 * blocks in another order, so they are within a rounding bound of the
 * reference's, and a table's four-row dot is its one-row dot's bits. The
 * Q4_0 panels are the reference's dot's bits at every level, for any rows,
 * panel range, inputs and input stride.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/ops_blocks.h"
#include "model/float16.h"
#include "support.h"

#define MAX_BLOCKS 64

static uint64_t rng = 0x243F6A8885A308D3ull;

static float uniform(void) { return (float)(test_rng_next(&rng) % 20001) / 10000.0f - 1.0f; }

/* The fp16 scales the cases use: ordinary ones and the extremes. */
static uint16_t scale_bits(int kind) {
    switch (kind % 8) {
    case 0: return 0x0000;                                /* zero */
    case 1: return 0x0001;                                /* the smallest subnormal */
    case 2: return 0x7BFF;                                /* 65504, the largest */
    case 3: return 0x83FF;                                /* a negative subnormal */
    default: return l2_f32_to_f16(uniform() * 0.05f);     /* ordinary */
    }
}

static void random_q8_blocks(l2_block_q8_0 *b, int n, int extreme) {
    for (int i = 0; i < n; i++) {
        b[i].d = extreme ? scale_bits((int)(test_rng_next(&rng) % 8)) : l2_f32_to_f16(uniform() * 0.05f);
        for (int j = 0; j < L2_BLOCK; j++) b[i].qs[j] = (int8_t)(test_rng_next(&rng) % 256 - 128);
        if (extreme && i % 3 == 0) memset(b[i].qs, 0x80, sizeof b[i].qs); /* -128 everywhere */
    }
}

static void random_q4_blocks(l2_block_q4_0 *b, int n, int extreme) {
    for (int i = 0; i < n; i++) {
        b[i].d = extreme ? scale_bits((int)(test_rng_next(&rng) % 8)) : l2_f32_to_f16(uniform() * 0.05f);
        for (int j = 0; j < L2_BLOCK / 2; j++) b[i].qs[j] = (uint8_t)(test_rng_next(&rng) % 256);
        if (extreme && i % 3 == 0) memset(b[i].qs, i % 2 ? 0x00 : 0xFF, sizeof b[i].qs); /* all -8 or all 7 */
    }
}

/* Activations as the quantizer makes them: values in [-127, 127]. */
static void random_activations(l2_block_q8_0 *b, int n, int extreme) {
    float x[MAX_BLOCKS * L2_BLOCK];
    for (int i = 0; i < n * L2_BLOCK; i++) {
        x[i] = uniform() * (extreme ? 60000.0f : 3.0f);
        if (extreme && i % 97 == 0) x[i] = 1e-42f;
    }
    l2_block_kernels_reference()->quantize_q8_0(b, x, n * L2_BLOCK);
}

/* --------------------------------------------------- the reference */

static void test_reference_quantize(void **state) {
    float x[4 * L2_BLOCK];
    for (int i = 0; i < 4 * L2_BLOCK; i++) x[i] = uniform() * 4.0f;
    for (int j = 0; j < L2_BLOCK; j++) x[L2_BLOCK + j] = 0.0f;        /* a zero block */
    for (int j = 0; j < L2_BLOCK; j++) x[2 * L2_BLOCK + j] = 1e-42f;  /* 1 / d overflows */
    x[3 * L2_BLOCK + 5] = NAN;
    l2_block_q8_0 b[4];
    l2_block_kernels_reference()->quantize_q8_0(b, x, 4 * L2_BLOCK);
    /* ggml's definition, block 0: d = max|x| / 127, q = round(x / d). */
    float amax = 0.0f;
    for (int j = 0; j < L2_BLOCK; j++) amax = fmaxf(amax, fabsf(x[j]));
    assert_int_equal(b[0].d, l2_f32_to_f16(amax / 127.0f));
    for (int j = 0; j < L2_BLOCK; j++) {
        assert_true(abs(b[0].qs[j]) <= 127);
        assert_true(fabsf((float)b[0].qs[j] - x[j] * (127.0f / amax)) <= 0.5001f);
    }
    assert_int_equal(b[1].d, 0);
    assert_int_equal(b[2].d, 0);
    for (int j = 0; j < L2_BLOCK; j++) assert_int_equal(b[1].qs[j], 0);
    for (int j = 0; j < L2_BLOCK; j++) assert_int_equal(b[2].qs[j], 0);
    assert_int_equal(b[3].qs[5], 0); /* the NaN */
}

/* The reference's dot products against the same sums in double. */
static void test_reference_dots(void **state) {
    l2_block_q8_0 w8[MAX_BLOCKS], x[MAX_BLOCKS];
    l2_block_q4_0 w4[MAX_BLOCKS];
    const l2_block_kernels *k = l2_block_kernels_reference();
    for (int trial = 0; trial < 50; trial++) {
        const int n = 1 + (int)(test_rng_next(&rng) % MAX_BLOCKS);
        random_q8_blocks(w8, n, 0);
        random_q4_blocks(w4, n, 0);
        random_activations(x, n, 0);
        double want8 = 0.0, want4 = 0.0, mag = 0.0;
        for (int b = 0; b < n; b++) {
            const double dx = l2_f16_to_f32(x[b].d);
            for (int j = 0; j < L2_BLOCK; j++) {
                const int v4 = j < 16 ? (w4[b].qs[j] & 0x0F) - 8 : (w4[b].qs[j - 16] >> 4) - 8;
                want8 += (double)l2_f16_to_f32(w8[b].d) * w8[b].qs[j] * dx * x[b].qs[j];
                want4 += (double)l2_f16_to_f32(w4[b].d) * v4 * dx * x[b].qs[j];
                mag += fabs((double)l2_f16_to_f32(w8[b].d) * 128 * dx * 127);
            }
        }
        assert_true(fabs(k->dot_q8_0(w8, x, n) - want8) <= 1e-5 * mag);
        assert_true(fabs(k->dot_q4_0(w4, x, n) - want4) <= 1e-5 * mag);
    }
}

/* ------------------------------------------- every table, the same bits */

static const l2_block_kernels *table_or_skip(const char *name) {
    const l2_block_kernels *k = strcmp(name, "avx2") == 0          ? l2_block_kernels_avx2()
                                : strcmp(name, "avx512-vnni") == 0 ? l2_block_kernels_avx512_vnni()
                                : strcmp(name, "neon") == 0        ? l2_block_kernels_neon()
                                                                   : l2_block_kernels_reference();
    if (!k) {
        print_message("skipped: this CPU (or build) cannot run the %s block kernels\n", name);
        skip();
    }
    return k;
}

static void test_table_quantize(void **state) {
    const l2_block_kernels *k = table_or_skip(*state), *ref = l2_block_kernels_reference();
    float x[MAX_BLOCKS * L2_BLOCK];
    l2_block_q8_0 a[MAX_BLOCKS], b[MAX_BLOCKS];
    for (int trial = 0; trial < 200; trial++) {
        const int n = 1 + (int)(test_rng_next(&rng) % MAX_BLOCKS);
        const float range = trial % 4 == 0 ? 1e-40f : trial % 4 == 1 ? 60000.0f : 2.0f;
        for (int i = 0; i < n * L2_BLOCK; i++) x[i] = uniform() * range;
        /* Exact halves after scaling, NaN and infinity now and then. */
        if (trial % 5 == 0) x[3] = NAN;
        if (trial % 7 == 0) x[0] = 0.5f * (float)(trial % 9);
        if (trial % 11 == 0) x[n * L2_BLOCK - 1] = INFINITY;
        ref->quantize_q8_0(a, x, n * L2_BLOCK);
        k->quantize_q8_0(b, x, n * L2_BLOCK);
        assert_memory_equal(a, b, (size_t)n * sizeof a[0]);
    }
}

/* How far a table's dot may be from the reference's: both sum the same
 * n * 32 exact integer products times their block's scale product, in
 * different orders, so each is within (n + 8) * FLT_EPSILON times the sum
 * of the terms' magnitudes of the exact sum (a loose bound on recursive
 * summation's error, for any order). */
static double q8_bound(const l2_block_q8_0 *w, const l2_block_q8_0 *x, int n) {
    double mag = 0.0;
    for (int b = 0; b < n; b++) {
        double s = 0.0;
        for (int j = 0; j < L2_BLOCK; j++) s += fabs((double)w[b].qs[j] * x[b].qs[j]);
        mag += s * fabs((double)l2_f16_to_f32(w[b].d) * l2_f16_to_f32(x[b].d));
    }
    return 2.0 * (n + 8) * FLT_EPSILON * mag;
}

static double q4_bound(const l2_block_q4_0 *w, const l2_block_q8_0 *x, int n) {
    double mag = 0.0;
    for (int b = 0; b < n; b++) {
        double s = 0.0;
        for (int j = 0; j < L2_BLOCK; j++) {
            const int v = j < 16 ? (w[b].qs[j] & 0x0F) - 8 : (w[b].qs[j - 16] >> 4) - 8;
            s += fabs((double)v * x[b].qs[j]);
        }
        mag += s * fabs((double)l2_f16_to_f32(w[b].d) * l2_f16_to_f32(x[b].d));
    }
    return 2.0 * (n + 8) * FLT_EPSILON * mag;
}

/* A table's dot against the reference's: the same bits for the reference
 * itself and the neon table (which keeps its order), within the bound for
 * the others (the sum's order differs). */
static void assert_close(const l2_block_kernels *k, float got, float want, double bound) {
    if (k == l2_block_kernels_reference() || strcmp(k->name, "neon") == 0) {
        assert_true(test_same_float(got, want));
        return;
    }
    if (!(fabs((double)got - (double)want) <= bound))
        fail_msg("%s: %.9g, reference %.9g, bound %g", k->name, (double)got, (double)want, bound);
}

static void test_table_dots(void **state) {
    const l2_block_kernels *k = table_or_skip(*state), *ref = l2_block_kernels_reference();
    l2_block_q8_0 w8[MAX_BLOCKS], x[MAX_BLOCKS];
    l2_block_q4_0 w4[MAX_BLOCKS];
    for (int trial = 0; trial < 400; trial++) {
        const int n = 1 + (int)(test_rng_next(&rng) % MAX_BLOCKS), extreme = trial % 2;
        random_q8_blocks(w8, n, extreme);
        random_q4_blocks(w4, n, extreme);
        random_activations(x, n, extreme);
        assert_close(k, k->dot_q8_0(w8, x, n), ref->dot_q8_0(w8, x, n), q8_bound(w8, x, n));
        assert_close(k, k->dot_q4_0(w4, x, n), ref->dot_q4_0(w4, x, n), q4_bound(w4, x, n));
    }
}

/* Four rows at once: each row's bits are the same table's one-row dot (so
 * a row's output does not depend on which rows run with it), and near the
 * reference's. */
static void test_table_dots_four_rows(void **state) {
    const l2_block_kernels *k = table_or_skip(*state), *ref = l2_block_kernels_reference();
    static l2_block_q8_0 w8[4 * MAX_BLOCKS], x[MAX_BLOCKS];
    for (int trial = 0; trial < 200; trial++) {
        const int n = 1 + (int)(test_rng_next(&rng) % MAX_BLOCKS), extreme = trial % 2;
        random_q8_blocks(w8, 4 * n, extreme);
        random_activations(x, n, extreme);
        float out8[4];
        k->dot4_q8_0(out8, w8, (size_t)n, x, n);
        for (int r = 0; r < 4; r++) {
            assert_true(test_same_float(out8[r], k->dot_q8_0(w8 + r * n, x, n)));
            assert_close(k, out8[r], ref->dot_q8_0(w8 + r * n, x, n), q8_bound(w8 + r * n, x, n));
        }
    }
}

/* Four rows against two inputs (a prompt's): each (row, input) is the
 * same table's one-row dot's bits, so a row's output does not depend on
 * which input runs beside it. */
static void test_table_dots_two_inputs(void **state) {
    const l2_block_kernels *k = table_or_skip(*state);
    static l2_block_q8_0 w8[4 * MAX_BLOCKS], x[2 * MAX_BLOCKS + 3];
    for (int trial = 0; trial < 200; trial++) {
        const int n = 1 + (int)(test_rng_next(&rng) % MAX_BLOCKS), extreme = trial % 2;
        const size_t stride = (size_t)n + (size_t)(trial % 4); /* inputs apart by more than a row, too */
        random_q8_blocks(w8, 4 * n, extreme);
        random_activations(x, n, extreme);
        random_activations(x + stride, n, extreme);
        float out8[8];
        k->dot4x2_q8_0(out8, w8, (size_t)n, x, stride, n);
        for (int i = 0; i < 2; i++)
            for (int r = 0; r < 4; r++)
                assert_true(test_same_float(out8[4 * i + r], k->dot_q8_0(w8 + r * n, x + (size_t)i * stride, n)));
    }
}

/* Q4_0 panels: a random matrix of 1 to 40 rows (a last panel cut short,
 * too) packed, a random range of its panels against 1 to 11 inputs (more
 * than a tile, and inputs apart by more than a row): every row of the
 * range is the reference's dot_q4_0's bits for each input, and nothing
 * outside the range's rows is written. Blocks past 64 (the reference's
 * own panel kernel carries its sums over) with 1 in 8 trials. */
/* The reference's dot of a row with an input, as the panel check asks. */
typedef struct q4_0_rows {
    const l2_block_kernels *ref;
    const l2_block_q4_0 *w;
    const l2_block_q8_0 *x;
    size_t stride;
    int n;
} q4_0_rows;
static float q4_0_row_dot(const void *ctx, int row, int input) {
    const q4_0_rows *c = ctx;
    return c->ref->dot_q4_0(c->w + (size_t)row * (size_t)c->n, c->x + (size_t)input * c->stride, c->n);
}

#define PANEL_MAX_ROWS 40
#define PANEL_MAX_INPUTS 11
#define PANEL_MAX_BLOCKS 80
static void test_table_q4_0_panels(void **state) {
    const l2_block_kernels *k = table_or_skip(*state), *ref = l2_block_kernels_reference();
    static l2_block_q4_0 w[PANEL_MAX_ROWS * PANEL_MAX_BLOCKS];
    static l2_block_q8_0 x[PANEL_MAX_INPUTS * (PANEL_MAX_BLOCKS + 3)];
    static l2_block_q8_0_summary xs[PANEL_MAX_INPUTS * (PANEL_MAX_BLOCKS + 3)];
    static float out[PANEL_MAX_INPUTS * (PANEL_MAX_ROWS + 5)];
    for (int trial = 0; trial < 150; trial++) {
        const int extreme = trial % 2, rows = 1 + (int)(test_rng_next(&rng) % PANEL_MAX_ROWS);
        const int n = trial % 8 == 0 ? 65 + (int)(test_rng_next(&rng) % (PANEL_MAX_BLOCKS - 64))
                                     : 1 + (int)(test_rng_next(&rng) % 64);
        const int n_inputs = 1 + (int)(test_rng_next(&rng) % PANEL_MAX_INPUTS);
        const size_t stride = (size_t)n + (size_t)(trial % 4), out_stride = (size_t)rows + (size_t)(trial % 6);
        random_q4_blocks(w, rows * n, extreme);
        for (int i = 0; i < n_inputs; i++) {
            random_activations(x + (size_t)i * stride, n > MAX_BLOCKS ? MAX_BLOCKS : n, extreme);
            if (n > MAX_BLOCKS) random_activations(x + (size_t)i * stride + MAX_BLOCKS, n - MAX_BLOCKS, extreme);
            l2_block_q8_0_summarize(xs + (size_t)i * stride, x + (size_t)i * stride, n);
        }
        const size_t bytes = l2_q4_0_panels_pack(NULL, w, rows, n);
        unsigned char *panels = malloc(bytes);
        assert_non_null(panels);
        assert_int_equal(l2_q4_0_panels_pack(panels, w, rows, n), bytes);
        int begin, end;
        test_panel_start(&rng, rows, &begin, &end, out, sizeof out / sizeof out[0]);
        k->q4_0_panels(out, out_stride, panels, rows, begin, end, x, xs, stride, n_inputs, n);
        const q4_0_rows want = {ref, w, x, stride, n};
        test_panel_check(k->name, out, out_stride, rows, begin, end, n_inputs, n, q4_0_row_dot, &want);
        free(panels);
    }
}

/* Each level's table brings its block table: AVX2 for the x86 levels, the
 * neon table for the neon levels (on aarch64), the reference for the others
 * (and under LLAMA2_KERNELS=scalar). */
static void test_table_for_level(void **state) {
    assert_ptr_equal(l2_block_kernels_for("scalar"), l2_block_kernels_reference());
    assert_ptr_equal(l2_block_kernels_for(NULL), l2_block_kernels_reference());
    const l2_block_kernels *neon = l2_block_kernels_neon();
    assert_ptr_equal(l2_block_kernels_for("neon"), neon ? neon : l2_block_kernels_reference());
    assert_ptr_equal(l2_block_kernels_for("neon-exact"), neon ? neon : l2_block_kernels_reference());
    if (neon) {
        assert_string_equal(neon->name, "neon");
        return;
    }
    const l2_block_kernels *avx2 = l2_block_kernels_avx2();
    if (!avx2) {
        print_message("skipped: this CPU (or build) cannot run the avx2 block kernels\n");
        skip();
    }
    assert_ptr_equal(l2_block_kernels_for("avx2-exact"), avx2);
    assert_ptr_equal(l2_block_kernels_for("avx512"), avx2);
    assert_string_equal(avx2->name, "avx2");
    /* The AVX512-VNNI levels bring their own where the CPU has it. */
    const l2_block_kernels *vnni = l2_block_kernels_avx512_vnni();
    assert_ptr_equal(l2_block_kernels_for("avx512-vnni"), vnni ? vnni : avx2);
    assert_ptr_equal(l2_block_kernels_for("amx-exact"), vnni ? vnni : avx2);
    if (vnni) assert_string_equal(vnni->name, "avx512-vnni");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_quantize),
        cmocka_unit_test(test_reference_dots),
#if defined(__x86_64__) || defined(__i386__)
        cmocka_unit_test_prestate(test_table_quantize, "avx2"),
        cmocka_unit_test_prestate(test_table_dots, "avx2"),
        cmocka_unit_test_prestate(test_table_dots_four_rows, "avx2"),
        cmocka_unit_test_prestate(test_table_dots_two_inputs, "avx2"),
        cmocka_unit_test_prestate(test_table_q4_0_panels, "avx2"),
        cmocka_unit_test_prestate(test_table_q4_0_panels, "avx512-vnni"),
#endif
        cmocka_unit_test_prestate(test_table_dots_four_rows, "scalar"),
        cmocka_unit_test_prestate(test_table_dots_two_inputs, "scalar"),
        cmocka_unit_test_prestate(test_table_q4_0_panels, "scalar"),
#if defined(__aarch64__)
        cmocka_unit_test_prestate(test_table_quantize, "neon"),
        cmocka_unit_test_prestate(test_table_dots, "neon"),
        cmocka_unit_test_prestate(test_table_dots_four_rows, "neon"),
        cmocka_unit_test_prestate(test_table_dots_two_inputs, "neon"),
        cmocka_unit_test_prestate(test_table_q4_0_panels, "neon"),
#endif
        cmocka_unit_test(test_table_for_level),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
