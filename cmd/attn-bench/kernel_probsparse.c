/* probsparse: Informer's ProbSparse self-attention (lr_probsparse_attention). Each query row is
 * scored on U = 5 ceil(ln Lk) sampled keys, the u = 5 ceil(ln Lq) rows with the largest
 * sparsity measure get exact softmax attention, the others the mean of v (causal: its
 * cumulative sum). Factor 5 (Informer's default) and sample seed PROBSPARSE_SEED are fixed.
 * It approximates softmax attention, so bench's error column is the distance from exact
 * attention (large, as expected: most rows are a mean); check compares with lr_probsparse_ref
 * on the same samples. The selection depends on every query, so the causal prefix property
 * does not hold (no_prefix_property). */
#include <stdlib.h>

#include "attn_bench.h"
#include "longrange/probsparse.h"

#define PROBSPARSE_FACTOR 5
#define PROBSPARSE_SEED 2021

static lr_probsparse_params probsparse_params(const attn_case *c)
{
    lr_probsparse_params p = lr_probsparse_default_params();
    p.scale = c->scale;
    p.factor = PROBSPARSE_FACTOR;
    p.causal = pattern_is_causal(c->pattern);
    p.seed = PROBSPARSE_SEED;
    return p;
}

typedef struct {
    lr_tensor q, k, v, wide[3];
} f32_inputs;

static lr_status widen(lr_ctx *ctx, const lr_tensor *q, const lr_tensor *k, const lr_tensor *v,
                       f32_inputs *in)
{
    lr_status s = input_f32(ctx, q, &in->wide[0], &in->q);
    if (s == LR_OK)
        s = input_f32(ctx, k, &in->wide[1], &in->k);
    if (s == LR_OK)
        s = input_f32(ctx, v, &in->wide[2], &in->v);
    return s;
}

static void inputs_free(f32_inputs *in)
{
    for (int i = 0; i < 3; i++)
        free(in->wide[i].data);
}

static lr_status probsparse_run(lr_ctx *ctx, const attn_case *c, const lr_tensor *q,
                                const lr_tensor *k, const lr_tensor *v, lr_tensor *out)
{
    f32_inputs in = {0};
    lr_probsparse_params p = probsparse_params(c);
    lr_status s = widen(ctx, q, k, v, &in);
    if (s == LR_OK)
        s = lr_probsparse_attention(ctx, &p, &in.q, &in.k, &in.v, out);
    inputs_free(&in);
    return s;
}

/* The rows of lr_probsparse_ref on the whole problem: which rows are selected depends on
 * every query, so the full output is computed and then sliced. */
static lr_status probsparse_definition_rows(lr_ctx *ctx, const attn_case *c, const lr_tensor *q,
                                            const lr_tensor *k, const lr_tensor *v, int64_t row0,
                                            lr_tensor *out_rows)
{
    f32_inputs in = {0};
    lr_probsparse_params p = probsparse_params(c);
    const int64_t shape[4] = {c->B, c->Hq, c->Lq, out_rows->shape[3]};
    lr_tensor full = {0}, rows;
    lr_status s = widen(ctx, q, k, v, &in);
    if (s == LR_OK)
        s = tensor_zeros(ctx, 4, shape, LR_F32, &full);
    if (s == LR_OK)
        s = lr_probsparse_ref(ctx, &p, &in.q, &in.k, &in.v, &full);
    if (s == LR_OK)
        s = lr_tensor_slice(ctx, &full, 2, row0, out_rows->shape[2], &rows);
    if (s == LR_OK)
        s = lr_tensor_copy(ctx, &rows, out_rows);
    free(full.data);
    inputs_free(&in);
    return s;
}

/* Per (batch, head): 2 D per sampled pair (Lq U of them), 4 D per visible pair of the u
 * selected rows (u Lk; causal u (Lk + 1) / 2, the mean over positions, since which rows are
 * selected depends on the data), and Lk D for the mean or cumulative sum of v. */
static double probsparse_flops(const attn_case *c)
{
    double D = (double)c->D, Lq = (double)c->Lq, Lk = (double)c->Lk;
    double U = (double)lr_probsparse_sample_count(PROBSPARSE_FACTOR, c->Lk);
    double u = (double)lr_probsparse_top_count(PROBSPARSE_FACTOR, c->Lq);
    double pairs = pattern_is_causal(c->pattern) ? u * (Lk + 1) / 2 : u * Lk;
    return (double)c->B * (double)c->Hq * (2 * D * Lq * U + 4 * D * pairs + Lk * D);
}

/* The fast path against the double reference: the unselected rows agree bit for bit, the
 * selected ones within the F32 tile kernels' ~1e-6; bf16 inputs are widened for both. */
#define PROBSPARSE_TOLERANCE 1e-5

const attn_kernel attn_kernel_probsparse = {
    .name = "probsparse",
    .summary = "Informer's ProbSparse attention, factor 5: the 5 ceil(ln L) query rows with "
               "the largest max - mean of q.k over 5 ceil(ln L) sampled keys get softmax "
               "attention, the others the mean of v (causal: its cumulative sum); error "
               "column: distance from softmax attention (lr_probsparse_attention)",
    .patterns = (1u << PATTERN_SELF) | (1u << PATTERN_CAUSAL) | (1u << PATTERN_CROSS),
    .no_bias = true,
    .no_prefix_property = true,
    .tolerance_f32 = PROBSPARSE_TOLERANCE,
    .tolerance_bf16 = PROBSPARSE_TOLERANCE,
    .run = probsparse_run,
    .reference_rows = exact_reference_rows,
    .definition_rows = probsparse_definition_rows,
    .flops = probsparse_flops,
};
