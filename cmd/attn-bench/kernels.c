/* The kernel table: every kernel attn-bench measures and checks, with its reference. */
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn_bench.h"
#include "longrange/linear_attention.h"
#include "longrange/natten.h"

const char *const pattern_names[PATTERN_COUNT] = {
    [PATTERN_SELF] = "self",
    [PATTERN_CAUSAL] = "causal",
    [PATTERN_CROSS] = "cross",
    [PATTERN_CAUSAL_CROSS] = "causal-cross",
};

bool pattern_is_causal(attn_pattern p) { return p == PATTERN_CAUSAL || p == PATTERN_CAUSAL_CROSS; }
bool pattern_is_cross(attn_pattern p) { return p == PATTERN_CROSS || p == PATTERN_CAUSAL_CROSS; }

lr_attn_params softmax_params(const attn_case *c, bool windowed)
{
    lr_attn_params p = lr_attn_default_params();
    p.scale = c->scale;
    p.causal = pattern_is_causal(c->pattern);
    if (windowed) {
        /* Both sides for the non-causal patterns; the causal rule cuts the right side. */
        p.window_left = c->window;
        p.window_right = c->window;
        p.n_sink = c->sinks;
    }
    p.bias = c->bias;
    p.key_padding = c->key_padding;
    return p;
}

/* Rows [row0, row0 + n) through lr_attention_ref on a slice of q. The mask is aligned to the
 * last key (key j is visible to row i iff j <= i + Lk - Lq, windows likewise), so the slice
 * keeps that alignment: the last rows keep every key, and the first rows of a causal case keep
 * the keys up to the last one they can see, which are all they could ever see. */
static lr_status softmax_reference_rows(lr_ctx *ctx, const attn_case *c, bool windowed,
                                        const lr_tensor *q, const lr_tensor *k,
                                        const lr_tensor *v, int64_t row0, lr_tensor *out_rows)
{
    int64_t n = out_rows->shape[2];
    int64_t keys = c->Lk;
    if (row0 + n < c->Lq) {
        assert(pattern_is_causal(c->pattern));
        keys = row0 + n + c->Lk - c->Lq;
    }
    if (keys <= 0) { /* rows before the first key see nothing: the defined result is zeros */
        memset(out_rows->data, 0, (size_t)lr_tensor_numel(out_rows) * sizeof(float));
        return LR_OK;
    }
    lr_tensor qs, ks, vs, bias, padding;
    lr_status s = lr_tensor_slice(ctx, q, 2, row0, n, &qs);
    if (s == LR_OK)
        s = lr_tensor_slice(ctx, k, 2, 0, keys, &ks);
    if (s == LR_OK)
        s = lr_tensor_slice(ctx, v, 2, 0, keys, &vs);
    attn_case sub = *c;
    sub.Lq = n;
    sub.Lk = keys;
    if (s == LR_OK && c->bias) {
        s = lr_tensor_slice(ctx, c->bias, 2, row0, n, &bias);
        if (s == LR_OK)
            s = lr_tensor_slice(ctx, &bias, 3, 0, keys, &bias);
        sub.bias = &bias;
    }
    if (s == LR_OK && c->key_padding) {
        s = lr_tensor_slice(ctx, c->key_padding, 1, 0, keys, &padding);
        sub.key_padding = &padding;
    }
    if (s != LR_OK)
        return s;
    lr_attn_params p = softmax_params(&sub, windowed);
    return lr_attention_ref(ctx, &p, &qs, &ks, &vs, out_rows);
}

/* QK^T and PV: a multiply-add (2 FLOPs) per head dimension each, for every visible pair. */
static double softmax_flops(const attn_case *c, bool windowed)
{
    lr_attn_params p = softmax_params(c, windowed);
    return 4.0 * (double)c->D * (double)lr_attention_pairs(&p, c->B, c->Hq, c->Lq, c->Lk);
}

/* ---- flash: exact attention, lr_attention ---- */

