/*
 * JSON Schema to GBNF. Each schema becomes a rule (s1, s2, ...); the JSON
 * building blocks (j-string, j-number, j-ws...) are written once at the
 * end, those used. Whitespace is allowed where JSON allows it, a few
 * characters at most, so that a model cannot pad forever. A u-escape is
 * never a surrogate: a string's length is then its characters'.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_safe.h"
#include "platform/checks.h"
#include "json_schema.h"

#define MAX_DEPTH 64
#define MAX_REFS 256
#define MAX_BOUND 100000                   /* the largest count a repetition may have */
#define INT_LIMIT 9999999999999999LL       /* integers have at most 16 digits */

/* ------------------------------------------------------------ text */

typedef struct sbuf {
    char *p;
    size_t n, cap;
    int oom;
} sbuf;

static void put_n(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void put(sbuf *b, const char *s) { put_n(b, s, strlen(s)); }

static void putf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(sbuf *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    put_n(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* s[0..n) as a GBNF string literal. */
static void put_literal(sbuf *b, const char *s, size_t n) {
    put(b, "\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char e[3] = {'\\', (char)c, 0};
            put(b, e);
        } else if (c < 0x20 || c == 0x7F) {
            putf(b, "\\x%02X", c);
        } else {
            put_n(b, (const char *)&c, 1);
        }
    }
    put(b, "\"");
}

/* ------------------------------------------------------------ state */

enum {
    USE_WS = 1 << 0, USE_STRING = 1 << 1, USE_CHAR = 1 << 2, USE_NUMBER = 1 << 3, USE_INTEGER = 1 << 4,
    USE_BOOLEAN = 1 << 5, USE_NULL = 1 << 6, USE_VALUE = 1 << 7, USE_DATE = 1 << 8, USE_TIME = 1 << 9,
    USE_UUID = 1 << 10,
};

typedef struct conv {
    const json_t *root;
    sbuf out;
    int next_id;
    struct {
        const json_t *target;
        int id;
    } refs[MAX_REFS];
    int n_refs;
    unsigned used;
    char path[1024];
    size_t path_len;
    int depth;
    llama2_error *err;
    int failed;
} conv;

static int fail(conv *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(conv *c, const char *fmt, ...) {
    if (c->failed) return 0;
    c->failed = 1;
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c->err) {
        c->err->status = LLAMA2_E_INVALID;
        /* a deep path is shortened to its end, so that the message stays whole */
        const size_t keep = 80;
        const char *path = c->path_len > keep ? c->path + c->path_len - keep : c->path;
        while (path > c->path && *path && *path != '/') path++; /* whole names */
        snprintf(c->err->message, sizeof c->err->message, "#%s%.80s: %.160s", c->path_len > keep ? "..." : "", path, msg);
        l2_message_one_line(c->err->message); /* names from the schema may hold newlines */
    }
    return 0;
}

static size_t push_path(conv *c, const char *a, const char *b) {
    size_t saved = c->path_len;
    int n = snprintf(c->path + c->path_len, sizeof c->path - c->path_len, "/%s%s%s", a, b ? "/" : "", b ? b : "");
    if (n > 0) c->path_len += (size_t)n < sizeof c->path - c->path_len ? (size_t)n : sizeof c->path - c->path_len - 1;
    return saved;
}
static size_t push_index(conv *c, const char *a, size_t i) {
    char num[32];
    snprintf(num, sizeof num, "%zu", i);
    return push_path(c, a, num);
}
static void pop_path(conv *c, size_t saved) {
    c->path_len = saved;
    c->path[saved] = 0;
}

static const char *const annotations[] = {"title", "description", "default", "examples", "$schema", "$id",
                                          "$comment", "readOnly", "writeOnly", "deprecated", "$defs",
                                          "definitions"};
static const char *const keywords[] = {"type", "properties", "required", "additionalProperties", "items",
                                       "prefixItems", "minItems", "maxItems", "enum", "const", "anyOf", "oneOf",
                                       "allOf", "$ref", "minLength", "maxLength", "format", "minimum", "maximum",
                                       "exclusiveMinimum", "exclusiveMaximum"};

static int in_list(const char *k, const char *const *list, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(k, list[i])) return 1;
    return 0;
}
#define IN(k, list) in_list(k, list, sizeof list / sizeof list[0])

static int gen(conv *c, const json_t *s, int *id);

/* ------------------------------------------------------------ leaves */

static int non_negative_count(conv *c, const json_t *s, const char *key, long *out) {
    const json_t *v = json_object_get(s, key);
    if (!v) return 1;
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return fail(c, "'%s' must be a non-negative integer", key);
    if (json_integer_value(v) > MAX_BOUND) return fail(c, "'%s' above %d is not supported", key, MAX_BOUND);
    *out = (long)json_integer_value(v);
    return 1;
}

static void put_bounds(sbuf *b, long min, long max) {
    if (max < 0)
        putf(b, "{%ld,}", min);
    else
        putf(b, "{%ld,%ld}", min, max);
}

static int gen_string(conv *c, const json_t *s, sbuf *b) {
    const json_t *format = json_object_get(s, "format");
    long min = 0, max = -1;
    if (!non_negative_count(c, s, "minLength", &min) || !non_negative_count(c, s, "maxLength", &max)) return 0;
    if (max >= 0 && max < min) return fail(c, "'maxLength' is less than 'minLength'");
    if (format) {
        const char *f = json_string_value(format);
        if (!f) return fail(c, "'format' must be a string");
        if (json_object_get(s, "minLength") || json_object_get(s, "maxLength"))
            return fail(c, "'format' with 'minLength' or 'maxLength' is not supported");
        if (!strcmp(f, "date")) {
            c->used |= USE_DATE;
            put(b, "\"\\\"\" j-date \"\\\"\"");
        } else if (!strcmp(f, "time")) {
            c->used |= USE_TIME;
            put(b, "\"\\\"\" j-time \"\\\"\"");
        } else if (!strcmp(f, "date-time")) {
            c->used |= USE_DATE | USE_TIME;
            put(b, "\"\\\"\" j-date \"T\" j-time \"\\\"\"");
        } else if (!strcmp(f, "uuid")) {
            c->used |= USE_UUID;
            put(b, "\"\\\"\" j-uuid \"\\\"\"");
        } else {
            return fail(c, "unsupported format '%s' (date, time, date-time and uuid are)", f);
        }
        return 1;
    }
    c->used |= USE_CHAR;
    put(b, "\"\\\"\" j-char");
    put_bounds(b, min, max);
    put(b, " \"\\\"\"");
    return 1;
}

static int digits_of(long long x) {
    int d = 1;
    while (x >= 10) x /= 10, d++;
    return d;
}

/* Integers of L digits from sa to sb (the same length, sa <= sb). */
static void same_length(sbuf *b, const char *sa, const char *sb, int L) {
    if (L == 1) {
        putf(b, "[%c-%c]", sa[0], sb[0]);
        return;
    }
    if (sa[0] == sb[0]) {
        putf(b, "\"%c\" ", sa[0]);
        same_length(b, sa + 1, sb + 1, L - 1);
        return;
    }
    int zeros = 1, nines = 1;
    for (int i = 1; i < L; i++) zeros &= sa[i] == '0', nines &= sb[i] == '9';
    if (zeros && nines) {
        putf(b, "[%c-%c] [0-9]{%d}", sa[0], sb[0], L - 1);
        return;
    }
    char all9[20], all0[20];
    memset(all9, '9', sizeof all9);
    memset(all0, '0', sizeof all0);
    put(b, "(");
    putf(b, "\"%c\" ", sa[0]);
    same_length(b, sa + 1, all9, L - 1);
    if (sa[0] + 1 <= sb[0] - 1) putf(b, " | [%c-%c] [0-9]{%d}", sa[0] + 1, sb[0] - 1, L - 1);
    putf(b, " | \"%c\" ", sb[0]);
    same_length(b, all0, sb + 1, L - 1);
    put(b, ")");
}

/* The integers from a to b, 0 <= a <= b, as alternatives. */
static void non_negative_range(sbuf *b, long long a, long long bnd) {
    int first = 1;
    put(b, "(");
    for (int L = digits_of(a); L <= digits_of(bnd); L++) {
        long long lo = a, hi = bnd, p = 1;
        for (int i = 1; i < L; i++) p *= 10;
        if (L > digits_of(a)) lo = L == 1 ? 0 : p;
        if (L < digits_of(bnd)) hi = p * 10 - 1;
        char sa[24], sb[24];
        snprintf(sa, sizeof sa, "%lld", lo); /* L digits: lo >= 10^(L-1), or 0 */
        snprintf(sb, sizeof sb, "%lld", hi);
        if (!first) put(b, " | ");
        first = 0;
        same_length(b, sa, sb, L);
    }
    put(b, ")");
}

/* A bound of an integer: minimum (or exclusiveMinimum, one more) and the like. */
static int integer_bound(conv *c, const json_t *s, const char *key, const char *exclusive, int upper, long long *out) {
    const json_t *v = json_object_get(s, key), *x = json_object_get(s, exclusive);
    if (v && !json_is_number(v)) return fail(c, "'%s' must be a number", key);
    if (x && !json_is_number(x)) return fail(c, "'%s' must be a number", exclusive);
    double bound = upper ? (double)INT_LIMIT : -(double)INT_LIMIT;
    if (v) {
        double d = upper ? floor(json_number_value(v)) : ceil(json_number_value(v));
        bound = upper ? fmin(bound, d) : fmax(bound, d);
    }
    if (x) {
        double d = json_number_value(x);
        d = upper ? ceil(d) - 1 : floor(d) + 1;
        bound = upper ? fmin(bound, d) : fmax(bound, d);
    }
    if (!(fabs(bound) <= (double)INT_LIMIT))
        return fail(c, "'%s' beyond 16 digits is not supported", v ? key : exclusive);
    *out = (long long)bound;
    return 1;
}

static int gen_integer(conv *c, const json_t *s, sbuf *b) {
    long long lo, hi;
    if (!integer_bound(c, s, "minimum", "exclusiveMinimum", 0, &lo) ||
        !integer_bound(c, s, "maximum", "exclusiveMaximum", 1, &hi))
        return 0;
    if (lo > hi) return fail(c, "no integer is between the minimum and the maximum");
    if (lo == -INT_LIMIT && hi == INT_LIMIT) {
        c->used |= USE_INTEGER;
        put(b, "j-integer");
        return 1;
    }
    if (lo >= 0) {
        non_negative_range(b, lo, hi);
    } else if (hi < 0) {
        put(b, "\"-\" ");
        non_negative_range(b, -hi, -lo);
    } else {
        put(b, "(\"-\" ");
        non_negative_range(b, 1, -lo);
        put(b, " | ");
        non_negative_range(b, 0, hi);
        put(b, ")");
    }
    return 1;
}

static int put_json_literal(conv *c, const json_t *v, sbuf *b) {
    char *text = l2_json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    if (!text) return fail(c, "out of memory");
    put_literal(b, text, strlen(text));
    free(text);
    return 1;
}

/* ------------------------------------------------------------ objects */

/* Whether key is a property listed in `properties`. */
static int new_rule_id(conv *c) { return ++c->next_id; }

static int gen_object(conv *c, const json_t *s, const json_t *props, const json_t *required, const json_t *additional,
                      sbuf *b) {
    if (props && !json_is_object(props)) return fail(c, "'properties' must be an object");
    if (required && !json_is_array(required)) return fail(c, "'required' must be an array");
    if (additional && !json_is_object(additional) && !json_is_boolean(additional))
        return fail(c, "'additionalProperties' must be a schema");
    c->used |= USE_WS;
    /* No properties and nothing said about others: any object. */
    if ((!props || json_object_size(props) == 0) && (!required || json_array_size(required) == 0) &&
        (!additional || json_is_true(additional))) {
        c->used |= USE_VALUE;
        put(b, "j-object");
        return 1;
    }
    /* The properties in order: those listed, then required ones not listed (any value). */
    size_t n = props ? json_object_size(props) : 0;
    size_t n_req = required ? json_array_size(required) : 0;
    const char **names = calloc(n + n_req + 1, sizeof *names);
    int *values = calloc(n + n_req + 1, sizeof *values);
    char *is_req = calloc(n + n_req + 1, 1);
    if (!names || !values || !is_req) {
        free(names);
        free(values);
        free(is_req);
        return fail(c, "out of memory");
    }
    size_t k = 0;
    int ok = 1;
    const char *key;
    json_t *sub;
    if (props) {
        json_object_foreach((json_t *)props, key, sub) {
            size_t saved = push_path(c, "properties", key);
            ok = gen(c, sub, &values[k]);
            pop_path(c, saved);
            if (!ok) break;
            names[k++] = key;
        }
    }
    for (size_t i = 0; ok && i < n_req; i++) {
        const char *r = json_string_value(json_array_get(required, i));
        if (!r) {
            ok = fail(c, "'required' must list strings");
            break;
        }
        size_t j = 0;
        while (j < k && strcmp(names[j], r)) j++;
        if (j == k) {
            names[k] = r;
            values[k] = 0; /* any value */
            k++;
        }
        is_req[j] = 1;
    }
    int extra = 0;
    if (ok && additional && !json_is_false(additional)) {
        if (json_is_true(additional)) {
            c->used |= USE_VALUE;
        } else {
            size_t saved = push_path(c, "additionalProperties", NULL);
            ok = gen(c, additional, &extra);
            pop_path(c, saved);
        }
        if (ok && !extra) extra = -1; /* any value */
    }
    if (ok) {
        /* a_i: properties from i on, none written yet; b_i: some written. */
        const int base = new_rule_id(c);
        c->used |= USE_STRING;
        for (size_t i = 0; i <= k; i++) {
            for (int after = 0; after < 2; after++) {
                putf(&c->out, "s%d-%c%zu ::= ", base, after ? 'b' : 'a', i);
                if (i == k) {
                    if (extra) {
                        char value[32], member[96];
                        if (extra < 0)
                            snprintf(value, sizeof value, "j-value");
                        else
                            snprintf(value, sizeof value, "s%d", extra);
                        snprintf(member, sizeof member, "j-string j-ws \":\" j-ws %s j-ws", value);
                        if (after)
                            putf(&c->out, "(\",\" j-ws %s)*", member);
                        else
                            putf(&c->out, "(%s (\",\" j-ws %s)*)?", member, member);
                    } else {
                        put(&c->out, "\"\"");
                    }
                    put(&c->out, "\n");
                    continue;
                }
                sbuf kv = {0};
                if (after) put(&kv, "\",\" j-ws ");
                json_t *jk = json_string(names[i]);
                char *encoded = jk ? l2_json_dumps(jk, JSON_ENCODE_ANY) : NULL;
                json_decref(jk);
                if (encoded) put_literal(&kv, encoded, strlen(encoded));
                else kv.oom = 1;
                free(encoded);
                if (values[i])
                    putf(&kv, " j-ws \":\" j-ws s%d j-ws", values[i]);
                else {
                    c->used |= USE_VALUE;
                    put(&kv, " j-ws \":\" j-ws j-value j-ws");
                }
                if (kv.oom) {
                    ok = fail(c, "out of memory");
                    free(kv.p);
                    break;
                }
                putf(&c->out, "%s s%d-b%zu", kv.p, base, i + 1);
                if (!is_req[i]) putf(&c->out, " | s%d-%c%zu", base, after ? 'b' : 'a', i + 1);
                put(&c->out, "\n");
                free(kv.p);
            }
        }
        putf(b, "\"{\" j-ws s%d-a0 \"}\"", base);
    }
    free(names);
    free(values);
    free(is_req);
    return ok;
}

/* allOf of objects: their properties, required lists and
 * additionalProperties together (each may be a $ref). */
static const json_t *resolve_ref(conv *c, const json_t *s);

static int gen_all_of(conv *c, const json_t *s, sbuf *b) {
    const json_t *all = json_object_get(s, "allOf");
    if (!json_is_array(all) || json_array_size(all) == 0) return fail(c, "'allOf' must be a non-empty array");
    json_t *props = json_object(), *required = json_array();
    const json_t *additional = NULL;
    int ok = props && required;
    /* the schema itself counts as one more part */
    size_t n = json_array_size(all);
    for (size_t i = 0; ok && i <= n; i++) {
        const json_t *part = i < n ? json_array_get(all, i) : s;
        size_t saved = i < n ? push_index(c, "allOf", i) : c->path_len;
        if (i < n) {
            part = resolve_ref(c, part);
            if (!part) ok = 0;
        }
        const char *key;
        json_t *v;
        if (ok && !json_is_object(part)) ok = fail(c, "'allOf' of objects only");
        if (ok) {
            json_object_foreach((json_t *)part, key, v) {
                if (IN(key, annotations) || (i == n && !strcmp(key, "allOf"))) continue;
                if (!strcmp(key, "type")) {
                    if (!json_is_string(v) || strcmp(json_string_value(v), "object")) {
                        ok = fail(c, "'allOf' of objects only");
                        break;
                    }
                } else if (!strcmp(key, "properties") && json_is_object(v)) {
                    json_object_update(props, v);
                } else if (!strcmp(key, "required") && json_is_array(v)) {
                    json_array_extend(required, v);
                } else if (!strcmp(key, "additionalProperties")) {
                    additional = v;
                } else {
                    ok = fail(c, "'allOf' of objects only: unsupported keyword '%s' in it", key);
                    break;
                }
            }
        }
        pop_path(c, saved);
    }
    if (ok) ok = gen_object(c, s, props, required, additional ? additional : json_false(), b);
    json_decref(props);
    json_decref(required);
    return ok;
}

/* ------------------------------------------------------------ arrays */

static int gen_array(conv *c, const json_t *s, sbuf *b) {
    const json_t *items = json_object_get(s, "items"), *prefix = json_object_get(s, "prefixItems");
    long min = 0, max = -1;
    if (!non_negative_count(c, s, "minItems", &min) || !non_negative_count(c, s, "maxItems", &max)) return 0;
    if (max >= 0 && max < min) return fail(c, "'maxItems' is less than 'minItems'");
    if (prefix && !json_is_array(prefix)) return fail(c, "'prefixItems' must be an array");
    c->used |= USE_WS;
    long k = prefix ? (long)json_array_size(prefix) : 0;
    if (max >= 0 && max < k) return fail(c, "'maxItems' is less than the 'prefixItems'");
    /* the values: k prefix items, then the rest */
    int *ids = calloc((size_t)k + 1, sizeof *ids);
    if (!ids) return fail(c, "out of memory");
    int ok = 1;
    for (long i = 0; ok && i < k; i++) {
        size_t saved = push_index(c, "prefixItems", (size_t)i);
        ok = gen(c, json_array_get(prefix, (size_t)i), &ids[i]);
        pop_path(c, saved);
    }
    int item = 0, more = 1;
    if (ok && items) {
        if (json_is_false(items)) {
            more = 0;
        } else {
            size_t saved = push_path(c, "items", NULL);
            ok = gen(c, items, &item);
            pop_path(c, saved);
        }
    } else if (prefix) {
        more = 0; /* prefixItems alone: just those */
    }
    if (ok && !more && min > k) ok = fail(c, "'minItems' is more than the items allowed");
    if (ok) {
        char value[32];
        if (item)
            snprintf(value, sizeof value, "s%d", item);
        else {
            c->used |= USE_VALUE;
            snprintf(value, sizeof value, "j-value");
        }
        put(b, "\"[\" j-ws ");
        for (long i = 0; i < k; i++) putf(b, "%ss%d j-ws ", i ? "\",\" j-ws " : "", ids[i]);
        if (more) {
            long lo = min > k ? min - k : 0, hi = max < 0 ? -1 : max - k;
            if (hi != 0) {
                if (k > 0) {
                    putf(b, "(\",\" j-ws %s j-ws)", value);
                    put_bounds(b, lo, hi);
                } else if (lo > 0) {
                    putf(b, "%s j-ws (\",\" j-ws %s j-ws)", value, value);
                    put_bounds(b, lo - 1, hi < 0 ? -1 : hi - 1);
                } else {
                    putf(b, "(%s j-ws (\",\" j-ws %s j-ws)", value, value);
                    put_bounds(b, 0, hi < 0 ? -1 : hi - 1);
                    put(b, ")?");
                }
            }
        }
        put(b, " \"]\"");
    }
    free(ids);
    return ok;
}

/* ------------------------------------------------------------ schemas */

/* The schema a $ref names (s itself when it has none); NULL on failure. */
static const json_t *resolve_ref(conv *c, const json_t *s) {
    const json_t *ref = json_is_object(s) ? json_object_get(s, "$ref") : NULL;
    if (!ref) return s;
    const char *r = json_string_value(ref);
    if (!r) return fail(c, "'$ref' must be a string"), NULL;
    if (!strcmp(r, "#")) return c->root;
    const char *name = NULL;
    const json_t *defs = NULL;
    if (!strncmp(r, "#/$defs/", 8)) {
        name = r + 8;
        defs = json_object_get(c->root, "$defs");
    } else if (!strncmp(r, "#/definitions/", 14)) {
        name = r + 14;
        defs = json_object_get(c->root, "definitions");
    } else {
        return fail(c, "'$ref' to '%s': only #, #/$defs/NAME and #/definitions/NAME are supported", r), NULL;
    }
    const json_t *target = json_is_object(defs) ? json_object_get(defs, name) : NULL;
    if (!target) return fail(c, "'$ref' to '%s': no such definition", r), NULL;
    return target;
}

static int gen_type(conv *c, const json_t *s, const char *type, sbuf *b) {
    if (!strcmp(type, "string")) return gen_string(c, s, b);
    if (!strcmp(type, "integer")) return gen_integer(c, s, b);
    if (!strcmp(type, "number")) {
        static const char *const bounds[] = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"};
        for (size_t i = 0; i < 4; i++)
            if (json_object_get(s, bounds[i]))
                return fail(c, "'%s' on a number is not supported (on an integer it is)", bounds[i]);
        c->used |= USE_NUMBER;
        put(b, "j-number");
        return 1;
    }
    if (!strcmp(type, "boolean")) {
        c->used |= USE_BOOLEAN;
        put(b, "j-boolean");
        return 1;
    }
    if (!strcmp(type, "null")) {
        c->used |= USE_NULL;
        put(b, "j-null");
        return 1;
    }
    if (!strcmp(type, "object")) {
        if (json_object_get(s, "allOf")) return gen_all_of(c, s, b);
        return gen_object(c, s, json_object_get(s, "properties"), json_object_get(s, "required"),
                          json_object_get(s, "additionalProperties"), b);
    }
    if (!strcmp(type, "array")) return gen_array(c, s, b);
    return fail(c, "unknown type '%s'", type);
}

/* The keywords each type reads, to refuse one that would be dropped. */
static int applies(const char *key, const char *type) {
    static const char *const string_keys[] = {"minLength", "maxLength", "format"};
    static const char *const integer_keys[] = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"};
    static const char *const object_keys[] = {"properties", "required", "additionalProperties", "allOf"};
    static const char *const array_keys[] = {"items", "prefixItems", "minItems", "maxItems"};
    if (IN(key, string_keys)) return !strcmp(type, "string");
    if (IN(key, integer_keys)) return !strcmp(type, "integer") || !strcmp(type, "number");
    if (IN(key, object_keys)) return !strcmp(type, "object");
    if (IN(key, array_keys)) return !strcmp(type, "array");
    return 1;
}

/* The types a schema without `type` means, from its keywords. */
static const char *implied_type(const json_t *s) {
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)s, key, v) {
        (void)v;
        if (!applies(key, "string")) continue;
        if (!strcmp(key, "minLength") || !strcmp(key, "maxLength") || !strcmp(key, "format")) return "string";
    }
    static const char *const order[] = {"object", "array", "integer"};
    for (size_t t = 0; t < 3; t++) {
        json_object_foreach((json_t *)s, key, v) {
            (void)v;
            if (!IN(key, annotations) && applies(key, order[t]) && !applies(key, "string") &&
                (strcmp(order[t], "integer") || strcmp(key, "type")))
                return order[t];
        }
    }
    return NULL;
}

