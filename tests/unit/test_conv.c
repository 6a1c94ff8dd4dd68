/* 2-D convolutions: lr_conv2d and lr_conv_transpose2d against their double references at
 * every CPU level this machine has (1x1 images, odd sizes, channel counts off the vector
 * widths, kernels 1/3/5/9, 1x7 and 7x1, strides 1-3, dilations 1-3, asymmetric pads, groups
 * 1/2/3/depthwise/depth multiplier, every activation, with and without bias, several K blocks
 * and pixel tiles, transposed bands of both parities), the plain cases on both of lr_conv2d's
 * paths (implicit GEMM and direct, forced with LR_CONV_PATH) and the direct path at awkward
 * sizes (widths 1..40, cout 1..64 across its channel blocks, cin 1..80, kernels 1/3/5/7,
 * asymmetric pads); bit-identical output for 1, 2 and 3 threads; the transposed op as the adjoint of the convolution; pixel shuffle against its
 * definition; parity with PyTorch fixtures (tests/fixtures/conv, tools/make_conv_fixtures.py,
 * within 1e-5); argument errors.
 *
 * Error measure: max |fast - ref| over (1 + max |ref|); tolerance 2e-6 per sqrt(K) terms, the
 * rounding of an FP32 sum of K products of numbers in [-1, 1). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kernel_test.h"
#include "longrange/conv.h"
#include "longrange/core.h"
#include "longrange/model.h"

static float *random_array(size_t n)
{
    float *x = malloc((n ? n : 1) * sizeof *x);
    for (size_t i = 0; i < n; i++)
        x[i] = random_float();
    return x;
}

static float *filled(size_t n, float v)
{
    float *x = malloc((n ? n : 1) * sizeof *x);
    for (size_t i = 0; i < n; i++)
        x[i] = v;
    return x;
}

static double max_err(const float *got, const float *want, size_t n)
{
    double diff = 0, scale = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - (double)want[i]);
        diff = isnan(e) ? INFINITY : fmax(diff, e);
        scale = fmax(scale, fabs((double)want[i]));
    }
    return diff / (1.0 + scale);
}

typedef struct {
    const char *name;
    int cin, cout, h, w;
    int kh, kw, sh, sw, dh, dw;
    int pt, pl, pb, pr; /* pads */
    int oph, opw;       /* output padding (transposed) */
    int groups;
    lr_act act;
    int prelu_shared;   /* PReLU with one slope rather than cout */
} conv_case;

static lr_conv2d_desc desc_of(const conv_case *c, const float *slopes)
{
    lr_conv2d_desc d = lr_conv2d_default(c->kh, c->kw);
    d.stride_h = c->sh ? c->sh : 1;
    d.stride_w = c->sw ? c->sw : 1;
    d.dil_h = c->dh ? c->dh : 1;
    d.dil_w = c->dw ? c->dw : 1;
    d.pad_top = c->pt;
    d.pad_left = c->pl;
    d.pad_bottom = c->pb;
    d.pad_right = c->pr;
    d.out_pad_h = c->oph;
    d.out_pad_w = c->opw;
    d.groups = c->groups ? c->groups : 1;
    d.act = c->act;
    d.act_alpha = 0.1f;
    d.act_param = slopes;
    d.act_param_count = c->prelu_shared ? 1 : c->cout;
    return d;
}

