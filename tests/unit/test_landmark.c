/* Landmark attention: parity with the independent PyTorch float64 implementation of the
 * official grouped softmax and top-k retrieval (tests/fixtures/landmark, written by
 * tools/make_landmark_fixtures.py); the fast paths against their double references at every
 * CPU level this machine has (L = 1 up, block sizes 2..130 around the tile sizes, head dims
 * off the vector width, grouped heads, Lq != Lk, strided views); retrieval with k = every
 * block equal to the grouped softmax; the tie rule; bit-identical output for 1, 2 and 3
 * threads; the causal prefix property; argument errors; the work count.
 *
 * Error measure: max |out - ref| over max |v| (an output row is a convex combination of value
 * rows). Tolerance 5e-6 for the F32 fast paths against the double references (they
 * accumulate like lr_attention, ~1e-6), 1e-5 for the fixtures (stored as F32). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kernel_test.h"
#include "longrange/core.h"
#include "longrange/landmark.h"
#include "longrange/model.h"
#include "longrange/tensor.h"

#define TOL 5e-6
#define FIXTURE_TOL 1e-5
#define PAD 3

/* A [B, H, L, D] F32 tensor stored as [B, L, H, D + PAD] (a projection before the head split:
 * only the last dimension contiguous), or contiguous. Inputs are random, the padding NaN. */
typedef struct {
    lr_tensor t;
    float *mem;
    size_t n;
} buf;

static buf buf_new(int64_t B, int64_t H, int64_t L, int64_t D, bool strided, bool input)
{
    buf b = {0};
    int64_t row = strided ? D + PAD : D;
    b.n = (size_t)(B * H * L * row);
    b.mem = malloc((b.n ? b.n : 1) * sizeof(float));
    for (size_t i = 0; i < b.n; i++)
        b.mem[i] = input ? NAN : -777.0f;
    int64_t shape[4] = {B, H, L, D};
    b.t = lr_tensor_from(b.mem, LR_F32, 4, shape);
    if (strided) {
        b.t.stride[3] = 1;
        b.t.stride[1] = row;
        b.t.stride[2] = row * H;
        b.t.stride[0] = row * H * L;
    }
    if (input)
        for (int64_t x = 0; x < B; x++)
            for (int64_t h = 0; h < H; h++)
                for (int64_t l = 0; l < L; l++)
                    for (int64_t e = 0; e < D; e++)
                        b.mem[x * b.t.stride[0] + h * b.t.stride[1] + l * b.t.stride[2] + e] = random_float();
    return b;
}

static float at(const lr_tensor *t, int64_t x, int64_t h, int64_t l, int64_t e)
{
    return ((const float *)t->data)[x * t->stride[0] + h * t->stride[1] + l * t->stride[2] + e];
}

static double max_abs(const lr_tensor *t)
{
    double m = 0;
    for (int64_t x = 0; x < t->shape[0]; x++)
        for (int64_t h = 0; h < t->shape[1]; h++)
            for (int64_t l = 0; l < t->shape[2]; l++)
                for (int64_t e = 0; e < t->shape[3]; e++)
                    m = fmax(m, fabs(at(t, x, h, l, e)));
    return m;
}

/* max |x - y| / max |v| (INFINITY for a non-finite x). */
static double rel_error(const lr_tensor *x, const lr_tensor *y, const lr_tensor *v)
{
    double m = 0;
    for (int64_t a = 0; a < x->shape[0]; a++)
        for (int64_t h = 0; h < x->shape[1]; h++)
            for (int64_t l = 0; l < x->shape[2]; l++)
                for (int64_t e = 0; e < x->shape[3]; e++) {
                    float xv = at(x, a, h, l, e);
                    if (!isfinite(xv))
                        return INFINITY;
                    m = fmax(m, fabs((double)xv - (double)at(y, a, h, l, e)));
                }
    double s = max_abs(v);
    return s > 0 ? m / s : m;
}

