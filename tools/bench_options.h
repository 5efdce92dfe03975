/*
 * llama2-bench: what its parts are handed -- the limits that size its fixed
 * arrays, the weight types, the options, and the context every part takes
 * (the program's name for its messages, the options, the way it fails).
 *
 * The parts: bench.c (main), bench_options.c (the command line),
 * bench_models.c (shapes and the cache of random-weight models),
 * bench_bandwidth.c (the memory bandwidth probe), bench_run.c (child
 * processes, timing one row) and bench_report.c (the header, the table and
 * the JSON). Each includes this header and those of the parts it uses; none
 * uses bench.c.
 */
#ifndef LLAMA2_BENCH_OPTIONS_H
#define LLAMA2_BENCH_OPTIONS_H

#define MAX_REPS 100
#define MAX_PP 8
#define MAX_THREADS 256 /* threads in one row */
#define MAX_THREAD_COUNTS 16 /* entries of --threads */
#define MAX_SHAPES 5
#define MAX_LEVELS 8 /* entries of --kernels */
#define MAX_PARALLEL 16 /* entries of --parallel */
#define MOST_SEQUENCES 64 /* sequences in one --parallel row */

enum { TYPE_F32 = 0, TYPE_Q8 = 1, TYPE_Q4_0 = 2, TYPE_Q4_K_M = 3, N_TYPES = 4 };

typedef struct bench_options {
    int reps;
    int threads[MAX_THREAD_COUNTS];
    int n_threads;
    int pp[MAX_PP];
    int n_pp;
    int tg;
    int shape_on[MAX_SHAPES];
    int type_on[N_TYPES];
    const char *models_dir;
    const char *json_path;
    const char *backend;
    const char *tokenizer; /* --tokenizer: tg samples its tokens (llama2's default chain) and feeds them back */
    const char *grammar;   /* --grammar: ... under this GBNF grammar (with --tokenizer) */
    const char *kernels[MAX_LEVELS]; /* --kernels: the levels, one row each; none: the library's choice */
    char kernel_list[256];           /* --kernels' value, which kernels[] point into */
    int n_kernels;
    double max_time;
    int quick;
    int models_only;
    int no_bandwidth;
    int parallel[MAX_PARALLEL]; /* --parallel: sequences decoded together, one row each; none: the pp/tg table */
    int n_parallel;
} bench_options;

/* What every part is handed. */
typedef struct bench_context {
    const char *program; /* "llama2-bench": the start of every message */
    const char *self;    /* this program's path, started again for each row */
    bench_options options;
} bench_context;

/* Says "<program>: <message>" on standard error and exits with status 1:
 * the benchmark cannot go on. */
void bench_fail(const bench_context *ctx, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3), noreturn))
#endif
    ;

/* Parses argv into ctx->options (--help: prints the usage and exits 0; a
 * bad option: bench_fail). */
void bench_parse_options(bench_context *ctx, int argc, char **argv);

#endif