/* Runs one case (conv or transposed) at every level and thread count against the reference. */
static void run_case_bias(const conv_case *c, bool transposed, bool with_bias)
{
    lr_conv2d_desc d = desc_of(c, NULL);
    int groups = d.groups, ho, wo;
    if (transposed)
        lr_conv_transpose2d_out_size(&d, c->h, c->w, &ho, &wo);
    else
        lr_conv2d_out_size(&d, c->h, c->w, &ho, &wo);
    CHECKF(ho > 0 && wo > 0, "%s: empty output", c->name);
    if (ho < 1 || wo < 1)
        return;
    size_t n_in = (size_t)c->cin * c->h * c->w, n_out = (size_t)c->cout * ho * wo;
    size_t n_w = (size_t)c->cout * (c->cin / groups) * c->kh * c->kw;
    float *in = random_array(n_in), *weight = random_array(n_w);
    float *bias = with_bias ? random_array((size_t)c->cout) : NULL;
    float *slopes = random_array((size_t)c->cout);
    d = desc_of(c, slopes);
    float *want = filled(n_out, NAN), *got = malloc(n_out * sizeof *got), *first = malloc(n_out * sizeof *first);
    int K = (transposed ? c->cout / groups : c->cin / groups) * c->kh * c->kw;
    double tol = 2e-6 * sqrt((double)K) + 1e-6;

    lr_ctx *ref_ctx = make_ctx(2, LR_CPU_REF);
    lr_status s = transposed ? lr_conv_transpose2d_ref(ref_ctx, &d, in, c->cin, c->h, c->w, weight, bias, c->cout, want)
                             : lr_conv2d_ref(ref_ctx, &d, in, c->cin, c->h, c->w, weight, bias, c->cout, want);
    CHECKF(s == LR_OK, "%s: ref failed: %s", c->name, lr_ctx_last_error(ref_ctx));
    lr_ctx_destroy(ref_ctx);

    for (int level = LR_CPU_REF; level <= LR_CPU_AVX512; level++) {
        for (int threads = 1; threads <= 3; threads++) {
            lr_ctx *ctx = make_ctx_at(threads, (lr_cpu_level)level);
            if (!ctx)
                break;
            for (size_t i = 0; i < n_out; i++)
                got[i] = NAN; /* the fast path must write every output */
            s = transposed ? lr_conv_transpose2d(ctx, &d, in, c->cin, c->h, c->w, weight, bias, c->cout, got)
                           : lr_conv2d(ctx, &d, in, c->cin, c->h, c->w, weight, bias, c->cout, got);
            CHECKF(s == LR_OK, "%s: %s", c->name, lr_ctx_last_error(ctx));
            if (threads == 1) {
                double e = max_err(got, want, n_out);
                CHECKF(e <= tol, "%s%s at %s: error %.3g > %.3g", transposed ? "transposed " : "", c->name,
                       lr_cpu_level_name((lr_cpu_level)level), e, tol);
                memcpy(first, got, n_out * sizeof *got);
            } else {
                CHECKF(memcmp(first, got, n_out * sizeof *got) == 0, "%s%s at %s: %d threads differ from 1",
                       transposed ? "transposed " : "", c->name, lr_cpu_level_name((lr_cpu_level)level), threads);
            }
            lr_ctx_destroy(ctx);
        }
    }
    free(in);
    free(weight);
    free(bias);
    free(slopes);
    free(want);
    free(got);
    free(first);
}

static void run_case(const conv_case *c, bool transposed) { run_case_bias(c, transposed, true); }

