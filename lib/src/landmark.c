/* Landmark attention: argument checks, the plain references (grouped softmax and top-k
 * retrieval), and one tiled driver for both fast paths.
 *
 * The driver makes each (batch, query head, tile of br query rows) one task, a decomposition
 * that depends on the shapes only, and every row's arithmetic is the same whatever tile it
 * falls in (key chunks start at block boundaries, never at the tile's first row), so results
 * are bit-identical for any thread count and a causal prefix reproduces its rows bit for bit.
 *
 * A task keeps one online softmax (m, l, o) per row in the base-2 units of lr_attention's
 * tile kernels, for the group G of the header. First the earlier blocks join it:
 *   grouped, s <= block_k: key tiles of whole blocks; per block, the kernels' softmax on its
 *              regular columns with a fresh state gives exp2(x_j c - m_b) and Z_b, each
 *              column is scaled per row by exp2(y_b - M) / Z_b (y_b the landmark's logit,
 *              M the group's maximum; 0 for rows in or before the block), landmark columns
 *              by 0, and one accumulate adds the tile;
 *   grouped, s > block_k: each block with its own state (ob, mb, lb) over several key
 *              tiles, then merged into the group with its landmark's weight;
 *   retrieval: the landmark keys (every s-th key row, a strided view) are scored for the
 *              tile through the same kernels, each row keeps its top k, and each kept block
 *              is averaged for that row alone with vector loops.
 * Then the rows' own blocks: their regular keys through scores / mask / softmax / accumulate
 * into the same state, the mask keeping key j for the rows of j's block at positions >= j. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "attention_internal.h"
#include "internal.h"
#include "longrange/landmark.h"
#include "longrange/parallel.h"

enum {
    MAX_HEAD_DIM = 1024,
    REF_ROWS_PER_TASK = 16,
};

lr_landmark_params lr_landmark_default_params(void)
{
    lr_landmark_params p;
    memset(&p, 0, sizeof p);
    p.block_size = 32;
    p.top_k = 4;
    return p;
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* ---- the problem --------------------------------------------------------------------- */

/* A 4-d F32 tensor [batch, head, position, channel]: base and element strides. */
typedef struct {
    const float *data;
    int64_t sb, sh, sl;
} lm_view;

typedef struct {
    int64_t B, Hq, Hkv, group, Lq, Lk, D, Dv;
    int64_t off;   /* position of query row i: i + off */
    int64_t s;     /* block size */
    int64_t top_k; /* blocks per query; INT64_MAX for every earlier block */
    double scale;
    lm_view q, k, v, out;
} lm_problem;

static const float *view_at(const lm_view *t, int64_t b, int64_t h, int64_t pos)
{
    return t->data + b * t->sb + h * t->sh + pos * t->sl;
}

static bool is_landmark(int64_t j, int64_t s) { return (j + 1) % s == 0; }

