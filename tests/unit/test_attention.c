/* Exact attention: lr_attention against lr_attention_ref (double accumulation) at every CPU
 * level this machine has, over CAB's four patterns, awkward lengths and head dims, grouped
 * heads, huge logits, fully masked rows, bias broadcasts, key padding, sliding windows with
 * sinks, block-sparse masks and strided views; the causal prefix property; bit-identical
 * output across thread counts; argument errors; lr_attention_pairs.
 *
 * Error measure: max |out - ref| over max |v| (an output row is a convex combination of
 * value rows, so max |v| is the scale every output lives at). Tolerances: 2e-6 in F32 (the
 * worst seen is 3.9e-7: float accumulation over head dims up to 256 and a polynomial exp2 of
 * ~1.6 ulp), also for BF16 inputs where the kernel widens them to F32 (the reference runs on
 * the same bf16 values, so only the kernel's own rounding counts); 2.5e-3 on the AVX-512
 * BF16 path, which rounds each probability to bf16 for P V: a relative error of at most
 * 2^-9 per term bounds the output error by 2^-9 max |v| (worst seen 1.4e-3). Rows that see
 * no key must be exactly zero in both. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kernel_test.h"
#include "longrange/attention.h"
#include "longrange/core.h"
#include "longrange/tensor.h"

#define OUT_SENTINEL -777.0f
#define TOL_F32 2e-6
#define TOL_BF16_NATIVE 2.5e-3

/* The contexts of one thread count, one per CPU level the machine supports. */
typedef struct {
    lr_ctx *ctx[3];
    int n;
} level_ctxs;

static int level_ctxs_open(level_ctxs *l, int threads)
{
    l->n = 0;
    for (int level = LR_CPU_REF; level <= LR_CPU_AVX512; level++) {
        lr_ctx *ctx = make_ctx(threads, (lr_cpu_level)level);
        if (!ctx)
            return 0;
        if ((int)lr_ctx_cpu(ctx) == level)
            l->ctx[l->n++] = ctx;
        else
            lr_ctx_destroy(ctx);
    }
    return l->n > 0;
}

static void level_ctxs_close(level_ctxs *l)
{
    for (int i = 0; i < l->n; i++)
        lr_ctx_destroy(l->ctx[i]);
}

/* A [B, H, L, D] tensor over its own storage. Strided: the storage is [B, L, H, D + 3]
 * (the layout of a projection before the head split, with padding), so no dimension is
 * contiguous but the last. Padding holds NaN in inputs (a kernel reading it would show)
 * and OUT_SENTINEL in outputs (a kernel writing it would show). */
typedef struct {
    lr_tensor t;
    void *mem;
    size_t n_mem;
} test_tensor;

static void set_value(test_tensor *x, size_t at, float f)
{
    if (x->t.dtype == LR_BF16)
        ((uint16_t *)x->mem)[at] = lr_f32_to_bf16(f);
    else
        ((float *)x->mem)[at] = f;
}

static float get_value(const test_tensor *x, size_t at)
{
    return x->t.dtype == LR_BF16 ? lr_bf16_to_f32(((uint16_t *)x->mem)[at]) : ((float *)x->mem)[at];
}

static test_tensor tensor_new(lr_dtype dt, int64_t B, int64_t H, int64_t L, int64_t D, bool strided, float amp,
                              bool integer, bool output)
{
    test_tensor x;
    int64_t row = strided ? D + 3 : D;
    x.n_mem = (size_t)(B * H * L * row) + 1;
    x.mem = malloc(x.n_mem * lr_dtype_size(dt));
    int64_t shape[4] = {B, H, L, D};
    x.t = lr_tensor_from(x.mem, dt, 4, shape);
    if (strided) {
        x.t.stride[3] = 1;
        x.t.stride[2] = H * row;
        x.t.stride[1] = row;
        x.t.stride[0] = L * H * row;
    }
    if (!x.mem)
        return x;
    for (size_t i = 0; i < x.n_mem; i++) {
        bool pad = strided && (int64_t)(i % (size_t)row) >= D;
        float r = amp * random_float();
        set_value(&x, i, output ? OUT_SENTINEL : pad || i + 1 == x.n_mem ? NAN : integer ? roundf(r) : r);
    }
    return x;
}