/* name, cin, cout, h, w, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, oph, opw, groups, act */
static const conv_case conv_cases[] = {
    {"1x1 image, 3x3 pad 1", 3, 5, 1, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, LR_ACT_NONE, 0},
    {"1x1 image, 1x1", 7, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1, LR_ACT_RELU, 0},
    {"odd 3x3", 7, 13, 17, 23, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, LR_ACT_NONE, 0},
    {"3x3 no pad", 19, 9, 11, 6, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1, LR_ACT_LEAKY_RELU, 0},
    {"5x5 stride 2", 5, 17, 19, 21, 5, 5, 2, 2, 1, 1, 2, 2, 2, 2, 0, 0, 1, LR_ACT_RELU, 0},
    {"9x9", 3, 33, 14, 15, 9, 9, 1, 1, 1, 1, 4, 4, 4, 4, 0, 0, 1, LR_ACT_NONE, 0},
    {"1x7", 12, 10, 9, 20, 1, 7, 1, 1, 1, 1, 0, 3, 0, 3, 0, 0, 1, LR_ACT_NONE, 0},
    {"7x1", 12, 10, 20, 9, 7, 1, 1, 1, 1, 1, 3, 0, 3, 0, 0, 0, 1, LR_ACT_SIGMOID, 0},
    {"stride 3", 6, 7, 16, 17, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 0, 0, 1, LR_ACT_NONE, 0},
    {"stride 2x3", 6, 7, 16, 17, 3, 5, 2, 3, 1, 1, 0, 2, 1, 0, 0, 0, 1, LR_ACT_NONE, 0},
    {"dilation 2", 9, 11, 15, 13, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 0, 0, 1, LR_ACT_HARDSWISH, 0},
    {"dilation 3x2", 9, 11, 15, 13, 3, 3, 1, 1, 3, 2, 3, 1, 2, 0, 0, 0, 1, LR_ACT_NONE, 0},
    {"TF SAME stride 2", 8, 16, 13, 14, 3, 3, 2, 2, 1, 1, 0, 0, 1, 1, 0, 0, 1, LR_ACT_HARDSWISH, 0},
    {"big pads", 3, 4, 5, 4, 3, 3, 1, 1, 1, 1, 4, 0, 2, 5, 0, 0, 1, LR_ACT_NONE, 0},
    {"groups 2", 10, 14, 12, 11, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 2, LR_ACT_PRELU, 0},
    {"groups 3 stride 2", 9, 6, 12, 11, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0, 0, 3, LR_ACT_NONE, 0},
    {"depthwise 3x3", 19, 19, 13, 37, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 19, LR_ACT_RELU, 0},
    {"depthwise 5x5 stride 2", 13, 13, 23, 21, 5, 5, 2, 2, 1, 1, 2, 2, 2, 2, 0, 0, 13, LR_ACT_NONE, 0},
    {"depthwise 3x3 dilation 3", 5, 5, 17, 70, 3, 3, 1, 1, 3, 3, 3, 3, 3, 3, 0, 0, 5, LR_ACT_PRELU, 1},
    {"depthwise 5x5 wide", 3, 3, 6, 150, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, 0, 0, 3, LR_ACT_RELU, 0},
    {"depthwise 3x1 dilation 2x1", 4, 4, 9, 97, 3, 1, 1, 1, 2, 1, 1, 0, 3, 0, 0, 0, 4, LR_ACT_NONE, 0},
    {"depthwise 3x3 stride 2 wide", 3, 3, 7, 200, 3, 3, 2, 2, 1, 1, 0, 0, 1, 1, 0, 0, 3, LR_ACT_HARDSWISH, 0},
    {"depthwise 5x3 stride 3x2 dil 2", 2, 2, 30, 161, 5, 3, 3, 2, 2, 2, 4, 1, 1, 3, 0, 0, 2, LR_ACT_NONE, 0},
    {"depthwise 7x7 asym", 6, 6, 9, 8, 7, 7, 1, 1, 1, 1, 0, 3, 6, 2, 0, 0, 6, LR_ACT_NONE, 0},
    {"depthwise 1x1 image", 4, 4, 1, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 4, LR_ACT_SIGMOID, 0},
    {"depthwise stride 3", 3, 3, 20, 19, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 0, 0, 3, LR_ACT_NONE, 0},
    {"depth multiplier 2", 5, 10, 9, 9, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 5, LR_ACT_NONE, 0},
    {"1x1 direct", 64, 64, 33, 35, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1, LR_ACT_RELU, 0},
    {"1x1 groups 4", 12, 20, 7, 9, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 4, LR_ACT_NONE, 0},
    {"1x1 stride 2", 10, 6, 9, 10, 1, 1, 2, 2, 1, 1, 0, 0, 0, 0, 0, 0, 1, LR_ACT_NONE, 0},
    {"1x1 padded", 5, 6, 4, 5, 1, 1, 1, 1, 1, 1, 1, 0, 0, 2, 0, 0, 1, LR_ACT_LEAKY_RELU, 0},
    {"bands: 9x9 x 64", 64, 24, 41, 39, 9, 9, 1, 1, 1, 1, 4, 4, 4, 4, 0, 0, 1, LR_ACT_RELU, 0},
    {"bands, groups 2", 128, 6, 30, 31, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, 0, 0, 2, LR_ACT_NONE, 0},
};

/* Every case on lr_conv2d's own choice of path, then forced onto each path where it has both
 * (the GEMM and the direct one; LR_CONV_PATH is the switch conv.c reads). */
static void test_conv_vs_ref(void)
{
    const char *paths[] = {NULL, "gemm", "direct"};
    for (size_t p = 0; p < sizeof paths / sizeof paths[0]; p++) {
        seed_random(11);
        if (paths[p])
            setenv("LR_CONV_PATH", paths[p], 1);
        for (size_t i = 0; i < sizeof conv_cases / sizeof conv_cases[0]; i++)
            run_case(&conv_cases[i], false);
        unsetenv("LR_CONV_PATH");
    }
}

/* The direct path (stride 1, few output channels, or wide rows) at awkward sizes: widths
 * 1..40 around the vector widths, output channels 1..24 (one or two channel blocks) and some
 * of 25..64 (several blocks of unequal sizes), input channels 1..80, kernels 1/3/5/7 and
 * 1x5/5x1, asymmetric pads up to the kernel size, every activation, with and without bias. */