static lr_status make_problem(lr_ctx *ctx, bool retrieval, const lr_landmark_params *p, const lr_tensor *q,
                              const lr_tensor *k, const lr_tensor *v, const lr_tensor *out, lm_problem *pr)
{
    const char *op = retrieval ? "landmark retrieval" : "landmark attention";
    char a[128], b[128], c[128], e[128];
    lr_status s;
    if ((s = lr_check_tensor4(ctx, op, "q", q, "[B, Hq, Lq, D]", LR_F32)) != LR_OK ||
        (s = lr_check_tensor4(ctx, op, "k", k, "[B, Hkv, Lk, D]", LR_F32)) != LR_OK ||
        (s = lr_check_tensor4(ctx, op, "v", v, "[B, Hkv, Lk, Dv]", LR_F32)) != LR_OK ||
        (s = lr_check_tensor4(ctx, op, "out", out, "[B, Hq, Lq, Dv]", LR_F32)) != LR_OK)
        return s;
    bool ok = k->shape[0] == q->shape[0] && v->shape[0] == q->shape[0] && out->shape[0] == q->shape[0] &&
              v->shape[1] == k->shape[1] && out->shape[1] == q->shape[1] && v->shape[2] == k->shape[2] &&
              out->shape[2] == q->shape[2] && k->shape[3] == q->shape[3] && out->shape[3] == v->shape[3];
    if (!ok)
        return lr_fail(ctx, LR_ERR_ARG,
                       "%s: shapes differ: q %s, k %s, v %s, out %s (q [B, Hq, Lq, D], k [B, Hkv, Lk, D], "
                       "v [B, Hkv, Lk, Dv], out [B, Hq, Lq, Dv])",
                       op, lr_shape_str(4, q->shape, a, sizeof a), lr_shape_str(4, k->shape, b, sizeof b),
                       lr_shape_str(4, v->shape, c, sizeof c), lr_shape_str(4, out->shape, e, sizeof e));
    if (q->shape[1] > 0 && (k->shape[1] < 1 || q->shape[1] % k->shape[1] != 0))
        return lr_fail(ctx, LR_ERR_ARG, "%s: %lld query heads are not a multiple of %lld kv heads", op,
                       (long long)q->shape[1], (long long)k->shape[1]);
    if (q->shape[3] < 1 || q->shape[3] > MAX_HEAD_DIM || v->shape[3] < 1 || v->shape[3] > MAX_HEAD_DIM)
        return lr_fail(ctx, LR_ERR_ARG, "%s: head dims %lld (q, k) and %lld (v) must be in 1..%d", op,
                       (long long)q->shape[3], (long long)v->shape[3], MAX_HEAD_DIM);
    if (p->block_size < 2 || p->block_size > (int64_t)1 << 30)
        return lr_fail(ctx, LR_ERR_ARG, "%s: block_size %lld must be in 2..2^30 (s - 1 regular tokens and a landmark)",
                       op, (long long)p->block_size);
    if (retrieval && p->top_k < 1)
        return lr_fail(ctx, LR_ERR_ARG, "%s: top_k %lld must be >= 1", op, (long long)p->top_k);
    if (!(p->scale >= 0) || isinf(p->scale))
        return lr_fail(ctx, LR_ERR_ARG, "%s: scale %g must be finite and >= 0 (0 selects 1/sqrt(D))", op,
                       (double)p->scale);

    memset(pr, 0, sizeof *pr);
    pr->B = q->shape[0];
    pr->Hq = q->shape[1];
    pr->Hkv = k->shape[1];
    pr->group = pr->Hkv > 0 ? pr->Hq / pr->Hkv : 1;
    pr->Lq = q->shape[2];
    pr->Lk = k->shape[2];
    pr->D = q->shape[3];
    pr->Dv = v->shape[3];
    pr->off = pr->Lk - pr->Lq;
    pr->s = p->block_size;
    pr->top_k = retrieval ? p->top_k : INT64_MAX;
    pr->scale = p->scale > 0 ? p->scale : 1.0 / sqrt((double)pr->D);
    const lr_tensor *src[4] = {q, k, v, out};
    lm_view *dst[4] = {&pr->q, &pr->k, &pr->v, &pr->out};
    for (int i = 0; i < 4; i++)
        *dst[i] = (lm_view){src[i]->data, src[i]->stride[0], src[i]->stride[1], src[i]->stride[2]};
    return LR_OK;
}

/* Blocks before the one of the last key: the most earlier blocks any query can have. */
static int64_t max_blocks(const lm_problem *pr) { return pr->Lk > 0 ? (pr->Lk - 1) / pr->s : 0; }

/* ---- the references ------------------------------------------------------------------ */

typedef struct {
    lr_ctx *ctx;
    const lm_problem *pr;
} ref_job;

static double dot_double(const float *a, const float *b, int64_t n)
{
    double acc = 0;
    for (int64_t e = 0; e < n; e++)
        acc += (double)a[e] * (double)b[e];
    return acc;
}

/* Block b is kept iff fewer than k earlier blocks rank above it: a higher score, or the same
 * score and a lower index. */
static bool ref_kept(const double *lm, int64_t n, int64_t b, int64_t k)
{
    if (k >= n)
        return true;
    int64_t above = 0;
    for (int64_t o = 0; o < n && above < k; o++)
        above += lm[o] > lm[b] || (lm[o] == lm[b] && o < b);
    return above < k;
}

/* scratch: lm [max_blocks], own [s], blk [s], acc [Dv], u [Dv] */
static void ref_row(const lm_problem *pr, int64_t b, int64_t h, int64_t i, double *scratch)
{
    int64_t s = pr->s, hk = h / pr->group, p = i + pr->off;
    double *lm = scratch, *own = lm + max_blocks(pr), *blk = own + s, *acc = blk + s, *u = acc + pr->Dv;
    float *orow = (float *)view_at(&pr->out, b, h, i);
    if (p < 0) {
        for (int64_t e = 0; e < pr->Dv; e++)
            orow[e] = 0.0f;
        return;
    }
    const float *qrow = view_at(&pr->q, b, h, i);
    int64_t c = p / s, n_own = 0;
    double best = -INFINITY;
    for (int64_t bb = 0; bb < c; bb++)
        lm[bb] = pr->scale * dot_double(qrow, view_at(&pr->k, b, hk, bb * s + s - 1), pr->D);
    for (int64_t bb = 0; bb < c; bb++)
        if (ref_kept(lm, c, bb, pr->top_k))
            best = fmax(best, lm[bb]);
    for (int64_t j = c * s; j <= p; j++) {
        if (is_landmark(j, s))
            continue;
        own[n_own] = pr->scale * dot_double(qrow, view_at(&pr->k, b, hk, j), pr->D);
        best = fmax(best, own[n_own++]);
    }
    double sum = 0;
    for (int64_t e = 0; e < pr->Dv; e++)
        acc[e] = 0;
    for (int64_t j = c * s, a = 0; j <= p; j++) {
        if (is_landmark(j, s))
            continue;
        double w = exp(own[a++] - best);
        const float *vrow = view_at(&pr->v, b, hk, j);
        sum += w;
        for (int64_t e = 0; e < pr->Dv; e++)
            acc[e] += w * (double)vrow[e];
    }
    for (int64_t bb = 0; bb < c; bb++) {
        if (!ref_kept(lm, c, bb, pr->top_k))
            continue;
        /* the block's own softmax over its s - 1 regular tokens */
        double bmax = -INFINITY, bsum = 0;
        for (int64_t a = 0; a < s - 1; a++) {
            blk[a] = pr->scale * dot_double(qrow, view_at(&pr->k, b, hk, bb * s + a), pr->D);
            bmax = fmax(bmax, blk[a]);
        }
        for (int64_t e = 0; e < pr->Dv; e++)
            u[e] = 0;
        for (int64_t a = 0; a < s - 1; a++) {
            double w = exp(blk[a] - bmax);
            const float *vrow = view_at(&pr->v, b, hk, bb * s + a);
            bsum += w;
            for (int64_t e = 0; e < pr->Dv; e++)
                u[e] += w * (double)vrow[e];
        }
        double w = exp(lm[bb] - best);
        sum += w;
        for (int64_t e = 0; e < pr->Dv; e++)
            acc[e] += w * u[e] / bsum;
    }
    for (int64_t e = 0; e < pr->Dv; e++)
        orow[e] = (float)(acc[e] / sum);
}

