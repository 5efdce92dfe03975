/* platform.h on POSIX systems (Linux, macOS, the BSDs): threads, clocks,
 * files, mappings, an output's temporary file, and the programs' terminal. */
#define _GNU_SOURCE /* O_TMPFILE, linkat */

#include "platform.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "checks.h"

/* ---------------------------------------------------------------- time */

static int64_t clock_ns(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + (int64_t)ts.tv_nsec;
}

int64_t l2_monotonic_ns(void) { return clock_ns(CLOCK_MONOTONIC); }

int64_t l2_wall_clock_ns(void) { return clock_ns(CLOCK_REALTIME); }

long l2_process_id(void) { return (long)getpid(); }

int l2_set_env(const char *name, const char *value) { return value ? setenv(name, value, 1) : unsetenv(name); }

/* --------------------------------------------------------- the machine */

int l2_processor_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > INT32_MAX ? INT32_MAX : (int)n;
}

size_t l2_physical_memory(void) {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0) return SIZE_MAX;
    size_t total;
    return l2_mul_size((size_t)pages, (size_t)page, &total) ? total : SIZE_MAX;
}

/* The first line of a small text file into buf; 0 when it cannot be read. */
static int read_line_of(const char *path, char *buf, size_t size) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    int ok = fgets(buf, (int)size, f) != NULL;
    fclose(f);
    if (ok) buf[strcspn(buf, "\n")] = '\0';
    return ok;
}

/* Linux: the level 3 caches in sysfs, each known by the processors that
 * share it; elsewhere (or without sysfs) the C library's figure for one. */
size_t l2_l3_cache_bytes(void) {
    enum { MAX_CACHES = 64 };
    char seen[MAX_CACHES][128]; /* the processor lists of the caches counted */
    int n_seen = 0;
    size_t total = 0;
    const int cpus = l2_processor_count();
    for (int cpu = 0; cpu < cpus && n_seen < MAX_CACHES; cpu++)
        for (int index = 0; index < 8; index++) {
            char path[128], value[128];
            snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/cache/index%d/level", cpu, index);
            if (!read_line_of(path, value, sizeof value)) break;
            if (strcmp(value, "3") != 0) continue;
            snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/cache/index%d/shared_cpu_list", cpu, index);
            char shared[128];
            if (!read_line_of(path, shared, sizeof shared)) continue;
            int known = 0;
            for (int i = 0; i < n_seen && !known; i++) known = strcmp(seen[i], shared) == 0;
            snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/cache/index%d/size", cpu, index);
            if (known || !read_line_of(path, value, sizeof value)) continue;
            char *end;
            unsigned long long size = strtoull(value, &end, 10);
            if (*end == 'K') size <<= 10;
            if (*end == 'M') size <<= 20;
            snprintf(seen[n_seen++], sizeof seen[0], "%s", shared);
            total += (size_t)size;
        }
#if defined(_SC_LEVEL3_CACHE_SIZE)
    if (total == 0) {
        long one = sysconf(_SC_LEVEL3_CACHE_SIZE);
        if (one > 0) total = (size_t)one;
    }
#endif
    return total;
}

long l2_peak_rss_kib(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return -1;
#if defined(__APPLE__)
    return ru.ru_maxrss / 1024; /* bytes there, KiB elsewhere */
#else
    return ru.ru_maxrss;
#endif
}

/* Blocks of 4 MiB and more (repacked weights, the KV cache) start on a
 * 2 MiB boundary and ask for transparent huge pages where the system has
 * them: a token walks through every byte of the weights, and with 4 KiB
 * pages that is a TLB miss every 4 KiB. */
#define HUGE_PAGE ((size_t)2 << 20)

void *l2_aligned_malloc(size_t alignment, size_t size) {
    void *p = NULL;
    const int large = size >= 2 * HUGE_PAGE;
    if (large && alignment < HUGE_PAGE) alignment = HUGE_PAGE;
    if (posix_memalign(&p, alignment, size ? size : 1) != 0) return NULL;
#if defined(MADV_HUGEPAGE)
    if (large) (void)madvise(p, size & ~(HUGE_PAGE - 1), MADV_HUGEPAGE); /* advice: refused is fine */
#endif
    return p;
}

void l2_aligned_free(void *p) { free(p); }

/* ------------------------------------------------------------- threads */

struct l2_thread {
    pthread_t id;
    void (*fn)(void *);
    void *arg;
};

static void *thread_main(void *t) {
    ((l2_thread *)t)->fn(((l2_thread *)t)->arg);
    return NULL;
}

