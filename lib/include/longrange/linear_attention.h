/* Linear attention: three kernelised / recurrent variants whose cost is linear in the length.
 *
 *   LR_LINATTN_ELU     Linear Transformer (Katharopoulos et al. 2020), phi(x) = elu(x) + 1:
 *                      o_i = phi(q_i)^T S / (phi(q_i)^T z + eps), S = sum_j phi(k_j) v_j^T,
 *                      z = sum_j phi(k_j), the sums over every key (non-causal) or keys j <= i
 *                      (causal). eps is added to the denominator, which is > 0 since phi > 0.
 *   LR_LINATTN_NORM    transNormer's NormAttention (Qin et al. 2022): the same phi and S with
 *                      no denominator, o_i = Norm(phi(q_i)^T S), Norm over the Dv values of
 *                      one head without affine parameters, as the authors' code offers it:
 *                      LayerNorm (x - mean) / sqrt(var + eps) (torch.nn.LayerNorm, biased
 *                      variance) or RMSNorm x / (sqrt(mean(x^2)) + eps) (their RMSNorm /
 *                      SimpleRMSNorm: eps outside the root). Their layers apply the norm's
 *                      affine weights and an output gate after this; those belong to the
 *                      caller's projections.
 *   LR_LINATTN_DECAY   gated / decayed linear attention (RetNet, GLA, Lizard), causal only,
 *                      no feature map: S_t = diag(alpha_t) S_(t-1) + k_t v_t^T, o_t = S_t^T q_t,
 *                      with alpha_t either gamma[h] for every step and dimension (RetNet) or
 *                      the gates tensor, alpha_t = gates[b, h, t, :] (GLA), values in (0, 1].
 *
 * Layout: q [B, H, Lq, D], k [B, Hkv, Lk, D], v [B, Hkv, Lk, Dv], out [B, H, Lq, Dv], H a
 * multiple of Hkv (grouped / multi-query heads: query head h reads kv head h / (H / Hkv));
 * causal needs Lq == Lk. Any strides are accepted except in the last dimension, which must
 * be contiguous.
 * q, k, v (and gates) are F32 or BF16 (q, k, v the same); out is F32.
 *
 * The causal forms run chunk-parallel: chunks of `chunk` tokens; inside a chunk the masked
 * quadratic form, across chunks a D x Dv state carried from chunk to chunk. Decays enter as
 * running products of the alphas (every factor <= 1, so nothing overflows however strong the
 * decay). Each (batch, head) is one task, so results are bit-identical for any thread count,
 * and row i never depends on rows after it, so a prefix of the sequence gives the same rows
 * bit for bit. Memory: per-thread scratch of O(chunk * (chunk + D + Dv) + D * Dv) floats. */
#ifndef LONGRANGE_LINEAR_ATTENTION_H
#define LONGRANGE_LINEAR_ATTENTION_H

#include <stdbool.h>

#include "longrange/core.h"
#include "longrange/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { LR_LINATTN_ELU = 0, LR_LINATTN_NORM, LR_LINATTN_DECAY } lr_linattn_kind;

typedef enum { LR_LINNORM_LAYER = 0, LR_LINNORM_RMS } lr_linattn_norm;

typedef struct {
    lr_linattn_kind kind;
    bool causal;           /* LR_LINATTN_DECAY is always causal */
    int64_t chunk;         /* tokens per chunk of the causal forms, 1..1024; 0: 64 */
    float eps;             /* ELU: added to the denominator (default 1e-6); NORM: LayerNorm's
                            * (default 1e-5) or RMSNorm's (default 1e-8); DECAY: unused */
    lr_linattn_norm norm;  /* NORM only */
    /* DECAY: exactly one of the two. gamma: F32 [H] (per query head), each in (0, 1], checked;
     * gates: [B, Hkv, Lk, D] (per key, like k), same dtype as q, meant to be in (0, 1] (not
     * checked: other values are computed as given, and values > 1 can overflow). */
    const lr_tensor *gamma;
    const lr_tensor *gates;
} lr_linattn_params;

/* ELU, not causal, chunk 64, eps 0 (the kind's default), LayerNorm, no decay. */
lr_linattn_params lr_linattn_default_params(void);

/* p may be NULL for the defaults. Invalid shapes, dtypes or parameters give LR_ERR_ARG with
 * the reason in lr_ctx_last_error. eps of a default-initialised struct (0) selects the kind's
 * default; a negative eps is an error. */
lr_status lr_linear_attention(lr_ctx *ctx, const lr_linattn_params *p, const lr_tensor *q,
                              const lr_tensor *k, const lr_tensor *v, lr_tensor *out);

/* The quadratic materialised definition in double precision: per query row, the weights
 * w_ij = phi(q_i).phi(k_j) (ELU, NORM) or sum_d q_id k_jd prod_{j<s<=i} alpha_sd (DECAY) over
 * the visible keys, then sum_j w_ij v_j, divided by sum_j w_ij + eps (ELU) or normalised
 * (NORM). O(Lk) memory per row; for tests and error measurement. */
lr_status lr_linear_attention_quadratic(lr_ctx *ctx, const lr_linattn_params *p, const lr_tensor *q,
                                        const lr_tensor *k, const lr_tensor *v, lr_tensor *out);

/* The recurrent definition of the causal forms in double precision: a D x Dv state updated
 * token by token. O(D * Dv) memory per head. */
lr_status lr_linear_attention_recurrent(lr_ctx *ctx, const lr_linattn_params *p, const lr_tensor *q,
                                        const lr_tensor *k, const lr_tensor *v, lr_tensor *out);

/* The FLOP count attn-bench reports: multiply-adds, 2 FLOPs each, summed over batch and
 * heads, of the state (Lk D Dv), the queries against it (Lq D Dv) and, when causal, the
 * intra-chunk pairs j <= i in the same chunk ((D + Dv) each, about L chunk / 2 pairs). The
 * denominators, the feature map and the norms are not counted. -1 on bad sizes. */
double lr_linear_attention_flops(const lr_linattn_params *p, int64_t B, int64_t H, int64_t Lq,
                                 int64_t Lk, int64_t D, int64_t Dv);

#ifdef __cplusplus
}
#endif
#endif
