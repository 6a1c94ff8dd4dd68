/* Linear attention: the chunked kernel (lr_linear_attention) against the quadratic
 * materialised definition, and the recurrent (token by token) form against the same, all
 * three variants (elu+1, NormAttention, decayed/gated), at every CPU level this machine has;
 * grouped and multi-query heads, L = 1, lengths off the chunk, D != Dv, head dims off the vector widths, cross lengths,
 * strided views, bf16 inputs, no decay (gamma = 1) and strong decay (gamma 1e-4, gates down
 * to 1e-6); bit-identical output for 1, 2 and 3 threads; the causal prefix property;
 * argument errors; the FLOP count.
 *
 * Error measure: max |out - ref| over max |ref|. The references run in double and round
 * only their output to float, so quadratic and recurrent agree to float rounding (limit
 * 2e-6; they agree exactly on every case here). The chunked kernel accumulates in float over
 * chunks of up to 64 tokens and head dims up to 100, with products of up to 64 decay factors:
 * limit 2e-6 (the worst seen is 3.2e-7, at every CPU level). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "longrange/core.h"
#include "longrange/linear_attention.h"
#include "longrange/tensor.h"

#define TOL_REFS 2e-6
#define TOL_KERNEL 2e-6

static unsigned rng_state = 11;

static float uniform(float lo, float hi)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return lo + (hi - lo) * (float)(rng_state >> 8) / 16777216.0f;
}

static lr_ctx *make_ctx(int threads, int level)
{
    lr_ctx_params p = lr_ctx_default_params();
    p.n_threads = threads;
    p.cpu_level = level;
    lr_ctx *ctx = NULL;
    return lr_ctx_create(&ctx, &p) == LR_OK ? ctx : NULL;
}

/* A [B, H, L, D] tensor with its own storage; strided: stored as [B, L, H, D + 3], the layout
 * of a projection before the head split with padding, so only the last dimension is
 * contiguous. */
typedef struct {
    lr_tensor t;
    void *mem;
} buffer;

static int buffer_make(buffer *b, lr_dtype dtype, int64_t B, int64_t H, int64_t L, int64_t D, bool strided)
{
    int64_t row = strided ? D + 3 : D;
    size_t n = (size_t)(B * H * L * row), esize = lr_dtype_size(dtype);
    b->mem = calloc(n ? n : 1, esize);
    if (!b->mem)
        return 0;
    b->t = (lr_tensor){.data = b->mem, .dtype = dtype, .ndim = 4, .shape = {B, H, L, D}};
    if (strided) {
        b->t.stride[0] = L * H * row;
        b->t.stride[1] = row;
        b->t.stride[2] = H * row;
    } else {
        b->t.stride[0] = H * L * D;
        b->t.stride[1] = L * D;
        b->t.stride[2] = D;
    }
    b->t.stride[3] = 1;
    return 1;
}

static void buffer_fill(buffer *b, float lo, float hi)
{
    const lr_tensor *t = &b->t;
    for (int64_t i = 0; i < t->shape[0]; i++)
        for (int64_t h = 0; h < t->shape[1]; h++)
            for (int64_t l = 0; l < t->shape[2]; l++)
                for (int64_t x = 0; x < t->shape[3]; x++) {
                    int64_t idx[4] = {i, h, l, x};
                    float value = uniform(lo, hi);
                    if (t->dtype == LR_F32)
                        *(float *)lr_tensor_at(t, idx) = value;
                    else
                        *(uint16_t *)lr_tensor_at(t, idx) = lr_f32_to_bf16(value);
                }
}

static float out_at(const lr_tensor *t, int64_t i, int64_t h, int64_t l, int64_t x)
{
    int64_t idx[4] = {i, h, l, x};
    return *(const float *)lr_tensor_at(t, idx);
}

/* max |x - ref| / max |ref| over rows [0, rows) of every head (all rows if rows < 0). */
static double rel_error(const lr_tensor *x, const lr_tensor *ref, int64_t rows)
{
    double diff = 0, scale = 0;
    if (rows < 0)
        rows = ref->shape[2];
    for (int64_t i = 0; i < ref->shape[0]; i++)
        for (int64_t h = 0; h < ref->shape[1]; h++)
            for (int64_t l = 0; l < rows; l++)
                for (int64_t c = 0; c < ref->shape[3]; c++) {
                    double a = out_at(x, i, h, l, c), r = out_at(ref, i, h, l, c);
                    diff = isnan(a) || isnan(r) ? INFINITY : fmax(diff, fabs(a - r));
                    scale = fmax(scale, fabs(r));
                }
    return scale > 0 ? diff / scale : diff;
}

