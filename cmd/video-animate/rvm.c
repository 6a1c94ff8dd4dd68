/* Robust Video Matting, MobileNetV3 variant: the forward pass rvm.h defines, written from the
 * TF.js graph (model.json) of the authors' export. */
#include "rvm.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "longrange/conv.h"
#include "longrange/parallel.h"
#include "longrange/resize.h"

#define N_BLOCKS 15
#define N_LEVELS 5 /* 1, 1/2, 1/4, 1/8, 1/16 of the downsampled size */
#define MAX_SE_CH 960
#define GF_EPS 1e-5f

/* MobileNetV3-Large's inverted residual blocks (the graph's kernel, expansion, output, SE
 * squeeze width, activation, stride and dilation per block). */
typedef struct {
    int k, exp, out, se, hswish, stride, dil;
} block_cfg;

static const block_cfg BLOCKS[N_BLOCKS] = {
    {3, 16, 16, 0, 0, 1, 1},     {3, 64, 24, 0, 0, 2, 1},     {3, 72, 24, 0, 0, 1, 1},
    {5, 72, 40, 24, 0, 2, 1},    {5, 120, 40, 32, 0, 1, 1},   {5, 120, 40, 32, 0, 1, 1},
    {3, 240, 80, 0, 1, 2, 1},    {3, 200, 80, 0, 1, 1, 1},    {3, 184, 80, 0, 1, 1, 1},
    {3, 184, 80, 0, 1, 1, 1},    {3, 480, 112, 120, 1, 1, 1}, {3, 672, 112, 168, 1, 1, 1},
    {5, 672, 160, 168, 1, 1, 2}, {5, 960, 160, 240, 1, 1, 2}, {5, 960, 160, 240, 1, 1, 2},
};

/* Decoder widths: up-block k (to 1/8, 1/4, 1/2) output channels, skip feature channels. */
static const int UP_OUT[3] = {80, 40, 32};
static const int SKIP_CH[3] = {40, 24, 16};
static const int STATE_CH[4] = {16, 20, 40, 64}; /* r1..r4 */

typedef struct {
    const float *w, *b; /* OIHW weight; bias or NULL */
    int cout, cin, k;   /* cin: all input channels (depthwise: = cout) */
} conv_w;

typedef struct {
    int in;
    conv_w expand; /* w NULL in block 0 */
    conv_w dw;
    const float *bn_scale, *bn_offset; /* dilated blocks: BatchNorm after the bias-free conv */
    conv_w se1, se2;
    conv_w project;
} block_w;

struct rvm_net {
    const float *mean, *inv_std;
    conv_w stem, last;
    block_w blocks[N_BLOCKS];
    conv_w aspp, aspp_gate;
    conv_w up[3];                /* up-blocks to 1/8, 1/4, 1/2 */
    conv_w gru_rz[4], gru_c[4];  /* index = state - 1: r1 (1/2) .. r4 (bottleneck) */
    conv_w out1, out2, proj;
};

/* One output row or column of a bilinear resize: its two source taps and the weight of hi. */
typedef struct tap {
    int lo, hi;
    double frac;
} tap;

struct rvm_state {
    int h, w, hs, ws;
    bool refine;                /* ratio != 1: resize and guided filter */
    int lh[N_LEVELS], lw[N_LEVELS];
    float *r[4];
    float *x;                   /* downsampled src [3][hs][ws] */
    float *pool[3];             /* src average-pooled to levels 1..3 */
    float *feat[3];             /* f1..f3 */
    float *buf[4];              /* work buffers of buf_len floats */
    size_t buf_len;
    tap *xtaps, *ytaps;         /* refiner: the w columns' and h rows' resize taps */
    float *mem;
};

/* ---- loading ---------------------------------------------------------------------------- */

#define NAME_LEN 384 /* tensor names are under 160 characters */

/* Formats a tensor name (vsnprintf: names are far shorter than NAME_LEN). */
static __attribute__((format(printf, 2, 3))) void name_fmt(char *dst, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, NAME_LEN, fmt, ap);
    va_end(ap);
}

static const char *sfx(char *b, int i)
{
    if (i == 0)
        b[0] = '\0';
    else
        snprintf(b, 16, "_%d", i);
    return b;
}

static lr_status get_vec(lr_ctx *ctx, const lr_model *m, const char *name, int n,
                         const float **out)
{
    int64_t shape[1] = {n};
    lr_tensor t;
    lr_status s = lr_model_get_f32(ctx, m, name, 1, shape, &t);
    *out = s == LR_OK ? (const float *)t.data : NULL;
    return s;
}

/* Weight `wname` [cout][cin/groups][k][k] and, if bname, bias [cout]. */
static lr_status get_conv(lr_ctx *ctx, const lr_model *m, const char *wname, const char *bname,
                          int cout, int cin, int k, bool depthwise, conv_w *c)
{
    int64_t shape[4] = {cout, depthwise ? 1 : cin, k, k};
    lr_tensor t;
    lr_status s = lr_model_get_f32(ctx, m, wname, 4, shape, &t);
    if (s)
        return s;
    c->w = t.data;
    c->cout = cout;
    c->cin = cin;
    c->k = k;
    c->b = NULL;
    return bname ? get_vec(ctx, m, bname, cout, &c->b) : LR_OK;
}

