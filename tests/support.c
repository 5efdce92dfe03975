/* Test helpers: data paths, files, a small JSON string-array reader, child
 * processes. What differs between systems is in support_posix.c and
 * support_win32.c, or the library's platform.h. */
#include "support.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "child.h"
#include "kernels/ops_blocks.h"
#include "platform/platform.h"

/* One of a few static buffers, so that a call's result survives the next
 * few calls (two paths in one argument list). */
static char *path_buffer(void) {
    static char bufs[16][4096];
    static int next;
    next = (next + 1) % 16;
    return bufs[next];
}

/* $LLAMA2_TEST_FILTER (a cmocka pattern, * and ?): only the tests whose
 * names match run (make test-repeat). Before main, so that every test
 * program takes it without a line of its own. */
__attribute__((constructor)) static void filter_from_environment(void) {
    const char *pattern = getenv("LLAMA2_TEST_FILTER");
    if (pattern && *pattern) cmocka_set_test_filter(pattern);
}

static const char *env_or(const char *name, const char *fallback) {
    const char *s = getenv(name);
    return s && *s ? s : fallback;
}

/* The repository: $LLAMA2_SOURCE; else the one the test program was built
 * in (it is build/<variant>/tests/<name> there), so that a test finds its
 * files from any working directory; else the working directory. */
static const char *source_root(void) {
    const char *env = getenv("LLAMA2_SOURCE");
    if (env && *env) return env;
    static char root[4096];
    if (root[0]) return root;
    snprintf(root, sizeof root, ".");
    char exe[4096], probe[4200];
    snprintf(exe, sizeof exe, "%s", l2_program_path(""));
    for (int up = 0; up < 4; up++) {
        char *slash = strrchr(exe, '/'), *backslash = strrchr(exe, '\\');
        if (backslash > slash) slash = backslash;
        if (!slash) return root;
        *slash = '\0';
    }
    snprintf(probe, sizeof probe, "%s/tests/support.h", exe);
    if (l2_path_lookup(probe, NULL, NULL) == L2_PATH_FILE) snprintf(root, sizeof root, "%s", exe);
    return root;
}

const char *test_source_path(const char *name) {
    char *buf = path_buffer();
    snprintf(buf, 4096, "%s/%s", source_root(), name);
    return buf;
}

const char *test_golden_path(const char *name) {
    char *buf = path_buffer();
    snprintf(buf, 4096, "%s/tests/golden/%s", source_root(), name);
    return buf;
}

const char *test_path_in(const char *dir, const char *name) {
    char *buf = path_buffer();
    snprintf(buf, 4096, "%s/%s", dir, name);
    return buf;
}

const char *test_models_dir(void) {
    static char dir[4096];
    const char *d = env_or("LLAMA2_MODELS", "models");
    /* Absolute, so that it holds in a child run in another folder. */
    if (test_absolute_path(d, dir, sizeof dir) != 0) snprintf(dir, sizeof dir, "%s", d);
    return dir;
}

const char *test_model_path(const char *name) {
    char *buf = path_buffer();
    snprintf(buf, 4096, "%s/%s", test_models_dir(), name);
    return buf;
}

int test_have_model(const char *name) { return l2_path_lookup(test_model_path(name), NULL, NULL) == L2_PATH_FILE; }

const char *test_require_model(const char *name) {
    if (!test_have_model(name)) {
        print_message("skipped: needs %s (see tools/models.sh)\n", test_model_path(name));
        skip();
    }
    return test_model_path(name);
}

const char *test_reference_path(const char *name) {
    char *buf = path_buffer();
    snprintf(buf, 4096, "%s/models/%s", env_or("SHARED", "../shared"), name);
    return l2_path_lookup(buf, NULL, NULL) == L2_PATH_FILE ? buf : NULL;
}

