/* The blocked, threaded SGEMM driver (GotoBLAS/BLIS loop structure).
 *
 * K is walked in blocks of kc and N in blocks of up to GEMM_SHARED_CHUNKS chunks of nc
 * columns. Each (N block, K block) is one lr_parallel_for whose tasks are:
 *   - one per kc x nc chunk of op(B): pack it (panels of nr columns) into a slot shared by
 *     all threads (chunk c lives in thread c % T's scratch, so the shared block costs each
 *     thread 1/T of it);
 *   - one per tile of C: pack its rows of op(A) (tile_m x kc, panels of mr rows) into its
 *     own thread's scratch, then for each B chunk of its columns (kept in L2) run the
 *     micro-kernel with one A panel held in L1 while the B panels stream past it.
 * A chunk is packed by whichever task claims it first (its own task, or a tile that needs
 * it sooner); a tile that finds a chunk claimed but not ready waits for the claimer, which
 * never waits itself, so any order of running the tasks completes. B is packed once and A
 * once per N block and column of tiles, however many rows the tiles are cut into, so
 * tiles can be small enough to share work evenly.
 *
 * Bit-identical for any thread count: the tiles depend only on the shape, and each element
 * of C is summed by one micro-kernel call per K block, in K order, with the K blocking
 * depending only on K. */
#include <immintrin.h>
#include <stdatomic.h>

#include "gemm_internal.h"
#include "internal.h"
#include "longrange/gemm.h"
#include "longrange/parallel.h"

/* C tiles are split until there are this many, while each keeps this much work. */
enum { GEMM_TARGET_TASKS = 16 };
#define GEMM_MIN_TASK_FLOPS 4e6
/* B chunks packed and shared at a time: bounds the shared block to kc x 16 nc floats. */
enum { GEMM_SHARED_CHUNKS = 16 };

typedef struct {
    const lr_gemm_kernel *kern;
    lr_ctx *ctx;
    int n_threads;
    int64_t M, N, K;
    const float *A;
    int64_t a_stride_m, a_stride_k; /* op(A)(i, k) = A[i * a_stride_m + k * a_stride_k] */
    const float *B;
    int64_t b_stride_k, b_stride_n; /* op(B)(k, j) = B[k * b_stride_k + j * b_stride_n] */
    float *C;
    int64_t ldc;
    float alpha, beta;
    const lr_gemm_epilogue *ep; /* NULL: none */
    int64_t kc;             /* K block */
    size_t a_pack_floats;   /* a thread's scratch: its packed A block, then its B chunk slots */
    size_t chunk_floats;    /* one packed B chunk: kc x nc */
    /* the block being worked on */
    int64_t p0, k_len;      /* K block */
    int64_t n0, n_len;      /* N block */
    float block_beta;       /* beta for the first K block, then 1 */
    int64_t n_chunks;       /* B chunks in this N block */
    /* Blocks are numbered from 1; chunk c of the current block is claimed when
     * chunk_claimed[c] == block_index and packed when chunk_ready[c] == block_index. */
    int64_t block_index;
    atomic_llong chunk_claimed[GEMM_SHARED_CHUNKS];
    atomic_llong chunk_ready[GEMM_SHARED_CHUNKS];
    /* the tiles of C in this N block */
    int64_t tile_m, tile_n, tiles_n;
} gemm_job;

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
static int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

/* Cuts `extent` into the fewest blocks of at most `limit` (a multiple of `unit`), made as
 * equal as `unit` allows, and returns the block size. */
static int64_t balanced_block(int64_t extent, int64_t limit, int64_t unit)
{
    int64_t blocks = ceil_div(extent, limit);
    return min64(limit, round_up(ceil_div(extent, blocks), unit));
}

static const lr_gemm_kernel *kernel_for(lr_cpu_level level)
{
    switch (level) {
    case LR_CPU_AVX512: return &lr_gemm_kernel_avx512;
    case LR_CPU_AVX2: return &lr_gemm_kernel_avx2;
    case LR_CPU_REF: break;
    }
    return &lr_gemm_kernel_ref;
}

/* The packed chunk c of the current N block (chunk c covers columns c * nc onwards). */
static float *b_chunk(const gemm_job *job, int64_t c)
{
    float *scratch = lr_thread_scratch(job->ctx, (int)(c % job->n_threads));
    return scratch + job->a_pack_floats + (size_t)(c / job->n_threads) * job->chunk_floats;
}

/* Packs chunk c unless another task has claimed it. */
static void claim_and_pack_chunk(gemm_job *job, int64_t c)
{
    if (atomic_exchange_explicit(&job->chunk_claimed[c], job->block_index, memory_order_relaxed) ==
        job->block_index)
        return;
    int64_t nc = job->kern->nc, col = c * nc;
    job->kern->pack_b(job->B + job->p0 * job->b_stride_k + (job->n0 + col) * job->b_stride_n,
                      job->b_stride_n, job->b_stride_k, min64(nc, job->n_len - col), job->k_len,
                      b_chunk(job, c));
    atomic_store_explicit(&job->chunk_ready[c], job->block_index, memory_order_release);
}

