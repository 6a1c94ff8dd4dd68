/* Y4M streams (cmd/common/y4m.h): write -> read round trips for every chroma tag and depth at
 * odd and even sizes, from a FILE and from memory; header parameters in any order, defaults,
 * comments; every error with its exact message and status; streaming from a pipe (the first
 * frame arrives while the writer still holds the rest back); 10,000 frames read into the same
 * buffers; the colour conversions against known values and RGB -> YUV -> RGB within the
 * quantisation error; bilinear chroma at the tag's siting. */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "longrange/core.h"
#include "y4m.h"

static lr_ctx *quiet_ctx(void)
{
    lr_ctx_params p = lr_ctx_default_params();
    p.n_threads = 1;
    p.log_level = LR_LOG_ERROR;
    lr_ctx *ctx = NULL;
    return lr_ctx_create(&ctx, &p) == LR_OK ? ctx : NULL;
}

static const char *TAGS[] = {"420jpeg", "420",    "420mpeg2", "420paldv", "422",    "444",
                             "mono",    "420p10", "420p12",   "420p16",   "422p10", "422p12",
                             "422p16",  "444p10", "444p12",   "444p16",   "mono10", "mono12",
                             "mono16"};
#define N_TAGS (sizeof TAGS / sizeof *TAGS)

static uint32_t rng_state = 12345;
static uint32_t rnd(void)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return rng_state >> 8;
}

static void fill_random(y4m_frame *f, int depth)
{
    for (size_t i = 0; i < f->count; i++)
        f->samples[i] = (uint16_t)(rnd() & ((1u << depth) - 1));
}

/* Writes a stream of n frames (random samples kept in want[]) into a malloc'd buffer. */
static char *write_stream(lr_ctx *ctx, const y4m_info *info, y4m_frame *want, int n, size_t *len)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    if (!f)
        return NULL;
    lr_status s = y4m_write_header(ctx, f, info);
    for (int k = 0; k < n && s == LR_OK; k++) {
        fill_random(&want[k], info->depth);
        s = y4m_write_frame(ctx, f, info, &want[k]);
    }
    fclose(f);
    if (s != LR_OK) {
        free(buf);
        return NULL;
    }
    return buf;
}

static void check_read_back(lr_ctx *ctx, y4m_reader *r, const y4m_info *info, y4m_frame *want,
                            int n)
{
    const y4m_info *got = y4m_reader_info(r);
    CHECK(got->width == info->width && got->height == info->height);
    CHECK(strcmp(got->chroma, info->chroma) == 0 && got->depth == info->depth);
    CHECK(got->subsampling == info->subsampling && got->siting == info->siting);
    CHECK(got->fps_num == info->fps_num && got->fps_den == info->fps_den);
    CHECK(got->sar_num == info->sar_num && got->sar_den == info->sar_den);
    CHECK(got->interlace == info->interlace && got->full_range == info->full_range);
    for (int k = 0; k < n; k++) {
        y4m_frame *fr;
        int rc = y4m_reader_next(ctx, r, &fr);
        CHECKF(rc == 1, "%s %dx%d frame %d: rc %d (%s)", info->chroma, info->width, info->height,
               k + 1, rc, lr_ctx_last_error(ctx));
        if (rc != 1)
            return;
        CHECK(fr->planes == want[k].planes && fr->count == want[k].count);
        for (int p = 0; p < fr->planes; p++)
            CHECK(fr->width[p] == want[k].width[p] && fr->height[p] == want[k].height[p]);
        CHECKF(memcmp(fr->samples, want[k].samples, fr->count * 2) == 0,
               "%s %dx%d frame %d differs",
               info->chroma, info->width, info->height, k + 1);
    }
    y4m_frame *fr;
    CHECK(y4m_reader_next(ctx, r, &fr) == 0 && fr == NULL);
    CHECK(y4m_reader_frames(r) == n);
}

