/* Portable attention tile kernels: plain loops over the layouts of attention_internal.h,
 * with libm's exp2f. The inner loops run along queries, so compilers can vectorise them
 * for whatever baseline they target. */
#include <math.h>

#include "attention_internal.h"

static void scores_ref(const void *qt_, int br, const void *k_, int64_t k_stride, int nk, int d,
                       float *s, float *colmax)
{
    const float *qt = qt_, *k = k_;
    for (int i = 0; i < br; i++)
        colmax[i] = -INFINITY;
    for (int j = 0; j < nk; j++) {
        float *row = s + (int64_t)j * br;
        const float *key = k + j * k_stride;
        for (int i = 0; i < br; i++)
            row[i] = 0.0f;
        for (int x = 0; x < d; x++) {
            const float *q_x = qt + (int64_t)x * br;
            for (int i = 0; i < br; i++)
                row[i] += q_x[i] * key[x];
        }
        for (int i = 0; i < br; i++)
            colmax[i] = fmaxf(colmax[i], row[i]);
    }
}

static void mask_ref(float *s, int br, int nk, const int32_t *lo, const int32_t *hi, float *colmax)
{
    for (int i = 0; i < br; i++)
        colmax[i] = -INFINITY;
    for (int j = 0; j < nk; j++) {
        float *row = s + (int64_t)j * br;
        for (int i = 0; i < br; i++) {
            if (i < lo[j] || i >= hi[j])
                row[i] = -INFINITY;
            colmax[i] = fmaxf(colmax[i], row[i]);
        }
    }
}

/* The subtrahend of the exponents: a query that has only seen -inf subtracts 0, so that its
 * exponents stay -inf and give exact zeros instead of NaN. */
static float finite_max(float m) { return m == -INFINITY ? 0.0f : m; }

static void softmax_ref(float *s, void *p, int br, int nk, float c, const float *colmax,
                        float *m, float *l, float *alpha)
{
    for (int i = 0; i < br; i++) {
        float m_new = fmaxf(m[i], colmax[i] * c);
        alpha[i] = exp2f(m[i] - finite_max(m_new));
        m[i] = m_new;
        l[i] *= alpha[i];
    }
    for (int j = 0; j < nk; j++) {
        float *row = s + (int64_t)j * br;
        for (int i = 0; i < br; i++) {
            /* the product in double is exact, as in an FMA: logits of 1e4 keep their digits */
            row[i] = exp2f((float)((double)row[i] * c - finite_max(m[i])));
            l[i] += row[i];
        }
    }
}

static void accumulate_ref(const void *p_, int br, const void *v_, int64_t v_stride, int nk,
                           int dv, const float *alpha, float *o, int ldo)
{
    const float *p = p_, *v = v_;
    for (int i = 0; i < br; i++) {
        float *out = o + (int64_t)i * ldo;
        for (int c = 0; c < dv; c++)
            out[c] *= alpha[i];
        for (int j = 0; j < nk; j++) {
            float pj = p[(int64_t)j * br + i];
            const float *value = v + j * v_stride;
            for (int c = 0; c < dv; c++)
                out[c] += pj * value[c];
        }
    }
}

const lr_attn_kernel lr_attn_kernel_ref = {
    .name = "ref",
    .block_q = 32,
    .block_k = 32,
    .bf16 = false,
    .scores = scores_ref,
    .mask = mask_ref,
    .softmax = softmax_ref,
    .accumulate = accumulate_ref,
};