/* A folded conv+BatchNorm: "<p>/<conv>/Conv2D_weights" and "..._bn_offset". */
static lr_status get_bn_conv(lr_ctx *ctx, const lr_model *m, const char *p, int cout, int cin,
                             int k, bool depthwise, conv_w *c)
{
    char wn[NAME_LEN], bn[NAME_LEN];
    const char *kind = depthwise ? "depthwise" : "Conv2D";
    name_fmt(wn, "%s/%s_weights", p, kind);
    name_fmt(bn, "%s/%s_bn_offset", p, kind);
    return get_conv(ctx, m, wn, bn, cout, cin, k, depthwise, c);
}

/* A plain conv with bias: "<p>/Conv2D/ReadVariableOp" and "<p>/BiasAdd/ReadVariableOp". */
static lr_status get_plain_conv(lr_ctx *ctx, const lr_model *m, const char *p, int cout, int cin,
                                int k, bool bias, conv_w *c)
{
    char wn[NAME_LEN], bn[NAME_LEN];
    name_fmt(wn, "%s/Conv2D/ReadVariableOp", p);
    name_fmt(bn, "%s/BiasAdd/ReadVariableOp", p);
    return get_conv(ctx, m, wn, bias ? bn : NULL, cout, cin, k, false, c);
}

/* The encoder's names carry Keras' global layer counters: conv_bn_activation_<n> (3 per
 * block from block 1 on), conv2d_<n> (expand, 2 SE, project), squeeze_excitation_<n>. */
static lr_status load_encoder(lr_ctx *ctx, const lr_model *m, rvm_net *net)
{
    char p[NAME_LEN], a[16], b[16];
    lr_status s;
    if ((s = get_vec(ctx, m, "mobile_net_v3_encoder/Const", 3, &net->mean)) ||
        (s = get_vec(ctx, m, "ConstantFolding/mobile_net_v3_encoder/truediv_recip", 3,
                     &net->inv_std)) ||
        (s = get_bn_conv(ctx, m, "mobile_net_v3_encoder/conv_bn_activation/conv2d", 16, 3, 3,
                         false, &net->stem)))
        return s;
    int conv_n = 1, se_n = 0, in = 16;
    for (int i = 0; i < N_BLOCKS; i++) {
        const block_cfg *cfg = &BLOCKS[i];
        block_w *bw = &net->blocks[i];
        char blk[NAME_LEN];
        name_fmt(blk, "mobile_net_v3_encoder/inverted_residual%s/sequential%s",
                 sfx(a, i), sfx(b, i));
        int cba = i == 0 ? 1 : 3 * i;
        memset(bw, 0, sizeof *bw);
        bw->in = in;
        if (i > 0) {
            name_fmt(p, "%s/conv_bn_activation_%d/conv2d_%d", blk, cba++, conv_n++);
            if ((s = get_bn_conv(ctx, m, p, cfg->exp, in, 1, false, &bw->expand)))
                return s;
        }
        if (cfg->dil == 1) {
            name_fmt(p, "%s/conv_bn_activation_%d/depthwise_conv2d%s", blk, cba, sfx(a, i));
            s = get_bn_conv(ctx, m, p, cfg->exp, cfg->exp, cfg->k, true, &bw->dw);
        } else {
            char wn[NAME_LEN], sc[NAME_LEN], of[NAME_LEN];
            name_fmt(wn, "%s/conv_bn_activation_%d/depthwise_conv2d_%d/depthwise/ReadVariableOp",
                     blk, cba, i);
            name_fmt(sc, "%s/conv_bn_activation_%d/batch_normalization_%d/FusedBatchNormV3/Scaled",
                     blk, cba, cba);
            name_fmt(of, "%s/conv_bn_activation_%d/batch_normalization_%d/FusedBatchNormV3/Offset",
                     blk, cba, cba);
            if (!(s = get_conv(ctx, m, wn, NULL, cfg->exp, cfg->exp, cfg->k, true, &bw->dw)) &&
                !(s = get_vec(ctx, m, sc, cfg->exp, &bw->bn_scale)))
                s = get_vec(ctx, m, of, cfg->exp, &bw->bn_offset);
        }
        if (s)
            return s;
        cba++;
        if (cfg->se) {
            name_fmt(p, "%s/squeeze_excitation%s/conv2d_%d", blk, sfx(a, se_n), conv_n++);
            if ((s = get_plain_conv(ctx, m, p, cfg->se, cfg->exp, 1, true, &bw->se1)))
                return s;
            name_fmt(p, "%s/squeeze_excitation%s/conv2d_%d", blk, sfx(a, se_n), conv_n++);
            if ((s = get_plain_conv(ctx, m, p, cfg->exp, cfg->se, 1, true, &bw->se2)))
                return s;
            se_n++;
        }
        name_fmt(p, "%s/conv_bn_activation_%d/conv2d_%d", blk, cba, conv_n++);
        if ((s = get_bn_conv(ctx, m, p, cfg->out, cfg->exp, 1, false, &bw->project)))
            return s;
        in = cfg->out;
    }
    return get_bn_conv(ctx, m, "mobile_net_v3_encoder/conv_bn_activation_45/conv2d_46", 960, 160,
                       1, false, &net->last);
}

