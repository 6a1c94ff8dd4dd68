/* mmsegmentation's Semantic FPN (see fpn.h and tools/semantic_fpn_torch.py, the reference):
 *   neck: lateral 1x1 convs with bias; top-down laterals[i-1] += nearest(laterals[i]) where
 *         PyTorch's 'nearest' reads source index floor(dst * (float)in/out); 3x3 fpn convs;
 *   head: per level 1, 1, 2, 3 ConvModules (3x3, BatchNorm folded here, ReLU), each followed
 *         by a half-pixel bilinear x2 for the coarser levels; levels 1..3 are resized
 *         (bilinear, half-pixel) to level 0's size and summed; conv_seg 1x1 with bias.
 * Precision: FP32 throughout (lr_conv2d, lr_resize); BN folded in double. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fpn.h"
#include "seg.h"
#include "longrange/conv.h"
#include "longrange/resize.h"

enum { LEVELS = 4, MAX_HEAD_CONVS = 3 };
#define FPN_BN_EPS 1e-5

typedef struct {
    const float *w, *b; /* weights as in the file, or folded copies in owned */
    int cin, cout, k;
} fpn_conv;

/* Buffers kept between calls (sized for the largest input so far): repeated calls, as with
 * --tile or a batch, neither allocate nor fault in fresh pages. One caller at a time. */
typedef struct {
    float *p;
    size_t n;
} fpn_workspace;

struct seg_fpn {
    int neck, channels, classes;
    fpn_workspace *ws;
    fpn_conv lateral[LEVELS], smooth[LEVELS];
    fpn_conv head[LEVELS][MAX_HEAD_CONVS];
    int head_len[LEVELS];
    fpn_conv seg;
    float *owned[LEVELS * MAX_HEAD_CONVS * 2];
    int nowned;
};

static lr_status get_conv(lr_ctx *ctx, const lr_model *file, const char *prefix, int cin, int cout,
                          int k, fpn_conv *c)
{
    char name[160];
    lr_tensor w, b;
    int64_t ws[4] = {cout, cin, k, k}, bs[1];
    snprintf(name, sizeof name, "%s.weight", prefix);
    lr_status s = lr_model_get_f32(ctx, file, name, 4, ws, &w);
    if (s != LR_OK)
        return s;
    bs[0] = w.shape[0];
    snprintf(name, sizeof name, "%s.bias", prefix);
    if ((s = lr_model_get_f32(ctx, file, name, 1, bs, &b)) != LR_OK)
        return s;
    c->w = w.data;
    c->b = b.data;
    c->cin = cin;
    c->cout = (int)w.shape[0];
    c->k = k;
    return LR_OK;
}

/* A ConvModule with BatchNorm: conv without bias, BN folded into a new weight and bias. */
static lr_status get_conv_bn(lr_ctx *ctx, const lr_model *file, seg_fpn *f, const char *prefix,
                             int cin, int cout, int k, fpn_conv *c)
{
    char name[160];
    lr_tensor w, t[4];
    int64_t ws[4] = {cout, cin, k, k}, bs[1] = {cout};
    static const char *const bn[4] = {"weight", "bias", "running_mean", "running_var"};
    snprintf(name, sizeof name, "%s.conv.weight", prefix);
    lr_status s = lr_model_get_f32(ctx, file, name, 4, ws, &w);
    for (int i = 0; i < 4 && s == LR_OK; i++) {
        snprintf(name, sizeof name, "%s.bn.%s", prefix, bn[i]);
        s = lr_model_get_f32(ctx, file, name, 1, bs, &t[i]);
    }
    if (s != LR_OK)
        return s;
    const size_t per = (size_t)cin * k * k;
    float *fw = malloc(((size_t)cout * per + cout) * sizeof *fw);
    if (!fw)
        return lr_fail(ctx, LR_ERR_NOMEM, "out of memory");
    f->owned[f->nowned++] = fw;
    float *fb = fw + (size_t)cout * per;
    const float *src = w.data, *gamma = t[0].data, *beta = t[1].data, *mean = t[2].data,
                *var = t[3].data;
    for (int o = 0; o < cout; o++) {
        double scale = gamma[o] / sqrt((double)var[o] + FPN_BN_EPS);
        for (size_t i = 0; i < per; i++)
            fw[o * per + i] = (float)(src[o * per + i] * scale);
        fb[o] = (float)(beta[o] - mean[o] * scale);
    }
    c->w = fw;
    c->b = fb;
    c->cin = cin;
    c->cout = cout;
    c->k = k;
    return LR_OK;
}

