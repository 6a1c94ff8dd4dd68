/* TSV, CSV, JSON Lines and NPY writers (see writers.h). */
#include "writers.h"

#include <assert.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "cli.h"
#include "numbers.h"

/* NPY promises little-endian data and we write the floats' bytes as they are in memory. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "the NPY writer needs a little-endian host");

bool data_format_parse(const char *name, data_format *out)
{
    static const char *const names[] = {[FORMAT_TSV] = "tsv", [FORMAT_CSV] = "csv",
                                        [FORMAT_JSONL] = "jsonl", [FORMAT_NPY] = "npy",
                                        [FORMAT_SAFETENSORS] = "safetensors"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(name, names[i]) == 0) {
            *out = (data_format)i;
            return true;
        }
    }
    return false;
}

/* ---- fields ---- */

/* Length of the valid UTF-8 sequence at s, 0 if the bytes there are not one. Stops at the NUL
 * terminator, which is never a continuation byte. */
static size_t utf8_sequence_length(const unsigned char *s)
{
    unsigned lo = 0x80, hi = 0xBF; /* the range of the second byte */
    size_t n;
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xC2 && s[0] <= 0xDF) {
        n = 2;
    } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        n = 3;
        lo = s[0] == 0xE0 ? 0xA0 : lo; /* no overlong forms */
        hi = s[0] == 0xED ? 0x9F : hi; /* no surrogates */
    } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        n = 4;
        lo = s[0] == 0xF0 ? 0x90 : lo;
        hi = s[0] == 0xF4 ? 0x8F : hi; /* nothing past U+10FFFF */
    } else {
        return 0;
    }
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return n;
}

void write_json_string(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    fputc('"', f);
    while (*p) {
        size_t n = utf8_sequence_length(p);
        if (n == 0) {
            fputs("\\ufffd", f);
            p++;
            continue;
        }
        switch (*p) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (*p < 0x20)
                fprintf(f, "\\u%04x", *p);
            else
                fwrite(p, 1, n, f);
        }
        p += n;
    }
    fputc('"', f);
}

static void write_tsv_text(FILE *f, const char *s)
{
    for (; *s; s++)
        fputc(*s == '\t' || *s == '\n' || *s == '\r' ? ' ' : *s, f);
}

