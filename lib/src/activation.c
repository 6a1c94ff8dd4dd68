/* GELU and SiLU in place (longrange/activation.h).
 *
 * Both are written with GCC/Clang vector extensions, so one source runs 4, 8 or 16 lanes at
 * a time (baseline, AVX2, AVX-512 clones picked by the caller's CPU level); every lane does
 * the same IEEE operations one statement at a time (nothing to contract into an FMA under
 * -std=c11), so all widths give the same bits. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "longrange/activation.h"

/* GELU, 0.5 x (1 + erf(x / sqrt 2)), with erf in float as x P(x^2) / Q(x^2), |x| clamped to
 * 3.92 (where erf is 1 in float), coefficients fitted here (rational least squares with
 * Loeb's reweighting) to erf on [0, 3.92]: at most 4e-7 from the true erf in float
 * arithmetic, as close as PyTorch's own vectorised erf; NaN stays NaN. */
#define GELU_BODY(VF, VI)                                                                     \
    {                                                                                         \
        VF c, u, p, q, e, zero = {0}, bound = zero + 3.92f, one = zero + 1.0f;                \
        VI mask;                                                                              \
        c = x * 0.70710678118654752f;                                                         \
        mask = c > bound;                                                                     \
        c = (VF)(((VI)bound & mask) | ((VI)c & ~mask));                                       \
        mask = c < -bound;                                                                    \
        c = (VF)(((VI)-bound & mask) | ((VI)c & ~mask));                                      \
        u = c * c;                                                                            \
        p = u * -1.3258706133001397e-08f;                                                     \
        p = p + 4.704257662524469e-06f;                                                       \
        p = p * u;                                                                            \
        p = p + 0.00037984305527061224f;                                                      \
        p = p * u;                                                                            \
        p = p + 0.0038289434742182493f;                                                       \
        p = p * u;                                                                            \
        p = p + 0.054260529577732086f;                                                        \
        p = p * u;                                                                            \
        p = p + 0.18465091288089752f;                                                         \
        p = p * u;                                                                            \
        p = p + 1.128379225730896f;                                                           \
        q = u * 6.329327879939228e-05f;                                                       \
        q = q + 0.00130363495554775f;                                                         \
        q = q * u;                                                                            \
        q = q + 0.01542214211076498f;                                                         \
        q = q * u;                                                                            \
        q = q + 0.11374494433403015f;                                                         \
        q = q * u;                                                                            \
        q = q + 0.4969761371612549f;                                                          \
        q = q * u;                                                                            \
        q = q + 1.0f;                                                                         \
        e = c * p;                                                                            \
        e = e / q;                                                                            \
        mask = e > one;                                                                       \
        e = (VF)(((VI)one & mask) | ((VI)e & ~mask));                                         \
        mask = e < -one;                                                                      \
        e = (VF)(((VI)-one & mask) | ((VI)e & ~mask));                                        \
        e = e + 1.0f;                                                                         \
        x = x * 0.5f;                                                                         \
        x = x * e;                                                                            \
    }

/* SiLU, x / (1 + exp(-x)), with exp in float: -x clamped to [-87, 88] (beyond, the result is
 * x or a value below 1e-36 in magnitude either way), split as k ln 2 + r with |r| <= ln 2 / 2
 * (Cody-Waite, ln 2 in two parts), exp(r) by its Taylor polynomial of degree 7 (error below
 * 1e-8 on that interval), 2^k put into the exponent bits; NaN stays NaN. */
