/* Tensor views, shape arithmetic and dtype conversion. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "internal.h"
#include "longrange/tensor.h"

static const struct {
    const char *name;
    const char *alias; /* the torch/numpy spelling */
    size_t size;
} dtype_info[LR_DTYPE_COUNT] = {
    [LR_F32] = {"f32", "float32", 4},
    [LR_F16] = {"f16", "float16", 2},
    [LR_BF16] = {"bf16", "bfloat16", 2},
    [LR_I32] = {"i32", "int32", 4},
    [LR_U8] = {"u8", "uint8", 1},
};

size_t lr_dtype_size(lr_dtype t) { return (unsigned)t < LR_DTYPE_COUNT ? dtype_info[t].size : 0; }

const char *lr_dtype_name(lr_dtype t) { return (unsigned)t < LR_DTYPE_COUNT ? dtype_info[t].name : "?"; }

int lr_dtype_parse(const char *name)
{
    for (int t = 0; t < LR_DTYPE_COUNT; t++)
        if (strcasecmp(name, dtype_info[t].name) == 0 || strcasecmp(name, dtype_info[t].alias) == 0)
            return t;
    return -1;
}

int64_t lr_shape_numel(int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || __builtin_mul_overflow(n, shape[i], &n))
            return -1;
    }
    return n;
}

bool lr_shape_nbytes(lr_dtype t, int ndim, const int64_t *shape, size_t *out)
{
    int64_t n = lr_shape_numel(ndim, shape);
    if (n < 0 || (uint64_t)n > SIZE_MAX || lr_dtype_size(t) == 0)
        return false;
    return lr_mul_size((size_t)n, lr_dtype_size(t), out);
}

lr_tensor lr_tensor_from(void *data, lr_dtype t, int ndim, const int64_t *shape)
{
    lr_tensor x;
    memset(&x, 0, sizeof x);
    x.data = data;
    x.dtype = t;
    x.ndim = ndim;
    int64_t stride = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        x.shape[i] = shape[i];
        x.stride[i] = stride;
        stride *= shape[i];
    }
    return x;
}

static lr_status check_shape(lr_ctx *ctx, int ndim, const int64_t *shape)
{
    if (ndim < 0 || ndim > LR_MAX_DIMS)
        return lr_fail(ctx, LR_ERR_ARG, "tensor rank %d outside 0..%d", ndim, LR_MAX_DIMS);
    if (lr_shape_numel(ndim, shape) < 0) {
        char buf[128];
        return lr_fail(ctx, LR_ERR_ARG, "invalid tensor shape %s", lr_shape_str(ndim, shape, buf, sizeof buf));
    }
    return LR_OK;
}

lr_status lr_tensor_alloc(lr_ctx *ctx, lr_arena *a, lr_dtype t, int ndim, const int64_t *shape,
                          lr_tensor *out)
{
    lr_status s = check_shape(ctx, ndim, shape);
    if (s != LR_OK)
        return s;
    size_t bytes;
    if (!lr_shape_nbytes(t, ndim, shape, &bytes))
        return lr_fail(ctx, LR_ERR_NOMEM, "tensor too large");
    void *p = lr_arena_alloc(ctx, a, bytes);
    if (!p && a->base)
        return LR_ERR_NOMEM; /* the arena has set the message */
    *out = lr_tensor_from(p, t, ndim, shape);
    return LR_OK;
}

int64_t lr_tensor_numel(const lr_tensor *t) { return lr_shape_numel(t->ndim, t->shape); }

bool lr_tensor_is_contiguous(const lr_tensor *t)
{
    int64_t expect = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->stride[i] != expect)
            return false;
        expect *= t->shape[i];
    }
    return true;
}

void *lr_tensor_at(const lr_tensor *t, const int64_t *idx)
{
    int64_t off = 0;
    for (int i = 0; i < t->ndim; i++)
        off += idx[i] * t->stride[i];
    return (char *)t->data + off * (int64_t)lr_dtype_size(t->dtype);
}

lr_status lr_tensor_slice(lr_ctx *ctx, const lr_tensor *t, int dim, int64_t start, int64_t len,
                          lr_tensor *out)
{
    if (dim < 0 || dim >= t->ndim)
        return lr_fail(ctx, LR_ERR_ARG, "slice: dimension %d outside 0..%d", dim, t->ndim - 1);
    if (start < 0 || len < 0 || start > t->shape[dim] || len > t->shape[dim] - start)
        return lr_fail(ctx, LR_ERR_ARG, "slice: [%lld, %lld+%lld) outside dimension %d of extent %lld",
                       (long long)start, (long long)start, (long long)len, dim, (long long)t->shape[dim]);
    lr_tensor v = *t;
    v.data = (char *)t->data + start * t->stride[dim] * (int64_t)lr_dtype_size(t->dtype);
    v.shape[dim] = len;
    *out = v;
    return LR_OK;
}

