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
#include "platform/platform.h"
#include "endpoints.h"
#include "http.h"
#include "llama2.h"
#include "messages.h"
#include "metrics.h"
#include "open.h"
#include "options.h"
#include "scheduler.h"

static void print_error(const char *culprit, const char *message) { cli_print_error("llama2-server", culprit, message); }

static void print_version(void) { printf("llama2-server %s\n", LLAMA2_VERSION); }

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
 * seconds, or until a second signal. In flight means every request whose
 * headers came before the signal, wherever it is: one still reading its
 * body or its prompt reaches the scheduler after the signal and is served
 * all the same (the HTTP side answers 503 to requests begun after it, so the
 * scheduler stays open until the drain ends). */
static void serve_until_signal(const sigset_t *signals, server_app *app, server_http *http, int timeout) {
    int sig = 0;
    sigwait(signals, &sig);
    fprintf(stderr, "llama2-server: %s: no new connections; finishing the requests in flight (at most %d s)\n",
            sig == SIGINT ? "SIGINT" : "SIGTERM", timeout);
    atomic_store(&app->closing, 1);
    server_http_quiesce(http);
    const double until = llama2_time_seconds() + timeout;
    const struct timespec now = {0, 0};
    /* Idle: no job queued or running, and every answer sent. */
    int idle = 0;
    while (!(idle = server_scheduler_drain(app->scheduler, 0.05) && server_http_requests(http) == 0) &&
           llama2_time_seconds() < until) {
        if (sigtimedwait(signals, NULL, &now) > 0) break;
        if (server_scheduler_drain(app->scheduler, 0)) nanosleep(&(struct timespec){0, 10000000}, NULL);
    }
    server_scheduler_close(app->scheduler);
    if (!idle) {
        fprintf(stderr, "llama2-server: cutting the requests still in flight\n");
        server_scheduler_cut(app->scheduler, "the server is shutting down");
        /* Their answers (an error) are sent, unless a client does not read. */
        for (int i = 0; i < 200 && server_http_requests(http) > 0; i++) nanosleep(&(struct timespec){0, 10000000}, NULL);
    }
}

/* The KV cache of every slot: keys and values, fp32, per layer, position
 * and slot. */
static double kv_cache_bytes(const llama2_config *c, int context, int slots) {
    const double kv_dim = (double)c->dim * c->n_kv_heads / c->n_heads;
    return 2.0 * c->n_layers * (double)context * slots * kv_dim * sizeof(float);
}

#define GIB (1024.0 * 1024.0 * 1024.0)
#define MIB (1024.0 * 1024.0)

/* Bytes in words: MiB below a GiB. */
static const char *size_text(double bytes, char *buf, size_t size) {
    if (bytes >= GIB)
        snprintf(buf, size, "%.1f GiB", bytes / GIB);
    else
        snprintf(buf, size, "%.1f MiB", bytes / MIB);
    return buf;
}

/* The checkpoint's size: the weights' memory, whether mapped or read. */
static double weights_bytes(const char *checkpoint) {
    int64_t bytes = 0;
    l2_path_lookup(checkpoint, NULL, &bytes);
    return (double)bytes;
}

/* cli_open's check before the session: refuses (2, with a message) slots
 * whose KV cache, with the weights, does not fit in this machine's memory:
 * the allocation would take the machine's swap, or be killed, long after
 * start. */
static int check_memory(void *user, const llama2_model *model, const char **culprit, llama2_error *err) {
    const server_args *a = user;
    const llama2_config *c = llama2_model_config(model);
    const int context = a->context_length ? a->context_length : c->seq_len;
    const size_t memory = l2_physical_memory();
    const double kv = kv_cache_bytes(c, context, a->parallel), weights = weights_bytes(a->checkpoint);
    if (memory == SIZE_MAX || kv + weights <= (double)memory) return 0;
    char kv_text[32], weights_text[32], memory_text[32];
    snprintf(err->message, sizeof err->message,
             "%d slots of %d positions need a KV cache of %s, which with the weights (%s) is more than this "
             "machine's memory (%s): lower --parallel or --ctx",
             a->parallel, context, size_text(kv, kv_text, sizeof kv_text),
             size_text(weights, weights_text, sizeof weights_text),
             size_text((double)memory, memory_text, sizeof memory_text));
    *culprit = "--parallel";
    return 2;
}

