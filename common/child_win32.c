/* child.h on Windows: CreateProcessW, pipes moved by threads of the
 * parent's, Ctrl-C through the child's console. */
#include "child.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>

#include "platform/platform.h"

#define SHARE_ALL (FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE)

/* ReadFile and WriteFile take 32-bit counts: large transfers go in pieces. */
#define IO_PIECE ((DWORD)1 << 30)

/* A file name or argument as UTF-16; NULL for bytes that are not UTF-8. */
static wchar_t *wide(const char *s) { return l2_win32_wide(s, 1); }

/* What a child's pipes carry, each moved by a thread of the parent's, so
 * that a child blocked on a full pipe never waits for l2_child_wait. */
typedef struct stream {
    HANDLE pipe;        /* the parent's end; NULL when none */
    char *data;         /* collected (output) or to send (input) */
    size_t len;
    SRWLOCK lock;       /* over data and len, which a collecting thread fills */
    l2_thread *thread;
} stream;

struct l2_child {
    HANDLE process;
    DWORD id;
    stream in, out, err;
};

static void send_input(void *arg) {
    stream *s = arg;
    size_t done = 0;
    while (done < s->len) {
        DWORD piece = s->len - done < IO_PIECE ? (DWORD)(s->len - done) : IO_PIECE, n = 0;
        if (!WriteFile(s->pipe, s->data + done, piece, &n, NULL) || n == 0) break;
        done += n;
    }
    CloseHandle(s->pipe);
    s->pipe = NULL;
}

static void collect(void *arg) {
    stream *s = arg;
    size_t cap = 0;
    for (;;) {
        char buf[65536];
        DWORD n = 0;
        if (!ReadFile(s->pipe, buf, sizeof buf, &n, NULL) || n == 0) break;
        AcquireSRWLockExclusive(&s->lock);
        int kept = 1;
        if (s->len + n + 1 > cap) {
            size_t bigger = cap ? cap : 4096;
            while (s->len + n + 1 > bigger) bigger *= 2;
            char *p = realloc(s->data, bigger);
            if (p) {
                s->data = p;
                cap = bigger;
            }
            kept = p != NULL;
        }
        if (kept) {
            memcpy(s->data + s->len, buf, n);
            s->len += n;
            s->data[s->len] = '\0';
        }
        ReleaseSRWLockExclusive(&s->lock);
        if (!kept) break;
    }
}

/* argv as one command line, each argument quoted as the C library's parser
 * reads it back: backslashes doubled before a quote, quotes escaped. */
static wchar_t *command_line(char *const argv[]) {
    size_t size = 1;
    for (int i = 0; argv[i]; i++) size += 2 * strlen(argv[i]) + 3;
    char *line = malloc(size), *o = line;
    if (!line) return NULL;
    for (int i = 0; argv[i]; i++) {
        if (i) *o++ = ' ';
        *o++ = '"';
        size_t slashes = 0;
        for (const char *p = argv[i];; p++) {
            if (*p == '\\') {
                slashes++;
                continue;
            }
            /* Before a quote or the closing quote, each backslash doubled. */
            size_t copies = *p == '"' || *p == '\0' ? 2 * slashes : slashes;
            for (size_t k = 0; k < copies; k++) *o++ = '\\';
            slashes = 0;
            if (*p == '\0') break;
            if (*p == '"') *o++ = '\\';
            *o++ = *p;
        }
        *o++ = '"';
    }
    *o = '\0';
    /* Arguments travel as UTF-16: bytes that are not UTF-8 cannot. */
    wchar_t *w = l2_win32_wide(line, 0);
    free(line);
    return w;
}

static void free_child(l2_child *c) {
    stream *all[] = {&c->in, &c->out, &c->err};
    for (int i = 0; i < 3; i++) {
        l2_thread_join(all[i]->thread);
        if (all[i]->pipe) CloseHandle(all[i]->pipe);
        free(all[i]->data);
    }
    if (c->process) CloseHandle(c->process);
    free(c);
}