static void ref_task(void *arg, size_t task, int thread)
{
    const ref_job *job = arg;
    const lm_problem *pr = job->pr;
    int64_t per_head = ceil_div(pr->Lq, REF_ROWS_PER_TASK);
    int64_t head = (int64_t)task / per_head, i0 = (int64_t)task % per_head * REF_ROWS_PER_TASK;
    double *scratch = lr_thread_scratch(job->ctx, thread);
    for (int64_t i = i0; i < min64(i0 + REF_ROWS_PER_TASK, pr->Lq); i++)
        ref_row(pr, head / pr->Hq, head % pr->Hq, i, scratch);
}

static lr_status landmark_ref(lr_ctx *ctx, bool retrieval, const lr_landmark_params *p, const lr_tensor *q,
                              const lr_tensor *k, const lr_tensor *v, lr_tensor *out)
{
    lr_landmark_params defaults = lr_landmark_default_params();
    lm_problem pr;
    lr_status s = make_problem(ctx, retrieval, p ? p : &defaults, q, k, v, out, &pr);
    if (s != LR_OK)
        return s;
    if (pr.B == 0 || pr.Hq == 0 || pr.Lq == 0)
        return LR_OK;
    size_t bytes;
    if (!lr_mul_size((size_t)max_blocks(&pr) + 2 * (size_t)pr.s + 2 * (size_t)pr.Dv, sizeof(double), &bytes))
        return lr_fail(ctx, LR_ERR_NOMEM, "landmark: scratch size overflows");
    if ((s = lr_thread_scratch_reserve(ctx, bytes)) != LR_OK)
        return s;
    ref_job job = {ctx, &pr};
    lr_parallel_for(ctx, (size_t)(pr.B * pr.Hq * ceil_div(pr.Lq, REF_ROWS_PER_TASK)), ref_task, &job);
    return LR_OK;
}

lr_status lr_landmark_attention_ref(lr_ctx *ctx, const lr_landmark_params *p, const lr_tensor *q,
                                    const lr_tensor *k, const lr_tensor *v, lr_tensor *out)
{
    return landmark_ref(ctx, false, p, q, k, v, out);
}

lr_status lr_landmark_retrieval_ref(lr_ctx *ctx, const lr_landmark_params *p, const lr_tensor *q,
                                    const lr_tensor *k, const lr_tensor *v, lr_tensor *out)
{
    return landmark_ref(ctx, true, p, q, k, v, out);
}

/* ---- the tiled driver ---------------------------------------------------------------- */

/* Where each piece of a task's scratch starts, in bytes (64-byte aligned). */
typedef struct {
    size_t qt, s, o, m, l, alpha, colmax, lo, hi;  /* the group's state and the tile kernels' */
    size_t ob, mb, lb, alphab, lms, colmax2;        /* grouped: one earlier block */
    size_t sel_score, sel_idx, sel_n, sel_worst, row_s, row_u; /* retrieval */
    size_t total;
} scratch_plan;

typedef struct {
    lr_ctx *ctx;
    const lm_problem *pr;
    const lr_attn_kernel *kern;
    bool retrieval;
    float c;        /* scale * log2(e): q.k into a base-2 logit */
    int br, bk, ldo;
    int64_t tiles;  /* query tiles per head */
    int64_t kcap;   /* retrieval: blocks a row can keep, min(top_k, max_blocks) */
    scratch_plan plan;
} lm_job;

typedef struct {
    const lm_job *job;
    int64_t b, h, hk, i0, nrows;
    float *qt, *s, *o, *m, *l, *alpha, *colmax;
    int32_t *lo, *hi;
    float *ob, *mb, *lb, *alphab, *lms, *colmax2;
    float *sel_score, *row_s, *row_u;
    int64_t *sel_idx, *sel_n, *sel_worst;
} lm_task;