static size_t index_of(const test_tensor *x, int64_t b, int64_t h, int64_t i, int64_t c)
{
    return (size_t)(b * x->t.stride[0] + h * x->t.stride[1] + i * x->t.stride[2] + c);
}

static double max_abs(const test_tensor *x)
{
    double m = 0;
    for (int64_t b = 0; b < x->t.shape[0]; b++)
        for (int64_t h = 0; h < x->t.shape[1]; h++)
            for (int64_t i = 0; i < x->t.shape[2]; i++)
                for (int64_t c = 0; c < x->t.shape[3]; c++)
                    m = fmax(m, fabs((double)get_value(x, index_of(x, b, h, i, c))));
    return m;
}

/* A case: shapes, dtype, parameters, and how the inputs look. */
typedef struct {
    int64_t B, Hq, Hkv, Lq, Lk, D, Dv;
    lr_dtype dtype;
    lr_attn_params p;
    float amp;    /* inputs uniform in [-amp, amp] */
    bool strided; /* q, k, v and out as head-split views of [B, L, H, D] */
    bool integer; /* q and k hold integers, so every score is exact in float */
    const char *what;
} attn_case;

static attn_case base_case(int64_t Lq, int64_t Lk, int64_t D, const char *what)
{
    attn_case c = {1, 2, 2, Lq, Lk, D, D, LR_F32, lr_attn_default_params(), 1.5f, false, false, what};
    return c;
}

typedef struct {
    test_tensor q, k, v, out, ref;
} case_data;

static bool case_data_new(case_data *d, const attn_case *c)
{
    d->q = tensor_new(c->dtype, c->B, c->Hq, c->Lq, c->D, c->strided, c->amp, c->integer, false);
    d->k = tensor_new(c->dtype, c->B, c->Hkv, c->Lk, c->D, c->strided, c->amp, c->integer, false);
    d->v = tensor_new(c->dtype, c->B, c->Hkv, c->Lk, c->Dv, c->strided, 1.0f, false, false);
    d->out = tensor_new(LR_F32, c->B, c->Hq, c->Lq, c->Dv, c->strided, 0, false, true);
    d->ref = tensor_new(LR_F32, c->B, c->Hq, c->Lq, c->Dv, false, 0, false, true);
    return d->q.mem && d->k.mem && d->v.mem && d->out.mem && d->ref.mem;
}

static void case_data_free(case_data *d)
{
    free(d->q.mem);
    free(d->k.mem);
    free(d->v.mem);
    free(d->out.mem);
    free(d->ref.mem);
}

static double tolerance(const attn_case *c, lr_ctx *ctx)
{
    /* (an AVX-512 machine without BF16 widens too, and then meets the looser bound easily) */
    return c->dtype == LR_BF16 && lr_ctx_cpu(ctx) == LR_CPU_AVX512 ? TOL_BF16_NATIVE : TOL_F32;
}

/* Compares out with ref; rows that are zero in ref must be exactly zero in out, nothing may
 * be NaN, and the padding of a strided out must be untouched. Returns the error over
 * max |v|, or INFINITY on a structural failure (reported). */
