/* The test helpers that differ between systems (support.h): Windows. */
#ifndef _WIN32_WINNT
#define _WIN32_WINNT 0x0A00
#endif
#define WIN32_LEAN_AND_MEAN

#include "support.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>

#include <winioctl.h>

#include "child.h"
#include "platform/platform.h"

const char test_exe_suffix[] = ".exe";
const int test_utf16_arguments = 1;
const int test_crlf_is_newline = 1;
const char test_null_device[] = "NUL";

void test_require_posix(const char *why) {
    print_message("skipped: %s (not on Windows)\n", why);
    skip();
}

/* UTF-8 to UTF-16 and back, malloc'd (asserts). */
static wchar_t *wide(const char *s) {
    int n = MultiByteToWideChar(CP_UTF8, 0, s, -1, NULL, 0);
    wchar_t *w = malloc((size_t)n * sizeof *w);
    assert_non_null(w);
    MultiByteToWideChar(CP_UTF8, 0, s, -1, w, n);
    return w;
}

static char *narrow(const wchar_t *w) {
    int n = WideCharToMultiByte(CP_UTF8, 0, w, -1, NULL, 0, NULL, NULL);
    char *s = malloc((size_t)n);
    assert_non_null(s);
    WideCharToMultiByte(CP_UTF8, 0, w, -1, s, n, NULL, NULL);
    return s;
}

/* Forward slashes, as the tests build paths. */
static void forward_slashes(char *s) {
    for (; *s; s++)
        if (*s == '\\') *s = '/';
}

int test_tmp_dir_create(char *dir, size_t size, const char *tag) {
    wchar_t base[MAX_PATH + 1];
    DWORD n = GetTempPathW(MAX_PATH + 1, base);
    if (n == 0 || n > MAX_PATH) return -1;
    char *b = narrow(base);
    forward_slashes(b);
    size_t len = strlen(b);
    if (len > 0 && b[len - 1] == '/') b[len - 1] = '\0';
    static unsigned serial;
    int ok = 0;
    for (int attempt = 0; attempt < 100 && !ok; attempt++) {
        snprintf(dir, size, "%s/llama2-%s-%lx%04x", b, tag, GetCurrentProcessId(), serial++ & 0xffff);
        wchar_t *w = wide(dir);
        ok = CreateDirectoryW(w, NULL) != 0;
        DWORD e = GetLastError();
        free(w);
        if (!ok && e != ERROR_ALREADY_EXISTS) break;
    }
    free(b);
    if (!ok) fprintf(stderr, "cannot create a folder %s\n", dir);
    return ok ? 0 : -1;
}

int test_absolute_path(const char *path, char *out, size_t size) {
    wchar_t *w = wide(path), full[32768];
    DWORD n = GetFullPathNameW(w, 32768, full, NULL);
    free(w);
    if (n == 0 || n >= 32768 || GetFileAttributesW(full) == INVALID_FILE_ATTRIBUTES) return -1;
    char *s = narrow(full);
    forward_slashes(s);
    int ok = strlen(s) < size;
    if (ok) strcpy(out, s);
    free(s);
    return ok ? 0 : -1;
}

int test_dir_names(const char *dir, char ***names) {
    *names = NULL;
    size_t len = strlen(dir);
    char *pattern = malloc(len + 3);
    assert_non_null(pattern);
    snprintf(pattern, len + 3, "%s/*", dir);
    wchar_t *w = wide(pattern);
    free(pattern);
    WIN32_FIND_DATAW found;
    HANDLE h = FindFirstFileW(w, &found);
    free(w);
    if (h == INVALID_HANDLE_VALUE) return GetLastError() == ERROR_FILE_NOT_FOUND ? 0 : -1;
    int n = 0, cap = 16;
    char **list = calloc((size_t)cap + 1, sizeof *list);
    assert_non_null(list);
    do {
        if (wcscmp(found.cFileName, L".") == 0 || wcscmp(found.cFileName, L"..") == 0) continue;
        if (n == cap) {
            list = realloc(list, ((size_t)(cap *= 2) + 1) * sizeof *list);
            assert_non_null(list);
        }
        list[n++] = narrow(found.cFileName);
        list[n] = NULL;
    } while (FindNextFileW(h, &found));
    FindClose(h);
    *names = list;
    return n;
}

int test_remove(const char *path) {
    wchar_t *w = wide(path);
    DWORD attrs = GetFileAttributesW(w);
    if (attrs != INVALID_FILE_ATTRIBUTES && (attrs & FILE_ATTRIBUTE_READONLY))
        SetFileAttributesW(w, attrs & ~(DWORD)FILE_ATTRIBUTE_READONLY);
    int ok = attrs != INVALID_FILE_ATTRIBUTES && (attrs & FILE_ATTRIBUTE_DIRECTORY) ? RemoveDirectoryW(w)
                                                                                    : DeleteFileW(w);
    free(w);
    return ok ? 0 : -1;
}

