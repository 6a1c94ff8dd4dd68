/* The command-line contract every program shares (GUIDE.md §4): the common options, --help and
 * --version, exit codes, and one-line diagnostics on stderr.
 *
 * A program describes itself in a cli_program, adds its own options in a table of cli_option,
 * and calls cli_parse:
 *
 *     cli_args args;
 *     int rc = cli_parse(&program, argc, argv, &args);
 *     if (rc != CLI_PROCEED)
 *         return rc;
 *
 * cli_parse has then printed --help or --version, or reported a usage error, and rc is the exit
 * status; otherwise args holds the common options and the operands. */
#ifndef CLI_CLI_H
#define CLI_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "longrange/core.h"

/* Exit statuses, documented in every man page's EXIT STATUS. */
enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_DATA = 1,  /* bad input data, I/O or another runtime failure */
    CLI_EXIT_USAGE = 2, /* bad option, option value or operand */
    CLI_EXIT_MODEL = 3, /* unusable model file */
};

/* cli_parse's result when the program should go on running. */
#define CLI_PROCEED (-1)

/* The exit status for a libcore status: model errors 3, argument errors 2, others 1. */
int cli_exit_code(lr_status s);

/* Groups of common options a program can leave out of its command line (cli_program.omit). */
enum {
    CLI_OMIT_MODEL = 1 << 0,    /* -m/--model, --dump-model: the program runs no model */
    CLI_OMIT_THREADS = 1 << 1,  /* -j/--threads */
    CLI_OMIT_SEED = 1 << 2,     /* --seed: nothing random */
    CLI_OMIT_PROGRESS = 1 << 3, /* --progress */
    CLI_OMIT_FORCE = 1 << 4,    /* --force: the program never writes binary output */
};

typedef struct cli_option cli_option;
/* Receives one occurrence of a program's own option (arg is NULL for a flag). Returns false
 * after reporting a bad value with cli_usage_error or the cli_option_* helpers below. */
typedef bool (*cli_option_handler)(const cli_option *opt, const char *arg, void *user);

struct cli_option {
    const char *long_name;      /* "max-len" */
    int short_name;             /* 'L', or 0 for a long option only */
    const char *arg_name;       /* "N" for an option with a value, NULL for a flag */
    const char *help;           /* one line for --help */
    cli_option_handler handle;
};

typedef struct {
    const char *name;              /* "dna-embed": in messages, --help and --version */
    const char *synopsis;          /* after the name in the usage line: "[OPTIONS] [FILE...]" */
    const char *description;       /* one line for --help */
    const char *const *formats;    /* -f choices, NULL-terminated, first = default; NULL: no -f */
    unsigned omit;                 /* CLI_OMIT_* */
    const cli_option *options;     /* the program's own options, ended by a zeroed entry; or NULL */
    void *user;                    /* passed to the option handlers */
} cli_program;

typedef struct {
    const char *model;    /* -m: NULL means the embedded default */
    const char *output;   /* -o: NULL or "-" means stdout */
    const char *format;   /* -f: one of the program's formats (when not given: the one -o's
                           * extension names, else the first) */
    int threads;          /* -j: 0 means one per online CPU */
    int verbosity;        /* -1 with -q, 0 by default, +1 per -v */
    bool progress;        /* --progress, or stderr is a terminal (and no -q) */
    bool force;           /* --force: binary output to a terminal */
    bool dump_model;      /* --dump-model */
    bool seed_given;
    uint64_t seed;        /* --seed, 0 when not given */
    char **operands;      /* the arguments left after the options */
    int n_operands;
} cli_args;

/* Parses the command line (getopt_long; argv is permuted). See the top of this file. */
int cli_parse(const cli_program *prog, int argc, char **argv, cli_args *args);

/* The --help text, also used by tests. */
void cli_print_help(const cli_program *prog, FILE *f);

/* The program name used in messages (set by cli_parse; tests may set it). */
const char *cli_tool(void);
void cli_set_tool(const char *name);
/* -1 quiet, 0 normal, 1+ verbose (set by cli_parse). */
void cli_set_verbosity(int verbosity);

/* Diagnostics on stderr, one line each: "tool: file: message", the file part left out when
 * file is NULL. Errors always print; warnings not under -q; information only under -v. */
void cli_error(const char *file, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cli_warn(const char *file, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cli_info(const char *file, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Reports a usage error ("tool: message" and a pointer to --help); returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Reports the last error of ctx for file; returns cli_exit_code(s). */
int cli_report(lr_ctx *ctx, lr_status s, const char *file);

/* For option handlers: strict numbers within [min, max]; on failure the message names the
 * option ("tool: option -j: invalid number '4x'") and they return false. */
bool cli_option_int(const cli_option *opt, const char *arg, int64_t min, int64_t max,
                    int64_t *out);
bool cli_option_float(const cli_option *opt, const char *arg, double min, double max,
                      double *out);
/* One of the names in choices (NULL-terminated): *out is its index; otherwise the message lists
 * them ("tool: option --fit: unknown value 'square' (choose from stretch, letterbox)"). */
bool cli_option_choice(const cli_option *opt, const char *arg, const char *const *choices,
                       int *out);
/* A count with an optional k/M/G suffix (parse_count): "--max-len 1M". */
bool cli_option_count(const cli_option *opt, const char *arg, uint64_t min, uint64_t max,
                      uint64_t *out);

/* A libcore context for the parsed options: -j threads, log messages through cli_warn and
 * cli_info. Returns CLI_EXIT_OK, or reports the failure and returns its exit status. */
int cli_context(const cli_args *args, lr_ctx **out);

#endif