static void test_round_trips(void)
{
    lr_ctx *ctx = quiet_ctx();
    REQUIRE(ctx);
    static const int SIZES[][2] = {{1, 1}, {5, 3}, {6, 4}, {7, 8}, {2, 9}};
    for (size_t t = 0; t < N_TAGS; t++)
        for (size_t z = 0; z < sizeof SIZES / sizeof *SIZES; z++) {
            y4m_info info;
            REQUIRE(y4m_info_init(ctx, &info, SIZES[z][0], SIZES[z][1], TAGS[t]) == LR_OK);
            info.fps_num = 30000, info.fps_den = 1001, info.sar_num = 4, info.sar_den = 3;
            info.interlace = z % 2 ? 't' : 'p';
            info.full_range = z == 2;
            y4m_frame want[3];
            for (int k = 0; k < 3; k++)
                REQUIRE(y4m_frame_alloc(ctx, &info, &want[k]) == LR_OK);
            int64_t cw = info.subsampling == Y4M_444 ? info.width : (info.width + 1) / 2;
            int64_t ch = info.subsampling == Y4M_420 ? (info.height + 1) / 2 : info.height;
            if (info.subsampling == Y4M_MONO)
                cw = ch = 0;
            uint64_t samples = (uint64_t)info.width * info.height + 2 * (uint64_t)(cw * ch);
            CHECK(want[0].count == samples);
            CHECK(y4m_frame_bytes(&info) == samples * (info.depth > 8 ? 2 : 1));
            size_t len;
            char *buf = write_stream(ctx, &info, want, 3, &len);
            REQUIRE(buf);
            CHECK(len == strcspn(buf, "\n") + 1 + 3 * (6 + y4m_frame_bytes(&info)));
            y4m_reader *r;
            REQUIRE(y4m_reader_open_memory(ctx, buf, len, 0, &r) == LR_OK);
            check_read_back(ctx, r, &info, want, 3);
            y4m_reader_free(r);
            FILE *f = fmemopen(buf, len, "rb");
            REQUIRE(f);
            REQUIRE(y4m_reader_open(ctx, f, 0, &r) == LR_OK);
            check_read_back(ctx, r, &info, want, 3);
            y4m_reader_free(r);
            fclose(f);
            free(buf);
            for (int k = 0; k < 3; k++)
                y4m_frame_free(&want[k]);
        }
    lr_ctx_destroy(ctx);
}

static void test_header_parameters(void)
{
    lr_ctx *ctx = quiet_ctx();
    REQUIRE(ctx);
    y4m_reader *r;
    /* Defaults: 25:1, progressive, 0:0, 420jpeg. */
    const char *s = "YUV4MPEG2 W2 H2\nFRAME\nabcdef";
    REQUIRE(y4m_reader_open_memory(ctx, s, strlen(s), 0, &r) == LR_OK);
    const y4m_info *in = y4m_reader_info(r);
    CHECK(in->fps_num == 25 && in->fps_den == 1 && in->interlace == 'p');
    CHECK(in->sar_num == 0 && in->sar_den == 0 && strcmp(in->chroma, "420jpeg") == 0);
    y4m_frame *fr;
    CHECK(y4m_reader_next(ctx, r, &fr) == 1);
    CHECK(fr && fr->plane[0][0] == 'a' && fr->plane[0][3] == 'd' && fr->plane[1][0] == 'e' &&
          fr->plane[2][0] == 'f');
    CHECK(y4m_reader_next(ctx, r, &fr) == 0);
    y4m_reader_free(r);
    /* Any order, several spaces, X comments, unknown letters, FRAME parameters, F0:0. */
    s = "YUV4MPEG2 C444p10  XYSCSS=444P10 A1:1 I? F0:0 Zfoo H1 W1 \n"
        "FRAME Ixyz Xc\n\x01\x02\x03\x01\x05\x03";
    REQUIRE(y4m_reader_open_memory(ctx, s, strlen(s), 0, &r) == LR_OK);
    in = y4m_reader_info(r);
    CHECK(in->width == 1 && in->height == 1 && in->depth == 10 && in->subsampling == Y4M_444);
    CHECK(in->fps_num == 25 && in->fps_den == 1 && in->interlace == 'p');
    CHECK(in->sar_num == 1 && in->sar_den == 1);
    CHECK(y4m_reader_next(ctx, r, &fr) == 1);
    CHECK(fr && fr->plane[0][0] == 0x0201 && fr->plane[1][0] == 0x0103 &&
          fr->plane[2][0] == 0x0305);
    y4m_reader_free(r);
    /* 10-bit samples with stray high bits are clamped to 1023. */
    s = "YUV4MPEG2 W1 H1 C444p10\nFRAME\n\xff\xff\x00\x04\xff\x03";
    REQUIRE(y4m_reader_open_memory(ctx, s, 25 + 6 + 6, 0, &r) == LR_OK);
    CHECK(y4m_reader_next(ctx, r, &fr) == 1);
    CHECK(fr && fr->plane[0][0] == 1023 && fr->plane[1][0] == 1023 && fr->plane[2][0] == 1023);
    y4m_reader_free(r);
    /* ffmpeg's X extensions: colour range, and the old chroma spelling used without a C. */
    s = "YUV4MPEG2 W2 H2 XYSCSS=420P10 XCOLORRANGE=FULL\n";
    REQUIRE(y4m_reader_open_memory(ctx, s, strlen(s), 0, &r) == LR_OK);
    in = y4m_reader_info(r);
    CHECK(in->depth == 10 && in->subsampling == Y4M_420 && in->full_range);
    y4m_reader_free(r);
    s = "YUV4MPEG2 W2 H2 C422 XYSCSS=420P10 XCOLORRANGE=LIMITED\n";
    REQUIRE(y4m_reader_open_memory(ctx, s, strlen(s), 0, &r) == LR_OK);
    in = y4m_reader_info(r);
    CHECK(in->depth == 8 && in->subsampling == Y4M_422 && !in->full_range);
    y4m_reader_free(r);
    /* A header with no frames is a stream of zero frames. */
    s = "YUV4MPEG2 W3 H3 Cmono\n";
    REQUIRE(y4m_reader_open_memory(ctx, s, strlen(s), 9, &r) == LR_OK);
    CHECK(y4m_reader_next(ctx, r, &fr) == 0);
    y4m_reader_free(r);
    lr_ctx_destroy(ctx);
}

