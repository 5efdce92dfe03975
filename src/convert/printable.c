/* Names in one-line messages: from files, made safe to print; of files,
 * put in front of the message about them. */
#include <stdio.h>
#include <string.h>

#include "platform/checks.h"
#include "write/output_file.h"
#include "printable.h"

const char *l2_printable_n(const char *s, size_t n, char *buf, size_t cap) {
    size_t out = 0;
    const size_t room = cap - 4; /* "..." and the NUL */
    for (size_t i = 0; i < n; i++) {
        const unsigned char c = (unsigned char)s[i];
        const int plain = c >= 0x20 && c < 0x7f && c != '\\';
        const size_t need = plain ? 1 : 4;
        if (out + need > room) {
            memcpy(buf + out, "...", 4);
            return buf;
        }
        if (plain)
            buf[out] = (char)c;
        else
            snprintf(buf + out, 5, "\\x%02x", c);
        out += need;
    }
    buf[out] = '\0';
    return buf;
}

const char *l2_printable(const char *s, char *buf, size_t cap) { return l2_printable_n(s, strlen(s), buf, cap); }

llama2_status l2_name_the_file(llama2_status s, const char *in_path, const char *out_path, llama2_error *err) {
    if (s == LLAMA2_OK || !err) return s;
    const char *culprit = l2_output_failure(err->message) ? out_path : in_path;
    if (!culprit) return s;
    char why[sizeof err->message];
    snprintf(why, sizeof why, "%s", err->message);
    return l2_fail(err, s, "%s: %s", culprit, why);
}
