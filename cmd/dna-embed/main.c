/* dna-embed: HyenaDNA embeddings and log-likelihoods of the records of FASTA/FASTQ files. See
 * dna-embed(1).
 *
 * Long records run in windows of at most the model's length: window k covers tokens
 * [k S, k S + W). Each token takes its output from the first window that holds it, the one
 * that gives it the most left context, so every token is computed with at least W - S tokens
 * before it (all of them within the first window). Only the hidden states of one window are
 * in memory at a time: pooled sums and per-token rows are taken from it as it goes. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "fasta.h"
#include "longrange/hyenadna.h"
#include "models.h"
#include "numbers.h"
#include "output.h"
#include "writers.h"

typedef enum { POOL_MEAN, POOL_LAST, POOL_CLS } pool_mode;

typedef struct {
    pool_mode pool;
    bool per_token, score, rc, case_sensitive;
    int64_t window, stride; /* 0: the model's length; 0: the window */
    uint64_t max_len;
} embed_options;

/* ---- options ---- */

static bool set_pool(const cli_option *o, const char *arg, void *user)
{
    static const char *const modes[] = {[POOL_MEAN] = "mean", [POOL_LAST] = "last",
                                        [POOL_CLS] = "cls", NULL};
    int mode;
    if (!cli_option_choice(o, arg, modes, &mode))
        return false;
    ((embed_options *)user)->pool = (pool_mode)mode;
    return true;
}

static bool set_per_token(const cli_option *o, const char *arg, void *user)
{
    ((embed_options *)user)->per_token = true;
    return true;
}

static bool set_score(const cli_option *o, const char *arg, void *user)
{
    ((embed_options *)user)->score = true;
    return true;
}

static bool set_rc(const cli_option *o, const char *arg, void *user)
{
    ((embed_options *)user)->rc = true;
    return true;
}

static bool set_case_sensitive(const cli_option *o, const char *arg, void *user)
{
    ((embed_options *)user)->case_sensitive = true;
    return true;
}

static bool set_window(const cli_option *o, const char *arg, void *user)
{
    uint64_t v;
    if (!cli_option_count(o, arg, 2, (uint64_t)1 << 40, &v))
        return false;
    ((embed_options *)user)->window = (int64_t)v;
    return true;
}

static bool set_stride(const cli_option *o, const char *arg, void *user)
{
    uint64_t v;
    if (!cli_option_count(o, arg, 1, (uint64_t)1 << 40, &v))
        return false;
    ((embed_options *)user)->stride = (int64_t)v;
    return true;
}

static bool set_max_len(const cli_option *o, const char *arg, void *user)
{
    return cli_option_count(o, arg, 1, (uint64_t)1 << 40, &((embed_options *)user)->max_len);
}

/* ---- per record ---- */

typedef struct {
    lr_ctx *ctx;
    lr_hyenadna *model;
    const embed_options *opt;
    int64_t W, S, D;
    float *hidden;       /* [W][D] */
    int32_t *ids;        /* [record length] */
    float *token_ll;     /* [W] */
    size_t ids_cap;
    double *sum;         /* [D] pooled sums */
    float *vector;       /* [D] */
    float *rc_vector;    /* [D] */
    /* output */
    data_format format;
    matrix_writer *matrix;
    tensor_writer *tensors; /* --per-token -f safetensors */
    table_writer table;
    output *out;
} embedder;

/* The first token of window k that no earlier window holds. */
static int64_t window_first_own(const embedder *e, int64_t k)
{
    return k == 0 ? 0 : (k - 1) * e->S + e->W;
}

/* The complement of a base, case kept; other IUPAC codes map to their complements as well,
 * and anything else to itself. */
static char complement(char c)
{
    static const char from[] = "ACGTRYKMBVDHNacgtrykmbvdhn";
    static const char to[] = "TGCAYRMKVBHDNtgcayrmkvbhdn";
    const char *p = strchr(from, c);
    return p && c ? to[p - from] : c;
}

