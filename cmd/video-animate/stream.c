/* RAIN-style stream denoising: the denoiser (a small UNet with motion modules) and the ring.
 * Definitions in stream.h and tools/stream_torch.py.
 *
 * Layout: activations are frame-major [F][C][H*W]; ResBlocks, convolutions and GroupNorm run
 * frame by frame (libcore's convolutions thread inside a frame), motion modules run on chunks of
 * pixels as tokens [F][pixels][C] (attention is per pixel across frames, so a fixed chunk size
 * bounds their scratch without changing results). Every parallel split depends on the shapes
 * only, so results are bit-identical for any thread count. */
#include "stream.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "longrange/activation.h"
#include "longrange/conv.h"
#include "longrange/gemm.h"
#include "longrange/parallel.h"
#include "longrange/resize.h"
#include "longrange/rng.h"
#include "longrange/temporal.h"

enum {
    MAX_SLOTS = 32,       /* AnimateDiff's position encoding length */
    TEMB_IN = 64,
    TEMB_DIM = 128,
    GN_GROUPS = 8,
    MOTION_CHUNK = 512,   /* pixels per motion-module chunk */
    ROWS_PER_TASK = 256,
    N_TIMESTEPS = 1000,
};

/* ---- parameters ----------------------------------------------------------------------- */

typedef struct {
    const float *w, *b;
} norm_p;
typedef struct {
    const float *w, *b;
    int cin, cout, k;
} conv_p;
typedef struct {
    const float *w, *b; /* w [out][in]; b may be NULL */
    int in, out;
} lin_p;
typedef struct {
    int cin, cout;
    norm_p norm1, norm2;
    conv_p conv1, conv2, shortcut; /* shortcut.w NULL when cin == cout */
    lin_p temb;
} res_p;
typedef struct {
    int c;
    norm_p norm, norm1, norm2;
    lin_p proj_in, q, k, v, out, ff1, ff2, proj_out;
    float *pe; /* [MAX_SLOTS][c] */
} motion_p;
typedef struct {
    res_p res;
    motion_p motion;
    conv_p resample; /* down: the stride-2 conv after; up: the conv after nearest x2 */
} level_p;

struct stream_net {
    stream_info info;
    int heads;
    float *reference; /* [3][H][W] */
    lin_p t1, t2;
    conv_p conv_in, conv_out;
    norm_p norm_out;
    level_p down[3], up[2];
    float **owned;
    size_t n_owned, cap_owned;
    /* activations, allocated at the first call for G*p frames */
    int max_frames;
    float *x0a, *s0, *x1a, *s1, *x2a, *l2, *u0, *r0, *u1;
    float *tmp1, *tmp2, *tmp3;           /* one frame, the widest level's channels */
    float *temb, *tproj;                 /* [F][128], [F][96] */
    float *tok[5], *ff;                  /* motion chunk: [F*chunk][C] x5, [F*chunk][4C] */
    double *gn_stats;                    /* [F][8][2] */
};

static void *own(stream_net *n, size_t bytes)
{
    if (n->n_owned == n->cap_owned) {
        size_t cap = n->cap_owned ? 2 * n->cap_owned : 64;
        float **p = realloc(n->owned, cap * sizeof *p);
        if (!p)
            return NULL;
        n->owned = p;
        n->cap_owned = cap;
    }
    float *p = malloc(bytes ? bytes : 1);
    if (p)
        n->owned[n->n_owned++] = p;
    return p;
}

typedef struct {
    lr_ctx *ctx;
    const lr_model *m;
    stream_net *net;
    lr_status st;
    const char **used;
    size_t n_used;
} loader;

static const float *get(loader *L, const char *name, int ndim, const int64_t *shape)
{
    if (L->st != LR_OK)
        return NULL;
    lr_tensor t;
    L->st = lr_model_get_f32(L->ctx, L->m, name, ndim, shape, &t);
    if (L->st != LR_OK)
        return NULL;
    size_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= (size_t)shape[i];
    float *p = own(L->net, n * sizeof *p);
    if (!p) {
        L->st = lr_fail(L->ctx, LR_ERR_NOMEM, "stream: out of memory loading '%s'", name);
        return NULL;
    }
    memcpy(p, t.data, n * sizeof *p);
    const lr_model_tensor *mt = lr_model_find(L->m, name);
    L->used[L->n_used++] = mt->name;
    return p;
}

static norm_p get_norm(loader *L, const char *prefix, int c)
{
    char name[192];
    int64_t shape[1] = {c};
    norm_p n;
    snprintf(name, sizeof name, "%s.weight", prefix);
    n.w = get(L, name, 1, shape);
    snprintf(name, sizeof name, "%s.bias", prefix);
    n.b = get(L, name, 1, shape);
    return n;
}

static conv_p get_conv(loader *L, const char *prefix, int cin, int cout, int k)
{
    char name[192];
    int64_t wshape[4] = {cout, cin, k, k}, bshape[1] = {cout};
    conv_p c = {NULL, NULL, cin, cout, k};
    snprintf(name, sizeof name, "%s.weight", prefix);
    c.w = get(L, name, 4, wshape);
    snprintf(name, sizeof name, "%s.bias", prefix);
    c.b = get(L, name, 1, bshape);
    return c;
}

static lin_p get_lin(loader *L, const char *prefix, int in, int out, int bias)
{
    char name[192];
    int64_t wshape[2] = {out, in}, bshape[1] = {out};
    lin_p l = {NULL, NULL, in, out};
    snprintf(name, sizeof name, "%s.weight", prefix);
    l.w = get(L, name, 2, wshape);
    if (bias) {
        snprintf(name, sizeof name, "%s.bias", prefix);
        l.b = get(L, name, 1, bshape);
    }
    return l;
}

static res_p get_res(loader *L, const char *prefix, int cin, int cout)
{
    char name[128];
    res_p r;
    memset(&r, 0, sizeof r);
    r.cin = cin, r.cout = cout;
    snprintf(name, sizeof name, "%s.norm1", prefix);
    r.norm1 = get_norm(L, name, cin);
    snprintf(name, sizeof name, "%s.conv1", prefix);
    r.conv1 = get_conv(L, name, cin, cout, 3);
    snprintf(name, sizeof name, "%s.time_emb_proj", prefix);
    r.temb = get_lin(L, name, TEMB_DIM, cout, 1);
    snprintf(name, sizeof name, "%s.norm2", prefix);
    r.norm2 = get_norm(L, name, cout);
    snprintf(name, sizeof name, "%s.conv2", prefix);
    r.conv2 = get_conv(L, name, cout, cout, 3);
    if (cin != cout) {
        snprintf(name, sizeof name, "%s.conv_shortcut", prefix);
        r.shortcut = get_conv(L, name, cin, cout, 1);
    }
    return r;
}

