/* "informer": Informer (Zhou et al., AAAI 2021) as thuml/Time-Series-Library implements it
 * (models/Informer.py, layers/Transformer_EncDec.py, layers/SelfAttention_Family.py,
 * layers/Embed.py, utils/timefeatures.py); tools/informer_torch.py is the independent PyTorch
 * reference that writes our fixtures and trains the shipped model. Tensor names are TSLib's
 * state_dict names (see that script); the positional table is computed here, not stored.
 *
 * B windows at a time (forecast_batch; forecast is B = 1), all F32, linear layers through
 * lr_sgemm with B * L rows, so threaded; a window's forecast is bit-identical in any batch:
 *   x = (raw - scaler.mean) / scaler.std over the last seq_len steps; the decoder input is
 *   its last label_len steps followed by pred_len zeros. Marks: the timeF features of each
 *   step for the model's freq (h: hour/23, weekday/6, (day-1)/30, (yday-1)/365, each - 0.5;
 *   t and s put minute/59 and second/59 first; d and b drop the hour; m is (month-1)/11),
 *   the horizon's dates from the calendar's step.
 *   DataEmbedding: Conv1d(k 3, circular padding 1, no bias) of the values + Linear(marks,
 *   no bias) + sinusoidal positions (built in F32 like the official buffer).
 *   Encoder: e_layers EncoderLayers (ProbSparse self-attention, not causal; residual,
 *   LayerNorm; Conv1d k 1 - activation - Conv1d k 1; residual, LayerNorm), a ConvLayer
 *   between two (distil: Conv1d k 3 circular padding 2, BatchNorm with running statistics,
 *   ELU, MaxPool1d(3, 2, 1): L -> (L + 1) / 2 + 1), then LayerNorm.
 *   Decoder: d_layers DecoderLayers (ProbSparse causal self-attention, ProbSparse cross
 *   attention on the encoder output - TSLib uses ProbAttention for both, where Informer2020
 *   has full cross-attention - each with residual and LayerNorm, then the feed-forward part),
 *   LayerNorm, Linear to c_out; the last pred_len steps, de-normalised.
 *   AttentionLayer: projections, then the attention output [H, L, D] read as [L, H * D]
 *   (TSLib's ProbAttention returns [B, H, L, D] and AttentionLayer views it as [B, L, H*D],
 *   which interleaves heads and positions; followed exactly), out_projection.
 * ProbSparse (libcore lr_probsparse_attention): keys sampled from a seed, not at random:
 * attention module k in forward order (encoder layers 0..e_layers-1, then decoder layer j's
 * self-attention e_layers + 2j and cross-attention e_layers + 2j + 1) uses seed
 * sample_seed + k, sample_seed from the metadata (default 0), unless the file gives module k's
 * indices as the I32 tensor probsparse.sample_index.<k> [Lq, U] (e.g. the indices another
 * implementation drew, so that runs compare exactly).
 * LR_INFORMER_ATTENTION=full in the environment swaps every attention for exact softmax
 * attention (lr_attention; causal for the decoder's self-attention): for timing ProbSparse
 * against full attention, not for forecasts. LR_INFORMER_TIMING set: the time spent inside the
 * attentions is printed on stderr when the model is closed. */
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "forecast.h"
#include "layers.h"
#include "longrange/attention.h"
#include "longrange/gemm.h"
#include "longrange/parallel.h"
#include "longrange/probsparse.h"

#define MAX_TIME_FEATURES 6

typedef struct {
    const float *w, *b; /* w [out, in] (a k=1 Conv1d's [out, in, 1] is the same memory) */
} linear;

typedef struct {
    linear q, k, v, o;
} attn_w;

typedef struct {
    const float *w, *b;
} norm_w;

typedef struct {
    attn_w attn;
    linear conv1, conv2;
    norm_w norm1, norm2;
} enc_layer;

typedef struct {
    const float *w, *b, *bn_w, *bn_b, *bn_mean, *bn_var; /* w [d, d, 3] */
} distil_w;

typedef struct {
    attn_w self, cross;
    linear conv1, conv2;
    norm_w norm1, norm2, norm3;
} dec_layer;

typedef struct {
    const float *token;    /* [d_model, c_in, 3] */
    const float *temporal; /* [d_model, n_features] */
} embed_w;

typedef struct {
    ts_model base;
    int64_t label_len, d, heads, e_layers, d_layers, d_ff, factor, enc_in, dec_in, c_out;
    int64_t target_index; /* S and MS: the scaler entry of the output; -1 for M */
    bool distil, gelu, full_attention, timing;
    double attention_seconds; /* with LR_INFORMER_TIMING set: time inside the attentions */
    int64_t attention_calls;
    uint64_t seed;
    char freq;
    int n_features;
    const float *mean, *std;
    embed_w enc_emb, dec_emb;
    enc_layer *enc;
    distil_w *conv;
    norm_w enc_norm;
    dec_layer *dec;
    norm_w dec_norm;
    linear proj;
    lr_tensor *sample_index; /* per attention module: given indices (data NULL: drawn from seed) */
    char *columns, *features, *target;
    float *work;        /* the buffers of a batch, kept between calls (fresh pages fault) */
    size_t work_floats; /* its size */
} informer_model;

/* ---- time features ----------------------------------------------------------------------- */

