/* Temporal attention with FreeNoise window fusion; see longrange/temporal.h. */
#include "longrange/temporal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "longrange/parallel.h"

enum { PIXELS_PER_TASK = 32 };

static lr_status check(lr_ctx *ctx, const lr_temporal_desc *d, const float *q, const float *k,
                       const float *v, const float *out)
{
    if (!d || !q || !k || !v || !out)
        return lr_fail(ctx, LR_ERR_ARG, "temporal attention: NULL argument");
    if (d->frames < 1 || d->pixels < 1 || d->channels < 1 || d->heads < 1 ||
        d->channels % d->heads)
        return lr_fail(ctx, LR_ERR_ARG,
                       "temporal attention: bad sizes (frames %d, pixels %d, channels %d, heads "
                       "%d)", d->frames, d->pixels, d->channels, d->heads);
    if (d->window < 0 ||
        (d->window > 0 && d->window < d->frames && (d->stride < 1 || d->stride > d->window)))
        return lr_fail(ctx, LR_ERR_ARG, "temporal attention: bad window %d / stride %d",
                       d->window, d->stride);
    if (!(d->scale >= 0.0f) || !isfinite(d->scale))
        return lr_fail(ctx, LR_ERR_ARG, "temporal attention: bad scale");
    return LR_OK;
}

/* The windows' starts: n of them in starts (at most frames). */
static int window_starts(const lr_temporal_desc *d, int *w_out, int *starts)
{
    const int F = d->frames;
    const int w = d->window > 0 && d->window < F ? d->window : F;
    int n = 0, t = 0;
    for (; t + w <= F; t += w < F ? d->stride : F)
        starts[n++] = t;
    if (starts[n - 1] + w < F)
        starts[n++] = F - w;
    *w_out = w;
    return n;
}

static float scale_of(const lr_temporal_desc *d)
{
    return d->scale > 0.0f ? d->scale : 1.0f / sqrtf((float)(d->channels / d->heads));
}

typedef struct {
    lr_ctx *ctx;
    const lr_temporal_desc *d;
    const float *q, *k, *v;
    float *out;
    int w, n_windows;
    const int *starts;
    float scale;
} job;

/* Scratch per thread: scores [w][w], acc [F][dh], weight sum [F]. */
static size_t scratch_floats(int F, int w, int dh)
{
    return (size_t)w * w + (size_t)F * dh + (size_t)F;
}

/* One (pixel, head): every window's attention, weighted into acc, then normalised into out. */
static void pixel_head(const job *j, int p, int h, float *scores, float *acc, float *wsum)
{
    const lr_temporal_desc *d = j->d;
    const int F = d->frames, dh = d->channels / d->heads, w = j->w;
    const size_t frame_stride = (size_t)d->pixels * d->channels;
    const size_t base = (size_t)p * d->channels + (size_t)h * dh;
    memset(acc, 0, (size_t)F * dh * sizeof *acc);
    memset(wsum, 0, (size_t)F * sizeof *wsum);
    for (int n = 0; n < j->n_windows; n++) {
        const int t = j->starts[n];
        for (int a = 0; a < w; a++) {
            const float *qa = j->q + (size_t)(t + a) * frame_stride + base;
            float *row = scores + (size_t)a * w, max = -INFINITY;
            for (int b = 0; b < w; b++) {
                const float *kb = j->k + (size_t)(t + b) * frame_stride + base;
                float dot = 0.0f;
                for (int c = 0; c < dh; c++)
                    dot += qa[c] * kb[c];
                row[b] = dot * j->scale;
                max = row[b] > max ? row[b] : max;
            }
            float sum = 0.0f;
            for (int b = 0; b < w; b++) {
                row[b] = expf(row[b] - max);
                sum += row[b];
            }
            /* Window weight over the softmax normaliser, folded into the probabilities. */
            const float weight = (float)(a + 1 < w - a ? a + 1 : w - a);
            const float f = weight / sum;
            float *o = acc + (size_t)(t + a) * dh;
            for (int b = 0; b < w; b++) {
                const float pb = row[b] * f;
                const float *vb = j->v + (size_t)(t + b) * frame_stride + base;
                for (int c = 0; c < dh; c++)
                    o[c] += pb * vb[c];
            }
            wsum[t + a] += weight;
        }
    }
    for (int i = 0; i < F; i++) {
        float *o = j->out + (size_t)i * frame_stride + base;
        const float inv = 1.0f / wsum[i];
        for (int c = 0; c < dh; c++)
            o[c] = acc[(size_t)i * dh + c] * inv;
    }
}

