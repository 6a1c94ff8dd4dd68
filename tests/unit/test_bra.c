/* Bi-level routing attention: parity with the PyTorch implementation of BiFormer's semantics
 * (tests/fixtures/bra, tools/make_bra_fixtures.py: outputs within 1e-5, routes equal);
 * lr_bra against lr_bra_ref at every CPU level this machine has (one region and one token up
 * to regions of 144 tokens split into several query tiles, head dims off the vector width,
 * Cv != Cqk, topk from 1 to every region, BF16 inputs, strided views of one qkv projection,
 * explicit scales); both against lr_attention_ref with a bias of -inf outside the routed
 * regions; the routing rule (ties to the lower index, the default scale Cqk^-0.5 including a
 * hand-computed case); bit-identical output for 1, 2 and 3 threads; caller workspaces; and
 * argument errors.
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
#include "longrange/bra.h"
#include "longrange/core.h"
#include "longrange/model.h"
#include "longrange/tensor.h"

#define TOL 2e-6
#define FIXTURE_TOL 1e-5
#define OUT_SENTINEL -777.0f

/* One buffer [B, Y, X, 2 Cqk + Cv + pad] like a qkv projection, q, k, v as views of it
 * (pad NaN), and two outputs [B, Y, X, Cv + 3] whose extra columns hold a sentinel. */
typedef struct {
    int64_t B, Y, X, Cqk, Cv;
    float *qkv, *out_mem, *ref_mem;
    uint16_t *qkv16; /* the same values as bf16, when asked */
    lr_tensor q, k, v, out, ref;
    int64_t row; /* floats per token of the qkv buffer */
} problem;

static lr_tensor view_of(void *data, lr_dtype dt, int64_t B, int64_t Y, int64_t X, int64_t C, int64_t row)
{
    lr_tensor t = {.data = data, .dtype = dt, .ndim = 4};
    int64_t shape[4] = {B, Y, X, C}, stride[4] = {Y * X * row, X * row, row, 1};
    memcpy(t.shape, shape, sizeof shape);
    memcpy(t.stride, stride, sizeof stride);
    return t;
}

static problem problem_new(int64_t B, int64_t Y, int64_t X, int64_t Cqk, int64_t Cv, bool bf16)
{
    problem p = {.B = B, .Y = Y, .X = X, .Cqk = Cqk, .Cv = Cv};
    p.row = 2 * Cqk + Cv + 5;
    size_t n = (size_t)(B * Y * X * p.row), no = (size_t)(B * Y * X * (Cv + 3));
    p.qkv = malloc(n * sizeof(float));
    p.qkv16 = bf16 ? malloc(n * sizeof(uint16_t)) : NULL;
    p.out_mem = malloc(no * sizeof(float));
    p.ref_mem = malloc(no * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        int64_t c = (int64_t)(i % (size_t)p.row);
        float x = c < 2 * Cqk + Cv ? random_float() : NAN;
        if (bf16) {
            p.qkv16[i] = lr_f32_to_bf16(x);
            x = lr_bf16_to_f32(p.qkv16[i]);
        }
        p.qkv[i] = x;
    }
    for (size_t i = 0; i < no; i++)
        p.out_mem[i] = p.ref_mem[i] = OUT_SENTINEL;
    void *base = bf16 ? (void *)p.qkv16 : (void *)p.qkv;
    size_t es = bf16 ? 2 : 4;
    lr_dtype dt = bf16 ? LR_BF16 : LR_F32;
    p.q = view_of(base, dt, B, Y, X, Cqk, p.row);
    p.k = view_of((char *)base + es * (size_t)Cqk, dt, B, Y, X, Cqk, p.row);
    p.v = view_of((char *)base + es * (size_t)(2 * Cqk), dt, B, Y, X, Cv, p.row);
    p.out = view_of(p.out_mem, LR_F32, B, Y, X, Cv, Cv + 3);
    p.ref = view_of(p.ref_mem, LR_F32, B, Y, X, Cv, Cv + 3);
    return p;
}

