/* Softmax attention, exact, FlashAttention-style: key/value tiles with an online softmax, so
 * the Lq x Lk score matrix never exists in memory. One kernel serves CAB's four patterns
 * (causal or not, self or cross), sliding windows with sink tokens, additive bias, key
 * padding, and block-sparse masks: each is a rule for which (query, key) pairs are visible,
 * and tiles with no visible pair are skipped.
 *
 * Layout: q [B, Hq, Lq, D], k [B, Hkv, Lk, D], v [B, Hkv, Lk, Dv], out [B, Hq, Lq, Dv].
 * Hq must be a multiple of Hkv (grouped-query / multi-query heads: query head h reads kv head
 * h / (Hq / Hkv)). Any strides are accepted except in the last dimension, which must be
 * contiguous, so views of a [B, L, H, D] projection work without a copy. q, k, v are F32 or
 * BF16 (all the same); out is F32. A query row with no visible key gets zeros, never NaN.
 *
 * Precision: F32 accumulation throughout (output error ~1e-6 of max |v| against the double
 * reference). BF16 inputs use VDPBF16PS on CPUs with AVX-512 BF16, which also rounds the
 * probabilities to bf16 for P V (error at most ~2^-9 max |v|); other CPUs widen them to F32.
 * The output is bit-identical for any thread count; different CPU levels (LR_CPU) agree
 * within the above. Memory: per-thread scratch that grows with the head dims, not the lengths
 * (about 100 KiB at D = 64). */
#ifndef LONGRANGE_ATTENTION_H
#define LONGRANGE_ATTENTION_H

#include <stdbool.h>

#include "longrange/core.h"
#include "longrange/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    float scale;          /* multiplies q.k; 0 means 1/sqrt(D); must be finite and >= 0 */
    /* Causal: key j is visible to query i iff j <= i + (Lk - Lq), i.e. the mask is aligned to
     * the bottom-right corner as in FlashAttention-2, which is the usual causal mask when
     * Lq == Lk and "the last query sees every key" for a decoding step. */
    bool causal;
    /* Sliding window, in the same aligned coordinates (p = i + Lk - Lq): key j is visible iff
     * p - window_left <= j <= p + window_right; -1 means unbounded on that side. */
    int64_t window_left, window_right;
    /* The first n_sink keys are visible to every query regardless of the window (attention
     * sinks); the causal rule still applies to them. */
    int64_t n_sink;
    /* Optional additive bias, F32 [Bb, Hb, Lq, Lk] with Bb in {1, B} and Hb in {1, Hq}. */
    const lr_tensor *bias;
    /* Optional key padding, U8 [B, Lk]: nonzero marks a key to ignore (PyTorch's convention). */
    const lr_tensor *key_padding;
    /* Optional block-sparse mask, U8 [Hm, ceil(Lq / block_q), ceil(Lk / block_k)] with Hm in
     * {1, Hq}: a zero entry hides that whole query-block x key-block tile. */
    const lr_tensor *block_mask;
    int64_t block_q, block_k;
} lr_attn_params;

/* scale 0, not causal, no windows (-1), no sinks, bias, padding or block mask. */
lr_attn_params lr_attn_default_params(void);

/* p may be NULL for the defaults. Invalid shapes, dtypes or parameters give LR_ERR_ARG with
 * the reason in lr_ctx_last_error. */
lr_status lr_attention(lr_ctx *ctx, const lr_attn_params *p, const lr_tensor *q,
                       const lr_tensor *k, const lr_tensor *v, lr_tensor *out);

/* The definition, computed plainly: each score row materialised, double accumulation,
 * max-subtracted softmax. O(Lk) memory per row; for tests and error measurement. */
lr_status lr_attention_ref(lr_ctx *ctx, const lr_attn_params *p, const lr_tensor *q,
                           const lr_tensor *k, const lr_tensor *v, lr_tensor *out);

/* Visible (query, key) pairs under p, summed over batch and heads: the FLOP count of an
 * attention is 4 * D * pairs (QK^T and PV, a multiply-add each) when D == Dv. Counts the
 * structure of the mask (causal, windows, sinks, block mask), not key padding or -inf bias
 * entries, which are data. -1 if p does not fit the sizes (e.g. the block mask's shape) or
 * the count overflows. */
int64_t lr_attention_pairs(const lr_attn_params *p, int64_t B, int64_t Hq, int64_t Lq, int64_t Lk);

#ifdef __cplusplus
}
#endif
#endif
