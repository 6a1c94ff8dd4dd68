/* Exact softmax attention: argument checks, the visibility rules, the plain reference, and
 * the tiled driver behind lr_attention.
 *
 * The driver cuts every head's queries into tiles of at most block_q rows (never crossing a
 * block-mask row, so a tile is inside one mask block) and makes each (batch, head, query
 * tile) one task; the decomposition depends on the shapes only, so results are bit-identical
 * for any thread count. Tasks go head by head, so that the threads share one head's K and V
 * in cache, and within a head from the last query tile down: under a causal mask the last
 * tiles see the most keys, and handing them out first leaves small tasks for the end, where
 * the pool's dynamic scheduling evens out the threads.
 *
 * A task packs its queries once, then walks only the key range its rows can see (sink keys,
 * then the causal/window band), block_k keys at a time. Each key tile is classified: no
 * visible pair (skipped), every pair visible (no mask work at all), or a boundary tile,
 * where each key's visible queries, an interval, are masked. The online softmax keeps a
 * running maximum m, sum l and rescaled accumulator O per query row in the thread's scratch;
 * nothing of size Lq x Lk ever exists. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "attention_internal.h"
#include "internal.h"
#include "longrange/attention.h"
#include "longrange/parallel.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

enum { MAX_HEAD_DIM = 1024 };

lr_attn_params lr_attn_default_params(void)
{
    lr_attn_params p;
    memset(&p, 0, sizeof p);
    p.window_left = -1;
    p.window_right = -1;
    return p;
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
static int64_t clamp64(int64_t x, int64_t lo, int64_t hi) { return x < lo ? lo : x > hi ? hi : x; }
static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
static int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

/* ---- shapes and arguments ---------------------------------------------------------- */

typedef struct {
    int64_t B, Hq, Hkv, Lq, Lk, D, Dv;
} attn_dims;

/* Which (query, key) pairs the mask parameters leave visible, before key padding and the
 * block mask. */
typedef struct {
    bool causal, windowed;
    int64_t offset; /* Lk - Lq: query i sits at key position i + offset */
    int64_t window_left, window_right, n_sink;
} attn_rule;

static attn_rule rule_from(const lr_attn_params *p, int64_t Lq, int64_t Lk)
{
    attn_rule r = {
        .causal = p->causal,
        .windowed = p->window_left >= 0 || p->window_right >= 0,
        .offset = Lk - Lq,
        .window_left = p->window_left,
        .window_right = p->window_right,
        .n_sink = p->n_sink,
    };
    return r;
}

/* The definition, one pair at a time (the reference uses this; the driver works with the
 * intervals below and is tested against it). */
static bool rule_visible(const attn_rule *r, int64_t i, int64_t j)
{
    int64_t pos = i + r->offset;
    if (r->causal && j > pos)
        return false;
    if (r->windowed && j >= r->n_sink) {
        if (r->window_left >= 0 && j < pos - r->window_left)
            return false;
        if (r->window_right >= 0 && j > pos + r->window_right)
            return false;
    }
    return true;
}

/* The queries that see key j form one interval, [*lo, *hi) after clipping to [i0, i1). */
static void rule_queries_of_key(const attn_rule *r, int64_t j, int64_t i0, int64_t i1, int64_t *lo,
                                int64_t *hi)
{
    int64_t a = i0, b = i1;
    if (r->causal)
        a = max64(a, j - r->offset);
    if (r->windowed && j >= r->n_sink) {
        if (r->window_right >= 0)
            a = max64(a, j - r->window_right - r->offset);
        if (r->window_left >= 0)
            b = min64(b, j + r->window_left - r->offset + 1);
    }
    *lo = a;
    *hi = b > a ? b : a;
}

/* The keys a query sees under the rule: sink keys [0, sink_end) and the band [lo, hi), both
 * within [0, Lk). */
typedef struct {
    int64_t sink_end, lo, hi;
} key_ranges;

static key_ranges rule_keys_of_query(const attn_rule *r, int64_t i, int64_t Lk)
{
    int64_t pos = i + r->offset;
    int64_t end = r->causal ? clamp64(pos + 1, 0, Lk) : Lk;
    key_ranges k = {r->windowed ? min64(r->n_sink, end) : 0, 0, end};
    if (r->windowed) {
        if (r->window_left >= 0)
            k.lo = clamp64(pos - r->window_left, 0, Lk);
        if (r->window_right >= 0)
            k.hi = min64(k.hi, clamp64(pos + r->window_right + 1, 0, Lk));
    }
    k.hi = max64(k.hi, k.lo);
    return k;
}

static const char *shape_of(const lr_tensor *t, char *buf, size_t size)
{
    int ndim = t->ndim < 0 ? 0 : t->ndim > LR_MAX_DIMS ? LR_MAX_DIMS : t->ndim; /* never trust a bad rank */
    return lr_shape_str(ndim, t->shape, buf, size);
}

