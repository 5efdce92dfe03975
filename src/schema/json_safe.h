/* jansson's json_loadb and json_dumps as they should be: NULL when memory
 * runs out, never a text or a value that an allocation failure garbled.
 *
 * jansson 2.14 does not check every allocation: its reader drops a string's
 * bytes when the string's buffer cannot grow and reads on (a key "temperature"
 * may come out as another key), and json_dumps can leave an object's key out
 * of its text. (Found by test_alloc_failure.) Header-only: the converter, the
 * schema library and the server, three libraries that use jansson, share it. */
#ifndef LLAMA2_SCHEMA_JSON_SAFE_H
#define LLAMA2_SCHEMA_JSON_SAFE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

typedef struct l2_json_text {
    char *text;
    size_t len, cap;
    int failed;
} l2_json_text;

static inline int l2_json_text_put(const char *bytes, size_t n, void *user) {
    l2_json_text *t = user;
    if (t->failed) return -1;
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 256;
        while (cap < t->len + n + 1) cap *= 2;
        char *grown = realloc(t->text, cap);
        if (!grown) {
            t->failed = 1;
            return -1;
        }
        t->text = grown;
        t->cap = cap;
    }
    memcpy(t->text + t->len, bytes, n);
    t->len += n;
    t->text[t->len] = '\0';
    return 0;
}

/* The JSON text of v (malloc'd), or NULL when memory ran out or v is not
 * encodable with these flags. */
static inline char *l2_json_dumps(const json_t *v, size_t flags) {
    l2_json_text t = {0};
    if (json_dump_callback(v, l2_json_text_put, &t, flags) != 0 || t.failed || !t.text) {
        free(t.text);
        return NULL;
    }
    return t.text;
}

/* json_loadb, read twice: two different values, or one read failing where
 * the other did not, mean that memory ran out (a garbled read can look like
 * a syntax error): NULL, with error saying "out of memory" and its code
 * json_error_out_of_memory. A text refused twice keeps the first error. */
static inline json_t *l2_json_loadb(const char *text, size_t len, size_t flags, json_error_t *error) {
    json_error_t first_error;
    json_t *first = json_loadb(text, len, flags, &first_error);
    json_t *second = json_loadb(text, len, flags, NULL);
    const int memory = json_error_code(&first_error) == json_error_out_of_memory || first_error.text[0] == '\0';
    if (first && second && json_equal(first, second)) {
        json_decref(second);
        if (error) *error = first_error;
        return first;
    }
    json_decref(first);
    json_decref(second);
    if (!first && !second && !memory) {
        if (error) *error = first_error;
        return NULL;
    }
    if (error) {
        memset(error, 0, sizeof *error);
        error->line = error->column = -1;
        snprintf(error->text, sizeof error->text, "out of memory");
        snprintf(error->source, sizeof error->source, "<buffer>");
        /* where json_error_code reads the code */
        error->text[JSON_ERROR_TEXT_LENGTH - 1] = (char)json_error_out_of_memory;
    }
    return NULL;
}

#endif