static void test_direct_awkward(void)
{
    seed_random(17);
    const int cins[] = {1, 2, 3, 5, 12, 17, 32, 64, 80};
    const int kernels[][2] = {{1, 1}, {3, 3}, {5, 5}, {7, 7}, {1, 5}, {5, 1}, {3, 3}};
    const lr_act acts[] = {LR_ACT_NONE, LR_ACT_RELU, LR_ACT_LEAKY_RELU, LR_ACT_PRELU, LR_ACT_PRELU,
                           LR_ACT_SIGMOID, LR_ACT_HARDSWISH};
    for (int i = 0; i < 48; i++) {
        conv_case c = {.name = "direct awkward"};
        c.w = 1 + i * 7 % 40;
        c.h = 1 + i * 5 % 11;
        c.cout = i < 40 ? 1 + i * 11 % 24 : 25 + i * 13 % 40;
        c.cin = cins[i * 4 % 9];
        c.kh = kernels[i % 7][0];
        c.kw = kernels[i % 7][1];
        c.sh = c.sw = c.dh = c.dw = 1;
        c.groups = 1;
        /* pads: any split of up to kh - 1 + 1 rows, but the output at least 1x1 */
        c.pt = (i * 3) % c.kh;
        c.pb = (i + 1) % (c.kh + 1);
        c.pl = (i * 5) % c.kw;
        c.pr = (i * 2 + 1) % (c.kw + 1);
        while (c.h + c.pt + c.pb < c.kh)
            c.pb++;
        while (c.w + c.pl + c.pr < c.kw)
            c.pr++;
        c.act = acts[i % 7];
        c.prelu_shared = i % 7 == 4;
        if (i >= 40)
            c.w += 20; /* wide enough that lr_conv2d picks the direct path for many channels */
        run_case_bias(&c, false, i % 5 != 3);
    }
    /* the SR layer shapes, on a tile with odd edges */
    const conv_case sr[] = {
        {"FSRCNN 3x3 12->12 TF SAME", 12, 12, 19, 37, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, LR_ACT_PRELU, 0},
        {"FSRCNN 5x5 1->56 TF SAME", 1, 56, 13, 35, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, 0, 0, 1, LR_ACT_PRELU, 0},
        {"FSRCNN 1x1 56->12", 56, 12, 9, 33, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1, LR_ACT_PRELU, 0},
        {"ESPCN 3x3 32->4", 32, 4, 11, 41, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, LR_ACT_NONE, 0},
        {"RDN 3x3 80->4", 80, 4, 10, 23, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, LR_ACT_RELU, 0},
        {"tall band", 3, 5, 70, 9, 7, 7, 1, 1, 1, 1, 3, 3, 3, 3, 0, 0, 1, LR_ACT_NONE, 0},
    };
    for (size_t i = 0; i < sizeof sr / sizeof sr[0]; i++)
        run_case(&sr[i], false);
}

static void test_conv_every_activation(void)
{
    seed_random(12);
    const lr_act acts[] = {LR_ACT_NONE, LR_ACT_RELU, LR_ACT_LEAKY_RELU, LR_ACT_PRELU, LR_ACT_PRELU,
                           LR_ACT_SIGMOID, LR_ACT_HARDSWISH};
    for (size_t a = 0; a < sizeof acts / sizeof acts[0]; a++) {
        conv_case gemm = {"act gemm", 6, 9, 7, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, acts[a], a == 4};
        conv_case dw = {"act depthwise", 9, 9, 7, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 9, acts[a], a == 4};
        conv_case tr = {"act transposed", 6, 9, 5, 4, 2, 2, 2, 2, 1, 1, 0, 0, 0, 0, 0, 0, 1, acts[a], a == 4};
        run_case(&gemm, false);
        run_case(&dw, false);
        run_case(&tr, true);
    }
}

/* Without a bias (NULL): with and without an activation, on every path. */
static void test_no_bias(void)
{
    seed_random(16);
    for (int act = 0; act < 2; act++) {
        lr_act a = act ? LR_ACT_RELU : LR_ACT_NONE;
        conv_case gemm = {"no bias gemm", 5, 7, 9, 10, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, a, 0};
        conv_case direct = {"no bias 1x1", 5, 7, 9, 10, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1, a, 0};
        conv_case dw = {"no bias depthwise", 6, 6, 9, 10, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 6, a, 0};
        conv_case tr = {"no bias transposed", 5, 7, 4, 5, 4, 4, 2, 2, 1, 1, 1, 1, 1, 1, 0, 0, 1, a, 0};
        run_case_bias(&gemm, false, false);
        run_case_bias(&direct, false, false);
        run_case_bias(&dw, false, false);
        run_case_bias(&tr, true, false);
    }
}

