/* lr_temporal_attention: PyTorch parity (tools/make_temporal_fixtures.py: plain frame-token
 * attention and FreeNoise window fusion), fast against the double reference at awkward sizes,
 * bit-identical for 1, 2 and 3 threads, a constant-value sequence reproduced exactly by any
 * window, and bad arguments. */
#include <math.h>
#include <stdlib.h>

#include "check.h"
#include "longrange/model.h"
#include "longrange/temporal.h"

#define FIXTURE_TOL 2e-6

static lr_ctx *make_ctx(int threads)
{
    lr_ctx_params p = lr_ctx_default_params();
    p.n_threads = threads;
    lr_ctx *ctx = NULL;
    return lr_ctx_create(&ctx, &p) == LR_OK ? ctx : NULL;
}

static double max_diff(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        m = d > m || d != d ? d : m;
    }
    return m;
}

static float *random_values(size_t n, unsigned seed)
{
    float *x = malloc(n * sizeof *x);
    srand(seed);
    for (size_t i = 0; x && i < n; i++)
        x[i] = (float)rand() / RAND_MAX * 4.0f - 2.0f;
    return x;
}

static void check_fixture(lr_ctx *ctx, const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "tests/fixtures/temporal/%s.safetensors", name);
    lr_model *m = NULL;
    if (lr_model_open(ctx, path, &m) != LR_OK) {
        CHECKF(false, "%s", lr_ctx_last_error(ctx));
        return;
    }
    lr_tensor q, k, v, want;
    int64_t heads = 0, window = 0, stride = 0;
    double scale = 0;
    bool ok = lr_model_meta_int(ctx, m, "heads", false, 0, &heads) == LR_OK &&
              lr_model_meta_int(ctx, m, "window", false, 0, &window) == LR_OK &&
              lr_model_meta_int(ctx, m, "stride", false, 0, &stride) == LR_OK &&
              lr_model_meta_float(ctx, m, "scale", false, 0, &scale) == LR_OK &&
              lr_model_get(ctx, m, "q", LR_F32, 3, NULL, &q) == LR_OK &&
              lr_model_get(ctx, m, "k", LR_F32, 3, q.shape, &k) == LR_OK &&
              lr_model_get(ctx, m, "v", LR_F32, 3, q.shape, &v) == LR_OK &&
              lr_model_get(ctx, m, "out", LR_F32, 3, q.shape, &want) == LR_OK;
    CHECKF(ok, "%s: %s", name, lr_ctx_last_error(ctx));
    if (ok) {
        lr_temporal_desc d = {(int)q.shape[0], (int)q.shape[1], (int)q.shape[2], (int)heads,
                              (int)window, (int)stride, (float)scale};
        size_t n = (size_t)d.frames * d.pixels * d.channels;
        float *got = malloc(n * sizeof *got);
        for (int pass = 0; got && pass < 2; pass++) {
            lr_status s = (pass ? lr_temporal_attention_ref : lr_temporal_attention)(
                ctx, &d, q.data, k.data, v.data, got);
            CHECKF(s == LR_OK, "%s: %s", name, lr_ctx_last_error(ctx));
            double e = max_diff(got, want.data, n);
            CHECKF(e <= FIXTURE_TOL, "%s (%s): max error %.3g vs PyTorch", name,
                   pass ? "ref" : "fast", e);
        }
        free(got);
    }
    lr_model_close(m);
}

