/* The avx2 and avx512 levels' int8 products over panels of 16 rows
 * (ops_x86_q8_panels.h): vpmaddubsw and vpmaddwd multiply 8 rows (a
 * panel's half) by 4 bytes of an input, |w| against the input with w's
 * sign, each weight vector read once for up to 8 inputs. */
#if defined(__x86_64__) || defined(__i386__)

#define X86_W 256
#define Q8P_DOT Q8P_MADDUBS
#define Q8P_TARGET L2_AVX2
#define Q8P_NAME l2_matmul_q8_packed_avx2
#define Q8P_MATMUL_Q8 l2_matmul_q8_avx2
#define Q8P_AFTER_STRIPES 1
#include "ops_x86_q8_panels.h"

#else

/* ISO C forbids an empty translation unit. */
typedef int l2_ops_avx2_panels_unused;

#endif