static int gen_body(conv *c, const json_t *s, sbuf *b) {
    if (json_is_true(s)) {
        c->used |= USE_VALUE;
        put(b, "j-value");
        return 1;
    }
    if (json_is_false(s)) return fail(c, "the schema false matches nothing");
    if (!json_is_object(s)) return fail(c, "a schema must be an object or a boolean");
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)s, key, v) {
        if (!IN(key, annotations) && !IN(key, keywords)) return fail(c, "unsupported keyword '%s'", key);
    }
    /* Keywords that stand alone. */
    static const char *const alone[] = {"$ref", "const", "enum", "anyOf", "oneOf"};
    const char *which = NULL;
    json_object_foreach((json_t *)s, key, v) {
        if (IN(key, alone)) {
            if (which) return fail(c, "'%s' and '%s' together are not supported", which, key);
            which = key;
        }
    }
    if (which) {
        json_object_foreach((json_t *)s, key, v) {
            if (strcmp(key, which) && !IN(key, annotations) && strcmp(key, "type"))
                return fail(c, "'%s' beside '%s' is not supported", key, which);
        }
        const json_t *w = json_object_get(s, which);
        if (!strcmp(which, "$ref")) {
            const json_t *target = resolve_ref(c, s);
            if (!target) return 0;
            int id = 0;
            for (int i = 0; i < c->n_refs; i++)
                if (c->refs[i].target == target) id = c->refs[i].id;
            if (!id) {
                if (c->n_refs == MAX_REFS) return fail(c, "more than %d definitions", MAX_REFS);
                /* The rule's name is taken first, so that a reference back to it ends. */
                id = new_rule_id(c);
                c->refs[c->n_refs].target = target;
                c->refs[c->n_refs++].id = id;
                sbuf body = {0};
                size_t saved = push_path(c, "$ref", NULL);
                int ok = gen_body(c, target, &body);
                pop_path(c, saved);
                if (ok) putf(&c->out, "s%d ::= %s\n", id, body.p ? body.p : "\"\"");
                free(body.p);
                if (!ok) return 0;
            }
            putf(b, "s%d", id);
            return 1;
        }
        if (!strcmp(which, "const")) return put_json_literal(c, w, b);
        if (!json_is_array(w) || json_array_size(w) == 0) return fail(c, "'%s' must be a non-empty array", which);
        put(b, "(");
        for (size_t i = 0; i < json_array_size(w); i++) {
            if (i) put(b, " | ");
            if (!strcmp(which, "enum")) {
                if (!put_json_literal(c, json_array_get(w, i), b)) return 0;
            } else {
                int id;
                size_t saved = push_index(c, which, i);
                int ok = gen(c, json_array_get(w, i), &id);
                pop_path(c, saved);
                if (!ok) return 0;
                putf(b, "s%d", id);
            }
        }
        put(b, ")");
        return 1;
    }
    const json_t *type = json_object_get(s, "type");
    const char *types[8];
    size_t n_types = 0;
    if (!type) {
        const char *t = json_object_get(s, "allOf") ? "object" : implied_type(s);
        if (!t) {
            c->used |= USE_VALUE;
            put(b, "j-value");
            return 1;
        }
        types[n_types++] = t;
    } else if (json_is_string(type)) {
        types[n_types++] = json_string_value(type);
    } else if (json_is_array(type) && json_array_size(type) > 0 && json_array_size(type) <= 7) {
        for (size_t i = 0; i < json_array_size(type); i++) {
            types[n_types] = json_string_value(json_array_get(type, i));
            if (!types[n_types++]) return fail(c, "'type' must be a name or a list of names");
        }
    } else {
        return fail(c, "'type' must be a name or a list of names");
    }
    /* Every keyword must apply to one of the types. */
    json_object_foreach((json_t *)s, key, v) {
        int used = 0;
        for (size_t t = 0; t < n_types; t++) used |= applies(key, types[t]);
        if (!used) return fail(c, "'%s' does not apply to type '%s'", key, types[0]);
    }
    if (n_types > 1) put(b, "(");
    for (size_t t = 0; t < n_types; t++) {
        if (t) put(b, " | ");
        if (!gen_type(c, s, types[t], b)) return 0;
    }
    if (n_types > 1) put(b, ")");
    return 1;
}