static int64_t bit_differences(const lr_tensor *x, const lr_tensor *y, int64_t rows)
{
    int64_t n = 0;
    for (int64_t i = 0; i < x->shape[0]; i++)
        for (int64_t h = 0; h < x->shape[1]; h++)
            for (int64_t l = 0; l < rows; l++)
                for (int64_t c = 0; c < x->shape[3]; c++) {
                    float a = out_at(x, i, h, l, c), b = out_at(y, i, h, l, c);
                    n += memcmp(&a, &b, sizeof a) != 0;
                }
    return n;
}

typedef struct {
    const char *what;
    lr_linattn_kind kind;
    bool causal;
    lr_linattn_norm norm;
    int64_t B, H, Hkv, Lq, Lk, D, Dv, chunk;
    lr_dtype dtype;
    bool strided;
    enum { NO_DECAY, GAMMA, GATES, STRONG_GATES } decay;
} lin_case;

typedef struct {
    buffer q, k, v, gates, out, ref, rec, one; /* one: the kernel's output with one thread */
    float gamma[8];
    lr_tensor gamma_t;
    lr_linattn_params p;
} lin_data;

static void lin_data_free(lin_data *d)
{
    free(d->q.mem);
    free(d->k.mem);
    free(d->v.mem);
    free(d->gates.mem);
    free(d->out.mem);
    free(d->ref.mem);
    free(d->rec.mem);
    free(d->one.mem);
}

static int lin_data_make(lin_data *d, const lin_case *c)
{
    memset(d, 0, sizeof *d);
    int ok = buffer_make(&d->q, c->dtype, c->B, c->H, c->Lq, c->D, c->strided) &&
             buffer_make(&d->k, c->dtype, c->B, c->Hkv, c->Lk, c->D, c->strided) &&
             buffer_make(&d->v, c->dtype, c->B, c->Hkv, c->Lk, c->Dv, c->strided) &&
             buffer_make(&d->out, LR_F32, c->B, c->H, c->Lq, c->Dv, c->strided) &&
             buffer_make(&d->ref, LR_F32, c->B, c->H, c->Lq, c->Dv, false) &&
             buffer_make(&d->rec, LR_F32, c->B, c->H, c->Lq, c->Dv, false) &&
             buffer_make(&d->one, LR_F32, c->B, c->H, c->Lq, c->Dv, false);
    if (!ok)
        return 0;
    buffer_fill(&d->q, -1.0f, 1.0f);
    buffer_fill(&d->k, -1.0f, 1.0f);
    buffer_fill(&d->v, -1.0f, 1.0f);
    d->p = lr_linattn_default_params();
    d->p.kind = c->kind;
    d->p.causal = c->causal;
    d->p.norm = c->norm;
    d->p.chunk = c->chunk;
    if (c->decay == GAMMA) {
        /* No decay, mild, strong, and so strong that powers underflow within a chunk. */
        static const float gammas[] = {1.0f, 0.97f, 0.3f, 1e-4f};
        for (int64_t h = 0; h < c->H; h++)
            d->gamma[h] = gammas[h % 4];
        d->gamma_t = lr_tensor_from(d->gamma, LR_F32, 1, &c->H);
        d->p.gamma = &d->gamma_t;
    } else if (c->decay == GATES || c->decay == STRONG_GATES) {
        if (!buffer_make(&d->gates, c->dtype, c->B, c->Hkv, c->Lk, c->D, c->strided))
            return 0;
        if (c->decay == GATES)
            buffer_fill(&d->gates, 0.6f, 1.0f);
        else
            buffer_fill(&d->gates, 1e-6f, 0.2f);
        d->p.gates = &d->gates.t;
    }
    return 1;
}

