/* Video I/O of video-animate (cmd/video-animate/video.h): synthetic frames (gradients and a
 * moving light square) written and read back through .y4m (exactly y4m.h's conversions), .mkv
 * (ffv1: exact), .mp4 (libx264: PSNR and ffprobe's frame count), .avi (mpeg4: PSNR), .mov at an
 * odd size, checking the frame count, timestamps, size and quality; a non-seekable input (a
 * FIFO: the stdin code path); hostile input (missing, empty, random bytes, audio only, unknown
 * codec, size change mid-stream, truncated .mkv, .avi and .mp4, the pixel limit) rejected with
 * one line and nothing on stderr; a PNG read as a one-frame video; writer errors leaving no
 * file; audio copied into a container; first frames equal to the ffmpeg tool's RGB (BT.709,
 * full range, 4:2:2, RGB, 10 bits); and, when present,
 * ../shared/data/video/vtest.avi (795 frames; the first against ffmpeg's RGB).
 * Parts that need the ffmpeg or ffprobe tools say "note: ... skipped" without them. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "capture.h"
#include "check.h"
#include "cli.h"
#include "image.h"
#include "longrange/core.h"
#include "y4m.h"
#include "../../cmd/video-animate/video.h"

static char tmpdir[256];

static lr_ctx *quiet_ctx(void)
{
    lr_ctx_params p = lr_ctx_default_params();
    p.n_threads = 1;
    p.log_level = LR_LOG_ERROR;
    lr_ctx *ctx = NULL;
    return lr_ctx_create(&ctx, &p) == LR_OK ? ctx : NULL;
}

static const char *tmp_path(const char *name)
{
    static char buf[4][512];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    return p;
}

static bool have_tool(const char *name)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", name);
    return system(cmd) == 0;
}

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Frame k: red rises left to right, green top to bottom, blue a smooth wave over time, and a
 * 9x7 square moving right by 3 pixels a frame. */
static void synth(float *rgb, int w, int h, int k)
{
    size_t plane = (size_t)w * h;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            size_t i = (size_t)y * w + x;
            float r = (float)x / (w - 1), g = (float)y / (h - 1);
            float b = 0.5f + 0.25f * sinf(0.09f * x + 0.07f * y + 0.4f * k);
            int sx = (2 + 3 * k) % (w - 9), sy = h / 3;
            if (x >= sx && x < sx + 9 && y >= sy && y < sy + 7)
                r = 0.95f, g = 0.9f, b = 0.8f;
            rgb[i] = r;
            rgb[plane + i] = g;
            rgb[2 * plane + i] = b;
        }
}

static double psnr(const float *a, const float *b, size_t n)
{
    double se = 0;
    for (size_t i = 0; i < n; i++)
        se += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    double mse = se / n;
    return mse > 0 ? 10 * log10(1 / mse) : 99;
}

/* The largest difference from the source once both are rounded to 8 bits. */
static int max_diff8(const float *got, const float *want, size_t n)
{
    int worst = 0;
    for (size_t i = 0; i < n; i++) { /* rounded as the writer rounds */
        int a = (int)floorf(got[i] * 255 + 0.5f), b = (int)floorf(want[i] * 255 + 0.5f);
        if (abs(a - b) > worst)
            worst = abs(a - b);
    }
    return worst;
}

typedef struct {
    int w, h, n;
    int tb_num, tb_den, fps_num, fps_den;
    const char *codec;
    const int64_t *pts; /* NULL: 0, 1, 2... */
} spec;

static int write_video(const char *path, const spec *s)
{
    lr_ctx *ctx = quiet_ctx();
    video_writer_opts o = {.width = s->w, .height = s->h, .tb_num = s->tb_num,
                           .tb_den = s->tb_den, .fps_num = s->fps_num, .fps_den = s->fps_den,
                           .codec = s->codec};
    video_writer *w = NULL;
    int rc = video_writer_open(path, &o, NULL, false, &w);
    float *rgb = malloc(sizeof(float) * 3 * s->w * s->h);
    for (int k = 0; rc == CLI_EXIT_OK && k < s->n; k++) {
        synth(rgb, s->w, s->h, k);
        if (video_writer_frame(ctx, w, rgb, s->pts ? s->pts[k] : k, 0) != LR_OK) {
            printf("  %s: frame %d: %s\n", path, k, lr_ctx_last_error(ctx));
            video_writer_abort(w);
            rc = CLI_EXIT_DATA;
        }
    }
    if (rc == CLI_EXIT_OK)
        rc = video_writer_close(w);
    free(rgb);
    lr_ctx_destroy(ctx);
    return rc;
}

typedef struct {
    int frames;
    double min_psnr;
    int max_diff;
    bool pts_increasing;
    int64_t pts[64];
    video_info info;
    char format[64], codec[64];
    lr_status open_status;
    int last; /* the last video_reader_next result */
    char error[256];
} readback;

