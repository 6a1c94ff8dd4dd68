/* ProbSparse attention (Informer): argument checks, the sample-index generator, the plain
 * double reference, and the fast driver.
 *
 * The driver makes each (batch, head) one task, so results are bit-identical for any thread
 * count: the task scores every query row on its U sampled keys (F32 dot products with a
 * fixed lane order), keeps the u best rows in a heap (no sort of all Lq rows), writes the
 * initial context to the other rows, and runs the selected rows, in ascending order, through
 * the tile kernels of lr_attention (attention_internal.h). Ascending order makes the causal
 * mask of a tile an interval per key: key j is seen by the selected rows from the first one
 * at or after j to the end of the tile. Sample indices drawn from the seed are computed where
 * they are used (counter-based), so nothing of size Lq * U is stored. */
#include <math.h>
#include <string.h>

#include "attention_internal.h"
#include "internal.h"
#include "longrange/parallel.h"
#include "longrange/probsparse.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

enum {
    MAX_HEAD_DIM = 1024,
    MAX_TILE = 64, /* selected rows per tile of the exact part */
    DOT_LANES = 8,
    PREFETCH_AHEAD = 8, /* sampled key rows requested ahead of their dot product */
};

#define GOLDEN 0x9e3779b97f4a7c15ull

lr_probsparse_params lr_probsparse_default_params(void)
{
    lr_probsparse_params p;
    memset(&p, 0, sizeof p);
    p.factor = 5;
    return p;
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* min(factor * ceil(ln L), L), saturating (the official code's np.ceil(np.log(L))). */
static int64_t log_count(int64_t factor, int64_t L)
{
    if (L < 0 || factor < 1)
        return -1;
    if (L < 2)
        return 0;
    int64_t c = (int64_t)ceil(log((double)L)), n;
    if (__builtin_mul_overflow(factor, c, &n))
        return L;
    return min64(n, L);
}

int64_t lr_probsparse_sample_count(int64_t factor, int64_t Lk) { return log_count(factor, Lk); }
int64_t lr_probsparse_top_count(int64_t factor, int64_t Lq) { return log_count(factor, Lq); }

/* Entry n of the draw: splitmix64's n-th output from seed, scaled into [0, L). */
static int64_t draw_index(uint64_t seed, uint64_t n, int64_t L)
{
    uint64_t z = seed + (n + 1) * GOLDEN;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (int64_t)(((unsigned __int128)z * (uint64_t)L) >> 64);
}

void lr_probsparse_sample_indices(uint64_t seed, int64_t Lq, int64_t Lk, int64_t U, int64_t *idx)
{
    if (Lk < 1 || Lq < 1 || U < 1)
        return;
    for (int64_t n = 0; n < Lq * U; n++)
        idx[n] = draw_index(seed, (uint64_t)n, Lk);
}

/* ---- the problem ------------------------------------------------------------------------ */

typedef struct {
    const float *data;
    int64_t sb, sh, sl;
} ps_view;

typedef struct {
    int64_t B, Hq, Hkv, G, Lq, Lk, D, Dv, U, u;
    ps_view q, k, v, out;
    double scale;
    bool causal;
    uint64_t seed;
    const int32_t *sample; /* NULL: drawn from seed */
    int64_t sample_stride;
    int32_t *selected;     /* NULL: not asked for */
    int64_t sel_sb, sel_sh;
} ps_problem;

static const float *row_at(const ps_view *t, int64_t b, int64_t h, int64_t i)
{
    return t->data + b * t->sb + h * t->sh + i * t->sl;
}

static int64_t sample_at(const ps_problem *pr, int64_t i, int64_t j)
{
    if (pr->sample)
        return pr->sample[i * pr->sample_stride + j];
    return draw_index(pr->seed, (uint64_t)(i * pr->U + j), pr->Lk);
}

static lr_status make_problem(lr_ctx *ctx, const lr_probsparse_params *p, const lr_tensor *q, const lr_tensor *k,
                              const lr_tensor *v, const lr_tensor *out, ps_problem *pr)
{
    char a[128], b[128], c[128], e[128];
    lr_status s;
    if ((s = lr_check_tensor4(ctx, "probsparse", "q", q, "[B, Hq, Lq, D]", LR_F32)) != LR_OK ||
        (s = lr_check_tensor4(ctx, "probsparse", "k", k, "[B, Hkv, Lk, D]", LR_F32)) != LR_OK ||
        (s = lr_check_tensor4(ctx, "probsparse", "v", v, "[B, Hkv, Lk, Dv]", LR_F32)) != LR_OK ||
        (s = lr_check_tensor4(ctx, "probsparse", "out", out, "[B, Hq, Lq, Dv]", LR_F32)) != LR_OK)
        return s;
    bool ok = k->shape[0] == q->shape[0] && v->shape[0] == q->shape[0] && out->shape[0] == q->shape[0] &&
              v->shape[1] == k->shape[1] && out->shape[1] == q->shape[1] && v->shape[2] == k->shape[2] &&
              out->shape[2] == q->shape[2] && k->shape[3] == q->shape[3] && out->shape[3] == v->shape[3] &&
              k->shape[1] >= 1 && q->shape[1] % k->shape[1] == 0;
    if (!ok)
        return lr_fail(ctx, LR_ERR_ARG,
                       "probsparse: shapes differ: q %s, k %s, v %s, out %s (q [B, Hq, Lq, D], k [B, Hkv, Lk, D], "
                       "v [B, Hkv, Lk, Dv], out [B, Hq, Lq, Dv], Hkv dividing Hq)",
                       lr_shape_str(4, q->shape, a, sizeof a), lr_shape_str(4, k->shape, b, sizeof b),
                       lr_shape_str(4, v->shape, c, sizeof c), lr_shape_str(4, out->shape, e, sizeof e));
    if (q->shape[3] < 1 || q->shape[3] > MAX_HEAD_DIM || v->shape[3] < 1 || v->shape[3] > MAX_HEAD_DIM)
        return lr_fail(ctx, LR_ERR_ARG, "probsparse: head dims %lld (q, k) and %lld (v) must be in 1..%d",
                       (long long)q->shape[3], (long long)v->shape[3], MAX_HEAD_DIM);
    if (!(p->scale >= 0) || isinf(p->scale))
        return lr_fail(ctx, LR_ERR_ARG, "probsparse: scale %g must be finite and >= 0 (0 selects 1/sqrt(D))",
                       (double)p->scale);
    if (p->factor < 1)
        return lr_fail(ctx, LR_ERR_ARG, "probsparse: factor %lld must be >= 1", (long long)p->factor);
    int64_t Lq = q->shape[2], Lk = k->shape[2];
    if (p->causal && Lq != Lk)
        return lr_fail(ctx, LR_ERR_ARG, "probsparse: causal needs as many queries as keys (Lq %lld, Lk %lld)",
                       (long long)Lq, (long long)Lk);
    if (Lq > 0 && Lk < 1)
        return lr_fail(ctx, LR_ERR_ARG, "probsparse: there are queries but no keys");
    if (Lq > INT32_MAX || Lk > INT32_MAX)
        return lr_fail(ctx, LR_ERR_ARG, "probsparse: lengths %lld, %lld exceed the 32-bit row indices",
                       (long long)Lq, (long long)Lk);

    memset(pr, 0, sizeof *pr);
    pr->B = q->shape[0];
    pr->Hq = q->shape[1];
    pr->Hkv = k->shape[1];
    pr->G = pr->Hq / pr->Hkv;
    pr->Lq = Lq;
    pr->Lk = Lk;
    pr->D = q->shape[3];
    pr->Dv = v->shape[3];
    pr->U = lr_probsparse_sample_count(p->factor, Lk);
    pr->u = lr_probsparse_top_count(p->factor, Lq);
    pr->scale = p->scale > 0 ? p->scale : 1.0 / sqrt((double)pr->D);
    pr->causal = p->causal;
    pr->seed = p->seed;
    if (p->sample_index) {
        const lr_tensor *t = p->sample_index;
        if (t->dtype != LR_I32 || t->ndim != 2 || t->shape[0] != Lq || t->shape[1] != pr->U)
            return lr_fail(ctx, LR_ERR_ARG, "probsparse: sample_index must be i32 [%lld, %lld] (Lq, U), got %s %s",
                           (long long)Lq, (long long)pr->U, lr_dtype_name(t->dtype),
                           lr_shape_str(t->ndim, t->shape, a, sizeof a));
        if (pr->U > 1 && t->stride[1] != 1)
            return lr_fail(ctx, LR_ERR_ARG, "probsparse: the last dimension of sample_index must be contiguous");
        if (!t->data && Lq * pr->U > 0)
            return lr_fail(ctx, LR_ERR_ARG, "probsparse: sample_index has no data");
        pr->sample = t->data;
        pr->sample_stride = t->stride[0];
        for (int64_t i = 0; i < Lq; i++)
            for (int64_t j = 0; j < pr->U; j++) {
                int32_t x = pr->sample[i * pr->sample_stride + j];
                if (x < 0 || x >= Lk)
                    return lr_fail(ctx, LR_ERR_ARG, "probsparse: sample_index[%lld][%lld] = %d is outside [0, %lld)",
                                   (long long)i, (long long)j, (int)x, (long long)Lk);
            }
    }
    if (p->selected) {
        lr_tensor *t = p->selected;
        if (t->dtype != LR_I32 || t->ndim != 3 || t->shape[0] != pr->B || t->shape[1] != pr->Hq ||
            t->shape[2] != pr->u)
            return lr_fail(ctx, LR_ERR_ARG, "probsparse: selected must be i32 [%lld, %lld, %lld] (B, Hq, u), got %s %s",
                           (long long)pr->B, (long long)pr->Hq, (long long)pr->u, lr_dtype_name(t->dtype),
                           lr_shape_str(t->ndim, t->shape, a, sizeof a));
        if ((pr->u > 1 && t->stride[2] != 1) || (!t->data && pr->B * pr->Hq * pr->u > 0))
            return lr_fail(ctx, LR_ERR_ARG, "probsparse: selected needs data with a contiguous last dimension");
        pr->selected = t->data;
        pr->sel_sb = t->stride[0];
        pr->sel_sh = t->stride[1];
    }
    const lr_tensor *src[4] = {q, k, v, out};
    ps_view *dst[4] = {&pr->q, &pr->k, &pr->v, &pr->out};
    for (int i = 0; i < 4; i++)
        *dst[i] = (ps_view){src[i]->data, src[i]->stride[0], src[i]->stride[1], src[i]->stride[2]};
    return LR_OK;
}

/* Row i (measure mi) ranks before row j (mj) in the selection: larger M first, NaN above every
 * number, ties to the smaller index. */
static bool ranks_before(double mi, int64_t i, double mj, int64_t j)
{
    bool ni = isnan(mi), nj = isnan(mj);
    if (ni != nj)
        return ni;
    if (!ni && mi != mj)
        return mi > mj;
    return i < j;
}

/* Writes the ascending selected rows of head (b, h) into the optional output. */
static void write_selected(const ps_problem *pr, int64_t b, int64_t h, const unsigned char *chosen)
{
    if (!pr->selected)
        return;
    int32_t *dst = pr->selected + b * pr->sel_sb + h * pr->sel_sh;
    int64_t n = 0;
    for (int64_t i = 0; i < pr->Lq; i++)
        if (chosen[i])
            dst[n++] = (int32_t)i;
}

/* ---- the reference ---------------------------------------------------------------------- */

typedef struct {
    lr_ctx *ctx;
    const ps_problem *pr;
} ref_job;

static double dot_double(const float *a, const float *b, int64_t n)
{
    double s = 0;
    for (int64_t e = 0; e < n; e++)
        s += (double)a[e] * (double)b[e];
    return s;
}

static void ref_task(void *arg, size_t task, int thread)
{
    const ref_job *job = arg;
    const ps_problem *pr = job->pr;
    int64_t b = (int64_t)task / pr->Hq, h = (int64_t)task % pr->Hq, hk = h / pr->G;
    double *M = lr_thread_scratch(job->ctx, thread);
    double *score = M + pr->Lq, *acc = score + pr->Lk;
    unsigned char *chosen = (unsigned char *)(acc + pr->Dv);

    /* M of every row on its sampled keys */
    for (int64_t i = 0; i < pr->Lq; i++) {
        const float *qi = row_at(&pr->q, b, h, i);
        double mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < pr->U; j++) {
            double d = dot_double(qi, row_at(&pr->k, b, hk, sample_at(pr, i, j)), pr->D);
            mx = d > mx || isnan(d) ? d : mx;
            sum += d;
        }
        M[i] = pr->U ? mx * (double)pr->Lk - sum : 0.0;
        chosen[i] = 0;
    }
    /* the u best rows, one arg-max at a time */
    for (int64_t r = 0; r < pr->u; r++) {
        int64_t best = -1;
        for (int64_t i = 0; i < pr->Lq; i++)
            if (!chosen[i] && (best < 0 || ranks_before(M[i], i, M[best], best)))
                best = i;
        chosen[best] = 1;
    }
    write_selected(pr, b, h, chosen);

    /* the initial context */
    for (int64_t e = 0; e < pr->Dv; e++)
        acc[e] = 0;
    if (!pr->causal)
        for (int64_t j = 0; j < pr->Lk; j++) {
            const float *vj = row_at(&pr->v, b, hk, j);
            for (int64_t e = 0; e < pr->Dv; e++)
                acc[e] += vj[e];
        }
    for (int64_t i = 0; i < pr->Lq; i++) {
        float *oi = (float *)row_at(&pr->out, b, h, i);
        if (pr->causal) {
            const float *vi = row_at(&pr->v, b, hk, i);
            for (int64_t e = 0; e < pr->Dv; e++)
                acc[e] += vi[e];
        }
        if (chosen[i])
            continue;
        for (int64_t e = 0; e < pr->Dv; e++)
            oi[e] = (float)(pr->causal ? acc[e] : acc[e] / (double)pr->Lk);
    }

    /* the selected rows: softmax attention */
    for (int64_t i = 0; i < pr->Lq; i++) {
        if (!chosen[i])
            continue;
        const float *qi = row_at(&pr->q, b, h, i);
        int64_t n = pr->causal ? i + 1 : pr->Lk;
        double best = -INFINITY, total = 0;
        for (int64_t j = 0; j < n; j++) {
            score[j] = pr->scale * dot_double(qi, row_at(&pr->k, b, hk, j), pr->D);
            best = fmax(best, score[j]);
        }
        for (int64_t e = 0; e < pr->Dv; e++)
            acc[e] = 0;
        for (int64_t j = 0; j < n; j++) {
            double w = exp(score[j] - best);
            const float *vj = row_at(&pr->v, b, hk, j);
            total += w;
            for (int64_t e = 0; e < pr->Dv; e++)
                acc[e] += w * (double)vj[e];
        }
        float *oi = (float *)row_at(&pr->out, b, h, i);
        for (int64_t e = 0; e < pr->Dv; e++)
            oi[e] = (float)(acc[e] / total);
    }
}

lr_status lr_probsparse_ref(lr_ctx *ctx, const lr_probsparse_params *p, const lr_tensor *q, const lr_tensor *k,
                            const lr_tensor *v, lr_tensor *out)
{
    lr_probsparse_params defaults = lr_probsparse_default_params();
    ps_problem pr;
    lr_status s = make_problem(ctx, p ? p : &defaults, q, k, v, out, &pr);
    if (s != LR_OK)
        return s;
    if (pr.B == 0 || pr.Hq == 0 || pr.Lq == 0)
        return LR_OK;
    size_t doubles = (size_t)(pr.Lq + pr.Lk + pr.Dv), bytes;
    if (!lr_mul_size(doubles, sizeof(double), &bytes) || !lr_add_size(bytes, (size_t)pr.Lq, &bytes))
        return lr_fail(ctx, LR_ERR_NOMEM, "probsparse: lengths overflow the scratch size");
    if ((s = lr_thread_scratch_reserve(ctx, bytes)) != LR_OK)
        return s;
    ref_job job = {ctx, &pr};
    lr_parallel_for(ctx, (size_t)(pr.B * pr.Hq), ref_task, &job);
    return LR_OK;
}

/* ---- the fast driver -------------------------------------------------------------------- */

/* q . k in F32 with DOT_LANES partial sums (lane e % DOT_LANES) added pairwise: a fixed order
 * the compiler can vectorise. */
static float dot_f32(const float *a, const float *b, int64_t n)
{
    float lane[DOT_LANES] = {0};
    int64_t e = 0;
    for (; e + DOT_LANES <= n; e += DOT_LANES)
        for (int l = 0; l < DOT_LANES; l++)
            lane[l] += a[e + l] * b[e + l];
    for (int l = 0; e < n; e++, l++)
        lane[l] += a[e] * b[e];
    return ((lane[0] + lane[4]) + (lane[1] + lane[5])) + ((lane[2] + lane[6]) + (lane[3] + lane[7]));
}

typedef float (*dot_fn)(const float *a, const float *b, int64_t n);

#if defined(__x86_64__)
/* The same with FMA over 2 x 8 lanes (AVX2) or 2 x 16 lanes (AVX-512), compiled for those
 * instruction sets here and chosen by the context's CPU level: each level has its own fixed
 * order, so results depend on LR_CPU but never on the thread count. */
__attribute__((target("avx2,fma"))) static float dot_avx2(const float *a, const float *b, int64_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t e = 0;
    for (; e + 16 <= n; e += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + e), _mm256_loadu_ps(b + e), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + e + 8), _mm256_loadu_ps(b + e + 8), s1);
    }
    if (e + 8 <= n) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + e), _mm256_loadu_ps(b + e), s0);
        e += 8;
    }
    s0 = _mm256_add_ps(s0, s1);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s0), _mm256_extractf128_ps(s0, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    float s = _mm_cvtss_f32(h);
    for (; e < n; e++)
        s += a[e] * b[e];
    return s;
}

