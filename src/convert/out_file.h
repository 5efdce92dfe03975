/* Files that conversion writes: never over an input, never over an existing
 * file unless asked, never left half written. Each is written under a
 * temporary name beside its destination and renamed into place when whole. */
#ifndef LLAMA2_CONVERT_OUT_FILE_H
#define LLAMA2_CONVERT_OUT_FILE_H

#include <stddef.h>

#include "llama2.h"

typedef struct l2_out {
    char *path;     /* the destination */
    char *tmp_path; /* where the bytes go until l2_out_commit */
    int fd;         /* -1 once closed */
    int io_errno;   /* the first write error, 0 while none */
    unsigned char *buf;
    size_t len;
} l2_out;

/* Refuses a destination that is one of the n_inputs inputs (the same file,
 * under any name) and, unless force, one that exists. */
llama2_status l2_out_check(const char *path, int force, const char *const *inputs, size_t n_inputs,
                              llama2_error *err);

/* Creates the temporary file for path. */
llama2_status l2_out_open(l2_out *o, const char *path, llama2_error *err);

/* Appends n bytes (buffered; a failure is remembered for l2_out_close). */
void l2_out_write(l2_out *o, const void *data, size_t n);

/* Flushes and closes the temporary file: after this it holds every byte. */
llama2_status l2_out_close(l2_out *o, llama2_error *err);

/* Closes if needed and renames the temporary file into place. */
llama2_status l2_out_commit(l2_out *o, llama2_error *err);

/* Removes the temporary file; safe on a zeroed, failed or committed output. */
void l2_out_abort(l2_out *o);

/* Names the file a failure of the library's checkpoint writer is about,
 * whose messages name none: its output failures ("cannot create", "write
 * failed", "cannot rename") are out_path's, the rest in_path's. Prefixes
 * err's message with it; returns s. */
llama2_status l2_out_name_the_file(llama2_status s, const char *in_path, const char *out_path, llama2_error *err);

#endif
