/* timeseries-forecast: forecasts the next steps of the series of a CSV/TSV table (forecast,
 * the default), or backtests a model on it (eval). See timeseries-forecast(1). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "forecast.h"
#include "models.h"
#include "numbers.h"
#include "output.h"
#include "series.h"
#include "writers.h"

enum { MAX_COLUMNS = 1024 };

/* What goes in and out of a wide table's model (the papers' --features). */
typedef enum { FEATURES_M, FEATURES_S, FEATURES_MS } feature_mode;

typedef struct {
    int64_t horizon;           /* 0: the model's pred_len, else 96 */
    bool wide;
    const char *time_column;
    const char *columns[MAX_COLUMNS];
    int n_columns;
    char *columns_arg;         /* owns the names in columns */
    const char *target;        /* S and MS: the column forecast; NULL: the last one */
    feature_mode features;
    series_fill fill;
    int64_t last;              /* forecast: windows ending at the last `last` steps */
    int64_t batch;             /* windows per forecast_batch call (1: one at a time) */
    uint64_t max_rows;
    /* eval */
    const char *from, *to, *train_until;
    double test_fraction;      /* < 0: not given */
    int64_t stride;
    unsigned given;            /* OPT_* of the options on the command line */
} ts_options;

enum {
    OPT_WIDE = 1u << 0,
    OPT_LAST = 1u << 1,
    OPT_FROM = 1u << 2,
    OPT_TO = 1u << 3,
    OPT_TRAIN_UNTIL = 1u << 4,
    OPT_TEST_FRACTION = 1u << 5,
    OPT_STRIDE = 1u << 6,
    OPT_FEATURES = 1u << 7,
    OPT_COLUMNS = 1u << 8,
    OPT_TARGET = 1u << 9,
};

/* ---- options ---- */

static bool set_horizon(const cli_option *o, const char *arg, void *user)
{
    return cli_option_int(o, arg, 1, 1 << 24, &((ts_options *)user)->horizon);
}

static bool set_wide(const cli_option *o, const char *arg, void *user)
{
    ((ts_options *)user)->wide = true;
    ((ts_options *)user)->given |= OPT_WIDE;
    return true;
}

static bool set_time_column(const cli_option *o, const char *arg, void *user)
{
    ((ts_options *)user)->time_column = arg;
    return true;
}

static bool set_columns(const cli_option *o, const char *arg, void *user)
{
    ts_options *opt = user;
    opt->given |= OPT_COLUMNS;
    free(opt->columns_arg);
    opt->columns_arg = strdup(arg);
    opt->n_columns = 0;
    if (!opt->columns_arg) {
        cli_usage_error("option --columns: out of memory");
        return false;
    }
    for (char *p = opt->columns_arg;;) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        if (!*p || opt->n_columns == MAX_COLUMNS) {
            cli_usage_error("option --columns: %s in '%s'", *p ? "too many columns" : "empty name", arg);
            return false;
        }
        opt->columns[opt->n_columns++] = p;
        if (!comma)
            return true;
        p = comma + 1;
    }
}

static bool set_target(const cli_option *o, const char *arg, void *user)
{
    ((ts_options *)user)->target = arg;
    ((ts_options *)user)->given |= OPT_TARGET;
    return true;
}

static bool set_features(const cli_option *o, const char *arg, void *user)
{
    static const char *const names[] = {"M", "S", "MS"};
    for (int i = 0; i < 3; i++) {
        if (strcmp(arg, names[i]) == 0) {
            ((ts_options *)user)->features = (feature_mode)i;
            ((ts_options *)user)->given |= OPT_FEATURES;
            return true;
        }
    }
    cli_usage_error("option --features: '%s' is not M, S or MS", arg);
    return false;
}

static bool set_fill(const cli_option *o, const char *arg, void *user)
{
    static const char *const names[] = {"error", "previous", "linear"};
    for (int i = 0; i < 3; i++) {
        if (strcmp(arg, names[i]) == 0) {
            ((ts_options *)user)->fill = (series_fill)i;
            return true;
        }
    }
    cli_usage_error("option --fill: '%s' is not error, previous or linear", arg);
    return false;
}

static bool set_last(const cli_option *o, const char *arg, void *user)
{
    ((ts_options *)user)->given |= OPT_LAST;
    return cli_option_int(o, arg, 1, 1 << 24, &((ts_options *)user)->last);
}

static bool set_batch(const cli_option *o, const char *arg, void *user)
{
    return cli_option_int(o, arg, 1, 4096, &((ts_options *)user)->batch);
}

