/*
 * The fast kernel tables against the scalar reference (ops_ref.c).
 *
 * Each kernel level this build carries besides the reference is checked, its
 * fast table and its exact one, one test per kernel and level, skipped by
 * name where this CPU cannot run the level; on random inputs over many sizes
 * (odd ones, tails shorter than a vector, unaligned pointers, row ranges that
 * do not start at 0, 1 to 9 inputs). Tolerances:
 *   matmul_f32: |fast - ref| <= 1e-5 * sum |a[i] * b[i]| (both sum in
 *       float, in different orders; for n <= 2100 random terms the
 *       reference's own rounding error is of the order of 2e-6 of that sum);
 *       and every output the same bits whatever the other inputs and rows
 *       computed with it;
 *   rmsnorm: (1e-6 + 3e-9 n) relative per element: the sum of squares is
 *       reordered (the reference's naive sum of n terms is itself off by up to
 *       about 1e-6 at n = 1000), then each element is the reference's two
 *       products;
 *   softmax: (1e-6 + 5e-9 n) relative: a vectorised expf within 1.3 ulp, a
 *       reordered sum (the same naive-sum error), a division;
 *   swiglu: 1e-6 relative (about 8 ulp: the expf, a division, two products);
 *   softmax and swiglu results that are subnormal or flushed to zero are
 *       allowed 1e-37 absolute;
 *   add, and the exact attention parts (scores, values): bit-exact (the same
 *       operations element by element);
 *   quantize_q8, matmul_q8, gemv_q8_stripes: bit-exact (memcmp), the contract
 *       of ops.h;
 *   every entry of an exact table: bit-exact.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/ops.h"
#include "kernels/ops_isa.h"
#include "support.h"

/* ------------------------------------------------------------ helpers */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static void rng_seed(uint64_t s) { rng_state = s ? s : 1; }

static uint32_t rng_u32(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545F4914F6CDD1Dull) >> 32);
}

/* Uniform in [lo, hi). */
static float rng_float(float lo, float hi) { return lo + (hi - lo) * (float)(rng_u32() >> 8) * (1.0f / 16777216.0f); }

static int rng_int(int lo, int hi) { return lo + (int)(rng_u32() % (uint32_t)(hi - lo + 1)); }

static void fill(float *x, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++) x[i] = rng_float(lo, hi);
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    assert_non_null(p);
    return p;
}

/* A copy of `bytes` bytes in a block of exactly that size (after `lead`
 * bytes, to keep an unaligned start), so that AddressSanitizer sees any
 * read past the end. Free *base. */
static void *exact_copy(const void *src, size_t bytes, size_t lead, void **base) {
    unsigned char *p = xmalloc(bytes + lead);
    memcpy(p + lead, src, bytes);
    *base = p;
    return p + lead;
}

/* The index of the first of n floats whose bits differ, or -1. */
static int first_difference(const float *a, const float *b, int n) {
    for (int i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof(float)) != 0) return i;
    return -1;
}

/* The tables of the level a test is registered for (its state): the fast
 * one and the exact one (the same table for the reference). Skips the test
 * by name where this CPU cannot run that level. */
#if defined(__aarch64__)
/* matmul_q8_neon's two ways on their own: the neon table with its
 * matmul_q8 entry set to one of them ("neon widening", "neon sdot"). */
static const l2_kernels *neon_way(const char *level) {
    static l2_kernels table;
    const int sdot = strcmp(level, "neon sdot") == 0;
    if (!sdot && strcmp(level, "neon widening") != 0) return NULL;
    if (sdot && !l2_neon_dotprod()) {
        print_message("skipped: this CPU has no dot product instructions (sdot)\n");
        skip();
    }
    table = *l2_kernels_level("neon", LLAMA2_WEIGHTS_F32);
    table.matmul_q8 = sdot ? l2_matmul_q8_neon_sdot : l2_matmul_q8_neon_widening;
    return &table;
}
#endif

static int fast_tables(void **state, const l2_kernels **out) {
    const char *level = *state;
#if defined(__aarch64__)
    if ((out[0] = neon_way(level)) != NULL) return 1;
#endif
    out[0] = l2_kernels_level(level, LLAMA2_WEIGHTS_F32);
    if (!out[0]) {
        print_message("skipped: this CPU cannot run the %s kernels\n", level);
        skip();
    }
    out[1] = l2_kernels_level(level, LLAMA2_WEIGHTS_Q8_0);
    return out[1] != out[0] ? 2 : 1;
}

/* The exact table of the level a test is registered for. */
static const l2_kernels *exact_table(void **state) {
    const l2_kernels *k[2];
    fast_tables(state, k);
    return l2_kernels_level((const char *)*state, LLAMA2_WEIGHTS_Q8_0);
}

#define CHECK_CLOSE(fast, ref, tol, what, ...)                                                                \
    do {                                                                                                      \
        double f_ = (double)(fast), r_ = (double)(ref);                                                       \
        if (!(fabs(f_ - r_) <= (tol)) && !(isnan(f_) && isnan(r_))) {                                        \
            print_error("%s: " what ": fast %.9g ref %.9g diff %.3g tol %.3g\n", k->name, __VA_ARGS__, f_, r_, \
                        fabs(f_ - r_), (double)(tol));                                                        \
            fail();                                                                                           \
        }                                                                                                     \
    } while (0)

/* Lengths: every one up to 70, then around powers of two and odd sizes. */
static const int lengths[] = {1,   2,   3,   4,   5,   6,   7,   8,   9,   10,  11,  12,  13,  14,   15,  16,
                              17,  18,  19,  20,  21,  22,  23,  24,  25,  26,  27,  28,  29,  30,   31,  32,
                              33,  34,  35,  36,  37,  38,  39,  40,  41,  42,  43,  44,  45,  46,   47,  48,
                              49,  50,  51,  52,  53,  54,  55,  56,  57,  58,  59,  60,  61,  62,   63,  64,
                              65,  66,  67,  68,  69,  70,  95,  96,  97,  100, 127, 128, 129, 172,  255, 256,
                              257, 288, 511, 512, 513, 768, 999, 1000};
#define N_LENGTHS ((int)(sizeof lengths / sizeof lengths[0]))

/* ------------------------------------------------------- the selector */

/* LLAMA2_KERNELS set to `value` (NULL: unset) for one call of
 * l2_kernels_for(type). */
static const l2_kernels *for_with(const char *value, llama2_weight_type type) {
    char *saved = getenv("LLAMA2_KERNELS") ? strdup(getenv("LLAMA2_KERNELS")) : NULL;
    test_set_env("LLAMA2_KERNELS", value);
    const l2_kernels *k = l2_kernels_for(type);
    test_set_env("LLAMA2_KERNELS", saved);
    free(saved);
    return k;
}

/* --------------------------------------------- the documented tables */

/* src/kernels/README.md shows every level's fast table side by side, a cell
 * naming an entry's function by its suffix (`_avx2` in the rmsnorm row:
 * l2_rmsnorm_avx2), "stripe scales", "none" (NULL) or the row numbers; the
 * tables this build carries must be what it says, and each exact table its
 * level's add and int8 entries with the reference's other steps. */
typedef void (*any_fn)(void);
#define KERNEL(f) {#f, (any_fn)f}
static const struct {
    const char *name;
    any_fn fn;
} documented_kernels[] = {
    KERNEL(l2_rmsnorm_ref), KERNEL(l2_softmax_ref), KERNEL(l2_swiglu_ref), KERNEL(l2_add_ref),
    KERNEL(l2_matmul_f32_ref), KERNEL(l2_attention_ref), KERNEL(l2_quantize_q8_ref), KERNEL(l2_matmul_q8_ref),
    KERNEL(l2_repack_q8_stripe_scales),
#if defined(__x86_64__) || defined(__i386__)
    KERNEL(l2_rmsnorm_avx2), KERNEL(l2_softmax_avx2), KERNEL(l2_swiglu_avx2), KERNEL(l2_add_avx2),
    KERNEL(l2_matmul_f32_avx2), KERNEL(l2_attention_avx2), KERNEL(l2_rmsnorm_avx512), KERNEL(l2_softmax_avx512),
    KERNEL(l2_swiglu_avx512), KERNEL(l2_add_avx512), KERNEL(l2_matmul_f32_avx512), KERNEL(l2_attention_avx512),
    KERNEL(l2_quantize_q8_avx2), KERNEL(l2_matmul_q8_avx2), KERNEL(l2_matmul_q8_avxvnni),
    KERNEL(l2_matmul_q8_avx512vnni), KERNEL(l2_gemv_q8_stripes_avx2), KERNEL(l2_gemv_q8_stripes_avxvnni),
    KERNEL(l2_gemv_q8_stripes_avx512vnni), KERNEL(l2_repack_q8_amx), KERNEL(l2_matmul_q8_packed_amx),
    KERNEL(l2_repack_q8_panels), KERNEL(l2_repack_q8_stripes_panels), KERNEL(l2_repack_q8_stripes_signed_panels),
    KERNEL(l2_matmul_q8_packed_avx2), KERNEL(l2_matmul_q8_packed_avxvnni),
    KERNEL(l2_matmul_q8_packed_avx512vnni),
#endif
#if defined(__aarch64__)
    KERNEL(l2_rmsnorm_neon), KERNEL(l2_softmax_neon), KERNEL(l2_swiglu_neon), KERNEL(l2_add_neon),
    KERNEL(l2_matmul_f32_neon), KERNEL(l2_quantize_q8_neon), KERNEL(l2_matmul_q8_neon),
#endif
};
#undef KERNEL

