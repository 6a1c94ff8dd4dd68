/* PNG images (cmd/common/image.h): every colour type and bit depth of tests/fixtures/png
 * (tools/make_png_fixtures.py; values from the formula both share) read exactly, from a FILE
 * and from memory, and written back and read again unchanged; Adam7; tRNS as alpha; colour
 * chunks kept through read -> write -> read; the row-streaming writer against image_write_png;
 * clamping and rounding; hostile input (empty, not a PNG, truncation at every byte, CRC errors,
 * bad IHDR, pixel limit before allocation, corrupt zlib, unknown critical chunk) rejected with
 * the right status and a one-line message and nothing on stderr; garbage after IEND and an
 * ancillary chunk with a bad CRC accepted; write errors; the colour conversions. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "capture.h"
#include "check.h"
#include "image.h"
#include "kernel_test.h"
#include "longrange/core.h"

enum { GREY = 0, RGB = 2, PALETTE = 3, GREY_ALPHA = 4, RGBA = 6 };

typedef struct {
    const char *name;
    int type, depth, width, height;
    bool interlaced, trns;
} fixture;

/* The table of tools/make_png_fixtures.py. */
static const fixture FIXTURES[] = {
    {"grey1", GREY, 1, 13, 5, false, false},
    {"grey2", GREY, 2, 9, 4, false, false},
    {"grey4", GREY, 4, 7, 3, false, false},
    {"grey8", GREY, 8, 6, 5, false, false},
    {"grey16", GREY, 16, 5, 4, false, false},
    {"rgb8", RGB, 8, 7, 6, false, false},
    {"rgb16", RGB, 16, 5, 3, false, false},
    {"rgba8", RGBA, 8, 6, 4, false, false},
    {"rgba16", RGBA, 16, 4, 5, false, false},
    {"ga8", GREY_ALPHA, 8, 5, 5, false, false},
    {"ga16", GREY_ALPHA, 16, 3, 4, false, false},
    {"pal4", PALETTE, 4, 9, 4, false, false},
    {"pal8_trns", PALETTE, 8, 8, 5, false, true},
    {"pal2_trns", PALETTE, 2, 5, 3, false, true},
    {"grey8_trns", GREY, 8, 6, 4, false, true},
    {"grey2_trns", GREY, 2, 7, 3, false, true},
    {"rgb8_trns", RGB, 8, 5, 4, false, true},
    {"rgb16_trns", RGB, 16, 4, 3, false, true},
    {"grey1_i", GREY, 1, 13, 11, true, false},
    {"rgb8_i", RGB, 8, 10, 9, true, false},
    {"rgba16_i", RGBA, 16, 5, 7, true, false},
    {"pal4_trns_i", PALETTE, 4, 11, 6, true, true},
    {"rgb8_i_1x1", RGB, 8, 1, 1, true, false},
    {"grey8_i_3x2", GREY, 8, 3, 2, true, false},
};
#define N_FIXTURES (sizeof FIXTURES / sizeof *FIXTURES)

static unsigned sample(int x, int y, int ch, int depth)
{
    if (ch == 0 && y == 0 && (x == 0 || x == 1))
        return x == 0 ? (1u << depth) - 1 : 0;
    return (unsigned)((7919LL * x + 104729LL * y + 31337LL * ch + 3) % (1LL << depth));
}

static int file_channels(int type) { return type == RGB ? 3 : type == GREY_ALPHA ? 2 : type == RGBA ? 4 : 1; }

static float unit(unsigned v, int depth) { return (float)((double)v / (double)((1u << depth) - 1)); }

