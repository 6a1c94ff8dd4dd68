/* lr_longconv against the causal convolution summed directly in double, at every CPU level
 * this machine has: lengths 1 to 4096 in full and 100000 at sampled outputs, filters
 * shorter than, as long as and longer than the input, with and without the skip term D, odd
 * channel counts, batches, shorter inputs than prepared, in place; bit-identical results
 * for 1, 2 and 3 threads.
 *
 * Tolerance: |y[t] - y_ref[t]| <= 3e-7 * ||k_c||_2 * ||u_c||_2 + 1e-6 |D_c u[t]| for every
 * output, where ||k_c|| ||u_c|| bounds any output of the channel (Cauchy-Schwarz) and an
 * FFT spreads its rounding evenly over all outputs. Measured errors (about 2e-8 of that
 * bound, and the RMS error relative to the RMS output) are printed for the long cases. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kernel_test.h"
#include "longrange/core.h"
#include "longrange/longconv.h"

static const lr_cpu_level levels[] = {LR_CPU_REF, LR_CPU_AVX2, LR_CPU_AVX512};

typedef struct {
    int64_t batch, channels, length, taps;
    int skip;
} conv_case;

/* The direct sum at output t of row r (channel c). */
static double direct(const float *k, int64_t taps, const float *skip, const float *u, int64_t c, int64_t t)
{
    double sum = skip ? (double)skip[c] * u[t] : 0.0;
    for (int64_t s = 0; s <= t && s < taps; s++)
        sum += (double)k[c * taps + s] * u[t - s];
    return sum;
}

static double norm2(const float *x, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += (double)x[i] * x[i];
    return sqrt(s);
}

typedef struct {
    double worst;    /* largest error relative to ||k|| ||u|| */
    double rms_rel;  /* RMS error over RMS reference output */
} conv_error;

/* Compares y with the direct sum at every output (or at `samples` of them when > 0). */
static conv_error compare(const conv_case *cc, const float *k, const float *skip, const float *u, const float *y,
                          int samples, int *bad)
{
    double worst = 0, err2 = 0, ref2 = 0;
    const int64_t L = cc->length, used = cc->taps < L ? cc->taps : L;
    for (int64_t row = 0; row < cc->batch * cc->channels; row++) {
        int64_t c = row % cc->channels;
        const float *ur = u + row * L, *yr = y + row * L;
        double bound = norm2(k + c * cc->taps, used) * norm2(ur, L);
        int64_t count = samples > 0 ? samples : L;
        for (int64_t i = 0; i < count; i++) {
            int64_t t = samples == 0 ? i : i == 0 ? L - 1 : i * 48271 % L;
            double ref = direct(k, cc->taps, skip, ur, c, t);
            double err = fabs(yr[t] - ref);
            err2 += err * err;
            ref2 += ref * ref;
            double tol = 3e-7 * bound + (skip ? 1e-6 * fabs((double)skip[c] * ur[t]) : 0.0);
            if (bound > 0)
                worst = fmax(worst, err / bound);
            if (!(err <= tol + 1e-30) && (*bad)++ < 5)
                printf("  L=%lld C=%lld taps=%lld row %lld t %lld: got %.9g want %.9g (tol %.3g)\n", (long long)L,
                       (long long)cc->channels, (long long)cc->taps, (long long)row, (long long)t, yr[t], ref, tol);
        }
    }
    conv_error e = {worst, ref2 > 0 ? sqrt(err2 / ref2) : 0};
    return e;
}

/* One case at every level and thread count; the first thread count is compared with the
 * direct sum, the others must match it bit for bit. */