const char *test_require_reference(const char *name) {
    const char *path = test_reference_path(name);
    if (!path) {
        print_message("skipped: needs llama2.c's own %s in $SHARED/models (../shared)\n", name);
        skip();
    }
    return path;
}

const char *test_require_original(const char *name) {
    if (strcmp(name, "stories260K_v1.bin") == 0 || strcmp(name, "stories260K_q80_gs4.bin") == 0 ||
        strcmp(name, "stories260K_q80.bin") == 0)
        return test_require_reference(name);
    return test_require_model(name);
}

const char *test_llama2_bin(void) {
    static char fallback[32];
    const char *s = getenv("LLAMA2_BIN");
    snprintf(fallback, sizeof fallback, "./llama2%s", test_exe_suffix);
    return s && *s ? s : fallback;
}

const char *test_require_tool(const char *name) {
    char *buf = path_buffer();
    snprintf(buf, 4096, "%s", test_tool_path(name));
    if (l2_path_lookup(buf, NULL, NULL) != L2_PATH_FILE) {
        print_message("skipped: %s is not built\n", buf);
        skip();
    }
    return buf;
}

uint32_t test_rng_next(uint64_t *state) {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return (uint32_t)((*state * 0x2545F4914F6CDD1Du) >> 32);
}

int test_same_float(float a, float b) { return memcmp(&a, &b, sizeof a) == 0 || (isnan(a) && isnan(b)); }

void test_panel_start(uint64_t *rng, int rows, int *begin, int *end, float *out, size_t n_out) {
    const int n_panels = (rows + L2_PANEL_ROWS - 1) / L2_PANEL_ROWS;
    *begin = (int)(test_rng_next(rng) % (uint64_t)n_panels);
    *end = *begin + 1 + (int)(test_rng_next(rng) % (uint64_t)(n_panels - *begin));
    for (size_t i = 0; i < n_out; i++) out[i] = TEST_PANEL_UNWRITTEN;
}

void test_panel_check(const char *what, const float *out, size_t out_stride, int rows, int begin, int end, int n_inputs,
                      int n_blocks, float (*want)(const void *ctx, int row, int input), const void *ctx) {
    for (int i = 0; i < n_inputs; i++)
        for (size_t r = 0; r < out_stride; r++) {
            const float got = out[(size_t)i * out_stride + r];
            const int inside = (int)r >= begin * L2_PANEL_ROWS && (int)r < end * L2_PANEL_ROWS && (int)r < rows;
            if (!inside) {
                if (got != TEST_PANEL_UNWRITTEN) fail_msg("%s: row %zu of input %d written outside the range", what, r, i);
                continue;
            }
            const float w = want(ctx, (int)r, i);
            if (!test_same_float(got, w))
                fail_msg("%s: row %zu, input %d of %d, %d blocks: %.9g, want %.9g", what, r, i, n_inputs, n_blocks,
                         (double)got, (double)w);
        }
}

