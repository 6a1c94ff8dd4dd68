/* Neighbourhood attention: the neighbour rule (exactly k keys, on the query's dilation
 * sub-grid, shifted inward at borders, NATTEN's rpb offsets); lr_na1d / lr_na2d against their
 * double references at every CPU level this machine has (k = 1..257, dilation 1..3, lengths
 * from k * d up, head dims off the vector width, with and without rpb, causal 1D, strided
 * views); both against lr_attention_ref with a bias of -inf outside the neighbourhood; DiNA
 * as NA on each dilation sub-grid; bit-identical output for 1, 2 and 3 threads; argument
 * errors.
 *
 * Error measure: max |out - ref| over max |v| (an output row is a convex combination of value
 * rows). Tolerance 2e-6, as for lr_attention, whose tile kernels do the work. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kernel_test.h"
#include "longrange/attention.h"
#include "longrange/core.h"
#include "longrange/natten.h"
#include "longrange/tensor.h"

#define TOL 2e-6
#define OUT_SENTINEL -777.0f
#define PAD 3 /* extra floats after each row of head dims in strided storage */

/* A 4-d F32 tensor [A, H, ..., D] whose storage puts the head dimension (index `head_dim`)
 * just inside the last, with PAD floats after each head row: the layout of a projection before
 * the head split, so only the last dimension is contiguous. The padding holds NaN in inputs
 * and OUT_SENTINEL in outputs. */
typedef struct {
    lr_tensor t;
    float *mem;
    size_t n_mem;
} view;

static view view_new(const int64_t shape[4], int head_dim, bool input)
{
    view v = {0};
    int64_t row = shape[3] + PAD, stride[4];
    /* storage order: every dimension but head and channel from outer to inner, then head */
    stride[3] = 1;
    stride[head_dim] = row;
    int64_t inner = row * shape[head_dim];
    for (int dim = 2; dim >= 0; dim--) {
        if (dim == head_dim)
            continue;
        stride[dim] = inner;
        inner *= shape[dim];
    }
    v.n_mem = (size_t)inner;
    v.mem = malloc(v.n_mem * sizeof(float));
    for (size_t i = 0; i < v.n_mem; i++)
        v.mem[i] = input ? NAN : OUT_SENTINEL;
    v.t.data = v.mem;
    v.t.dtype = LR_F32;
    v.t.ndim = 4;
    memcpy(v.t.shape, shape, sizeof v.t.shape);
    memcpy(v.t.stride, stride, sizeof v.t.stride);
    if (input)
        for (int64_t a = 0; a < shape[0]; a++)
            for (int64_t b = 0; b < shape[1]; b++)
                for (int64_t c = 0; c < shape[2]; c++)
                    for (int64_t e = 0; e < shape[3]; e++)
                        v.mem[a * stride[0] + b * stride[1] + c * stride[2] + e] = random_float();
    return v;
}

static float *view_at(const view *v, int64_t a, int64_t b, int64_t c)
{
    return v->mem + a * v->t.stride[0] + b * v->t.stride[1] + c * v->t.stride[2];
}

/* The padding of an output still holds the sentinel. */
static bool padding_intact(const view *v)
{
    const int64_t *s = v->t.shape;
    size_t n = 0;
    for (int64_t a = 0; a < s[0]; a++)
        for (int64_t b = 0; b < s[1]; b++)
            for (int64_t c = 0; c < s[2]; c++)
                for (int e = 0; e < PAD; e++)
                    n += view_at(v, a, b, c)[s[3] + e] == OUT_SENTINEL;
    return n == (size_t)(s[0] * s[1] * s[2] * PAD);
}

static double max_abs(const view *v)
{
    const int64_t *s = v->t.shape;
    double m = 0;
    for (int64_t a = 0; a < s[0]; a++)
        for (int64_t b = 0; b < s[1]; b++)
            for (int64_t c = 0; c < s[2]; c++)
                for (int64_t e = 0; e < s[3]; e++)
                    m = fmax(m, fabs(view_at(v, a, b, c)[e]));
    return m;
}