static void problem_free(problem *p)
{
    free(p->qkv);
    free(p->qkv16);
    free(p->out_mem);
    free(p->ref_mem);
}

static float *token(const lr_tensor *t, int64_t b, int64_t y, int64_t x)
{
    return (float *)t->data + b * t->stride[0] + y * t->stride[1] + x * t->stride[2];
}

/* max |out - ref| / max |v| (over the F32 copy of the values); INFINITY on a non-finite output
 * or a sentinel overwritten. */
static double rel_error(const problem *p, const lr_tensor *out, const lr_tensor *ref)
{
    double m = 0, vmax = 0;
    for (int64_t b = 0; b < p->B; b++)
        for (int64_t y = 0; y < p->Y; y++)
            for (int64_t x = 0; x < p->X; x++) {
                const float *o = token(out, b, y, x), *r = token(ref, b, y, x);
                const float *v = p->qkv + ((b * p->Y + y) * p->X + x) * p->row + 2 * p->Cqk;
                for (int64_t e = 0; e < p->Cv; e++) {
                    if (!isfinite(o[e]))
                        return INFINITY;
                    m = fmax(m, fabs((double)o[e] - (double)r[e]));
                    vmax = fmax(vmax, fabs(v[e]));
                }
                for (int e = 0; e < 3; e++)
                    if (o[p->Cv + e] != OUT_SENTINEL)
                        return INFINITY;
            }
    return m / (vmax > 0 ? vmax : 1);
}

static lr_tensor routes_tensor(int32_t *mem, int64_t B, int64_t R, int64_t topk)
{
    int64_t shape[3] = {B, R, topk};
    return lr_tensor_from(mem, LR_I32, 3, shape);
}

/* ---- parity with the PyTorch fixtures ------------------------------------------------ */

static void check_fixture(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "tests/fixtures/bra/%s.safetensors", name);
    lr_ctx *ctx = make_ctx(2, LR_CPU_AVX512);
    REQUIRE(ctx);
    lr_model *m = NULL;
    if (lr_model_open(ctx, path, &m) != LR_OK) {
        CHECKF(false, "%s", lr_ctx_last_error(ctx));
        lr_ctx_destroy(ctx);
        return;
    }
    int64_t n_win = 0, topk = 0, heads = 0;
    double scale = 0;
    lr_tensor q, k, v, want;
    bool ok = lr_model_meta_int(ctx, m, "n_win", false, 0, &n_win) == LR_OK &&
              lr_model_meta_int(ctx, m, "topk", false, 0, &topk) == LR_OK &&
              lr_model_meta_int(ctx, m, "num_heads", false, 0, &heads) == LR_OK &&
              lr_model_meta_float(ctx, m, "scale", false, 0, &scale) == LR_OK &&
              lr_model_get(ctx, m, "q", LR_F32, 4, NULL, &q) == LR_OK &&
              lr_model_get(ctx, m, "k", LR_F32, 4, NULL, &k) == LR_OK &&
              lr_model_get(ctx, m, "v", LR_F32, 4, NULL, &v) == LR_OK &&
              lr_model_get(ctx, m, "out", LR_F32, 4, NULL, &want) == LR_OK;
    const lr_model_tensor *rt = lr_model_find(m, "routes");
    int64_t B = q.shape[0], R = n_win * n_win;
    ok = ok && rt && strcmp(rt->dtype_name, "I64") == 0 && rt->ndim == 3 && rt->shape[0] == B &&
         rt->shape[1] == R && rt->shape[2] == topk;
    CHECKF(ok, "%s: %s", name, lr_ctx_last_error(ctx));
    if (ok) {
        size_t n = (size_t)lr_tensor_numel(&want);
        float *got = malloc(n * sizeof(float));
        int32_t *routes = malloc((size_t)(B * R * topk) * sizeof(int32_t));
        lr_tensor out = lr_tensor_from(got, LR_F32, 4, want.shape), rtens = routes_tensor(routes, B, R, topk);
        lr_bra_params p = lr_bra_default_params();
        p.n_win = n_win;
        p.topk = topk;
        p.num_heads = heads;
        p.scale = (float)scale;
        p.routes = &rtens;
        for (int pass = 0; pass < 2; pass++) {
            memset(got, 0, n * sizeof(float));
            memset(routes, 0xff, (size_t)(B * R * topk) * sizeof(int32_t));
            lr_status s = (pass ? lr_bra_ref : lr_bra)(ctx, &p, &q, &k, &v, &out);
            CHECKF(s == LR_OK, "%s: %s", name, lr_ctx_last_error(ctx));
            double e = 0;
            for (size_t i = 0; i < n; i++)
                e = fmax(e, fabs((double)got[i] - (double)((float *)want.data)[i]));
            CHECKF(e <= FIXTURE_TOL, "%s (%s): max error %.3g vs PyTorch", name, pass ? "ref" : "fast", e);
            int64_t differ = 0;
            for (int64_t i = 0; i < B * R * topk; i++) {
                int64_t r;
                memcpy(&r, (const char *)rt->data + 8 * i, 8);
                differ += r != routes[i];
            }
            CHECKF(differ == 0, "%s (%s): %lld routes differ from torch.topk", name, pass ? "ref" : "fast",
                   (long long)differ);
            if (pass == 0)
                printf("  %s: max error %.3g vs PyTorch\n", name, e);
        }
        free(got);
        free(routes);
    }
    lr_model_close(m);
    lr_ctx_destroy(ctx);
}

