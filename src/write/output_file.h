/* Writing a file without ever destroying one: for every program that writes
 * a model or a tokenizer. Not part of the public API.
 *
 * The output is refused when it is one of the inputs (the same file, so also
 * through links and other spellings of the path: the same device and inode,
 * or on Windows volume serial number and file index), and when it exists,
 * unless L2_OUTPUT_FORCE. The bytes go to a file in the output's folder that
 * gets the output's name only once complete (l2_output_commit), so a
 * failure, a full disk or a signal leaves no partial file behind
 * (l2_temp_create in platform.h):
 *   - on Linux, an unnamed O_TMPFILE file, linked into place at the end:
 *     nothing is named before then, even if the process is killed;
 *   - elsewhere (or on a file system without O_TMPFILE), a hidden temporary
 *     file renamed into place; while it exists the signals that end a
 *     program (SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGXFSZ; Ctrl-C on Windows)
 *     are held back, and one that arrives ends the output (see
 *     l2_output_interrupted): the file is removed, then the signal is let
 *     through and does what it would have done.
 * An open output must be ended by exactly one of commit and abort. */
#ifndef LLAMA2_OUTPUT_FILE_H
#define LLAMA2_OUTPUT_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "llama2.h"
#include "platform/platform.h"

enum {
    L2_OUTPUT_FORCE = 1,      /* an existing output may be replaced (an input never is) */
    L2_OUTPUT_NAMED_TEMP = 2, /* a named temporary file even where O_TMPFILE works (tests) */
};

typedef struct l2_output {
    l2_temp_file *file; /* the file being written; NULL once ended */
    unsigned flags;
    char *path;         /* the output's name */
} l2_output;

/* Opens the output `path` for writing. `inputs` is a NULL-terminated list of
 * the files the output is made from (NULL: none). Refuses, with
 * LLAMA2_E_IO: an output that is one of the inputs; an existing output
 * without L2_OUTPUT_FORCE; a folder; a file that cannot be created. */
llama2_status l2_output_open(l2_output *out, const char *path, const char *const *inputs, unsigned flags,
                             llama2_error *err);

/* 1 when a signal held back for a named temporary file is waiting: the writer
 * may stop early, then must abort (or commit, which refuses). */
int l2_output_interrupted(const l2_output *out);

/* Appends n bytes at the file's current offset, all of them (a short write
 * is continued). Fails, with the file left to abort, on a write error
 * ("write failed: ...") or when a held signal is waiting ("interrupted by a
 * signal"): for writers that produce their output in large pieces. */
llama2_status l2_output_write(l2_output *out, const void *data, size_t n, llama2_error *err);

/* The same at a given offset of the file, which may be past its end
 * (the gap reads as zeros). */
llama2_status l2_output_write_at(l2_output *out, const void *data, size_t n, uint64_t offset, llama2_error *err);

/* Writes everything out (fsync), closes the file and gives it the output's
 * name. On any failure, or a waiting signal, nothing is left behind and the
 * old output, if any, is untouched. Ends the output either way. */
llama2_status l2_output_commit(l2_output *out, llama2_error *err);

/* Ends the output, leaving nothing behind. */
void l2_output_abort(l2_output *out);

/* 1 when an error message is about the output (one of l2_output's, or a
 * writer's "write failed: ..."), not about an input: for the programs, which
 * name the file an error is about. */
int l2_output_failure(const char *message);

/* Puts the path of the file err's message is about in front of it, when s
 * is a failure: out_path when the message is about the output
 * (l2_output_failure), else in_path (NULL: the input's messages name their
 * file already). Returns s. */
llama2_status l2_error_prefix_path(llama2_status s, const char *in_path, const char *out_path, llama2_error *err);

#endif