/* max |x - y| / max |v|, or INFINITY if any entry of x is not finite. */
static double rel_error(const view *x, const view *y, const view *v)
{
    const int64_t *s = x->t.shape;
    double m = 0;
    for (int64_t a = 0; a < s[0]; a++)
        for (int64_t b = 0; b < s[1]; b++)
            for (int64_t c = 0; c < s[2]; c++)
                for (int64_t e = 0; e < s[3]; e++) {
                    double d = fabs((double)view_at(x, a, b, c)[e] - (double)view_at(y, a, b, c)[e]);
                    if (!isfinite(view_at(x, a, b, c)[e]))
                        return INFINITY;
                    m = fmax(m, d);
                }
    return m / max_abs(v);
}

static bool same_bits(const view *x, const view *y)
{
    return x->n_mem == y->n_mem && memcmp(x->mem, y->mem, x->n_mem * sizeof(float)) == 0;
}

/* q, k, v, out and a reference out for one problem; rpb when asked. */
typedef struct {
    view q, k, v, out, ref;
    float *rpb_mem;
    lr_tensor rpb;
} problem;

static problem problem_new(bool two_d, int64_t a0, int64_t H, int64_t y, int64_t x, int64_t D, int64_t Dv,
                           int64_t ks, bool with_rpb)
{
    problem p = {0};
    int64_t qs[4], vs[4];
    if (two_d) {
        int64_t sq[4] = {H, y, x, D}, sv[4] = {H, y, x, Dv};
        memcpy(qs, sq, sizeof qs);
        memcpy(vs, sv, sizeof vs);
    } else {
        int64_t sq[4] = {a0, H, x, D}, sv[4] = {a0, H, x, Dv};
        memcpy(qs, sq, sizeof qs);
        memcpy(vs, sv, sizeof vs);
    }
    int head = two_d ? 0 : 1;
    p.q = view_new(qs, head, true);
    p.k = view_new(qs, head, true);
    p.v = view_new(vs, head, true);
    p.out = view_new(vs, head, false);
    p.ref = view_new(vs, head, false);
    if (with_rpb) {
        int64_t w = 2 * ks - 1, n = H * w * (two_d ? w : 1);
        p.rpb_mem = malloc((size_t)n * sizeof(float));
        for (int64_t i = 0; i < n; i++)
            p.rpb_mem[i] = 2.0f * random_float();
        int64_t shape[3] = {H, w, w};
        p.rpb = lr_tensor_from(p.rpb_mem, LR_F32, two_d ? 3 : 2, shape);
    }
    return p;
}

static void problem_free(problem *p)
{
    free(p->q.mem);
    free(p->k.mem);
    free(p->v.mem);
    free(p->out.mem);
    free(p->ref.mem);
    free(p->rpb_mem);
}

typedef lr_status (*na_fn)(lr_ctx *, const lr_na_params *, const lr_tensor *, const lr_tensor *, const lr_tensor *,
                           lr_tensor *);

static lr_status run(na_fn fn, lr_ctx *ctx, const lr_na_params *np, problem *p, view *out)
{
    return fn(ctx, np, &p->q.t, &p->k.t, &p->v.t, &out->t);
}

/* ---- the neighbour rule -------------------------------------------------------------- */

