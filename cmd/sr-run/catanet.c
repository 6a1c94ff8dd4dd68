/* CATANet (Liu et al., CVPR 2025: content-aware token aggregation for lightweight SR) as the
 * official code defines it (github.com/EquationWalker/CATANet, basicsr/archs/catanet_arch.py;
 * tools/catanet_torch.py is the PyTorch twin these results are tested against). Eval mode:
 *
 *     x0 = first_conv(img)                                        3x3, 3 -> dim
 *     per block i:  f = f + mid_convs[i](LRSA_i(TAB_i(f)))        3x3, dim -> dim
 *     out = last_conv(lrelu(shuffle(upconv(f + x0)))) + bilinear(img)
 *           (x4: two x2 stages upconv1, upconv2; x1: no upsampler and img itself as the base)
 *
 * TAB (token aggregation): tokens t = the h*w pixels (row-major), xn = LayerNorm(t); each
 * token joins the trained centre (buffer `means` [num_tokens][dim]) of highest cosine
 * similarity (first on a tie); tokens are sorted by centre, stably (ties keep image order: the
 * official argsort is unstable, so its order is unspecified) and cut into ng groups of
 * gs = min(N, group_size) (the sequence padded with its own last tokens backwards, position
 * N + t holding sorted token N - 1 - t). IASA: group g's queries attend to keys of groups g
 * and g + 1 (one softmax; an lr_attention block mask of gs x gs tiles), and separately to the
 * centres' keys and values (IRCA, to_k/to_v of `means`, precomputed at open); the two
 * outputs add, go back to image order, through proj and conv1x1, onto t; then
 * t += ConvFFN(LayerNorm(t)).
 * LRSA: overlapping ps x ps patches at stride ps - 2 (the last one flush with the border),
 * t_patch + Attention(LayerNorm(t_patch)) in each, summed where they overlap and halved per
 * overlap range exactly as the official patch_reverse does; then the same ConvFFN step.
 * ConvFFN: fc1, GELU, + GELU(depthwise 5x5 conv), fc2. LayerNorm eps 1e-5, exact (erf) GELU,
 * attention scale 1/sqrt(head dim).
 *
 * Small images: the official forward needs h, w >= max(patch_size), and for each TAB a token
 * count N outside (group_size, 1.5 group_size) (its key padding slices past the start
 * there). Smaller inputs are extended by mirroring (symmetric, edge repeated): height and
 * width to max(patch_size), then one row or column at a time to the smaller side (rows on a
 * tie) until every N is allowed; the body's output is cropped back and the bilinear base is
 * taken from the original. Larger inputs are unchanged.
 *
 * Model file (tools/catanet_torch.py fixtures/convert): the official state_dict names in F32
 * (F16/BF16 accepted), metadata arch "catanet", in_chans (3), upscale (1-4), dim, block_num,
 * qk_dim, mlp_dim, heads, and comma lists patch_size, num_tokens, group_size (one per block).
 * Deterministic for any thread count: every kernel used is, and the sort is stable. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "longrange/attention.h"
#include "longrange/conv.h"
#include "longrange/gemm.h"
#include "longrange/parallel.h"
#include "sr.h"

#define CAT_MAX_BLOCKS 64
#define CAT_LN_EPS 1e-5

typedef struct {
    const float *norm_w, *norm_b;   /* the PreNorm's LayerNorm */
    const float *fc1_w, *fc1_b;     /* [mlp][dim] */
    const float *dw_w, *dw_b;       /* depthwise [mlp][1][5][5] */
    const float *fc2_w, *fc2_b;     /* [dim][mlp] */
} cat_ffn;

typedef struct {
    int num_tokens, group_size, patch_size;
    /* TAB */
    const float *norm_w, *norm_b;
    const float *q_w, *k_w, *v_w, *proj_w;  /* iasa_attn */
    const float *conv1x1_w;                 /* [dim][dim][1][1] */
    cat_ffn mlp;
    float *centre_unit;                     /* means / |means| [num_tokens][dim] */
    float *k_global, *v_global;             /* irca to_k(means) [nt][qk], to_v(means) [nt][dim] */
    /* LRSA */
    const float *a_norm_w, *a_norm_b, *a_q_w, *a_k_w, *a_v_w, *a_proj_w;
    cat_ffn ff;
    const float *mid_w, *mid_b;
} cat_block;

typedef struct {
    int dim, qk_dim, mlp_dim, heads, blocks, scale, in_chans, max_patch;
    const float *first_w, *first_b, *up1_w, *up1_b, *up2_w, *up2_b, *last_w, *last_b;
    cat_block blk[CAT_MAX_BLOCKS];
    char name[32];
} catanet;

/* ---- work space and row-parallel loops ------------------------------------------------------ */

static float *alloc_floats(size_t n)
{
    return n > SIZE_MAX / sizeof(float) ? NULL : malloc((n ? n : 1) * sizeof(float));
}

/* One allocation per forward, carved anew by each step (fresh large mallocs per step cost
 * more in page faults than the arithmetic they hold). */
typedef struct {
    float *base;
    size_t cap, used; /* floats */
} cat_pool;

static size_t padded(size_t n) { return (n + 15) & ~(size_t)15; } /* 64-byte granules */

static float *take(cat_pool *p, size_t n)
{
    n = padded(n);
    if (n > p->cap - p->used)
        return NULL;
    float *r = p->base + p->used;
    p->used += n;
    return r;
}

/* Token-wise work cut into fixed blocks of rows (independent of the thread count, and every
 * row written by one task only, so results are the same for any -j). */
enum { ROWS_PER_TASK = 64 };

typedef struct row_job row_job;
struct row_job {
    void (*rows)(const row_job *j, int64_t lo, int64_t hi);
    int64_t n;            /* rows (tasks cover [0, n)) */
    int64_t tokens;       /* plane length for the plane <-> token transposes */
    int c, nt;
    const float *x, *x2, *w, *b;
    float *y;
    const int64_t *order;
    int *belong;
    /* LRSA */
    const int *rows_at, *cols_at;
    const float *row_w, *col_w;
    int nr, nc, ps, width;
};