/* A table's entry by its name in ops.h; 0 with *value for the row counts. */
static any_fn table_entry(const l2_kernels *t, const char *entry, int *value) {
    static const char *const rows[] = {"task_rows", "block_task_rows"};
    if (strcmp(entry, rows[0]) == 0 || strcmp(entry, rows[1]) == 0) {
        *value = strcmp(entry, rows[0]) == 0 ? t->task_rows : t->block_task_rows;
        return NULL;
    }
    const struct {
        const char *name;
        any_fn fn;
    } entries[] = {
        {"rmsnorm", (any_fn)t->rmsnorm},
        {"softmax", (any_fn)t->softmax},
        {"swiglu", (any_fn)t->swiglu},
        {"add", (any_fn)t->add},
        {"matmul_f32", (any_fn)t->matmul_f32},
        {"attention", (any_fn)t->attention},
        {"quantize_q8", (any_fn)t->quantize_q8},
        {"matmul_q8", (any_fn)t->matmul_q8},
        {"gemv_q8_stripes", (any_fn)t->gemv_q8_stripes},
        {"repack_q8", (any_fn)t->repack_q8},
        {"matmul_q8_packed", (any_fn)t->matmul_q8_packed},
    };
    for (size_t i = 0; i < sizeof entries / sizeof entries[0]; i++)
        if (strcmp(entries[i].name, entry) == 0) return entries[i].fn;
    fail_msg("README.md names an entry ops.h does not have: %s", entry);
    return NULL;
}

/* The function a cell names for an entry; NULL for "none". */
static any_fn documented_kernel(const char *entry, const char *cell) {
    char name[96];
    if (strcmp(cell, "none") == 0) return NULL;
    if (strcmp(cell, "stripe scales") == 0)
        snprintf(name, sizeof name, "l2_repack_q8_stripe_scales");
    else
        snprintf(name, sizeof name, "l2_%s%.*s", entry, (int)strlen(cell) - 2, cell + 1); /* `_x` */
    for (size_t i = 0; i < sizeof documented_kernels / sizeof documented_kernels[0]; i++)
        if (strcmp(documented_kernels[i].name, name) == 0) return documented_kernels[i].fn;
    fail_msg("README.md names %s, which this test does not know", name);
    return NULL;
}

/* The cells of a table row "| a | b | ... |", trimmed, into cells[]. */
static int row_cells(char *line, char *cells[], int most) {
    int n = 0;
    char *p = strchr(line, '|');
    while (p && n < most) {
        char *end = strchr(p + 1, '|');
        if (!end) break;
        *end = '\0';
        char *c = p + 1;
        while (*c == ' ') c++;
        for (char *e = end - 1; e >= c && *e == ' '; e--) *e = '\0';
        cells[n++] = c;
        p = end;
    }
    return n;
}

/* The items of a copy of "a, b, c" (at most `most`) into items[]: the
 * copy is kept in a static buffer, one per call site's order of use. */
static int list_items(const char *list, char *items[], int most) {
    static char buffers[2][128];
    static int which;
    char *copy = buffers[which++ & 1];
    snprintf(copy, sizeof buffers[0], "%s", list);
    int n = 0;
    for (char *p = copy; p && n < most;) {
        items[n++] = p;
        p = strstr(p, ", ");
        if (p) {
            *p = '\0';
            p += 2;
        }
    }
    return n;
}

static void test_tables_as_documented(void **state) {
    (void)state;
    char *text = test_read_file(test_source_path("src/kernels/README.md"), NULL);
    assert_non_null(text);
    char *table = strstr(text, "| entry |");
    assert_non_null(table);
    enum { MOST = 10 };
    char *levels[MOST], *cells[MOST];
    char *line = table, *next = strchr(line, '\n');
    *next = '\0';
    const int n_levels = row_cells(line, levels, MOST);
    assert_int_equal(n_levels, 8); /* entry, then every level */
    int rows = 0, checked = 0;
    for (line = next + 1; *line == '|'; line = next + 1) {
        next = strchr(line, '\n');
        assert_non_null(next);
        *next = '\0';
        if (strncmp(line, "| ---", 5) == 0) continue;
        assert_int_equal(row_cells(line, cells, MOST), n_levels);
        rows++;
        for (int c = 1; c < n_levels; c++) {
            const l2_kernels *t = l2_kernels_level_any(levels[c], LLAMA2_WEIGHTS_F32);
            if (!t) continue; /* a level of another architecture */
            /* The row's entries, ", " between them; for the row counts, the
             * cell's numbers likewise. */
            char *entries[4], *values[4];
            const int n_entries = list_items(cells[0], entries, 4);
            const int n_values = list_items(cells[c], values, 4);
            for (int i = 0; i < n_entries; i++) {
                int value = 0;
                const any_fn fn = table_entry(t, entries[i], &value);
                if (strstr(entries[i], "rows")) {
                    assert_int_equal(n_values, n_entries);
                    if (value != atoi(values[i]))
                        fail_msg("README.md: %s's %s is %d, not %s", levels[c], entries[i], value, values[i]);
                } else if (fn != documented_kernel(entries[i], cells[c])) {
                    fail_msg("README.md: %s's %s is not %s", levels[c], entries[i], cells[c]);
                }
                checked++;
            }
            const l2_kernels *exact = l2_kernels_level_any(levels[c], LLAMA2_WEIGHTS_Q8_0);
            assert_true(exact->add == t->add && exact->quantize_q8 == t->quantize_q8 &&
                        exact->matmul_q8 == t->matmul_q8 && exact->gemv_q8_stripes == t->gemv_q8_stripes &&
                        exact->repack_q8 == t->repack_q8 && exact->matmul_q8_packed == t->matmul_q8_packed);
            assert_true(exact->rmsnorm == l2_rmsnorm_ref && exact->matmul_f32 == l2_matmul_f32_ref);
            /* x86's exact levels compute l2_expf on vectors: the same bits */
#if defined(__x86_64__) || defined(__i386__)
            if (strcmp(levels[c], "scalar") != 0)
                assert_true(exact->softmax == l2_softmax_exact_avx2 && exact->swiglu == l2_swiglu_exact_avx2);
            else
#endif
                assert_true(exact->softmax == l2_softmax_ref && exact->swiglu == l2_swiglu_ref);
        }
    }
    assert_true(rows >= 9);
    assert_true(checked >= 9 * 2);
    free(text);
}

/* A model's table is the fastest level this CPU runs, in its exact form for
 * int8 weights; LLAMA2_KERNELS caps it at the named level (the fastest this
 * CPU runs from there on); a name this build does not know gives the
 * reference, and is refused at model open. */
static void test_select(void **state) {
    (void)state;
    int n = 0;
    while (l2_kernel_level_name(n)) n++;
    assert_true(n >= 1);
    assert_string_equal(l2_kernel_level_name(n - 1), "scalar");
    assert_null(l2_kernel_level_name(n));
    assert_null(l2_kernel_level_name(-1));
    assert_ptr_equal(l2_kernels_level("scalar", LLAMA2_WEIGHTS_F32), l2_kernels_reference());
    assert_ptr_equal(l2_kernels_level("scalar", LLAMA2_WEIGHTS_Q8_0), l2_kernels_reference());
    assert_null(l2_kernels_level("no-such-level", LLAMA2_WEIGHTS_F32));
    static const llama2_weight_type types[] = {LLAMA2_WEIGHTS_F32, LLAMA2_WEIGHTS_Q8_0};
    for (int t = 0; t < 2; t++) {
        for (int cap = 0; cap < n; cap++) {
            const l2_kernels *want = NULL;
            for (int i = cap; i < n && !want; i++) want = l2_kernels_level(l2_kernel_level_name(i), types[t]);
            assert_non_null(want);
            assert_ptr_equal(for_with(l2_kernel_level_name(cap), types[t]), want);
            if (cap == 0) assert_ptr_equal(for_with(NULL, types[t]), want);
        }
        assert_ptr_equal(for_with("no-such-level", types[t]), l2_kernels_reference());
    }
    /* ... and is refused when a model is opened, naming the levels. */
    char message[256], want[256];
    int w = snprintf(want, sizeof want, "LLAMA2_KERNELS: unknown kernel level 'avx-512' (this build has");
    for (int i = 0; i < n; i++) w += snprintf(want + w, sizeof want - (size_t)w, "%s %s", i ? "," : "", l2_kernel_level_name(i));
    snprintf(want + w, sizeof want - (size_t)w, ")");
    char *saved = getenv("LLAMA2_KERNELS") ? strdup(getenv("LLAMA2_KERNELS")) : NULL;
    test_set_env("LLAMA2_KERNELS", "avx-512");
    assert_int_equal(l2_kernels_check_cap(message, sizeof message), 0);
    assert_string_equal(message, want);
    test_set_env("LLAMA2_KERNELS", "scalar");
    assert_int_equal(l2_kernels_check_cap(message, sizeof message), 1);
    test_set_env("LLAMA2_KERNELS", saved);
    free(saved);
    /* int8 models: an exact table, with the level's own int8 kernels. */
    const l2_kernels *f32 = for_with(NULL, LLAMA2_WEIGHTS_F32), *q8 = for_with(NULL, LLAMA2_WEIGHTS_Q8_0);
    assert_true(q8 == l2_kernels_reference() || strstr(q8->name, "-exact"));
    assert_ptr_equal(q8->rmsnorm, l2_kernels_reference()->rmsnorm);
    assert_ptr_equal(q8->matmul_q8, f32->matmul_q8);
    printf("[ info     ] kernel tables: %s (fp32 models), %s (int8 models)\n", f32->name, q8->name);
}

/* ------------------------------------------------------ vector kernels */

