/* Helpers shared by the test programs. */
#ifndef LLAMA2_TEST_SUPPORT_H
#define LLAMA2_TEST_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

/* 1 under AddressSanitizer (gcc or clang): the timed tests loosen their
 * limits and the sweeps take larger strides there. */
#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

/* Where the tests find their data (the environment names other places):
 *   $LLAMA2_SOURCE  the repository (default: the one the test program was
 *                   built in, else the working directory), with llama2.c's
 *                   recorded outputs in tests/golden;
 *   $LLAMA2_MODELS  the model files (default models): made ready by
 *                   tools/models.sh from ../shared/models, a download or the
 *                   project's own tools; a test whose file is absent skips;
 *   $SHARED         ../shared where a developer has it: reference files no
 *                   tool here makes (llama2.c's own exports); optional.
 * Each path is returned in one of a few rotating static buffers. */
const char *test_source_path(const char *name);
const char *test_golden_path(const char *name);
/* dir/name: a file in a test's temporary folder. */
const char *test_path_in(const char *dir, const char *name);
/* The models folder, absolute when it exists. */
const char *test_models_dir(void);
const char *test_model_path(const char *name);
int test_have_model(const char *name);
/* The model file's path; when it is absent, skips the running cmocka test
 * (a skip by name, with the reason printed: "skipped: needs ..."). */
const char *test_require_model(const char *name);
/* $SHARED/models/<name> when that file exists, else NULL. */
const char *test_reference_path(const char *name);
/* The same, but skips the running test when there is no such file: for a
 * comparison with llama2.c's own export (the copy in the models folder may
 * have been made by the code under test). */
const char *test_require_reference(const char *name);
/* A file as llama2.c made it, for a test that compares with llama2.c: its
 * exports (stories260K_v1.bin, stories260K_q80_gs4.bin, stories260K_q80.bin)
 * from $SHARED/models, since the models folder's may have been made here;
 * the files it publishes (the model, the tokenizers) from the models
 * folder. Skips the running test when absent. */
const char *test_require_original(const char *name);
/* The llama2 program under test ($LLAMA2_BIN, default ./llama2). */
const char *test_llama2_bin(void);
/* The project's program `name` (llama2-quantize...), beside the llama2
 * program under test; when it is not built, skips the running test. */
const char *test_require_tool(const char *name);

/* The next number of a xorshift64* generator with the given state (not 0):
 * each test program seeds its own, so its inputs stay the same. */
uint32_t test_rng_next(uint64_t *state);

/* a and b the same float bits, or both NaN. */
int test_same_float(float a, float b);

/* The checks of a panel kernel (16 rows a panel; ops_blocks.h's Q4_0,
 * ops_kquants.h's Q4_K and Q6_K) over a matrix of `rows` rows:
 * test_panel_start picks a random range [*begin, *end) of its panels and
 * sets out[0 .. n_out) to TEST_PANEL_UNWRITTEN; after the kernel has run
 * the range for n_inputs inputs (out_stride apart), test_panel_check
 * fails unless each row r of the range, input i, holds want(ctx, r, i)'s
 * bits and every other row below out_stride is still unwritten (messages
 * name `what` and n_blocks). */
#define TEST_PANEL_UNWRITTEN -7.0f
void test_panel_start(uint64_t *rng, int rows, int *begin, int *end, float *out, size_t n_out);
void test_panel_check(const char *what, const float *out, size_t out_stride, int rows, int begin, int end, int n_inputs,
                      int n_blocks, float (*want)(const void *ctx, int row, int input), const void *ctx);

/* The whole file, NUL-terminated, in a malloc'd buffer; NULL if unreadable. */
char *test_read_file(const char *path, size_t *size);
/* Writes size bytes to a new or emptied file with the given mode (asserts). */
void test_write_file(const char *path, const void *data, size_t size, unsigned mode);
/* The names in a folder, "." and ".." left out, sorted and joined by spaces
 * ("" for an empty folder), in a static buffer. */
const char *test_dir_listing(const char *dir);

/* Creates a fresh folder $TMPDIR/llama2-<tag>-XXXXXX (TMPDIR default /tmp)
 * and writes its path into dir[size]; 0 on success, -1 (said on stderr)
 * on failure. */
int test_tmp_dir_create(char *dir, size_t size, const char *tag);
/* How many entries dir holds (-1: it cannot be read); with remove, removes
 * each as well (files, links, and folders with all they hold). */
int test_dir_entries(const char *dir, int remove);
/* Removes the folder and all it holds. */
void test_tmp_dir_remove(const char *dir);

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
 * (NULL: empty), and captures its standard output and error; the program
 * starts with the default signal actions (l2_child_start). Returns the exit
 * status, or 128 + signal number when killed by a signal (a Windows
 * program ended by Ctrl-C: 130), -1 when it could not be run. */
