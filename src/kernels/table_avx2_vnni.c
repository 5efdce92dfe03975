/* The avx2-vnni level's tables: AVX2 + FMA with AVX-VNNI's int8 dot instructions
 * (Alder Lake, Sapphire Rapids and later). table_x86.h says what its
 * fast and exact tables hold. */
#if defined(__x86_64__) || defined(__i386__)

#include "table_x86.h"

X86_TABLES(avx2_vnni, "avx2-vnni", avx2, avxvnni, l2_gemv_q8_stripes_avxvnni, 8, 16, l2_repack_q8_stripes_panels,
           l2_matmul_q8_packed_avxvnni)

#else

/* ISO C forbids an empty translation unit. */
typedef int l2_table_avx2_vnni_unused;

#endif