/* A pipe whose child end (read for input, write for output) is inherited. */
static int child_pipe(HANDLE *parent, HANDLE *child, int input) {
    SECURITY_ATTRIBUTES sa = {sizeof sa, NULL, TRUE};
    HANDLE r, w;
    if (!CreatePipe(&r, &w, &sa, 0)) return l2_win32_last_errno();
    *parent = input ? w : r;
    *child = input ? r : w;
    SetHandleInformation(*parent, HANDLE_FLAG_INHERIT, 0);
    return 0;
}

int l2_child_start(char *const argv[], const char *cwd, const void *input, size_t input_len, unsigned flags,
                   l2_child **out) {
    l2_child *c = calloc(1, sizeof *c);
    if (!c) return ENOMEM;
    InitializeSRWLock(&c->out.lock);
    InitializeSRWLock(&c->err.lock);
    HANDLE ends[3] = {NULL, NULL, NULL}; /* the child's */
    int keep_input = (flags & L2_CHILD_KEEP_INPUT) != 0;
    int capture = (flags & L2_CHILD_CAPTURE) != 0;
    int e = child_pipe(&c->in.pipe, &ends[0], 1);
    if (e == 0 && capture) e = child_pipe(&c->out.pipe, &ends[1], 0);
    if (e == 0 && capture) e = child_pipe(&c->err.pipe, &ends[2], 0);
    if (e == 0 && !capture) {
        SECURITY_ATTRIBUTES sa = {sizeof sa, NULL, TRUE};
        ends[1] = CreateFileW(L"NUL", GENERIC_WRITE, SHARE_ALL, &sa, OPEN_EXISTING, 0, NULL);
        if (ends[1] == INVALID_HANDLE_VALUE || !DuplicateHandle(GetCurrentProcess(), ends[1], GetCurrentProcess(),
                                                                &ends[2], 0, TRUE, DUPLICATE_SAME_ACCESS))
            e = l2_win32_last_errno();
    }
    wchar_t *line = e == 0 ? command_line(argv) : NULL;
    wchar_t *program = e == 0 ? wide(argv[0]) : NULL, *folder = e == 0 && cwd ? wide(cwd) : NULL;
    if (e == 0 && (!line || !program || (cwd && !folder))) e = errno ? errno : ENOMEM;
    if (e == 0) {
        STARTUPINFOW si;
        memset(&si, 0, sizeof si);
        si.cb = sizeof si;
        si.dwFlags = STARTF_USESTDHANDLES;
        si.hStdInput = ends[0];
        si.hStdOutput = ends[1];
        si.hStdError = ends[2];
        PROCESS_INFORMATION pi;
        DWORD how = flags & L2_CHILD_INTERRUPTIBLE ? CREATE_NO_WINDOW : 0;
        if (CreateProcessW(program, line, NULL, NULL, TRUE, how, NULL, folder, &si, &pi)) {
            CloseHandle(pi.hThread);
            c->process = pi.hProcess;
            c->id = pi.dwProcessId;
        } else {
            e = l2_win32_last_errno();
        }
    }
    free(line);
    free(program);
    free(folder);
    for (int i = 0; i < 3; i++)
        if (ends[i] && ends[i] != INVALID_HANDLE_VALUE) CloseHandle(ends[i]);
    if (e == 0 && input_len > 0 && !keep_input) {
        if (!(c->in.data = malloc(input_len))) e = ENOMEM;
        else memcpy(c->in.data, input, input_len);
        c->in.len = input_len;
    }
    if (e == 0 && input_len > 0 && !keep_input) e = l2_thread_start(&c->in.thread, send_input, &c->in);
    if (e == 0 && input_len == 0 && !keep_input) {
        CloseHandle(c->in.pipe);
        c->in.pipe = NULL;
    }
    if (e == 0 && capture) e = l2_thread_start(&c->out.thread, collect, &c->out);
    if (e == 0 && capture) e = l2_thread_start(&c->err.thread, collect, &c->err);
    if (e == 0 && keep_input && input_len > 0) e = l2_child_send(c, input, input_len);
    if (e != 0) {
        if (c->process) TerminateProcess(c->process, 1);
        free_child(c);
        return e;
    }
    *out = c;
    return 0;
}

