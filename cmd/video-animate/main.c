/* video-animate: video through temporal models. interp (the default mode) raises a video's
 * frame rate with RIFE v4.6 (interp --eval scores it on a clip's own frames); matte separates
 * people from the background with a user-supplied Robust Video Matting model; stream runs
 * RAIN's streaming diffusion mechanism with a small denoiser trained here. See
 * video-animate(1).
 *
 * Frames stream through: the reader hands over one decoded picture at a time, interp keeps the
 * previous one and emits every output frame that falls between it and the new one, so memory
 * is two frames plus the network's activations whatever the length of the input. Output
 * timestamps are computed exactly from the input's (rational arithmetic, no float drift), so
 * variable frame rate sources interpolate between their real frame times. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "models.h"
#include "output.h"
#include "progress.h"
#include "rife.h"
#include "rvm.h"
#include "stream.h"
#include "video.h"
#include "writers.h"

/* One 768x576 RGB float frame is 5 MB; 100 MP (8K is 33 MP) bounds a frame at 1.2 GB. */
#define DEFAULT_MAX_PIXELS 100000000u
enum { DEFAULT_MULTIPLIER = 2, MAX_MULTIPLIER = 1000 };
/* PSNR of identical frames is infinite; eval reports this instead so that means stay finite. */
#define PSNR_CAP 100.0
/* matte's default ratio brings the longer side to this many pixels (RVM's authors advise
 * 256-512 px for the network; the refiner restores full resolution). */
#define MATTE_SIDE 512.0

typedef enum { MODE_INTERP, MODE_MATTE, MODE_STREAM } mode;
/* stream's built-in model (the second in cmd/video-animate/models). */
#define STREAM_MODEL "rain-stream-vtest"
/* Output frame k of stream belongs to input frame k, which the ring emits at most
 * G * p + p <= 64 frames later: the input timestamps wait in a ring this long. */
enum { STREAM_PTS_RING = 128 };
typedef enum { MATTE_COMPOSITE, MATTE_ALPHA, MATTE_FOREGROUND } matte_output;

typedef struct {
    int multiplier;          /* -x */
    bool multiplier_given;
    int64_t fps_num, fps_den; /* --fps (0: use -x) */
    const char *codec;       /* -c */
    bool eval;               /* --eval */
    int64_t max_frames;      /* --frames (0: all) */
    uint64_t max_pixels;
    double ratio;            /* matte --ratio (0: from the frame size) */
    int output_type;         /* matte --output-type */
    float background[3];     /* matte --background, 0..1 */
    bool matte_option_given;
    int window, stride;      /* stream --window, --stride */
    bool stream_option_given;
} options;

/* ---- options ---- */

static bool set_multiplier(const cli_option *o, const char *arg, void *user)
{
    int64_t v;
    if (!cli_option_int(o, arg, 1, MAX_MULTIPLIER, &v))
        return false;
    ((options *)user)->multiplier = (int)v;
    ((options *)user)->multiplier_given = true;
    return true;
}

