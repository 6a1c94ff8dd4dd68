/* The models built into a program by tools/embed.sh (listed in cmd/<tool>/models; the first is
 * the program's default). Every program has the table, empty when it embeds nothing. */
#ifndef CLI_EMBED_H
#define CLI_EMBED_H

#include <stddef.h>

typedef struct {
    const char *name;           /* file base name without .safetensors */
    const unsigned char *data;
    size_t size;
} cli_embedded_model;

/* Ends with an entry whose name is NULL. Every binary that links cmd/common links a table
 * (the Makefile generates an empty one for tests, fuzz targets and benchmarks). */
extern const cli_embedded_model lr_embedded_models[];

#endif
