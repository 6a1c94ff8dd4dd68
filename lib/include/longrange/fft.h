/* Real FFT of any length, single precision (twiddles computed in double).
 *
 * Lengths: any n >= 1 up to 2^40. With n' = n/2 for even n, else n: when n' has no prime
 * factor above 13 the transform runs as a mixed-radix Stockham FFT (radix 2, 3, 4, 5, 7, 11,
 * 13); otherwise through Bluestein's algorithm on a 2^a 3^b 5^c transform of at least
 * 2 n' - 1 points, still O(n log n), about three times slower. Spectra are n/2 + 1
 * interleaved (re, im) pairs, as numpy's rfft returns.
 *
 * Both directions are unnormalised, as in FFTW: lr_fft_inverse(lr_fft_forward(x)) = n x.
 *
 * A plan is made once per length and then only read, so one plan may serve several threads
 * at once if each passes its own workspace (lr_fft_workspace_bytes); with work == NULL a call
 * uses the plan's own workspace and must not overlap another such call. Executing never
 * allocates. */
#ifndef LONGRANGE_FFT_H
#define LONGRANGE_FFT_H

#include "longrange/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lr_fft_plan lr_fft_plan;

lr_status lr_fft_plan_create(lr_ctx *ctx, int64_t n, lr_fft_plan **out);
void lr_fft_plan_destroy(lr_fft_plan *plan);

int64_t lr_fft_length(const lr_fft_plan *plan);
/* Bytes of workspace one call needs (64-byte alignment is best, 4 is enough). */
size_t lr_fft_workspace_bytes(const lr_fft_plan *plan);

/* out[2k], out[2k + 1] = re, im of sum_t in[t] e^(-2 pi i k t / n), for k = 0..n/2. */
lr_status lr_fft_forward(lr_ctx *ctx, const lr_fft_plan *plan, const float *in, float *out, void *work);

/* out[t] = sum_{k=0}^{n-1} X[k] e^(+2 pi i k t / n), X the Hermitian extension of the n/2 + 1
 * values in `in` (X[n - k] = conj X[k]). The imaginary parts of in[0] and, for even n, of
 * in[n/2] are ignored. in is not modified. */
lr_status lr_fft_inverse(lr_ctx *ctx, const lr_fft_plan *plan, const float *in, float *out, void *work);

#ifdef __cplusplus
}
#endif
#endif
