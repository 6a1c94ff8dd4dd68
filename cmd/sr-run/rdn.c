/* ESRGAN-slim: the residual dense network (RDN, Zhang et al. 2018) as idealo's
 * image-super-resolution builds it (ISR/models/rdn.py) and UpscalerJS ships it (TF.js
 * layers-model, converted by tools/convert_esrgan_slim.py). For d = 1..D, c = 1..C:
 *     F_m1 = conv3x3(255 * x) -> G0           F_0 = conv3x3(F_m1) -> G0
 *     RDB d: h = rdb_in (F_0 for d = 1); h = concat(h, relu(F_d_c(h)))   (F_d_c 3x3 -> G)
 *            LRL_d = LFF_d(h) + rdb_in                                   (LFF_d 1x1 -> G0)
 *     FDF = GFF_2(GFF_1(concat(LRL_1..LRL_D))) + F_m1                    (1x1, then 3x3)
 *     out = SR(nearest_upsample_s(UPN3(relu(UPN2(relu(UPN1(FDF))))))) / 255
 *           (UPN1 5x5 -> 64, UPN2 3x3 -> 32, UPN3 3x3 -> 3 s^2, SR 3x3 -> 3)
 * All convolutions are zero-padded 'same' with odd kernels (symmetric padding). The network
 * works on pixel values 0..255 (metadata value_range); the 255 is folded into F_m1's weights
 * and the 1/255 into SR's.
 *
 * Tensors (OIHW): <layer>.weight and <layer>.bias for every conv above; metadata scale, D, C,
 * G, G0, upscaling "ups", value_range. Every shape is checked, and the file must hold exactly
 * these tensors.
 *
 * The nearest upsampling followed by SR's 3x3 conv is computed at low resolution: the output
 * pixel (y s + dy, x s + dx) reads upsampled rows y s + dy - 1 .. y s + dy + 1, which are the
 * low-resolution rows y + floor((dy + k - 1) / s), k = 0..2; so one 3x3 conv with 3 s^2
 * outputs (the taps of each phase summed) followed by a pixel shuffle gives the same result
 * without the s^2-times larger upsampled tensor. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "longrange/conv.h"
#include "sr.h"

#define RDN_MAX_BLOCKS 64 /* D and C */
#define RDN_UPN1 64       /* idealo's fixed upsampling-network widths */
#define RDN_UPN2 32

typedef struct {
    const float *w, *b;
    int cin, cout, k;
} rdn_conv;

typedef struct {
    int D, C, G, G0, scale;
    rdn_conv f_m1, f_0, gff_1, gff_2, upn1, upn2, upn3, sr;
    rdn_conv *f;   /* [D * C], F_d_c at (d-1) * C + (c-1) */
    rdn_conv *lff; /* [D] */
    rdn_conv *gff_1_slice; /* [D]: GFF_1's input columns of block d, G0 -> G0; bias in the first */
    float *gff_1_w;        /* their weights, [D][G0][G0] */
    float *f_m1_w; /* F_m1's weights times value_range */
    float *sr_w;   /* the low-resolution SR conv: [3 s^2][3 s^2][3][3], / value_range */
    float *sr_b;   /* [3 s^2] */
    char name[32];
} rdn;

static lr_status run_conv(lr_ctx *ctx, const rdn_conv *cv, lr_act act, const float *in, int h, int w,
                          float *out)
{
    lr_conv2d_desc d = lr_conv2d_default(cv->k, cv->k);
    d.pad_top = d.pad_left = d.pad_bottom = d.pad_right = cv->k / 2;
    d.act = act;
    return lr_conv2d(ctx, &d, in, cv->cin, h, w, cv->w, cv->b, cv->cout, out);
}

static void add_into(float *dst, const float *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] += src[i];
}

