/* Linear attention: argument checks, the chunked driver behind lr_linear_attention, and the
 * two plain references (quadratic and recurrent, in double).
 *
 * Every (batch, head) is one task. A causal task walks its sequence in chunks of C tokens
 * with a D x Dv state S (and for ELU the key-feature sum z of the denominators). Per chunk,
 * with the chunk's rows Q, K, V:
 *   A = Q K^T                      (DECAY: weighted by the decay between key and query)
 *   O = Qs S + tril(A) V           (Qs = Q, or for DECAY q_t scaled by the decay since the
 *                                   chunk started)
 *   S = diag(decay over the chunk) S + Ks^T V   (Ks: k_j scaled by the decay after j)
 * and the rows of O are finished (divided, normalised or copied) into out. The decays are
 * running products of alphas, each <= 1, so every factor stays in [0, 1]: strong decay
 * underflows to zero instead of overflowing, as exp of a cumulative log-decay difference
 * taken the other way round could. A non-causal task sums S over all keys, then multiplies
 * the queries by it. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "linattn_internal.h"
#include "longrange/linear_attention.h"
#include "longrange/parallel.h"

enum { DEFAULT_CHUNK = 64, MAX_CHUNK = 1024, MAX_HEAD_DIM = 4096 };

lr_linattn_params lr_linattn_default_params(void)
{
    lr_linattn_params p;
    memset(&p, 0, sizeof p);
    p.kind = LR_LINATTN_ELU;
    p.norm = LR_LINNORM_LAYER;
    p.chunk = DEFAULT_CHUNK;
    return p;
}

/* ---- arguments ------------------------------------------------------------------------- */

typedef struct {
    int64_t B, H, Hkv, Lq, Lk, D, Dv; /* H query heads; query head h reads kv head h / (H / Hkv) */
} linattn_dims;

/* The parameters with defaults filled in. */
typedef struct {
    lr_linattn_kind kind;
    bool causal;
    int chunk;
    float eps;
    lr_linattn_norm norm;
    const lr_tensor *gamma, *gates;
} linattn_conf;

static bool shape_is(const lr_tensor *t, int64_t a, int64_t b, int64_t c, int64_t d)
{
    return t->shape[0] == a && t->shape[1] == b && t->shape[2] == c && t->shape[3] == d;
}

static lr_status check_decay(lr_ctx *ctx, const linattn_conf *c, const linattn_dims *d, lr_dtype dtype)
{
    char buf[128];
    if (c->kind != LR_LINATTN_DECAY) {
        if (c->gamma || c->gates)
            return lr_fail(ctx, LR_ERR_ARG, "linear attention: gamma and gates apply to the decay kind only");
        return LR_OK;
    }
    if (!c->gamma == !c->gates)
        return lr_fail(ctx, LR_ERR_ARG, "linear attention: the decay kind needs exactly one of gamma and gates");
    if (c->gamma) {
        const lr_tensor *g = c->gamma;
        if (g->dtype != LR_F32 || g->ndim != 1 || g->shape[0] != d->H || (!g->data && d->H > 0))
            return lr_fail(ctx, LR_ERR_ARG, "linear attention: gamma must be f32 [%lld], got %s %s", (long long)d->H,
                           lr_dtype_name(g->dtype), lr_shape_str(g->ndim, g->shape, buf, sizeof buf));
        for (int64_t h = 0; h < d->H; h++) {
            float x = ((const float *)g->data)[h * g->stride[0]];
            if (!(x > 0.0f && x <= 1.0f))
                return lr_fail(ctx, LR_ERR_ARG, "linear attention: gamma[%lld] = %g is not in (0, 1]", (long long)h,
                               (double)x);
        }
        return LR_OK;
    }
    lr_status s = lr_check_tensor4(ctx, "linear attention", "gates", c->gates, "[B, Hkv, Lk, D]", -1);
    if (s != LR_OK)
        return s;
    if (c->gates->dtype != dtype || !shape_is(c->gates, d->B, d->Hkv, d->Lk, d->D))
        return lr_fail(ctx, LR_ERR_ARG, "linear attention: gates must be %s [%lld, %lld, %lld, %lld], got %s %s",
                       lr_dtype_name(dtype), (long long)d->B, (long long)d->Hkv, (long long)d->Lk, (long long)d->D,
                       lr_dtype_name(c->gates->dtype),
                       lr_shape_str(c->gates->ndim, c->gates->shape, buf, sizeof buf));
    return LR_OK;
}

