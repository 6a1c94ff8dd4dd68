/* Backward bilinear warp with border clamping (warp.h has the definition). Each task is a
 * block of ROWS_PER_TASK output rows for all channels: the coordinates and weights of a run of
 * pixels are computed once and applied to every channel. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"
#include "longrange/parallel.h"
#include "longrange/warp.h"

enum { ROWS_PER_TASK = 8, RUN = 64 };

typedef struct {
    const float *img, *flow;
    float *out;
    int c, h, w;
} warp_job;

static lr_status check_args(lr_ctx *ctx, const char *op, const float *img, int c, int h, int w,
                            const float *flow, const float *out)
{
    size_t plane, n;
    if (!img || !flow || !out)
        return lr_fail(ctx, LR_ERR_ARG, "%s: NULL argument", op);
    if (c < 1 || h < 1 || w < 1)
        return lr_fail(ctx, LR_ERR_ARG, "%s: sizes must be >= 1: c %d, %dx%d", op, c, h, w);
    if (!lr_mul_size((size_t)h, (size_t)w, &plane) || !lr_mul_size(plane, (size_t)c, &n) ||
        !lr_mul_size(n, 2 * sizeof(float), &n))
        return lr_fail(ctx, LR_ERR_NOMEM, "%s: image too large", op);
    uintptr_t o0 = (uintptr_t)out, o1 = o0 + (size_t)c * plane * sizeof(float);
    uintptr_t i0 = (uintptr_t)img, i1 = i0 + (size_t)c * plane * sizeof(float);
    uintptr_t f0 = (uintptr_t)flow, f1 = f0 + 2 * plane * sizeof(float);
    if ((o0 < i1 && i0 < o1) || (o0 < f1 && f0 < o1))
        return lr_fail(ctx, LR_ERR_ARG, "%s: out overlaps img or flow", op);
    return LR_OK;
}

/* clamp with NaN -> lo; comparisons rather than fminf/fmaxf, which are libm calls here */
static inline float clampf(float v, float lo, float hi) { return v > lo ? (v < hi ? v : hi) : lo; }

static void warp_task(void *arg, size_t task, int thread)
{
    const warp_job *j = arg;
    const int w = j->w, h = j->h;
    const size_t plane = (size_t)h * (size_t)w;
    int y_end = (int)task * ROWS_PER_TASK + ROWS_PER_TASK;
    if (y_end > h)
        y_end = h;
    ptrdiff_t i00[RUN], i01[RUN], i10[RUN], i11[RUN];
    float ax[RUN], ay[RUN];
    for (int y = (int)task * ROWS_PER_TASK; y < y_end; y++) {
        for (int x_run = 0; x_run < w; x_run += RUN) {
            int n = w - x_run < RUN ? w - x_run : RUN;
            size_t row = (size_t)y * (size_t)w + (size_t)x_run;
            for (int k = 0; k < n; k++) {
                float sx = clampf((float)(x_run + k) + j->flow[row + k], 0.0f, (float)(w - 1));
                float sy = clampf((float)y + j->flow[plane + row + k], 0.0f, (float)(h - 1));
                /* sx, sy >= 0: truncation is floor, without a libm call */
                int x0 = (int)sx, y0 = (int)sy;
                int x1 = x0 + 1 < w ? x0 + 1 : w - 1, y1 = y0 + 1 < h ? y0 + 1 : h - 1;
                ax[k] = sx - (float)x0;
                ay[k] = sy - (float)y0;
                i00[k] = (ptrdiff_t)y0 * w + x0;
                i01[k] = (ptrdiff_t)y0 * w + x1;
                i10[k] = (ptrdiff_t)y1 * w + x0;
                i11[k] = (ptrdiff_t)y1 * w + x1;
            }
            for (int ch = 0; ch < j->c; ch++) {
                const float *src = j->img + (size_t)ch * plane;
                float *dst = j->out + (size_t)ch * plane + row;
                for (int k = 0; k < n; k++) {
                    float top = src[i00[k]] * (1.0f - ax[k]) + src[i01[k]] * ax[k];
                    float bottom = src[i10[k]] * (1.0f - ax[k]) + src[i11[k]] * ax[k];
                    dst[k] = top * (1.0f - ay[k]) + bottom * ay[k];
                }
            }
        }
    }
}

lr_status lr_warp_bilinear(lr_ctx *ctx, const float *img, int c, int h, int w, const float *flow,
                           float *out)
{
    lr_status s = check_args(ctx, "lr_warp_bilinear", img, c, h, w, flow, out);
    if (s != LR_OK)
        return s;
    warp_job job = {img, flow, out, c, h, w};
    lr_parallel_for(ctx, (size_t)(h + ROWS_PER_TASK - 1) / ROWS_PER_TASK, warp_task, &job);
    return LR_OK;
}

static double clampd(double v, double lo, double hi) { return fmin(fmax(v, lo), hi); }

lr_status lr_warp_bilinear_ref(lr_ctx *ctx, const float *img, int c, int h, int w,
                               const float *flow, float *out)
{
    lr_status s = check_args(ctx, "lr_warp_bilinear_ref", img, c, h, w, flow, out);
    if (s != LR_OK)
        return s;
    const size_t plane = (size_t)h * (size_t)w;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            size_t p = (size_t)y * (size_t)w + (size_t)x;
            double sx = clampd(x + (double)flow[p], 0, w - 1);
            double sy = clampd(y + (double)flow[plane + p], 0, h - 1);
            int x0 = (int)floor(sx), y0 = (int)floor(sy);
            int x1 = x0 + 1 < w ? x0 + 1 : w - 1, y1 = y0 + 1 < h ? y0 + 1 : h - 1;
            double ax = sx - x0, ay = sy - y0;
            for (int ch = 0; ch < c; ch++) {
                const float *src = img + (size_t)ch * plane;
                double top = src[(size_t)y0 * w + x0] * (1 - ax) + src[(size_t)y0 * w + x1] * ax;
                double bottom = src[(size_t)y1 * w + x0] * (1 - ax) + src[(size_t)y1 * w + x1] * ax;
                out[(size_t)ch * plane + p] = (float)(top * (1 - ay) + bottom * ay);
            }
        }
    return LR_OK;
}
