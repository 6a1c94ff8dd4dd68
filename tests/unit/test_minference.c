/* MInference's pre-fill patterns: lr_vertical_slash_attention against its double reference at
 * every CPU level this machine has (L = 1, lengths off the tiles, Lq != Lk, head dims off the
 * vector width, Dv != D, grouped heads, strided views, repeated and out-of-range indices,
 * empty lists); the regimes where it is a known attention (every column vertical: causal
 * attention; the first s columns and diagonals 0..w: a causal window of w with s sinks);
 * the index estimators (deterministic, sorted, no repeats, forced entries, a valid top-k of
 * the double-precision scores); block-sparse attention against lr_attention_ref with the
 * estimated mask; bit-identical output for 1, 2 and 3 threads; argument errors. Last, the
 * attention mass the estimated patterns keep on random and on structured data is printed
 * (only a loose sanity bound is asserted).
 *
 * Error measure: max |out - ref| over max |v| (an output row is a convex combination of value
 * rows). Tolerance 2e-6, as for lr_attention, whose tile kernels do part of the work. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kernel_test.h"
#include "longrange/attention.h"
#include "longrange/core.h"
#include "longrange/minference.h"
#include "longrange/tensor.h"

#define TOL 2e-6

static lr_ctx *levels[3]; /* two threads each, every CPU level the machine has */
static int n_levels;

/* ---- helpers ----------------------------------------------------------------------------- */

static lr_tensor f32_new(int64_t a, int64_t b, int64_t c, int64_t d, bool random)
{
    const int64_t shape[4] = {a, b, c, d};
    float *mem = calloc((size_t)(a * b * c * d) + 1, sizeof(float));
    if (random)
        for (int64_t i = 0; i < a * b * c * d; i++)
            mem[i] = random_float();
    return lr_tensor_from(mem, LR_F32, 4, shape);
}

/* [a, c, b, d] storage seen as [a, b, c, d]: a head split of a projection, strided. */
static lr_tensor f32_new_strided(int64_t a, int64_t b, int64_t c, int64_t d, void **mem)
{
    lr_tensor t = f32_new(a, c, b, d, true), view;
    *mem = t.data;
    lr_tensor_transpose(levels[0], &t, 1, 2, &view);
    return view;
}

static lr_tensor i32_new(int64_t B, int64_t H, int64_t n)
{
    const int64_t shape[3] = {B, H, n};
    int32_t *mem = calloc((size_t)(B * H * n) + 1, sizeof(int32_t));
    return lr_tensor_from(mem, LR_I32, 3, shape);
}

static int32_t *i32_at(const lr_tensor *t, int64_t b, int64_t h)
{
    return (int32_t *)t->data + b * t->stride[0] + h * t->stride[1];
}

static const float *f32_row(const lr_tensor *t, int64_t b, int64_t h, int64_t r)
{
    return (const float *)t->data + b * t->stride[0] + h * t->stride[1] + r * t->stride[2];
}

static double max_abs(const lr_tensor *t)
{
    double m = 0;
    for (int64_t b = 0; b < t->shape[0]; b++)
        for (int64_t h = 0; h < t->shape[1]; h++)
            for (int64_t r = 0; r < t->shape[2]; r++)
                for (int64_t e = 0; e < t->shape[3]; e++)
                    m = fmax(m, fabs(f32_row(t, b, h, r)[e]));
    return m;
}

/* max |x - y| / max |v|, INFINITY if x holds a non-finite value. */
static double rel_error(const lr_tensor *x, const lr_tensor *y, const lr_tensor *v)
{
    double m = 0;
    for (int64_t b = 0; b < x->shape[0]; b++)
        for (int64_t h = 0; h < x->shape[1]; h++)
            for (int64_t r = 0; r < x->shape[2]; r++)
                for (int64_t e = 0; e < x->shape[3]; e++) {
                    float a = f32_row(x, b, h, r)[e], c = f32_row(y, b, h, r)[e];
                    if (!isfinite(a))
                        return INFINITY;
                    m = fmax(m, fabs((double)a - (double)c));
                }
    double s = max_abs(v);
    return s > 0 ? m / s : m;
}

static bool same_bits(const lr_tensor *x, const lr_tensor *y)
{
    size_t n = (size_t)lr_tensor_numel(x) * lr_dtype_size(x->dtype);
    return lr_tensor_numel(x) == lr_tensor_numel(y) && memcmp(x->data, y->data, n) == 0;
}