static int64_t gcd64(int64_t a, int64_t b)
{
    while (b) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* --fps 30, 29.97 or 30000/1001: kept as a reduced fraction. */
static bool set_fps(const cli_option *o, const char *arg, void *user)
{
    options *opt = user;
    const char *slash = strchr(arg, '/');
    int64_t num, den = 1;
    if (slash) {
        char *end;
        long long n = strtoll(arg, &end, 10), d = strtoll(slash + 1, NULL, 10);
        char *dend;
        strtoll(slash + 1, &dend, 10);
        if (end != slash || *dend || slash == arg || n < 1 || d < 1 || n > 1000000 ||
            d > 1000000)
            return cli_usage_error("option --fps: invalid rate '%s' (a number or N/D)", arg),
                   false;
        num = n;
        den = d;
    } else {
        double f;
        if (!cli_option_float(o, arg, 0.001, 1000000.0, &f))
            return false;
        den = 1000;
        num = llround(f * 1000.0);
        if (num < 1)
            return cli_usage_error("option --fps: rate '%s' is too small", arg), false;
    }
    int64_t g = gcd64(num, den);
    opt->fps_num = num / g;
    opt->fps_den = den / g;
    return true;
}

static bool set_codec(const cli_option *o, const char *arg, void *user)
{
    ((options *)user)->codec = arg;
    return true;
}

static bool set_eval(const cli_option *o, const char *arg, void *user)
{
    ((options *)user)->eval = true;
    return true;
}

static bool set_frames(const cli_option *o, const char *arg, void *user)
{
    uint64_t v;
    if (!cli_option_count(o, arg, 1, (uint64_t)1 << 62, &v))
        return false;
    ((options *)user)->max_frames = (int64_t)v;
    return true;
}

static bool set_max_pixels(const cli_option *o, const char *arg, void *user)
{
    return cli_option_count(o, arg, 0, (uint64_t)1 << 62, &((options *)user)->max_pixels);
}

static bool set_ratio(const cli_option *o, const char *arg, void *user)
{
    ((options *)user)->matte_option_given = true;
    return cli_option_float(o, arg, 1e-3, 1.0, &((options *)user)->ratio);
}

static bool set_output_type(const cli_option *o, const char *arg, void *user)
{
    static const char *const kinds[] = {"composite", "alpha", "foreground", NULL};
    ((options *)user)->matte_option_given = true;
    return cli_option_choice(o, arg, kinds, &((options *)user)->output_type);
}

static bool set_window(const cli_option *o, const char *arg, void *user)
{
    int64_t v;
    ((options *)user)->stream_option_given = true;
    if (!cli_option_int(o, arg, 0, 32, &v))
        return false;
    ((options *)user)->window = (int)v;
    return true;
}

static bool set_stride(const cli_option *o, const char *arg, void *user)
{
    int64_t v;
    ((options *)user)->stream_option_given = true;
    if (!cli_option_int(o, arg, 1, 32, &v))
        return false;
    ((options *)user)->stride = (int)v;
    return true;
}

/* --background R,G,B (0..255 each) or #rrggbb. */
static bool set_background(const cli_option *o, const char *arg, void *user)
{
    options *opt = user;
    unsigned rgb[3];
    int n = 0;
    opt->matte_option_given = true;
    if ((arg[0] == '#' && strlen(arg) == 7 &&
         sscanf(arg + 1, "%2x%2x%2x%n", &rgb[0], &rgb[1], &rgb[2], &n) == 3 && n == 6) ||
        (sscanf(arg, "%3u,%3u,%3u%n", &rgb[0], &rgb[1], &rgb[2], &n) == 3 && arg[n] == '\0' &&
         rgb[0] < 256 && rgb[1] < 256 && rgb[2] < 256)) {
        for (int c = 0; c < 3; c++)
            opt->background[c] = (float)rgb[c] / 255.0f;
        return true;
    }
    return cli_usage_error("option --background: invalid colour '%s' (R,G,B or #rrggbb)", arg),
           false;
}

/* ---- frames ---- */

typedef struct {
    float *rgb;
    int64_t pts;
    int64_t index;
} held_frame;

static lr_status hold(lr_ctx *ctx, held_frame *h, const video_frame *f, size_t values)
{
    if (!h->rgb && !(h->rgb = malloc(values * sizeof *h->rgb)))
        return lr_fail(ctx, LR_ERR_NOMEM, "out of memory for a frame");
    memcpy(h->rgb, f->rgb, values * sizeof *h->rgb);
    h->pts = f->pts;
    h->index = f->index;
    return LR_OK;
}

/* Clamps to 0..1 and rounds to 8 bits, as the writer would. */
static void quantise8(float *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float x = v[i] < 0.0f ? 0.0f : v[i] > 1.0f ? 1.0f : v[i];
        v[i] = floorf(x * 255.0f + 0.5f) / 255.0f;
    }
}

