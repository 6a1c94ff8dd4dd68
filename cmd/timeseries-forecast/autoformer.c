/* "autoformer": Autoformer (Wu et al., NeurIPS 2021) at inference, as the official thuml code
 * computes it in eval mode (models/Autoformer.py, layers/Autoformer_EncDec.py,
 * layers/AutoCorrelation.py, layers/Embed.py; the same modules in Time-Series-Library).
 * Tensor names are the official state_dict's; the file also holds the train-split scaler
 * ("scaler.mean", "scaler.std", F32 [enc_in]) and the hyper-parameters in its metadata.
 *
 * One window x [seq_len][enc_in] (standardised by the scaler), its time features X and those
 * of the decoder's steps Y (the last label_len dates of the window, then the pred_len dates of
 * the horizon; Time-Series-Library's timeF features of the model's freq):
 *
 *   s, t        = decomp(x)                                (moving average of moving_avg)
 *   seasonal_0  = [s[-label_len:], zeros(pred_len)]
 *   trend_0     = [t[-label_len:], mean_t(x) repeated pred_len times]
 *   enc         = my_ln(EncLayer^e_layers(embed(x, X)))
 *       EncLayer(h): h = decomp_s(h + AC(h, h, h)); decomp_s(h + FFN(h))
 *   d           = embed_dec(seasonal_0, Y); trend = trend_0
 *       DecLayer(d): d, t1 = decomp(d + AC(d, d, d)); d, t2 = decomp(d + AC(d, enc, enc));
 *                    d, t3 = decomp(d + FFN(d)); trend += circconv3(t1 + t2 + t3)
 *   forecast    = (trend + Linear(my_ln(d)))[-pred_len:], de-standardised
 *
 * embed(x, X) = circconv3(x) + X W (TokenEmbedding + TimeFeatureEmbedding, DataEmbedding_wo_pos);
 * AC is the AutoCorrelationLayer (query/key/value projections, lr_autocorr in inference mode
 * with the heads flattened into the channels, out projection); FFN(h) = act(h W1) W2 (the
 * kernel-1 convolutions, no bias; act gelu (erf) or relu); my_ln(h) = LayerNorm(h) minus its
 * mean over time; circconv3 a kernel-3 circular convolution without bias. Dropout is off.
 *
 * Linear layers run on lr_sgemm in float32, biases and the activation applied as GEMM
 * epilogues; LayerNorm statistics and the scaler in double; GELU's erf is a rational
 * approximation within 4e-7 of erf (layers.c). Two exact refactorings save a third of the
 * attention's projections: the value projection is folded into the output projection
 * (af_autocorr_layer.vo_w), and self-attention correlates x (W_k^T W_q)^T with x itself
 * (qk_w); the output bias and the residual are added by the aggregation
 * (lr_autocorr_forward_add).
 *
 * Batches (forecast_batch): B windows go through every layer together, [B][L][...], so each
 * linear layer is one lr_sgemm with B * L rows; the Auto-Correlation and the decompositions
 * take the batch as theirs. A window's forecast is bit-identical in any batch and for any
 * thread count (tests/cli/timeseries-forecast-autoformer.sh checks it). */
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forecast.h"
#include "layers.h"
#include "longrange/autocorr.h"
#include "longrange/decomp.h"
#include "longrange/gemm.h"
#include "longrange/parallel.h"

typedef struct {
    const float *w, *b; /* w [out][in], b [out] */
} af_linear;

typedef struct {
    af_linear q, k, v, o;
    /* W_o W_v and W_o b_v, made at load: the time-delay aggregation is one linear map along
     * time, the same for every channel (inference weights are shared by heads and channels),
     * so it commutes with the output projection, and out(agg(v(x))) = agg(x (W_o W_v)^T +
     * W_o b_v) + b_o saves one D x D product per layer (zero padding of a short key sequence
     * commutes too). Owned. */
    float *vo_w, *vo_b;
    /* Self-attention only: W_k^T W_q, so that x (W_k^T W_q)^T against the keys' own input gives
     * the query-key correlations up to a term that is the same for every delay (the biases'
     * share, a full circular sum when queries and keys are one sequence), which neither the
     * top-k choice nor the softmax sees. Saves the key projection. Owned; NULL for cross
     * attention, whose zero-padded keys make the bias share depend on the delay. */
    float *qk_w;
} af_autocorr_layer;

typedef struct {
    af_autocorr_layer self, cross; /* cross unused in the encoder */
    const float *conv1, *conv2;    /* [d_ff][d_model], [d_model][d_ff] */
    const float *trend_proj;       /* decoder: [c_out][d_model][3] */
    float *trend_taps;             /* decoder: the same as [3][c_out][d_model], owned */
} af_layer;

typedef struct {
    const float *token;    /* [d_model][c_in][3] */
    const float *temporal; /* [d_model][n_mark] */
} af_embedding;

