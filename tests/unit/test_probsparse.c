/* ProbSparse attention (Informer): the counts U and u, the sample-index generator; parity
 * with an independent float64 PyTorch ProbAttention on committed fixtures (given sample
 * indices; tools/make_probsparse_fixtures.py); lr_probsparse_attention against
 * lr_probsparse_ref at every CPU level this machine has (L = 1, lengths off the tile widths,
 * head dims off the vector width, Dv != D, grouped heads, cross, causal, views of a
 * [B, L, H, D] projection); the unselected rows against the mean / cumulative sum of v
 * computed here; the limit u = Lq against lr_attention_ref; deterministic tie-breaking; NaN
 * ranking; bit-identical output for 1, 2 and 3 threads; argument errors.
 *
 * Error measure: max |out - ref| over max |v| for the fast path against its reference
 * (tolerance 2e-6, as lr_attention, whose tile kernels do the selected rows); absolute 1e-5
 * against the fixtures, whose values are O(1) (causal cumulative sums up to ~10). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kernel_test.h"
#include "longrange/attention.h"
#include "longrange/core.h"
#include "longrange/model.h"
#include "longrange/probsparse.h"
#include "longrange/tensor.h"

#define TOL 2e-6
#define FIXTURE_TOL 1e-5
#define PAD 3 /* floats after each head row in strided storage */

/* A [B, H, L, D] F32 view of storage [B][L][H][D + PAD] (a projection before the head split),
 * so only the last dimension is contiguous; padding holds NaN. */
typedef struct {
    lr_tensor t;
    float *mem;
    size_t n;
} view;

static view view_new(int64_t B, int64_t H, int64_t L, int64_t D, bool fill)
{
    view v = {0};
    int64_t row = D + PAD;
    v.n = (size_t)(B * L * H * row);
    v.mem = malloc((v.n ? v.n : 1) * sizeof(float));
    for (size_t i = 0; i < v.n; i++)
        v.mem[i] = NAN;
    v.t.data = v.mem;
    v.t.dtype = LR_F32;
    v.t.ndim = 4;
    int64_t shape[4] = {B, H, L, D}, stride[4] = {L * H * row, row, H * row, 1};
    memcpy(v.t.shape, shape, sizeof shape);
    memcpy(v.t.stride, stride, sizeof stride);
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < L; i++)
                for (int64_t e = 0; e < D; e++)
                    v.mem[b * stride[0] + h * stride[1] + i * stride[2] + e] = fill ? random_float() : 0.0f;
    return v;
}

static float *at(const view *v, int64_t b, int64_t h, int64_t i)
{
    return v->mem + b * v->t.stride[0] + h * v->t.stride[1] + i * v->t.stride[2];
}

static double max_abs(const view *v)
{
    double m = 0;
    for (int64_t b = 0; b < v->t.shape[0]; b++)
        for (int64_t h = 0; h < v->t.shape[1]; h++)
            for (int64_t i = 0; i < v->t.shape[2]; i++)
                for (int64_t e = 0; e < v->t.shape[3]; e++)
                    m = fmax(m, fabs(at(v, b, h, i)[e]));
    return m;
}

/* max |x - y| (INFINITY if x has a non-finite value where y is finite) */
static double max_diff(const view *x, const view *y)
{
    double m = 0;
    for (int64_t b = 0; b < x->t.shape[0]; b++)
        for (int64_t h = 0; h < x->t.shape[1]; h++)
            for (int64_t i = 0; i < x->t.shape[2]; i++)
                for (int64_t e = 0; e < x->t.shape[3]; e++) {
                    double a = at(x, b, h, i)[e], c = at(y, b, h, i)[e];
                    if (!isfinite(a) && isfinite(c))
                        return INFINITY;
                    m = fmax(m, fabs(a - c));
                }
    return m;
}

static bool same_bits(const view *x, const view *y)
{
    return x->n == y->n && memcmp(x->mem, y->mem, x->n * sizeof(float)) == 0;
}

typedef struct {
    view q, k, v, out, ref;
    int32_t *sel, *sel_ref;
    lr_tensor selt, selt_ref;
} problem;

