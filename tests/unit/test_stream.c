/* The RAIN-style stream (cmd/video-animate/stream.c) against tools/stream_torch.py fixtures
 * (tests/fixtures/stream: random F16 weights at 24x16, channels 8/16/24): one denoiser call on 6
 * frames at mixed levels, with and without motion modules, and a whole ring run on 10 frames
 * of 30x20 within 1e-4; the schedule and the Philox noise; latency G*p-1; feeding frames one at
 * a time, in chunks or all at once gives identical bytes; 1, 2 and 3 threads bit-identical;
 * FreeNoise windows; bad models and bad arguments refused. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../cmd/video-animate/stream.h"
#include "check.h"
#include "files.h"
#include "kernel_test.h"
#include "longrange/core.h"
#include "longrange/model.h"
#include "longrange/rng.h"

#define MODEL_PATH "tests/fixtures/stream/model.safetensors"
#define GOLDEN_PATH "tests/fixtures/stream/golden.safetensors"
#define TOL 1e-4

static stream_net *load_path(lr_ctx *ctx, const char *path)
{
    lr_model *m = NULL;
    stream_net *net = NULL;
    if (lr_model_open(ctx, path, &m) != LR_OK)
        return NULL;
    if (stream_load(ctx, m, &net) != LR_OK)
        net = NULL;
    lr_model_close(m); /* the net keeps its own copies */
    return net;
}

static double max_diff(const float *a, const float *b, size_t n)
{
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= worst))
            worst = d;
    }
    return worst;
}

/* A fresh directory under $TMPDIR for the derived model files. */
static int make_temp_dir(char *dir, size_t size)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, size, "%s/lr-test-stream-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    return mkdtemp(dir) != NULL;
}

/* model.safetensors without its motion tensors, metadata temporal set to `temporal` (keeping
 * the motion tensors when keep_motion), written to path. */
static int derive_model(lr_ctx *ctx, const char *path, const char *temporal, int keep_motion)
{
    lr_model *m = NULL;
    if (lr_model_open(ctx, MODEL_PATH, &m) != LR_OK)
        return 0;
    size_t nt = lr_model_tensor_count(m), nm = lr_model_meta_count(m), k = 0;
    lr_named_tensor *ts = calloc(nt, sizeof *ts);
    const char **meta = calloc(2 * nm + 1, sizeof *meta);
    int ok = ts && meta;
    for (size_t i = 0; ok && i < nt; i++) {
        const lr_model_tensor *t = lr_model_tensor_at(m, i);
        if (!keep_motion && strstr(t->name, ".motion."))
            continue;
        ts[k].name = t->name;
        ts[k++].tensor = lr_tensor_from((void *)t->data, (lr_dtype)t->dtype, t->ndim, t->shape);
    }
    for (size_t i = 0; ok && i < nm; i++) {
        lr_model_meta_at(m, i, &meta[2 * i], &meta[2 * i + 1]);
        if (!strcmp(meta[2 * i], "temporal"))
            meta[2 * i + 1] = temporal;
    }
    ok = ok && lr_safetensors_write(ctx, path, meta, ts, k) == LR_OK;
    free(ts);
    free(meta);
    lr_model_close(m);
    return ok;
}

static void test_schedule_and_noise(void)
{
    lr_ctx *ctx = make_ctx(1, LR_CPU_AVX512);
    REQUIRE(ctx);
    lr_model *g = NULL;
    REQUIRE(lr_model_open(ctx, GOLDEN_PATH, &g) == LR_OK);
    const lr_model_tensor *abar = lr_model_find(g, "abar");
    REQUIRE(abar && !strcmp(abar->dtype_name, "F64") && abar->shape[0] == 5);
    double want[5];
    memcpy(want, abar->data, sizeof want);
    const int t[5] = {999, 749, 499, 249, 0};
    for (int i = 0; i < 5; i++)
        CHECKF(fabs(stream_alpha_bar(t[i]) - want[i]) < 1e-12, "abar_%d %.17g want %.17g", t[i],
               stream_alpha_bar(t[i]), want[i]);
    CHECK(stream_alpha_bar(999) == 0.0 && stream_alpha_bar(-1) == 1.0);
    lr_tensor noise;
    int64_t shape[1] = {64};
    REQUIRE(lr_model_get(ctx, g, "noise_77_3", LR_F32, 1, shape, &noise) == LR_OK);
    float got[64];
    lr_normal_fill(77, 3, 0, got, 64);
    CHECKF(max_diff(got, noise.data, 64) < 1e-6, "numpy Philox differs by %g",
           max_diff(got, noise.data, 64));
    lr_model_close(g);
    lr_ctx_destroy(ctx);
}