static bool fails_with(lr_status s, lr_ctx *ctx, const char *needle)
{
    if (s != LR_ERR_ARG) {
        printf("  expected LR_ERR_ARG, got %s\n", lr_status_str(s));
        return false;
    }
    if (!strstr(lr_ctx_last_error(ctx), needle)) {
        printf("  message \"%s\" lacks \"%s\"\n", lr_ctx_last_error(ctx), needle);
        return false;
    }
    return true;
}

/* Random indices in [-2, range + 2): repeats and out-of-range entries included. */
static void fill_indices(lr_tensor *t, int64_t range)
{
    for (int64_t b = 0; b < t->shape[0]; b++)
        for (int64_t h = 0; h < t->shape[1]; h++)
            for (int64_t e = 0; e < t->shape[2]; e++) {
                double u = (random_float() + 1.0) / 2.0;
                i32_at(t, b, h)[e] = (int32_t)floor(u * (double)(range + 4)) - 2;
            }
}

/* ---- vertical-slash against its reference ------------------------------------------------ */

typedef struct {
    int64_t B, Hq, Hkv, Lq, Lk, D, Dv, nv, ns;
    bool strided;
} vs_case;

static void test_vs_matches_reference(void)
{
    static const vs_case cases[] = {
        {1, 1, 1, 1, 1, 64, 64, 1, 1, false},
        {2, 4, 2, 77, 77, 17, 17, 10, 7, false},
        {1, 2, 1, 130, 130, 40, 24, 20, 33, true},
        {1, 1, 1, 50, 130, 16, 16, 9, 12, false},   /* fewer queries than keys */
        {1, 1, 1, 140, 100, 8, 8, 5, 5, false},     /* more: the first rows see nothing */
        {1, 3, 3, 300, 300, 64, 64, 40, 40, false},
        {1, 1, 1, 257, 257, 96, 96, 0, 20, false},  /* no vertical columns */
        {1, 2, 2, 200, 200, 33, 33, 30, 0, false},  /* no diagonals */
        {1, 1, 1, 190, 190, 128, 128, 300, 300, false}, /* more indices than keys */
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const vs_case *c = &cases[ci];
        void *qmem = NULL;
        lr_tensor q = c->strided ? f32_new_strided(c->B, c->Hq, c->Lq, c->D, &qmem)
                                 : f32_new(c->B, c->Hq, c->Lq, c->D, true);
        if (!c->strided)
            qmem = q.data;
        lr_tensor k = f32_new(c->B, c->Hkv, c->Lk, c->D, true), v = f32_new(c->B, c->Hkv, c->Lk, c->Dv, true);
        lr_tensor out = f32_new(c->B, c->Hq, c->Lq, c->Dv, false), ref = f32_new(c->B, c->Hq, c->Lq, c->Dv, false);
        lr_tensor vert = i32_new(c->B, c->Hq, c->nv), slash = i32_new(c->B, c->Hq, c->ns);
        fill_indices(&vert, c->Lk);
        fill_indices(&slash, c->Lk);
        if (c->ns > 0 && c->nv > 0)
            i32_at(&slash, 0, 0)[0] = 0; /* the main diagonal crosses every vertical column */
        lr_vs_params p = {.scale = ci == 3 ? 0.5f : 0.0f};
        lr_ctx *ctx0 = levels[0];
        REQUIRE(lr_vertical_slash_attention_ref(ctx0, &p, &q, &k, &v, &vert, &slash, &ref) == LR_OK);
        for (int li = 0; li < n_levels; li++) {
            memset(out.data, 0, (size_t)lr_tensor_numel(&out) * sizeof(float));
            REQUIRE(lr_vertical_slash_attention(levels[li], &p, &q, &k, &v, &vert, &slash, &out) == LR_OK);
            double err = rel_error(&out, &ref, &v);
            CHECKF(err <= TOL, "case %zu at %s: error %.3g", ci, lr_cpu_level_name(lr_ctx_cpu(levels[li])), err);
        }
        /* rows that see nothing are zero */
        if (c->Lq > c->Lk)
            CHECK(f32_row(&out, 0, 0, 0)[0] == 0.0f);
        free(qmem);
        free(k.data);
        free(v.data);
        free(out.data);
        free(ref.data);
        free(vert.data);
        free(slash.data);
    }
}

/* Every column vertical: causal attention. The first s columns and the diagonals 0..w: a
 * causal window of w keys behind the query plus s sinks (MInference's A-shape). */
