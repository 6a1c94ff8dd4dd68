/* Real FFT plans (longrange/fft.h) and the twiddle tables every FFT kernel uses.
 *
 * A real transform of even length n is a complex transform of n/2 points on the samples
 * taken in pairs (x[2j] + i x[2j+1]) followed by one pass that separates the even and odd
 * halves; an odd length runs the complex transform of n points on x + 0i. The complex
 * transform is the one-lane Stockham kernel of cpu/fft_ref.c when its length has no prime
 * factor above 13, otherwise Bluestein's chirp convolution on a 2^a 3^b 5^c length. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fft_internal.h"
#include "internal.h"
#include "longrange/fft.h"

void lr_fft_unit_root(int64_t num, int64_t den, double *re, double *im)
{
    int64_t r = num % den;
    if (r < 0)
        r += den;
    /* The nearest angle in (-pi, pi] keeps the argument of sin/cos small. */
    if (2 * r > den)
        r -= den;
    double angle = -2.0 * M_PI * (double)r / (double)den;
    *re = cos(angle);
    *im = sin(angle);
}

const lr_fft_kernels *lr_fft_kernels_for(lr_cpu_level level)
{
    switch (level) {
    case LR_CPU_AVX512: return &lr_fft_kernels_avx512;
    case LR_CPU_AVX2: return &lr_fft_kernels_avx2;
    case LR_CPU_REF: break;
    }
    return &lr_fft_kernels_ref;
}

int lr_fft_steps_init(lr_fft_steps *st, int64_t n, int radix8)
{
    memset(st, 0, sizeof *st);
    st->n = n;
    int radices[LR_FFT_MAX_PASSES];
    int count = 0;
    int64_t rest = n;
    while (radix8 && rest % 8 == 0 && count < LR_FFT_MAX_PASSES) {
        radices[count++] = 8;
        rest /= 8;
    }
    while (rest % 4 == 0 && count < LR_FFT_MAX_PASSES) {
        radices[count++] = 4;
        rest /= 4;
    }
    static const int small[] = {2, 3, 5, 7, 11, 13};
    for (int i = 0; i < 6; i++) {
        while (rest % small[i] == 0 && count < LR_FFT_MAX_PASSES) {
            radices[count++] = small[i];
            rest /= small[i];
        }
    }
    if (rest != 1 || n < 1)
        return 0;

    size_t tw_floats = 0;
    int64_t n_cur = n, s = 1;
    for (int p = 0; p < count; p++) {
        lr_fft_pass *ps = &st->pass[p];
        ps->radix = radices[p];
        ps->m = n_cur / ps->radix;
        ps->s = s;
        ps->tw = tw_floats;
        tw_floats += (size_t)ps->m * (size_t)(ps->radix - 1) * 2;
        if (ps->radix > 5) {
            int half = (ps->radix - 1) / 2;
            ps->dft = tw_floats;
            tw_floats += (size_t)(half * half * 2);
        }
        n_cur = ps->m;
        s *= ps->radix;
    }
    st->n_passes = count;
    st->tw = malloc((tw_floats ? tw_floats : 1) * sizeof *st->tw);
    if (!st->tw)
        return 0;
    n_cur = n;
    for (int p = 0; p < count; p++) {
        const lr_fft_pass *ps = &st->pass[p];
        float *tw = st->tw + ps->tw;
        for (int64_t q = 0; q < ps->m; q++) {
            for (int r = 1; r < ps->radix; r++) {
                double re, im;
                lr_fft_unit_root((int64_t)r * q, n_cur, &re, &im);
                *tw++ = (float)re;
                *tw++ = (float)im;
            }
        }
        if (ps->radix > 5) {
            float *dft = st->tw + ps->dft;
            int half = (ps->radix - 1) / 2;
            for (int r = 1; r <= half; r++)
                for (int j = 1; j <= half; j++) {
                    double re, im;
                    lr_fft_unit_root((int64_t)r * j, ps->radix, &re, &im);
                    *dft++ = (float)re;
                    *dft++ = (float)-im;
                }
        }
        n_cur = ps->m;
    }
    return 1;
}