/* Reads path to its end (or error), comparing frame k with synth(k). */
static void read_video(const char *path, uint64_t max_pixels, readback *rb)
{
    memset(rb, 0, sizeof *rb);
    rb->min_psnr = 99;
    rb->pts_increasing = true;
    lr_ctx *ctx = quiet_ctx();
    video_reader *r = NULL;
    rb->open_status = video_reader_open(ctx, path, max_pixels, &r);
    if (rb->open_status != LR_OK) {
        snprintf(rb->error, sizeof rb->error, "%s", lr_ctx_last_error(ctx));
        lr_ctx_destroy(ctx);
        return;
    }
    rb->info = *video_reader_info(r);
    snprintf(rb->format, sizeof rb->format, "%s", rb->info.format);
    snprintf(rb->codec, sizeof rb->codec, "%s", rb->info.codec);
    int w = rb->info.width, h = rb->info.height;
    float *want = malloc(sizeof(float) * 3 * w * h);
    video_frame f;
    while ((rb->last = video_reader_next(ctx, r, &f)) > 0) {
        synth(want, w, h, rb->frames);
        double p = psnr(f.rgb, want, (size_t)3 * w * h);
        if (p < rb->min_psnr)
            rb->min_psnr = p;
        int d = max_diff8(f.rgb, want, (size_t)3 * w * h);
        if (d > rb->max_diff)
            rb->max_diff = d;
        if (rb->frames < 64)
            rb->pts[rb->frames] = f.pts;
        if (rb->frames > 0 && rb->frames < 64 && f.pts <= rb->pts[rb->frames - 1])
            rb->pts_increasing = false;
        if (f.index != rb->frames + 1)
            rb->pts_increasing = false;
        rb->frames++;
    }
    if (rb->last < 0)
        snprintf(rb->error, sizeof rb->error, "%s", lr_ctx_last_error(ctx));
    /* After the end or an error, the same answer again. */
    int again = video_reader_next(ctx, r, &f);
    if (again != rb->last)
        rb->last = 99;
    free(want);
    video_reader_free(r);
    lr_ctx_destroy(ctx);
}

/* ---- round trips ---- */

static void test_y4m_roundtrip(void)
{
    static const int sizes[][2] = {{64, 48}, {67, 45}};
    for (int i = 0; i < 2; i++) {
        spec s = {sizes[i][0], sizes[i][1], 6, 1001, 30000, 30000, 1001, NULL, NULL};
        const char *path = tmp_path("rt.y4m");
        REQUIRE(write_video(path, &s) == CLI_EXIT_OK);
        FILE *f = fopen(path, "rb");
        char head[64] = {0};
        REQUIRE(f && fgets(head, sizeof head, f));
        fclose(f);
        CHECKF(strncmp(head, "YUV4MPEG2 ", 10) == 0 && strstr(head, " F30000:1001") &&
                   strstr(head, " C420jpeg"), "header %s", head);
        readback rb;
        read_video(path, 0, &rb);
        REQUIRE(rb.open_status == LR_OK);
        CHECK(rb.last == 0 && rb.frames == 6);
        CHECK(rb.info.width == s.w && rb.info.height == s.h);
        CHECK(rb.info.fps_num == 30000 && rb.info.fps_den == 1001);
        CHECK(rb.info.tb_num == 1001 && rb.info.tb_den == 30000 && rb.info.frames == -1);
        CHECK(strcmp(rb.format, "yuv4mpegpipe") == 0 && strcmp(rb.codec, "rawvideo") == 0);
        CHECK(rb.pts_increasing && rb.pts[0] == 0 && rb.pts[5] == 5);
        CHECKF(rb.min_psnr > 33, "%dx%d: PSNR %.2f dB", s.w, s.h, rb.min_psnr);

        /* Exactly y4m.h's conversions: RGB -> 4:2:0 -> RGB with bilinear chroma, BT.601. */
        lr_ctx *ctx = quiet_ctx();
        y4m_info yi;
        y4m_frame yf = {0};
        size_t n = (size_t)3 * s.w * s.h;
        float *src = malloc(n * sizeof *src), *want = malloc(n * sizeof *want);
        video_reader *r = NULL;
        REQUIRE(y4m_info_init(ctx, &yi, s.w, s.h, "420jpeg") == LR_OK);
        REQUIRE(y4m_frame_alloc(ctx, &yi, &yf) == LR_OK);
        REQUIRE(video_reader_open(ctx, path, 0, &r) == LR_OK);
        video_frame vf;
        for (int k = 0; video_reader_next(ctx, r, &vf) > 0; k++) {
            synth(src, s.w, s.h, k);
            y4m_frame_from_rgb(&yi, src, Y4M_BT601, &yf);
            y4m_frame_to_rgb(&yi, &yf, Y4M_BT601, Y4M_UPSAMPLE_BILINEAR, want);
            CHECKF(memcmp(vf.rgb, want, n * sizeof *want) == 0, "frame %d differs", k + 1);
        }
        video_reader_free(r);
        y4m_frame_free(&yf);
        free(src);
        free(want);
        lr_ctx_destroy(ctx);
        remove(path);
    }
}

