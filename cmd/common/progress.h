/* A progress indicator on stderr: items done, rate and, when the total is known, the time left.
 * Drawn in place on a terminal (at most a few times a second), as plain lines every few
 * seconds otherwise (--progress into a log). Nothing is drawn for runs that end quickly. */
#ifndef CLI_PROGRESS_H
#define CLI_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    bool enabled;
    bool terminal;     /* stderr is a terminal: redraw one line */
    bool drawn;        /* something was printed */
    const char *unit;  /* "records", "frames", ... */
    uint64_t total;    /* 0 when unknown */
    double start, last_draw;
} progress;

/* enabled: from cli_args.progress. */
void progress_start(progress *p, bool enabled, const char *unit, uint64_t total);
void progress_update(progress *p, uint64_t done);
/* Prints the final count if anything was drawn, and ends the line. */
void progress_finish(progress *p, uint64_t done);

/* Erases a progress line drawn on the terminal, so that a message can take its place (the next
 * update redraws it). Used by cli.c before every message. */
void progress_clear_line(void);

#endif