static void test_neighbours(void)
{
    int64_t idx[64], pb[64];
    for (int64_t k = 1; k <= 13; k += 2)
        for (int64_t d = 1; d <= 4; d++)
            for (int64_t L = k * d; L <= k * d + 20; L++)
                for (int64_t i = 0; i < L; i++) {
                    int64_t n = lr_na_neighbours(i, L, k, d, false, idx, pb);
                    CHECKF(n == k, "k %lld d %lld L %lld i %lld: %lld neighbours", (long long)k, (long long)d,
                           (long long)L, (long long)i, (long long)n);
                    /* the sub-grid form, a third way of writing the rule */
                    int64_t len = (L - i % d + d - 1) / d, iq = i / d;
                    int64_t start = iq - k / 2 < 0 ? 0 : iq - k / 2 > len - k ? len - k : iq - k / 2;
                    bool has_self = false;
                    for (int64_t a = 0; a < n && a < k; a++) {
                        CHECK(idx[a] >= 0 && idx[a] < L && idx[a] % d == i % d);
                        CHECK(idx[a] == (start + a) * d + i % d);
                        CHECK(pb[a] == idx[a] / d - iq + k - 1 && pb[a] >= 0 && pb[a] <= 2 * k - 2);
                        has_self |= idx[a] == i;
                    }
                    CHECK(has_self);
                    int64_t nc = lr_na_neighbours(i, L, k, d, true, idx, pb);
                    CHECK(nc == (k < iq + 1 ? k : iq + 1) && idx[nc - 1] == i && idx[0] == i - (nc - 1) * d);
                }
    CHECK(lr_na_neighbours(0, 10, 4, 1, false, idx, pb) == -1);
    CHECK(lr_na_neighbours(0, 8, 3, 3, false, idx, pb) == -1);
    CHECK(lr_na_neighbours(9, 9, 3, 3, false, idx, pb) == -1);
    CHECK(lr_na_neighbours(8, 9, 3, 3, false, idx, NULL) == 3);
}

/* ---- fast against reference ---------------------------------------------------------- */

typedef struct {
    int64_t k, d, extra; /* length (each axis) = k * d + extra */
    int64_t D;
} shape_case;

/* Compares fn with its reference on one problem at every CPU level; returns the worst error. */
static double worst_over_levels(bool two_d, const lr_na_params *np, problem *p, const char *what)
{
    na_fn fast = two_d ? lr_na2d : lr_na1d, ref = two_d ? lr_na2d_ref : lr_na1d_ref;
    lr_ctx *rctx = make_ctx(2, LR_CPU_REF);
    double worst = 0;
    if (!rctx || run(ref, rctx, np, p, &p->ref) != LR_OK) {
        printf("  %s: reference failed: %s\n", what, rctx ? lr_ctx_last_error(rctx) : "no context");
        lr_ctx_destroy(rctx);
        return INFINITY;
    }
    lr_ctx_destroy(rctx);
    for (int level = LR_CPU_REF; level <= LR_CPU_AVX512; level++) {
        lr_ctx *ctx = make_ctx(2, (lr_cpu_level)level);
        if (!ctx)
            return INFINITY;
        if ((int)lr_ctx_cpu(ctx) == level) {
            lr_status s = run(fast, ctx, np, p, &p->out);
            double e = s == LR_OK ? rel_error(&p->out, &p->ref, &p->v) : INFINITY;
            if (s != LR_OK)
                printf("  %s: %s\n", what, lr_ctx_last_error(ctx));
            if (!(e <= TOL) || !padding_intact(&p->out))
                printf("  %s at %s: error %.3g\n", what, lr_cpu_level_name((lr_cpu_level)level), e);
            if (!padding_intact(&p->out))
                e = INFINITY;
            worst = fmax(worst, e);
        }
        lr_ctx_destroy(ctx);
    }
    return worst;
}

