/* The image programs' batch loop helpers: see batch.h. */
#include "batch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

bool batch_is_directory(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

const char *batch_input_name(const char *path)
{
    return strcmp(path, "-") == 0 ? "stdin" : path;
}

int batch_plan_make(batch_plan *plan, const char *out, char **operands, int n_operands,
                    bool per_input)
{
    static char *const stdin_only[] = {"-"};
    memset(plan, 0, sizeof *plan);
    plan->inputs = n_operands ? operands : (char **)stdin_only;
    plan->n_inputs = n_operands ? n_operands : 1;
    plan->out = out;
    plan->to_stdout = !out || strcmp(out, "-") == 0;
    if (!plan->to_stdout && !*out)
        return cli_usage_error("option -o: an empty name");
    plan->to_dir = !plan->to_stdout && (out[strlen(out) - 1] == '/' || batch_is_directory(out));
    if (per_input && plan->n_inputs > 1 && !plan->to_dir)
        return cli_usage_error("%d inputs need -o DIR (a directory, or a name ending in /)",
                               plan->n_inputs);
    /* Parallel runs (xargs -P) may race to create it. */
    if (plan->to_dir && mkdir(out, 0777) != 0 && !(errno == EEXIST && batch_is_directory(out))) {
        cli_error(out, "cannot create the directory: %s", strerror(errno));
        return CLI_EXIT_DATA;
    }
    return CLI_EXIT_OK;
}

char *batch_path_in_dir(const char *dir, const char *path, const char *ext)
{
    const char *base = batch_input_name(path);
    const char *slash = strrchr(base, '/');
    if (slash)
        base = slash + 1;
    size_t stem = strlen(base);
    const char *dot = strrchr(base, '.');
    if (dot && dot != base)
        stem = (size_t)(dot - base);
    size_t dlen = strlen(dir);
    bool has_slash = dlen && dir[dlen - 1] == '/';
    size_t size = dlen + 1 + stem + strlen(ext) + 1;
    char *p = malloc(size);
    if (p)
        snprintf(p, size, "%s%s%.*s%s", dir, has_slash ? "" : "/", (int)stem, base, ext);
    return p;
}

char *batch_target(const batch_plan *plan, const char *input, const char *ext, bool *failed)
{
    *failed = false;
    if (plan->to_stdout)
        return NULL;
    char *p = plan->to_dir ? batch_path_in_dir(plan->out, input, ext) : strdup(plan->out);
    if (!p) {
        cli_error(batch_input_name(input), "out of memory");
        *failed = true;
    }
    return p;
}

int batch_read_png(lr_ctx *ctx, const char *path, uint64_t max_pixels, image *img)
{
    bool is_stdin = strcmp(path, "-") == 0;
    memset(img, 0, sizeof *img);
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f) {
        cli_error(path, "%s", strerror(errno));
        return CLI_EXIT_DATA;
    }
    lr_status s = image_read_png(ctx, f, max_pixels, img);
    if (!is_stdin)
        fclose(f);
    if (s != LR_OK) {
        image_free(img);
        cli_report(ctx, s, batch_input_name(path));
        return CLI_EXIT_DATA;
    }
    return CLI_EXIT_OK;
}

void batch_write_npy_header(FILE *f, int ndim, const int *shape)
{
    char dict[200];
    int n = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    for (int i = 0; i < ndim && i < 4; i++)
        n += snprintf(dict + n, sizeof dict - (size_t)n, ndim == 1 ? "%d," : i ? ", %d" : "%d",
                      shape[i]);
    n += snprintf(dict + n, sizeof dict - (size_t)n, "), }");
    int total = 10 + n + 1, padded = (total + 63) / 64 * 64, header_len = padded - 10;
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fputc(header_len & 0xFF, f);
    fputc(header_len >> 8, f);
    fwrite(dict, 1, (size_t)n, f);
    for (int i = total; i < padded; i++)
        fputc(' ', f);
    fputc('\n', f);
}
