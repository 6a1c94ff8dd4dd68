/* sr-run: super-resolution of PNG images, and the PSNR/SSIM evaluation of a model against
 * bicubic. See sr-run(1).
 *
 * Each input is read whole (as floats), then upscaled tile by tile; the result goes out in
 * bands of rows through the streaming PNG writer, so only one band of output rows is ever in
 * memory (upscale.h). A failing input is reported and the others are still done. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "cli.h"
#include "embed.h"
#include "image.h"
#include "longrange/resize.h"
#include "metrics.h"
#include "models.h"
#include "output.h"
#include "upscale.h"
#include "writers.h"

/* --tile default: 128 input pixels. The overlap costs more network work than big tiles do
 * (a context of 10 pixels: 34%), but a tile's feature maps then stay in the cache and every
 * tile reuses the same memory, where a big tile faults in fresh pages for maps of tens of MB:
 * on a 512x512 input with 2 threads, fsrcnn-x2 takes 0.29 s with 128-pixel tiles against
 * 0.49 s with 512, espcn-x2 0.33 against 0.61, esrgan-slim-x2 0.91 against 1.00 (256x256 x4:
 * esrgan-slim-x4 0.36 against 0.48, animevideov3 0.80 against 0.79). Memory stays bounded by
 * the tile and one band of output rows: on a 4000x3000 input with fsrcnn-x2, 241 MB at
 * --tile 256, 342 MB at 512, 4.2 GB untiled. */
enum { DEFAULT_TILE = 128, PAD_FOR_WHOLE_IMAGE_NETS = 16, MAX_SCALE = 16 };
#define DEFAULT_MAX_PIXELS 100000000u

/* The model without -m, by -s (default 2). */
static const struct {
    int scale;
    const char *model;
} default_models[] = {
    {2, "fsrcnn-x2"},
    {4, "esrgan-slim-x4"},
};
enum { DEFAULT_SCALE = 2 };

/* Short names for built-in models. */
static const struct {
    const char *alias, *model;
} model_aliases[] = {
    {"anime", "realesr-animevideov3-x4"},
};

typedef struct {
    int scale;      /* -s; 0 when not given */
    int tile;       /* --tile; -1: the default for the network */
    int pad;        /* --tile-pad; -1: the network's context */
    uint64_t max_pixels;
} sr_options;

/* ---- options ---- */

static bool set_scale(const cli_option *o, const char *arg, void *user)
{
    int64_t v;
    if (!cli_option_int(o, arg, 1, MAX_SCALE, &v))
        return false;
    ((sr_options *)user)->scale = (int)v;
    return true;
}

static bool set_tile(const cli_option *o, const char *arg, void *user)
{
    int64_t v;
    if (!cli_option_int(o, arg, 0, 1 << 20, &v))
        return false;
    ((sr_options *)user)->tile = (int)v;
    return true;
}

static bool set_tile_pad(const cli_option *o, const char *arg, void *user)
{
    int64_t v;
    if (!cli_option_int(o, arg, 0, 1 << 16, &v))
        return false;
    ((sr_options *)user)->pad = (int)v;
    return true;
}

static bool set_max_pixels(const cli_option *o, const char *arg, void *user)
{
    return cli_option_count(o, arg, 0, (uint64_t)1 << 62, &((sr_options *)user)->max_pixels);
}

/* ---- upscaling ---- */

typedef struct {
    lr_ctx *ctx;
    const cli_args *args;
    const sr_options *opt;
    sr_tiling tiling;
    bool npy;
} runner;

static lr_status png_rows(lr_ctx *ctx, void *user, const float *planes, int rows)
{
    return image_png_writer_rows(ctx, user, planes, rows);
}