static double compare(const attn_case *c, const case_data *d, const char *level)
{
    double diff = 0, scale = max_abs(&d->v);
    for (int64_t b = 0; b < c->B; b++)
        for (int64_t h = 0; h < c->Hq; h++)
            for (int64_t i = 0; i < c->Lq; i++) {
                bool ref_zero = true;
                for (int64_t x = 0; x < c->Dv; x++)
                    ref_zero &= get_value(&d->ref, index_of(&d->ref, b, h, i, x)) == 0.0f;
                for (int64_t x = 0; x < c->Dv; x++) {
                    float got = get_value(&d->out, index_of(&d->out, b, h, i, x));
                    float want = get_value(&d->ref, index_of(&d->ref, b, h, i, x));
                    if (isnan(got) || isnan(want) || (ref_zero && got != 0.0f)) {
                        printf("  %s %s: out[%lld][%lld][%lld][%lld] = %g, ref %g\n", level, c->what, (long long)b,
                               (long long)h, (long long)i, (long long)x, got, want);
                        return INFINITY;
                    }
                    diff = fmax(diff, fabs((double)got - want));
                }
            }
    if (c->strided) {
        int64_t row = c->Dv + 3;
        for (size_t i = 0; i + 1 < d->out.n_mem; i++)
            if ((int64_t)(i % (size_t)row) >= c->Dv && get_value(&d->out, i) != OUT_SENTINEL) {
                printf("  %s %s: out padding at %zu overwritten\n", level, c->what, i);
                return INFINITY;
            }
    }
    return scale > 0 ? diff / scale : diff;
}

/* Runs the case at every level in l against one reference result; reports what fails. */
static bool case_ok(const level_ctxs *l, const attn_case *c)
{
    case_data d;
    if (!case_data_new(&d, c)) {
        printf("  out of memory\n");
        case_data_free(&d);
        return false;
    }
    bool ok = lr_attention_ref(l->ctx[0], &c->p, &d.q.t, &d.k.t, &d.v.t, &d.ref.t) == LR_OK;
    if (!ok)
        printf("  %s: reference failed: %s\n", c->what, lr_ctx_last_error(l->ctx[0]));
    for (int li = 0; li < l->n && ok; li++) {
        lr_ctx *ctx = l->ctx[li];
        const char *level = lr_cpu_level_name(lr_ctx_cpu(ctx));
        if (lr_attention(ctx, &c->p, &d.q.t, &d.k.t, &d.v.t, &d.out.t) != LR_OK) {
            printf("  %s %s: %s\n", level, c->what, lr_ctx_last_error(ctx));
            ok = false;
            break;
        }
        double err = compare(c, &d, level);
        ok = err <= tolerance(c, ctx);
        if (!ok && err < INFINITY)
            printf("  %s %s: B %lld Hq %lld Hkv %lld Lq %lld Lk %lld D %lld Dv %lld %s: error %.3g > %.3g\n", level,
                   c->what, (long long)c->B, (long long)c->Hq, (long long)c->Hkv, (long long)c->Lq, (long long)c->Lk,
                   (long long)c->D, (long long)c->Dv, lr_dtype_name(c->dtype), err, tolerance(c, ctx));
    }
    case_data_free(&d);
    return ok;
}

/* Runs c in both dtypes. */
static bool case_ok_both(const level_ctxs *l, attn_case c)
{
    bool ok = case_ok(l, &c);
    c.dtype = LR_BF16;
    return case_ok(l, &c) && ok;
}

/* ---- the four CAB patterns, lengths and head dims --------------------------------------- */

static void test_cab_patterns(void)
{
    level_ctxs l;
    REQUIRE(level_ctxs_open(&l, 2));
    static const int64_t lens[][2] = {{1, 1},  {130, 130}, {37, 150}, {150, 37},
                                      {64, 64}, {1, 200},   {200, 1},  {5, 0}};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
        for (int causal = 0; causal < 2; causal++) {
            attn_case c = base_case(lens[i][0], lens[i][1], 64, causal ? "causal" : "non-causal");
            c.p.causal = causal;
            CHECK(case_ok_both(&l, c));
        }
    level_ctxs_close(&l);
}

static void test_head_dims(void)
{
    level_ctxs l;
    REQUIRE(level_ctxs_open(&l, 2));
    static const int64_t dims[][2] = {{32, 32}, {40, 40}, {64, 64}, {100, 100}, {128, 128}, {256, 256},
                                      {64, 40}, {40, 100}, {100, 64}, {33, 17}, {256, 32}};
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
        attn_case c = base_case(77, 101, dims[i][0], "head dims");
        c.Dv = dims[i][1];
        c.p.causal = i % 2;
        CHECK(case_ok_both(&l, c));
    }
    level_ctxs_close(&l);
}