void lr_fft_steps_free(lr_fft_steps *st)
{
    free(st->tw);
    st->tw = NULL;
}

struct lr_fft_plan {
    int64_t n;
    int64_t c;             /* complex length: n/2 for even n, else n */
    lr_fft_steps steps;    /* length c, or the Bluestein length */
    int bluestein;
    int64_t m;             /* length of the complex buffers: c, or the Bluestein length */
    float *chirp;          /* Bluestein: c (re, im) values e^(-i pi k^2 / c) */
    float *chirp_spectrum; /* Bluestein: FFT of the conjugate chirp (wrapped to m points) / m */
    float *half_twiddle;   /* even n: e^(-2 pi i k / n) for k = 0..c */
    size_t work_floats;
    float *work;
};

/* Lengths the Stockham kernels take directly. */
static int is_smooth(int64_t n)
{
    static const int primes[] = {2, 3, 5, 7, 11, 13};
    for (int i = 0; i < 6; i++)
        while (n % primes[i] == 0)
            n /= primes[i];
    return n == 1;
}

int64_t lr_fft_good_length(int64_t n)
{
    int64_t best = INT64_MAX;
    for (int64_t p5 = 1; p5 < best && p5 <= INT64_MAX / 5; p5 *= 5)
        for (int64_t p35 = p5; p35 < best && p35 <= INT64_MAX / 3; p35 *= 3) {
            int64_t v = p35;
            while (v < n)
                v *= 2;
            if (v < best)
                best = v;
        }
    return best;
}

void lr_fft_plan_destroy(lr_fft_plan *plan)
{
    if (!plan)
        return;
    lr_fft_steps_free(&plan->steps);
    free(plan->chirp);
    free(plan->chirp_spectrum);
    free(plan->half_twiddle);
    free(plan->work);
    free(plan);
}

static int bluestein_init(lr_fft_plan *p)
{
    const int64_t c = p->c, m = p->m;
    p->chirp = malloc((size_t)c * 2 * sizeof *p->chirp);
    p->chirp_spectrum = malloc((size_t)m * 2 * sizeof *p->chirp_spectrum);
    float *b = malloc((size_t)m * 4 * sizeof *b);
    if (!p->chirp || !p->chirp_spectrum || !b) {
        free(b);
        return 0;
    }
    /* k^2 mod 2c keeps the angle exact for any k. */
    for (int64_t k = 0; k < c; k++) {
        double re, im;
        int64_t k2 = (int64_t)(((unsigned __int128)k * (unsigned __int128)k) % (unsigned __int128)(2 * c));
        lr_fft_unit_root(k2, 2 * c, &re, &im);
        p->chirp[2 * k] = (float)re;
        p->chirp[2 * k + 1] = (float)im;
    }
    /* b[j] = conj(chirp[|j|]) for -c < j < c, wrapped around m; the 1/m of the inverse
     * transform is folded in. */
    memset(b, 0, (size_t)m * 2 * sizeof *b);
    for (int64_t k = 0; k < c; k++) {
        float re = p->chirp[2 * k] / (float)m, im = -p->chirp[2 * k + 1] / (float)m;
        b[2 * k] = re;
        b[2 * k + 1] = im;
        if (k > 0) {
            b[2 * (m - k)] = re;
            b[2 * (m - k) + 1] = im;
        }
    }
    const float *f = lr_fft_kernels_ref.fft(&p->steps, b, b + 2 * m, 0);
    memcpy(p->chirp_spectrum, f, (size_t)m * 2 * sizeof *f);
    free(b);
    return 1;
}

