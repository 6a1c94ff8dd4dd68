/* What the library's own files share about the context; not part of the public API. */
#ifndef LR_INTERNAL_H
#define LR_INTERNAL_H

#include "longrange/core.h"
#include "longrange/tensor.h"

struct lr_pool;

struct lr_ctx {
    int n_threads;
    lr_device device;
    lr_cpu_level cpu;
    lr_log_fn log;
    void *log_user;
    lr_log_level log_level;
    char error[1024];
    struct lr_pool *pool;   /* NULL when n_threads == 1 */
    void **scratch;         /* one block per thread */
    size_t scratch_size;
    void *cuda;             /* backend state of a CUDA build */
};

lr_status lr_pool_create(lr_ctx *ctx);
void lr_pool_destroy(lr_ctx *ctx);

#ifdef LR_CUDA
#include "longrange/gemm.h"
lr_status lr_cuda_init(lr_ctx *ctx);
void lr_cuda_release(lr_ctx *ctx);
lr_status lr_cuda_sgemm(lr_ctx *ctx, lr_trans ta, lr_trans tb, int64_t M, int64_t N, int64_t K,
                        float alpha, const float *A, int64_t lda, const float *B, int64_t ldb,
                        float beta, float *C, int64_t ldc);
#endif

/* Checked size arithmetic: false on overflow. */
static inline int lr_mul_size(size_t a, size_t b, size_t *out) { return !__builtin_mul_overflow(a, b, out); }
static inline int lr_add_size(size_t a, size_t b, size_t *out) { return !__builtin_add_overflow(a, b, out); }

/* The checks every 4-D tensor argument of a kernel gets, with op and name in the message: present,
 * 4-D (layout names the dimensions), a valid shape, the last dimension contiguous, data when it
 * has elements, and dtype when dtype >= 0 (-1: the caller checks it). */
lr_status lr_check_tensor4(lr_ctx *ctx, const char *op, const char *name, const lr_tensor *t,
                           const char *layout, int dtype);

/* A scratch plan: returns the offset of the next `bytes` and moves *at past them, 64-aligned. */
static inline size_t lr_scratch_take(size_t *at, size_t bytes)
{
    size_t start = *at;
    *at += (bytes + 63) & ~(size_t)63;
    return start;
}

#endif
