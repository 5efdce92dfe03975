/*
 * Checkpoint writing: the int8 (version 2) export must equal llama2.c's
 * export.py byte for byte; random-weight models in every format must load
 * back with their shape and hold the same weights whatever the format; the
 * writers must fail cleanly, leaving no file behind. The tools' own
 * messages (llama2-quantize, llama2-genmodel, llama2-bench) word by word.
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

#include "write/checkpoint_writer.h"
#include "llama2.h"
#include "platform/platform.h"
#include "support.h"

/* ------------------------------------------------------------ helpers */

static char tmp_dir[1024];

static const char *tmp_path(const char *name) { return test_path_in(tmp_dir, name); }

/* A file of the models folder; the running test is skipped when it is
 * absent. */
static const char *model_path(const char *name) { return test_require_model(name); }

/* llama2.c's own export of a file ($SHARED/models); the running test is
 * skipped when there is none. */
static const char *reference_path(const char *name) { return test_require_reference(name); }

/* Removes every file of the temporary folder; returns how many there were. */
static int clear_tmp_dir(void) { return test_dir_entries(tmp_dir, 1); }

static int count_tmp_files(void) { return test_dir_entries(tmp_dir, 0); }

static int group_setup(void **state) { return test_tmp_dir_create(tmp_dir, sizeof tmp_dir, "test-quantize"); }

static int group_teardown(void **state) {
    test_tmp_dir_remove(tmp_dir);
    return 0;
}

/* Each test starts from an empty folder. */
static int test_setup(void **state) { return clear_tmp_dir() < 0 ? -1 : 0; }

static void assert_same_file(const char *a, const char *b) { assert_true(test_same_file(a, b)); }

static llama2_config shape(int dim, int hidden, int layers, int heads, int kv_heads, int vocab, int seq_len,
                           int shared, int version, int group_size) {
    return l2_random_model_config(dim, hidden, layers, heads, kv_heads, vocab, seq_len, shared, version, group_size);
}

static void write_model(const char *path, const llama2_config *c, uint64_t seed) {
    llama2_error err = {0};
    llama2_status s = l2_write_random_model(path, c, seed, L2_OUTPUT_FORCE, &err);
    if (s != LLAMA2_OK) fail_msg("l2_write_random_model: %s", err.message);
}

static void quantize(const char *in, const char *out, int group_size) {
    llama2_error err = {0};
    llama2_status s = l2_quantize_file(in, out, group_size, L2_OUTPUT_FORCE, &err);
    if (s != LLAMA2_OK) fail_msg("l2_quantize_file(%s, %d): %s", in, group_size, err.message);
}

static llama2_model *open_model(const char *path) {
    llama2_model *m = NULL;
    llama2_error err = {0};
    if (llama2_model_open(path, NULL, &m, &err) != LLAMA2_OK) fail_msg("llama2_model_open(%s): %s", path, err.message);
    return m;
}

/* The logits after each of tokens[0..n) fed one block, copied out. */
static float *logits_of(const char *path, const int *tokens, int n, int *vocab) {
    llama2_model *m = open_model(path);
    llama2_session *session = NULL;
    llama2_error err = {0};
    if (llama2_session_create(m, NULL, &session, &err) != LLAMA2_OK) fail_msg("session: %s", err.message);
    float *logits = NULL;
    if (llama2_session_eval(session, tokens, n, 0, &logits, &err) != LLAMA2_OK) fail_msg("eval: %s", err.message);
    *vocab = llama2_model_config(m)->vocab_size;
    float *copy = malloc((size_t)*vocab * sizeof *copy);
    assert_non_null(copy);
    memcpy(copy, logits, (size_t)*vocab * sizeof *copy);
    llama2_session_destroy(session);
    llama2_model_close(m);
    return copy;
}

/* --------------------------------------------------- export.py parity */

static void test_default_group_size(void **state) {
    assert_int_equal(l2_default_group_size(64, 172), 4);     /* stories260K */
    assert_int_equal(l2_default_group_size(288, 768), 48);   /* stories15M */
    assert_int_equal(l2_default_group_size(512, 1376), 32);  /* stories42M */
    assert_int_equal(l2_default_group_size(768, 2048), 64);  /* stories110M */
    assert_int_equal(l2_default_group_size(2048, 5632), 64); /* TinyLlama */
    assert_int_equal(l2_default_group_size(48, 96), 48);
    assert_int_equal(l2_default_group_size(7, 11), 1);
}

/* stories260K (v0 and v1) quantized with the automatic group size (4) and
 * with 4 given is exactly llama2.c's export.py output. */