typedef struct {
    float *frames; /* [cap][fsz] */
    int64_t *index;
    size_t fsz;
    int n, cap;
    int64_t pushes, first_emit_pushes; /* pushes done when the first frame came out */
} sink;

static void collect(void *user, const float *rgb, int64_t index)
{
    sink *s = user;
    if (s->n == 0)
        s->first_emit_pushes = s->pushes;
    if (s->n < s->cap) {
        memcpy(s->frames + (size_t)s->n * s->fsz, rgb, s->fsz * sizeof *rgb);
        s->index[s->n] = index;
    }
    s->n++;
}

static int sink_init(sink *s, int cap, size_t fsz)
{
    memset(s, 0, sizeof *s);
    s->frames = malloc((size_t)cap * fsz * sizeof *s->frames);
    s->index = malloc((size_t)cap * sizeof *s->index);
    s->fsz = fsz, s->cap = cap, s->first_emit_pushes = -1;
    return s->frames && s->index;
}

static void sink_free(sink *s)
{
    free(s->frames);
    free(s->index);
}

/* FreeNoise's rescheduling: frames below the window keep their own noise; every later block of
 * stride frames is a shuffled copy of the sources of the block one window earlier; every
 * frame ends in the first window; the map is a pure function of (seed, k). */
static void test_noise_rescheduling(void)
{
    const int w = 16, st = 4;
    for (int64_t k = 0; k < w; k++)
        CHECK(stream_noise_frame(9, w, st, k) == k);
    CHECK(stream_noise_frame(9, 0, 0, 1000) == 1000);
    int differs = 0;
    for (int64_t f = w; f < 400; f += st) {
        int seen[16] = {0};
        for (int o = 0; o < st; o++) {
            const int64_t src = stream_noise_frame(9, w, st, f + o);
            CHECK(src >= 0 && src < w);
            seen[src]++;
            differs += src != stream_noise_frame(10, w, st, f + o);
        }
        /* one step back: the block's sources are a permutation of the block w earlier's */
        int hits = 0;
        for (int o = 0; o < st; o++)
            hits += seen[stream_noise_frame(9, w, st, f - w + o)] == 1;
        CHECKF(hits == st, "block %lld is not a permutation of the one a window earlier",
               (long long)f);
    }
    CHECK(differs > 0); /* another seed, other shuffles */
    CHECK(stream_noise_frame(9, w, st, 12345) == stream_noise_frame(9, w, st, 12345));
}

