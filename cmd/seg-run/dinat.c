/* DiNAT-Mini with a Semantic FPN head (arch "dinat-fpn", tools/dinat_torch.py).
 *
 * The backbone is SHI-Labs' DiNAT segmentation backbone (Neighborhood-Attention-Transformer,
 * segmentation/nat.py + dinat.py, the NAT class with per-layer dilations):
 *   ConvTokenizer: conv 3->E/2 k3 s2 p1 (bias), conv E/2->E k3 s2 p1 (bias), LayerNorm;
 *   4 levels of dims E, 2E, 4E, 8E; layer j of level i (pre-norm, no layer scale):
 *       x += proj(NA_{k, d_ij}(qkv(pad(LN1(x)))) cropped);  x += fc2(GELU(fc1(LN2(x))))
 *   output i = norm_i(x) before the ConvDownsampler (conv C->2C k3 s2 p1 without bias, LN)
 *   that follows levels 0..2. LayerNorm eps 1e-5, GELU exact (erf).
 * Neighbourhood attention is NATTEN's (lr_na2d: clamped windows per dilation sub-grid, rpb
 * indexed by offset + k - 1, scale head_dim^-1/2). Maps smaller than k * d on an axis are
 * zero-padded on the right/bottom to k * d after LN1 and before qkv (so padded keys carry the
 * qkv bias) and cropped after attention, as the NATTEN <= 0.14 module DiNAT was trained with
 * does; the dilation itself is never reduced.
 *
 * Model file: tensors with the mmsegmentation checkpoint names, "backbone.patch_embed.proj.0.
 * weight", "backbone.levels.{i}.blocks.{j}.attn.{qkv,rpb,proj}...", "backbone.norm{i}...",
 * then "neck." / "decode_head." for the FPN (fpn.h); F32, F16 or BF16. Metadata (defaults:
 * DiNAT-Mini with the dilations of its ADE20K 512x512 configuration):
 *   "embed_dim" 64, "depths" "3,4,6,5", "num_heads" "2,4,8,16", "kernel_size" 7,
 *   "dilations" "1,16,1;1,4,1,8;1,2,1,3,1,4;1,2,1,2,1" (levels separated by ';').
 * The MLP width comes from fc1's shape. Input: RGB 0..1, normalised with ImageNet's mean
 * (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225); any size; logits at stride 4:
 * ceil(ceil(h / 2) / 2) x ceil(ceil(w / 2) / 2). F32 throughout (LayerNorm statistics in
 * double); deterministic for any thread count (every kernel is). Memory: five work buffers of
 * the largest (padded) map times max(3C, MLP width) floats, kept between calls (about 63 MB
 * at 512 x 512), plus the four level outputs. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fpn.h"
#include "longrange/conv.h"
#include "longrange/gemm.h"
#include "longrange/natten.h"
#include "longrange/parallel.h"
#include "seg.h"

#define DINAT_LEVELS 4
#define DINAT_MAX_DEPTH 64
#define LN_EPS 1e-5f

typedef struct {
    const float *w, *b;
} ln_params;

typedef struct {
    int dilation;
    ln_params norm1, norm2;
    const float *qkv_w, *qkv_b, *proj_w, *proj_b;
    lr_tensor rpb;
    const float *fc1_w, *fc1_b, *fc2_w, *fc2_b;
    int hidden;
} dinat_layer;

typedef struct {
    int dim, heads, depth;
    dinat_layer *layers;
    const float *down_w; /* NULL after the last level */
    ln_params down_norm, out_norm;
} dinat_level;

typedef struct {
    int embed_dim, kernel;
    const float *embed0_w, *embed0_b, *embed1_w, *embed1_b;
    ln_params embed_norm;
    dinat_level levels[DINAT_LEVELS];
    seg_fpn *fpn;
    /* Work buffers kept between calls (fresh pages cost ~15% of a 512x512 forward): five of
     * work_floats and the four level outputs of feat_floats. */
    float *work[5], *feats;
    size_t work_floats, feat_floats;
} dinat;

/* ---- small kernels (per token rows, threaded where the work is large) ---- */

typedef struct {
    const float *in;
    float *out;
    int rows, dim, row_w, out_row_w; /* a rows x row_w map; out rows are out_row_w wide */
    const ln_params *p;
} ln_job;

