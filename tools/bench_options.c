/*
 * llama2-bench: its command line, into the context's options, and the one
 * way it fails (bench_options.h).
 */
#include "bench_options.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_models.h"
#include "kernels/ops.h"
#include "llama2.h"
#include "messages.h"
#include "numbers.h"

#define DEFAULT_MAX_TIME 60 /* seconds */
#define STR2(x) #x
#define STR(x) STR2(x)

void bench_fail(const bench_context *ctx, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    cli_vprint_error(ctx->program, fmt, ap);
    va_end(ap);
    exit(1);
}

static void usage(FILE *f, const char *program) {
    fprintf(f,
            "usage: %s [options]\n"
            "  --shapes LIST     stories15M,stories42M,stories110M,tinyllama1.1B,llama3.2-1B\n"
            "                    (default: all but llama3.2-1B)\n"
            "  --types LIST      f32,q8,q4_0,q4_k_m (default: f32,q8)\n"
            "  --threads LIST    thread counts (default: 1,2)\n"
            "  --reps N          repetitions of each test, median reported (default: 3)\n"
            "  --pp LIST         prompt lengths (default: 128,512)\n"
            "  --tg N            generated tokens (default: 128)\n"
            "  --max-time S      seconds per test after which its repetitions stop early\n"
            "                    (at least one always runs; 0: no limit; default: " STR(DEFAULT_MAX_TIME) ")\n"
            "  --models DIR      cache folder of the generated models (default:\n"
            "                    $XDG_CACHE_HOME/llama2, else ~/.cache/llama2)\n"
            "  --models-only     write the models of the selection, then stop\n"
            "  --json FILE       also write the rows as a JSON array\n"
            "  --backend NAME    the session backend (default: the library's, cpu)\n"
            "  --tokenizer FILE  tg samples each token (temperature 1, top-p 0.9) and feeds it back,\n"
            "                    with this tokenizer (the models' 32000 tokens; llama3.2-1B's 128256)\n"
            "  --grammar FILE    tg samples under this GBNF grammar (needs --tokenizer); a text\n"
            "                    that ends starts again\n"
            "  --kernels LIST    CPU kernel levels, one row each, for A/B (default: the fastest\n"
            "                    this CPU runs; see llama2 --version)\n"
            "  --parallel LIST   batched decoding instead: N sequences (each a --pp prompt, then --tg\n"
            "                    tokens) advanced together, one row each, as llama-batched-bench prints\n"
            "                    it (--pp and --tg default to 32 and 64 here; at most " STR(MOST_SEQUENCES) ")\n"
            "  --no-bandwidth    skip the memory bandwidth probe (no bound column)\n"
            "  --quick           1 rep of stories15M and stories110M (flags given override)\n"
            "  -h, --help        this text\n",
            program);
}

/* A number in numbers.h's words: "--reps: 0 is out of range: must be an
 * integer from 1 to 100". */
static int parse_int(const bench_context *ctx, const char *flag, const char *s, int lo, int hi, const char *what) {
    char msg[512];
    int v = 0;
    if (cli_int_value(flag, s, lo, hi, what, &v, msg, sizeof msg) != 0) bench_fail(ctx, "%s", msg);
    return v;
}

/* A comma-separated list into buf (of size 256), cut into its items. */
static int split_list(const bench_context *ctx, const char *flag, const char *s, char *buf, char **items, int max) {
    if (strlen(s) >= 256) bench_fail(ctx, "%s: the list is too long", flag);
    strcpy(buf, s);
    int n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (n == max) bench_fail(ctx, "%s: too many values (at most %d)", flag, max);
        items[n++] = tok;
    }
    if (n == 0) bench_fail(ctx, "%s: an empty list", flag);
    return n;
}

static int parse_int_list(const bench_context *ctx, const char *flag, const char *s, int *out, int max, int lo,
                          int hi, const char *what) {
    char buf[256], *items[64];
    int n = split_list(ctx, flag, s, buf, items, max);
    for (int i = 0; i < n; i++) out[i] = parse_int(ctx, flag, items[i], lo, hi, what);
    return n;
}

