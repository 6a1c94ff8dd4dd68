/* Multiply-add throughput probes, one per CPU level (perf.c and cpu/perf_*.c). */
#ifndef LR_PERF_INTERNAL_H
#define LR_PERF_INTERNAL_H

#include <stdint.h>

/* Each runs `iters` rounds of independent multiply-add chains and returns the number of
 * floating-point operations it did. */
double lr_fma_probe_avx2(int64_t iters);
double lr_fma_probe_avx512(int64_t iters);

#endif
