/* The dot product instructions (sdot, Armv8.2's optional "dotprod", in
 * every Armv8.4 CPU): four int8 products added into each int32 lane in one
 * instruction, against vmull + vpadal's two for two. Where the compiler
 * assumes them (-march with dotprod; Apple's arm64) DOTPROD_FN is empty and
 * they are always there; else gcc's build on Linux compiles the functions
 * marked DOTPROD_FN for them and asks the CPU at run time (the hwcap the
 * kernel passes: l2_neon_dotprod, ops_neon_matmul.c); other builds leave
 * DOTPROD_FN undefined and keep the widening multiplies (clang 14 declares
 * vdotq_s32 only where the whole file is built for dotprod). For the NEON
 * files (ops_neon_matmul.c, ops_kquants_neon.c), after arm_neon.h. */
#ifndef LLAMA2_OPS_NEON_DOTPROD_H
#define LLAMA2_OPS_NEON_DOTPROD_H

#if defined(__linux__)
#include <sys/auxv.h>
#endif

#if defined(__ARM_FEATURE_DOTPROD)
#define DOTPROD_FN
#define L2_DOTPROD_ALWAYS 1
#elif defined(__linux__) && defined(HWCAP_ASIMDDP) && defined(__GNUC__) && !defined(__clang__)
#define DOTPROD_FN __attribute__((target("arch=armv8.2-a+dotprod")))
#define L2_DOTPROD_ALWAYS 0
#endif

#endif
