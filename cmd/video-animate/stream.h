/* RAIN-style stream denoising for video-animate's `stream` mode: the streaming mechanism of
 * RAIN (Real-time Animation of Infinite video stream, MatrixTeam-AI/RAIN src/morpher.py) around
 * a small denoiser trained here (tools/stream_torch.py, which holds the PyTorch reference).
 * It demonstrates the mechanism at small scale; it is not RAIN's SD-1.5 model.
 *
 * Model file: metadata arch "rain-stream-unet", width W, height H (multiples of 4), cond_width,
 * cond_height, groups G, frames_per_group p (G*p <= 32), levels (G timesteps, descending, in
 * [0, 999], e.g. "999,749,499,249"), temporal "1" (motion modules) or "0" (the ablation),
 * optionally channels c0,c1,c2 (multiples of 8; default "32,64,96").
 * Tensors F32 (F16/BF16 accepted), names as tools/stream_torch.py writes them:
 *   reference [3][H][W] (network range [-1, 1]); time_embedding.linear_{1,2}; conv_in;
 *   down.{0,1,2}.res.*, down.{0,1}.downsample, up.{0,1}.upsample, up.{0,1}.res.*,
 *   conv_norm_out, conv_out; with temporal "1" also {down.{0,1,2},up.{0,1}}.motion.{norm,
 *   proj_in, norm1, attn.to_{q,k,v,out}, norm2, ff.net.0.proj, ff.net.2, proj_out};
 *   res = {norm1, conv1, time_emb_proj, norm2, conv2[, conv_shortcut]}.
 *
 * Denoiser (one call over F frames, each with its own timestep t_f and position slot s_f):
 * v = UNet(cat(x_t, d, reference), t) predicting v (conv_in 9->c0; ResBlocks c0->c0 at W x H,
 * c0->c1 at W/2 x H/2, c1->c2 at W/4 x H/4 with stride-2 convs between; back up by nearest x2 +
 * conv, concatenating the skips; GroupNorm SiLU conv_out c0->3), with ResBlocks adding their frame's
 * timestep embedding and, with temporal "1", an AnimateDiff motion module per resolution whose
 * attention runs across the F frames of every pixel (lr_temporal_attention: 4 heads), the
 * frames' slots selecting the sinusoidal position encoding. The exact definition is in
 * tools/stream_torch.py's docstring. GroupNorm eps 1e-5 (motion: 1e-6), LayerNorm 1e-5, GELU erf.
 *
 * Schedule: scaled_linear betas 0.00085..0.012 over 1000 steps rescaled to zero terminal SNR,
 * computed in double; a step from level t to the next lower t' (a := 1 below the last level):
 *   x0 = sqrt(a_t) x - sqrt(1-a_t) v, eps = sqrt(1-a_t) x + sqrt(a_t) v,
 *   x' = sqrt(a_t') x0 + sqrt(1-a_t') eps.
 *
 * Ring: input frames (planar RGB [3][h][w], 0..1, any size, resized to W x H by antialiased
 * bilinear) collect into groups of p. A complete group enters the ring as noise at the top
 * level (frame k's noise: lr_normal_fill(seed, k, 0) over [3][H][W]), together with its
 * driving signal d (the frame resized to cond size, antialiased, and back, bilinear). Then ONE
 * denoiser call over every ring frame (oldest first; slot = p * rank of its level from the
 * lowest + index in its group), every frame steps one level down, and the oldest group, once
 * clean, leaves: its frames are emitted as [3][H][W] RGB in 0..1 (clamped) with their input
 * index. stream_finish pushes the partial last group and steps until the ring is empty. The
 * first frame of a group is emitted G*p-1 input frames after it arrived.
 *
 * Memory: the ring (G*p frames and their driving signals), one pending group and the
 * activations of one call over G*p frames (kept in the net, allocated at the first
 * stream_create or stream_denoise: about 140 MB at 96x72 with 32/64/96 channels): bounded
 * whatever the stream length. The activations live in the net, so a net serves one call at a
 * time (streams over one net may interleave on one thread). Determinism: the output depends only on the model, the seed and the input
 * frames, not on how they are cut into calls nor on the thread count (bit-identical).
 * Precision: FP32 with libcore's kernels; within 1e-4 of tools/stream_torch.py. */
