/* cmd/common/series: the time-series table reader of timeseries-forecast. Dates and steps,
 * both layouts, every error message, the fill policies and the real data sets of
 * ../shared/data/timeseries (skipped, with a note, when they are absent). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "series.h"

#define DATA "../shared/data/timeseries/"

static char err[512];

static int rd(const char *text, const series_options *opt, series_table *t)
{
    err[0] = '\0';
    return series_read_buffer(text, strlen(text), opt, t, err, sizeof err);
}

/* The reader must fail with exactly this message. */
#define CHECK_ERROR(text, opt, expected)                                                      \
    do {                                                                                      \
        series_table t_;                                                                      \
        int rc_ = rd(text, opt, &t_);                                                         \
        CHECKF(rc_ == -1 && strcmp(err, expected) == 0,                                      \
               "rc %d, error\n    got  '%s'\n    want '%s'", rc_, err, expected);              \
        CHECK(t_.items == NULL && t_.n_series == 0);                                          \
        if (rc_ == 0)                                                                         \
            series_table_free(&t_);                                                           \
    } while (0)

static int64_t T(const char *s)
{
    time_form f;
    int64_t t = 0;
    if (series_parse_time(s, strlen(s), &f, &t) != SERIES_TIME_OK) {
        printf("  bad date in test: %s\n", s);
        return INT64_MIN;
    }
    return t;
}

static const char *fmt(time_form f, int64_t t)
{
    static char buf[4][48];
    static int next;
    char *b = buf[next++ % 4];
    series_format_time(f, t, b, 48);
    return b;
}

static void test_parse_time(void)
{
    static const struct {
        const char *s;
        time_form form;
        int64_t t;
    } ok[] = {
        {"1970-01-01", TIME_DATE, 0},
        {"2016-07-01 00:00:00", TIME_DATETIME, 1467331200},
        {"2016-07-01 01:30", TIME_DATETIME_MIN, 1467331200 + 5400},
        {"2016-07-01T23:59:59", TIME_DATETIME_T, 1467331200 + 86399},
        {"2016-07-01T12:00", TIME_DATETIME_T_MIN, 1467331200 + 43200},
        {"20160701", TIME_COMPACT, 1467331200},
        {"2016-07", TIME_MONTH, 1467331200},
        {"2016", TIME_YEAR, 1451606400},
        {"1871", TIME_YEAR, -3124137600},
        {"0000-01-01", TIME_DATE, -62167219200},
        {"9999-12-31", TIME_DATE, 253402214400},
        {"2016-02-29", TIME_DATE, 1456704000},
        {"2000-02-29", TIME_DATE, 951782400},
        {"1969-12-31 23:59:59", TIME_DATETIME, -1},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        time_form f = TIME_YEAR;
        int64_t t = 0;
        int code = series_parse_time(ok[i].s, strlen(ok[i].s), &f, &t);
        CHECKF(code == SERIES_TIME_OK && f == ok[i].form && t == ok[i].t,
               "%s: code %d form %d t %lld", ok[i].s, code, (int)f, (long long)t);
        /* Formatting in the same form gives the text back. */
        CHECKF(strcmp(fmt(f, t), ok[i].s) == 0, "%s formats as %s", ok[i].s, fmt(f, t));
    }
    static const struct {
        const char *s;
        int code;
    } bad[] = {
        {"", SERIES_TIME_SYNTAX},           {"16", SERIES_TIME_SYNTAX},
        {"2016-7-01", SERIES_TIME_SYNTAX},  {"2016/07/01", SERIES_TIME_SYNTAX},
        {"2016-07-01Z", SERIES_TIME_SYNTAX}, {"2016-07-01 00:00:00Z", SERIES_TIME_SYNTAX},
        {"2016-07-01 0:00:00", SERIES_TIME_SYNTAX}, {"2016-07-01_00:00", SERIES_TIME_SYNTAX},
        {"+016", SERIES_TIME_SYNTAX},       {"2016071", SERIES_TIME_SYNTAX},
        {"2016-13", SERIES_TIME_MONTH},     {"2016-00-10", SERIES_TIME_MONTH},
        {"20161301", SERIES_TIME_MONTH},    {"2015-02-29", SERIES_TIME_DAY},
        {"1900-02-29", SERIES_TIME_DAY},    {"2016-04-31", SERIES_TIME_DAY},
        {"2016-04-00", SERIES_TIME_DAY},    {"2016-04-01 24:00", SERIES_TIME_HOUR},
        {"2016-04-01T10:60", SERIES_TIME_MINUTE}, {"2016-04-01 10:00:60", SERIES_TIME_SECOND},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        time_form f;
        int64_t t;
        int code = series_parse_time(bad[i].s, strlen(bad[i].s), &f, &t);
        CHECKF(code == bad[i].code, "%s: code %d, want %d", bad[i].s, code, bad[i].code);
    }
    /* Finer fields than the form are not printed; years past 9999 print as they are. */
    CHECK(strcmp(fmt(TIME_DATE, T("2016-07-01 13:14:15")), "2016-07-01") == 0);
    CHECK(strcmp(fmt(TIME_YEAR, T("2016-07-01 13:14:15")), "2016") == 0);
    CHECK(strcmp(fmt(TIME_DATE, T("9999-12-31") + 86400), "10000-01-01") == 0);
    char small[5];
    series_format_time(TIME_DATE, 0, small, sizeof small);
    CHECK(strcmp(small, "1970") == 0);
}