static void row_task(void *arg, size_t task, int thread)
{
    (void)thread;
    const row_job *j = arg;
    int64_t lo = (int64_t)task * ROWS_PER_TASK;
    int64_t hi = lo + ROWS_PER_TASK < j->n ? lo + ROWS_PER_TASK : j->n;
    j->rows(j, lo, hi);
}

static void for_rows(lr_ctx *ctx, const row_job *j)
{
    if (j->n > 0)
        lr_parallel_for(ctx, (size_t)((j->n + ROWS_PER_TASK - 1) / ROWS_PER_TASK), row_task,
                        (void *)j);
}

static inline float gelu(float v) { return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f)); }

/* y = LayerNorm(x) (eps 1e-5, statistics in double) */
static void ln_rows(const row_job *j, int64_t lo, int64_t hi)
{
    int c = j->c;
    for (int64_t i = lo; i < hi; i++) {
        const float *r = j->x + i * c;
        double mean = 0, var = 0;
        for (int e = 0; e < c; e++)
            mean += r[e];
        mean /= c;
        for (int e = 0; e < c; e++)
            var += (r[e] - mean) * (r[e] - mean);
        float inv = (float)(1.0 / sqrt(var / c + CAT_LN_EPS)), mu = (float)mean;
        for (int e = 0; e < c; e++)
            j->y[i * c + e] = (r[e] - mu) * inv * j->w[e] + j->b[e];
    }
}

static void layer_norm(lr_ctx *ctx, const float *x, int64_t n, int c, const float *w,
                       const float *b, float *y)
{
    row_job j = {.rows = ln_rows, .n = n, .c = c, .x = x, .w = w, .b = b, .y = y};
    for_rows(ctx, &j);
}

/* y += b (per column), then GELU when x2 is non-NULL (a marker only). */
static void bias_rows(const row_job *j, int64_t lo, int64_t hi)
{
    int c = j->c;
    for (int64_t i = lo; i < hi; i++) {
        float *r = j->y + i * c;
        if (j->b)
            for (int e = 0; e < c; e++)
                r[e] += j->b[e];
        if (j->x2)
            for (int e = 0; e < c; e++)
                r[e] = gelu(r[e]);
    }
}

/* y[n][out] = x[n][in] w[out][in]^T + b, then GELU if asked: a PyTorch Linear. */
static lr_status linear_act(lr_ctx *ctx, const float *x, int64_t n, int in, const float *w,
                            const float *b, int out, bool gelu_after, float *y)
{
    lr_status s = lr_sgemm(ctx, LR_NO_TRANS, LR_TRANS, n, out, in, 1.0f, x, in, w, in, 0.0f, y, out);
    if (s == LR_OK && (b || gelu_after)) {
        row_job j = {.rows = bias_rows, .n = n, .c = out, .b = b, .y = y,
                     .x2 = gelu_after ? y : NULL};
        for_rows(ctx, &j);
    }
    return s;
}

static lr_status linear(lr_ctx *ctx, const float *x, int64_t n, int in, const float *w,
                        const float *b, int out, float *y)
{
    return linear_act(ctx, x, n, in, w, b, out, false, y);
}

/* y += x (rows of c) */
static void add_rows(const row_job *j, int64_t lo, int64_t hi)
{
    for (int64_t e = lo * j->c; e < hi * j->c; e++)
        j->y[e] += j->x[e];
}

static void add_into(lr_ctx *ctx, float *y, const float *x, int64_t n, int c)
{
    row_job j = {.rows = add_rows, .n = n, .c = c, .x = x, .y = y};
    for_rows(ctx, &j);
}

/* tokens x [n][c] -> planes y [c][n] */
static void to_planes_rows(const row_job *j, int64_t lo, int64_t hi)
{
    for (int ch = 0; ch < j->c; ch++)
        for (int64_t i = lo; i < hi; i++)
            j->y[ch * j->tokens + i] = j->x[i * j->c + ch];
}

/* planes x [c][n] -> tokens y [n][c]; with x2 set (a marker), y += GELU(x) instead */
static void from_planes_rows(const row_job *j, int64_t lo, int64_t hi)
{
    for (int ch = 0; ch < j->c; ch++)
        for (int64_t i = lo; i < hi; i++) {
            float v = j->x[ch * j->tokens + i];
            if (j->x2)
                j->y[i * j->c + ch] += gelu(v);
            else
                j->y[i * j->c + ch] = v;
        }
}

static void to_planes(lr_ctx *ctx, const float *tokens, int64_t n, int c, float *planes)
{
    row_job j = {.rows = to_planes_rows, .n = n, .tokens = n, .c = c, .x = tokens, .y = planes};
    for_rows(ctx, &j);
}

static void from_planes(lr_ctx *ctx, const float *planes, int64_t n, int c, bool add_gelu,
                        float *tokens)
{
    row_job j = {.rows = from_planes_rows, .n = n, .tokens = n, .c = c, .x = planes,
                 .y = tokens, .x2 = add_gelu ? planes : NULL};
    for_rows(ctx, &j);
}

/* A [B, H, L, d] view of rows of width `row` holding H heads of d channels each. */
static lr_tensor heads_view(float *data, int64_t batches, int heads, int64_t len, int d, int64_t row)
{
    lr_tensor t;
    memset(&t, 0, sizeof t);
    t.data = data;
    t.dtype = LR_F32;
    t.ndim = 4;
    t.shape[0] = batches, t.shape[1] = heads, t.shape[2] = len, t.shape[3] = d;
    t.stride[0] = len * row, t.stride[1] = d, t.stride[2] = row, t.stride[3] = 1;
    return t;
}

static lr_conv2d_desc conv_same(int k)
{
    lr_conv2d_desc d = lr_conv2d_default(k, k);
    d.pad_top = d.pad_left = d.pad_bottom = d.pad_right = k / 2;
    return d;
}

#define TAKE(var, count)                                                                  \
    do {                                                                                  \
        if (!((var) = take(pool, (size_t)(count))))                                       \
            return lr_fail(ctx, LR_ERR_INTERNAL, "catanet: work space too small");        \
    } while (0)

/* ---- ConvFFN ------------------------------------------------------------------------------- */

