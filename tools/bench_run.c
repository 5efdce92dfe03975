/*
 * llama2-bench: running a measurement in a child process, and timing one
 * row -- prompt processing (a prompt of N tokens evaluated in blocks from
 * position 0) and generation (one position at a time after a one-token
 * prompt, with the classifier run at every step), several repetitions each.
 * With a tokenizer, generation samples each token (llama2's default chain,
 * one seed) and feeds it back; with a grammar too, under it.
 */
#include "bench_run.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_bandwidth.h"
#include "bench_parallel.h"
#include "llama2.h"
#include "child.h"
#include "platform/platform.h"

static const struct {
    const char *name;
    void (*fn)(const void *arg, void *result);
    size_t arg_size, result_size;
} jobs[N_JOBS] = {
    [JOB_ROW] = {"row", run_row, sizeof(row_request), sizeof(row_result)},
    [JOB_BANDWIDTH] = {"bandwidth", measure_bandwidth, sizeof(bw_request), sizeof(bw_result)},
    [JOB_PARALLEL] = {"parallel", run_parallel, sizeof(parallel_request), sizeof(parallel_result)},
};

/* The argument travels on the command line as hex: the same program reads
 * it back into the same struct. */
static char *to_hex(const bench_context *ctx, const void *data, size_t n) {
    static const char digits[] = "0123456789abcdef";
    char *hex = malloc(2 * n + 1);
    if (!hex) bench_fail(ctx, "out of memory");
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        hex[2 * i] = digits[p[i] >> 4];
        hex[2 * i + 1] = digits[p[i] & 15];
    }
    hex[2 * n] = '\0';
    return hex;
}

static int from_hex(const char *hex, void *data, size_t n) {
    unsigned char *p = data;
    if (strlen(hex) != 2 * n) return 0;
    for (size_t i = 0; i < 2 * n; i++) {
        char c = hex[i];
        int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (v < 0) return 0;
        p[i / 2] = (unsigned char)(i % 2 ? (p[i / 2] << 4) | v : v);
    }
    return 1;
}

void run_in_child(const bench_context *ctx, child_job job, const void *arg, void *result, const char *what) {
    char *hex = to_hex(ctx, arg, jobs[job].arg_size);
    char *argv[] = {(char *)ctx->self, "--child", (char *)jobs[job].name, hex, NULL};
    fflush(stdout);
    fflush(stderr);
    l2_child *c = NULL;
    int e = l2_child_start(argv, NULL, NULL, 0, L2_CHILD_CAPTURE, &c);
    if (e != 0) bench_fail(ctx, "%s: cannot start %s: %s", what, ctx->self, strerror(e));
    char *out = NULL, *err = NULL;
    size_t out_len = 0;
    int status = l2_child_wait(c, &out, &out_len, &err, NULL);
    free(hex);
    if (err && *err) fputs(err, stderr);
    free(err);
    if (status > 128 && status < 160)
        bench_fail(ctx, "%s: the benchmark process was killed by signal %d", what, status - 128);
    if (status != 0 || out_len != jobs[job].result_size)
        bench_fail(ctx, "%s: the benchmark process failed (exit status %d)", what, status);
    memcpy(result, out, out_len);
    free(out);
}

int child_main(const bench_context *ctx, int argc, char **argv) {
    for (int j = 0; j < N_JOBS; j++) {
        if (argc != 4 || strcmp(argv[2], jobs[j].name) != 0) continue;
        void *arg = calloc(1, jobs[j].arg_size), *result = calloc(1, jobs[j].result_size);
        if (!arg || !result) bench_fail(ctx, "out of memory");
        if (!from_hex(argv[3], arg, jobs[j].arg_size)) bench_fail(ctx, "--child %s: a bad argument", jobs[j].name);
        jobs[j].fn(arg, result);
        int ok = l2_stdout_write(result, jobs[j].result_size) == 0;
        free(arg);
        free(result);
        return ok ? 0 : 1;
    }
    bench_fail(ctx, "--child: no such job");
}

