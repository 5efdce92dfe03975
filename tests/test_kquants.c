/*
 * The K-quant kernels (src/kernels/ops_kquants.h: ggml's Q4_K, Q5_K and
 * Q6_K with Q8_K activations): the reference's quantizer against ggml's
 * definition, its dots against double-precision sums of the dequantized
 * weights (ggml_dequant.c, itself held to the layouts by test_gguf), and
 * every other table (AVX2, skipped by name where the CPU lacks it) against
 * the reference on random blocks with extreme scales: zero, subnormal,
 * fp16's largest, negative, 6-bit scales and mins of 63, Q6_K scales of
 * -128. The integer sums are exact; the float sums differ in order, so a
 * table's dot is within a rounding bound of the reference's, and its
 * four-row and two-input dots are its one-row dot's bits. The Q4_K and
 * Q6_K panels (the reference's and AVX512-VNNI's) are held to their own
 * order's bits (l2_q4_K_dot_blockwise, l2_q6_K_dot_blockwise), itself
 * held to the dequantized sums.
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
#include "kernels/ops_kquants.h"
#include "model/float16.h"
#include "model/ggml_dequant.h"
#include "model/gguf.h"
#include "support.h"

#define MAX_BLOCKS 12
#define QK L2_SUPER_BLOCK

static uint64_t rng = 0x13198A2E03707344ull;

static float uniform(void) { return (float)(test_rng_next(&rng) % 20001) / 10000.0f - 1.0f; }

static uint16_t scale_bits(int kind) {
    switch (kind % 8) {
    case 0: return 0x0000; /* zero */
    case 1: return 0x0001; /* the smallest subnormal */
    case 2: return 0x7BFF; /* 65504, the largest */
    case 3: return 0x83FF; /* a negative subnormal */
    case 4: return l2_f32_to_f16(-uniform() * 0.05f - 0.06f); /* negative */
    default: return l2_f32_to_f16(uniform() * 0.05f);
    }
}

static void random_bytes(void *p, size_t n) {
    unsigned char *b = p;
    for (size_t i = 0; i < n; i++) b[i] = (unsigned char)test_rng_next(&rng);
}

static void random_q4_K(l2_block_q4_K *b, int n, int extreme) {
    for (int i = 0; i < n; i++) {
        random_bytes(&b[i], sizeof b[i]);
        b[i].d = extreme ? scale_bits((int)(test_rng_next(&rng) % 8)) : l2_f32_to_f16(uniform() * 0.01f);
        b[i].dmin = extreme ? scale_bits((int)(test_rng_next(&rng) % 8)) : l2_f32_to_f16(uniform() * 0.01f);
        if (extreme && i % 3 == 0) {
            memset(b[i].scales, 0xFF, sizeof b[i].scales);           /* every scale and min 63 */
            memset(b[i].qs, i % 2 ? 0x00 : 0xFF, sizeof b[i].qs);    /* all 0 or all 15 */
        }
    }
}

static void random_q6_K(l2_block_q6_K *b, int n, int extreme) {
    for (int i = 0; i < n; i++) {
        random_bytes(&b[i], sizeof b[i]);
        b[i].d = extreme ? scale_bits((int)(test_rng_next(&rng) % 8)) : l2_f32_to_f16(uniform() * 0.01f);
        if (extreme && i % 3 == 0) {
            memset(b[i].scales, 0x80, sizeof b[i].scales);           /* -128 */
            memset(b[i].ql, i % 2 ? 0x00 : 0xFF, sizeof b[i].ql);    /* all -32 or all 31 */
            memset(b[i].qh, i % 2 ? 0x00 : 0xFF, sizeof b[i].qh);
        }
    }
}

static void random_activations(l2_block_q8_K *b, int n, int extreme) {
    static float x[MAX_BLOCKS * 2 * QK];
    for (int i = 0; i < n * QK; i++) {
        x[i] = uniform() * (extreme ? 60000.0f : 3.0f);
        if (extreme && i % 97 == 0) x[i] = 1e-42f;
    }
    if (extreme) memset(x, 0, QK * sizeof *x); /* a block of zeros: d = 0 */
    l2_quantize_q8_K_ref(b, x, n * QK);
}

