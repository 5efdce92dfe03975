/* The int8 kernels of ops_avx2_q8.c with AVX-VNNI's dot instructions
 * (VEX-encoded vpdpbusd, vpdpwssd: Alder Lake, Sapphire Rapids and later),
 * for the avx2-vnni level: the file built once more, its exported names
 * ending in _avxvnni. */
#define Q8_DOT_AVX_VNNI 1
#include "ops_avx2_q8.c"
