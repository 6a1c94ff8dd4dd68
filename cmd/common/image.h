/* Images for the image programs (sr-run, seg-run): PNG in and out through libpng, in a planar
 * float form, with the colour chunks kept so that an output looks like its input.
 *
 * Reading accepts every PNG libpng reads: bit depths 1-16, grey, grey+alpha, RGB, RGBA, palette
 * (with tRNS), Adam7 interlaced. Pixels become floats 0..1 (value / (2^depth - 1)), planar
 * [channels][height][width]:
 *     grey 1, grey+alpha 2, RGB 3, RGBA 4 (palette -> RGB, or RGBA when it has tRNS; grey or RGB
 *     with a tRNS colour key -> with alpha).
 * bit_depth is the depth an output of this image is written at: 16 for 16-bit inputs, else 8.
 * The chunks gAMA, cHRM, sRGB and iCCP are kept verbatim and written back: taken raw from the
 * file (libpng derives no gAMA from sRGB and judges no profile), the first of each kind before
 * IDAT, ignored when malformed (wrong length, iCCP that does not inflate or inflates past
 * 16 MiB); iCCP is held inflated. Every other ancillary chunk but tRNS is skipped unread.
 * Memory: the float image, plus one row of bytes (or, for Adam7 input, the whole image in
 * bytes, which libpng needs to deinterlace).
 *
 * Hostile input: the signature, the IHDR (dimensions 1..2^31-1, valid type/depth) and the
 * pixel count against max_pixels are checked before any pixel memory is allocated; CRC errors
 * in critical chunks, truncation (IEND missing included) and inflate errors are errors (never
 * a half image). An ancillary chunk with a bad CRC is dropped and the image still reads; bytes
 * after IEND are ignored. Errors are one line via lr_fail on ctx, and nothing is printed:
 * LR_ERR_DATA for a bad or truncated PNG ("not a PNG file", "truncated PNG (IDAT)", "CRC error
 * in chunk IDAT" (also when the damage first shows as an inflate error), "bad PNG header:
 * Image width is zero in IHDR", "bad PNG: <libpng's reason>"), LR_ERR_NOMEM when width*height
 * exceeds max_pixels ("image is 40000x30000 = 1200000000 pixels, more than --max-pixels
 * 100000000") or memory runs out, LR_ERR_IO for read/write errors. On error *img is left
 * empty (zeroed). The caller adds the file name. */
#ifndef CLI_IMAGE_H
#define CLI_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "longrange/core.h"

typedef struct {
    int width, height;
    int channels;     /* 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA */
    int bit_depth;    /* 8 or 16 */
    float *pixels;    /* [channels][height][width], 0..1 */
    /* Colour chunks as read (written back unchanged). */
    bool has_gama;
    uint32_t gama;    /* gamma * 100000, as stored */
    bool has_chrm;
    uint32_t chrm[8]; /* white x, y, red x, y, green x, y, blue x, y, each * 100000 */
    bool has_srgb;
    int srgb_intent;
    char *iccp_name;  /* NULL when there is no iCCP */
    unsigned char *iccp_profile;
    uint32_t iccp_length;
} image;

/* A zeroed image (no chunks) with pixels allocated; LR_ERR_NOMEM on overflow or no memory. */
lr_status image_alloc(lr_ctx *ctx, image *img, int width, int height, int channels,
                      int bit_depth);
/* Copies the colour chunks of src into dst (replacing dst's). */
lr_status image_copy_chunks(lr_ctx *ctx, image *dst, const image *src);
void image_free(image *img);

/* max_pixels 0: no limit beyond what memory allows. */
lr_status image_read_png(lr_ctx *ctx, FILE *f, uint64_t max_pixels, image *img);
lr_status image_read_png_memory(lr_ctx *ctx, const void *data, size_t size,
                                uint64_t max_pixels, image *img);
/* Writes img as PNG: grey (1), grey+alpha (2), RGB (3) or RGBA (4) at img->bit_depth, values
 * clamped to 0..1 and rounded to nearest, with img's colour chunks; zlib level 3 (fast). */
lr_status image_write_png(lr_ctx *ctx, FILE *f, const image *img);

/* Row-streaming PNG output, so that a large result never has to exist whole: the header
 * (width, height, channels, bit_depth and colour chunks) comes from `like` (its pixels are not
 * used), then rows top to bottom in bands of planar floats [channels][rows][width], clamped
 * and rounded as image_write_png does; finish checks that every row came and writes IEND. */
typedef struct image_png_writer image_png_writer;
lr_status image_png_writer_open(lr_ctx *ctx, FILE *f, const image *like, image_png_writer **out);
lr_status image_png_writer_rows(lr_ctx *ctx, image_png_writer *w, const float *planes, int rows);
lr_status image_png_writer_finish(lr_ctx *ctx, image_png_writer *w);
/* Frees the writer whether or not it finished (safe on NULL). */
void image_png_writer_free(image_png_writer *w);

/* Full-range BT.601 YCbCr as JPEG and OpenCV's COLOR_RGB2YCrCb define it, on planes of n values
 * 0..1 (Cb and Cr centred on 0.5):
 *     Y = 0.299 R + 0.587 G + 0.114 B, Cb = 0.564 (B - Y) + 0.5, Cr = 0.713 (R - Y) + 0.5,
 *     R = Y + 1.403 (Cr - 0.5), G = Y - 0.714 (Cr - 0.5) - 0.344 (Cb - 0.5),
 *     B = Y + 1.773 (Cb - 0.5).
 * In place is allowed (r == y etc.). */
void image_rgb_to_ycbcr(const float *r, const float *g, const float *b, float *y, float *cb,
                        float *cr, int64_t n);
void image_ycbcr_to_rgb(const float *y, const float *cb, const float *cr, float *r, float *g,
                        float *b, int64_t n);
/* Studio-range BT.601 luma as the super-resolution literature measures PSNR/SSIM on (MATLAB
 * rgb2ycbcr): Y = (16 + 65.481 R + 128.553 G + 24.966 B) / 255 for R, G, B in 0..1, so Y is in
 * 16/255..235/255. */
void image_luma_studio(const float *r, const float *g, const float *b, float *y, int64_t n);

#endif
