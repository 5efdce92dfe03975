/* Writing a file without ever destroying one (output_file.h): the checks
 * against the inputs and an existing file, the temporary file and the step
 * that names it. */
#define _GNU_SOURCE /* O_TMPFILE */

#include "output_file.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

static const char already_exists[] = "already exists (--force replaces it)";

/* The signals that end a program by default and can be held back. */
static void ending_signals(sigset_t *set) {
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGHUP);
    sigaddset(set, SIGQUIT);
    sigaddset(set, SIGXFSZ); /* a write past the file size limit */
}

static void release(l2_output *out) {
    if (out->fd >= 0) close(out->fd);
    out->fd = -1;
    if (out->temp_path) unlink(out->temp_path);
    /* Only now may a held signal end the program: the file is gone. */
    if (out->holds_signals) pthread_sigmask(SIG_SETMASK, &out->saved_mask, NULL);
    out->holds_signals = 0;
    free(out->path);
    free(out->temp_path);
    out->path = out->temp_path = NULL;
}

/* The folder of path ("." for a bare name), malloc'd. */
static char *folder_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    size_t len = slash == path ? 1 : (size_t)(slash - path);
    char *dir = malloc(len + 1);
    if (dir) {
        memcpy(dir, path, len);
        dir[len] = '\0';
    }
    return dir;
}

/* "<folder>/.<name>.tmp-<pid>-<nonce>": a name for a file beside path. */
static void temp_name(char *buf, size_t size, const char *path, unsigned attempt) {
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    int dir_len = slash ? (int)(slash - path + 1) : 0;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    snprintf(buf, size, "%.*s.%s.tmp-%ld-%lx", dir_len, path, name, (long)getpid(),
             (unsigned long)now.tv_nsec ^ ((unsigned long)attempt << 20));
}

#ifdef O_TMPFILE
/* An unnamed file in the output's folder, or -1 where that cannot be had
 * (no O_TMPFILE in the file system, or no /proc to link it by at the end). */
static int open_unnamed(const char *path) {
    if (access("/proc/self/fd", X_OK) != 0) return -1;
    char *dir = folder_of(path);
    if (!dir) return -1;
    int fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666);
    free(dir);
    return fd;
}

/* Gives the unnamed file fd the name `to`; fails with EEXIST when it exists. */
static int link_unnamed(int fd, const char *to) {
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    return linkat(AT_FDCWD, proc, AT_FDCWD, to, AT_SYMLINK_FOLLOW);
}
#endif

