/* bench_conv: lr_conv2d / lr_conv_transpose2d on real layer shapes, next to lr_sgemm on the
 * GEMM each one amounts to (out[cout/groups x pixels] = W[cout/groups x K] * col[K x pixels],
 * K = cin/groups * kh * kw; transposed: col[cout/groups * kh * kw x pixels] = W^T * in), so
 * the table shows what im2col, banding and the fused epilogue cost on top of the GEMM.
 * Depthwise layers have no useful GEMM form (K = kh * kw per channel): only % of peak.
 * Stride-1 ungrouped layers can take either of lr_conv2d's paths, the implicit GEMM or the
 * direct kernel for few output channels: both are timed (LR_CONV_PATH=gemm / =direct, the
 * switch conv.c reads for this), next to what lr_conv2d picks by itself.
 * Prints a markdown table: best-of-N time, GFLOP/s, % of the peak lr_peak_gflops measures in
 * the same run, the GEMM-path and direct-path figures, the lr_sgemm figure and the ratio, and
 * the process's peak RSS so far.
 * Usage: bench_conv [seconds per measurement, default 3] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "longrange/conv.h"
#include "longrange/core.h"
#include "longrange/gemm.h"
#include "longrange/perf.h"

typedef struct {
    const char *name;
    int cin, cout, h, w, k, stride, pad, groups;
    int transposed;
} layer;

static const layer layers[] = {
    {"3x3 64->64 (SR body)", 64, 64, 256, 256, 3, 1, 1, 1, 0},
    {"3x3 3->64 (SR head)", 3, 64, 256, 256, 3, 1, 1, 1, 0},
    {"3x3 64->12 (SR tail)", 64, 12, 256, 256, 3, 1, 1, 1, 0},
    {"1x1 64->64", 64, 64, 256, 256, 1, 1, 0, 1, 0},
    {"FSRCNN 5x5 1->56", 1, 56, 128, 128, 5, 1, 2, 1, 0},
    {"FSRCNN 1x1 56->12", 56, 12, 128, 128, 1, 1, 0, 1, 0},
    {"FSRCNN 3x3 12->12", 12, 12, 128, 128, 3, 1, 1, 1, 0},
    {"FSRCNN 1x1 12->56", 12, 56, 128, 128, 1, 1, 0, 1, 0},
    {"ESPCN 5x5 1->64", 1, 64, 128, 128, 5, 1, 2, 1, 0},
    {"ESPCN 3x3 64->32", 64, 32, 128, 128, 3, 1, 1, 1, 0},
    {"ESPCN 3x3 32->4", 32, 4, 128, 128, 3, 1, 1, 1, 0},
    {"RDN 3x3 64->4 (growth)", 64, 4, 128, 128, 3, 1, 1, 1, 0},
    {"RDN 3x3 80->4 (growth)", 80, 4, 128, 128, 3, 1, 1, 1, 0},
    {"RDN 1x1 68->64 (LFF)", 68, 64, 128, 128, 1, 1, 0, 1, 0},
    {"RDN 3x3 32->12", 32, 12, 128, 128, 3, 1, 1, 1, 0},
    {"3x3 64->24", 64, 24, 128, 128, 3, 1, 1, 1, 0},
    {"3x3 64->32", 64, 32, 128, 128, 3, 1, 1, 1, 0},
    {"3x3 16->16", 16, 16, 128, 128, 3, 1, 1, 1, 0},
    {"dw 3x3 96", 96, 96, 128, 128, 3, 1, 1, 96, 0},
    {"dw 5x5 96", 96, 96, 128, 128, 5, 1, 2, 96, 0},
    {"dw 3x3 96 stride 2", 96, 96, 128, 128, 3, 2, 1, 96, 0},
    {"transposed k2 s2 16->16", 16, 16, 128, 128, 2, 2, 0, 1, 1},
    {"transposed k4 s2 p1 64->32", 64, 32, 64, 64, 4, 2, 1, 1, 1},
};

static void fill_random(float *x, size_t n, unsigned *state)
{
    for (size_t i = 0; i < n; i++) {
        *state = *state * 1664525u + 1013904223u;
        x[i] = (float)(*state >> 8) / 8388608.0f - 1.0f;
    }
}

typedef struct {
    const layer *l;
    lr_conv2d_desc d;
    int ho, wo;
    float *in, *weight, *bias, *out;
    /* the equivalent GEMM (M == 0: none) */
    int64_t M, N, K;
    float *A, *B, *C;
} problem;

static void fail(lr_ctx *ctx)
{
    fprintf(stderr, "bench_conv: %s\n", lr_ctx_last_error(ctx));
    exit(1);
}