static lr_status rdn_forward(lr_ctx *ctx, const sr_net *net, const float *in, int h, int w, float *out)
{
    const rdn *r = net->impl;
    if (!in || !out || h < 1 || w < 1)
        return lr_fail(ctx, LR_ERR_ARG, "%s: bad input (%dx%d)", r->name, h, w);
    /* Three buffers of planes (memory is what limits the tile size):
     *   work: rdb_in then the RDB's growing concat [G0 + C*G]; later UPN1 [64], UPN3 [3 s^2]
     *   acc:  GFF_1's sum over the blocks [G0]; later F_m1 again, UPN2 [32]
     *   tmp:  F_m1, LFF_d + rdb_in (LRL_d), GFF_1's term for one block [G0]; later GFF_2 + F_m1
     *         (FDF), the SR phases [3 s^2]
     * GFF_1 on concat(LRL_1..LRL_D) is the sum of its column slices applied to each LRL_d, and
     * F_m1 (a 3-channel conv, under 1% of the work) is computed again for the global residual,
     * so neither the D*G0-plane concat nor F_m1 has to stay alive: 196 planes instead of 324. */
    size_t s2c = (size_t)3 * r->scale * r->scale, hw = (size_t)h * (size_t)w;
    size_t n_work = (size_t)r->G0 + (size_t)r->C * r->G, n_acc = (size_t)r->G0, n_tmp = (size_t)r->G0;
    if (n_work < RDN_UPN1)
        n_work = RDN_UPN1;
    if (n_work < s2c)
        n_work = s2c;
    if (n_acc < RDN_UPN2)
        n_acc = RDN_UPN2;
    if (n_tmp < s2c)
        n_tmp = s2c;
    size_t planes = n_work + n_acc + n_tmp;
    if (hw > SIZE_MAX / sizeof(float) / planes)
        return lr_fail(ctx, LR_ERR_NOMEM, "%s: a %dx%d input is too large", r->name, h, w);
    float *buf = sr_net_scratch(net, planes * hw);
    if (!buf)
        return lr_fail(ctx, LR_ERR_NOMEM, "%s: out of memory for a %dx%d input (%zu MB)", r->name, h,
                       w, planes * hw * sizeof(float) >> 20);
    float *work = buf, *acc = work + n_work * hw, *tmp = acc + n_acc * hw;
    size_t g0_plane = (size_t)r->G0 * hw;

    lr_status s = run_conv(ctx, &r->f_m1, LR_ACT_NONE, in, h, w, tmp);
    if (s == LR_OK)
        s = run_conv(ctx, &r->f_0, LR_ACT_NONE, tmp, h, w, work);
    for (int d = 0; d < r->D && s == LR_OK; d++) {
        for (int c = 0; c < r->C && s == LR_OK; c++) {
            const rdn_conv *cv = &r->f[d * r->C + c];
            s = run_conv(ctx, cv, LR_ACT_RELU, work, h, w, work + (size_t)cv->cin * hw);
        }
        if (s == LR_OK)
            s = run_conv(ctx, &r->lff[d], LR_ACT_NONE, work, h, w, tmp);
        if (s != LR_OK)
            break;
        add_into(tmp, work, g0_plane); /* local residual: LRL_d = LFF_d + rdb_in */
        memcpy(work, tmp, g0_plane * sizeof(float));
        /* GFF_1's slice for block d (with the bias once, in the first) */
        if (d == 0) {
            s = run_conv(ctx, &r->gff_1_slice[0], LR_ACT_NONE, work, h, w, acc);
        } else {
            s = run_conv(ctx, &r->gff_1_slice[d], LR_ACT_NONE, work, h, w, tmp);
            if (s == LR_OK)
                add_into(acc, tmp, g0_plane);
        }
    }
    if (s == LR_OK)
        s = run_conv(ctx, &r->gff_2, LR_ACT_NONE, acc, h, w, tmp);
    if (s == LR_OK)
        s = run_conv(ctx, &r->f_m1, LR_ACT_NONE, in, h, w, acc);
    if (s == LR_OK) {
        add_into(tmp, acc, g0_plane); /* global residual: FDF = GFF_2 + F_m1 */
        s = run_conv(ctx, &r->upn1, LR_ACT_RELU, tmp, h, w, work);
    }
    if (s == LR_OK)
        s = run_conv(ctx, &r->upn2, LR_ACT_RELU, work, h, w, acc);
    if (s == LR_OK)
        s = run_conv(ctx, &r->upn3, LR_ACT_NONE, acc, h, w, work);
    if (s == LR_OK) {
        rdn_conv phases = {r->sr_w, r->sr_b, (int)s2c, (int)s2c, 3};
        s = run_conv(ctx, &phases, LR_ACT_NONE, work, h, w, tmp);
    }
    if (s == LR_OK)
        s = lr_pixel_shuffle(ctx, tmp, 3, h, w, r->scale, out);
    return s;
}

static void rdn_free(rdn *r)
{
    if (!r)
        return;
    free(r->f);
    free(r->lff);
    free(r->gff_1_slice);
    free(r->gff_1_w);
    free(r->f_m1_w);
    free(r->sr_w);
    free(r->sr_b);
    free(r);
}

static void rdn_close(sr_net *net)
{
    if (!net)
        return;
    rdn_free(net->impl);
    free(net);
}

