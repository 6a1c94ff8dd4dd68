/* Robust Video Matting (Lin et al., "Robust High-Resolution Video Matting with Temporal
 * Guidance", WACV 2022), MobileNetV3 variant, as exported to a TF.js graph model by its authors
 * (PeterL1n/RobustVideoMatting, GPL-3.0: the user converts their own copy with
 * tools/convert_rvm_tfjs.py; longrange ships no weights). The forward pass follows that graph
 * (model.json's node list), not the PyTorch code: where they differ, the graph wins (noted *).
 *
 * Model file: metadata arch "rvm-mobilenetv3"; float32 tensors under the TF.js manifest names
 * without the "StatefulPartitionedCall/matting_network_wrapper/StatefulPartitionedCall/" prefix
 * (e.g. "mobile_net_v3_encoder/inverted_residual_3/sequential_3/conv_bn_activation_10/
 * depthwise_conv2d_3/depthwise_weights"), BatchNorm folded. Layouts: conv kernels OIHW
 * [out][in][kh][kw], depthwise [C][1][kh][kw], biases [out]. rvm_load checks every shape.
 *
 * Per frame, src [3][h][w] RGB in 0..1, ratio r in (0, 1]:
 *   x = src, or for r != 1 x = bilinear(src) to hs x ws with hs = (int)((float)h * r) and
 *     ws likewise (TF's Cast(float(H) * ratio): truncation, float32 product), half-pixel
 *     centres, no antialias. hs, ws >= 3 are required when r != 1 (the box filter below).
 *   Encoder, MobileNetV3-Large on (x - mean) * inv_std (the file's quantised constants
 *     "mobile_net_v3_encoder/Const" and "ConstantFolding/mobile_net_v3_encoder/truediv_recip"):
 *     a 3x3/2 conv 16 + hard-swish, then 15 inverted residual blocks (expand 1x1, depthwise,
 *     optional SE, project 1x1; residual when stride 1 and in == out), then 1x1 conv 960 +
 *     hard-swish. Stride-2 convs pad k/2 on every side (PyTorch style, explicit Pads), so each
 *     stage is ceil(size / 2). Blocks 12-14 are 5x5 depthwise with dilation 2, stride 1 (*as
 *     SpaceToBatch + conv + BatchToSpace, BatchNorm as a separate scale and offset). Features
 *     f1..f4 at 1/2, 1/4, 1/8, 1/16: 16, 24, 40, 960 channels.
 *     hard-swish(v) = (v / 6) * relu6(v + 3); SE: g = relu6(W2 relu(W1 mean(v) + b1) + b2 + 3)
 *     / 6, v *= g.
 *   LR-ASPP: f4' = relu(conv1x1(f4) + b) * sigmoid(conv1x1(mean(f4))): 128 channels.
 *   s1..s3: src x average-pooled 2x2/2 repeatedly (TF SAME: ceil size, partial windows average
 *     their valid pixels only).
 *   Decoder: bottleneck: [a, b] = split(f4'); b = GRU(b, r4); y = [a, b] (128).
 *     Up-blocks k = 3, 2, 1 (to f_k's size): u = bilinear x2 of y (half-pixel), cropped to
 *     the top-left h_k x w_k; y = relu(conv3x3([u, f_k, s_k]) + b) with 80, 40, 32 channels;
 *     [a, b] = split(y); b = GRU(b, r_k); y = [a, b].
 *     Output: u = x2 of y cropped to hs x ws; y = relu(conv3x3(relu(conv3x3([u, x]))));
 *     p = conv1x1(y) + b: 4 channels (foreground residual RGB, alpha).
 *     GRU(v, h) with C channels: [r, z] = sigmoid(conv3x3([v, h]) + b);
 *     c = tanh(conv3x3([v, r * h]) + b); h = (1 - z) * h + z * c; v = h. All 3x3 convs in
 *     the decoder pad 1 (SAME).
 *   Refiner, r != 1 only (*the fast guided filter, not PyTorch's deep one): with X = [x,
 *     mean_c(x)] and Y = p (4 channels each) at hs x ws, box() = mean of a 3x3 window
 *     *without padding (output (hs-2) x (ws-2)), per channel:
 *     A = (box(XY) - box(X) box(Y)) / (box(X^2) + (1e-5 - box(X)^2)), B = box(Y) - A box(X);
 *     p = bilinear(A) * [src, mean_c(src)] + bilinear(B), both resized to h x w.
 *   fgr = clamp(src + p[0:3], 0, 1), pha = clamp(p[3], 0, 1).
 * States r1..r4 (the GRU h of the up-blocks k = 1, 2, 3 and the bottleneck): 16, 20, 40, 64
 * channels at 1/2, 1/4, 1/8, 1/16 of hs x ws (ceil at each halving), zero for the first frame
 * (the graph broadcasts the scalar 0 RVM passes first).
 *
 * Precision: FP32 (libcore convolutions and resize; means and SE in double; the GRU's tanh
 * through expf, absolute error < 1e-7). The refiner repeats tfjs's CPU kernels operation by
 * operation (float32 accumulation in the box filter, double interpolation), because A divides
 * by var + 1e-5 and magnifies any rounding change. Against the TF.js graph run by
 * @tensorflow/tfjs 3.21 (tests/unit/test_rvm.c, limit 1e-4): ratio 1: fgr 1e-6, pha 7e-6,
 * states 5e-6; ratio 0.5: fgr 6e-5, pha 6e-6, states 7e-6.
 * Deterministic: bit-identical for any thread count (libcore's kernels, and fixed row blocks
 * for the refiner and output stage).
 * Memory: rvm_state_create allocates everything a step needs for its size: r1..r4, four work
 * buffers of max(35 x hs x ws, the largest encoder expansion) floats, the pooled sources and
 * skip features, and for ratio != 1 the downsampled frame (at 768x576, ratio 0.5, or
 * 384x288, ratio 1: about 65 MB). rvm_step allocates nothing itself (lr_conv2d packs each
 * conv's weights per call). Weights are used in place from the model, which must outlive the
 * net. */