static void pack_queries(const lm_task *t)
{
    const lm_problem *pr = t->job->pr;
    int64_t br = t->job->br;
    for (int64_t i = 0; i < br; i++) {
        float *col = t->qt + i;
        const float *row = i < t->nrows ? view_at(&pr->q, t->b, t->h, t->i0 + i) : NULL;
        for (int64_t e = 0; e < pr->D; e++)
            col[e * br] = row ? row[e] : 0.0f;
    }
}

/* fmaxf without its NaN rules, which baseline x86-64 compiles to a libm call. */
static float max_float(float a, float b) { return b > a ? b : a; }

/* Per-row loops (block merges, retrieval) run along the head dims: two 4-lane vectors
 * (GCC/Clang vector extensions, SSE on baseline x86-64), in a fixed order. */
typedef float v4f __attribute__((vector_size(16)));

static v4f load4(const float *p)
{
    v4f x;
    memcpy(&x, p, sizeof x);
    return x;
}

static void store4(float *p, v4f x) { memcpy(p, &x, sizeof x); }

static float dot_float(const float *a, const float *b, int64_t n)
{
    v4f acc0 = {0}, acc1 = {0};
    int64_t e = 0;
    for (; e + 8 <= n; e += 8) {
        acc0 += load4(a + e) * load4(b + e);
        acc1 += load4(a + e + 4) * load4(b + e + 4);
    }
    v4f acc = acc0 + acc1;
    float r = (acc[0] + acc[2]) + (acc[1] + acc[3]);
    for (; e < n; e++)
        r += a[e] * b[e];
    return r;
}

/* u = u * a + w * x over n floats */
static void scale_add(float *u, float a, float w, const float *x, int64_t n)
{
    int64_t e = 0;
    for (; e + 4 <= n; e += 4)
        store4(u + e, load4(u + e) * a + load4(x + e) * w);
    for (; e < n; e++)
        u[e] = u[e] * a + x[e] * w;
}

/* row[i] *= f[i] for i < n (n a multiple of 16: a tile's rows) */
static void scale_rows(float *row, const float *f, int64_t n)
{
    for (int64_t i = 0; i + 4 <= n; i += 4)
        store4(row + i, load4(row + i) * load4(f + i));
}

/* Two dot products with one vector: q . k0 and q . k1 (q loaded once for both). */
static void dot2(const float *q, const float *k0, const float *k1, int64_t n, float *r0, float *r1)
{
    v4f a0 = {0}, a1 = {0}, b0 = {0}, b1 = {0};
    int64_t e = 0;
    for (; e + 8 <= n; e += 8) {
        v4f x = load4(q + e), y = load4(q + e + 4);
        a0 += x * load4(k0 + e);
        a1 += y * load4(k0 + e + 4);
        b0 += x * load4(k1 + e);
        b1 += y * load4(k1 + e + 4);
    }
    v4f a = a0 + a1, b = b0 + b1;
    float ra = (a[0] + a[2]) + (a[1] + a[3]), rb = (b[0] + b[2]) + (b[1] + b[3]);
    for (; e < n; e++) {
        ra += q[e] * k0[e];
        rb += q[e] * k1[e];
    }
    *r0 = ra;
    *r1 = rb;
}

/* u += w0 x0 + w1 x1 over n floats (u loaded and stored once for both). */
static void axpy2(float *u, float w0, const float *x0, float w1, const float *x1, int64_t n)
{
    int64_t e = 0;
    for (; e + 4 <= n; e += 4)
        store4(u + e, load4(u + e) + load4(x0 + e) * w0 + load4(x1 + e) * w1);
    for (; e < n; e++)
        u[e] = u[e] + x0[e] * w0 + x1[e] * w1;
}

/* Adds to row i's group a block whose regular tokens sum to ob (weights exp2(.), total lb),
 * weighted by its landmark, whose score q.k is x. The maximum is rounded as the tile kernels
 * round theirs and the exponent taken from the exact product, as theirs are: a landmark that
 * ties with a token of the own block then gets the same weight, even for logits of 1e4. */
static void merge_block(const lm_task *t, int64_t i, float x, const float *ob, float lb)
{
    const lm_job *job = t->job;
    float m_old = t->m[i], m_new = max_float(m_old, x * job->c);
    float a = exp2f(m_old - m_new); /* 0 while the group is empty: m_old = -inf */
    float w = exp2f((float)((double)x * job->c - m_new));
    float f = w / lb;
    scale_add(t->o + i * job->ldo, a, f, ob, job->pr->Dv);
    t->l[i] = t->l[i] * a + w;
    t->m[i] = m_new;
}