static void test_grouped_heads_and_batches(void)
{
    level_ctxs l;
    REQUIRE(level_ctxs_open(&l, 2));
    attn_case gqa = base_case(70, 70, 64, "GQA 8/2");
    gqa.B = 2;
    gqa.Hq = 8;
    gqa.Hkv = 2;
    gqa.p.causal = true;
    CHECK(case_ok_both(&l, gqa));
    attn_case mqa = base_case(50, 90, 40, "MQA 4/1");
    mqa.Hq = 4;
    mqa.Hkv = 1;
    CHECK(case_ok_both(&l, mqa));
    level_ctxs_close(&l);
}

static void test_strided_views(void)
{
    level_ctxs l;
    REQUIRE(level_ctxs_open(&l, 2));
    attn_case c = base_case(90, 75, 40, "strided");
    c.B = 2;
    c.Hq = 4;
    c.Hkv = 2;
    c.Dv = 24;
    c.strided = true;
    c.p.causal = true;
    CHECK(case_ok_both(&l, c));
    level_ctxs_close(&l);
}

/* Logits up to about +-1e4 (integer q and k in [-8, 8] and scale 4, so that the scores are
 * exact and only the softmax's own arithmetic is on trial): nothing may overflow, and the
 * few rows whose top logits lie close must still be right. */
static void test_huge_logits(void)
{
    level_ctxs l;
    REQUIRE(level_ctxs_open(&l, 2));
    for (int causal = 0; causal < 2; causal++) {
        attn_case c = base_case(80, 80, 64, "logits 1e4");
        c.p.causal = causal;
        c.amp = 8.0f;
        c.integer = true;
        c.p.scale = 4.0f;
        CHECK(case_ok_both(&l, c));
    }
    level_ctxs_close(&l);
}

/* ---- masks ----------------------------------------------------------------------------- */

static void test_windows_and_sinks(void)
{
    level_ctxs l;
    REQUIRE(level_ctxs_open(&l, 2));
    static const struct {
        bool causal;
        int64_t left, right, sinks;
    } rules[] = {
        {true, 16, -1, 0}, {true, 16, -1, 4}, {false, 8, 8, 0}, {false, 8, 8, 3}, {false, 0, 0, 0},
        {true, 0, -1, 1}, {false, -1, 5, 0}, {false, 100, 20, 70}, {true, 70, -1, 0},
    };
    static const int64_t lens[][2] = {{200, 200}, {60, 190}, {190, 60}};
    for (size_t r = 0; r < sizeof rules / sizeof rules[0]; r++)
        for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
            attn_case c = base_case(lens[i][0], lens[i][1], 40, "window");
            c.p.causal = rules[r].causal;
            c.p.window_left = rules[r].left;
            c.p.window_right = rules[r].right;
            c.p.n_sink = rules[r].sinks;
            CHECK(case_ok(&l, &c));
        }
    attn_case c = base_case(150, 150, 64, "window bf16");
    c.dtype = LR_BF16;
    c.p.causal = true;
    c.p.window_left = 30;
    c.p.n_sink = 2;
    CHECK(case_ok(&l, &c));
    level_ctxs_close(&l);
}

/* Bias in every broadcast shape, with -inf entries and a row that is -inf throughout. */
static void test_bias(void)
{
    level_ctxs l;
    REQUIRE(level_ctxs_open(&l, 2));
    static const int64_t shapes[][2] = {{1, 1}, {2, 1}, {1, 4}, {2, 4}};
    for (size_t s = 0; s < 4; s++) {
        attn_case c = base_case(70, 90, 32, "bias");
        c.B = 2;
        c.Hq = 4;
        c.Hkv = 4;
        c.p.causal = s % 2;
        int64_t shape[4] = {shapes[s][0], shapes[s][1], c.Lq, c.Lk};
        float *bias = malloc((size_t)(shape[0] * shape[1] * c.Lq * c.Lk) * sizeof *bias);
        REQUIRE(bias);
        int64_t n = shape[0] * shape[1] * c.Lq * c.Lk;
        for (int64_t i = 0; i < n; i++)
            bias[i] = i % 7 == 3 ? -INFINITY : 3.0f * random_float();
        for (int64_t j = 0; j < c.Lk; j++) /* query row 5 of the first head sees nothing */
            bias[5 * c.Lk + j] = -INFINITY;
        lr_tensor t = lr_tensor_from(bias, LR_F32, 4, shape);
        c.p.bias = &t;
        CHECK(case_ok_both(&l, c));
        free(bias);
    }
    level_ctxs_close(&l);
}

