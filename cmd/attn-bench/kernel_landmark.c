/* attn-bench rows "landmark" and "landmark-topk": landmark attention (lr_landmark_attention,
 * the training-time grouped softmax, and lr_landmark_retrieval, top-k block retrieval at
 * inference). The case's keys are taken as already holding the landmark tokens: every
 * LANDMARK_BLOCK-th key ends a block. attn-bench has no option for the block size or k, so
 * both are fixed: blocks of 32 (the LLaMA landmark fine-tune's mem_freq 31 plus its landmark)
 * and k = 4 retrieved blocks per query and head. The error column is the distance from plain
 * causal softmax attention, large by nature: landmark attention is a different operator;
 * check compares with the kernels' own double references. */
#include <stdlib.h>
#include <string.h>

#include "attn_bench.h"
#include "longrange/landmark.h"

enum { LANDMARK_BLOCK = 32, LANDMARK_TOP_K = 4 };

static lr_landmark_params landmark_params(const attn_case *c)
{
    lr_landmark_params p = lr_landmark_default_params();
    p.block_size = LANDMARK_BLOCK;
    p.top_k = LANDMARK_TOP_K;
    p.scale = c->scale;
    return p;
}

typedef lr_status (*landmark_fn)(lr_ctx *, const lr_landmark_params *, const lr_tensor *, const lr_tensor *,
                                 const lr_tensor *, lr_tensor *);

/* F32 only: BF16 inputs are widened first. */
static lr_status landmark_call(lr_ctx *ctx, const attn_case *c, landmark_fn fn, const lr_tensor *q,
                               const lr_tensor *k, const lr_tensor *v, lr_tensor *out)
{
    lr_tensor wq = {0}, wk = {0}, wv = {0}, uq, uk, uv;
    lr_landmark_params p = landmark_params(c);
    lr_status s = input_f32(ctx, q, &wq, &uq);
    if (s == LR_OK)
        s = input_f32(ctx, k, &wk, &uk);
    if (s == LR_OK)
        s = input_f32(ctx, v, &wv, &uv);
    if (s == LR_OK)
        s = fn(ctx, &p, &uq, &uk, &uv, out);
    free(wq.data);
    free(wk.data);
    free(wv.data);
    return s;
}

static lr_status landmark_run(lr_ctx *ctx, const attn_case *c, const lr_tensor *q, const lr_tensor *k,
                              const lr_tensor *v, lr_tensor *out)
{
    return landmark_call(ctx, c, lr_landmark_attention, q, k, v, out);
}

static lr_status landmark_topk_run(lr_ctx *ctx, const attn_case *c, const lr_tensor *q, const lr_tensor *k,
                                   const lr_tensor *v, lr_tensor *out)
{
    return landmark_call(ctx, c, lr_landmark_retrieval, q, k, v, out);
}

/* Rows [row0, row0 + n) of a reference: those query rows against the keys up to the last
 * one they can see, which keeps the alignment (row i sits at position i + Lk - Lq) and is all
 * a causal row depends on. */
static lr_status landmark_rows(lr_ctx *ctx, const attn_case *c, landmark_fn ref, const lr_tensor *q,
                               const lr_tensor *k, const lr_tensor *v, int64_t row0, lr_tensor *out_rows)
{
    int64_t n = out_rows->shape[2];
    int64_t keys = row0 + n + c->Lk - c->Lq;
    if (keys > c->Lk)
        keys = c->Lk;
    if (keys <= 0) { /* rows before the first key see nothing: zeros */
        memset(out_rows->data, 0, (size_t)lr_tensor_numel(out_rows) * sizeof(float));
        return LR_OK;
    }
    lr_tensor qs, ks, vs;
    lr_status s = lr_tensor_slice(ctx, q, 2, row0, n, &qs);
    if (s == LR_OK)
        s = lr_tensor_slice(ctx, k, 2, 0, keys, &ks);
    if (s == LR_OK)
        s = lr_tensor_slice(ctx, v, 2, 0, keys, &vs);
    if (s == LR_OK)
        s = landmark_call(ctx, c, ref, &qs, &ks, &vs, out_rows);
    return s;
}

static lr_status landmark_definition_rows(lr_ctx *ctx, const attn_case *c, const lr_tensor *q,
                                          const lr_tensor *k, const lr_tensor *v, int64_t row0,
                                          lr_tensor *out_rows)
{
    return landmark_rows(ctx, c, lr_landmark_attention_ref, q, k, v, row0, out_rows);
}

static lr_status landmark_topk_definition_rows(lr_ctx *ctx, const attn_case *c, const lr_tensor *q,
                                               const lr_tensor *k, const lr_tensor *v, int64_t row0,
                                               lr_tensor *out_rows)
{
    return landmark_rows(ctx, c, lr_landmark_retrieval_ref, q, k, v, row0, out_rows);
}

/* 2 D FLOPs per scored key (q.k) and per valued key (P V), as lr_landmark_pairs counts
 * them: the useful work, not the masked lanes of the tiles. */
static double landmark_flops_k(const attn_case *c, int64_t top_k)
{
    int64_t valued = 0;
    int64_t scored = lr_landmark_pairs(LANDMARK_BLOCK, top_k, c->Lq, c->Lk, &valued);
    if (scored < 0)
        return 0;
    return 2.0 * (double)c->D * ((double)scored + (double)valued) * (double)c->B * (double)c->Hq;
}

static double landmark_flops(const attn_case *c) { return landmark_flops_k(c, 0); }

static double landmark_topk_flops(const attn_case *c) { return landmark_flops_k(c, LANDMARK_TOP_K); }

/* The F32 fast paths against their double definitions: ~1e-6 (the unit test sees 1e-7);
 * bf16 inputs are widened for both sides alike. */
#define LANDMARK_TOLERANCE 1e-5
#define LANDMARK_PATTERNS ((1u << PATTERN_CAUSAL) | (1u << PATTERN_CAUSAL_CROSS))

const attn_kernel attn_kernel_landmark = {
    .name = "landmark",
    .summary = "landmark attention, grouped softmax: blocks of 32 keys, the last one the block's "
               "landmark; own block's tokens and earlier landmarks in one softmax, earlier "
               "blocks' tokens weighted by their landmark (lr_landmark_attention); error column: "
               "distance from causal softmax attention",
    .patterns = LANDMARK_PATTERNS,
    .no_bias = true,
    .tolerance_f32 = LANDMARK_TOLERANCE,
    .tolerance_bf16 = LANDMARK_TOLERANCE,
    .run = landmark_run,
    .reference_rows = exact_reference_rows,
    .definition_rows = landmark_definition_rows,
    .flops = landmark_flops,
};

const attn_kernel attn_kernel_landmark_topk = {
    .name = "landmark-topk",
    .summary = "landmark attention at inference: per query and head the top 4 earlier blocks "
               "of 32 by landmark score, plus the own block's tokens, grouped softmax "
               "(lr_landmark_retrieval); error column: distance from causal softmax attention",
    .patterns = LANDMARK_PATTERNS,
    .no_bias = true,
    .tolerance_f32 = LANDMARK_TOLERANCE,
    .tolerance_bf16 = LANDMARK_TOLERANCE,
    .run = landmark_topk_run,
    .reference_rows = exact_reference_rows,
    .definition_rows = landmark_topk_definition_rows,
    .flops = landmark_topk_flops,
};