static lr_status check_qkv(lr_ctx *ctx, const char *name, const lr_tensor *t, const char *layout)
{
    char buf[128];
    if (!t)
        return lr_fail(ctx, LR_ERR_ARG, "attention: %s is missing", name);
    if (t->ndim != 4)
        return lr_fail(ctx, LR_ERR_ARG, "attention: %s must be %s, got shape %s", name, layout,
                       shape_of(t, buf, sizeof buf));
    if (lr_tensor_numel(t) < 0)
        return lr_fail(ctx, LR_ERR_ARG, "attention: %s has an invalid shape %s", name,
                       shape_of(t, buf, sizeof buf));
    if (t->shape[3] > 1 && t->stride[3] != 1)
        return lr_fail(ctx, LR_ERR_ARG, "attention: the last dimension of %s must be contiguous (stride %lld)",
                       name, (long long)t->stride[3]);
    if (!t->data && lr_tensor_numel(t) > 0)
        return lr_fail(ctx, LR_ERR_ARG, "attention: %s has no data", name);
    return LR_OK;
}

/* "[1 or 2, 4, 100]": the accepted extents of a side tensor's dimensions. */
static const char *accepted_shape(int ndim, const int64_t *want, const int64_t *alt, char *buf, size_t size)
{
    size_t n = 0;
    for (int i = 0; i < ndim && n < size; i++) {
        int w = alt[i] >= 0 && alt[i] != want[i]
                    ? snprintf(buf + n, size - n, "%s%lld or %lld", i ? ", " : "[", (long long)alt[i], (long long)want[i])
                    : snprintf(buf + n, size - n, "%s%lld", i ? ", " : "[", (long long)want[i]);
        n += w > 0 ? (size_t)w : 0;
    }
    if (n < size)
        snprintf(buf + n, size - n, "]");
    return buf;
}

/* A side tensor (bias, padding, block mask) of exactly `ndim` dimensions whose extents are
 * want[i], or alt[i] where that is not -1 (broadcasting). */
static lr_status check_side(lr_ctx *ctx, const char *name, const lr_tensor *t, lr_dtype dtype, int ndim,
                            const int64_t *want, const int64_t *alt)
{
    char a[160], b[128];
    if (t->dtype != dtype)
        return lr_fail(ctx, LR_ERR_ARG, "attention: %s must be %s, got %s", name, lr_dtype_name(dtype),
                       lr_dtype_name(t->dtype));
    bool ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++)
        ok = t->shape[i] == want[i] || (alt[i] >= 0 && t->shape[i] == alt[i]);
    if (!ok)
        return lr_fail(ctx, LR_ERR_ARG, "attention: %s must have shape %s, got %s", name,
                       accepted_shape(ndim, want, alt, a, sizeof a), shape_of(t, b, sizeof b));
    if (!t->data && lr_tensor_numel(t) > 0)
        return lr_fail(ctx, LR_ERR_ARG, "attention: %s has no data", name);
    return LR_OK;
}

static lr_status check_params(lr_ctx *ctx, const lr_attn_params *p, const attn_dims *d)
{
    if (!(p->scale >= 0) || isinf(p->scale))
        return lr_fail(ctx, LR_ERR_ARG, "attention: scale %g must be finite and >= 0 (0 selects 1/sqrt(D))",
                       (double)p->scale);
    if (p->window_left < -1 || p->window_right < -1)
        return lr_fail(ctx, LR_ERR_ARG, "attention: window sizes %lld, %lld must be >= 0, or -1 for unbounded",
                       (long long)p->window_left, (long long)p->window_right);
    if (p->n_sink < 0)
        return lr_fail(ctx, LR_ERR_ARG, "attention: n_sink %lld is negative", (long long)p->n_sink);
    lr_status s;
    if (p->bias) {
        int64_t want[4] = {d->B, d->Hq, d->Lq, d->Lk}, alt[4] = {1, 1, -1, -1};
        if ((s = check_side(ctx, "bias", p->bias, LR_F32, 4, want, alt)) != LR_OK)
            return s;
    }
    if (p->key_padding) {
        int64_t want[2] = {d->B, d->Lk}, alt[2] = {-1, -1};
        if ((s = check_side(ctx, "key_padding", p->key_padding, LR_U8, 2, want, alt)) != LR_OK)
            return s;
    }
    if (p->block_mask) {
        if (p->block_q < 1 || p->block_k < 1)
            return lr_fail(ctx, LR_ERR_ARG, "attention: block_mask needs block_q and block_k >= 1, got %lld and %lld",
                           (long long)p->block_q, (long long)p->block_k);
        int64_t want[3] = {d->Hq, ceil_div(d->Lq, p->block_q), ceil_div(d->Lk, p->block_k)}, alt[3] = {1, -1, -1};
        if ((s = check_side(ctx, "block_mask", p->block_mask, LR_U8, 3, want, alt)) != LR_OK)
            return s;
    }
    return LR_OK;
}