/* Days since 1970-01-01 to the civil date (proleptic Gregorian). */
static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int freq_features(char freq)
{
    switch (freq) {
    case 'h': return 4;
    case 't': return 5;
    case 's': return 6;
    case 'd': case 'b': return 3;
    case 'm': return 1;
    default: return -1;
    }
}

/* TSLib's time_features for freq at time t (seconds since 1970). */
static void time_features(char freq, int64_t t, float *f)
{
    int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
    int64_t sec = t - days * 86400, y;
    int mo, dom;
    civil_from_days(days, &y, &mo, &dom);
    double hour = (double)(sec / 3600) / 23.0 - 0.5;
    double minute = (double)(sec / 60 % 60) / 59.0 - 0.5;
    double second = (double)(sec % 60) / 59.0 - 0.5;
    double wday = (double)(((days + 3) % 7 + 7) % 7) / 6.0 - 0.5; /* Monday 0: 1970-01-01 was a Thursday */
    double mday = (double)(dom - 1) / 30.0 - 0.5;
    double yday = (double)(days - days_from_civil(y, 1, 1)) / 365.0 - 0.5;
    double month = (double)(mo - 1) / 11.0 - 0.5;
    double v[MAX_TIME_FEATURES];
    int n = 0;
    if (freq == 'm') {
        v[n++] = month;
    } else {
        if (freq == 's')
            v[n++] = second;
        if (freq == 's' || freq == 't')
            v[n++] = minute;
        if (freq != 'd' && freq != 'b')
            v[n++] = hour;
        v[n++] = wday;
        v[n++] = mday;
        v[n++] = yday;
    }
    for (int i = 0; i < n; i++)
        f[i] = (float)v[i];
}

/* ---- layers -------------------------------------------------------------------------------- */

/* Batches of windows, linear layers and row tasks: layers.h. y[rows, out] = x[rows, in] W^T + b */
static lr_status apply_linear(lr_ctx *ctx, const linear *l, int64_t rows, int64_t in, int64_t out,
                              const float *x, float *y)
{
    return ts_linear(ctx, rows, in, out, x, l->w, l->b, 0.0f, y);
}

/* x[L, d] = LayerNorm(x + r) (r may be NULL), eps 1e-5, row by row. */
LR_VECTORIZE static void add_norm_rows(const norm_w *n, int64_t L, int64_t d, float *x, const float *r)
{
    for (int64_t t = 0; t < L; t++) {
        float *row = x + t * d;
        if (r)
            for (int64_t i = 0; i < d; i++)
                row[i] += r[t * d + i];
        ts_layernorm_row(row, d, n->w, n->b);
    }
}

typedef struct {
    const norm_w *n;
    int64_t rows, d;
    float *x;
    const float *r;
} norm_job;

static void norm_task(void *arg, size_t task, int thread)
{
    const norm_job *j = arg;
    const int64_t t0 = (int64_t)task * TS_ROWS_PER_TASK, n = j->rows - t0 < TS_ROWS_PER_TASK ? j->rows - t0 : TS_ROWS_PER_TASK;
    add_norm_rows(j->n, n, j->d, j->x + t0 * j->d, j->r ? j->r + t0 * j->d : NULL);
}

/* x[rows, d] = LayerNorm(x + r) (r may be NULL), eps 1e-5. */
static void add_norm(lr_ctx *ctx, const norm_w *n, int64_t rows, int64_t d, float *x, const float *r)
{
    norm_job j = {n, rows, d, x, r};
    lr_parallel_for(ctx, ts_row_tasks(rows), norm_task, &j);
}

/* col[t][i * 3 + k] = x[(t + k - pad) mod L][i] for t < L + 2 pad - 2, for each of B
 * windows (x [B][L][c], col [B][L + 2 pad - 2][3 c]): the circular Conv1d(k 3) as a GEMM with
 * its [out, in, 3] weight. */
static void im2col_circular(int64_t B, int64_t L, int64_t c, int64_t pad, const float *x, float *col)
{
    int64_t Lout = L + 2 * pad - 2;
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < Lout; t++)
            for (int64_t k = 0; k < 3; k++) {
                int64_t src = ((t + k - pad) % L + L) % L;
                const float *xs = x + (b * L + src) * c;
                float *cd = col + (b * Lout + t) * 3 * c + k;
                for (int64_t i = 0; i < c; i++)
                    cd[i * 3] = xs[i];
            }
}

typedef struct {
    float *q, *k, *v, *att, *hid, *col, *tmp, *marks, *head_major;
    double *bn_inv; /* [d] */
} scratch;

/* src [B][L, H * D] -> dst [B][H, L, D]: each head's rows contiguous, so the ProbSparse
 * sampling reads rows of a compact matrix rather than strided slices of the projection. */
static void to_head_major(int64_t B, int64_t L, int64_t H, int64_t D, const float *src, float *dst)
{
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t t = 0; t < L; t++)
                memcpy(dst + ((b * H + h) * L + t) * D, src + (b * L + t) * H * D + h * D, (size_t)D * sizeof *dst);
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* out[B][Lq, d] = AttentionLayer(xq, xkv) with attention module number `which`, for each of B
 * windows: the samples are the same for every batch item (probsparse.h), and each (window,
 * head) is its own problem, so batching does not change a window's result. */