static void test_pytorch_parity(void)
{
    static const char *const names[] = {"s2_top1", "s4_top3", "s2_all", "wide_cv8", "s3_scale"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        check_fixture(names[i]);
}

/* ---- fast against reference ---------------------------------------------------------- */

typedef struct {
    int64_t B, Y, X, Cqk, Cv, heads, S, topk;
    float scale;
    bool bf16;
} bra_case;

static const bra_case cases[] = {
    {1, 1, 1, 8, 8, 1, 1, 1, 0, false},         /* one token */
    {2, 3, 5, 6, 4, 2, 1, 1, 0, false},         /* one region: full attention */
    {2, 6, 9, 51, 15, 3, 3, 1, 0, false},       /* 2 x 3 regions, head dims 17 and 5 */
    {1, 6, 9, 51, 15, 3, 3, 9, 0, true},        /* every region, bf16 */
    {2, 20, 12, 32, 32, 2, 4, 3, 0.3f, false},  /* 5 x 3 regions */
    {1, 16, 16, 64, 64, 1, 2, 2, 0, false},     /* 64-token regions: 2 x 32-row tiles on avx2 */
    {1, 24, 24, 40, 24, 2, 2, 3, 0, true},      /* 144-token regions: several tiles each */
    {1, 14, 14, 96, 96, 3, 7, 4, 0, false},     /* BiFormer stage 3 at 224: 2 x 2 regions */
    {2, 8, 8, 16, 16, 2, 8, 5, 2.0f, false},    /* one-token regions */
    {1, 12, 8, 128, 128, 2, 4, 16, 0, false},   /* head dim 64, every region */
};

static void test_matches_reference(void)
{
    seed_random(7);
    double worst = 0;
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        const bra_case *bc = &cases[c];
        problem p = problem_new(bc->B, bc->Y, bc->X, bc->Cqk, bc->Cv, bc->bf16);
        int64_t R = bc->S * bc->S;
        int32_t *r_ref = malloc((size_t)(bc->B * R * bc->topk) * sizeof(int32_t));
        int32_t *r_fast = malloc((size_t)(bc->B * R * bc->topk) * sizeof(int32_t));
        lr_tensor rt_ref = routes_tensor(r_ref, bc->B, R, bc->topk), rt_fast = routes_tensor(r_fast, bc->B, R, bc->topk);
        lr_bra_params bp = lr_bra_default_params();
        bp.n_win = bc->S;
        bp.topk = bc->topk;
        bp.num_heads = bc->heads;
        bp.scale = bc->scale;
        bp.routes = &rt_ref;
        char what[160];
        snprintf(what, sizeof what, "B %lld %lldx%lld Cqk %lld Cv %lld heads %lld S %lld topk %lld%s",
                 (long long)bc->B, (long long)bc->Y, (long long)bc->X, (long long)bc->Cqk, (long long)bc->Cv,
                 (long long)bc->heads, (long long)bc->S, (long long)bc->topk, bc->bf16 ? " bf16" : "");
        lr_ctx *rctx = make_ctx(2, LR_CPU_REF);
        REQUIRE(rctx);
        CHECKF(lr_bra_ref(rctx, &bp, &p.q, &p.k, &p.v, &p.ref) == LR_OK, "%s: %s", what, lr_ctx_last_error(rctx));
        lr_ctx_destroy(rctx);
        bp.routes = &rt_fast;
        for (int level = LR_CPU_REF; level <= LR_CPU_AVX512; level++) {
            lr_ctx *ctx = make_ctx_at(2, (lr_cpu_level)level);
            if (!ctx)
                continue;
            memset(r_fast, 0xff, (size_t)(bc->B * R * bc->topk) * sizeof(int32_t));
            lr_status s = lr_bra(ctx, &bp, &p.q, &p.k, &p.v, &p.out);
            CHECKF(s == LR_OK, "%s: %s", what, lr_ctx_last_error(ctx));
            double e = rel_error(&p, &p.out, &p.ref);
            CHECKF(e <= TOL, "%s at %s: error %.3g", what, lr_cpu_level_name((lr_cpu_level)level), e);
            CHECKF(memcmp(r_ref, r_fast, (size_t)(bc->B * R * bc->topk) * sizeof(int32_t)) == 0,
                   "%s at %s: routes differ from the reference's", what, lr_cpu_level_name((lr_cpu_level)level));
            worst = fmax(worst, e);
            lr_ctx_destroy(ctx);
        }
        /* every route is a region, none twice */
        for (int64_t i = 0; i < bc->B * R; i++)
            for (int64_t t = 0; t < bc->topk; t++) {
                int32_t a = r_ref[i * bc->topk + t];
                CHECK(a >= 0 && a < R);
                for (int64_t u = 0; u < t; u++)
                    CHECK(r_ref[i * bc->topk + u] != a);
            }
        free(r_ref);
        free(r_fast);
        problem_free(&p);
    }
    printf("  worst error %.3g\n", worst);
}

