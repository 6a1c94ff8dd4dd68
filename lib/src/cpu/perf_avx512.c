/* FMA throughput probe for AVX-512: 12 independent chains cover the FMA latency on every
 * pipe (latency 4 x 2 pipes needs 8 in flight). */
#include <immintrin.h>

#include "perf_internal.h"

#define CHAINS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define DECLARE(i) __m512 acc##i = _mm512_set1_ps(1.0f + (float)(i) * 1e-3f);
#define STEP(i) acc##i = _mm512_fmadd_ps(acc##i, scale, bias);

double lr_fma_probe_avx512(int64_t iters)
{
    CHAINS(DECLARE)
    __m512 scale = _mm512_set1_ps(0.999999f), bias = _mm512_set1_ps(1e-6f);
    for (int64_t it = 0; it < iters; it++) {
        CHAINS(STEP)
        /* Volatile asm that reads and writes every chain: the compiler can neither drop nor
         * fold them. */
        __asm__ volatile("" : "+v"(acc0), "+v"(acc1), "+v"(acc2), "+v"(acc3), "+v"(acc4), "+v"(acc5),
                         "+v"(acc6), "+v"(acc7), "+v"(acc8), "+v"(acc9), "+v"(acc10), "+v"(acc11));
    }
    return (double)iters * 12 * 16 * 2;
}
