/* seg-run: segmentation of PNG images (by default a person mask with the MediaPipe selfie
 * model). See seg-run(1).
 *
 * Each input is read whole, stretched (or letterboxed) to the network's input size by
 * half-pixel bilinear interpolation, run through the network, and its probabilities (sigmoid of
 * the logit, or softmax over classes) come back to the input's size by half-pixel bilinear
 * interpolation before any threshold. A failing input is reported in one line and the others
 * are still done; outputs are written atomically (output.h). */
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "cli.h"
#include "embed.h"
#include "image.h"
#include "longrange/resize.h"
#include "models.h"
#include "output.h"
#include "seg.h"
#include "writers.h"

/* The selfie model is tiny: 50 MP (600 MB of float RGB) bounds the memory of one input. */
#define DEFAULT_MAX_PIXELS 50000000u
/* -m auto: the landscape model (256 x 144) from this width/height ratio on, as MediaPipe's
 * selfie solution chooses it for wide video frames. */
#define LANDSCAPE_RATIO 1.5
/* Networks that take any input size see the image with its short side at --size, by default
 * this (mmsegmentation's ADE20K test scale). */
enum { DEFAULT_SHORT_SIDE = 512, MAX_SHORT_SIDE = 16384 };

/* Colours for one-class networks: label ids 0 background, 1 person; overlay tint. */
static const unsigned char binary_palette[2 * 3] = {0, 0, 0, 255, 64, 160};
static const char *const binary_names[2] = {"background", "person"};

typedef enum { FMT_MASK, FMT_PROB, FMT_LABEL, FMT_CUTOUT, FMT_OVERLAY, FMT_NPY } seg_format;
static const char *const formats[] = {"mask", "prob", "label", "cutout", "overlay", "npy", NULL};

typedef struct {
    double threshold;     /* -t */
    bool threshold_given; /* cutout: hard alpha */
    bool stats;           /* --stats */
    bool logits;          /* --logits (npy) */
    bool letterbox;       /* --fit letterbox */
    int size;             /* --size: the short side for networks of any input size */
    int tile, overlap;    /* --tile, --overlap: sliding windows (tile 0: the whole image) */
    bool overlap_given;
    uint64_t max_pixels;
} seg_options;

/* ---- options ---- */

static bool set_threshold(const cli_option *o, const char *arg, void *user)
{
    seg_options *opt = user;
    opt->threshold_given = true;
    return cli_option_float(o, arg, 0.0, 1.0, &opt->threshold);
}

static bool set_stats(const cli_option *o, const char *arg, void *user)
{
    ((seg_options *)user)->stats = true;
    return true;
}

static bool set_logits(const cli_option *o, const char *arg, void *user)
{
    ((seg_options *)user)->logits = true;
    return true;
}

static bool set_fit(const cli_option *o, const char *arg, void *user)
{
    static const char *const modes[] = {"stretch", "letterbox", NULL};
    int mode;
    if (!cli_option_choice(o, arg, modes, &mode))
        return false;
    ((seg_options *)user)->letterbox = mode == 1;
    return true;
}

static bool set_size(const cli_option *o, const char *arg, void *user)
{
    int64_t v;
    if (!cli_option_int(o, arg, 1, MAX_SHORT_SIDE, &v))
        return false;
    ((seg_options *)user)->size = (int)v;
    return true;
}

static bool set_tile(const cli_option *o, const char *arg, void *user)
{
    int64_t v;
    if (!cli_option_int(o, arg, 1, MAX_SHORT_SIDE, &v))
        return false;
    ((seg_options *)user)->tile = (int)v;
    return true;
}

static bool set_overlap(const cli_option *o, const char *arg, void *user)
{
    int64_t v;
    if (!cli_option_int(o, arg, 0, MAX_SHORT_SIDE - 1, &v))
        return false;
    ((seg_options *)user)->overlap = (int)v;
    ((seg_options *)user)->overlap_given = true;
    return true;
}

static bool set_max_pixels(const cli_option *o, const char *arg, void *user)
{
    return cli_option_count(o, arg, 0, (uint64_t)1 << 62, &((seg_options *)user)->max_pixels);
}

/* ---- the networks ---- */