typedef struct {
    const char *input;
    size_t len; /* 0: strlen */
    uint64_t max_pixels;
    bool at_open;
    lr_status status;
    const char *message;
} error_case;

static void test_errors(void)
{
    lr_ctx *ctx = quiet_ctx();
    REQUIRE(ctx);
    static char long_header[1100], long_frame[1200];
    memset(long_header, 0, sizeof long_header);
    memcpy(long_header, "YUV4MPEG2 W2 H2 X", 17);
    memset(long_header + 17, 'a', 1100 - 18);
    /* Exactly Y4M_MAX_LINE bytes with the newline is fine; one more is not. */
    static char max_header[1100];
    memcpy(max_header, "YUV4MPEG2 W2 H2 X", 17);
    memset(max_header + 17, 'a', 1023 - 17);
    max_header[1023] = '\n';
    memcpy(long_frame, "YUV4MPEG2 W2 H2\nFRAME ", 22);
    memset(long_frame + 22, 'x', 1200 - 23);
    const error_case CASES[] = {
        {"", 0, 0, true, LR_ERR_DATA, "not a Y4M stream"},
        {"\x89PNG\r\n\x1a\n....", 0, 0, true, LR_ERR_DATA, "not a Y4M stream"},
        {"YUV4MPEG W2 H2\n", 0, 0, true, LR_ERR_DATA, "not a Y4M stream"},
        {"YUV4MP", 0, 0, true, LR_ERR_DATA, "truncated Y4M header"},
        {"YUV4MPEG2 W2 H2", 0, 0, true, LR_ERR_DATA, "truncated Y4M header"},
        {long_header, 0, 0, true, LR_ERR_DATA, "Y4M header longer than 1024 bytes"},
        {"YUV4MPEG2\n", 0, 0, true, LR_ERR_DATA, "Y4M header without W"},
        {"YUV4MPEG2 H2\n", 0, 0, true, LR_ERR_DATA, "Y4M header without W"},
        {"YUV4MPEG2 W2 F25:1\n", 0, 0, true, LR_ERR_DATA, "Y4M header without H"},
        {"YUV4MPEG2 W0 H2\n", 0, 0, true, LR_ERR_DATA, "bad Y4M header parameter 'W0'"},
        {"YUV4MPEG2 W2 H-2\n", 0, 0, true, LR_ERR_DATA, "bad Y4M header parameter 'H-2'"},
        {"YUV4MPEG2 W2 H\n", 0, 0, true, LR_ERR_DATA, "bad Y4M header parameter 'H'"},
        {"YUV4MPEG2 W2147483648 H2\n", 0, 0, true, LR_ERR_DATA,
         "bad Y4M header parameter 'W2147483648'"},
        {"YUV4MPEG2 W2 H2 F30\n", 0, 0, true, LR_ERR_DATA, "bad Y4M header parameter 'F30'"},
        {"YUV4MPEG2 W2 H2 A1:x\n", 0, 0, true, LR_ERR_DATA, "bad Y4M header parameter 'A1:x'"},
        {"YUV4MPEG2 W2 H2 Ix\n", 0, 0, true, LR_ERR_DATA, "bad Y4M header parameter 'Ix'"},
        {"YUV4MPEG2 W2\tH2\n", 0, 0, true, LR_ERR_DATA, "bad Y4M header parameter 'W2?H2'"},
        {"YUV4MPEG2 W2 H2 C444alpha\n", 0, 0, true, LR_ERR_UNSUPPORTED,
         "unsupported Y4M chroma 'C444alpha'"},
        {"YUV4MPEG2 W2 H2 C411\n", 0, 0, true, LR_ERR_UNSUPPORTED, "unsupported Y4M chroma 'C411'"},
        {"YUV4MPEG2 W2 H2 XYSCSS=411\n", 0, 0, true, LR_ERR_UNSUPPORTED,
         "unsupported Y4M chroma 'XYSCSS=411'"},
        {"YUV4MPEG2 W40000 H30000\n", 0, 100000000, true, LR_ERR_NOMEM,
         "Y4M frame is 40000x30000 = 1200000000 pixels, more than --max-pixels 100000000"},
        {"YUV4MPEG2 W2147483647 H2147483647\n", 0, 1000, true, LR_ERR_NOMEM,
         "Y4M frame is 2147483647x2147483647 = 4611686014132420609 pixels, more than "
         "--max-pixels 1000"},
        {"YUV4MPEG2 W2 H2\nFRAMX\nabcdef", 0, 0, false, LR_ERR_DATA,
         "frame 1: expected FRAME, got 'FRAMX'"},
        {"YUV4MPEG2 W2 H2\nFRAME\nabcdefFRAME\nabcdef\x01garbage that goes on and on\n", 0, 0,
         false, LR_ERR_DATA, "frame 3: expected FRAME, got '?garbage that go'"},
        {"YUV4MPEG2 W2 H2\nFRAMES\nabcdef", 0, 0, false, LR_ERR_DATA,
         "frame 1: expected FRAME, got 'FRAMES'"},
        {"YUV4MPEG2 W2 H2\nFRAME\nabcdefFRA", 0, 0, false, LR_ERR_DATA,
         "truncated frame 2 (in its FRAME line)"},
        {"YUV4MPEG2 W2 H2\nFRAME", 0, 0, false, LR_ERR_DATA,
         "truncated frame 1 (in its FRAME line)"},
        {"YUV4MPEG2 W2 H2\nFRAME\nabc", 0, 0, false, LR_ERR_DATA,
         "truncated frame 1: 3 of 6 bytes"},
        {"YUV4MPEG2 W2 H2\nFRAME\nabcdefFRAME\n", 0, 0, false, LR_ERR_DATA,
         "truncated frame 2: 0 of 6 bytes"},
        {"YUV4MPEG2 W4 H2 C420p10\nFRAME\n0123456789abcdef", 0, 0, false, LR_ERR_DATA,
         "truncated frame 1: 16 of 24 bytes"},
        {long_frame, 0, 0, false, LR_ERR_DATA, "frame 1: FRAME line longer than 1024 bytes"},
    };
    for (size_t i = 0; i < sizeof CASES / sizeof *CASES; i++) {
        const error_case *c = &CASES[i];
        size_t len = c->len ? c->len : strlen(c->input);
        for (int via_file = 0; via_file < 2; via_file++) {
            y4m_reader *r = NULL;
            FILE *f = NULL;
            lr_status s;
            if (via_file) {
                f = len ? fmemopen((void *)c->input, len, "rb") : tmpfile();
                REQUIRE(f);
                s = y4m_reader_open(ctx, f, c->max_pixels, &r);
            } else {
                s = y4m_reader_open_memory(ctx, c->input, len, c->max_pixels, &r);
            }
            if (c->at_open) {
                CHECKF(s == c->status && r == NULL, "case %zu: status %d", i, (int)s);
            } else {
                CHECKF(s == LR_OK, "case %zu: open failed: %s", i, lr_ctx_last_error(ctx));
                int rc = 1;
                y4m_frame *fr;
                while (s == LR_OK && rc == 1)
                    rc = y4m_reader_next(ctx, r, &fr);
                CHECKF(rc == -1 && fr == NULL, "case %zu: rc %d", i, rc);
                CHECK(y4m_reader_next(ctx, r, &fr) == -1); /* stays failed */
                /* The message of the first failure is what callers report: read it again. */
                y4m_reader_free(r);
                r = NULL;
                if (via_file)
                    rewind(f);
                s = via_file ? y4m_reader_open(ctx, f, c->max_pixels, &r)
                             : y4m_reader_open_memory(ctx, c->input, len, c->max_pixels, &r);
                while (s == LR_OK && (rc = y4m_reader_next(ctx, r, &fr)) == 1)
                    ;
            }
            const char *msg = lr_ctx_last_error(ctx);
            CHECKF(strcmp(msg, c->message) == 0, "case %zu (%s): got \"%s\", want \"%s\"", i,
                   via_file ? "file" : "memory", msg, c->message);
            y4m_reader_free(r);
            if (f)
                fclose(f);
        }
    }
    /* The largest header line allowed reads. */
    y4m_reader *r;
    CHECK(y4m_reader_open_memory(ctx, max_header, 1024, 0, &r) == LR_OK);
    y4m_reader_free(r);
    /* The writer refuses a frame of another shape, and unknown tags and sizes. */
    y4m_info a, b;
    REQUIRE(y4m_info_init(ctx, &a, 4, 4, "420jpeg") == LR_OK);
    REQUIRE(y4m_info_init(ctx, &b, 4, 4, "422") == LR_OK);
    y4m_frame fb;
    REQUIRE(y4m_frame_alloc(ctx, &b, &fb) == LR_OK);
    FILE *f = tmpfile();
    REQUIRE(f);
    CHECK(y4m_write_frame(ctx, f, &a, &fb) == LR_ERR_ARG);
    CHECK(strcmp(lr_ctx_last_error(ctx), "Y4M frame plane 1 is 2x4, the stream's 2x2") == 0);
    CHECK(ftell(f) == 0);
    fclose(f);
    y4m_frame_free(&fb);
    CHECK(y4m_info_init(ctx, &a, 4, 4, "444alpha") == LR_ERR_UNSUPPORTED);
    CHECK(strcmp(lr_ctx_last_error(ctx), "unsupported Y4M chroma 'C444alpha'") == 0);
    CHECK(y4m_info_init(ctx, &a, 0, 4, NULL) == LR_ERR_ARG);
    lr_ctx_destroy(ctx);
}

