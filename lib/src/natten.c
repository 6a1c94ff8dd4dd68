/* Neighbourhood attention, 1D and 2D with dilation: argument checks, the neighbour rule in
 * NATTEN's form (for the reference) and in sub-grid form (for the fast path), the plain
 * reference, and the fused driver.
 *
 * Both entry points become one problem: images [Y, X] per (batch, head); 1D is an image of
 * one row with a kernel of 1 along y. A dilation sub-grid along x (the positions congruent to
 * rho mod d) is an undilated sequence whose rows are d * stride apart, so the driver only
 * ever sees plain NA on strided rows.
 *
 * The driver makes each (batch, head, query row y, x residue, tile of br consecutive sub-grid
 * queries) one task, a decomposition that depends on the shapes only, so results are
 * bit-identical for any thread count. Window starts grow with the query, so a tile's queries
 * together see one range of sub-grid keys on each of their k key rows, and the queries that
 * see a given key form an interval: exactly what the masked tile kernels of lr_attention
 * (attention_internal.h) take. The task packs its queries once and streams the key rows
 * through those kernels' scores, mask, online softmax and accumulate steps, with the rpb
 * added to the scores in between. */
#include <math.h>
#include <string.h>

#include "attention_internal.h"
#include "internal.h"
#include "longrange/natten.h"
#include "longrange/parallel.h"

enum {
    MAX_HEAD_DIM = 1024,
    SMALL_TILE = 16,        /* query rows per tile for small windows, where wider tiles waste work */
    WIDE_WINDOW = 64,       /* from this kernel size on, tiles take up to WIDE_TILE rows */
    WIDE_TILE = 64,
    REF_ROWS_PER_TASK = 16,
};

