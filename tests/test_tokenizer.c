/*
 * Tokenizer and text filter tests: llama2.c's encoder outputs
 * (goldens/tokens.tsv), an independent reference encoder written the way
 * llama2.c's encode() works, the heap merge against the naive one, decoding
 * rules, broken tokenizer files and speed on large inputs.
 *
 * The data: tok512.bin and tokenizer.bin from the models folder (a test
 * that needs an absent one is skipped by name) and tests/golden/tokens.tsv.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llama2.h"
#include "support.h"
#include "text/tokenizer_internal.h"

/* ------------------------------------------------------------ helpers */

/* Encoding 1 MB must take well under this; sanitizers slow every memory
 * access several times over. */
#define ENCODE_SECONDS_LIMIT (SANITIZED ? 5.0 : 1.0)

/* The whole file; fails the test when it cannot be read. */
static unsigned char *read_whole(const char *path, size_t *size) {
    unsigned char *data = (unsigned char *)test_read_file(path, size);
    if (!data) fail_msg("cannot read %s", path);
    return data;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15u;

static uint32_t rng_below(uint32_t n) { return test_rng_next(&rng_state) % n; }

/* A tokenizer file assembled in memory. */
typedef struct file_builder {
    unsigned char *data;
    size_t size;
    int count;
} file_builder;

static void put_bytes(file_builder *b, const void *p, size_t n) {
    b->data = realloc(b->data, b->size + n + 1);
    assert_non_null(b->data);
    memcpy(b->data + b->size, p, n);
    b->size += n;
}

static void put_header(file_builder *b, int32_t max_token_length) {
    put_bytes(b, &max_token_length, sizeof max_token_length);
}

static void put_entry(file_builder *b, float score, const char *piece, int32_t len) {
    put_bytes(b, &score, sizeof score);
    put_bytes(b, &len, sizeof len);
    put_bytes(b, piece, (size_t)len);
    b->count++;
}

static void put_piece(file_builder *b, float score, const char *piece) {
    put_entry(b, score, piece, (int32_t)strlen(piece));
}

/* <unk>, BOS, EOS and the 256 byte tokens, as real vocabularies start. */
static void put_standard_start(file_builder *b) {
    put_header(b, 16);
    put_piece(b, 0, "<unk>");
    put_piece(b, 0, "\n<s>\n");
    put_piece(b, 0, "\n</s>\n");
    for (int i = 0; i < 256; i++) {
        char piece[8];
        snprintf(piece, sizeof piece, "<0x%02X>", i);
        put_piece(b, 0, piece);
    }
}

/* <unk>, BOS and EOS alone: no byte tokens, no " " piece. */
static void put_special_start(file_builder *b) {
    put_header(b, 4);
    put_piece(b, 0, "<unk>");
    put_piece(b, 0, "<s>");
    put_piece(b, 0, "</s>");
}

static llama2_tokenizer *open_built(const file_builder *b) {
    llama2_tokenizer *t = NULL;
    llama2_error err = {0};
    if (llama2_tokenizer_from_memory(b->data, b->size, b->count, &t, &err) != LLAMA2_OK)
        fail_msg("built tokenizer refused: %s", err.message);
    return t;
}

/* ------------------------------------------- reference encoder (llama2.c) */

/* A vocabulary held the way llama2.c holds it: C strings, looked up by binary
 * search in a copy sorted with strcmp (ties by id, so the lowest id wins). */
typedef struct ref_vocab {
    int n;
    char **str;
    float *score;
    int *sorted;
    size_t max_len;
} ref_vocab;

static const ref_vocab *sort_vocab;

static int compare_ids(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    int c = strcmp(sort_vocab->str[x], sort_vocab->str[y]);
    return c ? c : (x > y) - (x < y);
}

static void ref_load(ref_vocab *v, const unsigned char *data, size_t size, int n) {
    size_t pos = 4;
    v->n = n;
    v->str = calloc((size_t)n, sizeof *v->str);
    v->score = calloc((size_t)n, sizeof *v->score);
    v->sorted = calloc((size_t)n, sizeof *v->sorted);
    v->max_len = 0;
    assert_true(v->str && v->score && v->sorted);
    for (int i = 0; i < n; i++) {
        int32_t len;
        assert_true(pos + 8 <= size);
        memcpy(&v->score[i], data + pos, 4);
        memcpy(&len, data + pos + 4, 4);
        assert_true(len >= 0 && pos + 8 + (size_t)len <= size);
        v->str[i] = calloc((size_t)len + 1, 1);
        assert_non_null(v->str[i]);
        memcpy(v->str[i], data + pos + 8, (size_t)len);
        if ((size_t)len > v->max_len) v->max_len = (size_t)len;
        v->sorted[i] = i;
        pos += 8 + (size_t)len;
    }
    sort_vocab = v;
    qsort(v->sorted, (size_t)n, sizeof *v->sorted, compare_ids);
}

static void ref_free(ref_vocab *v) {
    for (int i = 0; i < v->n; i++) free(v->str[i]);
    free(v->str);
    free(v->score);
    free(v->sorted);
}

static int ref_lookup(const ref_vocab *v, const char *s) {
    int lo = 0, hi = v->n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (strcmp(v->str[v->sorted[mid]], s) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < v->n && strcmp(v->str[v->sorted[lo]], s) == 0 ? v->sorted[lo] : -1;
}

/* llama2.c's encode(), step by step, with its O(n^2) merge loop. */
static int ref_encode(const ref_vocab *v, const char *text, int bos, int eos, int *ids) {
    char *buf = malloc(v->max_len * 2 + 8);
    assert_non_null(buf);
    int n = 0;
    size_t len = 0;
    if (bos) ids[n++] = 1;
    if (text[0] != '\0') ids[n++] = ref_lookup(v, " ");
    for (const char *c = text; *c != '\0'; c++) {
        if ((*c & 0xC0) != 0x80) len = 0;
        buf[len++] = *c;
        buf[len] = '\0';
        if ((c[1] & 0xC0) == 0x80 && len < 4) continue;
        int id = ref_lookup(v, buf);
        if (id != -1) {
            ids[n++] = id;
        } else {
            for (size_t i = 0; i < len; i++) ids[n++] = (unsigned char)buf[i] + 3;
        }
        len = 0;
    }
    for (;;) {
        float best_score = -1e10f;
        int best_id = -1, best_i = -1;
        for (int i = 0; i + 1 < n; i++) {
            strcpy(buf, v->str[ids[i]]);
            strcat(buf, v->str[ids[i + 1]]);
            int id = ref_lookup(v, buf);
            if (id != -1 && v->score[id] > best_score) {
                best_score = v->score[id];
                best_id = id;
                best_i = i;
            }
        }
        if (best_i == -1) break;
        ids[best_i] = best_id;
        for (int i = best_i + 1; i < n - 1; i++) ids[i] = ids[i + 1];
        n--;
    }
    if (eos) ids[n++] = 2;
    free(buf);
    return n;
}

/* ------------------------------------------------------------ fixture */

typedef struct fixture {
    llama2_tokenizer *tok512, *tok32k;
    ref_vocab ref512, ref32k;
} fixture;

/* Loads a tokenizer of the models folder, if it is there (the tests that
 * need it skip otherwise); -1 when it is there and does not load. */
static int load_one(const char *name, int vocab_size, llama2_tokenizer **t, ref_vocab *ref) {
    if (!test_have_model(name)) return 0;
    const char *path = test_model_path(name);
    llama2_error err = {0};
    if (llama2_tokenizer_open(path, vocab_size, t, &err) != LLAMA2_OK) {
        print_error("cannot load %s: %s\n", path, err.message);
        return -1;
    }
    size_t size;
    unsigned char *data = read_whole(path, &size);
    ref_load(ref, data, size, vocab_size);
    free(data);
    return 0;
}

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    if (!f) return -1;
    *state = f;
    if (load_one("tok512.bin", 512, &f->tok512, &f->ref512) != 0) return -1;
    return load_one("tokenizer.bin", 32000, &f->tok32k, &f->ref32k);
}

/* The fixture, once the tokenizers a test uses are there: skips the test
 * by name otherwise. */
static fixture *need(void **state, int tok512, int tok32k) {
    if (tok512) test_require_model("tok512.bin");
    if (tok32k) test_require_model("tokenizer.bin");
    return *state;
}

static int teardown(void **state) {
    fixture *f = *state;
    if (!f) return 0;
    llama2_tokenizer_close(f->tok512);
    llama2_tokenizer_close(f->tok32k);
    if (f->ref512.str) ref_free(&f->ref512);
    if (f->ref32k.str) ref_free(&f->ref32k);
    free(f);
    return 0;
}

static int encode(const llama2_tokenizer *t, const char *text, int bos, int eos, int *ids) {
    int n = -1;
    llama2_error err = {0};
    if (llama2_tokenize(t, text, bos, eos, ids, &n, &err) != LLAMA2_OK) fail_msg("tokenize: %s", err.message);
    return n;
}

static int *alloc_ids(size_t text_len) {
    int *ids = malloc(llama2_tokenize_capacity(text_len) * sizeof *ids);
    assert_non_null(ids);
    return ids;
}

/* ------------------------------------------------------------ goldens */

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    fail_msg("bad hex digit '%c' in tokens.tsv", c);
    return 0;
}

