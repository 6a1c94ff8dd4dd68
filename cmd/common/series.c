/* Time-series tables (see series.h): a CSV/TSV tokenizer, dates on the proleptic Gregorian
 * calendar, step inference, missing-value filling.
 *
 * Reading happens in two passes. The first tokenizes records and stores dates and values (a
 * missing value as NaN, which parse_f32 never returns) until the input ends or an error comes;
 * the second infers the step and checks every series' dates over the rows stored. Errors are
 * offered with their (line, column) and the smallest one wins, so that the message names the
 * first problem in reading order whichever pass finds it. */
#include "series.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "numbers.h"

/* ---- calendar ---- */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

static bool is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static int days_in_month(int64_t y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* Days since 1970-01-01 of a civil date (H. Hinnant's algorithm; eras of 400 years). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

typedef struct {
    int64_t year;
    int month, day;
    int64_t tod; /* seconds since midnight */
} civil;

static civil split_time(int64_t t)
{
    civil c;
    int64_t days = floor_div(t, 86400);
    c.tod = t - days * 86400;
    civil_from_days(days, &c.year, &c.month, &c.day);
    return c;
}

static bool is_month_end(int64_t t)
{
    civil c = split_time(t);
    return c.day == days_in_month(c.year, c.month);
}

/* Saturating int64 helpers: steps far past the calendar must not wrap around. */
static int64_t sat_add(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

static int64_t sat_mul(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_mul_overflow(a, b, &r))
        return (a < 0) != (b < 0) ? INT64_MIN : INT64_MAX;
    return r;
}

/* Beyond this many months (about 7.7e11 years) the date no longer fits int64 seconds. */
#define MONTHS_LIMIT ((int64_t)1 << 43)

int64_t series_step_advance(series_step step, int64_t t, int64_t k)
{
    if (step.months == 0)
        return sat_add(t, sat_mul(step.seconds, k));
    int64_t dm = sat_mul(step.months, k);
    if (t > INT64_MAX / 2 || t < INT64_MIN / 2 || dm > MONTHS_LIMIT || dm < -MONTHS_LIMIT)
        return (dm < 0) ? INT64_MIN : INT64_MAX;
    civil c = split_time(t);
    int64_t index = c.year * 12 + (c.month - 1) + dm;
    int64_t year = floor_div(index, 12);
    int month = (int)(index - year * 12) + 1;
    int day = step.day > 0 ? step.day : c.day;
    int last = days_in_month(year, month);
    if (day > last)
        day = last;
    return sat_add(sat_mul(days_from_civil(year, month, day), 86400), c.tod);
}

static const char *const form_names[] = {
    [TIME_DATE] = "YYYY-MM-DD",
    [TIME_DATETIME_MIN] = "YYYY-MM-DD HH:MM",
    [TIME_DATETIME] = "YYYY-MM-DD HH:MM:SS",
    [TIME_DATETIME_T_MIN] = "YYYY-MM-DDTHH:MM",
    [TIME_DATETIME_T] = "YYYY-MM-DDTHH:MM:SS",
    [TIME_COMPACT] = "YYYYMMDD",
    [TIME_MONTH] = "YYYY-MM",
    [TIME_YEAR] = "YYYY",
};

const char *series_time_form_name(time_form form)
{
    return (unsigned)form < sizeof form_names / sizeof form_names[0] ? form_names[form] : "?";
}

void series_format_time(time_form form, int64_t t, char *buf, size_t size)
{
    if (!buf || size == 0)
        return;
    civil c = split_time(t);
    long long y = (long long)c.year;
    int hh = (int)(c.tod / 3600), mm = (int)(c.tod / 60 % 60), ss = (int)(c.tod % 60);
    switch (form) {
    case TIME_DATE: snprintf(buf, size, "%04lld-%02d-%02d", y, c.month, c.day); break;
    case TIME_DATETIME_MIN:
        snprintf(buf, size, "%04lld-%02d-%02d %02d:%02d", y, c.month, c.day, hh, mm);
        break;
    case TIME_DATETIME:
        snprintf(buf, size, "%04lld-%02d-%02d %02d:%02d:%02d", y, c.month, c.day, hh, mm, ss);
        break;
    case TIME_DATETIME_T_MIN:
        snprintf(buf, size, "%04lld-%02d-%02dT%02d:%02d", y, c.month, c.day, hh, mm);
        break;
    case TIME_DATETIME_T:
        snprintf(buf, size, "%04lld-%02d-%02dT%02d:%02d:%02d", y, c.month, c.day, hh, mm, ss);
        break;
    case TIME_COMPACT: snprintf(buf, size, "%04lld%02d%02d", y, c.month, c.day); break;
    case TIME_MONTH: snprintf(buf, size, "%04lld-%02d", y, c.month); break;
    case TIME_YEAR: snprintf(buf, size, "%04lld", y); break;
    default: snprintf(buf, size, "?"); break;
    }
}

/* Reads n digits; -1 if any is not a digit. */
static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

int series_parse_time(const char *s, size_t len, time_form *form, int64_t *t)
{
    int y = -1, mo = 1, d = 1, h = 0, mi = 0, se = 0;
    time_form f;
    if (len < 4 || (y = digits(s, 4)) < 0)
        return SERIES_TIME_SYNTAX;
    if (len == 4) {
        f = TIME_YEAR;
    } else if (len == 8) {
        f = TIME_COMPACT;
        if ((mo = digits(s + 4, 2)) < 0 || (d = digits(s + 6, 2)) < 0)
            return SERIES_TIME_SYNTAX;
    } else if (len == 7 || len == 10 || len == 16 || len == 19) {
        if (s[4] != '-' || (mo = digits(s + 5, 2)) < 0)
            return SERIES_TIME_SYNTAX;
        f = TIME_MONTH;
        if (len >= 10) {
            if (s[7] != '-' || (d = digits(s + 8, 2)) < 0)
                return SERIES_TIME_SYNTAX;
            f = TIME_DATE;
        }
        if (len >= 16) {
            if ((s[10] != ' ' && s[10] != 'T') || (h = digits(s + 11, 2)) < 0 || s[13] != ':' ||
                (mi = digits(s + 14, 2)) < 0)
                return SERIES_TIME_SYNTAX;
            f = s[10] == 'T' ? TIME_DATETIME_T_MIN : TIME_DATETIME_MIN;
        }
        if (len == 19) {
            if (s[16] != ':' || (se = digits(s + 17, 2)) < 0)
                return SERIES_TIME_SYNTAX;
            f = s[10] == 'T' ? TIME_DATETIME_T : TIME_DATETIME;
        }
    } else {
        return SERIES_TIME_SYNTAX;
    }
    if (mo < 1 || mo > 12)
        return SERIES_TIME_MONTH;
    if (d < 1 || d > days_in_month(y, mo))
        return SERIES_TIME_DAY;
    if (h > 23)
        return SERIES_TIME_HOUR;
    if (mi > 59)
        return SERIES_TIME_MINUTE;
    if (se > 59)
        return SERIES_TIME_SECOND;
    *form = f;
    *t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
    return SERIES_TIME_OK;
}

/* "2 hours", "1 week": the largest unit that divides the seconds. */
static void describe_seconds(int64_t s, char *buf, size_t size)
{
    static const struct {
        int64_t len;
        const char *name;
    } units[] = {{604800, "week"}, {86400, "day"}, {3600, "hour"}, {60, "minute"}, {1, "second"}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (s % units[i].len == 0) {
            long long n = (long long)(s / units[i].len);
            snprintf(buf, size, "%lld %s%s", n, units[i].name, n == 1 || n == -1 ? "" : "s");
            return;
        }
    }
}

bool series_step_describe(series_step step, char *buf, size_t size)
{
    if (!buf || size == 0)
        return false;
    if (step.months != 0) {
        bool years = step.months % 12 == 0;
        long long n = (long long)(years ? step.months / 12 : step.months);
        snprintf(buf, size, "%lld %s%s", n, years ? "year" : "month", n == 1 ? "" : "s");
        return true;
    }
    if (step.seconds != 0) {
        describe_seconds(step.seconds, buf, size);
        return true;
    }
    snprintf(buf, size, "?");
    return false;
}

/* ---- errors ---- */

#define MSG_MAX 512
#define SHOWN_MAX 40

typedef struct {
    bool set;
    int64_t line, column; /* where; 0 when not about a line or a column */
    char msg[MSG_MAX];
} err_state;

/* Input text for a message: control bytes as '?', cut after SHOWN_MAX bytes. */
typedef struct {
    char s[SHOWN_MAX + 4];
} shown;

static shown show(const char *s, size_t len)
{
    shown out;
    size_t n = len < SHOWN_MAX ? len : SHOWN_MAX;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        out.s[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    if (len > SHOWN_MAX)
        memcpy(out.s + n, "...", 3), n += 3;
    out.s[n] = '\0';
    return out;
}

static shown show_str(const char *s) { return show(s, strlen(s)); }

/* Offers an error at (line, column); the first in reading order is kept. name is the column's
 * name (or NULL). */
static void offer(err_state *e, int64_t line, int64_t column, const char *name, const char *fmt,
                  ...) __attribute__((format(printf, 5, 6)));
static void offer(err_state *e, int64_t line, int64_t column, const char *name, const char *fmt,
                  ...)
{
    if (e->set && (line > e->line || (line == e->line && column >= e->column)))
        return;
    e->set = true;
    e->line = line;
    e->column = column;
    int n = 0;
    if (line > 0 && column > 0 && name)
        n = snprintf(e->msg, MSG_MAX, "line %lld, column %lld ('%s'): ", (long long)line,
                     (long long)column, show_str(name).s);
    else if (line > 0 && column > 0)
        n = snprintf(e->msg, MSG_MAX, "line %lld, column %lld: ", (long long)line,
                     (long long)column);
    else if (line > 0)
        n = snprintf(e->msg, MSG_MAX, "line %lld: ", (long long)line);
    if (n < 0 || n >= MSG_MAX)
        n = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg + n, MSG_MAX - (size_t)n, fmt, ap);
    va_end(ap);
}

/* ---- CSV records ---- */

typedef struct {
    const char *p, *end;
    int64_t line;            /* the line of *p */
    char delim;
    char *const *names;      /* header names for messages, once known */
    int n_names;
} csv_reader;

typedef struct {
    char *buf;               /* the fields' bytes, each NUL-terminated */
    size_t size, cap;
    size_t *off, *len;       /* the stored fields */
    int n, cap_fields;
    int64_t total;           /* fields in the record, stored or not */
    int64_t line;            /* where the record starts */
} csv_record;

static void record_free(csv_record *r)
{
    free(r->buf);
    free(r->off);
    free(r->len);
}

static const char *field(const csv_record *r, int i) { return r->buf + r->off[i]; }

static const char *column_name(const csv_reader *r, int64_t column)
{
    return r->names && column >= 1 && column <= r->n_names ? r->names[column - 1] : NULL;
}

static bool put_byte(csv_record *r, char c)
{
    if (r->size == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 256;
        char *b = realloc(r->buf, cap);
        if (!b)
            return false;
        r->buf = b;
        r->cap = cap;
    }
    r->buf[r->size++] = c;
    return true;
}

static bool at_line_end(const csv_reader *r)
{
    return r->p == r->end || *r->p == '\n' ||
           (*r->p == '\r' && (r->p + 1 == r->end || r->p[1] == '\n'));
}

/* Reads one record, storing at most max_fields fields. Returns 1, 0 at the end of the input, or
 * -1 after offering an error. */
static int read_record(csv_reader *r, csv_record *rec, int max_fields, err_state *e)
{
    while (r->p < r->end && at_line_end(r)) { /* blank lines */
        r->p += *r->p == '\r' ? (r->p + 1 < r->end ? 2 : 1) : 1;
        r->line++;
    }
    if (r->p == r->end)
        return 0;
    rec->line = r->line;
    rec->n = 0;
    rec->total = 0;
    rec->size = 0;
    for (;;) {
        int64_t column = rec->total + 1;
        bool store = rec->total < max_fields;
        size_t start = rec->size, len = 0;
        if (r->p < r->end && *r->p == '"') {
            int64_t qline = r->line;
            r->p++;
            for (;;) {
                if (r->p == r->end) {
                    offer(e, qline, column, column_name(r, column), "quoted field is not closed");
                    return -1;
                }
                char c = *r->p++;
                if (c == '"') {
                    if (r->p < r->end && *r->p == '"')
                        r->p++;
                    else
                        break;
                } else if (c == '\n') {
                    r->line++;
                } else if (c == '\0') {
                    offer(e, r->line, 0, NULL, "NUL byte in the input (not a text file?)");
                    return -1;
                }
                if (store) {
                    if (len == SERIES_MAX_FIELD) {
                        offer(e, rec->line, column, column_name(r, column),
                              "field longer than %d bytes", SERIES_MAX_FIELD);
                        return -1;
                    }
                    if (!put_byte(rec, c))
                        goto oom;
                    len++;
                }
            }
            if (!at_line_end(r) && *r->p != r->delim) {
                offer(e, r->line, column, column_name(r, column),
                      "'%s' after a closing quote (expected a delimiter or a line end)",
                      show(r->p, 1).s);
                return -1;
            }
        } else {
            while (r->p < r->end && *r->p != r->delim && !at_line_end(r)) {
                char c = *r->p++;
                if (c == '"') {
                    offer(e, rec->line, column, column_name(r, column),
                          "quote inside an unquoted field");
                    return -1;
                }
                if (c == '\0') {
                    offer(e, r->line, 0, NULL, "NUL byte in the input (not a text file?)");
                    return -1;
                }
                if (store) {
                    if (len == SERIES_MAX_FIELD) {
                        offer(e, rec->line, column, column_name(r, column),
                              "field longer than %d bytes", SERIES_MAX_FIELD);
                        return -1;
                    }
                    if (!put_byte(rec, c))
                        goto oom;
                    len++;
                }
            }
        }
        if (store) {
            if (!put_byte(rec, '\0'))
                goto oom;
            if (rec->n == rec->cap_fields) {
                int cap = rec->cap_fields ? 2 * rec->cap_fields : 16;
                size_t *off = realloc(rec->off, (size_t)cap * sizeof *off);
                if (off)
                    rec->off = off;
                size_t *ln = realloc(rec->len, (size_t)cap * sizeof *ln);
                if (ln)
                    rec->len = ln;
                if (!off || !ln)
                    goto oom;
                rec->cap_fields = cap;
            }
            rec->off[rec->n] = start;
            rec->len[rec->n] = len;
            rec->n++;
        }
        rec->total++;
        if (r->p < r->end && *r->p == r->delim) {
            r->p++;
            continue;
        }
        /* The line end (at_line_end holds here). */
        if (r->p < r->end && *r->p == '\r')
            r->p++;
        if (r->p < r->end && *r->p == '\n') {
            r->p++;
            r->line++;
        }
        return 1;
    }
oom:
    offer(e, 0, 0, NULL, "out of memory");
    return -1;
}

/* ---- growable arrays ---- */

/* Resizes *p to cap elements; false (and *p untouched) when that fails. */
static bool resize(void *pp, int64_t cap, size_t elem)
{
    void **p = pp;
    if ((uint64_t)cap > SIZE_MAX / elem)
        return false;
    void *q = realloc(*p, (size_t)cap * elem);
    if (!q)
        return false;
    *p = q;
    return true;
}

/* ---- the reader ---- */

static bool is_missing(const char *s)
{
    return !*s || !strcmp(s, "NA") || !strcmp(s, "NaN") || !strcmp(s, "nan") ||
           !strcmp(s, "null");
}

static const char *time_error_text(int code)
{
    switch (code) {
    case SERIES_TIME_MONTH: return "month out of range";
    case SERIES_TIME_DAY: return "day out of range for the month";
    case SERIES_TIME_HOUR: return "hour out of range";
    case SERIES_TIME_MINUTE: return "minute out of range";
    case SERIES_TIME_SECOND: return "second out of range";
    default:
        return "expected YYYY-MM-DD, YYYY-MM-DD HH:MM[:SS] (or with T), YYYYMMDD, YYYY-MM or "
               "YYYY";
    }
}

typedef struct {
    const series_options *opt;
    err_state err;
    csv_reader rd;
    csv_record rec;
    char **names;
    int n_cols;
    bool form_known;
    time_form form;
    int64_t form_line;
    /* Rows, in input order. */
    int64_t n_rows, cap_rows;
    int64_t *time, *line;
    /* wide: one array of values per value column */
    int n_values;
    int *value_col;           /* header index of each value column */
    float **values;
    bool *has_value;          /* per value column (wide) or per series (long) */
    /* long */
    int id_col, ds_col, y_col;
    int32_t *sid;
    float *y;
    int n_series, cap_series;
    char **ids;
    int32_t *hash;            /* open addressing: series index + 1, 0 empty */
    size_t hash_cap;
} reader;

/* Parses the date field of the current record; false after offering an error. */
static bool parse_date(reader *r, int col, int64_t *t)
{
    const char *s = field(&r->rec, col);
    size_t len = r->rec.len[col];
    const char *name = r->names[col];
    int64_t line = r->rec.line;
    if (len == 0) {
        offer(&r->err, line, col + 1, name, "missing date");
        return false;
    }
    time_form form;
    int code = series_parse_time(s, len, &form, t);
    if (code != SERIES_TIME_OK) {
        offer(&r->err, line, col + 1, name, "invalid date '%s' (%s)", show(s, len).s,
              time_error_text(code));
        return false;
    }
    if (!r->form_known) {
        r->form_known = true;
        r->form = form;
        r->form_line = line;
    } else if (form != r->form) {
        offer(&r->err, line, col + 1, name,
              "date '%s' is in the form %s, but the first date (line %lld) is %s",
              show(s, len).s, series_time_form_name(form), (long long)r->form_line,
              series_time_form_name(r->form));
        return false;
    }
    return true;
}

/* Parses a value field: 1 a number, 0 missing (NaN stored), -1 an invalid number, -2 a missing
 * value that is an error (both offered). has_value
 * says whether the series had a value before (for the fill policies). */
static int parse_value(reader *r, int col, bool has_value, float *out)
{
    const char *s = field(&r->rec, col);
    const char *name = r->names[col];
    int64_t line = r->rec.line;
    if (is_missing(s)) {
        *out = NAN;
        if (r->opt->fill == SERIES_FILL_ERROR) {
            offer(&r->err, line, col + 1, name,
                  "missing value '%s' (--fill previous or --fill linear fills missing values)",
                  show_str(s).s);
            return -2;
        }
        if (!has_value) {
            offer(&r->err, line, col + 1, name,
                  "missing value '%s' before the first value of the series: nothing to fill "
                  "it from",
                  show_str(s).s);
            return -2;
        }
        return 0;
    }
    if (!parse_f32(s, out)) {
        offer(&r->err, line, col + 1, name, "invalid number '%s'", show_str(s).s);
        return -1;
    }
    return 1;
}

static uint64_t hash_bytes(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603u; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211u;
    return h;
}

/* The series index of id (added when new); -1 when out of memory. */
static int series_index(reader *r, const char *id, size_t len)
{
    if ((size_t)r->n_series * 2 >= r->hash_cap) {
        size_t cap = r->hash_cap ? 2 * r->hash_cap : 64;
        int32_t *h = calloc(cap, sizeof *h);
        if (!h)
            return -1;
        for (int i = 0; i < r->n_series; i++) {
            size_t j = hash_bytes(r->ids[i], strlen(r->ids[i])) & (cap - 1);
            while (h[j])
                j = (j + 1) & (cap - 1);
            h[j] = i + 1;
        }
        free(r->hash);
        r->hash = h;
        r->hash_cap = cap;
    }
    size_t j = hash_bytes(id, len) & (r->hash_cap - 1);
    while (r->hash[j]) {
        const char *other = r->ids[r->hash[j] - 1];
        if (strlen(other) == len && memcmp(other, id, len) == 0)
            return r->hash[j] - 1;
        j = (j + 1) & (r->hash_cap - 1);
    }
    if (r->n_series == r->cap_series) {
        int cap = r->cap_series ? 2 * r->cap_series : 16;
        char **ids = realloc(r->ids, (size_t)cap * sizeof *ids);
        if (ids)
            r->ids = ids;
        bool *hv = realloc(r->has_value, (size_t)cap * sizeof *hv);
        if (hv)
            r->has_value = hv;
        if (!ids || !hv)
            return -1;
        r->cap_series = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy)
        return -1;
    memcpy(copy, id, len);
    copy[len] = '\0';
    int i = r->n_series++;
    r->ids[i] = copy;
    r->has_value[i] = false;
    r->hash[j] = i + 1;
    return i;
}

/* qsort takes no context argument: the names it compares go through a thread-local pointer. */
static _Thread_local char *const *sort_names;

static int compare_names(const void *a, const void *b)
{
    int i = *(const int *)a, j = *(const int *)b;
    int c = strcmp(sort_names[i], sort_names[j]);
    return c ? c : (i > j) - (i < j);
}

static bool name_is_date(const char *s)
{
    static const char *const names[] = {"date", "ds", "time", "timestamp", "datetime", "year"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcasecmp(s, names[i]))
            return true;
    return false;
}

static int find_column(const reader *r, const char *name)
{
    for (int i = 0; i < r->n_cols; i++)
        if (!strcmp(r->names[i], name))
            return i;
    return -1;
}

/* Reads the header and chooses the columns; false after offering an error. */
static bool read_header(reader *r, bool *is_long, int *date_col)
{
    const series_options *opt = r->opt;
    int rc = read_record(&r->rd, &r->rec, SERIES_MAX_COLUMNS, &r->err);
    if (rc < 0)
        return false;
    if (rc == 0) {
        offer(&r->err, 0, 0, NULL, "empty input: expected a header line");
        return false;
    }
    int64_t hl = r->rec.line;
    if (r->rec.total > SERIES_MAX_COLUMNS) {
        offer(&r->err, hl, 0, NULL, "more than %d columns", SERIES_MAX_COLUMNS);
        return false;
    }
    r->n_cols = r->rec.n;
    r->names = calloc((size_t)r->n_cols, sizeof *r->names);
    if (!r->names)
        goto oom;
    for (int i = 0; i < r->n_cols; i++)
        if (!(r->names[i] = strdup(field(&r->rec, i))))
            goto oom;
    r->rd.names = r->names;
    r->rd.n_names = r->n_cols;
    /* Duplicate names would make columns ambiguous (and series ids repeat). Sorted by name,
     * then position: the first repeat in reading order is the smallest second-of-a-run. */
    int *order = malloc((size_t)(r->n_cols ? r->n_cols : 1) * sizeof *order);
    if (!order)
        goto oom;
    for (int i = 0; i < r->n_cols; i++)
        order[i] = i;
    sort_names = r->names;
    qsort(order, (size_t)r->n_cols, sizeof *order, compare_names);
    int dup = -1, first = -1;
    for (int i = 1; i < r->n_cols; i++) {
        if (strcmp(r->names[order[i]], r->names[order[i - 1]]) != 0)
            continue;
        int run = i - 1; /* the run's first (smallest) position */
        while (run > 0 && !strcmp(r->names[order[run - 1]], r->names[order[i]]))
            run--;
        if (i == run + 1 && (dup < 0 || order[i] < dup))
            dup = order[i], first = order[run];
    }
    free(order);
    if (dup >= 0) {
        offer(&r->err, hl, dup + 1, r->names[dup], "duplicate column name (also column %d)",
              first + 1);
        return false;
    }
    r->id_col = find_column(r, "unique_id");
    r->ds_col = find_column(r, "ds");
    r->y_col = find_column(r, "y");
    *is_long = r->id_col >= 0 && r->ds_col >= 0 && r->y_col >= 0;
    if (*is_long) {
        if (opt->time_column || opt->columns) {
            offer(&r->err, hl, 0, NULL,
                  "a long table (columns unique_id, ds, y) takes no date or value column names");
            return false;
        }
        *date_col = r->ds_col;
        return true;
    }
    if (r->n_cols < 2) {
        offer(&r->err, hl, 0, NULL,
              "%d column: a table needs a date column and at least one value column",
              r->n_cols);
        return false;
    }
    *date_col = -1;
    if (opt->time_column) {
        if ((*date_col = find_column(r, opt->time_column)) < 0) {
            offer(&r->err, hl, 0, NULL, "no column named '%s' (for the dates)",
                  show_str(opt->time_column).s);
            return false;
        }
    } else {
        for (int i = 0; i < r->n_cols && *date_col < 0; i++)
            if (name_is_date(r->names[i]))
                *date_col = i;
        if (*date_col < 0)
            *date_col = 0;
    }
    int n = opt->columns ? opt->n_columns : r->n_cols - 1;
    if (n <= 0) {
        offer(&r->err, hl, 0, NULL, "no value columns");
        return false;
    }
    r->value_col = malloc((size_t)n * sizeof *r->value_col);
    r->values = calloc((size_t)n, sizeof *r->values);
    r->has_value = calloc((size_t)n, sizeof *r->has_value);
    if (!r->value_col || !r->values || !r->has_value)
        goto oom;
    if (opt->columns) {
        for (int i = 0; i < n; i++) {
            const char *want = opt->columns[i] ? opt->columns[i] : "";
            int c = find_column(r, want);
            if (c < 0) {
                offer(&r->err, hl, 0, NULL, "no column named '%s'", show_str(want).s);
                return false;
            }
            if (c == *date_col) {
                offer(&r->err, hl, c + 1, r->names[c],
                      "the date column cannot also be a value column");
                return false;
            }
            for (int j = 0; j < i; j++)
                if (r->value_col[j] == c) {
                    offer(&r->err, hl, c + 1, r->names[c], "value column named twice");
                    return false;
                }
            r->value_col[i] = c;
        }
    } else {
        for (int i = 0, k = 0; i < r->n_cols; i++)
            if (i != *date_col)
                r->value_col[k++] = i;
    }
    r->n_values = n;
    return true;
oom:
    offer(&r->err, 0, 0, NULL, "out of memory");
    return false;
}

/* Reads the data rows until the end or an error (offered). */
static void read_rows(reader *r, bool is_long, int date_col)
{
    const series_options *opt = r->opt;
    for (;;) {
        int rc = read_record(&r->rd, &r->rec, r->n_cols, &r->err);
        if (rc <= 0)
            return;
        int64_t line = r->rec.line;
        if (r->rec.total != r->n_cols) {
            offer(&r->err, line, 0, NULL, "%lld field%s, but the header has %d",
                  (long long)r->rec.total, r->rec.total == 1 ? "" : "s", r->n_cols);
            return;
        }
        if (opt->max_rows > 0 && r->n_rows >= opt->max_rows) {
            offer(&r->err, line, 0, NULL, "more than %lld data rows (the limit)",
                  (long long)opt->max_rows);
            return;
        }
        if (r->n_rows == r->cap_rows) {
            int64_t cap = r->cap_rows ? 2 * r->cap_rows : 64;
            if (!resize(&r->time, cap, sizeof *r->time) ||
                !resize(&r->line, cap, sizeof *r->line))
                goto oom;
            if (is_long &&
                (!resize(&r->sid, cap, sizeof *r->sid) || !resize(&r->y, cap, sizeof *r->y)))
                goto oom;
            for (int j = 0; !is_long && j < r->n_values; j++)
                if (!resize(&r->values[j], cap, sizeof **r->values))
                    goto oom;
            r->cap_rows = cap;
        }
        int64_t i = r->n_rows;
        bool stop = false; /* a value was an error: no later row can hold the first error */
        if (!parse_date(r, date_col, &r->time[i]))
            return;
        r->line[i] = line;
        if (is_long) {
            const char *id = field(&r->rec, r->id_col);
            size_t len = r->rec.len[r->id_col];
            if (len == 0) {
                offer(&r->err, line, r->id_col + 1, r->names[r->id_col], "empty unique_id");
                return;
            }
            int s = series_index(r, id, len);
            if (s < 0)
                goto oom;
            r->sid[i] = s;
            int v = parse_value(r, r->y_col, r->has_value[s], &r->y[i]);
            if (v > 0)
                r->has_value[s] = true;
            if (v < 0) /* a bad value: the row's date still takes part in the checks */
                stop = true, r->y[i] = NAN;
        } else {
            for (int j = 0; j < r->n_values; j++) {
                float *dst = &r->values[j][i];
                int v = parse_value(r, r->value_col[j], r->has_value[j], dst);
                if (v > 0)
                    r->has_value[j] = true;
                if (v < 0) /* as above; the other columns go on (the first error wins) */
                    stop = true, *dst = NAN;
            }
        }
        r->n_rows++;
        if (stop)
            return;
    }
oom:
    offer(&r->err, 0, 0, NULL, "out of memory");
}

/* Chooses a step among those that turn t[0] into t[1]: the calendar ones first, unless a third
 * date says otherwise. months == 0 asks for inference; else the day of a calendar step of that
 * many months. Requires n >= 2 and t[1] > t[0]. */
static series_step infer_step(const int64_t *t, int64_t n, int64_t months)
{
    series_step cand[3];
    int k = 0;
    civil a = split_time(t[0]), b = split_time(t[1]);
    int64_t dm = months;
    if (dm == 0 && a.tod == b.tod)
        dm = (b.year * 12 + b.month) - (a.year * 12 + a.month);
    if (dm > 0) {
        series_step same = {0, dm, a.day};
        if (series_step_advance(same, t[0], 1) == t[1])
            cand[k++] = same;
        if (a.day < 31 && is_month_end(t[0]) && is_month_end(t[1])) {
            series_step end = {0, dm, 31};
            if (series_step_advance(end, t[0], 1) == t[1])
                cand[k++] = end;
        }
    }
    if (months == 0)
        cand[k++] = (series_step){t[1] - t[0], 0, 0};
    if (k == 0) /* no calendar reading fits: the day of the first date; checking reports it */
        return (series_step){0, months, a.day};
    if (n >= 3)
        for (int i = 0; i < k; i++)
            if (series_step_advance(cand[i], t[1], 1) == t[2])
                return cand[i];
    return cand[0];
}

/* Checks the dates of one series (t and line of n rows) and offers its first error. */
static void check_dates(reader *r, const int64_t *t, const int64_t *line, int64_t n,
                        const series_step *step, int col, const char *id)
{
    char ids[SHOWN_MAX + 20] = "";
    if (id)
        snprintf(ids, sizeof ids, "series '%s': ", show_str(id).s);
    const char *name = r->names[col];
    for (int64_t i = 1; i < n; i++) {
        if (r->err.set && line[i] > r->err.line)
            return; /* nothing later can win */
        char now[40], before[40];
        if (t[i] > t[i - 1] && (!step || series_step_advance(*step, t[i - 1], 1) == t[i]))
            continue;
        series_format_time(r->form, t[i], now, sizeof now);
        series_format_time(r->form, t[i - 1], before, sizeof before);
        if (t[i] == t[i - 1]) {
            offer(&r->err, line[i], col + 1, name, "%sduplicate date '%s' (also on line %lld)",
                  ids, now, (long long)line[i - 1]);
        } else if (t[i] < t[i - 1]) {
            offer(&r->err, line[i], col + 1, name,
                  "%sdate '%s' comes before the previous date '%s' (line %lld); rows must be "
                  "in date order",
                  ids, now, before, (long long)line[i - 1]);
        } else {
            char gap[48], by[48], expected[40];
            describe_seconds(t[i] - t[i - 1], gap, sizeof gap);
            if (step->months) { /* a whole number of months reads better: "2 months" */
                civil a = split_time(t[i - 1]), b = split_time(t[i]);
                series_step m = {0, (b.year * 12 + b.month) - (a.year * 12 + a.month), step->day};
                if (m.months > 0 && series_step_advance(m, t[i - 1], 1) == t[i])
                    series_step_describe(m, gap, sizeof gap);
            }
            series_step_describe(*step, by, sizeof by);
            series_format_time(r->form, series_step_advance(*step, t[i - 1], 1), expected,
                               sizeof expected);
            offer(&r->err, line[i], col + 1, name,
                  "%sdate '%s' is %s after the previous one; the series steps by %s (expected "
                  "'%s')",
                  ids, now, gap, by, expected);
        }
        return;
    }
}

/* Fills the NaN holes of v (the first value is known to be present). */
static int64_t fill_values(float *v, int64_t n, series_fill fill)
{
    int64_t filled = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isnan(v[i]))
            continue;
        int64_t j = i; /* the gap is [i, j) */
        while (j < n && isnan(v[j]))
            j++;
        filled += j - i;
        double a = v[i - 1];
        if (fill == SERIES_FILL_LINEAR && j < n) {
            double b = v[j], span = (double)(j - i + 1);
            for (int64_t k = i; k < j; k++)
                v[k] = (float)(a + (b - a) * (double)(k - i + 1) / span);
        } else {
            for (int64_t k = i; k < j; k++)
                v[k] = (float)a;
        }
        i = j;
    }
    return filled;
}