/* A rule for schema s; its number in *id. */
static int gen(conv *c, const json_t *s, int *id) {
    if (c->failed) return 0;
    if (++c->depth > MAX_DEPTH) return fail(c, "schemas nested more than %d deep", MAX_DEPTH);
    sbuf body = {0};
    int ok = gen_body(c, s, &body);
    c->depth--;
    if (ok && body.oom) ok = fail(c, "out of memory");
    if (ok) {
        *id = new_rule_id(c);
        putf(&c->out, "s%d ::= ", *id);
        put(&c->out, body.p);
        put(&c->out, "\n");
    }
    free(body.p);
    return ok;
}

/* ------------------------------------------------------------ the whole */

static const char json_blocks[] =
    "j-value ::= j-object | j-array | j-string | j-number | j-boolean | j-null\n"
    "j-object ::= \"{\" j-ws (j-string j-ws \":\" j-ws j-value j-ws (\",\" j-ws j-string j-ws \":\" j-ws j-value "
    "j-ws)*)? \"}\"\n"
    "j-array ::= \"[\" j-ws (j-value j-ws (\",\" j-ws j-value j-ws)*)? \"]\"\n";

static void put_blocks(conv *c) {
    unsigned u = c->used;
    if (u & USE_VALUE) u |= USE_STRING | USE_NUMBER | USE_BOOLEAN | USE_NULL | USE_WS;
    if (u & USE_STRING) u |= USE_CHAR;
    sbuf *o = &c->out;
    if (c->used & USE_VALUE) put(o, json_blocks);
    if (u & USE_WS) put(o, "j-ws ::= \" \"? | \"\\n\" [ \\t]{0,20}\n");
    if (u & USE_STRING) put(o, "j-string ::= \"\\\"\" j-char* \"\\\"\"\n");
    if (u & USE_CHAR) put(o, "j-char ::= [^\"\\\\\\x7F\\x00-\\x1F] | \"\\\\\" ([\"\\\\/bfnrt] | \"u\" ([0-9a-cA-CefEF] [0-9a-fA-F]{3} | [dD] [0-7] [0-9a-fA-F]{2}))\n");
    if (u & USE_NUMBER)
        put(o, "j-number ::= \"-\"? (\"0\" | [1-9] [0-9]{0,15}) (\".\" [0-9]{1,16})? ([eE] [-+]? [0-9]{1,3})?\n");
    if (u & USE_INTEGER) put(o, "j-integer ::= \"-\"? (\"0\" | [1-9] [0-9]{0,15})\n");
    if (u & USE_BOOLEAN) put(o, "j-boolean ::= \"true\" | \"false\"\n");
    if (u & USE_NULL) put(o, "j-null ::= \"null\"\n");
    if (u & USE_DATE)
        put(o, "j-date ::= [0-9]{4} \"-\" (\"0\" [1-9] | \"1\" [0-2]) \"-\" (\"0\" [1-9] | [12] [0-9] | \"3\" [01])\n");
    if (u & USE_TIME)
        put(o, "j-time ::= ([01] [0-9] | \"2\" [0-3]) \":\" [0-5] [0-9] \":\" [0-5] [0-9] (\".\" [0-9]{1,6})? "
               "(\"Z\" | [+-] ([01] [0-9] | \"2\" [0-3]) \":\" [0-5] [0-9])\n");
    if (u & USE_UUID)
        put(o, "j-uuid ::= [0-9a-f]{8} \"-\" [0-9a-f]{4} \"-\" [0-9a-f]{4} \"-\" [0-9a-f]{4} \"-\" [0-9a-f]{12}\n");
}

