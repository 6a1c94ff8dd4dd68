/* bench_gemm: lr_sgemm against OpenBLAS sgemm, measured in the same run.
 * Prints a markdown table: best-of-N time, GFLOP/s, % of the peak lr_peak_gflops measures
 * now, the OpenBLAS figure and the ratio, and the process's peak RSS so far.
 * The two libraries take turns in a few rounds of repetitions, so that noise from other
 * work on the machine hits both alike; between turns the bench sleeps, because a pool's
 * idle workers keep spinning for a while after a call and would steal the other library's
 * cores. Usage: bench_gemm [seconds per measurement, default 8] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "longrange/core.h"
#include "longrange/gemm.h"
#include "longrange/perf.h"

#ifdef HAVE_OPENBLAS
#include <cblas.h>
#endif

typedef struct {
    int64_t M, N, K;
    lr_trans ta, tb;
} shape;

static const shape shapes[] = {
    {512, 512, 512, LR_NO_TRANS, LR_NO_TRANS},
    {1024, 1024, 1024, LR_NO_TRANS, LR_NO_TRANS},
    {2048, 2048, 2048, LR_NO_TRANS, LR_NO_TRANS},
    {4096, 4096, 4096, LR_NO_TRANS, LR_NO_TRANS},
    {4096, 4096, 64, LR_NO_TRANS, LR_TRANS},    /* attention scores: Q K^T */
    {4096, 64, 4096, LR_NO_TRANS, LR_NO_TRANS}, /* attention output: P V */
};

static void fill_random(float *x, size_t n, unsigned *state)
{
    for (size_t i = 0; i < n; i++) {
        *state = *state * 1664525u + 1013904223u;
        x[i] = (float)(*state >> 8) / 8388608.0f - 1.0f;
    }
}

#ifdef HAVE_OPENBLAS
static void openblas_sgemm(lr_ctx *ctx, const shape *s, const float *A, const float *B, float *C)
{
    cblas_sgemm(CblasRowMajor, s->ta == LR_TRANS ? CblasTrans : CblasNoTrans,
                s->tb == LR_TRANS ? CblasTrans : CblasNoTrans, (int)s->M, (int)s->N, (int)s->K, 1.0f,
                A, s->ta == LR_TRANS ? (int)s->M : (int)s->K, B, s->tb == LR_TRANS ? (int)s->K : (int)s->N,
                0.0f, C, (int)s->N);
}
#endif

typedef void (*sgemm_fn)(lr_ctx *ctx, const shape *s, const float *A, const float *B, float *C);

static void ours_sgemm(lr_ctx *ctx, const shape *s, const float *A, const float *B, float *C)
{
    lr_status st = lr_sgemm(ctx, s->ta, s->tb, s->M, s->N, s->K, 1.0f, A, s->ta == LR_TRANS ? s->M : s->K,
                            B, s->tb == LR_TRANS ? s->K : s->N, 0.0f, C, s->N);
    if (st != LR_OK) {
        fprintf(stderr, "bench_gemm: %s\n", lr_ctx_last_error(ctx));
        exit(1);
    }
}

/* Best time of fn over repetitions until `seconds` have passed (at least MIN_REPS). */
static double best_time(sgemm_fn fn, lr_ctx *ctx, const shape *s, const float *A, const float *B,
                        float *C, double seconds)
{
    enum { MIN_REPS = 2, MAX_REPS = 500 };
    double best = INFINITY, start = lr_time_now();
    for (int rep = 0; rep < MAX_REPS && (rep < MIN_REPS || lr_time_now() - start < seconds); rep++) {
        double t0 = lr_time_now();
        fn(ctx, s, A, B, C);
        best = fmin(best, lr_time_now() - t0);
    }
    return best;
}