static void test_step_advance(void)
{
    series_step month = {0, 1, 0}, month_end = {0, 1, 31}, year = {0, 12, 0};
    series_step hour = {3600, 0, 0}, quarter = {0, 3, 15};
    time_form D = TIME_DATE, DT = TIME_DATETIME;
    CHECK(!strcmp(fmt(D, series_step_advance(month, T("2016-01-31"), 1)), "2016-02-29"));
    CHECK(!strcmp(fmt(D, series_step_advance(month, T("2016-01-31"), 2)), "2016-03-31"));
    CHECK(!strcmp(fmt(D, series_step_advance(month, T("2015-01-31"), 1)), "2015-02-28"));
    CHECK(!strcmp(fmt(D, series_step_advance(month, T("2016-03-31"), -1)), "2016-02-29"));
    CHECK(!strcmp(fmt(D, series_step_advance(month, T("2016-12-15"), 1)), "2017-01-15"));
    CHECK(!strcmp(fmt(D, series_step_advance(month, T("2016-01-15"), -13)), "2014-12-15"));
    CHECK(!strcmp(fmt(D, series_step_advance(month_end, T("2016-02-29"), 1)), "2016-03-31"));
    CHECK(!strcmp(fmt(D, series_step_advance(month_end, T("2016-04-30"), 10)), "2017-02-28"));
    CHECK(!strcmp(fmt(D, series_step_advance(quarter, T("2016-02-15"), 1)), "2016-05-15"));
    CHECK(!strcmp(fmt(D, series_step_advance(year, T("2016-02-29"), 1)), "2017-02-28"));
    CHECK(!strcmp(fmt(D, series_step_advance(year, T("2016-02-29"), 4)), "2020-02-29"));
    CHECK(!strcmp(fmt(TIME_YEAR, series_step_advance(year, T("1871"), 100)), "1971"));
    CHECK(!strcmp(fmt(TIME_YEAR, series_step_advance(year, T("1970"), -1)), "1969"));
    CHECK(!strcmp(fmt(DT, series_step_advance(month, T("2016-01-31 12:30:05"), 1)),
                  "2016-02-29 12:30:05"));
    CHECK(!strcmp(fmt(DT, series_step_advance(month, T("1960-01-31 12:30:05"), 1)),
                  "1960-02-29 12:30:05"));
    CHECK(!strcmp(fmt(DT, series_step_advance(hour, T("2016-12-31 23:00:00"), 1)),
                  "2017-01-01 00:00:00"));
    CHECK(!strcmp(fmt(DT, series_step_advance(hour, T("2016-03-01 00:00:00"), -1)),
                  "2016-02-29 23:00:00"));
    CHECK(series_step_advance(hour, 0, 0) == 0);
    /* Saturation instead of wrapping around. */
    CHECK(series_step_advance(hour, 0, INT64_MAX) == INT64_MAX);
    CHECK(series_step_advance(hour, 0, INT64_MIN) == INT64_MIN);
    CHECK(series_step_advance(month, 0, INT64_MAX) == INT64_MAX);
    CHECK(series_step_advance(month, 0, -((int64_t)1 << 50)) == INT64_MIN);
    /* Far but representable calendar steps stay exact both ways. */
    int64_t far = series_step_advance(month, T("2016-01-31"), 12 * 1000000);
    CHECK(!strcmp(fmt(D, far), "1002016-01-31"));
    CHECK(series_step_advance(month, far, -12 * 1000000) == T("2016-01-31"));
}

static void test_describe(void)
{
    static const struct {
        series_step step;
        const char *text;
    } cases[] = {
        {{3600, 0, 0}, "1 hour"},      {{900, 0, 0}, "15 minutes"}, {{5400, 0, 0}, "90 minutes"},
        {{604800, 0, 0}, "1 week"},    {{2 * 86400, 0, 0}, "2 days"}, {{1, 0, 0}, "1 second"},
        {{1209600, 0, 0}, "2 weeks"},  {{0, 1, 0}, "1 month"},    {{0, 3, 1}, "3 months"},
        {{0, 12, 0}, "1 year"},        {{0, 24, 0}, "2 years"},   {{0, 18, 0}, "18 months"},
    };
    char buf[64];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK(series_step_describe(cases[i].step, buf, sizeof buf));
        CHECKF(!strcmp(buf, cases[i].text), "%s, want %s", buf, cases[i].text);
    }
    CHECK(!series_step_describe((series_step){0, 0, 0}, buf, sizeof buf) && !strcmp(buf, "?"));
    CHECK(!strcmp(series_time_form_name(TIME_DATETIME), "YYYY-MM-DD HH:MM:SS"));
    CHECK(!strcmp(series_time_form_name(TIME_COMPACT), "YYYYMMDD"));
}

/* One wide table of a given text: its form, step and first/last dates. */
static void check_wide(const char *text, time_form form, series_step step, int64_t n,
                       const char *last)
{
    series_table t;
    int rc = rd(text, NULL, &t);
    CHECKF(rc == 0, "error: %s\n    text: %.60s", err, text);
    if (rc != 0)
        return;
    char by[32];
    series_step_describe(t.step, by, sizeof by);
    CHECKF(!t.is_long && t.form == form && t.step.seconds == step.seconds &&
               t.step.months == step.months && t.step.day == step.day,
           "form %d step %s day %d\n    text: %.60s", (int)t.form, by, t.step.day, text);
    CHECK(t.n_series >= 1 && t.items[0].n == n && t.n_rows == n);
    if (t.n_series >= 1 && t.items[0].n == n)
        CHECKF(!strcmp(fmt(t.form, t.items[0].time[n - 1]), last), "last %s",
               fmt(t.form, t.items[0].time[n - 1]));
    series_table_free(&t);
}