static void test_quantize_matches_export_py(void **state) {
    const char *inputs[2] = {"stories260K.bin", "stories260K_v1.bin"};
    for (int i = 0; i < 2; i++) model_path(inputs[i]);
    char expected[4096];
    snprintf(expected, sizeof expected, "%s", reference_path("stories260K_q80_gs4.bin"));
    for (int i = 0; i < 2; i++) {
        char in[4096];
        snprintf(in, sizeof in, "%s", model_path(inputs[i]));
        for (int gs = 0; gs <= 4; gs += 4) {
            quantize(in, tmp_path("q.bin"), gs);
            assert_same_file(tmp_path("q.bin"), expected);
            test_remove(tmp_path("q.bin"));
        }
    }
    assert_int_equal(count_tmp_files(), 0);
}

/* A separate classifier equal to the embedding table is stored once, as
 * export.py's torch.equal test does: stories260K rewritten with a copied
 * classifier still gives export.py's file. */
static void test_equal_classifier_is_shared(void **state) {
    model_path("stories260K_q80_gs4.bin");
    size_t size = 0;
    char *data = test_read_file(model_path("stories260K.bin"), &size);
    assert_non_null(data);
    int32_t header[7];
    memcpy(header, data, sizeof header);
    size_t table = (size_t)header[5] * (size_t)header[0] * sizeof(float);
    header[5] = -header[5];
    FILE *f = fopen(tmp_path("unshared.bin"), "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(header, sizeof header, 1, f), 1);
    assert_int_equal(fwrite(data + sizeof header, size - sizeof header, 1, f), 1);
    assert_int_equal(fwrite(data + sizeof header, table, 1, f), 1); /* the embedding table again */
    assert_int_equal(fclose(f), 0);
    free(data);

    llama2_model *m = open_model(tmp_path("unshared.bin"));
    assert_int_equal(llama2_model_config(m)->shared_classifier, 0);
    llama2_model_close(m);
    quantize(tmp_path("unshared.bin"), tmp_path("q.bin"), 0);
    assert_same_file(tmp_path("q.bin"), model_path("stories260K_q80_gs4.bin"));
}

static void test_bad_group_size_refused(void **state) {
    const int sizes[] = {64, 3, 8, -1};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        llama2_error err = {0};
        llama2_status s = l2_quantize_file(model_path("stories260K.bin"), tmp_path("q.bin"), sizes[i],
                                           L2_OUTPUT_FORCE, &err);
        assert_int_equal(s, LLAMA2_E_INVALID);
        assert_int_equal(err.status, LLAMA2_E_INVALID);
        assert_true(strlen(err.message) > 0);
    }
    assert_int_equal(count_tmp_files(), 0);
}

static void test_v2_input_refused(void **state) {
    llama2_error err = {0};
    llama2_status s = l2_quantize_file(model_path("stories260K_q80_gs4.bin"), tmp_path("q.bin"), 0, L2_OUTPUT_FORCE,
                                       &err);
    assert_int_equal(s, LLAMA2_E_INVALID);
    assert_non_null(strstr(err.message, "already int8"));
    /* And files that do not load at all are refused with the loader's error. */
    s = l2_quantize_file(tmp_path("missing.bin"), tmp_path("q.bin"), 0, L2_OUTPUT_FORCE, &err);
    assert_int_equal(s, LLAMA2_E_IO);
    s = l2_quantize_file(model_path("tok512.bin"), tmp_path("q.bin"), 0, L2_OUTPUT_FORCE, &err);
    assert_int_equal(s, LLAMA2_E_FORMAT);
    assert_int_equal(count_tmp_files(), 0);
}

/* ---------------------------------------------------- random models */

static const int shapes[][7] = {
    /* dim, hidden, layers, heads, kv_heads, vocab, seq_len */
    {64, 172, 2, 8, 4, 512, 64}, /* stories260K's shape (GQA), fewer layers */
    {48, 128, 3, 6, 6, 100, 32},
    {32, 96, 1, 2, 1, 37, 16},   /* one KV head */
};
#define N_SHAPES (int)(sizeof shapes / sizeof shapes[0])

static llama2_config shape_n(int i, int shared, int version, int group_size) {
    const int *s = shapes[i];
    return shape(s[0], s[1], s[2], s[3], s[4], s[5], s[6], shared, version, group_size);
}

static void test_random_models_load(void **state) {
    for (int i = 0; i < N_SHAPES; i++)
        for (int version = 0; version <= 2; version++)
            for (int shared = 0; shared <= 1; shared++) {
                /* Format 2 with the automatic group size (0) and with 2. */
                for (int gs = 0; gs <= (version == 2 ? 2 : 0); gs += 2) {
                    llama2_config c = shape_n(i, shared, version, gs);
                    write_model(tmp_path("r.bin"), &c, 1234);
                    llama2_model *m = open_model(tmp_path("r.bin"));
                    const llama2_config *got = llama2_model_config(m);
                    assert_int_equal(got->dim, c.dim);
                    assert_int_equal(got->hidden_dim, c.hidden_dim);
                    assert_int_equal(got->n_layers, c.n_layers);
                    assert_int_equal(got->n_heads, c.n_heads);
                    assert_int_equal(got->n_kv_heads, c.n_kv_heads);
                    assert_int_equal(got->vocab_size, c.vocab_size);
                    assert_int_equal(got->seq_len, c.seq_len);
                    assert_int_equal(got->shared_classifier, shared);
                    assert_int_equal(got->file_version, version);
                    assert_int_equal(got->weight_type, version == 2 ? LLAMA2_WEIGHTS_Q8_0 : LLAMA2_WEIGHTS_F32);
                    int want_gs = version != 2 ? 0 : gs ? gs : l2_default_group_size(c.dim, c.hidden_dim);
                    assert_int_equal(got->group_size, want_gs);
                    llama2_model_close(m);
                    assert_int_equal(test_remove(tmp_path("r.bin")), 0);
                }
            }
    assert_int_equal(count_tmp_files(), 0);
}