static void test_mkv_ffv1_exact(void)
{
    /* Irregular timestamps in milliseconds (Matroska's own base) come back as written. */
    static const int64_t pts[] = {0, 40, 100, 133, 200, 1000, 1040};
    spec s = {67, 45, 7, 1, 1000, 25, 1, "ffv1", pts};
    const char *path = tmp_path("rt.mkv");
    REQUIRE(write_video(path, &s) == CLI_EXIT_OK);
    readback rb;
    read_video(path, 0, &rb);
    REQUIRE(rb.open_status == LR_OK);
    CHECKF(rb.last == 0 && rb.frames == 7, "%d frames, %d: %s", rb.frames, rb.last, rb.error);
    CHECK(rb.info.width == 67 && rb.info.height == 45);
    CHECK(strcmp(rb.codec, "ffv1") == 0 && strstr(rb.format, "matroska"));
    CHECK(rb.info.tb_num == 1 && rb.info.tb_den == 1000);
    for (int k = 0; k < 7 && k < rb.frames; k++)
        CHECKF(rb.pts[k] == pts[k], "frame %d: pts %lld, wrote %lld", k + 1,
               (long long)rb.pts[k], (long long)pts[k]);
    CHECKF(rb.max_diff == 0, "ffv1 differs by %d/255", rb.max_diff);
    remove(path);
}

static void test_mp4_x264(void)
{
    spec s = {128, 96, 12, 1, 25, 25, 1, NULL, NULL};
    const char *path = tmp_path("rt.mp4");
    REQUIRE(write_video(path, &s) == CLI_EXIT_OK);
    readback rb;
    read_video(path, 0, &rb);
    REQUIRE(rb.open_status == LR_OK);
    CHECKF(rb.last == 0 && rb.frames == 12, "%d frames: %s", rb.frames, rb.error);
    CHECK(strcmp(rb.codec, "h264") == 0 && rb.info.frames == 12);
    CHECK(rb.info.fps_num == 25 && rb.info.fps_den == 1);
    CHECK(rb.pts_increasing && rb.pts[0] == 0);
    CHECKF(rb.min_psnr > 35, "x264 PSNR %.2f dB", rb.min_psnr);
    /* Every frame is there for another reader too (no edit list hiding the last one). */
    if (have_tool("ffprobe")) {
        char cmd[700];
        snprintf(cmd, sizeof cmd, "ffprobe -v error -count_frames -select_streams v:0 "
                 "-show_entries stream=nb_read_frames -of csv=p=0 '%s'", path);
        FILE *p = popen(cmd, "r");
        int n = -1;
        CHECK(p && fscanf(p, "%d", &n) == 1);
        if (p)
            pclose(p);
        CHECKF(n == 12, "ffprobe counts %d frames", n);
    } else {
        printf("note: ffprobe is not installed; its frame count of the MP4 skipped\n");
    }
    remove(path);

    /* An odd size goes to 4:4:4 (x264 refuses odd 4:2:0); .mov takes the same codec. */
    spec odd = {131, 97, 5, 1, 25, 25, 1, "h264", NULL};
    path = tmp_path("odd.mov");
    REQUIRE(write_video(path, &odd) == CLI_EXIT_OK);
    read_video(path, 0, &rb);
    CHECKF(rb.open_status == LR_OK && rb.last == 0 && rb.frames == 5, "%s", rb.error);
    CHECK(rb.info.width == 131 && rb.info.height == 97);
    CHECKF(rb.min_psnr > 35, "x264 4:4:4 PSNR %.2f dB", rb.min_psnr);
    remove(path);
}