/* name, cin, cout, h, w, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, oph, opw, groups, act */
static const conv_case transpose_cases[] = {
    {"k2 s2 (MediaPipe)", 16, 16, 9, 7, 2, 2, 2, 2, 1, 1, 0, 0, 0, 0, 0, 0, 1, LR_ACT_NONE, 0},
    {"k4 s2 p1 (RIFE)", 13, 7, 10, 11, 4, 4, 2, 2, 1, 1, 1, 1, 1, 1, 0, 0, 1, LR_ACT_PRELU, 0},
    {"k3 s2 p1 op1", 5, 6, 6, 7, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, LR_ACT_NONE, 0},
    {"k3 s1 p1", 8, 5, 12, 9, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, LR_ACT_NONE, 0},
    {"asymmetric crop", 4, 6, 7, 8, 4, 3, 2, 3, 1, 1, 0, 2, 3, 0, 0, 0, 1, LR_ACT_RELU, 0},
    {"dilation 2 stride 3", 3, 4, 5, 6, 3, 2, 3, 3, 2, 2, 1, 0, 0, 1, 2, 1, 1, LR_ACT_NONE, 0},
    {"groups 2", 6, 10, 5, 7, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0, 0, 2, LR_ACT_NONE, 0},
    {"depthwise", 7, 7, 6, 5, 4, 4, 2, 2, 1, 1, 1, 1, 1, 1, 0, 0, 7, LR_ACT_NONE, 0},
    {"1x1 image", 3, 2, 1, 1, 3, 3, 2, 2, 1, 1, 0, 0, 0, 0, 0, 0, 1, LR_ACT_NONE, 0},
    {"kernel below stride", 3, 2, 5, 4, 1, 1, 2, 2, 1, 1, 0, 0, 0, 0, 1, 1, 1, LR_ACT_NONE, 0},
    {"bands", 32, 64, 40, 60, 4, 4, 2, 2, 1, 1, 1, 1, 1, 1, 0, 0, 1, LR_ACT_NONE, 0},
    {"K blocks", 520, 2, 5, 6, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 0, 1, LR_ACT_NONE, 0},
    {"k7 s1 tall", 3, 5, 37, 9, 7, 3, 1, 1, 2, 1, 3, 1, 3, 1, 0, 0, 1, LR_ACT_NONE, 0},
    {"k2 s2 wide", 4, 3, 3, 131, 2, 2, 2, 2, 1, 1, 0, 0, 0, 0, 0, 0, 1, LR_ACT_NONE, 0},
};

static void test_transpose_vs_ref(void)
{
    seed_random(13);
    for (size_t i = 0; i < sizeof transpose_cases / sizeof transpose_cases[0]; i++)
        run_case(&transpose_cases[i], true);
}

/* The transposed convolution is the adjoint of the convolution with the same desc:
 * <conv(x), y> == <x, conv_t(y)>, which pins the weight layouts to each other. */
static void test_transpose_is_adjoint(void)
{
    seed_random(14);
    const conv_case c = {"adjoint", 6, 4, 11, 10, 3, 4, 2, 3, 2, 1, 1, 2, 0, 1, 0, 0, 2, LR_ACT_NONE, 0};
    lr_conv2d_desc d = desc_of(&c, NULL);
    int ho, wo, th, tw;
    lr_conv2d_out_size(&d, c.h, c.w, &ho, &wo);
    /* the transposed op maps ho x wo back to h x w once output padding restores the remainder */
    d.out_pad_h = (c.h + c.pt + c.pb - c.dh * (c.kh - 1) - 1) % c.sh;
    d.out_pad_w = (c.w + c.pl + c.pr - c.dw * (c.kw - 1) - 1) % c.sw;
    lr_conv_transpose2d_out_size(&d, ho, wo, &th, &tw);
    REQUIRE(th == c.h && tw == c.w);
    size_t nx = (size_t)c.cin * c.h * c.w, ny = (size_t)c.cout * ho * wo;
    float *x = random_array(nx), *y = random_array(ny), *wt = random_array((size_t)c.cout * 3 * c.kh * c.kw);
    float *cx = malloc(ny * sizeof *cx), *ty = malloc(nx * sizeof *ty);
    lr_ctx *ctx = make_ctx(2, LR_CPU_AVX512);
    REQUIRE(ctx);
    /* conv weight [cout][cin/g][kh][kw] is read as the transposed weight [cin'=cout][cout'/g=cin/g] */
    CHECK(lr_conv2d(ctx, &d, x, c.cin, c.h, c.w, wt, NULL, c.cout, cx) == LR_OK);
    CHECK(lr_conv_transpose2d(ctx, &d, y, c.cout, ho, wo, wt, NULL, c.cin, ty) == LR_OK);
    double a = 0, b = 0;
    for (size_t i = 0; i < ny; i++)
        a += (double)cx[i] * y[i];
    for (size_t i = 0; i < nx; i++)
        b += (double)x[i] * ty[i];
    CHECKF(fabs(a - b) <= 1e-4 * (1 + fabs(a)), "<conv x, y> = %.9g but <x, conv_t y> = %.9g", a, b);
    lr_ctx_destroy(ctx);
    free(x);
    free(y);
    free(wt);
    free(cx);
    free(ty);
}

