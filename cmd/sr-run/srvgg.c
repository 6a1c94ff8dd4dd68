/* Real-ESRGAN's SRVGGNetCompact (xinntao/Real-ESRGAN, realesrgan/archs/srvgg_arch.py), e.g.
 * realesr-animevideov3 (converted from ncnn by tools/convert_ncnn_srvgg.py):
 *     body.0 conv3x3 3 -> F, body.1 act;  body.2k conv3x3 F -> F, body.2k+1 act  (k = 1..num_conv)
 *     body.(2 num_conv + 2) conv3x3 F -> 3 s^2;  pixel shuffle s;  + nearest-upsampled input
 * Zero padding 1 on every conv; values 0..1 in and out (the program clamps). Activation (metadata
 * act): "prelu" (body.(odd).weight [F], PyTorch PReLU(num_parameters=F)), "relu", or
 * "leakyrelu" (slope 0.1, as upstream); only PReLU has tensors.
 *
 * Tensors: body.N.weight [cout][cin][3][3] (F32 or F16) and body.N.bias for the convs, the PReLU
 * slopes; metadata scale, num_feat, num_conv, act, num_in_ch and num_out_ch (3 when absent).
 * Every shape is checked and the file must hold exactly these tensors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "longrange/conv.h"
#include "sr.h"

#define SRVGG_MAX_CONV 256

typedef struct {
    int num_feat, num_conv, scale, n_layers; /* n_layers = num_conv + 2 convolutions */
    lr_act act;
    const float **w, **b, **slope;          /* per conv; slope NULL unless PReLU (not on the last) */
    char name[48];
} srvgg;

static lr_status srvgg_forward(lr_ctx *ctx, const sr_net *net, const float *in, int h, int w, float *out)
{
    const srvgg *g = net->impl;
    if (!in || !out || h < 1 || w < 1)
        return lr_fail(ctx, LR_ERR_ARG, "%s: bad input (%dx%d)", g->name, h, w);
    int s = g->scale, last_out = 3 * s * s;
    size_t widest = (size_t)(g->num_feat > last_out ? g->num_feat : last_out);
    size_t hw = (size_t)h * (size_t)w;
    if (hw > SIZE_MAX / sizeof(float) / 2 / widest)
        return lr_fail(ctx, LR_ERR_NOMEM, "%s: a %dx%d input is too large", g->name, h, w);
    float *buf = sr_net_scratch(net, 2 * widest * hw);
    if (!buf)
        return lr_fail(ctx, LR_ERR_NOMEM, "%s: out of memory for a %dx%d input (%zu MB)", g->name, h, w,
                       2 * widest * hw * sizeof(float) >> 20);
    float *ping = buf, *pong = buf + widest * hw;
    const float *x = in;
    lr_status st = LR_OK;
    for (int i = 0; i < g->n_layers && st == LR_OK; i++) {
        int cin = i == 0 ? 3 : g->num_feat, cout = i == g->n_layers - 1 ? last_out : g->num_feat;
        lr_conv2d_desc d = lr_conv2d_default(3, 3);
        d.pad_top = d.pad_left = d.pad_bottom = d.pad_right = 1;
        if (i < g->n_layers - 1) {
            d.act = g->act;
            d.act_alpha = 0.1f;
            d.act_param = g->slope[i];
            d.act_param_count = g->slope[i] ? cout : 0;
        }
        float *y = x == ping ? pong : ping;
        st = lr_conv2d(ctx, &d, x, cin, h, w, g->w[i], g->b[i], cout, y);
        x = y;
    }
    if (st == LR_OK)
        st = lr_pixel_shuffle(ctx, x, 3, h, w, s, out);
    if (st == LR_OK) {
        /* the residual: + the input upsampled by nearest */
        size_t wo = (size_t)w * s;
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < h * s; y++) {
                float *row = out + ((size_t)c * h * s + y) * wo;
                const float *src = in + ((size_t)c * h + y / s) * w;
                for (size_t xo = 0; xo < wo; xo++)
                    row[xo] += src[xo / s];
            }
    }
    return st;
}

static void srvgg_free(srvgg *g)
{
    if (!g)
        return;
    free(g->w);
    free(g->b);
    free(g->slope);
    free(g);
}

static void srvgg_close(sr_net *net)
{
    if (!net)
        return;
    srvgg_free(net->impl);
    free(net);
}

static lr_status get_f32(lr_ctx *ctx, const lr_model *file, const char *name, int ndim, const int64_t *shape,
                         const float **out)
{
    lr_tensor t;
    lr_status s = lr_model_get_f32(ctx, file, name, ndim, shape, &t);
    if (s == LR_OK)
        *out = t.data;
    return s;
}