typedef struct {
    ts_model base;
    int64_t seq_len, label_len, pred_len, d_model, n_heads, e_layers, d_layers, d_ff, moving_avg;
    int64_t enc_in, dec_in, c_out, n_mark;
    double factor;
    bool relu;
    char freq;
    af_embedding enc_emb, dec_emb;
    af_layer *enc, *dec;
    const float *enc_norm_w, *enc_norm_b, *dec_norm_w, *dec_norm_b;
    af_linear proj;
    const float *scaler_mean, *scaler_std;
    char *columns, *target, features[3];
    lr_autocorr *ac_enc, *ac_dec; /* plans for seq_len and label_len + pred_len */
    int64_t batch_cap;            /* windows the buffers below hold */
    float *work;                  /* the buffers of a batch of forecasts, carved below */
    int64_t *dates;               /* [batch][seq_len], then [batch][label_len + pred_len] */
    /* q, k and v live in the first part of ffn: the FFN's hidden layer is only needed while the
     * Auto-Correlation's projections are not */
    float *enc_x, *dec_x, *q, *k, *v, *ffn, *col, *tsum, *trend, *z, *sea, *tr, *dec_in_x, *mark;
} af_model;

/* ---- calendar: Time-Series-Library's timeF features ---- */

/* Days since 1970-01-01 of a proleptic Gregorian date, and back (era arithmetic on 400-year
 * cycles of 146097 days). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400, yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int64_t *m, int64_t *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097, doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yoe + era * 400 + (*m <= 2);
}

static int features_of_freq(char freq)
{
    switch (freq) {
    case 's': return 6;
    case 't': return 5;
    case 'h': return 4;
    case 'd': case 'b': return 3;
    case 'w': return 2;
    case 'm': return 1;
    default: return 0;
    }
}

/* The features of one date, in the order utils/timefeatures.py lists them for the freq. */
static void time_features(char freq, int64_t t, float *f)
{
    int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400), sec = t - days * 86400;
    int64_t y, m, d;
    civil_from_days(days, &y, &m, &d);
    int64_t weekday = ((days % 7) + 7 + 3) % 7; /* 1970-01-01 was a Thursday; Monday is 0 */
    int64_t yday = days - days_from_civil(y, 1, 1);
    double second = (double)(sec % 60) / 59.0 - 0.5, minute = (double)(sec / 60 % 60) / 59.0 - 0.5;
    double hour = (double)(sec / 3600) / 23.0 - 0.5, dow = (double)weekday / 6.0 - 0.5;
    double dom = (double)(d - 1) / 30.0 - 0.5, doy = (double)yday / 365.0 - 0.5;
    int n = 0;
    switch (freq) {
    case 's':
        f[n++] = (float)second;
        /* fall through */
    case 't':
        f[n++] = (float)minute;
        /* fall through */
    case 'h':
        f[n++] = (float)hour;
        /* fall through */
    case 'd':
    case 'b':
        f[n++] = (float)dow;
        f[n++] = (float)dom;
        f[n++] = (float)doy;
        break;
    case 'w': {
        /* ISO week: that of the Thursday of the date's Monday-to-Sunday week. */
        int64_t thursday = days - weekday + 3, ty, tm, td;
        civil_from_days(thursday, &ty, &tm, &td);
        int64_t week = (thursday - days_from_civil(ty, 1, 1)) / 7 + 1;
        f[n++] = (float)dom;
        f[n++] = (float)((double)(week - 1) / 52.0 - 0.5);
        break;
    }
    case 'm':
        f[n++] = (float)((double)(m - 1) / 11.0 - 0.5);
        break;
    default:
        break;
    }
}

/* ---- layers ---- */

/* Batches of windows, linear layers and row tasks: layers.h. */

typedef struct {
    int64_t B, L, in;
    const float *x;
    float *col;
} im2col_job;

/* Rows of col [B * L][in][3]: x at t - 1, t, t + 1 of the row's window, circularly. */
static void im2col_task(void *arg, size_t task, int thread)
{
    const im2col_job *j = arg;
    const int64_t L = j->L, in = j->in, rows = j->B * L;
    const int64_t r0 = (int64_t)task * TS_ROWS_PER_TASK, r1 = r0 + TS_ROWS_PER_TASK < rows ? r0 + TS_ROWS_PER_TASK : rows;
    for (int64_t r = r0; r < r1; r++) {
        const int64_t t = r % L, base = r - t;
        const float *prev = j->x + (base + (t == 0 ? L - 1 : t - 1)) * in, *cur = j->x + r * in;
        const float *next = j->x + (base + (t == L - 1 ? 0 : t + 1)) * in;
        float *c = j->col + r * in * 3;
        for (int64_t k = 0; k < in; k++) {
            c[3 * k] = prev[k];
            c[3 * k + 1] = cur[k];
            c[3 * k + 2] = next[k];
        }
    }
}

/* The kernel-3 circular convolution of each window of x [B][L][in] with w [out][in][3]
 * (padding 1): y[t][o] = sum_c sum_j w[o][c][j] x[(t + j - 1) mod L][c], y [B][L][out].
 * Two ways, each with the smaller intermediate: with few input channels (the embeddings)
 * gather each step's three neighbours into col [B][L][in * 3] for one GEMM; with few
 * outputs (the decoder's trend projection) see conv3_taps_add. */
static lr_status circconv3(lr_ctx *ctx, int64_t B, int64_t L, int64_t in, int64_t out, const float *x,
                           const float *w, float *col, float *y)
{
    im2col_job j = {B, L, in, x, col};
    lr_parallel_for(ctx, ts_row_tasks(B * L), im2col_task, &j);
    return lr_sgemm(ctx, LR_NO_TRANS, LR_TRANS, B * L, out, in * 3, 1.0f, col, in * 3, w, in * 3, 0.0f, y, out);
}

typedef struct {
    int64_t B, L, out;
    const float *z;
    float *y;
} taps_job;

