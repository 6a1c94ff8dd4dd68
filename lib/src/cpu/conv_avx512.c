/* AVX-512 kernels of the convolutions (conv.c declares them): the depthwise tap sum, the
 * bias + activation epilogue, the col2im scatter and the direct convolution. Each gives every
 * element the same operations whatever its position, so the results do not depend on how
 * rows or channels are split. */
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

/* ---- direct convolution ------------------------------------------------------------------
 * out[c * out_cstride + x] = act(sum over ci < cin, ky < kh, kx < kw (in that order, one FMA
 * chain from 0) of wpk[((ci * kh + ky) * kw + kx) * nc + c] * src[ci * ci_step + ky * row_step
 * + x + kx]  (+ bias[c] when bias is not NULL), slope[c]) for c < nc, x < n; every source
 * element read is inside the caller's padded rows. A chunk keeps nc output channels x nv
 * vectors of pixels in registers; per tap it loads nv input vectors and broadcasts nc weights
 * (read in order from the packed array). Each element's operations do not depend on the
 * chunk it falls in, so the result does not depend on how the caller splits rows or channels. */
void lr_conv_direct_avx512(float *out, int64_t out_cstride, int64_t n, int nc, const float *src, int64_t ci_step,
                           int64_t row_step, int cin, int kh, int kw, const float *wpk, const float *bias,
                           const float *slope, int kind);

enum { DIRECT_MAX_NC = 12, DIRECT_MAX_NV = 8 };

typedef struct {
    float *out;
    int64_t out_cstride, n;
    const float *src;
    int64_t ci_step, row_step;
    int cin, kh, kw;
    const float *wpk, *bias, *slope;
    int kind;
} direct_args;

static inline __attribute__((always_inline)) void direct_chunk(const direct_args *a, int64_t x, const int NC,
                                                               const int NV)
{
    __m512 acc[DIRECT_MAX_NC][DIRECT_MAX_NV], in[DIRECT_MAX_NV];
    __mmask16 m[DIRECT_MAX_NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; v++)
        m[v] = tail_mask(a->n - x - 16 * v);
#pragma GCC unroll 12
    for (int c = 0; c < NC; c++)
#pragma GCC unroll 8
        for (int v = 0; v < NV; v++)
            acc[c][v] = _mm512_setzero_ps();
    const float *w = a->wpk;
    for (int ci = 0; ci < a->cin; ci++)
        for (int ky = 0; ky < a->kh; ky++) {
            const float *s = a->src + ci * a->ci_step + ky * a->row_step + x;
            for (int kx = 0; kx < a->kw; kx++, s++, w += NC) {
#pragma GCC unroll 8
                for (int v = 0; v < NV; v++)
                    in[v] = _mm512_maskz_loadu_ps(m[v], s + 16 * v);
#pragma GCC unroll 12
                for (int c = 0; c < NC; c++) {
                    __m512 wv = _mm512_set1_ps(w[c]);
#pragma GCC unroll 8
                    for (int v = 0; v < NV; v++)
                        acc[c][v] = _mm512_fmadd_ps(wv, in[v], acc[c][v]);
                }
            }
        }
#pragma GCC unroll 12
    for (int c = 0; c < NC; c++) {
        __m512 b = _mm512_set1_ps(a->bias ? a->bias[c] : 0.0f), sl = _mm512_set1_ps(a->slope[c]);
        float *o = a->out + c * a->out_cstride + x;
#pragma GCC unroll 8
        for (int v = 0; v < NV; v++) {
            __m512 r = a->bias ? _mm512_add_ps(acc[c][v], b) : acc[c][v];
            _mm512_mask_storeu_ps(o + 16 * v, m[v], act16(r, sl, a->kind));
        }
    }
}

typedef void (*direct_chunk_fn)(const direct_args *a, int64_t x);

#define DIRECT_DEF(NC, NV) \
    static void direct_##NC##_##NV(const direct_args *a, int64_t x) { direct_chunk(a, x, NC, NV); }