static int64_t bit_differences(const lr_tensor *x, const lr_tensor *y)
{
    int64_t n = 0;
    for (int64_t a = 0; a < x->shape[0]; a++)
        for (int64_t h = 0; h < x->shape[1]; h++)
            for (int64_t l = 0; l < x->shape[2]; l++)
                for (int64_t e = 0; e < x->shape[3]; e++) {
                    float xv = at(x, a, h, l, e), yv = at(y, a, h, l, e);
                    n += memcmp(&xv, &yv, sizeof xv) != 0;
                }
    return n;
}

/* ---- parity with the PyTorch reference ---- */

static void check_fixture(lr_ctx *ctx, const char *path)
{
    lr_model *m = NULL;
    lr_tensor q, k, v, grouped, retrieval;
    int64_t block, top_k;
    REQUIRE(lr_model_open(ctx, path, &m) == LR_OK);
    bool ok = lr_model_get(ctx, m, "q", LR_F32, 4, NULL, &q) == LR_OK &&
              lr_model_get(ctx, m, "k", LR_F32, 4, NULL, &k) == LR_OK &&
              lr_model_get(ctx, m, "v", LR_F32, 4, NULL, &v) == LR_OK &&
              lr_model_get(ctx, m, "grouped", LR_F32, 4, NULL, &grouped) == LR_OK &&
              lr_model_get(ctx, m, "retrieval", LR_F32, 4, NULL, &retrieval) == LR_OK &&
              lr_model_meta_int(ctx, m, "block_size", false, 0, &block) == LR_OK &&
              lr_model_meta_int(ctx, m, "top_k", false, 0, &top_k) == LR_OK;
    CHECKF(ok, "%s: %s", path, lr_ctx_last_error(ctx));
    if (ok) {
        lr_landmark_params p = lr_landmark_default_params();
        p.block_size = block;
        p.top_k = top_k;
        buf out = buf_new(q.shape[0], q.shape[1], q.shape[2], v.shape[3], false, false);
        typedef lr_status (*fn)(lr_ctx *, const lr_landmark_params *, const lr_tensor *, const lr_tensor *,
                                const lr_tensor *, lr_tensor *);
        const struct {
            const char *name;
            fn run;
            const lr_tensor *want;
        } runs[] = {
            {"grouped ref", lr_landmark_attention_ref, &grouped},
            {"grouped", lr_landmark_attention, &grouped},
            {"retrieval ref", lr_landmark_retrieval_ref, &retrieval},
            {"retrieval", lr_landmark_retrieval, &retrieval},
        };
        for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
            CHECK(runs[r].run(ctx, &p, &q, &k, &v, &out.t) == LR_OK);
            double err = rel_error(&out.t, runs[r].want, &v);
            CHECKF(err <= FIXTURE_TOL, "%s %s: error %.3g", path, runs[r].name, err);
        }
        /* the retrieval fixture must differ from the grouped one, or it tests nothing */
        CHECK(rel_error(&retrieval, &grouped, &v) > 1e-3);
        free(out.mem);
    }
    lr_model_close(m);
}

static void test_pytorch_parity(void)
{
    lr_ctx *ctx = make_ctx(2, LR_CPU_AVX512);
    REQUIRE(ctx);
    check_fixture(ctx, "tests/fixtures/landmark/case1.safetensors");
    check_fixture(ctx, "tests/fixtures/landmark/case2.safetensors");
    check_fixture(ctx, "tests/fixtures/landmark/case3.safetensors");
    lr_ctx_destroy(ctx);
}

/* ---- fast paths against the references ---- */

typedef struct {
    int64_t B, Hq, Hkv, Lq, Lk, D, Dv, block;
    bool strided;
} shape;

typedef struct {
    buf q, k, v, out, ref;
} problem;

static problem problem_new(const shape *s)
{
    problem p;
    p.q = buf_new(s->B, s->Hq, s->Lq, s->D, s->strided, true);
    p.k = buf_new(s->B, s->Hkv, s->Lk, s->D, s->strided, true);
    p.v = buf_new(s->B, s->Hkv, s->Lk, s->Dv, s->strided, true);
    p.out = buf_new(s->B, s->Hq, s->Lq, s->Dv, s->strided, false);
    p.ref = buf_new(s->B, s->Hq, s->Lq, s->Dv, false, false);
    return p;
}

