/* vertical-slash, block-sparse: MInference 1.0's pre-fill patterns (minference.h), causal
 * self-attention only. Both estimate their indices inside run, from the case's own q and k, as
 * MInference does online, and the estimation is part of the time and of the FLOPs.
 *
 * Budgets (attn-bench has no option for them): L / 8 indices for both, a fixed share of the
 * length so that the comparison with flash causal means the same at every length, where
 * MInference's own defaults (1000 columns and 6096 diagonals, or 100 blocks of 64) are tuned
 * for 128k-token prompts and would be nearly dense below 16k:
 *   vertical-slash: nv = ns = max(64, L / 16), at most L, with the official estimation
 *     (last 64 queries, the first 30 columns and the 100 nearest diagonals forced); a column
 *     or diagonal is seen by the rows after it, so a row sees up to L / 8 keys, on random data
 *     about 1/8 of those it could see;
 *   block-sparse: blocks of 64 (the official size), top_k = max(2, nb / 8) key blocks per
 *     query block, nb = ceil(L / 64): up to L / 8 keys per row (at least 2 blocks so that
 *     check's short cases are sparse).
 * They approximate softmax attention, so bench's error column is the distance from exact
 * causal attention (reference_rows = exact_reference_rows); check compares with the plain
 * reference on the SAME estimated indices (definition_rows estimates on the full problem
 * first). The indices depend on the last queries, so the causal prefix property does not
 * hold (no_prefix_property). bf16 inputs are widened to F32 for both sides. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attn_bench.h"
#include "longrange/minference.h"

enum { MI_BLOCK = 64, MI_LAST_Q = 64, MI_FORCED_VERTICAL = 30, MI_FORCED_SLASH = 100 };

/* Both sides take the same widened inputs, and the kernels agree with the double reference
 * to ~1e-6 (the unit test: 2e-6). */
#define MI_TOLERANCE 1e-5

typedef struct {
    lr_tensor q, k, v, wide[3];
} mi_inputs;

static lr_status widen(lr_ctx *ctx, const lr_tensor *q, const lr_tensor *k, const lr_tensor *v, mi_inputs *in)
{
    lr_status s = input_f32(ctx, q, &in->wide[0], &in->q);
    if (s == LR_OK)
        s = input_f32(ctx, k, &in->wide[1], &in->k);
    if (s == LR_OK)
        s = input_f32(ctx, v, &in->wide[2], &in->v);
    return s;
}

static void inputs_free(mi_inputs *in)
{
    for (int i = 0; i < 3; i++)
        free(in->wide[i].data);
}

/* Rows [row0, row0 + n) of a causal problem as a smaller one: the query rows and the keys up
 * to the last one they can see (the mask is aligned to the last key, so the rows keep their
 * positions). *keys <= 0: the rows see nothing. */
static lr_status rows_problem(lr_ctx *ctx, const attn_case *c, const mi_inputs *in, int64_t row0, int64_t n,
                              lr_tensor *qs, lr_tensor *ks, lr_tensor *vs, int64_t *keys)
{
    *keys = row0 + n < c->Lq ? row0 + n + c->Lk - c->Lq : c->Lk;
    if (*keys <= 0)
        return LR_OK;
    lr_status s = lr_tensor_slice(ctx, &in->q, 2, row0, n, qs);
    if (s == LR_OK)
        s = lr_tensor_slice(ctx, &in->k, 2, 0, *keys, ks);
    if (s == LR_OK)
        s = lr_tensor_slice(ctx, &in->v, 2, 0, *keys, vs);
    return s;
}

static void zero_rows(lr_tensor *t)
{
    memset(t->data, 0, (size_t)lr_tensor_numel(t) * sizeof(float));
}

/* ---- vertical-slash ---------------------------------------------------------------------- */

static int64_t vs_budget(const attn_case *c)
{
    int64_t n = c->Lk / 16;
    n = n < 64 ? 64 : n;
    return n < c->Lk ? n : c->Lk;
}

typedef struct {
    lr_tensor vertical, slash;
} vs_indices;

/* Estimates the case's indices from in; empty lists when there are no keys. */
static lr_status vs_estimate(lr_ctx *ctx, const attn_case *c, const mi_inputs *in, vs_indices *ix)
{
    int64_t n = vs_budget(c);
    const int64_t shape[3] = {c->B, c->Hq, n};
    lr_status s = tensor_zeros(ctx, 3, shape, LR_I32, &ix->vertical);
    if (s == LR_OK)
        s = tensor_zeros(ctx, 3, shape, LR_I32, &ix->slash);
    if (s != LR_OK || n == 0)
        return s;
    lr_vs_estimate_params p = lr_vs_estimate_default_params();
    p.scale = c->scale;
    p.last_q = MI_LAST_Q;
    p.forced_vertical = MI_FORCED_VERTICAL;
    p.forced_slash = MI_FORCED_SLASH;
    return lr_minference_vs_estimate(ctx, &p, &in->q, &in->k, &ix->vertical, &ix->slash);
}