/* Random padding, a batch entry with every key padded (its rows are zero), and padding
 * combined with a causal window. */
static void test_key_padding(void)
{
    level_ctxs l;
    REQUIRE(level_ctxs_open(&l, 2));
    attn_case c = base_case(100, 140, 64, "key padding");
    c.B = 3;
    uint8_t pad[3 * 140];
    for (int j = 0; j < 140; j++) {
        pad[j] = random_float() > 0.4f;
        pad[140 + j] = 1;
        pad[280 + j] = j >= 100;
    }
    int64_t shape[2] = {3, 140};
    lr_tensor t = lr_tensor_from(pad, LR_U8, 2, shape);
    c.p.key_padding = &t;
    CHECK(case_ok_both(&l, c));
    c.p.causal = true;
    c.p.window_left = 20;
    c.p.n_sink = 3;
    CHECK(case_ok(&l, &c));
    level_ctxs_close(&l);
}

static void test_block_sparse(void)
{
    level_ctxs l;
    REQUIRE(level_ctxs_open(&l, 2));
    static const int64_t blocks[][2] = {{64, 64}, {32, 48}, {100, 16}, {7, 130}};
    for (size_t bi = 0; bi < sizeof blocks / sizeof blocks[0]; bi++)
        for (int per_head = 0; per_head < 2; per_head++) {
            attn_case c = base_case(230, 250, 64, "block-sparse");
            c.Hq = 2;
            c.p.causal = bi % 2;
            c.p.block_q = blocks[bi][0];
            c.p.block_k = blocks[bi][1];
            int64_t shape[3] = {per_head ? c.Hq : 1, (c.Lq + c.p.block_q - 1) / c.p.block_q,
                                (c.Lk + c.p.block_k - 1) / c.p.block_k};
            int64_t n = shape[0] * shape[1] * shape[2];
            uint8_t *mask = malloc((size_t)n);
            REQUIRE(mask);
            for (int64_t i = 0; i < n; i++)
                mask[i] = random_float() > 0.0f;
            for (int64_t j = 0; j < shape[2]; j++) /* the first block row sees nothing */
                mask[j] = 0;
            lr_tensor t = lr_tensor_from(mask, LR_U8, 3, shape);
            c.p.block_mask = &t;
            CHECK(per_head ? case_ok_both(&l, c) : case_ok(&l, &c));
            free(mask);
        }
    level_ctxs_close(&l);
}

/* ---- properties ------------------------------------------------------------------------ */

