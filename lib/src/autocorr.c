/* Auto-Correlation (longrange/autocorr.h).
 *
 * The mean correlation over channels is linear, so it is one inverse FFT of the mean
 * cross-spectrum: corr = irfft(sum_c Q_c conj(K_c)) / (L C). Each task transforms a fixed
 * chunk of channels of one batch element and sums its cross-spectra in double; a second step
 * adds the chunks in order and transforms back, so the result does not depend on the
 * thread count.
 *
 * The tensors are time-major, so a row of `lanes` neighbouring channels is one vector: when
 * L has no prime factor above 13 the transforms run as the FFT kernels' vertical Stockham
 * passes on all lanes at once, with q in the real and k in the imaginary part of one
 * complex sequence (one transform yields both spectra). Other lengths take the scalar
 * (Bluestein) real FFT channel by channel.
 *
 * The loops around the transforms (filling the rows, the per-bin products, the weighted sum
 * of the aggregation) run on GCC vectors in target_clones for AVX-512, AVX2 and the
 * baseline; every lane does the scalar loop's float operations and the double sums keep
 * their order, so the results are the same bits whichever clone runs. */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fft_internal.h"
#include "internal.h"
#include "longrange/autocorr.h"
#include "longrange/fft.h"
#include "longrange/parallel.h"

enum { CHANNEL_CHUNK = 32, TIME_CHUNK = 64 };

struct lr_autocorr {
    int64_t length, bins;   /* bins = length / 2 + 1 */
    lr_fft_plan *plan;
    const lr_fft_kernels *kern;
    int vertical;           /* the kernels take `length` directly */
    lr_fft_steps steps;     /* of `length`, when vertical */
    size_t fft_work_bytes;  /* rounded up to 64 */
    double *partials;       /* [batch][chunks][bins] (re, im) */
    size_t partials_cap;
    float *corr;            /* [batch][length], for lr_autocorr_forward */
    size_t corr_cap;
    int64_t *delays;        /* [batch][top_k] */
    size_t delays_cap;
    float *weights;
    size_t weights_cap;
};

static size_t round64(size_t n) { return (n + 63) & ~(size_t)63; }

lr_status lr_autocorr_create(lr_ctx *ctx, int64_t length, lr_autocorr **out)
{
    if (!out)
        return lr_fail(ctx, LR_ERR_ARG, "autocorr: no place for the plan");
    *out = NULL;
    if (length < 1)
        return lr_fail(ctx, LR_ERR_ARG, "autocorr: length %lld must be >= 1", (long long)length);
    lr_autocorr *ac = calloc(1, sizeof *ac);
    if (!ac)
        return lr_fail(ctx, LR_ERR_NOMEM, "autocorr: out of memory");
    lr_status s = lr_fft_plan_create(ctx, length, &ac->plan);
    if (s != LR_OK) {
        free(ac);
        return s;
    }
    ac->length = length;
    ac->bins = length / 2 + 1;
    ac->fft_work_bytes = round64(lr_fft_workspace_bytes(ac->plan));
    ac->kern = lr_fft_kernels_for(lr_ctx_cpu(ctx));
    ac->vertical = lr_fft_steps_init(&ac->steps, length, ac->kern->radix8);
    *out = ac;
    return LR_OK;
}

void lr_autocorr_destroy(lr_autocorr *ac)
{
    if (!ac)
        return;
    lr_fft_plan_destroy(ac->plan);
    lr_fft_steps_free(&ac->steps);
    free(ac->partials);
    free(ac->corr);
    free(ac->delays);
    free(ac->weights);
    free(ac);
}

int64_t lr_autocorr_top_k(double factor, int64_t length)
{
    return length < 1 ? 0 : (int64_t)(factor * log((double)length));
}

/* Grows *buf to at least n elements of `size` bytes. */
static lr_status reserve(lr_ctx *ctx, void **buf, size_t *cap, size_t n, size_t size)
{
    if (n <= *cap)
        return LR_OK;
    size_t bytes;
    if (!lr_mul_size(n, size, &bytes))
        return lr_fail(ctx, LR_ERR_NOMEM, "autocorr: buffer of %zu elements too large", n);
    void *p = realloc(*buf, bytes);
    if (!p)
        return lr_fail(ctx, LR_ERR_NOMEM, "autocorr: out of memory for %zu bytes", bytes);
    *buf = p;
    *cap = n;
    return LR_OK;
}