static void test_call_parity(void)
{
    lr_ctx *ctx = make_ctx(2, LR_CPU_AVX512);
    REQUIRE(ctx);
    char dir[256], off_path[300];
    REQUIRE(make_temp_dir(dir, sizeof dir));
    snprintf(off_path, sizeof off_path, "%s/notemporal.safetensors", dir);
    REQUIRE(derive_model(ctx, off_path, "0", 0));
    lr_model *g = NULL;
    REQUIRE(lr_model_open(ctx, GOLDEN_PATH, &g) == LR_OK);
    lr_tensor x, d, lv, sl, want, want_off;
    int64_t shape[4] = {6, 3, 16, 24}, six[1] = {6};
    REQUIRE(lr_model_get_f32(ctx, g, "call_x", 4, shape, &x) == LR_OK &&
            lr_model_get_f32(ctx, g, "call_d", 4, shape, &d) == LR_OK &&
            lr_model_get(ctx, g, "call_levels", LR_I32, 1, six, &lv) == LR_OK &&
            lr_model_get(ctx, g, "call_slots", LR_I32, 1, six, &sl) == LR_OK &&
            lr_model_get(ctx, g, "call_v", LR_F32, 4, shape, &want) == LR_OK &&
            lr_model_get(ctx, g, "call_v_off", LR_F32, 4, shape, &want_off) == LR_OK);
    const size_t n = 6 * 3 * 16 * 24;
    float *v = malloc(n * sizeof *v);
    REQUIRE(v);
    const char *paths[2] = {MODEL_PATH, off_path};
    const float *wants[2] = {want.data, want_off.data};
    for (int k = 0; k < 2; k++) {
        stream_net *net = load_path(ctx, paths[k]);
        CHECKF(net, "%s: %s", paths[k], lr_ctx_last_error(ctx));
        if (!net)
            continue;
        stream_info info;
        stream_net_info(net, &info);
        CHECK(info.temporal == !k && info.width == 24 && info.height == 16 &&
              info.channels[2] == 24 && info.levels[3] == 249);
        CHECK(stream_denoise(ctx, net, x.data, d.data, lv.data, sl.data, 6, v) == LR_OK);
        double diff = max_diff(v, wants[k], n);
        CHECKF(diff < TOL, "%s: max |v - torch| = %g", k ? "temporal off" : "temporal on", diff);
        stream_net_free(net);
    }
    /* the motion modules matter: the two predictions differ */
    CHECK(max_diff(want.data, want_off.data, n) > 1e-2);
    free(v);
    lr_model_close(g);
    remove(off_path);
    rmdir(dir);
    lr_ctx_destroy(ctx);
}

/* Runs the fixture ring input through a fresh stream, in chunks of `chunk` frames (0: all at
 * once), with `threads` threads and an optional window. */
static int run_ring(int threads, int chunk, int window, int stride, const float *in, int n, int h,
                    int w, sink *out)
{
    lr_ctx *ctx = make_ctx(threads, LR_CPU_AVX512);
    if (!ctx)
        return 0;
    stream_net *net = load_path(ctx, MODEL_PATH);
    stream_state *s = NULL;
    int ok = net && stream_create(ctx, net, 77, &s) == LR_OK &&
             stream_set_window(ctx, s, window, stride) == LR_OK;
    const size_t fsz = (size_t)3 * h * w;
    for (int k = 0; ok && k < n;) {
        int m = chunk ? chunk : n;
        if (m > n - k)
            m = n - k;
        ok = stream_push_frames(ctx, s, in + (size_t)k * fsz, m, h, w, collect, out) == LR_OK;
        k += m;
        out->pushes = k;
    }
    ok = ok && stream_finish(ctx, s, collect, out) == LR_OK;
    if (!ok)
        printf("  run_ring: %s\n", lr_ctx_last_error(ctx));
    stream_free(s);
    stream_net_free(net);
    lr_ctx_destroy(ctx);
    return ok;
}

static void test_ring_parity(void)
{
    lr_ctx *ctx = make_ctx(1, LR_CPU_AVX512);
    REQUIRE(ctx);
    lr_model *g = NULL;
    REQUIRE(lr_model_open(ctx, GOLDEN_PATH, &g) == LR_OK);
    lr_tensor in, want;
    int64_t in_shape[4] = {10, 3, 20, 30}, out_shape[4] = {10, 3, 16, 24};
    REQUIRE(lr_model_get_f32(ctx, g, "ring_in", 4, in_shape, &in) == LR_OK &&
            lr_model_get(ctx, g, "ring_out", LR_F32, 4, out_shape, &want) == LR_OK);
    sink out;
    REQUIRE(sink_init(&out, 10, 3 * 16 * 24));
    CHECK(run_ring(2, 1, 0, 0, in.data, 10, 20, 30, &out));
    CHECK(out.n == 10);
    for (int i = 0; i < out.n && i < 10; i++)
        CHECK(out.index[i] == i);
    double diff = max_diff(out.frames, want.data, (size_t)10 * 3 * 16 * 24);
    CHECKF(diff < TOL, "ring output: max |C - torch| = %g", diff);
    sink_free(&out);
    lr_model_close(g);
    lr_ctx_destroy(ctx);
}

/* 23 random frames of 13x19 (resized up inside): chunking, threads, latency, windows. */
enum { N_FRAMES = 23, IN_H = 13, IN_W = 19 };