static void run_case(const conv_case *cc, int samples)
{
    const int64_t rows = cc->batch * cc->channels, L = cc->length;
    size_t n = (size_t)(rows * L);
    float *k = malloc((size_t)(cc->channels * cc->taps) * sizeof *k), *skip = malloc((size_t)cc->channels * sizeof *skip);
    float *u = malloc(n * sizeof *u), *y = malloc(n * sizeof *y), *y1 = malloc(n * sizeof *y1);
    REQUIRE(k && skip && u && y && y1);
    /* a decaying filter like HyenaDNA's, with some weight far out */
    for (int64_t c = 0; c < cc->channels; c++)
        for (int64_t s = 0; s < cc->taps; s++)
            k[c * cc->taps + s] = random_float() * (float)exp(-3.0 * (double)s / (double)cc->taps);
    for (int64_t c = 0; c < cc->channels; c++)
        skip[c] = random_float();
    for (size_t i = 0; i < n; i++)
        u[i] = random_float();

    for (size_t li = 0; li < 3; li++) {
        static const int thread_counts[] = {1, 2, 3};
        for (int ti = 0; ti < 3; ti++) {
            lr_ctx *ctx = make_ctx_at(thread_counts[ti], levels[li]);
            if (!ctx)
                break;
            lr_longconv *conv = NULL;
            lr_status st = lr_longconv_create(ctx, cc->channels, L, k, cc->taps, cc->skip ? skip : NULL, &conv);
            CHECKF(st == LR_OK, "create: %s", lr_ctx_last_error(ctx));
            if (st == LR_OK) {
                memset(y, 0xff, n * sizeof *y);
                CHECK(lr_longconv_apply(ctx, conv, cc->batch, L, u, y) == LR_OK);
                if (ti == 0) {
                    int bad = 0;
                    conv_error e = compare(cc, k, cc->skip ? skip : NULL, u, y, samples, &bad);
                    CHECKF(bad == 0, "%s: %d outputs off", lr_cpu_level_name(levels[li]), bad);
                    if (L >= 4096)
                        printf("  %s L=%lld C=%lld taps=%lld (FFT %lld): max error / (|k| |u|) %.2e, "
                               "RMS error / RMS output %.2e\n",
                               lr_cpu_level_name(levels[li]), (long long)L, (long long)cc->channels,
                               (long long)cc->taps, (long long)lr_longconv_fft_length(conv), e.worst, e.rms_rel);
                    memcpy(y1, y, n * sizeof *y);
                } else {
                    CHECKF(memcmp(y, y1, n * sizeof *y) == 0, "%s: %d threads differ from 1",
                           lr_cpu_level_name(levels[li]), thread_counts[ti]);
                }
            }
            lr_longconv_destroy(conv);
            lr_ctx_destroy(ctx);
        }
    }
    free(k);
    free(skip);
    free(u);
    free(y);
    free(y1);
}

