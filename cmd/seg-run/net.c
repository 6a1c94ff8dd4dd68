/* seg_net_open: the model file's metadata "arch" picks the network (one file each). */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

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

struct seg_labels {
    char *names_text; /* class_names, split in place */
    const char **names;
    unsigned char *palette;
};

static void labels_free(struct seg_labels *l)
{
    if (l) {
        free(l->names_text);
        free(l->names);
        free(l->palette);
    }
    free(l);
}

/* The metadata's class_names and palette for a network of `classes` classes. */
static lr_status labels_read(lr_ctx *ctx, const lr_model *file, int classes,
                             struct seg_labels **out)
{
    struct seg_labels *l = calloc(1, sizeof *l);
    *out = l;
    if (!l)
        return lr_fail(ctx, LR_ERR_NOMEM, "out of memory");
    const char *names = lr_model_meta(file, "class_names");
    if (names) {
        l->names_text = strdup(names);
        l->names = calloc((size_t)classes, sizeof *l->names);
        if (!l->names_text || !l->names)
            return lr_fail(ctx, LR_ERR_NOMEM, "out of memory");
        int n = 0;
        char *save = NULL;
        for (char *tok = strtok_r(l->names_text, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
            if (n++ < classes)
                l->names[n - 1] = tok;
        if (n != classes)
            return lr_fail(ctx, LR_ERR_MODEL, "%s: class_names names %d classes, the network has %d",
                           lr_model_path(file), n, classes);
    }
    const char *palette = lr_model_meta(file, "palette");
    if (palette) {
        if (!(l->palette = malloc((size_t)classes * 3)))
            return lr_fail(ctx, LR_ERR_NOMEM, "out of memory");
        const char *c = palette;
        for (int i = 0; i < 3 * classes; i++) {
            char *end;
            long v = strtol(c, &end, 10);
            if (end == c || v < 0 || v > 255 || (i + 1 < 3 * classes ? *end != ',' : *end != '\0'))
                return lr_fail(ctx, LR_ERR_MODEL, "%s: palette must be %d values 0..255, "
                               "comma-separated", lr_model_path(file), 3 * classes);
            l->palette[i] = (unsigned char)v;
            c = end + 1;
        }
    }
    return LR_OK;
}

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
        if ((s = labels_read(ctx, file, n->classes, &(*out)->labels)) != LR_OK) {
            seg_net_close(*out);
            *out = NULL;
            return s;
        }
        if (!n->class_names)
            (*out)->class_names = (*out)->labels->names;
        if (!n->palette)
            (*out)->palette = (*out)->labels->palette;
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
    if (!net)
        return;
    struct seg_labels *labels = net->labels;
    if (net->close)
        net->close(net);
    labels_free(labels);
}

void *seg_alloc_large(size_t bytes)
{
    const size_t huge = (size_t)2 << 20;
    if (bytes < 4 * huge)
        return malloc(bytes);
    const size_t rounded = (bytes + huge - 1) / huge * huge;
    void *p = aligned_alloc(huge, rounded);
    if (p)
        madvise(p, rounded, MADV_HUGEPAGE);
    return p;
}
