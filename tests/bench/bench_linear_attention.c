/* bench_linear_attention: lr_linear_attention at long lengths (H = 8, D = Dv = 64, 2 threads)
 * against the memory-bandwidth bound. A run must at least read q, k, v and write out, 16 H L D
 * bytes; the bound is that traffic at the copy bandwidth measured in the same run (memcpy
 * between two 512 MiB buffers on the same threads, counting bytes read plus written). The
 * machine is shared: every figure is the best of its repetitions, and the copy is measured
 * again between the repetitions of each case, keeping its best, so both see the same load.
 * Prints a markdown table: best time, GFLOP/s (lr_linear_attention_flops), GB/s moved, the
 * bound and time / bound.
 * Usage: bench_linear_attention [max length, default 1M] [repetitions, default 3] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "longrange/core.h"
#include "longrange/linear_attention.h"
#include "longrange/parallel.h"

enum { HEADS = 8, HEAD_DIM = 64 };
#define COPY_BYTES ((size_t)512 << 20)
#define COPY_PIECE ((size_t)8 << 20)

typedef struct {
    char *dst;
    const char *src;
} copy_job;

static void copy_piece(void *arg, size_t task, int thread)
{
    copy_job *job = arg;
    memcpy(job->dst + task * COPY_PIECE, job->src + task * COPY_PIECE, COPY_PIECE);
}

/* Bytes read plus written per second by memcpy on the context's threads. */
static double copy_bandwidth(lr_ctx *ctx, char *dst, const char *src)
{
    copy_job job = {dst, src};
    double t0 = lr_time_now();
    lr_parallel_for(ctx, COPY_BYTES / COPY_PIECE, copy_piece, &job);
    return 2.0 * (double)COPY_BYTES / (lr_time_now() - t0);
}

static void fill(float *x, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = (float)(seed >> 8) / 8388608.0f - 1.0f;
    }
}

typedef struct {
    const char *name;
    lr_linattn_kind kind;
    bool causal;
} bench_kind;

static const bench_kind kinds[] = {
    {"elu+1 self", LR_LINATTN_ELU, false},
    {"elu+1 causal", LR_LINATTN_ELU, true},
    {"norm causal", LR_LINATTN_NORM, true},
    {"decay causal", LR_LINATTN_DECAY, true},
};

int main(int argc, char **argv)
{
    int64_t max_len = argc > 1 ? atoll(argv[1]) : 1 << 20;
    int reps = argc > 2 ? atoi(argv[2]) : 3;
    lr_ctx_params cp = lr_ctx_default_params();
    cp.n_threads = 2;
    lr_ctx *ctx;
    if (lr_ctx_create(&ctx, &cp) != LR_OK)
        return 1;
    size_t n = (size_t)HEADS * (size_t)max_len * HEAD_DIM;
    float *q = malloc(n * sizeof(float)), *k = malloc(n * sizeof(float));
    float *v = malloc(n * sizeof(float)), *out = malloc(n * sizeof(float));
    char *copy_src = malloc(COPY_BYTES), *copy_dst = malloc(COPY_BYTES);
    if (!q || !k || !v || !out || !copy_src || !copy_dst) {
        fprintf(stderr, "bench_linear_attention: out of memory for L = %lld\n", (long long)max_len);
        return 1;
    }
    fill(q, n, 1);
    fill(k, n, 2);
    fill(v, n, 3);
    memset(out, 0, n * sizeof(float));
    memset(copy_src, 1, COPY_BYTES);
    memset(copy_dst, 0, COPY_BYTES);
    float gamma[HEADS];
    for (int h = 0; h < HEADS; h++)
        gamma[h] = 1.0f - 1.0f / (float)(32 << h); /* RetNet's 1 - 2^(-5-h) */
    int64_t heads = HEADS;
    lr_tensor gamma_t = lr_tensor_from(gamma, LR_F32, 1, &heads);

    double copy_bw = 0;
    printf("linear attention, H=%d, D=Dv=%d, 2 threads, CPU %s; best of %d\n\n", HEADS, HEAD_DIM,
           lr_cpu_level_name(lr_ctx_cpu(ctx)), reps);
    printf("| variant | L | best ms | GFLOP/s | GB/s moved | copy GB/s | bound ms | time / bound |\n");
    printf("|:--|--:|--:|--:|--:|--:|--:|--:|\n");
    for (int64_t L = 65536; L <= max_len; L *= 4) {
        int64_t shape[4] = {1, HEADS, L, HEAD_DIM};
        lr_tensor tq = lr_tensor_from(q, LR_F32, 4, shape), tk = lr_tensor_from(k, LR_F32, 4, shape);
        lr_tensor tv = lr_tensor_from(v, LR_F32, 4, shape), to = lr_tensor_from(out, LR_F32, 4, shape);
        for (size_t ki = 0; ki < sizeof kinds / sizeof kinds[0]; ki++) {
            lr_linattn_params p = lr_linattn_default_params();
            p.kind = kinds[ki].kind;
            p.causal = kinds[ki].causal;
            if (p.kind == LR_LINATTN_DECAY)
                p.gamma = &gamma_t;
            double best = 1e30;
            for (int r = 0; r < reps; r++) {
                double bw = copy_bandwidth(ctx, copy_dst, copy_src);
                copy_bw = bw > copy_bw ? bw : copy_bw;
                double t0 = lr_time_now();
                if (lr_linear_attention(ctx, &p, &tq, &tk, &tv, &to) != LR_OK) {
                    fprintf(stderr, "bench_linear_attention: %s\n", lr_ctx_last_error(ctx));
                    return 1;
                }
                double t = lr_time_now() - t0;
                best = t < best ? t : best;
            }
            double bytes = 4.0 * (double)HEADS * (double)L * HEAD_DIM * sizeof(float);
            double flops = lr_linear_attention_flops(&p, 1, HEADS, L, L, HEAD_DIM, HEAD_DIM);
            double bound = bytes / copy_bw;
            printf("| %s | %lld | %.1f | %.1f | %.2f | %.2f | %.1f | %.2f |\n", kinds[ki].name,
                   (long long)L, best * 1e3, flops / best * 1e-9, bytes / best * 1e-9, copy_bw * 1e-9,
                   bound * 1e3, best / bound);
            fflush(stdout);
        }
    }
    free(q);
    free(k);
    free(v);
    free(out);
    free(copy_src);
    free(copy_dst);
    lr_ctx_destroy(ctx);
    return 0;
}
