/* RIFE v4.6 frame interpolation (IFNet, Huang et al., "Real-Time Intermediate Flow Estimation
 * for Video Frame Interpolation", ECCV 2022; weights of Practical-RIFE v4.6 as converted to ncnn
 * for rife-ncnn-vulkan, MIT).
 *
 * Model file (tools/rife_torch.py convert): metadata arch "rife-v4.6", and the upstream IFNet
 * state_dict names, for b = 0..3 with c = 192, 128, 96, 64 and input channels 7, 12, 12, 12:
 *   block{b}.conv0.0.0.{weight,bias}        [c/2][in][3][3], stride 2, LeakyReLU 0.2
 *   block{b}.conv0.1.0.{weight,bias}        [c][c/2][3][3],  stride 2, LeakyReLU 0.2
 *   block{b}.convblock.{0..7}.conv.{weight,bias}   [c][c][3][3]
 *   block{b}.convblock.{0..7}.beta          [1][c][1][1] (ones in the ncnn export: folded in)
 *   block{b}.lastconv.0.{weight,bias}       ConvTranspose2d [c][24][4][4], stride 2, pad 1
 * Weights F16 or F32.
 *
 * Forward (frames a, b: [3][h][w] 0..1; timestep t): both are zero-padded right and bottom to
 * multiples of 32 (hp x wp); T is a [1][hp][wp] plane of t. For block k with scale
 * s = 8, 4, 2, 1:
 *   block 0: x = cat(a, b, T)                          (7 channels)
 *   block k: x = cat(warp(a, F[0:2]), warp(b, F[2:4]), T, M, F)   (3+3+1+1+4 = 12 channels)
 *   x is resized by 1/s (bilinear, half-pixel, no antialias; the flow part then divided by s),
 *   feat = conv0 (two stride-2 convs), then 8 times feat = leaky(conv(feat) * beta + feat),
 *   d = pixel_shuffle(lastconv(feat), 2) (6 channels), resized by s back to hp x wp;
 *   F += d[0:4] * s, M += d[4]  (block 0 sets them)
 * warp(img, f) samples img at (x + f_x, y + f_y), bilinear, coordinates clamped to the border.
 * out = warp(a, F[0:2]) * sigmoid(M) + warp(b, F[2:4]) * (1 - sigmoid(M)), cropped to h x w,
 * not clamped. t = 0 and t = 1 still run the network (the caller copies frames instead).
 *
 * Precision: FP32 with libcore's convolutions; within 1e-4 of tools/rife_torch.py. Deterministic
 * and bit-identical for any thread count. Memory: activations for one padded frame pair, kept
 * in the net between calls and regrown when a larger frame comes. */
#ifndef VIDEO_ANIMATE_RIFE_H
#define VIDEO_ANIMATE_RIFE_H

#include "longrange/core.h"
#include "longrange/model.h"

typedef struct rife_net rife_net;

/* Checks arch and every tensor's shape (LR_ERR_MODEL naming the tensor) and converts the
 * weights to FP32. The model must outlive nothing: the net keeps its own copies. */
lr_status rife_load(lr_ctx *ctx, const lr_model *model, rife_net **out);
/* out[3][h][w]: the frame at time t (0 < t < 1 expected; any finite t runs) between a and b.
 * a, b, out must not overlap. LR_ERR_ARG for sizes < 1 or t not finite; LR_ERR_NOMEM. */
lr_status rife_interpolate(lr_ctx *ctx, rife_net *net, const float *a, const float *b, int h,
                           int w, float t, float *out);
/* FLOPs of one call at h x w (padded size), for benchmarks and --verbose. */
double rife_flops(int h, int w);
void rife_free(rife_net *net);

#endif
