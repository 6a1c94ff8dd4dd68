/* Colour handling, tiles and row bands around a network (see upscale.h). */
#include "upscale.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "longrange/resize.h"

enum { BICUBIC_CONTEXT = 2 }; /* Keys' kernel reaches 2 input pixels each side */

static int min_int(int a, int b)
{
    return a < b ? a : b;
}

static int max_int(int a, int b)
{
    return a > b ? a : b;
}

/* Work buffers sized once for the largest tile. */
typedef struct {
    float *net_in;   /* [net channels][rh][rw] */
    float *aux_in;   /* [aux][rh][rw]: Cb, Cr (luma net on colour), then alpha */
    float *net_out;  /* [net channels][rh s][rw s] */
    float *aux_out;  /* [aux][rh s][rw s] */
    float *band;     /* [image channels][tile rows s][width s] */
} buffers;

static float *alloc_floats(int64_t n)
{
    if (n <= 0 || (uint64_t)n > SIZE_MAX / sizeof(float))
        return NULL;
    return malloc((size_t)n * sizeof(float));
}

lr_status sr_upscale(lr_ctx *ctx, const sr_tiling *t, const image *img, sr_rows_fn sink,
                     void *user)
{
    const sr_net *net = t->net;
    const int H = img->height, W = img->width, C = img->channels, s = net->scale;
    const bool colour = C >= 3, alpha = C == 2 || C == 4;
    const int net_c = net->channels;
    const int chroma = colour && net_c == 1 ? 2 : 0;
    const int n_aux = chroma + (alpha ? 1 : 0);
    if ((int64_t)H * s > INT32_MAX || (int64_t)W * s > INT32_MAX)
        return lr_fail(ctx, LR_ERR_DATA, "a %dx%d image upscaled %d times is too large for PNG",
                       W, H, s);
    const int T = t->tile > 0 ? t->tile : max_int(H, W);
    int pad = t->tile > 0 ? t->pad : 0;
    if (n_aux && t->tile > 0 && pad < BICUBIC_CONTEXT)
        pad = BICUBIC_CONTEXT;
    const int64_t Ws = (int64_t)W * s;
    const int max_rh = min_int(H, T + 2 * pad), max_rw = min_int(W, T + 2 * pad);
    const int64_t region = (int64_t)max_rh * max_rw, region_out = region * s * s;
    const int band_rows = min_int(T, H) * s;

    /* One tile that is the whole image with nothing to combine: the network's output is the
     * result as it stands. */
    const bool direct = T >= H && T >= W && net_c == C && n_aux == 0;
    buffers b = {0};
    b.net_in = alloc_floats(region * net_c);
    b.net_out = alloc_floats(region_out * net_c);
    if (n_aux) {
        b.aux_in = alloc_floats(region * n_aux);
        b.aux_out = alloc_floats(region_out * n_aux);
    }
    if (!direct)
        b.band = alloc_floats((int64_t)C * band_rows * Ws);
    lr_status st = LR_OK;
    if (!b.net_in || !b.net_out || (n_aux && (!b.aux_in || !b.aux_out)) || (!direct && !b.band)) {
        st = lr_fail(ctx, LR_ERR_NOMEM, "out of memory for %dx%d tiles of a %dx%d image", T, T,
                     W, H);
        goto done;
    }
    const lr_resize_desc bicubic = {LR_RESIZE_BICUBIC, -0.5, false};
    const int64_t plane_in = (int64_t)H * W;
    for (int ty = 0; ty < H && st == LR_OK; ty += T) {
        const int th = min_int(T, H - ty);
        const int64_t band_plane = (int64_t)th * s * Ws;
        for (int tx = 0; tx < W && st == LR_OK; tx += T) {
            const int tw = min_int(T, W - tx);
            const int ry = max_int(0, ty - pad), rx = max_int(0, tx - pad);
            const int rh = min_int(H, ty + th + pad) - ry, rw = min_int(W, tx + tw + pad) - rx;
            const int64_t n = (int64_t)rh * rw, rws = (int64_t)rw * s;
            const int64_t n_out = n * s * s;
            /* Cut the region into the network's planes. */
            for (int y = 0; y < rh; y++) {
                const int64_t src = (int64_t)(ry + y) * W + rx, dst = (int64_t)y * rw;
                const float *p0 = img->pixels + src;
                if (net_c == 3 && colour) {
                    for (int c = 0; c < 3; c++)
                        memcpy(b.net_in + c * n + dst, p0 + c * plane_in, (size_t)rw * sizeof(float));
                } else if (net_c == 3) {
                    for (int c = 0; c < 3; c++)
                        memcpy(b.net_in + c * n + dst, p0, (size_t)rw * sizeof(float));
                } else if (!colour) {
                    memcpy(b.net_in + dst, p0, (size_t)rw * sizeof(float));
                } else {
                    image_rgb_to_ycbcr(p0, p0 + plane_in, p0 + 2 * plane_in, b.net_in + dst,
                                       b.aux_in + dst, b.aux_in + n + dst, rw);
                }
                if (alpha)
                    memcpy(b.aux_in + chroma * n + dst, p0 + (C - 1) * plane_in,
                           (size_t)rw * sizeof(float));
            }
            st = net->forward(ctx, net, b.net_in, rh, rw, b.net_out);
            if (st == LR_OK && n_aux)
                st = lr_resize(ctx, &bicubic, b.aux_in, n_aux, rh, rw, b.aux_out, rh * s, rw * s);
            if (st != LR_OK || direct)
                break;
            /* Keep the tile's own part, combined into the image's channels. */
            const int oy = (ty - ry) * s, ox = (tx - rx) * s, out_w = tw * s;
            for (int r = 0; r < th * s; r++) {
                const int64_t src = (int64_t)(oy + r) * rws + ox;
                float *dst = b.band + (int64_t)r * Ws + (int64_t)tx * s;
                const float *o = b.net_out + src;
                if (net_c == 3 && colour) {
                    for (int c = 0; c < 3; c++)
                        memcpy(dst + c * band_plane, o + c * n_out, (size_t)out_w * sizeof(float));
                } else if (net_c == 3) {
                    for (int x = 0; x < out_w; x++)
                        dst[x] = 0.299f * o[x] + 0.587f * o[n_out + x] + 0.114f * o[2 * n_out + x];
                } else if (!colour) {
                    memcpy(dst, o, (size_t)out_w * sizeof(float));
                } else {
                    image_ycbcr_to_rgb(o, b.aux_out + src, b.aux_out + n_out + src, dst,
                                       dst + band_plane, dst + 2 * band_plane, out_w);
                }
                if (alpha) {
                    const float *a = b.aux_out + chroma * n_out + src;
                    float *da = dst + (C - 1) * band_plane;
                    for (int x = 0; x < out_w; x++)
                        da[x] = a[x] < 0.0f ? 0.0f : a[x] > 1.0f ? 1.0f : a[x];
                }
            }
        }
        if (st == LR_OK && !direct)
            st = sink(ctx, user, b.band, th * s);
    }
    if (st == LR_OK && direct)
        st = sink(ctx, user, b.net_out, H * s);
done:
    free(b.net_in);
    free(b.aux_in);
    free(b.net_out);
    free(b.aux_out);
    free(b.band);
    return st;
}

lr_status sr_full_output_rows(lr_ctx *ctx, void *user, const float *planes, int rows)
{
    sr_full_output *o = user;
    if (rows > o->height - o->rows_done)
        return lr_fail(ctx, LR_ERR_INTERNAL, "more rows than the result has");
    const int64_t plane = (int64_t)o->height * o->width, band = (int64_t)rows * o->width;
    for (int c = 0; c < o->channels; c++)
        memcpy(o->planes + c * plane + (int64_t)o->rows_done * o->width, planes + c * band,
               (size_t)band * sizeof(float));
    o->rows_done += rows;
    return LR_OK;
}
