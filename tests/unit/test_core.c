/* Context, errors, CPU level, arena. */
#include <stdlib.h>

#include "check.h"
#include "longrange/arena.h"
#include "longrange/core.h"

static int logged;
static char last_log[1024];
static void capture_log(lr_log_level level, const char *msg, void *user)
{
    (void)level;
    (void)user;
    logged++;
    snprintf(last_log, sizeof last_log, "%s", msg);
}

static void test_errors(void)
{
    lr_ctx *ctx;
    REQUIRE(lr_ctx_create(&ctx, NULL) == LR_OK);
    CHECK(lr_ctx_threads(ctx) >= 1);
    CHECK(strcmp(lr_ctx_last_error(ctx), "") == 0);
    CHECK(lr_fail(ctx, LR_ERR_DATA, "line %d: bad %s", 7, "thing") == LR_ERR_DATA);
    CHECK(strcmp(lr_ctx_last_error(ctx), "line 7: bad thing") == 0);
    lr_clear_error(ctx);
    CHECK(strcmp(lr_ctx_last_error(ctx), "") == 0);
    CHECK(strcmp(lr_status_str(LR_ERR_MODEL), "unusable model file") == 0);
    lr_ctx_destroy(ctx);
}

static void test_bad_params(void)
{
    lr_ctx_params p = lr_ctx_default_params();
    p.log = capture_log;
    p.n_threads = -3;
    lr_ctx *ctx = (lr_ctx *)&p; /* must be reset to NULL on failure */
    logged = 0;
    CHECK(lr_ctx_create(&ctx, &p) == LR_ERR_ARG);
    CHECK(ctx == NULL);
    CHECK(logged == 1 && strstr(last_log, "-3"));
#ifndef LR_CUDA
    p.n_threads = 1;
    p.device = LR_DEVICE_CUDA;
    CHECK(lr_ctx_create(&ctx, &p) == LR_ERR_UNSUPPORTED);
    CHECK(strstr(last_log, "CUDA"));
#endif
}

static void test_cpu_levels(void)
{
    lr_cpu_level hw = lr_cpu_detect();
    lr_ctx_params p = lr_ctx_default_params();
    p.n_threads = 1;
    for (int level = LR_CPU_REF; level <= LR_CPU_AVX512; level++) {
        lr_ctx *ctx;
        p.cpu_level = level;
        REQUIRE(lr_ctx_create(&ctx, &p) == LR_OK);
        CHECK(lr_ctx_cpu(ctx) == (level < (int)hw ? (lr_cpu_level)level : hw));
        lr_ctx_destroy(ctx);
    }
    /* LR_CPU forces a level (never above the hardware) and warns when it cannot be met. */
    setenv("LR_CPU", "ref", 1);
    CHECK(lr_cpu_detect() == LR_CPU_REF);
    p.cpu_level = -1;
    p.log = capture_log;
    logged = 0;
    setenv("LR_CPU", "sse9", 1);
    lr_ctx *ctx;
    REQUIRE(lr_ctx_create(&ctx, &p) == LR_OK);
    CHECK(lr_ctx_cpu(ctx) == hw);
    CHECK(logged == 1 && strstr(last_log, "LR_CPU=sse9"));
    lr_ctx_destroy(ctx);
    unsetenv("LR_CPU");
    CHECK(strcmp(lr_cpu_level_name(LR_CPU_AVX2), "avx2") == 0);
}

static void test_arena(void)
{
    lr_ctx *ctx;
    REQUIRE(lr_ctx_create(&ctx, NULL) == LR_OK);
    /* Measure a plan, then allocate exactly that much and replay it. */
    lr_arena a;
    lr_arena_measure(&a);
    size_t sizes[] = {3, 100, 64, 1, 4096};
    for (int i = 0; i < 5; i++)
        CHECK(lr_arena_alloc(ctx, &a, sizes[i]) == NULL);
    size_t need = a.peak;
    CHECK(need >= 3 + 100 + 64 + 1 + 4096);
    REQUIRE(lr_arena_init(ctx, &a, need) == LR_OK);
    for (int i = 0; i < 5; i++) {
        unsigned char *p = lr_arena_alloc(ctx, &a, sizes[i]);
        CHECK(p != NULL && ((uintptr_t)p % LR_ARENA_ALIGN) == 0);
        if (p)
            memset(p, 0xab, sizes[i]);
    }
    CHECK(lr_arena_alloc(ctx, &a, 1) == NULL);
    CHECK(strstr(lr_ctx_last_error(ctx), "exhausted") != NULL);
    size_t mark = lr_arena_mark(&a);
    lr_arena_reset(&a);
    CHECK(lr_arena_alloc(ctx, &a, 64) != NULL);
    lr_arena_release(&a, mark);
    CHECK(a.used == mark);
    CHECK(lr_arena_alloc_array(ctx, &a, SIZE_MAX / 2, 4) == NULL);
    CHECK(strstr(lr_ctx_last_error(ctx), "overflows") != NULL);
    CHECK(lr_arena_alloc(ctx, &a, SIZE_MAX - 8) == NULL);
    lr_arena_free(&a);
    lr_ctx_destroy(ctx);
}

/* Small blocks 64-byte aligned, large ones on 2 MiB boundaries, all writable to the end. */
static void test_alloc(void)
{
    static const size_t sizes[] = {0, 1, 100, ((size_t)2 << 20) - 1, (size_t)2 << 20, ((size_t)5 << 20) + 3};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        unsigned char *p = lr_alloc(sizes[i]);
        REQUIRE(p);
        size_t align = sizes[i] >= (size_t)2 << 20 ? (size_t)2 << 20 : 64;
        CHECKF((uintptr_t)p % align == 0, "%zu bytes at %p, not %zu-aligned", sizes[i], (void *)p, align);
        memset(p, 0xab, sizes[i]);
        CHECK(sizes[i] == 0 || p[sizes[i] - 1] == 0xab);
        free(p);
    }
    CHECK(lr_alloc(SIZE_MAX) == NULL);
}

static void test_timer_rss(void)
{
    double t0 = lr_time_now(), t1 = lr_time_now();
    CHECK(t1 >= t0);
    CHECK(lr_peak_rss() > 0);
}

int main(void)
{
    RUN(test_errors);
    RUN(test_bad_params);
    RUN(test_cpu_levels);
    RUN(test_arena);
    RUN(test_alloc);
    RUN(test_timer_rss);
    return CHECK_DONE();
}
