/*
 * The persistent thread pool.
 *
 * n_threads - 1 workers are started once; the thread that calls l2_pool_run
 * is worker 0 and runs tasks too. Tasks are handed out dynamically from one
 * shared "ticket", a 64-bit atomic holding (generation << 32 | next task):
 * every call of l2_pool_run opens a new generation, and a thread claims
 * tasks [i, i + k) by moving the ticket from (gen, i) to (gen, i + k) with a
 * compare-and-swap, k being a share of what is left (guided scheduling: few
 * claims per call, single tasks at the end for balance). The caller waits
 * only until every task is done, not until every worker has looked in, so a
 * worker that is asleep or descheduled never delays a product: the others
 * simply take its share. Each thread reports its finished tasks once, when
 * it finds none left.
 *
 * Publishing a job is a small sequence lock: the caller first "closes" the
 * ticket as (gen + 1, CLOSED), then writes the job (function, context, task
 * count), then opens it as (gen + 1, 0). A worker reads the ticket, then the
 * job, then claims with a CAS that expects the ticket it read; the CAS can
 * only succeed if the caller wrote nothing in between (all of these are
 * sequentially consistent atomics), so a claimed task always comes with the
 * job of its own generation. Ticket values never repeat (the generation
 * grows), so there is no ABA problem within 2^32 calls.
 *
 * Idle workers spin for a short while (L2_POOL_SPIN_NS) with a pause
 * instruction, so that the several products of a layer do not each pay a
 * wake-up, and then sleep on a condition variable: an idle pool burns no CPU.
 * The caller broadcasts only when some worker is asleep.
 *
 * l2_pool_run must not be called from two threads at once on one pool.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "checks.h"
#include "platform.h"
#include "threadpool.h"

/* How long an idle worker keeps polling before it sleeps. Long enough to
 * bridge the gaps between the products of a token (and the sampling between
 * tokens), short enough that a pool left alone goes quiet at once. */
#define L2_POOL_SPIN_NS 100000L

/* A claim takes 1 / (L2_POOL_CLAIM_SHARE * n_threads) of the tasks left. */
#ifndef L2_POOL_CLAIM_SHARE
#define L2_POOL_CLAIM_SHARE 2
#endif

/* The most threads a pool takes. */
#define L2_POOL_MAX_THREADS 1024

#define TICKET_CLOSED 0xffffffffu
#define TICKET(gen, idx) (((uint64_t)(gen) << 32) | (uint64_t)(idx))
#define TICKET_IDX(t) ((uint32_t)(t))

#define L2_CACHE_LINE 64

struct llama2_threadpool;

typedef struct l2_worker {
    struct llama2_threadpool *pool;
    int id;
    l2_thread *thread;
} l2_worker;

struct llama2_threadpool {
    int n_threads;
    int n_started;      /* worker threads running (n_threads - 1 once created) */
    uint32_t claim_divisor; /* a claim takes 1 / claim_divisor of the tasks left */
    uint32_t gen;       /* the caller's generation counter (caller thread only) */
    l2_worker *workers; /* [1, n_threads) are used */

    /* Written by the caller, read by everyone: one line of its own. */
    _Alignas(L2_CACHE_LINE) _Atomic uint64_t ticket;

    /* The current job (see the sequence lock above). */
    _Alignas(L2_CACHE_LINE) _Atomic(l2_task_fn) fn;
    _Atomic(void *) ctx;
    _Atomic uint32_t n_tasks;
    _Atomic int stop;

    /* Tasks finished in this generation: written by every worker. */
    _Alignas(L2_CACHE_LINE) _Atomic uint32_t done;

    /* Sleepers: workers that gave up spinning. */
    _Alignas(L2_CACHE_LINE) _Atomic int n_sleeping;
    l2_monitor *sleep;
};

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#elif defined(__aarch64__) || defined(__arm__)
    __asm__ __volatile__("yield" ::: "memory");
