/* cmd/common/cli and numbers: option parsing and its errors, --help, strict numbers, exit codes. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "capture.h"
#include "check.h"
#include "cli.h"
#include "numbers.h"
#include "progress.h"

/* A program with one option of each kind, as a tool would declare it. */
typedef struct {
    int64_t max_len;
    bool raw;
} own_options;

static bool set_max_len(const cli_option *opt, const char *arg, void *user)
{
    return cli_option_int(opt, arg, 1, 1000000, &((own_options *)user)->max_len);
}

static bool set_raw(const cli_option *opt, const char *arg, void *user)
{
    ((own_options *)user)->raw = true;
    return true;
}

static const char *const formats[] = {"tsv", "csv", "npy", NULL};
static const cli_option own_table[] = {
    {"max-len", 'L', "N", "reject records longer than N", set_max_len},
    {"raw", 0, NULL, "skip normalisation", set_raw},
    {NULL, 0, NULL, NULL, NULL},
};

/* Parses a command line given as a NULL-terminated list; captured stderr in *err. */
static int parse(cli_args *args, own_options *own, unsigned omit, capture *err, ...)
{
    static char *argv[32];
    static char storage[32][64];
    va_list ap;
    va_start(ap, err);
    int argc = 0;
    for (const char *a; argc < 31 && (a = va_arg(ap, const char *));) {
        snprintf(storage[argc], sizeof storage[argc], "%s", a);
        argv[argc] = storage[argc];
        argc++;
    }
    va_end(ap);
    argv[argc] = NULL;
    *own = (own_options){0};
    cli_program prog = {"test-tool", "[OPTIONS] [FILE...]", "Test the option parser.", formats,
                        omit, own_table, own};
    capture out;
    capture_begin(err, 2);
    capture_begin(&out, 1); /* --help and --version would print here */
    int rc = cli_parse(&prog, argc, argv, args);
    capture_end(&out);
    capture_end(err);
    return rc;
}

static void test_common_options(void)
{
    cli_args a;
    own_options own;
    capture err;
    int rc = parse(&a, &own, 0, &err, "tool", "in.fa", "-m", "model.st", "-o", "out.npy", "-j",
                   "4", "-f", "npy", "--seed", "18446744073709551615", "--progress", "--force",
                   "-L", "77", "--raw", "-", NULL);
    CHECK(rc == CLI_PROCEED);
    CHECK(err.text[0] == '\0');
    CHECK(a.model && strcmp(a.model, "model.st") == 0);
    CHECK(a.output && strcmp(a.output, "out.npy") == 0);
    CHECK(a.threads == 4);
    CHECK(strcmp(a.format, "npy") == 0);
    CHECK(a.seed_given && a.seed == UINT64_MAX);
    CHECK(a.progress && a.force && !a.dump_model);
    CHECK(own.max_len == 77 && own.raw);
    /* Operands in order, wherever they stood among the options. */
    REQUIRE(a.n_operands == 2);
    CHECK(strcmp(a.operands[0], "in.fa") == 0 && strcmp(a.operands[1], "-") == 0);
}

static void test_defaults_and_verbosity(void)
{
    cli_args a;
    own_options own;
    capture err;
    CHECK(parse(&a, &own, 0, &err, "tool", NULL) == CLI_PROCEED);
    CHECK(a.model == NULL && a.output == NULL && a.threads == 0 && !a.seed_given);
    CHECK(strcmp(a.format, "tsv") == 0); /* the first format is the default */
    CHECK(a.verbosity == 0 && a.n_operands == 0);
    CHECK(parse(&a, &own, 0, &err, "tool", "-v", "-v", NULL) == CLI_PROCEED && a.verbosity == 2);
    CHECK(parse(&a, &own, 0, &err, "tool", "-vv", "-q", NULL) == CLI_PROCEED && a.verbosity == -1);
    CHECK(!a.progress); /* -q silences progress on a terminal too; stderr is not one here */
    /* "--" ends the options. */
    CHECK(parse(&a, &own, 0, &err, "tool", "--", "-q", NULL) == CLI_PROCEED);
    CHECK(a.verbosity == 0 && a.n_operands == 1 && strcmp(a.operands[0], "-q") == 0);
}

