/* Auto-Correlation against explicit formulas:
 * - the mean correlation against the circular cross-correlation summed directly in double,
 *   sum_t q[(t + tau) mod L] k[t] averaged over channels, with keys shorter and longer
 *   than the queries (zero-padded / truncated);
 * - the sign convention of the official code: with q = roll(k, d) (q[t] = k[t - d]) the
 *   strongest delay is d, and aggregating v = q undoes the shift;
 * - delay selection (ties, NaN, training mode) and softmax weights by hand;
 * - the aggregation against explicit index arithmetic, bit for bit;
 * - lr_autocorr_forward = the three steps, bit-identical for 1, 2 and 3 threads;
 * - lr_autocorr_forward_add = x + (lr_autocorr_forward + bias), bit for bit;
 * at every CPU level this machine has (the vectorised transforms depend on it).
 *
 * Tolerance of the correlation: 2e-7 * mean_c ||q_c||_2 ||k_c||_2 (Cauchy-Schwarz bounds any
 * value by that mean; the FFT's rounding is spread evenly over all delays). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kernel_test.h"
#include "longrange/autocorr.h"
#include "longrange/core.h"

static const lr_cpu_level levels[] = {LR_CPU_REF, LR_CPU_AVX2, LR_CPU_AVX512};


static float *random_tensor(size_t n)
{
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; x && i < n; i++)
        x[i] = random_float();
    return x;
}

/* k or v of key_len steps seen as L steps: zero-padded or truncated */
static double padded(const float *x, int64_t key_len, int64_t C, int64_t t, int64_t c)
{
    return t < key_len ? x[t * C + c] : 0.0;
}

static void check_correlation(lr_ctx *ctx, int64_t B, int64_t L, int64_t C, int64_t S)
{
    lr_autocorr *ac = NULL;
    REQUIRE(lr_autocorr_create(ctx, L, &ac) == LR_OK);
    float *q = random_tensor((size_t)(B * L * C)), *k = random_tensor((size_t)(B * S * C));
    float *corr = malloc((size_t)(B * L) * sizeof *corr);
    REQUIRE(q && k && corr);
    CHECKF(lr_autocorr_correlate(ctx, ac, B, C, q, k, S, corr) == LR_OK, "%s", lr_ctx_last_error(ctx));
    double worst = 0;
    for (int64_t b = 0; b < B; b++) {
        const float *qb = q + b * L * C, *kb = k + b * S * C;
        double bound = 0;
        for (int64_t c = 0; c < C; c++) {
            double qq = 0, kk = 0;
            for (int64_t t = 0; t < L; t++) {
                qq += (double)qb[t * C + c] * qb[t * C + c];
                kk += padded(kb, S, C, t, c) * padded(kb, S, C, t, c);
            }
            bound += sqrt(qq * kk) / (double)C;
        }
        for (int64_t tau = 0; tau < L; tau++) {
            double ref = 0;
            for (int64_t c = 0; c < C; c++)
                for (int64_t t = 0; t < L; t++)
                    ref += (double)qb[((t + tau) % L) * C + c] * padded(kb, S, C, t, c);
            ref /= (double)C;
            double err = fabs(corr[b * L + tau] - ref);
            worst = fmax(worst, err / bound);
            CHECKF(err <= 2e-7 * bound, "B=%lld L=%lld C=%lld S=%lld: corr[%lld][%lld] = %.9g, want %.9g",
                   (long long)B, (long long)L, (long long)C, (long long)S, (long long)b, (long long)tau,
                   corr[b * L + tau], ref);
        }
    }
    if (L >= 336)
        printf("  %s L=%lld C=%lld: max error / mean |q| |k| = %.2e\n", lr_cpu_level_name(lr_ctx_cpu(ctx)),
               (long long)L, (long long)C, worst);
    free(q);
    free(k);
    free(corr);
    lr_autocorr_destroy(ac);
}

static void test_correlation_direct(void)
{
    for (size_t li = 0; li < 3; li++) {
        lr_ctx *ctx = make_ctx_at(2, levels[li]);
        if (!ctx)
            break;
        check_correlation(ctx, 2, 96, 8, 96);
        check_correlation(ctx, 1, 97, 5, 60);    /* prime length (Bluestein), keys zero-padded */
        check_correlation(ctx, 3, 336, 40, 400); /* more channels than a chunk, keys truncated */
        check_correlation(ctx, 1, 720, 3, 720);
        check_correlation(ctx, 2, 1, 4, 1);
        check_correlation(ctx, 1, 2, 1, 5);
        check_correlation(ctx, 1, 144, 17, 144); /* a lane block cut short */
        lr_ctx_destroy(ctx);
    }
}

/* q[t] = k[t - d]: the correlation peaks at delay d, and aggregating v = q with that single
 * delay gives back k. */
