/* libFuzzer target for the time-series table reader (cmd/common/series). The input is read
 * under every fill policy, with and without a small row limit and a column selection. A table
 * must be consistent (regular, strictly increasing dates that print and parse back, finite
 * values), an error one line; and the policies must agree with one another: filling only ever
 * changes values, and a table that needs no filling reads the same under all of them. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "series.h"

/* As in fuzz.h, which this target does not include: it needs no libcore context. */
#define EXPECT(cond) \
    do {             \
        if (!(cond)) \
            abort(); \
    } while (0)

#define SMALL_ROWS 8

static void check_error(const char *err)
{
    size_t len = strlen(err);
    EXPECT(len > 0 && len < 512);
    EXPECT(strchr(err, '\n') == NULL && strchr(err, '\r') == NULL);
}

static void check_table(const series_table *t, const series_options *opt)
{
    EXPECT(t->n_series >= 1 && t->items && t->time_column);
    EXPECT(t->n_rows >= 2);
    EXPECT(opt->max_rows <= 0 || t->n_rows <= opt->max_rows);
    EXPECT(t->is_long == (t->time == NULL));
    int64_t rows = 0;
    for (int s = 0; s < t->n_series; s++) {
        const series *it = &t->items[s];
        EXPECT(it->id && it->n >= 1 && it->time && it->value);
        EXPECT((it->step.seconds > 0) != (it->step.months > 0));
        EXPECT(it->step.seconds == t->step.seconds && it->step.months == t->step.months);
        EXPECT(it->step.months == 0 || (it->step.day >= 1 && it->step.day <= 31));
        if (!t->is_long)
            EXPECT(it->time == t->time && it->n == t->n_rows);
        rows += it->n;
        for (int64_t i = 0; i < it->n; i++) {
            EXPECT(isfinite(it->value[i]));
            if (i > 0) {
                EXPECT(it->time[i] > it->time[i - 1]);
                EXPECT(series_step_advance(it->step, it->time[i - 1], 1) == it->time[i]);
            }
            /* Printing a date in the table's form gives text that parses back to it. */
            if (i < 4 || i == it->n - 1) {
                char buf[48];
                series_format_time(t->form, it->time[i], buf, sizeof buf);
                time_form f;
                int64_t back;
                EXPECT(series_parse_time(buf, strlen(buf), &f, &back) == SERIES_TIME_OK);
                EXPECT(f == t->form && back == it->time[i]);
                EXPECT(series_step_advance(it->step, series_step_advance(it->step, it->time[i], 3),
                                           -3) == it->time[i] ||
                       it->step.months); /* calendar steps may clamp the day */
            }
        }
        char by[48];
        EXPECT(series_step_describe(it->step, by, sizeof by));
    }
    EXPECT(t->is_long ? rows == t->n_rows : rows == t->n_rows * t->n_series);
}

static bool same_dates(const series_table *a, const series_table *b)
{
    if (a->n_series != b->n_series || a->n_rows != b->n_rows || a->form != b->form)
        return false;
    for (int s = 0; s < a->n_series; s++) {
        const series *x = &a->items[s], *y = &b->items[s];
        if (x->n != y->n || strcmp(x->id, y->id) != 0 ||
            memcmp(x->time, y->time, (size_t)x->n * sizeof *x->time) != 0)
            return false;
    }
    return true;
}

static bool same_values(const series_table *a, const series_table *b)
{
    for (int s = 0; s < a->n_series; s++)
        if (memcmp(a->items[s].value, b->items[s].value,
                   (size_t)a->items[s].n * sizeof *a->items[s].value) != 0)
            return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    series_options opt[3] = {{.fill = SERIES_FILL_ERROR},
                             {.fill = SERIES_FILL_PREVIOUS},
                             {.fill = SERIES_FILL_LINEAR}};
    series_table t[3];
    char err[3][512];
    int rc[3];
    for (int p = 0; p < 3; p++) {
        rc[p] = series_read_buffer(text, size, &opt[p], &t[p], err[p], sizeof err[p]);
        if (rc[p] == 0)
            check_table(&t[p], &opt[p]);
        else {
            check_error(err[p]);
            EXPECT(t[p].items == NULL && t[p].n_series == 0);
        }
    }
    /* Previous and linear fill the same holes: same success, same dates, same message. */
    EXPECT(rc[1] == rc[2]);
    if (rc[1] == 0) {
        EXPECT(same_dates(&t[1], &t[2]) && t[1].n_filled == t[2].n_filled);
    } else {
        EXPECT(strcmp(err[1], err[2]) == 0);
    }
    /* Without holes all three read alike. */
    if (rc[0] == 0) {
        EXPECT(rc[1] == 0 && t[0].n_filled == 0 && t[1].n_filled == 0);
        EXPECT(same_dates(&t[0], &t[1]) && same_values(&t[0], &t[1]) && same_values(&t[0], &t[2]));
    }
    if (rc[1] == 0 && t[1].n_filled == 0)
        EXPECT(rc[0] == 0);

    /* A small row limit: the same table when it fits, else an error. */
    series_options small = {.fill = SERIES_FILL_PREVIOUS, .max_rows = SMALL_ROWS};
    series_table ts;
    char es[512];
    int rs = series_read_buffer(text, size, &small, &ts, es, sizeof es);
    if (rs == 0) {
        check_table(&ts, &small);
        EXPECT(rc[1] == 0 && same_dates(&ts, &t[1]) && same_values(&ts, &t[1]));
        series_table_free(&ts);
    } else {
        check_error(es);
        if (rc[1] == 0)
            EXPECT(t[1].n_rows > SMALL_ROWS);
    }

    /* A column selection (often absent from the header: an error, never a crash). */
    static const char *const cols[] = {"v"};
    series_options sel = {.time_column = "date", .columns = cols, .n_columns = 1,
                          .fill = SERIES_FILL_LINEAR, .max_bytes = 4096};
    rs = series_read_buffer(text, size, &sel, &ts, es, sizeof es);
    if (rs == 0) {
        check_table(&ts, &sel);
        EXPECT(!ts.is_long && ts.n_series == 1 && strcmp(ts.items[0].id, "v") == 0);
        series_table_free(&ts);
    } else {
        check_error(es);
    }

    for (int p = 0; p < 3; p++)
        series_table_free(&t[p]);
    return 0;
}
