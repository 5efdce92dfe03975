/* platform.h on Windows (MinGW-w64 or MSVC; Windows 10 and later): Win32
 * threads with SRW locks and condition variables, file mappings, the
 * console's Ctrl-C, and UTF-8 turned into the wide-character calls. */
#ifndef _WIN32_WINNT
#define _WIN32_WINNT 0x0A00
#endif
#define WIN32_LEAN_AND_MEAN
#define PSAPI_VERSION 2 /* GetProcessMemoryInfo from kernel32, no psapi.dll */

#include "platform.h"

#include <errno.h>
#include <fcntl.h>
#include <io.h>
#include <malloc.h>
#include <process.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>

#include <psapi.h>
#include <shellapi.h>

#include "checks.h"

/* ------------------------------------------------------------- helpers */

/* The errno value of a Windows error code: messages then read as on POSIX
 * systems ("No such file or directory"). */
static int errno_of(DWORD e) {
    switch (e) {
    case ERROR_FILE_NOT_FOUND:
    case ERROR_PATH_NOT_FOUND:
    case ERROR_INVALID_DRIVE:
    case ERROR_BAD_NETPATH:
    case ERROR_BAD_NET_NAME:
    case ERROR_INVALID_NAME: return ENOENT;
    case ERROR_ACCESS_DENIED:
    case ERROR_SHARING_VIOLATION:
    case ERROR_LOCK_VIOLATION:
    case ERROR_CANNOT_MAKE: return EACCES;
    case ERROR_FILE_EXISTS:
    case ERROR_ALREADY_EXISTS: return EEXIST;
    case ERROR_DISK_FULL:
    case ERROR_HANDLE_DISK_FULL: return ENOSPC;
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_OUTOFMEMORY:
    case ERROR_COMMITMENT_LIMIT: return ENOMEM;
    case ERROR_DIRECTORY: return ENOTDIR;
    case ERROR_DIR_NOT_EMPTY: return ENOTEMPTY;
    case ERROR_FILENAME_EXCED_RANGE: return ENAMETOOLONG;
    case ERROR_WRITE_PROTECT: return EROFS;
    case ERROR_NOT_SAME_DEVICE: return EXDEV;
    case ERROR_BROKEN_PIPE:
    case ERROR_NO_DATA: return EPIPE;
    case ERROR_OPERATION_ABORTED: return EINTR;
    case ERROR_INVALID_PARAMETER: return EINVAL;
    default: return EIO;
    }
}

static int last_errno(void) { return errno_of(GetLastError()); }

/* A UTF-8 string as UTF-16, malloc'd; NULL (errno set) when memory runs
 * out or, with `strict`, when it is not valid UTF-8 (a file name: no file
 * can have it); else bytes that are not UTF-8 become U+FFFD. */
static wchar_t *to_wide(const char *s, int strict) {
    DWORD flags = strict ? MB_ERR_INVALID_CHARS : 0;
    int n = MultiByteToWideChar(CP_UTF8, flags, s, -1, NULL, 0);
    if (n <= 0) {
        errno = ENOENT;
        return NULL;
    }
    wchar_t *w = malloc((size_t)n * sizeof *w);
    if (!w) {
        errno = ENOMEM;
        return NULL;
    }
    MultiByteToWideChar(CP_UTF8, flags, s, -1, w, n);
    return w;
}

static wchar_t *wide(const char *s) { return to_wide(s, 1); }

int l2_win32_last_errno(void) { return last_errno(); }
wchar_t *l2_win32_wide(const char *s, int strict) { return to_wide(s, strict); }

/* A UTF-16 string as UTF-8, malloc'd; NULL when memory runs out. */
static char *narrow(const wchar_t *w) {
    int n = WideCharToMultiByte(CP_UTF8, 0, w, -1, NULL, 0, NULL, NULL);
    char *s = n > 0 ? malloc((size_t)n) : NULL;
    if (s) WideCharToMultiByte(CP_UTF8, 0, w, -1, s, n, NULL, NULL);
    return s;
}