llama2_status l2_json_schema_to_gbnf(const json_t *schema, char **gbnf, llama2_error *err) {
    *gbnf = NULL;
    conv c = {.root = schema, .err = err};
    int id = 0;
    if (gen(&c, schema, &id)) {
        putf(&c.out, "root ::= s%d\n", id);
        put_blocks(&c);
        if (c.out.oom) fail(&c, "out of memory");
    }
    if (c.failed) {
        free(c.out.p);
        return LLAMA2_E_INVALID;
    }
    *gbnf = c.out.p;
    return LLAMA2_OK;
}

llama2_status l2_json_schema_text_to_gbnf(const char *text, size_t len, char **gbnf, llama2_error *err) {
    *gbnf = NULL;
    json_error_t je;
    json_t *schema = l2_json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
    if (!schema) {
        if (err) {
            err->status = LLAMA2_E_INVALID;
            snprintf(err->message, sizeof err->message, "%d:%d: %s", je.line, je.column, je.text);
        }
        return LLAMA2_E_INVALID;
    }
    llama2_status s = l2_json_schema_to_gbnf(schema, gbnf, err);
    json_decref(schema);
    return s;
}

const char *l2_json_object_gbnf(void) {
    return "root ::= j-object\n"
           "j-value ::= j-object | j-array | j-string | j-number | j-boolean | j-null\n"
           "j-object ::= \"{\" j-ws (j-string j-ws \":\" j-ws j-value j-ws (\",\" j-ws j-string j-ws \":\" j-ws "
           "j-value j-ws)*)? \"}\"\n"
           "j-array ::= \"[\" j-ws (j-value j-ws (\",\" j-ws j-value j-ws)*)? \"]\"\n"
           "j-ws ::= \" \"? | \"\\n\" [ \\t]{0,20}\n"
           "j-string ::= \"\\\"\" j-char* \"\\\"\"\n"
           "j-char ::= [^\"\\\\\\x7F\\x00-\\x1F] | \"\\\\\" ([\"\\\\/bfnrt] | \"u\" ([0-9a-cA-CefEF] [0-9a-fA-F]{3} | [dD] [0-7] [0-9a-fA-F]{2}))\n"
           "j-number ::= \"-\"? (\"0\" | [1-9] [0-9]{0,15}) (\".\" [0-9]{1,16})? ([eE] [-+]? [0-9]{1,3})?\n"
           "j-boolean ::= \"true\" | \"false\"\n"
           "j-null ::= \"null\"\n";
}