static bool set_max_rows(const cli_option *o, const char *arg, void *user)
{
    return cli_option_count(o, arg, 1, (uint64_t)1 << 40, &((ts_options *)user)->max_rows);
}

static bool set_from(const cli_option *o, const char *arg, void *user)
{
    ((ts_options *)user)->given |= OPT_FROM;
    ((ts_options *)user)->from = arg;
    return true;
}

static bool set_to(const cli_option *o, const char *arg, void *user)
{
    ((ts_options *)user)->given |= OPT_TO;
    ((ts_options *)user)->to = arg;
    return true;
}

static bool set_train_until(const cli_option *o, const char *arg, void *user)
{
    ((ts_options *)user)->given |= OPT_TRAIN_UNTIL;
    ((ts_options *)user)->train_until = arg;
    return true;
}

static bool set_test_fraction(const cli_option *o, const char *arg, void *user)
{
    ((ts_options *)user)->given |= OPT_TEST_FRACTION;
    double f;
    if (!cli_option_float(o, arg, 0, 1, &f))
        return false;
    if (!(f > 0 && f < 1)) {
        cli_usage_error("option --test-fraction: %s is not between 0 and 1 (exclusive)", arg);
        return false;
    }
    ((ts_options *)user)->test_fraction = f;
    return true;
}

static bool set_stride(const cli_option *o, const char *arg, void *user)
{
    ((ts_options *)user)->given |= OPT_STRIDE;
    return cli_option_int(o, arg, 1, 1 << 24, &((ts_options *)user)->stride);
}

/* ---- the table as model input ---- */

/* One group of series forecast together: a wide table's columns (all sharing dates) or one
 * series of a long table. */
typedef struct {
    int64_t n, channels;     /* steps, input channels */
    float *x;                /* [n][channels] */
    const int64_t *time;     /* n dates */
    series_step step;
    int out_channels;        /* those forecast: the first ones, or the target alone */
    int target;              /* index of the first output channel in x */
    int64_t model_out;       /* channels per step of the model's output */
    int64_t model_target;    /* where the output channels start in it */
    const char *names[MAX_COLUMNS]; /* of the output channels */
} series_group;

static int group_of_wide(const series_table *t, const ts_options *opt, const ts_model *model,
                         series_group *g)
{
    int target = t->n_series - 1;
    if (opt->target) {
        target = -1;
        for (int i = 0; i < t->n_series; i++)
            if (strcmp(t->items[i].id, opt->target) == 0)
                target = i;
        if (target < 0) {
            cli_error(NULL, "option --target: no value column '%s' in the input", opt->target);
            return CLI_EXIT_DATA;
        }
    }
    bool one_in = opt->features == FEATURES_S;
    g->n = t->items[0].n;
    g->channels = one_in ? 1 : t->n_series;
    g->time = t->time;
    g->step = t->step;
    g->out_channels = opt->features == FEATURES_M ? t->n_series : 1;
    g->target = one_in ? 0 : opt->features == FEATURES_MS ? target : 0;
    g->x = malloc((size_t)(g->n * g->channels) * sizeof *g->x);
    if (!g->x) {
        cli_error(NULL, "out of memory for %lld x %lld values", (long long)g->n, (long long)g->channels);
        return CLI_EXIT_DATA;
    }
    for (int64_t c = 0; c < g->channels; c++) {
        const series *s = &t->items[one_in ? target : c];
        for (int64_t i = 0; i < g->n; i++)
            g->x[i * g->channels + c] = s->value[i];
    }
    for (int c = 0; c < g->out_channels; c++)
        g->names[c] = t->items[opt->features == FEATURES_M ? c : target].id;
    /* A trained model forecasts what it was trained to (the target alone for S and MS); the
     * weight-free ones forecast every channel they are given. */
    g->model_out = model->features && opt->features != FEATURES_M ? 1 : g->channels;
    g->model_target = g->model_out == 1 ? 0 : g->target;
    return CLI_EXIT_OK;
}

static void group_of_series(const series *s, series_group *g)
{
    *g = (series_group){.n = s->n, .channels = 1, .x = s->value, .time = s->time, .step = s->step,
                        .out_channels = 1, .target = 0, .model_out = 1, .model_target = 0,
                        .names = {s->id}};
}

/* The natural season of a step, for models that repeat one (seasonal-naive): a day of hours,
 * a week of days, a year of weeks, months or quarters; 1 when there is none. */
