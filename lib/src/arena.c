/* Bump allocator; see arena.h. */
#include <stdlib.h>

#include "internal.h"
#include "longrange/arena.h"

void lr_arena_measure(lr_arena *a)
{
    a->base = NULL;
    a->size = 0;
    a->used = a->peak = 0;
    a->owned = 0;
}

lr_status lr_arena_init(lr_ctx *ctx, lr_arena *a, size_t size)
{
    lr_arena_measure(a);
    size_t rounded = (size + LR_ARENA_ALIGN - 1) & ~(size_t)(LR_ARENA_ALIGN - 1);
    if (rounded < size)
        return lr_fail(ctx, LR_ERR_NOMEM, "arena of %zu bytes is too large", size);
    if (rounded == 0)
        rounded = LR_ARENA_ALIGN;
    a->base = aligned_alloc(LR_ARENA_ALIGN, rounded);
    if (!a->base)
        return lr_fail(ctx, LR_ERR_NOMEM, "out of memory allocating a %zu-byte work arena", rounded);
    a->size = rounded;
    a->owned = 1;
    return LR_OK;
}

void lr_arena_wrap(lr_arena *a, void *mem, size_t size)
{
    lr_arena_measure(a);
    a->base = mem;
    a->size = size;
}

void lr_arena_free(lr_arena *a)
{
    if (a->owned)
        free(a->base);
    lr_arena_measure(a);
}

void *lr_arena_alloc(lr_ctx *ctx, lr_arena *a, size_t bytes)
{
    size_t start = (a->used + LR_ARENA_ALIGN - 1) & ~(size_t)(LR_ARENA_ALIGN - 1);
    size_t end;
    if (start < a->used || !lr_add_size(start, bytes, &end)) {
        lr_fail(ctx, LR_ERR_NOMEM, "arena request of %zu bytes overflows", bytes);
        return NULL;
    }
    if (!a->base) { /* measuring */
        a->used = end;
        if (end > a->peak)
            a->peak = end;
        return NULL;
    }
    if (end > a->size) {
        lr_fail(ctx, LR_ERR_NOMEM, "work arena exhausted: %zu bytes requested, %zu of %zu free",
                bytes, a->size - a->used, a->size);
        return NULL;
    }
    a->used = end;
    if (end > a->peak)
        a->peak = end;
    return a->base + start;
}

void *lr_arena_alloc_array(lr_ctx *ctx, lr_arena *a, size_t n, size_t elem)
{
    size_t bytes;
    if (!lr_mul_size(n, elem, &bytes)) {
        lr_fail(ctx, LR_ERR_NOMEM, "arena request of %zu x %zu bytes overflows", n, elem);
        return NULL;
    }
    return lr_arena_alloc(ctx, a, bytes);
}

void lr_arena_reset(lr_arena *a) { a->used = 0; }
