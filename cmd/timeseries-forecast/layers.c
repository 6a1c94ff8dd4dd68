/* Linear layers and row tasks shared by the trained models (see layers.h). */
#include "layers.h"

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