static lr_status load_decoder(lr_ctx *ctx, const lr_model *m, rvm_net *net)
{
    char p[NAME_LEN], a[16];
    lr_status s;
    if ((s = get_bn_conv(ctx, m, "lraspp/sequential_15/conv2d_47", 128, 960, 1, false,
                         &net->aspp)) ||
        (s = get_plain_conv(ctx, m, "lraspp/conv2d_48", 128, 960, 1, false, &net->aspp_gate)) ||
        (s = get_plain_conv(ctx, m, "recurrent_decoder/bottleneck_block/conv_gru/conv2d_49", 128,
                            128, 3, true, &net->gru_rz[3])) ||
        (s = get_plain_conv(ctx, m, "recurrent_decoder/bottleneck_block/conv_gru/conv2d_50", 64,
                            128, 3, true, &net->gru_c[3])))
        return s;
    int cin = 128;
    for (int k = 0; k < 3; k++) {
        int c = UP_OUT[k], half = c / 2, st = 2 - k; /* state index: r3, r2, r1 */
        name_fmt(p, "recurrent_decoder/upsampling_block%s/sequential_%d/conv2d_%d",
                 sfx(a, k), 16 + k, 51 + 3 * k);
        if ((s = get_bn_conv(ctx, m, p, c, cin + SKIP_CH[k] + 3, 3, false, &net->up[k])))
            return s;
        name_fmt(p, "recurrent_decoder/upsampling_block%s/conv_gru_%d/conv2d_%d",
                 sfx(a, k), k + 1, 52 + 3 * k);
        if ((s = get_plain_conv(ctx, m, p, c, c, 3, true, &net->gru_rz[st])))
            return s;
        name_fmt(p, "recurrent_decoder/upsampling_block%s/conv_gru_%d/conv2d_%d",
                 sfx(a, k), k + 1, 53 + 3 * k);
        if ((s = get_plain_conv(ctx, m, p, half, c, 3, true, &net->gru_c[st])))
            return s;
        cin = c;
    }
    if ((s = get_bn_conv(ctx, m, "recurrent_decoder/output_block/sequential_19/conv2d_60", 16, 35,
                         3, false, &net->out1)) ||
        (s = get_bn_conv(ctx, m, "recurrent_decoder/output_block/sequential_19/conv2d_61", 16, 16,
                         3, false, &net->out2)))
        return s;
    return get_plain_conv(ctx, m, "conv2d_62", 4, 16, 1, true, &net->proj);
}

lr_status rvm_load(lr_ctx *ctx, const lr_model *model, rvm_net **out)
{
    if (!out)
        return lr_fail(ctx, LR_ERR_ARG, "rvm_load: NULL output");
    *out = NULL;
    if (!model)
        return lr_fail(ctx, LR_ERR_ARG, "rvm_load: NULL model");
    lr_status s = lr_model_expect_arch(ctx, model, "rvm-mobilenetv3");
    if (s)
        return s;
    rvm_net *net = calloc(1, sizeof *net);
    if (!net)
        return lr_fail(ctx, LR_ERR_NOMEM, "rvm_load: out of memory");
    if ((s = load_encoder(ctx, model, net)) || (s = load_decoder(ctx, model, net))) {
        free(net);
        return s;
    }
    *out = net;
    return LR_OK;
}

void rvm_free(rvm_net *net) { free(net); }

/* Source row/column of output index i for a half-pixel resize in -> out, as tfjs computes it:
 * the two taps and the fraction (clamped to the border). */
static tap resize_tap(int i, int in, int out)
{
    double f = (double)in / out * (i + 0.5) - 0.5;
    tap t;
    t.lo = f > 0 ? (int)floor(f) : 0;
    t.hi = (int)ceil(f);
    t.hi = t.hi < in - 1 ? t.hi : in - 1;
    t.hi = t.hi > 0 ? t.hi : 0;
    t.frac = f - t.lo;
    return t;
}

/* ---- state ------------------------------------------------------------------------------ */

static size_t plane(const rvm_state *st, int level)
{
    return (size_t)st->lh[level] * st->lw[level];
}

/* The largest activation any step of the forward pass keeps in one work buffer. */
static size_t work_floats(const rvm_state *st)
{
    size_t need = 35 * plane(st, 0); /* output block concat */
    size_t up0 = (size_t)(2 * st->lh[1]) * (2 * st->lw[1]);
    if (32 * up0 > need)
        need = 32 * up0;
    int level = 1;
    for (int i = 0; i < N_BLOCKS; i++) {
        size_t e = (size_t)BLOCKS[i].exp * plane(st, level);
        if (e > need)
            need = e;
        level += BLOCKS[i].stride == 2;
    }
    if (960 * plane(st, 4) > need)
        need = 960 * plane(st, 4);
    int cin = 128;
    for (int k = 0; k < 3; k++) {
        int L = 3 - k;
        size_t up = (size_t)cin * (2 * st->lh[L + 1]) * (2 * st->lw[L + 1]);
        size_t cat = (size_t)(cin + SKIP_CH[k] + 3) * plane(st, L);
        if (up > need)
            need = up;
        if (cat > need)
            need = cat;
        cin = UP_OUT[k];
    }
    return need;
}