typedef struct {
    lr_ctx *ctx;
    const lr_autocorr *ac;
    int64_t channels, chunks, key_len;
    const float *q, *k;
    float *corr;
} corr_job;

/* The layout of a thread's scratch: the scalar FFT's workspace, one series and two spectra;
 * or the two row buffers of the vertical transform. */
static size_t corr_scratch_bytes(const lr_autocorr *ac)
{
    size_t scalar = ac->fft_work_bytes + round64((size_t)ac->length * sizeof(float)) +
                    2 * round64((size_t)ac->bins * 2 * sizeof(float));
    size_t vertical = (size_t)ac->length * 4 * (size_t)ac->kern->lanes * sizeof(float);
    return scalar > vertical ? scalar : vertical;
}

/* GCC vectors of 8 and 16 floats, lowered to whatever the clone's instruction set has (the
 * functions with target_clones have file-unique names: clang 14 makes their resolvers
 * global). Memory goes through unaligned, aliasing vector types, which gcc lowers to native
 * loads and stores (a memcpy of a vector wider than the registers goes through general
 * registers). Macros, not functions: a vector argument or result would change the ABI
 * between clones. */
typedef float vec8 __attribute__((vector_size(8 * sizeof(float))));
typedef float vec16 __attribute__((vector_size(16 * sizeof(float))));
typedef float vec8_unaligned __attribute__((vector_size(8 * sizeof(float)), aligned(4), may_alias));
typedef float vec16_unaligned __attribute__((vector_size(16 * sizeof(float)), aligned(4), may_alias));
#define load8(p) ((vec8) * (const vec8_unaligned *)(p))
#define store8(p, v) (*(vec8_unaligned *)(p) = (v))
#define load16(p) ((vec16) * (const vec16_unaligned *)(p))
#define store16(p, v) (*(vec16_unaligned *)(p) = (v))

/* Rows t of `lanes` values: q[t, cb + l] in the real lanes, k[t, cb + l] (zero from `keys`
 * on) in the imaginary ones; lanes from `width` on are zero. */
__attribute__((target_clones("avx512f", "avx2", "default")))
static void autocorr_fill_rows(float *x, const float *q, const float *k, int64_t C, int64_t L, int64_t keys,
                               int lanes, int width)
{
    const int row = 2 * lanes;
    for (int64_t t = 0; t < L; t++) {
        float *r = x + t * row;
        const float *qt = q + t * C, *kt = k + t * C;
        if (width == 16 && lanes == 16) {
            store16(r, load16(qt));
            store16(r + 16, t < keys ? load16(kt) : (vec16){0});
        } else if (width == 8 && lanes == 8) {
            store8(r, load8(qt));
            store8(r + 8, t < keys ? load8(kt) : (vec8){0});
        } else {
            for (int l = 0; l < lanes; l++) {
                r[l] = l < width ? qt[l] : 0.0f;
                r[lanes + l] = l < width && t < keys ? kt[l] : 0.0f;
            }
        }
    }
}

/* With zf = Z(f), zm = Z(L - f): Q = (zf + conj zm) / 2 and conj K = (zf - conj zm) / 2i
 * rotated, per lane in float; the per-lane products Q conj K are then added in double in
 * lane order. The float steps run on vectors of 8 or 16 lanes, each the same IEEE operation
 * as the scalar lanes (products and sums are separate statements, so no compiler fuses
 * them); the double sums stay in lane order, so the result is the scalar loop's. */
#define CROSS_LANES(vec, load, store, n)                                                    \
    do {                                                                                    \
        vec ar = load(zf), ai = load(zf + (n)), br = load(zm), bi = load(zm + (n));         \
        vec half = {0};                                                                     \
        half += 0.5f;                                                                       \
        vec qr = half * (ar + br), qi = half * (ai - bi);                                   \
        vec kr = half * (ai + bi), ki = half * (ar - br);                                   \
        vec re = qr * kr, re2 = qi * ki, im = qr * ki, im2 = qi * kr;                       \
        store(prod_re, re - re2);                                                           \
        store(prod_im, im + im2);                                                           \
    } while (0)