#ifndef VIDEO_ANIMATE_RVM_H
#define VIDEO_ANIMATE_RVM_H

#include "longrange/core.h"
#include "longrange/model.h"

typedef struct rvm_net rvm_net;
typedef struct rvm_state rvm_state;

/* Checks arch and every tensor's name and shape (LR_ERR_MODEL naming it). */
lr_status rvm_load(lr_ctx *ctx, const lr_model *model, rvm_net **out);
void rvm_free(rvm_net *net);

/* A stream of h x w frames at downsample ratio `ratio` in (0, 1], states zero. LR_ERR_ARG for
 * sizes < 1, a ratio outside (0, 1] (or not finite), a downsampled size < 3 when ratio != 1;
 * LR_ERR_NOMEM. */
lr_status rvm_state_create(lr_ctx *ctx, const rvm_net *net, int h, int w, float ratio,
                           rvm_state **out);
/* The downsampled size the network runs at (h x w when ratio is 1). */
void rvm_state_size(const rvm_state *st, int *hs, int *ws);
/* State k = 1..4 (r1o..r4o after the last step): [c][h][w] as above; NULL for other k. */
const float *rvm_state_get(const rvm_state *st, int k, int *c, int *h, int *w);
/* Back to the first-frame state (zeros). */
void rvm_state_reset(rvm_state *st);
void rvm_state_free(rvm_state *st);

/* One frame: src [3][h][w] (0..1) -> fgr [3][h][w], pha [h][w]; updates the state.
 * src must not overlap the outputs. LR_ERR_ARG for NULL pointers; LR_ERR_NOMEM. */
lr_status rvm_step(lr_ctx *ctx, rvm_net *net, rvm_state *st, const float *src, float *fgr,
                   float *pha);

#endif
