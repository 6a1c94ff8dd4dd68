/* Backward warping of a CHW float32 image by a dense optical flow, as video frame
 * interpolation (RIFE's warp, rife-ncnn-vulkan's rife.Warp) uses it.
 *
 * For every output pixel (x, y) and channel ch, with fx = flow[0][y][x], fy = flow[1][y][x]:
 *     sx = clamp(x + fx, 0, w - 1),   sy = clamp(y + fy, 0, h - 1)    (FP32; NaN -> 0)
 *     x0 = floor(sx), x1 = min(x0 + 1, w - 1), ax = sx - x0   (rows likewise: y0, y1, ay)
 *     top    = img[ch][y0][x0] * (1 - ax) + img[ch][y0][x1] * ax
 *     bottom = img[ch][y1][x0] * (1 - ax) + img[ch][y1][x1] * ax
 *     out[ch][y][x] = top * (1 - ay) + bottom * ay
 * i.e. bilinear sampling at (x + fx, y + fy) with the coordinates clamped to the border first:
 * PyTorch grid_sample(mode='bilinear', padding_mode='border', align_corners=True) with the
 * grid (x + fx) / (w - 1) * 2 - 1, which upstream RIFE uses. Flow is in pixels.
 *
 * Layouts: img and out [c][h][w], flow [2][h][w] (dx plane, then dy plane), contiguous.
 * Precision: lr_warp_bilinear evaluates the formula above in FP32 in that order;
 * lr_warp_bilinear_ref evaluates it in double (coordinates too), so the two differ by
 * rounding only. Deterministic and bit-identical for any thread count (tasks are fixed blocks
 * of rows). No scratch. out must not overlap img or flow. LR_ERR_ARG for NULL pointers, sizes
 * < 1 or overlapping buffers; LR_ERR_NOMEM when c*h*w overflows size_t. */
#ifndef LONGRANGE_WARP_H
#define LONGRANGE_WARP_H

#include "longrange/core.h"

#ifdef __cplusplus
extern "C" {
#endif

lr_status lr_warp_bilinear(lr_ctx *ctx, const float *img, int c, int h, int w, const float *flow,
                           float *out);
lr_status lr_warp_bilinear_ref(lr_ctx *ctx, const float *img, int c, int h, int w,
                               const float *flow, float *out);

#ifdef __cplusplus
}
#endif
#endif
