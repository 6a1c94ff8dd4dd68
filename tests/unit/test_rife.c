/* RIFE v4.6 (cmd/video-animate/rife.c) with models/rife-v4.6.safetensors: the PyTorch fixtures
 * of tests/fixtures/rife (tools/rife_torch.py fixtures: crops of vtest.avi frames 100 and 102
 * at sizes that need padding and one that does not, t = 0.5 and 0.3, the ncnn graph run in
 * float64) within 1e-4, also at the reference and AVX2 CPU levels; buffers reused across
 * sizes give the same result; 1, 2 and 3 threads bit-identical; a mis-shaped tensor, a wrong
 * arch and a wrong scale list refused with LR_ERR_MODEL; bad arguments. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../cmd/video-animate/rife.h"
#include "check.h"
#include "files.h"
#include "kernel_test.h"
#include "longrange/core.h"
#include "longrange/model.h"

#define MODEL_PATH "models/rife-v4.6.safetensors"
#define FIXTURE_TOL 1e-4

static const char *const FIXTURES[] = {"walk_45x70_t05", "walk_37x61_t03", "still_32x32_t05"};
#define N_FIXTURES (sizeof FIXTURES / sizeof *FIXTURES)

typedef struct {
    lr_model *m;
    const float *a, *b, *want;
    int h, w;
    double t;
} fixture;

static int open_fixture(lr_ctx *ctx, const char *name, fixture *f)
{
    char path[256];
    snprintf(path, sizeof path, "tests/fixtures/rife/%s.safetensors", name);
    lr_tensor a, b, want;
    memset(f, 0, sizeof *f);
    int ok = lr_model_open(ctx, path, &f->m) == LR_OK &&
             lr_model_meta_float(ctx, f->m, "t", false, 0, &f->t) == LR_OK &&
             lr_model_get(ctx, f->m, "a", LR_F32, 3, NULL, &a) == LR_OK &&
             lr_model_get(ctx, f->m, "b", LR_F32, 3, a.shape, &b) == LR_OK &&
             lr_model_get(ctx, f->m, "out", LR_F32, 3, a.shape, &want) == LR_OK && a.shape[0] == 3;
    CHECKF(ok, "%s: %s", name, lr_ctx_last_error(ctx));
    if (!ok) {
        lr_model_close(f->m);
        return 0;
    }
    f->a = a.data, f->b = b.data, f->want = want.data;
    f->h = (int)a.shape[1], f->w = (int)a.shape[2];
    return 1;
}

static rife_net *load_net(lr_ctx *ctx)
{
    lr_model *m = NULL;
    rife_net *net = NULL;
    if (lr_model_open(ctx, MODEL_PATH, &m) != LR_OK)
        return NULL;
    if (rife_load(ctx, m, &net) != LR_OK)
        net = NULL;
    lr_model_close(m); /* the net keeps its own copies */
    return net;
}

static void test_fixtures(void)
{
    lr_ctx *ctx = make_ctx(2, LR_CPU_AVX512);
    REQUIRE(ctx);
    rife_net *net = load_net(ctx);
    CHECKF(net, "%s", lr_ctx_last_error(ctx));
    float *first = NULL;
    for (size_t i = 0; net && i <= N_FIXTURES; i++) {
        fixture f; /* the last round repeats the first fixture after smaller frames */
        if (!open_fixture(ctx, FIXTURES[i % N_FIXTURES], &f))
            continue;
        size_t n = (size_t)3 * f.h * f.w;
        float *got = malloc(n * sizeof(float));
        lr_status s = rife_interpolate(ctx, net, f.a, f.b, f.h, f.w, (float)f.t, got);
        CHECKF(s == LR_OK, "%s", lr_ctx_last_error(ctx));
        double e = 0;
        for (size_t k = 0; k < n; k++)
            e = fmax(e, fabs((double)got[k] - f.want[k]));
        CHECKF(e <= FIXTURE_TOL, "%s: max error %.3g vs PyTorch", FIXTURES[i % N_FIXTURES], e);
        if (i < N_FIXTURES)
            printf("  %s: max error %.3g vs PyTorch\n", FIXTURES[i], e);
        if (i == 0)
            first = got;
        else if (i == N_FIXTURES)
            CHECK(first && memcmp(first, got, n * sizeof(float)) == 0);
        if (got != first)
            free(got);
        lr_model_close(f.m);
    }
    free(first);
    rife_free(net);
    lr_ctx_destroy(ctx);
}

static void test_threads_identical(void)
{
    fixture f;
    lr_ctx *ctx0 = make_ctx(1, LR_CPU_AVX512);
    REQUIRE(ctx0);
    if (!open_fixture(ctx0, FIXTURES[0], &f)) {
        lr_ctx_destroy(ctx0);
        return;
    }
    size_t n = (size_t)3 * f.h * f.w;
    float *out[3] = {NULL, NULL, NULL};
    for (int t = 0; t < 3; t++) {
        lr_ctx *ctx = make_ctx(t + 1, LR_CPU_AVX512);
        REQUIRE(ctx);
        rife_net *net = load_net(ctx);
        CHECKF(net, "%s", lr_ctx_last_error(ctx));
        out[t] = calloc(n, sizeof(float));
        if (net)
            CHECK(rife_interpolate(ctx, net, f.a, f.b, f.h, f.w, 0.3f, out[t]) == LR_OK);
        rife_free(net);
        lr_ctx_destroy(ctx);
    }
    CHECK(memcmp(out[0], out[1], n * sizeof(float)) == 0);
    CHECK(memcmp(out[0], out[2], n * sizeof(float)) == 0);
    for (int t = 0; t < 3; t++)
        free(out[t]);
    lr_model_close(f.m);
    lr_ctx_destroy(ctx0);
}

