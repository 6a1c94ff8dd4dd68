/* AVX2 attention tile kernels (F32; BF16 inputs arrive converted). Layouts in
 * attention_internal.h; the register blocks are the AVX-512 ones cut to 16 registers:
 * scores in blocks of 6 keys x 16 queries (12 accumulators, two query vectors, one
 * broadcast), accumulate in blocks of 4 query rows x 24 output columns (12 accumulators,
 * three value vectors, one broadcast). Tiles of 48 queries x 96 keys, which both divide. */
#include <immintrin.h>
#include <math.h>

#include "attention_internal.h"

#define INLINE static inline __attribute__((always_inline))

enum {
    KEYS_PER_BLOCK = 6,  /* scores: keys per register block */
    QVECS_PER_BLOCK = 2, /* scores: query vectors per block */
    SOFTMAX_QVECS = 4,   /* softmax: query vectors (row sums) in flight */
    ROWS_PER_BLOCK = 4,  /* accumulate: query rows per block */
    CVECS_PER_BLOCK = 3, /* accumulate: output vectors per block */
};

/* 2^x as in the AVX-512 kernel (degree-6 polynomial on |f| <= 1/2), with 2^n built in the
 * exponent bits; below -126 (-inf included) the result is exactly 0. */
INLINE __m256 exp2_ps(__m256 x)
{
    __m256 underflow = _mm256_cmp_ps(x, _mm256_set1_ps(-126.0f), _CMP_LT_OQ);
    x = _mm256_max_ps(_mm256_set1_ps(-126.0f), x);
    __m256 n = _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 f = _mm256_sub_ps(x, n);
    __m256 p = _mm256_set1_ps(1.534581097e-04f);
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.339993207e-03f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(9.618489072e-03f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(5.550328642e-02f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(2.402264625e-01f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(6.931471825e-01f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(underflow, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

/* Lanes below n set (n in 0..8). */
static inline __m256i lane_mask(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* ---- scores ------------------------------------------------------------------------- */

/* A block of KEYS_PER_BLOCK keys x 16 queries of S^T. A block with fewer keys (rows)
 * repeats its last key in the spare accumulators and stores only its own rows. */
static void scores_block(const float *qt, int br, const float *k, int64_t ks, int rows, int d, float *s,
                         __m256 *cmax)
{
    __m256 acc[KEYS_PER_BLOCK][QVECS_PER_BLOCK];
    const float *key[KEYS_PER_BLOCK];
#pragma GCC unroll 8
    for (int r = 0; r < KEYS_PER_BLOCK; r++) {
        key[r] = k + (r < rows ? r : rows - 1) * ks;
        acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    }
    for (int x = 0; x < d; x++) {
        __m256 q0 = _mm256_load_ps(qt + (int64_t)x * br), q1 = _mm256_load_ps(qt + (int64_t)x * br + 8);
#pragma GCC unroll 8
        for (int r = 0; r < KEYS_PER_BLOCK; r++) {
            __m256 kb = _mm256_broadcast_ss(key[r] + x);
            acc[r][0] = _mm256_fmadd_ps(q0, kb, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(q1, kb, acc[r][1]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < KEYS_PER_BLOCK; r++)
#pragma GCC unroll 2
        for (int c = 0; c < QVECS_PER_BLOCK; c++) {
            if (r < rows)
                _mm256_store_ps(s + (int64_t)r * br + 8 * c, acc[r][c]);
            cmax[c] = _mm256_max_ps(cmax[c], acc[r][c]);
        }
}

static void scores_f32(const void *qt_, int br, const void *k_, int64_t ks, int nk, int d, float *s, float *colmax)
{
    const float *qt = qt_, *k = k_;
    for (int q0 = 0; q0 < br; q0 += 8 * QVECS_PER_BLOCK) {
        __m256 cmax[QVECS_PER_BLOCK] = {_mm256_set1_ps(-INFINITY), _mm256_set1_ps(-INFINITY)};
        for (int j = 0; j < nk; j += KEYS_PER_BLOCK)
            scores_block(qt + q0, br, k + j * ks, ks, nk - j < KEYS_PER_BLOCK ? nk - j : KEYS_PER_BLOCK, d,
                         s + (int64_t)j * br + q0, cmax);
        _mm256_store_ps(colmax + q0, cmax[0]);
        _mm256_store_ps(colmax + q0 + 8, cmax[1]);
    }
}

/* ---- mask --------------------------------------------------------------------------- */

static void mask_tile(float *s, int br, int nk, const int32_t *lo, const int32_t *hi, float *colmax)
{
    const __m256 hidden = _mm256_set1_ps(-INFINITY);
    for (int q0 = 0; q0 < br; q0 += 8) {
        __m256i query = _mm256_setr_epi32(q0, q0 + 1, q0 + 2, q0 + 3, q0 + 4, q0 + 5, q0 + 6, q0 + 7);
        __m256 cmax = hidden;
        for (int j = 0; j < nk; j++) {
            float *row = s + (int64_t)j * br + q0;
            __m256i keep = _mm256_andnot_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32(lo[j]), query),
                                               _mm256_cmpgt_epi32(_mm256_set1_epi32(hi[j]), query));
            __m256 x = _mm256_blendv_ps(hidden, _mm256_load_ps(row), _mm256_castsi256_ps(keep));
            _mm256_store_ps(row, x);
            cmax = _mm256_max_ps(cmax, x);
        }
        _mm256_store_ps(colmax + q0, cmax);
    }
}

/* ---- softmax ------------------------------------------------------------------------ */

INLINE void softmax_column(float *s, int br, int nk, float c, const float *colmax, float *m, float *l,
                           float *alpha, const int nq)
{
    const __m256 vc = _mm256_set1_ps(c), minus_inf = _mm256_set1_ps(-INFINITY);
    __m256 sub[SOFTMAX_QVECS], sum[SOFTMAX_QVECS];
#pragma GCC unroll 4
    for (int v = 0; v < nq; v++) {
        __m256 m_old = _mm256_load_ps(m + 8 * v);
        __m256 m_new = _mm256_max_ps(m_old, _mm256_mul_ps(_mm256_load_ps(colmax + 8 * v), vc));
        /* a query that has only seen -inf subtracts 0: its probabilities stay exact zeros */
        sub[v] = _mm256_andnot_ps(_mm256_cmp_ps(m_new, minus_inf, _CMP_EQ_OQ), m_new);
        __m256 a = exp2_ps(_mm256_sub_ps(m_old, sub[v]));
        _mm256_store_ps(alpha + 8 * v, a);
        _mm256_store_ps(m + 8 * v, m_new);
        sum[v] = _mm256_setzero_ps();
    }
    for (int j = 0; j < nk; j++) {
        float *row = s + (int64_t)j * br;
#pragma GCC unroll 4
        for (int v = 0; v < nq; v++) {
            __m256 x = exp2_ps(_mm256_fmsub_ps(_mm256_load_ps(row + 8 * v), vc, sub[v]));
            _mm256_store_ps(row + 8 * v, x);
            sum[v] = _mm256_add_ps(sum[v], x);
        }
    }
#pragma GCC unroll 4
    for (int v = 0; v < nq; v++)
        _mm256_store_ps(l + 8 * v,
                        _mm256_fmadd_ps(_mm256_load_ps(l + 8 * v), _mm256_load_ps(alpha + 8 * v), sum[v]));
}

static void softmax_f32(float *s, void *p, int br, int nk, float c, const float *colmax, float *m, float *l,
                        float *alpha)
{
    /* br is a multiple of 16: blocks of four vectors, then possibly two */
    int q0 = 0;
    for (; q0 + 8 * SOFTMAX_QVECS <= br; q0 += 8 * SOFTMAX_QVECS)
        softmax_column(s + q0, br, nk, c, colmax + q0, m + q0, l + q0, alpha + q0, SOFTMAX_QVECS);
    if (q0 < br)
        softmax_column(s + q0, br, nk, c, colmax + q0, m + q0, l + q0, alpha + q0, 2);
}

/* ---- values ------------------------------------------------------------------------- */

INLINE void accumulate_block(const float *p, int br, const float *v, int64_t vs, int nk, const float *alpha,
                             float *o, int ldo, __m256i tail, const int mq, const int nv)
{
    __m256 acc[ROWS_PER_BLOCK][CVECS_PER_BLOCK];
#pragma GCC unroll 4
    for (int r = 0; r < mq; r++) {
        __m256 a = _mm256_broadcast_ss(alpha + r);
#pragma GCC unroll 3
        for (int c = 0; c < nv; c++)
            acc[r][c] = _mm256_mul_ps(a, _mm256_load_ps(o + (int64_t)r * ldo + 8 * c));
    }
    for (int j = 0; j < nk; j++) {
        __m256 vv[CVECS_PER_BLOCK];
#pragma GCC unroll 3
        for (int c = 0; c < nv; c++)
            vv[c] = c == nv - 1 ? _mm256_maskload_ps(v + j * vs + 8 * c, tail) : _mm256_loadu_ps(v + j * vs + 8 * c);
        const float *pj = p + (int64_t)j * br;
#pragma GCC unroll 4
        for (int r = 0; r < mq; r++) {
            __m256 pb = _mm256_broadcast_ss(pj + r);
#pragma GCC unroll 3
            for (int c = 0; c < nv; c++)
                acc[r][c] = _mm256_fmadd_ps(pb, vv[c], acc[r][c]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < mq; r++)
#pragma GCC unroll 3
        for (int c = 0; c < nv; c++)
            _mm256_store_ps(o + (int64_t)r * ldo + 8 * c, acc[r][c]);
}

INLINE void accumulate_rows(const float *p, int br, const float *v, int64_t vs, int nk, int dv, const float *alpha,
                            float *o, int ldo, const int mq)
{
    for (int c0 = 0; c0 < dv; c0 += 8 * CVECS_PER_BLOCK) {
        int left = dv - c0;
        __m256i tail = lane_mask(left > 8 * CVECS_PER_BLOCK ? 8 : left - (left - 1) / 8 * 8);
        switch (left > 16 ? 3 : (left + 7) / 8) {
        case 1: accumulate_block(p, br, v + c0, vs, nk, alpha, o + c0, ldo, tail, mq, 1); break;
        case 2: accumulate_block(p, br, v + c0, vs, nk, alpha, o + c0, ldo, tail, mq, 2); break;
        default: accumulate_block(p, br, v + c0, vs, nk, alpha, o + c0, ldo, tail, mq, 3); break;
        }
    }
}

static void accumulate_f32(const void *p_, int br, const void *v_, int64_t vs, int nk, int dv, const float *alpha,
                           float *o, int ldo)
{
    const float *p = p_, *v = v_;
    for (int i = 0; i < br; i += ROWS_PER_BLOCK) /* br is a multiple of 16 */
        accumulate_rows(p + i, br, v, vs, nk, dv, alpha + i, o + (int64_t)i * ldo, ldo, ROWS_PER_BLOCK);
}

const lr_attn_kernel lr_attn_kernel_avx2 = {
    .name = "avx2",
    .block_q = 48,
    .block_k = 96,
    .bf16 = false,
    .scores = scores_f32,
    .mask = mask_tile,
    .softmax = softmax_f32,
    .accumulate = accumulate_f32,
};