int l2_child_send(l2_child *c, const void *data, size_t n) {
    const char *p = data;
    while (n > 0) {
        DWORD piece = n < IO_PIECE ? (DWORD)n : IO_PIECE, done = 0;
        if (!c->in.pipe || !WriteFile(c->in.pipe, p, piece, &done, NULL) || done == 0)
            return c->in.pipe ? l2_win32_last_errno() : EPIPE;
        p += done;
        n -= done;
    }
    return 0;
}

void l2_child_end_input(l2_child *c) {
    if (c->in.pipe) CloseHandle(c->in.pipe);
    c->in.pipe = NULL;
}

char *l2_child_output(l2_child *c, size_t *len) {
    AcquireSRWLockShared(&c->out.lock);
    char *copy = malloc(c->out.len + 1);
    if (copy) {
        if (c->out.len) memcpy(copy, c->out.data, c->out.len);
        copy[c->out.len] = '\0';
        if (len) *len = c->out.len;
    }
    ReleaseSRWLockShared(&c->out.lock);
    return copy;
}

long l2_child_id(const l2_child *c) { return (long)c->id; }

int l2_child_running(l2_child *c) { return WaitForSingleObject(c->process, 0) == WAIT_TIMEOUT; }

/* The sender takes part in the child's console while it sends: the event
 * reaches it too, and is let pass for a while. */
static volatile LONG64 own_ctrl_c_until;

static BOOL WINAPI ignore_own_ctrl_c(DWORD type) {
    return type == CTRL_C_EVENT && (LONG64)GetTickCount64() < own_ctrl_c_until;
}

int l2_child_interrupt(l2_child *c) {
    static INIT_ONCE once = INIT_ONCE_STATIC_INIT;
    BOOL pending;
    if (InitOnceBeginInitialize(&once, 0, &pending, NULL) && pending) {
        SetConsoleCtrlHandler(ignore_own_ctrl_c, TRUE);
        InitOnceComplete(&once, 0, NULL);
    }
    InterlockedExchange64(&own_ctrl_c_until, (LONG64)GetTickCount64() + 5000);
    int had_console = GetConsoleWindow() != NULL || l2_win32_is_console(GetStdHandle(STD_ERROR_HANDLE));
    FreeConsole();
    int e = 0;
    if (!AttachConsole(c->id) || !GenerateConsoleCtrlEvent(CTRL_C_EVENT, 0)) e = l2_win32_last_errno();
    FreeConsole();
    if (had_console) AttachConsole(ATTACH_PARENT_PROCESS);
    return e;
}

int l2_child_wait(l2_child *c, char **out, size_t *out_len, char **err, size_t *err_len) {
    WaitForSingleObject(c->process, INFINITE);
    DWORD code = 0;
    int status = GetExitCodeProcess(c->process, &code) ? (int)code : -1;
    if (code == (DWORD)STATUS_CONTROL_C_EXIT) status = 128 + 2; /* as SIGINT on POSIX */
    stream *got[2] = {&c->out, &c->err};
    char **data[2] = {out, err};
    size_t *len[2] = {out_len, err_len};
    for (int i = 0; i < 2; i++) {
        l2_thread_join(got[i]->thread);
        got[i]->thread = NULL;
        if (!data[i]) continue;
        *data[i] = got[i]->data ? got[i]->data : calloc(1, 1);
        if (len[i]) *len[i] = got[i]->len;
        got[i]->data = NULL;
    }
    free_child(c);
    return status;
}