static int64_t season_of(series_step step)
{
    if (step.months)
        return 12 % step.months == 0 ? 12 / step.months : 1;
    static const int64_t periods[][2] = {
        {60, 60}, {900, 96}, {1800, 48}, {3600, 24}, {86400, 7}, {7 * 86400, 52},
    };
    for (size_t i = 0; i < sizeof periods / sizeof periods[0]; i++)
        if (step.seconds == periods[i][0])
            return periods[i][1];
    return step.seconds < 86400 && 86400 % step.seconds == 0 ? 86400 / step.seconds : 1;
}

/* A trained model's columns, feature mode and target replace the options' (which may only
 * repeat them): *eff is opt with them filled in. */
static int model_inputs(const ts_model *model, const ts_options *opt, ts_options *eff)
{
    *eff = *opt;
    eff->columns_arg = NULL;
    if (model->columns) {
        char joined[8192] = "";
        size_t used = 0;
        for (int i = 0; i < opt->n_columns && used < sizeof joined; i++)
            used += (size_t)snprintf(joined + used, sizeof joined - used, "%s%s", i ? "," : "", opt->columns[i]);
        if ((opt->given & OPT_COLUMNS) && strcmp(joined, model->columns) != 0)
            return cli_usage_error("option --columns: the model reads the columns %s", model->columns);
        if (!set_columns(&(cli_option){.long_name = "columns"}, model->columns, eff))
            return CLI_EXIT_MODEL;
    }
    if (model->features) {
        static const char *const names[] = {"M", "S", "MS"};
        if ((opt->given & OPT_FEATURES) && strcmp(names[opt->features], model->features) != 0)
            return cli_usage_error("option --features: the model was trained in mode %s", model->features);
        if ((opt->given & OPT_TARGET) && model->target && strcmp(opt->target, model->target) != 0)
            return cli_usage_error("option --target: the model forecasts %s", model->target);
        if (!set_features(&(cli_option){.long_name = "features"}, model->features, eff))
            return CLI_EXIT_MODEL;
        eff->target = model->target;
    }
    return CLI_EXIT_OK;
}

/* ---- reading ---- */

static int read_table(const cli_args *args, const ts_options *opt, series_table *t, const char **name)
{
    const char *path = args->n_operands > 0 ? args->operands[args->n_operands - 1] : "-";
    bool is_stdin = strcmp(path, "-") == 0;
    *name = is_stdin ? "stdin" : path;
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f) {
        cli_error(path, "%s", strerror(errno));
        return CLI_EXIT_DATA;
    }
    series_options so = {
        .time_column = opt->time_column,
        .columns = opt->n_columns ? opt->columns : NULL,
        .n_columns = opt->n_columns,
        .fill = opt->fill,
        .max_rows = (int64_t)opt->max_rows,
    };
    char err[512];
    int r = series_read(f, &so, t, err, sizeof err);
    if (!is_stdin)
        fclose(f);
    if (r != 0) {
        cli_error(*name, "%s", err);
        return CLI_EXIT_DATA;
    }
    if (t->is_long && (opt->given & OPT_WIDE)) {
        cli_error(*name, "--wide needs a wide table (a date column and value columns), not the "
                  "long unique_id, ds, y layout");
        return CLI_EXIT_DATA;
    }
    return CLI_EXIT_OK;
}

/* The model's column name: the file name without its directory and .safetensors. */
static void model_label(const lr_model *file, char *buf, size_t size)
{
    const char *path = lr_model_path(file), *slash = strrchr(path, '/');
    snprintf(buf, size, "%s", slash ? slash + 1 : path);
    size_t len = strlen(buf), ext = strlen(".safetensors");
    if (len > ext && strcmp(buf + len - ext, ".safetensors") == 0)
        buf[len - ext] = '\0';
}

/* ---- forecast ---- */

typedef struct {
    lr_ctx *ctx;
    ts_model *model;
    const ts_options *opt;
    const char *label;
    const char *input;
    int64_t horizon;
    time_form form;
    data_format format;
    FILE *f;
    table_writer table;
    bool table_started;
    /* npy: every forecast, [windows][horizon][channels], written at the end */
    float *npy;
    size_t npy_len, npy_cap;
    int64_t npy_windows, npy_channels;
    int64_t season;
} forecaster;