static void test_against_direct(void)
{
    static const conv_case cases[] = {
        {1, 1, 1, 1, 1},      {1, 3, 1, 5, 0},      {1, 2, 7, 7, 1},       {2, 3, 7, 3, 1},
        {1, 5, 100, 100, 1},  {1, 4, 100, 17, 0},   {2, 5, 100, 250, 1},   {1, 8, 1000, 1000, 1},
        {1, 3, 1000, 64, 0},  {1, 6, 4096, 4096, 1}, {1, 3, 4097, 4097, 1}, {1, 2, 3000, 1, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_case(&cases[i], 0);
}

static void test_long_sampled(void)
{
    conv_case cc = {1, 3, 600000, 600000, 1}; /* the work buffer goes past the streaming threshold */
    run_case(&cc, 64);
}

/* A shorter input gives the prefix of the prepared length's output; in place works; the
 * output before t0 does not depend on the input after it. */
static void test_prefix_in_place_causal(void)
{
    const int64_t C = 3, L = 1500, short_len = 700, t0 = 900;
    float *k = malloc((size_t)(C * L) * sizeof *k), *u = malloc((size_t)(C * L) * sizeof *u);
    float *y = malloc((size_t)(C * L) * sizeof *y), *ys = malloc((size_t)(C * short_len) * sizeof *ys);
    float *us = malloc((size_t)(C * short_len) * sizeof *us), *v = malloc((size_t)(C * L) * sizeof *v);
    REQUIRE(k && u && y && ys && us && v);
    for (int64_t i = 0; i < C * L; i++) {
        k[i] = random_float();
        u[i] = random_float();
    }
    for (size_t li = 0; li < 3; li++) {
        lr_ctx *ctx = make_ctx_at(2, levels[li]);
        if (!ctx)
            break;
        lr_longconv *conv = NULL;
        REQUIRE(lr_longconv_create(ctx, C, L, k, L, NULL, &conv) == LR_OK);
        CHECK(lr_longconv_apply(ctx, conv, 1, L, u, y) == LR_OK);
        for (int64_t c = 0; c < C; c++)
            memcpy(us + c * short_len, u + c * L, (size_t)short_len * sizeof *us);
        CHECK(lr_longconv_apply(ctx, conv, 1, short_len, us, ys) == LR_OK);
        double scale = 3e-7 * sqrt((double)L) * sqrt((double)L); /* ||k|| ||u|| for k, u in [-1, 1] */
        for (int64_t c = 0; c < C; c++)
            for (int64_t t = 0; t < short_len; t++)
                CHECKF(fabs(ys[c * short_len + t] - y[c * L + t]) <= scale, "prefix c %lld t %lld", (long long)c,
                       (long long)t);
        /* in place */
        CHECK(lr_longconv_apply(ctx, conv, 1, short_len, us, us) == LR_OK);
        CHECK(memcmp(us, ys, (size_t)(C * short_len) * sizeof *us) == 0);
        /* a large change after t0 leaves the outputs before it alone (up to rounding) */
        memcpy(v, u, (size_t)(C * L) * sizeof *v);
        for (int64_t c = 0; c < C; c++)
            for (int64_t t = t0; t < L; t++)
                v[c * L + t] = 100.0f * random_float();
        CHECK(lr_longconv_apply(ctx, conv, 1, L, v, v) == LR_OK);
        for (int64_t c = 0; c < C; c++)
            for (int64_t t = 0; t < t0; t++)
                CHECKF(fabs(v[c * L + t] - y[c * L + t]) <= 100 * scale, "causality c %lld t %lld: %g vs %g",
                       (long long)c, (long long)t, v[c * L + t], y[c * L + t]);
        lr_longconv_destroy(conv);
        lr_ctx_destroy(ctx);
    }
    free(k);
    free(u);
    free(y);
    free(ys);
    free(us);
    free(v);
}

static void test_errors(void)
{
    lr_ctx *ctx = make_ctx_at(1, LR_CPU_REF);
    REQUIRE(ctx);
    float k[8] = {1}, u[8] = {0};
    lr_longconv *conv = (lr_longconv *)&conv;
    CHECK(lr_longconv_create(ctx, 0, 8, k, 8, NULL, &conv) == LR_ERR_ARG && conv == NULL);
    CHECK(strstr(lr_ctx_last_error(ctx), "0 channels") != NULL);
    CHECK(lr_longconv_create(ctx, 1, 0, k, 8, NULL, &conv) == LR_ERR_ARG);
    CHECK(lr_longconv_create(ctx, 1, 8, k, 0, NULL, &conv) == LR_ERR_ARG);
    CHECK(lr_longconv_create(ctx, 1, 8, NULL, 8, NULL, &conv) == LR_ERR_ARG);
    REQUIRE(lr_longconv_create(ctx, 1, 8, k, 8, NULL, &conv) == LR_OK);
    CHECK(lr_longconv_apply(ctx, conv, 1, 9, u, u) == LR_ERR_ARG);
    CHECK(strstr(lr_ctx_last_error(ctx), "prepared for 1..8") != NULL);
    CHECK(lr_longconv_apply(ctx, conv, 1, 0, u, u) == LR_ERR_ARG);
    CHECK(lr_longconv_apply(ctx, conv, 1, 8, NULL, u) == LR_ERR_ARG);
    CHECK(lr_longconv_apply(ctx, conv, 0, 8, u, u) == LR_OK);
    /* an impulse through a unit filter is the identity */
    u[3] = 2.5f;
    CHECK(lr_longconv_apply(ctx, conv, 1, 8, u, u) == LR_OK);
    for (int t = 0; t < 8; t++)
        CHECKF(fabsf(u[t] - (t == 3 ? 2.5f : 0.0f)) < 1e-6f, "impulse t %d: %g", t, u[t]);
    lr_longconv_destroy(conv);
    lr_longconv_destroy(NULL);
    lr_ctx_destroy(ctx);
}

int main(void)
{
    seed_random(99);
    RUN(test_against_direct);
    RUN(test_long_sampled);
    RUN(test_prefix_in_place_causal);
    RUN(test_errors);
    return CHECK_DONE();
}