static void test_sign_convention(void)
{
    const int64_t L = 96, C = 6, d = 17;
    lr_ctx *ctx = make_ctx(1, LR_CPU_REF);
    REQUIRE(ctx);
    lr_autocorr *ac = NULL;
    REQUIRE(lr_autocorr_create(ctx, L, &ac) == LR_OK);
    float *k = random_tensor((size_t)(L * C)), *q = malloc((size_t)(L * C) * sizeof *q);
    float corr[96], weight, *out = malloc((size_t)(L * C) * sizeof *out);
    int64_t delay;
    REQUIRE(k && q && out);
    for (int64_t t = 0; t < L; t++)
        for (int64_t c = 0; c < C; c++)
            q[t * C + c] = k[((t - d + L) % L) * C + c];
    REQUIRE(lr_autocorr_correlate(ctx, ac, 1, C, q, k, L, corr) == LR_OK);
    REQUIRE(lr_autocorr_select(ctx, 1, L, corr, 1, LR_AUTOCORR_INFERENCE, &delay, &weight) == LR_OK);
    CHECKF(delay == d, "strongest delay %lld, want %lld", (long long)delay, (long long)d);
    CHECK(weight == 1.0f);
    REQUIRE(lr_autocorr_aggregate(ctx, 1, L, C, q, L, 1, &delay, &weight, out) == LR_OK);
    CHECK(memcmp(out, k, (size_t)(L * C) * sizeof *out) == 0);
    free(k);
    free(q);
    free(out);
    lr_autocorr_destroy(ac);
    lr_ctx_destroy(ctx);
}

static void test_select(void)
{
    lr_ctx *ctx = make_ctx(1, LR_CPU_REF);
    REQUIRE(ctx);
    /* ties go to the smaller delay */
    const float row[8] = {1, 5, 3, 5, 2, 5, 0, 4};
    int64_t delays[8];
    float weights[8];
    REQUIRE(lr_autocorr_select(ctx, 1, 8, row, 4, LR_AUTOCORR_INFERENCE, delays, weights) == LR_OK);
    CHECK(delays[0] == 1 && delays[1] == 3 && delays[2] == 5 && delays[3] == 7);
    double z = 3 * exp(1.0) + 1.0; /* softmax of (5, 5, 5, 4) */
    CHECK(fabs(weights[0] - exp(1.0) / z) < 1e-7 && fabs(weights[3] - 1.0 / z) < 1e-7);
    CHECK(weights[0] == weights[1] && weights[1] == weights[2]);
    /* NaN ranks first and poisons the weights, as torch.topk / softmax do */
    const float with_nan[4] = {1, NAN, 3, 2};
    REQUIRE(lr_autocorr_select(ctx, 1, 4, with_nan, 2, LR_AUTOCORR_INFERENCE, delays, weights) == LR_OK);
    CHECK(delays[0] == 1 && delays[1] == 2 && isnan(weights[0]) && isnan(weights[1]));
    /* training: delays from the batch mean, weights per element */
    const float rows[2][4] = {{0, 4, 1, 0}, {0, 0, 2, 3}}; /* mean 0, 2, 1.5, 1.5 */
    REQUIRE(lr_autocorr_select(ctx, 2, 4, &rows[0][0], 2, LR_AUTOCORR_TRAINING, delays, weights) == LR_OK);
    CHECK(delays[0] == 1 && delays[1] == 2 && delays[2] == 1 && delays[3] == 2);
    CHECK(fabs(weights[0] - 1 / (1 + exp(-3.0))) < 1e-7 && fabs(weights[2] - 1 / (1 + exp(2.0))) < 1e-7);
    REQUIRE(lr_autocorr_select(ctx, 2, 4, &rows[0][0], 2, LR_AUTOCORR_INFERENCE, delays, weights) == LR_OK);
    CHECK(delays[0] == 1 && delays[1] == 2 && delays[2] == 3 && delays[3] == 2);
    lr_ctx_destroy(ctx);
}

/* out[b, t, c] = sum_i w_i v[b, (t + d_i) mod L, c], v zero beyond value_len, summed in
 * delay order from zero: the same float operations, so the same bits. Channel counts around
 * the vector blocks (16, 64), delays repeated, more delays than the register path takes (the
 * plain loop), 1 to 3 threads. */