static problem problem_new(int64_t B, int64_t Hq, int64_t Hkv, int64_t Lq, int64_t Lk, int64_t D, int64_t Dv,
                           int64_t u)
{
    problem p;
    memset(&p, 0, sizeof p);
    p.q = view_new(B, Hq, Lq, D, true);
    p.k = view_new(B, Hkv, Lk, D, true);
    p.v = view_new(B, Hkv, Lk, Dv, true);
    p.out = view_new(B, Hq, Lq, Dv, false);
    p.ref = view_new(B, Hq, Lq, Dv, false);
    size_t n = (size_t)(B * Hq * u);
    p.sel = calloc(n + 1, sizeof(int32_t));
    p.sel_ref = calloc(n + 1, sizeof(int32_t));
    int64_t shape[3] = {B, Hq, u};
    p.selt = lr_tensor_from(p.sel, LR_I32, 3, shape);
    p.selt_ref = lr_tensor_from(p.sel_ref, LR_I32, 3, shape);
    return p;
}

static void problem_free(problem *p)
{
    free(p->q.mem);
    free(p->k.mem);
    free(p->v.mem);
    free(p->out.mem);
    free(p->ref.mem);
    free(p->sel);
    free(p->sel_ref);
}

/* ---- counts and samples ----------------------------------------------------------------- */

static void test_counts(void)
{
    /* factor * ceil(ln L), capped at L: ln 48 = 3.87, ln 72 = 4.28, ln 24 = 3.18, ln 2 = 0.69 */
    CHECK(lr_probsparse_sample_count(5, 48) == 20);
    CHECK(lr_probsparse_sample_count(5, 72) == 25);
    CHECK(lr_probsparse_top_count(5, 24) == 20);
    CHECK(lr_probsparse_top_count(2, 40) == 8);
    CHECK(lr_probsparse_top_count(5, 96) == 25);
    CHECK(lr_probsparse_top_count(5, 16384) == 50);
    CHECK(lr_probsparse_top_count(5, 2) == 2);
    CHECK(lr_probsparse_top_count(5, 3) == 3);
    CHECK(lr_probsparse_top_count(1, 3) == 2);
    CHECK(lr_probsparse_top_count(5, 1) == 0);
    CHECK(lr_probsparse_top_count(5, 0) == 0);
    CHECK(lr_probsparse_top_count(INT64_MAX / 2, 1000) == 1000);
    CHECK(lr_probsparse_top_count(0, 10) == -1);
    CHECK(lr_probsparse_sample_count(5, -1) == -1);
    /* ceil(ln L) steps up just after e^n: e^3 = 20.09, e^4 = 54.6 */
    CHECK(lr_probsparse_top_count(1, 20) == 3 && lr_probsparse_top_count(1, 21) == 4);
    CHECK(lr_probsparse_top_count(1, 54) == 4 && lr_probsparse_top_count(1, 55) == 5);
}

static void test_sample_indices(void)
{
    enum { LQ = 50, LK = 37, U = 20 };
    int64_t *a = malloc(LQ * U * sizeof(int64_t)), *b = malloc(LQ * U * sizeof(int64_t));
    int64_t hist[LK] = {0};
    lr_probsparse_sample_indices(7, LQ, LK, U, a);
    lr_probsparse_sample_indices(7, LQ, LK, U, b);
    CHECK(memcmp(a, b, LQ * U * sizeof(int64_t)) == 0);
    for (int n = 0; n < LQ * U; n++) {
        CHECK(a[n] >= 0 && a[n] < LK);
        if (a[n] >= 0 && a[n] < LK)
            hist[a[n]]++;
    }
    /* 1000 draws over 37 keys: about 27 each; every key is drawn */
    for (int j = 0; j < LK; j++)
        CHECKF(hist[j] > 5 && hist[j] < 60, "key %d drawn %lld times", j, (long long)hist[j]);
    lr_probsparse_sample_indices(8, LQ, LK, U, b);
    int same = 0;
    for (int n = 0; n < LQ * U; n++)
        same += a[n] == b[n];
    CHECKF(same < LQ * U / 10, "seeds 7 and 8 agree on %d of %d indices", same, LQ * U);
    /* counter-based: a shorter draw is a prefix of a longer one */
    lr_probsparse_sample_indices(7, 3, LK, U, b);
    CHECK(memcmp(a, b, 3 * U * sizeof(int64_t)) == 0);
    free(a);
    free(b);
}