static void test_out_size(void)
{
    lr_conv2d_desc d = lr_conv2d_default(3, 5);
    int ho, wo;
    lr_conv2d_out_size(&d, 10, 10, &ho, &wo);
    CHECK(ho == 8 && wo == 6);
    d.stride_h = 2;
    d.pad_top = 0;
    d.pad_bottom = 1;
    d.dil_w = 2;
    d.pad_left = d.pad_right = 4;
    lr_conv2d_out_size(&d, 10, 10, &ho, &wo); /* (10+1-2-1)/2+1 = 5; 10+8-8-1+1 = 10 */
    CHECK(ho == 5 && wo == 10);
    lr_conv2d_out_size(&d, 1, 1, &ho, &wo); /* (1+1-3)/2 < 0: empty */
    CHECK(ho == 0);
    d = lr_conv2d_default(4, 2);
    d.stride_h = d.stride_w = 2;
    d.pad_top = d.pad_bottom = 1;
    d.out_pad_w = 1;
    lr_conv_transpose2d_out_size(&d, 8, 8, &ho, &wo);
    CHECK(ho == 16 && wo == 17);
    d.pad_top = 20;
    lr_conv_transpose2d_out_size(&d, 8, 8, &ho, &wo);
    CHECK(ho == 0);
    d.kh = 0;
    lr_conv2d_out_size(&d, 8, 8, &ho, &wo);
    CHECK(ho == 0 && wo == 0);
}

static void test_activate(void)
{
    const float x[6] = {-3.5f, -1.0f, -0.0f, 0.25f, 2.0f, 4.0f};
    float slopes[2] = {0.5f, -2.0f};
    lr_conv2d_desc d = lr_conv2d_default(1, 1);
    for (int act = LR_ACT_NONE; act <= LR_ACT_HARDSWISH; act++) {
        float y[6];
        memcpy(y, x, sizeof y);
        d.act = (lr_act)act;
        d.act_alpha = 0.125f;
        d.act_param = slopes;
        d.act_param_count = 2;
        lr_activate(&d, y, 2, 3);
        for (int i = 0; i < 6; i++) {
            double v = x[i], want = v;
            switch (act) {
            case LR_ACT_RELU: want = v > 0 ? v : 0; break;
            case LR_ACT_LEAKY_RELU: want = v > 0 ? v : 0.125 * v; break;
            case LR_ACT_PRELU: want = v > 0 ? v : slopes[i / 3] * v; break;
            case LR_ACT_SIGMOID: want = 1 / (1 + exp(-v)); break;
            case LR_ACT_HARDSWISH: want = v * fmin(fmax(v + 3, 0), 6) / 6; break;
            }
            CHECKF(fabs(y[i] - want) <= 1e-6 * (1 + fabs(want)), "act %d x %g: %g, want %g", act, v, y[i], want);
        }
    }
}

static void test_pixel_shuffle(void)
{
    seed_random(15);
    const int shapes[][4] = {{1, 1, 1, 2}, {3, 5, 7, 2}, {2, 4, 3, 3}, {5, 2, 9, 1}, {1, 3, 3, 4}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int c = shapes[s][0], h = shapes[s][1], w = shapes[s][2], r = shapes[s][3];
        size_t n = (size_t)c * r * r * h * w;
        float *in = random_array(n), *out = filled(n, NAN);
        for (int threads = 1; threads <= 3; threads++) {
            lr_ctx *ctx = make_ctx(threads, LR_CPU_AVX512);
            CHECK(lr_pixel_shuffle(ctx, in, c, h, w, r, out) == LR_OK);
            int bad = 0;
            for (int ch = 0; ch < c; ch++)
                for (int y = 0; y < h * r; y++)
                    for (int x = 0; x < w * r; x++) {
                        float want = in[(((size_t)ch * r * r + (y % r) * r + x % r) * h + y / r) * w + x / r];
                        bad += out[((size_t)ch * h * r + y) * w * r + x] != want;
                    }
            CHECKF(bad == 0, "pixel_shuffle c %d h %d w %d r %d: %d wrong", c, h, w, r, bad);
            lr_ctx_destroy(ctx);
        }
        free(in);
        free(out);
    }
}

/* ---- parity with PyTorch ------------------------------------------------------------- */

static int64_t meta_int(lr_ctx *ctx, lr_model *m, const char *key, int64_t dflt)
{
    int64_t v = dflt;
    CHECKF(lr_model_meta_int(ctx, m, key, true, dflt, &v) == LR_OK, "%s", lr_ctx_last_error(ctx));
    return v;
}

/* A fixture holds input [cin, h, w], weight, bias (optional), expected [cout, ho, wo] and the
 * desc in its metadata ("op": conv2d | conv_transpose2d | pixel_shuffle). */
