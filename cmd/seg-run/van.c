/* VAN (Visual Attention Network, large kernel attention) backbone + mmseg Semantic FPN head:
 * arch "van-fpn", tensor names of the official VAN-Segmentation checkpoints ("backbone.*",
 * "neck.*", "decode_head.*"); tools/van_torch.py is the reference and writes the fixtures.
 *
 * Input [3][h][w] RGB 0..1 of any size, normalised with ImageNet mean/std. Four stages, each an
 * overlapping patch embedding (conv k7 s4 p3, then k3 s2 p1, BatchNorm folded), blocks
 *     x += ls1 * (proj_2(LKA(GELU(proj_1(n)))) + n),  n = BN1(x) (a per-channel affine),
 *     LKA(u) = u * conv1(conv_spatial(conv0(u))): depthwise 5x5 p2, depthwise 7x7 dilation 3
 *              p9, 1x1;
 *     x += ls2 * fc2(GELU(dwconv3x3(fc1(BN2(x))))) (BN2 folded into fc1),
 * and a LayerNorm over channels (eps from the metadata "layer_norm_eps", default 1e-5 as
 * nn.LayerNorm in the segmentation backbone). Widths, depths and MLP widths come from the
 * tensors. The output is the FPN's stride-4 logits (out_size: the first stage's map,
 * (h - 1) / 4 + 1 by (w - 1) / 4 + 1); seg-run brings them to the image (and --tile to each
 * window, as mmseg's encode_decode) by half-pixel bilinear resizing.
 * Precision FP32. GELU's erf: Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7; GELU within 5e-7
 * of erff's) on 4-float GCC vectors, or libm's erff with LR_CPU=ref (the reference the CLI test
 * compares with). Deterministic for any thread count. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fpn.h"
#include "longrange/conv.h"
#include "longrange/parallel.h"
#include "seg.h"

lr_status van_net_open(lr_ctx *ctx, const lr_model *file, seg_net **out);

enum { STAGES = 4, MAX_DEPTH = 64 };
#define VAN_BN_EPS 1e-5

typedef struct {
    const float *w, *b;
} van_conv;

typedef struct {
    const float *n1_scale, *n1_shift; /* BN1 as an affine */
    van_conv proj_1, conv0, conv_spatial, conv1, proj_2, fc1, dwconv, fc2; /* fc1: BN2 folded */
    const float *ls1, *ls2;
} van_block;

typedef struct {
    int dim, cin, hidden, depth;
    van_conv embed;    /* BN folded */
    van_block *blocks;
    const float *ln_w, *ln_b;
} van_stage;

typedef struct {
    van_stage stage[STAGES];
    float ln_eps;
    seg_fpn *fpn;
    float **owned;
    int nowned, cap_owned;
    /* Activations, kept between calls and grown for larger inputs (--tile and batches call
     * forward repeatedly); one caller at a time, as a context. */
    float *work;
    size_t work_n;
    seg_net net;
} van;

static const float imagenet_mean[3] = {0.485f, 0.456f, 0.406f};
static const float imagenet_std[3] = {0.229f, 0.224f, 0.225f};

static float *own(van *v, size_t n)
{
    if (v->nowned == v->cap_owned) {
        int cap = v->cap_owned ? 2 * v->cap_owned : 64;
        float **p = realloc(v->owned, (size_t)cap * sizeof *p);
        if (!p)
            return NULL;
        v->owned = p;
        v->cap_owned = cap;
    }
    float *m = malloc(n * sizeof *m);
    if (m)
        v->owned[v->nowned++] = m;
    return m;
}

static lr_status get(lr_ctx *ctx, const lr_model *file, const char *name, int ndim,
                     const int64_t *shape, lr_tensor *t)
{
    return lr_model_get_f32(ctx, file, name, ndim, shape, t);
}

