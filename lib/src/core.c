/* The context: error text, logging, CPU level, thread pool, timers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "longrange/parallel.h"

const char *lr_status_str(lr_status s)
{
    switch (s) {
    case LR_OK: return "ok";
    case LR_ERR_ARG: return "invalid argument";
    case LR_ERR_NOMEM: return "out of memory";
    case LR_ERR_IO: return "input/output error";
    case LR_ERR_DATA: return "invalid data";
    case LR_ERR_MODEL: return "unusable model file";
    case LR_ERR_UNSUPPORTED: return "not supported";
    case LR_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

lr_ctx_params lr_ctx_default_params(void)
{
    lr_ctx_params p;
    memset(&p, 0, sizeof p);
    p.n_threads = 0;
    p.device = LR_DEVICE_CPU;
    p.cpu_level = -1;
    p.log_level = LR_LOG_WARN;
    return p;
}

static const char *level_name(lr_log_level level)
{
    switch (level) {
    case LR_LOG_ERROR: return "error";
    case LR_LOG_WARN: return "warning";
    case LR_LOG_INFO: return "info";
    case LR_LOG_DEBUG: return "debug";
    }
    return "log";
}

static void log_message(lr_log_fn fn, void *user, lr_log_level max, lr_log_level level,
                        const char *fmt, va_list ap)
{
    if (level > max)
        return;
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (fn)
        fn(level, msg, user);
    else
        fprintf(stderr, "libcore: %s: %s\n", level_name(level), msg);
}

static void log_params(const lr_ctx_params *p, lr_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_message(p->log, p->log_user, p->log_level, level, fmt, ap);
    va_end(ap);
}

void lr_log(lr_ctx *ctx, lr_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (ctx)
        log_message(ctx->log, ctx->log_user, ctx->log_level, level, fmt, ap);
    else
        log_message(NULL, NULL, LR_LOG_WARN, level, fmt, ap);
    va_end(ap);
}

void lr_ctx_set_log_level(lr_ctx *ctx, lr_log_level level) { ctx->log_level = level; }

lr_status lr_ctx_create(lr_ctx **out, const lr_ctx_params *params)
{
    lr_ctx_params p = params ? *params : lr_ctx_default_params();
    *out = NULL;
    if (p.n_threads < 0 || p.n_threads > 1024) {
        log_params(&p, LR_LOG_ERROR, "thread count %d out of range 0..1024", p.n_threads);
        return LR_ERR_ARG;
    }
    lr_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return LR_ERR_NOMEM;
    ctx->log = p.log;
    ctx->log_user = p.log_user;
    ctx->log_level = p.log_level;
    ctx->device = p.device;
    ctx->n_threads = p.n_threads;
    if (ctx->n_threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        ctx->n_threads = n < 1 ? 1 : n > 1024 ? 1024 : (int)n;
    }
    ctx->cpu = lr_cpu_detect();
    const char *want = getenv("LR_CPU");
    if (want && *want && strcmp(want, lr_cpu_level_name(ctx->cpu)) != 0)
        log_params(&p, LR_LOG_WARN, "LR_CPU=%s is not one this CPU can run (ref, avx2, avx512); using %s",
                   want, lr_cpu_level_name(ctx->cpu));
    if (p.cpu_level >= 0 && (lr_cpu_level)p.cpu_level < ctx->cpu)
        ctx->cpu = (lr_cpu_level)p.cpu_level;

    lr_status s = LR_OK;
    if (ctx->device == LR_DEVICE_CUDA) {
#ifdef LR_CUDA
        s = lr_cuda_init(ctx);
#else
        s = lr_fail(ctx, LR_ERR_UNSUPPORTED, "this build has no CUDA backend (rebuild with make CUDA=1)");
#endif
    }
    if (s == LR_OK)
        s = lr_pool_create(ctx);
    if (s != LR_OK) {
        log_params(&p, LR_LOG_ERROR, "%s", ctx->error[0] ? ctx->error : lr_status_str(s));
        lr_ctx_destroy(ctx);
        return s;
    }
    *out = ctx;
    return LR_OK;
}

void lr_ctx_destroy(lr_ctx *ctx)
{
    if (!ctx)
        return;
    lr_pool_destroy(ctx);
#ifdef LR_CUDA
    lr_cuda_release(ctx);
#endif
    free(ctx);
}

const char *lr_ctx_last_error(const lr_ctx *ctx) { return ctx ? ctx->error : ""; }

lr_status lr_vfail(lr_ctx *ctx, lr_status s, const char *fmt, va_list ap)
{
    if (ctx)
        vsnprintf(ctx->error, sizeof ctx->error, fmt, ap);
    return s;
}

lr_status lr_fail(lr_ctx *ctx, lr_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    lr_vfail(ctx, s, fmt, ap);
    va_end(ap);
    return s;
}

void lr_clear_error(lr_ctx *ctx)
{
    if (ctx)
        ctx->error[0] = '\0';
}

int lr_ctx_threads(const lr_ctx *ctx) { return ctx->n_threads; }
lr_cpu_level lr_ctx_cpu(const lr_ctx *ctx) { return ctx->cpu; }
lr_device lr_ctx_device(const lr_ctx *ctx) { return ctx->device; }

void *lr_alloc(size_t bytes)
{
    const size_t huge = (size_t)2 << 20;
    if (bytes > SIZE_MAX - huge)
        return NULL;
    if (bytes < huge)
        return aligned_alloc(64, bytes ? (bytes + 63) & ~(size_t)63 : 64);
    size_t rounded = (bytes + huge - 1) & ~(huge - 1);
    void *p = aligned_alloc(huge, rounded);
#ifdef MADV_HUGEPAGE
    if (p)
        madvise(p, rounded, MADV_HUGEPAGE); /* advice only: without THP it changes nothing */
#endif
    return p;
}

double lr_time_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

size_t lr_peak_rss(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (size_t)ru.ru_maxrss * 1024u; /* Linux reports KiB */
}