static void test_random_seed_matters(void **state) {
    llama2_config c = shape_n(2, 1, 1, 0);
    write_model(tmp_path("a.bin"), &c, 1);
    write_model(tmp_path("b.bin"), &c, 1);
    write_model(tmp_path("c.bin"), &c, 2);
    size_t na, nc;
    char *a = test_read_file(tmp_path("a.bin"), &na), *cc = test_read_file(tmp_path("c.bin"), &nc);
    assert_non_null(a);
    assert_non_null(cc);
    assert_int_equal(na, nc);
    assert_memory_not_equal(a + 256, cc + 256, na - 256);
    free(a);
    free(cc);
    assert_same_file(tmp_path("a.bin"), tmp_path("b.bin"));
}

static const int prompt[] = {1, 5, 17, 3, 29, 11, 2, 30};
#define PROMPT_LEN (int)(sizeof prompt / sizeof prompt[0])

/* The same seed gives the same weights in v0 and v1: identical logits. And
 * a random v2 model is exactly the quantized v0 model. */
static void test_formats_hold_same_weights(void **state) {
    for (int i = 0; i < N_SHAPES; i++)
        for (int shared = 0; shared <= 1; shared++) {
            llama2_config c0 = shape_n(i, shared, 0, 0), c1 = shape_n(i, shared, 1, 0), c2 = shape_n(i, shared, 2, 0);
            write_model(tmp_path("v0.bin"), &c0, 99);
            write_model(tmp_path("v1.bin"), &c1, 99);
            write_model(tmp_path("v2.bin"), &c2, 99);
            int n0, n1;
            float *l0 = logits_of(tmp_path("v0.bin"), prompt, PROMPT_LEN, &n0);
            float *l1 = logits_of(tmp_path("v1.bin"), prompt, PROMPT_LEN, &n1);
            assert_int_equal(n0, n1);
            assert_memory_equal(l0, l1, (size_t)n0 * sizeof(float));
            free(l0);
            free(l1);
            quantize(tmp_path("v0.bin"), tmp_path("q0.bin"), 0);
            assert_same_file(tmp_path("q0.bin"), tmp_path("v2.bin"));
            quantize(tmp_path("v1.bin"), tmp_path("q1.bin"), 0);
            assert_same_file(tmp_path("q1.bin"), tmp_path("v2.bin"));
            clear_tmp_dir();
        }
}

/* Quantizing a random v0 model gives a loadable model whose logits are
 * close to the fp32 ones: relative RMS error under 5% and every logit
 * within 0.1 (the fp32 logits have a standard deviation near 1). */
static void test_quantized_logits_close(void **state) {
    llama2_config c = shape(64, 172, 4, 8, 4, 512, 64, 0, 0, 0);
    write_model(tmp_path("f.bin"), &c, 7);
    for (int gs = 0; gs <= 4; gs += 2) { /* auto (4), 2, 4 */
        quantize(tmp_path("f.bin"), tmp_path("q.bin"), gs);
        llama2_model *m = open_model(tmp_path("q.bin"));
        assert_int_equal(llama2_model_config(m)->weight_type, LLAMA2_WEIGHTS_Q8_0);
        llama2_model_close(m);
        int nf, nq;
        float *lf = logits_of(tmp_path("f.bin"), prompt, PROMPT_LEN, &nf);
        float *lq = logits_of(tmp_path("q.bin"), prompt, PROMPT_LEN, &nq);
        assert_int_equal(nf, nq);
        double sum_d = 0, sum_f = 0, max_d = 0;
        for (int i = 0; i < nf; i++) {
            double d = (double)lq[i] - (double)lf[i];
            sum_d += d * d;
            sum_f += (double)lf[i] * (double)lf[i];
            if (fabs(d) > max_d) max_d = fabs(d);
        }
        double rel = sqrt(sum_d / sum_f), rms = sqrt(sum_f / nf);
        if (getenv("VERBOSE")) printf("group %d: logit rms %.3f, relative rms error %.5f, max error %.5f\n", gs, rms, rel, max_d);
        assert_true(rms > 0.3 && rms < 5.0); /* sane activations */
        assert_true(rel < 0.05);
        assert_true(max_d < 0.1);
        free(lf);
        free(lq);
    }
}

