/* Separable image resampling (see resize.h).
 *
 * Each axis gets a table: for every output coordinate, the first input index it reads and a
 * run of normalised weights, computed in double and stored as float. Border replication of
 * the non-antialiased kernels folds the weights of out-of-range taps onto the edge pixel, so
 * every run is contiguous. Each task (a fixed block of output rows of one channel) resamples
 * the input rows it needs along x into its thread's scratch, then along y; the blocks depend
 * on the shapes only, so results are bit-identical for any thread count. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "longrange/parallel.h"
#include "longrange/resize.h"

enum { ROWS_PER_TASK = 16 }; /* output rows of one channel per task */

static double tri(double x)
{
    x = fabs(x);
    return x < 1.0 ? 1.0 - x : 0.0;
}

/* Keys' cubic convolution kernel with parameter a. */
static double cubic(double x, double a)
{
    x = fabs(x);
    if (x <= 1.0)
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    if (x < 2.0)
        return ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a;
    return 0.0;
}

static double kernel(const lr_resize_desc *d, double x)
{
    return d->filter == LR_RESIZE_BILINEAR ? tri(x) : cubic(x, d->cubic_a ? d->cubic_a : -0.5);
}

static int kernel_radius(const lr_resize_desc *d) { return d->filter == LR_RESIZE_BILINEAR ? 1 : 2; }

/* Antialiasing only ever widens the kernel (downscales). */
static bool antialiased(const lr_resize_desc *d, int n_in, int n_out)
{
    return d->antialias && n_out < n_in;
}

/* Taps [*first, *first + *count) and their weights (written to w, which holds at least
 * max_taps(...) entries) for output coordinate o. */
static void axis_weights(const lr_resize_desc *d, int n_in, int n_out, int o, int *first,
                         int *count, double *w)
{
    const double scale = (double)n_in / n_out;
    const int radius = kernel_radius(d);
    if (antialiased(d, n_in, n_out)) {
        /* PIL / PyTorch antialias: kernel stretched by scale, cut at the borders, renormalised */
        double center = scale * (o + 0.5), support = radius * scale;
        int lo = (int)floor(center - support), hi = (int)ceil(center + support);
        if (lo < 0)
            lo = 0;
        if (hi > n_in - 1)
            hi = n_in - 1;
        double total = 0.0;
        for (int j = lo; j <= hi; j++)
            total += w[j - lo] = kernel(d, (j + 0.5 - center) / scale);
        /* drop zero weights at both ends */
        int a = 0, b = hi - lo;
        while (a < b && w[a] == 0.0)
            a++;
        while (b > a && w[b] == 0.0)
            b--;
        for (int k = a; k <= b; k++)
            w[k - a] = total != 0.0 ? w[k] / total : 0.0;
        *first = lo + a;
        *count = b - a + 1;
        return;
    }
    /* half-pixel centres, the kernel at its own width, border pixels replicated */
    double sx = scale * (o + 0.5) - 0.5;
    int base = (int)floor(sx);
    int lo = base - radius + 1, hi = base + radius;
    int clo = lo < 0 ? 0 : (lo > n_in - 1 ? n_in - 1 : lo);
    int chi = hi > n_in - 1 ? n_in - 1 : (hi < 0 ? 0 : hi);
    for (int j = clo; j <= chi; j++)
        w[j - clo] = 0.0;
    double total = 0.0;
    for (int k = lo; k <= hi; k++) {
        int j = k < 0 ? 0 : (k > n_in - 1 ? n_in - 1 : k);
        double wk = kernel(d, sx - k);
        w[j - clo] += wk;
        total += wk;
    }
    int a = 0, b = chi - clo;
    while (a < b && w[a] == 0.0)
        a++;
    while (b > a && w[b] == 0.0)
        b--;
    for (int k = a; k <= b; k++)
        w[k - a] = w[k] / total; /* total is 1 up to rounding */
    *first = clo + a;
    *count = b - a + 1;
}

static int max_taps(const lr_resize_desc *d, int n_in, int n_out)
{
    int radius = kernel_radius(d);
    if (!antialiased(d, n_in, n_out))
        return 2 * radius;
    double support = radius * (double)n_in / n_out;
    double taps = 2.0 * support + 3.0;
    return taps > n_in ? n_in : (int)taps;
}

