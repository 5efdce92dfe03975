/*
 * Hostile input: bad checkpoints, bad tokenizers and bad command lines, each
 * run through the real program ($LLAMA2_BIN) and, for files, through the
 * library's open functions as well.
 *
 * For every bad input the program must exit with 1 (a bad file) or 2 (bad
 * usage), not be killed by a signal, print nothing on stdout and exactly one
 * line on stderr: "llama2: <the file or the flag>: <message>". The library
 * must return an error with a one-line message and leave nothing allocated
 * (the SAN build's leak checker sees to that).
 *
 * The bad files are built in a fresh temporary folder: from the model files
 * and tokenizers of the models folder ($LLAMA2_MODELS, default models) cut,
 * lengthened or patched, from small models written by l2_write_random_model,
 * and from scratch. Random files come from a fixed seed. A case whose model
 * file or tokenizer is absent is skipped by name. docs/HOSTILE.md lists every
 * case and what it gives.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cli/args.h"
#include "model/checkpoint_format.h"
#include "write/checkpoint_writer.h"
#include "llama2.h"
#include "platform/platform.h"
#include "support.h"

/* ------------------------------------------------------------ the cases */

typedef enum case_kind {
    BAD_MODEL,     /* the checkpoint is bad: exit 1, the message names it */
    BAD_TOKENIZER, /* the tokenizer is bad: exit 1, the message names it */
    BAD_USAGE,     /* the command line is bad: exit 2, the message names the flag */
    RUNS,          /* odd but acceptable: exit 0, no error */
    BAD_PAIR,      /* a model and a tokenizer each valid, unusable together: exit 1 */
    BAD_INPUT,     /* another input file is bad (a prompt file): exit 1, the message names it */
} case_kind;

#define MAX_ARGS 48

typedef struct hostile_case {
    char name[112];
    case_kind kind;
    char *path;                 /* BAD_MODEL / BAD_TOKENIZER: the file */
    const char *args[MAX_ARGS]; /* after the program (files: NULL for the usual line); "@M" the model, "@T"
                                   the tokenizer, "@P" path */
    const char *culprit;        /* what the line must start with after "llama2: "; NULL: path */
    const char *source;         /* the model file of the models folder it is made from; NULL: none */
    const char *expect;         /* a part of the message, or NULL (RUNS: of the one line allowed on stderr) */
    const char *stdin_text;     /* RUNS: standard input (NULL: closed at once) */
    int lib_opens;              /* the library opens it (BAD_MODEL) or cli_parse takes it (BAD_USAGE); a
                                   later step refuses it */
    const char *posix_only;     /* what this system could not make (a FIFO on Windows): skipped */
} hostile_case;

#define MAX_CASES 256
static hostile_case cases[MAX_CASES];
static int n_cases;

static char tmp_dir[4096];
static char *created[MAX_CASES * 2]; /* files to remove at the end */
static int n_created;

#define MODEL_FILE "stories260K.bin"
#define TOKENIZER_FILE "tok512.bin"
static char *model_path;     /* MODEL_FILE, a valid model */
static char *tokenizer_path; /* TOKENIZER_FILE, its tokenizer */

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "test_hostile: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

/* A new case, named "<kind>: <what>". */
static hostile_case *add_case(case_kind kind, const char *what) {
    static const char *const prefix[] = {"model: ", "tokenizer: ", "usage: ", "runs: ", "pair: ", "input: "};
    if (n_cases == MAX_CASES) die("more than %d cases", MAX_CASES);
    hostile_case *c = &cases[n_cases++];
    memset(c, 0, sizeof *c);
    c->kind = kind;
    snprintf(c->name, sizeof c->name, "%s%s", prefix[kind], what);
    return c;
}

/* A bad file, BAD_MODEL or BAD_TOKENIZER; the rest of the name from fmt. */
static hostile_case *bad_file(case_kind kind, char *path, const char *expect, const char *fmt, ...) {
    char what[sizeof cases[0].name];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    hostile_case *c = add_case(kind, what);
    c->path = path;
    c->expect = expect;
    return c;
}
#define bad_model(...) bad_file(BAD_MODEL, __VA_ARGS__)
#define bad_tokenizer(...) bad_file(BAD_TOKENIZER, __VA_ARGS__)

/* A command line: the arguments after `what`, up to a NULL. */
static hostile_case *command_case(case_kind kind, char *path, const char *culprit, const char *expect,
                                  const char *stdin_text, const char *what, ...) {
    hostile_case *c = add_case(kind, what);
    c->path = path;
    c->culprit = culprit;
    c->expect = expect;
    c->stdin_text = stdin_text;
    va_list ap;
    va_start(ap, what);
    for (int i = 0; i < MAX_ARGS - 1; i++) {
        const char *a = va_arg(ap, const char *);
        c->args[i] = a;
        if (!a) break;
    }
    va_end(ap);
    return c;
}
#define bad_usage(culprit, expect, ...) command_case(BAD_USAGE, NULL, culprit, expect, NULL, __VA_ARGS__)
#define runs(stdin_text, ...) command_case(RUNS, NULL, NULL, NULL, stdin_text, __VA_ARGS__)
#define bad_pair(model, expect, ...) command_case(BAD_PAIR, model, tokenizer_path, expect, NULL, __VA_ARGS__)
#define bad_input(path, expect, ...) command_case(BAD_INPUT, path, NULL, expect, NULL, __VA_ARGS__)

/* ------------------------------------------------------------ the files */

/* p (malloc'd), to be freed at the end, and removed if it is in tmp_dir. */
static char *remember(char *p) {
    if (!p) die("out of memory");
    if (n_created == (int)(sizeof created / sizeof created[0])) die("too many files");
    created[n_created++] = p;
    return p;
}

static char *tmp_path(const char *name) {
    char *p = malloc(strlen(tmp_dir) + strlen(name) + 2);
    if (p) sprintf(p, "%s/%s", tmp_dir, name);
    return remember(p);
}

/* A path outside tmp_dir, kept until the end. */
static char *outside_path(const char *path) { return remember(strdup(path)); }

static void write_to(const char *path, const void *data, size_t size) {
    FILE *f = l2_fopen(path, "wb");
    if (!f || (size > 0 && fwrite(data, 1, size, f) != size) || fclose(f) != 0)
        die("%s: %s", path, strerror(errno));
}

static char *write_tmp(const char *name, const void *data, size_t size) {
    char *path = tmp_path(name);
    write_to(path, data, size);
    return path;
}

/* The files of the models folder the bad files are made from. */
static unsigned char *v0, *v1, *v2, *tok512, *tok32k;
static size_t v0_size, v1_size, v2_size, tok512_size, tok32k_size;

/* The name of the file src holds. */
static const char *source_name(const unsigned char *src) {
    return src == v0 ? MODEL_FILE : src == v1 ? "stories260K_v1.bin" : src == v2 ? "stories260K_q80_gs4.bin"
         : src == tok512 ? TOKENIZER_FILE : src == tok32k ? "tokenizer.bin" : NULL;
}

/* Bytes in place of an absent model file: the cases built from it are
 * listed all the same, and skipped. */
#define PLACEHOLDER_BYTES 65536

static unsigned char *read_model(const char *name, size_t *size) {
    char *data = test_read_file(test_model_path(name), size);
    if (data) return (unsigned char *)data;
    *size = PLACEHOLDER_BYTES;
    data = calloc(1, PLACEHOLDER_BYTES + 1);
    if (!data) die("out of memory");
    return (unsigned char *)data;
}

/* A copy of src cut or zero-extended to `size` bytes. */
static unsigned char *resized(const unsigned char *src, size_t src_size, size_t size) {
    unsigned char *p = calloc(1, size + 1);
    if (!p) die("out of memory");
    memcpy(p, src, src_size < size ? src_size : size);
    return p;
}

static void put_i32(unsigned char *p, size_t offset, int32_t v) { memcpy(p + offset, &v, 4); }
static void put_f32(unsigned char *p, size_t offset, float v) { memcpy(p + offset, &v, 4); }

static uint64_t rng_state = 0x853c49e6748fea9bu;

static unsigned char *random_bytes(size_t n) {
    unsigned char *p = malloc(n + 1);
    if (!p) die("out of memory");
    for (size_t i = 0; i < n; i++) p[i] = (unsigned char)test_rng_next(&rng_state);
    return p;
}

/* The file name extension of a bad file of this kind. */
static const char *extension(case_kind kind) { return kind == BAD_MODEL ? "bin" : "tok"; }

/* Bad files of random bytes, one of each length. */
static void random_files(case_kind kind, const size_t *lengths, size_t count) {
    for (size_t i = 0; i < count; i++) {
        unsigned char *p = random_bytes(lengths[i]);
        char name[64];
        snprintf(name, sizeof name, "random-%zu.%s", lengths[i], extension(kind));
        bad_file(kind, write_tmp(name, p, lengths[i]), NULL, "%zu random bytes", lengths[i]);
        free(p);
    }
}

/* A file of the int32 values head[0..n), then random bytes to 5000 in all. */
static char *random_after(const char *name, const int32_t *head, int n) {
    unsigned char *p = random_bytes(5000);
    for (int i = 0; i < n; i++) put_i32(p, 4 * (size_t)i, head[i]);
    char *path = write_tmp(name, p, 5000);
    free(p);
    return path;
}

