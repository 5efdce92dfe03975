/* The element-wise kernels of ops_avx2_vector.c built for 512-bit vectors
 * (AVX-512 F, BW and VL), for the avx512, avx512-vnni and amx tables: the
 * file built once more, its exported names ending in _avx512. */
#define X86_W 512
#include "ops_avx2_vector.c"
