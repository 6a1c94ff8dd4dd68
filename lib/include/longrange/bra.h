/* Bi-level routing attention (BRA) of BiFormer (Zhu et al., CVPR 2023), with the semantics of
 * the official BiLevelRoutingAttention (rayleizhu/BiFormer, ops/bra_legacy.py and
 * ops/torch/bra.py: TopkRouting, KVGather with mul_weight 'none', kv_downsample_mode
 * 'identity'), from the q, k, v after the qkv projection to the attention output before
 * LePE and the output projection.
 *
 * Regions. The image [Hgt, Wid] is cut into S x S regions (S = n_win) of rh x rw tokens,
 * rh = Hgt / S, rw = Wid / S; region r = ry * S + rx holds the tokens (ry * rh + a,
 * rx * rw + c), numbered row-major inside the region (BiFormer's
 * "n (j h) (i w) c -> n (j i) h w c").
 *
 * Routing (per batch item, over all channels, heads concatenated):
 *   qr[r] = mean of q over the tokens of r,  kr[r] = mean of k over them   (vectors of Cqk)
 *   A[r][s] = qr[r] . kr[s]   (BiFormer ranks scale * A, the same order for any scale > 0)
 *   routes[r] = the topk regions s with the largest A[r][s], in decreasing order; equal
 *   affinities go to the lower region index first (torch.topk leaves ties unspecified), a NaN
 *   ranks above every number as in torch. The means and affinities are computed in double
 *   (tokens summed in region order, channels in order), so routes can differ from PyTorch's
 *   float32 ones only where two affinities agree to float rounding.
 * Token attention (per head h of d = Cqk / heads query/key and dv = Cv / heads value channels):
 *   out[b, y, x, h*dv : (h+1)*dv] = softmax_j(scale * q_i . k_j) v_j over the topk * rh * rw
 *   tokens j of the routed regions of the region of token i = (y, x).
 * scale defaults to Cqk^-0.5, the FULL query/key width, as BiFormer's qk_scale default
 * (qk_dim ** -0.5), not the head width; routing and token attention use the same scale.
 *
 * Not here: BiFormer's local context enhancement (LePE, a depthwise convolution of V added to
 * the output) and the output projection belong to the model; so do the qkv projection and
 * auto_pad. Hgt and Wid must be multiples of S: BiFormer's auto_pad zero-pads the block input
 * x before the qkv projection (padded tokens then carry the projection's bias and take part
 * in routing and attention) and crops the output, which a caller reproduces by padding x
 * before its projection; this kernel rejects other sizes rather than pad q, k, v with zeros,
 * which would give a different result.
 *
 * Layouts: q, k [B, Hgt, Wid, Cqk], v [B, Hgt, Wid, Cv] (channels last, BiFormer's NHWC; any
 * strides except that the last dimension must be contiguous, so views of one [B, H, W, 2Cqk
 * + Cv] qkv projection work without a copy), F32 or BF16 (all the same); out [B, Hgt, Wid,
 * Cv] F32. Optional routes output I32 [B, S*S, topk] (libcore has no 64-bit integer tensors;
 * torch's topk indices are int64 with the same values).
 *
 * Precision: the token attention accumulates in F32 with an online softmax over key tiles (the
 * tile kernels of lr_attention at the context's CPU level; BF16 inputs are widened to F32
 * exactly); error ~1e-6 of max |v| against the double reference. The routes are computed in
 * double in the same order by lr_bra and lr_bra_ref, so both always agree. Output and routes
 * are bit-identical for any thread count.
 *
 * Cost: routing 2 B Hgt Wid Cqk + 2 B S^4 Cqk flops (means, affinities) in double and
 * B S^2 sorts of S^2 affinities; attention 2 (d + dv) flops per (query, key) pair of a head,
 * B Hgt Wid topk rh rw pairs per head. Memory: a workspace of lr_bra_workspace_size bytes,
 * about 4 B Hgt Wid (Cqk + Cv) (K and V rearranged region-major per head, so that a routed
 * region is one contiguous block, plus the region means and routes; allocated per call when
 * the caller gives none, which costs page faults on every call: pass one when calling
 * repeatedly), and per-thread scratch that grows with the head dims and S^2. */
#ifndef LONGRANGE_BRA_H
#define LONGRANGE_BRA_H

#include <stddef.h>

#include "longrange/core.h"
#include "longrange/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int64_t n_win;     /* S, regions per side: >= 1, divides Hgt and Wid */
    int64_t topk;      /* routed regions per region: 1..S*S */
    int64_t num_heads; /* divides Cqk and Cv */
    float scale;       /* multiplies q.k; 0 means Cqk^-0.5 (BiFormer's default); finite, >= 0 */
    lr_tensor *routes; /* optional output, I32 [B, S*S, topk] */
    /* Optional work memory of at least lr_bra_workspace_size bytes, 8-byte aligned (e.g. from
     * the caller's arena); NULL: lr_bra allocates and frees it in the call. */
    void *workspace;
    size_t workspace_size;
} lr_bra_params;

/* BiLevelRoutingAttention's defaults: n_win 7, topk 4, 8 heads, scale 0, no routes output,
 * no workspace. */
lr_bra_params lr_bra_default_params(void);

/* Bytes of workspace lr_bra needs for B images of Hgt x Wid tokens with Cqk query/key and
 * Cv value channels under p's n_win and topk (p NULL: the defaults); 0 if the size overflows
 * or the parameters are out of range. */
size_t lr_bra_workspace_size(const lr_bra_params *p, int64_t B, int64_t Hgt, int64_t Wid, int64_t Cqk,
                             int64_t Cv);

/* p may be NULL for the defaults. Invalid shapes, dtypes or parameters give LR_ERR_ARG with
 * the reason in lr_ctx_last_error. */
lr_status lr_bra(lr_ctx *ctx, const lr_bra_params *p, const lr_tensor *q, const lr_tensor *k,
                 const lr_tensor *v, lr_tensor *out);

/* The definition, computed plainly: routes from their own loops (a selection scan instead of
 * a sort), then per query token and head a materialised score row over the routed tokens,
 * double accumulation. Allocates its own memory (ignores p->workspace); for tests and error
 * measurement. */
lr_status lr_bra_ref(lr_ctx *ctx, const lr_bra_params *p, const lr_tensor *q, const lr_tensor *k,
                     const lr_tensor *v, lr_tensor *out);

#ifdef __cplusplus
}
#endif
#endif
