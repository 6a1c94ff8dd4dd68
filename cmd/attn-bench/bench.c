/* attn-bench bench: time every (length, kernel, pattern) case and report GFLOP/s, % of the
 * machine's peak, memory growth and the error against exact attention. */
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn_bench.h"
#include "longrange/perf.h"
#include "output.h"
#include "progress.h"
#include "writers.h"

enum { MAX_RUNS = 1000, PEAK_PROBES = 3 };

typedef struct {
    const attn_kernel *kernel;
    attn_case c;
    int threads;
    int64_t runs;          /* timed runs */
    double best, median;   /* seconds */
    double flops;          /* of one run */
    double extra_bytes;    /* peak RSS growth while the kernel ran */
    attn_error error;
    int64_t error_rows;    /* query rows compared, 0 when none */
} bench_result;

/* Lowers the process's peak-RSS mark to its current RSS (Linux 4.0+ clear_refs), so that each
 * case's growth is its own and not hidden below an earlier case's peak. */
static bool reset_peak_rss(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f)
        return false;
    bool ok = fputs("5", f) >= 0;
    return fclose(f) == 0 && ok;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Runs the kernel until it has `reps` timed runs and `min_time` seconds of them. A first run
 * shorter than min_time only warms caches and page tables; a longer one counts, so that a
 * case of minutes is not run twice for the sake of a warm start. */
static lr_status time_kernel(lr_ctx *ctx, const attn_options *opt, bench_result *r,
                             attn_tensors *t)
{
    double times[MAX_RUNS], timed = 0;
    int64_t n = 0;
    for (int64_t attempt = 0; n < opt->reps || (timed < opt->min_time && n < MAX_RUNS);
         attempt++) {
        double start = lr_time_now();
        lr_status s = r->kernel->run(ctx, &r->c, &t->q, &t->k, &t->v, &t->out);
        double elapsed = lr_time_now() - start;
        if (s != LR_OK)
            return s;
        if (attempt == 0 && elapsed < opt->min_time)
            continue;
        times[n++] = elapsed;
        timed += elapsed;
    }
    qsort(times, (size_t)n, sizeof times[0], compare_doubles);
    r->runs = n;
    r->best = times[0];
    r->median = n % 2 ? times[n / 2] : 0.5 * (times[n / 2 - 1] + times[n / 2]);
    return LR_OK;
}

/* Compares the output's rows [row0, row0 + n) with the kernel's reference. */
static lr_status compare_rows(lr_ctx *ctx, bench_result *r, const attn_tensors *t, int64_t row0,
                              int64_t n)
{
    const attn_case *c = &r->c;
    const int64_t shape[4] = {c->B, c->Hq, n, c->D};
    lr_tensor ref, got;
    lr_status s = tensor_zeros(ctx, 4, shape, LR_F32, &ref);
    if (s != LR_OK)
        return s;
    s = r->kernel->reference_rows(ctx, c, &t->q, &t->k, &t->v, row0, &ref);
    if (s == LR_OK)
        s = lr_tensor_slice(ctx, &t->out, 2, row0, n, &got);
    if (s == LR_OK)
        compare_values(&got, &ref, &r->error);
    free(ref.data);
    return s;
}

/* Sampled rows suffice because every output row depends only on its own query: the last
 * rows (those that see the most keys), and for a causal case the first rows as well. */
static lr_status measure_error(lr_ctx *ctx, const attn_options *opt, bench_result *r,
                               const attn_tensors *t)
{
    int64_t Lq = r->c.Lq, n = opt->ref_rows < Lq ? opt->ref_rows : Lq;
    int64_t first = pattern_is_causal(r->c.pattern) && n < Lq ? n / 2 : 0;
    r->error_rows = n;
    lr_status s = LR_OK;
    if (first > 0)
        s = compare_rows(ctx, r, t, 0, first);
    if (s == LR_OK && n - first > 0)
        s = compare_rows(ctx, r, t, Lq - (n - first), n - first);
    return s;
}

/* One case in a context of its own, so that its thread scratch counts as its memory. */
static int bench_case(const cli_args *args, const attn_options *opt, bench_result *r)
{
    lr_ctx *ctx;
    int rc = cli_context(args, &ctx);
    if (rc != CLI_EXIT_OK)
        return rc;
    r->threads = lr_ctx_threads(ctx);
    r->flops = r->kernel->flops(&r->c);
    attn_tensors t;
    lr_status s = tensors_alloc(ctx, &r->c, args->seed, false, &t);
    if (s == LR_OK) {
        reset_peak_rss();
        size_t before = lr_peak_rss();
        s = time_kernel(ctx, opt, r, &t);
        size_t after = lr_peak_rss();
        r->extra_bytes = after > before ? (double)(after - before) : 0;
    }
    if (s == LR_OK && opt->ref_rows > 0 && r->kernel->reference_rows)
        s = measure_error(ctx, opt, r, &t);
    if (s != LR_OK) {
        char label[128];
        snprintf(label, sizeof label, "%s %s Lq=%lld Lk=%lld", r->kernel->name,
                 pattern_names[r->c.pattern], (long long)r->c.Lq, (long long)r->c.Lk);
        rc = cli_report(ctx, s, label);
    }
    tensors_free(&t);
    lr_ctx_destroy(ctx);
    /* Memory the case freed goes back to the system, or the next case would reuse it
     * without its RSS growing. */
    malloc_trim(0);
    return rc;
}

