/* The safetensors header, built with jansson, and the value conversion. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "model/float16.h"
#include "schema/json_safe.h"
#include "platform/checks.h"
#include "safetensors_writer.h"

void l2_values_from_f32(l2_dtype dtype, const float *src, size_t n, void *out) {
    if (dtype == L2_DTYPE_F32) {
        memcpy(out, src, n * sizeof(float));
        return;
    }
    unsigned char *p = out;
    for (size_t i = 0; i < n; i++) {
        uint16_t h = dtype == L2_DTYPE_F16 ? l2_f32_to_f16(src[i]) : l2_f32_to_bf16(src[i]);
        memcpy(p + 2 * i, &h, sizeof h);
    }
}

/* One entry's {"dtype", "shape", "data_offsets"}; NULL when out of memory. */
static json_t *entry_json(const l2_st_entry *e, uint64_t begin, uint64_t end) {
    json_t *shape = json_array();
    for (int d = 0; shape && d < e->n_dims; d++)
        if (json_array_append_new(shape, json_integer((json_int_t)e->shape[d])) != 0) {
            json_decref(shape);
            return NULL;
        }
    return json_pack("{s:s, s:o, s:[I, I]}", "dtype", l2_dtype_name(e->dtype), "shape", shape, "data_offsets",
                     (json_int_t)begin, (json_int_t)end);
}

llama2_status l2_safetensors_header(const l2_st_entry *entries, size_t n, unsigned char **out, size_t *len,
                                    llama2_error *err) {
    *out = NULL;
    *len = 0;
    json_t *root = json_pack("{s:{s:s}}", "__metadata__", "format", "pt");
    uint64_t offset = 0;
    for (size_t i = 0; root && i < n; i++) {
        const l2_st_entry *e = &entries[i];
        uint64_t bytes = l2_dtype_size(e->dtype);
        for (int d = 0; d < e->n_dims; d++) bytes *= e->shape[d]; /* the caller's shapes fit the model */
        json_t *entry = entry_json(e, offset, offset + bytes);
        if (!entry || json_object_set_new(root, e->name, entry) != 0) {
            json_decref(root);
            root = NULL;
        }
        offset += bytes;
    }
    char *text = root ? l2_json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(root);
    if (!text) return l2_fail(err, LLAMA2_E_NOMEM, "out of memory for the safetensors header");
    const size_t json_len = strlen(text), padded = (json_len + 7) / 8 * 8;
    unsigned char *buf = malloc(8 + padded);
    if (!buf) {
        free(text);
        return l2_fail(err, LLAMA2_E_NOMEM, "out of memory for the safetensors header");
    }
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    memcpy(buf + 8, text, json_len);
    memset(buf + 8 + json_len, ' ', padded - json_len);
    free(text);
    *out = buf;
    *len = 8 + padded;
    return LLAMA2_OK;
}