static void test_writer_clamps(void)
{
    lr_ctx *ctx = quiet_ctx();
    REQUIRE(ctx);
    y4m_info info;
    REQUIRE(y4m_info_init(ctx, &info, 1, 1, "mono10") == LR_OK);
    y4m_frame fr;
    REQUIRE(y4m_frame_alloc(ctx, &info, &fr) == LR_OK);
    fr.samples[0] = 5000;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    REQUIRE(f);
    CHECK(y4m_write_header(ctx, f, &info) == LR_OK);
    CHECK(y4m_write_frame(ctx, f, &info, &fr) == LR_OK);
    fclose(f);
    const char *want = "YUV4MPEG2 W1 H1 F25:1 Ip A0:0 Cmono10\nFRAME\n\xff\x03";
    CHECK(len == strlen(want) && memcmp(buf, want, len) == 0);
    free(buf);
    y4m_frame_free(&fr);
    lr_ctx_destroy(ctx);
}

/* ---- Streaming from a pipe ---- */

typedef struct {
    int fd;
    const char *data;
    size_t first, len; /* the writer sends data[0..first), waits, then the rest */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool first_read, waited_out;
} pipe_job;

static void *pipe_writer(void *arg)
{
    pipe_job *j = arg;
    if (write(j->fd, j->data, j->first) != (ssize_t)j->first)
        j->waited_out = true;
    pthread_mutex_lock(&j->lock);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    while (!j->first_read)
        if (pthread_cond_timedwait(&j->cond, &j->lock, &until) != 0) {
            j->waited_out = true; /* the reader wanted more than the first frame */
            break;
        }
    pthread_mutex_unlock(&j->lock);
    size_t rest = j->len - j->first;
    if (write(j->fd, j->data + j->first, rest) != (ssize_t)rest)
        j->waited_out = true;
    close(j->fd);
    return NULL;
}

