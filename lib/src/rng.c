/* Philox4x32-10 and normal noise from it; see longrange/rng.h. */
#include "longrange/rng.h"

#include <math.h>

void lr_philox4x32(const uint32_t key[2], const uint32_t counter[4], uint32_t out[4])
{
    uint32_t c0 = counter[0], c1 = counter[1], c2 = counter[2], c3 = counter[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        const uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;
        const uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c1 = (uint32_t)p1;
        c3 = (uint32_t)p0;
        c0 = n0;
        c2 = n2;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

/* The four normals of block b. */
static void normal_block(const uint32_t key[2], uint64_t stream, uint64_t b, float v[4])
{
    const uint32_t counter[4] = {(uint32_t)b, (uint32_t)(b >> 32), (uint32_t)stream,
                                 (uint32_t)(stream >> 32)};
    uint32_t w[4];
    lr_philox4x32(key, counter, w);
    const double two_pi = 6.283185307179586476925286766559;
    for (int pair = 0; pair < 2; pair++) {
        const double u1 = ((double)w[2 * pair] + 1.0) * 0x1p-32;
        const double u2 = (double)w[2 * pair + 1] * 0x1p-32;
        const double r = sqrt(-2.0 * log(u1));
        v[2 * pair] = (float)(r * cos(two_pi * u2));
        v[2 * pair + 1] = (float)(r * sin(two_pi * u2));
    }
}

void lr_normal_fill(uint64_t seed, uint64_t stream, uint64_t first, float *out, size_t n)
{
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    size_t j = 0;
    while (j < n) {
        const uint64_t i = first + j, b = i / 4;
        float v[4];
        normal_block(key, stream, b, v);
        for (unsigned k = (unsigned)(i % 4); k < 4 && j < n; k++)
            out[j++] = v[k];
    }
}