typedef struct {
    lr_ctx *ctx;
    const cli_args *args;
    const seg_options *opt;
    seg_format format;
    bool automatic;        /* -m auto: nets[0] square, nets[1] landscape, opened when needed */
    lr_model *files[2];
    seg_net *nets[2];
    table_writer stats;
    output *stats_out;
} runner;

/* Opens model slot i from spec. Returns an exit status (3 for a model problem, reported). */
static int open_net(runner *r, int i, const char *spec)
{
    int rc = cli_open_model(r->ctx, spec, &r->files[i]);
    if (rc != CLI_EXIT_OK)
        return rc;
    lr_status s = seg_net_open(r->ctx, r->files[i], &r->nets[i]);
    if (s != LR_OK)
        return cli_report(r->ctx, s, NULL);
    return CLI_EXIT_OK;
}

/* The network for a width x height image (opening it on first use with -m auto). */
static int net_for(runner *r, int width, int height, seg_net **net)
{
    int i = r->automatic && (double)width >= LANDSCAPE_RATIO * height ? 1 : 0;
    if (!r->nets[i]) {
        int rc = open_net(r, i, i ? "selfie-landscape" : "selfie");
        if (rc != CLI_EXIT_OK)
            return rc;
    }
    *net = r->nets[i];
    return CLI_EXIT_OK;
}

/* ---- segmentation ---- */

typedef struct {
    int width, height, classes;
    /* At the image's size: [classes][height][width] when every plane is kept (-f npy), else
     * one plane, the probability of class 0 (one class: of the foreground). */
    float *prob;
    float *logits; /* [classes][out_h][out_w]: the network's raw output */
    unsigned char *labels; /* classes > 1: the argmax per pixel (ties to the lower id) */
    int out_h, out_w;
} seg_result;

static void result_free(seg_result *res)
{
    free(res->prob);
    free(res->logits);
    free(res->labels);
    memset(res, 0, sizeof *res);
}

/* 1 / (1 + e^-x) without overflow for any x. */
static float stable_sigmoid(float x)
{
    if (x >= 0.0f)
        return 1.0f / (1.0f + expf(-x));
    float e = expf(x);
    return e / (1.0f + e);
}

/* In place over [classes][n]: sigmoid for one class, softmax across classes for more. */
static void logits_to_prob(float *v, int classes, int64_t n)
{
    if (classes == 1) {
        for (int64_t i = 0; i < n; i++)
            v[i] = stable_sigmoid(v[i]);
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        float max = v[i];
        for (int c = 1; c < classes; c++)
            max = fmaxf(max, v[c * n + i]);
        double sum = 0.0;
        for (int c = 0; c < classes; c++)
            sum += (v[c * n + i] = expf(v[c * n + i] - max));
        for (int c = 0; c < classes; c++)
            v[c * n + i] = (float)(v[c * n + i] / sum);
    }
}

/* The network's input: the image's RGB (grey replicated, alpha left out), resized. Without
 * antialiasing, as MediaPipe's ImageToTensorCalculator samples (OpenCV warpPerspective
 * INTER_LINEAR on CPU, a bilinear texture fetch on GPU): see seg-run(1), INPUT. */
static lr_status resize_rgb(lr_ctx *ctx, const image *img, float *out, int h, int w)
{
    const lr_resize_desc bilinear = {LR_RESIZE_BILINEAR, 0.0, false};
    if (img->channels >= 3)
        return lr_resize(ctx, &bilinear, img->pixels, 3, img->height, img->width, out, h, w);
    lr_status s = lr_resize(ctx, &bilinear, img->pixels, 1, img->height, img->width, out, h, w);
    if (s == LR_OK) {
        memcpy(out + (size_t)h * w, out, (size_t)h * w * sizeof *out);
        memcpy(out + (size_t)2 * h * w, out, (size_t)h * w * sizeof *out);
    }
    return s;
}

/* mmsegmentation's slide inference on in [3][ih][iw]: windows of min(tile, ih) x
 * min(tile, iw) pixels every tile - overlap pixels, the last one of a row or column moved
 * back to end at the border; each window's logits brought to the window's size (bilinear,
 * half-pixel) when the network's output is smaller, summed, and divided by the number of
 * windows covering each pixel. out: [classes][ih][iw]. Windows run one after another, so the
 * sums happen in a fixed order (deterministic). */