static void test_na1d_matches_reference(void)
{
    static const shape_case cases[] = {
        {3, 1, 0, 16},  {3, 2, 1, 5},   {3, 3, 37, 33}, {5, 1, 1, 7},    {5, 2, 0, 64},  {5, 3, 19, 31},
        {7, 1, 50, 32}, {7, 2, 3, 17},  {7, 3, 0, 9},   {13, 1, 0, 48},  {13, 2, 7, 3},  {13, 3, 40, 65},
        {1, 1, 0, 8},   {1, 3, 5, 8},   {65, 1, 70, 32}, {65, 2, 1, 19}, {257, 1, 300, 64}, {257, 1, 0, 24},
    };
    double worst = 0;
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++)
        for (int variant = 0; variant < 3; variant++) {
            const shape_case *sc = &cases[c];
            bool with_rpb = variant == 1, causal = variant == 2;
            lr_na_params np = lr_na_default_params();
            np.kernel_size = sc->k;
            np.dilation = sc->d;
            np.causal = causal;
            np.scale = variant == 1 ? 0.3f : 0.0f;
            int64_t L = sc->k * sc->d + sc->extra;
            problem p = problem_new(false, 2, 2, 1, L, sc->D, sc->D + (variant == 0 ? 5 : 0), sc->k, with_rpb);
            if (with_rpb)
                np.rpb = &p.rpb;
            char what[128];
            snprintf(what, sizeof what, "1d k %lld d %lld L %lld D %lld %s", (long long)sc->k, (long long)sc->d,
                     (long long)L, (long long)sc->D, causal ? "causal" : with_rpb ? "rpb" : "plain");
            double e = worst_over_levels(false, &np, &p, what);
            CHECKF(e <= TOL, "%s: error %.3g", what, e);
            worst = fmax(worst, e);
            problem_free(&p);
        }
    printf("  worst 1d error %.3g\n", worst);
}

static void test_na2d_matches_reference(void)
{
    static const shape_case cases[] = {
        {3, 1, 0, 16}, {3, 2, 1, 5}, {3, 3, 4, 33}, {5, 1, 1, 7},  {5, 2, 0, 32},
        {7, 1, 9, 32}, {7, 2, 3, 17}, {7, 3, 0, 9}, {13, 1, 0, 20}, {13, 2, 3, 3},
    };
    double worst = 0;
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++)
        for (int with_rpb = 0; with_rpb <= 1; with_rpb++) {
            const shape_case *sc = &cases[c];
            lr_na_params np = lr_na_default_params();
            np.kernel_size = sc->k;
            np.dilation = sc->d;
            int64_t Y = sc->k * sc->d + sc->extra, X = sc->k * sc->d + (sc->extra + 5) % 7;
            problem p = problem_new(true, 1, 2, Y, X, sc->D, sc->D, sc->k, with_rpb);
            if (with_rpb)
                np.rpb = &p.rpb;
            char what[128];
            snprintf(what, sizeof what, "2d k %lld d %lld %lldx%lld D %lld %s", (long long)sc->k, (long long)sc->d,
                     (long long)Y, (long long)X, (long long)sc->D, with_rpb ? "rpb" : "plain");
            double e = worst_over_levels(true, &np, &p, what);
            CHECKF(e <= TOL, "%s: error %.3g", what, e);
            worst = fmax(worst, e);
            problem_free(&p);
        }
    printf("  worst 2d error %.3g\n", worst);
}

/* ---- against masked softmax attention ------------------------------------------------ */

/* out of lr_na{1,2}d vs lr_attention_ref on the same rows with a bias [1, H, N, N] that is
 * -inf outside each query's neighbours and the rpb entry inside; the neighbour count of every
 * query is checked on the way. N = Y * X positions, row-major. */