/* Upscales the image into an open output. */
static lr_status write_result(runner *r, const image *img, FILE *f)
{
    lr_ctx *ctx = r->ctx;
    const int s = r->tiling.net->scale;
    const int64_t hs = (int64_t)img->height * s, ws = (int64_t)img->width * s;
    if (hs > INT32_MAX || ws > INT32_MAX)
        return lr_fail(ctx, LR_ERR_DATA, "a %dx%d image upscaled %d times is too large",
                       img->width, img->height, s);
    if (r->npy) {
        /* The NPY array is channel-major: all of a channel before the next, so the result is
         * held whole. */
        const int64_t n = (int64_t)img->channels * hs * ws;
        sr_full_output full = {.channels = img->channels, .height = (int)hs, .width = (int)ws};
        if ((uint64_t)n > SIZE_MAX / sizeof(float) ||
            !(full.planes = malloc((size_t)n * sizeof(float))))
            return lr_fail(ctx, LR_ERR_NOMEM, "out of memory for the %lldx%lld result",
                           (long long)ws, (long long)hs);
        lr_status st = sr_upscale(ctx, &r->tiling, img, sr_full_output_rows, &full);
        if (st == LR_OK) {
            batch_write_npy_header(f, 3, (int[]){img->channels, (int)hs, (int)ws});
            fwrite(full.planes, sizeof(float), (size_t)n, f);
        }
        free(full.planes);
        return st;
    }
    image like = {.width = (int)ws, .height = (int)hs, .channels = img->channels,
                  .bit_depth = img->bit_depth};
    image_png_writer *w = NULL;
    lr_status st = image_copy_chunks(ctx, &like, img);
    if (st == LR_OK)
        st = image_png_writer_open(ctx, f, &like, &w);
    if (st == LR_OK)
        st = sr_upscale(ctx, &r->tiling, img, png_rows, w);
    if (st == LR_OK)
        st = image_png_writer_finish(ctx, w);
    image_png_writer_free(w);
    image_free(&like);
    return st;
}

/* One input to one output (NULL: stdout). Returns an exit status; failures are reported. */
static int upscale_file(runner *r, const char *path, const char *out_path)
{
    image img;
    int rc = batch_read_png(r->ctx, path, r->opt->max_pixels, &img);
    if (rc != CLI_EXIT_OK)
        return rc;
    output *o;
    if ((rc = output_open(out_path, true, r->args->force, &o)) != CLI_EXIT_OK) {
        image_free(&img);
        return rc;
    }
    double t0 = lr_time_now();
    lr_status st = write_result(r, &img, output_stream(o));
    if (st != LR_OK) {
        output_abort(o);
        cli_report(r->ctx, st, batch_input_name(path));
        image_free(&img);
        return CLI_EXIT_DATA;
    }
    cli_info(batch_input_name(path), "%dx%d -> %dx%d (%s) in %.3f s, peak memory %.0f MB", img.width,
             img.height, img.width * r->tiling.net->scale, img.height * r->tiling.net->scale,
             r->tiling.net->name, lr_time_now() - t0, (double)lr_peak_rss() / 1e6);
    image_free(&img);
    return output_commit(o);
}

static int run_upscale(runner *r, char **inputs, int n_inputs)
{
    batch_plan plan;
    int rc = batch_plan_make(&plan, r->args->output, inputs, n_inputs, true);
    if (rc != CLI_EXIT_OK)
        return rc;
    int status = CLI_EXIT_OK;
    for (int i = 0; i < plan.n_inputs; i++) {
        bool failed;
        char *target = batch_target(&plan, plan.inputs[i], r->npy ? ".npy" : ".png", &failed);
        if (failed) {
            status = CLI_EXIT_DATA;
            continue;
        }
        rc = upscale_file(r, plan.inputs[i], target);
        free(target);
        if (rc != CLI_EXIT_OK) {
            status = rc;
            if (rc != CLI_EXIT_DATA)
                break; /* usage (binary to a terminal): the same for every input */
        }
    }
    return status;
}

/* ---- eval and compare ---- */

/* The top-left h x w of img as R, G, B planes (grey replicated, alpha dropped). */
static float *rgb_crop(const image *img, int h, int w)
{
    float *rgb = malloc((size_t)3 * (size_t)h * (size_t)w * sizeof *rgb);
    if (!rgb)
        return NULL;
    const int64_t plane = (int64_t)img->height * img->width;
    for (int c = 0; c < 3; c++) {
        const float *src = img->pixels + (img->channels >= 3 ? c : 0) * plane;
        for (int y = 0; y < h; y++)
            memcpy(rgb + ((int64_t)c * h + y) * w, src + (int64_t)y * img->width,
                   (size_t)w * sizeof *rgb);
    }
    return rgb;
}

/* Studio-range luma * 255 of R, G, B planes of n values, into y. */
static void luma255(const float *rgb, int64_t n, float *y)
{
    image_luma_studio(rgb, rgb + n, rgb + 2 * n, y, n);
    for (int64_t i = 0; i < n; i++)
        y[i] *= 255.0f;
}

static void quantise8(float *v, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        float x = v[i] < 0.0f ? 0.0f : v[i] > 1.0f ? 1.0f : v[i];
        v[i] = roundf(x * 255.0f) / 255.0f;
    }
}

typedef struct {
    double psnr_bicubic, psnr_model, ssim_bicubic, ssim_model;
} eval_scores;