#define SILU_BODY(VF, VI)                                                                     \
    {                                                                                         \
        VF z, t, kf, q, p, e, zero = {0}, lo = zero - 87.0f, hi = zero + 88.0f;               \
        VI mask, k;                                                                           \
        z = zero - x;                                                                         \
        mask = z == z; /* NaN to 0 before the conversion to integers */                      \
        z = (VF)((VI)z & mask);                                                               \
        mask = z < lo;                                                                        \
        z = (VF)(((VI)lo & mask) | ((VI)z & ~mask));                                          \
        mask = z > hi;                                                                        \
        z = (VF)(((VI)hi & mask) | ((VI)z & ~mask));                                          \
        t = z * 1.44269504088896341f;                                                         \
        t = t + 0.5f;                                                                         \
        k = __builtin_convertvector(t, VI); /* toward zero, then down to the floor */        \
        kf = __builtin_convertvector(k, VF);                                                  \
        mask = kf > t;                                                                        \
        k = k + mask;                                                                         \
        kf = __builtin_convertvector(k, VF);                                                  \
        q = kf * 0.693359375f;                                                                \
        z = z - q;                                                                            \
        q = kf * -2.12194440e-4f;                                                             \
        z = z - q;                                                                            \
        p = z * 1.98412698e-4f;                                                               \
        p = p + 1.38888889e-3f;                                                               \
        p = p * z;                                                                            \
        p = p + 8.33333333e-3f;                                                               \
        p = p * z;                                                                            \
        p = p + 4.16666667e-2f;                                                               \
        p = p * z;                                                                            \
        p = p + 0.166666667f;                                                                 \
        p = p * z;                                                                            \
        p = p + 0.5f;                                                                         \
        p = p * z;                                                                            \
        p = p + 1.0f;                                                                         \
        p = p * z;                                                                            \
        p = p + 1.0f;                                                                         \
        k = (k + 127) << 23;                                                                  \
        e = p * (VF)k;                                                                        \
        e = e + 1.0f;                                                                         \
        x = x / e;                                                                            \
    }

/* A row function: BODY maps the vector x in place, lanes at a time; without `tail` it stops
 * before a partial vector and returns how far it got, with `tail` it zero-fills the last one.
 * Full vectors move with a constant-size memcpy (one vector load or store; a run-time size
 * would become a string copy through the stack). */
#define ROW_FN(NAME, ATTR, VF, VI, BODY)                                                      \
    ATTR static int64_t NAME(float *r, int64_t n, bool tail)                                  \
    {                                                                                         \
        const int64_t lanes = (int64_t)(sizeof(VF) / sizeof(float));                          \
        int64_t i = 0;                                                                        \
        for (; i < n && (i + lanes <= n || tail); i += lanes) {                               \
            const size_t bytes = (size_t)(n - i < lanes ? n - i : lanes) * sizeof(float);     \
            VF x = {0};                                                                       \
            if (bytes == sizeof x)                                                            \
                memcpy(&x, r + i, sizeof x);                                                  \
            else                                                                              \
                memcpy(&x, r + i, bytes);                                                     \
            BODY(VF, VI)                                                                      \
            if (bytes == sizeof x)                                                            \
                memcpy(r + i, &x, sizeof x);                                                  \
            else                                                                              \
                memcpy(r + i, &x, bytes);                                                     \
        }                                                                                     \
        return i < n ? i : n;                                                                 \
    }

typedef int64_t (*row_fn)(float *r, int64_t n, bool tail);

typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));
ROW_FN(gelu_row4, , v4f, v4i, GELU_BODY)
ROW_FN(silu_row4, , v4f, v4i, SILU_BODY)
#if defined(__GNUC__) && defined(__x86_64__)
#define WIDE 1
typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));
typedef float v16f __attribute__((vector_size(64)));
typedef int32_t v16i __attribute__((vector_size(64)));
ROW_FN(gelu_row8, __attribute__((target("avx2"))), v8f, v8i, GELU_BODY)
ROW_FN(gelu_row16, __attribute__((target("avx512f"))), v16f, v16i, GELU_BODY)
ROW_FN(silu_row8, __attribute__((target("avx2"))), v8f, v8i, SILU_BODY)
ROW_FN(silu_row16, __attribute__((target("avx512f"))), v16f, v16i, SILU_BODY)
#endif

/* The widest lanes the level allows take the whole vectors, four-lane steps the rest. */
static void run_rows(lr_cpu_level level, float *x, int64_t n, row_fn four, row_fn eight, row_fn sixteen)
{
    int64_t done = 0;
#ifdef WIDE
    if (level == LR_CPU_AVX512)
        done = sixteen(x, n, false);
    else if (level == LR_CPU_AVX2)
        done = eight(x, n, false);
#else
    (void)level, (void)eight, (void)sixteen;
#endif
    four(x + done, n - done, true);
}

#ifndef WIDE
#define gelu_row8 gelu_row4
#define gelu_row16 gelu_row4
#define silu_row8 silu_row4
#define silu_row16 silu_row4
#endif

void lr_gelu(lr_cpu_level level, float *x, int64_t n) { run_rows(level, x, n, gelu_row4, gelu_row8, gelu_row16); }

void lr_silu(lr_cpu_level level, float *x, int64_t n) { run_rows(level, x, n, silu_row4, silu_row8, silu_row16); }
