/* MInference's pre-fill patterns (minference.h): vertical-slash attention (plain reference
 * and fused driver), its index estimation, and the block-sparse mask estimation.
 *
 * Vertical-slash driver. The index lists are first turned, per (batch item, head), into a
 * byte per key position (bit 0: vertical column, bit 1: slash offset) and sorted lists
 * without repeats. Heads then go one at a time: the K and V rows of the head's vertical
 * columns are gathered into contiguous rows, and each tile of br query rows is one task, a
 * decomposition that depends on the shapes only, so results are bit-identical for any
 * thread count. A task
 *   1. runs the vertical columns up to its last row's position through the tile kernels of
 *      lr_attention (attention_internal.h), bk at a time, each column visible to the
 *      interval of rows at or after it, which is what the kernels' mask step takes;
 *   2. adds the keys its diagonals reach that are not vertical columns (those were counted in
 *      step 1), DIAG_CHUNK diagonals at a time: one dot product per (row, diagonal) pair into
 *      a score tile laid out like the kernels' (diagonals in place of keys), the kernels'
 *      online-softmax step on it (the same running maximum m, sum l and accumulator O as
 *      step 1, base-2 logits), then per row the weighted sum of the value rows it reached.
 * Diagonals cannot go through the tile kernels' scores without waste: a diagonal gives each
 * row of a tile a different key, so a tile of br rows would score br keys per row for one
 * useful. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attention_internal.h"
#include "internal.h"
#include "longrange/attention.h"
#include "longrange/gemm.h"
#include "longrange/minference.h"
#include "longrange/parallel.h"

enum {
    MAX_HEAD_DIM = 1024,
    TILE_ROWS = 64,       /* query rows per task (the kernels' block_q if smaller) */
    REF_ROWS_PER_TASK = 16,
    /* Diagonals per online-softmax step: the value rows a step reads for a tile (32 x 64 of
     * them, mostly shared between neighbouring diagonals) then stay in cache while every row
     * goes through them: 10% faster than 128 at L = 16k. Capped at the kernels' block_k, the
     * size of the score buffer. */
    DIAG_CHUNK = 32,
    SUM_COLS_PER_TASK = 1024,
};

enum { IS_VERTICAL = 1, IS_SLASH = 2 };

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

lr_vs_estimate_params lr_vs_estimate_default_params(void)
{
    lr_vs_estimate_params p = {.scale = 0.0f, .last_q = 64, .forced_vertical = 30, .forced_slash = 100};
    return p;
}

lr_block_sparse_params lr_block_sparse_default_params(void)
{
    lr_block_sparse_params p = {.scale = 0.0f, .block = 64, .top_k = 100};
    return p;
}

/* ---- arguments ----------------------------------------------------------------------- */

/* A 4-d F32 tensor [batch, head, row, channel]: base and element strides. */
typedef struct {
    const float *data;
    int64_t sb, sh, sr;
} mi_view;

static const float *row_at(const mi_view *t, int64_t b, int64_t h, int64_t r)
{
    return t->data + b * t->sb + h * t->sh + r * t->sr;
}

static mi_view view_of(const lr_tensor *t)
{
    return (mi_view){t->data, t->stride[0], t->stride[1], t->stride[2]};
}

typedef struct {
    int64_t B, Hq, Hkv, Lq, Lk, D, Dv;
    double scale;
} mi_dims;

static lr_status check_f32(lr_ctx *ctx, const char *op, const char *name, const lr_tensor *t)
{
    char buf[128];
    if (!t)
        return lr_fail(ctx, LR_ERR_ARG, "%s: %s is missing", op, name);
    if (t->ndim != 4)
        return lr_fail(ctx, LR_ERR_ARG, "%s: %s must have 4 dimensions [B, H, L, D], got shape %s", op, name,
                       lr_shape_str(t->ndim, t->shape, buf, sizeof buf));
    if (t->dtype != LR_F32)
        return lr_fail(ctx, LR_ERR_ARG, "%s: %s must be f32, got %s", op, name, lr_dtype_name(t->dtype));
    if (lr_tensor_numel(t) < 0)
        return lr_fail(ctx, LR_ERR_ARG, "%s: %s has an invalid shape %s", op, name,
                       lr_shape_str(t->ndim, t->shape, buf, sizeof buf));
    if (t->shape[3] > 1 && t->stride[3] != 1)
        return lr_fail(ctx, LR_ERR_ARG, "%s: the last dimension of %s must be contiguous (stride %lld)", op, name,
                       (long long)t->stride[3]);
    if (!t->data && lr_tensor_numel(t) > 0)
        return lr_fail(ctx, LR_ERR_ARG, "%s: %s has no data", op, name);
    return LR_OK;
}

static lr_status check_scale(lr_ctx *ctx, const char *op, float scale)
{
    if (!(scale >= 0) || isinf(scale))
        return lr_fail(ctx, LR_ERR_ARG, "%s: scale %g must be finite and >= 0 (0 selects 1/sqrt(D))", op,
                       (double)scale);
    return LR_OK;
}

