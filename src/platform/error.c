/* Error messages: the library fills a caller's llama2_error, never prints. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checks.h"
#include "platform.h"

llama2_status l2_fail(llama2_error *err, llama2_status status, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->status = status;
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return status;
}

const char *llama2_status_string(llama2_status status) {
    switch (status) {
    case LLAMA2_OK: return "success";
    case LLAMA2_E_IO: return "input/output error";
    case LLAMA2_E_FORMAT: return "bad file format";
    case LLAMA2_E_UNSUPPORTED: return "unsupported";
    case LLAMA2_E_NOMEM: return "out of memory";
    case LLAMA2_E_INVALID: return "invalid argument";
    case LLAMA2_E_CONTEXT: return "context window exceeded";
    }
    return "unknown error";
}

void *l2_alloc_aligned(size_t size) {
    size_t rounded = (size + 63) & ~(size_t)63;
    if (rounded < size) return NULL;
    if (rounded == 0) rounded = 64;
    void *p = l2_aligned_malloc(64, rounded);
    if (p) memset(p, 0, rounded);
    return p;
}

void l2_free_aligned(void *p) { l2_aligned_free(p); }