static lr_status vs_run(lr_ctx *ctx, const attn_case *c, const lr_tensor *q, const lr_tensor *k,
                        const lr_tensor *v, lr_tensor *out)
{
    mi_inputs in = {0};
    vs_indices ix = {0};
    lr_vs_params p = {.scale = c->scale};
    lr_status s = widen(ctx, q, k, v, &in);
    if (s == LR_OK)
        s = vs_estimate(ctx, c, &in, &ix);
    if (s == LR_OK)
        s = lr_vertical_slash_attention(ctx, &p, &in.q, &in.k, &in.v, &ix.vertical, &ix.slash, out);
    free(ix.vertical.data);
    free(ix.slash.data);
    inputs_free(&in);
    return s;
}

/* lr_vertical_slash_attention_ref on the rows asked for, with the indices estimated on the
 * whole problem (indices past the sliced keys are ignored by the kernel's definition). */
static lr_status vs_definition_rows(lr_ctx *ctx, const attn_case *c, const lr_tensor *q, const lr_tensor *k,
                                    const lr_tensor *v, int64_t row0, lr_tensor *out_rows)
{
    mi_inputs in = {0};
    vs_indices ix = {0};
    lr_vs_params p = {.scale = c->scale};
    lr_tensor qs, ks, vs;
    int64_t keys = 0;
    lr_status s = widen(ctx, q, k, v, &in);
    if (s == LR_OK)
        s = vs_estimate(ctx, c, &in, &ix);
    if (s == LR_OK)
        s = rows_problem(ctx, c, &in, row0, out_rows->shape[2], &qs, &ks, &vs, &keys);
    if (s == LR_OK && keys <= 0)
        zero_rows(out_rows);
    else if (s == LR_OK)
        s = lr_vertical_slash_attention_ref(ctx, &p, &qs, &ks, &vs, &ix.vertical, &ix.slash, out_rows);
    free(ix.vertical.data);
    free(ix.slash.data);
    inputs_free(&in);
    return s;
}

/* Rows whose position p = i + Lk - Lq is >= 0, each counted with min(p + 1, n). */
static double reachable(const attn_case *c, int64_t n)
{
    double total = 0;
    for (int64_t i = 0; i < c->Lq; i++) {
        int64_t pos = i + c->Lk - c->Lq;
        if (pos >= 0)
            total += (double)(pos + 1 < n ? pos + 1 : n);
    }
    return total;
}

/* Per (batch, head): the estimation's Q_last K^T, 2 D per score (64 x Lk of them), and 4 D
 * per visible pair (QK^T and PV). Which pairs are visible depends on the data; counted: the
 * forced first 30 columns and 100 nearest diagonals as seen by every row that reaches them,
 * and each other index as seen by half the rows (a column or diagonal chosen anywhere in
 * [0, L) is reachable from half the rows on average). */
static double vs_flops(const attn_case *c)
{
    int64_t n = vs_budget(c), fv = n < MI_FORCED_VERTICAL ? n : MI_FORCED_VERTICAL;
    int64_t fs = n < MI_FORCED_SLASH ? n : MI_FORCED_SLASH, lq = c->Lq < MI_LAST_Q ? c->Lq : MI_LAST_Q;
    double rows = reachable(c, 1);
    double pairs = reachable(c, fv) + reachable(c, fs) + (double)(2 * n - fv - fs) * rows / 2;
    if (pairs > reachable(c, c->Lk))
        pairs = reachable(c, c->Lk);
    double D = (double)c->D;
    return (double)c->B * (double)c->Hq * (2 * D * (double)lq * (double)c->Lk + 4 * D * pairs);
}

const attn_kernel attn_kernel_vertical_slash = {
    .name = "vertical-slash",
    .summary = "MInference's vertical-slash pattern, indices estimated from the last 64 "
               "queries: the max(64, L/16) heaviest key columns and as many diagonals (the "
               "first 30 columns and 100 nearest diagonals forced), exact softmax over those "
               "keys; error column: distance from causal attention "
               "(lr_minference_vs_estimate, lr_vertical_slash_attention)",
    .patterns = 1u << PATTERN_CAUSAL,
    .no_bias = true,
    .no_prefix_property = true,
    .tolerance_f32 = MI_TOLERANCE,
    .tolerance_bf16 = MI_TOLERANCE,
    .run = vs_run,
    .reference_rows = exact_reference_rows,
    .definition_rows = vs_definition_rows,
    .flops = vs_flops,
};

/* ---- block-sparse ------------------------------------------------------------------------ */

static lr_block_sparse_params bs_params(const attn_case *c)
{
    lr_block_sparse_params p = lr_block_sparse_default_params();
    int64_t nb = (c->Lk + MI_BLOCK - 1) / MI_BLOCK;
    p.scale = c->scale;
    p.block = MI_BLOCK;
    p.top_k = nb / 8 > 2 ? nb / 8 : 2;
    return p;
}