/* CreateFileW of a UTF-8 path; INVALID_HANDLE_VALUE with errno set. */
static HANDLE open_path(const char *path, DWORD access, DWORD share, DWORD disposition, DWORD flags) {
    wchar_t *w = wide(path);
    if (!w) return INVALID_HANDLE_VALUE;
    HANDLE h = CreateFileW(w, access, share, NULL, disposition, flags, NULL);
    if (h == INVALID_HANDLE_VALUE) errno = last_errno();
    free(w);
    return h;
}

#define SHARE_ALL (FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE)

/* ReadFile and WriteFile take 32-bit counts: large transfers go in pieces. */
#define IO_PIECE ((DWORD)1 << 30)

/* ---------------------------------------------------------------- time */

int64_t l2_monotonic_ns(void) {
    LARGE_INTEGER count, freq;
    QueryPerformanceCounter(&count);
    QueryPerformanceFrequency(&freq);
    /* In two parts, so that count * 1e9 cannot overflow. */
    int64_t seconds = count.QuadPart / freq.QuadPart, rest = count.QuadPart % freq.QuadPart;
    return seconds * 1000000000 + rest * 1000000000 / freq.QuadPart;
}

int64_t l2_wall_clock_ns(void) {
    FILETIME ft;
    GetSystemTimePreciseAsFileTime(&ft);
    /* 100-nanosecond ticks since 1601. */
    int64_t ticks = (int64_t)(((uint64_t)ft.dwHighDateTime << 32) | ft.dwLowDateTime);
    return (ticks - 116444736000000000) * 100;
}

long l2_process_id(void) { return (long)GetCurrentProcessId(); }

/* An empty value removes the variable on Windows. */
int l2_set_env(const char *name, const char *value) { return _putenv_s(name, value ? value : ""); }

/* --------------------------------------------------------- the machine */

int l2_processor_count(void) {
    DWORD n = GetActiveProcessorCount(ALL_PROCESSOR_GROUPS);
    return n < 1 ? 1 : n > INT32_MAX ? INT32_MAX : (int)n;
}

size_t l2_physical_memory(void) {
    MEMORYSTATUSEX ms;
    ms.dwLength = sizeof ms;
    if (!GlobalMemoryStatusEx(&ms)) return SIZE_MAX;
    return ms.ullTotalPhys > SIZE_MAX ? SIZE_MAX : (size_t)ms.ullTotalPhys;
}

/* Each level 3 cache the system describes is one instance. */
size_t l2_l3_cache_bytes(void) {
    DWORD bytes = 0;
    GetLogicalProcessorInformation(NULL, &bytes);
    SYSTEM_LOGICAL_PROCESSOR_INFORMATION *info = bytes ? malloc(bytes) : NULL;
    size_t total = 0;
    if (info && GetLogicalProcessorInformation(info, &bytes)) {
        for (DWORD i = 0; i < bytes / sizeof *info; i++)
            if (info[i].Relationship == RelationCache && info[i].Cache.Level == 3) total += info[i].Cache.Size;
    }
    free(info);
    return total;
}

long l2_peak_rss_kib(void) {
    PROCESS_MEMORY_COUNTERS pmc;
    if (!GetProcessMemoryInfo(GetCurrentProcess(), &pmc, sizeof pmc)) return -1;
    return (long)(pmc.PeakWorkingSetSize / 1024);
}

void *l2_aligned_malloc(size_t alignment, size_t size) { return _aligned_malloc(size ? size : 1, alignment); }

void l2_aligned_free(void *p) { _aligned_free(p); }

/* ------------------------------------------------------------- threads */

struct l2_thread {
    HANDLE handle;
    void (*fn)(void *);
    void *arg;
};

/* _beginthreadex rather than CreateThread: the C library's per-thread
 * state is set up for threads that call it. */
static unsigned __stdcall thread_main(void *t) {
    ((l2_thread *)t)->fn(((l2_thread *)t)->arg);
    return 0;
}