static lr_status attention_layer(lr_ctx *ctx, informer_model *m, const attn_w *w, bool causal,
                                 int64_t which, int64_t B, int64_t Lq, const float *xq, int64_t Lk,
                                 const float *xkv, scratch *s, float *out)
{
    const int64_t d = m->d, H = m->heads, D = d / H;
    lr_status st = apply_linear(ctx, &w->q, B * Lq, d, d, xq, s->q);
    if (st == LR_OK)
        st = apply_linear(ctx, &w->k, B * Lk, d, d, xkv, s->k);
    if (st == LR_OK)
        st = apply_linear(ctx, &w->v, B * Lk, d, d, xkv, s->v);
    if (st != LR_OK)
        return st;
    /* [B, H, L, D] head-major copies of the [B][L, H * D] projections */
    float *qh = s->head_major, *kh = qh + B * Lq * d, *vh = kh + B * Lk * d;
    to_head_major(B, Lq, H, D, s->q, qh);
    to_head_major(B, Lk, H, D, s->k, kh);
    to_head_major(B, Lk, H, D, s->v, vh);
    lr_tensor q = {.data = qh, .dtype = LR_F32, .ndim = 4, .shape = {B, H, Lq, D},
                   .stride = {Lq * d, Lq * D, D, 1}};
    lr_tensor k = {.data = kh, .dtype = LR_F32, .ndim = 4, .shape = {B, H, Lk, D},
                   .stride = {Lk * d, Lk * D, D, 1}};
    lr_tensor v = k;
    v.data = vh;
    /* contiguous [B, H, Lq, D], whose memory is TSLib's [B][Lq, H * D] view */
    lr_tensor o = {.data = s->att, .dtype = LR_F32, .ndim = 4, .shape = {B, H, Lq, D},
                   .stride = {Lq * d, Lq * D, D, 1}};
    double t0 = m->timing ? now_seconds() : 0;
    if (m->full_attention) {
        lr_attn_params p = lr_attn_default_params();
        p.causal = causal;
        st = lr_attention(ctx, &p, &q, &k, &v, &o);
    } else {
        lr_probsparse_params p = lr_probsparse_default_params();
        p.factor = m->factor;
        p.causal = causal;
        p.seed = m->seed + (uint64_t)which;
        if (m->sample_index[which].data)
            p.sample_index = &m->sample_index[which];
        st = lr_probsparse_attention(ctx, &p, &q, &k, &v, &o);
    }
    if (m->timing) {
        m->attention_seconds += now_seconds() - t0;
        m->attention_calls++;
    }
    if (st == LR_OK)
        st = apply_linear(ctx, &w->o, B * Lq, d, d, s->att, out);
    return st;
}

/* x[rows, d] = norm2(y + conv2(act(conv1(y)))) with y = x (the feed-forward half of a layer). */
static lr_status feed_forward(lr_ctx *ctx, const informer_model *m, const linear *c1, const linear *c2,
                              const norm_w *n, int64_t rows, float *x, scratch *s)
{
    lr_status st = ts_linear_act(ctx, rows, m->d, m->d_ff, x, c1->w, c1->b, m->gelu ? TS_ACT_GELU : TS_ACT_RELU,
                                 s->hid);
    if (st != LR_OK)
        return st;
    st = apply_linear(ctx, c2, rows, m->d_ff, m->d, s->hid, s->tmp);
    if (st == LR_OK)
        add_norm(ctx, n, rows, m->d, x, s->tmp);
    return st;
}

typedef struct {
    const distil_w *w;
    const double *inv; /* per channel: 1 / sqrt(running var + eps) */
} bn_elu_epilogue;

/* The conv's bias, BatchNorm (eval) and ELU on a block of the conv's output as the GEMM
 * finishes it, in double. */
static void bn_elu(void *user, float *c, int64_t ldc, int64_t row0, int64_t col0, int64_t rows, int64_t cols)
{
    const bn_elu_epilogue *e = user;
    const distil_w *w = e->w;
    for (int64_t t = 0; t < rows; t++)
        for (int64_t j = 0; j < cols; j++) {
            const int64_t i = col0 + j;
            double a = ((double)c[t * ldc + j] + w->b[i] - w->bn_mean[i]) * e->inv[i] * w->bn_w[i] + w->bn_b[i];
            c[t * ldc + j] = (float)(a > 0 ? a : expm1(a));
        }
}