static lr_status check_args(lr_ctx *ctx, const lr_linattn_params *p, const lr_tensor *q, const lr_tensor *k,
                            const lr_tensor *v, const lr_tensor *out, linattn_dims *d, linattn_conf *c)
{
    lr_linattn_params defaults = lr_linattn_default_params();
    if (!p)
        p = &defaults;
    lr_status s;
    if ((s = lr_check_tensor4(ctx, "linear attention", "q", q, "[B, H, Lq, D]", -1)) != LR_OK ||
        (s = lr_check_tensor4(ctx, "linear attention", "k", k, "[B, Hkv, Lk, D]", -1)) != LR_OK ||
        (s = lr_check_tensor4(ctx, "linear attention", "v", v, "[B, Hkv, Lk, Dv]", -1)) != LR_OK ||
        (s = lr_check_tensor4(ctx, "linear attention", "out", out, "[B, H, Lq, Dv]", -1)) != LR_OK)
        return s;
    if (q->dtype != LR_F32 && q->dtype != LR_BF16)
        return lr_fail(ctx, LR_ERR_ARG, "linear attention: q, k, v must be f32 or bf16, got %s",
                       lr_dtype_name(q->dtype));
    if (k->dtype != q->dtype || v->dtype != q->dtype)
        return lr_fail(ctx, LR_ERR_ARG, "linear attention: q, k, v must share one dtype, got %s, %s, %s",
                       lr_dtype_name(q->dtype), lr_dtype_name(k->dtype), lr_dtype_name(v->dtype));
    if (out->dtype != LR_F32)
        return lr_fail(ctx, LR_ERR_ARG, "linear attention: out must be f32, got %s", lr_dtype_name(out->dtype));
    *d = (linattn_dims){q->shape[0], q->shape[1], k->shape[1], q->shape[2], k->shape[2], q->shape[3], v->shape[3]};
    char a[128], b[128], e[128], f[128];
    if (!shape_is(k, d->B, d->Hkv, d->Lk, d->D) || !shape_is(v, d->B, d->Hkv, d->Lk, d->Dv) ||
        !shape_is(out, d->B, d->H, d->Lq, d->Dv) || (d->Hkv == 0 ? d->H != 0 : d->H % d->Hkv != 0))
        return lr_fail(ctx, LR_ERR_ARG, "linear attention: shapes q %s, k %s, v %s, out %s do not fit "
                       "[B, H, Lq, D], [B, Hkv, Lk, D], [B, Hkv, Lk, Dv], [B, H, Lq, Dv] with H a multiple of Hkv",
                       lr_shape_str(4, q->shape, a, sizeof a), lr_shape_str(4, k->shape, b, sizeof b),
                       lr_shape_str(4, v->shape, e, sizeof e), lr_shape_str(4, out->shape, f, sizeof f));
    if (d->D < 1 || d->D > MAX_HEAD_DIM || d->Dv < 1 || d->Dv > MAX_HEAD_DIM)
        return lr_fail(ctx, LR_ERR_ARG, "linear attention: head dims D = %lld, Dv = %lld must be in 1..%d",
                       (long long)d->D, (long long)d->Dv, MAX_HEAD_DIM);
    if (p->kind != LR_LINATTN_ELU && p->kind != LR_LINATTN_NORM && p->kind != LR_LINATTN_DECAY)
        return lr_fail(ctx, LR_ERR_ARG, "linear attention: unknown kind %d", (int)p->kind);
    if (p->norm != LR_LINNORM_LAYER && p->norm != LR_LINNORM_RMS)
        return lr_fail(ctx, LR_ERR_ARG, "linear attention: unknown norm %d", (int)p->norm);
    if (p->chunk < 0 || p->chunk > MAX_CHUNK)
        return lr_fail(ctx, LR_ERR_ARG, "linear attention: chunk %lld must be in 1..%d (0: %d)",
                       (long long)p->chunk, MAX_CHUNK, DEFAULT_CHUNK);
    if (!(p->eps >= 0.0f) || isinf(p->eps))
        return lr_fail(ctx, LR_ERR_ARG, "linear attention: eps %g must be finite and >= 0", (double)p->eps);
    c->kind = p->kind;
    c->causal = p->causal || p->kind == LR_LINATTN_DECAY;
    c->chunk = p->chunk ? (int)p->chunk : DEFAULT_CHUNK;
    c->norm = p->norm;
    c->eps = p->eps > 0.0f                    ? p->eps
             : p->kind == LR_LINATTN_ELU      ? 1e-6f
             : p->kind == LR_LINATTN_DECAY    ? 0.0f
             : p->norm == LR_LINNORM_LAYER    ? 1e-5f
                                              : 1e-8f;
    c->gamma = p->gamma;
    c->gates = p->gates;
    if (c->causal && d->Lq != d->Lk)
        return lr_fail(ctx, LR_ERR_ARG, "linear attention: the causal forms need Lq == Lk, got %lld and %lld",
                       (long long)d->Lq, (long long)d->Lk);
    return check_decay(ctx, c, d, q->dtype);
}

