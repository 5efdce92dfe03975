/* The scheduler of slots (scheduler.h): continuous batching over one session. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "prefix_store.h"
#include "scheduler.h"
#include "text/sampler_stages.h"

/* ----------------------------------------------------------------- jobs */

struct server_job {
    server_params params;
    int refs;         /* the HTTP thread's, and the scheduler's until it lets go */
    int cancelled;    /* the client went away */
    int done;         /* every choice ended, or the job failed */
    int failed;
    char failure[256];
    int news;         /* something new since the last take */
    pthread_cond_t cond;
    server_text_delta *choices; /* produced and not yet taken */
    int choices_left; /* choices not ended */
    int slots_held;   /* slots this job holds */
    int cached_tokens; /* prompt tokens a slot still held from before (the prefix cache) */
    unsigned long long ticket; /* order of arrival */
    server_job *next; /* in the queue */
};

static void job_free(server_job *job) {
    for (int i = 0; i < job->params.n; i++) {
        free(job->choices[i].text);
        free(job->choices[i].logprobs);
    }
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

static int append_logprobs(server_text_delta *d, const server_logprob *more, size_t n) {
    if (n == 0) return 1;
    if (d->n_logprobs + n > d->cap_logprobs) {
        size_t bigger = d->cap_logprobs ? d->cap_logprobs : 16;
        while (bigger < d->n_logprobs + n) bigger *= 2;
        server_logprob *p = realloc(d->logprobs, bigger * sizeof *p);
        if (!p) return 0;
        d->logprobs = p;
        d->cap_logprobs = bigger;
    }
    memcpy(d->logprobs + d->n_logprobs, more, n * sizeof *more);
    d->n_logprobs += n;
    return 1;
}

/* Hands from's text over to `to`, after what `to` holds, with the choice's
 * state: when `to` is empty the two buffers trade places (no copy), else
 * the text is appended. from's text is left empty; 0 when memory ran out
 * (then nothing moved). */
static int delta_move(server_text_delta *to, server_text_delta *from) {
    if (to->len == 0) {
        char *text = to->text;
        const size_t cap = to->cap;
        to->text = from->text;
        to->len = from->len;
        to->cap = from->cap;
        from->text = text;
        from->cap = cap;
    } else if (!append(&to->text, &to->len, &to->cap, from->text, from->len)) {
        return 0;
    }
    from->len = 0;
    if (to->n_logprobs == 0) {
        server_logprob *lp = to->logprobs;
        const size_t cap = to->cap_logprobs;
        to->logprobs = from->logprobs;
        to->n_logprobs = from->n_logprobs;
        to->cap_logprobs = from->cap_logprobs;
        from->logprobs = lp;
        from->cap_logprobs = cap;
    } else if (!append_logprobs(to, from->logprobs, from->n_logprobs)) {
        return 0;
    }
    from->n_logprobs = 0;
    to->finish_reason = from->finish_reason;
    to->completion_tokens = from->completion_tokens;
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
    int block;      /* prompt tokens in this step's batch */
    int logits_row; /* this step's row of logits, -1: none */
    /* The tokens whose positions the sequence holds, kept after the job
     * ends for a later request that begins with them (the prefix cache):
     * cached[0..n_cached), only positions evaluated in full. */
    int *cached;
    int n_cached;
    unsigned long long used; /* when a job last took the slot: the least recent goes first */
    int piece_offset;        /* bytes of the pieces sampled so far (logprobs' text_offset) */
    llama2_sampler *sampler;
    llama2_text_stream *stream;
    /* This step's text and the choice's state (the tokens sampled, its
     * finish_reason once it ends), published to the job under the lock. */
    server_text_delta out;
    int out_failed; /* an allocation for that text failed */
} slot;

struct server_scheduler {
    llama2_session *session;
    const llama2_tokenizer *tokenizer;
    server_metrics *metrics;
    int n_slots, vocab_size, context, queue_capacity, prompt_batch;
    int prefix_cache;        /* keep each slot's positions for the next request */
    server_prefix_store *store; /* --cache-ram: positions a slot gave up, NULL: none */
    unsigned long long uses; /* slots taken, for their `used` stamps */
    size_t store_bytes;      /* what the store holds, for /metrics (under lock) */
    size_t store_peak;       /* the most it has held, for /metrics (under lock) */
    slot *slots;
    llama2_batch_row *rows;
    float *logits;  /* a row of scores per slot */
    float *shared;  /* the prompt's scores, copied for each other choice */
    float *raw;     /* a slot's scores as the model gave them (logprobs) */
    int *order;     /* the prompt slots of a step (allocated with the scheduler, not by its
                       thread: a failure there would have cut every request to come) */
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

/* The slot's buffers stay for the next job; with the prefix cache, so do
 * its positions (at most those the session still holds: a failed step
 * keeps fewer). */
static void slot_release(server_scheduler *s, slot *sl) {
    const int sequence = (int)(sl - s->slots);
    llama2_error err;
    int n_cached = 0;
    if (s->prefix_cache) {
        const int held = llama2_session_sequence_length(s->session, sequence);
        n_cached = sl->n_cached < held ? sl->n_cached : held;
    } else {
        llama2_session_clear_sequence(s->session, sequence, &err);
    }
    llama2_sampler_destroy(sl->sampler);
    llama2_text_stream_destroy(sl->stream);
    const server_text_delta kept = {.text = sl->out.text, .cap = sl->out.cap, .logprobs = sl->out.logprobs,
                                    .cap_logprobs = sl->out.cap_logprobs};
    *sl = (slot){.state = SLOT_FREE, .logits_row = -1, .out = kept, .cached = sl->cached, .n_cached = n_cached,
                 .used = sl->used};
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
        llama2_sampler_set_grammar(sl->sampler, p->grammar, s->tokenizer, err) != LLAMA2_OK ||
        llama2_text_stream_create(s->tokenizer, &to, &sl->stream, err) != LLAMA2_OK)
        return 0;
    for (int i = 0; i < p->n_prompt; i++) llama2_sampler_accept(sl->sampler, p->prompt[i]);
    return 1;
}

/* How many of prompt's first tokens the slot holds. */
static int common_prefix(const slot *sl, const int *prompt, int n_prompt) {
    int n = 0;
    while (n < sl->n_cached && n < n_prompt && sl->cached[n] == prompt[n]) n++;
    return n;
}

/* Under the lock: the free slot for a job's prompt: the one holding the
 * longest prefix of it (the prefix cache), else the least recently used;
 * *reuse: the positions it keeps (the last prompt token is always
 * evaluated again: its scores are the first sample's). */
static int pick_leader(const server_scheduler *s, const server_params *p, int *reuse) {
    int best = -1, best_common = -1;
    for (int i = 0; i < s->n_slots; i++) {
        const slot *sl = &s->slots[i];
        if (sl->state != SLOT_FREE) continue;
        const int common = s->prefix_cache ? common_prefix(sl, p->prompt, p->n_prompt) : 0;
        if (common > best_common || (common == best_common && sl->used < s->slots[best].used)) {
            best = i;
            best_common = common;
        }
    }
    *reuse = best_common < p->n_prompt - 1 ? best_common : p->n_prompt - 1;
    return best;
}

/* Under the lock: the least recently used free slot. */
static int pick_oldest(const server_scheduler *s) {
    int best = -1;
    for (int i = 0; i < s->n_slots; i++)
        if (s->slots[i].state == SLOT_FREE && (best < 0 || s->slots[i].used < s->slots[best].used)) best = i;
    return best;
}

/* Under the lock: before a slot's positions are given up (mostly: at most
 * `kept` of them stay), the RAM store keeps them. */
static void give_up(server_scheduler *s, int i, int kept) {
    slot *sl = &s->slots[i];
    const int held = llama2_session_sequence_length(s->session, i);
    const int n = sl->n_cached < held ? sl->n_cached : held;
    if (s->store && n > 2 * kept) server_prefix_store_put(s->store, s->session, i, sl->cached, n);
}

/* Under the lock: a prompt that begins with more positions in the RAM
 * store than in any slot takes the least recently used slot, given the
 * stored positions. Returns the slot, or -1 (then nothing changed). */
static int from_store(server_scheduler *s, const server_params *p, int *reuse) {
    int entry;
    int common = s->store ? server_prefix_store_match(s->store, p->prompt, p->n_prompt, &entry) : 0;
    if ((common < p->n_prompt - 1 ? common : p->n_prompt - 1) <= *reuse) return -1;
    /* The slot's own positions go to the store first (which may drop the
     * entry to make room: then it is looked up again). */
    const int i = pick_oldest(s);
    give_up(s, i, 0);
    common = server_prefix_store_match(s->store, p->prompt, p->n_prompt, &entry);
    const int usable = common < p->n_prompt - 1 ? common : p->n_prompt - 1;
    if (usable <= *reuse) return -1;
    llama2_error err;
    const int n = server_prefix_store_take(s->store, entry, common, s->session, i, s->slots[i].cached, &err);
    s->slots[i].n_cached = n;
    if (n == 0) return -1;
    *reuse = usable;
    return i;
}

static void take_slot(server_scheduler *s, int i, server_job *job, int choice, slot_state state) {
    slot *sl = &s->slots[i];
    sl->job = job;
    sl->choice = choice;
    sl->state = state;
    sl->used = ++s->uses;
    s->slots_busy++;
    job->slots_held++;
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
        int reuse;
        int leader = pick_leader(s, &job->params, &reuse);
        const int stored = from_store(s, &job->params, &reuse);
        if (stored >= 0)
            leader = stored;
        else
            give_up(s, leader, reuse);
        take_slot(s, leader, job, 0, SLOT_PROMPT);
        s->slots[leader].n_past = s->slots[leader].n_cached = reuse; /* trimmed in setup_admitted */
        job->cached_tokens = reuse;
        server_metrics_prefix(s->metrics, reuse);
        for (int c = 1; c < job->params.n; c++) {
            const int i = pick_oldest(s);
            give_up(s, i, 0);
            take_slot(s, i, job, c, SLOT_SHARE);
            s->slots[i].n_cached = 0; /* its positions are replaced by the prompt's */
        }
        filled += job->params.n;
    }
    s->store_bytes = server_prefix_store_bytes(s->store);
    s->store_peak = server_prefix_store_peak(s->store);
    return filled;
}

