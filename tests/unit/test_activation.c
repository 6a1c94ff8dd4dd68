/* lr_silu against x / (1 + exp(-x)) in double over a sweep beyond the clamp: within 6 float
 * ulps of the value (1e-33 absolute below -80, where exp(-x) is clamped); the same bits at
 * every CPU level; NaN stays NaN.
 *
 * lr_gelu against GELU in double with libm's erf over a sweep of values (and every tail
 * length): within 4e-7 * |x| / 2 plus a few float roundings of the result; the same bits at
 * every CPU level; NaN stays NaN, +inf stays +inf and -inf gives NaN (-inf * 0), as PyTorch's
 * gelu does. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "longrange/activation.h"

static double gelu_exact(double x) { return 0.5 * x * (1.0 + erf(x / sqrt(2.0))); }

static void test_accuracy_and_levels(void)
{
    enum { N = 200003 }; /* not a multiple of 4, 8 or 16: every path's tail runs */
    float *x = malloc(N * sizeof *x), *y[3];
    for (int l = 0; l < 3; l++)
        y[l] = malloc(N * sizeof *y[l]);
    REQUIRE(x && y[0] && y[1] && y[2]);
    for (int i = 0; i < N; i++)
        x[i] = -12.0f + 24.0f * (float)i / (float)(N - 1);
    x[0] = NAN;
    x[1] = INFINITY;
    x[2] = -INFINITY;
    x[3] = 0.0f;
    x[4] = -0.0f;
    x[5] = 1e-30f;
    static const lr_cpu_level levels[] = {LR_CPU_REF, LR_CPU_AVX2, LR_CPU_AVX512};
    for (int l = 0; l < 3; l++) {
        memcpy(y[l], x, N * sizeof *x);
        lr_gelu(levels[l], y[l], N);
    }
    double worst = 0;
    for (int i = 6; i < N; i++) {
        double want = gelu_exact(x[i]), err = fabs(y[0][i] - want);
        double bound = 2e-7 * fabs(x[i]) + 4 * 6e-8 * fabs(want) + 1e-37;
        if (err / bound > worst)
            worst = err / bound;
    }
    CHECKF(worst <= 1.0, "error up to %.3g of the bound", worst);
    CHECK(isnan(y[0][0]) && y[0][1] == INFINITY && isnan(y[0][2]) && y[0][3] == 0.0f);
    for (int l = 1; l < 3; l++)
        CHECKF(memcmp(y[0], y[l], N * sizeof *x) == 0, "level %d differs from the 4-lane result", l);
    /* short arrays: the tail alone */
    for (int n = 0; n < 20; n++) {
        float a[20], b[20];
        for (int i = 0; i < n; i++)
            a[i] = b[i] = x[1000 * i + 7];
        lr_gelu(LR_CPU_AVX512, a, n);
        lr_gelu(LR_CPU_REF, b, n);
        CHECK(memcmp(a, b, (size_t)n * sizeof *a) == 0);
    }
    free(x);
    for (int l = 0; l < 3; l++)
        free(y[l]);
}

static void test_silu(void)
{
    enum { N = 200003 };
    float *x = malloc(N * sizeof *x), *y[3];
    for (int l = 0; l < 3; l++)
        y[l] = malloc(N * sizeof *y[l]);
    REQUIRE(x && y[0] && y[1] && y[2]);
    for (int i = 0; i < N; i++)
        x[i] = -120.0f + 240.0f * (float)i / (float)(N - 1);
    x[0] = NAN;
    x[1] = 0.0f;
    x[2] = 1e-30f;
    static const lr_cpu_level levels[] = {LR_CPU_REF, LR_CPU_AVX2, LR_CPU_AVX512};
    for (int l = 0; l < 3; l++) {
        memcpy(y[l], x, N * sizeof *x);
        lr_silu(levels[l], y[l], N);
    }
    double worst = 0, at = 0;
    for (int i = 1; i < N; i++) {
        double want = (double)x[i] / (1.0 + exp(-(double)x[i])), err = fabs(y[0][i] - want);
        double bound = 6 * 6e-8 * fabs(want) + (x[i] < -80 ? 1e-33 : 1e-37);
        if (err / bound > worst)
            worst = err / bound, at = x[i];
    }
    CHECKF(worst <= 1.0, "error up to %.3g of the bound, at %g", worst, at);
    CHECK(isnan(y[0][0]) && y[0][1] == 0.0f && y[0][2] == 0.5e-30f);
    for (int l = 1; l < 3; l++)
        CHECKF(memcmp(y[0], y[l], N * sizeof *x) == 0, "level %d differs from the 4-lane result", l);
    free(x);
    for (int l = 0; l < 3; l++)
        free(y[l]);
}

int main(void)
{
    RUN(test_accuracy_and_levels);
    RUN(test_silu);
    return CHECK_DONE();
}