/* Splits a line at tabs into at most max fields; returns the count. */
static int split_tabs(char *line, char **fields, int max) {
    int n = 0;
    fields[n++] = line;
    for (char *p = line; *p && n < max; p++)
        if (*p == '\t') {
            *p = '\0';
            fields[n++] = p + 1;
        }
    return n;
}

static void test_golden_rows(void **state) {
    fixture *f = need(state, 1, 1);
    const char *path = test_golden_path("tokens.tsv");
    char *table = test_read_file(path, NULL);
    if (!table) fail_msg("cannot open %s", path);
    int rows = 0;
    char *line = strchr(table, '\n'); /* after the column names */
    assert_non_null(line);
    for (char *next; *++line; line = next) {
        next = line + strcspn(line, "\n");
        if (*next) *next = '\0';
        else next--; /* the last line, without its newline */
        char *col[7];
        if (split_tabs(line, col, 7) != 7) fail_msg("tokens.tsv row %d has too few columns", rows + 1);
        const llama2_tokenizer *t = strcmp(col[0], "tok512.bin") == 0 ? f->tok512 : f->tok32k;
        if (strcmp(col[0], "tok512.bin") != 0) assert_string_equal(col[0], "tokenizer.bin");
        size_t hex_len = strlen(col[5]);
        assert_int_equal(hex_len % 2, 0);
        char *text = calloc(hex_len / 2 + 1, 1);
        assert_non_null(text);
        for (size_t i = 0; i < hex_len / 2; i++)
            text[i] = (char)(hex_digit(col[5][2 * i]) * 16 + hex_digit(col[5][2 * i + 1]));
        int want[1024], n_want = 0;
        for (char *p = col[4], *end; *p; p = end) {
            long v = strtol(p, &end, 10);
            if (end == p) break;
            assert_true(n_want < 1024);
            want[n_want++] = (int)v;
        }
        int *ids = alloc_ids(hex_len / 2);
        int n = encode(t, text, atoi(col[1]), atoi(col[2]), ids);
        if (n != n_want || memcmp(ids, want, (size_t)n * sizeof *ids) != 0)
            fail_msg("%s %s bos=%s eos=%s: got %d ids, want %d", col[0], col[6], col[1], col[2], n, n_want);
        free(ids);
        free(text);
        rows++;
    }
    free(table);
    assert_true(rows >= 80);
}