/* Runs every window over ids[0..L), handing the rows each owns to the callers' sinks. */
typedef struct {
    double *sum;        /* POOL_MEAN: adds every token's row */
    float *last;        /* POOL_LAST, POOL_CLS: the last token's row */
    double ll;          /* --score: the sum of the tokens' log-likelihoods */
    const char *id;     /* --per-token: row ids "<id>:<position>" (or the tensor's rows) */
    bool reverse;       /* the rows are those of the reverse complement (positions mirrored) */
    float *rows;        /* --per-token with --rc: [L][D] kept for the average */
} window_sinks;

static int run_windows(embedder *e, int64_t L, window_sinks *k_sinks, const char *file,
                       const fasta_record *rec)
{
    const int64_t W = e->W, S = e->S, D = e->D;
    for (int64_t k = 0;; k++) {
        int64_t start = k * S, n = L - start < W ? L - start : W;
        int64_t own0 = window_first_own(e, k), own1 = start + n;
        lr_status s = lr_hyenadna_forward(e->ctx, e->model, e->ids + start, n, e->hidden);
        if (s == LR_OK && e->opt->score) {
            double total;
            s = lr_hyenadna_log_likelihood(e->ctx, e->model, e->hidden, e->ids + start, n, e->token_ll, &total);
            for (int64_t t = own0; s == LR_OK && t < own1; t++)
                k_sinks->ll += e->token_ll[t - start];
        }
        if (s != LR_OK) {
            char where[256];
            snprintf(where, sizeof where, "%s: record %lld ('%s')", file, (long long)rec->number, rec->id);
            return cli_report(e->ctx, s, where);
        }
        for (int64_t t = own0; t < own1 && !e->opt->score; t++) {
            const float *row = e->hidden + (t - start) * D;
            if (k_sinks->sum)
                for (int64_t c = 0; c < D; c++)
                    k_sinks->sum[c] += row[c];
            if (k_sinks->rows)
                memcpy(k_sinks->rows + (k_sinks->reverse ? L - 1 - t : t) * D, row, (size_t)D * sizeof *row);
            else if (k_sinks->id && e->matrix) {
                char name[512];
                snprintf(name, sizeof name, "%s:%lld", k_sinks->id, (long long)t);
                if (!matrix_row(e->matrix, name, row))
                    return CLI_EXIT_DATA;
            }
        }
        if (k_sinks->id && !k_sinks->rows && e->tensors && !e->opt->score)
            tensor_rows(e->tensors, e->hidden + (own0 - start) * D, (uint64_t)(own1 - own0));
        if (k_sinks->last && own1 == L)
            memcpy(k_sinks->last, e->hidden + (L - 1 - start) * D, (size_t)D * sizeof(float));
        if (start + n >= L)
            return CLI_EXIT_OK;
    }
}

/* Token ids of the record (or of its reverse complement); with --pool cls followed by the
 * [SEP] token the official tokenizer appends, whose output is the record's summary: the model
 * is causal, so the only token that has seen the whole record is one after it (the official
 * sequence classifier pools there too). Returns the number of tokens. */
static int64_t tokenize(embedder *e, const fasta_record *rec, bool reverse)
{
    for (int64_t i = 0; i < rec->length; i++) {
        char c = reverse ? complement(rec->seq[rec->length - 1 - i]) : rec->seq[i];
        e->ids[i] = lr_hyenadna_token((unsigned char)c, !e->opt->case_sensitive);
    }
    if (e->opt->pool == POOL_CLS && !e->opt->per_token && !e->opt->score) {
        e->ids[rec->length] = LR_HYENADNA_SEP;
        return rec->length + 1;
    }
    return rec->length;
}