static void parse_name_list(const bench_context *ctx, const char *flag, const char *s, const char *const *names,
                            int n_names, int *on) {
    char buf[256], *items[64];
    int n = split_list(ctx, flag, s, buf, items, 64);
    for (int i = 0; i < n_names; i++) on[i] = 0;
    for (int k = 0; k < n; k++) {
        int found = -1;
        for (int i = 0; i < n_names; i++)
            if (strcmp(items[k], names[i]) == 0) found = i;
        if (found < 0) bench_fail(ctx, "%s: unknown name '%s'", flag, items[k]);
        on[found] = 1;
    }
}

/* --kernels: levels this build has and this CPU runs, in the order given. */
static void parse_levels(bench_context *ctx, const char *s) {
    bench_options *o = &ctx->options;
    char *items[MAX_LEVELS];
    o->n_kernels = split_list(ctx, "--kernels", s, o->kernel_list, items, MAX_LEVELS);
    for (int k = 0; k < o->n_kernels; k++) {
        if (!l2_kernels_level_any(items[k], LLAMA2_WEIGHTS_F32))
            bench_fail(ctx, "--kernels: unknown kernel level '%s'", items[k]);
        if (!l2_kernels_level(items[k], LLAMA2_WEIGHTS_F32))
            bench_fail(ctx, "--kernels: this CPU cannot run the %s kernels", items[k]);
        o->kernels[k] = items[k];
    }
}

static void set_defaults(bench_options *o) {
    memset(o, 0, sizeof *o);
    o->reps = 3;
    o->threads[0] = 1;
    o->threads[1] = 2;
    o->n_threads = 2;
    o->pp[0] = 128;
    o->pp[1] = 512;
    o->n_pp = 2;
    o->tg = 128;
    o->max_time = DEFAULT_MAX_TIME;
    for (int i = 0; i < MAX_SHAPES; i++) o->shape_on[i] = SHAPES[i].by_default;
    o->type_on[TYPE_F32] = o->type_on[TYPE_Q8] = 1; /* q4_0, q4_k_m when asked: their files are written through GGUF */
    o->models_dir = NULL; /* the cache folder (default_models_dir) */
}

/* Every shape's context holds the prompts and the generated tokens. */
static void check_lengths(const bench_context *ctx) {
    const bench_options *o = &ctx->options;
    for (int i = 0; i < MAX_SHAPES; i++) {
        if (!o->shape_on[i]) continue;
        for (int p = 0; p < o->n_pp; p++)
            if (o->pp[p] > SHAPES[i].seq_len)
                bench_fail(ctx, "prompt length %d exceeds %s's context of %d", o->pp[p], SHAPES[i].name,
                           SHAPES[i].seq_len);
        for (int p = 0; p < o->n_pp && o->n_parallel; p++)
            if (o->pp[p] + o->tg > SHAPES[i].seq_len)
                bench_fail(ctx, "a %d-token prompt and %d generated tokens exceed %s's context of %d", o->pp[p],
                           o->tg, SHAPES[i].name, SHAPES[i].seq_len);
        if (o->tg + 1 > SHAPES[i].seq_len)
            bench_fail(ctx, "1 + %d generated tokens exceed %s's context of %d", o->tg, SHAPES[i].name,
                       SHAPES[i].seq_len);
    }
}