char *test_read_file(const char *path, size_t *size) {
    FILE *f = l2_fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap + 1);
    size_t got;
    while (buf && (got = fread(buf + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) {
            char *bigger = realloc(buf, cap * 2 + 1);
            if (!bigger) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
    }
    fclose(f);
    if (!buf) return NULL;
    buf[len] = '\0';
    if (size) *size = len;
    return buf;
}

int test_dir_entries(const char *dir, int remove) {
    char **names = NULL;
    int n = test_dir_names(dir, &names);
    for (int i = 0; remove && i < n; i++) {
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        /* A link to a folder is removed, not followed. */
        if (l2_path_lookup(path, NULL, NULL) == L2_PATH_FOLDER && test_remove(path) != 0) {
            test_dir_entries(path, 1);
            test_remove(path);
        } else {
            test_remove(path);
        }
    }
    test_free_strings(names);
    return n;
}

void test_tmp_dir_remove(const char *dir) {
    test_dir_entries(dir, 1);
    test_remove(dir);
}

const char *test_tool_path(const char *name) {
    static char buf[4096];
    const char *bin = test_llama2_bin();
    const char *slash = strrchr(bin, '/'), *backslash = strrchr(bin, '\\');
    if (backslash > slash) slash = backslash;
    int dir_len = slash ? (int)(slash - bin) : 1;
    snprintf(buf, sizeof buf, "%.*s/%s%s", dir_len, slash ? bin : ".", name, test_exe_suffix);
    return buf;
}

int test_same_file(const char *a, const char *b) {
    size_t na = 0, nb = 0;
    char *da = test_read_file(a, &na), *db = test_read_file(b, &nb);
    int same = da && db && na == nb && memcmp(da, db, na) == 0;
    if (!same && da && db) {
        size_t i = 0;
        while (i < na && i < nb && da[i] == db[i]) i++;
        fprintf(stderr, "%s (%zu bytes) and %s (%zu bytes) differ from byte %zu\n", a, na, b, nb, i);
    } else if (!same) {
        fprintf(stderr, "cannot read %s\n", da ? b : a);
    }
    free(da);
    free(db);
    return same;
}

void test_write_file(const char *path, const void *data, size_t size, unsigned mode) {
    FILE *f = l2_fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, size, f), size);
    assert_int_equal(fclose(f), 0);
    test_set_mode(path, mode);
}

static int compare_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

const char *test_dir_listing(const char *dir) {
    static char out[8192];
    char **names = NULL;
    int n = test_dir_names(dir, &names);
    assert_true(n >= 0);
    qsort(names, (size_t)n, sizeof names[0], compare_names);
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (i) strncat(out, " ", sizeof out - strlen(out) - 1);
        strncat(out, names[i], sizeof out - strlen(out) - 1);
    }
    test_free_strings(names);
    return out;
}

static int hex4(const char *s, unsigned *v) {
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0')
                     : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                     : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
                                            : 16u;
        if (d == 16) return 0;
        *v = *v * 16 + d;
    }
    return 1;
}

static size_t put_utf8(char *out, unsigned cp) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) { out[0] = (char)(0xC0 | (cp >> 6)); out[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12)); out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F)); return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18)); out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); out[3] = (char)(0x80 | (cp & 0x3F)); return 4;
}

/* Parses one JSON string at *p (which points at the opening quote). */
static char *parse_string(const char **p) {
    const char *s = *p + 1;
    char *out = malloc(strlen(s) * 2 + 1), *o = out;
    if (!out) return NULL;
    while (*s && *s != '"') {
        if (*s != '\\') { *o++ = *s++; continue; }
        s++;
        switch (*s) {
        case 'n': *o++ = '\n'; s++; break;
        case 't': *o++ = '\t'; s++; break;
        case 'r': *o++ = '\r'; s++; break;
        case 'b': *o++ = '\b'; s++; break;
        case 'f': *o++ = '\f'; s++; break;
        case 'u': {
            unsigned cp, lo;
            if (!hex4(s + 1, &cp)) { free(out); return NULL; }
            s += 5;
            if (cp >= 0xD800 && cp < 0xDC00 && s[0] == '\\' && s[1] == 'u' && hex4(s + 2, &lo)) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                s += 6;
            }
            o += put_utf8(o, cp);
            break;
        }
        case '\0': free(out); return NULL;
        default: *o++ = *s++; break; /* \" \\ \/ */
        }
    }
    if (*s != '"') { free(out); return NULL; }
    *o = '\0';
    *p = s + 1;
    return out;
}

int test_parse_json_strings(const char *json, char ***out) {
    const char *p = json;
    while (*p == ' ') p++;
    if (*p++ != '[') return -1;
    size_t cap = 8;
    int n = 0;
    char **list = calloc(cap + 1, sizeof *list);
    for (;;) {
        while (*p == ' ' || *p == ',') p++;
        if (*p == ']') break;
        if (*p != '"') { test_free_strings(list); return -1; }
        char *s = parse_string(&p);
        if (!s) { test_free_strings(list); return -1; }
        if ((size_t)n == cap) {
            cap *= 2;
            list = realloc(list, (cap + 1) * sizeof *list);
        }
        list[n++] = s;
        list[n] = NULL;
    }
    *out = list;
    return n;
}

