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

int main(int argc, char **argv) {
    l2_program_start(&argc, &argv);
    const char *path = NULL;
    /* -1: not given. */
    int dim = -1, hidden = -1, layers = -1, heads = -1, kv_heads = -1, vocab = -1, seq_len = -1;
    int format = 0, group_size = -1, unshared = 0;
    unsigned output_flags = 0;
    uint64_t seed = 1;
    const preset *chosen = NULL;
#define SIZE "must be a positive integer"
    struct { const char *flag; int *value; int min, max; const char *what; } ints[] = {
        {"--dim", &dim, 1, INT_MAX, SIZE},         {"--hidden", &hidden, 1, INT_MAX, SIZE},
        {"--layers", &layers, 1, INT_MAX, SIZE},   {"--heads", &heads, 1, INT_MAX, SIZE},
        {"--kv-heads", &kv_heads, 1, INT_MAX, SIZE}, {"--vocab", &vocab, 1, INT_MAX, SIZE},
        {"--seq-len", &seq_len, 1, INT_MAX, SIZE}, {"--format", &format, 0, 2, "the format must be 0, 1 or 2"},
        {"--group-size", &group_size, 1, INT_MAX, SIZE},
    };
#undef SIZE
    const int n_ints = (int)(sizeof ints / sizeof ints[0]);

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(usage_text, stdout);
            return 0;
        }
        if (strcmp(a, "--unshared") == 0) {
            unshared = 1;
            continue;
        }
        if (strcmp(a, "--force") == 0) {
            output_flags |= L2_OUTPUT_FORCE;
            continue;
        }
        if (a[0] != '-' || a[1] == '\0') {
            if (path) return usage_error("unexpected argument '%s'", a);
            path = a;
            continue;
        }
        /* Every other flag takes a value, as the next argument or after '='. */
        const char *eq = strchr(a, '=');
        size_t name_len = eq ? (size_t)(eq - a) : strlen(a);
        const char *value = eq ? eq + 1 : NULL;
        int known = 0;
        for (int k = 0; k < n_ints + 2 && !known; k++) {
            const char *flag = k < n_ints ? ints[k].flag : k == n_ints ? "--seed" : "--preset";
            if (strlen(flag) != name_len || strncmp(a, flag, name_len) != 0) continue;
            known = 1;
            if (!value && i + 1 < argc) value = argv[++i];
            if (!value) return usage_error("%s needs a value", flag);
            if (k == n_ints) {
                char msg[512];
                if (cli_u64_value("--seed", value, "the seed must be a non-negative integer", &seed, msg, sizeof msg))
                    return usage_error("%s", msg);
            } else if (k == n_ints + 1) {
                chosen = NULL;
                for (int p = 0; p < N_PRESETS; p++)
                    if (strcmp(value, presets[p].name) == 0) chosen = &presets[p];
                if (!chosen)
                    return usage_error("--preset: unknown preset '%s' (stories15M, stories42M, stories110M, "
                                       "tinyllama1.1B)", value);
            } else {
                if (tool_int_value("llama2-genmodel", flag, value, ints[k].min, ints[k].max, ints[k].what,
                                   ints[k].value) != 0)
                    return 2;
            }
        }
        if (!known) return usage_error("unknown option '%s'", a);
    }
    if (!path) return usage_error("%s", "missing the output file");

    int shared = 1;
    if (chosen) {
        /* The preset fills whatever the flags leave out. */
        const int from_preset[7] = {chosen->dim,   chosen->hidden, chosen->layers, chosen->heads,
                                    chosen->kv_heads, chosen->vocab, chosen->seq_len};
        for (int k = 0; k < 7; k++)
            if (*ints[k].value < 0) *ints[k].value = from_preset[k];
        shared = chosen->shared;
    }
    if (unshared) shared = 0;
    for (int k = 0; k < 7; k++)
        if (*ints[k].value < 0 && !(ints[k].value == &kv_heads))
            return usage_error("missing %s (or a --preset)", ints[k].flag);
    if (kv_heads < 0) kv_heads = heads;
    if (group_size > 0 && format != 2) return usage_error("%s applies to --format 2 only", "--group-size");

    llama2_config c = l2_random_model_config(dim, hidden, layers, heads, kv_heads, vocab, seq_len, shared, format,
                                             group_size > 0 ? group_size : 0);

    double t0 = llama2_time_seconds();
    llama2_error err = {0};
    llama2_status s = l2_write_random_model(path, &c, seed, output_flags, &err);
    if (s == LLAMA2_E_INVALID) {
        fprintf(stderr, "llama2-genmodel: %s (try --help)\n", err.message);
        return 2;
    }
    if (s != LLAMA2_OK) {
        fprintf(stderr, "llama2-genmodel: %s: %s\n", path, err.message);
        return 1;
    }
    double seconds = llama2_time_seconds() - t0;
    long long bytes = tool_file_size(path);
    char kind[48] = "";
    if (format == 2) snprintf(kind, sizeof kind, " (int8, group size %d)", c.group_size);
    fprintf(stderr,
            "llama2-genmodel: %s: format %d%s, dim %d, hidden %d, %d layers, %d/%d heads, vocab %d, seq_len %d, "
            "%s classifier, %lld bytes in %.2f s\n",
            path, format, kind, dim, hidden, layers, heads, kv_heads, vocab, seq_len,
            shared ? "shared" : "separate", bytes, seconds);
    return 0;
}
