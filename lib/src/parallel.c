/* The persistent thread pool.
 * Workers sleep on a condition variable between jobs (after a short spin, since kernels often
 * issue many small jobs back to back). A job is a task count and a function; workers and the
 * caller take task indices from one atomic counter, so which thread runs a task varies but
 * what a task computes does not. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "longrange/parallel.h"

struct lr_pool {
    lr_ctx *ctx;
    int n_workers; /* threads besides the caller */
    pthread_t *threads;
    pthread_mutex_t lock;
    pthread_cond_t wake;    /* a new job or shutdown */
    pthread_cond_t idle;    /* the last worker left the job */
    pthread_mutex_t submit; /* one job at a time per context */
    unsigned long generation;
    int shutdown;
    /* the current job */
    lr_task_fn fn;
    void *arg;
    size_t n_tasks;
    atomic_size_t next_task;
    int finished_workers; /* workers done with the current job */
    atomic_ulong published; /* generation, readable without the lock for the spin */
};

typedef struct {
    struct lr_pool *pool;
    int thread;
} worker_arg;

/* The context whose job this thread is running, and its slot there: a nested call on the
 * same context runs serially in that slot, so it still uses this thread's own scratch. */
static _Thread_local const lr_ctx *region_ctx;
static _Thread_local int region_thread;

static void run_tasks(struct lr_pool *pool, int thread)
{
    for (;;) {
        size_t t = atomic_fetch_add_explicit(&pool->next_task, 1, memory_order_relaxed);
        if (t >= pool->n_tasks)
            break;
        pool->fn(pool->arg, t, thread);
    }
}

static void *worker_main(void *p)
{
    worker_arg *wa = p;
    struct lr_pool *pool = wa->pool;
    int thread = wa->thread;
    free(wa);
    region_ctx = pool->ctx;
    region_thread = thread;
    unsigned long seen = 0;
    for (;;) {
        /* Spin briefly: back-to-back jobs then start without a futex round trip. */
        for (int i = 0; i < 20000 && atomic_load_explicit(&pool->published, memory_order_acquire) == seen; i++)
            __builtin_ia32_pause();
        pthread_mutex_lock(&pool->lock);
        while (pool->generation == seen && !pool->shutdown)
            pthread_cond_wait(&pool->wake, &pool->lock);
        if (pool->shutdown) {
            pthread_mutex_unlock(&pool->lock);
            return NULL;
        }
        seen = pool->generation;
        pthread_mutex_unlock(&pool->lock);

        run_tasks(pool, thread);

        pthread_mutex_lock(&pool->lock);
        if (++pool->finished_workers == pool->n_workers)
            pthread_cond_signal(&pool->idle);
        pthread_mutex_unlock(&pool->lock);
    }
}

lr_status lr_pool_create(lr_ctx *ctx)
{
    ctx->scratch = calloc((size_t)ctx->n_threads, sizeof *ctx->scratch);
    if (!ctx->scratch)
        return lr_fail(ctx, LR_ERR_NOMEM, "out of memory creating %d thread slots", ctx->n_threads);
    if (ctx->n_threads == 1)
        return LR_OK;
    struct lr_pool *pool = calloc(1, sizeof *pool);
    if (!pool)
        return lr_fail(ctx, LR_ERR_NOMEM, "out of memory creating the thread pool");
    pool->ctx = ctx;
    pthread_mutex_init(&pool->lock, NULL);
    pthread_mutex_init(&pool->submit, NULL);
    pthread_cond_init(&pool->wake, NULL);
    pthread_cond_init(&pool->idle, NULL);
    pool->threads = calloc((size_t)ctx->n_threads - 1, sizeof *pool->threads);
    ctx->pool = pool;
    if (!pool->threads)
        return lr_fail(ctx, LR_ERR_NOMEM, "out of memory creating the thread pool");
    for (int i = 0; i < ctx->n_threads - 1; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (!wa)
            return lr_fail(ctx, LR_ERR_NOMEM, "out of memory starting thread %d", i + 1);
        wa->pool = pool;
        wa->thread = i + 1; /* the caller is thread 0 */
        if (pthread_create(&pool->threads[i], NULL, worker_main, wa) != 0) {
            free(wa);
            return lr_fail(ctx, LR_ERR_NOMEM, "cannot start thread %d of %d", i + 1, ctx->n_threads);
        }
        pool->n_workers++;
    }
    return LR_OK;
}

