/*
 * GGUF parsing (gguf.h, docs/FORMAT.md): a cursor over the file's bytes
 * that checks every read against what is left before making it.
 *
 *   "GGUF", uint32 version, uint64 n_tensors, uint64 n_kv,
 *   n_kv x (string key, uint32 type, value),
 *   n_tensors x (string name, uint32 n_dims, uint64 dims[n_dims], uint32 type, uint64 offset),
 *   padding to general.alignment, the data section.
 * A string is a uint64 length and its bytes; an array a uint32 element
 * type, a uint64 count and the elements.
 */
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "platform/checks.h"

typedef struct cursor {
    const unsigned char *data;
    size_t size, pos;
} cursor;

static size_t left(const cursor *c) { return c->size - c->pos; }

static int read_bytes(cursor *c, void *out, size_t n) {
    if (left(c) < n) return 0;
    memcpy(out, c->data + c->pos, n);
    c->pos += n;
    return 1;
}

static int read_u32(cursor *c, uint32_t *v) { return read_bytes(c, v, sizeof *v); }
static int read_u64(cursor *c, uint64_t *v) { return read_bytes(c, v, sizeof *v); }

static int read_string(cursor *c, l2_gguf_str *s) {
    uint64_t len;
    if (!read_u64(c, &len) || len > left(c)) return 0;
    s->data = (const char *)c->data + c->pos;
    s->len = (size_t)len;
    c->pos += (size_t)len;
    return 1;
}

size_t l2_gguf_value_size(l2_gguf_value_type type) {
    switch (type) {
    case L2_GGUF_UINT8: case L2_GGUF_INT8: case L2_GGUF_BOOL: return 1;
    case L2_GGUF_UINT16: case L2_GGUF_INT16: return 2;
    case L2_GGUF_UINT32: case L2_GGUF_INT32: case L2_GGUF_FLOAT32: return 4;
    case L2_GGUF_UINT64: case L2_GGUF_INT64: case L2_GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

const char *l2_gguf_value_type_name(uint32_t type) {
    static const char *const names[L2_GGUF_VALUE_TYPES] = {
        "uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
        "bool",  "string", "array", "uint64", "int64", "float64"};
    return type < L2_GGUF_VALUE_TYPES ? names[type] : "unknown";
}

/* ggml's blocks: values and bytes per block. */
typedef struct type_info {
    uint32_t type;
    const char *name;
    size_t values, bytes;
} type_info;

static const type_info types[] = {
    {L2_GGML_F32, "F32", 1, 4},       {L2_GGML_F16, "F16", 1, 2},      {L2_GGML_Q4_0, "Q4_0", 32, 18},
    {L2_GGML_Q4_1, "Q4_1", 32, 20},   {L2_GGML_Q5_0, "Q5_0", 32, 22},  {L2_GGML_Q5_1, "Q5_1", 32, 24},
    {L2_GGML_Q8_0, "Q8_0", 32, 34},   {L2_GGML_Q8_1, "Q8_1", 32, 36},  {L2_GGML_Q2_K, "Q2_K", 256, 84},
    {L2_GGML_Q3_K, "Q3_K", 256, 110}, {L2_GGML_Q4_K, "Q4_K", 256, 144}, {L2_GGML_Q5_K, "Q5_K", 256, 176},
    {L2_GGML_Q6_K, "Q6_K", 256, 210}, {L2_GGML_Q8_K, "Q8_K", 256, 292}, {L2_GGML_BF16, "BF16", 1, 2},
};

static const type_info *find_type(uint32_t type) {
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (types[i].type == type) return &types[i];
    return NULL;
}

const char *l2_ggml_type_name(uint32_t type) {
    const type_info *t = find_type(type);
    return t ? t->name : NULL;
}

int l2_ggml_type_block(uint32_t type, size_t *values, size_t *bytes) {
    const type_info *t = find_type(type);
    if (!t) return 0;
    *values = t->values;
    *bytes = t->bytes;
    return 1;
}

/* Steps over one value of `type` (never an array), checking it fits. */
static int skip_value(cursor *c, l2_gguf_value_type type) {
    if (type == L2_GGUF_STRING) {
        l2_gguf_str s;
        return read_string(c, &s);
    }
    size_t n = l2_gguf_value_size(type);
    if (n == 0 || left(c) < n) return 0;
    c->pos += n;
    return 1;
}

static int printable_key(l2_gguf_str key, char *out, size_t size) {
    size_t n = key.len < size - 1 ? key.len : size - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)key.data[i];
        out[i] = ch < 0x20 || ch >= 0x7F ? '?' : (char)ch;
    }
    out[n] = '\0';
    return (int)n;
}