static void test_pipe_streaming(void)
{
    lr_ctx *ctx = quiet_ctx();
    REQUIRE(ctx);
    y4m_info info;
    REQUIRE(y4m_info_init(ctx, &info, 7, 5, "420p10") == LR_OK);
    y4m_frame want[3];
    for (int k = 0; k < 3; k++)
        REQUIRE(y4m_frame_alloc(ctx, &info, &want[k]) == LR_OK);
    size_t len;
    char *buf = write_stream(ctx, &info, want, 3, &len);
    REQUIRE(buf);
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    pipe_job job = {.fd = fds[1], .data = buf, .len = len};
    job.first = strcspn(buf, "\n") + 1 + 6 + (size_t)y4m_frame_bytes(&info);
    pthread_mutex_init(&job.lock, NULL);
    pthread_cond_init(&job.cond, NULL);
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, pipe_writer, &job) == 0);
    FILE *f = fdopen(fds[0], "rb");
    REQUIRE(f);
    y4m_reader *r = NULL;
    CHECK(y4m_reader_open(ctx, f, 0, &r) == LR_OK);
    y4m_frame *fr = NULL;
    int rc = r ? y4m_reader_next(ctx, r, &fr) : -1;
    pthread_mutex_lock(&job.lock);
    bool early = !job.waited_out; /* frame 1 came before the writer sent frame 2 */
    job.first_read = true;
    pthread_cond_signal(&job.cond);
    pthread_mutex_unlock(&job.lock);
    CHECK(rc == 1 && early);
    CHECK(fr && memcmp(fr->samples, want[0].samples, fr->count * 2) == 0);
    for (int k = 1; k < 3 && r; k++) {
        CHECK(y4m_reader_next(ctx, r, &fr) == 1);
        CHECK(fr && memcmp(fr->samples, want[k].samples, fr->count * 2) == 0);
    }
    CHECK(r && y4m_reader_next(ctx, r, &fr) == 0);
    pthread_join(th, NULL);
    y4m_reader_free(r);
    fclose(f);
    free(buf);
    for (int k = 0; k < 3; k++)
        y4m_frame_free(&want[k]);
    lr_ctx_destroy(ctx);
}

