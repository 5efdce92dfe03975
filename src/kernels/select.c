/* Kernel policy: which table a model uses. The levels this build carries,
 * fastest first (amx, avx512-vnni, avx512, avx2-vnni, avx2 on x86-64; neon
 * on aarch64; then the scalar reference), each with the CPU check it needs
 * and two tables: its fastest, and its exact form (every entry the
 * reference's bits). The x86 levels are all in every x86 build (their
 * functions carry their own target attributes); the check reads cpuid and
 * the OS's saved register state (x86_features.c). LLAMA2_KERNELS=<level> in
 * the environment caps the choice at that level ("scalar": the reference;
 * "avx2": nothing faster than AVX2, for valgrind, which cannot decode
 * AVX-512); it is read on every call, nothing is cached. A name this build
 * does not know is refused when a model is opened (l2_kernels_check_cap). */
#include <stdio.h>
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
static int cpu_runs_avx2(void) { return l2_x86_features_read().avx2; }
static int cpu_runs_avx2_vnni(void) { return l2_x86_features_read().avx_vnni; }
static int cpu_runs_avx512(void) { return l2_x86_features_read().avx512; }
static int cpu_runs_avx512_vnni(void) { return l2_x86_features_read().avx512_vnni; }
/* The tiles also need the OS's consent, asked once the CPU has them: where
 * it is refused, the next level down is used. */
static int cpu_runs_amx(void) { return l2_x86_features_read().amx_int8 && l2_x86_request_tiles(); }
#endif

/* Fastest first; the scalar reference last. */
static const level levels[] = {
#if defined(__x86_64__) || defined(__i386__)
    {"amx", l2_kernels_amx, l2_kernels_amx_exact, cpu_runs_amx},
    {"avx512-vnni", l2_kernels_avx512_vnni, l2_kernels_avx512_vnni_exact, cpu_runs_avx512_vnni},
    {"avx512", l2_kernels_avx512, l2_kernels_avx512_exact, cpu_runs_avx512},
    {"avx2-vnni", l2_kernels_avx2_vnni, l2_kernels_avx2_vnni_exact, cpu_runs_avx2_vnni},
    {"avx2", l2_kernels_avx2, l2_kernels_avx2_exact, cpu_runs_avx2},
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
 * in both); so do GGUF's block models, whose products quantize their
 * inputs too. fp32 models take the fastest arithmetic within the tests'
 * tolerance. */
static const l2_kernels *table_of(const level *l, llama2_weight_type type) {
    return type != LLAMA2_WEIGHTS_F32 ? l->exact() : l->fast();
}

const char *l2_kernel_level_name(int index) { return index >= 0 && index < N_LEVELS ? levels[index].name : NULL; }

const l2_kernels *l2_kernels_level(const char *name, llama2_weight_type type) {
    for (int i = 0; name && i < N_LEVELS; i++)
        if (strcmp(levels[i].name, name) == 0) return levels[i].cpu_runs() ? table_of(&levels[i], type) : NULL;
    return NULL;
}

const l2_kernels *l2_kernels_level_any(const char *name, llama2_weight_type type) {
    for (int i = 0; name && i < N_LEVELS; i++)
        if (strcmp(levels[i].name, name) == 0) return table_of(&levels[i], type);
    return NULL;
}

const l2_kernels *l2_kernels_for(llama2_weight_type type) {
    const char *cap = getenv("LLAMA2_KERNELS");
    int first = 0;
    if (cap && *cap) {
        /* A level this build does not know (refused at model open): the
         * reference. */
        first = N_LEVELS - 1;
        for (int i = 0; i < N_LEVELS; i++)
            if (strcmp(levels[i].name, cap) == 0) first = i;
    }
    for (int i = first; i < N_LEVELS; i++)
        if (levels[i].cpu_runs()) return table_of(&levels[i], type);
    return l2_kernels_reference();
}

int l2_kernels_check_cap(char *message, size_t size) {
    const char *cap = getenv("LLAMA2_KERNELS");
    if (!cap || !*cap) return 1;
    for (int i = 0; i < N_LEVELS; i++)
        if (strcmp(levels[i].name, cap) == 0) return 1;
    int n = snprintf(message, size, "LLAMA2_KERNELS: unknown kernel level '%.40s' (this build has", cap);
    for (int i = 0; i < N_LEVELS && n >= 0 && (size_t)n < size; i++)
        n += snprintf(message + n, size - (size_t)n, "%s %s", i ? "," : "", levels[i].name);
    if (n >= 0 && (size_t)n < size) snprintf(message + n, size - (size_t)n, ")");
    return 0;
}

/* The level: its fp32 table (an int8 model uses its exact form). */
const char *llama2_kernels_name(void) { return l2_kernels_for(LLAMA2_WEIGHTS_F32)->name; }