static motion_p get_motion(loader *L, const char *prefix, int c)
{
    char name[128];
    motion_p m;
    memset(&m, 0, sizeof m);
    m.c = c;
#define NAME(suffix) (snprintf(name, sizeof name, "%s.%s", prefix, suffix), name)
    m.norm = get_norm(L, NAME("norm"), c);
    m.proj_in = get_lin(L, NAME("proj_in"), c, c, 1);
    m.norm1 = get_norm(L, NAME("norm1"), c);
    m.q = get_lin(L, NAME("attn.to_q"), c, c, 0);
    m.k = get_lin(L, NAME("attn.to_k"), c, c, 0);
    m.v = get_lin(L, NAME("attn.to_v"), c, c, 0);
    m.out = get_lin(L, NAME("attn.to_out"), c, c, 1);
    m.norm2 = get_norm(L, NAME("norm2"), c);
    m.ff1 = get_lin(L, NAME("ff.net.0.proj"), c, 4 * c, 1);
    m.ff2 = get_lin(L, NAME("ff.net.2"), 4 * c, c, 1);
    m.proj_out = get_lin(L, NAME("proj_out"), c, c, 1);
#undef NAME
    if (L->st != LR_OK)
        return m;
    /* AnimateDiff's PositionalEncoding, in double like the reference */
    m.pe = own(L->net, (size_t)MAX_SLOTS * c * sizeof *m.pe);
    if (!m.pe) {
        L->st = lr_fail(L->ctx, LR_ERR_NOMEM, "stream: out of memory");
        return m;
    }
    for (int s = 0; s < MAX_SLOTS; s++)
        for (int i = 0; i < c; i += 2) {
            double div = exp((double)i * (-log(10000.0) / c));
            m.pe[s * c + i] = (float)sin(s * div);
            m.pe[s * c + i + 1] = (float)cos(s * div);
        }
    return m;
}

void stream_net_free(stream_net *net)
{
    if (!net)
        return;
    for (size_t i = 0; i < net->n_owned; i++)
        free(net->owned[i]);
    free(net->owned);
    free(net->gn_stats);
    free(net);
}

static lr_status parse_levels(lr_ctx *ctx, const lr_model *m, stream_info *info)
{
    const char *text = lr_model_meta(m, "levels");
    if (!text)
        return lr_fail(ctx, LR_ERR_MODEL, "%s: metadata 'levels' missing", lr_model_path(m));
    int n = 0;
    const char *p = text;
    while (*p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || v >= N_TIMESTEPS || n >= info->groups ||
            (n > 0 && v >= info->levels[n - 1]) || (*end != ',' && *end != '\0'))
            return lr_fail(ctx, LR_ERR_MODEL,
                           "%s: metadata 'levels' \"%s\": want %d descending timesteps in [0, 999]",
                           lr_model_path(m), text, info->groups);
        info->levels[n++] = (int)v;
        p = *end ? end + 1 : end;
    }
    if (n != info->groups)
        return lr_fail(ctx, LR_ERR_MODEL, "%s: metadata 'levels' \"%s\": want %d timesteps",
                       lr_model_path(m), text, info->groups);
    return LR_OK;
}

static lr_status parse_channels(lr_ctx *ctx, const lr_model *m, stream_info *info)
{
    const char *text = lr_model_meta(m, "channels");
    if (!text)
        text = "32,64,96";
    char *end;
    const char *p = text;
    for (int i = 0; i < 3; i++) {
        long v = strtol(p, &end, 10);
        if (end == p || v < 8 || v > 1024 || v % 8 || *end != (i < 2 ? ',' : '\0'))
            return lr_fail(ctx, LR_ERR_MODEL, "%s: metadata 'channels' \"%s\": want three "
                           "multiples of 8 in [8, 1024]", lr_model_path(m), text);
        info->channels[i] = (int)v;
        p = end + 1;
    }
    return LR_OK;
}