/* Compiles gbnf, or the grammar of any JSON object when NULL. */
static llama2_status compile(char *gbnf, llama2_grammar **out, llama2_error *err) {
    const char *g = gbnf ? gbnf : l2_json_object_gbnf();
    llama2_status s = llama2_grammar_parse(g, strlen(g), out, err);
    if (s == LLAMA2_E_INVALID && err && strstr(err->message, "left recursion")) {
        snprintf(err->message, sizeof err->message, "#: a '$ref' cycle that never writes a character");
    } else if (s == LLAMA2_E_INVALID && err) {
        /* the position is in the grammar made, not in the schema: left out */
        char inner[sizeof err->message];
        const char *what = strstr(err->message, ": ");
        snprintf(inner, sizeof inner, "%s", what ? what + 2 : err->message);
        snprintf(err->message, sizeof err->message, "#: the schema makes a grammar that is refused: %.200s", inner);
    }
    free(gbnf);
    return s;
}

llama2_status l2_json_schema_grammar(const char *text, size_t len, llama2_grammar **out, llama2_error *err) {
    *out = NULL;
    char *gbnf = NULL;
    if (text) {
        llama2_status s = l2_json_schema_text_to_gbnf(text, len, &gbnf, err);
        if (s != LLAMA2_OK) return s;
    }
    return compile(gbnf, out, err);
}

llama2_status l2_json_schema_value_grammar(const json_t *schema, llama2_grammar **out, llama2_error *err) {
    *out = NULL;
    char *gbnf = NULL;
    if (schema) {
        llama2_status s = l2_json_schema_to_gbnf(schema, &gbnf, err);
        if (s != LLAMA2_OK) return s;
    }
    return compile(gbnf, out, err);
}