/* The distilling ConvLayer on each of B windows: x[B][L, d] -> x[B][(L + 1) / 2 + 1, d]. */
static lr_status distil(lr_ctx *ctx, const informer_model *m, const distil_w *w, int64_t B, int64_t *L, float *x,
                        scratch *s)
{
    const int64_t d = m->d, Lc = *L + 2, Lo = (*L + 1) / 2 + 1;
    im2col_circular(B, *L, d, 2, x, s->col);
    bn_elu_epilogue e = {w, s->bn_inv};
    for (int64_t i = 0; i < d; i++)
        s->bn_inv[i] = 1.0 / sqrt((double)w->bn_var[i] + 1e-5);
    lr_gemm_epilogue ep = {bn_elu, &e};
    lr_status st = lr_sgemm_ep(ctx, LR_NO_TRANS, LR_TRANS, B * Lc, d, 3 * d, 1.0f, s->col, 3 * d, w->w, 3 * d,
                               0.0f, s->tmp, d, &ep);
    if (st != LR_OK)
        return st;
    /* Window b's output rows land below its input rows (Lo < Lc), so in place is safe. */
    for (int64_t b = 0; b < B; b++) {
        const float *tb = s->tmp + b * Lc * d;
        float *xb = x + b * Lo * d;
        for (int64_t o = 0; o < Lo; o++)
            for (int64_t i = 0; i < d; i++) {
                float best = -INFINITY;
                for (int64_t t = 2 * o - 1; t <= 2 * o + 1; t++)
                    if (t >= 0 && t < Lc && tb[t * d + i] > best)
                        best = tb[t * d + i];
                xb[o * d + i] = best;
            }
    }
    *L = Lo;
    return LR_OK;
}

/* out[B][L, d] = DataEmbedding(x[B][L, c], marks[B][L, n_features]). */
typedef struct {
    int64_t L, n;
    const float *pe;
    float *out;
} add_rows_job;

/* Window `task`'s n values += pe's. */
LR_VECTORIZE static void add_rows_task(void *arg, size_t task, int thread)
{
    const add_rows_job *j = arg;
    float *o = j->out + (int64_t)task * j->n;
    for (int64_t i = 0; i < j->n; i++)
        o[i] += j->pe[i];
}

static lr_status embed(lr_ctx *ctx, const informer_model *m, const embed_w *w, int64_t B, int64_t L, int64_t c,
                       const float *x, const float *marks, scratch *s, float *out)
{
    const int64_t d = m->d;
    im2col_circular(B, L, c, 1, x, s->col);
    lr_status st = lr_sgemm(ctx, LR_NO_TRANS, LR_TRANS, B * L, d, 3 * c, 1.0f, s->col, 3 * c, w->token, 3 * c,
                            0.0f, out, d);
    if (st == LR_OK)
        st = lr_sgemm(ctx, LR_NO_TRANS, LR_TRANS, B * L, d, m->n_features, 1.0f, marks, m->n_features,
                      w->temporal, m->n_features, 1.0f, out, d);
    if (st != LR_OK)
        return st;
    /* The positional table pe [L][d] in tmp, then added to every window's rows. */
    float *pe = s->tmp;
    const float scale = (float)(-(log(10000.0) / (double)d));
    for (int64_t i = 0; i < d; i += 2) {
        float div = (float)exp((double)((float)i * scale)); /* as torch builds it, in F32 */
        for (int64_t t = 0; t < L; t++) {
            float arg = (float)t * div;
            pe[t * d + i] = (float)sin((double)arg);
            if (i + 1 < d)
                pe[t * d + i + 1] = (float)cos((double)arg);
        }
    }
    add_rows_job j = {L, d * L, pe, out};
    lr_parallel_for(ctx, (size_t)B, add_rows_task, &j);
    return LR_OK;
}

/* ---- forecast ------------------------------------------------------------------------------ */