static void test_avi_mpeg4(void)
{
    spec s = {96, 64, 10, 1, 10, 10, 1, NULL, NULL};
    const char *path = tmp_path("rt.avi");
    REQUIRE(write_video(path, &s) == CLI_EXIT_OK);
    readback rb;
    read_video(path, 0, &rb);
    REQUIRE(rb.open_status == LR_OK);
    CHECKF(rb.last == 0 && rb.frames == 10, "%d frames: %s", rb.frames, rb.error);
    CHECK(strcmp(rb.format, "avi") == 0 && strcmp(rb.codec, "mpeg4") == 0);
    CHECK(rb.info.frames == 10 && rb.info.fps_num == 10 && rb.info.fps_den == 1);
    CHECK(rb.pts_increasing && rb.pts[0] == 0 && rb.pts[9] == 9);
    CHECKF(rb.min_psnr > 30, "mpeg4 PSNR %.2f dB", rb.min_psnr);
    remove(path);

    /* A finer time base than the frame period: AVI is constant-rate, pts land on its grid. */
    static const int64_t ms[] = {0, 100, 200, 300};
    spec fine = {32, 24, 4, 1, 1000, 10, 1, "mpeg4", ms};
    REQUIRE(write_video(path, &fine) == CLI_EXIT_OK);
    read_video(path, 0, &rb);
    CHECKF(rb.open_status == LR_OK && rb.frames == 4 && rb.pts[3] == 3, "%d frames, pts %lld",
           rb.frames, (long long)rb.pts[3]);
    remove(path);
}

/* A FIFO is read as a stream, as stdin is: the peeked bytes must reach libavformat too. */
static void feed_fifo(const char *fifo, const char *file)
{
    pid_t pid = fork();
    if (pid == 0) {
        int out = open(fifo, O_WRONLY), in = open(file, O_RDONLY);
        char buf[4096];
        ssize_t n;
        while (out >= 0 && in >= 0 && (n = read(in, buf, sizeof buf)) > 0)
            if (write(out, buf, (size_t)n) != n)
                break;
        _exit(0);
    }
}

static void test_fifo_input(void)
{
    const char *names[] = {"fifo.mkv", "fifo.y4m"};
    const char *codecs[] = {"ffv1", NULL};
    for (int i = 0; i < 2; i++) {
        spec s = {40, 30, 5, 1, 25, 25, 1, codecs[i], NULL};
        const char *path = tmp_path(names[i]);
        const char *fifo = tmp_path("fifo");
        REQUIRE(write_video(path, &s) == CLI_EXIT_OK);
        REQUIRE(mkfifo(fifo, 0600) == 0);
        feed_fifo(fifo, path);
        readback rb;
        read_video(fifo, 0, &rb);
        while (wait(NULL) > 0)
            ;
        CHECKF(rb.open_status == LR_OK && rb.last == 0 && rb.frames == 5, "%s: %d frames: %s",
               names[i], rb.frames, rb.error);
        CHECK(rb.info.width == 40 && rb.info.height == 30);
        CHECKF(rb.min_psnr > 30, "%s: PSNR %.2f", names[i], rb.min_psnr);
        remove(fifo);
        remove(path);
    }
}

/* ---- hostile input ---- */

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(data, 1, n, f);
        fclose(f);
    }
}

/* Opens and reads path; checks it fails with status and a message containing text, and that
 * nothing reached stderr. */
static void expect_error(const char *path, uint64_t max_pixels, lr_status status,
                         const char *text)
{
    capture c;
    capture_begin(&c, STDERR_FILENO);
    readback rb;
    read_video(path, max_pixels, &rb);
    const char *err = capture_end(&c);
    bool failed = rb.open_status != LR_OK || rb.last < 0;
    CHECKF(failed, "%s: no error (%d frames)", path, rb.frames);
    CHECKF(strstr(rb.error, text) && !strchr(rb.error, '\n'), "%s: '%s', want '%s'", path,
           rb.error, text);
    if (rb.open_status != LR_OK)
        CHECKF(rb.open_status == status, "%s: status %d, want %d (%s)", path, rb.open_status,
               status, rb.error);
    CHECKF(err[0] == '\0', "%s: stderr got '%s'", path, err);
}

static void test_bad_input(void)
{
    expect_error(tmp_path("missing.mkv"), 0, LR_ERR_IO, "No such file or directory");

    const char *path = tmp_path("bad");
    write_bytes(path, "", 0);
    expect_error(path, 0, LR_ERR_DATA, "not a video");
    unsigned char junk[8192];
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < sizeof junk; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        junk[i] = (unsigned char)x;
    }
    write_bytes(path, junk, sizeof junk);
    expect_error(path, 0, LR_ERR_DATA, "not a video");
    write_bytes(path, "YUV4MPEG2 W0 H10\n", 17);
    expect_error(path, 0, LR_ERR_DATA, "bad Y4M header parameter 'W0'");
    write_bytes(path, "YUV4MPEG2 W8 H8\n", 16); /* a header and no frame */
    expect_error(path, 0, LR_ERR_DATA, "no frames");

    /* Audio only: a WAV file of 100 silent samples. */
    unsigned char wav[44 + 200] = {0};
    memcpy(wav, "RIFF", 4);
    wav[4] = (unsigned char)(sizeof wav - 8);
    memcpy(wav + 8, "WAVEfmt ", 8);
    wav[16] = 16, wav[20] = 1, wav[22] = 1;           /* PCM, mono */
    wav[24] = 0x40, wav[25] = 0x1f;                    /* 8000 Hz */
    wav[28] = 0x80, wav[29] = 0x3e, wav[32] = 2, wav[34] = 16;
    memcpy(wav + 36, "data", 4);
    wav[40] = 200;
    path = tmp_path("audio.wav");
    write_bytes(path, wav, sizeof wav);
    expect_error(path, 0, LR_ERR_DATA, "not a video (no video stream)");
    remove(path);
    remove(tmp_path("bad"));
}