/* PSNR over all samples of two 0..1 frames, in dB against a peak of 255 levels. */
static double psnr(const float *a, const float *b, size_t n)
{
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        double d = ((double)a[i] - b[i]) * 255.0;
        sum += d * d;
    }
    if (sum == 0)
        return PSNR_CAP;
    double v = 10.0 * log10(255.0 * 255.0 * (double)n / sum);
    return v > PSNR_CAP ? PSNR_CAP : v;
}

/* A frame's pts, or one tick after the last one when the input's timestamps do not increase
 * (broken files): the order of the pictures is kept and the writer sees increasing times. */
static int64_t increasing_pts(const char *input_name, const video_frame *f, int64_t done,
                              int64_t last)
{
    if (done == 0 || f->pts > last)
        return f->pts;
    cli_warn(input_name, "frame %lld: timestamp %lld not after the previous one's",
             (long long)f->index, (long long)f->pts);
    return last + 1;
}

/* -o, or "-" for standard output. */
static const char *output_or_stdout(const cli_args *args)
{
    return args->output ? args->output : "-";
}

/* ---- interp ---- */

typedef struct {
    lr_ctx *ctx;
    const cli_args *args;
    const options *opt;
    rife_net *net;
    const char *input_name;
} runner;

/* Writes the frame t of the way from held frame a to frame b at pts: a itself at t = 0, else
 * the model's interpolation. */
static lr_status emit(runner *r, video_writer *w, const held_frame *a, const float *b, int h,
                      int wd, double t, float *scratch, int64_t pts)
{
    if (t == 0.0)
        return video_writer_frame(r->ctx, w, a->rgb, pts, 0);
    lr_status s = rife_interpolate(r->ctx, r->net, a->rgb, b, h, wd, (float)t, scratch);
    return s != LR_OK ? s : video_writer_frame(r->ctx, w, scratch, pts, 0);
}

/* The output clock. With -x N the output time base is the input's divided by N and frame k of
 * N between input pts p and q gets N p + k (q - p): exact for any spacing, and audio copied
 * with its own timestamps stays in sync. With --fps the output time base is one tick per
 * output frame, and tick j falls at input time start + j * fps_den * tb_den / (fps_num *
 * tb_num): compared in 128-bit integers; the output pts is j plus the start in ticks. */
typedef struct {
    bool by_rate;
    int multiplier;
    __int128 tick_in;  /* by_rate: input pts units per output tick, times ticks_den */
    __int128 ticks_den;
    int64_t start;     /* pts of the first input frame */
    int64_t next_tick; /* by_rate: the next output tick to emit */
    int64_t offset;    /* by_rate: start in output ticks (rounded) */
} clock;

