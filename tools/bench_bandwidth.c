/*
 * llama2-bench: the machine's memory read bandwidth, the bound that
 * generation cannot beat -- every weight is read once per generated token.
 * Like the rows, the probe runs in a child process (run_in_child).
 */
#include "bench_bandwidth.h"

#include <stdatomic.h>
#include <string.h>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "llama2.h"
#include "platform/platform.h"

#define BW_BYTES ((size_t)1 << 30) /* the probe's buffer */

/* Sums `bytes` (a multiple of 4 * 128) as 4 interleaved sequential streams:
 * more reads in flight than one stream gets from the prefetchers, as the
 * matrix kernels have when they walk several rows at once. */
#define BW_STREAMS 4
static uint64_t read_bytes(const unsigned char *p, size_t bytes) {
    const size_t len = bytes / BW_STREAMS;
    const unsigned char *s0 = p, *s1 = p + len, *s2 = p + 2 * len, *s3 = p + 3 * len;
#if defined(__AVX2__)
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
#define LOAD2(q, i) \
    _mm256_add_epi64(_mm256_load_si256((const __m256i *)(const void *)((q) + (i))), \
                     _mm256_load_si256((const __m256i *)(const void *)((q) + (i) + 32)))
    for (size_t i = 0; i + 64 <= len; i += 64) {
        a0 = _mm256_add_epi64(a0, LOAD2(s0, i));
        a1 = _mm256_add_epi64(a1, LOAD2(s1, i));
        a2 = _mm256_add_epi64(a2, LOAD2(s2, i));
        a3 = _mm256_add_epi64(a3, LOAD2(s3, i));
    }
#undef LOAD2
    __m256i s = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
    uint64_t lanes[4];
    _mm256_storeu_si256((__m256i *)(void *)lanes, s);
    return lanes[0] + lanes[1] + lanes[2] + lanes[3];
#else
    uint64_t a[4] = {0};
    for (size_t i = 0; i + 64 <= len; i += 64) {
        for (size_t k = 0; k < 64; k += 16) {
            uint64_t x0, x1, x2, x3;
            memcpy(&x0, s0 + i + k, 8);
            memcpy(&x1, s1 + i + k, 8);
            memcpy(&x2, s2 + i + k, 8);
            memcpy(&x3, s3 + i + k, 8);
            a[0] += x0;
            a[1] += x1;
            a[2] += x2;
            a[3] += x3;
        }
    }
    return a[0] + a[1] + a[2] + a[3];
#endif
}

/* The buffer is handed out in chunks, one at a time to whichever thread is
 * free (as the library's pool shares out rows), so that a thread slowed by
 * other work on its core does not hold up the pass. */
#define BW_CHUNK ((size_t)4 << 20)

/* Where the threads of a pass wait for each other. */
typedef struct barrier {
    l2_monitor *monitor;
    int n, waiting;
    unsigned round;
} barrier;

static void barrier_wait(barrier *b) {
    l2_monitor_lock(b->monitor);
    unsigned round = b->round;
    if (++b->waiting == b->n) {
        b->waiting = 0;
        b->round++;
        l2_monitor_wake_all(b->monitor);
    } else {
        while (round == b->round) l2_monitor_wait(b->monitor);
    }
    l2_monitor_unlock(b->monitor);
}

typedef struct bw_pass {
    const unsigned char *buf;
    size_t chunk, n_chunks; /* the buffer: n_chunks of chunk bytes */
    size_t reads;           /* chunks read in a pass: the buffer, once or over and over */
    atomic_size_t next;     /* the next chunk to read */
    barrier start, end;
} bw_pass;

typedef struct bw_worker {
    bw_pass *pass;
    uint64_t sink;
} bw_worker;

static void bw_read_chunks(bw_worker *w) {
    const bw_pass *p = w->pass;
    for (;;) {
        size_t c = atomic_fetch_add_explicit(&w->pass->next, 1, memory_order_relaxed);
        if (c >= p->reads) break;
        w->sink += read_bytes(p->buf + c % p->n_chunks * p->chunk, p->chunk);
    }
}

