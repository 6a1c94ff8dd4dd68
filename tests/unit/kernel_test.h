/* What the kernel tests share: a reproducible generator of floats in [-1, 1), and contexts at
 * a given thread count and CPU level. */
#ifndef LR_TEST_KERNEL_TEST_H
#define LR_TEST_KERNEL_TEST_H

#include "longrange/core.h"

static unsigned rng_state = 1;

static __attribute__((unused)) void seed_random(unsigned seed) { rng_state = seed; }

static __attribute__((unused)) float random_float(void)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)(rng_state >> 8) / 8388608.0f - 1.0f;
}

/* At most `level` (capped at what the machine has); NULL only if creation fails. */
static __attribute__((unused)) lr_ctx *make_ctx(int threads, lr_cpu_level level)
{
    lr_ctx_params p = lr_ctx_default_params();
    p.n_threads = threads;
    p.cpu_level = (int)level;
    lr_ctx *ctx = NULL;
    return lr_ctx_create(&ctx, &p) == LR_OK ? ctx : NULL;
}

/* Exactly `level`: NULL when the machine lacks it. */
static __attribute__((unused)) lr_ctx *make_ctx_at(int threads, lr_cpu_level level)
{
    lr_ctx *ctx = make_ctx(threads, level);
    if (ctx && lr_ctx_cpu(ctx) != level) {
        lr_ctx_destroy(ctx);
        ctx = NULL;
    }
    return ctx;
}

#endif