/* The expected value of channel ch at (x, y) after reading, as a float. */
static float expected(const fixture *f, int x, int y, int ch)
{
    if (f->type == PALETTE) {
        int n = f->depth >= 4 ? 11 : 1 << f->depth;
        int i = (x + 3 * y) % n;
        int rgb[3] = {23 * i % 256, 57 * i % 256, 91 * i % 256};
        if (ch < 3)
            return unit((unsigned)rgb[ch], 8);
        return unit(i < (n < 7 ? n : 7) ? (unsigned)(29 * i % 256) : 255u, 8);
    }
    int fc = file_channels(f->type);
    /* grey below 8 bits is read as 8 bits; v / (2^d - 1) is the same number either way */
    if (ch < fc)
        return unit(sample(x, y, ch, f->depth), f->depth);
    bool keyed = true; /* the tRNS alpha channel */
    for (int c = 0; c < fc; c++)
        keyed = keyed && sample(x, y, c, f->depth) == sample(2, 0, c, f->depth);
    return keyed ? 0.0f : 1.0f;
}

static unsigned char *read_whole(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    unsigned char *buf = malloc(1 << 16);
    *size = fread(buf, 1, 1 << 16, f);
    fclose(f);
    return buf;
}

static lr_ctx *quiet_ctx(void)
{
    lr_ctx_params p = lr_ctx_default_params();
    p.n_threads = 1;
    lr_ctx *ctx = NULL;
    return lr_ctx_create(&ctx, &p) == LR_OK ? ctx : NULL;
}

/* Writes img into a memory buffer (freed by the caller). */
static unsigned char *write_memory(lr_ctx *ctx, const image *img, size_t *len, lr_status *s)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    *s = image_write_png(ctx, f, img);
    fclose(f);
    return (unsigned char *)buf;
}

static void check_values(const fixture *f, const image *img, const char *how)
{
    int channels = file_channels(f->type) == 1 && f->type == PALETTE ? 3 : file_channels(f->type);
    if (f->trns)
        channels++;
    CHECKF(img->width == f->width && img->height == f->height && img->channels == channels &&
               img->bit_depth == (f->depth == 16 ? 16 : 8),
           "%s (%s): got %dx%dx%d at %d bits", f->name, how, img->width, img->height,
           img->channels, img->bit_depth);
    if (img->width != f->width || img->height != f->height || img->channels != channels)
        return;
    int bad = 0;
    for (int ch = 0; ch < channels; ch++)
        for (int y = 0; y < f->height; y++)
            for (int x = 0; x < f->width; x++) {
                float got = img->pixels[((size_t)ch * f->height + y) * f->width + x];
                float want = expected(f, x, y, ch);
                if (got != want && bad++ < 3)
                    CHECKF(false, "%s (%s): ch %d (%d, %d): %.9g, want %.9g", f->name, how, ch, x, y,
                           got, want);
            }
}

static void test_fixtures_read_and_round_trip(void)
{
    lr_ctx *ctx = quiet_ctx();
    REQUIRE(ctx);
    for (size_t i = 0; i < N_FIXTURES; i++) {
        const fixture *f = &FIXTURES[i];
        char path[256];
        snprintf(path, sizeof path, "tests/fixtures/png/%s.png", f->name);
        FILE *in = fopen(path, "rb");
        CHECKF(in != NULL, "cannot open %s", path);
        if (!in)
            continue;
        image a, b, c;
        lr_status s = image_read_png(ctx, in, 0, &a);
        fclose(in);
        CHECKF(s == LR_OK, "%s: %s", f->name, lr_ctx_last_error(ctx));
        if (s != LR_OK)
            continue;
        check_values(f, &a, "file");
        size_t size = 0;
        unsigned char *data = read_whole(path, &size);
        s = image_read_png_memory(ctx, data, size, 0, &b);
        CHECKF(s == LR_OK, "%s (memory): %s", f->name, lr_ctx_last_error(ctx));
        if (s == LR_OK) {
            check_values(f, &b, "memory");
            image_free(&b);
        }
        free(data);
        /* written back (8 or 16 bits, never palette) and read again: the same values */
        size_t len;
        unsigned char *png = write_memory(ctx, &a, &len, &s);
        CHECKF(s == LR_OK, "%s (write): %s", f->name, lr_ctx_last_error(ctx));
        s = image_read_png_memory(ctx, png, len, 0, &c);
        CHECKF(s == LR_OK, "%s (reread): %s", f->name, lr_ctx_last_error(ctx));
        if (s == LR_OK) {
            check_values(f, &c, "written and read");
            image_free(&c);
        }
        free(png);
        image_free(&a);
    }
    lr_ctx_destroy(ctx);
}