/* ------------------------------------------------------------ decoding */

static void expect_piece(const llama2_tokenizer *t, int prev, int token, const char *want, size_t want_len) {
    size_t len = 12345;
    const char *p = llama2_token_piece(t, prev, token, &len);
    assert_non_null(p);
    assert_int_equal(len, want_len);
    assert_memory_equal(p, want, want_len);
}

static void test_decode_rules(void **state) {
    fixture *f = need(state, 1, 1);
    const llama2_tokenizer *t = f->tok512;
    /* tok512 id 259 is " t": the space goes after BOS only. */
    expect_piece(t, 0, 259, " t", 2);
    expect_piece(t, 1, 259, "t", 1);
    expect_piece(t, 2, 259, " t", 2);
    expect_piece(t, 0, 0x0A + 3, "\n", 1);
    expect_piece(t, 1, 0x0A + 3, "\n", 1);
    expect_piece(t, 0, 0x00 + 3, "\0", 1);
    expect_piece(t, 0, 0xFF + 3, "\xFF", 1);
    expect_piece(t, 0, 1, "\n<s>\n", 5);
    expect_piece(f->tok32k, 1, 9038, "Once", 4);
    expect_piece(f->tok32k, 0, 9038, " Once", 5);
    const int outside[] = {-1, -1000, 512, 513, 1 << 30};
    for (size_t i = 0; i < sizeof outside / sizeof outside[0]; i++) expect_piece(t, 0, outside[i], "", 0);
    expect_piece(NULL, 0, 5, "", 0);

    /* Byte pieces: two hex digits of either case, nothing more or less;
     * after BOS the space is dropped first, as llama2.c's decode() does. */
    file_builder b = {0};
    put_header(&b, 8);
    put_piece(&b, 0, "<unk>");
    put_piece(&b, 0, "<s>");
    put_piece(&b, 0, "</s>");
    put_piece(&b, 0, "<0xab>");  /* 3 */
    put_piece(&b, 0, "<0xAG>");  /* 4 */
    put_piece(&b, 0, "<0x4>");   /* 5 */
    put_piece(&b, 0, "<0x41>x"); /* 6 */
    put_piece(&b, 0, " <0x41>"); /* 7 */
    put_piece(&b, 0, "");        /* 8 */
    put_entry(&b, 0, "ab\0cd", 5); /* 9: a C string, as in llama2.c */
    put_piece(&b, 0, " ");       /* 10 */
    llama2_tokenizer *m = open_built(&b);
    expect_piece(m, 0, 3, "\xAB", 1);
    expect_piece(m, 0, 4, "<0xAG>", 6);
    expect_piece(m, 0, 5, "<0x4>", 5);
    expect_piece(m, 0, 6, "<0x41>x", 7);
    expect_piece(m, 0, 7, " <0x41>", 7);
    expect_piece(m, 1, 7, "A", 1);
    expect_piece(m, 0, 8, "", 0);
    expect_piece(m, 1, 8, "", 0);
    expect_piece(m, 0, 9, "ab", 2);
    expect_piece(m, 1, 10, "", 0);
    /* The decoded piece stays valid after the caller's buffer is gone. */
    free(b.data);
    expect_piece(m, 0, 6, "<0x41>x", 7);
    llama2_tokenizer_close(m);
}

/* ------------------------------------------------------ encoding rules */