int l2_thread_start(l2_thread **out, void (*fn)(void *), void *arg) {
    l2_thread *t = malloc(sizeof *t);
    if (!t) return EAGAIN;
    t->fn = fn;
    t->arg = arg;
    t->handle = (HANDLE)_beginthreadex(NULL, 0, thread_main, t, 0, NULL);
    if (!t->handle) {
        free(t);
        return EAGAIN;
    }
    *out = t;
    return 0;
}

void l2_thread_join(l2_thread *t) {
    if (!t) return;
    WaitForSingleObject(t->handle, INFINITE);
    CloseHandle(t->handle);
    free(t);
}

void l2_thread_yield(void) { SwitchToThread(); }

struct l2_monitor {
    SRWLOCK lock;
    CONDITION_VARIABLE cond;
};

l2_monitor *l2_monitor_create(void) {
    l2_monitor *m = malloc(sizeof *m);
    if (!m) return NULL;
    InitializeSRWLock(&m->lock);
    InitializeConditionVariable(&m->cond);
    return m;
}

void l2_monitor_destroy(l2_monitor *m) { free(m); }
void l2_monitor_lock(l2_monitor *m) { AcquireSRWLockExclusive(&m->lock); }
void l2_monitor_unlock(l2_monitor *m) { ReleaseSRWLockExclusive(&m->lock); }
void l2_monitor_wait(l2_monitor *m) { SleepConditionVariableSRW(&m->cond, &m->lock, INFINITE, 0); }
void l2_monitor_wake_all(l2_monitor *m) { WakeAllConditionVariable(&m->cond); }

/* --------------------------------------------------------------- files */

FILE *l2_fopen(const char *path, const char *mode) {
    wchar_t *wpath = wide(path), *wmode = wide(mode);
    FILE *f = wpath && wmode ? _wfopen(wpath, wmode) : NULL;
    if (!f && wpath && errno == EACCES) {
        /* Windows refuses to open a folder as a file; say so as POSIX does. */
        DWORD attrs = GetFileAttributesW(wpath);
        if (attrs != INVALID_FILE_ATTRIBUTES && (attrs & FILE_ATTRIBUTE_DIRECTORY)) errno = EISDIR;
    }
    int e = errno;
    free(wpath);
    free(wmode);
    errno = e;
    return f;
}

/* The kind, id and size of an open handle. */
static l2_path_kind handle_kind(HANDLE h, l2_file_id *id, int64_t *size) {
    if (GetFileType(h) != FILE_TYPE_DISK) return L2_PATH_OTHER;
    BY_HANDLE_FILE_INFORMATION info;
    if (!GetFileInformationByHandle(h, &info)) return L2_PATH_OTHER;
    if (id) {
        id->volume = info.dwVolumeSerialNumber;
        id->index = ((uint64_t)info.nFileIndexHigh << 32) | info.nFileIndexLow;
    }
    if (size) *size = (int64_t)(((uint64_t)info.nFileSizeHigh << 32) | info.nFileSizeLow);
    return info.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY ? L2_PATH_FOLDER : L2_PATH_FILE;
}

l2_path_kind l2_path_lookup(const char *path, l2_file_id *id, int64_t *size) {
    /* No access asked: only the file's attributes are read (links followed;
     * FILE_FLAG_BACKUP_SEMANTICS opens folders too). */
    HANDLE h = open_path(path, 0, SHARE_ALL, OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS);
    if (h != INVALID_HANDLE_VALUE) {
        l2_path_kind kind = handle_kind(h, id, size);
        CloseHandle(h);
        return kind;
    }
    /* GetFileAttributesW does not follow links: a link whose target cannot
     * be opened still has attributes. */
    wchar_t *w = wide(path);
    DWORD attrs = w ? GetFileAttributesW(w) : INVALID_FILE_ATTRIBUTES;
    free(w);
    if (attrs == INVALID_FILE_ATTRIBUTES) return L2_PATH_NONE;
    if (attrs & FILE_ATTRIBUTE_REPARSE_POINT) return L2_PATH_DANGLING;
    /* There, but not to be opened (locked, no rights): no id. */
    if (id) id->volume = id->index = 0;
    if (size) *size = -1;
    return attrs & FILE_ATTRIBUTE_DIRECTORY ? L2_PATH_FOLDER : L2_PATH_FILE;
}

