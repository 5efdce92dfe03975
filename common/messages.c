/* One-line messages on standard error (messages.h). */
#include "messages.h"

#include <stdarg.h>
#include <stdio.h>

#include "platform/platform.h"

static void one_line(char *msg, size_t size) {
    for (size_t i = 0; i < size && msg[i] != '\0'; i++)
        if ((unsigned char)msg[i] < 0x20 || msg[i] == 0x7F) msg[i] = '?';
}

int cli_fail(char *msg, size_t size, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, size, fmt, ap);
    va_end(ap);
    one_line(msg, size);
    return 2;
}

void cli_print_error(const char *program, const char *culprit, const char *message) {
    char line[1024];
    if (culprit)
        cli_fail(line, sizeof line, "%s: %s: %s", program, culprit, message);
    else
        cli_fail(line, sizeof line, "%s: %s", program, message);
    fprintf(stderr, "%s\n", line);
}

/* "program: <fmt ...><suffix>", one line on standard error. */
static void print_formatted(const char *program, const char *suffix, const char *fmt, va_list ap) CLI_PRINTF(3, 0);
static void print_formatted(const char *program, const char *suffix, const char *fmt, va_list ap) {
    char message[768], line[1024];
    vsnprintf(message, sizeof message, fmt, ap);
    cli_fail(line, sizeof line, "%s: %s%s", program, message, suffix);
    fprintf(stderr, "%s\n", line);
}

void cli_vprint_error(const char *program, const char *fmt, va_list ap) { print_formatted(program, "", fmt, ap); }

int cli_usage_error(const char *program, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    print_formatted(program, " (try --help)", fmt, ap);
    va_end(ap);
    return 2;
}

int cli_warn_threads(const char *program, int threads) {
    const int online = l2_processor_count();
    if (threads <= online || online < 1) return 0;
    fprintf(stderr,
            "%s: warning: --threads %d is more than the %d processor%s online; the extra threads wait for a "
            "processor and make every step slower\n",
            program, threads, online, online == 1 ? "" : "s");
    return 1;
}
