/* attn-bench: measures attention kernels (bench), checks them against exact attention (check)
 * and runs one on tensors from a file (run). See attn-bench(1). */
#include <stdio.h>
#include <string.h>

#include "attn_bench.h"
#include "numbers.h"

/* Calls take_item for every item of a comma-separated list; false on an empty item or when
 * take_item refuses one (having reported why). */
static bool parse_list(const cli_option *o, const char *arg,
                       bool (*take_item)(const cli_option *o, const char *item, void *user),
                       void *user)
{
    char item[256];
    for (const char *p = arg;;) {
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= sizeof item) {
            cli_usage_error("option --%s: invalid list '%s'", o->long_name, arg);
            return false;
        }
        memcpy(item, p, len);
        item[len] = '\0';
        if (!take_item(o, item, user))
            return false;
        if (p[len] == '\0')
            return true;
        p += len + 1;
    }
}

static bool list_full(const cli_option *o, int n)
{
    if (n < MAX_LIST)
        return false;
    cli_usage_error("option --%s: more than %d items", o->long_name, MAX_LIST);
    return true;
}

static bool take_kernel(const cli_option *o, const char *item, void *user)
{
    attn_options *opt = user;
    bool all = strcmp(item, "all") == 0;
    for (const attn_kernel *const *kp = attn_kernels; *kp; kp++) {
        const attn_kernel *k = *kp;
        if (all || strcmp(k->name, item) == 0) {
            if (list_full(o, opt->n_kernels))
                return false;
            opt->kernels[opt->n_kernels++] = k;
            if (!all)
                return true;
        }
    }
    if (all)
        return true;
    char names[512];
    cli_usage_error("option --kernel: unknown kernel '%s' (choose from %s, or all)", item,
                    kernel_names(names, sizeof names));
    return false;
}

static bool take_pattern(const cli_option *o, const char *item, void *user)
{
    attn_options *opt = user;
    bool all = strcmp(item, "all") == 0;
    for (int p = 0; p < PATTERN_COUNT; p++) {
        if (all || strcmp(pattern_names[p], item) == 0) {
            if (list_full(o, opt->n_patterns))
                return false;
            opt->patterns[opt->n_patterns++] = (attn_pattern)p;
            if (!all)
                return true;
        }
    }
    if (all)
        return true;
    cli_usage_error("option --pattern: unknown pattern '%s' (choose from self, causal, cross, "
                    "causal-cross, or all)", item);
    return false;
}

/* Lengths up to 2^32: a million-token sequence and far beyond, still a sane size to allocate
 * for a single head. */
#define MAX_LENGTH (UINT64_C(1) << 32)

static bool take_length(const cli_option *o, const char *item, void *user)
{
    attn_options *opt = user;
    uint64_t n;
    if (!cli_option_count(o, item, 1, MAX_LENGTH, &n) || list_full(o, opt->n_lengths))
        return false;
    opt->lengths[opt->n_lengths++] = (int64_t)n;
    return true;
}

static bool set_kernels(const cli_option *o, const char *arg, void *user)
{
    attn_options *opt = user;
    opt->n_kernels = 0; /* the last --kernel wins, as for any option */
    opt->given |= OPT_KERNEL;
    return parse_list(o, arg, take_kernel, user);
}

static bool set_patterns(const cli_option *o, const char *arg, void *user)
{
    attn_options *opt = user;
    opt->n_patterns = 0;
    opt->given |= OPT_PATTERN;
    return parse_list(o, arg, take_pattern, user);
}

static bool set_lengths(const cli_option *o, const char *arg, void *user)
{
    attn_options *opt = user;
    opt->n_lengths = 0;
    opt->given |= OPT_LENGTH;
    return parse_list(o, arg, take_length, user);
}

/* A count option stored in an int64_t field, with its OPT_* bit. */
static bool set_count(const cli_option *o, const char *arg, attn_options *opt, unsigned bit,
                      uint64_t min, uint64_t max, int64_t *field)
{
    uint64_t n;
    if (!cli_option_count(o, arg, min, max, &n))
        return false;
    *field = (int64_t)n;
    opt->given |= bit;
    return true;
}