static void test_rmsnorm(void **state) {
    const l2_kernels *ks[2];
    int nk = fast_tables(state, ks);
    const l2_kernels *ref = l2_kernels_reference();
    float *x = xmalloc(1100 * sizeof(float)), *w = xmalloc(1100 * sizeof(float));
    float *of = xmalloc(1100 * sizeof(float)), *orf = xmalloc(1100 * sizeof(float));
    rng_seed(2);
    for (int t = 0; t < nk; t++) {
        const l2_kernels *k = ks[t];
        for (int li = 0; li < N_LENGTHS; li++) {
            int n = lengths[li];
            int off = li % 3;
            float scale = (li % 4 == 0) ? 100.0f : 1.0f;
            fill(x, 1100, -scale, scale);
            fill(w, 1100, 0.5f, 1.5f);
            /* A sentinel after the end must survive. */
            of[off + n] = orf[off + n] = 12345.0f;
            const float eps = li % 2 ? 1e-5f : 1e-6f;
            k->rmsnorm(of + off, x + off, w, n, eps);
            ref->rmsnorm(orf + off, x + off, w, n, eps);
            for (int i = 0; i < n; i++)
                CHECK_CLOSE(of[off + i], orf[off + i], (1e-6 + 3e-9 * n) * fabs((double)orf[off + i]) + 1e-37,
                            "rmsnorm n=%d i=%d", n, i);
            assert_true(of[off + n] == 12345.0f);
            /* In place. */
            memcpy(of, x, 1100 * sizeof(float));
            k->rmsnorm(of + off, of + off, w, n, eps);
            for (int i = 0; i < n; i++)
                CHECK_CLOSE(of[off + i], orf[off + i], (1e-6 + 3e-9 * n) * fabs((double)orf[off + i]) + 1e-37,
                            "rmsnorm in place n=%d i=%d", n, i);
        }
    }
    free(x);
    free(w);
    free(of);
    free(orf);
}

static void test_softmax(void **state) {
    const l2_kernels *ks[2];
    int nk = fast_tables(state, ks);
    const l2_kernels *ref = l2_kernels_reference();
    float *xf = xmalloc(1100 * sizeof(float)), *xr = xmalloc(1100 * sizeof(float));
    rng_seed(3);
    static const float ranges[] = {1.0f, 10.0f, 60.0f, 120.0f, 1000.0f};
    for (int t = 0; t < nk; t++) {
        const l2_kernels *k = ks[t];
        for (int ri = 0; ri < 5; ri++) {
            for (int li = 0; li < N_LENGTHS; li++) {
                int n = lengths[li];
                int off = li % 3;
                float range = ranges[ri];
                fill(xf, 1100, -range, range);
                if (li % 5 == 0) xf[off + rng_int(0, n - 1)] = 3e38f; /* a huge maximum */
                xf[off + n] = 777.0f;
                memcpy(xr, xf, 1100 * sizeof(float));
                k->softmax(xf + off, n);
                ref->softmax(xr + off, n);
                for (int i = 0; i < n; i++)
                    CHECK_CLOSE(xf[off + i], xr[off + i], (1e-6 + 5e-9 * n) * fabs((double)xr[off + i]) + 1e-37,
                                "softmax range=%g n=%d i=%d", (double)range, n, i);
                assert_true(xf[off + n] == 777.0f);
            }
        }
        /* exp over the whole useful range, one value against 0 each time:
         * softmax([v, 0]) = [e^v / (e^v + 1), 1 / (e^v + 1)] for v <= 0. */
        for (float v = -110.0f; v <= 0.0f; v += 0.0137f) {
            float pf[2] = {v, 0.0f}, pr[2] = {v, 0.0f};
            k->softmax(pf, 2);
            ref->softmax(pr, 2);
            CHECK_CLOSE(pf[0], pr[0], 1e-6 * fabs((double)pr[0]) + 1e-44, "softmax exp v=%g", (double)v);
            CHECK_CLOSE(pf[1], pr[1], 1e-6 * fabs((double)pr[1]), "softmax exp v=%g", (double)v);
        }
    }
    free(xf);
    free(xr);
}

static void test_swiglu(void **state) {
    const l2_kernels *ks[2];
    int nk = fast_tables(state, ks);
    const l2_kernels *ref = l2_kernels_reference();
    float *gf = xmalloc(1100 * sizeof(float)), *gr = xmalloc(1100 * sizeof(float));
    float *up = xmalloc(1100 * sizeof(float));
    rng_seed(4);
    static const float ranges[] = {1.0f, 8.0f, 40.0f, 120.0f};
    for (int t = 0; t < nk; t++) {
        const l2_kernels *k = ks[t];
        for (int ri = 0; ri < 4; ri++) {
            for (int li = 0; li < N_LENGTHS; li++) {
                int n = lengths[li];
                int off = li % 3;
                fill(gf, 1100, -ranges[ri], ranges[ri]);
                fill(up, 1100, -3.0f, 3.0f);
                gf[off + n] = 555.0f;
                memcpy(gr, gf, 1100 * sizeof(float));
                k->swiglu(gf + off, up + 1, n);
                ref->swiglu(gr + off, up + 1, n);
                for (int i = 0; i < n; i++)
                    CHECK_CLOSE(gf[off + i], gr[off + i], 1e-6 * fabs((double)gr[off + i]) + 1e-37,
                                "swiglu range=%g n=%d i=%d", (double)ranges[ri], n, i);
                assert_true(gf[off + n] == 555.0f);
            }
        }
    }
    free(gf);
    free(gr);
    free(up);
}

static void test_add(void **state) {
    const l2_kernels *ks[2];
    int nk = fast_tables(state, ks);
    const l2_kernels *ref = l2_kernels_reference();
    float *yf = xmalloc(1100 * sizeof(float)), *yr = xmalloc(1100 * sizeof(float));
    float *x = xmalloc(1100 * sizeof(float));
    rng_seed(5);
    for (int t = 0; t < nk; t++) {
        const l2_kernels *k = ks[t];
        for (int li = 0; li < N_LENGTHS; li++) {
            int n = lengths[li];
            int off = li % 3;
            fill(yf, 1100, -1.0f, 1.0f);
            fill(x, 1100, -1.0f, 1.0f);
            memcpy(yr, yf, 1100 * sizeof(float));
            k->add(yf + off, x + 1, n);
            ref->add(yr + off, x + 1, n);
            if (memcmp(yf, yr, 1100 * sizeof(float)) != 0) {
                print_error("%s: add n=%d differs from the reference\n", k->name, n);
                fail();
            }
        }
    }
    free(yf);
    free(yr);
    free(x);
}

/* ---------------------------------------------------------- matmul_f32 */

static const int mm_cols[] = {1,  2,  3,   4,   5,   7,   8,   9,   15,  16,  17,  23,   24,   31,   32,   33,
                              47, 63, 64,  65,  100, 127, 128, 129, 172, 255, 256, 257,  511,  768,  999,  1000,
                              1023, 1024, 1025, 1500, 2049};
#define N_MM_COLS ((int)(sizeof mm_cols / sizeof mm_cols[0]))

static void test_matmul_f32(void **state) {
    const l2_kernels *ks[2];
    int nk = fast_tables(state, ks);
    const l2_kernels *ref = l2_kernels_reference();
    /* Input counts around the AVX2 register tile of 6 (remainders 1 and 2
     * are split as 4 + 3 and 4 + 4) and a full block of 32; rows that span
     * more than one 16-row panel and end inside one, and (trial 2, for the
     * shorter rows) more than one group of 4 panels. Each product is also
     * run split in two at a multiple of 8 rows, as the thread pool splits
     * it: the outputs must be the same bits. */
    static const int nbs[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 14, 16, 17, 32};
    const int max_rows = 160, max_nb = 32, max_cols = 2049;
    float *w = xmalloc((size_t)max_rows * max_cols * sizeof(float) + 64);
    float *x = xmalloc((size_t)max_nb * max_cols * sizeof(float) + 64);
    const int stride = max_rows + 3;
    float *of = xmalloc((size_t)max_nb * stride * sizeof(float));
    float *orf = xmalloc((size_t)max_nb * stride * sizeof(float));
    float *osplit = xmalloc((size_t)max_nb * stride * sizeof(float));
    rng_seed(6);
    long checked = 0;
    for (int t = 0; t < nk; t++) {
        const l2_kernels *k = ks[t];
        for (int ci = 0; ci < N_MM_COLS; ci++) {
            int cols = mm_cols[ci];
            for (size_t ni = 0; ni < sizeof nbs / sizeof nbs[0]; ni++) {
                const int nb = nbs[ni];
                for (int trial = 0; trial < 3; trial++) {
                    int rb = rng_int(0, 5);
                    int nrows = trial == 0 ? rng_int(1, 5)
                                : trial == 2 && cols <= 1100 ? rng_int(65, max_rows - rb)
                                                             : rng_int(1, 40);
                    int re = rb + nrows;
                    /* Offsets of 0-3 floats make the rows and inputs
                     * unaligned (the rows are unaligned anyway when cols is
                     * odd). */
                    int woff = rng_int(0, 3), xoff = rng_int(0, 3);
                    const float *wp = w + woff, *xp = x + xoff;
                    fill(w, (size_t)max_rows * cols + 16, -1.0f, 1.0f);
                    fill(x, (size_t)nb * cols + 16, -1.0f, 1.0f);
                    for (int i = 0; i < nb * stride; i++) of[i] = orf[i] = -999.0f;
                    void *bw, *bx;
                    const float *we = exact_copy(wp, (size_t)re * cols * sizeof(float), (size_t)woff * 4, &bw);
                    const float *xe = exact_copy(xp, (size_t)nb * cols * sizeof(float), (size_t)xoff * 4, &bx);
                    k->matmul_f32(of, stride, xe, nb, we, cols, rb, re);
                    ref->matmul_f32(orf, stride, xe, nb, we, cols, rb, re);
                    int mid = rb + 8 * rng_int(0, nrows / 8);
                    memcpy(osplit, of, (size_t)nb * stride * sizeof(float));
                    for (int b = 0; b < nb; b++)
                        for (int r = rb; r < re; r++) osplit[b * stride + r] = -999.0f;
                    k->matmul_f32(osplit, stride, xe, nb, we, cols, rb, mid);
                    k->matmul_f32(osplit, stride, xe, nb, we, cols, mid, re);
                    if (memcmp(osplit, of, (size_t)nb * stride * sizeof(float)) != 0) {
                        print_error("%s: matmul_f32 cols=%d nb=%d rows=[%d,%d) split at %d: different bits\n", k->name,
                                    cols, nb, rb, re, mid);
                        fail();
                    }
                    /* Each input alone, and one row alone with every input:
                     * the same bits as in the block. */
                    for (int b = 0; b < nb; b++) {
                        k->matmul_f32(osplit, stride, xe + (size_t)b * cols, 1, we, cols, rb, re);
                        const int i = first_difference(osplit + rb, of + (size_t)b * stride + rb, re - rb);
                        if (i >= 0) {
                            print_error("%s: matmul_f32 cols=%d nb=%d rows=[%d,%d): input %d alone differs at row %d\n",
                                        k->name, cols, nb, rb, re, b, rb + i);
                            fail();
                        }
                    }
                    const int one = rng_int(rb, re - 1);
                    k->matmul_f32(osplit, stride, xe, nb, we, cols, one, one + 1);
                    for (int b = 0; b < nb; b++) {
                        if (memcmp(&osplit[b * stride + one], &of[b * stride + one], sizeof(float)) != 0) {
                            print_error("%s: matmul_f32 cols=%d nb=%d: row %d alone differs for input %d\n", k->name,
                                        cols, nb, one, b);
                            fail();
                        }
                    }
                    free(bw);
                    free(bx);
                    for (int b = 0; b < nb; b++) {
                        for (int r = 0; r < stride; r++) {
                            float f = of[b * stride + r], rr = orf[b * stride + r];
                            if (r < rb || r >= re) {
                                if (f != -999.0f) {
                                    print_error("%s: matmul_f32 wrote row %d outside [%d, %d)\n", k->name, r, rb, re);
                                    fail();
                                }
                                continue;
                            }
                            double mag = 0.0;
                            for (int c = 0; c < cols; c++)
                                mag += fabs((double)wp[(size_t)r * cols + c] * xp[(size_t)b * cols + c]);
                            CHECK_CLOSE(f, rr, 1e-5 * mag + 1e-30, "matmul_f32 cols=%d nb=%d rows=[%d,%d) b=%d r=%d",
                                        cols, nb, rb, re, b, r);
                            checked++;
                        }
                    }
                }
            }
        }
    }
    assert_true(checked > 0);
    free(w);
    free(x);
    free(of);
    free(orf);
    free(osplit);
}