#define LN_CHUNK 64

/* LN_CHUNK tokens: token t of the map (y = t / row_w, x = t % row_w) reads
 * in[(y*row_w + x)*dim] and writes out[(y*out_row_w + x)*dim], so the output may sit inside a
 * wider (zero-padded) map. Statistics in double, two passes. */
static void ln_task(void *arg, size_t task, int thread)
{
    (void)thread;
    const ln_job *j = arg;
    const int64_t n = (int64_t)j->rows * j->row_w;
    const int64_t t0 = (int64_t)task * LN_CHUNK, t1 = t0 + LN_CHUNK < n ? t0 + LN_CHUNK : n;
    const int C = j->dim;
    for (int64_t t = t0; t < t1; t++) {
        const int64_t y = t / j->row_w, x = t % j->row_w;
        const float *src = j->in + t * C;
        float *dst = j->out + (y * j->out_row_w + x) * C;
        double sum = 0.0;
        for (int c = 0; c < C; c++)
            sum += src[c];
        const double mean = sum / C;
        double var = 0.0;
        for (int c = 0; c < C; c++)
            var += (src[c] - mean) * (src[c] - mean);
        const float inv = (float)(1.0 / sqrt(var / C + (double)LN_EPS)), m = (float)mean;
        for (int c = 0; c < C; c++)
            dst[c] = (src[c] - m) * inv * j->p->w[c] + j->p->b[c];
    }
}

/* LayerNorm of an h x w token map [h][w][dim] into out, whose rows are out_w tokens wide
 * (out_w >= w; in == out allowed when out_w == w). */
static void layer_norm(lr_ctx *ctx, const ln_params *p, const float *in, int h, int w, int dim,
                       float *out, int out_w)
{
    ln_job j = {in, out, h, dim, w, out_w, p};
    const int64_t n = (int64_t)h * w;
    lr_parallel_for(ctx, (size_t)((n + LN_CHUNK - 1) / LN_CHUNK), ln_task, &j);
}

typedef struct {
    float *x;
    const float *bias;
    int64_t rows;
    int cols;
    int gelu;
} bias_job;

static void bias_task(void *arg, size_t task, int thread)
{
    (void)thread;
    const bias_job *j = arg;
    const int64_t r0 = (int64_t)task * LN_CHUNK, r1 = r0 + LN_CHUNK < j->rows ? r0 + LN_CHUNK
                                                                              : j->rows;
    for (int64_t r = r0; r < r1; r++) {
        float *row = j->x + r * j->cols;
        for (int c = 0; c < j->cols; c++) {
            float v = row[c] + j->bias[c];
            if (j->gelu) /* exact GELU, as nn.GELU() */
                v = 0.5f * v * (1.0f + erff(v * 0.70710678f));
            row[c] = v;
        }
    }
}

/* x[rows][cols] += bias (then GELU when asked). */
static void add_bias(lr_ctx *ctx, float *x, const float *bias, int64_t rows, int cols, int gelu)
{
    bias_job j = {x, bias, rows, cols, gelu};
    lr_parallel_for(ctx, (size_t)((rows + LN_CHUNK - 1) / LN_CHUNK), bias_task, &j);
}

typedef struct {
    float *x;
    const float *src, *bias;
    int w, src_w, dim;
} residual_job;

static void residual_task(void *arg, size_t task, int thread)
{
    (void)thread;
    const residual_job *j = arg;
    float *dst = j->x + (int64_t)task * j->w * j->dim;
    const float *src = j->src + (int64_t)task * j->src_w * j->dim;
    for (int xx = 0; xx < j->w; xx++, dst += j->dim, src += j->dim)
        for (int c = 0; c < j->dim; c++)
            dst[c] += src[c] + j->bias[c];
}

/* The residual of a branch: x [h][w][dim] += src + bias, src's rows being src_w >= w tokens
 * wide (the attention's padded map, cropped here). One task per row. */
static void add_residual(lr_ctx *ctx, float *x, const float *src, const float *bias, int h,
                         int w, int src_w, int dim)
{
    residual_job j = {x, src, bias, w, src_w, dim};
    lr_parallel_for(ctx, (size_t)h, residual_task, &j);
}