static void test_forms_and_steps(void)
{
    check_wide("date,v\n2016-07-01 00:00:00,1\n2016-07-01 01:00:00,2\n2016-07-01 02:00:00,3\n",
               TIME_DATETIME, (series_step){3600, 0, 0}, 3, "2016-07-01 02:00:00");
    check_wide("time,v\n2016-07-01T23:30,1\n2016-07-01T23:45,2\n2016-07-02T00:00,3\n",
               TIME_DATETIME_T_MIN, (series_step){900, 0, 0}, 3, "2016-07-02T00:00");
    check_wide("timestamp,v\n2016-07-01T23:30:00,1\n2016-07-02T23:30:00,2\n",
               TIME_DATETIME_T, (series_step){86400, 0, 0}, 2, "2016-07-02T23:30:00");
    check_wide("Date,v\n2016-12-30 06:00,1\n2016-12-31 06:00,2\n2017-01-01 06:00,3\n",
               TIME_DATETIME_MIN, (series_step){86400, 0, 0}, 3, "2017-01-01 06:00");
    check_wide("date,v\n2016-02-27,1\n2016-02-28,2\n2016-02-29,3\n2016-03-01,4\n", TIME_DATE,
               (series_step){86400, 0, 0}, 4, "2016-03-01");
    check_wide("date,co2\n19580329,316.1\n19580405,317.3\n19580412,317.6\n", TIME_COMPACT,
               (series_step){604800, 0, 0}, 3, "19580412");
    check_wide("DS,v\n2016-11,1\n2016-12,2\n2017-01,3\n", TIME_MONTH, (series_step){0, 1, 1}, 3,
               "2017-01");
    check_wide("year,volume\n1871,1120\n1872,1160\n1873,963\n", TIME_YEAR,
               (series_step){0, 12, 1}, 3, "1873");
    check_wide("YEAR,v\n1700,1\n1710,2\n", TIME_YEAR, (series_step){0, 120, 1}, 2, "1710");
    /* Quarterly, on the 15th. */
    check_wide("date,v\n2015-11-15,1\n2016-02-15,2\n2016-05-15,3\n", TIME_DATE,
               (series_step){0, 3, 15}, 3, "2016-05-15");
    /* Month ends, including the clamped February and 30-day months. */
    check_wide("date,v\n2016-01-31,1\n2016-02-29,2\n2016-03-31,3\n2016-04-30,4\n", TIME_DATE,
               (series_step){0, 1, 31}, 4, "2016-04-30");
    check_wide("date,v\n2016-02-29,1\n2016-03-31,2\n2016-04-30,3\n", TIME_DATE,
               (series_step){0, 1, 31}, 3, "2016-04-30");
    /* The same day of the month, clamped in February. */
    check_wide("date,v\n2016-01-30,1\n2016-02-29,2\n2016-03-30,3\n", TIME_DATE,
               (series_step){0, 1, 30}, 3, "2016-03-30");
    /* 2016-04-30, 2016-06-30: two months on the 30th or at month ends; the third date tells. */
    check_wide("date,v\n2016-04-30,1\n2016-06-30,2\n2016-08-30,3\n", TIME_DATE,
               (series_step){0, 2, 30}, 3, "2016-08-30");
    check_wide("date,v\n2016-04-30,1\n2016-06-30,2\n2016-08-31,3\n", TIME_DATE,
               (series_step){0, 2, 31}, 3, "2016-08-31");
    /* 2015-02-01, 2015-03-01: one month or 28 days. */
    check_wide("date,v\n2015-02-01,1\n2015-03-01,2\n2015-04-01,3\n", TIME_DATE,
               (series_step){0, 1, 1}, 3, "2015-04-01");
    check_wide("date,v\n2015-02-01,1\n2015-03-01,2\n2015-03-29,3\n", TIME_DATE,
               (series_step){28 * 86400, 0, 0}, 3, "2015-03-29");
    check_wide("date,v\n2015-02-01,1\n2015-03-01,2\n", TIME_DATE, (series_step){0, 1, 1}, 2,
               "2015-03-01");
    /* Monthly at a fixed time of day. */
    check_wide("date,v\n2016-01-31 12:00,1\n2016-02-29 12:00,2\n2016-03-31 12:00,3\n",
               TIME_DATETIME_MIN, (series_step){0, 1, 31}, 3, "2016-03-31 12:00");
}