/* The pixel limit, before the frame buffers exist: Y4M and libavformat. */
static void test_max_pixels(void)
{
    static const char *names[] = {"big.y4m", "big.mkv"};
    for (int i = 0; i < 2; i++) {
        spec s = {40, 30, 2, 1, 25, 25, 1, i ? "ffv1" : NULL, NULL};
        const char *path = tmp_path(names[i]);
        REQUIRE(write_video(path, &s) == CLI_EXIT_OK);
        expect_error(path, 1199, LR_ERR_NOMEM, "more than --max-pixels 1199");
        readback rb;
        read_video(path, 1200, &rb);
        CHECK(rb.open_status == LR_OK && rb.frames == 2);
        remove(path);
    }
}

/* A PNG is a one-frame video to libavformat (its image demuxer): accepted, not an error. */
static void test_png_input(void)
{
    lr_ctx *ctx = quiet_ctx();
    image img;
    REQUIRE(image_alloc(ctx, &img, 21, 13, 3, 8) == LR_OK);
    synth(img.pixels, 21, 13, 0);
    const char *path = tmp_path("still.png");
    FILE *f = fopen(path, "wb");
    REQUIRE(f && image_write_png(ctx, f, &img) == LR_OK);
    fclose(f);
    readback rb;
    read_video(path, 0, &rb);
    CHECKF(rb.open_status == LR_OK && rb.last == 0 && rb.frames == 1, "%s", rb.error);
    CHECK(rb.info.width == 21 && rb.info.height == 13);
    CHECKF(rb.max_diff == 0, "PNG pixels differ by %d/255", rb.max_diff);
    image_free(&img);
    lr_ctx_destroy(ctx);
    remove(path);
}

/* A copy cut short. What comes out depends on the container: see the checks. */
static void test_truncated(void)
{
    static const char *names[] = {"cut.mkv", "cut.avi", "cut.mp4"};
    static const char *codecs[] = {"ffv1", "mpeg4", "h264"};
    for (int i = 0; i < 3; i++) {
        spec s = {64, 48, 10, 1, 25, 25, 1, codecs[i], NULL};
        const char *path = tmp_path(names[i]);
        REQUIRE(write_video(path, &s) == CLI_EXIT_OK);
        /* Cut in the middle of the packets: the AVI header alone is most of a small file. */
        FILE *f = fopen(path, "rb");
        REQUIRE(f);
        static char data[1 << 16];
        size_t n = fread(data, 1, sizeof data, f);
        fclose(f);
        size_t cut = n * 6 / 10;
        char *movi = memmem(data, n, "movi", 4), *idx1 = memmem(data, n, "idx1", 4);
        if (i == 1 && movi && idx1)
            cut = (size_t)(movi - data) + (size_t)(idx1 - movi) / 2 + 3;
        REQUIRE(truncate(path, (off_t)cut) == 0);
        capture c;
        capture_begin(&c, STDERR_FILENO);
        readback rb;
        read_video(path, 0, &rb);
        const char *err = capture_end(&c);
        CHECKF(err[0] == '\0', "%s: stderr got '%s'", names[i], err);
        printf("  %s cut at byte %zu of %zu: %d of 10 frames, then %s%s\n", names[i], cut, n,
               rb.frames, rb.open_status != LR_OK || rb.last < 0 ? "error: " : "the end", rb.error);
        if (i == 2) {
            /* MP4 keeps its index (moov) at the end: without it nothing can be read. */
            CHECKF(rb.open_status == LR_ERR_DATA && strstr(rb.error, "not a video: "), "%s",
                   rb.error);
        } else {
            /* Matroska: the demuxer warns that the file ended prematurely, then reports a
             * plain end; AVI: the short read leaves a packet marked corrupt. Either way the
             * frames before the cut come out, undamaged, then the error. */
            CHECK(rb.open_status == LR_OK && rb.frames < 10 && rb.frames >= 3);
            CHECK(rb.min_psnr > 30);
            CHECKF(rb.last < 0 && strstr(rb.error, "truncated stream (frame"), "%s", rb.error);
        }
        remove(path);
    }
}

/* A size change mid-stream: two MJPEG streams of different sizes, one after the other, read
 * as one (JPEG images carry their own size; no container fixes it). */
