/* hyena: the causal long convolution of a Hyena operator (lr_longconv), the FFT convolution
 * HyenaDNA runs in place of attention. It mixes along the sequence like attention but stands
 * for none, so bench reports no error against softmax attention; check compares it with the
 * direct convolution.
 *
 * The case's values are the input, each kv head's [L, D] block read as D channels of L
 * samples (below), and query head h gets the output of kv head h / (Hq / Hkv). The filter stands in for a trained
 * one: a random tap times HyenaDNA's exponential modulation exp(-|delta_c| s / L), the decay
 * rates delta_c spread between ln(1e-2) / 1.5 and ln(1e-2) / 0.3 over the channels as in
 * its ExponentialModulation, plus a random skip term D_c. It is prepared once per shape and
 * CPU level and kept, as a model prepares its filters when it loads. */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "attn_bench.h"
#include "longrange/longconv.h"

static double filter_unit(uint64_t x) /* uniform in [-1, 1) from a counter (splitmix64) */
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    x ^= x >> 31;
    return (double)(x >> 11) / 4503599627370496.0 - 1.0;
}

static float filter_tap(int64_t c, int64_t channels, int64_t s, int64_t L)
{
    const double slow = log(1e-2) / 1.5, fast = log(1e-2) / 0.3;
    double delta = channels > 1 ? slow + (fast - slow) * (double)c / (double)(channels - 1) : slow;
    double decay = exp(-fabs(delta) * (double)s / (double)L);
    return (float)(filter_unit((uint64_t)c << 32 | (uint64_t)s) * decay / sqrt((double)L));
}

static float filter_skip(int64_t c) { return (float)filter_unit(~(uint64_t)c); }

/* The prepared filter of the last shape run. */
static struct {
    lr_longconv *conv;
    int64_t channels, length;
    lr_cpu_level level;
} cached;

static void cache_free(void) { lr_longconv_destroy(cached.conv); }

static lr_status prepared_filter(lr_ctx *ctx, int64_t channels, int64_t L, lr_longconv **out)
{
    if (cached.conv && cached.channels == channels && cached.length == L &&
        cached.level == lr_ctx_cpu(ctx)) {
        *out = cached.conv;
        return LR_OK;
    }
    float *taps = malloc((size_t)(channels * L) * sizeof *taps);
    float *skip = malloc((size_t)channels * sizeof *skip);
    lr_status s = taps && skip ? LR_OK : lr_fail(ctx, LR_ERR_NOMEM, "hyena: out of memory for the filter");
    for (int64_t c = 0; c < channels && s == LR_OK; c++) {
        skip[c] = filter_skip(c);
        for (int64_t t = 0; t < L; t++)
            taps[c * L + t] = filter_tap(c, channels, t, L);
    }
    lr_longconv *conv = NULL;
    if (s == LR_OK)
        s = lr_longconv_create(ctx, channels, L, taps, L, skip, &conv);
    free(taps);
    free(skip);
    if (s != LR_OK)
        return s;
    if (!cached.conv)
        atexit(cache_free);
    lr_longconv_destroy(cached.conv);
    cached.conv = conv;
    cached.channels = channels;
    cached.length = L;
    cached.level = lr_ctx_cpu(ctx);
    *out = conv;
    return LR_OK;
}

/* The channels of a head: its [L, D] block of memory read as D rows of L samples, the
 * [batch, channels, length] layout a Hyena model keeps its activations in. Element (i, e) of
 * a head is sample t = (i D + e) mod L of its channel (i D + e) / L. */
static bool contiguous(const lr_tensor *t)
{
    int64_t want = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->shape[d] > 1 && t->stride[d] != want)
            return false;
        want *= t->shape[d];
    }
    return true;
}

/* A contiguous F32 copy of t unless it is one already: *use points at the data, *owned is
 * what to free. */
static lr_status contiguous_f32(lr_ctx *ctx, const lr_tensor *t, float **use, float **owned)
{
    *owned = NULL;
    if (t->dtype == LR_F32 && contiguous(t)) {
        *use = t->data;
        return LR_OK;
    }
    lr_tensor copy;
    lr_status s = tensor_zeros(ctx, t->ndim, t->shape, LR_F32, &copy);
    if (s == LR_OK)
        s = lr_tensor_copy(ctx, t, &copy);
    *use = *owned = copy.data;
    return s;
}