static void test_usage_errors(void)
{
    cli_args a;
    own_options own;
    capture err;
    CHECK(parse(&a, &own, 0, &err, "tool", "-j", "4x", NULL) == CLI_EXIT_USAGE);
    CHECKF(strstr(err.text, "test-tool: option -j: invalid number '4x'\n"), "%s", err.text);
    CHECK(strstr(err.text, "Try 'test-tool --help'."));
    CHECK(parse(&a, &own, 0, &err, "tool", "-j", "", NULL) == CLI_EXIT_USAGE);
    CHECK(strstr(err.text, "invalid number ''"));
    CHECK(parse(&a, &own, 0, &err, "tool", "-j", " 4", NULL) == CLI_EXIT_USAGE);
    CHECK(parse(&a, &own, 0, &err, "tool", "-j", "99999999999999999999", NULL) == CLI_EXIT_USAGE);
    CHECK(parse(&a, &own, 0, &err, "tool", "-j", "2000", NULL) == CLI_EXIT_USAGE);
    CHECKF(strstr(err.text, "option -j: 2000 is out of range 0..1024"), "%s", err.text);
    CHECK(parse(&a, &own, 0, &err, "tool", "--max-len=0", NULL) == CLI_EXIT_USAGE);
    CHECK(strstr(err.text, "option -L: 0 is out of range 1..1000000"));
    CHECK(parse(&a, &own, 0, &err, "tool", "--seed", "-1", NULL) == CLI_EXIT_USAGE);
    CHECK(strstr(err.text, "option --seed: invalid number '-1'"));
    CHECK(parse(&a, &own, 0, &err, "tool", "-f", "yaml", NULL) == CLI_EXIT_USAGE);
    CHECKF(strstr(err.text, "unknown format 'yaml' (choose from tsv, csv, npy)"), "%s", err.text);
    CHECK(parse(&a, &own, 0, &err, "tool", "--bogus", NULL) == CLI_EXIT_USAGE);
    CHECKF(strstr(err.text, "test-tool: unrecognized option '--bogus'"), "%s", err.text);
    CHECK(strstr(err.text, "Try 'test-tool --help'."));
    CHECK(parse(&a, &own, 0, &err, "tool", "-m", NULL) == CLI_EXIT_USAGE);
    CHECK(strstr(err.text, "test-tool: option requires an argument -- 'm'"));
    /* An omitted common option is an unknown one. */
    CHECK(parse(&a, &own, CLI_OMIT_MODEL, &err, "tool", "-m", "x", NULL) == CLI_EXIT_USAGE);
    CHECK(parse(&a, &own, CLI_OMIT_SEED, &err, "tool", "--seed=1", NULL) == CLI_EXIT_USAGE);
}

static void test_help_and_version(void)
{
    cli_args a;
    own_options own;
    capture err;
    CHECK(parse(&a, &own, 0, &err, "tool", "--help", "--bogus", NULL) == CLI_EXIT_OK);
    CHECK(err.text[0] == '\0');
    CHECK(parse(&a, &own, 0, &err, "tool", "-h", NULL) == CLI_EXIT_OK);
    CHECK(parse(&a, &own, 0, &err, "tool", "--version", NULL) == CLI_EXIT_OK);

    cli_program prog = {"test-tool", "[OPTIONS] [FILE...]", "Test the option parser.", formats,
                        CLI_OMIT_SEED, own_table, NULL};
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    REQUIRE(f);
    cli_print_help(&prog, f);
    fclose(f);
    static const char head[] = "Usage: test-tool [OPTIONS] [FILE...]\nTest the option parser.\n";
    CHECK(strncmp(text, head, strlen(head)) == 0);
    CHECK(strstr(text, "  -L, --max-len N "));
    CHECK(strstr(text, "      --raw "));
    CHECK(strstr(text, "-f, --format FMT"));
    CHECK(strstr(text, "output format: tsv (default), csv, npy\n"));
    CHECK(strstr(text, "-j, --threads N"));
    CHECK(strstr(text, "      --version "));
    CHECK(!strstr(text, "--seed"));
    CHECK(strstr(text, "(required)")); /* this test embeds no model */
    free(text);
}

