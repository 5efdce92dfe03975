/*
 * llama2-bench: what it prints -- the header that says what was measured
 * where, the table of rows as they finish, and the JSON array of --json.
 */
#ifndef LLAMA2_BENCH_REPORT_H
#define LLAMA2_BENCH_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "bench_bandwidth.h"
#include "bench_options.h"
#include "bench_parallel.h"
#include "bench_run.h"
#include "llama2.h"

/* The machine, as the header and the JSON name it. */
typedef struct host_info {
    char cpu[256];
    char features[256]; /* the vector extensions of interest that it has */
    long n_cpus;
} host_info;

/* One measured row and what its bound is computed from. */
typedef struct row {
    int shape, type, threads;
    const char *backend;
    llama2_config config;
    uint64_t file_bytes, bytes_per_token;
    double bandwidth_gbs; /* of the level below: 0, not measured */
    int in_l3;            /* the weights a token reads fit in the level 3 cache: its rate is the bound */
    row_result result;
} row;

void read_host_info(host_info *h);

/* The first lines: version, machine, build, and the backends measured. */
void report_header(const bench_context *ctx, const host_info *h, const char *const *backends, int n_backends);

/* The measured rates of each thread count of --threads: from memory, and
 * from the level 3 cache of l3_bytes (0: none known). */
void report_bandwidth(const bench_context *ctx, const bw_result *bw, uint64_t l3_bytes);

/* What the cells mean, then the column names. */
void report_table_header(const bench_context *ctx);

/* One line of the table, flushed so that it shows as soon as it is done. */
void report_row(const bench_context *ctx, const row *w);

/* --parallel: what the cells mean. */
void report_parallel_header(const bench_context *ctx);

/* --parallel: the line that names a table's model, backend, level and
 * threads, then llama-batched-bench's column names. */
void report_parallel_group(const bench_context *ctx, int s, int type, const char *backend, const char *level,
                           int threads);

/* --parallel: one line of the table, flushed. */
void report_parallel_row(const parallel_row *w);

/* --parallel: the rows as a JSON array in the file of --json. */
void write_parallel_json(const bench_context *ctx, const host_info *h, const parallel_row *rows, size_t n_rows);

/* The rows as a JSON array in the file of --json. */
void write_json(const bench_context *ctx, const host_info *h, const row *rows, size_t n_rows);

#endif