/* src cut or zero-extended to `size` bytes: a bad file of this kind. */
static void resized_file(case_kind kind, const char *tag, const unsigned char *src, size_t src_size, size_t size,
                         const char *expect, const char *what) {
    char name[96];
    snprintf(name, sizeof name, "%s-%zu.%s", tag, size, extension(kind));
    unsigned char *p = resized(src, src_size, size);
    bad_file(kind, write_tmp(name, p, size), expect, "%s: %s (%zu of %zu bytes)", tag, what, size, src_size)->source =
        source_name(src);
    free(p);
}

/* src (size bytes) with the int32 at offset set to value, written to tmp_dir. */
static char *write_patched(const char *name, const unsigned char *src, size_t size, size_t offset, int32_t value) {
    unsigned char *p = resized(src, size, size);
    put_i32(p, offset, value);
    char *path = write_tmp(name, p, size);
    free(p);
    return path;
}

/* ------------------------------------------------------------- models */

#define V0_HEADER L2_V0_HEADER_BYTES
#define V1_HEADER L2_V1_HEADER_BYTES
#define CHECKPOINT_MAGIC L2_CHECKPOINT_MAGIC


/* A shared model cut or extended to `size` bytes. */
#define model_resized(...) resized_file(BAD_MODEL, __VA_ARGS__)

/* A shared model with the int32 at `offset` set to value. */
static void model_patched(const char *tag, const unsigned char *src, size_t size, size_t offset, int32_t value,
                          const char *expect, const char *what) {
    static int serial;
    char name[96];
    snprintf(name, sizeof name, "%s-patch%d.bin", tag, serial++);
    bad_model(write_patched(name, src, size, offset, value), expect, "%s: %s", tag, what)->source = source_name(src);
}

/* A header from scratch: v0 (version 0) or v1/v2 with the given fields. */
static void model_header(const char *tag, int version, const int32_t f[7], int shared, int32_t group_size,
                         const char *expect, const char *what) {
    unsigned char h[V1_HEADER] = {0};
    size_t size;
    if (version == 0) {
        for (int i = 0; i < 7; i++) put_i32(h, 4 * (size_t)i, f[i]);
        size = V0_HEADER;
    } else {
        put_i32(h, 0, (int32_t)CHECKPOINT_MAGIC);
        put_i32(h, 4, version);
        for (int i = 0; i < 7; i++) put_i32(h, 8 + 4 * (size_t)i, f[i]);
        h[36] = (unsigned char)shared;
        if (version == 2) put_i32(h, 37, group_size);
        size = V1_HEADER;
    }
    char name[96];
    snprintf(name, sizeof name, "%s.bin", tag);
    bad_model(write_tmp(name, h, size), expect, "%s", what);
}

static void file_cases(void) {
    bad_model(tmp_path("missing.bin"), "cannot open", "a file that does not exist");
    bad_model(tmp_path("dir"), "not a regular file", "a directory");
    int e = l2_make_folder(cases[n_cases - 1].path);
    if (e != 0) die("mkdir: %s", strerror(e));
    bad_model(write_tmp("empty.bin", "", 0), "empty file", "an empty file");
    char *fifo = tmp_path("fifo.bin");
    int made = test_make_fifo(fifo) == 0;
    bad_model(fifo, "not a regular file", "a FIFO with no writer (must not block)")->posix_only = made ? NULL : "a FIFO";
    bad_model(outside_path(test_null_device), "not a regular file", "/dev/null");
    char *link = tmp_path("dangling.bin");
    made = test_make_link("nowhere/at/all.bin", link, 1) == 0;
    bad_model(link, "cannot open", "a dangling symbolic link")->posix_only = made ? NULL : "a symbolic link";
    bad_model(write_tmp("one-byte.bin", "\x40", 1), "too short", "a single byte");
    uint32_t magic = CHECKPOINT_MAGIC;
    bad_model(write_tmp("magic-only.bin", &magic, 4), "too short for a version 1/2 header", "the magic alone");
    bad_model(outside_path(test_model_path("tok512.bin")), NULL, "a tokenizer given as the checkpoint (tok512.bin)")
        ->source = "tok512.bin";
    bad_model(outside_path(test_model_path("tokenizer.bin")), NULL,
              "a tokenizer given as the checkpoint (tokenizer.bin)")
        ->source = "tokenizer.bin";
}

static void truncation_cases(void) {
    /* v0: 28-byte header, then the fp32 tensors. */
    model_resized("v0", v0, v0_size, 3, "too short", "inside the first header field");
    model_resized("v0", v0, v0_size, V0_HEADER - 1, "too short", "one byte short of the header");
    model_resized("v0", v0, v0_size, V0_HEADER, "truncated", "the header alone");
    model_resized("v0", v0, v0_size, V0_HEADER + 102, "truncated", "inside the embedding table");
    model_resized("v0", v0, v0_size, v0_size / 2 + 1, "truncated", "cut in the middle");
    model_resized("v0", v0, v0_size, v0_size - 1, "truncated", "one byte short");
    model_resized("v0", v0, v0_size, v0_size + 1, "unexpected bytes", "one byte too long");
    model_resized("v0", v0, v0_size, v0_size + 4096, "unexpected bytes", "4 KiB of trailing garbage");
    /* v1: 256-byte header, the norms, then the fp32 matrices. */
    model_resized("v1", v1, v1_size, 7, "too short", "inside the version field");
    model_resized("v1", v1, v1_size, V1_HEADER - 1, "too short for a version 1/2 header", "one byte short of the header");
    model_resized("v1", v1, v1_size, V1_HEADER, "truncated", "the header alone");
    model_resized("v1", v1, v1_size, V1_HEADER + 10, "truncated", "inside the first norm");
    model_resized("v1", v1, v1_size, v1_size / 2 + 3, "truncated", "cut in the middle");
    model_resized("v1", v1, v1_size, v1_size - 1, "truncated", "one byte short");
    model_resized("v1", v1, v1_size, v1_size + 1, "unexpected bytes", "one byte too long");
    /* v2: 256-byte header, fp32 norms, then int8 values and fp32 scales per matrix. */
    int32_t dim, L, vocab, gs = 0;
    memcpy(&dim, v2 + 8, 4);
    memcpy(&L, v2 + 16, 4);
    memcpy(&vocab, v2 + 28, 4);
    memcpy(&gs, v2 + 37, 4);
    size_t norms = (size_t)(2 * L + 1) * (size_t)dim * 4, embedding_q = (size_t)vocab * (size_t)dim;
    model_resized("v2", v2, v2_size, V1_HEADER, "truncated", "the header alone");
    model_resized("v2", v2, v2_size, V1_HEADER + norms + 17, "truncated", "inside the embedding's int8 values");
    model_resized("v2", v2, v2_size, V1_HEADER + norms + embedding_q + 6, "truncated", "inside the embedding's scales");
    model_resized("v2", v2, v2_size, v2_size / 2, "truncated", "cut in the middle");
    model_resized("v2", v2, v2_size, v2_size - 4, "truncated", "without its last scale");
    model_resized("v2", v2, v2_size, v2_size - 1, "truncated", "one byte short");
    model_resized("v2", v2, v2_size, v2_size + 1, "unexpected bytes", "one byte too long");
}