static void test_size_change(void)
{
    spec a = {64, 48, 3, 1, 25, 25, 1, NULL, NULL}, b = {32, 24, 2, 1, 25, 25, 1, NULL, NULL};
    const char *pa = tmp_path("a.mjpeg"), *pb = tmp_path("b.mjpeg"), *both = tmp_path("ab.mjpeg");
    REQUIRE(write_video(pa, &a) == CLI_EXIT_OK && write_video(pb, &b) == CLI_EXIT_OK);
    char cmd[1700];
    snprintf(cmd, sizeof cmd, "cat '%s' '%s' > '%s'", pa, pb, both);
    REQUIRE(system(cmd) == 0);
    expect_error(both, 0, LR_ERR_DATA, "frame 4 is 32x24, the stream began at 64x48");
    readback rb;
    read_video(both, 0, &rb);
    CHECK(rb.frames == 3);
    remove(pa);
    remove(pb);
    remove(both);
}

/* An unknown codec: a Matroska file whose codec ID is changed to one nobody knows. */
static void test_unknown_codec(void)
{
    spec s = {32, 24, 2, 1, 25, 25, 1, "h264", NULL};
    const char *path = tmp_path("unknown.mkv");
    REQUIRE(write_video(path, &s) == CLI_EXIT_OK);
    FILE *f = fopen(path, "r+b");
    REQUIRE(f);
    static char data[1 << 16];
    size_t n = fread(data, 1, sizeof data, f);
    char *id = memmem(data, n, "V_MPEG4/ISO/AVC", 15);
    REQUIRE(id);
    memcpy(id, "V_XYZZY/ISO/AVC", 15);
    fseek(f, 0, SEEK_SET);
    fwrite(data, 1, n, f);
    fclose(f);
    expect_error(path, 0, LR_ERR_UNSUPPORTED, "unsupported video codec '");
    remove(path);
}

/* ---- writer errors ---- */

static int count_files(void)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "ls -A '%s' | wc -l", tmpdir);
    FILE *p = popen(cmd, "r");
    int n = -1;
    if (p) {
        if (fscanf(p, "%d", &n) != 1)
            n = -1;
        pclose(p);
    }
    return n;
}

static void test_writer_errors(void)
{
    int before = count_files();
    static const struct {
        const char *name, *codec, *text;
        int rc;
    } cases[] = {
        {"out.foo", NULL, "cannot tell a video container", CLI_EXIT_USAGE},
        {"noext", NULL, "cannot tell a video container", CLI_EXIT_USAGE},
        {"out.mkv", "xyzzy", "no encoder 'xyzzy'", CLI_EXIT_DATA},
        {"out.mp4", "ffv1", "cannot hold ffv1", CLI_EXIT_DATA},
        {"out.mkv", "aac", "no encoder 'aac'", CLI_EXIT_DATA},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        video_writer_opts o = {32, 24, 1, 25, 25, 1, 0, 0, cases[i].codec};
        video_writer *w = NULL;
        capture c;
        capture_begin(&c, STDERR_FILENO);
        int rc = video_writer_open(tmp_path(cases[i].name), &o, NULL, false, &w);
        const char *err = capture_end(&c);
        CHECKF(rc == cases[i].rc && !w, "%s: rc %d", cases[i].name, rc);
        CHECKF(strstr(err, cases[i].text) && strchr(err, '\n') == err + strlen(err) - 1,
               "%s: '%s'", cases[i].name, err);
    }
    /* Timestamps must increase. */
    video_writer_opts o = {32, 24, 1, 25, 25, 1, 0, 0, "ffv1"};
    video_writer *w = NULL;
    REQUIRE(video_writer_open(tmp_path("order.mkv"), &o, NULL, false, &w) == CLI_EXIT_OK);
    lr_ctx *ctx = quiet_ctx();
    float rgb[3 * 32 * 24];
    synth(rgb, 32, 24, 0);
    CHECK(video_writer_frame(ctx, w, rgb, 5, 0) == LR_OK);
    CHECK(video_writer_frame(ctx, w, rgb, 5, 0) == LR_ERR_ARG);
    /* Abandoned: nothing is left, not even the temporary file. */
    video_writer_abort(w);
    CHECK(!file_exists(tmp_path("order.mkv")));
    CHECKF(count_files() == before, "%d files, %d before", count_files(), before);
    lr_ctx_destroy(ctx);
}

/* ---- audio pass-through ---- */