lr_status stream_load(lr_ctx *ctx, const lr_model *m, stream_net **out)
{
    if (!ctx || !m || !out)
        return ctx ? lr_fail(ctx, LR_ERR_ARG, "stream_load: NULL argument") : LR_ERR_ARG;
    *out = NULL;
    lr_status st = lr_model_expect_arch(ctx, m, "rain-stream-unet");
    if (st != LR_OK)
        return st;
    stream_info info;
    memset(&info, 0, sizeof info);
    int heads = 0;
    if ((st = lr_model_meta_int_in(ctx, m, "width", false, 0, 4, 1 << 14, &info.width)) ||
        (st = lr_model_meta_int_in(ctx, m, "height", false, 0, 4, 1 << 14, &info.height)) ||
        (st = lr_model_meta_int_in(ctx, m, "cond_width", false, 0, 1, 1 << 14, &info.cond_width)) ||
        (st = lr_model_meta_int_in(ctx, m, "cond_height", false, 0, 1, 1 << 14,
                                   &info.cond_height)) ||
        (st = lr_model_meta_int_in(ctx, m, "groups", false, 0, 1, MAX_SLOTS, &info.groups)) ||
        (st = lr_model_meta_int_in(ctx, m, "frames_per_group", false, 0, 1, MAX_SLOTS,
                                   &info.frames_per_group)) ||
        (st = lr_model_meta_int_in(ctx, m, "temporal", false, 0, 0, 1, &info.temporal)) ||
        (st = lr_model_meta_int_in(ctx, m, "heads", true, 4, 4, 4, &heads)))
        return st;
    if (info.width % 4 || info.height % 4)
        return lr_fail(ctx, LR_ERR_MODEL, "%s: width %d and height %d must be multiples of 4",
                       lr_model_path(m), info.width, info.height);
    if (info.groups * info.frames_per_group > MAX_SLOTS)
        return lr_fail(ctx, LR_ERR_MODEL, "%s: groups x frames_per_group = %d exceeds %d",
                       lr_model_path(m), info.groups * info.frames_per_group, MAX_SLOTS);
    if ((st = parse_levels(ctx, m, &info)) != LR_OK || (st = parse_channels(ctx, m, &info)) != LR_OK)
        return st;

    stream_net *net = calloc(1, sizeof *net);
    const char **used = calloc(lr_model_tensor_count(m) + 1, sizeof *used);
    if (!net || !used) {
        free(net);
        free(used);
        return lr_fail(ctx, LR_ERR_NOMEM, "stream: out of memory");
    }
    net->info = info;
    net->heads = heads;
    loader L = {ctx, m, net, LR_OK, used, 0};
    int64_t ref_shape[3] = {3, info.height, info.width};
    net->reference = (float *)get(&L, "reference", 3, ref_shape);
    net->t1 = get_lin(&L, "time_embedding.linear_1", TEMB_IN, TEMB_DIM, 1);
    net->t2 = get_lin(&L, "time_embedding.linear_2", TEMB_DIM, TEMB_DIM, 1);
    const int *c = info.channels;
    net->conv_in = get_conv(&L, "conv_in", 9, c[0], 3);
    const int down_in[3] = {c[0], c[0], c[1]}, down_out[3] = {c[0], c[1], c[2]};
    const int up_in[2] = {2 * c[1], 2 * c[0]}, up_out[2] = {c[1], c[0]}, up_from[2] = {c[2], c[1]};
    char name[64];
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "down.%d.res", i);
        net->down[i].res = get_res(&L, name, down_in[i], down_out[i]);
        if (info.temporal) {
            snprintf(name, sizeof name, "down.%d.motion", i);
            net->down[i].motion = get_motion(&L, name, down_out[i]);
        }
        if (i < 2) {
            snprintf(name, sizeof name, "down.%d.downsample", i);
            net->down[i].resample = get_conv(&L, name, down_out[i], down_out[i], 3);
        }
    }
    for (int i = 0; i < 2; i++) {
        snprintf(name, sizeof name, "up.%d.upsample", i);
        net->up[i].resample = get_conv(&L, name, up_from[i], up_in[i] / 2, 3);
        snprintf(name, sizeof name, "up.%d.res", i);
        net->up[i].res = get_res(&L, name, up_in[i], up_out[i]);
        if (info.temporal) {
            snprintf(name, sizeof name, "up.%d.motion", i);
            net->up[i].motion = get_motion(&L, name, up_out[i]);
        }
    }
    net->norm_out = get_norm(&L, "conv_norm_out", c[0]);
    net->conv_out = get_conv(&L, "conv_out", c[0], 3, 3);
    st = L.st;
    /* every tensor must be one the architecture uses: a temporal "0" file with motion
     * tensors is mislabelled */
    for (size_t i = 0; st == LR_OK && i < lr_model_tensor_count(m); i++) {
        const char *tname = lr_model_tensor_at(m, i)->name;
        size_t j = 0;
        while (j < L.n_used && strcmp(L.used[j], tname) != 0)
            j++;
        if (j == L.n_used)
            st = lr_fail(ctx, LR_ERR_MODEL, "%s: unexpected tensor '%s' (temporal %d)",
                         lr_model_path(m), tname, info.temporal);
    }
    free(used);
    if (st != LR_OK) {
        stream_net_free(net);
        return st;
    }
    *out = net;
    return LR_OK;
}

void stream_net_info(const stream_net *net, stream_info *info) { *info = net->info; }

/* ---- schedule ------------------------------------------------------------------------- */

double stream_alpha_bar(int t)
{
    if (t < 0)
        return 1.0;
    if (t >= N_TIMESTEPS)
        t = N_TIMESTEPS - 1;
    /* scaled_linear betas; sqrt(abar) rescaled so abar_999 = 0 and abar_0 is kept */
    const double b0 = sqrt(0.00085), b1 = sqrt(0.012);
    double abar = 1.0, first = 0.0, at = 0.0;
    for (int i = 0; i < N_TIMESTEPS; i++) {
        double s = b0 + (b1 - b0) * i / (N_TIMESTEPS - 1);
        abar *= 1.0 - s * s;
        if (i == 0)
            first = sqrt(abar);
        if (i == t)
            at = sqrt(abar);
    }
    const double last = sqrt(abar);
    double s = (at - last) * (first / (first - last));
    return s * s;
}

/* ---- elementwise pieces ----------------------------------------------------------------- */

static float silu(float x) { return x / (1.0f + expf(-x)); }

/* GroupNorm over one frame [c][hw] (groups of c/8 channels), then SiLU when asked; the 8
 * groups are the parallel tasks. */
typedef struct {
    const float *in;
    float *out;
    int c;
    int64_t hw;
    const norm_p *n;
    float eps;
    int act;
    lr_cpu_level level; /* for lr_silu's lanes */
} gn_job;

LR_VECTORIZE static void gn_task(void *arg, size_t g, int thread)
{
    (void)thread;
    const gn_job *j = arg;
    const int cg = j->c / GN_GROUPS;
    const float *in = j->in + (int64_t)g * cg * j->hw;
    float *out = j->out + (int64_t)g * cg * j->hw;
    const int64_t n = cg * j->hw;
    double sum = 0, sq = 0;
    for (int64_t i = 0; i < n; i++)
        sum += in[i];
    const double mean = sum / (double)n;
    for (int64_t i = 0; i < n; i++)
        sq += (in[i] - mean) * (in[i] - mean);
    const float rstd = (float)(1.0 / sqrt(sq / (double)n + j->eps)), fmean = (float)mean;
    for (int c = 0; c < cg; c++) {
        const float a = j->n->w[g * cg + c] * rstd, b = j->n->b[g * cg + c];
        for (int64_t i = 0; i < j->hw; i++)
            out[c * j->hw + i] = (in[c * j->hw + i] - fmean) * a + b;
        if (j->act)
            lr_silu(j->level, out + c * j->hw, j->hw);
    }
}

static void group_norm_silu(lr_ctx *ctx, const float *in, float *out, int c, int64_t hw,
                            const norm_p *n)
{
    gn_job j = {in, out, c, hw, n, 1e-5f, 1, lr_ctx_cpu(ctx)};
    lr_parallel_for(ctx, GN_GROUPS, gn_task, &j);
}

/* ---- convolutions (one frame) --------------------------------------------------------- */

