/* Video in and out for video-animate: frames as planar float RGB, decoded from anything
 * Debian's FFmpeg libraries read and encoded into a container chosen by the output's name, or
 * Y4M streamed through cmd/common/y4m.h.
 *
 * Frames: float [3][height][width], R, G, B planes, 0..1. Decoded pictures are converted by
 * libswscale to RGB24 (8-bit sources) or RGB48 (deeper ones) with its default BT.601 matrix
 * (BT.709 where the stream says so) and the stream's range, then divided by 255 (65535);
 * Y4M input uses y4m_frame_to_rgb with the same matrix choice and bilinear chroma. Writing
 * clamps to 0..1 and rounds (v * 255 + 0.5) before converting back.
 *
 * Input: a path, or "-" for stdin. A stream that starts with "YUV4MPEG2 " is read by the
 * streaming Y4M reader (no probing: the first frame is returned as soon as its bytes arrive);
 * anything else goes through libavformat (stdin as pipe:0, so formats that need seeking, such
 * as MP4 with its index at the end, fail there with libavformat's message). The first video
 * stream is decoded; every decoded picture is returned exactly once, in presentation order,
 * with its own timestamp: nothing is duplicated or dropped to fill a nominal frame rate (AVI
 * slots without a picture simply produce no frame).
 *
 * Output: "-" writes Y4M to stdout (also when the path ends in .y4m). Otherwise the extension
 * picks the container through libavformat (.mkv, .mp4, .mov, .avi, .nut, .webm...) and the
 * codec is `codec` when given ("h264" through libx264, "ffv1", "mpeg4", or any encoder name
 * libavcodec knows), else the container's choice among libx264 (crf 18, preset veryfast),
 * ffv1 and mpeg4 (.avi: mpeg4). The file is written through cmd/common/output.h: complete
 * (trailer written) after video_writer_close, never left half-written on an error or a signal.
 * The output frame rate is set explicitly (stream time base and average frame rate) before the
 * header is written, so no last frame is lost to an edit list.
 *
 * Pass-through: a container output copies the input's audio and subtitle streams (packets
 * rescaled to the output time bases) when the writer is opened with the reader; Y4M output has
 * none. Packets are forwarded as the reader demuxes them, so no stream is buffered in full.
 *
 * Memory: a reader holds one decoded picture and one RGB frame; a writer one picture: constant
 * on an endless stream.
 *
 * Errors: one line via lr_fail on ctx (the caller adds the input's or output's name), e.g.
 *   LR_ERR_DATA         "not a video (no video stream)", "not a video: <libav message>",
 *                       "truncated stream (frame 12)", "frame 12 is 640x480, the stream began
 *                       at 768x576", "no frames", "decoding frame 12: <libav message>"
 *   LR_ERR_UNSUPPORTED  "unsupported video codec 'xyz'", "no encoder 'xyz'"
 *   LR_ERR_NOMEM        "frame is 40000x30000 pixels, more than --max-pixels 100000000"
 *   LR_ERR_IO           read and write errors
 * Frames are numbered from 1 in messages. */
#ifndef VIDEO_ANIMATE_VIDEO_H
#define VIDEO_ANIMATE_VIDEO_H

#include <stdbool.h>
#include <stdint.h>

#include "longrange/core.h"

typedef struct {
    int width, height;
    int tb_num, tb_den;   /* time base of the frames' pts (seconds = pts * tb_num / tb_den) */
    int fps_num, fps_den; /* the stream's nominal (average) frame rate; 25:1 when unknown */
    int64_t frames;       /* the container's frame count when it states one, else -1 */
    int sar_num, sar_den; /* sample aspect ratio, 0:0 when unknown */
    const char *format;   /* "avi", "yuv4mpegpipe", ...: for messages and --verbose */
    const char *codec;    /* "msmpeg4v3", "rawvideo", ... */
} video_info;

typedef struct {
    float *rgb;       /* [3][height][width]: owned by the reader, valid until the next call */
    int64_t pts;      /* in the stream's time base; when the input has none: the previous
                       * pts plus its duration (or one frame at fps), 0 for the first */
    int64_t duration; /* in the same base; 0 when unknown */
    int64_t index;    /* 1, 2, 3... in decoding output order */
} video_frame;

typedef struct video_reader video_reader;

/* Opens path ("-": stdin) and reads up to its first frame's header. max_pixels: 0 for no
 * limit. On error *out is NULL. */
lr_status video_reader_open(lr_ctx *ctx, const char *path, uint64_t max_pixels,
                            video_reader **out);
const video_info *video_reader_info(const video_reader *r);
/* The next frame: 1 with *frame set, 0 at the end of the stream, -1 on an error (in ctx; every
 * later call returns -1 too). A stream without any frame is an error ("no frames"): at
 * video_reader_open for libavformat inputs, at the first call for Y4M. */
int video_reader_next(lr_ctx *ctx, video_reader *r, video_frame *frame);
/* Audio and subtitle packets demuxed before a writer is opened with copy_from = r are held for
 * it, up to 64 MiB (beyond that video_reader_next fails); a program that will not copy them
 * calls this first (a Y4M writer does it itself). */
void video_reader_drop_streams(video_reader *r);
void video_reader_free(video_reader *r);

typedef struct {
    int width, height;
    int tb_num, tb_den;   /* time base of the pts given to video_writer_frame */
    int fps_num, fps_den; /* the output's frame rate (Y4M header, container average rate) */
    int sar_num, sar_den; /* 0:0 when unknown */
    const char *codec;    /* NULL: the container's default as above */
} video_writer_opts;

typedef struct video_writer video_writer;

/* Opens path ("-" or *.y4m: Y4M) for frames shaped by opts. copy_from: the reader whose audio
 * and subtitle streams are copied, or NULL. force: as cli_args.force (Y4M to a terminal).
 * Returns a CLI_EXIT_* status (after reporting the problem with the output's name), and sets
 * *out on CLI_EXIT_OK. */
int video_writer_open(const char *path, const video_writer_opts *opts, video_reader *copy_from,
                      bool force, video_writer **out);
/* Encodes one frame ([3][height][width] 0..1) at pts (in opts' time base; strictly
 * increasing) lasting duration (0: one frame at the output rate). */
lr_status video_writer_frame(lr_ctx *ctx, video_writer *w, const float *rgb, int64_t pts,
                             int64_t duration);
/* Flushes the encoder, writes the trailer and commits the file. Returns a CLI_EXIT_* status
 * (after reporting). Frees w. */
int video_writer_close(video_writer *w);
/* Removes what was written; frees w. Safe with NULL. */
void video_writer_abort(video_writer *w);

#endif