/* --------------------------------------------------- the reference */

static void test_nearest_int(void **state) {
    assert_int_equal(l2_nearest_int(0.5f), 0);
    assert_int_equal(l2_nearest_int(1.5f), 2);
    assert_int_equal(l2_nearest_int(2.5f), 2);
    assert_int_equal(l2_nearest_int(-0.5f), 0);
    assert_int_equal(l2_nearest_int(-1.5f), -2);
    assert_int_equal(l2_nearest_int(-126.7f), -127);
    assert_int_equal(l2_nearest_int(3.49f), 3);
}

static void test_reference_quantize(void **state) {
    static float x[3 * QK];
    for (int i = 0; i < 3 * QK; i++) x[i] = uniform() * 4.0f;
    x[17] = -9.0f; /* block 0's largest magnitude, negative */
    for (int j = 0; j < QK; j++) x[QK + j] = 0.0f;
    x[2 * QK + 3] = 5.0f; /* block 2's, positive */
    l2_block_q8_K b[3];
    l2_quantize_q8_K_ref(b, x, 3 * QK);
    /* ggml's definition: iscale = -127 / max, d = 1 / iscale. */
    assert_true(b[0].d == 1.0f / (-127.0f / -9.0f));
    assert_int_equal(b[0].qs[17], -127); /* the largest magnitude maps to -127 */
    assert_true(b[2].d == 1.0f / (-127.0f / 5.0f));
    assert_int_equal(b[2].qs[3], -127);
    for (int k = 0; k < 3; k += 2) {
        const float iscale = 1.0f / b[k].d;
        for (int j = 0; j < QK; j++) {
            assert_true(abs(b[k].qs[j]) <= 127);
            assert_true(fabsf((float)b[k].qs[j] - x[k * QK + j] * iscale) <= 0.5001f);
        }
        for (int g = 0; g < 16; g++) {
            int sum = 0;
            for (int j = 0; j < 16; j++) sum += b[k].qs[16 * g + j];
            assert_int_equal(b[k].bsums[g], sum);
        }
    }
    assert_true(b[1].d == 0.0f);
    for (int j = 0; j < QK; j++) assert_int_equal(b[1].qs[j], 0);
    for (int g = 0; g < 16; g++) assert_int_equal(b[1].bsums[g], 0);
}

/* The reference's dots against the dequantized weights times the
 * activations, in double. */
static void test_reference_dots(void **state) {
    static l2_block_q4_K w4[MAX_BLOCKS];
    static l2_block_q6_K w6[MAX_BLOCKS];
    static l2_block_q8_K x[MAX_BLOCKS];
    static float v4[MAX_BLOCKS * QK], v6[MAX_BLOCKS * QK];
    const l2_kquant_kernels *k = l2_kquant_kernels_reference();
    for (int trial = 0; trial < 60; trial++) {
        const int n = 1 + (int)(test_rng_next(&rng) % MAX_BLOCKS);
        random_q4_K(w4, n, 0);
        random_q6_K(w6, n, 0);
        random_activations(x, n, 0);
        assert_true(l2_ggml_dequantize(L2_GGML_Q4_K, (const unsigned char *)w4, (size_t)n * QK, v4));
        assert_true(l2_ggml_dequantize(L2_GGML_Q6_K, (const unsigned char *)w6, (size_t)n * QK, v6));
        double want4 = 0.0, want6 = 0.0, mag4 = 0.0, mag6 = 0.0;
        for (int i = 0; i < n * QK; i++) {
            const double xi = (double)x[i / QK].d * x[i / QK].qs[i % QK];
            want4 += v4[i] * xi;
            want6 += v6[i] * xi;
            mag4 += fabs(v4[i] * xi);
            mag6 += fabs(v6[i] * xi);
        }
        if (!(fabs(k->dot_q4_K(w4, x, n) - want4) <= 1e-5 * mag4))
            fail_msg("q4_K: %.9g, want %.9g", (double)k->dot_q4_K(w4, x, n), want4);
        if (!(fabs(k->dot_q6_K(w6, x, n) - want6) <= 1e-5 * mag6))
            fail_msg("q6_K: %.9g, want %.9g", (double)k->dot_q6_K(w6, x, n), want6);
    }
}

