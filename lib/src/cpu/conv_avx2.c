/* AVX2 kernels of the convolutions (conv.c declares them): the depthwise tap sum, the
 * bias + activation epilogue, the col2im scatter and the direct convolution, as in
 * conv_avx512.c with 8-wide registers. */
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

/* ---- direct convolution ------------------------------------------------------------------
 * As lr_conv_direct_avx512 (see there for the exact definition) with 8-wide registers: nc <= 6
 * channels x nv vectors of accumulators within the 16 registers. Full chunks load plainly; the
 * last, partial chunk uses masked loads and stores. */
void lr_conv_direct_avx2(float *out, int64_t out_cstride, int64_t n, int nc, const float *src, int64_t ci_step,
                         int64_t row_step, int cin, int kh, int kw, const float *wpk, const float *bias,
                         const float *slope, int kind);

enum { DIRECT_MAX_NC = 6, DIRECT_MAX_NV = 6 };

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
                                                               const int NV, const int MASKED)
{
    __m256 acc[DIRECT_MAX_NC][DIRECT_MAX_NV], in[DIRECT_MAX_NV];
    __m256i m[DIRECT_MAX_NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; v++)
        m[v] = tail_mask(MASKED ? a->n - x - 8 * v : 8);
#pragma GCC unroll 8
    for (int c = 0; c < NC; c++)
#pragma GCC unroll 8
        for (int v = 0; v < NV; v++)
            acc[c][v] = _mm256_setzero_ps();
    const float *w = a->wpk;
    for (int ci = 0; ci < a->cin; ci++)
        for (int ky = 0; ky < a->kh; ky++) {
            const float *s = a->src + ci * a->ci_step + ky * a->row_step + x;
            for (int kx = 0; kx < a->kw; kx++, s++, w += NC) {
#pragma GCC unroll 8
                for (int v = 0; v < NV; v++)
                    in[v] = MASKED ? _mm256_maskload_ps(s + 8 * v, m[v]) : _mm256_loadu_ps(s + 8 * v);
#pragma GCC unroll 8
                for (int c = 0; c < NC; c++) {
                    __m256 wv = _mm256_broadcast_ss(w + c);
#pragma GCC unroll 8
                    for (int v = 0; v < NV; v++)
                        acc[c][v] = _mm256_fmadd_ps(wv, in[v], acc[c][v]);
                }
            }
        }
#pragma GCC unroll 8
    for (int c = 0; c < NC; c++) {
        __m256 b = _mm256_set1_ps(a->bias ? a->bias[c] : 0.0f), sl = _mm256_set1_ps(a->slope[c]);
        float *o = a->out + c * a->out_cstride + x;
#pragma GCC unroll 8
        for (int v = 0; v < NV; v++) {
            __m256 r = act8(a->bias ? _mm256_add_ps(acc[c][v], b) : acc[c][v], sl, a->kind);
            if (MASKED)
                _mm256_maskstore_ps(o + 8 * v, m[v], r);
            else
                _mm256_storeu_ps(o + 8 * v, r);
        }
    }
}

typedef void (*direct_chunk_fn)(const direct_args *a, int64_t x);

/* direct_NC_NV: whole vectors; direct_NC_m: the last, partial vector of a row */
#define DIRECT_DEF(NC, NV) \
    static void direct_##NC##_##NV(const direct_args *a, int64_t x) { direct_chunk(a, x, NC, NV, 0); }
#define DIRECT_DEF2(NC)                                                                                \
    DIRECT_DEF(NC, 1) DIRECT_DEF(NC, 2)                                                               \
    static void direct_##NC##_m(const direct_args *a, int64_t x) { direct_chunk(a, x, NC, 1, 1); }
#define DIRECT_DEF3(NC) DIRECT_DEF2(NC) DIRECT_DEF(NC, 3)
#define DIRECT_DEF4(NC) DIRECT_DEF3(NC) DIRECT_DEF(NC, 4)
#define DIRECT_DEF6(NC) DIRECT_DEF4(NC) DIRECT_DEF(NC, 5) DIRECT_DEF(NC, 6)
#define DIRECT_ROW2(NC) {direct_##NC##_m, direct_##NC##_1, direct_##NC##_2}
#define DIRECT_ROW3(NC) {direct_##NC##_m, direct_##NC##_1, direct_##NC##_2, direct_##NC##_3}
#define DIRECT_ROW4(NC) {direct_##NC##_m, direct_##NC##_1, direct_##NC##_2, direct_##NC##_3, direct_##NC##_4}
#define DIRECT_ROW6(NC)                                                                                 \
    {direct_##NC##_m, direct_##NC##_1, direct_##NC##_2, direct_##NC##_3, direct_##NC##_4, direct_##NC##_5, \
     direct_##NC##_6}

/* Vectors per chunk for nc channels: nc * nv accumulators plus nv inputs and a weight within
 * the 16 registers. */
static const int direct_nv[DIRECT_MAX_NC + 1] = {0, 6, 4, 3, 3, 2, 2};
DIRECT_DEF6(1)
DIRECT_DEF4(2)
DIRECT_DEF3(3)
DIRECT_DEF3(4)
DIRECT_DEF2(5)
DIRECT_DEF2(6)
/* [nc][nv]; [nc][0] is the masked partial vector */
static const direct_chunk_fn direct_table[DIRECT_MAX_NC + 1][DIRECT_MAX_NV + 1] = {
    {NULL}, DIRECT_ROW6(1), DIRECT_ROW4(2), DIRECT_ROW3(3), DIRECT_ROW3(4), DIRECT_ROW2(5), DIRECT_ROW2(6),
};

void lr_conv_direct_avx2(float *out, int64_t out_cstride, int64_t n, int nc, const float *src, int64_t ci_step,
                         int64_t row_step, int cin, int kh, int kw, const float *wpk, const float *bias,
                         const float *slope, int kind)
{
    direct_args a = {out, out_cstride, n, src, ci_step, row_step, cin, kh, kw, wpk, bias, slope, kind};
    int nv = direct_nv[nc];
    int64_t x = 0;
    for (; x + 8 * nv <= n; x += 8 * nv)
        direct_table[nc][nv](&a, x);
    int64_t vecs = (n - x) / 8; /* whole vectors left, fewer than nv */
    if (vecs > 0) {
        direct_table[nc][vecs](&a, x);
        x += 8 * vecs;
    }
    if (x < n)
        direct_table[nc][0](&a, x);
}
