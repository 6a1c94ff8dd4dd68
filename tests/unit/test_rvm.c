/* Robust Video Matting (cmd/video-animate/rvm.c) against the TF.js graph itself: the goldens of
 * tests/fixtures/rvm (tools/rvm_tfjs_golden.mjs: @tensorflow/tfjs 3.21 running the authors'
 * model.json on crops of vtest.avi; "ratio1" 44x30 at downsample ratio 1, three frames;
 * "ratio05" 60x44 at ratio 0.5 with the guided-filter refiner, two frames), frame by frame
 * through one state, fgr, pha and the states after the last frame within 1e-4; 1, 2 and 3
 * threads bit-identical; a reset state repeats the first frame; a wrong arch and a mis-shaped
 * tensor refused with LR_ERR_MODEL; bad arguments, and the smallest sizes that run.
 * The model is GPL-3.0 and not in the repository: the test converts
 * ../shared/data/video/rvm-mobilenetv3-tfjs with tools/convert_rvm_tfjs.py into a temporary
 * directory, and is skipped (passing) when that data or /usr/bin/python3 with numpy is absent. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../cmd/video-animate/rvm.h"
#include "check.h"
#include "kernel_test.h"
#include "longrange/core.h"
#include "longrange/model.h"

#define SHARED_MODEL "../shared/data/video/rvm-mobilenetv3-tfjs/model.json"
#define PYTHON "/usr/bin/python3"
#define TOL 1e-4

static char model_path[512];
static char temp_dir[256];

typedef struct {
    lr_model *m;
    const float *src, *fgr, *pha, *r[4];
    int t, h, w;
    int rc[4], rh[4], rw[4];
    double ratio;
} golden;

static int open_golden(lr_ctx *ctx, const char *name, golden *g)
{
    char path[256];
    snprintf(path, sizeof path, "tests/fixtures/rvm/%s.safetensors", name);
    memset(g, 0, sizeof *g);
    lr_tensor src, fgr, pha;
    int ok = lr_model_open(ctx, path, &g->m) == LR_OK &&
             lr_model_meta_float(ctx, g->m, "ratio", false, 0, &g->ratio) == LR_OK &&
             lr_model_get(ctx, g->m, "src", LR_F32, 4, NULL, &src) == LR_OK && src.shape[1] == 3 &&
             lr_model_get(ctx, g->m, "fgr", LR_F32, 4, src.shape, &fgr) == LR_OK;
    if (ok) {
        int64_t ps[3] = {src.shape[0], src.shape[2], src.shape[3]};
        ok = lr_model_get(ctx, g->m, "pha", LR_F32, 3, ps, &pha) == LR_OK;
    }
    for (int k = 0; ok && k < 4; k++) {
        char rn[16];
        lr_tensor r;
        snprintf(rn, sizeof rn, "r%do", k + 1);
        ok = lr_model_get(ctx, g->m, rn, LR_F32, 3, NULL, &r) == LR_OK;
        if (ok) {
            g->r[k] = r.data;
            g->rc[k] = (int)r.shape[0], g->rh[k] = (int)r.shape[1], g->rw[k] = (int)r.shape[2];
        }
    }
    CHECKF(ok, "%s: %s", name, lr_ctx_last_error(ctx));
    if (!ok) {
        lr_model_close(g->m);
        return 0;
    }
    g->src = src.data, g->fgr = fgr.data, g->pha = pha.data;
    g->t = (int)src.shape[0], g->h = (int)src.shape[2], g->w = (int)src.shape[3];
    return 1;
}

static double max_diff(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= m)) /* NaN counts */
            m = isnan(d) ? INFINITY : d;
    }
    return m;
}

static rvm_net *load_net(lr_ctx *ctx, lr_model **m)
{
    rvm_net *net = NULL;
    *m = NULL;
    if (lr_model_open(ctx, model_path, m) != LR_OK)
        return NULL;
    if (rvm_load(ctx, *m, &net) != LR_OK) {
        lr_model_close(*m);
        *m = NULL;
        return NULL;
    }
    return net;
}

