/* The amx level's tables: AVX-512 and AVX512-VNNI, with AMX-INT8 tile
 * products for int8 prompt blocks over a copy of the weights in tile order
 * (ops_amx.c). table_x86.h says what its fast and exact tables hold. */
#if defined(__x86_64__) || defined(__i386__)

#include "table_x86.h"

X86_TABLES(amx, "amx", avx512, avx512vnni, l2_gemv_q8_stripes_avx512vnni, 8, 16, l2_repack_q8_amx,
           l2_matmul_q8_packed_amx)

#else

/* ISO C forbids an empty translation unit. */
typedef int l2_table_amx_unused;

#endif