/* Grouped softmax, blocks that fit a key tile: nb = bk / s whole blocks per tile of keys,
 * and no per-block output. A block's share is P_G(landmark) * softmax_b(x)_j =
 * exp2(y_b - M) / Z_b * exp2(x_j c - m_b), so after the within-block softmax (the kernels'
 * softmax on the block's columns, fresh state) each column of block b is scaled per row by
 * exp2(y_b - M) / Z_b (0 for rows that do not see b as an earlier block), the landmark
 * columns get 0, and one accumulate adds the whole tile, with alpha rescaling the group for
 * its new maximum M. */
static void grouped_short_blocks(const lm_task *t, int64_t c_last)
{
    const lm_job *job = t->job;
    const lm_problem *pr = job->pr;
    const lr_attn_kernel *kern = job->kern;
    int br = job->br;
    int64_t s = pr->s, nb = job->bk / s, base = pr->off + t->i0;
    for (int j = 0; j < job->bk; j++) {
        t->lo[j] = 0;
        t->hi[j] = br;
    }
    for (int64_t b0 = 0; b0 < c_last; b0 += nb) {
        int64_t n_blocks = min64(nb, c_last - b0);
        int nk = (int)(n_blocks * s);
        kern->scores(t->qt, br, view_at(&pr->k, t->b, t->hk, b0 * s), pr->k.sl, nk, (int)pr->D, t->s, t->colmax);
        /* the group's new maximum over the landmarks each row sees as earlier blocks */
        for (int i = 0; i < br; i++) {
            float m_new = t->m[i];
            for (int64_t a = 0; a < n_blocks; a++)
                if (base + i >= (b0 + a + 1) * s)
                    m_new = max_float(m_new, t->s[((a + 1) * s - 1) * br + i] * job->c);
            t->alpha[i] = m_new == t->m[i] ? 1.0f : exp2f(t->m[i] - m_new);
            t->l[i] *= t->alpha[i];
            t->mb[i] = m_new; /* held until the tile is added */
        }
        for (int64_t a = 0; a < n_blocks; a++) {
            float *sub = t->s + a * s * br, *lm = t->s + ((a + 1) * s - 1) * br;
            int64_t lo = min64(max64((b0 + a + 1) * s - base, 0), br); /* first row past block */
            /* lms: the block's own maximum during its softmax, then each row's factor */
            for (int i = 0; i < br; i++) {
                t->lb[i] = 0.0f;
                t->lms[i] = -INFINITY;
            }
            kern->mask(sub, br, (int)(s - 1), t->lo, t->hi, t->colmax2); /* colmax of the block */
            kern->softmax(sub, sub, br, (int)(s - 1), job->c, t->colmax2, t->lms, t->lb, t->alphab);
            for (int64_t i = 0; i < br; i++) {
                float w = 0.0f;
                if (i >= lo) {
                    w = exp2f((float)((double)lm[i] * job->c - t->mb[i]));
                    t->l[i] += w;
                }
                t->lms[i] = w / t->lb[i];
            }
            for (int64_t j = 0; j < s - 1; j++)
                scale_rows(sub + j * br, t->lms, br);
            for (int i = 0; i < br; i++)
                lm[i] = 0.0f;
        }
        for (int i = 0; i < br; i++)
            t->m[i] = t->mb[i];
        kern->accumulate(t->s, br, view_at(&pr->v, t->b, t->hk, b0 * s), pr->v.sl, nk, (int)pr->Dv, t->alpha, t->o,
                         job->ldo);
    }
}

/* Grouped softmax, blocks longer than a key tile: each earlier block through its own
 * within-block state (ob, mb, lb), then merged; the rows that do not see it as an earlier
 * block compute it too and drop it. */
static void grouped_long_blocks(const lm_task *t, int64_t c_last)
{
    const lm_job *job = t->job;
    const lm_problem *pr = job->pr;
    const lr_attn_kernel *kern = job->kern;
    int br = job->br;
    int64_t s = pr->s;
    for (int64_t bb = 0; bb < c_last; bb++) {
        int64_t lo = max64((bb + 1) * s - pr->off - t->i0, 0); /* first row past the block */
        memset(t->ob, 0, (size_t)br * (size_t)job->ldo * sizeof(float));
        for (int i = 0; i < br; i++) {
            t->mb[i] = -INFINITY;
            t->lb[i] = 0.0f;
        }
        int64_t end = bb * s + s - 1;
        for (int64_t j0 = bb * s; j0 < end; j0 += job->bk) {
            int nk = (int)min64(job->bk, end - j0);
            kern->scores(t->qt, br, view_at(&pr->k, t->b, t->hk, j0), pr->k.sl, nk, (int)pr->D, t->s, t->colmax);
            kern->softmax(t->s, t->s, br, nk, job->c, t->colmax, t->mb, t->lb, t->alphab);
            kern->accumulate(t->s, br, view_at(&pr->v, t->b, t->hk, j0), pr->v.sl, nk, (int)pr->Dv, t->alphab, t->ob,
                             job->ldo);
        }
        kern->scores(t->qt, br, view_at(&pr->k, t->b, t->hk, end), pr->k.sl, 1, (int)pr->D, t->lms, t->colmax2);
        for (int64_t i = lo; i < t->nrows; i++)
            merge_block(t, i, t->lms[i], t->ob + i * job->ldo, t->lb[i]);
    }
}