lr_status lr_fft_plan_create(lr_ctx *ctx, int64_t n, lr_fft_plan **out)
{
    if (!out)
        return lr_fail(ctx, LR_ERR_ARG, "fft: no place for the plan");
    *out = NULL;
    if (n < 1 || n > ((int64_t)1 << 40))
        return lr_fail(ctx, LR_ERR_ARG, "fft: length %lld is out of range (1 to 2^40)", (long long)n);
    lr_fft_plan *p = calloc(1, sizeof *p);
    if (!p)
        return lr_fail(ctx, LR_ERR_NOMEM, "fft: out of memory for a plan of length %lld", (long long)n);
    p->n = n;
    p->c = n % 2 == 0 ? n / 2 : n;
    p->bluestein = !is_smooth(p->c);
    p->m = p->bluestein ? lr_fft_good_length(2 * p->c - 1) : p->c;
    int ok = lr_fft_steps_init(&p->steps, p->m, lr_fft_kernels_ref.radix8);
    if (ok && p->bluestein)
        ok = bluestein_init(p);
    if (ok && n % 2 == 0) {
        p->half_twiddle = malloc((size_t)(p->c + 1) * 2 * sizeof *p->half_twiddle);
        ok = p->half_twiddle != NULL;
        for (int64_t k = 0; ok && k <= p->c; k++) {
            double re, im;
            lr_fft_unit_root(k, n, &re, &im);
            p->half_twiddle[2 * k] = (float)re;
            p->half_twiddle[2 * k + 1] = (float)im;
        }
    }
    /* Two complex buffers of m points for the Stockham ping-pong, and with Bluestein a third
     * of c points for the transform's own input and output. */
    p->work_floats = (size_t)p->m * 4 + (p->bluestein ? (size_t)p->c * 2 : 0);
    if (ok) {
        p->work = malloc(p->work_floats * sizeof *p->work);
        ok = p->work != NULL;
    }
    if (!ok) {
        lr_fft_plan_destroy(p);
        return lr_fail(ctx, LR_ERR_NOMEM, "fft: out of memory for a plan of length %lld", (long long)n);
    }
    *out = p;
    return LR_OK;
}

int64_t lr_fft_length(const lr_fft_plan *plan) { return plan->n; }

size_t lr_fft_workspace_bytes(const lr_fft_plan *plan) { return plan->work_floats * sizeof(float); }

/* The complex transform of the c points in `data` (interleaved), in place; `a` and `b` are
 * the two buffers of m points. */
static void complex_fft(const lr_fft_plan *p, float *data, float *a, float *b, int inverse)
{
    if (!p->bluestein) {
        const float *f = lr_fft_kernels_ref.fft(&p->steps, data, data == a ? b : a, inverse);
        if (f != data)
            memcpy(data, f, (size_t)p->c * 2 * sizeof *data);
        return;
    }
    /* Inverse = forward with real and imaginary parts swapped on the way in and out. */
    const int re = inverse ? 1 : 0, im = 1 - re;
    const int64_t c = p->c, m = p->m;
    for (int64_t k = 0; k < c; k++) {
        float xr = data[2 * k + re], xi = data[2 * k + im];
        float cr = p->chirp[2 * k], ci = p->chirp[2 * k + 1];
        a[2 * k] = xr * cr - xi * ci;
        a[2 * k + 1] = xr * ci + xi * cr;
    }
    memset(a + 2 * c, 0, (size_t)(m - c) * 2 * sizeof *a);
    float *f = lr_fft_kernels_ref.fft(&p->steps, a, b, 0);
    for (int64_t k = 0; k < m; k++) {
        float xr = f[2 * k], xi = f[2 * k + 1];
        float sr = p->chirp_spectrum[2 * k], si = p->chirp_spectrum[2 * k + 1];
        f[2 * k] = xr * sr - xi * si;
        f[2 * k + 1] = xr * si + xi * sr;
    }
    const float *g = lr_fft_kernels_ref.fft(&p->steps, f, f == a ? b : a, 1);
    for (int64_t k = 0; k < c; k++) {
        float xr = g[2 * k], xi = g[2 * k + 1];
        float cr = p->chirp[2 * k], ci = p->chirp[2 * k + 1];
        data[2 * k + re] = xr * cr - xi * ci;
        data[2 * k + im] = xr * ci + xi * cr;
    }
}

