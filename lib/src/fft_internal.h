/* What the FFT drivers (fft.c, longconv.c) share with the per-instruction-set kernels
 * (cpu/fft_ref.c, cpu/fft_avx2.c, cpu/fft_avx512.c, all built from cpu/fft_kernels.h).
 *
 * Data layout of every kernel: a sequence of "rows", each row holding `lanes` complex values
 * split into `lanes` real parts followed by `lanes` imaginary parts (row stride 2 * lanes
 * floats). A kernel transforms all lanes at once along the rows, so each butterfly is a
 * handful of whole-vector operations with broadcast twiddles. With lanes == 1 a row is one
 * interleaved (re, im) pair: the layout of an ordinary complex array. */
#ifndef LR_FFT_INTERNAL_H
#define LR_FFT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "longrange/core.h"

/* One Stockham autosort pass (decimation in frequency) of radix p over n_cur = p * m rows,
 * applied to `s` interleaved sub-sequences: out[k + s(p q + r)] = w^(r q) * sum_j
 * in[k + s(q + m j)] e^(-2 pi i j r / p), with w = e^(-2 pi i / n_cur). */
typedef struct {
    int radix;    /* 2, 3, 4, 5, 8, or 7, 11, 13 (the generic odd butterfly) */
    int64_t m, s;
    size_t tw;    /* offset of this pass's twiddles: m groups of (radix - 1) (re, im) pairs */
    size_t dft;   /* generic odd radix p: offset of cos, sin (2 pi j r / p), r, j = 1..(p-1)/2 */
} lr_fft_pass;

enum { LR_FFT_MAX_PASSES = 64, LR_FFT_MAX_RADIX = 13 };

/* A complex FFT of length n as a list of passes (n has no prime factor above 13). */
typedef struct {
    int64_t n;
    int n_passes;
    lr_fft_pass pass[LR_FFT_MAX_PASSES];
    float *tw;
} lr_fft_steps;

/* Geometry of the long convolution (see longconv.c): a complex FFT of length n = n1 * n2
 * on a pair of real channels (one in the real, one in the imaginary part), evaluated at the
 * odd frequencies k + 1/2 and computed in three passes over the pair:
 *   A: for each block of `lanes` columns n2, an odd-DFT of length n1 down the columns, the
 *      twiddle e^(-2 pi i n2 (k1 + 1/2) / n), and a transposed store into `work`;
 *   B: for each pair of mirrored blocks of columns k1, FFTs of length n2, the spectral
 *      product with the cached filter, inverse FFTs;
 *   C: pass A backwards, writing the first `length` outputs.
 * `work` holds n1 / lanes blocks of n2 rows; the filter spectrum holds, for each block b in
 * the first half, n2 rows of (P re, P im, Q re, Q im) x lanes. */
typedef struct {
    int lanes;
    int stream;                 /* passes A and C write around the caches (too large to stay) */
    int64_t n, n1, n2;
    int64_t blocks;             /* n1 / lanes */
    lr_fft_steps col;           /* length n1 */
    lr_fft_steps row;           /* length n2 */
    float *odd_shift;           /* n1 (re, im): e^(-i pi n1 / N1) */
    float *tw_lane;             /* n1 rows of lanes re, lanes im: e^(-2 pi i l (k1 + 1/2) / n) */
    float *tw_block;            /* n2 / lanes x n1 (re, im): e^(-2 pi i lanes j (k1 + 1/2) / n) */
} lr_conv_geom;

/* Scratch (floats) one pair of channels needs besides `work` (2 n floats). */
size_t lr_conv_scratch_floats(const lr_conv_geom *g);

typedef struct {
    int lanes;
    int radix8;   /* lengths for these kernels factor into radix-8 passes first */
    /* The Stockham passes of `st` over rows in x (clobbered), ping-ponging with y; returns the
     * buffer that holds the result. inverse: the conjugate transform (e^(+2 pi i ...)). */
    float *(*fft)(const lr_fft_steps *st, float *x, float *y, int inverse);
    /* Pass A for one pair (ub may be NULL: a zero channel). */
    void (*conv_forward)(const lr_conv_geom *g, const float *ua, const float *ub, int64_t length,
                         float *work, float *scratch);
    /* Pass B: forward FFTs of blocks b and its mirror, the product with spectrum (P, Q) of
     * block b, inverse FFTs; in place in work. */
    void (*conv_multiply)(const lr_conv_geom *g, int64_t b, const float *spectrum, float *work,
                          float *scratch);
    /* Pass C for one pair (yb may be NULL). */
    void (*conv_inverse)(const lr_conv_geom *g, const float *work, int64_t length, float *ya,
                         float *yb, float *scratch);
    /* Forward FFTs of block b and its mirror only (to prepare a filter's spectrum). */
    void (*conv_spectrum)(const lr_conv_geom *g, int64_t b, float *work, float *scratch,
                          const float **out_b, const float **out_mirror);
} lr_fft_kernels;

extern const lr_fft_kernels lr_fft_kernels_ref;
extern const lr_fft_kernels lr_fft_kernels_avx2;
extern const lr_fft_kernels lr_fft_kernels_avx512;
const lr_fft_kernels *lr_fft_kernels_for(lr_cpu_level level);

/* Twiddles of a complex FFT of length n into st (st->tw allocated with malloc), with
 * radix-8 passes when radix8 is set; 0 when n has a prime factor above 13 (or on allocation
 * failure). */
int lr_fft_steps_init(lr_fft_steps *st, int64_t n, int radix8);
void lr_fft_steps_free(lr_fft_steps *st);
/* The smallest 2^a 3^b 5^c >= n (n <= 2^62). */
int64_t lr_fft_good_length(int64_t n);
/* e^(-2 pi i num / den) computed in double with the angle reduced exactly. */
void lr_fft_unit_root(int64_t num, int64_t den, double *re, double *im);

#endif