static lr_status forward_tiled(lr_ctx *ctx, const seg_net *net, const float *in, int ih, int iw,
                               int tile, int overlap, float *out)
{
    const int C = net->classes, step = tile - overlap;
    const int th = tile < ih ? tile : ih, tw = tile < iw ? tile : iw;
    const int rows = (ih - th + step - 1) / step + 1, cols = (iw - tw + step - 1) / step + 1;
    int oh, ow;
    net->out_size(net, th, tw, &oh, &ow);
    const int64_t n = (int64_t)ih * iw, wn = (int64_t)th * tw;
    const bool resize = oh != th || ow != tw;
    float *win = malloc((size_t)(3 * wn) * sizeof *win);
    float *wout = malloc((size_t)C * oh * ow * sizeof *wout);
    float *wres = resize ? malloc((size_t)(C * wn) * sizeof *wres) : wout;
    int *count = calloc((size_t)n, sizeof *count);
    lr_status s = LR_OK;
    if (!win || !wout || !wres || !count) {
        s = lr_fail(ctx, LR_ERR_NOMEM, "out of memory for %dx%d tiles", tw, th);
        goto done;
    }
    memset(out, 0, (size_t)(C * n) * sizeof *out);
    for (int r = 0; r < rows && s == LR_OK; r++) {
        const int y1 = (r * step + th < ih ? r * step + th : ih) - th;
        for (int c = 0; c < cols && s == LR_OK; c++) {
            const int x1 = (c * step + tw < iw ? c * step + tw : iw) - tw;
            for (int ch = 0; ch < 3; ch++)
                for (int y = 0; y < th; y++)
                    memcpy(win + (ch * th + y) * (int64_t)tw,
                           in + ch * n + (y1 + y) * (int64_t)iw + x1, (size_t)tw * sizeof *win);
            if ((s = net->forward(ctx, net, win, th, tw, wout)) != LR_OK)
                break;
            const lr_resize_desc bilinear = {LR_RESIZE_BILINEAR, 0.0, false};
            if (resize && (s = lr_resize(ctx, &bilinear, wout, C, oh, ow, wres, th, tw)) != LR_OK)
                break;
            for (int k = 0; k < C; k++)
                for (int y = 0; y < th; y++) {
                    float *o = out + k * n + (y1 + y) * (int64_t)iw + x1;
                    const float *w = wres + (k * th + y) * (int64_t)tw;
                    for (int x = 0; x < tw; x++)
                        o[x] += w[x];
                }
            for (int y = 0; y < th; y++)
                for (int x = 0; x < tw; x++)
                    count[(y1 + y) * (int64_t)iw + x1 + x]++;
        }
    }
    for (int k = 0; s == LR_OK && k < C; k++)
        for (int64_t i = 0; i < n; i++)
            out[k * n + i] /= (float)count[i];
done:
    free(win);
    free(wout);
    if (resize)
        free(wres);
    free(count);
    return s;
}

/* The probabilities src [classes][ch][cw] at the image's size into res->prob (all planes, or
 * class 0's only) and, for several classes, res->labels: each class plane is resized in turn
 * and folded into a running argmax (ties to the lower id), so without all_planes the memory is
 * three planes whatever the class count (150 classes at 512x512 would be 157 MB) and the
 * values are those of resizing every plane at once. */
static lr_status resize_probabilities(lr_ctx *ctx, const float *src, int ch, int cw,
                                      bool all_planes, seg_result *res)
{
    const lr_resize_desc bilinear = {LR_RESIZE_BILINEAR, 0.0, false};
    const int C = res->classes, H = res->height, W = res->width;
    const int64_t n = (int64_t)H * W, src_n = (int64_t)ch * cw;
    if (C == 1)
        return lr_resize(ctx, &bilinear, src, 1, ch, cw, res->prob, H, W);
    float *best = malloc((size_t)n * sizeof *best);
    float *plane = all_planes ? NULL : malloc((size_t)n * sizeof *plane);
    res->labels = calloc((size_t)n, 1);
    lr_status s = LR_OK;
    if (!best || (!all_planes && !plane) || !res->labels)
        s = lr_fail(ctx, LR_ERR_NOMEM, "out of memory for a %dx%d label map", W, H);
    for (int c = 0; c < C && s == LR_OK; c++) {
        float *p = all_planes || c == 0 ? res->prob + c * n : plane;
        if ((s = lr_resize(ctx, &bilinear, src + c * src_n, 1, ch, cw, p, H, W)) != LR_OK)
            break;
        if (c == 0) {
            memcpy(best, p, (size_t)n * sizeof *best);
            continue;
        }
        for (int64_t i = 0; i < n; i++)
            if (p[i] > best[i]) {
                best[i] = p[i];
                res->labels[i] = (unsigned char)c;
            }
    }
    free(best);
    free(plane);
    return s;
}