int l2_make_folder(const char *path) {
    wchar_t *w = wide(path);
    if (!w) return errno;
    int e = CreateDirectoryW(w, NULL) ? 0 : last_errno();
    free(w);
    return e;
}

struct l2_file {
    HANDLE h;
};

llama2_status l2_file_open(const char *path, l2_file **out, uint64_t *size, llama2_error *err) {
    HANDLE h = open_path(path, GENERIC_READ, SHARE_ALL, OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS);
    if (h == INVALID_HANDLE_VALUE) return l2_fail(err, LLAMA2_E_IO, "cannot open: %s", strerror(errno));
    int64_t bytes = 0;
    l2_file *f = NULL;
    llama2_status s = LLAMA2_OK;
    if (handle_kind(h, NULL, &bytes) != L2_PATH_FILE)
        s = l2_fail(err, LLAMA2_E_IO, "not a regular file");
    else if (!(f = malloc(sizeof *f)))
        s = l2_fail(err, LLAMA2_E_NOMEM, "out of memory");
    if (s != LLAMA2_OK) {
        CloseHandle(h);
        return s;
    }
    f->h = h;
    *size = (uint64_t)bytes;
    *out = f;
    return LLAMA2_OK;
}

/* ReadFile or WriteFile at offset, n bytes in pieces; 0 or an errno value
 * (ENOSPC for a write that makes no progress, EIO for a short read). */
static int transfer_at(HANDLE h, void *buf, size_t n, uint64_t offset, int writing) {
    unsigned char *p = buf;
    while (n > 0) {
        OVERLAPPED at;
        memset(&at, 0, sizeof at);
        at.Offset = (DWORD)offset;
        at.OffsetHigh = (DWORD)(offset >> 32);
        DWORD piece = n < IO_PIECE ? (DWORD)n : IO_PIECE, done = 0;
        BOOL ok = writing ? WriteFile(h, p, piece, &done, &at) : ReadFile(h, p, piece, &done, &at);
        if (!ok) return GetLastError() == ERROR_HANDLE_EOF ? EIO : last_errno();
        if (done == 0) return writing ? ENOSPC : EIO;
        p += done;
        n -= done;
        offset += done;
    }
    return 0;
}

llama2_status l2_file_read(l2_file *f, void *buf, size_t size, llama2_error *err) {
    int e = transfer_at(f->h, buf, size, 0, 0);
    if (e == 0) return LLAMA2_OK;
    return l2_fail(err, LLAMA2_E_IO, "read failed: %s", e == EIO ? "unexpected end of file" : strerror(e));
}

llama2_status l2_file_map(l2_file *f, size_t size, void **data, llama2_error *err) {
    /* The whole file (0, 0: its size, 64 bits); the view keeps the mapping
     * object alive once its handle is closed. */
    HANDLE mapping = CreateFileMappingW(f->h, NULL, PAGE_READONLY, 0, 0, NULL);
    void *view = mapping ? MapViewOfFile(mapping, FILE_MAP_READ, 0, 0, size) : NULL;
    int e = view ? 0 : last_errno();
    if (mapping) CloseHandle(mapping);
    if (!view) return l2_fail(err, LLAMA2_E_IO, "cannot map: %s", strerror(e));
    *data = view;
    return LLAMA2_OK;
}

void l2_file_close(l2_file *f) {
    if (!f) return;
    CloseHandle(f->h);
    free(f);
}

void l2_unmap(void *data, size_t size) {
    (void)size;
    if (data) UnmapViewOfFile(data);
}