static int run_interp(runner *r, video_reader *rd)
{
    const video_info *in = video_reader_info(rd);
    const options *opt = r->opt;
    const int h = in->height, wd = in->width;
    const size_t values = (size_t)3 * h * wd;

    clock ck = {.by_rate = opt->fps_num > 0, .multiplier = opt->multiplier};
    video_writer_opts wo = {.width = wd, .height = h, .sar_num = in->sar_num,
                            .sar_den = in->sar_den, .codec = opt->codec};
    if (ck.by_rate) {
        wo.fps_num = (int)opt->fps_num;
        wo.fps_den = (int)opt->fps_den;
        wo.tb_num = (int)opt->fps_den;
        wo.tb_den = (int)opt->fps_num;
        ck.tick_in = (__int128)opt->fps_den * in->tb_den;
        ck.ticks_den = (__int128)opt->fps_num * in->tb_num;
    } else {
        int64_t m = opt->multiplier, tb_num = in->tb_num, tb_den = (int64_t)in->tb_den * m;
        int64_t g = gcd64(tb_num, tb_den);
        int64_t fn = (int64_t)in->fps_num * m, fd = in->fps_den, g2 = gcd64(fn, fd);
        if (tb_den / g > INT_MAX || fn / g2 > INT_MAX) {
            cli_error(r->input_name, "time base %d/%d is too fine for -x %d", in->tb_num,
                      in->tb_den, opt->multiplier);
            return CLI_EXIT_DATA;
        }
        wo.tb_num = (int)(tb_num / g);
        wo.tb_den = (int)(tb_den / g);
        wo.fps_num = (int)(fn / g2);
        wo.fps_den = (int)(fd / g2);
    }
    cli_info(r->input_name, "%dx%d %s/%s at %d/%d fps -> %d/%d fps", wd, h, in->format,
             in->codec, in->fps_num, in->fps_den, wo.fps_num, wo.fps_den);

    video_writer *w;
    int rc = video_writer_open(output_or_stdout(r->args), &wo, rd, r->args->force, &w);
    if (rc != CLI_EXIT_OK)
        return rc;
    held_frame prev = {0};
    float *scratch = malloc(values * sizeof *scratch);
    lr_status s = scratch ? LR_OK : lr_fail(r->ctx, LR_ERR_NOMEM, "out of memory for a frame");
    progress bar;
    progress_start(&bar, r->args->progress, "frames",
                   in->frames > 0 ? (uint64_t)in->frames : 0);
    int64_t done = 0;
    video_frame f;
    int got = 0;
    while (s == LR_OK && (!opt->max_frames || done < opt->max_frames) &&
           (got = video_reader_next(r->ctx, rd, &f)) == 1) {
        const int64_t pts = increasing_pts(r->input_name, &f, done, prev.pts);
        if (done == 0) {
            ck.start = pts;
            if (ck.by_rate)
                ck.offset = (int64_t)llround((double)pts * in->tb_num * opt->fps_num /
                                             ((double)in->tb_den * opt->fps_den));
        } else if (!ck.by_rate) {
            const int64_t m = ck.multiplier, p = prev.pts, q = pts;
            for (int64_t k = 0; s == LR_OK && k < m; k++)
                s = emit(r, w, &prev, f.rgb, h, wd, (double)k / (double)m, scratch,
                         p * m + k * (q - p));
        } else {
            /* Ticks j with prev <= time(j) < this frame, at t = (time(j) - prev) / (q - p). */
            const __int128 p = (__int128)(prev.pts - ck.start) * ck.ticks_den,
                           q = (__int128)(pts - ck.start) * ck.ticks_den;
            for (;;) {
                __int128 at = (__int128)ck.next_tick * ck.tick_in;
                if (at >= q || s != LR_OK)
                    break;
                double t = (double)(at - p) / (double)(q - p);
                s = emit(r, w, &prev, f.rgb, h, wd, t, scratch, ck.offset + ck.next_tick++);
            }
        }
        if (s == LR_OK)
            s = hold(r->ctx, &prev, &f, values);
        prev.pts = pts;
        progress_update(&bar, (uint64_t)++done);
    }
    if (got < 0)
        s = LR_ERR_DATA;
    /* The last picture: at its own time, or on the rate grid if a tick falls on it. */
    if (s == LR_OK && done > 0) {
        if (!ck.by_rate) {
            s = video_writer_frame(r->ctx, w, prev.rgb, prev.pts * ck.multiplier, 0);
        } else if ((__int128)ck.next_tick * ck.tick_in ==
                   (__int128)(prev.pts - ck.start) * ck.ticks_den) {
            s = video_writer_frame(r->ctx, w, prev.rgb, ck.offset + ck.next_tick++, 0);
        }
    }
    progress_finish(&bar, (uint64_t)done);
    free(scratch);
    free(prev.rgb);
    if (s != LR_OK) {
        video_writer_abort(w);
        return cli_report(r->ctx, s, r->input_name);
    }
    return video_writer_close(w);
}

/* ---- matte ---- */

/* Every frame through the network with the recurrent state carried over; out gets the alpha
 * (as grey), the foreground, or the foreground composited on the background colour. */