/* More inputs than a fast kernel keeps lane sums for at once (AVX2: 128),
 * with rows long enough to be taken in column blocks: every output the
 * same bits as its input alone, and within tolerance of the reference. */
static void test_matmul_f32_many_inputs(void **state) {
    const l2_kernels *ks[2];
    int nk = fast_tables(state, ks);
    const l2_kernels *ref = l2_kernels_reference();
    const int nb = 133, rows = 11, max_cols = 2051;
    float *w = xmalloc((size_t)rows * max_cols * sizeof(float)), *x = xmalloc((size_t)nb * max_cols * sizeof(float));
    float *of = xmalloc((size_t)nb * rows * sizeof(float)), *orf = xmalloc((size_t)nb * rows * sizeof(float));
    float *alone = xmalloc((size_t)rows * sizeof(float));
    rng_seed(19);
    /* A row length with a tail, and one of 2 KiB multiples (the AVX2
     * kernel's copied blocks and input chunks). */
    static const int col_counts[] = {2051, 2048};
    for (int ci = 0; ci < 2; ci++) {
        const int cols = col_counts[ci];
        fill(w, (size_t)rows * cols, -1.0f, 1.0f);
        fill(x, (size_t)nb * cols, -1.0f, 1.0f);
        ref->matmul_f32(orf, rows, x, nb, w, cols, 0, rows);
        for (int t = 0; t < nk; t++) {
            const l2_kernels *k = ks[t];
            k->matmul_f32(of, rows, x, nb, w, cols, 0, rows);
            for (int b = 0; b < nb; b++) {
                k->matmul_f32(alone, rows, x + (size_t)b * cols, 1, w, cols, 0, rows);
                if (first_difference(alone, of + (size_t)b * rows, rows) >= 0)
                    fail_msg("%s: matmul_f32 cols=%d with %d inputs: input %d alone differs", k->name, cols, nb, b);
                for (int r = 0; r < rows; r++) {
                    double mag = 0.0;
                    for (int c = 0; c < cols; c++) mag += fabs((double)w[(size_t)r * cols + c] * x[(size_t)b * cols + c]);
                    CHECK_CLOSE(of[b * rows + r], orf[b * rows + r], 1e-5 * mag, "matmul_f32 cols=%d nb=%d b=%d r=%d",
                                cols, nb, b, r);
                }
            }
        }
    }
    free(w);
    free(x);
    free(of);
    free(orf);
    free(alone);
}

/* ----------------------------------------------------------- attention */

/* Every table against the reference over head sizes with and without a
 * vector tail, 1 to 16 queries with their own key counts, key and value
 * rows inside a wider cache row (the other heads), and an exactly sized
 * scratch. Tolerance per output element: (2e-5 + 2e-7 n) * sum_t p_t
 * |v_t[d]|, the probabilities being reordered sums and a vectorised expf
 * away from the reference's. Each query's output must also be the same bits
 * when it runs alone: a query's result may not depend on the others in its
 * call (the forward pass groups queries by block, and must give the same
 * bytes for every grouping of threads). */
static void test_attention(void **state) {
    const l2_kernels *ks[2];
    int nk = fast_tables(state, ks);
    const l2_kernels *ref = l2_kernels_reference();
    static const int head_sizes[] = {2, 6, 8, 16, 24, 48, 64, 72, 128};
    static const int max_keys[] = {1, 2, 5, 7, 13, 64, 300};
    const int max_q = L2_ATTENTION_MAX_QUERIES, max_hs = 128, max_n = 300, heads = 3;
    const int kv_stride = heads * max_hs + 5;
    float *keys = xmalloc((size_t)max_n * kv_stride * sizeof(float));
    float *vals = xmalloc((size_t)max_n * kv_stride * sizeof(float));
    float *qbuf = xmalloc((size_t)max_q * (max_hs + 3) * sizeof(float));
    float *of = xmalloc((size_t)max_q * (max_hs + 8) * sizeof(float));
    float *orf = xmalloc((size_t)max_q * (max_hs + 8) * sizeof(float));
    float *alone = xmalloc((size_t)(max_hs + 8) * sizeof(float));
    double *p = xmalloc((size_t)max_n * sizeof(double));
    rng_seed(11);
    long checked = 0;
    for (int t = 0; t < nk; t++) {
        const l2_kernels *k = ks[t];
        for (size_t hi = 0; hi < sizeof head_sizes / sizeof head_sizes[0]; hi++) {
            const int hs = head_sizes[hi];
            const int ostride = hs + 8;
            for (int nq = 1; nq <= max_q; nq++) {
                for (int trial = 0; trial < 2; trial++) {
                    const int mk = max_keys[rng_int(0, (int)(sizeof max_keys / sizeof max_keys[0]) - 1)];
                    const int head = rng_int(0, heads - 1);
                    const float amp = trial ? 4.0f : 1.0f; /* sharper softmax */
                    fill(keys, (size_t)max_n * kv_stride, -amp, amp);
                    fill(vals, (size_t)max_n * kv_stride, -1.0f, 1.0f);
                    fill(qbuf, (size_t)max_q * (max_hs + 3), -1.0f, 1.0f);
                    int n_keys[L2_ATTENTION_MAX_QUERIES], n = 0;
                    const float *q[L2_ATTENTION_MAX_QUERIES];
                    float *outf[L2_ATTENTION_MAX_QUERIES], *outr[L2_ATTENTION_MAX_QUERIES];
                    for (int i = 0; i < nq; i++) {
                        n_keys[i] = rng_int(1, mk);
                        n = n_keys[i] > n ? n_keys[i] : n;
                        q[i] = qbuf + (size_t)i * (max_hs + 3) + rng_int(0, 3);
                        outf[i] = of + (size_t)i * ostride + 4;
                        outr[i] = orf + (size_t)i * ostride + 4;
                    }
                    for (int i = 0; i < max_q * ostride; i++) of[i] = orf[i] = -999.0f;
                    const float *kh = keys + (size_t)head * hs, *vh = vals + (size_t)head * hs;
                    size_t scratch_n = L2_ATTENTION_SCRATCH(n, hs);
                    float *scratch = xmalloc(scratch_n * sizeof(float));
                    k->attention(outf, q, n_keys, nq, kh, vh, kv_stride, hs, scratch);
                    ref->attention(outr, q, n_keys, nq, kh, vh, kv_stride, hs, scratch);
                    for (int i = 0; i < nq; i++) {
                        /* The probabilities in double, for the tolerance. */
                        double mx = -INFINITY, sum = 0.0;
                        for (int u = 0; u < n_keys[i]; u++) {
                            double d = 0.0;
                            for (int c = 0; c < hs; c++) d += (double)q[i][c] * kh[(size_t)u * kv_stride + c];
                            p[u] = d / sqrt((double)hs);
                            mx = p[u] > mx ? p[u] : mx;
                        }
                        for (int u = 0; u < n_keys[i]; u++) sum += (p[u] = exp(p[u] - mx));
                        for (int u = 0; u < n_keys[i]; u++) p[u] /= sum;
                        for (int c = -4; c < hs + 4; c++) {
                            float f = outf[i][c], r = outr[i][c];
                            if (c < 0 || c >= hs) {
                                if (f != -999.0f || r != -999.0f) {
                                    print_error("%s: attention hs=%d wrote outside query %d's row\n", k->name, hs, i);
                                    fail();
                                }
                                continue;
                            }
                            double mag = 0.0;
                            for (int u = 0; u < n_keys[i]; u++) mag += p[u] * fabs((double)vh[(size_t)u * kv_stride + c]);
                            CHECK_CLOSE(f, r, (2e-5 + 2e-7 * n_keys[i]) * mag + 1e-30,
                                        "attention hs=%d nq=%d n_keys=%d i=%d d=%d", hs, nq, n_keys[i], i, c);
                            checked++;
                        }
                        /* The same query alone: the same bits. */
                        float *ao[1] = {alone + 4};
                        k->attention(ao, &q[i], &n_keys[i], 1, kh, vh, kv_stride, hs, scratch);
                        if (memcmp(alone + 4, outf[i], (size_t)hs * sizeof(float)) != 0) {
                            print_error("%s: attention hs=%d nq=%d: query %d differs when alone\n", k->name, hs, nq, i);
                            fail();
                        }
                    }
                    free(scratch);
                }
            }
        }
    }
    assert_true(checked > 0);
    free(keys);
    free(vals);
    free(qbuf);
    free(of);
    free(orf);
    free(alone);
    free(p);
}