static lr_status flash_run(lr_ctx *ctx, const attn_case *c, const lr_tensor *q,
                           const lr_tensor *k, const lr_tensor *v, lr_tensor *out)
{
    lr_attn_params p = softmax_params(c, false);
    return lr_attention(ctx, &p, q, k, v, out);
}

lr_status exact_reference_rows(lr_ctx *ctx, const attn_case *c, const lr_tensor *q,
                               const lr_tensor *k, const lr_tensor *v, int64_t row0,
                               lr_tensor *out_rows)
{
    return softmax_reference_rows(ctx, c, false, q, k, v, row0, out_rows);
}

static double exact_flops(const attn_case *c) { return softmax_flops(c, false); }

/* ---- naive: the reference itself, lr_attention_ref ---- */

static lr_status naive_run(lr_ctx *ctx, const attn_case *c, const lr_tensor *q,
                           const lr_tensor *k, const lr_tensor *v, lr_tensor *out)
{
    lr_attn_params p = softmax_params(c, false);
    return lr_attention_ref(ctx, &p, q, k, v, out);
}

/* ---- window: sliding window with sink tokens, lr_attention ---- */

static lr_status window_run(lr_ctx *ctx, const attn_case *c, const lr_tensor *q,
                            const lr_tensor *k, const lr_tensor *v, lr_tensor *out)
{
    lr_attn_params p = softmax_params(c, true);
    return lr_attention(ctx, &p, q, k, v, out);
}

static lr_status window_reference_rows(lr_ctx *ctx, const attn_case *c, const lr_tensor *q,
                                       const lr_tensor *k, const lr_tensor *v, int64_t row0,
                                       lr_tensor *out_rows)
{
    return softmax_reference_rows(ctx, c, true, q, k, v, row0, out_rows);
}

static double window_flops(const attn_case *c) { return softmax_flops(c, true); }

/* ---- na1d, na2d: neighbourhood attention, lr_na1d and lr_na2d ---- */

/* The kernel size of a case: the 2 * window + 1 keys of the window kernel, cut to the
 * largest odd size that fits the axis (NA needs an axis of at least k); causal windows need
 * no cut, so a causal prefix keeps its kernel. */
static int64_t na_kernel_size(int64_t window, int64_t axis, bool causal)
{
    int64_t k = 2 * window + 1;
    return causal || k <= axis ? k : axis % 2 ? axis : axis - 1;
}

/* The image of a 2D case: L = rows * cols, rows the largest divisor of L up to sqrt(L). */
static void na2d_image(int64_t L, int64_t *rows, int64_t *cols)
{
    int64_t best = 1;
    for (int64_t f = 1; f * f <= L; f++)
        if (L % f == 0)
            best = f;
    *rows = best;
    *cols = L / best;
}

static int64_t na_kernel_of_case(const attn_case *c, bool two_d)
{
    int64_t rows = 1, cols = c->Lk;
    if (two_d)
        na2d_image(c->Lk, &rows, &cols);
    return na_kernel_size(c->window, two_d ? (rows < cols ? rows : cols) : cols,
                          pattern_is_causal(c->pattern));
}

lr_status input_f32(lr_ctx *ctx, const lr_tensor *t, lr_tensor *wide, lr_tensor *use)
{
    *use = *t;
    if (t->dtype == LR_F32)
        return LR_OK;
    lr_status s = tensor_zeros(ctx, 4, t->shape, LR_F32, wide);
    if (s == LR_OK)
        s = lr_tensor_copy(ctx, t, wide);
    *use = *wide;
    return s;
}

/* Heads g, g + G, g + 2G, ... (G query heads per kv head) of batch item b: they share the kv
 * heads 0, 1, ... in order. 2D views the length as the case's image [rows, cols]. */
static lr_tensor na_heads(const lr_tensor *t, bool two_d, int64_t b, int64_t g, int64_t G,
                          int64_t rows, int64_t cols)
{
    lr_tensor v = *t;
    v.data = (float *)t->data + g * t->stride[1] + (two_d ? b * t->stride[0] : 0);
    v.shape[1] = t->shape[1] / G;
    v.stride[1] = t->stride[1] * G;
    if (two_d) {
        int64_t shape[4] = {v.shape[1], rows, cols, t->shape[3]};
        int64_t stride[4] = {v.stride[1], cols * t->stride[2], t->stride[2], 1};
        memcpy(v.shape, shape, sizeof shape);
        memcpy(v.stride, stride, sizeof stride);
    }
    return v;
}

