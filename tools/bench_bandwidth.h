/*
 * llama2-bench: the memory bandwidth probe. Each thread count of --threads
 * reads a 1 GiB buffer BW_PASSES times; the best pass counts. The same for a
 * buffer half the size of the level 3 cache, read over and over, which
 * stays in it: the bound of a model that fits there.
 */
#ifndef LLAMA2_BENCH_BANDWIDTH_H
#define LLAMA2_BENCH_BANDWIDTH_H

#include <stdint.h>

#include "bench_options.h"

#define BW_PASSES 8

typedef struct bw_request {
    int threads[MAX_THREAD_COUNTS];
    int n_threads;
    uint64_t l3_bytes; /* the machine's level 3 cache; 0: none known, not probed */
} bw_request;

typedef struct bw_result {
    double gbs[MAX_THREAD_COUNTS];    /* from memory; 0: not measured */
    double l3_gbs[MAX_THREAD_COUNTS]; /* from the level 3 cache (a buffer half its size); 0: not measured */
    uint64_t sink;
} bw_result;

/* Fills the bw_result `out` for the bw_request `arg`; the signature is
 * run_in_child's, in whose child it runs. */
void measure_bandwidth(const void *arg, void *out);

/* T threads can read at least as fast as fewer would: replaces each rate
 * gbs[t] with the best one measured with at most threads[t] threads (for
 * each of the two kinds of rates). */
void bw_best_up_to(const int *threads, int n_threads, double *gbs);

#endif