/* ---- parity with the PyTorch fixtures ---------------------------------------------------- */

static void check_fixture(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "tests/fixtures/probsparse/%s.safetensors", name);
    lr_ctx *ctx = make_ctx(2, LR_CPU_AVX512);
    REQUIRE(ctx);
    lr_model *m = NULL;
    lr_status s = lr_model_open(ctx, path, &m);
    CHECKF(s == LR_OK, "%s: %s", path, lr_ctx_last_error(ctx));
    if (s != LR_OK) {
        lr_ctx_destroy(ctx);
        return;
    }
    lr_tensor q, k, v, idx, want, want_sel;
    int64_t factor = 0, causal = 0;
    s = lr_model_get(ctx, m, "q", LR_F32, 4, NULL, &q);
    if (s == LR_OK)
        s = lr_model_get(ctx, m, "k", LR_F32, 4, NULL, &k);
    if (s == LR_OK)
        s = lr_model_get(ctx, m, "v", LR_F32, 4, NULL, &v);
    if (s == LR_OK)
        s = lr_model_get(ctx, m, "index_sample", LR_I32, 2, NULL, &idx);
    if (s == LR_OK)
        s = lr_model_get(ctx, m, "out", LR_F32, 4, NULL, &want);
    if (s == LR_OK)
        s = lr_model_get(ctx, m, "selected", LR_I32, 3, NULL, &want_sel);
    if (s == LR_OK)
        s = lr_model_meta_int(ctx, m, "factor", false, 0, &factor);
    if (s == LR_OK)
        s = lr_model_meta_int(ctx, m, "causal", false, 0, &causal);
    CHECKF(s == LR_OK, "%s: %s", path, lr_ctx_last_error(ctx));
    if (s == LR_OK) {
        int64_t n = lr_tensor_numel(&want), ns = lr_tensor_numel(&want_sel);
        float *got = malloc((size_t)n * sizeof(float));
        int32_t *sel = malloc((size_t)ns * sizeof(int32_t));
        lr_tensor out = lr_tensor_from(got, LR_F32, 4, want.shape), selt = lr_tensor_from(sel, LR_I32, 3, want_sel.shape);
        lr_probsparse_params p = lr_probsparse_default_params();
        p.factor = factor;
        p.causal = causal != 0;
        p.sample_index = &idx;
        p.selected = &selt;
        for (int variant = -1; variant <= LR_CPU_AVX512; variant++) {
            /* -1: the reference; then the fast path at each level this machine has */
            lr_ctx *c = make_ctx(2, variant < 0 ? LR_CPU_REF : (lr_cpu_level)variant);
            if (!c || (variant >= 0 && (int)lr_ctx_cpu(c) != variant)) {
                lr_ctx_destroy(c);
                continue;
            }
            for (int64_t i = 0; i < n; i++)
                got[i] = NAN;
            s = (variant < 0 ? lr_probsparse_ref : lr_probsparse_attention)(c, &p, &q, &k, &v, &out);
            CHECKF(s == LR_OK, "%s: %s", name, lr_ctx_last_error(c));
            double e = 0;
            for (int64_t i = 0; i < n; i++)
                e = fmax(e, isfinite(got[i]) ? fabs(got[i] - ((const float *)want.data)[i]) : INFINITY);
            CHECKF(e <= FIXTURE_TOL, "%s %s: max abs error %.3g", name,
                   variant < 0 ? "reference" : lr_cpu_level_name((lr_cpu_level)variant), e);
            CHECKF(memcmp(sel, want_sel.data, (size_t)ns * sizeof(int32_t)) == 0, "%s %s: other rows selected", name,
                   variant < 0 ? "reference" : lr_cpu_level_name((lr_cpu_level)variant));
            if (variant == LR_CPU_AVX512 || variant < 0)
                printf("  %s %s: max abs error %.3g\n", name, variant < 0 ? "ref" : "fast", e);
            lr_ctx_destroy(c);
        }
        free(got);
        free(sel);
    }
    lr_model_close(m);
    lr_ctx_destroy(ctx);
}