/* prefix.weight [cout][cin][k][k] and prefix.bias [cout] (cout -1: any; read back from c). */
static lr_status get_conv(lr_ctx *ctx, const lr_model *file, const char *prefix, int cout,
                          int cin, int k, van_conv *c, int *cout_found)
{
    char name[192];
    lr_tensor w, b;
    snprintf(name, sizeof name, "%s.weight", prefix);
    lr_status s = get(ctx, file, name, 4, (const int64_t[]){cout, cin, k, k}, &w);
    if (s != LR_OK)
        return s;
    snprintf(name, sizeof name, "%s.bias", prefix);
    if ((s = get(ctx, file, name, 1, (const int64_t[]){w.shape[0]}, &b)) != LR_OK)
        return s;
    c->w = w.data;
    c->b = b.data;
    if (cout_found)
        *cout_found = (int)w.shape[0];
    return LR_OK;
}

/* BatchNorm prefix.{weight,bias,running_mean,running_var} as scale and shift (in double). */
static lr_status get_bn(lr_ctx *ctx, van *v, const lr_model *file, const char *prefix, int n,
                        float **scale, float **shift)
{
    static const char *const parts[4] = {"weight", "bias", "running_mean", "running_var"};
    lr_tensor t[4];
    char name[192];
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "%s.%s", prefix, parts[i]);
        lr_status s = get(ctx, file, name, 1, (const int64_t[]){n}, &t[i]);
        if (s != LR_OK)
            return s;
    }
    float *m = own(v, 2 * (size_t)n);
    if (!m)
        return lr_fail(ctx, LR_ERR_NOMEM, "out of memory");
    const float *g = t[0].data, *b = t[1].data, *mu = t[2].data, *var = t[3].data;
    for (int i = 0; i < n; i++) {
        double a = g[i] / sqrt((double)var[i] + VAN_BN_EPS);
        m[i] = (float)a;
        m[n + i] = (float)(b[i] - mu[i] * a);
    }
    *scale = m;
    *shift = m + n;
    return LR_OK;
}

/* conv followed by BN: w' = w * a[o], b' = b * a[o] + shift[o]. */
static lr_status fold_after(lr_ctx *ctx, van *v, van_conv *c, int cout, size_t per,
                            const float *a, const float *shift)
{
    float *m = own(v, (size_t)cout * per + cout);
    if (!m)
        return lr_fail(ctx, LR_ERR_NOMEM, "out of memory");
    for (int o = 0; o < cout; o++) {
        for (size_t i = 0; i < per; i++)
            m[o * per + i] = c->w[o * per + i] * a[o];
        m[(size_t)cout * per + o] = c->b[o] * a[o] + shift[o];
    }
    c->w = m;
    c->b = m + (size_t)cout * per;
    return LR_OK;
}

/* BN before a 1x1 conv: W (a x + s) + b = (W diag a) x + (W s + b). */
static lr_status fold_before(lr_ctx *ctx, van *v, van_conv *c, int cout, int cin, const float *a,
                             const float *shift)
{
    float *m = own(v, (size_t)cout * cin + cout);
    if (!m)
        return lr_fail(ctx, LR_ERR_NOMEM, "out of memory");
    for (int o = 0; o < cout; o++) {
        double bias = c->b[o];
        for (int i = 0; i < cin; i++) {
            m[(size_t)o * cin + i] = c->w[(size_t)o * cin + i] * a[i];
            bias += (double)c->w[(size_t)o * cin + i] * shift[i];
        }
        m[(size_t)cout * cin + o] = (float)bias;
    }
    c->w = m;
    c->b = m + (size_t)cout * cin;
    return LR_OK;
}

