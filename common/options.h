/* The table-driven command-line parser of llama2 (cli/args.c) and
 * llama2-server (server/args.c): short (-t) and long (--temperature,
 * --temperature=VALUE) options, each looked up in a table and handed with
 * its value to the caller's apply function; the one other argument is the
 * checkpoint. */
#ifndef LLAMA2_COMMON_OPTIONS_H
#define LLAMA2_COMMON_OPTIONS_H

#include <stddef.h>

/* What an apply function uses: cli_fail, and the number readers. */
#include "messages.h"
#include "numbers.h"

typedef struct cli_option {
    char short_name; /* 0: long form only */
    const char *long_name;
    int takes_value;
    int id;          /* the caller's */
} cli_option;

/* Called for each option found: flag is the option as typed ("-t", or
 * "--temperature" without any "=value"), value its value (NULL for an
 * option without one). Returns 0, or an exit status with msg filled. */
typedef int (*cli_apply_fn)(void *user, const cli_option *option, const char *flag, const char *value, char *msg,
                            size_t msg_size);
/* Walks argv[1..argc) through the table; the argument that is not an
 * option ("-" is one of these) goes to *checkpoint. Returns 0, or the first
 * non-zero status of apply, or 2 with a one-line message for an unknown
 * option, a missing value, a value given to an option without one, or a
 * second argument that is not an option. */
int cli_parse_options(int argc, char **argv, const cli_option *table, size_t n_options, cli_apply_fn apply,
                      void *user, const char **checkpoint, char *msg, size_t msg_size);

/* What a program does with its parsed command line before anything else:
 * a usage error said ("program: msg", status 2), --help's usage text
 * printed, or --version's (print_version). Returns that exit status, or -1
 * when the program goes on. */
int cli_parsed(const char *program, int status, const char *msg, int help, const char *usage, int version,
               void (*print_version)(void));

#endif
