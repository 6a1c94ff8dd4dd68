/* attn-bench check: every kernel against its reference at small and awkward sizes, the causal
 * prefix property, and bit-identical results for any thread count. One TSV line per check. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn_bench.h"
#include "output.h"

typedef struct {
    FILE *f;
    lr_ctx *ctx;    /* -j threads: runs kernels and references */
    lr_ctx *single; /* one thread */
    lr_ctx *many;   /* at least two threads */
    uint64_t seed;
    int64_t checks, failures;
} checker;

/* The sizes a tiled, vectorised kernel gets wrong first. */
typedef struct {
    int64_t B, Hq, Hkv, L, D;
    int64_t cross_lq; /* query length of the cross patterns; 0: L / 2 */
    bool bias, padding, huge_logits;
} check_shape;

static const check_shape shapes[] = {
    {1, 1, 1, 1, 64, 1, false, false, false},   /* a single query and key */
    {1, 1, 1, 64, 64, 0, false, false, false},  /* exactly one tile */
    /* Lengths and head dimension off every tile and vector width; grouped heads; more
     * queries than keys, so that the first causal-cross rows see no key at all. */
    {2, 4, 2, 77, 17, 96, false, false, false},
    {1, 2, 1, 130, 40, 0, true, false, false},  /* multi-query heads, additive bias */
    /* Key padding: some keys of batch 0, every key of batch 1 (rows with nothing to see). */
    {2, 2, 2, 200, 128, 0, false, true, false},
    {1, 2, 2, 96, 32, 0, false, false, true},   /* logits of +-1e4 */
    {1, 1, 1, 33, 256, 7, false, false, false}, /* the largest head dimension */
};

/* Small enough that windowed rows at both ends and in the middle differ. */
enum { CHECK_WINDOW = 13, CHECK_SINKS = 3 };

static const char *dtype_label(lr_dtype t) { return t == LR_BF16 ? "bf16" : "fp32"; }

static void report(checker *ck, bool pass, const attn_kernel *k, const attn_case *c,
                   const char *check, const char *measured, const char *limit)
{
    char desc[192];
    int n = snprintf(desc, sizeof desc, "B=%lld H=%lld/%lld Lq=%lld Lk=%lld d=%lld",
                     (long long)c->B, (long long)c->Hq, (long long)c->Hkv, (long long)c->Lq,
                     (long long)c->Lk, (long long)c->D);
    if (k->uses_window)
        n += snprintf(desc + n, sizeof desc - (size_t)n, " w=%lld sinks=%lld",
                      (long long)c->window, (long long)c->sinks);
    if (c->bias)
        n += snprintf(desc + n, sizeof desc - (size_t)n, " bias");
    if (c->key_padding)
        n += snprintf(desc + n, sizeof desc - (size_t)n, " padding");
    if (c->scale > 0)
        snprintf(desc + n, sizeof desc - (size_t)n, " scale=%g", (double)c->scale);
    fprintf(ck->f, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", pass ? "PASS" : "FAIL", k->name,
            pattern_names[c->pattern], dtype_label(c->dtype), desc, check, measured, limit);
    ck->checks++;
    ck->failures += !pass;
}

/* A check that could not run is a failure, with the library's reason as its measurement. */
static void report_error(checker *ck, lr_ctx *ctx, const attn_kernel *k, const attn_case *c,
                         const char *check)
{
    char why[512];
    snprintf(why, sizeof why, "error: %s", lr_ctx_last_error(ctx));
    for (char *p = why; *p; p++)
        if (*p == '\t' || *p == '\n')
            *p = ' ';
    report(ck, false, k, c, check, why, "-");
}

static attn_case shape_case(const check_shape *sh, attn_pattern p, lr_dtype dtype)
{
    attn_case c = {
        .B = sh->B, .Hq = sh->Hq, .Hkv = sh->Hkv, .Lk = sh->L, .D = sh->D,
        .dtype = dtype, .pattern = p, .window = CHECK_WINDOW, .sinks = CHECK_SINKS,
    };
    c.Lq = !pattern_is_cross(p) ? sh->L : sh->cross_lq ? sh->cross_lq : sh->L > 1 ? sh->L / 2 : 1;
    /* With q and k of +-1 entries, q.k is an integer in [-D, D]. */
    if (sh->huge_logits)
        c.scale = 1e4f / (float)sh->D;
    return c;
}

