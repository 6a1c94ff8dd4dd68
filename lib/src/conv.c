/* 2-D convolutions (conv.h): argument checks, the double-precision references, and the fast
 * paths.
 *
 * Convolution: per group, out[cout/groups x pixels] = W[cout/groups x K] * col[K x pixels],
 * K = cin/groups * kh * kw, as an implicit GEMM on lr_sgemm's packers and micro-kernels
 * (gemm_internal.h): the weights are packed once per call; a task owns one group's tile of
 * output pixels and, per K block, gathers its column block (im2col of the tile only, L2-sized,
 * in the thread's scratch), packs it, runs the micro-kernels straight into the output, and
 * applies bias and activation while the tile is in cache. A 1x1 stride-1 unpadded convolution
 * packs the input planes directly. Scratch is bounded by the tile, whatever the image size.
 * Depthwise convolutions (groups == cin == cout) are a direct loop, one task per (channel,
 * rows), with the level's kernel summing all taps of a row segment in registers.
 * Stride-1 ungrouped convolutions with few output channels, or a kernel above 1x1 on rows at
 * least 20 wide (use_direct has the rule and its measurements), are a direct loop instead of
 * the GEMM: one task per band of output rows copies the band's input rows with explicit zero
 * padding, and the level's kernel keeps a block of output channels x pixel vectors in
 * registers over all (ci, ky, kx) taps, with bias and activation applied at the store.
 *
 * Transposed convolution: per group, col[cout/groups * kh * kw x pixels] = W^T * in with the
 * same packers and micro-kernels, on L2-sized tiles of a band of input rows, each tile then
 * scatter-added into the output (col2im); bands of one parity at a time, so that no two tasks
 * write the same value.
 *
 * Bit-identical for any thread count: tiles, bands and tasks depend only on the shapes and the
 * CPU level (the direct path's bands also on the thread count, but there every value is one
 * sum in (ci, ky, kx) order whatever the band), and each output value is summed by one
 * task at a time, in a fixed order. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gemm_internal.h"
#include "internal.h"
#include "longrange/conv.h"
#include "longrange/parallel.h"

enum {
    DW_ROWS_PER_TASK = 8,        /* depthwise task: this many output rows of one channel */
    EPILOGUE_PIXELS = 1 << 14,   /* bias/activation task: a channel's pixels in chunks of this */
    TILE_FLOATS = 1 << 15,       /* a conv task's column block: 128 KB, so it and its packed
                                    copy stay in L2 */
    MIN_TILE_PIXELS = 128,
    MAX_TILE_PIXELS = 2048,
};

/* The kernels each CPU level has (cpu/conv_*.c).
 * dw_taps: out[x] = sum over r < rows, t < kw (in that order) of wt[r * kw + t] *
 *     src[r * row_step + x + t * dil], for x in [0, n), every element read inside the image.
 * bias_act: x = act(x + bias) with kind 0 none, 1 ReLU, 2 x < 0 ? slope * x : x, 3 hard-swish. */
typedef void (*dw_taps_fn)(float *out, int64_t n, const float *src, int64_t row_step, const float *wt, int rows,
                           int kw, int64_t dil);
typedef void (*bias_act_fn)(float *x, int64_t n, float bias, float slope, int kind);
void lr_conv_dw_taps_avx2(float *out, int64_t n, const float *src, int64_t row_step, const float *wt, int rows,
                          int kw, int64_t dil);
void lr_conv_dw_taps_avx512(float *out, int64_t n, const float *src, int64_t row_step, const float *wt, int rows,
                            int kw, int64_t dil);
void lr_conv_bias_act_avx2(float *x, int64_t n, float bias, float slope, int kind);
void lr_conv_bias_act_avx512(float *x, int64_t n, float bias, float slope, int kind);
/* scatter_add: dst[x * stride] += src[x] for x in [0, n). */
typedef void (*scatter_add_fn)(float *dst, const float *src, int64_t n, int64_t stride);
void lr_conv_scatter_add_avx2(float *dst, const float *src, int64_t n, int64_t stride);
void lr_conv_scatter_add_avx512(float *dst, const float *src, int64_t n, int64_t stride);
/* direct: for c < nc, x < n: out[c * out_cstride + x] = act(sum over ci < cin, ky < kh,
 * kx < kw (in that order, from 0) of wpk[((ci * kh + ky) * kw + kx) * nc + c] *
 * src[ci * ci_step + ky * row_step + x + kx] (+ bias[c] if bias), slope[c]) with act by kind
 * as bias_act; nc <= the level's direct_max_nc. */
typedef void (*direct_fn)(float *out, int64_t out_cstride, int64_t n, int nc, const float *src, int64_t ci_step,
                          int64_t row_step, int cin, int kh, int kw, const float *wpk, const float *bias,
                          const float *slope, int kind);
void lr_conv_direct_avx2(float *out, int64_t out_cstride, int64_t n, int nc, const float *src, int64_t ci_step,
                         int64_t row_step, int cin, int kh, int kw, const float *wpk, const float *bias,
                         const float *slope, int kind);
void lr_conv_direct_avx512(float *out, int64_t out_cstride, int64_t n, int nc, const float *src, int64_t ci_step,
                           int64_t row_step, int cin, int kh, int kw, const float *wpk, const float *bias,
                           const float *slope, int kind);

static void scatter_add_ref(float *dst, const float *src, int64_t n, int64_t stride)
{
    for (int64_t x = 0; x < n; x++)
        dst[x * stride] += src[x];
}

static void dw_taps_ref(float *out, int64_t n, const float *src, int64_t row_step, const float *wt, int rows, int kw,
                        int64_t dil)
{
    for (int64_t x = 0; x < n; x++) {
        float acc = 0;
        for (int r = 0; r < rows; r++)
            for (int t = 0; t < kw; t++)
                acc += wt[r * kw + t] * src[r * row_step + x + t * dil];
        out[x] = acc;
    }
}

static void bias_act_ref(float *x, int64_t n, float bias, float slope, int kind);

static void direct_ref(float *out, int64_t out_cstride, int64_t n, int nc, const float *src, int64_t ci_step,
                       int64_t row_step, int cin, int kh, int kw, const float *wpk, const float *bias,
                       const float *slope, int kind)
{
    for (int c = 0; c < nc; c++) {
        float *o = out + c * out_cstride;
        for (int64_t x = 0; x < n; x++) {
            const float *w = wpk + c;
            float acc = 0;
            for (int ci = 0; ci < cin; ci++)
                for (int ky = 0; ky < kh; ky++) {
                    const float *s = src + ci * ci_step + ky * row_step + x;
                    for (int kx = 0; kx < kw; kx++, w += nc)
                        acc += *w * s[kx];
                }
            o[x] = acc;
        }
        bias_act_ref(o, n, bias ? bias[c] : 0.0f, slope[c], kind);
    }
}

static void bias_act_ref(float *x, int64_t n, float bias, float slope, int kind)
{
    for (int64_t i = 0; i < n; i++) {
        float v = x[i] + bias;
        if (kind == 1)
            v = v < 0 ? 0.0f : v;
        else if (kind == 2)
            v = v < 0 ? slope * v : v;
        else if (kind == 3)
            v = v * fminf(fmaxf(v + 3.0f, 0.0f), 6.0f) / 6.0f;
        x[i] = v;
    }
}

