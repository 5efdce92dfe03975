/*
 * llama2-bench: tokens per second on random-weight models, in the manner of
 * llama.cpp's llama-bench.
 *
 * For every model shape, weight type and thread count it measures prompt
 * processing (a prompt of N tokens evaluated in blocks from position 0) and
 * generation (one position at a time after a one-token prompt, with the
 * classifier run at every step), each as the median of several repetitions.
 * With --parallel it measures batched decoding instead, as llama.cpp's
 * llama-batched-bench does (bench_parallel.c).
 * The machine's memory read bandwidth is measured too, to give the bound that
 * generation cannot beat: every weight is read once per generated token.
 *
 * Models are written once by l2_write_random_model into a cache folder and
 * reused. Each row runs in a child process (this program started again), so
 * that its peak resident memory is its own.
 *
 * This file: main, which runs the steps in order. The options are
 * bench_options.c's; the steps are in bench_models.c, bench_bandwidth.c,
 * bench_run.c and bench_report.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_bandwidth.h"
#include "bench_models.h"
#include "bench_options.h"
#include "bench_parallel.h"
#include "bench_report.h"
#include "bench_run.h"
#include "llama2.h"
#include "messages.h"
#include "platform/platform.h"

/* --------------------------------------------------------------- main */

/* The rows of every shape, type, backend, level and thread count: each
 * measured in a child as soon as it is set up, and printed when done. */
static size_t run_rows(const bench_context *ctx, const model_set *models, const char *const *backends,
                       int n_backends, const bw_result *bw, uint64_t l3_bytes, row *rows) {
    const bench_options *o = &ctx->options;
    /* The library's choice, unless --kernels lists levels to compare. */
    const char *no_level[1] = {""};
    const char *const *levels = o->n_kernels ? o->kernels : no_level;
    const int n_levels = o->n_kernels ? o->n_kernels : 1;
    row_request *rq = calloc(1, sizeof *rq);
    if (!rq) bench_fail(ctx, "out of memory");
    size_t n_rows = 0;
    for (int s = 0; s < MAX_SHAPES; s++) {
        if (!o->shape_on[s]) continue;
        for (int t = 0; t < N_TYPES; t++) {
            if (!o->type_on[t] || !models->usable[s][t]) continue;
            for (int bi = 0; bi < n_backends; bi++)
            for (int li = 0; li < n_levels; li++)
            for (int k = 0; k < o->n_threads; k++) {
                row *w = &rows[n_rows];
                w->backend = backends[bi];
                w->shape = s;
                w->type = t;
                w->threads = o->threads[k];
                w->config = shape_config(&SHAPES[s], t);
                w->file_bytes = file_bytes(&w->config);
                w->bytes_per_token = bytes_per_token(&w->config);
                /* The bound of the level the weights a token reads fit in. */
                w->in_l3 = bw->l3_gbs[k] > 0 && w->bytes_per_token <= l3_bytes;
                w->bandwidth_gbs = w->in_l3 ? bw->l3_gbs[k] : bw->gbs[k];

                memset(rq, 0, sizeof *rq);
                snprintf(rq->path, sizeof rq->path, "%s", models->paths[s][t]);
                rq->threads = o->threads[k];
                rq->reps = o->reps;
                memcpy(rq->pp, o->pp, sizeof rq->pp);
                rq->n_pp = o->n_pp;
                rq->tg = o->tg;
                rq->max_time = o->max_time;
                snprintf(rq->backend, sizeof rq->backend, "%s", backends[bi]);
                snprintf(rq->kernels, sizeof rq->kernels, "%s", levels[li]);
                if (o->tokenizer) snprintf(rq->tokenizer, sizeof rq->tokenizer, "%s", o->tokenizer);
                if (o->grammar) snprintf(rq->grammar, sizeof rq->grammar, "%s", o->grammar);
                char what[128];
                snprintf(what, sizeof what, "%s %s %d threads", SHAPES[s].name, TYPE_NAMES[t], o->threads[k]);
                run_in_child(ctx, JOB_ROW, rq, &w->result, what);
                if (w->result.status == ROW_OPEN_FAILED && t != TYPE_F32) {
                    fprintf(stderr, "%s: skipping %s rows of %s: %s\n", ctx->program, TYPE_NAMES[t], SHAPES[s].name,
                            w->result.message);
                    break;
                }
                if (w->result.status != ROW_OK) bench_fail(ctx, "%s: %s", what, w->result.message);
                n_rows++;
                report_row(ctx, w);
            }
        }
    }
    free(rq);
    return n_rows;
}

int main(int argc, char **argv) {
    l2_program_start(&argc, &argv);
    bench_context ctx = {.program = "llama2-bench", .self = l2_program_path(argv[0])};
    if (argc > 1 && strcmp(argv[1], "--child") == 0) return child_main(&ctx, argc, argv);
    bench_parse_options(&ctx, argc, argv);
    char cache[4096];
    if (!ctx.options.models_dir) ctx.options.models_dir = default_models_dir(&ctx, cache, sizeof cache);
    const bench_options *o = &ctx.options;
    int most_threads = 0;
    for (int k = 0; k < o->n_threads; k++)
        if (o->threads[k] > most_threads) most_threads = o->threads[k];
    cli_warn_threads(ctx.program, most_threads);

    /* The models first, so that writing them does not overlap a timing. */
    model_set models;
    prepare_models(&ctx, &models);
    if (o->models_only) return 0;

    host_info host;
    read_host_info(&host);
    /* Every compiled backend side by side, unless --backend picks one. */
    const char *backends[8];
    int n_backends = 0;
    if (o->backend)
        backends[n_backends++] = o->backend;
    else
        for (int i = 0; llama2_backend_name(i) && n_backends < 8; i++) backends[n_backends++] = llama2_backend_name(i);
    report_header(&ctx, &host, backends, n_backends);
    if (o->n_parallel) {
        /* Batched decoding: its own table, no bound (several tokens share
         * each weight read). */
        report_parallel_header(&ctx);
        parallel_row *prows = NULL;
        size_t n = bench_parallel_rows(&ctx, &models, backends, n_backends, &prows);
        if (o->json_path) write_parallel_json(&ctx, &host, prows, n);
        free(prows);
        return 0;
    }

    bw_result bw;
    memset(&bw, 0, sizeof bw);
    uint64_t l3_bytes = 0;
    if (!o->no_bandwidth) {
        bw_request rq;
        memset(&rq, 0, sizeof rq);
        rq.n_threads = o->n_threads;
        memcpy(rq.threads, o->threads, sizeof rq.threads);
        rq.l3_bytes = l3_bytes = l2_l3_cache_bytes();
        run_in_child(&ctx, JOB_BANDWIDTH, &rq, &bw, "bandwidth probe");
        report_bandwidth(&ctx, &bw, l3_bytes);
        bw_best_up_to(o->threads, o->n_threads, bw.gbs);
        bw_best_up_to(o->threads, o->n_threads, bw.l3_gbs);
    }
    report_table_header(&ctx);

    const int n_levels = o->n_kernels ? o->n_kernels : 1;
    row *rows = calloc((size_t)MAX_SHAPES * N_TYPES * (size_t)n_backends * (size_t)n_levels * (size_t)o->n_threads,
                       sizeof *rows);
    if (!rows) bench_fail(&ctx, "out of memory");
    size_t n_rows = run_rows(&ctx, &models, backends, n_backends, &bw, l3_bytes, rows);
    if (o->json_path) write_json(&ctx, &host, rows, n_rows);
    free(rows);
    return 0;
}
