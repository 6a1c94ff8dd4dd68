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

/* The plain triple loop every fast path is tested against (double accumulation). */
void lr_sgemm_ref(lr_trans ta, lr_trans tb, int64_t M, int64_t N, int64_t K, float alpha,
                  const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                  int64_t ldc);

#ifdef __cplusplus
}
#endif
#endif