void l2_mapping_release(void *data, size_t offset, size_t size) { (void)data, (void)offset, (void)size; }

/* ------------------------------------------- an output's temporary file */

/* Ctrl-C, Ctrl-Break and the console window's closing, held back while a
 * named temporary file exists. A console control handler takes no context
 * and runs on a thread of its own, for the whole process: so this state is
 * the process's, as a POSIX signal mask is. The handler, while any file is
 * held, records the event and waits; the thread that removes the last file
 * then ends the process as the console's default handler would
 * (STATUS_CONTROL_C_EXIT), at once, as an unblocked POSIX signal does. */
static struct {
    INIT_ONCE once;
    SRWLOCK lock;
    int holders;     /* named temporary files that exist */
    LONG pending;    /* an event came while one did */
    HANDLE released; /* set while no file is held */
} hold = {INIT_ONCE_STATIC_INIT, SRWLOCK_INIT, 0, 0, NULL};

static BOOL WINAPI hold_ctrl(DWORD type) {
    if (type != CTRL_C_EVENT && type != CTRL_BREAK_EVENT && type != CTRL_CLOSE_EVENT) return FALSE;
    AcquireSRWLockExclusive(&hold.lock);
    int holding = hold.holders > 0;
    if (holding) InterlockedExchange(&hold.pending, 1);
    ReleaseSRWLockExclusive(&hold.lock);
    if (!holding) return FALSE;
    WaitForSingleObject(hold.released, INFINITE);
    return TRUE; /* the releasing thread ends the process */
}

static BOOL CALLBACK hold_setup(PINIT_ONCE once, void *param, void **context) {
    (void)once;
    (void)param;
    (void)context;
    hold.released = CreateEventW(NULL, TRUE, TRUE, NULL);
    return hold.released && SetConsoleCtrlHandler(hold_ctrl, TRUE);
}

static int hold_signals(void) {
    if (!InitOnceExecuteOnce(&hold.once, hold_setup, NULL, NULL)) return 0;
    AcquireSRWLockExclusive(&hold.lock);
    if (hold.holders++ == 0) ResetEvent(hold.released);
    ReleaseSRWLockExclusive(&hold.lock);
    return 1;
}

static void release_signals(void) {
    AcquireSRWLockExclusive(&hold.lock);
    int last = --hold.holders == 0;
    ReleaseSRWLockExclusive(&hold.lock);
    if (!last) return;
    if (InterlockedCompareExchange(&hold.pending, 0, 0)) ExitProcess((UINT)STATUS_CONTROL_C_EXIT);
    SetEvent(hold.released);
}

struct l2_temp_file {
    HANDLE h;
    wchar_t *name;     /* the file's name; NULL once it is the output's */
    int holds_signals;
};

/* "<folder>\.<name>.tmp-<pid>-<nonce>": a name beside path, as UTF-16. */
static wchar_t *temp_name(const char *path, unsigned attempt) {
    const char *name = path;
    for (const char *p = path; *p; p++)
        if (*p == '/' || *p == '\\' || (*p == ':' && p == path + 1)) name = p + 1;
    size_t size = strlen(path) + 64;
    char *buf = malloc(size);
    if (!buf) return NULL;
    snprintf(buf, size, "%.*s.%s.tmp-%ld-%lx", (int)(name - path), path, name, l2_process_id(),
             (unsigned long)(l2_wall_clock_ns() % 1000000000) ^ ((unsigned long)attempt << 20));
    wchar_t *w = wide(buf);
    free(buf);
    return w;
}