static void test_csv_syntax(void)
{
    series_table t;
    /* BOM, CRLF, quotes with "" and a line break, blank lines, no final line end. */
    const char *text = "\xEF\xBB\xBF\"date\",\"a \"\"x\"\"\",b\r\n"
                       "2016-01-01,\"1.5\",2\r\n"
                       "\r\n"
                       "\"2016-01-02\",\"2.5\",\"-3e2\"\r\n"
                       "\n"
                       "2016-01-03,3.5,4";
    REQUIRE(rd(text, NULL, &t) == 0);
    CHECK(t.n_series == 2 && !strcmp(t.time_column, "date"));
    CHECK(!strcmp(t.items[0].id, "a \"x\"") && !strcmp(t.items[1].id, "b"));
    CHECK(t.items[0].n == 3 && t.items[0].value[1] == 2.5f && t.items[1].value[1] == -300.0f);
    CHECK(t.items[1].value[2] == 4.0f && t.items[0].time == t.time && t.items[1].time == t.time);
    series_table_free(&t);
    /* TSV (tab in the header), a comma inside a field is then just a byte. */
    REQUIRE(rd("date\tv,1\tw\n2016-01\t1\t2\n2016-02\t3\t4\n", NULL, &t) == 0);
    CHECK(t.n_series == 2 && !strcmp(t.items[0].id, "v,1") && t.items[1].value[1] == 4.0f);
    series_table_free(&t);
    /* A quoted line break in a header name, and line numbers that count it. */
    CHECK_ERROR("date,\"v\nw\"\n2016-01,1\n2016-02,x\n", NULL,
                "line 4, column 2 ('v?w'): invalid number 'x'");
    /* Date found by name, not position; value columns keep the header order. */
    REQUIRE(rd("x,Timestamp,y\n1,2016,2\n3,2017,4\n", NULL, &t) == 0);
    CHECK(!strcmp(t.time_column, "Timestamp") && t.n_series == 2);
    CHECK(!strcmp(t.items[0].id, "x") && !strcmp(t.items[1].id, "y"));
    CHECK(t.items[0].value[1] == 3.0f && t.items[1].value[1] == 4.0f);
    series_table_free(&t);
    /* No date-like name: the first column. */
    REQUIRE(rd("when,v\n2016,1\n2017,2\n", NULL, &t) == 0);
    CHECK(!strcmp(t.time_column, "when") && t.form == TIME_YEAR);
    series_table_free(&t);
}

static void test_columns(void)
{
    series_table t;
    series_options o = {0};
    const char *text = "a,when,b,c\n1,2016-01,x,3\n4,2016-02,y,6\n";
    o.time_column = "when";
    o.columns = (const char *const[]){"c", "a"};
    o.n_columns = 2;
    REQUIRE(rd(text, &o, &t) == 0); /* b is never parsed */
    CHECK(t.n_series == 2 && !strcmp(t.items[0].id, "c") && !strcmp(t.items[1].id, "a"));
    CHECK(t.items[0].value[1] == 6.0f && t.items[1].value[0] == 1.0f);
    series_table_free(&t);
    /* Selected out of header order: the first error is still the leftmost. */
    CHECK_ERROR("a,when,b,c\n1,2016-01,x,3\nbad,2016-02,y,NA\n", &o,
                "line 3, column 1 ('a'): invalid number 'bad'");
    o.columns = (const char *const[]){"c", "B"};
    CHECK_ERROR(text, &o, "line 1: no column named 'B'");
    o.columns = (const char *const[]){"c", "when"};
    CHECK_ERROR(text, &o,
                "line 1, column 2 ('when'): the date column cannot also be a value column");
    o.columns = (const char *const[]){"c", "c"};
    CHECK_ERROR(text, &o, "line 1, column 4 ('c'): value column named twice");
    o.n_columns = 0;
    CHECK_ERROR(text, &o, "no value columns named");
    o.columns = NULL;
    o.time_column = "date";
    CHECK_ERROR(text, &o, "line 1: no column named 'date' (for the dates)");
    o.time_column = "b";
    CHECK_ERROR(text, &o, "line 2, column 3 ('b'): invalid date 'x' (expected YYYY-MM-DD, "
                          "YYYY-MM-DD HH:MM[:SS] (or with T), YYYYMMDD, YYYY-MM or YYYY)");
    CHECK_ERROR("date\n2016\n2017\n", NULL,
                "line 1: 1 column: a table needs a date column and at least one value column");
    CHECK_ERROR("date,v,date\n2016,1,2\n", NULL,
                "line 1, column 3 ('date'): duplicate column name (also column 1)");
    CHECK_ERROR("date,b,a,c,a,b,b\n2016,1,2\n", NULL,
                "line 1, column 5 ('a'): duplicate column name (also column 3)");
}