static lr_status read_fixture(lr_ctx *ctx, const char *name, image *img)
{
    char path[256];
    snprintf(path, sizeof path, "tests/fixtures/png/%s.png", name);
    size_t size = 0;
    unsigned char *data = read_whole(path, &size);
    if (!data)
        return lr_fail(ctx, LR_ERR_IO, "cannot open %s", path);
    lr_status s = image_read_png_memory(ctx, data, size, 0, img);
    free(data);
    return s;
}

static void test_exact_extremes(void)
{
    lr_ctx *ctx = quiet_ctx();
    REQUIRE(ctx);
    static const char *const names[] = {"grey16", "grey4", "grey1", "rgb16", "grey2"};
    for (int i = 0; i < 5; i++) {
        image img;
        REQUIRE(read_fixture(ctx, names[i], &img) == LR_OK);
        CHECKF(img.pixels[0] == 1.0f && img.pixels[1] == 0.0f, "%s: %g %g", names[i],
               img.pixels[0], img.pixels[1]);
        image_free(&img);
    }
    /* 4-bit 5 -> 1/3 exactly as a float, 2-bit 1 -> 1/3 too */
    image img;
    REQUIRE(read_fixture(ctx, "grey4", &img) == LR_OK);
    CHECK(img.pixels[2] == (float)((double)sample(2, 0, 0, 4) / 15.0));
    image_free(&img);
    lr_ctx_destroy(ctx);
}

static void test_colour_chunks(void)
{
    lr_ctx *ctx = quiet_ctx();
    REQUIRE(ctx);
    image a, b, copy;
    REQUIRE(read_fixture(ctx, "colour_chunks", &a) == LR_OK);
    static const uint32_t chrm[8] = {31270, 32900, 64000, 33000, 30000, 60000, 15000, 6000};
    CHECK(a.has_gama && a.gama == 45455);
    CHECK(a.has_chrm && memcmp(a.chrm, chrm, sizeof chrm) == 0);
    CHECK(a.has_srgb && a.srgb_intent == 1);
    REQUIRE(a.iccp_name && strcmp(a.iccp_name, "fixture profile") == 0);
    REQUIRE(a.iccp_length == 300);
    int bad = 0;
    for (int i = 0; i < 300; i++)
        bad += a.iccp_profile[i] != (unsigned char)(i * 7 % 256);
    CHECK(bad == 0);
    lr_status s;
    size_t len;
    unsigned char *png = write_memory(ctx, &a, &len, &s);
    REQUIRE(s == LR_OK);
    REQUIRE(image_read_png_memory(ctx, png, len, 0, &b) == LR_OK);
    CHECK(b.has_gama && b.gama == a.gama);
    CHECK(b.has_chrm && memcmp(b.chrm, a.chrm, sizeof chrm) == 0);
    CHECK(b.has_srgb && b.srgb_intent == 1);
    CHECK(b.iccp_name && strcmp(b.iccp_name, a.iccp_name) == 0 && b.iccp_length == a.iccp_length &&
          memcmp(b.iccp_profile, a.iccp_profile, a.iccp_length) == 0);
    free(png);
    /* an image without chunks writes none; copying brings them over */
    REQUIRE(image_alloc(ctx, &copy, 2, 2, 3, 8) == LR_OK);
    CHECK(!copy.has_gama && !copy.has_chrm && !copy.has_srgb && !copy.iccp_name);
    REQUIRE(image_copy_chunks(ctx, &copy, &a) == LR_OK);
    image_free(&a);
    image_free(&b);
    CHECK(copy.has_gama && copy.gama == 45455 && copy.iccp_name && copy.iccp_length == 300 &&
          copy.iccp_profile[299] == (unsigned char)(299 * 7 % 256));
    png = write_memory(ctx, &copy, &len, &s);
    REQUIRE(s == LR_OK);
    REQUIRE(image_read_png_memory(ctx, png, len, 0, &b) == LR_OK);
    CHECK(b.has_chrm && b.has_srgb && b.iccp_length == 300);
    free(png);
    image_free(&b);
    image_free(&copy);
    /* a plain image: no chunks appear from nowhere (libpng would derive gAMA from sRGB) */
    REQUIRE(read_fixture(ctx, "rgb8", &a) == LR_OK);
    CHECK(!a.has_gama && !a.has_chrm && !a.has_srgb && !a.iccp_name);
    image_free(&a);
    lr_ctx_destroy(ctx);
}

