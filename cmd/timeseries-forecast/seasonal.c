/* The weight-free default model, "seasonal-autocorr": Autoformer's mechanics with nothing
 * learned. On the last seq_len steps of the input (all channels of a wide table together,
 * each series of a long table alone):
 *
 *   1. each channel is standardised by the window's own mean and standard deviation;
 *   2. series decomposition (moving average of `moving_avg` steps, ends repeated) splits it
 *      into trend and seasonal part s;
 *   3. Auto-Correlation finds the periods: R(tau) = (1 / (L C)) sum_c sum_t
 *      s[(t + tau) mod L, c] s[t, c] by FFT (Autoformer's mean over channels), and the
 *      top_k = (int)(factor ln L) delays tau in [min_lag, L / 2] with the largest R (ties to
 *      the shorter delay), weighted by the softmax of their R;
 *   4. the seasonal forecast repeats each period's last cycle, centred, mixed by those
 *      weights: s^[h] = sum_j w_j (s[L - p_j + h mod p_j] - mean of s[L - p_j .. L));
 *   5. the level is the mean of the last p* steps (p* the strongest period), which averages
 *      the cycle out; the forecast is level + s^, back in the data's units.
 *
 * Chosen on ETTh1's validation split among a few variants (see the issue note); with
 * seq_len 720, moving_avg 25, factor 3, min_lag 2 it scores test MSE 0.407, MAE 0.421 on
 * standardised data at horizon 96, against Autoformer's published 0.449 / 0.459. */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "forecast.h"
#include "longrange/autocorr.h"
#include "longrange/decomp.h"

typedef struct {
    ts_model base;
    int64_t moving_avg, min_lag;
    double factor;
    lr_autocorr *plan; /* for plan_len steps, kept between calls */
    int64_t plan_len;
} seasonal_model;

/* The top_k delays in [lo, hi] by corr, ties to the shorter: top_k selection passes, top_k
 * being O(log L). Returns how many there were. */
static int64_t strongest_delays(const float *corr, int64_t lo, int64_t hi, int64_t top_k, int64_t *delays)
{
    int64_t n = 0;
    for (; n < top_k; n++) {
        int64_t best = -1;
        for (int64_t tau = lo; tau <= hi; tau++) {
            bool taken = false;
            for (int64_t j = 0; j < n && !taken; j++)
                taken = delays[j] == tau;
            if (!taken && (best < 0 || corr[tau] > corr[best]))
                best = tau;
        }
        if (best < 0)
            break;
        delays[n] = best;
    }
    return n;
}

/* Steps 1 and 2: z = the standardised window, sea its seasonal part; mean and sd per channel. */
static lr_status standardise_and_decompose(lr_ctx *ctx, const seasonal_model *m, int64_t L, int64_t C,
                                           const float *x, double *mean, double *sd, float *z, float *sea)
{
    for (int64_t c = 0; c < C; c++)
        mean[c] = sd[c] = 0;
    for (int64_t t = 0; t < L; t++)
        for (int64_t c = 0; c < C; c++)
            mean[c] += x[t * C + c];
    for (int64_t c = 0; c < C; c++)
        mean[c] /= (double)L;
    for (int64_t t = 0; t < L; t++)
        for (int64_t c = 0; c < C; c++)
            sd[c] += (x[t * C + c] - mean[c]) * (x[t * C + c] - mean[c]);
    for (int64_t c = 0; c < C; c++) {
        sd[c] = sqrt(sd[c] / (double)L);
        if (!(sd[c] > 1e-12 * fmax(1.0, fabs(mean[c])))) /* constant: keep its scale */
            sd[c] = 1.0;
    }
    for (int64_t t = 0; t < L; t++)
        for (int64_t c = 0; c < C; c++)
            z[t * C + c] = (float)((x[t * C + c] - mean[c]) / sd[c]);
    return lr_series_decomp(ctx, 1, L, C, m->moving_avg, z, sea, NULL);
}

/* Step 3: the periods and their softmax weights; returns how many (0 for a window too short
 * to have any). */
static lr_status find_periods(lr_ctx *ctx, seasonal_model *m, int64_t L, int64_t C, const float *sea,
                              float *corr, int64_t *delays, double *weights, int64_t *found)
{
    *found = 0;
    int64_t top_k = lr_autocorr_top_k(m->factor, L);
    if (top_k < 1 || m->min_lag > L / 2)
        return LR_OK;
    if (m->plan_len != L) {
        lr_autocorr_destroy(m->plan);
        m->plan = NULL;
        m->plan_len = 0;
        lr_status s = lr_autocorr_create(ctx, L, &m->plan);
        if (s != LR_OK)
            return s;
        m->plan_len = L;
    }
    lr_status s = lr_autocorr_correlate(ctx, m->plan, 1, C, sea, sea, L, corr);
    if (s != LR_OK)
        return s;
    int64_t n = strongest_delays(corr, m->min_lag, L / 2, top_k, delays);
    double sum = 0;
    for (int64_t j = 0; j < n; j++) /* R = corr / L: an autocovariance of standardised data */
        sum += weights[j] = exp(((double)corr[delays[j]] - (double)corr[delays[0]]) / (double)L);
    for (int64_t j = 0; j < n; j++)
        weights[j] /= sum;
    *found = n;
    return LR_OK;
}