/* Looks up <layer>.weight [cout][cin][k][k] and <layer>.bias [cout]. */
static lr_status get_conv(lr_ctx *ctx, const lr_model *file, const char *layer, int cin, int cout, int k,
                          rdn_conv *cv)
{
    char name[64];
    int64_t wshape[4] = {cout, cin, k, k}, bshape[1] = {cout};
    lr_tensor t;
    snprintf(name, sizeof name, "%s.weight", layer);
    lr_status s = lr_model_get_f32(ctx, file, name, 4, wshape, &t);
    if (s != LR_OK)
        return s;
    cv->w = t.data;
    snprintf(name, sizeof name, "%s.bias", layer);
    if ((s = lr_model_get_f32(ctx, file, name, 1, bshape, &t)) != LR_OK)
        return s;
    cv->b = t.data;
    cv->cin = cin, cv->cout = cout, cv->k = k;
    return LR_OK;
}

/* The SR conv on the nearest-upsampled UPN3 output as a conv at low resolution whose output
 * channel co * s^2 + dy * s + dx is phase (dy, dx) of output channel co (see the top). */
static lr_status fold_sr(lr_ctx *ctx, rdn *r, double value_range)
{
    int s = r->scale, n = 3 * s * s, cin = r->sr.cin;
    r->sr_w = calloc((size_t)n * cin * 9, sizeof(float));
    r->sr_b = malloc((size_t)n * sizeof(float));
    if (!r->sr_w || !r->sr_b)
        return lr_fail(ctx, LR_ERR_NOMEM, "esrgan-slim: out of memory");
    for (int co = 0; co < 3; co++)
        for (int dy = 0; dy < s; dy++)
            for (int dx = 0; dx < s; dx++) {
                int o = (co * s + dy) * s + dx;
                r->sr_b[o] = (float)(r->sr.b[co] / value_range);
                for (int ci = 0; ci < cin; ci++)
                    for (int ky = 0; ky < 3; ky++)
                        for (int kx = 0; kx < 3; kx++) {
                            /* low-resolution offsets -1..1 of this tap, as kernel indices 0..2 */
                            int ey = (dy + ky - 1 + s) / s, ex = (dx + kx - 1 + s) / s;
                            double v = r->sr.w[((co * cin + ci) * 3 + ky) * 3 + kx] / value_range;
                            r->sr_w[((o * cin + ci) * 3 + ey) * 3 + ex] += (float)v;
                        }
            }
    return LR_OK;
}