static void test_cpu_levels(void)
{
    static const lr_cpu_level levels[] = {LR_CPU_REF, LR_CPU_AVX2};
    for (size_t l = 0; l < sizeof levels / sizeof *levels; l++) {
        lr_ctx *ctx = make_ctx_at(2, levels[l]);
        if (!ctx)
            continue; /* the machine lacks it */
        rife_net *net = load_net(ctx);
        fixture f;
        CHECKF(net, "%s", lr_ctx_last_error(ctx));
        if (net && open_fixture(ctx, FIXTURES[1], &f)) {
            size_t n = (size_t)3 * f.h * f.w;
            float *got = malloc(n * sizeof(float));
            CHECK(rife_interpolate(ctx, net, f.a, f.b, f.h, f.w, (float)f.t, got) == LR_OK);
            double e = 0;
            for (size_t k = 0; k < n; k++)
                e = fmax(e, fabs((double)got[k] - f.want[k]));
            CHECKF(e <= FIXTURE_TOL, "%s: max error %.3g vs PyTorch", lr_cpu_level_name(levels[l]),
                   e);
            free(got);
            lr_model_close(f.m);
        }
        rife_free(net);
        lr_ctx_destroy(ctx);
    }
}

/* The model file with `from` replaced by `to` (same length) once, in its JSON header. */
static void expect_refused(lr_ctx *ctx, const char *from, const char *to, const char *needle)
{
    size_t size = 0;
    char *buf = read_patched(MODEL_PATH, from, to, &size);
    CHECKF(buf, "could not patch %s", from);
    if (!buf)
        return;
    lr_model *m = NULL;
    rife_net *net = NULL;
    CHECK(lr_model_open_memory(ctx, "patched", buf, size, &m) == LR_OK);
    if (m) {
        CHECK(rife_load(ctx, m, &net) == LR_ERR_MODEL);
        CHECK(net == NULL);
        CHECKF(strstr(lr_ctx_last_error(ctx), needle), "message: %s", lr_ctx_last_error(ctx));
        lr_model_close(m);
    }
    free(buf);
}

static void test_bad_model(void)
{
    lr_ctx *ctx = make_ctx(1, LR_CPU_AVX512);
    REQUIRE(ctx);
    /* the deconvolution weight [192][24][4][4] stored as [24][192][4][4]: same bytes */
    expect_refused(ctx, "\"block0.lastconv.0.weight\":{\"dtype\":\"F16\",\"shape\":[192,24,4,4]",
                   "\"block0.lastconv.0.weight\":{\"dtype\":\"F16\",\"shape\":[24,192,4,4]",
                   "block0.lastconv.0.weight");
    expect_refused(ctx, "\"arch\":\"rife-v4.6\"", "\"arch\":\"rife-v4.7\"", "rife-v4.6");
    expect_refused(ctx, "\"scale_list\":\"8,4,2,1\"", "\"scale_list\":\"4,4,2,1\"", "scale_list");
    lr_ctx_destroy(ctx);
}

static void test_bad_args(void)
{
    lr_ctx *ctx = make_ctx(1, LR_CPU_AVX512);
    REQUIRE(ctx);
    rife_net *net = load_net(ctx);
    REQUIRE(net);
    float a[3 * 4 * 5] = {0}, b[3 * 4 * 5] = {0}, out[3 * 4 * 5];
    CHECK(rife_interpolate(ctx, NULL, a, b, 4, 5, 0.5f, out) == LR_ERR_ARG);
    CHECK(rife_interpolate(ctx, net, NULL, b, 4, 5, 0.5f, out) == LR_ERR_ARG);
    CHECK(rife_interpolate(ctx, net, a, NULL, 4, 5, 0.5f, out) == LR_ERR_ARG);
    CHECK(rife_interpolate(ctx, net, a, b, 4, 5, 0.5f, NULL) == LR_ERR_ARG);
    CHECK(rife_interpolate(ctx, net, a, b, 0, 5, 0.5f, out) == LR_ERR_ARG);
    CHECK(rife_interpolate(ctx, net, a, b, 4, -2, 0.5f, out) == LR_ERR_ARG);
    CHECK(rife_interpolate(ctx, net, a, b, 4, 5, NAN, out) == LR_ERR_ARG);
    CHECK(rife_interpolate(ctx, net, a, b, 4, 5, INFINITY, out) == LR_ERR_ARG);
    CHECK(rife_load(ctx, NULL, &net) == LR_ERR_ARG);
    /* a 1x1 frame runs (padded to 32x32); black in, black out */
    CHECK(rife_interpolate(ctx, net, a, b, 1, 1, 0.5f, out) == LR_OK);
    CHECK(out[0] == 0 && out[1] == 0 && out[2] == 0);
    CHECK(rife_flops(576, 768) > 37.0e9 && rife_flops(576, 768) < 37.7e9);
    CHECK(rife_flops(0, 5) == 0);
    rife_free(net);
    rife_free(NULL);
    lr_ctx_destroy(ctx);
}

int main(void)
{
    RUN(test_fixtures);
    RUN(test_threads_identical);
    RUN(test_cpu_levels);
    RUN(test_bad_model);
    RUN(test_bad_args);
    return CHECK_DONE();
}
