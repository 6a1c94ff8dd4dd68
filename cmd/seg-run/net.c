/* seg_net_open: the model file's metadata "arch" picks the network (one file each). */
#include <string.h>

#include "seg.h"

/* The test network of pointwise.c (declared here: seg.h lists the real architectures). */
lr_status pointwise_net_open(lr_ctx *ctx, const lr_model *file, seg_net **out);

typedef lr_status (*net_open_fn)(lr_ctx *ctx, const lr_model *file, seg_net **out);

static const struct {
    const char *arch;
    net_open_fn open;
} architectures[] = {
    {"pointwise", pointwise_net_open},
    /* networks of other files: one line each */
    {"van-fpn", van_net_open},
    {"dinat-fpn", dinat_net_open},
    {"mediapipe-selfie", selfie_net_open},
    {NULL, NULL}, /* the end (the table may otherwise be empty) */
};

lr_status seg_net_open(lr_ctx *ctx, const lr_model *file, seg_net **out)
{
    *out = NULL;
    const char *arch = lr_model_meta(file, "arch");
    if (!arch)
        arch = lr_model_meta(file, "model_type"); /* a Hugging Face config.json */
    if (!arch)
        return lr_fail(ctx, LR_ERR_MODEL, "%s: not a segmentation model (no \"arch\" in its "
                       "metadata)", lr_model_path(file));
    for (size_t i = 0; architectures[i].arch; i++) {
        if (strcmp(architectures[i].arch, arch) != 0)
            continue;
        lr_status s = architectures[i].open(ctx, file, out);
        if (s != LR_OK)
            return s;
        const seg_net *n = *out;
        /* What the program relies on, checked once for every network. */
        if (n->classes < 1 || n->classes > 256 || n->in_width < 0 || n->in_height < 0 ||
            (n->in_width == 0) != (n->in_height == 0) || !n->forward || !n->out_size) {
            seg_net_close(*out);
            *out = NULL;
            return lr_fail(ctx, LR_ERR_INTERNAL, "%s: arch '%s' opened an inconsistent network",
                           lr_model_path(file), arch);
        }
        if (!n->arch)
            (*out)->arch = architectures[i].arch;
        if (!n->name)
            (*out)->name = n->arch;
        return LR_OK;
    }
    return lr_fail(ctx, LR_ERR_MODEL, "%s: not a segmentation model (arch '%s')",
                   lr_model_path(file), arch);
}

void seg_net_close(seg_net *net)
{
    if (net && net->close)
        net->close(net);
}