static int run_matte(runner *r, rvm_net *net, video_reader *rd)
{
    const video_info *in = video_reader_info(rd);
    const options *opt = r->opt;
    const int h = in->height, w = in->width;
    const size_t plane = (size_t)h * w;
    const double ratio = opt->ratio > 0 ? opt->ratio
                                        : fmin(1.0, MATTE_SIDE / (h > w ? h : w));
    rvm_state *st = NULL;
    lr_status s = rvm_state_create(r->ctx, net, h, w, (float)ratio, &st);
    if (s != LR_OK)
        return cli_report(r->ctx, s, r->input_name);
    int hs, ws;
    rvm_state_size(st, &hs, &ws);
    cli_info(r->input_name, "%dx%d %s/%s, the network at %dx%d (ratio %g)", w, h, in->format,
             in->codec, ws, hs, ratio);
    video_writer_opts wo = {w, h, in->tb_num, in->tb_den, in->fps_num, in->fps_den,
                            in->sar_num, in->sar_den, opt->codec};
    video_writer *wr;
    int rc = video_writer_open(output_or_stdout(r->args), &wo, rd, r->args->force, &wr);
    if (rc != CLI_EXIT_OK) {
        rvm_state_free(st);
        return rc;
    }
    float *out = malloc(3 * plane * sizeof *out), *pha = malloc(plane * sizeof *pha);
    s = out && pha ? LR_OK : lr_fail(r->ctx, LR_ERR_NOMEM, "out of memory for a frame");
    progress bar;
    progress_start(&bar, r->args->progress, "frames",
                   in->frames > 0 ? (uint64_t)in->frames : 0);
    int64_t done = 0, last = 0;
    video_frame f;
    int got = 0;
    while (s == LR_OK && (!opt->max_frames || done < opt->max_frames) &&
           (got = video_reader_next(r->ctx, rd, &f)) == 1) {
        last = increasing_pts(r->input_name, &f, done, last);
        if ((s = rvm_step(r->ctx, net, st, f.rgb, out, pha)) != LR_OK)
            break;
        for (int c = 0; c < 3; c++) {
            float *o = out + c * plane;
            const float bg = opt->background[c];
            if (opt->output_type == MATTE_ALPHA)
                memcpy(o, pha, plane * sizeof *o);
            else if (opt->output_type == MATTE_COMPOSITE)
                for (size_t i = 0; i < plane; i++)
                    o[i] = o[i] * pha[i] + bg * (1.0f - pha[i]);
        }
        s = video_writer_frame(r->ctx, wr, out, last, f.duration);
        progress_update(&bar, (uint64_t)++done);
    }
    if (got < 0)
        s = LR_ERR_DATA;
    progress_finish(&bar, (uint64_t)done);
    free(out);
    free(pha);
    rvm_state_free(st);
    if (s != LR_OK) {
        video_writer_abort(wr);
        return cli_report(r->ctx, s, r->input_name);
    }
    return video_writer_close(wr);
}

/* ---- stream ---- */

typedef struct {
    runner *r;
    video_writer *w;
    int64_t pts[STREAM_PTS_RING]; /* input frame k's pts at k % STREAM_PTS_RING */
    lr_status status;             /* the first write error */
} stream_sink;

static void stream_write(void *user, const float *rgb, int64_t index)
{
    stream_sink *sink = user;
    if (sink->status == LR_OK)
        sink->status = video_writer_frame(sink->r->ctx, sink->w, rgb,
                                          sink->pts[index % STREAM_PTS_RING], 0);
}

/* Input frames go into the ring as they arrive; each output frame leaves with its input
 * frame's timestamp, G * p - 1 frames later (the ring empties at the end). */