/* ------------------------------------------- every table against it */

static const l2_kquant_kernels *table_or_skip(const char *name) {
    const l2_kquant_kernels *k = strcmp(name, "avx2") == 0          ? l2_kquant_kernels_avx2()
                                 : strcmp(name, "avx512-vnni") == 0 ? l2_kquant_kernels_avx512_vnni()
                                 : strcmp(name, "neon") == 0        ? l2_kquant_kernels_neon()
                                                                    : l2_kquant_kernels_reference();
    if (!k) {
        print_message("skipped: this CPU (or build) cannot run the %s K-quant kernels\n", name);
        skip();
    }
    return k;
}

/* The sum of the magnitudes of a dot's terms: each sub-block's products
 * times its scale and the block's d, and Q4_K's min terms. */
static double q4_K_magnitude(const l2_block_q4_K *w, const l2_block_q8_K *x, int n) {
    double mag = 0.0;
    for (int b = 0; b < n; b++) {
        for (int j = 0; j < 8; j++) {
            int sc, m;
            l2_q4_K_scale_min(w[b].scales, j, &sc, &m);
            double s = 0.0;
            for (int l = 0; l < 32; l++) {
                const int i = 32 * j + l;
                const uint8_t byte = w[b].qs[(i / 64) * 32 + l];
                s += fabs((double)(j % 2 ? byte >> 4 : byte & 15) * x[b].qs[i]);
            }
            mag += fabs((double)l2_f16_to_f32(w[b].d) * x[b].d) * sc * s;
            mag += fabs((double)l2_f16_to_f32(w[b].dmin) * x[b].d) * m *
                   fabs((double)x[b].bsums[2 * j] + x[b].bsums[2 * j + 1]);
        }
    }
    return mag;
}

static double q6_K_magnitude(const l2_block_q6_K *w, const l2_block_q8_K *x, int n) {
    float v[QK];
    double mag = 0.0;
    for (int b = 0; b < n; b++) {
        l2_ggml_dequantize(L2_GGML_Q6_K, (const unsigned char *)&w[b], QK, v);
        for (int i = 0; i < QK; i++) mag += fabs((double)v[i] * x[b].d * x[b].qs[i]);
    }
    return mag;
}

/* Both sums add at most 2n + 16 rounded terms, in different orders. */
static void assert_close(const l2_kquant_kernels *k, float got, float want, double mag, int n) {
    if (k == l2_kquant_kernels_reference()) {
        assert_true(test_same_float(got, want));
        return;
    }
    const double bound = 2.0 * (2 * n + 16) * FLT_EPSILON * mag;
    if (!(fabs((double)got - (double)want) <= bound))
        fail_msg("%s: %.9g, reference %.9g, bound %g", k->name, (double)got, (double)want, bound);
}

static void test_table_quantize(void **state) {
    const l2_kquant_kernels *k = table_or_skip(*state);
    static float x[MAX_BLOCKS * QK];
    static l2_block_q8_K a[MAX_BLOCKS], b[MAX_BLOCKS];
    for (int trial = 0; trial < 50; trial++) {
        const int n = 1 + (int)(test_rng_next(&rng) % MAX_BLOCKS);
        const float range = trial % 3 == 0 ? 1e-40f : trial % 3 == 1 ? 60000.0f : 2.0f;
        for (int i = 0; i < n * QK; i++) x[i] = uniform() * range;
        l2_quantize_q8_K_ref(a, x, n * QK);
        k->quantize_q8_K(b, x, n * QK);
        assert_memory_equal(a, b, (size_t)n * sizeof a[0]);
    }
}

