/* Video in and out for video-animate (see video.h): Y4M through cmd/common/y4m.h, everything
 * else through FFmpeg's libavformat, libavcodec and libswscale (checked with FFmpeg 5.1).
 *
 * Reading: the first 10 bytes tell Y4M from the rest; they are handed out again through a
 * stdio cookie (Y4M) or our AVIOContext (pipes, FIFOs), while a regular file is opened by
 * libavformat itself so that it can seek. The first picture is decoded at open, so that the
 * size in video_info is the decoded one. One decoder thread: no frame-thread delay. RGB comes
 * from swscale with the flags the ffmpeg tool uses (bicubic, no accurate rounding), so that a
 * frame equals `ffmpeg -pix_fmt rgb24` (rgb48le) exactly.
 * Truncation: a short read marks the packet corrupt (AVI and most demuxers), and Matroska and
 * MP4 only warn ("File ended prematurely", "partial file") before a plain end of file, so the
 * log callback watches for those two.
 *
 * Writing: pixel formats are yuv420p (BT.601, limited range, as swscale converts), yuv444p for
 * libx264 at odd sizes (it refuses odd 4:2:0), RGB (bgr0) for ffv1 so that it is lossless,
 * yuvj420p for mjpeg. One encoder thread, so that the bytes do not depend on the machine. */
#include "video.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>

#include "cli.h"
#include "output.h"
#include "y4m.h"

/* Audio and subtitle packets demuxed before a writer takes them are held up to this much. */
#define QUEUE_LIMIT_BYTES (64u << 20)
#define DURATION_RING 256 /* frames an encoder may hold back (x264's lookahead is far less) */

/* ---- libav's log: silenced; its last error line replaces the generic AVERROR text ---- */

static pthread_mutex_t quiet_log_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t quiet_log_once = PTHREAD_ONCE_INIT;
static char quiet_last_error[256];
/* Set when a demuxer warns that the input stops in the middle of something: Matroska's "File
 * ended prematurely", MP4's "partial file". libavformat then reports a plain end of file. */
static bool quiet_truncated;

static void av_log_capture(void *avcl, int level, const char *fmt, va_list vl)
{
    (void)avcl;
    if (level > AV_LOG_WARNING)
        return;
    char line[sizeof quiet_last_error];
    vsnprintf(line, sizeof line, fmt, vl);
    if (strstr(line, "ended prematurely") || strstr(line, "partial file")) {
        pthread_mutex_lock(&quiet_log_lock);
        quiet_truncated = true;
        pthread_mutex_unlock(&quiet_log_lock);
    }
    if (level > AV_LOG_ERROR)
        return;
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == ' ' || line[n - 1] == '.'))
        line[--n] = '\0';
    for (size_t i = 0; i < n; i++) /* one line, printable */
        if ((unsigned char)line[i] < ' ')
            line[i] = ' ';
    if (n == 0)
        return;
    pthread_mutex_lock(&quiet_log_lock);
    memcpy(quiet_last_error, line, n + 1);
    pthread_mutex_unlock(&quiet_log_lock);
}

static void av_log_install(void) { av_log_set_callback(av_log_capture); }

static void av_clear_error(void)
{
    pthread_once(&quiet_log_once, av_log_install);
    pthread_mutex_lock(&quiet_log_lock);
    quiet_last_error[0] = '\0';
    quiet_truncated = false;
    pthread_mutex_unlock(&quiet_log_lock);
}

static bool av_truncated(void)
{
    pthread_mutex_lock(&quiet_log_lock);
    bool t = quiet_truncated;
    pthread_mutex_unlock(&quiet_log_lock);
    return t;
}

/* The message for a failed libav call: what libav logged since av_clear_error, else the text
 * of its error code. */
static const char *av_message(int err, char buf[256])
{
    pthread_mutex_lock(&quiet_log_lock);
    bool logged = quiet_last_error[0] != '\0';
    if (logged)
        memcpy(buf, quiet_last_error, sizeof quiet_last_error);
    pthread_mutex_unlock(&quiet_log_lock);
    if (!logged && av_strerror(err, buf, 256) < 0)
        snprintf(buf, 256, "libav error %d", err);
    return buf;
}

static bool is_rgb_format(enum AVPixelFormat f)
{
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(f);
    return d && (d->flags & AV_PIX_FMT_FLAG_RGB);
}

static bool is_jpeg_range_format(enum AVPixelFormat f)
{
    return f == AV_PIX_FMT_YUVJ420P || f == AV_PIX_FMT_YUVJ422P || f == AV_PIX_FMT_YUVJ444P ||
           f == AV_PIX_FMT_YUVJ440P || f == AV_PIX_FMT_YUVJ411P;
}

static int64_t frame_duration(const AVFrame *f)
{
#if LIBAVUTIL_VERSION_INT >= AV_VERSION_INT(58, 2, 100)
    return f->duration;
#else
    return f->pkt_duration;
#endif
}

static void set_frame_duration(AVFrame *f, int64_t d)
{
#if LIBAVUTIL_VERSION_INT >= AV_VERSION_INT(58, 2, 100)
    f->duration = d;
#else
    f->pkt_duration = d;
#endif
}

/* ---- reader ---- */

struct video_reader {
    video_info info;
    char format[64], codec[64];
    uint64_t max_pixels;

    /* The input: its first bytes were read to tell Y4M from the rest and are handed out again
     * before the descriptor's further bytes. */
    int fd;
    unsigned char peek[16];
    size_t peek_len, peek_pos;

    FILE *y4m_file; /* a stream over fd that starts with the peeked bytes */
    y4m_reader *y4m;

    AVFormatContext *fmt;
    AVIOContext *pb; /* ours when the input is not a regular file */
    AVCodecContext *dec;
    int vstream;
    AVPacket *pkt;
    AVFrame *frame;
    bool frame_ready; /* frame holds a decoded picture not yet returned */
    bool eof_sent;
    struct SwsContext *sws;
    int sws_format, sws_colorspace, sws_range, sws_w, sws_h;
    uint8_t *packed[4];
    int packed_linesize[4];
    bool deep; /* RGB48 rather than RGB24 */
    int width0, height0;

    float *rgb;
    size_t rgb_pixels;
    int64_t index;
    int64_t next_pts; /* for a picture without a timestamp */
    bool failed, ended;
    lr_status err; /* of decode_next's failure */