static void test_encode_api(void **state) {
    fixture *f = need(state, 1, 1);
    llama2_error err = {0};
    int ids[16], n = -1;
    assert_int_equal(llama2_tokenize_capacity(0), 3);
    assert_int_equal(llama2_tokenize_capacity(100), 103);
    assert_int_equal(llama2_tokenize(f->tok512, NULL, 1, 1, ids, &n, &err), LLAMA2_E_INVALID);
    assert_true(err.message[0] != '\0');
    assert_int_equal(llama2_tokenize(NULL, "a", 1, 1, ids, &n, &err), LLAMA2_E_INVALID);
    assert_int_equal(encode(f->tok512, "", 0, 0, ids), 0);
    assert_int_equal(encode(f->tok512, "", 1, 1, ids), 2);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], 2);
    assert_int_equal(llama2_tokenizer_vocab_size(f->tok512), 512);
    assert_int_equal(llama2_tokenizer_vocab_size(f->tok32k), 32000);
    assert_int_equal(llama2_tokenizer_vocab_size(NULL), 0);
}

static void test_open(void **state) {
    need(state, 1, 1);
    llama2_tokenizer *t = NULL;
    llama2_error err = {0};
    /* vocab_size 0 reads every entry; a smaller one reads a prefix. */
    assert_int_equal(llama2_tokenizer_open(test_model_path("tokenizer.bin"), 0, &t, &err), LLAMA2_OK);
    assert_int_equal(llama2_tokenizer_vocab_size(t), 32000);
    llama2_tokenizer_close(t);
    assert_int_equal(llama2_tokenizer_open(test_model_path("tokenizer.bin"), 512, &t, &err), LLAMA2_OK);
    assert_int_equal(llama2_tokenizer_vocab_size(t), 512);
    llama2_tokenizer_close(t);
    t = NULL;
    assert_int_equal(llama2_tokenizer_open(test_model_path("tok512.bin"), 32000, &t, &err), LLAMA2_E_FORMAT);
    assert_null(t);
    assert_string_equal(err.message, "tokenizer has 512 tokens, the model needs 32000");
    assert_int_equal(llama2_tokenizer_open(test_model_path("tok512.bin"), -1, &t, &err), LLAMA2_E_INVALID);

    const char *missing = "/nonexistent-dir/missing-tokenizer.bin";
    assert_int_equal(llama2_tokenizer_open(missing, 512, &t, &err), LLAMA2_E_IO);
    assert_int_equal(err.status, LLAMA2_E_IO);
    assert_true(strncmp(err.message, "cannot open: ", 13) == 0);
    assert_null(strstr(err.message, "missing-tokenizer"));
    assert_int_equal(llama2_tokenizer_open(test_models_dir(), 0, &t, &err), LLAMA2_E_IO); /* a directory */
    assert_null(t);
}

/* Missing " " and missing byte tokens: the fallbacks and the errors. */
static void test_small_vocabularies(void **state) {
    (void)state;
    int ids[32];
    llama2_error err = {0};
    int n;

    /* No " " piece: the dummy prefix is the byte token for a space. */
    file_builder b = {0};
    put_standard_start(&b);
    put_piece(&b, -1, "a");  /* 259 */
    put_piece(&b, -2, "aa"); /* 260 */
    llama2_tokenizer *t = open_built(&b);
    n = encode(t, "aaa", 1, 0, ids);
    assert_int_equal(n, 4);
    const int want[] = {1, ' ' + 3, 260, 259};
    assert_memory_equal(ids, want, sizeof want);
    llama2_tokenizer_close(t);
    free(b.data);

    /* Neither " " nor byte tokens: the text cannot be encoded. */
    b = (file_builder){0};
    put_special_start(&b);
    put_piece(&b, 0, "a");
    t = open_built(&b);
    assert_int_equal(llama2_tokenize(t, "a", 1, 0, ids, &n, &err), LLAMA2_E_FORMAT);
    assert_true(err.message[0] != '\0');
    assert_int_equal(encode(t, "", 1, 1, ids), 2);
    llama2_tokenizer_close(t);
    free(b.data);

    /* A " " piece but no byte tokens for a character it lacks. */
    b = (file_builder){0};
    put_special_start(&b);
    put_piece(&b, 0, " ");
    put_piece(&b, 0, "a");
    t = open_built(&b);
    assert_int_equal(encode(t, "a", 0, 0, ids), 2);
    err.message[0] = '\0';
    assert_int_equal(llama2_tokenize(t, "ab", 1, 0, ids, &n, &err), LLAMA2_E_FORMAT);
    assert_non_null(strstr(err.message, "byte tokens"));
    llama2_tokenizer_close(t);
    free(b.data);

    /* Too few ids for BOS and EOS. */
    b = (file_builder){0};
    put_header(&b, 4);
    put_piece(&b, 0, " ");
    t = open_built(&b);
    assert_int_equal(encode(t, "", 0, 0, ids), 0);
    assert_int_equal(llama2_tokenize(t, "", 1, 0, ids, &n, &err), LLAMA2_E_FORMAT);
    assert_int_equal(llama2_tokenize(t, "", 0, 1, ids, &n, &err), LLAMA2_E_FORMAT);
    llama2_tokenizer_close(t);
    free(b.data);
}

/* ---------------------------------------- equivalence on random inputs */

/* Random text: vocabulary pieces, spaces and random bytes (often invalid
 * UTF-8), never a NUL. */