static lr_status segment(lr_ctx *ctx, const seg_net *net, const image *img,
                         const seg_options *opt, bool all_planes, seg_result *res)
{
    const bool letterbox = opt->letterbox;
    const int H = img->height, W = img->width, C = net->classes;
    memset(res, 0, sizeof *res);
    res->width = W;
    res->height = H;
    res->classes = C;
    int ih = net->in_height, iw = net->in_width;
    const bool tiled = iw == 0 && opt->tile > 0;
    if (iw == 0) { /* any size: the short side to --size */
        double s = (double)opt->size / (H < W ? H : W);
        ih = (int)fmax(1.0, round(H * s));
        iw = (int)fmax(1.0, round(W * s));
    }
    /* The image's place in the network's input: all of it, or letterboxed (centred, aspect
     * kept, zero border as MediaPipe's BORDER_ZERO). */
    int x0 = 0, y0 = 0, rw = iw, rh = ih;
    if (letterbox) {
        double s = fmin((double)iw / W, (double)ih / H);
        rw = (int)fmin(iw, fmax(1.0, round(W * s)));
        rh = (int)fmin(ih, fmax(1.0, round(H * s)));
        x0 = (iw - rw) / 2;
        y0 = (ih - rh) / 2;
    }
    if (tiled) { /* the windows' logits are averaged at the input's resolution */
        res->out_h = ih;
        res->out_w = iw;
    } else {
        net->out_size(net, ih, iw, &res->out_h, &res->out_w);
    }
    const int oh = res->out_h, ow = res->out_w;
    const int64_t in_n = (int64_t)ih * iw, out_n = (int64_t)oh * ow;
    float *in = calloc((size_t)(3 * in_n), sizeof *in);
    float *part = letterbox ? malloc((size_t)3 * rh * rw * sizeof *part) : NULL;
    res->logits = malloc((size_t)(C * out_n) * sizeof *res->logits);
    float *prob_net = malloc((size_t)(C * out_n) * sizeof *prob_net);
    res->prob = malloc((size_t)(all_planes ? C : 1) * H * W * sizeof *res->prob);
    float *crop = NULL;
    lr_status s = LR_OK;
    if (!in || (letterbox && !part) || !res->logits || !prob_net || !res->prob) {
        s = lr_fail(ctx, LR_ERR_NOMEM, "out of memory for a %dx%d image", W, H);
        goto done;
    }
    if (!letterbox) {
        s = resize_rgb(ctx, img, in, ih, iw);
    } else if ((s = resize_rgb(ctx, img, part, rh, rw)) == LR_OK) {
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < rh; y++)
                memcpy(in + c * in_n + (int64_t)(y0 + y) * iw + x0,
                       part + ((int64_t)c * rh + y) * rw, (size_t)rw * sizeof *in);
    }
    if (s != LR_OK)
        goto done;
    s = tiled ? forward_tiled(ctx, net, in, ih, iw, opt->tile, opt->overlap, res->logits)
              : net->forward(ctx, net, in, ih, iw, res->logits);
    if (s != LR_OK)
        goto done;
    memcpy(prob_net, res->logits, (size_t)(C * out_n) * sizeof *prob_net);
    logits_to_prob(prob_net, C, out_n);
    /* Letterbox: the output rows and columns that cover the image (the same fraction of the
     * output as of the input). */
    int cx0 = 0, cy0 = 0, cw = ow, ch = oh;
    if (letterbox) {
        cx0 = (int)round((double)x0 * ow / iw);
        cy0 = (int)round((double)y0 * oh / ih);
        cw = (int)fmax(1.0, fmin(ow - cx0, round((double)rw * ow / iw)));
        ch = (int)fmax(1.0, fmin(oh - cy0, round((double)rh * oh / ih)));
        if (!(crop = malloc((size_t)C * ch * cw * sizeof *crop))) {
            s = lr_fail(ctx, LR_ERR_NOMEM, "out of memory");
            goto done;
        }
        for (int c = 0; c < C; c++)
            for (int y = 0; y < ch; y++)
                memcpy(crop + ((int64_t)c * ch + y) * cw,
                       prob_net + c * out_n + (int64_t)(cy0 + y) * ow + cx0,
                       (size_t)cw * sizeof *crop);
    }
    s = resize_probabilities(ctx, crop ? crop : prob_net, ch, cw, all_planes, res);
