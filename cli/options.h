/* A table-driven command-line parser shared by the programs' argument
 * parsers (cli/args.c for llama2, server/args.c for llama2-server): short
 * (-t) and long (--temperature, --temperature=VALUE) options, each looked up
 * in a table and handed with its value to the caller's apply function;
 * the one other argument is the checkpoint. */
#ifndef LLAMA2_CLI_OPTIONS_H
#define LLAMA2_CLI_OPTIONS_H

#include <stddef.h>

#include "llama2.h"

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

/* A number option's value: all of s a decimal integer from lo to hi (after
 * any leading blanks, as strtol reads it). Returns 1 with *out set, else 0. */
int cli_parse_long(const char *s, long lo, long hi, long *out);
int cli_parse_int(const char *s, int lo, int hi, int *out);

/* Formats a usage error into msg (control bytes of what was typed become
 * '?', so that it stays one line) and returns 2. */
int cli_fail(char *msg, size_t size, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Shared by the programs' main functions. */

/* One line on standard error, "program: culprit: message" (culprit NULL:
 * "program: message"), control bytes shown as '?'. */
void cli_print_error(const char *program, const char *culprit, const char *message);

/* Opens the checkpoint (no_mmap: read into memory) and checks --ctx against
 * the model's context (context_length 0: not given). Returns 0; or the exit
 * status, 1 for the file (*culprit = checkpoint) or 2 for --ctx (*culprit =
 * "--ctx"), with the message in err and nothing left open. */
int cli_open_model(const char *checkpoint, int no_mmap, int context_length, llama2_model **model, const char **culprit,
                   llama2_error *err);

#endif