static lr_status conv(lr_ctx *ctx, const conv_p *c, int stride, const float *in, int h, int w,
                      const float *bias, float *out)
{
    lr_conv2d_desc d = lr_conv2d_default(c->k, c->k);
    d.stride_h = d.stride_w = stride;
    d.pad_top = d.pad_left = d.pad_bottom = d.pad_right = c->k / 2;
    return lr_conv2d(ctx, &d, in, c->cin, h, w, c->w, bias ? bias : c->b, c->cout, out);
}

/* ResBlock over F frames: in [F][cin][hw] -> out [F][cout][hw]; tproj [F][cout] the frames'
 * timestep projections. */
static lr_status res_block(lr_ctx *ctx, stream_net *net, const res_p *r, const float *in,
                           float *out, int F, int h, int w)
{
    const int64_t hw = (int64_t)h * w;
    float *bias = net->tmp3; /* cout values, then the shortcut frame after them */
    for (int f = 0; f < F; f++) {
        const float *x = in + (int64_t)f * r->cin * hw;
        float *y = out + (int64_t)f * r->cout * hw;
        const float *temb = net->temb + (size_t)f * TEMB_DIM;
        for (int o = 0; o < r->cout; o++) { /* conv1 bias + time_emb_proj(SiLU(temb)) */
            double acc = r->temb.b[o];
            for (int i = 0; i < TEMB_DIM; i++)
                acc += (double)r->temb.w[o * TEMB_DIM + i] * silu(temb[i]);
            bias[o] = r->conv1.b[o] + (float)acc;
        }
        lr_status st;
        group_norm_silu(ctx, x, net->tmp1, r->cin, hw, &r->norm1);
        if ((st = conv(ctx, &r->conv1, 1, net->tmp1, h, w, bias, net->tmp2)) != LR_OK)
            return st;
        group_norm_silu(ctx, net->tmp2, net->tmp1, r->cout, hw, &r->norm2);
        if ((st = conv(ctx, &r->conv2, 1, net->tmp1, h, w, NULL, y)) != LR_OK)
            return st;
        const float *skip = x;
        if (r->shortcut.w) {
            if ((st = conv(ctx, &r->shortcut, 1, x, h, w, NULL, net->tmp2)) != LR_OK)
                return st;
            skip = net->tmp2;
        }
        for (int64_t i = 0; i < r->cout * hw; i++)
            y[i] += skip[i];
    }
    return LR_OK;
}

/* ---- motion module ---------------------------------------------------------------------- */

typedef struct {
    stream_net *net;
    const motion_p *m;
    float *x;          /* [F][C][P] */
    int F, c;
    int64_t P, p0, np; /* the chunk: pixels [p0, p0 + np) */
    const int *slot;
    float *a, *h, *q;  /* tokens [F][np][C] */
    float *ff;
    int64_t rows, cols;
} motion_job;

static void motion_stats_task(void *arg, size_t task, int thread)
{
    (void)thread;
    const motion_job *j = arg;
    const int f = (int)(task / GN_GROUPS), g = (int)(task % GN_GROUPS), cg = j->c / GN_GROUPS;
    const float *in = j->x + ((int64_t)f * j->c + (int64_t)g * cg) * j->P;
    const int64_t n = cg * j->P;
    double sum = 0, sq = 0;
    for (int64_t i = 0; i < n; i++)
        sum += in[i];
    const double mean = sum / (double)n;
    for (int64_t i = 0; i < n; i++)
        sq += (in[i] - mean) * (in[i] - mean);
    j->net->gn_stats[2 * task] = mean;
    j->net->gn_stats[2 * task + 1] = 1.0 / sqrt(sq / (double)n + 1e-6);
}

/* a[f][i][c] = GroupNorm(x)[f][c][p0 + i], one task per frame */
static void motion_gather_task(void *arg, size_t f, int thread)
{
    (void)thread;
    const motion_job *j = arg;
    const int c = j->c, cg = c / GN_GROUPS;
    for (int ch = 0; ch < c; ch++) {
        const double *st = j->net->gn_stats + 2 * (f * GN_GROUPS + (size_t)(ch / cg));
        const float mean = (float)st[0], a = j->m->norm.w[ch] * (float)st[1], b = j->m->norm.b[ch];
        const float *src = j->x + ((int64_t)f * c + ch) * j->P + j->p0;
        float *dst = j->a + (int64_t)f * j->np * c + ch;
        for (int64_t i = 0; i < j->np; i++)
            dst[i * c] = (src[i] - mean) * a + b;
    }
}

/* x[f][c][p0 + i] += q[f][i][c] */
static void motion_scatter_task(void *arg, size_t f, int thread)
{
    (void)thread;
    const motion_job *j = arg;
    const int c = j->c;
    for (int ch = 0; ch < c; ch++) {
        float *dst = j->x + ((int64_t)f * c + ch) * j->P + j->p0;
        const float *src = j->q + (int64_t)f * j->np * c + ch;
        for (int64_t i = 0; i < j->np; i++)
            dst[i] += src[i * c];
    }
}

/* a = LayerNorm(h) (+ pe[slot of the row's frame] when pe is given), rows of C */
typedef struct {
    const float *in;
    float *out;
    const norm_p *n;
    const float *pe;
    const int *slot;
    int64_t rows, np;
    int c;
} ln_job;

static void ln_task(void *arg, size_t task, int thread)
{
    (void)thread;
    const ln_job *j = arg;
    const int64_t r0 = (int64_t)task * ROWS_PER_TASK;
    const int64_t r1 = r0 + ROWS_PER_TASK < j->rows ? r0 + ROWS_PER_TASK : j->rows;
    for (int64_t r = r0; r < r1; r++) {
        const float *x = j->in + r * j->c;
        float *y = j->out + r * j->c;
        double sum = 0, sq = 0;
        for (int i = 0; i < j->c; i++)
            sum += x[i];
        const double mean = sum / j->c;
        for (int i = 0; i < j->c; i++)
            sq += (x[i] - mean) * (x[i] - mean);
        const float rstd = (float)(1.0 / sqrt(sq / j->c + 1e-5)), fmean = (float)mean;
        const float *pe = j->pe ? j->pe + (size_t)j->slot[r / j->np] * j->c : NULL;
        for (int i = 0; i < j->c; i++) {
            float v = (x[i] - fmean) * rstd * j->n->w[i] + j->n->b[i];
            y[i] = pe ? v + pe[i] : v;
        }
    }
}