static const float *packed_chunk(gemm_job *job, int64_t c)
{
    claim_and_pack_chunk(job, c);
    while (atomic_load_explicit(&job->chunk_ready[c], memory_order_acquire) != job->block_index)
        _mm_pause();
    return b_chunk(job, c);
}

static void compute_tile(gemm_job *job, int64_t tile, int thread)
{
    const lr_gemm_kernel *kern = job->kern;
    int64_t kc = job->k_len;
    int64_t m0 = tile / job->tiles_n * job->tile_m;
    int64_t j_begin = tile % job->tiles_n * job->tile_n;
    int64_t m_len = min64(job->tile_m, job->M - m0);
    int64_t j_end = min64(j_begin + job->tile_n, job->n_len);
    float *a_pack = lr_thread_scratch(job->ctx, thread);

    kern->pack_a(job->A + m0 * job->a_stride_m + job->p0 * job->a_stride_k, job->a_stride_m,
                 job->a_stride_k, m_len, kc, a_pack);
    /* tile_n is a multiple of nc, so a tile holds whole chunks */
    for (int64_t j0 = j_begin; j0 < j_end; j0 += kern->nc) {
        const float *chunk = packed_chunk(job, j0 / kern->nc);
        int64_t nc = min64(kern->nc, j_end - j0);
        for (int64_t i = 0; i < m_len; i += kern->mr) {
            const float *a_panel = a_pack + i * kc;
            float *c_row = job->C + (m0 + i) * job->ldc + job->n0 + j0;
            int m = (int)min64(kern->mr, m_len - i);
            for (int64_t j = 0; j < nc; j += kern->nr)
                kern->micro(kc, a_panel, chunk + j * kc, c_row + j, job->ldc, m,
                            (int)min64(kern->nr, nc - j), job->alpha, job->block_beta);
            /* the last K block: these mr x nc values are final and still in L1 */
            if (job->ep && job->p0 + kc == job->K)
                job->ep->fn(job->ep->user, c_row, job->ldc, m0 + i, job->n0 + j0, m, nc);
        }
    }
}

static void block_task(void *arg, size_t task, int thread)
{
    gemm_job *job = arg;
    if ((int64_t)task < job->n_chunks)
        claim_and_pack_chunk(job, (int64_t)task);
    else
        compute_tile(job, (int64_t)task - job->n_chunks, thread);
}

/* C = beta * C, for alpha == 0 or K == 0 (A and B are not read then). */
static void scale_c(int64_t M, int64_t N, float beta, float *C, int64_t ldc)
{
    for (int64_t i = 0; i < M; i++) {
        float *row = C + i * ldc;
        for (int64_t j = 0; j < N; j++)
            row[j] = beta == 0 ? 0.0f : beta * row[j];
    }
}

/* The tiles of C for N blocks of n_len columns (the last block may be narrower): rows
 * first (a row split costs nothing, as B is shared), then whole B chunks when there are
 * too few rows to go round, as long as a tile keeps GEMM_MIN_TASK_FLOPS of work per K
 * block. Depends only on the shape, never on the thread count. */
static void choose_tiles(gemm_job *job, int64_t n_len)
{
    const lr_gemm_kernel *kern = job->kern;
    double flops_per_row = 2.0 * (double)n_len * (double)job->kc;
    int64_t min_rows = round_up((int64_t)(GEMM_MIN_TASK_FLOPS / flops_per_row) + 1, kern->mr);
    int64_t rows = round_up(ceil_div(job->M, GEMM_TARGET_TASKS), kern->mr);
    if (rows < min_rows)
        rows = min_rows;
    job->tile_m = balanced_block(job->M, min64(rows, kern->mc), kern->mr);
    int64_t tiles_m = ceil_div(job->M, job->tile_m), chunks = ceil_div(n_len, kern->nc);
    int64_t tiles_n = min64(chunks, ceil_div(GEMM_TARGET_TASKS, tiles_m));
    double tile_flops_per_chunk = 2.0 * (double)job->tile_m * (double)kern->nc * (double)job->kc;
    while (tiles_n > 1 && tile_flops_per_chunk * (double)(chunks / tiles_n) < GEMM_MIN_TASK_FLOPS)
        tiles_n--;
    job->tile_n = ceil_div(chunks, tiles_n) * kern->nc;
}

lr_status lr_sgemm(lr_ctx *ctx, lr_trans ta, lr_trans tb, int64_t M, int64_t N, int64_t K,
                   float alpha, const float *A, int64_t lda, const float *B, int64_t ldb,
                   float beta, float *C, int64_t ldc)
{
    return lr_sgemm_ep(ctx, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL);
}