static void reader_free(reader *r)
{
    record_free(&r->rec);
    for (int i = 0; i < r->n_cols && r->names; i++)
        free(r->names[i]);
    free(r->names);
    free(r->time);
    free(r->line);
    for (int j = 0; r->values && j < r->n_values; j++)
        free(r->values[j]);
    free(r->values);
    free(r->value_col);
    free(r->has_value);
    free(r->sid);
    free(r->y);
    for (int i = 0; i < r->n_series; i++)
        free(r->ids[i]);
    free(r->ids);
    free(r->hash);
}

static void set_err(char *err, size_t err_size, const char *msg)
{
    if (err && err_size > 0)
        snprintf(err, err_size, "%s", msg);
}

/* Builds the wide table from the rows; false after offering an error. */
static bool finish_wide(reader *r, int date_col, series_table *out)
{
    if (r->n_rows >= 2 && r->time[1] <= r->time[0]) {
        check_dates(r, r->time, r->line, r->n_rows, NULL, date_col, NULL);
    } else if (r->n_rows >= 2) {
        out->step = infer_step(r->time, r->n_rows, 0);
        check_dates(r, r->time, r->line, r->n_rows, &out->step, date_col, NULL);
    }
    if (r->err.set)
        return false;
    if (r->n_rows < 2) {
        offer(&r->err, r->rd.line, 0, NULL,
              r->n_rows ? "only one data row: the step needs at least two dates"
                        : "no data rows after the header");
        return false;
    }
    out->items = calloc((size_t)r->n_values, sizeof *out->items);
    out->time_column = strdup(r->names[date_col]);
    if (!out->items || !out->time_column)
        goto oom;
    out->n_series = r->n_values;
    for (int j = 0; j < r->n_values; j++) {
        series *s = &out->items[j];
        if (!(s->id = strdup(r->names[r->value_col[j]])))
            goto oom;
        s->n = r->n_rows;
        s->time = r->time;
        s->value = r->values[j];
        r->values[j] = NULL;
        s->step = out->step;
        if (r->opt->fill != SERIES_FILL_ERROR)
            out->n_filled += fill_values(s->value, s->n, r->opt->fill);
    }
    out->time = r->time;
    r->time = NULL;
    return true;
oom:
    offer(&r->err, 0, 0, NULL, "out of memory");
    return false;
}