static lr_status check_args(lr_ctx *ctx, const lr_attn_params *p, const lr_tensor *q, const lr_tensor *k,
                            const lr_tensor *v, const lr_tensor *out, attn_dims *d)
{
    char a[128], b[128];
    lr_status s;
    if ((s = check_qkv(ctx, "q", q, "[B, Hq, Lq, D]")) != LR_OK ||
        (s = check_qkv(ctx, "k", k, "[B, Hkv, Lk, D]")) != LR_OK ||
        (s = check_qkv(ctx, "v", v, "[B, Hkv, Lk, Dv]")) != LR_OK ||
        (s = check_qkv(ctx, "out", out, "[B, Hq, Lq, Dv]")) != LR_OK)
        return s;
    if (q->dtype != LR_F32 && q->dtype != LR_BF16)
        return lr_fail(ctx, LR_ERR_ARG, "attention: q, k, v must be f32 or bf16, got %s", lr_dtype_name(q->dtype));
    if (k->dtype != q->dtype || v->dtype != q->dtype)
        return lr_fail(ctx, LR_ERR_ARG, "attention: q, k, v must share one dtype, got %s, %s, %s",
                       lr_dtype_name(q->dtype), lr_dtype_name(k->dtype), lr_dtype_name(v->dtype));
    if (out->dtype != LR_F32)
        return lr_fail(ctx, LR_ERR_ARG, "attention: out must be f32, got %s", lr_dtype_name(out->dtype));
    d->B = q->shape[0];
    d->Hq = q->shape[1];
    d->Lq = q->shape[2];
    d->D = q->shape[3];
    d->Hkv = k->shape[1];
    d->Lk = k->shape[2];
    d->Dv = v->shape[3];
    if (k->shape[0] != d->B || v->shape[0] != d->B || out->shape[0] != d->B)
        return lr_fail(ctx, LR_ERR_ARG, "attention: batch sizes differ: q %lld, k %lld, v %lld, out %lld",
                       (long long)d->B, (long long)k->shape[0], (long long)v->shape[0], (long long)out->shape[0]);
    if (k->shape[3] != d->D)
        return lr_fail(ctx, LR_ERR_ARG, "attention: q %s and k %s differ in head dim",
                       shape_of(q, a, sizeof a), shape_of(k, b, sizeof b));
    if (v->shape[1] != d->Hkv || v->shape[2] != d->Lk)
        return lr_fail(ctx, LR_ERR_ARG, "attention: k %s and v %s differ in heads or length",
                       shape_of(k, a, sizeof a), shape_of(v, b, sizeof b));
    if (out->shape[1] != d->Hq || out->shape[2] != d->Lq || out->shape[3] != d->Dv)
        return lr_fail(ctx, LR_ERR_ARG, "attention: out %s must be [%lld, %lld, %lld, %lld]",
                       shape_of(out, a, sizeof a), (long long)d->B, (long long)d->Hq, (long long)d->Lq,
                       (long long)d->Dv);
    if (d->Hkv == 0 ? d->Hq != 0 : d->Hq % d->Hkv != 0)
        return lr_fail(ctx, LR_ERR_ARG, "attention: %lld query heads are not a multiple of %lld key/value heads",
                       (long long)d->Hq, (long long)d->Hkv);
    if (d->D < 1 || d->D > MAX_HEAD_DIM || d->Dv < 1 || d->Dv > MAX_HEAD_DIM)
        return lr_fail(ctx, LR_ERR_ARG, "attention: head dims %lld (q, k) and %lld (v) must be in 1..%d",
                       (long long)d->D, (long long)d->Dv, MAX_HEAD_DIM);
    return check_params(ctx, p, d);
}

static float scale_of(const lr_attn_params *p, int64_t D)
{
    return p->scale > 0 ? p->scale : (float)(1.0 / sqrt((double)D));
}

/* ---- element access ----------------------------------------------------------------- */

static const uint8_t *u8_at(const lr_tensor *t, int64_t a, int64_t b, int64_t c)
{
    int64_t off = a * t->stride[0] + b * t->stride[1] + (t->ndim > 2 ? c * t->stride[2] : 0);
    return (const uint8_t *)t->data + off;
}

static bool key_padded(const lr_tensor *pad, int64_t b, int64_t j)
{
    return pad && *u8_at(pad, b, j, 0) != 0;
}

