/* Bi-level routing attention: argument checks, the routing (region means, affinities, top-k),
 * the plain reference, and the fused token attention.
 *
 * lr_bra runs three parallel passes, each cut into tasks by shape only (bit-identical output
 * for any thread count):
 *   1. one task per (image, region): the region's mean q and k in double, into the workspace
 *      (k transposed, channel-major, so that pass 2 runs along regions), and the region's
 *      keys and values in region-major order per head, [B][heads][region][token][d] in F32,
 *      so that pass 3 reads each routed region as one contiguous block: gathering tokens
 *      straight from the image (a d-float piece of a row Cqk floats long, rows Wid apart)
 *      cost as much time as the arithmetic at L = 16384;
 *   2. one task per (image, query region): its affinities to every region, summed channel by
 *      channel in the same order as the reference's dot products (so both get the same bits
 *      and the same routes), then a sort under a strict total order;
 *   3. one task per (image, region, head, query tile): the tile's queries are packed once;
 *      each routed region's block of keys and values goes, block_k at a time, through the
 *      tile kernels of lr_attention (scores, online softmax, accumulate). Every query of a
 *      region sees every routed key, so no masking is needed. A region's queries are split into
 *      equal tiles of a multiple of 16 rows, so that e.g. 64 queries run as 2 x 32 rather
 *      than 48 + 16 on a kernel with 48-row tiles. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attention_internal.h"
#include "internal.h"
#include "longrange/bra.h"
#include "longrange/parallel.h"

enum {
    MAX_HEAD_DIM = 1024,
    REF_TOKENS_PER_TASK = 16,
};

lr_bra_params lr_bra_default_params(void)
{
    lr_bra_params p;
    memset(&p, 0, sizeof p);
    p.n_win = 7;
    p.topk = 4;
    p.num_heads = 8;
    return p;
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* ---- the problem --------------------------------------------------------------------- */

/* A 4-d tensor [B, Y, X, C] seen through its element strides. */
typedef struct {
    const char *data;
    lr_dtype dtype;
    int64_t sb, sy, sx;
} img_view;

typedef struct {
    int64_t B, Y, X, Cqk, Cv, S, R, topk, heads, d, dv, rh, rw, rt;
    double scale;
    img_view q, k, v;
    float *out;
    int64_t ob, oy, ox;
    lr_tensor *routes;
} bra_problem;

static const char *row_of(const img_view *t, int64_t b, int64_t y, int64_t x)
{
    return t->data + (b * t->sb + y * t->sy + x * t->sx) * (int64_t)lr_dtype_size(t->dtype);
}