/* q and k (v and out when given): shapes and head grouping. */
static lr_status check_qkv(lr_ctx *ctx, const char *op, const lr_tensor *q, const lr_tensor *k,
                           const lr_tensor *v, const lr_tensor *out, float scale, mi_dims *d)
{
    char a[128], b[128], c[128], e[128];
    lr_status s;
    if ((s = check_f32(ctx, op, "q", q)) != LR_OK || (s = check_f32(ctx, op, "k", k)) != LR_OK ||
        (v && (s = check_f32(ctx, op, "v", v)) != LR_OK) || (out && (s = check_f32(ctx, op, "out", out)) != LR_OK) ||
        (s = check_scale(ctx, op, scale)) != LR_OK)
        return s;
    d->B = q->shape[0];
    d->Hq = q->shape[1];
    d->Lq = q->shape[2];
    d->D = q->shape[3];
    d->Hkv = k->shape[1];
    d->Lk = k->shape[2];
    d->Dv = v ? v->shape[3] : d->D;
    bool ok = k->shape[0] == d->B && k->shape[3] == d->D;
    if (v)
        ok = ok && v->shape[0] == d->B && v->shape[1] == d->Hkv && v->shape[2] == d->Lk;
    if (out)
        ok = ok && out->shape[0] == d->B && out->shape[1] == d->Hq && out->shape[2] == d->Lq && out->shape[3] == d->Dv;
    if (!ok)
        return lr_fail(ctx, LR_ERR_ARG,
                       "%s: shapes differ: q %s, k %s, v %s, out %s (want q [B, Hq, Lq, D], k [B, Hkv, Lk, D], "
                       "v [B, Hkv, Lk, Dv], out [B, Hq, Lq, Dv])",
                       op, lr_shape_str(4, q->shape, a, sizeof a), lr_shape_str(4, k->shape, b, sizeof b),
                       v ? lr_shape_str(4, v->shape, c, sizeof c) : "-",
                       out ? lr_shape_str(4, out->shape, e, sizeof e) : "-");
    if (d->Hkv < 1 || d->Hq % d->Hkv != 0)
        return lr_fail(ctx, LR_ERR_ARG, "%s: %lld query heads are not a multiple of %lld key/value heads", op,
                       (long long)d->Hq, (long long)d->Hkv);
    if (d->D < 1 || d->D > MAX_HEAD_DIM || d->Dv < 1 || d->Dv > MAX_HEAD_DIM)
        return lr_fail(ctx, LR_ERR_ARG, "%s: head dims %lld (q, k) and %lld (v) must be in 1..%d", op,
                       (long long)d->D, (long long)d->Dv, MAX_HEAD_DIM);
    if (d->Lk > INT32_MAX)
        return lr_fail(ctx, LR_ERR_ARG, "%s: %lld keys do not fit 32-bit indices", op, (long long)d->Lk);
    d->scale = scale > 0 ? scale : 1.0 / sqrt((double)d->D);
    return LR_OK;
}

/* An index list, I32 [B, Hq, n]. */
static lr_status check_index(lr_ctx *ctx, const char *op, const char *name, const lr_tensor *t, const mi_dims *d,
                             bool output)
{
    char buf[128];
    if (!t)
        return lr_fail(ctx, LR_ERR_ARG, "%s: %s is missing", op, name);
    if (t->dtype != LR_I32)
        return lr_fail(ctx, LR_ERR_ARG, "%s: %s must be i32, got %s", op, name, lr_dtype_name(t->dtype));
    if (t->ndim != 3 || t->shape[0] != d->B || t->shape[1] != d->Hq || t->shape[2] < 0)
        return lr_fail(ctx, LR_ERR_ARG, "%s: %s must have shape [B, Hq, n] = [%lld, %lld, n], got %s", op, name,
                       (long long)d->B, (long long)d->Hq, lr_shape_str(t->ndim, t->shape, buf, sizeof buf));
    if (output && (t->shape[2] < 1 || t->shape[2] > d->Lk))
        return lr_fail(ctx, LR_ERR_ARG, "%s: %s asks for %lld indices; want 1..Lk = %lld", op, name,
                       (long long)t->shape[2], (long long)d->Lk);
    if (t->shape[2] > 1 && t->stride[2] != 1)
        return lr_fail(ctx, LR_ERR_ARG, "%s: the last dimension of %s must be contiguous", op, name);
    if (!t->data && lr_tensor_numel(t) > 0)
        return lr_fail(ctx, LR_ERR_ARG, "%s: %s has no data", op, name);
    return LR_OK;
}

/* ---- vertical-slash: the problem and its index sets ----------------------------------- */

typedef struct {
    mi_dims d;
    mi_view q, k, v, out;
    uint8_t *flags;        /* [B * Hq][Lk]: IS_VERTICAL at column j, IS_SLASH at offset o */
    int32_t *vlist, *slist; /* [B * Hq][nv], [B * Hq][ns]: sorted, no repeats */
    int64_t *vcount, *scount;
    int64_t nv, ns, ns_max;
    const lr_tensor *vertical, *slash;
    void *mem;
} vs_problem;

static void vs_free(vs_problem *pr)
{
    free(pr->mem);
    pr->mem = NULL;
}

static void index_task(void *arg, size_t task, int thread)
{
    (void)thread;
    vs_problem *pr = arg;
    int64_t bh = (int64_t)task, b = bh / pr->d.Hq, h = bh % pr->d.Hq, Lk = pr->d.Lk;
    uint8_t *flags = pr->flags + bh * Lk;
    memset(flags, 0, (size_t)Lk);
    const lr_tensor *lists[2] = {pr->vertical, pr->slash};
    const uint8_t bits[2] = {IS_VERTICAL, IS_SLASH};
    for (int w = 0; w < 2; w++) {
        const lr_tensor *t = lists[w];
        if (t->shape[2] == 0)
            continue;
        const int32_t *x = (const int32_t *)t->data + b * t->stride[0] + h * t->stride[1];
        for (int64_t e = 0; e < t->shape[2]; e++)
            if (x[e] >= 0 && x[e] < Lk)
                flags[x[e]] |= bits[w];
    }
    int64_t nv = 0, ns = 0;
    int32_t *vl = pr->vlist + bh * pr->nv, *sl = pr->slist + bh * pr->ns;
    for (int64_t j = 0; j < Lk; j++) {
        if (flags[j] & IS_VERTICAL)
            vl[nv++] = (int32_t)j;
        if (flags[j] & IS_SLASH)
            sl[ns++] = (int32_t)j;
    }
    pr->vcount[bh] = nv;
    pr->scount[bh] = ns;
}

