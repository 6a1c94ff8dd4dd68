/* MInference 1.0 (Jiang et al. 2024) pre-fill sparse attention: the Vertical-Slash and the
 * Block-Sparse patterns, and the "dynamic sparse indices" estimated online from the inputs.
 * (The third pattern, A-shape, is lr_attention with a window and sink tokens.)
 *
 * Positions. As in lr_attention, the causal mask is aligned to the last key: query row i of
 * q [B, Hq, Lq, D] sits at position p = i + Lk - Lq (p = i for a pre-fill, Lq == Lk), and key
 * j is causally visible iff j <= p. A row that sees no key gets zeros, never NaN.
 *
 * Vertical-Slash. Per (batch item, query head) a set of key columns V ("vertical" indices)
 * and a set of diagonal offsets S ("slash" indices, o = p - j >= 0). Query p sees key j iff
 *     j <= p  and  (j in V  or  p - j in S)
 * and gets softmax(scale * q_p . k_j) over those keys applied to v: every visible pair counts
 * once, whether its key is vertical, on one diagonal or on several. Index lists are I32
 * [B, Hq, n] (n >= 0, last dimension contiguous); they are sets: order and repeats do not
 * matter, and entries outside [0, Lk) are ignored (so -1 pads a list, and a caller slicing a
 * prefix of a longer sequence may keep its indices).
 *   This is the paper's pattern (its Fig. 2 / Alg. 2: lines, not blocks). The official Triton
 *   and CUDA kernels (microsoft/MInference, ops/pit_sparse_flash_attention_v2.py) compute a
 *   superset: per query block of 64 they round the keys each diagonal reaches to 64-key
 *   ranges and attend to those whole ranges (causal mask only), so a diagonal there brings a
 *   band of about 64 neighbouring diagonals with it. Here the lines are exact.
 *
 * Vertical-Slash index estimation (lr_minference_vs_estimate, the official
 * vertical_and_slash_kernel of modules/minference_forward.py): the last lq = min(last_q, Lq)
 * query rows (last_q = 64) are scored against every key, A = softmax_causal(scale * Q_last
 * K^T) in F32 (row sums in double). Column j gets sum_r A[r][j], diagonal o gets
 * sum_r A[r][p_r - o] (the entries of that diagonal in the last rows); the first
 * forced_vertical = 30 columns and the forced_slash = 100 nearest diagonals (o < 100) score
 * +inf, as in the official code. The nv = vertical_out->shape[2] best columns and the
 * ns = slash_out->shape[2] best diagonals are kept (ties: the smaller index first, so the
 * choice is deterministic where torch.topk is not), written in increasing order. nv and ns
 * must be in 1..Lk. The official code first clamps the budgets, nv = min(L, max(nv, 30)) and
 * ns = min(L, max(ns, 50)); callers that want its numbers do the same (its default budget is
 * nv = 1000, ns = 6096). Cost: 2 lq Lk D FLOPs (lr_sgemm) plus O(lq Lk) and a sort of Lk
 * scores per head; memory lq * Lk floats and a few Lk-long arrays.
 *
 * Block-Sparse (lr_minference_block_estimate, the official _build_block_index of
 * ops/block_sparse_flash_attention.py; pre-fill only, Lq == Lk). With blocks of `block` rows
 * (64), the zero-padded mean of each query block and of each key block, qm and kn (the sum
 * over the block's rows divided by `block`, also for a short last block, as the official
 * padding does), score qm . kn for n <= m (causal at block level); query block m keeps its
 * min(top_k, m + 1) best key blocks (ties: smaller n first). Like the official code, the
 * diagonal block is not forced (query block 0 always keeps it, being its only choice, so no
 * row is left without keys). The mask is U8 [B, Hq, nb, nb], nb = ceil(L / block), 1 = kept.
 * The attention itself is lr_attention with causal = true and that mask as block_mask
 * (block_q = block_k = block), per batch item: lr_block_sparse_attention does both.
 *
 * Layouts: q [B, Hq, Lq, D], k [B, Hkv, Lk, D], v [B, Hkv, Lk, Dv], out [B, Hq, Lq, Dv], F32;
 * any strides except in the last dimension, which must be contiguous; Hq a multiple of Hkv
 * (query head h reads kv head h / (Hq / Hkv)).
 *
 * Precision and determinism: F32 accumulation (error ~1e-6 of max |v| against the double
 * reference), bit-identical output and indices for any thread count.
 * Cost of lr_vertical_slash_attention: per tile of 64 query rows, the vertical columns up to
 * the tile's last position go through the tile kernels of lr_attention (their K and V rows
 * gathered once per head; 64 x |V| scores per tile, at the speed of lr_attention), and each
 * (row, diagonal) pair is one D-long dot product and one Dv-long update, 4-wide vector code:
 * O(Lq (|V| + |S|) (D + Dv)) in all. A diagonal pair costs several times a pair of the tile
 * kernels, because its key and value rows serve no other row (about 15-18 ns per pair and
 * thread at D = 64 on the machine this was written on, more once K and V leave the cache,
 * against ~3 ns for lr_attention), so the diagonals dominate unless |S| is small. Memory: Lk bytes and the two index lists per
 * (batch item, head), |V| (D + Dv) floats for one head's gathered columns, and per-thread
 * scratch that grows with the head dims only. */
