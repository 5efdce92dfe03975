/* The scheduler of slots (scheduler.h): continuous batching over one session. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "scheduler.h"

/* ----------------------------------------------------------------- jobs */

/* One choice's output, from the scheduler to the HTTP thread. */
typedef struct job_choice {
    char *text; /* produced and not yet collected */
    size_t len, cap;
    const char *finish_reason;
    int completion_tokens;
} job_choice;

struct server_job {
    server_params params;
    int refs;         /* the HTTP thread's, and the scheduler's until it lets go */
    int cancelled;    /* the client went away */
    int done;         /* every choice ended, or the job failed */
    int failed;
    char failure[256];
    int news;         /* something new since the last wait */
    pthread_cond_t cond;
    job_choice *choices;
    int choices_left; /* choices not ended */
    int slots_held;   /* slots this job holds */
    unsigned long long ticket; /* order of arrival */
    server_job *next; /* in the queue */
};

static void job_free(server_job *job) {
    for (int i = 0; i < job->params.n; i++) free(job->choices[i].text);
    free(job->choices);
    server_params_free(&job->params);
    pthread_cond_destroy(&job->cond);
    free(job);
}

static int append(char **text, size_t *len, size_t *cap, const char *more, size_t n) {
    if (n == 0) return 1;
    if (*len + n > *cap) {
        size_t bigger = *cap ? *cap : 256;
        while (bigger < *len + n) bigger *= 2;
        char *p = realloc(*text, bigger);
        if (!p) return 0;
        *text = p;
        *cap = bigger;
    }
    memcpy(*text + *len, more, n);
    *len += n;
    return 1;
}

/* ---------------------------------------------------------------- slots */

typedef enum slot_state {
    SLOT_FREE,
    SLOT_PROMPT,   /* evaluating its job's prompt, a block a step */
    SLOT_SHARE,    /* another choice of the job: waits for the prompt's cache */
    SLOT_GENERATE, /* one token a step */
} slot_state;

/* A slot is a sequence of the session; only the scheduler's thread touches
 * it. */
typedef struct slot {
    slot_state state;
    server_job *job;
    int choice;
    int n_past;     /* positions cached */
    int token;      /* the last token: fed at n_past next step (GENERATE) */
    int generated;  /* tokens sampled */
    int block;      /* prompt tokens in this step's batch */
    int logits_row; /* this step's row of logits, -1: none */
    const char *finish_reason; /* set when it ends, until it is published */
    llama2_sampler *sampler;
    llama2_text_stream *stream;
    char *out;      /* text of this step, published under the lock */
    size_t out_len, out_cap;
    int out_failed; /* an allocation for that text failed */
} slot;

struct server_scheduler {
    llama2_session *session;
    const llama2_tokenizer *tokenizer;
    server_metrics *metrics;
    int n_slots, vocab_size, context, queue_capacity, prompt_batch;
    slot *slots;
    llama2_batch_row *rows;
    float *logits;  /* a row of scores per slot */
    float *shared;  /* the prompt's scores, copied for each other choice */
    pthread_t thread;

    /* Shared with the HTTP threads, under lock. */
    pthread_mutex_t lock;
    pthread_cond_t work; /* a job came, was released, or the scheduler must stop */
    pthread_cond_t idle; /* nothing is queued or running */
    server_job *queue_head, *queue_tail;
    int queue_length;
    int slots_busy;
    unsigned long long tickets;
    int closed;     /* no new jobs */
    int stopping;   /* the thread ends */
    const char *cut; /* fail every job with this, at the next step */
};

static void slot_release(server_scheduler *s, slot *sl) {
    llama2_error err;
    llama2_session_clear_sequence(s->session, (int)(sl - s->slots), &err);
    llama2_sampler_destroy(sl->sampler);
    llama2_text_stream_destroy(sl->stream);
    char *out = sl->out;
    size_t out_cap = sl->out_cap;
    *sl = (slot){.state = SLOT_FREE, .logits_row = -1, .out = out, .out_cap = out_cap};
}

/* Under the lock: the scheduler lets go of a job that holds no slot. */
static void job_let_go(server_scheduler *s, server_job *job) {
    if (--job->refs == 0) job_free(job);
}

/* Under the lock: frees a slot; the job is let go with its last slot. */
static void free_slot(server_scheduler *s, slot *sl) {
    server_job *job = sl->job;
    slot_release(s, sl);
    s->slots_busy--;
    if (job && --job->slots_held == 0) job_let_go(s, job);
}