static void test_table_dots(void **state) {
    const l2_kquant_kernels *k = table_or_skip(*state), *ref = l2_kquant_kernels_reference();
    static l2_block_q4_K w4[MAX_BLOCKS];
    static l2_block_q6_K w6[MAX_BLOCKS];
    static l2_block_q8_K x[MAX_BLOCKS];
    for (int trial = 0; trial < 300; trial++) {
        const int n = 1 + (int)(test_rng_next(&rng) % MAX_BLOCKS), extreme = trial % 2;
        random_q4_K(w4, n, extreme);
        random_q6_K(w6, n, extreme);
        random_activations(x, n, extreme);
        assert_close(k, k->dot_q4_K(w4, x, n), ref->dot_q4_K(w4, x, n), q4_K_magnitude(w4, x, n), n);
        assert_close(k, k->dot_q6_K(w6, x, n), ref->dot_q6_K(w6, x, n), q6_K_magnitude(w6, x, n), n);
    }
}

/* Four rows at once, and four rows against two inputs: each (row, input)
 * the same table's one-row dot's bits, so a row's output does not depend
 * on what runs beside it. */
static void test_table_rows_and_inputs(void **state) {
    const l2_kquant_kernels *k = table_or_skip(*state), *ref = l2_kquant_kernels_reference();
    static l2_block_q4_K w4[4 * MAX_BLOCKS];
    static l2_block_q6_K w6[4 * MAX_BLOCKS];
    static l2_block_q8_K x[2 * MAX_BLOCKS + 3];
    for (int trial = 0; trial < 120; trial++) {
        const int n = 1 + (int)(test_rng_next(&rng) % MAX_BLOCKS), extreme = trial % 2;
        const size_t stride = (size_t)n + (size_t)(trial % 4);
        random_q4_K(w4, 4 * n, extreme);
        random_q6_K(w6, 4 * n, extreme);
        random_activations(x, n, extreme);
        random_activations(x + stride, n, extreme);
        float o4[4], o6[4], e4[8], e6[8];
        k->dot4_q4_K(o4, w4, (size_t)n, x, n);
        k->dot4_q6_K(o6, w6, (size_t)n, x, n);
        k->dot4x2_q4_K(e4, w4, (size_t)n, x, stride, n);
        k->dot4x2_q6_K(e6, w6, (size_t)n, x, stride, n);
        for (int r = 0; r < 4; r++) {
            assert_true(test_same_float(o4[r], k->dot_q4_K(w4 + r * n, x, n)));
            assert_true(test_same_float(o6[r], k->dot_q6_K(w6 + r * n, x, n)));
            assert_close(k, o4[r], ref->dot_q4_K(w4 + r * n, x, n), q4_K_magnitude(w4 + r * n, x, n), n);
            assert_close(k, o6[r], ref->dot_q6_K(w6 + r * n, x, n), q6_K_magnitude(w6 + r * n, x, n), n);
            for (int i = 0; i < 2; i++) {
                assert_true(test_same_float(e4[4 * i + r], k->dot_q4_K(w4 + r * n, x + (size_t)i * stride, n)));
                assert_true(test_same_float(e6[4 * i + r], k->dot_q6_K(w6 + r * n, x + (size_t)i * stride, n)));
            }
        }
    }
}

/* The panels' orders on ggml's blocks against the dequantized weights
 * times the activations, in double, within the rounding of its 2n float
 * steps (each within FLT_EPSILON / 2 of its exact value, the sums'
 * magnitudes at most the terms'). */