/* out = in @ w^T (+ beta * out): in [rows][k], w [n][k] (nn.Linear), out [rows][n]. */
static lr_status linear(lr_ctx *ctx, const float *in, int64_t rows, int k, const float *w, int n,
                        float beta, float *out)
{
    return lr_sgemm(ctx, LR_NO_TRANS, LR_TRANS, rows, n, k, 1.0f, in, k, w, k, beta, out, n);
}

/* out [cols][rows] = in [rows][cols]^T ([c][n] <-> [n][c]), in 32 x 32 tiles for the cache. */
static void transpose(const float *in, int64_t rows, int64_t cols, float *out)
{
    enum { TILE = 32 };
    for (int64_t r0 = 0; r0 < rows; r0 += TILE)
        for (int64_t c0 = 0; c0 < cols; c0 += TILE) {
            const int64_t r1 = r0 + TILE < rows ? r0 + TILE : rows;
            const int64_t c1 = c0 + TILE < cols ? c0 + TILE : cols;
            for (int64_t c = c0; c < c1; c++)
                for (int64_t r = r0; r < r1; r++)
                    out[c * rows + r] = in[r * cols + c];
        }
}

static int ceil_half(int n)
{
    return (n + 1) / 2;
}

/* ---- the network ---- */

static void dinat_out_size(const seg_net *net, int h, int w, int *out_h, int *out_w)
{
    (void)net;
    *out_h = ceil_half(ceil_half(h));
    *out_w = ceil_half(ceil_half(w));
}

/* One NAT layer on the token map x [h][w][C], in place. t, qkv, att, tmp: work buffers of
 * the padded map times max(3C, MLP width) floats (dinat_forward sizes them). */
static lr_status nat_layer(lr_ctx *ctx, const dinat *m, const dinat_level *lv,
                           const dinat_layer *ly, float *x, int h, int w, float *t, float *qkv,
                           float *att, float *tmp)
{
    const int C = lv->dim, heads = lv->heads, D = C / heads, k = m->kernel;
    const int win = k * ly->dilation;
    const int hp = h < win ? win : h, wp = w < win ? win : w;
    const int64_t np = (int64_t)hp * wp;
    lr_status s;
    /* LN1 into the (zero-padded) map, then qkv over every padded token. */
    if (hp != h || wp != w)
        memset(t, 0, (size_t)np * C * sizeof *t);
    layer_norm(ctx, &ly->norm1, x, h, w, C, t, wp);
    if ((s = linear(ctx, t, np, C, ly->qkv_w, 3 * C, 0.0f, qkv)) != LR_OK)
        return s;
    add_bias(ctx, qkv, ly->qkv_b, np, 3 * C, 0);
    /* q, k, v: views [heads][hp][wp][D] of qkv [hp][wp][3][heads][D]. */
    lr_tensor q = {.data = qkv, .dtype = LR_F32, .ndim = 4, .shape = {heads, hp, wp, D},
                   .stride = {D, (int64_t)wp * 3 * C, 3 * C, 1}};
    lr_tensor kk = q, v = q;
    kk.data = qkv + C;
    v.data = qkv + 2 * C;
    lr_tensor o = {.data = att, .dtype = LR_F32, .ndim = 4, .shape = {heads, hp, wp, D},
                   .stride = {D, (int64_t)wp * C, C, 1}};
    lr_na_params p = lr_na_default_params();
    p.kernel_size = k;
    p.dilation = ly->dilation;
    p.rpb = &ly->rpb;
    if ((s = lr_na2d(ctx, &p, &q, &kk, &v, &o)) != LR_OK)
        return s;
    /* proj on the first h padded rows, cropped to w columns into the residual. */
    if ((s = linear(ctx, att, (int64_t)h * wp, C, ly->proj_w, C, 0.0f, tmp)) != LR_OK)
        return s;
    add_residual(ctx, x, tmp, ly->proj_b, h, w, wp, C);
    /* MLP */
    const int64_t n = (int64_t)h * w;
    layer_norm(ctx, &ly->norm2, x, h, w, C, t, w);
    if ((s = linear(ctx, t, n, C, ly->fc1_w, ly->hidden, 0.0f, qkv)) != LR_OK)
        return s;
    add_bias(ctx, qkv, ly->fc1_b, n, ly->hidden, 1);
    if ((s = linear(ctx, qkv, n, ly->hidden, ly->fc2_w, C, 0.0f, tmp)) != LR_OK)
        return s;
    add_residual(ctx, x, tmp, ly->fc2_b, h, w, w, C);
    return LR_OK;
}