lr_status seg_fpn_open(lr_ctx *ctx, const lr_model *file, const int in_channels[4], seg_fpn **out)
{
    *out = NULL;
    seg_fpn *f = calloc(1, sizeof *f);
    if (!f || !(f->ws = calloc(1, sizeof *f->ws))) {
        free(f);
        return lr_fail(ctx, LR_ERR_NOMEM, "out of memory");
    }
    char name[96];
    lr_status s = get_conv(ctx, file, "neck.lateral_convs.0.conv", in_channels[0], -1, 1,
                           &f->lateral[0]);
    if (s == LR_OK)
        f->neck = f->lateral[0].cout;
    for (int i = 0; i < LEVELS && s == LR_OK; i++) {
        snprintf(name, sizeof name, "neck.lateral_convs.%d.conv", i);
        if ((s = get_conv(ctx, file, name, in_channels[i], f->neck, 1, &f->lateral[i])) != LR_OK)
            break;
        snprintf(name, sizeof name, "neck.fpn_convs.%d.conv", i);
        s = get_conv(ctx, file, name, f->neck, f->neck, 3, &f->smooth[i]);
    }
    /* Head channels from the first ConvModule's weight. */
    if (s == LR_OK) {
        lr_tensor w;
        s = lr_model_get_f32(ctx, file, "decode_head.scale_heads.0.0.conv.weight", 4,
                             (const int64_t[]){-1, f->neck, 3, 3}, &w);
        if (s == LR_OK)
            f->channels = (int)w.shape[0];
    }
    for (int i = 0; i < LEVELS && s == LR_OK; i++) {
        f->head_len[i] = i == 0 ? 1 : i; /* max(1, log2(stride / 4)) for strides 4..32 */
        for (int j = 0; j < f->head_len[i] && s == LR_OK; j++) {
            /* Sequential indices: ConvModule, Upsample, ConvModule, ... (no Upsample at 0). */
            snprintf(name, sizeof name, "decode_head.scale_heads.%d.%d", i, i == 0 ? 0 : 2 * j);
            s = get_conv_bn(ctx, file, f, name, j == 0 ? f->neck : f->channels, f->channels, 3,
                            &f->head[i][j]);
        }
    }
    if (s == LR_OK)
        s = get_conv(ctx, file, "decode_head.conv_seg", f->channels, -1, 1, &f->seg);
    if (s == LR_OK) {
        f->classes = f->seg.cout;
        *out = f;
        return LR_OK;
    }
    seg_fpn_close(f);
    return s;
}

int seg_fpn_classes(const seg_fpn *f)
{
    return f->classes;
}

static lr_status conv(lr_ctx *ctx, const fpn_conv *c, bool relu, const float *in, int h, int w,
                      float *out)
{
    lr_conv2d_desc d = lr_conv2d_default(c->k, c->k);
    d.pad_top = d.pad_left = d.pad_bottom = d.pad_right = c->k / 2;
    d.act = relu ? LR_ACT_RELU : LR_ACT_NONE;
    return lr_conv2d(ctx, &d, in, c->cin, h, w, c->w, c->b, c->cout, out);
}

/* dst[c][y][x] += src[c][floor(y * sh)][floor(x * sw)] with PyTorch's float scales in/out;
 * xs: w ints of scratch. */
static void add_nearest(float *dst, int c, int h, int w, const float *src, int hs, int ws, int *xs)
{
    const float sh = (float)hs / (float)h, sw = (float)ws / (float)w;
    for (int x = 0; x < w; x++) {
        int sx = (int)floorf((float)x * sw);
        xs[x] = sx < ws - 1 ? sx : ws - 1;
    }
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < h; y++) {
            int sy = (int)floorf((float)y * sh);
            sy = sy < hs - 1 ? sy : hs - 1;
            const float *s = src + ((size_t)ch * hs + sy) * ws;
            float *d = dst + ((size_t)ch * h + y) * w;
            for (int x = 0; x < w; x++)
                d[x] += s[xs[x]];
        }
}

