/* lr_sgemm against lr_sgemm_ref at every CPU level this machine has: odd shapes, all four
 * transposes, alpha/beta (beta 0 over a NaN-filled C), padded leading dimensions, K = 0,
 * argument errors; bit-identical results for 1, 2, 3 and 7 threads, and for a block of C
 * computed on its own; the epilogue of lr_sgemm_ep sees every element once, after its final
 * value.
 *
 * Tolerance: |C - C_ref| <= 1e-5 * sqrt(K) * S + 1e-30 elementwise, where S is the same
 * product on absolute values (|alpha| |A| |B| + |beta| |C0|), the scale a float sum of K
 * rounded products can drift from its exact value by. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "kernel_test.h"
#include "longrange/core.h"
#include "longrange/gemm.h"

#define PAD_VALUE -12345.0f

/* A stored matrix of `rows` x `cols` with row stride `ld`; padding holds PAD_VALUE. */
typedef struct {
    float *data;
    int64_t rows, cols, ld;
} matrix;

/* One spare element after the matrix keeps empty matrices (K = 0) allocatable. */
static matrix matrix_new(int64_t rows, int64_t cols, int64_t pad)
{
    matrix m = {NULL, rows, cols, cols + pad};
    size_t n = (size_t)(rows * m.ld) + 1;
    m.data = malloc(n * sizeof *m.data);
    if (m.data) {
        for (int64_t i = 0; i < rows; i++)
            for (int64_t j = 0; j < m.ld; j++)
                m.data[i * m.ld + j] = j < cols ? random_float() : PAD_VALUE;
        m.data[n - 1] = PAD_VALUE;
    }
    return m;
}

static matrix matrix_abs(const matrix *m)
{
    matrix a = *m;
    size_t n = (size_t)(m->rows * m->ld) + 1;
    a.data = m->data ? malloc(n * sizeof *a.data) : NULL;
    if (a.data)
        for (size_t i = 0; i < n; i++)
            a.data[i] = fabsf(m->data[i]);
    return a;
}

typedef struct {
    int64_t M, N, K;
    lr_trans ta, tb;
    float alpha, beta;
    int64_t pad;         /* extra columns on every leading dimension */
    int nan_c;           /* fill C with NaN (only meaningful with beta == 0) */
} gemm_case;

/* The contexts of one thread count, one per CPU level the machine supports. */
typedef struct {
    lr_ctx *ctx[3];
    int n;
} level_ctxs;

static int level_ctxs_open(level_ctxs *l, int threads)
{
    static const lr_cpu_level levels[] = {LR_CPU_REF, LR_CPU_AVX2, LR_CPU_AVX512};
    l->n = 0;
    for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
        lr_ctx *ctx = make_ctx(threads, levels[i]);
        if (!ctx)
            return 0;
        if (lr_ctx_cpu(ctx) == levels[i])
            l->ctx[l->n++] = ctx;
        else
            lr_ctx_destroy(ctx);
    }
    return l->n > 0;
}

static void level_ctxs_close(level_ctxs *l)
{
    for (int i = 0; i < l->n; i++)
        lr_ctx_destroy(l->ctx[i]);
    l->n = 0;
}

/* Runs one case at every level in l against one reference result; returns the number of
 * mismatches reported (0 on success). */
