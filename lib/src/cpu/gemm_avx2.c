/* AVX2 GEMM: a 6x16 micro-kernel (12 accumulators, two B vectors, six broadcasts of A per
 * k-step) and packers that transpose 8x8 blocks in registers. */
#include <immintrin.h>

#include "gemm_internal.h"

enum { MR = 6, NR = 16 };

#define ROWS6(X) X(0) X(1) X(2) X(3) X(4) X(5)

#define ACC_ZERO(i) __m256 acc##i##_0 = _mm256_setzero_ps(), acc##i##_1 = _mm256_setzero_ps();
#define ACC_FMA(i)                                                                               \
    {                                                                                            \
        __m256 ai = _mm256_broadcast_ss(a + i);                                                  \
        acc##i##_0 = _mm256_fmadd_ps(ai, b0, acc##i##_0);                                        \
        acc##i##_1 = _mm256_fmadd_ps(ai, b1, acc##i##_1);                                        \
    }
/* C is touched only after the k loop: asking for its lines first hides their latency. */
#define PREFETCH_C(i)                                                                            \
    if (i < m)                                                                                   \
        _mm_prefetch((const char *)(c + (i) * ldc), _MM_HINT_T0);
#define ACC_STORE(i)                                                                             \
    if (i < m) {                                                                                 \
        store_scaled(c + (i) * ldc, acc##i##_0, mask0, valpha, vbeta, beta);                     \
        store_scaled(c + (i) * ldc + 8, acc##i##_1, mask1, valpha, vbeta, beta);                 \
    }

/* All-ones in the first n lanes (n clamped to 0..8). */
static inline __m256i lane_mask(int64_t n)
{
    n = n < 0 ? 0 : n > 8 ? 8 : n;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static inline __attribute__((always_inline)) void store_scaled(float *p, __m256 acc, __m256i mask,
                                                               __m256 valpha, __m256 vbeta, float beta)
{
    __m256 r = beta == 0 ? _mm256_mul_ps(valpha, acc)
                         : _mm256_fmadd_ps(valpha, acc, _mm256_mul_ps(vbeta, _mm256_maskload_ps(p, mask)));
    _mm256_maskstore_ps(p, mask, r);
}

static void micro_6x16(int64_t kc, const float *restrict a, const float *restrict b,
                       float *restrict c, int64_t ldc, int m, int n, float alpha, float beta)
{
    ROWS6(ACC_ZERO)
    ROWS6(PREFETCH_C)
    for (int64_t k = 0; k < kc; k++) {
        __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
        ROWS6(ACC_FMA)
        a += MR;
        b += NR;
    }
    __m256 valpha = _mm256_set1_ps(alpha), vbeta = _mm256_set1_ps(beta);
    __m256i mask0 = lane_mask(n), mask1 = lane_mask(n - 8);
    ROWS6(ACC_STORE)
}

/* 8 rows in, 8 columns out: r[i] holds row i, afterwards r[j] holds column j. */
static inline __attribute__((always_inline)) void transpose8(__m256 r[8])
{
    __m256 t[8], u[8];
#pragma GCC unroll 2
    for (int g = 0; g < 2; g++) {
        __m256 lo01 = _mm256_unpacklo_ps(r[4 * g], r[4 * g + 1]);
        __m256 hi01 = _mm256_unpackhi_ps(r[4 * g], r[4 * g + 1]);
        __m256 lo23 = _mm256_unpacklo_ps(r[4 * g + 2], r[4 * g + 3]);
        __m256 hi23 = _mm256_unpackhi_ps(r[4 * g + 2], r[4 * g + 3]);
        /* t[4g + c]: half H holds column 4H + c of rows 4g..4g+3 */
        t[4 * g + 0] = _mm256_shuffle_ps(lo01, lo23, 0x44);
        t[4 * g + 1] = _mm256_shuffle_ps(lo01, lo23, 0xEE);
        t[4 * g + 2] = _mm256_shuffle_ps(hi01, hi23, 0x44);
        t[4 * g + 3] = _mm256_shuffle_ps(hi01, hi23, 0xEE);
    }
#pragma GCC unroll 4
    for (int col = 0; col < 4; col++) {
        u[col] = _mm256_permute2f128_ps(t[col], t[4 + col], 0x20);
        u[col + 4] = _mm256_permute2f128_ps(t[col], t[4 + col], 0x31);
    }
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++)
        r[j] = u[j];
}

/* The packed dimension is contiguous in the source (A transposed, B as it is): copy rows.
 * Each source row is read once, left to right, so the hardware prefetcher streams it. */
static inline __attribute__((always_inline)) void pack_rows(const float *src, int64_t stride_k,
                                                            int64_t w, int64_t k, int width, float *dst)
{
    for (int64_t kk = 0; kk < k; kk++, src += stride_k) {
        float *d = dst + kk * width;
        for (int64_t x0 = 0; x0 < w; x0 += width, d += k * width) {
            for (int g = 0; g < width; g += 8) {
                __m256 v = _mm256_maskload_ps(src + x0 + g, lane_mask(w - x0 - g));
                _mm256_maskstore_ps(d + g, lane_mask(width - g), v);
            }
        }
    }
}

/* The packed dimension is strided and k is contiguous (A as it is, B transposed): each group
 * of 8 panel rows is transposed 8 k-steps at a time. */
static inline __attribute__((always_inline)) void pack_transposed(const float *src, int64_t stride_w,
                                                                  int64_t w, int64_t k, int width,
                                                                  float *dst)
{
    for (int64_t x0 = 0; x0 < w; x0 += width, dst += k * width) {
        for (int g = 0; g < width; g += 8) {
            int64_t rows = w - x0 - g;
            if (rows > 8)
                rows = 8;
            if (rows > width - g)
                rows = width - g;
            __m256i out_mask = lane_mask(width - g);
            for (int64_t k0 = 0; k0 < k; k0 += 8) {
                __m256i k_mask = lane_mask(k - k0);
                __m256 r[8];
#pragma GCC unroll 8
                for (int i = 0; i < 8; i++)
                    r[i] = i < rows ? _mm256_maskload_ps(src + (x0 + g + i) * stride_w + k0, k_mask)
                                    : _mm256_setzero_ps();
                transpose8(r);
                /* constant indices into r keep it in registers */
#pragma GCC unroll 8
                for (int t = 0; t < 8; t++)
                    if (k0 + t < k)
                        _mm256_maskstore_ps(dst + (k0 + t) * width + g, out_mask, r[t]);
            }
        }
    }
}

static void pack_a_avx2(const float *src, int64_t stride_w, int64_t stride_k, int64_t w,
                        int64_t k, float *dst)
{
    if (stride_w == 1)
        pack_rows(src, stride_k, w, k, MR, dst);
    else if (stride_k == 1)
        pack_transposed(src, stride_w, w, k, MR, dst);
    else
        lr_gemm_pack_generic(src, stride_w, stride_k, w, k, MR, dst);
}

static void pack_b_avx2(const float *src, int64_t stride_w, int64_t stride_k, int64_t w,
                        int64_t k, float *dst)
{
    if (stride_w == 1)
        pack_rows(src, stride_k, w, k, NR, dst);
    else if (stride_k == 1)
        pack_transposed(src, stride_w, w, k, NR, dst);
    else
        lr_gemm_pack_generic(src, stride_w, stride_k, w, k, NR, dst);
}

const lr_gemm_kernel lr_gemm_kernel_avx2 = {
    .mr = MR, .nr = NR, .kc = 512, .mc = 6 * 128, .nc = 256,
    .micro = micro_6x16, .pack_a = pack_a_avx2, .pack_b = pack_b_avx2,
};