/* One line on stderr at start: what is served, and the memory it takes. */
static void print_start(const server_args *a, const llama2_model *model, const llama2_session *session) {
    const llama2_config *c = llama2_model_config(model);
    const int context = llama2_session_context_length(session);
    char kv_text[32], weights_text[32];
    fprintf(stderr,
            "llama2-server: model %s (%s weights, %s), kernels %s, %d slots of %d positions, KV cache %s\n",
            a->checkpoint,
            c->weight_type == LLAMA2_WEIGHTS_Q4_0 || c->weight_type == LLAMA2_WEIGHTS_Q4_K ? "4-bit"
            : c->weight_type == LLAMA2_WEIGHTS_Q5_K                                       ? "5-bit"
            : c->weight_type == LLAMA2_WEIGHTS_Q6_K                                       ? "6-bit"
            : c->weight_type == LLAMA2_WEIGHTS_F32                                        ? "fp32"
                                                                                          : "int8",
            size_text(weights_bytes(a->checkpoint), weights_text, sizeof weights_text),
            llama2_model_kernels_name(model), a->parallel, context,
            size_text(kv_cache_bytes(c, context, a->parallel), kv_text, sizeof kv_text));
}

/* While the model loads, SIGTERM and SIGINT end the program at once (there
 * is nothing to finish): they are let through on the main thread alone (the
 * library's threads start with every signal blocked), and held back again
 * once it has loaded, so that afterwards only sigwait takes them. */
static void loading(const sigset_t *signals, int on) { pthread_sigmask(on ? SIG_UNBLOCK : SIG_BLOCK, signals, NULL); }

/* Before any thread starts: the signals that stop the server are taken
 * by sigwait alone, and a client that hangs up is an error code on a
 * write, not a SIGPIPE. */
static void hold_stop_signals(sigset_t *signals) {
    sigemptyset(signals);
    sigaddset(signals, SIGTERM);
    sigaddset(signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, signals, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int main(int argc, char **argv) {
    sigset_t signals;
    hold_stop_signals(&signals);

    server_args a;
    char msg[512];
    int parsed = server_args_parse(argc, argv, &a, msg, sizeof msg);
    parsed = cli_parsed("llama2-server", parsed, msg, a.help, server_usage(), a.version, print_version);
    if (parsed >= 0) return parsed;

    llama2_error err = {0};
    cli_opened run = {0};
    server_scheduler *scheduler = NULL;
    server_http *http = NULL;
    server_metrics metrics;
    server_metrics_init(&metrics);
    const char *culprit = NULL;
    int rc = 1;

    /* One block holds every slot's next token and a prompt block: one pass
     * over the weights a step. */
    cli_open_options open = {.program = "llama2-server", .checkpoint = a.checkpoint, .tokenizer = a.tokenizer,
                             .tokenizer_given = a.tokenizer_given, .no_mmap = a.no_mmap,
                             .context_length = a.context_length, .threads = a.threads, .threads_culprit = "--threads",
                             .batch = a.parallel + a.batch, .n_sequences = a.parallel,
                             .before_session = check_memory, .user = &a};
    loading(&signals, 1);
    rc = cli_open(&open, &run, &culprit, &err);
    loading(&signals, 0);
    if (rc != 0) goto done;
    rc = 1;
    llama2_session *session = run.session;
    llama2_tokenizer *tokenizer = run.tokenizer;
    const llama2_config *config = llama2_model_config(run.model);
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
    print_start(&a, run.model, session);
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
    cli_close(&run);
    server_metrics_destroy(&metrics);
    return rc;
}
