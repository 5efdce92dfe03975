/* llama2.c's flags (-t -p -s -n -i -z -m -y) with long forms, plus this
 * engine's own; every value is checked instead of silently replaced. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"

const char *cli_usage(void) {
    return "Usage:   llama2 <checkpoint> [options]\n"
           "Example: llama2 model.bin -n 256 -i \"Once upon a time\"\n"
           "Options:\n"
           "  -t, --temperature <float>  sampling temperature, 0 = greedy (default 1.0)\n"
           "  -p, --top-p <float>        nucleus sampling threshold in [0,1], 0 or 1 = off (default 0.9)\n"
           "  -s, --seed <int>           random seed (default: from the clock)\n"
           "  -n, --steps <int>          positions to run, BOS included; 0 = the context length (default 256)\n"
           "  -i, --prompt <string>      input prompt\n"
           "  -z, --tokenizer <path>     tokenizer file (default tokenizer.bin)\n"
           "  -m, --mode <mode>          generate | chat (default generate)\n"
           "  -y, --system <string>      system prompt in chat mode\n"
           "      --threads <int>        worker threads (default: the online processors; 1 below 1M parameters)\n"
           "      --batch <int>          prompt tokens per block (default 32)\n"
           "      --backend <name>       cpu | blas | cuda, among those built in (default cpu)\n"
           "      --no-mmap              read the checkpoint into memory instead of mapping it\n"
           "      --no-timer             do not print the tok/s line on standard error\n"
           "      --verbose              print a machine-readable statistics line on standard error\n"
           "  -h, --help                 this text\n"
           "      --version              the version\n"
           "Checkpoints: llama2.c legacy (v0) and version 1 fp32, version 2 int8 (Q8_0).\n";
}

/* The message quotes what was typed: control bytes (a newline in a value)
 * become '?' so that it stays one line. */
static int fail(char *msg, size_t size, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, size, fmt, ap);
    va_end(ap);
    for (size_t i = 0; i < size && msg[i] != '\0'; i++)
        if ((unsigned char)msg[i] < 0x20 || msg[i] == 0x7F) msg[i] = '?';
    return 2;
}

static int parse_float(const char *s, float *out) {
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (end == s || *end != '\0' || errno == ERANGE || !isfinite(v)) return 0;
    *out = v;
    return 1;
}

static int parse_int(const char *s, int lo, int hi, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || errno == ERANGE || v < lo || v > hi) return 0;
    *out = (int)v;
    return 1;
}

static int parse_u64(const char *s, uint64_t *out) {
    char *end;
    if (s[0] == '-' || s[0] == '\0') return 0;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end != '\0' || errno == ERANGE) return 0;
    *out = (uint64_t)v;
    return 1;
}

typedef enum opt_id {
    OPT_TEMPERATURE, OPT_TOPP, OPT_SEED, OPT_STEPS, OPT_PROMPT, OPT_TOKENIZER, OPT_MODE, OPT_SYSTEM,
    OPT_THREADS, OPT_BATCH, OPT_BACKEND, OPT_NO_MMAP, OPT_NO_TIMER, OPT_VERBOSE, OPT_HELP, OPT_VERSION
} opt_id;

typedef struct option_spec {
    char short_name; /* 0: long form only */
    const char *long_name;
    int takes_value;
    opt_id id;
} option_spec;

static const option_spec options[] = {
    {'t', "temperature", 1, OPT_TEMPERATURE}, {'p', "top-p", 1, OPT_TOPP},
    {0, "topp", 1, OPT_TOPP},                 {'s', "seed", 1, OPT_SEED},
    {'n', "steps", 1, OPT_STEPS},             {'i', "prompt", 1, OPT_PROMPT},
    {'z', "tokenizer", 1, OPT_TOKENIZER},     {'m', "mode", 1, OPT_MODE},
    {'y', "system", 1, OPT_SYSTEM},           {0, "system-prompt", 1, OPT_SYSTEM},
    {0, "threads", 1, OPT_THREADS},           {0, "batch", 1, OPT_BATCH},
    {0, "backend", 1, OPT_BACKEND},
    {0, "no-mmap", 0, OPT_NO_MMAP},           {0, "no-timer", 0, OPT_NO_TIMER},
    {0, "verbose", 0, OPT_VERBOSE},           {'h', "help", 0, OPT_HELP},
    {0, "version", 0, OPT_VERSION},
};

