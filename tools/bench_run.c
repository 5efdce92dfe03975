/*
 * llama2-bench: running a measurement in a child process, and timing one
 * row -- prompt processing (a prompt of N tokens evaluated in blocks from
 * position 0) and generation (one position at a time after a one-token
 * prompt, with the classifier run at every step), several repetitions each.
 */
#include "bench_run.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "llama2.h"

void run_in_child(void (*fn)(const void *, void *), const void *arg, void *result, size_t size, const char *what) {
    int fds[2];
    if (pipe(fds) != 0) die("%s: cannot create a pipe: %s", what, strerror(errno));
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) die("%s: cannot fork: %s", what, strerror(errno));
    if (pid == 0) {
        close(fds[0]);
        fn(arg, result);
        const unsigned char *p = result;
        size_t done = 0;
        while (done < size) {
            ssize_t n = write(fds[1], p + done, size - done);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) _exit(2);
            done += (size_t)n;
        }
        _exit(0);
    }
    close(fds[1]);
    unsigned char *p = result;
    size_t done = 0;
    while (done < size) {
        ssize_t n = read(fds[0], p + done, size - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        done += (size_t)n;
    }
    close(fds[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) die("%s: waitpid failed: %s", what, strerror(errno));
    if (WIFSIGNALED(status)) die("%s: the benchmark process was killed by signal %d", what, WTERMSIG(status));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || done != size)
        die("%s: the benchmark process failed (exit status %d)", what, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

/* VmHWM of this process, in MiB (ru_maxrss where /proc is missing). */
static double peak_rss_mib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (f) {
        char line[256];
        long kib = -1;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "VmHWM: %ld kB", &kib) == 1) break;
        fclose(f);
        if (kib >= 0) return (double)kib / 1024.0;
    }
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) return (double)ru.ru_maxrss / 1024.0;
    return 0;
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
    if (llama2_model_open(rq->path, NULL, &model, &err) != LLAMA2_OK) {
        row_fail(r, ROW_OPEN_FAILED, "cannot open the model", &err);
        return;
    }
    const int vocab = llama2_model_config(model)->vocab_size;
    if (llama2_threadpool_create(rq->threads, &pool, &err) != LLAMA2_OK) {
        row_fail(r, ROW_FAILED, "cannot create the thread pool", &err);
        goto done;
    }
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
    /* Fixed pseudo-random ids past the special tokens (xorshift64). */
    uint64_t state = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < n_tokens; i++) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        tokens[i] = 3 + (int)(state % (uint64_t)(vocab - 3));
    }
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
    double spent = 0;
    for (int k = 0; k < rq->reps && !over_budget(spent, k, rq->max_time); k++) {
        EVAL(tokens, 1, 0);
        double t0 = llama2_time_seconds();
        for (int i = 0; i < rq->tg; i++) {
            EVAL(&tokens[i + 1], 1, i + 1);
            check += (unsigned)argmax(logits, vocab);
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
    llama2_session_destroy(session);
    llama2_threadpool_destroy(pool);
    llama2_model_close(model);
}
