/* Picks the kernel table: the fastest level this build carries and this CPU
 * runs. LLAMA2_KERNELS=<level> in the environment caps the choice at that
 * level ("scalar": the reference; "avx2": nothing faster than AVX2, for
 * valgrind, which cannot decode AVX-512); it is read on every call, nothing
 * is cached. */
#include <stdlib.h>
#include <string.h>

#include "llama2.h"
#include "ops.h"
#include "ops_isa.h"

typedef struct level {
    const char *name;
    const l2_kernels *(*table)(void);
    int (*cpu_runs)(void);
} level;

static int always(void) { return 1; }

#if defined(__x86_64__) || defined(__i386__)
/* libgcc / compiler-rt fill the CPU model in a constructor; the check covers
 * the OS's saving of the YMM registers too. */
static int cpu_has_avx2(void) { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }
#endif

/* Fastest first; the scalar reference last. */
static const level levels[] = {
#if defined(__x86_64__) || defined(__i386__)
    {"avx2", l2_kernels_avx2, cpu_has_avx2},
#elif defined(__aarch64__)
    {"neon", l2_kernels_neon, always},
#endif
    {"scalar", l2_kernels_reference, always},
};
#define N_LEVELS (int)(sizeof levels / sizeof levels[0])

const char *l2_kernel_level_name(int index) { return index >= 0 && index < N_LEVELS ? levels[index].name : NULL; }

const l2_kernels *l2_kernels_level(const char *name) {
    for (int i = 0; name && i < N_LEVELS; i++)
        if (strcmp(levels[i].name, name) == 0) return levels[i].cpu_runs() ? levels[i].table() : NULL;
    return NULL;
}

const l2_kernels *l2_kernels_best(void) {
    const char *cap = getenv("LLAMA2_KERNELS");
    int first = 0;
    if (cap && *cap) {
        /* A level this build does not know: the reference. */
        first = N_LEVELS - 1;
        for (int i = 0; i < N_LEVELS; i++)
            if (strcmp(levels[i].name, cap) == 0) first = i;
    }
    for (int i = first; i < N_LEVELS; i++)
        if (levels[i].cpu_runs()) return levels[i].table();
    return l2_kernels_reference();
}

const char *llama2_kernels_name(void) { return l2_kernels_best()->name; }
