/* arch "pointwise": a per-pixel linear classifier of colour, the smallest segmentation network.
 * It exists to test seg-run's many-class paths (softmax, label palettes and names, the resize
 * back from a coarser output) on drawn images whose answer is known exactly, and as a
 * colour-keying tool.
 *
 * Model file: "weight" [classes][3] and "bias" [classes] (F32 or F16); metadata
 *   "classes"      the class count (>= 2; one class means a sigmoid mask),
 *   "stride"       s >= 1 (default 1): each output pixel sees the mean RGB of an s x s block
 *                  of the input (the last blocks cut by the border), so the output is
 *                  ceil(h / s) x ceil(w / s),
 *   "input_width", "input_height"  the size the program stretches to (default 0 x 0: any);
 *   class_names and palette as every network has them (net.c).
 * logit[c] = bias[c] + sum_k weight[c][k] * mean RGB[k], in float with the sum in k order:
 * deterministic, one thread (the work is a few operations per pixel). */
#include <stdlib.h>

#include "seg.h"

typedef struct {
    const float *weight, *bias;
    int stride;
} pointwise;

static void pointwise_out_size(const seg_net *net, int h, int w, int *out_h, int *out_w)
{
    const pointwise *p = net->impl;
    *out_h = (h + p->stride - 1) / p->stride;
    *out_w = (w + p->stride - 1) / p->stride;
}

static lr_status pointwise_forward(lr_ctx *ctx, const seg_net *net, const float *in, int h,
                                   int w, float *out)
{
    const pointwise *p = net->impl;
    const int s = p->stride, C = net->classes;
    int oh, ow;
    pointwise_out_size(net, h, w, &oh, &ow);
    const int64_t plane = (int64_t)h * w, out_plane = (int64_t)oh * ow;
    for (int oy = 0; oy < oh; oy++)
        for (int ox = 0; ox < ow; ox++) {
            float rgb[3];
            const int y1 = oy * s + s < h ? oy * s + s : h, x1 = ox * s + s < w ? ox * s + s : w;
            for (int k = 0; k < 3; k++) {
                float sum = 0.0f;
                for (int y = oy * s; y < y1; y++)
                    for (int x = ox * s; x < x1; x++)
                        sum += in[k * plane + (int64_t)y * w + x];
                rgb[k] = sum / (float)((y1 - oy * s) * (x1 - ox * s));
            }
            for (int c = 0; c < C; c++) {
                float v = p->bias[c];
                for (int k = 0; k < 3; k++)
                    v += p->weight[3 * c + k] * rgb[k];
                out[c * out_plane + (int64_t)oy * ow + ox] = v;
            }
        }
    return LR_OK;
}

static void pointwise_close(seg_net *net)
{
    free(net->impl);
    free(net);
}

lr_status pointwise_net_open(lr_ctx *ctx, const lr_model *file, seg_net **out)
{
    *out = NULL;
    int classes, stride, in_w, in_h;
    lr_status s;
    if ((s = lr_model_meta_int_in(ctx, file, "classes", false, 0, 1, 256, &classes)) != LR_OK ||
        (s = lr_model_meta_int_in(ctx, file, "stride", true, 1, 1, 1 << 16, &stride)) != LR_OK ||
        (s = lr_model_meta_int_in(ctx, file, "input_width", true, 0, 0, 1 << 16, &in_w)) != LR_OK ||
        (s = lr_model_meta_int_in(ctx, file, "input_height", true, 0, 0, 1 << 16, &in_h)) != LR_OK)
        return s;
    if ((in_w == 0) != (in_h == 0))
        return lr_fail(ctx, LR_ERR_MODEL, "%s: input_width and input_height must both be 0 or "
                       "both be set", lr_model_path(file));
    const int64_t wshape[2] = {classes, 3}, bshape[1] = {classes};
    lr_tensor weight, bias;
    if ((s = lr_model_get_f32(ctx, file, "weight", 2, wshape, &weight)) != LR_OK ||
        (s = lr_model_get_f32(ctx, file, "bias", 1, bshape, &bias)) != LR_OK)
        return s;
    seg_net *net = calloc(1, sizeof *net);
    pointwise *p = calloc(1, sizeof *p);
    if (!net || !p) {
        free(net);
        free(p);
        return lr_fail(ctx, LR_ERR_NOMEM, "out of memory");
    }
    net->impl = p;
    net->close = pointwise_close;
    p->weight = weight.data;
    p->bias = bias.data;
    p->stride = stride;
    net->arch = "pointwise";
    net->name = "pointwise";
    net->in_width = in_w;
    net->in_height = in_h;
    net->classes = classes;
    net->out_size = pointwise_out_size;
    net->forward = pointwise_forward;
    *out = net;
    return LR_OK;
}
