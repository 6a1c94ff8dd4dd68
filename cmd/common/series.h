/* Time-series tables for timeseries-forecast: a CSV/TSV reader, timestamps and their steps.
 *
 * Input: text with a header line. The delimiter is a tab if the header line (up to its first
 * line feed) holds one, else a comma. Fields may be quoted as in RFC 4180 ("a,b", "say ""hi""",
 * line breaks inside quotes); a quote inside an unquoted field is an error. Lines end in LF or
 * CRLF, the last one may lack its line end, a UTF-8 byte-order mark is skipped, blank lines are
 * skipped, a NUL byte is an error. Every record must have as many fields as the header.
 *
 * Two layouts:
 *  - long: the header has columns named exactly unique_id, ds and y (the statsforecast
 *    convention; other columns are ignored). Each unique_id is one series with its own dates;
 *    rows of different series may be interleaved or grouped, but the rows of one series must be
 *    in date order. Series come in the order of their first row.
 *  - wide (anything else): one date column and value columns, one series per value column, all
 *    sharing the dates. The date column is options.time_column when given, else the first
 *    column named (ASCII case-insensitively) date, ds, time, timestamp, datetime or year, else
 *    the first column. The value columns are options.columns when given (in that order; each
 *    must exist and differ from the date column), else every other column in header order.
 *    Columns that are not used are still counted but never parsed.
 *
 * Dates (one form per table, that of the first data row):
 *     TIME_YEAR          1871                  TIME_DATE        2016-07-01
 *     TIME_MONTH         2016-07               TIME_COMPACT     20160701
 *     TIME_DATETIME_MIN  2016-07-01 00:00      TIME_DATETIME_T_MIN  2016-07-01T00:00
 *     TIME_DATETIME      2016-07-01 00:00:00   TIME_DATETIME_T      2016-07-01T00:00:00
 * Years 0000-9999, months 1-12, days within the month (proleptic Gregorian leap years), hours
 * 0-23, minutes and seconds 0-59. No time zones: a time is int64 seconds since
 * 1970-01-01 00:00:00 on the proleptic Gregorian calendar, each day 86400 s (TIME_YEAR is
 * January 1st, TIME_MONTH the 1st of the month, both at midnight).
 *
 * Steps: each series must be regular. The step is inferred from the first series with two
 * rows: a calendar step of N months when the second date is the first plus N months on the
 * same day of the month (clamped to shorter months), or when both are the last days of their
 * months (a month-end series); else a fixed number of seconds (the difference). When both
 * readings fit the first two dates (2015-02-01, 2015-03-01: 1 month or 28 days) the third
 * date decides, and with two dates only the calendar step wins. Every series then has that step
 * (in the long layout each series has its own start and its own day of the month). A date equal
 * to or before the previous one, or that is not the previous one plus one step, is an error.
 *
 * Values: float32, parsed strictly in the C locale (parse_f32: no blanks, no "inf"/"nan").
 * Missing values are empty fields and the words NA, NaN, nan and null. options.fill says what
 * to do with them: SERIES_FILL_ERROR (the default) makes them errors; SERIES_FILL_PREVIOUS
 * repeats the previous value of the series; SERIES_FILL_LINEAR interpolates linearly between
 * the values around a gap (by position, since steps are regular) and holds the last value over
 * a trailing gap (as pandas' interpolate does). A missing value before the first value of a
 * series cannot be filled: an error under both policies. Dates and unique_ids are never
 * missing.
 *
 * Errors: one line of text (control characters of the input shown as '?', quoted input cut
 * after 40 bytes), of the form
 *     line N, column M ('NAME'): message      (a field)
 *     line N: message                         (a whole line)
 *     message                                 (the whole input: size limit, read error)
 * where N is the line on which the record starts (the header is line 1) and M counts fields
 * from 1. The error reported is the first in reading order (smallest line, then column).
 *
 * Limits: options.max_bytes (input size), options.max_rows (data rows), SERIES_MAX_FIELD bytes
 * per field, SERIES_MAX_COLUMNS columns. Memory grows with the data actually read: a few bytes
 * over the input per value. Time and memory are O(input size); the long layout finds series
 * by hashing. */
#ifndef CLI_SERIES_H
#define CLI_SERIES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SERIES_MAX_FIELD 1024    /* bytes in one field, after unquoting */
#define SERIES_MAX_COLUMNS 10000 /* fields in the header */