static bool npy_append(forecaster *fc, const float *v, size_t n)
{
    if (fc->npy_len + n > fc->npy_cap) {
        size_t cap = (fc->npy_len + n) * 2;
        float *p = realloc(fc->npy, cap * sizeof *p);
        if (!p)
            return false;
        fc->npy = p;
        fc->npy_cap = cap;
    }
    memcpy(fc->npy + fc->npy_len, v, n * sizeof *v);
    fc->npy_len += n;
    return true;
}

/* Emits the forecasts of a group, all [last][H][out_channels], whose window w ends at step
 * origin(w) - 1: wide rows window by window; long rows series by series, then window, then
 * step (statsforecast's order); or keeps them for the NPY array. */
static int emit_group(forecaster *fc, const series_group *g, const float *all)
{
    const int64_t H = fc->horizon, last = fc->opt->last, K = g->out_channels;
    const bool cutoff = fc->opt->given & OPT_LAST;
    if (fc->format == FORMAT_NPY) {
        fc->npy_windows += last;
        fc->npy_channels = K;
        if (!npy_append(fc, all, (size_t)(last * H * K))) {
            cli_error(NULL, "out of memory for the NPY output");
            return CLI_EXIT_DATA;
        }
        return CLI_EXIT_OK;
    }
    char ds[64], cut[64];
    for (int c = 0; c < (fc->opt->wide ? 1 : K); c++) {
        for (int64_t w = 0; w < last; w++) {
            int64_t end = g->time[g->n - last + w];
            series_format_time(fc->form, end, cut, sizeof cut);
            for (int64_t h = 0; h < H; h++) {
                series_format_time(fc->form, series_step_advance(g->step, end, h + 1), ds, sizeof ds);
                if (!fc->opt->wide)
                    table_str(&fc->table, g->names[c]);
                table_str(&fc->table, ds);
                if (cutoff)
                    table_str(&fc->table, cut);
                for (int k = fc->opt->wide ? 0 : c; k < (fc->opt->wide ? K : c + 1); k++)
                    table_f32(&fc->table, all[(w * H + h) * K + k]);
                table_end_row(&fc->table);
            }
        }
    }
    return CLI_EXIT_OK;
}

/* The forecasts of `n` windows of a group, window w from the history [0, origins[w]), into
 * out [n][H][model_out]: through the model's forecast_batch in batches of `batch` windows
 * when it has one, else one window at a time. */
static lr_status forecast_windows(lr_ctx *ctx, ts_model *model, const series_group *g, int64_t season,
                                  int64_t n, const int64_t *origins, int64_t H, int64_t batch, float *out)
{
    ts_calendar cal = {g->time, g->step, season};
    const int64_t per = H * g->model_out;
    lr_status s = LR_OK;
    for (int64_t w = 0; w < n && s == LR_OK;) {
        int64_t b = model->forecast_batch && batch > 1 ? (n - w < batch ? n - w : batch) : 1;
        if (b > 1)
            s = model->forecast_batch(ctx, model, b, origins + w, g->channels, g->x, &cal, H, out + w * per);
        else
            s = model->forecast(ctx, model, origins[w], g->channels, g->x, &cal, H, out + w * per);
        w += b;
    }
    return s;
}

/* The forecasts of one group from the windows ending at its last opt->last steps. */
static int forecast_group(forecaster *fc, const series_group *g)
{
    const int64_t H = fc->horizon, last = fc->opt->last, C = g->channels, K = g->out_channels;
    if (g->n - (last - 1) < fc->model->min_history) {
        cli_error(fc->input, "series '%s' has %lld steps: too few for %lld window(s) of this model "
                  "(it needs %lld)", g->names[0], (long long)g->n, (long long)last,
                  (long long)fc->model->min_history);
        return CLI_EXIT_DATA;
    }
    /* out: the forecasts of one batch of windows, as many channels per step as the input has. */
    const int64_t batch = fc->opt->batch < last ? fc->opt->batch : last;
    float *out = malloc((size_t)(batch * H * C) * sizeof *out), *all = malloc((size_t)(last * H * K) * sizeof *all);
    int64_t *origins = calloc((size_t)batch, sizeof *origins);
    int rc = CLI_EXIT_OK;
    if (!out || !all || !origins) {
        cli_error(NULL, "out of memory for %lld windows of %lld steps", (long long)last, (long long)H);
        rc = CLI_EXIT_DATA;
    }
    for (int64_t w0 = 0; w0 < last && rc == CLI_EXIT_OK; w0 += batch) {
        const int64_t n = last - w0 < batch ? last - w0 : batch;
        for (int64_t i = 0; i < n; i++)
            origins[i] = g->n - (last - 1 - (w0 + i)); /* the history is steps [0, origin) */
        lr_status s = forecast_windows(fc->ctx, fc->model, g, fc->season, n, origins, H, batch, out);
        if (s != LR_OK)
            rc = cli_report(fc->ctx, s, fc->input);
        for (int64_t i = 0; i < n && rc == CLI_EXIT_OK; i++)
            for (int64_t h = 0; h < H; h++)
                for (int64_t k = 0; k < K; k++)
                    all[((w0 + i) * H + h) * K + k] = out[(i * H + h) * g->model_out + g->model_target + k];
    }
    if (rc == CLI_EXIT_OK)
        rc = emit_group(fc, g, all);
    free(out);
    free(all);
    free(origins);
    return rc;
}

