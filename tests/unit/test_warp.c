/* Backward warp (warp.h): lr_warp_bilinear against lr_warp_bilinear_ref at awkward sizes with
 * flows that point far outside the image; exact cases (zero and integer flows, clamping to the
 * border, a half-pixel shift of a ramp); NaN flow stays inside the image; bit-identical output
 * for 1, 2 and 3 threads; argument errors. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kernel_test.h"
#include "longrange/core.h"
#include "longrange/warp.h"

/* FP32 vs double on values in [-1, 1): the weights' rounding, plus the FP32 rounding of the
 * coordinate x + fx (half an ulp of a coordinate up to max(h, w)) times a neighbour step <= 2. */
#define REF_TOL(h, w) (2e-6 + 2.0 * ((h) > (w) ? (h) : (w)) * FLT_EPSILON)

static float *random_buf(size_t n, float scale)
{
    float *p = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        p[i] = random_float() * scale;
    return p;
}

static const int SIZES[][3] = {
    /* c, h, w */
    {1, 1, 1}, {3, 1, 7}, {2, 9, 1}, {3, 13, 17}, {4, 33, 70}, {1, 5, 200}, {3, 45, 65},
};
#define N_SIZES (sizeof SIZES / sizeof *SIZES)

static void test_fast_vs_ref(void)
{
    lr_ctx *ctx = make_ctx(2, LR_CPU_AVX512);
    REQUIRE(ctx);
    seed_random(3);
    for (size_t s = 0; s < N_SIZES; s++) {
        int c = SIZES[s][0], h = SIZES[s][1], w = SIZES[s][2];
        size_t n = (size_t)c * h * w, plane = (size_t)h * w;
        /* flows up to 1.5x the image size: many samples land outside and clamp */
        float span = 1.5f * (float)(h > w ? h : w);
        float *img = random_buf(n, 1), *flow = random_buf(2 * plane, span);
        float *got = malloc(n * sizeof(float)), *want = malloc(n * sizeof(float));
        CHECK(lr_warp_bilinear(ctx, img, c, h, w, flow, got) == LR_OK);
        CHECK(lr_warp_bilinear_ref(ctx, img, c, h, w, flow, want) == LR_OK);
        double e = 0;
        for (size_t i = 0; i < n; i++)
            e = fmax(e, fabs((double)got[i] - want[i]));
        CHECKF(e < REF_TOL(h, w), "c %d %dx%d: max diff %g", c, h, w, e);
        free(img), free(flow), free(got), free(want);
    }
    lr_ctx_destroy(ctx);
}

static void test_exact_cases(void)
{
    enum { C = 2, H = 11, W = 19 };
    lr_ctx *ctx = make_ctx(1, LR_CPU_AVX512);
    REQUIRE(ctx);
    seed_random(5);
    float *img = random_buf((size_t)C * H * W, 1), flow[2][H][W], out[C][H][W];
    /* zero flow: a copy */
    memset(flow, 0, sizeof flow);
    REQUIRE(lr_warp_bilinear(ctx, img, C, H, W, &flow[0][0][0], &out[0][0][0]) == LR_OK);
    CHECK(memcmp(out, img, sizeof out) == 0);
    /* integer flow (+2, -3): a shift, clamped at the border */
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            flow[0][y][x] = 2, flow[1][y][x] = -3;
    REQUIRE(lr_warp_bilinear(ctx, img, C, H, W, &flow[0][0][0], &out[0][0][0]) == LR_OK);
    for (int ch = 0; ch < C; ch++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                int sx = x + 2 < W ? x + 2 : W - 1, sy = y - 3 > 0 ? y - 3 : 0;
                CHECK(out[ch][y][x] == img[((size_t)ch * H + sy) * W + sx]);
            }
    /* far outside: every pixel is the corner, exactly */
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            flow[0][y][x] = -1000.5f, flow[1][y][x] = 1e30f;
    REQUIRE(lr_warp_bilinear(ctx, img, C, H, W, &flow[0][0][0], &out[0][0][0]) == LR_OK);
    for (int ch = 0; ch < C; ch++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                CHECK(out[ch][y][x] == img[((size_t)ch * H + H - 1) * W]);
    /* half a pixel right on the ramp img = x: x + 0.5 inside, W - 1 at the right border */
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            img[(size_t)y * W + x] = (float)x;
            flow[0][y][x] = 0.5f, flow[1][y][x] = 0;
        }
    REQUIRE(lr_warp_bilinear(ctx, img, 1, H, W, &flow[0][0][0], &out[0][0][0]) == LR_OK);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            CHECK(out[0][y][x] == (x < W - 1 ? (float)x + 0.5f : (float)(W - 1)));
    /* NaN flow clamps to the first row/column, never reads outside */
    flow[0][3][4] = NAN;
    flow[1][3][4] = NAN;
    REQUIRE(lr_warp_bilinear(ctx, img, 1, H, W, &flow[0][0][0], &out[0][0][0]) == LR_OK);
    CHECK(out[0][3][4] == 0.0f);
    free(img);
    lr_ctx_destroy(ctx);
}

