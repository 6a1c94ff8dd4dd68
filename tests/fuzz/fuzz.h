/* What every libFuzzer target here shares: a single-threaded context that stays quiet, and an
 * EXPECT that turns a broken invariant into a crash the fuzzer records. */
#ifndef LR_FUZZ_H
#define LR_FUZZ_H

#include <stdlib.h>

#include "longrange/core.h"

#define EXPECT(cond) \
    do {             \
        if (!(cond)) \
            abort(); \
    } while (0)

static lr_ctx *fuzz_ctx(void)
{
    static lr_ctx *ctx;
    if (!ctx) {
        lr_ctx_params p = lr_ctx_default_params();
        p.n_threads = 1;
        p.log_level = LR_LOG_ERROR;
        EXPECT(lr_ctx_create(&ctx, &p) == LR_OK);
    }
    return ctx;
}

#endif