/* Rows of y += z[t - 1][0] + z[t][1] + z[t + 1][2] (circularly in the row's window). */
LR_VECTORIZE static void taps_task(void *arg, size_t task, int thread)
{
    const taps_job *j = arg;
    const int64_t L = j->L, out = j->out, rows = j->B * L;
    const int64_t r0 = (int64_t)task * TS_ROWS_PER_TASK, r1 = r0 + TS_ROWS_PER_TASK < rows ? r0 + TS_ROWS_PER_TASK : rows;
    for (int64_t r = r0; r < r1; r++) {
        const int64_t t = r % L, base = r - t;
        const float *prev = j->z + (base + (t == 0 ? L - 1 : t - 1)) * 3 * out, *cur = j->z + r * 3 * out + out;
        const float *next = j->z + (base + (t == L - 1 ? 0 : t + 1)) * 3 * out + 2 * out;
        float *y = j->y + r * out;
        for (int64_t o = 0; o < out; o++)
            y[o] += (prev[o] + cur[o]) + next[o];
    }
}

/* y [B][L][out] += the circular convolution above, from taps [3][out][in] (w with its kernel
 * axis first): one GEMM of x with all three taps stacked, z [B][L][3][out] in col, then each
 * output step adds its neighbours' shares. */
static lr_status conv3_taps_add(lr_ctx *ctx, int64_t B, int64_t L, int64_t in, int64_t out, const float *x,
                                const float *taps, float *col, float *y)
{
    lr_status s = ts_linear(ctx, B * L, in, 3 * out, x, taps, NULL, 0.0f, col);
    taps_job j = {B, L, out, col, y};
    if (s == LR_OK)
        lr_parallel_for(ctx, ts_row_tasks(B * L), taps_task, &j);
    return s;
}

/* my_Layernorm in place on one window x [L][D]: LayerNorm over D (eps 1e-5, biased
 * variance), then each channel minus its mean over time. */
static void my_layernorm(int64_t L, int64_t D, float *x, const float *w, const float *b)
{
    for (int64_t t = 0; t < L; t++)
        ts_layernorm_row(x + t * D, D, w, b);
    /* Channel means over time, a block of channels at a time so the rows are read in order
     * (each sum still runs over t in order, as a column-by-column loop would). */
    enum { BLOCK = 256 };
    double mean[BLOCK];
    for (int64_t c0 = 0; c0 < D; c0 += BLOCK) {
        const int64_t n = D - c0 < BLOCK ? D - c0 : BLOCK;
        for (int64_t c = 0; c < n; c++)
            mean[c] = 0;
        for (int64_t t = 0; t < L; t++)
            for (int64_t c = 0; c < n; c++)
                mean[c] += x[t * D + c0 + c];
        for (int64_t c = 0; c < n; c++)
            mean[c] /= (double)L;
        for (int64_t t = 0; t < L; t++)
            for (int64_t c = 0; c < n; c++)
                x[t * D + c0 + c] = (float)(x[t * D + c0 + c] - mean[c]);
    }
}

typedef struct {
    int64_t L, D;
    float *x;
    const float *w, *b;
} layernorm_job;

static void layernorm_task(void *arg, size_t task, int thread)
{
    const layernorm_job *j = arg;
    my_layernorm(j->L, j->D, j->x + (int64_t)task * j->L * j->D, j->w, j->b);
}

/* my_Layernorm of each of B windows, one task per window. */
static void layernorm_windows(lr_ctx *ctx, int64_t B, int64_t L, int64_t D, float *x, const float *w,
                              const float *b)
{
    layernorm_job j = {L, D, x, w, b};
    lr_parallel_for(ctx, (size_t)B, layernorm_task, &j);
}

typedef struct {
    int64_t n;
    float *x;
    const float *a;
} add_job;

enum { ADD_BLOCK = 1 << 14 };

LR_VECTORIZE static void add_task(void *arg, size_t task, int thread)
{
    const add_job *j = arg;
    const int64_t i0 = (int64_t)task * ADD_BLOCK, i1 = i0 + ADD_BLOCK < j->n ? i0 + ADD_BLOCK : j->n;
    for (int64_t i = i0; i < i1; i++)
        j->x[i] = j->x[i] + j->a[i];
}

/* x += a over n values. */
static void add(lr_ctx *ctx, int64_t n, float *x, const float *a)
{
    add_job j = {n, x, a};
    lr_parallel_for(ctx, (size_t)((n + ADD_BLOCK - 1) / ADD_BLOCK), add_task, &j);
}

/* x += AutoCorrelationLayer(x, kv, kv) for B windows; x [B][L][D], kv [B][S][D]. */
static lr_status autocorr_layer(lr_ctx *ctx, af_model *m, int64_t B, lr_autocorr *plan,
                                const af_autocorr_layer *p, int64_t L, float *x, int64_t S, const float *kv)
{
    const int64_t D = m->d_model;
    const float *keys = kv; /* the keys' own input, with the q-k fold */
    lr_status s;
    if (p->qk_w) {
        s = ts_linear(ctx, B * L, D, D, x, p->qk_w, NULL, 0.0f, m->q);
    } else {
        s = ts_linear(ctx, B * L, D, D, x, p->q.w, p->q.b, 0.0f, m->q);
        if (s == LR_OK)
            s = ts_linear(ctx, B * S, D, D, kv, p->k.w, p->k.b, 0.0f, m->k);
        keys = m->k;
    }
    if (s == LR_OK)
        s = ts_linear(ctx, B * S, D, D, kv, p->vo_w, p->vo_b, 0.0f, m->v);
    if (s == LR_OK)
        s = lr_autocorr_forward_add(ctx, plan, B, D, D, m->q, keys, m->v, S, m->factor, LR_AUTOCORR_INFERENCE,
                                    p->o.b, x);
    return s;
}