/* Runs every frame of g; fills out_fgr/out_pha ([t][...]) when given. */
static int run_golden(lr_ctx *ctx, rvm_net *net, const golden *g, float *out_fgr, float *out_pha,
                      rvm_state **out_state)
{
    rvm_state *st = NULL;
    if (rvm_state_create(ctx, net, g->h, g->w, (float)g->ratio, &st) != LR_OK)
        return 0;
    size_t n = (size_t)g->h * g->w;
    for (int t = 0; t < g->t; t++)
        if (rvm_step(ctx, net, st, g->src + 3 * n * t, out_fgr + 3 * n * t, out_pha + n * t)) {
            rvm_state_free(st);
            return 0;
        }
    *out_state = st;
    return 1;
}

static void check_golden(const char *name)
{
    lr_ctx *ctx = make_ctx(2, LR_CPU_AVX512);
    REQUIRE(ctx);
    lr_model *m;
    rvm_net *net = load_net(ctx, &m);
    CHECKF(net, "load: %s", lr_ctx_last_error(ctx));
    golden g;
    if (net && open_golden(ctx, name, &g)) {
        size_t n = (size_t)g.h * g.w;
        float *fgr = malloc(3 * n * g.t * sizeof *fgr), *pha = malloc(n * g.t * sizeof *pha);
        rvm_state *st = NULL;
        int ok = fgr && pha && run_golden(ctx, net, &g, fgr, pha, &st);
        CHECKF(ok, "%s: %s", name, lr_ctx_last_error(ctx));
        if (ok) {
            for (int t = 0; t < g.t; t++) {
                double ef = max_diff(fgr + 3 * n * t, g.fgr + 3 * n * t, 3 * n);
                double ea = max_diff(pha + n * t, g.pha + n * t, n);
                printf("  %s frame %d: max |fgr - tfjs| %.3g, |pha - tfjs| %.3g\n", name, t, ef,
                       ea);
                CHECKF(ef <= TOL && ea <= TOL, "%s frame %d: fgr %.3g pha %.3g", name, t, ef, ea);
            }
            for (int k = 1; k <= 4; k++) {
                int c, h, w;
                const float *r = rvm_state_get(st, k, &c, &h, &w);
                REQUIRE(r);
                CHECKF(c == g.rc[k - 1] && h == g.rh[k - 1] && w == g.rw[k - 1],
                       "%s r%d: %dx%dx%d, tfjs %dx%dx%d", name, k, c, h, w, g.rc[k - 1],
                       g.rh[k - 1], g.rw[k - 1]);
                if (c == g.rc[k - 1] && h == g.rh[k - 1] && w == g.rw[k - 1]) {
                    double e = max_diff(r, g.r[k - 1], (size_t)c * h * w);
                    printf("  %s r%do: max |diff| %.3g\n", name, k, e);
                    CHECKF(e <= TOL, "%s r%do: %.3g", name, k, e);
                }
            }
            /* A reset state gives the first frame again, bit for bit. */
            float *f2 = malloc(3 * n * sizeof *f2), *p2 = malloc(n * sizeof *p2);
            rvm_state_reset(st);
            CHECK(f2 && p2 && rvm_step(ctx, net, st, g.src, f2, p2) == LR_OK &&
                  memcmp(f2, fgr, 3 * n * sizeof *f2) == 0 && memcmp(p2, pha, n * sizeof *p2) == 0);
            free(f2);
            free(p2);
            rvm_state_free(st);
        }
        free(fgr);
        free(pha);
        lr_model_close(g.m);
    }
    rvm_free(net);
    lr_model_close(m);
    lr_ctx_destroy(ctx);
}

static void test_golden_ratio1(void) { check_golden("ratio1"); }
static void test_golden_ratio05(void) { check_golden("ratio05"); }