__attribute__((target_clones("avx512f", "avx2", "default")))
static void autocorr_cross_bins(const float *z, int64_t L, int64_t bins, int lanes, int width, double *acc)
{
    const int row = 2 * lanes;
    float prod_re[16], prod_im[16];
    for (int64_t f = 0; f < bins; f++) {
        const float *zf = z + f * row, *zm = z + (f == 0 ? 0 : L - f) * row;
        double sum_re = 0, sum_im = 0;
        if (lanes == 16 || lanes == 8) {
            if (lanes == 16)
                CROSS_LANES(vec16, load16, store16, 16);
            else
                CROSS_LANES(vec8, load8, store8, 8);
            for (int l = 0; l < width; l++) {
                sum_re += (double)prod_re[l];
                sum_im += (double)prod_im[l];
            }
        } else {
            for (int l = 0; l < width; l++) {
                float ar = zf[l], ai = zf[lanes + l], br = zm[l], bi = zm[lanes + l];
                float qr = 0.5f * (ar + br), qi = 0.5f * (ai - bi); /* Q */
                float kr = 0.5f * (ai + bi), ki = 0.5f * (ar - br); /* conj K */
                float re = qr * kr, re2 = qi * ki, im = qr * ki, im2 = qi * kr;
                sum_re += (double)(re - re2);
                sum_im += (double)(im + im2);
            }
        }
        acc[2 * f] += sum_re;
        acc[2 * f + 1] += sum_im;
    }
}

/* Channels [c0, c1) of one batch element, `lanes` at a time: row t holds q[t, c] in the real
 * and k[t, c] in the imaginary lanes, so Z = Q + i K and, with Z' = conj Z(L - f),
 * Q(f) = (Z + Z') / 2 and K(f) = (Z - Z') / 2i. */
static void cross_spectrum_vertical(const corr_job *job, const float *q, const float *k, int64_t c0, int64_t c1,
                                    float *rows, double *acc)
{
    const lr_autocorr *ac = job->ac;
    const int lanes = ac->kern->lanes;
    const int64_t L = ac->length, C = job->channels;
    const int64_t keys = job->key_len < L ? job->key_len : L;
    float *x = rows, *y = rows + L * 2 * lanes;
    for (int64_t cb = c0; cb < c1; cb += lanes) {
        const int width = c1 - cb < lanes ? (int)(c1 - cb) : lanes;
        autocorr_fill_rows(x, q + cb, k + cb, C, L, keys, lanes, width);
        const float *z = ac->kern->fft(&ac->steps, x, y, 0);
        autocorr_cross_bins(z, L, ac->bins, lanes, width, acc);
    }
}

static void cross_spectrum_task(void *arg, size_t task, int thread)
{
    const corr_job *job = arg;
    const lr_autocorr *ac = job->ac;
    const int64_t L = ac->length, bins = ac->bins, C = job->channels;
    const int64_t b = (int64_t)task / job->chunks, c0 = (int64_t)task % job->chunks * CHANNEL_CHUNK;
    const int64_t c1 = c0 + CHANNEL_CHUNK < C ? c0 + CHANNEL_CHUNK : C;
    const int64_t keys = job->key_len < L ? job->key_len : L;
    unsigned char *mem = lr_thread_scratch(job->ctx, thread);
    double *acc = ac->partials + (size_t)task * (size_t)bins * 2;
    memset(acc, 0, (size_t)bins * 2 * sizeof *acc);
    const float *q = job->q + (size_t)b * (size_t)L * (size_t)C;
    const float *k = job->k + (size_t)b * (size_t)job->key_len * (size_t)C;
    if (ac->vertical) {
        cross_spectrum_vertical(job, q, k, c0, c1, (float *)mem, acc);
        return;
    }
    void *work = mem;
    float *series = (float *)(mem + ac->fft_work_bytes);
    float *qs = (float *)((unsigned char *)series + round64((size_t)L * sizeof(float)));
    float *ks = (float *)((unsigned char *)qs + round64((size_t)bins * 2 * sizeof(float)));
    for (int64_t c = c0; c < c1; c++) {
        for (int64_t t = 0; t < L; t++)
            series[t] = q[t * C + c];
        lr_fft_forward(NULL, ac->plan, series, qs, work);
        for (int64_t t = 0; t < L; t++)
            series[t] = t < keys ? k[t * C + c] : 0.0f;
        lr_fft_forward(NULL, ac->plan, series, ks, work);
        for (int64_t f = 0; f < bins; f++) {
            double qr = qs[2 * f], qi = qs[2 * f + 1], kr = ks[2 * f], ki = ks[2 * f + 1];
            acc[2 * f] += qr * kr + qi * ki;
            acc[2 * f + 1] += qi * kr - qr * ki;
        }
    }
}