static void check_reference(checker *ck, const attn_kernel *k, const check_shape *sh,
                            attn_pattern p, lr_dtype dtype)
{
    if (k->no_bias && (sh->bias || sh->padding))
        return;
    attn_case c = shape_case(sh, p, dtype);
    attn_tensors t;
    lr_tensor bias = {0}, padding = {0}, ref = {0};
    const int64_t bias_shape[4] = {1, c.Hq, c.Lq, c.Lk}, padding_shape[2] = {c.B, c.Lk};
    const int64_t out_shape[4] = {c.B, c.Hq, c.Lq, c.D};
    lr_status s = tensors_alloc(ck->ctx, &c, ck->seed, sh->huge_logits, &t);
    if (s == LR_OK && sh->bias && (s = tensor_zeros(ck->ctx, 4, bias_shape, LR_F32, &bias)) == LR_OK) {
        fill_uniform(&bias, ck->seed + 7, -2.0f, 2.0f);
        c.bias = &bias;
    }
    if (s == LR_OK && sh->padding &&
        (s = tensor_zeros(ck->ctx, 2, padding_shape, LR_U8, &padding)) == LR_OK) {
        fill_key_padding(&padding, ck->seed + 11);
        c.key_padding = &padding;
    }
    if (s == LR_OK)
        s = tensor_zeros(ck->ctx, 4, out_shape, LR_F32, &ref);
    if (s == LR_OK)
        s = k->run(ck->ctx, &c, &t.q, &t.k, &t.v, &t.out);
    if (s == LR_OK)
        s = (k->definition_rows ? k->definition_rows : k->reference_rows)(ck->ctx, &c, &t.q, &t.k,
                                                                           &t.v, 0, &ref);
    if (s != LR_OK) {
        report_error(ck, ck->ctx, k, &c, "reference");
    } else {
        attn_error e = {0, 0, 0};
        compare_values(&t.out, &ref, &e);
        double rel = error_relative(&e);
        double tolerance = dtype == LR_BF16 ? k->tolerance_bf16 : k->tolerance_f32;
        char measured[128], limit[32];
        int n = snprintf(measured, sizeof measured, "max rel err %.2e", rel);
        if (e.zeros_broken)
            snprintf(measured + n, sizeof measured - (size_t)n, ", %lld masked values not 0",
                     (long long)e.zeros_broken);
        snprintf(limit, sizeof limit, "%.0e", tolerance);
        report(ck, rel <= tolerance && e.zeros_broken == 0, k, &c, "reference", measured, limit);
    }
    tensors_free(&t);
    free(bias.data);
    free(padding.data);
    free(ref.data);
}

/* Row i of a causal self-attention depends on keys 0..i only, so it must come out the same,
 * bit for bit, when the sequence ends at any later point. */
static void check_prefix(checker *ck, const attn_kernel *k, lr_dtype dtype)
{
    static const int64_t prefixes[] = {1, 63, 64, 65, 149};
    attn_case c = {.B = 1, .Hq = 2, .Hkv = 2, .Lq = 150, .Lk = 150, .D = 64, .dtype = dtype,
                   .pattern = PATTERN_CAUSAL, .window = CHECK_WINDOW, .sinks = CHECK_SINKS};
    attn_tensors t;
    lr_status s = tensors_alloc(ck->ctx, &c, ck->seed, false, &t);
    if (s == LR_OK)
        s = k->run(ck->ctx, &c, &t.q, &t.k, &t.v, &t.out);
    if (s != LR_OK) {
        report_error(ck, ck->ctx, k, &c, "prefix");
        tensors_free(&t);
        return;
    }
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        int64_t len = prefixes[i];
        attn_case sub = c;
        sub.Lq = sub.Lk = len;
        char check[64];
        snprintf(check, sizeof check, "prefix %lld", (long long)len);
        /* The prefix as strided views of the full tensors, as a caller slicing a longer
         * sequence would pass it. */
        lr_tensor q, kk, v, full_rows, out = {0};
        const int64_t out_shape[4] = {c.B, c.Hq, len, c.D};
        s = lr_tensor_slice(ck->ctx, &t.q, 2, 0, len, &q);
        if (s == LR_OK)
            s = lr_tensor_slice(ck->ctx, &t.k, 2, 0, len, &kk);
        if (s == LR_OK)
            s = lr_tensor_slice(ck->ctx, &t.v, 2, 0, len, &v);
        if (s == LR_OK)
            s = lr_tensor_slice(ck->ctx, &t.out, 2, 0, len, &full_rows);
        if (s == LR_OK)
            s = tensor_zeros(ck->ctx, 4, out_shape, LR_F32, &out);
        if (s == LR_OK)
            s = k->run(ck->ctx, &sub, &q, &kk, &v, &out);
        if (s != LR_OK) {
            report_error(ck, ck->ctx, k, &sub, check);
        } else {
            int64_t differ = count_bit_differences(&out, &full_rows);
            char measured[64];
            snprintf(measured, sizeof measured, "%lld values differ", (long long)differ);
            report(ck, differ == 0, k, &sub, check, measured, "0");
        }
        free(out.data);
    }
    tensors_free(&t);
}