static void test_fixtures(void)
{
    static const char *const names[] = {"self_f5", "self_f2", "cross_f5", "cross_f2", "causal_f2", "causal_f5"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        check_fixture(names[i]);
}

/* ---- fast against reference -------------------------------------------------------------- */

/* The rows not selected hold the mean of v (or its cumulative sum), computed here. */
static double context_error(const problem *p, int64_t u, bool causal, int64_t G)
{
    const lr_tensor *o = &p->out.t;
    int64_t B = o->shape[0], H = o->shape[1], Lq = o->shape[2], Dv = o->shape[3], Lk = p->k.t.shape[2];
    double worst = 0;
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++) {
            const int32_t *sel = p->sel + (b * H + h) * u;
            for (int64_t i = 0, r = 0; i < Lq; i++) {
                if (r < u && sel[r] == i) {
                    r++;
                    continue;
                }
                for (int64_t e = 0; e < Dv; e++) {
                    double s = 0;
                    int64_t n = causal ? i + 1 : Lk;
                    for (int64_t j = 0; j < n; j++)
                        s += at(&p->v, b, h / G, j)[e];
                    worst = fmax(worst, fabs(at(&p->out, b, h, i)[e] - (causal ? s : s / (double)Lk)));
                }
            }
        }
    return worst;
}

typedef struct {
    int64_t B, Hq, Hkv, Lq, Lk, D, Dv, factor;
    bool causal;
} shape_case;

static void test_fast_matches_reference(void)
{
    static const shape_case cases[] = {
        {1, 1, 1, 1, 1, 64, 64, 5, false},   {1, 1, 1, 1, 1, 8, 8, 5, true},      {1, 2, 1, 1, 9, 16, 16, 5, false},
        {1, 2, 2, 6, 1, 16, 5, 5, false},    {1, 2, 2, 40, 1, 16, 5, 5, false},    {2, 2, 2, 2, 2, 3, 3, 5, true},      {2, 4, 2, 77, 77, 17, 17, 5, false},
        {2, 4, 2, 77, 77, 17, 20, 5, true},  {1, 2, 1, 130, 130, 40, 40, 5, true}, {1, 3, 3, 96, 77, 17, 9, 5, false},
        {1, 2, 2, 33, 300, 64, 64, 5, false}, {2, 2, 1, 200, 200, 128, 128, 2, true}, {1, 2, 2, 300, 300, 24, 24, 1, false},
        {1, 1, 1, 700, 700, 32, 32, 5, true}, {1, 2, 2, 60, 60, 33, 33, 30, true},
    };
    double worst = 0;
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        const shape_case *sc = &cases[c];
        int64_t u = lr_probsparse_top_count(sc->factor, sc->Lq);
        problem p = problem_new(sc->B, sc->Hq, sc->Hkv, sc->Lq, sc->Lk, sc->D, sc->Dv, u);
        lr_probsparse_params pp = lr_probsparse_default_params();
        pp.factor = sc->factor;
        pp.causal = sc->causal;
        pp.seed = 1000 + c;
        pp.scale = c % 3 == 1 ? 0.3f : 0.0f;
        char what[160];
        snprintf(what, sizeof what, "B %lld H %lld/%lld Lq %lld Lk %lld D %lld Dv %lld c %lld%s", (long long)sc->B,
                 (long long)sc->Hq, (long long)sc->Hkv, (long long)sc->Lq, (long long)sc->Lk, (long long)sc->D,
                 (long long)sc->Dv, (long long)sc->factor, sc->causal ? " causal" : "");
        lr_ctx *rctx = make_ctx(2, LR_CPU_REF);
        REQUIRE(rctx);
        pp.selected = &p.selt_ref;
        CHECKF(lr_probsparse_ref(rctx, &pp, &p.q.t, &p.k.t, &p.v.t, &p.ref.t) == LR_OK, "%s: %s", what,
               lr_ctx_last_error(rctx));
        lr_ctx_destroy(rctx);
        pp.selected = &p.selt;
        double scale = max_abs(&p.v);
        for (int level = LR_CPU_REF; level <= LR_CPU_AVX512; level++) {
            lr_ctx *ctx = make_ctx_at(2, (lr_cpu_level)level);
            if (!ctx)
                continue;
            memset(p.sel, 0xff, (size_t)(sc->B * sc->Hq * u + 1) * sizeof(int32_t));
            lr_status s = lr_probsparse_attention(ctx, &pp, &p.q.t, &p.k.t, &p.v.t, &p.out.t);
            CHECKF(s == LR_OK, "%s: %s", what, lr_ctx_last_error(ctx));
            double e = max_diff(&p.out, &p.ref) / scale;
            CHECKF(e <= TOL, "%s at %s: error %.3g", what, lr_cpu_level_name((lr_cpu_level)level), e);
            CHECKF(memcmp(p.sel, p.sel_ref, (size_t)(sc->B * sc->Hq * u) * sizeof(int32_t)) == 0,
                   "%s at %s: other rows selected", what, lr_cpu_level_name((lr_cpu_level)level));
            double ce = context_error(&p, u, sc->causal, sc->Hq / sc->Hkv);
            CHECKF(ce <= 1e-6 * (sc->causal ? sc->Lq : 1), "%s: context off by %.3g", what, ce);
            worst = fmax(worst, e);
            lr_ctx_destroy(ctx);
        }
        problem_free(&p);
    }
    printf("  worst error %.3g\n", worst);
}

