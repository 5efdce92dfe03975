/*
 * llama2-bench: tokens per second on random-weight models, in the manner of
 * llama.cpp's llama-bench.
 *
 * For every model shape, weight type and thread count it measures prompt
 * processing (a prompt of N tokens evaluated in blocks from position 0) and
 * generation (one position at a time after a one-token prompt, with the
 * classifier run at every step), each as the median of several repetitions.
 * The machine's memory read bandwidth is measured too, to give the bound that
 * generation cannot beat: every weight is read once per generated token.
 *
 * Models are written once by l2_write_random_model into a cache folder and
 * reused. Each row runs in a child process, so that its peak resident memory
 * is its own.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "checkpoint_writer.h"
#include "llama2.h"

#define PROGRAM "llama2-bench"
#define VOCAB 32000
#define MAX_REPS 100
#define MAX_PP 8
#define MAX_THREADS 256 /* threads in one row */
#define MAX_THREAD_COUNTS 16 /* entries of --threads */
#define MAX_SHAPES 4
#define BW_BYTES ((size_t)1 << 30) /* the bandwidth probe's buffer */
#define BW_PASSES 8
#define Q8_GROUP 64
#define DEFAULT_MAX_TIME 60 /* seconds */
#define STR2(x) #x
#define STR(x) STR2(x)

/* ------------------------------------------------------------- errors */

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, PROGRAM ": ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* ------------------------------------------------------------- shapes */

typedef struct shape {
    const char *name;
    int dim, hidden_dim, n_layers, n_heads, n_kv_heads, seq_len, shared_classifier;
} shape;

static const shape SHAPES[MAX_SHAPES] = {
    {"stories15M", 288, 768, 6, 6, 6, 1024, 1},
    {"stories42M", 512, 1376, 8, 8, 8, 1024, 1},
    {"stories110M", 768, 2048, 12, 12, 12, 1024, 1},
    {"tinyllama1.1B", 2048, 5632, 22, 32, 4, 2048, 0},
};

enum { TYPE_F32 = 0, TYPE_Q8 = 1, N_TYPES = 2 };
static const char *const TYPE_NAMES[N_TYPES] = {"f32", "q8"};

static llama2_config shape_config(const shape *s, int type) {
    llama2_config c;
    memset(&c, 0, sizeof c);
    c.dim = s->dim;
    c.hidden_dim = s->hidden_dim;
    c.n_layers = s->n_layers;
    c.n_heads = s->n_heads;
    c.n_kv_heads = s->n_kv_heads;
    c.vocab_size = VOCAB;
    c.seq_len = s->seq_len;
    c.shared_classifier = s->shared_classifier;
    if (type == TYPE_Q8) {
        c.file_version = 2;
        c.weight_type = LLAMA2_WEIGHTS_Q8_0;
        /* 64 where it divides both widths (stories42M's 1376 takes 32). */
        c.group_size = s->dim % Q8_GROUP == 0 && s->hidden_dim % Q8_GROUP == 0
                           ? Q8_GROUP
                           : l2_default_group_size(s->dim, s->hidden_dim);
    } else {
        c.file_version = 1;
        c.weight_type = LLAMA2_WEIGHTS_F32;
    }
    return c;
}

/* Bytes a matrix of n values takes in the file. */
static uint64_t matrix_bytes(const llama2_config *c, uint64_t n) {
    if (c->weight_type == LLAMA2_WEIGHTS_Q8_0) return n + n / (uint64_t)c->group_size * 4;
    return n * 4;
}

static uint64_t embedding_bytes(const llama2_config *c) {
    return matrix_bytes(c, (uint64_t)c->vocab_size * (uint64_t)c->dim);
}

/* The size of a version 1 or 2 file of this shape: the 256-byte header, the
 * fp32 norms, then every matrix. */