#ifndef VIDEO_ANIMATE_STREAM_H
#define VIDEO_ANIMATE_STREAM_H

#include <stdint.h>

#include "longrange/core.h"
#include "longrange/model.h"

typedef struct stream_net stream_net;
typedef struct stream_state stream_state;

/* Receives each output frame: rgb [3][H][W], 0..1, valid during the call; index = the input
 * frame's index (0, 1, 2, ... in order). */
typedef void (*stream_emit_fn)(void *user, const float *rgb, int64_t index);

/* Checks arch, metadata and every tensor's shape (LR_ERR_MODEL naming the key or tensor) and
 * keeps FP32 copies: the model may be closed afterwards. */
lr_status stream_load(lr_ctx *ctx, const lr_model *model, stream_net **out);
void stream_net_free(stream_net *net);

typedef struct {
    int width, height, cond_width, cond_height;
    int channels[3]; /* per resolution; metadata "channels", default "32,64,96" */
    int groups, frames_per_group;
    int levels[32]; /* groups entries, descending */
    int temporal;
} stream_info;
void stream_net_info(const stream_net *net, stream_info *info);

/* abar_t of the schedule for t in [0, 999] (1 for t < 0), double precision. */
double stream_alpha_bar(int t);

/* One denoiser call: x, d [frames][3][H][W] (network range), t[frames] timesteps in [0, 999],
 * slot[frames] in [0, 32) position-encoding slots -> v [frames][3][H][W]. 1 <= frames <= G*p.
 * LR_ERR_ARG otherwise; LR_ERR_NOMEM. */
lr_status stream_denoise(lr_ctx *ctx, stream_net *net, const float *x, const float *d,
                         const int *t, const int *slot, int frames, float *v);

/* A stream over net (which must outlive it); seed keys the noise. */
lr_status stream_create(lr_ctx *ctx, stream_net *net, uint64_t seed, stream_state **out);
/* FreeNoise (Qiu et al., ICLR 2024) with a window of `window` frames and stride `stride`:
 * windowed temporal attention (lr_temporal_attention's window/stride, triangular fusion) for
 * rings holding more than `window` frames, and noise rescheduling (stream_noise_frame); 0:
 * neither (one attention window over the whole ring, fresh noise for every frame: the
 * default). LR_ERR_ARG for window < 0, or window > 0 with stride outside 1..window. */
lr_status stream_set_window(lr_ctx *ctx, stream_state *s, int window, int stride);
/* FreeNoise's noise rescheduling as an index map: frame k >= window takes the noise of frame
 * b * stride + perm_b[(k - window) % stride], b = (k - window) / stride, where perm_b is a
 * Fisher-Yates shuffle of 0..stride-1 drawn from Philox (seed, block b); repeated until the
 * frame is below window, so every frame's noise is that of a frame of the first window, and
 * each block of stride frames is a shuffled copy of the block window frames earlier. k itself
 * with window 0 (or a stride outside 1..min(window, 32)). */
int64_t stream_noise_frame(uint64_t seed, int window, int stride, int64_t k);
/* One input frame rgb [3][h][w], 0..1. Calls emit for every frame that becomes ready. */
lr_status stream_push(lr_ctx *ctx, stream_state *s, const float *rgb, int h, int w,
                      stream_emit_fn emit, void *user);
/* n frames [n][3][h][w] at once: the same as n stream_push calls. */
lr_status stream_push_frames(lr_ctx *ctx, stream_state *s, const float *rgb, int n, int h, int w,
                             stream_emit_fn emit, void *user);
/* End of input: the frames still inside come out. The stream is empty afterwards (pushing
 * again starts new groups that continue the input numbering). */
lr_status stream_finish(lr_ctx *ctx, stream_state *s, stream_emit_fn emit, void *user);
/* Input frames pushed and frames emitted so far. */
int64_t stream_frames_in(const stream_state *s);
int64_t stream_frames_out(const stream_state *s);
void stream_free(stream_state *s);

#endif