static void layer_norm(lr_ctx *ctx, const float *in, float *out, const norm_p *n, const float *pe,
                       const int *slot, int64_t rows, int64_t np, int c)
{
    ln_job j = {in, out, n, pe, slot, rows, np, c};
    lr_parallel_for(ctx, (size_t)((rows + ROWS_PER_TASK - 1) / ROWS_PER_TASK), ln_task, &j);
}

/* x[r][:] = op(x[r][:] + b): op 0 none, 1 GELU (lr_gelu); and with acc, acc[r][:] += that */
typedef struct {
    float *x, *acc;
    const float *b;
    int64_t rows;
    int cols, gelu;
    lr_cpu_level level; /* for lr_gelu's lanes */
} bias_job;

LR_VECTORIZE static void bias_task(void *arg, size_t task, int thread)
{
    (void)thread;
    const bias_job *j = arg;
    const int64_t r0 = (int64_t)task * ROWS_PER_TASK;
    const int64_t r1 = r0 + ROWS_PER_TASK < j->rows ? r0 + ROWS_PER_TASK : j->rows;
    for (int64_t r = r0; r < r1; r++) {
        float *x = j->x + r * j->cols;
        if (j->b)
            for (int i = 0; i < j->cols; i++)
                x[i] = x[i] + j->b[i];
        if (j->gelu)
            lr_gelu(j->level, x, j->cols);
        if (j->acc)
            for (int i = 0; i < j->cols; i++)
                j->acc[r * j->cols + i] += x[i];
    }
}

/* out = in W^T (+ b), rows x l->out; with acc: acc += in W^T + b (out is scratch) */
static lr_status linear(lr_ctx *ctx, const lin_p *l, const float *in, float *out, int64_t rows,
                        int gelu, float *acc)
{
    lr_status st = lr_sgemm(ctx, LR_NO_TRANS, LR_TRANS, rows, l->out, l->in, 1.0f, in, l->in, l->w,
                            l->in, 0.0f, out, l->out);
    if (st != LR_OK || (!l->b && !gelu && !acc))
        return st;
    bias_job j = {out, acc, l->b, rows, l->out, gelu, lr_ctx_cpu(ctx)};
    lr_parallel_for(ctx, (size_t)((rows + ROWS_PER_TASK - 1) / ROWS_PER_TASK), bias_task, &j);
    return LR_OK;
}

/* x [F][C][P] += the motion module's output, in place */
static lr_status motion(lr_ctx *ctx, stream_net *net, const motion_p *m, float *x, int F,
                        int64_t P, const int *slot, int window, int stride)
{
    const int c = m->c;
    motion_job j = {net, m, x, F, c, P, 0, 0, slot, net->tok[0], net->tok[1], net->tok[2],
                    net->ff, 0, 0};
    float *k = net->tok[3], *v = net->tok[4];
    lr_parallel_for(ctx, (size_t)F * GN_GROUPS, motion_stats_task, &j);
    for (int64_t p0 = 0; p0 < P; p0 += MOTION_CHUNK) {
        const int64_t np = P - p0 < MOTION_CHUNK ? P - p0 : MOTION_CHUNK, rows = F * np;
        j.p0 = p0, j.np = np;
        lr_status st;
        lr_parallel_for(ctx, (size_t)F, motion_gather_task, &j);
        if ((st = linear(ctx, &m->proj_in, j.a, j.h, rows, 0, NULL)) != LR_OK)
            return st;
        layer_norm(ctx, j.h, j.a, &m->norm1, m->pe, slot, rows, np, c);
        if ((st = linear(ctx, &m->q, j.a, j.q, rows, 0, NULL)) != LR_OK ||
            (st = linear(ctx, &m->k, j.a, k, rows, 0, NULL)) != LR_OK ||
            (st = linear(ctx, &m->v, j.a, v, rows, 0, NULL)) != LR_OK)
            return st;
        lr_temporal_desc td = {F, (int)np, c, net->heads, 0, 0, 0.0f};
        if (window > 0 && window < F)
            td.window = window, td.stride = stride;
        if ((st = lr_temporal_attention(ctx, &td, j.q, k, v, j.a)) != LR_OK ||
            (st = linear(ctx, &m->out, j.a, j.q, rows, 0, j.h)) != LR_OK)
            return st;
        layer_norm(ctx, j.h, j.a, &m->norm2, NULL, slot, rows, np, c);
        if ((st = linear(ctx, &m->ff1, j.a, j.ff, rows, 1, NULL)) != LR_OK ||
            (st = linear(ctx, &m->ff2, j.ff, j.q, rows, 0, j.h)) != LR_OK ||
            (st = linear(ctx, &m->proj_out, j.h, j.q, rows, 0, NULL)) != LR_OK)
            return st;
        lr_parallel_for(ctx, (size_t)F, motion_scatter_task, &j);
    }
    return LR_OK;
}

/* ---- the denoiser ------------------------------------------------------------------------ */

static lr_status ensure_buffers(lr_ctx *ctx, stream_net *net)
{
    if (net->max_frames)
        return LR_OK;
    const int F = net->info.groups * net->info.frames_per_group;
    const size_t hw0 = (size_t)net->info.width * net->info.height, hw1 = hw0 / 4, hw2 = hw0 / 16;
    const size_t c0 = (size_t)net->info.channels[0], c1 = (size_t)net->info.channels[1],
                 c2 = (size_t)net->info.channels[2];
    /* one frame's widest temporary: cat inputs, upsampled maps, ResBlock inputs */
    size_t tmp = 9 * hw0;
    const size_t cands[] = {2 * c0 * hw0, c1 * hw0, 2 * c1 * hw1, c2 * hw1};
    for (size_t i = 0; i < sizeof cands / sizeof *cands; i++)
        tmp = cands[i] > tmp ? cands[i] : tmp;
    const size_t tok = (size_t)F * MOTION_CHUNK * c2;
    struct {
        float **p;
        size_t n;
    } bufs[] = {
        {&net->x0a, F * c0 * hw0},     {&net->s0, F * c0 * hw0},  {&net->x1a, F * c0 * hw1},
        {&net->s1, F * c1 * hw1},      {&net->x2a, F * c1 * hw2}, {&net->l2, F * c2 * hw2},
        {&net->u0, F * 2 * c1 * hw1},  {&net->r0, F * c1 * hw1},  {&net->u1, F * 2 * c0 * hw0},
        {&net->tmp1, tmp}, {&net->tmp2, tmp}, {&net->tmp3, tmp},
        {&net->temb, (size_t)F * TEMB_DIM},
        {&net->tok[0], tok}, {&net->tok[1], tok}, {&net->tok[2], tok}, {&net->tok[3], tok},
        {&net->tok[4], tok}, {&net->ff, 4 * tok},
    };
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
        if (!(*bufs[i].p = own(net, bufs[i].n * sizeof(float))))
            return lr_fail(ctx, LR_ERR_NOMEM, "stream: out of memory for activations");
    if (!(net->gn_stats = malloc((size_t)F * GN_GROUPS * 2 * sizeof *net->gn_stats)))
        return lr_fail(ctx, LR_ERR_NOMEM, "stream: out of memory for activations");
    net->max_frames = F;
    return LR_OK;
}