/* ---- the limit u = Lq is softmax attention ----------------------------------------------- */

static void test_all_rows_is_full_attention(void)
{
    static const shape_case cases[] = {
        {1, 2, 2, 40, 40, 16, 16, 100, false}, {1, 2, 2, 40, 40, 16, 16, 100, true},
        {2, 4, 2, 23, 61, 17, 9, 100, false},  {1, 1, 1, 150, 150, 64, 64, 1000, true},
        {1, 1, 1, 3, 3, 8, 8, 5, true},        {1, 1, 1, 1, 7, 8, 8, 5, false},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        const shape_case *sc = &cases[c];
        int64_t u = lr_probsparse_top_count(sc->factor, sc->Lq);
        if (sc->Lq == 1) {
            /* u = 0: every row is the mean of v, which equals attention only when all scores
             * are equal: use a zero query */
            CHECK(u == 0);
        } else {
            CHECK(u == sc->Lq);
        }
        problem p = problem_new(sc->B, sc->Hq, sc->Hkv, sc->Lq, sc->Lk, sc->D, sc->Dv, u);
        if (sc->Lq == 1)
            for (int64_t h = 0; h < sc->Hq; h++)
                memset(at(&p.q, 0, h, 0), 0, (size_t)sc->D * sizeof(float));
        lr_probsparse_params pp = lr_probsparse_default_params();
        pp.factor = sc->factor;
        pp.causal = sc->causal;
        lr_attn_params ap = lr_attn_default_params();
        ap.causal = sc->causal;
        lr_ctx *ctx = make_ctx(2, LR_CPU_AVX512);
        REQUIRE(ctx);
        CHECK(lr_attention_ref(ctx, &ap, &p.q.t, &p.k.t, &p.v.t, &p.ref.t) == LR_OK);
        CHECK(lr_probsparse_attention(ctx, &pp, &p.q.t, &p.k.t, &p.v.t, &p.out.t) == LR_OK);
        double e = max_diff(&p.out, &p.ref) / max_abs(&p.v);
        CHECKF(e <= TOL, "case %zu fast: error %.3g vs softmax attention", c, e);
        CHECK(lr_probsparse_ref(ctx, &pp, &p.q.t, &p.k.t, &p.v.t, &p.out.t) == LR_OK);
        e = max_diff(&p.out, &p.ref) / max_abs(&p.v);
        CHECKF(e <= 1e-6, "case %zu ref: error %.3g vs softmax attention", c, e);
        lr_ctx_destroy(ctx);
        problem_free(&p);
    }
}

/* ---- ties and NaN ------------------------------------------------------------------------ */