static void test_vs_known_patterns(void)
{
    const int64_t B = 2, Hq = 4, Hkv = 2, L = 150, D = 40, w = 13, sinks = 3;
    lr_tensor q = f32_new(B, Hq, L, D, true), k = f32_new(B, Hkv, L, D, true), v = f32_new(B, Hkv, L, D, true);
    lr_tensor out = f32_new(B, Hq, L, D, false), ref = f32_new(B, Hq, L, D, false);
    lr_tensor all = i32_new(B, Hq, L), none = i32_new(B, Hq, 0), rnd = i32_new(B, Hq, 20);
    lr_tensor band = i32_new(B, Hq, w + 1), first = i32_new(B, Hq, sinks);
    fill_indices(&rnd, L);
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < Hq; h++) {
            for (int64_t j = 0; j < L; j++)
                i32_at(&all, b, h)[j] = (int32_t)(L - 1 - j); /* any order */
            for (int64_t o = 0; o <= w; o++)
                i32_at(&band, b, h)[o] = (int32_t)o;
            for (int64_t j = 0; j < sinks; j++)
                i32_at(&first, b, h)[j] = (int32_t)j;
        }
    lr_attn_params ap = lr_attn_default_params();
    ap.causal = true;
    REQUIRE(lr_attention_ref(levels[0], &ap, &q, &k, &v, &ref) == LR_OK);
    for (int li = 0; li < n_levels; li++) {
        REQUIRE(lr_vertical_slash_attention(levels[li], NULL, &q, &k, &v, &all, &none, &out) == LR_OK);
        CHECKF(rel_error(&out, &ref, &v) <= TOL, "all columns: %.3g", rel_error(&out, &ref, &v));
        REQUIRE(lr_vertical_slash_attention(levels[li], NULL, &q, &k, &v, &all, &rnd, &out) == LR_OK);
        CHECKF(rel_error(&out, &ref, &v) <= TOL, "all columns and diagonals: %.3g", rel_error(&out, &ref, &v));
    }
    ap.window_left = w;
    REQUIRE(lr_attention_ref(levels[0], &ap, &q, &k, &v, &ref) == LR_OK);
    for (int li = 0; li < n_levels; li++) {
        REQUIRE(lr_vertical_slash_attention(levels[li], NULL, &q, &k, &v, &none, &band, &out) == LR_OK);
        CHECKF(rel_error(&out, &ref, &v) <= TOL, "window: %.3g", rel_error(&out, &ref, &v));
    }
    ap.n_sink = sinks;
    REQUIRE(lr_attention_ref(levels[0], &ap, &q, &k, &v, &ref) == LR_OK);
    for (int li = 0; li < n_levels; li++) {
        REQUIRE(lr_vertical_slash_attention(levels[li], NULL, &q, &k, &v, &first, &band, &out) == LR_OK);
        CHECKF(rel_error(&out, &ref, &v) <= TOL, "window and sinks: %.3g", rel_error(&out, &ref, &v));
    }
    void *mems[] = {q.data, k.data, v.data, out.data, ref.data, all.data, none.data, rnd.data, band.data, first.data};
    for (size_t i = 0; i < sizeof mems / sizeof mems[0]; i++)
        free(mems[i]);
}

/* ---- the estimators ---------------------------------------------------------------------- */

/* Double-precision column and diagonal scores of the last lq rows (the definition). */
static void vs_scores_double(const lr_tensor *q, const lr_tensor *k, int64_t b, int64_t h, int64_t kh, int64_t lq,
                             double scale, double *col, double *diag)
{
    int64_t Lq = q->shape[2], Lk = k->shape[2], D = q->shape[3];
    double *row = malloc((size_t)Lk * sizeof(double));
    for (int64_t j = 0; j < Lk; j++)
        col[j] = diag[j] = 0;
    for (int64_t r = 0; r < lq; r++) {
        int64_t i = Lq - lq + r, pos = i + Lk - Lq;
        double top = -INFINITY, sum = 0;
        for (int64_t j = 0; j <= pos; j++) {
            double dot = 0;
            for (int64_t e = 0; e < D; e++)
                dot += (double)f32_row(q, b, h, i)[e] * f32_row(k, b, kh, j)[e];
            row[j] = dot * scale;
            top = fmax(top, row[j]);
        }
        for (int64_t j = 0; j <= pos; j++)
            sum += row[j] = exp(row[j] - top);
        for (int64_t j = 0; j <= pos; j++) {
            col[j] += row[j] / sum;
            diag[pos - j] += row[j] / sum;
        }
    }
    free(row);
}