static void problem_free(problem *p)
{
    free(p->q.mem);
    free(p->k.mem);
    free(p->v.mem);
    free(p->out.mem);
    free(p->ref.mem);
}

/* The output's padding still holds the sentinel. */
static bool padding_intact(const buf *b)
{
    if (b->t.stride[1] == b->t.shape[2] * b->t.shape[3])
        return true; /* contiguous: no padding */
    int64_t D = b->t.shape[3];
    for (size_t i = 0; i < b->n; i++)
        if ((int64_t)(i % (size_t)(D + PAD)) >= D && b->mem[i] != -777.0f)
            return false;
    return true;
}

static void compare_paths(lr_ctx *ctx, const shape *s, int64_t top_k)
{
    problem pr = problem_new(s);
    lr_landmark_params p = lr_landmark_default_params();
    p.block_size = s->block;
    p.top_k = top_k;
    bool retrieval = top_k > 0;
    lr_status a = retrieval ? lr_landmark_retrieval(ctx, &p, &pr.q.t, &pr.k.t, &pr.v.t, &pr.out.t)
                            : lr_landmark_attention(ctx, &p, &pr.q.t, &pr.k.t, &pr.v.t, &pr.out.t);
    lr_status b = retrieval ? lr_landmark_retrieval_ref(ctx, &p, &pr.q.t, &pr.k.t, &pr.v.t, &pr.ref.t)
                            : lr_landmark_attention_ref(ctx, &p, &pr.q.t, &pr.k.t, &pr.v.t, &pr.ref.t);
    CHECKF(a == LR_OK && b == LR_OK, "run failed: %s", lr_ctx_last_error(ctx));
    double err = rel_error(&pr.out.t, &pr.ref.t, &pr.v.t);
    CHECKF(err <= TOL,
           "%s top_k %lld cpu %s: B=%lld H=%lld/%lld Lq=%lld Lk=%lld D=%lld Dv=%lld s=%lld%s: error %.3g",
           retrieval ? "retrieval" : "grouped", (long long)top_k, lr_cpu_level_name(lr_ctx_cpu(ctx)),
           (long long)s->B, (long long)s->Hq, (long long)s->Hkv, (long long)s->Lq, (long long)s->Lk,
           (long long)s->D, (long long)s->Dv, (long long)s->block, s->strided ? " strided" : "", err);
    CHECK(padding_intact(&pr.out));
    problem_free(&pr);
}

static const shape shapes[] = {
    {1, 1, 1, 1, 1, 8, 8, 2, false},        /* one query, one key */
    {1, 2, 2, 7, 7, 5, 5, 3, false},
    {1, 2, 1, 40, 40, 17, 24, 8, true},     /* multi-query, Dv != D, strided */
    {2, 4, 2, 77, 77, 17, 17, 2, false},    /* every other token a landmark */
    {1, 2, 2, 130, 130, 64, 64, 32, true},
    {1, 1, 1, 300, 300, 40, 40, 64, false},
    {1, 2, 2, 300, 300, 16, 16, 130, false}, /* a block longer than a key tile */
    {1, 2, 2, 5, 130, 33, 33, 10, false},   /* decoding: the last 5 positions */
    {1, 2, 2, 40, 30, 8, 8, 4, true},       /* more queries than keys: the first rows see none */
    {1, 1, 1, 257, 257, 8, 8, 257, false},  /* one block, no earlier landmark */
};

static void test_against_references(void)
{
    static const lr_cpu_level levels[] = {LR_CPU_REF, LR_CPU_AVX2, LR_CPU_AVX512};
    for (size_t li = 0; li < sizeof levels / sizeof levels[0]; li++) {
        lr_ctx *ctx = make_ctx_at(2, levels[li]);
        if (!ctx)
            continue;
        seed_random(11 + (unsigned)li);
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
            compare_paths(ctx, &shapes[si], 0);
            compare_paths(ctx, &shapes[si], 1);
            compare_paths(ctx, &shapes[si], 3);
            compare_paths(ctx, &shapes[si], 1000);
        }
        lr_ctx_destroy(ctx);
    }
}

/* Entries of +-1 and a scale of 1e4 / D: logits are multiples of 1e4 / D * 2 with many exact
 * ties, between landmarks and tokens of the own block too, and the softmax is nearly one-hot;
 * the fast paths must weigh tied candidates alike. */
