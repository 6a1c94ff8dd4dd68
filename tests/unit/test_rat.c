/* RAT (lr_rat_attention): the fast path against the double reference at awkward sizes and
 * every CPU level, its two limits (C = 1: causal softmax attention; C >= L: the recurrence),
 * the causal prefix property, thread determinism, bad arguments, and parity with an
 * independent PyTorch implementation of the authors' layer (tools/make_rat_fixtures.py). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kernel_test.h"
#include "longrange/attention.h"
#include "longrange/model.h"
#include "longrange/rat.h"

/* A contiguous F32 tensor of random values in [lo, hi). */
typedef struct {
    lr_tensor t;
    float *data;
} buf;

static buf make_buf(int64_t a, int64_t b, int64_t c, int64_t d, float lo, float hi)
{
    const int64_t shape[4] = {a, b, c, d};
    size_t n = (size_t)(a * b * c * d);
    buf x;
    x.data = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++)
        x.data[i] = lo + (hi - lo) * (random_float() + 1.0f) * 0.5f;
    x.t = lr_tensor_from(x.data, LR_F32, 4, shape);
    return x;
}

static void free_buf(buf *x) { free(x->data); }

/* max |a - b| / max |b|. */
static double rel_err(const float *a, const float *b, size_t n)
{
    double diff = 0, scale = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        diff = isnan(d) ? INFINITY : fmax(diff, d);
        scale = fmax(scale, fabs((double)b[i]));
    }
    return scale > 0 ? diff / scale : diff;
}

typedef struct {
    int64_t B, H, Hkv, L, D, Dv, C;
    float rope, scale;
    bool value_gates;
} rat_shape;

typedef struct {
    buf q, k, v, g, f, out, ref;
    lr_rat_params p;
    size_t n_out;
} rat_case;

static void case_make(rat_case *c, const rat_shape *s)
{
    c->q = make_buf(s->B, s->H, s->L, s->D, -1, 1);
    c->k = make_buf(s->B, s->Hkv, s->L, s->D, -1, 1);
    c->v = make_buf(s->B, s->Hkv, s->L, s->Dv, -1, 1);
    c->g = make_buf(s->B, s->H, s->L, s->D, 0, 1);
    c->f = make_buf(s->B, s->H, s->L, s->value_gates ? s->Dv : 1, 0, 1);
    c->out = make_buf(s->B, s->H, s->L, s->Dv, 0, 0);
    c->ref = make_buf(s->B, s->H, s->L, s->Dv, 0, 0);
    c->n_out = (size_t)(s->B * s->H * s->L * s->Dv);
    c->p = lr_rat_default_params();
    c->p.chunk = s->C;
    c->p.rope_base = s->rope;
    c->p.scale = s->scale;
    c->p.value_gates = s->value_gates ? &c->f.t : NULL;
}

static void case_free(rat_case *c)
{
    buf *all[] = {&c->q, &c->k, &c->v, &c->g, &c->f, &c->out, &c->ref};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free_buf(all[i]);
}

static const rat_shape shapes[] = {
    /* B  H Hkv  L    D   Dv  C   rope    scale value_gates */
    {1, 1, 1, 1, 8, 8, 4, 0, 0, false},          /* a single token */
    {1, 1, 1, 5, 16, 16, 1, 0, 0, false},        /* C = 1 */
    {2, 4, 2, 77, 17, 17, 16, 0, 0, false},      /* L off the chunk, odd d, grouped heads */
    {1, 2, 1, 130, 40, 24, 13, 0, 0.3f, true},   /* Dv != D with value gates, explicit scale */
    {1, 2, 2, 200, 64, 64, 1, 0, 0, false},      /* C = 1 over several tiles */
    {1, 1, 1, 50, 32, 32, 50, 0, 0, false},      /* C = L */
    {1, 1, 1, 50, 32, 32, 64, 0, 0, false},      /* C > L */
    {1, 3, 3, 300, 96, 96, 16, 10000, 0, false}, /* rope, the official form */
    {1, 2, 1, 513, 20, 20, 7, 500, 0, false},    /* rope, many chunks, grouped heads */
    {1, 1, 1, 2100, 64, 64, 2, 0, 0, false},     /* more than one tile of states (> 128) */
};

