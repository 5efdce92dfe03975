/*
 * GBNF (llama.cpp's grammar format) to the compiled form of grammar.h.
 *
 * A rule is `name ::= alternatives`; a newline ends it, except inside
 * parentheses and after `::=` or `|`. Items: "literals" with escapes,
 * [classes] with ranges and ^, `.`, rule names, (groups), each optionally
 * followed by *, +, ?, {m}, {m,}, {m,n}. `#` starts a comment. `root` is
 * where the text starts. Characters are Unicode code points; classes become
 * rules over their UTF-8 byte sequences. Errors are "line:column: what".
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform/checks.h"
#include "grammar.h"

/* The most a {m,n} bound may say; the size limit refuses most big ones first. */
#define MAX_REPEAT 100000

typedef struct prule {
    const char *name; /* into the text; NULL for a rule made by the parser */
    size_t name_len;
    size_t pos;       /* where it is defined (or made), for errors */
    size_t ref_pos;   /* where it is first used */
    int owner;        /* the named rule it was made within */
    int defined;
    uint32_t *body;
    size_t n, cap;
} prule;

typedef struct parser {
    const char *text;
    size_t len, pos;
    prule *rules;
    int n_rules, cap_rules;
    int *table; /* names to rules: open addressing, -1 empty */
    size_t table_cap;
    uint8_t (*sets)[32];
    int n_sets, cap_sets;
    size_t total; /* elements in all rules */
    uint32_t any_elem; /* the reference for `.`, once made; 0 before */
    int depth;
    int current;  /* the named rule being parsed */
    llama2_error *err;
    int failed;
} parser;

static int fail_at(parser *p, size_t at, const char *fmt, ...) L2_PRINTF(3, 4);

/* Reports "line:column: message" once; returns 0 for `return fail_at(...)`. */
static int fail_at(parser *p, size_t at, const char *fmt, ...) {
    if (p->failed) return 0;
    p->failed = 1;
    size_t line = 1, col = 1;
    for (size_t i = 0; i < at && i < p->len; i++) {
        if (p->text[i] == '\n') {
            line++;
            col = 1;
        } else if (((unsigned char)p->text[i] & 0xC0) != 0x80) {
            col++;
        }
    }
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    l2_fail(p->err, LLAMA2_E_INVALID, "%zu:%zu: %s", line, col, msg);
    return 0;
}

static int oom(parser *p) {
    if (!p->failed) l2_fail(p->err, LLAMA2_E_NOMEM, "out of memory for the grammar");
    p->failed = 1;
    return 0;
}

/* ------------------------------------------------------------ building */

static int new_rule(parser *p, const char *name, size_t name_len, size_t pos) {
    if (p->n_rules >= L2_GRAMMAR_MAX_RULES)
        return fail_at(p, pos, "the grammar is too large (more than %d rules)", L2_GRAMMAR_MAX_RULES), -1;
    if (p->n_rules == p->cap_rules) {
        int cap = p->cap_rules ? 2 * p->cap_rules : 16;
        prule *r = realloc(p->rules, (size_t)cap * sizeof *r);
        if (!r) return oom(p), -1;
        p->rules = r;
        p->cap_rules = cap;
    }
    p->rules[p->n_rules] = (prule){.name = name, .name_len = name_len, .pos = pos, .ref_pos = pos,
                                   .owner = name ? p->n_rules : p->current};
    return p->n_rules++;
}

static int emit(parser *p, int rule, uint32_t e) {
    prule *r = &p->rules[rule];
    if (p->total >= L2_GRAMMAR_MAX_ELEMS)
        return fail_at(p, p->pos, "the grammar is too large (more than %u elements)", L2_GRAMMAR_MAX_ELEMS);
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 8;
        uint32_t *b = realloc(r->body, cap * sizeof *b);
        if (!b) return oom(p);
        r->body = b;
        r->cap = cap;
    }
    r->body[r->n++] = e;
    p->total++;
    return 1;
}