/* Whether the block mask shows query block row bi, key block column bj of head h. */
static bool block_shown(const lr_tensor *mask, int64_t h, int64_t bi, int64_t bj)
{
    return !mask || *u8_at(mask, mask->shape[0] == 1 ? 0 : h, bi, bj) != 0;
}

static float bias_at(const lr_tensor *bias, int64_t b, int64_t h, int64_t i, int64_t j)
{
    const float *base = bias->data;
    return base[(bias->shape[0] == 1 ? 0 : b) * bias->stride[0] + (bias->shape[1] == 1 ? 0 : h) * bias->stride[1] +
                i * bias->stride[2] + j * bias->stride[3]];
}

/* Row `row` of head (b, h) of a 4-d tensor, as a byte pointer. */
static const char *row_at(const lr_tensor *t, int64_t b, int64_t h, int64_t row)
{
    int64_t off = b * t->stride[0] + h * t->stride[1] + row * t->stride[2];
    return (const char *)t->data + off * (int64_t)lr_dtype_size(t->dtype);
}

static float element(const char *row, lr_dtype dtype, int64_t x)
{
    if (dtype == LR_BF16) {
        uint16_t bits;
        memcpy(&bits, row + 2 * x, 2);
        return lr_bf16_to_f32(bits);
    }
    float f;
    memcpy(&f, row + 4 * x, 4);
    return f;
}

/* ---- visible pairs ------------------------------------------------------------------ */

/* |[a0, a1) u [b0, b1)| within [c0, c1), for a0 <= a1 and b0 <= b1. */
static int64_t union_within(int64_t a0, int64_t a1, int64_t b0, int64_t b1, int64_t c0, int64_t c1)
{
    int64_t a = max64(0, min64(a1, c1) - max64(a0, c0));
    int64_t b = max64(0, min64(b1, c1) - max64(b0, c0));
    int64_t both = max64(0, min64(min64(a1, b1), c1) - max64(max64(a0, b0), c0));
    return a + b - both;
}

int64_t lr_attention_pairs(const lr_attn_params *p, int64_t B, int64_t Hq, int64_t Lq, int64_t Lk)
{
    lr_attn_params defaults = lr_attn_default_params();
    if (!p)
        p = &defaults;
    if (B < 0 || Hq < 0 || Lq < 0 || Lk < 0 || p->window_left < -1 || p->window_right < -1 || p->n_sink < 0)
        return -1;
    const lr_tensor *mask = p->block_mask;
    if (mask && (p->block_q < 1 || p->block_k < 1 || mask->ndim != 3 || mask->dtype != LR_U8 ||
                 (mask->shape[0] != 1 && mask->shape[0] != Hq) || mask->shape[1] != ceil_div(Lq, p->block_q) ||
                 mask->shape[2] != ceil_div(Lk, p->block_k)))
        return -1;
    attn_rule rule = rule_from(p, Lq, Lk);
    int64_t heads = mask && mask->shape[0] != 1 ? Hq : 1;
    int64_t total = 0;
    for (int64_t h = 0; h < heads; h++) {
        for (int64_t i = 0; i < Lq; i++) {
            key_ranges r = rule_keys_of_query(&rule, i, Lk);
            if (!mask) {
                total += union_within(0, r.sink_end, r.lo, r.hi, 0, Lk);
                continue;
            }
            /* only the mask columns that the row's keys reach */
            int64_t first = (r.sink_end > 0 ? 0 : r.lo) / p->block_k;
            int64_t end = ceil_div(max64(r.sink_end, r.hi), p->block_k);
            for (int64_t bj = first; bj < end; bj++)
                if (block_shown(mask, h, i / p->block_q, bj))
                    total += union_within(0, r.sink_end, r.lo, r.hi, bj * p->block_k, (bj + 1) * p->block_k);
        }
    }
    int64_t copies, pairs;
    if (__builtin_mul_overflow(B, heads == 1 ? Hq : 1, &copies) || __builtin_mul_overflow(total, copies, &pairs))
        return -1;
    return pairs;
}

/* ---- the reference ------------------------------------------------------------------ */

enum { REF_ROWS_PER_TASK = 16 };

typedef struct {
    lr_ctx *ctx;
    const lr_attn_params *p;
    attn_dims d;
    attn_rule rule;
    double scale;
    const lr_tensor *q, *k, *v, *out;
    int64_t tasks_per_head;
} ref_job;