static void test_copy_audio(void)
{
    if (!have_tool("ffmpeg") || !have_tool("ffprobe")) {
        printf("note: ffmpeg/ffprobe are not installed; audio pass-through skipped\n");
        return;
    }
    const char *in = tmp_path("av.mkv"), *out = tmp_path("copy.mkv");
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "ffmpeg -v error -y -f lavfi -i testsrc=size=64x48:rate=10 "
             "-f lavfi -i sine=frequency=440:sample_rate=8000 -t 2 -c:v ffv1 -c:a pcm_s16le "
             "'%s'", in);
    REQUIRE(system(cmd) == 0);
    lr_ctx *ctx = quiet_ctx();
    video_reader *r = NULL;
    REQUIRE(video_reader_open(ctx, in, 0, &r) == LR_OK);
    const video_info *vi = video_reader_info(r);
    /* The writer opens after the first frame, as a program may: what was demuxed meanwhile
     * is held and copied. */
    video_frame f;
    REQUIRE(video_reader_next(ctx, r, &f) == 1);
    video_writer_opts o = {vi->width, vi->height, vi->tb_num, vi->tb_den,
                           vi->fps_num, vi->fps_den, 0, 0, "ffv1"};
    video_writer *w = NULL;
    REQUIRE(video_writer_open(out, &o, r, false, &w) == CLI_EXIT_OK);
    int n = 0, got = 1;
    for (; got > 0; got = video_reader_next(ctx, r, &f), n++)
        REQUIRE(video_writer_frame(ctx, w, f.rgb, f.pts, f.duration) == LR_OK);
    CHECK(got == 0 && n == 20);
    CHECK(video_writer_close(w) == CLI_EXIT_OK);
    video_reader_free(r);
    lr_ctx_destroy(ctx);

    static const char *files[2];
    files[0] = in, files[1] = out;
    char results[2][256];
    for (int i = 0; i < 2; i++) {
        snprintf(cmd, sizeof cmd, "ffprobe -v error -count_packets -show_entries "
                 "stream=codec_type,codec_name,nb_read_packets -of csv=p=0 '%s' | tr '\\n' ' '",
                 files[i]);
        FILE *p = popen(cmd, "r");
        results[i][0] = '\0';
        if (p) {
            if (!fgets(results[i], sizeof results[i], p))
                results[i][0] = '\0';
            pclose(p);
        }
    }
    CHECKF(strcmp(results[0], results[1]) == 0 && strstr(results[1], "pcm_s16le,audio"),
           "input '%s', output '%s'", results[0], results[1]);

    /* A reader told to drop the other streams: the same output holds the video alone. */
    ctx = quiet_ctx();
    REQUIRE(video_reader_open(ctx, in, 0, &r) == LR_OK);
    video_reader_drop_streams(r);
    REQUIRE(video_writer_open(out, &o, r, false, &w) == CLI_EXIT_OK);
    while (video_reader_next(ctx, r, &f) > 0)
        REQUIRE(video_writer_frame(ctx, w, f.rgb, f.pts, f.duration) == LR_OK);
    CHECK(video_writer_close(w) == CLI_EXIT_OK);
    video_reader_free(r);
    lr_ctx_destroy(ctx);
    snprintf(cmd, sizeof cmd, "ffprobe -v error -show_entries stream=codec_type -of csv=p=0 "
             "'%s' | tr '\\n' ' '", out);
    FILE *p = popen(cmd, "r");
    char types[128] = "";
    if (p) {
        if (!fgets(types, sizeof types, p))
            types[0] = '\0';
        pclose(p);
    }
    CHECKF(strcmp(types, "video ") == 0, "streams '%s'", types);
    remove(in);
    remove(out);
}

/* ---- colour conversion against the ffmpeg tool ---- */

/* Inputs made by ffmpeg, each first frame compared with ffmpeg's own RGB: the matrix (BT.709
 * when the stream says so), the range (full for JPEG and color_range pc), 4:2:2, planar RGB and
 * 10 bits (RGB48). Exactly equal: both run libswscale with the same settings. */
