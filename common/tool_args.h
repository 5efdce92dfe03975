/* What the tools' hand-walked command lines (llama2-quantize, -convert,
 * -genmodel) share: options with a value, file arguments, and the size of
 * the file written. Their usage errors are cli_usage_error (messages.h),
 * their numbers numbers.h's. */
#ifndef LLAMA2_COMMON_TOOL_ARGS_H
#define LLAMA2_COMMON_TOOL_ARGS_H

/* 1 when argv[*i] is the option `name` given a value, as "name VALUE" or
 * "name=VALUE": *value is then the value (NULL when none follows) and *i
 * the last argument read. 0, with nothing changed, for any other argument. */
int tool_option_value(int argc, char **argv, int *i, const char *name, const char **value);

/* A file argument of a tool that takes two: argument a, not an option, goes
 * to paths[*n_paths]. Returns 0, or the usage error's status (2, said) for
 * an unknown option or a third file. */
int tool_file_argument(const char *program, const char *a, const char *paths[2], int *n_paths);

/* The value of the option `flag` as an integer from lo to hi: 0 with *out
 * set, or 2 with the usage error said ("program: flag: ... (try --help)";
 * numbers.h's words, `what` for a value that is not a number). */
int tool_int_value(const char *program, const char *flag, const char *value, int lo, int hi, const char *what,
                   int *out);

/* The size in bytes of the file at path; -1 when it cannot be seen. */
long long tool_file_size(const char *path);

#endif