static void header_field_cases(void) {
    /* v0 fields at 4 * i, patched in stories260K.bin (the body stays real). */
    model_patched("v0", v0, v0_size, 0, 0, "dim is 0", "dim 0");
    model_patched("v0", v0, v0_size, 0, -64, "dim is -64", "dim -64");
    model_patched("v0", v0, v0_size, 4, -1, "hidden_dim is -1", "hidden_dim -1");
    model_patched("v0", v0, v0_size, 8, INT_MIN, "n_layers is -2147483648", "n_layers INT_MIN");
    model_patched("v0", v0, v0_size, 12, 0, "n_heads is 0", "n_heads 0");
    model_patched("v0", v0, v0_size, 16, -5, "n_kv_heads is -5", "n_kv_heads -5");
    model_patched("v0", v0, v0_size, 20, INT_MIN, "vocab_size is -2147483648", "vocab_size INT_MIN");
    model_patched("v0", v0, v0_size, 24, 0, "seq_len is 0", "seq_len 0");
    model_patched("v0", v0, v0_size, 24, -1, "seq_len is -1", "seq_len -1");
    model_patched("v0", v0, v0_size, 20, -512, "truncated", "vocab_size -512: a separate classifier the file lacks");
    model_patched("v0", v0, v0_size, 20, 1 << 30, "truncated", "vocab_size 2^30");
    model_patched("v0", v0, v0_size, 8, 1 << 30, "truncated", "n_layers 2^30");
    model_patched("v0", v0, v0_size, 8, INT_MAX, "truncated", "n_layers INT_MAX (checked at once, not layer by layer)");
    model_patched("v0", v0, v0_size, 24, 1 << 30, "truncated", "seq_len 2^30 (the RoPE tables)");
    model_patched("v0", v0, v0_size, 4, INT_MAX, "truncated", "hidden_dim INT_MAX");
    model_patched("v0", v0, v0_size, 12, 7, "not divisible by n_heads", "dim 64 not divisible by n_heads 7");
    model_patched("v0", v0, v0_size, 16, 3, "not a multiple of n_kv_heads", "n_heads 8 not a multiple of n_kv_heads 3");
    model_patched("v0", v0, v0_size, 16, 16, "not a multiple of n_kv_heads", "n_kv_heads 16 > n_heads 8");
    model_patched("v0", v0, v0_size, 12, 64, "is odd", "n_heads 64: head size 1 is odd");

    const int32_t odd[7] = {24, 64, 2, 8, 4, 512, 512};
    model_header("odd-head", 0, odd, 0, 0, "is odd", "v0 header: dim 24, n_heads 8, head size 3 is odd");
    const int32_t overflow[7] = {1 << 30, 1 << 30, 1 << 30, 1 << 10, 1 << 10, 1 << 30, 1 << 30};
    model_header("overflow-v0", 0, overflow, 0, 0, "overflow", "v0 header: every size 2^30 (the byte count overflows)");
    model_header("overflow-v2", 2, overflow, 1, 1 << 10, "overflow", "v2 header: every size 2^30, group size 1024");
    const int32_t llama70b[7] = {8192, 28672, 80, 64, 8, 32000, 4096};
    model_header("70b-v0", 0, llama70b, 0, 0, "truncated", "v0 header of a 70B shape (8192 x 28672 x 80, seq 4096)");
    model_header("70b-v1", 1, llama70b, 0, 0, "truncated", "v1 header of a 70B shape");
    model_header("70b-v2", 2, llama70b, 0, 64, "truncated", "v2 header of a 70B shape, group size 64");
    const int32_t maxed[7] = {INT_MAX - 1, INT_MAX, INT_MAX, 1, 1, INT_MAX, INT_MAX};
    model_header("maxed-v1", 1, maxed, 1, 0, "overflow", "v1 header: dim INT_MAX - 1 and the rest INT_MAX");

    /* v1 / v2: magic, version, the 7 fields at 8 + 4 * i, shared byte at 36,
     * v2 group size at 37. */
    model_patched("v1", v1, v1_size, 4, 0, "unknown checkpoint version 0", "version 0 after the magic");
    model_patched("v1", v1, v1_size, 4, 3, "unknown checkpoint version 3", "version 3");
    model_patched("v1", v1, v1_size, 4, -1, "unknown checkpoint version -1", "version -1");
    model_patched("v2", v2, v2_size, 4, 3, "unknown checkpoint version 3", "version 3");
    model_patched("v1", v1, v1_size, 8, 0, "dim is 0", "dim 0");
    model_patched("v1", v1, v1_size, 16, 6, "truncated", "n_layers 6 of 5");
    model_patched("v1", v1, v1_size, 16, 4, "unexpected bytes", "n_layers 4 of 5");
    model_patched("v1", v1, v1_size, 28, 513, "truncated", "vocab_size 513 of 512");
    model_patched("v1", v1, v1_size, 32, INT_MIN, "seq_len is -2147483648", "seq_len INT_MIN");
    unsigned char *p = resized(v1, v1_size, v1_size);
    p[36] = 2;
    bad_model(write_tmp("v1-shared2.bin", p, v1_size), "shared-classifier flag is 2", "v1: shared flag 2")->source =
        source_name(v1);
    p[36] = 255;
    bad_model(write_tmp("v1-shared255.bin", p, v1_size), "shared-classifier flag is 255", "v1: shared flag 255")
        ->source = source_name(v1);
    p[36] = 0;
    bad_model(write_tmp("v1-shared0.bin", p, v1_size), "truncated", "v1: shared flag 0, no classifier in the file")
        ->source = source_name(v1);
    free(p);
    model_patched("v2", v2, v2_size, 37, 0, "group size 0", "group size 0");
    model_patched("v2", v2, v2_size, 37, -4, "group size -4", "group size -4");
    model_patched("v2", v2, v2_size, 37, INT_MIN, "must be positive", "group size INT_MIN");
    model_patched("v2", v2, v2_size, 37, 3, "does not divide", "group size 3 (does not divide 64 or 172)");
    model_patched("v2", v2, v2_size, 37, 8, "does not divide", "group size 8 (divides 64, not 172)");
    model_patched("v2", v2, v2_size, 37, 2, "truncated", "group size 2 (divides, but the file lacks the scales it implies)");
    bad_model(outside_path(test_model_path("stories260K_q80.bin")), "group size 64 does not divide",
              "stories260K_q80.bin: group size 64 does not divide hidden_dim 172")
        ->source = "stories260K_q80.bin";

    /* Opens (v1 sizes do not depend on seq_len), but no session fits. */
    model_patched("v1", v1, v1_size, 32, INT_MAX, NULL, "seq_len INT_MAX: opens, the KV cache cannot be allocated");
    cases[n_cases - 1].lib_opens = 1;
}

static void random_cases(void) {
    const size_t lengths[] = {1, 4, 27, 28, 100, 256, 1000, 4096, 65536, 1 << 20};
    random_files(BAD_MODEL, lengths, sizeof lengths / sizeof lengths[0]);
    for (int version = 1; version <= 2; version++) {
        const int32_t head[2] = {(int32_t)CHECKPOINT_MAGIC, version};
        char name[64];
        snprintf(name, sizeof name, "random-v%d.bin", version);
        bad_model(random_after(name, head, 2), NULL, "the v%d magic and version, then 4992 random bytes", version);
    }
}

/* --------------------------------------------------------- tokenizers */


/* The offset of entry i of a tokenizer file (its score). */
static size_t entry_offset(const unsigned char *data, int i) {
    size_t pos = 4;
    for (int k = 0; k < i; k++) {
        int32_t len;
        memcpy(&len, data + pos + 4, 4);
        pos += 8 + (size_t)len;
    }
    return pos;
}

/* A shared tokenizer cut to `size` bytes. */
#define tokenizer_cut(...) resized_file(BAD_TOKENIZER, __VA_ARGS__)

static void tokenizer_patched(const char *what, size_t offset, int32_t value, const char *expect) {
    static int serial;
    char name[64];
    snprintf(name, sizeof name, "tok-patch%d.tok", serial++);
    bad_tokenizer(write_patched(name, tok512, tok512_size, offset, value), expect, "tok512.bin: %s", what)->source =
        "tok512.bin";
}

static void tokenizer_cases(void) {
    bad_tokenizer(tmp_path("missing.tok"), "cannot open", "a file that does not exist");
    bad_tokenizer(tmp_path("tokdir"), NULL, "a directory");
    int e = l2_make_folder(cases[n_cases - 1].path);
    if (e != 0) die("mkdir: %s", strerror(e));
    bad_tokenizer(write_tmp("empty.tok", "", 0), "too short", "an empty file");
    bad_tokenizer(outside_path(test_model_path("stories260K.bin")), NULL, "a checkpoint given as the tokenizer")
        ->source = "stories260K.bin";
    bad_tokenizer(outside_path(test_model_path("stories260K_q80_gs4.bin")), NULL,
                  "a v2 checkpoint given as the tokenizer")
        ->source = "stories260K_q80_gs4.bin";
    bad_tokenizer(outside_path(test_null_device), "too short", "/dev/null");
    tokenizer_cut("tok512", tok512, tok512_size, 2, "too short", "inside max_token_length");
    tokenizer_cut("tok512", tok512, tok512_size, 4, "has 0 tokens, the model needs 512", "the header alone");
    tokenizer_cut("tok512", tok512, tok512_size, 4 + 3, "truncated", "inside the first entry's score");
    tokenizer_cut("tok512", tok512, tok512_size, 4 + 8 + 2, "truncated", "inside the first piece");
    tokenizer_cut("tok512", tok512, tok512_size, tok512_size / 2, "truncated", "cut in the middle");
    tokenizer_cut("tok512", tok512, tok512_size, tok512_size - 1, "truncated", "one byte short");
    tokenizer_cut("tok512", tok512, tok512_size, entry_offset(tok512, 100), "has 100 tokens, the model needs 512",
                  "100 whole entries: fewer tokens than the model");
    tokenizer_cut("tok512", tok512, tok512_size, entry_offset(tok512, 511), "has 511 tokens, the model needs 512",
                  "one entry short");
    tokenizer_cut("tokenizer", tok32k, tok32k_size, 101, "truncated", "cut inside the byte tokens");
    tokenizer_cut("tokenizer", tok32k, tok32k_size, 3001, "truncated", "cut inside the first 512 entries");
    tokenizer_patched("max_token_length 0", 0, 0, "max_token_length is 0");
    tokenizer_patched("max_token_length -1", 0, -1, "max_token_length is -1");
    tokenizer_patched("max_token_length INT_MIN", 0, INT_MIN, "max_token_length is -2147483648");
    size_t e5 = entry_offset(tok512, 5);
    tokenizer_patched("entry 5 with length -1", e5 + 4, -1, "negative length");
    tokenizer_patched("entry 5 with length INT_MIN", e5 + 4, INT_MIN, "negative length");
    tokenizer_patched("entry 5 with length INT_MAX", e5 + 4, INT_MAX, "truncated");
    tokenizer_patched("entry 0 with length 2^30", 4 + 4, 1 << 30, "truncated");
    tokenizer_patched("entry 511 one byte longer than the file", entry_offset(tok512, 511) + 4,
                      (int32_t)(tok512_size - entry_offset(tok512, 511) - 8 + 1), "truncated");
    const size_t lengths[] = {3, 64, 5000};
    random_files(BAD_TOKENIZER, lengths, sizeof lengths / sizeof lengths[0]);
    const int32_t max_token_length = 16;
    bad_tokenizer(random_after("random-header.tok", &max_token_length, 1), NULL,
                  "max_token_length 16, then random bytes");
}

/* ------------------------------------------------------ command lines */

#define STD "--no-timer", "-n", "8", "-z", "@T"

/* The sampler chain's, the prompt's and the chat's flags: the whole
 * message, since each is one fixed line. */
