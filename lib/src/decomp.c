/* Series decomposition (longrange/decomp.h).
 *
 * A task takes one batch item and a group of up to GROUP neighbouring channels, which sit
 * next to each other in every time step. The window sum slides in double: add the value
 * entering, drop the one leaving. The values leaving have to be the originals even when an
 * output overwrites x, so the last `kernel` originals of the group live in a ring in the
 * thread's scratch.
 *
 * Full groups of GROUP channels take decomp_group, which does the same IEEE operations in
 * the same order on GCC vectors of 4 channels (so the results are the generic loop's, bit
 * for bit, in each of its target_clones: AVX-512, AVX2, baseline), keeps the ring positions
 * as counters instead of divisions, and moves fixed-size rows with no memcpy call per step.
 * Groups cut short by the channel count take the generic loop. */
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

/* The vector path works on quads of 4 channels: 4 floats and the 4 doubles they widen to
 * are native vectors from AVX2 on (gcc lowers generic vectors wider than the machine's
 * poorly). Memory goes through an unaligned, aliasing vector type. Macros, not functions: a
 * vector argument or result would change the ABI between the clones (gcc's -Wpsabi). */
typedef float quad_f32 __attribute__((vector_size(4 * sizeof(float))));
typedef double quad_f64 __attribute__((vector_size(4 * sizeof(double))));
typedef float quad_f32_unaligned __attribute__((vector_size(4 * sizeof(float)), aligned(4), may_alias));
#define load_quad(p) ((quad_f32) * (const quad_f32_unaligned *)(p))
#define store_quad(p, v) (*(quad_f32_unaligned *)(p) = (v))
#define widen(v) __builtin_convertvector((v), quad_f64)
#define EACH_QUAD(M) M(0) M(1) M(2) M(3) /* GROUP = 16 channels */

/* One full group: x, seasonal and trend point at the group's first channel, rows C apart.
 * Per channel these are decomp_task's operations in its order; the entering value is read
 * from x (which the ring copy holds too) before the leaving one's slot is overwritten. */
__attribute__((target_clones("avx512f", "avx2", "default")))
static void decomp_group(const float *x, int64_t L, int64_t C, int64_t K, float *ring, float *seasonal,
                         float *trend)
{
    const int64_t h = (K - 1) / 2;
    float first[GROUP]; /* x[0], which an output may overwrite */
    memcpy(first, x, sizeof first);
#define SUM_INIT(u) quad_f64 sum##u = (double)(h + 1) * widen(load_quad(first + 4 * u));
    EACH_QUAD(SUM_INIT)
    for (int64_t j = 1; j <= h; j++) {
        const float *xj = x + (j < L ? j : L - 1) * C;
#define SUM_ADD(u) sum##u += widen(load_quad(xj + 4 * u));
        EACH_QUAD(SUM_ADD)
    }
    for (int64_t j = 0; j <= h && j < L; j++)
        memcpy(ring + (j % K) * GROUP, x + j * C, GROUP * sizeof(float));

    /* ring slots of t, t + h + 1 (entering) and t - h (leaving; the same as the entering
     * one's, as K = 2h + 1), and of the last step */
    int64_t now = 0, in_slot = (h + 1) % K, out_slot = (h + 1) % K;
    const int64_t last_slot = (L - 1) % K;
    for (int64_t t = 0; t < L; t++) {
        const int64_t in = t + h + 1;
        const float *leave = t - h > 0 ? ring + out_slot * GROUP : first;
        const float *enter = in < L ? x + in * C : ring + last_slot * GROUP;
        const float *xt = ring + now * GROUP;
        float *s_out = seasonal ? seasonal + t * C : NULL, *t_out = trend ? trend + t * C : NULL;
#define SLIDE(u)                                                                            \
        {                                                                                   \
            const quad_f32 tr = __builtin_convertvector(sum##u / (double)K, quad_f32);      \
            const quad_f32 gone = load_quad(leave + 4 * u), come = load_quad(enter + 4 * u); \
            const quad_f32 now_x = load_quad(xt + 4 * u); /* before a kernel of 1 reuses it */ \
            sum##u -= widen(gone);                                                          \
            sum##u += widen(come);                                                          \
            if (in < L)                                                                     \
                store_quad(ring + in_slot * GROUP + 4 * u, come);                           \
            if (s_out)                                                                      \
                store_quad(s_out + 4 * u, now_x - tr);                                      \
            if (t_out)                                                                      \
                store_quad(t_out + 4 * u, tr);                                              \
        }
        EACH_QUAD(SLIDE)
        now = now + 1 == K ? 0 : now + 1;
        in_slot = in_slot + 1 == K ? 0 : in_slot + 1;
        out_slot = out_slot + 1 == K ? 0 : out_slot + 1;
    }
#undef SUM_INIT
#undef SUM_ADD
#undef SLIDE
}

static void decomp_task(void *arg, size_t task, int thread)
{
    const decomp_job *job = arg;
    const int64_t L = job->length, C = job->channels, K = job->kernel, h = (K - 1) / 2;
    const int64_t b = (int64_t)task / job->groups, c0 = (int64_t)task % job->groups * GROUP;
    const int64_t n = C - c0 < GROUP ? C - c0 : GROUP;
    const float *x = job->x + b * L * C + c0;
    float *ring = lr_thread_scratch(job->ctx, thread); /* [K][GROUP]: x[t] at t mod K */
    if (n == GROUP) {
        decomp_group(x, L, C, K, ring, job->seasonal ? job->seasonal + b * L * C + c0 : NULL,
                     job->trend ? job->trend + b * L * C + c0 : NULL);
        return;
    }
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
