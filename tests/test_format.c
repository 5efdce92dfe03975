/*
 * The checkpoint format table, the header and its extension, the general
 * writer's contract with its sources, and rewrites between versions,
 * checked against llama2.c's own files of stories260K (v0, v1 and the
 * export.py int8 file).
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

#include "model/checkpoint_format.h"
#include "model/file_kind.h"
#include "write/checkpoint_writer.h"
#include "llama2.h"
#include "platform/platform.h"
#include "support.h"

/* ------------------------------------------------------------ helpers */

static char tmp_dir[1024];

static const char *tmp_path(const char *name) { return test_path_in(tmp_dir, name); }

/* A file as llama2.c made it (support.h); skips the running test when
 * absent. */
static const char *model_path(const char *name) { return test_require_original(name); }

static int scan_tmp_dir(int remove) { return test_dir_entries(tmp_dir, remove); }

static int group_setup(void **state) { return test_tmp_dir_create(tmp_dir, sizeof tmp_dir, "test-format"); }

static int group_teardown(void **state) {
    test_tmp_dir_remove(tmp_dir);
    return 0;
}

static int test_setup(void **state) { return scan_tmp_dir(1) < 0 ? -1 : 0; }

typedef struct file_bytes {
    unsigned char *data;
    size_t size;
} file_bytes;

static file_bytes read_bytes(const char *path) {
    file_bytes f = {0};
    f.data = (unsigned char *)test_read_file(path, &f.size);
    if (!f.data) fail_msg("cannot read %s", path);
    return f;
}

static void rewrite(const char *in, const char *out, int version, int group_size) {
    llama2_error err = {0};
    if (l2_checkpoint_rewrite(in, out, version, group_size, L2_OUTPUT_FORCE, &err) != LLAMA2_OK)
        fail_msg("rewrite %s to version %d: %s", in, version, err.message);
}

static llama2_config open_config(const char *path) {
    llama2_model *m = NULL;
    llama2_error err = {0};
    if (llama2_model_open(path, NULL, &m, &err) != LLAMA2_OK) fail_msg("open %s: %s", path, err.message);
    llama2_config c = *llama2_model_config(m);
    llama2_model_close(m);
    return c;
}

/* stories260K's shape in a given version. */
static llama2_config stories260k(int version) {
    return l2_random_model_config(64, 172, 5, 8, 4, 512, 512, 1, version, version == 2 ? 4 : 0);
}

/* -------------------------------------------------------------- table */

static void test_order_per_version(void **state) {
    const char *v0[] = {"token_embedding_table", "rms_att_weight", "wq", "wk", "wv", "wo", "rms_ffn_weight",
                        "w1", "w2", "w3", "rms_final_weight", "freq_cis_real", "freq_cis_imag", "wcls"};
    const char *v1[] = {"rms_att_weight", "rms_ffn_weight", "rms_final_weight", "token_embedding_table", "wq",
                        "wk", "wv", "wo", "w1", "w2", "w3", "wcls"};
    for (int version = 0; version <= 2; version++) {
        int n;
        const l2_tensor_kind *order = l2_tensor_order(version, &n);
        const char **want = version == 0 ? v0 : v1;
        assert_int_equal(n, version == 0 ? 14 : 12);
        for (int i = 0; i < n; i++) assert_string_equal(l2_tensor_table[order[i]].name, want[i]);
    }
}

static void test_shapes(void **state) {
    const llama2_config c = stories260k(1);
    const struct { l2_tensor_kind kind; size_t rows, cols; } want[] = {
        {L2_TENSOR_TOKEN_EMBEDDING, 512, 64}, {L2_TENSOR_ATTENTION_NORM, 1, 64},  {L2_TENSOR_ATTENTION_QUERY, 64, 64},
        {L2_TENSOR_ATTENTION_KEY, 32, 64},    {L2_TENSOR_ATTENTION_VALUE, 32, 64}, {L2_TENSOR_ATTENTION_OUTPUT, 64, 64},
        {L2_TENSOR_FFN_NORM, 1, 64},          {L2_TENSOR_FFN_GATE, 172, 64},       {L2_TENSOR_FFN_DOWN, 64, 172},
        {L2_TENSOR_FFN_UP, 172, 64},          {L2_TENSOR_FINAL_NORM, 1, 64},       {L2_TENSOR_CLASSIFIER, 512, 64},
        {L2_TENSOR_ROPE_COS, 512, 4},         {L2_TENSOR_ROPE_SIN, 512, 4},
    };
    assert_int_equal(sizeof want / sizeof want[0], L2_TENSOR_KINDS);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        size_t rows, cols;
        l2_tensor_shape(&c, want[i].kind, &rows, &cols);
        assert_int_equal(rows, want[i].rows);
        assert_int_equal(cols, want[i].cols);
    }
}