/* Row i of the causal output on the full sequence equals row i on the prefix 0..i. */
static void test_causal_prefix(void)
{
    level_ctxs l;
    REQUIRE(level_ctxs_open(&l, 2));
    static const int64_t rows[] = {0, 1, 47, 63, 64, 65, 130, 199};
    for (int dt = 0; dt < 2; dt++) {
        attn_case c = base_case(200, 200, 64, "prefix");
        c.dtype = dt ? LR_BF16 : LR_F32;
        c.p.causal = true;
        case_data d;
        REQUIRE(case_data_new(&d, &c));
        float *part = malloc((size_t)(c.Hq * c.Lq * c.Dv) * sizeof *part);
        REQUIRE(part);
        for (int li = 0; li < l.n; li++) {
            lr_ctx *ctx = l.ctx[li];
            CHECK(lr_attention(ctx, &c.p, &d.q.t, &d.k.t, &d.v.t, &d.out.t) == LR_OK);
            for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
                int64_t i = rows[r];
                lr_tensor q, k, v;
                CHECK(lr_tensor_slice(ctx, &d.q.t, 2, 0, i + 1, &q) == LR_OK);
                CHECK(lr_tensor_slice(ctx, &d.k.t, 2, 0, i + 1, &k) == LR_OK);
                CHECK(lr_tensor_slice(ctx, &d.v.t, 2, 0, i + 1, &v) == LR_OK);
                int64_t shape[4] = {1, c.Hq, i + 1, c.Dv};
                lr_tensor out = lr_tensor_from(part, LR_F32, 4, shape);
                CHECK(lr_attention(ctx, &c.p, &q, &k, &v, &out) == LR_OK);
                double diff = 0, scale = max_abs(&d.v);
                for (int64_t h = 0; h < c.Hq; h++)
                    for (int64_t x = 0; x < c.Dv; x++) {
                        float full = get_value(&d.out, index_of(&d.out, 0, h, i, x));
                        float pre = part[(h * (i + 1) + i) * c.Dv + x];
                        diff = fmax(diff, fabs((double)full - pre));
                    }
                CHECKF(diff <= tolerance(&c, ctx) * scale, "%s %s row %lld: prefix differs by %.3g (scale %.3g)",
                       lr_cpu_level_name(lr_ctx_cpu(ctx)), lr_dtype_name(c.dtype), (long long)i, diff, scale);
            }
        }
        free(part);
        case_data_free(&d);
    }
    level_ctxs_close(&l);
}

/* The same output, bit for bit, for 1, 2, 3 and 5 threads, at every level. */
static void test_thread_counts_identical(void)
{
    static const int threads[] = {1, 2, 3, 5};
    for (int dt = 0; dt < 2; dt++) {
        attn_case c = base_case(300, 300, 64, "threads");
        c.Hq = 3;
        c.Hkv = 3;
        c.dtype = dt ? LR_BF16 : LR_F32;
        c.p.causal = true;
        case_data d;
        REQUIRE(case_data_new(&d, &c));
        size_t bytes = (size_t)(c.Hq * c.Lq * c.Dv) * sizeof(float);
        float *first = malloc(bytes);
        REQUIRE(first);
        for (int level = LR_CPU_REF; level <= LR_CPU_AVX512; level++) {
            for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
                lr_ctx *ctx = make_ctx(threads[t], (lr_cpu_level)level);
                REQUIRE(ctx);
                if ((int)lr_ctx_cpu(ctx) == level) {
                    CHECK(lr_attention(ctx, &c.p, &d.q.t, &d.k.t, &d.v.t, &d.out.t) == LR_OK);
                    if (t == 0)
                        memcpy(first, d.out.mem, bytes);
                    else
                        CHECKF(memcmp(first, d.out.mem, bytes) == 0, "%s %s: %d threads differ from 1",
                               lr_cpu_level_name((lr_cpu_level)level), lr_dtype_name(c.dtype), threads[t]);
                }
                lr_ctx_destroy(ctx);
            }
        }
        free(first);
        case_data_free(&d);
    }
}

/* ---- errors and pair counts ------------------------------------------------------------ */

static bool fails_with_arg(lr_ctx *ctx, const lr_attn_params *p, const lr_tensor *q, const lr_tensor *k,
                           const lr_tensor *v, lr_tensor *out)
{
    lr_clear_error(ctx);
    lr_status fast = lr_attention(ctx, p, q, k, v, out);
    bool fast_msg = strncmp(lr_ctx_last_error(ctx), "attention: ", 11) == 0;
    lr_clear_error(ctx);
    lr_status ref = lr_attention_ref(ctx, p, q, k, v, out);
    bool ref_msg = strncmp(lr_ctx_last_error(ctx), "attention: ", 11) == 0;
    return fast == LR_ERR_ARG && ref == LR_ERR_ARG && fast_msg && ref_msg;
}

