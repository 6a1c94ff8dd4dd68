/* Progress on stderr (see progress.h). */
#include "progress.h"

#include <stdio.h>
#include <unistd.h>

#include "cli.h"

/* How often to draw, in seconds: a terminal line is cheap to redraw, a log line is not. */
enum { TERMINAL_INTERVAL_MS = 250, LOG_INTERVAL_MS = 5000 };

static bool line_open; /* a progress line without its newline is on the terminal */

void progress_clear_line(void)
{
    if (line_open) {
        fputs("\r\033[K", stderr);
        line_open = false;
    }
}

void progress_start(progress *p, bool enabled, const char *unit, uint64_t total)
{
    p->enabled = enabled;
    p->terminal = isatty(STDERR_FILENO);
    p->drawn = false;
    p->unit = unit;
    p->total = total;
    p->start = p->last_draw = lr_time_now();
}

static void format_duration(char *buf, size_t size, double seconds)
{
    unsigned long s = (unsigned long)(seconds + 0.5);
    if (s >= 3600)
        snprintf(buf, size, "%lu:%02lu:%02lu", s / 3600, s / 60 % 60, s % 60);
    else
        snprintf(buf, size, "%lu:%02lu", s / 60, s % 60);
}

static void draw(progress *p, uint64_t done, double now)
{
    double elapsed = now - p->start;
    double rate = elapsed > 0 ? (double)done / elapsed : 0;
    char count[64], eta[64] = "";
    if (p->total)
        snprintf(count, sizeof count, "%llu/%llu", (unsigned long long)done,
                 (unsigned long long)p->total);
    else
        snprintf(count, sizeof count, "%llu", (unsigned long long)done);
    if (p->total && rate > 0 && done <= p->total) {
        char left[32];
        format_duration(left, sizeof left, (double)(p->total - done) / rate);
        snprintf(eta, sizeof eta, ", ETA %s", left);
    }
    fprintf(stderr, "%s%s: %s %s, %.1f/s%s%s", p->terminal ? "\r" : "", cli_tool(), count,
            p->unit, rate, eta, p->terminal ? "\033[K" : "\n");
    line_open = p->terminal;
    p->drawn = true;
    p->last_draw = now;
}

void progress_update(progress *p, uint64_t done)
{
    if (!p->enabled)
        return;
    double now = lr_time_now();
    double interval = (p->terminal ? TERMINAL_INTERVAL_MS : LOG_INTERVAL_MS) / 1000.0;
    if (now - p->last_draw >= interval)
        draw(p, done, now);
}

void progress_finish(progress *p, uint64_t done)
{
    if (!p->enabled || !p->drawn)
        return;
    draw(p, done, lr_time_now());
    if (p->terminal)
        fputc('\n', stderr);
    line_open = false;
}