/* The sizes the table implies are those of llama2.c's files. */
static void test_sizes_match_llama2c_files(void **state) {
    const char *files[3] = {"stories260K.bin", "stories260K_v1.bin", "stories260K_q80_gs4.bin"};
    for (int i = 0; i < 3; i++) model_path(files[i]); /* skips before anything is allocated */
    for (int version = 0; version <= 2; version++) {
        llama2_config c = stories260k(version);
        size_t total = 0, walked = version == 0 ? L2_V0_HEADER_BYTES : L2_V1_HEADER_BYTES;
        assert_true(l2_checkpoint_bytes(&c, 1, &total));
        file_bytes f = read_bytes(model_path(files[version]));
        assert_int_equal(total, f.size);
        free(f.data);
        /* The walk covers the same bytes: 12 tensors per layer and 2 more
         * (the embedding, the final norm), plus the RoPE tables in v0. */
        l2_tensor_walk walk = l2_tensor_walk_start(&c, 1);
        l2_file_tensor t;
        int n = 0;
        while (l2_tensor_walk_next(&walk, &t)) {
            walked += t.bytes;
            n++;
            assert_int_equal(t.type, version == 2 && l2_tensor_table[t.kind].matrix ? LLAMA2_WEIGHTS_Q8_0
                                                                                     : LLAMA2_WEIGHTS_F32);
        }
        assert_int_equal(n, 9 * 5 + 2 + (version == 0 ? 2 : 0));
        assert_int_equal(walked, total);
    }
    /* Without the RoPE tables (allowed for a shared classifier in v0). */
    llama2_config c = stories260k(0);
    size_t without = 0;
    assert_true(l2_checkpoint_bytes(&c, 0, &without));
    assert_int_equal(without, 1056540 - 2 * 512 * 4 * sizeof(float));
    /* A separate classifier adds a table; an absurd shape overflows. */
    c.shared_classifier = 0;
    size_t separate = 0;
    assert_true(l2_checkpoint_bytes(&c, 1, &separate));
    assert_int_equal(separate, 1056540 + 512 * 64 * sizeof(float));
    c.n_layers = c.dim = c.hidden_dim = c.vocab_size = 1 << 30;
    assert_false(l2_checkpoint_bytes(&c, 1, &separate));
}

/* ------------------------------------------------------------- header */

/* Decoding and encoding again gives llama2.c's headers back. */
static void test_header_round_trip(void **state) {
    const char *files[3] = {"stories260K.bin", "stories260K_v1.bin", "stories260K_q80_gs4.bin"};
    for (int i = 0; i < 3; i++) model_path(files[i]);
    for (int i = 0; i < 3; i++) {
        file_bytes f = read_bytes(model_path(files[i]));
        llama2_config c;
        size_t header_bytes = 0;
        llama2_error err = {0};
        assert_int_equal(l2_header_decode(f.data, f.size, &c, &header_bytes, &err), LLAMA2_OK);
        assert_int_equal(c.file_version, i);
        assert_true(c.rope_theta == 10000.0f);
        assert_true(c.norm_eps == 1e-5f);
        assert_int_equal(c.group_size, i == 2 ? 4 : 0);
        unsigned char again[L2_V1_HEADER_BYTES];
        assert_int_equal(l2_header_encode(&c, again), header_bytes);
        assert_memory_equal(again, f.data, header_bytes);
        free(f.data);
    }
}

/* A model with other values of rope theta and epsilon, written in versions
 * 1 and 2, reads back with them; its header holds them at bytes 64 and 68
 * and zeros elsewhere in the padding. */
