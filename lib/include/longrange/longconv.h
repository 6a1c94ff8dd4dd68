/* Causal long convolution through the FFT (the Hyena / HyenaDNA "fftconv"):
 *
 *   y[b, c, t] = sum_{s=0}^{t} k[c, s] u[b, c, t - s] + D[c] u[b, c, t],   0 <= t < L,
 *
 * for a bank of per-channel filters k prepared once (their spectrum is cached) and applied
 * to many inputs. It computes what the official HyenaDNA fftconv computes (rfft of k and u
 * zero-padded to 2L, the filter spectrum divided by the FFT size, the product transformed
 * back with norm='forward', the first L samples kept, plus u * D), with its own transform
 * length: a 2^a 3^b 5^c of at least L + min(K, L) - 1 points, so nothing wraps around. (The
 * official code is always given K = L taps; taps at s >= L, which it would wrap into the
 * output, cannot reach a causal output and are ignored here.) D is folded into tap 0, so
 * u * D goes through the transform with the rest: the same sum, rounded differently.
 *
 * Any length works (L = 1 included); the whole transform of a pair of channels is made in
 * one task, so parallelism comes from batch x channels / 2 tasks.
 *
 * The work is a fixed set of tasks (one per pair of channels of one batch element), so the
 * result is bit-identical for any thread count; it depends on the CPU level the filter was
 * prepared at. */
#ifndef LONGRANGE_LONGCONV_H
#define LONGRANGE_LONGCONV_H

#include "longrange/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lr_longconv lr_longconv;

/* filter: [channels][filter_len] taps (taps at s >= length are never used); skip: D, one per
 * channel, or NULL for none. length: the longest input the filter will be applied to. The
 * kernels are those of lr_ctx_cpu(ctx) at the time of the call. */
lr_status lr_longconv_create(lr_ctx *ctx, int64_t channels, int64_t length, const float *filter,
                             int64_t filter_len, const float *skip, lr_longconv **out);
void lr_longconv_destroy(lr_longconv *conv);

/* u, y: [batch][channels][length] with length <= the prepared length (a shorter input gives
 * the first `length` outputs of the prepared one, by causality, at the prepared length's
 * cost: prepare one filter per length bucket for short inputs). y may be u; otherwise they
 * must not overlap. The first call may grow the context's per-thread scratch
 * (lr_longconv_scratch_bytes per thread); later calls do not allocate. */
lr_status lr_longconv_apply(lr_ctx *ctx, const lr_longconv *conv, int64_t batch, int64_t length,
                            const float *u, float *y);

/* The transform length chosen, and the bytes the cached spectrum holds. */
int64_t lr_longconv_fft_length(const lr_longconv *conv);
size_t lr_longconv_spectrum_bytes(const lr_longconv *conv);
/* Per-thread scratch bytes one apply reserves through lr_thread_scratch_reserve. */
size_t lr_longconv_scratch_bytes(const lr_longconv *conv);

#ifdef __cplusplus
}
#endif
#endif