static lr_status na_run(lr_ctx *ctx, const attn_case *c, bool two_d, const lr_tensor *q,
                        const lr_tensor *k, const lr_tensor *v, lr_tensor *out)
{
    lr_na_params p = lr_na_default_params();
    p.kernel_size = na_kernel_of_case(c, two_d);
    p.scale = c->scale;
    p.causal = pattern_is_causal(c->pattern);
    int64_t rows = 1, cols = c->Lk, G = c->Hq / c->Hkv;
    if (two_d)
        na2d_image(c->Lk, &rows, &cols);
    lr_tensor wide[3] = {{0}, {0}, {0}}, in[3];
    const lr_tensor *src[3] = {q, k, v};
    lr_status s = LR_OK;
    for (int i = 0; i < 3 && s == LR_OK; i++)
        s = input_f32(ctx, src[i], &wide[i], &in[i]);
    for (int64_t b = 0; b < (two_d ? c->B : 1) && s == LR_OK; b++) {
        for (int64_t g = 0; g < G && s == LR_OK; g++) {
            lr_tensor qh = na_heads(&in[0], two_d, b, g, G, rows, cols);
            lr_tensor kh = na_heads(&in[1], two_d, b, 0, 1, rows, cols);
            lr_tensor vh = na_heads(&in[2], two_d, b, 0, 1, rows, cols);
            lr_tensor oh = na_heads(out, two_d, b, g, G, rows, cols);
            s = two_d ? lr_na2d(ctx, &p, &qh, &kh, &vh, &oh) : lr_na1d(ctx, &p, &qh, &kh, &vh, &oh);
        }
    }
    for (int i = 0; i < 3; i++)
        free(wide[i].data);
    return s;
}

static lr_status na1d_run(lr_ctx *ctx, const attn_case *c, const lr_tensor *q,
                          const lr_tensor *k, const lr_tensor *v, lr_tensor *out)
{
    return na_run(ctx, c, false, q, k, v, out);
}

static lr_status na2d_run(lr_ctx *ctx, const attn_case *c, const lr_tensor *q,
                          const lr_tensor *k, const lr_tensor *v, lr_tensor *out)
{
    return na_run(ctx, c, true, q, k, v, out);
}

/* The exact result, independently of lr_na*: per query row, softmax attention
 * (lr_attention_ref) over the key range its neighbours span, with a bias of -inf on every
 * key of the range that is not a neighbour (lr_na_neighbours). */
