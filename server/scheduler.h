/* The scheduler of slots: continuous batching over one session.
 *
 * One thread owns the session. Each step it admits waiting requests into
 * free slots (a slot is a sequence of the session: its own KV cache), then
 * evaluates ONE batch holding the next token of every generating slot and a
 * block of each new prompt (at most prompt_batch prompt tokens a step, so
 * that the generating slots are not held up by a long prompt), samples the
 * next token of each slot that has logits, and hands the text to the
 * request. A slot is freed as soon as its request finishes or its client goes
 * away. Every row's logits are the same bits whatever else is in the batch
 * (llama2_session_eval_batch), so a request's text does not depend on the
 * others. A request for n choices is one prompt evaluated once, its cache
 * copied into the n slots.
 *
 * The prefix cache: a slot that has finished keeps its positions and the
 * tokens they hold; a new prompt goes to the free slot holding the longest
 * prefix of it, which is trimmed to that prefix and continued. The positions
 * kept are the same bits as evaluated afresh (a row's values do not depend
 * on the batch), so the text is the same with the cache on or off. Only
 * positions evaluated in full are kept: a client that hangs up mid-prompt
 * leaves the prefix read so far, nothing more.
 *
 * The HTTP threads submit jobs, wait for their news and take their text
 * deltas; everything they share with the scheduler is under one lock. */
#ifndef LLAMA2_SERVER_SCHEDULER_H
#define LLAMA2_SERVER_SCHEDULER_H

#include <stddef.h>

#include "llama2.h"
#include "metrics.h"
#include "request.h"

typedef struct server_scheduler server_scheduler;
typedef struct server_job server_job;

typedef struct server_scheduler_options {
    int queue_capacity; /* jobs waiting for slots, at most */
    int prompt_batch;   /* prompt tokens evaluated per step, at most */
    int prefix_cache;   /* a slot keeps its positions for a later request that begins with the same tokens */
    size_t cache_ram;   /* with prefix_cache: bytes of positions slots gave up kept in RAM (0: none) */
} server_scheduler_options;

/* Starts the scheduler's thread over `session` (one slot per sequence),
 * which it then owns until server_scheduler_destroy. */
llama2_status server_scheduler_create(llama2_session *session, const llama2_tokenizer *tokenizer,
                                      const server_scheduler_options *options, server_metrics *metrics,
                                      server_scheduler **out, llama2_error *err);
/* Cuts the jobs left, stops the thread and frees the scheduler. Every job
 * must have been released. */
void server_scheduler_destroy(server_scheduler *s);

typedef enum server_submit_result {
    SERVER_SUBMITTED,
    SERVER_QUEUE_FULL, /* 503: every slot busy and the queue full */
    SERVER_CLOSED,     /* 503: the server is shutting down */
    SERVER_NO_MEMORY,  /* 500 */
} server_submit_result;

/* Queues a request: params (its seed chosen) move into the job, and *params
 * is left empty whatever the result. */
server_submit_result server_scheduler_submit(server_scheduler *s, server_params *params, server_job **job);

/* A sampled token's log-probability and its likeliest alternatives: the
 * log-softmax of the model's scores as they came out of the model, before
 * ignore_eos, logit_bias, the penalties and the temperature. */
typedef struct server_logprob {
    int token, prev; /* prev: the token before it, which decides its piece's text */
    int offset;      /* bytes of the pieces of the choice's tokens before it */
    float logprob;
    int n_top;       /* the top_logprobs asked for */
    int top_token[SERVER_MAX_TOP_LOGPROBS];
    float top_logprob[SERVER_MAX_TOP_LOGPROBS];
} server_logprob;

/* A choice's text delta: the text produced since it was last taken, and
 * where the choice stands. The same struct carries it from a slot to its
 * job, and from the job to the HTTP thread; each hand-over moves the buffer
 * (no copy) when the receiver has taken everything it had. */
typedef struct server_text_delta {
    char *text;                /* new text, text[0..len) */
    size_t len, cap;
    const char *finish_reason; /* "stop" or "length" once the choice has ended, else NULL */
    int completion_tokens;     /* tokens sampled so far */
    /* With logprobs: an entry per token sampled since, but the EOS or BOS
     * that ends the choice (a stop string's tokens have theirs). */
    server_logprob *logprobs;
    size_t n_logprobs, cap_logprobs;
} server_text_delta;

/* A job's delta: each choice's, and the job's state. Collected by
 * server_job_take into buffers the caller owns (server_job_delta_create)
 * and empties as it sends them. */
typedef struct server_job_delta {
    int n_choices;
    server_text_delta *choices;
    int prompt_tokens;
    int cached_tokens;  /* of the prompt's tokens, those a slot held from before (not evaluated again) */
    int done;           /* every choice ended, or the job failed */
    int failed;         /* cut by a failure or the shutdown: failure says why */
    char failure[256];
} server_job_delta;

server_job_delta *server_job_delta_create(int n_choices);
void server_job_delta_free(server_job_delta *delta);

/* Waits at most timeout_ms for news of the job (until_done: for its end).
 * Returns 1 when there is news (or the job has ended), 0 when none came in
 * time. */
int server_job_wait(server_scheduler *s, server_job *job, int timeout_ms, int until_done);

/* Moves what the job has produced since the last take into *delta: each
 * choice's text after what delta holds, and the job's state. */
void server_job_take(server_scheduler *s, server_job *job, server_job_delta *delta);

/* The caller is done with the job: if it is still running (the client went
 * away) its slots are freed at the next step. */
void server_job_release(server_scheduler *s, server_job *job);

/* Shutdown: refuses new jobs (SERVER_CLOSED) from now on. */
void server_scheduler_close(server_scheduler *s);
/* Waits until no job is queued or running, at most `seconds`; returns 1
 * when idle. */
int server_scheduler_drain(server_scheduler *s, double seconds);
/* Fails every job queued or running (why: their failure), at once. */
void server_scheduler_cut(server_scheduler *s, const char *why);

/* Slots busy and the queue, for /metrics. */
server_load server_scheduler_load(server_scheduler *s);

#endif