/* idx[0..n) is strictly increasing, inside [0, L), holds 0..forced-1 (when n allows), and is a
 * top-n of score: nothing left out scores more than the weakest kept (up to tol). */
static void check_top(const int32_t *idx, int64_t n, int64_t L, int64_t forced, const double *score, double tol,
                      const char *what)
{
    char *in = calloc((size_t)L, 1);
    for (int64_t e = 0; e < n; e++) {
        CHECKF(idx[e] >= 0 && idx[e] < L, "%s: index %d outside [0, %lld)", what, idx[e], (long long)L);
        if (e > 0)
            CHECKF(idx[e] > idx[e - 1], "%s: not increasing at %lld", what, (long long)e);
        if (idx[e] >= 0 && idx[e] < L)
            in[idx[e]] = 1;
    }
    for (int64_t j = 0; j < forced && j < n && j < L; j++)
        CHECKF(in[j], "%s: forced index %lld missing", what, (long long)j);
    double weakest = INFINITY, best_out = -INFINITY;
    for (int64_t j = 0; j < L; j++) {
        if (j < forced)
            continue;
        if (in[j])
            weakest = fmin(weakest, score[j]);
        else
            best_out = fmax(best_out, score[j]);
    }
    if (n > forced)
        CHECKF(best_out <= weakest + tol, "%s: left out %.9g > kept %.9g", what, best_out, weakest);
    free(in);
}

static void test_vs_estimate(void)
{
    const int64_t B = 2, Hq = 4, Hkv = 2, Lq = 500, Lk = 520, D = 32;
    lr_tensor q = f32_new(B, Hq, Lq, D, true), k = f32_new(B, Hkv, Lk, D, true);
    for (int64_t i = 0; i < lr_tensor_numel(&q); i++)
        ((float *)q.data)[i] *= 4.0f; /* sharper rows: scores far apart */
    const int64_t budgets[][2] = {{64, 150}, {10, 50}, {1, 1}, {Lk, Lk}};
    double *col = malloc((size_t)Lk * sizeof(double)), *diag = malloc((size_t)Lk * sizeof(double));
    for (size_t bi = 0; bi < sizeof budgets / sizeof budgets[0]; bi++) {
        int64_t nv = budgets[bi][0], ns = budgets[bi][1];
        lr_tensor v1 = i32_new(B, Hq, nv), s1 = i32_new(B, Hq, ns), v2 = i32_new(B, Hq, nv), s2 = i32_new(B, Hq, ns);
        lr_vs_estimate_params p = lr_vs_estimate_default_params();
        REQUIRE(lr_minference_vs_estimate(levels[0], &p, &q, &k, &v1, &s1) == LR_OK);
        for (int li = 0; li < n_levels; li++) {
            REQUIRE(lr_minference_vs_estimate(levels[li], &p, &q, &k, &v2, &s2) == LR_OK);
            CHECK(same_bits(&v1, &v2) && same_bits(&s1, &s2));
        }
        for (int64_t b = 0; b < B; b++)
            for (int64_t h = 0; h < Hq; h++) {
                vs_scores_double(&q, &k, b, h, h / (Hq / Hkv), 64, 1.0 / sqrt((double)D), col, diag);
                check_top(i32_at(&v1, b, h), nv, Lk, p.forced_vertical, col, 1e-5, "vertical");
                check_top(i32_at(&s1, b, h), ns, Lk, p.forced_slash, diag, 1e-5, "slash");
            }
        free(v1.data);
        free(s1.data);
        free(v2.data);
        free(s2.data);
    }
    free(col);
    free(diag);
    free(q.data);
    free(k.data);
}

