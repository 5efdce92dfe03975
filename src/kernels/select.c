/* Kernel policy: which table a model uses. The levels this build carries,
 * fastest first (avx2 or neon, then the scalar reference), each with the CPU
 * check it needs and two tables: its fastest, and its exact form (every
 * entry the reference's bits). LLAMA2_KERNELS=<level> in the environment
 * caps the choice at that level ("scalar": the reference; "avx2": nothing
 * faster than AVX2, for valgrind, which cannot decode AVX-512); it is read
 * on every call, nothing is cached. */
#include <stdlib.h>
#include <string.h>

#include "llama2.h"
#include "ops.h"
#include "ops_isa.h"

typedef struct level {
    const char *name;
    const l2_kernels *(*fast)(void);
    const l2_kernels *(*exact)(void);
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
    {"avx2", l2_kernels_avx2, l2_kernels_avx2_exact, cpu_has_avx2},
#elif defined(__aarch64__)
    {"neon", l2_kernels_neon, l2_kernels_neon_exact, always},
#endif
    {"scalar", l2_kernels_reference, l2_kernels_reference, always},
};
#define N_LEVELS (int)(sizeof levels / sizeof levels[0])

/* Int8 models reproduce runq.c bit for bit. A one-ulp change in an
 * activation can flip the int8 rounding of the next product's input, so
 * around int8 products every float step keeps llama2.c's plain evaluation
 * order: the exact form of the level's table (its int8 products are exact
 * in both). fp32 models take the fastest arithmetic within the tests'
 * tolerance. */
static const l2_kernels *table_of(const level *l, llama2_weight_type type) {
    return type == LLAMA2_WEIGHTS_Q8_0 ? l->exact() : l->fast();
}

const char *l2_kernel_level_name(int index) { return index >= 0 && index < N_LEVELS ? levels[index].name : NULL; }

const l2_kernels *l2_kernels_level(const char *name, llama2_weight_type type) {
    for (int i = 0; name && i < N_LEVELS; i++)
        if (strcmp(levels[i].name, name) == 0) return levels[i].cpu_runs() ? table_of(&levels[i], type) : NULL;
    return NULL;
}

const l2_kernels *l2_kernels_for(llama2_weight_type type) {
    const char *cap = getenv("LLAMA2_KERNELS");
    int first = 0;
    if (cap && *cap) {
        /* A level this build does not know: the reference. */
        first = N_LEVELS - 1;
        for (int i = 0; i < N_LEVELS; i++)
            if (strcmp(levels[i].name, cap) == 0) first = i;
    }
    for (int i = first; i < N_LEVELS; i++)
        if (levels[i].cpu_runs()) return table_of(&levels[i], type);
    return l2_kernels_reference();
}

/* The level: its fp32 table (an int8 model uses its exact form). */
const char *llama2_kernels_name(void) { return l2_kernels_for(LLAMA2_WEIGHTS_F32)->name; }
