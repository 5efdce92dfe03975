/*
 * The safetensors reader. The header is JSON, read with jansson; every
 * number in it is checked before use: shapes and offsets are 64-bit, their
 * products are overflow-checked, and a tensor must lie inside the file.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/float16.h"
#include "platform/checks.h"
#include "schema/json_safe.h"
#include "mapped_pages.h"
#include "printable.h"
#include "safetensors.h"

/* Every dtype of the format, so that sizes can be checked for all tensors,
 * including those conversion does not read. */
static const struct {
    const char *name;
    size_t size;
    l2_dtype dtype;
} dtypes[] = {
    {"F32", 4, L2_DTYPE_F32},     {"F16", 2, L2_DTYPE_F16},     {"BF16", 2, L2_DTYPE_BF16},
    {"F64", 8, L2_DTYPE_OTHER},   {"I64", 8, L2_DTYPE_OTHER},   {"U64", 8, L2_DTYPE_OTHER},
    {"I32", 4, L2_DTYPE_OTHER},   {"U32", 4, L2_DTYPE_OTHER},   {"I16", 2, L2_DTYPE_OTHER},
    {"U16", 2, L2_DTYPE_OTHER},   {"I8", 1, L2_DTYPE_OTHER},    {"U8", 1, L2_DTYPE_OTHER},
    {"BOOL", 1, L2_DTYPE_OTHER},  {"F8_E4M3", 1, L2_DTYPE_OTHER}, {"F8_E5M2", 1, L2_DTYPE_OTHER},
};
#define N_DTYPES (sizeof dtypes / sizeof dtypes[0])

size_t l2_dtype_size(l2_dtype dtype) { return dtype == L2_DTYPE_F32 ? 4 : dtype == L2_DTYPE_OTHER ? 0 : 2; }

const char *l2_dtype_name(l2_dtype dtype) {
    return dtype == L2_DTYPE_F32 ? "F32" : dtype == L2_DTYPE_F16 ? "F16" : dtype == L2_DTYPE_BF16 ? "BF16" : "?";
}

void l2_values_to_f32(l2_dtype dtype, const void *src, size_t n, float *out) {
    const unsigned char *p = src;
    if (dtype == L2_DTYPE_F32) {
        memcpy(out, p, n * sizeof(float));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, sizeof h);
        out[i] = dtype == L2_DTYPE_F16 ? l2_f16_to_f32(h) : l2_bf16_to_f32(h);
    }
}