static void test_fast_matches_reference(void)
{
    lr_ctx *ref_ctx = make_ctx(2, LR_CPU_REF);
    REQUIRE(ref_ctx);
    for (int level = LR_CPU_REF; level <= LR_CPU_AVX512; level++) {
        lr_ctx *ctx = make_ctx_at(2, (lr_cpu_level)level);
        if (!ctx)
            continue;
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
            const rat_shape *s = &shapes[i];
            seed_random(100 + (unsigned)i);
            rat_case c;
            case_make(&c, s);
            CHECKF(lr_rat_attention(ctx, &c.p, &c.q.t, &c.k.t, &c.v.t, &c.g.t, &c.out.t) == LR_OK, "%s",
                   lr_ctx_last_error(ctx));
            CHECKF(lr_rat_attention_ref(ref_ctx, &c.p, &c.q.t, &c.k.t, &c.v.t, &c.g.t, &c.ref.t) == LR_OK, "%s",
                   lr_ctx_last_error(ref_ctx));
            double e = rel_err(c.out.data, c.ref.data, c.n_out);
            CHECKF(e < 2e-6, "level %d, shape %zu (L=%lld C=%lld D=%lld): rel err %.3g", level, i, (long long)s->L,
                   (long long)s->C, (long long)s->D, e);
            case_free(&c);
        }
        lr_ctx_destroy(ctx);
    }
    lr_ctx_destroy(ref_ctx);
}

/* C = 1: each token is its own chunk, the state is (1 - g) k, and the chunk-final states are
 * the earlier tokens': causal softmax attention over (1 - g) k and (1 - f) v. With zero gates
 * that is plain causal attention on k and v. */
static void test_chunk_one_is_causal_attention(void)
{
    lr_ctx *ctx = make_ctx(2, LR_CPU_AVX512);
    REQUIRE(ctx);
    for (int zero_gates = 0; zero_gates < 2; zero_gates++) {
        seed_random(7 + (unsigned)zero_gates);
        rat_shape s = {2, 3, 3, 90, 24, 24, 1, 0, 0, false};
        rat_case c;
        case_make(&c, &s);
        buf ks = make_buf(2, 3, 90, 24, 0, 0), vs = make_buf(2, 3, 90, 24, 0, 0), att = make_buf(2, 3, 90, 24, 0, 0);
        for (size_t i = 0; i < c.n_out; i++) {
            if (zero_gates)
                c.g.data[i] = 0.0f;
            ks.data[i] = (1.0f - c.g.data[i]) * c.k.data[i];
            vs.data[i] = (1.0f - c.g.data[i]) * c.v.data[i];
        }
        lr_attn_params ap = lr_attn_default_params();
        ap.causal = true;
        REQUIRE(lr_attention_ref(ctx, &ap, &c.q.t, &ks.t, &vs.t, &att.t) == LR_OK);
        REQUIRE(lr_rat_attention(ctx, &c.p, &c.q.t, &c.k.t, &c.v.t, &c.g.t, &c.out.t) == LR_OK);
        REQUIRE(lr_rat_attention_ref(ctx, &c.p, &c.q.t, &c.k.t, &c.v.t, &c.g.t, &c.ref.t) == LR_OK);
        double e_fast = rel_err(c.out.data, att.data, c.n_out), e_ref = rel_err(c.ref.data, att.data, c.n_out);
        CHECKF(e_fast < 2e-6, "zero gates %d: fast vs causal attention %.3g", zero_gates, e_fast);
        CHECKF(e_ref < 1e-6, "zero gates %d: reference vs causal attention %.3g", zero_gates, e_ref);
        free_buf(&ks);
        free_buf(&vs);
        free_buf(&att);
        case_free(&c);
    }
    lr_ctx_destroy(ctx);
}

/* C >= L: one chunk, no earlier states, so every query's softmax has one entry and the output
 * is the running value state: a pure gated recurrence (computed here in double). */
