/* The avx512-vnni level's int8 products over panels of 16 rows
 * (ops_x86_q8_panels.h): one 512-bit vpdpbusd multiplies 16 rows by 4
 * bytes of an input, each weight vector read once for up to 8 inputs. */
#if defined(__x86_64__) || defined(__i386__)

#define X86_W 512
#define Q8P_DOT Q8P_VNNI512
#define Q8P_TARGET L2_AVX512_VNNI
#define Q8P_NAME l2_matmul_q8_packed_avx512vnni
#define Q8P_MATMUL_Q8 l2_matmul_q8_avx512vnni
#define Q8P_AFTER_STRIPES 0
#include "ops_x86_q8_panels.h"

#else

/* ISO C forbids an empty translation unit. */
typedef int l2_ops_avx512_vnni_panels_unused;

#endif
