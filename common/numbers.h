/* The one way every program reads a number from its command line: the
 * whole value, as typed, is a decimal integer (or, for floats, a number
 * strtof reads), and a well-formed number outside the option's range is
 * said to be out of range, with the range, in the same words everywhere:
 *
 *   -n: 99999999999 is out of range: must be an integer from 0 to 2147483647
 *   -t: 1e400 is out of range: must be a number from 0 to 3.40282e+38
 *
 * Anything else (empty, letters, blanks, NaN) is the caller's own
 * "FLAG: WHAT, got 'VALUE'". */
#ifndef LLAMA2_COMMON_NUMBERS_H
#define LLAMA2_COMMON_NUMBERS_H

#include <stddef.h>
#include <stdint.h>

typedef enum cli_number {
    CLI_NUMBER_OK = 0,
    CLI_NUMBER_NOT_A_NUMBER,
    CLI_NUMBER_OUT_OF_RANGE,
} cli_number;

/* s as an integer from lo to hi (an optional sign, then digits only); *out
 * is set only for CLI_NUMBER_OK. */
cli_number cli_read_long(const char *s, long lo, long hi, long *out);
cli_number cli_read_int(const char *s, int lo, int hi, int *out);
/* s as an integer from 0 to UINT64_MAX. */
cli_number cli_read_u64(const char *s, uint64_t *out);
/* s as a float from lo to hi (-FLT_MAX to FLT_MAX: any finite one); a
 * value too small to be told from 0 reads as what strtof gives. */
cli_number cli_read_float(const char *s, float lo, float hi, float *out);

/* The value of option `flag` (as typed: "-n", "--steps") read as above.
 * Returns 0 with *out set; or 2, the exit status of a usage error, with
 * msg "FLAG: VALUE is out of range: must be ..." for a number outside the
 * range, else "FLAG: WHAT, got 'VALUE'" (control bytes shown as '?'). */
int cli_long_value(const char *flag, const char *value, long lo, long hi, const char *what, long *out, char *msg,
                   size_t size);
int cli_int_value(const char *flag, const char *value, int lo, int hi, const char *what, int *out, char *msg,
                  size_t size);
int cli_u64_value(const char *flag, const char *value, const char *what, uint64_t *out, char *msg, size_t size);
int cli_float_value(const char *flag, const char *value, float lo, float hi, const char *what, float *out, char *msg,
                    size_t size);

#endif