static void test_matches_ffmpeg(void)
{
    if (!have_tool("ffmpeg")) {
        printf("note: ffmpeg is not installed; colour conversions against it skipped\n");
        return;
    }
    static const struct {
        const char *name, *args;
        bool deep;
    } cases[] = {
        {"p10.mkv", "-pix_fmt yuv420p10le -c:v ffv1", true},
        {"bt709.mkv", "-vf scale=out_color_matrix=bt709 -colorspace bt709 -pix_fmt yuv420p "
                      "-c:v libx264", false},
        {"jpeg.avi", "-pix_fmt yuvj420p -c:v mjpeg", false},
        {"full.mkv", "-pix_fmt yuv420p -color_range pc -c:v ffv1", false},
        {"p422.mkv", "-pix_fmt yuv422p -c:v ffv1", false},
        {"gbrp.mkv", "-pix_fmt gbrp -c:v ffv1", false},
    };
    lr_ctx *ctx = quiet_ctx();
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        const char *path = tmp_path(cases[c].name);
        char cmd[1200];
        snprintf(cmd, sizeof cmd, "ffmpeg -v error -y -f lavfi -i testsrc2=size=96x64:rate=10 "
                 "-t 0.3 %s '%s'", cases[c].args, path);
        REQUIRE(system(cmd) == 0);
        video_reader *r = NULL;
        video_frame f;
        REQUIRE(video_reader_open(ctx, path, 0, &r) == LR_OK);
        REQUIRE(video_reader_next(ctx, r, &f) == 1);
        size_t n = (size_t)96 * 64, bytes = cases[c].deep ? 2 : 1;
        unsigned char *want = malloc(3 * n * bytes);
        snprintf(cmd, sizeof cmd, "ffmpeg -v error -i '%s' -frames:v 1 -f rawvideo -pix_fmt %s -",
                 path, cases[c].deep ? "rgb48le" : "rgb24");
        FILE *p = popen(cmd, "r");
        CHECK(p && fread(want, 1, 3 * n * bytes, p) == 3 * n * bytes);
        if (p)
            pclose(p);
        double worst = 0;
        for (size_t i = 0; i < n; i++)
            for (int ch = 0; ch < 3; ch++) {
                const unsigned char *q = want + (3 * i + ch) * bytes;
                double v = cases[c].deep ? (q[0] | q[1] << 8) / 65535.0 : q[0] / 255.0;
                worst = fmax(worst, fabs(f.rgb[ch * n + i] - v));
            }
        CHECKF(worst < 1e-6, "%s: differs from ffmpeg by %g", cases[c].name, worst);
        free(want);
        video_reader_free(r);
        remove(path);
    }
    lr_ctx_destroy(ctx);
}

/* ---- the real sample ---- */

static void test_vtest(void)
{
    const char *path = "../shared/data/video/vtest.avi";
    if (!file_exists(path)) {
        printf("note: %s is absent (../shared/data is not here); skipped\n", path);
        return;
    }
    lr_ctx *ctx = quiet_ctx();
    video_reader *r = NULL;
    REQUIRE(video_reader_open(ctx, path, 0, &r) == LR_OK);
    const video_info *vi = video_reader_info(r);
    CHECK(vi->width == 768 && vi->height == 576 && vi->fps_num == 10 && vi->fps_den == 1);
    CHECK(vi->frames == 795 && strcmp(vi->format, "avi") == 0);
    CHECK(strcmp(vi->codec, "msmpeg4v3") == 0);
    size_t n = (size_t)768 * 576;
    unsigned char *want = malloc(3 * n);
    bool have_ffmpeg = have_tool("ffmpeg");
    if (have_ffmpeg) {
        FILE *p = popen("ffmpeg -v error -i ../shared/data/video/vtest.avi -frames:v 1 "
                        "-f rawvideo -pix_fmt rgb24 -", "r");
        CHECK(p && fread(want, 1, 3 * n, p) == 3 * n);
        if (p)
            pclose(p);
    } else {
        printf("note: ffmpeg is not installed; vtest's first frame against it skipped\n");
    }
    video_frame f;
    int frames = 0, got;
    int64_t last_pts = -1;
    bool increasing = true;
    while ((got = video_reader_next(ctx, r, &f)) > 0) {
        if (frames == 0 && have_ffmpeg) {
            int worst = 0;
            for (size_t i = 0; i < n; i++)
                for (int c = 0; c < 3; c++) {
                    int d = abs((int)lrintf(f.rgb[c * n + i] * 255) - want[3 * i + c]);
                    worst = d > worst ? d : worst;
                }
            CHECKF(worst == 0, "first frame differs from ffmpeg's by %d/255", worst);
        }
        increasing = increasing && f.pts > last_pts;
        last_pts = f.pts;
        frames++;
    }
    CHECKF(got == 0 && frames == 795, "%d frames: %s", frames, lr_ctx_last_error(ctx));
    CHECK(increasing);
    free(want);
    video_reader_free(r);
    lr_ctx_destroy(ctx);
}

int main(void)
{
    cli_set_tool("test_video");
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/lr-test-video-XXXXXX", t && *t ? t : P_tmpdir);
    if (!mkdtemp(tmpdir)) {
        printf("FAIL test_video: cannot create a temporary directory\n");
        return 1;
    }
    RUN(test_y4m_roundtrip);
    RUN(test_mkv_ffv1_exact);
    RUN(test_mp4_x264);
    RUN(test_avi_mpeg4);
    RUN(test_fifo_input);
    RUN(test_bad_input);
    RUN(test_max_pixels);
    RUN(test_png_input);
    RUN(test_truncated);
    RUN(test_size_change);
    RUN(test_unknown_codec);
    RUN(test_writer_errors);
    RUN(test_copy_audio);
    RUN(test_matches_ffmpeg);
    RUN(test_vtest);
    rmdir(tmpdir);
    return CHECK_DONE();
}
