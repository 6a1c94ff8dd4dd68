/* bench_attention: exact tiled attention (lr_attention) on 2 threads.
 * Prints a markdown table: best-of-N time, GFLOP/s counting 4 * D * (visible pairs) FLOPs
 * (Q K^T and P V, a multiply-add each; the masked half of a causal pattern is not counted),
 * % of the FMA peak, and the growth of the process's peak RSS during the runs (the inputs
 * are allocated and touched before). The machine is shared: the peak (lr_peak_gflops) is
 * measured between the repetitions of each case, so that both see the same load, and both
 * keep their best.
 * Usage: bench_attention [seconds per case, default 1.5] [--huge]
 *   --huge   instead, one run of one causal head of L = 1,048,576, D = 64 (minutes; the
 *            inputs take 1 GiB, the RSS growth column shows what the kernel adds) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "longrange/attention.h"
#include "longrange/core.h"
#include "longrange/perf.h"

typedef struct {
    int64_t H, Lq, Lk, D;
    bool causal;
    int64_t window, sinks; /* window: keys back from the query (causal) or either side; -1 none */
    lr_dtype dtype;
} bench_case;

static const bench_case cases[] = {
    {8, 4096, 4096, 64, false, -1, 0, LR_F32},   {8, 8192, 8192, 64, false, -1, 0, LR_F32},
    {8, 16384, 16384, 64, false, -1, 0, LR_F32}, {8, 4096, 4096, 64, true, -1, 0, LR_F32},
    {8, 8192, 8192, 64, true, -1, 0, LR_F32},    {8, 16384, 16384, 64, true, -1, 0, LR_F32},
    {8, 4096, 4096, 64, false, -1, 0, LR_BF16},  {8, 16384, 16384, 64, false, -1, 0, LR_BF16},
    {8, 4096, 4096, 64, true, -1, 0, LR_BF16},   {8, 16384, 16384, 64, true, -1, 0, LR_BF16},
    {8, 1024, 16384, 64, false, -1, 0, LR_F32},  {8, 4096, 4096, 128, false, -1, 0, LR_F32},
    {8, 16384, 16384, 64, true, 512, 4, LR_F32},
};

static const bench_case huge = {1, 1048576, 1048576, 64, true, -1, 0, LR_F32};

static void fill(void *data, lr_dtype dt, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        float f = (float)(seed >> 8) / 8388608.0f - 1.0f;
        if (dt == LR_BF16)
            ((uint16_t *)data)[i] = lr_f32_to_bf16(f);
        else
            ((float *)data)[i] = f;
    }
}

static const char *pattern_name(const bench_case *c, char *buf, size_t size)
{
    const char *kind = c->Lq == c->Lk ? "self" : "cross";
    if (c->window >= 0)
        snprintf(buf, size, "%s window %lld + %lld sinks", c->causal ? "causal" : "non-causal", (long long)c->window,
                 (long long)c->sinks);
    else
        snprintf(buf, size, "%s %s", c->causal ? "causal" : "non-causal", kind);
    return buf;
}

static int run_case(lr_ctx *ctx, const bench_case *c, double budget, int min_reps, int threads)
{
    size_t es = lr_dtype_size(c->dtype);
    size_t nq = (size_t)(c->H * c->Lq * c->D), nk = (size_t)(c->H * c->Lk * c->D);
    void *q = malloc(nq * es), *k = malloc(nk * es), *v = malloc(nk * es);
    float *out = malloc(nq * sizeof *out);
    if (!q || !k || !v || !out) {
        fprintf(stderr, "bench_attention: out of memory for L = %lld\n", (long long)c->Lq);
        free(q), free(k), free(v), free(out);
        return 1;
    }
    fill(q, c->dtype, nq, 1);
    fill(k, c->dtype, nk, 2);
    fill(v, c->dtype, nk, 3);
    memset(out, 0, nq * sizeof *out);
    int64_t qs[4] = {1, c->H, c->Lq, c->D}, ks[4] = {1, c->H, c->Lk, c->D};
    lr_tensor tq = lr_tensor_from(q, c->dtype, 4, qs), tk = lr_tensor_from(k, c->dtype, 4, ks);
    lr_tensor tv = lr_tensor_from(v, c->dtype, 4, ks), to = lr_tensor_from(out, LR_F32, 4, qs);
    lr_attn_params p = lr_attn_default_params();
    p.causal = c->causal;
    if (c->window >= 0) {
        p.window_left = c->window;
        p.window_right = c->causal ? -1 : c->window;
        p.n_sink = c->sinks;
    }
    double flops = 4.0 * (double)c->D * (double)lr_attention_pairs(&p, 1, c->H, c->Lq, c->Lk);
    size_t rss0 = lr_peak_rss();
    double best = 1e30, spent = 0, peak = 0;
    int reps = 0;
    while (reps < min_reps || (spent < budget && reps < 50)) {
        double probe = lr_peak_gflops(ctx, threads);
        peak = probe > peak ? probe : peak;
        double t0 = lr_time_now();
        if (lr_attention(ctx, &p, &tq, &tk, &tv, &to) != LR_OK) {
            fprintf(stderr, "bench_attention: %s\n", lr_ctx_last_error(ctx));
            return 1;
        }
        double t = lr_time_now() - t0;
        spent += t;
        best = t < best ? t : best;
        reps++;
    }
    size_t rss1 = lr_peak_rss();
    char name[64];
    double gflops = flops / best * 1e-9;
    printf("| %lld | %lld | %lld | %lld | %s | %s | %.4f | %.1f | %.0f | %.1f | %.1f |\n", (long long)c->Lq,
           (long long)c->Lk, (long long)c->D, (long long)c->H, pattern_name(c, name, sizeof name),
           lr_dtype_name(c->dtype), best, gflops, peak, 100.0 * gflops / peak, (double)(rss1 - rss0) / 1048576.0);
    fflush(stdout);
    free(q), free(k), free(v), free(out);
    return 0;
}

int main(int argc, char **argv)
{
    double budget = 1.5;
    bool with_huge = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--huge") == 0)
            with_huge = true;
        else if ((budget = atof(argv[i])) <= 0) {
            fprintf(stderr, "usage: bench_attention [seconds per case] [--huge]\n");
            return 2;
        }
    }
    enum { THREADS = 2 };
    lr_ctx_params cp = lr_ctx_default_params();
    cp.n_threads = THREADS;
    lr_ctx *ctx;
    if (lr_ctx_create(&ctx, &cp) != LR_OK) {
        fprintf(stderr, "bench_attention: cannot create a context\n");
        return 1;
    }
    printf("\nlr_attention, %d threads, %s kernels; FLOPs = 4 D (visible pairs); peak = FMA probe\n\n", THREADS,
           lr_cpu_level_name(lr_ctx_cpu(ctx)));
    printf("| Lq | Lk | D | H | pattern | dtype | best s | GFLOP/s | peak GFLOP/s | %% peak | RSS growth MiB |\n");
    printf("| ---: | ---: | ---: | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |\n");
    int bad = 0;
    if (with_huge)
        bad |= run_case(ctx, &huge, 0, 1, THREADS);
    else
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
            bad |= run_case(ctx, &cases[i], budget, 3, THREADS);
    lr_ctx_destroy(ctx);
    return bad;
}