static void run_task(void *arg, size_t task, int thread)
{
    const job *j = arg;
    const lr_temporal_desc *d = j->d;
    const int dh = d->channels / d->heads;
    float *scores = lr_thread_scratch(j->ctx, thread);
    float *acc = scores + (size_t)j->w * j->w, *wsum = acc + (size_t)d->frames * dh;
    const int p0 = (int)task * PIXELS_PER_TASK;
    const int p1 = p0 + PIXELS_PER_TASK < d->pixels ? p0 + PIXELS_PER_TASK : d->pixels;
    for (int p = p0; p < p1; p++)
        for (int h = 0; h < d->heads; h++)
            pixel_head(j, p, h, scores, acc, wsum);
}

lr_status lr_temporal_attention(lr_ctx *ctx, const lr_temporal_desc *d, const float *q,
                                const float *k, const float *v, float *out)
{
    lr_status s = check(ctx, d, q, k, v, out);
    if (s != LR_OK)
        return s;
    int *starts = malloc((size_t)d->frames * sizeof *starts);
    if (!starts)
        return lr_fail(ctx, LR_ERR_NOMEM, "temporal attention: out of memory");
    job j = {ctx, d, q, k, v, out, 0, 0, starts, scale_of(d)};
    j.n_windows = window_starts(d, &j.w, starts);
    s = lr_thread_scratch_reserve(ctx, scratch_floats(d->frames, j.w, d->channels / d->heads) *
                                           sizeof(float));
    if (s == LR_OK)
        lr_parallel_for(ctx, (size_t)(d->pixels + PIXELS_PER_TASK - 1) / PIXELS_PER_TASK,
                        run_task, &j);
    free(starts);
    return s;
}

lr_status lr_temporal_attention_ref(lr_ctx *ctx, const lr_temporal_desc *d, const float *q,
                                    const float *k, const float *v, float *out)
{
    lr_status s = check(ctx, d, q, k, v, out);
    if (s != LR_OK)
        return s;
    const int F = d->frames, P = d->pixels, C = d->channels, dh = C / d->heads;
    int *starts = malloc((size_t)F * sizeof *starts);
    double *acc = malloc((size_t)F * C * sizeof *acc), *wsum = malloc((size_t)F * sizeof *wsum);
    double *prob = malloc((size_t)F * sizeof *prob);
    if (!starts || !acc || !wsum || !prob) {
        free(starts), free(acc), free(wsum), free(prob);
        return lr_fail(ctx, LR_ERR_NOMEM, "temporal attention: out of memory");
    }
    int w;
    const int n_windows = window_starts(d, &w, starts);
    const double scale = scale_of(d);
    for (int p = 0; p < P; p++) {
        memset(acc, 0, (size_t)F * C * sizeof *acc);
        memset(wsum, 0, (size_t)F * sizeof *wsum);
        for (int n = 0; n < n_windows; n++)
            for (int i = starts[n]; i < starts[n] + w; i++) {
                const int pos = i - starts[n];
                const double weight = pos + 1 < w - pos ? pos + 1 : w - pos;
                wsum[i] += weight;
                for (int h = 0; h < d->heads; h++) {
                    const float *qi = q + ((size_t)i * P + p) * C + (size_t)h * dh;
                    double max = -INFINITY, sum = 0;
                    for (int jj = 0; jj < w; jj++) {
                        const float *kj = k + ((size_t)(starts[n] + jj) * P + p) * C + (size_t)h * dh;
                        double dot = 0;
                        for (int c = 0; c < dh; c++)
                            dot += (double)qi[c] * kj[c];
                        prob[jj] = dot * scale;
                        max = prob[jj] > max ? prob[jj] : max;
                    }
                    for (int jj = 0; jj < w; jj++)
                        sum += prob[jj] = exp(prob[jj] - max);
                    for (int jj = 0; jj < w; jj++) {
                        const float *vj = v + ((size_t)(starts[n] + jj) * P + p) * C + (size_t)h * dh;
                        for (int c = 0; c < dh; c++)
                            acc[(size_t)i * C + (size_t)h * dh + c] += weight * prob[jj] / sum * vj[c];
                    }
                }
            }
        for (int i = 0; i < F; i++)
            for (int c = 0; c < C; c++)
                out[((size_t)i * P + p) * C + c] = (float)(acc[(size_t)i * C + c] / wsum[i]);
    }
    free(starts), free(acc), free(wsum), free(prob);
    return LR_OK;
}