static int check_case(const level_ctxs *l, const gemm_case *t)
{
    int64_t a_rows = t->ta == LR_NO_TRANS ? t->M : t->K, a_cols = t->ta == LR_NO_TRANS ? t->K : t->M;
    int64_t b_rows = t->tb == LR_NO_TRANS ? t->K : t->N, b_cols = t->tb == LR_NO_TRANS ? t->N : t->K;
    matrix A = matrix_new(a_rows, a_cols, t->pad), B = matrix_new(b_rows, b_cols, t->pad);
    matrix C0 = matrix_new(t->M, t->N, t->pad);
    size_t c_floats = (size_t)(C0.rows * C0.ld) + 1;
    if (t->nan_c && C0.data)
        for (int64_t i = 0; i < t->M; i++)
            for (int64_t j = 0; j < t->N; j++)
                C0.data[i * C0.ld + j] = NAN;
    matrix A_abs = matrix_abs(&A), B_abs = matrix_abs(&B), S = matrix_abs(&C0);
    float *C_ref = malloc(c_floats * sizeof *C_ref), *C = malloc(c_floats * sizeof *C);
    int bad = 0;
    if (!A.data || !B.data || !C0.data || !A_abs.data || !B_abs.data || !S.data || !C_ref || !C) {
        printf("  out of memory\n");
        bad = 1;
        goto done;
    }
    memcpy(C_ref, C0.data, c_floats * sizeof *C);
    lr_sgemm_ref(t->ta, t->tb, t->M, t->N, t->K, t->alpha, A.data, A.ld, B.data, B.ld, t->beta,
                 C_ref, C0.ld);
    lr_sgemm_ref(t->ta, t->tb, t->M, t->N, t->K, fabsf(t->alpha), A_abs.data, A_abs.ld, B_abs.data,
                 B_abs.ld, fabsf(t->beta), S.data, S.ld);
    double tol = 1e-5 * sqrt((double)(t->K > 1 ? t->K : 1));
    for (int li = 0; li < l->n; li++) {
        lr_ctx *ctx = l->ctx[li];
        memcpy(C, C0.data, c_floats * sizeof *C);
        lr_status s = lr_sgemm(ctx, t->ta, t->tb, t->M, t->N, t->K, t->alpha, A.data, A.ld, B.data,
                               B.ld, t->beta, C, C0.ld);
        if (s != LR_OK) {
            printf("  lr_sgemm failed: %s\n", lr_ctx_last_error(ctx));
            bad++;
            continue;
        }
        for (int64_t i = 0; i < t->M && bad < 3; i++) {
            for (int64_t j = 0; j < C0.ld && bad < 3; j++) {
                float got = C[i * C0.ld + j], want = C_ref[i * C0.ld + j];
                int ok = j < t->N ? fabs((double)got - want) <= tol * S.data[i * C0.ld + j] + 1e-30
                                  : got == PAD_VALUE; /* the padding of C is never written */
                if (!ok) {
                    printf("  %s: M %lld N %lld K %lld %c%c alpha %g beta %g pad %lld: C[%lld][%lld] = %.9g, want %.9g\n",
                           lr_cpu_level_name(lr_ctx_cpu(ctx)), (long long)t->M, (long long)t->N,
                           (long long)t->K, t->ta ? 'T' : 'N', t->tb ? 'T' : 'N', t->alpha, t->beta,
                           (long long)t->pad, (long long)i, (long long)j, got, want);
                    bad++;
                }
            }
        }
    }
done:
    free(A.data);
    free(B.data);
    free(C0.data);
    free(A_abs.data);
    free(B_abs.data);
    free(S.data);
    free(C_ref);
    free(C);
    return bad;
}

static void test_small_shapes_all_transposes(void)
{
    static const int64_t dims[] = {1, 3, 17};
    level_ctxs l;
    REQUIRE(level_ctxs_open(&l, 1));
    for (int tr = 0; tr < 4; tr++)
        for (int mi = 0; mi < 3; mi++)
            for (int ni = 0; ni < 3; ni++)
                for (int ki = 0; ki < 3; ki++) {
                    gemm_case t = {dims[mi], dims[ni], dims[ki], tr & 1, tr >> 1, 1.0f, 0.0f, 0, 0};
                    CHECK(check_case(&l, &t) == 0);
                }
    level_ctxs_close(&l);
}

static void test_large_and_mixed_shapes(void)
{
    /* 1000 crosses every block size (kc, the B chunks, the micro-tiles) with ragged edges;
     * N = 9000 needs several shared B blocks, the last one narrower. */
    static const int64_t shapes[][3] = {
        {1000, 17, 3}, {3, 1000, 17}, {17, 3, 1000}, {1000, 1000, 17}, {17, 1000, 1000},
        {1000, 17, 1000}, {1, 1000, 1000}, {1000, 1, 1000}, {301, 259, 777}, {20, 9000, 50},
    };
    level_ctxs l;
    REQUIRE(level_ctxs_open(&l, 2));
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int tr = 0; tr < 4; tr++) {
            gemm_case t = {shapes[s][0], shapes[s][1], shapes[s][2], tr & 1, tr >> 1, 1.0f, 0.0f, 0, 0};
            CHECK(check_case(&l, &t) == 0);
        }
    level_ctxs_close(&l);
}

