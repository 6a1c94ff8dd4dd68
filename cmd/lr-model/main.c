/* lr-model: prints what model files hold (metadata and tensors) and checks their architecture.
 * Every argument is examined even after a bad one; the exit status is the worst seen. */
#include <string.h>

#include "cli.h"
#include "models.h"
#include "output.h"

typedef struct {
    const char *arch; /* --check */
} lr_model_options;

static bool set_check(const cli_option *opt, const char *arg, void *user)
{
    ((lr_model_options *)user)->arch = arg;
    return true;
}

/* Lists one model, or reports why it is unusable; returns its exit status. */
static int list_model(lr_ctx *ctx, const char *path, const cli_args *args,
                      const lr_model_options *own, FILE *f, bool first)
{
    lr_model *m;
    int rc = cli_open_model(ctx, path, &m);
    if (rc != CLI_EXIT_OK)
        return rc;
    lr_status s = own->arch ? lr_model_expect_arch(ctx, m, own->arch) : LR_OK;
    if (s != LR_OK) {
        rc = cli_report(ctx, s, path);
    } else if (strcmp(args->format, "json") == 0) {
        model_print_json(f, m);
    } else {
        if (!first)
            fputc('\n', f);
        model_print_text(f, m);
    }
    lr_model_close(m);
    return rc;
}

int main(int argc, char **argv)
{
    static const char *const formats[] = {"text", "json", NULL};
    lr_model_options own = {NULL};
    const cli_option options[] = {
        {"check", 0, "ARCH", "exit with status 3 unless the architecture is ARCH", set_check},
        {NULL, 0, NULL, NULL, NULL},
    };
    const cli_program program = {
        .name = "lr-model",
        .synopsis = "[OPTIONS] MODEL...",
        .description = "Print what model files hold: metadata and tensors.",
        .formats = formats,
        .omit = CLI_OMIT_MODEL | CLI_OMIT_THREADS | CLI_OMIT_SEED | CLI_OMIT_PROGRESS |
                CLI_OMIT_FORCE,
        .options = options,
        .user = &own,
    };
    cli_args args;
    int rc = cli_parse(&program, argc, argv, &args);
    if (rc != CLI_PROCEED)
        return rc;
    if (args.n_operands == 0)
        return cli_usage_error("no model given");

    args.threads = 1; /* listing computes nothing: no thread pool */
    lr_ctx *ctx;
    if ((rc = cli_context(&args, &ctx)) != CLI_EXIT_OK)
        return rc;
    output *out;
    if ((rc = output_open(args.output, false, false, &out)) != CLI_EXIT_OK) {
        lr_ctx_destroy(ctx);
        return rc;
    }
    int worst = CLI_EXIT_OK, listed = 0;
    for (int i = 0; i < args.n_operands; i++) {
        rc = list_model(ctx, args.operands[i], &args, &own, output_stream(out), listed == 0);
        if (rc == CLI_EXIT_OK)
            listed++;
        else if (rc > worst)
            worst = rc;
    }
    /* A run with a bad model leaves no -o file behind, as any failed run. */
    if (worst == CLI_EXIT_OK)
        worst = output_commit(out);
    else
        output_abort(out);
    lr_ctx_destroy(ctx);
    return worst;
}