static void test_argument_errors(void)
{
    lr_ctx *ctx = make_ctx(1, LR_CPU_AVX512);
    REQUIRE(ctx);
    static float buf[4096];
    int64_t qs[4] = {1, 4, 8, 16}, ks[4] = {1, 2, 8, 16}, os[4] = {1, 4, 8, 16};
    lr_tensor q = lr_tensor_from(buf, LR_F32, 4, qs), k = lr_tensor_from(buf, LR_F32, 4, ks);
    lr_tensor v = k, out = lr_tensor_from(buf + 1024, LR_F32, 4, os);
    lr_attn_params p = lr_attn_default_params();
    CHECK(lr_attention(ctx, &p, &q, &k, &v, &out) == LR_OK);
    CHECK(lr_attention(ctx, NULL, &q, &k, &v, &out) == LR_OK); /* NULL: the defaults */

    lr_tensor bad = k;
    bad.shape[3] = 8; /* head dims of q and k differ */
    CHECK(fails_with_arg(ctx, &p, &q, &bad, &v, &out));
    bad = k;
    bad.shape[1] = 3; /* 4 query heads over 3 kv heads */
    CHECK(fails_with_arg(ctx, &p, &q, &bad, &bad, &out));
    bad = v;
    bad.shape[2] = 7; /* k and v lengths differ */
    CHECK(fails_with_arg(ctx, &p, &q, &k, &bad, &out));
    bad = out;
    bad.shape[2] = 9; /* out rows */
    CHECK(fails_with_arg(ctx, &p, &q, &k, &v, &bad));
    bad = q;
    bad.dtype = LR_F16;
    CHECK(fails_with_arg(ctx, &p, &bad, &k, &v, &out));
    bad = out;
    bad.dtype = LR_BF16;
    CHECK(fails_with_arg(ctx, &p, &q, &k, &v, &bad));
    bad = q;
    bad.stride[3] = 2; /* the last dimension must be contiguous */
    CHECK(fails_with_arg(ctx, &p, &bad, &k, &v, &out));
    bad = q;
    bad.ndim = 3;
    CHECK(fails_with_arg(ctx, &p, &bad, &k, &v, &out));
    CHECK(fails_with_arg(ctx, &p, NULL, &k, &v, &out));

    static float bias_buf[4 * 8 * 8];
    int64_t bias_bad[4] = {1, 3, 8, 8}, bias_rows[4] = {1, 1, 8, 7};
    lr_tensor bias = lr_tensor_from(bias_buf, LR_F32, 4, bias_bad);
    lr_attn_params pb = p;
    pb.bias = &bias;
    CHECK(fails_with_arg(ctx, &pb, &q, &k, &v, &out));
    bias = lr_tensor_from(bias_buf, LR_F32, 4, bias_rows);
    CHECK(fails_with_arg(ctx, &pb, &q, &k, &v, &out));

    static uint8_t bytes[64];
    int64_t pad_shape[2] = {1, 8}, mask_shape[3] = {1, 2, 2};
    lr_tensor pad = lr_tensor_from(bytes, LR_F32, 2, pad_shape);
    lr_attn_params pp = p;
    pp.key_padding = &pad;
    CHECK(fails_with_arg(ctx, &pp, &q, &k, &v, &out));
    lr_tensor mask = lr_tensor_from(bytes, LR_U8, 3, mask_shape);
    lr_attn_params pm = p;
    pm.block_mask = &mask;
    CHECK(fails_with_arg(ctx, &pm, &q, &k, &v, &out)); /* block sizes missing */
    pm.block_q = 4;
    pm.block_k = 4;
    CHECK(lr_attention(ctx, &pm, &q, &k, &v, &out) == LR_OK);
    pm.block_k = 3; /* 8 keys in blocks of 3 need 3 mask columns */
    CHECK(fails_with_arg(ctx, &pm, &q, &k, &v, &out));

    lr_attn_params pw = p;
    pw.window_left = -2;
    CHECK(fails_with_arg(ctx, &pw, &q, &k, &v, &out));
    pw = p;
    pw.n_sink = -1;
    CHECK(fails_with_arg(ctx, &pw, &q, &k, &v, &out));
    pw = p;
    pw.scale = NAN;
    CHECK(fails_with_arg(ctx, &pw, &q, &k, &v, &out));
    pw.scale = -1.0f;
    CHECK(fails_with_arg(ctx, &pw, &q, &k, &v, &out));
    lr_ctx_destroy(ctx);
}