int l2_thread_start(l2_thread **out, void (*fn)(void *), void *arg) {
    l2_thread *t = malloc(sizeof *t);
    if (!t) return EAGAIN;
    t->fn = fn;
    t->arg = arg;
    /* The library's threads take no signal meant for the program (a
     * server's SIGTERM, a CLI's SIGINT): they start with every asynchronous
     * signal blocked, whatever the caller's mask is at the time. */
    sigset_t all, caller;
    sigfillset(&all);
    const int synchronous[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT, SIGSYS};
    for (size_t i = 0; i < sizeof synchronous / sizeof synchronous[0]; i++) sigdelset(&all, synchronous[i]);
    pthread_sigmask(SIG_BLOCK, &all, &caller);
    int rc = pthread_create(&t->id, NULL, thread_main, t);
    pthread_sigmask(SIG_SETMASK, &caller, NULL);
    if (rc != 0) {
        free(t);
        return rc;
    }
    *out = t;
    return 0;
}

void l2_thread_join(l2_thread *t) {
    if (!t) return;
    pthread_join(t->id, NULL);
    free(t);
}

void l2_thread_yield(void) { sched_yield(); }

struct l2_monitor {
    pthread_mutex_t mutex;
    pthread_cond_t cond;
};

l2_monitor *l2_monitor_create(void) {
    l2_monitor *m = malloc(sizeof *m);
    if (!m) return NULL;
    if (pthread_mutex_init(&m->mutex, NULL) != 0) {
        free(m);
        return NULL;
    }
    if (pthread_cond_init(&m->cond, NULL) != 0) {
        pthread_mutex_destroy(&m->mutex);
        free(m);
        return NULL;
    }
    return m;
}

void l2_monitor_destroy(l2_monitor *m) {
    if (!m) return;
    pthread_cond_destroy(&m->cond);
    pthread_mutex_destroy(&m->mutex);
    free(m);
}

void l2_monitor_lock(l2_monitor *m) { pthread_mutex_lock(&m->mutex); }
void l2_monitor_unlock(l2_monitor *m) { pthread_mutex_unlock(&m->mutex); }
void l2_monitor_wait(l2_monitor *m) { pthread_cond_wait(&m->cond, &m->mutex); }
void l2_monitor_wake_all(l2_monitor *m) { pthread_cond_broadcast(&m->cond); }

/* --------------------------------------------------------------- files */

FILE *l2_fopen(const char *path, const char *mode) { return fopen(path, mode); }

l2_path_kind l2_path_lookup(const char *path, l2_file_id *id, int64_t *size) {
    struct stat st;
    if (stat(path, &st) != 0) return lstat(path, &st) == 0 ? L2_PATH_DANGLING : L2_PATH_NONE;
    if (id) {
        id->volume = (uint64_t)st.st_dev;
        id->index = (uint64_t)st.st_ino;
    }
    if (size) *size = (int64_t)st.st_size;
    return S_ISREG(st.st_mode) ? L2_PATH_FILE : S_ISDIR(st.st_mode) ? L2_PATH_FOLDER : L2_PATH_OTHER;
}

int l2_make_folder(const char *path) { return mkdir(path, 0777) == 0 ? 0 : errno; }

struct l2_file {
    int fd;
};

llama2_status l2_file_open(const char *path, l2_file **out, uint64_t *size, llama2_error *err) {
    /* O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused
     * below as not a regular file); reads of regular files ignore it. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return l2_fail(err, LLAMA2_E_IO, "cannot open: %s", strerror(errno));
    struct stat st;
    llama2_status s = LLAMA2_OK;
    l2_file *f = NULL;
    if (fstat(fd, &st) != 0)
        s = l2_fail(err, LLAMA2_E_IO, "cannot stat: %s", strerror(errno));
    else if (!S_ISREG(st.st_mode))
        s = l2_fail(err, LLAMA2_E_IO, "not a regular file");
    else if (!(f = malloc(sizeof *f)))
        s = l2_fail(err, LLAMA2_E_NOMEM, "out of memory");
    if (s != LLAMA2_OK) {
        close(fd);
        return s;
    }
    f->fd = fd;
    *size = (uint64_t)st.st_size;
    *out = f;
    return LLAMA2_OK;
}

llama2_status l2_file_read(l2_file *f, void *buf, size_t size, llama2_error *err) {
    size_t done = 0;
    while (done < size) {
        ssize_t got = pread(f->fd, (unsigned char *)buf + done, size - done, (off_t)done);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0)
            return l2_fail(err, LLAMA2_E_IO, "read failed after %zu bytes: %s", done,
                           got < 0 ? strerror(errno) : "unexpected end of file");
        done += (size_t)got;
    }
    return LLAMA2_OK;
}

llama2_status l2_file_map(l2_file *f, size_t size, void **data, llama2_error *err) {
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, f->fd, 0);
    if (map == MAP_FAILED) return l2_fail(err, LLAMA2_E_IO, "cannot map: %s", strerror(errno));
    *data = map;
    return LLAMA2_OK;
}

void l2_file_close(l2_file *f) {
    if (!f) return;
    close(f->fd);
    free(f);
}

void l2_unmap(void *data, size_t size) {
    if (data) munmap(data, size);
}

void l2_mapping_release(void *data, size_t offset, size_t size) {
    const long page = sysconf(_SC_PAGESIZE);
    if (!data || page <= 0) return;
    const size_t p = (size_t)page, begin = (offset + p - 1) / p * p, end = (offset + size) / p * p;
    /* A private read-only file mapping: its pages are the file's, so
     * dropping them loses nothing. Advice: refused is fine. */
    if (end > begin) (void)madvise((unsigned char *)data + begin, end - begin, MADV_DONTNEED);
}

