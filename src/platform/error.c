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
        l2_message_one_line(err->message);
    }
    return status;
}

void l2_message_one_line(char *message) {
    for (unsigned char *p = (unsigned char *)message; *p; p++)
        if (*p < 0x20 || *p == 0x7F) *p = '?';
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