#ifdef HAVE_OPENBLAS
static void pause_for_idle_workers(void)
{
    struct timespec ts = {0, 150 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

/* Largest |x - y| over the largest |y|. */
static double max_rel_diff(const float *x, const float *y, size_t n)
{
    double diff = 0, scale = 0;
    for (size_t i = 0; i < n; i++) {
        diff = fmax(diff, fabs((double)x[i] - (double)y[i]));
        scale = fmax(scale, fabs((double)y[i]));
    }
    return scale > 0 ? diff / scale : diff;
}
#endif

/* One row of the table, printed at the end: "% of peak" uses the best peak seen all run. */
typedef struct {
    const shape *s;
    int threads;
    double seconds, peer_seconds, diff, rss_mib;
} row;

int main(int argc, char **argv)
{
    double budget = argc > 1 ? atof(argv[1]) : 8.0;
    if (!(budget > 0)) {
        fprintf(stderr, "usage: bench_gemm [seconds per measurement]\n");
        return 2;
    }
    enum { MAX_THREADS = 2, ROUNDS = 3, N_SHAPES = sizeof shapes / sizeof shapes[0] };
    lr_ctx *ctx[MAX_THREADS + 1] = {0};
    double peak[MAX_THREADS + 1] = {0};
    for (int t = 1; t <= MAX_THREADS; t++) {
        lr_ctx_params p = lr_ctx_default_params();
        p.n_threads = t;
        if (lr_ctx_create(&ctx[t], &p) != LR_OK) {
            fprintf(stderr, "bench_gemm: cannot create a context with %d threads\n", t);
            return 1;
        }
    }

    row rows[N_SHAPES * MAX_THREADS];
    int n_rows = 0;
    unsigned seed = 12345;
    for (size_t si = 0; si < N_SHAPES; si++) {
        const shape *s = &shapes[si];
        size_t a_n = (size_t)(s->M * s->K), b_n = (size_t)(s->K * s->N), c_n = (size_t)(s->M * s->N);
        float *A = malloc(a_n * sizeof *A), *B = malloc(b_n * sizeof *B);
        float *C = malloc(c_n * sizeof *C), *C_peer = malloc(c_n * sizeof *C_peer); /* OpenBLAS writes here */
        if (!A || !B || !C || !C_peer) {
            fprintf(stderr, "bench_gemm: out of memory\n");
            return 1;
        }
        fill_random(A, a_n, &seed);
        fill_random(B, b_n, &seed);
        for (int t = 1; t <= MAX_THREADS; t++) {
            /* The peak is measured again before every shape: other work on the machine can
             * only lower it, so the best of these is the machine's. */
            peak[t] = fmax(peak[t], lr_peak_gflops(ctx[t], t));
#ifdef HAVE_OPENBLAS
            openblas_set_num_threads(t);
#endif
            row *r = &rows[n_rows++];
            *r = (row){.s = s, .threads = t, .seconds = INFINITY, .peer_seconds = INFINITY};
            double turn = budget / (2 * ROUNDS);
            ours_sgemm(ctx[t], s, A, B, C); /* untimed: warms caches, page tables and the pool */
            for (int round = 0; round < ROUNDS; round++) {
                r->seconds = fmin(r->seconds, best_time(ours_sgemm, ctx[t], s, A, B, C, turn));
#ifdef HAVE_OPENBLAS
                pause_for_idle_workers();
                r->peer_seconds = fmin(r->peer_seconds, best_time(openblas_sgemm, ctx[t], s, A, B, C_peer, turn));
                pause_for_idle_workers();
#endif
            }
#ifdef HAVE_OPENBLAS
            r->diff = max_rel_diff(C, C_peer, c_n);
#endif
            r->rss_mib = (double)lr_peak_rss() / (1024.0 * 1024.0);
            fprintf(stderr, "bench_gemm: %lldx%lldx%lld on %d thread(s) done\n", (long long)s->M,
                    (long long)s->N, (long long)s->K, t);
        }
        free(A);
        free(B);
        free(C);
        free(C_peer);
    }

    printf("## sgemm, C = A B (row-major, alpha 1, beta 0), CPU level %s\n\n",
           lr_cpu_level_name(lr_ctx_cpu(ctx[1])));
#ifdef HAVE_OPENBLAS
    printf("Peer: OpenBLAS %s, core %s. ", openblas_get_config(), openblas_get_corename());
#else
    printf("Peer: none (built without OpenBLAS). ");
#endif
    printf("Peak (lr_peak_gflops, best of the run): %.1f GFLOP/s on 1 thread, %.1f on 2. "
           "Best of N within %.1f s per row.\n\n", peak[1], peak[2], budget);
    printf("| M | N | K | trans | threads | ms | GFLOP/s | %% of peak | OpenBLAS GFLOP/s | ours/OpenBLAS | "
           "max rel diff | peak RSS MiB |\n");
    printf("|---:|---:|---:|:---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < n_rows; i++) {
        const row *r = &rows[i];
        const shape *s = r->s;
        double gflops = 2.0 * (double)s->M * (double)s->N * (double)s->K / r->seconds * 1e-9;
        printf("| %lld | %lld | %lld | %c%c | %d | %.2f | %.1f | %.0f%% |", (long long)s->M,
               (long long)s->N, (long long)s->K, s->ta == LR_TRANS ? 'T' : 'N',
               s->tb == LR_TRANS ? 'T' : 'N', r->threads, r->seconds * 1e3, gflops,
               100 * gflops / peak[r->threads]);
#ifdef HAVE_OPENBLAS
        double peer_gflops = gflops * r->seconds / r->peer_seconds;
        printf(" %.1f | %.2f | %.1e |", peer_gflops, gflops / peer_gflops, r->diff);
#else
        printf(" - | - | - |");
#endif
        printf(" %.0f |\n", r->rss_mib);
    }
    for (int t = 1; t <= MAX_THREADS; t++)
        lr_ctx_destroy(ctx[t]);
    return 0;
}