/* Row i offers block bb with landmark score x; blocks arrive in increasing order, so on a tie
 * with the worst kept block the newcomer (higher index) loses. Once k blocks are kept, the
 * worst one's score is the bar a newcomer must pass, checked first. */
static void offer(const lm_task *t, int64_t i, float x, int64_t bb)
{
    int64_t kcap = t->job->kcap, n = t->sel_n[i];
    float *score = t->sel_score + i * kcap;
    int64_t *idx = t->sel_idx + i * kcap;
    if (n == kcap && !(x > score[t->sel_worst[i]]))
        return;
    if (!(x == x))
        return;
    int64_t at = n < kcap ? n : t->sel_worst[i];
    score[at] = x;
    idx[at] = bb;
    if (n < kcap)
        t->sel_n[i] = ++n;
    if (n == kcap) {
        int64_t worst = 0;
        for (int64_t a = 1; a < n; a++)
            if (score[a] < score[worst] || (score[a] == score[worst] && idx[a] > idx[worst]))
                worst = a;
        t->sel_worst[i] = worst;
    }
}

/* Retrieval: score the tile against the landmarks of the blocks below its last block, keep
 * each row's top k, and average each kept block for that row. */
static void retrieve_earlier_blocks(const lm_task *t, int64_t c_last)
{
    const lm_job *job = t->job;
    const lm_problem *pr = job->pr;
    const lr_attn_kernel *kern = job->kern;
    int br = job->br;
    int64_t s = pr->s, kcap = job->kcap;
    for (int64_t i = 0; i < t->nrows; i++)
        t->sel_n[i] = 0;
    for (int64_t b0 = 0; b0 < c_last; b0 += job->bk) {
        int nk = (int)min64(job->bk, c_last - b0);
        kern->scores(t->qt, br, view_at(&pr->k, t->b, t->hk, b0 * s + s - 1), s * pr->k.sl, nk, (int)pr->D, t->s,
                     t->colmax);
        for (int64_t i = 0; i < t->nrows; i++) {
            int64_t p = t->i0 + i + pr->off;
            if (p < 0)
                continue;
            int64_t n = min64(nk, p / s - b0);
            for (int64_t a = 0; a < n; a++)
                offer(t, i, t->s[a * br + i], b0 + a);
        }
    }
    for (int64_t i = 0; i < t->nrows; i++) {
        int64_t n = t->sel_n[i];
        float *score = t->sel_score + i * kcap;
        int64_t *idx = t->sel_idx + i * kcap;
        /* in block order (already so unless a block was replaced) */
        for (int64_t a = 1; a < n; a++) {
            float x = score[a];
            int64_t id = idx[a], z = a;
            for (; z > 0 && idx[z - 1] > id; z--) {
                score[z] = score[z - 1];
                idx[z] = idx[z - 1];
            }
            score[z] = x;
            idx[z] = id;
        }
        const float *qrow = view_at(&pr->q, t->b, t->h, t->i0 + i);
        for (int64_t a = 0; a < n; a++) {
            int64_t j0 = idx[a] * s;
            float mx = -INFINITY, sum = 0.0f;
            int64_t z = 0, n_reg = s - 1;
            for (; z + 2 <= n_reg; z += 2)
                dot2(qrow, view_at(&pr->k, t->b, t->hk, j0 + z), view_at(&pr->k, t->b, t->hk, j0 + z + 1), pr->D,
                     &t->row_s[z], &t->row_s[z + 1]);
            if (z < n_reg)
                t->row_s[z] = dot_float(qrow, view_at(&pr->k, t->b, t->hk, j0 + z), pr->D);
            for (z = 0; z < n_reg; z++)
                mx = max_float(mx, t->row_s[z]);
            for (z = 0; z < n_reg; z++) {
                t->row_s[z] = exp2f((t->row_s[z] - mx) * job->c);
                sum += t->row_s[z];
            }
            for (int64_t e = 0; e < pr->Dv; e++)
                t->row_u[e] = 0.0f;
            for (z = 0; z + 2 <= n_reg; z += 2)
                axpy2(t->row_u, t->row_s[z], view_at(&pr->v, t->b, t->hk, j0 + z), t->row_s[z + 1],
                      view_at(&pr->v, t->b, t->hk, j0 + z + 1), pr->Dv);
            if (z < n_reg)
                scale_add(t->row_u, 1.0f, t->row_s[z], view_at(&pr->v, t->b, t->hk, j0 + z), pr->Dv);
            merge_block(t, i, score[a], t->row_u, sum);
        }
    }
}

/* The rows' own blocks c_first..c_last: regular key j is seen by the rows of its block at
 * positions >= j. Chunks start at the block's first key, whatever the tile. */