__attribute__((target("avx512f"))) static float dot_avx512(const float *a, const float *b, int64_t n)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int64_t e = 0;
    for (; e + 32 <= n; e += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + e), _mm512_loadu_ps(b + e), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + e + 16), _mm512_loadu_ps(b + e + 16), s1);
    }
    for (; e < n; e += 16) {
        __mmask16 m = n - e >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - e)) - 1);
        s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + e), _mm512_maskz_loadu_ps(m, b + e), s0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}
#endif

static dot_fn dot_for(lr_cpu_level level)
{
#if defined(__x86_64__)
    switch (level) {
    case LR_CPU_AVX512: return dot_avx512;
    case LR_CPU_AVX2: return dot_avx2;
    case LR_CPU_REF: break;
    }
#else
    (void)level;
#endif
    return dot_f32;
}

/* Asks for the cache lines of a row of n floats. */
static void prefetch_row(const float *p, int64_t n)
{
    for (int64_t e = 0; e < n; e += 16)
        __builtin_prefetch(p + e);
    __builtin_prefetch(p + n - 1);
}

typedef struct {
    double m;
    int64_t i;
} ranked;

/* The heap keeps the u best rows with the worst of them at the root. */
static void heap_sift_down(ranked *heap, int64_t n, int64_t at)
{
    for (;;) {
        int64_t worst = at, l = 2 * at + 1, r = l + 1;
        if (l < n && ranks_before(heap[worst].m, heap[worst].i, heap[l].m, heap[l].i))
            worst = l;
        if (r < n && ranks_before(heap[worst].m, heap[worst].i, heap[r].m, heap[r].i))
            worst = r;
        if (worst == at)
            return;
        ranked t = heap[at];
        heap[at] = heap[worst];
        heap[worst] = t;
        at = worst;
    }
}

