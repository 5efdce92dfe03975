/*
 * Conversion between Hugging Face and llama2.c (src/convert/, llama2-convert):
 * the 16-bit float conversions against a brute-force reference; the q/k row
 * order; the safetensors, config.json and SentencePiece readers on good and
 * bad input, with their exact messages; Hugging Face fixtures written here
 * (F32/F16/BF16, one file or shards, shared or separate classifier,
 * grouped-query heads) converted and run, against an independent numpy
 * forward pass with Hugging Face's conventions (tests/hf_reference.py);
 * a Llama-3.2-shaped fixture and its GGUF form (the same logits to the
 * bit, the same greedy text; llama.cpp's greedy tokens where
 * tests/llama_cpp/setup.sh can have it, skipped by name otherwise);
 * round trips llama2.c -> Hugging Face -> llama2.c; the tokenizer bytes;
 * the program's usage and bad-input behaviour.
 *
 * The numpy and SentencePiece checks need /usr/bin/python3 with
 * python3-numpy and python3-sentencepiece, and skip (by name) without.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "write/checkpoint_writer.h"
#include "convert.h"
#include "model/float16.h"
#include "platform/bits.h"
#include "hf_config.h"
#include "hf_names.h"
#include "llama2.h"
#include "qk_order.h"
#include "text/bpe.h"
#include "safetensors.h"
#include "safetensors_writer.h"
#include "sentencepiece.h"
#include "support.h"

#define PYTHON "/usr/bin/python3"

/* ------------------------------------------------------------ helpers */

static char tmp_dir[1024];

static const char *tmp_path(const char *name) { return test_path_in(tmp_dir, name); }

/* Empties the temporary folder, with the folders the tests make in it. */
static int clear_tmp_dir(void) { return test_dir_entries(tmp_dir, 1); }

static int count_files(const char *dir) { return test_dir_entries(dir, 0); }

static int group_setup(void **state) { return test_tmp_dir_create(tmp_dir, sizeof tmp_dir, "test-convert"); }

static int group_teardown(void **state) {
    test_tmp_dir_remove(tmp_dir);
    return 0;
}

static int test_setup(void **state) { return clear_tmp_dir() < 0 ? -1 : 0; }

static int have_file(const char *path) { return access(path, R_OK) == 0; }

static void assert_same_file(const char *a, const char *b) {
    if (!test_same_file(a, b)) fail_msg("%s and %s differ", a, b);
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
}

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (n) assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static void assert_status_message(llama2_status got, llama2_status want, const llama2_error *err,
                                  const char *message) {
    if (got != want || strcmp(err->message, message) != 0)
        fail_msg("status %d, message\n  '%s'\nwanted status %d,\n  '%s'", got, err->message, want, message);
}

/* 0 when /usr/bin/python3 imports every module named (comma-separated). */
static int python_has(const char *modules) {
    char code[256];
    snprintf(code, sizeof code, "import %s", modules);
    char *argv[] = {PYTHON, "-c", code, NULL};
    test_run r;
    if (access(PYTHON, X_OK) != 0) return 0;
    int status = test_run_program(argv, NULL, NULL, 0, &r);
    test_run_free(&r);
    return status == 0;
}

static llama2_model *open_model(const char *path) {
    llama2_model *m = NULL;
    llama2_error err = {0};
    if (llama2_model_open(path, NULL, &m, &err) != LLAMA2_OK) fail_msg("llama2_model_open(%s): %s", path, err.message);
    return m;
}

/* --------------------------------------------------------- float16 */

/* The F16 value of bits h by its definition, in double. */
static double f16_value(uint16_t h) {
    int e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : ldexp(1024 + m, e - 25);
    if (e == 31) v = m ? NAN : INFINITY;
    return h & 0x8000 ? -v : v;
}

/* Nearest, ties to the even pattern, among the finite F16 values and the
 * infinity past 65504 + half an ulp: by search, not by bit tricks. */
static uint16_t f16_nearest(float f) {
    const double x = fabs((double)f);
    uint16_t best = 0;
    for (uint16_t h = 1; h < 0x7c00; h++) {
        double db = fabs(f16_value(best) - x), dh = fabs(f16_value(h) - x);
        if (dh < db || (dh == db && (h & 1) == 0)) best = h;
    }
    if (x >= 65520.0) best = 0x7c00;
    return (uint16_t)(best | (signbit(f) ? 0x8000 : 0));
}

static void test_f16_both_ways(void **state) {
    /* Every F16 value survives F16 -> F32 -> F16 (NaNs stay NaNs), and the
     * F32 value is the defined one. */
    for (uint32_t h = 0; h < 65536; h++) {
        float f = l2_f16_to_f32((uint16_t)h);
        double want = f16_value((uint16_t)h);
        if (isnan(want)) {
            assert_true(isnan(f));
            assert_true((l2_f32_to_f16(f) & 0x7c00) == 0x7c00 && (l2_f32_to_f16(f) & 0x3ff));
            continue;
        }
        if ((double)f != want || !!signbit(f) != ((h & 0x8000) != 0)) fail_msg("F16 %04x gives %a, not %a", h, (double)f, want);
        assert_int_equal(l2_f32_to_f16(f), h);
    }
    /* Rounding: random floats of every magnitude F16 reaches, and the ties
     * and edges, against the search. */
    uint64_t rng = 0x1234567;
    float edge[] = {65504.0f, 65519.99f, 65520.0f, 1e9f, 0x1p-24f, 0x1p-25f, 0x1.8p-25f, 0x1p-26f, 0x1.002p0f,
                    0x1.003p0f, 0x1.001p0f, 0x1.ffep-15f, 0x1.ffcp-15f, 6.1e-5f, 0.0f, -0.0f, -2.5e-8f};
    for (int i = 0; i < 1000; i++) {
        float f = i < (int)(sizeof edge / sizeof edge[0])
                      ? edge[i]
                      : l2_bits_float((l2_float_bits(1.0f) & 0x807fffffu) ^ (test_rng_next(&rng) & 0x807fffffu)) *
                            ldexpf(1.0f, (int)(test_rng_next(&rng) % 44) - 28);
        uint16_t got = l2_f32_to_f16(f), want = f16_nearest(f);
        if (got != want) fail_msg("F32 %a: F16 %04x, nearest is %04x", (double)f, got, want);
    }
    assert_true(isnan(l2_f16_to_f32(l2_f32_to_f16(NAN))));
    assert_int_equal(l2_f32_to_f16(INFINITY), 0x7c00);
    assert_int_equal(l2_f32_to_f16(-INFINITY), 0xfc00);
}

static void test_bf16_both_ways(void **state) {
    for (uint32_t b = 0; b < 65536; b++) {
        float f = l2_bf16_to_f32((uint16_t)b);
        assert_int_equal(l2_float_bits(f), b << 16);
        if (!isnan(f)) assert_int_equal(l2_f32_to_bf16(f), b);
        else assert_true(isnan(l2_bf16_to_f32(l2_f32_to_bf16(f))));
    }
    /* Rounding against the two candidates around each float, in double. */
    uint64_t rng = 99;
    for (int i = 0; i < 200000; i++) {
        uint32_t u = test_rng_next(&rng);
        float f = l2_bits_float(u);
        if (isinf(f)) continue;
        if (isnan(f)) {
            assert_true(isnan(l2_bf16_to_f32(l2_f32_to_bf16(f))));
            continue;
        }
        uint16_t down = (uint16_t)(u >> 16), up = (uint16_t)(down + 1);
        double x = fabs((double)f), dd = x - fabs((double)l2_bf16_to_f32(down));
        double du = (down & 0x7fff) == 0x7f7f ? INFINITY : fabs((double)l2_bf16_to_f32(up)) - x;
        uint16_t want = dd < du || (dd == du && (down & 1) == 0) ? down : up;
        if ((down & 0x7fff) == 0x7f7f && dd >= ldexp(1.0, 127 - 8)) want = up; /* past max + half an ulp: inf */
        if (l2_f32_to_bf16(f) != want) fail_msg("F32 %08x: BF16 %04x, nearest is %04x", u, l2_f32_to_bf16(f), want);
    }
}

/* -------------------------------------------------------- q/k order */

static void test_qk_order(void **state) {
    /* Head size 4: llama2.c's pairs (0,1), (2,3) are Hugging Face's (0,2), (1,3). */
    const size_t want[8] = {0, 2, 1, 3, 4, 6, 5, 7};
    for (size_t r = 0; r < 8; r++) {
        assert_int_equal(l2_hf_row_of(r, 4), want[r]);
        assert_int_equal(l2_llama2c_row_of(want[r], 4), r);
    }
    for (size_t hs = 2; hs <= 128; hs += 2)
        for (size_t r = 0; r < 3 * hs; r++) {
            assert_int_equal(l2_llama2c_row_of(l2_hf_row_of(r, hs), hs), r);
            assert_int_equal(l2_hf_row_of(r, hs) / hs, r / hs); /* stays in its head */
        }
}

/* ------------------------------------------------------ safetensors */

/* A safetensors file: the 8-byte length, the header text, data_len zeros. */
static unsigned char *st_bytes(const char *header, size_t data_len, size_t *len) {
    const size_t n = strlen(header);
    unsigned char *buf = calloc(8 + n + data_len, 1);
    assert_non_null(buf);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)n >> (8 * i));
    memcpy(buf + 8, header, n);
    *len = 8 + n + data_len;
    return buf;
}

static llama2_status parse_st(const char *header, size_t data_len, l2_safetensors *st, llama2_error *err) {
    size_t len;
    unsigned char *bytes = st_bytes(header, data_len, &len);
    llama2_status s = l2_safetensors_parse(bytes, len, "m.safetensors", st, err);
    if (s == LLAMA2_OK) {
        /* The views point into the bytes: check them before freeing. */
        for (size_t i = 0; i < st->n_tensors; i++) assert_true(st->tensors[i].offset + st->tensors[i].bytes <= len);
    }
    free(bytes);
    return s;
}

static void test_safetensors_reads_header(void **state) {
    l2_safetensors st;
    llama2_error err = {0};
    const char *header = "{\"__metadata__\":{\"format\":\"pt\"},\"z\":{\"dtype\":\"BF16\",\"shape\":[3],"
                         "\"data_offsets\":[16,22]},\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
                         "\"e\":{\"dtype\":\"I64\",\"shape\":[0],\"data_offsets\":[22,22]}}    ";
    assert_int_equal(parse_st(header, 22, &st, &err), LLAMA2_OK);
    assert_int_equal(st.n_tensors, 3);
    const l2_st_tensor *a = l2_safetensors_find(&st, "a"), *z = l2_safetensors_find(&st, "z");
    assert_non_null(a);
    assert_non_null(z);
    assert_null(l2_safetensors_find(&st, "__metadata__"));
    assert_int_equal(a->dtype, L2_DTYPE_F32);
    assert_int_equal(a->n_dims, 2);
    assert_int_equal(a->shape[1], 2);
    assert_int_equal(a->offset, 8 + strlen(header));
    assert_int_equal(z->dtype, L2_DTYPE_BF16);
    assert_int_equal(z->offset, 8 + strlen(header) + 16);
    assert_int_equal(z->bytes, 6);
    assert_int_equal(l2_safetensors_find(&st, "e")->dtype, L2_DTYPE_OTHER);
    l2_safetensors_close(&st);
}