static lr_status vs_make_problem(lr_ctx *ctx, const char *op, const lr_vs_params *p, const lr_tensor *q,
                                 const lr_tensor *k, const lr_tensor *v, const lr_tensor *vertical,
                                 const lr_tensor *slash, lr_tensor *out, vs_problem *pr)
{
    memset(pr, 0, sizeof *pr);
    lr_status s;
    if ((s = check_qkv(ctx, op, q, k, v, out, p ? p->scale : 0.0f, &pr->d)) != LR_OK ||
        (s = check_index(ctx, op, "vertical", vertical, &pr->d, false)) != LR_OK ||
        (s = check_index(ctx, op, "slash", slash, &pr->d, false)) != LR_OK)
        return s;
    pr->q = view_of(q);
    pr->k = view_of(k);
    pr->v = view_of(v);
    pr->out = view_of(out);
    pr->vertical = vertical;
    pr->slash = slash;
    int64_t BH = pr->d.B * pr->d.Hq, Lk = pr->d.Lk;
    pr->nv = min64(vertical->shape[2], Lk);
    pr->ns = min64(slash->shape[2], Lk);
    size_t bytes = 0, part;
    size_t sizes[5] = {(size_t)Lk, (size_t)pr->nv * 4, (size_t)pr->ns * 4, 8, 8};
    for (int i = 0; i < 5; i++) {
        if (!lr_mul_size(sizes[i], (size_t)BH, &part) || !lr_add_size(bytes, (part + 63) & ~(size_t)63, &bytes))
            return lr_fail(ctx, LR_ERR_NOMEM, "%s: the index sets overflow the address space", op);
    }
    if (BH == 0)
        return LR_OK;
    if (!(pr->mem = malloc(bytes)))
        return lr_fail(ctx, LR_ERR_NOMEM, "%s: no memory for the index sets (%zu bytes)", op, bytes);
    char *at = pr->mem;
    void **dst[5] = {(void **)&pr->flags, (void **)&pr->vlist, (void **)&pr->slist, (void **)&pr->vcount,
                     (void **)&pr->scount};
    for (int i = 0; i < 5; i++) {
        *dst[i] = at;
        at += ((sizes[i] * (size_t)BH) + 63) & ~(size_t)63;
    }
    lr_parallel_for(ctx, (size_t)BH, index_task, pr);
    for (int64_t bh = 0; bh < BH; bh++)
        pr->ns_max = max64(pr->ns_max, pr->scount[bh]);
    return LR_OK;
}

/* ---- vertical-slash: the reference ---------------------------------------------------- */

typedef struct {
    lr_ctx *ctx;
    const vs_problem *pr;
} vs_ref_job;

static void vs_ref_task(void *arg, size_t task, int thread)
{
    const vs_ref_job *job = arg;
    const vs_problem *pr = job->pr;
    const mi_dims *d = &pr->d;
    int64_t per_head = ceil_div(d->Lq, REF_ROWS_PER_TASK);
    int64_t bh = (int64_t)task / per_head, i0 = (int64_t)task % per_head * REF_ROWS_PER_TASK;
    int64_t b = bh / d->Hq, h = bh % d->Hq, kh = h / (d->Hq / d->Hkv);
    const uint8_t *flags = pr->flags + bh * d->Lk;
    double *score = lr_thread_scratch(job->ctx, thread);
    double *acc = score + d->Lk;
    int32_t *key = (int32_t *)(acc + d->Dv);
    for (int64_t i = i0; i < min64(i0 + REF_ROWS_PER_TASK, d->Lq); i++) {
        int64_t pos = i + d->Lk - d->Lq, n = 0;
        const float *qrow = row_at(&pr->q, b, h, i);
        double best = -INFINITY;
        for (int64_t j = 0; j <= pos; j++) {
            if (!(flags[j] & IS_VERTICAL) && !(flags[pos - j] & IS_SLASH))
                continue;
            const float *krow = row_at(&pr->k, b, kh, j);
            double dot = 0;
            for (int64_t e = 0; e < d->D; e++)
                dot += (double)qrow[e] * (double)krow[e];
            score[n] = dot * d->scale;
            key[n++] = (int32_t)j;
            best = fmax(best, dot * d->scale);
        }
        for (int64_t e = 0; e < d->Dv; e++)
            acc[e] = 0;
        double sum = 0;
        for (int64_t a = 0; a < n; a++) {
            double w = exp(score[a] - best);
            const float *vrow = row_at(&pr->v, b, kh, key[a]);
            sum += w;
            for (int64_t e = 0; e < d->Dv; e++)
                acc[e] += w * (double)vrow[e];
        }
        float *orow = (float *)row_at(&pr->out, b, h, i);
        for (int64_t e = 0; e < d->Dv; e++)
            orow[e] = n ? (float)(acc[e] / sum) : 0.0f;
    }
}

lr_status lr_vertical_slash_attention_ref(lr_ctx *ctx, const lr_vs_params *p, const lr_tensor *q,
                                          const lr_tensor *k, const lr_tensor *v, const lr_tensor *vertical,
                                          const lr_tensor *slash, lr_tensor *out)
{
    vs_problem pr;
    lr_status s = vs_make_problem(ctx, "vertical_slash_attention_ref", p, q, k, v, vertical, slash, out, &pr);
    if (s != LR_OK || pr.d.B * pr.d.Hq == 0 || pr.d.Lq == 0) {
        vs_free(&pr);
        return s;
    }
    size_t bytes = (size_t)pr.d.Lk * 12 + (size_t)pr.d.Dv * 8 + 64;
    if ((s = lr_thread_scratch_reserve(ctx, bytes)) == LR_OK) {
        vs_ref_job job = {ctx, &pr};
        lr_parallel_for(ctx, (size_t)(pr.d.B * pr.d.Hq * ceil_div(pr.d.Lq, REF_ROWS_PER_TASK)), vs_ref_task, &job);
    }
    vs_free(&pr);
    return s;
}

/* ---- vertical-slash: the fused driver ------------------------------------------------- */

typedef struct {
    size_t qt, s, o, m, l, alpha, colmax, lo, hi, wl, kl, total;
} vs_plan;

