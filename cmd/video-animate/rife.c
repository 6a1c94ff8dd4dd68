/* RIFE v4.6 forward pass on libcore (rife.h has the definition; tools/rife_torch.py is the
 * PyTorch reference). The architecture is fixed, so the pass is written out by hand.
 *
 * Buffers, in units of P = hp * wp floats (padded frame), kept in the net between calls:
 *   X     12P  the full-resolution block input cat(warp a, warp b, T, M, F) of blocks 1..3
 *              (block 0 reads cat(a, b, T) from pa, pb and T); T, M and F live in
 *              it (channels 7 and 8..11) for the whole call, and channels 0..5 double as the
 *              landing place of the upsampled block output (dead until the warps are redone)
 *   pa,pb  3P  the zero-padded frames
 *   big    8P  conv0's first stride-2 output, later the deconvolution output (never both)
 *   feat   4P  the block features (ResConv ping-pongs between feat and tmp)
 *   tmp    4P  the downscaled block input, then the other ResConv buffer
 *   d     1.5P the pixel-shuffled block output at 1/s (s > 1; at s = 1 it goes into X)
 * which is about 63 MB at 768x576. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "longrange/conv.h"
#include "longrange/parallel.h"
#include "longrange/resize.h"
#include "longrange/warp.h"
#include "rife.h"

enum { N_BLOCKS = 4, N_RES = 8, PAD = 32, OUT_CH = 24, ELEM_PER_TASK = 1 << 14 };

static const int BLOCK_C[N_BLOCKS] = {192, 128, 96, 64};
static const int BLOCK_IN[N_BLOCKS] = {7, 12, 12, 12};
static const int BLOCK_SCALE[N_BLOCKS] = {8, 4, 2, 1};

typedef struct {
    const float *w, *b;
} conv_w;

typedef struct {
    conv_w conv0[2], res[N_RES], last;
} block_w;

struct rife_net {
    block_w blocks[N_BLOCKS];
    float *weights;        /* one allocation: every weight and bias, FP32, beta folded in */
    size_t cap;            /* P the buffers below were sized for */
    float *X, *pa, *pb, *big, *feat, *tmp, *d;
};

/* ---- loading ----------------------------------------------------------------------------- */

/* Copies tensor `name` of the given shape into *dst (advancing it) and points *out at it;
 * row_scale (one factor per first-axis index, may be NULL) multiplies it: the folded beta. */
static lr_status take(lr_ctx *ctx, const lr_model *m, const char *name, int ndim,
                      const int64_t *shape, float **dst, const float *row_scale, const float **out)
{
    lr_tensor t;
    lr_status s = lr_model_get_f32(ctx, m, name, ndim, shape, &t);
    if (s != LR_OK)
        return s;
    size_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= (size_t)shape[i];
    const float *src = t.data;
    size_t per_row = n / (size_t)shape[0];
    for (size_t i = 0; i < n; i++)
        (*dst)[i] = row_scale ? src[i] * row_scale[i / per_row] : src[i];
    *out = *dst;
    *dst += n;
    return LR_OK;
}

static size_t block_floats(int cin, int c)
{
    size_t n = (size_t)c / 2 * cin * 9 + (size_t)c / 2 + (size_t)c * (c / 2) * 9 + (size_t)c;
    n += (size_t)N_RES * ((size_t)c * c * 9 + (size_t)c);
    return n + (size_t)c * OUT_CH * 16 + OUT_CH;
}

static lr_status expect_meta(lr_ctx *ctx, const lr_model *m, const char *key, const char *want)
{
    const char *v = lr_model_meta(m, key);
    if (v && strcmp(v, want) != 0)
        return lr_fail(ctx, LR_ERR_MODEL, "%s: metadata %s is \"%s\"; this network needs \"%s\"",
                       lr_model_path(m), key, v, want);
    return LR_OK;
}

