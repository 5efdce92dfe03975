/* The test helpers that differ between systems (support.h): POSIX. */
#define _GNU_SOURCE /* mkdtemp, realpath, setenv */

#include "support.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "child.h"
#include "platform/platform.h"

const char test_exe_suffix[] = "";
const int test_utf16_arguments = 0;
const int test_crlf_is_newline = 0;
const char test_null_device[] = "/dev/null";

void test_require_posix(const char *why) { (void)why; }

int test_tmp_dir_create(char *dir, size_t size, const char *tag) {
    const char *base = getenv("TMPDIR");
    snprintf(dir, size, "%s/llama2-%s-XXXXXX", base && *base ? base : "/tmp", tag);
    if (mkdtemp(dir)) return 0;
    fprintf(stderr, "mkdtemp %s: %s\n", dir, strerror(errno));
    return -1;
}

int test_absolute_path(const char *path, char *out, size_t size) {
    char buf[PATH_MAX];
    if (!realpath(path, buf) || strlen(buf) >= size) return -1;
    strcpy(out, buf);
    return 0;
}

int test_dir_names(const char *dir, char ***names) {
    *names = NULL;
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0, cap = 16;
    char **list = calloc((size_t)cap + 1, sizeof *list);
    struct dirent *e;
    while (list && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        if (n == cap) {
            char **bigger = realloc(list, ((size_t)(cap *= 2) + 1) * sizeof *list);
            if (!bigger) break;
            list = bigger;
        }
        list[n++] = strdup(e->d_name);
        list[n] = NULL;
    }
    closedir(d);
    *names = list;
    return list ? n : -1;
}

int test_remove(const char *path) { return unlink(path) == 0 || rmdir(path) == 0 ? 0 : -1; }

int test_make_link(const char *target, const char *path, int symbolic) {
    return symbolic ? symlink(target, path) : link(target, path);
}

int test_symlink(const char *target, const char *path) {
    assert_int_equal(symlink(target, path), 0);
    return 1;
}

int test_child_writing(struct l2_child *c, const char *dir, const char *except) {
    char fd_dir[64];
    snprintf(fd_dir, sizeof fd_dir, "/proc/%ld/fd", l2_child_id(c));
    size_t dir_len = strlen(dir);
    for (int tries = 0; tries < 30000; tries++) {
        DIR *d = opendir(fd_dir);
        if (!d) return 0;
        struct dirent *e;
        int found = 0;
        while (!found && (e = readdir(d)) != NULL) {
            char link_path[600], target[4200];
            snprintf(link_path, sizeof link_path, "%s/%s", fd_dir, e->d_name);
            ssize_t n = readlink(link_path, target, sizeof target - 1);
            if (n <= 0) continue;
            target[n] = '\0';
            struct stat st;
            found = strncmp(target, dir, dir_len) == 0 && target[dir_len] == '/' && stat(link_path, &st) == 0 &&
                    S_ISREG(st.st_mode) && st.st_size > 0 && strcmp(target + dir_len + 1, except) != 0;
        }
        closedir(d);
        if (found) return 1;
        if (!l2_child_running(c)) return 0; /* it ended first */
        test_sleep_ms(1);
    }
    return 0;
}

int test_make_fifo(const char *path) { return mkfifo(path, 0600); }

void test_in_child(const char *(*fn)(void)) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) fail_msg("fork: %s", strerror(errno));
    if (pid == 0) {
        const char *problem = fn();
        if (problem) fprintf(stderr, "%s\n", problem);
        exit(problem ? 1 : 0);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFSIGNALED(status)) fail_msg("the child was killed by signal %d", WTERMSIG(status));
    if (WEXITSTATUS(status) != 0) fail_msg("the child exited with status %d (see above)", WEXITSTATUS(status));
}

void test_set_env(const char *name, const char *value) {
    if (value)
        setenv(name, value, 1);
    else
        unsetenv(name);
}

void test_sleep_ms(int ms) {
    struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) != 0 && errno == EINTR) {
    }
}

void test_sleep_us(int us) {
    struct timespec t = {us / 1000000, (long)(us % 1000000) * 1000L};
    while (nanosleep(&t, &t) != 0 && errno == EINTR) {
    }
}

double test_cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void test_set_mode(const char *path, unsigned mode) { assert_int_equal(chmod(path, (mode_t)mode), 0); }

int test_write_sparse(const char *path, uint64_t size, const test_file_part *parts, int n_parts) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return -1;
    int ok = ftruncate(fd, (off_t)size) == 0;
    for (int i = 0; ok && i < n_parts; i++)
        ok = pwrite(fd, parts[i].data, parts[i].len, (off_t)parts[i].offset) == (ssize_t)parts[i].len;
    return close(fd) == 0 && ok ? 0 : -1;
}

void test_limit_file_size(uint64_t bytes) {
    static struct rlimit old;
    static void (*old_handler)(int);
    if (bytes == 0) {
        setrlimit(RLIMIT_FSIZE, &old);
        signal(SIGXFSZ, old_handler);
        return;
    }
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    old_handler = signal(SIGXFSZ, SIG_IGN);
    struct rlimit small = old;
    small.rlim_cur = (rlim_t)bytes;
    if (old.rlim_max != RLIM_INFINITY && old.rlim_max < small.rlim_cur) small.rlim_cur = old.rlim_max;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
}

void test_default_signals(void) {
    const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGXFSZ};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) signal(sigs[i], SIG_DFL);
}