static llama2_status read_kv(cursor *c, size_t index, l2_gguf_kv *kv, llama2_error *err) {
    char name[80];
    if (!read_string(c, &kv->key))
        return l2_fail(err, LLAMA2_E_FORMAT, "GGUF truncated: the key of pair %zu runs past the end of the file",
                       index);
    printable_key(kv->key, name, sizeof name);
    uint32_t type;
    if (!read_u32(c, &type))
        return l2_fail(err, LLAMA2_E_FORMAT, "GGUF truncated: the type of %s runs past the end of the file", name);
    if (type >= L2_GGUF_VALUE_TYPES)
        return l2_fail(err, LLAMA2_E_FORMAT, "GGUF: %s has the unknown value type %u", name, type);
    kv->type = (l2_gguf_value_type)type;
    if (type != L2_GGUF_ARRAY) {
        kv->value = c->data + c->pos;
        if (!skip_value(c, kv->type))
            return l2_fail(err, LLAMA2_E_FORMAT, "GGUF truncated: the value of %s runs past the end of the file",
                           name);
        return LLAMA2_OK;
    }
    uint32_t element;
    uint64_t n;
    if (!read_u32(c, &element) || !read_u64(c, &n))
        return l2_fail(err, LLAMA2_E_FORMAT, "GGUF truncated: the array %s runs past the end of the file", name);
    if (element == L2_GGUF_ARRAY)
        return l2_fail(err, LLAMA2_E_UNSUPPORTED, "GGUF: %s is an array of arrays, which this build does not read",
                       name);
    if (element >= L2_GGUF_VALUE_TYPES)
        return l2_fail(err, LLAMA2_E_FORMAT, "GGUF: the array %s has the unknown element type %u", name, element);
    kv->array_type = (l2_gguf_value_type)element;
    kv->value = c->data + c->pos;
    /* Every element takes at least one byte (a string eight): a count past
     * what is left is refused before anything is walked. */
    const size_t least = element == L2_GGUF_STRING ? 8 : l2_gguf_value_size(kv->array_type);
    if (n > left(c) / least)
        return l2_fail(err, LLAMA2_E_FORMAT, "GGUF truncated: the array %s of %llu elements runs past the end of the file",
                       name, (unsigned long long)n);
    kv->array_len = (size_t)n;
    if (element != L2_GGUF_STRING) {
        c->pos += kv->array_len * least;
        return LLAMA2_OK;
    }
    for (size_t i = 0; i < kv->array_len; i++)
        if (!skip_value(c, L2_GGUF_STRING))
            return l2_fail(err, LLAMA2_E_FORMAT,
                           "GGUF truncated: string %zu of the array %s runs past the end of the file", i, name);
    return LLAMA2_OK;
}

static int same_str(l2_gguf_str a, l2_gguf_str b) { return a.len == b.len && memcmp(a.data, b.data, a.len) == 0; }

static llama2_status read_pairs(cursor *c, l2_gguf *g, llama2_error *err) {
    for (size_t i = 0; i < g->n_kv; i++) {
        llama2_status s = read_kv(c, i, &g->kv[i], err);
        if (s != LLAMA2_OK) return s;
        for (size_t j = 0; j < i; j++)
            if (same_str(g->kv[j].key, g->kv[i].key)) {
                char name[80];
                printable_key(g->kv[i].key, name, sizeof name);
                return l2_fail(err, LLAMA2_E_FORMAT, "GGUF: the key %s appears twice", name);
            }
    }
    const l2_gguf_kv *a = l2_gguf_find(g, "general.alignment");
    g->alignment = L2_GGUF_DEFAULT_ALIGNMENT;
    if (a) {
        int64_t v;
        if (a->type != L2_GGUF_UINT32 || !l2_gguf_int(a, 1, 1 << 30, &v) || (v & (v - 1)) != 0)
            return l2_fail(err, LLAMA2_E_FORMAT, "GGUF: general.alignment must be a uint32 power of two");
        g->alignment = (size_t)v;
    }
    return LLAMA2_OK;
}

