/* Arena: one block sized once per model and input shape; allocations are bump-pointer and
 * are all released together. A measuring pass (an arena with no memory) totals what a plan
 * needs, so the real arena is allocated exactly once. */
#ifndef LONGRANGE_ARENA_H
#define LONGRANGE_ARENA_H

#include "longrange/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    unsigned char *base; /* NULL while measuring */
    size_t size;         /* capacity in bytes (0 while measuring) */
    size_t used;         /* bytes handed out, alignment padding included */
    size_t peak;         /* largest `used` seen */
    int owned;           /* base came from lr_arena_init and is freed by lr_arena_free */
} lr_arena;

#define LR_ARENA_ALIGN 64

/* A measuring arena: allocations return NULL but count their size. */
void lr_arena_measure(lr_arena *a);
lr_status lr_arena_init(lr_ctx *ctx, lr_arena *a, size_t size);
/* Uses caller-owned memory (which must be LR_ARENA_ALIGN-aligned). */
void lr_arena_wrap(lr_arena *a, void *mem, size_t size);
void lr_arena_free(lr_arena *a);
/* 64-byte aligned. On exhaustion returns NULL and, if ctx is not NULL, records the error. */
void *lr_arena_alloc(lr_ctx *ctx, lr_arena *a, size_t bytes);
/* Element-count helper with overflow check: n * elem bytes. */
void *lr_arena_alloc_array(lr_ctx *ctx, lr_arena *a, size_t n, size_t elem);
void lr_arena_reset(lr_arena *a);
/* Save and restore a position, for scoped temporaries. */
static inline size_t lr_arena_mark(const lr_arena *a) { return a->used; }
static inline void lr_arena_release(lr_arena *a, size_t mark) { a->used = mark; }

#ifdef __cplusplus
}
#endif
#endif
