/* Random inputs for attention cases, and comparisons of outputs. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attn_bench.h"

/* splitmix64: a fixed stream, so that --seed gives the same inputs on every machine. */
static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

/* Fills a contiguous F32 or BF16 tensor. */
static void fill_random(lr_tensor *t, uint64_t seed, float lo, float hi, bool signs_only)
{
    uint64_t state = seed;
    int64_t n = lr_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        uint64_t r = next_random(&state);
        float x = signs_only ? ((r >> 63) ? 1.0f : -1.0f)
                             : lo + (hi - lo) * (float)(r >> 40) * 0x1p-24f;
        if (t->dtype == LR_BF16)
            ((uint16_t *)t->data)[i] = lr_f32_to_bf16(x);
        else
            ((float *)t->data)[i] = x;
    }
}

void fill_uniform(lr_tensor *t, uint64_t seed, float lo, float hi)
{
    fill_random(t, seed, lo, hi, false);
}

void fill_key_padding(lr_tensor *padding, uint64_t seed)
{
    uint64_t state = seed;
    int64_t Lk = padding->shape[1];
    unsigned char *mask = padding->data;
    for (int64_t j = 0; j < Lk; j++)
        mask[j] = (next_random(&state) >> 62) == 0;
    memset(mask + Lk, 1, (size_t)((padding->shape[0] - 1) * Lk));
}

lr_status tensor_zeros(lr_ctx *ctx, int ndim, const int64_t *shape, lr_dtype dtype,
                       lr_tensor *out)
{
    size_t bytes;
    if (!lr_shape_nbytes(dtype, ndim, shape, &bytes))
        return lr_fail(ctx, LR_ERR_NOMEM, "tensor too large");
    void *data;
    /* Cache-line aligned like the library's own buffers; memset makes the pages resident now,
     * so that they do not count as memory the kernel needed. */
    if (posix_memalign(&data, 64, bytes ? bytes : 64) != 0)
        return lr_fail(ctx, LR_ERR_NOMEM, "out of memory for a tensor of %zu bytes", bytes);
    memset(data, 0, bytes);
    *out = lr_tensor_from(data, dtype, ndim, shape);
    return LR_OK;
}

lr_status tensors_alloc(lr_ctx *ctx, const attn_case *c, uint64_t seed, bool signs_only,
                        attn_tensors *t)
{
    memset(t, 0, sizeof *t);
    const int64_t q_shape[4] = {c->B, c->Hq, c->Lq, c->D};
    const int64_t kv_shape[4] = {c->B, c->Hkv, c->Lk, c->D};
    lr_status s = tensor_zeros(ctx, 4, q_shape, c->dtype, &t->q);
    if (s == LR_OK)
        s = tensor_zeros(ctx, 4, kv_shape, c->dtype, &t->k);
    if (s == LR_OK)
        s = tensor_zeros(ctx, 4, kv_shape, c->dtype, &t->v);
    if (s == LR_OK)
        s = tensor_zeros(ctx, 4, q_shape, LR_F32, &t->out);
    if (s != LR_OK) {
        tensors_free(t);
        return s;
    }
    /* Distinct streams for q, k and v; v stays uniform so outputs are never all equal. */
    fill_random(&t->q, seed * 3 + 0, -1.0f, 1.0f, signs_only);
    fill_random(&t->k, seed * 3 + 1, -1.0f, 1.0f, signs_only);
    fill_random(&t->v, seed * 3 + 2, -1.0f, 1.0f, false);
    return LR_OK;
}

void tensors_free(attn_tensors *t)
{
    free(t->q.data);
    free(t->k.data);
    free(t->v.data);
    free(t->out.data);
    memset(t, 0, sizeof *t);
}

static float value_at(const lr_tensor *t, int64_t b, int64_t h, int64_t i, int64_t d)
{
    const int64_t idx[4] = {b, h, i, d};
    return *(const float *)lr_tensor_at(t, idx);
}

void compare_values(const lr_tensor *x, const lr_tensor *ref, attn_error *e)
{
    for (int64_t b = 0; b < ref->shape[0]; b++)
        for (int64_t h = 0; h < ref->shape[1]; h++)
            for (int64_t i = 0; i < ref->shape[2]; i++) {
                /* A row that sees no key is all zeros in the reference. A single zero is
                 * no such row: values of opposite sign can cancel exactly in double and
                 * leave a rounding residue in float. */
                bool masked_row = true;
                for (int64_t d = 0; d < ref->shape[3] && masked_row; d++)
                    masked_row = value_at(ref, b, h, i, d) == 0;
                for (int64_t d = 0; d < ref->shape[3]; d++) {
                    double r = value_at(ref, b, h, i, d), v = value_at(x, b, h, i, d);
                    double diff = fabs(v - r);
                    if (isnan(diff))
                        diff = INFINITY;
                    e->max_abs = fmax(e->max_abs, diff);
                    e->max_ref = fmax(e->max_ref, fabs(r));
                    if (masked_row && v != 0)
                        e->zeros_broken++;
                }
            }
}

double error_relative(const attn_error *e)
{
    return e->max_ref > 0 ? e->max_abs / e->max_ref : e->max_abs;
}

int64_t count_bit_differences(const lr_tensor *x, const lr_tensor *y)
{
    int64_t differ = 0;
    for (int64_t b = 0; b < y->shape[0]; b++)
        for (int64_t h = 0; h < y->shape[1]; h++)
            for (int64_t i = 0; i < y->shape[2]; i++)
                for (int64_t d = 0; d < y->shape[3]; d++) {
                    const int64_t idx[4] = {b, h, i, d};
                    differ += memcmp(lr_tensor_at(x, idx), lr_tensor_at(y, idx), sizeof(float)) != 0;
                }
    return differ;
}
