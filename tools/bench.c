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
 * reused. Each row runs in a child process (this program started again), so
 * that its peak resident memory is its own.
 *
 * This file: the options and main, which runs the steps in order. The steps
 * are in bench_models.c, bench_bandwidth.c, bench_run.c and bench_report.c.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "bench_bandwidth.h"
#include "bench_models.h"
#include "bench_report.h"
#include "bench_run.h"
#include "llama2.h"
#include "platform/platform.h"
#include "kernels/ops.h"

#define DEFAULT_MAX_TIME 60 /* seconds */
#define STR2(x) #x
#define STR(x) STR2(x)

void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, PROGRAM ": ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* ------------------------------------------------------------ options */

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
            "  --tokenizer FILE  tg samples each token (temperature 1, top-p 0.9) and feeds it back,\n"
            "                    with this tokenizer (the models' 32000 tokens)\n"
            "  --grammar FILE    tg samples under this GBNF grammar (needs --tokenizer); a text\n"
            "                    that ends starts again\n"
            "  --kernels LIST    CPU kernel levels, one row each, for A/B (default: the fastest\n"
            "                    this CPU runs; see llama2 --version)\n"
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

/* --kernels: levels this build has and this CPU runs, in the order given. */
static void parse_levels(const char *s, options *o) {
    static char buf[256];
    if (strlen(s) >= sizeof buf) die("kernel level list too long");
    strcpy(buf, s);
    o->n_kernels = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (o->n_kernels == MAX_LEVELS) die("too many kernel levels (at most %d)", MAX_LEVELS);
        if (!l2_kernels_level_any(tok, LLAMA2_WEIGHTS_F32)) die("unknown kernel level '%s'", tok);
        if (!l2_kernels_level(tok, LLAMA2_WEIGHTS_F32)) die("this CPU cannot run the %s kernels", tok);
        o->kernels[o->n_kernels++] = tok;
    }
    if (o->n_kernels == 0) die("empty kernel level list");
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
        } else if (!strcmp(a, "--kernels")) {
            NEED_ARG();
            parse_levels(next, o);
        } else if (!strcmp(a, "--tokenizer")) {
            NEED_ARG();
            if (strlen(next) >= 4096) die("--tokenizer: path too long");
            o->tokenizer = next;
        } else if (!strcmp(a, "--grammar")) {
            NEED_ARG();
            if (strlen(next) >= 4096) die("--grammar: path too long");
            o->grammar = next;
        } else if (!strcmp(a, "--backend")) {
            NEED_ARG();
            if (strlen(next) >= 32) die("backend name too long");
            o->backend = next;
        } else {
            die("unknown option '%s' (try --help)", a);
        }
#undef NEED_ARG
    }
    if (o->grammar && !o->tokenizer) die("--grammar needs --tokenizer");
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

/* --------------------------------------------------------------- main */

int main(int argc, char **argv) {
    l2_program_start(&argc, &argv);
    if (argc > 1 && strcmp(argv[1], "--child") == 0) return child_main(argc, argv);
    const char *program = l2_program_path(argv[0]);
    options o;
    parse_options(argc, argv, &o);

    /* The models first, so that writing them does not overlap a timing. */
    model_set models;
    prepare_models(&o, &models);
    if (o.models_only) return 0;

    host_info host;
    read_host_info(&host);
    /* Every compiled backend side by side, unless --backend picks one. */
    const char *backends[8];
    int n_backends = 0;
    if (o.backend)
        backends[n_backends++] = o.backend;
    else
        for (int i = 0; llama2_backend_name(i) && n_backends < 8; i++) backends[n_backends++] = llama2_backend_name(i);
    report_header(&o, &host, backends, n_backends);

    bw_result bw;
    memset(&bw, 0, sizeof bw);
    if (!o.no_bandwidth) {
        bw_request rq;
        memset(&rq, 0, sizeof rq);
        rq.n_threads = o.n_threads;
        memcpy(rq.threads, o.threads, sizeof rq.threads);
        run_in_child(program, JOB_BANDWIDTH, &rq, &bw, "bandwidth probe");
        report_bandwidth(&o, bw.gbs);
        bw_best_up_to(o.threads, o.n_threads, bw.gbs);
    }
    report_table_header(&o);

    /* The library's choice, unless --kernels lists levels to compare. */
    const char *no_level[1] = {""};
    const char *const *levels = o.n_kernels ? o.kernels : no_level;
    const int n_levels = o.n_kernels ? o.n_kernels : 1;
    size_t max_rows = (size_t)MAX_SHAPES * N_TYPES * (size_t)n_backends * (size_t)n_levels * (size_t)o.n_threads;
    size_t n_rows = 0;
    row *rows = calloc(max_rows, sizeof *rows);
    row_request *rq = calloc(1, sizeof *rq);
    if (!rows || !rq) die("out of memory");

    for (int s = 0; s < MAX_SHAPES; s++) {
        if (!o.shape_on[s]) continue;
        for (int t = 0; t < N_TYPES; t++) {
            if (!o.type_on[t] || !models.usable[s][t]) continue;
            for (int bi = 0; bi < n_backends; bi++)
            for (int li = 0; li < n_levels; li++)
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
                snprintf(rq->path, sizeof rq->path, "%s", models.paths[s][t]);
                rq->threads = o.threads[k];
                rq->reps = o.reps;
                memcpy(rq->pp, o.pp, sizeof rq->pp);
                rq->n_pp = o.n_pp;
                rq->tg = o.tg;
                rq->max_time = o.max_time;
                snprintf(rq->backend, sizeof rq->backend, "%s", backends[bi]);
                snprintf(rq->kernels, sizeof rq->kernels, "%s", levels[li]);
                if (o.tokenizer) snprintf(rq->tokenizer, sizeof rq->tokenizer, "%s", o.tokenizer);
                if (o.grammar) snprintf(rq->grammar, sizeof rq->grammar, "%s", o.grammar);
                char what[128];
                snprintf(what, sizeof what, "%s %s %d threads", SHAPES[s].name, TYPE_NAMES[t], o.threads[k]);
                run_in_child(program, JOB_ROW, rq, &w->result, what);
                if (w->result.status == ROW_OPEN_FAILED && t == TYPE_Q8) {
                    fprintf(stderr, PROGRAM ": skipping q8 rows of %s: %s\n", SHAPES[s].name, w->result.message);
                    break;
                }
                if (w->result.status != ROW_OK) die("%s: %s", what, w->result.message);
                n_rows++;
                report_row(&o, w);
            }
        }
    }

    if (o.json_path) write_json(&o, &host, rows, n_rows);
    free(rows);
    free(rq);
    return 0;
}
