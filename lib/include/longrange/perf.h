/* The machine's measured peak, the yardstick benchmarks report "% of peak" against. */
#ifndef LONGRANGE_PERF_H
#define LONGRANGE_PERF_H

#include "longrange/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Single-precision GFLOP/s that n_threads threads of ctx's pool reach together running
 * independent multiply-add chains (FMA where the level has it) at the context's CPU level.
 * n_threads is clamped to 1..lr_ctx_threads(ctx). Takes about 0.2 s. */
double lr_peak_gflops(lr_ctx *ctx, int n_threads);

#ifdef __cplusplus
}
#endif
#endif
