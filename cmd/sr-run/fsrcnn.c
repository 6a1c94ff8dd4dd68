/* FSRCNN (Dong, Loy, Tang 2016) as OpenCV's dnn_superres ships it (FSRCNN_x2.pb, ...,
 * converted by tools/convert_opencv_sr.py), on the luma channel:
 *     conv k1 x k1, 1 -> d, PReLU         (feature extraction)
 *     conv 1x1, d -> s, PReLU             (shrinking)
 *     m x conv kmid x kmid, s -> s, PReLU (mapping)
 *     conv 1x1, s -> d, PReLU             (expanding)
 *     conv klast x klast, d -> r*r, no bias; pixel shuffle r; + one output bias
 * Every convolution uses TensorFlow SAME padding (the odd extra row/column bottom/right).
 * Tensors f1..fN (OIHW), b1..b(N-1), alpha1..alpha(N-1) (PReLU slopes), bN [1], N = m + 4;
 * metadata scale, d, s, m, kernel_first, kernel_mid, kernel_last. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "longrange/conv.h"
#include "sr.h"

#define FSRCNN_MAX_MAP 32                 /* mapping layers */
#define FSRCNN_MAX_LAYERS (FSRCNN_MAX_MAP + 4)

typedef struct {
    int d, s, m, k_first, k_mid, k_last, scale;
    int layers;                           /* m + 4 convolutions */
    int cin[FSRCNN_MAX_LAYERS], cout[FSRCNN_MAX_LAYERS], k[FSRCNN_MAX_LAYERS];
    const float *w[FSRCNN_MAX_LAYERS], *b[FSRCNN_MAX_LAYERS], *alpha[FSRCNN_MAX_LAYERS];
    float out_bias;
    char name[32];
} fsrcnn;

/* TensorFlow SAME padding for a stride-1 k x k kernel: k-1 in all, the extra one after. */
static lr_conv2d_desc same_conv(int k)
{
    lr_conv2d_desc d = lr_conv2d_default(k, k);
    d.pad_top = d.pad_left = (k - 1) / 2;
    d.pad_bottom = d.pad_right = k - 1 - (k - 1) / 2;
    return d;
}

static lr_status fsrcnn_forward(lr_ctx *ctx, const sr_net *net, const float *in, int h, int w,
                                float *out)
{
    const fsrcnn *f = net->impl;
    if (!in || !out || h < 1 || w < 1)
        return lr_fail(ctx, LR_ERR_ARG, "fsrcnn: bad input (%dx%d)", h, w);
    /* Three stacks of planes: `wide` (d channels) for the first and expanding layers, two
     * `narrow` ones (max(s, r*r)) for the rest, alternating through the mapping layers. */
    int narrow = f->s > f->scale * f->scale ? f->s : f->scale * f->scale;
    size_t plane = (size_t)h * (size_t)w, channels = (size_t)f->d + 2 * (size_t)narrow;
    if (plane > SIZE_MAX / sizeof(float) / channels)
        return lr_fail(ctx, LR_ERR_NOMEM, "fsrcnn: a %dx%d input is too large", h, w);
    float *buf = sr_net_scratch(net, channels * plane);
    if (!buf)
        return lr_fail(ctx, LR_ERR_NOMEM, "fsrcnn: out of memory for a %dx%d input", h, w);
    float *wide = buf, *narrow_a = buf + (size_t)f->d * plane;
    float *narrow_b = narrow_a + (size_t)narrow * plane;
    const float *x = in;
    lr_status s = LR_OK;
    for (int i = 0; i < f->layers && s == LR_OK; i++) {
        lr_conv2d_desc d = same_conv(f->k[i]);
        if (f->alpha[i]) {
            d.act = LR_ACT_PRELU;
            d.act_param = f->alpha[i];
            d.act_param_count = f->cout[i];
        }
        float *y = (i == 0 || i == f->layers - 2) ? wide : (x == narrow_a ? narrow_b : narrow_a);
        s = lr_conv2d(ctx, &d, x, f->cin[i], h, w, f->w[i], f->b[i], f->cout[i], y);
        x = y;
    }
    if (s == LR_OK)
        s = lr_pixel_shuffle(ctx, x, 1, h, w, f->scale, out);
    if (s == LR_OK) {
        size_t n = plane * (size_t)f->scale * (size_t)f->scale;
        for (size_t i = 0; i < n; i++)
            out[i] += f->out_bias;
    }
    return s;
}