static void test_aggregate_explicit(void)
{
    const int64_t B = 2, L = 96;
    static const int64_t value_lens[] = {96, 30, 130};
    static const int64_t channel_counts[] = {7, 16, 17, 64, 100, 130};
    static const int64_t delay_counts[] = {4, 1, 70};
    int64_t delays[2 * 70];
    float weights[2 * 70];
    for (int i = 0; i < 2 * 70; i++) {
        delays[i] = (i * 37 + 11) % L;
        weights[i] = 0.25f + 0.1f * random_float();
    }
    delays[1] = delays[2] = 7; /* a repeated delay */
    delays[3] = L - 1;
    for (int threads = 1; threads <= 3; threads++) {
        lr_ctx *ctx = make_ctx(threads, LR_CPU_REF);
        REQUIRE(ctx);
        for (int vi = 0; vi < 3; vi++)
        for (int ci = 0; ci < 6; ci++)
        for (int ki = 0; ki < 3; ki++) {
            const int64_t S = value_lens[vi], C = channel_counts[ci], K = delay_counts[ki];
            float *v = random_tensor((size_t)(B * S * C)), *out = malloc((size_t)(B * L * C) * sizeof *out);
            REQUIRE(v && out);
            REQUIRE(lr_autocorr_aggregate(ctx, B, L, C, v, S, K, delays, weights, out) == LR_OK);
            int bad = 0;
            for (int64_t b = 0; b < B; b++)
                for (int64_t t = 0; t < L; t++)
                    for (int64_t c = 0; c < C; c++) {
                        float sum = 0;
                        for (int64_t i = 0; i < K; i++) {
                            int64_t row = (t + delays[b * K + i]) % L;
                            float term = weights[b * K + i] * (row < S ? v[(b * S + row) * C + c] : 0.0f);
                            sum = sum + term;
                        }
                        bad += memcmp(&out[(b * L + t) * C + c], &sum, sizeof sum) != 0;
                    }
            CHECKF(bad == 0, "%d threads, value length %lld, %lld channels, %lld delays: %d outputs differ",
                   threads, (long long)S, (long long)C, (long long)K, bad);
            free(v);
            free(out);
        }
        lr_ctx_destroy(ctx);
    }
}

static void test_forward_threads(void)
{
    const int64_t B = 3, L = 96, Cqk = 40, Cv = 24, S = 80;
    const double factor = 3.0;
    float *q = random_tensor((size_t)(B * L * Cqk)), *k = random_tensor((size_t)(B * S * Cqk));
    float *v = random_tensor((size_t)(B * S * Cv));
    float *first = malloc((size_t)(B * L * Cv) * sizeof *first), *out = malloc((size_t)(B * L * Cv) * sizeof *out);
    float *corr = malloc((size_t)(B * L) * sizeof *corr), *steps = malloc((size_t)(B * L * Cv) * sizeof *steps);
    REQUIRE(q && k && v && first && out && corr && steps);
    CHECK(lr_autocorr_top_k(factor, L) == 13); /* int(3 ln 96) */
    CHECK(lr_autocorr_top_k(1.0, 1) == 0);
    for (int run = 0; run < 6; run++) {
        const int mode = run % 2;
        const lr_cpu_level level = levels[run / 2];
        for (int threads = 1; threads <= 3; threads++) {
            lr_ctx *ctx = make_ctx_at(threads, level);
            if (!ctx)
                break;
            lr_autocorr *ac = NULL;
            REQUIRE(lr_autocorr_create(ctx, L, &ac) == LR_OK);
            CHECKF(lr_autocorr_forward(ctx, ac, B, Cqk, Cv, q, k, v, S, factor, (lr_autocorr_mode)mode, out) == LR_OK,
                   "%s", lr_ctx_last_error(ctx));
            if (threads == 1) {
                memcpy(first, out, (size_t)(B * L * Cv) * sizeof *out);
                int64_t delays[3 * 13];
                float weights[3 * 13];
                REQUIRE(lr_autocorr_correlate(ctx, ac, B, Cqk, q, k, S, corr) == LR_OK);
                REQUIRE(lr_autocorr_select(ctx, B, L, corr, 13, (lr_autocorr_mode)mode, delays, weights) == LR_OK);
                REQUIRE(lr_autocorr_aggregate(ctx, B, L, Cv, v, S, 13, delays, weights, steps) == LR_OK);
                CHECK(memcmp(steps, out, (size_t)(B * L * Cv) * sizeof *out) == 0);
            } else {
                CHECKF(memcmp(first, out, (size_t)(B * L * Cv) * sizeof *out) == 0, "%s, mode %d, %d threads",
                       lr_cpu_level_name(level), mode, threads);
            }
            lr_autocorr_destroy(ac);
            lr_ctx_destroy(ctx);
        }
    }
    free(q);
    free(k);
    free(v);
    free(first);
    free(out);
    free(corr);
    free(steps);
}

/* Both aggregation paths (up to 64 delays in registers, more in the plain loop), channel
 * counts with and without a vector tail, padded and full-length keys, with and without a bias. */