static void test_long(void)
{
    series_table t;
    /* Interleaved, each series with its own start; extra columns ignored; order of first row. */
    const char *text = "unique_id,ds,y,note\n"
                       "B,2016-01-02,10,x\n"
                       "A,2016-01-01,1,\n"
                       "B,2016-01-03,11,\"q,\"\n"
                       "A,2016-01-02,2,\n"
                       "A,2016-01-03,3,\n"
                       "C,2016-01-05,7,\n";
    REQUIRE(rd(text, NULL, &t) == 0);
    CHECK(t.is_long && t.n_series == 3 && !strcmp(t.time_column, "ds") && t.time == NULL);
    CHECK(t.form == TIME_DATE && t.step.seconds == 86400 && t.n_rows == 6);
    CHECK(!strcmp(t.items[0].id, "B") && t.items[0].n == 2 && t.items[0].value[1] == 11.0f);
    CHECK(!strcmp(t.items[1].id, "A") && t.items[1].n == 3 && t.items[1].value[2] == 3.0f);
    CHECK(!strcmp(t.items[2].id, "C") && t.items[2].n == 1);
    CHECK(t.items[0].time[0] == T("2016-01-02") && t.items[1].time[0] == T("2016-01-01"));
    CHECK(t.items[2].time[0] == T("2016-01-05") && t.items[2].step.seconds == 86400);
    series_table_free(&t);
    /* Monthly: each series keeps its own day of the month. */
    REQUIRE(rd("unique_id,ds,y\nm,2016-01-31,1\nf,2016-01-15,2\nm,2016-02-29,3\n"
               "f,2016-02-15,4\nm,2016-03-31,5\n",
               NULL, &t) == 0);
    CHECK(t.step.months == 1 && t.step.day == 31 && t.items[1].step.day == 15);
    CHECK(series_step_advance(t.items[0].step, t.items[0].time[2], 1) == T("2016-04-30"));
    CHECK(series_step_advance(t.items[1].step, t.items[1].time[1], 1) == T("2016-03-15"));
    series_table_free(&t);
    /* A series with another step than the first one. */
    CHECK_ERROR("unique_id,ds,y\na,2016-01-01,1\na,2016-01-02,1\nb,2016-01-01,1\nb,2016-01-03,1\n",
                NULL,
                "line 5, column 2 ('ds'): series 'b': date '2016-01-03' is 2 days after the "
                "previous one; the series steps by 1 day (expected '2016-01-02')");
    CHECK_ERROR("unique_id,ds,y\na,2016-01-02,1\nb,2016-01-01,1\na,2016-01-01,1\n", NULL,
                "line 4, column 2 ('ds'): series 'a': date '2016-01-01' comes before the "
                "previous date '2016-01-02' (line 2); rows must be in date order");
    CHECK_ERROR("unique_id,ds,y\na,2016-01-02,1\na,2016-01-02,1\n", NULL,
                "line 3, column 2 ('ds'): series 'a': duplicate date '2016-01-02' (also on "
                "line 2)");
    CHECK_ERROR("unique_id,ds,y\na,2016-01-02,1\nb,2016-01-02,1\n", NULL,
                "line 4: every series has only one row: the step needs at least two dates");
    CHECK_ERROR("unique_id,ds,y\n,2016-01-02,1\n", NULL,
                "line 2, column 1 ('unique_id'): empty unique_id");
    CHECK_ERROR("unique_id,ds,y\na,,1\n", NULL, "line 2, column 2 ('ds'): missing date");
    CHECK_ERROR("unique_id,ds,y\n", NULL, "line 2: no data rows after the header");
    series_options o = {.time_column = "ds"};
    CHECK_ERROR("unique_id,ds,y\na,2016,1\n", &o,
                "line 1: a long table (columns unique_id, ds, y) takes no date or value column "
                "names");
    /* Names are case-sensitive: this is a wide table with date column DS. */
    REQUIRE(rd("unique_id,DS,y\n1,2016,2\n3,2017,4\n", NULL, &t) == 0);
    CHECK(!t.is_long && t.n_series == 2 && !strcmp(t.time_column, "DS"));
    series_table_free(&t);
    /* Fill per series: b's gap is filled from b's own values. */
    o = (series_options){.fill = SERIES_FILL_LINEAR};
    REQUIRE(rd("unique_id,ds,y\na,2016,1\nb,2016,10\nb,2017,NA\na,2017,2\nb,2018,30\n", &o,
               &t) == 0);
    CHECK(t.n_filled == 1 && t.items[1].value[1] == 20.0f && t.items[0].value[1] == 2.0f);
    series_table_free(&t);
    o.fill = SERIES_FILL_PREVIOUS;
    CHECK_ERROR("unique_id,ds,y\na,2016,1\nb,2016,\nb,2017,1\n", &o,
                "line 3, column 3 ('y'): missing value '' before the first value of the "
                "series: nothing to fill it from");
}