/* ---- against masked softmax attention ------------------------------------------------ */

/* lr_bra vs lr_attention_ref over the whole image ([B, heads, Y * X, d] views of the same
 * storage) with a bias [B, 1, L, L] of 0 where the key's region is a route of the query's
 * region and -inf elsewhere, and the scale Cqk^-0.5 passed explicitly. */
static void compare_with_masked(int64_t B, int64_t Y, int64_t X, int64_t C, int64_t heads, int64_t S, int64_t topk)
{
    problem p = problem_new(B, Y, X, C, C, false);
    int64_t R = S * S, L = Y * X, rh = Y / S, rw = X / S, d = C / heads;
    int32_t *routes = malloc((size_t)(B * R * topk) * sizeof(int32_t));
    float *bias = malloc((size_t)(B * L * L) * sizeof(float));
    lr_tensor rt = routes_tensor(routes, B, R, topk);
    lr_bra_params bp = lr_bra_default_params();
    bp.n_win = S;
    bp.topk = topk;
    bp.num_heads = heads;
    bp.routes = &rt;
    lr_ctx *ctx = make_ctx(2, LR_CPU_AVX512);
    REQUIRE(ctx);
    CHECK(lr_bra(ctx, &bp, &p.q, &p.k, &p.v, &p.out) == LR_OK);
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i < L; i++) {
            int64_t ri = i / X / rh * S + i % X / rw;
            for (int64_t j = 0; j < L; j++) {
                int64_t rj = j / X / rh * S + j % X / rw;
                bool seen = false;
                for (int64_t t = 0; t < topk; t++)
                    seen |= routes[(b * R + ri) * topk + t] == rj;
                bias[(b * L + i) * L + j] = seen ? 0.0f : -INFINITY;
            }
        }
    lr_tensor q = p.q, k = p.k, v = p.v, ref = p.ref;
    lr_tensor *flat[4] = {&q, &k, &v, &ref};
    for (int i = 0; i < 4; i++) { /* [B, Y, X, heads * d] -> [B, heads, Y * X, d] */
        lr_tensor *t = flat[i];
        int64_t sx = t->stride[2];
        t->shape[1] = heads;
        t->shape[2] = L;
        t->shape[3] = d;
        t->stride[1] = d;
        t->stride[2] = sx;
    }
    int64_t bshape[4] = {B, 1, L, L};
    lr_tensor bt = lr_tensor_from(bias, LR_F32, 4, bshape);
    lr_attn_params ap = lr_attn_default_params();
    ap.bias = &bt;
    ap.scale = (float)(1.0 / sqrt((double)C));
    CHECK(lr_attention_ref(ctx, &ap, &q, &k, &v, &ref) == LR_OK);
    double e = rel_error(&p, &p.out, &p.ref);
    CHECKF(e <= TOL, "B %lld %lldx%lld C %lld heads %lld S %lld topk %lld: error %.3g vs masked attention",
           (long long)B, (long long)Y, (long long)X, (long long)C, (long long)heads, (long long)S, (long long)topk, e);
    lr_ctx_destroy(ctx);
    free(routes);
    free(bias);
    problem_free(&p);
}