/* Activations stay finite and of moderate size through many layers. */
static void test_deep_model_sane(void **state) {
    llama2_config c = shape(64, 176, 24, 4, 2, 64, 16, 1, 1, 0);
    write_model(tmp_path("deep.bin"), &c, 3);
    int n;
    float *l = logits_of(tmp_path("deep.bin"), prompt, PROMPT_LEN, &n);
    double sum = 0;
    for (int i = 0; i < n; i++) {
        assert_true(isfinite(l[i]));
        sum += (double)l[i] * (double)l[i];
    }
    double rms = sqrt(sum / n);
    assert_true(rms > 0.3 && rms < 5.0);
    free(l);
}

/* ----------------------------------------------------------- failures */

static void test_bad_config_refused(void **state) {
    llama2_config bad[] = {
        shape(0, 172, 2, 8, 4, 512, 64, 1, 0, 0),   shape(64, 172, 2, 7, 7, 512, 64, 1, 0, 0),
        shape(64, 172, 2, 8, 3, 512, 64, 1, 1, 0),  shape(64, 172, 2, 8, 16, 512, 64, 1, 1, 0),
        shape(64, 172, 2, 64, 64, 512, 64, 1, 1, 0), /* head size 1 */
        shape(64, 172, 2, 8, 4, 512, 0, 1, 1, 0),   shape(64, 172, 2, 8, 4, -5, 64, 1, 1, 0),
        shape(64, 172, 2, 8, 4, 512, 64, 1, 3, 0),  shape(64, 172, 2, 8, 4, 512, 64, 1, 2, 8),
        shape(64, 172, 2, 8, 4, 512, 64, 1, 2, -4),
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        llama2_error err = {0};
        assert_int_equal(l2_write_random_model(tmp_path("bad.bin"), &bad[i], 1, L2_OUTPUT_FORCE, &err),
                         LLAMA2_E_INVALID);
        assert_true(strlen(err.message) > 0);
    }
    llama2_error err = {0};
    assert_int_equal(l2_write_random_model(tmp_path("bad.bin"), NULL, 1, L2_OUTPUT_FORCE, &err), LLAMA2_E_INVALID);
    assert_int_equal(count_tmp_files(), 0);
}

static void test_unwritable_path(void **state) {
    model_path("stories260K.bin");
    /* A path below a regular file cannot be created, even by root. */
    FILE *f = fopen(tmp_path("plain"), "wb");
    assert_non_null(f);
    fclose(f);
    char below[4200], missing[4200];
    snprintf(below, sizeof below, "%s/plain/out.bin", tmp_dir);
    snprintf(missing, sizeof missing, "%s/no/such/dir/out.bin", tmp_dir);
    const char *paths[2] = {below, missing};
    llama2_config c = shape_n(0, 1, 0, 0);
    for (int i = 0; i < 2; i++) {
        llama2_error err = {0};
        assert_int_equal(l2_write_random_model(paths[i], &c, 1, L2_OUTPUT_FORCE, &err), LLAMA2_E_IO);
        assert_non_null(strstr(err.message, "cannot create"));
        memset(&err, 0, sizeof err);
        assert_int_equal(l2_quantize_file(model_path("stories260K.bin"), paths[i], 0, L2_OUTPUT_FORCE, &err),
                         LLAMA2_E_IO);
        assert_non_null(strstr(err.message, "cannot create"));
    }
    assert_int_equal(count_tmp_files(), 1); /* only "plain" */
}

/* A write that fails part way (here: the file size limit, as a full disk
 * would) is reported, and neither the output nor a temporary file stays. */
static void test_write_failure_cleans_up(void **state) {
    char model[4096];
    snprintf(model, sizeof model, "%s", model_path("stories260K.bin")); /* skips before the limit is set */
    test_limit_file_size(100000);

    llama2_config c = shape_n(0, 0, 0, 0); /* about 630 KB */
    llama2_error err1 = {0}, err2 = {0};
    llama2_status s1 = l2_write_random_model(tmp_path("big.bin"), &c, 1, L2_OUTPUT_FORCE, &err1);
    llama2_status s2 = l2_quantize_file(model, tmp_path("q.bin"), 0, L2_OUTPUT_FORCE, &err2);

    test_limit_file_size(0);
    assert_int_equal(s1, LLAMA2_E_IO);
    assert_non_null(strstr(err1.message, "write failed"));
    assert_int_equal(s2, LLAMA2_E_IO);
    assert_non_null(strstr(err2.message, "write failed"));
    assert_int_equal(count_tmp_files(), 0);
}

