/* Output formats the programs share.
 *
 * Tables (TSV, CSV, JSON Lines): a header of column names, then rows of fields given one by
 * one. TSV has no quoting: tabs and line breaks inside a field become spaces. CSV quotes a
 * field that holds a comma, a quote or a line break (RFC 4180; lines end in LF). JSON Lines
 * writes each row as an object keyed by the column names, non-finite numbers as null. Numbers
 * use the C locale and round-trip (float32 as %.9g).
 *
 * Matrices (id + float32 vector per row, e.g. embeddings): the table formats with columns
 * id, d0, d1, ... (JSON Lines: {"id": ..., "<name>": [...]}), or NPY: a float32 little-endian
 * C-order array [N, D]. The NPY header is fixed up at the end when the output can seek, the
 * rows held in memory otherwise; written to a file, the ids go to a sidecar <stem>.ids.tsv
 * (columns index, id) beside it.
 *
 * Named tensors (safetensors): one float32 [rows, dim] tensor per name, e.g. the per-token
 * outputs of each record, in a file any safetensors reader (and lr-model) opens.
 *
 * Writers do not report write errors themselves: output_commit finds them. */
#ifndef CLI_WRITERS_H
#define CLI_WRITERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "output.h"

typedef enum { FORMAT_TSV, FORMAT_CSV, FORMAT_JSONL, FORMAT_NPY, FORMAT_SAFETENSORS } data_format;

/* "tsv", "csv", "jsonl", "npy", "safetensors"; false for anything else. */
bool data_format_parse(const char *name, data_format *out);

/* A JSON string literal for s: escaped, invalid UTF-8 replaced by U+FFFD. */
void write_json_string(FILE *f, const char *s);

/* ---- tables ---- */

typedef struct {
    FILE *f;
    data_format format; /* not FORMAT_NPY */
    const char *const *columns;
    int n_columns;
    int column;         /* the next field's column */
} table_writer;

/* Prints the header (TSV, CSV). columns must outlive the writer. */
void table_begin(table_writer *t, FILE *f, data_format format, const char *const *columns,
                 int n_columns);
void table_str(table_writer *t, const char *s);
void table_int(table_writer *t, int64_t v);
void table_f32(table_writer *t, float v);
void table_f64(table_writer *t, double v);
/* An empty field (JSON: null), for a missing value. */
void table_missing(table_writer *t);
/* Ends the row; every column must have had its field. */
void table_end_row(table_writer *t);

/* ---- matrices ---- */

typedef struct matrix_writer matrix_writer;

/* vector_name is the JSON Lines key of the vector ("embedding"). Returns CLI_EXIT_OK, or
 * reports and returns an exit status. */
int matrix_open(matrix_writer **out, output *o, data_format format, const char *vector_name,
                size_t dim);
/* One row: its id and dim values. Returns false (reported) when NPY rows held in memory no
 * longer fit. */
bool matrix_row(matrix_writer *w, const char *id, const float *values);
/* Completes the output (NPY: the row count in the header, or all held rows) and commits the
 * ids sidecar; the caller then commits the output itself. Frees w; returns an exit status. */
int matrix_finish(matrix_writer *w);
/* Drops the sidecar; frees w. */
void matrix_abort(matrix_writer *w);

/* The NPY header for a float32 [rows, dim] array: always NPY_HEADER_SIZE bytes, so that it can
 * be rewritten in place once the row count is known. */
#define NPY_HEADER_SIZE 128
void npy_header(unsigned char buf[NPY_HEADER_SIZE], uint64_t rows, uint64_t dim);

/* ---- named tensors ---- */

/* A safetensors header must come before the data and give every tensor's offset, so the data
 * is staged in an unlinked temporary file (memory stays bounded whatever the sizes) and copied
 * behind the header by tensor_writer_finish. Tensors are stored in the order they began. */
typedef struct tensor_writer tensor_writer;

/* Returns CLI_EXIT_OK, or reports and returns an exit status. */
int tensor_writer_open(tensor_writer **out, output *o);
/* Starts a float32 [rows, dim] tensor whose rows then come through tensor_rows. Returns NULL,
 * or a one-line reason the tensor cannot be stored (its name repeats an earlier tensor's, or
 * memory ran out); the previous tensor must have had all its rows. */
const char *tensor_begin(tensor_writer *w, const char *name, uint64_t rows, uint64_t dim);
/* n more rows of the current tensor. */
void tensor_rows(tensor_writer *w, const float *values, uint64_t n);
/* Drops the current tensor (a record that failed half way). */
void tensor_cancel(tensor_writer *w);
/* Writes the header and the data to the output (the caller commits it); frees w. Returns an
 * exit status (reported). */
int tensor_writer_finish(tensor_writer *w);
void tensor_writer_abort(tensor_writer *w);

#endif