int l2_temp_create(const char *path, int named, l2_temp_file **out) {
    (void)named; /* Windows has no unnamed files: always named */
    l2_temp_file *f = calloc(1, sizeof *f);
    if (!f) return ENOMEM;
    f->h = INVALID_HANDLE_VALUE;
    /* Held from before the file exists until after it is gone or named. */
    f->holds_signals = hold_signals();
    int e = 0;
    for (unsigned attempt = 0; attempt < 100; attempt++) {
        free(f->name);
        if (!(f->name = temp_name(path, attempt))) {
            e = errno;
            break;
        }
        f->h = CreateFileW(f->name, GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_DELETE, NULL, CREATE_NEW,
                           FILE_ATTRIBUTE_NORMAL, NULL);
        if (f->h != INVALID_HANDLE_VALUE) break;
        e = last_errno();
        if (e != EEXIST) break;
    }
    if (f->h == INVALID_HANDLE_VALUE) {
        free(f->name);
        f->name = NULL; /* nothing was created */
        l2_temp_close(f);
        return e ? e : EEXIST;
    }
    *out = f;
    return 0;
}

int l2_temp_write(l2_temp_file *f, const void *data, size_t n) {
    const unsigned char *p = data;
    while (n > 0) {
        DWORD piece = n < IO_PIECE ? (DWORD)n : IO_PIECE, done = 0;
        if (!WriteFile(f->h, p, piece, &done, NULL)) return last_errno();
        if (done == 0) return ENOSPC;
        p += done;
        n -= done;
    }
    return 0;
}

int l2_temp_write_at(l2_temp_file *f, const void *data, size_t n, uint64_t offset) {
    return transfer_at(f->h, (void *)data, n, offset, 1);
}

int l2_temp_interrupted(const l2_temp_file *f) { return f && f->holds_signals && hold.pending; }

int l2_temp_sync(l2_temp_file *f) { return FlushFileBuffers(f->h) ? 0 : last_errno(); }

int l2_temp_name(l2_temp_file *f, const char *path, int replace) {
    wchar_t *to = wide(path);
    if (!to) return errno;
    /* Closed first: a file open for writing cannot be renamed everywhere. */
    CloseHandle(f->h);
    f->h = INVALID_HANDLE_VALUE;
    /* Without MOVEFILE_REPLACE_EXISTING the move fails if `to` exists: the
     * check and the naming are one step. */
    DWORD flags = MOVEFILE_WRITE_THROUGH | (replace ? MOVEFILE_REPLACE_EXISTING : 0);
    int e = MoveFileExW(f->name, to, flags) ? 0 : last_errno();
    free(to);
    if (e == 0) {
        free(f->name);
        f->name = NULL;
    }
    return e;
}

void l2_temp_close(l2_temp_file *f) {
    if (!f) return;
    if (f->h != INVALID_HANDLE_VALUE) CloseHandle(f->h);
    if (f->name) DeleteFileW(f->name);
    /* Only now may a held Ctrl-C end the program: the file is gone. */
    if (f->holds_signals) release_signals();
    free(f->name);
    free(f);
}

/* -------------------------------------------------------- the programs */

/* The console's output code page when the program started. */
static UINT console_code_page;

static void restore_console(void) { SetConsoleOutputCP(console_code_page); }

static int is_console(HANDLE h) {
    DWORD mode;
    return h != INVALID_HANDLE_VALUE && h != NULL && GetConsoleMode(h, &mode);
}

int l2_win32_is_console(void *handle) { return is_console(handle); }

void l2_program_start(int *argc, char ***argv) {
    /* No error dialog boxes: a failure is the program's to report. */
    SetErrorMode(SEM_FAILCRITICALERRORS | SEM_NOOPENFILEERRORBOX);
    int n = 0;
    wchar_t **wargv = CommandLineToArgvW(GetCommandLineW(), &n);
    char **args = wargv ? calloc((size_t)n + 1, sizeof *args) : NULL;
    for (int i = 0; args && i < n; i++)
        if (!(args[i] = narrow(wargv[i]))) args = NULL; /* out of memory: the C library's arguments */
    if (wargv) LocalFree(wargv);
    if (args) {
        /* Kept for the life of the program, as argv is. */
        *argc = n;
        *argv = args;
    }
    _setmode(_fileno(stdin), _O_BINARY);
    _setmode(_fileno(stdout), _O_BINARY);
    _setmode(_fileno(stderr), _O_BINARY);
    if (is_console(GetStdHandle(STD_OUTPUT_HANDLE)) || is_console(GetStdHandle(STD_ERROR_HANDLE))) {
        console_code_page = GetConsoleOutputCP();
        if (console_code_page != CP_UTF8 && SetConsoleOutputCP(CP_UTF8)) atexit(restore_console);
    }
}