static void test_errors(void)
{
    CHECK_ERROR("", NULL, "empty input: expected a header line");
    CHECK_ERROR("\n\r\n", NULL, "empty input: expected a header line");
    CHECK_ERROR("date,v\n", NULL, "line 2: no data rows after the header");
    CHECK_ERROR("date,v\n2016,1", NULL,
                "line 2: only one data row: the step needs at least two dates");
    CHECK_ERROR("date,v\n2016,1\n2017,2,3\n", NULL, "line 3: 3 fields, but the header has 2");
    CHECK_ERROR("date,v,w\n2016,1,2\n2017\n", NULL, "line 3: 1 field, but the header has 3");
    CHECK_ERROR("date,v\n2016,1\n2017,1.5x\n", NULL,
                "line 3, column 2 ('v'): invalid number '1.5x'");
    CHECK_ERROR("date,v\n2016,1\n2017,inf\n", NULL, "line 3, column 2 ('v'): invalid number 'inf'");
    CHECK_ERROR("date,v\n2016,1\n2017, 2\n", NULL, "line 3, column 2 ('v'): invalid number ' 2'");
    CHECK_ERROR("date,v\n2016,1\n2017,1e39\n", NULL,
                "line 3, column 2 ('v'): invalid number '1e39'");
    CHECK_ERROR("date,v\n2016,1\n2017,NA\n", NULL,
                "line 3, column 2 ('v'): missing value 'NA' (--fill previous or --fill linear "
                "fills missing values)");
    CHECK_ERROR("date,v\n2016,1\n2017,\n", NULL,
                "line 3, column 2 ('v'): missing value '' (--fill previous or --fill linear "
                "fills missing values)");
    CHECK_ERROR("date,v\n2016,1\n2017,1\n2017,1\n", NULL,
                "line 4, column 1 ('date'): duplicate date '2017' (also on line 3)");
    CHECK_ERROR("date,v\n2016,1\n2016,1\n", NULL,
                "line 3, column 1 ('date'): duplicate date '2016' (also on line 2)");
    CHECK_ERROR("date,v\n2016,1\n2015,1\n", NULL,
                "line 3, column 1 ('date'): date '2015' comes before the previous date '2016' "
                "(line 2); rows must be in date order");
    CHECK_ERROR("date,v\n2016-08-03 03:00:00,1\n2016-08-03 04:00:00,2\n2016-08-03 06:00:00,3\n",
                NULL,
                "line 4, column 1 ('date'): date '2016-08-03 06:00:00' is 2 hours after the "
                "previous one; the series steps by 1 hour (expected '2016-08-03 05:00:00')");
    CHECK_ERROR("date,v\n2016-01,1\n2016-02,2\n2016-04,3\n", NULL,
                "line 4, column 1 ('date'): date '2016-04' is 2 months after the previous one; "
                "the series steps by 1 month (expected '2016-03')");
    CHECK_ERROR("date,v\n2016,1\n2017,2\n2017-06,3\n", NULL,
                "line 4, column 1 ('date'): date '2017-06' is in the form YYYY-MM, but the "
                "first date (line 2) is YYYY");
    CHECK_ERROR("date,v\n2016-02-30,1\n", NULL,
                "line 2, column 1 ('date'): invalid date '2016-02-30' (day out of range for the "
                "month)");
    CHECK_ERROR("date,v\n2016-13,1\n", NULL,
                "line 2, column 1 ('date'): invalid date '2016-13' (month out of range)");
    CHECK_ERROR("date,v\n2016-01-01 24:00,1\n", NULL,
                "line 2, column 1 ('date'): invalid date '2016-01-01 24:00' (hour out of range)");
    CHECK_ERROR("date,v\n2016-01-01 23:60,1\n", NULL,
                "line 2, column 1 ('date'): invalid date '2016-01-01 23:60' (minute out of "
                "range)");
    CHECK_ERROR("date,v\n2016-01-01 23:00:60,1\n", NULL,
                "line 2, column 1 ('date'): invalid date '2016-01-01 23:00:60' (second out of "
                "range)");
    CHECK_ERROR("date,v\n,1\n", NULL, "line 2, column 1 ('date'): missing date");
    CHECK_ERROR("date,v\n2016,\"1\n", NULL, "line 2, column 2 ('v'): quoted field is not closed");
    CHECK_ERROR("date,v\n2016,\"1\"x\n", NULL,
                "line 2, column 2 ('v'): 'x' after a closing quote (expected a delimiter or a "
                "line end)");
    CHECK_ERROR("date,v\n2016,1\"\n", NULL,
                "line 2, column 2 ('v'): quote inside an unquoted field");
    /* Control characters in quoted input are shown as '?', long input is cut. */
    CHECK_ERROR("date,v\n2016,1\n2017,\"a\tb\rc\"\n", NULL,
                "line 3, column 2 ('v'): invalid number 'a?b?c'");
    CHECK_ERROR("date,v\n2016,1\n2017,12345678901234567890123456789012345678901234567890\n",
                NULL,
                "line 3, column 2 ('v'): invalid number "
                "'1234567890123456789012345678901234567890...'");
    /* The first problem in reading order wins, whichever pass finds it. */
    CHECK_ERROR("date,v\n2016,1\n2017,2\n2019,3\n2020,x\n", NULL,
                "line 4, column 1 ('date'): date '2019' is 2 years after the previous one; "
                "the series steps by 1 year (expected '2018')");
    CHECK_ERROR("date,v\n2016,NA\n2016,x\n", NULL,
                "line 2, column 2 ('v'): missing value 'NA' (--fill previous or --fill linear "
                "fills missing values)");
    CHECK_ERROR("date,v,w\n2016,1,2\n2016,NA,3\n", NULL,
                "line 3, column 1 ('date'): duplicate date '2016' (also on line 2)");
    CHECK_ERROR("date,v,w\n2016,1,2\n2016,1,x\n", NULL,
                "line 3, column 1 ('date'): duplicate date '2016' (also on line 2)");
    CHECK_ERROR("date,v,w\n2016,1,2\n2017,x,NA\n", NULL,
                "line 3, column 2 ('v'): invalid number 'x'");
    CHECK_ERROR("unique_id,ds,y\na,2016,1\na,2016,x\n", NULL,
                "line 3, column 2 ('ds'): series 'a': duplicate date '2016' (also on line 2)");
    /* A monthly gap that is no whole number of months. */
    CHECK_ERROR("date,v\n2016-01-15,1\n2016-02-15,2\n2016-03-20,3\n", NULL,
                "line 4, column 1 ('date'): date '2016-03-20' is 34 days after the previous one; "
                "the series steps by 1 month (expected '2016-03-15')");
}

