/* Names from files in one-line messages, made safe to print. */
#include <stdio.h>
#include <string.h>

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