static void free_work(dinat *m)
{
    for (int i = 0; i < 5; i++) {
        free(m->work[i]);
        m->work[i] = NULL;
    }
    free(m->feats);
    m->feats = NULL;
    m->work_floats = m->feat_floats = 0;
}

/* Work buffers of at least `work` and `feat` floats; false when out of memory. */
static bool grow(dinat *m, size_t work, size_t feat)
{
    if (work > m->work_floats) {
        for (int i = 0; i < 5; i++) {
            free(m->work[i]);
            m->work[i] = malloc(work * sizeof(float));
        }
        m->work_floats = work;
    }
    if (feat > m->feat_floats) {
        free(m->feats);
        m->feats = malloc(feat * sizeof(float));
        m->feat_floats = feat;
    }
    for (int i = 0; i < 5; i++)
        if (!m->work[i]) {
            free_work(m);
            return false;
        }
    if (!m->feats) {
        free_work(m);
        return false;
    }
    return true;
}

static lr_status dinat_forward(lr_ctx *ctx, const seg_net *net, const float *in, int h, int w,
                               float *out)
{
    dinat *m = net->impl; /* its work buffers are reused between calls */
    static const float mean[3] = {0.485f, 0.456f, 0.406f}, stdev[3] = {0.229f, 0.224f, 0.225f};
    const int E = m->embed_dim;
    int hs[DINAT_LEVELS], ws[DINAT_LEVELS];
    hs[0] = ceil_half(ceil_half(h));
    ws[0] = ceil_half(ceil_half(w));
    for (int i = 1; i < DINAT_LEVELS; i++)
        hs[i] = ceil_half(hs[i - 1]), ws[i] = ceil_half(ws[i - 1]);
    /* Scratch sizes: the largest over levels of the padded map times the widest row. */
    size_t big = (size_t)3 * h * w, feat_total = 0;
    for (int i = 0; i < DINAT_LEVELS; i++) {
        const dinat_level *lv = &m->levels[i];
        feat_total += (size_t)lv->dim * hs[i] * ws[i];
        for (int j = 0; j < lv->depth; j++) {
            const int win = m->kernel * lv->layers[j].dilation;
            const size_t hp = hs[i] < win ? win : hs[i], wp = ws[i] < win ? win : ws[i];
            const int width = 3 * lv->dim > lv->layers[j].hidden ? 3 * lv->dim
                                                                 : lv->layers[j].hidden;
            if (hp * wp * width > big)
                big = hp * wp * width;
        }
    }
    const size_t e_half = (size_t)(E / 2) * ceil_half(h) * ceil_half(w);
    if (e_half > big)
        big = e_half;
    if (!grow(m, big, feat_total))
        return lr_fail(ctx, LR_ERR_NOMEM, "dinat: out of memory for a %dx%d input", w, h);
    float *x = m->work[0], *t = m->work[1], *qkv = m->work[2], *att = m->work[3],
          *tmp = m->work[4], *feats = m->feats;
    lr_status s = LR_OK;
    /* Normalise, tokenise: two strided convs (CHW), then tokens [h][w][E] and LayerNorm. */
    for (int c = 0; c < 3; c++)
        for (int64_t i = 0; i < (int64_t)h * w; i++)
            t[c * (int64_t)h * w + i] = (in[c * (int64_t)h * w + i] - mean[c]) / stdev[c];
    lr_conv2d_desc d = lr_conv2d_default(3, 3);
    d.stride_h = d.stride_w = 2;
    d.pad_top = d.pad_left = d.pad_bottom = d.pad_right = 1;
    if ((s = lr_conv2d(ctx, &d, t, 3, h, w, m->embed0_w, m->embed0_b, E / 2, qkv)) != LR_OK ||
        (s = lr_conv2d(ctx, &d, qkv, E / 2, ceil_half(h), ceil_half(w), m->embed1_w,
                       m->embed1_b, E, att)) != LR_OK)
        goto done;
    transpose(att, E, (int64_t)hs[0] * ws[0], x);
    layer_norm(ctx, &m->embed_norm, x, hs[0], ws[0], E, x, ws[0]);
    const float *feat_ptr[DINAT_LEVELS];
    float *f = feats;
    for (int i = 0; i < DINAT_LEVELS; i++) {
        const dinat_level *lv = &m->levels[i];
        const int64_t n = (int64_t)hs[i] * ws[i];
        for (int j = 0; j < lv->depth; j++)
            if ((s = nat_layer(ctx, m, lv, &lv->layers[j], x, hs[i], ws[i], t, qkv, att,
                               tmp)) != LR_OK)
                goto done;
        layer_norm(ctx, &lv->out_norm, x, hs[i], ws[i], lv->dim, t, ws[i]);
        transpose(t, n, lv->dim, f);
        feat_ptr[i] = f;
        f += n * lv->dim;
        if (i + 1 < DINAT_LEVELS) {
            transpose(x, n, lv->dim, t);
            if ((s = lr_conv2d(ctx, &d, t, lv->dim, hs[i], ws[i], lv->down_w, NULL, 2 * lv->dim,
                               att)) != LR_OK)
                goto done;
            transpose(att, 2 * lv->dim, (int64_t)hs[i + 1] * ws[i + 1], x);
            layer_norm(ctx, &lv->down_norm, x, hs[i + 1], ws[i + 1], 2 * lv->dim, x, ws[i + 1]);
        }
    }
    s = seg_fpn_forward(ctx, m->fpn, feat_ptr, hs, ws, out);
done:
    return s;
}

