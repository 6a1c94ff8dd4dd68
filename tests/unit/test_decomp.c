/* Series decomposition against the formula summed directly in double: the moving average
 * with the ends clamped, at lengths shorter than the kernel, one point, channel counts off
 * the task group; in place over either output; bit-identical for 1, 2 and 3 threads; bit for
 * bit the sliding sum, on the vector path for full channel groups too; bad arguments. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kernel_test.h"
#include "longrange/decomp.h"

static float *random_series(int64_t n)
{
    float *x = malloc((size_t)n * sizeof *x);
    for (int64_t i = 0; x && i < n; i++)
        x[i] = 10.0f * random_float() + 3.0f;
    return x;
}

/* Largest |got - formula| over both outputs, relative to max |x|. */
static double decomp_error(const float *x, const float *seasonal, const float *trend, int64_t B,
                           int64_t L, int64_t C, int64_t K)
{
    double worst = 0, scale = 0;
    for (int64_t i = 0; i < B * L * C; i++)
        scale = fmax(scale, fabs(x[i]));
    for (int64_t b = 0; b < B; b++) {
        for (int64_t t = 0; t < L; t++) {
            for (int64_t c = 0; c < C; c++) {
                double sum = 0;
                for (int64_t j = t - (K - 1) / 2; j <= t + (K - 1) / 2; j++)
                    sum += x[(b * L + (j < 0 ? 0 : j >= L ? L - 1 : j)) * C + c];
                double tr = sum / (double)K, xv = x[(b * L + t) * C + c];
                worst = fmax(worst, fabs(trend[(b * L + t) * C + c] - tr));
                worst = fmax(worst, fabs(seasonal[(b * L + t) * C + c] - (xv - tr)));
            }
        }
    }
    return worst / scale;
}

static void test_decomp_formula(void)
{
    static const int64_t shapes[][4] = {
        /* B, L, C, K */
        {1, 1, 1, 25}, {1, 2, 3, 25}, {2, 30, 7, 25}, {1, 96, 17, 25}, {3, 50, 40, 1},
        {1, 11, 16, 3}, {2, 720, 33, 25}, {1, 24, 5, 49},
    };
    lr_ctx *ctx = make_ctx(2, LR_CPU_AVX512);
    REQUIRE(ctx);
    seed_random(5);
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        int64_t B = shapes[i][0], L = shapes[i][1], C = shapes[i][2], K = shapes[i][3], n = B * L * C;
        float *x = random_series(n), *s = malloc((size_t)n * sizeof *s), *t = malloc((size_t)n * sizeof *t);
        REQUIRE(x && s && t);
        CHECK(lr_series_decomp(ctx, B, L, C, K, x, s, t) == LR_OK);
        double err = decomp_error(x, s, t, B, L, C, K);
        CHECKF(err < 1e-6, "B=%lld L=%lld C=%lld K=%lld: error %.3g", (long long)B, (long long)L,
               (long long)C, (long long)K, err);
        free(x);
        free(s);
        free(t);
    }
    lr_ctx_destroy(ctx);
}

/* Each output over x itself gives what separate buffers give, bit for bit; so do 1, 2 and 3
 * threads. */
static void test_decomp_in_place_and_threads(void)
{
    const int64_t B = 2, L = 300, C = 21, K = 25, n = B * L * C;
    seed_random(9);
    float *x = random_series(n), *s = malloc((size_t)n * sizeof *s), *t = malloc((size_t)n * sizeof *t);
    float *y = malloc((size_t)n * sizeof *y), *other = malloc((size_t)n * sizeof *other);
    REQUIRE(x && s && t && y && other);
    lr_ctx *one = make_ctx(1, LR_CPU_AVX512);
    REQUIRE(one);
    CHECK(lr_series_decomp(one, B, L, C, K, x, s, t) == LR_OK);

    memcpy(y, x, (size_t)n * sizeof *y);
    CHECK(lr_series_decomp(one, B, L, C, K, y, y, other) == LR_OK);
    CHECK(memcmp(y, s, (size_t)n * sizeof *y) == 0);
    CHECK(memcmp(other, t, (size_t)n * sizeof *y) == 0);
    memcpy(y, x, (size_t)n * sizeof *y);
    CHECK(lr_series_decomp(one, B, L, C, K, y, other, y) == LR_OK);
    CHECK(memcmp(y, t, (size_t)n * sizeof *y) == 0);
    CHECK(memcmp(other, s, (size_t)n * sizeof *y) == 0);
    memcpy(y, x, (size_t)n * sizeof *y);
    CHECK(lr_series_decomp(one, B, L, C, K, y, NULL, y) == LR_OK); /* trend only */
    CHECK(memcmp(y, t, (size_t)n * sizeof *y) == 0);

    for (int threads = 2; threads <= 3; threads++) {
        lr_ctx *ctx = make_ctx(threads, LR_CPU_AVX512);
        REQUIRE(ctx);
        CHECK(lr_series_decomp(ctx, B, L, C, K, x, y, other) == LR_OK);
        CHECK(memcmp(y, s, (size_t)n * sizeof *y) == 0);
        CHECK(memcmp(other, t, (size_t)n * sizeof *y) == 0);
        lr_ctx_destroy(ctx);
    }
    lr_ctx_destroy(one);
    free(x);
    free(s);
    free(t);
    free(y);
    free(other);
}