lr_status rvm_state_create(lr_ctx *ctx, const rvm_net *net, int h, int w, float ratio,
                           rvm_state **out)
{
    if (!out)
        return lr_fail(ctx, LR_ERR_ARG, "rvm_state_create: NULL output");
    *out = NULL;
    if (!net)
        return lr_fail(ctx, LR_ERR_ARG, "rvm_state_create: NULL net");
    if (h < 1 || w < 1)
        return lr_fail(ctx, LR_ERR_ARG, "rvm: frame size %dx%d must be at least 1x1", w, h);
    if (!(ratio > 0.0f && ratio <= 1.0f))
        return lr_fail(ctx, LR_ERR_ARG, "rvm: downsample ratio %g is not in (0, 1]", (double)ratio);
    /* TF: Cast(Cast(shape, float) * ratio, int32), float32 product, truncated. */
    float ph = (float)h * ratio, pw = (float)w * ratio;
    int hs = (int)ph, ws = (int)pw;
    bool refine = ratio != 1.0f;
    if (refine && (hs < 3 || ws < 3))
        return lr_fail(ctx, LR_ERR_ARG,
                       "rvm: %dx%d at ratio %g gives %dx%d; the refiner needs at least 3x3", w, h,
                       (double)ratio, ws, hs);
    rvm_state *st = calloc(1, sizeof *st);
    if (!st)
        return lr_fail(ctx, LR_ERR_NOMEM, "rvm: out of memory");
    st->h = h;
    st->w = w;
    st->hs = hs;
    st->ws = ws;
    st->refine = refine;
    st->lh[0] = hs;
    st->lw[0] = ws;
    for (int l = 1; l < N_LEVELS; l++) {
        st->lh[l] = (st->lh[l - 1] + 1) / 2;
        st->lw[l] = (st->lw[l - 1] + 1) / 2;
    }
    st->buf_len = work_floats(st);
    size_t total = 4 * st->buf_len;
    for (int k = 0; k < 4; k++)
        total += (size_t)STATE_CH[k] * plane(st, k + 1);
    for (int l = 1; l <= 3; l++)
        total += 3 * plane(st, l) + (size_t)SKIP_CH[3 - l] * plane(st, l);
    if (refine)
        total += 3 * plane(st, 0);
    if (total > SIZE_MAX / sizeof(float) || !(st->mem = malloc(total * sizeof(float))) ||
        (refine && !(st->xtaps = malloc(((size_t)w + h) * sizeof *st->xtaps)))) {
        free(st->mem);
        free(st);
        return lr_fail(ctx, LR_ERR_NOMEM, "rvm: cannot allocate %zu floats for %dx%d frames",
                       total, w, h);
    }
    float *p = st->mem;
    for (int k = 0; k < 4; k++) {
        st->buf[k] = p;
        p += st->buf_len;
    }
    for (int k = 0; k < 4; k++) {
        st->r[k] = p;
        p += (size_t)STATE_CH[k] * plane(st, k + 1);
    }
    for (int l = 1; l <= 3; l++) {
        st->pool[l - 1] = p;
        p += 3 * plane(st, l);
        st->feat[l - 1] = p;
        p += (size_t)SKIP_CH[3 - l] * plane(st, l);
    }
    if (refine) {
        st->x = p;
        st->ytaps = st->xtaps + w;
        for (int x = 0; x < w; x++)
            st->xtaps[x] = resize_tap(x, ws - 2, w);
        for (int y = 0; y < h; y++)
            st->ytaps[y] = resize_tap(y, hs - 2, h);
    }
    rvm_state_reset(st);
    *out = st;
    return LR_OK;
}

void rvm_state_reset(rvm_state *st)
{
    for (int k = 0; k < 4; k++)
        memset(st->r[k], 0, (size_t)STATE_CH[k] * plane(st, k + 1) * sizeof(float));
}

void rvm_state_size(const rvm_state *st, int *hs, int *ws)
{
    *hs = st->hs;
    *ws = st->ws;
}

const float *rvm_state_get(const rvm_state *st, int k, int *c, int *h, int *w)
{
    if (k < 1 || k > 4)
        return NULL;
    *c = STATE_CH[k - 1];
    *h = st->lh[k];
    *w = st->lw[k];
    return st->r[k - 1];
}

void rvm_state_free(rvm_state *st)
{
    if (!st)
        return;
    free(st->mem);
    free(st->xtaps);
    free(st);
}

/* ---- kernels ---------------------------------------------------------------------------- */

static lr_status conv(lr_ctx *ctx, const conv_w *c, const float *in, int h, int w, int stride,
                      int pad, int dil, bool depthwise, lr_act act, float *out)
{
    lr_conv2d_desc d = lr_conv2d_default(c->k, c->k);
    d.stride_h = d.stride_w = stride;
    d.pad_top = d.pad_left = d.pad_bottom = d.pad_right = pad;
    d.dil_h = d.dil_w = dil;
    d.groups = depthwise ? c->cin : 1;
    d.act = act;
    return lr_conv2d(ctx, &d, in, c->cin, h, w, c->w, c->b, c->cout, out);
}