static void correlation_task(void *arg, size_t task, int thread)
{
    const corr_job *job = arg;
    const lr_autocorr *ac = job->ac;
    const int64_t bins = ac->bins;
    unsigned char *mem = lr_thread_scratch(job->ctx, thread);
    float *spectrum = (float *)(mem + ac->fft_work_bytes);
    const double *partial = ac->partials + (size_t)task * (size_t)job->chunks * (size_t)bins * 2;
    /* irfft with numpy's 1/L, and the mean over channels */
    const double scale = 1.0 / ((double)ac->length * (double)job->channels);
    for (int64_t f = 0; f < 2 * bins; f++) {
        double sum = 0;
        for (int64_t ch = 0; ch < job->chunks; ch++)
            sum += partial[ch * bins * 2 + f];
        spectrum[f] = (float)(sum * scale);
    }
    lr_fft_inverse(NULL, ac->plan, spectrum, job->corr + task * (size_t)ac->length, mem);
}

lr_status lr_autocorr_correlate(lr_ctx *ctx, lr_autocorr *ac, int64_t batch, int64_t channels,
                                  const float *q, const float *k, int64_t key_len, float *corr)
{
    if (!ctx || !ac || !q || !k || !corr)
        return lr_fail(ctx, LR_ERR_ARG, "autocorr: missing context, plan or tensor");
    if (batch < 0 || channels < 1 || key_len < 1)
        return lr_fail(ctx, LR_ERR_ARG, "autocorr: batch %lld, %lld channels, key length %lld",
                       (long long)batch, (long long)channels, (long long)key_len);
    const int64_t chunks = (channels + CHANNEL_CHUNK - 1) / CHANNEL_CHUNK;
    size_t tasks, partial_doubles;
    if (!lr_mul_size((size_t)batch, (size_t)chunks, &tasks) ||
        !lr_mul_size(tasks, (size_t)ac->bins * 2, &partial_doubles))
        return lr_fail(ctx, LR_ERR_ARG, "autocorr: batch %lld x %lld channels too large", (long long)batch,
                       (long long)channels);
    lr_status s = reserve(ctx, (void **)&ac->partials, &ac->partials_cap, partial_doubles, sizeof(double));
    if (s == LR_OK)
        s = lr_thread_scratch_reserve(ctx, corr_scratch_bytes(ac));
    if (s != LR_OK)
        return s;
    corr_job job = {ctx, ac, channels, chunks, key_len, q, k, corr};
    lr_parallel_for(ctx, tasks, cross_spectrum_task, &job);
    lr_parallel_for(ctx, (size_t)batch, correlation_task, &job);
    return LR_OK;
}

/* a ranks before b: larger first, NaN above every number, ties to the smaller delay (the
 * caller scans delays in increasing order and keeps the earlier of equals). */
static int ranks_before(float a, float b)
{
    if (isnan(a))
        return !isnan(b);
    return a > b;
}

/* The top_k delays of row[0..length) in rank order. */
static void top_delays(const float *row, int64_t length, int64_t top_k, int64_t *delays)
{
    int64_t count = 0;
    for (int64_t tau = 0; tau < length; tau++) {
        if (count == top_k && !ranks_before(row[tau], row[delays[count - 1]]))
            continue;
        int64_t pos = count < top_k ? count++ : top_k - 1;
        while (pos > 0 && ranks_before(row[tau], row[delays[pos - 1]])) {
            delays[pos] = delays[pos - 1];
            pos--;
        }
        delays[pos] = tau;
    }
}

