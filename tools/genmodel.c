/*
 * llama2-genmodel: writes a llama2.c checkpoint of any shape with random
 * weights, for tests and benchmarks.
 *
 *   llama2-genmodel <out.bin> --dim D --hidden H --layers L --heads N
 *       [--kv-heads K] --vocab V --seq-len S [--format 0|1|2]
 *       [--group-size G] [--unshared] [--seed X] [--force]
 *   llama2-genmodel <out.bin> --preset NAME [any flag above to override]
 *
 * The output replaces an existing file only with --force, and appears only
 * once complete (output_file.h).
 * Exit status: 0 done, 1 the file could not be written, 2 usage.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "write/checkpoint_writer.h"
#include "llama2.h"
#include "platform/platform.h"
#include "messages.h"
#include "numbers.h"
#include "tool_args.h"

static const char usage_text[] =
    "Usage: llama2-genmodel <out.bin> --dim D --hidden H --layers L --heads N [--kv-heads K]\n"
    "                       --vocab V --seq-len S [--format 0|1|2] [--group-size G]\n"
    "                       [--unshared] [--seed X] [--force]\n"
    "       llama2-genmodel <out.bin> --preset NAME [flags to override]\n"
    "\n"
    "Writes a llama2.c checkpoint with random weights (scaled so activations stay\n"
    "sane through every layer).\n"
    "\n"
    "  --dim D           width of the residual stream\n"
    "  --hidden H        width of the feed-forward layer\n"
    "  --layers L        number of layers\n"
    "  --heads N         query heads\n"
    "  --kv-heads K      key/value heads (default: N)\n"
    "  --vocab V         vocabulary size\n"
    "  --seq-len S       context window\n"
    "  --format F        0: legacy fp32 (default), 1: version 1 fp32, 2: version 2 int8\n"
    "  --group-size G    values per scale for --format 2 (default: the largest\n"
    "                    size up to 64 dividing dim and hidden)\n"
    "  --unshared        a separate classifier (default: shared with the embedding)\n"
    "  --seed X          random seed (default 1)\n"
    "  --force           replace <out.bin> if it exists\n"
    "  --preset NAME     stories15M, stories42M, stories110M or tinyllama1.1B\n"
    "  -h, --help        this text\n";

typedef struct preset {
    const char *name;
    int dim, hidden, layers, heads, kv_heads, vocab, seq_len, shared;
} preset;

static const preset presets[] = {
    {"stories15M", 288, 768, 6, 6, 6, 32000, 1024, 1},
    {"stories42M", 512, 1376, 8, 8, 8, 32000, 1024, 1},
    {"stories110M", 768, 2048, 12, 12, 12, 32000, 1024, 1},
    {"tinyllama1.1B", 2048, 5632, 22, 32, 4, 32000, 2048, 0},
};
#define N_PRESETS (int)(sizeof presets / sizeof presets[0])

static int usage_error(const char *fmt, const char *arg) { return cli_usage_error("llama2-genmodel", fmt, arg); }

/* The command line. */
typedef struct genmodel_args {
    const char *path;
    /* --dim, --hidden, --layers, --heads, --kv-heads, --vocab, --seq-len
     * (-1: not given), --format and --group-size (-1: not given). */
    int ints[9];
    int unshared;
    unsigned output_flags;
    uint64_t seed;
    const preset *chosen;
} genmodel_args;

enum { DIM, HIDDEN, LAYERS, HEADS, KV_HEADS, VOCAB, SEQ_LEN, N_SHAPE, FORMAT = N_SHAPE, GROUP_SIZE, N_INTS };

#define SIZE "must be a positive integer"
static const struct {
    const char *flag;
    int min, max;
    const char *what;
} int_flags[N_INTS] = {
    {"--dim", 1, INT_MAX, SIZE},      {"--hidden", 1, INT_MAX, SIZE}, {"--layers", 1, INT_MAX, SIZE},
    {"--heads", 1, INT_MAX, SIZE},    {"--kv-heads", 1, INT_MAX, SIZE}, {"--vocab", 1, INT_MAX, SIZE},
    {"--seq-len", 1, INT_MAX, SIZE},  {"--format", 0, 2, "the format must be 0, 1 or 2"},
    {"--group-size", 1, INT_MAX, SIZE},
};
#undef SIZE

/* The value of flag k of int_flags (N_INTS: --seed, N_INTS + 1: --preset).
 * Returns 0, or the usage error's status (said). */