done:
    free(in);
    free(part);
    free(prob_net);
    free(crop);
    if (s != LR_OK)
        result_free(res);
    return s;
}

/* Per pixel: the class id (one class: 1 where the probability exceeds the threshold, else
 * argmax; ties to the lower id). */
static unsigned char label_at(const seg_result *res, int64_t i, float threshold)
{
    return res->classes == 1 ? res->prob[i] > threshold : res->labels[i];
}

/* The probability of the foreground: p, or 1 - p(class 0). */
static float foreground_at(const seg_result *res, int64_t i)
{
    return res->classes == 1 ? res->prob[i] : 1.0f - res->prob[i];
}

/* ---- outputs ---- */

typedef struct {
    char msg[200];
} png_error_text;

static void on_png_error(png_structp png, png_const_charp msg)
{
    png_error_text *e = png_get_error_ptr(png);
    snprintf(e->msg, sizeof e->msg, "%s", msg ? msg : "unknown libpng error");
    png_longjmp(png, 1);
}

static void on_png_warning(png_structp png, png_const_charp msg)
{
}

/* The only frame with a setjmp: nothing in it changes after setjmp. */
static bool write_palette_guarded(png_structp png, png_infop info, FILE *f,
                                  const unsigned char *ids, int h, int w, const png_color *pal,
                                  int n_pal, png_text *text)
{
    if (setjmp(png_jmpbuf(png)))
        return false;
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_PALETTE,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_PLTE(png, info, pal, n_pal);
    png_set_text(png, info, text, 1);
    png_write_info(png, info);
    for (int y = 0; y < h; y++)
        png_write_row(png, ids + (size_t)y * w);
    png_write_end(png, info);
    return true;
}

/* 8-bit palette PNG of class ids, with a tEXt "classes" chunk: "0 name\n1 name\n...". */
static lr_status write_label_png(lr_ctx *ctx, FILE *f, const seg_net *net,
                                 const unsigned char *ids, int h, int w)
{
    const int n = net->classes == 1 ? 2 : net->classes;
    const unsigned char *rgb = net->classes == 1 ? binary_palette : net->palette;
    png_color pal[256];
    size_t text_size = 1;
    for (int i = 0; i < n; i++) {
        /* Without a palette: a fixed spread of hues (id * golden ratio), id 0 black. */
        pal[i].red = rgb ? rgb[3 * i] : i ? (png_byte)(i * 97 % 256) : 0;
        pal[i].green = rgb ? rgb[3 * i + 1] : i ? (png_byte)(i * 157 % 256) : 0;
        pal[i].blue = rgb ? rgb[3 * i + 2] : i ? (png_byte)(i * 211 % 256) : 0;
        const char *name = net->classes == 1 ? binary_names[i]
                         : net->class_names ? net->class_names[i] : NULL;
        text_size += 16 + (name ? strlen(name) : 0);
    }
    char *names = malloc(text_size);
    if (!names)
        return lr_fail(ctx, LR_ERR_NOMEM, "out of memory");
    size_t used = 0;
    for (int i = 0; i < n; i++) {
        const char *name = net->classes == 1 ? binary_names[i]
                         : net->class_names ? net->class_names[i] : NULL;
        if (name)
            used += (size_t)snprintf(names + used, text_size - used, "%d %s\n", i, name);
        else
            used += (size_t)snprintf(names + used, text_size - used, "%d class%d\n", i, i);
    }
    png_text text = {.compression = PNG_TEXT_COMPRESSION_NONE, .key = "classes",
                     .text = names, .text_length = used};
    png_error_text err = {{0}};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &err, on_png_error,
                                              on_png_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    lr_status s = LR_OK;
    if (!info)
        s = lr_fail(ctx, LR_ERR_NOMEM, "out of memory for the PNG writer");
    else if (!write_palette_guarded(png, info, f, ids, h, w, pal, n, &text))
        s = lr_fail(ctx, LR_ERR_IO, "cannot write the PNG: %s", err.msg);
    png_destroy_write_struct(&png, &info);
    free(names);
    return s;
}

