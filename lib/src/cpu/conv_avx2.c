/* AVX2 kernels of the convolutions (conv.c declares them): the depthwise tap sum and the
 * bias + activation epilogue, as in conv_avx512.c with 8-wide registers. */
#include <immintrin.h>
#include <stdint.h>

void lr_conv_dw_taps_avx2(float *out, int64_t n, const float *src, int64_t row_step, const float *wt, int rows,
                          int kw, int64_t dil);
void lr_conv_bias_act_avx2(float *x, int64_t n, float bias, float slope, int kind);
void lr_conv_scatter_add_avx2(float *dst, const float *src, int64_t n, int64_t stride);

static __m256i tail_mask(int64_t left)
{
    int l = left > 8 ? 8 : left < 0 ? 0 : (int)left;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(l), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

void lr_conv_dw_taps_avx2(float *out, int64_t n, const float *src, int64_t row_step, const float *wt, int rows,
                          int kw, int64_t dil)
{
    int64_t x = 0;
    for (; x + 32 <= n; x += 32) {
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int r = 0; r < rows; r++)
            for (int t = 0; t < kw; t++) {
                const float *s = src + r * row_step + x + t * dil;
                __m256 w = _mm256_set1_ps(wt[r * kw + t]);
                a0 = _mm256_fmadd_ps(w, _mm256_loadu_ps(s), a0);
                a1 = _mm256_fmadd_ps(w, _mm256_loadu_ps(s + 8), a1);
                a2 = _mm256_fmadd_ps(w, _mm256_loadu_ps(s + 16), a2);
                a3 = _mm256_fmadd_ps(w, _mm256_loadu_ps(s + 24), a3);
            }
        _mm256_storeu_ps(out + x, a0);
        _mm256_storeu_ps(out + x + 8, a1);
        _mm256_storeu_ps(out + x + 16, a2);
        _mm256_storeu_ps(out + x + 24, a3);
    }
    if (x < n) {
        /* the tail runs four masked chains too, so short rows are not latency-bound */
        __m256i m0 = tail_mask(n - x), m1 = tail_mask(n - x - 8), m2 = tail_mask(n - x - 16);
        __m256i m3 = tail_mask(n - x - 24);
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int r = 0; r < rows; r++)
            for (int t = 0; t < kw; t++) {
                const float *s = src + r * row_step + x + t * dil;
                __m256 w = _mm256_set1_ps(wt[r * kw + t]);
                a0 = _mm256_fmadd_ps(w, _mm256_maskload_ps(s, m0), a0);
                a1 = _mm256_fmadd_ps(w, _mm256_maskload_ps(s + 8, m1), a1);
                a2 = _mm256_fmadd_ps(w, _mm256_maskload_ps(s + 16, m2), a2);
                a3 = _mm256_fmadd_ps(w, _mm256_maskload_ps(s + 24, m3), a3);
            }
        _mm256_maskstore_ps(out + x, m0, a0);
        _mm256_maskstore_ps(out + x + 8, m1, a1);
        _mm256_maskstore_ps(out + x + 16, m2, a2);
        _mm256_maskstore_ps(out + x + 24, m3, a3);
    }
}

static inline __m256 act8(__m256 v, __m256 s, int kind)
{
    const __m256 zero = _mm256_setzero_ps(), three = _mm256_set1_ps(3.0f), six = _mm256_set1_ps(6.0f);
    __m256 neg = _mm256_cmp_ps(v, zero, _CMP_LT_OQ);
    switch (kind) {
    case 1: return _mm256_blendv_ps(v, zero, neg);
    case 2: return _mm256_blendv_ps(v, _mm256_mul_ps(v, s), neg);
    case 3: {
        /* max(x + 3, 0) gives 0 for NaN like fmaxf; min(., 6) then sees no NaN */
        __m256 r = _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(v, three), zero), six);
        return _mm256_div_ps(_mm256_mul_ps(v, r), six);
    }
    default: return v;
    }
}

/* One loop per kind, so the switch in act8 folds away. */
#define BIAS_ACT_LOOP(kind)                                                                         \
    do {                                                                                            \
        for (; i + 8 <= n; i += 8)                                                                  \
            _mm256_storeu_ps(x + i, act8(_mm256_add_ps(_mm256_loadu_ps(x + i), b), s, kind));       \
        if (i < n) {                                                                                \
            __m256i m = tail_mask(n - i);                                                           \
            _mm256_maskstore_ps(x + i, m, act8(_mm256_add_ps(_mm256_maskload_ps(x + i, m), b), s, kind)); \
        }                                                                                           \
    } while (0)

void lr_conv_bias_act_avx2(float *x, int64_t n, float bias, float slope, int kind)
{
    __m256 b = _mm256_set1_ps(bias), s = _mm256_set1_ps(slope);
    int64_t i = 0;
    switch (kind) {
    case 1: BIAS_ACT_LOOP(1); break;
    case 2: BIAS_ACT_LOOP(2); break;
    case 3: BIAS_ACT_LOOP(3); break;
    default: BIAS_ACT_LOOP(0); break;
    }
}

/* dst[x * stride] += src[x] for x in [0, n): the col2im step of the transposed convolution. */
void lr_conv_scatter_add_avx2(float *dst, const float *src, int64_t n, int64_t stride)
{
    int64_t x = 0;
    if (stride == 1) {
        for (; x + 8 <= n; x += 8)
            _mm256_storeu_ps(dst + x, _mm256_add_ps(_mm256_loadu_ps(dst + x), _mm256_loadu_ps(src + x)));
    } else if (stride == 2) {
        /* 8 sources onto the even lanes of two destination vectors, while those 16 floats
         * stay within dst[0 .. 2n - 2] */
        const __m256i lo = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3), hi = _mm256_setr_epi32(4, 4, 5, 5, 6, 6, 7, 7);
        for (; x + 9 <= n; x += 8) {
            __m256 s = _mm256_loadu_ps(src + x);
            float *d = dst + 2 * x;
            __m256 d0 = _mm256_loadu_ps(d), d1 = _mm256_loadu_ps(d + 8);
            _mm256_storeu_ps(d, _mm256_blend_ps(d0, _mm256_add_ps(d0, _mm256_permutevar8x32_ps(s, lo)), 0x55));
            _mm256_storeu_ps(d + 8, _mm256_blend_ps(d1, _mm256_add_ps(d1, _mm256_permutevar8x32_ps(s, hi)), 0x55));
        }
    }
    for (; x < n; x++)
        dst[x * stride] += src[x];
}