static void softmax(const float *row, const int64_t *delays, int64_t top_k, float *weights)
{
    double max = -INFINITY, sum = 0;
    for (int64_t i = 0; i < top_k; i++)
        max = fmax(max, row[delays[i]]);
    for (int64_t i = 0; i < top_k; i++)
        sum += exp((double)row[delays[i]] - max);
    /* a NaN among the values makes the sum, and so every weight, NaN */
    for (int64_t i = 0; i < top_k; i++)
        weights[i] = (float)(exp((double)row[delays[i]] - max) / sum);
}

lr_status lr_autocorr_select(lr_ctx *ctx, int64_t batch, int64_t length, const float *corr, int64_t top_k,
                             lr_autocorr_mode mode, int64_t *delays, float *weights)
{
    if (batch < 0 || length < 1 || top_k < 0 || top_k > length)
        return lr_fail(ctx, LR_ERR_ARG, "autocorr: %lld delays out of a length of %lld (batch %lld)",
                       (long long)top_k, (long long)length, (long long)batch);
    if (top_k == 0 || batch == 0)
        return LR_OK;
    if (!ctx || !corr || !delays || !weights)
        return lr_fail(ctx, LR_ERR_ARG, "autocorr: missing context, correlation, delays or weights");
    if (mode == LR_AUTOCORR_TRAINING) {
        lr_status s = lr_thread_scratch_reserve(ctx, (size_t)length * sizeof(float));
        if (s != LR_OK)
            return s;
        float *mean = lr_thread_scratch(ctx, 0); /* outside any parallel region: thread 0's */
        for (int64_t tau = 0; tau < length; tau++) {
            double sum = 0;
            for (int64_t b = 0; b < batch; b++)
                sum += corr[b * length + tau];
            mean[tau] = (float)(sum / (double)batch);
        }
        top_delays(mean, length, top_k, delays);
        for (int64_t b = 1; b < batch; b++)
            memcpy(delays + b * top_k, delays, (size_t)top_k * sizeof *delays);
    } else {
        for (int64_t b = 0; b < batch; b++)
            top_delays(corr + b * length, length, top_k, delays + b * top_k);
    }
    for (int64_t b = 0; b < batch; b++)
        softmax(corr + b * length, delays + b * top_k, top_k, weights + b * top_k);
    return LR_OK;
}

typedef struct {
    int64_t length, channels, value_len, top_k, time_chunks;
    const float *v;
    const int64_t *delays;
    const float *weights;
    float *out;
    bool add;          /* out = out + (sum + bias) instead of out = sum */
    const float *bias; /* with add: per channel, or NULL */
} aggregate_job;

enum { AGGREGATE_MAX_TERMS = 64 };

/* out[c] = 0 + w[0] rows[0][c] + w[1] rows[1][c] + ..., each product rounded to float and
 * added in that order, as the plain loop does; 64 channels are summed in registers over all
 * the terms, as vectors of 8 (native on AVX2 and AVX-512, where gcc lowers wider generic
 * vectors poorly). Products and sums are separate statements so that no compiler fuses
 * them. */
