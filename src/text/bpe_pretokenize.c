/*
 * The Llama 3 pre-tokenizer's split, written out by hand from its regex
 * (tokenizer.json's pre_tokenizer, a Split with behaviour Isolated):
 *
 *   (?i:'s|'t|'re|'ve|'m|'ll|'d)   contractions, either case
 *   [^\r\n\p{L}\p{N}]?\p{L}+       a word, with one character before it
 *   \p{N}{1,3}                     numbers, three digits at most
 *    ?[^\s\p{L}\p{N}]+[\r\n]*      punctuation and symbols, then newlines
 *   \s*[\r\n]+                     whitespace up to its last newline
 *   \s+(?!\S)                      whitespace but the last before a non-space
 *   \s+                            whitespace
 *
 * The alternatives are tried in order at each position, the first that
 * matches wins, as in a backtracking regex engine. Every character is a
 * letter, a number, whitespace or "other", so one always matches. \s is
 * Unicode's White_Space (as in Rust's regex and Oniguruma); bytes that are
 * not valid UTF-8 count as "other" characters.
 */
#include "bpe.h"
#include "unicode_classes.h"

enum { OTHER, LETTER, NUMBER, SPACE, NEWLINE /* \r or \n, also SPACE */ };

size_t l2_utf8_next(const unsigned char *s, size_t len, size_t i, unsigned *cp) {
    unsigned c = s[i];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t n;
    unsigned v, min;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2, v = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3, v = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4, v = c & 0x07, min = 0x10000;
    } else {
        *cp = L2_BPE_INVALID_CP;
        return 1;
    }
    if (len - i < n) {
        *cp = L2_BPE_INVALID_CP;
        return 1;
    }
    for (size_t k = 1; k < n; k++) {
        if ((s[i + k] & 0xC0) != 0x80) {
            *cp = L2_BPE_INVALID_CP;
            return 1;
        }
        v = v << 6 | (s[i + k] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
        *cp = L2_BPE_INVALID_CP;
        return 1;
    }
    *cp = v;
    return n;
}

static int is_white_space(unsigned cp) {
    if (cp <= 0x20) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D);
    if (cp < 0x85) return 0;
    return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
           cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

static int class_of(unsigned cp) {
    if (cp < 0x80) {
        if (cp == '\r' || cp == '\n') return NEWLINE;
        if ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') return LETTER;
        if (cp >= '0' && cp <= '9') return NUMBER;
        return is_white_space(cp) ? SPACE : OTHER;
    }
    if (cp == L2_BPE_INVALID_CP) return OTHER;
    if (is_white_space(cp)) return SPACE;
    if (l2_unicode_is_letter(cp)) return LETTER;
    if (l2_unicode_is_number(cp)) return NUMBER;
    return OTHER;
}

/* A character of the text: its class and where the next one starts. */
typedef struct unit {
    int cls;
    size_t end;
} unit;

static unit at(const unsigned char *s, size_t len, size_t i) {
    if (s[i] < 0x80) return (unit){class_of(s[i]), i + 1}; /* most text: no decoding */
    unsigned cp;
    size_t n = l2_utf8_next(s, len, i, &cp);
    return (unit){class_of(cp), i + n};
}

static int is_space(int cls) { return cls == SPACE || cls == NEWLINE; }

/* The end of the run of characters of class `cls` (or, with cls SPACE, of
 * any whitespace) from i; *last gets the start of its last character. */
static size_t run_end(const unsigned char *s, size_t len, size_t i, int cls, size_t *last) {
    size_t prev = i;
    while (i < len) {
        unit u = at(s, len, i);
        if (!(cls == SPACE ? is_space(u.cls) : u.cls == cls)) break;
        prev = i;
        i = u.end;
    }
    if (last) *last = prev;
    return i;
}

static size_t contraction(const unsigned char *s, size_t len, size_t i) {
    if (s[i] != '\'' || i + 1 >= len) return 0;
    unsigned char a = (unsigned char)(s[i + 1] | 0x20), b = i + 2 < len ? (unsigned char)(s[i + 2] | 0x20) : 0;
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
    return 0;
}

size_t l2_bpe_split_llama3(const unsigned char *s, size_t len, size_t i) {
    size_t end = contraction(s, len, i);
    if (end) return end;
    unit u = at(s, len, i);
    if (u.cls == LETTER) return run_end(s, len, u.end, LETTER, NULL);
    if (u.cls != NEWLINE && u.cls != NUMBER && u.end < len && at(s, len, u.end).cls == LETTER)
        return run_end(s, len, u.end, LETTER, NULL);
    if (u.cls == NUMBER) {
        size_t j = u.end;
        for (int k = 1; k < 3 && j < len; k++) {
            unit v = at(s, len, j);
            if (v.cls != NUMBER) break;
            j = v.end;
        }
        return j;
    }
    size_t punct = (u.cls == OTHER) ? i : (s[i] == ' ' && u.end < len && at(s, len, u.end).cls == OTHER) ? u.end : len;
    if (punct < len) {
        size_t j = run_end(s, len, punct, OTHER, NULL);
        return run_end(s, len, j, NEWLINE, NULL);
    }
    /* Whitespace from here on. */
    size_t last = i, j = run_end(s, len, i, SPACE, &last);
    for (size_t k = i, newline_end = 0; k < j;) { /* \s*[\r\n]+: up to the last newline */
        unit v = at(s, len, k);
        if (v.cls == NEWLINE) newline_end = v.end;
        k = v.end;
        if (k == j && newline_end) return newline_end;
    }
    if (j == len || last == i) return j; /* \s+(?!\S) at the end of text, else \s+ */
    return last;                         /* \s+(?!\S): all but the last */
}