static void sampling_usage_cases(void) {
    bad_usage("--top-k", "--top-k: -1 is out of range: must be an integer from 0 to 2147483647\n", "--top-k -1", "@M", STD,
              "--top-k", "-1", NULL);
    bad_usage("--top-k", "--top-k: top-k must be a non-negative integer, got '1.5'\n", "--top-k 1.5", "@M", STD,
              "--top-k", "1.5", NULL);
    bad_usage("--top-k", "--top-k: top-k must be a non-negative integer, got 'many'\n", "--top-k many", "@M", STD,
              "--top-k", "many", NULL);
    bad_usage("--min-p", "--min-p: 1.5 is out of range: must be a number from 0 to 1\n", "--min-p 1.5", "@M", STD,
              "--min-p", "1.5", NULL);
    bad_usage("--min-p", "--min-p: -0.1 is out of range: must be a number from 0 to 1\n", "--min-p -0.1", "@M",
              STD, "--min-p", "-0.1", NULL);
    bad_usage("--min-p", "--min-p: min-p must be a number between 0 and 1, got 'nan'\n", "--min-p nan", "@M", STD,
              "--min-p", "nan", NULL);
    bad_usage("--repeat-penalty", "--repeat-penalty: the repeat penalty must be a positive number, got '0'\n",
              "--repeat-penalty 0", "@M", STD, "--repeat-penalty", "0", NULL);
    bad_usage("--repeat-penalty", "--repeat-penalty: the repeat penalty must be a positive number, got '-1.1'\n",
              "--repeat-penalty -1.1", "@M", STD, "--repeat-penalty", "-1.1", NULL);
    bad_usage("--repeat-penalty", "--repeat-penalty: inf is out of range: must be a number from -3.40282e+38 to 3.40282e+38\n",
              "--repeat-penalty inf", "@M", STD, "--repeat-penalty", "inf", NULL);
    bad_usage("--repeat-last-n", "--repeat-last-n: -2 is out of range: must be an integer from -1 to 2147483647\n",
              "--repeat-last-n -2", "@M", STD, "--repeat-last-n", "-2", NULL);
    bad_usage("--repeat-last-n",
              "--repeat-last-n: must be -1 (the context), 0 (off) or a positive integer, got 'all'\n",
              "--repeat-last-n all", "@M", STD, "--repeat-last-n", "all", NULL);
    bad_usage("--presence-penalty", "--presence-penalty: the presence penalty must be a number, got 'abc'\n",
              "--presence-penalty abc", "@M", STD, "--presence-penalty", "abc", NULL);
    bad_usage("--presence-penalty", "--presence-penalty: the presence penalty must be a number, got 'nan'\n",
              "--presence-penalty nan", "@M", STD, "--presence-penalty", "nan", NULL);
    bad_usage("--frequency-penalty", "--frequency-penalty: inf is out of range: must be a number from -3.40282e+38 to 3.40282e+38\n",
              "--frequency-penalty inf", "@M", STD, "--frequency-penalty", "inf", NULL);
    bad_usage("--frequency-penalty", "--frequency-penalty: the frequency penalty must be a number, got ''\n",
              "--frequency-penalty= (empty)", "@M", STD, "--frequency-penalty=", NULL);
    bad_usage("--ctx", "--ctx: 0 is out of range: must be an integer from 1 to 2147483647\n", "--ctx 0", "@M", STD,
              "--ctx", "0", NULL);
    bad_usage("--ctx", "--ctx: -5 is out of range: must be an integer from 1 to 2147483647\n", "--ctx -5", "@M", STD,
              "--ctx", "-5", NULL);
    bad_usage("--ctx", "--ctx: the context length must be a positive integer, got '1k'\n", "--ctx 1k", "@M", STD,
              "--ctx", "1k", NULL);
    bad_usage("--ctx", "--ctx: the model's context is 512 positions, got 513\n",
              "--ctx 513: longer than the model's context", "@M", STD, "--ctx", "513", NULL)
        ->lib_opens = 1;
    bad_usage("--reply-tokens", "--reply-tokens: -1 is out of range: must be an integer from 0 to 2147483647\n",
              "--reply-tokens -1", "@M", STD, "-m", "chat", "--reply-tokens", "-1", NULL);
    bad_usage("--reply-tokens", "--reply-tokens: reply tokens must be a non-negative integer, got 'x'\n",
              "--reply-tokens x", "@M", STD, "--reply-tokens", "x", NULL);
    bad_usage("--chat-template",
              "--chat-template: unknown chat template 'vicuna' (expected llama2, chatml, zephyr, none or llama3)\n",
              "--chat-template vicuna", "@M", STD, "-m", "chat", "--chat-template", "vicuna", NULL);
    bad_usage("--chat-template",
              "--chat-template: unknown chat template '' (expected llama2, chatml, zephyr, none or llama3)\n",
              "--chat-template '' (empty)", "@M", STD, "--chat-template", "", NULL);
    bad_usage("--stop", "--stop: a stop string must not be empty\n", "--stop ''", "@M", STD, "--stop", "", NULL);
    bad_usage("--stop", "--stop: missing value\n", "--stop without its value", "@M", STD, "--stop", NULL);
    /* One more than the 32 the program keeps. */
    hostile_case *c = bad_usage("--stop", "--stop: more than 32 stop strings\n", "33 stop strings", "@M", STD, NULL);
    for (int i = 6; i < 6 + 33; i++) c->args[i] = "--stop=x";
    c->args[6 + 33] = NULL;
    bad_usage("-f", "-f: -i gives the prompt already (use one of them)\n", "-f and -i together", "@M", STD, "-i",
              "Once", "-f", "@T", NULL);
    bad_usage("-f", "-f: missing value\n", "-f without its value", "@M", STD, "-f", NULL);
}

static void usage_cases(void) {
    bad_usage("--bogus", "unknown option", "unknown long flag", "@M", STD, "--bogus", NULL);
    bad_usage("-x", "unknown option", "unknown short flag", "@M", "-x", STD, NULL);
    bad_usage("-n", "missing value", "-n without its value", "@M", "--no-timer", "-z", "@T", "-n", NULL);
    bad_usage("-z", "missing value", "-z without its value", "@M", "--no-timer", "-n", "8", "-z", NULL);
    bad_usage("-t", "temperature", "-t abc", "@M", STD, "-t", "abc", NULL);
    bad_usage("-t", "-t: -1 is out of range: must be a number from 0 to 3.40282e+38\n", "-t -1", "@M", STD, "-t", "-1", NULL);
    bad_usage("-t", "temperature", "-t nan", "@M", STD, "-t", "nan", NULL);
    bad_usage("-t", "-t: inf is out of range: must be a number from 0 to 3.40282e+38\n", "-t inf", "@M", STD, "-t", "inf", NULL);
    bad_usage("-t", "-t: 1e999 is out of range: must be a number from 0 to 3.40282e+38\n", "-t 1e999 (out of range)", "@M", STD, "-t", "1e999", NULL);
    bad_usage("-t", "'1?2'", "-t with a newline in the value (one line all the same)", "@M", STD, "-t", "1\n2", NULL);
    bad_usage("--temperature", "temperature", "--temperature= (empty)", "@M", STD, "--temperature=", NULL);
    bad_usage("--temperature", "temperature", "--temperature abc (long form)", "@M", STD, "--temperature", "abc", NULL);
    bad_usage("--top-p", "top-p", "--top-p=2", "@M", STD, "--top-p=2", NULL);
    bad_usage("-p", "-p: 1.5 is out of range: must be a number from 0 to 1\n", "-p 1.5", "@M", STD, "-p", "1.5", NULL);
    bad_usage("-p", "-p: -0.1 is out of range: must be a number from 0 to 1\n", "-p -0.1", "@M", STD, "-p", "-0.1", NULL);
    bad_usage("-p", "top-p", "-p 0.5x", "@M", STD, "-p", "0.5x", NULL);
    bad_usage("-n", "-n: -5 is out of range: must be an integer from 0 to 2147483647\n", "-n -5", "@M", "--no-timer", "-z", "@T", "-n", "-5", NULL);
    bad_usage("-n", "steps", "-n abc", "@M", "--no-timer", "-z", "@T", "-n", "abc", NULL);
    bad_usage("-n", "-n: 99999999999 is out of range: must be an integer from 0 to 2147483647\n", "-n 99999999999 (beyond int)", "@M", "--no-timer", "-z", "@T", "-n", "99999999999", NULL);
    bad_usage("-s", "-s: -1 is out of range: must be an integer from 0 to 18446744073709551615\n", "-s -1", "@M", STD, "-s", "-1", NULL);
    bad_usage("-s", "seed", "-s abc", "@M", STD, "-s", "abc", NULL);
    bad_usage("-s", "-s: 1180591620717411303424 is out of range: must be an integer from 0 to 18446744073709551615\n", "-s 2^70 (beyond 64 bits)", "@M", STD, "-s", "1180591620717411303424", NULL);
    bad_usage("-m", "unknown mode", "-m foo", "@M", STD, "-m", "foo", NULL);
    bad_usage("--threads", "--threads: 0 is out of range: must be an integer from 1 to 1024\n", "--threads 0", "@M", STD, "--threads", "0", NULL);
    bad_usage("--threads", "--threads: 100000 is out of range: must be an integer from 1 to 1024\n", "--threads 100000", "@M", STD, "--threads", "100000", NULL);
    bad_usage("--batch", "--batch: 0 is out of range: must be an integer from 1 to 65536\n", "--batch 0", "@M", STD, "--batch", "0", NULL);
    bad_usage("--no-timer", "takes no value", "--no-timer=1", "@M", "--no-timer=1", "-n", "8", "-z", "@T", NULL);
    bad_usage("--backend", "unknown backend", "--backend nosuch", "@M", STD, "--backend", "nosuch", NULL);
    int has_cuda = 0;
    for (int i = 0; llama2_backend_name(i); i++) has_cuda |= strcmp(llama2_backend_name(i), "cuda") == 0;
    if (!has_cuda)
        bad_usage("--backend", "not compiled into this build", "--backend cuda in a build without CUDA", "@M", STD,
                  "--backend", "cuda", NULL)->lib_opens = 1;
    bad_usage("extra.bin", "unexpected argument", "a second positional argument", "@M", "extra.bin", STD, NULL);
    bad_usage("no checkpoint", NULL, "no checkpoint at all", STD, NULL);
    sampling_usage_cases();

    /* A prompt longer than the context window: "-i" is the culprit, and the
     * message says how many tokens there are and how many fit. */
    static char long_prompt[3001];
    memset(long_prompt, 'x', 3000);
    bad_usage("-i", "the prompt is 3002 tokens, the context window holds 512", "a 3000-character prompt (seq_len 512)",
              "@M", STD, "-i", long_prompt, NULL)->lib_opens = 1;
}