static llama2_status read_tensor_info(cursor *c, size_t index, l2_gguf_tensor *t, llama2_error *err) {
    char name[80];
    if (!read_string(c, &t->name))
        return l2_fail(err, LLAMA2_E_FORMAT,
                       "GGUF truncated: the name of tensor %zu runs past the end of the file", index);
    printable_key(t->name, name, sizeof name);
    if (!read_u32(c, &t->n_dims))
        return l2_fail(err, LLAMA2_E_FORMAT, "GGUF truncated: tensor %s runs past the end of the file", name);
    if (t->n_dims < 1 || t->n_dims > L2_GGUF_MAX_DIMS)
        return l2_fail(err, LLAMA2_E_FORMAT, "GGUF: tensor %s has %u dimensions (1 to %d are read)", name, t->n_dims,
                       L2_GGUF_MAX_DIMS);
    uint64_t offset;
    for (uint32_t d = 0; d < t->n_dims; d++)
        if (!read_u64(c, &t->dims[d]))
            return l2_fail(err, LLAMA2_E_FORMAT, "GGUF truncated: tensor %s runs past the end of the file", name);
    if (!read_u32(c, &t->type) || !read_u64(c, &offset))
        return l2_fail(err, LLAMA2_E_FORMAT, "GGUF truncated: tensor %s runs past the end of the file", name);
    size_t count = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        if (t->dims[d] == 0)
            return l2_fail(err, LLAMA2_E_FORMAT, "GGUF: tensor %s has a zero dimension", name);
        if (t->dims[d] > SIZE_MAX || !l2_mul_size(count, (size_t)t->dims[d], &count))
            return l2_fail(err, LLAMA2_E_FORMAT, "GGUF: the size of tensor %s overflows", name);
    }
    size_t block_values, block_bytes;
    if (!l2_ggml_type_block(t->type, &block_values, &block_bytes))
        return l2_fail(err, LLAMA2_E_UNSUPPORTED,
                       "GGUF: tensor %s has type %u, which this build does not know (it reads %s)",
                       name, t->type, L2_GGUF_SUPPORTED_TYPES);
    if (t->dims[0] % block_values != 0)
        return l2_fail(err, LLAMA2_E_FORMAT, "GGUF: tensor %s of type %s has rows of %llu values, not whole blocks of %zu",
                       name, l2_ggml_type_name(t->type), (unsigned long long)t->dims[0], block_values);
    if (!l2_mul_size(count / block_values, block_bytes, &t->bytes))
        return l2_fail(err, LLAMA2_E_FORMAT, "GGUF: the size of tensor %s overflows", name);
    if (offset > SIZE_MAX) return l2_fail(err, LLAMA2_E_FORMAT, "GGUF: tensor %s lies past the end of the file", name);
    t->offset = (size_t)offset;
    return LLAMA2_OK;
}

