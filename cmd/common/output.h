/* Where a program's output goes: stdout ("-" or no -o) or a file written atomically.
 *
 * `-o FILE` writes to a temporary file beside FILE and renames it over FILE in output_commit,
 * so an interrupted or failed run never leaves a half-written target for make. The temporary
 * file is removed by output_abort, at exit when the program never committed, and on SIGINT,
 * SIGTERM or SIGHUP. A FILE that exists and is not a regular file (/dev/null, a FIFO) is
 * written in place; a
 * symbolic link stays a link to the new file. */
#ifndef CLI_OUTPUT_H
#define CLI_OUTPUT_H

#include <stdbool.h>
#include <stdio.h>

typedef struct output output;

/* Opens path ("-" or NULL: stdout). binary output to a terminal is refused unless force.
 * Returns CLI_EXIT_OK and sets *out, or reports the problem and returns its exit status. */
int output_open(const char *path, bool binary, bool force, output **out);

FILE *output_stream(const output *o);
/* The path given to output_open, NULL for stdout. */
const char *output_path(const output *o);
/* The name for messages: the path, or "stdout". */
const char *output_name(const output *o);

/* Flushes and closes, renames the temporary file over the target; frees o. Returns CLI_EXIT_OK
 * or reports a write error and returns CLI_EXIT_DATA (the target then stays as it was). */
int output_commit(output *o);
/* Closes and removes the temporary file, leaving the target as it was; frees o. */
void output_abort(output *o);

#endif