static lr_status na_reference_rows(lr_ctx *ctx, const attn_case *c, bool two_d,
                                   const lr_tensor *q, const lr_tensor *k, const lr_tensor *v,
                                   int64_t row0, lr_tensor *out_rows)
{
    int64_t ks = na_kernel_of_case(c, two_d), rows = 1, cols = c->Lk;
    bool causal = pattern_is_causal(c->pattern);
    if (two_d)
        na2d_image(c->Lk, &rows, &cols);
    int64_t *iy = malloc(2 * (size_t)ks * sizeof(int64_t)), *ix = iy ? iy + ks : NULL;
    float *bias = malloc((size_t)(two_d ? ks * cols : ks) * sizeof(float));
    lr_status s = iy && bias ? LR_OK : lr_fail(ctx, LR_ERR_NOMEM, "na: no memory for the reference");
    lr_attn_params p = lr_attn_default_params();
    p.scale = c->scale;
    for (int64_t n = 0; n < out_rows->shape[2] && s == LR_OK; n++) {
        int64_t i = row0 + n, y = i / cols, x = i % cols;
        int64_t ny = two_d ? lr_na_neighbours(y, rows, ks, 1, false, iy, NULL) : 1;
        int64_t nx = lr_na_neighbours(x, cols, ks, 1, causal, ix, NULL);
        if (!two_d)
            iy[0] = 0;
        int64_t lo = iy[0] * cols + ix[0], hi = iy[ny - 1] * cols + ix[nx - 1] + 1;
        for (int64_t j = 0; j < hi - lo; j++)
            bias[j] = -INFINITY;
        for (int64_t a = 0; a < ny; a++)
            for (int64_t b = 0; b < nx; b++)
                bias[iy[a] * cols + ix[b] - lo] = 0.0f;
        int64_t bias_shape[4] = {1, 1, 1, hi - lo};
        lr_tensor bt = lr_tensor_from(bias, LR_F32, 4, bias_shape), qs, kk, vs, os;
        p.bias = &bt;
        if ((s = lr_tensor_slice(ctx, q, 2, i, 1, &qs)) == LR_OK &&
            (s = lr_tensor_slice(ctx, k, 2, lo, hi - lo, &kk)) == LR_OK &&
            (s = lr_tensor_slice(ctx, v, 2, lo, hi - lo, &vs)) == LR_OK &&
            (s = lr_tensor_slice(ctx, out_rows, 2, n, 1, &os)) == LR_OK)
            s = lr_attention_ref(ctx, &p, &qs, &kk, &vs, &os);
    }
    free(iy);
    free(bias);
    return s;
}

static lr_status na1d_reference_rows(lr_ctx *ctx, const attn_case *c, const lr_tensor *q,
                                     const lr_tensor *k, const lr_tensor *v, int64_t row0,
                                     lr_tensor *out_rows)
{
    return na_reference_rows(ctx, c, false, q, k, v, row0, out_rows);
}

static lr_status na2d_reference_rows(lr_ctx *ctx, const attn_case *c, const lr_tensor *q,
                                     const lr_tensor *k, const lr_tensor *v, int64_t row0,
                                     lr_tensor *out_rows)
{
    return na_reference_rows(ctx, c, true, q, k, v, row0, out_rows);
}

/* 4 * D per (query, neighbour) pair: k per query (fewer at the start when causal). */
static double na1d_flops(const attn_case *c)
{
    double k = (double)na_kernel_of_case(c, false), L = (double)c->Lq;
    double pairs = !pattern_is_causal(c->pattern) ? L * k
                   : L <= k                        ? L * (L + 1) / 2
                                                   : k * (k + 1) / 2 + (L - k) * k;
    return 4.0 * (double)c->D * (double)c->B * (double)c->Hq * pairs;
}

static double na2d_flops(const attn_case *c)
{
    double k = (double)na_kernel_of_case(c, true);
    return 4.0 * (double)c->D * (double)c->B * (double)c->Hq * (double)c->Lq * k * k;
}

/* ---- linear, linear-norm, linear-decay: the linear attention family, lr_linear_attention ---- */

/* The parameters of a case; the decay kind takes RetNet's per-head schedule
 * gamma_h = 1 - 2^(-5 - h) (gamma_data, freed by the caller). */
typedef struct {
    lr_linattn_params p;
    lr_tensor gamma;
    float *gamma_data;
} linear_setup;

static lr_status linear_setup_for(lr_ctx *ctx, const attn_case *c, lr_linattn_kind kind,
                                  linear_setup *s)
{
    memset(s, 0, sizeof *s);
    s->p = lr_linattn_default_params();
    s->p.kind = kind;
    s->p.causal = pattern_is_causal(c->pattern);
    if (kind != LR_LINATTN_DECAY)
        return LR_OK;
    s->gamma_data = malloc(((size_t)c->Hq + 1) * sizeof(float));
    if (!s->gamma_data)
        return lr_fail(ctx, LR_ERR_NOMEM, "linear-decay: no memory for the decays");
    for (int64_t h = 0; h < c->Hq; h++)
        s->gamma_data[h] = 1.0f - ldexpf(1.0f, -5 - (int)(h < 100 ? h : 100));
    s->gamma = lr_tensor_from(s->gamma_data, LR_F32, 1, &c->Hq);
    s->p.gamma = &s->gamma;
    return LR_OK;
}