static void test_reference_blockwise(void **state) {
    static l2_block_q4_K w[MAX_BLOCKS];
    static l2_block_q6_K w6[MAX_BLOCKS];
    static l2_block_q8_K x[MAX_BLOCKS];
    static float v[MAX_BLOCKS * QK];
    for (int trial = 0; trial < 60; trial++) {
        const int n = 1 + (int)(test_rng_next(&rng) % MAX_BLOCKS);
        random_q4_K(w, n, 0);
        random_activations(x, n, 0);
        assert_true(l2_ggml_dequantize(L2_GGML_Q4_K, (const unsigned char *)w, (size_t)n * QK, v));
        double want = 0.0;
        for (int i = 0; i < n * QK; i++) want += v[i] * ((double)x[i / QK].d * x[i / QK].qs[i % QK]);
        const double bound = 2.0 * (4 * n + 4) * FLT_EPSILON * q4_K_magnitude(w, x, n);
        const float got = l2_q4_K_dot_blockwise(w, x, n);
        if (!(fabs((double)got - want) <= bound)) fail_msg("blockwise: %.9g, want %.9g", (double)got, want);
        random_q6_K(w6, n, 0);
        assert_true(l2_ggml_dequantize(L2_GGML_Q6_K, (const unsigned char *)w6, (size_t)n * QK, v));
        double want6 = 0.0;
        for (int i = 0; i < n * QK; i++) want6 += v[i] * ((double)x[i / QK].d * x[i / QK].qs[i % QK]);
        const double bound6 = 2.0 * (2 * n + 2) * FLT_EPSILON * q6_K_magnitude(w6, x, n);
        const float got6 = l2_q6_K_dot_blockwise(w6, x, n);
        if (!(fabs((double)got6 - want6) <= bound6)) fail_msg("q6_K blockwise: %.9g, want %.9g", (double)got6, want6);
    }
}

/* Q4_K and Q6_K panels: a random matrix of 1 to 40 rows (a last panel
 * cut short, too) packed, a random range of its panels against 1 to 11
 * inputs (more than a tile, inputs apart by more than a row, extreme
 * scales in half the trials): every row of the range is the type's
 * blockwise dot's bits for each input, and nothing outside the range's
 * rows is written. */
#define PANEL_MAX_ROWS 40
#define PANEL_MAX_INPUTS 11
/* The blockwise dot of a row with an input, as the panel check asks. */
typedef struct k_rows {
    int q6;
    const void *w;
    const l2_block_q8_K *x;
    size_t stride;
    int n;
} k_rows;
static float k_row_dot(const void *ctx, int row, int input) {
    const k_rows *c = ctx;
    const l2_block_q8_K *xi = c->x + (size_t)input * c->stride;
    return c->q6 ? l2_q6_K_dot_blockwise((const l2_block_q6_K *)c->w + (size_t)row * (size_t)c->n, xi, c->n)
                 : l2_q4_K_dot_blockwise((const l2_block_q4_K *)c->w + (size_t)row * (size_t)c->n, xi, c->n);
}

static void check_panels(const l2_kquant_kernels *k, int q6, const void *w, int rows, int n, const l2_block_q8_K *x,
                         size_t stride, int n_inputs, int trial) {
    static float out[PANEL_MAX_INPUTS * (PANEL_MAX_ROWS + 5)];
    const size_t out_stride = (size_t)rows + (size_t)(trial % 6);
    const size_t bytes = q6 ? l2_q6_K_panels_pack(NULL, w, rows, n) : l2_q4_K_panels_pack(NULL, w, rows, n);
    unsigned char *panels = malloc(bytes);
    assert_non_null(panels);
    assert_int_equal(q6 ? l2_q6_K_panels_pack(panels, w, rows, n) : l2_q4_K_panels_pack(panels, w, rows, n), bytes);
    int begin, end;
    test_panel_start(&rng, rows, &begin, &end, out, sizeof out / sizeof out[0]);
    (q6 ? k->q6_K_panels : k->q4_K_panels)(out, out_stride, panels, rows, begin, end, x, stride, n_inputs, n);
    char what[64];
    snprintf(what, sizeof what, "%s %s", k->name, q6 ? "q6_K" : "q4_K");
    const k_rows want = {q6, w, x, stride, n};
    test_panel_check(what, out, out_stride, rows, begin, end, n_inputs, n, k_row_dot, &want);
    free(panels);
}