/* 10,000 frames through one reader: always the same frame and sample buffer. */
static void test_long_stream_constant_memory(void)
{
    lr_ctx *ctx = quiet_ctx();
    REQUIRE(ctx);
    y4m_info info;
    REQUIRE(y4m_info_init(ctx, &info, 9, 7, "420jpeg") == LR_OK);
    y4m_frame fr;
    REQUIRE(y4m_frame_alloc(ctx, &info, &fr) == LR_OK);
    FILE *f = tmpfile();
    REQUIRE(f);
    CHECK(y4m_write_header(ctx, f, &info) == LR_OK);
    enum { FRAMES = 10000 };
    for (int k = 0; k < FRAMES; k++) {
        for (size_t i = 0; i < fr.count; i++)
            fr.samples[i] = (uint16_t)((k + i) & 0xff);
        CHECK(y4m_write_frame(ctx, f, &info, &fr) == LR_OK);
    }
    rewind(f);
    y4m_reader *r;
    REQUIRE(y4m_reader_open(ctx, f, 1000, &r) == LR_OK);
    y4m_frame *got, *first = NULL;
    const uint16_t *samples = NULL;
    int rc, k = 0, moved = 0, wrong = 0;
    while ((rc = y4m_reader_next(ctx, r, &got)) == 1) {
        if (!first)
            first = got, samples = got->samples;
        moved += got != first || got->samples != samples;
        wrong += got->samples[got->count - 1] != (uint16_t)((k + got->count - 1) & 0xff);
        k++;
    }
    CHECK(rc == 0 && k == FRAMES && moved == 0 && wrong == 0);
    y4m_reader_free(r);
    fclose(f);
    y4m_frame_free(&fr);
    lr_ctx_destroy(ctx);
}

/* ---- Colour ---- */

