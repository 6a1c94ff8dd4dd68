/* Series decomposition (longrange/decomp.h).
 *
 * A task takes one batch item and a group of up to GROUP neighbouring channels, which sit
 * next to each other in every time step. The window sum slides in double: add the value
 * entering, drop the one leaving. The values leaving have to be the originals even when an
 * output overwrites x, so the last `kernel` originals of the group live in a ring in the
 * thread's scratch. */
#include <stdint.h>
#include <string.h>

#include "internal.h"
#include "longrange/decomp.h"
#include "longrange/parallel.h"

enum { GROUP = 16 };

typedef struct {
    lr_ctx *ctx;
    int64_t length, channels, kernel, groups;
    const float *x;
    float *seasonal, *trend;
} decomp_job;

static void decomp_task(void *arg, size_t task, int thread)
{
    const decomp_job *job = arg;
    const int64_t L = job->length, C = job->channels, K = job->kernel, h = (K - 1) / 2;
    const int64_t b = (int64_t)task / job->groups, c0 = (int64_t)task % job->groups * GROUP;
    const int64_t n = C - c0 < GROUP ? C - c0 : GROUP;
    const float *x = job->x + b * L * C + c0;
    float *ring = lr_thread_scratch(job->ctx, thread); /* [K][GROUP]: x[t] at t mod K */
    double sum[GROUP];
    float first[GROUP]; /* x[0], which an output may overwrite */
    memcpy(first, x, (size_t)n * sizeof(float));

    /* The window of t = 0: x[0] repeated h + 1 times, then x[1..h] (clamped). */
    for (int64_t c = 0; c < n; c++)
        sum[c] = (double)(h + 1) * x[c];
    for (int64_t j = 1; j <= h; j++)
        for (int64_t c = 0; c < n; c++)
            sum[c] += x[(j < L ? j : L - 1) * C + c];
    for (int64_t j = 0; j <= h && j < L; j++)
        memcpy(ring + (j % K) * GROUP, x + j * C, (size_t)n * sizeof(float));

    for (int64_t t = 0; t < L; t++) {
        const float *now = ring + (t % K) * GROUP;
        float xt[GROUP], tr[GROUP];
        memcpy(xt, now, (size_t)n * sizeof(float));
        for (int64_t c = 0; c < n; c++)
            tr[c] = (float)(sum[c] / (double)K);
        /* Slide: x[t - h] leaves (clamped to the first), x[t + h + 1] enters (clamped to the
         * last). The leaving value's slot is the one the entering value takes, so it is taken
         * off first; the entering value is read before this step writes any output. */
        int64_t in = t + h + 1, out = t - h;
        const float *leave = out > 0 ? ring + (out % K) * GROUP : first;
        for (int64_t c = 0; c < n; c++)
            sum[c] -= leave[c];
        if (in < L)
            memcpy(ring + (in % K) * GROUP, x + in * C, (size_t)n * sizeof(float));
        const float *enter = ring + ((in < L ? in : L - 1) % K) * GROUP;
        for (int64_t c = 0; c < n; c++)
            sum[c] += enter[c];
        float *s_out = job->seasonal ? job->seasonal + (b * L + t) * C + c0 : NULL;
        float *t_out = job->trend ? job->trend + (b * L + t) * C + c0 : NULL;
        for (int64_t c = 0; c < n; c++) {
            if (s_out)
                s_out[c] = xt[c] - tr[c];
            if (t_out)
                t_out[c] = tr[c];
        }
    }
}

lr_status lr_series_decomp(lr_ctx *ctx, int64_t batch, int64_t length, int64_t channels,
                           int64_t kernel, const float *x, float *seasonal, float *trend)
{
    if (!ctx || !x)
        return lr_fail(ctx, LR_ERR_ARG, "series decomposition: missing context or input");
    if (batch < 0 || length < 1 || channels < 1)
        return lr_fail(ctx, LR_ERR_ARG, "series decomposition: batch %lld, length %lld, %lld channels",
                       (long long)batch, (long long)length, (long long)channels);
    if (kernel < 1 || kernel % 2 == 0 || kernel > (int64_t)1 << 24)
        return lr_fail(ctx, LR_ERR_ARG, "series decomposition: moving-average kernel %lld must be odd "
                       "and positive", (long long)kernel);
    if (batch > INT64_MAX / length / channels)
        return lr_fail(ctx, LR_ERR_ARG, "series decomposition: size overflows");
    lr_status s = lr_thread_scratch_reserve(ctx, (size_t)kernel * GROUP * sizeof(float));
    if (s != LR_OK || batch == 0 || (!seasonal && !trend))
        return s;
    decomp_job job = {ctx, length, channels, kernel, (channels + GROUP - 1) / GROUP, x, seasonal, trend};
    lr_parallel_for(ctx, (size_t)(batch * job.groups), decomp_task, &job);
    return LR_OK;
}