static size_t ffn_need(const catanet *m, int64_t n)
{
    return padded((size_t)n * m->dim) * 2 + padded((size_t)n * m->mlp_dim) * 3;
}

/* t[n][dim] += ConvFFN(LayerNorm(t)) on an h x w image of tokens. */
static lr_status ffn_step(lr_ctx *ctx, const catanet *m, const cat_ffn *f, cat_pool *pool,
                          float *t, int h, int w)
{
    int64_t n = (int64_t)h * w;
    int c = m->dim, hid = m->mlp_dim;
    float *xn, *a, *planes, *dw, *y;
    pool->used = 0;
    TAKE(xn, n * c);
    TAKE(a, n * hid);
    TAKE(planes, n * hid);
    TAKE(dw, n * hid);
    TAKE(y, n * c);
    layer_norm(ctx, t, n, c, f->norm_w, f->norm_b, xn);
    lr_status s = linear_act(ctx, xn, n, c, f->fc1_w, f->fc1_b, hid, true, a);
    if (s != LR_OK)
        return s;
    to_planes(ctx, a, n, hid, planes);
    lr_conv2d_desc d = conv_same(5);
    d.groups = hid;
    if ((s = lr_conv2d(ctx, &d, planes, hid, h, w, f->dw_w, f->dw_b, hid, dw)) != LR_OK)
        return s;
    from_planes(ctx, dw, n, hid, true, a);
    if ((s = linear(ctx, a, n, hid, f->fc2_w, f->fc2_b, c, y)) != LR_OK)
        return s;
    add_into(ctx, t, y, n, c);
    return LR_OK;
}

/* ---- TAB ----------------------------------------------------------------------------------- */

typedef struct {
    int64_t gs, ng, lq, lk;
} cat_groups;

static cat_groups groups_of(int64_t n, int group_size)
{
    cat_groups g;
    g.gs = n < group_size ? n : group_size;
    g.ng = (n + g.gs - 1) / g.gs;
    g.lq = g.ng * g.gs;
    g.lk = g.lq + g.gs;
    return g;
}

static size_t tab_need(const catanet *m, const cat_block *b, int64_t n)
{
    cat_groups g = groups_of(n, b->group_size);
    size_t c = (size_t)m->dim, qk = (size_t)m->qk_dim;
    return padded(n * c) * 4 + padded((size_t)n * b->num_tokens) + padded(g.lk * c) * 2 +
           padded(g.lq * qk) + padded(g.lk * qk) + padded(g.lq * c) * 2;
}

/* unit rows of x (F.normalize: x / max(|x|, 1e-12)) */
static void unit_rows(const row_job *j, int64_t lo, int64_t hi)
{
    int c = j->c;
    for (int64_t i = lo; i < hi; i++) {
        double ss = 0;
        for (int e = 0; e < c; e++)
            ss += (double)j->x[i * c + e] * j->x[i * c + e];
        double norm = sqrt(ss);
        float inv = (float)(1.0 / (norm > 1e-12 ? norm : 1e-12));
        for (int e = 0; e < c; e++)
            j->y[i * c + e] = j->x[i * c + e] * inv;
    }
}

/* belong[i] = the first index of the largest score of row i */
static void argmax_rows(const row_job *j, int64_t lo, int64_t hi)
{
    for (int64_t i = lo; i < hi; i++) {
        const float *r = j->x + i * j->nt;
        int best = 0;
        for (int e = 1; e < j->nt; e++)
            if (r[e] > r[best])
                best = e;
        j->belong[i] = best;
    }
}

/* y[r] = x[order[r]] for the lk padded rows: row n + t repeats sorted row n - 1 - t */
static void gather_rows(const row_job *j, int64_t lo, int64_t hi)
{
    int64_t n = j->tokens;
    for (int64_t r = lo; r < hi; r++) {
        int64_t src = r < n ? j->order[r] : j->order[2 * n - 1 - r];
        memcpy(j->y + r * j->c, j->x + src * j->c, (size_t)j->c * sizeof(float));
    }
}

/* y[order[r]] = x[r] + x2[r]: the two attentions' outputs back in image order */
static void scatter_rows(const row_job *j, int64_t lo, int64_t hi)
{
    int c = j->c;
    for (int64_t r = lo; r < hi; r++)
        for (int e = 0; e < c; e++)
            j->y[j->order[r] * c + e] = j->x[r * c + e] + j->x2[r * c + e];
}