static lr_status open_block(lr_ctx *ctx, van *v, const lr_model *file, int st, int j, int dim,
                            van_block *b, int *hidden)
{
    char p[160], q[192];
    snprintf(p, sizeof p, "backbone.block%d.%d", st + 1, j);
    float *s1, *t1, *s2, *t2;
    lr_status s;
    snprintf(q, sizeof q, "%s.norm1", p);
    if ((s = get_bn(ctx, v, file, q, dim, &s1, &t1)) != LR_OK)
        return s;
    b->n1_scale = s1;
    b->n1_shift = t1;
    snprintf(q, sizeof q, "%s.norm2", p);
    if ((s = get_bn(ctx, v, file, q, dim, &s2, &t2)) != LR_OK)
        return s;
    const struct {
        const char *name;
        van_conv *c;
        int cin, k;
    } convs[] = {
        {"attn.proj_1", &b->proj_1, dim, 1},
        {"attn.spatial_gating_unit.conv0", &b->conv0, 1, 5},
        {"attn.spatial_gating_unit.conv_spatial", &b->conv_spatial, 1, 7},
        {"attn.spatial_gating_unit.conv1", &b->conv1, dim, 1},
        {"attn.proj_2", &b->proj_2, dim, 1},
    };
    for (size_t i = 0; i < sizeof convs / sizeof convs[0]; i++) {
        snprintf(q, sizeof q, "%s.%s", p, convs[i].name);
        if ((s = get_conv(ctx, file, q, dim, convs[i].cin, convs[i].k, convs[i].c, NULL)) != LR_OK)
            return s;
    }
    int hid = 0;
    snprintf(q, sizeof q, "%s.mlp.fc1", p);
    if ((s = get_conv(ctx, file, q, j == 0 ? -1 : *hidden, dim, 1, &b->fc1, &hid)) != LR_OK)
        return s;
    snprintf(q, sizeof q, "%s.mlp.dwconv.dwconv", p);
    if ((s = get_conv(ctx, file, q, hid, 1, 3, &b->dwconv, NULL)) != LR_OK)
        return s;
    snprintf(q, sizeof q, "%s.mlp.fc2", p);
    if ((s = get_conv(ctx, file, q, dim, hid, 1, &b->fc2, NULL)) != LR_OK)
        return s;
    if ((s = fold_before(ctx, v, &b->fc1, hid, dim, s2, t2)) != LR_OK)
        return s;
    lr_tensor t;
    snprintf(q, sizeof q, "%s.layer_scale_1", p);
    if ((s = get(ctx, file, q, 1, (const int64_t[]){dim}, &t)) != LR_OK)
        return s;
    b->ls1 = t.data;
    snprintf(q, sizeof q, "%s.layer_scale_2", p);
    if ((s = get(ctx, file, q, 1, (const int64_t[]){dim}, &t)) != LR_OK)
        return s;
    b->ls2 = t.data;
    *hidden = hid;
    return LR_OK;
}

/* ---- forward ---- */

/* GELU on 4 floats (SSE/NEON width, the baseline of every 64-bit target). */
typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));

static inline v4f gelu4(v4f x)
{
    const v4i sign = (v4i){0, 0, 0, 0} + INT32_MIN;
    const v4i xb = (v4i)x;
    const v4f a = (v4f)(xb & ~sign) * 0.70710678118654752f; /* |x| / sqrt(2) */
    const v4f t = 1.0f / (1.0f + 0.3275911f * a);
    const v4f poly = ((((1.061405429f * t - 1.453152027f) * t + 1.421413741f) * t -
                       0.284496736f) * t + 0.254829592f) * t;
    /* exp(z), z = -a^2 clamped at -87: 2^k * exp(r), |r| <= ln2 / 2, Taylor to r^6. */
    v4f z = -a * a;
    const v4i low = z < -87.0f;
    z = (v4f)(((v4i)z & ~low) | ((v4i)((v4f){0, 0, 0, 0} - 87.0f) & low));
    const v4f k = (z * 1.44269504088896341f + 12582912.0f) - 12582912.0f; /* round */
    const v4f r = (z - k * 0.693145751953125f) - k * 1.428606765330187e-06f;
    v4f e = 1.0f + r * (1.0f + r * (0.5f + r * (0.16666667f + r * (0.041666668f +
                  r * (0.008333334f + r * 0.0013888889f)))));
    e *= (v4f)((__builtin_convertvector(k, v4i) + 127) << 23);
    const v4f erf_abs = 1.0f - poly * e;
    return 0.5f * x * (1.0f + (v4f)((v4i)erf_abs | (xb & sign)));
}