/* A new named temporary file beside the output (0666 less the umask). */
static llama2_status open_named(l2_output *out, llama2_error *err) {
    size_t size = strlen(out->path) + 64;
    out->temp_path = malloc(size);
    if (!out->temp_path) return l2_fail(err, LLAMA2_E_NOMEM, "out of memory");
    /* Held from before the file exists until after it is gone or named. */
    sigset_t held;
    ending_signals(&held);
    pthread_sigmask(SIG_BLOCK, &held, &out->saved_mask);
    out->holds_signals = 1;
    for (unsigned attempt = 0; attempt < 100; attempt++) {
        temp_name(out->temp_path, size, out->path, attempt);
        out->fd = open(out->temp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (out->fd >= 0 || errno != EEXIST) break;
    }
    if (out->fd >= 0) return LLAMA2_OK;
    int e = errno;
    free(out->temp_path);
    out->temp_path = NULL;
    return l2_fail(err, LLAMA2_E_IO, "cannot create: %s", strerror(e));
}

llama2_status l2_output_open(l2_output *out, const char *path, const char *const *inputs, unsigned flags,
                             llama2_error *err) {
    if (!out) return l2_fail(err, LLAMA2_E_INVALID, "no output");
    memset(out, 0, sizeof *out);
    out->fd = -1;
    if (!path || !*path) return l2_fail(err, LLAMA2_E_INVALID, "no output path");
    out->flags = flags;

    struct stat st, in;
    if (lstat(path, &st) == 0) {
        /* Through a symbolic link: what it points to, if anything. */
        int target = stat(path, &st) == 0;
        if (target && S_ISDIR(st.st_mode)) return l2_fail(err, LLAMA2_E_IO, "is a folder");
        for (int i = 0; target && inputs && inputs[i]; i++)
            if (stat(inputs[i], &in) == 0 && in.st_dev == st.st_dev && in.st_ino == st.st_ino)
                return l2_fail(err, LLAMA2_E_IO, "is the input file %s", inputs[i]);
        if (!(flags & L2_OUTPUT_FORCE)) return l2_fail(err, LLAMA2_E_IO, "%s", already_exists);
    }

    out->path = strdup(path);
    if (!out->path) return l2_fail(err, LLAMA2_E_NOMEM, "out of memory");
    llama2_status s = LLAMA2_OK;
#ifdef O_TMPFILE
    if (!(flags & L2_OUTPUT_NAMED_TEMP)) out->fd = open_unnamed(path);
#endif
    if (out->fd < 0) s = open_named(out, err);
    if (s != LLAMA2_OK) release(out);
    return s;
}

int l2_output_interrupted(const l2_output *out) {
    if (!out || !out->holds_signals) return 0;
    sigset_t pending, held;
    ending_signals(&held);
    if (sigpending(&pending) != 0) return 0;
    for (int sig = 1; sig < 32; sig++)
        if (sigismember(&held, sig) == 1 && sigismember(&pending, sig) == 1) return 1;
    return 0;
}

llama2_status l2_output_write(l2_output *out, const void *data, size_t n, llama2_error *err) {
    if (!out || out->fd < 0) return l2_fail(err, LLAMA2_E_INVALID, "no open output");
    if (l2_output_interrupted(out)) return l2_fail(err, LLAMA2_E_IO, "interrupted by a signal");
    const unsigned char *p = data;
    while (n > 0) {
        ssize_t k = write(out->fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return l2_fail(err, LLAMA2_E_IO, "write failed: %s", strerror(k < 0 ? errno : ENOSPC));
        p += k;
        n -= (size_t)k;
    }
    return LLAMA2_OK;
}

/* Gives the finished named temporary file the output's name; errno set on
 * failure. */
static int name_temp(l2_output *out) {
    if (out->flags & L2_OUTPUT_FORCE) {
        if (rename(out->temp_path, out->path) != 0) return -1;
    } else if (link(out->temp_path, out->path) == 0) {
        /* link() refuses an existing name, where rename() would replace it;
         * the temporary name goes in release(). */
        return 0;
    } else {
        struct stat st;
        if (errno == EEXIST) return -1;
        /* A file system without hard links: check, then rename. */
        if (lstat(out->path, &st) == 0) {
            errno = EEXIST;
            return -1;
        }
        if (rename(out->temp_path, out->path) != 0) return -1;
    }
    free(out->temp_path); /* renamed: nothing to remove */
    out->temp_path = NULL;
    return 0;
}

/* Gives the finished file the output's name; errno set on failure. */
static int name_file(l2_output *out) {
    if (out->temp_path) return name_temp(out);
#ifdef O_TMPFILE
    if (link_unnamed(out->fd, out->path) == 0) return 0;
    if (errno != EEXIST || !(out->flags & L2_OUTPUT_FORCE)) return -1;
    /* Replacing: a name of its own first, then renamed over the old file. */
    char temp[4200];
    for (unsigned attempt = 0; attempt < 100; attempt++) {
        temp_name(temp, sizeof temp, out->path, attempt);
        if (link_unnamed(out->fd, temp) == 0) {
            if (rename(temp, out->path) == 0) return 0;
            int e = errno;
            unlink(temp);
            errno = e;
            return -1;
        }
        if (errno != EEXIST) return -1;
    }
#endif
    return -1;
}

llama2_status l2_output_commit(l2_output *out, llama2_error *err) {
    if (!out || out->fd < 0) return l2_fail(err, LLAMA2_E_INVALID, "no open output");
    llama2_status s = LLAMA2_OK;
    if (l2_output_interrupted(out))
        s = l2_fail(err, LLAMA2_E_IO, "interrupted by a signal");
    else if (fsync(out->fd) != 0)
        s = l2_fail(err, LLAMA2_E_IO, "write failed: %s", strerror(errno));
    else if (name_file(out) != 0)
        s = errno == EEXIST ? l2_fail(err, LLAMA2_E_IO, "%s", already_exists)
                            : l2_fail(err, LLAMA2_E_IO, "cannot give the finished file its name: %s", strerror(errno));
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