static const lin_case cases[] = {
    {"elu self", LR_LINATTN_ELU, false, LR_LINNORM_LAYER, 2, 3, 3, 77, 77, 17, 24, 16, LR_F32, true, NO_DECAY},
    {"elu cross", LR_LINATTN_ELU, false, LR_LINNORM_LAYER, 1, 2, 2, 5, 130, 64, 64, 0, LR_F32, false, NO_DECAY},
    {"elu causal L=1", LR_LINATTN_ELU, true, LR_LINNORM_LAYER, 1, 2, 2, 1, 1, 64, 64, 0, LR_F32, false, NO_DECAY},
    {"elu causal grouped", LR_LINATTN_ELU, true, LR_LINNORM_LAYER, 2, 4, 2, 77, 77, 17, 33, 16, LR_F32, true, NO_DECAY},
    {"elu causal one chunk", LR_LINATTN_ELU, true, LR_LINNORM_LAYER, 1, 1, 1, 64, 64, 64, 64, 64, LR_F32, false, NO_DECAY},
    {"elu causal chunk 1", LR_LINATTN_ELU, true, LR_LINNORM_LAYER, 1, 1, 1, 9, 9, 8, 8, 1, LR_F32, false, NO_DECAY},
    {"elu causal bf16", LR_LINATTN_ELU, true, LR_LINNORM_LAYER, 1, 2, 2, 150, 150, 32, 48, 0, LR_BF16, true, NO_DECAY},
    {"norm layer self", LR_LINATTN_NORM, false, LR_LINNORM_LAYER, 1, 2, 2, 70, 70, 100, 20, 0, LR_F32, false, NO_DECAY},
    {"norm layer causal", LR_LINATTN_NORM, true, LR_LINNORM_LAYER, 1, 2, 2, 150, 150, 40, 24, 32, LR_F32, true, NO_DECAY},
    {"norm rms causal", LR_LINATTN_NORM, true, LR_LINNORM_RMS, 2, 1, 1, 99, 99, 16, 17, 0, LR_F32, false, NO_DECAY},
    {"decay gamma", LR_LINATTN_DECAY, true, LR_LINNORM_LAYER, 1, 4, 4, 200, 200, 24, 40, 64, LR_F32, false, GAMMA},
    {"decay gamma L=1", LR_LINATTN_DECAY, true, LR_LINNORM_LAYER, 1, 4, 4, 1, 1, 8, 8, 0, LR_F32, false, GAMMA},
    {"decay gamma chunk 7 one kv head", LR_LINATTN_DECAY, true, LR_LINNORM_LAYER, 2, 4, 1, 45, 45, 33, 15, 7, LR_F32, true, GAMMA},
    {"decay gates grouped", LR_LINATTN_DECAY, true, LR_LINNORM_LAYER, 1, 4, 2, 130, 130, 19, 64, 32, LR_F32, true, GATES},
    {"decay strong gates", LR_LINATTN_DECAY, true, LR_LINNORM_LAYER, 1, 2, 2, 70, 70, 16, 16, 16, LR_F32, false,
     STRONG_GATES},
    {"decay gates bf16", LR_LINATTN_DECAY, true, LR_LINNORM_LAYER, 1, 1, 1, 66, 66, 32, 32, 0, LR_BF16, false, GATES},
};

/* Each case: quadratic reference, recurrent reference (causal), then the kernel at every
 * CPU level the machine has with 1, 2 and 3 threads. */
static void test_against_references(void)
{
    lr_ctx *ref_ctx = make_ctx(2, -1);
    REQUIRE(ref_ctx);
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const lin_case *c = &cases[ci];
        lin_data d;
        if (!lin_data_make(&d, c)) {
            CHECKF(0, "%s: out of memory", c->what);
            lin_data_free(&d);
            continue;
        }
        lr_status s = lr_linear_attention_quadratic(ref_ctx, &d.p, &d.q.t, &d.k.t, &d.v.t, &d.ref.t);
        CHECKF(s == LR_OK, "%s: quadratic: %s", c->what, lr_ctx_last_error(ref_ctx));
        if (c->causal || c->kind == LR_LINATTN_DECAY) {
            s = lr_linear_attention_recurrent(ref_ctx, &d.p, &d.q.t, &d.k.t, &d.v.t, &d.rec.t);
            CHECKF(s == LR_OK, "%s: recurrent: %s", c->what, lr_ctx_last_error(ref_ctx));
            double e = rel_error(&d.rec.t, &d.ref.t, -1);
            CHECKF(e <= TOL_REFS, "%s: recurrent vs quadratic %.3g", c->what, e);
        }
        for (int level = LR_CPU_REF; level <= LR_CPU_AVX512; level++) {
            for (int threads = 1; threads <= 3; threads++) {
                lr_ctx *ctx = make_ctx(threads, level);
                REQUIRE(ctx);
                if ((int)lr_ctx_cpu(ctx) != level) {
                    lr_ctx_destroy(ctx);
                    break;
                }
                s = lr_linear_attention(ctx, &d.p, &d.q.t, &d.k.t, &d.v.t, &d.out.t);
                CHECKF(s == LR_OK, "%s: %s", c->what, lr_ctx_last_error(ctx));
                if (threads == 1) {
                    double e = rel_error(&d.out.t, &d.ref.t, -1);
                    CHECKF(e <= TOL_KERNEL, "%s %s: chunked vs quadratic %.3g", c->what,
                           lr_cpu_level_name((lr_cpu_level)level), e);
                    CHECK(lr_tensor_copy(ctx, &d.out.t, &d.one.t) == LR_OK);
                } else {
                    int64_t differ = bit_differences(&d.out.t, &d.one.t, c->Lq);
                    CHECKF(differ == 0, "%s %s: %lld values differ between 1 and %d threads", c->what,
                           lr_cpu_level_name((lr_cpu_level)level), (long long)differ, threads);
                }
                lr_ctx_destroy(ctx);
            }
        }
        lin_data_free(&d);
    }
    lr_ctx_destroy(ref_ctx);
}

