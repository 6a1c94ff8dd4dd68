/* Resampling: lr_resize against lr_resize_ref at awkward sizes (1xN, Nx1, up, down, mixed,
 * non-integer ratios, 1 to 4 channels, both filters, with and without antialias, a = -0.5 and
 * -0.75); identity sizes return the input exactly; constant images stay constant (weights
 * sum to 1); bit-identical output for 1, 2 and 3 threads; PyTorch parity from
 * tests/fixtures/resize (tools/make_resize_fixtures.py, F.interpolate with align_corners=False,
 * within 1e-5); argument errors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kernel_test.h"
#include "longrange/core.h"
#include "longrange/model.h"
#include "longrange/resize.h"

#define FIXTURE_TOL 1e-5
#define REF_TOL 2e-6 /* relative to max |in|: float weights and accumulation vs double */

static float *random_image(size_t n)
{
    float *p = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        p[i] = random_float();
    return p;
}

static double max_diff(const float *a, const float *b, size_t n)
{
    double e = 0;
    for (size_t i = 0; i < n; i++)
        e = fmax(e, fabs((double)a[i] - (double)b[i]));
    return e;
}

static const lr_resize_desc DESCS[] = {
    {LR_RESIZE_BILINEAR, 0, false},   {LR_RESIZE_BILINEAR, 0, true},
    {LR_RESIZE_BICUBIC, -0.75, false}, {LR_RESIZE_BICUBIC, 0, false},
    {LR_RESIZE_BICUBIC, -0.5, true},  {LR_RESIZE_BICUBIC, -0.75, true},
};
#define N_DESCS (sizeof DESCS / sizeof *DESCS)

static void test_fast_vs_ref(void)
{
    static const int sizes[][5] = {
        /* c, h_in, w_in, h_out, w_out */
        {1, 1, 1, 1, 7},   {1, 1, 9, 1, 4},    {4, 1, 13, 3, 29}, {3, 7, 1, 19, 1},
        {1, 2, 2, 5, 3},   {3, 10, 10, 7, 13}, {4, 17, 23, 6, 9}, {2, 31, 5, 4, 11},
        {1, 40, 40, 3, 3}, {3, 9, 14, 9, 31},  {2, 13, 8, 29, 8}, {1, 100, 3, 7, 2},
        {3, 5, 6, 1, 1},   {1, 64, 64, 21, 96},
    };
    lr_ctx *ctx = make_ctx(2, LR_CPU_AVX512);
    REQUIRE(ctx);
    seed_random(7);
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        const int *z = sizes[s];
        size_t n_in = (size_t)z[0] * z[1] * z[2], n_out = (size_t)z[0] * z[3] * z[4];
        float *in = random_image(n_in), *got = malloc(n_out * sizeof(float)),
              *want = malloc(n_out * sizeof(float));
        for (size_t k = 0; k < N_DESCS; k++) {
            CHECK(lr_resize(ctx, &DESCS[k], in, z[0], z[1], z[2], got, z[3], z[4]) == LR_OK);
            CHECK(lr_resize_ref(ctx, &DESCS[k], in, z[0], z[1], z[2], want, z[3], z[4]) == LR_OK);
            double e = max_diff(got, want, n_out);
            CHECKF(e <= REF_TOL, "c%d %dx%d -> %dx%d desc %zu: max error %.3g", z[0], z[1], z[2],
                   z[3], z[4], k, e);
        }
        free(in);
        free(got);
        free(want);
    }
    lr_ctx_destroy(ctx);
}

static void test_identity_and_constant(void)
{
    lr_ctx *ctx = make_ctx(2, LR_CPU_AVX512);
    REQUIRE(ctx);
    seed_random(11);
    const int c = 3, h = 11, w = 17;
    size_t n = (size_t)c * h * w;
    float *in = random_image(n), *out = malloc(n * sizeof(float));
    for (size_t k = 0; k < N_DESCS; k++) {
        CHECK(lr_resize(ctx, &DESCS[k], in, c, h, w, out, h, w) == LR_OK);
        CHECK(memcmp(in, out, n * sizeof(float)) == 0);
        CHECK(lr_resize_ref(ctx, &DESCS[k], in, c, h, w, out, h, w) == LR_OK);
        CHECK(memcmp(in, out, n * sizeof(float)) == 0);
    }
    /* a constant image stays constant at any size (weights sum to 1, borders replicated) */
    for (size_t i = 0; i < n; i++)
        in[i] = 0.625f;
    const int outs[][2] = {{5, 40}, {23, 4}, {1, 1}, {30, 30}};
    for (size_t s = 0; s < 4; s++) {
        size_t m = (size_t)c * outs[s][0] * outs[s][1];
        float *o = malloc(m * sizeof(float));
        for (size_t k = 0; k < N_DESCS; k++) {
            CHECK(lr_resize(ctx, &DESCS[k], in, c, h, w, o, outs[s][0], outs[s][1]) == LR_OK);
            for (size_t i = 0; i < m; i++)
                CHECKF(fabsf(o[i] - 0.625f) <= 1e-6f, "constant image: %g", o[i]);
        }
        free(o);
    }
    free(in);
    free(out);
    lr_ctx_destroy(ctx);
}

