/* Command-line parsing for the llama2 program, kept apart from main() so
 * that tests and the fuzzer can drive it. */
#ifndef LLAMA2_CLI_ARGS_H
#define LLAMA2_CLI_ARGS_H

#include <stddef.h>
#include <stdint.h>

typedef enum cli_mode { CLI_GENERATE, CLI_CHAT } cli_mode;

typedef struct cli_args {
    const char *checkpoint;
    const char *tokenizer;     /* -z, default "tokenizer.bin" */
    const char *prompt;        /* -i, NULL when absent */
    const char *system_prompt; /* -y, NULL when absent */
    cli_mode mode;             /* -m */
    float temperature;         /* -t, default 1.0 */
    float topp;                /* -p, default 0.9 */
    uint64_t seed;             /* -s, 0: from the clock */
    int steps;                 /* -n, default 256; 0 means the context length */
    int threads;               /* --threads, 0: the online processors */
    int batch;                 /* --batch, 0: the library's default */
    const char *backend;       /* --backend, NULL: cpu */
    int no_mmap, no_timer, verbose;
    int help, version;         /* print and exit 0 */
} cli_args;

/* Parses argv into *args. Returns 0 on success, or 2 (a usage error) with a
 * one-line message in msg that names the flag. */
int cli_parse(int argc, char **argv, cli_args *args, char *msg, size_t msg_size);

/* The --help text. */
const char *cli_usage(void);

#endif