/* Pairs counted one by one from the documented rules. */
static int64_t count_pairs(const lr_attn_params *p, int64_t Lq, int64_t Lk, const uint8_t *mask, int64_t mask_cols)
{
    int64_t n = 0;
    for (int64_t i = 0; i < Lq; i++)
        for (int64_t j = 0; j < Lk; j++) {
            int64_t pos = i + Lk - Lq;
            bool in_window = (p->window_left < 0 || j >= pos - p->window_left) &&
                             (p->window_right < 0 || j <= pos + p->window_right);
            bool ok = (!p->causal || j <= pos) && (in_window || j < p->n_sink) &&
                      (!mask || mask[i / p->block_q * mask_cols + j / p->block_k]);
            n += ok;
        }
    return n;
}

static void test_pairs(void)
{
    lr_attn_params p = lr_attn_default_params();
    CHECK(lr_attention_pairs(&p, 2, 3, 10, 20) == 2 * 3 * 10 * 20);
    p.causal = true;
    CHECK(lr_attention_pairs(&p, 1, 1, 100, 100) == 100 * 101 / 2);
    CHECK(lr_attention_pairs(&p, 1, 1, 100, 0) == 0);
    static const struct {
        bool causal;
        int64_t left, right, sinks, Lq, Lk;
    } cases[] = {
        {true, 16, -1, 0, 100, 100}, {true, 16, -1, 4, 100, 130}, {false, 8, 3, 2, 90, 60},
        {false, 0, 0, 0, 50, 50},    {true, -1, -1, 0, 80, 30},   {false, 5, -1, 200, 40, 40},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        p.causal = cases[i].causal;
        p.window_left = cases[i].left;
        p.window_right = cases[i].right;
        p.n_sink = cases[i].sinks;
        CHECKF(lr_attention_pairs(&p, 2, 2, cases[i].Lq, cases[i].Lk) ==
                   4 * count_pairs(&p, cases[i].Lq, cases[i].Lk, NULL, 0),
               "pairs case %zu: %lld, want %lld", i, (long long)lr_attention_pairs(&p, 2, 2, cases[i].Lq, cases[i].Lk),
               (long long)(4 * count_pairs(&p, cases[i].Lq, cases[i].Lk, NULL, 0)));
    }
    uint8_t mask[4 * 5];
    for (int i = 0; i < 20; i++)
        mask[i] = (uint8_t)(i % 3 != 0);
    int64_t shape[3] = {1, 4, 5};
    lr_tensor t = lr_tensor_from(mask, LR_U8, 3, shape);
    p = lr_attn_default_params();
    p.causal = true;
    p.block_mask = &t;
    p.block_q = 25;
    p.block_k = 20;
    CHECK(lr_attention_pairs(&p, 1, 3, 100, 100) == 3 * count_pairs(&p, 100, 100, mask, 5));
    p.block_k = 0;
    CHECK(lr_attention_pairs(&p, 1, 3, 100, 100) == -1);
}

int main(void)
{
    seed_random(7);
    RUN(test_cab_patterns);
    RUN(test_head_dims);
    RUN(test_grouped_heads_and_batches);
    RUN(test_strided_views);
    RUN(test_huge_logits);
    RUN(test_windows_and_sinks);
    RUN(test_bias);
    RUN(test_key_padding);
    RUN(test_block_sparse);
    RUN(test_causal_prefix);
    RUN(test_thread_counts_identical);
    RUN(test_argument_errors);
    RUN(test_pairs);
    return CHECK_DONE();
}