static void run_conv(lr_ctx *ctx, problem *p)
{
    const layer *l = p->l;
    lr_status s = l->transposed
                      ? lr_conv_transpose2d(ctx, &p->d, p->in, l->cin, l->h, l->w, p->weight, p->bias, l->cout, p->out)
                      : lr_conv2d(ctx, &p->d, p->in, l->cin, l->h, l->w, p->weight, p->bias, l->cout, p->out);
    if (s != LR_OK)
        fail(ctx);
}

static void run_gemm(lr_ctx *ctx, problem *p)
{
    if (lr_sgemm(ctx, LR_NO_TRANS, LR_NO_TRANS, p->M, p->N, p->K, 1.0f, p->A, p->K, p->B, p->N, 0.0f, p->C, p->N) !=
        LR_OK)
        fail(ctx);
}

typedef void (*run_fn)(lr_ctx *ctx, problem *p);

static double best_time(run_fn fn, lr_ctx *ctx, problem *p, double seconds)
{
    enum { MIN_REPS = 2, MAX_REPS = 500 };
    double best = INFINITY, start = lr_time_now();
    for (int rep = 0; rep < MAX_REPS && (rep < MIN_REPS || lr_time_now() - start < seconds); rep++) {
        double t0 = lr_time_now();
        fn(ctx, p);
        best = fmin(best, lr_time_now() - t0);
    }
    return best;
}

