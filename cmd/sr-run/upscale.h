/* sr-run's pipeline around a network: colour handling, tiles, and output in row bands.
 *
 * An image of any colour class goes in; the result has the same channels (grey 1, grey+alpha 2,
 * RGB 3, RGBA 4) at scale times the size, unclamped except alpha:
 *  - RGB nets (channels 3) see R, G, B; a grey image is replicated into the three and the
 *    result turned back into grey with the BT.601 luma weights 0.299, 0.587, 0.114.
 *  - Luma nets (channels 1) see a grey plane as it is, or the Y of full-range YCbCr
 *    (image_rgb_to_ycbcr); Cb and Cr are upscaled by bicubic (a = -0.5) and the result turned
 *    back into RGB.
 *  - Alpha is upscaled by bicubic (a = -0.5) on its own and clamped to 0..1 (bicubic
 *    overshoots at hard edges; a coverage outside 0..1 means nothing).
 *
 * Tiles: the input is cut into tiles of `tile` x `tile` pixels (0: one tile, the whole image).
 * Each is run with `pad` pixels of real neighbouring image on every side where the image has
 * them (at the true border the network sees the border exactly as untiled, with its own
 * padding), and the part of the result that belongs to the tile is kept. With pad at least the
 * network's context the result equals the untiled one. The bicubic planes need 2 pixels of
 * context, so tiles get at least that much when there are any.
 *
 * Output goes out as bands of whole rows, one row of tiles at a time, in planar floats
 * [channels][rows][width * scale], top to bottom: the full result never has to exist. */
#ifndef SR_RUN_UPSCALE_H
#define SR_RUN_UPSCALE_H

#include "image.h"
#include "sr.h"

/* Receives the next rows of the result; a status other than LR_OK stops the run. */
typedef lr_status (*sr_rows_fn)(lr_ctx *ctx, void *user, const float *planes, int rows);

typedef struct {
    const sr_net *net;
    int tile; /* input pixels per tile side; 0: untiled */
    int pad;  /* context pixels around a tile */
} sr_tiling;

/* Runs img through the network, handing the result to sink in bands. LR_ERR_DATA when the
 * output would exceed PNG's dimensions; the network's errors as it reports them. */
lr_status sr_upscale(lr_ctx *ctx, const sr_tiling *t, const image *img, sr_rows_fn sink,
                     void *user);

/* A sink that fills a whole planar buffer [channels][height * scale][width * scale] (user: a
 * sr_full_output whose rows_done starts at 0). */
typedef struct {
    float *planes;
    int channels;
    int height, width; /* of the result */
    int rows_done;
} sr_full_output;
lr_status sr_full_output_rows(lr_ctx *ctx, void *user, const float *planes, int rows);

/* The weight-free bicubic network at a given scale (eval's baseline; bicubic.c). */
lr_status bicubic_net_create(lr_ctx *ctx, int scale, sr_net **out);

#endif
