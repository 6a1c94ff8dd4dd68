/* attn-bench: what its subcommands (bench, check, run) share: attention problems ("cases"),
 * the kernel table, random inputs and output comparisons. */
#ifndef ATTN_BENCH_H
#define ATTN_BENCH_H

#include <stdbool.h>
#include <stdint.h>

#include "cli.h"
#include "longrange/attention.h"

/* CAB's four patterns: causal or not, self (Lq == Lk) or cross. */
typedef enum {
    PATTERN_SELF,
    PATTERN_CAUSAL,
    PATTERN_CROSS,
    PATTERN_CAUSAL_CROSS,
    PATTERN_COUNT
} attn_pattern;

extern const char *const pattern_names[PATTERN_COUNT];
bool pattern_is_causal(attn_pattern p);
bool pattern_is_cross(attn_pattern p);
#define ALL_PATTERNS ((1u << PATTERN_COUNT) - 1)

/* One attention problem: q [B, Hq, Lq, D], k and v [B, Hkv, Lk, D], out [B, Hq, Lq, D]. */
typedef struct {
    int64_t B, Hq, Hkv, Lq, Lk, D;
    lr_dtype dtype; /* of q, k and v: LR_F32 or LR_BF16 */
    attn_pattern pattern;
    int64_t window, sinks;  /* for kernels that take them (attn_kernel.uses_window) */
    float scale;            /* 0: 1/sqrt(D) */
    const lr_tensor *bias, *key_padding; /* optional, as in lr_attn_params */
} attn_case;

typedef lr_status (*attn_run_fn)(lr_ctx *ctx, const attn_case *c, const lr_tensor *q,
                                 const lr_tensor *k, const lr_tensor *v, lr_tensor *out);

/* One row of the kernel table: adding a kernel to attn-bench means adding a row. */
typedef struct {
    const char *name;
    const char *summary;     /* one line, for the man page and -v */
    unsigned patterns;       /* bit (1 << attn_pattern) for every pattern it runs */
    bool uses_window;        /* takes --window and --sinks */
    bool is_reference;       /* computes the reference itself: check skips comparing the two */
    int64_t max_len;         /* longest key length bench runs it at; 0: no limit */
    bool no_bias;            /* takes no bias or key padding: check skips the shapes with them */
    /* Row i may change, at least in its last bits, when the sequence grows past i: the
     * pattern is chosen from all queries (ProbSparse, MInference) or the FFT size follows the
     * length (long convolution). check then skips the causal prefix property. */
    bool no_prefix_property;
    double tolerance_f32, tolerance_bf16; /* largest relative error check accepts */
    attn_run_fn run;
    /* Rows [row0, row0 + n) of the exact result of the case, into out_rows [B, Hq, n, D]
     * (F32, contiguous). Callers ask for the last rows of any case and for the first rows of
     * a causal one; the exact result of an approximate kernel is the softmax attention it
     * stands for. NULL for operators that stand for no attention (long convolution,
     * auto-correlation): bench then reports no error. */
    lr_status (*reference_rows)(lr_ctx *ctx, const attn_case *c, const lr_tensor *q,
                                const lr_tensor *k, const lr_tensor *v, int64_t row0,
                                lr_tensor *out_rows);
    /* The same rows of the kernel's own definition, for kernels that are not softmax
     * attention at all (the linear family): check compares with these, while bench's error
     * column still reports the distance from reference_rows. NULL: reference_rows is the
     * definition; it must be set when reference_rows is NULL. */
    lr_status (*definition_rows)(lr_ctx *ctx, const attn_case *c, const lr_tensor *q,
                                 const lr_tensor *k, const lr_tensor *v, int64_t row0,
                                 lr_tensor *out_rows);
    double (*flops)(const attn_case *c); /* of one run */
} attn_kernel;

/* Every kernel, ended by NULL. Each kernel is one attn_kernel object; those outside kernels.c
 * are declared here. */
extern const attn_kernel *const attn_kernels[];
/* extra kernels: one line each */
extern const attn_kernel attn_kernel_vertical_slash;
extern const attn_kernel attn_kernel_block_sparse;
extern const attn_kernel attn_kernel_landmark;
extern const attn_kernel attn_kernel_landmark_topk;
extern const attn_kernel attn_kernel_bra;
extern const attn_kernel attn_kernel_probsparse;
extern const attn_kernel attn_kernel_rat;
extern const attn_kernel attn_kernel_hyena;
extern const attn_kernel attn_kernel_autocorr;
const attn_kernel *kernel_find(const char *name);
/* "flash, naive, window" into buf. */
const char *kernel_names(char *buf, size_t size);

