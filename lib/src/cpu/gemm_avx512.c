/* AVX-512 GEMM: a 14x32 micro-kernel (28 accumulators, two B vectors, one broadcast of A
 * per row and k-step) and packers that transpose 16x16 blocks in registers. */
#include <immintrin.h>

#include "gemm_internal.h"

enum { MR = 14, NR = 32 };

#define ROWS14(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13)

#define ACC_ZERO(i) __m512 acc##i##_0 = _mm512_setzero_ps(), acc##i##_1 = _mm512_setzero_ps();
#define ACC_FMA(i)                                                                               \
    {                                                                                            \
        __m512 ai = _mm512_set1_ps(a[i]);                                                        \
        acc##i##_0 = _mm512_fmadd_ps(ai, b0, acc##i##_0);                                        \
        acc##i##_1 = _mm512_fmadd_ps(ai, b1, acc##i##_1);                                        \
    }
/* C is touched only after the k loop: asking for its lines first hides their latency. */
#define PREFETCH_C(i)                                                                            \
    if (i < m) {                                                                                 \
        _mm_prefetch((const char *)(c + (i) * ldc), _MM_HINT_T0);                                \
        if (n > 16)                                                                              \
            _mm_prefetch((const char *)(c + (i) * ldc + 16), _MM_HINT_T0);                       \
    }
