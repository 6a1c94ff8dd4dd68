/* What the linear-attention driver (linear_attention.c) shares with its per-instruction-set
 * kernels (cpu/linattn_*.c): the two operations that carry the arithmetic, on F32 matrices
 * with contiguous rows. */
#ifndef LR_LINATTN_INTERNAL_H
#define LR_LINATTN_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

/* c[i][0:n] += sum_{x < kx} a[i][x] * b[x][0:n] for i < m, where kx = kdim, or
 * min(kdim, i + 1) when lower (a lower-triangular a). Row i is summed in order x = 0, 1, ...
 * into the value c held, the same whatever m is, so that a row's result never depends on
 * the rows after it. Row strides lda, ldb, ldc in elements. */
typedef void (*lr_linattn_rows_fn)(int m, int n, int kdim, const float *a, int64_t lda,
                                   const float *b, int64_t ldb, float *c, int64_t ldc, bool lower);

/* x[i] = elu(x[i]) + 1, i.e. x + 1 for x > 0 and exp(x) otherwise, for i < n. */
typedef void (*lr_linattn_elu1_fn)(float *x, int64_t n);

typedef struct {
    const char *name;
    lr_linattn_rows_fn rows;
    lr_linattn_elu1_fn elu1;
} lr_linattn_kernel;

extern const lr_linattn_kernel lr_linattn_kernel_ref;
extern const lr_linattn_kernel lr_linattn_kernel_avx2;
extern const lr_linattn_kernel lr_linattn_kernel_avx512;

#endif