static void test_chunk_L_is_recurrence(void)
{
    lr_ctx *ctx = make_ctx(2, LR_CPU_AVX512);
    REQUIRE(ctx);
    const int64_t chunks[] = {70, 1000};
    for (size_t ci = 0; ci < 2; ci++) {
        seed_random(11);
        rat_shape s = {1, 2, 2, 70, 12, 12, chunks[ci], 10000, 0, false};
        rat_case c;
        case_make(&c, &s);
        REQUIRE(lr_rat_attention(ctx, &c.p, &c.q.t, &c.k.t, &c.v.t, &c.g.t, &c.out.t) == LR_OK);
        REQUIRE(lr_rat_attention_ref(ctx, &c.p, &c.q.t, &c.k.t, &c.v.t, &c.g.t, &c.ref.t) == LR_OK);
        double worst_fast = 0, worst_ref = 0;
        for (int64_t h = 0; h < 2; h++) {
            for (int64_t e = 0; e < 12; e++) {
                double state = 0;
                for (int64_t t = 0; t < 70; t++) {
                    size_t at = (size_t)((h * 70 + t) * 12 + e);
                    double g = c.g.data[at];
                    state = g * state + (1 - g) * c.v.data[at];
                    worst_fast = fmax(worst_fast, fabs(c.out.data[at] - state));
                    worst_ref = fmax(worst_ref, fabs(c.ref.data[at] - state));
                }
            }
        }
        CHECKF(worst_fast < 1e-6, "C=%lld: fast vs recurrence %.3g", (long long)chunks[ci], worst_fast);
        CHECKF(worst_ref < 1e-7, "C=%lld: reference vs recurrence %.3g", (long long)chunks[ci], worst_ref);
        case_free(&c);
    }
    lr_ctx_destroy(ctx);
}

static bool run_threads(int threads, lr_cpu_level level, rat_case *c, float *out)
{
    lr_ctx *ctx = make_ctx_at(threads, level);
    if (!ctx)
        return false;
    lr_tensor o = c->out.t;
    o.data = out;
    lr_status s = lr_rat_attention(ctx, &c->p, &c->q.t, &c->k.t, &c->v.t, &c->g.t, &o);
    lr_ctx_destroy(ctx);
    return s == LR_OK;
}

static void test_threads_bit_identical(void)
{
    for (int level = LR_CPU_REF; level <= LR_CPU_AVX512; level++) {
        seed_random(21);
        rat_shape s = {2, 3, 3, 333, 40, 40, 16, 10000, 0, false};
        rat_case c;
        case_make(&c, &s);
        float *outs[3];
        bool ok = true;
        for (int t = 0; t < 3; t++) {
            outs[t] = calloc(c.n_out, sizeof(float));
            ok = ok && run_threads(t + 1, (lr_cpu_level)level, &c, outs[t]);
        }
        if (ok) {
            CHECKF(memcmp(outs[0], outs[1], c.n_out * sizeof(float)) == 0, "level %d: 1 vs 2 threads differ", level);
            CHECKF(memcmp(outs[0], outs[2], c.n_out * sizeof(float)) == 0, "level %d: 1 vs 3 threads differ", level);
        }
        for (int t = 0; t < 3; t++)
            free(outs[t]);
        case_free(&c);
    }
}