typedef enum {
    TIME_DATE,           /* 2016-07-01 */
    TIME_DATETIME_MIN,   /* 2016-07-01 00:00 */
    TIME_DATETIME,       /* 2016-07-01 00:00:00 */
    TIME_DATETIME_T_MIN, /* 2016-07-01T00:00 */
    TIME_DATETIME_T,     /* 2016-07-01T00:00:00 */
    TIME_COMPACT,        /* 20160701 */
    TIME_MONTH,          /* 2016-07 */
    TIME_YEAR,           /* 2016 */
} time_form;

/* A step: exactly one of seconds and months is nonzero (both positive in a table).
 * day is for calendar steps: the day of the month the series keeps, 1-31, clamped to the
 * length of each month (31: the last day of every month); 0 keeps the day of the date being
 * advanced, clamped the same way. */
typedef struct {
    int64_t seconds;
    int64_t months;
    int day;
} series_step;

typedef enum { SERIES_FILL_ERROR, SERIES_FILL_PREVIOUS, SERIES_FILL_LINEAR } series_fill;

typedef struct {
    const char *time_column;   /* wide: the date column's name; NULL: found as above */
    const char *const *columns; /* wide: the value columns' names; NULL: all but the date */
    int n_columns;
    series_fill fill;
    int64_t max_rows;  /* data rows; 0 or less: no limit */
    int64_t max_bytes; /* input bytes (including the header); 0 or less: no limit */
} series_options;

/* One series: a value column (wide) or one unique_id (long). */
typedef struct {
    char *id;           /* the column name or the unique_id */
    int64_t n;          /* rows, at least 1 */
    int64_t *time;      /* n dates, strictly increasing by step */
    float *value;       /* n values, all finite after filling */
    series_step step;   /* the table's step with this series' day of the month */
} series;

typedef struct {
    bool is_long;
    char *time_column;  /* the date column's name ("ds" in the long layout) */
    time_form form;     /* of every date in the input */
    series_step step;   /* that of items[0] */
    int n_series;
    series *items;
    int64_t *time;      /* wide: the dates every item shares (items[i].time == time); long: NULL */
    int64_t n_rows;     /* data rows read */
    int64_t n_filled;   /* missing values filled */
} series_table;

/* Reads a whole table from f (binary-safe; f is not closed). Returns 0, or -1 with the error
 * in err (NUL-terminated, cut to err_size; err may be NULL). *out is zeroed on failure and
 * must be freed with series_table_free on success. opt may be NULL (all defaults). */
int series_read(FILE *f, const series_options *opt, series_table *out, char *err,
                size_t err_size);
/* The same from memory; data need not be NUL-terminated. */
int series_read_buffer(const char *data, size_t size, const series_options *opt,
                       series_table *out, char *err, size_t err_size);
void series_table_free(series_table *t);

/* Parses one date of exactly len bytes. Returns 0 and sets *form and *t, or a reason:
 * SERIES_TIME_SYNTAX (none of the forms) or the field out of range. */
enum {
    SERIES_TIME_OK,
    SERIES_TIME_SYNTAX,
    SERIES_TIME_MONTH,
    SERIES_TIME_DAY,
    SERIES_TIME_HOUR,
    SERIES_TIME_MINUTE,
    SERIES_TIME_SECOND,
};
int series_parse_time(const char *s, size_t len, time_form *form, int64_t *t);

/* t plus k steps (k may be negative). A calendar step moves by k*months months to the step's
 * day (or t's day when step.day is 0) clamped to the target month's last day, keeping the time
 * of day, always counted from t itself: with day 0, 2016-01-31 + 1 month = 2016-02-29 and
 * 2016-01-31 + 2 months = 2016-03-31; with day 31, 2016-02-29 + 1 month = 2016-03-31.
 * Results beyond int64 saturate. */
int64_t series_step_advance(series_step step, int64_t t, int64_t k);

/* Writes t in the given form ("%04d" years; a year outside 0-9999 prints as it is). Fields
 * finer than the form (the hour of a TIME_DATE) are not printed. size >= 32 always suffices. */
void series_format_time(time_form form, int64_t t, char *buf, size_t size);

/* "YYYY-MM-DD HH:MM:SS" and so on, for messages and documentation. */
const char *series_time_form_name(time_form form);

/* "1 hour", "15 minutes", "1 week", "3 months", "1 year" (calendar steps of a multiple of 12
 * months count years; fixed steps use the largest of week, day, hour, minute and second that
 * divides them). Returns false (and writes "?") for a step with neither part set. */
bool series_step_describe(series_step step, char *buf, size_t size);

#endif