/* ------------------------------------------------------ accepted runs */

/* A small model from l2_write_random_model with one float replaced: the
 * loader takes any float, so non-finite weights must run without a crash
 * (and without undefined behaviour in the kernels). */
static char *small_model(const char *name, int version, int vocab_size) {
    llama2_config c = l2_random_model_config(16, 32, 2, 4, 2, vocab_size, 32, 1, version, version == 2 ? 8 : 0);
    char *path = tmp_path(name);
    llama2_error err = {0};
    if (l2_write_random_model(path, &c, 7, 0, &err) != LLAMA2_OK) die("%s: %s", path, err.message);
    return path;
}

static char *model_with_float(const char *name, int version, size_t offset_after_header, float value, int count) {
    char *path = small_model(name, version, 512);
    size_t size = 0;
    unsigned char *data = (unsigned char *)test_read_file(path, &size);
    if (!data) die("cannot read %s", path);
    size_t at = (version == 0 ? V0_HEADER : V1_HEADER) + offset_after_header;
    for (int i = 0; i < count && at + 4 * (size_t)(i + 1) <= size; i++) put_f32(data, at + 4 * (size_t)i, value);
    write_to(path, data, size);
    free(data);
    return path;
}

static void run_cases(void) {
    runs(NULL, "chat mode with stdin closed", "@M", STD, "-m", "chat", NULL)->expect = "llama2: chat ended: end of input\n";
    runs("", "chat mode with empty stdin", "@M", STD, "-m", "chat", NULL)->expect = "llama2: chat ended: end of input\n";
    runs("\n", "chat mode: an empty system prompt, then the end of input", "@M", STD, "-m", "chat", NULL)->expect =
        "llama2: chat ended: end of input\n";
    runs("\nhi\n", "chat mode: -n 8 ends the first reply", "@M", STD, "-m", "chat", NULL)->expect =
        "llama2: chat ended: the step limit is reached (-n 8)\n";
    runs("\n\xff\xfe\x01\n", "chat mode: a user line of invalid UTF-8 and control bytes", "@M", STD, "-m", "chat",
         "--chat-template", "chatml", NULL)
        ->expect = "llama2: chat ended: the step limit is reached (-n 8)\n";
    runs(NULL, "a tokenizer of 32000 tokens for a model of 512: a warning", "@M", "--no-timer", "-n", "8", "-z",
         outside_path(test_model_path("tokenizer.bin")), NULL)
        ->expect = "warning: the tokenizer has 32000 tokens, the model 512; using the first 512";
    cases[n_cases - 1].source = "tokenizer.bin";
    runs(NULL, "--ctx 1: one position", "@M", STD, "--ctx", "1", NULL);
    runs(NULL, "--ctx 512: the model's context", "@M", STD, "--ctx", "512", NULL);
    runs(NULL, "-f an empty file", "@M", STD, "-f", test_null_device, NULL);
    runs(NULL, "every sampler stage at its edge", "@M", STD, "-t", "1e-30", "--top-k", "2147483647", "--min-p", "1",
         "--repeat-penalty", "1e30", "--repeat-last-n", "-1", "--presence-penalty", "-1e30", "--frequency-penalty",
         "1e30", "-p", "1e-30", NULL);
    runs(NULL, "--repeat-last-n 2147483647: the window is the context at most", "@M", STD, "--repeat-penalty", "1.1",
         "--repeat-last-n", "2147483647", NULL);
    runs(NULL, "a stop string of a single byte", "@M", STD, "--stop", "e", NULL);
    static char long_turn[3100];
    memcpy(long_turn, "\n", 1);
    memset(long_turn + 1, 'y', 3000);
    long_turn[3001] = '\n';
    runs(long_turn, "chat mode: a user turn longer than the context window", "@M", "--no-timer", "-z", "@T", "-m", "chat",
         "-n", "0", NULL)->expect = "the context window is full (512 positions)";
    runs(NULL, "-n 100000: clamped to the context window", "@M", "--no-timer", "-z", "@T", "-n", "100000", "-t", "0",
         NULL);
    runs(NULL, "-n 0: the whole context window", "@M", "--no-timer", "-z", "@T", "-n", "0", "-t", "0", NULL);
    runs(NULL, "-n INT_MAX: clamped", "@M", "--no-timer", "-z", "@T", "-n", "2147483647", "-t", "0", NULL);
    runs(NULL, "--batch 65536: more than the context window", "@M", STD, "--batch", "65536", "-i", "Once upon", NULL);
    runs(NULL, "an empty prompt", "@M", STD, "-i", "", NULL);
    runs(NULL, "--no-mmap", "@M", STD, "--no-mmap", NULL);
    runs(NULL, "a prompt of invalid UTF-8 and control bytes", "@M", STD, "-i", "\xff\xfe\x01\x02 \xc0\xaf\x1b[2J\x7f",
         NULL);

    /* Offsets after the header: v1 / v2 begin with the attention norms; v0
     * with the embedding table (512 x 16 floats), then the norms. */
    char *nan_v0 = model_with_float("nan-norm-v0.bin", 0, 512 * 16 * 4, NAN, 16);
    runs(NULL, "v0 model whose first attention norm is NaN", nan_v0, STD, NULL);
    char *nan_v1 = model_with_float("nan-norm-v1.bin", 1, 0, NAN, 16);
    runs(NULL, "v1 model whose first attention norm is NaN", nan_v1, STD, NULL);
    char *inf_v1 = model_with_float("inf-norm-v1.bin", 1, 0, INFINITY, 16);
    runs(NULL, "v1 model whose first attention norm is +inf", inf_v1, STD, NULL);
    char *huge_v1 = model_with_float("huge-norm-v1.bin", 1, 0, 3e38f, 16);
    runs(NULL, "v1 model whose first attention norm is 3e38 (activations overflow)", huge_v1, STD, NULL);
    char *nan_v2 = model_with_float("nan-norm-v2.bin", 2, 0, NAN, 16);
    runs(NULL, "v2 model whose first attention norm is NaN", nan_v2, STD, NULL);
    /* v2 norms: (2 * 2 + 1) * 16 floats; the embedding: 512 * 16 int8, then
     * its 512 * 16 / 8 scales. */
    char *inf_v2 = model_with_float("inf-scales-v2.bin", 2, 5 * 16 * 4 + 512 * 16, INFINITY, 1024);
    runs(NULL, "v2 model whose embedding scales are +inf", inf_v2, STD, NULL);
}

/* Small models with vocabularies too small for what the tokenizer must
 * do: tok512.bin loads only their first entries. */
static void input_cases(void) {
    bad_input(tmp_path("no-such-prompt.txt"), "cannot open: No such file or directory", "-f a missing file", "@M",
              STD, "-f", "@P", NULL);
    bad_input(outside_path(tmp_dir), "Is a directory", "-f a directory", "@M", STD, "-f", "@P", NULL);
    bad_input(write_tmp("nul-prompt.txt", "Once\0upon", 9), "the prompt holds a NUL byte (at offset 4)",
              "-f a file with a NUL byte", "@M", STD, "-f", "@P", NULL);
    static char long_prompt[3000];
    memset(long_prompt, 'x', sizeof long_prompt);
    command_case(BAD_USAGE, write_tmp("long-prompt.txt", long_prompt, sizeof long_prompt), "-f",
                 "the prompt is 3002 tokens, the context window holds 512", NULL,
                 "-f a 3000-character prompt (seq_len 512)", "@M", STD, "-f", "@P", NULL)
        ->lib_opens = 1;
}

static void pair_cases(void) {
    char *vocab1 = small_model("vocab1.bin", 1, 1);
    bad_pair(vocab1, "leave out BOS", "a model of 1 token: no BOS", "@P", STD, NULL);
    bad_pair(vocab1, "leave out BOS", "a model of 1 token in chat mode", "@P", STD, "-m", "chat", "-y", "sys", "-i", "hi",
             NULL);
    char *vocab3 = small_model("vocab3.bin", 2, 3);
    bad_pair(vocab3, "dummy prefix", "a model of 3 tokens: no \" \" piece or byte token for it", "@P", STD, "-i", "a",
             NULL);
    char *vocab200 = small_model("vocab200.bin", 0, 200);
    bad_pair(vocab200, "byte 0xFF", "a model of 200 tokens: no byte token for 0xFF", "@P", STD, "-i", "\xff", NULL)
        ->posix_only = test_utf16_arguments ? "a byte 0xFF in an argument, which Windows passes as UTF-16" : NULL;
}

