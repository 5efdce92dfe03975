/* Writing a file without ever destroying one (output_file.h): the checks
 * against the inputs and an existing file, and the order of the steps; the
 * temporary file itself is the platform's (l2_temp_create). */
#include "output_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform/checks.h"

static const char already_exists[] = "already exists (--force replaces it)";

static void release(l2_output *out) {
    l2_temp_close(out->file);
    out->file = NULL;
    free(out->path);
    out->path = NULL;
}

/* The refusals: a folder, one of the inputs, an existing file without
 * L2_OUTPUT_FORCE. */
static llama2_status check_target(const char *path, const char *const *inputs, unsigned flags, llama2_error *err) {
    l2_file_id target, in;
    l2_path_kind kind = l2_path_lookup(path, &target, NULL);
    if (kind == L2_PATH_NONE) return LLAMA2_OK;
    if (kind == L2_PATH_FOLDER) return l2_fail(err, LLAMA2_E_IO, "is a folder");
    for (int i = 0; kind != L2_PATH_DANGLING && inputs && inputs[i]; i++)
        if (l2_path_lookup(inputs[i], &in, NULL) != L2_PATH_NONE && in.volume == target.volume &&
            in.index == target.index)
            return l2_fail(err, LLAMA2_E_IO, "is the input file %s", inputs[i]);
    if (!(flags & L2_OUTPUT_FORCE)) return l2_fail(err, LLAMA2_E_IO, "%s", already_exists);
    return LLAMA2_OK;
}

llama2_status l2_output_open(l2_output *out, const char *path, const char *const *inputs, unsigned flags,
                             llama2_error *err) {
    if (!out) return l2_fail(err, LLAMA2_E_INVALID, "no output");
    memset(out, 0, sizeof *out);
    if (!path || !*path) return l2_fail(err, LLAMA2_E_INVALID, "no output path");
    out->flags = flags;
    llama2_status s = check_target(path, inputs, flags, err);
    if (s != LLAMA2_OK) return s;
    out->path = strdup(path);
    if (!out->path) return l2_fail(err, LLAMA2_E_NOMEM, "out of memory");
    int e = l2_temp_create(path, (flags & L2_OUTPUT_NAMED_TEMP) != 0, &out->file);
    if (e == 0) return LLAMA2_OK;
    release(out);
    return l2_fail(err, e == ENOMEM ? LLAMA2_E_NOMEM : LLAMA2_E_IO, "cannot create: %s", strerror(e));
}

int l2_output_interrupted(const l2_output *out) { return out && out->file && l2_temp_interrupted(out->file); }

/* The write's checks, and its error as the message writers give. */
static llama2_status written(int e, llama2_error *err) {
    if (e == EINTR) return l2_fail(err, LLAMA2_E_IO, "interrupted by a signal");
    if (e != 0) return l2_fail(err, LLAMA2_E_IO, "write failed: %s", strerror(e));
    return LLAMA2_OK;
}

llama2_status l2_output_write(l2_output *out, const void *data, size_t n, llama2_error *err) {
    if (!out || !out->file) return l2_fail(err, LLAMA2_E_INVALID, "no open output");
    if (l2_output_interrupted(out)) return written(EINTR, err);
    return written(l2_temp_write(out->file, data, n), err);
}

llama2_status l2_output_write_at(l2_output *out, const void *data, size_t n, uint64_t offset, llama2_error *err) {
    if (!out || !out->file) return l2_fail(err, LLAMA2_E_INVALID, "no open output");
    if (l2_output_interrupted(out)) return written(EINTR, err);
    return written(l2_temp_write_at(out->file, data, n, offset), err);
}

llama2_status l2_output_commit(l2_output *out, llama2_error *err) {
    if (!out || !out->file) return l2_fail(err, LLAMA2_E_INVALID, "no open output");
    llama2_status s = LLAMA2_OK;
    int e;
    if (l2_output_interrupted(out))
        s = l2_fail(err, LLAMA2_E_IO, "interrupted by a signal");
    else if ((e = l2_temp_sync(out->file)) != 0)
        s = l2_fail(err, LLAMA2_E_IO, "write failed: %s", strerror(e));
    else if ((e = l2_temp_name(out->file, out->path, (out->flags & L2_OUTPUT_FORCE) != 0)) != 0)
        s = e == EEXIST ? l2_fail(err, LLAMA2_E_IO, "%s", already_exists)
                        : l2_fail(err, LLAMA2_E_IO, "cannot give the finished file its name: %s", strerror(e));
    release(out);
    return s;
}

void l2_output_abort(l2_output *out) {
    if (out) release(out);
}

int l2_output_failure(const char *message) {
    static const char *const prefixes[] = {already_exists,  "is the input file", "is a folder",
                                           "cannot create", "write failed",      "cannot give the finished file",
                                           "interrupted by a signal"};
    for (size_t i = 0; message && i < sizeof prefixes / sizeof prefixes[0]; i++)
        if (strncmp(message, prefixes[i], strlen(prefixes[i])) == 0) return 1;
    return 0;
}

llama2_status l2_error_prefix_path(llama2_status s, const char *in_path, const char *out_path, llama2_error *err) {
    if (s == LLAMA2_OK || !err) return s;
    const char *culprit = l2_output_failure(err->message) ? out_path : in_path;
    if (!culprit) return s;
    char why[sizeof err->message];
    snprintf(why, sizeof why, "%s", err->message);
    return l2_fail(err, s, "%s: %s", culprit, why);
}
