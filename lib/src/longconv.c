/* The causal long convolution of longrange/longconv.h.
 *
 * Two real channels a and b travel together as one complex sequence z = u_a + i u_b. Its
 * transform is taken at the odd frequencies k + 1/2 (a skew-circular DFT: nothing wraps
 * because the transform is long enough, and the pairing of a real signal's bins becomes
 * k <-> N - 1 - k, which lines up whole blocks of the layout below). With Z(k) known at k and
 * at its mirror, the two channels' spectra separate, so the product with the two filters is
 * Y(k) = P(k) Z(k) + Q(k) conj Z(N - 1 - k), P = (H_a + H_b) / 2, Q = (H_a - H_b) / 2; the
 * inverse transform then gives y_a + i y_b. P and Q are what the prepared filter caches (with
 * the 1/N of the inverse and the skip term D, added to tap 0, folded in).
 *
 * The transform of N = N1 N2 points runs as a four-step FFT in three passes over the pair's
 * work buffer, each touching memory once while its blocks stay in cache (fft_internal.h):
 * A) columns of the input: odd-DFTs of length N1, twiddles, transposed store;
 * B) blocks of N2 rows with their mirror block: FFT, product with P and Q, inverse FFT;
 * C) pass A backwards to the output. The spectrum never needs to be in natural order, and
 * the zero padding is never read or written outside the cache-resident blocks. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "fft_internal.h"
#include "internal.h"
#include "longrange/longconv.h"
#include "longrange/parallel.h"

struct lr_longconv {
    const lr_fft_kernels *kern;
    lr_conv_geom geom;
    int64_t channels, length, taps;
    int64_t pairs;
    int64_t half_blocks;  /* blocks b <= their mirror */
    size_t pair_floats;   /* spectrum floats per pair of channels */
    size_t scratch_floats; /* per-thread: work buffer and pass buffers */
    float *spectrum;
};

/* Huge pages for a large spectrum: 512 times fewer page faults when it is filled and TLB
 * misses when pass B streams through it (a hint; plain pages work too). */
static void *alloc_large(size_t bytes)
{
    const size_t huge = (size_t)2 << 20;
    if (bytes < 4 * huge)
        return malloc(bytes);
    size_t rounded = (bytes + huge - 1) / huge * huge;
    void *p = aligned_alloc(huge, rounded);
    if (p)
        madvise(p, rounded, MADV_HUGEPAGE);
    return p;
}

size_t lr_conv_scratch_floats(const lr_conv_geom *g)
{
    int64_t rows = g->n1 > g->n2 ? g->n1 : g->n2;
    return (size_t)rows * 4 * (size_t)g->lanes;
}

/* N = lanes^2 s with s the smallest 2^a 3^b 5^c that reaches `need`, cut into N1 = lanes s1
 * and N2 = lanes s2 with s1 as close to 2 s2 as the factors allow: pass B holds two blocks
 * of N2 rows where passes A and C hold one of N1. */
static void choose_lengths(int lanes, int64_t need, int64_t *n1, int64_t *n2)
{
    int64_t sq = (int64_t)lanes * lanes;
    int64_t s = lr_fft_good_length((need + sq - 1) / sq);
    int64_t best = 1;
    double best_cost = INFINITY;
    for (int64_t p5 = 1; s % p5 == 0; p5 *= 5)
        for (int64_t p35 = p5; s % p35 == 0; p35 *= 3)
            for (int64_t d = p35; s % d == 0; d *= 2) {
                double cost = fabs(log((double)d / (double)(s / d)) - log(2.0));
                if (cost < best_cost) {
                    best_cost = cost;
                    best = d;
                }
            }
    *n1 = lanes * best;
    *n2 = lanes * (s / best);
}

static void geom_free(lr_conv_geom *g)
{
    lr_fft_steps_free(&g->col);
    lr_fft_steps_free(&g->row);
    free(g->odd_shift);
    free(g->tw_lane);
    free(g->tw_block);
}