/* Row i of a causal output depends on tokens 0..i only: a prefix of the sequence, passed as
 * a view of the full tensors, gives the same rows bit for bit. */
static void test_prefix(void)
{
    static const lin_case prefix_cases[] = {
        {"elu", LR_LINATTN_ELU, true, LR_LINNORM_LAYER, 1, 2, 2, 150, 150, 20, 24, 32, LR_F32, false, NO_DECAY},
        {"norm", LR_LINATTN_NORM, true, LR_LINNORM_RMS, 1, 2, 2, 150, 150, 20, 24, 32, LR_F32, false, NO_DECAY},
        {"gamma", LR_LINATTN_DECAY, true, LR_LINNORM_LAYER, 1, 4, 4, 150, 150, 20, 24, 32, LR_F32, false, GAMMA},
        {"gates", LR_LINATTN_DECAY, true, LR_LINNORM_LAYER, 1, 2, 2, 150, 150, 20, 24, 32, LR_F32, false, GATES},
    };
    static const int64_t prefixes[] = {1, 31, 32, 33, 149};
    for (size_t ci = 0; ci < sizeof prefix_cases / sizeof prefix_cases[0]; ci++) {
        const lin_case *c = &prefix_cases[ci];
        lin_data d;
        REQUIRE(lin_data_make(&d, c));
        for (int level = LR_CPU_REF; level <= LR_CPU_AVX512; level++) {
            lr_ctx *ctx = make_ctx(2, level);
            REQUIRE(ctx);
            if ((int)lr_ctx_cpu(ctx) == level) {
                CHECK(lr_linear_attention(ctx, &d.p, &d.q.t, &d.k.t, &d.v.t, &d.out.t) == LR_OK);
                for (size_t pi = 0; pi < sizeof prefixes / sizeof prefixes[0]; pi++) {
                    int64_t n = prefixes[pi];
                    lr_tensor q, k, v, g, out;
                    lr_linattn_params p = d.p;
                    CHECK(lr_tensor_slice(ctx, &d.q.t, 2, 0, n, &q) == LR_OK);
                    CHECK(lr_tensor_slice(ctx, &d.k.t, 2, 0, n, &k) == LR_OK);
                    CHECK(lr_tensor_slice(ctx, &d.v.t, 2, 0, n, &v) == LR_OK);
                    CHECK(lr_tensor_slice(ctx, &d.ref.t, 2, 0, n, &out) == LR_OK);
                    if (p.gates) {
                        CHECK(lr_tensor_slice(ctx, p.gates, 2, 0, n, &g) == LR_OK);
                        p.gates = &g;
                    }
                    CHECK(lr_linear_attention(ctx, &p, &q, &k, &v, &out) == LR_OK);
                    int64_t differ = bit_differences(&out, &d.out.t, n);
                    CHECKF(differ == 0, "%s %s prefix %lld: %lld values differ", c->what,
                           lr_cpu_level_name((lr_cpu_level)level), (long long)n, (long long)differ);
                }
            }
            lr_ctx_destroy(ctx);
        }
        lin_data_free(&d);
    }
}

