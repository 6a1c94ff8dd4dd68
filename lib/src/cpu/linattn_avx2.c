/* AVX2 linear-attention kernels: the AVX-512 scheme (two rows of c per pass, each loaded row
 * of b feeding both) with 8-wide registers, 32 columns per pass and masked loads for tails. */
#include <immintrin.h>

#include "linattn_internal.h"

static __m256i tail_mask(int left)
{
    left = left < 0 ? 0 : left > 8 ? 8 : left;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(left), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* Columns [0, nc <= 32) of rows i (and i + 1 when a1), as block64 in linattn_avx512.c. */
static void block32(int nc, const float *a0, const float *a1, int k1, int k2, const float *b,
                    int64_t ldb, float *c0, float *c1)
{
    __m256i m0 = tail_mask(nc), m1 = tail_mask(nc - 8), m2 = tail_mask(nc - 16), m3 = tail_mask(nc - 24);
    __m256 r00 = _mm256_maskload_ps(c0, m0), r01 = _mm256_maskload_ps(c0 + 8, m1);
    __m256 r02 = _mm256_maskload_ps(c0 + 16, m2), r03 = _mm256_maskload_ps(c0 + 24, m3);
    if (a1) {
        __m256 r10 = _mm256_maskload_ps(c1, m0), r11 = _mm256_maskload_ps(c1 + 8, m1);
        __m256 r12 = _mm256_maskload_ps(c1 + 16, m2), r13 = _mm256_maskload_ps(c1 + 24, m3);
        for (int x = 0; x < k2; x++) {
            const float *bx = b + x * ldb;
            __m256 b0 = _mm256_maskload_ps(bx, m0), b1 = _mm256_maskload_ps(bx + 8, m1);
            __m256 b2 = _mm256_maskload_ps(bx + 16, m2), b3 = _mm256_maskload_ps(bx + 24, m3);
            __m256 s0 = _mm256_broadcast_ss(a0 + x), s1 = _mm256_broadcast_ss(a1 + x);
            r00 = _mm256_fmadd_ps(s0, b0, r00);
            r01 = _mm256_fmadd_ps(s0, b1, r01);
            r02 = _mm256_fmadd_ps(s0, b2, r02);
            r03 = _mm256_fmadd_ps(s0, b3, r03);
            r10 = _mm256_fmadd_ps(s1, b0, r10);
            r11 = _mm256_fmadd_ps(s1, b1, r11);
            r12 = _mm256_fmadd_ps(s1, b2, r12);
            r13 = _mm256_fmadd_ps(s1, b3, r13);
        }
        _mm256_maskstore_ps(c1, m0, r10);
        _mm256_maskstore_ps(c1 + 8, m1, r11);
        _mm256_maskstore_ps(c1 + 16, m2, r12);
        _mm256_maskstore_ps(c1 + 24, m3, r13);
    } else {
        k2 = 0;
    }
    for (int x = k2; x < k1; x++) {
        const float *bx = b + x * ldb;
        __m256 s0 = _mm256_broadcast_ss(a0 + x);
        r00 = _mm256_fmadd_ps(s0, _mm256_maskload_ps(bx, m0), r00);
        r01 = _mm256_fmadd_ps(s0, _mm256_maskload_ps(bx + 8, m1), r01);
        r02 = _mm256_fmadd_ps(s0, _mm256_maskload_ps(bx + 16, m2), r02);
        r03 = _mm256_fmadd_ps(s0, _mm256_maskload_ps(bx + 24, m3), r03);
    }
    _mm256_maskstore_ps(c0, m0, r00);
    _mm256_maskstore_ps(c0 + 8, m1, r01);
    _mm256_maskstore_ps(c0 + 16, m2, r02);
    _mm256_maskstore_ps(c0 + 24, m3, r03);
}

static void rows_avx2(int m, int n, int kdim, const float *a, int64_t lda, const float *b,
                      int64_t ldb, float *c, int64_t ldc, bool lower)
{
    for (int i = 0; i < m; i += 2) {
        bool two = i + 1 < m;
        int k_lo = lower && i + 1 < kdim ? i + 1 : kdim;
        int k_hi = two ? (lower && i + 2 < kdim ? i + 2 : kdim) : k_lo;
        const float *a_long = a + (int64_t)(i + two) * lda, *a_short = two ? a + (int64_t)i * lda : NULL;
        float *c_long = c + (int64_t)(i + two) * ldc, *c_short = c + (int64_t)i * ldc;
        for (int y = 0; y < n; y += 32)
            block32(n - y < 32 ? n - y : 32, a_long, a_short, k_hi, k_lo, b + y, ldb, c_long + y,
                    c_short + y);
    }
}

/* exp(x) for x <= 0, as in linattn_avx512.c; below -87 (where 2^n leaves the normal range)
 * the result is 0, an absolute error under 2e-38. */
static __m256 exp_nonpositive(__m256 x)
{
    __m256 tiny = _mm256_cmp_ps(x, _mm256_set1_ps(-87.0f), _CMP_LT_OQ);
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606765330187045e-06f), r);
    __m256 p = _mm256_set1_ps(1.0f / 720.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(tiny, _mm256_mul_ps(p, _mm256_castsi256_ps(bits)));
}

static void elu1_avx2(float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i += 8) {
        __m256i m = tail_mask(n - i >= 8 ? 8 : (int)(n - i));
        __m256 v = _mm256_maskload_ps(x + i, m);
        __m256 pos = _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_GT_OQ);
        __m256 e = exp_nonpositive(_mm256_min_ps(v, _mm256_setzero_ps()));
        _mm256_maskstore_ps(x + i, m, _mm256_blendv_ps(e, _mm256_add_ps(v, _mm256_set1_ps(1.0f)), pos));
    }
}

const lr_linattn_kernel lr_linattn_kernel_avx2 = {"avx2", rows_avx2, elu1_avx2};