/* Element e of a row of F32 or BF16 values, exactly as F32. */
static float element(const char *row, lr_dtype dtype, int64_t e)
{
    if (dtype == LR_F32) {
        float f;
        memcpy(&f, row + 4 * e, 4);
        return f;
    }
    uint16_t h;
    memcpy(&h, row + 2 * e, 2);
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* n elements of a row from column c0, as F32. */
static void load_row(const char *row, lr_dtype dtype, int64_t c0, int64_t n, float *dst)
{
    if (dtype == LR_F32) {
        memcpy(dst, row + 4 * c0, (size_t)n * sizeof(float));
        return;
    }
    for (int64_t e = 0; e < n; e++)
        dst[e] = element(row, dtype, c0 + e);
}

static bool same_image(const lr_tensor *a, const lr_tensor *b)
{
    return a->shape[0] == b->shape[0] && a->shape[1] == b->shape[1] && a->shape[2] == b->shape[2];
}

static lr_status make_problem(lr_ctx *ctx, const lr_bra_params *p, const lr_tensor *q, const lr_tensor *k,
                              const lr_tensor *v, lr_tensor *out, bra_problem *pr)
{
    char a[128], b[128], c[128], e[128];
    lr_status s;
    if ((s = lr_check_tensor4(ctx, "bra", "q", q, "[B, Hgt, Wid, Cqk]", -1)) != LR_OK ||
        (s = lr_check_tensor4(ctx, "bra", "k", k, "[B, Hgt, Wid, Cqk]", -1)) != LR_OK ||
        (s = lr_check_tensor4(ctx, "bra", "v", v, "[B, Hgt, Wid, Cv]", -1)) != LR_OK ||
        (s = lr_check_tensor4(ctx, "bra", "out", out, "[B, Hgt, Wid, Cv]", -1)) != LR_OK)
        return s;
    if (q->dtype != LR_F32 && q->dtype != LR_BF16)
        return lr_fail(ctx, LR_ERR_ARG, "bra: q must be f32 or bf16, got %s", lr_dtype_name(q->dtype));
    if (k->dtype != q->dtype || v->dtype != q->dtype)
        return lr_fail(ctx, LR_ERR_ARG, "bra: q, k, v must have one dtype, got %s, %s, %s", lr_dtype_name(q->dtype),
                       lr_dtype_name(k->dtype), lr_dtype_name(v->dtype));
    if (out->dtype != LR_F32)
        return lr_fail(ctx, LR_ERR_ARG, "bra: out must be f32, got %s", lr_dtype_name(out->dtype));
    if (!same_image(q, k) || k->shape[3] != q->shape[3] || !same_image(q, v) || !same_image(q, out) ||
        out->shape[3] != v->shape[3])
        return lr_fail(ctx, LR_ERR_ARG,
                       "bra: shapes differ: q %s, k %s, v %s, out %s (q, k [B, Hgt, Wid, Cqk]; v, out "
                       "[B, Hgt, Wid, Cv])",
                       lr_shape_str(4, q->shape, a, sizeof a), lr_shape_str(4, k->shape, b, sizeof b),
                       lr_shape_str(4, v->shape, c, sizeof c), lr_shape_str(4, out->shape, e, sizeof e));
    int64_t Y = q->shape[1], X = q->shape[2], Cqk = q->shape[3], Cv = v->shape[3];
    if (p->n_win < 1)
        return lr_fail(ctx, LR_ERR_ARG, "bra: n_win %lld must be >= 1", (long long)p->n_win);
    int64_t S = p->n_win;
    if (Y < 1 || X < 1 || Y % S != 0 || X % S != 0)
        return lr_fail(ctx, LR_ERR_ARG,
                       "bra: height %lld and width %lld must be positive multiples of n_win %lld; pad the "
                       "input before the qkv projection (BiFormer's auto_pad)",
                       (long long)Y, (long long)X, (long long)S);
    int64_t R = S * S; /* <= Y * X, which fits */
    if (p->topk < 1 || p->topk > R)
        return lr_fail(ctx, LR_ERR_ARG, "bra: topk %lld must be in 1..n_win^2 = %lld", (long long)p->topk,
                       (long long)R);
    if (p->num_heads < 1 || Cqk % p->num_heads != 0 || Cv % p->num_heads != 0)
        return lr_fail(ctx, LR_ERR_ARG, "bra: num_heads %lld must divide the channels %lld (q, k) and %lld (v)",
                       (long long)p->num_heads, (long long)Cqk, (long long)Cv);
    if (Cqk < 1 || Cv < 1 || Cqk / p->num_heads > MAX_HEAD_DIM || Cv / p->num_heads > MAX_HEAD_DIM)
        return lr_fail(ctx, LR_ERR_ARG, "bra: head dims %lld (q, k) and %lld (v) must be in 1..%d",
                       (long long)(Cqk / p->num_heads), (long long)(Cv / p->num_heads), MAX_HEAD_DIM);
    if (!(p->scale >= 0) || isinf(p->scale))
        return lr_fail(ctx, LR_ERR_ARG, "bra: scale %g must be finite and >= 0 (0 selects Cqk^-0.5)",
                       (double)p->scale);
    if (p->routes) {
        const lr_tensor *t = p->routes;
        bool ok = t->dtype == LR_I32 && t->ndim == 3 && t->shape[0] == q->shape[0] && t->shape[1] == R &&
                  t->shape[2] == p->topk;
        if (!ok)
            return lr_fail(ctx, LR_ERR_ARG, "bra: routes must be i32 [%lld, %lld, %lld], got %s %s",
                           (long long)q->shape[0], (long long)R, (long long)p->topk, lr_dtype_name(t->dtype),
                           lr_shape_str(t->ndim < 0 ? 0 : t->ndim > 4 ? 4 : t->ndim, t->shape, a, sizeof a));
        if (!t->data && lr_tensor_numel(t) > 0)
            return lr_fail(ctx, LR_ERR_ARG, "bra: routes has no data");
    }
    memset(pr, 0, sizeof *pr);
    pr->B = q->shape[0];
    pr->Y = Y;
    pr->X = X;
    pr->Cqk = Cqk;
    pr->Cv = Cv;
    pr->S = S;
    pr->R = R;
    pr->topk = p->topk;
    pr->heads = p->num_heads;
    pr->d = Cqk / p->num_heads;
    pr->dv = Cv / p->num_heads;
    pr->rh = Y / S;
    pr->rw = X / S;
    pr->rt = pr->rh * pr->rw;
    pr->scale = p->scale > 0 ? (double)p->scale : 1.0 / sqrt((double)Cqk);
    const lr_tensor *src[3] = {q, k, v};
    img_view *dst[3] = {&pr->q, &pr->k, &pr->v};
    for (int i = 0; i < 3; i++)
        *dst[i] = (img_view){src[i]->data, src[i]->dtype, src[i]->stride[0], src[i]->stride[1], src[i]->stride[2]};
    pr->out = out->data;
    pr->ob = out->stride[0];
    pr->oy = out->stride[1];
    pr->ox = out->stride[2];
    pr->routes = p->routes;
    return LR_OK;
}

/* The token of region r at index u (row-major inside the region). */
static void region_token(const bra_problem *pr, int64_t r, int64_t u, int64_t *y, int64_t *x)
{
    *y = r / pr->S * pr->rh + u / pr->rw;
    *x = r % pr->S * pr->rw + u % pr->rw;
}

static void write_routes(const bra_problem *pr, const int32_t *routes)
{
    lr_tensor *t = pr->routes;
    if (!t)
        return;
    for (int64_t b = 0; b < pr->B; b++)
        for (int64_t r = 0; r < pr->R; r++)
            for (int64_t i = 0; i < pr->topk; i++)
                ((int32_t *)t->data)[b * t->stride[0] + r * t->stride[1] + i * t->stride[2]] =
                    routes[(b * pr->R + r) * pr->topk + i];
}

/* ---- workspace ----------------------------------------------------------------------- */

/* Byte offsets: qm [B][R][Cqk] and kmT [B][Cqk][R] doubles, kp [B][heads][R][rt][d] and
 * vp [B][heads][R][rt][dv] floats (heads * d = Cqk, heads * dv = Cv), routes [B][R][topk]
 * int32. */
typedef struct {
    size_t kmt, kp, vp, routes, total;
} ws_layout;

static bool workspace_layout(int64_t B, int64_t tokens, int64_t Cqk, int64_t Cv, int64_t S, int64_t topk,
                             ws_layout *w)
{
    size_t R, n, means, kv, k, routes;
    if (B < 0 || tokens < 0 || Cqk < 1 || Cv < 1 || S < 1 || topk < 1 || !lr_mul_size((size_t)S, (size_t)S, &R) ||
        !lr_mul_size((size_t)B, R, &n) || !lr_mul_size(n, (size_t)Cqk, &means) || !lr_mul_size(means, 8, &means) ||
        !lr_mul_size((size_t)B, (size_t)tokens, &kv) || !lr_mul_size(kv, (size_t)Cqk * 4, &k) ||
        !lr_mul_size(kv, (size_t)Cv * 4, &kv) || !lr_mul_size(n, (size_t)topk, &routes) ||
        !lr_mul_size(routes, 4, &routes))
        return false;
    w->kmt = means;
    return lr_add_size(w->kmt, means, &w->kp) && lr_add_size(w->kp, k, &w->vp) && lr_add_size(w->vp, kv, &w->routes) &&
           lr_add_size(w->routes, routes, &w->total);
}

size_t lr_bra_workspace_size(const lr_bra_params *p, int64_t B, int64_t Hgt, int64_t Wid, int64_t Cqk, int64_t Cv)
{
    lr_bra_params defaults = lr_bra_default_params();
    if (!p)
        p = &defaults;
    int64_t tokens;
    ws_layout w;
    if (Hgt < 0 || Wid < 0 || __builtin_mul_overflow(Hgt, Wid, &tokens) ||
        !workspace_layout(B, tokens, Cqk, Cv, p->n_win, p->topk, &w))
        return 0;
    return w.total ? w.total : 1;
}

/* ---- routing, fast ------------------------------------------------------------------- */

typedef struct {
    lr_ctx *ctx;
    const bra_problem *pr;
    double *qm, *kmt;
    float *kp, *vp;
    int32_t *routes;
} route_job;

static void means_task(void *arg, size_t task, int thread)
{
    const route_job *job = arg;
    const bra_problem *pr = job->pr;
    int64_t b = (int64_t)task / pr->R, r = (int64_t)task % pr->R, C = pr->Cqk;
    double *sq = lr_thread_scratch(job->ctx, thread), *sk = sq + C;
    float *qf = (float *)(sk + C), *kf = qf + C;
    for (int64_t e = 0; e < C; e++)
        sq[e] = sk[e] = 0.0;
    for (int64_t u = 0; u < pr->rt; u++) {
        int64_t y, x;
        region_token(pr, r, u, &y, &x);
        load_row(row_of(&pr->q, b, y, x), pr->q.dtype, 0, C, qf);
        load_row(row_of(&pr->k, b, y, x), pr->k.dtype, 0, C, kf);
        for (int64_t e = 0; e < C; e++) {
            sq[e] += (double)qf[e];
            sk[e] += (double)kf[e];
        }
        const char *vrow = row_of(&pr->v, b, y, x);
        for (int64_t h = 0; h < pr->heads; h++) {
            int64_t row = ((b * pr->heads + h) * pr->R + r) * pr->rt + u;
            memcpy(job->kp + row * pr->d, kf + h * pr->d, (size_t)pr->d * sizeof(float));
            load_row(vrow, pr->v.dtype, h * pr->dv, pr->dv, job->vp + row * pr->dv);
        }
    }
    double n = (double)pr->rt;
    for (int64_t e = 0; e < C; e++) {
        job->qm[(b * pr->R + r) * C + e] = sq[e] / n;
        job->kmt[(b * C + e) * pr->R + r] = sk[e] / n;
    }
}

typedef struct {
    double value;
    int64_t index;
} ranked;

/* Larger first, a NaN before every number (torch.topk's order), then the lower index. */
static int rank_order(const void *pa, const void *pb)
{
    const ranked *a = pa, *b = pb;
    bool an = isnan(a->value), bn = isnan(b->value);
    if (an != bn)
        return an ? -1 : 1;
    if (!an && a->value != b->value)
        return a->value > b->value ? -1 : 1;
    return a->index < b->index ? -1 : a->index > b->index;
}

static void routes_task(void *arg, size_t task, int thread)
{
    const route_job *job = arg;
    const bra_problem *pr = job->pr;
    int64_t b = (int64_t)task / pr->R, i = (int64_t)task % pr->R, R = pr->R, C = pr->Cqk;
    double *aff = lr_thread_scratch(job->ctx, thread);
    ranked *order = (ranked *)(aff + R);
    for (int64_t j = 0; j < R; j++)
        aff[j] = 0.0;
    /* channel-major, so every aff[j] adds its products in channel order, as the reference's
     * dot products do */
    const double *qi = job->qm + (b * R + i) * C;
    for (int64_t e = 0; e < C; e++) {
        const double a = qi[e], *kt = job->kmt + (b * C + e) * R;
        for (int64_t j = 0; j < R; j++)
            aff[j] += a * kt[j];
    }
    for (int64_t j = 0; j < R; j++)
        order[j] = (ranked){aff[j], j};
    qsort(order, (size_t)R, sizeof *order, rank_order);
    for (int64_t t = 0; t < pr->topk; t++)
        job->routes[(b * R + i) * pr->topk + t] = (int32_t)order[t].index;
}

/* ---- token attention, fast ----------------------------------------------------------- */

typedef struct {
    size_t qt, s, o, m, l, alpha, colmax, qrow, total;
} scratch_plan;

typedef struct {
    lr_ctx *ctx;
    const bra_problem *pr;
    const lr_attn_kernel *kern;
    const int32_t *routes;
    const float *kp, *vp;
    float c; /* scale * log2(e): q.k into a base-2 logit */
    int br, bk, ldo;
    int64_t tiles; /* query tiles per region */
    scratch_plan plan;
} attn_job;

static void attn_task(void *arg, size_t task, int thread)
{
    const attn_job *job = arg;
    const bra_problem *pr = job->pr;
    const lr_attn_kernel *kern = job->kern;
    int64_t tile = (int64_t)task % job->tiles, rest = (int64_t)task / job->tiles;
    int64_t h = rest % pr->heads, r = rest / pr->heads % pr->R, b = rest / pr->heads / pr->R;
    int64_t d = pr->d, dv = pr->dv, u0 = tile * job->br, nq = min64(job->br, pr->rt - u0);
    int br = job->br, ldo = job->ldo;
    char *scratch = lr_thread_scratch(job->ctx, thread);
    const scratch_plan *plan = &job->plan;
    float *qt = (float *)(scratch + plan->qt), *s = (float *)(scratch + plan->s), *o = (float *)(scratch + plan->o);
    float *m = (float *)(scratch + plan->m), *l = (float *)(scratch + plan->l);
    float *alpha = (float *)(scratch + plan->alpha), *colmax = (float *)(scratch + plan->colmax);
    float *qrow = (float *)(scratch + plan->qrow);

    /* queries, transposed: qt[e * br + i]; rows past the tile stay zero */
    for (int64_t i = 0; i < br; i++) {
        if (i >= nq) {
            for (int64_t e = 0; e < d; e++)
                qt[e * br + i] = 0.0f;
            continue;
        }
        int64_t y, x;
        region_token(pr, r, u0 + i, &y, &x);
        load_row(row_of(&pr->q, b, y, x), pr->q.dtype, h * d, d, qrow);
        for (int64_t e = 0; e < d; e++)
            qt[e * br + i] = qrow[e];
    }
    memset(o, 0, (size_t)br * (size_t)ldo * sizeof(float));
    for (int i = 0; i < br; i++) {
        m[i] = -INFINITY;
        l[i] = 0.0f;
    }

    const int32_t *routes = job->routes + (b * pr->R + r) * pr->topk;
    int64_t head_rows = (b * pr->heads + h) * pr->R * pr->rt;
    for (int64_t t = 0; t < pr->topk; t++) {
        int64_t first = head_rows + routes[t] * pr->rt;
        for (int64_t j0 = 0; j0 < pr->rt; j0 += job->bk) {
            int nk = (int)min64(job->bk, pr->rt - j0);
            kern->scores(qt, br, job->kp + (first + j0) * d, d, nk, (int)d, s, colmax);
            kern->softmax(s, s, br, nk, job->c, colmax, m, l, alpha);
            kern->accumulate(s, br, job->vp + (first + j0) * dv, dv, nk, (int)dv, alpha, o, ldo);
        }
    }

    for (int64_t i = 0; i < nq; i++) {
        int64_t y, x;
        region_token(pr, r, u0 + i, &y, &x);
        float inv = l[i] > 0 ? 1.0f / l[i] : 0.0f;
        float *row = pr->out + b * pr->ob + y * pr->oy + x * pr->ox + h * dv;
        for (int64_t e = 0; e < dv; e++)
            row[e] = o[i * ldo + e] * inv;
    }
}

static scratch_plan plan_scratch(const attn_job *job)
{
    scratch_plan s;
    size_t at = 0, br = (size_t)job->br, bk = (size_t)job->bk, f = sizeof(float);
    size_t d = (size_t)job->pr->d;
    s.qt = lr_scratch_take(&at, (d + 1) * br * f);
    s.s = lr_scratch_take(&at, bk * br * f);
    s.o = lr_scratch_take(&at, br * (size_t)job->ldo * f);
    s.m = lr_scratch_take(&at, br * f);
    s.l = lr_scratch_take(&at, br * f);
    s.alpha = lr_scratch_take(&at, br * f);
    s.colmax = lr_scratch_take(&at, br * f);
    s.qrow = lr_scratch_take(&at, d * f);
    s.total = at;
    return s;
}

lr_status lr_bra(lr_ctx *ctx, const lr_bra_params *p, const lr_tensor *q, const lr_tensor *k, const lr_tensor *v,
                 lr_tensor *out)
{
    lr_bra_params defaults = lr_bra_default_params();
    if (!p)
        p = &defaults;
    bra_problem pr;
    lr_status s = make_problem(ctx, p, q, k, v, out, &pr);
    if (s != LR_OK || pr.B == 0)
        return s;
    ws_layout w;
    if (!workspace_layout(pr.B, pr.Y * pr.X, pr.Cqk, pr.Cv, pr.S, pr.topk, &w))
        return lr_fail(ctx, LR_ERR_NOMEM, "bra: the workspace size overflows");
    size_t total = w.total;
    void *ws = p->workspace, *owned = NULL;
    if (ws) {
        if (p->workspace_size < total || (uintptr_t)ws % 8 != 0)
            return lr_fail(ctx, LR_ERR_ARG, "bra: the workspace must be 8-byte aligned and hold %zu bytes, got %zu",
                           total, p->workspace_size);
    } else if (!(ws = owned = malloc(total))) {
        return lr_fail(ctx, LR_ERR_NOMEM, "bra: no memory for the %zu-byte workspace", total);
    }

    attn_job job = {.ctx = ctx, .pr = &pr, .kern = lr_attn_kernel_f32(lr_ctx_cpu(ctx))};
    job.c = (float)pr.scale * LR_LOG2E;
    int64_t bq = job.kern->block_q, tiles = ceil_div(pr.rt, bq);
    job.br = (int)(ceil_div(ceil_div(pr.rt, tiles), 16) * 16);
    job.bk = job.kern->block_k;
    job.ldo = (int)(ceil_div(pr.dv, 16) * 16);
    job.tiles = tiles;
    job.plan = plan_scratch(&job);
    size_t route_scratch = (size_t)pr.R * (sizeof(double) + sizeof(ranked));
    size_t means_scratch = 2 * (size_t)pr.Cqk * (sizeof(double) + sizeof(float));
    size_t need = job.plan.total;
    need = need > route_scratch ? need : route_scratch;
    need = need > means_scratch ? need : means_scratch;
    if ((s = lr_thread_scratch_reserve(ctx, need)) != LR_OK) {
        free(owned);
        return s;
    }

    char *base = ws;
    route_job rj = {ctx,
                    &pr,
                    ws,
                    (double *)(base + w.kmt),
                    (float *)(base + w.kp),
                    (float *)(base + w.vp),
                    (int32_t *)(base + w.routes)};
    lr_parallel_for(ctx, (size_t)(pr.B * pr.R), means_task, &rj);
    lr_parallel_for(ctx, (size_t)(pr.B * pr.R), routes_task, &rj);
    job.routes = rj.routes;
    job.kp = rj.kp;
    job.vp = rj.vp;
    lr_parallel_for(ctx, (size_t)(pr.B * pr.R * pr.heads * job.tiles), attn_task, &job);
    write_routes(&pr, rj.routes);
    free(owned);
    return LR_OK;
}

/* ---- the reference ------------------------------------------------------------------- */

typedef struct {
    lr_ctx *ctx;
    const bra_problem *pr;
    const int32_t *routes;
} ref_job;

static void ref_token(const ref_job *job, int64_t b, int64_t y, int64_t x, double *score, double *acc)
{
    const bra_problem *pr = job->pr;
    int64_t r = y / pr->rh * pr->S + x / pr->rw, n = pr->topk * pr->rt;
    const int32_t *routes = job->routes + (b * pr->R + r) * pr->topk;
    const char *qrow = row_of(&pr->q, b, y, x);
    for (int64_t h = 0; h < pr->heads; h++) {
        double best = -INFINITY;
        for (int64_t j = 0; j < n; j++) {
            int64_t ky, kx;
            region_token(pr, routes[j / pr->rt], j % pr->rt, &ky, &kx);
            const char *krow = row_of(&pr->k, b, ky, kx);
            double dot = 0;
            for (int64_t e = 0; e < pr->d; e++)
                dot += (double)element(qrow, pr->q.dtype, h * pr->d + e) *
                       (double)element(krow, pr->k.dtype, h * pr->d + e);
            score[j] = dot * pr->scale;
            best = fmax(best, score[j]);
        }
        for (int64_t e = 0; e < pr->dv; e++)
            acc[e] = 0;
        double sum = 0;
        for (int64_t j = 0; j < n; j++) {
            int64_t ky, kx;
            region_token(pr, routes[j / pr->rt], j % pr->rt, &ky, &kx);
            const char *vrow = row_of(&pr->v, b, ky, kx);
            double w = exp(score[j] - best);
            sum += w;
            for (int64_t e = 0; e < pr->dv; e++)
                acc[e] += w * (double)element(vrow, pr->v.dtype, h * pr->dv + e);
        }
        float *orow = pr->out + b * pr->ob + y * pr->oy + x * pr->ox + h * pr->dv;
        for (int64_t e = 0; e < pr->dv; e++)
            orow[e] = (float)(acc[e] / sum);
    }
}

static void ref_task(void *arg, size_t task, int thread)
{
    const ref_job *job = arg;
    const bra_problem *pr = job->pr;
    int64_t per_image = ceil_div(pr->Y * pr->X, REF_TOKENS_PER_TASK);
    int64_t b = (int64_t)task / per_image, t0 = (int64_t)task % per_image * REF_TOKENS_PER_TASK;
    double *score = lr_thread_scratch(job->ctx, thread), *acc = score + pr->topk * pr->rt;
    for (int64_t t = t0; t < min64(t0 + REF_TOKENS_PER_TASK, pr->Y * pr->X); t++)
        ref_token(job, b, t / pr->X, t % pr->X, score, acc);
}

/* Whether region j ranks before region best under the routing order (NaN first, then the
 * larger affinity); the scan goes up the indices, so equal values keep the lower index. */
static bool ranks_before(double aj, double abest)
{
    if (isnan(abest))
        return false;
    return isnan(aj) || aj > abest;
}

static void ref_routes(const bra_problem *pr, int32_t *routes, double *qm, double *km, double *aff, bool *taken)
{
    int64_t R = pr->R, C = pr->Cqk;
    for (int64_t b = 0; b < pr->B; b++) {
        for (int64_t r = 0; r < R; r++)
            for (int64_t e = 0; e < C; e++) {
                double sq = 0, sk = 0;
                for (int64_t u = 0; u < pr->rt; u++) {
                    int64_t y, x;
                    region_token(pr, r, u, &y, &x);
                    sq += (double)element(row_of(&pr->q, b, y, x), pr->q.dtype, e);
                    sk += (double)element(row_of(&pr->k, b, y, x), pr->k.dtype, e);
                }
                qm[r * C + e] = sq / (double)pr->rt;
                km[r * C + e] = sk / (double)pr->rt;
            }
        for (int64_t i = 0; i < R; i++) {
            for (int64_t j = 0; j < R; j++) {
                double dot = 0;
                for (int64_t e = 0; e < C; e++)
                    dot += qm[i * C + e] * km[j * C + e];
                aff[j] = dot;
                taken[j] = false;
            }
            for (int64_t t = 0; t < pr->topk; t++) {
                int64_t best = -1;
                for (int64_t j = 0; j < R; j++)
                    if (!taken[j] && (best < 0 || ranks_before(aff[j], aff[best])))
                        best = j;
                taken[best] = true;
                routes[(b * R + i) * pr->topk + t] = (int32_t)best;
            }
        }
    }
}

lr_status lr_bra_ref(lr_ctx *ctx, const lr_bra_params *p, const lr_tensor *q, const lr_tensor *k,
                     const lr_tensor *v, lr_tensor *out)
{
    lr_bra_params defaults = lr_bra_default_params();
    if (!p)
        p = &defaults;
    bra_problem pr;
    lr_status s = make_problem(ctx, p, q, k, v, out, &pr);
    if (s != LR_OK || pr.B == 0)
        return s;
    size_t R = (size_t)pr.R, C = (size_t)pr.Cqk;
    int32_t *routes = malloc((size_t)pr.B * R * (size_t)pr.topk * sizeof *routes);
    double *qm = malloc(2 * R * C * sizeof *qm), *aff = malloc(R * sizeof *aff);
    bool *taken = malloc(R * sizeof *taken);
    if (!routes || !qm || !aff || !taken) {
        s = lr_fail(ctx, LR_ERR_NOMEM, "bra: no memory for the reference's routing");
    } else {
        ref_routes(&pr, routes, qm, qm + R * C, aff, taken);
        s = lr_thread_scratch_reserve(ctx, ((size_t)(pr.topk * pr.rt) + (size_t)pr.dv) * sizeof(double));
    }
    if (s == LR_OK) {
        ref_job job = {ctx, &pr, routes};
        lr_parallel_for(ctx, (size_t)(pr.B * ceil_div(pr.Y * pr.X, REF_TOKENS_PER_TASK)), ref_task, &job);
        write_routes(&pr, routes);
    }
    free(routes);
    free(qm);
    free(aff);
    free(taken);
    return s;
}