/* Window b forecasts from the history x_raw[0, origins[b]); out [B][horizon][c_out]. */
static lr_status informer_forecast_batch(lr_ctx *ctx, ts_model *base, int64_t B, const int64_t *origins, int64_t C,
                                         const float *x_raw, const ts_calendar *cal, int64_t horizon, float *out)
{
    informer_model *m = (informer_model *)base;
    const int64_t L = base->seq_len, LL = m->label_len, P = base->pred_len, d = m->d;
    const int64_t Ld = LL + P, Lmax = L > Ld ? L : Ld;
    if (horizon < 1 || horizon > P)
        return lr_fail(ctx, LR_ERR_ARG, "informer: horizon %lld: the model forecasts 1 to %lld steps (its pred_len)",
                       (long long)horizon, (long long)P);
    int64_t shortest = B > 0 ? origins[0] : 0;
    for (int64_t b = 1; b < B; b++)
        shortest = origins[b] < shortest ? origins[b] : shortest;
    if (B < 1 || shortest < L || C != m->enc_in)
        return lr_fail(ctx, LR_ERR_ARG, "informer: %lld window(s), the shortest of %lld steps of %lld channels "
                       "given; the model needs %lld steps of %lld channels", (long long)B, (long long)shortest,
                       (long long)C, (long long)L, (long long)m->enc_in);
    const int64_t nf = m->n_features, Lp = B * (Lmax + 2), cw = 3 * (d > C ? d : C);
    /* The FFN's hidden layer lives over q, k, v and att, the im2col buffer over the head-major
     * copies: neither pair is ever live at once. */
    const int64_t qkva = 4 * d > m->d_ff ? 4 * d : m->d_ff, heads = 3 * d > cw ? 3 * d : cw;
    const size_t need = (size_t)(Lp * (4 * d + qkva + heads + 3 * C + 2 * nf) + 2 * d + 2);
    if (need > m->work_floats) {
        float *grown = lr_alloc(need * sizeof *grown);
        if (!grown)
            return lr_fail(ctx, LR_ERR_NOMEM, "informer: out of memory for %lld windows of %lld steps",
                           (long long)B, (long long)Lmax);
        free(m->work);
        m->work = grown;
        m->work_floats = need;
    }
    scratch s;
    float *p = m->work;
    float *enc = p; p += Lp * d;
    float *dec = p; p += Lp * d;
    float *r = p; p += Lp * d;
    s.hid = s.q = p;
    s.k = s.q + Lp * d;
    s.v = s.k + Lp * d;
    s.att = s.v + Lp * d;
    p += Lp * qkva;
    s.tmp = p; p += Lp * d;
    s.col = s.head_major = p; p += Lp * heads;
    float *xe = p; p += Lp * C;
    float *xd = p; p += Lp * C;
    float *y = p; p += Lp * C;
    s.marks = p; p += Lp * nf;
    float *md = p; p += Lp * nf;
    s.bn_inv = (double *)(((uintptr_t)p + 7) & ~(uintptr_t)7);

    /* inputs: normalised values and marks, window by window */
    for (int64_t b = 0; b < B; b++) {
        const int64_t steps = origins[b];
        const float *win = x_raw + (steps - L) * C;
        float *xeb = xe + b * L * C, *xdb = xd + b * Ld * C;
        for (int64_t t = 0; t < L; t++)
            for (int64_t c = 0; c < C; c++)
                xeb[t * C + c] = (win[t * C + c] - m->mean[c]) / m->std[c];
        for (int64_t t = 0; t < Ld; t++)
            for (int64_t c = 0; c < C; c++)
                xdb[t * C + c] = t < LL ? xeb[(L - LL + t) * C + c] : 0.0f;
        for (int64_t t = 0; t < L; t++)
            time_features(m->freq, cal->time[steps - L + t], s.marks + (b * L + t) * nf);
        for (int64_t t = 0; t < Ld; t++) {
            int64_t when = t < LL ? cal->time[steps - LL + t]
                                  : series_step_advance(cal->step, cal->time[steps - 1], t - LL + 1);
            time_features(m->freq, when, md + (b * Ld + t) * nf);
        }
    }

    /* encoder */
    int64_t Le = L, which = 0;
    lr_status st = embed(ctx, m, &m->enc_emb, B, L, C, xe, s.marks, &s, enc);
    for (int64_t i = 0; i < m->e_layers && st == LR_OK; i++) {
        const enc_layer *l = &m->enc[i];
        st = attention_layer(ctx, m, &l->attn, false, which++, B, Le, enc, Le, enc, &s, r);
        if (st == LR_OK) {
            add_norm(ctx, &l->norm1, B * Le, d, enc, r);
            st = feed_forward(ctx, m, &l->conv1, &l->conv2, &l->norm2, B * Le, enc, &s);
        }
        if (st == LR_OK && m->distil && i + 1 < m->e_layers)
            st = distil(ctx, m, &m->conv[i], B, &Le, enc, &s);
    }
    if (st == LR_OK)
        add_norm(ctx, &m->enc_norm, B * Le, d, enc, NULL);

    /* decoder */
    if (st == LR_OK)
        st = embed(ctx, m, &m->dec_emb, B, Ld, C, xd, md, &s, dec);
    for (int64_t j = 0; j < m->d_layers && st == LR_OK; j++) {
        const dec_layer *l = &m->dec[j];
        st = attention_layer(ctx, m, &l->self, true, which++, B, Ld, dec, Ld, dec, &s, r);
        if (st == LR_OK) {
            add_norm(ctx, &l->norm1, B * Ld, d, dec, r);
            st = attention_layer(ctx, m, &l->cross, false, which++, B, Ld, dec, Le, enc, &s, r);
        }
        if (st == LR_OK) {
            add_norm(ctx, &l->norm2, B * Ld, d, dec, r);
            st = feed_forward(ctx, m, &l->conv1, &l->conv2, &l->norm3, B * Ld, dec, &s);
        }
    }
    /* The projection of every decoder step (the first label_len are dropped below): one GEMM. */
    if (st == LR_OK) {
        add_norm(ctx, &m->dec_norm, B * Ld, d, dec, NULL);
        st = apply_linear(ctx, &m->proj, B * Ld, d, m->c_out, dec, y);
    }
    if (st == LR_OK) {
        for (int64_t b = 0; b < B; b++)
            for (int64_t h = 0; h < horizon; h++)
                for (int64_t k = 0; k < m->c_out; k++) {
                    int64_t c = m->target_index >= 0 ? m->target_index : k;
                    out[(b * horizon + h) * m->c_out + k] = y[(b * Ld + LL + h) * m->c_out + k] * m->std[c] + m->mean[c];
                }
    }
    return st;
}

static lr_status informer_forecast(lr_ctx *ctx, ts_model *base, int64_t steps, int64_t C, const float *x_raw,
                                   const ts_calendar *cal, int64_t horizon, float *out)
{
    return informer_forecast_batch(ctx, base, 1, &steps, C, x_raw, cal, horizon, out);
}

static void informer_destroy(ts_model *base)
{
    informer_model *m = (informer_model *)base;
    if (m->timing)
        fprintf(stderr, "informer: %s attention: %.6f s in %lld calls\n", m->full_attention ? "full" : "probsparse",
                m->attention_seconds, (long long)m->attention_calls);
    free(m->work);
    free(m->enc);
    free(m->conv);
    free(m->dec);
    free(m->sample_index);
    free(m->columns);
    free(m->features);
    free(m->target);
    free(m);
}