static lr_status tab_step(lr_ctx *ctx, const catanet *m, const cat_block *b, cat_pool *pool,
                          float *t, int h, int w)
{
    int64_t n = (int64_t)h * w;
    int c = m->dim, qk = m->qk_dim, nt = b->num_tokens, H = m->heads;
    cat_groups g = groups_of(n, b->group_size);
    if (n - (g.lq - n) - g.gs < 0) /* ruled out by the input extension */
        return lr_fail(ctx, LR_ERR_INTERNAL, "catanet: %lld tokens cannot be grouped by %lld",
                       (long long)n, (long long)g.gs);
    float *xn, *unit, *scores, *xp, *q, *k, *v, *o1, *o2, *y;
    pool->used = 0;
    TAKE(xn, n * c);
    TAKE(unit, n * c);
    TAKE(scores, n * nt);
    TAKE(xp, g.lk * c);
    TAKE(q, g.lq * qk);
    TAKE(k, g.lk * qk);
    TAKE(v, g.lk * c);
    TAKE(o1, g.lq * c);
    TAKE(o2, g.lq * c);
    TAKE(y, n * c);
    int64_t *order = malloc((size_t)n * sizeof *order);
    int *belong = malloc((size_t)n * sizeof *belong);
    int64_t *start = calloc((size_t)nt + 1, sizeof *start);
    uint8_t *mask = calloc((size_t)(g.ng * (g.ng + 1)), 1);
    lr_status s = LR_OK;
    if (!order || !belong || !start || !mask) {
        s = lr_fail(ctx, LR_ERR_NOMEM, "catanet: out of memory for a %dx%d image", h, w);
        goto done;
    }
    layer_norm(ctx, t, n, c, b->norm_w, b->norm_b, xn);

    /* Each token's centre: the largest cosine similarity, the first one on a tie. */
    row_job ju = {.rows = unit_rows, .n = n, .c = c, .x = xn, .y = unit};
    for_rows(ctx, &ju);
    if ((s = lr_sgemm(ctx, LR_NO_TRANS, LR_TRANS, n, nt, c, 1.0f, unit, c, b->centre_unit, c,
                      0.0f, scores, nt)) != LR_OK)
        goto done;
    row_job ja = {.rows = argmax_rows, .n = n, .nt = nt, .x = scores, .belong = belong};
    for_rows(ctx, &ja);
    /* Stable counting sort by centre. */
    for (int64_t i = 0; i < n; i++)
        start[belong[i] + 1]++;
    for (int e = 0; e < nt; e++)
        start[e + 1] += start[e];
    for (int64_t i = 0; i < n; i++)
        order[start[belong[i]]++] = i;

    /* Sorted tokens, padded with the last ones backwards up to lk rows; q, k, v of them. */
    row_job jg = {.rows = gather_rows, .n = g.lk, .tokens = n, .c = c, .x = xn, .y = xp,
                  .order = order};
    for_rows(ctx, &jg);
    if ((s = linear(ctx, xp, g.lq, c, b->q_w, NULL, qk, q)) != LR_OK ||
        (s = linear(ctx, xp, g.lk, c, b->k_w, NULL, qk, k)) != LR_OK ||
        (s = linear(ctx, xp, g.lk, c, b->v_w, NULL, c, v)) != LR_OK)
        goto done;

    /* Group i's queries see the keys of groups i and i + 1; separately, all the centres. */
    for (int64_t i = 0; i < g.ng; i++)
        mask[i * (g.ng + 1) + i] = mask[i * (g.ng + 1) + i + 1] = 1;
    int64_t mshape[3] = {1, g.ng, g.ng + 1};
    lr_tensor mt = lr_tensor_from(mask, LR_U8, 3, mshape);
    lr_attn_params p = lr_attn_default_params();
    p.block_mask = &mt;
    p.block_q = p.block_k = g.gs;
    int dq = qk / H, dv = c / H;
    lr_tensor tq = heads_view(q, 1, H, g.lq, dq, qk), tk = heads_view(k, 1, H, g.lk, dq, qk);
    lr_tensor tv = heads_view(v, 1, H, g.lk, dv, c), to1 = heads_view(o1, 1, H, g.lq, dv, c);
    if ((s = lr_attention(ctx, &p, &tq, &tk, &tv, &to1)) != LR_OK)
        goto done;
    lr_tensor tkg = heads_view(b->k_global, 1, H, nt, dq, qk);
    lr_tensor tvg = heads_view(b->v_global, 1, H, nt, dv, c);
    lr_tensor to2 = heads_view(o2, 1, H, g.lq, dv, c);
    if ((s = lr_attention(ctx, NULL, &tq, &tkg, &tvg, &to2)) != LR_OK)
        goto done;
    row_job js = {.rows = scatter_rows, .n = n, .c = c, .x = o1, .x2 = o2, .y = y, .order = order};
    for_rows(ctx, &js);
    /* proj, then conv1x1 (a per-token linear map); xn and unit are free again */
    if ((s = linear(ctx, y, n, c, b->proj_w, NULL, c, xn)) != LR_OK ||
        (s = linear(ctx, xn, n, c, b->conv1x1_w, NULL, c, unit)) != LR_OK)
        goto done;
    add_into(ctx, t, unit, n, c);
done:
    free(order), free(belong), free(start), free(mask);
    return s;
}

/* ---- LRSA ---------------------------------------------------------------------------------- */

/* Patch starts along an axis of n >= ps (the official patch_divide: stride ps - 2, the last
 * patch flush with the end; an axis of exactly ps has one patch), and the weight of each
 * position after patch_reverse's halvings. Returns the patch count. */
static int patch_axis(int n, int ps, int *starts, float *weight)
{
    int step = n == ps ? ps : ps - 2, count = 0;
    for (int i = 0; i < n + step - ps; i += step)
        if (starts)
            starts[count++] = i + ps > n ? n - ps : i;
        else
            count++;
    if (!weight)
        return count;
    for (int i = 0; i < n; i++)
        weight[i] = 1.0f;
    for (int i = step; i < n + step - ps; i += step) {
        int lo = i + ps > n ? n - ps : i, hi = i + ps - step;
        for (int y = lo; y < hi; y++)
            weight[y] *= 0.5f;
    }
    return count;
}

static size_t lrsa_need(const catanet *m, const cat_block *b, int h, int w)
{
    size_t len = (size_t)b->patch_size * b->patch_size;
    size_t rows = (size_t)patch_axis(h, b->patch_size, NULL, NULL) *
                  (size_t)patch_axis(w, b->patch_size, NULL, NULL) * len;
    return padded(rows * m->dim) * 5 + padded(rows * m->qk_dim) * 2;
}

/* Copies patch p (row-major over the nr x nc grid) out of the token image x. */
static void patch_gather_rows(const row_job *j, int64_t lo, int64_t hi)
{
    int ps = j->ps, c = j->c;
    for (int64_t p = lo; p < hi; p++) {
        int pi = (int)(p / j->nc), pj = (int)(p % j->nc);
        for (int y = 0; y < ps; y++)
            memcpy(j->y + (p * ps * ps + (int64_t)y * ps) * c,
                   j->x + ((int64_t)(j->rows_at[pi] + y) * j->width + j->cols_at[pj]) * c,
                   (size_t)ps * c * sizeof(float));
    }
}

/* Image row r of the patch sum (x + x2 = residual + attention), patches added in grid order
 * as the official patch_reverse does, then its halvings. */