/* x += conv2(act(conv1(x))) on `rows` rows. */
static lr_status feed_forward(lr_ctx *ctx, af_model *m, const af_layer *p, int64_t rows, float *x)
{
    const int64_t D = m->d_model, F = m->d_ff;
    lr_status s = ts_linear_act(ctx, rows, D, F, x, p->conv1, NULL, m->relu ? TS_ACT_RELU : TS_ACT_GELU, m->ffn);
    return s == LR_OK ? ts_linear(ctx, rows, F, D, m->ffn, p->conv2, NULL, 1.0f, x) : s;
}

/* y [B][L][D] = embed(x [B][L][C], the time features of the dates [B][L]). */
static lr_status embed(lr_ctx *ctx, af_model *m, const af_embedding *e, int64_t B, int64_t L, int64_t C,
                       const float *x, const int64_t *dates, float *y)
{
    for (int64_t t = 0; t < B * L; t++)
        time_features(m->freq, dates[t], m->mark + t * m->n_mark);
    lr_status s = circconv3(ctx, B, L, C, m->d_model, x, e->token, m->col, y);
    return s == LR_OK ? ts_linear(ctx, B * L, m->n_mark, m->d_model, m->mark, e->temporal, NULL, 1.0f, y) : s;
}

/* The work buffers for batches of up to B windows (they only grow). */
static lr_status reserve_batch(lr_ctx *ctx, af_model *m, int64_t B)
{
    if (B <= m->batch_cap)
        return LR_OK;
    const int64_t D = m->d_model, C = m->enc_in, Le = m->seq_len, Ld = m->label_len + m->pred_len;
    const int64_t Lm = Le > Ld ? Le : Ld, cw = (m->c_out > C ? m->c_out : C) * 3;
    const int64_t sizes[] = {Le * D, Ld * D, Lm * (m->d_ff > 3 * D ? m->d_ff : 3 * D), Lm * cw,
                             Ld * D, Ld * C, Le * C, Le * C, Le * C, Ld * C, Lm * m->n_mark};
    float **slots[] = {&m->enc_x, &m->dec_x, &m->ffn, &m->col,
                       &m->tsum, &m->trend, &m->z, &m->sea, &m->tr, &m->dec_in_x, &m->mark};
    int64_t total = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        total += (B * sizes[i] + 15) / 16 * 16;
    float *work = lr_alloc((size_t)total * sizeof *work);
    int64_t *dates = malloc((size_t)(B * (Le + Ld)) * sizeof *dates);
    if (!work || !dates) {
        free(work);
        free(dates);
        return lr_fail(ctx, LR_ERR_NOMEM, "autoformer: out of memory for a batch of %lld windows", (long long)B);
    }
    free(m->work);
    free(m->dates);
    m->work = work;
    m->dates = dates;
    for (size_t i = 0, at = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        *slots[i] = m->work + at;
        at += (size_t)((B * sizes[i] + 15) / 16 * 16);
    }
    m->q = m->ffn;
    m->k = m->q + B * Lm * D;
    m->v = m->k + B * Lm * D;
    m->batch_cap = B;
    return LR_OK;
}