/* ---- element access -------------------------------------------------------------------- */

static const void *row_at(const lr_tensor *t, int64_t b, int64_t h, int64_t l)
{
    int64_t off = b * t->stride[0] + h * t->stride[1] + l * t->stride[2];
    return (const char *)t->data + off * (int64_t)lr_dtype_size(t->dtype);
}

static void load_row(const lr_tensor *t, int64_t b, int64_t h, int64_t l, float *dst)
{
    int64_t n = t->shape[3];
    if (t->dtype == LR_F32) {
        memcpy(dst, row_at(t, b, h, l), (size_t)n * sizeof(float));
        return;
    }
    const uint16_t *src = row_at(t, b, h, l);
    for (int64_t x = 0; x < n; x++)
        dst[x] = lr_bf16_to_f32(src[x]);
}

static double elem(const lr_tensor *t, int64_t b, int64_t h, int64_t l, int64_t x)
{
    const void *row = row_at(t, b, h, l);
    return t->dtype == LR_F32 ? ((const float *)row)[x] : lr_bf16_to_f32(((const uint16_t *)row)[x]);
}

static float *out_row(const lr_tensor *out, int64_t b, int64_t h, int64_t l)
{
    return (float *)row_at(out, b, h, l);
}

static double gamma_of(const linattn_conf *c, int64_t h)
{
    return ((const float *)c->gamma->data)[h * c->gamma->stride[0]];
}

/* Columns of the references' state: Dv, and for ELU one more for the sum of the key features
 * (the denominator as one more output column). */
static int64_t state_width(const linattn_conf *c, int64_t Dv) { return Dv + (c->kind == LR_LINATTN_ELU); }

/* ---- the chunked driver ---------------------------------------------------------------- */

/* Offsets, in floats, of a task's pieces of scratch. */
typedef struct {
    size_t s, q, qs, k, kt, v, a, o, g, p, w, pw, z, den, total;
} linattn_plan;

typedef struct {
    lr_ctx *ctx;
    const lr_linattn_kernel *kern;
    linattn_conf c;
    linattn_dims d;
    const lr_tensor *q, *k, *v, *out;
    int W; /* state columns, Dv */
    linattn_plan plan;
} linattn_job;

static linattn_plan plan_scratch(int C, int D, int W)
{
    /* Each piece starts on a 64-byte line. */
    size_t at = 0;
    linattn_plan p;
#define PIECE(field, n) (p.field = at, at += ((size_t)(n) + 15) / 16 * 16)
    PIECE(s, (size_t)D * W);
    PIECE(q, (size_t)C * D);
    PIECE(qs, (size_t)C * D);
    PIECE(k, (size_t)C * D);
    PIECE(kt, (size_t)D * C);
    PIECE(v, (size_t)C * W);
    PIECE(a, (size_t)C * C);
    PIECE(o, (size_t)C * W);
    PIECE(g, (size_t)C * D);
    PIECE(p, (size_t)C * D);
    PIECE(w, D);
    PIECE(pw, C + 1);
    PIECE(z, D);
    PIECE(den, C);
#undef PIECE
    p.total = at;
    return p;
}

typedef struct {
    const linattn_job *job;
    int64_t b, h, hk; /* batch, query head, kv head */
    float *s, *q, *qs, *k, *kt, *v, *a, *o, *g, *p, *w, *pw, *z, *den;
} linattn_task;