static char *random_text(const ref_vocab *v, size_t target) {
    char *s = malloc(target + v->max_len + 8);
    assert_non_null(s);
    size_t n = 0;
    while (n < target) {
        uint32_t kind = rng_below(10);
        if (kind < 6) {
            const char *p = v->str[rng_below((uint32_t)v->n)];
            size_t len = strlen(p);
            memcpy(s + n, p, len);
            n += len;
        } else if (kind < 8) {
            s[n++] = ' ';
        } else {
            s[n++] = (char)(1 + rng_below(255));
        }
    }
    s[n] = '\0';
    return s;
}

static void check_against_reference(const llama2_tokenizer *t, const ref_vocab *v, int rounds, size_t max_len) {
    for (int r = 0; r < rounds; r++) {
        char *text = random_text(v, rng_below((uint32_t)max_len + 1));
        size_t len = strlen(text);
        int bos = (int)rng_below(2), eos = (int)rng_below(2);
        int *got = alloc_ids(len), *want = alloc_ids(len);
        int n_got = encode(t, text, bos, eos, got);
        int n_want = ref_encode(v, text, bos, eos, want);
        if (n_got != n_want || memcmp(got, want, (size_t)n_got * sizeof *got) != 0)
            fail_msg("round %d: %zu bytes encode to %d ids, the reference gives %d", r, len, n_got, n_want);
        free(got);
        free(want);
        free(text);
    }
}

/* Random id sequences, biased towards short pieces so that many merge. */
static void check_merges(const llama2_tokenizer *t, const ref_vocab *v, int rounds, int max_n) {
    int *short_ids = malloc((size_t)v->n * sizeof *short_ids), n_short = 0;
    int *a = malloc((size_t)max_n * sizeof *a), *b = malloc((size_t)max_n * sizeof *b);
    assert_true(short_ids && a && b);
    for (int i = 0; i < v->n; i++)
        if (strlen(v->str[i]) <= 2) short_ids[n_short++] = i;
    for (int r = 0; r < rounds; r++) {
        int n = (int)rng_below((uint32_t)max_n + 1);
        for (int i = 0; i < n; i++)
            a[i] = n_short && rng_below(10) < 8 ? short_ids[rng_below((uint32_t)n_short)]
                                               : (int)rng_below((uint32_t)v->n);
        memcpy(b, a, (size_t)n * sizeof *a);
        int n_naive = l2_tokenizer_merge_naive(t, a, n);
        int n_fast = l2_tokenizer_merge_fast(t, b, n);
        if (n_naive != n_fast || memcmp(a, b, (size_t)n_fast * sizeof *a) != 0)
            fail_msg("round %d: %d ids merge to %d (naive) and %d (heap)", r, n, n_naive, n_fast);
    }
    free(short_ids);
    free(a);
    free(b);
}

static void test_random_tok512(void **state) {
    fixture *f = need(state, 1, 0);
    check_against_reference(f->tok512, &f->ref512, 400, 300);
    check_merges(f->tok512, &f->ref512, 400, 300);
}

static void test_random_tok32k(void **state) {
    fixture *f = need(state, 0, 1);
    check_against_reference(f->tok32k, &f->ref32k, 300, 300);
    check_merges(f->tok32k, &f->ref32k, 300, 300);
}

/* A hostile vocabulary: every string over {a, b, space} up to four long with
 * scores from a tiny set (ties everywhere, -0.0 tying with 0, infinity), the
 * -1e10 floor itself (never merged), a NaN, an empty piece, a piece cut short
 * by a NUL, duplicates. */
static void test_random_hostile(void **state) {
    (void)state;
    file_builder b = {0};
    put_standard_start(&b);
    const char alphabet[] = "ab ";
    for (int len = 1; len <= 4; len++) {
        int combos = 1;
        for (int i = 0; i < len; i++) combos *= 3;
        for (int c = 0; c < combos; c++) {
            char piece[5];
            for (int i = 0, x = c; i < len; i++, x /= 3) piece[i] = alphabet[x % 3];
            piece[len] = '\0';
            static const float scores[] = {-1, 0, -0.0f, 1, 2, -1e10f, -2e10f, HUGE_VALF};
            put_piece(&b, scores[rng_below(sizeof scores / sizeof scores[0])], piece);
        }
    }
    put_piece(&b, 5, "");
    float nan_score;
    uint32_t nan_bits = 0x7FC00000u;
    memcpy(&nan_score, &nan_bits, sizeof nan_score);
    put_piece(&b, nan_score, "bbba");
    put_entry(&b, 9, "ab\0b", 4);
    put_piece(&b, 3, "ba");
    put_piece(&b, 1, "\xC3\xA9");
    put_piece(&b, 1, "a\xC3\xA9");

    llama2_tokenizer *t = open_built(&b);
    ref_vocab v;
    ref_load(&v, b.data, b.size, b.count);
    for (int r = 0; r < 600; r++) {
        size_t len = rng_below(120);
        char text[128];
        for (size_t i = 0; i < len; i++) {
            static const char *chars[] = {"a", "b", " ", "c", "\xC3\xA9", "\x80", "\xF0\x9F\x98\x8A"};
            const char *c = chars[rng_below(sizeof chars / sizeof chars[0])];
            if (i + strlen(c) > len) c = "a";
            memcpy(text + i, c, strlen(c));
            i += strlen(c) - 1;
        }
        text[len] = '\0';
        int got[160], want[160];
        int eos = (int)rng_below(2);
        int n_got = encode(t, text, 1, eos, got);
        int n_want = ref_encode(&v, text, 1, eos, want);
        if (n_got != n_want || memcmp(got, want, (size_t)n_got * sizeof *got) != 0)
            fail_msg("hostile round %d: '%s' gives %d ids, the reference %d", r, text, n_got, n_want);
    }
    check_merges(t, &v, 600, 200);
    ref_free(&v);
    llama2_tokenizer_close(t);
    free(b.data);
}