/* Builds the long table: rows grouped by series in a stable counting sort. */
static bool finish_long(reader *r, series_table *out)
{
    int ns = r->n_series;
    int64_t n = r->n_rows;
    int64_t *start = calloc((size_t)ns + 1, sizeof *start);
    int64_t *lines = malloc((size_t)(n ? n : 1) * sizeof *lines);
    out->items = calloc((size_t)(ns ? ns : 1), sizeof *out->items);
    out->time_column = strdup("ds");
    if (!start || !lines || !out->items || !out->time_column)
        goto oom;
    out->n_series = ns;
    for (int64_t i = 0; i < n; i++)
        start[r->sid[i] + 1]++;
    for (int s = 0; s < ns; s++) {
        start[s + 1] += start[s];
        series *it = &out->items[s];
        int64_t len = start[s + 1] - start[s];
        it->id = r->ids[s];
        r->ids[s] = NULL;
        it->time = malloc((size_t)len * sizeof *it->time);
        it->value = malloc((size_t)len * sizeof *it->value);
        if (!it->time || !it->value)
            goto oom;
    }
    for (int64_t i = 0; i < n; i++) {
        int s = r->sid[i];
        series *it = &out->items[s];
        lines[start[s] + it->n] = r->line[i];
        it->time[it->n] = r->time[i];
        it->value[it->n] = r->y[i];
        it->n++;
    }
    /* The step of the first series that shows one; every series gets its own day. */
    int ref = -1;
    for (int s = 0; s < ns && ref < 0; s++)
        if (out->items[s].n >= 2 && out->items[s].time[1] > out->items[s].time[0])
            ref = s;
    series_step step = {0, 0, 0};
    if (ref >= 0)
        step = infer_step(out->items[ref].time, out->items[ref].n, 0);
    for (int s = 0; s < ns; s++) {
        series *it = &out->items[s];
        it->step = step;
        if (it->n == 0) /* cannot happen: a series is made with its first row */
            continue;
        if (step.months) {
            if (it->n >= 2 && it->time[1] > it->time[0])
                it->step = infer_step(it->time, it->n, step.months);
            else
                it->step.day = split_time(it->time[0]).day;
        }
        check_dates(r, it->time, lines + start[s], it->n, ref >= 0 ? &it->step : NULL,
                    r->ds_col, it->id);
    }
    out->step = ns ? out->items[0].step : step;
    free(start);
    free(lines);
    start = NULL;
    lines = NULL;
    if (r->err.set)
        return false;
    if (n == 0) {
        offer(&r->err, r->rd.line, 0, NULL, "no data rows after the header");
        return false;
    }
    if (ref < 0) {
        offer(&r->err, r->rd.line, 0, NULL,
              "every series has only one row: the step needs at least two dates");
        return false;
    }
    for (int s = 0; s < ns && r->opt->fill != SERIES_FILL_ERROR; s++)
        out->n_filled += fill_values(out->items[s].value, out->items[s].n, r->opt->fill);
    return true;
oom:
    free(start);
    free(lines);
    offer(&r->err, 0, 0, NULL, "out of memory");
    return false;
}