static void ref_row(const ref_job *job, int64_t b, int64_t h, int64_t i, double *score, double *acc)
{
    const attn_dims *d = &job->d;
    const lr_attn_params *p = job->p;
    int64_t hk = h / (d->Hq / d->Hkv);
    const char *qrow = row_at(job->q, b, h, i);
    lr_dtype dt = job->q->dtype;
    double best = -INFINITY;
    for (int64_t j = 0; j < d->Lk; j++) {
        score[j] = -INFINITY;
        if (!rule_visible(&job->rule, i, j) || key_padded(p->key_padding, b, j) ||
            (p->block_mask && !block_shown(p->block_mask, h, i / p->block_q, j / p->block_k)))
            continue;
        const char *krow = row_at(job->k, b, hk, j);
        double dot = 0;
        for (int64_t x = 0; x < d->D; x++)
            dot += (double)element(qrow, dt, x) * (double)element(krow, dt, x);
        score[j] = dot * job->scale + (p->bias ? (double)bias_at(p->bias, b, h, i, j) : 0.0);
        if (score[j] > best)
            best = score[j];
    }
    for (int64_t c = 0; c < d->Dv; c++)
        acc[c] = 0;
    double sum = 0;
    if (best > -INFINITY) {
        for (int64_t j = 0; j < d->Lk; j++) {
            if (score[j] == -INFINITY)
                continue;
            double w = exp(score[j] - best);
            const char *vrow = row_at(job->v, b, hk, j);
            sum += w;
            for (int64_t c = 0; c < d->Dv; c++)
                acc[c] += w * (double)element(vrow, dt, c);
        }
    }
    float *orow = (float *)row_at(job->out, b, h, i);
    for (int64_t c = 0; c < d->Dv; c++)
        orow[c] = sum > 0 ? (float)(acc[c] / sum) : 0.0f;
}

static void ref_task(void *arg, size_t task, int thread)
{
    const ref_job *job = arg;
    int64_t bh = (int64_t)task / job->tasks_per_head;
    int64_t i0 = (int64_t)task % job->tasks_per_head * REF_ROWS_PER_TASK;
    double *score = lr_thread_scratch(job->ctx, thread);
    double *acc = score + job->d.Lk;
    for (int64_t i = i0; i < min64(i0 + REF_ROWS_PER_TASK, job->d.Lq); i++)
        ref_row(job, bh / job->d.Hq, bh % job->d.Hq, i, score, acc);
}

lr_status lr_attention_ref(lr_ctx *ctx, const lr_attn_params *p, const lr_tensor *q, const lr_tensor *k,
                           const lr_tensor *v, lr_tensor *out)
{
    lr_attn_params defaults = lr_attn_default_params();
    if (!p)
        p = &defaults;
    ref_job job = {.ctx = ctx, .p = p, .q = q, .k = k, .v = v, .out = out};
    lr_status s = check_args(ctx, p, q, k, v, out, &job.d);
    if (s != LR_OK)
        return s;
    job.rule = rule_from(p, job.d.Lq, job.d.Lk);
    job.scale = scale_of(p, job.d.D);
    job.tasks_per_head = ceil_div(job.d.Lq, REF_ROWS_PER_TASK);
    size_t bytes;
    if (!lr_mul_size((size_t)(job.d.Lk + job.d.Dv), sizeof(double), &bytes))
        return lr_fail(ctx, LR_ERR_NOMEM, "attention: %lld keys overflow the scratch size", (long long)job.d.Lk);
    if ((s = lr_thread_scratch_reserve(ctx, bytes)) != LR_OK)
        return s;
    lr_parallel_for(ctx, (size_t)(job.d.B * job.d.Hq * job.tasks_per_head), ref_task, &job);
    return LR_OK;
}

/* ---- the tiled driver --------------------------------------------------------------- */

#if defined(__x86_64__) || defined(__i386__)
/* CPUID leaf 7 subleaf 1, EAX bit 5 (not every compiler's __builtin_cpu_supports knows
 * "avx512bf16"); the caller has already established AVX-512 with OS support. */
static bool cpu_has_avx512_bf16(void)
{
    unsigned a, b, c, d;
    return __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 5));
}
#endif

const lr_attn_kernel *lr_attn_kernel_f32(lr_cpu_level level)
{
    switch (level) {
    case LR_CPU_AVX512: return &lr_attn_kernel_avx512;
    case LR_CPU_AVX2: return &lr_attn_kernel_avx2;
    case LR_CPU_REF: break;
    }
    return &lr_attn_kernel_ref;
}

static const lr_attn_kernel *kernel_for(lr_cpu_level level, lr_dtype dtype)
{
#if defined(__x86_64__) || defined(__i386__)
    if (level == LR_CPU_AVX512 && dtype == LR_BF16 && cpu_has_avx512_bf16())
        return &lr_attn_kernel_avx512_bf16;
#endif
    return lr_attn_kernel_f32(level);
}

/* Where each piece of a task's scratch starts, in bytes. */
typedef struct {
    size_t qt, s, p, o, m, l, alpha, colmax, lo, hi, kf, vf, total;
} scratch_plan;