static void bw_thread(void *arg) {
    bw_worker *w = arg;
    for (int p = 0; p < BW_PASSES; p++) {
        barrier_wait(&w->pass->start);
        bw_read_chunks(w);
        barrier_wait(&w->pass->end);
    }
}

/* The best of BW_PASSES passes by each thread count of the request (the
 * calling thread included) over `pass`, into gbs. 0 when threads could not
 * all be started: those that were wait for ever, and nothing more can be
 * measured. */
static int measure_passes(const bw_request *rq, bw_pass *pass, double *gbs, uint64_t *sink) {
    bw_pass *p = pass;
    for (int t = 0; t < rq->n_threads; t++) {
        int n = rq->threads[t];
        p->start.n = p->end.n = n;
        static bw_worker workers[MAX_THREADS];
        static l2_thread *ids[MAX_THREADS];
        int started = 1;
        for (int k = 0; k < n; k++) workers[k] = (bw_worker){p, 0};
        for (int k = 1; k < n; k++) {
            if (l2_thread_start(&ids[k], bw_thread, &workers[k]) != 0) break;
            started++;
        }
        if (started != n) {
            /* Leave this count unmeasured; the started threads would block
             * on the barrier forever, so the child just exits after this. */
            return 0;
        }
        double best = 0;
        const double bytes = (double)p->reads * (double)p->chunk;
        for (int i = 0; i < BW_PASSES; i++) {
            atomic_store(&p->next, 0);
            barrier_wait(&p->start);
            double t0 = llama2_time_seconds();
            bw_read_chunks(&workers[0]);
            barrier_wait(&p->end);
            double dt = llama2_time_seconds() - t0;
            double rate = dt > 0 ? bytes / dt / 1e9 : 0;
            if (rate > best) best = rate;
        }
        for (int k = 1; k < n; k++) l2_thread_join(ids[k]);
        for (int k = 0; k < n; k++) *sink += workers[k].sink;
        gbs[t] = best;
    }
    return 1;
}

/* The buffer's pages, each written: real pages, not the shared zero page. */
static unsigned char *written_buffer(size_t bytes) {
    unsigned char *buf = l2_aligned_malloc(4096, bytes);
    for (size_t i = 0; buf && i < bytes; i += 4096) memset(buf + i, (int)(i >> 12) & 0xff, 4096);
    return buf;
}

/* Memory: a 1 GiB buffer read once a pass. The level 3 cache: a buffer of
 * half its size, in 64 chunks, read over and over (1 GiB a pass), so that
 * after the first time it is read from the cache. Runs in a child. */
void measure_bandwidth(const void *arg, void *out) {
    const bw_request *rq = arg;
    bw_result *r = out;
    memset(r, 0, sizeof *r);
    static bw_pass pass;
    if (!(pass.start.monitor = l2_monitor_create()) || !(pass.end.monitor = l2_monitor_create())) return;
    unsigned char *buf = written_buffer(BW_BYTES);
    if (!buf) return;
    pass.buf = buf;
    pass.chunk = BW_CHUNK;
    pass.n_chunks = pass.reads = BW_BYTES / BW_CHUNK;
    const int all_started = measure_passes(rq, &pass, r->gbs, &r->sink);
    l2_aligned_free(buf);

    const size_t chunk = (size_t)(rq->l3_bytes / 2 / 64) / 4096 * 4096;
    if (!all_started || chunk == 0) return;
    if (!(buf = written_buffer(chunk * 64))) return;
    pass.buf = buf;
    pass.chunk = chunk;
    pass.n_chunks = 64;
    pass.reads = BW_BYTES / chunk;
    measure_passes(rq, &pass, r->l3_gbs, &r->sink);
    l2_aligned_free(buf);
}

void bw_best_up_to(const int *threads, int n_threads, double *gbs) {
    double best[MAX_THREAD_COUNTS];
    for (int t = 0; t < n_threads; t++) {
        best[t] = 0;
        for (int u = 0; u < n_threads; u++)
            if (threads[u] <= threads[t] && gbs[u] > best[t]) best[t] = gbs[u];
    }
    memcpy(gbs, best, (size_t)n_threads * sizeof *best);
}
