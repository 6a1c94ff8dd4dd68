/* AVX-512 attention tile kernels (layouts in attention_internal.h), F32 and BF16.
 *
 * Scores: register blocks of 4 keys x 64 queries (16 accumulators); per head-dim step four
 * query vectors are loaded and each key element is broadcast into four FMAs. The BF16
 * kernel steps through pairs of head-dim elements, VDPBF16PS doing two products per lane
 * with F32 accumulation.
 * Accumulate: blocks of 4 query rows x 64 output columns (16 accumulators); per key, four
 * value vectors are loaded and each probability is broadcast into four FMAs (BF16: pairs of
 * keys through VDPBF16PS, the probabilities rounded to bf16).
 * Tiles of 128 keys and 128 queries (F32) or 64 (BF16): both block shapes divide them, so
 * no lane is wasted on remainders, and on this machine (Zen 5) they measured as fast as
 * 6-row blocks with 24 accumulators, which waste a few rows on such tiles. 128 query rows
 * halve the K and V traffic per FLOP against 64, which is worth 10 % once K and V no longer
 * fit in the caches (L = 128k, one head); at L = 4k..16k both sizes run alike.
 * Softmax: a polynomial exp2, 64 queries at a time so that four row sums run side by side.
 *
 * The block functions take their vector counts as constants and are always inlined, so each
 * count becomes its own fully unrolled loop with the accumulators in registers; a block
 * short of keys or rows repeats its last one instead of needing another shape. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "attention_internal.h"

#define INLINE static inline __attribute__((always_inline))

enum {
    KEYS_PER_BLOCK = 4,   /* scores: keys per register block */
    QVECS_PER_BLOCK = 4,  /* scores, softmax: query vectors per block */
    ROWS_PER_BLOCK = 4,   /* accumulate: query rows per register block */
    CVECS_PER_BLOCK = 4,  /* accumulate: output vectors per block */
};

/* 2^x: x = n + f with n an integer and |f| <= 1/2; 2^f from a polynomial fitted for relative
 * error, and scalef applies 2^n. Degree 6 is within 1.6 ulp over the range in float
 * arithmetic; the coarse degree 4 (3.7e-6) is for probabilities that are rounded to bf16
 * (2^-9) anyway. Anything below -160, -inf included, comes out as exactly 0; NaN stays NaN. */
INLINE __m512 exp2_ps(__m512 x, const bool coarse)
{
    x = _mm512_max_ps(_mm512_set1_ps(-160.0f), x);
    __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 f = _mm512_sub_ps(x, n), p;
    if (coarse) {
        p = _mm512_set1_ps(9.570100345e-03f);
        p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.591786280e-02f));
        p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.402474433e-01f));
        p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.931217909e-01f));
    } else {
        p = _mm512_set1_ps(1.534581097e-04f);
        p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.339993207e-03f));
        p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.618489072e-03f));
        p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.550328642e-02f));
        p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.402264625e-01f));
        p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.931471825e-01f));
    }
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

static inline __mmask16 lane_mask(int n) { return n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1); }

static inline uint32_t load_u32(const void *p)
{
    uint32_t x;
    memcpy(&x, p, 4);
    return x;
}

/* ---- scores ------------------------------------------------------------------------- */

/* One pair of head-dim elements for the BF16 scores: qt holds (q[i][2x], q[i][2x+1]) per
 * 32-bit lane, multiplied with the same pair of each key row. An odd last element (lone)
 * pairs with zero and reads only its own 16 bits of the key row. */
INLINE void scores_step_bf16(__m512 acc[][QVECS_PER_BLOCK], const uint32_t *qt, int br,
                             const uint16_t *const *key, int x, const int nq, const bool lone)
{
    __m512bh qv[QVECS_PER_BLOCK];
#pragma GCC unroll 4
    for (int c = 0; c < nq; c++)
        qv[c] = (__m512bh)_mm512_load_si512(qt + (int64_t)x * br + 16 * c);
#pragma GCC unroll 8
    for (int r = 0; r < KEYS_PER_BLOCK; r++) {
        const uint16_t *kp = key[r] + 2 * x;
        __m512bh kb = (__m512bh)_mm512_set1_epi32((int)(lone ? *kp : load_u32(kp)));
#pragma GCC unroll 4
        for (int c = 0; c < nq; c++)
            acc[r][c] = _mm512_dpbf16_ps(acc[r][c], qv[c], kb);
    }
}

