/* libFuzzer target for the safetensors reader: open the input as an in-memory model, then
 * read every byte of every tensor (16-bit floats also widened) and every metadata entry, so
 * that ASan and UBSan see any range or alignment the reader let through wrongly. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "longrange/model.h"

static volatile uint32_t sink;
static volatile float fsink;
static volatile int32_t isink;

static void touch_tensor(lr_ctx *ctx, const lr_model *m, const lr_model_tensor *t)
{
    const unsigned char *bytes = t->data;
    uint32_t sum = 0;
    for (size_t i = 0; i < t->nbytes; i++)
        sum += bytes[i];
    sink = sum;
    EXPECT(lr_model_find(m, t->name) == t);
    EXPECT(t->ndim >= 0 && t->ndim <= LR_MODEL_MAX_DIMS);
    lr_tensor x;
    if (t->dtype < 0) {
        EXPECT(lr_model_get(ctx, m, t->name, LR_U8, 0, NULL, &x) == LR_ERR_MODEL);
        return;
    }
    /* An lr_tensor holds at most LR_MAX_DIMS; larger tensors are reachable only raw. */
    if (t->ndim > LR_MAX_DIMS)
        return;
    EXPECT(lr_model_get(ctx, m, t->name, (lr_dtype)t->dtype, t->ndim, t->shape, &x) == LR_OK);
    int64_t n = lr_tensor_numel(&x);
    EXPECT(n >= 0 && (size_t)n * lr_dtype_size(x.dtype) == t->nbytes);
    if (n == 0)
        return;
    /* Typed loads of the first and last element: UBSan flags a misaligned pointer. */
    switch (x.dtype) {
    case LR_F32: fsink = ((const float *)x.data)[0] + ((const float *)x.data)[n - 1]; break;
    case LR_I32: isink = ((const int32_t *)x.data)[0] ^ ((const int32_t *)x.data)[n - 1]; break;
    case LR_F16:
    case LR_BF16: sink = ((const uint16_t *)x.data)[0] + ((const uint16_t *)x.data)[n - 1]; break;
    default: sink = ((const uint8_t *)x.data)[n - 1];
    }
    /* 16-bit floats widen once, into the model's shared block: the same copy both times. */
    if (x.dtype == LR_F16 || x.dtype == LR_BF16) {
        lr_tensor w1, w2;
        EXPECT(lr_model_get_f32(ctx, m, t->name, t->ndim, t->shape, &w1) == LR_OK);
        EXPECT(lr_model_get_f32(ctx, m, t->name, t->ndim, t->shape, &w2) == LR_OK && w1.data == w2.data);
        uint16_t last = ((const uint16_t *)x.data)[n - 1];
        float want = x.dtype == LR_F16 ? lr_f16_to_f32(last) : lr_bf16_to_f32(last);
        float got = ((const float *)w1.data)[n - 1];
        EXPECT(memcmp(&got, &want, sizeof got) == 0);
    }
    int64_t wrong[LR_MAX_DIMS];
    memcpy(wrong, t->shape, sizeof wrong);
    if (t->ndim > 0) {
        wrong[0] = t->shape[0] + 1;
        EXPECT(lr_model_get(ctx, m, t->name, (lr_dtype)t->dtype, t->ndim, wrong, &x) == LR_ERR_MODEL);
    }
}

static void touch_model(lr_ctx *ctx, const lr_model *m)
{
    for (size_t i = 0; i < lr_model_tensor_count(m); i++)
        touch_tensor(ctx, m, lr_model_tensor_at(m, i));
    for (size_t i = 0; i < lr_model_meta_count(m); i++) {
        const char *key, *value;
        lr_model_meta_at(m, i, &key, &value);
        EXPECT(key && value);
        EXPECT(lr_model_meta(m, key) == value);
        int64_t iv;
        double dv;
        lr_model_meta_int(ctx, m, key, false, 0, &iv);
        lr_model_meta_float(ctx, m, key, false, 0, &dv);
    }
    lr_model_expect_arch(ctx, m, "hyenadna");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lr_ctx *ctx = fuzz_ctx();
    lr_model *m = NULL;
    lr_status s = lr_model_open_memory(ctx, "fuzz", data, size, &m);
    if (s != LR_OK) {
        const char *msg = lr_ctx_last_error(ctx);
        EXPECT(m == NULL && (s == LR_ERR_MODEL || s == LR_ERR_NOMEM));
        EXPECT(strncmp(msg, "fuzz: ", 6) == 0 && !strchr(msg, '\n'));
        return 0;
    }
    touch_model(ctx, m);
    lr_model_close(m);

    /* The same bytes at an odd address: every multi-byte tensor must now be copied. */
    unsigned char *odd = malloc(size + 1);
    EXPECT(odd);
    memcpy(odd + 1, data, size);
    EXPECT(lr_model_open_memory(ctx, "fuzz", odd + 1, size, &m) == LR_OK);
    touch_model(ctx, m);
    lr_model_close(m);
    free(odd);
    return 0;
}
