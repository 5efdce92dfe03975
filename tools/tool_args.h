/* What every tool's command line needs: the usage error line, options with
 * a value, whole numbers, and the size of the file written. Linked into
 * each llama2-<tool> program (tools/tool_*.c are parts, not programs). */
#ifndef LLAMA2_TOOL_ARGS_H
#define LLAMA2_TOOL_ARGS_H

/* Prints "<program>: <fmt with arg> (try --help)" on stderr; returns 2, the
 * exit status of a usage error. */
int tool_usage_error(const char *program, const char *fmt, const char *arg);

/* 1 when argv[*i] is the option `name` given a value, as "name VALUE" or
 * "name=VALUE": *value is then the value (NULL when none follows) and *i
 * the last argument read. 0, with nothing changed, for any other argument. */
int tool_option_value(int argc, char **argv, int *i, const char *name, const char **value);

/* A file argument of a tool that takes two: argument a, not an option, goes
 * to paths[*n_paths]. Returns 0, or the usage error's status (2, said) for
 * an unknown option or a third file. */
int tool_file_argument(const char *program, const char *a, const char *paths[2], int *n_paths);

/* The whole number s (decimal digits only) when it is within [min, max]
 * (min >= 0); -1 otherwise. */
int tool_parse_int(const char *s, int min, int max);

/* The size in bytes of the file at path; -1 when it cannot be seen. */
long long tool_file_size(const char *path);

#endif