/* ---- loading ------------------------------------------------------------------------------- */

typedef struct {
    lr_ctx *ctx;
    const lr_model *file;
    lr_status s;
} loader;

/* The F32 tensor named by fmt, of ndim dimensions d0, d1, d2; NULL (and ld->s set) when it is
 * missing or mis-shaped. */
static const float *get(loader *ld, int ndim, int64_t d0, int64_t d1, int64_t d2, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static const float *get(loader *ld, int ndim, int64_t d0, int64_t d1, int64_t d2, const char *fmt, ...)
{
    if (ld->s != LR_OK)
        return NULL;
    char name[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    const int64_t shape[3] = {d0, d1, d2};
    lr_tensor t;
    ld->s = lr_model_get_f32(ld->ctx, ld->file, name, ndim, shape, &t);
    return ld->s == LR_OK ? t.data : NULL;
}

static void get_linear(loader *ld, linear *l, int64_t out, int64_t in, bool conv, const char *prefix)
{
    l->w = conv ? get(ld, 3, out, in, 1, "%s.weight", prefix) : get(ld, 2, out, in, 0, "%s.weight", prefix);
    l->b = get(ld, 1, out, 0, 0, "%s.bias", prefix);
}

static void get_norm(loader *ld, norm_w *n, int64_t d, const char *prefix)
{
    n->w = get(ld, 1, d, 0, 0, "%s.weight", prefix);
    n->b = get(ld, 1, d, 0, 0, "%s.bias", prefix);
}

static void get_attention(loader *ld, attn_w *a, int64_t d, const char *prefix)
{
    char name[128];
    snprintf(name, sizeof name, "%s.query_projection", prefix);
    get_linear(ld, &a->q, d, d, false, name);
    snprintf(name, sizeof name, "%s.key_projection", prefix);
    get_linear(ld, &a->k, d, d, false, name);
    snprintf(name, sizeof name, "%s.value_projection", prefix);
    get_linear(ld, &a->v, d, d, false, name);
    snprintf(name, sizeof name, "%s.out_projection", prefix);
    get_linear(ld, &a->o, d, d, false, name);
}

static void get_embedding(loader *ld, embed_w *e, int64_t d, int64_t c, int nf, const char *prefix)
{
    e->token = get(ld, 3, d, c, 3, "%s.value_embedding.tokenConv.weight", prefix);
    e->temporal = get(ld, 2, d, nf, 0, "%s.temporal_embedding.embed.weight", prefix);
}

static lr_status meta_string(lr_ctx *ctx, const lr_model *file, const char *key, const char *dflt, char **out)
{
    const char *v = lr_model_meta(file, key);
    if (!v)
        v = dflt;
    if (!v)
        return lr_fail(ctx, LR_ERR_MODEL, "%s: informer: no '%s' in the metadata", lr_model_path(file), key);
    if (!(*out = strdup(v)))
        return lr_fail(ctx, LR_ERR_NOMEM, "informer: out of memory");
    return LR_OK;
}

/* Position of name in the comma-separated list, or -1; *count gets the list's length. */
static int64_t column_index(const char *list, const char *name, int64_t *count)
{
    int64_t idx = -1, n = 0;
    size_t len = strlen(name);
    for (const char *p = list;; n++) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == len && strncmp(p, name, len) == 0 && idx < 0)
            idx = n;
        if (!e) {
            n++;
            break;
        }
        p = e + 1;
    }
    *count = n;
    return idx;
}