/* Writes UTF-8 to a console as characters. A sequence cut at the end of
 * one call waits for the rest in the next (standard output is the
 * process's: so is this carry); bytes that are not UTF-8 show as U+FFFD. */
static int console_write(HANDLE h, const char *text, size_t len) {
    static char carry[4];
    static size_t carried;
    while (len > 0 || carried > 0) {
        char buf[4096];
        size_t n = carried;
        memcpy(buf, carry, carried);
        carried = 0;
        size_t take = len < sizeof buf - n ? len : sizeof buf - n;
        memcpy(buf + n, text, take);
        n += take;
        text += take;
        len -= take;
        if (len == 0) {
            /* Keep back an incomplete sequence at the end. */
            size_t start = n, k = 0;
            while (start > 0 && k < 3 && ((unsigned char)buf[start - 1] & 0xC0) == 0x80) start--, k++;
            if (start > 0) {
                unsigned char lead = (unsigned char)buf[start - 1];
                size_t want = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
                if (want > 1 && want > n - (start - 1)) {
                    carried = n - (start - 1);
                    memcpy(carry, buf + start - 1, carried);
                    n = start - 1;
                }
            }
        }
        wchar_t wbuf[4096];
        int wn = n ? MultiByteToWideChar(CP_UTF8, 0, buf, (int)n, wbuf, 4096) : 0;
        DWORD done;
        if (wn > 0 && !WriteConsoleW(h, wbuf, (DWORD)wn, &done, NULL)) return -1;
        if (len == 0) break;
    }
    return 0;
}

int l2_stdout_write(const char *text, size_t len) {
    HANDLE h = GetStdHandle(STD_OUTPUT_HANDLE);
    if (is_console(h)) return console_write(h, text, len);
    while (len > 0) {
        DWORD piece = len < IO_PIECE ? (DWORD)len : IO_PIECE, done = 0;
        if (!WriteFile(h, text, piece, &done, NULL) || done == 0) return -1;
        text += done;
        len -= done;
    }
    return 0;
}

/* Ctrl-C for the chat. The console calls its handler on a thread of its
 * own: the handler records the event and, while the reading thread waits in
 * l2_stdin_read, cancels that wait (CancelSynchronousIo), again until the
 * wait has ended: one that was about to start when the event came is
 * cancelled on a later round. Console handlers belong to the process, and
 * so does this state. */
static struct {
    int catching;
    volatile LONG seen;
    volatile LONG reading; /* the reader is in (or about to enter) its wait */
    HANDLE reader;         /* the reading thread */
} interrupt;

static BOOL WINAPI catch_ctrl(DWORD type) {
    if (type != CTRL_C_EVENT && type != CTRL_BREAK_EVENT) return FALSE;
    InterlockedExchange(&interrupt.seen, 1);
    for (int tries = 0; tries < 2000 && InterlockedCompareExchange(&interrupt.reading, 0, 0); tries++) {
        CancelSynchronousIo(interrupt.reader);
        Sleep(1);
    }
    return TRUE;
}

int l2_interrupt_catch(void) {
    if (interrupt.catching) return 0;
    if (!DuplicateHandle(GetCurrentProcess(), GetCurrentThread(), GetCurrentProcess(), &interrupt.reader, 0, FALSE,
                         DUPLICATE_SAME_ACCESS))
        return -1;
    if (!SetConsoleCtrlHandler(catch_ctrl, TRUE)) return -1;
    interrupt.catching = 1;
    return 0;
}

