/* Safe output files: a temporary file beside the destination, renamed into
 * place only when complete. */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "out_file.h"

#define BUFFER_BYTES ((size_t)1 << 20)

llama2_status l2_out_check(const char *path, int force, const char *const *inputs, size_t n_inputs,
                              llama2_error *err) {
    struct stat out;
    if (stat(path, &out) != 0) return LLAMA2_OK; /* nothing there yet */
    for (size_t i = 0; i < n_inputs; i++) {
        struct stat in;
        if (inputs[i] && stat(inputs[i], &in) == 0 && in.st_dev == out.st_dev && in.st_ino == out.st_ino)
            return l2_fail(err, LLAMA2_E_INVALID, "%s: is the input %s: refusing to overwrite it", path, inputs[i]);
    }
    if (!force) return l2_fail(err, LLAMA2_E_INVALID, "%s: exists (use --force to replace it)", path);
    return LLAMA2_OK;
}

static void output_free(l2_out *o) {
    free(o->path);
    free(o->tmp_path);
    free(o->buf);
    memset(o, 0, sizeof *o);
    o->fd = -1;
}

llama2_status l2_out_open(l2_out *o, const char *path, llama2_error *err) {
    memset(o, 0, sizeof *o);
    o->fd = -1;
    const size_t len = strlen(path) + 64;
    o->path = strdup(path);
    o->tmp_path = malloc(len);
    o->buf = malloc(BUFFER_BYTES);
    if (!o->path || !o->tmp_path || !o->buf) {
        output_free(o);
        return l2_fail(err, LLAMA2_E_NOMEM, "%s: out of memory for the output buffer", path);
    }
    static _Atomic unsigned counter;
    for (int attempt = 0; attempt < 100; attempt++) {
        snprintf(o->tmp_path, len, "%s.tmp-%ld-%u", path, (long)getpid(), atomic_fetch_add(&counter, 1u));
        o->fd = open(o->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (o->fd >= 0) return LLAMA2_OK;
        if (errno != EEXIST) break;
    }
    int e = errno;
    output_free(o);
    return l2_fail(err, LLAMA2_E_IO, "%s: cannot create: %s", path, strerror(e));
}

static void flush(l2_out *o) {
    size_t done = 0;
    while (done < o->len && !o->io_errno) {
        ssize_t n = write(o->fd, o->buf + done, o->len - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) o->io_errno = errno;
        else if (n == 0) o->io_errno = ENOSPC;
        else done += (size_t)n;
    }
    o->len = 0;
}

void l2_out_write(l2_out *o, const void *data, size_t n) {
    const unsigned char *p = data;
    while (n > 0 && !o->io_errno) {
        if (o->len == BUFFER_BYTES) flush(o);
        size_t k = BUFFER_BYTES - o->len < n ? BUFFER_BYTES - o->len : n;
        memcpy(o->buf + o->len, p, k);
        o->len += k;
        p += k;
        n -= k;
    }
}

llama2_status l2_out_close(l2_out *o, llama2_error *err) {
    if (o->fd < 0) return LLAMA2_OK;
    flush(o);
    if (close(o->fd) != 0 && !o->io_errno) o->io_errno = errno;
    o->fd = -1;
    if (o->io_errno) return l2_fail(err, LLAMA2_E_IO, "%s: write failed: %s", o->path, strerror(o->io_errno));
    return LLAMA2_OK;
}

llama2_status l2_out_commit(l2_out *o, llama2_error *err) {
    llama2_status s = l2_out_close(o, err);
    if (s != LLAMA2_OK) return s;
    if (rename(o->tmp_path, o->path) != 0)
        return l2_fail(err, LLAMA2_E_IO, "%s: cannot rename the finished file into place: %s", o->path,
                       strerror(errno));
    output_free(o);
    return LLAMA2_OK;
}

void l2_out_abort(l2_out *o) {
    if (!o->tmp_path) return; /* never opened, or already committed */
    if (o->fd >= 0) close(o->fd);
    unlink(o->tmp_path);
    output_free(o);
}

llama2_status l2_out_name_the_file(llama2_status s, const char *in_path, const char *out_path, llama2_error *err) {
    if (s == LLAMA2_OK) return s;
    static const char *const output_failures[] = {"cannot create", "write failed", "cannot rename"};
    const char *culprit = in_path;
    for (int i = 0; i < 3; i++)
        if (strncmp(err->message, output_failures[i], strlen(output_failures[i])) == 0) culprit = out_path;
    char why[sizeof err->message];
    snprintf(why, sizeof why, "%s", err->message);
    return l2_fail(err, s, "%s: %s", culprit, why);
}
