/* Philox4x32-10 against Random123's known-answer vectors, and the normal noise built on it:
 * addressable (any slice equals the same values of a longer fill), streams independent, and
 * distributed as N(0, 1). */
#include <math.h>
#include <stdlib.h>

#include "check.h"
#include "longrange/rng.h"

static void test_philox_known_answers(void)
{
    /* kat_vectors of Random123 1.09: philox4x32 10 rounds (counter, key -> output). */
    static const uint32_t cases[3][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {~0u, ~0u, ~0u, ~0u, ~0u, ~0u, 0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09,
         0x94fdcceb, 0x5001e420, 0x24126ea1},
    };
    for (int c = 0; c < 3; c++) {
        uint32_t out[4];
        lr_philox4x32(&cases[c][4], cases[c], out);
        for (int i = 0; i < 4; i++)
            CHECKF(out[i] == cases[c][6 + i], "case %d word %d: %08x", c, i, out[i]);
    }
}

static void test_normal_addressable(void)
{
    enum { N = 1003 };
    float *all = malloc(N * sizeof *all), *part = malloc(N * sizeof *part);
    REQUIRE(all && part);
    lr_normal_fill(42, 7, 0, all, N);
    /* Slices starting anywhere (inside a block of four too) give the same values. */
    const size_t starts[] = {0, 1, 3, 4, 5, 517, 1000};
    for (size_t s = 0; s < sizeof starts / sizeof *starts; s++) {
        lr_normal_fill(42, 7, starts[s], part, N - starts[s]);
        CHECK(memcmp(part, all + starts[s], (N - starts[s]) * sizeof *part) == 0);
    }
    /* Another stream or seed: other values. */
    lr_normal_fill(42, 8, 0, part, N);
    int same = 0;
    for (int i = 0; i < N; i++)
        same += part[i] == all[i];
    CHECK(same == 0);
    lr_normal_fill(43, 7, 0, part, N);
    same = 0;
    for (int i = 0; i < N; i++)
        same += part[i] == all[i];
    CHECK(same == 0);
    free(all);
    free(part);
}

static void test_normal_moments(void)
{
    enum { N = 1 << 20 };
    float *v = malloc(N * sizeof *v);
    REQUIRE(v);
    lr_normal_fill(1, 0, 0, v, N);
    double m1 = 0, m2 = 0, m3 = 0, m4 = 0, lag = 0;
    int beyond2 = 0;
    for (int i = 0; i < N; i++) {
        const double x = v[i];
        m1 += x;
        m2 += x * x;
        m3 += x * x * x;
        m4 += x * x * x * x;
        beyond2 += fabs(x) > 2.0;
        if (i)
            lag += x * v[i - 1];
        CHECK(isfinite(x) && fabs(x) <= 6.67);
    }
    m1 /= N, m2 /= N, m3 /= N, m4 /= N, lag /= N - 1;
    /* Standard errors at 2^20 samples: mean 0.001, variance 0.0014, third 0.0024, fourth 0.01. */
    CHECKF(fabs(m1) < 0.005, "mean %g", m1);
    CHECKF(fabs(m2 - 1.0) < 0.007, "variance %g", m2);
    CHECKF(fabs(m3) < 0.012, "third moment %g", m3);
    CHECKF(fabs(m4 - 3.0) < 0.05, "fourth moment %g", m4);
    CHECKF(fabs(lag) < 0.005, "lag-1 correlation %g", lag);
    /* P(|x| > 2) = 0.0455. */
    CHECKF(fabs((double)beyond2 / N - 0.0455) < 0.001, "P(|x|>2) %g", (double)beyond2 / N);
    free(v);
}

int main(void)
{
    RUN(test_philox_known_answers);
    RUN(test_normal_addressable);
    RUN(test_normal_moments);
    return CHECK_DONE();
}