static lr_status check_args(lr_ctx *ctx, const char *op, const lr_resize_desc *d, const float *in,
                            int c, int h_in, int w_in, const float *out, int h_out, int w_out)
{
    if (!d || !in || !out)
        return lr_fail(ctx, LR_ERR_ARG, "%s: NULL argument", op);
    if (d->filter != LR_RESIZE_BILINEAR && d->filter != LR_RESIZE_BICUBIC)
        return lr_fail(ctx, LR_ERR_ARG, "%s: unknown filter %d", op, (int)d->filter);
    if (d->filter == LR_RESIZE_BICUBIC && !isfinite(d->cubic_a))
        return lr_fail(ctx, LR_ERR_ARG, "%s: cubic_a must be finite", op);
    if (c < 1 || h_in < 1 || w_in < 1 || h_out < 1 || w_out < 1)
        return lr_fail(ctx, LR_ERR_ARG, "%s: sizes must be >= 1: c %d, in %dx%d, out %dx%d", op, c,
                       h_in, w_in, h_out, w_out);
    int hmax = h_in > h_out ? h_in : h_out;
    if ((size_t)c * (size_t)hmax > SIZE_MAX / sizeof(float) / (size_t)(w_in > w_out ? w_in : w_out))
        return lr_fail(ctx, LR_ERR_NOMEM, "%s: image too large", op);
    return LR_OK;
}

/* ---- fast path ---- */

typedef struct {
    int *first, *count;
    float *w; /* [n_out][taps] */
    int taps;
    bool fixed; /* every run is exactly `taps` long (zero-padded), for the unrolled x pass */
} axis_table;

static void table_free(axis_table *t)
{
    free(t->first);
    free(t->count);
    free(t->w);
}

static lr_status table_build(lr_ctx *ctx, const lr_resize_desc *d, int n_in, int n_out,
                             axis_table *t)
{
    memset(t, 0, sizeof *t);
    t->taps = max_taps(d, n_in, n_out);
    t->first = malloc((size_t)n_out * sizeof *t->first);
    t->count = malloc((size_t)n_out * sizeof *t->count);
    t->w = malloc((size_t)n_out * (size_t)t->taps * sizeof *t->w);
    double *wd = malloc(((size_t)t->taps + 4) * sizeof *wd);
    if (!t->first || !t->count || !t->w || !wd) {
        free(wd);
        table_free(t);
        return lr_fail(ctx, LR_ERR_NOMEM, "lr_resize: out of memory for weights");
    }
    /* Runs of the plain kernels are padded with zero weights to the full kernel width (moved
     * inward at the borders), so the x pass can run a fixed-length loop. */
    t->fixed = !antialiased(d, n_in, n_out) && n_in >= t->taps;
    for (int o = 0; o < n_out; o++) {
        axis_weights(d, n_in, n_out, o, &t->first[o], &t->count[o], wd);
        float *w = t->w + (size_t)o * (size_t)t->taps;
        int shift = 0;
        if (t->fixed) {
            int first = t->first[o] + t->taps > n_in ? n_in - t->taps : t->first[o];
            shift = t->first[o] - first;
            for (int k = 0; k < t->taps; k++)
                w[k] = 0.0f;
            t->first[o] = first;
        }
        for (int k = 0; k < t->count[o]; k++)
            w[shift + k] = (float)wd[k];
        if (t->fixed)
            t->count[o] = t->taps;
    }
    free(wd);
    return LR_OK;
}

/* One row of n_in values resampled along x into n_out values. */
static void resample_row(const axis_table *t, const float *restrict s, float *restrict o, int n_out)
{
    if (t->fixed && t->taps == 2) {
        for (int x = 0; x < n_out; x++) {
            const float *w = t->w + 2 * (size_t)x, *p = s + t->first[x];
            o[x] = (0.0f + w[0] * p[0]) + w[1] * p[1];
        }
    } else if (t->fixed && t->taps == 4) {
        for (int x = 0; x < n_out; x++) {
            const float *w = t->w + 4 * (size_t)x, *p = s + t->first[x];
            o[x] = (((0.0f + w[0] * p[0]) + w[1] * p[1]) + w[2] * p[2]) + w[3] * p[3];
        }
    } else {
        for (int x = 0; x < n_out; x++) {
            const float *w = t->w + (size_t)x * (size_t)t->taps, *p = s + t->first[x];
            float acc = 0.0f;
            for (int k = 0; k < t->count[x]; k++)
                acc += w[k] * p[k];
            o[x] = acc;
        }
    }
}

