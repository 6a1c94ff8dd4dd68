/* Series decomposition (Autoformer's series_decomp): the trend is a moving average of
 * `kernel` points with the series' first and last values repeated (kernel - 1) / 2 times at
 * either end, so it has the series' length; the seasonal part is what is left:
 *
 *   trend[t]    = (1 / kernel) sum_{j = t - h}^{t + h} x[clamp(j, 0, L - 1)],  h = (kernel - 1) / 2
 *   seasonal[t] = x[t] - trend[t]
 *
 * Series are time-major, [batch][length][channels], as Autoformer's [B, L, D] tensors. The
 * kernel must be odd (Autoformer uses 25; an even one would shorten the series by one in
 * the official code). Sums run in double over a sliding window, so the cost is O(L) per
 * channel whatever the kernel, and the result does not depend on the thread count. */
#ifndef LONGRANGE_DECOMP_H
#define LONGRANGE_DECOMP_H

#include "longrange/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* x, seasonal, trend: [batch][length][channels]. Either output may be NULL; an output may
 * be x itself (the other is then computed first from the original). */
lr_status lr_series_decomp(lr_ctx *ctx, int64_t batch, int64_t length, int64_t channels,
                           int64_t kernel, const float *x, float *seasonal, float *trend);

#ifdef __cplusplus
}
#endif
#endif