static void test_ties_and_nan(void)
{
    int64_t L = 30, D = 8, u = lr_probsparse_top_count(2, L); /* 8 */
    for (int with_nan = 0; with_nan <= 1; with_nan++) {
        problem p = problem_new(1, 1, 1, L, L, D, D, u);
        /* every query and every key the same: every M ties, so the first u rows win */
        for (int64_t i = 1; i < L; i++) {
            memcpy(at(&p.q, 0, 0, i), at(&p.q, 0, 0, 0), (size_t)D * sizeof(float));
            memcpy(at(&p.k, 0, 0, i), at(&p.k, 0, 0, 0), (size_t)D * sizeof(float));
        }
        if (with_nan)
            at(&p.q, 0, 0, 20)[3] = NAN; /* NaN ranks first: rows 0..6 and 20 */
        lr_probsparse_params pp = lr_probsparse_default_params();
        pp.factor = 2;
        pp.selected = &p.selt;
        for (int ref = 0; ref <= 1; ref++) {
            lr_ctx *ctx = make_ctx(2, LR_CPU_AVX512);
            REQUIRE(ctx);
            CHECK((ref ? lr_probsparse_ref : lr_probsparse_attention)(ctx, &pp, &p.q.t, &p.k.t, &p.v.t, &p.out.t) ==
                  LR_OK);
            for (int64_t r = 0; r < u; r++) {
                int32_t want = with_nan && r == u - 1 ? 20 : (int32_t)r;
                CHECKF(p.sel[r] == want, "%s%s: selected[%lld] = %d, want %d", ref ? "ref" : "fast",
                       with_nan ? " nan" : "", (long long)r, (int)p.sel[r], (int)want);
            }
            lr_ctx_destroy(ctx);
        }
        problem_free(&p);
    }
}

/* ---- determinism ------------------------------------------------------------------------- */

static void test_bit_identical_across_threads(void)
{
    for (int causal = 0; causal <= 1; causal++) {
        int64_t L = 500, u = lr_probsparse_top_count(5, L);
        problem p = problem_new(2, 3, 3, L, L, 32, 32, u);
        lr_probsparse_params pp = lr_probsparse_default_params();
        pp.causal = causal;
        pp.seed = 99;
        for (int level = LR_CPU_REF; level <= LR_CPU_AVX512; level++) {
            lr_ctx *one = make_ctx_at(1, (lr_cpu_level)level);
            if (!one)
                continue;
            CHECK(lr_probsparse_attention(one, &pp, &p.q.t, &p.k.t, &p.v.t, &p.ref.t) == LR_OK);
            for (int threads = 2; threads <= 3; threads++) {
                lr_ctx *ctx = make_ctx(threads, (lr_cpu_level)level);
                REQUIRE(ctx);
                for (size_t i = 0; i < p.out.n; i++)
                    p.out.mem[i] = NAN;
                CHECK(lr_probsparse_attention(ctx, &pp, &p.q.t, &p.k.t, &p.v.t, &p.out.t) == LR_OK);
                CHECKF(same_bits(&p.out, &p.ref), "%s%s: %d threads differ from 1",
                       lr_cpu_level_name((lr_cpu_level)level), causal ? " causal" : "", threads);
                lr_ctx_destroy(ctx);
            }
            lr_ctx_destroy(one);
        }
        problem_free(&p);
    }
}

/* ---- argument errors --------------------------------------------------------------------- */

static bool fails_with(lr_status s, lr_ctx *ctx, const char *needle)
{
    bool ok = s == LR_ERR_ARG && strstr(lr_ctx_last_error(ctx), needle) != NULL;
    if (!ok)
        printf("  expected \"%s\", got status %d: %s\n", needle, (int)s, lr_ctx_last_error(ctx));
    return ok;
}