/* o = sum over k of w[k] * row k of s (rows `width` apart), in order of k. */
static void accumulate_rows(float *restrict o, const float *restrict s, const float *w, int count,
                            size_t width)
{
    for (size_t x = 0; x < width; x++)
        o[x] = 0.0f;
    for (int k = 0; k < count; k++) {
        const float wk = w[k];
        const float *restrict r = s + (size_t)k * width;
        for (size_t x = 0; x < width; x++)
            o[x] += wk * r[x];
    }
}

/* A task is a block of ROWS_PER_TASK output rows of one channel. It resamples along x just
 * the input rows that block reads (into its thread's scratch: memory stays bounded and no
 * image-sized intermediate is ever touched), then along y. A row resampled by two blocks is
 * computed the same way by both, so the output does not depend on how tasks meet threads. */
typedef struct {
    lr_ctx *ctx;
    const axis_table *tx, *ty; /* NULL: that axis keeps its size */
    const float *in;
    float *out;
    int h_in, w_in, h_out, w_out, blocks;
} resize_job;

/* Input rows [*lo, *hi) that output rows [y0, y1) read. */
static void block_rows(const axis_table *ty, int y0, int y1, int *lo, int *hi)
{
    *lo = ty->first[y0];
    *hi = ty->first[y0] + ty->count[y0];
    for (int y = y0 + 1; y < y1; y++) {
        if (ty->first[y] < *lo)
            *lo = ty->first[y];
        if (ty->first[y] + ty->count[y] > *hi)
            *hi = ty->first[y] + ty->count[y];
    }
}

static void resize_task(void *arg, size_t task, int thread)
{
    const resize_job *j = arg;
    size_t ch = task / (size_t)j->blocks;
    int y0 = (int)(task % (size_t)j->blocks) * ROWS_PER_TASK;
    int y1 = y0 + ROWS_PER_TASK < j->h_out ? y0 + ROWS_PER_TASK : j->h_out;
    const size_t w_in = (size_t)j->w_in, w_out = (size_t)j->w_out;
    const float *plane = j->in + ch * (size_t)j->h_in * w_in;
    float *out = j->out + ch * (size_t)j->h_out * w_out;
    if (!j->ty) { /* along x only */
        for (int y = y0; y < y1; y++)
            resample_row(j->tx, plane + (size_t)y * w_in, out + (size_t)y * w_out, j->w_out);
        return;
    }
    int lo, hi;
    block_rows(j->ty, y0, y1, &lo, &hi);
    const float *rows = plane + (size_t)lo * w_in; /* rows lo.. of width w_out */
    if (j->tx) {
        float *scratch = lr_thread_scratch(j->ctx, thread);
        for (int r = lo; r < hi; r++)
            resample_row(j->tx, plane + (size_t)r * w_in, scratch + (size_t)(r - lo) * w_out, j->w_out);
        rows = scratch;
    }
    const axis_table *t = j->ty;
    for (int y = y0; y < y1; y++)
        accumulate_rows(out + (size_t)y * w_out, rows + (size_t)(t->first[y] - lo) * w_out,
                        t->w + (size_t)y * (size_t)t->taps, t->count[y], w_out);
}