lr_status lr_tensor_transpose(lr_ctx *ctx, const lr_tensor *t, int d0, int d1, lr_tensor *out)
{
    if (d0 < 0 || d0 >= t->ndim || d1 < 0 || d1 >= t->ndim)
        return lr_fail(ctx, LR_ERR_ARG, "transpose: dimensions %d, %d outside 0..%d", d0, d1, t->ndim - 1);
    lr_tensor v = *t;
    v.shape[d0] = t->shape[d1];
    v.shape[d1] = t->shape[d0];
    v.stride[d0] = t->stride[d1];
    v.stride[d1] = t->stride[d0];
    *out = v;
    return LR_OK;
}

lr_status lr_tensor_reshape(lr_ctx *ctx, const lr_tensor *t, int ndim, const int64_t *shape,
                            lr_tensor *out)
{
    char a[128], b[128];
    if (!lr_tensor_is_contiguous(t))
        return lr_fail(ctx, LR_ERR_ARG, "reshape: tensor is not contiguous");
    if (ndim < 0 || ndim > LR_MAX_DIMS)
        return lr_fail(ctx, LR_ERR_ARG, "reshape: rank %d outside 0..%d", ndim, LR_MAX_DIMS);
    int64_t want[LR_MAX_DIMS];
    int infer = -1;
    int64_t known = 1;
    for (int i = 0; i < ndim; i++) {
        want[i] = shape[i];
        if (shape[i] == -1 && infer < 0) {
            infer = i;
            continue;
        }
        if (shape[i] < 0 || __builtin_mul_overflow(known, shape[i], &known))
            return lr_fail(ctx, LR_ERR_ARG, "reshape: invalid shape %s", lr_shape_str(ndim, shape, a, sizeof a));
    }
    int64_t n = lr_tensor_numel(t);
    if (infer >= 0) {
        if (known == 0 || n % known != 0)
            return lr_fail(ctx, LR_ERR_ARG, "reshape: cannot infer a dimension of %s from %lld elements",
                           lr_shape_str(ndim, shape, a, sizeof a), (long long)n);
        want[infer] = n / known;
        known = n;
    }
    if (known != n)
        return lr_fail(ctx, LR_ERR_ARG, "reshape: %s and %s differ in size",
                       lr_shape_str(t->ndim, t->shape, a, sizeof a), lr_shape_str(ndim, shape, b, sizeof b));
    *out = lr_tensor_from(t->data, t->dtype, ndim, want);
    return LR_OK;
}

static bool is_float(lr_dtype t) { return t == LR_F32 || t == LR_F16 || t == LR_BF16; }

static float load_float(const void *p, lr_dtype t)
{
    switch (t) {
    case LR_F16: return lr_f16_to_f32(*(const uint16_t *)p);
    case LR_BF16: return lr_bf16_to_f32(*(const uint16_t *)p);
    default: return *(const float *)p;
    }
}

static void store_float(void *p, lr_dtype t, float v)
{
    switch (t) {
    case LR_F16: *(uint16_t *)p = lr_f32_to_f16(v); break;
    case LR_BF16: *(uint16_t *)p = lr_f32_to_bf16(v); break;
    default: *(float *)p = v; break;
    }
}

/* Contiguous conversions. The loops work in blocks of CONVERT_BLOCK with a fixed trip count
 * and restrict pointers, so the compiler vectorises them even at -O2 (gcc's very-cheap cost
 * model only takes loops without a scalar epilogue); target_clones adds AVX2 and AVX-512
 * versions picked at load time. Each lane gets the scalar lr_* function's result with
 * integer steps and exact float steps, so the output is theirs bit for bit (test_tensor: all
 * 65536 half and bfloat16 patterns and a spread of floats); the tail uses those functions.
 * The cloned functions have file-unique names: clang 14 makes their resolvers global. */
enum { CONVERT_BLOCK = 16, CONVERT_CHUNK = 1024 };

static inline uint32_t float_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float bits_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Branch-free lr_f16_to_f32: rebias the exponent, once more for inf/NaN; zero and subnormal
 * halves are man * 2^-24, exact in float. */
static inline float half_to_float(uint16_t h)
{
    uint32_t em = h & 0x7fffu;
    uint32_t bits = (em << 13) + (112u << 23);
    /* computed for every lane and selected with masks, so gcc if-converts the loop */
    uint32_t subnormal = float_bits((float)(int32_t)em * 0x1p-24f);
    bits += (uint32_t)(em >= 0x7c00u) * (112u << 23);
    uint32_t is_subnormal = 0u - (uint32_t)(em < 0x400u);
    bits = (subnormal & is_subnormal) | (bits & ~is_subnormal);
    return bits_float(bits | (uint32_t)(h & 0x8000u) << 16);
}