/* The sliding double sum channel by channel, in the library's order: (h + 1) x[0] + x[1..h],
 * then per step trend = sum / K, drop the leaving value, add the entering one. The vector
 * path for full groups of channels must give exactly this. */
static void sliding_reference(const float *x, int64_t B, int64_t L, int64_t C, int64_t K, float *seasonal,
                              float *trend)
{
    const int64_t h = (K - 1) / 2;
    for (int64_t b = 0; b < B; b++) {
        const float *xb = x + b * L * C;
        for (int64_t c = 0; c < C; c++) {
            double sum = (double)(h + 1) * xb[c];
            for (int64_t j = 1; j <= h; j++)
                sum += xb[(j < L ? j : L - 1) * C + c];
            for (int64_t t = 0; t < L; t++) {
                float tr = (float)(sum / (double)K);
                int64_t out = t - h > 0 ? t - h : 0, in = t + h + 1 < L ? t + h + 1 : L - 1;
                sum -= xb[out * C + c];
                sum += xb[in * C + c];
                seasonal[(b * L + t) * C + c] = xb[t * C + c] - tr;
                trend[(b * L + t) * C + c] = tr;
            }
        }
    }
}

static void test_decomp_bitwise(void)
{
    static const int64_t shapes[][4] = {
        /* B, L, C, K: full groups, full groups and a partial one, lengths below the kernel */
        {2, 96, 32, 25}, {1, 144, 48, 25}, {2, 37, 37, 25}, {1, 1, 16, 25}, {1, 5, 16, 25},
        {1, 24, 17, 1}, {1, 30, 64, 3}, {1, 20, 16, 49},
    };
    seed_random(12);
    for (int threads = 1; threads <= 3; threads++) {
        lr_ctx *ctx = make_ctx(threads, LR_CPU_AVX512);
        REQUIRE(ctx);
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
            int64_t B = shapes[i][0], L = shapes[i][1], C = shapes[i][2], K = shapes[i][3], n = B * L * C;
            float *x = random_series(n), *s = malloc((size_t)n * sizeof *s), *t = malloc((size_t)n * sizeof *t);
            float *ws = malloc((size_t)n * sizeof *ws), *wt = malloc((size_t)n * sizeof *wt);
            REQUIRE(x && s && t && ws && wt);
            sliding_reference(x, B, L, C, K, ws, wt);
            CHECK(lr_series_decomp(ctx, B, L, C, K, x, s, t) == LR_OK);
            CHECKF(memcmp(s, ws, (size_t)n * sizeof *s) == 0 && memcmp(t, wt, (size_t)n * sizeof *t) == 0,
                   "%d threads, B=%lld L=%lld C=%lld K=%lld differ from the sliding sum", threads,
                   (long long)B, (long long)L, (long long)C, (long long)K);
            CHECK(lr_series_decomp(ctx, B, L, C, K, x, x, NULL) == LR_OK); /* seasonal over x */
            CHECK(memcmp(x, ws, (size_t)n * sizeof *x) == 0);
            free(x);
            free(s);
            free(t);
            free(ws);
            free(wt);
        }
        lr_ctx_destroy(ctx);
    }
}

static void test_decomp_bad_arguments(void)
{
    lr_ctx *ctx = make_ctx(1, LR_CPU_AVX512);
    REQUIRE(ctx);
    float x[4] = {1, 2, 3, 4}, y[4];
    CHECK(lr_series_decomp(ctx, 1, 4, 1, 24, x, y, NULL) == LR_ERR_ARG);
    CHECK(strstr(lr_ctx_last_error(ctx), "must be odd") != NULL);
    CHECK(lr_series_decomp(ctx, 1, 4, 1, 0, x, y, NULL) == LR_ERR_ARG);
    CHECK(lr_series_decomp(ctx, 1, 0, 1, 3, x, y, NULL) == LR_ERR_ARG);
    CHECK(lr_series_decomp(ctx, 1, 4, 0, 3, x, y, NULL) == LR_ERR_ARG);
    CHECK(lr_series_decomp(ctx, -1, 4, 1, 3, x, y, NULL) == LR_ERR_ARG);
    CHECK(lr_series_decomp(ctx, 1, 4, 1, 3, NULL, y, NULL) == LR_ERR_ARG);
    CHECK(lr_series_decomp(ctx, INT64_MAX / 2, 4, 4, 3, x, y, NULL) == LR_ERR_ARG);
    CHECK(lr_series_decomp(ctx, 0, 4, 1, 3, x, y, NULL) == LR_OK); /* nothing to do */
    lr_ctx_destroy(ctx);
}

int main(void)
{
    RUN(test_decomp_formula);
    RUN(test_decomp_in_place_and_threads);
    RUN(test_decomp_bitwise);
    RUN(test_decomp_bad_arguments);
    return CHECK_DONE();
}