/* Rows [l0, l0 + n) of q (queries) and of k and v (keys) into the task's chunk buffers, with
 * the feature map applied. */
static void load_chunk(const linattn_task *t, int64_t l0, int n, bool queries, bool keys)
{
    const linattn_job *job = t->job;
    int D = (int)job->d.D, W = job->W;
    for (int i = 0; i < n; i++) {
        if (queries)
            load_row(job->q, t->b, t->h, l0 + i, t->q + (size_t)i * D);
        if (keys) {
            load_row(job->k, t->b, t->hk, l0 + i, t->k + (size_t)i * D);
            load_row(job->v, t->b, t->hk, l0 + i, t->v + (size_t)i * W);
        }
    }
    if (job->c.kind != LR_LINATTN_DECAY) {
        if (queries)
            job->kern->elu1(t->q, (int64_t)n * D);
        if (keys)
            job->kern->elu1(t->k, (int64_t)n * D);
    }
}

/* kt[x][j] = k[j][x] * scale[j][x] (scale NULL: 1), the transposed keys of a chunk. */
static void transpose_keys(const linattn_task *t, int n, const float *scale)
{
    int D = (int)t->job->d.D, C = t->job->c.chunk;
    for (int j = 0; j < n; j++)
        for (int x = 0; x < D; x++)
            t->kt[(size_t)x * C + j] = t->k[(size_t)j * D + x] * (scale ? scale[(size_t)j * D + x] : 1.0f);
}

/* out = o divided by den + eps (ELU), normalised (NORM) or as it is (DECAY). */
static void finish_row(const linattn_conf *c, int64_t Dv, const float *o, float den, float *dst)
{
    if (c->kind == LR_LINATTN_DECAY) {
        memcpy(dst, o, (size_t)Dv * sizeof(float));
    } else if (c->kind == LR_LINATTN_ELU) {
        float inv = 1.0f / (den + c->eps);
        for (int64_t x = 0; x < Dv; x++)
            dst[x] = o[x] * inv;
    } else {
        double mean = 0, sq = 0;
        for (int64_t x = 0; x < Dv; x++)
            mean += o[x];
        mean = c->norm == LR_LINNORM_LAYER ? mean / (double)Dv : 0.0;
        for (int64_t x = 0; x < Dv; x++)
            sq += ((double)o[x] - mean) * ((double)o[x] - mean);
        double inv = c->norm == LR_LINNORM_LAYER ? 1.0 / sqrt(sq / (double)Dv + c->eps)
                                                 : 1.0 / (sqrt(sq / (double)Dv) + c->eps);
        for (int64_t x = 0; x < Dv; x++)
            dst[x] = (float)(((double)o[x] - mean) * inv);
    }
}

/* Decay chunk factors: g[t][x] = alpha of token l0 + t, p[t][x] = the product of g[0..t][x]
 * (the decay from the chunk's start through t), qs = q scaled by p. */
static void decay_factors(const linattn_task *t, int64_t l0, int n)
{
    const linattn_job *job = t->job;
    int D = (int)job->d.D;
    if (job->c.gates) {
        for (int i = 0; i < n; i++)
            load_row(job->c.gates, t->b, t->hk, l0 + i, t->g + (size_t)i * D);
    } else {
        float gamma = (float)gamma_of(&job->c, t->h);
        for (size_t i = 0; i < (size_t)n * D; i++)
            t->g[i] = gamma;
    }
    for (int i = 0; i < n; i++)
        for (int x = 0; x < D; x++) {
            size_t at = (size_t)i * D + x;
            t->p[at] = (i ? t->p[at - D] : 1.0f) * t->g[at];
            t->qs[at] = t->q[at] * t->p[at];
        }
}

/* Gated intra-chunk weights: a[i][j] = sum_x q[i][x] k[j][x] prod_{j < s <= i} g[s][x] for
 * j <= i, the product built up as j walks down from i. */
