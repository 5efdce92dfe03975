/* llama2-server: open the model, start the scheduler and the HTTP side,
 * print the address, and on SIGTERM or SIGINT stop accepting, let the
 * requests in flight finish (at most --shutdown-timeout seconds), exit 0.
 * Errors at start-up are one line on stderr: status 1 for a bad file or a
 * failure, 2 for bad usage. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "options.h"
#include "endpoints.h"
#include "http.h"
#include "llama2.h"
#include "metrics.h"
#include "scheduler.h"

static void print_error(const char *culprit, const char *message) { cli_print_error("llama2-server", culprit, message); }

/* The file's name without its folders: the model's id by default. */
static const char *base_name(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash && slash[1] ? slash + 1 : path;
}

/* Where request ids and default seeds start: differs between runs and
 * between servers started at once. */
static uint64_t start_seed(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ((uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec) ^ ((uint64_t)getpid() << 40);
}

/* Waits for SIGTERM or SIGINT (blocked in every thread, so only this wait
 * takes them); then lets the work in flight finish, at most `timeout`
 * seconds, or until a second signal. */
static void serve_until_signal(const sigset_t *signals, server_app *app, server_http *http, int timeout) {
    int sig = 0;
    sigwait(signals, &sig);
    fprintf(stderr, "llama2-server: %s: no new connections; finishing the requests in flight (at most %d s)\n",
            sig == SIGINT ? "SIGINT" : "SIGTERM", timeout);
    atomic_store(&app->closing, 1);
    server_http_quiesce(http);
    server_scheduler_close(app->scheduler);
    const double until = llama2_time_seconds() + timeout;
    const struct timespec now = {0, 0};
    /* Idle: no job queued or running, and every answer sent. */
    int idle = 0;
    while (!(idle = server_scheduler_drain(app->scheduler, 0.05) && server_http_requests(http) == 0) &&
           llama2_time_seconds() < until) {
        if (sigtimedwait(signals, NULL, &now) > 0) break;
        if (server_scheduler_drain(app->scheduler, 0)) nanosleep(&(struct timespec){0, 10000000}, NULL);
    }
    if (!idle) {
        fprintf(stderr, "llama2-server: cutting the requests still in flight\n");
        server_scheduler_cut(app->scheduler, "the server is shutting down");
        /* Their answers (an error) are sent, unless a client does not read. */
        for (int i = 0; i < 200 && server_http_requests(http) > 0; i++) nanosleep(&(struct timespec){0, 10000000}, NULL);
    }
}

int main(int argc, char **argv) {
    /* Before any thread starts: the signals that stop the server are taken
     * by sigwait alone, and a client that hangs up is an error code on a
     * write, not a SIGPIPE. */
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    server_args a;
    char msg[512];
    if (server_args_parse(argc, argv, &a, msg, sizeof msg) != 0) {
        print_error(NULL, msg);
        return 2;
    }
    if (a.help) {
        fputs(server_usage(), stdout);
        return 0;
    }
    if (a.version) {
        printf("llama2-server %s\n", LLAMA2_VERSION);
        return 0;
    }

    llama2_error err = {0};
    llama2_model *model = NULL;
    llama2_tokenizer *tokenizer = NULL;
    llama2_threadpool *pool = NULL;
    llama2_session *session = NULL;
    server_scheduler *scheduler = NULL;
    server_http *http = NULL;
    server_metrics metrics;
    server_metrics_init(&metrics);
    const char *culprit = NULL;
    int rc = 1;

    rc = cli_open_model(a.checkpoint, a.no_mmap, a.context_length, &model, &culprit, &err);
    if (rc != 0) goto done;
    rc = 1;
    const llama2_config *config = llama2_model_config(model);
    if (llama2_tokenizer_open(a.tokenizer, config->vocab_size, &tokenizer, &err) != LLAMA2_OK) {
        culprit = a.tokenizer;
        goto done;
    }
    if (llama2_threadpool_create(a.threads, &pool, &err) != LLAMA2_OK) {
        culprit = "--threads";
        goto done;
    }
    /* One block holds every slot's next token and a prompt block: one pass
     * over the weights a step. */
    llama2_session_options sopts = {.pool = pool, .batch_size = a.parallel + a.batch,
                                    .context_length = a.context_length, .n_sequences = a.parallel};
    if (llama2_session_create(model, &sopts, &session, &err) != LLAMA2_OK) {
        culprit = a.checkpoint;
        goto done;
    }
    server_scheduler_options schedule = {.queue_capacity = a.queue, .prompt_batch = a.batch,
                                         .prefix_cache = !a.no_prefix_cache,
                                         .cache_ram = (size_t)a.cache_ram << 20};
    if (server_scheduler_create(session, tokenizer, &schedule, &metrics, &scheduler, &err) != LLAMA2_OK) {
        culprit = "scheduler";
        goto done;
    }
    server_app app = {
        .scheduler = scheduler,
        .metrics = &metrics,
        .limits = {.tokenizer = tokenizer, .chat_template = a.chat_template,
                   .context_length = llama2_session_context_length(session), .max_choices = a.parallel,
                   .vocab_size = config->vocab_size},
        .config = config,
        .model_id = a.alias ? a.alias : base_name(a.checkpoint),
        .started = (long long)time(NULL),
        .seed = start_seed(),
        .webui = !a.no_webui,
    };
    /* Room for every slot and queued request, and for health checks and
     * metrics besides. */
    server_http_options hopts = {.host = a.host, .port = a.port, .api_key = a.api_key, .max_body = a.max_body,
                                 .max_connections = a.parallel + a.queue + 64, .verbose = a.verbose};
    char address[128];
    if (!(http = server_http_start(&hopts, &app, address, sizeof address, msg, sizeof msg))) {
        print_error(NULL, msg);
        goto done;
    }
    printf("llama2-server: listening on %s\n", address);
    fflush(stdout);
    serve_until_signal(&signals, &app, http, a.shutdown_timeout);
    server_http_stop(http);
    http = NULL;
    rc = 0;

done:
    if (culprit) print_error(culprit, err.message);
    server_http_stop(http);
    server_scheduler_destroy(scheduler);
    llama2_session_destroy(session);
    llama2_threadpool_destroy(pool);
    llama2_tokenizer_close(tokenizer);
    llama2_model_close(model);
    server_metrics_destroy(&metrics);
    return rc;
}