lr_status informer_model_open(lr_ctx *ctx, const lr_model *file, ts_model **out)
{
    const char *path = lr_model_path(file);
    typedef struct {
        const char *key;
        int64_t *v;
        int64_t lo, hi;
        bool has_default;
        int64_t dflt;
    } int_param;
    int64_t seq_len, label_len, pred_len, d, heads, e_layers, d_layers, d_ff, factor, enc_in, dec_in, c_out,
        distil, seed;
    const int_param ints[] = {
        {"seq_len", &seq_len, 2, 1 << 20, false, 0},
        {"label_len", &label_len, 0, 1 << 20, false, 0},
        {"pred_len", &pred_len, 1, 1 << 20, false, 0},
        {"d_model", &d, 2, 1 << 16, false, 0},
        {"n_heads", &heads, 1, 1 << 10, false, 0},
        {"e_layers", &e_layers, 1, 64, false, 0},
        {"d_layers", &d_layers, 1, 64, false, 0},
        {"d_ff", &d_ff, 1, 1 << 18, false, 0},
        {"factor", &factor, 1, 1000, true, 5},
        {"enc_in", &enc_in, 1, 10000, false, 0},
        {"dec_in", &dec_in, 1, 10000, false, 0},
        {"c_out", &c_out, 1, 10000, false, 0},
        {"distil", &distil, 0, 1, true, 1},
        {"sample_seed", &seed, 0, INT64_MAX, true, 0},
    };
    const int n = (int)(sizeof ints / sizeof ints[0]);
    lr_status s = lr_model_expect_arch(ctx, file, "informer");
    for (int i = 0; i < n && s == LR_OK; i++) {
        s = lr_model_meta_int(ctx, file, ints[i].key, ints[i].has_default, ints[i].dflt, ints[i].v);
        if (s == LR_OK && (*ints[i].v < ints[i].lo || *ints[i].v > ints[i].hi))
            s = lr_fail(ctx, LR_ERR_MODEL, "%s: informer: %s = %lld is outside %lld..%lld", path, ints[i].key,
                        (long long)*ints[i].v, (long long)ints[i].lo, (long long)ints[i].hi);
    }
    if (s != LR_OK)
        return s;
    const char *act = lr_model_meta(file, "activation"), *emb = lr_model_meta(file, "embed");
    const char *freq = lr_model_meta(file, "freq");
    if (!act || (strcmp(act, "gelu") != 0 && strcmp(act, "relu") != 0))
        return lr_fail(ctx, LR_ERR_MODEL, "%s: informer: activation must be gelu or relu (found %s)", path,
                       act ? act : "none");
    if (emb && strcmp(emb, "timeF") != 0)
        return lr_fail(ctx, LR_ERR_MODEL, "%s: informer: only the timeF embedding is supported (found %s)", path, emb);
    if (!freq || strlen(freq) != 1 || freq_features(freq[0]) < 0)
        return lr_fail(ctx, LR_ERR_MODEL, "%s: informer: freq must be one of h, t, s, d, b, m (found %s)", path,
                       freq ? freq : "none");
    if (d % 2 || d % heads)
        return lr_fail(ctx, LR_ERR_MODEL, "%s: informer: d_model %lld must be even and a multiple of n_heads %lld",
                       path, (long long)d, (long long)heads);
    if (label_len > seq_len)
        return lr_fail(ctx, LR_ERR_MODEL, "%s: informer: label_len %lld exceeds seq_len %lld", path,
                       (long long)label_len, (long long)seq_len);
    informer_model *m = calloc(1, sizeof *m);
    if (!m)
        return lr_fail(ctx, LR_ERR_NOMEM, "informer: out of memory");
    s = meta_string(ctx, file, "features", "M", &m->features);
    if (s == LR_OK)
        s = meta_string(ctx, file, "columns", NULL, &m->columns);
    if (s == LR_OK)
        s = meta_string(ctx, file, "target", "OT", &m->target);
    int64_t ncol = 0, tpos = -1;
    if (s == LR_OK) {
        tpos = column_index(m->columns, m->target, &ncol);
        const char *f = m->features;
        bool ok = strcmp(f, "M") == 0   ? ncol == enc_in && dec_in == enc_in && c_out == enc_in
                  : strcmp(f, "MS") == 0 ? ncol == enc_in && dec_in == enc_in && c_out == 1 && tpos >= 0
                  : strcmp(f, "S") == 0  ? enc_in == 1 && dec_in == 1 && c_out == 1
                                         : false;
        if (!ok)
            s = lr_fail(ctx, LR_ERR_MODEL, "%s: informer: features '%s' with %lld column(s) (target %s), enc_in "
                        "%lld, dec_in %lld, c_out %lld do not fit (M: all equal; MS: c_out 1 and the target "
                        "among the columns; S: one channel)", path, f, (long long)ncol, m->target,
                        (long long)enc_in, (long long)dec_in, (long long)c_out);
    }
    if (s != LR_OK) {
        informer_destroy(&m->base);
        return s;
    }
    m->label_len = label_len;
    m->d = d;
    m->heads = heads;
    m->e_layers = e_layers;
    m->d_layers = d_layers;
    m->d_ff = d_ff;
    m->factor = factor;
    m->enc_in = enc_in;
    m->dec_in = dec_in;
    m->c_out = c_out;
    m->distil = distil != 0;
    m->gelu = strcmp(act, "gelu") == 0;
    m->seed = (uint64_t)seed;
    m->freq = freq[0];
    m->n_features = freq_features(freq[0]);
    m->target_index = strcmp(m->features, "M") == 0 ? -1 : strcmp(m->features, "MS") == 0 ? tpos : 0;
    const char *env = getenv("LR_INFORMER_ATTENTION");
    m->full_attention = env && strcmp(env, "full") == 0;
    m->timing = getenv("LR_INFORMER_TIMING") != NULL;
    m->enc = calloc((size_t)e_layers, sizeof *m->enc);
    m->conv = calloc((size_t)e_layers, sizeof *m->conv);
    m->dec = calloc((size_t)d_layers, sizeof *m->dec);
    m->sample_index = calloc((size_t)(e_layers + 2 * d_layers), sizeof *m->sample_index);
    if (!m->enc || !m->conv || !m->dec || !m->sample_index) {
        informer_destroy(&m->base);
        return lr_fail(ctx, LR_ERR_NOMEM, "informer: out of memory");
    }

    loader ld = {ctx, file, LR_OK};
    char pre[128];
    m->mean = get(&ld, 1, enc_in, 0, 0, "scaler.mean");
    m->std = get(&ld, 1, enc_in, 0, 0, "scaler.std");
    get_embedding(&ld, &m->enc_emb, d, enc_in, m->n_features, "enc_embedding");
    get_embedding(&ld, &m->dec_emb, d, dec_in, m->n_features, "dec_embedding");
    for (int64_t i = 0; i < e_layers; i++) {
        enc_layer *l = &m->enc[i];
        snprintf(pre, sizeof pre, "encoder.attn_layers.%lld.attention", (long long)i);
        get_attention(&ld, &l->attn, d, pre);
        snprintf(pre, sizeof pre, "encoder.attn_layers.%lld.conv1", (long long)i);
        get_linear(&ld, &l->conv1, d_ff, d, true, pre);
        snprintf(pre, sizeof pre, "encoder.attn_layers.%lld.conv2", (long long)i);
        get_linear(&ld, &l->conv2, d, d_ff, true, pre);
        snprintf(pre, sizeof pre, "encoder.attn_layers.%lld.norm1", (long long)i);
        get_norm(&ld, &l->norm1, d, pre);
        snprintf(pre, sizeof pre, "encoder.attn_layers.%lld.norm2", (long long)i);
        get_norm(&ld, &l->norm2, d, pre);
        if (m->distil && i + 1 < e_layers) {
            distil_w *c = &m->conv[i];
            c->w = get(&ld, 3, d, d, 3, "encoder.conv_layers.%lld.downConv.weight", (long long)i);
            c->b = get(&ld, 1, d, 0, 0, "encoder.conv_layers.%lld.downConv.bias", (long long)i);
            c->bn_w = get(&ld, 1, d, 0, 0, "encoder.conv_layers.%lld.norm.weight", (long long)i);
            c->bn_b = get(&ld, 1, d, 0, 0, "encoder.conv_layers.%lld.norm.bias", (long long)i);
            c->bn_mean = get(&ld, 1, d, 0, 0, "encoder.conv_layers.%lld.norm.running_mean", (long long)i);
            c->bn_var = get(&ld, 1, d, 0, 0, "encoder.conv_layers.%lld.norm.running_var", (long long)i);
        }
    }
    get_norm(&ld, &m->enc_norm, d, "encoder.norm");
    for (int64_t j = 0; j < d_layers; j++) {
        dec_layer *l = &m->dec[j];
        snprintf(pre, sizeof pre, "decoder.layers.%lld.self_attention", (long long)j);
        get_attention(&ld, &l->self, d, pre);
        snprintf(pre, sizeof pre, "decoder.layers.%lld.cross_attention", (long long)j);
        get_attention(&ld, &l->cross, d, pre);
        snprintf(pre, sizeof pre, "decoder.layers.%lld.conv1", (long long)j);
        get_linear(&ld, &l->conv1, d_ff, d, true, pre);
        snprintf(pre, sizeof pre, "decoder.layers.%lld.conv2", (long long)j);
        get_linear(&ld, &l->conv2, d, d_ff, true, pre);
        for (int k = 0; k < 3; k++) {
            snprintf(pre, sizeof pre, "decoder.layers.%lld.norm%d", (long long)j, k + 1);
            get_norm(&ld, k == 0 ? &l->norm1 : k == 1 ? &l->norm2 : &l->norm3, d, pre);
        }
    }
    get_norm(&ld, &m->dec_norm, d, "decoder.norm");
    get_linear(&ld, &m->proj, c_out, d, false, "decoder.projection");
    /* optional given sample indices, I32 [Lq, U] per attention module */
    for (int64_t k = 0, Le = seq_len; k < e_layers + 2 * d_layers && ld.s == LR_OK; k++) {
        int64_t Lq = k < e_layers ? Le : label_len + pred_len;
        int64_t Lk = k < e_layers || (k - e_layers) % 2 == 0 ? Lq : Le;
        char name[64];
        snprintf(name, sizeof name, "probsparse.sample_index.%lld", (long long)k);
        const int64_t shape[2] = {Lq, lr_probsparse_sample_count(factor, Lk)};
        if (lr_model_find(file, name))
            ld.s = lr_model_get(ctx, file, name, LR_I32, 2, shape, &m->sample_index[k]);
        for (int64_t i = 0; ld.s == LR_OK && m->sample_index[k].data && i < shape[0] * shape[1]; i++) {
            int32_t v = ((const int32_t *)m->sample_index[k].data)[i];
            if (v < 0 || v >= Lk)
                ld.s = lr_fail(ctx, LR_ERR_MODEL, "%s: tensor '%s': entry %lld is %d, outside 0..%lld", path,
                               name, (long long)i, (int)v, (long long)Lk - 1);
        }
        if (k < e_layers && m->distil && k + 1 < e_layers)
            Le = (Le + 1) / 2 + 1;
    }
    if (ld.s == LR_OK)
        for (int64_t c = 0; c < enc_in && ld.s == LR_OK; c++)
            if (!(m->std[c] > 0) || !isfinite(m->mean[c]) || !isfinite(m->std[c]))
                ld.s = lr_fail(ctx, LR_ERR_MODEL, "%s: tensor 'scaler.std': entry %lld is %g, not a positive "
                               "number", path, (long long)c, (double)m->std[c]);
    if (ld.s != LR_OK) {
        informer_destroy(&m->base);
        return ld.s;
    }
    m->base = (ts_model){
        .arch = "informer",
        .seq_len = seq_len,
        .min_history = seq_len,
        .pred_len = pred_len,
        .columns = m->columns,
        .features = m->features,
        .target = m->target,
        .forecast = informer_forecast,
        .forecast_batch = informer_forecast_batch,
        .destroy = informer_destroy,
    };
    *out = &m->base;
    return LR_OK;
}
