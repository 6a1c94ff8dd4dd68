/* RAT: argument checks, the plain double reference, and the two-pass fast path (chunk-final
 * states, then query tiles through the tile kernels of lr_attention with the own running
 * state merged last). The definition is in longrange/rat.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attention_internal.h"
#include "internal.h"
#include "longrange/parallel.h"
#include "longrange/rat.h"

enum {
    MAX_HEAD_DIM = 1024,
    STATE_TOKENS_PER_TASK = 512, /* pass 1: about this many tokens of recurrence per task */
};

lr_rat_params lr_rat_default_params(void)
{
    lr_rat_params p;
    memset(&p, 0, sizeof p);
    p.chunk = 16;
    return p;
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

int64_t lr_rat_pairs(int64_t L, int64_t C)
{
    if (L < 0 || C < 1)
        return -1;
    /* L own states plus sum_t floor(t / C) = C n (n - 1) / 2 + r n, n = L / C, r = L % C. */
    int64_t n = L / C, r = L % C, tri, a, b, sum;
    if (__builtin_mul_overflow(n, n > 0 ? n - 1 : 0, &tri))
        return -1;
    tri /= 2;
    if (__builtin_mul_overflow(C, tri, &a) || __builtin_mul_overflow(r, n, &b) || __builtin_add_overflow(a, b, &sum) ||
        __builtin_add_overflow(sum, L, &sum))
        return -1;
    return sum;
}

/* ---- the problem --------------------------------------------------------------------- */

/* A [B, heads, L, dim] F32 tensor: base and element strides. */
typedef struct {
    const float *data;
    int64_t sb, sh, st;
} rat_view;

typedef struct {
    int64_t B, H, Hkv, L, D, Dv, C;
    int64_t n_full;  /* complete chunks, floor(L / C): the states anyone attends to */
    rat_view q, k, v, g, f, out;
    double scale;
    double rope_base; /* 0: no rotation */
} rat_problem;

static const float *row_at(const rat_view *t, int64_t b, int64_t h, int64_t i)
{
    return t->data + b * t->sb + h * t->sh + i * t->st;
}

static rat_view view_of(const lr_tensor *t)
{
    return (rat_view){t->data, t->stride[0], t->stride[1], t->stride[2]};
}

static bool shape_is(const lr_tensor *t, int64_t a, int64_t b, int64_t c, int64_t d)
{
    return t->shape[0] == a && t->shape[1] == b && t->shape[2] == c && t->shape[3] == d;
}

static lr_status make_problem(lr_ctx *ctx, const char *op, const lr_rat_params *p, const lr_tensor *q,
                              const lr_tensor *k, const lr_tensor *v, const lr_tensor *gates,
                              const lr_tensor *out, rat_problem *pr)
{
    char a[128], b[128], c[128], d[128], e[128];
    lr_status s;
    if ((s = lr_check_tensor4(ctx, op, "q", q, "[B, H, L, D]", LR_F32)) != LR_OK ||
        (s = lr_check_tensor4(ctx, op, "k", k, "[B, Hkv, L, D]", LR_F32)) != LR_OK ||
        (s = lr_check_tensor4(ctx, op, "v", v, "[B, Hkv, L, Dv]", LR_F32)) != LR_OK ||
        (s = lr_check_tensor4(ctx, op, "gates", gates, "[B, H, L, D]", LR_F32)) != LR_OK ||
        (s = lr_check_tensor4(ctx, op, "out", out, "[B, H, L, Dv]", LR_F32)) != LR_OK ||
        (p->value_gates && (s = lr_check_tensor4(ctx, op, "value_gates", p->value_gates, "[B, H, L, Dv]", LR_F32)) != LR_OK))
        return s;
    int64_t B = q->shape[0], H = q->shape[1], L = q->shape[2], D = q->shape[3];
    int64_t Hkv = k->shape[1], Dv = v->shape[3];
    if (!shape_is(k, B, Hkv, L, D) || !shape_is(v, B, Hkv, L, Dv) || !shape_is(gates, B, H, L, D) ||
        !shape_is(out, B, H, L, Dv))
        return lr_fail(ctx, LR_ERR_ARG,
                       "%s: shapes differ: q %s, k %s, v %s, gates %s, out %s (q, gates [B, H, L, D]; k [B, Hkv, L, D]; "
                       "v [B, Hkv, L, Dv]; out [B, H, L, Dv])",
                       op, lr_shape_str(4, q->shape, a, sizeof a), lr_shape_str(4, k->shape, b, sizeof b),
                       lr_shape_str(4, v->shape, c, sizeof c), lr_shape_str(4, gates->shape, d, sizeof d),
                       lr_shape_str(4, out->shape, e, sizeof e));
    if (p->value_gates && !shape_is(p->value_gates, B, H, L, Dv))
        return lr_fail(ctx, LR_ERR_ARG, "%s: value_gates must be [B, H, L, Dv] = %s, got %s", op,
                       lr_shape_str(4, out->shape, a, sizeof a), lr_shape_str(4, p->value_gates->shape, b, sizeof b));
    if (!p->value_gates && Dv != D)
        return lr_fail(ctx, LR_ERR_ARG,
                       "%s: the gates serve keys and values only when D == Dv (%lld != %lld); give value_gates", op,
                       (long long)D, (long long)Dv);
    if (Hkv < 1 ? H != 0 : H % Hkv != 0)
        return lr_fail(ctx, LR_ERR_ARG, "%s: query heads %lld must be a multiple of key/value heads %lld", op,
                       (long long)H, (long long)Hkv);
    if (D < 1 || D > MAX_HEAD_DIM || Dv < 1 || Dv > MAX_HEAD_DIM)
        return lr_fail(ctx, LR_ERR_ARG, "%s: head dims %lld (q, k) and %lld (v) must be in 1..%d", op, (long long)D,
                       (long long)Dv, MAX_HEAD_DIM);
    if (p->chunk < 1)
        return lr_fail(ctx, LR_ERR_ARG, "%s: chunk %lld must be >= 1", op, (long long)p->chunk);
    if (!(p->scale >= 0) || isinf(p->scale))
        return lr_fail(ctx, LR_ERR_ARG, "%s: scale %g must be finite and >= 0 (0 selects 1/sqrt(D))", op,
                       (double)p->scale);
    if (!(p->rope_base >= 0) || isinf(p->rope_base))
        return lr_fail(ctx, LR_ERR_ARG, "%s: rope_base %g must be finite and >= 0 (0: no rotation)", op,
                       (double)p->rope_base);
    if (p->rope_base > 0 && D % 2 != 0)
        return lr_fail(ctx, LR_ERR_ARG, "%s: rope needs an even head dimension, got %lld", op, (long long)D);

    memset(pr, 0, sizeof *pr);
    pr->B = B;
    pr->H = H;
    pr->Hkv = Hkv;
    pr->L = L;
    pr->D = D;
    pr->Dv = Dv;
    pr->C = p->chunk;
    pr->n_full = L / p->chunk;
    pr->q = view_of(q);
    pr->k = view_of(k);
    pr->v = view_of(v);
    pr->g = view_of(gates);
    pr->f = view_of(p->value_gates ? p->value_gates : gates);
    pr->out = view_of(out);
    pr->scale = p->scale > 0 ? p->scale : 1.0 / sqrt((double)D);
    pr->rope_base = p->rope_base;
    return LR_OK;
}

static int64_t kv_head(const rat_problem *pr, int64_t h) { return h / (pr->H / pr->Hkv); }

/* RoPE's rotate-half form at position pos: cs[e] = cos(pos * base^(-2e/D)), sn[e] = sin(...)
 * for e < D/2. */
static void rope_table(double base, int64_t D, int64_t pos, double *cs, double *sn)
{
    for (int64_t e = 0; e < D / 2; e++) {
        double angle = (double)pos * pow(base, -2.0 * (double)e / (double)D);
        cs[e] = cos(angle);
        sn[e] = sin(angle);
    }
}

/* ---- the reference ------------------------------------------------------------------- */

typedef struct {
    lr_ctx *ctx;
    const rat_problem *pr;
} ref_job;

static void rotate_d(const double *x, double *y, int64_t D, const double *cs, const double *sn)
{
    int64_t half = D / 2;
    for (int64_t e = 0; e < half; e++) {
        y[e] = x[e] * cs[e] - x[e + half] * sn[e];
        y[e + half] = x[e + half] * cs[e] + x[e] * sn[e];
    }
}

static void ref_head(void *arg, size_t task, int thread)
{
    const ref_job *job = arg;
    const rat_problem *pr = job->pr;
    int64_t b = (int64_t)task / pr->H, h = (int64_t)task % pr->H, hk = kv_head(pr, h);
    int64_t L = pr->L, D = pr->D, Dv = pr->Dv, C = pr->C;
    bool rope = pr->rope_base > 0;
    double *kt = lr_thread_scratch(job->ctx, thread); /* k~ [L][D], then v~ [L][Dv] */
    double *vt = kt + L * D;
    double *score = vt + L * Dv; /* [n_full + 1] */
    double *acc = score + pr->n_full + 1, *qr = acc + Dv, *kr = qr + D, *tmp = kr + D;
    double *cq = tmp + D, *sq = cq + D / 2 + 1, *ck = sq + D / 2 + 1, *sk = ck + D / 2 + 1;

    for (int64_t t = 0; t < L; t++) {
        const float *kx = row_at(&pr->k, b, hk, t), *vx = row_at(&pr->v, b, hk, t);
        const float *g = row_at(&pr->g, b, h, t), *f = row_at(&pr->f, b, h, t);
        bool first = t % C == 0;
        for (int64_t e = 0; e < D; e++) {
            double prev = first ? 0.0 : kt[(t - 1) * D + e];
            kt[t * D + e] = (double)g[e] * prev + (1.0 - (double)g[e]) * (double)kx[e];
        }
        for (int64_t e = 0; e < Dv; e++) {
            double prev = first ? 0.0 : vt[(t - 1) * Dv + e];
            vt[t * Dv + e] = (double)f[e] * prev + (1.0 - (double)f[e]) * (double)vx[e];
        }
    }
    for (int64_t t = 0; t < L; t++) {
        int64_t c = t / C, n = c + 1; /* states 0..c-1 of earlier chunks, then the own one */
        const float *qx = row_at(&pr->q, b, h, t);
        for (int64_t e = 0; e < D; e++)
            tmp[e] = qx[e];
        if (rope) {
            rope_table(pr->rope_base, D, c, cq, sq);
            rotate_d(tmp, qr, D, cq, sq);
        } else {
            memcpy(qr, tmp, (size_t)D * sizeof *qr);
        }
        double best = -INFINITY;
        for (int64_t j = 0; j < n; j++) {
            const double *key = j < c ? kt + ((j + 1) * C - 1) * D : kt + t * D;
            if (rope) {
                rope_table(pr->rope_base, D, j < c ? j : c, ck, sk);
                rotate_d(key, kr, D, ck, sk);
                key = kr;
            }
            double dot = 0;
            for (int64_t e = 0; e < D; e++)
                dot += qr[e] * key[e];
            score[j] = dot * pr->scale;
            best = fmax(best, score[j]);
        }
        for (int64_t e = 0; e < Dv; e++)
            acc[e] = 0;
        double sum = 0;
        for (int64_t j = 0; j < n; j++) {
            double w = exp(score[j] - best);
            const double *val = j < c ? vt + ((j + 1) * C - 1) * Dv : vt + t * Dv;
            sum += w;
            for (int64_t e = 0; e < Dv; e++)
                acc[e] += w * val[e];
        }
        float *orow = (float *)row_at(&pr->out, b, h, t);
        for (int64_t e = 0; e < Dv; e++)
            orow[e] = (float)(acc[e] / sum);
    }
}

lr_status lr_rat_attention_ref(lr_ctx *ctx, const lr_rat_params *p, const lr_tensor *q, const lr_tensor *k,
                               const lr_tensor *v, const lr_tensor *gates, lr_tensor *out)
{
    lr_rat_params defaults = lr_rat_default_params();
    rat_problem pr;
    lr_status s = make_problem(ctx, "rat_ref", p ? p : &defaults, q, k, v, gates, out, &pr);
    if (s != LR_OK)
        return s;
    if (pr.B == 0 || pr.H == 0 || pr.L == 0)
        return LR_OK;
    size_t per_token, states, doubles, bytes;
    if (!lr_add_size((size_t)pr.D, (size_t)pr.Dv, &per_token) || !lr_mul_size(per_token, (size_t)pr.L, &states) ||
        !lr_add_size(states, (size_t)pr.n_full + 1 + (size_t)pr.Dv + 5 * (size_t)pr.D + 8, &doubles) ||
        !lr_mul_size(doubles, sizeof(double), &bytes))
        return lr_fail(ctx, LR_ERR_NOMEM, "rat_ref: length %lld overflows the scratch size", (long long)pr.L);
    if ((s = lr_thread_scratch_reserve(ctx, bytes)) != LR_OK)
        return s;
    ref_job job = {ctx, &pr};
    lr_parallel_for(ctx, (size_t)(pr.B * pr.H), ref_head, &job);
    return LR_OK;
}

/* ---- the fast path ------------------------------------------------------------------- */

/* The element loops below run in blocks of LANES with a fixed inner count, which the
 * compiler vectorises at -O2 for any x86-64 (a loop of unknown count stays scalar there). */
enum { LANES = 8 };

/* One recurrence step over n channels: h = g h + (1 - g) x. A chunk starts from h = 0, which
 * gives (1 - g) x exactly, as the official scan's first element. */
static void scan_step(float *restrict hs, const float *restrict g, const float *restrict x, int64_t n)
{
    int64_t e = 0;
    for (; e + LANES <= n; e += LANES)
        for (int u = 0; u < LANES; u++)
            hs[e + u] = g[e + u] * hs[e + u] + (1.0f - g[e + u]) * x[e + u];
    for (; e < n; e++)
        hs[e] = g[e] * hs[e] + (1.0f - g[e]) * x[e];
}

/* a . b in LANES partial sums (a fixed order, so the result does not depend on threads). */
static float dot_f(const float *restrict a, const float *restrict b, int64_t n)
{
    float part[LANES] = {0};
    int64_t e = 0;
    for (; e + LANES <= n; e += LANES)
        for (int u = 0; u < LANES; u++)
            part[u] += a[e + u] * b[e + u];
    float sum = 0.0f;
    for (int u = 0; u < LANES; u++)
        sum += part[u];
    for (; e < n; e++)
        sum += a[e] * b[e];
    return sum;
}

/* y = (o a + p h) inv: an online-softmax accumulator with one more key merged, normalised. */
static void merge_row(float *restrict y, const float *restrict o, const float *restrict h, float a, float p,
                      float inv, int64_t n)
{
    int64_t e = 0;
    for (; e + LANES <= n; e += LANES)
        for (int u = 0; u < LANES; u++)
            y[e + u] = (o[e + u] * a + p * h[e + u]) * inv;
    for (; e < n; e++)
        y[e] = (o[e] * a + p * h[e]) * inv;
}

/* Rotates x into y at chunk position pos (a float copy of rotate_d with a float table). */
static void rotate_f(const float *x, float *y, int64_t D, const float *cs, const float *sn)
{
    int64_t half = D / 2;
    for (int64_t e = 0; e < half; e++) {
        y[e] = x[e] * cs[e] - x[e + half] * sn[e];
        y[e + half] = x[e + half] * cs[e] + x[e] * sn[e];
    }
}

static void rope_table_f(double base, int64_t D, int64_t pos, float *cs, float *sn)
{
    for (int64_t e = 0; e < D / 2; e++) {
        double angle = (double)pos * pow(base, -2.0 * (double)e / (double)D);
        cs[e] = (float)cos(angle);
        sn[e] = (float)sin(angle);
    }
}

/* Where each piece of a thread's scratch starts, in bytes (64-byte aligned). */
typedef struct {
    size_t qt, s, o, m, l, alpha, colmax, lo, hi, hk, hv, cs, sn, tmp, total;
} scratch_plan;

typedef struct {
    lr_ctx *ctx;
    const rat_problem *pr;
    const lr_attn_kernel *kern;
    float *ks, *vs;          /* final states of the complete chunks, [B][H][n_full][D or Dv] */
    float c;                 /* scale * log2(e): q.k into a base-2 logit */
    int br, bk, ldo;
    int64_t chunks_per_task; /* pass 1 */
    int64_t state_tasks;     /* pass 1 tasks per head */
    int64_t tiles;           /* pass 2 query tiles per head */
    scratch_plan plan;
} rat_job;

static float *scratch_at(const rat_job *job, int thread, size_t offset)
{
    return (float *)((char *)lr_thread_scratch(job->ctx, thread) + offset);
}

/* Pass 1: the final states of chunks [j0, j1) of one head, keys rotated to their chunk. */
static void state_task(void *arg, size_t task, int thread)
{
    const rat_job *job = arg;
    const rat_problem *pr = job->pr;
    int64_t head = (int64_t)task / job->state_tasks, part = (int64_t)task % job->state_tasks;
    int64_t b = head / pr->H, h = head % pr->H, hk = kv_head(pr, h), D = pr->D, Dv = pr->Dv, C = pr->C;
    int64_t j0 = part * job->chunks_per_task, j1 = min64(j0 + job->chunks_per_task, pr->n_full);
    float *tmp = scratch_at(job, thread, job->plan.tmp);
    float *cs = scratch_at(job, thread, job->plan.cs), *sn = scratch_at(job, thread, job->plan.sn);
    for (int64_t j = j0; j < j1; j++) {
        float *kstate = job->ks + (head * pr->n_full + j) * D;
        float *vstate = job->vs + (head * pr->n_full + j) * Dv;
        float *kacc = pr->rope_base > 0 ? tmp : kstate;
        memset(kacc, 0, (size_t)D * sizeof(float));
        memset(vstate, 0, (size_t)Dv * sizeof(float));
        for (int64_t t = j * C; t < (j + 1) * C; t++) {
            scan_step(kacc, row_at(&pr->g, b, h, t), row_at(&pr->k, b, hk, t), D);
            scan_step(vstate, row_at(&pr->f, b, h, t), row_at(&pr->v, b, hk, t), Dv);
        }
        if (pr->rope_base > 0) {
            rope_table_f(pr->rope_base, D, j, cs, sn);
            rotate_f(tmp, kstate, D, cs, sn);
        }
    }
}

typedef struct {
    const rat_job *job;
    int64_t b, h, hk, i0, i1;
    float *qt, *s, *o, *m, *l, *alpha, *colmax, *hk_state, *hv_state, *cs, *sn, *tmp;
    int32_t *lo, *hi;
} tile_task;

/* Packs the tile's queries transposed, each rotated to its chunk when rope is on. */
static void pack_queries(const tile_task *t)
{
    const rat_job *job = t->job;
    const rat_problem *pr = job->pr;
    int64_t br = job->br, nq = t->i1 - t->i0, table_pos = -1;
    for (int64_t i = 0; i < br; i++) {
        float *col = t->qt + i;
        if (i >= nq) {
            for (int64_t e = 0; e < pr->D; e++)
                col[e * br] = 0.0f;
            continue;
        }
        const float *row = row_at(&pr->q, t->b, t->h, t->i0 + i);
        if (pr->rope_base > 0) {
            int64_t pos = (t->i0 + i) / pr->C;
            if (pos != table_pos) {
                rope_table_f(pr->rope_base, pr->D, pos, t->cs, t->sn);
                table_pos = pos;
            }
            rotate_f(row, t->tmp, pr->D, t->cs, t->sn);
            row = t->tmp;
        }
        for (int64_t e = 0; e < pr->D; e++)
            col[e * br] = row[e];
    }
}

/* The earlier chunks' states: keys [0, c_last) where c_last is the chunk of the tile's last
 * query; key j is visible to the queries from (j + 1) C on, so only tiles of keys that reach
 * the tile's first chunk need the mask. */
static void run_states(const tile_task *t)
{
    const rat_job *job = t->job;
    const rat_problem *pr = job->pr;
    const lr_attn_kernel *kern = job->kern;
    int64_t head = t->b * pr->H + t->h, C = pr->C;
    int64_t c_first = t->i0 / C, c_last = (t->i1 - 1) / C;
    int br = job->br, nq = (int)(t->i1 - t->i0);
    for (int64_t j0 = 0; j0 < c_last; j0 += job->bk) {
        int nk = (int)min64(job->bk, c_last - j0);
        const float *keys = job->ks + (head * pr->n_full + j0) * pr->D;
        const float *values = job->vs + (head * pr->n_full + j0) * pr->Dv;
        kern->scores(t->qt, br, keys, pr->D, nk, (int)pr->D, t->s, t->colmax);
        if (j0 + nk > c_first) {
            for (int j = 0; j < nk; j++) {
                t->lo[j] = (int32_t)min64(max64((j0 + j + 1) * C - t->i0, 0), nq);
                t->hi[j] = nq;
            }
            kern->mask(t->s, br, nk, t->lo, t->hi, t->colmax);
        }
        kern->softmax(t->s, t->s, br, nk, job->c, t->colmax, t->m, t->l, t->alpha);
        kern->accumulate(t->s, br, values, pr->Dv, nk, (int)pr->Dv, t->alpha, t->o, job->ldo);
    }
}

/* The own running states: the recurrence from the start of the tile's first chunk, each
 * query's state merged into its online softmax as one more key, then the output. The
 * rotation of q and of the own key cancel, so the raw q is used. */
static void run_own_and_write(const tile_task *t)
{
    const rat_job *job = t->job;
    const rat_problem *pr = job->pr;
    int64_t D = pr->D, Dv = pr->Dv, C = pr->C;
    float c = job->c;
    for (int64_t tok = t->i0 / C * C; tok < t->i1; tok++) {
        if (tok % C == 0) {
            memset(t->hk_state, 0, (size_t)D * sizeof(float));
            memset(t->hv_state, 0, (size_t)Dv * sizeof(float));
        }
        scan_step(t->hk_state, row_at(&pr->g, t->b, t->h, tok), row_at(&pr->k, t->b, t->hk, tok), D);
        scan_step(t->hv_state, row_at(&pr->f, t->b, t->h, tok), row_at(&pr->v, t->b, t->hk, tok), Dv);
        if (tok < t->i0)
            continue;
        int64_t i = tok - t->i0;
        const float *qx = row_at(&pr->q, t->b, t->h, tok);
        float x = dot_f(qx, t->hk_state, D) * c, m_old = t->m[i], m_new = fmaxf(m_old, x);
        float alpha = m_old == -INFINITY ? 0.0f : exp2f(m_old - m_new), p = exp2f(x - m_new);
        float l = t->l[i] * alpha + p, inv = 1.0f / l;
        const float *o = t->o + i * job->ldo;
        merge_row((float *)row_at(&pr->out, t->b, t->h, tok), o, t->hv_state, alpha, p, inv, Dv);
    }
}

static void tile_task_run(void *arg, size_t task, int thread)
{
    const rat_job *job = arg;
    const rat_problem *pr = job->pr;
    int64_t head = (int64_t)task / job->tiles, tile = (int64_t)task % job->tiles;
    const scratch_plan *plan = &job->plan;
    tile_task t = {.job = job};
    t.b = head / pr->H;
    t.h = head % pr->H;
    t.hk = kv_head(pr, t.h);
    t.i0 = tile * job->br;
    t.i1 = min64(t.i0 + job->br, pr->L);
    t.qt = scratch_at(job, thread, plan->qt);
    t.s = scratch_at(job, thread, plan->s);
    t.o = scratch_at(job, thread, plan->o);
    t.m = scratch_at(job, thread, plan->m);
    t.l = scratch_at(job, thread, plan->l);
    t.alpha = scratch_at(job, thread, plan->alpha);
    t.colmax = scratch_at(job, thread, plan->colmax);
    t.lo = (int32_t *)scratch_at(job, thread, plan->lo);
    t.hi = (int32_t *)scratch_at(job, thread, plan->hi);
    t.hk_state = scratch_at(job, thread, plan->hk);
    t.hv_state = scratch_at(job, thread, plan->hv);
    t.cs = scratch_at(job, thread, plan->cs);
    t.sn = scratch_at(job, thread, plan->sn);
    t.tmp = scratch_at(job, thread, plan->tmp);
    memset(t.o, 0, (size_t)job->br * (size_t)job->ldo * sizeof(float));
    for (int i = 0; i < job->br; i++) {
        t.m[i] = -INFINITY;
        t.l[i] = 0.0f;
    }
    if ((t.i1 - 1) / pr->C > 0) {
        pack_queries(&t);
        run_states(&t);
    }
    run_own_and_write(&t);
}

static scratch_plan plan_scratch(const rat_job *job)
{
    scratch_plan s;
    size_t at = 0, br = (size_t)job->br, bk = (size_t)job->bk, f = sizeof(float);
    size_t D = (size_t)job->pr->D, Dv = (size_t)job->pr->Dv;
    s.qt = lr_scratch_take(&at, D * br * f);
    s.s = lr_scratch_take(&at, bk * br * f);
    s.o = lr_scratch_take(&at, br * (size_t)job->ldo * f);
    s.m = lr_scratch_take(&at, br * f);
    s.l = lr_scratch_take(&at, br * f);
    s.alpha = lr_scratch_take(&at, br * f);
    s.colmax = lr_scratch_take(&at, br * f);
    s.lo = lr_scratch_take(&at, bk * sizeof(int32_t));
    s.hi = lr_scratch_take(&at, bk * sizeof(int32_t));
    s.hk = lr_scratch_take(&at, D * f);
    s.hv = lr_scratch_take(&at, Dv * f);
    s.cs = lr_scratch_take(&at, (D / 2 + 1) * f);
    s.sn = lr_scratch_take(&at, (D / 2 + 1) * f);
    s.tmp = lr_scratch_take(&at, D * f);
    s.total = at;
    return s;
}

lr_status lr_rat_attention(lr_ctx *ctx, const lr_rat_params *p, const lr_tensor *q, const lr_tensor *k,
                           const lr_tensor *v, const lr_tensor *gates, lr_tensor *out)
{
    lr_rat_params defaults = lr_rat_default_params();
    rat_problem pr;
    lr_status s = make_problem(ctx, "rat", p ? p : &defaults, q, k, v, gates, out, &pr);
    if (s != LR_OK)
        return s;
    if (pr.B == 0 || pr.H == 0 || pr.L == 0)
        return LR_OK;
    rat_job job = {.ctx = ctx, .pr = &pr, .kern = lr_attn_kernel_f32(lr_ctx_cpu(ctx))};
    job.c = (float)pr.scale * LR_LOG2E;
    job.br = job.kern->block_q;
    job.bk = job.kern->block_k;
    job.ldo = (int)(ceil_div(pr.Dv, 16) * 16);
    job.chunks_per_task = max64(1, STATE_TOKENS_PER_TASK / pr.C);
    job.state_tasks = ceil_div(pr.n_full, job.chunks_per_task);
    job.tiles = ceil_div(pr.L, job.br);
    job.plan = plan_scratch(&job);

    size_t heads = (size_t)(pr.B * pr.H), per_head, floats, bytes;
    if (!lr_mul_size((size_t)pr.n_full, (size_t)(pr.D + pr.Dv), &per_head) ||
        !lr_mul_size(per_head, heads, &floats) || !lr_mul_size(floats, sizeof(float), &bytes))
        return lr_fail(ctx, LR_ERR_NOMEM, "rat: the chunk states overflow the address space");
    float *states = NULL;
    if (bytes > 0 && !(states = malloc(bytes)))
        return lr_fail(ctx, LR_ERR_NOMEM, "rat: no memory for the chunk states (%zu bytes)", bytes);
    job.ks = states;
    job.vs = states ? states + heads * (size_t)pr.n_full * (size_t)pr.D : NULL;
    if ((s = lr_thread_scratch_reserve(ctx, job.plan.total)) == LR_OK) {
        if (job.state_tasks > 0)
            lr_parallel_for(ctx, heads * (size_t)job.state_tasks, state_task, &job);
        lr_parallel_for(ctx, heads * (size_t)job.tiles, tile_task_run, &job);
    }
    free(states);
    return s;
}