static void write_csv_text(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void write_text(FILE *f, data_format format, const char *s)
{
    switch (format) {
    case FORMAT_TSV: write_tsv_text(f, s); break;
    case FORMAT_CSV: write_csv_text(f, s); break;
    default: write_json_string(f, s); break;
    }
}

/* TSV and CSV: "nan", "inf", "-inf" (which numpy and pandas read); JSON has no such numbers. */
static void write_number(FILE *f, data_format format, double v, bool single)
{
    char buf[NUMBER_BUF_SIZE];
    if (isfinite(v))
        fputs(single ? format_f32(buf, (float)v) : format_f64(buf, v), f);
    else if (format == FORMAT_JSONL)
        fputs("null", f);
    else if (isnan(v))
        fputs("nan", f); /* glibc would print a negative NaN as "-nan" */
    else
        fputs(v > 0 ? "inf" : "-inf", f);
}

/* ---- tables ---- */

void table_begin(table_writer *t, FILE *f, data_format format, const char *const *columns,
                 int n_columns)
{
    assert(format != FORMAT_NPY);
    *t = (table_writer){f, format, columns, n_columns, 0};
    if (format == FORMAT_JSONL)
        return;
    for (int i = 0; i < n_columns; i++) {
        if (i)
            fputc(format == FORMAT_TSV ? '\t' : ',', f);
        write_text(f, format, columns[i]);
    }
    fputc('\n', f);
}

/* Whatever goes before the next field: a separator, or the JSON key. */
static void begin_field(table_writer *t)
{
    assert(t->column < t->n_columns);
    if (t->format == FORMAT_JSONL) {
        fputs(t->column ? ", " : "{", t->f);
        write_json_string(t->f, t->columns[t->column]);
        fputs(": ", t->f);
    } else if (t->column) {
        fputc(t->format == FORMAT_TSV ? '\t' : ',', t->f);
    }
    t->column++;
}

void table_str(table_writer *t, const char *s)
{
    begin_field(t);
    write_text(t->f, t->format, s);
}

void table_int(table_writer *t, int64_t v)
{
    begin_field(t);
    fprintf(t->f, "%" PRId64, v);
}

void table_f32(table_writer *t, float v)
{
    begin_field(t);
    write_number(t->f, t->format, v, true);
}

void table_f64(table_writer *t, double v)
{
    begin_field(t);
    write_number(t->f, t->format, v, false);
}

void table_missing(table_writer *t)
{
    begin_field(t);
    if (t->format == FORMAT_JSONL)
        fputs("null", t->f);
}

void table_end_row(table_writer *t)
{
    assert(t->column == t->n_columns);
    if (t->format == FORMAT_JSONL)
        fputc('}', t->f);
    fputc('\n', t->f);
    t->column = 0;
}

/* ---- matrices ---- */

struct matrix_writer {
    output *out;
    FILE *f;
    data_format format;
    const char *vector_name;
    size_t dim;
    uint64_t rows;
    /* NPY */
    bool seekable;     /* the header is rewritten at the end, rows go straight out */
    off_t header_at;
    float *held;       /* rows kept until the end when the output cannot seek */
    size_t held_capacity; /* in floats */
    output *ids;       /* the sidecar, when writing to a file */
    table_writer ids_table;
};

void npy_header(unsigned char buf[NPY_HEADER_SIZE], uint64_t rows, uint64_t dim)
{
    /* Version 1.0: magic, version, little-endian header length, then a Python dict padded
     * with spaces and ending in a newline, so that the data starts 64-byte aligned. */
    const unsigned dict_size = NPY_HEADER_SIZE - 10;
    memset(buf, ' ', NPY_HEADER_SIZE);
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (unsigned char)(dict_size & 0xFF);
    buf[9] = (unsigned char)(dict_size >> 8);
    char dict[NPY_HEADER_SIZE];
    int n = snprintf(dict, sizeof dict,
                     "{'descr': '<f4', 'fortran_order': False, 'shape': (%" PRIu64 ", %" PRIu64
                     "), }",
                     rows, dim);
    assert(n > 0 && (unsigned)n < dict_size);
    memcpy(buf + 10, dict, (size_t)n);
    buf[NPY_HEADER_SIZE - 1] = '\n';
}

static bool can_rewrite_header(FILE *f, off_t *header_at)
{
    int fd = fileno(f);
    int flags = fcntl(fd, F_GETFL);
    /* Pipes and terminals cannot seek; O_APPEND (>>) would write the fix-up at the end. */
    if (lseek(fd, 0, SEEK_CUR) < 0 || flags < 0 || (flags & O_APPEND))
        return false;
    *header_at = ftello(f);
    return *header_at >= 0;
}

static int open_ids_sidecar(matrix_writer *w, const char *path)
{
    size_t stem = strlen(path);
    if (stem > 4 && strcmp(path + stem - 4, ".npy") == 0)
        stem -= 4;
    char *ids_path = malloc(stem + sizeof ".ids.tsv");
    if (!ids_path) {
        cli_error(NULL, "out of memory");
        return CLI_EXIT_DATA;
    }
    memcpy(ids_path, path, stem);
    strcpy(ids_path + stem, ".ids.tsv");
    int rc = output_open(ids_path, false, false, &w->ids);
    free(ids_path);
    if (rc != CLI_EXIT_OK)
        return rc;
    static const char *const columns[] = {"index", "id"};
    table_begin(&w->ids_table, output_stream(w->ids), FORMAT_TSV, columns, 2);
    return CLI_EXIT_OK;
}

int matrix_open(matrix_writer **out, output *o, data_format format, const char *vector_name,
                size_t dim)
{
    *out = NULL;
    matrix_writer *w = calloc(1, sizeof *w);
    if (!w) {
        cli_error(NULL, "out of memory");
        return CLI_EXIT_DATA;
    }
    *w = (matrix_writer){.out = o, .f = output_stream(o), .format = format,
                         .vector_name = vector_name, .dim = dim};
    if (format == FORMAT_NPY) {
        if (output_path(o)) {
            int rc = open_ids_sidecar(w, output_path(o));
            if (rc != CLI_EXIT_OK) {
                free(w);
                return rc;
            }
        }
        w->seekable = can_rewrite_header(w->f, &w->header_at);
        if (w->seekable) {
            unsigned char header[NPY_HEADER_SIZE];
            npy_header(header, 0, dim);
            fwrite(header, 1, sizeof header, w->f);
        }
    } else if (format != FORMAT_JSONL) {
        write_text(w->f, format, "id");
        for (size_t i = 0; i < dim; i++)
            fprintf(w->f, "%cd%zu", format == FORMAT_TSV ? '\t' : ',', i);
        fputc('\n', w->f);
    }
    *out = w;
    return CLI_EXIT_OK;
}

static bool hold_row(matrix_writer *w, const float *values)
{
    size_t used = (size_t)w->rows * w->dim;
    if (w->held_capacity - used < w->dim) {
        size_t capacity = w->held_capacity ? w->held_capacity : w->dim * 64;
        while (capacity - used < w->dim)
            if (__builtin_mul_overflow(capacity, 2, &capacity))
                return false;
        size_t bytes;
        if (__builtin_mul_overflow(capacity, sizeof(float), &bytes))
            return false;
        float *held = realloc(w->held, bytes);
        if (!held)
            return false;
        w->held = held;
        w->held_capacity = capacity;
    }
    memcpy(w->held + used, values, w->dim * sizeof(float));
    return true;
}

bool matrix_row(matrix_writer *w, const char *id, const float *values)
{
    switch (w->format) {
    case FORMAT_NPY:
        if (w->seekable) {
            fwrite(values, sizeof(float), w->dim, w->f);
        } else if (!hold_row(w, values)) {
            cli_error(output_name(w->out), "out of memory holding %llu rows for the NPY header "
                      "(write to a file instead of a pipe)", (unsigned long long)w->rows + 1);
            return false;
        }
        if (w->ids) {
            table_int(&w->ids_table, (int64_t)w->rows);
            table_str(&w->ids_table, id);
            table_end_row(&w->ids_table);
        }
        break;
    case FORMAT_JSONL:
        fputs("{\"id\": ", w->f);
        write_json_string(w->f, id);
        fputs(", ", w->f);
        write_json_string(w->f, w->vector_name);
        fputs(": [", w->f);
        for (size_t i = 0; i < w->dim; i++) {
            if (i)
                fputs(", ", w->f);
            write_number(w->f, w->format, values[i], true);
        }
        fputs("]}\n", w->f);
        break;
    default:
        write_text(w->f, w->format, id);
        for (size_t i = 0; i < w->dim; i++) {
            fputc(w->format == FORMAT_TSV ? '\t' : ',', w->f);
            write_number(w->f, w->format, values[i], true);
        }
        fputc('\n', w->f);
    }
    w->rows++;
    return true;
}

static void free_matrix(matrix_writer *w)
{
    free(w->held);
    free(w);
}

int matrix_finish(matrix_writer *w)
{
    if (w->format == FORMAT_NPY) {
        unsigned char header[NPY_HEADER_SIZE];
        npy_header(header, w->rows, w->dim);
        if (w->seekable) {
            off_t end = ftello(w->f);
            if (fseeko(w->f, w->header_at, SEEK_SET) == 0) {
                fwrite(header, 1, sizeof header, w->f);
                fseeko(w->f, end, SEEK_SET);
            } else {
                cli_error(output_name(w->out), "cannot rewrite the NPY header");
                matrix_abort(w);
                return CLI_EXIT_DATA;
            }
        } else {
            fwrite(header, 1, sizeof header, w->f);
            if (w->rows)
                fwrite(w->held, sizeof(float), (size_t)w->rows * w->dim, w->f);
        }
    }
    int rc = w->ids ? output_commit(w->ids) : CLI_EXIT_OK;
    free_matrix(w);
    return rc;
}

void matrix_abort(matrix_writer *w)
{
    if (w->ids)
        output_abort(w->ids);
    free_matrix(w);
}

/* ---- named tensors (safetensors) ---- */

typedef struct {
    char *json_name;   /* the name as a JSON string literal, quotes included */
    uint64_t rows, dim;
} staged_tensor;

struct tensor_writer {
    output *out;
    FILE *data;        /* the staged tensor data */
    staged_tensor *tensors;
    size_t n, capacity;
    uint64_t rows_left; /* of the current (last) tensor */
    bool open;         /* the last tensor is still receiving rows */
};

int tensor_writer_open(tensor_writer **out, output *o)
{
    *out = NULL;
    tensor_writer *w = calloc(1, sizeof *w);
    if (!w || !(w->data = tmpfile())) {
        cli_error(NULL, w ? "cannot create a temporary file for the tensors" : "out of memory");
        free(w);
        return CLI_EXIT_DATA;
    }
    w->out = o;
    *out = w;
    return CLI_EXIT_OK;
}

/* JSON-escaped, as it will stand in the header: names that differ only in invalid UTF-8 (both
 * written as U+FFFD) must count as the same. */
static char *json_literal(const char *s)
{
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    if (!f)
        return NULL;
    write_json_string(f, s);
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

const char *tensor_begin(tensor_writer *w, const char *name, uint64_t rows, uint64_t dim)
{
    assert(!w->open || w->rows_left == 0);
    w->open = false;
    char *literal = json_literal(name);
    if (!literal)
        return "out of memory";
    /* A linear search: the header lists every name anyway, and files hold thousands, not
     * millions, of records. */
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->tensors[i].json_name, literal) == 0) {
            free(literal);
            return "the id repeats an earlier record's (safetensors names must be unique)";
        }
    if (w->n == w->capacity) {
        size_t capacity = w->capacity ? 2 * w->capacity : 64;
        staged_tensor *t = realloc(w->tensors, capacity * sizeof *t);
        if (!t) {
            free(literal);
            return "out of memory";
        }
        w->tensors = t;
        w->capacity = capacity;
    }
    w->tensors[w->n++] = (staged_tensor){.json_name = literal, .rows = rows, .dim = dim};
    w->rows_left = rows;
    w->open = true;
    return NULL;
}