int series_read_buffer(const char *data, size_t size, const series_options *opt,
                       series_table *out, char *err, size_t err_size)
{
    static const series_options defaults = {0};
    if (!opt)
        opt = &defaults;
    memset(out, 0, sizeof *out);
    reader r;
    memset(&r, 0, sizeof r);
    r.opt = opt;
    if (opt->max_bytes > 0 && size > (uint64_t)opt->max_bytes) {
        snprintf(r.err.msg, MSG_MAX, "input larger than the limit of %lld bytes",
                 (long long)opt->max_bytes);
        set_err(err, err_size, r.err.msg);
        return -1;
    }
    if (opt->columns && opt->n_columns <= 0) {
        set_err(err, err_size, "no value columns named");
        return -1;
    }
    if (size >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0)
        data += 3, size -= 3;
    r.rd.p = data;
    r.rd.end = data + size;
    r.rd.line = 1;
    const char *nl = memchr(data, '\n', size);
    r.rd.delim = memchr(data, '\t', nl ? (size_t)(nl - data) : size) ? '\t' : ',';
    bool is_long = false, ok = false;
    int date_col = 0;
    if (read_header(&r, &is_long, &date_col)) {
        read_rows(&r, is_long, date_col);
        out->is_long = is_long;
        out->form = r.form;
        out->n_rows = r.n_rows;
        ok = is_long ? finish_long(&r, out) : finish_wide(&r, date_col, out);
    }
    if (!ok || r.err.set) {
        series_table_free(out);
        set_err(err, err_size, r.err.set ? r.err.msg : "internal error");
        reader_free(&r);
        return -1;
    }
    reader_free(&r);
    return 0;
}