static void test_matches_masked_attention(void)
{
    seed_random(11);
    compare_with_masked(2, 8, 8, 16, 2, 2, 1);
    compare_with_masked(2, 8, 12, 24, 3, 4, 3);
    compare_with_masked(1, 9, 6, 10, 2, 3, 4);
    compare_with_masked(1, 16, 16, 32, 1, 4, 16);
}

/* ---- the routing rule ---------------------------------------------------------------- */

/* Equal affinities everywhere (q and k constant): every region routes to 0, 1, ..., topk - 1.
 * Then a hand-computed case: per-region constant q and k of one channel, so that the
 * affinities are products of the constants and the attention output is the mean of the
 * routed values (all scores of a row equal). */
static void test_routing_rule(void)
{
    lr_ctx *ctx = make_ctx(2, LR_CPU_AVX512);
    REQUIRE(ctx);
    int64_t S = 3, R = 9, topk = 4, Y = 6, X = 6, C = 4;
    float q[6 * 6 * 4], k[6 * 6 * 4], v[6 * 6 * 4], out[6 * 6 * 4];
    int32_t routes[9 * 4];
    int64_t shape[4] = {1, Y, X, C};
    lr_tensor tq = lr_tensor_from(q, LR_F32, 4, shape), tk = lr_tensor_from(k, LR_F32, 4, shape);
    lr_tensor tv = lr_tensor_from(v, LR_F32, 4, shape), to = lr_tensor_from(out, LR_F32, 4, shape);
    lr_tensor rt = routes_tensor(routes, 1, R, topk);
    lr_bra_params bp = lr_bra_default_params();
    bp.n_win = S;
    bp.topk = topk;
    bp.num_heads = 2;
    bp.routes = &rt;
    for (int i = 0; i < 6 * 6 * 4; i++) {
        q[i] = k[i] = 0.5f;
        v[i] = random_float();
    }
    for (int pass = 0; pass < 2; pass++) {
        CHECK((pass ? lr_bra_ref : lr_bra)(ctx, &bp, &tq, &tk, &tv, &to) == LR_OK);
        for (int64_t r = 0; r < R; r++)
            for (int64_t t = 0; t < topk; t++)
                CHECKF(routes[r * topk + t] == t, "ties: region %lld route %lld is %d", (long long)r, (long long)t,
                       routes[r * topk + t]);
    }
    /* region r has q = k = a_r in channel 0 (others 0), a_r = r - 4: the affinity of r to s is
     * a_r a_s, so regions with a_r > 0 prefer the largest a_s (8, 7, 6, 5), those with a_r < 0
     * the smallest (0, 1, 2, 3), and region 4 (a = 0) ties everywhere (0, 1, 2, 3). */
    for (int64_t y = 0; y < Y; y++)
        for (int64_t x = 0; x < X; x++) {
            int64_t r = y / 2 * S + x / 2;
            for (int64_t e = 0; e < C; e++)
                q[(y * X + x) * C + e] = k[(y * X + x) * C + e] = e == 0 ? (float)(r - 4) : 0.0f;
        }
    for (int pass = 0; pass < 2; pass++) {
        CHECK((pass ? lr_bra_ref : lr_bra)(ctx, &bp, &tq, &tk, &tv, &to) == LR_OK);
        for (int64_t r = 0; r < R; r++)
            for (int64_t t = 0; t < topk; t++) {
                int32_t want = (int32_t)(r > 4 ? 8 - t : t);
                CHECKF(routes[r * topk + t] == want, "region %lld route %lld: %d, want %d", (long long)r,
                       (long long)t, routes[r * topk + t], want);
            }
    }
    /* head 1 (channels 2, 3) has q = k = 0: its output is the plain mean of the routed values */
    double e = 0;
    for (int64_t y = 0; y < Y; y++)
        for (int64_t x = 0; x < X; x++) {
            int64_t r = y / 2 * S + x / 2;
            for (int64_t c = 2; c < 4; c++) {
                double sum = 0;
                for (int64_t t = 0; t < topk; t++) {
                    int64_t s = routes[r * topk + t];
                    for (int64_t u = 0; u < 4; u++)
                        sum += v[((s / S * 2 + u / 2) * X + s % S * 2 + u % 2) * C + c];
                }
                e = fmax(e, fabs(sum / 16.0 - out[(y * X + x) * C + c]));
            }
        }
    CHECKF(e <= 1e-6, "mean of routed values: error %.3g", e);
    lr_ctx_destroy(ctx);
}