static void test_alpha_beta_and_strides(void)
{
    static const float alphas[] = {1.0f, -0.5f, 2.0f};
    static const float betas[] = {0.0f, 1.0f, -1.5f};
    level_ctxs l;
    REQUIRE(level_ctxs_open(&l, 2));
    for (int tr = 0; tr < 4; tr++)
        for (int a = 0; a < 3; a++)
            for (int b = 0; b < 3; b++) {
                gemm_case t = {37, 50, 400, tr & 1, tr >> 1, alphas[a], betas[b], 5, 0};
                CHECK(check_case(&l, &t) == 0);
            }
    level_ctxs_close(&l);
}

static void test_beta_zero_ignores_nan(void)
{
    level_ctxs l;
    REQUIRE(level_ctxs_open(&l, 1));
    for (int tr = 0; tr < 4; tr++) {
        gemm_case t = {33, 70, 500, tr & 1, tr >> 1, 0.75f, 0.0f, 3, 1};
        CHECK(check_case(&l, &t) == 0);
    }
    level_ctxs_close(&l);
}

static void test_k_zero_and_alpha_zero(void)
{
    level_ctxs l;
    REQUIRE(level_ctxs_open(&l, 1));
    gemm_case scale = {20, 30, 0, LR_NO_TRANS, LR_NO_TRANS, 1.0f, -2.0f, 2, 0};
    CHECK(check_case(&l, &scale) == 0);
    gemm_case clear = {20, 30, 0, LR_TRANS, LR_TRANS, 1.0f, 0.0f, 0, 1};
    CHECK(check_case(&l, &clear) == 0);
    for (int li = 0; li < l.n; li++) {
        /* alpha == 0: A and B are not read, so NaN there does not reach C. */
        float A[6] = {NAN, NAN, NAN, NAN, NAN, NAN}, B[6] = {NAN, NAN, NAN, NAN, NAN, NAN};
        float C[4] = {1, 2, 3, 4};
        CHECK(lr_sgemm(l.ctx[li], LR_NO_TRANS, LR_NO_TRANS, 2, 2, 3, 0.0f, A, 3, B, 2, 0.5f, C, 2) == LR_OK);
        CHECK(C[0] == 0.5f && C[1] == 1.0f && C[2] == 1.5f && C[3] == 2.0f);
        /* M or N == 0: nothing to do, C may be NULL. */
        CHECK(lr_sgemm(l.ctx[li], LR_NO_TRANS, LR_NO_TRANS, 0, 5, 5, 1.0f, A, 5, B, 5, 0.0f, NULL, 5) == LR_OK);
    }
    level_ctxs_close(&l);
}

static void test_argument_errors(void)
{
    lr_ctx *ctx = make_ctx(1, LR_CPU_AVX512);
    REQUIRE(ctx);
    float A[4] = {0}, B[4] = {0}, C[4] = {0};
    CHECK(lr_sgemm(ctx, LR_NO_TRANS, LR_NO_TRANS, -1, 2, 2, 1.0f, A, 2, B, 2, 0.0f, C, 2) == LR_ERR_ARG);
    CHECK(lr_sgemm(ctx, LR_NO_TRANS, LR_NO_TRANS, 2, 2, 2, 1.0f, A, 1, B, 2, 0.0f, C, 2) == LR_ERR_ARG);
    CHECK(lr_sgemm(ctx, LR_NO_TRANS, LR_TRANS, 2, 2, 2, 1.0f, A, 2, B, 1, 0.0f, C, 2) == LR_ERR_ARG);
    CHECK(lr_sgemm(ctx, LR_NO_TRANS, LR_NO_TRANS, 2, 2, 2, 1.0f, A, 2, B, 2, 0.0f, C, 1) == LR_ERR_ARG);
    CHECK(lr_sgemm(ctx, LR_NO_TRANS, LR_NO_TRANS, 2, 2, 2, 1.0f, NULL, 2, B, 2, 0.0f, C, 2) == LR_ERR_ARG);
    CHECK(lr_sgemm(ctx, (lr_trans)7, LR_NO_TRANS, 2, 2, 2, 1.0f, A, 2, B, 2, 0.0f, C, 2) == LR_ERR_ARG);
    CHECK(strstr(lr_ctx_last_error(ctx), "sgemm") != NULL);
    lr_ctx_destroy(ctx);
}