/* The reference_rows of every kernel that stands for exact softmax attention (with the case's
 * causal pattern, bias and key padding): lr_attention_ref on the rows asked for. */
lr_status exact_reference_rows(lr_ctx *ctx, const attn_case *c, const lr_tensor *q,
                               const lr_tensor *k, const lr_tensor *v, int64_t row0,
                               lr_tensor *out_rows);

/* ---- inputs and comparisons ---- */

/* For kernels that take F32 only: *use is t itself when F32, else a widened copy in *wide
 * (wide->data is then to be freed by the caller; it stays NULL otherwise). */
lr_status input_f32(lr_ctx *ctx, const lr_tensor *t, lr_tensor *wide, lr_tensor *use);

/* q, k, v of a case, uniform in [-1, 1) from seed (or +-1 when signs_only), and out. */
typedef struct {
    lr_tensor q, k, v, out;
} attn_tensors;

lr_status tensors_alloc(lr_ctx *ctx, const attn_case *c, uint64_t seed, bool signs_only,
                        attn_tensors *t);
void tensors_free(attn_tensors *t);

/* A contiguous F32 tensor of the given shape, zeroed; free its data with free(). */
lr_status tensor_zeros(lr_ctx *ctx, int ndim, const int64_t *shape, lr_dtype dtype,
                       lr_tensor *out);
/* Fills an F32 tensor uniformly in [lo, hi) from seed. */
void fill_uniform(lr_tensor *t, uint64_t seed, float lo, float hi);
/* Key padding U8 [B, Lk]: about a quarter of batch 0's keys padded, every key of the other
 * batches (whose rows then have no key to see). */
void fill_key_padding(lr_tensor *padding, uint64_t seed);

typedef struct {
    double max_abs;        /* largest |x - ref| (infinity for a NaN) */
    double max_ref;        /* largest |ref| */
    int64_t zeros_broken;  /* nonzero values of x in rows that are all 0 in the reference */
} attn_error;

/* Adds the comparison of x [B, H, n, D] (any strides) with ref [B, H, n, D] to e (which starts
 * zeroed). */
void compare_values(const lr_tensor *x, const lr_tensor *ref, attn_error *e);
/* max_abs over max_ref: the error relative to the output's scale (max_abs when ref is all
 * zeros), steady where single reference values come close to zero. */
double error_relative(const attn_error *e);
/* Values of x [B, H, n, D] whose bits differ from those of y. */
int64_t count_bit_differences(const lr_tensor *x, const lr_tensor *y);

/* The lr_attn_params of the softmax kernels for a case (window and sinks when windowed). */
lr_attn_params softmax_params(const attn_case *c, bool windowed);

/* ---- subcommands ---- */

enum { MAX_LIST = 64 };

typedef struct {
    const attn_kernel *kernels[MAX_LIST];
    int n_kernels;
    attn_pattern patterns[MAX_LIST];
    int n_patterns;
    int64_t lengths[MAX_LIST];
    int n_lengths;
    int64_t lq;            /* query length of the cross patterns; 0: half the key length */
    int64_t head_dim, heads, kv_heads, batch; /* kv_heads 0: as many as heads */
    lr_dtype dtype;
    int64_t window, sinks;
    float scale;
    int64_t reps, ref_rows;
    double min_time;
    unsigned given;        /* OPT_* bits of the options on the command line */
} attn_options;

/* Options a subcommand may be given, one bit each. */
enum {
    OPT_KERNEL = 1u << 0,
    OPT_PATTERN = 1u << 1,
    OPT_LENGTH = 1u << 2,
    OPT_LQ = 1u << 3,
    OPT_HEAD_DIM = 1u << 4,
    OPT_HEADS = 1u << 5,
    OPT_KV_HEADS = 1u << 6,
    OPT_BATCH = 1u << 7,
    OPT_DTYPE = 1u << 8,
    OPT_WINDOW = 1u << 9,
    OPT_SINKS = 1u << 10,
    OPT_SCALE = 1u << 11,
    OPT_REPS = 1u << 12,
    OPT_MIN_TIME = 1u << 13,
    OPT_REF_ROWS = 1u << 14,
};

int bench_main(const cli_args *args, const attn_options *opt);
int check_main(const cli_args *args, const attn_options *opt);
int run_main(const cli_args *args, const attn_options *opt);

#endif