/* Window w forecasts from the history x[0, origins[w]); out [B][horizon][K]. */
static lr_status af_forecast_batch(lr_ctx *ctx, ts_model *base, int64_t B, const int64_t *origins, int64_t C,
                                   const float *x, const ts_calendar *cal, int64_t horizon, float *out)
{
    af_model *m = (af_model *)base;
    const int64_t Le = m->seq_len, Ll = m->label_len, P = m->pred_len, Ld = Ll + P, D = m->d_model;
    int64_t shortest = B > 0 ? origins[0] : 0;
    for (int64_t b = 1; b < B; b++)
        shortest = origins[b] < shortest ? origins[b] : shortest;
    if (B < 1 || C != m->enc_in || shortest < Le || horizon < 1 || horizon > P)
        return lr_fail(ctx, LR_ERR_ARG, "autoformer: %lld window(s), the shortest of %lld steps of %lld channels, "
                       "horizon %lld: the model takes %lld steps of %lld channels and forecasts up to %lld steps",
                       (long long)B, (long long)shortest, (long long)C, (long long)horizon, (long long)Le,
                       (long long)m->enc_in, (long long)P);
    lr_status s = reserve_batch(ctx, m, B);
    if (s != LR_OK)
        return s;
    /* The dates of each window and of its decoder's steps (the last label_len, the horizon). */
    int64_t *dates = m->dates, *dec_dates = m->dates + B * Le;
    for (int64_t b = 0; b < B; b++) {
        const int64_t first = origins[b] - Le, *wd = dates + b * Le;
        int64_t *dd = dec_dates + b * Ld;
        for (int64_t t = 0; t < Le; t++)
            dates[b * Le + t] = cal->time[first + t];
        for (int64_t t = 0; t < Ll; t++)
            dd[t] = wd[Le - Ll + t];
        for (int64_t h = 0; h < P; h++)
            dd[Ll + h] = series_step_advance(cal->step, cal->time[origins[b] - 1], h + 1);
        /* Standardise. */
        for (int64_t t = 0; t < Le; t++)
            for (int64_t c = 0; c < C; c++)
                m->z[(b * Le + t) * C + c] =
                    (float)(((double)x[(first + t) * C + c] - m->scaler_mean[c]) / m->scaler_std[c]);
    }
    /* Decompose; the decoder's initial seasonal part and trend. */
    s = lr_series_decomp(ctx, B, Le, C, m->moving_avg, m->z, m->sea, m->tr);
    for (int64_t b = 0; b < B && s == LR_OK; b++)
        for (int64_t c = 0; c < C; c++) {
            const float *z = m->z + b * Le * C, *sea = m->sea + b * Le * C, *tr = m->tr + b * Le * C;
            float *dx = m->dec_in_x + b * Ld * C, *trend = m->trend + b * Ld * C;
            double mean = 0;
            for (int64_t t = 0; t < Le; t++)
                mean += z[t * C + c];
            mean /= (double)Le;
            for (int64_t t = 0; t < Ll; t++) {
                dx[t * C + c] = sea[(Le - Ll + t) * C + c];
                trend[t * C + c] = tr[(Le - Ll + t) * C + c];
            }
            for (int64_t t = Ll; t < Ld; t++) {
                dx[t * C + c] = 0;
                trend[t * C + c] = (float)mean;
            }
        }

    /* Encoder. */
    if (s == LR_OK)
        s = embed(ctx, m, &m->enc_emb, B, Le, C, m->z, dates, m->enc_x);
    for (int64_t l = 0; l < m->e_layers && s == LR_OK; l++) {
        const af_layer *p = &m->enc[l];
        s = autocorr_layer(ctx, m, B, m->ac_enc, &p->self, Le, m->enc_x, Le, m->enc_x);
        if (s == LR_OK)
            s = lr_series_decomp(ctx, B, Le, D, m->moving_avg, m->enc_x, m->enc_x, NULL);
        if (s == LR_OK)
            s = feed_forward(ctx, m, p, B * Le, m->enc_x);
        if (s == LR_OK)
            s = lr_series_decomp(ctx, B, Le, D, m->moving_avg, m->enc_x, m->enc_x, NULL);
    }
    if (s == LR_OK)
        layernorm_windows(ctx, B, Le, D, m->enc_x, m->enc_norm_w, m->enc_norm_b);

    /* Decoder: the trends of each decomposition summed in tsum, (t1 + t2) + t3 in the official
     * order, then projected into the trend. */
    if (s == LR_OK)
        s = embed(ctx, m, &m->dec_emb, B, Ld, C, m->dec_in_x, dec_dates, m->dec_x);
    for (int64_t l = 0; l < m->d_layers && s == LR_OK; l++) {
        const af_layer *p = &m->dec[l];
        s = autocorr_layer(ctx, m, B, m->ac_dec, &p->self, Ld, m->dec_x, Ld, m->dec_x);
        if (s == LR_OK)
            s = lr_series_decomp(ctx, B, Ld, D, m->moving_avg, m->dec_x, m->dec_x, m->tsum);
        if (s == LR_OK)
            s = autocorr_layer(ctx, m, B, m->ac_dec, &p->cross, Ld, m->dec_x, Le, m->enc_x);
        if (s == LR_OK)
            s = lr_series_decomp(ctx, B, Ld, D, m->moving_avg, m->dec_x, m->dec_x, m->q);
        if (s == LR_OK) {
            add(ctx, B * Ld * D, m->tsum, m->q);
            s = feed_forward(ctx, m, p, B * Ld, m->dec_x);
        }
        if (s == LR_OK)
            s = lr_series_decomp(ctx, B, Ld, D, m->moving_avg, m->dec_x, m->dec_x, m->q);
        if (s == LR_OK) {
            add(ctx, B * Ld * D, m->tsum, m->q);
            s = conv3_taps_add(ctx, B, Ld, D, m->c_out, m->tsum, p->trend_taps, m->col, m->trend);
        }
    }
    if (s == LR_OK) {
        layernorm_windows(ctx, B, Ld, D, m->dec_x, m->dec_norm_w, m->dec_norm_b);
        s = ts_linear(ctx, B * Ld, D, m->c_out, m->dec_x, m->proj.w, m->proj.b, 1.0f, m->trend);
    }

    /* De-standardise the horizon: every channel (M) or the target, the last one (S, MS). */
    const int64_t k0 = strcmp(m->features, "M") == 0 ? 0 : C - 1, K = C - k0;
    for (int64_t b = 0; b < B && s == LR_OK; b++)
        for (int64_t h = 0; h < horizon; h++)
            for (int64_t k = 0; k < K; k++) {
                int64_t c = k0 + k;
                out[(b * horizon + h) * K + k] =
                    (float)((double)m->trend[(b * Ld + Ll + h) * C + c] * m->scaler_std[c] + m->scaler_mean[c]);
            }
    return s;
}

static lr_status af_forecast(lr_ctx *ctx, ts_model *base, int64_t steps, int64_t C, const float *x,
                             const ts_calendar *cal, int64_t horizon, float *out)
{
    return af_forecast_batch(ctx, base, 1, &steps, C, x, cal, horizon, out);
}