static void test_table_k_panels(void **state) {
    const l2_kquant_kernels *k = table_or_skip(*state);
    assert_non_null(k->q4_K_panels);
    assert_non_null(k->q6_K_panels);
    static l2_block_q4_K w4[PANEL_MAX_ROWS * MAX_BLOCKS];
    static l2_block_q6_K w6[PANEL_MAX_ROWS * MAX_BLOCKS];
    static l2_block_q8_K x[PANEL_MAX_INPUTS * (MAX_BLOCKS + 3)];
    for (int trial = 0; trial < 100; trial++) {
        const int extreme = trial % 2, rows = 1 + (int)(test_rng_next(&rng) % PANEL_MAX_ROWS);
        const int n = 1 + (int)(test_rng_next(&rng) % MAX_BLOCKS);
        const int n_inputs = 1 + (int)(test_rng_next(&rng) % PANEL_MAX_INPUTS);
        const size_t stride = (size_t)n + (size_t)(trial % 4);
        random_q4_K(w4, rows * n, extreme);
        random_q6_K(w6, rows * n, extreme);
        for (int i = 0; i < n_inputs; i++) random_activations(x + (size_t)i * stride, n, extreme);
        check_panels(k, 0, w4, rows, n, x, stride, n_inputs, trial);
        check_panels(k, 1, w6, rows, n, x, stride, n_inputs, trial);
    }
}

/* ---------------------------------------------------------- Q5_K */

static void random_q5_K(l2_block_q5_K *b, int n, int extreme) {
    for (int i = 0; i < n; i++) {
        random_bytes(&b[i], sizeof b[i]);
        b[i].d = extreme ? scale_bits((int)(test_rng_next(&rng) % 8)) : l2_f32_to_f16(uniform() * 0.01f);
        b[i].dmin = extreme ? scale_bits((int)(test_rng_next(&rng) % 8)) : l2_f32_to_f16(uniform() * 0.01f);
        if (extreme && i % 3 == 0) {
            memset(b[i].scales, 0xFF, sizeof b[i].scales); /* every scale and min 63 */
            memset(b[i].qs, i % 2 ? 0x00 : 0xFF, sizeof b[i].qs);
            memset(b[i].qh, i % 2 ? 0x00 : 0xFF, sizeof b[i].qh); /* all 0 or all 31 */
        }
    }
}

/* Value i of a Q5_K block (0-31), from the layout: the nibble as Q4_K's,
 * bit i / 32 of qh[i % 32] as 16. */
static int q5_K_level(const l2_block_q5_K *w, int i) {
    const uint8_t byte = w->qs[(i / 64) * 32 + i % 32];
    return ((i / 32) % 2 ? byte >> 4 : byte & 15) + 16 * ((w->qh[i % 32] >> (i / 32)) & 1);
}

static double q5_K_magnitude(const l2_block_q5_K *w, const l2_block_q8_K *x, int n) {
    double mag = 0.0;
    for (int b = 0; b < n; b++)
        for (int j = 0; j < 8; j++) {
            int sc, m;
            l2_q4_K_scale_min(w[b].scales, j, &sc, &m);
            double s = 0.0;
            for (int i = 32 * j; i < 32 * j + 32; i++) s += fabs((double)q5_K_level(&w[b], i) * x[b].qs[i]);
            mag += fabs((double)l2_f16_to_f32(w[b].d) * x[b].d) * sc * s;
            mag += fabs((double)l2_f16_to_f32(w[b].dmin) * x[b].d) * m *
                   fabs((double)x[b].bsums[2 * j] + x[b].bsums[2 * j + 1]);
        }
    return mag;
}

/* The reference's Q5_K dot against the dequantized weights (ggml_dequant.c)
 * times the activations, in double; the dequantized values against the
 * layout. */
static void test_reference_dots_q5_K(void **state) {
    static l2_block_q5_K w[MAX_BLOCKS];
    static l2_block_q8_K x[MAX_BLOCKS];
    static float v[MAX_BLOCKS * QK];
    const l2_kquant_kernels *k = l2_kquant_kernels_reference();
    for (int trial = 0; trial < 60; trial++) {
        const int n = 1 + (int)(test_rng_next(&rng) % MAX_BLOCKS);
        random_q5_K(w, n, 0);
        random_activations(x, n, 0);
        assert_true(l2_ggml_dequantize(L2_GGML_Q5_K, (const unsigned char *)w, (size_t)n * QK, v));
        double want = 0.0, mag = 0.0;
        for (int i = 0; i < n * QK; i++) {
            const l2_block_q5_K *b = &w[i / QK];
            int sc, m;
            l2_q4_K_scale_min(b->scales, (i % QK) / 32, &sc, &m);
            const float value = l2_f16_to_f32(b->d) * (float)sc * (float)q5_K_level(b, i % QK) -
                                l2_f16_to_f32(b->dmin) * (float)m;
            assert_true(test_same_float(v[i], value));
            const double xi = (double)x[i / QK].d * x[i / QK].qs[i % QK];
            want += v[i] * xi;
            mag += fabs(v[i] * xi);
        }
        if (!(fabs(k->dot_q5_K(w, x, n) - want) <= 1e-5 * mag))
            fail_msg("q5_K: %.9g, want %.9g", (double)k->dot_q5_K(w, x, n), want);
    }
}