/* TF's hard-swish as the graph writes it: (v * (1/6)) * relu6(v + 3). */
static inline float hswish(float v)
{
    return (v * (1.0f / 6.0f)) * fminf(fmaxf(v + 3.0f, 0.0f), 6.0f);
}

static void channel_means(const float *x, int c, size_t n, float *mean)
{
    for (int i = 0; i < c; i++) {
        double s = 0;
        for (size_t j = 0; j < n; j++)
            s += x[(size_t)i * n + j];
        mean[i] = (float)(s / (double)n);
    }
}

/* out[o] = act(b[o] + sum_i w[o][i] * v[i]) for a 1x1 conv on a 1x1 map. */
static void dense(const conv_w *c, const float *v, float *out)
{
    for (int o = 0; o < c->cout; o++) {
        double s = c->b ? c->b[o] : 0.0;
        for (int i = 0; i < c->cin; i++)
            s += (double)c->w[(size_t)o * c->cin + i] * v[i];
        out[o] = (float)s;
    }
}

static void squeeze_excite(const block_w *b, float *x, size_t n)
{
    float mean[MAX_SE_CH] = {0}, mid[MAX_SE_CH] = {0}, gate[MAX_SE_CH] = {0};
    int c = b->se2.cout;
    channel_means(x, c, n, mean);
    dense(&b->se1, mean, mid);
    for (int i = 0; i < b->se1.cout; i++)
        mid[i] = fmaxf(mid[i], 0.0f);
    dense(&b->se2, mid, gate);
    for (int i = 0; i < c; i++) {
        float g = (1.0f / 6.0f) * fminf(fmaxf(gate[i] + 3.0f, 0.0f), 6.0f);
        for (size_t j = 0; j < n; j++)
            x[(size_t)i * n + j] = g * x[(size_t)i * n + j];
    }
}

/* 2x2 stride-2 average pool, TF SAME: ceil size, partial windows average their valid pixels. */
static void avg_pool2(const float *in, int c, int h, int w, float *out)
{
    int ho = (h + 1) / 2, wo = (w + 1) / 2;
    for (int k = 0; k < c; k++)
        for (int y = 0; y < ho; y++)
            for (int x = 0; x < wo; x++) {
                float s = 0.0f;
                int n = 0;
                for (int dy = 0; dy < 2 && 2 * y + dy < h; dy++)
                    for (int dx = 0; dx < 2 && 2 * x + dx < w; dx++, n++)
                        s += in[((size_t)k * h + 2 * y + dy) * w + 2 * x + dx];
                out[((size_t)k * ho + y) * wo + x] = s / (float)n;
            }
}

static lr_status resize(lr_ctx *ctx, const float *in, int c, int h, int w, float *out, int ho,
                        int wo)
{
    lr_resize_desc d = {LR_RESIZE_BILINEAR, 0.0, false};
    return lr_resize(ctx, &d, in, c, h, w, out, ho, wo);
}

/* dst[c][y][x] = src[c][y][x] for y < h, x < w, from a plane of sh x sw. */
static void crop(const float *src, int c, int sh, int sw, float *dst, int h, int w)
{
    for (int k = 0; k < c; k++)
        for (int y = 0; y < h; y++)
            memcpy(dst + ((size_t)k * h + y) * w, src + ((size_t)k * sh + y) * sw,
                   (size_t)w * sizeof(float));
}

#define GRU_CHUNK 4096

/* tanh through expf (glibc's tanhf goes through the slower expm1f): absolute error below
 * 1e-7, which is all the GRU's convex combination needs. */
static inline float fast_tanh(float v)
{
    float e = expf(-2.0f * fabsf(v)), t = (1.0f - e) / (1.0f + e);
    return v < 0 ? -t : t;
}

typedef struct {
    float *v, *hst;
    const float *gates; /* tanh input [n], then z [n] */
    size_t n;
} gru_job;

/* h = (1 - z) * h + z * tanh(c) over one chunk of the state. */
static void gru_update_task(void *arg, size_t task, int thread)
{
    const gru_job *j = arg;
    size_t i0 = task * GRU_CHUNK, i1 = i0 + GRU_CHUNK < j->n ? i0 + GRU_CHUNK : j->n;
    for (size_t i = i0; i < i1; i++) {
        float z = j->gates[j->n + i], c = fast_tanh(j->gates[i]);
        float hn = (1.0f - z) * j->hst[i] + z * c;
        j->hst[i] = hn;
        j->v[i] = hn;
    }
}

/* out = the top-left h x w of in [c][hi][wi] upsampled x2 (half-pixel bilinear); tmp holds the
 * full x2 map when it is larger than h x w (odd sizes). */