static void gated_scores(const linattn_task *t, int n)
{
    int D = (int)t->job->d.D, C = t->job->c.chunk;
    for (int i = 0; i < n; i++) {
        const float *qi = t->q + (size_t)i * D;
        for (int x = 0; x < D; x++)
            t->w[x] = 1.0f;
        for (int j = i; j >= 0; j--) {
            const float *kj = t->k + (size_t)j * D, *gj = t->g + (size_t)j * D;
            float acc = 0.0f;
            for (int x = 0; x < D; x++) {
                acc += qi[x] * kj[x] * t->w[x];
                t->w[x] *= gj[x];
            }
            t->a[(size_t)i * C + j] = acc;
        }
    }
}

static float dot(const float *x, const float *y, int n)
{
    float acc = 0.0f;
    for (int i = 0; i < n; i++)
        acc += x[i] * y[i];
    return acc;
}

/* ELU's denominators of a chunk's rows: phi(q_i) . z for the keys before the chunk (all keys
 * when not causal), plus, when causal, the row's weights of the keys j <= i inside it. */
static void chunk_denominators(const linattn_task *t, int n, bool causal)
{
    int D = (int)t->job->d.D, C = t->job->c.chunk;
    for (int i = 0; i < n; i++) {
        float den = dot(t->q + (size_t)i * D, t->z, D);
        for (int j = 0; causal && j <= i; j++)
            den += t->a[(size_t)i * C + j];
        t->den[i] = den;
    }
}

/* z += the key features of a chunk. */
static void add_key_features(const linattn_task *t, int n)
{
    int D = (int)t->job->d.D;
    for (int j = 0; j < n; j++)
        for (int x = 0; x < D; x++)
            t->z[x] += t->k[(size_t)j * D + x];
}

static void causal_task(linattn_task *t)
{
    const linattn_job *job = t->job;
    const lr_linattn_kernel *kern = job->kern;
    int D = (int)job->d.D, W = job->W, C = job->c.chunk;
    int64_t L = job->d.Lk;
    bool decay = job->c.kind == LR_LINATTN_DECAY, gated = decay && job->c.gates;
    bool elu = job->c.kind == LR_LINATTN_ELU;
    memset(t->s, 0, (size_t)D * W * sizeof(float));
    memset(t->z, 0, (size_t)D * sizeof(float));
    if (decay && !gated) {
        float gamma = (float)gamma_of(&job->c, t->h);
        t->pw[0] = 1.0f;
        for (int m = 1; m <= C; m++)
            t->pw[m] = t->pw[m - 1] * gamma;
    }
    for (int64_t l0 = 0; l0 < L; l0 += C) {
        int n = L - l0 < C ? (int)(L - l0) : C;
        load_chunk(t, l0, n, true, true);
        if (decay)
            decay_factors(t, l0, n);
        if (gated) {
            gated_scores(t, n);
        } else {
            transpose_keys(t, n, NULL);
            memset(t->a, 0, (size_t)n * C * sizeof(float));
            /* Only the lower triangle is read: 16 rows at a time, the columns up to their last. */
            for (int i0 = 0; i0 < n; i0 += 16) {
                int rows = n - i0 < 16 ? n - i0 : 16;
                kern->rows(rows, i0 + rows, D, t->q + (size_t)i0 * D, D, t->kt, C, t->a + (size_t)i0 * C, C,
                           false);
            }
            if (decay)
                for (int i = 0; i < n; i++)
                    for (int j = 0; j <= i; j++)
                        t->a[(size_t)i * C + j] *= t->pw[i - j];
        }
        memset(t->o, 0, (size_t)n * W * sizeof(float));
        kern->rows(n, W, D, decay ? t->qs : t->q, D, t->s, W, t->o, W, false);
        kern->rows(n, W, n, t->a, C, t->v, W, t->o, W, true);
        if (elu)
            chunk_denominators(t, n, true);
        for (int i = 0; i < n; i++)
            finish_row(&job->c, job->d.Dv, t->o + (size_t)i * W, elu ? t->den[i] : 0.0f,
                       out_row(job->out, t->b, t->h, l0 + i));
        if (l0 + n == L)
            break;
        if (elu)
            add_key_features(t, n);
        if (decay) {
            /* Key j enters the state decayed by the alphas after it in the chunk, and the
             * state itself by the whole chunk's product. */
            for (int x = 0; x < D; x++)
                t->w[x] = 1.0f;
            for (int j = n - 1; j >= 0; j--)
                for (int x = 0; x < D; x++) {
                    t->kt[(size_t)x * C + j] = t->k[(size_t)j * D + x] * t->w[x];
                    t->w[x] *= t->g[(size_t)j * D + x];
                }
            for (int x = 0; x < D; x++) {
                float f = t->p[(size_t)(n - 1) * D + x];
                for (int y = 0; y < W; y++)
                    t->s[(size_t)x * W + y] *= f;
            }
        }
        kern->rows(D, W, n, t->kt, C, t->v, W, t->s, W, false);
    }
}