/* ------------------------------------------------------------ Q8 */

static const int q8_gs[] = {1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 24, 32, 40, 48, 64, 80, 96, 128, 256};
#define N_Q8_GS ((int)(sizeof q8_gs / sizeof q8_gs[0]))

/* Activations of several kinds: uniform, ties (integers and halves with a
 * maximum of exactly 127, so that x / scale lands on .5), all-zero groups,
 * tiny and huge magnitudes, negative zero. */
static void fill_activations(float *x, int n, int gs, int kind) {
    for (int i = 0; i < n; i++) {
        switch (kind) {
        case 0: x[i] = rng_float(-1.0f, 1.0f); break;
        case 1: x[i] = (float)rng_int(-254, 254) * 0.5f; break;
        case 2: x[i] = rng_float(-1e-30f, 1e-30f); break;
        case 3: x[i] = rng_float(-3e30f, 3e30f); break;
        default: x[i] = rng_float(-4.0f, 4.0f) * (float)(rng_int(0, 1)); break;
        }
    }
    for (int g = 0; g < n / gs; g++) {
        int sel = rng_int(0, 7);
        if (sel == 0) {
            for (int i = 0; i < gs; i++) x[g * gs + i] = (i % 2) ? -0.0f : 0.0f;
        } else if (kind == 1) {
            x[g * gs + rng_int(0, gs - 1)] = (sel % 2) ? 127.0f : -127.0f;
        }
    }
}

static void test_quantize_q8(void **state) {
    const l2_kernels *ks[2];
    int nk = fast_tables(state, ks);
    const l2_kernels *ref = l2_kernels_reference();
    static const int n_groups[] = {1, 2, 3, 7, 8, 9, 17, 40};
    const int max_n = 256 * 40;
    float *x = xmalloc((size_t)max_n * sizeof(float) + 16);
    int8_t *qf = xmalloc((size_t)max_n + 16), *qr = xmalloc((size_t)max_n + 16);
    float *sf = xmalloc(4096 * sizeof(float)), *sr = xmalloc(4096 * sizeof(float));
    rng_seed(7);
    for (int t = 0; t < nk; t++) {
        const l2_kernels *k = ks[t];
        for (int gi = 0; gi < N_Q8_GS; gi++) {
            for (int ni = 0; ni < 8; ni++) {
                for (int kind = 0; kind < 5; kind++) {
                    int gs = q8_gs[gi], n = gs * n_groups[ni];
                    int off = rng_int(0, 3);
                    fill_activations(x + off, n, gs, kind);
                    memset(qf, 0x5a, (size_t)max_n + 16);
                    memset(qr, 0x5a, (size_t)max_n + 16);
                    for (int i = 0; i < 4096; i++) sf[i] = sr[i] = -1.0f;
                    void *bxe;
                    const float *xe = exact_copy(x + off, (size_t)n * sizeof(float), (size_t)off * 4, &bxe);
                    k->quantize_q8(qf + 1, sf, xe, n, gs);
                    ref->quantize_q8(qr + 1, sr, xe, n, gs);
                    free(bxe);
                    if (memcmp(sf, sr, 4096 * sizeof(float)) != 0 || memcmp(qf, qr, (size_t)max_n + 16) != 0) {
                        int i = 0;
                        while (i < n && qf[1 + i] == qr[1 + i]) i++;
                        print_error("%s: quantize_q8 gs=%d n=%d kind=%d differs (first at %d: %d vs %d, x=%.9g)\n",
                                    k->name, gs, n, kind, i, i < n ? qf[1 + i] : 0, i < n ? qr[1 + i] : 0,
                                    i < n ? (double)x[off + i] : 0.0);
                        fail();
                    }
                }
            }
        }
    }
    free(x);
    free(qf);
    free(qr);
    free(sf);
    free(sr);
}

static void test_matmul_q8(void **state) {
    const l2_kernels *ks[2];
    int nk = fast_tables(state, ks);
    const l2_kernels *ref = l2_kernels_reference();
    static const int n_groups[] = {1, 2, 3, 7, 8, 9, 15, 16, 17};
    /* Up to 9 inputs, and past 64 (the AVX2 kernel's inputs per pass) for
     * the narrow shapes. */
    const int max_rows = 40, max_nb = 70, max_cols = 256 * 17;
    const int stride = max_rows + 5;
    int8_t *w = xmalloc((size_t)max_rows * max_cols + 64);
    float *ws = xmalloc((size_t)max_rows * 17 * sizeof(float));
    int8_t *xq = xmalloc((size_t)max_nb * max_cols + 64);
    float *xs = xmalloc((size_t)max_nb * max_cols * sizeof(float));
    float *xf = xmalloc((size_t)max_nb * max_cols * sizeof(float));
    float *of = xmalloc((size_t)max_nb * stride * sizeof(float));
    float *orf = xmalloc((size_t)max_nb * stride * sizeof(float));
    rng_seed(8);
    long checked = 0;
    for (int t = 0; t < nk; t++) {
        const l2_kernels *k = ks[t];
        for (int gi = 0; gi < N_Q8_GS; gi++) {
            for (int ni = 0; ni < 9; ni++) {
                int gs = q8_gs[gi], groups = n_groups[ni], cols = gs * groups;
                for (int trial = 0; trial < 4; trial++) {
                    int nb = trial == 0 ? 1 : rng_int(1, 9);
                    if (trial == 2 && ni <= 2) nb = rng_int(60, max_nb);
                    int rb = rng_int(0, 7);
                    int nrows = trial == 1 ? rng_int(1, 9) : rng_int(1, max_rows - rb);
                    int re = rb + nrows;
                    /* Weights over the whole int8 range (a file may hold
                     * -128); scales of both signs and many magnitudes so
                     * that any change in the order of rounding shows. */
                    for (int i = 0; i < max_rows * cols; i++) w[i] = (int8_t)(rng_u32() & 0xff);
                    for (int i = 0; i < max_rows * groups; i++)
                        ws[i] = rng_float(-1.0f, 1.0f) * ldexpf(1.0f, rng_int(-12, 4));
                    if (trial == 3) {
                        /* Raw int8 inputs, -128 included. */
                        for (int i = 0; i < nb * cols; i++) xq[i] = (int8_t)(rng_u32() & 0xff);
                        for (int i = 0; i < nb * groups; i++) xs[i] = rng_float(-1.0f, 1.0f);
                    } else {
                        fill_activations(xf, nb * cols, gs, trial == 2 ? 1 : 0);
                        ref->quantize_q8(xq, xs, xf, nb * cols, gs);
                    }
                    for (int i = 0; i < nb * stride; i++) of[i] = orf[i] = -999.0f;
                    void *b1, *b2, *b3, *b4;
                    const int8_t *we = exact_copy(w, (size_t)re * cols, 1, &b1);
                    const float *wse = exact_copy(ws, (size_t)re * groups * sizeof(float), 0, &b2);
                    const int8_t *xqe = exact_copy(xq, (size_t)nb * cols, 3, &b3);
                    const float *xse = exact_copy(xs, (size_t)nb * groups * sizeof(float), 0, &b4);
                    k->matmul_q8(of, stride, xqe, xse, nb, we, wse, cols, gs, rb, re);
                    ref->matmul_q8(orf, stride, xqe, xse, nb, we, wse, cols, gs, rb, re);
                    free(b1);
                    free(b2);
                    free(b3);
                    free(b4);
                    const int i = first_difference(of, orf, nb * stride);
                    if (i >= 0) {
                        print_error("%s: matmul_q8 gs=%d cols=%d nb=%d rows=[%d,%d) differs at b=%d r=%d: %.9g vs %.9g\n",
                                    k->name, gs, cols, nb, rb, re, i / stride, i % stride, (double)of[i],
                                    (double)orf[i]);
                        fail();
                    }
                    checked += (long)nb * nrows;
                }
            }
        }
    }
    assert_true(checked > 0);
    free(w);
    free(ws);
    free(xq);
    free(xs);
    free(xf);
    free(of);
    free(orf);
}

/* gemv_q8_stripes (where a table has it) against the reference matmul_q8
 * over the same rows, bit for bit: row counts that leave 0-15 rows after the
 * stripes, stripe ranges anywhere in [0, stripes], the scales as the table's
 * repack_q8 lays them out (checked against l2_q8_stripe_scale's order), and
 * outputs outside the range left alone. */
