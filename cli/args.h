/* Command-line parsing for the llama2 program, kept apart from main() so
 * that tests and the fuzzer can drive it. */
#ifndef LLAMA2_CLI_ARGS_H
#define LLAMA2_CLI_ARGS_H

#include <stddef.h>
#include <stdint.h>

#include "llama2.h"

typedef enum cli_mode { CLI_GENERATE, CLI_CHAT } cli_mode;

/* Where the grammar comes from (in the order of the options). */
typedef enum cli_grammar_from {
    CLI_GRAMMAR_NONE,
    CLI_GRAMMAR_TEXT,        /* --grammar */
    CLI_GRAMMAR_FILE,        /* --grammar-file */
    CLI_GRAMMAR_SCHEMA,      /* --json-schema */
    CLI_GRAMMAR_SCHEMA_FILE, /* --json-schema-file */
} cli_grammar_from;

#define CLI_MAX_STOPS 32

/* A chat reply's cap unless --reply-tokens says otherwise: a few paragraphs,
 * so that a model that never writes EOS does not fill the context in one
 * reply. */
#define CLI_DEFAULT_REPLY_TOKENS 256

typedef struct cli_args {
    const char *checkpoint;
    const char *tokenizer;     /* -z, default "tokenizer.bin" */
    int tokenizer_given;       /* -z was on the command line */
    const char *prompt;        /* -i, NULL when absent */
    const char *prompt_file;   /* -f, NULL when absent; "-": standard input */
    const char *system_prompt; /* -y, NULL when absent */
    cli_mode mode;             /* -m */
    float temperature;         /* -t, default 1.0 */
    float topp;                /* -p, default 0.9 */
    int top_k;                 /* --top-k, default 0 (off) */
    float min_p;               /* --min-p, default 0 (off) */
    float repeat_penalty;      /* --repeat-penalty, default 1 (off) */
    int repeat_last_n;         /* --repeat-last-n, default 64; -1: the context length */
    float presence_penalty;    /* --presence-penalty, default 0 */
    float frequency_penalty;   /* --frequency-penalty, default 0 */
    uint64_t seed;             /* -s, 0: from the clock and the process id */
    int steps;                 /* -n, default 256; 0 means the context length */
    int steps_given;           /* -n was on the command line (chat's default is the context) */
    int context_length;        /* --ctx, 0: the model's */
    const char *stops[CLI_MAX_STOPS]; /* --stop, in order */
    int n_stops;
    llama2_chat_template chat_template; /* --chat-template, default llama2 */
    int reply_tokens;          /* --reply-tokens, 0: no cap */
    int threads;               /* --threads, 0: the online processors */
    int batch;                 /* --batch, 0: the library's default */
    const char *backend;       /* --backend, NULL: cpu */
    cli_grammar_from grammar_from;
    const char *grammar;       /* the text or path given, NULL when none */
    const char *grammar_flag;  /* the option that gave it, "--grammar"... */
    int no_mmap, no_timer, verbose;
    int help, version;         /* print and exit 0 */
} cli_args;

/* Parses argv into *args. Returns 0 on success, or 2 (a usage error) with a
 * one-line message in msg that names the flag. */
int cli_parse(int argc, char **argv, cli_args *args, char *msg, size_t msg_size);

/* The --help text. */
const char *cli_usage(void);

/* The sampler options the arguments ask for, for a session of
 * context_length positions (--repeat-last-n -1 means all of them, and a
 * larger window is cut to them). */
llama2_sampler_options cli_sampler_options(const cli_args *args, int context_length);

#endif
