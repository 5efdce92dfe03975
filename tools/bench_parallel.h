/*
 * llama2-bench --parallel: batched decoding, measured the way llama.cpp's
 * llama-batched-bench measures it. B sequences each evaluate a PP-token
 * prompt (all B prompts in one llama2_session_eval_batch), then TG tokens
 * each, the B sequences advanced together by one eval_batch a step, as
 * llama2-server's scheduler advances its slots. Each row runs in a child
 * (bench_run.c) and prints as llama-batched-bench prints its rows.
 */
#ifndef LLAMA2_BENCH_PARALLEL_H
#define LLAMA2_BENCH_PARALLEL_H

#include <stddef.h>

#include "bench_models.h"
#include "bench_options.h"
#include "llama2.h"

/* One row: a model, a thread count, a prompt length and a sequence count. */
typedef struct parallel_request {
    char path[4096];
    int threads;
    int reps;
    int pp, tg, sequences;
    char backend[32]; /* empty: the default */
    char kernels[32]; /* LLAMA2_KERNELS for the row; empty: the library's choice */
    double max_time;  /* seconds after which the reps are cut; 0: no limit */
} parallel_request;

typedef struct parallel_result {
    int status; /* ROW_OK, ROW_OPEN_FAILED, ROW_FAILED (bench_run.h) */
    char message[300];
    double t_pp[MAX_REPS], t_tg[MAX_REPS]; /* seconds of each repetition */
    int n_reps;
    double peak_rss_mib;
    unsigned checksum;
    char level[32];
} parallel_result;

/* Times the row of the parallel_request `arg` into the parallel_result
 * `out`. Runs in a child. */
void run_parallel(const void *arg, void *out);

/* One measured row, as the table and the JSON show it. */
typedef struct parallel_row {
    int shape, type, threads, pp, tg, sequences;
    const char *backend;
    int group_size;
    parallel_result result;
} parallel_row;

/* Every row of the selection, each printed as it is done; returns them
 * (rows_out, freed by the caller) and their count. */
size_t bench_parallel_rows(const bench_context *ctx, const model_set *models, const char *const *backends,
                           int n_backends, parallel_row **rows_out);

#endif
