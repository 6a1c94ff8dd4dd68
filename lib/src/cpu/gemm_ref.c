/* The scalar GEMM: the triple-loop reference every fast path is tested against, and the
 * portable micro-kernel and packer the blocked driver uses at LR_CPU_REF. */
#include "gemm_internal.h"
#include "longrange/gemm.h"

void lr_sgemm_ref(lr_trans ta, lr_trans tb, int64_t M, int64_t N, int64_t K, float alpha,
                  const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                  int64_t ldc)
{
    for (int64_t i = 0; i < M; i++) {
        for (int64_t j = 0; j < N; j++) {
            double sum = 0;
            /* BLAS semantics: with alpha == 0 (or K == 0) A and B are not read. */
            if (alpha != 0) {
                for (int64_t k = 0; k < K; k++) {
                    double a = ta == LR_NO_TRANS ? A[i * lda + k] : A[k * lda + i];
                    double b = tb == LR_NO_TRANS ? B[k * ldb + j] : B[j * ldb + k];
                    sum += a * b;
                }
            }
            float *c = &C[i * ldc + j];
            double scaled = alpha != 0 ? (double)alpha * sum : 0.0;
            *c = (float)(beta == 0 ? scaled : scaled + (double)beta * *c);
        }
    }
}

void lr_gemm_pack_generic(const float *src, int64_t stride_w, int64_t stride_k, int64_t w,
                          int64_t k, int width, float *dst)
{
    for (int64_t x0 = 0; x0 < w; x0 += width) {
        int64_t valid = w - x0 < width ? w - x0 : width;
        for (int64_t kk = 0; kk < k; kk++) {
            const float *s = src + x0 * stride_w + kk * stride_k;
            int64_t x = 0;
            for (; x < valid; x++)
                dst[x] = s[x * stride_w];
            for (; x < width; x++)
                dst[x] = 0;
            dst += width;
        }
    }
}

enum { REF_MR = 4, REF_NR = 8 };

static void micro_ref(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int m,
                      int n, float alpha, float beta)
{
    float acc[REF_MR][REF_NR] = {{0}};
    for (int64_t k = 0; k < kc; k++, a += REF_MR, b += REF_NR)
        for (int i = 0; i < REF_MR; i++)
            for (int j = 0; j < REF_NR; j++)
                acc[i][j] += a[i] * b[j];
    for (int i = 0; i < m; i++) {
        float *row = c + i * ldc;
        for (int j = 0; j < n; j++)
            row[j] = beta == 0 ? alpha * acc[i][j] : alpha * acc[i][j] + beta * row[j];
    }
}

static void pack_a_ref(const float *src, int64_t stride_w, int64_t stride_k, int64_t w, int64_t k,
                       float *dst)
{
    lr_gemm_pack_generic(src, stride_w, stride_k, w, k, REF_MR, dst);
}

static void pack_b_ref(const float *src, int64_t stride_w, int64_t stride_k, int64_t w, int64_t k,
                       float *dst)
{
    lr_gemm_pack_generic(src, stride_w, stride_k, w, k, REF_NR, dst);
}

const lr_gemm_kernel lr_gemm_kernel_ref = {
    .mr = REF_MR, .nr = REF_NR, .kc = 256, .mc = 256, .nc = 256,
    .micro = micro_ref, .pack_a = pack_a_ref, .pack_b = pack_b_ref,
};
