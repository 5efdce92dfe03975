/* The int8 kernels of ops_avx2_q8.c with AVX512-VNNI's dot instructions on
 * 256-bit vectors (EVEX-encoded vpdpbusd, vpdpwssd: Ice Lake, Zen 4 and
 * later, which need not have AVX-VNNI), for the avx512-vnni and amx levels:
 * the file built once more, its exported names ending in _avx512vnni. */
#define Q8_DOT_AVX512_VNNI 1
#include "ops_avx2_q8.c"