static void noncausal_task(linattn_task *t)
{
    const linattn_job *job = t->job;
    const lr_linattn_kernel *kern = job->kern;
    int D = (int)job->d.D, W = job->W, C = job->c.chunk;
    bool elu = job->c.kind == LR_LINATTN_ELU;
    memset(t->s, 0, (size_t)D * W * sizeof(float));
    memset(t->z, 0, (size_t)D * sizeof(float));
    for (int64_t l0 = 0; l0 < job->d.Lk; l0 += C) {
        int n = job->d.Lk - l0 < C ? (int)(job->d.Lk - l0) : C;
        load_chunk(t, l0, n, false, true);
        transpose_keys(t, n, NULL);
        kern->rows(D, W, n, t->kt, C, t->v, W, t->s, W, false);
        if (elu)
            add_key_features(t, n);
    }
    for (int64_t l0 = 0; l0 < job->d.Lq; l0 += C) {
        int n = job->d.Lq - l0 < C ? (int)(job->d.Lq - l0) : C;
        load_chunk(t, l0, n, true, false);
        memset(t->o, 0, (size_t)n * W * sizeof(float));
        kern->rows(n, W, D, t->q, D, t->s, W, t->o, W, false);
        if (elu)
            chunk_denominators(t, n, false);
        for (int i = 0; i < n; i++)
            finish_row(&job->c, job->d.Dv, t->o + (size_t)i * W, elu ? t->den[i] : 0.0f,
                       out_row(job->out, t->b, t->h, l0 + i));
    }
}

static void linattn_task_run(void *arg, size_t task, int thread)
{
    const linattn_job *job = arg;
    float *base = lr_thread_scratch(job->ctx, thread);
    const linattn_plan *p = &job->plan;
    linattn_task t = {
        .job = job, .b = (int64_t)task / job->d.H, .h = (int64_t)task % job->d.H,
        .hk = (int64_t)task % job->d.H / (job->d.H / job->d.Hkv),
        .s = base + p->s, .q = base + p->q, .qs = base + p->qs, .k = base + p->k, .kt = base + p->kt,
        .v = base + p->v, .a = base + p->a, .o = base + p->o, .g = base + p->g, .p = base + p->p,
        .w = base + p->w, .pw = base + p->pw, .z = base + p->z, .den = base + p->den,
    };
    if (job->c.causal)
        causal_task(&t);
    else
        noncausal_task(&t);
}

static const lr_linattn_kernel *kernel_for(lr_cpu_level level)
{
    switch (level) {
    case LR_CPU_AVX512: return &lr_linattn_kernel_avx512;
    case LR_CPU_AVX2: return &lr_linattn_kernel_avx2;
    case LR_CPU_REF: break;
    }
    return &lr_linattn_kernel_ref;
}

lr_status lr_linear_attention(lr_ctx *ctx, const lr_linattn_params *p, const lr_tensor *q, const lr_tensor *k,
                              const lr_tensor *v, lr_tensor *out)
{
    linattn_job job = {.ctx = ctx, .q = q, .k = k, .v = v, .out = out};
    lr_status s = check_args(ctx, p, q, k, v, out, &job.d, &job.c);
    if (s != LR_OK)
        return s;
    if (job.d.B == 0 || job.d.H == 0)
        return LR_OK;
    job.kern = kernel_for(lr_ctx_cpu(ctx));
    job.W = (int)job.d.Dv;
    job.plan = plan_scratch(job.c.chunk, (int)job.d.D, job.W);
    if ((s = lr_thread_scratch_reserve(ctx, job.plan.total * sizeof(float))) != LR_OK)
        return s;
    lr_parallel_for(ctx, (size_t)(job.d.B * job.d.H), linattn_task_run, &job);
    return LR_OK;
}