int test_make_link(const char *target, const char *path, int symbolic) {
    wchar_t *t = wide(target), *p = wide(path);
    int ok;
    if (symbolic) {
        /* Relative to the link's folder, as on POSIX. Wine 8 says it made
         * one and makes nothing: the link is looked for. */
        ok = CreateSymbolicLinkW(p, t, SYMBOLIC_LINK_FLAG_ALLOW_UNPRIVILEGED_CREATE) != 0;
        DWORD attrs = GetFileAttributesW(p);
        ok = ok && attrs != INVALID_FILE_ATTRIBUTES && (attrs & FILE_ATTRIBUTE_REPARSE_POINT);
    } else {
        ok = CreateHardLinkW(p, t, NULL) != 0;
    }
    free(t);
    free(p);
    return ok ? 0 : -1;
}

int test_symlink(const char *target, const char *path) {
    if (test_make_link(target, path, 1) == 0) return 1;
    print_message("note: no symbolic link could be made here: left out\n");
    return 0;
}

/* No /proc: a non-empty file in the folder is the output being written
 * (Windows' temporary files are named). */
int test_child_writing(struct l2_child *c, const char *dir, const char *except) {
    for (int tries = 0; tries < 30000; tries++) {
        char **names = NULL;
        int n = test_dir_names(dir, &names), found = 0;
        for (int i = 0; i < n && !found; i++) {
            int64_t size = 0;
            found = strcmp(names[i], except) != 0 &&
                    l2_path_lookup(test_path_in(dir, names[i]), NULL, &size) == L2_PATH_FILE && size > 0;
        }
        test_free_strings(names);
        if (found) return 1;
        if (!l2_child_running(c)) return 0;
        Sleep(1);
    }
    return 0;
}

int test_make_fifo(const char *path) {
    (void)path;
    return -1;
}

void test_in_child(const char *(*fn)(void)) {
    const char *problem = fn();
    if (problem) fail_msg("%s", problem);
}

void test_set_env(const char *name, const char *value) { _putenv_s(name, value ? value : ""); }

void test_sleep_ms(int ms) { Sleep((DWORD)ms); }

void test_sleep_us(int us) {
    if (us >= 2000) {
        Sleep((DWORD)(us / 1000));
        return;
    }
    LARGE_INTEGER start, now, freq;
    QueryPerformanceFrequency(&freq);
    QueryPerformanceCounter(&start);
    do {
        SwitchToThread();
        QueryPerformanceCounter(&now);
    } while ((now.QuadPart - start.QuadPart) * 1000000 < (LONGLONG)us * freq.QuadPart);
}

double test_cpu_seconds(void) {
    FILETIME created, ended, kernel, user;
    if (!GetProcessTimes(GetCurrentProcess(), &created, &ended, &kernel, &user)) return 0;
    uint64_t k = ((uint64_t)kernel.dwHighDateTime << 32) | kernel.dwLowDateTime;
    uint64_t u = ((uint64_t)user.dwHighDateTime << 32) | user.dwLowDateTime;
    return (double)(k + u) * 1e-7; /* 100-nanosecond ticks */
}

void test_set_mode(const char *path, unsigned mode) {
    wchar_t *w = wide(path);
    DWORD attrs = GetFileAttributesW(w);
    assert_true(attrs != INVALID_FILE_ATTRIBUTES);
    /* Windows keeps one bit of the mode: whether the file may be written. */
    attrs = mode & 0200 ? attrs & ~(DWORD)FILE_ATTRIBUTE_READONLY : attrs | FILE_ATTRIBUTE_READONLY;
    SetFileAttributesW(w, attrs);
    free(w);
}

int test_write_sparse(const char *path, uint64_t size, const test_file_part *parts, int n_parts) {
    wchar_t *w = wide(path);
    HANDLE h = CreateFileW(w, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
    free(w);
    if (h == INVALID_HANDLE_VALUE) return -1;
    DWORD ignored;
    /* Without it NTFS writes the zeros out; a file system that has no
     * sparse files (or Wine, which leaves it to the Unix file system) may
     * refuse it. */
    DeviceIoControl(h, FSCTL_SET_SPARSE, NULL, 0, NULL, 0, &ignored, NULL);
    LARGE_INTEGER at;
    at.QuadPart = (LONGLONG)size;
    int ok = SetFilePointerEx(h, at, NULL, FILE_BEGIN) && SetEndOfFile(h);
    for (int i = 0; ok && i < n_parts; i++) {
        at.QuadPart = (LONGLONG)parts[i].offset;
        DWORD done = 0;
        ok = SetFilePointerEx(h, at, NULL, FILE_BEGIN) && WriteFile(h, parts[i].data, (DWORD)parts[i].len, &done, NULL) &&
             done == parts[i].len;
    }
    return CloseHandle(h) && ok ? 0 : -1;
}

void test_limit_file_size(uint64_t bytes) {
    if (bytes) test_require_posix("a limit on the size of written files (RLIMIT_FSIZE)");
}

void test_default_signals(void) {}