static void patch_merge_rows(const row_job *j, int64_t lo, int64_t hi)
{
    int ps = j->ps, c = j->c;
    int64_t len = (int64_t)ps * ps, wc = (int64_t)j->width * c;
    for (int64_t r = lo; r < hi; r++) {
        float *dst = j->y + r * wc;
        memset(dst, 0, (size_t)wc * sizeof(float));
        for (int pi = 0; pi < j->nr; pi++) {
            int y = (int)r - j->rows_at[pi];
            if (y < 0 || y >= ps)
                continue;
            for (int pj = 0; pj < j->nc; pj++) {
                int64_t src = (((int64_t)pi * j->nc + pj) * len + (int64_t)y * ps) * c;
                float *d = dst + (int64_t)j->cols_at[pj] * c;
                for (int64_t e = 0; e < (int64_t)ps * c; e++)
                    d[e] += j->x2[src + e] + j->x[src + e];
            }
        }
        for (int x = 0; x < j->width; x++) {
            float f = j->row_w[r] * j->col_w[x];
            for (int e = 0; e < c; e++)
                dst[(int64_t)x * c + e] *= f;
        }
    }
}

static lr_status lrsa_step(lr_ctx *ctx, const catanet *m, const cat_block *b, cat_pool *pool,
                           float *t, int h, int w)
{
    int c = m->dim, qk = m->qk_dim, H = m->heads, ps = b->patch_size;
    int64_t len = (int64_t)ps * ps;
    int *rows = malloc((size_t)h * sizeof *rows), *cols = malloc((size_t)w * sizeof *cols);
    float *row_w = malloc((size_t)h * sizeof *row_w), *col_w = malloc((size_t)w * sizeof *col_w);
    lr_status s = LR_OK;
    if (!rows || !cols || !row_w || !col_w) {
        s = lr_fail(ctx, LR_ERR_NOMEM, "catanet: out of memory for a %dx%d image", h, w);
        goto done;
    }
    int nr = patch_axis(h, ps, rows, row_w), nc = patch_axis(w, ps, cols, col_w);
    int64_t np = (int64_t)nr * nc, total = np * len;
    pool->used = 0;
    float *patches = take(pool, total * c), *pn = take(pool, total * c), *q = take(pool, total * qk);
    float *k = take(pool, total * qk), *v = take(pool, total * c), *o = take(pool, total * c);
    float *r = take(pool, total * c);
    if (!r) {
        s = lr_fail(ctx, LR_ERR_INTERNAL, "catanet: work space too small");
        goto done;
    }
    row_job jg = {.rows = patch_gather_rows, .n = np, .c = c, .ps = ps, .nr = nr, .nc = nc,
                  .width = w, .rows_at = rows, .cols_at = cols, .x = t, .y = patches};
    for_rows(ctx, &jg);
    layer_norm(ctx, patches, total, c, b->a_norm_w, b->a_norm_b, pn);
    if ((s = linear(ctx, pn, total, c, b->a_q_w, NULL, qk, q)) != LR_OK ||
        (s = linear(ctx, pn, total, c, b->a_k_w, NULL, qk, k)) != LR_OK ||
        (s = linear(ctx, pn, total, c, b->a_v_w, NULL, c, v)) != LR_OK)
        goto done;
    int dq = qk / H, dv = c / H;
    lr_tensor tq = heads_view(q, np, H, len, dq, qk), tk = heads_view(k, np, H, len, dq, qk);
    lr_tensor tv = heads_view(v, np, H, len, dv, c), to = heads_view(o, np, H, len, dv, c);
    if ((s = lr_attention(ctx, NULL, &tq, &tk, &tv, &to)) != LR_OK ||
        (s = linear(ctx, o, total, c, b->a_proj_w, NULL, c, r)) != LR_OK)
        goto done;
    row_job jm = {.rows = patch_merge_rows, .n = h, .c = c, .ps = ps, .nr = nr, .nc = nc,
                  .width = w, .rows_at = rows, .cols_at = cols, .row_w = row_w, .col_w = col_w,
                  .x = patches, .x2 = r, .y = t};
    for_rows(ctx, &jm);
done:
    free(rows), free(cols), free(row_w), free(col_w);
    return s;
}

/* ---- the network --------------------------------------------------------------------------- */

static bool tokens_allowed(int64_t n, int group_size)
{
    cat_groups g = groups_of(n, group_size);
    return 2 * n >= (g.ng + 1) * g.gs;
}

/* The input extension (see the top of the file). */
static void extended_size(const catanet *m, int h, int w, int *hp, int *wp)
{
    *hp = h > m->max_patch ? h : m->max_patch;
    *wp = w > m->max_patch ? w : m->max_patch;
    for (;;) {
        bool ok = true;
        for (int i = 0; i < m->blocks && ok; i++)
            ok = tokens_allowed((int64_t)*hp * *wp, m->blk[i].group_size);
        if (ok)
            return;
        if (*hp <= *wp)
            ++*hp;
        else
            ++*wp;
    }
}

static int mirror(int i, int n)
{
    i %= 2 * n;
    return i < n ? i : 2 * n - 1 - i;
}

/* PyTorch interpolate(scale_factor=s, mode="bilinear", align_corners=False), added to out. */
static void add_bilinear(const float *in, int c, int h, int w, int s, float *out)
{
    int ho = h * s, wo = w * s;
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < ho; y++) {
            double sy = (y + 0.5) / s - 0.5;
            if (sy < 0)
                sy = 0;
            int y0 = (int)sy, y1 = y0 + (y0 < h - 1);
            float fy = (float)(sy - y0);
            const float *r0 = in + ((size_t)ch * h + y0) * w, *r1 = in + ((size_t)ch * h + y1) * w;
            float *dst = out + ((size_t)ch * ho + y) * wo;
            for (int x = 0; x < wo; x++) {
                double sx = (x + 0.5) / s - 0.5;
                if (sx < 0)
                    sx = 0;
                int x0 = (int)sx, x1 = x0 + (x0 < w - 1);
                float fx = (float)(sx - x0);
                float top = r0[x0] + (r0[x1] - r0[x0]) * fx, bot = r1[x0] + (r1[x1] - r1[x0]) * fx;
                dst[x] += top + (bot - top) * fy;
            }
        }
}