static void test_tolerated_oddities(void)
{
    lr_ctx *ctx = quiet_ctx();
    REQUIRE(ctx);
    image img;
    const fixture grey = {"grey8-like", GREY, 8, 4, 4, false, false};
    capture err; /* libpng warns about the bad CRC: nothing may reach stderr */
    capture_begin(&err, 2);
    lr_status s = read_fixture(ctx, "after_iend", &img);
    CHECKF(s == LR_OK, "garbage after IEND: %s", lr_ctx_last_error(ctx));
    if (s == LR_OK) {
        check_values(&grey, &img, "after_iend");
        image_free(&img);
    }
    s = read_fixture(ctx, "bad_ancillary_crc", &img);
    CHECKF(s == LR_OK, "bad ancillary CRC: %s", lr_ctx_last_error(ctx));
    if (s == LR_OK) {
        check_values(&grey, &img, "bad_ancillary_crc");
        CHECK(!img.has_gama); /* the damaged chunk is dropped */
        image_free(&img);
    }
    const char *printed = capture_end(&err);
    CHECKF(printed[0] == 0, "stderr got: %.200s", printed);
    lr_ctx_destroy(ctx);
}

/* ---- hostile input ---------------------------------------------------------------------- */

/* Offset of the first chunk named `name` (its length field), or 0. */
static size_t find_chunk(const unsigned char *p, size_t n, const char *name)
{
    for (size_t at = 8; at + 12 <= n;) {
        uint32_t len = (uint32_t)p[at] << 24 | (uint32_t)p[at + 1] << 16 | (uint32_t)p[at + 2] << 8 | p[at + 3];
        if (memcmp(p + at + 4, name, 4) == 0)
            return at;
        at += 12 + (size_t)len;
    }
    return 0;
}

static void fix_crc(unsigned char *p, size_t at, size_t len)
{
    uint32_t crc = (uint32_t)crc32(0, p + at + 4, (uInt)(len + 4));
    unsigned char *c = p + at + 8 + len;
    c[0] = (unsigned char)(crc >> 24);
    c[1] = (unsigned char)(crc >> 16);
    c[2] = (unsigned char)(crc >> 8);
    c[3] = (unsigned char)crc;
}

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* Reads data expecting failure with status want and a message starting with prefix. */
static void expect_reject(lr_ctx *ctx, const void *data, size_t size, uint64_t max_pixels,
                          lr_status want, const char *prefix, const char *what)
{
    image img;
    memset(&img, 0x5a, sizeof img);
    lr_status s = image_read_png_memory(ctx, data, size, max_pixels, &img);
    const char *msg = lr_ctx_last_error(ctx);
    CHECKF(s == want && strncmp(msg, prefix, strlen(prefix)) == 0 && !strchr(msg, '\n'),
           "%s: status %d, message \"%s\"; want %d \"%s...\"", what, (int)s, msg, (int)want, prefix);
    CHECKF(img.pixels == NULL && img.iccp_name == NULL, "%s: image not left empty", what);
    if (s == LR_OK)
        image_free(&img);
}