static void test_argument_errors(void)
{
    lr_ctx *ctx = make_ctx(1, LR_CPU_AVX512);
    REQUIRE(ctx);
    int64_t L = 20, U = lr_probsparse_sample_count(5, L), u = lr_probsparse_top_count(5, L);
    problem p = problem_new(1, 2, 2, L, L, 8, 8, u);
    problem x = problem_new(1, 2, 2, 10, L, 8, 8, 5);
    lr_probsparse_params pp = lr_probsparse_default_params();
    pp.factor = 0;
    CHECK(fails_with(lr_probsparse_attention(ctx, &pp, &p.q.t, &p.k.t, &p.v.t, &p.out.t), ctx, "factor"));
    CHECK(fails_with(lr_probsparse_ref(ctx, &pp, &p.q.t, &p.k.t, &p.v.t, &p.out.t), ctx, "factor"));
    pp.factor = 5;
    pp.scale = -1;
    CHECK(fails_with(lr_probsparse_attention(ctx, &pp, &p.q.t, &p.k.t, &p.v.t, &p.out.t), ctx, "scale"));
    pp.scale = 0;
    pp.causal = true;
    CHECK(fails_with(lr_probsparse_attention(ctx, &pp, &x.q.t, &x.k.t, &x.v.t, &x.out.t), ctx, "causal"));
    pp.causal = false;
    CHECK(lr_probsparse_attention(ctx, &pp, &x.q.t, &x.k.t, &x.v.t, &x.out.t) == LR_OK);
    lr_tensor bad = p.k.t;
    bad.shape[3] = 7;
    CHECK(fails_with(lr_probsparse_attention(ctx, &pp, &p.q.t, &bad, &p.v.t, &p.out.t), ctx, "shapes differ"));
    bad = p.q.t;
    bad.shape[1] = 3;
    CHECK(fails_with(lr_probsparse_attention(ctx, &pp, &bad, &p.k.t, &p.v.t, &p.out.t), ctx, "shapes differ"));
    bad = p.q.t;
    bad.stride[3] = 2;
    CHECK(fails_with(lr_probsparse_attention(ctx, &pp, &bad, &p.k.t, &p.v.t, &p.out.t), ctx, "contiguous"));
    bad = p.q.t;
    bad.dtype = LR_BF16;
    CHECK(fails_with(lr_probsparse_attention(ctx, &pp, &bad, &p.k.t, &p.v.t, &p.out.t), ctx, "f32"));
    CHECK(fails_with(lr_probsparse_attention(ctx, &pp, NULL, &p.k.t, &p.v.t, &p.out.t), ctx, "missing"));
    bad = p.k.t;
    bad.shape[2] = 0;
    lr_tensor bad_v = p.v.t;
    bad_v.shape[2] = 0;
    CHECK(fails_with(lr_probsparse_attention(ctx, &pp, &p.q.t, &bad, &bad_v, &p.out.t), ctx, "no keys"));

    int32_t *idx = calloc((size_t)(L * U), sizeof(int32_t));
    int64_t ishape[2] = {L, U}, wrong[2] = {L, U - 1};
    lr_tensor it = lr_tensor_from(idx, LR_I32, 2, ishape);
    pp.sample_index = &it;
    CHECK(lr_probsparse_attention(ctx, &pp, &p.q.t, &p.k.t, &p.v.t, &p.out.t) == LR_OK);
    idx[L * U - 1] = (int32_t)L;
    CHECK(fails_with(lr_probsparse_attention(ctx, &pp, &p.q.t, &p.k.t, &p.v.t, &p.out.t), ctx, "outside [0, 20)"));
    idx[L * U - 1] = -1;
    CHECK(fails_with(lr_probsparse_ref(ctx, &pp, &p.q.t, &p.k.t, &p.v.t, &p.out.t), ctx, "outside"));
    idx[L * U - 1] = 0;
    it = lr_tensor_from(idx, LR_I32, 2, wrong);
    CHECK(fails_with(lr_probsparse_attention(ctx, &pp, &p.q.t, &p.k.t, &p.v.t, &p.out.t), ctx, "sample_index must"));
    it = lr_tensor_from(idx, LR_F32, 2, ishape);
    CHECK(fails_with(lr_probsparse_attention(ctx, &pp, &p.q.t, &p.k.t, &p.v.t, &p.out.t), ctx, "i32"));
    pp.sample_index = NULL;
    int64_t sshape[3] = {1, 2, u + 1};
    lr_tensor st = lr_tensor_from(p.sel, LR_I32, 3, sshape);
    pp.selected = &st;
    CHECK(fails_with(lr_probsparse_attention(ctx, &pp, &p.q.t, &p.k.t, &p.v.t, &p.out.t), ctx, "selected must"));
    /* the defaults work */
    CHECK(lr_probsparse_attention(ctx, NULL, &p.q.t, &p.k.t, &p.v.t, &p.out.t) == LR_OK);
    CHECK(lr_probsparse_ref(ctx, NULL, &p.q.t, &p.k.t, &p.v.t, &p.out.t) == LR_OK);
    free(idx);
    problem_free(&p);
    problem_free(&x);
    lr_ctx_destroy(ctx);
}

int main(void)
{
    seed_random(21);
    RUN(test_counts);
    RUN(test_sample_indices);
    RUN(test_fixtures);
    RUN(test_fast_matches_reference);
    RUN(test_all_rows_is_full_attention);
    RUN(test_ties_and_nan);
    RUN(test_bit_identical_across_threads);
    RUN(test_argument_errors);
    return CHECK_DONE();
}