static void time_embedding(stream_net *net, const int *t, int F)
{
    float sincos[TEMB_IN], hidden[TEMB_DIM];
    for (int f = 0; f < F; f++) {
        for (int i = 0; i < TEMB_IN / 2; i++) {
            double freq = exp(-log(10000.0) * i / (TEMB_IN / 2));
            double arg = (double)t[f] * freq;
            sincos[i] = (float)cos(arg); /* flip_sin_to_cos: cos first */
            sincos[TEMB_IN / 2 + i] = (float)sin(arg);
        }
        for (int o = 0; o < TEMB_DIM; o++) {
            double acc = net->t1.b[o];
            for (int i = 0; i < TEMB_IN; i++)
                acc += (double)net->t1.w[o * TEMB_IN + i] * sincos[i];
            hidden[o] = silu((float)acc);
        }
        for (int o = 0; o < TEMB_DIM; o++) {
            double acc = net->t2.b[o];
            for (int i = 0; i < TEMB_DIM; i++)
                acc += (double)net->t2.w[o * TEMB_DIM + i] * hidden[i];
            net->temb[f * TEMB_DIM + o] = (float)acc;
        }
    }
}

static void upsample_nearest2(const float *in, int c, int h, int w, float *out)
{
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < 2 * h; y++) {
            const float *src = in + ((size_t)ch * h + y / 2) * w;
            float *dst = out + ((size_t)ch * 2 * h + y) * 2 * w;
            for (int x = 0; x < 2 * w; x++)
                dst[x] = src[x / 2];
        }
}

static lr_status denoise(lr_ctx *ctx, stream_net *net, const float *x, const float *d,
                         const int *t, const int *slot, int F, float *v, int window, int stride)
{
    lr_status st = ensure_buffers(ctx, net);
    if (st != LR_OK)
        return st;
    const int H = net->info.height, W = net->info.width;
    const int h1 = H / 2, w1 = W / 2, h2 = H / 4, w2 = W / 4;
    const int64_t hw0 = (int64_t)H * W, hw1 = (int64_t)h1 * w1, hw2 = (int64_t)h2 * w2;
    const int c0 = net->info.channels[0], c1 = net->info.channels[1], c2 = net->info.channels[2];
    time_embedding(net, t, F);

    /* conv_in on cat(x, d, reference) */
    for (int f = 0; f < F; f++) {
        float *in9 = net->tmp1;
        memcpy(in9, x + f * 3 * hw0, 3 * hw0 * sizeof *in9);
        memcpy(in9 + 3 * hw0, d + f * 3 * hw0, 3 * hw0 * sizeof *in9);
        memcpy(in9 + 6 * hw0, net->reference, 3 * hw0 * sizeof *in9);
        if ((st = conv(ctx, &net->conv_in, 1, in9, H, W, NULL, net->x0a + f * c0 * hw0)) != LR_OK)
            return st;
    }
#define MOTION(lvl, buf, P)                                                                  \
    if (net->info.temporal &&                                                                \
        (st = motion(ctx, net, &(lvl)->motion, buf, F, P, slot, window, stride)) != LR_OK)  \
        return st;
    /* down path */
    if ((st = res_block(ctx, net, &net->down[0].res, net->x0a, net->s0, F, H, W)) != LR_OK)
        return st;
    MOTION(&net->down[0], net->s0, hw0)
    for (int f = 0; f < F; f++)
        if ((st = conv(ctx, &net->down[0].resample, 2, net->s0 + f * c0 * hw0, H, W, NULL,
                       net->x1a + f * c0 * hw1)) != LR_OK)
            return st;
    if ((st = res_block(ctx, net, &net->down[1].res, net->x1a, net->s1, F, h1, w1)) != LR_OK)
        return st;
    MOTION(&net->down[1], net->s1, hw1)
    for (int f = 0; f < F; f++)
        if ((st = conv(ctx, &net->down[1].resample, 2, net->s1 + f * c1 * hw1, h1, w1, NULL,
                       net->x2a + f * c1 * hw2)) != LR_OK)
            return st;
    if ((st = res_block(ctx, net, &net->down[2].res, net->x2a, net->l2, F, h2, w2)) != LR_OK)
        return st;
    MOTION(&net->down[2], net->l2, hw2)
    /* up path: nearest x2, conv, then cat(h, skip) */
    for (int f = 0; f < F; f++) {
        upsample_nearest2(net->l2 + f * c2 * hw2, c2, h2, w2, net->tmp1);
        float *cat = net->u0 + f * 2 * c1 * hw1;
        if ((st = conv(ctx, &net->up[0].resample, 1, net->tmp1, h1, w1, NULL, cat)) != LR_OK)
            return st;
        memcpy(cat + c1 * hw1, net->s1 + f * c1 * hw1, c1 * hw1 * sizeof *cat);
    }
    if ((st = res_block(ctx, net, &net->up[0].res, net->u0, net->r0, F, h1, w1)) != LR_OK)
        return st;
    MOTION(&net->up[0], net->r0, hw1)
    for (int f = 0; f < F; f++) {
        upsample_nearest2(net->r0 + f * c1 * hw1, c1, h1, w1, net->tmp1);
        float *cat = net->u1 + f * 2 * c0 * hw0;
        if ((st = conv(ctx, &net->up[1].resample, 1, net->tmp1, H, W, NULL, cat)) != LR_OK)
            return st;
        memcpy(cat + c0 * hw0, net->s0 + f * c0 * hw0, c0 * hw0 * sizeof *cat);
    }
    float *r1 = net->x0a; /* free again */
    if ((st = res_block(ctx, net, &net->up[1].res, net->u1, r1, F, H, W)) != LR_OK)
        return st;
    MOTION(&net->up[1], r1, hw0)
#undef MOTION
    for (int f = 0; f < F; f++) {
        group_norm_silu(ctx, r1 + f * c0 * hw0, net->tmp1, c0, hw0, &net->norm_out);
        if ((st = conv(ctx, &net->conv_out, 1, net->tmp1, H, W, NULL, v + f * 3 * hw0)) != LR_OK)
            return st;
    }
    return LR_OK;
}

