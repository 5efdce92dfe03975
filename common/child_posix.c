/* child.h on POSIX systems: fork and exec, pipes moved by a thread of the
 * parent's. */
#include "child.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "platform/platform.h"

/* What a child's pipes carry, moved by a thread of the parent's (the pump)
 * so that a child blocked on a full pipe never waits for l2_child_wait. */
typedef struct buffer {
    char *data;
    size_t len, cap;
} buffer;

struct l2_child {
    pid_t pid;
    int reaped, status;
    int in, out, err;   /* the parent's ends, -1 when none or closed */
    int keep_input;     /* the input is l2_child_send's, not the pump's */
    unsigned char *input;
    size_t input_len, written;
    buffer got[2];      /* output, error */
    l2_monitor *lock;   /* over got, which the pump fills */
    l2_thread *pump;
};

static int append(buffer *b, const char *data, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (b->len + n + 1 > cap) cap *= 2;
        char *bigger = realloc(b->data, cap);
        if (!bigger) return -1;
        b->data = bigger;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

static void close_fd(int *fd) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
}

static void pump(void *arg) {
    l2_child *c = arg;
    /* A write to a child that is gone fails with EPIPE here, rather than
     * raising SIGPIPE in the process (the signal goes to this thread). */
    sigset_t pipe_signal;
    sigemptyset(&pipe_signal);
    sigaddset(&pipe_signal, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_signal, NULL);
    for (;;) {
        struct pollfd fds[3] = {{c->out, POLLIN, 0}, {c->err, POLLIN, 0}, {c->keep_input ? -1 : c->in, POLLOUT, 0}};
        if (fds[0].fd < 0 && fds[1].fd < 0 && fds[2].fd < 0) break;
        if (poll(fds, 3, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        char buf[65536];
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            ssize_t n = read(fds[i].fd, buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            l2_monitor_lock(c->lock);
            int kept = n > 0 && append(&c->got[i], buf, (size_t)n) == 0;
            l2_monitor_unlock(c->lock);
            if (!kept) close_fd(i == 0 ? &c->out : &c->err);
        }
        if (fds[2].fd >= 0 && (fds[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t n = write(c->in, c->input + c->written, c->input_len - c->written);
            if (n > 0) c->written += (size_t)n;
            if ((n < 0 && errno != EINTR && errno != EAGAIN) || c->written == c->input_len) close_fd(&c->in);
        }
    }
}

static void free_child(l2_child *c) {
    close_fd(&c->in);
    close_fd(&c->out);
    close_fd(&c->err);
    free(c->input);
    free(c->got[0].data);
    free(c->got[1].data);
    l2_monitor_destroy(c->lock);
    free(c);
}

/* A pipe whose ends close on exec (the child gets its own by dup2). */
static int cloexec_pipe(int fds[2]) {
    if (pipe(fds) != 0) return -1;
    fcntl(fds[0], F_SETFD, FD_CLOEXEC);
    fcntl(fds[1], F_SETFD, FD_CLOEXEC);
    return 0;
}

int l2_child_start(char *const argv[], const char *cwd, const void *input, size_t input_len, unsigned flags,
                   l2_child **out) {
    l2_child *c = calloc(1, sizeof *c);
    if (!c) return ENOMEM;
    c->in = c->out = c->err = -1;
    c->keep_input = (flags & L2_CHILD_KEEP_INPUT) != 0;
    int in[2] = {-1, -1}, outp[2] = {-1, -1}, errp[2] = {-1, -1};
    int capture = (flags & L2_CHILD_CAPTURE) != 0;
    if (!(c->lock = l2_monitor_create()) || (input_len > 0 && !(c->input = malloc(input_len)))) {
        free_child(c);
        return ENOMEM;
    }
    if (input_len > 0) memcpy(c->input, input, input_len);
    c->input_len = input_len;
    if (cloexec_pipe(in) != 0 || (capture && (cloexec_pipe(outp) != 0 || cloexec_pipe(errp) != 0))) {
        int e = errno;
        int *fds[] = {in, outp, errp};
        for (int i = 0; i < 3; i++) {
            close_fd(&fds[i][0]);
            close_fd(&fds[i][1]);
        }
        free_child(c);
        return e;
    }
    fflush(NULL);
    c->pid = fork();
    if (c->pid == 0) {
        int null = capture ? -1 : open("/dev/null", O_WRONLY);
        dup2(in[0], 0);
        dup2(capture ? outp[1] : null, 1);
        dup2(capture ? errp[1] : null, 2);
        if (cwd && chdir(cwd) != 0) _exit(126);
        /* The default actions (a job a shell starts in the background
         * inherits SIGINT and SIGQUIT ignored), none held back. */
        const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGXFSZ, SIGPIPE};
        sigset_t all;
        sigemptyset(&all);
        for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
            signal(sigs[i], SIG_DFL);
            sigaddset(&all, sigs[i]);
        }
        sigprocmask(SIG_UNBLOCK, &all, NULL);
        execv(argv[0], argv);
        _exit(127);
    }
    int e = c->pid < 0 ? errno : 0;
    close(in[0]);
    close_fd(&outp[1]);
    close_fd(&errp[1]);
    c->in = in[1];
    c->out = outp[0];
    c->err = errp[0];
    if (input_len == 0 && !c->keep_input) close_fd(&c->in);
    if (e == 0 && ((c->in >= 0 && !c->keep_input) || capture)) e = l2_thread_start(&c->pump, pump, c);
    if (e == 0 && c->keep_input && input_len > 0) e = l2_child_send(c, input, input_len);
    if (e != 0) {
        if (c->pid > 0) {
            kill(c->pid, SIGKILL);
            waitpid(c->pid, NULL, 0);
        }
        free_child(c);
        return e;
    }
    *out = c;
    return 0;
}

int l2_child_send(l2_child *c, const void *data, size_t n) {
    /* A child that is gone gives EPIPE, not a SIGPIPE that ends this
     * process: the signal is held back and taken here. */
    sigset_t pipe_signal, saved;
    sigemptyset(&pipe_signal);
    sigaddset(&pipe_signal, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_signal, &saved);
    const unsigned char *p = data;
    int e = c->in < 0 ? EPIPE : 0;
    while (e == 0 && n > 0) {
        ssize_t k = write(c->in, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            e = k < 0 ? errno : EPIPE;
            break;
        }
        p += k;
        n -= (size_t)k;
    }
    sigset_t pending;
    int sig;
    if (e == EPIPE && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1) sigwait(&pipe_signal, &sig);
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    return e;
}

void l2_child_end_input(l2_child *c) { close_fd(&c->in); }

char *l2_child_output(l2_child *c, size_t *len) {
    l2_monitor_lock(c->lock);
    size_t n = c->got[0].len;
    char *copy = malloc(n + 1);
    if (copy) {
        if (n) memcpy(copy, c->got[0].data, n);
        copy[n] = '\0';
        if (len) *len = n;
    }
    l2_monitor_unlock(c->lock);
    return copy;
}

long l2_child_id(const l2_child *c) { return (long)c->pid; }

static int status_of(int status) {
    return WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
}

int l2_child_running(l2_child *c) {
    int status;
    if (c->reaped) return 0;
    if (waitpid(c->pid, &status, WNOHANG) != c->pid) return 1;
    c->reaped = 1;
    c->status = status_of(status);
    return 0;
}

int l2_child_interrupt(l2_child *c) { return c->reaped || kill(c->pid, SIGINT) == 0 ? 0 : errno; }

/* The collected bytes of one pipe, handed over ("" when none). */
static void hand_over(buffer *b, char **data, size_t *len) {
    if (!data) return;
    if (!b->data) append(b, "", 0);
    *data = b->data;
    if (len) *len = b->len;
    b->data = NULL;
}

int l2_child_wait(l2_child *c, char **out, size_t *out_len, char **err, size_t *err_len) {
    l2_thread_join(c->pump);
    int status;
    if (!c->reaped) {
        while (waitpid(c->pid, &status, 0) < 0 && errno == EINTR) {
        }
        c->status = status_of(status);
    }
    int result = c->status;
    hand_over(&c->got[0], out, out_len);
    hand_over(&c->got[1], err, err_len);
    free_child(c);
    return result;
}
