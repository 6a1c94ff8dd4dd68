/* YUV4MPEG2 (Y4M) video streams, read and written a frame at a time, as ffmpeg and mjpegtools
 * write them, for programs that pipe raw video (`ffmpeg -i in.mkv -f yuv4mpegpipe - | prog`).
 *
 * Format: a header line "YUV4MPEG2 W<w> H<h> F<n>:<d> I<i> A<n>:<d> C<tag> X<any>\n" (the
 * parameters after "YUV4MPEG2 " in any order, separated by one or more spaces), then frames,
 * each a line "FRAME" + optional parameters (ignored) + "\n" followed by the planes Y, Cb, Cr
 * (mono: Y only), rows top to bottom, no padding. 8-bit tags hold one byte per sample, the
 * p10/p12/p16 (mono10/12/16) tags 16-bit little-endian samples of that many significant bits.
 *   W, H   required, 1..2^31-1 each (then width * height against max_pixels).
 *   F      frame rate num:den; absent or with a zero part: 25:1 (ffmpeg's default).
 *   I      p, t, b or m (mjpegtools' '?' reads as p); absent: p.
 *   A      sample aspect num:den; absent: 0:0 (unknown).
 *   C      chroma tag; absent: 420jpeg. Supported, with the chroma plane size and the siting
 *          the RGB conversion assumes (chroma position in luma sample units):
 *            420jpeg, 420           ceil(w/2) x ceil(h/2), centred (2i+0.5, 2j+0.5)
 *            420mpeg2               ceil(w/2) x ceil(h/2), (2i, 2j+0.5)
 *            420paldv               ceil(w/2) x ceil(h/2), (2i, 2j) (PAL DV's alternating
 *                                   Cb/Cr lines are approximated as co-sited top-left)
 *            422                    ceil(w/2) x h,         (2i, j)
 *            444                    w x h
 *            mono                   no chroma
 *          and 420p10 420p12 420p16 (siting of 420jpeg), 422p10 422p12 422p16, 444p10 444p12
 *          444p16, mono10 mono12 mono16. Anything else (444alpha, 411, 420p9...) is refused.
 *   X      comments: ignored and not written back, except ffmpeg's XCOLORRANGE=FULL|LIMITED
 *          (full_range; written back when set) and XYSCSS=<tag> (its older upper-case chroma
 *          tag, e.g. XYSCSS=420P10, used when there is no C). Unknown letters are ignored.
 * The header line and each FRAME line are at most Y4M_MAX_LINE bytes, newline included.
 *
 * Streaming: the reader never seeks and reads nothing beyond the frame asked for (header: byte
 * by byte up to its newline; frame: its line, then exactly its plane bytes), so the first frame
 * is returned as soon as its bytes have arrived on a pipe. Memory: one frame of samples
 * (uint16_t, whatever the depth), allocated when the reader opens and reused for every frame:
 * constant on an endless stream.
 *
 * Errors are one line via lr_fail on ctx, nothing is printed; the caller adds the file name.
 * Frames are numbered from 1.
 *   LR_ERR_DATA  "not a Y4M stream" (the input does not start with "YUV4MPEG2 "; empty too)
 *                "truncated Y4M header"
 *                "Y4M header longer than 1024 bytes"
 *                "Y4M header without W" / "Y4M header without H"
 *                "bad Y4M header parameter 'W0'" (W, H, F, A or I that does not parse or is
 *                    out of range: W/H 0, signs, more than 2^31-1, "F30", "Ix")
 *                "frame 12: expected FRAME, got 'FRAMX'" (the bad line's start, up to 16
 *                    bytes, bytes outside ' '..'~' shown as '?')
 *                "frame 12: FRAME line longer than 1024 bytes"
 *                "truncated frame 12 (in its FRAME line)"
 *                "truncated frame 12: 3110 of 460800 bytes"
 *   LR_ERR_UNSUPPORTED  "unsupported Y4M chroma 'C444alpha'" (or 'XYSCSS=411' without a C)
 *   LR_ERR_NOMEM "Y4M frame is 40000x30000 = 1200000000 pixels, more than --max-pixels
 *                    100000000" (checked before any allocation), or out of memory
 *   LR_ERR_IO    "read error in the Y4M header: <strerror>", "read error in frame 12: ...",
 *                "write error: ..." */
#ifndef CLI_Y4M_H
#define CLI_Y4M_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "longrange/core.h"

#define Y4M_MAX_LINE 1024

typedef enum { Y4M_420, Y4M_422, Y4M_444, Y4M_MONO } y4m_subsampling;
typedef enum {
    Y4M_SITING_CENTRED, /* 420jpeg, 420, 420pNN; irrelevant for 444 and mono */
    Y4M_SITING_LEFT,    /* 420mpeg2 and 422: horizontally co-sited with even luma columns */
    Y4M_SITING_TOPLEFT, /* 420paldv */
} y4m_siting;