/* Under the lock: ends a job with a failure (its slots are freed by the
 * caller). */
static void job_fail(server_scheduler *s, server_job *job, const char *why) {
    if (job->done) return;
    job->done = 1;
    job->failed = 1;
    snprintf(job->failure, sizeof job->failure, "%s", why);
    job->news = 1;
    pthread_cond_broadcast(&job->cond);
    if (!job->cancelled) server_metrics_add(s->metrics, &s->metrics->failed, 1);
}

/* ------------------------------------------------------------ admission */

/* Outside the lock: a slot's sampler and text stream for choice i of job. */
static int slot_setup(server_scheduler *s, slot *sl, server_job *job, int choice, llama2_error *err) {
    const server_params *p = &job->params;
    llama2_sampler_options o = p->sampling;
    o.seed += (uint64_t)choice; /* choices differ, each repeatable from the seed */
    llama2_text_stream_options to = {.stop = (const char *const *)p->stop, .n_stop = p->n_stop, .show_special = 0};
    if (llama2_sampler_create(s->vocab_size, &o, &sl->sampler, err) != LLAMA2_OK ||
        llama2_text_stream_create(s->tokenizer, &to, &sl->stream, err) != LLAMA2_OK)
        return 0;
    for (int i = 0; i < p->n_prompt; i++) llama2_sampler_accept(sl->sampler, p->prompt[i]);
    return 1;
}

/* Under the lock: moves the jobs at the head of the queue into free slots,
 * in order of arrival, while they fit. Returns how many slots it filled. */
static int admit(server_scheduler *s) {
    int filled = 0;
    while (s->queue_head && s->queue_head->params.n <= s->n_slots - s->slots_busy) {
        server_job *job = s->queue_head;
        s->queue_head = job->next;
        if (!s->queue_head) s->queue_tail = NULL;
        s->queue_length--;
        int leader = -1;
        for (int i = 0, c = 0; i < s->n_slots && c < job->params.n; i++) {
            if (s->slots[i].state != SLOT_FREE) continue;
            slot *sl = &s->slots[i];
            sl->job = job;
            sl->choice = c++;
            sl->state = leader < 0 ? SLOT_PROMPT : SLOT_SHARE;
            if (leader < 0) leader = i;
            s->slots_busy++;
            job->slots_held++;
            filled++;
        }
    }
    return filled;
}

/* Outside the lock: samplers and streams for the slots admitted this step.
 * A slot whose setup fails fails its job. */
static void setup_admitted(server_scheduler *s) {
    for (int i = 0; i < s->n_slots; i++) {
        slot *sl = &s->slots[i];
        if (sl->state == SLOT_FREE || sl->sampler) continue;
        llama2_error err = {0};
        if (!slot_setup(s, sl, sl->job, sl->choice, &err)) {
            pthread_mutex_lock(&s->lock);
            job_fail(s, sl->job, err.message);
            pthread_mutex_unlock(&s->lock);
        }
    }
}

/* Under the lock: frees the slots of jobs that are cancelled or failed, and
 * drops cancelled jobs from the queue. */
static void drop_ended(server_scheduler *s) {
    for (int i = 0; i < s->n_slots; i++) {
        slot *sl = &s->slots[i];
        if (sl->state == SLOT_FREE || !(sl->job->cancelled || sl->job->failed)) continue;
        if (sl->job->cancelled && !sl->job->done && sl->job->slots_held == 1)
            server_metrics_add(s->metrics, &s->metrics->cancelled, 1);
        free_slot(s, sl);
    }
    for (server_job **at = &s->queue_head; *at;) {
        server_job *job = *at;
        if (!job->cancelled) {
            at = &job->next;
            continue;
        }
        *at = job->next;
        s->queue_length--;
        server_metrics_add(s->metrics, &s->metrics->cancelled, 1);
        job_let_go(s, job);
    }
    s->queue_tail = NULL;
    for (server_job *job = s->queue_head; job; job = job->next) s->queue_tail = job;
}

/* Under the lock: fails every job, queued or running. */
static void cut_all(server_scheduler *s, const char *why) {
    while (s->queue_head) {
        server_job *job = s->queue_head;
        s->queue_head = job->next;
        job_fail(s, job, why);
        job_let_go(s, job);
    }
    s->queue_tail = NULL;
    s->queue_length = 0;
    for (int i = 0; i < s->n_slots; i++)
        if (s->slots[i].state != SLOT_FREE) {
            job_fail(s, s->slots[i].job, why);
            free_slot(s, &s->slots[i]);
        }
}