static void test_huge_logits(void)
{
    lr_ctx *ctx = make_ctx(2, LR_CPU_AVX512);
    REQUIRE(ctx);
    const shape s = {1, 2, 2, 96, 96, 32, 32, 8, false};
    seed_random(3);
    problem pr = problem_new(&s);
    for (size_t i = 0; i < pr.q.n; i++) {
        pr.q.mem[i] = pr.q.mem[i] < 0 ? -1.0f : 1.0f;
        pr.k.mem[i] = pr.k.mem[i] < 0 ? -1.0f : 1.0f;
    }
    lr_landmark_params p = lr_landmark_default_params();
    p.block_size = s.block;
    p.scale = 1e4f / (float)s.D;
    for (int64_t top_k = 0; top_k <= 3; top_k += 3) {
        p.top_k = top_k;
        lr_status a = top_k ? lr_landmark_retrieval(ctx, &p, &pr.q.t, &pr.k.t, &pr.v.t, &pr.out.t)
                            : lr_landmark_attention(ctx, &p, &pr.q.t, &pr.k.t, &pr.v.t, &pr.out.t);
        lr_status b = top_k ? lr_landmark_retrieval_ref(ctx, &p, &pr.q.t, &pr.k.t, &pr.v.t, &pr.ref.t)
                            : lr_landmark_attention_ref(ctx, &p, &pr.q.t, &pr.k.t, &pr.v.t, &pr.ref.t);
        CHECK(a == LR_OK && b == LR_OK);
        double err = rel_error(&pr.out.t, &pr.ref.t, &pr.v.t);
        CHECKF(err <= TOL, "top_k %lld: error %.3g", (long long)top_k, err);
    }
    problem_free(&pr);
    lr_ctx_destroy(ctx);
}

/* Retrieval of every block is the grouped softmax: the same bits in the references (one code
 * path), and within rounding in the fast paths. */
static void test_retrieval_of_all_blocks(void)
{
    lr_ctx *ctx = make_ctx(2, LR_CPU_AVX512);
    REQUIRE(ctx);
    const shape s = {2, 2, 1, 150, 150, 24, 24, 8, false};
    problem pr = problem_new(&s);
    buf fast_r = buf_new(s.B, s.Hq, s.Lq, s.Dv, false, false);
    lr_landmark_params p = lr_landmark_default_params();
    p.block_size = s.block;
    p.top_k = s.Lk / s.block; /* exactly the most earlier blocks a query has */
    CHECK(lr_landmark_attention_ref(ctx, &p, &pr.q.t, &pr.k.t, &pr.v.t, &pr.ref.t) == LR_OK);
    CHECK(lr_landmark_retrieval_ref(ctx, &p, &pr.q.t, &pr.k.t, &pr.v.t, &pr.out.t) == LR_OK);
    CHECK(bit_differences(&pr.out.t, &pr.ref.t) == 0);
    CHECK(lr_landmark_retrieval(ctx, &p, &pr.q.t, &pr.k.t, &pr.v.t, &fast_r.t) == LR_OK);
    CHECKF(rel_error(&fast_r.t, &pr.ref.t, &pr.v.t) <= TOL, "retrieval of all vs grouped: %.3g",
           rel_error(&fast_r.t, &pr.ref.t, &pr.v.t));
    CHECK(lr_landmark_attention(ctx, &p, &pr.q.t, &pr.k.t, &pr.v.t, &pr.out.t) == LR_OK);
    CHECK(rel_error(&pr.out.t, &fast_r.t, &pr.v.t) <= TOL);
    /* one block fewer changes the last rows */
    p.top_k--;
    CHECK(lr_landmark_retrieval(ctx, &p, &pr.q.t, &pr.k.t, &pr.v.t, &fast_r.t) == LR_OK);
    CHECK(rel_error(&fast_r.t, &pr.ref.t, &pr.v.t) > 1e-3);
    free(fast_r.mem);
    problem_free(&pr);
    lr_ctx_destroy(ctx);
}

