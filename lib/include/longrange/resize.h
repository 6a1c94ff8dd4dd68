/* Image resampling on CHW float32 planes (any channel count), separable, threaded.
 *
 * Coordinates are half-pixel centred (PyTorch align_corners=False, OpenCV, PIL, MATLAB): output
 * pixel x samples the input at sx = (x + 0.5) * w_in / w_out - 0.5.
 *  - LR_RESIZE_BILINEAR: the two nearest input pixels, weights 1 - f and f, coordinates clamped
 *    to the border (PyTorch interpolate(mode="bilinear", align_corners=False); TensorFlow's
 *    half_pixel_centers resize; MediaPipe's mask upsampling).
 *  - LR_RESIZE_BICUBIC: Keys' cubic convolution with parameter a (-0.5 for PIL and MATLAB
 *    imresize, -0.75 for OpenCV and PyTorch), border pixels replicated.
 *  With antialias and a downscale (w_out < w_in), the kernel is stretched by the scale
 *  w_in / w_out and its weights renormalised to sum 1 over the input pixels it covers, as PIL's
 *  resize and MATLAB's imresize do (PyTorch antialias=True); for upscaling antialias changes
 *  nothing. (PyTorch's antialiased bicubic also cuts the kernel at the border when upscaling,
 *  so there it differs from this in the two pixels next to each border.) Without antialias
 *  the kernel keeps its width (PyTorch antialias=False).
 * Values are not clamped (bicubic overshoots; the caller clamps when it writes pixels).
 * Precision: weights in double, normalised, stored as FP32; accumulation in FP32 per pass
 * (along x first, then along y). Matches PyTorch float64 within 2e-7 on 0..1 data.
 * Memory: no image-sized intermediate; each thread's scratch holds the input rows one block of
 * 16 output rows reads, resampled along x. in and out must not overlap unless the sizes are
 * equal (then out is a copy of in). Deterministic for any thread count. LR_ERR_ARG for sizes
 * < 1, NULL pointers, an unknown filter or a non-finite cubic_a. */
#ifndef LONGRANGE_RESIZE_H
#define LONGRANGE_RESIZE_H

#include <stdbool.h>

#include "longrange/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { LR_RESIZE_BILINEAR = 0, LR_RESIZE_BICUBIC } lr_resize_filter;

typedef struct {
    lr_resize_filter filter;
    double cubic_a;  /* bicubic only; -0.5 when 0 is given */
    bool antialias;
} lr_resize_desc;

lr_status lr_resize(lr_ctx *ctx, const lr_resize_desc *d, const float *in, int c, int h_in,
                    int w_in, float *out, int h_out, int w_out);

/* Plain double-precision loops evaluating the same definition directly (2-D weights). */
lr_status lr_resize_ref(lr_ctx *ctx, const lr_resize_desc *d, const float *in, int c, int h_in,
                        int w_in, float *out, int h_out, int w_out);

#ifdef __cplusplus
}
#endif
#endif
