/* Counter-based random numbers: Philox4x32-10 (Salmon, Moraes, Dror, Shaw, "Parallel random
 * numbers: as easy as 1, 2, 3", SC 2011), the generator behind PyTorch's and JAX's GPU noise.
 *
 * A counter-based generator is a keyed hash: value i of a stream is a pure function of (seed,
 * stream, i), with no state carried from one value to the next. Noise for frame k of a video is
 * then the same whether the frames are generated one by one, in chunks, in any order or on any
 * number of threads — what a streaming program needs for results that do not depend on how
 * its input was cut.
 *
 * lr_philox4x32: ten rounds of the Philox S-box on a 128-bit counter with a 64-bit key
 * (multipliers 0xD2511F53, 0xCD9E8D57; Weyl key increments 0x9E3779B9, 0xBB67AE85); checked
 * against the known-answer vectors of the authors' Random123 library.
 *
 * lr_normal_fill: out[j] = value first + j of stream `stream` under `seed`, standard normal.
 * Values 4b .. 4b+3 come from one Philox call with key (seed low 32 bits, seed high 32 bits)
 * and counter (b low, b high, stream low, stream high): words w0..w3 give two Box-Muller pairs,
 *     u1 = (w0 + 1) / 2^32 (in (0, 1]), u2 = w1 / 2^32, r = sqrt(-2 ln u1),
 *     value 4b = r cos(2 pi u2), value 4b + 1 = r sin(2 pi u2), and likewise w2, w3 for 4b + 2,
 *     4b + 3;
 * computed in double, rounded to float. |value| <= 6.67 (u1 >= 2^-32). Single-threaded. */
#ifndef LONGRANGE_RNG_H
#define LONGRANGE_RNG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

void lr_philox4x32(const uint32_t key[2], const uint32_t counter[4], uint32_t out[4]);

void lr_normal_fill(uint64_t seed, uint64_t stream, uint64_t first, float *out, size_t n);

#ifdef __cplusplus
}
#endif
#endif