static lr_status load_block(lr_ctx *ctx, const lr_model *m, int b, float **dst, block_w *bw)
{
    const int c = BLOCK_C[b], cin = BLOCK_IN[b];
    char name[96];
    lr_status s;
#define TAKE(ndim, scale, out, ...)                                                              \
    do {                                                                                         \
        const int64_t shape_[] = {__VA_ARGS__};                                                  \
        if ((s = take(ctx, m, name, ndim, shape_, dst, scale, out)) != LR_OK)                    \
            return s;                                                                            \
    } while (0)
    for (int i = 0; i < 2; i++) {
        int ci = i == 0 ? cin : c / 2, co = i == 0 ? c / 2 : c;
        snprintf(name, sizeof name, "block%d.conv0.%d.0.weight", b, i);
        TAKE(4, NULL, &bw->conv0[i].w, co, ci, 3, 3);
        snprintf(name, sizeof name, "block%d.conv0.%d.0.bias", b, i);
        TAKE(1, NULL, &bw->conv0[i].b, co);
    }
    for (int i = 0; i < N_RES; i++) {
        lr_tensor beta;
        snprintf(name, sizeof name, "block%d.convblock.%d.beta", b, i);
        const int64_t beta_shape[] = {1, c, 1, 1};
        if ((s = lr_model_get_f32(ctx, m, name, 4, beta_shape, &beta)) != LR_OK)
            return s;
        snprintf(name, sizeof name, "block%d.convblock.%d.conv.weight", b, i);
        TAKE(4, beta.data, &bw->res[i].w, c, c, 3, 3);
        snprintf(name, sizeof name, "block%d.convblock.%d.conv.bias", b, i);
        TAKE(1, beta.data, &bw->res[i].b, c);
        /* leaky(conv(x) * beta + x) = leaky(conv'(x)) with beta folded in and the identity
         * added to the centre tap: one conv with fused activation, no residual pass */
        float *wr = (float *)bw->res[i].w;
        for (int co = 0; co < c; co++)
            wr[((size_t)co * c + co) * 9 + 4] += 1.0f;
    }
    snprintf(name, sizeof name, "block%d.lastconv.0.weight", b);
    TAKE(4, NULL, &bw->last.w, c, OUT_CH, 4, 4);
    snprintf(name, sizeof name, "block%d.lastconv.0.bias", b);
    TAKE(1, NULL, &bw->last.b, OUT_CH);
#undef TAKE
    return LR_OK;
}

lr_status rife_load(lr_ctx *ctx, const lr_model *model, rife_net **out)
{
    if (!ctx || !model || !out)
        return ctx ? lr_fail(ctx, LR_ERR_ARG, "rife_load: NULL argument") : LR_ERR_ARG;
    *out = NULL;
    lr_status s = lr_model_expect_arch(ctx, model, "rife-v4.6");
    if (s == LR_OK)
        s = expect_meta(ctx, model, "scale_list", "8,4,2,1");
    if (s == LR_OK)
        s = expect_meta(ctx, model, "pad", "32");
    if (s != LR_OK)
        return s;
    rife_net *net = calloc(1, sizeof *net);
    size_t total = 0;
    for (int b = 0; b < N_BLOCKS; b++)
        total += block_floats(BLOCK_IN[b], BLOCK_C[b]);
    if (net)
        net->weights = malloc(total * sizeof(float));
    if (!net || !net->weights) {
        free(net);
        return lr_fail(ctx, LR_ERR_NOMEM, "rife_load: out of memory for the weights");
    }
    float *dst = net->weights;
    for (int b = 0; b < N_BLOCKS && s == LR_OK; b++)
        s = load_block(ctx, model, b, &dst, &net->blocks[b]);
    if (s != LR_OK) {
        rife_free(net);
        return s;
    }
    *out = net;
    return LR_OK;
}

void rife_free(rife_net *net)
{
    if (!net)
        return;
    free(net->weights);
    free(net->X);
    free(net->pa);
    free(net->pb);
    free(net->big);
    free(net->feat);
    free(net->tmp);
    free(net->d);
    free(net);
}

/* ---- elementwise passes, threaded in fixed chunks ---------------------------------------- */