static void test_block_estimate(void)
{
    const int64_t B = 2, Hq = 2, Hkv = 1, L = 1000, D = 24, block = 64, top_k = 5, nb = (L + block - 1) / block;
    lr_tensor q = f32_new(B, Hq, L, D, true), k = f32_new(B, Hkv, L, D, true);
    for (int64_t i = 0; i < L * D; i++) /* pooled keys of one sign pattern: scores far apart */
        ((float *)k.data)[i] += 0.5f * (float)((i / D) % 7) / 7.0f;
    lr_tensor m1 = {0}, m2 = {0};
    const int64_t shape[4] = {B, Hq, nb, nb};
    m1 = lr_tensor_from(calloc((size_t)(B * Hq * nb * nb), 1), LR_U8, 4, shape);
    m2 = lr_tensor_from(calloc((size_t)(B * Hq * nb * nb), 1), LR_U8, 4, shape);
    lr_block_sparse_params p = lr_block_sparse_default_params();
    p.top_k = top_k;
    REQUIRE(lr_minference_block_estimate(levels[0], &p, &q, &k, &m1) == LR_OK);
    for (int li = 0; li < n_levels; li++) {
        REQUIRE(lr_minference_block_estimate(levels[li], &p, &q, &k, &m2) == LR_OK);
        CHECK(same_bits(&m1, &m2));
    }
    double *score = malloc((size_t)nb * sizeof(double));
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < Hq; h++)
            for (int64_t m = 0; m < nb; m++) {
                const uint8_t *row = (const uint8_t *)m1.data + ((b * Hq + h) * nb + m) * nb;
                int64_t kept = 0;
                int32_t idx[64];
                for (int64_t n = 0; n < nb; n++) {
                    CHECK(row[n] <= 1 && (n <= m || row[n] == 0));
                    if (row[n])
                        idx[kept++] = (int32_t)n;
                }
                CHECK(kept == (m + 1 < top_k ? m + 1 : top_k));
                for (int64_t n = 0; n <= m; n++) { /* the definition, plainly */
                    double dot = 0;
                    for (int64_t e = 0; e < D; e++) {
                        double qs = 0, ks = 0;
                        for (int64_t r = m * block; r < (m + 1) * block && r < L; r++)
                            qs += f32_row(&q, b, h, r)[e];
                        for (int64_t r = n * block; r < (n + 1) * block && r < L; r++)
                            ks += f32_row(&k, b, 0, r)[e];
                        dot += qs / block * (ks / block);
                    }
                    score[n] = dot;
                }
                for (int64_t n = m + 1; n < nb; n++)
                    score[n] = -INFINITY;
                check_top(idx, kept, nb, 0, score, 1e-9, "block");
            }
    free(score);
    free(m1.data);
    free(m2.data);
    free(q.data);
    free(k.data);
}

static void test_block_sparse_attention(void)
{
    const int64_t B = 2, Hq = 4, Hkv = 2, L = 333, D = 40, block = 64, nb = (L + block - 1) / block;
    lr_tensor q = f32_new(B, Hq, L, D, true), k = f32_new(B, Hkv, L, D, true), v = f32_new(B, Hkv, L, D, true);
    lr_tensor out = f32_new(B, Hq, L, D, false), ref = f32_new(B, Hq, L, D, false);
    const int64_t shape[4] = {B, Hq, nb, nb};
    lr_tensor mask = lr_tensor_from(calloc((size_t)(B * Hq * nb * nb), 1), LR_U8, 4, shape);
    lr_block_sparse_params p = lr_block_sparse_default_params();
    p.top_k = 2;
    REQUIRE(lr_minference_block_estimate(levels[0], &p, &q, &k, &mask) == LR_OK);
    for (int64_t b = 0; b < B; b++) {
        lr_tensor qs, ks, vs, os;
        const int64_t ms[3] = {Hq, nb, nb};
        lr_tensor bm = lr_tensor_from((uint8_t *)mask.data + b * Hq * nb * nb, LR_U8, 3, ms);
        lr_attn_params ap = lr_attn_default_params();
        ap.causal = true;
        ap.block_mask = &bm;
        ap.block_q = ap.block_k = block;
        REQUIRE(lr_tensor_slice(levels[0], &q, 0, b, 1, &qs) == LR_OK && lr_tensor_slice(levels[0], &k, 0, b, 1, &ks) == LR_OK &&
                lr_tensor_slice(levels[0], &v, 0, b, 1, &vs) == LR_OK && lr_tensor_slice(levels[0], &ref, 0, b, 1, &os) == LR_OK);
        REQUIRE(lr_attention_ref(levels[0], &ap, &qs, &ks, &vs, &os) == LR_OK);
    }
    lr_tensor first = f32_new(B, Hq, L, D, false);
    for (int li = 0; li < n_levels; li++) {
        REQUIRE(lr_block_sparse_attention(levels[li], &p, &q, &k, &v, &out) == LR_OK);
        CHECKF(rel_error(&out, &ref, &v) <= TOL, "block-sparse at %s: %.3g",
               lr_cpu_level_name(lr_ctx_cpu(levels[li])), rel_error(&out, &ref, &v));
    }
    /* threads: 1, 2, 3 at the best level */
    lr_ctx *t1 = make_ctx(1, LR_CPU_AVX512), *t3 = make_ctx(3, LR_CPU_AVX512);
    REQUIRE(t1 && t3);
    REQUIRE(lr_block_sparse_attention(t1, &p, &q, &k, &v, &first) == LR_OK);
    REQUIRE(lr_block_sparse_attention(t3, &p, &q, &k, &v, &out) == LR_OK);
    CHECK(same_bits(&first, &out));
    lr_ctx_destroy(t1);
    lr_ctx_destroy(t3);
    void *mems[] = {q.data, k.data, v.data, out.data, ref.data, mask.data, first.data};
    for (size_t i = 0; i < sizeof mems / sizeof mems[0]; i++)
        free(mems[i]);
}