static void check_fixture(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "tests/fixtures/conv/%s.safetensors", name);
    lr_ctx *ctx = make_ctx(2, LR_CPU_AVX512);
    lr_model *m = NULL;
    lr_status s = lr_model_open(ctx, path, &m);
    CHECKF(s == LR_OK, "%s: %s", path, lr_ctx_last_error(ctx));
    if (s != LR_OK) {
        lr_ctx_destroy(ctx);
        return;
    }
    const char *op = lr_model_meta(m, "op");
    lr_tensor in, wt, bias, want;
    REQUIRE(op && lr_model_get(ctx, m, "input", LR_F32, 3, NULL, &in) == LR_OK &&
            lr_model_get(ctx, m, "output", LR_F32, 3, NULL, &want) == LR_OK);
    bool has_bias = lr_model_find(m, "bias") != NULL;
    if (has_bias)
        CHECK(lr_model_get(ctx, m, "bias", LR_F32, 1, NULL, &bias) == LR_OK);
    int cin = (int)in.shape[0], h = (int)in.shape[1], w = (int)in.shape[2];
    int cout = (int)want.shape[0];
    size_t n_out = (size_t)want.shape[0] * want.shape[1] * want.shape[2];
    float *got = filled(n_out, NAN);
    if (strcmp(op, "pixel_shuffle") == 0) {
        int r = (int)meta_int(ctx, m, "upscale", 2);
        s = lr_pixel_shuffle(ctx, in.data, cin / (r * r), h, w, r, got);
    } else {
        REQUIRE(lr_model_get(ctx, m, "weight", LR_F32, 4, NULL, &wt) == LR_OK);
        lr_conv2d_desc d = lr_conv2d_default((int)wt.shape[2], (int)wt.shape[3]);
        d.stride_h = (int)meta_int(ctx, m, "stride_h", 1);
        d.stride_w = (int)meta_int(ctx, m, "stride_w", 1);
        d.dil_h = (int)meta_int(ctx, m, "dil_h", 1);
        d.dil_w = (int)meta_int(ctx, m, "dil_w", 1);
        d.pad_top = d.pad_bottom = (int)meta_int(ctx, m, "pad_h", 0);
        d.pad_left = d.pad_right = (int)meta_int(ctx, m, "pad_w", 0);
        d.out_pad_h = (int)meta_int(ctx, m, "out_pad_h", 0);
        d.out_pad_w = (int)meta_int(ctx, m, "out_pad_w", 0);
        d.groups = (int)meta_int(ctx, m, "groups", 1);
        int ho, wo;
        if (strcmp(op, "conv2d") == 0) {
            lr_conv2d_out_size(&d, h, w, &ho, &wo);
            CHECKF(ho == want.shape[1] && wo == want.shape[2], "%s: out size %dx%d", name, ho, wo);
            s = lr_conv2d(ctx, &d, in.data, cin, h, w, wt.data, has_bias ? bias.data : NULL, cout, got);
        } else {
            lr_conv_transpose2d_out_size(&d, h, w, &ho, &wo);
            CHECKF(ho == want.shape[1] && wo == want.shape[2], "%s: out size %dx%d", name, ho, wo);
            s = lr_conv_transpose2d(ctx, &d, in.data, cin, h, w, wt.data, has_bias ? bias.data : NULL, cout, got);
        }
    }
    CHECKF(s == LR_OK, "%s: %s", name, lr_ctx_last_error(ctx));
    double e = max_err(got, want.data, n_out);
    CHECKF(e <= 1e-5, "%s: error %.3g against PyTorch", name, e);
    free(got);
    lr_model_close(m);
    lr_ctx_destroy(ctx);
}