/* A failed export leaves an existing output untouched. */
static void test_failure_keeps_old_output(void **state) {
    model_path("stories260K.bin");
    model_path("stories260K_q80_gs4.bin");
    FILE *f = fopen(tmp_path("q.bin"), "wb");
    assert_non_null(f);
    fputs("old contents", f);
    fclose(f);
    llama2_error err = {0};
    assert_int_equal(l2_quantize_file(model_path("stories260K.bin"), tmp_path("q.bin"), 64, L2_OUTPUT_FORCE, &err),
                     LLAMA2_E_INVALID);
    size_t n = 0;
    char *data = test_read_file(tmp_path("q.bin"), &n);
    assert_non_null(data);
    assert_string_equal(data, "old contents");
    free(data);
    /* A successful one replaces it. */
    quantize(model_path("stories260K.bin"), tmp_path("q.bin"), 0);
    assert_same_file(tmp_path("q.bin"), model_path("stories260K_q80_gs4.bin"));
    assert_int_equal(count_tmp_files(), 1);
}

/* A NaN or an infinity cannot be quantized (export.py's result would be
 * meaningless): refused, nothing written. */
static void test_non_finite_refused(void **state) {
    llama2_config c = shape_n(2, 0, 0, 0);
    const float bad[2] = {NAN, INFINITY};
    for (int i = 0; i < 2; i++) {
        write_model(tmp_path("f.bin"), &c, 5);
        FILE *f = fopen(tmp_path("f.bin"), "r+b");
        assert_non_null(f);
        assert_int_equal(fseek(f, 28 + 4 * (long)(i ? 40 : 3), SEEK_SET), 0);
        assert_int_equal(fwrite(&bad[i], sizeof(float), 1, f), 1);
        fclose(f);
        llama2_error err = {0};
        assert_int_equal(l2_quantize_file(tmp_path("f.bin"), tmp_path("q.bin"), 0, L2_OUTPUT_FORCE, &err),
                         LLAMA2_E_FORMAT);
        assert_int_equal(count_tmp_files(), 1);
    }
}

/* -------------------------------------------------------------- tools */

/* llama2-convert's version 1 file is llama2.c's export byte for byte
 * (tools/models.sh makes the tests' v1 file with it). */
static void test_convert_v1_matches_export_py(void **state) {
    char tool[4096], expected[4096], in[4096], out[4096];
    snprintf(tool, sizeof tool, "%s", test_require_tool("llama2-convert"));
    snprintf(expected, sizeof expected, "%s", reference_path("stories260K_v1.bin"));
    snprintf(in, sizeof in, "%s", model_path("stories260K.bin"));
    snprintf(out, sizeof out, "%s", tmp_path("v1.bin"));
    test_run r;
    const char *args[] = {in, out, "--version", "1", NULL};
    assert_int_equal(test_run_tool(tool, args, &r), 0);
    test_run_free(&r);
    assert_same_file(out, expected);
}

static long long file_size(const char *path) {
    int64_t size = -1;
    l2_path_lookup(path, NULL, &size);
    return size;
}