lr_status srvgg_net_open(lr_ctx *ctx, const lr_model *file, sr_net **out)
{
    *out = NULL;
    lr_status s = lr_model_expect_arch(ctx, file, "srvgg");
    if (s != LR_OK)
        return s;
    const char *path = lr_model_path(file);
    srvgg *g = calloc(1, sizeof *g);
    sr_net *net = calloc(1, sizeof *net);
    int in_ch, out_ch;
    if (!g || !net) {
        s = lr_fail(ctx, LR_ERR_NOMEM, "srvgg: out of memory");
        goto fail;
    }
    if ((s = lr_model_meta_int_in(ctx, file, "scale", false, 0, 1, 8, &g->scale)) != LR_OK ||
        (s = lr_model_meta_int_in(ctx, file, "num_feat", false, 0, 1, 1024, &g->num_feat)) != LR_OK ||
        (s = lr_model_meta_int_in(ctx, file, "num_conv", false, 0, 0, SRVGG_MAX_CONV, &g->num_conv)) != LR_OK ||
        (s = lr_model_meta_int_in(ctx, file, "num_in_ch", true, 3, 1, 1024, &in_ch)) != LR_OK ||
        (s = lr_model_meta_int_in(ctx, file, "num_out_ch", true, 3, 1, 1024, &out_ch)) != LR_OK)
        goto fail;
    if (in_ch != 3 || out_ch != 3) {
        s = lr_fail(ctx, LR_ERR_MODEL, "%s: srvgg with %d input and %d output channels (only RGB, 3)", path,
                    in_ch, out_ch);
        goto fail;
    }
    const char *act = lr_model_meta(file, "act");
    if (!act) {
        s = lr_fail(ctx, LR_ERR_MODEL, "%s: srvgg metadata 'act' missing", path);
        goto fail;
    }
    if (!strcmp(act, "prelu"))
        g->act = LR_ACT_PRELU;
    else if (!strcmp(act, "relu"))
        g->act = LR_ACT_RELU;
    else if (!strcmp(act, "leakyrelu"))
        g->act = LR_ACT_LEAKY_RELU;
    else {
        s = lr_fail(ctx, LR_ERR_MODEL, "%s: srvgg act '%s' (expected prelu, relu or leakyrelu)", path, act);
        goto fail;
    }
    int n = g->n_layers = g->num_conv + 2, F = g->num_feat;
    g->w = calloc((size_t)n, sizeof *g->w);
    g->b = calloc((size_t)n, sizeof *g->b);
    g->slope = calloc((size_t)n, sizeof *g->slope);
    if (!g->w || !g->b || !g->slope) {
        s = lr_fail(ctx, LR_ERR_NOMEM, "srvgg: out of memory");
        goto fail;
    }
    for (int i = 0; i < n; i++) {
        char name[48];
        int cin = i == 0 ? 3 : F, cout = i == n - 1 ? 3 * g->scale * g->scale : F;
        int64_t wshape[4] = {cout, cin, 3, 3}, vshape[1] = {cout};
        /* body index: conv i sits at 2i, its activation at 2i + 1 */
        snprintf(name, sizeof name, "body.%d.weight", 2 * i);
        if ((s = get_f32(ctx, file, name, 4, wshape, &g->w[i])) != LR_OK)
            goto fail;
        snprintf(name, sizeof name, "body.%d.bias", 2 * i);
        if ((s = get_f32(ctx, file, name, 1, vshape, &g->b[i])) != LR_OK)
            goto fail;
        if (i < n - 1 && g->act == LR_ACT_PRELU) {
            snprintf(name, sizeof name, "body.%d.weight", 2 * i + 1);
            if ((s = get_f32(ctx, file, name, 1, vshape, &g->slope[i])) != LR_OK)
                goto fail;
        }
    }
    size_t expected = 2 * (size_t)n + (g->act == LR_ACT_PRELU ? (size_t)n - 1 : 0);
    if (lr_model_tensor_count(file) != expected) {
        s = lr_fail(ctx, LR_ERR_MODEL, "%s: srvgg with num_conv=%d has %zu tensors, the file %zu", path,
                    g->num_conv, expected, lr_model_tensor_count(file));
        goto fail;
    }

    snprintf(g->name, sizeof g->name, "srvgg-x%d", g->scale);
    net->arch = "srvgg";
    net->name = g->name;
    net->scale = g->scale;
    net->channels = 3;
    net->context = n; /* one pixel per 3x3 conv */
    net->forward = srvgg_forward;
    net->close = srvgg_close;
    net->impl = g;
    *out = net;
    return LR_OK;
fail:
    srvgg_free(g);
    free(net);
    return s;
}
