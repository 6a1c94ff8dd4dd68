/* Portable linear-attention kernels: plain loops, libm's expf. */
#include <math.h>

#include "linattn_internal.h"

static void rows_ref(int m, int n, int kdim, const float *a, int64_t lda, const float *b,
                     int64_t ldb, float *c, int64_t ldc, bool lower)
{
    for (int i = 0; i < m; i++) {
        int kx = lower && i + 1 < kdim ? i + 1 : kdim;
        float *ci = c + i * ldc;
        for (int x = 0; x < kx; x++) {
            float ax = a[i * lda + x];
            const float *bx = b + x * ldb;
            for (int y = 0; y < n; y++)
                ci[y] += ax * bx[y];
        }
    }
}

static void elu1_ref(float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = x[i] > 0.0f ? x[i] + 1.0f : expf(x[i]);
}

const lr_linattn_kernel lr_linattn_kernel_ref = {"ref", rows_ref, elu1_ref};