/* The default scale is Cqk^-0.5 over all channels, not the head width: with 4 heads, scale 0
 * and scale 1 / sqrt(Cqk) give the same bits; 1 / sqrt(Cqk / 4) does not. */
static void test_default_scale(void)
{
    seed_random(5);
    problem p = problem_new(1, 8, 8, 32, 32, false);
    lr_ctx *ctx = make_ctx(2, LR_CPU_AVX512);
    REQUIRE(ctx);
    lr_bra_params bp = lr_bra_default_params();
    bp.n_win = 2;
    bp.topk = 2;
    bp.num_heads = 4;
    CHECK(lr_bra(ctx, &bp, &p.q, &p.k, &p.v, &p.ref) == LR_OK);
    bp.scale = (float)(1.0 / sqrt(32.0));
    CHECK(lr_bra(ctx, &bp, &p.q, &p.k, &p.v, &p.out) == LR_OK);
    CHECK(memcmp(p.out_mem, p.ref_mem, (size_t)(64 * 35) * sizeof(float)) == 0);
    bp.scale = (float)(1.0 / sqrt(8.0));
    CHECK(lr_bra(ctx, &bp, &p.q, &p.k, &p.v, &p.out) == LR_OK);
    CHECK(rel_error(&p, &p.out, &p.ref) > 1e-3);
    problem_free(&p);
    /* NULL parameters: BiLevelRoutingAttention's defaults (n_win 7, topk 4, 8 heads) */
    p = problem_new(1, 14, 21, 16, 24, false);
    CHECK(lr_bra(ctx, NULL, &p.q, &p.k, &p.v, &p.out) == LR_OK);
    CHECK(lr_bra_ref(ctx, NULL, &p.q, &p.k, &p.v, &p.ref) == LR_OK);
    CHECK(rel_error(&p, &p.out, &p.ref) <= TOL);
    lr_ctx_destroy(ctx);
    problem_free(&p);
}

