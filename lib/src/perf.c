/* lr_peak_gflops: times multiply-add chains on n threads at once and keeps the best of
 * many short rounds: on a shared machine some round runs without being preempted, so the
 * result is what the cores reach rather than what other work left over. */
#include "longrange/perf.h"
#include "longrange/parallel.h"
#include "perf_internal.h"

typedef float v4sf __attribute__((vector_size(16)));

#define CHAINS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define DECLARE(i) v4sf acc##i = {1.0f, 1.0f, 1.0f, (float)(i)};
#define STEP(i) acc##i = acc##i * scale + bias;

/* The reference level has no FMA: a multiply and an add per step, 4 lanes wide (the SSE
 * every x86-64 has). */
static double fma_probe_ref(int64_t iters)
{
    CHAINS(DECLARE)
    v4sf scale = {0.999999f, 0.999999f, 0.999999f, 0.999999f}, bias = {1e-6f, 1e-6f, 1e-6f, 1e-6f};
    for (int64_t it = 0; it < iters; it++) {
        CHAINS(STEP)
        __asm__ volatile("" : "+x"(acc0), "+x"(acc1), "+x"(acc2), "+x"(acc3), "+x"(acc4), "+x"(acc5),
                         "+x"(acc6), "+x"(acc7), "+x"(acc8), "+x"(acc9), "+x"(acc10), "+x"(acc11));
    }
    return (double)iters * 12 * 4 * 2;
}

static double fma_probe(lr_cpu_level level, int64_t iters)
{
    switch (level) {
    case LR_CPU_AVX512: return lr_fma_probe_avx512(iters);
    case LR_CPU_AVX2: return lr_fma_probe_avx2(iters);
    case LR_CPU_REF: break;
    }
    return fma_probe_ref(iters);
}

typedef struct {
    lr_cpu_level level;
    int64_t iters;
} probe_job;

static void probe_task(void *arg, size_t task, int thread)
{
    const probe_job *job = arg;
    fma_probe(job->level, job->iters);
}

double lr_peak_gflops(lr_ctx *ctx, int n_threads)
{
    enum { ROUNDS = 30 };
    const double round_seconds = 0.005;
    if (n_threads > lr_ctx_threads(ctx))
        n_threads = lr_ctx_threads(ctx);
    if (n_threads < 1)
        n_threads = 1;
    probe_job job = {.level = lr_ctx_cpu(ctx), .iters = 1 << 14};
    /* Calibrate on one thread (this also brings the core to its working clock). */
    double flops, seconds;
    for (;;) {
        double start = lr_time_now();
        flops = fma_probe(job.level, job.iters);
        seconds = lr_time_now() - start;
        if (seconds > 0.01)
            break;
        job.iters *= 4;
    }
    double flops_per_iter = flops / (double)job.iters;
    job.iters = (int64_t)((double)job.iters * round_seconds / seconds) + 1;
    double best = 0;
    for (int r = 0; r < ROUNDS; r++) {
        double start = lr_time_now();
        lr_parallel_for(ctx, (size_t)n_threads, probe_task, &job);
        seconds = lr_time_now() - start;
        double gflops = (double)n_threads * flops_per_iter * (double)job.iters / seconds * 1e-9;
        if (gflops > best)
            best = gflops;
    }
    return best;
}