static lr_status linear_run_kind(lr_ctx *ctx, const attn_case *c, lr_linattn_kind kind,
                                 const lr_tensor *q, const lr_tensor *k, const lr_tensor *v,
                                 lr_tensor *out)
{
    linear_setup s;
    lr_status st = linear_setup_for(ctx, c, kind, &s);
    if (st == LR_OK)
        st = lr_linear_attention(ctx, &s.p, q, k, v, out);
    free(s.gamma_data);
    return st;
}

/* Rows [row0, row0 + n) of the kernel's own definition (lr_linear_attention_quadratic): from
 * those query rows alone when every query sees every key; for a causal case (whose forms need
 * Lq == Lk) from the prefix that ends with the last row asked for. */
static lr_status linear_definition_kind(lr_ctx *ctx, const attn_case *c, lr_linattn_kind kind,
                                        const lr_tensor *q, const lr_tensor *k,
                                        const lr_tensor *v, int64_t row0, lr_tensor *out_rows)
{
    int64_t n = out_rows->shape[2], end = row0 + n;
    linear_setup s;
    lr_tensor qs, ks, vs, rows, prefix = {0};
    lr_status st = linear_setup_for(ctx, c, kind, &s);
    if (st == LR_OK && !s.p.causal) {
        if ((st = lr_tensor_slice(ctx, q, 2, row0, n, &qs)) == LR_OK)
            st = lr_linear_attention_quadratic(ctx, &s.p, &qs, k, v, out_rows);
    } else if (st == LR_OK) {
        const int64_t shape[4] = {c->B, c->Hq, end, out_rows->shape[3]};
        if ((st = tensor_zeros(ctx, 4, shape, LR_F32, &prefix)) == LR_OK &&
            (st = lr_tensor_slice(ctx, q, 2, 0, end, &qs)) == LR_OK &&
            (st = lr_tensor_slice(ctx, k, 2, 0, end, &ks)) == LR_OK &&
            (st = lr_tensor_slice(ctx, v, 2, 0, end, &vs)) == LR_OK &&
            (st = lr_linear_attention_quadratic(ctx, &s.p, &qs, &ks, &vs, &prefix)) == LR_OK &&
            (st = lr_tensor_slice(ctx, &prefix, 2, row0, n, &rows)) == LR_OK)
            st = lr_tensor_copy(ctx, &rows, out_rows);
    }
    free(prefix.data);
    free(s.gamma_data);
    return st;
}

/* The O(L D Dv) work of lr_linear_attention_flops (state, queries, intra-chunk pairs). */
static double linear_flops_kind(const attn_case *c, lr_linattn_kind kind)
{
    lr_linattn_params p = lr_linattn_default_params();
    p.kind = kind;
    p.causal = pattern_is_causal(c->pattern);
    return lr_linear_attention_flops(&p, c->B, c->Hq, c->Lq, c->Lk, c->D, c->D);
}

static lr_status linear_run(lr_ctx *ctx, const attn_case *c, const lr_tensor *q,
                            const lr_tensor *k, const lr_tensor *v, lr_tensor *out)
{
    return linear_run_kind(ctx, c, LR_LINATTN_ELU, q, k, v, out);
}

static lr_status linear_definition_rows(lr_ctx *ctx, const attn_case *c, const lr_tensor *q,
                                        const lr_tensor *k, const lr_tensor *v, int64_t row0,
                                        lr_tensor *out_rows)
{
    return linear_definition_kind(ctx, c, LR_LINATTN_ELU, q, k, v, row0, out_rows);
}

static double linear_flops(const attn_case *c) { return linear_flops_kind(c, LR_LINATTN_ELU); }

static lr_status linear_norm_run(lr_ctx *ctx, const attn_case *c, const lr_tensor *q,
                                 const lr_tensor *k, const lr_tensor *v, lr_tensor *out)
{
    return linear_run_kind(ctx, c, LR_LINATTN_NORM, q, k, v, out);
}

