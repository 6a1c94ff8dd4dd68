/* ProbSparse self-attention of Informer (Zhou et al., AAAI 2021), with the semantics of the
 * official ProbAttention (zhouhaoyi/Informer2020 models/attn.py; the same class in
 * thuml/Time-Series-Library layers/SelfAttention_Family.py).
 *
 * Per (batch, head), with q_i the query rows (Lq of them), k_j, v_j the key/value rows (Lk):
 *   U = min(factor * ceil(ln Lk), Lk)   sampled keys per query   (U_part)
 *   u = min(factor * ceil(ln Lq), Lq)   selected queries         (n_top)
 *   Sampling: key indices idx[i][0..U) per query row i, drawn with replacement and shared by
 *     every batch item and head (torch.randint(L_K, (L_Q, U)) in the official code). They
 *     come from `sample_index` when given (I32 [Lq, U], so a run can reproduce another
 *     implementation's draw), else from `seed` (lr_probsparse_sample_indices).
 *   Sparsity measure, on unscaled dot products s_ij = q_i . k_idx[i][j]:
 *     M_i = max_j s_ij - (sum_j s_ij) / Lk          (divided by Lk, not by U)
 *     computed as Lk * max_j s_ij - sum_j s_ij, which orders the rows the same way and is
 *     exact for integer-valued dot products, so ties are ties.
 *   Selection: the u rows of largest M; ties go to the smaller row index; NaN ranks above
 *     every number (as in torch.topk). Each (batch, head) selects its own rows.
 *   Output: rows that are not selected get the initial context: not causal, the mean of v
 *     over all keys; causal (requires Lq == Lk), the cumulative sum v_0 + ... + v_i (a sum,
 *     not a mean, as the official code). Selected rows get exact softmax attention,
 *     softmax(scale * q_i . k_j) over every key (not causal) or the keys j <= i (causal,
 *     the official ProbMask).
 *   When u = Lq (a factor large enough) the result is exactly (causal) softmax attention.
 * Edge cases the official code does not reach: Lq = 1 gives u = 0 (every row is the initial
 * context); Lk = 1 gives U = 0 (no sampling; every M is 0, so the first u rows are selected;
 * with one key every row's output is v_0 anyway).
 *
 * Layout: q [B, Hq, Lq, D], k [B, Hkv, Lk, D], v [B, Hkv, Lk, Dv], out [B, Hq, Lq, Dv], all F32,
 * any strides except the last dimension, which must be contiguous (the official module's
 * [B, L, H, D] inputs are views of this layout without a copy). Hq must be a multiple of Hkv:
 * query head h reads kv head h / (Hq / Hkv) (an extension; Informer has Hq == Hkv).
 *
 * Precision: sampled dot products in F32 (a fixed lane order per CPU level; FMA with AVX2 and
 * AVX-512), M accumulated in double. The mean and the cumulative sum are accumulated in double
 * in key order and rounded once, so the unselected rows equal the reference's bit for bit.
 * The selected rows use the tile kernels of lr_attention (F32, online softmax, error ~1e-6 of
 * max |v|). The reference computes everything in double. Fast path and reference select the
 * same rows unless two values of M lie within F32 rounding of each other.
 *
 * Determinism and cost: one task per (batch, head), bit-identical output for any thread count
 * (threads share out the heads, not the rows of one head). Work per head: Lq * U * D
 * multiply-adds for the sampling (random rows of k, prefetched ahead), the top u kept in a
 * heap (Lq log u), u * Lk * (D + Dv) for the selected rows (causal: a tile of up to 64
 * selected rows scores the keys up to its last row, about half of them visible), and Lk * Dv
 * for the mean or cumulative sum: O(L log L) in all.
 * Memory: per-thread scratch of Lq + 24 u bytes plus the tile buffers of lr_attention (the
 * reference: 8 (Lq + Lk) bytes). */
#ifndef LONGRANGE_PROBSPARSE_H
#define LONGRANGE_PROBSPARSE_H

#include <stdbool.h>

#include "longrange/core.h"
#include "longrange/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    float scale;      /* multiplies q.k in the softmax; 0 means 1/sqrt(D); finite and >= 0 */
    int64_t factor;   /* c of U and u, >= 1; Informer's default is 5 */
    bool causal;      /* the official mask_flag: cumulative-sum context, keys j <= i */
    uint64_t seed;    /* draws the sample indices when sample_index is NULL */
    /* Optional sample indices, I32 [Lq, U], each in [0, Lk); last dimension contiguous. */
    const lr_tensor *sample_index;
    /* Optional output: the selected rows of every head, I32 [B, Hq, u], ascending; last
     * dimension contiguous. */
    lr_tensor *selected;
} lr_probsparse_params;

/* scale 0, factor 5, not causal, seed 0, no sample_index, no selected. */
lr_probsparse_params lr_probsparse_default_params(void);

/* U = min(factor * ceil(ln Lk), Lk) and u = min(factor * ceil(ln Lq), Lq), computed like the
 * official code (ceil of the double logarithm); 0 for lengths below 2; -1 for a negative
 * length or factor < 1. */
int64_t lr_probsparse_sample_count(int64_t factor, int64_t Lk);
int64_t lr_probsparse_top_count(int64_t factor, int64_t Lq);

/* The sample indices drawn from seed, idx[i * U + j] for i < Lq, j < U, each in [0, Lk):
 * idx = floor(Lk * x / 2^64) with x = splitmix64(seed + (i * U + j + 1) * 0x9e3779b97f4a7c15)
 * (counter-based, so any entry can be computed alone). Nothing is written when Lk < 1. */
void lr_probsparse_sample_indices(uint64_t seed, int64_t Lq, int64_t Lk, int64_t U, int64_t *idx);

/* p may be NULL for the defaults. Invalid shapes, dtypes, parameters or sample indices give
 * LR_ERR_ARG with the reason in lr_ctx_last_error. */
lr_status lr_probsparse_attention(lr_ctx *ctx, const lr_probsparse_params *p, const lr_tensor *q,
                                  const lr_tensor *k, const lr_tensor *v, lr_tensor *out);

/* The definition, computed plainly in double: M per row, the rows chosen by repeated
 * arg-max, the context, and each selected row's score row materialised. For tests and error
 * measurement (O(Lq * u) selection). */
lr_status lr_probsparse_ref(lr_ctx *ctx, const lr_probsparse_params *p, const lr_tensor *q,
                            const lr_tensor *k, const lr_tensor *v, lr_tensor *out);

#ifdef __cplusplus
}
#endif
#endif