lr_status seg_fpn_forward(lr_ctx *ctx, const seg_fpn *f, const float *const feats[4],
                          const int h[4], const int w[4], float *out)
{
    const lr_resize_desc bilinear = {LR_RESIZE_BILINEAR, 0.0, false};
    size_t lat_n = 0, off[LEVELS];
    /* Two ping-pong buffers for the heads: the largest map a head step makes (levels 1..3
     * double their size after every conv, and may end larger than level 0). */
    size_t work_n = (size_t)f->channels * h[0] * w[0];
    for (int i = 0; i < LEVELS; i++) {
        if (h[i] < 1 || w[i] < 1 || h[i] > 1 << 20 || w[i] > 1 << 20)
            return lr_fail(ctx, LR_ERR_ARG, "semantic FPN: bad feature map size %d", i);
        off[i] = lat_n;
        lat_n += (size_t)f->neck * h[i] * w[i];
        size_t scale = i == 0 ? 1 : (size_t)1 << f->head_len[i];
        size_t n = (size_t)f->channels * (h[i] * scale) * (w[i] * scale);
        if (n > work_n)
            work_n = n;
    }
    const size_t n0 = (size_t)h[0] * w[0];
    /* add_nearest's index row (w[0] ints) sits after the floats. */
    const size_t need = lat_n * 2 + work_n * 2 + (size_t)f->channels * n0 + (size_t)w[0];
    if (need > f->ws->n) {
        free(f->ws->p);
        f->ws->n = 0;
        if (!(f->ws->p = seg_alloc_large(need * sizeof *f->ws->p)))
            return lr_fail(ctx, LR_ERR_NOMEM, "out of memory for the FPN head");
        f->ws->n = need;
    }
    float *lat = f->ws->p;
    int *xs = (int *)(lat + need - (size_t)w[0]);
    float *pyr = lat + lat_n, *acc = pyr + lat_n;
    float *bufs[2] = {acc + (size_t)f->channels * n0, acc + (size_t)f->channels * n0 + work_n};
    lr_status s = LR_OK;
    for (int i = 0; i < LEVELS && s == LR_OK; i++)
        s = conv(ctx, &f->lateral[i], false, feats[i], h[i], w[i], lat + off[i]);
    for (int i = LEVELS - 1; i > 0 && s == LR_OK; i--)
        add_nearest(lat + off[i - 1], f->neck, h[i - 1], w[i - 1], lat + off[i], h[i], w[i], xs);
    for (int i = 0; i < LEVELS && s == LR_OK; i++)
        s = conv(ctx, &f->smooth[i], false, lat + off[i], h[i], w[i], pyr + off[i]);
    for (int i = 0; i < LEVELS && s == LR_OK; i++) {
        const float *cur = pyr + off[i];
        int hh = h[i], ww = w[i], nb = 0;
        for (int j = 0; j < f->head_len[i] && s == LR_OK; j++) {
            s = conv(ctx, &f->head[i][j], true, cur, hh, ww, bufs[nb]);
            cur = bufs[nb];
            nb ^= 1;
            if (s == LR_OK && i > 0) { /* mmseg's Upsample: size 2x, bilinear half-pixel */
                s = lr_resize(ctx, &bilinear, cur, f->channels, hh, ww, bufs[nb], 2 * hh, 2 * ww);
                hh *= 2;
                ww *= 2;
                cur = bufs[nb];
                nb ^= 1;
            }
        }
        if (s != LR_OK)
            break;
        if (i == 0) {
            memcpy(acc, cur, (size_t)f->channels * n0 * sizeof *acc);
        } else {
            s = lr_resize(ctx, &bilinear, cur, f->channels, hh, ww, bufs[nb], h[0], w[0]);
            const float *r = bufs[nb];
            for (size_t k = 0; s == LR_OK && k < (size_t)f->channels * n0; k++)
                acc[k] += r[k];
        }
    }
    if (s == LR_OK)
        s = conv(ctx, &f->seg, false, acc, h[0], w[0], out);
    return s;
}

void seg_fpn_close(seg_fpn *f)
{
    if (!f)
        return;
    for (int i = 0; i < f->nowned; i++)
        free(f->owned[i]);
    if (f->ws)
        free(f->ws->p);
    free(f->ws);
    free(f);
}