static lr_status linear_norm_definition_rows(lr_ctx *ctx, const attn_case *c,
                                             const lr_tensor *q, const lr_tensor *k,
                                             const lr_tensor *v, int64_t row0,
                                             lr_tensor *out_rows)
{
    return linear_definition_kind(ctx, c, LR_LINATTN_NORM, q, k, v, row0, out_rows);
}

static double linear_norm_flops(const attn_case *c) { return linear_flops_kind(c, LR_LINATTN_NORM); }

static lr_status linear_decay_run(lr_ctx *ctx, const attn_case *c, const lr_tensor *q,
                                  const lr_tensor *k, const lr_tensor *v, lr_tensor *out)
{
    return linear_run_kind(ctx, c, LR_LINATTN_DECAY, q, k, v, out);
}

static lr_status linear_decay_definition_rows(lr_ctx *ctx, const attn_case *c,
                                              const lr_tensor *q, const lr_tensor *k,
                                              const lr_tensor *v, int64_t row0,
                                              lr_tensor *out_rows)
{
    return linear_definition_kind(ctx, c, LR_LINATTN_DECAY, q, k, v, row0, out_rows);
}

static double linear_decay_flops(const attn_case *c) { return linear_flops_kind(c, LR_LINATTN_DECAY); }

/* The linear kernels against their own definition in double: float accumulation over chunks
 * and head dims leaves about 1e-6 (3e-7 seen in the unit test); bf16 inputs are the same for
 * both sides. */
#define LINEAR_TOLERANCE 1e-5
#define LINEAR_PATTERNS ((1u << PATTERN_SELF) | (1u << PATTERN_CAUSAL) | (1u << PATTERN_CROSS))

/* Exact kernels in fp32 agree with the double-precision reference to about 1e-6; bf16 inputs
 * are the same for both, but a kernel may round probabilities to bf16 for the PV product. */
#define EXACT_F32_TOLERANCE 1e-5
#define EXACT_BF16_TOLERANCE 1e-2

static const attn_kernel attn_kernel_flash = {
    .name = "flash",
    .summary = "exact attention, key tiles with an online softmax (lr_attention)",
    .patterns = ALL_PATTERNS,
    .tolerance_f32 = EXACT_F32_TOLERANCE,
    .tolerance_bf16 = EXACT_BF16_TOLERANCE,
    .run = flash_run,
    .reference_rows = exact_reference_rows,
    .flops = exact_flops,
};

static const attn_kernel attn_kernel_naive = {
    .name = "naive",
    .summary = "the definition, one score row at a time in double precision "
               "(lr_attention_ref)",
    .patterns = ALL_PATTERNS,
    .is_reference = true,
    .max_len = 4096,
    .tolerance_f32 = EXACT_F32_TOLERANCE,
    .tolerance_bf16 = EXACT_BF16_TOLERANCE,
    .run = naive_run,
    .reference_rows = exact_reference_rows,
    .flops = exact_flops,
};

static const attn_kernel attn_kernel_window = {
    .name = "window",
    .summary = "sliding window of --window keys on each side of the query's position "
               "(the left side only when causal) plus the first --sinks keys "
               "(lr_attention)",
    .patterns = ALL_PATTERNS,
    .uses_window = true,
    .tolerance_f32 = EXACT_F32_TOLERANCE,
    .tolerance_bf16 = EXACT_BF16_TOLERANCE,
    .run = window_run,
    .reference_rows = window_reference_rows,
    .flops = window_flops,
};

static const attn_kernel attn_kernel_na1d = {
    .name = "na1d",
    .summary = "neighbourhood attention: the 2 * --window + 1 nearest keys, the window "
               "shifted inward at the ends (NATTEN's rule; lr_na1d)",
    .patterns = (1u << PATTERN_SELF) | (1u << PATTERN_CAUSAL),
    .uses_window = true,
    .no_bias = true,
    .tolerance_f32 = EXACT_F32_TOLERANCE,
    .tolerance_bf16 = EXACT_BF16_TOLERANCE,
    .run = na1d_run,
    .reference_rows = na1d_reference_rows,
    .flops = na1d_flops,
};

