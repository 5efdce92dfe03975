/* Allocation failure on demand, for test_alloc_failure alone.
 *
 * That program is linked with the GNU linker's --wrap for malloc, calloc,
 * realloc, strdup, strndup and posix_memalign (Makefile: FAULT_WRAP): every
 * call to them from the objects it links (the library, the converter, the
 * server's objects, the test itself) lands here; the C library's own
 * allocations, cmocka's and the sanitizer's do not. jansson is given these
 * functions through json_set_alloc_funcs. The library and the programs are
 * the same objects as in every other build: nothing in them changes. */
#ifndef LLAMA2_TEST_FAULT_ALLOC_H
#define LLAMA2_TEST_FAULT_ALLOC_H

#include <stddef.h>

/* The n-th allocation from now (counting on every thread) fails, once, with
 * errno ENOMEM; the others succeed. n 0: none fails. */
void fault_alloc_arm(long n);
/* Ends the countdown; returns 1 when an allocation was failed since
 * fault_alloc_arm, else 0. */
int fault_alloc_disarm(void);

/* on 1: this thread's allocations are not counted (nor failed) until
 * fault_alloc_disarm: for the test's own work inside an operation. */
void fault_alloc_pause(int on);

/* For json_set_alloc_funcs. */
void *fault_alloc_malloc(size_t size);
void fault_alloc_free(void *p);

/* What --wrap names: defined in fault_alloc.c. */
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);
int __wrap_posix_memalign(void **p, size_t alignment, size_t size);

#endif
