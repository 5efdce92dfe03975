/* llama2.c's flags (-t -p -s -n -i -z -m -y) with long forms, plus this
 * engine's own; every value is checked instead of silently replaced. */
#include <float.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "llama2.h"
#include "options.h"

/* A macro's value as a string literal: the help states the library's own
 * defaults. */
#define STRINGIFY_VALUE(x) #x
#define STRINGIFY(x) STRINGIFY_VALUE(x)

const char *cli_usage(void) {
    return "Usage:   llama2 <checkpoint> [options]\n"
           "Example: llama2 model.bin -n 256 -i \"Once upon a time\"\n"
           "Options:\n"
           "  -t, --temperature <float>        sampling temperature, 0 = greedy (default 1.0)\n"
           "  -p, --top-p <float>              nucleus sampling threshold in [0,1], 0 or 1 = off (default 0.9)\n"
           "      --top-k <int>                keep the k most likely tokens, 0 = off (default 0)\n"
           "      --min-p <float>              keep tokens at least this share of the best one's probability, 0 = off (default 0)\n"
           "      --repeat-penalty <float>     penalise the tokens of the last --repeat-last-n, 1 = off (default 1.0)\n"
           "      --repeat-last-n <int>        tokens the penalties look back on, 0 = off, -1 = the context (default 64)\n"
           "      --presence-penalty <float>   subtracted from those tokens' logits once (default 0)\n"
           "      --frequency-penalty <float>  subtracted from those tokens' logits per occurrence (default 0)\n"
           "  -s, --seed <int>                 random seed (default: from the clock and the process id)\n"
           "  -n, --steps <int>                positions to run, BOS included; 0 = the context (default 256; chat: 0)\n"
           "  -i, --prompt <string>            input prompt\n"
           "  -f, --file <path>                read the prompt from a file, - for standard input\n"
           "      --stop <string>              end the text before this string (repeatable)\n"
           "      --grammar <gbnf>             constrain the generated text to a GBNF grammar (llama.cpp's format)\n"
           "      --grammar-file <path>        the same, with the grammar read from a file\n"
           "      --json-schema <json>         constrain the generated text to JSON valid under this JSON Schema\n"
           "      --json-schema-file <path>    the same, with the schema read from a file\n"
           "      --ctx <int>                  context length, at most the model's (default: the model's)\n"
           "  -z, --tokenizer <path>           tokenizer file (default: a GGUF model's own, else tokenizer.bin)\n"
           "  -m, --mode <mode>                generate | chat (default generate)\n"
           "  -y, --system <string>            system prompt in chat mode\n"
           "      --chat-template <name>       llama2 | chatml | zephyr | none | llama3 (default llama2)\n"
           "      --reply-tokens <int>         most tokens in one chat reply, 0 = no cap (default 256)\n"
           "      --threads <int>              worker threads (default: the online processors; 1 below 1M parameters)\n"
           "      --batch <int>                prompt tokens per block (default " STRINGIFY(LLAMA2_DEFAULT_BATCH) ")\n"
           "      --backend <name>             cpu | blas | cuda, among those built in (default cpu)\n"
           "      --no-mmap                    read the checkpoint into memory instead of mapping it\n"
           "      --no-timer                   do not print the tok/s line on standard error\n"
           "      --verbose                    print the seed, the model, the kernels and statistics on standard error\n"
           "  -h, --help                       this text\n"
           "      --version                    the version, the backends built in and the kernels this CPU runs\n"
           "Checkpoints: llama2.c legacy (v0) and version 1 fp32, version 2 int8 (Q8_0); GGUF (llama; F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K).\n"
           "In chat, Ctrl-C ends the reply; Ctrl-C or Ctrl-D at an empty prompt ends the chat.\n";
}

llama2_sampler_options cli_sampler_options(const cli_args *a, int context_length) {
    llama2_sampler_options o = {
        .temperature = a->temperature,
        .top_p = a->topp,
        .top_k = a->top_k,
        .min_p = a->min_p,
        .repeat_penalty = a->repeat_penalty,
        /* No more tokens than the context holds can be in the window. */
        .repeat_last_n = a->repeat_last_n < 0 || a->repeat_last_n > context_length ? context_length : a->repeat_last_n,
        .presence_penalty = a->presence_penalty,
        .frequency_penalty = a->frequency_penalty,
        .seed = a->seed,
    };
    return o;
}