static lr_status hyena_run(lr_ctx *ctx, const attn_case *c, const lr_tensor *q,
                           const lr_tensor *k, const lr_tensor *v, lr_tensor *out)
{
    int64_t L = c->Lk, G = c->Hq / c->Hkv, head = L * c->D;
    float *u, *owned = NULL, *y = NULL;
    lr_longconv *conv = NULL;
    lr_status s = prepared_filter(ctx, c->Hkv * c->D, L, &conv);
    if (s == LR_OK)
        s = contiguous_f32(ctx, v, &u, &owned);
    bool direct = G == 1 && out->dtype == LR_F32 && contiguous(out);
    if (s == LR_OK && !direct && !(y = malloc((size_t)(c->B * c->Hkv * head) * sizeof *y)))
        s = lr_fail(ctx, LR_ERR_NOMEM, "hyena: out of memory");
    if (s == LR_OK)
        s = lr_longconv_apply(ctx, conv, c->B, L, u, direct ? out->data : y);
    for (int64_t b = 0; b < c->B && s == LR_OK && !direct; b++) {
        for (int64_t h = 0; h < c->Hq && s == LR_OK; h++) {
            const int64_t shape[2] = {L, c->D};
            lr_tensor src = lr_tensor_from(y + (b * c->Hkv + h / G) * head, LR_F32, 2, shape), dst;
            s = lr_tensor_slice(ctx, out, 0, b, 1, &dst);
            if (s == LR_OK)
                s = lr_tensor_slice(ctx, &dst, 1, h, 1, &dst);
            if (s == LR_OK)
                s = lr_tensor_reshape(ctx, &dst, 2, shape, &dst);
            if (s == LR_OK)
                s = lr_tensor_copy(ctx, &src, &dst);
        }
    }
    free(owned);
    free(y);
    return s;
}

/* Each element of the rows asked for from its definition, sum_{s <= t} tap(s) u[t - s] +
 * D u[t] for its channel and sample t, in double. */
static lr_status hyena_definition_rows(lr_ctx *ctx, const attn_case *c, const lr_tensor *q,
                                       const lr_tensor *k, const lr_tensor *v, int64_t row0,
                                       lr_tensor *out_rows)
{
    int64_t L = c->Lk, n = out_rows->shape[2], G = c->Hq / c->Hkv, channels = c->Hkv * c->D;
    float *u, *owned;
    lr_status s = contiguous_f32(ctx, v, &u, &owned);
    for (int64_t b = 0; b < c->B && s == LR_OK; b++) {
        for (int64_t h = 0; h < c->Hq; h++) {
            const float *head = u + (b * c->Hkv + h / G) * L * c->D;
            for (int64_t i = 0; i < n; i++) {
                for (int64_t e = 0; e < c->D; e++) {
                    int64_t f = (row0 + i) * c->D + e, channel = f / L, t = f % L;
                    const float *x = head + channel * L;
                    int64_t ch = (h / G) * c->D + channel;
                    double acc = (double)filter_skip(ch) * x[t];
                    for (int64_t j = 0; j <= t; j++)
                        acc += (double)filter_tap(ch, channels, j, L) * x[t - j];
                    const int64_t at[4] = {b, h, i, e};
                    *(float *)lr_tensor_at(out_rows, at) = (float)acc;
                }
            }
        }
    }
    free(owned);
    return s;
}

/* Per channel and batch item, rfft and irfft of N = 2L points (2.5 N log2 N each, the usual
 * FFT count) and the spectrum product (6 per bin, N / 2 bins): the nominal cost of the
 * convolution, whatever transform length lr_longconv picks. */
static double hyena_flops(const attn_case *c)
{
    double N = 2.0 * (double)c->Lk;
    return (double)(c->B * c->Hkv * c->D) * (5.0 * N * log2(N) + 3.0 * N);
}

const attn_kernel attn_kernel_hyena = {
    .name = "hyena",
    .summary = "Hyena's causal long convolution of the values through the FFT, per channel, "
               "with a decaying random filter as HyenaDNA's modulation shapes it "
               "(lr_longconv; no error against attention, which it does not stand for)",
    .patterns = 1u << PATTERN_CAUSAL,
    .no_bias = true,
    .no_prefix_property = true,
    .tolerance_f32 = 2e-5,
    .tolerance_bf16 = 2e-5,
    .run = hyena_run,
    .definition_rows = hyena_definition_rows,
    .flops = hyena_flops,
};
