/* Counters and the Prometheus text format
 * (https://prometheus.io/docs/instrumenting/exposition_formats/). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "metrics.h"

void server_metrics_init(server_metrics *m) {
    *m = (server_metrics){0};
    pthread_mutex_init(&m->lock, NULL);
}

void server_metrics_destroy(server_metrics *m) { pthread_mutex_destroy(&m->lock); }

void server_metrics_add(server_metrics *m, unsigned long long *counter, unsigned long long n) {
    pthread_mutex_lock(&m->lock);
    *counter += n;
    pthread_mutex_unlock(&m->lock);
}

void server_metrics_step(server_metrics *m, int prompt_tokens, int generated_tokens, double seconds) {
    pthread_mutex_lock(&m->lock);
    m->prompt_tokens += (unsigned long long)prompt_tokens;
    m->generated_tokens += (unsigned long long)generated_tokens;
    m->steps++;
    m->busy_seconds += seconds;
    pthread_mutex_unlock(&m->lock);
}

void server_metrics_prefix(server_metrics *m, int reused) {
    pthread_mutex_lock(&m->lock);
    if (reused > 0) {
        m->prefix_hits++;
        m->prefix_tokens += (unsigned long long)reused;
    } else {
        m->prefix_misses++;
    }
    pthread_mutex_unlock(&m->lock);
}

/* A growing text; on a failed allocation it stays NULL. */
typedef struct text {
    char *s;
    size_t len, cap;
} text;

static void put(text *t, const char *fmt, ...) {
    if (!t->s) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) return;
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        char *bigger = realloc(t->s, t->cap * 2 + (size_t)n);
        if (!bigger) {
            free(t->s);
            t->s = NULL;
            return;
        }
        t->s = bigger;
        t->cap = t->cap * 2 + (size_t)n;
    }
}

static void metric(text *t, const char *name, const char *type, const char *help, double value) {
    put(t, "# HELP llama2_%s %s\n# TYPE llama2_%s %s\nllama2_%s %.17g\n", name, help, name, type, name, value);
}

char *server_metrics_text(server_metrics *m, const server_load *load) {
    pthread_mutex_lock(&m->lock);
    server_metrics c = *m;
    pthread_mutex_unlock(&m->lock);
    text t = {malloc(4096), 0, 4096};
    metric(&t, "requests_total", "counter", "Completion requests taken into the queue.", (double)c.requests);
    metric(&t, "requests_rejected_total", "counter", "Completion requests turned away with 503: the queue was full.",
           (double)c.rejected);
    metric(&t, "requests_finished_total", "counter", "Completion requests answered in full.", (double)c.finished);
    metric(&t, "requests_cancelled_total", "counter", "Completion requests whose client went away before the end.",
           (double)c.cancelled);
    metric(&t, "requests_failed_total", "counter", "Completion requests cut by a failure or by the shutdown.",
           (double)c.failed);
    metric(&t, "prompt_tokens_total", "counter", "Prompt tokens evaluated.", (double)c.prompt_tokens);
    metric(&t, "generated_tokens_total", "counter", "Tokens sampled.", (double)c.generated_tokens);
    metric(&t, "steps_total", "counter", "Batches evaluated: one pass over the weights each.", (double)c.steps);
    metric(&t, "prefix_cache_hits_total", "counter", "Requests that began with positions a slot still held.",
           (double)c.prefix_hits);
    metric(&t, "prefix_cache_misses_total", "counter", "Requests whose prompt was evaluated from its first token.",
           (double)c.prefix_misses);
    metric(&t, "prefix_cache_tokens_total", "counter", "Prompt tokens reused from a slot instead of evaluated.",
           (double)c.prefix_tokens);
    metric(&t, "busy_seconds_total", "counter", "Seconds spent evaluating batches and sampling.", c.busy_seconds);
    metric(&t, "prompt_tokens_per_second", "gauge", "Prompt tokens evaluated per busy second, since the start.",
           c.busy_seconds > 0 ? (double)c.prompt_tokens / c.busy_seconds : 0.0);
    metric(&t, "generated_tokens_per_second", "gauge", "Tokens sampled per busy second, since the start.",
           c.busy_seconds > 0 ? (double)c.generated_tokens / c.busy_seconds : 0.0);
    metric(&t, "slots_busy", "gauge", "Slots generating or reading a prompt.", load->slots_busy);
    metric(&t, "slots_total", "gauge", "Slots (--parallel).", load->slots_total);
    metric(&t, "prefix_cache_ram_bytes", "gauge", "Bytes of prefixes kept in RAM (--cache-ram).",
           (double)load->cache_ram_bytes);
    metric(&t, "prefix_cache_ram_peak_bytes", "gauge", "The most bytes of prefixes kept in RAM at any time.",
           (double)load->cache_ram_peak_bytes);
    metric(&t, "queue_length", "gauge", "Requests waiting for a slot.", load->queue_length);
    metric(&t, "queue_capacity", "gauge", "Requests that may wait before 503 (--queue).", load->queue_capacity);
    return t.s;
}
