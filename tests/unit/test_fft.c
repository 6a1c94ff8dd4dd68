/* lr_fft_forward / lr_fft_inverse against the DFT evaluated directly in double (O(n^2)) at
 * small, odd, smooth and prime lengths, against a double-precision radix-2 FFT at large
 * powers of two, and the round trip.
 *
 * Tolerance: the error is measured relative to the reference's overall size,
 * ||X - X_ref||_2 / ||X_ref||_2 (and the largest single error over the largest reference
 * value). A float FFT's error grows like eps * log n: 1e-6 covers every length here with a
 * good margin (measured values are printed for the largest cases). */
#include <complex.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "kernel_test.h"
#include "longrange/core.h"
#include "longrange/fft.h"

static double complex unit_root(int64_t num, int64_t den)
{
    int64_t r = num % den;
    if (r < 0)
        r += den;
    double angle = -2.0 * M_PI * (double)r / (double)den;
    return cos(angle) + I * sin(angle);
}

/* roots[j] = e^(-2 pi i j / n): the direct DFTs index it with k t mod n. */
static double complex *roots_of_unity(int64_t n)
{
    double complex *roots = malloc((size_t)n * sizeof *roots);
    for (int64_t j = 0; roots && j < n; j++)
        roots[j] = unit_root(j, n);
    return roots;
}

/* X[k] = sum_t x[t] e^(-2 pi i k t / n), k = 0..n/2 */
static void dft_forward(const float *x, int64_t n, const double complex *roots, double complex *X)
{
    for (int64_t k = 0; k <= n / 2; k++) {
        double complex sum = 0;
        for (int64_t t = 0, kt = 0; t < n; t++, kt = (kt + k) % n)
            sum += x[t] * roots[kt];
        X[k] = sum;
    }
}

/* x[t] = sum_k X[k] e^(+2 pi i k t / n) over the Hermitian extension of X[0..n/2]. */
static void dft_inverse(const double complex *X, int64_t n, const double complex *roots, double *x)
{
    for (int64_t t = 0; t < n; t++) {
        double sum = creal(X[0]);
        for (int64_t k = 1, kt = t % n; k < n - k; k++, kt = (kt + t) % n)
            sum += 2 * creal(X[k] * conj(roots[kt]));
        if (n % 2 == 0)
            sum += creal(X[n / 2]) * (t % 2 ? -1 : 1);
        x[t] = sum;
    }
}

/* In-place double-precision radix-2 FFT (n a power of two), the reference at large n. */
static void fft_double(double complex *a, int64_t n, const double complex *roots)
{
    for (int64_t i = 1, j = 0; i < n; i++) {
        int64_t bit = n >> 1;
        for (; j & bit; bit >>= 1)
            j ^= bit;
        j ^= bit;
        if (i < j) {
            double complex t = a[i];
            a[i] = a[j];
            a[j] = t;
        }
    }
    for (int64_t len = 2; len <= n; len <<= 1)
        for (int64_t i = 0; i < n; i += len)
            for (int64_t k = 0; k < len / 2; k++) {
                double complex w = roots[k * (n / len)];
                double complex u = a[i + k], v = a[i + k + len / 2] * w;
                a[i + k] = u + v;
                a[i + k + len / 2] = u - v;
            }
}

typedef struct {
    double rel_l2, rel_max;
} error;

static error spectrum_error(const float *got, const double complex *ref, int64_t bins)
{
    double diff2 = 0, ref2 = 0, diff_max = 0, ref_max = 0;
    for (int64_t k = 0; k < bins; k++) {
        double complex d = got[2 * k] + I * got[2 * k + 1] - ref[k];
        diff2 += creal(d * conj(d));
        ref2 += creal(ref[k] * conj(ref[k]));
        diff_max = fmax(diff_max, cabs(d));
        ref_max = fmax(ref_max, cabs(ref[k]));
    }
    error e = {ref2 > 0 ? sqrt(diff2 / ref2) : sqrt(diff2), ref_max > 0 ? diff_max / ref_max : diff_max};
    return e;
}

static error signal_error(const float *got, const double *ref, int64_t n)
{
    double diff2 = 0, ref2 = 0, diff_max = 0, ref_max = 0;
    for (int64_t t = 0; t < n; t++) {
        double d = got[t] - ref[t];
        diff2 += d * d;
        ref2 += ref[t] * ref[t];
        diff_max = fmax(diff_max, fabs(d));
        ref_max = fmax(ref_max, fabs(ref[t]));
    }
    error e = {ref2 > 0 ? sqrt(diff2 / ref2) : sqrt(diff2), ref_max > 0 ? diff_max / ref_max : diff_max};
    return e;
}

