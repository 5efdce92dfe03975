/* The avx512-vnni level's tables: AVX-512 with AVX512-VNNI's int8 dot
 * instructions (Ice Lake, Zen 4 and later). table_x86.h says what its
 * fast and exact tables hold. */
#if defined(__x86_64__) || defined(__i386__)

#include "table_x86.h"

X86_TABLES(avx512_vnni, "avx512-vnni", avx512, avx512vnni, NULL, 16, 16, l2_repack_q8_panels,
           l2_matmul_q8_packed_avx512vnni)

#else

/* ISO C forbids an empty translation unit. */
typedef int l2_table_avx512_vnni_unused;

#endif