static bool set_lq(const cli_option *o, const char *arg, void *user)
{
    attn_options *opt = user;
    return set_count(o, arg, opt, OPT_LQ, 1, MAX_LENGTH, &opt->lq);
}

static bool set_head_dim(const cli_option *o, const char *arg, void *user)
{
    attn_options *opt = user;
    return set_count(o, arg, opt, OPT_HEAD_DIM, 1, 4096, &opt->head_dim);
}

static bool set_heads(const cli_option *o, const char *arg, void *user)
{
    attn_options *opt = user;
    return set_count(o, arg, opt, OPT_HEADS, 1, 4096, &opt->heads);
}

static bool set_kv_heads(const cli_option *o, const char *arg, void *user)
{
    attn_options *opt = user;
    return set_count(o, arg, opt, OPT_KV_HEADS, 1, 4096, &opt->kv_heads);
}

static bool set_batch(const cli_option *o, const char *arg, void *user)
{
    attn_options *opt = user;
    return set_count(o, arg, opt, OPT_BATCH, 1, 65536, &opt->batch);
}

static bool set_window(const cli_option *o, const char *arg, void *user)
{
    attn_options *opt = user;
    return set_count(o, arg, opt, OPT_WINDOW, 0, MAX_LENGTH, &opt->window);
}

static bool set_sinks(const cli_option *o, const char *arg, void *user)
{
    attn_options *opt = user;
    return set_count(o, arg, opt, OPT_SINKS, 0, MAX_LENGTH, &opt->sinks);
}

static bool set_reps(const cli_option *o, const char *arg, void *user)
{
    attn_options *opt = user;
    return set_count(o, arg, opt, OPT_REPS, 1, 1000, &opt->reps);
}

static bool set_ref_rows(const cli_option *o, const char *arg, void *user)
{
    attn_options *opt = user;
    return set_count(o, arg, opt, OPT_REF_ROWS, 0, 1000000, &opt->ref_rows);
}

static bool set_dtype(const cli_option *o, const char *arg, void *user)
{
    static const char *const types[] = {"fp32", "bf16", NULL};
    attn_options *opt = user;
    int type;
    if (!cli_option_choice(o, arg, types, &type))
        return false;
    opt->dtype = type ? LR_BF16 : LR_F32;
    opt->given |= OPT_DTYPE;
    return true;
}

static bool set_scale(const cli_option *o, const char *arg, void *user)
{
    attn_options *opt = user;
    double x;
    if (!cli_option_float(o, arg, 1e-30, 1e30, &x))
        return false;
    opt->scale = (float)x;
    opt->given |= OPT_SCALE;
    return true;
}

static bool set_min_time(const cli_option *o, const char *arg, void *user)
{
    attn_options *opt = user;
    if (!cli_option_float(o, arg, 0, 3600, &opt->min_time))
        return false;
    opt->given |= OPT_MIN_TIME;
    return true;
}

typedef struct {
    const char *name;
    int (*main)(const cli_args *args, const attn_options *opt);
    unsigned allowed; /* OPT_* bits it accepts */
    bool takes_model; /* -m, --dump-model, --force */
} subcommand;

static const subcommand subcommands[] = {
    {"bench", bench_main, ~0u, false},
    {"check", check_main, OPT_KERNEL, false},
    {"run", run_main, OPT_KERNEL | OPT_PATTERN | OPT_WINDOW | OPT_SINKS | OPT_SCALE, true},
};