static void test_forward_add(void)
{
    const int64_t B = 2, L = 96;
    static const int64_t channels[] = {24, 130};
    static const double factors[] = {1.0, 15.4}; /* 4 and 70 delays */
    static const int64_t key_lens[] = {60, 96};
    for (int li = 0; li < 3; li++) {
        lr_ctx *ctx = make_ctx_at(2, levels[li]);
        if (!ctx)
            continue;
        lr_autocorr *ac = NULL;
        REQUIRE(lr_autocorr_create(ctx, L, &ac) == LR_OK);
        for (int ci = 0; ci < 2; ci++)
            for (int fi = 0; fi < 2; fi++)
                for (int ki = 0; ki < 2; ki++)
                    for (int with_bias = 0; with_bias < 2; with_bias++) {
                        const int64_t C = channels[ci], S = key_lens[ki], n = B * L * C;
                        float *q = random_tensor((size_t)n), *k = random_tensor((size_t)(B * S * C));
                        float *v = random_tensor((size_t)(B * S * C)), *bias = random_tensor((size_t)C);
                        float *x = random_tensor((size_t)n), *out = malloc((size_t)n * sizeof *out);
                        float *want = malloc((size_t)n * sizeof *want);
                        REQUIRE(q && k && v && bias && x && out && want);
                        REQUIRE(lr_autocorr_forward(ctx, ac, B, C, C, q, k, v, S, factors[fi], LR_AUTOCORR_INFERENCE,
                                                    out) == LR_OK);
                        for (int64_t i = 0; i < n; i++)
                            want[i] = x[i] + (with_bias ? out[i] + bias[i % C] : out[i]);
                        CHECK(lr_autocorr_forward_add(ctx, ac, B, C, C, q, k, v, S, factors[fi],
                                                      LR_AUTOCORR_INFERENCE, with_bias ? bias : NULL, x) == LR_OK);
                        CHECKF(memcmp(x, want, (size_t)n * sizeof *x) == 0,
                               "%s: %lld channels, factor %g, %lld keys, bias %d", lr_cpu_level_name(levels[li]),
                               (long long)C, factors[fi], (long long)S, with_bias);
                        free(q);
                        free(k);
                        free(v);
                        free(bias);
                        free(x);
                        free(out);
                        free(want);
                    }
        lr_autocorr_destroy(ac);
        lr_ctx_destroy(ctx);
    }
}

static void test_errors_and_edges(void)
{
    lr_ctx *ctx = make_ctx(1, LR_CPU_REF);
    REQUIRE(ctx);
    lr_autocorr *ac = (lr_autocorr *)&ac;
    CHECK(lr_autocorr_create(ctx, 0, &ac) == LR_ERR_ARG && ac == NULL);
    REQUIRE(lr_autocorr_create(ctx, 8, &ac) == LR_OK);
    float x[8 * 2], out[8 * 2];
    for (int i = 0; i < 16; i++)
        x[i] = random_float();
    /* factor 0: no delays, the output is zero */
    memset(out, 0xff, sizeof out);
    CHECK(lr_autocorr_forward(ctx, ac, 1, 2, 2, x, x, x, 8, 0.0, LR_AUTOCORR_INFERENCE, out) == LR_OK);
    for (int i = 0; i < 16; i++)
        CHECK(out[i] == 0.0f);
    /* more delays than steps */
    CHECK(lr_autocorr_forward(ctx, ac, 1, 2, 2, x, x, x, 8, 10.0, LR_AUTOCORR_INFERENCE, out) == LR_ERR_ARG);
    CHECK(strstr(lr_ctx_last_error(ctx), "delays for length 8") != NULL);
    CHECK(lr_autocorr_forward(ctx, ac, 1, 2, 2, x, x, x, 8, -1.0, LR_AUTOCORR_INFERENCE, out) == LR_ERR_ARG);
    CHECK(lr_autocorr_correlate(ctx, ac, 1, 0, x, x, 8, out) == LR_ERR_ARG);
    CHECK(lr_autocorr_correlate(ctx, ac, 1, 2, NULL, x, 8, out) == LR_ERR_ARG);
    int64_t bad_delay = 8;
    float w = 1;
    CHECK(lr_autocorr_aggregate(ctx, 1, 8, 2, x, 8, 1, &bad_delay, &w, out) == LR_ERR_ARG);
    lr_autocorr_destroy(ac);
    lr_autocorr_destroy(NULL);
    lr_ctx_destroy(ctx);
}

int main(void)
{
    seed_random(4242);
    RUN(test_correlation_direct);
    RUN(test_sign_convention);
    RUN(test_select);
    RUN(test_aggregate_explicit);
    RUN(test_forward_threads);
    RUN(test_forward_add);
    RUN(test_errors_and_edges);
    return CHECK_DONE();
}