/* ---- determinism and workspaces ------------------------------------------------------ */

static void test_threads_bit_identical(void)
{
    seed_random(3);
    problem p = problem_new(2, 28, 28, 64, 48, false);
    int64_t R = 16, topk = 4;
    lr_bra_params bp = lr_bra_default_params();
    bp.n_win = 4;
    bp.topk = topk;
    bp.num_heads = 4;
    int32_t routes[3][2 * 16 * 4];
    size_t n = (size_t)(2 * 28 * 28 * 51);
    float *first = malloc(n * sizeof(float));
    for (int threads = 1; threads <= 3; threads++) {
        lr_ctx *ctx = make_ctx(threads, LR_CPU_AVX512);
        REQUIRE(ctx);
        lr_tensor rt = routes_tensor(routes[threads - 1], 2, R, topk);
        bp.routes = &rt;
        CHECK(lr_bra(ctx, &bp, &p.q, &p.k, &p.v, &p.out) == LR_OK);
        if (threads == 1)
            memcpy(first, p.out_mem, n * sizeof(float));
        else
            CHECKF(memcmp(first, p.out_mem, n * sizeof(float)) == 0 &&
                       memcmp(routes[0], routes[threads - 1], sizeof routes[0]) == 0,
                   "%d threads differ from 1", threads);
        lr_ctx_destroy(ctx);
    }
    /* a caller's workspace: the same bits; too small a one is refused */
    lr_ctx *ctx = make_ctx(2, LR_CPU_AVX512);
    REQUIRE(ctx);
    bp.routes = NULL;
    size_t bytes = lr_bra_workspace_size(&bp, 2, 28, 28, 64, 48);
    CHECK(bytes >= (size_t)(2 * 16 * 64 * 16 + 2 * 28 * 28 * (64 + 48) * 4 + 2 * 16 * 4 * 4));
    double *ws = malloc(bytes);
    bp.workspace = ws;
    bp.workspace_size = bytes;
    for (size_t i = 0; i < n; i++)
        p.out_mem[i] = i % 51 < 48 ? 0.0f : OUT_SENTINEL;
    CHECK(lr_bra(ctx, &bp, &p.q, &p.k, &p.v, &p.out) == LR_OK);
    CHECK(memcmp(first, p.out_mem, n * sizeof(float)) == 0);
    bp.workspace_size = bytes - 1;
    CHECK(lr_bra(ctx, &bp, &p.q, &p.k, &p.v, &p.out) == LR_ERR_ARG);
    CHECK(strstr(lr_ctx_last_error(ctx), "workspace") != NULL);
    free(ws);
    free(first);
    lr_ctx_destroy(ctx);
    problem_free(&p);
}

/* ---- argument errors ----------------------------------------------------------------- */

static void expect_error(lr_ctx *ctx, const lr_bra_params *bp, const lr_tensor *q, const lr_tensor *k,
                         const lr_tensor *v, lr_tensor *out, const char *needle)
{
    for (int pass = 0; pass < 2; pass++) {
        lr_status s = (pass ? lr_bra_ref : lr_bra)(ctx, bp, q, k, v, out);
        CHECKF(s == LR_ERR_ARG && strstr(lr_ctx_last_error(ctx), needle),
               "expected an error about '%s', got %d: %s", needle, (int)s, lr_ctx_last_error(ctx));
    }
}