/* Row t depends on tokens 0..t only: a prefix (as strided views) gives the same rows, bit for bit. */
static void test_prefix_property(void)
{
    lr_ctx *ctx = make_ctx(2, LR_CPU_AVX512);
    REQUIRE(ctx);
    seed_random(31);
    rat_shape s = {1, 2, 2, 300, 32, 32, 16, 10000, 0, false};
    rat_case c;
    case_make(&c, &s);
    REQUIRE(lr_rat_attention(ctx, &c.p, &c.q.t, &c.k.t, &c.v.t, &c.g.t, &c.out.t) == LR_OK);
    const int64_t prefixes[] = {1, 15, 16, 17, 129, 257, 299};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        int64_t n = prefixes[i];
        lr_tensor q, k, v, g, o;
        buf out = make_buf(1, 2, n, 32, 0, 0);
        REQUIRE(lr_tensor_slice(ctx, &c.q.t, 2, 0, n, &q) == LR_OK);
        REQUIRE(lr_tensor_slice(ctx, &c.k.t, 2, 0, n, &k) == LR_OK);
        REQUIRE(lr_tensor_slice(ctx, &c.v.t, 2, 0, n, &v) == LR_OK);
        REQUIRE(lr_tensor_slice(ctx, &c.g.t, 2, 0, n, &g) == LR_OK);
        REQUIRE(lr_rat_attention(ctx, &c.p, &q, &k, &v, &g, &out.t) == LR_OK);
        REQUIRE(lr_tensor_slice(ctx, &c.out.t, 2, 0, n, &o) == LR_OK);
        int64_t differ = 0;
        for (int64_t h = 0; h < 2; h++)
            for (int64_t t = 0; t < n; t++)
                differ += memcmp(out.data + (h * n + t) * 32, c.out.data + (h * 300 + t) * 32, 32 * sizeof(float)) != 0;
        CHECKF(differ == 0, "prefix %lld: %lld rows differ", (long long)n, (long long)differ);
        free_buf(&out);
    }
    case_free(&c);
    lr_ctx_destroy(ctx);
}