static void test_safetensors_bad_headers(void **state) {
    const struct {
        const char *header;
        size_t data;
        const char *message;
    } cases[] = {
        {"{\"w\":", 0, "m.safetensors: the header is not valid JSON: unexpected token near end of file (at byte 5 of the header)"},
        {"[1,2]", 0, "m.safetensors: the header is not a JSON object"},
        {"{\"a\":{},\"a\":{}}", 0, "m.safetensors: the header is not valid JSON: duplicate object key near '\"a\"' (at byte 11 of the header)"},
        {"{\"w\":3}", 0, "m.safetensors: w: not a JSON object"},
        {"{\"a\\nb\":3}", 0, "m.safetensors: a\\x0ab: not a JSON object"},
        {"{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "m.safetensors: w: no dtype string"},
        {"{\"w\":{\"dtype\":\"Q4\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "m.safetensors: w: unknown dtype 'Q4'"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":3,\"data_offsets\":[0,4]}}", 4,
         "m.safetensors: w: shape is not an array of at most 8 sizes"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
         "m.safetensors: w: shape is not an array of at most 8 sizes"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2,-1],\"data_offsets\":[0,4]}}", 4, "m.safetensors: w: shape[1] is not a size"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}", 4,
         "m.safetensors: w: its shape overflows"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4,
         "m.safetensors: w: data_offsets is not a pair [begin, end] of sizes"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4,
         "m.safetensors: w: data_offsets is not a pair [begin, end] of sizes"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,8]}}", 16,
         "m.safetensors: w: data_offsets hold 8 bytes, its shape of F32 needs 16"},
        {"{\"w\":{\"dtype\":\"BF16\",\"shape\":[8],\"data_offsets\":[0,16]}}", 8,
         "m.safetensors: w: truncated: its data ends at byte 16, the file holds 8"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],"
         "\"data_offsets\":[4,12]}}",
         12, "m.safetensors: b: its data overlaps a's"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        l2_safetensors st;
        llama2_error err = {0};
        assert_status_message(parse_st(cases[i].header, cases[i].data, &st, &err), LLAMA2_E_FORMAT, &err,
                              cases[i].message);
    }
    /* Too short for the length; a length past the end. */
    l2_safetensors st;
    llama2_error err = {0};
    const unsigned char five[5] = {1, 0, 0, 0, 0};
    assert_status_message(l2_safetensors_parse(five, 5, "m.safetensors", &st, &err), LLAMA2_E_FORMAT, &err,
                          "m.safetensors: too short for a safetensors file (5 bytes)");
    unsigned char past[28] = {0xe8, 0x03};
    assert_status_message(l2_safetensors_parse(past, sizeof past, "m.safetensors", &st, &err), LLAMA2_E_FORMAT, &err,
                          "m.safetensors: truncated: the header length is 1000 bytes, the file has 20 after it");
}

/* ------------------------------------------------------ config.json */

static const char good_config[] =
    "{\"architectures\":[\"LlamaForCausalLM\"],\"model_type\":\"llama\",\"hidden_size\":64,"
    "\"intermediate_size\":96,\"num_hidden_layers\":2,\"num_attention_heads\":8,\"num_key_value_heads\":2,"
    "\"vocab_size\":100,\"max_position_embeddings\":32,\"rms_norm_eps\":1e-05,\"rope_theta\":10000.0,"
    "\"tie_word_embeddings\":false,\"hidden_act\":\"silu\",\"rope_scaling\":null}";

/* good_config with `key` set to the JSON `value` ("" removes it). */
static char *config_with(const char *key, const char *value) {
    json_error_t jerr;
    json_t *root = json_loads(good_config, 0, &jerr);
    assert_non_null(root);
    if (*value) {
        json_t *v = json_loads(value, JSON_DECODE_ANY, &jerr);
        assert_non_null(v);
        json_object_set_new(root, key, v);
    } else {
        json_object_del(root, key);
    }
    char *text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    return text;
}

static void test_config_reads_llama(void **state) {
    l2_hf_config c;
    llama2_error err = {0};
    assert_int_equal(l2_hf_config_parse(good_config, strlen(good_config), "config.json", &c, &err), LLAMA2_OK);
    assert_int_equal(c.shape.dim, 64);
    assert_int_equal(c.shape.hidden_dim, 96);
    assert_int_equal(c.shape.n_layers, 2);
    assert_int_equal(c.shape.n_heads, 8);
    assert_int_equal(c.shape.n_kv_heads, 2);
    assert_int_equal(c.shape.vocab_size, 100);
    assert_int_equal(c.shape.seq_len, 32);
    assert_true(c.norm_eps == 1e-5f);
    assert_true(c.rope_theta == 10000.0f);
    assert_int_equal(c.tie_word_embeddings, 0);
    /* Hugging Face's defaults for what is absent. */
    const char *absent[] = {"num_key_value_heads", "max_position_embeddings", "rms_norm_eps", "rope_theta",
                            "tie_word_embeddings", "architectures", "hidden_act"};
    for (size_t i = 0; i < sizeof absent / sizeof absent[0]; i++) {
        char *text = config_with(absent[i], "");
        assert_int_equal(l2_hf_config_parse(text, strlen(text), "config.json", &c, &err), LLAMA2_OK);
        free(text);
    }
    char *text = config_with("num_key_value_heads", "");
    l2_hf_config_parse(text, strlen(text), "config.json", &c, &err);
    assert_int_equal(c.shape.n_kv_heads, 8);
    free(text);
    text = config_with("rms_norm_eps", "");
    l2_hf_config_parse(text, strlen(text), "config.json", &c, &err);
    assert_true(c.norm_eps == 1e-6f);
    free(text);
    text = config_with("max_position_embeddings", "");
    l2_hf_config_parse(text, strlen(text), "config.json", &c, &err);
    assert_int_equal(c.shape.seq_len, 2048);
    free(text);
}