static int take_value(genmodel_args *g, int k, const char *value) {
    if (k < N_INTS)
        return tool_int_value("llama2-genmodel", int_flags[k].flag, value, int_flags[k].min, int_flags[k].max,
                              int_flags[k].what, &g->ints[k]);
    if (k == N_INTS) {
        char msg[512];
        if (cli_u64_value("--seed", value, "the seed must be a non-negative integer", &g->seed, msg, sizeof msg))
            return usage_error("%s", msg);
        return 0;
    }
    g->chosen = NULL;
    for (int p = 0; p < N_PRESETS; p++)
        if (strcmp(value, presets[p].name) == 0) g->chosen = &presets[p];
    if (!g->chosen)
        return usage_error("--preset: unknown preset '%s' (stories15M, stories42M, stories110M, tinyllama1.1B)",
                           value);
    return 0;
}

/* Parses argv into *g. Returns -1 to go on, or the exit status (--help: 0,
 * a usage error: 2, said). */
static int parse_args(int argc, char **argv, genmodel_args *g) {
    *g = (genmodel_args){.seed = 1};
    for (int k = 0; k < N_INTS; k++) g->ints[k] = k == FORMAT ? 0 : -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(usage_text, stdout);
            return 0;
        }
        if (strcmp(a, "--unshared") == 0) {
            g->unshared = 1;
            continue;
        }
        if (strcmp(a, "--force") == 0) {
            g->output_flags |= L2_OUTPUT_FORCE;
            continue;
        }
        if (a[0] != '-' || a[1] == '\0') {
            if (g->path) return usage_error("unexpected argument '%s'", a);
            g->path = a;
            continue;
        }
        /* Every other flag takes a value, as the next argument or after '='. */
        const char *eq = strchr(a, '=');
        size_t name_len = eq ? (size_t)(eq - a) : strlen(a);
        const char *value = eq ? eq + 1 : NULL;
        int k = 0;
        for (; k < N_INTS + 2; k++) {
            const char *flag = k < N_INTS ? int_flags[k].flag : k == N_INTS ? "--seed" : "--preset";
            if (strlen(flag) == name_len && strncmp(a, flag, name_len) == 0) break;
        }
        if (k == N_INTS + 2) return usage_error("unknown option '%s'", a);
        if (!value && i + 1 < argc) value = argv[++i];
        const char *flag = k < N_INTS ? int_flags[k].flag : k == N_INTS ? "--seed" : "--preset";
        if (!value) return usage_error("%s needs a value", flag);
        if (take_value(g, k, value) != 0) return 2;
    }
    return -1;
}

int main(int argc, char **argv) {
    l2_program_start(&argc, &argv);
    genmodel_args g;
    int parsed = parse_args(argc, argv, &g);
    if (parsed >= 0) return parsed;
    if (!g.path) return usage_error("%s", "missing the output file");

    int *v = g.ints, shared = 1;
    if (g.chosen) {
        /* The preset fills whatever the flags leave out. */
        const int from_preset[N_SHAPE] = {g.chosen->dim,      g.chosen->hidden, g.chosen->layers, g.chosen->heads,
                                          g.chosen->kv_heads, g.chosen->vocab,  g.chosen->seq_len};
        for (int k = 0; k < N_SHAPE; k++)
            if (v[k] < 0) v[k] = from_preset[k];
        shared = g.chosen->shared;
    }
    if (g.unshared) shared = 0;
    for (int k = 0; k < N_SHAPE; k++)
        if (v[k] < 0 && k != KV_HEADS) return usage_error("missing %s (or a --preset)", int_flags[k].flag);
    if (v[KV_HEADS] < 0) v[KV_HEADS] = v[HEADS];
    if (v[GROUP_SIZE] > 0 && v[FORMAT] != 2) return usage_error("%s applies to --format 2 only", "--group-size");

    llama2_config c = l2_random_model_config(v[DIM], v[HIDDEN], v[LAYERS], v[HEADS], v[KV_HEADS], v[VOCAB],
                                             v[SEQ_LEN], shared, v[FORMAT], v[GROUP_SIZE] > 0 ? v[GROUP_SIZE] : 0);
    double t0 = llama2_time_seconds();
    llama2_error err = {0};
    llama2_status s = l2_write_random_model(g.path, &c, g.seed, g.output_flags, &err);
    if (s == LLAMA2_E_INVALID) return usage_error("%s", err.message);
    if (s != LLAMA2_OK) {
        cli_print_error("llama2-genmodel", g.path, err.message);
        return 1;
    }
    double seconds = llama2_time_seconds() - t0;
    char kind[48] = "";
    if (v[FORMAT] == 2) snprintf(kind, sizeof kind, " (int8, group size %d)", c.group_size);
    fprintf(stderr,
            "llama2-genmodel: %s: format %d%s, dim %d, hidden %d, %d layers, %d/%d heads, vocab %d, seq_len %d, "
            "%s classifier, %lld bytes in %.2f s\n",
            g.path, v[FORMAT], kind, v[DIM], v[HIDDEN], v[LAYERS], v[HEADS], v[KV_HEADS], v[VOCAB], v[SEQ_LEN],
            shared ? "shared" : "separate", tool_file_size(g.path), seconds);
    return 0;
}
