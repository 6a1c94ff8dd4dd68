/* Neighbourhood attention (NA) and dilated neighbourhood attention (DiNA), 1D and 2D, with
 * NATTEN's semantics, computed fused: no unfolded key/value copies and no score matrix.
 *
 * Neighbours. Along an axis of length L, kernel size k (odd, r = k / 2) and dilation d, a query
 * at i belongs to the sub-grid of positions congruent to i mod d, of length
 * L' = ceil((L - i mod d) / d), at sub-index i' = i / d. Its window is the k consecutive
 * sub-grid positions starting at s' = clamp(i' - r, 0, L' - k): centred on the query, shifted
 * inward (never truncated) at the borders, so every query sees exactly k keys in 1D and k x k
 * in 2D (the rule applied per axis). d = 1 is plain NA. Causal 1D instead takes the k sub-grid
 * positions ending at the query, s' = max(i' - k + 1, 0), so the first ones see fewer.
 *
 * Logits are scale * q.k + rpb, softmax over the neighbours, output = sum p v. The optional
 * relative positional bias is indexed by the key's sub-index minus the query's, plus k - 1:
 * rpb[h][j' - i' + k - 1] in 1D, rpb[h][y'k - y'q + k - 1][x'k - x'q + k - 1] in 2D (NATTEN's
 * get_pb_start; border queries reach the outer entries). Not allowed with causal.
 *
 * Small maps. Like NATTEN's kernels, every axis needs L >= k * d (then every sub-grid has at
 * least k positions); shorter axes are rejected, except in causal 1D, whose windows only
 * reach back and are cut at the start anyway. DiNAT's checkpoints were trained with
 * NATTEN <= 0.14, whose module zero-pads the normalised input on the right/bottom up to k * d
 * before the qkv projection (so padded keys carry the qkv bias) and crops after attention:
 * callers reproduce that by padding before their projection, not here.
 *
 * Layouts (F32; any strides, except that the last dimension must be contiguous):
 *   1D: q, k, v, out [B, H, L, D], the layout of lr_attention;
 *   2D: q, k, v, out [H, Hgt, Wid, D], one image: tensors have at most 4 dimensions, and this
 *       is a view of a DiNAT qkv projection [Hgt, Wid, 3, H, D] without a copy (q at column
 *       offset 0, head stride D, row strides Wid * 3HD and 3HD); batches are a loop.
 * rpb: F32 [H, 2k - 1] (1D) or [H, 2k - 1, 2k - 1] (2D), contiguous in the last dimension.
 *
 * Precision and determinism: F32 accumulation with an online softmax over key tiles (the tile
 * kernels of lr_attention at the context's CPU level); error ~1e-6 of max |v| against the
 * double reference. Bit-identical output for any thread count. Memory: per-thread scratch that
 * grows with the head dims only (about 70 KiB at D = 64); nothing grows with L or k. */
#ifndef LONGRANGE_NATTEN_H
#define LONGRANGE_NATTEN_H

#include <stdbool.h>

#include "longrange/core.h"
#include "longrange/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int64_t kernel_size;  /* k: odd, >= 1 */
    int64_t dilation;     /* d: >= 1 */
    float scale;          /* multiplies q.k; 0 means 1/sqrt(D); finite and >= 0 */
    bool causal;          /* 1D only */
    const lr_tensor *rpb; /* optional relative positional bias, see above */
} lr_na_params;

/* kernel_size 7, dilation 1, scale 0, not causal, no rpb (DiNAT's setting). */
lr_na_params lr_na_default_params(void);

/* Invalid shapes or parameters give LR_ERR_ARG with the reason in lr_ctx_last_error. */
lr_status lr_na1d(lr_ctx *ctx, const lr_na_params *p, const lr_tensor *q, const lr_tensor *k,
                  const lr_tensor *v, lr_tensor *out);
lr_status lr_na2d(lr_ctx *ctx, const lr_na_params *p, const lr_tensor *q, const lr_tensor *k,
                  const lr_tensor *v, lr_tensor *out);

/* The definition, computed plainly from explicit neighbour lists (NATTEN's index functions,
 * written independently of the sub-grid form the fast path uses), double accumulation. For
 * tests and error measurement. */
lr_status lr_na1d_ref(lr_ctx *ctx, const lr_na_params *p, const lr_tensor *q, const lr_tensor *k,
                      const lr_tensor *v, lr_tensor *out);
lr_status lr_na2d_ref(lr_ctx *ctx, const lr_na_params *p, const lr_tensor *q, const lr_tensor *k,
                      const lr_tensor *v, lr_tensor *out);

/* The neighbours of position i along an axis of length L, as the reference uses them: writes
 * the key positions into idx[0..k) in increasing order and the rpb offsets (0..2k-2, -1 when
 * causal) into pb (may be NULL), and returns their count: k, or fewer near the start when
 * causal; -1 if (i, L, k, d) are invalid (k even, L < k * d when not causal, i outside
 * [0, L)). */
int64_t lr_na_neighbours(int64_t i, int64_t L, int64_t k, int64_t d, bool causal, int64_t *idx,
                         int64_t *pb);

#ifdef __cplusplus
}
#endif
#endif
