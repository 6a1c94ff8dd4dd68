/* The CUDA backend (a build with make CUDA=1): the same calls on a CUDA context agree with
 * the CPU reference. A CPU-only build has nothing here: test_core checks that it refuses a
 * CUDA context. */
#include <stdlib.h>

#include "check.h"
#include "longrange/gemm.h"

#ifdef LR_CUDA
static lr_ctx *ctx;

static void quiet(lr_log_level level, const char *msg, void *user) { (void)level, (void)msg, (void)user; }

static void fill(float *x, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = (float)(seed >> 8) / (float)(1u << 24) * 2.0f - 1.0f;
    }
}

static void test_sgemm_matches_reference(void)
{
    const int64_t shapes[][3] = {{1, 1, 1}, {3, 17, 5}, {64, 48, 200}, {257, 129, 1000}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        for (int ta = 0; ta < 2; ta++) {
            for (int tb = 0; tb < 2; tb++) {
                int64_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
                int64_t lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldc = N + 2;
                float *A = malloc(sizeof(float) * (size_t)((ta ? K : M) * lda));
                float *B = malloc(sizeof(float) * (size_t)((tb ? N : K) * ldb));
                float *C = malloc(sizeof(float) * (size_t)(M * ldc));
                float *R = malloc(sizeof(float) * (size_t)(M * ldc));
                fill(A, (size_t)((ta ? K : M) * lda), 1);
                fill(B, (size_t)((tb ? N : K) * ldb), 2);
                fill(C, (size_t)(M * ldc), 3);
                memcpy(R, C, sizeof(float) * (size_t)(M * ldc));
                CHECK(lr_sgemm(ctx, ta, tb, M, N, K, 0.5f, A, lda, B, ldb, 0.25f, C, ldc) == LR_OK);
                lr_sgemm_ref(ta, tb, M, N, K, 0.5f, A, lda, B, ldb, 0.25f, R, ldc);
                double worst = 0;
                for (int64_t i = 0; i < M; i++)
                    for (int64_t j = 0; j < N; j++)
                        worst = fmax(worst, fabs(C[i * ldc + j] - R[i * ldc + j]));
                CHECKF(worst <= 1e-5 * sqrt((double)K) + 1e-6, "%lldx%lldx%lld ta %d tb %d: error %g",
                       (long long)M, (long long)N, (long long)K, ta, tb, worst);
                free(A), free(B), free(C), free(R);
            }
        }
    }
}
#endif

int main(void)
{
#ifdef LR_CUDA
    lr_ctx_params p = lr_ctx_default_params();
    p.device = LR_DEVICE_CUDA;
    p.log = quiet; /* a machine without a device is expected here */
    lr_status s = lr_ctx_create(&ctx, &p);
    if (s == LR_ERR_UNSUPPORTED) {
        printf("note: test_cuda: no usable CUDA device; CUDA tests skipped\n");
        return 0;
    }
    RUN(test_sgemm_matches_reference);
    lr_ctx_destroy(ctx);
#endif
    return CHECK_DONE();
}