/* ---- threads ----------------------------------------------------------------------------- */

static void test_bit_identical_across_threads(void)
{
    const int64_t B = 1, Hq = 3, Hkv = 3, L = 333, D = 48, nv = 40, ns = 60;
    lr_tensor q = f32_new(B, Hq, L, D, true), k = f32_new(B, Hkv, L, D, true), v = f32_new(B, Hkv, L, D, true);
    lr_tensor outs[3], verts[3], slashes[3];
    for (int t = 0; t < 3; t++) {
        lr_ctx *ctx = make_ctx(t + 1, LR_CPU_AVX512);
        REQUIRE(ctx);
        outs[t] = f32_new(B, Hq, L, D, false);
        verts[t] = i32_new(B, Hq, nv);
        slashes[t] = i32_new(B, Hq, ns);
        REQUIRE(lr_minference_vs_estimate(ctx, NULL, &q, &k, &verts[t], &slashes[t]) == LR_OK);
        REQUIRE(lr_vertical_slash_attention(ctx, NULL, &q, &k, &v, &verts[t], &slashes[t], &outs[t]) == LR_OK);
        lr_ctx_destroy(ctx);
    }
    for (int t = 1; t < 3; t++) {
        CHECK(same_bits(&verts[0], &verts[t]));
        CHECK(same_bits(&slashes[0], &slashes[t]));
        CHECK(same_bits(&outs[0], &outs[t]));
    }
    for (int t = 0; t < 3; t++) {
        free(outs[t].data);
        free(verts[t].data);
        free(slashes[t].data);
    }
    free(q.data);
    free(k.data);
    free(v.data);
}

/* ---- errors ------------------------------------------------------------------------------ */