typedef enum opt_id {
    OPT_TEMPERATURE, OPT_TOPP, OPT_TOP_K, OPT_MIN_P, OPT_REPEAT_PENALTY, OPT_REPEAT_LAST_N, OPT_PRESENCE_PENALTY,
    OPT_FREQUENCY_PENALTY, OPT_SEED, OPT_STEPS, OPT_PROMPT, OPT_FILE, OPT_STOP, OPT_CTX, OPT_TOKENIZER, OPT_MODE,
    OPT_SYSTEM, OPT_CHAT_TEMPLATE, OPT_REPLY_TOKENS, OPT_THREADS, OPT_BATCH, OPT_BACKEND, OPT_NO_MMAP,
    OPT_NO_TIMER, OPT_VERBOSE, OPT_HELP, OPT_VERSION, OPT_GRAMMAR, OPT_GRAMMAR_FILE, OPT_JSON_SCHEMA,
    OPT_JSON_SCHEMA_FILE
} opt_id;

static const cli_option options[] = {
    {'t', "temperature", 1, OPT_TEMPERATURE}, {'p', "top-p", 1, OPT_TOPP},
    {0, "topp", 1, OPT_TOPP},                 {0, "top-k", 1, OPT_TOP_K},
    {0, "min-p", 1, OPT_MIN_P},               {0, "repeat-penalty", 1, OPT_REPEAT_PENALTY},
    {0, "repeat-last-n", 1, OPT_REPEAT_LAST_N}, {0, "presence-penalty", 1, OPT_PRESENCE_PENALTY},
    {0, "frequency-penalty", 1, OPT_FREQUENCY_PENALTY},
    {'s', "seed", 1, OPT_SEED},
    {'n', "steps", 1, OPT_STEPS},             {'i', "prompt", 1, OPT_PROMPT},
    {'f', "file", 1, OPT_FILE},               {0, "stop", 1, OPT_STOP},
    {0, "ctx", 1, OPT_CTX},
    {'z', "tokenizer", 1, OPT_TOKENIZER},     {'m', "mode", 1, OPT_MODE},
    {'y', "system", 1, OPT_SYSTEM},           {0, "system-prompt", 1, OPT_SYSTEM},
    {0, "chat-template", 1, OPT_CHAT_TEMPLATE}, {0, "reply-tokens", 1, OPT_REPLY_TOKENS},
    {0, "threads", 1, OPT_THREADS},           {0, "batch", 1, OPT_BATCH},
    {0, "backend", 1, OPT_BACKEND},
    {0, "no-mmap", 0, OPT_NO_MMAP},           {0, "no-timer", 0, OPT_NO_TIMER},
    {0, "verbose", 0, OPT_VERBOSE},           {'h', "help", 0, OPT_HELP},
    {0, "version", 0, OPT_VERSION},
    {0, "grammar", 1, OPT_GRAMMAR},           {0, "grammar-file", 1, OPT_GRAMMAR_FILE},
    {0, "json-schema", 1, OPT_JSON_SCHEMA},   {0, "json-schema-file", 1, OPT_JSON_SCHEMA_FILE},
};