typedef struct {
    const lr_attn_kernel *kern;
    lr_ctx *ctx;
    const lr_attn_params *p;
    attn_dims d;
    attn_rule rule;
    float c; /* scale * log2(e): multiplies q.k into a base-2 logit */
    const lr_tensor *q, *k, *v, *out;
    bool convert_kv; /* BF16 inputs to an F32 kernel: K and V tiles become F32 in scratch */
    int br, bk;      /* query rows, keys per tile */
    int ldo;
    int64_t span;    /* query tiles never cross a multiple of span (a block-mask row) */
    int64_t tiles_per_span, tiles_per_head;
    scratch_plan plan;
} attn_job;

typedef struct {
    const attn_job *job;
    char *scratch;
    int64_t b, h, hk, i0, i1;
    void *qt;
    float *s, *o, *m, *l, *alpha, *colmax;
    void *p;
    int32_t *lo, *hi;
} attn_task;

static uint32_t load_u32(const char *p)
{
    uint32_t x;
    memcpy(&x, p, 4);
    return x;
}

static uint32_t load_u16(const char *p)
{
    uint16_t x;
    memcpy(&x, p, 2);
    return x;
}

/* Q of the tile into the packed layout. Every packed lane is 32 bits of bit pattern: an F32
 * as it is, a bf16 widened to F32 (shifted up), or a pair of bf16 for BF16 kernels. */
static void pack_queries(const attn_task *t)
{
    const attn_job *job = t->job;
    int64_t br = job->br, D = job->d.D, nq = t->i1 - t->i0;
    bool pairs = job->kern->bf16, widen = !pairs && job->q->dtype == LR_BF16;
    int64_t lanes = pairs ? ceil_div(D, 2) : D;
    for (int64_t i = 0; i < br; i++) {
        uint32_t *col = (uint32_t *)t->qt + i;
        if (i >= nq) {
            for (int64_t x = 0; x < lanes; x++)
                col[x * br] = 0;
            continue;
        }
        const char *row = row_at(job->q, t->b, t->h, t->i0 + i);
        if (pairs) {
            for (int64_t x = 0; x < D / 2; x++)
                col[x * br] = load_u32(row + 4 * x);
            if (D % 2)
                col[D / 2 * br] = load_u16(row + 2 * (D - 1));
        } else if (widen) {
            for (int64_t x = 0; x < D; x++)
                col[x * br] = load_u16(row + 2 * x) << 16;
        } else {
            for (int64_t x = 0; x < D; x++)
                col[x * br] = load_u32(row + 4 * x);
        }
    }
}

/* Rows [j0, j0 + nk) of head (b, hk) of K or V as the kernel reads them: in place, or
 * converted to F32 into dst (row stride = width) when the kernel cannot take BF16. */
static const void *kv_rows(const attn_job *job, const lr_tensor *t, int64_t b, int64_t hk, int64_t j0, int nk,
                           float *dst, int64_t *stride)
{
    if (!job->convert_kv) {
        *stride = t->stride[2];
        return row_at(t, b, hk, j0);
    }
    int64_t width = t->shape[3];
    for (int j = 0; j < nk; j++) {
        const char *row = row_at(t, b, hk, j0 + j);
        for (int64_t x = 0; x < width; x++) {
            uint32_t bits = load_u16(row + 2 * x) << 16; /* a bf16 is the top half of an F32 */
            memcpy(dst + j * width + x, &bits, 4);
        }
    }
    *stride = width;
    return dst;
}

typedef enum { TILE_HIDDEN, TILE_FULL, TILE_BOUNDARY } tile_kind;

/* Whether every pair of queries [i0, i1) x keys [j0, j1) passes the rule, from the
 * tile's corners (each constraint is monotone in i and j). */
static bool rule_covers(const attn_rule *r, int64_t i0, int64_t i1, int64_t j0, int64_t j1)
{
    if (r->causal && j1 - 1 > i0 + r->offset)
        return false;
    if (!r->windowed || j1 <= r->n_sink)
        return true;
    if (j0 < r->n_sink)
        return false;
    if (r->window_left >= 0 && j0 < i1 - 1 + r->offset - r->window_left)
        return false;
    return r->window_right < 0 || j1 - 1 <= i0 + r->offset + r->window_right;
}