static void test_rejects_hostile_input(void)
{
    lr_ctx *ctx = quiet_ctx();
    REQUIRE(ctx);
    size_t size = 0;
    unsigned char *good = read_whole("tests/fixtures/png/colour_chunks.png", &size);
    REQUIRE(good);
    unsigned char *p = malloc(size + 64);
    capture err;
    capture_begin(&err, 2);

    expect_reject(ctx, "", 0, 0, LR_ERR_DATA, "not a PNG file", "empty input");
    expect_reject(ctx, "GIF89a\1\0\1\0\0\0\0", 13, 0, LR_ERR_DATA, "not a PNG file", "a GIF");
    expect_reject(ctx, good, 5, 0, LR_ERR_DATA, "not a PNG file", "5 bytes of signature");
    /* truncated anywhere (IEND included) */
    int accepted = 0;
    for (size_t cut = 8; cut < size; cut++) {
        image img;
        lr_status s = image_read_png_memory(ctx, good, cut, 0, &img);
        if (s == LR_OK) {
            accepted++;
            image_free(&img);
        } else {
            CHECKF(s == LR_ERR_DATA && strncmp(lr_ctx_last_error(ctx), "truncated PNG (", 15) == 0,
                   "cut at %zu: %d %s", cut, (int)s, lr_ctx_last_error(ctx));
        }
    }
    CHECKF(accepted == 0, "%d truncated files accepted", accepted);
    size_t idat = find_chunk(good, size, "IDAT"), ihdr = find_chunk(good, size, "IHDR");
    REQUIRE(idat && ihdr == 8);
    expect_reject(ctx, good, idat + 20, 0, LR_ERR_DATA, "truncated PNG (IDAT)", "cut in IDAT");
    /* a flipped byte in IDAT, in IHDR: CRC errors */
    memcpy(p, good, size);
    p[idat + 8 + 5] ^= 0x10;
    expect_reject(ctx, p, size, 0, LR_ERR_DATA, "CRC error in chunk IDAT", "flipped IDAT byte");
    memcpy(p, good, size);
    p[ihdr + 8 + 9] ^= 0x01;
    expect_reject(ctx, p, size, 0, LR_ERR_DATA, "CRC error in chunk IHDR", "flipped IHDR byte");
    /* the same flip with the CRC made to match: zlib notices */
    memcpy(p, good, size);
    uint32_t idat_len = (uint32_t)p[idat] << 24 | (uint32_t)p[idat + 1] << 16 | (uint32_t)p[idat + 2] << 8 | p[idat + 3];
    p[idat + 8 + 1] ^= 0xff;
    fix_crc(p, idat, idat_len);
    expect_reject(ctx, p, size, 0, LR_ERR_DATA, "bad PNG: ", "corrupt zlib stream");
    /* IHDR: zero width, a bad depth for RGB, width past 2^31 - 1 */
    const struct {
        uint32_t w, h;
        int depth;
        const char *what;
    } headers[] = {{0, 4, 8, "zero width"}, {6, 0, 8, "zero height"}, {6, 4, 4, "RGB at 4 bits"},
                   {0x80000000u, 4, 8, "width 2^31"}};
    for (int i = 0; i < 4; i++) {
        memcpy(p, good, size);
        put32(p + 16, headers[i].w);
        put32(p + 20, headers[i].h);
        p[24] = (unsigned char)headers[i].depth;
        fix_crc(p, 8, 13);
        expect_reject(ctx, p, size, 0, LR_ERR_DATA, "bad PNG header: ", headers[i].what);
    }
    /* a huge IHDR stops at the pixel limit, before any pixel memory */
    memcpy(p, good, size);
    put32(p + 16, 100000);
    put32(p + 20, 100000);
    fix_crc(p, 8, 13);
    expect_reject(ctx, p, size, 100000000, LR_ERR_NOMEM,
                  "image is 100000x100000 = 10000000000 pixels, more than --max-pixels 100000000",
                  "100000x100000");
    /* the limit itself is inclusive: 6x4 = 24 pixels */
    image img;
    CHECK(image_read_png_memory(ctx, good, size, 24, &img) == LR_OK);
    image_free(&img);
    expect_reject(ctx, good, size, 23, LR_ERR_NOMEM, "image is 6x4 = 24 pixels", "24 > 23");
    /* an unknown critical chunk before IDAT */
    memcpy(p, good, idat);
    static const unsigned char odd[12] = {0, 0, 0, 0, 'Q', 'u', 'X', 'x', 0, 0, 0, 0};
    memcpy(p + idat, odd, 12);
    fix_crc(p, idat, 0);
    memcpy(p + idat + 12, good + idat, size - idat);
    expect_reject(ctx, p, size + 12, 0, LR_ERR_DATA, "bad PNG: ", "unknown critical chunk");
    /* IEND missing, then IDAT missing */
    size_t iend = find_chunk(good, size, "IEND");
    expect_reject(ctx, good, iend, 0, LR_ERR_DATA, "truncated PNG (", "no IEND");
    memcpy(p, good, idat);
    memcpy(p + idat, good + iend, 12);
    expect_reject(ctx, p, idat + 12, 0, LR_ERR_DATA, "bad PNG: ", "no IDAT");

    const char *printed = capture_end(&err);
    CHECKF(printed[0] == 0, "stderr got: %.200s", printed);
    free(p);
    free(good);
    lr_ctx_destroy(ctx);
}