static int run_stream(runner *r, stream_net *net, video_reader *rd)
{
    const video_info *in = video_reader_info(rd);
    const options *opt = r->opt;
    stream_info si;
    stream_net_info(net, &si);
    stream_state *st = NULL;
    lr_status s = stream_create(r->ctx, net, r->args->seed, &st);
    if (s == LR_OK && opt->window)
        s = stream_set_window(r->ctx, st, opt->window, opt->stride ? opt->stride : 1);
    if (s != LR_OK) {
        stream_free(st);
        return cli_report(r->ctx, s, NULL);
    }
    cli_info(r->input_name, "%dx%d %s/%s -> %dx%d, %d groups of %d frames (latency %d frames)",
             in->width, in->height, in->format, in->codec, si.width, si.height, si.groups,
             si.frames_per_group, si.groups * si.frames_per_group - 1);
    video_writer_opts wo = {si.width, si.height, in->tb_num, in->tb_den, in->fps_num,
                            in->fps_den, 0, 0, opt->codec};
    stream_sink sink = {.r = r, .status = LR_OK};
    int rc = video_writer_open(output_or_stdout(r->args), &wo, rd, r->args->force, &sink.w);
    if (rc != CLI_EXIT_OK) {
        stream_free(st);
        return rc;
    }
    progress bar;
    progress_start(&bar, r->args->progress, "frames",
                   in->frames > 0 ? (uint64_t)in->frames : 0);
    int64_t done = 0, last = 0;
    video_frame f;
    int got = 0;
    while (s == LR_OK && sink.status == LR_OK && (!opt->max_frames || done < opt->max_frames) &&
           (got = video_reader_next(r->ctx, rd, &f)) == 1) {
        last = increasing_pts(r->input_name, &f, done, last);
        sink.pts[done % STREAM_PTS_RING] = last;
        s = stream_push(r->ctx, st, f.rgb, in->height, in->width, stream_write, &sink);
        progress_update(&bar, (uint64_t)++done);
    }
    if (got < 0)
        s = LR_ERR_DATA;
    if (s == LR_OK && sink.status == LR_OK)
        s = stream_finish(r->ctx, st, stream_write, &sink);
    if (s == LR_OK)
        s = sink.status;
    progress_finish(&bar, (uint64_t)done);
    stream_free(st);
    if (s != LR_OK) {
        video_writer_abort(sink.w);
        return cli_report(r->ctx, s, r->input_name);
    }
    return video_writer_close(sink.w);
}

/* ---- eval ---- */

/* Decibels to 0.001 dB: finer digits are noise. */
static void table_db(table_writer *t, double db)
{
    char text[32];
    snprintf(text, sizeof text, "%.3f", db);
    table_str(t, text);
}

/* Every frame i with both neighbours is predicted from frames i-1 and i+1 (t = 1/2) by the
 * model, by their average and by repeating frame i-1; each prediction is rounded to 8 bits and
 * scored by PSNR against the real frame i. */