/* ---- the references -------------------------------------------------------------------- */

typedef struct {
    lr_ctx *ctx;
    linattn_conf c;
    linattn_dims d;
    const lr_tensor *q, *k, *v, *out;
    int64_t W;
} ref_job;

static double phi(double x) { return x > 0 ? x + 1.0 : exp(x); }

/* A row of q or k in double: features for ELU and NORM, as it is for DECAY. */
static void ref_row(const ref_job *job, const lr_tensor *t, int64_t b, int64_t h, int64_t l, double *dst)
{
    for (int64_t x = 0; x < job->d.D; x++) {
        double e = elem(t, b, h, l, x);
        dst[x] = job->c.kind == LR_LINATTN_DECAY ? e : phi(e);
    }
}

static double ref_alpha(const ref_job *job, int64_t b, int64_t h, int64_t hk, int64_t l, int64_t x)
{
    return job->c.gates ? elem(job->c.gates, b, hk, l, x) : gamma_of(&job->c, h);
}

static void ref_finish(const linattn_conf *c, int64_t Dv, const double *o, float *dst)
{
    if (c->kind == LR_LINATTN_DECAY) {
        for (int64_t x = 0; x < Dv; x++)
            dst[x] = (float)o[x];
    } else if (c->kind == LR_LINATTN_ELU) {
        for (int64_t x = 0; x < Dv; x++)
            dst[x] = (float)(o[x] / (o[Dv] + c->eps));
    } else {
        double mean = 0, sq = 0;
        for (int64_t x = 0; x < Dv; x++)
            mean += o[x];
        mean = c->norm == LR_LINNORM_LAYER ? mean / (double)Dv : 0.0;
        for (int64_t x = 0; x < Dv; x++)
            sq += (o[x] - mean) * (o[x] - mean);
        double inv = c->norm == LR_LINNORM_LAYER ? 1.0 / sqrt(sq / (double)Dv + c->eps)
                                                 : 1.0 / (sqrt(sq / (double)Dv) + c->eps);
        for (int64_t x = 0; x < Dv; x++)
            dst[x] = (float)((o[x] - mean) * inv);
    }
}

/* Per query row: the weights of every visible key, then their sum of values (and of the
 * weights themselves, ELU's denominator). */
static void quadratic_task(void *arg, size_t task, int thread)
{
    const ref_job *job = arg;
    int64_t b = (int64_t)task / job->d.H, h = (int64_t)task % job->d.H, D = job->d.D, Dv = job->d.Dv;
    int64_t hk = h / (job->d.H / job->d.Hkv);
    double *w = lr_thread_scratch(job->ctx, thread), *qi = w + job->d.Lk, *kj = qi + D, *prod = kj + D;
    double *o = prod + D;
    for (int64_t i = 0; i < job->d.Lq; i++) {
        int64_t keys = job->c.causal ? i + 1 : job->d.Lk;
        ref_row(job, job->q, b, h, i, qi);
        for (int64_t x = 0; x < D; x++)
            prod[x] = 1.0;
        for (int64_t j = keys - 1; j >= 0; j--) {
            ref_row(job, job->k, b, hk, j, kj);
            double dot = 0;
            for (int64_t x = 0; x < D; x++)
                dot += qi[x] * kj[x] * prod[x];
            w[j] = dot;
            if (job->c.kind == LR_LINATTN_DECAY)
                for (int64_t x = 0; x < D; x++)
                    prod[x] *= ref_alpha(job, b, h, hk, j, x);
        }
        for (int64_t y = 0; y < job->W; y++)
            o[y] = 0;
        for (int64_t j = 0; j < keys; j++) {
            for (int64_t y = 0; y < Dv; y++)
                o[y] += w[j] * elem(job->v, b, hk, j, y);
            if (job->W > Dv)
                o[Dv] += w[j];
        }
        ref_finish(&job->c, Dv, o, out_row(job->out, b, h, i));
    }
}