/* Equal landmark scores (q = 0: every score is 0) keep the lowest block indices: with one
 * block kept, query i in block c averages block 0 and its own tokens with equal weight. */
static void test_ties(void)
{
    lr_ctx *ctx = make_ctx(1, LR_CPU_AVX512);
    REQUIRE(ctx);
    const shape s = {1, 1, 1, 20, 20, 4, 4, 4, false};
    problem pr = problem_new(&s);
    for (int64_t l = 0; l < s.Lq; l++)
        for (int64_t e = 0; e < s.D; e++)
            pr.q.mem[l * s.D + e] = 0.0f;
    lr_landmark_params p = lr_landmark_default_params();
    p.block_size = s.block;
    p.top_k = 1;
    CHECK(lr_landmark_retrieval(ctx, &p, &pr.q.t, &pr.k.t, &pr.v.t, &pr.out.t) == LR_OK);
    CHECK(lr_landmark_retrieval_ref(ctx, &p, &pr.q.t, &pr.k.t, &pr.v.t, &pr.ref.t) == LR_OK);
    CHECK(rel_error(&pr.out.t, &pr.ref.t, &pr.v.t) <= TOL);
    /* query 13 (block 3, own regular tokens 12, 13): weights 1/3 each for them and the
     * landmark of block 0, whose block averages tokens 0..2 */
    for (int64_t e = 0; e < s.Dv; e++) {
        const float *v = pr.v.mem;
        double block0 = (v[0 * 4 + e] + v[1 * 4 + e] + v[2 * 4 + e]) / 3.0;
        double want = (block0 + v[12 * 4 + e] + v[13 * 4 + e]) / 3.0;
        CHECKF(fabs(pr.out.mem[13 * 4 + e] - want) < 1e-6, "tie rule: %g vs %g", pr.out.mem[13 * 4 + e], want);
    }
    /* Landmark scores 0, 0, 1, -1 for the queries of block 4 (q = e0) and k = 2: block 2
     * displaces block 1, the later of the tied pair, so blocks 0 and 2 stay. */
    for (int64_t l = 0; l < s.Lq; l++)
        pr.q.mem[l * s.D] = 1.0f;
    static const float lm_first[4] = {0.0f, 0.0f, 1.0f, -1.0f};
    for (int64_t b = 0; b < 4; b++)
        pr.k.mem[(b * 4 + 3) * s.D] = lm_first[b];
    p.top_k = 2;
    CHECK(lr_landmark_retrieval(ctx, &p, &pr.q.t, &pr.k.t, &pr.v.t, &pr.out.t) == LR_OK);
    CHECK(lr_landmark_retrieval_ref(ctx, &p, &pr.q.t, &pr.k.t, &pr.v.t, &pr.ref.t) == LR_OK);
    CHECK(rel_error(&pr.out.t, &pr.ref.t, &pr.v.t) <= TOL);
    /* and the reference drops block 1: perturbing its values leaves block 4's rows as they
     * were */
    buf swapped = buf_new(1, 1, s.Lk, s.Dv, false, false);
    memcpy(swapped.mem, pr.v.mem, (size_t)(s.Lk * s.Dv) * sizeof(float));
    for (int64_t e = 0; e < 3 * s.Dv; e++)
        swapped.mem[4 * s.Dv + e] += 1.0f;
    buf out2 = buf_new(1, 1, s.Lq, s.Dv, false, false);
    CHECK(lr_landmark_retrieval_ref(ctx, &p, &pr.q.t, &pr.k.t, &swapped.t, &out2.t) == LR_OK);
    for (int64_t l = 16; l < 19; l++) /* block 4's regular queries */
        for (int64_t e = 0; e < s.Dv; e++)
            CHECK(out2.mem[l * s.Dv + e] == pr.ref.mem[l * s.Dv + e]);
    free(swapped.mem);
    free(out2.mem);
    problem_free(&pr);
    lr_ctx_destroy(ctx);
}

