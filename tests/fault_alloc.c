/* The allocation wrappers of test_alloc_failure (fault_alloc.h). */
#include "fault_alloc.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
int __real_posix_memalign(void **p, size_t alignment, size_t size);

/* Process-wide on purpose, and only in this test program: the allocation
 * to fail may come from any thread (the server's scheduler has its own).
 * remaining counts down to the one that fails; 0 or less: none. */
static atomic_long remaining;
static atomic_int failed;
/* The test's own thread, while it reads an operation's result. */
static _Thread_local int paused;

static int fail_this_one(void) {
    if (paused || atomic_load_explicit(&remaining, memory_order_relaxed) <= 0) return 0;
    if (atomic_fetch_sub(&remaining, 1) != 1) return 0;
    atomic_store(&failed, 1);
    errno = ENOMEM;
    return 1;
}

void fault_alloc_arm(long n) {
    atomic_store(&failed, 0);
    atomic_store(&remaining, n);
}

void fault_alloc_pause(int on) { paused = on; }

int fault_alloc_disarm(void) {
    atomic_store(&remaining, 0);
    paused = 0;
    return atomic_load(&failed);
}

void *__wrap_malloc(size_t size) { return fail_this_one() ? NULL : __real_malloc(size); }
void *__wrap_calloc(size_t n, size_t size) { return fail_this_one() ? NULL : __real_calloc(n, size); }
void *__wrap_realloc(void *p, size_t size) { return fail_this_one() ? NULL : __real_realloc(p, size); }
char *__wrap_strdup(const char *s) { return fail_this_one() ? NULL : __real_strdup(s); }
char *__wrap_strndup(const char *s, size_t n) { return fail_this_one() ? NULL : __real_strndup(s, n); }
int __wrap_posix_memalign(void **p, size_t alignment, size_t size) {
    return fail_this_one() ? ENOMEM : __real_posix_memalign(p, alignment, size);
}

void *fault_alloc_malloc(size_t size) { return __wrap_malloc(size); }
void fault_alloc_free(void *p) { free(p); }