static void compare_with_masked(bool two_d, int64_t k, int64_t d, int64_t Y, int64_t X, bool causal, bool with_rpb)
{
    int64_t H = 2, D = 12, N = Y * X, w = 2 * k - 1;
    problem p = problem_new(two_d, 1, H, Y, X, D, D, k, with_rpb);
    lr_na_params np = lr_na_default_params();
    np.kernel_size = k;
    np.dilation = d;
    np.causal = causal;
    if (with_rpb)
        np.rpb = &p.rpb;
    float *bias = malloc((size_t)(H * N * N) * sizeof(float));
    int64_t iy[64], py[64], ix[64], px[64];
    for (int64_t i = 0; i < H * N * N; i++)
        bias[i] = -INFINITY;
    for (int64_t h = 0; h < H; h++)
        for (int64_t y = 0; y < Y; y++)
            for (int64_t x = 0; x < X; x++) {
                int64_t ny = two_d ? lr_na_neighbours(y, Y, k, d, false, iy, py) : 1;
                int64_t nx = lr_na_neighbours(x, X, k, d, causal, ix, px);
                if (!two_d)
                    iy[0] = py[0] = 0;
                CHECK(ny == (two_d ? k : 1) && nx == (causal ? (x / d + 1 < k ? x / d + 1 : k) : k));
                for (int64_t a = 0; a < ny; a++)
                    for (int64_t c = 0; c < nx; c++) {
                        float b = with_rpb ? p.rpb_mem[(h * (two_d ? w : 1) + py[a]) * w + px[c]] : 0.0f;
                        bias[(h * N + y * X + x) * N + iy[a] * X + ix[c]] = b;
                    }
            }
    /* the same data as [1, H, N, D] for lr_attention_ref: the 2D storage is [Y, X, H, D + PAD] */
    lr_tensor q = p.q.t, kk = p.k.t, v = p.v.t, ref = p.ref.t;
    lr_tensor *flat[4] = {&q, &kk, &v, &ref};
    for (int i = 0; i < 4 && two_d; i++) {
        lr_tensor *t = flat[i];
        int64_t hs = t->stride[0], xs = t->stride[2];
        t->shape[0] = 1;
        t->shape[1] = H;
        t->shape[2] = N;
        t->stride[0] = N * X * hs;
        t->stride[1] = hs;
        t->stride[2] = xs;
    }
    int64_t bshape[4] = {1, H, N, N};
    lr_tensor bt = lr_tensor_from(bias, LR_F32, 4, bshape);
    lr_attn_params ap = lr_attn_default_params();
    ap.bias = &bt;
    lr_ctx *ctx = make_ctx(2, LR_CPU_AVX512);
    REQUIRE(ctx);
    CHECK(lr_attention_ref(ctx, &ap, &q, &kk, &v, &ref) == LR_OK);
    CHECK(run(two_d ? lr_na2d : lr_na1d, ctx, &np, &p, &p.out) == LR_OK);
    double e = rel_error(&p.out, &p.ref, &p.v);
    CHECKF(e <= TOL, "%s k %lld d %lld %lldx%lld%s%s: error %.3g vs masked attention", two_d ? "2d" : "1d",
           (long long)k, (long long)d, (long long)Y, (long long)X, causal ? " causal" : "", with_rpb ? " rpb" : "", e);
    lr_ctx_destroy(ctx);
    free(bias);
    problem_free(&p);
}

static void test_matches_masked_attention(void)
{
    for (int with_rpb = 0; with_rpb <= 1; with_rpb++) {
        compare_with_masked(false, 3, 1, 1, 3, false, with_rpb);
        compare_with_masked(false, 5, 2, 1, 23, false, with_rpb);
        compare_with_masked(false, 7, 3, 1, 40, false, with_rpb);
        compare_with_masked(false, 13, 1, 1, 60, false, with_rpb);
        compare_with_masked(true, 3, 1, 5, 4, false, with_rpb);
        compare_with_masked(true, 3, 2, 7, 6, false, with_rpb);
        compare_with_masked(true, 5, 3, 15, 16, false, with_rpb);
        compare_with_masked(true, 7, 1, 9, 7, false, with_rpb);
        compare_with_masked(true, 7, 2, 14, 17, false, with_rpb);
    }
    compare_with_masked(false, 5, 2, 1, 31, true, false);
    compare_with_masked(false, 13, 1, 1, 40, true, false);
    compare_with_masked(false, 13, 2, 1, 10, true, false); /* causal needs no L >= k * d */
}