static void test_pytorch_parity(void)
{
    lr_ctx *ctx = make_ctx(2);
    REQUIRE(ctx);
    static const char *const names[] = {"full", "freenoise", "uneven", "odd_window", "one_frame"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        check_fixture(ctx, names[i]);
    lr_ctx_destroy(ctx);
}

/* Awkward sizes and windows (pixels not a multiple of the task size, stride past the end). */
static void test_fast_vs_ref(void)
{
    lr_ctx *ctx = make_ctx(2);
    REQUIRE(ctx);
    static const lr_temporal_desc cases[] = {
        {5, 37, 20, 5, 0, 0, 0.0f},  {32, 33, 64, 8, 16, 4, 0.0f}, {9, 65, 6, 2, 4, 3, 0.0f},
        {17, 3, 40, 1, 16, 1, 0.3f}, {2, 100, 3, 3, 1, 1, 0.0f},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        const lr_temporal_desc *d = &cases[c];
        size_t n = (size_t)d->frames * d->pixels * d->channels;
        float *q = random_values(n, 1 + (unsigned)c), *k = random_values(n, 100 + (unsigned)c),
              *v = random_values(n, 200 + (unsigned)c), *a = malloc(n * sizeof *a),
              *b = malloc(n * sizeof *b);
        REQUIRE(q && k && v && a && b);
        CHECK(lr_temporal_attention(ctx, d, q, k, v, a) == LR_OK);
        CHECK(lr_temporal_attention_ref(ctx, d, q, k, v, b) == LR_OK);
        double e = max_diff(a, b, n);
        CHECKF(e < 2e-5, "case %zu: max error %.3g", c, e);
        free(q), free(k), free(v), free(a), free(b);
    }
    lr_ctx_destroy(ctx);
}

static void test_threads_and_constant(void)
{
    const lr_temporal_desc d = {24, 70, 32, 4, 16, 4, 0.0f};
    size_t n = (size_t)d.frames * d.pixels * d.channels;
    float *q = random_values(n, 7), *k = random_values(n, 8), *v = random_values(n, 9);
    float *out[3];
    for (int t = 0; t < 3; t++) {
        lr_ctx *ctx = make_ctx(t + 1);
        out[t] = malloc(n * sizeof(float));
        REQUIRE(ctx && out[t]);
        CHECK(lr_temporal_attention(ctx, &d, q, k, v, out[t]) == LR_OK);
        lr_ctx_destroy(ctx);
    }
    CHECK(memcmp(out[0], out[1], n * sizeof(float)) == 0);
    CHECK(memcmp(out[0], out[2], n * sizeof(float)) == 0);
    /* Values equal across frames: every window returns them, whatever the weights. */
    for (size_t i = 0; i < n; i++)
        v[i] = (float)(i % ((size_t)d.pixels * d.channels)) * 0.01f;
    lr_ctx *ctx = make_ctx(2);
    CHECK(lr_temporal_attention(ctx, &d, q, k, v, out[0]) == LR_OK);
    double e = max_diff(out[0], v, n);
    CHECKF(e < 1e-6 * d.pixels * d.channels, "constant values: max error %.3g", e);
    lr_ctx_destroy(ctx);
    for (int t = 0; t < 3; t++)
        free(out[t]);
    free(q), free(k), free(v);
}

static void test_bad_args(void)
{
    lr_ctx *ctx = make_ctx(1);
    REQUIRE(ctx);
    float x[64] = {0}, o[64];
    const lr_temporal_desc good = {2, 2, 4, 2, 0, 0, 0.0f};
    CHECK(lr_temporal_attention(ctx, &good, x, x, x, o) == LR_OK);
    lr_temporal_desc bad = good;
    bad.heads = 3;
    CHECK(lr_temporal_attention(ctx, &bad, x, x, x, o) == LR_ERR_ARG);
    bad = good;
    bad.frames = 0;
    CHECK(lr_temporal_attention(ctx, &bad, x, x, x, o) == LR_ERR_ARG);
    bad = good;
    bad.window = 1;
    bad.stride = 0;
    CHECK(lr_temporal_attention(ctx, &bad, x, x, x, o) == LR_ERR_ARG);
    bad.stride = 2; /* frames between windows */
    CHECK(lr_temporal_attention(ctx, &bad, x, x, x, o) == LR_ERR_ARG);
    bad = good;
    bad.scale = -1.0f;
    CHECK(lr_temporal_attention_ref(ctx, &bad, x, x, x, o) == LR_ERR_ARG);
    bad.scale = NAN;
    CHECK(lr_temporal_attention(ctx, &bad, x, x, x, o) == LR_ERR_ARG);
    CHECK(lr_temporal_attention(ctx, &good, NULL, x, x, o) == LR_ERR_ARG);
    lr_ctx_destroy(ctx);
}

int main(void)
{
    RUN(test_pytorch_parity);
    RUN(test_fast_vs_ref);
    RUN(test_threads_and_constant);
    RUN(test_bad_args);
    return CHECK_DONE();
}
