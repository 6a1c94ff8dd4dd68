/* Temporal (frame-token) self-attention of video diffusion models: for every pixel, its F
 * frame tokens attend to each other (AnimateDiff's motion module, which RAIN runs across frames
 * at different noise levels), optionally in overlapping windows fused with triangular weights
 * (FreeNoise, Qiu et al., ICLR 2024), which keeps the cost and the attention span of a long
 * sequence at those of the training length.
 *
 * Layout: q, k, v, out [F][P][C] (frame, pixel, channel), F32, contiguous; C = heads * d, head
 * h owning channels [h d, (h + 1) d). For pixel p and head h, with x_f = x[f][p][h d : (h+1) d]:
 *   attention over frames [a, b):  o_i = sum_{j in [a,b)} softmax_j(scale q_i . k_j) v_j
 *   window 0 or >= F: one window [0, F): out_i = o_i.
 *   window w < F, stride s: windows start at t = 0, s, 2s, ... while t + w <= F, plus one ending
 *     at F when the last of those does not (FreeNoise leaves such frames at zero; here every
 *     frame is covered). Frame i of the window starting at t gets weight min(i - t + 1,
 *     t + w - i) (1, 2, ..., w/2, w/2, ..., 1), and
 *     out_i = sum_windows weight * o_i(window) / sum_windows weight.
 * scale 0 means 1 / sqrt(d). No mask: every frame of a window sees every other (RAIN attends
 * across noise levels unmasked).
 *
 * Cost: 4 d w^2 per window per pixel and head: tiny attentions, so the kernel keeps a pixel's
 * frame tokens in cache and computes each window's F x F scores at once (not a long-sequence
 * FlashAttention). Precision: F32 accumulation, max-subtracted softmax. Deterministic and
 * bit-identical for any thread count (pixels are split into a fixed number of tasks).
 * LR_ERR_ARG for sizes < 1, C not divisible by heads, a window < F with a stride outside
 * 1..window (frames between windows would be left out), a negative
 * or non-finite scale, NULL pointers; LR_ERR_NOMEM if scratch cannot grow. out must not
 * overlap q, k or v. */
#ifndef LONGRANGE_TEMPORAL_H
#define LONGRANGE_TEMPORAL_H

#include "longrange/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int frames, pixels, channels, heads;
    int window, stride; /* window 0: all frames */
    float scale;        /* 0: 1 / sqrt(channels / heads) */
} lr_temporal_desc;

lr_status lr_temporal_attention(lr_ctx *ctx, const lr_temporal_desc *d, const float *q,
                                const float *k, const float *v, float *out);
/* The definition with double accumulation, window by window. */
lr_status lr_temporal_attention_ref(lr_ctx *ctx, const lr_temporal_desc *d, const float *q,
                                    const float *k, const float *v, float *out);

#ifdef __cplusplus
}
#endif
#endif