static lr_status check_call(lr_ctx *ctx, const lr_fft_plan *plan, const float *in, const float *out)
{
    if (!plan || !in || !out)
        return lr_fail(ctx, LR_ERR_ARG, "fft: missing plan, input or output");
    return LR_OK;
}

lr_status lr_fft_forward(lr_ctx *ctx, const lr_fft_plan *plan, const float *in, float *out, void *work)
{
    lr_status s = check_call(ctx, plan, in, out);
    if (s != LR_OK)
        return s;
    const lr_fft_plan *p = plan;
    float *a = work ? work : p->work, *b = a + 2 * p->m;
    float *data = p->bluestein ? b + 2 * p->m : a;
    const int64_t c = p->c;
    if (p->n % 2 == 1) {
        for (int64_t k = 0; k < c; k++) {
            data[2 * k] = in[k];
            data[2 * k + 1] = 0;
        }
        complex_fft(p, data, a, b, 0);
        memcpy(out, data, (size_t)(c / 2 + 1) * 2 * sizeof *out);
        return LR_OK;
    }
    memcpy(data, in, (size_t)p->n * sizeof *in);
    complex_fft(p, data, a, b, 0);
    /* Z = FFT(even + i odd): X[k] = E[k] + w^k O[k] with E = (Z[k] + conj Z[c-k]) / 2 and
     * O = (Z[k] - conj Z[c-k]) / 2i. */
    for (int64_t k = 0; k <= c; k++) {
        int64_t j = k % c, mirror = (c - k) % c;
        float zr = data[2 * j], zi = data[2 * j + 1], mr = data[2 * mirror], mi = data[2 * mirror + 1];
        float er = 0.5f * (zr + mr), ei = 0.5f * (zi - mi);
        float or_ = 0.5f * (zi + mi), oi = -0.5f * (zr - mr);
        float wr = p->half_twiddle[2 * k], wi = p->half_twiddle[2 * k + 1];
        out[2 * k] = er + (wr * or_ - wi * oi);
        out[2 * k + 1] = ei + (wr * oi + wi * or_);
    }
    return LR_OK;
}

lr_status lr_fft_inverse(lr_ctx *ctx, const lr_fft_plan *plan, const float *in, float *out, void *work)
{
    lr_status s = check_call(ctx, plan, in, out);
    if (s != LR_OK)
        return s;
    const lr_fft_plan *p = plan;
    float *a = work ? work : p->work, *b = a + 2 * p->m;
    float *data = p->bluestein ? b + 2 * p->m : a;
    const int64_t c = p->c, n = p->n;
    if (n % 2 == 1) {
        data[0] = in[0];
        data[1] = 0;
        for (int64_t k = 1; k <= c / 2; k++) {
            data[2 * k] = in[2 * k];
            data[2 * k + 1] = in[2 * k + 1];
            data[2 * (c - k)] = in[2 * k];
            data[2 * (c - k) + 1] = -in[2 * k + 1];
        }
        complex_fft(p, data, a, b, 1);
        for (int64_t k = 0; k < c; k++)
            out[k] = data[2 * k];
        return LR_OK;
    }
    /* 2 Z[k] = (X[k] + conj X[c-k]) + i w^-k (X[k] - conj X[c-k]), with the imaginary parts
     * of X[0] and X[c] taken as zero. */
    for (int64_t k = 0; k < c; k++) {
        int64_t mirror = c - k;
        float xr = in[2 * k], xi = k == 0 ? 0.0f : in[2 * k + 1];
        float mr = in[2 * mirror], mi = mirror == c ? 0.0f : in[2 * mirror + 1];
        float sr = xr + mr, si = xi - mi, dr = xr - mr, di = xi + mi;
        float wr = p->half_twiddle[2 * k], wi = -p->half_twiddle[2 * k + 1];
        float tr = dr * wr - di * wi, ti = dr * wi + di * wr;
        data[2 * k] = sr - ti;
        data[2 * k + 1] = si + tr;
    }
    complex_fft(p, data, a, b, 1);
    memcpy(out, data, (size_t)n * sizeof *out);
    return LR_OK;
}