#define TOL_L2 1e-6
#define TOL_MAX 1e-5

static double worst_l2; /* the largest relative L2 error seen by check_length_direct */

/* Forward and inverse at length n against the direct DFT; round trip. */
static void check_length_direct(int64_t n)
{
    lr_fft_plan *plan = NULL;
    REQUIRE(lr_fft_plan_create(NULL, n, &plan) == LR_OK);
    CHECK(lr_fft_length(plan) == n);
    int64_t bins = n / 2 + 1;
    float *x = malloc((size_t)n * sizeof *x), *spec = malloc((size_t)bins * 2 * sizeof *spec);
    float *back = malloc((size_t)n * sizeof *back);
    double complex *ref = malloc((size_t)bins * sizeof *ref);
    double *ref_x = malloc((size_t)n * sizeof *ref_x);
    void *work = malloc(lr_fft_workspace_bytes(plan));
    double complex *roots = roots_of_unity(n);
    REQUIRE(x && spec && back && ref && ref_x && work && roots);
    for (int64_t t = 0; t < n; t++)
        x[t] = random_float();

    CHECK(lr_fft_forward(NULL, plan, x, spec, work) == LR_OK);
    dft_forward(x, n, roots, ref);
    error e = spectrum_error(spec, ref, bins);
    worst_l2 = fmax(worst_l2, e.rel_l2);
    CHECKF(e.rel_l2 < TOL_L2 && e.rel_max < TOL_MAX, "n=%lld forward: rel L2 %.3g, rel max %.3g", (long long)n,
           e.rel_l2, e.rel_max);

    /* Inverse of a random Hermitian spectrum; the imaginary parts of DC and Nyquist are
     * garbage the transform must ignore. */
    for (int64_t k = 0; k < bins; k++) {
        spec[2 * k] = random_float();
        spec[2 * k + 1] = random_float();
        ref[k] = spec[2 * k] + I * spec[2 * k + 1];
    }
    ref[0] = creal(ref[0]);
    if (n % 2 == 0)
        ref[n / 2] = creal(ref[n / 2]);
    CHECK(lr_fft_inverse(NULL, plan, spec, back, NULL) == LR_OK);
    dft_inverse(ref, n, roots, ref_x);
    e = signal_error(back, ref_x, n);
    worst_l2 = fmax(worst_l2, e.rel_l2);
    CHECKF(e.rel_l2 < TOL_L2 && e.rel_max < TOL_MAX, "n=%lld inverse: rel L2 %.3g, rel max %.3g", (long long)n,
           e.rel_l2, e.rel_max);

    /* round trip: inverse(forward(x)) = n x */
    CHECK(lr_fft_forward(NULL, plan, x, spec, NULL) == LR_OK);
    CHECK(lr_fft_inverse(NULL, plan, spec, back, work) == LR_OK);
    for (int64_t t = 0; t < n; t++)
        ref_x[t] = (double)n * x[t];
    e = signal_error(back, ref_x, n);
    CHECKF(e.rel_l2 < TOL_L2 && e.rel_max < TOL_MAX, "n=%lld round trip: rel L2 %.3g", (long long)n, e.rel_l2);

    free(x);
    free(spec);
    free(back);
    free(ref);
    free(ref_x);
    free(work);
    free(roots);
    lr_fft_plan_destroy(plan);
}

static void test_small_and_odd_lengths(void)
{
    for (int64_t n = 1; n <= 64; n++)
        check_length_direct(n);
}

static void test_model_lengths(void)
{
    /* radix 2..5 (96, 720, 1000, 1024, 4096, odd 375 and 405), with 7, 11, 13 (336, 1001,
     * 14014), Bluestein: primes (97, 10007), even with a large prime factor (2 * 509,
     * 2 * 2053, 2 * 17 * 17) */
    static const int64_t lengths[] = {96, 97, 100, 128, 336, 375, 405, 720, 1000, 1001, 1018, 1024, 2 * 17 * 17,
                                      4096, 4106, 10007, 2 * 7 * 7 * 11 * 13};
    worst_l2 = 0;
    for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++)
        check_length_direct(lengths[i]);
    printf("  largest relative L2 error, forward or inverse, over these lengths: %.2e\n", worst_l2);
}