static void test_errors(void)
{
    lr_ctx *ctx = make_ctx(1, -1);
    REQUIRE(ctx);
    lr_ctx_set_log_level(ctx, LR_LOG_ERROR);
    lin_case c = {"errors", LR_LINATTN_ELU, true, LR_LINNORM_LAYER, 1, 2, 2, 8, 8, 4, 4, 0, LR_F32, false, NO_DECAY};
    lin_data d;
    REQUIRE(lin_data_make(&d, &c));
    lr_linattn_params p = d.p;
    CHECK(lr_linear_attention(ctx, &p, &d.q.t, &d.k.t, &d.v.t, &d.out.t) == LR_OK);
    p.chunk = 5000;
    CHECK(lr_linear_attention(ctx, &p, &d.q.t, &d.k.t, &d.v.t, &d.out.t) == LR_ERR_ARG);
    p = d.p;
    p.eps = -1.0f;
    CHECK(lr_linear_attention(ctx, &p, &d.q.t, &d.k.t, &d.v.t, &d.out.t) == LR_ERR_ARG);
    p = d.p;
    p.kind = LR_LINATTN_DECAY; /* neither gamma nor gates */
    CHECK(lr_linear_attention(ctx, &p, &d.q.t, &d.k.t, &d.v.t, &d.out.t) == LR_ERR_ARG);
    CHECK(strstr(lr_ctx_last_error(ctx), "gamma") != NULL);
    float gamma[2] = {0.5f, 1.5f};
    int64_t H = 2;
    lr_tensor gt = lr_tensor_from(gamma, LR_F32, 1, &H);
    p.gamma = &gt;
    CHECK(lr_linear_attention(ctx, &p, &d.q.t, &d.k.t, &d.v.t, &d.out.t) == LR_ERR_ARG);
    gamma[1] = 1.0f;
    CHECK(lr_linear_attention(ctx, &p, &d.q.t, &d.k.t, &d.v.t, &d.out.t) == LR_OK);
    p = d.p;
    p.gamma = &gt; /* gamma on a kind without decay */
    CHECK(lr_linear_attention(ctx, &p, &d.q.t, &d.k.t, &d.v.t, &d.out.t) == LR_ERR_ARG);
    /* Causal with Lq != Lk. */
    lr_tensor q_short;
    CHECK(lr_tensor_slice(ctx, &d.q.t, 2, 0, 4, &q_short) == LR_OK);
    lr_tensor out_short;
    CHECK(lr_tensor_slice(ctx, &d.out.t, 2, 0, 4, &out_short) == LR_OK);
    CHECK(lr_linear_attention(ctx, &d.p, &q_short, &d.k.t, &d.v.t, &out_short) == LR_ERR_ARG);
    p = d.p;
    p.causal = false;
    CHECK(lr_linear_attention(ctx, &p, &q_short, &d.k.t, &d.v.t, &out_short) == LR_OK);
    CHECK(lr_linear_attention_recurrent(ctx, &p, &q_short, &d.k.t, &d.v.t, &out_short) == LR_ERR_ARG);
    /* A last dimension that is not contiguous, and mismatched head dims. */
    lr_tensor bad = d.k.t;
    bad.stride[3] = 2;
    CHECK(lr_linear_attention(ctx, &d.p, &d.q.t, &bad, &d.v.t, &d.out.t) == LR_ERR_ARG);
    bad = d.k.t;
    bad.shape[3] = 3;
    CHECK(lr_linear_attention(ctx, &d.p, &d.q.t, &bad, &d.v.t, &d.out.t) == LR_ERR_ARG);
    CHECK(lr_linear_attention(ctx, &d.p, &d.q.t, NULL, &d.v.t, &d.out.t) == LR_ERR_ARG);
    lin_data_free(&d);
    lr_ctx_destroy(ctx);
}

static void test_flops(void)
{
    lr_linattn_params p = lr_linattn_default_params();
    /* Non-causal: (Lq + Lk) D Dv multiply-adds. */
    CHECK(lr_linear_attention_flops(&p, 1, 1, 10, 20, 4, 8) == 2.0 * 30 * 4 * 8);
    /* Causal, chunk 4, L = 10: chunks of 4, 4, 2 hold 10 + 10 + 3 pairs of j <= i. */
    p.causal = true;
    p.chunk = 4;
    CHECK(lr_linear_attention_flops(&p, 2, 3, 10, 10, 4, 8) == 2.0 * 6 * (20 * 4 * 8 + 23 * 12));
    CHECK(lr_linear_attention_flops(&p, 1, 1, -1, 10, 4, 8) < 0);
}

int main(void)
{
    RUN(test_against_references);
    RUN(test_prefix);
    RUN(test_errors);
    RUN(test_flops);
    return CHECK_DONE();
}
