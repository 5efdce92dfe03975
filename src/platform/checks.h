/* Helpers shared by the library's files: error reporting and checked sizes. */
#ifndef LLAMA2_INTERNAL_H
#define LLAMA2_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "llama2.h"

#if defined(__MINGW32__)
/* MinGW-w64: the C99 printf the build uses (__USE_MINGW_ANSI_STDIO), not
 * msvcrt's, which lacks %zu. */
#define L2_PRINTF(fmt, args) __attribute__((format(gnu_printf, fmt, args)))
#elif defined(__GNUC__)
#define L2_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define L2_PRINTF(fmt, args)
#endif

/* Fills err (when not NULL) and returns status, so that callers can write
 * `return l2_fail(err, LLAMA2_E_FORMAT, "...", ...);`. */
llama2_status l2_fail(llama2_error *err, llama2_status status, const char *fmt, ...) L2_PRINTF(3, 4);
/* Keeps a message on one line: each control character in it (a newline
 * inside a quoted name from the input, say) becomes '?'. l2_fail does it. */
void l2_message_one_line(char *message);

/* a * b into *out; returns 0 when the product does not fit a size_t. */
static inline int l2_mul_size(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) return 0;
    *out = a * b;
    return 1;
}

/* a + b into *out; returns 0 on overflow. */
static inline int l2_add_size(size_t a, size_t b, size_t *out) {
    if (b > SIZE_MAX - a) return 0;
    *out = a + b;
    return 1;
}

/* Steps of 0 or more than the context mean the whole context (llama2.c). */
static inline int l2_clamp_steps(int steps, int seq_len) { return steps <= 0 || steps > seq_len ? seq_len : steps; }

/* The text stream's core: n bytes through the filter and, when search is
 * set, the stop-string search (llama2_text_stream_push is this for a piece;
 * the chat loop passes its own bytes). Returns 0 or 1 + the stop found. */
int l2_text_stream_push_bytes(llama2_text_stream *stream, const char *bytes, size_t n, int search,
                              const char **text, size_t *len);

#endif