static void test_extension_round_trip(void **state) {
    const float theta = 500000.0f, eps = 1e-6f;
    for (int version = 1; version <= 2; version++) {
        llama2_config c = l2_random_model_config(32, 96, 2, 4, 2, 64, 16, 1, version, 0);
        c.rope_theta = theta;
        c.norm_eps = eps;
        llama2_error err = {0};
        assert_int_equal(l2_write_random_model(tmp_path("ext.bin"), &c, 5, L2_OUTPUT_FORCE, &err), LLAMA2_OK);
        llama2_config got = open_config(tmp_path("ext.bin"));
        assert_true(got.rope_theta == theta);
        assert_true(got.norm_eps == eps);
        file_bytes f = read_bytes(tmp_path("ext.bin"));
        float at64, at68;
        memcpy(&at64, f.data + 64, 4);
        memcpy(&at68, f.data + 68, 4);
        assert_true(at64 == theta);
        assert_true(at68 == eps);
        for (size_t i = version == 2 ? 41 : 37; i < 256; i++)
            if (i < 64 || i >= 72) assert_int_equal(f.data[i], 0);
        free(f.data);

        if (version == 2) continue;
        /* Rewritten, the values stay: the same file as version 1, version 2
         * with them. */
        rewrite(tmp_path("ext.bin"), tmp_path("ext1.bin"), 1, 0);
        assert_true(test_same_file(tmp_path("ext1.bin"), tmp_path("ext.bin")));
        rewrite(tmp_path("ext.bin"), tmp_path("ext2.bin"), 2, 0);
        got = open_config(tmp_path("ext2.bin"));
        assert_true(got.rope_theta == theta && got.norm_eps == eps);
        assert_int_equal(got.file_version, 2);

        /* Version 0 cannot hold them: refused, saying why, nothing written. */
        memset(&err, 0, sizeof err);
        assert_int_equal(l2_checkpoint_rewrite(tmp_path("ext.bin"), tmp_path("v0.bin"), 0, 0, L2_OUTPUT_FORCE, &err),
                         LLAMA2_E_INVALID);
        assert_string_equal(err.message, "rope theta 500000: version 0 cannot record it (llama2.c assumes 10000); "
                                         "write version 1 or 2");
        assert_int_equal(l2_path_lookup(tmp_path("v0.bin"), NULL, NULL), L2_PATH_NONE);
    }
    scan_tmp_dir(1);
    /* Only epsilon differs: the message names it. */
    llama2_config c = l2_random_model_config(32, 96, 2, 4, 2, 64, 16, 1, 0, 0);
    c.norm_eps = 1e-6f;
    llama2_error err = {0};
    assert_int_equal(l2_write_random_model(tmp_path("v0.bin"), &c, 5, L2_OUTPUT_FORCE, &err), LLAMA2_E_INVALID);
    assert_string_equal(err.message,
                        "RMSNorm epsilon 1e-06: version 0 cannot record it (llama2.c assumes 1e-05); write version 1 or 2");
    assert_int_equal(scan_tmp_dir(0), 0);
}

/* llama2.c's values, given as such or as 0, are written as zeros: the same
 * file as llama2.c's export. Bad values are refused. */
static void test_extension_defaults_are_zeros(void **state) {
    model_path("stories260K_v1.bin");
    const float thetas[2] = {0.0f, 10000.0f}, epss[2] = {0.0f, 1e-5f};
    for (int i = 0; i < 2; i++) {
        llama2_config c = stories260k(1);
        c.rope_theta = thetas[i];
        c.norm_eps = epss[i];
        unsigned char h[L2_V1_HEADER_BYTES];
        assert_int_equal(l2_header_encode(&c, h), 256);
        file_bytes f = read_bytes(model_path("stories260K_v1.bin"));
        assert_memory_equal(h, f.data, 256);
        free(f.data);
    }
    const float bad[] = {NAN, INFINITY, -INFINITY, -1.0f, -1e-30f};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        for (int field = 0; field < 2; field++) {
            llama2_config c = l2_random_model_config(32, 96, 1, 4, 2, 64, 16, 1, 1, 0);
            if (field == 0) c.rope_theta = bad[i];
            else c.norm_eps = bad[i];
            llama2_error err = {0};
            assert_int_equal(l2_write_random_model(tmp_path("bad.bin"), &c, 5, L2_OUTPUT_FORCE, &err),
                             LLAMA2_E_INVALID);
            assert_non_null(strstr(err.message, "must be a positive finite number"));
            assert_non_null(strstr(err.message, field == 0 ? "rope theta" : "RMSNorm epsilon"));
        }
    }
    assert_int_equal(scan_tmp_dir(0), 0);
}