/* ------------------------------------------------------------- one step */

/* The prompt slots in order of their jobs' arrival: the earliest gets its
 * whole prompt block first, so prompts finish one after the other. */
static int prompt_order(const server_scheduler *s, int *order) {
    int n = 0;
    for (int i = 0; i < s->n_slots; i++)
        if (s->slots[i].state == SLOT_PROMPT) order[n++] = i;
    for (int a = 1; a < n; a++)
        for (int b = a; b > 0 && s->slots[order[b]].job->ticket < s->slots[order[b - 1]].job->ticket; b--) {
            int t = order[b];
            order[b] = order[b - 1];
            order[b - 1] = t;
        }
    return n;
}

/* The batch of this step: the next token of each generating slot, then
 * blocks of prompts within the budget. Returns the rows; *n_prompt counts
 * those of prompts. */
static int build_batch(server_scheduler *s, int *order, int *n_prompt_rows) {
    int n_rows = 0, n_logits = 0;
    for (int i = 0; i < s->n_slots; i++) {
        slot *sl = &s->slots[i];
        sl->logits_row = -1;
        sl->block = 0;
        if (sl->state != SLOT_GENERATE) continue;
        s->rows[n_rows++] = (llama2_batch_row){.sequence = i, .position = sl->n_past, .token = sl->token, .logits = 1};
        sl->logits_row = n_logits++;
    }
    int budget = s->prompt_batch;
    const int n_waiting = prompt_order(s, order);
    for (int k = 0; k < n_waiting && budget > 0; k++) {
        slot *sl = &s->slots[order[k]];
        const server_params *p = &sl->job->params;
        int take = p->n_prompt - sl->n_past < budget ? p->n_prompt - sl->n_past : budget;
        for (int j = 0; j < take; j++) {
            const int pos = sl->n_past + j;
            s->rows[n_rows++] = (llama2_batch_row){
                .sequence = order[k], .position = pos, .token = p->prompt[pos], .logits = pos == p->n_prompt - 1};
        }
        if (sl->n_past + take == p->n_prompt) sl->logits_row = n_logits++;
        sl->block = take;
        budget -= take;
    }
    *n_prompt_rows = s->prompt_batch - budget;
    return n_rows;
}

static void slot_out(slot *sl, const char *text, size_t len) {
    if (!append(&sl->out, &sl->out_len, &sl->out_cap, text, len)) sl->out_failed = 1;
}

static void slot_end(slot *sl, const char *reason) {
    const char *text;
    size_t len;
    llama2_text_stream_finish(sl->stream, &text, &len); /* what a stop string's start held back */
    slot_out(sl, text, len);
    sl->finish_reason = reason;
}

/* Samples the slot's next token from logits and decides whether it ends. */
static void sample(server_scheduler *s, slot *sl, float *logits) {
    const server_params *p = &sl->job->params;
    const int bpe = llama2_tokenizer_get_kind(s->tokenizer) == LLAMA2_TOKENIZER_BPE;
    if (p->ignore_eos && !bpe) logits[LLAMA2_TOKEN_EOS] = logits[LLAMA2_TOKEN_BOS] = -INFINITY;
    for (int id = 0; p->ignore_eos && bpe && id < llama2_tokenizer_vocab_size(s->tokenizer); id++)
        if (llama2_tokenizer_is_end(s->tokenizer, id)) logits[id] = -INFINITY;
    const int next = llama2_sampler_sample(sl->sampler, logits);
    sl->generated++;
    /* llama2.c's stories end with BOS, chat replies with EOS; Llama 3's at its end tokens. */
    if (bpe ? llama2_tokenizer_is_end(s->tokenizer, next) : next == LLAMA2_TOKEN_EOS || next == LLAMA2_TOKEN_BOS)
        return slot_end(sl, "stop");
    const char *text;
    size_t len;
    const int stop = llama2_text_stream_push(sl->stream, sl->token, next, &text, &len);
    slot_out(sl, text, len);
    if (stop) return slot_end(sl, "stop");
    if ((p->max_tokens > 0 && sl->generated >= p->max_tokens) || sl->n_past >= s->context)
        return slot_end(sl, "length");
    llama2_sampler_accept(sl->sampler, next);
    sl->token = next;
}