/* A block of KEYS_PER_BLOCK keys x nq query vectors of S^T (F32: qt[x * br + i] against
 * k[r * ks + x]; BF16: pairs). A block with fewer keys (rows) repeats its last key in the
 * spare accumulators and stores only its own rows: one shape serves every remainder, and a
 * repeated key changes no column maximum. */
INLINE void scores_block(const void *qt_, int br, const void *k, int64_t ks, int rows, int d, float *s,
                         __m512 *cmax, const int nq, const bool bf16)
{
    __m512 acc[KEYS_PER_BLOCK][QVECS_PER_BLOCK];
    const char *key[KEYS_PER_BLOCK];
#pragma GCC unroll 8
    for (int r = 0; r < KEYS_PER_BLOCK; r++) {
        key[r] = (const char *)k + (r < rows ? r : rows - 1) * ks * (bf16 ? 2 : 4);
#pragma GCC unroll 4
        for (int c = 0; c < nq; c++)
            acc[r][c] = _mm512_setzero_ps();
    }
    if (bf16) {
        for (int x = 0; x < d / 2; x++)
            scores_step_bf16(acc, qt_, br, (const uint16_t *const *)key, x, nq, false);
        if (d % 2)
            scores_step_bf16(acc, qt_, br, (const uint16_t *const *)key, d / 2, nq, true);
    } else {
        const float *qt = qt_;
        for (int x = 0; x < d; x++) {
            __m512 qv[QVECS_PER_BLOCK];
#pragma GCC unroll 4
            for (int c = 0; c < nq; c++)
                qv[c] = _mm512_load_ps(qt + (int64_t)x * br + 16 * c);
#pragma GCC unroll 8
            for (int r = 0; r < KEYS_PER_BLOCK; r++) {
                __m512 kb = _mm512_set1_ps(((const float *)key[r])[x]);
#pragma GCC unroll 4
                for (int c = 0; c < nq; c++)
                    acc[r][c] = _mm512_fmadd_ps(qv[c], kb, acc[r][c]);
            }
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < KEYS_PER_BLOCK; r++)
#pragma GCC unroll 4
        for (int c = 0; c < nq; c++) {
            if (r < rows)
                _mm512_store_ps(s + (int64_t)r * br + 16 * c, acc[r][c]);
            cmax[c] = _mm512_max_ps(cmax[c], acc[r][c]);
        }
}

/* All nk keys against nq query vectors. */
INLINE void scores_column(const void *qt, int br, const void *k, int64_t ks, int nk, int d, float *s,
                          float *colmax, const int nq, const bool bf16)
{
    __m512 cmax[QVECS_PER_BLOCK];
#pragma GCC unroll 4
    for (int c = 0; c < nq; c++)
        cmax[c] = _mm512_set1_ps(-INFINITY);
    for (int j = 0; j < nk; j += KEYS_PER_BLOCK)
        scores_block(qt, br, (const char *)k + j * ks * (bf16 ? 2 : 4), ks, nk - j < KEYS_PER_BLOCK ? nk - j : KEYS_PER_BLOCK,
                     d, s + (int64_t)j * br, cmax, nq, bf16);
#pragma GCC unroll 4
    for (int c = 0; c < nq; c++)
        _mm512_store_ps(colmax + 16 * c, cmax[c]);
}

INLINE void scores_all(const void *qt, int br, const void *k, int64_t ks, int nk, int d, float *s, float *colmax,
                       const bool bf16)
{
    for (int q0 = 0; q0 < br; q0 += 16 * QVECS_PER_BLOCK) {
        const char *qt0 = (const char *)qt + (size_t)q0 * 4;
        switch ((br - q0) / 16) {
        case 1: scores_column(qt0, br, k, ks, nk, d, s + q0, colmax + q0, 1, bf16); break;
        case 2: scores_column(qt0, br, k, ks, nk, d, s + q0, colmax + q0, 2, bf16); break;
        case 3: scores_column(qt0, br, k, ks, nk, d, s + q0, colmax + q0, 3, bf16); break;
        default: scores_column(qt0, br, k, ks, nk, d, s + q0, colmax + q0, 4, bf16); break;
        }
    }
}

static void scores_f32(const void *qt, int br, const void *k, int64_t ks, int nk, int d, float *s, float *colmax)
{
    scores_all(qt, br, k, ks, nk, d, s, colmax, false);
}

static void scores_bf16(const void *qt, int br, const void *k, int64_t ks, int nk, int d, float *s, float *colmax)
{
    scores_all(qt, br, k, ks, nk, d, s, colmax, true);
}

/* ---- mask --------------------------------------------------------------------------- */

static void mask_tile(float *s, int br, int nk, const int32_t *lo, const int32_t *hi, float *colmax)
{
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512 hidden = _mm512_set1_ps(-INFINITY);
    for (int q0 = 0; q0 < br; q0 += 16) {
        __m512i query = _mm512_add_epi32(lane, _mm512_set1_epi32(q0));
        __m512 cmax = hidden;
        for (int j = 0; j < nk; j++) {
            float *row = s + (int64_t)j * br + q0;
            __mmask16 keep = _mm512_cmpge_epi32_mask(query, _mm512_set1_epi32(lo[j])) &
                             _mm512_cmplt_epi32_mask(query, _mm512_set1_epi32(hi[j]));
            __m512 x = _mm512_mask_mov_ps(hidden, keep, _mm512_load_ps(row));
            _mm512_store_ps(row, x);
            cmax = _mm512_max_ps(cmax, x);
        }
        _mm512_store_ps(colmax + q0, cmax);
    }
}

/* ---- softmax ------------------------------------------------------------------------ */

/* 16 bf16 pairs (a[i], b[i]) from two rows of probabilities, a in the low half. */
INLINE __m512i pair_bf16(__m512 a, __m512 b)
{
    const __m512i interleave = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                                23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    return _mm512_permutexvar_epi16(interleave, (__m512i)_mm512_cvtne2ps_pbh(b, a));
}

/* nq query vectors from column q0. F32 writes the probabilities over the scores; BF16 writes
 * pairs of key rows to p (a missing odd last row counts as zeros). */
INLINE void softmax_column(float *s, uint32_t *p, int br, int nk, float c, const float *colmax, float *m,
                           float *l, float *alpha, const int nq, const bool bf16)
{
    const __m512 vc = _mm512_set1_ps(c), minus_inf = _mm512_set1_ps(-INFINITY);
    __m512 sub[QVECS_PER_BLOCK], sum[QVECS_PER_BLOCK], sum2[QVECS_PER_BLOCK];
#pragma GCC unroll 4
    for (int v = 0; v < nq; v++) {
        __m512 m_old = _mm512_load_ps(m + 16 * v);
        __m512 m_new = _mm512_max_ps(m_old, _mm512_mul_ps(_mm512_load_ps(colmax + 16 * v), vc));
        /* a query that has only seen -inf subtracts 0: its probabilities stay exact zeros */
        sub[v] = _mm512_mask_mov_ps(m_new, _mm512_cmp_ps_mask(m_new, minus_inf, _CMP_EQ_OQ), _mm512_setzero_ps());
        __m512 a = exp2_ps(_mm512_sub_ps(m_old, sub[v]), false);
        _mm512_store_ps(alpha + 16 * v, a);
        _mm512_store_ps(m + 16 * v, m_new);
        _mm512_store_ps(l + 16 * v, _mm512_mul_ps(_mm512_load_ps(l + 16 * v), a));
        sum[v] = _mm512_setzero_ps();
        sum2[v] = _mm512_setzero_ps();
    }
    if (bf16) {
        for (int j = 0; j < nk; j += 2) {
            const float *row0 = s + (int64_t)j * br, *row1 = row0 + br;
            uint32_t *out = p + (int64_t)(j / 2) * br;
#pragma GCC unroll 4
            for (int v = 0; v < nq; v++) {
                __m512 p0 = exp2_ps(_mm512_fmsub_ps(_mm512_load_ps(row0 + 16 * v), vc, sub[v]), true);
                __m512 p1 = j + 1 < nk ? exp2_ps(_mm512_fmsub_ps(_mm512_load_ps(row1 + 16 * v), vc, sub[v]), true)
                                       : _mm512_setzero_ps();
                sum[v] = _mm512_add_ps(sum[v], p0);
                sum2[v] = _mm512_add_ps(sum2[v], p1);
                _mm512_store_si512(out + 16 * v, pair_bf16(p0, p1));
            }
        }
    } else {
        for (int j = 0; j < nk; j++) {
            float *row = s + (int64_t)j * br;
#pragma GCC unroll 4
            for (int v = 0; v < nq; v++) {
                __m512 x = exp2_ps(_mm512_fmsub_ps(_mm512_load_ps(row + 16 * v), vc, sub[v]), false);
                _mm512_store_ps(row + 16 * v, x);
                sum[v] = _mm512_add_ps(sum[v], x);
            }
        }
    }
#pragma GCC unroll 4
    for (int v = 0; v < nq; v++)
        _mm512_store_ps(l + 16 * v, _mm512_add_ps(_mm512_load_ps(l + 16 * v), _mm512_add_ps(sum[v], sum2[v])));
}

INLINE void softmax_all(float *s, void *p, int br, int nk, float c, const float *colmax, float *m, float *l,
                        float *alpha, const bool bf16)
{
    for (int q0 = 0; q0 < br; q0 += 16 * QVECS_PER_BLOCK) {
        uint32_t *p0 = bf16 ? (uint32_t *)p + q0 : NULL;
        switch ((br - q0) / 16) {
        case 1: softmax_column(s + q0, p0, br, nk, c, colmax + q0, m + q0, l + q0, alpha + q0, 1, bf16); break;
        case 2: softmax_column(s + q0, p0, br, nk, c, colmax + q0, m + q0, l + q0, alpha + q0, 2, bf16); break;
        case 3: softmax_column(s + q0, p0, br, nk, c, colmax + q0, m + q0, l + q0, alpha + q0, 3, bf16); break;
        default: softmax_column(s + q0, p0, br, nk, c, colmax + q0, m + q0, l + q0, alpha + q0, 4, bf16); break;
        }
    }
}

static void softmax_f32(float *s, void *p, int br, int nk, float c, const float *colmax, float *m, float *l,
                        float *alpha)
{
    softmax_all(s, p, br, nk, c, colmax, m, l, alpha, false);
}

static void softmax_bf16(float *s, void *p, int br, int nk, float c, const float *colmax, float *m, float *l,
                         float *alpha)
{
    softmax_all(s, p, br, nk, c, colmax, m, l, alpha, true);
}

/* ---- values ------------------------------------------------------------------------- */

static void pack_v_bf16(const uint16_t *v, int64_t vs, int nk, int dv, int ldv, uint32_t *vp)
{
    /* lanes 0..31 of the result: pairs (a[c], b[c]) for c = half * 16 + 0..15 */
    const __m512i low = _mm512_set_epi16(47, 15, 46, 14, 45, 13, 44, 12, 43, 11, 42, 10, 41, 9, 40, 8,
                                         39, 7, 38, 6, 37, 5, 36, 4, 35, 3, 34, 2, 33, 1, 32, 0);
    const __m512i high = _mm512_add_epi16(low, _mm512_set1_epi16(16));
    for (int j = 0; j < nk; j += 2) {
        const uint16_t *a = v + j * vs, *b = a + vs;
        uint32_t *out = vp + (int64_t)(j / 2) * ldv;
        for (int c = 0; c < ldv; c += 32) {
            __mmask32 in = dv - c >= 32 ? (__mmask32)0xffffffffu : dv > c ? ((__mmask32)1 << (dv - c)) - 1 : 0;
            __m512i ra = _mm512_maskz_loadu_epi16(in, a + c);
            __m512i rb = j + 1 < nk ? _mm512_maskz_loadu_epi16(in, b + c) : _mm512_setzero_si512();
            _mm512_store_si512(out + c, _mm512_permutex2var_epi16(ra, low, rb));
            if (c + 16 < ldv)
                _mm512_store_si512(out + c + 16, _mm512_permutex2var_epi16(ra, high, rb));
        }
    }
}

/* A block of ROWS_PER_BLOCK query rows x nv output vectors of O: O = alpha O + P V. F32
 * walks the nk value rows; BF16 walks pairs of them (packed, rows vs apart) with pairs of
 * probabilities. tail masks the last output vector's loads of F32 values. A block with fewer
 * query rows repeats its last row in the spare accumulators and stores only its own. */
INLINE void accumulate_block(const void *p_, int br, const void *v_, int64_t vs, int nk, const float *alpha,
                             float *o, int ldo, int rows, __mmask16 tail, const int nv, const bool bf16)
{
    __m512 acc[ROWS_PER_BLOCK][CVECS_PER_BLOCK];
    int row[ROWS_PER_BLOCK];
#pragma GCC unroll 8
    for (int r = 0; r < ROWS_PER_BLOCK; r++) {
        row[r] = r < rows ? r : rows - 1;
        __m512 a = _mm512_set1_ps(alpha[row[r]]);
#pragma GCC unroll 4
        for (int c = 0; c < nv; c++)
            acc[r][c] = _mm512_mul_ps(a, _mm512_load_ps(o + (int64_t)row[r] * ldo + 16 * c));
    }
    if (bf16) {
        const uint32_t *p = p_, *v = v_;
        for (int j = 0; j < (nk + 1) / 2; j++) {
            __m512bh vv[CVECS_PER_BLOCK];
#pragma GCC unroll 4
            for (int c = 0; c < nv; c++)
                vv[c] = (__m512bh)_mm512_load_si512(v + j * vs + 16 * c);
            const uint32_t *pj = p + (int64_t)j * br;
#pragma GCC unroll 8
            for (int r = 0; r < ROWS_PER_BLOCK; r++) {
                __m512bh pb = (__m512bh)_mm512_set1_epi32((int)pj[row[r]]);
#pragma GCC unroll 4
                for (int c = 0; c < nv; c++)
                    acc[r][c] = _mm512_dpbf16_ps(acc[r][c], vv[c], pb);
            }
        }
    } else {
        const float *p = p_, *v = v_;
        for (int j = 0; j < nk; j++) {
            __m512 vv[CVECS_PER_BLOCK];
#pragma GCC unroll 4
            for (int c = 0; c < nv; c++)
                vv[c] = _mm512_maskz_loadu_ps(c == nv - 1 ? tail : (__mmask16)0xffff, v + j * vs + 16 * c);
            const float *pj = p + (int64_t)j * br;
#pragma GCC unroll 8
            for (int r = 0; r < ROWS_PER_BLOCK; r++) {
                __m512 pb = _mm512_set1_ps(pj[row[r]]);
#pragma GCC unroll 4
                for (int c = 0; c < nv; c++)
                    acc[r][c] = _mm512_fmadd_ps(pb, vv[c], acc[r][c]);
            }
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < ROWS_PER_BLOCK; r++)
#pragma GCC unroll 4
        for (int c = 0; c < nv; c++)
            if (r < rows)
                _mm512_store_ps(o + (int64_t)r * ldo + 16 * c, acc[r][c]);
}

/* All br rows of O over the output columns: chunks of CVECS_PER_BLOCK vectors, the last one
 * narrower. */
INLINE void accumulate_all(const void *p, int br, const void *v, int64_t vs, int nk, int dv, const float *alpha,
                           float *o, int ldo, const bool bf16)
{
    for (int c0 = 0; c0 < dv; c0 += 16 * CVECS_PER_BLOCK) {
        const char *vc = (const char *)v + (size_t)c0 * 4; /* F32 values or 32-bit pairs */
        int left = dv - c0, vecs = (left + 15) / 16;
        __mmask16 tail = vecs > CVECS_PER_BLOCK ? (__mmask16)0xffff : lane_mask(left - (vecs - 1) * 16);
        for (int i = 0; i < br; i += ROWS_PER_BLOCK) {
            const uint32_t *pi = (const uint32_t *)p + i; /* F32 or pairs: 32-bit lanes either way */
            int rows = br - i < ROWS_PER_BLOCK ? br - i : ROWS_PER_BLOCK;
            float *oi = o + (int64_t)i * ldo + c0;
            switch (vecs) {
            case 1: accumulate_block(pi, br, vc, vs, nk, alpha + i, oi, ldo, rows, tail, 1, bf16); break;
            case 2: accumulate_block(pi, br, vc, vs, nk, alpha + i, oi, ldo, rows, tail, 2, bf16); break;
            case 3: accumulate_block(pi, br, vc, vs, nk, alpha + i, oi, ldo, rows, tail, 3, bf16); break;
            default: accumulate_block(pi, br, vc, vs, nk, alpha + i, oi, ldo, rows, tail, 4, bf16); break;
            }
        }
    }
}

static void accumulate_f32(const void *p, int br, const void *v, int64_t vs, int nk, int dv, const float *alpha,
                           float *o, int ldo)
{
    accumulate_all(p, br, v, vs, nk, dv, alpha, o, ldo, false);
}

static void accumulate_bf16(const void *p, int br, const void *v, int64_t vs, int nk, int dv, const float *alpha,
                            float *o, int ldo)
{
    accumulate_all(p, br, v, vs, nk, dv, alpha, o, ldo, true);
}

const lr_attn_kernel lr_attn_kernel_avx512 = {
    .name = "avx512",
    .block_q = 128,
    .block_k = 128,
    .bf16 = false,
    .scores = scores_f32,
    .mask = mask_tile,
    .softmax = softmax_f32,
    .accumulate = accumulate_f32,
};

const lr_attn_kernel lr_attn_kernel_avx512_bf16 = {
    .name = "avx512-bf16",
    .block_q = 64,
    .block_k = 128,
    .bf16 = true,
    .scores = scores_bf16,
    .mask = mask_tile,
    .softmax = softmax_bf16,
    .pack_v = pack_v_bf16,
    .accumulate = accumulate_bf16,
};