static uint64_t file_bytes(const llama2_config *c) {
    const uint64_t d = (uint64_t)c->dim, h = (uint64_t)c->hidden_dim, L = (uint64_t)c->n_layers;
    const uint64_t kv = d / (uint64_t)c->n_heads * (uint64_t)c->n_kv_heads;
    uint64_t total = 256 + (2 * L + 1) * d * 4 + embedding_bytes(c);
    total += L * (2 * matrix_bytes(c, d * d) + 2 * matrix_bytes(c, kv * d) + 3 * matrix_bytes(c, h * d));
    if (!c->shared_classifier) total += embedding_bytes(c);
    return total;
}

/* Weight bytes read for one generated token: everything but the embedding
 * table, which is read only a row at a time -- unless it is also the
 * classifier, which reads all of it. */
static uint64_t bytes_per_token(const llama2_config *c) {
    uint64_t total = file_bytes(c);
    return c->shared_classifier ? total : total - embedding_bytes(c);
}

/* ------------------------------------------------------------ options */

typedef struct options {
    int reps;
    int threads[MAX_THREAD_COUNTS];
    int n_threads;
    int pp[MAX_PP];
    int n_pp;
    int tg;
    int shape_on[MAX_SHAPES];
    int type_on[N_TYPES];
    const char *models_dir;
    const char *json_path;
    const char *backend;
    double max_time;
    int quick;
    int models_only;
    int no_bandwidth;
} options;

static void usage(FILE *f) {
    fprintf(f,
            "usage: " PROGRAM " [options]\n"
            "  --shapes LIST     stories15M,stories42M,stories110M,tinyllama1.1B (default: all)\n"
            "  --types LIST      f32,q8 (default: both)\n"
            "  --threads LIST    thread counts (default: 1,2)\n"
            "  --reps N          repetitions of each test, median reported (default: 3)\n"
            "  --pp LIST         prompt lengths (default: 128,512)\n"
            "  --tg N            generated tokens (default: 128)\n"
            "  --max-time S      seconds per test after which its repetitions stop early\n"
            "                    (at least one always runs; 0: no limit; default: " STR(DEFAULT_MAX_TIME) ")\n"
            "  --models DIR      cache folder of the generated models (default: ./bench-models)\n"
            "  --models-only     write the models of the selection, then stop\n"
            "  --json FILE       also write the rows as a JSON array\n"
            "  --backend NAME    the session backend (default: the library's, cpu)\n"
            "  --no-bandwidth    skip the memory bandwidth probe (no bound column)\n"
            "  --quick           1 rep of stories15M and stories110M (flags given override)\n"
            "  -h, --help        this text\n");
}

static int parse_int(const char *s, int lo, int hi, const char *what) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) die("bad %s '%s' (expected %d..%d)", what, s, lo, hi);
    return (int)v;
}

static int parse_int_list(const char *s, int *out, int max, int lo, int hi, const char *what) {
    char buf[256];
    if (strlen(s) >= sizeof buf) die("%s list too long", what);
    strcpy(buf, s);
    int n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (n == max) die("too many %s values (at most %d)", what, max);
        out[n++] = parse_int(tok, lo, hi, what);
    }
    if (n == 0) die("empty %s list", what);
    return n;
}

static void parse_name_list(const char *s, const char *const *names, int n_names, int *on, const char *what) {
    char buf[256];
    if (strlen(s) >= sizeof buf) die("%s list too long", what);
    strcpy(buf, s);
    for (int i = 0; i < n_names; i++) on[i] = 0;
    int any = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int found = -1;
        for (int i = 0; i < n_names; i++)
            if (strcmp(tok, names[i]) == 0) found = i;
        if (found < 0) die("unknown %s '%s'", what, tok);
        on[found] = 1;
        any = 1;
    }
    if (!any) die("empty %s list", what);
}

