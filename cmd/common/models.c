/* Opening the programs' models and listing what is in them (see models.h). */
#include "models.h"

#include <string.h>

#include "embed.h"
#include "output.h"
#include "writers.h"

int cli_open_model(lr_ctx *ctx, const char *spec, lr_model **out)
{
    *out = NULL;
    const cli_embedded_model *builtin = lr_embedded_models, *e = NULL;
    if (!spec) {
        if (!builtin[0].name)
            return cli_usage_error("no model given and none is built in (use -m FILE)");
        e = &builtin[0];
    }
    /* A built-in name wins over a file of the same name; "./NAME" reaches the file. */
    for (const cli_embedded_model *b = builtin; !e && b->name; b++)
        if (strcmp(b->name, spec) == 0)
            e = b;
    lr_status s = e ? lr_model_open_memory(ctx, e->name, e->data, e->size, out)
                    : lr_model_open(ctx, spec, out);
    if (s != LR_OK) {
        /* Whatever went wrong (missing file, bad header, no memory for it), the model given is
         * what cannot be used. */
        cli_report(ctx, s, e ? e->name : spec);
        return CLI_EXIT_MODEL;
    }
    return CLI_EXIT_OK;
}

/* Metadata values may hold JSON source text spanning lines; a listing keeps one per line, a
 * line break and the indentation after it becoming one space. */
static void print_one_line(FILE *f, const char *s)
{
    while (*s) {
        if (*s == '\n' || *s == '\r' || *s == '\t') {
            fputc(' ', f);
            s += strspn(s, "\n\r\t ");
        } else {
            fputc(*s++, f);
        }
    }
}

/* Columns on a terminal: UTF-8 continuation bytes take none. */
static int text_width(const char *s)
{
    int width = 0;
    for (; *s; s++)
        width += ((unsigned char)*s & 0xC0) != 0x80;
    return width;
}

void model_print_text(FILE *f, const lr_model *m)
{
    fprintf(f, "model: ");
    print_one_line(f, lr_model_path(m));
    fputc('\n', f);

    size_t n_meta = lr_model_meta_count(m);
    fprintf(f, "metadata:%s\n", n_meta ? "" : " none");
    for (size_t i = 0; i < n_meta; i++) {
        const char *key, *value;
        lr_model_meta_at(m, i, &key, &value);
        fputs("  ", f);
        print_one_line(f, key);
        fputs(": ", f);
        print_one_line(f, value);
        fputc('\n', f);
    }

    /* Column widths first, so that the table lines up. */
    size_t n = lr_model_tensor_count(m), total = 0;
    int name_w = (int)strlen("name"), dtype_w = (int)strlen("dtype");
    int shape_w = (int)strlen("shape");
    char shape[256];
    for (size_t i = 0; i < n; i++) {
        const lr_model_tensor *t = lr_model_tensor_at(m, i);
        int len = text_width(t->name);
        name_w = len > name_w ? len : name_w;
        len = (int)strlen(t->dtype_name);
        dtype_w = len > dtype_w ? len : dtype_w;
        len = (int)strlen(lr_shape_str(t->ndim, t->shape, shape, sizeof shape));
        shape_w = len > shape_w ? len : shape_w;
        total += t->nbytes;
    }
    fprintf(f, "tensors: %zu, %zu bytes\n", n, total);
    fprintf(f, "  %-*s  %-*s  %-*s  %s\n", name_w, "name", dtype_w, "dtype", shape_w, "shape",
            "bytes");
    for (size_t i = 0; i < n; i++) {
        const lr_model_tensor *t = lr_model_tensor_at(m, i);
        fputs("  ", f);
        print_one_line(f, t->name);
        fprintf(f, "%*s  %-*s  %-*s  %zu\n", name_w - text_width(t->name), "", dtype_w,
                t->dtype_name, shape_w, lr_shape_str(t->ndim, t->shape, shape, sizeof shape),
                t->nbytes);
    }
}

void model_print_json(FILE *f, const lr_model *m)
{
    fputs("{\"model\": ", f);
    write_json_string(f, lr_model_path(m));
    fputs(", \"metadata\": {", f);
    for (size_t i = 0; i < lr_model_meta_count(m); i++) {
        const char *key, *value;
        lr_model_meta_at(m, i, &key, &value);
        fputs(i ? ", " : "", f);
        write_json_string(f, key);
        fputs(": ", f);
        write_json_string(f, value);
    }
    fputs("}, \"tensors\": [", f);
    size_t total = 0;
    for (size_t i = 0; i < lr_model_tensor_count(m); i++) {
        const lr_model_tensor *t = lr_model_tensor_at(m, i);
        fputs(i ? ", {\"name\": " : "{\"name\": ", f);
        write_json_string(f, t->name);
        fputs(", \"dtype\": ", f);
        write_json_string(f, t->dtype_name);
        fputs(", \"shape\": [", f);
        for (int d = 0; d < t->ndim; d++)
            fprintf(f, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
        fprintf(f, "], \"bytes\": %zu}", t->nbytes);
        total += t->nbytes;
    }
    fprintf(f, "], \"total_bytes\": %zu}\n", total);
}

int cli_dump_model(const cli_args *args, const lr_model *m)
{
    output *o;
    int rc = output_open(args->output, false, false, &o);
    if (rc != CLI_EXIT_OK)
        return rc;
    model_print_text(output_stream(o), m);
    return output_commit(o);
}