int series_read(FILE *f, const series_options *opt, series_table *out, char *err,
                size_t err_size)
{
    memset(out, 0, sizeof *out);
    int64_t limit = opt && opt->max_bytes > 0 ? opt->max_bytes : INT64_MAX;
    size_t cap = 0, size = 0;
    char *buf = NULL;
    for (;;) {
        if (size == cap) {
            /* Never more than one byte past the limit: enough to see it is exceeded. */
            size_t grown = cap ? 2 * cap : 65536;
            if ((uint64_t)grown > (uint64_t)limit + 1)
                grown = (size_t)limit + 1;
            char *b = grown > cap ? realloc(buf, grown) : NULL;
            if (!b) {
                free(buf);
                set_err(err, err_size, "out of memory");
                return -1;
            }
            buf = b;
            cap = grown;
        }
        size_t got = fread(buf + size, 1, cap - size, f);
        size += got;
        if ((uint64_t)size > (uint64_t)limit) {
            free(buf);
            char msg[MSG_MAX];
            snprintf(msg, sizeof msg, "input larger than the limit of %lld bytes",
                     (long long)limit);
            set_err(err, err_size, msg);
            return -1;
        }
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        int e = errno;
        free(buf);
        char msg[MSG_MAX];
        snprintf(msg, sizeof msg, "read error: %s", strerror(e ? e : EIO));
        set_err(err, err_size, msg);
        return -1;
    }
    int rc = series_read_buffer(buf, size, opt, out, err, err_size);
    free(buf);
    return rc;
}

void series_table_free(series_table *t)
{
    if (!t)
        return;
    for (int i = 0; t->items && i < t->n_series; i++) {
        free(t->items[i].id);
        if (t->is_long)
            free(t->items[i].time);
        free(t->items[i].value);
    }
    free(t->items);
    free(t->time);
    free(t->time_column);
    memset(t, 0, sizeof *t);
}