#endif
}

/* Claims and runs tasks until the current generation has none left; returns
 * the ticket value that showed there were none (or that the job is being
 * replaced). The tasks this thread finished are reported once, at the end:
 * the generation cannot end before that, so they all belong to it. */
static uint64_t run_tasks(llama2_threadpool *pool, int worker) {
    uint64_t t = atomic_load(&pool->ticket);
    uint32_t finished = 0;
    for (;;) {
        uint32_t idx = TICKET_IDX(t);
        if (idx == TICKET_CLOSED) break;
        l2_task_fn fn = atomic_load(&pool->fn);
        void *ctx = atomic_load(&pool->ctx);
        uint32_t n = atomic_load(&pool->n_tasks);
        /* Exhausted, or n belongs to a job being published (then the
         * ticket changes and the waiter sees it). */
        if (idx >= n) break;
        /* Guided scheduling: a share of what is left (at least one task),
         * so that a call takes few claims while the last tasks still
         * spread one by one over whoever is free. */
        uint32_t take = (n - idx) / pool->claim_divisor;
        if (take == 0) take = 1;
        if (atomic_compare_exchange_weak(&pool->ticket, &t, t + take)) {
            for (uint32_t i = idx; i < idx + take; i++) fn(ctx, (int)i, worker);
            finished += take;
            t = atomic_load(&pool->ticket);
        }
        /* On failure t holds the current ticket: retry with it. */
    }
    if (finished) atomic_fetch_add_explicit(&pool->done, finished, memory_order_release);
    return t;
}

static void worker_main(void *arg) {
    l2_worker *self = arg;
    llama2_threadpool *pool = self->pool;
    /* The ticket's initial value: if the caller has published a job before
     * this thread got here, the ticket differs and the job is picked up. */
    uint64_t last = TICKET(0, TICKET_CLOSED);
    for (;;) {
        /* Wait for the ticket to move away from the exhausted value. */
        int64_t spin_start = 0;
        unsigned spins = 0;
        while (atomic_load_explicit(&pool->ticket, memory_order_relaxed) == last &&
               !atomic_load_explicit(&pool->stop, memory_order_relaxed)) {
            cpu_relax();
            if ((++spins & 63) == 0) {
                int64_t t = l2_monotonic_ns();
                if (spin_start == 0) {
                    spin_start = t;
                } else if (t - spin_start > L2_POOL_SPIN_NS) {
                    atomic_fetch_add(&pool->n_sleeping, 1);
                    l2_monitor_lock(pool->sleep);
                    while (atomic_load(&pool->ticket) == last && !atomic_load(&pool->stop))
                        l2_monitor_wait(pool->sleep);
                    l2_monitor_unlock(pool->sleep);
                    atomic_fetch_sub(&pool->n_sleeping, 1);
                    break;
                }
            }
        }
        if (atomic_load(&pool->stop)) break;
        last = run_tasks(pool, self->id);
    }
}

static void wake_sleepers(llama2_threadpool *pool) {
    l2_monitor_lock(pool->sleep);
    l2_monitor_wake_all(pool->sleep);
    l2_monitor_unlock(pool->sleep);
}

static void stop_workers(llama2_threadpool *pool) {
    atomic_store(&pool->stop, 1);
    wake_sleepers(pool);
    for (int i = 1; i <= pool->n_started; i++) l2_thread_join(pool->workers[i].thread);
    pool->n_started = 0;
}

