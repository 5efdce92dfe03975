/* Child processes for the tests and llama2-bench: start a program with
 * arguments and input, watch and capture what it writes, interrupt it, wait
 * for its status. child_posix.c and child_win32.c (the Makefile builds one);
 * not in libllama2, which starts none. */
#ifndef LLAMA2_COMMON_CHILD_H
#define LLAMA2_COMMON_CHILD_H

#include <stddef.h>

typedef struct l2_child l2_child;
enum {
    L2_CHILD_CAPTURE = 1,       /* collect its output and error (else thrown away) */
    L2_CHILD_INTERRUPTIBLE = 2, /* Windows: a console of its own (no window), for l2_child_interrupt */
    L2_CHILD_KEEP_INPUT = 4,    /* its input stays open for l2_child_send, until l2_child_end_input */
};
/* Starts the program argv[0] (a path) with the arguments argv (UTF-8,
 * NULL-terminated) in the folder cwd (NULL: this one), with the default
 * actions of the signals that end a program. Its standard input gets
 * input[0, input_len) and then its end (NULL: at once). 0 or an errno
 * value. */
int l2_child_start(char *const argv[], const char *cwd, const void *input, size_t input_len, unsigned flags,
                   l2_child **out);
/* With L2_CHILD_KEEP_INPUT: sends n bytes to its standard input, all of
 * them (0, or an errno value), and ends that input. */
int l2_child_send(l2_child *c, const void *data, size_t n);
void l2_child_end_input(l2_child *c);
/* With L2_CHILD_CAPTURE: a copy of what it has written to its standard
 * output so far, malloc'd and NUL-terminated (for a test watching it). */
char *l2_child_output(l2_child *c, size_t *len);
/* The child's process id. */
long l2_child_id(const l2_child *c);
/* 1 while it runs. */
int l2_child_running(l2_child *c);
/* Ctrl-C: SIGINT; on Windows the Ctrl-C event of its console (it must have
 * been started L2_CHILD_INTERRUPTIBLE). 0 or an errno value. */
int l2_child_interrupt(l2_child *c);
/* Waits for its end and frees it. Returns the exit status, or 128 + the
 * signal that ended it (on Windows an end by Ctrl-C, STATUS_CONTROL_C_EXIT,
 * is SIGINT's 130), or -1. With L2_CHILD_CAPTURE, out and err (either may
 * be NULL) get what it wrote, malloc'd and NUL-terminated. */
int l2_child_wait(l2_child *c, char **out, size_t *out_len, char **err, size_t *err_len);

#endif