/* Inputs the fuzzers found, kept as bytes (see fuzz/). */
static void regression_cases(void) {
    /* fuzz_checkpoint: a v2 file (dim 8, hidden 12, 1 layer, 2 heads, 1 kv
     * head, vocab 12, seq 8, shared, group size 4) whose attention value
     * matrix has one NaN scale (bytes 00 ff ff ff at offset 788): some values
     * turn NaN and the int8 quantization of the activations converts NaN to
     * an integer, undefined behaviour (clang's -fsanitize=float-cast-overflow
     * stops there). The 256-byte header is all zeros after its first 41
     * bytes; three norms of 8 floats 1.0 follow, then the bytes below. */
    static const unsigned char header[41] = {
        0x32, 0x34, 0x6b, 0x61, 0x02, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x0c, 0x00,
        0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
        0x0c, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00,
    };
    static const char body_hex[] =
        "ebd93bfc91728b930700d7ab4adcfd4f70f5e9ade9651ec4a49e043a7bf76d1ef2c5c679580bbcca434985b5c1186799"
        "db0c83b5e19307085a6637d7add5567f82cea1eb2f6a1ebfda8e8394b722d5e63dcef463151584067a2f639041b06985"
        "6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b"
        "6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b"
        "4d2bbce71b1f9ca9e3686ab89a22030e6325a2b797352194839d8b71bef88b5cf33f5dbd0f43f6a88c31283c6f85a635"
        "f78931031a3dae4c6382ea733128b7346f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b"
        "6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b01772cc2bc8ed4076f9015a76e1752e7"
        "bfc7b3d69e3cf6dd616a896f30d8a1186f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b"
        "028b5583ef26a2d7873b04baaab59a21cc852b8a2693e2574e0115b1e098abe26f12033b6f12033b6f12033b6f12033b"
        "6f12033b00ffffff6f12033b6f12033b200150c69d88eb68efb7f6c9188423415f003b9ece214eb1135933ce2cfbadc5"
        "6ac19f33fc4b18443b6ab6cbf348199be98e6eadd77fd0ebb77418b58a57ce8b6f12033b6f12033b6f12033b6f12033b"
        "6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b"
        "641e23e2a94e5426be8d6e05c276fd3f547e50ebf7ff4d89f72a8eac5216de589b5273620967c1bd9d14a11e4acc5ada"
        "ac2d1e9c5e5fd6c581c0c8cfcfc18c5fdb767e4f5e5889b6ac28546e0aedf1dfd21d3f6e530ca75bdc29e8d83b9873ee"
        "6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b"
        "6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b"
        "db4f35ee246a022f0c14342dacc1401bbbab13713a9634cff7caac9e0cf94c2f1cd3d8fec41eabf44a3e183fc26b4a0e"
        "1251b05850587ed123bb21a6d04d02fc6f4ddc3932a082a3253020e570d43251efab9d78b5cdcb42d6a984e08dec0c2f"
        "6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b"
        "6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b"
        "57e1e7ca88b3a211a63af7d3255a9ad3853d0316e215743e6b961e2e5572838eabf36e9523b0c7f3658c20b0934f432c"
        "bea6ae924bc4cbad152f67d3d7e0d270786a9588ac35263d34a97bd3e4f364a17f444fb75db62e50987800c7e8ff6d94"
        "6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b"
        "6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b6f12033b";
    unsigned char file[1504] = {0};
    memcpy(file, header, sizeof header);
    for (size_t at = 256; at < 352; at += 4) put_f32(file, at, 1.0f);
    for (size_t i = 0; 2 * i + 1 < sizeof body_hex; i++) {
        unsigned byte;
        if (sscanf(body_hex + 2 * i, "%2x", &byte) != 1) die("bad hex in the regression bytes");
        file[352 + i] = (unsigned char)byte;
    }
    char *path = write_tmp("fuzz-nan-scale-v2.bin", file, sizeof file);
    runs(NULL, "fuzz_checkpoint regression: v2 model with a NaN scale in wv", path, STD, NULL)->expect =
        "warning: the tokenizer has 512 tokens, the model 12; using the first 12";

    /* fuzz_args: arguments split on NUL bytes, a seed value holding
     * newlines; the message quoted it and took four lines. */
    static const char args_crash[] = "model.bin\0-t\0" "0.8\0-p\0" "0.9\0-s\0" "42n\n\n\nce upon a time";
    hostile_case *c =
        bad_usage("-s", "got '42n???ce upon a time'", "fuzz_args regression: -s with newlines in its value", NULL);
    int n = 0;
    for (size_t at = 0; at < sizeof args_crash - 1 && n < MAX_ARGS - 1; at += strlen(args_crash + at) + 1)
        c->args[n++] = args_crash + at;
}

/* ------------------------------------------------ header extension */

/* src with `n` bytes at `offset` replaced: a bad model. */
static void model_with_bytes(const char *tag, const unsigned char *src, size_t size, size_t offset,
                             const void *bytes, size_t n, const char *expect, const char *what) {
    static int serial;
    char name[96];
    snprintf(name, sizeof name, "%s-ext%d.bin", tag, serial++);
    unsigned char *p = resized(src, size, size);
    memcpy(p + offset, bytes, n);
    bad_model(write_tmp(name, p, size), expect, "%s: %s", tag, what)->source = source_name(src);
    free(p);
}

static void model_with_f32(const char *tag, const unsigned char *src, size_t size, size_t offset, float value,
                           const char *expect, const char *what) {
    model_with_bytes(tag, src, size, offset, &value, sizeof value, expect, what);
}

/* The rope theta and RMSNorm epsilon of versions 1 and 2 at bytes 64 and
 * 68 (docs/FORMAT.md): 0 is llama2.c's value, anything else must be a
 * positive finite number, and the rest of the padding must stay zero. */
static void header_extension_cases(void) {
    const size_t theta = L2_HEADER_ROPE_THETA_AT, eps = L2_HEADER_NORM_EPS_AT;
    model_with_f32("v1", v1, v1_size, theta, NAN, "rope theta is nan, must be a positive finite number",
                   "rope theta NaN");
    model_with_f32("v1", v1, v1_size, theta, INFINITY, "rope theta is inf", "rope theta +inf");
    model_with_f32("v2", v2, v2_size, theta, -10000.0f, "rope theta is -10000", "rope theta -10000");
    model_with_f32("v2", v2, v2_size, theta, -0.0f, "rope theta is -0", "rope theta -0 (not all-zero bytes)");
    model_with_f32("v1", v1, v1_size, eps, NAN, "RMSNorm epsilon is nan", "RMSNorm epsilon NaN");
    model_with_f32("v1", v1, v1_size, eps, -INFINITY, "RMSNorm epsilon is -inf", "RMSNorm epsilon -inf");
    model_with_f32("v2", v2, v2_size, eps, -1e-5f, "RMSNorm epsilon is -1e-05", "RMSNorm epsilon -1e-5");
    const unsigned char one = 1, high = 0x80;
    model_with_bytes("v1", v1, v1_size, 37, &one, 1, "byte 37 is 0x01, must be 0",
                     "a byte where version 2 keeps its group size");
    model_with_bytes("v2", v2, v2_size, 41, &one, 1, "byte 41 is 0x01, must be 0", "the first padding byte");
    model_with_bytes("v1", v1, v1_size, 63, &high, 1, "byte 63 is 0x80, must be 0", "the byte before rope theta");
    model_with_bytes("v2", v2, v2_size, 72, &one, 1,
                     "rope scaling factor 1.4013e-45, low_freq_factor 0, high_freq_factor 0, original context 0: need "
                     "factor >= 1, 0 < low < high, context > 0",
                     "a RoPE scaling factor alone");
    model_with_bytes("v2", v2, v2_size, 88, &one, 1, "byte 88 is 0x01, must be 0", "the byte after the RoPE scaling");
    model_with_bytes("v1", v1, v1_size, 255, &high, 1, "byte 255 is 0x80, must be 0", "the last header byte");

    /* Other values than llama2.c's, and its own written out: both run. */
    const float values[2][2] = {{500000.0f, 1e-6f}, {10000.0f, 1e-5f}};
    for (int version = 1; version <= 2; version++)
        for (int k = 0; k < 2; k++) {
            char name[64];
            snprintf(name, sizeof name, "extended-v%d-%d.bin", version, k);
            llama2_config c = l2_random_model_config(16, 32, 2, 4, 2, 512, 32, 1, version, version == 2 ? 8 : 0);
            char *path = tmp_path(name);
            llama2_error err = {0};
            if (l2_write_random_model(path, &c, 7, 0, &err) != LLAMA2_OK) die("%s: %s", path, err.message);
            size_t size = 0;
            unsigned char *data = (unsigned char *)test_read_file(path, &size);
            if (!data) die("cannot read %s", path);
            put_f32(data, theta, values[k][0]);
            put_f32(data, eps, values[k][1]);
            write_to(path, data, size);
            free(data);
            char what[160];
            snprintf(what, sizeof what, "v%d model with rope theta %g and RMSNorm epsilon %g%s", version,
                     (double)values[k][0], (double)values[k][1], k == 1 ? " (llama2.c's, written out)" : "");
            runs(NULL, what, path, STD, NULL);
        }
}

/* -------------------------------------------------------- the checks */