static void dinat_close(seg_net *net)
{
    dinat *m = net->impl;
    if (m) {
        for (int i = 0; i < DINAT_LEVELS; i++)
            free(m->levels[i].layers);
        seg_fpn_close(m->fpn);
        free_work(m);
        free(m);
    }
    free(net);
}

/* ---- opening ---- */

/* "a,b,c" into vals (at most max); the count, or -1 if malformed or outside [lo, hi]. */
static int parse_ints(const char *text, int *vals, int max, int lo, int hi)
{
    int n = 0;
    const char *c = text;
    for (;;) {
        char *end;
        long v = strtol(c, &end, 10);
        if (end == c || v < lo || v > hi || n == max)
            return -1;
        vals[n++] = (int)v;
        if (*end == '\0')
            return n;
        if (*end != ',')
            return -1;
        c = end + 1;
    }
}

static lr_status get(lr_ctx *ctx, const lr_model *file, const char *name, int ndim,
                     const int64_t *shape, const float **out)
{
    lr_tensor t;
    lr_status s = lr_model_get_f32(ctx, file, name, ndim, shape, &t);
    if (s == LR_OK)
        *out = t.data;
    return s;
}

static lr_status get_ln(lr_ctx *ctx, const lr_model *file, const char *prefix, int dim,
                        ln_params *p)
{
    char name[160];
    const int64_t shape[1] = {dim};
    lr_status s;
    snprintf(name, sizeof name, "%s.weight", prefix);
    if ((s = get(ctx, file, name, 1, shape, &p->w)) != LR_OK)
        return s;
    snprintf(name, sizeof name, "%s.bias", prefix);
    return get(ctx, file, name, 1, shape, &p->b);
}