static const option_spec *find_option(const char *arg, const char **inline_value, size_t *name_len) {
    *inline_value = NULL;
    if (arg[0] == '-' && arg[1] != '-' && arg[1] != '\0' && arg[2] == '\0') {
        for (size_t i = 0; i < sizeof options / sizeof options[0]; i++)
            if (options[i].short_name == arg[1]) return &options[i];
        return NULL;
    }
    if (arg[0] != '-' || arg[1] != '-') return NULL;
    const char *name = arg + 2;
    const char *eq = strchr(name, '=');
    *name_len = eq ? (size_t)(eq - name) : strlen(name);
    for (size_t i = 0; i < sizeof options / sizeof options[0]; i++)
        if (strlen(options[i].long_name) == *name_len && strncmp(options[i].long_name, name, *name_len) == 0) {
            if (eq) *inline_value = eq + 1;
            return &options[i];
        }
    return NULL;
}

static int apply(const option_spec *o, const char *flag, const char *v, cli_args *a, char *msg, size_t size) {
    switch (o->id) {
    case OPT_TEMPERATURE:
        if (!parse_float(v, &a->temperature) || a->temperature < 0.0f)
            return fail(msg, size, "%s: temperature must be a non-negative number, got '%s'", flag, v);
        return 0;
    case OPT_TOPP:
        if (!parse_float(v, &a->topp) || a->topp < 0.0f || a->topp > 1.0f)
            return fail(msg, size, "%s: top-p must be a number between 0 and 1, got '%s'", flag, v);
        return 0;
    case OPT_SEED:
        if (!parse_u64(v, &a->seed))
            return fail(msg, size, "%s: seed must be a non-negative integer, got '%s'", flag, v);
        return 0;
    case OPT_STEPS:
        if (!parse_int(v, 0, 0x7fffffff, &a->steps))
            return fail(msg, size, "%s: steps must be a non-negative integer, got '%s'", flag, v);
        return 0;
    case OPT_THREADS:
        if (!parse_int(v, 1, 1024, &a->threads))
            return fail(msg, size, "%s: threads must be an integer from 1 to 1024, got '%s'", flag, v);
        return 0;
    case OPT_BATCH:
        if (!parse_int(v, 1, 65536, &a->batch))
            return fail(msg, size, "%s: batch must be an integer from 1 to 65536, got '%s'", flag, v);
        return 0;
    case OPT_BACKEND:
        if (strcmp(v, "cpu") != 0 && strcmp(v, "blas") != 0 && strcmp(v, "cuda") != 0)
            return fail(msg, size, "%s: unknown backend '%s' (expected cpu, blas or cuda)", flag, v);
        a->backend = v;
        return 0;
    case OPT_PROMPT: a->prompt = v; return 0;
    case OPT_TOKENIZER: a->tokenizer = v; return 0;
    case OPT_SYSTEM: a->system_prompt = v; return 0;
    case OPT_MODE:
        if (strcmp(v, "generate") == 0)
            a->mode = CLI_GENERATE;
        else if (strcmp(v, "chat") == 0)
            a->mode = CLI_CHAT;
        else
            return fail(msg, size, "%s: unknown mode '%s' (expected generate or chat)", flag, v);
        return 0;
    case OPT_NO_MMAP: a->no_mmap = 1; return 0;
    case OPT_NO_TIMER: a->no_timer = 1; return 0;
    case OPT_VERBOSE: a->verbose = 1; return 0;
    case OPT_HELP: a->help = 1; return 0;
    case OPT_VERSION: a->version = 1; return 0;
    }
    return 0;
}

int cli_parse(int argc, char **argv, cli_args *a, char *msg, size_t size) {
    *a = (cli_args){.tokenizer = "tokenizer.bin", .temperature = 1.0f, .topp = 0.9f, .steps = 256};
    if (size > 0) msg[0] = '\0';
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (arg[0] != '-' || arg[1] == '\0') {
            if (a->checkpoint) return fail(msg, size, "%s: unexpected argument (the checkpoint is %s)", arg, a->checkpoint);
            a->checkpoint = arg;
            continue;
        }
        const char *inline_value;
        size_t name_len = 0;
        const option_spec *o = find_option(arg, &inline_value, &name_len);
        if (!o) return fail(msg, size, "%s: unknown option (see --help)", arg);
        char flag[64]; /* as typed: "-t", or "--temperature" without any "=value" */
        snprintf(flag, sizeof flag, "%.*s", arg[1] != '-' ? 2 : (int)(name_len + 2), arg);
        const char *value = NULL;
        if (o->takes_value) {
            if (inline_value)
                value = inline_value;
            else if (i + 1 < argc)
                value = argv[++i];
            else
                return fail(msg, size, "%s: missing value", flag);
        } else if (inline_value) {
            return fail(msg, size, "%s: takes no value", flag);
        }
        int rc = apply(o, flag, value, a, msg, size);
        if (rc) return rc;
    }
    if (a->help || a->version) return 0;
    if (!a->checkpoint) return fail(msg, size, "no checkpoint given (usage: llama2 <checkpoint> [options])");
    return 0;
}
