/* The batch loop of the image programs (sr-run, seg-run): which inputs, where each result goes,
 * and reading one PNG with the failure reported.
 *
 *   no operands            one input, stdin ("-")
 *   no -o, or -o -         one input to stdout
 *   -o FILE                one input to FILE (written atomically by output.h)
 *   -o DIR (a directory, or a name ending in '/'; created when missing)
 *                          every input to DIR/<base name of the input, extension replaced>
 *                          (stdin: DIR/stdin<ext>)
 * Several inputs without -o DIR are a usage error when the program writes one result per input
 * (a program writing one table for all of them passes per_input = false). */
#ifndef CLI_BATCH_H
#define CLI_BATCH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "image.h"
#include "longrange/core.h"

typedef struct {
    char **inputs;   /* the operands, or {"-"} when there were none */
    int n_inputs;
    const char *out; /* -o as given (NULL: stdout) */
    bool to_stdout;  /* no -o or -o - */
    bool to_dir;     /* -o DIR */
} batch_plan;

/* Fills plan from -o and the operands; creates DIR (tolerating a parallel run creating it at
 * the same time). Returns CLI_EXIT_OK, or reports and returns the exit status. */
int batch_plan_make(batch_plan *plan, const char *out, char **operands, int n_operands,
                    bool per_input);

/* Where an input goes: a new string (free it), or NULL for stdout; *failed is set (and it
 * is reported) when memory ran out. */
char *batch_target(const batch_plan *plan, const char *input, const char *ext, bool *failed);

/* DIR/<base name of path without its extension><ext>; "-" counts as "stdin". NULL when out of
 * memory. */
char *batch_path_in_dir(const char *dir, const char *path, const char *ext);

bool batch_is_directory(const char *path);

/* The name of an input in messages: "stdin" for "-". */
const char *batch_input_name(const char *path);

/* Reads one PNG (path "-": stdin) with image_read_png; reports a failure as one line
 * ("tool: file: reason") and returns CLI_EXIT_DATA, else CLI_EXIT_OK. */
int batch_read_png(lr_ctx *ctx, const char *path, uint64_t max_pixels, image *img);

/* A float32 little-endian C-order NPY header for shape[0..ndim-1] (1 <= ndim <= 4), padded to
 * a multiple of 64 bytes as numpy writes it; the caller writes the data after it. */
void batch_write_npy_header(FILE *f, int ndim, const int *shape);

#endif