static lr_status bs_run(lr_ctx *ctx, const attn_case *c, const lr_tensor *q, const lr_tensor *k,
                        const lr_tensor *v, lr_tensor *out)
{
    mi_inputs in = {0};
    lr_block_sparse_params p = bs_params(c);
    lr_status s = widen(ctx, q, k, v, &in);
    if (s == LR_OK)
        s = lr_block_sparse_attention(ctx, &p, &in.q, &in.k, &in.v, out);
    inputs_free(&in);
    return s;
}

/* The mask estimated on the whole problem, then per row lr_attention_ref over its causal keys
 * with a bias of -inf on the keys of blocks the mask drops. */
static lr_status bs_definition_rows(lr_ctx *ctx, const attn_case *c, const lr_tensor *q, const lr_tensor *k,
                                    const lr_tensor *v, int64_t row0, lr_tensor *out_rows)
{
    mi_inputs in = {0};
    lr_block_sparse_params p = bs_params(c);
    int64_t nb = (c->Lk + p.block - 1) / p.block, n = out_rows->shape[2];
    const int64_t mshape[4] = {c->B, c->Hq, nb, nb}, bshape[4] = {c->B, c->Hq, 1, c->Lk};
    lr_tensor mask = {0}, bias = {0};
    lr_status s = widen(ctx, q, k, v, &in);
    if (s == LR_OK)
        s = tensor_zeros(ctx, 4, mshape, LR_U8, &mask);
    if (s == LR_OK)
        s = tensor_zeros(ctx, 4, bshape, LR_F32, &bias);
    if (s == LR_OK)
        s = lr_minference_block_estimate(ctx, &p, &in.q, &in.k, &mask);
    lr_attn_params ap = lr_attn_default_params();
    ap.scale = c->scale;
    for (int64_t r = 0; r < n && s == LR_OK; r++) {
        int64_t i = row0 + r, keys = i + 1; /* Lq == Lk: row i sees keys 0..i */
        float *bd = bias.data;
        const uint8_t *md = mask.data;
        for (int64_t bh = 0; bh < c->B * c->Hq; bh++)
            for (int64_t j = 0; j < keys; j++)
                bd[bh * keys + j] = md[(bh * nb + i / p.block) * nb + j / p.block] ? 0.0f : -INFINITY;
        const int64_t shape[4] = {c->B, c->Hq, 1, keys};
        lr_tensor bt = lr_tensor_from(bd, LR_F32, 4, shape), qs, ks, vs, os;
        ap.bias = &bt;
        if ((s = lr_tensor_slice(ctx, &in.q, 2, i, 1, &qs)) == LR_OK &&
            (s = lr_tensor_slice(ctx, &in.k, 2, 0, keys, &ks)) == LR_OK &&
            (s = lr_tensor_slice(ctx, &in.v, 2, 0, keys, &vs)) == LR_OK &&
            (s = lr_tensor_slice(ctx, out_rows, 2, r, 1, &os)) == LR_OK)
            s = lr_attention_ref(ctx, &ap, &qs, &ks, &vs, &os);
    }
    free(mask.data);
    free(bias.data);
    inputs_free(&in);
    return s;
}

/* Per (batch, head): pooling (L D adds for the queries; the keys' L D per kv head, spread over
 * the heads that share them), 2 D per pooled score (nb (nb + 1) / 2), and 4 D per visible pair
 * of the kept blocks, counted as if the diagonal block were among them (half of it visible). */
static double bs_flops(const attn_case *c)
{
    lr_block_sparse_params p = bs_params(c);
    int64_t L = c->Lk, nb = (L + p.block - 1) / p.block;
    double pairs = 0;
    for (int64_t m = 0; m < nb; m++) {
        int64_t rows = (m + 1) * p.block < L ? p.block : L - m * p.block;
        int64_t kept = p.top_k < m + 1 ? p.top_k : m + 1;
        pairs += (double)rows * (double)p.block * (double)(kept - 1) + (double)rows * (double)(rows + 1) / 2;
    }
    double D = (double)c->D, per_head_pool = (double)L * D * (1.0 + (double)c->Hkv / (double)c->Hq);
    return (double)c->B * (double)c->Hq *
           (per_head_pool + 2 * D * (double)nb * (double)(nb + 1) / 2 + 4 * D * pairs);
}

const attn_kernel attn_kernel_block_sparse = {
    .name = "block-sparse",
    .summary = "MInference's block-sparse pattern: mean-pooled 64-row query and key blocks "
               "scored, each query block keeps its max(2, nb/8) best causal key blocks, "
               "then causal attention on those blocks; error column: distance from causal "
               "attention (lr_minference_block_estimate, lr_attention)",
    .patterns = 1u << PATTERN_CAUSAL,
    .no_bias = true,
    .no_prefix_property = true,
    .tolerance_f32 = MI_TOLERANCE,
    .tolerance_bf16 = MI_TOLERANCE,
    .run = bs_run,
    .reference_rows = exact_reference_rows,
    .definition_rows = bs_definition_rows,
    .flops = bs_flops,
};
