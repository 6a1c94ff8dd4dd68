/* AVX-512 linear-attention kernels. rows: four (or two) rows of c at a time, up to 64 columns
 * (four registers per row) per pass, so that each loaded row of b feeds several FMAs; tails
 * use masks, and each element is summed in the same order as a single-row pass would, so a
 * row's result never depends on how rows were grouped. */
#include <immintrin.h>

#include "linattn_internal.h"

static __mmask16 tail_mask(int left)
{
    return left >= 16 ? (__mmask16)0xffff : left <= 0 ? (__mmask16)0 : (__mmask16)((1u << left) - 1);
}

/* Columns [0, nc <= 64) of rows i (and i + 1 when a1): x over [0, k2) for both rows and
 * [k2, k1) for row i alone (k1 >= k2 when two). */
static void block64(int nc, const float *a0, const float *a1, int k1, int k2, const float *b,
                    int64_t ldb, float *c0, float *c1)
{
    __mmask16 m0 = tail_mask(nc), m1 = tail_mask(nc - 16), m2 = tail_mask(nc - 32),
              m3 = tail_mask(nc - 48);
    __m512 r00 = _mm512_maskz_loadu_ps(m0, c0), r01 = _mm512_maskz_loadu_ps(m1, c0 + 16);
    __m512 r02 = _mm512_maskz_loadu_ps(m2, c0 + 32), r03 = _mm512_maskz_loadu_ps(m3, c0 + 48);
    if (a1) {
        __m512 r10 = _mm512_maskz_loadu_ps(m0, c1), r11 = _mm512_maskz_loadu_ps(m1, c1 + 16);
        __m512 r12 = _mm512_maskz_loadu_ps(m2, c1 + 32), r13 = _mm512_maskz_loadu_ps(m3, c1 + 48);
        for (int x = 0; x < k2; x++) {
            const float *bx = b + x * ldb;
            __m512 b0 = _mm512_maskz_loadu_ps(m0, bx), b1 = _mm512_maskz_loadu_ps(m1, bx + 16);
            __m512 b2 = _mm512_maskz_loadu_ps(m2, bx + 32), b3 = _mm512_maskz_loadu_ps(m3, bx + 48);
            __m512 s0 = _mm512_set1_ps(a0[x]), s1 = _mm512_set1_ps(a1[x]);
            r00 = _mm512_fmadd_ps(s0, b0, r00);
            r01 = _mm512_fmadd_ps(s0, b1, r01);
            r02 = _mm512_fmadd_ps(s0, b2, r02);
            r03 = _mm512_fmadd_ps(s0, b3, r03);
            r10 = _mm512_fmadd_ps(s1, b0, r10);
            r11 = _mm512_fmadd_ps(s1, b1, r11);
            r12 = _mm512_fmadd_ps(s1, b2, r12);
            r13 = _mm512_fmadd_ps(s1, b3, r13);
        }
        _mm512_mask_storeu_ps(c1, m0, r10);
        _mm512_mask_storeu_ps(c1 + 16, m1, r11);
        _mm512_mask_storeu_ps(c1 + 32, m2, r12);
        _mm512_mask_storeu_ps(c1 + 48, m3, r13);
    } else {
        k2 = 0;
    }
    for (int x = k2; x < k1; x++) {
        const float *bx = b + x * ldb;
        __m512 s0 = _mm512_set1_ps(a0[x]);
        r00 = _mm512_fmadd_ps(s0, _mm512_maskz_loadu_ps(m0, bx), r00);
        r01 = _mm512_fmadd_ps(s0, _mm512_maskz_loadu_ps(m1, bx + 16), r01);
        r02 = _mm512_fmadd_ps(s0, _mm512_maskz_loadu_ps(m2, bx + 32), r02);
        r03 = _mm512_fmadd_ps(s0, _mm512_maskz_loadu_ps(m3, bx + 48), r03);
    }
    _mm512_mask_storeu_ps(c0, m0, r00);
    _mm512_mask_storeu_ps(c0 + 16, m1, r01);
    _mm512_mask_storeu_ps(c0 + 32, m2, r02);
    _mm512_mask_storeu_ps(c0 + 48, m3, r03);
}

/* block64 for nc <= 16, one register per row: the narrow tails (ELU's denominator column,
 * short chunks) then cost one FMA per row and x, not four. */
