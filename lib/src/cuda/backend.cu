// CUDA backend: device selection, a cuBLAS handle per context, and device paths of the ops.
// Ops keep host pointers in their API; the CUDA path stages operands through device buffers
// that grow as needed and are kept with the context.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <stdlib.h>

extern "C" {
#include "internal.h"
#include "longrange/gemm.h"
}

struct cuda_state {
    cublasHandle_t blas;
    float *buf;       // staging for A, B and C
    size_t buf_elems;
};

extern "C" lr_status lr_cuda_init(lr_ctx *ctx)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0)
        return lr_fail(ctx, LR_ERR_UNSUPPORTED, "no CUDA device: %s",
                       e != cudaSuccess ? cudaGetErrorString(e) : "none found");
    cuda_state *st = (cuda_state *)calloc(1, sizeof *st);
    if (!st)
        return lr_fail(ctx, LR_ERR_NOMEM, "out of memory");
    if (cublasCreate(&st->blas) != CUBLAS_STATUS_SUCCESS) {
        free(st);
        return lr_fail(ctx, LR_ERR_UNSUPPORTED, "cuBLAS initialisation failed");
    }
    // Exact FP32 (no TF32 shortcuts), so results compare with the CPU reference.
    cublasSetMathMode(st->blas, CUBLAS_PEDANTIC_MATH);
    ctx->cuda = st;
    return LR_OK;
}

extern "C" void lr_cuda_release(lr_ctx *ctx)
{
    cuda_state *st = (cuda_state *)ctx->cuda;
    if (!st)
        return;
    cudaFree(st->buf);
    cublasDestroy(st->blas);
    free(st);
    ctx->cuda = NULL;
}

static lr_status reserve(lr_ctx *ctx, cuda_state *st, size_t elems)
{
    if (elems <= st->buf_elems)
        return LR_OK;
    cudaFree(st->buf);
    st->buf = NULL;
    st->buf_elems = 0;
    cudaError_t e = cudaMalloc(&st->buf, elems * sizeof(float));
    if (e != cudaSuccess)
        return lr_fail(ctx, LR_ERR_NOMEM, "CUDA: cannot allocate %zu bytes: %s", elems * sizeof(float),
                       cudaGetErrorString(e));
    st->buf_elems = elems;
    return LR_OK;
}

// Copies a rows x cols row-major block with row stride ld into a packed device array.
static cudaError_t upload(float *dst, const float *src, int64_t rows, int64_t cols, int64_t ld)
{
    return cudaMemcpy2D(dst, (size_t)cols * sizeof(float), src, (size_t)ld * sizeof(float),
                        (size_t)cols * sizeof(float), (size_t)rows, cudaMemcpyHostToDevice);
}

// Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: call cuBLAS with the
// operands swapped and the same transpose flags.
extern "C" lr_status lr_cuda_sgemm(lr_ctx *ctx, lr_trans ta, lr_trans tb, int64_t M, int64_t N, int64_t K,
                                   float alpha, const float *A, int64_t lda, const float *B, int64_t ldb,
                                   float beta, float *C, int64_t ldc)
{
    cuda_state *st = (cuda_state *)ctx->cuda;
    if (M > INT32_MAX || N > INT32_MAX || K > INT32_MAX)
        return lr_fail(ctx, LR_ERR_UNSUPPORTED, "CUDA GEMM: dimensions beyond 2^31");
    size_t na = (size_t)M * K, nb = (size_t)K * N, nc = (size_t)M * N;
    lr_status s = reserve(ctx, st, na + nb + nc);
    if (s != LR_OK)
        return s;
    float *dA = st->buf, *dB = dA + na, *dC = dB + nb;
    int64_t arows = ta ? K : M, acols = ta ? M : K, brows = tb ? N : K, bcols = tb ? K : N;
    cudaError_t e = upload(dA, A, arows, acols, lda);
    if (e == cudaSuccess)
        e = upload(dB, B, brows, bcols, ldb);
    if (e == cudaSuccess && beta != 0.0f)
        e = upload(dC, C, M, N, ldc);
    if (e != cudaSuccess)
        return lr_fail(ctx, LR_ERR_IO, "CUDA copy failed: %s", cudaGetErrorString(e));
    cublasStatus_t bs = cublasSgemm(st->blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N,
                                    (int)N, (int)M, (int)K, &alpha, dB, (int)bcols, dA, (int)acols, &beta,
                                    dC, (int)N);
    if (bs != CUBLAS_STATUS_SUCCESS)
        return lr_fail(ctx, LR_ERR_INTERNAL, "cuBLAS sgemm failed (status %d)", (int)bs);
    e = cudaMemcpy2D(C, (size_t)ldc * sizeof(float), dC, (size_t)N * sizeof(float), (size_t)N * sizeof(float),
                     (size_t)M, cudaMemcpyDeviceToHost);
    if (e != cudaSuccess)
        return lr_fail(ctx, LR_ERR_IO, "CUDA copy failed: %s", cudaGetErrorString(e));
    return LR_OK;
}