/* ---- output ---- */

static const char *const columns[] = {
    "kernel",  "pattern",   "dtype",       "batch",       "heads",       "kv_heads",
    "lq",      "lk",        "head_dim",    "window",      "sinks",       "threads",
    "runs",    "best_ms",   "median_ms",   "gflop",       "gflops",      "peak_gflops",
    "pct_peak", "extra_mib", "max_abs_err", "max_rel_err", "error_rows",
};
enum { N_COLUMNS = sizeof columns / sizeof columns[0] };

static double gflops_of(const bench_result *r) { return r->flops / r->best * 1e-9; }

static void write_table_row(table_writer *w, const bench_result *r, double peak)
{
    const attn_case *c = &r->c;
    table_str(w, r->kernel->name);
    table_str(w, pattern_names[c->pattern]);
    table_str(w, c->dtype == LR_BF16 ? "bf16" : "fp32");
    table_int(w, c->B);
    table_int(w, c->Hq);
    table_int(w, c->Hkv);
    table_int(w, c->Lq);
    table_int(w, c->Lk);
    table_int(w, c->D);
    if (r->kernel->uses_window) {
        table_int(w, c->window);
        table_int(w, c->sinks);
    } else {
        table_missing(w);
        table_missing(w);
    }
    table_int(w, r->threads);
    table_int(w, r->runs);
    table_f64(w, r->best * 1e3);
    table_f64(w, r->median * 1e3);
    table_f64(w, r->flops / 1e9);
    table_f64(w, gflops_of(r));
    table_f64(w, peak);
    table_f64(w, 100 * gflops_of(r) / peak);
    table_f64(w, r->extra_bytes / (1024.0 * 1024.0));
    if (r->error_rows > 0) {
        table_f64(w, r->error.max_abs);
        table_f64(w, error_relative(&r->error));
        table_int(w, r->error_rows);
    } else {
        table_missing(w);
        table_missing(w);
        table_missing(w);
    }
    table_end_row(w);
}

