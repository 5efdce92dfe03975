/* Zero-filled blocks aligned for SIMD loads, over either system's
 * l2_aligned_malloc (platform.h). */
#include <string.h>

#include "platform.h"

void *l2_aligned_zeroed(size_t size) {
    size_t rounded = (size + 63) & ~(size_t)63;
    if (rounded < size) return NULL;
    if (rounded == 0) rounded = 64;
    void *p = l2_aligned_malloc(64, rounded);
    if (p) memset(p, 0, rounded);
    return p;
}