static int by_offset(const void *a, const void *b) {
    const l2_gguf_tensor *x = *(const l2_gguf_tensor *const *)a, *y = *(const l2_gguf_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Every tensor aligned, inside the data section, and none overlapping. */
static llama2_status check_data(const unsigned char *data, size_t size, l2_gguf *g, llama2_error *err) {
    const size_t data_bytes = size - g->data_offset;
    l2_gguf_tensor **sorted = malloc((g->n_tensors ? g->n_tensors : 1) * sizeof *sorted);
    if (!sorted) return l2_fail(err, LLAMA2_E_NOMEM, "out of memory for %zu tensor infos", g->n_tensors);
    llama2_status s = LLAMA2_OK;
    for (size_t i = 0; i < g->n_tensors && s == LLAMA2_OK; i++) {
        l2_gguf_tensor *t = &g->tensors[i];
        char name[80];
        printable_key(t->name, name, sizeof name);
        sorted[i] = t;
        if (t->offset % g->alignment != 0)
            s = l2_fail(err, LLAMA2_E_FORMAT, "GGUF: tensor %s at offset %zu is not aligned to %zu bytes", name,
                        t->offset, g->alignment);
        else if (t->offset > data_bytes || t->bytes > data_bytes - t->offset)
            s = l2_fail(err, LLAMA2_E_FORMAT,
                        "GGUF truncated: tensor %s (%zu bytes at offset %zu) runs past the end of the file", name,
                        t->bytes, t->offset);
        else
            t->data = data + g->data_offset + t->offset;
    }
    if (s == LLAMA2_OK) {
        qsort(sorted, g->n_tensors, sizeof *sorted, by_offset);
        for (size_t i = 1; i < g->n_tensors; i++) {
            const l2_gguf_tensor *a = sorted[i - 1], *b = sorted[i];
            if (a->offset + a->bytes > b->offset) {
                char na[80], nb[80];
                printable_key(a->name, na, sizeof na);
                printable_key(b->name, nb, sizeof nb);
                s = l2_fail(err, LLAMA2_E_FORMAT, "GGUF: tensors %s and %s overlap", na, nb);
                break;
            }
        }
    }
    free(sorted);
    return s;
}

llama2_status l2_gguf_parse(const unsigned char *data, size_t size, l2_gguf *g, llama2_error *err) {
    memset(g, 0, sizeof *g);
    cursor c = {data, size, 0};
    char magic[4];
    uint32_t version;
    uint64_t n_tensors, n_kv;
    if (!read_bytes(&c, magic, 4) || memcmp(magic, L2_GGUF_MAGIC, 4) != 0)
        return l2_fail(err, LLAMA2_E_FORMAT, "not a GGUF file (bad magic)");
    if (!read_u32(&c, &version))
        return l2_fail(err, LLAMA2_E_FORMAT, "GGUF truncated: the header runs past the end of the file");
    if (version != 2 && version != 3) {
        const uint32_t swapped = (version >> 24) | ((version >> 8) & 0xff00u) | ((version << 8) & 0xff0000u) | (version << 24);
        if (swapped == 2 || swapped == 3)
            return l2_fail(err, LLAMA2_E_UNSUPPORTED, "GGUF: a big-endian file, which this build does not read");
        return l2_fail(err, LLAMA2_E_UNSUPPORTED, "GGUF version %u (this build reads versions 2 and 3)", version);
    }
    g->version = version;
    if (!read_u64(&c, &n_tensors) || !read_u64(&c, &n_kv))
        return l2_fail(err, LLAMA2_E_FORMAT, "GGUF truncated: the header runs past the end of the file");
    /* A pair takes at least 13 bytes (key length, type, one byte), a tensor
     * info 32 (name length, n_dims, one dimension, type, offset). */
    if (n_kv > left(&c) / 13)
        return l2_fail(err, LLAMA2_E_FORMAT, "GGUF: the header counts %llu key-value pairs, more than the file can hold",
                       (unsigned long long)n_kv);
    if (n_tensors > left(&c) / 32)
        return l2_fail(err, LLAMA2_E_FORMAT, "GGUF: the header counts %llu tensors, more than the file can hold",
                       (unsigned long long)n_tensors);
    g->n_kv = (size_t)n_kv;
    g->n_tensors = (size_t)n_tensors;
    g->kv = calloc(g->n_kv ? g->n_kv : 1, sizeof *g->kv);
    g->tensors = calloc(g->n_tensors ? g->n_tensors : 1, sizeof *g->tensors);
    if (!g->kv || !g->tensors) return l2_fail(err, LLAMA2_E_NOMEM, "out of memory for the GGUF header");
    llama2_status s = read_pairs(&c, g, err);
    for (size_t i = 0; i < g->n_tensors && s == LLAMA2_OK; i++) {
        s = read_tensor_info(&c, i, &g->tensors[i], err);
        for (size_t j = 0; j < i && s == LLAMA2_OK; j++)
            if (same_str(g->tensors[j].name, g->tensors[i].name)) {
                char name[80];
                printable_key(g->tensors[i].name, name, sizeof name);
                s = l2_fail(err, LLAMA2_E_FORMAT, "GGUF: the tensor %s appears twice", name);
            }
    }
    if (s != LLAMA2_OK) return s;
    const size_t pad = (g->alignment - c.pos % g->alignment) % g->alignment;
    if (pad > left(&c))
        return l2_fail(err, LLAMA2_E_FORMAT, "GGUF truncated: the file ends before its data section");
    g->data_offset = c.pos + pad;
    return check_data(data, size, g, err);
}

void l2_gguf_free(l2_gguf *g) {
    free(g->kv);
    free(g->tensors);
    g->kv = NULL;
    g->tensors = NULL;
}

static int equals(l2_gguf_str s, const char *text) { return s.len == strlen(text) && memcmp(s.data, text, s.len) == 0; }

const l2_gguf_kv *l2_gguf_find(const l2_gguf *g, const char *key) {
    for (size_t i = 0; i < g->n_kv; i++)
        if (equals(g->kv[i].key, key)) return &g->kv[i];
    return NULL;
}

const l2_gguf_tensor *l2_gguf_find_tensor(const l2_gguf *g, const char *name) {
    for (size_t i = 0; i < g->n_tensors; i++)
        if (equals(g->tensors[i].name, name)) return &g->tensors[i];
    return NULL;
}

l2_gguf_str l2_gguf_string_at(const l2_gguf_kv *kv, size_t i) {
    /* Strings vary in length: walk to the i-th (the parser checked them). */
    const unsigned char *p = kv->value;
    l2_gguf_str s = {NULL, 0};
    for (size_t k = 0; k <= i; k++) {
        uint64_t len;
        memcpy(&len, p, sizeof len);
        s.data = (const char *)p + 8;
        s.len = (size_t)len;
        p += 8 + (size_t)len;
    }
    return s;
}

int l2_gguf_int(const l2_gguf_kv *kv, int64_t lo, int64_t hi, int64_t *out) {
    const unsigned char *p = kv->value;
    int64_t v;
    switch (kv->type) {
    case L2_GGUF_UINT8: v = p[0]; break;
    case L2_GGUF_INT8: v = (int8_t)p[0]; break;
    case L2_GGUF_UINT16: { uint16_t x; memcpy(&x, p, 2); v = x; break; }
    case L2_GGUF_INT16: { int16_t x; memcpy(&x, p, 2); v = x; break; }
    case L2_GGUF_UINT32: { uint32_t x; memcpy(&x, p, 4); v = x; break; }
    case L2_GGUF_INT32: { int32_t x; memcpy(&x, p, 4); v = x; break; }
    case L2_GGUF_UINT64: {
        uint64_t x;
        memcpy(&x, p, 8);
        if (x > INT64_MAX) return 0;
        v = (int64_t)x;
        break;
    }
    case L2_GGUF_INT64: memcpy(&v, p, 8); break;
    default: return 0;
    }
    if (v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

int l2_gguf_float(const l2_gguf_kv *kv, float *out) {
    if (kv->type == L2_GGUF_FLOAT32) {
        memcpy(out, kv->value, sizeof *out);
        return 1;
    }
    if (kv->type == L2_GGUF_FLOAT64) {
        double d;
        memcpy(&d, kv->value, sizeof d);
        if (!(d >= -FLT_MAX && d <= FLT_MAX)) return 0; /* NaN or out of float's range */
        *out = (float)d;
        return 1;
    }
    return 0;
}

const char *l2_gguf_tensor_name(l2_tensor_kind kind, int layer, char *buf, size_t size) {
    static const char *const names[L2_TENSOR_KINDS] = {
        [L2_TENSOR_TOKEN_EMBEDDING] = "token_embd", [L2_TENSOR_ATTENTION_NORM] = "attn_norm",
        [L2_TENSOR_ATTENTION_QUERY] = "attn_q",     [L2_TENSOR_ATTENTION_KEY] = "attn_k",
        [L2_TENSOR_ATTENTION_VALUE] = "attn_v",     [L2_TENSOR_ATTENTION_OUTPUT] = "attn_output",
        [L2_TENSOR_FFN_NORM] = "ffn_norm",          [L2_TENSOR_FFN_GATE] = "ffn_gate",
        [L2_TENSOR_FFN_DOWN] = "ffn_down",          [L2_TENSOR_FFN_UP] = "ffn_up",
        [L2_TENSOR_FINAL_NORM] = "output_norm",     [L2_TENSOR_CLASSIFIER] = "output",
    };
    if (kind < 0 || kind >= L2_TENSOR_KINDS || !names[kind]) return NULL;
    if (l2_tensor_table[kind].per_layer)
        snprintf(buf, size, "blk.%d.%s.weight", layer, names[kind]);
    else
        snprintf(buf, size, "%s.weight", names[kind]);
    return buf;
}
