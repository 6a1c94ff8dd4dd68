/* sr-run's networks: every super-resolution model file becomes an sr_net that upscales one
 * image (or tile) in planar float form. The metadata's "arch" picks the implementation
 * (net.c's table); each lives in its own file. */
#ifndef SR_RUN_SR_H
#define SR_RUN_SR_H

#include "longrange/core.h"
#include "longrange/model.h"

typedef struct sr_net sr_net;
struct sr_net {
    const char *arch;   /* the metadata's "arch" */
    const char *name;   /* a short label for messages and --stats, e.g. "fsrcnn-x2" */
    int scale;          /* output pixels per input pixel along each axis */
    /* 1: the network sees the luma Y of full-range YCbCr (JPEG/OpenCV BT.601) and the program
     *    upscales Cb and Cr by bicubic; 3: it sees R, G, B. */
    int channels;
    /* Input pixels of context the network reads on each side of an output pixel's source
     * (its receptive-field radius): tiles overlapping by this much give the untiled result.
     * -1 when the network looks at the whole image (then --tile is approximate). */
    int context;
    /* in: [channels][h][w], values 0..1; out: [channels][h*scale][w*scale], unclamped (the
     * program clamps and quantises). Deterministic for any thread count. */
    lr_status (*forward)(lr_ctx *ctx, const sr_net *net, const float *in, int h, int w,
                         float *out);
    void (*close)(sr_net *net);
    void *impl;
    struct sr_scratch *scratch; /* set by sr_net_open: see sr_net_scratch */
};

/* n floats of the network's working memory, kept between calls and grown when needed, so that
 * tiles of one size reuse the same pages instead of faulting in fresh ones each time. NULL
 * when out of memory. One forward at a time per network. */
float *sr_net_scratch(const sr_net *net, size_t n);

/* Opens the network a model file describes (LR_ERR_MODEL with the reason if it is not a
 * super-resolution model, or a tensor or hyper-parameter is missing or mis-shaped). */
lr_status sr_net_open(lr_ctx *ctx, const lr_model *file, sr_net **out);
void sr_net_close(sr_net *net);

/* "dir/fsrcnn-x2.safetensors" -> "fsrcnn-x2": a network's name as the user chose it. */
void sr_net_label(const char *model_path, char *buf, size_t size);

/* One per architecture (net.c's table). */
lr_status bicubic_net_open(lr_ctx *ctx, const lr_model *file, sr_net **out);
lr_status fsrcnn_net_open(lr_ctx *ctx, const lr_model *file, sr_net **out);
lr_status espcn_net_open(lr_ctx *ctx, const lr_model *file, sr_net **out);
lr_status rdn_net_open(lr_ctx *ctx, const lr_model *file, sr_net **out);
lr_status srvgg_net_open(lr_ctx *ctx, const lr_model *file, sr_net **out);
lr_status catanet_net_open(lr_ctx *ctx, const lr_model *file, sr_net **out);

#endif