static void own_blocks(const lm_task *t, int64_t c_first, int64_t c_last, int64_t p_last)
{
    const lm_job *job = t->job;
    const lm_problem *pr = job->pr;
    const lr_attn_kernel *kern = job->kern;
    int br = job->br;
    int64_t s = pr->s, base = pr->off + t->i0; /* position of the tile's row 0 */
    for (int64_t cb = c_first; cb <= c_last; cb++) {
        int64_t end = min64(cb * s + s - 1, p_last + 1);
        int64_t row_end = min64((cb + 1) * s - base, t->nrows);
        for (int64_t j0 = cb * s; j0 < end; j0 += job->bk) {
            int nk = (int)min64(job->bk, end - j0);
            for (int j = 0; j < nk; j++) {
                int64_t lo = min64(max64(j0 + j - base, 0), t->nrows);
                t->lo[j] = (int32_t)lo;
                t->hi[j] = (int32_t)max64(row_end, lo);
            }
            kern->scores(t->qt, br, view_at(&pr->k, t->b, t->hk, j0), pr->k.sl, nk, (int)pr->D, t->s, t->colmax);
            kern->mask(t->s, br, nk, t->lo, t->hi, t->colmax);
            kern->softmax(t->s, t->s, br, nk, job->c, t->colmax, t->m, t->l, t->alpha);
            kern->accumulate(t->s, br, view_at(&pr->v, t->b, t->hk, j0), pr->v.sl, nk, (int)pr->Dv, t->alpha, t->o,
                             job->ldo);
        }
    }
}

static void write_output(const lm_task *t)
{
    const lm_job *job = t->job;
    const lm_problem *pr = job->pr;
    for (int64_t i = 0; i < t->nrows; i++) {
        const float *o = t->o + i * job->ldo;
        float *row = (float *)view_at(&pr->out, t->b, t->h, t->i0 + i);
        float inv = t->l[i] > 0 ? 1.0f / t->l[i] : 0.0f; /* 0: a row before the first key */
        for (int64_t e = 0; e < pr->Dv; e++)
            row[e] = t->l[i] > 0 ? o[e] * inv : 0.0f;
    }
}

static void lm_task_run(void *arg, size_t task, int thread)
{
    const lm_job *job = arg;
    const lm_problem *pr = job->pr;
    lm_task t = {.job = job};
    int64_t tile = (int64_t)task % job->tiles, head = (int64_t)task / job->tiles;
    t.b = head / pr->Hq;
    t.h = head % pr->Hq;
    t.hk = t.h / pr->group;
    t.i0 = tile * job->br;
    t.nrows = min64(job->br, pr->Lq - t.i0);

    char *scratch = lr_thread_scratch(job->ctx, thread);
    const scratch_plan *plan = &job->plan;
    t.qt = (float *)(scratch + plan->qt);
    t.s = (float *)(scratch + plan->s);
    t.o = (float *)(scratch + plan->o);
    t.m = (float *)(scratch + plan->m);
    t.l = (float *)(scratch + plan->l);
    t.alpha = (float *)(scratch + plan->alpha);
    t.colmax = (float *)(scratch + plan->colmax);
    t.lo = (int32_t *)(scratch + plan->lo);
    t.hi = (int32_t *)(scratch + plan->hi);
    t.ob = (float *)(scratch + plan->ob);
    t.mb = (float *)(scratch + plan->mb);
    t.lb = (float *)(scratch + plan->lb);
    t.alphab = (float *)(scratch + plan->alphab);
    t.lms = (float *)(scratch + plan->lms);
    t.colmax2 = (float *)(scratch + plan->colmax2);
    t.sel_score = (float *)(scratch + plan->sel_score);
    t.sel_idx = (int64_t *)(scratch + plan->sel_idx);
    t.sel_n = (int64_t *)(scratch + plan->sel_n);
    t.sel_worst = (int64_t *)(scratch + plan->sel_worst);
    t.row_s = (float *)(scratch + plan->row_s);
    t.row_u = (float *)(scratch + plan->row_u);

    memset(t.o, 0, (size_t)job->br * (size_t)job->ldo * sizeof(float));
    for (int i = 0; i < job->br; i++) {
        t.m[i] = -INFINITY;
        t.l[i] = 0.0f;
    }
    int64_t p_last = t.i0 + t.nrows - 1 + pr->off;
    if (p_last >= 0) {
        pack_queries(&t);
        int64_t c_first = max64(t.i0 + pr->off, 0) / pr->s, c_last = p_last / pr->s;
        if (job->retrieval)
            retrieve_earlier_blocks(&t, c_last);
        else if (pr->s <= job->bk)
            grouped_short_blocks(&t, c_last);
        else
            grouped_long_blocks(&t, c_last);
        own_blocks(&t, c_first, c_last, p_last);
    }
    write_output(&t);
}

