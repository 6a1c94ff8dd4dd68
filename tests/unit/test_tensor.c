/* Tensor views, shape arithmetic, dtype conversion. */
#include <stdlib.h>

#include "check.h"
#include "longrange/tensor.h"

static void test_shapes(void)
{
    int64_t s1[] = {2, 3, 4};
    CHECK(lr_shape_numel(3, s1) == 24);
    size_t bytes;
    CHECK(lr_shape_nbytes(LR_F16, 3, s1, &bytes) && bytes == 48);
    int64_t huge[] = {INT64_MAX / 2, 3};
    CHECK(lr_shape_numel(2, huge) == -1);
    int64_t big[] = {(int64_t)1 << 62, 1};
    CHECK(!lr_shape_nbytes(LR_F32, 2, big, &bytes));
    int64_t neg[] = {2, -1};
    CHECK(lr_shape_numel(2, neg) == -1);
    CHECK(lr_shape_numel(0, NULL) == 1);
    char buf[64];
    CHECK(strcmp(lr_shape_str(3, s1, buf, sizeof buf), "[2, 3, 4]") == 0);
    CHECK(strcmp(lr_shape_str(0, s1, buf, sizeof buf), "[]") == 0);
    CHECK(strcmp(lr_shape_str(3, s1, buf, 5), "[2, ") == 0);
    CHECK(lr_dtype_parse("BF16") == LR_BF16 && lr_dtype_parse("float32") == LR_F32);
    CHECK(lr_dtype_parse("F64") == -1);
}

static void test_views(void)
{
    lr_ctx *ctx;
    REQUIRE(lr_ctx_create(&ctx, NULL) == LR_OK);
    float data[24];
    for (int i = 0; i < 24; i++)
        data[i] = (float)i;
    int64_t shape[] = {2, 3, 4};
    lr_tensor t = lr_tensor_from(data, LR_F32, 3, shape);
    CHECK(lr_tensor_is_contiguous(&t) && t.stride[0] == 12 && t.stride[2] == 1);
    int64_t idx[] = {1, 2, 3};
    CHECK(*(float *)lr_tensor_at(&t, idx) == 23.0f);

    lr_tensor s;
    REQUIRE(lr_tensor_slice(ctx, &t, 1, 1, 2, &s) == LR_OK);
    int64_t i0[] = {0, 0, 0};
    CHECK(*(float *)lr_tensor_at(&s, i0) == 4.0f && s.shape[1] == 2 && !lr_tensor_is_contiguous(&s));
    CHECK(lr_tensor_slice(ctx, &t, 1, 2, 2, &s) == LR_ERR_ARG);
    CHECK(strstr(lr_ctx_last_error(ctx), "outside") != NULL);
    CHECK(lr_tensor_slice(ctx, &t, 3, 0, 1, &s) == LR_ERR_ARG);

    lr_tensor tr;
    REQUIRE(lr_tensor_transpose(ctx, &t, 1, 2, &tr) == LR_OK);
    int64_t it[] = {1, 3, 2};
    CHECK(*(float *)lr_tensor_at(&tr, it) == 23.0f && tr.shape[1] == 4);

    lr_tensor r;
    int64_t rs[] = {6, -1};
    REQUIRE(lr_tensor_reshape(ctx, &t, 2, rs, &r) == LR_OK);
    CHECK(r.shape[0] == 6 && r.shape[1] == 4);
    int64_t bad[] = {5, -1};
    CHECK(lr_tensor_reshape(ctx, &t, 2, bad, &r) == LR_ERR_ARG);
    CHECK(lr_tensor_reshape(ctx, &tr, 2, rs, &r) == LR_ERR_ARG); /* not contiguous */
    int64_t wrong[] = {5, 5};
    CHECK(lr_tensor_reshape(ctx, &t, 2, wrong, &r) == LR_ERR_ARG);
    CHECK(strstr(lr_ctx_last_error(ctx), "differ") != NULL);

    /* strided copy with conversion to bf16 and back */
    uint16_t half[24];
    int64_t ts[] = {2, 4, 3};
    lr_tensor h = lr_tensor_from(half, LR_BF16, 3, ts);
    REQUIRE(lr_tensor_copy(ctx, &tr, &h) == LR_OK);
    float back[24];
    lr_tensor b = lr_tensor_from(back, LR_F32, 3, ts);
    REQUIRE(lr_tensor_copy(ctx, &h, &b) == LR_OK);
    CHECK(back[3 * 1 + 1] == 4.0f + 1.0f); /* [0][1][1] = t[0][1][1] = 5 */
    CHECK(back[23] == 23.0f);
    lr_tensor bi = lr_tensor_from(half, LR_I32, 3, ts);
    CHECK(lr_tensor_copy(ctx, &t, &bi) == LR_ERR_ARG);

    lr_arena a;
    REQUIRE(lr_arena_init(ctx, &a, 1024) == LR_OK);
    lr_tensor al;
    CHECK(lr_tensor_alloc(ctx, &a, LR_F32, 3, shape, &al) == LR_OK && al.data != NULL);
    int64_t toobig[] = {1000, 1000};
    CHECK(lr_tensor_alloc(ctx, &a, LR_F32, 2, toobig, &al) == LR_ERR_NOMEM);
    lr_arena_free(&a);
    lr_ctx_destroy(ctx);
}

