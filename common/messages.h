/* The programs' one way of saying what went wrong: one line on standard
 * error, "program: culprit: message", whatever bytes the user typed (control
 * bytes are shown as '?', so that it stays one line). */
#ifndef LLAMA2_COMMON_MESSAGES_H
#define LLAMA2_COMMON_MESSAGES_H

#include <stdarg.h>
#include <stddef.h>

#if defined(__GNUC__)
#define CLI_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define CLI_PRINTF(fmt, args)
#endif

/* Formats a usage error into msg (control bytes become '?') and returns 2,
 * the exit status of bad usage. */
int cli_fail(char *msg, size_t size, const char *fmt, ...) CLI_PRINTF(3, 4);

/* "program: culprit: message" (culprit NULL: "program: message") on
 * standard error. */
void cli_print_error(const char *program, const char *culprit, const char *message);

/* "program: <fmt ...>" on standard error (a vprintf format). */
void cli_vprint_error(const char *program, const char *fmt, va_list ap) CLI_PRINTF(2, 0);

/* "program: <fmt ...> (try --help)" on standard error; returns 2. */
int cli_usage_error(const char *program, const char *fmt, ...) CLI_PRINTF(2, 3);

/* When `threads` asks for more threads than the processors online, says
 * once on standard error that they will wait on each other: "program:
 * warning: --threads 64 is more than the 2 processors online; the extra
 * threads wait for a processor and make every step slower". Returns 1 when
 * it warned. */
int cli_warn_threads(const char *program, int threads);

#endif
