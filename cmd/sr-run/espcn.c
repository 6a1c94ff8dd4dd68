/* ESPCN (Shi et al. 2016) as OpenCV's dnn_superres ships it (ESPCN_x2.pb, ESPCN_x4.pb,
 * converted by tools/convert_opencv_sr.py), on the luma channel:
 *     conv k1 x k1, 1 -> c1, ReLU; conv k2 x k2, c1 -> c2, ReLU; conv k3 x k3, c2 -> r*r;
 *     pixel shuffle r; tanh
 * with TensorFlow SAME padding (the odd extra row/column bottom/right). Tensors f1..f3 (OIHW),
 * b1..b3; metadata scale, c1, c2, k1, k2, k3, output "tanh". */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "longrange/conv.h"
#include "sr.h"

typedef struct {
    int scale;
    int cin[3], cout[3], k[3];
    const float *w[3], *b[3];
    char name[32];
} espcn;

/* TensorFlow SAME padding for a stride-1 k x k kernel: k-1 in all, the extra one after. */
static lr_conv2d_desc same_conv(int k)
{
    lr_conv2d_desc d = lr_conv2d_default(k, k);
    d.pad_top = d.pad_left = (k - 1) / 2;
    d.pad_bottom = d.pad_right = k - 1 - (k - 1) / 2;
    return d;
}

static lr_status espcn_forward(lr_ctx *ctx, const sr_net *net, const float *in, int h, int w,
                               float *out)
{
    const espcn *e = net->impl;
    if (!in || !out || h < 1 || w < 1)
        return lr_fail(ctx, LR_ERR_ARG, "espcn: bad input (%dx%d)", h, w);
    /* Two stacks of planes: the first for layers 1 and 3, the second for layer 2. */
    size_t first = (size_t)(e->cout[0] > e->cout[2] ? e->cout[0] : e->cout[2]);
    size_t plane = (size_t)h * (size_t)w, channels = first + (size_t)e->cout[1];
    if (plane > SIZE_MAX / sizeof(float) / channels)
        return lr_fail(ctx, LR_ERR_NOMEM, "espcn: a %dx%d input is too large", h, w);
    float *buf = sr_net_scratch(net, channels * plane);
    if (!buf)
        return lr_fail(ctx, LR_ERR_NOMEM, "espcn: out of memory for a %dx%d input", h, w);
    float *act[3] = {buf, buf + first * plane, buf};
    const float *x = in;
    lr_status s = LR_OK;
    for (int i = 0; i < 3 && s == LR_OK; i++) {
        lr_conv2d_desc d = same_conv(e->k[i]);
        d.act = i < 2 ? LR_ACT_RELU : LR_ACT_NONE;
        s = lr_conv2d(ctx, &d, x, e->cin[i], h, w, e->w[i], e->b[i], e->cout[i], act[i]);
        x = act[i];
    }
    if (s == LR_OK)
        s = lr_pixel_shuffle(ctx, x, 1, h, w, e->scale, out);
    if (s == LR_OK) {
        size_t n = plane * (size_t)e->scale * (size_t)e->scale;
        for (size_t i = 0; i < n; i++)
            out[i] = tanhf(out[i]);
    }
    return s;
}

static void espcn_close(sr_net *net)
{
    if (!net)
        return;
    free(net->impl);
    free(net);
}

lr_status espcn_net_open(lr_ctx *ctx, const lr_model *file, sr_net **out)
{
    *out = NULL;
    lr_status s = lr_model_expect_arch(ctx, file, "espcn");
    if (s != LR_OK)
        return s;
    const char *output = lr_model_meta(file, "output");
    if (output && strcmp(output, "tanh") != 0)
        return lr_fail(ctx, LR_ERR_MODEL, "%s: espcn output activation \"%s\" (only tanh is known)",
                       lr_model_path(file), output);
    espcn *e = calloc(1, sizeof *e);
    sr_net *net = calloc(1, sizeof *net);
    if (!e || !net) {
        free(e);
        free(net);
        return lr_fail(ctx, LR_ERR_NOMEM, "espcn: out of memory");
    }
    int c1 = 0, c2 = 0;
    if ((s = lr_model_meta_int_in(ctx, file, "scale", false, 0, 2, 8, &e->scale)) != LR_OK ||
        (s = lr_model_meta_int_in(ctx, file, "c1", false, 0, 1, 1024, &c1)) != LR_OK ||
        (s = lr_model_meta_int_in(ctx, file, "c2", false, 0, 1, 1024, &c2)) != LR_OK ||
        (s = lr_model_meta_int_in(ctx, file, "k1", false, 0, 1, 15, &e->k[0])) != LR_OK ||
        (s = lr_model_meta_int_in(ctx, file, "k2", false, 0, 1, 15, &e->k[1])) != LR_OK ||
        (s = lr_model_meta_int_in(ctx, file, "k3", false, 0, 1, 15, &e->k[2])) != LR_OK)
        goto fail;
    e->cin[0] = 1, e->cout[0] = c1;
    e->cin[1] = c1, e->cout[1] = c2;
    e->cin[2] = c2, e->cout[2] = e->scale * e->scale;
    for (int i = 0; i < 3 && s == LR_OK; i++) {
        char name[16];
        lr_tensor t;
        int64_t wshape[4] = {e->cout[i], e->cin[i], e->k[i], e->k[i]};
        int64_t bshape[1] = {e->cout[i]};
        snprintf(name, sizeof name, "f%d", i + 1);
        if ((s = lr_model_get_f32(ctx, file, name, 4, wshape, &t)) != LR_OK)
            break;
        e->w[i] = t.data;
        snprintf(name, sizeof name, "b%d", i + 1);
        if ((s = lr_model_get_f32(ctx, file, name, 1, bshape, &t)) != LR_OK)
            break;
        e->b[i] = t.data;
    }
    if (s != LR_OK)
        goto fail;

    sr_net_label(lr_model_path(file), e->name, sizeof e->name);
    net->arch = "espcn";
    net->name = e->name;
    net->scale = e->scale;
    net->channels = 1;
    /* Receptive-field radius: each k x k SAME convolution reaches k/2 pixels further. */
    net->context = e->k[0] / 2 + e->k[1] / 2 + e->k[2] / 2;
    net->forward = espcn_forward;
    net->close = espcn_close;
    net->impl = e;
    *out = net;
    return LR_OK;
fail:
    free(e);
    free(net);
    return s;
}