typedef struct {
    lr_ctx *ctx;
    const vs_problem *pr;
    const lr_attn_kernel *kern;
    float c; /* scale * log2(e) */
    int br, bk, ldo;
    int64_t tiles;
    vs_plan plan;
    /* The head being computed, and its per-head buffers: */
    int64_t b, h, kh;
    const float *kv_cols, *vv_cols; /* its vertical columns' K and V rows, contiguous */
} vs_job;

/* The two hot loops of the diagonals, in GCC/Clang vector extensions (4 floats: SSE on any
 * x86-64, NEON on ARM), so that their partial sums stay in registers at -O2 without
 * instruction-set flags. They are where the time goes, but mostly in memory traffic: each
 * (row, diagonal) pair reads its own key and value row, reused only by the neighbouring
 * diagonals. 16-wide AVX-512 versions of the two loops measured 1.6x faster at L = 2k (in
 * cache) and only ~1.2x at L = 16k, so they are left out. */
typedef float v4f __attribute__((vector_size(16)));

static v4f load4(const float *p)
{
    v4f x;
    memcpy(&x, p, sizeof x);
    return x;
}

/* a . b over n elements: four vectors of partial sums, then their total, in a fixed order. */
static float dot(const float *a, const float *b, int64_t n)
{
    v4f a0 = {0, 0, 0, 0}, a1 = a0, a2 = a0, a3 = a0;
    int64_t e = 0;
    for (; e + 16 <= n; e += 16) {
        a0 += load4(a + e) * load4(b + e);
        a1 += load4(a + e + 4) * load4(b + e + 4);
        a2 += load4(a + e + 8) * load4(b + e + 8);
        a3 += load4(a + e + 12) * load4(b + e + 12);
    }
    for (; e + 4 <= n; e += 4)
        a0 += load4(a + e) * load4(b + e);
    v4f t = (a0 + a1) + (a2 + a3);
    float sum = (t[0] + t[1]) + (t[2] + t[3]);
    for (; e < n; e++)
        sum += a[e] * b[e];
    return sum;
}

/* y[0..n) += sum_t w[t] rows[key[t]][0..n), rows stride elements apart, summed in t order;
 * sixteen columns at a time stay in registers across the rows. */
static void add_rows(float *y, const float *rows, int64_t stride, const float *w, const int64_t *key, int nt,
                     int64_t n)
{
    int64_t e = 0;
    for (; e + 16 <= n; e += 16) {
        v4f a0 = load4(y + e), a1 = load4(y + e + 4), a2 = load4(y + e + 8), a3 = load4(y + e + 12);
        for (int t = 0; t < nt; t++) {
            const float *x = rows + key[t] * stride + e;
            v4f wv = {w[t], w[t], w[t], w[t]};
            a0 += wv * load4(x);
            a1 += wv * load4(x + 4);
            a2 += wv * load4(x + 8);
            a3 += wv * load4(x + 12);
        }
        memcpy(y + e, &a0, sizeof a0);
        memcpy(y + e + 4, &a1, sizeof a1);
        memcpy(y + e + 8, &a2, sizeof a2);
        memcpy(y + e + 12, &a3, sizeof a3);
    }
    for (; e < n; e++) {
        float acc = y[e];
        for (int t = 0; t < nt; t++)
            acc += w[t] * rows[key[t] * stride + e];
        y[e] = acc;
    }
}

/* The diagonals offs[0..ng) (increasing, so that neighbouring diagonals find most of their
 * keys in cache) for the tile's rows: scores, mask, one online-softmax step and the value
 * update. s[g * br + r] is row r's score on diagonal g (the key p0 + r - offs[g]), the tile
 * kernels' layout with diagonals in place of keys, so that their softmax step applies. */
static void run_diagonals(const vs_job *job, float *s, float *o, float *m, float *l, float *alpha,
                          float *colmax, float *wl, int64_t *kl, int64_t i0, int64_t nq, const int32_t *offs, int ng)
{
    const vs_problem *pr = job->pr;
    const mi_dims *d = &pr->d;
    const uint8_t *flags = pr->flags + (job->b * d->Hq + job->h) * d->Lk;
    int br = job->br;
    int64_t p0 = i0 + d->Lk - d->Lq;
    for (int r = 0; r < br; r++)
        colmax[r] = -INFINITY;
    for (int g = 0; g < ng; g++) {
        float *sg = s + (int64_t)g * br;
        int64_t base = p0 - offs[g]; /* key of row 0 */
        for (int r = 0; r < br; r++) {
            int64_t key = base + r;
            if (r >= nq || key < 0 || (flags[key] & IS_VERTICAL)) {
                sg[r] = -INFINITY;
                continue;
            }
            sg[r] = dot(row_at(&pr->q, job->b, job->h, i0 + r), row_at(&pr->k, job->b, job->kh, key), d->D);
            colmax[r] = sg[r] > colmax[r] ? sg[r] : colmax[r];
        }
    }
    job->kern->softmax(s, s, br, ng, job->c, colmax, m, l, alpha);
    const float *vrows = row_at(&pr->v, job->b, job->kh, 0);
    for (int64_t r = 0; r < nq; r++) {
        float *orow = o + r * job->ldo;
        if (alpha[r] != 1.0f)
            for (int64_t e = 0; e < d->Dv; e++)
                orow[e] *= alpha[r];
        int nt = 0;
        for (int g = 0; g < ng; g++) {
            float w = s[(int64_t)g * br + r];
            if (w != 0.0f) {
                wl[nt] = w;
                kl[nt++] = p0 + r - offs[g];
            }
        }
        add_rows(orow, vrows, pr->v.sr, wl, kl, nt, d->Dv);
    }
}

