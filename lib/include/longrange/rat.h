/* RAT (Wei, Yadav, Pascanu, Gulcehre 2025, "RAT: Bridging RNN Efficiency and Attention
 * Accuracy in Language Modeling"): chunked gated recurrence plus softmax attention across
 * chunks. The operator of the authors' RAT layer (class RAT, src/model/backbone/rat in
 * github.com/CLAIRE-Labo/RAT: its forward and its one-token step agree with this), without
 * the projections, norms and output gate around it.
 *
 * Definition. The sequence is cut into chunks of C tokens; token t is in chunk c(t) = t / C.
 * Inside each chunk a gated linear recurrence, reset at the chunk's first token, aggregates
 * keys and values per channel:
 *     k~_t = g_t (.) k~_(t-1) + (1 - g_t) (.) k_t        k~_(t-1) = 0 when t % C == 0
 *     v~_t = f_t (.) v~_(t-1) + (1 - f_t) (.) v_t        (the same reset)
 * with (.) the element-wise product, g the gates tensor and f the value gates (the gates
 * themselves when none are given: the official layer shares one forget gate, a sigmoid per
 * channel, between keys and values). Query t attends to the final state of every earlier
 * chunk, K~_j = k~_((j+1)C - 1) for j < c(t), and to its own chunk's running state k~_t:
 *     s_tj = scale * q_t . R(j) K~_j  (j < c(t)),   s_tt = scale * q_t . k~_t
 *     out_t = (sum_j e^(s_tj) V~_j + e^(s_tt) v~_t) / (sum_j e^(s_tj) + e^(s_tt))
 * where q_t is the query already rotated for its chunk, R(c(t)) q_t, when rope_base > 0
 * (see below) and unrotated otherwise, and R = identity without rope. A query of chunk 0 sees
 * only its own state, so out_t = v~_t. C = 1 is causal softmax attention over the keys
 * (1 - g_t) k_t and values (1 - f_t) v_t (plain attention when the gates are 0); C >= L is the
 * pure recurrence out_t = v~_t. A final chunk shorter than C is allowed (the official layer
 * asserts L % C == 0): its queries work as above and its state is nobody's key.
 *
 * Positions (rope_base > 0): the official "interrope" rotates q and the aggregated keys by
 * the chunk index, RoPE's rotate-half form: for e < D/2, angle a = c * base^(-2e/D),
 * x'[e] = x[e] cos a - x[e + D/2] sin a, x'[e + D/2] = x[e + D/2] cos a + x[e] sin a, with
 * c = c(t) for q_t and for its own state (where the rotation cancels in the dot product) and
 * c = j for K~_j. The rotation acts after the recurrence (it does not commute with per-channel
 * gates), which is why it is a parameter here rather than the caller's job. The official
 * rat-xl configuration uses it (InterRoPE, base 10000 by default); 0 (the default here) is
 * the paper's NoPE variant.
 *
 * Not in the kernel (the caller's projections, as in the official layer): the input RMSNorm,
 * in_proj, g = sigmoid(x W_g + gate_bias), the output gate z = sigmoid(x W_z) multiplying the
 * output, and out_proj. The official layer shares q and k across head groups by repeating
 * them; here k and v may have fewer heads (below) and q is per head.
 *
 * Layout: q [B, H, L, D], k [B, Hkv, L, D], v [B, Hkv, L, Dv], gates [B, H, L, D],
 * value gates [B, H, L, Dv], out [B, H, L, Dv]; query head h reads kv head h / (H / Hkv)
 * (the official repeat maps head h to group h % ngroups: order the heads accordingly). Gates
 * are per query head since each head aggregates its own keys. All F32, any strides except in
 * the last dimension, which must be contiguous. Gates are used as given (meant to lie in
 * [0, 1]; not checked).
 *
 * Cost: 3 (D + Dv) FLOPs of recurrence per token and head, plus 2 (D + Dv) per (query, state)
 * pair, L (L / C) / 2 + L pairs per head: O(L^2 / C) + O(L). The fast path first computes the
 * final states of the complete chunks (a buffer of B H floor(L / C) (D + Dv) floats, allocated
 * per call: RAT's key/value cache, 1/C of k and v), then runs query tiles against them with
 * the tile kernels of lr_attention (online softmax, states in tiles of up to 128, the chunk
 * mask only on the tiles that reach the query tile's chunks) and merges each query's own state
 * last; the running states a tile needs are recomputed from its first chunk's start.
 *
 * Precision and determinism: F32 throughout (the official layer rounds the aggregated states
 * to bf16), error ~1e-7 of max |v| against the double reference; the aggregated keys are F32
 * sums, so very large logits amplify their rounding (up to ~4e-5 at logits of 1e4). The work is cut into tasks by shape only, so the output is bit-identical for
 * any thread count, and row t depends on tokens 0..t only, so a prefix of the sequence gives
 * the same rows bit for bit. */
#ifndef LONGRANGE_RAT_H
#define LONGRANGE_RAT_H

#include <stdint.h>

#include "longrange/core.h"
#include "longrange/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int64_t chunk;   /* C >= 1 (the paper's default is 16) */
    float scale;     /* multiplies q.k; 0 means 1/sqrt(D) (the official softmax_scale) */
    float rope_base; /* 0: no rotation; > 0: chunk-level RoPE with this base (D even) */
    /* Optional F32 [B, H, L, Dv]: separate forget gates for the values; NULL: the gates
     * tensor serves both (the official form, which needs Dv == D). */
    const lr_tensor *value_gates;
} lr_rat_params;

/* chunk 16, scale 0, no rope, no separate value gates. */
lr_rat_params lr_rat_default_params(void);

/* p may be NULL for the defaults. Invalid shapes, dtypes or parameters give LR_ERR_ARG with
 * the reason in lr_ctx_last_error; LR_ERR_NOMEM if the chunk-state buffer cannot be had. */
lr_status lr_rat_attention(lr_ctx *ctx, const lr_rat_params *p, const lr_tensor *q,
                           const lr_tensor *k, const lr_tensor *v, const lr_tensor *gates,
                           lr_tensor *out);

/* The definition, computed plainly: per head the recurrence over the whole sequence in double,
 * then per query its visible states listed explicitly (each rotated by its own position when
 * rope is on), scores, max-subtracted softmax, all in double. O(L (D + Dv)) doubles of
 * per-thread scratch; for tests and error measurement. */
lr_status lr_rat_attention_ref(lr_ctx *ctx, const lr_rat_params *p, const lr_tensor *q,
                               const lr_tensor *k, const lr_tensor *v, const lr_tensor *gates,
                               lr_tensor *out);

/* (query, state) pairs of one head of length L with chunk C: sum over t < L of t / C + 1
 * (the earlier chunks' states plus the own one). -1 if L < 0, C < 1 or it overflows. */
int64_t lr_rat_pairs(int64_t L, int64_t C);

#ifdef __cplusplus
}
#endif
#endif