    /* Audio and subtitle packets for a writer (see video.h, Pass-through). */
    AVPacket **queue;
    size_t queued, queue_cap, queue_bytes;
    bool drop_streams;
    video_writer *sink;
};

static lr_status copy_packet(lr_ctx *ctx, video_writer *w, AVPacket *pkt, const AVStream *in);
static void writer_unlink(video_writer *w);

static ssize_t input_read(video_reader *r, void *buf, size_t size)
{
    if (r->peek_pos < r->peek_len) {
        size_t n = r->peek_len - r->peek_pos;
        if (n > size)
            n = size;
        memcpy(buf, r->peek + r->peek_pos, n);
        r->peek_pos += n;
        return (ssize_t)n;
    }
    for (;;) {
        ssize_t n = read(r->fd, buf, size);
        if (n >= 0 || errno != EINTR)
            return n;
    }
}

static ssize_t cookie_read(void *cookie, char *buf, size_t size)
{
    return input_read(cookie, buf, size);
}

static int avio_read_input(void *opaque, uint8_t *buf, int size)
{
    ssize_t n = input_read(opaque, buf, (size_t)size);
    if (n == 0)
        return AVERROR_EOF;
    return n < 0 ? AVERROR(errno) : (int)n;
}

static lr_status check_pixels(lr_ctx *ctx, const video_reader *r, int w, int h)
{
    if (r->max_pixels && (uint64_t)w * (uint64_t)h > r->max_pixels)
        return lr_fail(ctx, LR_ERR_NOMEM, "frame is %dx%d pixels, more than --max-pixels %" PRIu64,
                       w, h, r->max_pixels);
    return LR_OK;
}

static lr_status open_y4m(lr_ctx *ctx, video_reader *r)
{
    static const cookie_io_functions_t io = {.read = cookie_read};
    r->y4m_file = fopencookie(r, "r", io);
    if (!r->y4m_file)
        return lr_fail(ctx, LR_ERR_NOMEM, "out of memory");
    lr_status s = y4m_reader_open(ctx, r->y4m_file, r->max_pixels, &r->y4m);
    if (s != LR_OK)
        return s;
    const y4m_info *yi = y4m_reader_info(r->y4m);
    video_info *vi = &r->info;
    vi->width = yi->width;
    vi->height = yi->height;
    vi->fps_num = yi->fps_num;
    vi->fps_den = yi->fps_den;
    vi->tb_num = yi->fps_den; /* pts counts frames */
    vi->tb_den = yi->fps_num;
    vi->sar_num = yi->sar_num;
    vi->sar_den = yi->sar_den;
    vi->frames = -1;
    snprintf(r->format, sizeof r->format, "yuv4mpegpipe");
    snprintf(r->codec, sizeof r->codec, "rawvideo");
    return LR_OK;
}

/* A packet of another stream: copied to the writer, held for one, or dropped (video.h,
 * Pass-through). */
static lr_status take_other_packet(lr_ctx *ctx, video_reader *r, AVPacket *pkt)
{
    AVStream *st = r->fmt->streams[pkt->stream_index];
    enum AVMediaType type = st->codecpar->codec_type;
    if (r->drop_streams || (type != AVMEDIA_TYPE_AUDIO && type != AVMEDIA_TYPE_SUBTITLE))
        return LR_OK;
    if (r->sink)
        return copy_packet(ctx, r->sink, pkt, st);
    if (r->queue_bytes + (size_t)pkt->size > QUEUE_LIMIT_BYTES)
        return lr_fail(ctx, LR_ERR_NOMEM, "more than %u MiB of audio and subtitle packets "
                       "before the output was opened", QUEUE_LIMIT_BYTES >> 20);
    if (r->queued == r->queue_cap) {
        size_t cap = r->queue_cap ? 2 * r->queue_cap : 64;
        AVPacket **q = realloc(r->queue, cap * sizeof *q);
        if (!q)
            return lr_fail(ctx, LR_ERR_NOMEM, "out of memory");
        r->queue = q;
        r->queue_cap = cap;
    }
    AVPacket *held = av_packet_alloc();
    if (!held)
        return lr_fail(ctx, LR_ERR_NOMEM, "out of memory");
    av_packet_move_ref(held, pkt);
    r->queue[r->queued++] = held;
    r->queue_bytes += (size_t)held->size;
    return LR_OK;
}

/* Decodes up to the next picture: 1 (in r->frame), 0 at the end, or -1 after an error (its
 * status in r->err). */
static int decode_next(lr_ctx *ctx, video_reader *r)
{
    char msg[256];
    int64_t next = r->index + 1; /* the frame number in messages */
    for (;;) {
        av_clear_error();
        int ret = avcodec_receive_frame(r->dec, r->frame);
        if (ret == 0)
            return 1;
        if (ret == AVERROR_EOF || (ret == AVERROR(EAGAIN) && r->eof_sent))
            return 0;
        if (ret != AVERROR(EAGAIN)) {
            r->err = lr_fail(ctx, LR_ERR_DATA, "decoding frame %" PRId64 ": %s", next,
                             av_message(ret, msg));
            return -1;
        }
        av_clear_error();
        ret = av_read_frame(r->fmt, r->pkt);
        if (ret == AVERROR_EOF && av_truncated()) {
            r->err = lr_fail(ctx, LR_ERR_DATA, "truncated stream (frame %" PRId64 ")", next);
            return -1;
        }
        if (ret == AVERROR_EOF) {
            avcodec_send_packet(r->dec, NULL); /* drain the pictures the decoder holds */
            r->eof_sent = true;
            continue;
        }
        if (ret < 0) {
            if (ret == AVERROR_INVALIDDATA)
                r->err = lr_fail(ctx, LR_ERR_DATA, "truncated stream (frame %" PRId64 "): %s",
                                 next, av_message(ret, msg));
            else
                r->err = lr_fail(ctx, LR_ERR_IO, "read error at frame %" PRId64 ": %s", next,
                                 av_message(ret, msg));
            return -1;
        }
        if (r->pkt->stream_index != r->vstream) {
            lr_status s = take_other_packet(ctx, r, r->pkt);
            av_packet_unref(r->pkt);
            if (s != LR_OK) {
                r->err = s;
                return -1;
            }
            continue;
        }
        /* A short read leaves a packet marked corrupt: decoding it would invent a picture. */
        bool corrupt = r->pkt->flags & AV_PKT_FLAG_CORRUPT;
        ret = corrupt ? 0 : avcodec_send_packet(r->dec, r->pkt);
        av_packet_unref(r->pkt);
        if (corrupt) {
            r->err = lr_fail(ctx, LR_ERR_DATA, "truncated stream (frame %" PRId64 ")", next);
            return -1;
        }
        if (ret < 0 && ret != AVERROR(EAGAIN)) {
            r->err = lr_fail(ctx, LR_ERR_DATA, "decoding frame %" PRId64 ": %s", next,
                             av_message(ret, msg));
            return -1;
        }
    }
}