static void vs_task(void *arg, size_t task, int thread)
{
    const vs_job *job = arg;
    const vs_problem *pr = job->pr;
    const mi_dims *d = &pr->d;
    const lr_attn_kernel *kern = job->kern;
    int64_t bh = job->b * d->Hq + job->h;
    int br = job->br, bk = job->bk, ldo = job->ldo;
    int64_t i0 = (int64_t)task * br, nq = min64(br, d->Lq - i0), shift = d->Lk - d->Lq;
    int64_t p0 = i0 + shift, plast = i0 + nq - 1 + shift;

    char *scratch = lr_thread_scratch(job->ctx, thread);
    const vs_plan *plan = &job->plan;
    float *qt = (float *)(scratch + plan->qt), *s = (float *)(scratch + plan->s), *o = (float *)(scratch + plan->o);
    float *m = (float *)(scratch + plan->m), *l = (float *)(scratch + plan->l);
    float *alpha = (float *)(scratch + plan->alpha), *colmax = (float *)(scratch + plan->colmax);
    int32_t *lo = (int32_t *)(scratch + plan->lo), *hi = (int32_t *)(scratch + plan->hi);
    float *wl = (float *)(scratch + plan->wl);
    int64_t *kl = (int64_t *)(scratch + plan->kl);

    for (int64_t r = 0; r < br; r++) {
        const float *row = r < nq ? row_at(&pr->q, job->b, job->h, i0 + r) : NULL;
        for (int64_t e = 0; e < d->D; e++)
            qt[e * br + r] = row ? row[e] : 0.0f;
        m[r] = -INFINITY;
        l[r] = 0.0f;
    }
    memset(o, 0, (size_t)br * (size_t)ldo * sizeof(float));

    /* 1. Vertical columns at or before the last row's position, each visible from its own
     * position on. */
    const int32_t *vl = pr->vlist + bh * pr->nv;
    int64_t nvis = 0;
    while (nvis < pr->vcount[bh] && vl[nvis] <= plast)
        nvis++;
    for (int64_t c0 = 0; c0 < nvis; c0 += bk) {
        int nk = (int)min64(bk, nvis - c0);
        for (int jj = 0; jj < nk; jj++) {
            lo[jj] = (int32_t)min64(max64(vl[c0 + jj] - p0, 0), nq);
            hi[jj] = (int32_t)nq;
        }
        kern->scores(qt, br, job->kv_cols + c0 * d->D, d->D, nk, (int)d->D, s, colmax);
        kern->mask(s, br, nk, lo, hi, colmax);
        kern->softmax(s, s, br, nk, job->c, colmax, m, l, alpha);
        kern->accumulate(s, br, job->vv_cols + c0 * d->Dv, d->Dv, nk, (int)d->Dv, alpha, o, ldo);
    }

    /* 2. The diagonals some row of the tile reaches, DIAG_CHUNK at a time. */
    const int32_t *sl = pr->slist + bh * pr->ns;
    int64_t ne = 0;
    while (ne < pr->scount[bh] && sl[ne] <= plast)
        ne++;
    int chunk = (int)min64(DIAG_CHUNK, bk);
    for (int64_t e0 = 0; e0 < ne; e0 += chunk)
        run_diagonals(job, s, o, m, l, alpha, colmax, wl, kl, i0, nq, sl + e0, (int)min64(chunk, ne - e0));

    for (int64_t r = 0; r < nq; r++) {
        float *row = (float *)row_at(&pr->out, job->b, job->h, i0 + r);
        const float *orow = o + r * ldo;
        float inv = l[r] > 0 ? 1.0f / l[r] : 0.0f;
        for (int64_t e = 0; e < d->Dv; e++)
            row[e] = orow[e] * inv;
    }
}

lr_status lr_vertical_slash_attention(lr_ctx *ctx, const lr_vs_params *p, const lr_tensor *q, const lr_tensor *k,
                                      const lr_tensor *v, const lr_tensor *vertical, const lr_tensor *slash,
                                      lr_tensor *out)
{
    static const char op[] = "vertical_slash_attention";
    vs_problem pr;
    lr_status s = vs_make_problem(ctx, op, p, q, k, v, vertical, slash, out, &pr);
    if (s != LR_OK || pr.d.B * pr.d.Hq == 0 || pr.d.Lq == 0) {
        vs_free(&pr);
        return s;
    }
    const mi_dims *d = &pr.d;
    vs_job job = {.ctx = ctx, .pr = &pr, .kern = lr_attn_kernel_f32(lr_ctx_cpu(ctx))};
    job.c = (float)d->scale * LR_LOG2E;
    job.br = (int)min64(job.kern->block_q, TILE_ROWS);
    job.bk = job.kern->block_k;
    job.ldo = (int)(ceil_div(d->Dv, 16) * 16);
    job.tiles = ceil_div(d->Lq, job.br);
    vs_plan *pl = &job.plan;
    size_t at = 0, br = (size_t)job.br, bk = (size_t)job.bk, f = sizeof(float);
    pl->qt = lr_scratch_take(&at, (size_t)d->D * br * f);
    pl->s = lr_scratch_take(&at, bk * br * f);
    pl->o = lr_scratch_take(&at, br * (size_t)job.ldo * f);
    pl->m = lr_scratch_take(&at, br * f);
    pl->l = lr_scratch_take(&at, br * f);
    pl->alpha = lr_scratch_take(&at, br * f);
    pl->colmax = lr_scratch_take(&at, br * f);
    pl->lo = lr_scratch_take(&at, bk * sizeof(int32_t));
    pl->hi = lr_scratch_take(&at, bk * sizeof(int32_t));
    pl->wl = lr_scratch_take(&at, bk * f);
    pl->kl = lr_scratch_take(&at, bk * sizeof(int64_t));
    pl->total = at;
    /* One query head's vertical rows, gathered once for all its tiles: heads go one at a
     * time, their tiles in parallel. */
    size_t bytes;
    if (!lr_mul_size((size_t)pr.nv, (size_t)(d->D + d->Dv) * f, &bytes)) {
        vs_free(&pr);
        return lr_fail(ctx, LR_ERR_NOMEM, "%s: the vertical rows overflow the address space", op);
    }
    float *mem = NULL;
    if ((s = lr_thread_scratch_reserve(ctx, pl->total)) == LR_OK && !(mem = malloc(bytes ? bytes : f)))
        s = lr_fail(ctx, LR_ERR_NOMEM, "%s: no memory for the vertical rows (%zu bytes)", op, bytes);
    for (int64_t bh = 0; bh < d->B * d->Hq && s == LR_OK; bh++) {
        job.b = bh / d->Hq;
        job.h = bh % d->Hq;
        job.kh = job.h / (d->Hq / d->Hkv);
        float *kcols = mem, *vcols = mem + pr.nv * d->D;
        const int32_t *vl = pr.vlist + bh * pr.nv;
        for (int64_t c = 0; c < pr.vcount[bh]; c++) {
            memcpy(kcols + c * d->D, row_at(&pr.k, job.b, job.kh, vl[c]), (size_t)d->D * f);
            memcpy(vcols + c * d->Dv, row_at(&pr.v, job.b, job.kh, vl[c]), (size_t)d->Dv * f);
        }
        job.kv_cols = kcols;
        job.vv_cols = vcols;
        lr_parallel_for(ctx, (size_t)job.tiles, vs_task, &job);
    }
    free(mem);
    vs_free(&pr);
    return s;
}