static void test_gemv_q8_stripes(void **state) {
    const l2_kernels *ks[2];
    int nk = fast_tables(state, ks);
    const l2_kernels *ref = l2_kernels_reference();
    assert_null(ref->repack_q8); /* the reference pays nothing for it */
    int with_stripes = 0;
    for (int t = 0; t < nk; t++) with_stripes += ks[t]->gemv_q8_stripes != NULL;
    if (!with_stripes) {
        print_message("skipped: the %s kernels have no gemv_q8_stripes\n", (const char *)*state);
        skip();
    }
    static const int n_groups[] = {1, 2, 3, 7, 8, 9, 17};
    const int max_rows = 260, max_cols = 256 * 17;
    int8_t *w = xmalloc((size_t)max_rows * max_cols);
    float *ws = xmalloc((size_t)max_rows * 17 * sizeof(float));
    int8_t *xq = xmalloc((size_t)max_cols);
    float *xs = xmalloc((size_t)max_cols * sizeof(float)), *xf = xmalloc((size_t)max_cols * sizeof(float));
    float *of = xmalloc((size_t)max_rows * sizeof(float)), *orf = xmalloc((size_t)max_rows * sizeof(float));
    rng_seed(13);
    long checked = 0;
    for (int t = 0; t < nk; t++) {
        const l2_kernels *k = ks[t];
        if (!k->gemv_q8_stripes) continue;
        assert_non_null(k->repack_q8);
        for (int gi = 0; gi < N_Q8_GS; gi++) {
            for (int ni = 0; ni < 7; ni++) {
                const int gs = q8_gs[gi], groups = n_groups[ni], cols = gs * groups;
                for (int trial = 0; trial < 3; trial++) {
                    const int rows = trial == 0 ? rng_int(8, 24) : rng_int(8, max_rows);
                    const int stripes = l2_q8_stripes(rows);
                    assert_true(stripes >= 1 && 8 * stripes <= rows && rows - 8 * stripes < 16);
                    assert_true(stripes == 1 || stripes % 2 == 1);
                    const int sb = rng_int(0, stripes), se = rng_int(sb, stripes);
                    for (int i = 0; i < rows * cols; i++) w[i] = (int8_t)(rng_u32() & 0xff);
                    for (int i = 0; i < rows * groups; i++)
                        ws[i] = rng_float(-1.0f, 1.0f) * ldexpf(1.0f, rng_int(-12, 4));
                    /* The stripe-ordered scales first; a level may keep
                     * more after them (AMX: the weights in tile order). */
                    const size_t stripe_bytes = (size_t)stripes * 8 * (size_t)groups * sizeof(float);
                    const size_t packed_bytes = k->repack_q8(NULL, w, ws, rows, cols, gs);
                    assert_true(packed_bytes >= stripe_bytes);
                    float *wss = xmalloc(packed_bytes);
                    assert_true(k->repack_q8(wss, w, ws, rows, cols, gs) == packed_bytes);
                    for (int i = 0; i < stripes; i++)
                        for (int j = 0; j < 8; j++)
                            for (int g = 0; g < groups; g++)
                                assert_true(wss[l2_q8_stripe_scale(i, g, j, groups)] ==
                                            ws[((size_t)i + (size_t)j * (size_t)stripes) * (size_t)groups + (size_t)g]);
                    if (trial == 2) {
                        /* Raw int8 inputs, -128 included. */
                        for (int i = 0; i < cols; i++) xq[i] = (int8_t)(rng_u32() & 0xff);
                        for (int i = 0; i < groups; i++) xs[i] = rng_float(-1.0f, 1.0f);
                    } else {
                        fill_activations(xf, cols, gs, trial);
                        ref->quantize_q8(xq, xs, xf, cols, gs);
                    }
                    ref->matmul_q8(orf, 0, xq, xs, 1, w, ws, cols, gs, 0, rows);
                    /* Only the range's rows are written. */
                    for (int r = 0; r < rows; r++) {
                        const int stripe = r % stripes;
                        if (r >= 8 * stripes || stripe < sb || stripe >= se) orf[r] = -999.0f;
                        of[r] = -999.0f;
                    }
                    void *b1, *b2, *b3, *b4;
                    const int8_t *we = exact_copy(w, (size_t)rows * cols, 1, &b1);
                    const float *wse = exact_copy(wss, packed_bytes, 0, &b2);
                    const int8_t *xqe = exact_copy(xq, (size_t)cols, 3, &b3);
                    const float *xse = exact_copy(xs, (size_t)groups * sizeof(float), 0, &b4);
                    k->gemv_q8_stripes(of, xqe, xse, we, wse, cols, gs, stripes, sb, se);
                    free(b1);
                    free(b2);
                    free(b3);
                    free(b4);
                    free(wss);
                    const int i = first_difference(of, orf, rows);
                    if (i >= 0) {
                        print_error("%s: gemv_q8_stripes gs=%d cols=%d rows=%d stripes=%d [%d,%d) differs at row %d: "
                                    "%.9g vs %.9g\n",
                                    k->name, gs, cols, rows, stripes, sb, se, i, (double)of[i], (double)orf[i]);
                        fail();
                    }
                    checked += 8L * (se - sb);
                }
            }
        }
    }
    assert_true(checked > 0);
    free(w);
    free(ws);
    free(xq);
    free(xs);
    free(xf);
    free(of);
    free(orf);
}

/* matmul_q8_packed (where a table has it) over the table's repack_q8 of the
 * matrix against the reference matmul_q8, bit for bit: group sizes the
 * AMX tiles take (32 and up, steps of 64, 48 and 32 bytes), ones they
 * leave to the VNNI products, ones the panels take that are not whole
 * vectors (4, 12) and one they do not (6); every input count from 1 to 17
 * (the panels' passes of up to 8 inputs, the AMX tiles' 16 rows, batched
 * decoding) and some past the tiles; row counts that are and are not
 * multiples of 16 and row ranges that start and end inside a block of 16;
 * inputs with and without -128; scales from tiny to huge (products that
 * overflow or vanish); and outputs outside the range left alone. */
static void test_matmul_q8_packed(void **state) {
    const l2_kernels *ks[2];
    int nk = fast_tables(state, ks);
    const l2_kernels *ref = l2_kernels_reference();
    static const int gss[] = {4, 6, 8, 12, 32, 48, 64, 96, 128};
    static const int nbs[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 32, 33, 47};
    const int max_rows = 80, max_cols = 128 * 5, max_nb = 47, stride = max_rows + 3;
    int8_t *w = xmalloc((size_t)max_rows * max_cols);
    float *ws = xmalloc((size_t)max_rows * max_cols * sizeof(float));
    int8_t *xq = xmalloc((size_t)max_nb * max_cols);
    float *xs = xmalloc((size_t)max_nb * max_cols * sizeof(float)), *xf = xmalloc((size_t)max_nb * max_cols * sizeof(float));
    float *of = xmalloc((size_t)max_nb * stride * sizeof(float)), *orf = xmalloc((size_t)max_nb * stride * sizeof(float));
    rng_seed(17);
    long checked = 0;
    for (int t = 0; t < nk; t++) {
        const l2_kernels *k = ks[t];
        assert_non_null(k->matmul_q8_packed);
        assert_non_null(k->repack_q8);
        for (size_t gi = 0; gi < sizeof gss / sizeof gss[0]; gi++) {
            for (size_t ni = 0; ni < sizeof nbs / sizeof nbs[0]; ni++) {
                const int gs = gss[gi], groups = rng_int(1, max_cols / gs), cols = gs * groups, nb = nbs[ni];
                const int rows = ni % 3 == 0 ? 16 * rng_int(1, max_rows / 16) : rng_int(1, max_rows);
                const int rb = ni % 2 ? rng_int(0, rows - 1) : 0, re = ni % 4 < 2 ? rows : rng_int(rb + 1, rows);
                for (int i = 0; i < rows * cols; i++) w[i] = (int8_t)(rng_u32() & 0xff);
                const int extreme = ni % 5 == 4;
                for (int i = 0; i < rows * groups; i++)
                    ws[i] = rng_float(-1.0f, 1.0f) * ldexpf(1.0f, extreme ? rng_int(-100, 100) : rng_int(-12, 4));
                if (ni % 3 == 1) {
                    /* Raw int8 inputs, -128 included. */
                    for (int i = 0; i < nb * cols; i++) xq[i] = (int8_t)(rng_u32() & 0xff);
                    for (int i = 0; i < nb * groups; i++) xs[i] = rng_float(-1.0f, 1.0f);
                } else {
                    fill_activations(xf, nb * cols, gs, extreme ? 2 + (int)(gi % 2) : (int)ni % 2);
                    ref->quantize_q8(xq, xs, xf, nb * cols, gs);
                }
                const size_t bytes = k->repack_q8(NULL, w, ws, rows, cols, gs);
                void *packed = xmalloc(bytes);
                assert_true(k->repack_q8(packed, w, ws, rows, cols, gs) == bytes);
                for (int i = 0; i < nb * stride; i++) of[i] = orf[i] = -999.0f;
                void *b1, *b2, *b3, *b4, *b5;
                const int8_t *we = exact_copy(w, (size_t)rows * cols, 1, &b1);
                const float *wse = exact_copy(ws, (size_t)rows * groups * sizeof(float), 0, &b2);
                const int8_t *xqe = exact_copy(xq, (size_t)nb * cols, 3, &b3);
                const float *xse = exact_copy(xs, (size_t)nb * groups * sizeof(float), 0, &b4);
                const void *pe = exact_copy(packed, bytes, 0, &b5);
                int32_t *sums = xmalloc((size_t)nb * groups * sizeof(int32_t));
                l2_q8_group_sums(sums, xqe, nb * cols, gs);
                void *b6;
                const int32_t *sumse = exact_copy(sums, (size_t)nb * groups * sizeof(int32_t), 0, &b6);
                k->matmul_q8_packed(of, stride, xqe, xse, sumse, nb, we, wse, pe, rows, cols, gs, rb, re);
                free(sums);
                free(b6);
                ref->matmul_q8(orf, stride, xqe, xse, nb, we, wse, cols, gs, rb, re);
                free(b1);
                free(b2);
                free(b3);
                free(b4);
                free(b5);
                free(packed);
                const int i = first_difference(of, orf, nb * stride);
                if (i >= 0) {
                    print_error("%s: matmul_q8_packed gs=%d cols=%d nb=%d rows=%d [%d,%d) differs at b=%d r=%d: "
                                "%.9g vs %.9g\n",
                                k->name, gs, cols, nb, rows, rb, re, i / stride, i % stride, (double)of[i],
                                (double)orf[i]);
                    fail();
                }
                checked += (long)nb * (re - rb);
            }
        }
    }
    assert_true(checked > 0);
    free(w);
    free(ws);
    free(xq);
    free(xs);
    free(xf);
    free(of);
    free(orf);
}

