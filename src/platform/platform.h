/* The operating system under the library and its programs, in one place:
 * platform_posix.c (Linux, macOS, the BSDs) and platform_win32.c (Windows)
 * are the only files that know which system they run on; the Makefile
 * compiles one of them. Not part of the public API.
 *
 * Conventions: file names and text are UTF-8 everywhere (on Windows they are
 * converted for the system's wide-character calls); functions that can fail
 * return 0 or an errno value (Windows error codes are mapped onto the errno
 * values of the same meaning, so that messages read the same everywhere),
 * or a llama2_status with the message in err where the library reports it
 * as is. */
#ifndef LLAMA2_PLATFORM_H
#define LLAMA2_PLATFORM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "llama2.h"

/* ---------------------------------------------------------------- time */

/* Nanoseconds on a clock that never goes back (for timings and waits). */
int64_t l2_monotonic_ns(void);
/* Nanoseconds since 1970 on the wall clock (for seeds and unique names). */
int64_t l2_wall_clock_ns(void);
/* This process's id. */
long l2_process_id(void);
/* Sets (value NULL: removes) a variable of this process's environment;
 * 0 on success. */
int l2_set_env(const char *name, const char *value);

/* --------------------------------------------------------- the machine */

/* Logical processors online, at least 1. */
int l2_processor_count(void);
/* Bytes of physical memory; SIZE_MAX when it cannot be known. */
size_t l2_physical_memory(void);
/* Bytes of level 3 cache, every instance counted once (a model smaller than
 * this can be read from the caches rather than from memory); 0 when the
 * machine has none or it cannot be known. */
size_t l2_l3_cache_bytes(void);
/* The peak resident memory of this process so far, in KiB; -1 unknown. */
long l2_peak_rss_kib(void);
/* size bytes aligned to `alignment` (a power of two, at least
 * sizeof(void *)), not cleared; NULL on failure. Freed by l2_aligned_free
 * only (Windows keeps such blocks apart from malloc's). But on Windows,
 * blocks of 4 MiB and more start on a 2 MiB boundary, and on Linux they
 * ask for transparent huge pages. */
void *l2_aligned_malloc(size_t alignment, size_t size);
void l2_aligned_free(void *p);
/* size bytes, rounded up to a multiple of 64, aligned for SIMD loads (64
 * bytes) and zero-filled; NULL on failure. Freed by l2_aligned_free.
 * (aligned_zeroed.c: the same on every system) */
void *l2_aligned_zeroed(size_t size);

/* ------------------------------------------------------------- threads */

typedef struct l2_thread l2_thread;
/* Runs fn(arg) on a new thread; 0, or an errno value (EAGAIN: no resources
 * for one more). */
int l2_thread_start(l2_thread **out, void (*fn)(void *arg), void *arg);
/* Waits for the thread to end, then frees it. */
void l2_thread_join(l2_thread *t);
/* Gives the processor to another ready thread, if any. */
void l2_thread_yield(void);

/* A lock with a condition to sleep on under it (a mutex and a condition
 * variable; an SRW lock and a CONDITION_VARIABLE on Windows). */
typedef struct l2_monitor l2_monitor;
/* NULL when out of resources. */
l2_monitor *l2_monitor_create(void);
void l2_monitor_destroy(l2_monitor *m);
void l2_monitor_lock(l2_monitor *m);
void l2_monitor_unlock(l2_monitor *m);
/* Held: releases the lock, sleeps until woken (or spuriously: callers
 * recheck their condition), and takes the lock again. */
void l2_monitor_wait(l2_monitor *m);
void l2_monitor_wake_all(l2_monitor *m);

/* --------------------------------------------------------------- files */

/* fopen of a UTF-8 path; NULL with errno set on failure (EISDIR for a
 * folder on every system). */
FILE *l2_fopen(const char *path, const char *mode);

/* What a name is, following symbolic links. */
typedef enum l2_path_kind {
    L2_PATH_NONE,     /* nothing has this name */
    L2_PATH_DANGLING, /* a symbolic link to nothing: the name is taken all the same */
    L2_PATH_FILE,     /* a regular file */
    L2_PATH_FOLDER,
    L2_PATH_OTHER,    /* a device, a FIFO, a socket */
} l2_path_kind;

/* Which file a name leads to: equal ids, the same file (whatever the path:
 * links, other spellings). The device and inode; on Windows the volume
 * serial number and the file index. */
typedef struct l2_file_id {
    uint64_t volume, index;
} l2_file_id;

/* The kind of path; for an existing file or folder also its id and size
 * (either may be NULL). */
l2_path_kind l2_path_lookup(const char *path, l2_file_id *id, int64_t *size);

/* Creates the folder path; 0, or an errno value (EEXIST: it exists). */
int l2_make_folder(const char *path);

/* A regular file open for reading, to be read whole or mapped. */
typedef struct l2_file l2_file;
/* Opens path and checks that it is a regular file, without waiting (a FIFO
 * with no writer is refused, not waited for). Messages: "cannot open: ...",
 * "cannot stat: ...", "not a regular file". */