/* ------------------------------------------------------------ speed */

static void test_large_input(void **state) {
    fixture *f = need(state, 1, 1);
    const size_t size = 1 << 20;
    int *ids = alloc_ids(size);
    const llama2_tokenizer *toks[] = {f->tok512, f->tok32k};
    const ref_vocab *refs[] = {&f->ref512, &f->ref32k};
    for (int k = 0; k < 2; k++) {
        /* Text made of pieces merges a lot; random bytes hardly at all. */
        char *text = random_text(refs[k], size);
        char *noise = malloc(size + 1);
        assert_non_null(noise);
        for (size_t i = 0; i < size; i++) noise[i] = (char)(1 + rng_below(255));
        noise[size] = '\0';
        const char *inputs[] = {text, noise};
        for (int i = 0; i < 2; i++) {
            double start = test_cpu_seconds(); /* CPU time: other programs do not count */
            int n = encode(toks[k], inputs[i], 1, 1, ids);
            double seconds = test_cpu_seconds() - start;
            assert_true(n > 2 && (size_t)n <= llama2_tokenize_capacity(strlen(inputs[i])));
            print_message("1 MB (%s) with %d tokens: %d ids in %.3f s\n", i ? "random bytes" : "pieces",
                          llama2_tokenizer_vocab_size(toks[k]), n, seconds);
            assert_true(seconds < ENCODE_SECONDS_LIMIT);
        }
        free(noise);
        free(text);
    }
    free(ids);
}

/* ------------------------------------------------------ broken files */

static void expect_refused(const void *data, size_t size, int vocab_size, const char *what) {
    llama2_tokenizer *t = NULL;
    llama2_error err = {0};
    llama2_status st = llama2_tokenizer_from_memory(data, size, vocab_size, &t, &err);
    if (st != LLAMA2_E_FORMAT) fail_msg("%s: status %d, want LLAMA2_E_FORMAT", what, (int)st);
    assert_null(t);
    assert_int_equal(err.status, LLAMA2_E_FORMAT);
    assert_true(err.message[0] != '\0');
    assert_null(strchr(err.message, '\n'));
}

static void test_broken_files(void **state) {
    (void)state;
    file_builder b = {0};
    put_header(&b, 8);
    put_piece(&b, 0, "<unk>");
    put_piece(&b, 0, "<s>");
    put_piece(&b, 0, "</s>");
    put_piece(&b, -1, " ");
    put_piece(&b, -2, "hello");
    size_t *starts = calloc((size_t)b.count + 1, sizeof *starts);
    assert_non_null(starts);
    for (int i = 0, pos = 4; i <= b.count; i++) {
        starts[i] = (size_t)pos; /* starts[count]: the end of the file */
        if (i < b.count) {
            int32_t len;
            memcpy(&len, b.data + pos + 4, 4);
            pos += 8 + len;
        }
    }

    expect_refused(NULL, 0, 5, "no data");
    expect_refused("", 0, 5, "empty");
    expect_refused("", 0, 0, "empty, any size");
    expect_refused(b.data, 3, 5, "short header");
    expect_refused(b.data, 4, 5, "header only");
    expect_refused(b.data, 4, 0, "header only, any size");
    expect_refused(b.data, b.size, b.count + 1, "fewer tokens than asked");

    /* Cut at every offset: refused when the entries asked for do not all fit;
     * with vocab_size 0 a cut between entries is a shorter, valid file. */
    for (size_t cut = 0; cut < b.size; cut++) {
        char what[64];
        snprintf(what, sizeof what, "cut at %zu", cut);
        expect_refused(b.data, cut, b.count, what);
        int boundary = 0;
        for (int i = 1; i <= b.count; i++) boundary |= starts[i] == cut;
        if (!boundary) {
            expect_refused(b.data, cut, 0, what);
        } else {
            llama2_tokenizer *t = NULL;
            llama2_error err = {0};
            assert_int_equal(llama2_tokenizer_from_memory(b.data, cut, 0, &t, &err), LLAMA2_OK);
            llama2_tokenizer_close(t);
        }
    }

    unsigned char *bad = malloc(b.size);
    assert_non_null(bad);
    const int32_t bad_headers[] = {0, -1, INT32_MIN};
    for (size_t i = 0; i < sizeof bad_headers / sizeof bad_headers[0]; i++) {
        memcpy(bad, b.data, b.size);
        memcpy(bad, &bad_headers[i], 4);
        expect_refused(bad, b.size, b.count, "max_token_length <= 0");
    }
    const int32_t bad_lengths[] = {-1, INT32_MIN, INT32_MAX, 6, 1 << 30};
    for (int entry = 0; entry < b.count; entry++) {
        for (size_t i = 0; i < sizeof bad_lengths / sizeof bad_lengths[0]; i++) {
            int32_t len = bad_lengths[i];
            memcpy(bad, b.data, b.size);
            memcpy(bad + starts[entry] + 4, &len, 4);
            /* A longer length is fine when the bytes after it happen to be enough. */
            if (len >= 0 && starts[entry] + 8 + (size_t)len <= b.size) continue;
            expect_refused(bad, b.size, b.count, "bad length");
            expect_refused(bad, b.size, 0, "bad length, any size");
        }
    }
    llama2_error err = {0};
    llama2_tokenizer *t = NULL;
    memcpy(bad, b.data, b.size);
    int32_t negative = -7;
    memcpy(bad + starts[2] + 4, &negative, 4);
    llama2_tokenizer_from_memory(bad, b.size, b.count, &t, &err);
    assert_non_null(strstr(err.message, "negative"));
    llama2_tokenizer_from_memory(b.data, starts[3] + 8, b.count, &t, &err);
    assert_string_equal(err.message, "tokenizer truncated: entry 3 of 5 needs 9 bytes, 8 left");
    free(bad);
    free(starts);
    free(b.data);
}

