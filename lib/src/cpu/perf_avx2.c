/* FMA throughput probe for AVX2: 12 independent chains cover the FMA latency on every
 * pipe (latency 4 x 2 pipes needs 8 in flight). */
#include <immintrin.h>

#include "perf_internal.h"

#define CHAINS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define DECLARE(i) __m256 acc##i = _mm256_set1_ps(1.0f + (float)(i) * 1e-3f);
#define STEP(i) acc##i = _mm256_fmadd_ps(acc##i, scale, bias);

double lr_fma_probe_avx2(int64_t iters)
{
    CHAINS(DECLARE)
    __m256 scale = _mm256_set1_ps(0.999999f), bias = _mm256_set1_ps(1e-6f);
    for (int64_t it = 0; it < iters; it++) {
        CHAINS(STEP)
        /* Volatile asm that reads and writes every chain: the compiler can neither drop nor
         * fold them. */
        __asm__ volatile("" : "+x"(acc0), "+x"(acc1), "+x"(acc2), "+x"(acc3), "+x"(acc4), "+x"(acc5),
                         "+x"(acc6), "+x"(acc7), "+x"(acc8), "+x"(acc9), "+x"(acc10), "+x"(acc11));
    }
    return (double)iters * 12 * 8 * 2;
}
