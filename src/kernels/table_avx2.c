/* The avx2 level's tables: AVX2 + FMA (x86-64 CPUs from Haswell and Zen on). table_x86.h says what its
 * fast and exact tables hold. */
#if defined(__x86_64__) || defined(__i386__)

#include "table_x86.h"

X86_TABLES(avx2, "avx2", avx2, avx2, l2_gemv_q8_stripes_avx2, 8, 16, l2_repack_q8_stripes_signed_panels,
           l2_matmul_q8_packed_avx2)

#else

/* ISO C forbids an empty translation unit. */
typedef int l2_table_avx2_unused;

#endif