static void build_argv(const hostile_case *c, char **argv) {
    int n = 0;
    argv[n++] = (char *)test_llama2_bin();
    if (!c->args[0]) {
        const char *fixed[] = {c->kind == BAD_MODEL ? c->path : model_path, "--no-timer", "-n", "8", "-z",
                               c->kind == BAD_TOKENIZER ? c->path : tokenizer_path};
        for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) argv[n++] = (char *)fixed[i];
    } else {
        for (int i = 0; i < MAX_ARGS - 1 && c->args[i]; i++) {
            const char *a = c->args[i];
            argv[n++] = (char *)(strcmp(a, "@M") == 0   ? model_path
                                 : strcmp(a, "@T") == 0 ? tokenizer_path
                                 : strcmp(a, "@P") == 0 ? c->path
                                                        : a);
        }
    }
    argv[n] = NULL;
}

static int count_lines(const char *s, size_t len) {
    int n = 0;
    for (size_t i = 0; i < len; i++) n += s[i] == '\n';
    return n;
}

static void check_one_line(const char *what, const char *msg, size_t size) {
    size_t len = strnlen(msg, size);
    if (len == 0 || len == size) fail_msg("%s: empty or unterminated message", what);
    if (strchr(msg, '\n')) fail_msg("%s: message of several lines: '%s'", what, msg);
}

/* The library's message for a case: one line, holding c->expect if set. */
static void check_case_message(const hostile_case *c, const char *msg, size_t size) {
    check_one_line(c->name, msg, size);
    if (c->expect && !strstr(msg, c->expect)) fail_msg("message lacks '%s': %s", c->expect, msg);
}

/* What is wrong with one run of the program, written into problem; 0 if
 * nothing is. */
static int judge_run(const hostile_case *c, int status, const test_run *r, char *problem, size_t size) {
    if (status < 0) return snprintf(problem, size, "the program could not be run, or crashed (status %d)", status);
    if (status >= 128) return snprintf(problem, size, "killed by signal %d; stderr: %s", status - 128, r->err);
    if (c->kind == RUNS) {
        if (status != 0) return snprintf(problem, size, "exit status %d, expected 0; stderr: %s", status, r->err);
        if (c->expect ? count_lines(r->err, r->err_len) != 1 || !strstr(r->err, c->expect) : r->err_len != 0)
            return snprintf(problem, size, "unexpected stderr: %s", r->err);
        return 0;
    }
    int expected = c->kind == BAD_USAGE ? 2 : 1;
    if (status != expected)
        return snprintf(problem, size, "exit status %d, expected %d; stderr: %s", status, expected, r->err);
    if (r->out_len != 0) return snprintf(problem, size, "%zu bytes on stdout: '%s'", r->out_len, r->out);
    if (count_lines(r->err, r->err_len) != 1 || r->err_len == 0 || r->err[r->err_len - 1] != '\n')
        return snprintf(problem, size, "stderr is not exactly one line: '%s'", r->err);
    char prefix[4200];
    const char *culprit = c->culprit ? c->culprit : c->path;
    snprintf(prefix, sizeof prefix, "llama2: %s%s", culprit, strcmp(culprit, "no checkpoint") == 0 ? "" : ": ");
    if (strncmp(r->err, prefix, strlen(prefix)) != 0)
        return snprintf(problem, size, "stderr does not start with '%s': %s", prefix, r->err);
    if (r->err_len <= strlen(prefix) + 1) return snprintf(problem, size, "no message after the name: %s", r->err);
    if (c->expect && !strstr(r->err, c->expect))
        return snprintf(problem, size, "stderr lacks '%s': %s", c->expect, r->err);
    return 0;
}

/* Runs the program on one case; returns its status (see test_run_program). */
static int run_case(const hostile_case *c, test_run *r) {
    char *argv[MAX_ARGS + 8];
    build_argv(c, argv);
    size_t stdin_len = c->stdin_text ? strlen(c->stdin_text) : 0;
    return test_run_program(argv, NULL, c->stdin_text, stdin_len, r);
}

/* Skips the running test unless the files the case uses are there: the
 * one its bad file is made from; for a run of the program, also the model
 * and tokenizer of its command line, unless the line is refused before they
 * are opened. */
static void require_inputs(const hostile_case *c, int program) {
    if (c->posix_only) test_require_posix(c->posix_only);
    if (c->source) test_require_model(c->source);
    if (!program || (c->kind == BAD_USAGE && !c->lib_opens)) return;
    if (!c->args[0]) {
        /* The usual line: the model opens before the tokenizer. */
        if (c->kind == BAD_TOKENIZER) test_require_model(MODEL_FILE);
        return;
    }
    for (int i = 0; i < MAX_ARGS - 1 && c->args[i]; i++) {
        if (strcmp(c->args[i], "@M") == 0) test_require_model(MODEL_FILE);
        if (strcmp(c->args[i], "@T") == 0) test_require_model(TOKENIZER_FILE);
    }
}

/* One case through the program. */
static void test_program(void **state) {
    const hostile_case *c = *state;
    require_inputs(c, 1);
    test_run r;
    int status = run_case(c, &r);
    char problem[1024];
    int wrong = judge_run(c, status, &r, problem, sizeof problem);
    test_run_free(&r);
    if (wrong) fail_msg("%s", problem);
}

/* One bad model through llama2_model_open, mapped and read. */
static void test_model_open(void **state) {
    const hostile_case *c = *state;
    require_inputs(c, 0);
    for (int no_mmap = 0; no_mmap <= 1; no_mmap++) {
        llama2_model_options opts = {0};
        opts.no_mmap = no_mmap;
        llama2_model *m = (llama2_model *)&opts; /* must be reset to NULL */
        llama2_error err = {0};
        llama2_status s = llama2_model_open(c->path, &opts, &m, &err);
        if (c->lib_opens) {
            if (s != LLAMA2_OK) fail_msg("no_mmap %d: expected to open: %s", no_mmap, err.message);
            /* ... and a session must be refused with a message. */
            llama2_session *session = NULL;
            llama2_error serr = {0};
            llama2_status ss = llama2_session_create(m, NULL, &session, &serr);
            llama2_session_destroy(session);
            llama2_model_close(m);
            assert_int_not_equal(ss, LLAMA2_OK);
            assert_null(session);
            check_one_line("session", serr.message, sizeof serr.message);
            continue;
        }
        if (s == LLAMA2_OK) {
            llama2_model_close(m);
            fail_msg("no_mmap %d: a bad model opened", no_mmap);
        }
        assert_null(m);
        assert_int_equal(err.status, s);
        check_case_message(c, err.message, sizeof err.message);
    }
}

/* One bad tokenizer through llama2_tokenizer_open and, when it is a file
 * that can be read, llama2_tokenizer_from_memory. */
static void test_tokenizer_open(void **state) {
    const hostile_case *c = *state;
    require_inputs(c, 0);
    llama2_tokenizer *t = (llama2_tokenizer *)&t;
    llama2_error err = {0};
    llama2_status s = llama2_tokenizer_open(c->path, 512, &t, &err);
    if (s == LLAMA2_OK) {
        llama2_tokenizer_close(t);
        fail_msg("a bad tokenizer opened");
    }
    assert_null(t);
    check_one_line(c->name, err.message, sizeof err.message);
    if (l2_path_lookup(c->path, NULL, NULL) != L2_PATH_FILE) return;
    size_t size = 0;
    char *data = test_read_file(c->path, &size);
    assert_non_null(data);
    t = NULL;
    memset(&err, 0, sizeof err);
    s = llama2_tokenizer_from_memory(data, size, 512, &t, &err);
    free(data);
    if (s == LLAMA2_OK) {
        llama2_tokenizer_close(t);
        fail_msg("a bad tokenizer loaded from memory");
    }
    check_case_message(c, err.message, sizeof err.message);
}

/* One bad command line through cli_parse. */
static void test_cli_parse(void **state) {
    const hostile_case *c = *state;
    char *argv[MAX_ARGS + 8];
    build_argv(c, argv);
    int argc = 0;
    while (argv[argc]) argc++;
    cli_args a;
    char msg[512];
    int rc = cli_parse(argc, argv, &a, msg, sizeof msg);
    if (c->lib_opens) { /* a good command line: what it asks for is refused later */
        assert_int_equal(rc, 0);
        return;
    }
    assert_int_equal(rc, 2);
    check_one_line(c->name, msg, sizeof msg);
}

/* -------------------------------------------- the library, directly */

static void test_null_arguments(void **state) {
    (void)state;
    test_require_model(MODEL_FILE);
    test_require_model(TOKENIZER_FILE);
    llama2_error err = {0};
    llama2_model *m = NULL;
    assert_int_not_equal(llama2_model_open(NULL, NULL, &m, &err), LLAMA2_OK);
    assert_null(m);
    check_one_line("model_open(NULL)", err.message, sizeof err.message);
    memset(&err, 0, sizeof err);
    assert_int_not_equal(llama2_model_open(model_path, NULL, NULL, &err), LLAMA2_OK);
    check_one_line("model_open(out NULL)", err.message, sizeof err.message);
    assert_int_not_equal(llama2_model_open("/nonexistent/x.bin", NULL, &m, NULL), LLAMA2_OK); /* err may be NULL */
    assert_null(m);

    llama2_tokenizer *t = NULL;
    memset(&err, 0, sizeof err);
    assert_int_not_equal(llama2_tokenizer_open(NULL, 0, &t, &err), LLAMA2_OK);
    check_one_line("tokenizer_open(NULL)", err.message, sizeof err.message);
    memset(&err, 0, sizeof err);
    assert_int_not_equal(llama2_tokenizer_open(tokenizer_path, -1, &t, &err), LLAMA2_OK);
    check_one_line("tokenizer_open(vocab -1)", err.message, sizeof err.message);
    memset(&err, 0, sizeof err);
    assert_int_not_equal(llama2_tokenizer_open(tokenizer_path, 513, &t, &err), LLAMA2_OK);
    check_one_line("tokenizer_open(vocab 513)", err.message, sizeof err.message);
    memset(&err, 0, sizeof err);
    assert_int_not_equal(llama2_tokenizer_from_memory(NULL, 5, 0, &t, &err), LLAMA2_OK);
    check_one_line("from_memory(NULL, 5)", err.message, sizeof err.message);
    memset(&err, 0, sizeof err);
    assert_int_not_equal(llama2_tokenizer_from_memory(NULL, 0, 0, &t, &err), LLAMA2_OK);
    check_one_line("from_memory(NULL, 0)", err.message, sizeof err.message);
    memset(&err, 0, sizeof err);
    assert_int_not_equal(llama2_tokenizer_from_memory(tok512, tok512_size, -7, &t, &err), LLAMA2_OK);
    check_one_line("from_memory(vocab -7)", err.message, sizeof err.message);
    assert_null(t);
}