static float *random_frames(void)
{
    float *f = malloc((size_t)N_FRAMES * 3 * IN_H * IN_W * sizeof *f);
    seed_random(9);
    for (size_t i = 0; f && i < (size_t)N_FRAMES * 3 * IN_H * IN_W; i++)
        f[i] = 0.5f + 0.5f * random_float();
    return f;
}

static void test_chunking_threads_latency(void)
{
    float *in = random_frames();
    REQUIRE(in);
    const size_t fsz = 3 * 16 * 24, all = (size_t)N_FRAMES * fsz;
    sink ref, other;
    REQUIRE(sink_init(&ref, N_FRAMES, fsz));
    REQUIRE(run_ring(1, 1, 0, 0, in, N_FRAMES, IN_H, IN_W, &ref));
    CHECK(ref.n == N_FRAMES);
    for (int i = 0; i < ref.n && i < N_FRAMES; i++)
        CHECK(ref.index[i] == i);
    /* frame 0 leaves during the push of frame G*p-1 = 15: after 16 pushes, 15 frames later */
    CHECKF(ref.first_emit_pushes == 15, "first output after %lld earlier pushes",
           (long long)ref.first_emit_pushes);
    const int runs[][2] = {{1, 0}, {1, 7}, {1, 4}, {2, 1}, {3, 5}, {2, 0}};
    for (size_t r = 0; r < sizeof runs / sizeof *runs; r++) {
        REQUIRE(sink_init(&other, N_FRAMES, fsz));
        CHECK(run_ring(runs[r][0], runs[r][1], 0, 0, in, N_FRAMES, IN_H, IN_W, &other));
        CHECKF(other.n == N_FRAMES && !memcmp(other.frames, ref.frames, all * sizeof(float)),
               "%d threads, chunks of %d: output differs", runs[r][0], runs[r][1]);
        sink_free(&other);
    }
    /* FreeNoise with window 16: the attention window is the whole ring, so only the noise
     * rescheduling of frames 16 on changes anything: the first group, which leaves before
     * frame 16 enters, is the default's; later frames differ. */
    REQUIRE(sink_init(&other, N_FRAMES, fsz));
    CHECK(run_ring(2, 3, 16, 4, in, N_FRAMES, IN_H, IN_W, &other));
    CHECK(other.n == N_FRAMES && !memcmp(other.frames, ref.frames, 4 * fsz * sizeof(float)));
    CHECK(max_diff(other.frames + 16 * fsz, ref.frames + 16 * fsz, all - 16 * fsz) > 0);
    sink_free(&other);
    sink a, b;
    REQUIRE(sink_init(&a, N_FRAMES, fsz) && sink_init(&b, N_FRAMES, fsz));
    CHECK(run_ring(1, 1, 8, 4, in, N_FRAMES, IN_H, IN_W, &a));
    CHECK(run_ring(3, 0, 8, 4, in, N_FRAMES, IN_H, IN_W, &b));
    CHECK(a.n == N_FRAMES && b.n == N_FRAMES && !memcmp(a.frames, b.frames, all * sizeof(float)));
    CHECK(max_diff(a.frames, ref.frames, all) > 0);
    sink_free(&a);
    sink_free(&b);
    sink_free(&ref);
    free(in);
}

/* model.safetensors with one header string replaced by another of the same length */
static void expect_refused(lr_ctx *ctx, const char *from, const char *to, const char *needle)
{
    size_t size = 0;
    char *buf = read_patched(MODEL_PATH, from, to, &size);
    CHECKF(buf, "could not patch %s", from);
    if (buf) {
        lr_model *m = NULL;
        stream_net *net = NULL;
        CHECK(lr_model_open_memory(ctx, "patched", buf, size, &m) == LR_OK);
        if (m) {
            CHECK(stream_load(ctx, m, &net) == LR_ERR_MODEL);
            CHECK(net == NULL);
            CHECKF(strstr(lr_ctx_last_error(ctx), needle), "message: %s", lr_ctx_last_error(ctx));
            lr_model_close(m);
        }
    }
    free(buf);
}

