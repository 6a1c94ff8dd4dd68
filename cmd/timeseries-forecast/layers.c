/* Linear layers and row tasks shared by the trained models (see layers.h). */
#include "layers.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "longrange/parallel.h"

size_t ts_row_tasks(int64_t rows)
{
    return (size_t)((rows + TS_ROWS_PER_TASK - 1) / TS_ROWS_PER_TASK);
}

/* The bias, added to each block of the product as the GEMM finishes it. */
LR_VECTORIZE static void add_bias(void *user, float *c, int64_t ldc, int64_t row0, int64_t col0, int64_t rows,
                                  int64_t cols)
{
    const float *b = (const float *)user + col0;
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++)
            c[i * ldc + j] += b[j];
}

lr_status ts_linear(lr_ctx *ctx, int64_t rows, int64_t in, int64_t out, const float *x,
                    const float *w, const float *b, float beta, float *y)
{
    lr_gemm_epilogue bias = {add_bias, (void *)b};
    return lr_sgemm_ep(ctx, LR_NO_TRANS, LR_TRANS, rows, out, in, 1.0f, x, in, w, in, beta, y, out, b ? &bias : NULL);
}

/* GELU, 0.5 x (1 + erf(x / sqrt 2)), with erf in float as x P(x^2) / Q(x^2), |x| clamped to
 * 3.92 (where erf is 1 in float), coefficients fitted here (rational least squares with
 * Loeb's reweighting) to erf on [0, 3.92]: at most 4e-7 from the true erf in float
 * arithmetic, as close as PyTorch's own vectorised erf; NaN stays NaN. Written with GCC/Clang
 * vector extensions, so it runs 4, 8 or 16 lanes at a time; every lane does the same IEEE
 * operations one statement at a time (nothing to contract into an FMA), so all widths give
 * the same bits. */
#define GELU_ROW(NAME, ATTR, VF, VI)                                                          \
    ATTR static int64_t NAME(float *r, int64_t n, bool tail)                                  \
    {                                                                                         \
        const int64_t lanes = (int64_t)(sizeof(VF) / sizeof(float));                          \
        int64_t i = 0;                                                                        \
        for (; i < n && (i + lanes <= n || tail); i += lanes) {                               \
            const size_t bytes = (size_t)(n - i < lanes ? n - i : lanes) * sizeof(float);     \
            VF x, c, u, p, q, e, zero = {0}, bound = zero + 3.92f, one = zero + 1.0f;         \
            VI mask;                                                                          \
            x = zero;                                                                         \
            if (bytes == sizeof x) /* a constant size: one vector load, not a string copy */ \
                memcpy(&x, r + i, sizeof x);                                                  \
            else                                                                              \
                memcpy(&x, r + i, bytes);                                                     \
            c = x * 0.70710678118654752f;                                                     \
            mask = c > bound;                                                                 \
            c = (VF)(((VI)bound & mask) | ((VI)c & ~mask));                                   \
            mask = c < -bound;                                                                \
            c = (VF)(((VI)-bound & mask) | ((VI)c & ~mask));                                  \
            u = c * c;                                                                        \
            p = u * -1.3258706133001397e-08f;                                                 \
            p = p + 4.704257662524469e-06f;                                                   \
            p = p * u;                                                                        \
            p = p + 0.00037984305527061224f;                                                  \
            p = p * u;                                                                        \
            p = p + 0.0038289434742182493f;                                                   \
            p = p * u;                                                                        \
            p = p + 0.054260529577732086f;                                                    \
            p = p * u;                                                                        \
            p = p + 0.18465091288089752f;                                                     \
            p = p * u;                                                                        \
            p = p + 1.128379225730896f;                                                       \
            q = u * 6.329327879939228e-05f;                                                   \
            q = q + 0.00130363495554775f;                                                     \
            q = q * u;                                                                        \
            q = q + 0.01542214211076498f;                                                     \
            q = q * u;                                                                        \
            q = q + 0.11374494433403015f;                                                     \
            q = q * u;                                                                        \
            q = q + 0.4969761371612549f;                                                      \
            q = q * u;                                                                        \
            q = q + 1.0f;                                                                     \
            e = c * p;                                                                        \
            e = e / q;                                                                        \
            mask = e > one;                                                                   \
            e = (VF)(((VI)one & mask) | ((VI)e & ~mask));                                     \
            mask = e < -one;                                                                  \
            e = (VF)(((VI)-one & mask) | ((VI)e & ~mask));                                    \
            e = e + 1.0f;                                                                     \
            x = x * 0.5f;                                                                     \
            x = x * e;                                                                        \
            if (bytes == sizeof x)                                                            \
                memcpy(r + i, &x, sizeof x);                                                  \
            else                                                                              \
                memcpy(r + i, &x, bytes);                                                     \
        }                                                                                     \
        return i < n ? i : n;                                                                 \
    }

typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));
GELU_ROW(gelu_row4, , v4f, v4i)
#if defined(__GNUC__) && defined(__x86_64__)
#define GELU_WIDE 1
typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));
typedef float v16f __attribute__((vector_size(64)));
typedef int32_t v16i __attribute__((vector_size(64)));
GELU_ROW(gelu_row8, __attribute__((target("avx2"))), v8f, v8i)
GELU_ROW(gelu_row16, __attribute__((target("avx512f"))), v16f, v16i)
#endif

typedef struct {
    ts_act act;
    lr_cpu_level cpu;
    const float *b;
} act_epilogue;

/* The bias, then the activation, on a block of the product as the GEMM finishes it (still in
 * cache). The widest lanes the context's CPU level allows take each row of GELU, four-lane
 * steps the rest. */
LR_VECTORIZE static void add_bias_act(void *user, float *c, int64_t ldc, int64_t row0, int64_t col0, int64_t rows,
                                      int64_t cols)
{
    const act_epilogue *e = user;
    if (e->b)
        add_bias((void *)e->b, c, ldc, row0, col0, rows, cols);
    for (int64_t i = 0; i < rows; i++) {
        float *r = c + i * ldc;
        if (e->act == TS_ACT_RELU) {
            for (int64_t j = 0; j < cols; j++)
                r[j] = r[j] > 0 ? r[j] : 0.0f;
            continue;
        }
        int64_t done = 0;
#ifdef GELU_WIDE
        if (e->cpu == LR_CPU_AVX512)
            done = gelu_row16(r, cols, false);
        else if (e->cpu == LR_CPU_AVX2)
            done = gelu_row8(r, cols, false);
#endif
        gelu_row4(r + done, cols - done, true);
    }
}

lr_status ts_linear_act(lr_ctx *ctx, int64_t rows, int64_t in, int64_t out, const float *x, const float *w,
                        const float *b, ts_act act, float *y)
{
    act_epilogue e = {act, lr_ctx_cpu(ctx), b};
    lr_gemm_epilogue ep = {add_bias_act, &e};
    return lr_sgemm_ep(ctx, LR_NO_TRANS, LR_TRANS, rows, out, in, 1.0f, x, in, w, in, 0.0f, y, out, &ep);
}

LR_VECTORIZE void ts_layernorm_row(float *r, int64_t d, const float *w, const float *b)
{
    enum { LANES = 8 }; /* the sums in LANES interleaved partial sums, which vectorise */
    double part[LANES] = {0}, mean = 0, var = 0;
    int64_t c = 0;
    for (; c + LANES <= d; c += LANES)
        for (int l = 0; l < LANES; l++)
            part[l] += r[c + l];
    for (; c < d; c++)
        part[0] += r[c];
    for (int l = 0; l < LANES; l++)
        mean += part[l];
    mean /= (double)d;
    for (int l = 0; l < LANES; l++)
        part[l] = 0;
    for (c = 0; c + LANES <= d; c += LANES)
        for (int l = 0; l < LANES; l++)
            part[l] += (r[c + l] - mean) * (r[c + l] - mean);
    for (; c < d; c++)
        part[0] += (r[c] - mean) * (r[c] - mean);
    for (int l = 0; l < LANES; l++)
        var += part[l];
    double inv = 1.0 / sqrt(var / (double)d + 1e-5);
    for (c = 0; c < d; c++)
        r[c] = (float)((r[c] - mean) * inv * w[c] + b[c]);
}