static void gelu_fast(float *x, int64_t n)
{
    int64_t i = 0;
    v4f v;
    for (; i + 4 <= n; i += 4) {
        memcpy(&v, x + i, sizeof v);
        v = gelu4(v);
        memcpy(x + i, &v, sizeof v);
    }
    if (i < n) {
        v = (v4f){0, 0, 0, 0};
        memcpy(&v, x + i, (size_t)(n - i) * sizeof *x);
        v = gelu4(v);
        memcpy(x + i, &v, (size_t)(n - i) * sizeof *x);
    }
}

typedef enum { EW_NORMALISE, EW_AFFINE, EW_GELU, EW_MUL, EW_ADD, EW_SCALED_ADD } ew_kind;

/* Elementwise ops over [c][n], one task per channel block (a fixed split: deterministic). */
typedef struct {
    ew_kind kind;
    float *x;          /* in/out */
    const float *y;    /* MUL: x *= y; SCALED_ADD: x += scale[c] * y; AFFINE: x = y*a + b */
    const float *a, *b;
    int c;
    int64_t n;
    bool ref;          /* GELU with erff */
} ew_job;

static void ew_task(void *arg, size_t task, int thread)
{
    (void)thread;
    const ew_job *j = arg;
    const int per = 4, c0 = (int)task * per, c1 = c0 + per < j->c ? c0 + per : j->c;
    for (int c = c0; c < c1; c++) {
        float *x = j->x + (size_t)c * j->n;
        const float *y = j->y ? j->y + (size_t)c * j->n : NULL;
        switch (j->kind) {
        case EW_NORMALISE:
        case EW_AFFINE: {
            const float a = j->a[c], b = j->b[c];
            if (j->kind == EW_NORMALISE) /* (x - mean) / std as PyTorch does it */
                for (int64_t i = 0; i < j->n; i++)
                    x[i] = (y[i] - b) / a;
            else
                for (int64_t i = 0; i < j->n; i++)
                    x[i] = y[i] * a + b;
            break;
        }
        case EW_GELU:
            if (!j->ref) {
                gelu_fast(x, j->n);
                break;
            }
            for (int64_t i = 0; i < j->n; i++)
                x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
            break;
        case EW_MUL:
            for (int64_t i = 0; i < j->n; i++)
                x[i] *= y[i];
            break;
        case EW_ADD:
            for (int64_t i = 0; i < j->n; i++)
                x[i] += y[i];
            break;
        case EW_SCALED_ADD: {
            const float a = j->a[c];
            for (int64_t i = 0; i < j->n; i++)
                x[i] += a * y[i];
            break;
        }
        }
    }
}

static void ew(lr_ctx *ctx, ew_kind kind, float *x, const float *y, const float *a,
               const float *b, int c, int64_t n)
{
    ew_job j = {kind, x, y, a, b, c, n, lr_ctx_cpu(ctx) == LR_CPU_REF};
    lr_parallel_for(ctx, (size_t)(c + 3) / 4, ew_task, &j);
}

/* LayerNorm over the channels of every pixel of x [c][n], in place; tasks of 256 pixels. */
typedef struct {
    float *x;
    const float *w, *b;
    int c;
    int64_t n;
    float eps;
} ln_job;