static void test_threads(void)
{
    const shape s = {2, 3, 3, 200, 200, 40, 40, 16, true};
    seed_random(5);
    problem pr = problem_new(&s);
    lr_landmark_params p = lr_landmark_default_params();
    p.block_size = s.block;
    p.top_k = 3;
    for (int retrieval = 0; retrieval < 2; retrieval++) {
        for (int threads = 1; threads <= 3; threads++) {
            lr_ctx *ctx = make_ctx(threads, LR_CPU_AVX512);
            REQUIRE(ctx);
            lr_tensor *dst = threads == 1 ? &pr.ref.t : &pr.out.t;
            CHECK((retrieval ? lr_landmark_retrieval : lr_landmark_attention)(ctx, &p, &pr.q.t, &pr.k.t, &pr.v.t,
                                                                              dst) == LR_OK);
            if (threads > 1)
                CHECKF(bit_differences(&pr.out.t, &pr.ref.t) == 0, "%s: %d threads differ from 1",
                       retrieval ? "retrieval" : "grouped", threads);
            lr_ctx_destroy(ctx);
        }
    }
    problem_free(&pr);
}

/* Row i on the whole sequence equals row i on the prefix that ends at i, bit for bit. */
static void test_prefix(void)
{
    lr_ctx *ctx = make_ctx(2, LR_CPU_AVX512);
    REQUIRE(ctx);
    const shape s = {1, 2, 2, 300, 300, 24, 24, 12, false};
    seed_random(7);
    problem pr = problem_new(&s);
    static const int64_t prefixes[] = {1, 11, 12, 13, 63, 64, 65, 200, 299};
    lr_landmark_params p = lr_landmark_default_params();
    p.block_size = s.block;
    p.top_k = 2;
    for (int retrieval = 0; retrieval < 2; retrieval++) {
        lr_status (*run)(lr_ctx *, const lr_landmark_params *, const lr_tensor *, const lr_tensor *,
                         const lr_tensor *, lr_tensor *) = retrieval ? lr_landmark_retrieval : lr_landmark_attention;
        CHECK(run(ctx, &p, &pr.q.t, &pr.k.t, &pr.v.t, &pr.out.t) == LR_OK);
        for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
            int64_t n = prefixes[i];
            lr_tensor q, k, v, rows;
            buf out = buf_new(s.B, s.Hq, n, s.Dv, false, false);
            CHECK(lr_tensor_slice(ctx, &pr.q.t, 2, 0, n, &q) == LR_OK);
            CHECK(lr_tensor_slice(ctx, &pr.k.t, 2, 0, n, &k) == LR_OK);
            CHECK(lr_tensor_slice(ctx, &pr.v.t, 2, 0, n, &v) == LR_OK);
            CHECK(lr_tensor_slice(ctx, &pr.out.t, 2, 0, n, &rows) == LR_OK);
            CHECK(run(ctx, &p, &q, &k, &v, &out.t) == LR_OK);
            CHECKF(bit_differences(&out.t, &rows) == 0, "%s: prefix %lld differs", retrieval ? "retrieval" : "grouped",
                   (long long)n);
            free(out.mem);
        }
    }
    problem_free(&pr);
    lr_ctx_destroy(ctx);
}

