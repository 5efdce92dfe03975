/* The programs' number parser (numbers.h). */
#include "numbers.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "messages.h"

/* An optional sign, then at least one digit: what strtol would read with
 * nothing around it (no blanks, no "0x"). */
static int integer_syntax(const char *s) {
    if (*s == '-' || *s == '+') s++;
    if (*s < '0' || *s > '9') return 0;
    while (*s >= '0' && *s <= '9') s++;
    return *s == '\0';
}

cli_number cli_read_long(const char *s, long lo, long hi, long *out) {
    if (!integer_syntax(s)) return CLI_NUMBER_NOT_A_NUMBER;
    errno = 0;
    long v = strtol(s, NULL, 10);
    if (errno == ERANGE || v < lo || v > hi) return CLI_NUMBER_OUT_OF_RANGE;
    *out = v;
    return CLI_NUMBER_OK;
}

cli_number cli_read_int(const char *s, int lo, int hi, int *out) {
    long v;
    cli_number r = cli_read_long(s, lo, hi, &v);
    if (r == CLI_NUMBER_OK) *out = (int)v;
    return r;
}

cli_number cli_read_u64(const char *s, uint64_t *out) {
    if (!integer_syntax(s)) return CLI_NUMBER_NOT_A_NUMBER;
    if (s[0] == '-') return s[1 + strspn(s + 1, "0")] == '\0' ? (*out = 0, CLI_NUMBER_OK) : CLI_NUMBER_OUT_OF_RANGE;
    errno = 0;
    unsigned long long v = strtoull(s, NULL, 10);
    if (errno == ERANGE) return CLI_NUMBER_OUT_OF_RANGE;
    *out = (uint64_t)v;
    return CLI_NUMBER_OK;
}

cli_number cli_read_float(const char *s, float lo, float hi, float *out) {
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (end == s || *end != '\0' || (s[0] == ' ' || s[0] == '\t' || s[0] == '\n') || isnan(v))
        return CLI_NUMBER_NOT_A_NUMBER;
    /* ERANGE with a finite result is an underflow: a value near 0, kept. */
    if (isinf(v) || v < lo || v > hi) return CLI_NUMBER_OUT_OF_RANGE;
    *out = v;
    return CLI_NUMBER_OK;
}

static int not_a_number(const char *flag, const char *value, const char *what, char *msg, size_t size) {
    return cli_fail(msg, size, "%s: %s, got '%s'", flag, what, value);
}

int cli_long_value(const char *flag, const char *value, long lo, long hi, const char *what, long *out, char *msg,
                   size_t size) {
    switch (cli_read_long(value, lo, hi, out)) {
    case CLI_NUMBER_OK: return 0;
    case CLI_NUMBER_OUT_OF_RANGE:
        return cli_fail(msg, size, "%s: %s is out of range: must be an integer from %ld to %ld", flag, value, lo, hi);
    default: return not_a_number(flag, value, what, msg, size);
    }
}

int cli_int_value(const char *flag, const char *value, int lo, int hi, const char *what, int *out, char *msg,
                  size_t size) {
    long v;
    int rc = cli_long_value(flag, value, lo, hi, what, &v, msg, size);
    if (rc == 0) *out = (int)v;
    return rc;
}

int cli_u64_value(const char *flag, const char *value, const char *what, uint64_t *out, char *msg, size_t size) {
    switch (cli_read_u64(value, out)) {
    case CLI_NUMBER_OK: return 0;
    case CLI_NUMBER_OUT_OF_RANGE:
        return cli_fail(msg, size, "%s: %s is out of range: must be an integer from 0 to %llu", flag, value,
                        (unsigned long long)UINT64_MAX);
    default: return not_a_number(flag, value, what, msg, size);
    }
}

int cli_float_value(const char *flag, const char *value, float lo, float hi, const char *what, float *out, char *msg,
                    size_t size) {
    switch (cli_read_float(value, lo, hi, out)) {
    case CLI_NUMBER_OK: return 0;
    case CLI_NUMBER_OUT_OF_RANGE:
        return cli_fail(msg, size, "%s: %s is out of range: must be a number from %g to %g", flag, value, (double)lo,
                        (double)hi);
    default: return not_a_number(flag, value, what, msg, size);
    }
}