/* The long name of the first option in `given` that the subcommand does not take, or NULL. */
static const char *stray_option(unsigned given, unsigned allowed)
{
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {
        {OPT_KERNEL, "kernel"},   {OPT_PATTERN, "pattern"},   {OPT_LENGTH, "length"},
        {OPT_LQ, "lq"},           {OPT_HEAD_DIM, "head-dim"}, {OPT_HEADS, "heads"},
        {OPT_KV_HEADS, "kv-heads"}, {OPT_BATCH, "batch"},     {OPT_DTYPE, "dtype"},
        {OPT_WINDOW, "window"},   {OPT_SINKS, "sinks"},       {OPT_SCALE, "scale"},
        {OPT_REPS, "reps"},       {OPT_MIN_TIME, "min-time"}, {OPT_REF_ROWS, "ref-rows"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if ((given & names[i].bit) && !(allowed & names[i].bit))
            return names[i].name;
    return NULL;
}

int main(int argc, char **argv)
{
    static const char *const formats[] = {"md", "tsv", "csv", "json", NULL};
    static char kernel_help[768];
    char names[512];
    snprintf(kernel_help, sizeof kernel_help,
             "kernels to measure, comma-separated: %s, or all (default: flash; check: all)",
             kernel_names(names, sizeof names));
    attn_options opt = {
        .head_dim = 64,
        .heads = 8,
        .batch = 1,
        .dtype = LR_F32,
        .window = 256,
        .reps = 3,
        .min_time = 0.5,
        .ref_rows = 256,
    };
    const cli_option options[] = {
        {"kernel", 0, "LIST", kernel_help, set_kernels},
        {"pattern", 0, "LIST",
         "self, causal, cross, causal-cross, or all (default: self,causal)", set_patterns},
        {"length", 'L', "LIST", "key lengths, k = 1024, M = 1048576 (default: 1k,4k)",
         set_lengths},
        {"lq", 0, "N", "query length of the cross patterns (default: half the key length)",
         set_lq},
        {"head-dim", 'd', "N", "head dimension (default 64)", set_head_dim},
        {"heads", 'H', "N", "query heads (default 8)", set_heads},
        {"kv-heads", 0, "N", "key/value heads, dividing --heads (default: as many)",
         set_kv_heads},
        {"batch", 'B', "N", "batch size (default 1)", set_batch},
        {"dtype", 0, "TYPE", "type of q, k and v: fp32 or bf16 (default fp32)", set_dtype},
        {"window", 0, "N", "keys on each side of a query for the window kernel (default 256)",
         set_window},
        {"sinks", 0, "N", "first keys every query sees, for the window kernel (default 0)",
         set_sinks},
        {"scale", 0, "X", "multiplies q.k (default 1/sqrt(head dim))", set_scale},
        {"reps", 0, "N", "timed runs per case, at least (default 3)", set_reps},
        {"min-time", 0, "S", "and until S seconds are timed (default 0.5)", set_min_time},
        {"ref-rows", 0, "N",
         "query rows per case compared with exact attention (default 256, 0: none)",
         set_ref_rows},
        {NULL, 0, NULL, NULL, NULL},
    };
    const cli_program program = {
        .name = "attn-bench",
        .synopsis = "[bench|check|run] [OPTIONS]",
        .description = "Measure attention kernels (bench, the default), check them against "
                       "exact attention (check),\nor run one on tensors from a file (run).",
        .formats = formats,
        .options = options,
        .user = &opt,
    };
    cli_args args;
    int rc = cli_parse(&program, argc, argv, &args);
    if (rc != CLI_PROCEED)
        return rc;

    const subcommand *sub = &subcommands[0];
    if (args.n_operands > 0) {
        sub = NULL;
        for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
            if (strcmp(args.operands[0], subcommands[i].name) == 0)
                sub = &subcommands[i];
        if (!sub)
            return cli_usage_error("unknown subcommand '%s' (choose from bench, check, run)",
                                   args.operands[0]);
    }
    if (args.n_operands > 1)
        return cli_usage_error("unexpected argument '%s'", args.operands[1]);
    const char *stray = stray_option(opt.given, sub->allowed);
    if (stray)
        return cli_usage_error("option --%s does not apply to '%s'", stray, sub->name);
    if (!sub->takes_model && (args.model || args.dump_model || args.force))
        return cli_usage_error("options -m, --dump-model and --force apply only to 'run'");
    if (opt.kv_heads && opt.heads % opt.kv_heads != 0)
        return cli_usage_error("option --kv-heads: %lld does not divide the %lld heads",
                               (long long)opt.kv_heads, (long long)opt.heads);
    return sub->main(&args, &opt);
}