static void parse_options(int argc, char **argv, options *o) {
    memset(o, 0, sizeof *o);
    int have_reps = 0, have_shapes = 0;
    o->reps = 3;
    o->threads[0] = 1;
    o->threads[1] = 2;
    o->n_threads = 2;
    o->pp[0] = 128;
    o->pp[1] = 512;
    o->n_pp = 2;
    o->tg = 128;
    o->max_time = DEFAULT_MAX_TIME;
    for (int i = 0; i < MAX_SHAPES; i++) o->shape_on[i] = 1;
    for (int i = 0; i < N_TYPES; i++) o->type_on[i] = 1;
    o->models_dir = "./bench-models";
    const char *shape_names[MAX_SHAPES];
    for (int i = 0; i < MAX_SHAPES; i++) shape_names[i] = SHAPES[i].name;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED_ARG()                                   \
    do {                                             \
        if (!next) die("%s needs a value", a);       \
        i++;                                         \
    } while (0)
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "--quick")) {
            o->quick = 1;
        } else if (!strcmp(a, "--models-only")) {
            o->models_only = 1;
        } else if (!strcmp(a, "--no-bandwidth")) {
            o->no_bandwidth = 1;
        } else if (!strcmp(a, "--reps")) {
            NEED_ARG();
            o->reps = parse_int(next, 1, MAX_REPS, "repetition count");
            have_reps = 1;
        } else if (!strcmp(a, "--threads")) {
            NEED_ARG();
            o->n_threads = parse_int_list(next, o->threads, MAX_THREAD_COUNTS, 1, MAX_THREADS, "thread count");
        } else if (!strcmp(a, "--pp")) {
            NEED_ARG();
            o->n_pp = parse_int_list(next, o->pp, MAX_PP, 1, 1 << 20, "prompt length");
        } else if (!strcmp(a, "--tg")) {
            NEED_ARG();
            o->tg = parse_int(next, 1, 1 << 20, "generation length");
        } else if (!strcmp(a, "--shapes")) {
            NEED_ARG();
            parse_name_list(next, shape_names, MAX_SHAPES, o->shape_on, "shape");
            have_shapes = 1;
        } else if (!strcmp(a, "--types")) {
            NEED_ARG();
            parse_name_list(next, TYPE_NAMES, N_TYPES, o->type_on, "type");
        } else if (!strcmp(a, "--models")) {
            NEED_ARG();
            o->models_dir = next;
        } else if (!strcmp(a, "--json")) {
            NEED_ARG();
            o->json_path = next;
        } else if (!strcmp(a, "--max-time")) {
            NEED_ARG();
            o->max_time = parse_int(next, 0, 1000000, "time limit");
        } else if (!strcmp(a, "--backend")) {
            NEED_ARG();
            if (strlen(next) >= 32) die("backend name too long");
            o->backend = next;
        } else {
            die("unknown option '%s' (try --help)", a);
        }
#undef NEED_ARG
    }
    if (o->quick) {
        if (!have_reps) o->reps = 1;
        if (!have_shapes)
            for (int i = 0; i < MAX_SHAPES; i++)
                o->shape_on[i] = !strcmp(SHAPES[i].name, "stories15M") || !strcmp(SHAPES[i].name, "stories110M");
    }
    for (int i = 0; i < MAX_SHAPES; i++) {
        if (!o->shape_on[i]) continue;
        for (int p = 0; p < o->n_pp; p++)
            if (o->pp[p] > SHAPES[i].seq_len)
                die("prompt length %d exceeds %s's context of %d", o->pp[p], SHAPES[i].name, SHAPES[i].seq_len);
        if (o->tg + 1 > SHAPES[i].seq_len)
            die("1 + %d generated tokens exceed %s's context of %d", o->tg, SHAPES[i].name, SHAPES[i].seq_len);
    }
}

/* -------------------------------------------------------- child runs */

/* Runs fn(arg, result) in a child process and copies `size` bytes of
 * result back. Fails with a message when the child dies. */