static uint32_t bits_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static void test_f16(void)
{
    /* Every half value survives half -> float -> half (NaNs stay NaN). */
    int mismatches = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = lr_f16_to_f32((uint16_t)h);
        uint16_t back = lr_f32_to_f16(f);
        if (isnan(f) ? !((back & 0x7c00) == 0x7c00 && (back & 0x3ff)) : back != h)
            mismatches++;
    }
    CHECK(mismatches == 0);
    CHECK(lr_f16_to_f32(0x3c00) == 1.0f && lr_f16_to_f32(0xc000) == -2.0f);
    CHECK(lr_f16_to_f32(0x0001) == ldexpf(1.0f, -24));
    CHECK(lr_f32_to_f16(65504.0f) == 0x7bff && lr_f32_to_f16(65520.0f) == 0x7c00);
    CHECK(lr_f32_to_f16(1.0f + ldexpf(1.0f, -11)) == 0x3c00);        /* tie to even */
    CHECK(lr_f32_to_f16(1.0f + 3 * ldexpf(1.0f, -11)) == 0x3c02);    /* tie to even, up */
    CHECK(lr_f32_to_f16(ldexpf(1.0f, -25)) == 0 && lr_f32_to_f16(ldexpf(1.5f, -25)) == 1);
    CHECK(lr_f32_to_f16(-INFINITY) == 0xfc00);
    /* bf16: truncation with round to nearest even */
    CHECK(lr_bf16_to_f32(0x3f80) == 1.0f);
    CHECK(lr_f32_to_bf16(1.0f + ldexpf(1.0f, -8)) == 0x3f80);
    CHECK(lr_f32_to_bf16(1.0f + 3 * ldexpf(1.0f, -8)) == 0x3f82);
    CHECK(isnan(lr_bf16_to_f32(lr_f32_to_bf16(NAN))));
    CHECK(bits_of(lr_bf16_to_f32(lr_f32_to_bf16(-0.0f))) == 0x80000000u);
}

/* The contiguous fast path of lr_tensor_copy against the scalar conversions, bit for bit:
 * every half and bfloat16 pattern, and floats with every top half and low halves that
 * cover the rounding cases (ties, just off ties, subnormal ties, all ones). */