#define DIRECT_DEF2(NC) DIRECT_DEF(NC, 1) DIRECT_DEF(NC, 2)
#define DIRECT_DEF3(NC) DIRECT_DEF2(NC) DIRECT_DEF(NC, 3)
#define DIRECT_DEF4(NC) DIRECT_DEF3(NC) DIRECT_DEF(NC, 4)
#define DIRECT_DEF5(NC) DIRECT_DEF4(NC) DIRECT_DEF(NC, 5)
#define DIRECT_DEF6(NC) DIRECT_DEF5(NC) DIRECT_DEF(NC, 6)
#define DIRECT_DEF8(NC) DIRECT_DEF6(NC) DIRECT_DEF(NC, 7) DIRECT_DEF(NC, 8)
#define DIRECT_ROW2(NC) {NULL, direct_##NC##_1, direct_##NC##_2}
#define DIRECT_ROW3(NC) {NULL, direct_##NC##_1, direct_##NC##_2, direct_##NC##_3}
#define DIRECT_ROW4(NC) {NULL, direct_##NC##_1, direct_##NC##_2, direct_##NC##_3, direct_##NC##_4}
#define DIRECT_ROW5(NC) {NULL, direct_##NC##_1, direct_##NC##_2, direct_##NC##_3, direct_##NC##_4, direct_##NC##_5}
#define DIRECT_ROW6(NC)                                                                                 \
    {NULL, direct_##NC##_1, direct_##NC##_2, direct_##NC##_3, direct_##NC##_4, direct_##NC##_5,         \
     direct_##NC##_6}
#define DIRECT_ROW8(NC)                                                                                 \
    {NULL, direct_##NC##_1, direct_##NC##_2, direct_##NC##_3, direct_##NC##_4, direct_##NC##_5,         \
     direct_##NC##_6, direct_##NC##_7, direct_##NC##_8}

/* Vectors per chunk for nc channels: nc * nv accumulators plus nv inputs within the 32
 * registers, nv as large as that allows (wider chunks reuse each broadcast weight more). */
static const int direct_nv[DIRECT_MAX_NC + 1] = {0, 8, 8, 6, 5, 4, 4, 3, 3, 2, 2, 2, 2};
DIRECT_DEF8(1)
DIRECT_DEF8(2)
DIRECT_DEF6(3)
DIRECT_DEF5(4)
DIRECT_DEF4(5)
DIRECT_DEF4(6)
DIRECT_DEF3(7)
DIRECT_DEF3(8)
DIRECT_DEF2(9)
DIRECT_DEF2(10)
DIRECT_DEF2(11)
DIRECT_DEF2(12)
static const direct_chunk_fn direct_table[DIRECT_MAX_NC + 1][DIRECT_MAX_NV + 1] = {
    {NULL},         DIRECT_ROW8(1), DIRECT_ROW8(2),  DIRECT_ROW6(3),  DIRECT_ROW5(4),  DIRECT_ROW4(5), DIRECT_ROW4(6),
    DIRECT_ROW3(7), DIRECT_ROW3(8), DIRECT_ROW2(9), DIRECT_ROW2(10), DIRECT_ROW2(11), DIRECT_ROW2(12),
};

void lr_conv_direct_avx512(float *out, int64_t out_cstride, int64_t n, int nc, const float *src, int64_t ci_step,
                           int64_t row_step, int cin, int kh, int kw, const float *wpk, const float *bias,
                           const float *slope, int kind)
{
    direct_args a = {out, out_cstride, n, src, ci_step, row_step, cin, kh, kw, wpk, bias, slope, kind};
    int nv = direct_nv[nc];
    int64_t x = 0;
    for (; x + 16 * nv <= n; x += 16 * nv)
        direct_table[nc][nv](&a, x);
    if (x < n)
        direct_table[nc][(n - x + 15) / 16](&a, x);
}