static void block16(int nc, const float *a0, const float *a1, int k1, int k2, const float *b,
                    int64_t ldb, float *c0, float *c1)
{
    __mmask16 m = tail_mask(nc);
    __m512 r0 = _mm512_maskz_loadu_ps(m, c0);
    if (a1) {
        __m512 r1 = _mm512_maskz_loadu_ps(m, c1);
        for (int x = 0; x < k2; x++) {
            __m512 bx = _mm512_maskz_loadu_ps(m, b + x * ldb);
            r0 = _mm512_fmadd_ps(_mm512_set1_ps(a0[x]), bx, r0);
            r1 = _mm512_fmadd_ps(_mm512_set1_ps(a1[x]), bx, r1);
        }
        _mm512_mask_storeu_ps(c1, m, r1);
    } else {
        k2 = 0;
    }
    for (int x = k2; x < k1; x++)
        r0 = _mm512_fmadd_ps(_mm512_set1_ps(a0[x]), _mm512_maskz_loadu_ps(m, b + x * ldb), r0);
    _mm512_mask_storeu_ps(c0, m, r0);
}

/* Four rows of c, columns [0, nc <= 64), x over [0, k) for all of them: each loaded row of b
 * feeds four FMAs, so the loads keep up with the FMA units. */
static void block64x4(int nc, const float *a, int64_t lda, int k, const float *b, int64_t ldb,
                      float *c, int64_t ldc)
{
    __mmask16 m0 = tail_mask(nc), m1 = tail_mask(nc - 16), m2 = tail_mask(nc - 32),
              m3 = tail_mask(nc - 48);
#define LOAD_ROW(row)                                                                         \
    __m512 acc##row##0 = _mm512_maskz_loadu_ps(m0, c + (row) * ldc);                              \
    __m512 acc##row##1 = _mm512_maskz_loadu_ps(m1, c + (row) * ldc + 16);                         \
    __m512 acc##row##2 = _mm512_maskz_loadu_ps(m2, c + (row) * ldc + 32);                         \
    __m512 acc##row##3 = _mm512_maskz_loadu_ps(m3, c + (row) * ldc + 48);
#define FMA_ROW(row)                                                                          \
    do {                                                                                    \
        __m512 s = _mm512_set1_ps(a[(row) * lda + x]);                                        \
        acc##row##0 = _mm512_fmadd_ps(s, b0, acc##row##0);                                          \
        acc##row##1 = _mm512_fmadd_ps(s, b1, acc##row##1);                                          \
        acc##row##2 = _mm512_fmadd_ps(s, b2, acc##row##2);                                          \
        acc##row##3 = _mm512_fmadd_ps(s, b3, acc##row##3);                                          \
    } while (0)
#define STORE_ROW(row)                                                                        \
    do {                                                                                    \
        _mm512_mask_storeu_ps(c + (row) * ldc, m0, acc##row##0);                                  \
        _mm512_mask_storeu_ps(c + (row) * ldc + 16, m1, acc##row##1);                             \
        _mm512_mask_storeu_ps(c + (row) * ldc + 32, m2, acc##row##2);                             \
        _mm512_mask_storeu_ps(c + (row) * ldc + 48, m3, acc##row##3);                             \
    } while (0)
    LOAD_ROW(0)
    LOAD_ROW(1)
    LOAD_ROW(2)
    LOAD_ROW(3)
    for (int x = 0; x < k; x++) {
        const float *bx = b + x * ldb;
        __m512 b0 = _mm512_maskz_loadu_ps(m0, bx), b1 = _mm512_maskz_loadu_ps(m1, bx + 16);
        __m512 b2 = _mm512_maskz_loadu_ps(m2, bx + 32), b3 = _mm512_maskz_loadu_ps(m3, bx + 48);
        FMA_ROW(0);
        FMA_ROW(1);
        FMA_ROW(2);
        FMA_ROW(3);
    }
    STORE_ROW(0);
    STORE_ROW(1);
    STORE_ROW(2);
    STORE_ROW(3);
#undef LOAD_ROW
#undef FMA_ROW
#undef STORE_ROW
}

/* One row of c, columns [0, nc <= 64), x over [x0, x1): the part of a lower-triangular row
 * past the x its group of four shares, continuing the same sum. */
static void row64_tail(int nc, const float *a, int x0, int x1, const float *b, int64_t ldb, float *c)
{
    __mmask16 m0 = tail_mask(nc), m1 = tail_mask(nc - 16), m2 = tail_mask(nc - 32),
              m3 = tail_mask(nc - 48);
    __m512 r0 = _mm512_maskz_loadu_ps(m0, c), r1 = _mm512_maskz_loadu_ps(m1, c + 16);
    __m512 r2 = _mm512_maskz_loadu_ps(m2, c + 32), r3 = _mm512_maskz_loadu_ps(m3, c + 48);
    for (int x = x0; x < x1; x++) {
        const float *bx = b + x * ldb;
        __m512 s = _mm512_set1_ps(a[x]);
        r0 = _mm512_fmadd_ps(s, _mm512_maskz_loadu_ps(m0, bx), r0);
        r1 = _mm512_fmadd_ps(s, _mm512_maskz_loadu_ps(m1, bx + 16), r1);
        r2 = _mm512_fmadd_ps(s, _mm512_maskz_loadu_ps(m2, bx + 32), r2);
        r3 = _mm512_fmadd_ps(s, _mm512_maskz_loadu_ps(m3, bx + 48), r3);
    }
    _mm512_mask_storeu_ps(c, m0, r0);
    _mm512_mask_storeu_ps(c + 16, m1, r1);
    _mm512_mask_storeu_ps(c + 32, m2, r2);
    _mm512_mask_storeu_ps(c + 48, m3, r3);
}

static void rows_avx512(int m, int n, int kdim, const float *a, int64_t lda, const float *b,
                        int64_t ldb, float *c, int64_t ldc, bool lower)
{
    int i = 0;
    /* Groups of four rows over the columns wider than one register; each row's x past the
     * group's shortest row (lower a) is added after, in order. */
    for (; i + 4 <= m && n > 16; i += 4) {
        int k_first = lower && i + 1 < kdim ? i + 1 : kdim;
        for (int y = 0; y < n; y += 64) {
            int nc = n - y < 64 ? n - y : 64;
            if (nc <= 16) {
                block16(nc, a + (int64_t)(i + 1) * lda, a + (int64_t)i * lda,
                        lower && i + 2 < kdim ? i + 2 : kdim, k_first, b + y, ldb,
                        c + (int64_t)(i + 1) * ldc + y, c + (int64_t)i * ldc + y);
                block16(nc, a + (int64_t)(i + 3) * lda, a + (int64_t)(i + 2) * lda,
                        lower && i + 4 < kdim ? i + 4 : kdim, lower && i + 3 < kdim ? i + 3 : kdim,
                        b + y, ldb, c + (int64_t)(i + 3) * ldc + y, c + (int64_t)(i + 2) * ldc + y);
                continue;
            }
            block64x4(nc, a + (int64_t)i * lda, lda, k_first, b + y, ldb, c + (int64_t)i * ldc + y, ldc);
            for (int r = 1; r < 4 && lower; r++) {
                int k_row = i + r + 1 < kdim ? i + r + 1 : kdim;
                if (k_row > k_first)
                    row64_tail(nc, a + (int64_t)(i + r) * lda, k_first, k_row, b + y, ldb,
                               c + (int64_t)(i + r) * ldc + y);
            }
        }
    }
    for (; i < m; i += 2) {
        bool two = i + 1 < m;
        int k_lo = lower && i + 1 < kdim ? i + 1 : kdim;
        int k_hi = two ? (lower && i + 2 < kdim ? i + 2 : kdim) : k_lo;
        /* The longer row (the second under a lower a) goes first in block64. */
        const float *a_long = a + (int64_t)(i + two) * lda, *a_short = two ? a + (int64_t)i * lda : NULL;
        float *c_long = c + (int64_t)(i + two) * ldc, *c_short = c + (int64_t)i * ldc;
        for (int y = 0; y < n; y += 64) {
            int nc = n - y < 64 ? n - y : 64;
            (nc <= 16 ? block16 : block64)(nc, a_long, a_short, k_hi, k_lo, b + y, ldb, c_long + y,
                                           c_short + y);
        }
    }
}

/* exp(x) for x <= 0: x = n ln2 + r with |r| <= ln2 / 2, a degree-6 polynomial for exp(r),
 * and scalef for 2^n, which underflows gracefully to subnormals and zero. */
static __m512 exp_nonpositive(__m512 x)
{
    x = _mm512_max_ps(x, _mm512_set1_ps(-104.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187045e-06f), r);
    __m512 p = _mm512_set1_ps(1.0f / 720.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

static void elu1_avx512(float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i >= 16 ? 16 : (int)(n - i));
        __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        __mmask16 pos = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GT_OQ);
        __m512 e = exp_nonpositive(_mm512_min_ps(v, _mm512_setzero_ps()));
        _mm512_mask_storeu_ps(x + i, m, _mm512_mask_add_ps(e, pos, v, _mm512_set1_ps(1.0f)));
    }
}

const lr_linattn_kernel lr_linattn_kernel_avx512 = {"avx512", rows_avx512, elu1_avx512};