/* Same inputs, 1/2/3/7 threads: the bytes of C must match exactly. Shapes big enough to be
 * cut into many tasks, with ragged edges and several K blocks. */
static void test_thread_count_invariance(void)
{
    static const lr_cpu_level levels[] = {LR_CPU_REF, LR_CPU_AVX2, LR_CPU_AVX512};
    static const int thread_counts[] = {1, 2, 3, 7};
    static const int64_t shapes[][3] = {{1100, 700, 500}, {64, 2000, 900}, {2000, 40, 700}};
    for (size_t li = 0; li < sizeof levels / sizeof levels[0]; li++) {
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            int64_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
            lr_trans ta = s == 1 ? LR_TRANS : LR_NO_TRANS, tb = s == 2 ? LR_NO_TRANS : LR_TRANS;
            matrix A = matrix_new(ta ? K : M, ta ? M : K, 0), B = matrix_new(tb ? N : K, tb ? K : N, 0);
            matrix C0 = matrix_new(M, N, 0);
            float *first = malloc((size_t)(M * N) * sizeof *first), *C = malloc((size_t)(M * N) * sizeof *C);
            REQUIRE(A.data && B.data && C0.data && first && C);
            int level_supported = 1;
            for (size_t ti = 0; ti < 4 && level_supported; ti++) {
                lr_ctx *ctx = make_ctx(thread_counts[ti], levels[li]);
                REQUIRE(ctx);
                level_supported = lr_ctx_cpu(ctx) == levels[li];
                if (level_supported) {
                    memcpy(C, C0.data, (size_t)(M * N) * sizeof *C);
                    CHECK(lr_sgemm(ctx, ta, tb, M, N, K, 0.5f, A.data, A.ld, B.data, B.ld, 0.25f, C, N) == LR_OK);
                    if (ti == 0)
                        memcpy(first, C, (size_t)(M * N) * sizeof *C);
                    else
                        CHECKF(memcmp(first, C, (size_t)(M * N) * sizeof *C) == 0,
                               "level %s, %dx%dx%d: %d threads differ from 1", lr_cpu_level_name(levels[li]),
                               (int)M, (int)N, (int)K, thread_counts[ti]);
                }
                lr_ctx_destroy(ctx);
            }
            free(A.data);
            free(B.data);
            free(C0.data);
            free(first);
            free(C);
        }
    }
}

/* An element of C depends only on its row of op(A), its column of op(B) and K: a block of
 * rows and columns computed on its own matches the same block of the full product bit for
 * bit (what causal kernels comparing a prefix with the whole sequence rely on). */
static void test_result_independent_of_m_and_n(void)
{
    const int64_t M = 300, N = 500, K = 700, r0 = 17, rows = 34, c0 = 101, cols = 64;
    level_ctxs l;
    REQUIRE(level_ctxs_open(&l, 2));
    matrix A = matrix_new(M, K, 0), Bt = matrix_new(N, K, 0); /* C = A Bt^T */
    float *full = malloc((size_t)(M * N) * sizeof *full), *part = malloc((size_t)(rows * cols) * sizeof *part);
    REQUIRE(A.data && Bt.data && full && part);
    for (int li = 0; li < l.n; li++) {
        CHECK(lr_sgemm(l.ctx[li], LR_NO_TRANS, LR_TRANS, M, N, K, 1.0f, A.data, K, Bt.data, K, 0.0f, full, N) == LR_OK);
        CHECK(lr_sgemm(l.ctx[li], LR_NO_TRANS, LR_TRANS, rows, cols, K, 1.0f, A.data + r0 * K, K,
                       Bt.data + c0 * K, K, 0.0f, part, cols) == LR_OK);
        int same = 1;
        for (int64_t i = 0; i < rows; i++)
            same &= memcmp(part + i * cols, full + (r0 + i) * N + c0, (size_t)cols * sizeof *part) == 0;
        CHECKF(same, "level %s: a block computed alone differs from the full product",
               lr_cpu_level_name(lr_ctx_cpu(l.ctx[li])));
    }
    free(A.data);
    free(Bt.data);
    free(full);
    free(part);
    level_ctxs_close(&l);
}