static uint64_t read_u64le(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static int by_name(const void *a, const void *b) {
    return strcmp(((const l2_st_tensor *)a)->name, ((const l2_st_tensor *)b)->name);
}

static int by_offset(const void *a, const void *b) {
    const l2_st_tensor *x = *(const l2_st_tensor *const *)a, *y = *(const l2_st_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* A JSON integer in [0, limit], into *out. */
static int json_to_u64(const json_t *v, uint64_t limit, uint64_t *out) {
    if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) > limit) return 0;
    *out = (uint64_t)json_integer_value(v);
    return 1;
}

/* One header entry into *t: dtype, shape and data offsets, checked. */
static llama2_status parse_entry(const char *path, const char *name, const json_t *entry, size_t data_start,
                                 size_t data_size, l2_st_tensor *t, llama2_error *err) {
    char shown[96];
    l2_printable(name, shown, sizeof shown);
    if (!json_is_object(entry)) return l2_fail(err, LLAMA2_E_FORMAT, "%s: %s: not a JSON object", path, shown);
    const json_t *dtype = json_object_get(entry, "dtype"), *shape = json_object_get(entry, "shape"),
                 *offsets = json_object_get(entry, "data_offsets");
    if (!json_is_string(dtype)) return l2_fail(err, LLAMA2_E_FORMAT, "%s: %s: no dtype string", path, shown);
    size_t elem = 0;
    for (size_t i = 0; i < N_DTYPES && !elem; i++)
        if (strcmp(json_string_value(dtype), dtypes[i].name) == 0) {
            elem = dtypes[i].size;
            t->dtype = dtypes[i].dtype;
            memcpy(t->dtype_name, dtypes[i].name, strlen(dtypes[i].name) + 1);
        }
    if (!elem) {
        char dshown[40];
        return l2_fail(err, LLAMA2_E_FORMAT, "%s: %s: unknown dtype '%s'", path, shown,
                       l2_printable(json_string_value(dtype), dshown, sizeof dshown));
    }
    if (!json_is_array(shape) || json_array_size(shape) > L2_ST_MAX_DIMS)
        return l2_fail(err, LLAMA2_E_FORMAT, "%s: %s: shape is not an array of at most %d sizes", path, shown,
                       L2_ST_MAX_DIMS);
    t->n_dims = (int)json_array_size(shape);
    size_t count = 1;
    for (int d = 0; d < t->n_dims; d++) {
        if (!json_to_u64(json_array_get(shape, (size_t)d), SIZE_MAX, &t->shape[d]))
            return l2_fail(err, LLAMA2_E_FORMAT, "%s: %s: shape[%d] is not a size", path, shown, d);
        if (!l2_mul_size(count, (size_t)t->shape[d], &count))
            return l2_fail(err, LLAMA2_E_FORMAT, "%s: %s: its shape overflows", path, shown);
    }
    uint64_t begin, end;
    if (!json_is_array(offsets) || json_array_size(offsets) != 2 ||
        !json_to_u64(json_array_get(offsets, 0), UINT64_MAX, &begin) ||
        !json_to_u64(json_array_get(offsets, 1), UINT64_MAX, &end) || begin > end)
        return l2_fail(err, LLAMA2_E_FORMAT, "%s: %s: data_offsets is not a pair [begin, end] of sizes", path,
                       shown);
    size_t need;
    if (!l2_mul_size(count, elem, &need))
        return l2_fail(err, LLAMA2_E_FORMAT, "%s: %s: its shape overflows", path, shown);
    if (end - begin != need)
        return l2_fail(err, LLAMA2_E_FORMAT, "%s: %s: data_offsets hold %llu bytes, its shape of %s needs %zu",
                       path, shown, (unsigned long long)(end - begin), t->dtype_name, need);
    if (end > data_size)
        return l2_fail(err, LLAMA2_E_FORMAT, "%s: %s: truncated: its data ends at byte %llu, the file holds %zu",
                       path, shown, (unsigned long long)end, data_size);
    t->offset = data_start + (size_t)begin;
    t->bytes = need;
    return LLAMA2_OK;
}

/* The tensors sorted by offset must not overlap (empty ones may share an
 * offset with anything). */
static llama2_status check_overlaps(const l2_safetensors *st, llama2_error *err) {
    if (st->n_tensors < 2) return LLAMA2_OK;
    const l2_st_tensor **order = malloc(st->n_tensors * sizeof *order);
    if (!order) return l2_fail(err, LLAMA2_E_NOMEM, "%s: out of memory for the tensor list", st->path);
    for (size_t i = 0; i < st->n_tensors; i++) order[i] = &st->tensors[i];
    qsort(order, st->n_tensors, sizeof *order, by_offset);
    llama2_status s = LLAMA2_OK;
    const l2_st_tensor *last = NULL; /* the non-empty tensor that ends last so far */
    for (size_t i = 0; i < st->n_tensors && s == LLAMA2_OK; i++) {
        const l2_st_tensor *t = order[i];
        if (t->bytes == 0) continue;
        if (last && t->offset < last->offset + last->bytes) {
            char a[96], b[96];
            s = l2_fail(err, LLAMA2_E_FORMAT, "%s: %s: its data overlaps %s's", st->path,
                        l2_printable(t->name, a, sizeof a), l2_printable(last->name, b, sizeof b));
        }
        if (!last || t->offset + t->bytes > last->offset + last->bytes) last = t;
    }
    free(order);
    return s;
}

static llama2_status parse_header(l2_safetensors *st, llama2_error *err) {
    const char *path = st->path;
    if (st->size < 8)
        return l2_fail(err, LLAMA2_E_FORMAT, "%s: too short for a safetensors file (%zu bytes)", path, st->size);
    const uint64_t header_len = read_u64le(st->data);
    if (header_len > st->size - 8)
        return l2_fail(err, LLAMA2_E_FORMAT, "%s: truncated: the header length is %llu bytes, the file has %zu after it",
                       path, (unsigned long long)header_len, st->size - 8);
    if (header_len > L2_ST_MAX_HEADER)
        return l2_fail(err, LLAMA2_E_FORMAT, "%s: the header length %llu is over the format's limit of 100 MiB",
                       path, (unsigned long long)header_len);
    json_error_t jerr;
    json_t *root = l2_json_loadb((const char *)st->data + 8, (size_t)header_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        char text[96];
        return l2_fail(err, LLAMA2_E_FORMAT, "%s: the header is not valid JSON: %s (at byte %d of the header)",
                       path, l2_printable(jerr.text, text, sizeof text), jerr.position);
    }
    llama2_status s = LLAMA2_OK;
    if (!json_is_object(root)) {
        json_decref(root);
        return l2_fail(err, LLAMA2_E_FORMAT, "%s: the header is not a JSON object", path);
    }
    size_t n = json_object_size(root) - (json_object_get(root, "__metadata__") ? 1 : 0);
    st->tensors = calloc(n ? n : 1, sizeof *st->tensors);
    if (!st->tensors) {
        json_decref(root);
        return l2_fail(err, LLAMA2_E_NOMEM, "%s: out of memory for %zu tensors", path, n);
    }
    const size_t data_start = 8 + (size_t)header_len, data_size = st->size - data_start;
    const char *name;
    json_t *entry;
    json_object_foreach(root, name, entry) {
        if (strcmp(name, "__metadata__") == 0) continue;
        l2_st_tensor *t = &st->tensors[st->n_tensors];
        if (!(t->name = strdup(name))) {
            s = l2_fail(err, LLAMA2_E_NOMEM, "%s: out of memory for the tensor names", path);
            break;
        }
        st->n_tensors++;
        if ((s = parse_entry(path, name, entry, data_start, data_size, t, err)) != LLAMA2_OK) break;
    }
    json_decref(root);
    if (s != LLAMA2_OK) return s;
    qsort(st->tensors, st->n_tensors, sizeof *st->tensors, by_name);
    return check_overlaps(st, err);
}

llama2_status l2_safetensors_parse(const void *data, size_t size, const char *path, l2_safetensors *out,
                                   llama2_error *err) {
    memset(out, 0, sizeof *out);
    if (!(out->path = strdup(path ? path : "safetensors")))
        return l2_fail(err, LLAMA2_E_NOMEM, "out of memory");
    out->data = data;
    out->size = size;
    llama2_status s = parse_header(out, err);
    if (s != LLAMA2_OK) l2_safetensors_close(out);
    return s;
}

llama2_status l2_safetensors_open(const char *path, l2_safetensors *out, llama2_error *err) {
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return l2_fail(err, LLAMA2_E_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return l2_fail(err, LLAMA2_E_IO, "%s: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return l2_fail(err, LLAMA2_E_IO, "%s: not a regular file", path);
    }
    const size_t size = (size_t)st.st_size;
    void *map = NULL;
    if (size >= 8) {
        map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            int e = errno;
            close(fd);
            return l2_fail(err, LLAMA2_E_IO, "%s: cannot map: %s", path, strerror(e));
        }
    }
    close(fd);
    static const unsigned char empty[1];
    llama2_status s = l2_safetensors_parse(map ? map : empty, size, path, out, err);
    if (s != LLAMA2_OK) {
        if (map) munmap(map, size);
        return s;
    }
    out->mapped = map != NULL;
    return LLAMA2_OK;
}

void l2_safetensors_close(l2_safetensors *st) {
    if (!st) return;
    for (size_t i = 0; i < st->n_tensors; i++) free(st->tensors[i].name);
    free(st->tensors);
    if (st->mapped) munmap((void *)st->data, st->size);
    free(st->path);
    memset(st, 0, sizeof *st);
}

const l2_st_tensor *l2_safetensors_find(const l2_safetensors *st, const char *name) {
    l2_st_tensor key;
    key.name = (char *)name;
    return st->n_tensors ? bsearch(&key, st->tensors, st->n_tensors, sizeof key, by_name) : NULL;
}

void l2_safetensors_release(const l2_safetensors *st, size_t offset, size_t bytes) {
    if (st->mapped) l2_release_mapped(st->data, st->size, offset, bytes);
}