__attribute__((target_clones("avx512f", "avx2", "default")))
static void autocorr_weighted_rows(float *out, const float *const *rows, const float *w, int terms, int64_t C,
                                   bool add, const float *bias)
{
    int64_t c = 0;
    for (; c + 64 <= C; c += 64) {
        vec8 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, a4 = {0}, a5 = {0}, a6 = {0}, a7 = {0};
        for (int i = 0; i < terms; i++) {
            const float *r = rows[i] + c;
            vec8 wi = {0};
            wi += w[i];
            vec8 p0 = load8(r) * wi, p1 = load8(r + 8) * wi, p2 = load8(r + 16) * wi, p3 = load8(r + 24) * wi;
            vec8 p4 = load8(r + 32) * wi, p5 = load8(r + 40) * wi, p6 = load8(r + 48) * wi, p7 = load8(r + 56) * wi;
            a0 = a0 + p0;
            a1 = a1 + p1;
            a2 = a2 + p2;
            a3 = a3 + p3;
            a4 = a4 + p4;
            a5 = a5 + p5;
            a6 = a6 + p6;
            a7 = a7 + p7;
        }
        float *o = out + c;
        if (add) {
            if (bias) {
                const float *b = bias + c;
                a0 = a0 + load8(b), a1 = a1 + load8(b + 8), a2 = a2 + load8(b + 16), a3 = a3 + load8(b + 24);
                a4 = a4 + load8(b + 32), a5 = a5 + load8(b + 40), a6 = a6 + load8(b + 48), a7 = a7 + load8(b + 56);
            }
            a0 = load8(o) + a0, a1 = load8(o + 8) + a1, a2 = load8(o + 16) + a2, a3 = load8(o + 24) + a3;
            a4 = load8(o + 32) + a4, a5 = load8(o + 40) + a5, a6 = load8(o + 48) + a6, a7 = load8(o + 56) + a7;
        }
        store8(o, a0);
        store8(o + 8, a1);
        store8(o + 16, a2);
        store8(o + 24, a3);
        store8(o + 32, a4);
        store8(o + 40, a5);
        store8(o + 48, a6);
        store8(o + 56, a7);
    }
    for (; c < C; c++) {
        float a = 0;
        for (int i = 0; i < terms; i++) {
            float p = w[i] * rows[i][c];
            a = a + p;
        }
        if (add && bias)
            a = a + bias[c];
        out[c] = add ? out[c] + a : a;
    }
}

static void aggregate_task(void *arg, size_t task, int thread)
{
    (void)thread;
    const aggregate_job *job = arg;
    const int64_t L = job->length, C = job->channels, b = (int64_t)task / job->time_chunks;
    const int64_t t0 = (int64_t)task % job->time_chunks * TIME_CHUNK, t1 = t0 + TIME_CHUNK < L ? t0 + TIME_CHUNK : L;
    const int64_t *delays = job->delays + b * job->top_k;
    const float *weights = job->weights + b * job->top_k;
    const float *v = job->v + (size_t)b * (size_t)job->value_len * (size_t)C;
    for (int64_t t = t0; t < t1; t++) {
        float *restrict o = job->out + ((size_t)b * (size_t)L + (size_t)t) * (size_t)C;
        if (job->top_k <= AGGREGATE_MAX_TERMS) {
            /* the rows that are not padding, in the order of the delays */
            const float *rows[AGGREGATE_MAX_TERMS];
            float w[AGGREGATE_MAX_TERMS];
            int terms = 0;
            for (int64_t i = 0; i < job->top_k; i++) {
                int64_t row = (t + delays[i]) % L;
                if (row < job->value_len) {
                    rows[terms] = v + row * C;
                    w[terms++] = weights[i];
                }
            }
            autocorr_weighted_rows(o, rows, w, terms, C, job->add, job->bias);
            continue;
        }
        /* the plain loop, for many delays */
        for (int64_t c = 0; c < C; c++) {
            float a = 0;
            for (int64_t i = 0; i < job->top_k; i++) {
                int64_t row = (t + delays[i]) % L;
                if (row >= job->value_len) /* the zero padding */
                    continue;
                float term = weights[i] * v[row * C + c];
                a = a + term;
            }
            if (job->add && job->bias)
                a = a + job->bias[c];
            o[c] = job->add ? o[c] + a : a;
        }
    }
}