static void free_folded(af_layer *layers, int64_t n)
{
    for (int64_t l = 0; layers && l < n; l++) {
        free(layers[l].self.vo_w);
        free(layers[l].self.vo_b);
        free(layers[l].self.qk_w);
        free(layers[l].cross.vo_w);
        free(layers[l].cross.vo_b);
        free(layers[l].trend_taps);
    }
}

static void af_destroy(ts_model *base)
{
    af_model *m = (af_model *)base;
    if (!m)
        return;
    lr_autocorr_destroy(m->ac_enc);
    lr_autocorr_destroy(m->ac_dec);
    free_folded(m->enc, m->e_layers);
    free_folded(m->dec, m->d_layers);
    free(m->enc);
    free(m->dec);
    free(m->work);
    free(m->dates);
    free(m->columns);
    free(m->target);
    free(m);
}

/* ---- opening ---- */

/* The F32 tensor `name` (printf-formatted) of the given shape, or LR_ERR_MODEL naming it. */
static lr_status tensor(lr_ctx *ctx, const lr_model *file, const float **out, int ndim, const int64_t *shape,
                        const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static lr_status tensor(lr_ctx *ctx, const lr_model *file, const float **out, int ndim, const int64_t *shape,
                        const char *fmt, ...)
{
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    lr_tensor t;
    lr_status s = lr_model_get_f32(ctx, file, name, ndim, shape, &t);
    if (s == LR_OK)
        *out = t.data;
    return s;
}

static lr_status autocorr_tensors(lr_ctx *ctx, const lr_model *file, int64_t D, const char *prefix,
                                  bool self, af_autocorr_layer *p)
{
    static const char *const names[] = {"query", "key", "value", "out"};
    af_linear *lin[] = {&p->q, &p->k, &p->v, &p->o};
    lr_status s = LR_OK;
    for (int i = 0; i < 4 && s == LR_OK; i++) {
        s = tensor(ctx, file, &lin[i]->w, 2, (int64_t[]){D, D}, "%s.%s_projection.weight", prefix, names[i]);
        if (s == LR_OK)
            s = tensor(ctx, file, &lin[i]->b, 1, (int64_t[]){D}, "%s.%s_projection.bias", prefix, names[i]);
    }
    if (s != LR_OK)
        return s;
    p->vo_w = malloc((size_t)(D * D) * sizeof *p->vo_w);
    p->vo_b = malloc((size_t)D * sizeof *p->vo_b);
    p->qk_w = self ? malloc((size_t)(D * D) * sizeof *p->qk_w) : NULL;
    if (!p->vo_w || !p->vo_b || (self && !p->qk_w))
        return lr_fail(ctx, LR_ERR_NOMEM, "autoformer: out of memory");
    /* qk_w[j][i] = sum_o W_k[o][j] W_q[o][i] */
    if (self && (s = lr_sgemm(ctx, LR_TRANS, LR_NO_TRANS, D, D, D, 1.0f, p->k.w, D, p->q.w, D, 0.0f, p->qk_w, D)) != LR_OK)
        return s;
    for (int64_t i = 0; i < D; i++) {
        double sum = 0.0;
        for (int64_t j = 0; j < D; j++)
            sum += (double)p->o.w[i * D + j] * p->v.b[j];
        p->vo_b[i] = (float)sum;
    }
    return lr_sgemm(ctx, LR_NO_TRANS, LR_NO_TRANS, D, D, D, 1.0f, p->o.w, D, p->v.w, D, 0.0f, p->vo_w, D);
}

static lr_status layer_tensors(lr_ctx *ctx, const lr_model *file, const af_model *m, const char *prefix,
                               bool decoder, af_layer *p)
{
    char name[128];
    const int64_t D = m->d_model, F = m->d_ff;
    snprintf(name, sizeof name, "%s.%s", prefix, decoder ? "self_attention" : "attention");
    lr_status s = autocorr_tensors(ctx, file, D, name, true, &p->self);
    if (s == LR_OK && decoder) {
        snprintf(name, sizeof name, "%s.cross_attention", prefix);
        s = autocorr_tensors(ctx, file, D, name, false, &p->cross);
    }
    if (s == LR_OK)
        s = tensor(ctx, file, &p->conv1, 3, (int64_t[]){F, D, 1}, "%s.conv1.weight", prefix);
    if (s == LR_OK)
        s = tensor(ctx, file, &p->conv2, 3, (int64_t[]){D, F, 1}, "%s.conv2.weight", prefix);
    if (s == LR_OK && decoder)
        s = tensor(ctx, file, &p->trend_proj, 3, (int64_t[]){m->c_out, D, 3}, "%s.projection.weight", prefix);
    if (s == LR_OK && decoder) {
        const int64_t O = m->c_out;
        if (!(p->trend_taps = malloc((size_t)(3 * O * D) * sizeof *p->trend_taps)))
            return lr_fail(ctx, LR_ERR_NOMEM, "autoformer: out of memory");
        for (int64_t j = 0; j < 3; j++)
            for (int64_t o = 0; o < O; o++)
                for (int64_t c = 0; c < D; c++)
                    p->trend_taps[(j * O + o) * D + c] = p->trend_proj[(o * D + c) * 3 + j];
    }
    return s;
}

static lr_status embedding_tensors(lr_ctx *ctx, const lr_model *file, const af_model *m, const char *prefix,
                                   int64_t c_in, af_embedding *e)
{
    lr_status s = tensor(ctx, file, &e->token, 3, (int64_t[]){m->d_model, c_in, 3},
                         "%s.value_embedding.tokenConv.weight", prefix);
    return s == LR_OK ? tensor(ctx, file, &e->temporal, 2, (int64_t[]){m->d_model, m->n_mark},
                               "%s.temporal_embedding.embed.weight", prefix)
                      : s;
}

/* The metadata text `key`, or LR_ERR_MODEL. */
static lr_status meta_text(lr_ctx *ctx, const lr_model *file, const char *key, const char **out)
{
    *out = lr_model_meta(file, key);
    return *out ? LR_OK : lr_fail(ctx, LR_ERR_MODEL, "%s: autoformer: no '%s' in the metadata", lr_model_path(file), key);
}

/* Hyper-parameters: each integer in [lo, hi]. */
static lr_status hyper_parameters(lr_ctx *ctx, const lr_model *file, af_model *m)
{
    const struct {
        const char *key;
        int64_t *v, lo, hi;
    } ints[] = {
        {"seq_len", &m->seq_len, 1, 1 << 20},     {"label_len", &m->label_len, 0, 1 << 20},
        {"pred_len", &m->pred_len, 1, 1 << 20},   {"d_model", &m->d_model, 1, 1 << 16},
        {"n_heads", &m->n_heads, 1, 1 << 16},     {"e_layers", &m->e_layers, 0, 1024},
        {"d_layers", &m->d_layers, 0, 1024},      {"d_ff", &m->d_ff, 1, 1 << 20},
        {"moving_avg", &m->moving_avg, 1, 1 << 20}, {"enc_in", &m->enc_in, 1, 1 << 16},
        {"dec_in", &m->dec_in, 1, 1 << 16},       {"c_out", &m->c_out, 1, 1 << 16},
    };
    const char *path = lr_model_path(file);
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        lr_status s = lr_model_meta_int(ctx, file, ints[i].key, false, 0, ints[i].v);
        if (s != LR_OK)
            return s;
        if (*ints[i].v < ints[i].lo || *ints[i].v > ints[i].hi)
            return lr_fail(ctx, LR_ERR_MODEL, "%s: autoformer: %s = %lld, expected %lld..%lld", path, ints[i].key,
                           (long long)*ints[i].v, (long long)ints[i].lo, (long long)ints[i].hi);
    }
    lr_status s = lr_model_meta_float(ctx, file, "factor", false, 0, &m->factor);
    if (s != LR_OK)
        return s;
    if (!(m->factor > 0 && m->factor <= 100))
        return lr_fail(ctx, LR_ERR_MODEL, "%s: autoformer: factor = %g, expected 0 < factor <= 100", path, m->factor);
    if (m->d_model % m->n_heads)
        return lr_fail(ctx, LR_ERR_MODEL, "%s: autoformer: d_model %lld is not a multiple of n_heads %lld", path,
                       (long long)m->d_model, (long long)m->n_heads);
    if (m->moving_avg % 2 == 0)
        return lr_fail(ctx, LR_ERR_MODEL, "%s: autoformer: moving_avg %lld is even (the series decomposition "
                       "needs an odd kernel)", path, (long long)m->moving_avg);
    if (m->label_len > m->seq_len)
        return lr_fail(ctx, LR_ERR_MODEL, "%s: autoformer: label_len %lld is longer than seq_len %lld", path,
                       (long long)m->label_len, (long long)m->seq_len);
    if (m->dec_in != m->enc_in || m->c_out != m->enc_in)
        return lr_fail(ctx, LR_ERR_MODEL, "%s: autoformer: enc_in, dec_in and c_out must be equal (found %lld, "
                       "%lld, %lld)", path, (long long)m->enc_in, (long long)m->dec_in, (long long)m->c_out);
    const char *text;
    if ((s = meta_text(ctx, file, "embed", &text)) != LR_OK)
        return s;
    if (strcmp(text, "timeF") != 0)
        return lr_fail(ctx, LR_ERR_MODEL, "%s: autoformer: embed '%s', only timeF is supported", path, text);
    if ((s = meta_text(ctx, file, "freq", &text)) != LR_OK)
        return s;
    m->freq = text[0] >= 'A' && text[0] <= 'Z' ? (char)(text[0] - 'A' + 'a') : text[0];
    if (strlen(text) != 1 || !(m->n_mark = features_of_freq(m->freq)))
        return lr_fail(ctx, LR_ERR_MODEL, "%s: autoformer: freq '%s', expected one of s, t, h, d, b, w, m", path, text);
    if ((s = meta_text(ctx, file, "activation", &text)) != LR_OK)
        return s;
    if (strcmp(text, "gelu") != 0 && strcmp(text, "relu") != 0)
        return lr_fail(ctx, LR_ERR_MODEL, "%s: autoformer: activation '%s', expected gelu or relu", path, text);
    m->relu = strcmp(text, "relu") == 0;
    if ((s = meta_text(ctx, file, "features", &text)) != LR_OK)
        return s;
    if (strcmp(text, "M") != 0 && strcmp(text, "S") != 0 && strcmp(text, "MS") != 0)
        return lr_fail(ctx, LR_ERR_MODEL, "%s: autoformer: features '%s', expected M, S or MS", path, text);
    strcpy(m->features, text);
    const char *columns, *target;
    if ((s = meta_text(ctx, file, "columns", &columns)) != LR_OK || (s = meta_text(ctx, file, "target", &target)) != LR_OK)
        return s;
    /* The columns: enc_in names; S reads the target alone, MS has it last. */
    int64_t n = 1;
    for (const char *p = columns; *p; p++)
        n += *p == ',';
    size_t tl = strlen(target), cl = strlen(columns);
    bool last = cl >= tl && strcmp(columns + cl - tl, target) == 0 && (cl == tl || columns[cl - tl - 1] == ',');
    if (!*columns || n != m->enc_in)
        return lr_fail(ctx, LR_ERR_MODEL, "%s: autoformer: columns '%s' are not enc_in = %lld names", path, columns,
                       (long long)m->enc_in);
    if (strcmp(m->features, "M") != 0 && !last)
        return lr_fail(ctx, LR_ERR_MODEL, "%s: autoformer: features %s with the target '%s' not the last of the "
                       "columns '%s'", path, m->features, target, columns);
    if (strcmp(m->features, "S") == 0 && n != 1)
        return lr_fail(ctx, LR_ERR_MODEL, "%s: autoformer: features S reads one column, found '%s'", path, columns);
    m->columns = strdup(columns);
    m->target = strdup(target);
    if (!m->columns || !m->target)
        return lr_fail(ctx, LR_ERR_NOMEM, "autoformer: out of memory");
    return LR_OK;
}

