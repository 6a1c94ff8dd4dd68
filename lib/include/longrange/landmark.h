/* Landmark attention (Mohtashami & Jaggi 2023, "Landmark Attention: Random-Access Infinite
 * Context Length for Transformers"), causal, with the official implementation's semantics
 * (epfml/landmark-attention: landmark_grouped_softmax in models/landmark.py and
 * llama/llama_mem.py, the Triton kernel llama/ltriton/flash_landmark_attention.py, and the
 * cached inference path with cache_top_k in llama/llama_mem.py).
 *
 * Blocks. The keys are cut into blocks of s = block_size tokens (s >= 2); the last token of
 * every block is its landmark: position j is a landmark iff (j + 1) % s == 0 (the official
 * code inserts one landmark after every mem_freq = s - 1 regular tokens). Block of j:
 * b(j) = j / s. A trailing partial block has no landmark.
 *
 * Positions. Query row i sits at position p = i + Lk - Lq (the bottom-right alignment of
 * lr_attention; p = i for self-attention); rows with p < 0 see nothing and get zeros. Let
 * c = b(p), x_j = scale * q_i . k_j.
 *
 * Grouped softmax (lr_landmark_attention). One softmax group G holds the regular tokens of
 * the query's own block up to p (j in [c s, p], j not a landmark; the own block's landmark is
 * hidden even from the landmark query itself) and the landmarks of all earlier blocks
 * (landmark of block b < c at position b s + s - 1). Each earlier block b has its own
 * within-block softmax over its s - 1 regular tokens. Then
 *   P_G(j) = exp(x_j) / sum_{j' in G} exp(x_j')
 *   out_i  = sum_{j own, regular} P_G(j) v_j
 *          + sum_{b < c} P_G(landmark_b) * sum_{j in block b, regular} softmax_b(x)_j v_j.
 * Landmark values never contribute; each row's weights sum to 1. Row i depends on keys <= p
 * only (the causal prefix property holds).
 *
 * Retrieval (lr_landmark_retrieval), the inference path: per query and head, only the
 * top_k earlier blocks by landmark score x_landmark_b take part (top_k >= c: all of them),
 * ties broken towards the lower block index; the landmarks of the other blocks leave G
 * entirely. The retrieved blocks keep the grouped weights above (the official inference
 * prepends the selected blocks, landmarks included, to the local tokens and runs the same
 * grouped softmax). With top_k >= the number of blocks this is lr_landmark_attention.
 *
 * Layout: q [B, Hq, Lq, D], k [B, Hkv, Lk, D], v [B, Hkv, Lk, Dv], out [B, Hq, Lq, Dv], all
 * F32; Hq a multiple of Hkv (query head h reads kv head h / (Hq / Hkv)). Any strides except
 * in the last dimension, which must be contiguous.
 *
 * Precision and cost. The fast paths accumulate in F32 with the tile kernels of lr_attention
 * (error ~1e-7..1e-6 of max |v| against the double references). lr_landmark_attention does
 * the O(Lq Lk D) work of exact causal attention in query tiles: the earlier blocks go through
 * the key tiles whole (a within-block softmax on each block's columns, each column then
 * scaled by its landmark's group weight, one P V for the tile), then the own blocks' tokens
 * join the same online softmax. lr_landmark_retrieval scores each query against the
 * landmarks only (the tile kernels on the strided landmark rows), keeps its top k, and
 * attends to those blocks (per row, 4-lane vector loops) and the local tokens:
 * O(Lq (Lk / s + k s) D). Both give bit-identical output for any thread count, and a causal
 * prefix reproduces its rows bit for bit. Memory: per-thread scratch that grows with the head
 * dims, the block size and (retrieval) min(top_k, Lk / s), never with Lq.
 *
 * Retrieval ranks blocks by F32 scores, the reference by double scores: blocks whose scores
 * tie within rounding may be ranked differently by the two. */
#ifndef LONGRANGE_LANDMARK_H
#define LONGRANGE_LANDMARK_H

#include "longrange/core.h"
#include "longrange/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int64_t block_size; /* s: tokens per block including its landmark, >= 2 */
    int64_t top_k;      /* retrieval only: blocks per query, >= 1 */
    float scale;        /* multiplies q.k; 0 means 1/sqrt(D); finite and >= 0 */
} lr_landmark_params;

/* block_size 32 (the LLaMA landmark fine-tune's mem_freq 31 plus its landmark), top_k 4,
 * scale 0. */
lr_landmark_params lr_landmark_default_params(void);

/* The grouped softmax, tiled. p may be NULL for the defaults. Invalid shapes or parameters
 * give LR_ERR_ARG with the reason in lr_ctx_last_error. */
lr_status lr_landmark_attention(lr_ctx *ctx, const lr_landmark_params *p, const lr_tensor *q,
                                const lr_tensor *k, const lr_tensor *v, lr_tensor *out);

/* The definition, plainly: per query row, the group's scores in double, each earlier block's
 * softmax in double. O(Lq Lk D); for tests and error measurement. */
lr_status lr_landmark_attention_ref(lr_ctx *ctx, const lr_landmark_params *p,
                                    const lr_tensor *q, const lr_tensor *k, const lr_tensor *v,
                                    lr_tensor *out);

/* Top-k block retrieval (p->top_k blocks per query and head). */
lr_status lr_landmark_retrieval(lr_ctx *ctx, const lr_landmark_params *p, const lr_tensor *q,
                                const lr_tensor *k, const lr_tensor *v, lr_tensor *out);

/* Its definition, plainly, in double: rank the earlier landmarks, keep the top k, then the
 * grouped softmax over them and the local tokens. */
lr_status lr_landmark_retrieval_ref(lr_ctx *ctx, const lr_landmark_params *p,
                                    const lr_tensor *q, const lr_tensor *k, const lr_tensor *v,
                                    lr_tensor *out);

/* The work of the fast paths for one (batch, head), summed over its Lq queries: returns the
 * keys scored (q.k) and stores in *valued the keys weighted into the output (P V); FLOPs =
 * 2 D scored + 2 Dv valued. top_k <= 0: the grouped softmax (every earlier block); else
 * retrieval. -1 on invalid sizes. */
int64_t lr_landmark_pairs(int64_t block_size, int64_t top_k, int64_t Lq, int64_t Lk,
                          int64_t *valued);

#ifdef __cplusplus
}
#endif
#endif
