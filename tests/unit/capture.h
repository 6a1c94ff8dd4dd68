/* Captures what a piece of code writes to stdout or stderr, for tests of messages. */
#ifndef LR_TEST_CAPTURE_H
#define LR_TEST_CAPTURE_H

#include <stdio.h>
#include <unistd.h>

typedef struct {
    int fd;      /* the descriptor captured */
    int saved;   /* a duplicate of what it was */
    FILE *file;  /* where it goes meanwhile */
    char text[8192];
} capture;

static void capture_begin(capture *c, int fd)
{
    fflush(stdout);
    fflush(stderr);
    c->fd = fd;
    c->file = tmpfile();
    c->saved = dup(fd);
    dup2(fileno(c->file), fd);
}

/* Restores the descriptor; returns everything written meanwhile. */
static const char *capture_end(capture *c)
{
    fflush(stdout);
    fflush(stderr);
    dup2(c->saved, c->fd);
    close(c->saved);
    rewind(c->file);
    size_t n = fread(c->text, 1, sizeof c->text - 1, c->file);
    c->text[n] = '\0';
    fclose(c->file);
    return c->text;
}

#endif