static void test_bad_arguments(void)
{
    lr_ctx *ctx = make_ctx(2, LR_CPU_AVX512);
    REQUIRE(ctx);
    problem p = problem_new(1, 6, 9, 12, 6, false);
    lr_bra_params bp = lr_bra_default_params();
    bp.n_win = 3;
    bp.topk = 2;
    bp.num_heads = 3;
    CHECK(lr_bra(ctx, &bp, &p.q, &p.k, &p.v, &p.out) == LR_OK);

    lr_bra_params b2 = bp;
    b2.n_win = 4;
    expect_error(ctx, &b2, &p.q, &p.k, &p.v, &p.out, "multiples of n_win");
    b2.n_win = 0;
    expect_error(ctx, &b2, &p.q, &p.k, &p.v, &p.out, "n_win");
    b2 = bp;
    b2.topk = 0;
    expect_error(ctx, &b2, &p.q, &p.k, &p.v, &p.out, "topk");
    b2.topk = 10;
    expect_error(ctx, &b2, &p.q, &p.k, &p.v, &p.out, "topk");
    b2 = bp;
    b2.num_heads = 4; /* divides 12 but not 6 */
    expect_error(ctx, &b2, &p.q, &p.k, &p.v, &p.out, "num_heads");
    b2 = bp;
    b2.scale = -1.0f;
    expect_error(ctx, &b2, &p.q, &p.k, &p.v, &p.out, "scale");
    b2.scale = INFINITY;
    expect_error(ctx, &b2, &p.q, &p.k, &p.v, &p.out, "scale");
    int32_t routes[2 * 9 * 2];
    lr_tensor rt = routes_tensor(routes, 2, 9, 2);
    b2 = bp;
    b2.routes = &rt;
    expect_error(ctx, &b2, &p.q, &p.k, &p.v, &p.out, "routes");

    lr_tensor t = p.k;
    t.shape[3] = 11;
    expect_error(ctx, &bp, &p.q, &t, &p.v, &p.out, "shapes differ");
    t = p.out;
    t.shape[2] = 8;
    expect_error(ctx, &bp, &p.q, &p.k, &p.v, &t, "shapes differ");
    t = p.v;
    t.dtype = LR_BF16;
    expect_error(ctx, &bp, &p.q, &p.k, &t, &p.out, "one dtype");
    t = p.out;
    t.dtype = LR_BF16;
    expect_error(ctx, &bp, &p.q, &p.k, &p.v, &t, "out must be f32");
    t = p.q;
    t.stride[3] = 2;
    expect_error(ctx, &bp, &t, &p.k, &p.v, &p.out, "contiguous");
    t = p.q;
    t.ndim = 3;
    expect_error(ctx, &bp, &t, &p.k, &p.v, &p.out, "q must be");
    expect_error(ctx, &bp, NULL, &p.k, &p.v, &p.out, "missing");
    CHECK(lr_bra_workspace_size(&bp, -1, 6, 9, 12, 6) == 0);
    CHECK(lr_bra_workspace_size(&bp, 1, INT64_MAX, 2, 12, 6) == 0);
    CHECK(lr_bra_workspace_size(NULL, 1, 7, 7, 16, 16) > 0);
    b2 = bp;
    b2.n_win = INT64_MAX / 2;
    CHECK(lr_bra_workspace_size(&b2, 1, 6, 9, 12, 6) == 0);

    /* an empty batch is fine and writes nothing */
    t = p.q;
    lr_tensor kk = p.k, vv = p.v, oo = p.out;
    t.shape[0] = kk.shape[0] = vv.shape[0] = oo.shape[0] = 0;
    CHECK(lr_bra(ctx, &bp, &t, &kk, &vv, &oo) == LR_OK);
    problem_free(&p);
    lr_ctx_destroy(ctx);
}

int main(void)
{
    RUN(test_pytorch_parity);
    RUN(test_matches_reference);
    RUN(test_matches_masked_attention);
    RUN(test_routing_rule);
    RUN(test_default_scale);
    RUN(test_threads_bit_identical);
    RUN(test_bad_arguments);
    return CHECK_DONE();
}
