/* seg-run's networks: every segmentation model file becomes a seg_net that maps one RGB image
 * (already resized by the program to the size the network wants) to per-class scores. The
 * metadata's "arch" picks the implementation (net.c's table); each lives in its own file. */
#ifndef SEG_RUN_SEG_H
#define SEG_RUN_SEG_H

#include "longrange/core.h"
#include "longrange/model.h"

typedef struct seg_net seg_net;
struct seg_net {
    const char *arch;   /* the metadata's "arch" */
    const char *name;   /* a short label for messages and --stats, e.g. "selfie" */
    /* The input size the network was trained at (MediaPipe selfie: 256x256 or 256 wide x 144
     * high): the program stretches (or letterboxes) the image to it. 0 x 0: any size (the
     * program resizes the short side to --size and the network pads as it needs). */
    int in_width, in_height;
    /* 1: one foreground logit per pixel (probability = sigmoid); > 1: class logits (label =
     * argmax, probability = softmax). */
    int classes;
    const char *const *class_names; /* classes names, or NULL ("class0", ...) */
    const unsigned char *palette;   /* classes x RGB for --format label, or NULL */
    /* Output size for an h x w input (the logits' resolution; the program resizes the
     * probabilities back to the image by half-pixel bilinear interpolation). */
    void (*out_size)(const seg_net *net, int h, int w, int *out_h, int *out_w);
    /* in: [3][h][w] RGB 0..1; out: [classes][out_h][out_w] logits. Deterministic for any
     * thread count. */
    lr_status (*forward)(lr_ctx *ctx, const seg_net *net, const float *in, int h, int w,
                         float *out);
    void (*close)(seg_net *net);
    void *impl;
    struct seg_labels *labels; /* set by seg_net_open: class_names and palette from metadata */
};

/* Opens the network a model file describes (LR_ERR_MODEL with the reason when it is not a
 * segmentation model, or a tensor or hyper-parameter is missing or mis-shaped). For every
 * network, optional metadata names the classes for --format label and colours them:
 *   "class_names"  comma-separated, one per class;
 *   "palette"      comma-separated r,g,b values 0..255, three per class. */
lr_status seg_net_open(lr_ctx *ctx, const lr_model *file, seg_net **out);
void seg_net_close(seg_net *net);

/* Memory for large feature maps, on huge pages where the kernel allows (a hint only: every
 * fresh 4 KiB page costs a fault, and a first image's maps are a hundred MB at 512x512).
 * Free with free(). */
void *seg_alloc_large(size_t bytes);

/* One per architecture (net.c's table). */
lr_status selfie_net_open(lr_ctx *ctx, const lr_model *file, seg_net **out);
lr_status van_net_open(lr_ctx *ctx, const lr_model *file, seg_net **out);
lr_status dinat_net_open(lr_ctx *ctx, const lr_model *file, seg_net **out);

#endif