static void test_parse_numbers(void)
{
    int64_t i;
    uint64_t u;
    double d;
    float x;
    CHECK(parse_i64("-42", &i) && i == -42);
    CHECK(parse_i64("+7", &i) && i == 7);
    CHECK(parse_i64("9223372036854775807", &i) && i == INT64_MAX);
    CHECK(!parse_i64("9223372036854775808", &i));
    CHECK(!parse_i64("", &i));
    CHECK(!parse_i64(" 1", &i));
    CHECK(!parse_i64("1 ", &i));
    CHECK(!parse_i64("4x", &i));
    CHECK(!parse_i64("0x10", &i));
    CHECK(!parse_i64("1.5", &i));
    CHECK(parse_u64("18446744073709551615", &u) && u == UINT64_MAX);
    CHECK(!parse_u64("18446744073709551616", &u));
    CHECK(!parse_u64("-1", &u));
    CHECK(parse_count("1k", &u) && u == 1024);
    CHECK(parse_count("16K", &u) && u == 16384);
    CHECK(parse_count("1M", &u) && u == 1048576);
    CHECK(parse_count("2G", &u) && u == 2147483648u);
    CHECK(parse_count("77", &u) && u == 77);
    CHECK(parse_count("16777215G", &u) && u == 16777215ull << 30);
    CHECK(!parse_count("17179869184G", &u));
    CHECK(!parse_count("1m", &u));
    CHECK(!parse_count("1kk", &u));
    CHECK(!parse_count("k", &u));
    CHECK(!parse_count("-1k", &u));
    CHECK(!parse_count("+1", &u));
    CHECK(!parse_count("1.5k", &u));
    CHECK(!parse_count("", &u));
    CHECK(parse_f64("2.5e-3", &d) && d == 2.5e-3);
    CHECK(parse_f64("-0", &d) && d == 0);
    CHECK(!parse_f64("1e400", &d));
    CHECK(!parse_f64("nan", &d));
    CHECK(!parse_f64("inf", &d));
    CHECK(!parse_f64("1,5", &d));
    CHECK(!parse_f64("", &d));
    CHECK(!parse_f64(".", &d));
    CHECK(parse_f32("0.1", &x) && x == 0.1f);
    CHECK(!parse_f32("1e39", &x));
    CHECK(!parse_f32("1.0f", &x));
}

static void test_option_count(void)
{
    const cli_option opt = {"length", 'L', "N", "sequence length", NULL};
    uint64_t n = 0;
    capture err;
    cli_set_tool("test-tool");
    capture_begin(&err, 2);
    bool ok = cli_option_count(&opt, "16k", 1, 1u << 20, &n);
    capture_end(&err);
    CHECK(ok && n == 16384 && err.text[0] == '\0');
    capture_begin(&err, 2);
    ok = cli_option_count(&opt, "2M", 1, 1u << 20, &n);
    capture_end(&err);
    CHECK(!ok && n == 16384);
    CHECKF(strstr(err.text, "test-tool: option -L: 2M is out of range 1..1048576\n"), "%s", err.text);
    capture_begin(&err, 2);
    ok = cli_option_count(&opt, "4q", 1, 1u << 20, &n);
    capture_end(&err);
    CHECK(!ok);
    CHECKF(strstr(err.text, "test-tool: option -L: invalid count '4q'\n"), "%s", err.text);
}

/* Every float32 printed with format_f32 reads back to the same bits. */
static void test_f32_round_trip(void)
{
    uint32_t state = 12345, failures = 0;
    for (int k = 0; k < 200000; k++) {
        state = state * 1664525u + 1013904223u;
        float v;
        memcpy(&v, &state, sizeof v);
        if (!isfinite(v))
            continue;
        char buf[NUMBER_BUF_SIZE];
        float back;
        if (!parse_f32(format_f32(buf, v), &back) || memcmp(&back, &v, sizeof v) != 0)
            failures++;
    }
    CHECK(failures == 0);
    char buf[NUMBER_BUF_SIZE];
    CHECK(strcmp(format_f32(buf, 0.1f), "0.100000001") == 0);
    CHECK(strcmp(format_f32(buf, 1e10f), "1e+10") == 0);
    CHECK(strcmp(format_f64(buf, 0.1), "0.10000000000000001") == 0);
}