static lr_status catanet_forward(lr_ctx *ctx, const sr_net *net, const float *in, int h, int w,
                                 float *out)
{
    const catanet *m = net->impl;
    if (!in || !out || h < 1 || w < 1)
        return lr_fail(ctx, LR_ERR_ARG, "catanet: bad input (%dx%d)", h, w);
    int hp, wp, c = m->dim, cin = m->in_chans, sc = m->scale;
    extended_size(m, h, w, &hp, &wp);
    int64_t n = (int64_t)hp * wp;
    if (n > ((int64_t)1 << 36) / (m->mlp_dim + c * sc * sc + 64))
        return lr_fail(ctx, LR_ERR_NOMEM, "catanet: a %dx%d input is too large", h, w);
    size_t need = ffn_need(m, n);
    for (int i = 0; i < m->blocks; i++) {
        size_t a = tab_need(m, &m->blk[i], n), b = lrsa_need(m, &m->blk[i], hp, wp);
        need = a > need ? a : need;
        need = b > need ? b : need;
    }
    int up_ch = sc == 4 ? 4 * c : sc * sc * c;
    cat_pool pool = {alloc_floats(need), need, 0};
    float *ext = alloc_floats((size_t)n * cin), *x0 = alloc_floats((size_t)n * c);
    float *feat = alloc_floats((size_t)n * c), *tok = alloc_floats((size_t)n * c);
    float *mid = alloc_floats((size_t)n * c);
    float *up = alloc_floats((size_t)n * (size_t)up_ch * (sc == 4 ? 4 : 1));
    float *big = alloc_floats((size_t)n * c * sc * sc), *last = alloc_floats((size_t)n * cin * sc * sc);
    lr_status s = LR_OK;
    if (!pool.base || !ext || !x0 || !feat || !tok || !mid || !up || !big || !last) {
        s = lr_fail(ctx, LR_ERR_NOMEM, "catanet: out of memory for a %dx%d input", h, w);
        goto done;
    }
    for (int ch = 0; ch < cin; ch++)
        for (int y = 0; y < hp; y++)
            for (int x = 0; x < wp; x++)
                ext[((size_t)ch * hp + y) * wp + x] = in[((size_t)ch * h + mirror(y, h)) * w + mirror(x, w)];
    lr_conv2d_desc d3 = conv_same(3);
    if ((s = lr_conv2d(ctx, &d3, ext, cin, hp, wp, m->first_w, m->first_b, c, x0)) != LR_OK)
        goto done;
    memcpy(feat, x0, (size_t)n * c * sizeof(float));
    for (int i = 0; i < m->blocks; i++) {
        const cat_block *b = &m->blk[i];
        from_planes(ctx, feat, n, c, false, tok);
        if ((s = tab_step(ctx, m, b, &pool, tok, hp, wp)) != LR_OK ||
            (s = ffn_step(ctx, m, &b->mlp, &pool, tok, hp, wp)) != LR_OK ||
            (s = lrsa_step(ctx, m, b, &pool, tok, hp, wp)) != LR_OK ||
            (s = ffn_step(ctx, m, &b->ff, &pool, tok, hp, wp)) != LR_OK)
            goto done;
        to_planes(ctx, tok, n, c, mid);
        if ((s = lr_conv2d(ctx, &d3, mid, c, hp, wp, b->mid_w, b->mid_b, c, tok)) != LR_OK)
            goto done;
        add_into(ctx, feat, tok, n, c);
    }
    add_into(ctx, feat, x0, n, c);

    /* Upsampler; LeakyReLU is elementwise, so it is fused into the conv before the shuffle. */
    lr_conv2d_desc du = conv_same(3);
    du.act = LR_ACT_LEAKY_RELU;
    du.act_alpha = 0.1f;
    const float *body = feat;
    int bh = hp, bw = wp;
    if (sc == 4) {
        if ((s = lr_conv2d(ctx, &du, feat, c, hp, wp, m->up1_w, m->up1_b, 4 * c, up)) != LR_OK ||
            (s = lr_pixel_shuffle(ctx, up, c, hp, wp, 2, big)) != LR_OK ||
            (s = lr_conv2d(ctx, &du, big, c, 2 * hp, 2 * wp, m->up2_w, m->up2_b, 4 * c, up)) != LR_OK ||
            (s = lr_pixel_shuffle(ctx, up, c, 2 * hp, 2 * wp, 2, big)) != LR_OK)
            goto done;
        body = big, bh = 4 * hp, bw = 4 * wp;
    } else if (sc > 1) {
        if ((s = lr_conv2d(ctx, &du, feat, c, hp, wp, m->up1_w, m->up1_b, up_ch, up)) != LR_OK ||
            (s = lr_pixel_shuffle(ctx, up, c, hp, wp, sc, big)) != LR_OK)
            goto done;
        body = big, bh = sc * hp, bw = sc * wp;
    }
    if ((s = lr_conv2d(ctx, &d3, body, c, bh, bw, m->last_w, m->last_b, cin, last)) != LR_OK)
        goto done;
    int ho = h * sc, wo = w * sc;
    for (int ch = 0; ch < cin; ch++)
        for (int y = 0; y < ho; y++)
            memcpy(out + ((size_t)ch * ho + y) * wo, last + ((size_t)ch * bh + y) * bw,
                   (size_t)wo * sizeof(float));
    if (sc == 1)
        for (size_t e = 0; e < (size_t)cin * h * w; e++)
            out[e] += in[e];
    else
        add_bilinear(in, cin, h, w, sc, out);
done:
    free(pool.base);
    free(ext), free(x0), free(feat), free(tok), free(mid), free(up), free(big), free(last);
    return s;
}

/* ---- opening --------------------------------------------------------------------------------- */

static void catanet_close(sr_net *net)
{
    if (!net)
        return;
    catanet *m = net->impl;
    if (m)
        for (int i = 0; i < m->blocks; i++) {
            free(m->blk[i].centre_unit);
            free(m->blk[i].k_global);
            free(m->blk[i].v_global);
        }
    free(m);
    free(net);
}