/* ------------------------------------------------------------ rewrite */

/* llama2.c's file for a name starting with "stories", else a temporary
 * file's. */
static const char *path_of(const char *name) {
    return strncmp(name, "stories", 7) == 0 ? model_path(name) : tmp_path(name);
}

/* stories260K: v0 -> v1 is llama2.c's own v1 file; v0 -> v0 and v1 -> v1
 * are copies; v0 and v1 -> v2 give export.py's file. v1 -> v0 (below) is
 * llama2.c's v0 file but for the unused RoPE tables, and from there v1
 * comes back byte for byte. */
static void test_rewrites_exact(void **state) {
    model_path("stories260K.bin");
    model_path("stories260K_v1.bin");
    model_path("stories260K_q80_gs4.bin");
    const struct { const char *in; int version, group_size; const char *out, *same_as; } rewrites[] = {
        {"stories260K.bin", 1, 0, "v1.bin", "stories260K_v1.bin"},
        {"stories260K.bin", 0, 0, "v0.bin", "stories260K.bin"},
        {"stories260K_v1.bin", 1, 0, "v1v1.bin", "stories260K_v1.bin"},
        {"stories260K.bin", 2, 0, "q0.bin", "stories260K_q80_gs4.bin"},
        {"stories260K_v1.bin", 2, 4, "q1.bin", "stories260K_q80_gs4.bin"},
        {"stories260K_v1.bin", 0, 0, "v1v0.bin", NULL},
        {"v1v0.bin", 1, 0, "v1v0v1.bin", "stories260K_v1.bin"},
        {"v1v0.bin", 0, 0, "v1v0v0.bin", "v1v0.bin"},
        {"v1v0.bin", 2, 0, "v1v0v2.bin", "stories260K_q80_gs4.bin"},
    };
    for (size_t i = 0; i < sizeof rewrites / sizeof rewrites[0]; i++) {
        char out[4096];
        snprintf(out, sizeof out, "%s", tmp_path(rewrites[i].out));
        rewrite(path_of(rewrites[i].in), out, rewrites[i].version, rewrites[i].group_size);
        if (rewrites[i].same_as && !test_same_file(out, path_of(rewrites[i].same_as)))
            fail_msg("%s -> version %d differs from %s", rewrites[i].in, rewrites[i].version, rewrites[i].same_as);
    }
}

/* The float at index i of a tensor region, as bits. */
static int32_t bits_at(const unsigned char *p, size_t i) {
    int32_t v;
    memcpy(&v, p + 4 * i, 4);
    return v;
}

/* v1 -> v0 computes the RoPE tables llama2.c's export took from PyTorch:
 * the same file but for them, and they within one unit in the last place. */
static void test_rewrite_computes_rope_tables(void **state) {
    model_path("stories260K.bin");
    model_path("stories260K_v1.bin");
    rewrite(model_path("stories260K_v1.bin"), tmp_path("v0.bin"), 0, 0);
    file_bytes got = read_bytes(tmp_path("v0.bin")), want = read_bytes(model_path("stories260K.bin"));
    assert_int_equal(got.size, want.size);
    /* With a shared classifier the tables (512 x 4, twice) end the file. */
    const size_t tables = 2 * 512 * 4 * sizeof(float), tables_at = want.size - tables;
    assert_memory_equal(got.data, want.data, tables_at);
    size_t differ = 0;
    for (size_t i = 0; i < tables / 4; i++) {
        int32_t a = bits_at(got.data + tables_at, i), b = bits_at(want.data + tables_at, i);
        assert_true(a - b >= -1 && a - b <= 1);
        differ += a != b;
    }
    assert_true(differ < tables / 4 / 5); /* most are the same bits */
    free(got.data);
    free(want.data);
}