lr_status rdn_net_open(lr_ctx *ctx, const lr_model *file, sr_net **out)
{
    *out = NULL;
    lr_status s = lr_model_expect_arch(ctx, file, "esrgan-slim");
    if (s != LR_OK)
        return s;
    const char *path = lr_model_path(file);
    rdn *r = calloc(1, sizeof *r);
    sr_net *net = calloc(1, sizeof *net);
    if (!r || !net) {
        s = lr_fail(ctx, LR_ERR_NOMEM, "esrgan-slim: out of memory");
        goto fail;
    }
    double value_range;
    if ((s = lr_model_meta_int_in(ctx, file, "scale", false, 0, 1, 8, &r->scale)) != LR_OK ||
        (s = lr_model_meta_int_in(ctx, file, "D", false, 0, 1, RDN_MAX_BLOCKS, &r->D)) != LR_OK ||
        (s = lr_model_meta_int_in(ctx, file, "C", false, 0, 1, RDN_MAX_BLOCKS, &r->C)) != LR_OK ||
        (s = lr_model_meta_int_in(ctx, file, "G", false, 0, 1, 1024, &r->G)) != LR_OK ||
        (s = lr_model_meta_int_in(ctx, file, "G0", false, 0, 1, 1024, &r->G0)) != LR_OK ||
        (s = lr_model_meta_float(ctx, file, "value_range", true, 255.0, &value_range)) != LR_OK)
        goto fail;
    if (!(value_range > 0 && value_range < 1e6)) {
        s = lr_fail(ctx, LR_ERR_MODEL, "%s: esrgan-slim value_range %g is not positive", path, value_range);
        goto fail;
    }
    const char *upscaling = lr_model_meta(file, "upscaling");
    if (upscaling && strcmp(upscaling, "ups") != 0) {
        s = lr_fail(ctx, LR_ERR_MODEL, "%s: esrgan-slim upscaling '%s' is not supported (only 'ups')", path,
                    upscaling);
        goto fail;
    }
    int D = r->D, C = r->C, G = r->G, G0 = r->G0, s2c = 3 * r->scale * r->scale;
    r->f = calloc((size_t)D * C, sizeof *r->f);
    r->lff = calloc((size_t)D, sizeof *r->lff);
    if (!r->f || !r->lff) {
        s = lr_fail(ctx, LR_ERR_NOMEM, "esrgan-slim: out of memory");
        goto fail;
    }
    if ((s = get_conv(ctx, file, "F_m1", 3, G0, 3, &r->f_m1)) != LR_OK ||
        (s = get_conv(ctx, file, "F_0", G0, G0, 3, &r->f_0)) != LR_OK)
        goto fail;
    for (int d = 1; d <= D; d++) {
        char layer[32];
        for (int c = 1; c <= C; c++) {
            snprintf(layer, sizeof layer, "F_%d_%d", d, c);
            if ((s = get_conv(ctx, file, layer, G0 + (c - 1) * G, G, 3, &r->f[(d - 1) * C + c - 1])) != LR_OK)
                goto fail;
        }
        snprintf(layer, sizeof layer, "LFF_%d", d);
        if ((s = get_conv(ctx, file, layer, G0 + C * G, G0, 1, &r->lff[d - 1])) != LR_OK)
            goto fail;
    }
    if ((s = get_conv(ctx, file, "GFF_1", D * G0, G0, 1, &r->gff_1)) != LR_OK ||
        (s = get_conv(ctx, file, "GFF_2", G0, G0, 3, &r->gff_2)) != LR_OK ||
        (s = get_conv(ctx, file, "UPN1", G0, RDN_UPN1, 5, &r->upn1)) != LR_OK ||
        (s = get_conv(ctx, file, "UPN2", RDN_UPN1, RDN_UPN2, 3, &r->upn2)) != LR_OK ||
        (s = get_conv(ctx, file, "UPN3", RDN_UPN2, s2c, 3, &r->upn3)) != LR_OK ||
        (s = get_conv(ctx, file, "SR", s2c, 3, 3, &r->sr)) != LR_OK)
        goto fail;
    size_t expected = 2 * (size_t)(D * C + D + 8);
    if (lr_model_tensor_count(file) != expected) {
        s = lr_fail(ctx, LR_ERR_MODEL, "%s: esrgan-slim with D=%d C=%d has %zu tensors, the file %zu", path, D,
                    C, expected, lr_model_tensor_count(file));
        goto fail;
    }

    /* The network sees 255 * x: scale F_m1's weights (its bias is unaffected). */
    size_t n_fm1 = (size_t)G0 * 3 * 9;
    if (!(r->f_m1_w = malloc(n_fm1 * sizeof(float)))) {
        s = lr_fail(ctx, LR_ERR_NOMEM, "esrgan-slim: out of memory");
        goto fail;
    }
    for (size_t i = 0; i < n_fm1; i++)
        r->f_m1_w[i] = (float)(r->f_m1.w[i] * value_range);
    r->f_m1.w = r->f_m1_w;
    if ((s = fold_sr(ctx, r, value_range)) != LR_OK)
        goto fail;
    /* GFF_1 [G0][D*G0] split by input block, so each LRL_d is used as soon as it exists. */
    r->gff_1_slice = calloc((size_t)D, sizeof *r->gff_1_slice);
    r->gff_1_w = malloc((size_t)D * G0 * G0 * sizeof(float));
    if (!r->gff_1_slice || !r->gff_1_w) {
        s = lr_fail(ctx, LR_ERR_NOMEM, "esrgan-slim: out of memory");
        goto fail;
    }
    for (int d = 0; d < D; d++) {
        float *wd = r->gff_1_w + (size_t)d * G0 * G0;
        for (int o = 0; o < G0; o++)
            memcpy(wd + (size_t)o * G0, r->gff_1.w + ((size_t)o * D + d) * G0, (size_t)G0 * sizeof(float));
        r->gff_1_slice[d] = (rdn_conv){wd, d == 0 ? r->gff_1.b : NULL, G0, G0, 1};
    }

    snprintf(r->name, sizeof r->name, "esrgan-slim-x%d", r->scale);
    net->arch = "esrgan-slim";
    net->name = r->name;
    net->scale = r->scale;
    net->channels = 3;
    /* Receptive-field radius in input pixels: 1 for each 3x3 conv on the longest path (F_m1,
     * F_0, the D*C F_d_c, GFF_2, UPN2, UPN3), 2 for UPN1, 1 for SR at low resolution. */
    net->context = 1 + 1 + D * C + 1 + 2 + 1 + 1 + 1;
    net->forward = rdn_forward;
    net->close = rdn_close;
    net->impl = r;
    *out = net;
    return LR_OK;
fail:
    rdn_free(r);
    free(net);
    return s;
}
