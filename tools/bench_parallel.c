/*
 * llama2-bench --parallel: the rows of batched decoding, each timed in a
 * child (bench_parallel.h). Every repetition starts from empty sequences:
 * one eval_batch of the B prompts (scores after each prompt's last token),
 * then TG steps of one eval_batch of B rows each (every row's scores). The
 * tokens are fixed pseudo-random ids, so every row and repetition does the
 * same work whatever the scores.
 */
#include "bench_parallel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_report.h"
#include "bench_run.h"
#include "platform/platform.h"

static void fail(parallel_result *r, int status, const char *what, const llama2_error *err) {
    r->status = status;
    snprintf(r->message, sizeof r->message, "%s: %s", what,
             err->message[0] ? err->message : llama2_status_string(err->status));
}

static int argmax(const float *v, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

void run_parallel(const void *arg, void *out) {
    const parallel_request *rq = arg;
    parallel_result *r = out;
    memset(r, 0, sizeof *r);
    llama2_error err;
    memset(&err, 0, sizeof err);
    llama2_model *model = NULL;
    llama2_threadpool *pool = NULL;
    llama2_session *session = NULL;
    llama2_batch_row *rows = NULL;
    float *logits = NULL;
    int *tokens = NULL;
    const char *what = NULL;
    const int opened = bench_child_open(rq->path, rq->kernels, rq->threads, &model, r->level, sizeof r->level, &pool,
                                        &err, &what);
    if (opened != ROW_OK) {
        fail(r, opened, what, &err);
        goto done;
    }
    const int vocab = llama2_model_config(model)->vocab_size;
    const int B = rq->sequences, per_seq = rq->pp + rq->tg;
    llama2_session_options so;
    memset(&so, 0, sizeof so);
    so.pool = pool;
    so.backend = rq->backend[0] ? rq->backend : NULL;
    so.n_sequences = B;
    so.context_length = per_seq;
    if (llama2_session_create(model, &so, &session, &err) != LLAMA2_OK) {
        fail(r, ROW_FAILED, "cannot create a session", &err);
        goto done;
    }
    const size_t n_rows = (size_t)B * (size_t)rq->pp > (size_t)B ? (size_t)B * (size_t)rq->pp : (size_t)B;
    rows = malloc(n_rows * sizeof *rows);
    logits = malloc((size_t)B * (size_t)vocab * sizeof *logits);
    tokens = malloc((size_t)B * (size_t)per_seq * sizeof *tokens);
    if (!rows || !logits || !tokens) {
        r->status = ROW_FAILED;
        snprintf(r->message, sizeof r->message, "out of memory");
        goto done;
    }
    /* Each sequence its own ids. */
    bench_fixed_tokens(tokens, (size_t)B * (size_t)per_seq, vocab);
    unsigned check = 0;
    double spent = 0;
    /* Repetition -1 is the warm-up: it faults in every weight page and
     * wakes the pool. */
    for (int k = -1; k < rq->reps && !(k > 0 && rq->max_time > 0 && spent + spent / k > rq->max_time); k++) {
        for (int s = 0; s < B; s++)
            if (llama2_session_clear_sequence(session, s, &err) != LLAMA2_OK) {
                fail(r, ROW_FAILED, "cannot clear a sequence", &err);
                goto done;
            }
        size_t n = 0;
        for (int s = 0; s < B; s++)
            for (int p = 0; p < rq->pp; p++)
                rows[n++] = (llama2_batch_row){s, p, tokens[(size_t)s * per_seq + p], p == rq->pp - 1};
        double t0 = llama2_time_seconds();
        if (llama2_session_eval_batch(session, rows, (int)n, logits, &err) != LLAMA2_OK) {
            fail(r, ROW_FAILED, "evaluation failed", &err);
            goto done;
        }
        double t1 = llama2_time_seconds();
        for (int s = 0; s < B; s++) check += (unsigned)argmax(logits + (size_t)s * vocab, vocab);
        for (int i = 0; i < rq->tg; i++) {
            const int pos = rq->pp + i;
            for (int s = 0; s < B; s++) rows[s] = (llama2_batch_row){s, pos, tokens[(size_t)s * per_seq + pos], 1};
            if (llama2_session_eval_batch(session, rows, B, logits, &err) != LLAMA2_OK) {
                fail(r, ROW_FAILED, "evaluation failed", &err);
                goto done;
            }
        }
        double t2 = llama2_time_seconds();
        for (int s = 0; s < B; s++) check += (unsigned)argmax(logits + (size_t)s * vocab, vocab);
        if (k < 0) continue;
        r->t_pp[k] = t1 - t0;
        r->t_tg[k] = t2 - t1;
        r->n_reps = k + 1;
        spent += t2 - t0;
    }
    r->checksum = check;
    long kib = l2_peak_rss_kib();
    r->peak_rss_mib = kib > 0 ? (double)kib / 1024.0 : 0;
done:
    free(tokens);
    free(logits);
    free(rows);
    llama2_session_destroy(session);
    llama2_threadpool_destroy(pool);
    llama2_model_close(model);
}

size_t bench_parallel_rows(const bench_context *ctx, const model_set *models, const char *const *backends,
                           int n_backends, parallel_row **rows_out) {
    const bench_options *o = &ctx->options;
    const char *no_level[1] = {""};
    const char *const *levels = o->n_kernels ? o->kernels : no_level;
    const int n_levels = o->n_kernels ? o->n_kernels : 1;
    size_t most = (size_t)MAX_SHAPES * N_TYPES * (size_t)n_backends * (size_t)n_levels * (size_t)o->n_threads *
                  (size_t)o->n_pp * (size_t)o->n_parallel;
    parallel_row *rows = calloc(most, sizeof *rows);
    parallel_request *rq = calloc(1, sizeof *rq);
    if (!rows || !rq) bench_fail(ctx, "out of memory");
    size_t n_rows = 0;
    for (int s = 0; s < MAX_SHAPES; s++) {
        if (!o->shape_on[s]) continue;
        for (int t = 0; t < N_TYPES; t++) {
            if (!o->type_on[t] || !models->usable[s][t]) continue;
            int skip = 0;
            for (int bi = 0; bi < n_backends && !skip; bi++)
            for (int li = 0; li < n_levels && !skip; li++)
            for (int k = 0; k < o->n_threads && !skip; k++) {
                report_parallel_group(ctx, s, t, backends[bi], levels[li], o->threads[k]);
                for (int p = 0; p < o->n_pp && !skip; p++)
                for (int b = 0; b < o->n_parallel; b++) {
                    parallel_row *w = &rows[n_rows];
                    w->shape = s;
                    w->type = t;
                    w->backend = backends[bi];
                    w->threads = o->threads[k];
                    w->pp = o->pp[p];
                    w->tg = o->tg;
                    w->sequences = o->parallel[b];
                    w->group_size = shape_config(&SHAPES[s], t).group_size;
                    memset(rq, 0, sizeof *rq);
                    snprintf(rq->path, sizeof rq->path, "%s", models->paths[s][t]);
                    rq->threads = w->threads;
                    rq->reps = o->reps;
                    rq->pp = w->pp;
                    rq->tg = w->tg;
                    rq->sequences = w->sequences;
                    rq->max_time = o->max_time;
                    snprintf(rq->backend, sizeof rq->backend, "%s", backends[bi]);
                    snprintf(rq->kernels, sizeof rq->kernels, "%s", levels[li]);
                    char what[160];
                    snprintf(what, sizeof what, "%s %s %d threads, %d sequences", SHAPES[s].name, TYPE_NAMES[t],
                             w->threads, w->sequences);
                    run_in_child(ctx, JOB_PARALLEL, rq, &w->result, what);
                    if (w->result.status == ROW_OPEN_FAILED && t == TYPE_Q8) {
                        fprintf(stderr, "%s: skipping q8 rows of %s: %s\n", ctx->program, SHAPES[s].name,
                                w->result.message);
                        skip = 1;
                        break;
                    }
                    if (w->result.status != ROW_OK) bench_fail(ctx, "%s: %s", what, w->result.message);
                    n_rows++;
                    report_parallel_row(w);
                }
            }
        }
    }
    free(rq);
    *rows_out = rows;
    return n_rows;
}