static void test_config_refusals(void **state) {
    const struct {
        const char *key, *value;
        llama2_status status;
        const char *message;
    } cases[] = {
        {"architectures", "[\"MistralForCausalLM\"]", LLAMA2_E_UNSUPPORTED,
         "config.json: architecture MistralForCausalLM is not supported: only LlamaForCausalLM converts"},
        {"model_type", "\"mistral\"", LLAMA2_E_UNSUPPORTED,
         "config.json: model_type mistral is not supported: only llama converts"},
        {"rope_scaling", "{\"type\":\"linear\",\"factor\":2.0}", LLAMA2_E_UNSUPPORTED,
         "config.json: rope_scaling linear is not supported: only llama3 scaling"},
        {"rope_scaling", "{\"rope_type\":\"llama3\",\"factor\":8.0}", LLAMA2_E_FORMAT,
         "config.json: rope_scaling.low_freq_factor is missing or not a number"},
        {"rope_scaling",
         "{\"rope_type\":\"llama3\",\"factor\":8.0,\"low_freq_factor\":4,\"high_freq_factor\":1,"
         "\"original_max_position_embeddings\":8192}",
         LLAMA2_E_FORMAT,
         "config.json: rope_scaling factor 8, low_freq_factor 4, high_freq_factor 1, original_max_position_embeddings "
         "8192: need factor >= 1, 0 < low < high, a positive integer"},
        {"attention_bias", "true", LLAMA2_E_UNSUPPORTED,
         "config.json: attention_bias is true: attention biases are not supported"},
        {"mlp_bias", "true", LLAMA2_E_UNSUPPORTED, "config.json: mlp_bias is true: MLP biases are not supported"},
        {"hidden_act", "\"gelu\"", LLAMA2_E_UNSUPPORTED, "config.json: hidden_act gelu is not supported: only silu"},
        {"hidden_size", "", LLAMA2_E_FORMAT, "config.json: hidden_size is missing"},
        {"hidden_size", "\"64\"", LLAMA2_E_FORMAT, "config.json: hidden_size is not a positive integer below 2^31"},
        {"num_hidden_layers", "0", LLAMA2_E_FORMAT,
         "config.json: num_hidden_layers is not a positive integer below 2^31"},
        {"vocab_size", "4294967296", LLAMA2_E_FORMAT, "config.json: vocab_size is not a positive integer below 2^31"},
        {"num_key_value_heads", "3", LLAMA2_E_UNSUPPORTED,
         "config.json: num_attention_heads 8 is not a multiple of num_key_value_heads 3"},
        {"num_attention_heads", "5", LLAMA2_E_UNSUPPORTED,
         "config.json: hidden_size 64 is not a multiple of num_attention_heads 5"},
        {"num_attention_heads", "64", LLAMA2_E_UNSUPPORTED,
         "config.json: the head size hidden_size / num_attention_heads is 1: RoPE needs an even one"},
        {"head_dim", "32", LLAMA2_E_UNSUPPORTED,
         "config.json: head_dim 32 is not hidden_size / num_attention_heads (8): llama2.c cannot hold it"},
        {"rms_norm_eps", "-1", LLAMA2_E_FORMAT, "config.json: rms_norm_eps is -1, must be a positive number"},
        {"rope_theta", "\"big\"", LLAMA2_E_FORMAT, "config.json: rope_theta is not a number"},
        {"tie_word_embeddings", "\"yes\"", LLAMA2_E_FORMAT, "config.json: tie_word_embeddings is not true or false"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *text = config_with(cases[i].key, cases[i].value);
        l2_hf_config c;
        llama2_error err = {0};
        assert_status_message(l2_hf_config_parse(text, strlen(text), "config.json", &c, &err), cases[i].status, &err,
                              cases[i].message);
        free(text);
    }
    const struct {
        const char *text, *message;
    } raw[] = {
        {"{\"hidden_size\": 64,", "config.json: not valid JSON: string or '}' expected near end of file (line 1, column 19)"},
        {"[64]", "config.json: not a JSON object"},
        {"{\"hidden_size\":64}", "config.json: neither architectures nor model_type says this is a Llama model"},
    };
    for (size_t i = 0; i < sizeof raw / sizeof raw[0]; i++) {
        l2_hf_config c;
        llama2_error err = {0};
        assert_status_message(l2_hf_config_parse(raw[i].text, strlen(raw[i].text), "config.json", &c, &err),
                              LLAMA2_E_FORMAT, &err, raw[i].message);
    }
}

/* -------------------------------------------------- Hugging Face fixtures */

typedef struct fixture {
    int dim, hidden, layers, heads, kv_heads, vocab, seq_len;
    int tie;          /* tie_word_embeddings: no lm_head */
    int lm_head_copy; /* not tied, but lm_head equal to the embedding table */
    l2_dtype dtype;
    int shards;       /* 0: model.safetensors; n: n files and the index */
    uint64_t seed;
    /* For bad inputs: */
    const char *config_key, *config_value; /* a config.json field set (value "" removes it) */
    const char *omit;                     /* a tensor left out */
    const char *extra;                    /* a tensor added, [dim] */
    const char *reshape;                  /* a tensor given shape [dim + 1, dim] ... */
    const char *retype;                   /* a tensor whose dtype is written as I32 (fp32 only) */
    double rope_theta;                    /* 0: 10000 */
    const char *rope_scaling;             /* config.json's rope_scaling, JSON; NULL: none */
} fixture;

static fixture small_fixture(l2_dtype dtype, int shards, int heads, int kv_heads, int tie) {
    fixture f = {64, 96, 2, heads, kv_heads, 100, 32, tie, 0, dtype, shards, 7, NULL, NULL, NULL, NULL, NULL, NULL, 0, NULL};
    return f;
}

typedef struct hf_tensor {
    l2_st_entry entry;
    unsigned char *data;
    size_t bytes;
} hf_tensor;

/* Random values for a tensor: each (role, layer) its own stream, norms
 * around 1, matrices scaled by their fan-in. */
static void fill_values(const fixture *f, l2_tensor_kind kind, int layer, float *v, size_t n, size_t cols) {
    uint64_t rng = f->seed * 1000003u + (uint64_t)kind * 131u + (uint64_t)layer + 1u;
    if (kind == L2_TENSOR_CLASSIFIER && f->lm_head_copy)
        rng = f->seed * 1000003u + L2_TENSOR_TOKEN_EMBEDDING * 131u + 1u;
    const int norm = !l2_tensor_table[kind].matrix;
    const float spread = norm ? 0.1f : sqrtf(3.0f / (float)cols);
    for (size_t i = 0; i < n; i++) {
        float u = (float)(test_rng_next(&rng) >> 8) * (2.0f / 16777216.0f) - 1.0f;
        v[i] = (norm ? 1.0f : 0.0f) + u * spread;
    }
}

static llama2_config fixture_shape(const fixture *f) {
    llama2_config c = {0};
    c.dim = f->dim;
    c.hidden_dim = f->hidden;
    c.n_layers = f->layers;
    c.n_heads = f->heads;
    c.n_kv_heads = f->kv_heads;
    c.vocab_size = f->vocab;
    c.seq_len = f->seq_len;
    return c;
}

/* Every tensor of the fixture, with its bytes, in a shuffled order. */
static hf_tensor *fixture_tensors(const fixture *f, size_t *count) {
    const llama2_config c = fixture_shape(f);
    hf_tensor *t = calloc((size_t)L2_HF_KINDS * (size_t)f->layers + 2, sizeof *t);
    assert_non_null(t);
    size_t n = 0;
    for (int k = 0; k < L2_HF_KINDS; k++) {
        const l2_tensor_kind kind = (l2_tensor_kind)k;
        if (kind == L2_TENSOR_CLASSIFIER && f->tie) continue;
        for (int l = 0; l < (l2_tensor_table[kind].per_layer ? f->layers : 1); l++) {
            hf_tensor *x = &t[n];
            size_t rows, cols;
            l2_tensor_shape(&c, kind, &rows, &cols);
            l2_hf_shape(&c, kind, x->entry.shape, &x->entry.n_dims);
            l2_hf_name(kind, l, x->entry.name, sizeof x->entry.name);
            if (f->omit && strcmp(f->omit, x->entry.name) == 0) continue;
            if (f->reshape && strcmp(f->reshape, x->entry.name) == 0) rows++, x->entry.shape[0]++;
            x->entry.dtype = f->dtype;
            float *v = malloc(rows * cols * sizeof *v);
            assert_non_null(v);
            fill_values(f, kind, l, v, rows * cols, cols);
            x->bytes = rows * cols * l2_dtype_size(f->dtype);
            x->data = malloc(x->bytes);
            assert_non_null(x->data);
            l2_values_from_f32(f->dtype, v, rows * cols, x->data);
            free(v);
            n++;
        }
    }
    if (f->extra) {
        hf_tensor *x = &t[n++];
        snprintf(x->entry.name, sizeof x->entry.name, "%s", f->extra);
        x->entry.dtype = f->dtype;
        x->entry.n_dims = 1;
        x->entry.shape[0] = (uint64_t)f->dim;
        x->bytes = (size_t)f->dim * l2_dtype_size(f->dtype);
        x->data = calloc(1, x->bytes);
    }
    uint64_t rng = f->seed + 17;
    for (size_t i = n; i > 1; i--) { /* Fisher-Yates */
        size_t j = test_rng_next(&rng) % i;
        hf_tensor tmp = t[i - 1];
        t[i - 1] = t[j];
        t[j] = tmp;
    }
    *count = n;
    return t;
}

/* One safetensors file holding tensors [first, first + n). */
static void write_safetensors(const char *path, const fixture *f, const hf_tensor *t, size_t n) {
    l2_st_entry *entries = malloc(n * sizeof *entries);
    assert_non_null(entries);
    for (size_t i = 0; i < n; i++) entries[i] = t[i].entry;
    unsigned char *header;
    size_t len;
    llama2_error err = {0};
    assert_int_equal(l2_safetensors_header(entries, n, &header, &len, &err), LLAMA2_OK);
    free(entries);
    if (f->retype) { /* "name":{"dtype":"F32" -> "I32" */
        char key[160];
        snprintf(key, sizeof key, "\"%s\":{\"dtype\":\"F32\"", f->retype);
        const size_t k = strlen(key);
        for (size_t i = 0; i + k <= len; i++)
            if (memcmp(header + i, key, k) == 0) header[i + k - 4] = 'I';
    }
    FILE *out = fopen(path, "wb");
    assert_non_null(out);
    assert_int_equal(fwrite(header, 1, len, out), len);
    for (size_t i = 0; i < n; i++) assert_int_equal(fwrite(t[i].data, 1, t[i].bytes, out), t[i].bytes);
    assert_int_equal(fclose(out), 0);
    free(header);
}

static void write_fixture_config(const char *dir, const fixture *f) {
    json_t *root = json_pack("{s:[s], s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:f, s:f, s:b, s:s, s:s}",
                             "architectures", "LlamaForCausalLM", "model_type", "llama", "hidden_size", f->dim,
                             "intermediate_size", f->hidden, "num_hidden_layers", f->layers, "num_attention_heads",
                             f->heads, "num_key_value_heads", f->kv_heads, "vocab_size", f->vocab,
                             "max_position_embeddings", f->seq_len, "rms_norm_eps", 1e-5, "rope_theta",
                             f->rope_theta ? f->rope_theta : 10000.0,
                             "tie_word_embeddings", f->tie, "hidden_act", "silu", "torch_dtype", "bfloat16");
    assert_non_null(root);
    if (f->rope_scaling) {
        json_error_t jerr;
        json_t *v = json_loads(f->rope_scaling, 0, &jerr);
        assert_non_null(v);
        json_object_set_new(root, "rope_scaling", v);
    }
    if (f->config_key) {
        if (*f->config_value) {
            json_error_t jerr;
            json_t *v = json_loads(f->config_value, JSON_DECODE_ANY, &jerr);
            assert_non_null(v);
            json_object_set_new(root, f->config_key, v);
        } else {
            json_object_del(root, f->config_key);
        }
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    assert_int_equal(json_dump_file(root, path, JSON_INDENT(2)), 0);
    json_decref(root);
}

/* Writes the fixture's folder: config.json and its safetensors file(s). */
static void write_fixture(const char *dir, const fixture *f) {
    mkdir(dir, 0777);
    write_fixture_config(dir, f);
    size_t n;
    hf_tensor *t = fixture_tensors(f, &n);
    char path[4096];
    if (f->shards == 0) {
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        write_safetensors(path, f, t, n);
    } else {
        json_t *map = json_object();
        for (int s = 0; s < f->shards; s++) {
            char name[64];
            snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", s + 1, f->shards);
            size_t first = n * (size_t)s / (size_t)f->shards, last = n * (size_t)(s + 1) / (size_t)f->shards;
            snprintf(path, sizeof path, "%s/%s", dir, name);
            write_safetensors(path, f, t + first, last - first);
            for (size_t i = first; i < last; i++) json_object_set_new(map, t[i].entry.name, json_string(name));
        }
        json_t *index = json_pack("{s:{s:i}, s:o}", "metadata", "total_size", 0, "weight_map", map);
        snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
        assert_int_equal(json_dump_file(index, path, JSON_INDENT(2)), 0);
        json_decref(index);
    }
    for (size_t i = 0; i < n; i++) free(t[i].data);
    free(t);
}

static llama2_status convert_hf(const char *dir, const char *out, int version, llama2_error *err) {
    l2_convert_options o = {0};
    o.version = version;
    return l2_convert_hf_to_llama2c(dir, out, &o, err);
}

static void convert_hf_ok(const char *dir, const char *out, int version) {
    llama2_error err = {0};
    if (convert_hf(dir, out, version, &err) != LLAMA2_OK) fail_msg("converting %s: %s", dir, err.message);
}

static void to_hf_ok(const char *in, const char *dir, l2_dtype dtype, const char *tokenizer) {
    l2_convert_options o = {0};
    o.dtype = dtype;
    o.tokenizer = tokenizer;
    llama2_error err = {0};
    if (l2_convert_llama2c_to_hf(in, dir, &o, &err) != LLAMA2_OK) fail_msg("converting %s to %s: %s", in, dir, err.message);
}

/* The logits after each of tokens[0..n), [n][vocab], from our engine. */
typedef struct logits_rows {
    float *values;
    int vocab;
} logits_rows;

static void keep_logits(void *user, int index, float *logits) {
    logits_rows *rows = user;
    memcpy(rows->values + (size_t)index * (size_t)rows->vocab, logits, (size_t)rows->vocab * sizeof *logits);
}

static float *engine_logits(const char *path, const int *tokens, int n, int *vocab) {
    llama2_model *m = open_model(path);
    llama2_session *session = NULL;
    llama2_error err = {0};
    if (llama2_session_create(m, NULL, &session, &err) != LLAMA2_OK) fail_msg("session: %s", err.message);
    logits_rows rows = {malloc((size_t)n * (size_t)llama2_model_config(m)->vocab_size * sizeof(float)),
                        llama2_model_config(m)->vocab_size};
    assert_non_null(rows.values);
    if (llama2_session_eval_all(session, tokens, n, 0, keep_logits, &rows, &err) != LLAMA2_OK)
        fail_msg("eval: %s", err.message);
    llama2_session_destroy(session);
    llama2_model_close(m);
    *vocab = rows.vocab;
    return rows.values;
}

/* The numpy reference's logits for the folder (NULL: it could not run). */
static float *reference_logits(const char *dir, const int *tokens, int n, int vocab) {
    char *argv[64];
    char numbers[32][16];
    int k = 0;
    argv[k++] = PYTHON;
    argv[k++] = (char *)test_source_path("tests/hf_reference.py");
    argv[k++] = (char *)dir;
    argv[k++] = (char *)tmp_path("reference.f32");
    for (int i = 0; i < n && i < 32; i++) {
        snprintf(numbers[i], sizeof numbers[i], "%d", tokens[i]);
        argv[k++] = numbers[i];
    }
    argv[k] = NULL;
    test_run r;
    int status = test_run_program(argv, NULL, NULL, 0, &r);
    if (status != 0) fail_msg("hf_reference.py failed (%d): %s", status, r.err ? r.err : "");
    test_run_free(&r);
    size_t size = 0;
    float *values = (float *)test_read_file(tmp_path("reference.f32"), &size);
    assert_non_null(values);
    assert_int_equal(size, (size_t)n * (size_t)vocab * sizeof(float));
    return values;
}

/* Our logits against the reference's, at every position: within 1e-5 of
 * the largest logit's size (float32 against float64 arithmetic). */
static void assert_close_logits(const float *ours, const float *ref, int n, int vocab, const char *what) {
    double worst = 0.0, scale = 0.0;
    for (size_t i = 0; i < (size_t)n * (size_t)vocab; i++) {
        double d = fabs((double)ours[i] - (double)ref[i]);
        if (d > worst) worst = d;
        if (fabs((double)ref[i]) > scale) scale = fabs((double)ref[i]);
    }
    if (getenv("VERBOSE")) printf("%s: largest logit %.3f, largest difference %.3g\n", what, scale, worst);
    if (!(worst <= 1e-5 * scale)) fail_msg("%s: logits differ by %g (largest logit %g)", what, worst, scale);
}

/* Skips the running test without the numpy reference. */
static void require_reference(void) {
    if (!have_file(test_source_path("tests/hf_reference.py")) || !python_has("numpy")) {
        print_message("skipped: needs /usr/bin/python3 with numpy (python3-numpy) and %s\n",
                      test_source_path("tests/hf_reference.py"));
        skip();
    }
}

static const fixture *fixtures(size_t *n) {
    static fixture f[5];
    f[0] = small_fixture(L2_DTYPE_F32, 0, 4, 4, 1);  /* one file, tied, multi-head */
    f[1] = small_fixture(L2_DTYPE_BF16, 3, 8, 2, 0); /* shards, separate lm_head, grouped-query */
    f[2] = small_fixture(L2_DTYPE_F16, 2, 8, 4, 0);  /* lm_head a copy of the embedding */
    f[2].lm_head_copy = 1;
    f[3] = small_fixture(L2_DTYPE_F32, 0, 4, 1, 0);  /* one key/value head */
    f[4] = small_fixture(L2_DTYPE_BF16, 0, 2, 2, 1); /* head size 32 */
    *n = 5;
    return f;
}

static const int sample_tokens[12] = {1, 17, 42, 99, 3, 64, 5, 88, 23, 0, 71, 12};

/* Every fixture converts, to every version, with the same weights: v0 and v1
 * give bit-identical logits, v2 is the project's quantizer's file. */
static void test_hf_fixtures_convert(void **state) {
    size_t n;
    const fixture *f = fixtures(&n);
    for (size_t i = 0; i < n; i++) {
        write_fixture(tmp_path("hf"), &f[i]);
        convert_hf_ok(tmp_path("hf"), tmp_path("v0.bin"), 0);
        convert_hf_ok(tmp_path("hf"), tmp_path("v1.bin"), 1);
        convert_hf_ok(tmp_path("hf"), tmp_path("v2.bin"), 2);
        llama2_model *m = open_model(tmp_path("v1.bin"));
        const llama2_config *c = llama2_model_config(m);
        assert_int_equal(c->n_kv_heads, f[i].kv_heads);
        assert_int_equal(c->seq_len, f[i].seq_len);
        assert_int_equal(c->shared_classifier, f[i].tie || f[i].lm_head_copy);
        llama2_model_close(m);
        int vocab;
        float *a = engine_logits(tmp_path("v0.bin"), sample_tokens, 12, &vocab);
        float *b = engine_logits(tmp_path("v1.bin"), sample_tokens, 12, &vocab);
        assert_memory_equal(a, b, 12 * (size_t)vocab * sizeof(float));
        free(a);
        free(b);
        llama2_error err = {0};
        assert_int_equal(l2_quantize_file(tmp_path("v1.bin"), tmp_path("q.bin"), 0, 0, &err), LLAMA2_OK);
        assert_same_file(tmp_path("v2.bin"), tmp_path("q.bin"));
        clear_tmp_dir();
    }
}

/* The converted models compute what Hugging Face's Llama computes. */
static void test_hf_fixtures_match_reference(void **state) {
    require_reference();
    size_t n;
    const fixture *f = fixtures(&n);
    for (size_t i = 0; i < n; i++) {
        write_fixture(tmp_path("hf"), &f[i]);
        convert_hf_ok(tmp_path("hf"), tmp_path("v1.bin"), 1);
        int vocab;
        float *ours = engine_logits(tmp_path("v1.bin"), sample_tokens, 12, &vocab);
        float *ref = reference_logits(tmp_path("hf"), sample_tokens, 12, vocab);
        char what[64];
        snprintf(what, sizeof what, "fixture %zu", i);
        assert_close_logits(ours, ref, 12, vocab, what);
        free(ours);
        free(ref);
        clear_tmp_dir();
    }
}

/* A Llama-3.2-shaped model (grouped-query attention, tied embeddings,
 * rope_theta 500000, rope_scaling of type llama3 whose frequencies fall in
 * all three of its bands): the converted model's logits equal the numpy
 * reference's within 1e-5 of the largest, with the same greedy token at
 * every position; version 0 is refused; to Hugging Face and back gives the
 * same file, rope_scaling included. */
/* A tokenizer.json of Llama 3's form: the 256 byte tokens, "ab" and
 * <|eot_id|>, with a tokenizer_config.json beside it. */
static void write_tokenizer_json(const char *dir) {
    json_t *vocab = json_object();
    for (int b = 0; b < 256; b++) {
        unsigned c = l2_bpe_byte_char((unsigned char)b);
        char name[4] = {0};
        if (c < 0x80) name[0] = (char)c;
        else name[0] = (char)(0xC0 | c >> 6), name[1] = (char)(0x80 | (c & 0x3F));
        json_object_set_new(vocab, name, json_integer(b));
    }
    json_object_set_new(vocab, "ab", json_integer(256));
    json_error_t jerr;
    json_t *root = json_loads(
        "{\"added_tokens\":[{\"id\":257,\"content\":\"<|begin_of_text|>\",\"special\":true},"
        "{\"id\":258,\"content\":\"<|eot_id|>\",\"special\":true}],\"normalizer\":null,"
        "\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":"
        "\"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}{1,3}| ?[^\\\\s\\\\p{L}\\\\p{N}]+"
        "[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+\"},\"behavior\":\"Isolated\",\"invert\":false},"
        "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":true,\"use_regex\":false}]},"
        "\"model\":{\"type\":\"BPE\",\"ignore_merges\":true,\"merges\":[\"a b\"]}}",
        0, &jerr);
    if (!root) fail_msg("tokenizer.json: %s", jerr.text);
    json_object_set_new(json_object_get(root, "model"), "vocab", vocab);
    char path[4200];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    assert_int_equal(json_dump_file(root, path, 0), 0);
    json_decref(root);
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    const char *config = "{\"bos_token\":\"<|begin_of_text|>\",\"eos_token\":\"<|eot_id|>\"}";
    write_bytes(path, config, strlen(config));
}

static fixture llama3_fixture(void) {
    fixture f = small_fixture(L2_DTYPE_BF16, 0, 4, 2, 1);
    f.vocab = 260; /* the tokenizer's 259 and a padding row */
    f.rope_theta = 500000.0;
    f.rope_scaling = "{\"factor\":8.0,\"low_freq_factor\":1.0,\"high_freq_factor\":4.0,"
                     "\"original_max_position_embeddings\":64,\"rope_type\":\"llama3\"}";
    return f;
}

/* The converted checkpoint and its tokenizer as GGUF, by llama2-quantize
 * --type f32 -z: the tokenizer as tokenizer.ggml.* ("gpt2"), the RoPE
 * scaling as rope_freqs.weight. */
static void write_gguf_twin(const char *bin, const char *tok_path, const char *gguf) {
    char quantize[4096];
    snprintf(quantize, sizeof quantize, "%s", test_require_tool("llama2-quantize"));
    const char *args[] = {bin, gguf, "--type", "f32", "-z", tok_path, "--force", NULL};
    test_run r;
    if (test_run_tool(quantize, args, &r) != 0 || r.status != 0)
        fail_msg("llama2-quantize --type f32: status %d: %s", r.status, r.err ? r.err : "");
    test_run_free(&r);
}

/* The GGUF twin computes the checkpoint's logits to the bit, and the
 * program prints the same greedy text from it without -z. */
static void check_gguf_twin(const char *bin, const char *tok_path, const float *logits, int vocab) {
    char gguf[4200];
    snprintf(gguf, sizeof gguf, "%s", tmp_path("v1.gguf"));
    write_gguf_twin(bin, tok_path, gguf);
    int twin_vocab;
    float *twin = engine_logits(gguf, sample_tokens, 12, &twin_vocab);
    assert_int_equal(twin_vocab, vocab);
    assert_memory_equal(twin, logits, 12 * (size_t)vocab * sizeof(float));
    free(twin);
    char *from_bin[] = {(char *)test_llama2_bin(), (char *)bin, "-z", (char *)tok_path, "-t", "0", "-n", "24",
                        "-i", "abc ab", "--no-timer", NULL};
    char *from_gguf[] = {(char *)test_llama2_bin(), gguf, "-t", "0", "-n", "24", "-i", "abc ab", "--no-timer", NULL};
    test_run a, b;
    test_run_program(from_bin, NULL, NULL, 0, &a);
    test_run_program(from_gguf, NULL, NULL, 0, &b);
    if (a.status != 0 || b.status != 0) fail_msg("status %d and %d: %s%s", a.status, b.status, a.err, b.err);
    assert_true(a.out_len > strlen("abc ab"));
    assert_int_equal(a.out_len, b.out_len);
    assert_memory_equal(a.out, b.out, a.out_len);
    test_run_free(&a);
    test_run_free(&b);
    /* Its rope_freqs.weight has no place in config.json or a llama2.c header. */
    llama2_error e = {0};
    char want[8400];
    snprintf(want, sizeof want, "%s: rope_freqs.weight (GGUF's RoPE scaling: a divisor per frequency) has no place "
             "in config.json; convert the Hugging Face folder the file came from", gguf);
    l2_convert_options o = {.dtype = L2_DTYPE_F32};
    assert_status_message(l2_convert_llama2c_to_hf(gguf, tmp_path("from-gguf"), &o, &e), LLAMA2_E_UNSUPPORTED, &e,
                          want);
    assert_status_message(l2_checkpoint_rewrite(gguf, tmp_path("from-gguf.bin"), 1, 0, 0, &e), LLAMA2_E_UNSUPPORTED,
                          &e,
                          "rope_freqs.weight (GGUF's RoPE scaling: a divisor per frequency) has no place in a llama2.c "
                          "header; convert the Hugging Face folder the file came from");
    assert_int_not_equal(access(tmp_path("from-gguf.bin"), F_OK), 0);
}

static void test_hf_llama3_fixture(void **state) {
    fixture f = llama3_fixture();
    write_fixture(tmp_path("hf"), &f);
    write_tokenizer_json(tmp_path("hf"));
    l2_convert_options o = {0};
    o.version = 1;
    o.tokenizer = tmp_path("tok.bin");
    char *tok_path = strdup(o.tokenizer);
    llama2_error e = {0};
    if (l2_convert_hf_to_llama2c(tmp_path("hf"), tmp_path("v1.bin"), &o, &e) != LLAMA2_OK) fail_msg("%s", e.message);
    llama2_tokenizer *tok = NULL;
    assert_int_equal(llama2_tokenizer_open(tok_path, f.vocab, &tok, &e), LLAMA2_OK);
    assert_int_equal(llama2_tokenizer_get_kind(tok), LLAMA2_TOKENIZER_BPE);
    assert_int_equal(llama2_tokenizer_bos(tok), 257);
    assert_int_equal(llama2_tokenizer_eos(tok), 258);
    int ids[16], n_ids = 0;
    assert_int_equal(llama2_tokenize(tok, "abc", 1, 0, ids, &n_ids, &e), LLAMA2_OK);
    assert_int_equal(n_ids, 3);
    assert_true(ids[0] == 257 && ids[1] == 256 && ids[2] == 'c');
    llama2_tokenizer_close(tok);
    llama2_model *m = open_model(tmp_path("v1.bin"));
    const llama2_config *c = llama2_model_config(m);
    assert_true(c->rope_theta == 500000.0f && c->rope_scaling_factor == 8.0f && c->rope_low_freq_factor == 1.0f &&
                c->rope_high_freq_factor == 4.0f && c->rope_original_context == 64 && c->shared_classifier == 1);
    llama2_model_close(m);
    llama2_error err = {0};
    char want[4200];
    snprintf(want, sizeof want, "%s/config.json: rope_scaling: a version 0 file cannot record it (use --version 1 or 2)",
             tmp_path("hf"));
    assert_status_message(convert_hf(tmp_path("hf"), tmp_path("v0.bin"), 0, &err), LLAMA2_E_UNSUPPORTED, &err, want);
    /* Without the scaling the logits differ: the test sees it. */
    int vocab;
    float *ours = engine_logits(tmp_path("v1.bin"), sample_tokens, 12, &vocab);
    if (have_file(test_source_path("tests/hf_reference.py")) && python_has("numpy")) {
        float *ref = reference_logits(tmp_path("hf"), sample_tokens, 12, vocab);
        assert_close_logits(ours, ref, 12, vocab, "llama3 fixture");
        for (int pos = 0; pos < 12; pos++) {
            int a = 0, b = 0;
            for (int i = 1; i < vocab; i++) {
                if (ours[pos * vocab + i] > ours[pos * vocab + a]) a = i;
                if (ref[pos * vocab + i] > ref[pos * vocab + b]) b = i;
            }
            assert_int_equal(a, b);
        }
        free(ref);
    } else {
        print_message("the reference comparison needs python3 with numpy (python3-numpy)\n");
    }
    check_gguf_twin(tmp_path("v1.bin"), tok_path, ours, vocab);
    free(ours);
    to_hf_ok(tmp_path("v1.bin"), tmp_path("back"), L2_DTYPE_F32, tok_path);
    char *config = test_read_file(tmp_path("back/config.json"), NULL);
    assert_non_null(config);
    assert_non_null(strstr(config, "\"rope_type\": \"llama3\""));
    free(config);
    /* The tokenizer went as tokenizer.json and tokenizer_config.json: back
     * from them, the same tokenizer file. */
    char *again_tok = strdup(tmp_path("tok-again.bin"));
    o.tokenizer = again_tok;
    if (l2_convert_hf_to_llama2c(tmp_path("back"), tmp_path("again.bin"), &o, &e) != LLAMA2_OK) fail_msg("%s", e.message);
    assert_same_file(tmp_path("v1.bin"), tmp_path("again.bin"));
    assert_same_file(tok_path, again_tok);
    free(again_tok);
    free(tok_path);
    clear_tmp_dir();
}

/* Greedy ids after `first` from this engine: the first largest logit. */
static void engine_greedy(const char *path, int first, int n, int *ids) {
    llama2_model *m = open_model(path);
    llama2_session *s = NULL;
    llama2_error err = {0};
    if (llama2_session_create(m, NULL, &s, &err) != LLAMA2_OK) fail_msg("session: %s", err.message);
    const int vocab = llama2_model_config(m)->vocab_size;
    int token = first;
    for (int pos = 0; pos < n; pos++) {
        float *logits = NULL;
        if (llama2_session_eval(s, &token, 1, pos, &logits, &err) != LLAMA2_OK) fail_msg("eval: %s", err.message);
        int best = 0;
        for (int v = 1; v < vocab; v++)
            if (logits[v] > logits[best]) best = v;
        ids[pos] = token = best;
    }
    llama2_session_destroy(s);
    llama2_model_close(m);
}

/* Where llama.cpp can be had (tests/llama_cpp/setup.sh), it reads the
 * Llama 3 fixture's GGUF form (its gpt2 tokenizer, rope_freqs.weight, tied
 * embeddings, grouped-query attention) and continues <|begin_of_text|>
 * with this engine's 24 greedy tokens. Skipped by name where it cannot be
 * had. */
static void test_hf_llama3_llama_cpp(void **state) {
    char *setup[] = {"/bin/sh", (char *)test_source_path("tests/llama_cpp/setup.sh"), NULL};
    test_run r;
    test_run_program(setup, NULL, NULL, 0, &r);
    if (r.status != 0 || r.out_len < 2) {
        print_message("skipped: test_hf_llama3_llama_cpp: llama.cpp cannot be had (%.200s)\n",
                      r.err && r.err_len ? r.err : "tests/llama_cpp/setup.sh failed");
        test_run_free(&r);
        skip();
    }
    char greedy[4096], libs[4200];
    snprintf(greedy, sizeof greedy, "%.*s", (int)(r.out_len - 1), r.out);
    test_run_free(&r);
    snprintf(libs, sizeof libs, "%.*s/package/bins/linux-x64", (int)(strrchr(greedy, '/') - greedy), greedy);
    fixture f = llama3_fixture();
    write_fixture(tmp_path("hf"), &f);
    write_tokenizer_json(tmp_path("hf"));
    l2_convert_options o = {0};
    o.version = 1;
    o.tokenizer = tmp_path("tok.bin");
    char *tok_path = strdup(o.tokenizer);
    llama2_error e = {0};
    if (l2_convert_hf_to_llama2c(tmp_path("hf"), tmp_path("v1.bin"), &o, &e) != LLAMA2_OK) fail_msg("%s", e.message);
    char gguf[4200];
    snprintf(gguf, sizeof gguf, "%s", tmp_path("v1.gguf"));
    write_gguf_twin(tmp_path("v1.bin"), tok_path, gguf);
    free(tok_path);
    enum { N = 24 };
    int ours[N], theirs[N], got = 0;
    engine_greedy(gguf, 257, N, ours);
    char *argv[] = {greedy, libs, gguf, "24", "257", NULL};
    test_run_program(argv, NULL, NULL, 0, &r);
    for (const char *p = r.out; r.status == 0 && p && got < N; got++) {
        char *end;
        theirs[got] = (int)strtol(p, &end, 10);
        if (end == p) break;
        p = end;
    }
    if (got != N) fail_msg("llama.cpp's greedy: status %d, %d ids: %.300s", r.status, got, r.err ? r.err : "");
    test_run_free(&r);
    int same = 0;
    while (same < N && ours[same] == theirs[same]) same++;
    print_message("llama3 fixture (GGUF): %d of %d greedy tokens the same as llama.cpp's\n", same, N);
    assert_int_equal(same, N);
}

/* ------------------------------------------------------- round trips */

/* llama2.c -> Hugging Face (fp32) -> llama2.c gives the same file. */
static void test_round_trip_fp32(void **state) {
    llama2_config shapes[3] = {
        l2_random_model_config(64, 96, 2, 8, 2, 100, 32, 0, 1, 0), /* grouped-query, separate classifier */
        l2_random_model_config(48, 80, 3, 3, 3, 70, 16, 1, 1, 0),  /* head size 16, shared */
        l2_random_model_config(64, 96, 2, 8, 2, 100, 32, 0, 0, 0), /* version 0 */
    };
    for (int i = 0; i < 3; i++) {
        llama2_error err = {0};
        assert_int_equal(l2_write_random_model(tmp_path("a.bin"), &shapes[i], 11 + (uint64_t)i, 0, &err), LLAMA2_OK);
        to_hf_ok(tmp_path("a.bin"), tmp_path("hf"), L2_DTYPE_F32, NULL);
        convert_hf_ok(tmp_path("hf"), tmp_path("b.bin"), shapes[i].file_version);
        assert_same_file(tmp_path("a.bin"), tmp_path("b.bin"));
        clear_tmp_dir();
    }
}

/* stories260K, as version 1, to Hugging Face and back: the same file. */
static void test_round_trip_stories260K(void **state) {
    const char *v1 = test_require_model("stories260K_v1.bin");
    to_hf_ok(v1, tmp_path("hf"), L2_DTYPE_F32, NULL);
    convert_hf_ok(tmp_path("hf"), tmp_path("v1.bin"), 1);
    assert_same_file(tmp_path("v1.bin"), v1);
}

/* stories260K through Hugging Face gives llama2.c's own exports: version 1
 * and int8 (group size 4) byte for byte, version 0 up to the RoPE tables. */
static void test_stories260K_as_llama2c_exports(void **state) {
    char v0[4096], v1[4096], q80[4096];
    snprintf(v0, sizeof v0, "%s", test_require_original("stories260K.bin"));
    snprintf(v1, sizeof v1, "%s", test_require_original("stories260K_v1.bin"));
    snprintf(q80, sizeof q80, "%s", test_require_original("stories260K_q80_gs4.bin"));
    to_hf_ok(v0, tmp_path("hf"), L2_DTYPE_F32, NULL);
    convert_hf_ok(tmp_path("hf"), tmp_path("v1.bin"), 1);
    assert_same_file(tmp_path("v1.bin"), v1);
    l2_convert_options o = {0};
    o.version = 2;
    o.group_size = 4;
    llama2_error err = {0};
    if (l2_convert_hf_to_llama2c(tmp_path("hf"), tmp_path("v2.bin"), &o, &err) != LLAMA2_OK)
        fail_msg("converting to version 2: %s", err.message);
    assert_same_file(tmp_path("v2.bin"), q80);
    /* llama2.c's own version 0 file: the same bytes up to its RoPE tables,
     * which run.c never reads and which PyTorch's cos and sin round
     * differently from the correctly rounded ones written here. */
    convert_hf_ok(tmp_path("hf"), tmp_path("v0.bin"), 0);
    size_t na, nb;
    char *a = test_read_file(tmp_path("v0.bin"), &na), *b = test_read_file(v0, &nb);
    assert_int_equal(na, nb);
    const size_t tables = 2 * 512 * 4 * sizeof(float);
    assert_memory_equal(a, b, na - tables);
    free(a);
    free(b);
}

/* 16-bit exports hold the weights rounded to nearest; converting back gives
 * those rounded weights. */
static void test_round_trip_16bit(void **state) {
    llama2_config c = l2_random_model_config(64, 96, 2, 8, 2, 100, 32, 0, 1, 0);
    llama2_error err = {0};
    assert_int_equal(l2_write_random_model(tmp_path("a.bin"), &c, 5, 0, &err), LLAMA2_OK);
    const l2_dtype dtypes[2] = {L2_DTYPE_BF16, L2_DTYPE_F16};
    for (int d = 0; d < 2; d++) {
        to_hf_ok(tmp_path("a.bin"), tmp_path("hf"), dtypes[d], NULL);
        convert_hf_ok(tmp_path("hf"), tmp_path("b.bin"), 1);
        size_t na, nb;
        char *a = test_read_file(tmp_path("a.bin"), &na), *b = test_read_file(tmp_path("b.bin"), &nb);
        assert_int_equal(na, nb);
        assert_memory_equal(a, b, 256); /* the header */
        for (size_t i = 256; i < na; i += 4) {
            float x, y;
            memcpy(&x, a + i, 4);
            memcpy(&y, b + i, 4);
            float want = dtypes[d] == L2_DTYPE_BF16 ? l2_bf16_to_f32(l2_f32_to_bf16(x)) : l2_f16_to_f32(l2_f32_to_f16(x));
            if (l2_float_bits(y) != l2_float_bits(want)) fail_msg("%s: value at byte %zu is %a, want %a", l2_dtype_name(dtypes[d]), i, (double)y, (double)want);
        }
        free(a);
        free(b);
        char *config = test_read_file(tmp_path("hf/config.json"), NULL);
        assert_non_null(strstr(config, dtypes[d] == L2_DTYPE_BF16 ? "\"torch_dtype\": \"bfloat16\"" : "\"torch_dtype\": \"float16\""));
        free(config);
        test_tmp_dir_remove(tmp_path("hf"));
        unlink(tmp_path("b.bin"));
    }
}

/* The Hugging Face folder written from stories260K computes, in the numpy
 * reference, what our engine computes on the original file. */
static void test_hf_export_matches_reference(void **state) {
    const char *model = test_require_model("stories260K.bin");
    require_reference();
    to_hf_ok(model, tmp_path("hf"), L2_DTYPE_F32, NULL);
    const int tokens[10] = {1, 403, 407, 261, 378, 432, 300, 17, 2, 511};
    int vocab;
    float *ours = engine_logits(model, tokens, 10, &vocab);
    float *ref = reference_logits(tmp_path("hf"), tokens, 10, vocab);
    assert_close_logits(ours, ref, 10, vocab, "stories260K");
    free(ours);
    free(ref);
    /* The config a Hugging Face loader needs. */
    l2_hf_config c;
    llama2_error err = {0};
    assert_int_equal(l2_hf_config_read(tmp_path("hf/config.json"), &c, &err), LLAMA2_OK);
    assert_int_equal(c.shape.n_kv_heads, 4);
    assert_int_equal(c.tie_word_embeddings, 1);
    assert_true(c.norm_eps == 1e-5f && c.rope_theta == 10000.0f);
}

/* ----------------------------------------------------------- tokenizer */

static llama2_status sentencepiece_to_bin(const char *model, const char *out, llama2_error *err) {
    return l2_convert_sentencepiece(model, out, 0, err);
}

/* Llama 2's tokenizer.model gives llama2.c's tokenizer.bin byte for byte. */
static void test_tokenizer_bytes(void **state) {
    char model[4096], bin[4096];
    snprintf(model, sizeof model, "%s", test_require_original("tokenizer.model"));
    snprintf(bin, sizeof bin, "%s", test_require_original("tokenizer.bin"));
    llama2_error err = {0};
    assert_int_equal(sentencepiece_to_bin(model, tmp_path("t.bin"), &err), LLAMA2_OK);
    assert_same_file(tmp_path("t.bin"), bin);
}

/* tokenizer.bin -> tokenizer.model -> tokenizer.bin is the same file. */
/* The shared tokenizer.bin `name` as a SentencePiece model in the
 * temporary folder's t.model. */
static void write_model_of(const char *name) {
    size_t size;
    char *bin = test_read_file(test_model_path(name), &size);
    assert_non_null(bin);
    unsigned char *proto;
    size_t len;
    llama2_error err = {0};
    assert_int_equal(l2_sp_from_llama2c(bin, size, name, &proto, &len, &err), LLAMA2_OK);
    write_bytes(tmp_path("t.model"), proto, len);
    free(proto);
    free(bin);
}

static void test_tokenizer_round_trip(void **state) {
    const char *names[2] = {"tok512.bin", "tokenizer.bin"};
    for (int i = 0; i < 2; i++) {
        test_require_model(names[i]);
        write_model_of(names[i]);
        llama2_error err = {0};
        assert_int_equal(sentencepiece_to_bin(tmp_path("t.model"), tmp_path("t.bin"), &err), LLAMA2_OK);
        assert_same_file(tmp_path("t.bin"), test_model_path(names[i]));
        /* The pieces' types, as SentencePiece needs them. */
        size_t len;
        char *proto = test_read_file(tmp_path("t.model"), &len);
        l2_sp_model sp;
        assert_int_equal(l2_sp_parse(proto, len, "t.model", &sp, &err), LLAMA2_OK);
        assert_int_equal(sp.pieces[0].type, L2_SP_UNKNOWN);
        assert_int_equal(sp.pieces[1].type, L2_SP_CONTROL);
        assert_int_equal(sp.pieces[2].type, L2_SP_CONTROL);
        assert_int_equal(sp.pieces[3].type, L2_SP_BYTE);
        assert_int_equal(sp.pieces[258].type, L2_SP_BYTE);
        assert_int_equal(sp.pieces[259].type, L2_SP_NORMAL);
        l2_sp_free(&sp);
        free(proto);
        unlink(tmp_path("t.bin"));
    }
}

/* SentencePiece itself loads the tokenizer.model written for each
 * tokenizer.bin and encodes llama2.c's sample prompts to its ids. */
static void test_tokenizer_model_loads_in_sentencepiece(void **state) {
    char script[4096], tokens[4096];
    snprintf(script, sizeof script, "%s", test_source_path("tests/sentencepiece_check.py"));
    snprintf(tokens, sizeof tokens, "%s", test_golden_path("tokens.tsv"));
    if (!have_file(script) || !have_file(tokens) || !python_has("sentencepiece")) {
        print_message("skipped: needs /usr/bin/python3 with sentencepiece (python3-sentencepiece), %s and %s\n",
                      script, tokens);
        skip();
    }
    const char *names[2] = {"tok512.bin", "tokenizer.bin"};
    for (int i = 0; i < 2; i++) {
        test_require_model(names[i]);
        write_model_of(names[i]);
        char *argv[] = {PYTHON, script, (char *)tmp_path("t.model"), tokens, (char *)names[i], NULL};
        test_run r;
        int status = test_run_program(argv, NULL, NULL, 0, &r);
        if (status != 0) fail_msg("sentencepiece_check.py %s: %s%s", names[i], r.out, r.err);
        print_message("%s", r.out);
        test_run_free(&r);
    }
}

static void test_sentencepiece_bad_input(void **state) {
    const struct {
        const char *bytes;
        size_t len;
        const char *message;
    } cases[] = {
        {"", 0, "t.model: not a SentencePiece model: no pieces"},
        {"\x0a\x05\x0a\x01", 4, "t.model: not a SentencePiece model: a length runs past the end at byte 2"},
        {"\x0a\x02\x0a\x00", 4, "t.model: piece 0 is empty"},
        {"\x0a\x03\x0a\x01" "a" "\x0a\x02\x15\x00", 9,
         "t.model: not a SentencePiece model: truncated 32-bit value at byte 8"},
        {"\x0a\x05\x0a\x01" "a" "\x18\x09", 7, "t.model: not a SentencePiece model: unknown piece type at byte 7"},
        {"\x0a\x04\x0a\x01" "a" "\x10", 6, "t.model: not a SentencePiece model: a piece field of the wrong wire type at byte 6"},
        {"\x08\x01", 2, "t.model: not a SentencePiece model: a message field of the wrong wire type at byte 1"},
        {"\x1b", 1, "t.model: not a SentencePiece model: unknown wire type (groups are not supported) at byte 1"},
        {"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", 11,
         "t.model: not a SentencePiece model: varint longer than 64 bits at byte 10"},
        {"\x00", 1, "t.model: not a SentencePiece model: bad field number at byte 1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        l2_sp_model sp;
        llama2_error err = {0};
        assert_status_message(l2_sp_parse(cases[i].bytes, cases[i].len, "t.model", &sp, &err), LLAMA2_E_FORMAT, &err,
                              cases[i].message);
    }
    /* tokenizer.bin files SentencePiece could not hold. */
    const struct {
        const char *bytes;
        size_t len;
        const char *message;
    } bins[] = {
        {"\x05\x00\x00", 3, "t.bin: too short for a tokenizer (3 bytes)"},
        {"\x05\x00\x00\x00", 4, "t.bin: tokenizer has no tokens"},
        {"\x05\x00\x00\x00\x00\x00\x00\x00\x09\x00\x00\x00<unk>", 17, "t.bin: tokenizer truncated in entry 0"},
        {"\x05\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00" "a", 13,
         "t.bin: no <unk> token: a SentencePiece model needs one"},
        {"\x05\x00\x00\x00\x00\x00\x00\x00\x05\x00\x00\x00<unk>\x00\x00\x00\x00\x00\x00\x00\x00", 25,
         "t.bin: token 1 is empty: SentencePiece cannot hold it"},
        {"\x05\x00\x00\x00\x00\x00\x00\x00\x05\x00\x00\x00<unk>\x00\x00\x00\x00\x02\x00\x00\x00 a"
         "\x00\x00\x00\x00\x04\x00\x00\x00\xe2\x96\x81" "a", 39,
         "t.bin: tokens 1 and 2 are both '\\xe2\\x96\\x81a': SentencePiece cannot hold that"},
    };
    for (size_t i = 0; i < sizeof bins / sizeof bins[0]; i++) {
        unsigned char *out;
        size_t len;
        llama2_error err = {0};
        assert_status_message(l2_sp_from_llama2c(bins[i].bytes, bins[i].len, "t.bin", &out, &len, &err),
                              LLAMA2_E_FORMAT, &err, bins[i].message);
    }
}

/* Values llama2.c hard-codes but the model changes are carried in the
 * header's extension (versions 1 and 2), and back into config.json. */
static void test_rope_theta_and_eps_carried(void **state) {
    fixture f = small_fixture(L2_DTYPE_BF16, 0, 8, 2, 1);
    f.config_key = "rope_theta";
    f.config_value = "500000.0";
    write_fixture(tmp_path("hf"), &f);
    /* rms_norm_eps 1e-6 as well: edit the written config. */
    json_error_t jerr;
    json_t *config = json_load_file(tmp_path("hf/config.json"), 0, &jerr);
    assert_non_null(config);
    json_object_set_new(config, "rms_norm_eps", json_real(1e-6));
    assert_int_equal(json_dump_file(config, tmp_path("hf/config.json"), 0), 0);
    json_decref(config);
    for (int version = 1; version <= 2; version++) {
        convert_hf_ok(tmp_path("hf"), tmp_path("m.bin"), version);
        llama2_model *m = open_model(tmp_path("m.bin"));
        assert_true(llama2_model_config(m)->rope_theta == 500000.0f);
        assert_true(llama2_model_config(m)->norm_eps == 1e-6f);
        llama2_model_close(m);
        if (version == 1) {
            to_hf_ok(tmp_path("m.bin"), tmp_path("back"), L2_DTYPE_BF16, NULL);
            l2_hf_config c;
            llama2_error err = {0};
            assert_int_equal(l2_hf_config_read(tmp_path("back/config.json"), &c, &err), LLAMA2_OK);
            assert_true(c.rope_theta == 500000.0f && c.norm_eps == 1e-6f);
            char *text = test_read_file(tmp_path("back/config.json"), NULL);
            assert_non_null(strstr(text, "\"rms_norm_eps\": 1e-6,"));
            assert_non_null(strstr(text, "\"rope_theta\": 500000.0,"));
            free(text);
            convert_hf_ok(tmp_path("back"), tmp_path("again.bin"), 1);
            assert_same_file(tmp_path("m.bin"), tmp_path("again.bin"));
        }
        unlink(tmp_path("m.bin"));
    }
    llama2_error err = {0};
    char message[8192];
    snprintf(message, sizeof message,
             "%s/config.json: rope_theta 500000 and rms_norm_eps 1e-06 differ from llama2.c's 10000 and 1e-05: a "
             "version 0 file cannot record them (use --format-version 1 or 2)",
             tmp_path("hf"));
    assert_status_message(convert_hf(tmp_path("hf"), tmp_path("m.bin"), 0, &err), LLAMA2_E_UNSUPPORTED, &err, message);
    l2_convert_options o = {0};
    o.version = 2;
    o.group_size = 5;
    snprintf(message, sizeof message, "%s: group size 5 does not divide dim 64", tmp_path("hf"));
    assert_status_message(l2_convert_hf_to_llama2c(tmp_path("hf"), tmp_path("m.bin"), &o, &err), LLAMA2_E_INVALID,
                          &err, message);
    assert_false(have_file(tmp_path("m.bin")));
}

/* ---------------------------------------------------------- bad input */

/* Converting the fixture fails with exactly `message` (with %1$s the
 * folder), and writes nothing. */
static void assert_refused(const fixture *f, int version, llama2_status status, const char *message_format) {
    clear_tmp_dir();
    write_fixture(tmp_path("hf"), f);
    char message[1024];
    snprintf(message, sizeof message, message_format, tmp_path("hf"));
    llama2_error err = {0};
    assert_status_message(convert_hf(tmp_path("hf"), tmp_path("out.bin"), version, &err), status, &err, message);
    assert_int_equal(count_files(tmp_dir), 1); /* the fixture's folder only */
}

static void test_hf_bad_tensors(void **state) {
    fixture f = small_fixture(L2_DTYPE_F32, 0, 8, 2, 0);
    fixture g = f;
    g.omit = "model.layers.1.mlp.up_proj.weight";
    assert_refused(&g, 1, LLAMA2_E_FORMAT, "%s/model.safetensors: model.layers.1.mlp.up_proj.weight is missing");
    g = f;
    g.omit = "lm_head.weight";
    assert_refused(&g, 1, LLAMA2_E_FORMAT,
                   "%s/model.safetensors: lm_head.weight is missing (config.json says tie_word_embeddings is false)");
    g = f;
    g.shards = 3;
    g.omit = "model.layers.0.self_attn.k_proj.weight";
    assert_refused(&g, 1, LLAMA2_E_FORMAT,
                   "%s/model.safetensors.index.json: model.layers.0.self_attn.k_proj.weight is missing");
    g = f;
    g.extra = "model.layers.0.self_attn.q_proj.bias";
    assert_refused(&g, 1, LLAMA2_E_UNSUPPORTED,
                   "%s/model.safetensors: model.layers.0.self_attn.q_proj.bias: attention biases are not supported");
    g = f;
    g.extra = "model.layers.1.mlp.down_proj.bias";
    assert_refused(&g, 1, LLAMA2_E_UNSUPPORTED,
                   "%s/model.safetensors: model.layers.1.mlp.down_proj.bias: MLP biases are not supported");
    g = f;
    g.extra = "model.vision_tower.weight";
    assert_refused(&g, 1, LLAMA2_E_UNSUPPORTED,
                   "%s/model.safetensors: model.vision_tower.weight: unexpected tensor: not part of a Llama model");
    g = f;
    g.extra = "model.layers.2.input_layernorm.weight";
    assert_refused(&g, 1, LLAMA2_E_UNSUPPORTED,
                   "%s/model.safetensors: model.layers.2.input_layernorm.weight: unexpected tensor: its layer "
                   "number is past num_hidden_layers");
    g = f;
    g.reshape = "model.layers.0.self_attn.k_proj.weight";
    assert_refused(&g, 1, LLAMA2_E_FORMAT,
                   "%s/model.safetensors: model.layers.0.self_attn.k_proj.weight: shape [17, 64], config.json "
                   "implies [16, 64]");
    g = f;
    g.retype = "model.norm.weight";
    assert_refused(&g, 1, LLAMA2_E_UNSUPPORTED,
                   "%s/model.safetensors: model.norm.weight: dtype I32 is not supported (F32, F16 or BF16)");
    g = f;
    g.config_key = "vocab_size";
    g.config_value = "101";
    assert_refused(&g, 1, LLAMA2_E_FORMAT,
                   "%s/model.safetensors: model.embed_tokens.weight: shape [100, 64], config.json implies [101, 64]");
    g = f;
    g.config_key = "architectures";
    g.config_value = "[\"MistralForCausalLM\"]";
    assert_refused(&g, 1, LLAMA2_E_UNSUPPORTED,
                   "%s/config.json: architecture MistralForCausalLM is not supported: only LlamaForCausalLM converts");
    g = f;
    g.config_key = "rope_theta";
    g.config_value = "500000.0";
    assert_refused(&g, 0, LLAMA2_E_UNSUPPORTED,
                   "%s/config.json: rope_theta 500000 and rms_norm_eps 1e-05 differ from llama2.c's 10000 and 1e-05: a "
                   "version 0 file cannot record them (use --format-version 1 or 2)");
    /* An old checkpoint's RoPE frequencies are not weights: ignored. */
    g = f;
    g.extra = "model.layers.1.self_attn.rotary_emb.inv_freq";
    write_fixture(tmp_path("hf2"), &g);
    convert_hf_ok(tmp_path("hf2"), tmp_path("ok.bin"), 1);
}

static void test_hf_bad_files(void **state) {
    fixture f = small_fixture(L2_DTYPE_BF16, 3, 8, 2, 1);
    char message[16384], path[8192];
    llama2_error err = {0};
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", tmp_path("hf"));

    write_fixture(dir, &f);
    write_text(tmp_path("hf/config.json"), "{\"hidden_size\": 64,\n  oops");
    snprintf(message, sizeof message,
             "%s/config.json: not valid JSON: string or '}' expected near 'oops' (line 2, column 6)", dir);
    assert_status_message(convert_hf(dir, tmp_path("out.bin"), 1, &err), LLAMA2_E_FORMAT, &err, message);
    unlink(tmp_path("hf/config.json"));
    snprintf(message, sizeof message, "%s/config.json: cannot open: No such file or directory", dir);
    assert_status_message(convert_hf(dir, tmp_path("out.bin"), 1, &err), LLAMA2_E_IO, &err, message);
    clear_tmp_dir();

    /* Shards: one missing, one cut short, one listing a tensor it lacks. */
    write_fixture(dir, &f);
    snprintf(path, sizeof path, "%s/model-00002-of-00003.safetensors", dir);
    size_t size;
    char *shard = test_read_file(path, &size);
    unlink(path);
    snprintf(message, sizeof message, "%s: cannot open: No such file or directory", path);
    assert_status_message(convert_hf(dir, tmp_path("out.bin"), 1, &err), LLAMA2_E_IO, &err, message);
    write_bytes(path, shard, size - 100);
    assert_int_equal(convert_hf(dir, tmp_path("out.bin"), 1, &err), LLAMA2_E_FORMAT);
    snprintf(message, sizeof message, "%s: ", path);
    assert_true(strncmp(err.message, message, strlen(message)) == 0);
    assert_non_null(strstr(err.message, ": truncated: its data ends at byte "));
    write_bytes(path, shard, size);
    free(shard);
    assert_int_equal(count_files(tmp_dir), 1);

    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    json_error_t jerr;
    json_t *index = json_load_file(path, 0, &jerr);
    json_t *map = json_object_get(index, "weight_map");
    json_object_set_new(map, "model.layers.0.mlp.up_proj.weight", json_string("../model-00001-of-00003.safetensors"));
    json_dump_file(index, path, 0);
    snprintf(message, sizeof message,
             "%s: model.layers.0.mlp.up_proj.weight: its file is not a file name in the folder", path);
    assert_status_message(convert_hf(dir, tmp_path("out.bin"), 1, &err), LLAMA2_E_FORMAT, &err, message);
    json_object_del(map, "model.layers.0.mlp.up_proj.weight");
    json_object_set_new(map, "model.extra.weight", json_string("model-00001-of-00003.safetensors"));
    json_dump_file(index, path, 0);
    json_decref(index);
    snprintf(message, sizeof message,
             "%s/model-00001-of-00003.safetensors: model.extra.weight: listed in model.safetensors.index.json but "
             "not in the file", dir);
    assert_status_message(convert_hf(dir, tmp_path("out.bin"), 1, &err), LLAMA2_E_FORMAT, &err, message);
    write_text(path, "{\"metadata\": {}}");
    snprintf(message, sizeof message, "%s: no weight_map object naming the files of the tensors", path);
    assert_status_message(convert_hf(dir, tmp_path("out.bin"), 1, &err), LLAMA2_E_FORMAT, &err, message);
    unlink(path);
    for (int s = 1; s <= 3; s++) {
        snprintf(path, sizeof path, "%s/model-%05d-of-00003.safetensors", dir, s);
        unlink(path);
    }
    snprintf(message, sizeof message,
             "%s: no model.safetensors or model.safetensors.index.json (only safetensors weights convert)", dir);
    assert_status_message(convert_hf(dir, tmp_path("out.bin"), 1, &err), LLAMA2_E_IO, &err, message);
    assert_int_equal(count_files(tmp_dir), 1);

    /* The same tensors in two files: a copy of the first shard, which the
     * index names for one of its tensors. */
    clear_tmp_dir();
    write_fixture(dir, &f);
    snprintf(path, sizeof path, "%s/model-00001-of-00003.safetensors", dir);
    shard = test_read_file(path, &size);
    char copy[8192];
    snprintf(copy, sizeof copy, "%s/copy.safetensors", dir);
    write_bytes(copy, shard, size);
    free(shard);
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    index = json_load_file(path, 0, &jerr);
    map = json_object_get(index, "weight_map");
    const char *name;
    json_t *file;
    json_object_foreach(map, name, file) {
        if (strcmp(json_string_value(file), "model-00001-of-00003.safetensors") == 0) {
            json_object_set_new(map, name, json_string("copy.safetensors"));
            break;
        }
    }
    json_dump_file(index, path, 0);
    json_decref(index);
    assert_int_equal(convert_hf(dir, tmp_path("out.bin"), 1, &err), LLAMA2_E_FORMAT);
    assert_non_null(strstr(err.message, ": also in "));
    assert_int_equal(count_files(tmp_dir), 1);
}

/* Outputs are refused when they exist (without force) or are an input;
 * for a Hugging Face folder, an existing output is a folder that holds
 * anything. */
static void test_outputs_protected(void **state) {
    fixture f = small_fixture(L2_DTYPE_F32, 0, 8, 2, 1);
    write_fixture(tmp_path("hf"), &f);
    write_text(tmp_path("out.bin"), "old");
    llama2_error err = {0};
    char message[1024];
    snprintf(message, sizeof message, "%s: already exists (--force replaces it)", tmp_path("out.bin"));
    assert_status_message(convert_hf(tmp_path("hf"), tmp_path("out.bin"), 1, &err), LLAMA2_E_IO, &err, message);
    char *old = test_read_file(tmp_path("out.bin"), NULL);
    assert_string_equal(old, "old");
    free(old);
    l2_convert_options o = {0};
    o.version = 1;
    o.output_flags = L2_OUTPUT_FORCE;
    assert_int_equal(l2_convert_hf_to_llama2c(tmp_path("hf"), tmp_path("out.bin"), &o, &err), LLAMA2_OK);
    assert_int_equal(count_files(tmp_dir), 2);
    snprintf(message, sizeof message, "%s: is the input file %s", tmp_path("out.bin"), tmp_path("out.bin"));
    assert_status_message(l2_convert_llama2c_version(tmp_path("out.bin"), tmp_path("out.bin"), &o, &err),
                          LLAMA2_E_IO, &err, message);
    /* A weights file of the source folder is an input too. */
    snprintf(message, sizeof message, "%s: is the input file %s", tmp_path("hf/model.safetensors"),
             tmp_path("hf/model.safetensors"));
    assert_status_message(l2_convert_hf_to_llama2c(tmp_path("hf"), tmp_path("hf/model.safetensors"), &o, &err),
                          LLAMA2_E_IO, &err, message);

    /* A Hugging Face folder that holds anything is refused without force,
     * and left as it was. */
    mkdir(tmp_path("hfout"), 0777);
    write_text(tmp_path("hfout/config.json"), "{}");
    write_text(tmp_path("hfout/notes.txt"), "notes");
    o.output_flags = 0;
    snprintf(message, sizeof message, "%s: already exists and is not empty (--force writes into it)",
             tmp_path("hfout"));
    assert_status_message(l2_convert_llama2c_to_hf(tmp_path("out.bin"), tmp_path("hfout"), &o, &err), LLAMA2_E_IO,
                          &err, message);
    assert_string_equal(test_dir_listing(tmp_path("hfout")), "config.json notes.txt");
    /* A bad input: the folder as it was, with force too; a folder made for
     * the output is gone again. */
    write_text(tmp_path("bad.bin"), "not a model");
    o.output_flags = L2_OUTPUT_FORCE;
    assert_int_equal(l2_convert_llama2c_to_hf(tmp_path("bad.bin"), tmp_path("hfout"), &o, &err), LLAMA2_E_FORMAT);
    snprintf(message, sizeof message, "%s: ", tmp_path("bad.bin"));
    assert_true(strncmp(err.message, message, strlen(message)) == 0);
    assert_string_equal(test_dir_listing(tmp_path("hfout")), "config.json notes.txt");
    assert_int_equal(l2_convert_llama2c_to_hf(tmp_path("bad.bin"), tmp_path("new"), &o, &err), LLAMA2_E_FORMAT);
    assert_false(have_file(tmp_path("new")));
    /* With force, the folder's files of those names are replaced, the
     * others kept. */
    assert_int_equal(l2_convert_llama2c_to_hf(tmp_path("out.bin"), tmp_path("hfout"), &o, &err), LLAMA2_OK);
    assert_string_equal(test_dir_listing(tmp_path("hfout")), "config.json model.safetensors notes.txt");
    char *notes = test_read_file(tmp_path("hfout/notes.txt"), NULL);
    assert_string_equal(notes, "notes");
    free(notes);
    l2_hf_config c;
    assert_int_equal(l2_hf_config_read(tmp_path("hfout/config.json"), &c, &err), LLAMA2_OK);
    /* An empty folder is no output yet: written without force. */
    mkdir(tmp_path("empty"), 0777);
    o.output_flags = 0;
    assert_int_equal(l2_convert_llama2c_to_hf(tmp_path("out.bin"), tmp_path("empty"), &o, &err), LLAMA2_OK);
    assert_string_equal(test_dir_listing(tmp_path("empty")), "config.json model.safetensors");
    /* A file where the folder should be. */
    snprintf(message, sizeof message, "%s: exists and is not a folder", tmp_path("bad.bin"));
    assert_status_message(l2_convert_llama2c_to_hf(tmp_path("out.bin"), tmp_path("bad.bin"), &o, &err),
                          LLAMA2_E_IO, &err, message);
}

/* ------------------------------------------------------------ program */

static const char *tool_path(void) { return test_require_tool("llama2-convert"); }

static int run_convert(const char *const *args, test_run *r) { return test_run_tool(tool_path(), args, r); }

/* One line on standard error, exactly `line` (with its newline). */
static void assert_one_line(const test_run *r, const char *line) {
    char want[16400];
    snprintf(want, sizeof want, "%s\n", line);
    if (strcmp(r->err, want) != 0) fail_msg("standard error\n  '%s'\nwanted\n  '%s'", r->err, want);
}

/* A tokenizer.bin of three pieces: max_token_length, then (score, length,
 * bytes) each. */
static void write_tiny_tokenizer_bin(const char *path) {
    unsigned char bytes[64];
    size_t n = 0;
    const int32_t max_len = 2;
    memcpy(bytes + n, &max_len, 4), n += 4;
    const char *pieces[] = {"a", "b", "ab"};
    for (int i = 0; i < 3; i++) {
        const float score = -(float)i;
        const int32_t len = (int32_t)strlen(pieces[i]);
        memcpy(bytes + n, &score, 4), n += 4;
        memcpy(bytes + n, &len, 4), n += 4;
        memcpy(bytes + n, pieces[i], (size_t)len), n += (size_t)len;
    }
    write_bytes(path, bytes, n);
}

/* Every kind of source by its first bytes; a legacy checkpoint (no mark)
 * by elimination, whatever its first byte. */
static void test_source_kinds(void **state) {
    fixture f = small_fixture(L2_DTYPE_F32, 2, 8, 2, 1);
    write_fixture(tmp_path("hf"), &f);
    assert_int_equal(l2_convert_source_kind(tmp_path("hf")), L2_SOURCE_HF_FOLDER);
    char shard[8192];
    snprintf(shard, sizeof shard, "%s/model-00001-of-00002.safetensors", tmp_path("hf"));
    assert_int_equal(l2_convert_source_kind(shard), L2_SOURCE_SAFETENSORS);
    write_tiny_tokenizer_bin(tmp_path("tok.bin"));
    assert_int_equal(l2_convert_source_kind(tmp_path("tok.bin")), L2_SOURCE_TOKENIZER_BIN);
    llama2_error err = {0};
    for (int version = 0; version <= 2; version++) {
        /* dim 10 and 266: a first byte of 0x0a, the tag SentencePiece starts with */
        const int dims[] = {16, 10, 266};
        for (int d = 0; d < 3; d++) {
            llama2_config c = l2_random_model_config(dims[d], 32, 1, 1, 1, 8, 8, 1, version, version == 2 ? 2 : 0);
            assert_int_equal(l2_write_random_model(tmp_path("m.bin"), &c, 1, L2_OUTPUT_FORCE, &err), LLAMA2_OK);
            assert_int_equal(l2_convert_source_kind(tmp_path("m.bin")), L2_SOURCE_LLAMA2C);
        }
    }
    assert_int_equal(l2_convert_source_kind(tmp_path("none")), L2_SOURCE_LLAMA2C);
    const char *model = test_require_original("tokenizer.model");
    assert_int_equal(l2_convert_source_kind(model), L2_SOURCE_SENTENCEPIECE);
    assert_int_equal(l2_convert_source_kind(test_require_original("tokenizer.bin")), L2_SOURCE_TOKENIZER_BIN);
}

static void test_program_usage(void **state) {
    test_require_tool("llama2-convert");
    fixture f = small_fixture(L2_DTYPE_F32, 0, 8, 2, 1);
    write_fixture(tmp_path("hf"), &f);
    char hf[4096], out[4096], model[4096];
    snprintf(hf, sizeof hf, "%s", tmp_path("hf"));
    snprintf(out, sizeof out, "%s", tmp_path("out.bin"));
    snprintf(model, sizeof model, "%s", tmp_path("m.bin"));
    llama2_config c = l2_random_model_config(64, 96, 2, 8, 2, 100, 32, 1, 1, 0);
    llama2_error err = {0};
    assert_int_equal(l2_write_random_model(model, &c, 3, 0, &err), LLAMA2_OK);
    const struct {
        const char *args[8];
        const char *line;
    } cases[] = {
        {{NULL}, "llama2-convert: missing the source and the output (try --help)"},
        {{hf, NULL}, "llama2-convert: missing the output (try --help)"},
        {{hf, out, "--version", "3", NULL},
         "llama2-convert: --version: 3 is out of range: must be an integer from 0 to 2 (try --help)"},
        {{hf, out, "--format-version", "3", NULL},
         "llama2-convert: --format-version: 3 is out of range: must be an integer from 0 to 2 (try --help)"},
        {{hf, out, "--format-version", "one", NULL},
         "llama2-convert: --format-version: the format version must be 0, 1 or 2, got 'one' (try --help)"},
        {{hf, out, "--format-version", NULL}, "llama2-convert: --format-version needs a value (try --help)"},
        {{hf, out, "--version", "-1", NULL},
         "llama2-convert: --version: -1 is out of range: must be an integer from 0 to 2 (try --help)"},
        {{hf, out, "--group-size", "0", NULL},
         "llama2-convert: --group-size: 0 is out of range: must be an integer from 1 to 2147483647 (try --help)"},
        {{hf, out, "--group-size", "8", NULL}, "llama2-convert: --group-size goes with --format-version 2 (try --help)"},
        {{model, out, "--to", "gguf", NULL}, "llama2-convert: --to: 'gguf' is not a known target (hf) (try --help)"},
        {{model, out, "--to", "hf", "--dtype", "f64", NULL},
         "llama2-convert: --dtype: 'f64' is not f32, bf16 or f16 (try --help)"},
        {{hf, out, "--to", "hf", NULL},
         "llama2-convert: --to, --tokenizer and --dtype are for a llama2.c source (try --help)"},
        {{model, out, "--dtype", "bf16", NULL}, "llama2-convert: --tokenizer and --dtype go with --to hf (try --help)"},
        {{model, out, "--tokenizer-out", "t.bin", "--version", "1", NULL},
         "llama2-convert: --tokenizer-out is for a Hugging Face folder source (try --help)"},
        {{model, out, "--to", "hf", "--version", "1", NULL},
         "llama2-convert: --format-version and --group-size are for llama2.c outputs, not --to hf (try --help)"},
        {{model, out, "--to", "hf", "--format-version", "1", NULL},
         "llama2-convert: --format-version and --group-size are for llama2.c outputs, not --to hf (try --help)"},
        {{model, out, NULL}, "llama2-convert: a llama2.c source needs --to hf or --format-version (try --help)"},
        {{hf, out, "--frobnicate", NULL}, "llama2-convert: unknown option '--frobnicate' (try --help)"},
        {{hf, out, "extra", NULL}, "llama2-convert: unexpected argument 'extra' (try --help)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        test_run r;
        assert_int_equal(run_convert(cases[i].args, &r), 2);
        assert_int_equal(r.out_len, 0);
        assert_one_line(&r, cases[i].line);
        test_run_free(&r);
    }
    assert_false(have_file(out));
    const char *help[] = {"--help", NULL};
    test_run r;
    assert_int_equal(run_convert(help, &r), 0);
    assert_non_null(strstr(r.out, "Usage: llama2-convert"));
    test_run_free(&r);
    /* --version not followed by a number: the program's version, as every
     * program says it; nothing is written. */
    const char *version[][4] = {{"--version", NULL}, {hf, out, "--version", NULL}};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(run_convert(version[i], &r), 0);
        assert_string_equal(r.out, "llama2-convert " LLAMA2_VERSION "\n");
        assert_string_equal(r.err, "");
        test_run_free(&r);
    }
    assert_false(have_file(out));
}

static void test_program_converts(void **state) {
    test_require_tool("llama2-convert");
    fixture f = small_fixture(L2_DTYPE_BF16, 2, 8, 2, 0);
    write_fixture(tmp_path("hf"), &f);
    char hf[4096], out[4096], back[4096], hf2[4096], v2[4096];
    snprintf(hf, sizeof hf, "%s", tmp_path("hf"));
    snprintf(out, sizeof out, "%s", tmp_path("out.bin"));
    snprintf(back, sizeof back, "%s", tmp_path("back.bin"));
    snprintf(hf2, sizeof hf2, "%s", tmp_path("hf2"));
    snprintf(v2, sizeof v2, "%s", tmp_path("v2.bin"));
    test_run r;
    const char *to_bin[] = {hf, out, "--version", "1", NULL};
    assert_int_equal(run_convert(to_bin, &r), 0);
    test_run_free(&r);
    /* It exists now: refused without --force, whatever the source. */
    char line[16384];
    snprintf(line, sizeof line, "llama2-convert: %s: already exists (--force replaces it)", out);
    assert_int_equal(run_convert(to_bin, &r), 1);
    assert_one_line(&r, line);
    test_run_free(&r);
    const char *forced[] = {hf, out, "--version", "1", "--force", NULL};
    assert_int_equal(run_convert(forced, &r), 0);
    test_run_free(&r);
    const char *same[] = {out, out, "--version", "2", "--force", NULL};
    snprintf(line, sizeof line, "llama2-convert: %s: is the input file %s", out, out);
    assert_int_equal(run_convert(same, &r), 1);
    assert_one_line(&r, line);
    test_run_free(&r);
    /* Back to Hugging Face in bf16 and again to llama2.c: the same file (the
     * weights were bf16 to begin with). */
    const char *to_hf[] = {out, hf2, "--to", "hf", "--dtype", "bf16", NULL};
    assert_int_equal(run_convert(to_hf, &r), 0);
    test_run_free(&r);
    const char *again[] = {hf2, back, "--version", "1", NULL};
    assert_int_equal(run_convert(again, &r), 0);
    test_run_free(&r);
    assert_same_file(out, back);
    const char *rewrite[] = {out, v2, "--format-version", "2", "--group-size", "8", NULL};
    assert_int_equal(run_convert(rewrite, &r), 0);
    test_run_free(&r);
    llama2_model *m = open_model(v2);
    assert_int_equal(llama2_model_config(m)->group_size, 8);
    llama2_model_close(m);

    /* A source is told by its first bytes: one safetensors file, or a
     * tokenizer.bin, is refused by name, exit 1, no output. */
    char shard_path[8192], tok_bin[4096], x_bin[4096];
    snprintf(shard_path, sizeof shard_path, "%s/model-00001-of-00002.safetensors", hf);
    snprintf(tok_bin, sizeof tok_bin, "%s", tmp_path("tok.bin"));
    snprintf(x_bin, sizeof x_bin, "%s", tmp_path("x.bin"));
    write_tiny_tokenizer_bin(tok_bin);
    const struct {
        const char *args[5];
        const char *why;
    } refused[] = {
        {{shard_path, x_bin, "--version", "1", NULL},
         "is one safetensors file: convert the Hugging Face folder that holds it and its config.json"},
        {{tok_bin, x_bin, NULL},
         "is a llama2.c tokenizer.bin already: convert the SentencePiece tokenizer.model it came from"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        snprintf(line, sizeof line, "llama2-convert: %s: %s", refused[i].args[0], refused[i].why);
        assert_int_equal(run_convert(refused[i].args, &r), 1);
        assert_one_line(&r, line);
        test_run_free(&r);
    }
    assert_false(have_file(x_bin));

    /* Bad input: one line naming the file and tensor, exit 1, no output. */
    char missing[4096];
    snprintf(missing, sizeof missing, "%s/none", tmp_dir);
    const char *no_source[] = {missing, tmp_path("x.bin"), NULL};
    snprintf(line, sizeof line, "llama2-convert: %s: cannot open: No such file or directory", missing);
    assert_int_equal(run_convert(no_source, &r), 1);
    assert_one_line(&r, line);
    test_run_free(&r);
    char path[8192];
    snprintf(path, sizeof path, "%s/model-00001-of-00002.safetensors", hf);
    size_t size;
    char *shard = test_read_file(path, &size);
    write_bytes(path, shard, 7);
    free(shard);
    const char *bad[] = {hf, tmp_path("new.bin"), "--tokenizer-out", tmp_path("new-tok.bin"), NULL};
    snprintf(line, sizeof line, "llama2-convert: %s: too short for a safetensors file (7 bytes)", path);
    assert_int_equal(run_convert(bad, &r), 1);
    assert_one_line(&r, line);
    test_run_free(&r);
    assert_false(have_file(tmp_path("new.bin")));
    assert_false(have_file(tmp_path("new-tok.bin")));
}

/* The folder's tokenizer.model comes along as tokenizer.bin; without one,
 * nothing is written. */
static void test_program_tokenizer(void **state) {
    test_require_tool("llama2-convert");
    char model_file[4096], bin[4096];
    snprintf(model_file, sizeof model_file, "%s", test_require_original("tokenizer.model"));
    snprintf(bin, sizeof bin, "%s", test_require_original("tokenizer.bin"));
    fixture f = small_fixture(L2_DTYPE_F32, 0, 8, 2, 1);
    f.vocab = 32000;
    write_fixture(tmp_path("hf"), &f);
    char hf[4096], out[4096], tok[4096], line[16384];
    snprintf(hf, sizeof hf, "%s", tmp_path("hf"));
    snprintf(out, sizeof out, "%s", tmp_path("out.bin"));
    snprintf(tok, sizeof tok, "%s", tmp_path("tok.bin"));
    test_run r;
    const char *args[] = {hf, out, "--tokenizer-out", tok, NULL};
    snprintf(line, sizeof line, "llama2-convert: %s/tokenizer.model: cannot open: No such file or directory", hf);
    assert_int_equal(run_convert(args, &r), 1);
    assert_one_line(&r, line);
    test_run_free(&r);
    assert_false(have_file(out));
    assert_false(have_file(tok));
    size_t size;
    char *model = test_read_file(model_file, &size);
    write_bytes(tmp_path("hf/tokenizer.model"), model, size);
    free(model);
    assert_int_equal(run_convert(args, &r), 0);
    test_run_free(&r);
    assert_same_file(tok, bin);
    /* The tokenizer written beside the checkpoint follows the same rules:
     * never over an input (the folder's tokenizer.model), over an existing
     * file only with --force; and then neither file is written. */
    char in_model[4096];
    snprintf(in_model, sizeof in_model, "%s", tmp_path("hf/tokenizer.model"));
    const char *over_input[] = {hf, tmp_path("out2.bin"), "--tokenizer-out", in_model, "--force", NULL};
    snprintf(line, sizeof line, "llama2-convert: %s: is the input file %s", in_model, in_model);
    assert_int_equal(run_convert(over_input, &r), 1);
    assert_one_line(&r, line);
    test_run_free(&r);
    const char *existing[] = {hf, tmp_path("out2.bin"), "--tokenizer-out", tok, NULL};
    snprintf(line, sizeof line, "llama2-convert: %s: already exists (--force replaces it)", tok);
    assert_int_equal(run_convert(existing, &r), 1);
    assert_one_line(&r, line);
    test_run_free(&r);
    assert_false(have_file(tmp_path("out2.bin")));
    assert_same_file(tok, bin);
    /* And alone. */
    const char *alone[] = {model_file, tmp_path("tok2.bin"), NULL};
    assert_int_equal(run_convert(alone, &r), 0);
    test_run_free(&r);
    assert_same_file(tmp_path("tok2.bin"), bin);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f16_both_ways),
        cmocka_unit_test(test_bf16_both_ways),
        cmocka_unit_test(test_qk_order),
        cmocka_unit_test(test_safetensors_reads_header),
        cmocka_unit_test(test_safetensors_bad_headers),
        cmocka_unit_test(test_config_reads_llama),
        cmocka_unit_test(test_config_refusals),
        cmocka_unit_test_setup(test_source_kinds, test_setup),
        cmocka_unit_test_setup(test_hf_fixtures_convert, test_setup),
        cmocka_unit_test_setup(test_hf_fixtures_match_reference, test_setup),
        cmocka_unit_test_setup(test_hf_llama3_fixture, test_setup),
        cmocka_unit_test_setup(test_hf_llama3_llama_cpp, test_setup),
        cmocka_unit_test_setup(test_round_trip_fp32, test_setup),
        cmocka_unit_test_setup(test_round_trip_stories260K, test_setup),
        cmocka_unit_test_setup(test_stories260K_as_llama2c_exports, test_setup),
        cmocka_unit_test_setup(test_round_trip_16bit, test_setup),
        cmocka_unit_test_setup(test_hf_export_matches_reference, test_setup),
        cmocka_unit_test_setup(test_tokenizer_bytes, test_setup),
        cmocka_unit_test_setup(test_tokenizer_round_trip, test_setup),
        cmocka_unit_test_setup(test_tokenizer_model_loads_in_sentencepiece, test_setup),
        cmocka_unit_test(test_sentencepiece_bad_input),
        cmocka_unit_test_setup(test_rope_theta_and_eps_carried, test_setup),
        cmocka_unit_test_setup(test_hf_bad_tensors, test_setup),
        cmocka_unit_test_setup(test_hf_bad_files, test_setup),
        cmocka_unit_test_setup(test_outputs_protected, test_setup),
        cmocka_unit_test_setup(test_program_usage, test_setup),
        cmocka_unit_test_setup(test_program_converts, test_setup),
        cmocka_unit_test_setup(test_program_tokenizer, test_setup),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