lr_status stream_denoise(lr_ctx *ctx, stream_net *net, const float *x, const float *d,
                         const int *t, const int *slot, int frames, float *v)
{
    if (!ctx)
        return LR_ERR_ARG;
    if (!net || !x || !d || !t || !slot || !v)
        return lr_fail(ctx, LR_ERR_ARG, "stream_denoise: NULL argument");
    if (frames < 1 || frames > net->info.groups * net->info.frames_per_group)
        return lr_fail(ctx, LR_ERR_ARG, "stream_denoise: %d frames (want 1..%d)", frames,
                       net->info.groups * net->info.frames_per_group);
    for (int f = 0; f < frames; f++)
        if (t[f] < 0 || t[f] >= N_TIMESTEPS || slot[f] < 0 || slot[f] >= MAX_SLOTS)
            return lr_fail(ctx, LR_ERR_ARG, "stream_denoise: frame %d: timestep %d or slot %d out "
                           "of range", f, t[f], slot[f]);
    return denoise(ctx, net, x, d, t, slot, frames, v, 0, 0);
}

/* ---- the ring ----------------------------------------------------------------------------- */

struct stream_state {
    stream_net *net;
    uint64_t seed;
    int window, stride;
    int G, p, H, W;
    size_t fsz;                   /* 3 * H * W */
    float *x, *d;                 /* ring slots [G][p][fsz] */
    int level[MAX_SLOTS];         /* per slot: index into levels (G: clean) */
    int count[MAX_SLOTS];
    int64_t first[MAX_SLOTS];
    int head, n_groups;
    float *pend;                  /* [p][fsz]: the group being collected, network range */
    int n_pend;
    int64_t n_in, n_out;
    float *cx, *cd, *cv;          /* one call's frames [G*p][fsz] */
    int ct[MAX_SLOTS], cs[MAX_SLOTS];
    float *small, *frame;         /* [3][ch][cw], [fsz] */
};

lr_status stream_create(lr_ctx *ctx, stream_net *net, uint64_t seed, stream_state **out)
{
    if (!ctx)
        return LR_ERR_ARG;
    if (!net || !out)
        return lr_fail(ctx, LR_ERR_ARG, "stream_create: NULL argument");
    *out = NULL;
    stream_state *s = calloc(1, sizeof *s);
    if (!s)
        return lr_fail(ctx, LR_ERR_NOMEM, "stream: out of memory");
    s->net = net;
    s->seed = seed;
    s->G = net->info.groups, s->p = net->info.frames_per_group;
    s->H = net->info.height, s->W = net->info.width;
    s->fsz = (size_t)3 * s->H * s->W;
    const size_t ring = (size_t)s->G * s->p * s->fsz;
    s->x = malloc(ring * sizeof *s->x);
    s->d = malloc(ring * sizeof *s->d);
    s->cx = malloc(ring * sizeof *s->cx);
    s->cd = malloc(ring * sizeof *s->cd);
    s->cv = malloc(ring * sizeof *s->cv);
    s->pend = malloc((size_t)s->p * s->fsz * sizeof *s->pend);
    s->small = malloc((size_t)3 * net->info.cond_width * net->info.cond_height * sizeof *s->small);
    s->frame = malloc(s->fsz * sizeof *s->frame);
    lr_status st = LR_OK;
    if (!s->x || !s->d || !s->cx || !s->cd || !s->cv || !s->pend || !s->small || !s->frame)
        st = lr_fail(ctx, LR_ERR_NOMEM, "stream: out of memory");
    if (st == LR_OK)
        st = ensure_buffers(ctx, net);
    if (st != LR_OK) {
        stream_free(s);
        return st;
    }
    *out = s;
    return LR_OK;
}

void stream_free(stream_state *s)
{
    if (!s)
        return;
    free(s->x);
    free(s->d);
    free(s->cx);
    free(s->cd);
    free(s->cv);
    free(s->pend);
    free(s->small);
    free(s->frame);
    free(s);
}

lr_status stream_set_window(lr_ctx *ctx, stream_state *s, int window, int stride)
{
    if (!ctx)
        return LR_ERR_ARG;
    if (!s || window < 0 || (window > 0 && (stride < 1 || stride > window)))
        return lr_fail(ctx, LR_ERR_ARG, "stream: window %d, stride %d (want 0, or stride in "
                       "1..window)", window, stride);
    s->window = window, s->stride = window ? stride : 0;
    return LR_OK;
}

int64_t stream_frames_in(const stream_state *s) { return s->n_in; }
int64_t stream_frames_out(const stream_state *s) { return s->n_out; }

