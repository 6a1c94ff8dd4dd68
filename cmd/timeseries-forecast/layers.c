/* Linear layers and row tasks shared by the trained models (see layers.h). */
#include "layers.h"

#include "longrange/gemm.h"
#include "longrange/parallel.h"

size_t ts_row_tasks(int64_t rows)
{
    return (size_t)((rows + TS_ROWS_PER_TASK - 1) / TS_ROWS_PER_TASK);
}

typedef struct {
    int64_t rows, out;
    const float *b;
    float *y;
} bias_job;

static void bias_task(void *arg, size_t task, int thread)
{
    const bias_job *j = arg;
    const int64_t t0 = (int64_t)task * TS_ROWS_PER_TASK;
    const int64_t t1 = t0 + TS_ROWS_PER_TASK < j->rows ? t0 + TS_ROWS_PER_TASK : j->rows;
    for (int64_t t = t0; t < t1; t++)
        for (int64_t o = 0; o < j->out; o++)
            j->y[t * j->out + o] += j->b[o];
}

lr_status ts_linear(lr_ctx *ctx, int64_t rows, int64_t in, int64_t out, const float *x,
                    const float *w, const float *b, float beta, float *y)
{
    lr_status s = lr_sgemm(ctx, LR_NO_TRANS, LR_TRANS, rows, out, in, 1.0f, x, in, w, in, beta, y, out);
    if (s == LR_OK && b) {
        bias_job j = {rows, out, b, y};
        lr_parallel_for(ctx, ts_row_tasks(rows), bias_task, &j);
    }
    return s;
}