typedef struct {
    int width, height;
    int fps_num, fps_den; /* both >= 1 */
    int sar_num, sar_den; /* 0:0 unknown */
    char interlace;       /* 'p', 't', 'b' or 'm' */
    char chroma[16];      /* the tag as written after C ("420jpeg", "422p10", "mono") */
    y4m_subsampling subsampling;
    y4m_siting siting;
    int depth;            /* 8, 10, 12 or 16 significant bits per sample */
    bool full_range;      /* XCOLORRANGE=FULL: samples span 0..2^depth-1 (default: limited) */
} y4m_info;

/* One frame: planes of samples 0..2^depth-1 (host-order uint16_t at every depth; the reader
 * clamps a 10- or 12-bit sample whose stored value is larger to 2^depth-1). */
typedef struct {
    int planes;            /* 3, or 1 for mono */
    int width[3], height[3];
    uint16_t *plane[3];    /* plane[p] holds height[p] rows of width[p] samples */
    uint16_t *samples;     /* the one allocation the planes live in */
    size_t count;          /* samples in all planes */
} y4m_frame;

/* Fills info for a stream of width x height with chroma tag `chroma` (NULL: "420jpeg") and the
 * defaults above (25:1, 'p', 0:0). LR_ERR_ARG for a size outside 1..2^31-1, LR_ERR_UNSUPPORTED
 * for an unknown tag. */
lr_status y4m_info_init(lr_ctx *ctx, y4m_info *info, int width, int height, const char *chroma);
/* A frame shaped for info, samples zeroed; y4m_frame_free releases it (safe when zeroed). */
lr_status y4m_frame_alloc(lr_ctx *ctx, const y4m_info *info, y4m_frame *frame);
void y4m_frame_free(y4m_frame *frame);
/* Bytes of one frame's planes in the stream (without its FRAME line). */
uint64_t y4m_frame_bytes(const y4m_info *info);

typedef struct y4m_reader y4m_reader;

/* Reads and checks the header of f (not closed by y4m_reader_free), or of the size bytes at
 * data (not copied: they must stay until y4m_reader_free), and allocates the one frame.
 * max_pixels 0: no limit beyond what memory allows. On error *out is NULL. */
lr_status y4m_reader_open(lr_ctx *ctx, FILE *f, uint64_t max_pixels, y4m_reader **out);
lr_status y4m_reader_open_memory(lr_ctx *ctx, const void *data, size_t size,
                                 uint64_t max_pixels, y4m_reader **out);
const y4m_info *y4m_reader_info(const y4m_reader *r);
/* The next frame: 1 with *frame set (owned by the reader, the same buffers every time, valid
 * and writable until the next call), 0 at a clean end (end of input exactly where a FRAME line
 * would start), -1 on an error (in ctx). After an error every call returns -1 again. */
int y4m_reader_next(lr_ctx *ctx, y4m_reader *r, y4m_frame **frame);
/* Frames returned so far. */
int64_t y4m_reader_frames(const y4m_reader *r);
void y4m_reader_free(y4m_reader *r);

/* Writes the header line "YUV4MPEG2 W H F I A C\n" of info. */
lr_status y4m_write_header(lr_ctx *ctx, FILE *f, const y4m_info *info);
/* Writes "FRAME\n" and the planes of frame (shaped for info); samples above 2^depth-1 are
 * written as 2^depth-1. LR_ERR_ARG when frame's shape is not info's. */
lr_status y4m_write_frame(lr_ctx *ctx, FILE *f, const y4m_info *info, const y4m_frame *frame);

/* Conversions between a frame and planar float RGB [3][height][width], 0..1.
 * Limited ("studio") range at depth d with s = 2^(d-8): Y = 16s + 219s Y', C = 128s + 224s P
 * (ffmpeg's scaling for high depths); full range: Y = (2^d-1) Y', C = 128s + (2^d-1) P,
 * where (Kr, Kb) = (0.299, 0.114) for BT.601 and (0.2126, 0.0722) for BT.709 and
 *     Y' = Kr R + (1 - Kr - Kb) G + Kb B,
 *     Pb = (B - Y') / (2 (1 - Kb)), Pr = (R - Y') / (2 (1 - Kr)).
 * To RGB: the inverse, each of R, G, B clamped to 0..1; mono gives R = G = B = Y'.
 * Chroma upsampling: NEAREST replicates (chroma sample floor(x/2), floor(y/2)); BILINEAR
 * interpolates between the two nearest chroma samples along each subsampled axis at the tag's
 * siting (see above), clamping at the edges.
 * From RGB: Y per pixel; each chroma sample from the box average of the RGB of the 2x2 (4:2:0)
 * or 2x1 (4:2:2) luma pixels it covers (fewer at an odd right or bottom edge), whatever the
 * siting; rounded to nearest and clamped to 0..2^d-1. Mono writes Y only. Deterministic,
 * single-threaded. */
typedef enum { Y4M_BT601, Y4M_BT709 } y4m_matrix;
typedef enum { Y4M_UPSAMPLE_NEAREST, Y4M_UPSAMPLE_BILINEAR } y4m_upsample;
void y4m_frame_to_rgb(const y4m_info *info, const y4m_frame *frame, y4m_matrix matrix,
                      y4m_upsample upsample, float *rgb);
void y4m_frame_from_rgb(const y4m_info *info, const float *rgb, y4m_matrix matrix,
                        y4m_frame *frame);

#endif
