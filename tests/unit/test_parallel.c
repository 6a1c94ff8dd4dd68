/* Thread pool: every task runs exactly once, on a valid thread slot, for any thread count. */
#include <stdatomic.h>
#include <stdlib.h>

#include "check.h"
#include "longrange/parallel.h"

typedef struct {
    atomic_int *runs;
    int n_threads;
    atomic_int bad_thread;
    lr_ctx *ctx;
    atomic_int inner_runs;
    atomic_int inner_wrong_thread; /* a nested task saw another slot than its caller's */
    atomic_int reserve_refused;
} job;

static _Thread_local int outer_thread;

static void count_task(void *p, size_t task, int thread)
{
    job *j = p;
    atomic_fetch_add(&j->runs[task], 1);
    if (thread < 0 || thread >= j->n_threads)
        atomic_store(&j->bad_thread, 1);
}

static void inner_task(void *p, size_t task, int thread)
{
    job *j = p;
    (void)task;
    atomic_fetch_add(&j->inner_runs, 1);
    if (thread != outer_thread)
        atomic_store(&j->inner_wrong_thread, 1);
}

static void nesting_task(void *p, size_t task, int thread)
{
    job *j = p;
    count_task(p, task, thread);
    outer_thread = thread;
    lr_parallel_for(j->ctx, 5, inner_task, p); /* runs serially, in this thread's slot */
    if (lr_thread_scratch_reserve(j->ctx, lr_thread_scratch_size(j->ctx) + 4096) == LR_ERR_INTERNAL)
        atomic_fetch_add(&j->reserve_refused, 1);
}

static void test_every_task_once(void)
{
    int counts[] = {1, 2, 3, 8};
    for (int c = 0; c < 4; c++) {
        lr_ctx_params p = lr_ctx_default_params();
        p.n_threads = counts[c];
        lr_ctx *ctx;
        REQUIRE(lr_ctx_create(&ctx, &p) == LR_OK);
        CHECK(lr_ctx_threads(ctx) == counts[c]);
        size_t sizes[] = {0, 1, 2, 7, 1000};
        for (int s = 0; s < 5; s++) {
            /* many jobs back to back: exercises the hand-over between jobs */
            for (int rep = 0; rep < 200; rep++) {
                job j = {.n_threads = counts[c], .ctx = ctx};
                j.runs = calloc(sizes[s] + 1, sizeof *j.runs);
                lr_parallel_for(ctx, sizes[s], count_task, &j);
                for (size_t t = 0; t < sizes[s]; t++)
                    CHECKF(atomic_load(&j.runs[t]) == 1, "threads %d tasks %zu: task %zu ran %d times",
                           counts[c], sizes[s], t, atomic_load(&j.runs[t]));
                CHECK(!atomic_load(&j.bad_thread));
                free(j.runs);
            }
        }
        job j = {.n_threads = counts[c], .ctx = ctx};
        j.runs = calloc(16, sizeof *j.runs);
        lr_parallel_for(ctx, 16, nesting_task, &j);
        CHECK(atomic_load(&j.inner_runs) == 16 * 5);
        CHECK(!atomic_load(&j.inner_wrong_thread));
        CHECK(atomic_load(&j.reserve_refused) == (counts[c] > 1 ? 16 : 0));
        free(j.runs);
        lr_ctx_destroy(ctx);
    }
}

static void fill_scratch(void *p, size_t task, int thread)
{
    lr_ctx *ctx = p;
    unsigned char *s = lr_thread_scratch(ctx, thread);
    memset(s, (int)task, lr_thread_scratch_size(ctx));
}

static void test_scratch(void)
{
    lr_ctx_params p = lr_ctx_default_params();
    p.n_threads = 3;
    lr_ctx *ctx;
    REQUIRE(lr_ctx_create(&ctx, &p) == LR_OK);
    CHECK(lr_thread_scratch_reserve(ctx, 1000) == LR_OK);
    CHECK(lr_thread_scratch_size(ctx) >= 1000);
    for (int t = 0; t < 3; t++)
        CHECK(((uintptr_t)lr_thread_scratch(ctx, t) % 64) == 0);
    CHECK(lr_thread_scratch_reserve(ctx, 10) == LR_OK); /* never shrinks */
    CHECK(lr_thread_scratch_size(ctx) >= 1000);
    lr_parallel_for(ctx, 64, fill_scratch, ctx);
    CHECK(lr_thread_scratch_reserve(ctx, SIZE_MAX - 3) == LR_ERR_NOMEM);
    lr_ctx_destroy(ctx);
}

int main(void)
{
    RUN(test_every_task_once);
    RUN(test_scratch);
    return CHECK_DONE();
}