static void test_file_errors(void)
{
    lr_ctx *ctx = quiet_ctx();
    REQUIRE(ctx);
    /* a truncated FILE behaves as truncated memory */
    size_t size = 0;
    unsigned char *good = read_whole("tests/fixtures/png/rgb8.png", &size);
    REQUIRE(good);
    FILE *f = tmpfile();
    REQUIRE(f);
    fwrite(good, 1, size - 20, f);
    rewind(f);
    image img;
    CHECK(image_read_png(ctx, f, 0, &img) == LR_ERR_DATA);
    CHECK(strncmp(lr_ctx_last_error(ctx), "truncated PNG (", 15) == 0);
    fclose(f);
    /* reading a write-only stream is an I/O error */
    f = fopen("/dev/null", "w");
    if (f) {
        CHECK(image_read_png(ctx, f, 0, &img) == LR_ERR_IO);
        fclose(f);
    }
    /* writing to a full device is an I/O error, at the latest when finishing */
    REQUIRE(read_fixture(ctx, "rgb8", &img) == LR_OK);
    f = fopen("/dev/full", "w");
    if (f) {
        setvbuf(f, NULL, _IONBF, 0);
        lr_status s = image_write_png(ctx, f, &img);
        CHECKF(s == LR_ERR_IO, "/dev/full: %d %s", (int)s, lr_ctx_last_error(ctx));
        fclose(f);
    }
    image_free(&img);
    free(good);
    lr_ctx_destroy(ctx);
}

/* ---- writing ----------------------------------------------------------------------------- */