static void ln_task(void *arg, size_t task, int thread)
{
    (void)thread;
    const ln_job *j = arg;
    enum { BLOCK = 256 };
    const int64_t p0 = (int64_t)task * BLOCK, p1 = p0 + BLOCK < j->n ? p0 + BLOCK : j->n;
    double mean[BLOCK], var[BLOCK];
    const int m = (int)(p1 - p0);
    for (int i = 0; i < m; i++)
        mean[i] = var[i] = 0.0;
    for (int c = 0; c < j->c; c++) {
        const float *x = j->x + (size_t)c * j->n + p0;
        for (int i = 0; i < m; i++)
            mean[i] += x[i];
    }
    for (int i = 0; i < m; i++)
        mean[i] /= j->c;
    for (int c = 0; c < j->c; c++) {
        const float *x = j->x + (size_t)c * j->n + p0;
        for (int i = 0; i < m; i++)
            var[i] += (x[i] - mean[i]) * (x[i] - mean[i]);
    }
    for (int i = 0; i < m; i++)
        var[i] = 1.0 / sqrt(var[i] / j->c + j->eps);
    for (int c = 0; c < j->c; c++) {
        float *x = j->x + (size_t)c * j->n + p0;
        const float w = j->w[c], b = j->b[c];
        for (int i = 0; i < m; i++)
            x[i] = (float)((x[i] - mean[i]) * var[i]) * w + b;
    }
}

static lr_status conv(lr_ctx *ctx, const van_conv *c, int k, int stride, int pad, int dil,
                      int groups, const float *in, int cin, int h, int w, int cout, float *out)
{
    lr_conv2d_desc d = lr_conv2d_default(k, k);
    d.stride_h = d.stride_w = stride;
    d.pad_top = d.pad_left = d.pad_bottom = d.pad_right = pad;
    d.dil_h = d.dil_w = dil;
    d.groups = groups;
    return lr_conv2d(ctx, &d, in, cin, h, w, c->w, c->b, cout, out);
}

/* One block on x [dim][h][w], in place. n, t, a: dim x hw each; h1, h2: hidden x hw. */
static lr_status block_forward(lr_ctx *ctx, const van_block *b, int dim, int hidden, float *x,
                               int h, int w, float *n, float *t, float *a, float *h1, float *h2)
{
    const int64_t hw = (int64_t)h * w;
    lr_status s;
    ew(ctx, EW_AFFINE, n, x, b->n1_scale, b->n1_shift, dim, hw);
    if ((s = conv(ctx, &b->proj_1, 1, 1, 0, 1, 1, n, dim, h, w, dim, t)) != LR_OK)
        return s;
    ew(ctx, EW_GELU, t, NULL, NULL, NULL, dim, hw);
    if ((s = conv(ctx, &b->conv0, 5, 1, 2, 1, dim, t, dim, h, w, dim, a)) != LR_OK ||
        (s = conv(ctx, &b->conv_spatial, 7, 1, 9, 3, dim, a, dim, h, w, dim, h1)) != LR_OK ||
        (s = conv(ctx, &b->conv1, 1, 1, 0, 1, 1, h1, dim, h, w, dim, a)) != LR_OK)
        return s;
    ew(ctx, EW_MUL, a, t, NULL, NULL, dim, hw); /* u * attn */
    if ((s = conv(ctx, &b->proj_2, 1, 1, 0, 1, 1, a, dim, h, w, dim, t)) != LR_OK)
        return s;
    ew(ctx, EW_ADD, t, n, NULL, NULL, dim, hw); /* the attention's own shortcut */
    ew(ctx, EW_SCALED_ADD, x, t, b->ls1, NULL, dim, hw);
    if ((s = conv(ctx, &b->fc1, 1, 1, 0, 1, 1, x, dim, h, w, hidden, h1)) != LR_OK ||
        (s = conv(ctx, &b->dwconv, 3, 1, 1, 1, hidden, h1, hidden, h, w, hidden, h2)) != LR_OK)
        return s;
    ew(ctx, EW_GELU, h2, NULL, NULL, NULL, hidden, hw);
    if ((s = conv(ctx, &b->fc2, 1, 1, 0, 1, 1, h2, hidden, h, w, dim, t)) != LR_OK)
        return s;
    ew(ctx, EW_SCALED_ADD, x, t, b->ls2, NULL, dim, hw);
    return LR_OK;
}