/* ------------------------------------------- an output's temporary file */

struct l2_temp_file {
    int fd;
    char *name;         /* the named temporary file; NULL for an unnamed one */
    int holds_signals;  /* 1: saved_mask is to be restored */
    sigset_t saved_mask;
};

/* The signals that end a program by default and can be held back. */
static void ending_signals(sigset_t *set) {
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGHUP);
    sigaddset(set, SIGQUIT);
    sigaddset(set, SIGXFSZ); /* a write past the file size limit */
}

/* "<folder>/.<name>.tmp-<pid>-<nonce>": a name for a file beside path. */
static void temp_name(char *buf, size_t size, const char *path, unsigned attempt) {
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    int dir_len = slash ? (int)(slash - path + 1) : 0;
    snprintf(buf, size, "%.*s.%s.tmp-%ld-%lx", dir_len, path, name, l2_process_id(),
             (unsigned long)(l2_wall_clock_ns() % 1000000000) ^ ((unsigned long)attempt << 20));
}

#ifdef O_TMPFILE
/* An unnamed file in the folder of path, or -1 where that cannot be had
 * (no O_TMPFILE in the file system, or no /proc to link it by at the end). */
static int open_unnamed(const char *path) {
    if (access("/proc/self/fd", X_OK) != 0) return -1;
    const char *slash = strrchr(path, '/');
    size_t len = !slash ? 1 : slash == path ? 1 : (size_t)(slash - path);
    char *dir = malloc(len + 1);
    if (!dir) return -1;
    memcpy(dir, slash ? path : ".", len);
    dir[len] = '\0';
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

/* A new named temporary file beside path (0666 less the umask), with the
 * ending signals held from before it exists. */
static int open_named(l2_temp_file *f, const char *path) {
    size_t size = strlen(path) + 64;
    if (!(f->name = malloc(size))) return ENOMEM;
    sigset_t held;
    ending_signals(&held);
    pthread_sigmask(SIG_BLOCK, &held, &f->saved_mask);
    f->holds_signals = 1;
    for (unsigned attempt = 0; attempt < 100; attempt++) {
        temp_name(f->name, size, path, attempt);
        f->fd = open(f->name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (f->fd >= 0 || errno != EEXIST) break;
    }
    if (f->fd >= 0) return 0;
    int e = errno;
    free(f->name);
    f->name = NULL;
    return e;
}

int l2_temp_create(const char *path, int named, l2_temp_file **out) {
    l2_temp_file *f = calloc(1, sizeof *f);
    if (!f) return ENOMEM;
    f->fd = -1;
#ifdef O_TMPFILE
    if (!named) f->fd = open_unnamed(path);
#endif
    int e = f->fd >= 0 ? 0 : open_named(f, path);
    if (e != 0) {
        l2_temp_close(f);
        return e;
    }
    *out = f;
    return 0;
}

int l2_temp_write(l2_temp_file *f, const void *data, size_t n) {
    const unsigned char *p = data;
    while (n > 0) {
        ssize_t k = write(f->fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return k < 0 ? errno : ENOSPC;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

int l2_temp_write_at(l2_temp_file *f, const void *data, size_t n, uint64_t offset) {
    const unsigned char *p = data;
    while (n > 0) {
        ssize_t k = pwrite(f->fd, p, n, (off_t)offset);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return k < 0 ? errno : ENOSPC;
        p += k;
        n -= (size_t)k;
        offset += (uint64_t)k;
    }
    return 0;
}

int l2_temp_interrupted(const l2_temp_file *f) {
    if (!f || !f->holds_signals) return 0;
    sigset_t pending, held;
    ending_signals(&held);
    if (sigpending(&pending) != 0) return 0;
    for (int sig = 1; sig < 32; sig++)
        if (sigismember(&held, sig) == 1 && sigismember(&pending, sig) == 1) return 1;
    return 0;
}

int l2_temp_sync(l2_temp_file *f) { return fsync(f->fd) == 0 ? 0 : errno; }

/* The named temporary file takes the name `to`. */
static int name_named(l2_temp_file *f, const char *to, int replace) {
    if (replace) {
        if (rename(f->name, to) != 0) return errno;
    } else if (link(f->name, to) == 0) {
        /* link() refuses an existing name, where rename() would replace it;
         * the temporary name goes in l2_temp_close. */
        return 0;
    } else {
        struct stat st;
        if (errno == EEXIST) return EEXIST;
        /* A file system without hard links: check, then rename. */
        if (lstat(to, &st) == 0) return EEXIST;
        if (rename(f->name, to) != 0) return errno;
    }
    free(f->name); /* renamed: nothing to remove */
    f->name = NULL;
    return 0;
}

int l2_temp_name(l2_temp_file *f, const char *path, int replace) {
    if (f->name) return name_named(f, path, replace);
#ifdef O_TMPFILE
    if (link_unnamed(f->fd, path) == 0) return 0;
    if (errno != EEXIST || !replace) return errno;
    /* Replacing: a name of its own first, then renamed over the old file. */
    char temp[4200];
    for (unsigned attempt = 0; attempt < 100; attempt++) {
        temp_name(temp, sizeof temp, path, attempt);
        if (link_unnamed(f->fd, temp) == 0) {
            if (rename(temp, path) == 0) return 0;
            int e = errno;
            unlink(temp);
            return e;
        }
        if (errno != EEXIST) return errno;
    }
#endif
    return EEXIST;
}

void l2_temp_close(l2_temp_file *f) {
    if (!f) return;
    if (f->fd >= 0) close(f->fd);
    if (f->name) unlink(f->name);
    /* Only now may a held signal end the program: the file is gone. */
    if (f->holds_signals) pthread_sigmask(SIG_SETMASK, &f->saved_mask, NULL);
    free(f->name);
    free(f);
}

/* -------------------------------------------------------- the programs */

void l2_program_start(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
}

int l2_stdout_write(const char *text, size_t len) {
    while (len > 0) {
        ssize_t n = write(STDOUT_FILENO, text, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        text += n;
        len -= (size_t)n;
    }
    return 0;
}

/* The process's SIGINT may be delivered to any of its threads that does not
 * hold it back: the caller's, the pool's, or those a BLAS library starts
 * when it is loaded, before main. So the handler, wherever it runs, only
 * records the signal and writes a byte to a pipe: l2_interrupt_take takes a
 * recorded one, and l2_stdin_read waits for input or that byte, so that a
 * Ctrl-C that comes just before the wait still ends it. Signal handlers
 * belong to the process: this state is the process's too. */
static atomic_int sigint_seen;
static int sigint_pipe[2] = {-1, -1};

static void on_sigint(int sig) {
    (void)sig;
    const int saved = errno;
    atomic_store(&sigint_seen, 1);
    ssize_t n = write(sigint_pipe[1], "", 1); /* a full pipe: a byte is already waiting */
    (void)n;
    errno = saved;
}

int l2_interrupt_catch(void) {
    if (sigint_pipe[0] >= 0) return 0;
    int fds[2];
    if (pipe(fds) != 0) return -1;
    for (int i = 0; i < 2; i++) {
        fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
        fcntl(fds[i], F_SETFD, FD_CLOEXEC);
    }
    sigint_pipe[0] = fds[0];
    sigint_pipe[1] = fds[1];
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    return 0;
}

static void drain_sigint_pipe(void) {
    char bytes[64];
    while (read(sigint_pipe[0], bytes, sizeof bytes) > 0) {
    }
}

/* The handler records before it writes its byte: a byte seen with nothing
 * recorded is of one taken. */
int l2_interrupt_take(void) {
    if (sigint_pipe[0] < 0 || !atomic_exchange(&sigint_seen, 0)) return 0;
    drain_sigint_pipe();
    return 1;
}

long l2_stdin_read(char *buf, size_t n) {
    for (;;) {
        if (sigint_pipe[0] >= 0) {
            struct pollfd wait[2] = {{STDIN_FILENO, POLLIN, 0}, {sigint_pipe[0], POLLIN, 0}};
            if (poll(wait, 2, -1) < 0) {
                if (errno == EINTR) continue;
                return -1;
            }
            if (wait[1].revents) {
                drain_sigint_pipe();
                if (atomic_load(&sigint_seen)) return L2_READ_INTERRUPTED;
            }
            if (!wait[0].revents) continue;
        }
        ssize_t got = read(STDIN_FILENO, buf, n);
        if (got < 0 && errno == EINTR) continue;
        return got < 0 ? -1 : (long)got;
    }
}

const char *l2_program_path(const char *argv0) {
    static char path[4096];
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
    if (n <= 0 || (size_t)n >= sizeof path - 1) return argv0;
    path[n] = '\0';
    return path;
}