static void test_streaming_writer(void)
{
    lr_ctx *ctx = quiet_ctx();
    REQUIRE(ctx);
    seed_random(5);
    for (int depth = 8; depth <= 16; depth += 8)
        for (int c = 1; c <= 4; c++) {
            image img;
            REQUIRE(image_alloc(ctx, &img, 13, 11, c, depth) == LR_OK);
            size_t n = (size_t)13 * 11 * c;
            for (size_t i = 0; i < n; i++)
                img.pixels[i] = random_float() * 0.7f + 0.5f; /* overshoots on both sides */
            img.has_gama = true;
            img.gama = 100000;
            size_t whole_len, band_len;
            lr_status s;
            unsigned char *whole = write_memory(ctx, &img, &whole_len, &s);
            REQUIRE(s == LR_OK);
            /* the same image in bands of 1, 3, 0, 4 and 3 rows */
            char *buf = NULL;
            FILE *f = open_memstream(&buf, &band_len);
            image_png_writer *w = NULL;
            REQUIRE(image_png_writer_open(ctx, f, &img, &w) == LR_OK);
            static const int bands[] = {1, 3, 0, 4, 3};
            int y = 0;
            for (int b = 0; b < 5; b++) {
                float *planes = malloc((size_t)c * 13 * (bands[b] ? bands[b] : 1) * sizeof(float));
                for (int ch = 0; ch < c; ch++)
                    memcpy(planes + (size_t)ch * 13 * bands[b],
                           img.pixels + ((size_t)ch * 11 + y) * 13, (size_t)13 * bands[b] * sizeof(float));
                CHECK(image_png_writer_rows(ctx, w, planes, bands[b]) == LR_OK);
                y += bands[b];
                free(planes);
            }
            CHECK(image_png_writer_rows(ctx, w, img.pixels, 1) == LR_ERR_ARG); /* row 12 of 11 */
            CHECK(image_png_writer_finish(ctx, w) == LR_OK);
            image_png_writer_free(w);
            fclose(f);
            CHECK(band_len == whole_len && memcmp(buf, whole, whole_len) == 0);
            /* clamped and rounded to nearest */
            image back;
            REQUIRE(image_read_png_memory(ctx, whole, whole_len, 0, &back) == LR_OK);
            double max = depth == 16 ? 65535.0 : 255.0;
            int bad = 0;
            for (size_t i = 0; i < n; i++) {
                double v = img.pixels[i] < 0 ? 0 : img.pixels[i] > 1 ? 1 : img.pixels[i];
                bad += fabs(back.pixels[i] - floor(v * max + 0.5) / max) > 1e-7;
            }
            CHECKF(bad == 0, "depth %d, %d channels: %d values not rounded to nearest", depth, c, bad);
            CHECK(back.has_gama && back.gama == 100000 && back.bit_depth == depth && back.channels == c);
            image_free(&back);
            free(buf);
            free(whole);
            image_free(&img);
        }
    /* special values */
    image img, back;
    REQUIRE(image_alloc(ctx, &img, 6, 1, 1, 8) == LR_OK);
    const float vals[6] = {-1.0f, NAN, 2.0f, 0.5f, INFINITY, 1.0f / 255.0f};
    memcpy(img.pixels, vals, sizeof vals);
    size_t len;
    lr_status s;
    unsigned char *png = write_memory(ctx, &img, &len, &s);
    REQUIRE(s == LR_OK);
    REQUIRE(image_read_png_memory(ctx, png, len, 0, &back) == LR_OK);
    const float want[6] = {0.0f, 0.0f, 1.0f, 128.0f / 255.0f, 1.0f, 1.0f / 255.0f};
    for (int i = 0; i < 6; i++)
        CHECKF(back.pixels[i] == want[i], "value %d: %g -> %g, want %g", i, vals[i], back.pixels[i], want[i]);
    image_free(&back);
    free(png);
    /* finishing early, and writing after finishing, are errors */
    char *buf = NULL;
    FILE *f = open_memstream(&buf, &len);
    image_png_writer *w = NULL;
    REQUIRE(image_png_writer_open(ctx, f, &img, &w) == LR_OK);
    CHECK(image_png_writer_finish(ctx, w) == LR_ERR_ARG);
    CHECK(strstr(lr_ctx_last_error(ctx), "0 of 1 rows") != NULL);
    CHECK(image_png_writer_rows(ctx, w, img.pixels, 1) == LR_ERR_ARG);
    image_png_writer_free(w);
    image_png_writer_free(NULL);
    fclose(f);
    free(buf);
    image_free(&img);
    image_free(&img); /* safe twice */
    /* bad shapes */
    CHECK(image_alloc(ctx, &img, 0, 5, 3, 8) == LR_ERR_ARG);
    CHECK(image_alloc(ctx, &img, 5, 5, 5, 8) == LR_ERR_ARG);
    CHECK(image_alloc(ctx, &img, 5, 5, 3, 12) == LR_ERR_ARG);
    CHECK(image_alloc(ctx, &img, 0x7fffffff, 0x7fffffff, 4, 8) == LR_ERR_NOMEM || sizeof(size_t) > 8);
    lr_ctx_destroy(ctx);
}