static void run_in_child(void (*fn)(const void *, void *), const void *arg, void *result, size_t size,
                         const char *what) {
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

/* --------------------------------------------------- memory bandwidth */

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

typedef struct bw_pass {
    const unsigned char *buf;
    atomic_size_t next; /* the next chunk to read */
    pthread_barrier_t start, end;
} bw_pass;

typedef struct bw_worker {
    bw_pass *pass;
    uint64_t sink;
} bw_worker;

static void bw_read_chunks(bw_worker *w) {
    const size_t n_chunks = BW_BYTES / BW_CHUNK;
    for (;;) {
        size_t c = atomic_fetch_add_explicit(&w->pass->next, 1, memory_order_relaxed);
        if (c >= n_chunks) break;
        w->sink += read_bytes(w->pass->buf + c * BW_CHUNK, BW_CHUNK);
    }
}

static void *bw_thread(void *arg) {
    bw_worker *w = arg;
    for (int p = 0; p < BW_PASSES; p++) {
        pthread_barrier_wait(&w->pass->start);
        bw_read_chunks(w);
        pthread_barrier_wait(&w->pass->end);
    }
    return NULL;
}

typedef struct bw_request {
    int threads[MAX_THREAD_COUNTS];
    int n_threads;
} bw_request;

typedef struct bw_result {
    double gbs[MAX_THREAD_COUNTS]; /* 0: not measured */
    uint64_t sink;
} bw_result;

/* The best of BW_PASSES reads of a 1 GiB buffer by n threads (the calling
 * one included). Runs in a child. */
static void measure_bandwidth(const void *arg, void *out) {
    const bw_request *rq = arg;
    bw_result *r = out;
    memset(r, 0, sizeof *r);
    unsigned char *buf = mmap(NULL, BW_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buf == MAP_FAILED) return;
    /* Real pages, not the shared zero page. */
    for (size_t i = 0; i < BW_BYTES; i += 4096) memset(buf + i, (int)(i >> 12) & 0xff, 4096);
    static bw_pass pass;
    pass.buf = buf;
    for (int t = 0; t < rq->n_threads; t++) {
        int n = rq->threads[t];
        pthread_barrier_init(&pass.start, NULL, (unsigned)n);
        pthread_barrier_init(&pass.end, NULL, (unsigned)n);
        static bw_worker workers[MAX_THREADS];
        static pthread_t ids[MAX_THREADS];
        int started = 1;
        for (int k = 0; k < n; k++) workers[k] = (bw_worker){&pass, 0};
        for (int k = 1; k < n; k++) {
            if (pthread_create(&ids[k], NULL, bw_thread, &workers[k]) != 0) break;
            started++;
        }
        if (started != n) {
            /* Leave this count unmeasured; the started threads would block
             * on the barrier forever, so the child just exits after this. */
            break;
        }
        double best = 0;
        for (int p = 0; p < BW_PASSES; p++) {
            atomic_store(&pass.next, 0);
            pthread_barrier_wait(&pass.start);
            double t0 = llama2_time_seconds();
            bw_read_chunks(&workers[0]);
            pthread_barrier_wait(&pass.end);
            double dt = llama2_time_seconds() - t0;
            double gbs = dt > 0 ? (double)BW_BYTES / dt / 1e9 : 0;
            if (gbs > best) best = gbs;
        }
        for (int k = 1; k < n; k++) pthread_join(ids[k], NULL);
        for (int k = 0; k < n; k++) r->sink += workers[k].sink;
        pthread_barrier_destroy(&pass.start);
        pthread_barrier_destroy(&pass.end);
        r->gbs[t] = best;
    }
    munmap(buf, BW_BYTES);
}

/* ---------------------------------------------------------- one row */

typedef struct row_request {
    char path[4096];
    int threads;
    int reps;
    int pp[MAX_PP];
    int n_pp;
    int tg;
    char backend[32]; /* empty: the default */
    double max_time;  /* seconds one test may take before its reps are cut; 0: no limit */
} row_request;

enum { ROW_OK = 0, ROW_OPEN_FAILED = 1, ROW_FAILED = 2 };

typedef struct row_result {
    int status;
    char message[300];
    double pp[MAX_PP][MAX_REPS]; /* tokens per second of each repetition */
    double tg[MAX_REPS];
    int n_pp[MAX_PP]; /* repetitions run of each test (fewer than asked when cut by the time limit) */
    int n_tg;
    double peak_rss_mib;
    unsigned checksum;
} row_result;

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
static void run_row(const void *arg, void *out) {
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

/* ------------------------------------------------------- statistics */

typedef struct stat3 {
    double median, min, max;
} stat3;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static stat3 summarize(const double *v, int n) {
    double s[MAX_REPS];
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    stat3 r = {n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2, s[0], s[n - 1]};
    return r;
}

/* "1234.5 ±1.2%": the median and half the range, relative to it; "n=1"
 * instead of a range after a single repetition. */
static void format_stat(char *buf, size_t size, stat3 s, int reps) {
    if (reps < 2 || s.median <= 0)
        snprintf(buf, size, "%9.1f %-6s", s.median, reps == 1 ? "n=1" : "");
    else
        snprintf(buf, size, "%9.1f ±%4.1f%%", s.median, (s.max - s.min) / 2 / s.median * 100);
}

/* ------------------------------------------------------------ models */

static void model_path(char *buf, size_t size, const options *o, const shape *s, int type, const llama2_config *c) {
    int n;
    if (type == TYPE_Q8)
        n = snprintf(buf, size, "%s/%s-q8g%d.bin", o->models_dir, s->name, c->group_size);
    else
        n = snprintf(buf, size, "%s/%s-f32.bin", o->models_dir, s->name);
    if (n < 0 || (size_t)n >= size) die("model folder path too long");
}

static int file_has_size(const char *path, uint64_t size) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == size;
}

/* Writes the model unless a file of the right size is there. Returns 0 when
 * a q8 model cannot be written (its rows are skipped). */
static int ensure_model(const char *path, const llama2_config *c, uint64_t seed, int type) {
    uint64_t want = file_bytes(c);
    if (file_has_size(path, want)) return 1;
    fprintf(stderr, PROGRAM ": writing %s (%.0f MiB)...", path, (double)want / (1 << 20));
    fflush(stderr);
    double t0 = llama2_time_seconds();
    llama2_error err;
    memset(&err, 0, sizeof err);
    if (l2_write_random_model(path, c, seed, &err) != LLAMA2_OK) {
        fputc('\n', stderr);
        if (type == TYPE_Q8) {
            fprintf(stderr, PROGRAM ": skipping q8 rows: cannot write %s: %s\n", path, err.message);
            return 0;
        }
        die("cannot write %s: %s", path, err.message);
    }
    fprintf(stderr, " %.1f s\n", llama2_time_seconds() - t0);
    if (!file_has_size(path, want))
        die("%s: the writer produced a file of another size than the expected %llu bytes", path,
            (unsigned long long)want);
    /* Flush it now, so that writeback does not run during the timings. */
    FILE *f = fopen(path, "rb");
    if (f) {
        fsync(fileno(f));
        fclose(f);
    }
    return 1;
}

/* ------------------------------------------------------------ header */

static void cpu_info(char *model, size_t size, char *features, size_t fsize) {
    snprintf(model, size, "unknown");
    features[0] = 0;
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[8192];
    int have_model = 0, have_flags = 0;
    while (fgets(line, sizeof line, f) && !(have_model && have_flags)) {
        char *colon = strchr(line, ':');
        if (!colon) continue;
        char *value = colon + 1;
        while (*value == ' ' || *value == '\t') value++;
        value[strcspn(value, "\n")] = 0;
        if (!have_model && (!strncmp(line, "model name", 10) || !strncmp(line, "Model", 5))) {
            snprintf(model, size, "%s", value);
            have_model = 1;
        } else if (!have_flags && (!strncmp(line, "flags", 5) || !strncmp(line, "Features", 8))) {
            static const char *const wanted[] = {"avx2", "fma", "f16c", "avx512f", "avx512_vnni", "avx512bw",
                                                 "avx_vnni", "asimd", "asimddp", "sve", "i8mm"};
            size_t used = 0;
            for (size_t i = 0; i < sizeof wanted / sizeof wanted[0]; i++) {
                /* Whole words of the flag list. */
                size_t wl = strlen(wanted[i]);
                for (char *p = strstr(value, wanted[i]); p; p = strstr(p + 1, wanted[i])) {
                    if ((p == value || p[-1] == ' ') && (p[wl] == ' ' || p[wl] == 0)) {
                        int n = snprintf(features + used, fsize - used, "%s%s", used ? " " : "", wanted[i]);
                        if (n > 0 && (size_t)n < fsize - used) used += (size_t)n;
                        break;
                    }
                }
            }
            have_flags = 1;
        }
    }
    fclose(f);
}

static const char *compiler_name(void) {
#if defined(__clang__)
    return "clang " __VERSION__;
#elif defined(__GNUC__)
    return "gcc " __VERSION__;
#else
    return "unknown compiler";
#endif
}

static const char *build_isa(void) {
    return ""
#if defined(__AVX512F__)
           " avx512f"
#endif
#if defined(__AVX2__)
           " avx2"
#endif
#if defined(__FMA__)
           " fma"
#endif
#if defined(__ARM_NEON)
           " neon"
#endif
#if defined(__ARM_FEATURE_DOTPROD)
           " dotprod"
#endif
#if defined(__OPTIMIZE__)
           " optimized"
#endif
        ;
}

/* --------------------------------------------------------------- json */

static void json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static void json_stat(FILE *f, const char *name, const double *v, int n) {
    stat3 s = summarize(v, n);
    fprintf(f, ", \"%s\": {\"median\": %.3f, \"min\": %.3f, \"max\": %.3f, \"values\": [", name, s.median, s.min, s.max);
    for (int i = 0; i < n; i++) fprintf(f, "%s%.3f", i ? ", " : "", v[i]);
    fprintf(f, "]}");
}

/* --------------------------------------------------------------- main */

typedef struct row {
    int shape, type, threads;
    const char *backend;
    llama2_config config;
    uint64_t file_bytes, bytes_per_token;
    double bandwidth_gbs; /* 0: not measured */
    row_result result;
} row;

int main(int argc, char **argv) {
    options o;
    parse_options(argc, argv, &o);
    signal(SIGPIPE, SIG_IGN);

    /* The models first, so that writing them does not overlap a timing. */
    if (mkdir(o.models_dir, 0777) != 0 && errno != EEXIST)
        die("cannot create %s: %s", o.models_dir, strerror(errno));
    char paths[MAX_SHAPES][N_TYPES][4096];
    int usable[MAX_SHAPES][N_TYPES] = {{0}};
    for (int s = 0; s < MAX_SHAPES; s++) {
        if (!o.shape_on[s]) continue;
        for (int t = 0; t < N_TYPES; t++) {
            if (!o.type_on[t]) continue;
            llama2_config c = shape_config(&SHAPES[s], t);
            model_path(paths[s][t], sizeof paths[s][t], &o, &SHAPES[s], t, &c);
            usable[s][t] = ensure_model(paths[s][t], &c, 1000 + (uint64_t)s * 10 + (uint64_t)t, t);
        }
    }
    if (o.models_only) return 0;

    char cpu[256], features[256];
    cpu_info(cpu, sizeof cpu, features, sizeof features);
    long n_cpus = sysconf(_SC_NPROCESSORS_ONLN);
    printf("llama2-bench %s | cpu: %s, %ld logical CPUs [%s] | build: %s,%s\n", LLAMA2_VERSION, cpu, n_cpus,
           features, compiler_name(), build_isa());
    /* Every compiled backend side by side, unless --backend picks one. */
    const char *backends[8];
    int n_backends = 0;
    if (o.backend)
        backends[n_backends++] = o.backend;
    else
        for (int i = 0; llama2_backend_name(i) && n_backends < 8; i++) backends[n_backends++] = llama2_backend_name(i);
    printf("backends:");
    for (int b = 0; b < n_backends; b++) printf(" %s", backends[b]);
    printf(" (compiled:");
    for (int i = 0; llama2_backend_name(i); i++) printf(" %s", llama2_backend_name(i));
    printf(")\n");

    bw_result bw;
    memset(&bw, 0, sizeof bw);
    if (!o.no_bandwidth) {
        bw_request rq;
        memset(&rq, 0, sizeof rq);
        rq.n_threads = o.n_threads;
        memcpy(rq.threads, o.threads, sizeof rq.threads);
        run_in_child(measure_bandwidth, &rq, &bw, sizeof bw, "bandwidth probe");
        printf("memory read bandwidth (1 GiB read as 4 streams a thread, best of %d):", BW_PASSES);
        for (int t = 0; t < o.n_threads; t++)
            printf("%s %d thread%s %.1f GB/s", t ? "," : "", o.threads[t], o.threads[t] == 1 ? "" : "s", bw.gbs[t]);
        printf("\n");
        /* T threads can read at least as fast as fewer would: each row's
         * bound uses the best rate measured with at most its thread count. */
        double best[MAX_THREAD_COUNTS];
        for (int t = 0; t < o.n_threads; t++) {
            best[t] = 0;
            for (int u = 0; u < o.n_threads; u++)
                if (o.threads[u] <= o.threads[t] && bw.gbs[u] > best[t]) best[t] = bw.gbs[u];
        }
        memcpy(bw.gbs, best, sizeof best);
    }
    printf("reps: %d", o.reps);
    if (o.max_time > 0) printf(" (fewer once a test has run %.0f s)", o.max_time);
    printf("; cells: median tokens/s ±half the min..max range, n=1 for a single rep\n");
    printf("pp: a prompt from position 0 in blocks of %d; tg: one position a step after a 1-token prompt\n\n",
           LLAMA2_DEFAULT_BATCH);

    /* The table header. */
    char label[32];
    printf("%-14s %-6s %-5s %3s %8s", "shape", "type", "back", "thr", "MiB");
    for (int p = 0; p < o.n_pp; p++) {
        snprintf(label, sizeof label, "pp%d t/s", o.pp[p]);
        printf(" %16s", label);
    }
    snprintf(label, sizeof label, "tg%d t/s", o.tg);
    printf(" %16s %9s %5s %8s\n", label, "bound t/s", "%bnd", "peak MiB");

    size_t max_rows = (size_t)MAX_SHAPES * N_TYPES * (size_t)n_backends * (size_t)o.n_threads, n_rows = 0;
    row *rows = calloc(max_rows, sizeof *rows);
    row_request *rq = calloc(1, sizeof *rq);
    if (!rows || !rq) die("out of memory");

    for (int s = 0; s < MAX_SHAPES; s++) {
        if (!o.shape_on[s]) continue;
        for (int t = 0; t < N_TYPES; t++) {
            if (!o.type_on[t] || !usable[s][t]) continue;
            for (int bi = 0; bi < n_backends; bi++)
            for (int k = 0; k < o.n_threads; k++) {
                row *w = &rows[n_rows];
                w->backend = backends[bi];
                w->shape = s;
                w->type = t;
                w->threads = o.threads[k];
                w->config = shape_config(&SHAPES[s], t);
                w->file_bytes = file_bytes(&w->config);
                w->bytes_per_token = bytes_per_token(&w->config);
                w->bandwidth_gbs = bw.gbs[k];

                memset(rq, 0, sizeof *rq);
                snprintf(rq->path, sizeof rq->path, "%s", paths[s][t]);
                rq->threads = o.threads[k];
                rq->reps = o.reps;
                memcpy(rq->pp, o.pp, sizeof rq->pp);
                rq->n_pp = o.n_pp;
                rq->tg = o.tg;
                rq->max_time = o.max_time;
                snprintf(rq->backend, sizeof rq->backend, "%s", backends[bi]);
                char what[128];
                snprintf(what, sizeof what, "%s %s %d threads", SHAPES[s].name, TYPE_NAMES[t], o.threads[k]);
                run_in_child(run_row, rq, &w->result, sizeof w->result, what);
                if (w->result.status == ROW_OPEN_FAILED && t == TYPE_Q8) {
                    fprintf(stderr, PROGRAM ": skipping q8 rows of %s: %s\n", SHAPES[s].name, w->result.message);
                    break;
                }
                if (w->result.status != ROW_OK) die("%s: %s", what, w->result.message);
                n_rows++;

                char type_label[16], cell[64];
                if (t == TYPE_Q8)
                    snprintf(type_label, sizeof type_label, "q8/%d", w->config.group_size);
                else
                    snprintf(type_label, sizeof type_label, "f32");
                printf("%-14s %-6s %-5s %3d %8.1f", SHAPES[s].name, type_label, w->backend, w->threads,
                       (double)w->file_bytes / (1 << 20));
                for (int p = 0; p < o.n_pp; p++) {
                    format_stat(cell, sizeof cell, summarize(w->result.pp[p], w->result.n_pp[p]),
                                w->result.n_pp[p]);
                    printf(" %16s", cell);
                }
                stat3 tg = summarize(w->result.tg, w->result.n_tg);
                format_stat(cell, sizeof cell, tg, w->result.n_tg);
                printf(" %16s", cell);
                if (w->bandwidth_gbs > 0) {
                    double bound = w->bandwidth_gbs * 1e9 / (double)w->bytes_per_token;
                    printf(" %9.1f %4.0f%%", bound, tg.median / bound * 100);
                } else {
                    printf(" %9s %5s", "-", "-");
                }
                printf(" %8.1f\n", w->result.peak_rss_mib);
                fflush(stdout);
            }
        }
    }

    if (o.json_path) {
        FILE *f = fopen(o.json_path, "w");
        if (!f) die("cannot write %s: %s", o.json_path, strerror(errno));
        fprintf(f, "[\n");
        for (size_t i = 0; i < n_rows; i++) {
            const row *w = &rows[i];
            fprintf(f, "  {\"shape\": ");
            json_string(f, SHAPES[w->shape].name);
            fprintf(f, ", \"backend\": ");
            json_string(f, w->backend);
            fprintf(f, ", \"type\": \"%s\", \"group_size\": %d, \"threads\": %d, \"reps_requested\": %d", TYPE_NAMES[w->type],
                    w->config.group_size, w->threads, o.reps);
            fprintf(f, ", \"dim\": %d, \"hidden_dim\": %d, \"n_layers\": %d, \"n_heads\": %d, \"n_kv_heads\": %d",
                    w->config.dim, w->config.hidden_dim, w->config.n_layers, w->config.n_heads, w->config.n_kv_heads);
            fprintf(f, ", \"vocab_size\": %d, \"seq_len\": %d, \"shared_classifier\": %d", w->config.vocab_size,
                    w->config.seq_len, w->config.shared_classifier);
            fprintf(f, ", \"file_bytes\": %llu, \"bytes_per_token\": %llu", (unsigned long long)w->file_bytes,
                    (unsigned long long)w->bytes_per_token);
            for (int p = 0; p < o.n_pp; p++) {
                snprintf(label, sizeof label, "pp%d", o.pp[p]);
                json_stat(f, label, w->result.pp[p], w->result.n_pp[p]);
            }
            snprintf(label, sizeof label, "tg%d", o.tg);
            json_stat(f, label, w->result.tg, w->result.n_tg);
            if (w->bandwidth_gbs > 0) {
                double bound = w->bandwidth_gbs * 1e9 / (double)w->bytes_per_token;
                fprintf(f, ", \"bandwidth_gbs\": %.3f, \"tg_bound\": %.3f, \"tg_fraction_of_bound\": %.4f",
                        w->bandwidth_gbs, bound, summarize(w->result.tg, w->result.n_tg).median / bound);
            } else {
                fprintf(f, ", \"bandwidth_gbs\": null, \"tg_bound\": null, \"tg_fraction_of_bound\": null");
            }
            fprintf(f, ", \"peak_rss_mib\": %.1f, \"cpu\": ", w->result.peak_rss_mib);
            json_string(f, cpu);
            fprintf(f, ", \"compiler\": ");
            json_string(f, compiler_name());
            fprintf(f, ", \"version\": \"%s\"}%s\n", LLAMA2_VERSION, i + 1 < n_rows ? "," : "");
        }
        fprintf(f, "]\n");
        if (fclose(f) != 0) die("cannot write %s: %s", o.json_path, strerror(errno));
    }
    free(rows);
    free(rq);
    return 0;
}