/* Large powers of two against the double radix-2 FFT, and the round trip. */
static void check_length_large(int64_t n)
{
    lr_fft_plan *plan = NULL;
    REQUIRE(lr_fft_plan_create(NULL, n, &plan) == LR_OK);
    int64_t bins = n / 2 + 1;
    float *x = malloc((size_t)n * sizeof *x), *spec = malloc((size_t)bins * 2 * sizeof *spec);
    float *back = malloc((size_t)n * sizeof *back);
    double complex *ref = malloc((size_t)n * sizeof *ref);
    double *ref_x = malloc((size_t)n * sizeof *ref_x);
    double complex *roots = roots_of_unity(n);
    REQUIRE(x && spec && back && ref && ref_x && roots);
    for (int64_t t = 0; t < n; t++) {
        x[t] = random_float();
        ref[t] = x[t];
    }
    CHECK(lr_fft_forward(NULL, plan, x, spec, NULL) == LR_OK);
    fft_double(ref, n, roots);
    error e = spectrum_error(spec, ref, bins);
    printf("  n=%lld: forward rel L2 error %.2e, rel max %.2e\n", (long long)n, e.rel_l2, e.rel_max);
    CHECKF(e.rel_l2 < TOL_L2 && e.rel_max < TOL_MAX, "n=%lld forward: rel L2 %.3g, rel max %.3g", (long long)n,
           e.rel_l2, e.rel_max);
    CHECK(lr_fft_inverse(NULL, plan, spec, back, NULL) == LR_OK);
    for (int64_t t = 0; t < n; t++)
        ref_x[t] = (double)n * x[t];
    e = signal_error(back, ref_x, n);
    printf("  n=%lld: round trip rel L2 error %.2e\n", (long long)n, e.rel_l2);
    CHECKF(e.rel_l2 < TOL_L2 && e.rel_max < TOL_MAX, "n=%lld round trip: rel L2 %.3g", (long long)n, e.rel_l2);
    free(x);
    free(spec);
    free(back);
    free(ref);
    free(ref_x);
    free(roots);
    lr_fft_plan_destroy(plan);
}

static void test_large_powers_of_two(void)
{
    check_length_large(1 << 16);
    check_length_large(1 << 21);
}

/* A pure tone lands in its bin: a check that does not depend on any reference code. */
static void test_tone(void)
{
    const int64_t n = 1000, f = 37;
    lr_fft_plan *plan = NULL;
    REQUIRE(lr_fft_plan_create(NULL, n, &plan) == LR_OK);
    float x[1000], spec[2 * 501];
    for (int64_t t = 0; t < n; t++)
        x[t] = (float)cos(2 * M_PI * (double)(f * t % n) / (double)n);
    CHECK(lr_fft_forward(NULL, plan, x, spec, NULL) == LR_OK);
    for (int64_t k = 0; k <= n / 2; k++) {
        double expect = k == f ? n / 2.0 : 0.0;
        CHECKF(fabs(spec[2 * k] - expect) < 1e-3 && fabs(spec[2 * k + 1]) < 1e-3, "bin %lld: %g %g", (long long)k,
               spec[2 * k], spec[2 * k + 1]);
    }
    lr_fft_plan_destroy(plan);
}

static void test_errors(void)
{
    lr_ctx *ctx = NULL;
    lr_ctx_params p = lr_ctx_default_params();
    p.n_threads = 1;
    REQUIRE(lr_ctx_create(&ctx, &p) == LR_OK);
    lr_fft_plan *plan = (lr_fft_plan *)&plan;
    CHECK(lr_fft_plan_create(ctx, 0, &plan) == LR_ERR_ARG && plan == NULL);
    CHECK(strstr(lr_ctx_last_error(ctx), "length 0") != NULL);
    CHECK(lr_fft_plan_create(ctx, -5, &plan) == LR_ERR_ARG);
    CHECK(lr_fft_plan_create(ctx, 16, NULL) == LR_ERR_ARG);
    REQUIRE(lr_fft_plan_create(ctx, 16, &plan) == LR_OK);
    float buf[34];
    CHECK(lr_fft_forward(ctx, plan, NULL, buf, NULL) == LR_ERR_ARG);
    CHECK(lr_fft_inverse(ctx, plan, buf, NULL, NULL) == LR_ERR_ARG);
    CHECK(lr_fft_forward(ctx, NULL, buf, buf, NULL) == LR_ERR_ARG);
    lr_fft_plan_destroy(plan);
    lr_fft_plan_destroy(NULL);
    lr_ctx_destroy(ctx);
}

int main(void)
{
    seed_random(7);
    RUN(test_small_and_odd_lengths);
    RUN(test_model_lengths);
    RUN(test_large_powers_of_two);
    RUN(test_tone);
    RUN(test_errors);
    return CHECK_DONE();
}
