/* A float's or a double's bits and back (memcpy: no aliasing, no UB), for
 * the files that build or read numbers bit by bit. */
#ifndef LLAMA2_BITS_H
#define LLAMA2_BITS_H

#include <stdint.h>
#include <string.h>

static inline uint32_t l2_float_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float l2_bits_float(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint64_t l2_double_bits(double d) {
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static inline double l2_bits_double(uint64_t u) {
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

#endif