static int apply(void *user, const cli_option *o, const char *flag, const char *v, char *msg, size_t size) {
    cli_args *a = user;
    switch ((opt_id)o->id) {
    case OPT_TEMPERATURE:
        return cli_float_value(flag, v, 0.0f, FLT_MAX, "temperature must be a non-negative number", &a->temperature,
                               msg, size);
    case OPT_TOPP:
        return cli_float_value(flag, v, 0.0f, 1.0f, "top-p must be a number between 0 and 1", &a->topp, msg, size);
    case OPT_TOP_K:
        return cli_int_value(flag, v, 0, INT_MAX, "top-k must be a non-negative integer", &a->top_k, msg, size);
    case OPT_MIN_P:
        return cli_float_value(flag, v, 0.0f, 1.0f, "min-p must be a number between 0 and 1", &a->min_p, msg, size);
    case OPT_REPEAT_PENALTY:
        if (cli_float_value(flag, v, -FLT_MAX, FLT_MAX, "the repeat penalty must be a positive number",
                            &a->repeat_penalty, msg, size) != 0)
            return 2;
        if (!(a->repeat_penalty > 0.0f))
            return cli_fail(msg, size, "%s: the repeat penalty must be a positive number, got '%s'", flag, v);
        return 0;
    case OPT_REPEAT_LAST_N:
        return cli_int_value(flag, v, -1, INT_MAX, "must be -1 (the context), 0 (off) or a positive integer",
                             &a->repeat_last_n, msg, size);
    case OPT_PRESENCE_PENALTY:
        return cli_float_value(flag, v, -FLT_MAX, FLT_MAX, "the presence penalty must be a number",
                               &a->presence_penalty, msg, size);
    case OPT_FREQUENCY_PENALTY:
        return cli_float_value(flag, v, -FLT_MAX, FLT_MAX, "the frequency penalty must be a number",
                               &a->frequency_penalty, msg, size);
    case OPT_CTX:
        return cli_int_value(flag, v, 1, INT_MAX, "the context length must be a positive integer", &a->context_length,
                             msg, size);
    case OPT_REPLY_TOKENS:
        return cli_int_value(flag, v, 0, INT_MAX, "reply tokens must be a non-negative integer", &a->reply_tokens, msg,
                             size);
    case OPT_CHAT_TEMPLATE:
        if (!llama2_chat_template_from_name(v, &a->chat_template))
            return cli_fail(msg, size, "%s: unknown chat template '%s' (expected llama2, chatml, zephyr, none or llama3)", flag, v);
        return 0;
    case OPT_STOP:
        if (v[0] == '\0') return cli_fail(msg, size, "%s: a stop string must not be empty", flag);
        if (a->n_stops == CLI_MAX_STOPS) return cli_fail(msg, size, "%s: more than %d stop strings", flag, CLI_MAX_STOPS);
        a->stops[a->n_stops++] = v;
        return 0;
    case OPT_FILE: a->prompt_file = v; return 0;
    case OPT_SEED:
        return cli_u64_value(flag, v, "seed must be a non-negative integer", &a->seed, msg, size);
    case OPT_STEPS:
        a->steps_given = 1;
        return cli_int_value(flag, v, 0, INT_MAX, "steps must be a non-negative integer", &a->steps, msg, size);
    case OPT_THREADS:
        return cli_int_value(flag, v, 1, 1024, "threads must be an integer from 1 to 1024", &a->threads, msg, size);
    case OPT_BATCH:
        return cli_int_value(flag, v, 1, 65536, "batch must be an integer from 1 to 65536", &a->batch, msg, size);
    case OPT_BACKEND:
        if (strcmp(v, "cpu") != 0 && strcmp(v, "blas") != 0 && strcmp(v, "cuda") != 0)
            return cli_fail(msg, size, "%s: unknown backend '%s' (expected cpu, blas or cuda)", flag, v);
        a->backend = v;
        return 0;
    case OPT_PROMPT: a->prompt = v; return 0;
    case OPT_TOKENIZER:
        a->tokenizer = v;
        a->tokenizer_given = 1;
        return 0;
    case OPT_SYSTEM: a->system_prompt = v; return 0;
    case OPT_MODE:
        if (strcmp(v, "generate") == 0)
            a->mode = CLI_GENERATE;
        else if (strcmp(v, "chat") == 0)
            a->mode = CLI_CHAT;
        else
            return cli_fail(msg, size, "%s: unknown mode '%s' (expected generate or chat)", flag, v);
        return 0;
    case OPT_NO_MMAP: a->no_mmap = 1; return 0;
    case OPT_NO_TIMER: a->no_timer = 1; return 0;
    case OPT_VERBOSE: a->verbose = 1; return 0;
    case OPT_HELP: a->help = 1; return 0;
    case OPT_VERSION: a->version = 1; return 0;
    case OPT_GRAMMAR:
    case OPT_GRAMMAR_FILE:
    case OPT_JSON_SCHEMA:
    case OPT_JSON_SCHEMA_FILE:
        if (a->grammar_flag)
            return cli_fail(msg, size, "%s: %s gives the grammar already (use one of them)", flag, a->grammar_flag);
        a->grammar_flag = o->id == OPT_GRAMMAR ? "--grammar" : o->id == OPT_GRAMMAR_FILE ? "--grammar-file"
                          : o->id == OPT_JSON_SCHEMA ? "--json-schema" : "--json-schema-file";
        a->grammar_from = (cli_grammar_from)(o->id - OPT_GRAMMAR + CLI_GRAMMAR_TEXT);
        a->grammar = v;
        return 0;
    }
    return 0;
}

int cli_parse(int argc, char **argv, cli_args *a, char *msg, size_t size) {
    *a = (cli_args){.tokenizer = "tokenizer.bin", .temperature = 1.0f, .topp = 0.9f, .repeat_penalty = 1.0f,
                    .repeat_last_n = 64, .steps = 256, .chat_template = LLAMA2_TEMPLATE_LLAMA2,
                    .reply_tokens = CLI_DEFAULT_REPLY_TOKENS};
    if (size > 0) msg[0] = '\0';
    int rc = cli_parse_options(argc, argv, options, sizeof options / sizeof options[0], apply, a, &a->checkpoint, msg, size);
    if (rc) return rc;
    if (a->help || a->version) return 0;
    if (!a->checkpoint) return cli_fail(msg, size, "no checkpoint given (usage: llama2 <checkpoint> [options])");
    if (a->prompt && a->prompt_file) return cli_fail(msg, size, "-f: -i gives the prompt already (use one of them)");
    if (a->grammar_flag && a->mode == CLI_CHAT)
        return cli_fail(msg, size, "%s: a grammar constrains generate mode, not chat", a->grammar_flag);
    return 0;
}