static void test_threads_bit_identical(void)
{
    static const int shapes[][5] = {{3, 37, 53, 71, 19}, {2, 40, 30, 97, 61}, {1, 90, 70, 17, 33}};
    seed_random(3);
    for (int s = 0; s < 3; s++) {
        const int *z = shapes[s];
        size_t n_out = (size_t)z[0] * z[3] * z[4];
        float *in = random_image((size_t)z[0] * z[1] * z[2]);
        for (size_t k = 0; k < N_DESCS; k++) {
            float *outs[3];
            for (int t = 0; t < 3; t++) {
                outs[t] = malloc(n_out * sizeof(float));
                lr_ctx *ctx = make_ctx(t + 1, LR_CPU_AVX512);
                REQUIRE(ctx);
                CHECK(lr_resize(ctx, &DESCS[k], in, z[0], z[1], z[2], outs[t], z[3], z[4]) == LR_OK);
                lr_ctx_destroy(ctx);
            }
            CHECKF(memcmp(outs[0], outs[1], n_out * sizeof(float)) == 0 &&
                       memcmp(outs[0], outs[2], n_out * sizeof(float)) == 0,
                   "shape %d desc %zu differs between thread counts", s, k);
            for (int t = 0; t < 3; t++)
                free(outs[t]);
        }
        free(in);
    }
}

static void check_fixture(lr_ctx *ctx, const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "tests/fixtures/resize/%s.safetensors", name);
    lr_model *m = NULL;
    if (lr_model_open(ctx, path, &m) != LR_OK) {
        CHECKF(false, "%s", lr_ctx_last_error(ctx));
        return;
    }
    lr_tensor in, want;
    double a = 0;
    int64_t aa = 0;
    const char *filter = lr_model_meta(m, "filter");
    bool ok = filter && lr_model_meta_int(ctx, m, "antialias", false, 0, &aa) == LR_OK &&
              lr_model_meta_float(ctx, m, "cubic_a", false, 0, &a) == LR_OK &&
              lr_model_get(ctx, m, "in", LR_F32, 3, NULL, &in) == LR_OK &&
              lr_model_get(ctx, m, "out", LR_F32, 3, NULL, &want) == LR_OK &&
              in.shape[0] == want.shape[0];
    CHECKF(ok, "%s: %s", name, lr_ctx_last_error(ctx));
    if (ok) {
        lr_resize_desc d = {strcmp(filter, "bicubic") ? LR_RESIZE_BILINEAR : LR_RESIZE_BICUBIC, a,
                            aa != 0};
        int c = (int)in.shape[0], hi = (int)in.shape[1], wi = (int)in.shape[2];
        int ho = (int)want.shape[1], wo = (int)want.shape[2];
        size_t n = (size_t)c * ho * wo;
        float *got = malloc(n * sizeof(float));
        for (int pass = 0; pass < 2; pass++) {
            lr_status s = (pass ? lr_resize_ref : lr_resize)(ctx, &d, in.data, c, hi, wi, got, ho, wo);
            CHECKF(s == LR_OK, "%s: %s", name, lr_ctx_last_error(ctx));
            double e = max_diff(got, want.data, n);
            CHECKF(e <= FIXTURE_TOL, "%s (%s): max error %.3g vs PyTorch", name,
                   pass ? "ref" : "fast", e);
            if (pass == 0)
                printf("  %s: max error %.3g vs PyTorch\n", name, e);
        }
        free(got);
    }
    lr_model_close(m);
}

static void test_pytorch_parity(void)
{
    static const char *const names[] = {
        "bilinear_up",      "bilinear_down",     "bilinear_mixed",  "bicubic_up",
        "bicubic_down",     "bicubic_row",       "bilinear_aa_down", "bilinear_aa_mixed",
        "bicubic_aa_down",  "bicubic_aa_same_h",
    };
    lr_ctx *ctx = make_ctx(2, LR_CPU_AVX512);
    REQUIRE(ctx);
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        check_fixture(ctx, names[i]);
    lr_ctx_destroy(ctx);
}

static void test_bad_args(void)
{
    lr_ctx *ctx = make_ctx(1, LR_CPU_REF);
    REQUIRE(ctx);
    float in[4] = {0}, out[4];
    lr_resize_desc d = {LR_RESIZE_BILINEAR, 0, false};
    lr_resize_desc bad_filter = {(lr_resize_filter)7, 0, false};
    lr_resize_desc bad_a = {LR_RESIZE_BICUBIC, NAN, false};
    for (int pass = 0; pass < 2; pass++) {
        lr_status (*fn)(lr_ctx *, const lr_resize_desc *, const float *, int, int, int, float *,
                        int, int) = pass ? lr_resize_ref : lr_resize;
        CHECK(fn(ctx, NULL, in, 1, 2, 2, out, 2, 2) == LR_ERR_ARG);
        CHECK(fn(ctx, &d, NULL, 1, 2, 2, out, 2, 2) == LR_ERR_ARG);
        CHECK(fn(ctx, &d, in, 1, 2, 2, NULL, 2, 2) == LR_ERR_ARG);
        CHECK(fn(ctx, &d, in, 0, 2, 2, out, 2, 2) == LR_ERR_ARG);
        CHECK(fn(ctx, &d, in, 1, 0, 2, out, 2, 2) == LR_ERR_ARG);
        CHECK(fn(ctx, &d, in, 1, 2, 2, out, 2, -1) == LR_ERR_ARG);
        CHECK(fn(ctx, &bad_filter, in, 1, 2, 2, out, 2, 2) == LR_ERR_ARG);
        CHECK(fn(ctx, &bad_a, in, 1, 2, 2, out, 2, 2) == LR_ERR_ARG);
        CHECK(strstr(lr_ctx_last_error(ctx), "cubic_a") != NULL);
    }
    lr_ctx_destroy(ctx);
}

int main(void)
{
    RUN(test_fast_vs_ref);
    RUN(test_identity_and_constant);
    RUN(test_threads_bit_identical);
    RUN(test_pytorch_parity);
    RUN(test_bad_args);
    return CHECK_DONE();
}
