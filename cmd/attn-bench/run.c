/* attn-bench run: one kernel on the tensors q, k, v (and the optional bias and key_padding) of
 * a safetensors file; the result is written as the tensor "out" of a safetensors file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attn_bench.h"
#include "models.h"
#include "output.h"

/* Checks the tensors against each other and fills the case; an exit status on failure. */
static int read_inputs(lr_ctx *ctx, const lr_model *m, const char *path, attn_case *c,
                       lr_tensor *q, lr_tensor *k, lr_tensor *v, lr_tensor *bias,
                       lr_tensor *padding)
{
    const lr_model_tensor *found = lr_model_find(m, "q");
    lr_dtype dtype = found && found->dtype == LR_BF16 ? LR_BF16 : LR_F32;
    lr_status s = lr_model_get(ctx, m, "q", dtype, 4, NULL, q);
    if (s != LR_OK)
        return cli_report(ctx, s, path);
    c->dtype = dtype;
    c->B = q->shape[0];
    c->Hq = q->shape[1];
    c->Lq = q->shape[2];
    c->D = q->shape[3];
    const int64_t k_shape[4] = {c->B, -1, -1, c->D};
    if ((s = lr_model_get(ctx, m, "k", dtype, 4, k_shape, k)) != LR_OK)
        return cli_report(ctx, s, path);
    c->Hkv = k->shape[1];
    c->Lk = k->shape[2];
    const int64_t v_shape[4] = {c->B, c->Hkv, c->Lk, -1};
    if ((s = lr_model_get(ctx, m, "v", dtype, 4, v_shape, v)) != LR_OK)
        return cli_report(ctx, s, path);
    if (c->Hkv == 0 || c->Hq % c->Hkv != 0) {
        cli_error(path, "tensor 'k': its %lld heads do not divide the %lld heads of 'q'",
                  (long long)c->Hkv, (long long)c->Hq);
        return CLI_EXIT_MODEL;
    }

    if (lr_model_find(m, "bias")) {
        const int64_t bias_shape[4] = {-1, -1, c->Lq, c->Lk};
        if ((s = lr_model_get(ctx, m, "bias", LR_F32, 4, bias_shape, bias)) != LR_OK)
            return cli_report(ctx, s, path);
        if ((bias->shape[0] != 1 && bias->shape[0] != c->B) ||
            (bias->shape[1] != 1 && bias->shape[1] != c->Hq)) {
            cli_error(path, "tensor 'bias': expected shape [1 or %lld, 1 or %lld, %lld, %lld]",
                      (long long)c->B, (long long)c->Hq, (long long)c->Lq, (long long)c->Lk);
            return CLI_EXIT_MODEL;
        }
        c->bias = bias;
    }

    found = lr_model_find(m, "key_padding");
    if (found) {
        const int64_t padding_shape[2] = {c->B, c->Lk};
        /* PyTorch saves boolean masks as BOOL: one byte each, as U8. */
        if (strcmp(found->dtype_name, "BOOL") == 0 && found->ndim == 2 &&
            found->shape[0] == c->B && found->shape[1] == c->Lk) {
            *padding = lr_tensor_from((void *)found->data, LR_U8, 2, padding_shape);
        } else if ((s = lr_model_get(ctx, m, "key_padding", LR_U8, 2, padding_shape,
                                     padding)) != LR_OK) {
            return cli_report(ctx, s, path);
        }
        c->key_padding = padding;
    }
    return CLI_EXIT_OK;
}

/* stdout, a FIFO or a device: lr_safetensors_write needs a directory entry it can replace,
 * so the file is made in a private temporary directory and copied. */
static int write_stream(lr_ctx *ctx, output *o, const char *const *meta,
                        const lr_named_tensor *tensor)
{
    const char *tmpdir = getenv("TMPDIR");
    char dir[4096], path[4200];
    snprintf(dir, sizeof dir, "%s/attn-bench.XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    if (!mkdtemp(dir)) {
        cli_error(dir, "cannot create a temporary directory");
        return CLI_EXIT_DATA;
    }
    snprintf(path, sizeof path, "%s/out.safetensors", dir);
    int rc = CLI_EXIT_OK;
    lr_status s = lr_safetensors_write(ctx, path, meta, tensor, 1);
    FILE *in = s == LR_OK ? fopen(path, "rb") : NULL;
    if (s != LR_OK) {
        rc = cli_report(ctx, s, NULL);
    } else if (!in) {
        cli_error(path, "cannot read back");
        rc = CLI_EXIT_DATA;
    } else {
        char buf[1 << 16];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, in)) > 0)
            fwrite(buf, 1, n, output_stream(o));
        fclose(in); /* a write error shows in output_commit */
    }
    unlink(path);
    rmdir(dir);
    if (rc != CLI_EXIT_OK) {
        output_abort(o);
        return rc;
    }
    return output_commit(o);
}