/* ---- colour ------------------------------------------------------------------------------ */

static void test_colour_conversions(void)
{
    enum { N = 1000 };
    float r[N], g[N], b[N], y[N], cb[N], cr[N], r2[N], g2[N], b2[N];
    seed_random(9);
    for (int i = 0; i < N; i++) {
        r[i] = 0.5f + 0.5f * random_float();
        g[i] = 0.5f + 0.5f * random_float();
        b[i] = 0.5f + 0.5f * random_float();
    }
    r[0] = g[0] = b[0] = 1.0f;        /* white */
    r[1] = g[1] = b[1] = 0.0f;        /* black */
    r[2] = 1.0f, g[2] = b[2] = 0.0f;  /* red */
    image_rgb_to_ycbcr(r, g, b, y, cb, cr, N);
    CHECK(fabsf(y[0] - 1.0f) < 1e-6f && fabsf(cb[0] - 0.5f) < 1e-6f && fabsf(cr[0] - 0.5f) < 1e-6f);
    CHECK(fabsf(y[1]) < 1e-6f && fabsf(cb[1] - 0.5f) < 1e-6f && fabsf(cr[1] - 0.5f) < 1e-6f);
    CHECK(fabsf(y[2] - 0.299f) < 1e-6f && fabsf(cb[2] - (0.5f - 0.564f * 0.299f)) < 1e-6f &&
          fabsf(cr[2] - (0.5f + 0.713f * 0.701f)) < 1e-6f);
    image_ycbcr_to_rgb(y, cb, cr, r2, g2, b2, N);
    double e = 0;
    for (int i = 0; i < N; i++)
        e = fmax(e, fmax(fabs(r2[i] - r[i]), fmax(fabs(g2[i] - g[i]), fabs(b2[i] - b[i]))));
    CHECKF(e < 1e-3, "RGB -> YCbCr -> RGB: max error %.3g", e);
    /* in place */
    memcpy(r2, r, sizeof r);
    memcpy(g2, g, sizeof g);
    memcpy(b2, b, sizeof b);
    image_rgb_to_ycbcr(r2, g2, b2, r2, g2, b2, N);
    CHECK(memcmp(r2, y, sizeof y) == 0 && memcmp(g2, cb, sizeof cb) == 0 && memcmp(b2, cr, sizeof cr) == 0);
    image_ycbcr_to_rgb(r2, g2, b2, r2, g2, b2, N);
    e = 0;
    for (int i = 0; i < N; i++)
        e = fmax(e, fabs(r2[i] - r[i]) + fabs(g2[i] - g[i]) + fabs(b2[i] - b[i]));
    CHECK(e < 3e-3);
    /* studio luma: 16/255 .. 235/255 */
    image_luma_studio(r, g, b, y, 3);
    CHECKF(fabsf(y[0] - 235.0f / 255.0f) < 1e-5f, "white: %.7f", y[0]);
    CHECKF(fabsf(y[1] - 16.0f / 255.0f) < 1e-6f, "black: %.7f", y[1]);
    CHECKF(fabsf(y[2] - (16.0f + 65.481f) / 255.0f) < 1e-6f, "red: %.7f", y[2]);
}

int main(void)
{
    RUN(test_fixtures_read_and_round_trip);
    RUN(test_exact_extremes);
    RUN(test_colour_chunks);
    RUN(test_tolerated_oddities);
    RUN(test_rejects_hostile_input);
    RUN(test_file_errors);
    RUN(test_streaming_writer);
    RUN(test_colour_conversions);
    return CHECK_DONE();
}