/* The prompt of the job in slot `leader` is cached: the other choices copy
 * its cache and sample from its scores; then the leader samples. */
static void start_choices(server_scheduler *s, int leader, float *logits) {
    slot *ls = &s->slots[leader];
    const server_params *p = &ls->job->params;
    for (int i = 0; i < s->n_slots; i++) {
        slot *sl = &s->slots[i];
        if (sl->state != SLOT_SHARE || sl->job != ls->job) continue;
        llama2_error err;
        if (llama2_session_copy_sequence(s->session, i, leader, p->n_prompt, &err) != LLAMA2_OK) {
            pthread_mutex_lock(&s->lock);
            job_fail(s, sl->job, err.message);
            pthread_mutex_unlock(&s->lock);
            continue;
        }
        sl->state = SLOT_GENERATE;
        sl->n_past = p->n_prompt;
        sl->token = p->prompt[p->n_prompt - 1];
        memcpy(s->shared, logits, (size_t)s->vocab_size * sizeof *logits);
        sample(s, sl, s->shared);
    }
    ls->state = SLOT_GENERATE;
    ls->token = p->prompt[p->n_prompt - 1];
    sample(s, ls, logits);
}

/* Under the lock: hands each slot's text of this step to its job, and ends
 * the slots that finished. */
static void publish(server_scheduler *s) {
    for (int i = 0; i < s->n_slots; i++) {
        slot *sl = &s->slots[i];
        if (sl->state == SLOT_FREE || sl->job->failed) continue;
        server_job *job = sl->job;
        job_choice *c = &job->choices[sl->choice];
        if (sl->out_len > 0 || sl->generated != c->completion_tokens || sl->finish_reason) job->news = 1;
        if (sl->out_failed || !append(&c->text, &c->len, &c->cap, sl->out, sl->out_len)) {
            job_fail(s, job, "out of memory for the text");
            continue;
        }
        sl->out_len = 0;
        c->completion_tokens = sl->generated;
        if (sl->finish_reason) {
            c->finish_reason = sl->finish_reason;
            if (--job->choices_left == 0) {
                job->done = 1;
                if (!job->cancelled) server_metrics_add(s->metrics, &s->metrics->finished, 1);
            }
            free_slot(s, sl);
        }
        if (job->news) pthread_cond_broadcast(&job->cond);
    }
}

/* Outside the lock: evaluates the batch and samples. */
static void step(server_scheduler *s, int *order) {
    const double t0 = llama2_time_seconds();
    int n_prompt_rows = 0;
    const int n_rows = build_batch(s, order, &n_prompt_rows);
    llama2_error err = {0};
    if (llama2_session_eval_batch(s->session, s->rows, n_rows, s->logits, &err) != LLAMA2_OK) {
        pthread_mutex_lock(&s->lock);
        for (int i = 0; i < s->n_slots; i++)
            if (s->slots[i].state != SLOT_FREE && (s->slots[i].logits_row >= 0 || s->slots[i].block > 0))
                job_fail(s, s->slots[i].job, err.message);
        pthread_mutex_unlock(&s->lock);
        return;
    }
    int sampled = 0;
    for (int i = 0; i < s->n_slots; i++) {
        slot *sl = &s->slots[i];
        float *logits = sl->logits_row >= 0 ? s->logits + (size_t)sl->logits_row * (size_t)s->vocab_size : NULL;
        if (sl->state == SLOT_GENERATE && logits) {
            sl->n_past++;
            sample(s, sl, logits);
            sampled++;
        } else if (sl->state == SLOT_PROMPT && sl->block > 0) {
            sl->n_past += sl->block;
            if (logits) {
                start_choices(s, i, logits);
                sampled += sl->job->params.n;
            }
        }
    }
    server_metrics_step(s->metrics, n_prompt_rows, sampled, llama2_time_seconds() - t0);
}

static void *run(void *arg) {
    server_scheduler *s = arg;
    int *order = malloc((size_t)s->n_slots * sizeof *order);
    pthread_mutex_lock(&s->lock);
    for (;;) {
        if (s->cut || s->stopping || !order) {
            cut_all(s, s->cut ? s->cut : !order ? "out of memory" : "the server is shutting down");
            s->cut = NULL;
        }
        drop_ended(s);
        const int admitted = admit(s);
        if (s->slots_busy == 0) {
            pthread_cond_broadcast(&s->idle);
            if (s->stopping) break;
            pthread_cond_wait(&s->work, &s->lock);
            continue;
        }
        pthread_mutex_unlock(&s->lock);
        if (admitted) setup_admitted(s);
        pthread_mutex_lock(&s->lock);
        drop_ended(s); /* a setup may have failed a job; clients may have gone */
        if (s->slots_busy == 0) continue;
        pthread_mutex_unlock(&s->lock);
        step(s, order);
        pthread_mutex_lock(&s->lock);
        publish(s);
    }
    pthread_mutex_unlock(&s->lock);
    free(order);
    return NULL;
}