/* llama2-quantize writes what the rewrite to version 2 writes. */
static void test_quantize_tool_is_rewrite(void **state) {
    char tool[4096], in[4096], out[4096];
    snprintf(tool, sizeof tool, "%s", test_require_tool("llama2-quantize"));
    snprintf(in, sizeof in, "%s", model_path("stories260K.bin"));
    snprintf(out, sizeof out, "%s", tmp_path("tool.bin"));
    char *argv[] = {tool, in, out, NULL};
    test_run r;
    assert_int_equal(test_run_program(argv, NULL, NULL, 0, &r), 0);
    test_run_free(&r);
    rewrite(in, tmp_path("lib.bin"), 2, 0);
    assert_true(test_same_file(out, tmp_path("lib.bin")));
}

static void test_rewrite_refusals(void **state) {
    const struct { const char *in; int version, group_size; llama2_status status; const char *message; } bad[] = {
        {"stories260K_q80_gs4.bin", 2, 0, LLAMA2_E_INVALID, "already int8 (a version 2 file with group size 4)"},
        {"stories260K_q80_gs4.bin", 1, 0, LLAMA2_E_UNSUPPORTED,
         "an int8 (version 2) file cannot be rewritten as fp32: its weights were rounded; rewrite the fp32 file it "
         "came from"},
        {"stories260K.bin", 3, 0, LLAMA2_E_INVALID, "version 3, must be 0, 1 or 2"},
        {"stories260K.bin", -1, 0, LLAMA2_E_INVALID, "version -1, must be 0, 1 or 2"},
        {"stories260K.bin", 1, 4, LLAMA2_E_INVALID, "group size 4 given for version 1: only version 2 has groups"},
        {"stories260K.bin", 2, 64, LLAMA2_E_INVALID, "group size 64 does not divide dim 64 and hidden_dim 172"},
        {"tok512.bin", 1, 0, LLAMA2_E_FORMAT,
         "a llama2.c tokenizer (tokenizer.bin), not a model: give the model's checkpoint, and this file as the "
         "tokenizer (-z)"},
    };
    /* Any such files will do: the models folder's. */
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) test_require_model(bad[i].in);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        llama2_error err = {0};
        assert_int_equal(l2_checkpoint_rewrite(test_require_model(bad[i].in), tmp_path("out.bin"), bad[i].version,
                                               bad[i].group_size, L2_OUTPUT_FORCE, &err),
                         bad[i].status);
        assert_string_equal(err.message, bad[i].message);
    }
    assert_int_equal(scan_tmp_dir(0), 0);
}

/* ------------------------------------------------------ the sources */

/* A source that checks the writer keeps its side of the contract: the
 * tensors the file holds in file order, each one's rows in order from 0,
 * whole rows, a bounded number at a time. Fails on request at the
 * `fail_at`-th call, or hands a NaN in tensors of kind `nan_kind`. */
typedef struct checking_source {
    const llama2_config *config;
    int fail_at;
    l2_tensor_kind nan_kind;
    struct { l2_tensor_kind kind; int layer; } expected[64];
    int n_expected;
    int calls, tensors; /* calls so far, tensors begun */
    size_t next_row;    /* of the current tensor; rows when it is done */
    int bad;            /* a broken promise */
} checking_source;

/* What a file of config c holds, in order, as the format says: kinds in
 * the version's order, the classifier when not shared, the RoPE tables in
 * version 0 when the source has them (the writer computes them otherwise). */
static checking_source checking(const llama2_config *c, int has_rope, int fail_at, l2_tensor_kind nan_kind) {
    checking_source s = {c, fail_at, nan_kind, {{0, 0}}, 0, 0, 0, 0, 0};
    int n_kinds;
    const l2_tensor_kind *order = l2_tensor_order(c->file_version, &n_kinds);
    for (int i = 0; i < n_kinds; i++) {
        const l2_tensor_kind k = order[i];
        if (k == L2_TENSOR_CLASSIFIER && c->shared_classifier) continue;
        if ((k == L2_TENSOR_ROPE_COS || k == L2_TENSOR_ROPE_SIN) && !(c->file_version == 0 && has_rope)) continue;
        for (int l = 0; l < (l2_tensor_table[k].per_layer ? c->n_layers : 1); l++) {
            s.expected[s.n_expected].kind = k;
            s.expected[s.n_expected++].layer = l;
        }
    }
    return s;
}