/* A list of `count` integers in [lo, hi]: "16,20,24" or "[16, 20, 24]". */
static lr_status meta_list(lr_ctx *ctx, const lr_model *file, const char *key, int count, int lo,
                           int hi, int *out)
{
    const char *text = lr_model_meta(file, key);
    if (!text)
        return lr_fail(ctx, LR_ERR_MODEL, "%s: catanet metadata has no %s", lr_model_path(file), key);
    const char *p = text;
    bool bracket = false;
    while (*p == ' ')
        p++;
    if (*p == '[')
        bracket = true, p++;
    for (int i = 0; i < count; i++) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < lo || v > hi)
            break;
        out[i] = (int)v;
        for (p = end; *p == ' '; p++)
            ;
        if (i < count - 1) {
            if (*p != ',')
                break;
            p++;
        } else {
            if (bracket && *p == ']')
                p++;
            else if (bracket)
                break;
            while (*p == ' ')
                p++;
            if (!*p)
                return LR_OK;
        }
    }
    return lr_fail(ctx, LR_ERR_MODEL, "%s: catanet %s '%s': expected %d integers in %d..%d",
                   lr_model_path(file), key, text, count, lo, hi);
}

/* Tensor `prefix` + `name` with the given shape (trailing -2 ends the shape). */
static lr_status get(lr_ctx *ctx, const lr_model *file, const char *prefix, const char *name,
                     const float **out, int64_t d0, int64_t d1, int64_t d2, int64_t d3)
{
    char full[160];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    int64_t shape[4] = {d0, d1, d2, d3};
    int ndim = 1;
    while (ndim < 4 && shape[ndim] != -2)
        ndim++;
    lr_tensor t;
    lr_status s = lr_model_get_f32(ctx, file, full, ndim, shape, &t);
    if (s == LR_OK)
        *out = t.data;
    return s;
}

#define NO -2

static lr_status get_ffn(lr_ctx *ctx, const lr_model *file, const char *prefix, int c, int hid,
                         cat_ffn *f)
{
    lr_status s;
    if ((s = get(ctx, file, prefix, "norm.weight", &f->norm_w, c, NO, NO, NO)) != LR_OK ||
        (s = get(ctx, file, prefix, "norm.bias", &f->norm_b, c, NO, NO, NO)) != LR_OK ||
        (s = get(ctx, file, prefix, "fn.fc1.weight", &f->fc1_w, hid, c, NO, NO)) != LR_OK ||
        (s = get(ctx, file, prefix, "fn.fc1.bias", &f->fc1_b, hid, NO, NO, NO)) != LR_OK ||
        (s = get(ctx, file, prefix, "fn.dwconv.depthwise_conv.0.weight", &f->dw_w, hid, 1, 5, 5)) != LR_OK ||
        (s = get(ctx, file, prefix, "fn.dwconv.depthwise_conv.0.bias", &f->dw_b, hid, NO, NO, NO)) != LR_OK ||
        (s = get(ctx, file, prefix, "fn.fc2.weight", &f->fc2_w, c, hid, NO, NO)) != LR_OK ||
        (s = get(ctx, file, prefix, "fn.fc2.bias", &f->fc2_b, c, NO, NO, NO)) != LR_OK)
        return s;
    return LR_OK;
}

static lr_status open_block(lr_ctx *ctx, const lr_model *file, catanet *m, int i)
{
    cat_block *b = &m->blk[i];
    int c = m->dim, qk = m->qk_dim, hid = m->mlp_dim, nt = b->num_tokens;
    char tab[32], lrsa[32], name[64];
    snprintf(tab, sizeof tab, "blocks.%d.0.", i);
    snprintf(lrsa, sizeof lrsa, "blocks.%d.1.layer.", i);
    const float *means;
    lr_status s;
    if ((s = get(ctx, file, tab, "norm.weight", &b->norm_w, c, NO, NO, NO)) != LR_OK ||
        (s = get(ctx, file, tab, "norm.bias", &b->norm_b, c, NO, NO, NO)) != LR_OK ||
        (s = get(ctx, file, tab, "means", &means, nt, c, NO, NO)) != LR_OK ||
        (s = get(ctx, file, tab, "iasa_attn.to_q.weight", &b->q_w, qk, c, NO, NO)) != LR_OK ||
        (s = get(ctx, file, tab, "iasa_attn.to_k.weight", &b->k_w, qk, c, NO, NO)) != LR_OK ||
        (s = get(ctx, file, tab, "iasa_attn.to_v.weight", &b->v_w, c, c, NO, NO)) != LR_OK ||
        (s = get(ctx, file, tab, "iasa_attn.proj.weight", &b->proj_w, c, c, NO, NO)) != LR_OK ||
        (s = get(ctx, file, tab, "conv1x1.weight", &b->conv1x1_w, c, c, 1, 1)) != LR_OK)
        return s;
    const float *irca_k, *irca_v;
    if ((s = get(ctx, file, tab, "irca_attn.to_k.weight", &irca_k, qk, c, NO, NO)) != LR_OK ||
        (s = get(ctx, file, tab, "irca_attn.to_v.weight", &irca_v, c, c, NO, NO)) != LR_OK)
        return s;
    snprintf(name, sizeof name, "%smlp.", tab);
    if ((s = get_ffn(ctx, file, name, c, hid, &b->mlp)) != LR_OK)
        return s;
    if ((s = get(ctx, file, lrsa, "0.norm.weight", &b->a_norm_w, c, NO, NO, NO)) != LR_OK ||
        (s = get(ctx, file, lrsa, "0.norm.bias", &b->a_norm_b, c, NO, NO, NO)) != LR_OK ||
        (s = get(ctx, file, lrsa, "0.fn.to_q.weight", &b->a_q_w, qk, c, NO, NO)) != LR_OK ||
        (s = get(ctx, file, lrsa, "0.fn.to_k.weight", &b->a_k_w, qk, c, NO, NO)) != LR_OK ||
        (s = get(ctx, file, lrsa, "0.fn.to_v.weight", &b->a_v_w, c, c, NO, NO)) != LR_OK ||
        (s = get(ctx, file, lrsa, "0.fn.proj.weight", &b->a_proj_w, c, c, NO, NO)) != LR_OK)
        return s;
    snprintf(name, sizeof name, "%s1.", lrsa);
    if ((s = get_ffn(ctx, file, name, c, hid, &b->ff)) != LR_OK)
        return s;
    snprintf(name, sizeof name, "mid_convs.%d.", i);
    if ((s = get(ctx, file, name, "weight", &b->mid_w, c, c, 3, 3)) != LR_OK ||
        (s = get(ctx, file, name, "bias", &b->mid_b, c, NO, NO, NO)) != LR_OK)
        return s;

    /* What eval mode derives from the centres once: their unit vectors, keys and values. */
    b->centre_unit = alloc_floats((size_t)nt * c);
    b->k_global = alloc_floats((size_t)nt * qk);
    b->v_global = alloc_floats((size_t)nt * c);
    if (!b->centre_unit || !b->k_global || !b->v_global)
        return lr_fail(ctx, LR_ERR_NOMEM, "catanet: out of memory");
    for (int j = 0; j < nt; j++) {
        double ss = 0;
        for (int e = 0; e < c; e++)
            ss += (double)means[j * c + e] * means[j * c + e];
        double norm = sqrt(ss);
        for (int e = 0; e < c; e++)
            b->centre_unit[j * c + e] = (float)(means[j * c + e] / (norm > 1e-12 ? norm : 1e-12));
    }
    if ((s = linear(ctx, means, nt, c, irca_k, NULL, qk, b->k_global)) != LR_OK ||
        (s = linear(ctx, means, nt, c, irca_v, NULL, c, b->v_global)) != LR_OK)
        return s;
    return LR_OK;
}