/* Writes the result in the chosen format. */
static lr_status write_result(const runner *r, const seg_net *net, const image *img,
                              const seg_result *res, FILE *f)
{
    lr_ctx *ctx = r->ctx;
    const int H = res->height, W = res->width, C = res->classes;
    const int64_t n = (int64_t)H * W;
    const float t = (float)r->opt->threshold;
    if (r->format == FMT_NPY) {
        /* [h][w] for one class, [classes][h][w] for more. */
        const bool raw = r->opt->logits;
        const int shape[3] = {C, raw ? res->out_h : H, raw ? res->out_w : W};
        batch_write_npy_header(f, C == 1 ? 2 : 3, C == 1 ? shape + 1 : shape);
        fwrite(raw ? res->logits : res->prob, sizeof(float),
               (size_t)C * shape[1] * shape[2], f);
        return LR_OK;
    }
    if (r->format == FMT_LABEL) {
        unsigned char *ids = malloc((size_t)n);
        if (!ids)
            return lr_fail(ctx, LR_ERR_NOMEM, "out of memory for a %dx%d label map", W, H);
        for (int64_t i = 0; i < n; i++)
            ids[i] = label_at(res, i, t);
        lr_status s = write_label_png(ctx, f, net, ids, H, W);
        free(ids);
        return s;
    }
    const bool has_alpha = img->channels == 2 || img->channels == 4;
    const int colours = has_alpha ? img->channels - 1 : img->channels;
    image out;
    int channels = 1, depth = 8;
    switch (r->format) {
    case FMT_PROB: depth = img->bit_depth; break;
    case FMT_CUTOUT: channels = colours + 1; depth = img->bit_depth; break;
    case FMT_OVERLAY: channels = 3; break;
    default: break;
    }
    lr_status s = image_alloc(ctx, &out, W, H, channels, depth);
    if (s != LR_OK)
        return s;
    if (r->format == FMT_CUTOUT || r->format == FMT_OVERLAY)
        s = image_copy_chunks(ctx, &out, img); /* the colours are the input's */
    float *o = out.pixels;
    const float *alpha_in = has_alpha ? img->pixels + (int64_t)colours * n : NULL;
    switch (r->format) {
    case FMT_MASK:
        for (int64_t i = 0; i < n; i++)
            o[i] = label_at(res, i, t) != 0;
        break;
    case FMT_PROB:
        for (int64_t i = 0; i < n; i++)
            o[i] = foreground_at(res, i);
        break;
    case FMT_CUTOUT:
        memcpy(o, img->pixels, (size_t)(colours * n) * sizeof *o);
        for (int64_t i = 0; i < n; i++) {
            float a = r->opt->threshold_given ? (float)(label_at(res, i, t) != 0)
                                              : foreground_at(res, i);
            o[colours * n + i] = alpha_in ? a * alpha_in[i] : a;
        }
        break;
    case FMT_OVERLAY: {
        const unsigned char *pal = net->classes == 1 ? binary_palette : net->palette;
        unsigned char *ids = malloc((size_t)n);
        if (!ids) {
            s = lr_fail(ctx, LR_ERR_NOMEM, "out of memory for a %dx%d label map", W, H);
            break;
        }
        for (int64_t i = 0; i < n; i++)
            ids[i] = label_at(res, i, t);
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                const int64_t i = (int64_t)y * W + x;
                /* A contour where a 4-neighbour has another id: both sides of the border get
                 * it, a line of 2 pixels, in the colour of the foreground side. */
                int other = ids[i];
                if (x > 0 && ids[i - 1] != ids[i])
                    other = ids[i - 1];
                else if (x + 1 < W && ids[i + 1] != ids[i])
                    other = ids[i + 1];
                else if (y > 0 && ids[i - W] != ids[i])
                    other = ids[i - W];
                else if (y + 1 < H && ids[i + W] != ids[i])
                    other = ids[i + W];
                const int id = ids[i] ? ids[i] : other;
                for (int c = 0; c < 3; c++) {
                    float v = img->pixels[(int64_t)(colours == 3 ? c : 0) * n + i];
                    float tint = pal ? pal[3 * id + c] / 255.0f
                                     : (float)((id * (c == 0 ? 97 : c == 1 ? 157 : 211)) % 256) / 255.0f;
                    if (other != ids[i])
                        v = tint;
                    else if (id)
                        v = 0.5f * v + 0.5f * tint;
                    o[c * n + i] = v;
                }
            }
        free(ids);
        break;
    }
    default:
        break;
    }
    if (s == LR_OK)
        s = image_write_png(ctx, f, &out);
    image_free(&out);
    return s;
}