void lr_pool_destroy(lr_ctx *ctx)
{
    struct lr_pool *pool = ctx->pool;
    if (pool) {
        pthread_mutex_lock(&pool->lock);
        pool->shutdown = 1;
        pthread_cond_broadcast(&pool->wake);
        pthread_mutex_unlock(&pool->lock);
        for (int i = 0; i < pool->n_workers; i++)
            pthread_join(pool->threads[i], NULL);
        pthread_mutex_destroy(&pool->lock);
        pthread_mutex_destroy(&pool->submit);
        pthread_cond_destroy(&pool->wake);
        pthread_cond_destroy(&pool->idle);
        free(pool->threads);
        free(pool);
        ctx->pool = NULL;
    }
    if (ctx->scratch) {
        for (int i = 0; i < ctx->n_threads; i++)
            free(ctx->scratch[i]);
        free(ctx->scratch);
        ctx->scratch = NULL;
    }
}

void lr_parallel_for(lr_ctx *ctx, size_t n_tasks, lr_task_fn fn, void *arg)
{
    struct lr_pool *pool = ctx->pool;
    if (n_tasks == 0)
        return;
    /* Serial: one thread, one task, or a nested call from inside a task of this context. */
    if (!pool || n_tasks == 1 || region_ctx == ctx) {
        int thread = region_ctx == ctx ? region_thread : 0;
        for (size_t t = 0; t < n_tasks; t++)
            fn(arg, t, thread);
        return;
    }
    pthread_mutex_lock(&pool->submit);
    pthread_mutex_lock(&pool->lock);
    pool->fn = fn;
    pool->arg = arg;
    pool->n_tasks = n_tasks;
    atomic_store_explicit(&pool->next_task, 0, memory_order_relaxed);
    pool->finished_workers = 0;
    pool->generation++;
    atomic_store_explicit(&pool->published, pool->generation, memory_order_release);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);

    const lr_ctx *outer_ctx = region_ctx;
    int outer_thread = region_thread;
    region_ctx = ctx;
    region_thread = 0;
    run_tasks(pool, 0);
    region_ctx = outer_ctx;
    region_thread = outer_thread;

    /* Every worker checks in for every job (a late one finds no task left and leaves at
     * once); waiting for all of them, not only for the tasks, keeps a slow worker from
     * reading the next job's fields half-written. */
    pthread_mutex_lock(&pool->lock);
    while (pool->finished_workers < pool->n_workers)
        pthread_cond_wait(&pool->idle, &pool->lock);
    pthread_mutex_unlock(&pool->lock);
    pthread_mutex_unlock(&pool->submit);
}

lr_status lr_thread_scratch_reserve(lr_ctx *ctx, size_t bytes)
{
    if (bytes <= ctx->scratch_size)
        return LR_OK;
    if (region_ctx == ctx) /* other threads may be using the blocks it would replace */
        return lr_fail(ctx, LR_ERR_INTERNAL, "thread scratch cannot grow inside a parallel task");
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded < bytes)
        return lr_fail(ctx, LR_ERR_NOMEM, "scratch size %zu overflows", bytes);
    for (int i = 0; i < ctx->n_threads; i++) {
        void *p = lr_alloc(rounded);
        if (!p)
            return lr_fail(ctx, LR_ERR_NOMEM, "out of memory reserving %zu bytes of scratch per thread", rounded);
        free(ctx->scratch[i]);
        ctx->scratch[i] = p;
    }
    ctx->scratch_size = rounded;
    return LR_OK;
}

void *lr_thread_scratch(lr_ctx *ctx, int thread) { return ctx->scratch[thread]; }

size_t lr_thread_scratch_size(const lr_ctx *ctx) { return ctx->scratch_size; }
