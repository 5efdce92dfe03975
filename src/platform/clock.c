/* The library's clock, for the timings in llama2_stats. */
#include "llama2.h"
#include "platform.h"

double llama2_time_seconds(void) { return (double)l2_monotonic_ns() * 1e-9; }