void tensor_rows(tensor_writer *w, const float *values, uint64_t n)
{
    assert(w->open && n <= w->rows_left);
    fwrite(values, sizeof(float), (size_t)(n * w->tensors[w->n - 1].dim), w->data);
    w->rows_left -= n;
}

static uint64_t tensor_bytes(const staged_tensor *t)
{
    return t->rows * t->dim * sizeof(float);
}

void tensor_cancel(tensor_writer *w)
{
    if (!w->open)
        return;
    staged_tensor *t = &w->tensors[--w->n];
    off_t back = (off_t)((t->rows - w->rows_left) * t->dim * sizeof(float));
    fseeko(w->data, -back, SEEK_CUR);
    free(t->json_name);
    w->open = false;
}

static void free_tensor_writer(tensor_writer *w)
{
    for (size_t i = 0; i < w->n; i++)
        free(w->tensors[i].json_name);
    free(w->tensors);
    if (w->data)
        fclose(w->data);
    free(w);
}

int tensor_writer_finish(tensor_writer *w)
{
    assert(!w->open || w->rows_left == 0);
    const char *name = output_name(w->out);
    char *header = NULL;
    size_t header_size = 0;
    FILE *h = open_memstream(&header, &header_size);
    uint64_t offset = 0;
    if (h) {
        fputc('{', h);
        for (size_t i = 0; i < w->n; i++) {
            const staged_tensor *t = &w->tensors[i];
            fprintf(h, "%s%s:{\"dtype\":\"F32\",\"shape\":[%" PRIu64 ",%" PRIu64
                    "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}",
                    i ? "," : "", t->json_name, t->rows, t->dim, offset, offset + tensor_bytes(t));
            offset += tensor_bytes(t);
        }
        fputc('}', h);
        /* Spaces pad the header so that the data starts 8-byte aligned, as the format advises. */
        while ((8 + ftello(h)) % 8)
            fputc(' ', h);
    }
    if (!h || fclose(h) != 0) {
        cli_error(name, "out of memory for the safetensors header");
        free(header);
        free_tensor_writer(w);
        return CLI_EXIT_DATA;
    }
    FILE *f = output_stream(w->out);
    unsigned char size_le[8];
    for (int i = 0; i < 8; i++)
        size_le[i] = (unsigned char)((uint64_t)header_size >> (8 * i));
    fwrite(size_le, 1, sizeof size_le, f);
    fwrite(header, 1, header_size, f);
    free(header);
    /* The staged data: a read error here is ours, not the output's, so it is reported here. */
    int rc = CLI_EXIT_OK;
    char buf[1 << 16];
    size_t got;
    if (fflush(w->data) != 0 || fseeko(w->data, 0, SEEK_SET) != 0)
        rc = CLI_EXIT_DATA;
    while (rc == CLI_EXIT_OK && offset > 0 && (got = fread(buf, 1, sizeof buf < offset ? sizeof buf : offset, w->data)) > 0) {
        fwrite(buf, 1, got, f);
        offset -= got;
    }
    if (rc != CLI_EXIT_OK || offset != 0) {
        cli_error(name, "cannot read back the staged tensors from the temporary file");
        rc = CLI_EXIT_DATA;
    }
    free_tensor_writer(w);
    return rc;
}

void tensor_writer_abort(tensor_writer *w)
{
    free_tensor_writer(w);
}