/* A pool's idle workers spin for a while after a call; let them sleep between turns. */
static void pause_for_idle_workers(void)
{
    struct timespec ts = {0, 150 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

static problem make_problem(const layer *l, unsigned *seed)
{
    problem p = {.l = l};
    p.d = lr_conv2d_default(l->k, l->k);
    p.d.stride_h = p.d.stride_w = l->stride;
    p.d.pad_top = p.d.pad_left = p.d.pad_bottom = p.d.pad_right = l->pad;
    p.d.groups = l->groups;
    p.d.act = LR_ACT_RELU;
    if (l->transposed)
        lr_conv_transpose2d_out_size(&p.d, l->h, l->w, &p.ho, &p.wo);
    else
        lr_conv2d_out_size(&p.d, l->h, l->w, &p.ho, &p.wo);
    size_t n_in = (size_t)l->cin * l->h * l->w, n_out = (size_t)l->cout * p.ho * p.wo;
    size_t n_w = (size_t)l->cout * (l->cin / l->groups) * l->k * l->k;
    p.in = malloc(n_in * sizeof(float));
    p.weight = malloc(n_w * sizeof(float));
    p.bias = malloc((size_t)l->cout * sizeof(float));
    p.out = malloc(n_out * sizeof(float));
    if (!p.in || !p.weight || !p.bias || !p.out) {
        fprintf(stderr, "bench_conv: out of memory\n");
        exit(1);
    }
    fill_random(p.in, n_in, seed);
    fill_random(p.weight, n_w, seed);
    fill_random(p.bias, (size_t)l->cout, seed);
    if (l->groups == 1) {
        if (l->transposed) {
            p.M = (int64_t)l->cout * l->k * l->k;
            p.N = (int64_t)l->h * l->w;
            p.K = l->cin;
        } else {
            p.M = l->cout;
            p.N = (int64_t)p.ho * p.wo;
            p.K = (int64_t)l->cin * l->k * l->k;
        }
        p.A = malloc((size_t)(p.M * p.K) * sizeof(float));
        p.B = malloc((size_t)(p.K * p.N) * sizeof(float));
        p.C = malloc((size_t)(p.M * p.N) * sizeof(float));
        if (!p.A || !p.B || !p.C) {
            fprintf(stderr, "bench_conv: out of memory\n");
            exit(1);
        }
        fill_random(p.A, (size_t)(p.M * p.K), seed);
        fill_random(p.B, (size_t)(p.K * p.N), seed);
    }
    return p;
}

static void free_problem(problem *p)
{
    free(p->in);
    free(p->weight);
    free(p->bias);
    free(p->out);
    free(p->A);
    free(p->B);
    free(p->C);
}

static double conv_flops(const problem *p)
{
    const layer *l = p->l;
    double taps = (double)l->k * l->k;
    if (l->transposed)
        return 2.0 * l->cin * l->h * l->w * (double)(l->cout / l->groups) * taps;
    return 2.0 * l->cout * (double)p->ho * p->wo * (double)(l->cin / l->groups) * taps;
}

typedef struct {
    const layer *l;
    int threads;
    double flops, seconds, gemm_seconds, rss_mib;
    double path_seconds[2]; /* lr_conv2d forced onto the GEMM path, the direct path */
} row;

static const char *const path_names[2] = {"gemm", "direct"};

/* Both paths exist for ungrouped stride-1 convolutions (and not too wide rows). */
static int has_both_paths(const layer *l) { return !l->transposed && l->groups == 1 && l->stride == 1; }

int main(int argc, char **argv)
{
    double budget = argc > 1 ? atof(argv[1]) : 3.0;
    if (!(budget > 0)) {
        fprintf(stderr, "usage: bench_conv [seconds per measurement]\n");
        return 2;
    }
    enum { MAX_THREADS = 2, ROUNDS = 3, N_LAYERS = sizeof layers / sizeof layers[0] };
    lr_ctx *ctx[MAX_THREADS + 1] = {0};
    double peak[MAX_THREADS + 1] = {0};
    for (int t = 1; t <= MAX_THREADS; t++) {
        lr_ctx_params cp = lr_ctx_default_params();
        cp.n_threads = t;
        if (lr_ctx_create(&ctx[t], &cp) != LR_OK) {
            fprintf(stderr, "bench_conv: cannot create a context with %d threads\n", t);
            return 1;
        }
    }
    row rows[N_LAYERS * MAX_THREADS];
    int n_rows = 0;
    unsigned seed = 12345;
    for (size_t li = 0; li < N_LAYERS; li++) {
        problem p = make_problem(&layers[li], &seed);
        for (int t = 1; t <= MAX_THREADS; t++) {
            peak[t] = fmax(peak[t], lr_peak_gflops(ctx[t], t));
            row *r = &rows[n_rows++];
            *r = (row){.l = p.l, .threads = t, .flops = conv_flops(&p), .seconds = INFINITY,
                       .gemm_seconds = INFINITY, .path_seconds = {INFINITY, INFINITY}};
            /* the row's measurements share its budget */
            int measurements = 1 + (p.M ? 1 : 0) + (has_both_paths(p.l) ? 2 : 0);
            double turn = budget / (measurements * ROUNDS);
            run_conv(ctx[t], &p); /* untimed: warms caches, page tables and the pool */
            if (p.M)
                run_gemm(ctx[t], &p);
            for (int round = 0; round < ROUNDS; round++) {
                r->seconds = fmin(r->seconds, best_time(run_conv, ctx[t], &p, turn));
                pause_for_idle_workers();
                if (p.M) {
                    r->gemm_seconds = fmin(r->gemm_seconds, best_time(run_gemm, ctx[t], &p, turn));
                    pause_for_idle_workers();
                }
                for (int path = 0; path < 2 && has_both_paths(p.l); path++) {
                    setenv("LR_CONV_PATH", path_names[path], 1);
                    run_conv(ctx[t], &p);
                    r->path_seconds[path] = fmin(r->path_seconds[path], best_time(run_conv, ctx[t], &p, turn));
                    unsetenv("LR_CONV_PATH");
                    pause_for_idle_workers();
                }
            }
            r->rss_mib = (double)lr_peak_rss() / (1024.0 * 1024.0);
            fprintf(stderr, "bench_conv: %s on %d thread(s) done\n", p.l->name, t);
        }
        free_problem(&p);
    }

    printf("## conv2d (CHW float32, bias + ReLU fused), CPU level %s\n\n", lr_cpu_level_name(lr_ctx_cpu(ctx[1])));
    printf("Equivalent GEMM: lr_sgemm on out[cout x pixels] = W[cout x K] * col[K x pixels] "
           "(transposed: col[cout*k*k x pixels] = W^T * in). Peak (lr_peak_gflops, best of the run): "
           "%.1f GFLOP/s on 1 thread, %.1f on 2. Best of N within %.1f s per row.\n\n",
           peak[1], peak[2], budget);
    printf("lr_conv2d's GEMM path and direct path forced (LR_CONV_PATH) where both apply.\n\n");
    printf("| layer | input | threads | ms | GFLOP/s | %% of peak | GEMM path | direct path | lr_sgemm GFLOP/s | "
           "conv/lr_sgemm | peak RSS MiB |\n");
    printf("|:---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < n_rows; i++) {
        const row *r = &rows[i];
        double gflops = r->flops / r->seconds * 1e-9;
        printf("| %s | %dx%dx%d | %d | %.2f | %.1f | %.0f%% |", r->l->name, r->l->cin, r->l->h, r->l->w, r->threads,
               r->seconds * 1e3, gflops, 100 * gflops / peak[r->threads]);
        for (int path = 0; path < 2; path++) {
            if (isfinite(r->path_seconds[path]))
                printf(" %.1f |", r->flops / r->path_seconds[path] * 1e-9);
            else
                printf(" - |");
        }
        if (isfinite(r->gemm_seconds)) {
            double gemm_gflops = r->flops / r->gemm_seconds * 1e-9;
            printf(" %.1f | %.2f |", gemm_gflops, gflops / gemm_gflops);
        } else {
            printf(" - | - |");
        }
        printf(" %.0f |\n", r->rss_mib);
    }
    for (int t = 1; t <= MAX_THREADS; t++)
        lr_ctx_destroy(ctx[t]);
    return 0;
}