/* The peak resident memory of this process, in MiB. */
static double peak_rss_mib(void) {
    long kib = l2_peak_rss_kib();
    return kib > 0 ? (double)kib / 1024.0 : 0;
}

static int argmax(const float *v, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

static void row_fail(row_result *r, int status, const char *what, const llama2_error *err) {
    r->status = status;
    snprintf(r->message, sizeof r->message, "%s: %s", what,
             err->message[0] ? err->message : llama2_status_string(err->status));
}

/* The tokenizer and (when asked) the grammar of a sampled tg; 0 on failure,
 * with the row failed. */
static int open_sampling(const row_request *rq, int vocab, llama2_tokenizer **tok, llama2_grammar **grammar,
                         row_result *r) {
    llama2_error err;
    memset(&err, 0, sizeof err);
    if (llama2_tokenizer_open(rq->tokenizer, vocab, tok, &err) != LLAMA2_OK) {
        row_fail(r, ROW_FAILED, "cannot open the tokenizer", &err);
        return 0;
    }
    if (!rq->grammar[0]) return 1;
    FILE *f = fopen(rq->grammar, "rb");
    char *text = malloc(1 << 20);
    size_t n = f && text ? fread(text, 1, (1 << 20) - 1, f) : 0;
    if (f) fclose(f);
    llama2_status s = LLAMA2_E_IO;
    if (n > 0) s = llama2_grammar_parse(text, n, grammar, &err);
    free(text);
    if (s != LLAMA2_OK) {
        if (!err.message[0]) snprintf(err.message, sizeof err.message, "cannot read the file");
        row_fail(r, ROW_FAILED, "the grammar", &err);
        return 0;
    }
    return 1;
}

int bench_child_open(const char *path, const char *kernels, int threads, llama2_model **model, char *level,
                     size_t level_size, llama2_threadpool **pool, llama2_error *err, const char **what) {
    /* The level is chosen when the model is opened (this is the row's own
     * process). */
    if (kernels[0]) l2_set_env("LLAMA2_KERNELS", kernels);
    if (llama2_model_open(path, NULL, model, err) != LLAMA2_OK) {
        *what = "cannot open the model";
        return ROW_OPEN_FAILED;
    }
    snprintf(level, level_size, "%s", llama2_kernels_name());
    if (llama2_threadpool_create(threads, pool, err) != LLAMA2_OK) {
        *what = "cannot create the thread pool";
        return ROW_FAILED;
    }
    return ROW_OK;
}

void bench_fixed_tokens(int *tokens, size_t n, int vocab) {
    uint64_t state = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < n; i++) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        tokens[i] = 3 + (int)(state % (uint64_t)(vocab - 3));
    }
}

/* Whether another repetition, as long as the average so far, would take a
 * test past its time limit (the first one always runs). */
static int over_budget(double spent, int done, double limit) {
    return done > 0 && limit > 0 && spent + spent / done > limit;
}

/* Opens the model, then times the prompt and generation tests. Runs in a
 * child. */