static lr_status open_libav(lr_ctx *ctx, video_reader *r, const char *path, bool regular)
{
    char msg[256];
    av_clear_error();
    int ret;
    if (regular) {
        /* libavformat reads the file itself and may seek (MP4 with its index at the end). */
        close(r->fd);
        r->fd = -1;
        ret = avformat_open_input(&r->fmt, path, NULL, NULL);
    } else {
        enum { BUF = 1 << 15 };
        unsigned char *buf = av_malloc(BUF);
        r->pb = buf ? avio_alloc_context(buf, BUF, 0, r, avio_read_input, NULL, NULL) : NULL;
        r->fmt = r->pb ? avformat_alloc_context() : NULL;
        if (!r->fmt) {
            if (!r->pb)
                av_free(buf);
            return lr_fail(ctx, LR_ERR_NOMEM, "out of memory");
        }
        r->fmt->pb = r->pb;
        r->fmt->flags |= AVFMT_FLAG_CUSTOM_IO;
        ret = avformat_open_input(&r->fmt, strcmp(path, "-") == 0 ? "pipe:" : path, NULL, NULL);
    }
    if (ret < 0) /* r->fmt is freed and NULL */
        return lr_fail(ctx, LR_ERR_DATA, "not a video: %s", av_message(ret, msg));
    av_clear_error();
    ret = avformat_find_stream_info(r->fmt, NULL);
    if (ret < 0)
        return lr_fail(ctx, LR_ERR_DATA, "not a video: %s", av_message(ret, msg));

    /* The best video stream that is not a cover picture. */
    int candidate = -1;
    for (unsigned i = 0; i < r->fmt->nb_streams; i++) {
        const AVStream *st = r->fmt->streams[i];
        if (st->codecpar->codec_type == AVMEDIA_TYPE_VIDEO &&
            !(st->disposition & AV_DISPOSITION_ATTACHED_PIC) && candidate < 0)
            candidate = (int)i;
    }
    if (candidate < 0)
        return lr_fail(ctx, LR_ERR_DATA, "not a video (no video stream)");
    const AVCodec *codec = NULL;
    int best = av_find_best_stream(r->fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (best >= 0 && (r->fmt->streams[best]->disposition & AV_DISPOSITION_ATTACHED_PIC))
        best = -1;
    if (best < 0 || !codec) {
        const AVStream *st = r->fmt->streams[best >= 0 ? best : candidate];
        return lr_fail(ctx, LR_ERR_UNSUPPORTED, "unsupported video codec '%s'",
                       avcodec_get_name(st->codecpar->codec_id));
    }
    r->vstream = best;
    AVStream *st = r->fmt->streams[best];
    lr_status s = check_pixels(ctx, r, st->codecpar->width, st->codecpar->height);
    if (s != LR_OK)
        return s;

    r->dec = avcodec_alloc_context3(codec);
    r->pkt = av_packet_alloc();
    r->frame = av_frame_alloc();
    if (!r->dec || !r->pkt || !r->frame)
        return lr_fail(ctx, LR_ERR_NOMEM, "out of memory");
    av_clear_error();
    ret = avcodec_parameters_to_context(r->dec, st->codecpar);
    if (ret >= 0) {
        r->dec->pkt_timebase = st->time_base;
        r->dec->thread_count = 1; /* no frame-thread delay; the models are the slow part */
        /* libavcodec counts padded sizes: a margin, and our own check on each frame. */
        if (r->max_pixels && r->max_pixels <= INT64_MAX / 4)
            r->dec->max_pixels = 2 * (int64_t)r->max_pixels + (1 << 16);
        ret = avcodec_open2(r->dec, codec, NULL);
    }
    if (ret < 0)
        return lr_fail(ctx, LR_ERR_DATA, "not a video: %s", av_message(ret, msg));

    video_info *vi = &r->info;
    vi->width = st->codecpar->width;
    vi->height = st->codecpar->height;
    vi->tb_num = st->time_base.num;
    vi->tb_den = st->time_base.den;
    AVRational fps = st->avg_frame_rate.num > 0 && st->avg_frame_rate.den > 0 ? st->avg_frame_rate
                                                                              : st->r_frame_rate;
    if (fps.num <= 0 || fps.den <= 0)
        fps = (AVRational){25, 1};
    vi->fps_num = fps.num;
    vi->fps_den = fps.den;
    vi->frames = st->nb_frames > 0 ? st->nb_frames : -1;
    AVRational sar = st->sample_aspect_ratio.num > 0 ? st->sample_aspect_ratio
                                                     : st->codecpar->sample_aspect_ratio;
    if (sar.num > 0 && sar.den > 0) {
        vi->sar_num = sar.num;
        vi->sar_den = sar.den;
    }
    snprintf(r->format, sizeof r->format, "%s", r->fmt->iformat->name);
    snprintf(r->codec, sizeof r->codec, "%s", avcodec_get_name(st->codecpar->codec_id));

    /* Decode the first picture now, so that the size in info is the decoded one (the
     * container's may be absent or wrong); a stream without any picture fails here. */
    int got = decode_next(ctx, r);
    if (got < 0)
        return r->err;
    if (got == 0)
        return lr_fail(ctx, LR_ERR_DATA, "no frames");
    s = check_pixels(ctx, r, r->frame->width, r->frame->height);
    if (s != LR_OK)
        return s;
    r->frame_ready = true;
    vi->width = r->frame->width;
    vi->height = r->frame->height;
    return LR_OK;
}

lr_status video_reader_open(lr_ctx *ctx, const char *path, uint64_t max_pixels,
                            video_reader **out)
{
    *out = NULL;
    video_reader *r = calloc(1, sizeof *r);
    if (!r)
        return lr_fail(ctx, LR_ERR_NOMEM, "out of memory");
    r->fd = -1;
    r->vstream = -1;
    r->max_pixels = max_pixels;
    r->info.format = r->format;
    r->info.codec = r->codec;
    bool is_stdin = strcmp(path, "-") == 0;
    lr_status s = LR_OK;
    r->fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0)
        s = lr_fail(ctx, LR_ERR_IO, "cannot open: %s", strerror(errno));
    /* Peek at the first bytes; a pipe may deliver them a few at a time. */
    static const char magic[] = "YUV4MPEG2 ";
    while (s == LR_OK && r->peek_len < sizeof magic - 1) {
        ssize_t n = read(r->fd, r->peek + r->peek_len, sizeof magic - 1 - r->peek_len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            s = lr_fail(ctx, LR_ERR_IO, "read error: %s", strerror(errno));
        if (n <= 0)
            break;
        r->peek_len += (size_t)n;
    }
    if (s == LR_OK) {
        if (r->peek_len == sizeof magic - 1 && memcmp(r->peek, magic, r->peek_len) == 0) {
            s = open_y4m(ctx, r);
        } else {
            struct stat st;
            bool regular = !is_stdin && fstat(r->fd, &st) == 0 && S_ISREG(st.st_mode);
            s = open_libav(ctx, r, path, regular);
        }
    }
    if (s != LR_OK) {
        video_reader_free(r);
        return s;
    }
    *out = r;
    return LR_OK;
}

const video_info *video_reader_info(const video_reader *r) { return &r->info; }

static void clear_queue(video_reader *r)
{
    for (size_t i = 0; i < r->queued; i++)
        av_packet_free(&r->queue[i]);
    free(r->queue);
    r->queue = NULL;
    r->queued = r->queue_cap = r->queue_bytes = 0;
}

void video_reader_drop_streams(video_reader *r)
{
    r->drop_streams = true;
    clear_queue(r);
}

static lr_status ensure_rgb(lr_ctx *ctx, video_reader *r, int w, int h)
{
    size_t pixels = (size_t)w * (size_t)h;
    if (r->rgb && r->rgb_pixels == pixels)
        return LR_OK;
    free(r->rgb);
    r->rgb = malloc(3 * pixels * sizeof *r->rgb);
    r->rgb_pixels = r->rgb ? pixels : 0;
    return r->rgb ? LR_OK : lr_fail(ctx, LR_ERR_NOMEM, "out of memory");
}

/* r->frame to r->rgb through swscale (see video.h for the conversion). */
static lr_status convert_frame(lr_ctx *ctx, video_reader *r)
{
    const AVFrame *f = r->frame;
    int w = f->width, h = f->height;
    if (r->index == 0) {
        r->width0 = w;
        r->height0 = h;
    } else if (w != r->width0 || h != r->height0) {
        return lr_fail(ctx, LR_ERR_DATA, "frame %" PRId64 " is %dx%d, the stream began at %dx%d",
                       r->index + 1, w, h, r->width0, r->height0);
    }
    lr_status s = check_pixels(ctx, r, w, h);
    if (s == LR_OK)
        s = ensure_rgb(ctx, r, w, h);
    if (s != LR_OK)
        return s;

    enum AVPixelFormat src = f->format;
    bool rgb_src = is_rgb_format(src);
    int colorspace = !rgb_src && f->colorspace == AVCOL_SPC_BT709 ? SWS_CS_ITU709 : SWS_CS_DEFAULT;
    int range = !rgb_src && (f->color_range == AVCOL_RANGE_JPEG || is_jpeg_range_format(src));
    if (!r->sws || r->sws_format != (int)src || r->sws_colorspace != colorspace ||
        r->sws_range != range || r->sws_w != w || r->sws_h != h) {
        const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(src);
        if (!d)
            return lr_fail(ctx, LR_ERR_UNSUPPORTED, "unsupported pixel format %d", (int)src);
        r->deep = d->comp[0].depth > 8;
        enum AVPixelFormat dst = r->deep ? AV_PIX_FMT_RGB48 : AV_PIX_FMT_RGB24;
        sws_freeContext(r->sws);
        av_freep(&r->packed[0]);
        /* Bicubic as the ffmpeg tool's default, so that both give the same RGB. */
        r->sws = sws_getContext(w, h, src, w, h, dst, SWS_BICUBIC, NULL, NULL, NULL);
        if (!r->sws)
            return lr_fail(ctx, LR_ERR_UNSUPPORTED, "cannot convert pixel format %s to RGB",
                           d->name);
        if (!rgb_src) {
            const int *table = sws_getCoefficients(colorspace);
            sws_setColorspaceDetails(r->sws, table, range, sws_getCoefficients(SWS_CS_DEFAULT), 1,
                                     0, 1 << 16, 1 << 16);
        }
        if (av_image_alloc(r->packed, r->packed_linesize, w, h, dst, 32) < 0)
            return lr_fail(ctx, LR_ERR_NOMEM, "out of memory");
        r->sws_format = (int)src;
        r->sws_colorspace = colorspace;
        r->sws_range = range;
        r->sws_w = w;
        r->sws_h = h;
    }
    sws_scale(r->sws, (const uint8_t *const *)f->data, f->linesize, 0, h, r->packed,
              r->packed_linesize);

    size_t plane = (size_t)w * (size_t)h;
    for (int y = 0; y < h; y++) {
        float *R = r->rgb + (size_t)y * w, *G = R + plane, *B = G + plane;
        const uint8_t *row = r->packed[0] + (size_t)y * r->packed_linesize[0];
        if (r->deep) {
            const uint16_t *p = (const uint16_t *)row;
            for (int x = 0; x < w; x++) {
                R[x] = p[3 * x] / 65535.0f;
                G[x] = p[3 * x + 1] / 65535.0f;
                B[x] = p[3 * x + 2] / 65535.0f;
            }
        } else {
            for (int x = 0; x < w; x++) {
                R[x] = row[3 * x] / 255.0f;
                G[x] = row[3 * x + 1] / 255.0f;
                B[x] = row[3 * x + 2] / 255.0f;
            }
        }
    }
    return LR_OK;
}

int video_reader_next(lr_ctx *ctx, video_reader *r, video_frame *frame)
{
    if (r->failed) {
        if (!lr_ctx_last_error(ctx)[0])
            lr_fail(ctx, LR_ERR_DATA, "the input failed earlier");
        return -1;
    }
    if (r->ended)
        return 0;

    if (r->y4m) {
        y4m_frame *yf = NULL;
        int got = y4m_reader_next(ctx, r->y4m, &yf);
        if (got > 0 && ensure_rgb(ctx, r, r->info.width, r->info.height) != LR_OK)
            got = -1;
        if (got > 0) {
            y4m_frame_to_rgb(y4m_reader_info(r->y4m), yf, Y4M_BT601, Y4M_UPSAMPLE_BILINEAR,
                             r->rgb);
            frame->rgb = r->rgb;
            frame->pts = r->index;
            frame->duration = 1;
            frame->index = ++r->index;
            return 1;
        }
        if (got == 0 && r->index == 0) {
            lr_fail(ctx, LR_ERR_DATA, "no frames");
            got = -1;
        }
        if (got < 0)
            r->failed = true;
        else
            r->ended = true;
        return got;
    }

    int got = r->frame_ready ? 1 : decode_next(ctx, r);
    r->frame_ready = false;
    if (got == 0 && r->index == 0) {
        lr_fail(ctx, LR_ERR_DATA, "no frames");
        got = -1;
    }
    if (got > 0 && convert_frame(ctx, r) != LR_OK)
        got = -1;
    if (got <= 0) {
        av_frame_unref(r->frame);
        if (got < 0)
            r->failed = true;
        else
            r->ended = true;
        return got;
    }

    const AVStream *st = r->fmt->streams[r->vstream];
    int64_t pts = r->frame->best_effort_timestamp;
    int64_t duration = frame_duration(r->frame);
    if (duration < 0)
        duration = 0;
    if (pts == AV_NOPTS_VALUE)
        pts = r->next_pts;
    int64_t step = duration;
    if (step <= 0) /* one frame at the nominal rate */
        step = av_rescale_q(1, (AVRational){r->info.fps_den, r->info.fps_num}, st->time_base);
    r->next_pts = pts + (step > 0 ? step : 1);
    frame->rgb = r->rgb;
    frame->pts = pts;
    frame->duration = duration;
    frame->index = ++r->index;
    av_frame_unref(r->frame);
    return 1;
}

void video_reader_free(video_reader *r)
{
    if (!r)
        return;
    if (r->sink)
        writer_unlink(r->sink);
    video_reader_drop_streams(r);
    y4m_reader_free(r->y4m);
    if (r->y4m_file)
        fclose(r->y4m_file);
    sws_freeContext(r->sws);
    av_freep(&r->packed[0]);
    av_frame_free(&r->frame);
    av_packet_free(&r->pkt);
    avcodec_free_context(&r->dec);
    avformat_close_input(&r->fmt);
    if (r->pb) {
        av_freep(&r->pb->buffer);
        avio_context_free(&r->pb);
    }
    if (r->fd > STDIN_FILENO)
        close(r->fd);
    free(r->rgb);
    free(r);
}

/* ---- writer ---- */

struct video_writer {
    video_writer_opts opts;
    lr_ctx *ctx; /* for errors outside video_writer_frame: copied packets, close */
    output *out;

    bool y4m;
    y4m_info yinfo;
    y4m_frame yframe;

    AVFormatContext *fmt;
    AVIOContext *pb;
    AVCodecContext *enc;
    AVStream *st;
    AVFrame *frame;
    AVPacket *pkt;
    struct SwsContext *sws;
    uint8_t *rgb24;
    AVRational in_tb, enc_tb;
    int64_t last_pts, last_in_pts, default_duration;
    bool have_last;
    int64_t ring_pts[DURATION_RING], ring_dur[DURATION_RING];
    unsigned ring_next;

    video_reader *source;
    int *map; /* input stream -> output stream, -1: not copied */
    int n_map;
};

static void writer_unlink(video_writer *w)
{
    if (w->source) { /* later packets have nowhere to go */
        w->source->sink = NULL;
        w->source->drop_streams = true;
    }
    w->source = NULL;
}

static int write_output(void *opaque, uint8_t *buf, int size)
{
    FILE *f = output_stream(((video_writer *)opaque)->out);
    return fwrite(buf, 1, (size_t)size, f) == (size_t)size ? size : AVERROR(EIO);
}

static int64_t seek_output(void *opaque, int64_t offset, int whence)
{
    FILE *f = output_stream(((video_writer *)opaque)->out);
    if (whence & AVSEEK_SIZE) {
        struct stat st;
        if (fflush(f) != 0 || fstat(fileno(f), &st) != 0)
            return AVERROR(errno);
        return st.st_size;
    }
    if (fseeko(f, (off_t)offset, whence & ~AVSEEK_FORCE) != 0)
        return AVERROR(errno);
    return ftello(f);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

static const AVCodec *pick_encoder(const AVOutputFormat *ofmt, const char *name)
{
    if (name) {
        if (strcmp(name, "h264") == 0 || strcmp(name, "x264") == 0)
            name = "libx264";
        const AVCodec *c = avcodec_find_encoder_by_name(name);
        if (!c) {
            const AVCodecDescriptor *d = avcodec_descriptor_get_by_name(name);
            c = d ? avcodec_find_encoder(d->id) : NULL;
        }
        return c && av_codec_is_encoder(c) && c->type == AVMEDIA_TYPE_VIDEO ? c : NULL;
    }
    if (ofmt->video_codec == AV_CODEC_ID_H264) {
        const AVCodec *c = avcodec_find_encoder_by_name("libx264");
        if (c)
            return c;
    }
    return ofmt->video_codec != AV_CODEC_ID_NONE ? avcodec_find_encoder(ofmt->video_codec)
                                                 : avcodec_find_encoder(AV_CODEC_ID_FFV1);
}

static bool supports(const AVCodec *c, enum AVPixelFormat f)
{
    for (const enum AVPixelFormat *p = c->pix_fmts; p && *p != AV_PIX_FMT_NONE; p++)
        if (*p == f)
            return true;
    return false;
}

static enum AVPixelFormat pick_pix_fmt(const AVCodec *c, int width, int height)
{
    if (!c->pix_fmts)
        return AV_PIX_FMT_YUV420P;
    if (c->id == AV_CODEC_ID_FFV1) {
        /* RGB stays lossless after the rounding to 8 bits. */
        static const enum AVPixelFormat lossless[] = {AV_PIX_FMT_0RGB32, AV_PIX_FMT_GBRP,
                                                      AV_PIX_FMT_YUV444P};
        for (size_t i = 0; i < sizeof lossless / sizeof *lossless; i++)
            if (supports(c, lossless[i]))
                return lossless[i];
    }
    if (c->pix_fmts[0] == AV_PIX_FMT_YUVJ420P) /* mjpeg: full range is its standard */
        return AV_PIX_FMT_YUVJ420P;
    /* libx264 refuses 4:2:0 at odd sizes. */
    bool odd = (width | height) & 1;
    if (supports(c, AV_PIX_FMT_YUV420P) && !(odd && strcmp(c->name, "libx264") == 0))
        return AV_PIX_FMT_YUV420P;
    if (supports(c, AV_PIX_FMT_YUV444P))
        return AV_PIX_FMT_YUV444P;
    return c->pix_fmts[0];
}

static void writer_free(video_writer *w)
{
    writer_unlink(w);
    y4m_frame_free(&w->yframe);
    sws_freeContext(w->sws);
    free(w->rgb24);
    av_frame_free(&w->frame);
    av_packet_free(&w->pkt);
    avcodec_free_context(&w->enc);
    avformat_free_context(w->fmt);
    if (w->pb) {
        av_freep(&w->pb->buffer);
        avio_context_free(&w->pb);
    }
    free(w->map);
    lr_ctx_destroy(w->ctx);
    free(w);
}

void video_writer_abort(video_writer *w)
{
    if (!w)
        return;
    if (w->out)
        output_abort(w->out);
    writer_free(w);
}

/* Reports msg for the output, removes it and returns CLI_EXIT_DATA (or status). */
static int writer_fail(video_writer *w, const char *path, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int writer_fail(video_writer *w, const char *path, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cli_error(path, "%s", msg);
    video_writer_abort(w);
    return status;
}

static lr_status write_packets(lr_ctx *ctx, video_writer *w)
{
    char msg[256];
    for (;;) {
        av_clear_error();
        int ret = avcodec_receive_packet(w->enc, w->pkt);
        if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF)
            return LR_OK;
        if (ret < 0)
            return lr_fail(ctx, LR_ERR_DATA, "encoding: %s", av_message(ret, msg));
        if (w->pkt->duration <= 0) {
            w->pkt->duration = w->default_duration;
            for (unsigned i = 0; i < DURATION_RING; i++)
                if (w->ring_pts[i] == w->pkt->pts && w->ring_dur[i] > 0) {
                    w->pkt->duration = w->ring_dur[i];
                    break;
                }
        }
        av_packet_rescale_ts(w->pkt, w->enc_tb, w->st->time_base);
        w->pkt->stream_index = w->st->index;
        ret = av_interleaved_write_frame(w->fmt, w->pkt);
        if (ret < 0)
            return lr_fail(ctx, LR_ERR_IO, "write error: %s", av_message(ret, msg));
    }
}

static lr_status copy_packet(lr_ctx *ctx, video_writer *w, AVPacket *pkt, const AVStream *in)
{
    if (pkt->stream_index >= w->n_map || w->map[pkt->stream_index] < 0)
        return LR_OK;
    AVStream *out = w->fmt->streams[w->map[pkt->stream_index]];
    av_packet_rescale_ts(pkt, in->time_base, out->time_base);
    pkt->stream_index = out->index;
    pkt->pos = -1;
    av_clear_error();
    int ret = av_interleaved_write_frame(w->fmt, pkt);
    if (ret < 0) {
        char msg[256];
        return lr_fail(ctx, LR_ERR_IO, "copying stream %d to the output: %s", in->index,
                       av_message(ret, msg));
    }
    return LR_OK;
}

static int open_y4m_writer(video_writer *w, const char *path, video_reader *copy_from,
                           bool force)
{
    const video_writer_opts *o = &w->opts;
    const char *name = strcmp(path, "-") == 0 ? "stdout" : path;
    lr_status s = y4m_info_init(w->ctx, &w->yinfo, o->width, o->height, "420jpeg");
    if (s == LR_OK) {
        w->yinfo.fps_num = o->fps_num;
        w->yinfo.fps_den = o->fps_den;
        if (o->sar_num > 0 && o->sar_den > 0) {
            w->yinfo.sar_num = o->sar_num;
            w->yinfo.sar_den = o->sar_den;
        }
        s = y4m_frame_alloc(w->ctx, &w->yinfo, &w->yframe);
    }
    if (s != LR_OK) {
        int rc = cli_report(w->ctx, s, name);
        video_writer_abort(w);
        return rc;
    }
    if (copy_from) /* Y4M holds video only */
        video_reader_drop_streams(copy_from);
    int rc = output_open(path, true, force, &w->out);
    if (rc != CLI_EXIT_OK) {
        video_writer_abort(w);
        return rc;
    }
    s = y4m_write_header(w->ctx, output_stream(w->out), &w->yinfo);
    if (s != LR_OK) {
        rc = cli_report(w->ctx, s, name);
        video_writer_abort(w);
        return rc;
    }
    return CLI_EXIT_OK;
}

int video_writer_open(const char *path, const video_writer_opts *opts, video_reader *copy_from,
                      bool force, video_writer **out)
{
    *out = NULL;
    char msg[256];
    video_writer *w = calloc(1, sizeof *w);
    lr_ctx_params p = lr_ctx_default_params();
    p.n_threads = 1;
    p.log_level = LR_LOG_ERROR;
    if (!w || lr_ctx_create(&w->ctx, &p) != LR_OK) {
        free(w);
        cli_error(path, "out of memory");
        return CLI_EXIT_DATA;
    }
    w->opts = *opts;
    w->opts.codec = NULL; /* not kept: the caller owns the string */
    if (opts->width < 1 || opts->height < 1 || opts->tb_num < 1 || opts->tb_den < 1 ||
        opts->fps_num < 1 || opts->fps_den < 1)
        return writer_fail(w, path, CLI_EXIT_USAGE, "bad video parameters %dx%d, time base %d/%d, "
                           "%d/%d frames/s", opts->width, opts->height, opts->tb_num,
                           opts->tb_den, opts->fps_num, opts->fps_den);

    if (strcmp(path, "-") == 0 || ends_with(path, ".y4m")) {
        int rc = open_y4m_writer(w, path, copy_from, force);
        if (rc == CLI_EXIT_OK) {
            w->y4m = true;
            *out = w;
        }
        return rc;
    }

    av_clear_error();
    const AVOutputFormat *ofmt = av_guess_format(NULL, path, NULL);
    if (!ofmt || ofmt->video_codec == AV_CODEC_ID_NONE)
        return writer_fail(w, path, CLI_EXIT_USAGE, "cannot tell a video container from the "
                           "name (use .mkv, .mp4, .mov, .avi, .nut, .webm or .y4m)");
    const AVCodec *codec = pick_encoder(ofmt, opts->codec);
    if (!codec)
        return writer_fail(w, path, cli_exit_code(LR_ERR_UNSUPPORTED), "no encoder '%s'",
                           opts->codec ? opts->codec : avcodec_get_name(ofmt->video_codec));
    if (avformat_query_codec(ofmt, codec->id, FF_COMPLIANCE_NORMAL) == 0)
        return writer_fail(w, path, cli_exit_code(LR_ERR_UNSUPPORTED),
                           "the %s container cannot hold %s video", ofmt->name,
                           avcodec_get_name(codec->id));

    int rc = output_open(path, true, force, &w->out);
    if (rc != CLI_EXIT_OK) {
        video_writer_abort(w);
        return rc;
    }
    FILE *f = output_stream(w->out);
    struct stat fst;
    bool seekable = fstat(fileno(f), &fst) == 0 && S_ISREG(fst.st_mode);

    if (avformat_alloc_output_context2(&w->fmt, ofmt, NULL, path) < 0 || !w->fmt)
        return writer_fail(w, path, CLI_EXIT_DATA, "out of memory");
    enum { BUF = 1 << 16 };
    unsigned char *buf = av_malloc(BUF);
    w->pb = buf ? avio_alloc_context(buf, BUF, 1, w, NULL, write_output,
                                     seekable ? seek_output : NULL)
                : NULL;
    if (!w->pb) {
        av_free(buf);
        return writer_fail(w, path, CLI_EXIT_DATA, "out of memory");
    }
    w->fmt->pb = w->pb;
    w->fmt->flags |= AVFMT_FLAG_CUSTOM_IO;

    /* The encoder. AVI is constant-rate: its time base is the frame period. MPEG-4 part 2
     * allows time base denominators up to 65535. */
    w->in_tb = (AVRational){opts->tb_num, opts->tb_den};
    w->enc_tb = w->in_tb;
    av_reduce(&w->enc_tb.num, &w->enc_tb.den, w->in_tb.num, w->in_tb.den, INT_MAX);
    AVRational period = {opts->fps_den, opts->fps_num};
    av_reduce(&period.num, &period.den, period.num, period.den, INT_MAX);
    if (strcmp(ofmt->name, "avi") == 0 || (codec->id == AV_CODEC_ID_MPEG4 && w->enc_tb.den > 65535))
        w->enc_tb = period;
    w->default_duration = av_rescale_q(1, period, w->enc_tb);
    if (w->default_duration < 1)
        w->default_duration = 1;

    w->enc = avcodec_alloc_context3(codec);
    w->pkt = av_packet_alloc();
    w->frame = av_frame_alloc();
    w->map = copy_from ? calloc(copy_from->fmt ? copy_from->fmt->nb_streams + 1 : 1, sizeof *w->map)
                       : NULL;
    if (!w->enc || !w->pkt || !w->frame || (copy_from && !w->map))
        return writer_fail(w, path, CLI_EXIT_DATA, "out of memory");
    AVCodecContext *e = w->enc;
    e->width = opts->width;
    e->height = opts->height;
    e->time_base = w->enc_tb;
    e->framerate = (AVRational){opts->fps_num, opts->fps_den};
    e->pix_fmt = pick_pix_fmt(codec, opts->width, opts->height);
    e->sample_aspect_ratio = opts->sar_num > 0 && opts->sar_den > 0
                                 ? (AVRational){opts->sar_num, opts->sar_den}
                                 : (AVRational){0, 1};
    e->thread_count = 1; /* the same bytes on every machine */
    if (!is_rgb_format(e->pix_fmt)) {
        e->colorspace = AVCOL_SPC_SMPTE170M; /* swscale's BT.601 */
        e->color_range = is_jpeg_range_format(e->pix_fmt) ? AVCOL_RANGE_JPEG : AVCOL_RANGE_MPEG;
    }
    if (ofmt->flags & AVFMT_GLOBALHEADER)
        e->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    if (strcmp(codec->name, "libx264") == 0) {
        av_opt_set(e->priv_data, "preset", "veryfast", 0);
        av_opt_set(e->priv_data, "crf", "18", 0);
    } else if (codec->id == AV_CODEC_ID_MPEG4) {
        e->flags |= AV_CODEC_FLAG_QSCALE;
        e->global_quality = FF_QP2LAMBDA * 3;
    }
    av_clear_error();
    int ret = avcodec_open2(e, codec, NULL);
    if (ret < 0)
        return writer_fail(w, path, CLI_EXIT_DATA, "cannot open the %s encoder: %s", codec->name,
                           av_message(ret, msg));

    w->st = avformat_new_stream(w->fmt, NULL);
    if (!w->st || avcodec_parameters_from_context(w->st->codecpar, e) < 0)
        return writer_fail(w, path, CLI_EXIT_DATA, "out of memory");
    w->st->time_base = w->enc_tb;
    w->st->avg_frame_rate = e->framerate;
    w->st->r_frame_rate = e->framerate;
    w->st->sample_aspect_ratio = e->sample_aspect_ratio;

    if (copy_from && copy_from->fmt && !copy_from->drop_streams) {
        AVFormatContext *in = copy_from->fmt;
        w->n_map = (int)in->nb_streams;
        for (int i = 0; i < w->n_map; i++) {
            const AVStream *ist = in->streams[i];
            enum AVMediaType type = ist->codecpar->codec_type;
            w->map[i] = -1;
            if ((type != AVMEDIA_TYPE_AUDIO && type != AVMEDIA_TYPE_SUBTITLE) ||
                avformat_query_codec(ofmt, ist->codecpar->codec_id, FF_COMPLIANCE_NORMAL) == 0) {
                if (type == AVMEDIA_TYPE_AUDIO || type == AVMEDIA_TYPE_SUBTITLE)
                    cli_warn(path, "the %s container cannot hold the %s stream %d; left out",
                             ofmt->name, avcodec_get_name(ist->codecpar->codec_id), i);
                continue;
            }
            AVStream *ost = avformat_new_stream(w->fmt, NULL);
            if (!ost || avcodec_parameters_copy(ost->codecpar, ist->codecpar) < 0)
                return writer_fail(w, path, CLI_EXIT_DATA, "out of memory");
            ost->codecpar->codec_tag = 0;
            ost->time_base = ist->time_base;
            ost->disposition = ist->disposition;
            av_dict_copy(&ost->metadata, ist->metadata, 0);
            w->map[i] = ost->index;
        }
    }

    AVDictionary *muxer_opts = NULL;
    if (!seekable && (strcmp(ofmt->name, "mp4") == 0 || strcmp(ofmt->name, "mov") == 0))
        av_dict_set(&muxer_opts, "movflags", "frag_keyframe+empty_moov", 0);
    av_clear_error();
    ret = avformat_write_header(w->fmt, &muxer_opts);
    av_dict_free(&muxer_opts);
    if (ret < 0)
        return writer_fail(w, path, CLI_EXIT_DATA, "cannot write the %s header: %s", ofmt->name,
                           av_message(ret, msg));

    w->frame->format = e->pix_fmt;
    w->frame->width = e->width;
    w->frame->height = e->height;
    w->rgb24 = malloc((size_t)opts->width * opts->height * 3);
    w->sws = sws_getContext(e->width, e->height, AV_PIX_FMT_RGB24, e->width, e->height, e->pix_fmt,
                            SWS_BICUBIC, NULL, NULL, NULL);
    if (!w->rgb24 || !w->sws || av_frame_get_buffer(w->frame, 0) < 0)
        return writer_fail(w, path, CLI_EXIT_DATA, "out of memory");

    /* Audio and subtitles demuxed so far, then the rest as the reader meets them. */
    if (copy_from && !copy_from->drop_streams && copy_from->fmt) {
        copy_from->sink = w;
        w->source = copy_from;
        for (size_t i = 0; i < copy_from->queued; i++) {
            AVPacket *q = copy_from->queue[i];
            lr_status s = copy_packet(w->ctx, w, q, copy_from->fmt->streams[q->stream_index]);
            if (s != LR_OK)
                return writer_fail(w, path, CLI_EXIT_DATA, "%s", lr_ctx_last_error(w->ctx));
        }
        clear_queue(copy_from);
    } else if (copy_from) {
        video_reader_drop_streams(copy_from);
    }
    *out = w;
    return CLI_EXIT_OK;
}

lr_status video_writer_frame(lr_ctx *ctx, video_writer *w, const float *rgb, int64_t pts,
                             int64_t duration)
{
    if (w->y4m) {
        y4m_frame_from_rgb(&w->yinfo, rgb, Y4M_BT601, &w->yframe);
        return y4m_write_frame(ctx, output_stream(w->out), &w->yinfo, &w->yframe);
    }
    if (w->have_last && pts <= w->last_in_pts)
        return lr_fail(ctx, LR_ERR_ARG, "frame pts %" PRId64 " after %" PRId64
                       " (timestamps must increase)", pts, w->last_in_pts);
    int width = w->opts.width, height = w->opts.height;
    size_t plane = (size_t)width * height;
    for (size_t i = 0; i < plane; i++)
        for (int c = 0; c < 3; c++) {
            float v = rgb[c * plane + i] * 255.0f + 0.5f;
            w->rgb24[3 * i + c] = v >= 255.0f ? 255 : v > 0.0f ? (uint8_t)v : 0; /* NaN: 0 */
        }
    char msg[256];
    if (av_frame_make_writable(w->frame) < 0)
        return lr_fail(ctx, LR_ERR_NOMEM, "out of memory");
    const uint8_t *src[1] = {w->rgb24};
    const int stride[1] = {3 * width};
    sws_scale(w->sws, src, stride, 0, height, w->frame->data, w->frame->linesize);

    int64_t enc_pts = av_rescale_q_rnd(pts, w->in_tb, w->enc_tb,
                                       AV_ROUND_NEAR_INF | AV_ROUND_PASS_MINMAX);
    if (w->have_last && enc_pts <= w->last_pts)
        enc_pts = w->last_pts + 1; /* two frames in one slot of a coarser time base */
    w->last_in_pts = pts;
    w->last_pts = enc_pts;
    w->have_last = true;
    int64_t dur = duration > 0 ? av_rescale_q(duration, w->in_tb, w->enc_tb) : w->default_duration;
    if (dur < 1)
        dur = 1;
    w->ring_pts[w->ring_next] = enc_pts;
    w->ring_dur[w->ring_next] = dur;
    w->ring_next = (w->ring_next + 1) % DURATION_RING;

    w->frame->pts = enc_pts;
    set_frame_duration(w->frame, dur);
    w->frame->quality = w->enc->global_quality;
    av_clear_error();
    int ret = avcodec_send_frame(w->enc, w->frame);
    if (ret < 0)
        return lr_fail(ctx, LR_ERR_DATA, "encoding: %s", av_message(ret, msg));
    return write_packets(ctx, w);
}

int video_writer_close(video_writer *w)
{
    if (w->y4m) {
        int rc = output_commit(w->out);
        w->out = NULL;
        writer_free(w);
        return rc;
    }
    const char *name = output_name(w->out);
    char msg[256];
    av_clear_error();
    int ret = avcodec_send_frame(w->enc, NULL);
    if (ret < 0 && ret != AVERROR_EOF)
        return writer_fail(w, name, CLI_EXIT_DATA, "encoding: %s", av_message(ret, msg));
    if (write_packets(w->ctx, w) != LR_OK)
        return writer_fail(w, name, CLI_EXIT_DATA, "%s", lr_ctx_last_error(w->ctx));
    av_clear_error();
    ret = av_write_trailer(w->fmt);
    if (ret < 0)
        return writer_fail(w, name, CLI_EXIT_DATA, "writing the trailer: %s",
                           av_message(ret, msg));
    avio_flush(w->pb);
    if (w->pb->error < 0)
        return writer_fail(w, name, CLI_EXIT_DATA, "write error: %s",
                           av_message(w->pb->error, msg));
    writer_unlink(w);
    int rc = output_commit(w->out); /* reports its own errors */
    w->out = NULL;
    writer_free(w);
    return rc;
}