/* Runs a network on 8-bit R, G, B planes and quantises its result to 8 bits. */
static lr_status upscale_rgb(lr_ctx *ctx, const sr_tiling *t, float *lr, int h, int w,
                             float *out)
{
    image in = {.width = w, .height = h, .channels = 3, .bit_depth = 8, .pixels = lr};
    const int s = t->net->scale;
    sr_full_output full = {.planes = out, .channels = 3, .height = h * s, .width = w * s};
    lr_status st = sr_upscale(ctx, t, &in, sr_full_output_rows, &full);
    if (st == LR_OK)
        quantise8(out, (int64_t)3 * h * s * w * s);
    return st;
}

static int eval_image(runner *r, const sr_tiling *bicubic, const char *path, eval_scores *sc)
{
    lr_ctx *ctx = r->ctx;
    image img;
    int rc = batch_read_png(ctx, path, r->opt->max_pixels, &img);
    if (rc != CLI_EXIT_OK)
        return rc;
    const int s = r->tiling.net->scale;
    const int H = img.height - img.height % s, W = img.width - img.width % s;
    const int h = H / s, w = W / s;
    if (H - 2 * s < 11 || W - 2 * s < 11) {
        cli_error(batch_input_name(path), "%dx%d is too small to evaluate at x%d (SSIM needs 11x11 "
                  "pixels after a border of %d)", img.width, img.height, s, s);
        image_free(&img);
        return CLI_EXIT_DATA;
    }
    const int64_t n = (int64_t)H * W;
    float *hr = rgb_crop(&img, H, W);
    float *lr = malloc((size_t)3 * (size_t)h * (size_t)w * sizeof *lr);
    float *sr_model = malloc((size_t)(3 * n) * sizeof *sr_model);
    float *sr_bicubic = malloc((size_t)(3 * n) * sizeof *sr_bicubic);
    float *y = malloc((size_t)(3 * n) * sizeof *y);
    image_free(&img);
    lr_status st = LR_OK;
    if (!hr || !lr || !sr_model || !sr_bicubic || !y)
        st = lr_fail(ctx, LR_ERR_NOMEM, "out of memory for a %dx%d image", W, H);
    /* The low-resolution input as the literature makes it: antialiased bicubic (PIL, MATLAB
     * imresize), saved as 8 bits. */
    const lr_resize_desc down = {LR_RESIZE_BICUBIC, -0.5, true};
    if (st == LR_OK)
        st = lr_resize(ctx, &down, hr, 3, H, W, lr, h, w);
    if (st == LR_OK) {
        quantise8(lr, (int64_t)3 * h * w);
        st = upscale_rgb(ctx, &r->tiling, lr, h, w, sr_model);
    }
    if (st == LR_OK)
        st = upscale_rgb(ctx, bicubic, lr, h, w, sr_bicubic);
    if (st == LR_OK) {
        luma255(hr, n, y);
        luma255(sr_model, n, y + n);
        luma255(sr_bicubic, n, y + 2 * n);
        sc->psnr_model = sr_psnr(y + n, y, H, W, s);
        sc->psnr_bicubic = sr_psnr(y + 2 * n, y, H, W, s);
        sc->ssim_model = sr_ssim(y + n, y, H, W, s);
        sc->ssim_bicubic = sr_ssim(y + 2 * n, y, H, W, s);
        if (isnan(sc->ssim_model) || isnan(sc->ssim_bicubic))
            st = lr_fail(ctx, LR_ERR_NOMEM, "out of memory for SSIM");
    }
    free(hr);
    free(lr);
    free(sr_model);
    free(sr_bicubic);
    free(y);
    if (st != LR_OK) {
        cli_report(ctx, st, batch_input_name(path));
        return CLI_EXIT_DATA;
    }
    return CLI_EXIT_OK;
}

static void eval_row(table_writer *t, const char *name, const eval_scores *sc)
{
    table_str(t, name);
    table_f32(t, (float)sc->psnr_bicubic);
    table_f32(t, (float)sc->psnr_model);
    table_f32(t, (float)(sc->psnr_model - sc->psnr_bicubic));
    table_f32(t, (float)sc->ssim_bicubic);
    table_f32(t, (float)sc->ssim_model);
    table_end_row(t);
}