/* 1, 2 and 3 threads bit-identical (fgr, pha and r1o..r4o) on both paths, at odd sizes. */
#define N_THREADS 3
static void test_threads(void)
{
    static const struct { int h, w; float ratio; } cases[] = {{37, 53, 1.0f}, {45, 61, 0.6f}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        int h = cases[c].h, w = cases[c].w;
        size_t n = (size_t)h * w;
        float *src = malloc(3 * n * sizeof *src), *out[N_THREADS];
        size_t per_run = 2 * 4 * n + 64 * n; /* two frames of fgr + pha, then the states */
        seed_random(7 + (unsigned)c);
        for (size_t i = 0; src && i < 3 * n; i++)
            src[i] = 0.5f + 0.5f * random_float();
        for (int t = 0; t < N_THREADS; t++) {
            out[t] = calloc(per_run, sizeof(float));
            lr_ctx *ctx = make_ctx(t + 1, LR_CPU_AVX512);
            lr_model *m = NULL;
            rvm_net *net = ctx ? load_net(ctx, &m) : NULL;
            rvm_state *st = NULL;
            int ok = src && out[t] && net &&
                     rvm_state_create(ctx, net, h, w, cases[c].ratio, &st) == LR_OK;
            for (int f = 0; ok && f < 2; f++) /* two frames: the states matter */
                ok = rvm_step(ctx, net, st, src, out[t] + 4 * n * f, out[t] + 4 * n * f + 3 * n) ==
                     LR_OK;
            float *dst = out[t] + 8 * n;
            for (int k = 1; ok && k <= 4; k++) {
                int sc, sh, sw;
                const float *r = rvm_state_get(st, k, &sc, &sh, &sw);
                memcpy(dst, r, (size_t)sc * sh * sw * sizeof(float));
                dst += (size_t)sc * sh * sw;
            }
            CHECKF(ok, "threads %d: %s", t + 1, ctx ? lr_ctx_last_error(ctx) : "no context");
            rvm_state_free(st);
            rvm_free(net);
            lr_model_close(m);
            lr_ctx_destroy(ctx);
        }
        for (int t = 1; t < N_THREADS; t++)
            CHECKF(out[0] && out[t] && memcmp(out[0], out[t], per_run * sizeof(float)) == 0,
                   "case %zu: %d threads differ from 1", c, t + 1);
        for (int t = 0; t < N_THREADS; t++)
            free(out[t]);
        free(src);
    }
}

static void test_bad_model(void)
{
    lr_ctx *ctx = make_ctx(1, LR_CPU_AVX512);
    REQUIRE(ctx);
    lr_model *m = NULL;
    rvm_net *net = (rvm_net *)1;
    /* A golden file has tensors but no arch. */
    REQUIRE(lr_model_open(ctx, "tests/fixtures/rvm/ratio1.safetensors", &m) == LR_OK);
    CHECK(rvm_load(ctx, m, &net) == LR_ERR_MODEL && net == NULL);
    lr_model_close(m);
    /* The right arch and a mis-shaped normalisation vector. */
    char path[300];
    snprintf(path, sizeof path, "%s/bad.safetensors", temp_dir);
    float v[4] = {0};
    lr_named_tensor t = {"mobile_net_v3_encoder/Const", {0}};
    t.tensor.data = v;
    t.tensor.dtype = LR_F32;
    t.tensor.ndim = 1;
    t.tensor.shape[0] = 4;
    t.tensor.stride[0] = 1;
    const char *meta[] = {"arch", "rvm-mobilenetv3", NULL};
    REQUIRE(lr_safetensors_write(ctx, path, meta, &t, 1) == LR_OK);
    REQUIRE(lr_model_open(ctx, path, &m) == LR_OK);
    CHECK(rvm_load(ctx, m, &net) == LR_ERR_MODEL && net == NULL);
    CHECKF(strstr(lr_ctx_last_error(ctx), "mobile_net_v3_encoder/Const"), "%s",
           lr_ctx_last_error(ctx));
    lr_model_close(m);
    unlink(path);
    lr_ctx_destroy(ctx);
}