static int embed_record(embedder *e, const fasta_record *rec, const char *file)
{
    const int64_t L = rec->length, D = e->D;
    if ((size_t)L + 1 > e->ids_cap) {
        int32_t *ids = realloc(e->ids, ((size_t)L + 1) * sizeof *ids);
        if (!ids) {
            cli_error(file, "record %lld ('%s'): out of memory for %lld bases", (long long)rec->number,
                      rec->id, (long long)L);
            return CLI_EXIT_DATA;
        }
        e->ids = ids;
        e->ids_cap = (size_t)L + 1;
    }
    const int passes = e->opt->rc ? 2 : 1;
    float *rows = NULL;
    if (e->opt->per_token && e->opt->rc && !(rows = calloc((size_t)(L * D), sizeof *rows))) {
        cli_error(file, "record %lld ('%s'): out of memory for its %lld x %lld rows", (long long)rec->number,
                  rec->id, (long long)L, (long long)D);
        return CLI_EXIT_DATA;
    }
    if (e->tensors) {
        const char *why = tensor_begin(e->tensors, rec->id, (uint64_t)L, (uint64_t)D);
        if (why) {
            cli_error(file, "record %lld ('%s'): %s", (long long)rec->number, rec->id, why);
            free(rows);
            return CLI_EXIT_DATA;
        }
    }
    double ll[2] = {0, 0};
    int rc = CLI_EXIT_OK;
    for (int pass = 0; pass < passes && rc == CLI_EXIT_OK; pass++) {
        int64_t tokens = tokenize(e, rec, pass == 1);
        memset(e->sum, 0, (size_t)D * sizeof *e->sum);
        window_sinks sinks = {
            .sum = !e->opt->per_token && e->opt->pool == POOL_MEAN ? e->sum : NULL,
            .last = !e->opt->per_token && e->opt->pool != POOL_MEAN ? (pass ? e->rc_vector : e->vector) : NULL,
            .id = e->opt->per_token ? rec->id : NULL,
            .reverse = pass == 1,
            .rows = rows,
        };
        /* --per-token --rc: both passes add into rows, mirrored for the second */
        if (rows && pass == 1) {
            float *second = calloc((size_t)(L * D), sizeof *second);
            if (!second) {
                cli_error(file, "record %lld ('%s'): out of memory", (long long)rec->number, rec->id);
                rc = CLI_EXIT_DATA;
                break;
            }
            sinks.rows = second;
            rc = run_windows(e, tokens, &sinks, file, rec);
            for (int64_t i = 0; i < L * D; i++)
                rows[i] = 0.5f * (rows[i] + second[i]);
            free(second);
        } else {
            rc = run_windows(e, tokens, &sinks, file, rec);
        }
        ll[pass] = sinks.ll;
        if (sinks.sum) {
            float *v = pass ? e->rc_vector : e->vector;
            for (int64_t c = 0; c < D; c++)
                v[c] = (float)(e->sum[c] / (double)L);
        }
    }
    if (rc == CLI_EXIT_OK && e->opt->score) {
        double total = passes == 2 ? 0.5 * (ll[0] + ll[1]) : ll[0];
        table_str(&e->table, rec->id);
        table_int(&e->table, L);
        table_f64(&e->table, total);
        if (L > 1)
            table_f64(&e->table, -total / log(2.0) / (double)(L - 1));
        else
            table_missing(&e->table);
        table_end_row(&e->table);
    } else if (rc == CLI_EXIT_OK && e->opt->per_token && rows && e->tensors) {
        tensor_rows(e->tensors, rows, (uint64_t)L);
    } else if (rc == CLI_EXIT_OK && e->opt->per_token && rows) {
        for (int64_t t = 0; t < L && rc == CLI_EXIT_OK; t++) {
            char name[512];
            snprintf(name, sizeof name, "%s:%lld", rec->id, (long long)t);
            if (!matrix_row(e->matrix, name, rows + t * D))
                rc = CLI_EXIT_DATA;
        }
    } else if (rc == CLI_EXIT_OK && !e->opt->per_token) {
        if (passes == 2)
            for (int64_t c = 0; c < D; c++)
                e->vector[c] = 0.5f * (e->vector[c] + e->rc_vector[c]);
        if (!matrix_row(e->matrix, rec->id, e->vector))
            rc = CLI_EXIT_DATA;
    }
    if (rc != CLI_EXIT_OK && e->tensors)
        tensor_cancel(e->tensors);
    free(rows);
    return rc;
}