/* ---- top-k with deterministic ties ----------------------------------------------------- */

typedef struct {
    double score;
    int32_t index;
} scored;

/* Higher score first, then the smaller index: a total order, so qsort's result is unique. */
static int by_score(const void *pa, const void *pb)
{
    const scored *a = pa, *b = pb;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    return (a->index > b->index) - (a->index < b->index);
}

static bool better(const scored *a, const scored *b) { return by_score(a, b) < 0; }

static void swap_items(scored *a, scored *b)
{
    scored t = *a;
    *a = *b;
    *b = t;
}

/* The n best of items[0..count) by_score, into out[0..n) in increasing index order (indices
 * are 0..count-1). NaN scores rank last. by_score is a strict total order, so the n best are
 * one set whatever the pivots: a quickselect moves them to the front in O(count), and marks
 * in `seen` (count bytes) give them back in index order. */
static void top_indices(scored *items, int64_t count, int64_t n, int32_t *out, uint8_t *seen)
{
    for (int64_t i = 0; i < count; i++)
        if (isnan(items[i].score))
            items[i].score = -INFINITY;
    int64_t lo = 0, hi = count;
    while (hi - lo > 1 && lo < n && n < hi) {
        swap_items(&items[lo + (hi - lo) / 2], &items[hi - 1]); /* pivot to the end */
        int64_t store = lo;
        for (int64_t i = lo; i < hi - 1; i++)
            if (better(&items[i], &items[hi - 1]))
                swap_items(&items[i], &items[store++]);
        swap_items(&items[store], &items[hi - 1]);
        if (store < n)
            lo = store + 1;
        else
            hi = store;
    }
    memset(seen, 0, (size_t)count);
    for (int64_t i = 0; i < n; i++)
        seen[items[i].index] = 1;
    int64_t k = 0;
    for (int64_t i = 0; i < count && k < n; i++)
        if (seen[i])
            out[k++] = (int32_t)i;
}

/* ---- vertical-slash index estimation -------------------------------------------------- */

typedef struct {
    const mi_dims *d;
    int64_t lq;
    float *P;           /* [lq][Lk]: scores, then probabilities */
    double *col, *diag; /* [Lk] */
} est_job;

/* Row r of the last lq queries sits at position Lk - lq + r. */
static void softmax_row_task(void *arg, size_t task, int thread)
{
    (void)thread;
    const est_job *job = arg;
    int64_t Lk = job->d->Lk, r = (int64_t)task, pos = Lk - job->lq + r;
    float *row = job->P + r * Lk;
    int64_t vis = pos < 0 ? 0 : pos + 1;
    float top = -INFINITY;
    for (int64_t j = 0; j < vis; j++)
        top = row[j] > top ? row[j] : top;
    double sum = 0;
    for (int64_t j = 0; j < vis; j++) {
        row[j] = top == -INFINITY ? 0.0f : expf(row[j] - top);
        sum += row[j];
    }
    float inv = sum > 0 ? (float)(1.0 / sum) : 0.0f;
    for (int64_t j = 0; j < vis; j++)
        row[j] *= inv;
    for (int64_t j = vis; j < Lk; j++)
        row[j] = 0.0f;
}

static void sums_task(void *arg, size_t task, int thread)
{
    (void)thread;
    const est_job *job = arg;
    int64_t Lk = job->d->Lk, j0 = (int64_t)task * SUM_COLS_PER_TASK, j1 = min64(j0 + SUM_COLS_PER_TASK, Lk);
    for (int64_t j = j0; j < j1; j++) {
        double col = 0, diag = 0;
        for (int64_t r = 0; r < job->lq; r++) {
            const float *row = job->P + r * Lk;
            int64_t at = Lk - job->lq + r - j; /* the key of diagonal j in row r */
            col += row[j];
            if (at >= 0)
                diag += row[at];
        }
        job->col[j] = col;
        job->diag[j] = diag;
    }
}