/* A float32 NPY array [windows, horizon, channels]: a 3-D header like npy_header's. */
static void write_npy(FILE *f, const forecaster *fc)
{
    char header[128];
    int n = snprintf(header, sizeof header,
                     "\x93NUMPY\x01%c%c{'descr': '<f4', 'fortran_order': False, 'shape': (%lld, %lld, %lld), }",
                     (char)(sizeof header - 10), 0, (long long)fc->npy_windows, (long long)fc->horizon,
                     (long long)fc->npy_channels);
    memset(header + n, ' ', sizeof header - 1 - (size_t)n);
    header[sizeof header - 1] = '\n';
    fwrite(header, 1, sizeof header, f);
    fwrite(fc->npy, sizeof *fc->npy, fc->npy_len, f);
}

/* Opens the model, its forecaster and the context; the horizon from -H, the model's pred_len
 * or 96. */
static int open_model(const cli_args *args, const ts_options *opt, lr_ctx **ctx, lr_model **file,
                      ts_model **model, int64_t *horizon, char *label, size_t label_size)
{
    int rc = cli_context(args, ctx);
    if (rc != CLI_EXIT_OK)
        return rc;
    if ((rc = cli_open_model(*ctx, args->model, file)) != CLI_EXIT_OK)
        return rc;
    if (args->dump_model)
        return cli_dump_model(args, *file) == CLI_EXIT_OK ? -1 : CLI_EXIT_DATA;
    lr_status s = ts_model_open(*ctx, *file, model);
    if (s != LR_OK)
        return cli_report(*ctx, s, lr_model_path(*file));
    *horizon = opt->horizon ? opt->horizon : (*model)->pred_len ? (*model)->pred_len : 96;
    model_label(*file, label, label_size);
    return CLI_EXIT_OK;
}

static int check_layout_options(const series_table *t, const ts_options *opt, const char *input)
{
    if (t->is_long && (opt->target || opt->features != FEATURES_M)) {
        cli_error(input, "--target and --features apply to wide tables; each series of the long "
                  "unique_id, ds, y layout is forecast alone");
        return CLI_EXIT_DATA;
    }
    return CLI_EXIT_OK;
}

static int forecast_main(const cli_args *args, const ts_options *given)
{
    lr_ctx *ctx = NULL;
    lr_model *file = NULL;
    ts_model *model = NULL;
    series_table table = {0};
    series_group wide = {0};
    output *out = NULL;
    forecaster fc = {0};
    char label[256];
    int rc = open_model(args, given, &ctx, &file, &model, &fc.horizon, label, sizeof label);
    ts_options eff = *given;
    eff.columns_arg = NULL;
    if (rc == CLI_EXIT_OK)
        rc = model_inputs(model, given, &eff);
    const ts_options *opt = &eff;
    fc.opt = opt;
    if (rc == CLI_EXIT_OK)
        rc = read_table(args, opt, &table, &fc.input);
    if (rc == CLI_EXIT_OK)
        rc = check_layout_options(&table, opt, fc.input);
    if (rc == CLI_EXIT_OK && !table.is_long)
        rc = group_of_wide(&table, opt, model, &wide);
    if (rc == CLI_EXIT_OK) {
        data_format_parse(args->format, &fc.format);
        rc = output_open(args->output, fc.format == FORMAT_NPY, args->force, &out);
    }
    if (rc == CLI_EXIT_OK) {
        fc.ctx = ctx;
        fc.model = model;
        fc.label = label;
        fc.form = table.form;
        fc.f = output_stream(out);
        fc.season = season_of(table.step);
        const char *columns[MAX_COLUMNS + 2];
        int n = 0;
        bool cutoff = opt->given & OPT_LAST;
        if (!opt->wide)
            columns[n++] = "unique_id";
        columns[n++] = "ds";
        if (cutoff)
            columns[n++] = "cutoff";
        if (!opt->wide)
            columns[n++] = label;
        for (int c = 0; opt->wide && c < wide.out_channels; c++)
            columns[n++] = wide.names[c];
        if (fc.format != FORMAT_NPY)
            table_begin(&fc.table, fc.f, fc.format, columns, n);
        if (table.is_long) {
            for (int i = 0; i < table.n_series && rc == CLI_EXIT_OK; i++) {
                series_group g;
                group_of_series(&table.items[i], &g);
                rc = forecast_group(&fc, &g);
            }
        } else {
            rc = forecast_group(&fc, &wide);
        }
        if (rc == CLI_EXIT_OK && fc.format == FORMAT_NPY)
            write_npy(fc.f, &fc);
        rc = rc == CLI_EXIT_OK ? output_commit(out) : (output_abort(out), rc);
    }
    free(fc.npy);
    free(wide.x);
    series_table_free(&table);
    ts_model_destroy(model);
    lr_model_close(file);
    lr_ctx_destroy(ctx);
    free(eff.columns_arg);
    return rc < 0 ? CLI_EXIT_OK : rc;
}

