/*
 * The text filter: decoded token bytes in, printable text out. Byte tokens
 * spell a character over several pieces, so a character is held until its
 * last byte arrives and is passed on only when it is valid UTF-8.
 */
#include <string.h>

#include "llama2.h"

void llama2_text_filter_init(llama2_text_filter *filter) { memset(filter, 0, sizeof *filter); }

/* ASCII that is shown: printable characters and whitespace (\t \n \v \f \r). */
static int ascii_shown(unsigned char b) { return (b >= 0x20 && b <= 0x7E) || (b >= '\t' && b <= '\r'); }

/* How many bytes a character starting with `lead` has: 1 for ASCII, 2 to 4
 * for a lead byte, 0 for a byte no valid character starts with (a
 * continuation byte, the overlong leads 0xC0 0xC1, or 0xF5 and above). */
static int utf8_length(unsigned char lead) {
    if (lead < 0x80) return 1;
    if (lead >= 0xC2 && lead <= 0xDF) return 2;
    if (lead >= 0xE0 && lead <= 0xEF) return 3;
    if (lead >= 0xF0 && lead <= 0xF4) return 4;
    return 0;
}

/* Whether b can be the next byte of the pending character. The byte after the
 * lead has narrower ranges that rule out overlong forms (E0, F0), surrogates
 * (ED) and values above U+10FFFF (F4). */
static int continues(const llama2_text_filter *f, unsigned char b) {
    if ((b & 0xC0) != 0x80) return 0;
    if (f->n_pending > 1) return 1;
    switch (f->pending[0]) {
    case 0xE0: return b >= 0xA0;
    case 0xED: return b <= 0x9F;
    case 0xF0: return b >= 0x90;
    case 0xF4: return b <= 0x8F;
    default: return 1;
    }
}

/* Handles a byte outside any pending character: shows or drops ASCII, starts
 * a pending character at a lead byte, drops anything else. */
static size_t start_byte(llama2_text_filter *f, unsigned char b, char *out) {
    int length = utf8_length(b);
    if (length == 1) {
        if (!ascii_shown(b)) return 0;
        out[0] = (char)b;
        return 1;
    }
    if (length > 1) {
        f->pending[0] = b;
        f->n_pending = 1;
        f->n_expected = length;
    }
    return 0;
}

size_t llama2_text_filter_push(llama2_text_filter *filter, const char *in, size_t n, char *out) {
    size_t written = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char b = (unsigned char)in[i];
        if (filter->n_expected > 0) {
            if (continues(filter, b)) {
                filter->pending[filter->n_pending++] = b;
                if (filter->n_pending == filter->n_expected) {
                    memcpy(out + written, filter->pending, (size_t)filter->n_pending);
                    written += (size_t)filter->n_pending;
                    filter->n_pending = filter->n_expected = 0;
                }
                continue;
            }
            /* An interrupted character is dropped; b may start the next one. */
            filter->n_pending = filter->n_expected = 0;
        }
        written += start_byte(filter, b, out + written);
    }
    return written;
}