static void test_known_colours(void)
{
    lr_ctx *ctx = quiet_ctx();
    REQUIRE(ctx);
    /* White, black, and pure red (BT.601: Y = 16 + 219 * 0.299 = 81.48, Cr = 128 + 112 = 240). */
    static const float COLOURS[][3] = {{1, 1, 1}, {0, 0, 0}, {1, 0, 0}};
    static const int WANT8[][3] = {{235, 128, 128}, {16, 128, 128}, {81, 90, 240}};
    static const int WANT10[][3] = {{940, 512, 512}, {64, 512, 512}, {326, 361, 960}};
    for (int depth = 8; depth <= 10; depth += 2)
        for (int c = 0; c < 3; c++) {
            y4m_info info;
            REQUIRE(y4m_info_init(ctx, &info, 2, 2, depth == 8 ? "420jpeg" : "420p10") == LR_OK);
            y4m_frame fr;
            REQUIRE(y4m_frame_alloc(ctx, &info, &fr) == LR_OK);
            float rgb[12], back[12];
            for (int p = 0; p < 3; p++)
                for (int i = 0; i < 4; i++)
                    rgb[p * 4 + i] = COLOURS[c][p];
            y4m_frame_from_rgb(&info, rgb, Y4M_BT601, &fr);
            const int *want = depth == 8 ? WANT8[c] : WANT10[c];
            CHECKF(fr.plane[0][0] == want[0] && fr.plane[1][0] == want[1] &&
                       fr.plane[2][0] == want[2],
                   "depth %d colour %d: %d %d %d", depth, c, fr.plane[0][0], fr.plane[1][0],
                   fr.plane[2][0]);
            y4m_frame_to_rgb(&info, &fr, Y4M_BT601, Y4M_UPSAMPLE_BILINEAR, back);
            for (int i = 0; i < 12; i++)
                CHECK(fabsf(back[i] - rgb[i]) < 0.01f);
            y4m_frame_free(&fr);
        }
    /* Full range (XCOLORRANGE=FULL), 8-bit: red is Y 76.2, Cb 128 - 43.0, Cr 128 + 127.5. */
    for (int c = 0; c < 3; c++) {
        static const int FULL8[][3] = {{255, 128, 128}, {0, 128, 128}, {76, 85, 255}};
        y4m_info info;
        REQUIRE(y4m_info_init(ctx, &info, 1, 1, "444") == LR_OK);
        info.full_range = true;
        y4m_frame fr;
        REQUIRE(y4m_frame_alloc(ctx, &info, &fr) == LR_OK);
        float rgb[3] = {COLOURS[c][0], COLOURS[c][1], COLOURS[c][2]}, back[3];
        y4m_frame_from_rgb(&info, rgb, Y4M_BT601, &fr);
        CHECKF(fr.plane[0][0] == FULL8[c][0] && fr.plane[1][0] == FULL8[c][1] &&
                   fr.plane[2][0] == FULL8[c][2],
               "full range colour %d: %d %d %d", c, fr.plane[0][0], fr.plane[1][0], fr.plane[2][0]);
        y4m_frame_to_rgb(&info, &fr, Y4M_BT601, Y4M_UPSAMPLE_NEAREST, back);
        for (int i = 0; i < 3; i++)
            CHECK(fabsf(back[i] - rgb[i]) < 0.01f);
        y4m_frame_free(&fr);
    }
    /* BT.709 luma of pure green: 16 + 219 * 0.7152 = 172.6. */
    y4m_info info;
    REQUIRE(y4m_info_init(ctx, &info, 1, 1, "444") == LR_OK);
    y4m_frame fr;
    REQUIRE(y4m_frame_alloc(ctx, &info, &fr) == LR_OK);
    float g[3] = {0, 1, 0};
    y4m_frame_from_rgb(&info, g, Y4M_BT709, &fr);
    CHECK(fr.plane[0][0] == 173);
    y4m_frame_free(&fr);
    lr_ctx_destroy(ctx);
}

/* RGB -> YUV -> RGB on images constant over each chroma block (so that subsampling loses
 * nothing): the error is that of quantisation, a few codes at most. */
