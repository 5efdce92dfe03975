/*
 * llama2-bench: what its parts share -- the limits that size its fixed
 * arrays, the weight types, the options, and the one way it fails.
 *
 * The parts: bench.c (main, options), bench_models.c (shapes and the cache
 * of random-weight models), bench_bandwidth.c (the memory bandwidth probe),
 * bench_run.c (child processes, timing one row) and bench_report.c (the
 * header, the table and the JSON).
 */
#ifndef LLAMA2_BENCH_H
#define LLAMA2_BENCH_H

#define PROGRAM "llama2-bench"
#define MAX_REPS 100
#define MAX_PP 8
#define MAX_THREADS 256 /* threads in one row */
#define MAX_THREAD_COUNTS 16 /* entries of --threads */
#define MAX_SHAPES 4
#define MAX_LEVELS 8 /* entries of --kernels */

enum { TYPE_F32 = 0, TYPE_Q8 = 1, N_TYPES = 2 };

typedef struct options {
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
    int n_kernels;
    double max_time;
    int quick;
    int models_only;
    int no_bandwidth;
} options;

/* Prints "llama2-bench: <message>" to stderr and exits with status 1. */
void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
