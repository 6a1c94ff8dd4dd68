/* Auto-Correlation with time-delay aggregation (Autoformer), as the official thuml
 * AutoCorrelation layer computes it:
 *
 *   corr[b, tau] = mean over channels c of  sum_t q[b, (t + tau) mod L, c] k[b, t, c]
 *                  (irfft(rfft(q) * conj(rfft(k)), n = L) averaged over heads and channels)
 *   top_k        = (int)(factor * ln L) delays with the largest corr
 *   w            = softmax of corr at those delays
 *   out[b, t, c] = sum_i w[b, i] v[b, (t + delay[b, i]) mod L, c]   (V rolled by -delay)
 *
 * Tensors are time-major, [batch][time][channels], with the heads flattened into the channels
 * (the official [B, L, H, E] layout): the mean over heads and channels is one mean over
 * H * E channels. Keys and values shorter than L are zero-padded to L, longer ones truncated,
 * as the official layer does.
 *
 * Delay selection: LR_AUTOCORR_INFERENCE picks the top_k delays per batch element (the
 * official time_delay_agg_inference, used in eval mode); LR_AUTOCORR_TRAINING picks them
 * once from the batch mean and weights them per element (time_delay_agg_training). Ties go to
 * the smaller delay and NaN counts as larger than any number, so the choice is deterministic.
 * Results are bit-identical for any thread count. */
#ifndef LONGRANGE_AUTOCORR_H
#define LONGRANGE_AUTOCORR_H

#include "longrange/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { LR_AUTOCORR_INFERENCE = 0, LR_AUTOCORR_TRAINING = 1 } lr_autocorr_mode;

/* A plan for series of `length` points. It keeps its FFT plan and buffers sized for the
 * largest batch seen (they grow outside the parallel regions, so steady use does not
 * allocate); one call at a time per object. */
typedef struct lr_autocorr lr_autocorr;

lr_status lr_autocorr_create(lr_ctx *ctx, int64_t length, lr_autocorr **out);
void lr_autocorr_destroy(lr_autocorr *ac);

/* (int)(factor * ln length), the official number of delays. */
int64_t lr_autocorr_top_k(double factor, int64_t length);

/* corr: [batch][length]. q: [batch][length][channels]; k: [batch][key_len][channels]. */
lr_status lr_autocorr_correlate(lr_ctx *ctx, lr_autocorr *ac, int64_t batch, int64_t channels,
                                  const float *q, const float *k, int64_t key_len, float *corr);

/* delays (0..length-1) and softmax weights, [batch][top_k] each, from corr [batch][length].
 * top_k may be 0 (then there is nothing to write). */
lr_status lr_autocorr_select(lr_ctx *ctx, int64_t batch, int64_t length, const float *corr, int64_t top_k,
                             lr_autocorr_mode mode, int64_t *delays, float *weights);

/* out: [batch][length][channels]; v: [batch][value_len][channels]. Terms are added in the
 * order of the delays, from zero, as the official loop does. */
lr_status lr_autocorr_aggregate(lr_ctx *ctx, int64_t batch, int64_t length, int64_t channels, const float *v,
                                int64_t value_len, int64_t top_k, const int64_t *delays, const float *weights,
                                float *out);

/* The three steps together with top_k = lr_autocorr_top_k(factor, length). q and k have
 * qk_channels, v and out v_channels (they differ when d_keys != d_values); k and v hold
 * key_len steps. */
lr_status lr_autocorr_forward(lr_ctx *ctx, lr_autocorr *ac, int64_t batch, int64_t qk_channels,
                              int64_t v_channels, const float *q, const float *k, const float *v,
                              int64_t key_len, double factor, lr_autocorr_mode mode, float *out);

/* The same, added to a residual: x[t][c] = x[t][c] + (out[t][c] + bias[c]) with out as
 * lr_autocorr_forward computes it (bias may be NULL: x + out), without a buffer for out. The
 * layer's output bias and residual connection in one pass. */
lr_status lr_autocorr_forward_add(lr_ctx *ctx, lr_autocorr *ac, int64_t batch, int64_t qk_channels,
                                  int64_t v_channels, const float *q, const float *k, const float *v,
                                  int64_t key_len, double factor, lr_autocorr_mode mode, const float *bias,
                                  float *x);

#ifdef __cplusplus
}
#endif
#endif