static void test_errors(void)
{
    lr_ctx *ctx = make_ctx(1, LR_CPU_AVX512);
    REQUIRE(ctx);
    const shape s = {1, 2, 2, 10, 10, 8, 8, 4, false};
    problem pr = problem_new(&s);
    lr_landmark_params p = lr_landmark_default_params();
    for (int retrieval = 0; retrieval < 2; retrieval++) {
        lr_status (*run)(lr_ctx *, const lr_landmark_params *, const lr_tensor *, const lr_tensor *,
                         const lr_tensor *, lr_tensor *) = retrieval ? lr_landmark_retrieval : lr_landmark_attention;
        lr_status (*ref)(lr_ctx *, const lr_landmark_params *, const lr_tensor *, const lr_tensor *,
                         const lr_tensor *, lr_tensor *) =
            retrieval ? lr_landmark_retrieval_ref : lr_landmark_attention_ref;
        CHECK(run(ctx, NULL, &pr.q.t, &pr.k.t, &pr.v.t, &pr.out.t) == LR_OK);
        CHECK(ref(ctx, NULL, &pr.q.t, &pr.k.t, &pr.v.t, &pr.ref.t) == LR_OK);
        lr_landmark_params bad = p;
        bad.block_size = 1;
        CHECK(run(ctx, &bad, &pr.q.t, &pr.k.t, &pr.v.t, &pr.out.t) == LR_ERR_ARG);
        CHECK(strstr(lr_ctx_last_error(ctx), "block_size") != NULL);
        CHECK(ref(ctx, &bad, &pr.q.t, &pr.k.t, &pr.v.t, &pr.out.t) == LR_ERR_ARG);
        bad = p;
        bad.scale = -1.0f;
        CHECK(run(ctx, &bad, &pr.q.t, &pr.k.t, &pr.v.t, &pr.out.t) == LR_ERR_ARG);
        bad.scale = INFINITY;
        CHECK(run(ctx, &bad, &pr.q.t, &pr.k.t, &pr.v.t, &pr.out.t) == LR_ERR_ARG);
        bad = p;
        bad.top_k = 0;
        CHECK(run(ctx, &bad, &pr.q.t, &pr.k.t, &pr.v.t, &pr.out.t) == (retrieval ? LR_ERR_ARG : LR_OK));
        CHECK(run(ctx, &p, NULL, &pr.k.t, &pr.v.t, &pr.out.t) == LR_ERR_ARG);
        CHECK(run(ctx, &p, &pr.q.t, &pr.k.t, &pr.v.t, NULL) == LR_ERR_ARG);
        lr_tensor t = pr.k.t;
        t.shape[3] = 7; /* head dim differs from q's */
        CHECK(run(ctx, &p, &pr.q.t, &t, &pr.v.t, &pr.out.t) == LR_ERR_ARG);
        t = pr.k.t;
        t.shape[1] = 3; /* 2 query heads over 3 kv heads; v disagrees too */
        CHECK(run(ctx, &p, &pr.q.t, &t, &pr.v.t, &pr.out.t) == LR_ERR_ARG);
        t = pr.q.t;
        t.dtype = LR_BF16;
        CHECK(run(ctx, &p, &t, &pr.k.t, &pr.v.t, &pr.out.t) == LR_ERR_ARG);
        t = pr.q.t;
        t.stride[3] = 2;
        CHECK(run(ctx, &p, &t, &pr.k.t, &pr.v.t, &pr.out.t) == LR_ERR_ARG);
        CHECK(strstr(lr_ctx_last_error(ctx), "contiguous") != NULL);
        t = pr.out.t;
        t.ndim = 3;
        CHECK(run(ctx, &p, &pr.q.t, &pr.k.t, &pr.v.t, &t) == LR_ERR_ARG);
    }
    problem_free(&pr);
    lr_ctx_destroy(ctx);
}

/* The work count against a direct enumeration of the scored and valued keys. */
static void test_pairs(void)
{
    static const int64_t cases[][4] = {{8, 0, 40, 40}, {8, 2, 40, 40}, {10, 3, 5, 70}, {4, 0, 40, 30}, {2, 100, 9, 9}};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        int64_t s = cases[ci][0], k = cases[ci][1], Lq = cases[ci][2], Lk = cases[ci][3];
        int64_t scored = 0, valued = 0;
        for (int64_t i = 0; i < Lq; i++) {
            int64_t p = i + Lk - Lq;
            if (p < 0)
                continue;
            int64_t c = p / s, kept = k > 0 && k < c ? k : c;
            for (int64_t j = c * s; j <= p; j++)
                if ((j + 1) % s != 0) {
                    scored++;
                    valued++;
                }
            scored += k > 0 ? c + kept * (s - 1) : c * s;
            valued += kept * (s - 1);
        }
        int64_t got_valued = -1;
        CHECK(lr_landmark_pairs(s, k, Lq, Lk, &got_valued) == scored);
        CHECK(got_valued == valued);
    }
    CHECK(lr_landmark_pairs(1, 0, 4, 4, NULL) == -1);
}

int main(void)
{
    RUN(test_pytorch_parity);
    RUN(test_against_references);
    RUN(test_huge_logits);
    RUN(test_retrieval_of_all_blocks);
    RUN(test_ties);
    RUN(test_threads);
    RUN(test_prefix);
    RUN(test_errors);
    RUN(test_pairs);
    return CHECK_DONE();
}