static scratch_plan plan_scratch(const lm_job *job)
{
    scratch_plan s;
    memset(&s, 0, sizeof s);
    size_t at = 0, br = (size_t)job->br, bk = (size_t)job->bk, f = sizeof(float);
    size_t o_bytes = br * (size_t)job->ldo * f;
    s.qt = lr_scratch_take(&at, (size_t)job->pr->D * br * f);
    s.s = lr_scratch_take(&at, bk * br * f);
    s.o = lr_scratch_take(&at, o_bytes);
    s.m = lr_scratch_take(&at, br * f);
    s.l = lr_scratch_take(&at, br * f);
    s.alpha = lr_scratch_take(&at, br * f);
    s.colmax = lr_scratch_take(&at, br * f);
    s.lo = lr_scratch_take(&at, bk * sizeof(int32_t));
    s.hi = lr_scratch_take(&at, bk * sizeof(int32_t));
    if (!job->retrieval) {
        s.ob = lr_scratch_take(&at, o_bytes);
        s.mb = lr_scratch_take(&at, br * f);
        s.lb = lr_scratch_take(&at, br * f);
        s.alphab = lr_scratch_take(&at, br * f);
        s.lms = lr_scratch_take(&at, br * f);
        s.colmax2 = lr_scratch_take(&at, br * f);
    } else {
        size_t kcap = (size_t)job->kcap;
        s.sel_score = lr_scratch_take(&at, br * kcap * f);
        s.sel_idx = lr_scratch_take(&at, br * kcap * sizeof(int64_t));
        s.sel_n = lr_scratch_take(&at, br * sizeof(int64_t));
        s.sel_worst = lr_scratch_take(&at, br * sizeof(int64_t));
        s.row_s = lr_scratch_take(&at, (size_t)job->pr->s * f);
        s.row_u = lr_scratch_take(&at, (size_t)job->pr->Dv * f);
    }
    s.total = at;
    return s;
}

static lr_status landmark_fast(lr_ctx *ctx, bool retrieval, const lr_landmark_params *p, const lr_tensor *q,
                               const lr_tensor *k, const lr_tensor *v, lr_tensor *out)
{
    lr_landmark_params defaults = lr_landmark_default_params();
    lm_problem pr;
    lr_status s = make_problem(ctx, retrieval, p ? p : &defaults, q, k, v, out, &pr);
    if (s != LR_OK)
        return s;
    if (pr.B == 0 || pr.Hq == 0 || pr.Lq == 0)
        return LR_OK;
    lm_job job = {.ctx = ctx, .pr = &pr, .kern = lr_attn_kernel_f32(lr_ctx_cpu(ctx)), .retrieval = retrieval};
    job.c = (float)pr.scale * LR_LOG2E;
    job.br = (int)min64(job.kern->block_q, ceil_div(pr.Lq, 16) * 16);
    job.bk = job.kern->block_k;
    job.ldo = (int)(ceil_div(pr.Dv, 16) * 16);
    job.tiles = ceil_div(pr.Lq, job.br);
    job.kcap = retrieval ? max64(min64(pr.top_k, max_blocks(&pr)), 1) : 0;
    /* The selection arrays grow with min(top_k, Lk / s): refuse sizes that overflow. */
    size_t sel;
    if (!lr_mul_size((size_t)job.br * 12, (size_t)job.kcap, &sel) || sel > ((size_t)1 << 40))
        return lr_fail(ctx, LR_ERR_NOMEM, "landmark retrieval: top_k %lld needs too much scratch",
                       (long long)pr.top_k);
    job.plan = plan_scratch(&job);
    if ((s = lr_thread_scratch_reserve(ctx, job.plan.total)) != LR_OK)
        return s;
    lr_parallel_for(ctx, (size_t)(pr.B * pr.Hq * job.tiles), lm_task_run, &job);
    return LR_OK;
}

lr_status lr_landmark_attention(lr_ctx *ctx, const lr_landmark_params *p, const lr_tensor *q, const lr_tensor *k,
                                const lr_tensor *v, lr_tensor *out)
{
    return landmark_fast(ctx, false, p, q, k, v, out);
}

lr_status lr_landmark_retrieval(lr_ctx *ctx, const lr_landmark_params *p, const lr_tensor *q, const lr_tensor *k,
                                const lr_tensor *v, lr_tensor *out)
{
    return landmark_fast(ctx, true, p, q, k, v, out);
}

/* ---- work count ---------------------------------------------------------------------- */

int64_t lr_landmark_pairs(int64_t block_size, int64_t top_k, int64_t Lq, int64_t Lk, int64_t *valued)
{
    if (valued)
        *valued = 0;
    if (block_size < 2 || Lq < 0 || Lk < 0)
        return -1;
    int64_t s = block_size, scored = 0, used = 0;
    for (int64_t p = max64(Lk - Lq, 0); p < Lk; p++) {
        int64_t c = p / s, own = p - c * s + 1 - (is_landmark(p, s) ? 1 : 0);
        int64_t kept = top_k > 0 ? min64(top_k, c) : c;
        int64_t sc = top_k > 0 ? c + kept * (s - 1) + own : c * s + own;
        int64_t va = kept * (s - 1) + own;
        if (__builtin_add_overflow(scored, sc, &scored) || __builtin_add_overflow(used, va, &used))
            return -1;
    }
    if (valued)
        *valued = used;
    return scored;
}