static lr_status upsample_crop(lr_ctx *ctx, const float *in, int c, int hi, int wi, float *tmp,
                               float *out, int h, int w)
{
    if (2 * hi == h && 2 * wi == w)
        return resize(ctx, in, c, hi, wi, out, h, w);
    lr_status s = resize(ctx, in, c, hi, wi, tmp, 2 * hi, 2 * wi);
    if (!s)
        crop(tmp, c, 2 * hi, 2 * wi, out, h, w);
    return s;
}

/* ConvGRU on v [C][h][w] with state hs (both updated to the new state); cat and tmp hold
 * 2C planes. */
static lr_status conv_gru(lr_ctx *ctx, const conv_w *rz, const conv_w *cc, float *v, float *hst,
                          int C, int h, int w, float *cat, float *tmp)
{
    size_t n = (size_t)C * h * w;
    memcpy(cat, v, n * sizeof(float));
    memcpy(cat + n, hst, n * sizeof(float));
    lr_status s = conv(ctx, rz, cat, h, w, 1, 1, 1, false, LR_ACT_SIGMOID, tmp);
    if (s)
        return s;
    for (size_t i = 0; i < n; i++)
        cat[n + i] = tmp[i] * hst[i];
    if ((s = conv(ctx, cc, cat, h, w, 1, 1, 1, false, LR_ACT_NONE, tmp)))
        return s;
    gru_job j = {v, hst, tmp, n};
    lr_parallel_for(ctx, (n + GRU_CHUNK - 1) / GRU_CHUNK, gru_update_task, &j);
    return LR_OK;
}

/* ---- forward ---------------------------------------------------------------------------- */

static lr_status encoder(lr_ctx *ctx, const rvm_net *net, rvm_state *st, const float *x,
                         float **f4)
{
    float **B = st->buf;
    size_t n0 = plane(st, 0);
    for (int c = 0; c < 3; c++)
        for (size_t i = 0; i < n0; i++)
            B[0][c * n0 + i] = (x[c * n0 + i] - net->mean[c]) * net->inv_std[c];
    lr_status s = conv(ctx, &net->stem, B[0], st->lh[0], st->lw[0], 2, 1, 1, false,
                       LR_ACT_HARDSWISH, B[1]);
    if (s)
        return s;
    float *cur = B[1], *other = B[0];
    int level = 1;
    for (int i = 0; i < N_BLOCKS; i++) {
        const block_cfg *cfg = &BLOCKS[i];
        const block_w *bw = &net->blocks[i];
        int h = st->lh[level], w = st->lw[level];
        lr_act act = cfg->hswish ? LR_ACT_HARDSWISH : LR_ACT_RELU;
        const float *e = cur;
        if (bw->expand.w) {
            if ((s = conv(ctx, &bw->expand, cur, h, w, 1, 0, 1, false, act, B[2])))
                return s;
            e = B[2];
        }
        int pad = cfg->dil * (cfg->k / 2);
        if ((s = conv(ctx, &bw->dw, e, h, w, cfg->stride, pad, cfg->dil, true,
                      bw->bn_scale ? LR_ACT_NONE : act, B[3])))
            return s;
        level += cfg->stride == 2;
        size_t n = plane(st, level);
        if (bw->bn_scale) /* the graph's separate BatchNorm, then hard-swish */
            for (int c = 0; c < cfg->exp; c++)
                for (size_t j = 0; j < n; j++) {
                    float *v = &B[3][(size_t)c * n + j];
                    *v = hswish(*v * bw->bn_scale[c] + bw->bn_offset[c]);
                }
        if (cfg->se)
            squeeze_excite(bw, B[3], n);
        if ((s = conv(ctx, &bw->project, B[3], st->lh[level], st->lw[level], 1, 0, 1, false,
                      LR_ACT_NONE, other)))
            return s;
        if (cfg->stride == 1 && bw->in == cfg->out)
            for (size_t j = 0; j < (size_t)cfg->out * n; j++)
                other[j] += cur[j];
        float *t = cur;
        cur = other;
        other = t;
        int fi = i == 0 ? 0 : i == 2 ? 1 : i == 5 ? 2 : -1;
        if (fi >= 0)
            memcpy(st->feat[fi], cur, (size_t)cfg->out * n * sizeof(float));
    }
    if ((s = conv(ctx, &net->last, cur, st->lh[4], st->lw[4], 1, 0, 1, false, LR_ACT_HARDSWISH,
                  other)))
        return s;
    *f4 = other;
    return LR_OK;
}

/* LR-ASPP on f4 (960 channels at 1/16) into out (128 channels). */
static lr_status lraspp(lr_ctx *ctx, const rvm_net *net, const rvm_state *st, const float *f4,
                        float *out)
{
    size_t n = plane(st, 4);
    float mean[960], gate[128];
    channel_means(f4, 960, n, mean);
    dense(&net->aspp_gate, mean, gate);
    lr_status s = conv(ctx, &net->aspp, f4, st->lh[4], st->lw[4], 1, 0, 1, false, LR_ACT_RELU, out);
    if (s)
        return s;
    for (int c = 0; c < 128; c++) {
        float g = 1.0f / (1.0f + expf(-gate[c]));
        for (size_t j = 0; j < n; j++)
            out[c * n + j] *= g;
    }
    return LR_OK;
}