int l2_interrupt_take(void) { return interrupt.catching && InterlockedExchange(&interrupt.seen, 0) != 0; }

/* Standard input is the process's: so is what a read keeps for the next. */
static struct {
    int cr;             /* a CR ended the last read: LF may follow */
    wchar_t surrogate;  /* a console's high surrogate, waiting for its pair */
} stdin_state;

/* Up to n bytes from a console, as UTF-8: n / 3 characters at most. */
static int console_read(HANDLE h, char *buf, size_t n, DWORD *got) {
    wchar_t wbuf[1024];
    DWORD want = (DWORD)(n / 3 < 1024 ? n / 3 : 1024), count = 0, start = 0;
    if (stdin_state.surrogate) {
        wbuf[start++] = stdin_state.surrogate;
        stdin_state.surrogate = 0;
        want = want > 1 ? want - 1 : 1;
    }
    if (!ReadConsoleW(h, wbuf + start, want, &count, NULL)) return 0;
    count += start;
    if (count > 0 && wbuf[count - 1] >= 0xD800 && wbuf[count - 1] < 0xDC00) stdin_state.surrogate = wbuf[--count];
    /* Ctrl-Z at the start of a line: the end of input, as in text mode. */
    if (count > 0 && wbuf[0] == 0x1A) count = 0;
    int bytes = count ? WideCharToMultiByte(CP_UTF8, 0, wbuf, (int)count, buf, (int)n, NULL, NULL) : 0;
    *got = bytes > 0 ? (DWORD)bytes : 0;
    return 1;
}

/* CR LF to LF: the n bytes read at `in` go to `out` (which may overlap:
 * out is in - 1, one byte of room for a CR kept back from the last read); a
 * CR at the end waits for the next read, unless this is the end of input.
 * Returns the count written. */
static size_t drop_cr_before_lf(char *out, const char *in, size_t n, int at_end) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        if (stdin_state.cr) {
            stdin_state.cr = 0;
            if (c != '\n') out[o++] = '\r';
        }
        if (c == '\r')
            stdin_state.cr = 1;
        else
            out[o++] = c;
    }
    if (at_end && stdin_state.cr) {
        stdin_state.cr = 0;
        out[o++] = '\r';
    }
    return o;
}

long l2_stdin_read(char *buf, size_t n) {
    HANDLE h = GetStdHandle(STD_INPUT_HANDLE);
    if (n < 4) return -1;
    for (;;) {
        if (interrupt.catching) {
            InterlockedExchange(&interrupt.reading, 1);
            if (interrupt.seen) {
                InterlockedExchange(&interrupt.reading, 0);
                return L2_READ_INTERRUPTED;
            }
        }
        char *raw = buf + 1;
        size_t room = n - 1;
        DWORD got = 0;
        BOOL ok = is_console(h) ? console_read(h, raw, room, &got)
                                : ReadFile(h, raw, room > IO_PIECE ? IO_PIECE : (DWORD)room, &got, NULL);
        DWORD e = ok ? 0 : GetLastError();
        InterlockedExchange(&interrupt.reading, 0);
        if (interrupt.catching && interrupt.seen && (!ok || got == 0)) return L2_READ_INTERRUPTED;
        if (!ok && e != ERROR_BROKEN_PIPE && e != ERROR_HANDLE_EOF) return -1;
        int at_end = !ok || got == 0;
        size_t kept = drop_cr_before_lf(buf, raw, got, at_end);
        if (kept > 0 || at_end) return (long)kept;
        /* Only a CR, kept back: read on for what follows it. */
    }
}

const char *l2_program_path(const char *argv0) {
    static char path[4 * MAX_PATH * 4];
    wchar_t w[32768];
    DWORD n = GetModuleFileNameW(NULL, w, 32768);
    if (n == 0 || n >= 32768) return argv0;
    char *s = narrow(w);
    if (!s || strlen(s) >= sizeof path) {
        free(s);
        return argv0;
    }
    strcpy(path, s);
    free(s);
    return path;
}
