/* Models as the programs see them: the built-in default, -m NAME or -m PATH, and the
 * metadata/tensor listing behind --dump-model and lr-model. */
#ifndef CLI_MODELS_H
#define CLI_MODELS_H

#include <stdio.h>

#include "cli.h"
#include "longrange/model.h"

/* Opens the model named by -m: NULL for the program's default (the first built-in model), the
 * name of a built-in model, or else a safetensors file or Hugging Face directory. Returns
 * CLI_EXIT_OK, or reports why and returns CLI_EXIT_MODEL (CLI_EXIT_USAGE when no -m was given
 * to a program without a built-in model). */
int cli_open_model(lr_ctx *ctx, const char *spec, lr_model **out);

/* A readable listing: the model's name, its metadata one key per line, and a table of tensors
 * (name, dtype, shape, bytes). */
void model_print_text(FILE *f, const lr_model *m);
/* The same as one line of JSON: {"model", "metadata": {key: text}, "tensors": [{"name",
 * "dtype", "shape", "bytes"}], "total_bytes"}. */
void model_print_json(FILE *f, const lr_model *m);

/* --dump-model: the text listing to the program's output (-o or stdout). Returns an exit
 * status. */
int cli_dump_model(const cli_args *args, const lr_model *m);

#endif
