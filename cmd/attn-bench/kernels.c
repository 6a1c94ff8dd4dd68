/* The kernel table: every kernel attn-bench measures and checks, with its reference. */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "attn_bench.h"

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

static lr_status exact_reference_rows(lr_ctx *ctx, const attn_case *c, const lr_tensor *q,
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

/* Exact kernels in fp32 agree with the double-precision reference to about 1e-6; bf16 inputs
 * are the same for both, but a kernel may round probabilities to bf16 for the PV product. */
#define EXACT_F32_TOLERANCE 1e-5
#define EXACT_BF16_TOLERANCE 1e-2

const attn_kernel attn_kernels[] = {
    {
        .name = "flash",
        .summary = "exact attention, key tiles with an online softmax (lr_attention)",
        .patterns = ALL_PATTERNS,
        .tolerance_f32 = EXACT_F32_TOLERANCE,
        .tolerance_bf16 = EXACT_BF16_TOLERANCE,
        .run = flash_run,
        .reference_rows = exact_reference_rows,
        .flops = exact_flops,
    },
    {
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
    },
    {
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
    },
    {.name = NULL},
};

const attn_kernel *kernel_find(const char *name)
{
    for (const attn_kernel *k = attn_kernels; k->name; k++)
        if (strcmp(k->name, name) == 0)
            return k;
    return NULL;
}

const char *kernel_names(char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (const attn_kernel *k = attn_kernels; k->name && used < size; k++)
        used += (size_t)snprintf(buf + used, size - used, "%s%s", used ? ", " : "", k->name);
    return buf;
}