/* The refiner follows tfjs's CPU kernels operation by operation, since A = cov / var divides
 * by values near eps and magnifies any rounding difference: a depthwise conv accumulates into
 * float32 (acc = fl(acc + x * w), the product in double), a mean is the double sum of x / n
 * rounded once, a bilinear resize interpolates in double. */

/* 3-tap box mean along y then x without padding (the graph's two VALID depthwise convs with
 * taps of fl(1/3)): in [c][h][w] -> out [c][h-2][w-2]; tmp holds c*(h-2)*w. */
static void box3(const float *in, int c, int h, int w, float *tmp, float *out)
{
    const double third = (float)(1.0 / 3.0);
    int ho = h - 2, wo = w - 2;
    for (int k = 0; k < c; k++) {
        const float *p = in + (size_t)k * h * w;
        float *t = tmp + (size_t)k * ho * w;
        for (int y = 0; y < ho; y++)
            for (int x = 0; x < w; x++) {
                float acc = 0.0f;
                for (int d = 0; d < 3; d++)
                    acc = (float)((double)acc + (double)p[(size_t)(y + d) * w + x] * third);
                t[(size_t)y * w + x] = acc;
            }
        float *o = out + (size_t)k * ho * wo;
        for (int y = 0; y < ho; y++)
            for (int x = 0; x < wo; x++) {
                float acc = 0.0f;
                for (int d = 0; d < 3; d++)
                    acc = (float)((double)acc + (double)t[(size_t)y * w + x + d] * third);
                o[(size_t)y * wo + x] = acc;
            }
    }
}

/* Mean of the three colour planes at pixel i, as tfjs's Mean: sum of fl(v / 3). */
static float grey(const float *x, size_t n, size_t i)
{
    return (float)((double)(x[i] / 3.0f) + (double)(x[n + i] / 3.0f) +
                   (double)(x[2 * n + i] / 3.0f));
}

/* Fast guided filter, low-resolution part: for channel `task` of X = [x, grey(x)] and Y = p,
 * A and B (rvm.h) at (hs-2) x (ws-2), into the refiner's planes of st->buf[3]. */
typedef struct {
    rvm_state *st;
    const float *x, *p, *src;
    float *fgr, *pha;
} refine_job;

static float *coef_plane(const rvm_state *st, int which, int c)
{
    size_t hb = (size_t)st->hs - 2, nb = hb * (st->ws - 2);
    return st->buf[3] + 4 * hb * st->ws + ((size_t)which * 4 + c) * nb;
}

static void coef_task(void *arg, size_t task, int thread)
{
    const refine_job *j = arg;
    rvm_state *st = j->st;
    int c = (int)task, hs = st->hs, ws = st->ws, hb = hs - 2;
    size_t n = plane(st, 0), nb = (size_t)hb * (ws - 2);
    float *X = st->buf[2] + c * n, *prod = st->buf[2] + (4 + c) * n;
    float *tmp = st->buf[3] + (size_t)c * hb * ws;
    float *mX = coef_plane(st, 0, c), *mY = coef_plane(st, 1, c);
    float *mXY = coef_plane(st, 2, c), *mXX = coef_plane(st, 3, c);
    const float *Y = j->p + c * n;
    if (c < 3)
        memcpy(X, j->x + c * n, n * sizeof(float));
    else
        for (size_t i = 0; i < n; i++)
            X[i] = grey(j->x, n, i);
    box3(X, 1, hs, ws, tmp, mX);
    box3(Y, 1, hs, ws, tmp, mY);
    for (size_t i = 0; i < n; i++)
        prod[i] = X[i] * Y[i];
    box3(prod, 1, hs, ws, tmp, mXY);
    for (size_t i = 0; i < n; i++)
        prod[i] = X[i] * X[i];
    box3(prod, 1, hs, ws, tmp, mXX);
    for (size_t i = 0; i < nb; i++) {
        float cov = mXY[i] - mX[i] * mY[i];
        float var = mXX[i] + (GF_EPS - mX[i] * mX[i]);
        float A = cov / var;
        mXY[i] = A;                 /* A */
        mXX[i] = mY[i] - A * mX[i]; /* B */
    }
}

static inline float clamp01(float v) { return fmaxf(fminf(v, 1.0f), 0.0f); }

/* The bilinear value of a (hs-2) x (ws-2) coefficient plane at output (y, x), as tfjs. */
static inline float upsample(const float *a, int wb, const tap *yt, const tap *xt)
{
    const float *r0 = a + (size_t)yt->lo * wb, *r1 = a + (size_t)yt->hi * wb;
    double tl = r0[xt->lo], tr = r0[xt->hi], bl = r1[xt->lo], br = r1[xt->hi];
    double top = tl + (tr - tl) * xt->frac, bottom = bl + (br - bl) * xt->frac;
    return (float)(top + (bottom - top) * yt->frac);
}

#define FINISH_ROWS 8

/* Rows [task * FINISH_ROWS, ...) of fgr and pha: p added to src and clamped, through the
 * guided filter's upsampled A and B when refining. */