static void test_sampler_and_pool_arguments(void **state) {
    (void)state;
    llama2_sampler *s = NULL;
    llama2_error err = {0};
    const struct { int vocab; float temperature, topp; } bad[] = {
        {0, 1.0f, 0.9f}, {-1, 1.0f, 0.9f}, {INT_MIN, 1.0f, 0.9f}, {512, -1.0f, 0.9f},
        {512, NAN, 0.9f}, {512, INFINITY, 0.9f}, {512, 1.0f, 1.5f}, {512, 1.0f, -0.1f}, {512, 1.0f, NAN},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&err, 0, sizeof err);
        llama2_sampler_options o = {.temperature = bad[i].temperature, .top_p = bad[i].topp, .seed = 1};
        assert_int_not_equal(llama2_sampler_create(bad[i].vocab, &o, &s, &err), LLAMA2_OK);
        assert_null(s);
        check_one_line("sampler_create", err.message, sizeof err.message);
    }
    llama2_threadpool *pool = NULL;
    memset(&err, 0, sizeof err);
    assert_int_not_equal(llama2_threadpool_create(1 << 20, &pool, &err), LLAMA2_OK);
    assert_null(pool);
    check_one_line("threadpool_create", err.message, sizeof err.message);
}

static int one_line(const llama2_error *err) {
    size_t len = strnlen(err->message, sizeof err->message);
    return len > 0 && len < sizeof err->message && !strchr(err->message, '\n');
}

/* Bad tokens and positions for a session of a valid model. */
static const char *session_arguments(void) {
    static char problem[512];
    llama2_model *m = NULL;
    llama2_session *s = NULL;
    llama2_error err = {0};
    if (llama2_model_open(model_path, NULL, &m, &err) != LLAMA2_OK) return "cannot open the model";
    if (llama2_session_create(m, NULL, &s, &err) != LLAMA2_OK) return "cannot create a session";
    const int seq_len = llama2_model_config(m)->seq_len, vocab = llama2_model_config(m)->vocab_size;
    float *logits = NULL;
    const struct { int token, n, pos; } bad[] = {
        {-1, 1, 0}, {vocab, 1, 0}, {INT_MIN, 1, 0}, {INT_MAX, 1, 0}, {1, 0, 0}, {1, -1, 0}, {1, INT_MIN, 0},
        {1, 1, -1}, {1, 1, seq_len}, {1, 2, seq_len - 1}, {1, 1, INT_MIN}, {1, 1, INT_MAX}, {1, 2, INT_MAX},
    };
    int tokens[4] = {1, 1, 1, 1};
    const char *result = NULL;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0] && !result; i++) {
        tokens[0] = bad[i].token;
        memset(&err, 0, sizeof err);
        if (llama2_session_eval(s, tokens, bad[i].n, bad[i].pos, &logits, &err) == LLAMA2_OK || !one_line(&err)) {
            snprintf(problem, sizeof problem, "eval of token %d, %d tokens at %d: accepted or no message",
                     bad[i].token, bad[i].n, bad[i].pos);
            result = problem;
        }
    }
    tokens[0] = 1;
    if (!result && llama2_session_eval(s, tokens, 2, seq_len - 2, &logits, &err) != LLAMA2_OK)
        result = "the last two positions were refused";
    if (!result && (llama2_session_eval(s, tokens, 3, seq_len - 2, &logits, &err) != LLAMA2_E_CONTEXT ||
                    err.status != LLAMA2_E_CONTEXT))
        result = "three tokens at seq_len - 2 did not give LLAMA2_E_CONTEXT";
    llama2_session_destroy(s);
    llama2_model_close(m);
    return result;
}

static void test_session_arguments(void **state) {
    (void)state;
    test_require_model(MODEL_FILE);
    test_in_child(session_arguments);
}

/* --------------------------------------------------------------- main */

static void remove_tmp(void) {
    for (int i = n_created - 1; i >= 0; i--) {
        if (strncmp(created[i], tmp_dir, strlen(tmp_dir)) == 0) test_remove(created[i]);
        free(created[i]);
    }
    n_created = 0;
    test_remove(tmp_dir);
}

static void load_inputs(void) {
    if (test_tmp_dir_create(tmp_dir, sizeof tmp_dir, "hostile") != 0) die("no temporary folder");
    model_path = strdup(test_model_path(MODEL_FILE));
    tokenizer_path = strdup(test_model_path(TOKENIZER_FILE));
    v0 = read_model(MODEL_FILE, &v0_size);
    v1 = read_model("stories260K_v1.bin", &v1_size);
    v2 = read_model("stories260K_q80_gs4.bin", &v2_size);
    tok512 = read_model(TOKENIZER_FILE, &tok512_size);
    tok32k = read_model("tokenizer.bin", &tok32k_size);
}

static void free_inputs(void) {
    free(v0);
    free(v1);
    free(v2);
    free(tok512);
    free(tok32k);
    free(model_path);
    free(tokenizer_path);
}

/* LLAMA2_HOSTILE_TABLE=1: instead of testing, prints every program case as
 * a Markdown table row (what, exit status, stderr), for docs/HOSTILE.md. */
static void print_table(void) {
    const char *kinds[] = {"bad checkpoint", "bad tokenizer", "bad usage", "accepted", "bad pair", "bad input file"};
    printf("| # | kind | input | exit | stderr |\n|---|---|---|---|---|\n");
    for (int i = 0; i < n_cases; i++) {
        const hostile_case *c = &cases[i];
        test_run r;
        run_case(c, &r);
        const char *name = strchr(c->name, ':') ? strchr(c->name, ':') + 2 : c->name;
        printf("| %d | %s | ", i + 1, kinds[c->kind]);
        for (const char *p = name; *p; p++) printf(*p == '|' ? "\\|" : "%c", *p);
        printf(" | %d | ", r.status);
        if (r.err_len == 0) printf("(nothing)");
        else putchar('`');
        size_t dir_len = strlen(tmp_dir), models_len = strlen(test_models_dir());
        for (size_t k = 0; k < r.err_len && r.err[k] != '\n'; k++) {
            if (strncmp(r.err + k, tmp_dir, dir_len) == 0) {
                printf("$TMP");
                k += dir_len - 1;
            } else if (strncmp(r.err + k, test_models_dir(), models_len) == 0) {
                printf("$MODELS");
                k += models_len - 1;
            } else if (r.err[k] == '|') {
                printf("\\|");
            } else {
                putchar(r.err[k]);
            }
        }
        printf("%s |\n", r.err_len == 0 ? "" : "`");
        test_run_free(&r);
    }
}

int main(void) {
    load_inputs();
    file_cases();
    truncation_cases();
    header_field_cases();
    random_cases();
    tokenizer_cases();
    usage_cases();
    run_cases();
    pair_cases();
    input_cases();
    regression_cases();
    header_extension_cases();
    if (getenv("LLAMA2_HOSTILE_TABLE")) {
        for (int i = 0; i < n_cases; i++)
            if (cases[i].source && !test_have_model(cases[i].source)) die("the table needs %s", cases[i].source);
        print_table();
        remove_tmp();
        free_inputs();
        return 0;
    }

    static struct CMUnitTest tests[MAX_CASES * 3 + 8];
    static char names[MAX_CASES * 3][160];
    int n = 0;
    for (int i = 0; i < n_cases; i++) {
        hostile_case *c = &cases[i];
        snprintf(names[n], sizeof names[n], "program: %.120s", c->name);
        tests[n] = (struct CMUnitTest){names[n], test_program, NULL, NULL, c};
        n++;
        void (*lib)(void **) = c->kind == BAD_MODEL       ? test_model_open
                               : c->kind == BAD_TOKENIZER ? test_tokenizer_open
                               : c->kind == BAD_USAGE     ? test_cli_parse
                                                          : NULL;
        if (lib) {
            snprintf(names[n], sizeof names[n], "library: %.120s", c->name);
            tests[n] = (struct CMUnitTest){names[n], lib, NULL, NULL, c};
            n++;
        }
    }
    tests[n++] = (struct CMUnitTest){"library: NULL and negative arguments", test_null_arguments, NULL, NULL, NULL};
    tests[n++] = (struct CMUnitTest){"library: bad sampler and pool arguments", test_sampler_and_pool_arguments, NULL,
                                     NULL, NULL};
    tests[n++] = (struct CMUnitTest){"library: bad tokens and positions", test_session_arguments, NULL, NULL, NULL};
    int failed = _cmocka_run_group_tests("hostile", tests, (size_t)n, NULL, NULL);
    remove_tmp();
    free_inputs();
    return failed;
}
