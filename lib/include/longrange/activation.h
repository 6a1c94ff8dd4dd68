/* Activation functions on float arrays, for the programs' networks. */
#ifndef LONGRANGE_ACTIVATION_H
#define LONGRANGE_ACTIVATION_H

#include <stdint.h>

#include "longrange/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* GELU in place on x[0, n): 0.5 x (1 + erf(x / sqrt 2)), with erf a rational approximation
 * in float within 4e-7 of the true erf (PyTorch's vectorised erf is as close); NaN stays NaN.
 * `level` picks the vector width (16, 8 or 4 lanes); every width gives the same bits. */
void lr_gelu(lr_cpu_level level, float *x, int64_t n);

/* SiLU in place on x[0, n): x / (1 + exp(-x)), with exp in float within a few ulp (see
 * activation.c); NaN stays NaN. `level` as for lr_gelu; every width gives the same bits. */
void lr_silu(lr_cpu_level level, float *x, int64_t n);

#ifdef __cplusplus
}
#endif
#endif