static void test_bad_arguments(void)
{
    lr_ctx *ctx = make_ctx(1, LR_CPU_REF);
    REQUIRE(ctx);
    seed_random(41);
    rat_shape s = {1, 2, 2, 20, 8, 8, 4, 0, 0, false};
    rat_case c;
    case_make(&c, &s);
    lr_rat_params p = c.p;
    lr_status (*fns[2])(lr_ctx *, const lr_rat_params *, const lr_tensor *, const lr_tensor *, const lr_tensor *,
                        const lr_tensor *, lr_tensor *) = {lr_rat_attention, lr_rat_attention_ref};
    for (int f = 0; f < 2; f++) {
        CHECK(fns[f](ctx, &p, &c.q.t, &c.k.t, &c.v.t, &c.g.t, &c.out.t) == LR_OK);
        CHECK(fns[f](ctx, NULL, &c.q.t, &c.k.t, &c.v.t, &c.g.t, &c.out.t) == LR_OK);
        CHECK(fns[f](ctx, &p, NULL, &c.k.t, &c.v.t, &c.g.t, &c.out.t) == LR_ERR_ARG);
        CHECK(fns[f](ctx, &p, &c.q.t, &c.k.t, &c.v.t, NULL, &c.out.t) == LR_ERR_ARG);
        lr_rat_params bad = p;
        bad.chunk = 0;
        CHECK(fns[f](ctx, &bad, &c.q.t, &c.k.t, &c.v.t, &c.g.t, &c.out.t) == LR_ERR_ARG);
        CHECK(strstr(lr_ctx_last_error(ctx), "chunk") != NULL);
        bad = p;
        bad.scale = -1.0f;
        CHECK(fns[f](ctx, &bad, &c.q.t, &c.k.t, &c.v.t, &c.g.t, &c.out.t) == LR_ERR_ARG);
        bad.scale = INFINITY;
        CHECK(fns[f](ctx, &bad, &c.q.t, &c.k.t, &c.v.t, &c.g.t, &c.out.t) == LR_ERR_ARG);
        bad = p;
        bad.rope_base = NAN;
        CHECK(fns[f](ctx, &bad, &c.q.t, &c.k.t, &c.v.t, &c.g.t, &c.out.t) == LR_ERR_ARG);
        /* Wrong shapes: gates of another length, out of another head dim, k with 3 heads. */
        lr_tensor t;
        REQUIRE(lr_tensor_slice(ctx, &c.g.t, 2, 0, 19, &t) == LR_OK);
        CHECK(fns[f](ctx, &p, &c.q.t, &c.k.t, &c.v.t, &t, &c.out.t) == LR_ERR_ARG);
        REQUIRE(lr_tensor_slice(ctx, &c.out.t, 3, 0, 7, &t) == LR_OK);
        CHECK(fns[f](ctx, &p, &c.q.t, &c.k.t, &c.v.t, &c.g.t, &t) == LR_ERR_ARG);
        /* v with another head dim: needs value gates. */
        buf v6 = make_buf(1, 2, 20, 6, -1, 1), o6 = make_buf(1, 2, 20, 6, 0, 0), f6 = make_buf(1, 2, 20, 6, 0, 1);
        CHECK(fns[f](ctx, &p, &c.q.t, &c.k.t, &v6.t, &c.g.t, &o6.t) == LR_ERR_ARG);
        CHECK(strstr(lr_ctx_last_error(ctx), "value_gates") != NULL);
        bad = p;
        bad.value_gates = &f6.t;
        CHECK(fns[f](ctx, &bad, &c.q.t, &c.k.t, &v6.t, &c.g.t, &o6.t) == LR_OK);
        bad.value_gates = &c.g.t; /* [.., 8], not Dv = 6 */
        CHECK(fns[f](ctx, &bad, &c.q.t, &c.k.t, &v6.t, &c.g.t, &o6.t) == LR_ERR_ARG);
        free_buf(&v6);
        free_buf(&o6);
        free_buf(&f6);
        /* Query heads not a multiple of kv heads. */
        buf k3 = make_buf(1, 3, 20, 8, -1, 1), v3 = make_buf(1, 3, 20, 8, -1, 1);
        CHECK(fns[f](ctx, &p, &c.q.t, &k3.t, &v3.t, &c.g.t, &c.out.t) == LR_ERR_ARG);
        free_buf(&k3);
        free_buf(&v3);
        /* Rope with an odd head dim. */
        buf q7 = make_buf(1, 2, 20, 7, -1, 1), k7 = make_buf(1, 2, 20, 7, -1, 1), g7 = make_buf(1, 2, 20, 7, 0, 1),
            o7 = make_buf(1, 2, 20, 7, 0, 0);
        bad = p;
        bad.rope_base = 10000;
        CHECK(fns[f](ctx, &bad, &q7.t, &k7.t, &k7.t, &g7.t, &o7.t) == LR_ERR_ARG);
        CHECK(strstr(lr_ctx_last_error(ctx), "even") != NULL);
        bad.rope_base = 0;
        CHECK(fns[f](ctx, &bad, &q7.t, &k7.t, &k7.t, &g7.t, &o7.t) == LR_OK);
        free_buf(&q7);
        free_buf(&k7);
        free_buf(&g7);
        free_buf(&o7);
        /* dtype, a non-contiguous last dimension. */
        t = c.q.t;
        t.dtype = LR_BF16;
        CHECK(fns[f](ctx, &p, &t, &c.k.t, &c.v.t, &c.g.t, &c.out.t) == LR_ERR_ARG);
        REQUIRE(lr_tensor_transpose(ctx, &c.k.t, 2, 3, &t) == LR_OK);
        CHECK(fns[f](ctx, &p, &c.q.t, &t, &c.v.t, &c.g.t, &c.out.t) == LR_ERR_ARG);
        t = c.q.t;
        t.ndim = 3;
        CHECK(fns[f](ctx, &p, &t, &c.k.t, &c.v.t, &c.g.t, &c.out.t) == LR_ERR_ARG);
    }
    /* Empty sequences are fine. */
    buf e = make_buf(1, 2, 0, 8, 0, 0);
    CHECK(lr_rat_attention(ctx, &p, &e.t, &e.t, &e.t, &e.t, &e.t) == LR_OK);
    CHECK(lr_rat_attention_ref(ctx, &p, &e.t, &e.t, &e.t, &e.t, &e.t) == LR_OK);
    free_buf(&e);
    case_free(&c);
    lr_ctx_destroy(ctx);
}