static void test_copy_contiguous(void)
{
    lr_ctx *ctx;
    REQUIRE(lr_ctx_create(&ctx, NULL) == LR_OK);
    enum { N = 65536 + 5 }; /* not a multiple of the block: the tail too */
    uint16_t *h = malloc(N * sizeof *h), *h2 = malloc(N * sizeof *h2);
    float *f = malloc(N * sizeof *f);
    REQUIRE(h && h2 && f);
    int64_t shape[] = {N};
    for (int src_bf = 0; src_bf < 2; src_bf++) {
        for (int i = 0; i < N; i++)
            h[i] = (uint16_t)(i * 40503u); /* odd multiplier: a permutation of all patterns */
        lr_tensor th = lr_tensor_from(h, src_bf ? LR_BF16 : LR_F16, 1, shape);
        lr_tensor tf = lr_tensor_from(f, LR_F32, 1, shape);
        REQUIRE(lr_tensor_copy(ctx, &th, &tf) == LR_OK);
        int bad = 0;
        for (int i = 0; i < N; i++) {
            float want = src_bf ? lr_bf16_to_f32(h[i]) : lr_f16_to_f32(h[i]);
            bad += bits_of(want) != bits_of(f[i]);
        }
        CHECKF(bad == 0, "%s -> f32: %d mismatches", src_bf ? "bf16" : "f16", bad);
        /* half <-> bfloat16 goes through f32 */
        lr_tensor to = lr_tensor_from(h2, src_bf ? LR_F16 : LR_BF16, 1, shape);
        REQUIRE(lr_tensor_copy(ctx, &th, &to) == LR_OK);
        bad = 0;
        for (int i = 0; i < N; i++)
            bad += h2[i] != (src_bf ? lr_f32_to_f16(lr_bf16_to_f32(h[i])) : lr_f32_to_bf16(lr_f16_to_f32(h[i])));
        CHECKF(bad == 0, "%s -> %s: %d mismatches", src_bf ? "bf16" : "f16", src_bf ? "f16" : "bf16", bad);
    }
    static const uint16_t lows[] = {0x0000, 0x0001, 0x0fff, 0x1000, 0x1001, 0x1fff, 0x2000, 0x3000,
                                    0x4000, 0x5000, 0x6000, 0x7fff, 0x8000, 0x8001, 0x9000, 0xc000,
                                    0xe000, 0xffff};
    int bad16 = 0, bad_bf = 0;
    for (size_t l = 0; l < sizeof lows / sizeof lows[0]; l++) {
        for (int i = 0; i < N; i++) {
            uint32_t u = (uint32_t)(i & 0xffff) << 16 | lows[(l + (size_t)(i >> 16)) % (sizeof lows / sizeof lows[0])];
            memcpy(&f[i], &u, 4);
        }
        lr_tensor tf = lr_tensor_from(f, LR_F32, 1, shape);
        lr_tensor th = lr_tensor_from(h, LR_F16, 1, shape), tb = lr_tensor_from(h2, LR_BF16, 1, shape);
        REQUIRE(lr_tensor_copy(ctx, &tf, &th) == LR_OK && lr_tensor_copy(ctx, &tf, &tb) == LR_OK);
        for (int i = 0; i < N; i++) {
            bad16 += h[i] != lr_f32_to_f16(f[i]);
            bad_bf += h2[i] != lr_f32_to_bf16(f[i]);
        }
    }
    CHECKF(bad16 == 0 && bad_bf == 0, "f32 -> f16: %d, f32 -> bf16: %d mismatches", bad16, bad_bf);

    /* same dtype: a plain copy; the strided odometer path gives the same elements */
    float g[24], src[24];
    for (int i = 0; i < 24; i++)
        src[i] = (float)i * 0.5f;
    int64_t s3[] = {2, 3, 4};
    lr_tensor a = lr_tensor_from(src, LR_F32, 3, s3), ga = lr_tensor_from(g, LR_F32, 3, s3);
    REQUIRE(lr_tensor_copy(ctx, &a, &ga) == LR_OK);
    CHECK(memcmp(g, src, sizeof g) == 0);
    lr_tensor at, gt;
    int64_t s3t[] = {2, 4, 3};
    REQUIRE(lr_tensor_transpose(ctx, &a, 1, 2, &at) == LR_OK);
    gt = lr_tensor_from(g, LR_F32, 3, s3t);
    REQUIRE(lr_tensor_copy(ctx, &at, &gt) == LR_OK);
    CHECK(g[1] == src[4] && g[3] == src[1] && g[23] == src[23]);
    /* an empty tensor needs no data */
    int64_t s0[] = {0, 3};
    lr_tensor e0 = lr_tensor_from(NULL, LR_F16, 2, s0), e1 = lr_tensor_from(NULL, LR_F32, 2, s0);
    CHECK(lr_tensor_copy(ctx, &e0, &e1) == LR_OK);
    free(h);
    free(h2);
    free(f);
    lr_ctx_destroy(ctx);
}

int main(void)
{
    RUN(test_shapes);
    RUN(test_views);
    RUN(test_f16);
    RUN(test_copy_contiguous);
    return CHECK_DONE();
}