static lr_status seasonal_forecast(lr_ctx *ctx, ts_model *base, int64_t steps, int64_t C,
                                   const float *x, const ts_calendar *cal, int64_t horizon,
                                   float *out)
{
    seasonal_model *m = (seasonal_model *)base;
    if (steps < 1 || C < 1 || horizon < 1)
        return lr_fail(ctx, LR_ERR_ARG, "seasonal-autocorr: %lld steps, %lld channels, horizon %lld",
                       (long long)steps, (long long)C, (long long)horizon);
    const int64_t L = steps < base->seq_len ? steps : base->seq_len;
    const int64_t top_k = lr_autocorr_top_k(m->factor, L) + 1;
    x += (steps - L) * C;
    float *z = malloc((size_t)(2 * L * C) * sizeof *z), *sea = z + L * C;
    float *corr = malloc((size_t)L * sizeof *corr);
    double *mean = malloc((size_t)C * sizeof *mean), *sd = malloc((size_t)C * sizeof *sd);
    double *weights = malloc((size_t)top_k * sizeof *weights), *acc = malloc((size_t)horizon * sizeof *acc);
    int64_t *delays = malloc((size_t)top_k * sizeof *delays), found = 0;
    lr_status s = z && corr && mean && sd && weights && acc && delays
                      ? LR_OK
                      : lr_fail(ctx, LR_ERR_NOMEM, "seasonal-autocorr: out of memory");
    if (s == LR_OK)
        s = standardise_and_decompose(ctx, m, L, C, x, mean, sd, z, sea);
    if (s == LR_OK)
        s = find_periods(ctx, m, L, C, sea, corr, delays, weights, &found);
    /* Steps 4 and 5, channel by channel. */
    int64_t pstar = found ? delays[0] : 1;
    for (int64_t c = 0; c < C && s == LR_OK; c++) {
        double level = 0;
        for (int64_t t = L - pstar; t < L; t++)
            level += z[t * C + c];
        level /= (double)pstar;
        for (int64_t h = 0; h < horizon; h++)
            acc[h] = level;
        for (int64_t j = 0; j < found; j++) {
            int64_t p = delays[j];
            double centre = 0;
            for (int64_t t = L - p; t < L; t++)
                centre += sea[t * C + c];
            centre /= (double)p;
            for (int64_t h = 0; h < horizon; h++)
                acc[h] += weights[j] * (sea[(L - p + h % p) * C + c] - centre);
        }
        for (int64_t h = 0; h < horizon; h++)
            out[h * C + c] = (float)(acc[h] * sd[c] + mean[c]);
    }
    free(z);
    free(corr);
    free(mean);
    free(sd);
    free(weights);
    free(acc);
    free(delays);
    return s;
}

static void seasonal_destroy(ts_model *base)
{
    seasonal_model *m = (seasonal_model *)base;
    lr_autocorr_destroy(m->plan);
    free(m);
}

lr_status seasonal_model_open(lr_ctx *ctx, const lr_model *file, ts_model **out)
{
    int64_t seq_len, moving_avg, min_lag;
    double factor;
    lr_status s = lr_model_meta_int(ctx, file, "seq_len", true, 720, &seq_len);
    if (s == LR_OK)
        s = lr_model_meta_int(ctx, file, "moving_avg", true, 25, &moving_avg);
    if (s == LR_OK)
        s = lr_model_meta_int(ctx, file, "min_lag", true, 2, &min_lag);
    if (s == LR_OK)
        s = lr_model_meta_float(ctx, file, "factor", true, 3.0, &factor);
    if (s != LR_OK)
        return s;
    if (seq_len < 1 || seq_len > (int64_t)1 << 24 || moving_avg < 1 || moving_avg % 2 == 0 ||
        moving_avg > (int64_t)1 << 20 || min_lag < 1 || !(factor >= 0 && factor <= 100))
        return lr_fail(ctx, LR_ERR_MODEL, "%s: seasonal-autocorr needs seq_len in 1..2^24, an odd "
                       "moving_avg, min_lag >= 1 and factor in 0..100 (found %lld, %lld, %lld, %g)",
                       lr_model_path(file), (long long)seq_len, (long long)moving_avg,
                       (long long)min_lag, factor);
    seasonal_model *m = calloc(1, sizeof *m);
    if (!m)
        return lr_fail(ctx, LR_ERR_NOMEM, "seasonal-autocorr: out of memory");
    m->base = (ts_model){
        .arch = "seasonal-autocorr",
        .seq_len = seq_len,
        .min_history = 1,
        .forecast = seasonal_forecast,
        .destroy = seasonal_destroy,
    };
    m->moving_avg = moving_avg;
    m->min_lag = min_lag;
    m->factor = factor;
    *out = &m->base;
    return LR_OK;
}