typedef struct test_run {
    int status;
    char *out;
    size_t out_len;
    char *err;
    size_t err_len;
} test_run;
int test_run_program(char *const argv[], const char *cwd, const char *stdin_data, size_t stdin_len, test_run *r);
void test_run_free(test_run *r);
/* test_run_program of `program` with the NULL-terminated arguments args
 * (at most 30), here, with no input. */
int test_run_tool(const char *program, const char *const *args, test_run *r);

/* One row of the golden MANIFEST.tsv (tests/golden/README.md). */
typedef struct golden_case {
    char *id, *model, *argv_json, *expected, *ids, *stdin_file;
} golden_case;
/* All rows; returns the count, or -1 if the manifest cannot be read. */
int test_read_manifest(golden_case **cases);
void test_free_manifest(golden_case *cases, int n);

/* ------------------------------- what differs between systems (support_posix.c, support_win32.c) */

/* 1 where program arguments travel as UTF-16 (Windows): bytes that are
 * not UTF-8 reach the program as U+FFFD. */
extern const int test_utf16_arguments;
/* 1 where programs read CR LF on standard input as a line end, as the C
 * library's text mode does (Windows). */
extern const int test_crlf_is_newline;
/* The suffix of programs: "" or ".exe". */
extern const char test_exe_suffix[];
/* The file that reads as empty and takes any write: /dev/null, NUL. */
extern const char test_null_device[];
/* Skips the running test on Windows, saying what it needs that Windows has
 * not (or Wine has not). */
void test_require_posix(const char *why);
/* The absolute form of path into out (size bytes); 0, or -1. */
int test_absolute_path(const char *path, char *out, size_t size);
/* The names in a folder (UTF-8, "." and ".." left out), a malloc'd
 * NULL-terminated array (test_free_strings); -1 when it cannot be read. */
int test_dir_names(const char *dir, char ***names);
/* Removes a file, a link or an empty folder; 0, or -1. */
int test_remove(const char *path);
/* A link at path to target: a hard link, or a symbolic one. 0, or -1 when
 * the system or the file system cannot (Windows may refuse symbolic links
 * to users without the right). */
int test_make_link(const char *target, const char *path, int symbolic);
/* A symbolic link at path to target: 1. On POSIX a failure fails the
 * test; Windows may refuse (no right to make one, or Wine): 0, said. */
int test_symlink(const char *target, const char *path);
/* Waits until the child holds a non-empty file of folder dir (other than
 * `except`) open for writing: its output, named or not, being written. 0
 * when it ends first, or after 30 s. */
struct l2_child;
int test_child_writing(struct l2_child *c, const char *dir, const char *except);
/* A FIFO at path; 0, or -1 where there are none (Windows). */
int test_make_fifo(const char *path);
/* Runs fn in a child process where the system has fork, so that a
 * sanitizer stopping the library fails the running test alone rather than
 * the whole program (the child leaves through exit(): the leak checker runs
 * there too); elsewhere here. fn returns NULL, or what went wrong: the test
 * fails with it. */
void test_in_child(const char *(*fn)(void));
/* Sets (value NULL: removes) an environment variable. */
void test_set_env(const char *name, const char *value);
void test_sleep_ms(int ms);
/* At least `us` microseconds (Windows: a busy wait below a millisecond, its
 * sleeps being coarser). */
void test_sleep_us(int us);
/* The CPU time this process has used, in seconds. */
double test_cpu_seconds(void);
/* The file's permission bits (POSIX; nothing on Windows). */
void test_set_mode(const char *path, unsigned mode);
/* Limits the size of the files this process writes (RLIMIT_FSIZE, with
 * SIGXFSZ ignored: a write past it fails with EFBIG, as on a full disk);
 * 0: as it was before. Skips the running test where there is no such limit
 * (Windows). */
void test_limit_file_size(uint64_t bytes);
/* A file of `size` bytes, all zero but for the n_parts parts given, written
 * sparse (the zeros take no disk space): 0, or -1. */
typedef struct test_file_part {
    uint64_t offset;
    const void *data;
    size_t len;
} test_file_part;
int test_write_sparse(const char *path, uint64_t size, const test_file_part *parts, int n_parts);

/* Puts SIGINT, SIGTERM, SIGHUP, SIGQUIT and SIGXFSZ back to their default
 * actions (a job a shell starts in the background inherits SIGINT and
 * SIGQUIT ignored): for a child process (POSIX only). */
void test_default_signals(void);

/* The warning a program gives for --threads `threads` above the processors
 * online (common/messages.h's words), with its newline, into buf. */
void test_threads_warning(char *buf, size_t size, const char *program, int threads);

/* A generation's text as a llama2_io write callback (test_collect, user =
 * the test_text) collects it: NUL-terminated; a piece that would not fit
 * is dropped. */
typedef struct test_text {
    char text[16384];
    size_t len;
} test_text;
int test_collect(void *user, const char *text, size_t len);

#endif
