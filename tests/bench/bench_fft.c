/* bench_fft: the FFT long convolution (lr_longconv, filter spectrum cached) against FFTW's
 * plain rfft-multiply-irfft of the same data, and the plain real FFT against FFTW's r2c.
 *
 * Convolution table: C = 128 channels, causal filters of length L, 2 threads. FFTW does
 * what HyenaDNA's fftconv does per channel: r2c of u zero-padded to 2L, product with the
 * cached filter spectrum, c2r, first L samples plus D u; its plans are made outside the
 * timing (FFTW_MEASURE, limited to a few seconds of planning) and the channels are split
 * over the same 2 threads. GFLOP/s counts the nominal 5 N log2 N per channel (two real FFTs
 * of N = 2L points); "% of peak" is against lr_peak_gflops measured in this run. Memory is
 * what each side holds besides u and y: the cached spectrum plus per-thread buffers. The two
 * sides take turns inside each round so that noise from other work hits both alike; times
 * are best of N. Usage: bench_fft [seconds per measurement, default 4] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "longrange/autocorr.h"
#include "longrange/core.h"
#include "longrange/fft.h"
#include "longrange/longconv.h"
#include "longrange/parallel.h"
#include "longrange/perf.h"

#ifdef HAVE_FFTW3F
#include <fftw3.h>
#endif

enum { CHANNELS = 128, THREADS = 2, ROUNDS = 3 };

static void fill_random(float *x, size_t n, unsigned *state, float scale)
{
    for (size_t i = 0; i < n; i++) {
        *state = *state * 1664525u + 1013904223u;
        x[i] = scale * ((float)(*state >> 8) / 8388608.0f - 1.0f);
    }
}

typedef struct conv_bench conv_bench;
typedef void (*conv_fn)(conv_bench *b);

struct conv_bench {
    lr_ctx *ctx;
    int64_t length;
    const float *filter, *skip, *u;
    float *y, *y_peer;
    lr_longconv *conv;
#ifdef HAVE_FFTW3F
    fftwf_plan forward, inverse;
    fftwf_complex *filter_spectrum;  /* CHANNELS x (L + 1), divided by 2L */
    float *pad[THREADS];             /* 2L reals */
    fftwf_complex *spectrum[THREADS];/* L + 1 */
#endif
};

static void ours(conv_bench *b)
{
    if (lr_longconv_apply(b->ctx, b->conv, 1, b->length, b->u, b->y) != LR_OK) {
        fprintf(stderr, "bench_fft: %s\n", lr_ctx_last_error(b->ctx));
        exit(1);
    }
}