/* ---- eval ---- */

/* The first step of g at or after the date text; g->n when there is none. */
static int find_date(const series_group *g, const char *option, const char *text, int64_t *index)
{
    time_form form;
    int64_t t;
    if (series_parse_time(text, strlen(text), &form, &t) != SERIES_TIME_OK) {
        cli_error(NULL, "option --%s: '%s' is not a date", option, text);
        return CLI_EXIT_USAGE;
    }
    int64_t i = 0;
    while (i < g->n && g->time[i] < t)
        i++;
    *index = i;
    return CLI_EXIT_OK;
}

/* Squared and absolute errors, standardised and in the data's units. */
typedef struct {
    double se, ae, se_units, ae_units;
    int64_t points, windows;
} eval_sums;

static void sums_add(eval_sums *a, const eval_sums *b)
{
    a->se += b->se;
    a->ae += b->ae;
    a->se_units += b->se_units;
    a->ae_units += b->ae_units;
    a->points += b->points;
}

static void sums_row(table_writer *t, const char *label, const char *name, const eval_sums *s,
                     int64_t horizon)
{
    double n = s->points > 0 ? (double)s->points : NAN;
    table_str(t, label);
    table_str(t, name);
    table_int(t, s->windows);
    table_int(t, horizon);
    table_f64(t, s->se / n);
    table_f64(t, s->ae / n);
    table_f64(t, s->se_units / n);
    table_f64(t, s->ae_units / n);
    table_end_row(t);
}

/* Rolling-origin backtest of one group: origins from the test start, every stride steps,
 * while the horizon fits before the end; errors standardised by the training part's mean and
 * deviation. sums: one per output channel. */