/* -------------------------------------------------------------- scores */

/* The exact parts of the exact tables' attention, which must give the
 * reference's bits (int8 models use them). */
typedef struct attention_part {
    const char *name;
    void (*fn)(float *out, const float *a, const float *b, int kv_stride, int n_keys, int hs);
} attention_part;

/* The level's own exact scores or values part, if it has one (the levels
 * built on AVX2 use AVX2's, tested at that level). */
static attention_part own_part(const char *level, int values) {
    attention_part part = {NULL, NULL};
#if defined(__x86_64__) || defined(__i386__)
    if (strcmp(level, "avx2") == 0) part = values ? (attention_part){"avx2", l2_values_avx2} : (attention_part){"avx2", l2_scores_avx2};
#endif
#if defined(__aarch64__)
    if (strcmp(level, "neon") == 0 && values) part = (attention_part){"neon", l2_values_neon};
#endif
    return part;
}

/* The part of the level a test is registered for (only levels that have
 * it: see main), skipped by name where this CPU cannot run the level. */
static attention_part level_part(void **state, int values) {
    const l2_kernels *k[2];
    fast_tables(state, k);
    attention_part part = own_part((const char *)*state, values);
    assert_non_null(part.fn);
    return part;
}

/* The fast scores are bit-exact: head sizes with and without a tail of 1-3
 * dimensions, key counts around the groups of 8 and 32 keys, key rows
 * inside a wider cache row, a last key at the very end of its buffer, and
 * values of many magnitudes and both signs (zeros included) so that any
 * change in the order of the sums shows. */
static void test_scores(void **state) {
    attention_part ks[1] = {level_part(state, 0)};
    const int nk = 1;
    static const int head_sizes[] = {1, 2, 3, 4, 5, 7, 8, 12, 16, 24, 48, 64, 72, 128};
    const int max_hs = 128, max_n = 300;
    float *q = xmalloc((size_t)max_hs * sizeof(float));
    float *af = xmalloc((size_t)(max_n + 8) * sizeof(float)), *ar = xmalloc((size_t)(max_n + 8) * sizeof(float));
    rng_seed(12);
    long checked = 0;
    for (int t = 0; t < nk; t++) {
        const attention_part *k = &ks[t];
        for (size_t hi = 0; hi < sizeof head_sizes / sizeof head_sizes[0]; hi++) {
            const int hs = head_sizes[hi], stride = 3 * hs + rng_int(0, 5);
            for (int n = 1; n <= max_n; n += n < 72 ? 1 : 37) {
                const size_t size = ((size_t)(n - 1) * (size_t)stride + (size_t)hs) * sizeof(float);
                float *kb = xmalloc(size);
                for (size_t i = 0; i < size / sizeof(float); i++)
                    kb[i] = rng_int(0, 15) == 0 ? 0.0f : rng_float(-1.0f, 1.0f) * ldexpf(1.0f, rng_int(-8, 8));
                for (int i = 0; i < hs; i++) q[i] = rng_float(-2.0f, 2.0f) * ldexpf(1.0f, rng_int(-4, 4));
                void *base;
                const float *ke = exact_copy(kb, size, 4, &base);
                for (int i = 0; i < max_n + 8; i++) af[i] = ar[i] = -999.0f;
                k->fn(af, q, ke, stride, n, hs);
                l2_scores_ref(ar, q, ke, stride, n, hs);
                free(base);
                free(kb);
                const int i = first_difference(af, ar, max_n + 8);
                if (i >= 0) {
                    print_error("%s: scores hs=%d n=%d differs at %d: %.9g vs %.9g\n", k->name, hs, n, i,
                                (double)af[i], (double)ar[i]);
                    fail();
                }
                checked += n;
            }
        }
    }
    assert_true(nk == 0 || checked > 0);
    free(q);
    free(af);
    free(ar);
}

/* -------------------------------------------------------------- values */

/* The fast values sums are bit-exact: head sizes around the vector widths
 * and the 64-column chunks, key counts from 1 to a few hundred, value rows
 * inside a wider cache row with the last one at the very end of its buffer,
 * weights of many magnitudes with zeros, values of both signs (zeros
 * included), and sums that start from zero or continue from earlier ones,
 * so that any reordering or fused operation shows. */
static void test_values(void **state) {
    attention_part ks[1] = {level_part(state, 1)};
    const int nk = 1;
    static const int head_sizes[] = {1, 3, 4, 5, 8, 12, 16, 20, 48, 63, 64, 65, 72, 96, 128, 136};
    const int max_hs = 136, max_n = 300;
    float *att = xmalloc((size_t)max_n * sizeof(float));
    float *of = xmalloc((size_t)(max_hs + 8) * sizeof(float)), *orf = xmalloc((size_t)(max_hs + 8) * sizeof(float));
    rng_seed(13);
    long checked = 0;
    for (int t = 0; t < nk; t++) {
        const attention_part *k = &ks[t];
        for (size_t hi = 0; hi < sizeof head_sizes / sizeof head_sizes[0]; hi++) {
            const int hs = head_sizes[hi], stride = hs + rng_int(0, 2 * hs);
            for (int n = 1; n <= max_n; n += n < 40 ? 1 : 53) {
                const size_t size = ((size_t)(n - 1) * (size_t)stride + (size_t)hs) * sizeof(float);
                float *vb = xmalloc(size);
                for (size_t i = 0; i < size / sizeof(float); i++)
                    vb[i] = rng_int(0, 15) == 0 ? 0.0f : rng_float(-1.0f, 1.0f) * ldexpf(1.0f, rng_int(-8, 8));
                for (int i = 0; i < n; i++)
                    att[i] = rng_int(0, 7) == 0 ? 0.0f : rng_float(0.0f, 1.0f) * ldexpf(1.0f, rng_int(-20, 0));
                void *base;
                const float *ve = exact_copy(vb, size, 4, &base);
                for (int i = 0; i < max_hs + 8; i++)
                    of[i] = orf[i] = i < hs && n % 3 == 0 ? rng_float(-1.0f, 1.0f) : i < hs ? 0.0f : -999.0f;
                k->fn(of, att, ve, stride, n, hs);
                l2_values_ref(orf, att, ve, stride, n, hs);
                free(base);
                free(vb);
                const int i = first_difference(of, orf, max_hs + 8);
                if (i >= 0) {
                    print_error("%s: values hs=%d n=%d differs at %d: %.9g vs %.9g\n", k->name, hs, n, i,
                                (double)of[i], (double)orf[i]);
                    fail();
                }
                checked += n;
            }
        }
    }
    assert_true(nk == 0 || checked > 0);
    free(att);
    free(of);
    free(orf);
}

/* ------------------------------------------------ exact exponential */

/* (Natively only: the emulated build tests no avx2 level.) */
#if (defined(__x86_64__) || defined(__i386__)) && !defined(L2_EMULATED_X86)
#define EXPF_EXACT_HERE 1
#include "kernels/ops_avx2_util.h"
#include "platform/bits.h"

/* The floats [begin, end) every stride-th through expf8_exact, against
 * l2_expf: the count checked, the first that differs in *first. */
AVX2_FN static uint64_t expf8_sweep(uint64_t begin, uint64_t end, uint64_t stride, uint64_t *wrong, uint32_t *first) {
    uint64_t checked = 0;
    _Alignas(32) float x[8], e[8];
    for (uint64_t u = begin; u < end; u += 8 * stride) {
        for (int i = 0; i < 8; i++) x[i] = l2_bits_float((uint32_t)(u + (uint64_t)i * stride < end ? u + (uint64_t)i * stride : u));
        _mm256_store_ps(e, expf8_exact(_mm256_load_ps(x)));
        for (int i = 0; i < 8; i++) {
            const float r = l2_expf(x[i]);
            if (l2_float_bits(r) != l2_float_bits(e[i]) && !(r != r && e[i] != e[i]) && (*wrong)++ == 0)
                *first = l2_float_bits(x[i]);
            checked++;
        }
    }
    return checked;
}
#endif

/* The exact tables' softmax (the attention's, l2_softmax_exact_avx2 and the
 * blocked one) computes l2_expf on 8 lanes (expf8_exact): every float it
 * computes itself, |x| < 88, every 16th (every 4099th sanitized), is
 * l2_expf's bits, and the others, which it hands to l2_expf, sampled. */
static void test_expf_exact(void **state) {
    const l2_kernels *ks[2];
    fast_tables(state, ks);
#ifdef EXPF_EXACT_HERE
    const uint64_t stride = SANITIZED ? 4099 : 16, far = 0x42b00000u;
    uint64_t wrong = 0, checked = 0;
    uint32_t first = 0;
    checked += expf8_sweep(0, far, stride, &wrong, &first);
    checked += expf8_sweep(0x80000000u, 0x80000000u + far, stride, &wrong, &first);
    checked += expf8_sweep(far, 0x80000000u, 65537, &wrong, &first);
    checked += expf8_sweep(0x80000000u + far, 0x100000000u, 65537, &wrong, &first);
    if (wrong)
        fail_msg("expf8_exact: %llu of %llu floats differ from l2_expf, among them %a", (unsigned long long)wrong,
                 (unsigned long long)checked, (double)l2_bits_float(first));
    print_message("expf8_exact: %llu floats, all l2_expf's bits\n", (unsigned long long)checked);
#endif
}

