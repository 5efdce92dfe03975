/* Picks the fastest kernel table this build carries and this CPU runs.
 * LLAMA2_KERNELS=scalar in the environment forces the scalar reference (for
 * debugging); it is read on every call, nothing is cached. */
#include <stdlib.h>
#include <string.h>

#include "llama2.h"
#include "ops.h"
#include "ops_isa.h"

const l2_kernels *l2_kernels_best(void) {
    const char *force = getenv("LLAMA2_KERNELS");
    if (force && strcmp(force, "scalar") == 0) return l2_kernels_reference();
#if defined(__x86_64__) || defined(__i386__)
    /* libgcc / compiler-rt fill the CPU model in a constructor; the check
     * covers the OS's saving of the YMM registers too. */
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return l2_kernels_avx2();
#elif defined(__aarch64__)
    return l2_kernels_neon();
#endif
    return l2_kernels_reference();
}

const char *llama2_kernels_name(void) { return l2_kernels_best()->name; }