lr_na_params lr_na_default_params(void)
{
    lr_na_params p;
    memset(&p, 0, sizeof p);
    p.kernel_size = 7;
    p.dilation = 1;
    return p;
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* ---- the neighbour rule, NATTEN's form ----------------------------------------------- */

/* First neighbour of i (NATTEN's get_window_start), for L >= k * d. */
static int64_t natten_window_start(int64_t i, int64_t L, int64_t k, int64_t d)
{
    int64_t r = k / 2;
    if (d == 1)
        return max64(i - r, 0) + (i + r >= L ? L - i - r - 1 : 0);
    if (i - r * d < 0)
        return i % d;
    if (i + r * d >= L) {
        int64_t residue = i % d, whole = L / d * d, rest = L - whole;
        return residue < rest ? L - rest + residue - 2 * r * d : whole + residue - k * d;
    }
    return i - r * d;
}

/* rpb offset of the first neighbour (NATTEN's get_pb_start). */
static int64_t natten_pb_start(int64_t i, int64_t L, int64_t k, int64_t d)
{
    int64_t r = k / 2;
    if (d == 1)
        return r + (i < r ? r - i : 0) + (i + r >= L ? L - i - 1 - r : 0);
    if (i - r * d < 0)
        return k - 1 - i / d;
    if (i + r * d >= L)
        return (L - i - 1) / d;
    return r;
}

int64_t lr_na_neighbours(int64_t i, int64_t L, int64_t k, int64_t d, bool causal, int64_t *idx, int64_t *pb)
{
    int64_t span;
    if (k < 1 || k % 2 == 0 || d < 1 || __builtin_mul_overflow(k, d, &span) || (!causal && L < span) || i < 0 ||
        i >= L)
        return -1;
    int64_t n = causal ? min64(k, i / d + 1) : k;
    int64_t start = causal ? i - (n - 1) * d : natten_window_start(i, L, k, d);
    int64_t pb0 = causal ? -1 : natten_pb_start(i, L, k, d);
    for (int64_t a = 0; a < n; a++) {
        idx[a] = start + a * d;
        if (pb)
            pb[a] = causal ? -1 : pb0 + a;
    }
    return n;
}

/* ---- the neighbour rule, sub-grid form ----------------------------------------------- */

/* One axis of one dilation sub-grid: len positions, windows of k. */
typedef struct {
    int64_t len, k;
    bool causal;
} na_axis;

static int64_t axis_start(const na_axis *a, int64_t i)
{
    if (a->causal)
        return max64(i - a->k + 1, 0);
    return min64(max64(i - a->k / 2, 0), a->len - a->k);
}

/* The queries whose window holds key j: an interval [*lo, *hi), because window starts are
 * non-decreasing in the query and each window is k long. */
static void axis_queries_of_key(const na_axis *a, int64_t j, int64_t *lo, int64_t *hi)
{
    int64_t r = a->k / 2;
    if (a->causal) {
        *lo = j;
        *hi = min64(j + a->k, a->len);
        return;
    }
    *lo = j < a->k ? 0 : j - r;
    *hi = j >= a->len - a->k ? a->len : j + r + 1;
}

/* Length of the sub-grid of residue rho along an axis of n positions with dilation d. */
static int64_t subgrid_len(int64_t n, int64_t d, int64_t rho) { return ceil_div(n - rho, d); }

/* ---- the common problem -------------------------------------------------------------- */

/* A 4-d F32 tensor seen as [batch, head, y, x, channel]: base and element strides. */
typedef struct {
    const float *data;
    int64_t sb, sh, sy, sx;
} na_view;

typedef struct {
    int64_t B, H, Y, X, D, Dv;
    int64_t ky, kx, dy, dx; /* kernel sizes and dilations per axis (1D: ky = dy = 1) */
    bool causal;            /* along x */
    na_view q, k, v, out;
    const float *rpb;       /* NULL, or [H][2ky - 1][2kx - 1] with these strides */
    int64_t rpb_sh, rpb_sy;
    double scale;
} na_problem;

static const float *view_at(const na_view *t, int64_t b, int64_t h, int64_t y, int64_t x)
{
    return t->data + b * t->sb + h * t->sh + y * t->sy + x * t->sx;
}

static bool same_leading(const lr_tensor *a, const lr_tensor *b)
{
    return a->shape[0] == b->shape[0] && a->shape[1] == b->shape[1] && a->shape[2] == b->shape[2];
}

static lr_status check_axis(lr_ctx *ctx, const char *op, const char *axis, int64_t len, int64_t k, int64_t d)
{
    int64_t span;
    if (__builtin_mul_overflow(k, d, &span) || len < span)
        return lr_fail(ctx, LR_ERR_ARG,
                       "%s: %s %lld is shorter than kernel_size * dilation = %lld * %lld; pad the input "
                       "(DiNAT zero-pads before the qkv projection)",
                       op, axis, (long long)len, (long long)k, (long long)d);
    return LR_OK;
}

/* Checks the arguments of lr_na1d (two_d false) or lr_na2d and describes the problem. */
static lr_status make_problem(lr_ctx *ctx, bool two_d, const lr_na_params *p, const lr_tensor *q,
                              const lr_tensor *k, const lr_tensor *v, const lr_tensor *out, na_problem *pr)
{
    const char *op = two_d ? "na2d" : "na1d";
    const char *qk_layout = two_d ? "[H, Hgt, Wid, D]" : "[B, H, L, D]";
    const char *vo_layout = two_d ? "[H, Hgt, Wid, Dv]" : "[B, H, L, Dv]";
    char a[128], b[128], c[128], e[128];
    lr_status s;
    if ((s = lr_check_tensor4(ctx, op, "q", q, qk_layout, LR_F32)) != LR_OK ||
        (s = lr_check_tensor4(ctx, op, "k", k, qk_layout, LR_F32)) != LR_OK ||
        (s = lr_check_tensor4(ctx, op, "v", v, vo_layout, LR_F32)) != LR_OK ||
        (s = lr_check_tensor4(ctx, op, "out", out, vo_layout, LR_F32)) != LR_OK)
        return s;
    if (!same_leading(q, k) || k->shape[3] != q->shape[3] || !same_leading(q, v) || !same_leading(q, out) ||
        out->shape[3] != v->shape[3])
        return lr_fail(ctx, LR_ERR_ARG, "%s: shapes differ: q %s, k %s, v %s, out %s (q, k %s; v, out %s)", op,
                       lr_shape_str(4, q->shape, a, sizeof a), lr_shape_str(4, k->shape, b, sizeof b),
                       lr_shape_str(4, v->shape, c, sizeof c), lr_shape_str(4, out->shape, e, sizeof e),
                       qk_layout, vo_layout);
    if (q->shape[3] < 1 || q->shape[3] > MAX_HEAD_DIM || v->shape[3] < 1 || v->shape[3] > MAX_HEAD_DIM)
        return lr_fail(ctx, LR_ERR_ARG, "%s: head dims %lld (q, k) and %lld (v) must be in 1..%d", op,
                       (long long)q->shape[3], (long long)v->shape[3], MAX_HEAD_DIM);
    if (p->kernel_size < 1 || p->kernel_size % 2 == 0)
        return lr_fail(ctx, LR_ERR_ARG, "%s: kernel_size %lld must be odd and >= 1", op, (long long)p->kernel_size);
    if (p->dilation < 1)
        return lr_fail(ctx, LR_ERR_ARG, "%s: dilation %lld must be >= 1", op, (long long)p->dilation);
    if (!(p->scale >= 0) || isinf(p->scale))
        return lr_fail(ctx, LR_ERR_ARG, "%s: scale %g must be finite and >= 0 (0 selects 1/sqrt(D))", op,
                       (double)p->scale);
    if (p->causal && two_d)
        return lr_fail(ctx, LR_ERR_ARG, "na2d: causal is for 1D only");
    if (p->causal && p->rpb)
        return lr_fail(ctx, LR_ERR_ARG, "%s: a relative positional bias cannot be combined with causal", op);

    memset(pr, 0, sizeof *pr);
    int64_t kk = p->kernel_size;
    pr->B = two_d ? 1 : q->shape[0];
    pr->H = two_d ? q->shape[0] : q->shape[1];
    pr->Y = two_d ? q->shape[1] : 1;
    pr->X = q->shape[2];
    pr->D = q->shape[3];
    pr->Dv = v->shape[3];
    pr->ky = two_d ? kk : 1;
    pr->dy = two_d ? p->dilation : 1;
    pr->kx = kk;
    pr->dx = p->dilation;
    pr->causal = p->causal;
    if ((!p->causal && (s = check_axis(ctx, op, two_d ? "width" : "length", pr->X, kk, p->dilation)) != LR_OK) ||
        (two_d && (s = check_axis(ctx, op, "height", pr->Y, kk, p->dilation)) != LR_OK))
        return s;
    if (p->rpb) {
        const lr_tensor *t = p->rpb;
        int64_t w = 2 * kk - 1;
        bool ok = t->dtype == LR_F32 && t->ndim == (two_d ? 3 : 2) && t->shape[0] == pr->H && t->shape[1] == w &&
                  (!two_d || t->shape[2] == w);
        if (!ok)
            return lr_fail(ctx, LR_ERR_ARG, "%s: rpb must be f32 [%lld, %lld%s], got %s %s", op, (long long)pr->H,
                           (long long)w, two_d ? ", same" : "", lr_dtype_name(t->dtype),
                           lr_shape_str(t->ndim, t->shape, a, sizeof a));
        if (t->stride[t->ndim - 1] != 1)
            return lr_fail(ctx, LR_ERR_ARG, "%s: the last dimension of rpb must be contiguous", op);
        if (!t->data)
            return lr_fail(ctx, LR_ERR_ARG, "%s: rpb has no data", op);
        pr->rpb = t->data;
        pr->rpb_sh = t->stride[0];
        pr->rpb_sy = two_d ? t->stride[1] : 0;
    }
    pr->scale = p->scale > 0 ? p->scale : 1.0 / sqrt((double)pr->D);
    const lr_tensor *src[4] = {q, k, v, out};
    na_view *dst[4] = {&pr->q, &pr->k, &pr->v, &pr->out};
    for (int i = 0; i < 4; i++) {
        const lr_tensor *t = src[i];
        *dst[i] = two_d ? (na_view){t->data, 0, t->stride[0], t->stride[1], t->stride[2]}
                        : (na_view){t->data, t->stride[0], t->stride[1], 0, t->stride[2]};
    }
    return LR_OK;
}

/* ---- the reference ------------------------------------------------------------------- */

typedef struct {
    lr_ctx *ctx;
    const na_problem *pr;
} ref_job;

static void ref_query(const na_problem *pr, int64_t b, int64_t h, int64_t y, int64_t x, double *score, double *acc,
                      int64_t *iy, int64_t *py, int64_t *ix, int64_t *px)
{
    int64_t ny = lr_na_neighbours(y, pr->Y, pr->ky, pr->dy, false, iy, py);
    int64_t nx = lr_na_neighbours(x, pr->X, pr->kx, pr->dx, pr->causal, ix, px);
    const float *qrow = view_at(&pr->q, b, h, y, x);
    double best = -INFINITY;
    for (int64_t a = 0; a < ny; a++) {
        for (int64_t c = 0; c < nx; c++) {
            const float *krow = view_at(&pr->k, b, h, iy[a], ix[c]);
            double dot = 0;
            for (int64_t e = 0; e < pr->D; e++)
                dot += (double)qrow[e] * (double)krow[e];
            double sc = dot * pr->scale;
            if (pr->rpb)
                sc += pr->rpb[h * pr->rpb_sh + py[a] * pr->rpb_sy + px[c]];
            score[a * nx + c] = sc;
            best = fmax(best, sc);
        }
    }
    for (int64_t e = 0; e < pr->Dv; e++)
        acc[e] = 0;
    double sum = 0;
    for (int64_t a = 0; a < ny; a++) {
        for (int64_t c = 0; c < nx; c++) {
            double w = exp(score[a * nx + c] - best);
            const float *vrow = view_at(&pr->v, b, h, iy[a], ix[c]);
            sum += w;
            for (int64_t e = 0; e < pr->Dv; e++)
                acc[e] += w * (double)vrow[e];
        }
    }
    float *orow = (float *)view_at(&pr->out, b, h, y, x);
    for (int64_t e = 0; e < pr->Dv; e++)
        orow[e] = (float)(acc[e] / sum);
}

static void ref_task(void *arg, size_t task, int thread)
{
    const ref_job *job = arg;
    const na_problem *pr = job->pr;
    int64_t per_row = ceil_div(pr->X, REF_ROWS_PER_TASK);
    int64_t row = (int64_t)task / per_row; /* (b * H + h) * Y + y */
    int64_t x0 = (int64_t)task % per_row * REF_ROWS_PER_TASK;
    int64_t y = row % pr->Y, h = row / pr->Y % pr->H, b = row / pr->Y / pr->H;
    double *score = lr_thread_scratch(job->ctx, thread);
    double *acc = score + pr->ky * pr->kx;
    int64_t *iy = (int64_t *)(acc + pr->Dv), *py = iy + pr->ky, *ix = py + pr->ky, *px = ix + pr->kx;
    for (int64_t x = x0; x < min64(x0 + REF_ROWS_PER_TASK, pr->X); x++)
        ref_query(pr, b, h, y, x, score, acc, iy, py, ix, px);
}

static lr_status na_ref(lr_ctx *ctx, bool two_d, const lr_na_params *p, const lr_tensor *q, const lr_tensor *k,
                        const lr_tensor *v, lr_tensor *out)
{
    lr_na_params defaults = lr_na_default_params();
    na_problem pr;
    lr_status s = make_problem(ctx, two_d, p ? p : &defaults, q, k, v, out, &pr);
    if (s != LR_OK)
        return s;
    if (pr.B == 0 || pr.H == 0)
        return LR_OK;
    size_t scores, bytes;
    if (!lr_mul_size((size_t)pr.ky, (size_t)pr.kx, &scores) ||
        !lr_mul_size(scores + (size_t)pr.Dv + 2 * (size_t)(pr.ky + pr.kx), 8, &bytes))
        return lr_fail(ctx, LR_ERR_NOMEM, "%s: kernel_size %lld overflows the scratch size", two_d ? "na2d" : "na1d",
                       (long long)pr.kx);
    if ((s = lr_thread_scratch_reserve(ctx, bytes)) != LR_OK)
        return s;
    ref_job job = {ctx, &pr};
    lr_parallel_for(ctx, (size_t)(pr.B * pr.H * pr.Y * ceil_div(pr.X, REF_ROWS_PER_TASK)), ref_task, &job);
    return LR_OK;
}

lr_status lr_na1d_ref(lr_ctx *ctx, const lr_na_params *p, const lr_tensor *q, const lr_tensor *k, const lr_tensor *v,
                      lr_tensor *out)
{
    return na_ref(ctx, false, p, q, k, v, out);
}

lr_status lr_na2d_ref(lr_ctx *ctx, const lr_na_params *p, const lr_tensor *q, const lr_tensor *k, const lr_tensor *v,
                      lr_tensor *out)
{
    return na_ref(ctx, true, p, q, k, v, out);
}

/* ---- the fused driver ---------------------------------------------------------------- */

/* Where each piece of a task's scratch starts, in bytes (64-byte aligned). */
typedef struct {
    size_t qt, s, o, m, l, alpha, colmax, lo, hi, total;
} scratch_plan;

typedef struct {
    lr_ctx *ctx;
    const na_problem *pr;
    const lr_attn_kernel *kern;
    float c;                   /* scale * log2(e): q.k into a base-2 logit */
    int br, bk, ldo;
    int64_t tiles_per_residue; /* query tiles of the longest x sub-grid */
    scratch_plan plan;
} na_job;

typedef struct {
    const na_job *job;
    int64_t b, h, y, rho, i0, i1; /* queries: sub-grid positions [i0, i1) of residue rho along x */
    na_axis ax;
    float *qt, *s, *o, *m, *l, *alpha, *colmax;
    int32_t *lo, *hi;
} na_task;

static void pack_queries(const na_task *t)
{
    const na_job *job = t->job;
    const na_problem *pr = job->pr;
    int64_t br = job->br, nq = t->i1 - t->i0;
    for (int64_t i = 0; i < br; i++) {
        float *col = t->qt + i;
        const float *row = i < nq ? view_at(&pr->q, t->b, t->h, t->y, (t->i0 + i) * pr->dx + t->rho) : NULL;
        for (int64_t e = 0; e < pr->D; e++)
            col[e * br] = row ? row[e] : 0.0f;
    }
}

/* Sub-grid keys [j0, j0 + nk) of key row ky against the tile's queries; rpb_row is the rpb
 * row of that key row (NULL without rpb). */
static void run_keys(const na_task *t, int64_t ky, int64_t j0, int nk, const float *rpb_row)
{
    const na_job *job = t->job;
    const na_problem *pr = job->pr;
    const lr_attn_kernel *kern = job->kern;
    int br = job->br;
    for (int j = 0; j < nk; j++) {
        int64_t lo, hi;
        axis_queries_of_key(&t->ax, j0 + j, &lo, &hi);
        lo = min64(max64(lo, t->i0), t->i1);
        hi = min64(max64(hi, lo), t->i1);
        t->lo[j] = (int32_t)(lo - t->i0);
        t->hi[j] = (int32_t)(hi - t->i0);
    }
    const float *keys = view_at(&pr->k, t->b, t->h, ky, j0 * pr->dx + t->rho);
    kern->scores(t->qt, br, keys, pr->dx * pr->k.sx, nk, (int)pr->D, t->s, t->colmax);
    float c = job->c;
    if (rpb_row) {
        /* Base-2 logits with the bias added, for the pairs the mask keeps (the others have
         * no rpb entry); the mask step recomputes the column maxima. */
        for (int j = 0; j < nk; j++) {
            float *row = t->s + (int64_t)j * br;
            int64_t offset = j0 + j - t->i0 + pr->kx - 1; /* rpb index at query i: offset - i */
            for (int i = t->lo[j]; i < t->hi[j]; i++)
                row[i] = row[i] * c + LR_LOG2E * rpb_row[offset - i];
        }
        c = 1.0f;
    }
    kern->mask(t->s, br, nk, t->lo, t->hi, t->colmax);
    kern->softmax(t->s, t->s, br, nk, c, t->colmax, t->m, t->l, t->alpha);
    const float *values = view_at(&pr->v, t->b, t->h, ky, j0 * pr->dx + t->rho);
    kern->accumulate(t->s, br, values, pr->dx * pr->v.sx, nk, (int)pr->Dv, t->alpha, t->o, job->ldo);
}

static void write_output(const na_task *t)
{
    const na_job *job = t->job;
    const na_problem *pr = job->pr;
    for (int64_t i = t->i0; i < t->i1; i++) {
        const float *o = t->o + (i - t->i0) * job->ldo;
        float inv = 1.0f / t->l[i - t->i0]; /* every query sees at least its own position */
        float *row = (float *)view_at(&pr->out, t->b, t->h, t->y, i * pr->dx + t->rho);
        for (int64_t e = 0; e < pr->Dv; e++)
            row[e] = o[e] * inv;
    }
}

static void na_task_run(void *arg, size_t task, int thread)
{
    const na_job *job = arg;
    const na_problem *pr = job->pr;
    int64_t tile = (int64_t)task % job->tiles_per_residue;
    int64_t rest = (int64_t)task / job->tiles_per_residue;
    na_task t = {.job = job};
    t.rho = rest % pr->dx;
    rest /= pr->dx;
    t.y = rest % pr->Y;
    rest /= pr->Y;
    t.h = rest % pr->H;
    t.b = rest / pr->H;
    t.ax = (na_axis){subgrid_len(pr->X, pr->dx, t.rho), pr->kx, pr->causal};
    t.i0 = tile * job->br;
    if (t.i0 >= t.ax.len)
        return; /* a shorter residue class: the tile count is the longest one's */
    t.i1 = min64(t.i0 + job->br, t.ax.len);

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
    pack_queries(&t);
    memset(t.o, 0, (size_t)job->br * (size_t)job->ldo * sizeof(float));
    for (int i = 0; i < job->br; i++) {
        t.m[i] = -INFINITY;
        t.l[i] = 0.0f;
    }

    /* The query row's window along y (the same for the whole tile), and the key range the
     * tile's windows cover along x. */
    int64_t rho_y = t.y % pr->dy, yq = t.y / pr->dy;
    na_axis ay = {subgrid_len(pr->Y, pr->dy, rho_y), pr->ky, false};
    int64_t y_start = axis_start(&ay, yq);
    int64_t key_lo = axis_start(&t.ax, t.i0);
    int64_t key_hi = t.ax.causal ? t.i1 : axis_start(&t.ax, t.i1 - 1) + pr->kx;
    for (int64_t a = 0; a < pr->ky; a++) {
        int64_t ky = (y_start + a) * pr->dy + rho_y;
        const float *rpb_row =
            pr->rpb ? pr->rpb + t.h * pr->rpb_sh + (y_start + a - yq + pr->ky - 1) * pr->rpb_sy : NULL;
        for (int64_t j0 = key_lo; j0 < key_hi; j0 += job->bk)
            run_keys(&t, ky, j0, (int)min64(job->bk, key_hi - j0), rpb_row);
    }
    write_output(&t);
}

static scratch_plan plan_scratch(const na_job *job)
{
    scratch_plan s;
    size_t at = 0, br = (size_t)job->br, bk = (size_t)job->bk, f = sizeof(float);
    s.qt = lr_scratch_take(&at, (size_t)job->pr->D * br * f);
    s.s = lr_scratch_take(&at, bk * br * f);
    s.o = lr_scratch_take(&at, br * (size_t)job->ldo * f);
    s.m = lr_scratch_take(&at, br * f);
    s.l = lr_scratch_take(&at, br * f);
    s.alpha = lr_scratch_take(&at, br * f);
    s.colmax = lr_scratch_take(&at, br * f);
    s.lo = lr_scratch_take(&at, bk * sizeof(int32_t));
    s.hi = lr_scratch_take(&at, bk * sizeof(int32_t));
    s.total = at;
    return s;
}

static lr_status na_fused(lr_ctx *ctx, bool two_d, const lr_na_params *p, const lr_tensor *q, const lr_tensor *k,
                          const lr_tensor *v, lr_tensor *out)
{
    lr_na_params defaults = lr_na_default_params();
    na_problem pr;
    lr_status s = make_problem(ctx, two_d, p ? p : &defaults, q, k, v, out, &pr);
    if (s != LR_OK)
        return s;
    if (pr.B == 0 || pr.H == 0)
        return LR_OK;
    na_job job = {.ctx = ctx, .pr = &pr, .kern = lr_attn_kernel_f32(lr_ctx_cpu(ctx))};
    job.c = (float)pr.scale * LR_LOG2E;
    /* A tile of br queries scores k + br - 1 keys per key row for k useful ones; the kernels'
     * multiples of 16 rows all work. */
    job.br = pr.kx >= WIDE_WINDOW ? (int)min64(job.kern->block_q, WIDE_TILE) : SMALL_TILE;
    job.bk = job.kern->block_k;
    job.ldo = (int)(ceil_div(pr.Dv, 16) * 16);
    job.tiles_per_residue = ceil_div(subgrid_len(pr.X, pr.dx, 0), job.br);
    job.plan = plan_scratch(&job);
    if ((s = lr_thread_scratch_reserve(ctx, job.plan.total)) != LR_OK)
        return s;
    lr_parallel_for(ctx, (size_t)(pr.B * pr.H * pr.Y * pr.dx * job.tiles_per_residue), na_task_run, &job);
    return LR_OK;
}

lr_status lr_na1d(lr_ctx *ctx, const lr_na_params *p, const lr_tensor *q, const lr_tensor *k, const lr_tensor *v,
                  lr_tensor *out)
{
    return na_fused(ctx, false, p, q, k, v, out);
}

lr_status lr_na2d(lr_ctx *ctx, const lr_na_params *p, const lr_tensor *q, const lr_tensor *k, const lr_tensor *v,
                  lr_tensor *out)
{
    return na_fused(ctx, true, p, q, k, v, out);
}