static void stage_size(int st, int h, int w, int *ho, int *wo)
{
    for (int i = 0; i <= st; i++) {
        const int k = i == 0 ? 7 : 3, stride = i == 0 ? 4 : 2;
        h = (h + 2 * (k / 2) - k) / stride + 1;
        w = (w + 2 * (k / 2) - k) / stride + 1;
    }
    *ho = h;
    *wo = w;
}

static void van_out_size(const seg_net *net, int h, int w, int *out_h, int *out_w)
{
    (void)net;
    stage_size(0, h, w, out_h, out_w);
}

static lr_status van_forward(lr_ctx *ctx, const seg_net *net, const float *in, int h, int w,
                             float *out)
{
    van *v = net->impl;
    if (h < 1 || w < 1)
        return lr_fail(ctx, LR_ERR_ARG, "van: empty input");
    int fh[STAGES], fw[STAGES];
    size_t feat_n = 0, dim_n = (size_t)3 * h * w, hid_n = 0;
    for (int i = 0; i < STAGES; i++) {
        stage_size(i, h, w, &fh[i], &fw[i]);
        const size_t hw = (size_t)fh[i] * fw[i];
        feat_n += (size_t)v->stage[i].dim * hw;
        if ((size_t)v->stage[i].dim * hw > dim_n)
            dim_n = (size_t)v->stage[i].dim * hw;
        if ((size_t)v->stage[i].hidden * hw > hid_n)
            hid_n = (size_t)v->stage[i].hidden * hw;
    }
    if (hid_n < dim_n)
        hid_n = dim_n;
    const size_t need = feat_n + 3 * dim_n + 2 * hid_n;
    if (need > v->work_n) {
        free(v->work);
        v->work_n = 0;
        if (!(v->work = seg_alloc_large(need * sizeof *v->work)))
            return lr_fail(ctx, LR_ERR_NOMEM, "van: out of memory for a %dx%d input", w, h);
        v->work_n = need;
    }
    float *mem = v->work;
    float *feat[STAGES], *p = mem;
    for (int i = 0; i < STAGES; i++) {
        feat[i] = p;
        p += (size_t)v->stage[i].dim * fh[i] * fw[i];
    }
    float *n = p, *t = n + dim_n, *a = t + dim_n, *h1 = a + dim_n, *h2 = h1 + hid_n;
    lr_status s = LR_OK;
    /* The normalised image lives in h2 (3 x h x w <= hid_n) until stage 1's embedding. */
    ew(ctx, EW_NORMALISE, h2, in, imagenet_std, imagenet_mean, 3, (int64_t)h * w);
    const float *src = h2;
    int sh = h, sw = w;
    for (int i = 0; i < STAGES && s == LR_OK; i++) {
        const van_stage *st = &v->stage[i];
        const int k = i == 0 ? 7 : 3, stride = i == 0 ? 4 : 2;
        s = conv(ctx, &st->embed, k, stride, k / 2, 1, 1, src, st->cin, sh, sw, st->dim, feat[i]);
        for (int j = 0; j < st->depth && s == LR_OK; j++)
            s = block_forward(ctx, &st->blocks[j], st->dim, st->hidden, feat[i], fh[i], fw[i], n,
                              t, a, h1, h2);
        if (s != LR_OK)
            break;
        ln_job lj = {feat[i], st->ln_w, st->ln_b, st->dim, (int64_t)fh[i] * fw[i], v->ln_eps};
        lr_parallel_for(ctx, (size_t)((lj.n + 255) / 256), ln_task, &lj);
        src = feat[i];
        sh = fh[i];
        sw = fw[i];
    }
    if (s == LR_OK) {
        const float *const feats[STAGES] = {feat[0], feat[1], feat[2], feat[3]};
        s = seg_fpn_forward(ctx, v->fpn, feats, fh, fw, out);
    }
    return s;
}