/* Every record of one input; bad records are reported and skipped. */
static int embed_file(embedder *e, const char *path)
{
    bool is_stdin = strcmp(path, "-") == 0;
    const char *name = is_stdin ? "stdin" : path;
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f) {
        cli_error(path, "%s", strerror(errno));
        return CLI_EXIT_DATA;
    }
    fasta_options fo = {.max_length = (int64_t)e->opt->max_len};
    fasta_reader *r = fasta_open(f, &fo);
    int rc = CLI_EXIT_OK;
    if (!r) {
        cli_error(name, "out of memory");
        rc = CLI_EXIT_DATA;
    }
    fasta_record rec;
    int got;
    while (r && (got = fasta_next(r, &rec)) != 0) {
        if (got < 0) {
            cli_error(name, "%s", fasta_error(r));
            rc = CLI_EXIT_DATA;
            continue;
        }
        int record_rc = embed_record(e, &rec, name);
        if (record_rc != CLI_EXIT_OK) {
            rc = record_rc;
            if (record_rc != CLI_EXIT_DATA)
                break;
        }
    }
    fasta_close(r);
    if (!is_stdin)
        fclose(f);
    return rc;
}

/* ---- main ---- */

int main(int argc, char **argv)
{
    static const char *const formats[] = {"tsv", "csv", "jsonl", "npy", "safetensors", NULL};
    embed_options opt = {.pool = POOL_MEAN, .max_len = (uint64_t)FASTA_DEFAULT_MAX_LENGTH};
    const cli_option options[] = {
        {"pool", 0, "MODE", "mean (default), last, or cls (the output at a [SEP] token appended "
         "to the record): how a record's token outputs become one vector", set_pool},
        {"per-token", 0, NULL, "one row per base instead of one per record", set_per_token},
        {"score", 0, NULL, "id, length, log_likelihood, bits_per_base instead of embeddings", set_score},
        {"window", 0, "N", "bases per forward pass (default: the model's maximum length)", set_window},
        {"stride", 0, "N", "bases between window starts (default: the window; with --score, "
         "at most the window - 1)", set_stride},
        {"rc", 0, NULL, "average with the reverse complement", set_rc},
        {"case-sensitive", 0, NULL, "lowercase bases are unknown tokens, as the official "
         "tokenizer has them (default: soft-masked bases count as bases)", set_case_sensitive},
        {"max-len", 0, "N", "refuse records of more bases (default 1G)", set_max_len},
        {NULL, 0, NULL, NULL, NULL},
    };
    const cli_program program = {
        .name = "dna-embed",
        .synopsis = "[OPTIONS] [FILE|-]...",
        .description = "Embed or score the records of FASTA/FASTQ files (plain or gzip) with a "
                       "HyenaDNA model.",
        .formats = formats,
        .omit = CLI_OMIT_SEED,
        .options = options,
        .user = &opt,
    };
    cli_args args;
    int rc = cli_parse(&program, argc, argv, &args);
    if (rc != CLI_PROCEED)
        return rc;
    if (opt.score && opt.per_token)
        return cli_usage_error("options --score and --per-token exclude each other");
    if (opt.stride && opt.window && opt.stride > opt.window)
        return cli_usage_error("option --stride: %lld is more than the window of %lld",
                               (long long)opt.stride, (long long)opt.window);

    lr_ctx *ctx = NULL;
    lr_model *file = NULL;
    embedder e = {.opt = &opt};
    if ((rc = cli_context(&args, &ctx)) != CLI_EXIT_OK)
        return rc;
    if ((rc = cli_open_model(ctx, args.model, &file)) != CLI_EXIT_OK) {
        lr_ctx_destroy(ctx);
        return rc;
    }
    if (args.dump_model) {
        rc = cli_dump_model(&args, file);
        lr_model_close(file);
        lr_ctx_destroy(ctx);
        return rc;
    }
    lr_status s = lr_hyenadna_open(ctx, file, &e.model);
    if (s != LR_OK) {
        rc = cli_report(ctx, s, lr_model_path(file));
        lr_model_close(file);
        lr_ctx_destroy(ctx);
        return rc;
    }
    e.ctx = ctx;
    e.D = lr_hyenadna_d_model(e.model);
    int64_t max_seq = lr_hyenadna_max_seq_len(e.model);
    e.W = opt.window ? (opt.window < max_seq ? opt.window : max_seq) : max_seq;
    e.S = opt.stride ? (opt.stride < e.W ? opt.stride : e.W) : e.W;
    if (opt.score && e.S >= e.W)
        e.S = e.W - 1; /* a window's first token has no context: the previous window predicts it */
    if (e.W < 2 && opt.score) {
        rc = cli_usage_error("option --window: scoring needs windows of 2 bases or more");
        goto done;
    }
    data_format_parse(args.format, &e.format);
    e.hidden = malloc((size_t)(e.W * e.D) * sizeof *e.hidden);
    e.token_ll = malloc((size_t)e.W * sizeof *e.token_ll);
    e.sum = malloc((size_t)e.D * sizeof *e.sum);
    e.vector = malloc((size_t)e.D * sizeof *e.vector);
    e.rc_vector = malloc((size_t)e.D * sizeof *e.rc_vector);
    if (!e.hidden || !e.token_ll || !e.sum || !e.vector || !e.rc_vector) {
        cli_error(NULL, "out of memory for windows of %lld bases", (long long)e.W);
        rc = CLI_EXIT_DATA;
        goto done;
    }
    if (opt.score && (e.format == FORMAT_NPY || e.format == FORMAT_SAFETENSORS)) {
        rc = cli_usage_error("--score writes a table: -f tsv, csv or jsonl");
        goto done;
    }
    if (!opt.per_token && e.format == FORMAT_SAFETENSORS) {
        rc = cli_usage_error("-f safetensors holds one tensor per record: use it with --per-token");
        goto done;
    }
    bool binary = e.format == FORMAT_NPY || e.format == FORMAT_SAFETENSORS;
    if ((rc = output_open(args.output, binary, args.force, &e.out)) != CLI_EXIT_OK)
        goto done;
    if (opt.score) {
        static const char *const columns[] = {"id", "length", "log_likelihood", "bits_per_base"};
        table_begin(&e.table, output_stream(e.out), e.format, columns, 4);
    } else if (e.format == FORMAT_SAFETENSORS) {
        if ((rc = tensor_writer_open(&e.tensors, e.out)) != CLI_EXIT_OK) {
            output_abort(e.out);
            goto done;
        }
    } else if ((rc = matrix_open(&e.matrix, e.out, e.format, "embedding", (size_t)e.D)) != CLI_EXIT_OK) {
        output_abort(e.out);
        goto done;
    }
    int status = CLI_EXIT_OK;
    if (args.n_operands == 0)
        status = embed_file(&e, "-");
    for (int i = 0; i < args.n_operands && (status == CLI_EXIT_OK || status == CLI_EXIT_DATA); i++) {
        int file_rc = embed_file(&e, args.operands[i]);
        if (file_rc != CLI_EXIT_OK)
            status = file_rc;
    }
    /* What could be computed is written even when some records failed (exit 1). */
    if ((e.matrix && (rc = matrix_finish(e.matrix)) != CLI_EXIT_OK) ||
        (e.tensors && (rc = tensor_writer_finish(e.tensors)) != CLI_EXIT_OK)) {
        output_abort(e.out);
    } else {
        rc = output_commit(e.out);
    }
    if (rc == CLI_EXIT_OK)
        rc = status;
done:
    free(e.hidden);
    free(e.token_ll);
    free(e.sum);
    free(e.vector);
    free(e.rc_vector);
    free(e.ids);
    lr_hyenadna_close(e.model);
    lr_model_close(file);
    lr_ctx_destroy(ctx);
    return rc;
}