static void test_pairs(void)
{
    const int64_t Ls[] = {0, 1, 15, 16, 17, 100, 4096};
    const int64_t Cs[] = {1, 3, 16, 200};
    for (size_t i = 0; i < sizeof Ls / sizeof Ls[0]; i++) {
        for (size_t j = 0; j < sizeof Cs / sizeof Cs[0]; j++) {
            int64_t want = 0;
            for (int64_t t = 0; t < Ls[i]; t++)
                want += t / Cs[j] + 1;
            CHECKF(lr_rat_pairs(Ls[i], Cs[j]) == want, "L=%lld C=%lld: %lld != %lld", (long long)Ls[i],
                   (long long)Cs[j], (long long)lr_rat_pairs(Ls[i], Cs[j]), (long long)want);
        }
    }
    CHECK(lr_rat_pairs(-1, 4) == -1);
    CHECK(lr_rat_pairs(10, 0) == -1);
    CHECK(lr_rat_pairs(INT64_MAX, 1) == -1);
}

/* The official layer's operator, in float64 PyTorch (tools/make_rat_fixtures.py). */
static void test_pytorch_parity(void)
{
    static const char *const cases[] = {"tests/fixtures/rat/interrope.safetensors",
                                        "tests/fixtures/rat/nope.safetensors"};
    for (int level = LR_CPU_REF; level <= LR_CPU_AVX512; level++) {
        lr_ctx *ctx = make_ctx_at(2, (lr_cpu_level)level);
        if (!ctx)
            continue;
        for (size_t i = 0; i < 2; i++) {
            lr_model *m = NULL;
            REQUIRE(lr_model_open(ctx, cases[i], &m) == LR_OK);
            lr_tensor q, k, v, g, want;
            int64_t chunk;
            double rope, scale;
            REQUIRE(lr_model_get(ctx, m, "q", LR_F32, 4, NULL, &q) == LR_OK);
            REQUIRE(lr_model_get(ctx, m, "k", LR_F32, 4, q.shape, &k) == LR_OK);
            REQUIRE(lr_model_get(ctx, m, "v", LR_F32, 4, q.shape, &v) == LR_OK);
            REQUIRE(lr_model_get(ctx, m, "gates", LR_F32, 4, q.shape, &g) == LR_OK);
            REQUIRE(lr_model_get(ctx, m, "expected", LR_F32, 4, q.shape, &want) == LR_OK);
            REQUIRE(lr_model_meta_int(ctx, m, "chunk", false, 0, &chunk) == LR_OK);
            REQUIRE(lr_model_meta_float(ctx, m, "rope_base", false, 0, &rope) == LR_OK);
            REQUIRE(lr_model_meta_float(ctx, m, "scale", false, 0, &scale) == LR_OK);
            lr_rat_params p = lr_rat_default_params();
            p.chunk = chunk;
            p.rope_base = (float)rope;
            p.scale = (float)scale;
            size_t n = (size_t)lr_tensor_numel(&q);
            buf out = make_buf(q.shape[0], q.shape[1], q.shape[2], q.shape[3], 0, 0);
            buf ref = make_buf(q.shape[0], q.shape[1], q.shape[2], q.shape[3], 0, 0);
            REQUIRE(lr_rat_attention(ctx, &p, &q, &k, &v, &g, &out.t) == LR_OK);
            REQUIRE(lr_rat_attention_ref(ctx, &p, &q, &k, &v, &g, &ref.t) == LR_OK);
            double e_fast = rel_err(out.data, want.data, n), e_ref = rel_err(ref.data, want.data, n);
            CHECKF(e_fast < 1e-5, "%s, level %d: fast vs PyTorch %.3g", cases[i], level, e_fast);
            CHECKF(e_ref < 1e-6, "%s: reference vs PyTorch %.3g", cases[i], e_ref);
            free_buf(&out);
            free_buf(&ref);
            lr_model_close(m);
        }
        lr_ctx_destroy(ctx);
    }
}

int main(void)
{
    RUN(test_pairs);
    RUN(test_fast_matches_reference);
    RUN(test_chunk_one_is_causal_attention);
    RUN(test_chunk_L_is_recurrence);
    RUN(test_threads_bit_identical);
    RUN(test_prefix_property);
    RUN(test_bad_arguments);
    RUN(test_pytorch_parity);
    return CHECK_DONE();
}