static int run_eval(runner *r, char **images, int n_images)
{
    if (n_images == 0)
        return cli_usage_error("eval needs one or more images");
    sr_net *bicubic_net;
    lr_status st = bicubic_net_create(r->ctx, r->tiling.net->scale, &bicubic_net);
    if (st != LR_OK)
        return cli_report(r->ctx, st, NULL);
    sr_tiling bicubic = {bicubic_net, r->tiling.tile, r->tiling.pad};
    output *o;
    int rc = output_open(r->args->output, false, false, &o);
    if (rc != CLI_EXIT_OK) {
        sr_net_close(bicubic_net);
        return rc;
    }
    static const char *const columns[] = {"image", "psnr_bicubic", "psnr_model", "gain_db",
                                          "ssim_bicubic", "ssim_model"};
    table_writer t;
    table_begin(&t, output_stream(o), FORMAT_TSV, columns, 6);
    eval_scores sum = {0, 0, 0, 0};
    int done = 0, status = CLI_EXIT_OK;
    for (int i = 0; i < n_images; i++) {
        eval_scores sc;
        if ((rc = eval_image(r, &bicubic, images[i], &sc)) != CLI_EXIT_OK) {
            status = rc;
            continue;
        }
        eval_row(&t, images[i], &sc);
        fflush(output_stream(o)); /* a row as soon as it is known: eval can take a while */
        sum.psnr_bicubic += sc.psnr_bicubic;
        sum.psnr_model += sc.psnr_model;
        sum.ssim_bicubic += sc.ssim_bicubic;
        sum.ssim_model += sc.ssim_model;
        done++;
    }
    if (done) {
        eval_scores mean = {sum.psnr_bicubic / done, sum.psnr_model / done,
                            sum.ssim_bicubic / done, sum.ssim_model / done};
        eval_row(&t, "mean", &mean);
    }
    sr_net_close(bicubic_net);
    rc = output_commit(o);
    return rc != CLI_EXIT_OK ? rc : status;
}

/* compare IMAGE REFERENCE: PSNR and SSIM on the studio-range luma, no border crop. */
static int run_compare(lr_ctx *ctx, const cli_args *args, const sr_options *opt, char **files,
                       int n_files)
{
    if (n_files != 2)
        return cli_usage_error("compare needs two images: IMAGE REFERENCE");
    image a, b;
    int rc = batch_read_png(ctx, files[0], opt->max_pixels, &a);
    if (rc != CLI_EXIT_OK)
        return rc;
    if ((rc = batch_read_png(ctx, files[1], opt->max_pixels, &b)) != CLI_EXIT_OK) {
        image_free(&a);
        return rc;
    }
    if (a.width != b.width || a.height != b.height) {
        cli_error(NULL, "%s is %dx%d but %s is %dx%d", batch_input_name(files[0]), a.width, a.height,
                  batch_input_name(files[1]), b.width, b.height);
        image_free(&a);
        image_free(&b);
        return CLI_EXIT_DATA;
    }
    const int H = a.height, W = a.width;
    const int64_t n = (int64_t)H * W;
    float *ra = rgb_crop(&a, H, W), *rb = rgb_crop(&b, H, W);
    float *y = malloc((size_t)(2 * n) * sizeof *y);
    image_free(&a);
    image_free(&b);
    rc = CLI_EXIT_DATA;
    if (!ra || !rb || !y) {
        cli_error(NULL, "out of memory for two %dx%d images", W, H);
    } else {
        luma255(ra, n, y);
        luma255(rb, n, y + n);
        output *o;
        if ((rc = output_open(args->output, false, false, &o)) == CLI_EXIT_OK) {
            static const char *const columns[] = {"image", "reference", "psnr", "ssim"};
            table_writer t;
            table_begin(&t, output_stream(o), FORMAT_TSV, columns, 4);
            table_str(&t, files[0]);
            table_str(&t, files[1]);
            table_f32(&t, (float)sr_psnr(y, y + n, H, W, 0));
            table_f32(&t, (float)sr_ssim(y, y + n, H, W, 0)); /* NaN below 11x11 */
            table_end_row(&t);
            rc = output_commit(o);
        }
    }
    free(ra);
    free(rb);
    free(y);
    return rc;
}

/* ---- main ---- */

static const char *model_for(const cli_args *args, const sr_options *opt)
{
    if (args->model) {
        for (size_t i = 0; i < sizeof model_aliases / sizeof model_aliases[0]; i++)
            if (strcmp(args->model, model_aliases[i].alias) == 0)
                return model_aliases[i].model;
        return args->model;
    }
    int scale = opt->scale ? opt->scale : DEFAULT_SCALE;
    for (size_t i = 0; i < sizeof default_models / sizeof default_models[0]; i++)
        if (default_models[i].scale == scale)
            return default_models[i].model;
    return NULL;
}

static bool is_built_in(const char *name)
{
    for (const cli_embedded_model *m = lr_embedded_models; m->name; m++)
        if (strcmp(m->name, name) == 0)
            return true;
    return false;
}