static void test_bad_model(void)
{
    lr_ctx *ctx = make_ctx(1, LR_CPU_AVX512);
    REQUIRE(ctx);
    expect_refused(ctx, "\"arch\":\"rain-stream-unet\"", "\"arch\":\"rain-stream-unex\"",
                   "rain-stream-unet");
    expect_refused(ctx, "\"conv_in.weight\":{\"dtype\":\"F16\",\"shape\":[8,9,3,3]",
                   "\"conv_in.weight\":{\"dtype\":\"F16\",\"shape\":[8,3,9,3]", "conv_in.weight");
    expect_refused(ctx, "\"levels\":\"999,749,499,249\"", "\"levels\":\"999,749,749,249\"",
                   "levels");
    expect_refused(ctx, "\"temporal\":\"1\"", "\"temporal\":\"0\"", "unexpected tensor");
    expect_refused(ctx, "\"channels\":\"8,16,24\"", "\"channels\":\"8,16,20\"", "channels");
    expect_refused(ctx, "\"width\":\"24\"", "\"width\":\"26\"", "multiples of 4");
    /* a temporal "1" file without its motion tensors */
    char dir[256], path[300];
    REQUIRE(make_temp_dir(dir, sizeof dir));
    snprintf(path, sizeof path, "%s/nomotion.safetensors", dir);
    REQUIRE(derive_model(ctx, path, "1", 0));
    CHECK(load_path(ctx, path) == NULL);
    CHECKF(strstr(lr_ctx_last_error(ctx), "down.0.motion.norm.weight"), "message: %s",
           lr_ctx_last_error(ctx));
    remove(path);
    rmdir(dir);
    lr_ctx_destroy(ctx);
}

static void test_bad_args(void)
{
    lr_ctx *ctx = make_ctx(1, LR_CPU_AVX512);
    REQUIRE(ctx);
    stream_net *net = load_path(ctx, MODEL_PATH);
    REQUIRE(net);
    stream_state *s = NULL;
    REQUIRE(stream_create(ctx, net, 1, &s) == LR_OK);
    float frame[3 * 4 * 5] = {0}, v[17 * 3 * 16 * 24];
    CHECK(stream_push(ctx, s, frame, 0, 5, NULL, NULL) == LR_ERR_ARG);
    CHECK(stream_push(ctx, s, NULL, 4, 5, NULL, NULL) == LR_ERR_ARG);
    CHECK(stream_push_frames(ctx, s, frame, -1, 4, 5, NULL, NULL) == LR_ERR_ARG);
    CHECK(stream_set_window(ctx, s, 8, 9) == LR_ERR_ARG);
    CHECK(stream_set_window(ctx, s, 8, 0) == LR_ERR_ARG);
    CHECK(stream_set_window(ctx, s, -1, 1) == LR_ERR_ARG);
    CHECK(stream_frames_in(s) == 0 && stream_frames_out(s) == 0);
    int t[17] = {0}, slot[17] = {0};
    static float x[17 * 3 * 16 * 24];
    CHECK(stream_denoise(ctx, net, x, x, t, slot, 0, v) == LR_ERR_ARG);
    CHECK(stream_denoise(ctx, net, x, x, t, slot, 17, v) == LR_ERR_ARG);
    t[0] = 1000;
    CHECK(stream_denoise(ctx, net, x, x, t, slot, 1, v) == LR_ERR_ARG);
    t[0] = 0, slot[0] = 32;
    CHECK(stream_denoise(ctx, net, x, x, t, slot, 1, v) == LR_ERR_ARG);
    /* an empty stream finishes with nothing to emit */
    sink out;
    REQUIRE(sink_init(&out, 1, 3 * 16 * 24));
    CHECK(stream_finish(ctx, s, collect, &out) == LR_OK && out.n == 0);
    sink_free(&out);
    stream_free(s);
    stream_net_free(net);
    lr_ctx_destroy(ctx);
}

int main(void)
{
    RUN(test_schedule_and_noise);
    RUN(test_noise_rescheduling);
    RUN(test_call_parity);
    RUN(test_ring_parity);
    RUN(test_chunking_threads_latency);
    RUN(test_bad_model);
    RUN(test_bad_args);
    return CHECK_DONE();
}