static void test_threads_identical(void)
{
    enum { C = 3, H = 67, W = 45 };
    seed_random(9);
    size_t n = (size_t)C * H * W;
    float *img = random_buf(n, 1), *flow = random_buf(2 * (size_t)H * W, 20);
    float *out[3];
    for (int t = 0; t < 3; t++) {
        lr_ctx *ctx = make_ctx(t + 1, LR_CPU_AVX512);
        REQUIRE(ctx);
        out[t] = malloc(n * sizeof(float));
        CHECK(lr_warp_bilinear(ctx, img, C, H, W, flow, out[t]) == LR_OK);
        lr_ctx_destroy(ctx);
    }
    CHECK(memcmp(out[0], out[1], n * sizeof(float)) == 0);
    CHECK(memcmp(out[0], out[2], n * sizeof(float)) == 0);
    for (int t = 0; t < 3; t++)
        free(out[t]);
    free(img), free(flow);
}

static void test_bad_args(void)
{
    lr_ctx *ctx = make_ctx(1, LR_CPU_AVX512);
    REQUIRE(ctx);
    float img[2 * 4 * 5] = {0}, flow[2 * 4 * 5] = {0}, out[2 * 4 * 5];
    CHECK(lr_warp_bilinear(ctx, NULL, 1, 4, 5, flow, out) == LR_ERR_ARG);
    CHECK(lr_warp_bilinear(ctx, img, 1, 4, 5, NULL, out) == LR_ERR_ARG);
    CHECK(lr_warp_bilinear(ctx, img, 1, 4, 5, flow, NULL) == LR_ERR_ARG);
    CHECK(lr_warp_bilinear(ctx, img, 0, 4, 5, flow, out) == LR_ERR_ARG);
    CHECK(lr_warp_bilinear(ctx, img, 1, -1, 5, flow, out) == LR_ERR_ARG);
    CHECK(lr_warp_bilinear(ctx, img, 1, 4, 0, flow, out) == LR_ERR_ARG);
    CHECK(lr_warp_bilinear(ctx, img, 1, 4, 5, flow, img + 3) == LR_ERR_ARG);  /* overlaps img */
    CHECK(lr_warp_bilinear(ctx, img, 1, 4, 5, flow, flow + 19) == LR_ERR_ARG); /* overlaps flow */
    CHECK(lr_warp_bilinear_ref(ctx, img, 1, 4, 5, flow, img) == LR_ERR_ARG);
    CHECK(lr_warp_bilinear(ctx, img, 2, 4, 5, flow, out) == LR_OK);
    CHECK(strstr(lr_ctx_last_error(ctx), "overlap") != NULL);
    lr_ctx_destroy(ctx);
}

int main(void)
{
    RUN(test_fast_vs_ref);
    RUN(test_exact_cases);
    RUN(test_threads_identical);
    RUN(test_bad_args);
    return CHECK_DONE();
}