static int run_eval(runner *r, video_reader *rd)
{
    const video_info *in = video_reader_info(rd);
    const size_t values = (size_t)3 * in->height * in->width;
    video_reader_drop_streams(rd); /* no container output to copy audio into */
    output *o;
    int rc = output_open(r->args->output, false, false, &o);
    if (rc != CLI_EXIT_OK)
        return rc;
    static const char *const columns[] = {"frame", "psnr_model", "psnr_average", "psnr_repeat"};
    table_writer t;
    table_begin(&t, output_stream(o), FORMAT_TSV, columns, 4);
    held_frame ring[3] = {{0}};
    float *pred = malloc(values * sizeof *pred);
    lr_status s = pred ? LR_OK : lr_fail(r->ctx, LR_ERR_NOMEM, "out of memory for a frame");
    double sum[3] = {0, 0, 0};
    int64_t n = 0, scored = 0;
    progress bar;
    progress_start(&bar, r->args->progress, "frames",
                   in->frames > 0 ? (uint64_t)in->frames : 0);
    video_frame f;
    int got = 0;
    while (s == LR_OK && (!r->opt->max_frames || n < r->opt->max_frames) &&
           (got = video_reader_next(r->ctx, rd, &f)) == 1) {
        if ((s = hold(r->ctx, &ring[n % 3], &f, values)) != LR_OK)
            break;
        n++;
        if (n >= 3) {
            const held_frame *a = &ring[(n - 3) % 3], *real = &ring[(n - 2) % 3],
                             *b = &ring[(n - 1) % 3];
            double score[3];
            if ((s = rife_interpolate(r->ctx, r->net, a->rgb, b->rgb, in->height, in->width,
                                      0.5f, pred)) != LR_OK)
                break;
            quantise8(pred, values);
            score[0] = psnr(pred, real->rgb, values);
            for (size_t i = 0; i < values; i++)
                pred[i] = 0.5f * (a->rgb[i] + b->rgb[i]);
            quantise8(pred, values);
            score[1] = psnr(pred, real->rgb, values);
            score[2] = psnr(a->rgb, real->rgb, values);
            table_int(&t, n - 2); /* frames numbered from 0, as ffmpeg's select filter does */
            for (int k = 0; k < 3; k++) {
                table_db(&t, score[k]);
                sum[k] += score[k];
            }
            table_end_row(&t);
            fflush(output_stream(o)); /* a row as soon as it is known: eval takes a while */
            scored++;
        }
        progress_update(&bar, (uint64_t)n);
    }
    progress_finish(&bar, (uint64_t)n);
    if (got < 0)
        s = LR_ERR_DATA;
    if (s == LR_OK && scored == 0)
        s = lr_fail(r->ctx, LR_ERR_DATA, "eval needs at least 3 frames, got %lld",
                    (long long)n);
    if (s == LR_OK) {
        table_str(&t, "mean");
        for (int k = 0; k < 3; k++)
            table_db(&t, sum[k] / (double)scored);
        table_end_row(&t);
    }
    free(pred);
    for (int k = 0; k < 3; k++)
        free(ring[k].rgb);
    if (s != LR_OK) {
        output_abort(o);
        return cli_report(r->ctx, s, r->input_name);
    }
    return output_commit(o);
}