typedef enum { OP_FILL, OP_SET_SCALED, OP_ADD_SCALED } elem_op;

typedef struct {
    elem_op op;
    float *y;
    const float *x;
    float scale;
    size_t n;
} elem_job;

static void elem_task(void *arg, size_t task, int thread)
{
    const elem_job *j = arg;
    size_t i0 = task * ELEM_PER_TASK, i1 = i0 + ELEM_PER_TASK < j->n ? i0 + ELEM_PER_TASK : j->n;
    float *y = j->y;        /* may equal x (in-place scaling): no restrict */
    const float *x = j->x;
    switch (j->op) {
    case OP_FILL:
        for (size_t i = i0; i < i1; i++)
            y[i] = j->scale;
        break;
    case OP_SET_SCALED:
        for (size_t i = i0; i < i1; i++)
            y[i] = x[i] * j->scale;
        break;
    case OP_ADD_SCALED:
        for (size_t i = i0; i < i1; i++)
            y[i] += x[i] * j->scale;
        break;
    }
}

static void elementwise(lr_ctx *ctx, elem_op op, float *y, const float *x, float scale, size_t n)
{
    elem_job j = {op, y, x, scale, n};
    lr_parallel_for(ctx, (n + ELEM_PER_TASK - 1) / ELEM_PER_TASK, elem_task, &j);
}

/* ---- forward ------------------------------------------------------------------------------ */

static lr_status ensure_buffers(lr_ctx *ctx, rife_net *net, size_t P)
{
    if (P <= net->cap)
        return LR_OK;
    float **bufs[] = {&net->X, &net->pa, &net->pb, &net->big, &net->feat, &net->tmp, &net->d};
    const size_t quarters[] = {48, 12, 12, 32, 16, 16, 6}; /* sizes in P / 4 */
    net->cap = 0;
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) {
        free(*bufs[i]);
        *bufs[i] = malloc(P / 4 * quarters[i] * sizeof(float));
        if (!*bufs[i]) {
            for (size_t k = 0; k < sizeof bufs / sizeof *bufs; k++) {
                free(*bufs[k]);
                *bufs[k] = NULL;
            }
            return lr_fail(ctx, LR_ERR_NOMEM, "rife_interpolate: out of memory for %zu-pixel "
                           "activations", P);
        }
    }
    net->cap = P;
    return LR_OK;
}

/* Per-row passes at the frame's ends, threaded: the padding of both frames (task = one row of
 * one channel of one frame) and the final blend (task = one output row). */
typedef struct {
    const float *a, *b;
    float *pa, *pb, *out;
    const float *X;
    int h, w, hp, wp;
    size_t P;
} frame_job;

static void pad_task(void *arg, size_t task, int thread)
{
    const frame_job *j = arg;
    const int y = (int)(task % (size_t)j->hp), c = (int)(task / (size_t)j->hp % 3);
    const float *src = task / ((size_t)3 * j->hp) ? j->b : j->a;
    float *row = (task / ((size_t)3 * j->hp) ? j->pb : j->pa) + ((size_t)c * j->hp + y) * j->wp;
    int n = 0;
    if (y < j->h) {
        memcpy(row, src + ((size_t)c * j->h + y) * j->w, (size_t)j->w * sizeof(float));
        n = j->w;
    }
    memset(row + n, 0, (size_t)(j->wp - n) * sizeof(float));
}

/* out = warp(a) * sigmoid(M) + warp(b) * (1 - sigmoid(M)), cropped */
static void blend_task(void *arg, size_t task, int thread)
{
    const frame_job *j = arg;
    const int y = (int)task;
    const size_t P = j->P, row = (size_t)y * j->wp;
    const float *M = j->X + 7 * P;
    for (int x = 0; x < j->w; x++) {
        float m = 1.0f / (1.0f + expf(-M[row + x]));
        for (int c = 0; c < 3; c++)
            j->out[((size_t)c * j->h + y) * j->w + x] =
                j->X[c * P + row + x] * m + j->X[(3 + c) * P + row + x] * (1 - m);
    }
}