static llama2_status read_checked(void *user, l2_tensor_kind kind, int layer, size_t row, size_t n_rows, float *out,
                                  llama2_error *err) {
    checking_source *s = user;
    if (++s->calls == s->fail_at) {
        err->status = LLAMA2_E_IO;
        snprintf(err->message, sizeof err->message, "the test source fails here");
        return LLAMA2_E_IO;
    }
    size_t rows, cols;
    l2_tensor_shape(s->config, kind, &rows, &cols);
    if (row == 0) {
        /* The previous tensor must be done, and this one the next. */
        if (s->tensors > 0 && s->next_row != (size_t)-1) s->bad = 1;
        if (s->tensors >= s->n_expected || s->expected[s->tensors].kind != kind ||
            s->expected[s->tensors].layer != layer)
            s->bad = 1;
        s->tensors++;
    } else if (s->tensors == 0 || s->expected[s->tensors - 1].kind != kind ||
               s->expected[s->tensors - 1].layer != layer || row != s->next_row) {
        s->bad = 1;
    }
    if (n_rows == 0 || row + n_rows > rows || n_rows * cols > ((size_t)1 << 18)) s->bad = 1; /* 1 MiB */
    s->next_row = row + n_rows == rows ? (size_t)-1 : row + n_rows;
    for (size_t i = 0; i < n_rows * cols; i++) out[i] = (float)((row * cols + i) % 7) * 0.25f - 0.5f;
    if (kind == s->nan_kind) out[0] = NAN;
    return LLAMA2_OK;
}

static void test_source_contract(void **state) {
    for (int version = 0; version <= 2; version++)
        for (int shared = 0; shared <= 1; shared++)
            for (int rope = 0; rope <= 1; rope++) {
                /* hidden 5000: w1 and w3 come in several calls. */
                llama2_config c = l2_random_model_config(64, 5000, 3, 4, 2, 40, 24, shared, version, 8);
                checking_source s = checking(&c, rope, -1, L2_TENSOR_KINDS);
                l2_tensor_source source = {&s, read_checked, rope, NULL};
                llama2_error err = {0};
                assert_int_equal(l2_checkpoint_write(tmp_path("c.bin"), &c, &source, L2_OUTPUT_FORCE, &err), LLAMA2_OK);
                assert_int_equal(s.bad, 0);
                assert_int_equal(s.tensors, s.n_expected);
                assert_true(s.next_row == (size_t)-1);
                assert_true(s.calls > s.tensors);
                llama2_config got = open_config(tmp_path("c.bin"));
                assert_int_equal(got.shared_classifier, shared);
                assert_int_equal(got.file_version, version);
            }
}

/* The source's failure is the writer's, with its message; no file stays. */
static void test_source_failure(void **state) {
    llama2_config c = l2_random_model_config(64, 5000, 3, 4, 2, 40, 24, 1, 2, 8);
    for (int at = 1; at < 12; at += 5) {
        checking_source s = checking(&c, 0, at, L2_TENSOR_KINDS);
        l2_tensor_source source = {&s, read_checked, 0, NULL};
        llama2_error err = {0};
        assert_int_equal(l2_checkpoint_write(tmp_path("c.bin"), &c, &source, L2_OUTPUT_FORCE, &err), LLAMA2_E_IO);
        assert_string_equal(err.message, "the test source fails here");
        assert_int_equal(s.calls, at);
        assert_int_equal(scan_tmp_dir(0), 0);
    }
    /* A NaN cannot be quantized; in fp32 it is kept. */
    checking_source s = checking(&c, 0, -1, L2_TENSOR_FFN_DOWN);
    l2_tensor_source source = {&s, read_checked, 0, NULL};
    llama2_error err = {0};
    assert_int_equal(l2_checkpoint_write(tmp_path("c.bin"), &c, &source, L2_OUTPUT_FORCE, &err), LLAMA2_E_FORMAT);
    assert_string_equal(err.message, "a weight is not a finite number: it cannot be quantized (w2, layer 0)");
    assert_int_equal(scan_tmp_dir(0), 0);
    c = l2_random_model_config(64, 5000, 3, 4, 2, 40, 24, 1, 1, 0);
    checking_source s1 = checking(&c, 0, -1, L2_TENSOR_FFN_DOWN);
    source.user = &s1;
    assert_int_equal(l2_checkpoint_write(tmp_path("c.bin"), &c, &source, L2_OUTPUT_FORCE, &err), LLAMA2_OK);
    assert_int_equal(l2_checkpoint_write(NULL, &c, &source, L2_OUTPUT_FORCE, &err), LLAMA2_E_INVALID);
    assert_int_equal(l2_checkpoint_write(tmp_path("d.bin"), &c, NULL, L2_OUTPUT_FORCE, &err), LLAMA2_E_INVALID);
    assert_int_equal(scan_tmp_dir(0), 1);
}