/* A table's Q5_K dots against the reference's, extreme scales included;
 * its four-row and two-input dots the one-row dot's bits. */
static void test_table_q5_K(void **state) {
    const l2_kquant_kernels *k = table_or_skip(*state), *ref = l2_kquant_kernels_reference();
    static l2_block_q5_K w[4 * MAX_BLOCKS];
    static l2_block_q8_K x[2 * MAX_BLOCKS + 3];
    for (int trial = 0; trial < 300; trial++) {
        const int n = 1 + (int)(test_rng_next(&rng) % MAX_BLOCKS), extreme = trial % 2;
        const size_t stride = (size_t)n + (size_t)(trial % 4);
        random_q5_K(w, 4 * n, extreme);
        random_activations(x, n, extreme);
        random_activations(x + stride, n, extreme);
        float o[4], e[8];
        k->dot4_q5_K(o, w, (size_t)n, x, n);
        k->dot4x2_q5_K(e, w, (size_t)n, x, stride, n);
        for (int r = 0; r < 4; r++) {
            const float one = k->dot_q5_K(w + r * n, x, n);
            assert_close(k, one, ref->dot_q5_K(w + r * n, x, n), q5_K_magnitude(w + r * n, x, n), n);
            assert_true(test_same_float(o[r], one));
            for (int i = 0; i < 2; i++)
                assert_true(test_same_float(e[4 * i + r], k->dot_q5_K(w + r * n, x + (size_t)i * stride, n)));
        }
    }
}

static void test_table_for_level(void **state) {
    assert_ptr_equal(l2_kquant_kernels_for("scalar"), l2_kquant_kernels_reference());
    const l2_kquant_kernels *neon = l2_kquant_kernels_neon();
    assert_ptr_equal(l2_kquant_kernels_for("neon-exact"), neon ? neon : l2_kquant_kernels_reference());
    assert_ptr_equal(l2_kquant_kernels_for("neon"), neon ? neon : l2_kquant_kernels_reference());
    assert_ptr_equal(l2_kquant_kernels_for(NULL), l2_kquant_kernels_reference());
    const l2_kquant_kernels *avx2 = l2_kquant_kernels_avx2();
    if (!avx2) {
        print_message("skipped: this CPU (or build) cannot run the avx2 K-quant kernels\n");
        skip();
    }
    assert_ptr_equal(l2_kquant_kernels_for("avx2-exact"), avx2);
    assert_ptr_equal(l2_kquant_kernels_for("avx512"), avx2);
    assert_string_equal(avx2->name, "avx2");
    /* AVX2's own panels (test_table_k_panels holds them to the bits). */
    assert_non_null(avx2->q4_K_panels);
    assert_non_null(avx2->q6_K_panels);
    assert_true(avx2->q4_K_panels != l2_kquant_kernels_reference()->q4_K_panels);
    assert_true(avx2->q6_K_panels != l2_kquant_kernels_reference()->q6_K_panels);
    /* The AVX512-VNNI levels bring their own where the CPU has it. */
    const l2_kquant_kernels *vnni = l2_kquant_kernels_avx512_vnni();
    assert_ptr_equal(l2_kquant_kernels_for("avx512-vnni"), vnni ? vnni : avx2);
    assert_ptr_equal(l2_kquant_kernels_for("amx"), vnni ? vnni : avx2);
    if (vnni) assert_string_equal(vnni->name, "avx512-vnni");
}