/* One IFBlock: x [cin][hp/s][wp/s] -> its 6-channel output [6][hp/s][wp/s] in *dout. */
static lr_status run_block(lr_ctx *ctx, rife_net *net, int b, const float *x, int hs, int ws,
                           float *dout)
{
    const block_w *bw = &net->blocks[b];
    const int c = BLOCK_C[b];
    lr_conv2d_desc down = lr_conv2d_default(3, 3), res = lr_conv2d_default(3, 3),
                   up = lr_conv2d_default(4, 4);
    down.stride_h = down.stride_w = 2;
    down.pad_top = down.pad_left = down.pad_bottom = down.pad_right = 1;
    down.act = LR_ACT_LEAKY_RELU;
    down.act_alpha = 0.2f;
    res.pad_top = res.pad_left = res.pad_bottom = res.pad_right = 1;
    res.act = LR_ACT_LEAKY_RELU;
    res.act_alpha = 0.2f;
    up.stride_h = up.stride_w = 2;
    up.pad_top = up.pad_left = up.pad_bottom = up.pad_right = 1;
    const int h2 = hs / 2, w2 = ws / 2, h4 = hs / 4, w4 = ws / 4;
    lr_status s = lr_conv2d(ctx, &down, x, BLOCK_IN[b], hs, ws, bw->conv0[0].w, bw->conv0[0].b,
                            c / 2, net->big);
    if (s == LR_OK)
        s = lr_conv2d(ctx, &down, net->big, c / 2, h2, w2, bw->conv0[1].w, bw->conv0[1].b, c,
                      net->feat);
    float *feat = net->feat, *next = net->tmp; /* ping-pong: 8 is even, ends in net->feat */
    for (int i = 0; i < N_RES && s == LR_OK; i++) {
        s = lr_conv2d(ctx, &res, feat, c, h4, w4, bw->res[i].w, bw->res[i].b, c, next);
        float *swap = feat;
        feat = next;
        next = swap;
    }
    if (s == LR_OK)
        s = lr_conv_transpose2d(ctx, &up, feat, c, h4, w4, bw->last.w, bw->last.b, OUT_CH,
                                net->big);
    if (s == LR_OK)
        s = lr_pixel_shuffle(ctx, net->big, OUT_CH / 4, h2, w2, 2, dout);
    return s;
}