static const attn_kernel attn_kernel_na2d = {
    .name = "na2d",
    .summary = "2D neighbourhood attention on the length seen as an image rows x cols "
               "(rows the largest divisor up to sqrt(L)), k x k neighbours with "
               "k = 2 * --window + 1 (lr_na2d)",
    .patterns = 1u << PATTERN_SELF,
    .uses_window = true,
    .no_bias = true,
    .tolerance_f32 = EXACT_F32_TOLERANCE,
    .tolerance_bf16 = EXACT_BF16_TOLERANCE,
    .run = na2d_run,
    .reference_rows = na2d_reference_rows,
    .flops = na2d_flops,
};

static const attn_kernel attn_kernel_linear = {
    .name = "linear",
    .summary = "linear attention, feature map elu(x)+1 (Linear Transformer); causal in chunks "
               "of 64 with a carried state; error column: distance from softmax attention "
               "(lr_linear_attention)",
    .patterns = LINEAR_PATTERNS,
    .no_bias = true,
    .tolerance_f32 = LINEAR_TOLERANCE,
    .tolerance_bf16 = LINEAR_TOLERANCE,
    .run = linear_run,
    .reference_rows = exact_reference_rows,
    .definition_rows = linear_definition_rows,
    .flops = linear_flops,
};

static const attn_kernel attn_kernel_linear_norm = {
    .name = "linear-norm",
    .summary = "transNormer's NormAttention: elu(x)+1 features, no denominator, LayerNorm "
               "over each head's output (lr_linear_attention)",
    .patterns = LINEAR_PATTERNS,
    .no_bias = true,
    .tolerance_f32 = LINEAR_TOLERANCE,
    .tolerance_bf16 = LINEAR_TOLERANCE,
    .run = linear_norm_run,
    .reference_rows = exact_reference_rows,
    .definition_rows = linear_norm_definition_rows,
    .flops = linear_norm_flops,
};

static const attn_kernel attn_kernel_linear_decay = {
    .name = "linear-decay",
    .summary = "decayed linear attention, S_t = gamma_h S_(t-1) + k_t v_t^T, o_t = S_t^T q_t, "
               "RetNet's gamma_h = 1 - 2^(-5-h) (lr_linear_attention)",
    .patterns = 1u << PATTERN_CAUSAL,
    .no_bias = true,
    .tolerance_f32 = LINEAR_TOLERANCE,
    .tolerance_bf16 = LINEAR_TOLERANCE,
    .run = linear_decay_run,
    .reference_rows = exact_reference_rows,
    .definition_rows = linear_decay_definition_rows,
    .flops = linear_decay_flops,
};

/* The order of --help, "all" and check. Kernels defined in other files are declared in
 * attn_bench.h. */
const attn_kernel *const attn_kernels[] = {
    &attn_kernel_flash,
    &attn_kernel_naive,
    &attn_kernel_window,
    &attn_kernel_na1d,
    &attn_kernel_na2d,
    &attn_kernel_linear,
    &attn_kernel_linear_norm,
    &attn_kernel_linear_decay,
    /* kernels of other files: one line each */
    &attn_kernel_vertical_slash,
    &attn_kernel_block_sparse,
    &attn_kernel_landmark,
    &attn_kernel_landmark_topk,
    &attn_kernel_bra,
    &attn_kernel_probsparse,
    &attn_kernel_rat,
    &attn_kernel_hyena,
    &attn_kernel_autocorr,
    NULL,
};

const attn_kernel *kernel_find(const char *name)
{
    for (const attn_kernel *const *k = attn_kernels; *k; k++)
        if (strcmp((*k)->name, name) == 0)
            return *k;
    return NULL;
}

const char *kernel_names(char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (const attn_kernel *const *k = attn_kernels; *k && used < size; k++)
        used += (size_t)snprintf(buf + used, size - used, "%s%s", used ? ", " : "", (*k)->name);
    return buf;
}