static int eval_group(lr_ctx *ctx, ts_model *model, const ts_options *opt, const char *input,
                      const series_group *g, int64_t H, int64_t season, eval_sums *sums)
{
    int64_t end = g->n, start, train_end;
    int rc = CLI_EXIT_OK;
    if (opt->to && (rc = find_date(g, "to", opt->to, &end)) != CLI_EXIT_OK)
        return rc;
    if (opt->from) {
        if ((rc = find_date(g, "from", opt->from, &start)) != CLI_EXIT_OK)
            return rc;
    } else {
        double fraction = opt->test_fraction > 0 ? opt->test_fraction : 0.2;
        start = end - (int64_t)ceil(fraction * (double)end);
    }
    train_end = start;
    if (opt->train_until && (rc = find_date(g, "train-until", opt->train_until, &train_end)) != CLI_EXIT_OK)
        return rc;
    if (start < model->min_history || start + H > end || train_end < 2) {
        cli_error(input, "series '%s': no test window: %lld steps, the test from step %lld to %lld, "
                  "horizon %lld, training part %lld steps", g->names[0], (long long)g->n,
                  (long long)start, (long long)end, (long long)H, (long long)train_end);
        return CLI_EXIT_DATA;
    }
    const int64_t C = g->channels, K = g->out_channels;
    double mean[MAX_COLUMNS], sd[MAX_COLUMNS];
    for (int64_t k = 0; k < K; k++) {
        double s = 0, ss = 0;
        for (int64_t i = 0; i < train_end; i++)
            s += g->x[i * C + g->target + k];
        mean[k] = s / (double)train_end;
        for (int64_t i = 0; i < train_end; i++) {
            double d = g->x[i * C + g->target + k] - mean[k];
            ss += d * d;
        }
        sd[k] = sqrt(ss / (double)train_end);
        if (!(sd[k] > 0))
            sd[k] = 1;
    }
    /* The origins in chunks of `batch` (the order of the sums does not change). */
    const int64_t batch = opt->batch;
    float *out = malloc((size_t)(batch * H * C) * sizeof *out);
    int64_t *origins = malloc((size_t)batch * sizeof *origins);
    if (!out || !origins) {
        free(out);
        free(origins);
        cli_error(NULL, "out of memory");
        return CLI_EXIT_DATA;
    }
    for (int64_t next = start; next + H <= end && rc == CLI_EXIT_OK;) {
        int64_t n = 0;
        for (; n < batch && next + H <= end; n++, next += opt->stride)
            origins[n] = next;
        lr_status s = forecast_windows(ctx, model, g, season, n, origins, H, batch, out);
        if (s != LR_OK) {
            rc = cli_report(ctx, s, input);
            break;
        }
        for (int64_t w = 0; w < n; w++) {
            const int64_t origin = origins[w];
            const float *o = out + w * H * g->model_out;
            for (int64_t k = 0; k < K; k++) {
                for (int64_t h = 0; h < H; h++) {
                    double e = (double)o[h * g->model_out + g->model_target + k] -
                               g->x[(origin + h) * C + g->target + k];
                    sums[k].se_units += e * e;
                    sums[k].ae_units += fabs(e);
                    sums[k].se += e * e / (sd[k] * sd[k]);
                    sums[k].ae += fabs(e) / sd[k];
                }
                sums[k].points += H;
                sums[k].windows++;
            }
        }
    }
    free(out);
    free(origins);
    return rc;
}

static int eval_main(const cli_args *args, const ts_options *given)
{
    lr_ctx *ctx = NULL;
    lr_model *file = NULL;
    ts_model *model = NULL;
    series_table table = {0};
    series_group wide = {0};
    output *out = NULL;
    eval_sums *sums = NULL;
    const char *input = NULL;
    char label[256];
    int64_t H = 0;
    int rc = open_model(args, given, &ctx, &file, &model, &H, label, sizeof label);
    ts_options eff = *given;
    eff.columns_arg = NULL;
    if (rc == CLI_EXIT_OK)
        rc = model_inputs(model, given, &eff);
    const ts_options *opt = &eff;
    if (rc == CLI_EXIT_OK)
        rc = read_table(args, opt, &table, &input);
    if (rc == CLI_EXIT_OK)
        rc = check_layout_options(&table, opt, input);
    if (rc == CLI_EXIT_OK && !table.is_long)
        rc = group_of_wide(&table, opt, model, &wide);
    int n_rows = table.is_long ? table.n_series : wide.out_channels;
    if (rc == CLI_EXIT_OK && !(sums = calloc((size_t)n_rows + 1, sizeof *sums))) {
        cli_error(NULL, "out of memory");
        rc = CLI_EXIT_DATA;
    }
    int64_t season = season_of(table.step);
    if (rc == CLI_EXIT_OK && table.is_long) {
        for (int i = 0; i < table.n_series && rc == CLI_EXIT_OK; i++) {
            series_group g;
            group_of_series(&table.items[i], &g);
            rc = eval_group(ctx, model, opt, input, &g, H, season, &sums[i]);
        }
    } else if (rc == CLI_EXIT_OK) {
        rc = eval_group(ctx, model, opt, input, &wide, H, season, sums);
    }
    if (rc == CLI_EXIT_OK) {
        data_format format;
        data_format_parse(args->format, &format);
        rc = output_open(args->output, false, args->force, &out);
        if (rc == CLI_EXIT_OK) {
            static const char *const columns[] = {"model", "series", "windows", "horizon",
                                                  "mse", "mae", "mse_units", "mae_units"};
            table_writer t;
            table_begin(&t, output_stream(out), format, columns, 8);
            eval_sums *all = &sums[n_rows];
            for (int i = 0; i < n_rows; i++) {
                sums_add(all, &sums[i]);
                /* a wide table's columns share their windows; long series have their own */
                all->windows = table.is_long ? all->windows + sums[i].windows : sums[i].windows;
            }
            sums_row(&t, label, "all", all, H);
            for (int i = 0; i < n_rows; i++)
                sums_row(&t, label, table.is_long ? table.items[i].id : wide.names[i], &sums[i], H);
            rc = output_commit(out);
        }
    }
    free(sums);
    free(wide.x);
    series_table_free(&table);
    ts_model_destroy(model);
    lr_model_close(file);
    lr_ctx_destroy(ctx);
    free(eff.columns_arg);
    return rc < 0 ? CLI_EXIT_OK : rc;
}

