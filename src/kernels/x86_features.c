/*
 * What this x86-64 CPU and its operating system let the kernels run: the
 * instruction-set extensions (cpuid) and the register state the OS saves
 * on a context switch (xgetbv's XCR0), without which the registers are
 * unusable even where the CPU has the instructions. AMX tiles need one step
 * more on Linux: the process asks the kernel for the tile data state
 * (arch_prctl) before its first tile instruction.
 *
 * Compiled with L2_EMULATED_X86 (the tests' emulated library, whose x86
 * kernels are built against SIMDe and a plain C tile emulation) every level
 * runs, whatever this machine is.
 */
#if defined(__x86_64__) || defined(__i386__)

#include "ops_isa.h"

#ifndef L2_EMULATED_X86

#include <cpuid.h>
#include <stdint.h>

#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

/* Bits of cpuid leaves 1 and 7. */
#define ECX1_FMA (1u << 12)
#define ECX1_OSXSAVE (1u << 27)
#define ECX1_AVX (1u << 28)
#define EBX7_AVX2 (1u << 5)
#define EBX7_AVX512F (1u << 16)
#define EBX7_AVX512BW (1u << 30)
#define EBX7_AVX512VL (1u << 31)
#define ECX7_AVX512VNNI (1u << 11)
#define EDX7_AMX_TILE (1u << 24)
#define EDX7_AMX_INT8 (1u << 25)
#define EAX7_1_AVX_VNNI (1u << 4)

/* XCR0: the state components the OS saves. */
#define XCR0_SSE (1u << 1)
#define XCR0_YMM (1u << 2)
#define XCR0_ZMM (7u << 5) /* opmask, upper halves of zmm0-15, zmm16-31 */
#define XCR0_TILE (3u << 17) /* tile configuration, tile data */

static uint64_t xcr0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (uint64_t)hi << 32 | lo;
}

l2_x86_features l2_x86_features_read(void) {
    l2_x86_features f = {0};
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
    /* Without OSXSAVE, xgetbv itself is undefined. */
    if (!(c & ECX1_OSXSAVE) || !(c & ECX1_AVX)) return f;
    const unsigned ecx1 = c;
    const uint64_t os = xcr0();
    if ((os & (XCR0_SSE | XCR0_YMM)) != (XCR0_SSE | XCR0_YMM)) return f;
    if (__get_cpuid_max(0, NULL) < 7) return f;
    __cpuid_count(7, 0, a, b, c, d);
    const unsigned ebx7 = b, ecx7 = c, edx7 = d, max_subleaf7 = a;
    unsigned eax7_1 = 0;
    if (max_subleaf7 >= 1) {
        __cpuid_count(7, 1, a, b, c, d);
        eax7_1 = a;
    }

    f.avx2 = (ebx7 & EBX7_AVX2) && (ecx1 & ECX1_FMA);
    f.avx_vnni = f.avx2 && (eax7_1 & EAX7_1_AVX_VNNI);
    const unsigned avx512 = EBX7_AVX512F | EBX7_AVX512BW | EBX7_AVX512VL;
    f.avx512 = f.avx2 && (ebx7 & avx512) == avx512 && (os & XCR0_ZMM) == XCR0_ZMM;
    f.avx512_vnni = f.avx512 && (ecx7 & ECX7_AVX512VNNI);
    f.amx_int8 = f.avx512_vnni && (edx7 & EDX7_AMX_TILE) && (edx7 & EDX7_AMX_INT8) && (os & XCR0_TILE) == XCR0_TILE;
    return f;
}

/* Linux 5.16 and later hand out the tile data state (8 KiB of registers
 * per thread) only on request; the permission covers every thread of the
 * process, and asking again once it is given is harmless. Windows gives
 * the state to any thread on its first tile instruction once XCR0 has the
 * tile bits. Elsewhere the tiles are not used. */
int l2_x86_request_tiles(void) {
#if defined(__linux__) && defined(SYS_arch_prctl)
    const long arch_req_xcomp_perm = 0x1023, xfeature_xtiledata = 18;
    return syscall(SYS_arch_prctl, arch_req_xcomp_perm, xfeature_xtiledata) == 0;
#elif defined(_WIN32)
    return 1;
#else
    return 0;
#endif
}

#else /* L2_EMULATED_X86 */

l2_x86_features l2_x86_features_read(void) { return (l2_x86_features){1, 1, 1, 1, 1}; }

int l2_x86_request_tiles(void) { return 1; }

#endif

#else

/* ISO C forbids an empty translation unit. */
typedef int l2_x86_features_unused;

#endif