/* Each kind of file from its first bytes; a checkpoint's header of each
 * version, and starts that are none of the kinds. */
static void test_file_kinds(void **state) {
    static const struct { const char *bytes; size_t size; l2_file_kind kind; } cases[] = {
        {"GGUF\3\0\0\0", 8, L2_FILE_GGUF},
        {"PK\3\4\24\0\0\0", 8, L2_FILE_ZIP},
        {"\x10\0\0\0\0\0\0\0{\"a\":\"b\"}", 17, L2_FILE_SAFETENSORS},
        {"  \n{\"architectures\": []}", 25, L2_FILE_JSON},
        {"[1,2]", 5, L2_FILE_JSON},
        {"{\0\0\0\0\0\0\0", 8, L2_FILE_UNKNOWN}, /* a dim of 123, not an object */
        {"\x0a\x0e\x0a\x05<unk>\x15\0\0\0\0\x18\x02", 16, L2_FILE_SENTENCEPIECE},
        /* max_token_length 7; "<unk>" score 0; "a" score -1 */
        {"\7\0\0\0\0\0\0\0\5\0\0\0<unk>\0\0\x80\xbf\1\0\0\0a", 26, L2_FILE_TOKENIZER_BIN},
        /* a score that is not a plausible one (a subnormal float) */
        {"\7\0\0\0\xac\0\0\0\5\0\0\0<unk>", 17, L2_FILE_UNKNOWN},
        /* a NUL inside a token */
        {"\7\0\0\0\0\0\0\0\2\0\0\0a\0", 14, L2_FILE_UNKNOWN},
        {"24ka\7\0\0\0", 8, L2_FILE_CHECKPOINT_VERSION},
        {"", 0, L2_FILE_UNKNOWN},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        l2_file_kind got = l2_file_kind_of((const unsigned char *)cases[i].bytes, cases[i].size);
        if (got != cases[i].kind) fail_msg("case %zu: kind %d, expected %d", i, (int)got, (int)cases[i].kind);
    }
    llama2_config c = l2_random_model_config(64, 172, 2, 8, 4, 512, 64, 1, 0, 0);
    unsigned char header[L2_V1_HEADER_BYTES];
    const l2_file_kind expected[3] = {L2_FILE_CHECKPOINT_V0, L2_FILE_CHECKPOINT_V1, L2_FILE_CHECKPOINT_V2};
    for (int version = 0; version <= 2; version++) {
        c.file_version = version;
        c.group_size = version == 2 ? 4 : 0;
        size_t n = l2_header_encode(&c, header);
        assert_int_equal(l2_file_kind_of(header, n), expected[version]);
    }
    assert_string_equal(l2_file_kind_name(L2_FILE_GGUF), "a GGUF file");
    assert_string_equal(l2_file_kind_name(L2_FILE_UNKNOWN), "a file of unknown kind");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_order_per_version, test_setup),
        cmocka_unit_test_setup(test_shapes, test_setup),
        cmocka_unit_test_setup(test_sizes_match_llama2c_files, test_setup),
        cmocka_unit_test_setup(test_header_round_trip, test_setup),
        cmocka_unit_test_setup(test_extension_round_trip, test_setup),
        cmocka_unit_test_setup(test_extension_defaults_are_zeros, test_setup),
        cmocka_unit_test_setup(test_rewrites_exact, test_setup),
        cmocka_unit_test_setup(test_rewrite_computes_rope_tables, test_setup),
        cmocka_unit_test_setup(test_quantize_tool_is_rewrite, test_setup),
        cmocka_unit_test_setup(test_rewrite_refusals, test_setup),
        cmocka_unit_test_setup(test_source_contract, test_setup),
        cmocka_unit_test_setup(test_source_failure, test_setup),
        cmocka_unit_test_setup(test_file_kinds, test_setup),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