/* ---- main ---- */

int main(int argc, char **argv)
{
    static const char *const formats[] = {"csv", "tsv", "jsonl", "npy", NULL};
    ts_options opt = {.last = 1, .batch = 32, .test_fraction = -1, .stride = 1};
    const cli_option options[] = {
        {"horizon", 'H', "N", "steps to forecast (default: the model's pred_len, else 96)", set_horizon},
        {"wide", 0, NULL, "one column per series (default: long unique_id, ds, model)", set_wide},
        {"time-column", 0, "NAME", "the date column of a wide table (default: date, ds, time, "
         "timestamp, datetime or year, else the first)", set_time_column},
        {"columns", 0, "LIST", "value columns of a wide table, comma-separated (default: all)",
         set_columns},
        {"features", 0, "MODE", "M: all columns in and out (default); S: the target alone; "
         "MS: all in, the target out", set_features},
        {"target", 0, "NAME", "the column forecast in modes S and MS (default: the last)", set_target},
        {"fill", 0, "POLICY", "missing values: error (default), previous or linear", set_fill},
        {"last", 0, "N", "forecast from each of the last N steps, with a cutoff column "
         "(default 1, no cutoff)", set_last},
        {"batch", 0, "N", "windows forecast together by models that batch (default 32; 1: one at "
         "a time; the forecasts do not change)", set_batch},
        {"max-rows", 0, "N", "refuse inputs of more data rows (default 10M)", set_max_rows},
        {"from", 0, "DATE", "eval: first date forecast (default: the last 20% of the steps)", set_from},
        {"to", 0, "DATE", "eval: ignore steps from this date on", set_to},
        {"train-until", 0, "DATE", "eval: standardise errors by the steps before this date "
         "(default: the --from date)", set_train_until},
        {"test-fraction", 0, "F", "eval: the last F of the steps are the test part (default 0.2)",
         set_test_fraction},
        {"stride", 0, "N", "eval: steps between forecast origins (default 1)", set_stride},
        {NULL, 0, NULL, NULL, NULL},
    };
    opt.max_rows = 10000000;
    const cli_program program = {
        .name = "timeseries-forecast",
        .synopsis = "[eval] [OPTIONS] [FILE|-]",
        .description = "Forecast the series of a CSV or TSV table (the default), or backtest a "
                       "model on it (eval).",
        .formats = formats,
        .omit = CLI_OMIT_SEED,
        .options = options,
        .user = &opt,
    };
    cli_args args;
    int rc = cli_parse(&program, argc, argv, &args);
    if (rc != CLI_PROCEED) {
        free(opt.columns_arg);
        return rc;
    }
    bool eval = args.n_operands > 0 && strcmp(args.operands[0], "eval") == 0;
    int files = args.n_operands - eval;
    const unsigned eval_only = OPT_FROM | OPT_TO | OPT_TRAIN_UNTIL | OPT_TEST_FRACTION | OPT_STRIDE;
    if (files > 1)
        rc = cli_usage_error("one input at a time ('%s' and '%s'); use xargs for many",
                             args.operands[eval], args.operands[eval + 1]);
    else if (!eval && (opt.given & eval_only))
        rc = cli_usage_error("options --from, --to, --train-until, --test-fraction and --stride "
                             "apply to 'eval'");
    else if (eval && (opt.given & (OPT_WIDE | OPT_LAST)))
        rc = cli_usage_error("options --wide and --last do not apply to 'eval'");
    else if ((opt.given & OPT_FROM) && (opt.given & OPT_TEST_FRACTION))
        rc = cli_usage_error("options --from and --test-fraction exclude each other");
    else if (eval && strcmp(args.format, "npy") == 0)
        rc = cli_usage_error("eval writes a table: -f csv, tsv or jsonl");
    else if (opt.wide && strcmp(args.format, "npy") == 0)
        rc = cli_usage_error("option --wide: NPY output has no columns");
    else
        rc = eval ? eval_main(&args, &opt) : forecast_main(&args, &opt);
    free(opt.columns_arg);
    return rc;
}