static void test_argument_errors(void)
{
    lr_ctx *ctx = levels[0];
    const int64_t B = 1, H = 2, L = 70, D = 16;
    lr_tensor q = f32_new(B, H, L, D, true), k = f32_new(B, H, L, D, true), v = f32_new(B, H, L, D, true);
    lr_tensor out = f32_new(B, H, L, D, false), k3 = f32_new(B, 3, L, D, true), v3 = f32_new(B, 3, L, D, true);
    lr_tensor vert = i32_new(B, H, 5), slash = i32_new(B, H, 5), wrong = i32_new(B, H + 1, 5);
    lr_tensor fvert = vert;
    fvert.dtype = LR_F32;
    lr_tensor half = q;
    half.dtype = LR_BF16;
    CHECK(fails_with(lr_vertical_slash_attention(ctx, NULL, &q, &k, &v, &fvert, &slash, &out), ctx, "i32"));
    CHECK(fails_with(lr_vertical_slash_attention(ctx, NULL, &q, &k, &v, &vert, &wrong, &out), ctx, "slash"));
    CHECK(fails_with(lr_vertical_slash_attention(ctx, NULL, &half, &k, &v, &vert, &slash, &out), ctx, "f32"));
    CHECK(fails_with(lr_vertical_slash_attention(ctx, NULL, &q, &k3, &v3, &vert, &slash, &out), ctx, "multiple"));
    CHECK(fails_with(lr_vertical_slash_attention(ctx, NULL, &q, &k, &v, NULL, &slash, &out), ctx, "missing"));
    CHECK(fails_with(lr_vertical_slash_attention_ref(ctx, NULL, &q, &k, &v3, &vert, &slash, &out), ctx, "differ"));
    lr_vs_params bad_scale = {.scale = -1.0f};
    CHECK(fails_with(lr_vertical_slash_attention(ctx, &bad_scale, &q, &k, &v, &vert, &slash, &out), ctx, "scale"));

    lr_tensor many = i32_new(B, H, L + 1), zero = i32_new(B, H, 0);
    CHECK(fails_with(lr_minference_vs_estimate(ctx, NULL, &q, &k, &many, &slash), ctx, "1..Lk"));
    CHECK(fails_with(lr_minference_vs_estimate(ctx, NULL, &q, &k, &vert, &zero), ctx, "1..Lk"));
    lr_vs_estimate_params ep = lr_vs_estimate_default_params();
    ep.last_q = 0;
    CHECK(fails_with(lr_minference_vs_estimate(ctx, &ep, &q, &k, &vert, &slash), ctx, "last_q"));
    CHECK(lr_minference_vs_estimate(ctx, NULL, &q, &k, &vert, &slash) == LR_OK);

    int64_t nb = (L + 63) / 64;
    const int64_t ms[4] = {B, H, nb, nb}, bad_ms[4] = {B, H, nb + 1, nb};
    uint8_t *mem = calloc((size_t)(B * H * (nb + 1) * nb), 1);
    lr_tensor mask = lr_tensor_from(mem, LR_U8, 4, ms), bad_mask = lr_tensor_from(mem, LR_U8, 4, bad_ms);
    lr_block_sparse_params bp = lr_block_sparse_default_params();
    CHECK(fails_with(lr_minference_block_estimate(ctx, &bp, &q, &k, &bad_mask), ctx, "mask_out"));
    lr_tensor short_k;
    REQUIRE(lr_tensor_slice(ctx, &k, 2, 0, L - 1, &short_k) == LR_OK);
    CHECK(fails_with(lr_minference_block_estimate(ctx, &bp, &q, &short_k, &mask), ctx, "pre-fill"));
    bp.top_k = 0;
    CHECK(fails_with(lr_minference_block_estimate(ctx, &bp, &q, &k, &mask), ctx, "top_k"));
    bp.top_k = 1;
    bp.block = 0;
    CHECK(fails_with(lr_block_sparse_attention(ctx, &bp, &q, &k, &v, &out), ctx, "block"));
    CHECK(lr_block_sparse_attention(ctx, NULL, &q, &k, &v, &out) == LR_OK);
    void *mems[] = {q.data, k.data, v.data, out.data, k3.data, v3.data, vert.data, slash.data, wrong.data,
                    many.data, zero.data, mem};
    for (size_t i = 0; i < sizeof mems / sizeof mems[0]; i++)
        free(mems[i]);
}

/* ---- recall of attention mass ------------------------------------------------------------ */

/* Structured heads like those MInference reports: rotary-style features make the scores a
 * function of the offset i - j (diagonals), and a shared direction makes a few "heavy" keys
 * (and the first) attractive to every query (columns). Noise on top. */
static void fill_structured(lr_tensor *q, lr_tensor *k)
{
    int64_t L = q->shape[2], D = q->shape[3], half = D / 2;
    for (int64_t r = 0; r < L; r++) {
        float *qr = (float *)f32_row(q, 0, 0, r), *kr = (float *)f32_row(k, 0, 0, r);
        bool heavy = r == 0 || r % 97 == 13;
        for (int64_t e = 0; e < D; e++) {
            qr[e] = 0.3f * random_float();
            kr[e] = 0.3f * random_float();
        }
        for (int64_t f = 0; f + 1 < half; f += 2) {
            double theta = pow(10000.0, -(double)f / (double)half) * (double)r;
            qr[f] += 2.0f * (float)cos(theta);
            qr[f + 1] += 2.0f * (float)sin(theta);
            kr[f] += 2.0f * (float)cos(theta);
            kr[f + 1] += 2.0f * (float)sin(theta);
        }
        for (int64_t e = half; e < D; e++) {
            qr[e] += 1.2f;
            if (heavy)
                kr[e] += 1.2f;
        }
    }
}

/* The share of each sampled row's exact causal attention that falls on keys the pattern
 * keeps, averaged over the rows: visible(i, j) says whether the pattern keeps (i, j). */
typedef bool (*keeps_fn)(const void *pattern, int64_t i, int64_t j);