/* src/kernels/README.md's matrix of the GGUF block tables: for each level
 * named there, the table each choice gives, where this CPU runs it (the
 * x86 levels' AVX2 needs AVX2). */
static void test_tables_as_documented(void **state) {
    char *text = test_read_file(test_source_path("src/kernels/README.md"), NULL);
    assert_non_null(text);
    char *at = strstr(text, "| ggml table |");
    assert_non_null(at);
    char *lines[4];
    for (int i = 0; i < 4; i++) {
        lines[i] = at;
        at = strchr(at, '\n');
        assert_non_null(at);
        *at++ = '\0';
    }
    char *levels[9], *blocks[9], *kquants[9];
    int n = 0;
    for (char *p = strtok(lines[0], "|"); p && n < 9; p = strtok(NULL, "|")) levels[n++] = p;
    int nb = 0, nk = 0;
    for (char *p = strtok(lines[2], "|"); p && nb < 9; p = strtok(NULL, "|")) blocks[nb++] = p;
    for (char *p = strtok(lines[3], "|"); p && nk < 9; p = strtok(NULL, "|")) kquants[nk++] = p;
    assert_int_equal(n, 8);
    assert_int_equal(nb, 8);
    assert_int_equal(nk, 8);
    int checked = 0;
    for (int c = 1; c < 8; c++) {
        char level[32], want_b[32], want_k[32];
        assert_int_equal(sscanf(levels[c], " %31s", level), 1);
        assert_int_equal(sscanf(blocks[c], " %31s", want_b), 1);
        assert_int_equal(sscanf(kquants[c], " %31s", want_k), 1);
        /* A table this CPU or build has not is not checked. */
        const int k_runs = strcmp(want_k, "avx2") == 0          ? l2_kquant_kernels_avx2() != NULL
                           : strcmp(want_k, "avx512-vnni") == 0 ? l2_kquant_kernels_avx512_vnni() != NULL
                           : strcmp(want_k, "neon") == 0        ? l2_kquant_kernels_neon() != NULL
                                                                : 1;
        if (k_runs) {
            assert_string_equal(l2_kquant_kernels_for(level)->name, want_k);
            checked++;
        }
        const int b_runs = strcmp(want_b, "avx2") == 0          ? l2_block_kernels_avx2() != NULL
                           : strcmp(want_b, "avx512-vnni") == 0 ? l2_block_kernels_avx512_vnni() != NULL
                           : strcmp(want_b, "neon") == 0        ? l2_block_kernels_neon() != NULL
                                                                : 1;
        if (b_runs) {
            assert_string_equal(l2_block_kernels_for(level)->name, want_b);
            checked++;
        }
    }
    print_message("%d of the levels' block tables as documented\n", checked);
    assert_true(checked >= 4);
    free(text);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nearest_int),
        cmocka_unit_test(test_reference_quantize),
        cmocka_unit_test(test_reference_dots),
        cmocka_unit_test_prestate(test_table_quantize, "avx2"),
        cmocka_unit_test_prestate(test_table_dots, "avx2"),
        cmocka_unit_test_prestate(test_table_rows_and_inputs, "scalar"),
        cmocka_unit_test_prestate(test_table_rows_and_inputs, "avx2"),
        cmocka_unit_test_prestate(test_table_rows_and_inputs, "avx512-vnni"),
        cmocka_unit_test(test_reference_blockwise),
        cmocka_unit_test_prestate(test_table_k_panels, "scalar"),
        cmocka_unit_test_prestate(test_table_k_panels, "avx2"),
        cmocka_unit_test_prestate(test_table_k_panels, "avx512-vnni"),
        cmocka_unit_test_prestate(test_table_k_panels, "neon"),
        cmocka_unit_test(test_reference_dots_q5_K),
        cmocka_unit_test_prestate(test_table_q5_K, "scalar"),
        cmocka_unit_test_prestate(test_table_q5_K, "avx2"),
        cmocka_unit_test(test_table_for_level),
        cmocka_unit_test(test_tables_as_documented),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
