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

int main(void)
{
    RUN(test_shapes);
    RUN(test_views);
    RUN(test_f16);
    return CHECK_DONE();
}