static void test_bad_args(void)
{
    lr_ctx *ctx = make_ctx(1, LR_CPU_AVX512);
    REQUIRE(ctx);
    lr_model *m;
    rvm_net *net = load_net(ctx, &m);
    REQUIRE(net);
    rvm_state *st = (rvm_state *)1;
    CHECK(rvm_state_create(ctx, net, 0, 8, 1.0f, &st) == LR_ERR_ARG && st == NULL);
    CHECK(rvm_state_create(ctx, net, 8, -1, 1.0f, &st) == LR_ERR_ARG);
    CHECK(rvm_state_create(ctx, net, 8, 8, 0.0f, &st) == LR_ERR_ARG);
    CHECK(rvm_state_create(ctx, net, 8, 8, 1.5f, &st) == LR_ERR_ARG);
    CHECK(rvm_state_create(ctx, net, 8, 8, NAN, &st) == LR_ERR_ARG);
    CHECK(rvm_state_create(ctx, net, 20, 40, 0.1f, &st) == LR_ERR_ARG); /* 2x4: no box filter */
    CHECK(rvm_state_create(ctx, NULL, 8, 8, 1.0f, &st) == LR_ERR_ARG);
    /* The smallest sizes run: 1x1 at ratio 1, 3x3 after downsampling. */
    float src[3 * 30 * 30] = {0}, fgr[3 * 30 * 30], pha[30 * 30];
    CHECK(rvm_state_create(ctx, net, 1, 1, 1.0f, &st) == LR_OK);
    CHECK(rvm_step(ctx, net, st, src, fgr, pha) == LR_OK && pha[0] >= 0 && pha[0] <= 1);
    CHECK(rvm_step(ctx, net, st, NULL, fgr, pha) == LR_ERR_ARG);
    rvm_state_free(st);
    CHECK(rvm_state_create(ctx, net, 30, 30, 0.1f, &st) == LR_OK);
    int hs, ws;
    rvm_state_size(st, &hs, &ws);
    CHECK(hs == 3 && ws == 3);
    CHECK(rvm_step(ctx, net, st, src, fgr, pha) == LR_OK);
    rvm_state_free(st);
    rvm_net *none = (rvm_net *)1;
    CHECK(rvm_load(ctx, NULL, &none) == LR_ERR_ARG && none == NULL);
    rvm_free(net);
    lr_model_close(m);
    lr_ctx_destroy(ctx);
}

static int make_temp_dir(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(temp_dir, sizeof temp_dir, "%s/lr-test-rvm-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    return mkdtemp(temp_dir) != NULL;
}

/* 1: converted into temp_dir; 0: skipped (data or Python absent); -1: the converter failed. */
static int prepare_model(void)
{
    if (access(SHARED_MODEL, R_OK) != 0) {
        printf("  skipped: %s is absent (../shared/data is not here)\n", SHARED_MODEL);
        return 0;
    }
    if (access(PYTHON, X_OK) != 0 || system(PYTHON " -c 'import numpy' 2>/dev/null") != 0) {
        printf("  skipped: " PYTHON " with numpy is absent (needed to convert the model)\n");
        return 0;
    }
    snprintf(model_path, sizeof model_path, "%s/rvm.safetensors", temp_dir);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, PYTHON " tools/convert_rvm_tfjs.py " SHARED_MODEL " '%s' >/dev/null",
             model_path);
    return system(cmd) == 0 ? 1 : -1;
}

static void test_convert(void)
{
    int ready = prepare_model();
    CHECKF(ready >= 0, "tools/convert_rvm_tfjs.py failed");
    if (ready <= 0)
        model_path[0] = '\0';
}

int main(void)
{
    if (!make_temp_dir()) {
        printf("FAIL test_rvm: cannot create a temporary directory\n");
        return 1;
    }
    RUN(test_bad_model);
    RUN(test_convert);
    if (model_path[0]) {
        RUN(test_golden_ratio1);
        RUN(test_golden_ratio05);
        RUN(test_threads);
        RUN(test_bad_args);
        unlink(model_path);
    }
    rmdir(temp_dir);
    return CHECK_DONE();
}
