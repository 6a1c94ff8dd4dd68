/* arch "bicubic": a weight-free sr_net that upscales R, G, B by bicubic interpolation (Keys'
 * cubic convolution, a = -0.5, as PIL and MATLAB's imresize; border pixels replicated;
 * lr_resize). The model file holds metadata only: "arch": "bicubic", "scale": N, and
 * optionally "channels": 1 to work on the luma as the Y-channel networks do (tests use it to
 * exercise that path). It is also the baseline sr-run eval compares a model with. */
#include <stdio.h>
#include <stdlib.h>

#include "longrange/resize.h"
#include "upscale.h"

enum { MAX_SCALE = 16 };

typedef struct {
    sr_net net;
    char name[32];
} bicubic_net;

static lr_status bicubic_forward(lr_ctx *ctx, const sr_net *net, const float *in, int h, int w,
                                 float *out)
{
    const lr_resize_desc d = {LR_RESIZE_BICUBIC, -0.5, false};
    return lr_resize(ctx, &d, in, net->channels, h, w, out, h * net->scale, w * net->scale);
}

static void bicubic_close(sr_net *net)
{
    free(net);
}

static lr_status create(lr_ctx *ctx, int scale, int channels, sr_net **out)
{
    *out = NULL;
    if (scale < 1 || scale > MAX_SCALE)
        return lr_fail(ctx, LR_ERR_ARG, "bicubic scale %d is not in 1..%d", scale, MAX_SCALE);
    bicubic_net *b = calloc(1, sizeof *b);
    if (!b)
        return lr_fail(ctx, LR_ERR_NOMEM, "out of memory");
    snprintf(b->name, sizeof b->name, "bicubic-%sx%d", channels == 1 ? "luma-" : "", scale);
    b->net = (sr_net){
        .arch = "bicubic",
        .name = b->name,
        .scale = scale,
        .channels = channels,
        /* an output pixel's four taps lie within 2 input pixels of its source position */
        .context = 2,
        .forward = bicubic_forward,
        .close = bicubic_close,
        .impl = b,
    };
    *out = &b->net;
    return LR_OK;
}

lr_status bicubic_net_open(lr_ctx *ctx, const lr_model *file, sr_net **out)
{
    *out = NULL;
    int64_t scale;
    lr_status s = lr_model_meta_int(ctx, file, "scale", false, 0, &scale);
    if (s != LR_OK)
        return s;
    if (scale < 1 || scale > MAX_SCALE)
        return lr_fail(ctx, LR_ERR_MODEL, "%s: scale %lld is not in 1..%d", lr_model_path(file),
                       (long long)scale, MAX_SCALE);
    int64_t channels;
    if ((s = lr_model_meta_int(ctx, file, "channels", true, 3, &channels)) != LR_OK)
        return s;
    if (channels != 1 && channels != 3)
        return lr_fail(ctx, LR_ERR_MODEL, "%s: channels %lld is not 1 (luma) or 3 (RGB)",
                       lr_model_path(file), (long long)channels);
    return create(ctx, (int)scale, (int)channels, out);
}

lr_status bicubic_net_create(lr_ctx *ctx, int scale, sr_net **out)
{
    return create(ctx, scale, 3, out);
}