#ifdef HAVE_FFTW3F
/* lets the pool's spinning workers go to sleep before the other side's turn */
static void pause_for_idle_workers(void)
{
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

static void fftw_channel(void *arg, size_t c, int thread)
{
    conv_bench *b = arg;
    const int64_t L = b->length;
    float *pad = b->pad[thread];
    fftwf_complex *spec = b->spectrum[thread];
    const fftwf_complex *k = b->filter_spectrum + c * (size_t)(L + 1);
    const float *u = b->u + c * (size_t)L;
    memcpy(pad, u, (size_t)L * sizeof *pad);
    memset(pad + L, 0, (size_t)L * sizeof *pad);
    fftwf_execute_dft_r2c(b->forward, pad, spec);
    for (int64_t f = 0; f <= L; f++) {
        float re = spec[f][0] * k[f][0] - spec[f][1] * k[f][1];
        float im = spec[f][0] * k[f][1] + spec[f][1] * k[f][0];
        spec[f][0] = re;
        spec[f][1] = im;
    }
    fftwf_execute_dft_c2r(b->inverse, spec, pad);
    float *y = b->y_peer + c * (size_t)L;
    for (int64_t t = 0; t < L; t++)
        y[t] = pad[t] + u[t] * b->skip[c];
}

static void peer(conv_bench *b) { lr_parallel_for(b->ctx, CHANNELS, fftw_channel, b); }

/* The filter spectra, once, as HyenaDNA does: rfft(k, n = 2L) / 2L. */
static void fftw_prepare(conv_bench *b)
{
    const int64_t L = b->length;
    fftwf_set_timelimit(5.0);
    for (int t = 0; t < THREADS; t++) {
        b->pad[t] = fftwf_malloc((size_t)(2 * L) * sizeof(float));
        b->spectrum[t] = fftwf_malloc((size_t)(L + 1) * sizeof(fftwf_complex));
    }
    b->filter_spectrum = fftwf_malloc((size_t)CHANNELS * (size_t)(L + 1) * sizeof(fftwf_complex));
    if (!b->pad[THREADS - 1] || !b->spectrum[THREADS - 1] || !b->filter_spectrum) {
        fprintf(stderr, "bench_fft: out of memory for FFTW buffers\n");
        exit(1);
    }
    b->forward = fftwf_plan_dft_r2c_1d((int)(2 * L), b->pad[0], b->spectrum[0], FFTW_MEASURE);
    b->inverse = fftwf_plan_dft_c2r_1d((int)(2 * L), b->spectrum[0], b->pad[0], FFTW_MEASURE);
    for (int c = 0; c < CHANNELS; c++) {
        memcpy(b->pad[0], b->filter + c * (size_t)L, (size_t)L * sizeof(float));
        memset(b->pad[0] + L, 0, (size_t)L * sizeof(float));
        fftwf_complex *k = b->filter_spectrum + c * (size_t)(L + 1);
        fftwf_execute_dft_r2c(b->forward, b->pad[0], k);
        for (int64_t f = 0; f <= L; f++) {
            k[f][0] /= (float)(2 * L);
            k[f][1] /= (float)(2 * L);
        }
    }
}

static void fftw_release(conv_bench *b)
{
    fftwf_destroy_plan(b->forward);
    fftwf_destroy_plan(b->inverse);
    fftwf_free(b->filter_spectrum);
    for (int t = 0; t < THREADS; t++) {
        fftwf_free(b->pad[t]);
        fftwf_free(b->spectrum[t]);
    }
}

/* Largest |x - y| over the largest |y|. */
static double max_rel_diff(const float *x, const float *y, size_t n)
{
    double diff = 0, scale = 0;
    for (size_t i = 0; i < n; i++) {
        diff = fmax(diff, fabs((double)x[i] - (double)y[i]));
        scale = fmax(scale, fabs((double)y[i]));
    }
    return scale > 0 ? diff / scale : diff;
}
#endif

static double best_time(conv_fn fn, conv_bench *b, double seconds)
{
    enum { MIN_REPS = 2, MAX_REPS = 200 };
    double best = INFINITY, start = lr_time_now();
    for (int rep = 0; rep < MAX_REPS && (rep < MIN_REPS || lr_time_now() - start < seconds); rep++) {
        double t0 = lr_time_now();
        fn(b);
        best = fmin(best, lr_time_now() - t0);
    }
    return best;
}

static double mib(double bytes) { return bytes / (1024.0 * 1024.0); }

static void bench_longconv(lr_ctx *ctx, double peak, double budget)
{
    static const int64_t lengths[] = {16384, 65536, 262144, 1048576};
    printf("## Causal long convolution, C = %d channels, filter spectrum cached, %d threads, CPU level %s\n\n",
           CHANNELS, THREADS, lr_cpu_level_name(lr_ctx_cpu(ctx)));
#ifdef HAVE_FFTW3F
    printf("Peer: FFTW %s, r2c/c2r of 2L points (FFTW_MEASURE), channels split over the same threads. ",
           fftwf_version);
#else
    printf("Peer: none (built without FFTW: define HAVE_FFTW3F and link fftw3f). ");
#endif
    printf("Peak (lr_peak_gflops): %.1f GFLOP/s on %d threads. Best of N, about %.0f s per measurement.\n\n",
           peak, THREADS, budget);
    printf("| L | FFT points | ours ms | GFLOP/s | %% of peak | ours MiB | FFTW ms | FFTW MiB | FFTW/ours time | "
           "max rel diff | peak RSS MiB |\n");
    printf("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    unsigned seed = 2024;
    for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++) {
        const int64_t L = lengths[li];
        const size_t n = (size_t)CHANNELS * (size_t)L;
        /* 64-byte aligned like the arena buffers the models use */
        float *filter = malloc(n * sizeof *filter), *u = aligned_alloc(64, n * sizeof *u);
        float *y = aligned_alloc(64, n * sizeof *y);
        float *skip = malloc(CHANNELS * sizeof *skip);
        if (!filter || !u || !y || !skip) {
            fprintf(stderr, "bench_fft: out of memory at L = %lld\n", (long long)L);
            exit(1);
        }
        fill_random(filter, n, &seed, 1.0f / sqrtf((float)L));
        fill_random(u, n, &seed, 1.0f);
        fill_random(skip, CHANNELS, &seed, 1.0f);
        conv_bench b = {.ctx = ctx, .length = L, .filter = filter, .skip = skip, .u = u, .y = y};
        if (lr_longconv_create(ctx, CHANNELS, L, filter, L, skip, &b.conv) != LR_OK) {
            fprintf(stderr, "bench_fft: %s\n", lr_ctx_last_error(ctx));
            exit(1);
        }
        double ours_bytes = (double)lr_longconv_spectrum_bytes(b.conv) + THREADS * (double)lr_longconv_scratch_bytes(b.conv);
        double flops = CHANNELS * 5.0 * (double)(2 * L) * log2((double)(2 * L));
        double turn = budget / (2 * ROUNDS), best = INFINITY;
        ours(&b);
#ifdef HAVE_FFTW3F
        b.y_peer = malloc(n * sizeof *b.y_peer);
        if (!b.y_peer) {
            fprintf(stderr, "bench_fft: out of memory at L = %lld\n", (long long)L);
            exit(1);
        }
        fftw_prepare(&b);
        double peer_bytes = (double)CHANNELS * (double)(L + 1) * 8 + THREADS * ((double)(2 * L) * 4 + (double)(L + 1) * 8);
        double best_peer = INFINITY;
        peer(&b);
#endif
        for (int round = 0; round < ROUNDS; round++) {
            best = fmin(best, best_time(ours, &b, turn));
#ifdef HAVE_FFTW3F
            pause_for_idle_workers();
            best_peer = fmin(best_peer, best_time(peer, &b, turn));
            pause_for_idle_workers();
#endif
        }
        double gflops = flops / best * 1e-9;
        printf("| %lld | %lld | %.1f | %.1f | %.0f%% | %.0f |", (long long)L, (long long)lr_longconv_fft_length(b.conv),
               best * 1e3, gflops, 100 * gflops / peak, mib(ours_bytes));
#ifdef HAVE_FFTW3F
        printf(" %.1f | %.0f | %.2f | %.1e |", best_peer * 1e3, mib(peer_bytes), best_peer / best,
               max_rel_diff(y, b.y_peer, n));
        fftw_release(&b);
        free(b.y_peer);
#else
        printf(" - | - | - | - |");
#endif
        printf(" %.0f |\n", mib((double)lr_peak_rss()));
        fflush(stdout);
        lr_longconv_destroy(b.conv);
        free(filter);
        free(u);
        free(y);
        free(skip);
    }
    printf("\n");
}

/* Auto-Correlation (Autoformer shapes): the mean correlation over channels, and the whole
 * layer (correlation, top-k delays, aggregation). FFTW's side computes the same correlation:
 * one strided r2c plan over the channels of a time-major batch element, the cross-spectrum
 * summed over channels, one c2r, with batch elements split over the threads. */
typedef struct {
    lr_ctx *ctx;
    lr_autocorr *ac;
    int64_t batch, length, channels;
    const float *q, *k, *v;
    float *corr, *out;
#ifdef HAVE_FFTW3F
    fftwf_plan forward, inverse;
    fftwf_complex *qs[THREADS], *ks[THREADS], *sum[THREADS];
    float *corr_peer;
#endif
} autocorr_bench;

static void autocorr_ours(autocorr_bench *b)
{
    if (lr_autocorr_correlate(b->ctx, b->ac, b->batch, b->channels, b->q, b->k, b->length, b->corr) != LR_OK) {
        fprintf(stderr, "bench_fft: %s\n", lr_ctx_last_error(b->ctx));
        exit(1);
    }
}

static void autocorr_layer(autocorr_bench *b)
{
    if (lr_autocorr_forward(b->ctx, b->ac, b->batch, b->channels, b->channels, b->q, b->k, b->v, b->length, 1.0,
                            LR_AUTOCORR_INFERENCE, b->out) != LR_OK) {
        fprintf(stderr, "bench_fft: %s\n", lr_ctx_last_error(b->ctx));
        exit(1);
    }
}

#ifdef HAVE_FFTW3F
static void autocorr_fftw_element(void *arg, size_t e, int thread)
{
    autocorr_bench *b = arg;
    const int64_t L = b->length, C = b->channels, bins = L / 2 + 1;
    size_t offset = e * (size_t)L * (size_t)C;
    fftwf_execute_dft_r2c(b->forward, (float *)b->q + offset, b->qs[thread]);
    fftwf_execute_dft_r2c(b->forward, (float *)b->k + offset, b->ks[thread]);
    fftwf_complex *sum = b->sum[thread];
    for (int64_t f = 0; f < bins; f++) {
        float re = 0, im = 0;
        for (int64_t c = 0; c < C; c++) {
            const float *qf = b->qs[thread][c * bins + f], *kf = b->ks[thread][c * bins + f];
            re += qf[0] * kf[0] + qf[1] * kf[1];
            im += qf[1] * kf[0] - qf[0] * kf[1];
        }
        sum[f][0] = re / (float)(L * C);
        sum[f][1] = im / (float)(L * C);
    }
    fftwf_execute_dft_c2r(b->inverse, sum, b->corr_peer + e * (size_t)L);
}

static void autocorr_peer(autocorr_bench *b) { lr_parallel_for(b->ctx, (size_t)b->batch, autocorr_fftw_element, b); }
#endif

static double autocorr_time(void (*fn)(autocorr_bench *), autocorr_bench *b, double seconds)
{
    double best = INFINITY, start = lr_time_now();
    for (int rep = 0; rep < 3 || (rep < 10000 && lr_time_now() - start < seconds); rep++) {
        double t0 = lr_time_now();
        fn(b);
        best = fmin(best, lr_time_now() - t0);
    }
    return best;
}

static void bench_autocorr(lr_ctx *ctx, double budget)
{
    static const int64_t shapes[][3] = {{32, 96, 512}, {32, 144, 512}, {1, 720, 512}, {8, 336, 512}};
    printf("## Auto-Correlation (time-major [B][L][C], factor 1, inference), %d threads, CPU level %s\n\n", THREADS,
           lr_cpu_level_name(lr_ctx_cpu(ctx)));
    printf("| B | L | C | correlation ms | FFTW correlation ms | FFTW/ours time | whole layer ms |\n");
    printf("|---:|---:|---:|---:|---:|---:|---:|\n");
    unsigned seed = 11;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        autocorr_bench b = {.ctx = ctx, .batch = shapes[si][0], .length = shapes[si][1], .channels = shapes[si][2]};
        const size_t n = (size_t)(b.batch * b.length * b.channels);
        float *q = malloc(n * sizeof *q), *k = malloc(n * sizeof *k), *v = malloc(n * sizeof *v);
        b.out = malloc(n * sizeof *b.out);
        b.corr = malloc((size_t)(b.batch * b.length) * sizeof *b.corr);
        if (!q || !k || !v || !b.out || !b.corr || lr_autocorr_create(ctx, b.length, &b.ac) != LR_OK) {
            fprintf(stderr, "bench_fft: cannot set up the Auto-Correlation bench\n");
            exit(1);
        }
        fill_random(q, n, &seed, 1.0f);
        fill_random(k, n, &seed, 1.0f);
        fill_random(v, n, &seed, 1.0f);
        b.q = q;
        b.k = k;
        b.v = v;
        double ours_time = autocorr_time(autocorr_ours, &b, budget / 4);
        double layer_time = autocorr_time(autocorr_layer, &b, budget / 4);
        printf("| %lld | %lld | %lld | %.3f |", (long long)b.batch, (long long)b.length, (long long)b.channels,
               ours_time * 1e3);
#ifdef HAVE_FFTW3F
        const int L = (int)b.length, C = (int)b.channels, bins = L / 2 + 1;
        for (int t = 0; t < THREADS; t++) {
            b.qs[t] = fftwf_malloc((size_t)C * (size_t)bins * sizeof(fftwf_complex));
            b.ks[t] = fftwf_malloc((size_t)C * (size_t)bins * sizeof(fftwf_complex));
            b.sum[t] = fftwf_malloc((size_t)bins * sizeof(fftwf_complex));
        }
        b.corr_peer = fftwf_malloc((size_t)(b.batch * b.length) * sizeof(float));
        /* channel c of a time-major element: stride C, next channel 1 apart */
        b.forward = fftwf_plan_many_dft_r2c(1, &L, C, q, NULL, C, 1, b.qs[0], NULL, 1, bins, FFTW_MEASURE);
        b.inverse = fftwf_plan_dft_c2r_1d(L, b.sum[0], b.corr_peer, FFTW_MEASURE);
        fill_random(q, n, &seed, 1.0f); /* FFTW_MEASURE may have overwritten the input */
        double peer_time = autocorr_time(autocorr_peer, &b, budget / 4);
        printf(" %.3f | %.2f |", peer_time * 1e3, peer_time / ours_time);
        fftwf_destroy_plan(b.forward);
        fftwf_destroy_plan(b.inverse);
        for (int t = 0; t < THREADS; t++) {
            fftwf_free(b.qs[t]);
            fftwf_free(b.ks[t]);
            fftwf_free(b.sum[t]);
        }
        fftwf_free(b.corr_peer);
#else
        printf(" - | - |");
#endif
        printf(" %.3f |\n", layer_time * 1e3);
        fflush(stdout);
        lr_autocorr_destroy(b.ac);
        free(q);
        free(k);
        free(v);
        free(b.out);
        free(b.corr);
    }
    printf("\n");
}