static tile_kind classify_tile(const attn_task *t, int64_t j0, int64_t j1)
{
    const attn_job *job = t->job;
    const lr_attn_params *p = job->p;
    if (p->block_mask && !block_shown(p->block_mask, t->h, t->i0 / p->block_q, j0 / p->block_k))
        return TILE_HIDDEN;
    bool padded = false;
    for (int64_t j = j0; p->key_padding && j < j1 && !padded; j++)
        padded = key_padded(p->key_padding, t->b, j);
    if (!padded && !p->bias && rule_covers(&job->rule, t->i0, t->i1, j0, j1))
        return TILE_FULL;
    bool any = false;
    for (int64_t j = j0; j < j1; j++) {
        int64_t lo = 0, hi = 0;
        if (!key_padded(p->key_padding, t->b, j))
            rule_queries_of_key(&job->rule, j, t->i0, t->i1, &lo, &hi);
        t->lo[j - j0] = (int32_t)(lo - t->i0);
        t->hi[j - j0] = (int32_t)(hi - t->i0);
        any |= hi > lo;
    }
    return any ? TILE_BOUNDARY : TILE_HIDDEN;
}

/* Scores become base-2 logits with the bias added: s * c + bias * log2(e). */
static void add_bias(const attn_task *t, int64_t j0, int nk)
{
    const attn_job *job = t->job;
    int br = job->br;
    for (int64_t i = t->i0; i < t->i1; i++) {
        float *col = t->s + (i - t->i0);
        for (int j = 0; j < nk; j++)
            col[j * br] = col[j * br] * job->c + LR_LOG2E * bias_at(job->p->bias, t->b, t->h, i, j0 + j);
    }
}

static void run_tile(const attn_task *t, int64_t j0, int64_t j1)
{
    const attn_job *job = t->job;
    const lr_attn_kernel *kern = job->kern;
    tile_kind kind = classify_tile(t, j0, j1);
    if (kind == TILE_HIDDEN)
        return;
    int nk = (int)(j1 - j0);
    int64_t k_stride, v_stride;
    float *kf = (float *)(t->scratch + job->plan.kf);
    const void *keys = kv_rows(job, job->k, t->b, t->hk, j0, nk, kf, &k_stride);
    kern->scores(t->qt, job->br, keys, k_stride, nk, (int)job->d.D, t->s, t->colmax);
    float c = job->c;
    if (job->p->bias) {
        add_bias(t, j0, nk);
        c = 1.0f;
    }
    if (kind == TILE_BOUNDARY)
        kern->mask(t->s, job->br, nk, t->lo, t->hi, t->colmax);
    kern->softmax(t->s, t->p, job->br, nk, c, t->colmax, t->m, t->l, t->alpha);
    float *vf = (float *)(t->scratch + job->plan.vf);
    const void *values = kv_rows(job, job->v, t->b, t->hk, j0, nk, vf, &v_stride);
    if (kern->bf16) {
        kern->pack_v(values, v_stride, nk, (int)job->d.Dv, job->ldo, (uint32_t *)vf);
        values = vf;
        v_stride = job->ldo;
    }
    kern->accumulate(t->p, job->br, values, v_stride, nk, (int)job->d.Dv, t->alpha, t->o, job->ldo);
}

/* Walks [lo, hi) in tiles of at most bk keys that never cross a block-mask column. */
static void run_key_range(const attn_task *t, int64_t lo, int64_t hi)
{
    const attn_job *job = t->job;
    const lr_attn_params *p = job->p;
    for (int64_t j0 = lo; j0 < hi;) {
        int64_t j1 = min64(j0 + job->bk, hi);
        if (p->block_mask)
            j1 = min64(j1, (j0 / p->block_k + 1) * p->block_k);
        run_tile(t, j0, j1);
        j0 = j1;
    }
}

static void write_output(const attn_task *t)
{
    const attn_job *job = t->job;
    for (int64_t i = t->i0; i < t->i1; i++) {
        const float *o = t->o + (i - t->i0) * job->ldo;
        float l = t->l[i - t->i0];
        float inv = l > 0 ? 1.0f / l : 0.0f;
        float *row = (float *)row_at(job->out, t->b, t->h, i);
        for (int64_t c = 0; c < job->d.Dv; c++)
            row[c] = o[c] * inv;
    }
}