static lr_status open_layer(lr_ctx *ctx, const lr_model *file, const dinat *m, int i, int j,
                            const dinat_level *lv, dinat_layer *ly)
{
    const int C = lv->dim, K = 2 * m->kernel - 1;
    char pre[96], name[160];
    snprintf(pre, sizeof pre, "backbone.levels.%d.blocks.%d", i, j);
    lr_status s;
#define NAME(suffix) (snprintf(name, sizeof name, "%s.%s", pre, suffix), name)
    if ((s = get_ln(ctx, file, NAME("norm1"), C, &ly->norm1)) != LR_OK ||
        (s = get_ln(ctx, file, NAME("norm2"), C, &ly->norm2)) != LR_OK)
        return s;
    const int64_t qkv_w[2] = {3 * C, C}, qkv_b[1] = {3 * C}, proj_w[2] = {C, C},
                  proj_b[1] = {C}, rpb[3] = {lv->heads, K, K}, fc1_w[2] = {-1, C};
    if ((s = get(ctx, file, NAME("attn.qkv.weight"), 2, qkv_w, &ly->qkv_w)) != LR_OK ||
        (s = get(ctx, file, NAME("attn.qkv.bias"), 1, qkv_b, &ly->qkv_b)) != LR_OK ||
        (s = get(ctx, file, NAME("attn.proj.weight"), 2, proj_w, &ly->proj_w)) != LR_OK ||
        (s = get(ctx, file, NAME("attn.proj.bias"), 1, proj_b, &ly->proj_b)) != LR_OK ||
        (s = lr_model_get_f32(ctx, file, NAME("attn.rpb"), 3, rpb, &ly->rpb)) != LR_OK)
        return s;
    lr_tensor fc1;
    if ((s = lr_model_get_f32(ctx, file, NAME("mlp.fc1.weight"), 2, fc1_w, &fc1)) != LR_OK)
        return s;
    ly->fc1_w = fc1.data;
    if (fc1.shape[0] < 1 || fc1.shape[0] > 65536)
        return lr_fail(ctx, LR_ERR_MODEL, "%s: tensor '%s' has %lld rows", lr_model_path(file),
                       name, (long long)fc1.shape[0]);
    ly->hidden = (int)fc1.shape[0];
    const int64_t fc1_b[1] = {ly->hidden}, fc2_w[2] = {C, ly->hidden}, fc2_b[1] = {C};
    if ((s = get(ctx, file, NAME("mlp.fc1.bias"), 1, fc1_b, &ly->fc1_b)) != LR_OK ||
        (s = get(ctx, file, NAME("mlp.fc2.weight"), 2, fc2_w, &ly->fc2_w)) != LR_OK ||
        (s = get(ctx, file, NAME("mlp.fc2.bias"), 1, fc2_b, &ly->fc2_b)) != LR_OK)
        return s;
#undef NAME
    return LR_OK;
}

static lr_status open_weights(lr_ctx *ctx, const lr_model *file, dinat *m, const int *depths,
                              const int *heads, int dil[][DINAT_MAX_DEPTH])
{
    const int E = m->embed_dim;
    const int64_t e0w[4] = {E / 2, 3, 3, 3}, e0b[1] = {E / 2}, e1w[4] = {E, E / 2, 3, 3},
                  e1b[1] = {E};
    lr_status s;
    if ((s = get(ctx, file, "backbone.patch_embed.proj.0.weight", 4, e0w, &m->embed0_w)) != LR_OK ||
        (s = get(ctx, file, "backbone.patch_embed.proj.0.bias", 1, e0b, &m->embed0_b)) != LR_OK ||
        (s = get(ctx, file, "backbone.patch_embed.proj.1.weight", 4, e1w, &m->embed1_w)) != LR_OK ||
        (s = get(ctx, file, "backbone.patch_embed.proj.1.bias", 1, e1b, &m->embed1_b)) != LR_OK ||
        (s = get_ln(ctx, file, "backbone.patch_embed.norm", E, &m->embed_norm)) != LR_OK)
        return s;
    for (int i = 0; i < DINAT_LEVELS; i++) {
        dinat_level *lv = &m->levels[i];
        lv->dim = E << i;
        lv->heads = heads[i];
        lv->depth = depths[i];
        if (lv->dim % lv->heads != 0)
            return lr_fail(ctx, LR_ERR_MODEL, "%s: level %d: %d channels do not split into %d "
                           "heads", lr_model_path(file), i, lv->dim, lv->heads);
        lv->layers = calloc((size_t)lv->depth, sizeof *lv->layers);
        if (!lv->layers)
            return lr_fail(ctx, LR_ERR_NOMEM, "out of memory");
        for (int j = 0; j < lv->depth; j++) {
            lv->layers[j].dilation = dil[i][j];
            if ((s = open_layer(ctx, file, m, i, j, lv, &lv->layers[j])) != LR_OK)
                return s;
        }
        char name[96];
        snprintf(name, sizeof name, "backbone.norm%d", i);
        if ((s = get_ln(ctx, file, name, lv->dim, &lv->out_norm)) != LR_OK)
            return s;
        if (i + 1 < DINAT_LEVELS) {
            const int64_t dw[4] = {2 * lv->dim, lv->dim, 3, 3};
            snprintf(name, sizeof name, "backbone.levels.%d.downsample.reduction.weight", i);
            if ((s = get(ctx, file, name, 4, dw, &lv->down_w)) != LR_OK)
                return s;
            snprintf(name, sizeof name, "backbone.levels.%d.downsample.norm", i);
            if ((s = get_ln(ctx, file, name, 2 * lv->dim, &lv->down_norm)) != LR_OK)
                return s;
        }
    }
    return LR_OK;
}