static void fsrcnn_close(sr_net *net)
{
    if (!net)
        return;
    free(net->impl);
    free(net);
}

static lr_status get_f32(lr_ctx *ctx, const lr_model *file, const char *name, int ndim,
                         const int64_t *shape, const float **out)
{
    lr_tensor t;
    lr_status s = lr_model_get_f32(ctx, file, name, ndim, shape, &t);
    if (s == LR_OK)
        *out = t.data;
    return s;
}

lr_status fsrcnn_net_open(lr_ctx *ctx, const lr_model *file, sr_net **out)
{
    *out = NULL;
    lr_status s = lr_model_expect_arch(ctx, file, "fsrcnn");
    if (s != LR_OK)
        return s;
    fsrcnn *f = calloc(1, sizeof *f);
    sr_net *net = calloc(1, sizeof *net);
    if (!f || !net) {
        free(f);
        free(net);
        return lr_fail(ctx, LR_ERR_NOMEM, "fsrcnn: out of memory");
    }
    if ((s = lr_model_meta_int_in(ctx, file, "scale", false, 0, 2, 8, &f->scale)) != LR_OK ||
        (s = lr_model_meta_int_in(ctx, file, "d", false, 0, 1, 1024, &f->d)) != LR_OK ||
        (s = lr_model_meta_int_in(ctx, file, "s", false, 0, 1, 1024, &f->s)) != LR_OK ||
        (s = lr_model_meta_int_in(ctx, file, "m", false, 0, 0, FSRCNN_MAX_MAP, &f->m)) != LR_OK ||
        (s = lr_model_meta_int_in(ctx, file, "kernel_first", false, 0, 1, 15, &f->k_first)) != LR_OK ||
        (s = lr_model_meta_int_in(ctx, file, "kernel_mid", false, 0, 1, 15, &f->k_mid)) != LR_OK ||
        (s = lr_model_meta_int_in(ctx, file, "kernel_last", false, 0, 1, 15, &f->k_last)) != LR_OK)
        goto fail;

    /* The layer plan, from which every tensor's expected shape follows. */
    int n = f->layers = f->m + 4, r2 = f->scale * f->scale;
    for (int i = 0; i < n; i++) {
        if (i == 0) {
            f->cin[i] = 1, f->cout[i] = f->d, f->k[i] = f->k_first;
        } else if (i == 1) {
            f->cin[i] = f->d, f->cout[i] = f->s, f->k[i] = 1;
        } else if (i < n - 2) {
            f->cin[i] = f->s, f->cout[i] = f->s, f->k[i] = f->k_mid;
        } else if (i == n - 2) {
            f->cin[i] = f->s, f->cout[i] = f->d, f->k[i] = 1;
        } else {
            f->cin[i] = f->d, f->cout[i] = r2, f->k[i] = f->k_last;
        }
    }
    for (int i = 0; i < n && s == LR_OK; i++) {
        char name[32];
        int64_t wshape[4] = {f->cout[i], f->cin[i], f->k[i], f->k[i]};
        int64_t vshape[1] = {f->cout[i]};
        snprintf(name, sizeof name, "f%d", i + 1);
        s = get_f32(ctx, file, name, 4, wshape, &f->w[i]);
        if (s == LR_OK && i < n - 1) {
            snprintf(name, sizeof name, "b%d", i + 1);
            s = get_f32(ctx, file, name, 1, vshape, &f->b[i]);
        }
        if (s == LR_OK && i < n - 1) {
            snprintf(name, sizeof name, "alpha%d", i + 1);
            s = get_f32(ctx, file, name, 1, vshape, &f->alpha[i]);
        }
    }
    if (s == LR_OK) {
        char name[32];
        const float *bias;
        int64_t one[1] = {1};
        snprintf(name, sizeof name, "b%d", n);
        if ((s = get_f32(ctx, file, name, 1, one, &bias)) == LR_OK)
            f->out_bias = bias[0];
    }
    if (s != LR_OK)
        goto fail;

    sr_net_label(lr_model_path(file), f->name, sizeof f->name);
    net->arch = "fsrcnn";
    net->name = f->name;
    net->scale = f->scale;
    net->channels = 1;
    /* Receptive-field radius: each k x k SAME convolution reaches k/2 pixels further. */
    net->context = f->k_first / 2 + f->m * (f->k_mid / 2) + f->k_last / 2;
    net->forward = fsrcnn_forward;
    net->close = fsrcnn_close;
    net->impl = f;
    *out = net;
    return LR_OK;
fail:
    free(f);
    free(net);
    return s;
}