static void attention_task(void *arg, size_t task, int thread)
{
    const attn_job *job = arg;
    const attn_dims *d = &job->d;
    int64_t bh = (int64_t)task / job->tiles_per_head;
    int64_t tile = job->tiles_per_head - 1 - (int64_t)task % job->tiles_per_head;
    attn_task t = {.job = job, .scratch = lr_thread_scratch(job->ctx, thread)};
    t.b = bh / d->Hq;
    t.h = bh % d->Hq;
    t.hk = t.h / (d->Hq / d->Hkv);
    int64_t span_start = tile / job->tiles_per_span * job->span;
    t.i0 = span_start + tile % job->tiles_per_span * job->br;
    t.i1 = min64(min64(t.i0 + job->br, span_start + job->span), d->Lq);
    const scratch_plan *plan = &job->plan;
    t.qt = t.scratch + plan->qt;
    t.s = (float *)(t.scratch + plan->s);
    t.p = job->kern->bf16 ? (void *)(t.scratch + plan->p) : (void *)t.s;
    t.o = (float *)(t.scratch + plan->o);
    t.m = (float *)(t.scratch + plan->m);
    t.l = (float *)(t.scratch + plan->l);
    t.alpha = (float *)(t.scratch + plan->alpha);
    t.colmax = (float *)(t.scratch + plan->colmax);
    t.lo = (int32_t *)(t.scratch + plan->lo);
    t.hi = (int32_t *)(t.scratch + plan->hi);

    pack_queries(&t);
    memset(t.o, 0, (size_t)job->br * (size_t)job->ldo * sizeof(float));
    for (int i = 0; i < job->br; i++) {
        t.m[i] = -INFINITY;
        t.l[i] = 0.0f;
    }
    /* What the tile's rows see together: the sinks of the last row (the most), and the band
     * from the first row's lower end to the last row's upper end. */
    key_ranges first = rule_keys_of_query(&job->rule, t.i0, d->Lk);
    key_ranges last = rule_keys_of_query(&job->rule, t.i1 - 1, d->Lk);
    int64_t sink_end = last.sink_end, band_lo = first.lo, band_hi = last.hi;
    if (band_lo >= band_hi || sink_end >= band_lo) {
        run_key_range(&t, 0, band_lo >= band_hi ? sink_end : max64(sink_end, band_hi));
    } else {
        run_key_range(&t, 0, sink_end);
        run_key_range(&t, band_lo, band_hi);
    }
    write_output(&t);
}

static scratch_plan plan_scratch(const attn_job *job)
{
    scratch_plan s;
    size_t at = 0, br = (size_t)job->br, bk = (size_t)job->bk, f = sizeof(float);
    size_t D = (size_t)job->d.D, Dv = (size_t)job->d.Dv, ldo = (size_t)job->ldo;
    s.qt = lr_scratch_take(&at, (D + 1) * br * f);
    s.s = lr_scratch_take(&at, bk * br * f);
    s.p = lr_scratch_take(&at, job->kern->bf16 ? (bk / 2) * br * 4 : 0);
    s.o = lr_scratch_take(&at, br * ldo * f);
    s.m = lr_scratch_take(&at, br * f);
    s.l = lr_scratch_take(&at, br * f);
    s.alpha = lr_scratch_take(&at, br * f);
    s.colmax = lr_scratch_take(&at, br * f);
    s.lo = lr_scratch_take(&at, bk * sizeof(int32_t));
    s.hi = lr_scratch_take(&at, bk * sizeof(int32_t));
    s.kf = lr_scratch_take(&at, job->convert_kv ? bk * D * f : 0);
    s.vf = lr_scratch_take(&at, job->convert_kv ? bk * Dv * f : job->kern->bf16 ? (bk / 2) * ldo * 4 : 0);
    s.total = at;
    return s;
}

lr_status lr_attention(lr_ctx *ctx, const lr_attn_params *p, const lr_tensor *q, const lr_tensor *k,
                       const lr_tensor *v, lr_tensor *out)
{
    lr_attn_params defaults = lr_attn_default_params();
    if (!p)
        p = &defaults;
    attn_job job = {.ctx = ctx, .p = p, .q = q, .k = k, .v = v, .out = out};
    lr_status s = check_args(ctx, p, q, k, v, out, &job.d);
    if (s != LR_OK)
        return s;
    const attn_dims *d = &job.d;
    if (d->B == 0 || d->Hq == 0 || d->Lq == 0)
        return LR_OK;
    job.kern = kernel_for(lr_ctx_cpu(ctx), q->dtype);
    job.convert_kv = q->dtype == LR_BF16 && !job.kern->bf16;
    job.rule = rule_from(p, d->Lq, d->Lk);
    job.c = scale_of(p, d->D) * LR_LOG2E;
    job.span = p->block_mask ? p->block_q : d->Lq;
    /* Short query spans (decoding steps, small mask blocks) get a smaller tile. */
    job.br = (int)min64(job.kern->block_q, round_up(min64(job.span, d->Lq), 16));
    job.bk = job.kern->block_k;
    job.ldo = (int)round_up(d->Dv, 16);
    job.tiles_per_span = ceil_div(min64(job.span, d->Lq), job.br);
    int64_t last_span = d->Lq - (ceil_div(d->Lq, job.span) - 1) * job.span;
    job.tiles_per_head = (ceil_div(d->Lq, job.span) - 1) * job.tiles_per_span + ceil_div(last_span, job.br);
    job.plan = plan_scratch(&job);
    if ((s = lr_thread_scratch_reserve(ctx, job.plan.total)) != LR_OK)
        return s;
    lr_parallel_for(ctx, (size_t)(d->B * d->Hq * job.tiles_per_head), attention_task, &job);
    return LR_OK;
}