lr_status lr_resize(lr_ctx *ctx, const lr_resize_desc *d, const float *in, int c, int h_in,
                    int w_in, float *out, int h_out, int w_out)
{
    lr_status s = check_args(ctx, "lr_resize", d, in, c, h_in, w_in, out, h_out, w_out);
    if (s != LR_OK)
        return s;
    if (h_in == h_out && w_in == w_out) { /* the definition gives weight 1 on the pixel itself */
        memmove(out, in, (size_t)c * (size_t)h_out * (size_t)w_out * sizeof(float));
        return LR_OK;
    }
    axis_table tx = {0}, ty = {0};
    resize_job job = {ctx, NULL, NULL, in, out, h_in, w_in, h_out, w_out,
                      (h_out + ROWS_PER_TASK - 1) / ROWS_PER_TASK};
    if (w_in != w_out && (s = table_build(ctx, d, w_in, w_out, &tx)) == LR_OK)
        job.tx = &tx;
    if (s == LR_OK && h_in != h_out && (s = table_build(ctx, d, h_in, h_out, &ty)) == LR_OK)
        job.ty = &ty;
    if (s == LR_OK && job.tx && job.ty) {
        size_t span = 0;
        for (int y0 = 0; y0 < h_out; y0 += ROWS_PER_TASK) {
            int lo, hi;
            block_rows(&ty, y0, y0 + ROWS_PER_TASK < h_out ? y0 + ROWS_PER_TASK : h_out, &lo, &hi);
            if ((size_t)(hi - lo) > span)
                span = (size_t)(hi - lo);
        }
        s = lr_thread_scratch_reserve(ctx, span * (size_t)w_out * sizeof(float));
    }
    if (s == LR_OK)
        lr_parallel_for(ctx, (size_t)c * (size_t)job.blocks, resize_task, &job);
    table_free(&tx);
    table_free(&ty);
    return s;
}

/* ---- reference ---- */

/* Dense [n_out][n_in] weights straight from the definition, in double, independent of the
 * run-building of axis_weights: antialiased, the stretched kernel at every input pixel over
 * its sum; else the kernel at each of its taps, added onto the clamped index, over its sum. */
static double *dense_weights(const lr_resize_desc *d, int n_in, int n_out)
{
    double *m = calloc((size_t)n_out * (size_t)n_in, sizeof *m);
    if (!m)
        return NULL;
    const double scale = (double)n_in / n_out;
    const int radius = kernel_radius(d);
    for (int o = 0; o < n_out; o++) {
        double *row = m + (size_t)o * (size_t)n_in, total = 0.0;
        if (antialiased(d, n_in, n_out)) {
            double center = scale * (o + 0.5);
            for (int j = 0; j < n_in; j++)
                total += row[j] = kernel(d, (j + 0.5 - center) / scale);
        } else {
            double sx = scale * (o + 0.5) - 0.5;
            for (int k = (int)floor(sx) - radius + 1; k <= (int)floor(sx) + radius; k++) {
                double wk = kernel(d, sx - k);
                row[k < 0 ? 0 : k >= n_in ? n_in - 1 : k] += wk;
                total += wk;
            }
        }
        for (int j = 0; j < n_in; j++)
            row[j] = total != 0.0 ? row[j] / total : 0.0;
    }
    return m;
}

lr_status lr_resize_ref(lr_ctx *ctx, const lr_resize_desc *d, const float *in, int c, int h_in,
                        int w_in, float *out, int h_out, int w_out)
{
    lr_status s = check_args(ctx, "lr_resize_ref", d, in, c, h_in, w_in, out, h_out, w_out);
    if (s != LR_OK)
        return s;
    double *wy = dense_weights(d, h_in, h_out), *wx = dense_weights(d, w_in, w_out);
    if (!wy || !wx) {
        free(wy);
        free(wx);
        return lr_fail(ctx, LR_ERR_NOMEM, "lr_resize_ref: out of memory for weights");
    }
    for (int ch = 0; ch < c; ch++) {
        const float *p = in + (size_t)ch * (size_t)h_in * (size_t)w_in;
        for (int y = 0; y < h_out; y++) {
            const double *ry = wy + (size_t)y * (size_t)h_in;
            for (int x = 0; x < w_out; x++) {
                const double *rx = wx + (size_t)x * (size_t)w_in;
                double acc = 0.0;
                for (int i = 0; i < h_in; i++) {
                    if (ry[i] == 0.0)
                        continue;
                    double row = 0.0;
                    for (int j = 0; j < w_in; j++)
                        if (rx[j] != 0.0)
                            row += rx[j] * p[(size_t)i * (size_t)w_in + (size_t)j];
                    acc += ry[i] * row;
                }
                out[((size_t)ch * (size_t)h_out + (size_t)y) * (size_t)w_out + (size_t)x] = (float)acc;
            }
        }
    }
    free(wy);
    free(wx);
    return LR_OK;
}