/* ---- the batch ---- */

static const char *const stats_columns[] = {"name", "width", "height", "model", "coverage",
                                            "mean_prob", "ms"};

static void stats_row(runner *r, const char *path, const seg_net *net, const seg_result *res,
                      double ms)
{
    const int64_t n = (int64_t)res->height * res->width;
    int64_t on = 0;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        on += label_at(res, i, (float)r->opt->threshold) != 0;
        sum += foreground_at(res, i);
    }
    table_str(&r->stats, batch_input_name(path));
    table_int(&r->stats, res->width);
    table_int(&r->stats, res->height);
    table_str(&r->stats, net->name);
    char text[3][32];
    /* %.9g as the other tables print floats; the time to 0.1 ms. */
    snprintf(text[0], sizeof text[0], "%.9g", (double)on / (double)n);
    snprintf(text[1], sizeof text[1], "%.9g", sum / (double)n);
    snprintf(text[2], sizeof text[2], "%.1f", ms);
    for (int i = 0; i < 3; i++)
        table_str(&r->stats, text[i]);
    table_end_row(&r->stats);
    fflush(output_stream(r->stats_out));
}

/* One input. *fatal is set for a model problem (the same for every input). Returns an exit
 * status; failures are reported. */
static int segment_file(runner *r, const char *path, const char *out_path, bool write_image,
                        bool *fatal)
{
    *fatal = false;
    double t0 = lr_time_now();
    image img;
    int rc = batch_read_png(r->ctx, path, r->opt->max_pixels, &img);
    if (rc != CLI_EXIT_OK)
        return rc;
    seg_net *net;
    if ((rc = net_for(r, img.width, img.height, &net)) != CLI_EXIT_OK) {
        *fatal = true;
        image_free(&img);
        return rc;
    }
    seg_result res;
    lr_status s = segment(r->ctx, net, &img, r->opt, r->format == FMT_NPY, &res);
    if (s != LR_OK) {
        image_free(&img);
        return cli_report(r->ctx, s, batch_input_name(path));
    }
    output *o = NULL;
    if (write_image) {
        if ((rc = output_open(out_path, true, r->args->force, &o)) != CLI_EXIT_OK) {
            *fatal = rc != CLI_EXIT_DATA; /* binary to a terminal: the same for every input */
            goto done;
        }
        if ((s = write_result(r, net, &img, &res, output_stream(o))) != LR_OK) {
            output_abort(o);
            rc = cli_report(r->ctx, s, batch_input_name(path));
            goto done;
        }
        if ((rc = output_commit(o)) != CLI_EXIT_OK)
            goto done;
    }
    double ms = (lr_time_now() - t0) * 1e3;
    cli_info(batch_input_name(path), "%dx%d with %s (%dx%d) in %.1f ms", img.width, img.height,
             net->name, net->in_width, net->in_height, ms);
    if (r->opt->stats)
        stats_row(r, path, net, &res, ms);
done:
    result_free(&res);
    image_free(&img);
    return rc;
}

static int run_batch(runner *r, char **operands, int n_operands)
{
    /* --stats alone writes the table (to -o FILE or stdout); with -o DIR the images go there
     * and the table to stdout. */
    const char *out = r->args->output;
    const bool out_is_dir = out && *out && strcmp(out, "-") != 0 &&
                            (out[strlen(out) - 1] == '/' || batch_is_directory(out));
    const bool write_images = !r->opt->stats || out_is_dir;
    batch_plan plan;
    int rc = batch_plan_make(&plan, write_images ? out : NULL, operands, n_operands,
                             write_images);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (r->opt->stats) {
        if ((rc = output_open(out_is_dir ? NULL : out, false, false, &r->stats_out)) !=
            CLI_EXIT_OK)
            return rc;
        table_begin(&r->stats, output_stream(r->stats_out), FORMAT_TSV, stats_columns, 7);
    }
    const char *ext = r->format == FMT_NPY ? ".npy" : ".png";
    int status = CLI_EXIT_OK;
    for (int i = 0; i < plan.n_inputs; i++) {
        bool failed, fatal;
        char *target = write_images ? batch_target(&plan, plan.inputs[i], ext, &failed) : NULL;
        if (write_images && failed) {
            status = CLI_EXIT_DATA;
            continue;
        }
        rc = segment_file(r, plan.inputs[i], target, write_images, &fatal);
        free(target);
        if (rc != CLI_EXIT_OK) {
            status = rc;
            if (fatal)
                break;
        }
    }
    if (r->stats_out) {
        rc = output_commit(r->stats_out);
        r->stats_out = NULL;
        if (rc != CLI_EXIT_OK && status == CLI_EXIT_OK)
            status = rc;
    }
    return status;
}