static void test_quantize_tool(void **state) {
    char tool[4096];
    snprintf(tool, sizeof tool, "%s", test_require_tool("llama2-quantize"));
    model_path("stories260K.bin");
    model_path("stories260K_q80_gs4.bin");
    char in[4096], out[4096];
    snprintf(in, sizeof in, "%s", model_path("stories260K.bin"));
    snprintf(out, sizeof out, "%s", tmp_path("q.bin"));
    test_run r;
    const char *ok[] = {in, out, "--group-size", "4", NULL};
    assert_int_equal(test_run_tool(tool, ok, &r), 0);
    char expected[16384];
    snprintf(expected, sizeof expected,
             "llama2-quantize: %s (%lld bytes) -> %s (%lld bytes), group size 4\n"
             "llama2-quantize: group size 4: as --group-size asked\n"
             "llama2-quantize: warning: group size 4 is below 32: with its scale each weight takes 2.00 bytes (fp32: "
             "4, group size 64: 1.06), and the int8 products may run slower than fp32's (llama2-bench measures both)\n",
             in, file_size(in), out, file_size(out));
    assert_string_equal(r.err, expected);
    test_run_free(&r);
    assert_same_file(out, model_path("stories260K_q80_gs4.bin"));

    /* The automatic size says why; 32 and more, no warning. */
    const char *automatic[] = {in, out, "--force", NULL};
    assert_int_equal(test_run_tool(tool, automatic, &r), 0);
    assert_non_null(strstr(r.err, "llama2-quantize: group size 4: the largest size up to 64 that divides dim 64 and "
                                  "hidden_dim 172\nllama2-quantize: warning: group size 4 is below 32"));
    test_run_free(&r);
    char wide_in[4200], wide_out[4200];
    snprintf(wide_in, sizeof wide_in, "%s", tmp_path("wide.bin"));
    snprintf(wide_out, sizeof wide_out, "%s", tmp_path("wide_q80.bin"));
    llama2_config wide = l2_random_model_config(64, 192, 1, 4, 4, 512, 32, 1, 0, 0);
    llama2_error lerr;
    assert_int_equal(l2_write_random_model(wide_in, &wide, 1, 0, &lerr), LLAMA2_OK);
    const char *wide_args[] = {wide_in, wide_out, NULL};
    assert_int_equal(test_run_tool(tool, wide_args, &r), 0);
    snprintf(expected, sizeof expected,
             "llama2-quantize: group size 64: the largest size up to 64 that divides dim 64 and hidden_dim 192\n");
    assert_non_null(strstr(r.err, expected));
    assert_string_equal(strstr(r.err, expected) + strlen(expected), "");
    test_run_free(&r);
    remove(wide_in);
    remove(wide_out);

    const char *usage[][5] = {
        {in, NULL}, {NULL}, {in, out, "--group-size", NULL}, {in, out, "--group-size", "x", NULL},
        {in, out, "--group-size", "0", NULL}, {in, out, "--group-size", "-4", NULL}, {in, out, "--frobnicate", NULL},
    };
    for (size_t i = 0; i < sizeof usage / sizeof usage[0]; i++) {
        assert_int_equal(test_run_tool(tool, usage[i], &r), 2);
        assert_int_equal(r.out_len, 0);
        assert_non_null(strstr(r.err, "llama2-quantize: "));
        assert_non_null(strchr(r.err, '\n'));
        assert_true(strchr(r.err, '\n') == r.err + r.err_len - 1); /* one line */
        test_run_free(&r);
    }
    /* Numbers in numbers.h's words, as every program says them. */
    const struct {
        const char *args[5];
        const char *line;
    } numbers[] = {
        {{in, out, "--group-size", "99999999999", NULL},
         "llama2-quantize: --group-size: 99999999999 is out of range: must be an integer from 1 to 2147483647 "
         "(try --help)\n"},
        {{in, out, "--group-size", "-4", NULL},
         "llama2-quantize: --group-size: -4 is out of range: must be an integer from 1 to 2147483647 (try --help)\n"},
        {{in, out, "--group-size", "x", NULL},
         "llama2-quantize: --group-size: the group size must be a positive integer, got 'x' (try --help)\n"},
    };
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++) {
        assert_int_equal(test_run_tool(tool, numbers[i].args, &r), 2);
        assert_string_equal(r.err, numbers[i].line);
        test_run_free(&r);
    }
    const char *bad_gs[] = {in, out, "--group-size", "64", NULL};
    assert_int_equal(test_run_tool(tool, bad_gs, &r), 1);
    assert_true(strncmp(r.err, "llama2-quantize: ", 17) == 0);
    assert_non_null(strstr(r.err, in));
    test_run_free(&r);
    char missing[4200];
    snprintf(missing, sizeof missing, "%s/missing.bin", tmp_dir);
    const char *no_input[] = {missing, out, NULL};
    assert_int_equal(test_run_tool(tool, no_input, &r), 1);
    assert_non_null(strstr(r.err, missing));
    test_run_free(&r);
    const char *help[] = {"--help", NULL};
    assert_int_equal(test_run_tool(tool, help, &r), 0);
    assert_non_null(strstr(r.out, "Usage"));
    test_run_free(&r);
}