#ifndef LONGRANGE_MINFERENCE_H
#define LONGRANGE_MINFERENCE_H

#include "longrange/core.h"
#include "longrange/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    float scale; /* multiplies q.k; 0 means 1/sqrt(D); finite and >= 0 */
} lr_vs_params;

/* Vertical-slash attention, defined above. p may be NULL (scale 1/sqrt(D)). Invalid shapes,
 * dtypes or parameters give LR_ERR_ARG with the reason in lr_ctx_last_error. */
lr_status lr_vertical_slash_attention(lr_ctx *ctx, const lr_vs_params *p, const lr_tensor *q,
                                      const lr_tensor *k, const lr_tensor *v,
                                      const lr_tensor *vertical, const lr_tensor *slash,
                                      lr_tensor *out);

/* The definition, plainly: per query row, the explicit set of visible keys (a test of every
 * key j <= p), scores and softmax in double. For tests and error measurement. */
lr_status lr_vertical_slash_attention_ref(lr_ctx *ctx, const lr_vs_params *p,
                                          const lr_tensor *q, const lr_tensor *k,
                                          const lr_tensor *v, const lr_tensor *vertical,
                                          const lr_tensor *slash, lr_tensor *out);

typedef struct {
    float scale;             /* of the scores; 0 means 1/sqrt(D) */
    int64_t last_q;          /* query rows scored: the last min(last_q, Lq); >= 1 */
    int64_t forced_vertical; /* the first columns always kept (official: 30); >= 0 */
    int64_t forced_slash;    /* the nearest diagonals always kept (official: 100); >= 0 */
} lr_vs_estimate_params;

/* scale 0, last_q 64, forced_vertical 30, forced_slash 100. */
lr_vs_estimate_params lr_vs_estimate_default_params(void);

/* Estimates the indices (above) into vertical_out and slash_out, I32 [B, Hq, nv] and
 * [B, Hq, ns], contiguous in the last dimension. p may be NULL for the defaults. */
lr_status lr_minference_vs_estimate(lr_ctx *ctx, const lr_vs_estimate_params *p,
                                    const lr_tensor *q, const lr_tensor *k,
                                    lr_tensor *vertical_out, lr_tensor *slash_out);

typedef struct {
    float scale;   /* of the attention; 0 means 1/sqrt(D) (the block scores need none) */
    int64_t block; /* rows per query and key block (official: 64); >= 1 */
    int64_t top_k; /* key blocks kept per query block (official: 100); >= 1 */
} lr_block_sparse_params;

/* scale 0, block 64, top_k 100. */
lr_block_sparse_params lr_block_sparse_default_params(void);

/* The block mask (above) into mask_out, U8 [B, Hq, nb, nb], contiguous. q and k need
 * Lq == Lk. p may be NULL for the defaults. */
lr_status lr_minference_block_estimate(lr_ctx *ctx, const lr_block_sparse_params *p,
                                       const lr_tensor *q, const lr_tensor *k,
                                       lr_tensor *mask_out);

/* lr_minference_block_estimate, then lr_attention (causal, that block mask) per batch item.
 * Allocates the mask (B * Hq * nb^2 bytes). */
lr_status lr_block_sparse_attention(lr_ctx *ctx, const lr_block_sparse_params *p,
                                    const lr_tensor *q, const lr_tensor *k, const lr_tensor *v,
                                    lr_tensor *out);

#ifdef __cplusplus
}
#endif
#endif