/* The real tok512.bin cut at every offset. */
static void test_tok512_cut_everywhere(void **state) {
    need(state, 1, 0);
    size_t size;
    unsigned char *data = read_whole(test_model_path("tok512.bin"), &size);
    for (size_t cut = 0; cut < size; cut++) {
        char what[64];
        snprintf(what, sizeof what, "tok512.bin cut at %zu", cut);
        expect_refused(data, cut, 512, what);
    }
    free(data);
}

/* ------------------------------------------------------------ text filter */

/* Runs bytes through a fresh filter one push per piece; checks the n + 4
 * bound on each push. Returns the output length. */
static size_t filter_pieces(const char *const *pieces, size_t n_pieces, char *out) {
    llama2_text_filter f;
    llama2_text_filter_init(&f);
    size_t total = 0;
    for (size_t i = 0; i < n_pieces; i++) {
        size_t n = strlen(pieces[i]);
        size_t w = llama2_text_filter_push(&f, pieces[i], n, out + total);
        assert_true(w <= n + 4);
        total += w;
    }
    out[total] = '\0';
    return total;
}

static void expect_filtered(const char *const *pieces, size_t n_pieces, const char *want) {
    char out[256];
    filter_pieces(pieces, n_pieces, out);
    assert_string_equal(out, want);
}

#define EXPECT_FILTERED(want, ...)                                                                            \
    do {                                                                                                      \
        const char *const pieces_[] = {__VA_ARGS__};                                                          \
        expect_filtered(pieces_, sizeof pieces_ / sizeof pieces_[0], want);                                   \
    } while (0)

/* Pieces decoded from byte tokens, as generation sees them. */
static void test_filter_byte_tokens(void **state) {
    fixture *f = need(state, 1, 1);
    const unsigned char e_acute[] = {0xC3, 0xA9}, emoji[] = {0xF0, 0x9F, 0x98, 0x8A};
    char out[32];
    llama2_text_filter tf;
    llama2_text_filter_init(&tf);
    size_t total = 0;
    for (size_t i = 0; i < sizeof e_acute; i++) {
        size_t len;
        const char *p = llama2_token_piece(f->tok512, 0, e_acute[i] + 3, &len);
        total += llama2_text_filter_push(&tf, p, len, out + total);
        assert_int_equal(total, i == 1 ? 2 : 0); /* nothing until the character is whole */
    }
    for (size_t i = 0; i < sizeof emoji; i++) {
        size_t len;
        const char *p = llama2_token_piece(f->tok32k, 0, emoji[i] + 3, &len);
        total += llama2_text_filter_push(&tf, p, len, out + total);
    }
    assert_int_equal(total, 6);
    assert_memory_equal(out, "\xC3\xA9\xF0\x9F\x98\x8A", 6);
}