static int geom_init(lr_conv_geom *g, int lanes, int radix8, int64_t need)
{
    memset(g, 0, sizeof *g);
    g->lanes = lanes;
    choose_lengths(lanes, need, &g->n1, &g->n2);
    const int64_t n1 = g->n1, n2 = g->n2, n = n1 * n2;
    g->n = n;
    g->blocks = n1 / lanes;
    /* A work buffer beyond a few MiB goes to memory between passes A and B anyway; writing it
     * around the caches saves reading the lines before overwriting them. */
    g->stream = (double)n * 8 > 8.0 * 1024 * 1024;
    if (!lr_fft_steps_init(&g->col, n1, radix8) || !lr_fft_steps_init(&g->row, n2, radix8))
        return 0;
    g->odd_shift = malloc((size_t)n1 * 2 * sizeof(float));
    g->tw_lane = malloc((size_t)n1 * 2 * (size_t)lanes * sizeof(float));
    g->tw_block = malloc((size_t)(n2 / lanes) * (size_t)n1 * 2 * sizeof(float));
    if (!g->odd_shift || !g->tw_lane || !g->tw_block)
        return 0;
    double re, im;
    for (int64_t r = 0; r < n1; r++) {
        lr_fft_unit_root(r, 2 * n1, &re, &im);
        g->odd_shift[2 * r] = (float)re;
        g->odd_shift[2 * r + 1] = (float)im;
        /* e^(-2 pi i n2 (k1 + 1/2) / N) = e^(-2 pi i n2 (2 k1 + 1) / 2N), n2 = lanes j + l */
        for (int l = 0; l < lanes; l++) {
            lr_fft_unit_root((int64_t)l * (2 * r + 1), 2 * n, &re, &im);
            g->tw_lane[r * 2 * lanes + l] = (float)re;
            g->tw_lane[r * 2 * lanes + lanes + l] = (float)im;
        }
        for (int64_t j = 0; j < n2 / lanes; j++) {
            lr_fft_unit_root(lanes * j * (2 * r + 1), 2 * n, &re, &im);
            g->tw_block[2 * (j * n1 + r)] = (float)re;
            g->tw_block[2 * (j * n1 + r) + 1] = (float)im;
        }
    }
    return 1;
}

void lr_longconv_destroy(lr_longconv *conv)
{
    if (!conv)
        return;
    geom_free(&conv->geom);
    free(conv->spectrum);
    free(conv);
}

int64_t lr_longconv_fft_length(const lr_longconv *conv) { return conv->geom.n; }

size_t lr_longconv_spectrum_bytes(const lr_longconv *conv)
{
    return (size_t)conv->pairs * conv->pair_floats * sizeof(float);
}

size_t lr_longconv_scratch_bytes(const lr_longconv *conv) { return conv->scratch_floats * sizeof(float); }

typedef struct {
    lr_ctx *ctx;
    const lr_longconv *conv;
    const float *filter;
    int64_t filter_len;
    const float *skip;
} prepare_job;

/* The spectrum of one pair: the odd-frequency transform of h_a + i h_b (tap 0 carrying D),
 * split into the two channels' spectra and recombined as P and Q. */
static void prepare_task(void *arg, size_t task, int thread)
{
    const prepare_job *job = arg;
    const lr_longconv *conv = job->conv;
    const lr_conv_geom *g = &conv->geom;
    const int lanes = g->lanes, row = 2 * lanes;
    const int64_t taps = conv->taps, n2 = g->n2;
    float *work = lr_thread_scratch(job->ctx, thread);
    float *scratch = work + 2 * g->n, *h = scratch + lr_conv_scratch_floats(g);
    int64_t ca = 2 * (int64_t)task, cb = ca + 1;
    for (int64_t c = ca; c <= cb && c < conv->channels; c++) {
        float *hc = h + (c - ca) * taps;
        memcpy(hc, job->filter + c * job->filter_len, (size_t)taps * sizeof *hc);
        if (job->skip)
            hc[0] += job->skip[c];
    }
    conv->kern->conv_forward(g, h, cb < conv->channels ? h + taps : NULL, taps, work, scratch);

    float *pair_spectrum = conv->spectrum + (size_t)task * conv->pair_floats;
    const double scale = 1.0 / (2.0 * (double)g->n);
    for (int64_t b = 0; b < conv->half_blocks; b++) {
        const float *fb, *fm;
        conv->kern->conv_spectrum(g, b, work, scratch, &fb, &fm);
        float *pq = pair_spectrum + (size_t)b * (size_t)n2 * 2 * (size_t)row;
        for (int64_t k2 = 0; k2 < n2; k2++) {
            const float *z = fb + k2 * row, *zm = fm + (n2 - 1 - k2) * row;
            float *out = pq + k2 * 2 * row;
            for (int l = 0; l < lanes; l++) {
                double zr = z[l], zi = z[lanes + l];
                double mr = zm[lanes - 1 - l], mi = zm[2 * lanes - 1 - l];
                /* H_a = (z + conj zm) / 2, H_b = (z - conj zm) / 2i */
                double ar = 0.5 * (zr + mr), ai = 0.5 * (zi - mi);
                double br = 0.5 * (zi + mi), bi = -0.5 * (zr - mr);
                out[l] = (float)((ar + br) * scale);
                out[lanes + l] = (float)((ai + bi) * scale);
                out[2 * lanes + l] = (float)((ar - br) * scale);
                out[3 * lanes + l] = (float)((ai - bi) * scale);
            }
        }
    }
}

