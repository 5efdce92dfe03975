/* Helpers shared by the test programs. */
#ifndef LLAMA2_TEST_SUPPORT_H
#define LLAMA2_TEST_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

/* The shared data folder ($SHARED, default ../shared). */
const char *test_shared_dir(void);
/* "$SHARED/<relative>" in a static buffer (valid until the next call). */
const char *test_shared_path(const char *relative);
/* The llama2 program under test ($LLAMA2_BIN, default ./llama2). */
const char *test_llama2_bin(void);

/* The next number of a xorshift64* generator with the given state (not 0):
 * each test program seeds its own, so its inputs stay the same. */
uint32_t test_rng_next(uint64_t *state);

/* The whole file, NUL-terminated, in a malloc'd buffer; NULL if unreadable. */
char *test_read_file(const char *path, size_t *size);

/* Creates a fresh folder $TMPDIR/llama2-<tag>-XXXXXX (TMPDIR default /tmp)
 * and writes its path into dir[size]; 0 on success, -1 (said on stderr)
 * on failure. */
int test_tmp_dir_create(char *dir, size_t size, const char *tag);
/* How many entries dir holds (-1: it cannot be read); with remove, removes
 * each (files, links and empty folders) as well. */
int test_dir_entries(const char *dir, int remove);

/* The path of program `name` beside the llama2 program under test (the
 * tools are built there), in a static buffer. */
const char *test_tool_path(const char *name);

/* 1 when the two files hold the same bytes; else 0, and a line on stderr
 * saying where they first differ. */
int test_same_file(const char *a, const char *b);

/* Parses a JSON array of strings; returns the count (-1 on bad input) and a
 * malloc'd NULL-terminated array of malloc'd strings in *out. */
int test_parse_json_strings(const char *json, char ***out);
void test_free_strings(char **strings);

/* Runs argv[0] with argv in directory cwd (NULL: here), feeding stdin_data
 * (NULL: empty), and captures its standard output and error. Returns the
 * exit status, or 128 + signal number when killed by a signal, -1 when it
 * could not be run. */
typedef struct test_run {
    int status;
    char *out;
    size_t out_len;
    char *err;
    size_t err_len;
} test_run;
int test_run_program(char *const argv[], const char *cwd, const char *stdin_data, size_t stdin_len, test_run *r);
void test_run_free(test_run *r);

/* One row of ../shared/goldens/MANIFEST.tsv. */
typedef struct golden_case {
    char *id, *model, *argv_json, *expected, *ids, *stdin_file;
} golden_case;
/* All rows; returns the count, or -1 if the manifest cannot be read. */
int test_read_manifest(golden_case **cases);
void test_free_manifest(golden_case *cases, int n);

#endif