static void finish_task(void *arg, size_t task, int thread)
{
    const refine_job *j = arg;
    const rvm_state *st = j->st;
    int w = st->w, y0 = (int)task * FINISH_ROWS, y1 = y0 + FINISH_ROWS;
    size_t n = (size_t)st->h * w;
    y1 = y1 < st->h ? y1 : st->h;
    for (int y = y0; y < y1; y++) {
        size_t row = (size_t)y * w;
        if (!st->refine) {
            for (int c = 0; c < 3; c++)
                for (int x = 0; x < w; x++) {
                    size_t i = c * n + row + x;
                    j->fgr[i] = clamp01(j->p[i] + j->src[i]);
                }
            for (int x = 0; x < w; x++)
                j->pha[row + x] = clamp01(j->p[3 * n + row + x]);
            continue;
        }
        const tap *yt = &st->ytaps[y];
        int wb = st->ws - 2;
        for (int c = 0; c < 4; c++) {
            const float *A = coef_plane(st, 2, c), *B = coef_plane(st, 3, c);
            for (int x = 0; x < w; x++) {
                const tap *xt = &st->xtaps[x];
                float a = upsample(A, wb, yt, xt), b = upsample(B, wb, yt, xt);
                if (c < 3) {
                    float v = j->src[c * n + row + x];
                    j->fgr[c * n + row + x] = clamp01((a * v + b) + v);
                } else {
                    j->pha[row + x] = clamp01(a * grey(j->src, n, row + x) + b);
                }
            }
        }
    }
}

lr_status rvm_step(lr_ctx *ctx, rvm_net *net, rvm_state *st, const float *src, float *fgr,
                   float *pha)
{
    if (!net || !st || !src || !fgr || !pha)
        return lr_fail(ctx, LR_ERR_ARG, "rvm_step: NULL argument");
    lr_status s;
    const float *x = src;
    if (st->refine) {
        if ((s = resize(ctx, src, 3, st->h, st->w, st->x, st->hs, st->ws)))
            return s;
        x = st->x;
    }
    avg_pool2(x, 3, st->lh[0], st->lw[0], st->pool[0]);
    avg_pool2(st->pool[0], 3, st->lh[1], st->lw[1], st->pool[1]);
    avg_pool2(st->pool[1], 3, st->lh[2], st->lw[2], st->pool[2]);

    float *f4;
    if ((s = encoder(ctx, net, st, x, &f4)))
        return s;
    float **B = st->buf;
    float *y = f4 == B[0] ? B[1] : B[0]; /* the buffer f4 is not in */
    if ((s = lraspp(ctx, net, st, f4, y)))
        return s;
    if (y != B[0]) {
        memcpy(B[0], y, 128 * plane(st, 4) * sizeof(float));
        y = B[0];
    }
    /* bottleneck: GRU on the second 64 channels */
    size_t n4 = plane(st, 4);
    if ((s = conv_gru(ctx, &net->gru_rz[3], &net->gru_c[3], y + 64 * n4, st->r[3], 64, st->lh[4],
                      st->lw[4], B[1], B[2])))
        return s;
    int cin = 128;
    for (int k = 0; k < 3; k++) {
        int L = 3 - k, h = st->lh[L], w = st->lw[L];
        size_t n = plane(st, L);
        if ((s = upsample_crop(ctx, B[0], cin, st->lh[L + 1], st->lw[L + 1], B[1], B[2], h, w)))
            return s;
        memcpy(B[2] + (size_t)cin * n, st->feat[L - 1], (size_t)SKIP_CH[k] * n * sizeof(float));
        memcpy(B[2] + (size_t)(cin + SKIP_CH[k]) * n, st->pool[L - 1], 3 * n * sizeof(float));
        if ((s = conv(ctx, &net->up[k], B[2], h, w, 1, 1, 1, false, LR_ACT_RELU, B[0])))
            return s;
        int half = UP_OUT[k] / 2;
        if ((s = conv_gru(ctx, &net->gru_rz[L - 1], &net->gru_c[L - 1], B[0] + (size_t)half * n,
                          st->r[L - 1], half, h, w, B[1], B[2])))
            return s;
        cin = UP_OUT[k];
    }
    /* output block */
    int h0 = st->lh[0], w0 = st->lw[0];
    size_t n0 = plane(st, 0);
    if ((s = upsample_crop(ctx, B[0], 32, st->lh[1], st->lw[1], B[1], B[2], h0, w0)))
        return s;
    memcpy(B[2] + 32 * n0, x, 3 * n0 * sizeof(float));
    if ((s = conv(ctx, &net->out1, B[2], h0, w0, 1, 1, 1, false, LR_ACT_RELU, B[3])) ||
        (s = conv(ctx, &net->out2, B[3], h0, w0, 1, 1, 1, false, LR_ACT_RELU, B[0])) ||
        (s = conv(ctx, &net->proj, B[0], h0, w0, 1, 0, 1, false, LR_ACT_NONE, B[1])))
        return s;
    refine_job job = {st, x, B[1], src, fgr, pha};
    if (st->refine)
        lr_parallel_for(ctx, 4, coef_task, &job);
    lr_parallel_for(ctx, ((size_t)st->h + FINISH_ROWS - 1) / FINISH_ROWS, finish_task, &job);
    return LR_OK;
}
