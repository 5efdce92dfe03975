/* Protocol buffer wire format: https://protobuf.dev/programming-guides/encoding/ */
#include <stdlib.h>
#include <string.h>

#include "protobuf.h"

l2_pb_reader l2_pb_reader_of(const void *data, size_t size) {
    l2_pb_reader r = {data, data, (const unsigned char *)data + size, NULL};
    return r;
}

static int fail(l2_pb_reader *r, const char *why) {
    if (!r->error) r->error = why;
    return 0;
}

size_t l2_pb_offset(const l2_pb_reader *r) { return (size_t)(r->p - r->start); }

int l2_pb_varint(l2_pb_reader *r, uint64_t *value) {
    if (r->error) return 0;
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (r->p == r->end) return fail(r, "truncated varint");
        const unsigned char b = *r->p++;
        if (shift == 63 && b > 1) return fail(r, "varint longer than 64 bits");
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *value = v;
            return 1;
        }
    }
    return fail(r, "varint longer than 10 bytes");
}

int l2_pb_next_field(l2_pb_reader *r, uint32_t *field, int *wire) {
    if (r->error || r->p == r->end) return 0;
    uint64_t key;
    if (!l2_pb_varint(r, &key)) return 0;
    if (key >> 3 == 0 || key >> 3 > 0x1fffffff) return fail(r, "bad field number");
    *field = (uint32_t)(key >> 3);
    *wire = (int)(key & 7);
    return 1;
}

int l2_pb_fixed32(l2_pb_reader *r, uint32_t *value) {
    if (r->error) return 0;
    if (r->end - r->p < 4) return fail(r, "truncated 32-bit value");
    *value = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 | (uint32_t)r->p[3] << 24;
    r->p += 4;
    return 1;
}

int l2_pb_bytes(l2_pb_reader *r, const unsigned char **data, size_t *len) {
    uint64_t n;
    if (!l2_pb_varint(r, &n)) return 0;
    if (n > (uint64_t)(r->end - r->p)) return fail(r, "a length runs past the end");
    *data = r->p;
    *len = (size_t)n;
    r->p += n;
    return 1;
}

int l2_pb_skip(l2_pb_reader *r, int wire) {
    uint64_t v;
    uint32_t u;
    const unsigned char *d;
    size_t n;
    switch (wire) {
    case L2_PB_VARINT: return l2_pb_varint(r, &v);
    case L2_PB_FIXED32: return l2_pb_fixed32(r, &u);
    case L2_PB_BYTES: return l2_pb_bytes(r, &d, &n);
    case L2_PB_FIXED64:
        if (r->end - r->p < 8) return fail(r, "truncated 64-bit value");
        r->p += 8;
        return 1;
    default: return fail(r, "unknown wire type (groups are not supported)");
    }
}

/* ------------------------------------------------------------ writing */

static void put(l2_pb_writer *w, const void *data, size_t n) {
    /* n 0: data may be NULL (a writer that failed, whose failure the caller
     * checks at the end), and nothing is copied. */
    if (w->failed || n == 0) return;
    if (w->cap - w->len < n) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap - w->len < n) {
            if (cap > SIZE_MAX / 2) {
                w->failed = 1;
                return;
            }
            cap *= 2;
        }
        unsigned char *bigger = realloc(w->data, cap);
        if (!bigger) {
            w->failed = 1;
            return;
        }
        w->data = bigger;
        w->cap = cap;
    }
    memcpy(w->data + w->len, data, n);
    w->len += n;
}

static void put_varint(l2_pb_writer *w, uint64_t v) {
    unsigned char buf[10];
    size_t n = 0;
    do {
        buf[n++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    put(w, buf, n);
}

static void put_key(l2_pb_writer *w, uint32_t field, int wire) { put_varint(w, (uint64_t)field << 3 | (uint64_t)wire); }

void l2_pb_put_varint_field(l2_pb_writer *w, uint32_t field, uint64_t value) {
    put_key(w, field, L2_PB_VARINT);
    put_varint(w, value);
}

void l2_pb_put_int32_field(l2_pb_writer *w, uint32_t field, int32_t value) {
    l2_pb_put_varint_field(w, field, (uint64_t)(int64_t)value); /* sign-extended */
}

void l2_pb_put_float_field(l2_pb_writer *w, uint32_t field, float value) {
    uint32_t u;
    memcpy(&u, &value, sizeof u);
    const unsigned char le[4] = {(unsigned char)u, (unsigned char)(u >> 8), (unsigned char)(u >> 16),
                                 (unsigned char)(u >> 24)};
    put_key(w, field, L2_PB_FIXED32);
    put(w, le, 4);
}

void l2_pb_put_bytes_field(l2_pb_writer *w, uint32_t field, const void *data, size_t len) {
    put_key(w, field, L2_PB_BYTES);
    put_varint(w, len);
    put(w, data, len);
}