static void write_markdown_head(FILE *f, const attn_case *c, int threads, lr_cpu_level cpu,
                                double peak)
{
    fprintf(f, "attn-bench: B=%lld, heads %lld (kv %lld), d=%lld, %s, %d thread%s, CPU %s; "
               "peak %.1f GFLOP/s (measured by lr_peak_gflops in this run).\n"
               "FLOPs = 4 * d * visible (query, key) pairs; times are the best and median of "
               "the timed runs; extra = peak RSS growth; errors against exact attention on "
               "sampled rows.\n\n",
            (long long)c->B, (long long)c->Hq, (long long)c->Hkv, (long long)c->D,
            c->dtype == LR_BF16 ? "bf16" : "fp32", threads, threads == 1 ? "" : "s",
            lr_cpu_level_name(cpu), peak);
    fprintf(f, "| kernel | pattern | Lq | Lk | runs | best ms | median ms | GFLOP/s | %% peak "
               "| extra MiB | max abs err | max rel err |\n"
               "|:--|:--|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
}

static void write_markdown_row(FILE *f, const bench_result *r, double peak)
{
    const attn_case *c = &r->c;
    char kernel[128], errors[64];
    if (r->kernel->uses_window)
        snprintf(kernel, sizeof kernel, "%s (w=%lld, sinks=%lld)", r->kernel->name,
                 (long long)c->window, (long long)c->sinks);
    else
        snprintf(kernel, sizeof kernel, "%s", r->kernel->name);
    if (r->error_rows > 0)
        snprintf(errors, sizeof errors, "%.2e | %.2e", r->error.max_abs,
                 error_relative(&r->error));
    else
        snprintf(errors, sizeof errors, "- | -");
    fprintf(f, "| %s | %s | %lld | %lld | %lld | %.4g | %.4g | %.1f | %.1f | %.1f | %s |\n",
            kernel, pattern_names[c->pattern], (long long)c->Lq, (long long)c->Lk,
            (long long)r->runs, r->best * 1e3, r->median * 1e3, gflops_of(r),
            100 * gflops_of(r) / peak, r->extra_bytes / (1024.0 * 1024.0), errors);
}

/* ---- cases ---- */

static attn_case make_case(const attn_options *opt, attn_pattern pattern, int64_t length)
{
    attn_case c = {
        .B = opt->batch,
        .Hq = opt->heads,
        .Hkv = opt->kv_heads ? opt->kv_heads : opt->heads,
        .Lk = length,
        .D = opt->head_dim,
        .dtype = opt->dtype,
        .pattern = pattern,
        .window = opt->window,
        .sinks = opt->sinks,
        .scale = opt->scale,
    };
    c.Lq = !pattern_is_cross(pattern) ? length : opt->lq ? opt->lq : length > 1 ? length / 2 : 1;
    return c;
}

/* Why a kernel does not run a case, or NULL when it does. */
static const char *skip_reason(const attn_kernel *k, const attn_case *c, char *buf, size_t size)
{
    if (!(k->patterns & (1u << c->pattern))) {
        snprintf(buf, size, "kernel %s does not run pattern %s", k->name,
                 pattern_names[c->pattern]);
        return buf;
    }
    if (k->max_len > 0 && c->Lk > k->max_len) {
        snprintf(buf, size, "kernel %s runs only up to L=%lld, not %lld", k->name,
                 (long long)k->max_len, (long long)c->Lk);
        return buf;
    }
    return NULL;
}

int bench_main(const cli_args *args, const attn_options *given)
{
    attn_options opt = *given;
    if (opt.n_kernels == 0)
        opt.kernels[opt.n_kernels++] = kernel_find("flash");
    if (opt.n_patterns == 0) {
        opt.patterns[opt.n_patterns++] = PATTERN_SELF;
        opt.patterns[opt.n_patterns++] = PATTERN_CAUSAL;
    }
    if (opt.n_lengths == 0) {
        opt.lengths[opt.n_lengths++] = 1024;
        opt.lengths[opt.n_lengths++] = 4096;
    }

    lr_ctx *ctx;
    int rc = cli_context(args, &ctx);
    if (rc != CLI_EXIT_OK)
        return rc;
    int threads = lr_ctx_threads(ctx);
    lr_cpu_level cpu = lr_ctx_cpu(ctx);
    /* Best of a few probes, like the kernels' best times: other work on a shared machine
     * only ever lowers a measurement. */
    double peak = 0;
    for (int probe = 0; probe < PEAK_PROBES; probe++)
        peak = fmax(peak, lr_peak_gflops(ctx, threads));
    lr_ctx_destroy(ctx);
    cli_info(NULL, "peak %.1f GFLOP/s on %d threads", peak, threads);

    output *out;
    if ((rc = output_open(args->output, false, false, &out)) != CLI_EXIT_OK)
        return rc;
    FILE *f = output_stream(out);
    bool markdown = strcmp(args->format, "md") == 0;
    data_format format = FORMAT_TSV;
    if (strcmp(args->format, "csv") == 0)
        format = FORMAT_CSV;
    else if (strcmp(args->format, "json") == 0)
        format = FORMAT_JSONL;
    table_writer table;
    if (markdown) {
        attn_case first = make_case(&opt, opt.patterns[0], opt.lengths[0]);
        write_markdown_head(f, &first, threads, cpu, peak);
    } else {
        table_begin(&table, f, format, columns, N_COLUMNS);
    }
    fflush(f);

    if (!reset_peak_rss())
        cli_warn(NULL, "cannot reset the peak RSS (/proc/self/clear_refs): extra memory shows "
                       "only how far each case raised the peak of the whole run");
    /* A failed case is reported and the others still run; the status is then 1 and -o FILE
     * is left as it was, as for any failed run. */
    progress bar;
    int64_t total = (int64_t)opt.n_lengths * opt.n_kernels * opt.n_patterns, done = 0;
    progress_start(&bar, args->progress, "cases", (uint64_t)total);
    int worst = CLI_EXIT_OK;
    for (int li = 0; li < opt.n_lengths; li++)
        for (int ki = 0; ki < opt.n_kernels; ki++)
            for (int pi = 0; pi < opt.n_patterns; pi++) {
                bench_result r = {.kernel = opt.kernels[ki]};
                r.c = make_case(&opt, opt.patterns[pi], opt.lengths[li]);
                char why[256];
                if (skip_reason(r.kernel, &r.c, why, sizeof why)) {
                    cli_warn(NULL, "%s: skipped", why);
                } else if ((rc = bench_case(args, &opt, &r)) != CLI_EXIT_OK) {
                    worst = rc > worst ? rc : worst;
                } else {
                    if (markdown)
                        write_markdown_row(f, &r, peak);
                    else
                        write_table_row(&table, &r, peak);
                    fflush(f);
                }
                progress_update(&bar, (uint64_t)++done);
            }
    progress_finish(&bar, (uint64_t)done);
    if (worst != CLI_EXIT_OK) {
        output_abort(out);
        return worst;
    }
    return output_commit(out);
}