lr_status dinat_net_open(lr_ctx *ctx, const lr_model *file, seg_net **out)
{
    *out = NULL;
    const char *path = lr_model_path(file);
    int embed, kernel, depths[DINAT_LEVELS], heads[DINAT_LEVELS];
    int dil[DINAT_LEVELS][DINAT_MAX_DEPTH];
    lr_status s;
    if ((s = lr_model_meta_int_in(ctx, file, "embed_dim", true, 64, 2, 4096, &embed)) != LR_OK ||
        (s = lr_model_meta_int_in(ctx, file, "kernel_size", true, 7, 1, 63, &kernel)) != LR_OK)
        return s;
    if (embed % 2 != 0 || kernel % 2 == 0)
        return lr_fail(ctx, LR_ERR_MODEL, "%s: embed_dim must be even and kernel_size odd "
                       "(found %d and %d)", path, embed, kernel);
    const char *text = lr_model_meta(file, "depths");
    if (parse_ints(text ? text : "3,4,6,5", depths, DINAT_LEVELS, 1, DINAT_MAX_DEPTH) !=
        DINAT_LEVELS)
        return lr_fail(ctx, LR_ERR_MODEL, "%s: depths must be 4 integers 1..%d", path,
                       DINAT_MAX_DEPTH);
    text = lr_model_meta(file, "num_heads");
    if (parse_ints(text ? text : "2,4,8,16", heads, DINAT_LEVELS, 1, 4096) != DINAT_LEVELS)
        return lr_fail(ctx, LR_ERR_MODEL, "%s: num_heads must be 4 positive integers", path);
    /* dilations: one comma list per level, ';' between levels. */
    text = lr_model_meta(file, "dilations");
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", text ? text : "1,16,1;1,4,1,8;1,2,1,3,1,4;1,2,1,2,1");
    char *save = NULL, *part = strtok_r(buf, ";", &save);
    for (int i = 0; i < DINAT_LEVELS; i++, part = strtok_r(NULL, ";", &save))
        if (!part || parse_ints(part, dil[i], DINAT_MAX_DEPTH, 1, 1024) != depths[i])
            return lr_fail(ctx, LR_ERR_MODEL, "%s: dilations must give level %d's %d layers "
                           "(levels separated by ';')", path, i, depths[i]);
    if (part)
        return lr_fail(ctx, LR_ERR_MODEL, "%s: dilations name more than 4 levels", path);
    seg_net *net = calloc(1, sizeof *net);
    dinat *m = calloc(1, sizeof *m);
    if (!net || !m) {
        free(net);
        free(m);
        return lr_fail(ctx, LR_ERR_NOMEM, "out of memory");
    }
    net->impl = m;
    net->close = dinat_close;
    m->embed_dim = embed;
    m->kernel = kernel;
    const int dims[DINAT_LEVELS] = {embed, 2 * embed, 4 * embed, 8 * embed};
    if ((s = open_weights(ctx, file, m, depths, heads, dil)) != LR_OK ||
        (s = seg_fpn_open(ctx, file, dims, &m->fpn)) != LR_OK) {
        dinat_close(net);
        return s;
    }
    net->arch = "dinat-fpn";
    net->name = "dinat";
    net->in_width = net->in_height = 0;
    net->classes = seg_fpn_classes(m->fpn);
    net->out_size = dinat_out_size;
    net->forward = dinat_forward;
    *out = net;
    return LR_OK;
}
