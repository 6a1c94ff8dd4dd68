/* AVX-512 kernels of the convolutions (conv.c declares them): the depthwise tap sum and the
 * bias + activation epilogue. Both give every element the same operations whatever its
 * position, so the results do not depend on how rows are split. */
#include <immintrin.h>
#include <stdint.h>

void lr_conv_dw_taps_avx512(float *out, int64_t n, const float *src, int64_t row_step, const float *wt, int rows, int kw,
                            int64_t dil);
void lr_conv_bias_act_avx512(float *x, int64_t n, float bias, float slope, int kind);
void lr_conv_scatter_add_avx512(float *dst, const float *src, int64_t n, int64_t stride);

static __mmask16 tail_mask(int64_t left)
{
    return left >= 16 ? (__mmask16)0xFFFF : left <= 0 ? (__mmask16)0 : (__mmask16)((1u << left) - 1);
}

/* out[x] = sum over r < rows, t < kw (in that order) of wt[r * kw + t] * src[r][x + t * dil],
 * for x in [0, n), where src[r] = src + r * row_step; every element read is inside the image. 64 outputs a pass keep four
 * independent FMA chains in flight. */
void lr_conv_dw_taps_avx512(float *out, int64_t n, const float *src, int64_t row_step, const float *wt, int rows, int kw,
                            int64_t dil)
{
    for (int64_t x = 0; x < n; x += 64) {
        /* the tail runs four masked chains too, so short rows are not latency-bound */
        __mmask16 m0 = tail_mask(n - x), m1 = tail_mask(n - x - 16), m2 = tail_mask(n - x - 32);
        __mmask16 m3 = tail_mask(n - x - 48);
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int r = 0; r < rows; r++)
            for (int t = 0; t < kw; t++) {
                const float *s = src + r * row_step + x + t * dil;
                __m512 w = _mm512_set1_ps(wt[r * kw + t]);
                a0 = _mm512_fmadd_ps(w, _mm512_maskz_loadu_ps(m0, s), a0);
                a1 = _mm512_fmadd_ps(w, _mm512_maskz_loadu_ps(m1, s + 16), a1);
                a2 = _mm512_fmadd_ps(w, _mm512_maskz_loadu_ps(m2, s + 32), a2);
                a3 = _mm512_fmadd_ps(w, _mm512_maskz_loadu_ps(m3, s + 48), a3);
            }
        _mm512_mask_storeu_ps(out + x, m0, a0);
        _mm512_mask_storeu_ps(out + x + 16, m1, a1);
        _mm512_mask_storeu_ps(out + x + 32, m2, a2);
        _mm512_mask_storeu_ps(out + x + 48, m3, a3);
    }
}

static inline __m512 act16(__m512 v, __m512 s, int kind)
{
    const __m512 zero = _mm512_setzero_ps(), three = _mm512_set1_ps(3.0f), six = _mm512_set1_ps(6.0f);
    __mmask16 neg = _mm512_cmp_ps_mask(v, zero, _CMP_LT_OQ);
    switch (kind) {
    case 1: return _mm512_mask_mov_ps(v, neg, zero);
    case 2: return _mm512_mask_mul_ps(v, neg, v, s);
    case 3: {
        /* max(x + 3, 0) gives 0 for NaN like fmaxf; min(., 6) then sees no NaN */
        __m512 r = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(v, three), zero), six);
        return _mm512_div_ps(_mm512_mul_ps(v, r), six);
    }
    default: return v;
    }
}

/* One loop per kind, so the switch in act16 folds away. */
#define BIAS_ACT_LOOP(kind)                                                                         \
    do {                                                                                            \
        for (; i + 16 <= n; i += 16)                                                                \
            _mm512_storeu_ps(x + i, act16(_mm512_add_ps(_mm512_loadu_ps(x + i), b), s, kind));      \
        if (i < n) {                                                                                \
            __mmask16 m = tail_mask(n - i);                                                         \
            _mm512_mask_storeu_ps(x + i, m, act16(_mm512_add_ps(_mm512_maskz_loadu_ps(m, x + i), b), s, kind)); \
        }                                                                                           \
    } while (0)

/* x = act(x + bias); kind 0: none, 1: ReLU, 2: x < 0 ? slope * x : x, 3: hard-swish. NaN
 * handling follows the scalar definitions in conv.c (ReLU and the slopes keep NaN). */
void lr_conv_bias_act_avx512(float *x, int64_t n, float bias, float slope, int kind)
{
    __m512 b = _mm512_set1_ps(bias), s = _mm512_set1_ps(slope);
    int64_t i = 0;
    switch (kind) {
    case 1: BIAS_ACT_LOOP(1); break;
    case 2: BIAS_ACT_LOOP(2); break;
    case 3: BIAS_ACT_LOOP(3); break;
    default: BIAS_ACT_LOOP(0); break;
    }
}

/* dst[x * stride] += src[x] for x in [0, n): the col2im step of the transposed convolution.
 * Stride 2 spreads 16 sources over the even lanes of two destination vectors. */
void lr_conv_scatter_add_avx512(float *dst, const float *src, int64_t n, int64_t stride)
{
    int64_t x = 0;
    if (stride == 1) {
        for (; x < n; x += 16) {
            __mmask16 m = tail_mask(n - x);
            __m512 d = _mm512_maskz_loadu_ps(m, dst + x);
            _mm512_mask_storeu_ps(dst + x, m, _mm512_add_ps(d, _mm512_maskz_loadu_ps(m, src + x)));
        }
        return;
    }
    if (stride == 2) {
        const __m512i lo = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
        const __m512i hi = _mm512_setr_epi32(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
        for (; x + 16 <= n; x += 16) {
            __m512 s = _mm512_loadu_ps(src + x);
            float *d = dst + 2 * x;
            /* the last destination lane (odd, untouched) may lie past the row: mask it off */
            __m512 d0 = _mm512_loadu_ps(d), d1 = _mm512_maskz_loadu_ps(0x7FFF, d + 16);
            _mm512_storeu_ps(d, _mm512_mask_add_ps(d0, 0x5555, d0, _mm512_permutexvar_ps(lo, s)));
            _mm512_mask_storeu_ps(d + 16, 0x7FFF, _mm512_mask_add_ps(d1, 0x5555, d1, _mm512_permutexvar_ps(hi, s)));
        }
    }
    for (; x < n; x++)
        dst[x * stride] += src[x];
}