static void test_binary_and_limits(void)
{
    series_table t;
    /* A NUL byte is binary input (strlen cannot be used here). */
    static const char nul[] = "date,v\n2016,1\n2017,1\0\n";
    CHECK(series_read_buffer(nul, sizeof nul - 1, NULL, &t, err, sizeof err) == -1);
    CHECKF(!strcmp(err, "line 3: NUL byte in the input (not a text file?)"), "%s", err);
    /* Fields longer than SERIES_MAX_FIELD. */
    size_t big = SERIES_MAX_FIELD + 64;
    char *text = malloc(big + 32);
    REQUIRE(text);
    strcpy(text, "date,v\n2016,1\n2017,");
    size_t k = strlen(text);
    memset(text + k, '1', SERIES_MAX_FIELD + 1);
    strcpy(text + k + SERIES_MAX_FIELD + 1, "\n");
    CHECK_ERROR(text, NULL, "line 3, column 2 ('v'): field longer than 1024 bytes");
    text[k + SERIES_MAX_FIELD] = '\n';
    text[k + SERIES_MAX_FIELD + 1] = '\0';
    CHECK_ERROR(text, NULL, "line 3, column 2 ('v'): invalid number "
                            "'1111111111111111111111111111111111111111...'");
    free(text);
    /* Rows and bytes. */
    series_options o = {.max_rows = 2};
    REQUIRE(rd("date,v\n2016,1\n2017,2\n", &o, &t) == 0);
    series_table_free(&t);
    CHECK_ERROR("date,v\n2016,1\n2017,2\n2018,3\n", &o,
                "line 4: more than 2 data rows (the limit)");
    o = (series_options){.max_bytes = 21};
    REQUIRE(rd("date,v\n2016,1\n2017,2\n", &o, &t) == 0);
    series_table_free(&t);
    CHECK_ERROR("date,v\n2016,1\n2017,2\n\n", &o, "input larger than the limit of 21 bytes");
    /* The same through a FILE. */
    FILE *f = tmpfile();
    REQUIRE(f);
    fputs("date,v\n2016,1\n2017,2\n2018,3\n", f);
    rewind(f);
    CHECK(series_read(f, &o, &t, err, sizeof err) == -1 && t.items == NULL);
    CHECKF(!strcmp(err, "input larger than the limit of 21 bytes"), "%s", err);
    rewind(f);
    REQUIRE(series_read(f, NULL, &t, err, sizeof err) == 0);
    CHECK(t.n_series == 1 && t.items[0].n == 3 && t.items[0].value[2] == 3.0f);
    series_table_free(&t);
    fclose(f);
    /* A read error (a directory opens, but does not read). */
    f = fopen("tests", "rb");
    if (f) {
        CHECK(series_read(f, NULL, &t, err, sizeof err) == -1 && t.items == NULL);
        CHECKF(!strcmp(err, "read error: Is a directory"), "%s", err);
        fclose(f);
    }
    /* A short error buffer gets a cut, terminated message; a NULL one is allowed. */
    char tiny[8];
    CHECK(series_read_buffer("", 0, NULL, &t, tiny, sizeof tiny) == -1 && !strcmp(tiny, "empty i"));
    CHECK(series_read_buffer("", 0, NULL, &t, NULL, 0) == -1);
    series_table_free(&t); /* already zeroed: harmless */
    /* Too many columns. */
    size_t cols = SERIES_MAX_COLUMNS + 1;
    text = malloc(cols * 8 + 16);
    REQUIRE(text);
    size_t len = 0;
    for (size_t i = 0; i < cols; i++)
        len += (size_t)sprintf(text + len, "%sc%zu", i ? "," : "", i);
    strcpy(text + len, "\n");
    CHECK_ERROR(text, NULL, "line 1: more than 10000 columns");
    free(text);
}

static void test_fill(void)
{
    series_table t;
    series_options prev = {.fill = SERIES_FILL_PREVIOUS}, lin = {.fill = SERIES_FILL_LINEAR};
    const char *text =
        "date,a,b\n2016,1,10\n2017,NA,nan\n2018,,null\n2019,4,NaN\n2020,5,20\n2021,NA,\n";
    REQUIRE(rd(text, &prev, &t) == 0);
    const float pa[] = {1, 1, 1, 4, 5, 5}, pb[] = {10, 10, 10, 10, 20, 20};
    for (int i = 0; i < 6; i++)
        CHECKF(t.items[0].value[i] == pa[i] && t.items[1].value[i] == pb[i], "row %d: %g %g", i,
               (double)t.items[0].value[i], (double)t.items[1].value[i]);
    CHECK(t.n_filled == 7);
    series_table_free(&t);
    REQUIRE(rd(text, &lin, &t) == 0);
    const float la[] = {1, 2, 3, 4, 5, 5}, lb[] = {10, 12.5f, 15, 17.5f, 20, 20};
    for (int i = 0; i < 6; i++)
        CHECKF(t.items[0].value[i] == la[i] && t.items[1].value[i] == lb[i], "row %d: %g %g", i,
               (double)t.items[0].value[i], (double)t.items[1].value[i]);
    CHECK(t.n_filled == 7);
    series_table_free(&t);
    /* A leading missing value cannot be filled, by either policy. */
    const char *lead = "date,a,b\n2016,1,\n2017,2,3\n";
    const char *msg = "line 2, column 3 ('b'): missing value '' before the first value of the "
                      "series: nothing to fill it from";
    CHECK_ERROR(lead, &prev, msg);
    CHECK_ERROR(lead, &lin, msg);
    /* Without missing values, nothing is filled. */
    REQUIRE(rd("date,a\n2016,1\n2017,2\n", &lin, &t) == 0);
    CHECK(t.n_filled == 0);
    series_table_free(&t);
}

/* ---- the real data sets ---- */

static bool have_data(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        printf("  skipped: %s is absent (../shared/data is not here)\n", path);
        return false;
    }
    fclose(f);
    return true;
}

static int read_path(const char *path, const series_options *opt, series_table *t)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -2;
    int rc = series_read(f, opt, t, err, sizeof err);
    fclose(f);
    return rc;
}