/* ---- main ---- */

int main(int argc, char **argv)
{
    seg_options opt = {.threshold = 0.5, .max_pixels = DEFAULT_MAX_PIXELS,
                       .size = DEFAULT_SHORT_SIDE};
    const cli_option options[] = {
        {"threshold", 't', "T", "probability above which a pixel is foreground (default 0.5; "
         "with cutout: a hard alpha)", set_threshold},
        {"fit", 0, "MODE", "stretch (default, as MediaPipe) or letterbox: how the image meets "
         "the network's input size", set_fit},
        {"stats", 0, NULL, "a TSV line per file (name, width, height, model, coverage, "
         "mean_prob, ms) instead of the images (with -o DIR: besides them, on stdout)",
         set_stats},
        {"logits", 0, NULL, "with -f npy: the raw logits at the network's output size",
         set_logits},
        {"size", 0, "N", "networks of any input size (VAN, DiNAT) see the image with its short "
         "side resized to N pixels (default 512)", set_size},
        {"tile", 0, "N", "networks of any input size: sliding-window inference on N x N "
         "windows of the resized image, logits averaged where they overlap", set_tile},
        {"overlap", 0, "P", "with --tile: pixels shared by neighbouring windows (default N/3)",
         set_overlap},
        {"max-pixels", 0, "N", "refuse images of more pixels (default 50M; 0: no limit)",
         set_max_pixels},
        {NULL, 0, NULL, NULL, NULL},
    };
    const cli_program program = {
        .name = "seg-run",
        .synopsis = "[OPTIONS] [FILE|-]...",
        .description = "Segment PNG images: by default (-m auto) a person mask with the "
                       "MediaPipe selfie model, its landscape version for wide images.",
        .formats = formats,
        .omit = CLI_OMIT_SEED | CLI_OMIT_PROGRESS,
        .options = options,
        .user = &opt,
    };
    cli_args args;
    int rc = cli_parse(&program, argc, argv, &args);
    if (rc != CLI_PROCEED)
        return rc;
    runner r = {.args = &args, .opt = &opt};
    for (int i = 0; formats[i]; i++)
        if (strcmp(args.format, formats[i]) == 0)
            r.format = (seg_format)i;
    if (opt.logits && r.format != FMT_NPY)
        return cli_usage_error("option --logits: only with -f npy");
    if (opt.overlap_given && !opt.tile)
        return cli_usage_error("option --overlap: only with --tile");
    if (opt.tile && !opt.overlap_given)
        opt.overlap = opt.tile / 3;
    if (opt.tile && opt.overlap >= opt.tile)
        return cli_usage_error("option --overlap: %d is not smaller than the tile (%d)",
                               opt.overlap, opt.tile);
    if ((rc = cli_context(&args, &r.ctx)) != CLI_EXIT_OK)
        return rc;
    r.automatic = !args.model || strcmp(args.model, "auto") == 0;
    if (args.dump_model) {
        lr_model *file = NULL;
        if ((rc = cli_open_model(r.ctx, r.automatic ? "selfie" : args.model, &file)) ==
            CLI_EXIT_OK)
            rc = cli_dump_model(&args, file);
        lr_model_close(file);
    } else if (r.automatic || (rc = open_net(&r, 0, args.model)) == CLI_EXIT_OK) {
        rc = run_batch(&r, args.operands, args.n_operands);
    }
    for (int i = 0; i < 2; i++) {
        seg_net_close(r.nets[i]);
        lr_model_close(r.files[i]);
    }
    lr_ctx_destroy(r.ctx);
    return rc;
}
