/* Linear layers and row tasks shared by the trained models (see layers.h). */
#include "layers.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "longrange/activation.h"
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


typedef struct {
    ts_act act;
    lr_cpu_level cpu;
    const float *b;
} act_epilogue;

/* The bias, then the activation, on a block of the product as the GEMM finishes it (still in
 * cache). */
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
        lr_gelu(e->cpu, r, cols);
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
