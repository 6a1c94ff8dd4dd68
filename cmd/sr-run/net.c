/* sr_net_open: the model file's metadata "arch" picks the network (one file each). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sr.h"

struct sr_scratch {
    float *data;
    size_t n;
};

typedef lr_status (*net_open_fn)(lr_ctx *ctx, const lr_model *file, sr_net **out);

static const struct {
    const char *arch;
    net_open_fn open;
} architectures[] = {
    {"bicubic", bicubic_net_open},
    /* networks of other files: one line each */
    {"fsrcnn", fsrcnn_net_open},
    {"espcn", espcn_net_open},
    {"catanet", catanet_net_open},
    {"srvgg", srvgg_net_open},
    {"esrgan-slim", rdn_net_open},
};

lr_status sr_net_open(lr_ctx *ctx, const lr_model *file, sr_net **out)
{
    *out = NULL;
    const char *arch = lr_model_meta(file, "arch");
    if (!arch)
        arch = lr_model_meta(file, "model_type"); /* a Hugging Face config.json */
    if (!arch)
        return lr_fail(ctx, LR_ERR_MODEL, "%s: not a super-resolution model (no \"arch\" in its "
                       "metadata)", lr_model_path(file));
    for (size_t i = 0; i < sizeof architectures / sizeof architectures[0]; i++) {
        if (strcmp(architectures[i].arch, arch) != 0)
            continue;
        lr_status s = architectures[i].open(ctx, file, out);
        if (s != LR_OK)
            return s;
        const sr_net *n = *out;
        /* What the program relies on, checked once for every network. */
        if (n->scale < 1 || (n->channels != 1 && n->channels != 3) || n->context < -1 ||
            !n->forward) {
            sr_net_close(*out);
            *out = NULL;
            return lr_fail(ctx, LR_ERR_INTERNAL, "%s: arch '%s' opened an inconsistent network",
                           lr_model_path(file), arch);
        }
        if (!n->name)
            (*out)->name = n->arch ? n->arch : arch;
        if (!((*out)->scratch = calloc(1, sizeof *(*out)->scratch))) {
            sr_net_close(*out);
            *out = NULL;
            return lr_fail(ctx, LR_ERR_NOMEM, "out of memory");
        }
        return LR_OK;
    }
    return lr_fail(ctx, LR_ERR_MODEL, "%s: not a super-resolution model (arch '%s')",
                   lr_model_path(file), arch);
}

float *sr_net_scratch(const sr_net *net, size_t n)
{
    struct sr_scratch *s = net->scratch;
    if (n > s->n) {
        free(s->data);
        s->n = 0;
        if (n > SIZE_MAX / sizeof(float) || !(s->data = malloc(n * sizeof(float))))
            return NULL;
        s->n = n;
    }
    return s->data;
}

void sr_net_close(sr_net *net)
{
    if (!net)
        return;
    struct sr_scratch *scratch = net->scratch;
    if (net->close)
        net->close(net);
    if (scratch)
        free(scratch->data);
    free(scratch);
}

void sr_net_label(const char *model_path, char *buf, size_t size)
{
    const char *base = strrchr(model_path, '/');
    snprintf(buf, size, "%s", base ? base + 1 : model_path);
    char *dot = strstr(buf, ".safetensors");
    if (dot)
        *dot = '\0';
}