static double mass_recall(const lr_tensor *q, const lr_tensor *k, keeps_fn keeps, const void *pattern)
{
    int64_t L = q->shape[2], D = q->shape[3], rows = 0;
    double *s = malloc((size_t)L * sizeof(double)), total = 0, scale = 1.0 / sqrt((double)D);
    for (int64_t i = L - 1; i >= 0; i -= 13, rows++) {
        double top = -INFINITY, sum = 0, kept = 0;
        for (int64_t j = 0; j <= i; j++) {
            double dot = 0;
            for (int64_t e = 0; e < D; e++)
                dot += (double)f32_row(q, 0, 0, i)[e] * f32_row(k, 0, 0, j)[e];
            s[j] = dot * scale;
            top = fmax(top, s[j]);
        }
        for (int64_t j = 0; j <= i; j++) {
            double w = exp(s[j] - top);
            sum += w;
            if (keeps(pattern, i, j))
                kept += w;
        }
        total += kept / sum;
    }
    free(s);
    return total / (double)rows;
}

typedef struct {
    const uint8_t *vert, *slash; /* flags over positions */
    const uint8_t *mask;
    int64_t nb, block;
} pattern;

static bool vs_keeps(const void *pv, int64_t i, int64_t j)
{
    const pattern *p = pv;
    return p->vert[j] || p->slash[i - j];
}

static bool block_keeps(const void *pv, int64_t i, int64_t j)
{
    const pattern *p = pv;
    return p->mask[(i / p->block) * p->nb + j / p->block] != 0;
}

static void test_recall_report(void)
{
    const int64_t L = 2048, D = 64, budget = L / 16, block = 64, nb = L / block, top_k = nb / 8;
    lr_ctx *ctx = levels[n_levels - 1];
    for (int structured = 0; structured < 2; structured++) {
        lr_tensor q = f32_new(1, 1, L, D, true), k = f32_new(1, 1, L, D, true);
        if (structured)
            fill_structured(&q, &k);
        lr_tensor vert = i32_new(1, 1, budget), slash = i32_new(1, 1, budget);
        const int64_t ms[4] = {1, 1, nb, nb};
        lr_tensor mask = lr_tensor_from(calloc((size_t)(nb * nb), 1), LR_U8, 4, ms);
        REQUIRE(lr_minference_vs_estimate(ctx, NULL, &q, &k, &vert, &slash) == LR_OK);
        lr_block_sparse_params bp = lr_block_sparse_default_params();
        bp.top_k = top_k;
        REQUIRE(lr_minference_block_estimate(ctx, &bp, &q, &k, &mask) == LR_OK);
        pattern p = {calloc((size_t)L, 1), calloc((size_t)L, 1), mask.data, nb, block};
        for (int64_t e = 0; e < budget; e++) {
            ((uint8_t *)p.vert)[i32_at(&vert, 0, 0)[e]] = 1;
            ((uint8_t *)p.slash)[i32_at(&slash, 0, 0)[e]] = 1;
        }
        double r_vs = mass_recall(&q, &k, vs_keeps, &p), r_bs = mass_recall(&q, &k, block_keeps, &p);
        printf("  attention mass kept, %s data, L = %lld: vertical-slash (nv = ns = %lld) %.3f, "
               "block-sparse (top %lld of %lld blocks) %.3f\n",
               structured ? "structured" : "random", (long long)L, (long long)budget, r_vs, (long long)top_k,
               (long long)nb, r_bs);
        /* sanity: at least the share of keys the budgets cover on average, at most all */
        CHECK(r_vs > 0.05 && r_vs <= 1.0 + 1e-9 && r_bs > 0.05 && r_bs <= 1.0 + 1e-9);
        if (structured)
            CHECK(r_vs > 0.5);
        free((void *)p.vert);
        free((void *)p.slash);
        free(mask.data);
        free(vert.data);
        free(slash.data);
        free(q.data);
        free(k.data);
    }
}

int main(void)
{
    seed_random(23);
    static const lr_cpu_level want[3] = {LR_CPU_REF, LR_CPU_AVX2, LR_CPU_AVX512};
    for (int i = 0; i < 3; i++) {
        lr_ctx *ctx = make_ctx_at(2, want[i]);
        if (ctx)
            levels[n_levels++] = ctx;
    }
    if (n_levels == 0) {
        printf("FAIL contexts: none could be created\n");
        return 1;
    }
    RUN(test_vs_matches_reference);
    RUN(test_vs_known_patterns);
    RUN(test_vs_estimate);
    RUN(test_block_estimate);
    RUN(test_block_sparse_attention);
    RUN(test_bit_identical_across_threads);
    RUN(test_argument_errors);
    RUN(test_recall_report);
    for (int i = 0; i < n_levels; i++)
        lr_ctx_destroy(levels[i]);
    return CHECK_DONE();
}