lr_status lr_minference_vs_estimate(lr_ctx *ctx, const lr_vs_estimate_params *p, const lr_tensor *q,
                                    const lr_tensor *k, lr_tensor *vertical_out, lr_tensor *slash_out)
{
    static const char op[] = "minference_vs_estimate";
    lr_vs_estimate_params defaults = lr_vs_estimate_default_params();
    if (!p)
        p = &defaults;
    mi_dims d;
    lr_status s;
    if ((s = check_qkv(ctx, op, q, k, NULL, NULL, p->scale, &d)) != LR_OK)
        return s;
    if (d.Lk < 1)
        return lr_fail(ctx, LR_ERR_ARG, "%s: there are no keys to choose from", op);
    if ((s = check_index(ctx, op, "vertical_out", vertical_out, &d, true)) != LR_OK ||
        (s = check_index(ctx, op, "slash_out", slash_out, &d, true)) != LR_OK)
        return s;
    if (p->last_q < 1 || p->forced_vertical < 0 || p->forced_slash < 0)
        return lr_fail(ctx, LR_ERR_ARG, "%s: last_q %lld must be >= 1, forced counts %lld and %lld >= 0", op,
                       (long long)p->last_q, (long long)p->forced_vertical, (long long)p->forced_slash);
    int64_t lq = min64(p->last_q, d.Lq), Lk = d.Lk;
    size_t n_p, p_bytes, bytes; /* the score rows, then (8-byte aligned) the column sums */
    if (!lr_mul_size((size_t)lq, (size_t)Lk, &n_p) || !lr_mul_size(n_p, sizeof(float), &p_bytes) ||
        !lr_add_size(p_bytes, 8, &p_bytes) ||
        !lr_add_size(p_bytes & ~(size_t)7, (size_t)Lk * (2 * sizeof(double) + sizeof(scored) + 1), &bytes))
        return lr_fail(ctx, LR_ERR_NOMEM, "%s: the score rows overflow the address space", op);
    char *mem = malloc(bytes);
    if (!mem)
        return lr_fail(ctx, LR_ERR_NOMEM, "%s: no memory for the score rows (%zu bytes)", op, bytes);
    est_job job = {.d = &d, .lq = lq, .P = (float *)mem};
    job.col = (double *)(mem + (p_bytes & ~(size_t)7));
    job.diag = job.col + Lk;
    scored *items = (scored *)(job.diag + Lk);
    uint8_t *seen = (uint8_t *)(items + Lk);
    mi_view qv = view_of(q), kv = view_of(k);
    for (int64_t b = 0; b < d.B && s == LR_OK; b++) {
        for (int64_t h = 0; h < d.Hq && s == LR_OK; h++) {
            int64_t kh = h / (d.Hq / d.Hkv);
            if (lq > 0) {
                s = lr_sgemm(ctx, LR_NO_TRANS, LR_TRANS, lq, Lk, d.D, (float)d.scale, row_at(&qv, b, h, d.Lq - lq),
                             q->stride[2], row_at(&kv, b, kh, 0), k->stride[2], 0.0f, job.P, Lk);
                if (s != LR_OK)
                    break;
                lr_parallel_for(ctx, (size_t)lq, softmax_row_task, &job);
                lr_parallel_for(ctx, (size_t)ceil_div(Lk, SUM_COLS_PER_TASK), sums_task, &job);
            } else {
                memset(job.col, 0, (size_t)Lk * sizeof(double));
                memset(job.diag, 0, (size_t)Lk * sizeof(double));
            }
            int32_t *vo = (int32_t *)vertical_out->data + b * vertical_out->stride[0] + h * vertical_out->stride[1];
            int32_t *so = (int32_t *)slash_out->data + b * slash_out->stride[0] + h * slash_out->stride[1];
            for (int64_t j = 0; j < Lk; j++)
                items[j] = (scored){j < p->forced_vertical ? INFINITY : job.col[j], (int32_t)j};
            top_indices(items, Lk, vertical_out->shape[2], vo, seen);
            for (int64_t o = 0; o < Lk; o++)
                items[o] = (scored){o < p->forced_slash ? INFINITY : job.diag[o], (int32_t)o};
            top_indices(items, Lk, slash_out->shape[2], so, seen);
        }
    }
    free(mem);
    return s;
}

/* ---- block-sparse mask estimation ----------------------------------------------------- */

typedef struct {
    lr_ctx *ctx;
    const mi_dims *d;
    mi_view q, k;
    int64_t block, top_k, nb;
    double *kpool;  /* [B][Hkv][nb][D] */
    uint8_t *mask;  /* [B][Hq][nb][nb] */
} block_job;

/* The zero-padded mean of rows [n * block, (n + 1) * block) of one head: the sum of the rows
 * there are, over block. */
static void pool_rows(const block_job *job, const mi_view *t, int64_t b, int64_t h, int64_t n, double *out)
{
    int64_t D = job->d->D, r0 = n * job->block, r1 = min64(r0 + job->block, job->d->Lk);
    for (int64_t e = 0; e < D; e++)
        out[e] = 0;
    for (int64_t r = r0; r < r1; r++) {
        const float *row = row_at(t, b, h, r);
        for (int64_t e = 0; e < D; e++)
            out[e] += row[e];
    }
    for (int64_t e = 0; e < D; e++)
        out[e] /= (double)job->block;
}

static void kpool_task(void *arg, size_t task, int thread)
{
    (void)thread;
    const block_job *job = arg;
    int64_t n = (int64_t)task % job->nb, bkh = (int64_t)task / job->nb;
    pool_rows(job, &job->k, bkh / job->d->Hkv, bkh % job->d->Hkv, n, job->kpool + (int64_t)task * job->d->D);
}

static void block_row_task(void *arg, size_t task, int thread)
{
    const block_job *job = arg;
    const mi_dims *d = job->d;
    int64_t nb = job->nb, m = (int64_t)task % nb, bh = (int64_t)task / nb;
    int64_t b = bh / d->Hq, h = bh % d->Hq, kh = h / (d->Hq / d->Hkv);
    double *qm = lr_thread_scratch(job->ctx, thread);
    scored *items = (scored *)(qm + d->D);
    int32_t *kept = (int32_t *)(items + nb);
    uint8_t *seen = (uint8_t *)(kept + nb);
    pool_rows(job, &job->q, b, h, m, qm);
    const double *kp = job->kpool + (b * d->Hkv + kh) * nb * d->D;
    for (int64_t n = 0; n <= m; n++) {
        double dot = 0;
        for (int64_t e = 0; e < d->D; e++)
            dot += qm[e] * kp[n * d->D + e];
        items[n] = (scored){dot, (int32_t)n};
    }
    int64_t keep = min64(job->top_k, m + 1);
    top_indices(items, m + 1, keep, kept, seen);
    uint8_t *row = job->mask + (bh * nb + m) * nb;
    memset(row, 0, (size_t)nb);
    for (int64_t i = 0; i < keep; i++)
        row[kept[i]] = 1;
}