/* Branch-free lr_f32_to_f16: normal results round the 13 dropped bits to nearest even with
 * one add; subnormal ones come from adding 0.5f, whose ulp (2^-24) is the half's. */
static inline uint16_t float_to_half(float f)
{
    uint32_t x = float_bits(f), abs = x & 0x7fffffffu;
    uint32_t normal = ((abs + 0xfffu + ((abs >> 13) & 1)) >> 13) - (112u << 10);
    uint32_t subnormal = float_bits(bits_float(abs) + 0.5f) - 0x3f000000u;
    /* selects as masks: gcc if-converts these, not a chain of ?: */
    uint32_t is_subnormal = 0u - (uint32_t)(abs < 0x38800000u);
    uint32_t is_inf = 0u - (uint32_t)(abs >= 0x477ff000u); /* overflow and inf */
    uint32_t is_nan = 0u - (uint32_t)(abs > 0x7f800000u);  /* quiet NaN */
    uint32_t h = (subnormal & is_subnormal) | (normal & ~is_subnormal);
    h = (0x7c00u & is_inf) | (h & ~is_inf);
    h |= 0x200u & is_nan;
    return (uint16_t)(h | ((x >> 16) & 0x8000u));
}

static inline uint16_t float_to_bfloat(float f)
{
    uint32_t x = float_bits(f);
    uint32_t rounded = (x + 0x7fffu + ((x >> 16) & 1)) >> 16, quiet = (x >> 16) | 0x40u;
    return (uint16_t)((x & 0x7fffffffu) > 0x7f800000u ? quiet : rounded);
}

__attribute__((target_clones("avx512f", "avx2", "default")))
static void tensor_half_to_float_n(const uint16_t *restrict src, float *restrict dst, size_t n, int bfloat)
{
    size_t i = 0;
    if (bfloat) {
        for (; i + CONVERT_BLOCK <= n; i += CONVERT_BLOCK)
            for (int j = 0; j < CONVERT_BLOCK; j++)
                dst[i + j] = bits_float((uint32_t)src[i + j] << 16);
    } else {
        for (; i + CONVERT_BLOCK <= n; i += CONVERT_BLOCK)
            for (int j = 0; j < CONVERT_BLOCK; j++)
                dst[i + j] = half_to_float(src[i + j]);
    }
    for (; i < n; i++)
        dst[i] = bfloat ? lr_bf16_to_f32(src[i]) : lr_f16_to_f32(src[i]);
}

__attribute__((target_clones("avx512f", "avx2", "default")))
static void tensor_float_to_half_n(const float *restrict src, uint16_t *restrict dst, size_t n, int bfloat)
{
    size_t i = 0;
    if (bfloat) {
        for (; i + CONVERT_BLOCK <= n; i += CONVERT_BLOCK)
            for (int j = 0; j < CONVERT_BLOCK; j++)
                dst[i + j] = float_to_bfloat(src[i + j]);
    } else {
        for (; i + CONVERT_BLOCK <= n; i += CONVERT_BLOCK)
            for (int j = 0; j < CONVERT_BLOCK; j++)
                dst[i + j] = float_to_half(src[i + j]);
    }
    for (; i < n; i++)
        dst[i] = bfloat ? lr_f32_to_bf16(src[i]) : lr_f32_to_f16(src[i]);
}

/* Both tensors contiguous and of float dtypes that differ: convert in chunks through f32. */
static void convert_contiguous(const lr_tensor *src, lr_tensor *dst, size_t n)
{
    float buf[CONVERT_CHUNK];
    for (size_t off = 0; off < n; off += CONVERT_CHUNK) {
        size_t m = n - off < CONVERT_CHUNK ? n - off : CONVERT_CHUNK;
        const float *f = buf;
        if (src->dtype == LR_F32)
            f = (const float *)src->data + off;
        else if (dst->dtype == LR_F32)
            tensor_half_to_float_n((const uint16_t *)src->data + off, (float *)dst->data + off, m, src->dtype == LR_BF16);
        else
            tensor_half_to_float_n((const uint16_t *)src->data + off, buf, m, src->dtype == LR_BF16);
        if (dst->dtype != LR_F32)
            tensor_float_to_half_n(f, (uint16_t *)dst->data + off, m, dst->dtype == LR_BF16);
    }
}