lr_status catanet_net_open(lr_ctx *ctx, const lr_model *file, sr_net **out)
{
    *out = NULL;
    lr_status s = lr_model_expect_arch(ctx, file, "catanet");
    if (s != LR_OK)
        return s;
    catanet *m = calloc(1, sizeof *m);
    sr_net *net = calloc(1, sizeof *net);
    if (!m || !net) {
        free(m);
        free(net);
        return lr_fail(ctx, LR_ERR_NOMEM, "catanet: out of memory");
    }
    net->impl = m;
    net->close = catanet_close;
    int ps[CAT_MAX_BLOCKS], nt[CAT_MAX_BLOCKS], gs[CAT_MAX_BLOCKS], blocks = 0;
    if ((s = lr_model_meta_int_in(ctx, file, "in_chans", false, 0, 3, 3, &m->in_chans)) != LR_OK ||
        (s = lr_model_meta_int_in(ctx, file, "upscale", false, 0, 1, 4, &m->scale)) != LR_OK ||
        (s = lr_model_meta_int_in(ctx, file, "dim", false, 0, 1, 4096, &m->dim)) != LR_OK ||
        (s = lr_model_meta_int_in(ctx, file, "qk_dim", false, 0, 1, 4096, &m->qk_dim)) != LR_OK ||
        (s = lr_model_meta_int_in(ctx, file, "mlp_dim", false, 0, 1, 16384, &m->mlp_dim)) != LR_OK ||
        (s = lr_model_meta_int_in(ctx, file, "heads", false, 0, 1, 256, &m->heads)) != LR_OK ||
        (s = lr_model_meta_int_in(ctx, file, "block_num", false, 0, 1, CAT_MAX_BLOCKS, &blocks)) != LR_OK ||
        (s = meta_list(ctx, file, "patch_size", blocks, 3, 4096, ps)) != LR_OK ||
        (s = meta_list(ctx, file, "num_tokens", blocks, 1, 1 << 20, nt)) != LR_OK ||
        (s = meta_list(ctx, file, "group_size", blocks, 1, 1 << 24, gs)) != LR_OK)
        goto fail;
    if (m->dim % m->heads || m->qk_dim % m->heads) {
        s = lr_fail(ctx, LR_ERR_MODEL, "%s: catanet dim %d and qk_dim %d must be multiples of "
                    "heads %d", lr_model_path(file), m->dim, m->qk_dim, m->heads);
        goto fail;
    }
    int c = m->dim;
    const char *root = "";
    if ((s = get(ctx, file, root, "first_conv.weight", &m->first_w, c, 3, 3, 3)) != LR_OK ||
        (s = get(ctx, file, root, "first_conv.bias", &m->first_b, c, NO, NO, NO)) != LR_OK ||
        (s = get(ctx, file, root, "last_conv.weight", &m->last_w, 3, c, 3, 3)) != LR_OK ||
        (s = get(ctx, file, root, "last_conv.bias", &m->last_b, 3, NO, NO, NO)) != LR_OK)
        goto fail;
    if (m->scale == 4) {
        if ((s = get(ctx, file, root, "upconv1.weight", &m->up1_w, 4 * c, c, 3, 3)) != LR_OK ||
            (s = get(ctx, file, root, "upconv1.bias", &m->up1_b, 4 * c, NO, NO, NO)) != LR_OK ||
            (s = get(ctx, file, root, "upconv2.weight", &m->up2_w, 4 * c, c, 3, 3)) != LR_OK ||
            (s = get(ctx, file, root, "upconv2.bias", &m->up2_b, 4 * c, NO, NO, NO)) != LR_OK)
            goto fail;
    } else if (m->scale > 1) {
        int r2 = m->scale * m->scale;
        if ((s = get(ctx, file, root, "upconv.weight", &m->up1_w, r2 * c, c, 3, 3)) != LR_OK ||
            (s = get(ctx, file, root, "upconv.bias", &m->up1_b, r2 * c, NO, NO, NO)) != LR_OK)
            goto fail;
    }
    m->max_patch = 0;
    for (int i = 0; i < blocks; i++) {
        m->blocks = i + 1; /* so that close frees what this block allocates */
        m->blk[i].patch_size = ps[i];
        m->blk[i].num_tokens = nt[i];
        m->blk[i].group_size = gs[i];
        if (ps[i] > m->max_patch)
            m->max_patch = ps[i];
        if ((s = open_block(ctx, file, m, i)) != LR_OK)
            goto fail;
    }
    snprintf(m->name, sizeof m->name, "catanet-x%d", m->scale);
    net->arch = "catanet";
    net->name = m->name;
    net->scale = m->scale;
    net->channels = 3;
    net->context = -1; /* the token centres group pixels from the whole image */
    net->forward = catanet_forward;
    *out = net;
    return LR_OK;
fail:
    catanet_close(net);
    return s;
}