/* ------------------------------------------------------------ the API */

/* Frees what create allocated (any of it may be NULL). */
static void free_buffers(server_scheduler *s) {
    for (int i = 0; s->slots && i < s->n_slots; i++) free(s->slots[i].out);
    free(s->slots);
    free(s->rows);
    free(s->logits);
    free(s->shared);
    free(s);
}

llama2_status server_scheduler_create(llama2_session *session, const llama2_tokenizer *tokenizer,
                                      const server_scheduler_options *options, server_metrics *metrics,
                                      server_scheduler **out, llama2_error *err) {
    *out = NULL;
    server_scheduler *s = calloc(1, sizeof *s);
    if (!s) goto nomem;
    s->session = session;
    s->tokenizer = tokenizer;
    s->metrics = metrics;
    s->n_slots = llama2_session_sequences(session);
    s->vocab_size = llama2_model_config(llama2_session_model(session))->vocab_size;
    s->context = llama2_session_context_length(session);
    s->queue_capacity = options->queue_capacity;
    s->prompt_batch = options->prompt_batch > 0 ? options->prompt_batch : 1;
    s->slots = calloc((size_t)s->n_slots, sizeof *s->slots);
    s->rows = calloc((size_t)s->n_slots + (size_t)s->prompt_batch, sizeof *s->rows);
    s->logits = malloc((size_t)s->n_slots * (size_t)s->vocab_size * sizeof *s->logits);
    s->shared = malloc((size_t)s->vocab_size * sizeof *s->shared);
    if (!s->slots || !s->rows || !s->logits || !s->shared) goto nomem;
    for (int i = 0; i < s->n_slots; i++) s->slots[i].logits_row = -1;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->work, NULL);
    pthread_cond_init(&s->idle, NULL);
    int rc = pthread_create(&s->thread, NULL, run, s);
    if (rc != 0) {
        pthread_mutex_destroy(&s->lock);
        pthread_cond_destroy(&s->work);
        pthread_cond_destroy(&s->idle);
        free_buffers(s);
        err->status = LLAMA2_E_NOMEM;
        snprintf(err->message, sizeof err->message, "cannot start the scheduler's thread: %s", strerror(rc));
        return LLAMA2_E_NOMEM;
    }
    *out = s;
    return LLAMA2_OK;
nomem:
    if (s) free_buffers(s);
    err->status = LLAMA2_E_NOMEM;
    snprintf(err->message, sizeof err->message, "out of memory for the scheduler");
    return LLAMA2_E_NOMEM;
}

void server_scheduler_destroy(server_scheduler *s) {
    if (!s) return;
    pthread_mutex_lock(&s->lock);
    s->stopping = 1;
    s->closed = 1;
    pthread_cond_signal(&s->work);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->work);
    pthread_cond_destroy(&s->idle);
    free_buffers(s);
}

server_submit_result server_scheduler_submit(server_scheduler *s, server_params *params, server_job **out) {
    *out = NULL;
    server_job *job = calloc(1, sizeof *job);
    job_choice *choices = calloc((size_t)params->n, sizeof *choices);
    if (!job || !choices) {
        free(job);
        free(choices);
        server_params_free(params);
        return SERVER_NO_MEMORY;
    }
    job->params = *params;
    memset(params, 0, sizeof *params);
    job->choices = choices;
    job->choices_left = job->params.n;
    job->refs = 2;
    pthread_cond_init(&job->cond, NULL);

    pthread_mutex_lock(&s->lock);
    server_submit_result r = SERVER_SUBMITTED;
    const int free_slots = s->n_slots - s->slots_busy;
    /* A job that fits the free slots now does not wait; others queue. */
    if (s->closed)
        r = SERVER_CLOSED;
    else if (s->queue_length >= s->queue_capacity && !(s->queue_length == 0 && job->params.n <= free_slots))
        r = SERVER_QUEUE_FULL;
    if (r != SERVER_SUBMITTED) {
        pthread_mutex_unlock(&s->lock);
        if (r == SERVER_QUEUE_FULL) server_metrics_add(s->metrics, &s->metrics->rejected, 1);
        job_free(job);
        return r;
    }
    job->ticket = ++s->tickets;
    if (s->queue_tail)
        s->queue_tail->next = job;
    else
        s->queue_head = job;
    s->queue_tail = job;
    s->queue_length++;
    pthread_cond_signal(&s->work);
    pthread_mutex_unlock(&s->lock);
    server_metrics_add(s->metrics, &s->metrics->requests, 1);
    *out = job;
    return SERVER_SUBMITTED;
}