/* Work is cut into tasks independently of the thread count, so results must not change
 * with -j. Cross cases use few queries and many keys, the shape where splitting the keys
 * between threads would be tempting. */
static void check_threads(checker *ck, const attn_kernel *k, attn_pattern p, lr_dtype dtype)
{
    attn_case c = {.B = 1, .Hq = 3, .Hkv = 3, .Lq = 300, .Lk = 300, .D = 64, .dtype = dtype,
                   .pattern = p, .window = CHECK_WINDOW, .sinks = CHECK_SINKS};
    if (pattern_is_cross(p)) {
        c.Lq = 5;
        c.Lk = 3000;
    }
    char check[64];
    snprintf(check, sizeof check, "threads 1 vs %d", lr_ctx_threads(ck->many));
    attn_tensors t;
    lr_tensor out = {0};
    const int64_t out_shape[4] = {c.B, c.Hq, c.Lq, c.D};
    lr_ctx *failed = ck->ctx;
    lr_status s = tensors_alloc(ck->ctx, &c, ck->seed, false, &t);
    if (s == LR_OK)
        s = tensor_zeros(ck->ctx, 4, out_shape, LR_F32, &out);
    if (s == LR_OK && (s = k->run(ck->single, &c, &t.q, &t.k, &t.v, &t.out)) != LR_OK)
        failed = ck->single;
    if (s == LR_OK && (s = k->run(ck->many, &c, &t.q, &t.k, &t.v, &out)) != LR_OK)
        failed = ck->many;
    if (s != LR_OK) {
        report_error(ck, failed, k, &c, check);
    } else {
        int64_t differ = count_bit_differences(&out, &t.out);
        char measured[64];
        snprintf(measured, sizeof measured, "%lld values differ", (long long)differ);
        report(ck, differ == 0, k, &c, check, measured, "0");
    }
    tensors_free(&t);
    free(out.data);
}

static void check_kernel(checker *ck, const attn_kernel *k)
{
    static const lr_dtype dtypes[] = {LR_F32, LR_BF16};
    for (size_t di = 0; di < sizeof dtypes / sizeof dtypes[0]; di++) {
        for (int p = 0; p < PATTERN_COUNT; p++) {
            if (!(k->patterns & (1u << p)))
                continue;
            for (size_t si = 0; si < sizeof shapes / sizeof shapes[0] && !k->is_reference; si++)
                check_reference(ck, k, &shapes[si], (attn_pattern)p, dtypes[di]);
            check_threads(ck, k, (attn_pattern)p, dtypes[di]);
        }
        if ((k->patterns & (1u << PATTERN_CAUSAL)) && !k->no_prefix_property)
            check_prefix(ck, k, dtypes[di]);
    }
}

int check_main(const cli_args *args, const attn_options *opt)
{
    checker ck = {.seed = args->seed};
    int rc = cli_context(args, &ck.ctx);
    if (rc != CLI_EXIT_OK)
        return rc;
    cli_args one = *args;
    one.threads = 1;
    if ((rc = cli_context(&one, &ck.single)) != CLI_EXIT_OK) {
        lr_ctx_destroy(ck.ctx);
        return rc;
    }
    ck.many = ck.ctx;
    if (lr_ctx_threads(ck.ctx) < 2) {
        cli_args two = *args;
        two.threads = 2;
        if ((rc = cli_context(&two, &ck.many)) != CLI_EXIT_OK) {
            lr_ctx_destroy(ck.single);
            lr_ctx_destroy(ck.ctx);
            return rc;
        }
    }

    output *out;
    if ((rc = output_open(args->output, false, false, &out)) == CLI_EXIT_OK) {
        ck.f = output_stream(out);
        fprintf(ck.f, "result\tkernel\tpattern\tdtype\tcase\tcheck\tmeasured\tlimit\n");
        if (opt->n_kernels == 0) {
            for (const attn_kernel *const *k = attn_kernels; *k; k++)
                check_kernel(&ck, *k);
        } else {
            for (int i = 0; i < opt->n_kernels; i++)
                check_kernel(&ck, opt->kernels[i]);
        }
        /* The report is complete even when checks failed: it is committed either way. */
        rc = output_commit(out);
        if (rc == CLI_EXIT_OK && ck.failures > 0) {
            cli_error(NULL, "%lld of %lld checks failed", (long long)ck.failures,
                      (long long)ck.checks);
            rc = CLI_EXIT_DATA;
        }
    }
    if (ck.many != ck.ctx)
        lr_ctx_destroy(ck.many);
    lr_ctx_destroy(ck.single);
    lr_ctx_destroy(ck.ctx);
    return rc;
}