void run_row(const void *arg, void *out) {
    const row_request *rq = arg;
    row_result *r = out;
    memset(r, 0, sizeof *r);
    llama2_error err;
    memset(&err, 0, sizeof err);
    llama2_model *model = NULL;
    llama2_threadpool *pool = NULL;
    llama2_session *session = NULL;
    int *tokens = NULL;
    llama2_tokenizer *tok = NULL;
    llama2_grammar *grammar = NULL;
    llama2_sampler *sampler = NULL;
    const char *what = NULL;
    const int opened = bench_child_open(rq->path, rq->kernels, rq->threads, &model, r->level, sizeof r->level, &pool,
                                        &err, &what);
    if (opened != ROW_OK) {
        row_fail(r, opened, what, &err);
        goto done;
    }
    const int vocab = llama2_model_config(model)->vocab_size;
    llama2_session_options so;
    memset(&so, 0, sizeof so);
    so.pool = pool;
    so.backend = rq->backend[0] ? rq->backend : NULL;
    if (llama2_session_create(model, &so, &session, &err) != LLAMA2_OK) {
        row_fail(r, ROW_FAILED, "cannot create a session", &err);
        goto done;
    }
    int n_tokens = rq->tg + 1;
    for (int p = 0; p < rq->n_pp; p++)
        if (rq->pp[p] > n_tokens) n_tokens = rq->pp[p];
    if (n_tokens < LLAMA2_DEFAULT_BATCH) n_tokens = LLAMA2_DEFAULT_BATCH;
    tokens = malloc((size_t)n_tokens * sizeof *tokens);
    if (!tokens) {
        r->status = ROW_FAILED;
        snprintf(r->message, sizeof r->message, "out of memory");
        goto done;
    }
    bench_fixed_tokens(tokens, (size_t)n_tokens, vocab);
    float *logits;
    unsigned check = 0;
#define EVAL(toks, n, pos)                                                                  \
    do {                                                                                    \
        if (llama2_session_eval(session, (toks), (n), (pos), &logits, &err) != LLAMA2_OK) { \
            row_fail(r, ROW_FAILED, "evaluation failed", &err);                             \
            goto done;                                                                      \
        }                                                                                   \
    } while (0)

    /* Warm-up: fault in every weight page, wake the pool. */
    EVAL(tokens, LLAMA2_DEFAULT_BATCH, 0);
    for (int i = 0; i < 4; i++) EVAL(&tokens[i], 1, LLAMA2_DEFAULT_BATCH + i);

    for (int p = 0; p < rq->n_pp; p++) {
        double spent = 0;
        for (int k = 0; k < rq->reps && !over_budget(spent, k, rq->max_time); k++) {
            double t0 = llama2_time_seconds();
            EVAL(tokens, rq->pp[p], 0);
            double dt = llama2_time_seconds() - t0;
            check += (unsigned)argmax(logits, vocab);
            r->pp[p][k] = dt > 0 ? rq->pp[p] / dt : 0;
            r->n_pp[p] = k + 1;
            spent += dt;
        }
    }
    if (rq->tokenizer[0] && !open_sampling(rq, vocab, &tok, &grammar, r)) goto done;
    double spent = 0;
    for (int k = 0; k < rq->reps && !over_budget(spent, k, rq->max_time); k++) {
        EVAL(tokens, 1, 0);
        llama2_sampler_destroy(sampler);
        sampler = NULL;
        if (tok) {
            llama2_sampler_options so_defaults = llama2_sampler_defaults();
            so_defaults.seed = 1;
            if (llama2_sampler_create(vocab, &so_defaults, &sampler, &err) != LLAMA2_OK ||
                llama2_sampler_set_grammar(sampler, grammar, tok, &err) != LLAMA2_OK) {
                row_fail(r, ROW_FAILED, "cannot create the sampler", &err);
                goto done;
            }
            llama2_sampler_accept(sampler, tokens[0]);
        }
        double t0 = llama2_time_seconds();
        for (int i = 0; i < rq->tg; i++) {
            if (sampler) {
                int next = llama2_sampler_sample(sampler, logits);
                /* a text that ends starts again */
                if (grammar && (next == LLAMA2_TOKEN_BOS || next == LLAMA2_TOKEN_EOS) &&
                    llama2_sampler_set_grammar(sampler, grammar, tok, &err) != LLAMA2_OK) {
                    row_fail(r, ROW_FAILED, "cannot reset the grammar", &err);
                    goto done;
                }
                llama2_sampler_accept(sampler, next);
                check += (unsigned)next;
                EVAL(&next, 1, i + 1);
            } else {
                EVAL(&tokens[i + 1], 1, i + 1);
                check += (unsigned)argmax(logits, vocab);
            }
        }
        double dt = llama2_time_seconds() - t0;
        r->tg[k] = dt > 0 ? rq->tg / dt : 0;
        r->n_tg = k + 1;
        spent += dt;
    }
#undef EVAL
    r->checksum = check;
    r->peak_rss_mib = peak_rss_mib();
done:
    free(tokens);
    llama2_sampler_destroy(sampler);
    llama2_grammar_free(grammar);
    llama2_tokenizer_close(tok);
    llama2_session_destroy(session);
    llama2_threadpool_destroy(pool);
    llama2_model_close(model);
}