/* ------------------------------------------------------ exact tables */

/* Every float entry of the level's exact table (the one int8 models use) against
 * the reference, bit for bit, on random inputs: the vectors over every
 * length, products over several shapes and input counts, attention over
 * head sizes with and without vector tails. (The int8 entries are checked
 * in every table above.) */
static void test_exact_tables(void **state) {
    const l2_kernels *ks[1] = {exact_table(state)};
    const int nk = 1;
    const l2_kernels *ref = l2_kernels_reference();
    const int max_n = 1100, max_rows = 40, max_nb = 9, max_q = L2_ATTENTION_MAX_QUERIES, max_keys = 70;
    float *a = xmalloc((size_t)max_n * sizeof(float)), *b = xmalloc((size_t)max_n * sizeof(float));
    float *ra = xmalloc((size_t)max_n * sizeof(float)), *up = xmalloc((size_t)max_n * sizeof(float));
    float *w = xmalloc((size_t)max_rows * max_n * sizeof(float)), *x = xmalloc((size_t)max_nb * max_n * sizeof(float));
    float *of = xmalloc((size_t)max_nb * max_rows * sizeof(float)), *orf = xmalloc((size_t)max_nb * max_rows * sizeof(float));
    const int hs_max = 72, kv_stride = 2 * hs_max + 3;
    float *keys = xmalloc((size_t)max_keys * kv_stride * sizeof(float)), *vals = xmalloc((size_t)max_keys * kv_stride * sizeof(float));
    float *qs = xmalloc((size_t)max_q * hs_max * sizeof(float));
    float *af = xmalloc((size_t)max_q * hs_max * sizeof(float)), *ar = xmalloc((size_t)max_q * hs_max * sizeof(float));
    float *scratch = xmalloc(L2_ATTENTION_SCRATCH(max_keys, hs_max) * sizeof(float));
    rng_seed(21);
    for (int t = 0; t < nk; t++) {
        const l2_kernels *k = ks[t];
        for (int li = 0; li < N_LENGTHS; li++) {
            const int n = lengths[li];
            fill(a, (size_t)max_n, -3.0f, 3.0f);
            fill(up, (size_t)max_n, -2.0f, 2.0f);
            fill(w, (size_t)max_n, 0.5f, 1.5f);
            k->rmsnorm(b, a, w, n, 1e-5f);
            ref->rmsnorm(ra, a, w, n, 1e-5f);
            if (first_difference(b, ra, n) >= 0) fail_msg("%s: rmsnorm n=%d is not the reference's", k->name, n);
            memcpy(b, a, (size_t)n * sizeof(float));
            memcpy(ra, a, (size_t)n * sizeof(float));
            k->softmax(b, n);
            ref->softmax(ra, n);
            if (first_difference(b, ra, n) >= 0) fail_msg("%s: softmax n=%d is not the reference's", k->name, n);
            memcpy(b, a, (size_t)n * sizeof(float));
            memcpy(ra, a, (size_t)n * sizeof(float));
            k->swiglu(b, up, n);
            ref->swiglu(ra, up, n);
            if (first_difference(b, ra, n) >= 0) fail_msg("%s: swiglu n=%d is not the reference's", k->name, n);
        }
        for (int trial = 0; trial < 40; trial++) {
            const int cols = rng_int(1, max_n), rows = rng_int(1, max_rows), nb = rng_int(1, max_nb);
            fill(w, (size_t)rows * cols, -1.0f, 1.0f);
            fill(x, (size_t)nb * cols, -1.0f, 1.0f);
            k->matmul_f32(of, rows, x, nb, w, cols, 0, rows);
            ref->matmul_f32(orf, rows, x, nb, w, cols, 0, rows);
            if (first_difference(of, orf, nb * rows) >= 0)
                fail_msg("%s: matmul_f32 cols=%d rows=%d nb=%d is not the reference's", k->name, cols, rows, nb);
        }
        static const int head_sizes[] = {6, 8, 16, 48, 64, 72};
        for (size_t hi = 0; hi < sizeof head_sizes / sizeof head_sizes[0]; hi++) {
            const int hs = head_sizes[hi];
            /* Keys of up to 2, and of up to 60: scores far below the
             * largest, whose exponentials the exact softmax leaves to
             * l2_expf itself. */
            for (int round = 0; round < 2 * max_q; round++) {
                const int nq = round % max_q + 1;
                const float amp = round < max_q ? 2.0f : 60.0f;
                fill(keys, (size_t)max_keys * kv_stride, -amp, amp);
                fill(vals, (size_t)max_keys * kv_stride, -1.0f, 1.0f);
                fill(qs, (size_t)max_q * hs_max, -1.0f, 1.0f);
                const float *q[L2_ATTENTION_MAX_QUERIES];
                float *outf[L2_ATTENTION_MAX_QUERIES], *outr[L2_ATTENTION_MAX_QUERIES];
                int n_keys[L2_ATTENTION_MAX_QUERIES];
                for (int i = 0; i < nq; i++) {
                    q[i] = qs + (size_t)i * hs_max;
                    outf[i] = af + (size_t)i * hs_max;
                    outr[i] = ar + (size_t)i * hs_max;
                    n_keys[i] = rng_int(1, max_keys);
                }
                k->attention(outf, q, n_keys, nq, keys + hs, vals + hs, kv_stride, hs, scratch);
                ref->attention(outr, q, n_keys, nq, keys + hs, vals + hs, kv_stride, hs, scratch);
                for (int i = 0; i < nq; i++)
                    if (first_difference(outf[i], outr[i], hs) >= 0)
                        fail_msg("%s: attention hs=%d nq=%d query %d is not the reference's", k->name, hs, nq, i);
            }
        }
    }
    free(a);
    free(b);
    free(ra);
    free(up);
    free(w);
    free(x);
    free(of);
    free(orf);
    free(keys);
    free(vals);
    free(qs);
    free(af);
    free(ar);
    free(scratch);
}

#ifdef L2_EMULATED_X86
/* This program (test_kernels_emulated) links the x86 kernels built against
 * tests/emulate_x86.h, so every level runs here whatever the CPU: it tests
 * the levels beyond AVX2, which test_kernels runs only where the CPU has
 * them (AVX2 and the reference run natively on every x86-64 machine that
 * tests this project). */
#define EMULATED ", emulated"
static int tested_here(const char *level) { return strcmp(level, "scalar") != 0 && strcmp(level, "avx2") != 0; }
#else
#define EMULATED ""
static int tested_here(const char *level) { return strcmp(level, "scalar") != 0; }
#endif

int main(void) {
    /* Each kernel test once per level besides the reference. */
    static const struct { const char *name; CMUnitTestFunction fn; } kernel_tests[] = {
        {"rmsnorm", test_rmsnorm},
        {"softmax", test_softmax},
        {"swiglu", test_swiglu},
        {"add", test_add},
        {"matmul_f32", test_matmul_f32},
        {"matmul_f32_many_inputs", test_matmul_f32_many_inputs},
        {"attention", test_attention},
        {"quantize_q8", test_quantize_q8},
        {"matmul_q8", test_matmul_q8},
        {"gemv_q8_stripes", test_gemv_q8_stripes},
        {"matmul_q8_packed", test_matmul_q8_packed},
        {"scores", test_scores},
        {"values", test_values},
        {"exact_table", test_exact_tables},
        {"expf_exact", test_expf_exact},
    };
    const int n_kernels = (int)(sizeof kernel_tests / sizeof kernel_tests[0]);
    enum { MAX_LEVELS = 8, MAX_KERNEL_TESTS = 16 };
    static struct CMUnitTest tests[10 + MAX_KERNEL_TESTS * MAX_LEVELS];
    static char names[MAX_KERNEL_TESTS * MAX_LEVELS][64];
    assert_true(n_kernels <= MAX_KERNEL_TESTS);
    int n = 0, n_names = 0;
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_select);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_tables_as_documented);
    for (int level = 0; l2_kernel_level_name(level) && level < MAX_LEVELS; level++) {
        const char *name = l2_kernel_level_name(level);
        if (!tested_here(name)) continue;
        for (int k = 0; k < n_kernels; k++) {
            /* Entries a level does not have are not its tests. */
            const l2_kernels *table = l2_kernels_level_any(name, LLAMA2_WEIGHTS_F32);
            if (kernel_tests[k].fn == test_gemv_q8_stripes && !table->gemv_q8_stripes) continue;
            if (kernel_tests[k].fn == test_matmul_q8_packed && !table->matmul_q8_packed) continue;
            if (kernel_tests[k].fn == test_scores && !own_part(name, 0).fn) continue;
            if (kernel_tests[k].fn == test_values && !own_part(name, 1).fn) continue;
            if (kernel_tests[k].fn == test_expf_exact && strcmp(name, "avx2") != 0) continue;
            snprintf(names[n_names], sizeof names[n_names], "%s [%s%s]", kernel_tests[k].name, name, EMULATED);
            tests[n++] = (struct CMUnitTest){names[n_names++], kernel_tests[k].fn, NULL, NULL, (void *)name};
        }
    }
#if defined(__aarch64__)
    tests[n++] = (struct CMUnitTest){"matmul_q8 [neon widening]", test_matmul_q8, NULL, NULL, (void *)"neon widening"};
    tests[n++] = (struct CMUnitTest){"matmul_q8 [neon sdot]", test_matmul_q8, NULL, NULL, (void *)"neon sdot"};
#endif
    return _cmocka_run_group_tests("kernels", tests, (size_t)n, NULL, NULL);
}
