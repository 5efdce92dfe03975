/*
 * llama2-bench: the measurements proper. Each runs in a child process (the
 * program started again, `llama2-bench --child JOB ARGUMENT`), so that a
 * row's peak resident memory is its own.
 */
#ifndef LLAMA2_BENCH_RUN_H
#define LLAMA2_BENCH_RUN_H

#include <stddef.h>

#include "bench_options.h"
#include "llama2.h"

/* The jobs a child runs. */
typedef enum child_job { JOB_ROW, JOB_BANDWIDTH, JOB_PARALLEL, N_JOBS } child_job;

/* Runs the job on arg (a row_request, a bw_request or a parallel_request) in a child process:
 * this program, ctx->self, started again. The child's result (a row_result,
 * a bw_result or a parallel_result) comes back in result. Fails (bench_fail) when the child
 * fails. */
void run_in_child(const bench_context *ctx, child_job job, const void *arg, void *result, const char *what);

/* main of a child: argv holds "--child", the job's name and its argument.
 * Writes the result to standard output; returns the exit status. */
int child_main(const bench_context *ctx, int argc, char **argv);

/* One row of the table: a model, a backend and a thread count. */
typedef struct row_request {
    char path[4096];
    int threads;
    int reps;
    int pp[MAX_PP];
    int n_pp;
    int tg;
    char backend[32]; /* empty: the default */
    char kernels[32]; /* LLAMA2_KERNELS for the row; empty: the library's choice */
    double max_time;  /* seconds one test may take before its reps are cut; 0: no limit */
    char tokenizer[4096]; /* non-empty: tg samples each token and feeds it back */
    char grammar[4096];   /* non-empty: under this GBNF grammar file */
} row_request;

enum { ROW_OK = 0, ROW_OPEN_FAILED = 1, ROW_FAILED = 2 };

typedef struct row_result {
    int status;
    char message[300];
    double pp[MAX_PP][MAX_REPS]; /* tokens per second of each repetition */
    double tg[MAX_REPS];
    int n_pp[MAX_PP]; /* repetitions run of each test (fewer than asked when cut by the time limit) */
    int n_tg;
    double peak_rss_mib;
    unsigned checksum;
    char level[32]; /* the CPU kernel level the row ran at */
} row_result;

/* A bench child's start: the kernel level `kernels` (empty: the library's
 * choice), the model, the level it runs at into `level`, and a pool of
 * `threads`. Returns ROW_OK, or the row's status with *what naming the step
 * that failed (err says why); what was made is the caller's to free. */
int bench_child_open(const char *path, const char *kernels, int threads, llama2_model **model, char *level,
                     size_t level_size, llama2_threadpool **pool, llama2_error *err, const char **what);

/* n fixed pseudo-random token ids past the special tokens (xorshift64): the
 * same ids on every run. */
void bench_fixed_tokens(int *tokens, size_t n, int vocab);

/* Opens the model of the row_request `arg`, then times the prompt and
 * generation tests into the row_result `out`. Runs in a child. */
void run_row(const void *arg, void *out);

#endif