int64_t stream_noise_frame(uint64_t seed, int window, int stride, int64_t k)
{
    if (window <= 0 || stride < 1 || stride > window || stride > 32)
        return k;
    while (k >= window) {
        const int64_t b = (k - window) / stride, o = (k - window) % stride;
        /* Fisher-Yates shuffle of 0..stride-1, words from Philox keyed by the seed with the
         * block in the counter (the top bit set: lr_normal_fill's counters never have it). */
        const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
        int perm[32];
        uint32_t words[4];
        for (int i = 0; i < stride; i++)
            perm[i] = i;
        for (int i = stride - 1; i > 0; i--) {
            const int n = stride - 1 - i;
            if (n % 4 == 0) {
                const uint32_t counter[4] = {(uint32_t)(n / 4), 0, (uint32_t)b,
                                             (uint32_t)((uint64_t)b >> 32) | 0x80000000u};
                lr_philox4x32(key, counter, words);
            }
            const int j = (int)(words[n % 4] % (uint32_t)(i + 1)), t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        k = b * stride + perm[o];
    }
    return k;
}

/* The pending group enters the ring at the top level, with its noise and driving signals. */
static lr_status push_group(lr_ctx *ctx, stream_state *s)
{
    const stream_info *in = &s->net->info;
    const int slot = (s->head + s->n_groups) % s->G;
    const lr_resize_desc aa = {LR_RESIZE_BILINEAR, 0, true}, plain = {LR_RESIZE_BILINEAR, 0, false};
    for (int i = 0; i < s->n_pend; i++) {
        const int64_t k = s->n_in - s->n_pend + i;
        float *x = s->x + ((size_t)slot * s->p + i) * s->fsz;
        float *d = s->d + ((size_t)slot * s->p + i) * s->fsz;
        lr_normal_fill(s->seed, (uint64_t)stream_noise_frame(s->seed, s->window, s->stride, k),
                       0, x, s->fsz);
        lr_status st = lr_resize(ctx, &aa, s->pend + i * s->fsz, 3, s->H, s->W, s->small,
                                 in->cond_height, in->cond_width);
        if (st == LR_OK)
            st = lr_resize(ctx, &plain, s->small, 3, in->cond_height, in->cond_width, d, s->H, s->W);
        if (st != LR_OK)
            return st;
    }
    s->level[slot] = 0;
    s->count[slot] = s->n_pend;
    s->first[slot] = s->n_in - s->n_pend;
    s->n_groups++;
    s->n_pend = 0;
    return LR_OK;
}

/* One denoiser call over the ring, every frame one level down, the oldest group out if clean. */
static lr_status step(lr_ctx *ctx, stream_state *s, stream_emit_fn emit, void *user)
{
    const int *levels = s->net->info.levels;
    int F = 0;
    for (int g = 0; g < s->n_groups; g++) {
        const int slot = (s->head + g) % s->G;
        const int rank = s->G - 1 - s->level[slot]; /* 0 for the lowest level */
        for (int i = 0; i < s->count[slot]; i++, F++) {
            memcpy(s->cx + F * s->fsz, s->x + ((size_t)slot * s->p + i) * s->fsz,
                   s->fsz * sizeof *s->cx);
            memcpy(s->cd + F * s->fsz, s->d + ((size_t)slot * s->p + i) * s->fsz,
                   s->fsz * sizeof *s->cd);
            s->ct[F] = levels[s->level[slot]];
            s->cs[F] = s->p * rank + i;
        }
    }
    lr_status st = denoise(ctx, s->net, s->cx, s->cd, s->ct, s->cs, F, s->cv, s->window, s->stride);
    if (st != LR_OK)
        return st;
    F = 0;
    for (int g = 0; g < s->n_groups; g++) {
        const int slot = (s->head + g) % s->G, li = s->level[slot];
        const double a = stream_alpha_bar(levels[li]);
        const double an = li + 1 < s->G ? stream_alpha_bar(levels[li + 1]) : 1.0;
        const float sa = (float)sqrt(a), sb = (float)sqrt(1 - a);
        const float san = (float)sqrt(an), sbn = (float)sqrt(1 - an);
        for (int i = 0; i < s->count[slot]; i++, F++) {
            float *x = s->x + ((size_t)slot * s->p + i) * s->fsz;
            const float *v = s->cv + F * s->fsz;
            for (size_t e = 0; e < s->fsz; e++) {
                const float x0 = sa * x[e] - sb * v[e], eps = sb * x[e] + sa * v[e];
                x[e] = san * x0 + sbn * eps;
            }
        }
        s->level[slot] = li + 1;
    }
    if (s->n_groups && s->level[s->head] == s->G) {
        const int slot = s->head;
        for (int i = 0; i < s->count[slot]; i++) {
            const float *x = s->x + ((size_t)slot * s->p + i) * s->fsz;
            for (size_t e = 0; e < s->fsz; e++) {
                float y = (x[e] + 1.0f) / 2.0f;
                s->frame[e] = y < 0.0f ? 0.0f : y > 1.0f ? 1.0f : y;
            }
            if (emit)
                emit(user, s->frame, s->first[slot] + i);
            s->n_out++;
        }
        s->head = (s->head + 1) % s->G;
        s->n_groups--;
    }
    return LR_OK;
}

lr_status stream_push(lr_ctx *ctx, stream_state *s, const float *rgb, int h, int w,
                      stream_emit_fn emit, void *user)
{
    return stream_push_frames(ctx, s, rgb, 1, h, w, emit, user);
}

lr_status stream_push_frames(lr_ctx *ctx, stream_state *s, const float *rgb, int n, int h, int w,
                             stream_emit_fn emit, void *user)
{
    if (!ctx)
        return LR_ERR_ARG;
    if (!s || (!rgb && n > 0) || n < 0 || h < 1 || w < 1)
        return lr_fail(ctx, LR_ERR_ARG, "stream_push: bad arguments (%d frames of %dx%d)", n, w, h);
    const lr_resize_desc aa = {LR_RESIZE_BILINEAR, 0, true};
    for (int f = 0; f < n; f++) {
        float *dst = s->pend + (size_t)s->n_pend * s->fsz;
        lr_status st = lr_resize(ctx, &aa, rgb + (size_t)f * 3 * h * w, 3, h, w, dst, s->H, s->W);
        if (st != LR_OK)
            return st;
        for (size_t e = 0; e < s->fsz; e++)
            dst[e] = dst[e] * 2.0f - 1.0f;
        s->n_pend++;
        s->n_in++;
        if (s->n_pend == s->p) {
            if ((st = push_group(ctx, s)) != LR_OK || (st = step(ctx, s, emit, user)) != LR_OK)
                return st;
        }
    }
    return LR_OK;
}

lr_status stream_finish(lr_ctx *ctx, stream_state *s, stream_emit_fn emit, void *user)
{
    if (!ctx)
        return LR_ERR_ARG;
    if (!s)
        return lr_fail(ctx, LR_ERR_ARG, "stream_finish: NULL stream");
    lr_status st;
    if (s->n_pend > 0 &&
        ((st = push_group(ctx, s)) != LR_OK || (st = step(ctx, s, emit, user)) != LR_OK))
        return st;
    while (s->n_groups > 0)
        if ((st = step(ctx, s, emit, user)) != LR_OK)
            return st;
    return LR_OK;
}