llama2_status l2_file_open(const char *path, l2_file **out, uint64_t *size, llama2_error *err);
/* Reads the first size bytes into buf ("read failed after N bytes: ..."). */
llama2_status l2_file_read(l2_file *f, void *buf, size_t size, llama2_error *err);
/* Maps the first size bytes read-only, whatever the file's size (more than
 * 4 GiB too); unmapped by l2_unmap ("cannot map: ..."). */
llama2_status l2_file_map(l2_file *f, size_t size, void **data, llama2_error *err);
void l2_file_close(l2_file *f);
void l2_unmap(void *data, size_t size);
/* Drops the whole pages of bytes [offset, offset + size) of a mapping made
 * by l2_file_map from this process's resident memory: touched again, they
 * are read back from the file. Nothing where the system has no such call
 * (Windows). */
void l2_mapping_release(void *data, size_t offset, size_t size);

/* ------------------------------------------- an output's temporary file */

/* The mechanics of output_file.c's rules: a file written beside the output
 * that takes the output's name only when complete. */
typedef struct l2_temp_file l2_temp_file;
/* Creates an empty file for writing in the folder of `path`: where the
 * system has them (Linux's O_TMPFILE) and `named` is 0, one with no name
 * at all, so that nothing is left even if the process is killed; else one
 * with a hidden unique name, ".<name>.tmp-<pid>-<nonce>". While a named
 * file exists, the signals that end a program (SIGINT, SIGTERM, SIGHUP,
 * SIGQUIT, SIGXFSZ; Ctrl-C and Ctrl-Break of a Windows console) are held
 * back: l2_temp_interrupted says one came, and l2_temp_close lets it
 * through once the file is gone (on Windows: ends the process as the
 * console's default handler does). 0 or an errno value. */
int l2_temp_create(const char *path, int named, l2_temp_file **out);
/* Appends n bytes, all of them; 0 or an errno value. */
int l2_temp_write(l2_temp_file *f, const void *data, size_t n);
/* Writes n bytes at offset, all of them; 0 or an errno value. */
int l2_temp_write_at(l2_temp_file *f, const void *data, size_t n, uint64_t offset);
/* 1 when a held-back signal is waiting. */
int l2_temp_interrupted(const l2_temp_file *f);
/* Everything written reaches the disk; 0 or an errno value. */
int l2_temp_sync(l2_temp_file *f);
/* Gives the finished file the name `path`, in one step: EEXIST when that
 * name is taken and replace is 0; with replace, an existing file is
 * replaced. 0 or an errno value. */
int l2_temp_name(l2_temp_file *f, const char *path, int replace);
/* Closes the file and removes it unless it was named, then lets a held
 * signal through (it then does what it would have done: usually, end the
 * program). */
void l2_temp_close(l2_temp_file *f);

/* -------------------------------------------------------- the programs */

/* The first call of a program's main. On Windows: the arguments become
 * UTF-8 (from the wide command line), standard input, output and error go
 * binary (no CR added before LF), and a console shows UTF-8 text. Elsewhere
 * nothing changes. */
void l2_program_start(int *argc, char ***argv);

/* Writes len bytes of UTF-8 text to standard output, all of them, retrying
 * after a signal; -1 when it cannot (a closed pipe). On a Windows console,
 * as characters: a sequence split between two calls is joined. */
int l2_stdout_write(const char *text, size_t len);

/* From now on Ctrl-C (SIGINT; on Windows the console's Ctrl-C and
 * Ctrl-Break) does not end the program: it is recorded for
 * l2_interrupt_take, and it ends a wait in l2_stdin_read. 0, or -1 when
 * that cannot be had (Ctrl-C then ends the program as before). */
int l2_interrupt_catch(void);
/* 1 when a Ctrl-C came since the last call, which takes it; else 0. */
int l2_interrupt_take(void);

#define L2_READ_INTERRUPTED (-2)
/* Reads up to n bytes of standard input: the count, 0 at its end, -1 on an
 * error, or L2_READ_INTERRUPTED when a Ctrl-C caught by l2_interrupt_catch
 * is waiting or comes during the wait (it stays for l2_interrupt_take). On
 * Windows, CR LF becomes LF, as the C library's text mode reads it, and a
 * console gives its characters as UTF-8. */
long l2_stdin_read(char *buf, size_t n);

/* The path of the running program, to start it again (argv0: its argv[0],
 * the answer where the system gives none); in a static buffer. */
const char *l2_program_path(const char *argv0);

#ifdef _WIN32
#include <wchar.h>
/* What common/child_win32.c shares with this layer: the errno value of the
 * calling thread's last Windows error, a UTF-8 string as a malloc'd UTF-16
 * one (strict: NULL for bytes that are not UTF-8, as in a file name), and
 * whether a handle is a console. */
int l2_win32_last_errno(void);
wchar_t *l2_win32_wide(const char *s, int strict);
int l2_win32_is_console(void *handle);
#endif

#endif