#define ACC_STORE(i)                                                                             \
    if (i < m) {                                                                                 \
        store_scaled(c + (i) * ldc, acc##i##_0, mask0, valpha, vbeta, beta);                     \
        store_scaled(c + (i) * ldc + 16, acc##i##_1, mask1, valpha, vbeta, beta);                \
    }

static inline __attribute__((always_inline)) void store_scaled(float *p, __m512 acc, __mmask16 mask,
                                                               __m512 valpha, __m512 vbeta, float beta)
{
    __m512 r = beta == 0 ? _mm512_mul_ps(valpha, acc)
                         : _mm512_fmadd_ps(valpha, acc, _mm512_mul_ps(vbeta, _mm512_maskz_loadu_ps(mask, p)));
    _mm512_mask_storeu_ps(p, mask, r);
}

static inline __mmask16 lane_mask(int64_t n)
{
    return n >= 16 ? (__mmask16)0xffff : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
}

static void micro_14x32(int64_t kc, const float *restrict a, const float *restrict b,
                        float *restrict c, int64_t ldc, int m, int n, float alpha, float beta)
{
    ROWS14(ACC_ZERO)
    ROWS14(PREFETCH_C)
    for (int64_t k = 0; k < kc; k++) {
        __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
        ROWS14(ACC_FMA)
        a += MR;
        b += NR;
    }
    __m512 valpha = _mm512_set1_ps(alpha), vbeta = _mm512_set1_ps(beta);
    __mmask16 mask0 = lane_mask(n), mask1 = lane_mask(n - 16);
    ROWS14(ACC_STORE)
}

/* 16 rows in, 16 columns out: r[i] holds row i, afterwards r[j] holds column j. */
static inline __attribute__((always_inline)) void transpose16(__m512 r[16])
{
    __m512 t[16], u[16];
#pragma GCC unroll 4
    for (int g = 0; g < 4; g++) {
        __m512 lo01 = _mm512_unpacklo_ps(r[4 * g], r[4 * g + 1]);
        __m512 hi01 = _mm512_unpackhi_ps(r[4 * g], r[4 * g + 1]);
        __m512 lo23 = _mm512_unpacklo_ps(r[4 * g + 2], r[4 * g + 3]);
        __m512 hi23 = _mm512_unpackhi_ps(r[4 * g + 2], r[4 * g + 3]);
        /* t[4g + c]: lane L holds column 4L + c of rows 4g..4g+3 */
        t[4 * g + 0] = _mm512_shuffle_ps(lo01, lo23, 0x44);
        t[4 * g + 1] = _mm512_shuffle_ps(lo01, lo23, 0xEE);
        t[4 * g + 2] = _mm512_shuffle_ps(hi01, hi23, 0x44);
        t[4 * g + 3] = _mm512_shuffle_ps(hi01, hi23, 0xEE);
    }
#pragma GCC unroll 4
    for (int col = 0; col < 4; col++) {
        u[4 * col + 0] = _mm512_shuffle_f32x4(t[col], t[4 + col], 0x88);
        u[4 * col + 1] = _mm512_shuffle_f32x4(t[col], t[4 + col], 0xDD);
        u[4 * col + 2] = _mm512_shuffle_f32x4(t[8 + col], t[12 + col], 0x88);
        u[4 * col + 3] = _mm512_shuffle_f32x4(t[8 + col], t[12 + col], 0xDD);
    }
#pragma GCC unroll 4
    for (int col = 0; col < 4; col++) {
        r[col] = _mm512_shuffle_f32x4(u[4 * col], u[4 * col + 2], 0x88);
        r[col + 8] = _mm512_shuffle_f32x4(u[4 * col], u[4 * col + 2], 0xDD);
        r[col + 4] = _mm512_shuffle_f32x4(u[4 * col + 1], u[4 * col + 3], 0x88);
        r[col + 12] = _mm512_shuffle_f32x4(u[4 * col + 1], u[4 * col + 3], 0xDD);
    }
}

/* The packed dimension is contiguous in the source (A transposed, B as it is): copy rows.
 * Each source row is read once, left to right, so the hardware prefetcher streams it. */
static inline __attribute__((always_inline)) void pack_rows(const float *src, int64_t stride_k,
                                                            int64_t w, int64_t k, int width, float *dst)
{
    for (int64_t kk = 0; kk < k; kk++, src += stride_k) {
        float *d = dst + kk * width;
        for (int64_t x0 = 0; x0 < w; x0 += width, d += k * width) {
            for (int g = 0; g < width; g += 16) {
                __m512 v = _mm512_maskz_loadu_ps(lane_mask(w - x0 - g), src + x0 + g);
                _mm512_mask_storeu_ps(d + g, lane_mask(width - g), v);
            }
        }
    }
}

/* The packed dimension is strided and k is contiguous (A as it is, B transposed): each group
 * of 16 panel rows is transposed 16 k-steps at a time. Every source row is a short stream
 * (kc floats) that the hardware prefetcher barely gets going on, so the rows of the next
 * group are prefetched while this one is transposed. */
static inline __attribute__((always_inline)) void pack_transposed(const float *src, int64_t stride_w,
                                                                  int64_t w, int64_t k, int width,
                                                                  float *dst)
{
    for (int64_t x0 = 0; x0 < w; x0 += width, dst += k * width) {
        for (int g = 0; g < width; g += 16) {
            int64_t rows = w - x0 - g;
            if (rows > 16)
                rows = 16;
            if (rows > width - g)
                rows = width - g;
            /* the group after this one: the next 16 rows, or the next panel's first ones */
            int64_t next_row = g + 16 < width ? x0 + g + 16 : x0 + width;
            int64_t next_rows = w - next_row;
            if (next_rows > 16)
                next_rows = 16;
            __mmask16 out_mask = lane_mask(width - g);
            for (int64_t k0 = 0; k0 < k; k0 += 16) {
                __mmask16 k_mask = lane_mask(k - k0);
                __m512 r[16];
#pragma GCC unroll 16
                for (int i = 0; i < 16; i++)
                    r[i] = i < rows ? _mm512_maskz_loadu_ps(k_mask, src + (x0 + g + i) * stride_w + k0)
                                    : _mm512_setzero_ps();
                for (int i = 0; i < next_rows; i++)
                    _mm_prefetch((const char *)(src + (next_row + i) * stride_w + k0), _MM_HINT_T0);
                transpose16(r);
                /* constant indices into r keep it in registers */
#pragma GCC unroll 16
                for (int t = 0; t < 16; t++)
                    if (k0 + t < k)
                        _mm512_mask_storeu_ps(dst + (k0 + t) * width + g, out_mask, r[t]);
            }
        }
    }
}

static void pack_a_avx512(const float *src, int64_t stride_w, int64_t stride_k, int64_t w,
                          int64_t k, float *dst)
{
    if (stride_w == 1)
        pack_rows(src, stride_k, w, k, MR, dst);
    else if (stride_k == 1)
        pack_transposed(src, stride_w, w, k, MR, dst);
    else
        lr_gemm_pack_generic(src, stride_w, stride_k, w, k, MR, dst);
}

static void pack_b_avx512(const float *src, int64_t stride_w, int64_t stride_k, int64_t w,
                          int64_t k, float *dst)
{
    if (stride_w == 1)
        pack_rows(src, stride_k, w, k, NR, dst);
    else if (stride_k == 1)
        pack_transposed(src, stride_w, w, k, NR, dst);
    else
        lr_gemm_pack_generic(src, stride_w, stride_k, w, k, NR, dst);
}

const lr_gemm_kernel lr_gemm_kernel_avx512 = {
    .mr = MR, .nr = NR, .kc = 384, .mc = 14 * 72, .nc = 256,
    .micro = micro_14x32, .pack_a = pack_a_avx512, .pack_b = pack_b_avx512,
};
