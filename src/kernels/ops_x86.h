/* The x86 kernel files' intrinsics and the target attribute of each level.
 *
 * Every function of those files carries its level's target, so that the
 * library builds without -march=native and one binary holds every level;
 * select.c hands a level's table out only where the CPU (and the OS) runs
 * it. In the tests' emulated library (L2_EMULATED_X86) the attributes are
 * empty and the intrinsics come from SIMDe and tests/emulate_x86.h (given
 * to the compiler with -include): the same source then runs on any x86-64
 * CPU, slowly, so that every level is tested everywhere. */
#ifndef LLAMA2_OPS_X86_H
#define LLAMA2_OPS_X86_H

#ifndef L2_EMULATED_X86
#include <immintrin.h>
#define L2_TARGET(features) __attribute__((target(features)))
/* An empty asm statement that keeps a loaded vector in a register (the
 * compiler would otherwise fold its load into each use). */
#define L2_KEEP_IN_REGISTER(v) __asm__("" : "+v"(v))
/* The kernels' helpers are inlined: their vectors stay in registers. */
#define L2_INLINE(features) static inline __attribute__((target(features), always_inline))
/* Loops over constant counts (inputs, a block's parts) unrolled, so that
 * the accumulators stay in registers. */
#define L2_NATIVE_PRAGMA(x) _Pragma(#x)
#define L2_UNROLL_NATIVE(n) L2_NATIVE_PRAGMA(GCC unroll n)
#else
#define L2_TARGET(features)
#define L2_KEEP_IN_REGISTER(v) (void)0
/* SIMDe's vectors are arrays: the compiler decides (forcing every inline
 * makes the emulated files take minutes to compile). */
#define L2_INLINE(features) static inline
/* Not unrolled either (unrolled, the K-quant files take many minutes). */
#define L2_UNROLL_NATIVE(n)
#endif

#define L2_AVX2 "avx2,fma"
#define L2_AVX_VNNI L2_AVX2 ",avxvnni"
#define L2_AVX512 L2_AVX2 ",avx512f,avx512bw,avx512vl"
#define L2_AVX512_VNNI L2_AVX512 ",avx512vnni"
#define L2_AMX L2_AVX512_VNNI ",amx-tile,amx-int8"

#endif