/* The state S (with ELU's key-feature sum as column Dv), token by token. */
static void recurrent_task(void *arg, size_t task, int thread)
{
    const ref_job *job = arg;
    int64_t b = (int64_t)task / job->d.H, h = (int64_t)task % job->d.H, D = job->d.D, Dv = job->d.Dv;
    int64_t hk = h / (job->d.H / job->d.Hkv);
    int64_t W = job->W;
    double *s = lr_thread_scratch(job->ctx, thread), *qt = s + D * W, *kt = qt + D, *vt = kt + D, *o = vt + W;
    for (int64_t x = 0; x < D * W; x++)
        s[x] = 0;
    for (int64_t t = 0; t < job->d.Lk; t++) {
        ref_row(job, job->q, b, h, t, qt);
        ref_row(job, job->k, b, hk, t, kt);
        for (int64_t y = 0; y < Dv; y++)
            vt[y] = elem(job->v, b, hk, t, y);
        if (W > Dv)
            vt[Dv] = 1.0;
        for (int64_t x = 0; x < D; x++) {
            double decay = job->c.kind == LR_LINATTN_DECAY ? ref_alpha(job, b, h, hk, t, x) : 1.0;
            for (int64_t y = 0; y < W; y++)
                s[x * W + y] = decay * s[x * W + y] + kt[x] * vt[y];
        }
        for (int64_t y = 0; y < W; y++) {
            double acc = 0;
            for (int64_t x = 0; x < D; x++)
                acc += qt[x] * s[x * W + y];
            o[y] = acc;
        }
        ref_finish(&job->c, Dv, o, out_row(job->out, b, h, t));
    }
}

static lr_status run_reference(lr_ctx *ctx, const lr_linattn_params *p, const lr_tensor *q, const lr_tensor *k,
                               const lr_tensor *v, lr_tensor *out, bool recurrent)
{
    ref_job job = {.ctx = ctx, .q = q, .k = k, .v = v, .out = out};
    lr_status s = check_args(ctx, p, q, k, v, out, &job.d, &job.c);
    if (s != LR_OK)
        return s;
    if (recurrent && !job.c.causal)
        return lr_fail(ctx, LR_ERR_ARG, "linear attention: the recurrent form is causal only");
    if (job.d.B == 0 || job.d.H == 0)
        return LR_OK;
    job.W = state_width(&job.c, job.d.Dv);
    size_t doubles = recurrent ? (size_t)(job.d.D * job.W + 2 * job.d.D + 2 * job.W)
                               : (size_t)(job.d.Lk + 3 * job.d.D + job.W);
    size_t bytes;
    if (!lr_mul_size(doubles, sizeof(double), &bytes))
        return lr_fail(ctx, LR_ERR_NOMEM, "linear attention: %lld keys overflow the scratch size",
                       (long long)job.d.Lk);
    if ((s = lr_thread_scratch_reserve(ctx, bytes)) != LR_OK)
        return s;
    lr_parallel_for(ctx, (size_t)(job.d.B * job.d.H), recurrent ? recurrent_task : quadratic_task, &job);
    return LR_OK;
}

lr_status lr_linear_attention_quadratic(lr_ctx *ctx, const lr_linattn_params *p, const lr_tensor *q,
                                        const lr_tensor *k, const lr_tensor *v, lr_tensor *out)
{
    return run_reference(ctx, p, q, k, v, out, false);
}

lr_status lr_linear_attention_recurrent(lr_ctx *ctx, const lr_linattn_params *p, const lr_tensor *q,
                                        const lr_tensor *k, const lr_tensor *v, lr_tensor *out)
{
    return run_reference(ctx, p, q, k, v, out, true);
}

double lr_linear_attention_flops(const lr_linattn_params *p, int64_t B, int64_t H, int64_t Lq, int64_t Lk,
                                 int64_t D, int64_t Dv)
{
    lr_linattn_params defaults = lr_linattn_default_params();
    if (!p)
        p = &defaults;
    if (B < 0 || H < 0 || Lq < 0 || Lk < 0 || D < 0 || Dv < 0 || p->chunk < 0)
        return -1;
    double madds = (double)(Lq + Lk) * (double)D * (double)Dv;
    if (p->causal || p->kind == LR_LINATTN_DECAY) {
        int64_t C = p->chunk ? p->chunk : DEFAULT_CHUNK, full = Lk / C, tail = Lk % C;
        double pairs = (double)full * (double)C * (double)(C + 1) / 2 + (double)tail * (double)(tail + 1) / 2;
        madds += pairs * (double)(D + Dv);
    }
    return 2.0 * madds * (double)B * (double)H;
}