void test_free_strings(char **strings) {
    if (!strings) return;
    for (char **s = strings; *s; s++) free(*s);
    free(strings);
}

int test_run_program(char *const argv[], const char *cwd, const char *stdin_data, size_t stdin_len, test_run *r) {
    memset(r, 0, sizeof *r);
    l2_child *c = NULL;
    int started = l2_child_start(argv, cwd, stdin_data, stdin_data ? stdin_len : 0, L2_CHILD_CAPTURE, &c) == 0;
#ifdef _WIN32
    /* Wine on a loaded machine has been seen to fail a process start now
     * and then: one more try, a moment later. */
    if (!started) {
        test_sleep_ms(200);
        started = l2_child_start(argv, cwd, stdin_data, stdin_data ? stdin_len : 0, L2_CHILD_CAPTURE, &c) == 0;
    }
#endif
    if (!started) {
        r->status = -1;
        r->out = calloc(1, 1);
        r->err = calloc(1, 1);
        return -1;
    }
    r->status = l2_child_wait(c, &r->out, &r->out_len, &r->err, &r->err_len);
    return r->status;
}

void test_run_free(test_run *r) {
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof *r);
}

int test_read_manifest(golden_case **cases) {
    char *text = test_read_file(test_golden_path("MANIFEST.tsv"), NULL);
    if (!text) return -1;
    int n = 0, cap = 16;
    golden_case *list = calloc((size_t)cap, sizeof *list);
    char *save = NULL;
    int first = 1;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (first) { first = 0; continue; } /* the column names */
        char *fields[6] = {0};
        char *p = line;
        for (int f = 0; f < 6; f++) {
            fields[f] = p;
            char *tab = p ? strchr(p, '\t') : NULL;
            if (tab) { *tab = '\0'; p = tab + 1; } else p = NULL;
        }
        if (n == cap) list = realloc(list, (size_t)(cap *= 2) * sizeof *list);
        golden_case *c = &list[n++];
        char **dst[6] = {&c->id, &c->model, &c->argv_json, &c->expected, &c->ids, &c->stdin_file};
        for (int f = 0; f < 6; f++) *dst[f] = strdup(fields[f] ? fields[f] : "");
    }
    free(text);
    *cases = list;
    return n;
}

void test_free_manifest(golden_case *cases, int n) {
    for (int i = 0; i < n; i++) {
        free(cases[i].id); free(cases[i].model); free(cases[i].argv_json);
        free(cases[i].expected); free(cases[i].ids); free(cases[i].stdin_file);
    }
    free(cases);
}

int test_run_tool(const char *program, const char *const *args, test_run *r) {
    char *argv[32];
    int k = 0;
    argv[k++] = (char *)program;
    for (int i = 0; args[i]; i++) {
        assert_true(k < 31);
        argv[k++] = (char *)args[i];
    }
    argv[k] = NULL;
    return test_run_program(argv, NULL, NULL, 0, r);
}

void test_threads_warning(char *buf, size_t size, const char *program, int threads) {
    const int online = l2_processor_count();
    snprintf(buf, size,
             "%s: warning: --threads %d is more than the %d processor%s online; the extra threads wait for a "
             "processor and make every step slower\n",
             program, threads, online, online == 1 ? "" : "s");
}

int test_collect(void *user, const char *text, size_t len) {
    test_text *b = user;
    if (b->len + len < sizeof b->text) {
        memcpy(b->text + b->len, text, len);
        b->len += len;
        b->text[b->len] = 0;
    }
    return 0;
}