lr_status lr_tensor_copy(lr_ctx *ctx, const lr_tensor *src, lr_tensor *dst)
{
    char a[128], b[128];
    if (src->ndim != dst->ndim || memcmp(src->shape, dst->shape, (size_t)src->ndim * sizeof src->shape[0]))
        return lr_fail(ctx, LR_ERR_ARG, "copy: shapes %s and %s differ",
                       lr_shape_str(src->ndim, src->shape, a, sizeof a), lr_shape_str(dst->ndim, dst->shape, b, sizeof b));
    bool convert = src->dtype != dst->dtype;
    if (convert && !(is_float(src->dtype) && is_float(dst->dtype)))
        return lr_fail(ctx, LR_ERR_ARG, "copy: cannot convert %s to %s", lr_dtype_name(src->dtype), lr_dtype_name(dst->dtype));
    int64_t n = lr_tensor_numel(src);
    size_t es = lr_dtype_size(src->dtype);
    if (n <= 0)
        return LR_OK;
    if (lr_tensor_is_contiguous(src) && lr_tensor_is_contiguous(dst)) {
        if (convert)
            convert_contiguous(src, dst, (size_t)n);
        else
            memmove(dst->data, src->data, (size_t)n * es);
        return LR_OK;
    }
    int64_t idx[LR_MAX_DIMS] = {0};
    for (int64_t k = 0; k < n; k++) {
        const void *ps = lr_tensor_at(src, idx);
        void *pd = lr_tensor_at(dst, idx);
        if (convert)
            store_float(pd, dst->dtype, load_float(ps, src->dtype));
        else
            memcpy(pd, ps, es);
        for (int i = src->ndim - 1; i >= 0; i--) { /* odometer over the index */
            if (++idx[i] < src->shape[i])
                break;
            idx[i] = 0;
        }
    }
    return LR_OK;
}

/* IEEE half: 1 sign, 5 exponent, 10 mantissa bits. */
float lr_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13);
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    } else if (man == 0) {
        bits = sign;
    } else { /* subnormal: renormalise */
        int shift = 0;
        while (!(man & 0x400)) {
            man <<= 1;
            shift++;
        }
        bits = sign | ((uint32_t)(113 - shift) << 23) | ((man & 0x3ff) << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t lr_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t abs = x & 0x7fffffffu;
    if (abs >= 0x7f800000u) /* inf or nan (keep nan quiet) */
        return sign | 0x7c00 | (abs > 0x7f800000u ? 0x200 : 0);
    if (abs >= 0x477ff000u) /* rounds to beyond 65504 */
        return sign | 0x7c00;
    if (abs < 0x38800000u) { /* subnormal or zero in half */
        if (abs < 0x33000000u)
            return sign;
        uint32_t man = (abs & 0x7fffff) | 0x800000;
        int shift = 126 - (int)(abs >> 23); /* 14..24 */
        uint32_t half = man >> shift;
        uint32_t rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1)))
            half++;
        return sign | (uint16_t)half;
    }
    uint32_t h = ((abs >> 13) - (112u << 10));
    uint32_t rem = abs & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1)))
        h++;
    return sign | (uint16_t)h;
}

float lr_bf16_to_f32(uint16_t b)
{
    uint32_t bits = (uint32_t)b << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t lr_f32_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((x >> 16) | 0x40); /* quiet nan */
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

const char *lr_shape_str(int ndim, const int64_t *shape, char *buf, size_t size)
{
    size_t pos = 0;
    int n = snprintf(buf, size, "[");
    pos = n > 0 ? (size_t)n : 0;
    for (int i = 0; i < ndim && pos < size; i++) {
        n = snprintf(buf + pos, size - pos, "%s%lld", i ? ", " : "", (long long)shape[i]);
        if (n < 0)
            break;
        pos += (size_t)n;
    }
    if (pos < size)
        snprintf(buf + pos, size - pos, "]");
    return buf;
}

lr_status lr_check_tensor4(lr_ctx *ctx, const char *op, const char *name, const lr_tensor *t,
                           const char *layout, int dtype)
{
    char buf[128];
    if (!t)
        return lr_fail(ctx, LR_ERR_ARG, "%s: %s is missing", op, name);
    if (t->ndim != 4)
        return lr_fail(ctx, LR_ERR_ARG, "%s: %s must be %s, got shape %s", op, name, layout,
                       lr_shape_str(t->ndim, t->shape, buf, sizeof buf));
    if (dtype >= 0 && t->dtype != (lr_dtype)dtype)
        return lr_fail(ctx, LR_ERR_ARG, "%s: %s must be %s, got %s", op, name, lr_dtype_name((lr_dtype)dtype),
                       lr_dtype_name(t->dtype));
    if (lr_tensor_numel(t) < 0)
        return lr_fail(ctx, LR_ERR_ARG, "%s: %s has an invalid shape %s", op, name,
                       lr_shape_str(t->ndim, t->shape, buf, sizeof buf));
    if (t->shape[3] > 1 && t->stride[3] != 1)
        return lr_fail(ctx, LR_ERR_ARG, "%s: the last dimension of %s must be contiguous (stride %lld)", op, name,
                       (long long)t->stride[3]);
    if (!t->data && lr_tensor_numel(t) > 0)
        return lr_fail(ctx, LR_ERR_ARG, "%s: %s has no data", op, name);
    return LR_OK;
}