static void test_genmodel_tool(void **state) {
    char tool[4096];
    snprintf(tool, sizeof tool, "%s", test_require_tool("llama2-genmodel"));
    char out[4096];
    snprintf(out, sizeof out, "%s", tmp_path("g.bin"));
    test_run r;
    const char *ok[] = {out, "--dim", "64", "--hidden", "172", "--layers", "2", "--heads", "8",
                        "--kv-heads", "4", "--vocab", "512", "--seq-len", "64", NULL};
    assert_int_equal(test_run_tool(tool, ok, &r), 0);
    test_run_free(&r);
    llama2_config want = shape(64, 172, 2, 8, 4, 512, 64, 1, 0, 0);
    write_model(tmp_path("lib.bin"), &want, 1); /* the default seed is 1 */
    assert_same_file(out, tmp_path("lib.bin"));

    const char *q8[] = {out, "--dim", "64", "--hidden", "172", "--layers", "2", "--heads", "8", "--vocab",
                        "512", "--seq-len", "64", "--format", "2", "--force", NULL};
    assert_int_equal(test_run_tool(tool, q8, &r), 0);
    test_run_free(&r);
    llama2_model *m = open_model(out);
    assert_int_equal(llama2_model_config(m)->group_size, 4);
    assert_int_equal(llama2_model_config(m)->n_kv_heads, 8);
    llama2_model_close(m);

    const char *preset[] = {out, "--preset", "stories15M", "--layers", "1", "--seq-len", "8", "--unshared",
                            "--format", "1", "--seed", "3", "--force", NULL};
    assert_int_equal(test_run_tool(tool, preset, &r), 0);
    test_run_free(&r);
    m = open_model(out);
    const llama2_config *c = llama2_model_config(m);
    assert_int_equal(c->dim, 288);
    assert_int_equal(c->hidden_dim, 768);
    assert_int_equal(c->n_layers, 1);
    assert_int_equal(c->n_heads, 6);
    assert_int_equal(c->vocab_size, 32000);
    assert_int_equal(c->seq_len, 8);
    assert_int_equal(c->shared_classifier, 0);
    assert_int_equal(c->file_version, 1);
    llama2_model_close(m);

    const char *usage[][6] = {
        {NULL},
        {out, "--dim", "64", NULL},
        {out, "--preset", "stories1T", NULL},
        {out, "--preset", "stories15M", "--format", "5", NULL},
        {out, "--preset", "stories15M", "--heads", "5", NULL},
        {out, "--preset", "stories15M", "--bogus", NULL},
        {out, "--preset", "stories15M", "--seed", NULL},
        {out, "--preset", "stories15M", "--dim", "-3", NULL},
    };
    for (size_t i = 0; i < sizeof usage / sizeof usage[0]; i++) {
        assert_int_equal(test_run_tool(tool, usage[i], &r), 2);
        assert_true(strncmp(r.err, "llama2-genmodel: ", 17) == 0);
        assert_true(strchr(r.err, '\n') == r.err + r.err_len - 1);
        test_run_free(&r);
    }
    const struct {
        const char *args[6];
        const char *line;
    } numbers[] = {
        {{out, "--preset", "stories15M", "--dim", "99999999999", NULL},
         "llama2-genmodel: --dim: 99999999999 is out of range: must be an integer from 1 to 2147483647 "
         "(try --help)\n"},
        {{out, "--preset", "stories15M", "--format", "5", NULL},
         "llama2-genmodel: --format: 5 is out of range: must be an integer from 0 to 2 (try --help)\n"},
        {{out, "--preset", "stories15M", "--format", "x", NULL},
         "llama2-genmodel: --format: the format must be 0, 1 or 2, got 'x' (try --help)\n"},
        {{out, "--preset", "stories15M", "--seed", "-1", NULL},
         "llama2-genmodel: --seed: -1 is out of range: must be an integer from 0 to 18446744073709551615 "
         "(try --help)\n"},
    };
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++) {
        assert_int_equal(test_run_tool(tool, numbers[i].args, &r), 2);
        assert_string_equal(r.err, numbers[i].line);
        test_run_free(&r);
    }
}

/* llama2-bench's numbers in numbers.h's words, and a warning for more
 * threads than processors (then it goes on: here, to write its model). */
static void test_bench_messages(void **state) {
    char tool[4096];
    snprintf(tool, sizeof tool, "%s", test_require_tool("llama2-bench"));
    const struct {
        const char *args[4];
        const char *line;
    } cases[] = {
        {{"--threads", "1,0", NULL}, "llama2-bench: --threads: 0 is out of range: must be an integer from 1 to 256\n"},
        {{"--reps", "many", NULL}, "llama2-bench: --reps: the repetition count must be an integer, got 'many'\n"},
        {{"--tg", "99999999999", NULL},
         "llama2-bench: --tg: 99999999999 is out of range: must be an integer from 1 to 1048576\n"},
    };
    test_run r;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(test_run_tool(tool, cases[i].args, &r), 1);
        assert_string_equal(r.err, cases[i].line);
        assert_int_equal(r.out_len, 0);
        test_run_free(&r);
    }
    const int online = l2_processor_count();
    if (online >= 256) return;
    char threads[16], expected[1024];
    snprintf(threads, sizeof threads, "%d", online + 1);
    const char *warn[] = {"--shapes", "stories15M", "--types", "f32", "--threads", threads, "--models-only",
                          "--models", tmp_path("bench-models"), NULL};
    assert_int_equal(test_run_tool(tool, warn, &r), 0);
    test_threads_warning(expected, sizeof expected, "llama2-bench", online + 1);
    size_t len = strlen(expected);
    snprintf(expected + len, sizeof expected - len,
             "llama2-bench: models in %s (written once, then reused; --models DIR picks another folder)\n"
             "llama2-bench: writing ",
             tmp_path("bench-models"));
    if (strncmp(r.err, expected, strlen(expected)) != 0) fail_msg("stderr '%s', expected '%s...'", r.err, expected);
    test_run_free(&r);
}

/* llama2-bench --parallel: llama-batched-bench's table, one row per
 * sequence count, each row's figures consistent (N_KV = B*(PP+TG), S_TG =
 * B*TG/T_TG); bad values are one-line errors before any model is written. */