/* Outside the lock: samplers and streams for the slots admitted this step.
 * A slot whose setup fails fails its job. */
static void setup_admitted(server_scheduler *s) {
    for (int i = 0; i < s->n_slots; i++) {
        slot *sl = &s->slots[i];
        if (sl->state == SLOT_FREE || sl->sampler) continue;
        llama2_error err = {0};
        if ((sl->state == SLOT_PROMPT && llama2_session_trim_sequence(s->session, i, sl->n_past, &err) != LLAMA2_OK) ||
            !slot_setup(s, sl, sl->job, sl->choice, &err)) {
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
    if (!append(&sl->out.text, &sl->out.len, &sl->out.cap, text, len)) sl->out_failed = 1;
}

static void slot_end(slot *sl, const char *reason) {
    const char *text;
    size_t len;
    llama2_text_stream_finish(sl->stream, &text, &len); /* what a stop string's start held back */
    slot_out(sl, text, len);
    sl->out.finish_reason = reason;
}

/* The log-probability of `token` under the model's scores `raw`, and the
 * top_logprobs likeliest tokens (ties: the lower id first), for the slot's
 * text delta. */
static void record_logprob(server_scheduler *s, slot *sl, const float *raw, int token) {
    const int v = s->vocab_size, k = sl->job->params.top_logprobs;
    float top = raw[0];
    for (int i = 1; i < v; i++) top = raw[i] > top ? raw[i] : top;
    double sum = 0.0;
    for (int i = 0; i < v; i++) sum += exp((double)raw[i] - (double)top);
    const double lse = (double)top + log(sum);
    server_logprob e = {.token = token, .prev = sl->token, .offset = sl->piece_offset,
                        .logprob = (float)((double)raw[token] - lse), .n_top = k < v ? k : v};
    for (int i = 0, n = 0; e.n_top > 0 && i < v; i++) {
        if (n == e.n_top && !(raw[i] > raw[e.top_token[n - 1]])) continue;
        int at = n < e.n_top ? n++ : n - 1; /* full: the last one goes */
        for (; at > 0 && raw[i] > raw[e.top_token[at - 1]]; at--) e.top_token[at] = e.top_token[at - 1];
        e.top_token[at] = i;
    }
    for (int j = 0; j < e.n_top; j++) e.top_logprob[j] = (float)((double)raw[e.top_token[j]] - lse);
    size_t len;
    llama2_token_piece(s->tokenizer, sl->token, token, &len);
    sl->piece_offset += (int)len;
    if (!append_logprobs(&sl->out, &e, 1)) sl->out_failed = 1;
}

/* Samples the slot's next token from logits and decides whether it ends.
 * logprobs come from the scores as the model gave them; ignore_eos and
 * logit_bias then change them, before the sampler's own chain. */
static void sample(server_scheduler *s, slot *sl, float *logits) {
    const server_params *p = &sl->job->params;
    if (p->logprobs) memcpy(s->raw, logits, (size_t)s->vocab_size * sizeof *logits);
    const int bpe = llama2_tokenizer_get_kind(s->tokenizer) == LLAMA2_TOKENIZER_BPE;
    if (p->ignore_eos && !bpe) logits[LLAMA2_TOKEN_EOS] = logits[LLAMA2_TOKEN_BOS] = -INFINITY;
    for (int id = 0; p->ignore_eos && bpe && id < llama2_tokenizer_vocab_size(s->tokenizer); id++)
        if (llama2_tokenizer_is_end(s->tokenizer, id)) logits[id] = -INFINITY;
    for (int i = 0; i < p->n_bias; i++) {
        float *logit = &logits[p->bias_tokens[i]];
        *logit = p->bias_values[i] <= -100.0f ? -INFINITY : *logit + p->bias_values[i];
    }
    const int next = llama2_sampler_sample(sl->sampler, logits);
    if (l2_sampler_out_of_memory(sl->sampler)) { /* publish fails the job */
        sl->out_failed = 1;
        return slot_end(sl, "stop");
    }
    sl->out.completion_tokens++;
    /* llama2.c's stories end with BOS, chat replies with EOS; Llama 3's at its end tokens. */
    if (bpe ? llama2_tokenizer_is_end(s->tokenizer, next) : next == LLAMA2_TOKEN_EOS || next == LLAMA2_TOKEN_BOS)
        return slot_end(sl, "stop");
    if (p->logprobs) record_logprob(s, sl, s->raw, next);
    const char *text;
    size_t len;
    const int stop = llama2_text_stream_push(sl->stream, sl->token, next, &text, &len);
    slot_out(sl, text, len);
    if (stop) return slot_end(sl, "stop");
    if ((p->max_tokens > 0 && sl->out.completion_tokens >= p->max_tokens) || sl->n_past >= s->context)
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
        sl->n_past = sl->n_cached = p->n_prompt;
        memcpy(sl->cached, p->prompt, (size_t)p->n_prompt * sizeof *p->prompt);
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
        server_text_delta *c = &job->choices[sl->choice];
        if (sl->out.len > 0 || sl->out.n_logprobs > 0 || sl->out.completion_tokens != c->completion_tokens ||
            sl->out.finish_reason)
            job->news = 1;
        if (sl->out_failed || !delta_move(c, &sl->out)) {
            job_fail(s, job, "out of memory for the text");
            continue;
        }
        if (c->finish_reason) {
            if (--job->choices_left == 0) {
                job->done = 1;
                if (!job->cancelled) server_metrics_add(s->metrics, &s->metrics->finished, 1);
            }
            /* The request is woken first: freeing its last slot frees the
             * job itself when the request has already let go of it. */
            if (job->news) pthread_cond_broadcast(&job->cond);
            free_slot(s, sl);
            continue;
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
            sl->cached[sl->n_past++] = sl->token;
            sl->n_cached = sl->n_past;
            sample(s, sl, logits);
            sampled++;
        } else if (sl->state == SLOT_PROMPT && sl->block > 0) {
            memcpy(sl->cached + sl->n_past, sl->job->params.prompt + sl->n_past, (size_t)sl->block * sizeof(int));
            sl->n_past += sl->block;
            sl->n_cached = sl->n_past;
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
    int *order = s->order;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        if (s->cut || s->stopping) {
            cut_all(s, s->cut ? s->cut : "the server is shutting down");
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
    return NULL;
}

/* ------------------------------------------------------------ the API */

/* Frees what create allocated (any of it may be NULL). */
static void free_buffers(server_scheduler *s) {
    for (int i = 0; s->slots && i < s->n_slots; i++) {
        free(s->slots[i].out.text);
        free(s->slots[i].out.logprobs);
        free(s->slots[i].cached);
    }
    free(s->slots);
    free(s->rows);
    free(s->logits);
    free(s->shared);
    free(s->raw);
    free(s->order);
    server_prefix_store_destroy(s->store);
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
    s->prefix_cache = options->prefix_cache;
    if (s->prefix_cache && options->cache_ram > 0 && !(s->store = server_prefix_store_create(options->cache_ram)))
        goto nomem;
    s->slots = calloc((size_t)s->n_slots, sizeof *s->slots);
    s->rows = calloc((size_t)s->n_slots + (size_t)s->prompt_batch, sizeof *s->rows);
    s->logits = malloc((size_t)s->n_slots * (size_t)s->vocab_size * sizeof *s->logits);
    s->shared = malloc((size_t)s->vocab_size * sizeof *s->shared);
    s->raw = malloc((size_t)s->vocab_size * sizeof *s->raw);
    s->order = malloc((size_t)s->n_slots * sizeof *s->order);
    if (!s->slots || !s->rows || !s->logits || !s->shared || !s->raw || !s->order) goto nomem;
    for (int i = 0; i < s->n_slots; i++) {
        s->slots[i].logits_row = -1;
        if (!(s->slots[i].cached = malloc((size_t)s->context * sizeof(int)))) goto nomem;
    }
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
    server_text_delta *choices = calloc((size_t)params->n, sizeof *choices);
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

server_job_delta *server_job_delta_create(int n_choices) {
    server_job_delta *delta = calloc(1, sizeof *delta);
    if (!delta) return NULL;
    delta->n_choices = n_choices;
    delta->choices = calloc((size_t)n_choices, sizeof *delta->choices);
    if (!delta->choices) {
        free(delta);
        return NULL;
    }
    return delta;
}

void server_job_delta_free(server_job_delta *delta) {
    if (!delta) return;
    for (int i = 0; i < delta->n_choices; i++) {
        free(delta->choices[i].text);
        free(delta->choices[i].logprobs);
    }
    free(delta->choices);
    free(delta);
}

static struct timespec deadline_after(double seconds) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    long long ns = (long long)t.tv_nsec + (long long)((seconds - (double)(long long)seconds) * 1e9);
    t.tv_sec += (time_t)seconds + (time_t)(ns / 1000000000LL);
    t.tv_nsec = (long)(ns % 1000000000LL);
    return t;
}

/* Under the lock: whether a waiter for the job has what it waits for. */
static int job_ready(const server_job *job, int until_done) { return job->done || (!until_done && job->news); }

int server_job_wait(server_scheduler *s, server_job *job, int timeout_ms, int until_done) {
    pthread_mutex_lock(&s->lock);
    if (!job_ready(job, until_done)) {
        struct timespec until = deadline_after(timeout_ms / 1000.0);
        while (!job_ready(job, until_done))
            if (pthread_cond_timedwait(&job->cond, &s->lock, &until) == ETIMEDOUT) break;
    }
    const int ready = job_ready(job, until_done);
    pthread_mutex_unlock(&s->lock);
    return ready;
}

void server_job_take(server_scheduler *s, server_job *job, server_job_delta *delta) {
    pthread_mutex_lock(&s->lock);
    int ok = 1;
    for (int i = 0; ok && i < job->params.n && i < delta->n_choices; i++)
        ok = delta_move(&delta->choices[i], &job->choices[i]);
    delta->prompt_tokens = job->params.n_prompt;
    delta->cached_tokens = job->cached_tokens;
    delta->done = job->done;
    delta->failed = job->failed;
    if (!ok && !delta->failed) {
        delta->done = delta->failed = 1;
        snprintf(delta->failure, sizeof delta->failure, "out of memory for the text");
    } else if (job->failed) {
        snprintf(delta->failure, sizeof delta->failure, "%s", job->failure);
    }
    job->news = 0;
    pthread_mutex_unlock(&s->lock);
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
                        .queue_capacity = s->queue_capacity,
                        .cache_ram_bytes = s->store_bytes,
                        .cache_ram_peak_bytes = s->store_peak};
    pthread_mutex_unlock(&s->lock);
    return load;
}
