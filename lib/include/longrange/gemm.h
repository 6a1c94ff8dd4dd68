/* Single-precision GEMM, row-major: C = alpha * op(A) * op(B) + beta * C.
 * op(A) is M x K, op(B) is K x N, C is M x N; lda/ldb/ldc are row strides in elements.
 * beta == 0 means C is only written (its old contents, NaN included, are ignored). */
#ifndef LONGRANGE_GEMM_H
#define LONGRANGE_GEMM_H

#include "longrange/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { LR_NO_TRANS = 0, LR_TRANS = 1 } lr_trans;

/* Packed, blocked and threaded; AVX2 or AVX-512 micro-kernels chosen by lr_ctx_cpu(ctx).
 * The result is bit-identical for any thread count: at a given CPU level an element of C
 * depends only on its row of op(A), its column of op(B), K, alpha and beta (and on its old
 * value), never on M, N or how the work is split. Uses every thread's scratch
 * (lr_thread_scratch), so it must not be called from inside an lr_parallel_for task.
 * LR_ERR_ARG for negative sizes, leading dimensions shorter than a row, or missing
 * matrices; LR_ERR_NOMEM if the scratch cannot grow. */
lr_status lr_sgemm(lr_ctx *ctx, lr_trans ta, lr_trans tb, int64_t M, int64_t N, int64_t K,
                   float alpha, const float *A, int64_t lda, const float *B, int64_t ldb,
                   float beta, float *C, int64_t ldc);

/* Work on finished blocks of C while they are still in cache (a bias, an activation):
 * fn(user, c, ldc, row0, col0, rows, cols) gets the block of rows [row0, row0 + rows) and
 * columns [col0, col0 + cols) of C at c (row stride ldc) once its final values are stored.
 * Blocks never overlap and cover C once; they run on any thread, in any order, so fn must
 * only touch its block (and read what it shares). Blocks are a few rows by a few hundred
 * columns; their split depends only on the shape, so an element-wise fn keeps results
 * bit-identical for any thread count. */
typedef void (*lr_gemm_epilogue_fn)(void *user, float *c, int64_t ldc, int64_t row0, int64_t col0,
                                    int64_t rows, int64_t cols);
typedef struct {
    lr_gemm_epilogue_fn fn;
    void *user;
} lr_gemm_epilogue;

/* lr_sgemm, then ep->fn on every block of C (ep may be NULL: plain lr_sgemm). */
lr_status lr_sgemm_ep(lr_ctx *ctx, lr_trans ta, lr_trans tb, int64_t M, int64_t N, int64_t K,
                      float alpha, const float *A, int64_t lda, const float *B, int64_t ldb,
                      float beta, float *C, int64_t ldc, const lr_gemm_epilogue *ep);

/* The plain triple loop every fast path is tested against (double accumulation). */
void lr_sgemm_ref(lr_trans ta, lr_trans tb, int64_t M, int64_t N, int64_t K, float alpha,
                  const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                  int64_t ldc);

#ifdef __cplusplus
}
#endif
#endif
