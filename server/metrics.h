/* The server's counters and their Prometheus text (GET /metrics). Counters
 * are updated from the HTTP threads and the scheduler: each call takes the
 * metrics' own lock. */
#ifndef LLAMA2_SERVER_METRICS_H
#define LLAMA2_SERVER_METRICS_H

#include <pthread.h>
#include <stddef.h>

typedef struct server_metrics {
    pthread_mutex_t lock;
    unsigned long long requests;        /* completion requests taken into the queue */
    unsigned long long rejected;        /* turned away: the queue was full (503) */
    unsigned long long finished;        /* every choice ran to stop or length */
    unsigned long long cancelled;       /* the client went away before the end */
    unsigned long long failed;          /* a failure of the model or the shutdown cut it */
    unsigned long long prompt_tokens;   /* evaluated from prompts (once per request) */
    unsigned long long generated_tokens;/* sampled */
    unsigned long long steps;           /* batches evaluated */
    unsigned long long prefix_hits;     /* requests that began with positions a slot held */
    unsigned long long prefix_misses;   /* requests evaluated from their first token */
    unsigned long long prefix_tokens;   /* prompt tokens those hits did not evaluate again */
    double busy_seconds;                /* time spent evaluating and sampling */
} server_metrics;

/* What only the scheduler knows, read when the text is written. */
typedef struct server_load {
    int slots_busy, slots_total;
    int queue_length, queue_capacity;
    size_t cache_ram_bytes;      /* the prefix cache's RAM store */
    size_t cache_ram_peak_bytes; /* the most it has held */
} server_load;

void server_metrics_init(server_metrics *m);
void server_metrics_destroy(server_metrics *m);

/* Adds to one counter: `counter` points into m. */
void server_metrics_add(server_metrics *m, unsigned long long *counter, unsigned long long n);
/* One step of the scheduler: tokens evaluated and sampled, and its time. */
void server_metrics_step(server_metrics *m, int prompt_tokens, int generated_tokens, double seconds);

/* A request admitted into a slot that held `reused` of its prompt's tokens
 * (0: a miss). */
void server_metrics_prefix(server_metrics *m, int reused);

/* The Prometheus text exposition of m and load, malloc'd. */
char *server_metrics_text(server_metrics *m, const server_load *load);

#endif