int main(int argc, char **argv)
{
    options opt = {.multiplier = DEFAULT_MULTIPLIER, .max_pixels = DEFAULT_MAX_PIXELS,
                   /* RVM's own green screen */
                   .background = {120.0f / 255.0f, 1.0f, 155.0f / 255.0f}};
    const cli_option options_table[] = {
        {"multiply", 'x', "N", "interp: N output frames per input frame interval (default 2; 1 "
         "re-encodes)", set_multiplier},
        {"fps", 0, "RATE", "interp: output frames at this rate (30, 29.97, 30000/1001) instead "
         "of -x", set_fps},
        {"eval", 0, NULL, "interp: predict each frame from its neighbours and print PSNR of "
         "the model, frame averaging and frame repetition", set_eval},
        {"ratio", 0, "R", "matte: run the network at R times the frame size (default: longer "
         "side 512 px at most)", set_ratio},
        {"output-type", 0, "TYPE", "matte: composite (default), alpha or foreground",
         set_output_type},
        {"background", 0, "COLOUR", "matte: composite on R,G,B or #rrggbb (default "
         "120,255,155)", set_background},
        {"window", 0, "N", "stream: temporal attention in windows of N frames fused as in "
         "FreeNoise (default 0: the whole ring)", set_window},
        {"stride", 0, "S", "stream: frames between windows (default 1)", set_stride},
        {"codec", 'c', "NAME", "encoder for a container output: h264, ffv1, mpeg4 or any "
         "libavcodec encoder (default: by the -o extension)", set_codec},
        {"frames", 0, "N", "read at most N input frames", set_frames},
        {"max-pixels", 0, "N", "refuse frames of more pixels (default 100M; 0: no limit)",
         set_max_pixels},
        {NULL, 0, NULL, NULL, NULL},
    };
    const cli_program program = {
        .name = "video-animate",
        .synopsis = "[interp] [OPTIONS] [FILE|-]\n"
                    "       video-animate matte -m MODEL [OPTIONS] [FILE|-]\n"
                    "       video-animate stream [OPTIONS] [FILE|-]",
        .description = "Raise a video's frame rate with RIFE (interp; --eval scores it), "
                       "matte people with a Robust Video Matting model, or run RAIN-style "
                       "streaming diffusion (stream).",
        .options = options_table,
        .user = &opt,
    };
    cli_args args;
    int rc = cli_parse(&program, argc, argv, &args);
    if (rc != CLI_PROCEED)
        return rc;
    char **operands = args.operands;
    int n_operands = args.n_operands;
    mode m = MODE_INTERP;
    if (n_operands && strcmp(operands[0], "matte") == 0)
        m = MODE_MATTE;
    else if (n_operands && strcmp(operands[0], "stream") == 0)
        m = MODE_STREAM;
    if (n_operands && (m != MODE_INTERP || strcmp(operands[0], "interp") == 0)) {
        operands++;
        n_operands--;
    }
    if (n_operands > 1)
        return cli_usage_error("one input at a time (got %d)", n_operands);
    if (m != MODE_INTERP && (opt.fps_num || opt.multiplier_given || opt.eval))
        return cli_usage_error("%s keeps the frame rate: no -x, --fps or --eval",
                               m == MODE_MATTE ? "matte" : "stream");
    if (m != MODE_MATTE && opt.matte_option_given)
        return cli_usage_error("--ratio, --output-type and --background are matte options");
    if (m != MODE_STREAM && opt.stream_option_given)
        return cli_usage_error("--window and --stride are stream options");
    if (opt.stride && opt.stride > opt.window)
        return cli_usage_error("--stride %d is more than --window %d", opt.stride, opt.window);
    if (m == MODE_MATTE && !args.model && !args.dump_model)
        return cli_usage_error("matte needs -m MODEL: a Robust Video Matting model converted "
                               "with tools/convert_rvm_tfjs.py (none is built in)");
    if (opt.fps_num && opt.multiplier_given)
        return cli_usage_error("-x and --fps both set the output rate: give one");
    if (opt.eval && (opt.fps_num || opt.multiplier_given || opt.codec))
        return cli_usage_error("--eval writes a table: no -x, --fps or -c");
    const char *input = n_operands ? operands[0] : "-";

    lr_ctx *ctx = NULL;
    if ((rc = cli_context(&args, &ctx)) != CLI_EXIT_OK)
        return rc;
    lr_model *file = NULL;
    rife_net *rife = NULL;
    rvm_net *rvm = NULL;
    stream_net *denoiser = NULL;
    video_reader *rd = NULL;
    const char *spec = args.model ? args.model : m == MODE_STREAM ? STREAM_MODEL : NULL;
    if ((rc = cli_open_model(ctx, spec, &file)) != CLI_EXIT_OK)
        goto done;
    if (args.dump_model) {
        rc = cli_dump_model(&args, file);
        goto done;
    }
    lr_status s = m == MODE_MATTE    ? rvm_load(ctx, file, &rvm)
                  : m == MODE_STREAM ? stream_load(ctx, file, &denoiser)
                                     : rife_load(ctx, file, &rife);
    if (s != LR_OK) {
        rc = cli_report(ctx, s, NULL);
        goto done;
    }
    const char *name = strcmp(input, "-") == 0 ? "stdin" : input;
    if ((s = video_reader_open(ctx, input, opt.max_pixels, &rd)) != LR_OK) {
        rc = cli_report(ctx, s, name);
        goto done;
    }
    runner r = {.ctx = ctx, .args = &args, .opt = &opt, .net = rife, .input_name = name};
    rc = m == MODE_MATTE    ? run_matte(&r, rvm, rd)
       : m == MODE_STREAM   ? run_stream(&r, denoiser, rd)
       : opt.eval           ? run_eval(&r, rd)
                            : run_interp(&r, rd);
done:
    video_reader_free(rd);
    rife_free(rife);
    rvm_free(rvm);
    stream_net_free(denoiser);
    lr_model_close(file);
    lr_ctx_destroy(ctx);
    return rc;
}