/* ---- DiNA is NA on each dilation sub-grid -------------------------------------------- */

static void test_dilation_is_na_on_subgrids(void)
{
    int64_t k = 5, d = 3, L = 47, D = 10;
    problem p = problem_new(false, 1, 2, 1, L, D, D, k, true);
    lr_na_params np = lr_na_default_params();
    np.kernel_size = k;
    np.dilation = d;
    np.rpb = &p.rpb;
    lr_ctx *ctx = make_ctx(2, LR_CPU_AVX512);
    REQUIRE(ctx);
    CHECK(lr_na1d_ref(ctx, &np, &p.q.t, &p.k.t, &p.v.t, &p.ref.t) == LR_OK);
    CHECK(lr_na1d(ctx, &np, &p.q.t, &p.k.t, &p.v.t, &p.out.t) == LR_OK);
    np.dilation = 1;
    for (int64_t rho = 0; rho < d; rho++) {
        int64_t len = (L - rho + d - 1) / d;
        lr_tensor sub[4];
        const lr_tensor *src[4] = {&p.q.t, &p.k.t, &p.v.t, &p.ref.t};
        for (int i = 0; i < 4; i++) {
            sub[i] = *src[i];
            sub[i].data = (float *)src[i]->data + rho * src[i]->stride[2];
            sub[i].shape[2] = len;
            sub[i].stride[2] *= d;
        }
        /* NA with d = 1 on the sub-grid must give what DiNA gave there: overwrite ref's rows */
        float *dina = malloc((size_t)(len * 2 * D) * sizeof(float));
        for (int64_t h = 0; h < 2; h++)
            for (int64_t i = 0; i < len; i++)
                memcpy(dina + (h * len + i) * D, view_at(&p.ref, 0, h, i * d + rho), (size_t)D * sizeof(float));
        CHECK(lr_na1d_ref(ctx, &np, &sub[0], &sub[1], &sub[2], &sub[3]) == LR_OK);
        double e = 0;
        for (int64_t h = 0; h < 2; h++)
            for (int64_t i = 0; i < len; i++)
                for (int64_t c = 0; c < D; c++)
                    e = fmax(e, fabs(dina[(h * len + i) * D + c] - view_at(&p.ref, 0, h, i * d + rho)[c]));
        CHECKF(e <= 1e-6, "residue %lld: DiNA and NA on the sub-grid differ by %.3g", (long long)rho, e);
        free(dina);
    }
    CHECK(rel_error(&p.out, &p.ref, &p.v) <= TOL);
    lr_ctx_destroy(ctx);
    problem_free(&p);
}

/* ---- determinism --------------------------------------------------------------------- */

static void test_bit_identical_across_threads(void)
{
    for (int two_d = 0; two_d <= 1; two_d++) {
        int64_t k = two_d ? 7 : 65, d = 2;
        problem p = two_d ? problem_new(true, 1, 3, 17, 19, 32, 32, k, true)
                          : problem_new(false, 2, 3, 1, 200, 32, 32, k, true);
        lr_na_params np = lr_na_default_params();
        np.kernel_size = k;
        np.dilation = d;
        np.rpb = &p.rpb;
        na_fn fn = two_d ? lr_na2d : lr_na1d;
        for (int level = LR_CPU_REF; level <= LR_CPU_AVX512; level++) {
            lr_ctx *one = make_ctx(1, (lr_cpu_level)level);
            REQUIRE(one);
            if ((int)lr_ctx_cpu(one) == level) {
                CHECK(run(fn, one, &np, &p, &p.ref) == LR_OK);
                for (int threads = 2; threads <= 3; threads++) {
                    lr_ctx *ctx = make_ctx(threads, (lr_cpu_level)level);
                    REQUIRE(ctx);
                    for (size_t i = 0; i < p.out.n_mem; i++)
                        p.out.mem[i] = OUT_SENTINEL;
                    CHECK(run(fn, ctx, &np, &p, &p.out) == LR_OK);
                    CHECKF(same_bits(&p.out, &p.ref), "%s %s: %d threads differ from 1", two_d ? "2d" : "1d",
                           lr_cpu_level_name((lr_cpu_level)level), threads);
                    lr_ctx_destroy(ctx);
                }
            }
            lr_ctx_destroy(one);
        }
        problem_free(&p);
    }
}

