/* The persistent thread pool behind every kernel.
 * An op cuts its work into a fixed number of tasks that does not depend on the thread count;
 * threads take tasks in any order, and each task writes only its own outputs, so results are
 * bit-identical for any -j. */
#ifndef LONGRANGE_PARALLEL_H
#define LONGRANGE_PARALLEL_H

#include "longrange/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Runs fn(arg, task, thread) for every task in [0, n_tasks). `thread` is in [0, lr_ctx_threads)
 * and names the caller's private scratch. Returns when all tasks are done. A nested call from
 * inside a task of the same context runs serially on the calling thread, in its slot.
 * One context serves one caller thread at a time (its scratch is shared by its jobs). */
typedef void (*lr_task_fn)(void *arg, size_t task, int thread);
void lr_parallel_for(lr_ctx *ctx, size_t n_tasks, lr_task_fn fn, void *arg);

/* Per-thread scratch, 64-byte aligned, at least `bytes` long. It grows only outside parallel
 * regions (call lr_thread_scratch_reserve before lr_parallel_for; inside a task of the same
 * context a reserve that would grow fails with LR_ERR_INTERNAL). */
lr_status lr_thread_scratch_reserve(lr_ctx *ctx, size_t bytes);
void *lr_thread_scratch(lr_ctx *ctx, int thread);
size_t lr_thread_scratch_size(const lr_ctx *ctx);

#ifdef __cplusplus
}
#endif
#endif
