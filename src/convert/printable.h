/* Names in error messages: names read from files (tensor names, JSON
 * strings, pieces) made printable and short, so that a message stays one
 * line. */
#ifndef LLAMA2_CONVERT_PRINTABLE_H
#define LLAMA2_CONVERT_PRINTABLE_H

#include <stddef.h>

#include "llama2.h"

/* Copies the n bytes at s into buf (cap bytes, at least 16) with every byte
 * outside printable ASCII (and the backslash) written as \xNN, cut with
 * "..." when it does not fit. Returns buf. */
const char *l2_printable_n(const char *s, size_t n, char *buf, size_t cap);

/* The same for a NUL-terminated string. */
const char *l2_printable(const char *s, char *buf, size_t cap);

#endif