static lr_status aggregate(lr_ctx *ctx, int64_t batch, int64_t length, int64_t channels, const float *v,
                           int64_t value_len, int64_t top_k, const int64_t *delays, const float *weights, bool add,
                           const float *bias, float *out)
{
    if (!ctx || !v || !out || (top_k > 0 && (!delays || !weights)))
        return lr_fail(ctx, LR_ERR_ARG, "autocorr: missing context or tensor");
    if (batch < 0 || length < 1 || channels < 1 || value_len < 1 || top_k < 0 || top_k > length)
        return lr_fail(ctx, LR_ERR_ARG, "autocorr: batch %lld, length %lld, %lld channels, value length %lld, %lld delays",
                       (long long)batch, (long long)length, (long long)channels, (long long)value_len,
                       (long long)top_k);
    for (int64_t i = 0; i < batch * top_k; i++)
        if (delays[i] < 0 || delays[i] >= length)
            return lr_fail(ctx, LR_ERR_ARG, "autocorr: delay %lld outside 0..%lld", (long long)delays[i],
                           (long long)(length - 1));
    const int64_t time_chunks = (length + TIME_CHUNK - 1) / TIME_CHUNK;
    size_t tasks;
    if (!lr_mul_size((size_t)batch, (size_t)time_chunks, &tasks))
        return lr_fail(ctx, LR_ERR_ARG, "autocorr: batch %lld too large", (long long)batch);
    aggregate_job job = {length, channels, value_len, top_k, time_chunks, v, delays, weights, out, add, bias};
    lr_parallel_for(ctx, tasks, aggregate_task, &job);
    return LR_OK;
}

lr_status lr_autocorr_aggregate(lr_ctx *ctx, int64_t batch, int64_t length, int64_t channels, const float *v,
                                int64_t value_len, int64_t top_k, const int64_t *delays, const float *weights,
                                float *out)
{
    return aggregate(ctx, batch, length, channels, v, value_len, top_k, delays, weights, false, NULL, out);
}

static lr_status forward(lr_ctx *ctx, lr_autocorr *ac, int64_t batch, int64_t qk_channels, int64_t v_channels,
                         const float *q, const float *k, const float *v, int64_t key_len, double factor,
                         lr_autocorr_mode mode, bool add, const float *bias, float *out)
{
    if (!ctx || !ac)
        return lr_fail(ctx, LR_ERR_ARG, "autocorr: missing context or plan");
    const int64_t L = ac->length, top_k = lr_autocorr_top_k(factor, L);
    if (top_k < 0 || top_k > L)
        return lr_fail(ctx, LR_ERR_ARG, "autocorr: factor %g gives %lld delays for length %lld", factor,
                       (long long)top_k, (long long)L);
    if (batch < 0)
        return lr_fail(ctx, LR_ERR_ARG, "autocorr: batch %lld", (long long)batch);
    size_t selected;
    if (!lr_mul_size((size_t)batch, (size_t)top_k, &selected))
        return lr_fail(ctx, LR_ERR_ARG, "autocorr: batch %lld too large", (long long)batch);
    lr_status s = reserve(ctx, (void **)&ac->corr, &ac->corr_cap, (size_t)batch * (size_t)L, sizeof(float));
    if (s == LR_OK)
        s = reserve(ctx, (void **)&ac->delays, &ac->delays_cap, selected, sizeof(int64_t));
    if (s == LR_OK)
        s = reserve(ctx, (void **)&ac->weights, &ac->weights_cap, selected, sizeof(float));
    if (s == LR_OK)
        s = lr_autocorr_correlate(ctx, ac, batch, qk_channels, q, k, key_len, ac->corr);
    if (s == LR_OK)
        s = lr_autocorr_select(ctx, batch, L, ac->corr, top_k, mode, ac->delays, ac->weights);
    if (s == LR_OK)
        s = aggregate(ctx, batch, L, v_channels, v, key_len, top_k, ac->delays, ac->weights, add, bias, out);
    return s;
}

lr_status lr_autocorr_forward(lr_ctx *ctx, lr_autocorr *ac, int64_t batch, int64_t qk_channels,
                              int64_t v_channels, const float *q, const float *k, const float *v,
                              int64_t key_len, double factor, lr_autocorr_mode mode, float *out)
{
    return forward(ctx, ac, batch, qk_channels, v_channels, q, k, v, key_len, factor, mode, false, NULL, out);
}

lr_status lr_autocorr_forward_add(lr_ctx *ctx, lr_autocorr *ac, int64_t batch, int64_t qk_channels,
                                  int64_t v_channels, const float *q, const float *k, const float *v,
                                  int64_t key_len, double factor, lr_autocorr_mode mode, const float *bias,
                                  float *x)
{
    return forward(ctx, ac, batch, qk_channels, v_channels, q, k, v, key_len, factor, mode, true, bias, x);
}
