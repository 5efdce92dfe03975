/* The library's clock, for the timings in llama2_stats. */
#include <time.h>

#include "llama2.h"

double llama2_time_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