int run_main(const cli_args *args, const attn_options *opt)
{
    if (opt->n_kernels > 1 || opt->n_patterns > 1)
        return cli_usage_error("run takes one kernel and one pattern");
    const attn_kernel *kernel = opt->n_kernels ? opt->kernels[0] : kernel_find("flash");
    if (!args->model)
        return cli_usage_error("run needs -m FILE, a safetensors file with tensors q, k and v");

    /* Where the output goes is settled first: no computing for a refused terminal. */
    const char *target = args->output && strcmp(args->output, "-") != 0 ? args->output : NULL;
    struct stat st;
    bool replace_file = target && (stat(target, &st) != 0 || S_ISREG(st.st_mode));
    output *o = NULL;
    int rc;
    if (!replace_file && !args->dump_model &&
        (rc = output_open(args->output, true, args->force, &o)) != CLI_EXIT_OK)
        return rc;

    lr_ctx *ctx = NULL;
    lr_model *m = NULL;
    if ((rc = cli_context(args, &ctx)) == CLI_EXIT_OK)
        rc = cli_open_model(ctx, args->model, &m);
    if (rc == CLI_EXIT_OK && args->dump_model) {
        rc = cli_dump_model(args, m);
        lr_model_close(m);
        lr_ctx_destroy(ctx);
        return rc;
    }

    attn_case c = {.window = opt->window, .sinks = opt->sinks, .scale = opt->scale};
    lr_tensor q, k, v, bias, padding, out = {0};
    if (rc == CLI_EXIT_OK)
        rc = read_inputs(ctx, m, args->model, &c, &q, &k, &v, &bias, &padding);
    if (rc == CLI_EXIT_OK) {
        /* Self or cross follows from the shapes; the option only adds whether it is causal. */
        attn_pattern asked = opt->n_patterns ? opt->patterns[0] : PATTERN_SELF;
        bool causal = pattern_is_causal(asked), cross = c.Lq != c.Lk;
        if (opt->n_patterns && !pattern_is_cross(asked) && cross)
            rc = cli_usage_error("pattern %s needs q and k of the same length (q has %lld, k "
                                 "%lld); use %s", pattern_names[asked], (long long)c.Lq,
                                 (long long)c.Lk, causal ? "causal-cross" : "cross");
        c.pattern = causal ? (cross ? PATTERN_CAUSAL_CROSS : PATTERN_CAUSAL)
                           : (cross ? PATTERN_CROSS : PATTERN_SELF);
    }
    if (rc == CLI_EXIT_OK && !(kernel->patterns & (1u << c.pattern)))
        rc = cli_usage_error("kernel %s does not run pattern %s", kernel->name,
                             pattern_names[c.pattern]);
    if (rc == CLI_EXIT_OK) {
        const int64_t out_shape[4] = {c.B, c.Hq, c.Lq, v.shape[3]};
        lr_status s = tensor_zeros(ctx, 4, out_shape, LR_F32, &out);
        if (s == LR_OK)
            s = kernel->run(ctx, &c, &q, &k, &v, &out);
        if (s != LR_OK)
            rc = cli_report(ctx, s, NULL);
    }
    if (rc == CLI_EXIT_OK) {
        char window[32], sinks[32];
        snprintf(window, sizeof window, "%lld", (long long)c.window);
        snprintf(sinks, sizeof sinks, "%lld", (long long)c.sinks);
        const char *meta[] = {"producer", "attn-bench", "kernel", kernel->name,
                              "pattern", pattern_names[c.pattern],
                              kernel->uses_window ? "window" : NULL, window, "sinks", sinks,
                              NULL};
        const lr_named_tensor result = {"out", out};
        if (replace_file) {
            lr_status s = lr_safetensors_write(ctx, target, meta, &result, 1);
            rc = s == LR_OK ? CLI_EXIT_OK : cli_report(ctx, s, NULL);
        } else {
            rc = write_stream(ctx, o, meta, &result);
            o = NULL;
        }
    }
    if (o)
        output_abort(o);
    free(out.data);
    if (m)
        lr_model_close(m);
    if (ctx)
        lr_ctx_destroy(ctx);
    return rc;
}