void bench_parse_options(bench_context *ctx, int argc, char **argv) {
    bench_options *o = &ctx->options;
    set_defaults(o);
    int have_reps = 0, have_shapes = 0, have_pp = 0, have_tg = 0;
    const char *shape_names[MAX_SHAPES];
    for (int i = 0; i < MAX_SHAPES; i++) shape_names[i] = SHAPES[i].name;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout, ctx->program);
            exit(0);
        } else if (!strcmp(a, "--quick")) {
            o->quick = 1;
            continue;
        } else if (!strcmp(a, "--models-only")) {
            o->models_only = 1;
            continue;
        } else if (!strcmp(a, "--no-bandwidth")) {
            o->no_bandwidth = 1;
            continue;
        }
        static const char *const valued[] = {"--reps",   "--threads", "--pp",   "--tg",      "--shapes", "--types",
                                             "--models", "--json",    "--max-time", "--kernels", "--backend", "--tokenizer", "--grammar", "--parallel"};
        int known = 0;
        for (size_t k = 0; k < sizeof valued / sizeof valued[0]; k++) known |= !strcmp(a, valued[k]);
        if (!known) bench_fail(ctx, "unknown option '%s' (try --help)", a);
        if (i + 1 == argc) bench_fail(ctx, "%s needs a value", a);
        const char *v = argv[++i];
        if (!strcmp(a, "--reps")) {
            o->reps = parse_int(ctx, a, v, 1, MAX_REPS, "the repetition count must be an integer");
            have_reps = 1;
        } else if (!strcmp(a, "--threads")) {
            o->n_threads = parse_int_list(ctx, a, v, o->threads, MAX_THREAD_COUNTS, 1, MAX_THREADS,
                                          "a thread count must be an integer");
        } else if (!strcmp(a, "--pp")) {
            o->n_pp = parse_int_list(ctx, a, v, o->pp, MAX_PP, 1, 1 << 20, "a prompt length must be an integer");
            have_pp = 1;
        } else if (!strcmp(a, "--tg")) {
            o->tg = parse_int(ctx, a, v, 1, 1 << 20, "the generation length must be an integer");
            have_tg = 1;
        } else if (!strcmp(a, "--parallel")) {
            o->n_parallel = parse_int_list(ctx, a, v, o->parallel, MAX_PARALLEL, 1, MOST_SEQUENCES,
                                           "a sequence count must be an integer");
        } else if (!strcmp(a, "--shapes")) {
            parse_name_list(ctx, a, v, shape_names, MAX_SHAPES, o->shape_on);
            have_shapes = 1;
        } else if (!strcmp(a, "--types")) {
            parse_name_list(ctx, a, v, TYPE_NAMES, N_TYPES, o->type_on);
        } else if (!strcmp(a, "--models")) {
            o->models_dir = v;
        } else if (!strcmp(a, "--json")) {
            o->json_path = v;
        } else if (!strcmp(a, "--max-time")) {
            o->max_time = parse_int(ctx, a, v, 0, 1000000, "the time limit must be an integer");
        } else if (!strcmp(a, "--kernels")) {
            parse_levels(ctx, v);
        } else if (!strcmp(a, "--tokenizer") || !strcmp(a, "--grammar")) {
            if (strlen(v) >= 4096) bench_fail(ctx, "%s: the path is too long", a);
            *(!strcmp(a, "--tokenizer") ? &o->tokenizer : &o->grammar) = v;
        } else {
            if (strlen(v) >= 32) bench_fail(ctx, "--backend: the name is too long");
            o->backend = v;
        }
    }
    if (o->grammar && !o->tokenizer) bench_fail(ctx, "--grammar needs --tokenizer");
    if (o->n_parallel && o->tokenizer) bench_fail(ctx, "--parallel feeds fixed tokens: it takes no --tokenizer");
    if (o->n_parallel) {
        /* llama-batched-bench's shape in the issue: 32-token prompts, 64 tokens each */
        if (!have_pp) {
            o->pp[0] = 32;
            o->n_pp = 1;
        }
        if (!have_tg) o->tg = 64;
    }
    if (o->quick) {
        if (!have_reps) o->reps = 1;
        if (!have_shapes)
            for (int i = 0; i < MAX_SHAPES; i++)
                o->shape_on[i] = !strcmp(SHAPES[i].name, "stories15M") || !strcmp(SHAPES[i].name, "stories110M");
    }
    check_lengths(ctx);
}