static void test_filter_rules(void **state) {
    (void)state;
    EXPECT_FILTERED("a\tb\nc\v\f\r d~", "a\tb\nc\v\f\r d~");
    EXPECT_FILTERED("ab", "a\x01", "\x1b", "\x7f", "b", "\x1f");
    EXPECT_FILTERED("\xC3\xA9", "\xC3", "\xA9");
    EXPECT_FILTERED("\xF0\x9F\x98\x8A", "\xF0", "\x9F", "\x98", "\x8A");
    EXPECT_FILTERED("x\xE2\x82\xACy", "x\xE2\x82\xACy"); /* euro sign */
    EXPECT_FILTERED("\xF4\x8F\xBF\xBF", "\xF4\x8F\xBF\xBF"); /* U+10FFFF */
    EXPECT_FILTERED("\xEF\xBF\xBF", "\xEF\xBF\xBF");         /* U+FFFF */
    /* Interrupted characters vanish; the interrupting byte still counts. */
    EXPECT_FILTERED("A", "\xC3", "A");
    EXPECT_FILTERED("\xC3\xA9", "\xE2\x82", "\xC3\xA9");
    EXPECT_FILTERED("\xC3\xA9", "\xF0\x9F\x98", "\xC3", "\xA9");
    EXPECT_FILTERED("", "\xF0\x9F\x98");         /* still pending at the end */
    EXPECT_FILTERED("ab", "a\x80\xBF", "b");      /* stray continuation bytes */
    EXPECT_FILTERED("", "\xC0\x80", "\xC1\xBF");  /* overlong leads */
    EXPECT_FILTERED("", "\xE0\x80\x80");          /* overlong 3-byte */
    EXPECT_FILTERED("", "\xF0\x80\x80\x80");      /* overlong 4-byte */
    EXPECT_FILTERED("", "\xED\xA0\x80");          /* surrogate U+D800 */
    EXPECT_FILTERED("", "\xED\xBF\xBF");          /* surrogate U+DFFF */
    EXPECT_FILTERED("\xED\x9F\xBF", "\xED\x9F\xBF"); /* U+D7FF */
    EXPECT_FILTERED("", "\xF4\x90\x80\x80");      /* above U+10FFFF */
    EXPECT_FILTERED("z", "\xF5\x80\x80\x80", "\xFF", "\xFE", "z");
    EXPECT_FILTERED("", "\xF8\x88\x80\x80\x80"); /* five-byte form */
    EXPECT_FILTERED("\xF0\x9F\x98\x8A", "\xF0\x9F\x98\x8A\x80\x80"); /* extra continuations */

    /* The most one push can write: three pending bytes plus its own. */
    llama2_text_filter f;
    llama2_text_filter_init(&f);
    char out[8];
    assert_int_equal(llama2_text_filter_push(&f, "\xF0\x9F\x98", 3, out), 0);
    assert_int_equal(llama2_text_filter_push(&f, "\x8A", 1, out), 4);
    assert_int_equal(llama2_text_filter_push(&f, "", 0, out), 0);
}

/* Checks that s[0..n) is valid UTF-8 holding no control character but
 * whitespace, decoding it independently of the filter. */
static void assert_clean_utf8(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned char b = s[i];
        if (b < 0x80) {
            assert_true((b >= 0x20 && b < 0x7F) || (b >= 9 && b <= 13));
            i++;
            continue;
        }
        int len = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : 2;
        assert_true(b >= 0xC0 && b < 0xF8 && i + (size_t)len <= n);
        uint32_t cp = b & (0x7F >> len);
        for (int k = 1; k < len; k++) {
            assert_int_equal(s[i + k] & 0xC0, 0x80);
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        static const uint32_t min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
        assert_true(cp >= min_cp[len] && cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF));
        i += (size_t)len;
    }
}

/* Random bytes in random pieces: clean output, the same however it is cut,
 * and valid text passes untouched. */
static void test_filter_random(void **state) {
    (void)state;
    enum { N = 4096 };
    static unsigned char in[N], whole[N + 8], split[N + 8];
    for (int round = 0; round < 200; round++) {
        for (int i = 0; i < N; i++) {
            uint32_t r = rng_below(4);
            in[i] = (unsigned char)(r == 0 ? rng_below(256) : r == 1 ? 0x80 + rng_below(64)
                                                       : r == 2 ? 0xC0 + rng_below(64) : 0x20 + rng_below(95));
        }
        llama2_text_filter f;
        llama2_text_filter_init(&f);
        size_t n_whole = llama2_text_filter_push(&f, (const char *)in, N, (char *)whole);
        assert_clean_utf8(whole, n_whole);
        llama2_text_filter_init(&f);
        size_t n_split = 0;
        for (size_t pos = 0; pos < N;) {
            size_t n = 1 + rng_below(7);
            if (n > N - pos) n = N - pos;
            size_t w = llama2_text_filter_push(&f, (const char *)in + pos, n, (char *)split + n_split);
            assert_true(w <= n + 4);
            n_split += w;
            pos += n;
        }
        assert_int_equal(n_split, n_whole);
        assert_memory_equal(split, whole, n_whole);
        /* The filter's output is itself clean text, so it passes unchanged. */
        llama2_text_filter_init(&f);
        static unsigned char again[N + 8];
        assert_int_equal(llama2_text_filter_push(&f, (const char *)whole, n_whole, (char *)again), n_whole);
        assert_memory_equal(again, whole, n_whole);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_rows),
        cmocka_unit_test(test_decode_rules),
        cmocka_unit_test(test_encode_api),
        cmocka_unit_test(test_open),
        cmocka_unit_test(test_small_vocabularies),
        cmocka_unit_test(test_random_tok512),
        cmocka_unit_test(test_random_tok32k),
        cmocka_unit_test(test_random_hostile),
        cmocka_unit_test(test_large_input),
        cmocka_unit_test(test_broken_files),
        cmocka_unit_test(test_tok512_cut_everywhere),
        cmocka_unit_test(test_filter_byte_tokens),
        cmocka_unit_test(test_filter_rules),
        cmocka_unit_test(test_filter_random),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