int main(int argc, char **argv)
{
    static const char *const formats[] = {"png", "npy", NULL};
    sr_options opt = {.tile = -1, .pad = -1, .max_pixels = DEFAULT_MAX_PIXELS};
    const cli_option options[] = {
        {"scale", 's', "N", "upscaling factor: picks the default model (2: fsrcnn-x2, the "
         "default; 4: esrgan-slim-x4), or must be the -m model's", set_scale},
        {"tile", 0, "N", "run the network on tiles of N x N input pixels (default 128, or 0 for "
         "networks that see the whole image; 0: the whole image at once)", set_tile},
        {"tile-pad", 0, "P", "pixels of context around each tile (default: the network's)",
         set_tile_pad},
        {"max-pixels", 0, "N", "refuse images of more pixels (default 100M; 0: no limit)",
         set_max_pixels},
        {NULL, 0, NULL, NULL, NULL},
    };
    const cli_program program = {
        .name = "sr-run",
        .synopsis = "[OPTIONS] [FILE|-]...\n       sr-run eval [OPTIONS] IMAGE...\n"
                    "       sr-run compare IMAGE REFERENCE",
        .description = "Upscale PNG images with a super-resolution model; eval measures a model "
                       "against bicubic (PSNR/SSIM).",
        .formats = formats,
        .omit = CLI_OMIT_SEED | CLI_OMIT_PROGRESS,
        .options = options,
        .user = &opt,
    };
    cli_args args;
    int rc = cli_parse(&program, argc, argv, &args);
    if (rc != CLI_PROCEED)
        return rc;
    char **operands = args.operands;
    int n_operands = args.n_operands;
    enum { MODE_RUN, MODE_EVAL, MODE_COMPARE } mode = MODE_RUN;
    if (n_operands && strcmp(operands[0], "eval") == 0)
        mode = MODE_EVAL;
    else if (n_operands && strcmp(operands[0], "compare") == 0)
        mode = MODE_COMPARE;
    if (mode != MODE_RUN) {
        operands++;
        n_operands--;
    }

    lr_ctx *ctx = NULL;
    if ((rc = cli_context(&args, &ctx)) != CLI_EXIT_OK)
        return rc;
    if (mode == MODE_COMPARE) {
        rc = run_compare(ctx, &args, &opt, operands, n_operands);
        lr_ctx_destroy(ctx);
        return rc;
    }
    const char *spec = model_for(&args, &opt);
    if (!spec) {
        lr_ctx_destroy(ctx);
        return cli_usage_error("option -s: no built-in model upscales %d times (use -m)",
                               opt.scale);
    }
    lr_model *file = NULL;
    sr_net *net = NULL;
    if (!args.model && !is_built_in(spec)) {
        cli_error(NULL, "the default model for x%d, %s, is not built into this sr-run (use -m)",
                  opt.scale ? opt.scale : DEFAULT_SCALE, spec);
        rc = CLI_EXIT_MODEL;
        goto done;
    }
    if ((rc = cli_open_model(ctx, spec, &file)) != CLI_EXIT_OK)
        goto done;
    if (args.dump_model) {
        rc = cli_dump_model(&args, file);
        goto done;
    }
    lr_status s = sr_net_open(ctx, file, &net);
    if (s != LR_OK) {
        rc = cli_report(ctx, s, NULL);
        goto done;
    }
    if (opt.scale && opt.scale != net->scale) {
        rc = cli_usage_error("option -s %d: model %s upscales %d times", opt.scale, net->name,
                             net->scale);
        goto done;
    }
    runner r = {.ctx = ctx, .args = &args, .opt = &opt, .npy = strcmp(args.format, "npy") == 0};
    r.tiling.net = net;
    /* A network that looks at the whole image (CATANet) runs untiled unless asked: tiles
     * would change its result. */
    r.tiling.tile = opt.tile >= 0 ? opt.tile : net->context >= 0 ? DEFAULT_TILE : 0;
    r.tiling.pad = opt.pad >= 0 ? opt.pad
                 : net->context >= 0 ? net->context : PAD_FOR_WHOLE_IMAGE_NETS;
    if (opt.tile > 0 && net->context < 0)
        cli_info(NULL, "%s sees the whole image: tiles of %d give an approximate result",
                 net->name, opt.tile);
    if (mode == MODE_EVAL)
        rc = r.npy ? cli_usage_error("eval writes a table: no -f npy")
                   : run_eval(&r, operands, n_operands);
    else
        rc = run_upscale(&r, operands, n_operands);
done:
    sr_net_close(net);
    lr_model_close(file);
    lr_ctx_destroy(ctx);
    return rc;
}