llama2_status llama2_threadpool_create(int n_threads, llama2_threadpool **out, llama2_error *err) {
    if (!out) return l2_fail(err, LLAMA2_E_INVALID, "no place to return the thread pool");
    *out = NULL;
    if (n_threads <= 0) {
        int n = l2_processor_count();
        n_threads = n < L2_POOL_MAX_THREADS ? n : L2_POOL_MAX_THREADS;
    }
    if (n_threads > L2_POOL_MAX_THREADS)
        return l2_fail(err, LLAMA2_E_INVALID, "%d threads is more than the %d a pool takes", n_threads,
                       L2_POOL_MAX_THREADS);

    llama2_threadpool *pool = l2_aligned_malloc(L2_CACHE_LINE, sizeof *pool);
    if (!pool) return l2_fail(err, LLAMA2_E_NOMEM, "out of memory for the thread pool");
    pool->n_threads = n_threads;
    pool->n_started = 0;
    pool->claim_divisor = (uint32_t)n_threads * L2_POOL_CLAIM_SHARE;
    pool->gen = 0;
    pool->workers = calloc((size_t)n_threads, sizeof *pool->workers);
    if (!pool->workers) {
        l2_aligned_free(pool);
        return l2_fail(err, LLAMA2_E_NOMEM, "out of memory for the thread pool");
    }
    atomic_init(&pool->ticket, TICKET(0, TICKET_CLOSED));
    atomic_init(&pool->fn, (l2_task_fn)NULL);
    atomic_init(&pool->ctx, (void *)NULL);
    atomic_init(&pool->n_tasks, 0);
    atomic_init(&pool->stop, 0);
    atomic_init(&pool->done, 0);
    atomic_init(&pool->n_sleeping, 0);
    if (!(pool->sleep = l2_monitor_create())) {
        free(pool->workers);
        l2_aligned_free(pool);
        return l2_fail(err, LLAMA2_E_NOMEM, "cannot create the thread pool's lock");
    }

    for (int i = 1; i < n_threads; i++) {
        l2_worker *w = &pool->workers[i];
        w->pool = pool;
        w->id = i;
        int rc = l2_thread_start(&w->thread, worker_main, w);
        if (rc != 0) {
            stop_workers(pool);
            l2_monitor_destroy(pool->sleep);
            free(pool->workers);
            l2_aligned_free(pool);
            return l2_fail(err, rc == EAGAIN ? LLAMA2_E_NOMEM : LLAMA2_E_INVALID,
                           "cannot start thread %d of %d", i + 1, n_threads);
        }
        pool->n_started = i;
    }
    *out = pool;
    return LLAMA2_OK;
}

void llama2_threadpool_destroy(llama2_threadpool *pool) {
    if (!pool) return;
    stop_workers(pool);
    l2_monitor_destroy(pool->sleep);
    free(pool->workers);
    l2_aligned_free(pool);
}

int llama2_threadpool_size(const llama2_threadpool *pool) { return pool ? pool->n_threads : 1; }

void l2_pool_run(llama2_threadpool *pool, int n_tasks, l2_task_fn fn, void *ctx) {
    if (n_tasks <= 0) return;
    if (!pool || pool->n_threads <= 1 || n_tasks == 1) {
        for (int t = 0; t < n_tasks; t++) fn(ctx, t, 0);
        return;
    }

    /* Publish: close, write the job, open. Every task of the previous
     * generation is done (we waited for it), so nobody runs its function
     * any more; late workers can at most read the ticket and fail. */
    uint32_t gen = ++pool->gen;
    atomic_store(&pool->ticket, TICKET(gen, TICKET_CLOSED));
    atomic_store(&pool->fn, fn);
    atomic_store(&pool->ctx, ctx);
    atomic_store(&pool->n_tasks, (uint32_t)n_tasks);
    atomic_store_explicit(&pool->done, 0, memory_order_relaxed);
    atomic_store(&pool->ticket, TICKET(gen, 0));
    if (atomic_load(&pool->n_sleeping) > 0) wake_sleepers(pool);

    run_tasks(pool, 0);

    /* Wait for the tasks other workers took. */
    unsigned spins = 0;
    while (atomic_load_explicit(&pool->done, memory_order_acquire) != (uint32_t)n_tasks) {
        cpu_relax();
        if (++spins >= 4096) {
            spins = 0;
            l2_thread_yield();
        }
    }
}