lr_status lr_longconv_create(lr_ctx *ctx, int64_t channels, int64_t length, const float *filter,
                             int64_t filter_len, const float *skip, lr_longconv **out)
{
    if (!out)
        return lr_fail(ctx, LR_ERR_ARG, "longconv: no place for the filter");
    *out = NULL;
    if (!ctx || !filter)
        return lr_fail(ctx, LR_ERR_ARG, "longconv: missing context or filter");
    if (channels < 1 || length < 1 || filter_len < 1)
        return lr_fail(ctx, LR_ERR_ARG, "longconv: %lld channels, length %lld, %lld taps: all must be >= 1",
                       (long long)channels, (long long)length, (long long)filter_len);
    if (length > ((int64_t)1 << 36) || channels > ((int64_t)1 << 30))
        return lr_fail(ctx, LR_ERR_ARG, "longconv: length %lld or %lld channels too large",
                       (long long)length, (long long)channels);
    lr_longconv *conv = calloc(1, sizeof *conv);
    if (!conv)
        return lr_fail(ctx, LR_ERR_NOMEM, "longconv: out of memory");
    conv->kern = lr_fft_kernels_for(lr_ctx_cpu(ctx));
    conv->channels = channels;
    conv->length = length;
    conv->taps = filter_len < length ? filter_len : length;
    conv->pairs = (channels + 1) / 2;
    if (!geom_init(&conv->geom, conv->kern->lanes, conv->kern->radix8, length + conv->taps - 1)) {
        lr_longconv_destroy(conv);
        return lr_fail(ctx, LR_ERR_NOMEM, "longconv: out of memory for the transform tables");
    }
    const lr_conv_geom *g = &conv->geom;
    conv->half_blocks = (g->blocks + 1) / 2;
    conv->pair_floats = (size_t)conv->half_blocks * (size_t)g->n2 * 4 * (size_t)g->lanes;
    conv->scratch_floats = (size_t)g->n * 2 + lr_conv_scratch_floats(g);
    size_t spectrum_bytes;
    if (!lr_mul_size((size_t)conv->pairs, conv->pair_floats * sizeof(float), &spectrum_bytes) ||
        !(conv->spectrum = alloc_large(spectrum_bytes))) {
        lr_longconv_destroy(conv);
        return lr_fail(ctx, LR_ERR_NOMEM, "longconv: out of memory for the spectra of %lld channels at length %lld",
                       (long long)channels, (long long)length);
    }
    lr_status s = lr_thread_scratch_reserve(ctx, (conv->scratch_floats + 2 * (size_t)conv->taps) * sizeof(float));
    if (s != LR_OK) {
        lr_longconv_destroy(conv);
        return s;
    }
    prepare_job job = {ctx, conv, filter, filter_len, skip};
    lr_parallel_for(ctx, (size_t)conv->pairs, prepare_task, &job);
    *out = conv;
    return LR_OK;
}

typedef struct {
    lr_ctx *ctx;
    const lr_longconv *conv;
    int64_t length;
    const float *u;
    float *y;
} apply_job;

static void apply_task(void *arg, size_t task, int thread)
{
    const apply_job *job = arg;
    const lr_longconv *conv = job->conv;
    const lr_conv_geom *g = &conv->geom;
    const int64_t pair = (int64_t)task % conv->pairs, batch = (int64_t)task / conv->pairs;
    const int64_t ca = 2 * pair, length = job->length;
    const int has_b = ca + 1 < conv->channels;
    const size_t offset = (size_t)(batch * conv->channels + ca) * (size_t)length;
    float *work = lr_thread_scratch(job->ctx, thread), *scratch = work + 2 * g->n;

    conv->kern->conv_forward(g, job->u + offset, has_b ? job->u + offset + length : NULL, length, work, scratch);
    const float *spectrum = conv->spectrum + (size_t)pair * conv->pair_floats;
    for (int64_t b = 0; b < conv->half_blocks; b++)
        conv->kern->conv_multiply(g, b, spectrum, work, scratch);
    conv->kern->conv_inverse(g, work, length, job->y + offset, has_b ? job->y + offset + length : NULL, scratch);
}

lr_status lr_longconv_apply(lr_ctx *ctx, const lr_longconv *conv, int64_t batch, int64_t length,
                            const float *u, float *y)
{
    if (!ctx || !conv || !u || !y)
        return lr_fail(ctx, LR_ERR_ARG, "longconv: missing context, filter, input or output");
    if (batch < 0 || length < 1 || length > conv->length)
        return lr_fail(ctx, LR_ERR_ARG, "longconv: batch %lld, length %lld (the filter was prepared for 1..%lld)",
                       (long long)batch, (long long)length, (long long)conv->length);
    size_t tasks;
    if (!lr_mul_size((size_t)batch, (size_t)conv->pairs, &tasks))
        return lr_fail(ctx, LR_ERR_ARG, "longconv: batch %lld too large", (long long)batch);
    lr_status s = lr_thread_scratch_reserve(ctx, lr_longconv_scratch_bytes(conv));
    if (s != LR_OK)
        return s;
    apply_job job = {ctx, conv, length, u, y};
    lr_parallel_for(ctx, tasks, apply_task, &job);
    return LR_OK;
}