static uint64_t hash_name(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

/* The rule named s[0..n), made (undefined) on first sight; -1 on failure. */
static int rule_named(parser *p, const char *s, size_t n, size_t pos) {
    if (2 * (size_t)(p->n_rules + 1) > p->table_cap) {
        size_t cap = p->table_cap ? 2 * p->table_cap : 64;
        int *t = malloc(cap * sizeof *t);
        if (!t) return oom(p), -1;
        for (size_t i = 0; i < cap; i++) t[i] = -1;
        for (size_t i = 0; i < p->table_cap; i++) {
            int id = p->table[i];
            if (id < 0) continue;
            size_t h = (size_t)hash_name(p->rules[id].name, p->rules[id].name_len) & (cap - 1);
            while (t[h] >= 0) h = (h + 1) & (cap - 1);
            t[h] = id;
        }
        free(p->table);
        p->table = t;
        p->table_cap = cap;
    }
    size_t h = (size_t)hash_name(s, n) & (p->table_cap - 1);
    for (; p->table[h] >= 0; h = (h + 1) & (p->table_cap - 1)) {
        const prule *r = &p->rules[p->table[h]];
        if (r->name_len == n && memcmp(r->name, s, n) == 0) return p->table[h];
    }
    int id = new_rule(p, s, n, pos);
    if (id >= 0) p->table[h] = id;
    return id;
}

/* The index of a byte set equal to `set`, added when new. */
static int set_index(parser *p, const uint8_t *set) {
    for (int i = p->n_sets - 1; i >= 0 && i >= p->n_sets - 64; i--)
        if (memcmp(p->sets[i], set, 32) == 0) return i;
    if (p->n_sets == p->cap_sets) {
        int cap = p->cap_sets ? 2 * p->cap_sets : 64;
        uint8_t(*s)[32] = realloc(p->sets, (size_t)cap * sizeof *s);
        if (!s) return oom(p), -1;
        p->sets = s;
        p->cap_sets = cap;
    }
    memcpy(p->sets[p->n_sets], set, 32);
    return p->n_sets++;
}

static int emit_byte_range(parser *p, int rule, unsigned lo, unsigned hi) {
    uint8_t set[32] = {0};
    for (unsigned b = lo; b <= hi; b++) set[b >> 3] |= (uint8_t)(1u << (b & 7));
    int i = set_index(p, set);
    return i >= 0 && emit(p, rule, L2_G_ELEM(L2_G_BYTES, i));
}

/* ------------------------------------------------------- UTF-8 ranges */

static int utf8_encode(uint32_t c, unsigned char *out) {
    if (c < 0x80) {
        out[0] = (unsigned char)c;
        return 1;
    }
    if (c < 0x800) {
        out[0] = (unsigned char)(0xC0 | (c >> 6));
        out[1] = (unsigned char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (c >> 12));
        out[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (c & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | (c >> 18));
    out[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (c & 0x3F));
    return 4;
}

/* Code points [lo, hi] of one encoded length as alternatives of `rule`, each
 * a sequence of byte ranges: the range is split until every byte position
 * below the first spans a whole block, so that the bytes vary
 * independently. */
static int emit_utf8_range(parser *p, int rule, uint32_t lo, uint32_t hi, int *first) {
    unsigned char a[4], b[4];
    int n = utf8_encode(lo, a);
    for (int i = 1; i < n; i++) {
        uint32_t m = (1u << (6 * i)) - 1;
        if ((lo & ~m) != (hi & ~m)) {
            if ((lo & m) != 0)
                return emit_utf8_range(p, rule, lo, lo | m, first) && emit_utf8_range(p, rule, (lo | m) + 1, hi, first);
            if ((hi & m) != m)
                return emit_utf8_range(p, rule, lo, (hi & ~m) - 1, first) && emit_utf8_range(p, rule, hi & ~m, hi, first);
        }
    }
    utf8_encode(hi, b);
    if (!*first && !emit(p, rule, L2_G_ELEM(L2_G_ALT, 0))) return 0;
    *first = 0;
    for (int i = 0; i < n; i++)
        if (!emit_byte_range(p, rule, a[i], b[i])) return 0;
    return 1;
}

typedef struct cp_range {
    uint32_t lo, hi;
} cp_range;

static int compare_ranges(const void *x, const void *y) {
    const cp_range *a = x, *b = y;
    return a->lo < b->lo ? -1 : a->lo > b->lo;
}

/* Emits into `rule` (at the current item) what matches one code point of
 * the ranges: a byte set when they are all ASCII, else a reference to a new
 * rule of byte sequences. Sorts and merges r[0..n) in place; negate: the
 * complement. Surrogates are never matched (they are not valid UTF-8). */
static int emit_char_class(parser *p, int rule, cp_range *r, size_t n, int negate, size_t pos) {
    if (n > 1) qsort(r, n, sizeof *r, compare_ranges);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m > 0 && r[i].lo <= r[m - 1].hi + 1) {
            if (r[i].hi > r[m - 1].hi) r[m - 1].hi = r[i].hi;
        } else {
            r[m++] = r[i];
        }
    }
    /* The complement and the surrogate cut into a new list (at most m + 2). */
    cp_range *out = malloc((m + 3) * sizeof *out);
    if (!out) return oom(p);
    size_t k = 0;
    if (negate) {
        uint32_t next = 0;
        for (size_t i = 0; i < m; i++) {
            if (r[i].lo > next) out[k++] = (cp_range){next, r[i].lo - 1};
            next = r[i].hi + 1;
        }
        if (next <= 0x10FFFF) out[k++] = (cp_range){next, 0x10FFFF};
    } else {
        if (m > 0) memcpy(out, r, m * sizeof *out);
        k = m;
    }
    /* Split at the surrogates and at the encoded-length boundaries. */
    static const uint32_t cuts[][2] = {{0, 0x7F}, {0x80, 0x7FF}, {0x800, 0xD7FF}, {0xE000, 0xFFFF}, {0x10000, 0x10FFFF}};
    int ascii_only = 1;
    uint8_t ascii[32] = {0};
    for (size_t i = 0; i < k; i++) {
        for (uint32_t c = out[i].lo; c <= out[i].hi && c < 0x80; c++) ascii[c >> 3] |= (uint8_t)(1u << (c & 7));
        if (out[i].hi >= 0x80) ascii_only = 0;
    }
    int ok = 1;
    if (ascii_only) {
        int s = set_index(p, ascii);
        ok = s >= 0 && emit(p, rule, L2_G_ELEM(L2_G_BYTES, s));
    } else {
        int sub = new_rule(p, NULL, 0, pos);
        int first = 1;
        ok = sub >= 0;
        int any_ascii = 0;
        for (int i = 0; i < 16; i++) any_ascii |= ascii[i];
        if (ok && any_ascii) {
            int s = set_index(p, ascii);
            ok = s >= 0 && emit(p, sub, L2_G_ELEM(L2_G_BYTES, s));
            first = 0;
        }
        for (size_t i = 0; ok && i < k; i++) {
            for (size_t c = 1; ok && c < sizeof cuts / sizeof cuts[0]; c++) {
                uint32_t lo = out[i].lo > cuts[c][0] ? out[i].lo : cuts[c][0];
                uint32_t hi = out[i].hi < cuts[c][1] ? out[i].hi : cuts[c][1];
                if (lo <= hi) ok = emit_utf8_range(p, sub, lo, hi, &first);
            }
        }
        ok = ok && emit(p, sub, L2_G_ELEM(L2_G_END, 0)) && emit(p, rule, L2_G_ELEM(L2_G_REF, sub));
    }
    free(out);
    return ok;
}

/* ------------------------------------------------------------ scanning */

static int at_end(const parser *p) { return p->pos >= p->len; }
static int peek(const parser *p) { return at_end(p) ? -1 : (unsigned char)p->text[p->pos]; }

/* Skips blanks and comments, and newlines when `newlines`. */
static void skip_space(parser *p, int newlines) {
    while (!at_end(p)) {
        char c = p->text[p->pos];
        if (c == ' ' || c == '\t' || (newlines && (c == '\n' || c == '\r'))) {
            p->pos++;
        } else if (c == '#') {
            while (!at_end(p) && p->text[p->pos] != '\n' && p->text[p->pos] != '\r') p->pos++;
        } else {
            break;
        }
    }
}

static int is_name_char(int c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

static int hex_value(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* One UTF-8 character of the source; -1 (after the error) when invalid. */
static long source_char(parser *p) {
    size_t at = p->pos;
    const unsigned char *s = (const unsigned char *)p->text + at;
    size_t left = p->len - at;
    unsigned c = s[0];
    int n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (n == 0 || (size_t)n > left) return fail_at(p, at, "invalid UTF-8"), -1;
    uint32_t v = n == 1 ? c : n == 2 ? (c & 0x1F) : n == 3 ? (c & 0x0F) : (c & 0x07);
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return fail_at(p, at, "invalid UTF-8"), -1;
        v = (v << 6) | (s[i] & 0x3F);
    }
    static const uint32_t least[] = {0, 0, 0x80, 0x800, 0x10000};
    if (v < least[n] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return fail_at(p, at, "invalid UTF-8"), -1;
    p->pos += (size_t)n;
    return (long)v;
}

/* One character of a literal or class, escapes read; -1 after an error. */
static long parse_char(parser *p) {
    size_t at = p->pos;
    if (peek(p) != '\\') return source_char(p);
    p->pos++;
    int c = peek(p);
    int digits = c == 'x' ? 2 : c == 'u' ? 4 : c == 'U' ? 8 : 0;
    if (digits) {
        p->pos++;
        uint32_t v = 0;
        for (int i = 0; i < digits; i++) {
            int h = hex_value(peek(p));
            if (h < 0) return fail_at(p, at, "bad escape: \\%c needs %d hex digits", c, digits), -1;
            v = v * 16 + (uint32_t)h;
            p->pos++;
        }
        if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
            return fail_at(p, at, "bad escape: U+%X is not a character", (unsigned)v), -1;
        return (long)v;
    }
    p->pos++;
    switch (c) {
    case 'n': return '\n';
    case 'r': return '\r';
    case 't': return '\t';
    case '\\': case '"': case '[': case ']': case '-': case '^': return c;
    case -1: return fail_at(p, at, "bad escape at the end of the grammar"), -1;
    default:
        if (c >= 0x20 && c < 0x7F) return fail_at(p, at, "bad escape: \\%c", c), -1;
        return fail_at(p, at, "bad escape"), -1;
    }
}

/* ------------------------------------------------------------ parsing */

static int parse_alternates(parser *p, int rule, int nested);

static int parse_literal(parser *p, int rule) {
    size_t open = p->pos++;
    while (peek(p) != '"') {
        if (at_end(p) || peek(p) == '\n' || peek(p) == '\r')
            return fail_at(p, open, "unbalanced '\"' (the string does not end on its line)");
        long c = parse_char(p);
        if (c < 0) return 0;
        unsigned char bytes[4];
        int n = utf8_encode((uint32_t)c, bytes);
        for (int i = 0; i < n; i++)
            if (!emit_byte_range(p, rule, bytes[i], bytes[i])) return 0;
    }
    p->pos++;
    return 1;
}

static int parse_class(parser *p, int rule) {
    size_t open = p->pos++;
    int negate = 0;
    if (peek(p) == '^') {
        negate = 1;
        p->pos++;
    }
    cp_range *r = NULL;
    size_t n = 0, cap = 0;
    int ok = 1;
    while (ok && peek(p) != ']') {
        if (at_end(p) || peek(p) == '\n' || peek(p) == '\r') {
            ok = fail_at(p, open, "unbalanced '[' (the class does not end on its line)");
            break;
        }
        size_t at = p->pos;
        long lo = parse_char(p), hi = lo;
        if (lo < 0) {
            ok = 0;
            break;
        }
        if (peek(p) == '-' && p->pos + 1 < p->len && p->text[p->pos + 1] != ']') {
            p->pos++;
            hi = parse_char(p);
            if (hi < 0) {
                ok = 0;
                break;
            }
            if (hi < lo) {
                ok = fail_at(p, at, "bad range: its end comes before its start");
                break;
            }
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 8;
            cp_range *g = realloc(r, cap * sizeof *r);
            if (!g) {
                ok = oom(p);
                break;
            }
            r = g;
        }
        r[n++] = (cp_range){(uint32_t)lo, (uint32_t)hi};
    }
    if (ok) {
        p->pos++;
        ok = emit_char_class(p, rule, r, n, negate, open);
    }
    free(r);
    return ok;
}

/* `.`: any character; the rule of its byte sequences is made once. */
static int parse_any(parser *p, int rule) {
    size_t at = p->pos++;
    if (p->any_elem) return emit(p, rule, p->any_elem);
    cp_range all = {0, 0x10FFFF};
    if (!emit_char_class(p, rule, &all, 1, 0, at)) return 0;
    p->any_elem = p->rules[rule].body[p->rules[rule].n - 1];
    return 1;
}

static int parse_number(parser *p, long *out) {
    if (peek(p) < '0' || peek(p) > '9') return fail_at(p, p->pos, "expected a number");
    long v = 0;
    while (peek(p) >= '0' && peek(p) <= '9') {
        if (v <= MAX_REPEAT) v = v * 10 + (peek(p) - '0');
        p->pos++;
    }
    *out = v;
    return 1;
}

/* Applies a repetition to the item at body[start..) of `rule`. */
static int repeat(parser *p, int rule, size_t start, long min, long max, size_t at) {
    if (min > MAX_REPEAT || max > MAX_REPEAT)
        return fail_at(p, at, "repetition count larger than %d", MAX_REPEAT);
    if (max >= 0 && max < min) return fail_at(p, at, "bad repetition: {m,n} with n < m");
    /* What it will cost, checked before anything is built. */
    size_t cost = (size_t)min + (max < 0 ? 6 : (size_t)(max - min) * 5) + 4;
    if (p->total + cost > L2_GRAMMAR_MAX_ELEMS)
        return fail_at(p, at, "the grammar is too large (more than %u elements)", L2_GRAMMAR_MAX_ELEMS);
    const size_t count = p->rules[rule].n - start;
    uint32_t item;
    if (count == 1) {
        item = p->rules[rule].body[start];
    } else {
        /* Several elements (a literal), or none (""): into a rule of their own. */
        int sub = new_rule(p, NULL, 0, at);
        if (sub < 0) return 0;
        for (size_t i = 0; i < count; i++)
            if (!emit(p, sub, p->rules[rule].body[start + i])) return 0;
        if (!emit(p, sub, L2_G_ELEM(L2_G_END, 0))) return 0;
        item = L2_G_ELEM(L2_G_REF, sub);
    }
    p->total -= count;
    p->rules[rule].n = start;
    for (long i = 0; i < min; i++)
        if (!emit(p, rule, item)) return 0;
    if (max < 0) {
        int star = new_rule(p, NULL, 0, at); /* star ::= item star | (nothing) */
        if (star < 0) return 0;
        return emit(p, star, item) && emit(p, star, L2_G_ELEM(L2_G_REF, star)) &&
               emit(p, star, L2_G_ELEM(L2_G_ALT, 0)) && emit(p, star, L2_G_ELEM(L2_G_END, 0)) &&
               emit(p, rule, L2_G_ELEM(L2_G_REF, star));
    }
    /* opt_1 ::= item | (nothing); opt_j ::= item opt_(j-1) | (nothing) */
    int inner = -1;
    for (long j = 0; j < max - min; j++) {
        int opt = new_rule(p, NULL, 0, at);
        if (opt < 0) return 0;
        if (!emit(p, opt, item) || (inner >= 0 && !emit(p, opt, L2_G_ELEM(L2_G_REF, inner))) ||
            !emit(p, opt, L2_G_ELEM(L2_G_ALT, 0)) || !emit(p, opt, L2_G_ELEM(L2_G_END, 0)))
            return 0;
        inner = opt;
    }
    return inner < 0 || emit(p, rule, L2_G_ELEM(L2_G_REF, inner));
}

/* One alternative: items until `|`, `)`, the end of the line (top level)
 * or of the text. */
static int parse_sequence(parser *p, int rule, int nested) {
    size_t begin = p->pos;
    size_t last = SIZE_MAX; /* where the last item's elements start */
    int items = 0;
    for (;;) {
        int c = peek(p);
        size_t start = p->rules[rule].n, at = p->pos;
        int ok;
        if (c == '"') {
            ok = parse_literal(p, rule);
        } else if (c == '[') {
            ok = parse_class(p, rule);
        } else if (c == '.') {
            ok = parse_any(p, rule);
        } else if (c == '(') {
            if (p->depth >= L2_GRAMMAR_MAX_NESTING)
                return fail_at(p, at, "groups nested more than %d deep", L2_GRAMMAR_MAX_NESTING);
            p->pos++;
            int sub = new_rule(p, NULL, 0, at);
            if (sub < 0) return 0;
            p->depth++;
            skip_space(p, 1);
            ok = parse_alternates(p, sub, 1);
            p->depth--;
            if (ok && peek(p) != ')') return fail_at(p, at, "unbalanced '(' (no ')' closes it)");
            p->pos++;
            ok = ok && emit(p, sub, L2_G_ELEM(L2_G_END, 0)) && emit(p, rule, L2_G_ELEM(L2_G_REF, sub));
        } else if (is_name_char(c)) {
            size_t n = 0;
            while (is_name_char(peek(p))) {
                p->pos++;
                n++;
            }
            size_t after = p->pos;
            skip_space(p, 0);
            if (p->len - p->pos >= 3 && memcmp(p->text + p->pos, "::=", 3) == 0)
                return fail_at(p, at, "a rule must start on a new line");
            p->pos = after;
            int id = rule_named(p, p->text + at, n, at);
            ok = id >= 0 && emit(p, rule, L2_G_ELEM(L2_G_REF, id));
        } else if (c == '*' || c == '+' || c == '?' || c == '{') {
            if (last == SIZE_MAX) return fail_at(p, at, "'%c' repeats nothing", c);
            long min = 0, max = -1;
            p->pos++;
            if (c == '+') {
                min = 1;
            } else if (c == '?') {
                max = 1;
            } else if (c == '{') {
                skip_space(p, nested);
                if (!parse_number(p, &min)) return 0;
                skip_space(p, nested);
                max = min;
                if (peek(p) == ',') {
                    p->pos++;
                    skip_space(p, nested);
                    max = -1;
                    if (peek(p) >= '0' && peek(p) <= '9' && !parse_number(p, &max)) return 0;
                    skip_space(p, nested);
                }
                if (peek(p) != '}') return fail_at(p, at, "unbalanced '{' (expected '}')");
                p->pos++;
            }
            ok = repeat(p, rule, last, min, max, at);
            start = last; /* a repeated item may not be repeated again */
            last = SIZE_MAX;
            if (!ok) return 0;
            skip_space(p, nested);
            items++;
            continue;
        } else {
            break;
        }
        if (!ok) return 0;
        last = start;
        items++;
        skip_space(p, nested);
    }
    if (items == 0) {
        int c = peek(p);
        if (c == ')' && !nested) return fail_at(p, p->pos, "unbalanced ')'");
        if (c == -1 || c == '|' || c == ')' || c == '\n' || c == '\r')
            return fail_at(p, begin, "empty alternative (write \"\" for the empty string)");
        return fail_at(p, p->pos, "unexpected '%c'", c);
    }
    return 1;
}

static int parse_alternates(parser *p, int rule, int nested) {
    if (!parse_sequence(p, rule, nested)) return 0;
    while (peek(p) == '|') {
        p->pos++;
        skip_space(p, 1);
        if (!emit(p, rule, L2_G_ELEM(L2_G_ALT, 0)) || !parse_sequence(p, rule, nested)) return 0;
    }
    return 1;
}

static int parse_rules(parser *p) {
    skip_space(p, 1);
    while (!at_end(p)) {
        size_t at = p->pos, n = 0;
        while (is_name_char(peek(p))) {
            p->pos++;
            n++;
        }
        if (n == 0) {
            if (peek(p) == ')') return fail_at(p, at, "unbalanced ')'");
            return fail_at(p, at, "expected a rule name");
        }
        int id = rule_named(p, p->text + at, n, at);
        if (id < 0) return 0;
        if (p->rules[id].defined) return fail_at(p, at, "rule '%.*s' defined twice", (int)n, p->text + at);
        p->rules[id].defined = 1;
        p->rules[id].pos = at;
        p->current = id;
        skip_space(p, 0);
        if (p->len - p->pos < 3 || memcmp(p->text + p->pos, "::=", 3) != 0)
            return fail_at(p, p->pos, "expected '::=' after the rule name");
        p->pos += 3;
        skip_space(p, 1);
        if (!parse_alternates(p, id, 0) || !emit(p, id, L2_G_ELEM(L2_G_END, 0))) return 0;
        int c = peek(p);
        if (c == ')') return fail_at(p, p->pos, "unbalanced ')'");
        if (c != -1 && c != '\n' && c != '\r') return fail_at(p, p->pos, "unexpected '%c'", c);
        skip_space(p, 1);
    }
    return 1;
}

/* ------------------------------------------------------------ checks */

/* Which rules can match the empty text: a work list over the alternatives
 * made only of references, each counting the references not yet known to
 * be nullable. */
static int find_nullable(parser *p, const llama2_grammar *g, uint8_t *nullable) {
    const int nr = g->n_rules;
    size_t n_alts = 0;
    for (size_t i = 0; i < g->n_elems; i++) n_alts += L2_G_KIND(g->elems[i]) <= L2_G_ALT;
    int *alt_rule = malloc(n_alts * sizeof *alt_rule);
    int *pending = malloc(n_alts * sizeof *pending);
    size_t *occ_start = calloc((size_t)nr + 1, sizeof *occ_start);
    int *stack = malloc(((size_t)nr + 1) * sizeof *stack);
    int *occ = NULL;
    int ok = alt_rule && pending && occ_start && stack;
    size_t n_refs = 0;
    if (ok) {
        /* Pass 1: per alternative, its rule and whether it is made of refs only. */
        size_t a = 0;
        for (int r = 0; r < nr; r++) {
            size_t i = g->rule_start[r];
            for (;;) {
                int refs = 0, bytes = 0;
                for (; L2_G_KIND(g->elems[i]) > L2_G_ALT; i++) {
                    if (L2_G_KIND(g->elems[i]) == L2_G_REF) {
                        refs++;
                        occ_start[L2_G_ARG(g->elems[i])]++;
                    } else {
                        bytes = 1;
                    }
                }
                alt_rule[a] = r;
                pending[a] = bytes ? -1 : refs;
                n_refs += (size_t)refs;
                a++;
                if (L2_G_KIND(g->elems[i++]) == L2_G_END) break;
            }
        }
        for (int r = 0, sum = 0; r <= nr; r++) {
            size_t c = occ_start[r];
            occ_start[r] = (size_t)sum;
            sum += (int)c;
        }
        occ = malloc((n_refs ? n_refs : 1) * sizeof *occ);
        ok = occ != NULL;
    }
    if (ok) {
        size_t *fill = calloc((size_t)nr + 1, sizeof *fill);
        ok = fill != NULL;
        size_t a = 0;
        for (int r = 0; ok && r < nr; r++) {
            size_t i = g->rule_start[r];
            for (;;) {
                for (; L2_G_KIND(g->elems[i]) > L2_G_ALT; i++)
                    if (L2_G_KIND(g->elems[i]) == L2_G_REF) {
                        uint32_t t = L2_G_ARG(g->elems[i]);
                        occ[occ_start[t] + fill[t]++] = (int)a;
                    }
                a++;
                if (L2_G_KIND(g->elems[i++]) == L2_G_END) break;
            }
        }
        free(fill);
    }
    if (ok) {
        int top = 0;
        for (size_t a = 0; a < n_alts; a++)
            if (pending[a] == 0 && !nullable[alt_rule[a]]) {
                nullable[alt_rule[a]] = 1;
                stack[top++] = alt_rule[a];
            }
        while (top > 0) {
            int r = stack[--top];
            for (size_t k = occ_start[r]; k < occ_start[r + 1]; k++) {
                int a = occ[k];
                if (pending[a] > 0 && --pending[a] == 0 && !nullable[alt_rule[a]]) {
                    nullable[alt_rule[a]] = 1;
                    stack[top++] = alt_rule[a];
                }
            }
        }
    }
    free(alt_rule);
    free(pending);
    free(occ_start);
    free(stack);
    free(occ);
    return ok ? 1 : oom(p);
}

/* Left recursion: a rule that can reach itself before matching a byte (the
 * matcher would loop). A depth-first search over the edges rule -> the
 * rules each of its alternatives can start with. */
static int check_left_recursion(parser *p, const llama2_grammar *g) {
    const int nr = g->n_rules;
    uint8_t *nullable = calloc((size_t)nr, 1);
    uint8_t *color = calloc((size_t)nr, 1); /* 0 new, 1 on the path, 2 done */
    struct frame {
        int rule;
        size_t at; /* the next element to look at */
        int skipping; /* 1: past a non-nullable element, go to the next alternative */
    } *stack = malloc((size_t)nr * sizeof *stack);
    if (!nullable || !color || !stack) {
        free(nullable);
        free(color);
        free(stack);
        return oom(p);
    }
    int ok = find_nullable(p, g, nullable);
    for (int start = 0; ok && start < nr; start++) {
        if (color[start]) continue;
        int top = 0;
        stack[top++] = (struct frame){start, g->rule_start[start], 0};
        color[start] = 1;
        while (top > 0 && ok) {
            struct frame *f = &stack[top - 1];
            uint32_t e = g->elems[f->at];
            unsigned kind = L2_G_KIND(e);
            if (kind == L2_G_END) {
                color[f->rule] = 2;
                top--;
                continue;
            }
            f->at++;
            if (kind == L2_G_ALT) {
                f->skipping = 0;
                continue;
            }
            if (f->skipping) continue;
            if (kind == L2_G_BYTES) {
                f->skipping = 1;
                continue;
            }
            int t = (int)L2_G_ARG(e);
            if (!nullable[t]) f->skipping = 1;
            if (color[t] == 1) {
                /* Report the named rule the cycle goes through. */
                const prule *r = &p->rules[p->rules[t].owner];
                ok = fail_at(p, p->rules[t].pos,
                             "left recursion: rule '%.*s' can reach itself before matching any character",
                             (int)r->name_len, r->name);
            } else if (color[t] == 0) {
                color[t] = 1;
                stack[top++] = (struct frame){t, g->rule_start[t], 0};
            }
        }
    }
    free(nullable);
    free(color);
    free(stack);
    return ok;
}

/* ------------------------------------------------------------ the whole */

/* Where each alternative starts, so that the matcher need not scan rules. */
static int index_alternatives(llama2_grammar *g) {
    size_t n_alts = 0;
    for (size_t i = 0; i < g->n_elems; i++) n_alts += L2_G_KIND(g->elems[i]) <= L2_G_ALT;
    g->rule_alts = malloc(((size_t)g->n_rules + 1) * sizeof *g->rule_alts);
    g->alt_start = malloc(n_alts * sizeof *g->alt_start);
    if (!g->rule_alts || !g->alt_start) return 0;
    uint32_t a = 0;
    for (int r = 0; r < g->n_rules; r++) {
        g->rule_alts[r] = a;
        uint32_t i = g->rule_start[r];
        g->alt_start[a++] = i;
        for (; L2_G_KIND(g->elems[i]) != L2_G_END; i++)
            if (L2_G_KIND(g->elems[i]) == L2_G_ALT) g->alt_start[a++] = i + 1;
    }
    g->rule_alts[g->n_rules] = a;
    return 1;
}

static void free_parser(parser *p) {
    for (int i = 0; i < p->n_rules; i++) free(p->rules[i].body);
    free(p->rules);
    free(p->table);
    free(p->sets);
}

void llama2_grammar_free(llama2_grammar *g) {
    if (!g) return;
    free(g->elems);
    free(g->rule_start);
    free(g->rule_alts);
    free(g->alt_start);
    free(g->sets);
    free(g);
}

llama2_status llama2_grammar_parse(const char *text, size_t len, llama2_grammar **out, llama2_error *err) {
    *out = NULL;
    if (!text) return l2_fail(err, LLAMA2_E_INVALID, "no grammar text");
    parser p = {.text = text, .len = len, .err = err};
    int ok = parse_rules(&p);
    int root = -1;
    if (ok) {
        for (int i = 0; i < p.n_rules; i++) {
            const prule *r = &p.rules[i];
            if (r->name && !r->defined) {
                ok = fail_at(&p, r->ref_pos, "unknown rule '%.*s'", (int)r->name_len, r->name);
                break;
            }
            if (r->name && r->name_len == 4 && memcmp(r->name, "root", 4) == 0) root = i;
        }
        if (ok && root < 0) ok = fail_at(&p, len, "no rule named 'root' (where the text starts)");
    }
    llama2_grammar *g = NULL;
    if (ok) {
        g = calloc(1, sizeof *g);
        ok = g != NULL;
        if (ok) {
            g->n_rules = p.n_rules;
            g->n_sets = p.n_sets;
            g->root = root;
            g->n_elems = p.total;
            g->elems = malloc((p.total ? p.total : 1) * sizeof *g->elems);
            g->rule_start = malloc((size_t)p.n_rules * sizeof *g->rule_start);
            g->sets = malloc((size_t)(p.n_sets ? p.n_sets : 1) * sizeof *g->sets);
            ok = g->elems && g->rule_start && g->sets;
        }
        if (ok) {
            size_t at = 0;
            for (int i = 0; i < p.n_rules; i++) {
                g->rule_start[i] = (uint32_t)at;
                memcpy(g->elems + at, p.rules[i].body, p.rules[i].n * sizeof *g->elems);
                at += p.rules[i].n;
            }
            if (p.n_sets) memcpy(g->sets, p.sets, (size_t)p.n_sets * sizeof *g->sets);
            ok = index_alternatives(g) ? check_left_recursion(&p, g) : oom(&p);
        } else {
            oom(&p);
        }
    }
    free_parser(&p);
    if (!ok) {
        llama2_grammar_free(g);
        return err ? err->status : LLAMA2_E_INVALID;
    }
    *out = g;
    return LLAMA2_OK;
}