static void van_close(seg_net *net)
{
    van *v = net->impl;
    seg_fpn_close(v->fpn);
    for (int i = 0; i < STAGES; i++)
        free(v->stage[i].blocks);
    for (int i = 0; i < v->nowned; i++)
        free(v->owned[i]);
    free(v->owned);
    free(v->work);
    free(v);
}

lr_status van_net_open(lr_ctx *ctx, const lr_model *file, seg_net **out)
{
    *out = NULL;
    van *v = calloc(1, sizeof *v);
    if (!v)
        return lr_fail(ctx, LR_ERR_NOMEM, "out of memory");
    v->net.impl = v;
    v->net.close = van_close;
    double eps = 1e-5;
    lr_status s = lr_model_meta_float(ctx, file, "layer_norm_eps", true, 1e-5, &eps);
    if (s == LR_OK && !(eps > 0 && eps < 1))
        s = lr_fail(ctx, LR_ERR_MODEL, "%s: layer_norm_eps %g out of (0, 1)",
                    lr_model_path(file), eps);
    v->ln_eps = (float)eps;
    int cin = 3;
    char p[160];
    for (int i = 0; i < STAGES && s == LR_OK; i++) {
        van_stage *st = &v->stage[i];
        const int k = i == 0 ? 7 : 3;
        st->cin = cin;
        snprintf(p, sizeof p, "backbone.patch_embed%d.proj", i + 1);
        if ((s = get_conv(ctx, file, p, -1, cin, k, &st->embed, &st->dim)) != LR_OK)
            break;
        float *a, *b;
        snprintf(p, sizeof p, "backbone.patch_embed%d.norm", i + 1);
        if ((s = get_bn(ctx, v, file, p, st->dim, &a, &b)) != LR_OK ||
            (s = fold_after(ctx, v, &st->embed, st->dim, (size_t)cin * k * k, a, b)) != LR_OK)
            break;
        /* Depth: the blocks present (norm1.weight of block j). */
        while (st->depth < MAX_DEPTH) {
            snprintf(p, sizeof p, "backbone.block%d.%d.norm1.weight", i + 1, st->depth);
            if (!lr_model_find(file, p))
                break;
            st->depth++;
        }
        if (st->depth == 0) {
            s = lr_fail(ctx, LR_ERR_MODEL, "%s: no tensor 'backbone.block%d.0.norm1.weight'",
                        lr_model_path(file), i + 1);
            break;
        }
        if (!(st->blocks = calloc((size_t)st->depth, sizeof *st->blocks))) {
            s = lr_fail(ctx, LR_ERR_NOMEM, "out of memory");
            break;
        }
        for (int j = 0; j < st->depth && s == LR_OK; j++)
            s = open_block(ctx, v, file, i, j, st->dim, &st->blocks[j], &st->hidden);
        lr_tensor lw, lb;
        snprintf(p, sizeof p, "backbone.norm%d.weight", i + 1);
        if (s == LR_OK)
            s = get(ctx, file, p, 1, (const int64_t[]){st->dim}, &lw);
        snprintf(p, sizeof p, "backbone.norm%d.bias", i + 1);
        if (s == LR_OK)
            s = get(ctx, file, p, 1, (const int64_t[]){st->dim}, &lb);
        if (s == LR_OK) {
            st->ln_w = lw.data;
            st->ln_b = lb.data;
        }
        cin = st->dim;
    }
    if (s == LR_OK) {
        const int dims[STAGES] = {v->stage[0].dim, v->stage[1].dim, v->stage[2].dim,
                                  v->stage[3].dim};
        s = seg_fpn_open(ctx, file, dims, &v->fpn);
    }
    if (s != LR_OK) {
        van_close(&v->net);
        return s;
    }
    v->net.arch = "van-fpn";
    v->net.name = "van";
    v->net.in_width = v->net.in_height = 0;
    v->net.classes = seg_fpn_classes(v->fpn);
    v->net.out_size = van_out_size;
    v->net.forward = van_forward;
    *out = &v->net;
    return LR_OK;
}