typedef struct {
    dw_taps_fn dw_taps;
    bias_act_fn bias_act;
    scatter_add_fn scatter_add;
    direct_fn direct;
    int direct_max_nc; /* output channels one direct call may take */
} conv_kernels;

static const conv_kernels kernels_ref = {dw_taps_ref, bias_act_ref, scatter_add_ref, direct_ref, 8};
static const conv_kernels kernels_avx2 = {lr_conv_dw_taps_avx2, lr_conv_bias_act_avx2, lr_conv_scatter_add_avx2,
                                          lr_conv_direct_avx2, 6};
static const conv_kernels kernels_avx512 = {lr_conv_dw_taps_avx512, lr_conv_bias_act_avx512,
                                            lr_conv_scatter_add_avx512, lr_conv_direct_avx512, 12};

static const conv_kernels *kernels_for(lr_cpu_level level)
{
    switch (level) {
    case LR_CPU_AVX512: return &kernels_avx512;
    case LR_CPU_AVX2: return &kernels_avx2;
    case LR_CPU_REF: break;
    }
    return &kernels_ref;
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
/* floor(a / b) for b > 0 and any sign of a. */
static int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

lr_conv2d_desc lr_conv2d_default(int kh, int kw)
{
    lr_conv2d_desc d;
    memset(&d, 0, sizeof d);
    d.kh = kh;
    d.kw = kw;
    d.stride_h = d.stride_w = 1;
    d.dil_h = d.dil_w = 1;
    d.groups = 1;
    d.act = LR_ACT_NONE;
    return d;
}

/* Output extents in 64 bits (they can overflow int for absurd descs); <= 0 when empty. */
static int64_t conv_extent(int64_t n, int64_t pad_a, int64_t pad_b, int64_t k, int64_t dil, int64_t stride)
{
    int64_t span = n + pad_a + pad_b - dil * (k - 1) - 1;
    return span < 0 ? 0 : span / stride + 1;
}

static int64_t transpose_extent(int64_t n, int64_t pad_a, int64_t pad_b, int64_t k, int64_t dil, int64_t stride,
                                int64_t out_pad)
{
    return (n - 1) * stride + dil * (k - 1) + 1 + out_pad - pad_a - pad_b;
}

static int clamp_extent(int64_t e) { return e < 1 || e > INT_MAX ? 0 : (int)e; }

void lr_conv2d_out_size(const lr_conv2d_desc *d, int h, int w, int *ho, int *wo)
{
    *ho = clamp_extent(conv_extent(h, d->pad_top, d->pad_bottom, d->kh, d->dil_h, d->stride_h));
    *wo = clamp_extent(conv_extent(w, d->pad_left, d->pad_right, d->kw, d->dil_w, d->stride_w));
    if (h < 1 || w < 1 || d->stride_h < 1 || d->stride_w < 1 || d->kh < 1 || d->kw < 1 || d->dil_h < 1 ||
        d->dil_w < 1)
        *ho = *wo = 0;
}

void lr_conv_transpose2d_out_size(const lr_conv2d_desc *d, int h, int w, int *ho, int *wo)
{
    *ho = clamp_extent(transpose_extent(h, d->pad_top, d->pad_bottom, d->kh, d->dil_h, d->stride_h, d->out_pad_h));
    *wo = clamp_extent(transpose_extent(w, d->pad_left, d->pad_right, d->kw, d->dil_w, d->stride_w, d->out_pad_w));
    if (h < 1 || w < 1 || d->stride_h < 1 || d->stride_w < 1 || d->kh < 1 || d->kw < 1 || d->dil_h < 1 ||
        d->dil_w < 1)
        *ho = *wo = 0;
}

/* ---- arguments ----------------------------------------------------------------------- */

/* The checks both ops share; sets *ho, *wo. */
static lr_status check_args(lr_ctx *ctx, const char *op, bool transposed, const lr_conv2d_desc *d, const float *in,
                            int cin, int h, int w, const float *weight, int cout, const float *out, int *ho,
                            int *wo)
{
    if (!d)
        return lr_fail(ctx, LR_ERR_ARG, "%s: desc is NULL", op);
    if (!in || !weight || !out)
        return lr_fail(ctx, LR_ERR_ARG, "%s: %s is NULL", op, !in ? "in" : !weight ? "weight" : "out");
    if (cin < 1 || cout < 1 || h < 1 || w < 1)
        return lr_fail(ctx, LR_ERR_ARG, "%s: cin %d, cout %d, h %d, w %d must all be >= 1", op, cin, cout, h, w);
    if (d->kh < 1 || d->kw < 1)
        return lr_fail(ctx, LR_ERR_ARG, "%s: kernel %dx%d must be at least 1x1", op, d->kh, d->kw);
    if (d->stride_h < 1 || d->stride_w < 1)
        return lr_fail(ctx, LR_ERR_ARG, "%s: stride %dx%d must be >= 1", op, d->stride_h, d->stride_w);
    if (d->dil_h < 1 || d->dil_w < 1)
        return lr_fail(ctx, LR_ERR_ARG, "%s: dilation %dx%d must be >= 1", op, d->dil_h, d->dil_w);
    if (d->pad_top < 0 || d->pad_left < 0 || d->pad_bottom < 0 || d->pad_right < 0)
        return lr_fail(ctx, LR_ERR_ARG, "%s: pads (top %d, left %d, bottom %d, right %d) must be >= 0", op,
                       d->pad_top, d->pad_left, d->pad_bottom, d->pad_right);
    if (transposed && (d->out_pad_h < 0 || d->out_pad_w < 0))
        return lr_fail(ctx, LR_ERR_ARG, "%s: output padding %dx%d must be >= 0", op, d->out_pad_h, d->out_pad_w);
    if (d->groups < 1 || cin % d->groups || cout % d->groups)
        return lr_fail(ctx, LR_ERR_ARG, "%s: groups %d must be >= 1 and divide cin %d and cout %d", op, d->groups,
                       cin, cout);
    switch (d->act) {
    case LR_ACT_NONE:
    case LR_ACT_RELU:
    case LR_ACT_LEAKY_RELU:
    case LR_ACT_SIGMOID:
    case LR_ACT_HARDSWISH: break;
    case LR_ACT_PRELU:
        if (!d->act_param || (d->act_param_count != 1 && d->act_param_count != cout))
            return lr_fail(ctx, LR_ERR_ARG, "%s: PReLU needs act_param with 1 or cout = %d slopes (got %s, count %d)",
                           op, cout, d->act_param ? "slopes" : "NULL", d->act_param_count);
        break;
    default: return lr_fail(ctx, LR_ERR_ARG, "%s: unknown activation %d", op, (int)d->act);
    }
    int64_t eh, ew;
    if (transposed) {
        eh = transpose_extent(h, d->pad_top, d->pad_bottom, d->kh, d->dil_h, d->stride_h, d->out_pad_h);
        ew = transpose_extent(w, d->pad_left, d->pad_right, d->kw, d->dil_w, d->stride_w, d->out_pad_w);
    } else {
        eh = conv_extent(h, d->pad_top, d->pad_bottom, d->kh, d->dil_h, d->stride_h);
        ew = conv_extent(w, d->pad_left, d->pad_right, d->kw, d->dil_w, d->stride_w);
    }
    if (eh < 1 || ew < 1)
        return lr_fail(ctx, LR_ERR_ARG, "%s: a %dx%d input gives an empty %lldx%lld output with this kernel, "
                       "dilation and padding", op, h, w, (long long)eh, (long long)ew);
    if (eh > INT_MAX || ew > INT_MAX || eh * ew > INT64_MAX / 4 / cout)
        return lr_fail(ctx, LR_ERR_ARG, "%s: output %lldx%lld is too large", op, (long long)eh, (long long)ew);
    *ho = (int)eh;
    *wo = (int)ew;
    return LR_OK;
}

/* ---- activation ---------------------------------------------------------------------- */

static float activate1(lr_act act, float x, float param)
{
    switch (act) {
    case LR_ACT_RELU: return x < 0 ? 0.0f : x; /* NaN stays NaN, as in PyTorch */
    case LR_ACT_LEAKY_RELU:
    case LR_ACT_PRELU: return x < 0 ? param * x : x;
    case LR_ACT_SIGMOID: return 1.0f / (1.0f + expf(-x));
    case LR_ACT_HARDSWISH: return x * fminf(fmaxf(x + 3.0f, 0.0f), 6.0f) / 6.0f;
    case LR_ACT_NONE: break;
    }
    return x;
}

/* The parameter activate1 takes for channel c. */
static float act_param_of(const lr_conv2d_desc *d, int64_t c)
{
    if (d->act == LR_ACT_LEAKY_RELU)
        return d->act_alpha;
    if (d->act == LR_ACT_PRELU)
        return d->act_param[d->act_param_count == 1 ? 0 : c];
    return 0.0f;
}

/* x[0..n) = act(x + bias) for channel c (bias may be NULL). */
static void bias_act_row(const conv_kernels *k, const lr_conv2d_desc *d, const float *bias, int64_t c, float *x,
                         int64_t n)
{
    float b = bias ? bias[c] : 0.0f, p = act_param_of(d, c);
    switch (d->act) {
    case LR_ACT_NONE:
        if (bias)
            k->bias_act(x, n, b, p, 0);
        return;
    case LR_ACT_RELU: k->bias_act(x, n, b, p, 1); return;
    case LR_ACT_LEAKY_RELU:
    case LR_ACT_PRELU: k->bias_act(x, n, b, p, 2); return;
    case LR_ACT_HARDSWISH: k->bias_act(x, n, b, p, 3); return;
    default:
        for (int64_t i = 0; i < n; i++)
            x[i] = activate1(d->act, x[i] + b, p);
    }
}

void lr_activate(const lr_conv2d_desc *d, float *x, int c, int64_t hw)
{
    if (!d || !x || c < 1 || hw < 1)
        return;
    if (d->act == LR_ACT_PRELU && (!d->act_param || (d->act_param_count != 1 && d->act_param_count != c)))
        return; /* no slopes to apply: nothing sensible to do, and nowhere to report it */
    for (int64_t ch = 0; ch < c; ch++)
        bias_act_row(&kernels_ref, d, NULL, ch, x + ch * hw, hw);
}

/* Bias + activation over channels [c0, c0 + nc) x pixels [p0, p1) of a [c][plane] output. */
typedef struct {
    const conv_kernels *k;
    const lr_conv2d_desc *d;
    const float *bias;
    float *out;
    int64_t plane, c0, p0, p1, chunks;
} epilogue_job;

static void epilogue_task(void *arg, size_t task, int thread)
{
    const epilogue_job *j = arg;
    int64_t c = j->c0 + (int64_t)task / j->chunks, a = j->p0 + (int64_t)task % j->chunks * EPILOGUE_PIXELS;
    int64_t b = min64(a + EPILOGUE_PIXELS, j->p1);
    bias_act_row(j->k, j->d, j->bias, c, j->out + c * j->plane + a, b - a);
}

static void run_epilogue(lr_ctx *ctx, const lr_conv2d_desc *d, const float *bias, float *out, int64_t plane,
                         int64_t c0, int64_t nc, int64_t p0, int64_t p1)
{
    if (!bias && d->act == LR_ACT_NONE)
        return;
    epilogue_job j = {kernels_for(lr_ctx_cpu(ctx)), d, bias, out, plane, c0, p0, p1, ceil_div(p1 - p0, EPILOGUE_PIXELS)};
    lr_parallel_for(ctx, (size_t)(nc * j.chunks), epilogue_task, &j);
}

/* ---- references ---------------------------------------------------------------------- */

typedef struct {
    lr_ctx *ctx;
    const lr_conv2d_desc *d;
    const float *in, *weight, *bias;
    float *out;
    int cin, h, w, cout, ho, wo;
} conv_call;

static void conv_ref_task(void *arg, size_t task, int thread)
{
    const conv_call *c = arg;
    const lr_conv2d_desc *d = c->d;
    int co = (int)(task / (size_t)c->ho), y = (int)(task % (size_t)c->ho);
    int cpg = c->cin / d->groups, opg = c->cout / d->groups, g = co / opg;
    float param = act_param_of(d, co);
    for (int x = 0; x < c->wo; x++) {
        double acc = c->bias ? c->bias[co] : 0.0;
        for (int ci = 0; ci < cpg; ci++) {
            const float *plane = c->in + (int64_t)(g * cpg + ci) * c->h * c->w;
            const float *wk = c->weight + ((int64_t)co * cpg + ci) * d->kh * d->kw;
            for (int ky = 0; ky < d->kh; ky++) {
                int64_t iy = (int64_t)y * d->stride_h - d->pad_top + (int64_t)ky * d->dil_h;
                if (iy < 0 || iy >= c->h)
                    continue;
                for (int kx = 0; kx < d->kw; kx++) {
                    int64_t ix = (int64_t)x * d->stride_w - d->pad_left + (int64_t)kx * d->dil_w;
                    if (ix >= 0 && ix < c->w)
                        acc += (double)wk[ky * d->kw + kx] * plane[iy * c->w + ix];
                }
            }
        }
        c->out[((int64_t)co * c->ho + y) * c->wo + x] = activate1(d->act, (float)acc, param);
    }
}

lr_status lr_conv2d_ref(lr_ctx *ctx, const lr_conv2d_desc *d, const float *in, int cin, int h, int w,
                        const float *weight, const float *bias, int cout, float *out)
{
    int ho, wo;
    lr_status s = check_args(ctx, "conv2d_ref", false, d, in, cin, h, w, weight, cout, out, &ho, &wo);
    if (s != LR_OK)
        return s;
    conv_call c = {ctx, d, in, weight, bias, out, cin, h, w, cout, ho, wo};
    lr_parallel_for(ctx, (size_t)cout * (size_t)ho, conv_ref_task, &c);
    return LR_OK;
}

/* Gathers instead of scattering, so it is independent of the fast path's formulation: output
 * row oy (before cropping, oy + pad_top) takes input row iy with tap ky when
 * iy * stride + ky * dil == oy + pad_top. */
static void transpose_ref_task(void *arg, size_t task, int thread)
{
    const conv_call *c = arg;
    const lr_conv2d_desc *d = c->d;
    int co = (int)(task / (size_t)c->ho), y = (int)(task % (size_t)c->ho);
    int cpg = c->cin / d->groups, opg = c->cout / d->groups, g = co / opg, col = co % opg;
    float param = act_param_of(d, co);
    for (int x = 0; x < c->wo; x++) {
        double acc = c->bias ? c->bias[co] : 0.0;
        for (int ky = 0; ky < d->kh; ky++) {
            int64_t ty = (int64_t)y + d->pad_top - (int64_t)ky * d->dil_h;
            if (ty < 0 || ty % d->stride_h || ty / d->stride_h >= c->h)
                continue;
            int64_t iy = ty / d->stride_h;
            for (int kx = 0; kx < d->kw; kx++) {
                int64_t tx = (int64_t)x + d->pad_left - (int64_t)kx * d->dil_w;
                if (tx < 0 || tx % d->stride_w || tx / d->stride_w >= c->w)
                    continue;
                int64_t ix = tx / d->stride_w;
                for (int ci = 0; ci < cpg; ci++) {
                    int64_t cig = (int64_t)g * cpg + ci;
                    double wv = c->weight[((cig * opg + col) * d->kh + ky) * d->kw + kx];
                    acc += wv * c->in[(cig * c->h + iy) * c->w + ix];
                }
            }
        }
        c->out[((int64_t)co * c->ho + y) * c->wo + x] = activate1(d->act, (float)acc, param);
    }
}

lr_status lr_conv_transpose2d_ref(lr_ctx *ctx, const lr_conv2d_desc *d, const float *in, int cin, int h, int w,
                                  const float *weight, const float *bias, int cout, float *out)
{
    int ho, wo;
    lr_status s = check_args(ctx, "conv_transpose2d_ref", true, d, in, cin, h, w, weight, cout, out, &ho, &wo);
    if (s != LR_OK)
        return s;
    conv_call c = {ctx, d, in, weight, bias, out, cin, h, w, cout, ho, wo};
    lr_parallel_for(ctx, (size_t)cout * (size_t)ho, transpose_ref_task, &c);
    return LR_OK;
}

/* ---- convolution: implicit GEMM ------------------------------------------------------ */

/* Row r = (ci, ky, kx) of the group's column matrix over output pixels [p0, p0 + n), into
 * dst[0..n): the input value each pixel's tap reads, 0 in the padding. */
static void im2col_row(const conv_call *c, const float *in_g, int64_t r, int64_t p0, int64_t n, float *dst)
{
    const lr_conv2d_desc *d = c->d;
    int64_t taps = (int64_t)d->kh * d->kw, ci = r / taps, ky = r % taps / d->kw, kx = r % d->kw;
    int64_t wo = c->wo, w = c->w;
    const float *plane = in_g + ci * c->h * w;
    int64_t off_x = kx * d->dil_w - d->pad_left;
    /* the output columns whose input column lies inside [0, w) */
    int64_t x_lo = max64(0, ceil_div(max64(0, -off_x), d->stride_w));
    int64_t x_hi = min64(wo, floor_div(w - 1 - off_x, d->stride_w) + 1);
    dst -= p0; /* indexed by pixel */
    for (int64_t p = p0, p1 = p0 + n; p < p1;) {
        int64_t y = p / wo, x0 = p % wo, x1 = min64(wo, x0 + p1 - p);
        float *row = dst + p - x0; /* indexed by x */
        int64_t iy = y * d->stride_h - d->pad_top + ky * d->dil_h;
        if (iy < 0 || iy >= c->h) {
            memset(row + x0, 0, (size_t)(x1 - x0) * sizeof(float));
        } else {
            int64_t a = min64(max64(x0, x_lo), x1), b = max64(min64(x1, x_hi), a);
            const float *src = plane + iy * w + off_x;
            for (int64_t x = x0; x < a; x++)
                row[x] = 0;
            if (d->stride_w == 1)
                memcpy(row + a, src + a, (size_t)(b - a) * sizeof(float));
            else
                for (int64_t x = a; x < b; x++)
                    row[x] = src[x * d->stride_w];
            for (int64_t x = b; x < x1; x++)
                row[x] = 0;
        }
        p += x1 - x0;
    }
}

/* The GEMM of every group runs without an im2col of the image: a task owns one group's tile
 * of nt output pixels and, for each K block, gathers the tile's column block (kc x nt, in its
 * scratch, so L2-sized) and packs it for the micro-kernel, which multiplies it by the weights
 * packed once per call. Each output value is summed by one micro-kernel call per K block in K
 * order, so the result depends on the shape and CPU level only. */
typedef struct {
    const conv_call *c;
    const lr_gemm_kernel *kern;
    const conv_kernels *ck;
    int64_t cpg, opg, K, P, hw;
    int64_t kc, n_kb;      /* K block and count */
    int64_t nt, tiles;     /* output pixels per task, tasks per group */
    int64_t m_panels;      /* ceil(opg / mr) */
    const float *apack;    /* per group and K block: m_panels panels of mr x kcb */
    int64_t apack_group;   /* floats per group */
    size_t col_floats;     /* a thread's column block; its packed block follows */
    bool direct;           /* 1x1, stride 1, unpadded: the input planes are the column matrix */
} igemm_job;

static void igemm_task(void *arg, size_t task, int thread)
{
    const igemm_job *j = arg;
    const conv_call *c = j->c;
    const lr_gemm_kernel *kern = j->kern;
    int64_t g = (int64_t)task / j->tiles, p0 = (int64_t)task % j->tiles * j->nt, n = min64(j->nt, j->P - p0);
    const float *in_g = c->in + g * j->cpg * j->hw;
    float *col = lr_thread_scratch(c->ctx, thread), *bpack = col + j->col_floats;
    float *out_g = c->out + g * j->opg * j->P + p0;
    for (int64_t kb = 0; kb < j->n_kb; kb++) {
        int64_t k0 = kb * j->kc, kcb = min64(j->kc, j->K - k0);
        if (j->direct) {
            kern->pack_b(in_g + k0 * j->hw + p0, 1, j->hw, n, kcb, bpack);
        } else {
            for (int64_t r = 0; r < kcb; r++)
                im2col_row(c, in_g, k0 + r, p0, n, col + r * n);
            kern->pack_b(col, 1, n, n, kcb, bpack);
        }
        const float *ablock = j->apack + g * j->apack_group + kb * j->m_panels * kern->mr * j->kc;
        float beta = kb == 0 ? 0.0f : 1.0f;
        for (int64_t i = 0; i < j->m_panels; i++) {
            const float *apanel = ablock + i * kern->mr * kcb;
            int m = (int)min64(kern->mr, j->opg - i * kern->mr);
            for (int64_t q = 0; q < n; q += kern->nr)
                kern->micro(kcb, apanel, bpack + q * kcb, out_g + i * kern->mr * j->P + q, j->P, m,
                            (int)min64(kern->nr, n - q), 1.0f, beta);
        }
    }
    if (c->bias || c->d->act != LR_ACT_NONE)
        for (int64_t co = 0; co < j->opg; co++)
            bias_act_row(j->ck, c->d, c->bias, g * j->opg + co, out_g + co * j->P, n);
}

static const lr_gemm_kernel *gemm_kernel_for(lr_cpu_level level)
{
    switch (level) {
    case LR_CPU_AVX512: return &lr_gemm_kernel_avx512;
    case LR_CPU_AVX2: return &lr_gemm_kernel_avx2;
    case LR_CPU_REF: break;
    }
    return &lr_gemm_kernel_ref;
}

static lr_status conv_gemm(lr_ctx *ctx, const conv_call *c)
{
    const lr_conv2d_desc *d = c->d;
    const lr_gemm_kernel *kern = gemm_kernel_for(lr_ctx_cpu(ctx));
    igemm_job j = {.c = c, .kern = kern, .ck = kernels_for(lr_ctx_cpu(ctx))};
    int64_t G = d->groups;
    j.cpg = c->cin / G;
    j.opg = c->cout / G;
    j.K = j.cpg * d->kh * d->kw;
    j.P = (int64_t)c->ho * c->wo;
    j.hw = (int64_t)c->h * c->w;
    j.direct = d->kh == 1 && d->kw == 1 && d->stride_h == 1 && d->stride_w == 1 && !d->pad_top && !d->pad_left &&
               !d->pad_bottom && !d->pad_right;
    j.n_kb = ceil_div(j.K, kern->kc);
    j.kc = ceil_div(j.K, j.n_kb);
    /* a column block of about TILE_FLOATS, a whole number of micro-tiles wide */
    int64_t nt = min64(MAX_TILE_PIXELS, max64(MIN_TILE_PIXELS, TILE_FLOATS / j.kc));
    nt = min64(ceil_div(nt, kern->nr), ceil_div(j.P, kern->nr)) * kern->nr;
    j.nt = nt;
    j.tiles = ceil_div(j.P, nt);
    j.m_panels = ceil_div(j.opg, kern->mr);
    j.apack_group = j.n_kb * j.m_panels * kern->mr * j.kc;
    j.col_floats = j.direct ? 0 : (size_t)(j.kc * nt + 15) / 16 * 16;
    size_t scratch = (j.col_floats + (size_t)(j.kc * nt)) * sizeof(float);
    float *apack = malloc((size_t)(G * j.apack_group) * sizeof *apack);
    if (!apack)
        return lr_fail(ctx, LR_ERR_NOMEM, "conv2d: no memory to pack %lld weights", (long long)(G * j.apack_group));
    lr_status s = lr_thread_scratch_reserve(ctx, scratch);
    if (s != LR_OK) {
        free(apack);
        return s;
    }
    for (int64_t g = 0; g < G; g++)
        for (int64_t kb = 0; kb < j.n_kb; kb++) {
            int64_t k0 = kb * j.kc;
            kern->pack_a(c->weight + g * j.opg * j.K + k0, j.K, 1, j.opg, min64(j.kc, j.K - k0),
                         apack + g * j.apack_group + kb * j.m_panels * kern->mr * j.kc);
        }
    j.apack = apack;
    lr_parallel_for(ctx, (size_t)(G * j.tiles), igemm_task, &j);
    free(apack);
    return LR_OK;
}

/* ---- convolution: depthwise --------------------------------------------------------- */

/* A task owns DW_ROWS_PER_TASK output rows of one channel. It copies the input rows they
 * read into its scratch with the horizontal padding made explicit (pl zeros on the left,
 * zeros up to the widest tap on the right), so every output column is an interior one for
 * the level's kernel; kernel rows that fall outside the image are skipped (they form one
 * range at the top and one at the bottom, since the input row grows with ky). */
typedef struct {
    const conv_call *c;
    const conv_kernels *k;
    int64_t row_blocks;   /* tasks per channel */
    int64_t padded_w;     /* a padded input row: input column ix sits at pad_left + ix */
    int64_t rows_per_task;/* input rows a task may read */
    int64_t span;         /* stride-1 sums a strided output row needs */
} dw_job;

static void dw_task(void *arg, size_t task, int thread)
{
    const dw_job *j = arg;
    const conv_call *c = j->c;
    const lr_conv2d_desc *d = c->d;
    int64_t ch = (int64_t)task / j->row_blocks, y0 = (int64_t)task % j->row_blocks * DW_ROWS_PER_TASK;
    int64_t y1 = min64(c->ho, y0 + DW_ROWS_PER_TASK);
    int64_t kh = d->kh, kw = d->kw, dh = d->dil_h, sw = d->stride_w, w = c->w, wo = c->wo, pw = j->padded_w;
    const float *plane = c->in + ch * c->h * w, *wk = c->weight + ch * kh * kw;
    float *rows_buf = lr_thread_scratch(c->ctx, thread), *tmp = rows_buf + j->rows_per_task * pw;
    /* the input rows [ia, ib) this task reads */
    int64_t ia = max64(0, y0 * d->stride_h - d->pad_top);
    int64_t ib = min64(c->h, (y1 - 1) * d->stride_h - d->pad_top + (kh - 1) * dh + 1);
    for (int64_t iy = ia; iy < ib; iy++) {
        float *dst = rows_buf + (iy - ia) * pw;
        memset(dst, 0, (size_t)d->pad_left * sizeof *dst);
        memcpy(dst + d->pad_left, plane + iy * w, (size_t)w * sizeof *dst);
        memset(dst + d->pad_left + w, 0, (size_t)(pw - d->pad_left - w) * sizeof *dst);
    }
    for (int64_t y = y0; y < y1; y++) {
        float *out = c->out + (ch * c->ho + y) * wo;
        int64_t iy0 = y * d->stride_h - d->pad_top, ky_lo = 0, ky_hi = kh;
        while (ky_lo < kh && iy0 + ky_lo * dh < 0)
            ky_lo++;
        while (ky_hi > ky_lo && iy0 + (ky_hi - 1) * dh >= c->h)
            ky_hi--;
        if (ky_lo >= ky_hi) {
            memset(out, 0, (size_t)wo * sizeof *out);
        } else {
            const float *src = rows_buf + (iy0 + ky_lo * dh - ia) * pw;
            int rows = (int)(ky_hi - ky_lo);
            if (sw == 1) {
                j->k->dw_taps(out, wo, src, dh * pw, wk + ky_lo * kw, rows, (int)kw, d->dil_w);
            } else {
                /* the stride-1 sums, vectorised, then every sw-th of them */
                j->k->dw_taps(tmp, j->span, src, dh * pw, wk + ky_lo * kw, rows, (int)kw, d->dil_w);
                for (int64_t x = 0; x < wo; x++)
                    out[x] = tmp[x * sw];
            }
        }
        bias_act_row(j->k, d, c->bias, ch, out, wo);
    }
}

static lr_status conv_depthwise(lr_ctx *ctx, const conv_call *c)
{
    const lr_conv2d_desc *d = c->d;
    dw_job j = {.c = c, .k = kernels_for(lr_ctx_cpu(ctx)), .row_blocks = ceil_div(c->ho, DW_ROWS_PER_TASK)};
    j.span = (int64_t)(c->wo - 1) * d->stride_w + 1;
    /* the widest tap of the last output column, or the input, whichever reaches further */
    j.padded_w = max64((int64_t)d->pad_left + c->w, j.span + (int64_t)(d->kw - 1) * d->dil_w);
    j.rows_per_task = (int64_t)(DW_ROWS_PER_TASK - 1) * d->stride_h + (int64_t)(d->kh - 1) * d->dil_h + 1;
    size_t floats = (size_t)(j.rows_per_task * j.padded_w + (d->stride_w > 1 ? j.span : 0));
    lr_status s = lr_thread_scratch_reserve(ctx, floats * sizeof(float));
    if (s != LR_OK)
        return s;
    lr_parallel_for(ctx, (size_t)(c->cout * j.row_blocks), dw_task, &j);
    return LR_OK;
}

/* ---- convolution: direct, for few output channels --------------------------------------- */

/* A task owns a band of output rows, all channels. It copies the input rows the band reads,
 * for every input channel, into its scratch with the padding made explicit (zero rows above
 * and below, pad_left zeros before and pad_right after each row), so every tap of every
 * output pixel reads inside the copy. Then per output row and block of at most direct_max_nc
 * channels the level's kernel keeps the block's channels x a few pixel vectors in registers
 * and runs over (ci, ky, kx) with the weights, pre-arranged once per call as
 * [block][ci][ky][kx][channel of block], read in order. Each output value is one FMA chain
 * in (ci, ky, kx) order, whatever the band, block or thread. */
typedef struct {
    const conv_call *c;
    const conv_kernels *k;
    const float *wpk;     /* channel c0's block starts at wpk + c0 * K */
    const float *slope;   /* act_param_of per output channel */
    int kind;             /* bias_act kind; sigmoid runs after the kernel */
    int64_t K, pw, band, n_blocks;
} direct_job;

/* Channels [*c0, *c0 + *nc) of block b: n_blocks near-equal blocks. */
static void direct_block(int64_t cout, int64_t n_blocks, int64_t b, int64_t *c0, int64_t *nc)
{
    *c0 = b * cout / n_blocks;
    *nc = (b + 1) * cout / n_blocks - *c0;
}

static void direct_task(void *arg, size_t task, int thread)
{
    const direct_job *j = arg;
    const conv_call *c = j->c;
    const lr_conv2d_desc *d = c->d;
    int64_t y0 = (int64_t)task * j->band, y1 = min64(c->ho, y0 + j->band), kh = d->kh, pw = j->pw, w = c->w;
    int64_t rows = y1 - y0 + kh - 1, plane = (int64_t)c->ho * c->wo;
    float *buf = lr_thread_scratch(c->ctx, thread);
    for (int64_t ci = 0; ci < c->cin; ci++)
        for (int64_t r = 0; r < rows; r++) {
            int64_t iy = y0 + r - d->pad_top;
            float *dst = buf + (ci * rows + r) * pw;
            if (iy < 0 || iy >= c->h) {
                memset(dst, 0, (size_t)pw * sizeof *dst);
                continue;
            }
            memset(dst, 0, (size_t)d->pad_left * sizeof *dst);
            memcpy(dst + d->pad_left, c->in + (ci * c->h + iy) * w, (size_t)w * sizeof *dst);
            memset(dst + d->pad_left + w, 0, (size_t)(pw - d->pad_left - w) * sizeof *dst);
        }
    for (int64_t y = y0; y < y1; y++)
        for (int64_t b = 0; b < j->n_blocks; b++) {
            int64_t c0, nc;
            direct_block(c->cout, j->n_blocks, b, &c0, &nc);
            float *out = c->out + c0 * plane + y * c->wo;
            j->k->direct(out, plane, c->wo, (int)nc, buf + (y - y0) * pw, rows * pw, pw, c->cin, d->kh, d->kw,
                         j->wpk + c0 * j->K, c->bias ? c->bias + c0 : NULL, j->slope + c0, j->kind);
            if (d->act == LR_ACT_SIGMOID)
                for (int64_t i = 0; i < nc; i++)
                    for (int64_t x = 0; x < c->wo; x++)
                        out[i * plane + x] = activate1(LR_ACT_SIGMOID, out[i * plane + x], 0.0f);
        }
}

enum {
    DIRECT_BAND_FLOATS = 1 << 16, /* a task's padded input rows: 256 KB, about L2 */
    DIRECT_MAX_BAND = 16,         /* output rows per task */
    DIRECT_MAX_ROW_FLOATS = 1 << 20, /* cin * kh padded rows above this: the GEMM path */
};

static lr_status conv_direct(lr_ctx *ctx, const conv_call *c)
{
    const lr_conv2d_desc *d = c->d;
    direct_job j = {.c = c, .k = kernels_for(lr_ctx_cpu(ctx))};
    j.K = (int64_t)c->cin * d->kh * d->kw;
    j.pw = (int64_t)d->pad_left + c->w + d->pad_right;
    j.n_blocks = ceil_div(c->cout, j.k->direct_max_nc);
    /* bands as tall as the cache allows, then evened out over a multiple of the threads (the
     * banding does not change any value, so it may depend on the thread count) */
    int64_t fit = DIRECT_BAND_FLOATS / ((int64_t)c->cin * j.pw) - (d->kh - 1);
    int64_t threads = max64(1, lr_ctx_threads(ctx));
    int64_t tasks = ceil_div(c->ho, max64(1, min64(fit, DIRECT_MAX_BAND)));
    tasks = ceil_div(tasks, threads) * threads;
    j.band = ceil_div(c->ho, tasks);
    switch (d->act) {
    case LR_ACT_RELU: j.kind = 1; break;
    case LR_ACT_LEAKY_RELU:
    case LR_ACT_PRELU: j.kind = 2; break;
    case LR_ACT_HARDSWISH: j.kind = 3; break;
    default: j.kind = 0; break;
    }
    float *wpk = malloc((size_t)(c->cout * j.K + c->cout) * sizeof *wpk);
    if (!wpk)
        return lr_fail(ctx, LR_ERR_NOMEM, "conv2d: no memory to arrange %lld weights", (long long)(c->cout * j.K));
    float *slope = wpk + c->cout * j.K;
    lr_status s = lr_thread_scratch_reserve(ctx, (size_t)(c->cin * (j.band + d->kh - 1) * j.pw) * sizeof(float));
    if (s != LR_OK) {
        free(wpk);
        return s;
    }
    for (int64_t b = 0; b < j.n_blocks; b++) {
        int64_t c0, nc;
        direct_block(c->cout, j.n_blocks, b, &c0, &nc);
        for (int64_t i = 0; i < nc; i++)
            for (int64_t t = 0; t < j.K; t++)
                wpk[c0 * j.K + t * nc + i] = c->weight[(c0 + i) * j.K + t];
    }
    for (int64_t co = 0; co < c->cout; co++)
        slope[co] = act_param_of(d, co);
    j.wpk = wpk;
    j.slope = slope;
    lr_parallel_for(ctx, (size_t)ceil_div(c->ho, j.band), direct_task, &j);
    free(wpk);
    return LR_OK;
}

/* Whether lr_conv2d takes the direct path (stride 1, dilation 1, one group, and the padded
 * rows of a band within DIRECT_MAX_ROW_FLOATS): when cout <= 24, or the kernel is larger than
 * 1x1 and the output at least 20 pixels wide. Measured with tests/bench/bench_conv and a
 * sweep of shapes, one thread, AVX-512, GFLOP/s of the GEMM path -> the direct path (peak
 * about 230): few output channels gain most, as they fill few rows of the GEMM's 14 x 32
 * micro-tile and the im2col packing is paid for little work: 3x3 at 128x128 32->4 25 -> 148,
 * 64->4 25 -> 144, 80->4 23 -> 145, 12->12 78 -> 192, 32->12 71 -> 187; 3x3 64->12 at
 * 256x256 69 -> 141; 1x1 56->12 115 -> 125. With more output channels the direct path still
 * wins for kernels above 1x1, as it packs nothing: 3x3 64->64 at 256x256 127 -> 188, 64->32
 * at 128x128 103 -> 194, 5x5 1->56 143 -> 177, 7x7 32->32 at 64x64 101 -> 220, 3x3 64->64
 * at 20x20 110 -> 126, 256->256 at 32x32 170 -> 195; it loses on narrow rows, where a
 * 12-channel chunk of two vectors is mostly masked off: 3x3 256->256 at 16x16 164 -> 143. A
 * 1x1 with many output channels is a draw at AVX-512 (12->56 122 -> 125, 64->256 180 -> 180)
 * and the GEMM's at AVX2 (12->56 69 -> 52), so it stays on the GEMM.
 * LR_CONV_PATH=direct or =gemm in the environment forces a path where both apply (for the
 * benchmark and the tests). */
static bool use_direct(const conv_call *c)
{
    const lr_conv2d_desc *d = c->d;
    if (d->groups != 1 || d->stride_h != 1 || d->stride_w != 1 || d->dil_h != 1 || d->dil_w != 1)
        return false;
    int64_t pw = (int64_t)d->pad_left + c->w + d->pad_right;
    if ((int64_t)c->cin * d->kh * pw > DIRECT_MAX_ROW_FLOATS)
        return false; /* scratch would outgrow the cache and the bound conv.h promises */
    const char *force = getenv("LR_CONV_PATH");
    if (force && !strcmp(force, "direct"))
        return true;
    if (force && !strcmp(force, "gemm"))
        return false;
    return c->cout <= 24 || ((int64_t)d->kh * d->kw > 1 && c->wo >= 20);
}

lr_status lr_conv2d(lr_ctx *ctx, const lr_conv2d_desc *d, const float *in, int cin, int h, int w,
                    const float *weight, const float *bias, int cout, float *out)
{
    int ho, wo;
    lr_status s = check_args(ctx, "conv2d", false, d, in, cin, h, w, weight, cout, out, &ho, &wo);
    if (s != LR_OK)
        return s;
    conv_call c = {ctx, d, in, weight, bias, out, cin, h, w, cout, ho, wo};
    if (d->groups == cin && cout == cin && cin > 1)
        return conv_depthwise(ctx, &c);
    if (use_direct(&c))
        return conv_direct(ctx, &c);
    return conv_gemm(ctx, &c);
}

/* ---- transposed convolution: GEMM + col2im ------------------------------------------- */

/* A task owns one group's band of input rows: per tile of its pixels it computes the column
 * tile col[M x n] = W^T * in (M = cout/groups * kh * kw; packed weights, micro-kernels, in
 * its scratch) and scatter-adds every column row into the output. Bands are at least
 * ceil((kh - 1) * dil_h / stride_h) rows, so the output rows of bands b and b + 2 never meet:
 * the even bands run first, then the odd ones, and no two running tasks write one value. */
typedef struct {
    const conv_call *c;
    const lr_gemm_kernel *kern;
    const conv_kernels *ck;
    int64_t cpg, opg, M, hw;
    int64_t kc, n_kb, nt;
    int64_t m_panels;
    const float *apack;     /* per group and K block: m_panels panels of mr x kcb */
    int64_t apack_group;
    int64_t band_rows, n_bands, parity;
    size_t col_floats;      /* a thread's column tile; its packed input block follows */
} tconv_job;

/* Adds the column tile (rows (co, ky, kx), pixels [p0, p0 + n) of the group) into the output. */
static void col2im_tile(const tconv_job *j, int64_t g, const float *col, int64_t p0, int64_t n)
{
    const conv_call *c = j->c;
    const lr_conv2d_desc *d = c->d;
    int64_t w = c->w, wo = c->wo, sw = d->stride_w;
    for (int64_t r = 0; r < j->M; r++) {
        int64_t co = r / (d->kh * d->kw), ky = r / d->kw % d->kh, kx = r % d->kw;
        float *plane = c->out + (g * j->opg + co) * c->ho * wo;
        const float *row = col + r * j->nt - p0; /* indexed by pixel */
        int64_t off_x = kx * d->dil_w - d->pad_left;
        /* the input columns whose output column lies inside [0, wo) */
        int64_t x_lo = max64(0, ceil_div(max64(0, -off_x), sw));
        int64_t x_hi = min64(w, floor_div(wo - 1 - off_x, sw) + 1);
        for (int64_t p = p0, p1 = p0 + n; p < p1;) {
            int64_t iy = p / w, x0 = p % w, x1 = min64(w, x0 + p1 - p);
            int64_t oy = iy * d->stride_h - d->pad_top + ky * d->dil_h;
            int64_t a = max64(x0, x_lo), b = min64(x1, x_hi);
            if (oy >= 0 && oy < c->ho && a < b)
                j->ck->scatter_add(plane + oy * wo + off_x + a * sw, row + (p - x0) + a, b - a, sw);
            p += x1 - x0;
        }
    }
}

static void tconv_task(void *arg, size_t task, int thread)
{
    const tconv_job *j = arg;
    const conv_call *c = j->c;
    const lr_gemm_kernel *kern = j->kern;
    int64_t bands = (j->n_bands + 1 - j->parity) / 2; /* bands of this parity */
    int64_t g = (int64_t)task / bands, band = (int64_t)task % bands * 2 + j->parity;
    int64_t pb0 = band * j->band_rows * c->w, pb1 = min64(j->hw, (band + 1) * j->band_rows * c->w);
    const float *in_g = c->in + g * j->cpg * j->hw;
    float *col = lr_thread_scratch(c->ctx, thread), *bpack = col + j->col_floats;
    for (int64_t p0 = pb0; p0 < pb1; p0 += j->nt) {
        int64_t n = min64(j->nt, pb1 - p0);
        for (int64_t kb = 0; kb < j->n_kb; kb++) {
            int64_t k0 = kb * j->kc, kcb = min64(j->kc, j->cpg - k0);
            kern->pack_b(in_g + k0 * j->hw + p0, 1, j->hw, n, kcb, bpack);
            const float *ablock = j->apack + g * j->apack_group + kb * j->m_panels * kern->mr * j->kc;
            float beta = kb == 0 ? 0.0f : 1.0f;
            for (int64_t i = 0; i < j->m_panels; i++) {
                const float *apanel = ablock + i * kern->mr * kcb;
                int m = (int)min64(kern->mr, j->M - i * kern->mr);
                for (int64_t q = 0; q < n; q += kern->nr)
                    kern->micro(kcb, apanel, bpack + q * kcb, col + i * kern->mr * j->nt + q, j->nt, m,
                                (int)min64(kern->nr, n - q), 1.0f, beta);
            }
        }
        col2im_tile(j, g, col, p0, n);
    }
}

typedef struct {
    const float *bias;
    float *out;
    int64_t plane;
} fill_job;

/* Each output plane starts as its bias: set one value, then double the filled part with
 * memcpy (vectorised by libc; a plain loop is not at -O2). */
static void fill_bias_task(void *arg, size_t task, int thread)
{
    const fill_job *j = arg;
    float *dst = j->out + (int64_t)task * j->plane;
    if (!j->bias) {
        memset(dst, 0, (size_t)j->plane * sizeof *dst);
        return;
    }
    dst[0] = j->bias[task];
    for (int64_t done = 1; done < j->plane; done *= 2)
        memcpy(dst + done, dst, (size_t)min64(done, j->plane - done) * sizeof *dst);
}

lr_status lr_conv_transpose2d(lr_ctx *ctx, const lr_conv2d_desc *d, const float *in, int cin, int h, int w,
                              const float *weight, const float *bias, int cout, float *out)
{
    int ho, wo;
    lr_status s = check_args(ctx, "conv_transpose2d", true, d, in, cin, h, w, weight, cout, out, &ho, &wo);
    if (s != LR_OK)
        return s;
    conv_call c = {ctx, d, in, weight, bias, out, cin, h, w, cout, ho, wo};
    const lr_gemm_kernel *kern = gemm_kernel_for(lr_ctx_cpu(ctx));
    tconv_job j = {.c = &c, .kern = kern, .ck = kernels_for(lr_ctx_cpu(ctx))};
    int64_t G = d->groups;
    j.cpg = cin / G;
    j.opg = cout / G;
    j.M = j.opg * d->kh * d->kw;
    j.hw = (int64_t)h * w;
    j.n_kb = ceil_div(j.cpg, kern->kc);
    j.kc = ceil_div(j.cpg, j.n_kb);
    j.nt = min64(ceil_div(max64(MIN_TILE_PIXELS, min64(MAX_TILE_PIXELS, TILE_FLOATS / j.M)), kern->nr),
                 ceil_div(j.hw, kern->nr)) * kern->nr;
    j.m_panels = ceil_div(j.M, kern->mr);
    j.apack_group = j.n_kb * j.m_panels * kern->mr * j.kc;
    j.col_floats = (size_t)((j.m_panels * kern->mr * j.nt + 15) / 16 * 16);
    /* about 16 bands, never thinner than the overlap rule needs */
    j.band_rows = max64(max64(1, ceil_div((int64_t)(d->kh - 1) * d->dil_h, d->stride_h)), ceil_div(h, 16));
    j.n_bands = ceil_div(h, j.band_rows);
    size_t scratch = (j.col_floats + (size_t)(j.kc * j.nt)) * sizeof(float);
    float *apack = malloc((size_t)(G * j.apack_group) * sizeof *apack);
    if (!apack)
        return lr_fail(ctx, LR_ERR_NOMEM, "conv_transpose2d: no memory to pack %lld weights",
                       (long long)(G * j.apack_group));
    if ((s = lr_thread_scratch_reserve(ctx, scratch)) != LR_OK) {
        free(apack);
        return s;
    }
    /* W_g is [cpg][M]: op(A)(m, k) = W_g[k * M + m] */
    for (int64_t g = 0; g < G; g++)
        for (int64_t kb = 0; kb < j.n_kb; kb++) {
            int64_t k0 = kb * j.kc;
            kern->pack_a(weight + (g * j.cpg + k0) * j.M, 1, j.M, j.M, min64(j.kc, j.cpg - k0),
                         apack + g * j.apack_group + kb * j.m_panels * kern->mr * j.kc);
        }
    j.apack = apack;
    fill_job f = {bias, out, (int64_t)ho * wo};
    lr_parallel_for(ctx, (size_t)cout, fill_bias_task, &f);
    for (j.parity = 0; j.parity < 2 && j.parity < j.n_bands; j.parity++)
        lr_parallel_for(ctx, (size_t)(G * ((j.n_bands + 1 - j.parity) / 2)), tconv_task, &j);
    free(apack);
    if (d->act != LR_ACT_NONE)
        run_epilogue(ctx, d, NULL, out, (int64_t)ho * wo, 0, cout, 0, (int64_t)ho * wo);
    return LR_OK;
}

/* ---- pixel shuffle ------------------------------------------------------------------- */

typedef struct {
    const float *in;
    float *out;
    int64_t h, w, r;
} shuffle_job;

/* One task writes the output rows y * r + dy of one channel for one input row y. */
static void shuffle_task(void *arg, size_t task, int thread)
{
    const shuffle_job *j = arg;
    int64_t ch = (int64_t)task / j->h, y = (int64_t)task % j->h, r = j->r, w = j->w;
    for (int64_t dy = 0; dy < r; dy++) {
        float *dst = j->out + (ch * j->h * r + y * r + dy) * w * r;
        for (int64_t dx = 0; dx < r; dx++) {
            const float *src = j->in + ((ch * r * r + dy * r + dx) * j->h + y) * w;
            for (int64_t x = 0; x < w; x++)
                dst[x * r + dx] = src[x];
        }
    }
}

lr_status lr_pixel_shuffle(lr_ctx *ctx, const float *in, int c, int h, int w, int r, float *out)
{
    if (!in || !out)
        return lr_fail(ctx, LR_ERR_ARG, "pixel_shuffle: %s is NULL", !in ? "in" : "out");
    if (c < 1 || h < 1 || w < 1 || r < 1)
        return lr_fail(ctx, LR_ERR_ARG, "pixel_shuffle: c %d, h %d, w %d, r %d must all be >= 1", c, h, w, r);
    if ((int64_t)h * r > INT_MAX || (int64_t)w * r > INT_MAX || (int64_t)c * r * r > INT_MAX)
        return lr_fail(ctx, LR_ERR_ARG, "pixel_shuffle: c %d, h %d, w %d with r %d is too large", c, h, w, r);
    shuffle_job j = {in, out, h, w, r};
    lr_parallel_for(ctx, (size_t)c * (size_t)h, shuffle_task, &j);
    return LR_OK;
}