static void test_real_ett(void)
{
    const char *path = DATA "ETDataset/ETTh1.csv";
    if (!have_data(path))
        return;
    series_table t;
    REQUIRE(read_path(path, NULL, &t) == 0);
    CHECK(!t.is_long && t.n_series == 7 && t.n_rows == 17420 && t.form == TIME_DATETIME);
    CHECK(t.step.seconds == 3600 && t.step.months == 0 && !strcmp(t.time_column, "date"));
    CHECK(!strcmp(t.items[0].id, "HUFL") && !strcmp(t.items[6].id, "OT"));
    CHECK(!strcmp(fmt(t.form, t.time[0]), "2016-07-01 00:00:00"));
    CHECK(!strcmp(fmt(t.form, t.time[17419]), "2018-06-26 19:00:00"));
    CHECK(t.items[0].value[0] == 5.827000141143799f);
    CHECK(t.items[6].value[17419] == 9.56700038909912f);
    char next[40];
    series_format_time(t.form, series_step_advance(t.step, t.time[17419], 5), next, sizeof next);
    CHECK(!strcmp(next, "2018-06-27 00:00:00"));
    series_table_free(&t);
    series_options o = {.columns = (const char *const[]){"OT"}, .n_columns = 1, .max_rows = 100};
    CHECK(read_path(path, &o, &t) == -1);
    CHECKF(!strcmp(err, "line 102: more than 100 data rows (the limit)"), "%s", err);
    o.max_rows = 0;
    REQUIRE(read_path(path, &o, &t) == 0);
    CHECK(t.n_series == 1 && !strcmp(t.items[0].id, "OT") && t.items[0].n == 17420);
    series_table_free(&t);
}

static void test_real_statsmodels(void)
{
    const char *nile = DATA "statsmodels/nile.csv";
    if (!have_data(nile))
        return;
    series_table t;
    REQUIRE(read_path(nile, NULL, &t) == 0);
    CHECK(t.n_series == 1 && t.n_rows == 100 && t.form == TIME_YEAR && t.step.months == 12);
    CHECK(!strcmp(t.items[0].id, "volume") && t.items[0].value[0] == 1120.0f);
    CHECK(!strcmp(fmt(t.form, series_step_advance(t.step, t.time[99], 1)), "1971"));
    series_table_free(&t);

    /* co2 is weekly and regular, but has 59 missing weeks (empty fields). */
    const char *co2 = DATA "statsmodels/co2.csv";
    CHECK(read_path(co2, NULL, &t) == -1);
    CHECKF(!strcmp(err, "line 8, column 2 ('co2'): missing value '' (--fill previous or --fill "
                        "linear fills missing values)"),
           "%s", err);
    series_options o = {.fill = SERIES_FILL_LINEAR};
    REQUIRE(read_path(co2, &o, &t) == 0);
    CHECK(t.n_rows == 2284 && t.form == TIME_COMPACT && t.step.seconds == 7 * 86400);
    CHECK(t.n_filled == 59 && !strcmp(fmt(t.form, t.time[2283]), "20011229"));
    series_table_free(&t);

    const char *sun = DATA "statsmodels/sunspots.csv";
    REQUIRE(read_path(sun, NULL, &t) == 0);
    CHECK(t.n_series == 1 && !strcmp(t.time_column, "YEAR"));
    CHECK(!strcmp(t.items[0].id, "SUNACTIVITY"));
    CHECK(t.n_rows == 309 && t.step.months == 12 && t.items[0].value[308] == 2.9f);
    series_table_free(&t);

    const char *elnino = DATA "statsmodels/elnino.csv";
    REQUIRE(read_path(elnino, NULL, &t) == 0);
    CHECK(t.n_series == 12 && t.n_rows == 61 && !strcmp(t.items[11].id, "DEC"));
    series_table_free(&t);

    /* macrodata is quarterly in two columns (year, quarter): years repeat. */
    const char *macro = DATA "statsmodels/macrodata.csv";
    CHECK(read_path(macro, NULL, &t) == -1);
    CHECKF(!strcmp(err, "line 3, column 1 ('year'): duplicate date '1959' (also on line 2)"), "%s",
           err);
}

static void test_co2_fill_values(void)
{
    const char *co2 = DATA "statsmodels/co2.csv";
    if (!have_data(co2))
        return;
    /* Line 8 of co2.csv (row 6) is missing; lines 7 and 9 around it are not. */
    FILE *f = fopen(co2, "rb");
    REQUIRE(f);
    char line[64], before[64] = "", after[64] = "";
    for (int i = 1; fgets(line, sizeof line, f); i++) {
        if (i == 7)
            strcpy(before, line);
        if (i == 9)
            strcpy(after, line);
    }
    fclose(f);
    float a = strtof(strchr(before, ',') + 1, NULL), b = strtof(strchr(after, ',') + 1, NULL);
    series_table t;
    series_options o = {.fill = SERIES_FILL_PREVIOUS};
    REQUIRE(read_path(co2, &o, &t) == 0);
    CHECK(t.items[0].value[6] == a);
    series_table_free(&t);
    o.fill = SERIES_FILL_LINEAR;
    REQUIRE(read_path(co2, &o, &t) == 0);
    CHECK(t.items[0].value[6] == (float)((double)a + ((double)b - a) / 2));
    series_table_free(&t);
}

int main(void)
{
    RUN(test_parse_time);
    RUN(test_step_advance);
    RUN(test_describe);
    RUN(test_forms_and_steps);
    RUN(test_csv_syntax);
    RUN(test_columns);
    RUN(test_long);
    RUN(test_errors);
    RUN(test_binary_and_limits);
    RUN(test_fill);
    RUN(test_real_ett);
    RUN(test_real_statsmodels);
    RUN(test_co2_fill_values);
    return CHECK_DONE();
}
