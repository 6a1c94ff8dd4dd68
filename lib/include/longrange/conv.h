/* 2-D convolutions for the image and video programs: plain, grouped/depthwise, dilated and
 * transposed, with a fused bias and activation, on one image in CHW float32 layout (batch 1:
 * the programs process one image or tile at a time), plus pixel shuffle.
 *
 * Convolution (PyTorch Conv2d, weight [cout][cin/groups][kh][kw]):
 *     out[co][y][x] = act(bias[co] + sum_{ci < cin/groups, ky < kh, kx < kw}
 *         w[co][ci][ky][kx] * in[g*cin/groups + ci][y*stride_h - pad_top + ky*dil_h]
 *                                                [x*stride_w - pad_left + kx*dil_w])
 *     with g = co / (cout/groups) and the input zero outside [0,h) x [0,w);
 *     ho = (h + pad_top + pad_bottom - dil_h*(kh-1) - 1) / stride_h + 1 (same for wo).
 *     Pads are separate per side because TensorFlow's SAME padding puts the odd extra row and
 *     column at the bottom and right.
 * Transposed convolution (PyTorch ConvTranspose2d, weight [cin][cout/groups][kh][kw]): every
 *     input pixel scatters w * in into the full output of size (h-1)*stride_h + dil_h*(kh-1) + 1
 *     (+ out_pad_h), from which pad_top rows are cropped at the top and pad_bottom at the bottom
 *     (columns alike); PyTorch's `padding` p is pad_top = pad_bottom = p, its `output_padding`
 *     is out_pad_h/out_pad_w. Then bias and activation.
 * Activations, applied after the bias: none, ReLU, LeakyReLU (alpha), PReLU (slopes
 *     act_param[cout], or one shared slope if act_param_count is 1), sigmoid, hard-swish
 *     x*relu6(x+3)/6.
 *
 * Precision: FP32 accumulation; the result may differ from lr_conv2d_ref (double accumulation)
 * by rounding only (and between CPU levels likewise). Deterministic and bit-identical for any
 * thread count. Threads and scratch as lr_sgemm (not callable from inside an lr_parallel_for
 * task). Scratch is bounded: lr_conv2d works on L2-sized tiles of output pixels (per-thread
 * scratch) plus one packed copy of the weights per call, never an im2col of the whole image;
 * lr_conv_transpose2d likewise on L2-sized tiles of input pixels.
 * Depthwise convolutions (groups == cin == cout), and stride-1 ungrouped ones with few output
 * channels or wide rows, take direct SIMD paths (registers hold a block of output channels x
 * pixel vectors); everything else is a GEMM per group (lib/src/conv.c: use_direct has the rule
 * and its measurements). LR_CONV_PATH=direct|gemm forces one where both apply (tests, bench).
 * in and out must not overlap. LR_ERR_ARG for sizes < 1 (pads or output padding < 0), channels
 * not divisible by groups, an output smaller than 1x1, NULL pointers (bias may be NULL), an
 * unknown activation, PReLU without act_param or with act_param_count not 1 or cout;
 * LR_ERR_NOMEM if scratch cannot grow. lr_activate has no status: with unusable PReLU slopes
 * it leaves x unchanged. */
#ifndef LONGRANGE_CONV_H
#define LONGRANGE_CONV_H

#include "longrange/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    LR_ACT_NONE = 0,
    LR_ACT_RELU,
    LR_ACT_LEAKY_RELU,
    LR_ACT_PRELU,
    LR_ACT_SIGMOID,
    LR_ACT_HARDSWISH
} lr_act;

typedef struct {
    int kh, kw;
    int stride_h, stride_w;
    int pad_top, pad_left, pad_bottom, pad_right;
    int dil_h, dil_w;
    int out_pad_h, out_pad_w; /* transposed only */
    int groups;
    lr_act act;
    float act_alpha;          /* LeakyReLU slope */
    const float *act_param;   /* PReLU slopes */
    int act_param_count;      /* 1 or cout */
} lr_conv2d_desc;

/* A desc with kernel kh x kw, stride 1, no padding, dilation 1, 1 group, no activation. */
lr_conv2d_desc lr_conv2d_default(int kh, int kw);

/* Output size of lr_conv2d / lr_conv_transpose2d for an h x w input (0 if not positive). */
void lr_conv2d_out_size(const lr_conv2d_desc *d, int h, int w, int *ho, int *wo);
void lr_conv_transpose2d_out_size(const lr_conv2d_desc *d, int h, int w, int *ho, int *wo);

lr_status lr_conv2d(lr_ctx *ctx, const lr_conv2d_desc *d, const float *in, int cin, int h, int w,
                    const float *weight, const float *bias, int cout, float *out);
lr_status lr_conv_transpose2d(lr_ctx *ctx, const lr_conv2d_desc *d, const float *in, int cin,
                              int h, int w, const float *weight, const float *bias, int cout,
                              float *out);

/* Plain loops with double accumulation: the definitions the fast paths are tested against. */
lr_status lr_conv2d_ref(lr_ctx *ctx, const lr_conv2d_desc *d, const float *in, int cin, int h,
                        int w, const float *weight, const float *bias, int cout, float *out);
lr_status lr_conv_transpose2d_ref(lr_ctx *ctx, const lr_conv2d_desc *d, const float *in, int cin,
                                  int h, int w, const float *weight, const float *bias, int cout,
                                  float *out);

/* The activation alone, in place, on [c][hw] (PReLU slopes per channel c). */
void lr_activate(const lr_conv2d_desc *d, float *x, int c, int64_t hw);

/* PyTorch pixel_shuffle: in [c*r*r][h][w] -> out [c][h*r][w*r],
 * out[ch][y*r + dy][x*r + dx] = in[ch*r*r + dy*r + dx][y][x]. */
lr_status lr_pixel_shuffle(lr_ctx *ctx, const float *in, int c, int h, int w, int r, float *out);

#ifdef __cplusplus
}
#endif
#endif