server_news *server_news_create(int n_choices) {
    server_news *news = calloc(1, sizeof *news);
    if (!news) return NULL;
    news->n_choices = n_choices;
    news->choices = calloc((size_t)n_choices, sizeof *news->choices);
    if (!news->choices) {
        free(news);
        return NULL;
    }
    return news;
}

void server_news_free(server_news *news) {
    if (!news) return;
    for (int i = 0; i < news->n_choices; i++) free(news->choices[i].text);
    free(news->choices);
    free(news);
}

static struct timespec deadline_after(double seconds) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    long long ns = (long long)t.tv_nsec + (long long)((seconds - (double)(long long)seconds) * 1e9);
    t.tv_sec += (time_t)seconds + (time_t)(ns / 1000000000LL);
    t.tv_nsec = (long)(ns % 1000000000LL);
    return t;
}

int server_job_wait(server_scheduler *s, server_job *job, int timeout_ms, server_news *news) {
    pthread_mutex_lock(&s->lock);
    if (!job->news && !job->done) {
        struct timespec until = deadline_after(timeout_ms / 1000.0);
        while (!job->news && !job->done)
            if (pthread_cond_timedwait(&job->cond, &s->lock, &until) == ETIMEDOUT) break;
    }
    const int had_news = job->news || job->done;
    int ok = 1;
    for (int i = 0; i < job->params.n && i < news->n_choices; i++) {
        job_choice *c = &job->choices[i];
        server_choice_news *n = &news->choices[i];
        ok = ok && append(&n->text, &n->len, &n->cap, c->text, c->len);
        c->len = 0;
        n->finish_reason = c->finish_reason;
        n->completion_tokens = c->completion_tokens;
    }
    news->prompt_tokens = job->params.n_prompt;
    news->done = job->done;
    news->failed = job->failed;
    if (!ok && !news->failed) {
        news->done = news->failed = 1;
        snprintf(news->failure, sizeof news->failure, "out of memory for the text");
    } else if (job->failed) {
        snprintf(news->failure, sizeof news->failure, "%s", job->failure);
    }
    job->news = 0;
    pthread_mutex_unlock(&s->lock);
    return had_news;
}

void server_job_release(server_scheduler *s, server_job *job) {
    pthread_mutex_lock(&s->lock);
    if (!job->done) {
        job->cancelled = 1;
        pthread_cond_signal(&s->work);
    }
    if (--job->refs == 0) job_free(job);
    pthread_mutex_unlock(&s->lock);
}

void server_scheduler_close(server_scheduler *s) {
    pthread_mutex_lock(&s->lock);
    s->closed = 1;
    pthread_mutex_unlock(&s->lock);
}

int server_scheduler_drain(server_scheduler *s, double seconds) {
    struct timespec until = deadline_after(seconds);
    pthread_mutex_lock(&s->lock);
    while (s->queue_length > 0 || s->slots_busy > 0)
        if (pthread_cond_timedwait(&s->idle, &s->lock, &until) == ETIMEDOUT) break;
    const int idle = s->queue_length == 0 && s->slots_busy == 0;
    pthread_mutex_unlock(&s->lock);
    return idle;
}

void server_scheduler_cut(server_scheduler *s, const char *why) {
    pthread_mutex_lock(&s->lock);
    s->cut = why;
    pthread_cond_signal(&s->work);
    pthread_mutex_unlock(&s->lock);
}

server_load server_scheduler_load(server_scheduler *s) {
    pthread_mutex_lock(&s->lock);
    server_load load = {.slots_busy = s->slots_busy,
                        .slots_total = s->n_slots,
                        .queue_length = s->queue_length,
                        .queue_capacity = s->queue_capacity};
    pthread_mutex_unlock(&s->lock);
    return load;
}