/* Counts its visits in a shadow of C and turns each element e into e * 2 + its column, which
 * only comes out right when it runs once, on the final value. */
typedef struct {
    int64_t N;
    int *visits;
} epilogue_probe;

static void probe_epilogue(void *user, float *c, int64_t ldc, int64_t row0, int64_t col0, int64_t rows,
                           int64_t cols)
{
    epilogue_probe *p = user;
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++) {
            c[i * ldc + j] = c[i * ldc + j] * 2.0f + (float)(col0 + j);
            __atomic_fetch_add(&p->visits[(row0 + i) * p->N + col0 + j], 1, __ATOMIC_RELAXED);
        }
}

static void test_epilogue(void)
{
    static const int64_t shapes[][3] = {{1, 1, 1}, {37, 301, 777}, {700, 530, 300}, {20, 30, 0}};
    for (int threads = 1; threads <= 3; threads += 2) {
        level_ctxs l;
        REQUIRE(level_ctxs_open(&l, threads));
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            const int64_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2], ldc = N + 3;
            matrix A = matrix_new(M, K, 0), B = matrix_new(N, K, 0), C0 = matrix_new(M, N, 3);
            float *plain = malloc((size_t)(M * ldc) * sizeof *plain), *C = malloc((size_t)(M * ldc) * sizeof *C);
            int *visits = calloc((size_t)(M * N), sizeof *visits);
            REQUIRE(A.data && B.data && C0.data && plain && C && visits);
            for (int li = 0; li < l.n; li++) {
                memcpy(plain, C0.data, (size_t)(M * ldc) * sizeof *C);
                memcpy(C, C0.data, (size_t)(M * ldc) * sizeof *C);
                memset(visits, 0, (size_t)(M * N) * sizeof *visits);
                epilogue_probe probe = {N, visits};
                lr_gemm_epilogue ep = {probe_epilogue, &probe};
                CHECK(lr_sgemm(l.ctx[li], LR_NO_TRANS, LR_TRANS, M, N, K, 1.0f, A.data, K, B.data, K, 0.5f, plain,
                               ldc) == LR_OK);
                CHECK(lr_sgemm_ep(l.ctx[li], LR_NO_TRANS, LR_TRANS, M, N, K, 1.0f, A.data, K, B.data, K, 0.5f, C, ldc,
                                  &ep) == LR_OK);
                int once = 1, right = 1;
                for (int64_t i = 0; i < M; i++)
                    for (int64_t j = 0; j < ldc; j++) {
                        float want = j < N ? plain[i * ldc + j] * 2.0f + (float)j : PAD_VALUE;
                        right &= C[i * ldc + j] == want;
                        once &= j >= N || visits[i * N + j] == 1;
                    }
                CHECKF(once && right, "level %s, %d threads, %dx%dx%d: epilogue ran %s",
                       lr_cpu_level_name(lr_ctx_cpu(l.ctx[li])), threads, (int)M, (int)N, (int)K,
                       once ? "on the wrong values" : "other than once per element");
            }
            free(A.data);
            free(B.data);
            free(C0.data);
            free(plain);
            free(C);
            free(visits);
        }
        level_ctxs_close(&l);
    }
    lr_ctx *ctx = make_ctx(1, LR_CPU_AVX512);
    REQUIRE(ctx);
    float A[4] = {0}, B[4] = {0}, C[4] = {0};
    lr_gemm_epilogue none = {NULL, NULL};
    CHECK(lr_sgemm_ep(ctx, LR_NO_TRANS, LR_NO_TRANS, 2, 2, 2, 1.0f, A, 2, B, 2, 0.0f, C, 2, &none) == LR_ERR_ARG);
    lr_ctx_destroy(ctx);
}

int main(void)
{
    seed_random(1);
    RUN(test_small_shapes_all_transposes);
    RUN(test_large_and_mixed_shapes);
    RUN(test_alpha_beta_and_strides);
    RUN(test_beta_zero_ignores_nan);
    RUN(test_k_zero_and_alpha_zero);
    RUN(test_argument_errors);
    RUN(test_thread_count_invariance);
    RUN(test_result_independent_of_m_and_n);
    RUN(test_epilogue);
    return CHECK_DONE();
}