static void test_rgb_round_trip(void)
{
    lr_ctx *ctx = quiet_ctx();
    REQUIRE(ctx);
    for (size_t t = 0; t < N_TAGS; t++)
        for (int m = 0; m < 2; m++) {
            y4m_info info;
            REQUIRE(y4m_info_init(ctx, &info, 7, 5, TAGS[t]) == LR_OK);
            int w = info.width, h = info.height;
            size_t n = (size_t)w * h;
            float *rgb = malloc(3 * n * sizeof(float)), *back = malloc(3 * n * sizeof(float));
            REQUIRE(rgb && back);
            bool mono = info.subsampling == Y4M_MONO;
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++) {
                    int bx = x / 2, by = y / 2;
                    for (int p = 0; p < 3; p++) { /* mono: grey, R = G = B */
                        int k = (bx * 37 + by * 91 + (mono ? 0 : p * 53)) % 101;
                        rgb[p * n + (size_t)y * w + x] = (float)k / 100.0f;
                    }
                }
            y4m_frame fr;
            REQUIRE(y4m_frame_alloc(ctx, &info, &fr) == LR_OK);
            y4m_matrix matrix = m ? Y4M_BT709 : Y4M_BT601;
            y4m_frame_from_rgb(&info, rgb, matrix, &fr);
            y4m_frame_to_rgb(&info, &fr, matrix, Y4M_UPSAMPLE_NEAREST, back);
            /* One code of Y and of each chroma moves R, G, B by at most ~ 1/219 + 2/224. */
            float tol = 3.5f / (219.0f * (float)(1 << (info.depth - 8)));
            float worst = 0;
            for (size_t i = 0; i < 3 * n; i++)
                worst = fmaxf(worst, fabsf(back[i] - rgb[i]));
            CHECKF(worst <= tol, "%s matrix %d: error %g > %g", TAGS[t], m, worst, tol);
            y4m_frame_free(&fr);
            free(rgb);
            free(back);
        }
    lr_ctx_destroy(ctx);
}

/* Bilinear upsampling at the tag's siting: a luma pixel that sits on a chroma sample gets that
 * sample exactly; one halfway between two gets their mean; nearest replicates. */
static void test_chroma_siting(void)
{
    lr_ctx *ctx = quiet_ctx();
    REQUIRE(ctx);
    for (int tag = 0; tag < 3; tag++) {
        y4m_info info;
        const char *name = tag == 0 ? "422" : tag == 1 ? "420jpeg" : "420paldv";
        REQUIRE(y4m_info_init(ctx, &info, 4, 4, name) == LR_OK);
        y4m_frame fr;
        REQUIRE(y4m_frame_alloc(ctx, &info, &fr) == LR_OK);
        for (size_t i = 0; i < (size_t)16; i++)
            fr.plane[0][i] = 126; /* Y' = 0.5 */
        int cw = fr.width[1], ch = fr.height[1];
        for (int y = 0; y < ch; y++)
            for (int x = 0; x < cw; x++) {
                fr.plane[1][y * cw + x] = 128;
                fr.plane[2][y * cw + x] = (uint16_t)(128 + (x == 1 ? 56 : 0)); /* Pr 0 or 0.25 */
            }
        float rgb[48], near[48];
        y4m_frame_to_rgb(&info, &fr, Y4M_BT601, Y4M_UPSAMPLE_BILINEAR, rgb);
        y4m_frame_to_rgb(&info, &fr, Y4M_BT601, Y4M_UPSAMPLE_NEAREST, near);
        /* R = Y' + 1.402 Pr. */
        float base = (126.0f - 16) / 219, step = 2 * (1 - 0.299f) * 0.25f;
        for (int x = 0; x < 4; x++) {
            float pr_frac; /* weight of chroma column 1 at luma column x */
            if (info.siting == Y4M_SITING_CENTRED)
                pr_frac = x == 0 ? 0 : x == 1 ? 0.25f : x == 2 ? 0.75f : 1;
            else
                pr_frac = x == 0 ? 0 : x == 1 ? 0.5f : 1;
            CHECKF(fabsf(rgb[x] - (base + step * pr_frac)) < 1e-5f, "%s x %d: %g", name, x,
                   rgb[x]);
            CHECK(fabsf(near[x] - (base + step * (x >= 2 ? 1.0f : 0.0f))) < 1e-5f);
        }
        y4m_frame_free(&fr);
    }
    lr_ctx_destroy(ctx);
}

int main(void)
{
    RUN(test_round_trips);
    RUN(test_header_parameters);
    RUN(test_errors);
    RUN(test_writer_clamps);
    RUN(test_pipe_streaming);
    RUN(test_long_stream_constant_memory);
    RUN(test_known_colours);
    RUN(test_rgb_round_trip);
    RUN(test_chroma_siting);
    return CHECK_DONE();
}