static void test_exit_codes(void)
{
    CHECK(cli_exit_code(LR_OK) == 0);
    CHECK(cli_exit_code(LR_ERR_DATA) == 1);
    CHECK(cli_exit_code(LR_ERR_IO) == 1);
    CHECK(cli_exit_code(LR_ERR_NOMEM) == 1);
    CHECK(cli_exit_code(LR_ERR_UNSUPPORTED) == 1);
    CHECK(cli_exit_code(LR_ERR_INTERNAL) == 1);
    CHECK(cli_exit_code(LR_ERR_ARG) == 2);
    CHECK(cli_exit_code(LR_ERR_MODEL) == 3);
}

static void test_messages(void)
{
    cli_set_tool("test-tool");
    capture err;
    capture_begin(&err, 2);
    cli_error("in.fa", "record %d: bad\nbase", 3);
    cli_error(NULL, "no file");
    cli_set_verbosity(-1);
    cli_warn(NULL, "hidden by -q");
    cli_error(NULL, "errors always show");
    cli_set_verbosity(0);
    cli_warn("x", "shown");
    cli_info(NULL, "hidden without -v");
    cli_set_verbosity(1);
    cli_info(NULL, "shown with -v");
    cli_set_verbosity(0);
    capture_end(&err);
    CHECKF(strcmp(err.text, "test-tool: in.fa: record 3: bad base\n"
                            "test-tool: no file\n"
                            "test-tool: errors always show\n"
                            "test-tool: x: warning: shown\n"
                            "test-tool: shown with -v\n") == 0, "%s", err.text);

    /* The file is not named twice when the library's message already starts with it. */
    lr_ctx *ctx;
    REQUIRE(lr_ctx_create(&ctx, NULL) == LR_OK);
    capture_begin(&err, 2);
    int rc1 = cli_report(ctx, lr_fail(ctx, LR_ERR_MODEL, "m.st: tensor 'w': bad shape"), "m.st");
    int rc2 = cli_report(ctx, lr_fail(ctx, LR_ERR_DATA, "line 4: bad number"), "in.csv");
    capture_end(&err);
    lr_ctx_destroy(ctx);
    CHECK(rc1 == CLI_EXIT_MODEL && rc2 == CLI_EXIT_DATA);
    CHECKF(strcmp(err.text, "test-tool: m.st: tensor 'w': bad shape\n"
                            "test-tool: in.csv: line 4: bad number\n") == 0, "%s", err.text);
}

/* Off a terminal, a line every few seconds; nothing for a quick run or when disabled. */
static void test_progress(void)
{
    cli_set_tool("test-tool");
    capture err;
    capture_begin(&err, 2); /* a file: not a terminal */
    progress quick, off, slow;
    progress_start(&quick, true, "records", 100);
    progress_update(&quick, 10);
    progress_finish(&quick, 100);
    progress_start(&off, false, "records", 100);
    off.start -= 10;
    off.last_draw -= 10;
    progress_update(&off, 50);
    progress_finish(&off, 100);
    progress_start(&slow, true, "records", 100);
    slow.start -= 10; /* as if ten seconds had passed */
    slow.last_draw -= 10;
    progress_update(&slow, 50);
    progress_update(&slow, 60); /* too soon after the last line */
    progress_finish(&slow, 100);
    capture_end(&err);
    /* The rate and time left depend on the clock; the counts and the layout do not. */
    static const char first[] = "test-tool: 50/100 records, ";
    static const char last[] = "test-tool: 100/100 records, ";
    CHECKF(strncmp(err.text, first, strlen(first)) == 0, "%s", err.text);
    CHECK(strstr(err.text, "/s, ETA 0:"));
    const char *second = strchr(err.text, '\n');
    REQUIRE(second);
    CHECKF(strncmp(second + 1, last, strlen(last)) == 0, "%s", err.text);
    CHECK(strchr(second + 1, '\n') && strchr(second + 1, '\n')[1] == '\0'); /* two lines */
    CHECK(strchr(err.text, '\r') == NULL);
}

int main(void)
{
    RUN(test_common_options);
    RUN(test_defaults_and_verbosity);
    RUN(test_usage_errors);
    RUN(test_help_and_version);
    RUN(test_parse_numbers);
    RUN(test_option_count);
    RUN(test_f32_round_trip);
    RUN(test_exit_codes);
    RUN(test_messages);
    RUN(test_progress);
    return CHECK_DONE();
}