static void test_bench_parallel(void **state) {
    char tool[4096];
    snprintf(tool, sizeof tool, "%s", test_require_tool("llama2-bench"));
    const struct {
        const char *args[8];
        const char *line;
    } cases[] = {
        {{"--parallel", "0", NULL}, "llama2-bench: --parallel: 0 is out of range: must be an integer from 1 to 64\n"},
        {{"--parallel", "65", NULL}, "llama2-bench: --parallel: 65 is out of range: must be an integer from 1 to 64\n"},
        {{"--parallel", "8,x", NULL}, "llama2-bench: --parallel: a sequence count must be an integer, got 'x'\n"},
        {{"--parallel", ",", NULL}, "llama2-bench: --parallel: an empty list\n"},
        {{"--parallel", "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17", NULL},
         "llama2-bench: --parallel: too many values (at most 16)\n"},
        {{"--parallel", NULL}, "llama2-bench: --parallel needs a value\n"},
        {{"--parallel", "2", "--shapes", "stories15M", "--pp", "1000", NULL},
         "llama2-bench: a 1000-token prompt and 64 generated tokens exceed stories15M's context of 1024\n"},
        {{"--parallel", "2", "--tokenizer", "t.bin", NULL},
         "llama2-bench: --parallel feeds fixed tokens: it takes no --tokenizer\n"},
    };
    test_run r;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(test_run_tool(tool, cases[i].args, &r), 1);
        assert_string_equal(r.err, cases[i].line);
        assert_int_equal(r.out_len, 0);
        test_run_free(&r);
    }

    const char *run[] = {"--parallel", "1,2", "--shapes", "stories15M", "--types", "f32", "--reps", "1",
                         "--threads", "1", "--pp", "8", "--tg", "4", "--models", tmp_path("bench-models"), NULL};
    assert_int_equal(test_run_tool(tool, run, &r), 0);
    const char *header =
        "|    PP |     TG |    B |   N_KV |   T_PP s | S_PP t/s |   T_TG s | S_TG t/s |      T s |    S t/s |\n"
        "|-------|--------|------|--------|----------|----------|----------|----------|----------|----------|\n";
    const char *table = strstr(r.out, "\nstories15M f32, backend cpu, kernels ");
    if (!table) fail_msg("no table heading in '%s'", r.out);
    table = strstr(table, " 1 thread\n\n");
    assert_non_null(table);
    table += strlen(" 1 thread\n\n");
    assert_memory_equal(table, header, strlen(header));
    const char *line = table + strlen(header);
    for (int b = 1; b <= 2; b++) {
        int pp = 0, tg = 0, batch = 0, n_kv = 0, used = 0;
        double t_pp, s_pp, t_tg, s_tg, t, s;
        assert_int_equal(sscanf(line, "|%d | %d | %d | %d | %lf | %lf | %lf | %lf | %lf | %lf |%n", &pp, &tg, &batch,
                                &n_kv, &t_pp, &s_pp, &t_tg, &s_tg, &t, &s, &used),
                         10);
        assert_int_equal(pp, 8);
        assert_int_equal(tg, 4);
        assert_int_equal(batch, b);
        assert_int_equal(n_kv, b * 12);
        assert_true(t_pp > 0 && t_tg > 0);
        /* the speeds are the tokens over the times, to the printed digits
         * (times to 0.0005 s, speeds to 0.005 t/s) */
        assert_true(fabs(s_tg * t_tg - b * 4) <= s_tg * 0.0005 + t_tg * 0.005 + 1e-6);
        assert_true(fabs(s_pp * t_pp - b * 8) <= s_pp * 0.0005 + t_pp * 0.005 + 1e-6);
        assert_true(fabs(t - (t_pp + t_tg)) <= 0.0015);
        line += used;
        assert_int_equal(*line, '\n');
        line++;
    }
    assert_int_equal(*line, '\0'); /* two rows, nothing after */
    test_run_free(&r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_default_group_size, test_setup),
        cmocka_unit_test_setup(test_quantize_matches_export_py, test_setup),
        cmocka_unit_test_setup(test_equal_classifier_is_shared, test_setup),
        cmocka_unit_test_setup(test_bad_group_size_refused, test_setup),
        cmocka_unit_test_setup(test_v2_input_refused, test_setup),
        cmocka_unit_test_setup(test_random_models_load, test_setup),
        cmocka_unit_test_setup(test_random_seed_matters, test_setup),
        cmocka_unit_test_setup(test_formats_hold_same_weights, test_setup),
        cmocka_unit_test_setup(test_quantized_logits_close, test_setup),
        cmocka_unit_test_setup(test_deep_model_sane, test_setup),
        cmocka_unit_test_setup(test_bad_config_refused, test_setup),
        cmocka_unit_test_setup(test_unwritable_path, test_setup),
        cmocka_unit_test_setup(test_write_failure_cleans_up, test_setup),
        cmocka_unit_test_setup(test_failure_keeps_old_output, test_setup),
        cmocka_unit_test_setup(test_non_finite_refused, test_setup),
        cmocka_unit_test_setup(test_quantize_tool, test_setup),
        cmocka_unit_test_setup(test_bench_messages, test_setup),
        cmocka_unit_test_setup(test_bench_parallel, test_setup),
        cmocka_unit_test_setup(test_genmodel_tool, test_setup),
        cmocka_unit_test_setup(test_convert_v1_matches_export_py, test_setup),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