lr_status lr_minference_block_estimate(lr_ctx *ctx, const lr_block_sparse_params *p, const lr_tensor *q,
                                       const lr_tensor *k, lr_tensor *mask_out)
{
    static const char op[] = "minference_block_estimate";
    lr_block_sparse_params defaults = lr_block_sparse_default_params();
    if (!p)
        p = &defaults;
    mi_dims d;
    lr_status s;
    char buf[128];
    if ((s = check_qkv(ctx, op, q, k, NULL, NULL, p->scale, &d)) != LR_OK)
        return s;
    if (d.Lq != d.Lk)
        return lr_fail(ctx, LR_ERR_ARG, "%s: pre-fill only: %lld queries and %lld keys differ", op,
                       (long long)d.Lq, (long long)d.Lk);
    if (p->block < 1 || p->top_k < 1)
        return lr_fail(ctx, LR_ERR_ARG, "%s: block %lld and top_k %lld must be >= 1", op, (long long)p->block,
                       (long long)p->top_k);
    int64_t nb = ceil_div(d.Lk, p->block);
    const lr_tensor *t = mask_out;
    if (!t || t->dtype != LR_U8 || t->ndim != 4 || t->shape[0] != d.B || t->shape[1] != d.Hq ||
        t->shape[2] != nb || t->shape[3] != nb || !lr_tensor_is_contiguous(t) ||
        (!t->data && lr_tensor_numel(t) > 0))
        return lr_fail(ctx, LR_ERR_ARG, "%s: mask_out must be contiguous u8 [B, Hq, nb, nb] = [%lld, %lld, %lld, %lld], "
                       "got %s %s",
                       op, (long long)d.B, (long long)d.Hq, (long long)nb, (long long)nb,
                       t ? lr_dtype_name(t->dtype) : "none", t ? lr_shape_str(t->ndim, t->shape, buf, sizeof buf) : "");
    if (d.B * d.Hq == 0 || nb == 0)
        return LR_OK;
    size_t n_pool, bytes;
    if (!lr_mul_size((size_t)(d.B * d.Hkv * nb), (size_t)d.D * sizeof(double), &n_pool))
        return lr_fail(ctx, LR_ERR_NOMEM, "%s: the pooled keys overflow the address space", op);
    double *kpool = malloc(n_pool);
    if (!kpool)
        return lr_fail(ctx, LR_ERR_NOMEM, "%s: no memory for the pooled keys (%zu bytes)", op, n_pool);
    block_job job = {ctx, &d, view_of(q), view_of(k), p->block, p->top_k, nb, kpool, mask_out->data};
    bytes = (size_t)d.D * sizeof(double) + (size_t)nb * (sizeof(scored) + sizeof(int32_t) + 1) + 64;
    if ((s = lr_thread_scratch_reserve(ctx, bytes)) == LR_OK) {
        lr_parallel_for(ctx, (size_t)(d.B * d.Hkv * nb), kpool_task, &job);
        lr_parallel_for(ctx, (size_t)(d.B * d.Hq * nb), block_row_task, &job);
    }
    free(kpool);
    return s;
}

lr_status lr_block_sparse_attention(lr_ctx *ctx, const lr_block_sparse_params *p, const lr_tensor *q,
                                    const lr_tensor *k, const lr_tensor *v, lr_tensor *out)
{
    static const char op[] = "block_sparse_attention";
    lr_block_sparse_params defaults = lr_block_sparse_default_params();
    if (!p)
        p = &defaults;
    mi_dims d;
    lr_status s;
    if ((s = check_qkv(ctx, op, q, k, v, out, p->scale, &d)) != LR_OK)
        return s;
    if (p->block < 1)
        return lr_fail(ctx, LR_ERR_ARG, "%s: block %lld must be >= 1", op, (long long)p->block);
    int64_t nb = ceil_div(d.Lk, p->block);
    size_t bytes;
    if (!lr_mul_size((size_t)(d.B * d.Hq), (size_t)nb, &bytes) || !lr_mul_size(bytes, (size_t)nb, &bytes))
        return lr_fail(ctx, LR_ERR_NOMEM, "%s: the block mask overflows the address space", op);
    uint8_t *mask = malloc(bytes ? bytes : 1);
    if (!mask)
        return lr_fail(ctx, LR_ERR_NOMEM, "%s: no memory for the block mask (%zu bytes)", op, bytes);
    const int64_t shape[4] = {d.B, d.Hq, nb, nb};
    lr_tensor mt = lr_tensor_from(mask, LR_U8, 4, shape);
    s = lr_minference_block_estimate(ctx, p, q, k, &mt);
    for (int64_t b = 0; b < d.B && s == LR_OK; b++) {
        lr_tensor qs, ks, vs, os;
        const int64_t mshape[3] = {d.Hq, nb, nb};
        lr_tensor bm = lr_tensor_from(mask + (size_t)(b * d.Hq * nb * nb), LR_U8, 3, mshape);
        lr_attn_params ap = lr_attn_default_params();
        ap.scale = p->scale;
        ap.causal = true;
        ap.block_mask = &bm;
        ap.block_q = ap.block_k = p->block;
        if ((s = lr_tensor_slice(ctx, q, 0, b, 1, &qs)) == LR_OK && (s = lr_tensor_slice(ctx, k, 0, b, 1, &ks)) == LR_OK &&
            (s = lr_tensor_slice(ctx, v, 0, b, 1, &vs)) == LR_OK && (s = lr_tensor_slice(ctx, out, 0, b, 1, &os)) == LR_OK)
            s = lr_attention(ctx, &ap, &qs, &ks, &vs, &os);
    }
    free(mask);
    return s;
}