static void heap_push(ranked *heap, int64_t n, ranked x)
{
    int64_t at = n;
    heap[at] = x;
    while (at > 0) {
        int64_t up = (at - 1) / 2;
        if (!ranks_before(heap[up].m, heap[up].i, heap[at].m, heap[at].i))
            return;
        ranked t = heap[at];
        heap[at] = heap[up];
        heap[up] = t;
        at = up;
    }
}

/* Where each piece of a task's scratch starts, in bytes (64-byte aligned). */
typedef struct {
    size_t heap, chosen, rows, acc, qt, s, o, m, l, alpha, colmax, lo, hi, total;
} scratch_plan;

typedef struct {
    lr_ctx *ctx;
    const ps_problem *pr;
    const lr_attn_kernel *kern;
    dot_fn dot;
    float c; /* scale * log2(e) */
    int br, bk, ldo;
    scratch_plan plan;
} ps_job;

static scratch_plan plan_scratch(const ps_job *job)
{
    const ps_problem *pr = job->pr;
    scratch_plan s;
    size_t at = 0, br = (size_t)job->br, bk = (size_t)job->bk, f = sizeof(float);
    s.heap = lr_scratch_take(&at, (size_t)pr->u * sizeof(ranked));
    s.chosen = lr_scratch_take(&at, (size_t)pr->Lq);
    s.rows = lr_scratch_take(&at, (size_t)pr->u * sizeof(int64_t));
    s.acc = lr_scratch_take(&at, (size_t)pr->Dv * sizeof(double));
    s.qt = lr_scratch_take(&at, (size_t)pr->D * br * f);
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

/* Marks the u rows of largest M in chosen[]. Sampled key rows are random accesses, so they
 * are prefetched PREFETCH_AHEAD samples ahead (position (pi, pj) in the stream of samples). */
static void select_rows(const ps_job *job, int64_t b, int64_t h, int64_t hk, ranked *heap, unsigned char *chosen)
{
    const ps_problem *pr = job->pr;
    memset(chosen, 0, (size_t)pr->Lq);
    if (pr->u == pr->Lq) {
        memset(chosen, 1, (size_t)pr->Lq);
        return;
    }
    int64_t n = 0, pi = 0, pj = 0;
    for (int a = 0; a < PREFETCH_AHEAD && pr->U > 0 && pi < pr->Lq; a++) {
        prefetch_row(row_at(&pr->k, b, hk, sample_at(pr, pi, pj)), pr->D);
        if (++pj == pr->U) {
            pj = 0;
            pi++;
        }
    }
    for (int64_t i = 0; i < pr->Lq; i++) {
        const float *qi = row_at(&pr->q, b, h, i);
        float mx = -INFINITY;
        double sum = 0;
        for (int64_t j = 0; j < pr->U; j++) {
            if (pi < pr->Lq) {
                prefetch_row(row_at(&pr->k, b, hk, sample_at(pr, pi, pj)), pr->D);
                if (++pj == pr->U) {
                    pj = 0;
                    pi++;
                }
            }
            float d = job->dot(qi, row_at(&pr->k, b, hk, sample_at(pr, i, j)), pr->D);
            mx = d > mx || isnan(d) ? d : mx;
            sum += d;
        }
        ranked x = {pr->U ? (double)mx * (double)pr->Lk - sum : 0.0, i};
        if (n < pr->u) {
            heap_push(heap, n++, x);
        } else if (n > 0 && ranks_before(x.m, x.i, heap[0].m, heap[0].i)) {
            heap[0] = x;
            heap_sift_down(heap, n, 0);
        }
    }
    for (int64_t r = 0; r < n; r++)
        chosen[heap[r].i] = 1;
}

/* The initial context into every row that is not chosen: the mean of v, or its cumulative
 * sum, accumulated in double in key order. */
static void initial_context(const ps_problem *pr, int64_t b, int64_t h, int64_t hk, const unsigned char *chosen,
                            double *acc)
{
    for (int64_t e = 0; e < pr->Dv; e++)
        acc[e] = 0;
    if (!pr->causal) {
        for (int64_t j = 0; j < pr->Lk; j++) {
            const float *vj = row_at(&pr->v, b, hk, j);
            for (int64_t e = 0; e < pr->Dv; e++)
                acc[e] += vj[e];
        }
        for (int64_t e = 0; e < pr->Dv; e++)
            acc[e] /= (double)pr->Lk;
    }
    for (int64_t i = 0; i < pr->Lq; i++) {
        if (pr->causal) {
            const float *vi = row_at(&pr->v, b, hk, i);
            for (int64_t e = 0; e < pr->Dv; e++)
                acc[e] += vi[e];
        }
        if (chosen[i])
            continue;
        float *oi = (float *)row_at(&pr->out, b, h, i);
        for (int64_t e = 0; e < pr->Dv; e++)
            oi[e] = (float)acc[e];
    }
}

/* Softmax attention for the chosen rows rows[0..n) (ascending), one tile at a time. */
static void exact_rows(const ps_job *job, char *scratch, int64_t b, int64_t h, int64_t hk, const int64_t *rows,
                       int64_t n)
{
    const ps_problem *pr = job->pr;
    const lr_attn_kernel *kern = job->kern;
    const scratch_plan *plan = &job->plan;
    float *qt = (float *)(scratch + plan->qt), *s = (float *)(scratch + plan->s), *o = (float *)(scratch + plan->o);
    float *m = (float *)(scratch + plan->m), *l = (float *)(scratch + plan->l);
    float *alpha = (float *)(scratch + plan->alpha), *colmax = (float *)(scratch + plan->colmax);
    int32_t *lo = (int32_t *)(scratch + plan->lo), *hi = (int32_t *)(scratch + plan->hi);
    int br = job->br;
    for (int64_t r0 = 0; r0 < n; r0 += br) {
        int nq = (int)min64(br, n - r0);
        const int64_t *tile = rows + r0;
        for (int i = 0; i < br; i++) {
            const float *qi = i < nq ? row_at(&pr->q, b, h, tile[i]) : NULL;
            for (int64_t e = 0; e < pr->D; e++)
                qt[e * br + i] = qi ? qi[e] : 0.0f;
            m[i] = -INFINITY;
            l[i] = 0.0f;
        }
        memset(o, 0, (size_t)br * (size_t)job->ldo * sizeof(float));
        int64_t keys = pr->causal ? tile[nq - 1] + 1 : pr->Lk;
        int first = 0; /* causal: the first row of the tile at or after the key */
        for (int64_t j0 = 0; j0 < keys; j0 += job->bk) {
            int nk = (int)min64(job->bk, keys - j0);
            kern->scores(qt, br, row_at(&pr->k, b, hk, j0), pr->k.sl, nk, (int)pr->D, s, colmax);
            if (pr->causal) {
                for (int j = 0; j < nk; j++) {
                    while (first < nq && tile[first] < j0 + j)
                        first++;
                    lo[j] = first;
                    hi[j] = nq;
                }
                kern->mask(s, br, nk, lo, hi, colmax);
            }
            kern->softmax(s, s, br, nk, job->c, colmax, m, l, alpha);
            kern->accumulate(s, br, row_at(&pr->v, b, hk, j0), pr->v.sl, nk, (int)pr->Dv, alpha, o, job->ldo);
        }
        for (int i = 0; i < nq; i++) {
            float inv = 1.0f / l[i]; /* every row sees at least key 0 */
            float *oi = (float *)row_at(&pr->out, b, h, tile[i]);
            for (int64_t e = 0; e < pr->Dv; e++)
                oi[e] = o[(int64_t)i * job->ldo + e] * inv;
        }
    }
}

static void ps_task(void *arg, size_t task, int thread)
{
    const ps_job *job = arg;
    const ps_problem *pr = job->pr;
    int64_t b = (int64_t)task / pr->Hq, h = (int64_t)task % pr->Hq, hk = h / pr->G;
    char *scratch = lr_thread_scratch(job->ctx, thread);
    const scratch_plan *plan = &job->plan;
    unsigned char *chosen = (unsigned char *)(scratch + plan->chosen);
    int64_t *rows = (int64_t *)(scratch + plan->rows);
    select_rows(job, b, h, hk, (ranked *)(scratch + plan->heap), chosen);
    write_selected(pr, b, h, chosen);
    initial_context(pr, b, h, hk, chosen, (double *)(scratch + plan->acc));
    int64_t n = 0;
    for (int64_t i = 0; i < pr->Lq; i++)
        if (chosen[i])
            rows[n++] = i;
    exact_rows(job, scratch, b, h, hk, rows, n);
}

lr_status lr_probsparse_attention(lr_ctx *ctx, const lr_probsparse_params *p, const lr_tensor *q, const lr_tensor *k,
                                  const lr_tensor *v, lr_tensor *out)
{
    lr_probsparse_params defaults = lr_probsparse_default_params();
    ps_problem pr;
    lr_status s = make_problem(ctx, p ? p : &defaults, q, k, v, out, &pr);
    if (s != LR_OK)
        return s;
    if (pr.B == 0 || pr.Hq == 0 || pr.Lq == 0)
        return LR_OK;
    ps_job job = {.ctx = ctx, .pr = &pr, .kern = lr_attn_kernel_f32(lr_ctx_cpu(ctx)), .dot = dot_for(lr_ctx_cpu(ctx))};
    job.c = (float)pr.scale * LR_LOG2E;
    /* the tile kernels take any multiple of 16 rows up to block_q */
    int64_t cap = min64(job.kern->block_q, MAX_TILE) / 16 * 16;
    job.br = (int)min64(cap, ceil_div(pr.u > 0 ? pr.u : 1, 16) * 16);
    job.bk = job.kern->block_k;
    job.ldo = (int)(ceil_div(pr.Dv, 16) * 16);
    job.plan = plan_scratch(&job);
    if ((s = lr_thread_scratch_reserve(ctx, job.plan.total)) != LR_OK)
        return s;
    lr_parallel_for(ctx, (size_t)(pr.B * pr.Hq), ps_task, &job);
    return LR_OK;
}