/* The plain real FFT, one thread, one transform at a time. */
static void bench_plain_fft(double budget)
{
    static const int64_t lengths[] = {720, 1000, 4096, 65536, 1048576};
    printf("## Real FFT (lr_fft_forward), one thread\n\n");
    printf("| n | ours us | FFTW us | FFTW/ours time |\n|---:|---:|---:|---:|\n");
    unsigned seed = 7;
    for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++) {
        const int64_t n = lengths[li];
        lr_fft_plan *plan = NULL;
        float *x = malloc((size_t)n * sizeof *x), *spec = malloc((size_t)(n + 2) * sizeof *spec);
        if (!x || !spec || lr_fft_plan_create(NULL, n, &plan) != LR_OK) {
            fprintf(stderr, "bench_fft: cannot set up a real FFT of %lld points\n", (long long)n);
            exit(1);
        }
        fill_random(x, (size_t)n, &seed, 1.0f);
        double best = INFINITY, start = lr_time_now();
        for (int rep = 0; rep < 3 || (rep < 100000 && lr_time_now() - start < budget / 4); rep++) {
            double t0 = lr_time_now();
            lr_fft_forward(NULL, plan, x, spec, NULL);
            best = fmin(best, lr_time_now() - t0);
        }
        printf("| %lld | %.1f |", (long long)n, best * 1e6);
#ifdef HAVE_FFTW3F
        float *in = fftwf_malloc((size_t)n * sizeof *in);
        fftwf_complex *out = fftwf_malloc((size_t)(n / 2 + 1) * sizeof *out);
        fftwf_plan p = fftwf_plan_dft_r2c_1d((int)n, in, out, FFTW_MEASURE);
        memcpy(in, x, (size_t)n * sizeof *in);
        double best_peer = INFINITY;
        start = lr_time_now();
        for (int rep = 0; rep < 3 || (rep < 100000 && lr_time_now() - start < budget / 4); rep++) {
            double t0 = lr_time_now();
            fftwf_execute(p);
            best_peer = fmin(best_peer, lr_time_now() - t0);
        }
        printf(" %.1f | %.2f |\n", best_peer * 1e6, best_peer / best);
        fftwf_destroy_plan(p);
        fftwf_free(in);
        fftwf_free(out);
#else
        printf(" - | - |\n");
#endif
        lr_fft_plan_destroy(plan);
        free(x);
        free(spec);
    }
    printf("\n");
}

int main(int argc, char **argv)
{
    double budget = argc > 1 ? atof(argv[1]) : 4.0;
    if (!(budget > 0)) {
        fprintf(stderr, "usage: bench_fft [seconds per measurement]\n");
        return 2;
    }
    lr_ctx_params p = lr_ctx_default_params();
    p.n_threads = THREADS;
    lr_ctx *ctx = NULL;
    if (lr_ctx_create(&ctx, &p) != LR_OK) {
        fprintf(stderr, "bench_fft: cannot create a context with %d threads\n", THREADS);
        return 1;
    }
    double peak = lr_peak_gflops(ctx, THREADS);
    bench_longconv(ctx, peak, budget);
    bench_autocorr(ctx, budget);
    bench_plain_fft(budget);
    lr_ctx_destroy(ctx);
    return 0;
}