lr_status lr_sgemm_ep(lr_ctx *ctx, lr_trans ta, lr_trans tb, int64_t M, int64_t N, int64_t K,
                      float alpha, const float *A, int64_t lda, const float *B, int64_t ldb,
                      float beta, float *C, int64_t ldc, const lr_gemm_epilogue *ep)
{
    if (ep && !ep->fn)
        return lr_fail(ctx, LR_ERR_ARG, "sgemm: epilogue without a function");
    if (M < 0 || N < 0 || K < 0)
        return lr_fail(ctx, LR_ERR_ARG, "sgemm: negative size (M %lld, N %lld, K %lld)",
                       (long long)M, (long long)N, (long long)K);
    if ((ta != LR_NO_TRANS && ta != LR_TRANS) || (tb != LR_NO_TRANS && tb != LR_TRANS))
        return lr_fail(ctx, LR_ERR_ARG, "sgemm: invalid transpose flag");
    if (M == 0 || N == 0)
        return LR_OK;
    int64_t a_cols = ta == LR_NO_TRANS ? K : M, b_cols = tb == LR_NO_TRANS ? N : K;
    if (ldc < N || !C)
        return lr_fail(ctx, LR_ERR_ARG, "sgemm: C is missing or ldc %lld < N %lld", (long long)ldc,
                       (long long)N);
    if (K == 0 || alpha == 0) {
        scale_c(M, N, beta, C, ldc);
        if (ep)
            ep->fn(ep->user, C, ldc, 0, 0, M, N);
        return LR_OK;
    }
    if (!A || !B || lda < a_cols || ldb < b_cols)
        return lr_fail(ctx, LR_ERR_ARG, "sgemm: A or B is missing, or lda %lld < %lld or ldb %lld < %lld",
                       (long long)lda, (long long)a_cols, (long long)ldb, (long long)b_cols);

#ifdef LR_CUDA
    if (lr_ctx_device(ctx) == LR_DEVICE_CUDA) {
        lr_status cs = lr_cuda_sgemm(ctx, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        if (cs == LR_OK && ep)
            ep->fn(ep->user, C, ldc, 0, 0, M, N);
        return cs;
    }
#endif
    const lr_gemm_kernel *kern = kernel_for(lr_ctx_cpu(ctx));
    gemm_job job = {
        .kern = kern, .ctx = ctx, .n_threads = lr_ctx_threads(ctx), .M = M, .N = N, .K = K,
        .A = A, .a_stride_m = ta == LR_NO_TRANS ? lda : 1, .a_stride_k = ta == LR_NO_TRANS ? 1 : lda,
        .B = B, .b_stride_k = tb == LR_NO_TRANS ? ldb : 1, .b_stride_n = tb == LR_NO_TRANS ? 1 : ldb,
        .C = C, .ldc = ldc, .alpha = alpha, .beta = beta, .ep = ep,
    };
    job.kc = balanced_block(K, kern->kc, 1);
    int64_t block_cols = balanced_block(N, GEMM_SHARED_CHUNKS * (int64_t)kern->nc, kern->nc);
    choose_tiles(&job, block_cols);
    job.chunk_floats = (size_t)kern->nc * (size_t)job.kc;
    /* rounded to 16 floats: the chunks after it stay 64-byte aligned */
    job.a_pack_floats = (size_t)round_up(job.tile_m * job.kc, 16);
    size_t slots = (size_t)ceil_div(ceil_div(block_cols, kern->nc), job.n_threads);
    size_t scratch_floats = job.a_pack_floats + slots * job.chunk_floats;
    lr_status s = lr_thread_scratch_reserve(ctx, scratch_floats * sizeof(float));
    if (s != LR_OK)
        return s;

    for (int64_t c = 0; c < GEMM_SHARED_CHUNKS; c++) {
        atomic_init(&job.chunk_claimed[c], 0);
        atomic_init(&job.chunk_ready[c], 0);
    }
    for (job.n0 = 0; job.n0 < N; job.n0 += block_cols) {
        job.n_len = min64(block_cols, N - job.n0);
        job.n_chunks = ceil_div(job.n_len, kern->nc);
        job.tiles_n = ceil_div(job.n_len, job.tile_n);
        for (job.p0 = 0; job.p0 < K; job.p0 += job.kc) {
            job.k_len = min64(job.kc, K - job.p0);
            job.block_beta = job.p0 == 0 ? beta : 1.0f;
            job.block_index++;
            int64_t tiles = ceil_div(M, job.tile_m) * job.tiles_n;
            /* One tile is too little work to be worth waking the pool for. */
            if (tiles == 1) {
                for (int64_t t = 0; t <= job.n_chunks; t++)
                    block_task(&job, (size_t)t, 0);
            } else {
                lr_parallel_for(ctx, (size_t)(job.n_chunks + tiles), block_task, &job);
            }
        }
    }
    return LR_OK;
}