lr_status autoformer_model_open(lr_ctx *ctx, const lr_model *file, ts_model **out)
{
    lr_status s = lr_model_expect_arch(ctx, file, "autoformer");
    if (s != LR_OK)
        return s;
    af_model *m = calloc(1, sizeof *m);
    if (!m)
        return lr_fail(ctx, LR_ERR_NOMEM, "autoformer: out of memory");
    s = hyper_parameters(ctx, file, m);
    const int64_t D = m->d_model, C = m->enc_in;
    if (s == LR_OK) {
        m->enc = calloc((size_t)m->e_layers + 1, sizeof *m->enc);
        m->dec = calloc((size_t)m->d_layers + 1, sizeof *m->dec);
        if (!m->enc || !m->dec)
            s = lr_fail(ctx, LR_ERR_NOMEM, "autoformer: out of memory");
    }
    if (s == LR_OK)
        s = embedding_tensors(ctx, file, m, "enc_embedding", m->enc_in, &m->enc_emb);
    if (s == LR_OK)
        s = embedding_tensors(ctx, file, m, "dec_embedding", m->dec_in, &m->dec_emb);
    for (int64_t l = 0; l < m->e_layers && s == LR_OK; l++) {
        char prefix[64];
        snprintf(prefix, sizeof prefix, "encoder.attn_layers.%lld", (long long)l);
        s = layer_tensors(ctx, file, m, prefix, false, &m->enc[l]);
    }
    for (int64_t l = 0; l < m->d_layers && s == LR_OK; l++) {
        char prefix[64];
        snprintf(prefix, sizeof prefix, "decoder.layers.%lld", (long long)l);
        s = layer_tensors(ctx, file, m, prefix, true, &m->dec[l]);
    }
    const struct {
        const float **p;
        const char *name;
        int ndim;
        int64_t shape[2];
    } rest[] = {
        {&m->enc_norm_w, "encoder.norm.layernorm.weight", 1, {D}},
        {&m->enc_norm_b, "encoder.norm.layernorm.bias", 1, {D}},
        {&m->dec_norm_w, "decoder.norm.layernorm.weight", 1, {D}},
        {&m->dec_norm_b, "decoder.norm.layernorm.bias", 1, {D}},
        {&m->proj.w, "decoder.projection.weight", 2, {m->c_out, D}},
        {&m->proj.b, "decoder.projection.bias", 1, {m->c_out}},
        {&m->scaler_mean, "scaler.mean", 1, {C}},
        {&m->scaler_std, "scaler.std", 1, {C}},
    };
    for (size_t i = 0; i < sizeof rest / sizeof rest[0] && s == LR_OK; i++)
        s = tensor(ctx, file, rest[i].p, rest[i].ndim, rest[i].shape, "%s", rest[i].name);
    for (int64_t c = 0; c < C && s == LR_OK; c++)
        if (!(m->scaler_std[c] > 0) || !isfinite(m->scaler_std[c]) || !isfinite(m->scaler_mean[c]))
            s = lr_fail(ctx, LR_ERR_MODEL, "%s: autoformer: tensor 'scaler.std' or 'scaler.mean': channel %lld "
                        "is not a finite mean with a positive deviation", lr_model_path(file), (long long)c);

    if (s == LR_OK)
        s = lr_autocorr_create(ctx, m->seq_len, &m->ac_enc);
    if (s == LR_OK)
        s = lr_autocorr_create(ctx, m->label_len + m->pred_len, &m->ac_dec);
    if (s == LR_OK)
        s = reserve_batch(ctx, m, 1);
    if (s != LR_OK) {
        af_destroy(&m->base);
        return s;
    }
    m->base = (ts_model){
        .arch = "autoformer",
        .seq_len = m->seq_len,
        .min_history = m->seq_len,
        .pred_len = m->pred_len,
        .columns = m->columns,
        .features = m->features,
        .target = m->target,
        .forecast = af_forecast,
        .forecast_batch = af_forecast_batch,
        .destroy = af_destroy,
    };
    *out = &m->base;
    return LR_OK;
}
