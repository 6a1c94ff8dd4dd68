/* What the trained forecasting models share: linear layers over batches of windows and the
 * row-wise split of work.
 *
 * Every layer works on a batch of B windows, [B][L][...] (time-major within a window), so a
 * linear layer is one lr_sgemm with B * L rows; an element of its result depends only on its
 * row, never on M (gemm.h), so a window's forecast is the same in any batch. Row-wise work is
 * split into tasks of TS_ROWS_PER_TASK rows, a count that depends only on the sizes, so results
 * never depend on the thread count. */
#ifndef TS_LAYERS_H
#define TS_LAYERS_H

#include <stddef.h>
#include <stdint.h>

#include "longrange/core.h"
#include "longrange/gemm.h"

enum { TS_ROWS_PER_TASK = 64 };

/* The number of tasks for rows rows. */
size_t ts_row_tasks(int64_t rows);

/* y [rows][out] = x [rows][in] W^T (+ b, when b is not NULL), W [out][in]; beta 1 adds to y
 * (y = (y + x W^T) + b, the bias added last, as the GEMM finishes each block). */
lr_status ts_linear(lr_ctx *ctx, int64_t rows, int64_t in, int64_t out, const float *x,
                    const float *w, const float *b, float beta, float *y);

/* The FFN's activations; GELU is lr_gelu (longrange/activation.h). */
typedef enum { TS_ACT_RELU, TS_ACT_GELU } ts_act;

/* y [rows][out] = act(x [rows][in] W^T + b) (b may be NULL), the bias and activation applied
 * to each block of the product as the GEMM finishes it. */
lr_status ts_linear_act(lr_ctx *ctx, int64_t rows, int64_t in, int64_t out, const float *x, const float *w,
                        const float *b, ts_act act, float *y);

/* LayerNorm of one row of d values in place: (x - mean) / sqrt(var + 1e-5) * w + b, biased
 * variance, the statistics in double. */
void ts_layernorm_row(float *x, int64_t d, const float *w, const float *b);

#endif