static void test_pytorch_fixtures(void)
{
    const char *names[] = {"conv_basic", "conv_stride2_pad", "conv_dilation", "conv_groups", "conv_depthwise",
                           "conv_1x1", "convt_k2s2", "convt_k4s2p1", "convt_outpad", "pixel_shuffle"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        check_fixture(names[i]);
}

/* ---- bad arguments ------------------------------------------------------------------- */

static void expect_arg_error(lr_ctx *ctx, lr_status s, const char *what)
{
    CHECKF(s == LR_ERR_ARG, "%s: status %s, want ARG", what, lr_status_str(s));
    CHECKF(lr_ctx_last_error(ctx)[0] != '\0', "%s: no message", what);
    lr_clear_error(ctx);
}

static void test_bad_arguments(void)
{
    lr_ctx *ctx = make_ctx(1, LR_CPU_AVX512);
    REQUIRE(ctx);
    float in[64] = {0}, wt[64] = {0}, out[256];
    lr_conv2d_desc ok = lr_conv2d_default(3, 3), d;
    ok.pad_top = ok.pad_left = ok.pad_bottom = ok.pad_right = 1;
    CHECK(lr_conv2d(ctx, &ok, in, 2, 4, 4, wt, NULL, 2, out) == LR_OK);
    CHECK(lr_conv2d_ref(ctx, &ok, in, 2, 4, 4, wt, NULL, 2, out) == LR_OK);

    typedef lr_status (*conv_fn)(lr_ctx *, const lr_conv2d_desc *, const float *, int, int, int, const float *,
                                 const float *, int, float *);
    conv_fn fns[4] = {lr_conv2d, lr_conv2d_ref, lr_conv_transpose2d, lr_conv_transpose2d_ref};
    for (int f = 0; f < 4; f++) {
        conv_fn fn = fns[f];
        expect_arg_error(ctx, fn(ctx, NULL, in, 2, 4, 4, wt, NULL, 2, out), "NULL desc");
        expect_arg_error(ctx, fn(ctx, &ok, NULL, 2, 4, 4, wt, NULL, 2, out), "NULL in");
        expect_arg_error(ctx, fn(ctx, &ok, in, 2, 4, 4, NULL, NULL, 2, out), "NULL weight");
        expect_arg_error(ctx, fn(ctx, &ok, in, 2, 4, 4, wt, NULL, 2, NULL), "NULL out");
        expect_arg_error(ctx, fn(ctx, &ok, in, 0, 4, 4, wt, NULL, 2, out), "cin 0");
        expect_arg_error(ctx, fn(ctx, &ok, in, 2, 4, 4, wt, NULL, -1, out), "cout -1");
        expect_arg_error(ctx, fn(ctx, &ok, in, 2, 0, 4, wt, NULL, 2, out), "h 0");
        expect_arg_error(ctx, fn(ctx, &ok, in, 2, 4, 0, wt, NULL, 2, out), "w 0");
        d = ok, d.kh = 0;
        expect_arg_error(ctx, fn(ctx, &d, in, 2, 4, 4, wt, NULL, 2, out), "kernel 0");
        d = ok, d.stride_w = 0;
        expect_arg_error(ctx, fn(ctx, &d, in, 2, 4, 4, wt, NULL, 2, out), "stride 0");
        d = ok, d.dil_h = -1;
        expect_arg_error(ctx, fn(ctx, &d, in, 2, 4, 4, wt, NULL, 2, out), "dilation -1");
        d = ok, d.pad_right = -1;
        expect_arg_error(ctx, fn(ctx, &d, in, 2, 4, 4, wt, NULL, 2, out), "pad -1");
        d = ok, d.groups = 0;
        expect_arg_error(ctx, fn(ctx, &d, in, 2, 4, 4, wt, NULL, 2, out), "groups 0");
        d = ok, d.groups = 2;
        expect_arg_error(ctx, fn(ctx, &d, in, 3, 4, 4, wt, NULL, 2, out), "groups not dividing cin");
        expect_arg_error(ctx, fn(ctx, &d, in, 2, 4, 4, wt, NULL, 3, out), "groups not dividing cout");
        d = ok, d.act = LR_ACT_PRELU;
        expect_arg_error(ctx, fn(ctx, &d, in, 2, 4, 4, wt, NULL, 2, out), "PReLU without slopes");
        d.act_param = wt, d.act_param_count = 3;
        expect_arg_error(ctx, fn(ctx, &d, in, 2, 4, 4, wt, NULL, 2, out), "PReLU with 3 slopes for 2 channels");
        d = ok, d.act = (lr_act)99;
        expect_arg_error(ctx, fn(ctx, &d, in, 2, 4, 4, wt, NULL, 2, out), "unknown activation");
    }
    d = lr_conv2d_default(5, 5);
    expect_arg_error(ctx, lr_conv2d(ctx, &d, in, 2, 4, 4, wt, NULL, 2, out), "empty output");
    d = lr_conv2d_default(2, 2);
    d.pad_top = d.pad_bottom = 1;
    expect_arg_error(ctx, lr_conv_transpose2d(ctx, &d, in, 2, 1, 4, wt, NULL, 2, out), "cropped to nothing");
    d = lr_conv2d_default(2, 2);
    d.out_pad_h = -1;
    expect_arg_error(ctx, lr_conv_transpose2d(ctx, &d, in, 2, 4, 4, wt, NULL, 2, out), "output padding -1");
    expect_arg_error(ctx, lr_pixel_shuffle(ctx, in, 1, 2, 2, 0, out), "shuffle r 0");
    expect_arg_error(ctx, lr_pixel_shuffle(ctx, NULL, 1, 2, 2, 2, out), "shuffle NULL in");
    expect_arg_error(ctx, lr_pixel_shuffle(ctx, in, 0, 2, 2, 2, out), "shuffle c 0");
    lr_ctx_destroy(ctx);
}

int main(void)
{
    RUN(test_out_size);
    RUN(test_activate);
    RUN(test_conv_vs_ref);
    RUN(test_direct_awkward);
    RUN(test_conv_every_activation);
    RUN(test_no_bias);
    RUN(test_transpose_vs_ref);
    RUN(test_transpose_is_adjoint);
    RUN(test_pixel_shuffle);
    RUN(test_pytorch_fixtures);
    RUN(test_bad_arguments);
    return CHECK_DONE();
}
