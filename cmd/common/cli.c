/* Option parsing, --help and --version, exit codes and diagnostics (see cli.h). */
#include "cli.h"

#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "embed.h"
#include "numbers.h"
#include "progress.h"

static const char *tool_name = "longrange";
static int tool_verbosity;

const char *cli_tool(void) { return tool_name; }
void cli_set_tool(const char *name) { tool_name = name; }
void cli_set_verbosity(int verbosity) { tool_verbosity = verbosity; }

int cli_exit_code(lr_status s)
{
    switch (s) {
    case LR_OK:
        return CLI_EXIT_OK;
    case LR_ERR_ARG:
        return CLI_EXIT_USAGE;
    case LR_ERR_MODEL:
        return CLI_EXIT_MODEL;
    default:
        return CLI_EXIT_DATA;
    }
}

/* ---- diagnostics ---- */

static void message(const char *file, const char *kind, const char *fmt, va_list ap)
{
    char body[2048], line[4096];
    vsnprintf(body, sizeof body, fmt, ap);
    snprintf(line, sizeof line, "%s: %s%s%s%s", tool_name, file ? file : "", file ? ": " : "",
             kind, body);
    /* One message, one line, whatever a file name or a library message holds. */
    for (char *p = line; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    progress_clear_line();
    fprintf(stderr, "%s\n", line);
}

void cli_error(const char *file, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    message(file, "", fmt, ap);
    va_end(ap);
}

void cli_warn(const char *file, const char *fmt, ...)
{
    if (tool_verbosity < 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    message(file, "warning: ", fmt, ap);
    va_end(ap);
}

void cli_info(const char *file, const char *fmt, ...)
{
    if (tool_verbosity < 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    message(file, "", fmt, ap);
    va_end(ap);
}

int cli_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    message(NULL, "", fmt, ap);
    va_end(ap);
    fprintf(stderr, "Try '%s --help'.\n", tool_name);
    return CLI_EXIT_USAGE;
}

int cli_report(lr_ctx *ctx, lr_status s, const char *file)
{
    const char *msg = lr_ctx_last_error(ctx);
    if (!*msg)
        msg = lr_status_str(s);
    /* Library messages about a file usually begin with its name (or a file inside it). */
    size_t n = file ? strlen(file) : 0;
    if (file && strncmp(msg, file, n) == 0 &&
        (msg[n] == ':' || msg[n] == '/' || (n > 0 && file[n - 1] == '/')))
        file = NULL;
    cli_error(file, "%s", msg);
    return cli_exit_code(s);
}

/* ---- option values ---- */

static const char *option_label(const cli_option *opt, char buf[64])
{
    if (opt->short_name)
        snprintf(buf, 64, "-%c", opt->short_name);
    else
        snprintf(buf, 64, "--%s", opt->long_name);
    return buf;
}

bool cli_option_choice(const cli_option *opt, const char *arg, const char *const *choices,
                       int *out)
{
    char label[64], list[256] = "";
    size_t used = 0;
    for (int i = 0; choices[i]; i++) {
        if (strcmp(arg, choices[i]) == 0) {
            *out = i;
            return true;
        }
        used += (size_t)snprintf(list + used, used < sizeof list ? sizeof list - used : 0, "%s%s",
                                 i ? ", " : "", choices[i]);
        if (used >= sizeof list)
            used = sizeof list - 1;
    }
    cli_usage_error("option %s: unknown value '%s' (choose from %s)", option_label(opt, label), arg,
                    list);
    return false;
}

bool cli_option_int(const cli_option *opt, const char *arg, int64_t min, int64_t max,
                    int64_t *out)
{
    char label[64];
    int64_t v;
    if (!parse_i64(arg, &v)) {
        cli_usage_error("option %s: invalid number '%s'", option_label(opt, label), arg);
        return false;
    }
    if (v < min || v > max) {
        cli_usage_error("option %s: %s is out of range %lld..%lld", option_label(opt, label), arg,
                        (long long)min, (long long)max);
        return false;
    }
    *out = v;
    return true;
}

bool cli_option_float(const cli_option *opt, const char *arg, double min, double max,
                      double *out)
{
    char label[64], lo[NUMBER_BUF_SIZE], hi[NUMBER_BUF_SIZE];
    double v;
    if (!parse_f64(arg, &v)) {
        cli_usage_error("option %s: invalid number '%s'", option_label(opt, label), arg);
        return false;
    }
    if (v < min || v > max) {
        cli_usage_error("option %s: %s is out of range %s..%s", option_label(opt, label), arg,
                        format_f64(lo, min), format_f64(hi, max));
        return false;
    }
    *out = v;
    return true;
}

bool cli_option_count(const cli_option *opt, const char *arg, uint64_t min, uint64_t max,
                      uint64_t *out)
{
    char label[64];
    uint64_t v;
    if (!parse_count(arg, &v)) {
        cli_usage_error("option %s: invalid count '%s'", option_label(opt, label), arg);
        return false;
    }
    if (v < min || v > max) {
        cli_usage_error("option %s: %s is out of range %llu..%llu", option_label(opt, label), arg,
                        (unsigned long long)min, (unsigned long long)max);
        return false;
    }
    *out = v;
    return true;
}

/* ---- the common options ---- */

typedef struct {
    const cli_program *prog;
    cli_args *args;
} parse_state;

static bool set_model(const cli_option *opt, const char *arg, void *user)
{
    ((parse_state *)user)->args->model = arg;
    return true;
}

static bool set_dump_model(const cli_option *opt, const char *arg, void *user)
{
    ((parse_state *)user)->args->dump_model = true;
    return true;
}

static bool set_output(const cli_option *opt, const char *arg, void *user)
{
    ((parse_state *)user)->args->output = arg;
    return true;
}

static bool set_format(const cli_option *opt, const char *arg, void *user)
{
    parse_state *st = user;
    for (const char *const *f = st->prog->formats; *f; f++) {
        if (strcmp(*f, arg) == 0) {
            st->args->format = *f;
            return true;
        }
    }
    char choices[512] = "";
    for (const char *const *f = st->prog->formats; *f; f++) {
        size_t n = strlen(choices);
        snprintf(choices + n, sizeof choices - n, "%s%s", n ? ", " : "", *f);
    }
    cli_usage_error("option -f: unknown format '%s' (choose from %s)", arg, choices);
    return false;
}

static bool set_threads(const cli_option *opt, const char *arg, void *user)
{
    int64_t n;
    if (!cli_option_int(opt, arg, 0, 1024, &n))
        return false;
    ((parse_state *)user)->args->threads = (int)n;
    return true;
}

static bool set_seed(const cli_option *opt, const char *arg, void *user)
{
    cli_args *args = ((parse_state *)user)->args;
    if (!parse_u64(arg, &args->seed)) {
        cli_usage_error("option --seed: invalid number '%s'", arg);
        return false;
    }
    args->seed_given = true;
    return true;
}

static bool set_quiet(const cli_option *opt, const char *arg, void *user)
{
    ((parse_state *)user)->args->verbosity = -1;
    return true;
}

static bool set_verbose(const cli_option *opt, const char *arg, void *user)
{
    cli_args *args = ((parse_state *)user)->args;
    args->verbosity = args->verbosity < 0 ? 1 : args->verbosity + 1;
    return true;
}

static bool set_progress(const cli_option *opt, const char *arg, void *user)
{
    ((parse_state *)user)->args->progress = true;
    return true;
}

static bool set_force(const cli_option *opt, const char *arg, void *user)
{
    ((parse_state *)user)->args->force = true;
    return true;
}

/* --help and --version end parsing; cli_parse recognises them by these entries. */
enum { COMMON_MODEL, COMMON_DUMP_MODEL, COMMON_OUTPUT, COMMON_FORMAT, COMMON_THREADS,
       COMMON_SEED, COMMON_QUIET, COMMON_VERBOSE, COMMON_PROGRESS, COMMON_FORCE, COMMON_HELP,
       COMMON_VERSION, COMMON_COUNT };

static const struct {
    cli_option opt;
    unsigned group; /* the CLI_OMIT_* bit that leaves it out, 0 for always there */
} common_options[COMMON_COUNT] = {
    [COMMON_MODEL] = {{"model", 'm', "MODEL",
                       "model file or Hugging Face directory, or the name of a built-in model",
                       set_model}, CLI_OMIT_MODEL},
    [COMMON_DUMP_MODEL] = {{"dump-model", 0, NULL,
                            "print the model's metadata and tensors, then exit", set_dump_model},
                           CLI_OMIT_MODEL},
    [COMMON_OUTPUT] = {{"output", 'o', "FILE",
                        "write to FILE, replaced only on success (default: stdout)", set_output},
                       0},
    [COMMON_FORMAT] = {{"format", 'f', "FMT", "output format", set_format}, 0},
    [COMMON_THREADS] = {{"threads", 'j', "N", "worker threads (default 0: one per CPU)",
                         set_threads}, CLI_OMIT_THREADS},
    [COMMON_SEED] = {{"seed", 0, "N", "seed for random numbers (default 0)", set_seed},
                     CLI_OMIT_SEED},
    [COMMON_QUIET] = {{"quiet", 'q', NULL, "print no warnings", set_quiet}, 0},
    [COMMON_VERBOSE] = {{"verbose", 'v', NULL, "print more details (repeat for more)",
                         set_verbose}, 0},
    [COMMON_PROGRESS] = {{"progress", 0, NULL,
                          "show progress on stderr even when it is not a terminal", set_progress},
                         CLI_OMIT_PROGRESS},
    [COMMON_FORCE] = {{"force", 0, NULL, "write binary output even to a terminal", set_force},
                      CLI_OMIT_FORCE},
    [COMMON_HELP] = {{"help", 'h', NULL, "print this help and exit", NULL}, 0},
    [COMMON_VERSION] = {{"version", 0, NULL, "print the version and exit", NULL}, 0},
};

static bool common_option_used(const cli_program *prog, int i)
{
    if (i == COMMON_FORMAT && !prog->formats)
        return false;
    return (prog->omit & common_options[i].group) == 0;
}

/* ---- --help ---- */

static void option_label_full(const cli_option *opt, char *buf, size_t size)
{
    char shortpart[8] = "    ";
    if (opt->short_name)
        snprintf(shortpart, sizeof shortpart, "-%c, ", opt->short_name);
    snprintf(buf, size, "  %s--%s%s%s", shortpart, opt->long_name, opt->arg_name ? " " : "",
             opt->arg_name ? opt->arg_name : "");
}

enum { HELP_COLUMN_MAX = 30, HELP_WIDTH = 79 };

/* The label, then the help text from `column` on, wrapped at word boundaries. */
static void print_option_help(FILE *f, const cli_option *opt, int column, const char *extra)
{
    char label[256], text[1024];
    option_label_full(opt, label, sizeof label);
    snprintf(text, sizeof text, "%s%s", opt->help, extra);
    int at = fprintf(f, "%s", label);
    if (at + 2 > column) {
        fputc('\n', f);
        at = 0;
    }
    fprintf(f, "%*s", column - at, "");
    at = column;
    for (const char *word = text; *word;) {
        size_t len = strcspn(word, " ");
        if (at > column && at + 1 + (int)len > HELP_WIDTH) {
            fprintf(f, "\n%*s", column, "");
            at = column;
        } else if (at > column) {
            fputc(' ', f);
            at++;
        }
        at += fprintf(f, "%.*s", (int)len, word);
        word += len;
        word += strspn(word, " ");
    }
    fputc('\n', f);
}

static int help_column(const cli_program *prog)
{
    int width = 0;
    char label[256];
    for (int i = 0; i < COMMON_COUNT; i++) {
        if (!common_option_used(prog, i))
            continue;
        option_label_full(&common_options[i].opt, label, sizeof label);
        if ((int)strlen(label) > width)
            width = (int)strlen(label);
    }
    for (const cli_option *o = prog->options; o && o->long_name; o++) {
        option_label_full(o, label, sizeof label);
        if ((int)strlen(label) > width)
            width = (int)strlen(label);
    }
    return width + 2 > HELP_COLUMN_MAX ? HELP_COLUMN_MAX : width + 2;
}

void cli_print_help(const cli_program *prog, FILE *f)
{
    int column = help_column(prog);
    fprintf(f, "Usage: %s %s\n%s\n", prog->name, prog->synopsis, prog->description);
    if (prog->options && prog->options->long_name) {
        fprintf(f, "\nOptions:\n");
        for (const cli_option *o = prog->options; o->long_name; o++)
            print_option_help(f, o, column, "");
    }
    fprintf(f, "\nCommon options:\n");
    for (int i = 0; i < COMMON_COUNT; i++) {
        if (!common_option_used(prog, i))
            continue;
        char extra[512] = "";
        if (i == COMMON_MODEL) {
            const char *builtin = lr_embedded_models[0].name;
            if (builtin)
                snprintf(extra, sizeof extra, " (default: %s)", builtin);
            else
                snprintf(extra, sizeof extra, " (required)");
        } else if (i == COMMON_FORMAT) {
            size_t n = 0;
            for (const char *const *fmt = prog->formats; *fmt && n < sizeof extra; fmt++) {
                n += (size_t)snprintf(extra + n, sizeof extra - n, "%s %s%s",
                                      fmt == prog->formats ? ":" : ",", *fmt,
                                      fmt == prog->formats ? " (default)" : "");
            }
        }
        print_option_help(f, &common_options[i].opt, column, extra);
    }
    fprintf(f, "\nExit status: 0 ok, 1 bad input or runtime error, 2 usage error,\n"
               "3 unusable model file. See %s(1).\n", prog->name);
}

/* ---- parsing ---- */

/* After --help or --version: a full disk is an error too. */
static int flush_stdout(void)
{
    if (fflush(stdout) == 0)
        return CLI_EXIT_OK;
    cli_error(NULL, "write error: %s", strerror(errno));
    return CLI_EXIT_DATA;
}

typedef struct {
    const cli_option *opt;
    void *user;
} option_entry;

int cli_parse(const cli_program *prog, int argc, char **argv, cli_args *args)
{
    memset(args, 0, sizeof *args);
    tool_name = prog->name;
    tool_verbosity = 0;
    /* A closed pipe (`| head`) should end us quietly, whatever disposition the parent left. */
    signal(SIGPIPE, SIG_DFL);

    size_t n_own = 0;
    while (prog->options && prog->options[n_own].long_name)
        n_own++;
    size_t n_all = COMMON_COUNT + n_own;
    option_entry *entries = calloc(n_all, sizeof *entries);
    struct option *longopts = calloc(n_all + 1, sizeof *longopts);
    char *shortopts = calloc(2 * n_all + 1, 1);
    if (!entries || !longopts || !shortopts) {
        free(entries);
        free(longopts);
        free(shortopts);
        cli_error(NULL, "out of memory");
        return CLI_EXIT_DATA;
    }

    parse_state state = {prog, args};
    size_t n = 0, n_short = 0;
    for (int i = 0; i < COMMON_COUNT; i++)
        if (common_option_used(prog, i))
            entries[n++] = (option_entry){&common_options[i].opt, &state};
    for (size_t i = 0; i < n_own; i++)
        entries[n++] = (option_entry){&prog->options[i], prog->user};
    for (size_t i = 0; i < n; i++) {
        const cli_option *o = entries[i].opt;
        /* Options without a short form are told apart by values past any character. */
        longopts[i] = (struct option){o->long_name, o->arg_name ? required_argument : no_argument,
                                      NULL, o->short_name ? o->short_name : 256 + (int)i};
        if (o->short_name) {
            shortopts[n_short++] = (char)o->short_name;
            if (o->arg_name)
                shortopts[n_short++] = ':';
        }
    }

    /* getopt's own messages ("unrecognized option") then begin with the tool's name. */
    if (argc > 0)
        argv[0] = (char *)prog->name;
    optind = 0; /* glibc: start afresh, so that tests can parse several command lines */
    opterr = 1;
    int rc = CLI_PROCEED, c;
    while (rc == CLI_PROCEED && (c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        if (c == '?') { /* getopt has said what is wrong */
            fprintf(stderr, "Try '%s --help'.\n", prog->name);
            rc = CLI_EXIT_USAGE;
            continue;
        }
        const option_entry *e = NULL;
        if (c >= 256)
            e = &entries[c - 256];
        for (size_t i = 0; !e && i < n; i++)
            if (entries[i].opt->short_name == c)
                e = &entries[i];
        assert(e); /* getopt returns only the characters and values it was given */
        if (e->opt == &common_options[COMMON_HELP].opt) {
            cli_print_help(prog, stdout);
            rc = flush_stdout();
        } else if (e->opt == &common_options[COMMON_VERSION].opt) {
            printf("%s (longrange) %s\n", prog->name, LR_VERSION);
            rc = flush_stdout();
        } else if (!e->opt->handle(e->opt, optarg, e->user)) {
            rc = CLI_EXIT_USAGE;
        }
    }
    free(entries);
    free(longopts);
    free(shortopts);
    if (rc != CLI_PROCEED)
        return rc;

    /* Without -f, an -o name ending in ".<format>" picks that format (-o emb.npy). */
    const char *dot = args->output && prog->formats ? strrchr(args->output, '.') : NULL;
    for (const char *const *f = prog->formats; !args->format && dot && *f; f++)
        if (strcmp(dot + 1, *f) == 0)
            args->format = *f;
    if (!args->format && prog->formats)
        args->format = prog->formats[0];
    if (args->verbosity >= 0 && isatty(STDERR_FILENO))
        args->progress = true;
    args->operands = argv + optind;
    args->n_operands = argc - optind;
    tool_verbosity = args->verbosity;
    return CLI_PROCEED;
}

/* ---- libcore context ---- */

static bool context_error_logged;

static void log_to_stderr(lr_log_level level, const char *msg, void *user)
{
    if (level == LR_LOG_ERROR) {
        context_error_logged = true;
        cli_error(NULL, "%s", msg);
    } else if (level == LR_LOG_WARN) {
        cli_warn(NULL, "%s", msg);
    } else {
        cli_info(NULL, "%s", msg);
    }
}

int cli_context(const cli_args *args, lr_ctx **out)
{
    lr_ctx_params p = lr_ctx_default_params();
    p.n_threads = args->threads;
    p.log = log_to_stderr;
    p.log_level = args->verbosity < 0    ? LR_LOG_ERROR
                  : args->verbosity == 0 ? LR_LOG_WARN
                  : args->verbosity == 1 ? LR_LOG_INFO
                                         : LR_LOG_DEBUG;
    context_error_logged = false;
    lr_status s = lr_ctx_create(out, &p);
    if (s != LR_OK && !context_error_logged)
        cli_error(NULL, "cannot set up libcore: %s", lr_status_str(s));
    return cli_exit_code(s);
}
