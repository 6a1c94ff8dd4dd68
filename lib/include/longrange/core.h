/* libcore: status codes, the context (errors, logging, threads, CPU level), timers.
 * Every fallible call returns an lr_status; the context keeps the text of the last error.
 * Nothing in the library exits or aborts on input; asserts guard internal invariants only. */
#ifndef LONGRANGE_CORE_H
#define LONGRANGE_CORE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LR_VERSION "0.1.0"

typedef enum {
    LR_OK = 0,
    LR_ERR_ARG,         /* caller passed something invalid (a usage error) */
    LR_ERR_NOMEM,       /* allocation failed or a configured limit was exceeded */
    LR_ERR_IO,          /* open/read/write/mmap failed */
    LR_ERR_DATA,        /* malformed input data (image, sequence, CSV, ...) */
    LR_ERR_MODEL,       /* unusable model file: malformed, wrong arch, missing/mis-shaped tensor */
    LR_ERR_UNSUPPORTED, /* valid but not supported by this build or CPU */
    LR_ERR_INTERNAL
} lr_status;

const char *lr_status_str(lr_status s);

/* Instruction-set level of the CPU kernels; LR_CPU=ref|avx2|avx512 forces one. */
typedef enum { LR_CPU_REF = 0, LR_CPU_AVX2 = 1, LR_CPU_AVX512 = 2 } lr_cpu_level;

typedef enum { LR_DEVICE_CPU = 0, LR_DEVICE_CUDA = 1 } lr_device;

typedef enum { LR_LOG_ERROR = 0, LR_LOG_WARN, LR_LOG_INFO, LR_LOG_DEBUG } lr_log_level;
typedef void (*lr_log_fn)(lr_log_level level, const char *msg, void *user);

typedef struct lr_ctx lr_ctx;

typedef struct {
    int n_threads;          /* 0: one per online CPU */
    lr_device device;       /* LR_DEVICE_CUDA needs a build with CUDA=1 */
    int cpu_level;          /* -1: detect (honouring LR_CPU); else an lr_cpu_level to cap at */
    lr_log_fn log;          /* NULL: messages at or below log_level go to stderr */
    void *log_user;
    lr_log_level log_level; /* default LR_LOG_WARN */
} lr_ctx_params;

lr_ctx_params lr_ctx_default_params(void);
/* On failure *out is NULL; the reason goes to the log (there is no context yet to hold it). */
lr_status lr_ctx_create(lr_ctx **out, const lr_ctx_params *params);
void lr_ctx_destroy(lr_ctx *ctx);

/* The text of the most recent error set on ctx ("" if none). */
const char *lr_ctx_last_error(const lr_ctx *ctx);
/* Record an error and return s, so that `return lr_fail(ctx, LR_ERR_DATA, "...")` reads well. */
lr_status lr_fail(lr_ctx *ctx, lr_status s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
lr_status lr_vfail(lr_ctx *ctx, lr_status s, const char *fmt, va_list ap);
void lr_clear_error(lr_ctx *ctx);

void lr_log(lr_ctx *ctx, lr_log_level level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void lr_ctx_set_log_level(lr_ctx *ctx, lr_log_level level);

int lr_ctx_threads(const lr_ctx *ctx);
lr_cpu_level lr_ctx_cpu(const lr_ctx *ctx);
lr_device lr_ctx_device(const lr_ctx *ctx);

/* What the CPU supports, and the level LR_CPU asks for (or the best supported). */
lr_cpu_level lr_cpu_detect(void);
const char *lr_cpu_level_name(lr_cpu_level level);

/* On a function of element-wise loops (libcore's or a program's): one clone per x86
 * instruction set, picked when the program loads, with GCC's loop vectoriser free to work
 * (at -O2 its cheapest cost model leaves most loops scalar). Only for loops where every
 * lane does the same IEEE operations in the same order, so all clones give the same bits. */
#if defined(__x86_64__) && defined(__clang__)
#define LR_VECTORIZE __attribute__((target_clones("avx512f", "avx2", "default")))
#elif defined(__x86_64__) && defined(__GNUC__)
#define LR_VECTORIZE __attribute__((target_clones("avx512f", "avx2", "default"), optimize("vect-cost-model=dynamic")))
#else
#define LR_VECTORIZE
#endif

/* A large working buffer: 64-byte aligned, and from 2 MiB up aligned to 2 MiB and advised
 * for transparent huge pages, so touching it costs one page fault per 2 MiB instead of
 * 512 and GEMM panels miss the TLB less. NULL when out of memory; release with free(). */
void *lr_alloc(size_t bytes);

/* Monotonic seconds. */
double lr_time_now(void);

/* Peak resident set size of this process in bytes (0 if unknown). */
size_t lr_peak_rss(void);

#ifdef __cplusplus
}
#endif
#endif