lr_status rife_interpolate(lr_ctx *ctx, rife_net *net, const float *a, const float *b, int h,
                           int w, float t, float *out)
{
    if (!ctx)
        return LR_ERR_ARG;
    if (!net || !a || !b || !out)
        return lr_fail(ctx, LR_ERR_ARG, "rife_interpolate: NULL argument");
    if (h < 1 || w < 1)
        return lr_fail(ctx, LR_ERR_ARG, "rife_interpolate: size %dx%d must be >= 1x1", w, h);
    if (!isfinite(t))
        return lr_fail(ctx, LR_ERR_ARG, "rife_interpolate: timestep is not finite");
    if (h > INT32_MAX - PAD || w > INT32_MAX - PAD)
        return lr_fail(ctx, LR_ERR_NOMEM, "rife_interpolate: frame %dx%d too large", w, h);
    const int hp = (h + PAD - 1) / PAD * PAD, wp = (w + PAD - 1) / PAD * PAD;
    size_t P;
    if (__builtin_mul_overflow((size_t)hp, (size_t)wp, &P) || P > SIZE_MAX / 16 / sizeof(float))
        return lr_fail(ctx, LR_ERR_NOMEM, "rife_interpolate: frame %dx%d too large", w, h);
    lr_status s = ensure_buffers(ctx, net, P);
    if (s != LR_OK)
        return s;

    float *X = net->X, *T = X + 6 * P, *M = X + 7 * P, *F = X + 8 * P;
    frame_job fj = {a, b, net->pa, net->pb, out, X, h, w, hp, wp, P};
    lr_parallel_for(ctx, (size_t)2 * 3 * hp, pad_task, &fj);
    elementwise(ctx, OP_FILL, T, NULL, t, P);

    const lr_resize_desc bilinear = {LR_RESIZE_BILINEAR, 0, false};
    for (int k = 0; k < N_BLOCKS && s == LR_OK; k++) {
        const int sc = BLOCK_SCALE[k], hs = hp / sc, ws = wp / sc, cin = BLOCK_IN[k];
        const size_t Ps = (size_t)hs * ws;
        const float *x = X;
        if (sc > 1) {
            /* cat(...) resized by 1/s; the flow part then divided by s. Block 0 reads the
             * frames where they are: cat(a, b, T) resized part by part */
            if (k == 0) {
                s = lr_resize(ctx, &bilinear, net->pa, 3, hp, wp, net->tmp, hs, ws);
                if (s == LR_OK)
                    s = lr_resize(ctx, &bilinear, net->pb, 3, hp, wp, net->tmp + 3 * Ps, hs, ws);
                if (s == LR_OK)
                    s = lr_resize(ctx, &bilinear, T, 1, hp, wp, net->tmp + 6 * Ps, hs, ws);
            } else {
                s = lr_resize(ctx, &bilinear, X, cin, hp, wp, net->tmp, hs, ws);
                if (s == LR_OK)
                    elementwise(ctx, OP_SET_SCALED, net->tmp + 8 * Ps, net->tmp + 8 * Ps,
                                1.0f / (float)sc, 4 * Ps);
            }
            x = net->tmp;
        }
        /* the block output lands in X[0:6] (dead until the warps below), via d when s > 1 */
        if (s == LR_OK)
            s = run_block(ctx, net, k, x, hs, ws, sc > 1 ? net->d : X);
        if (s == LR_OK && sc > 1)
            s = lr_resize(ctx, &bilinear, net->d, 5, hs, ws, X, hp, wp);
        if (s != LR_OK)
            break;
        elementwise(ctx, k == 0 ? OP_SET_SCALED : OP_ADD_SCALED, F, X, (float)sc, 4 * P);
        elementwise(ctx, k == 0 ? OP_SET_SCALED : OP_ADD_SCALED, M, X + 4 * P, 1.0f, P);
        s = lr_warp_bilinear(ctx, net->pa, 3, hp, wp, F, X);
        if (s == LR_OK)
            s = lr_warp_bilinear(ctx, net->pb, 3, hp, wp, F + 2 * P, X + 3 * P);
    }
    if (s != LR_OK)
        return s;

    lr_parallel_for(ctx, (size_t)h, blend_task, &fj);
    return LR_OK;
}

double rife_flops(int h, int w)
{
    if (h < 1 || w < 1)
        return 0;
    const double hp = (double)((h + PAD - 1) / PAD * PAD), wp = (double)((w + PAD - 1) / PAD * PAD);
    const double P = hp * wp;
    double f = 0;
    for (int k = 0; k < N_BLOCKS; k++) {
        const double c = BLOCK_C[k], cin = BLOCK_IN[k], Ps = P / (BLOCK_SCALE[k] * BLOCK_SCALE[k]);
        f += 2 * 9 * cin * (c / 2) * (Ps / 4);            /* conv0.0, stride 2 */
        f += 2 * 9 * (c / 2) * c * (Ps / 16);             /* conv0.1, stride 2 */
        f += N_RES * (2 * 9 * c * c * (Ps / 16) + 2 * c * Ps / 16); /* ResConv + residual */
        f += 2 * 16 * c * OUT_CH * (Ps / 16);             /* lastconv over its input pixels */
        if (BLOCK_SCALE[k] > 1)
            f += 8 * (cin * Ps + 5 * P);                  /* bilinear resizes, ~8 per output */
        f += 10 * 6 * P + 2 * 5 * P;                      /* two 3-channel warps; F, M update */
    }
    return f + 8 * 3 * P;                                 /* sigmoid blend */
}