/* ---- argument errors ----------------------------------------------------------------- */

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
    problem p = problem_new(false, 1, 2, 1, 20, 8, 8, 3, true);
    problem p2 = problem_new(true, 1, 2, 9, 12, 8, 8, 3, true);
    lr_na_params np = lr_na_default_params();
    np.kernel_size = 4;
    CHECK(fails_with(run(lr_na1d, ctx, &np, &p, &p.out), ctx, "odd"));
    np.kernel_size = 3;
    np.dilation = 0;
    CHECK(fails_with(run(lr_na1d, ctx, &np, &p, &p.out), ctx, "dilation"));
    np.dilation = 7;
    CHECK(fails_with(run(lr_na1d, ctx, &np, &p, &p.out), ctx, "shorter than kernel_size * dilation"));
    CHECK(fails_with(run(lr_na1d_ref, ctx, &np, &p, &p.out), ctx, "shorter than kernel_size * dilation"));
    np.dilation = 4;
    CHECK(fails_with(run(lr_na2d, ctx, &np, &p2, &p2.out), ctx, "height 9"));
    np.dilation = 1;
    np.scale = -1;
    CHECK(fails_with(run(lr_na1d, ctx, &np, &p, &p.out), ctx, "scale"));
    np.scale = 0;
    np.rpb = &p2.rpb;
    CHECK(fails_with(run(lr_na1d, ctx, &np, &p, &p.out), ctx, "rpb must be f32 [2, 5]"));
    np.rpb = &p.rpb;
    CHECK(fails_with(run(lr_na2d, ctx, &np, &p2, &p2.out), ctx, "rpb must be f32 [2, 5, same]"));
    np.causal = true;
    CHECK(fails_with(run(lr_na1d, ctx, &np, &p, &p.out), ctx, "causal"));
    np.rpb = NULL;
    CHECK(fails_with(run(lr_na2d, ctx, &np, &p2, &p2.out), ctx, "1D only"));
    np.causal = false;
    lr_tensor bad = p.k.t;
    bad.shape[2] = 19;
    CHECK(fails_with(lr_na1d(ctx, &np, &p.q.t, &bad, &p.v.t, &p.out.t), ctx, "shapes differ"));
    bad = p.q.t;
    bad.stride[3] = 2;
    CHECK(fails_with(lr_na1d(ctx, &np, &bad, &p.k.t, &p.v.t, &p.out.t), ctx, "contiguous"));
    bad = p.q.t;
    bad.dtype = LR_BF16;
    CHECK(fails_with(lr_na1d(ctx, &np, &bad, &p.k.t, &p.v.t, &p.out.t), ctx, "f32"));
    CHECK(fails_with(lr_na1d(ctx, &np, NULL, &p.k.t, &p.v.t, &p.out.t), ctx, "missing"));
    /* the defaults (k = 7) work on a long enough input */
    CHECK(lr_na1d(ctx, NULL, &p.q.t, &p.k.t, &p.v.t, &p.out.t) == LR_OK);
    problem_free(&p);
    problem_free(&p2);
    lr_ctx_destroy(ctx);
}

int main(void)
{
    seed_random(11);
    RUN(test_neighbours);
    RUN(test_na1d_matches_reference);
    RUN(test_na2d_matches_reference);
    RUN(test_matches_masked_attention);
    RUN(test_dilation_is_na_on_subgrids);
    RUN(test_bit_identical_across_threads);
    RUN(test_argument_errors);
    return CHECK_DONE();
}
