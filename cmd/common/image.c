/* PNG in and out through libpng (see image.h).
 *
 * libpng reports errors by longjmp. Each libpng call sequence runs in a function whose only
 * locals are its pointer parameters, and every resource lives in a state struct reached
 * through them, so nothing the jump skips is lost or left indeterminate. libpng's error text
 * is kept in that struct and turned into one lr_fail line; warnings are dropped (never
 * printed).
 *
 * The colour chunks gAMA, cHRM, sRGB and iCCP are taken from the stream raw, by declaring them
 * "unknown" chunks with a read callback, and written back raw with png_write_chunk. libpng's
 * own handling would synthesise a gAMA from an sRGB chunk, drop profiles it dislikes and check
 * consistency between them; raw handling writes back exactly what came in.
 *
 * CRC policy: an error in a critical chunk (IHDR, PLTE, IDAT, IEND) is fatal; an ancillary
 * chunk with a bad CRC is discarded with a (dropped) warning and the image still reads, as
 * libpng allows (PNG_CRC_WARN_DISCARD). A colour chunk with a bad CRC is thus not kept. */
#include "image.h"

#include <errno.h>
#include <inttypes.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

enum { MAX_ICC_PROFILE = 16 << 20 }; /* larger profiles are ignored, not inflated */

/* libpng's error hook state, shared by reader and writer. */
typedef struct {
    char msg[200];  /* the error, as libpng said it */
    char warn[200]; /* the last warning (explains "Invalid IHDR data") */
} png_err;

static void on_png_error(png_structp png, png_const_charp msg)
{
    png_err *e = png_get_error_ptr(png);
    snprintf(e->msg, sizeof e->msg, "%s", msg ? msg : "unknown libpng error");
    png_longjmp(png, 1);
}

static void on_png_warning(png_structp png, png_const_charp msg)
{
    png_err *e = png_get_error_ptr(png);
    snprintf(e->warn, sizeof e->warn, "%s", msg ? msg : "");
}

/* ---- images ---- */

static void free_chunks(image *img)
{
    free(img->iccp_name);
    free(img->iccp_profile);
    img->iccp_name = NULL;
    img->iccp_profile = NULL;
    img->iccp_length = 0;
    img->has_gama = img->has_chrm = img->has_srgb = false;
}

void image_free(image *img)
{
    if (!img)
        return;
    free(img->pixels);
    free_chunks(img);
    memset(img, 0, sizeof *img);
}

/* width * height * channels floats, or 0 when that overflows size_t. */
static size_t pixel_floats(uint64_t width, uint64_t height, int channels)
{
    uint64_t n = width * height; /* both < 2^31: no overflow in 64 bits */
    if (n > SIZE_MAX / sizeof(float) / (uint64_t)channels)
        return 0;
    return (size_t)(n * (uint64_t)channels);
}

lr_status image_alloc(lr_ctx *ctx, image *img, int width, int height, int channels,
                      int bit_depth)
{
    memset(img, 0, sizeof *img);
    if (width < 1 || height < 1 || channels < 1 || channels > 4 ||
        (bit_depth != 8 && bit_depth != 16))
        return lr_fail(ctx, LR_ERR_ARG, "image_alloc: bad shape %dx%dx%d at %d bits", width,
                       height, channels, bit_depth);
    size_t n = pixel_floats((uint64_t)width, (uint64_t)height, channels);
    if (n == 0)
        return lr_fail(ctx, LR_ERR_NOMEM, "image %dx%d with %d channels is too large", width,
                       height, channels);
    img->pixels = malloc(n * sizeof(float));
    if (!img->pixels)
        return lr_fail(ctx, LR_ERR_NOMEM, "out of memory for a %dx%d image (%zu MiB)", width,
                       height, n * sizeof(float) >> 20);
    img->width = width;
    img->height = height;
    img->channels = channels;
    img->bit_depth = bit_depth;
    return LR_OK;
}

lr_status image_copy_chunks(lr_ctx *ctx, image *dst, const image *src)
{
    if (dst == src)
        return LR_OK;
    char *name = NULL;
    unsigned char *profile = NULL;
    if (src->iccp_name) {
        name = strdup(src->iccp_name);
        profile = malloc(src->iccp_length ? src->iccp_length : 1);
        if (!name || !profile) {
            free(name);
            free(profile);
            return lr_fail(ctx, LR_ERR_NOMEM, "out of memory copying an ICC profile");
        }
        memcpy(profile, src->iccp_profile, src->iccp_length);
    }
    free_chunks(dst);
    dst->has_gama = src->has_gama;
    dst->gama = src->gama;
    dst->has_chrm = src->has_chrm;
    memcpy(dst->chrm, src->chrm, sizeof dst->chrm);
    dst->has_srgb = src->has_srgb;
    dst->srgb_intent = src->srgb_intent;
    dst->iccp_name = name;
    dst->iccp_profile = profile;
    dst->iccp_length = name ? src->iccp_length : 0;
    return LR_OK;
}

/* ---- reading ---- */

/* A colour chunk is taken only when its CRC matches, which read_bytes checks itself: libpng
 * hands the data of an unknown chunk to the callback whatever its CRC (1.6 reads the CRC
 * first; should it ever come after, the chunk waits here until it does). */
enum { PENDING_NONE, PENDING_GAMA, PENDING_CHRM, PENDING_SRGB, PENDING_ICCP };

typedef struct {
    png_err err;
    png_structp png;
    png_infop info;
    FILE *f;                   /* file input, or */
    const unsigned char *data; /* memory input */
    size_t size, pos;
    bool truncated, io_error, in_image_data;
    uint64_t max_pixels;
    image *img;
    unsigned char *row;       /* one row of libpng output, or */
    unsigned char *whole;     /* every row (interlaced input) */
    png_bytep *row_pointers;
    lr_status limit_status;   /* set with limit_msg when a check of ours fails */
    char limit_msg[200];
    /* The chunk being read, followed here as libpng reads it (io_state says which part), so
     * that a zlib error inside a damaged chunk can be reported as the CRC error it is. */
    uint32_t chunk_len, chunk_left, chunk_crc;
    bool crc_seen, crc_ok;    /* the CRC of the current chunk was read; it matched */
    int pending;              /* PENDING_*: which field of `held` waits for its CRC */
    image held;
} png_reader;

/* Bytes from the input; false at its end (r->truncated) or on a read error (r->io_error). */
static bool pull(png_reader *r, unsigned char *out, size_t n)
{
    if (r->f) {
        size_t got = fread(out, 1, n, r->f);
        if (got == n)
            return true;
        if (ferror(r->f))
            r->io_error = true;
        else
            r->truncated = true;
        return false;
    }
    if (r->size - r->pos >= n) {
        memcpy(out, r->data + r->pos, n);
        r->pos += n;
        return true;
    }
    r->truncated = true;
    return false;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The held colour chunk goes into the image (its CRC matched) or away. */
static void settle_pending(png_reader *r, bool crc_ok)
{
    image *img = r->img, *h = &r->held;
    if (crc_ok) {
        switch (r->pending) {
        case PENDING_GAMA:
            img->has_gama = true;
            img->gama = h->gama;
            break;
        case PENDING_CHRM:
            img->has_chrm = true;
            memcpy(img->chrm, h->chrm, sizeof img->chrm);
            break;
        case PENDING_SRGB:
            img->has_srgb = true;
            img->srgb_intent = h->srgb_intent;
            break;
        case PENDING_ICCP:
            img->iccp_name = h->iccp_name;
            img->iccp_profile = h->iccp_profile;
            img->iccp_length = h->iccp_length;
            h->iccp_name = NULL;
            h->iccp_profile = NULL;
            break;
        default: break;
        }
    }
    free_chunks(h);
    r->pending = PENDING_NONE;
}

static void read_bytes(png_structp png, png_bytep out, size_t n)
{
    png_reader *r = png_get_io_ptr(png);
    png_uint_32 state = png_get_io_state(png);
    if (!pull(r, out, n))
        png_error(png, r->io_error ? strerror(errno) : "truncated");
    if (state & PNG_IO_CHUNK_HDR) {
        if (n == 8) {
            r->chunk_len = r->chunk_left = be32(out);
            r->chunk_crc = (uint32_t)crc32(0, out + 4, 4);
            r->crc_seen = false;
        }
    } else if (state & PNG_IO_CHUNK_DATA) {
        r->chunk_crc = (uint32_t)crc32(r->chunk_crc, out, (uInt)n);
        r->chunk_left -= n <= r->chunk_left ? (uint32_t)n : r->chunk_left;
    } else if (state & PNG_IO_CHUNK_CRC) {
        if (n == 4) {
            r->crc_seen = true;
            r->crc_ok = be32(out) == r->chunk_crc;
            if (r->pending != PENDING_NONE)
                settle_pending(r, r->crc_ok);
        }
    }
}

/* After libpng stopped inside a chunk: whether the rest of it and its CRC show it damaged. */
static bool current_chunk_damaged(png_reader *r)
{
    if (!(png_get_io_state(r->png) & PNG_IO_CHUNK_DATA))
        return false;
    unsigned char buf[4096];
    while (r->chunk_left > 0) {
        size_t n = r->chunk_left < sizeof buf ? r->chunk_left : sizeof buf;
        if (!pull(r, buf, n))
            return false;
        r->chunk_crc = (uint32_t)crc32(r->chunk_crc, buf, (uInt)n);
        r->chunk_left -= (uint32_t)n;
    }
    return pull(r, buf, 4) && be32(buf) != r->chunk_crc;
}

/* The zlib stream of an iCCP chunk inflated into a new buffer; false (chunk ignored) when it
 * is corrupt or larger than MAX_ICC_PROFILE. */
static bool inflate_profile(const unsigned char *in, size_t n, unsigned char **out,
                            uint32_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit(&z) != Z_OK)
        return false;
    size_t cap = 4096, len = 0;
    unsigned char *buf = malloc(cap);
    int rc = Z_OK;
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    while (buf && rc == Z_OK) {
        if (len == cap) {
            unsigned char *grown = cap < MAX_ICC_PROFILE ? realloc(buf, cap * 2) : NULL;
            if (!grown) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = grown;
            cap *= 2;
        }
        z.next_out = buf + len;
        z.avail_out = (uInt)(cap - len);
        rc = inflate(&z, Z_NO_FLUSH);
        len = cap - z.avail_out;
        if (rc == Z_BUF_ERROR && z.avail_out != 0)
            break; /* input ended before the stream did */
        if (rc == Z_BUF_ERROR)
            rc = Z_OK;
    }
    inflateEnd(&z);
    if (!buf || rc != Z_STREAM_END || len == 0) {
        free(buf);
        return false;
    }
    *out = buf;
    *out_len = (uint32_t)len;
    return true;
}

/* Takes the colour chunks (declared unknown) as they stand in the file; a malformed or repeated
 * one, or one after the image data, is ignored as a decoder should ignore a bad ancillary
 * chunk. Other unknown chunks go back to libpng's default handling (0). */
static int read_colour_chunk(png_structp png, png_unknown_chunkp chunk)
{
    png_reader *r = png_get_user_chunk_ptr(png);
    const image *img = r->img;
    image *h = &r->held;
    const char *name = (const char *)chunk->name;
    const unsigned char *d = chunk->data;
    size_t n = chunk->size;
    int kind = !memcmp(name, "gAMA", 4)   ? PENDING_GAMA
               : !memcmp(name, "cHRM", 4) ? PENDING_CHRM
               : !memcmp(name, "sRGB", 4) ? PENDING_SRGB
               : !memcmp(name, "iCCP", 4) ? PENDING_ICCP
                                          : PENDING_NONE;
    if (kind == PENDING_NONE)
        return 0;
    settle_pending(r, false); /* never two at once */
    if (r->in_image_data)
        return 1;
    if (kind == PENDING_GAMA && n == 4 && !img->has_gama && be32(d) != 0 &&
        be32(d) <= 0x7fffffffu) {
        h->gama = be32(d);
        r->pending = kind;
    } else if (kind == PENDING_CHRM && n == 32 && !img->has_chrm) {
        for (int i = 0; i < 8; i++)
            h->chrm[i] = be32(d + 4 * i);
        r->pending = kind;
    } else if (kind == PENDING_SRGB && n == 1 && d[0] <= 3 && !img->has_srgb) {
        h->srgb_intent = d[0];
        r->pending = kind;
    } else if (kind == PENDING_ICCP && !img->iccp_name) {
        /* name (1-79 bytes), NUL, compression method 0, zlib stream */
        const unsigned char *nul = n ? memchr(d, 0, n < 80 ? n : 80) : NULL;
        if (!nul || nul == d || (size_t)(nul - d) + 2 > n || nul[1] != 0)
            return 1;
        size_t name_len = (size_t)(nul - d);
        if (!inflate_profile(nul + 2, n - name_len - 2, &h->iccp_profile, &h->iccp_length))
            return 1;
        h->iccp_name = malloc(name_len + 1);
        if (!h->iccp_name) {
            free_chunks(h);
            return 1;
        }
        memcpy(h->iccp_name, d, name_len);
        h->iccp_name[name_len] = 0;
        r->pending = kind;
    }
    if (r->crc_seen) /* libpng read the CRC before calling back */
        settle_pending(r, r->crc_ok);
    return 1;
}

static float sample(const unsigned char *row, size_t i, bool sixteen)
{
    if (sixteen)
        return (float)((double)((unsigned)row[2 * i] << 8 | row[2 * i + 1]) / 65535.0);
    return (float)((double)row[i] / 255.0);
}

/* One libpng output row (interleaved) into the planes of row y. */
static void scatter_row(image *img, const unsigned char *row, int y)
{
    const int w = img->width, c = img->channels;
    const bool sixteen = img->bit_depth == 16;
    const size_t plane = (size_t)w * (size_t)img->height;
    for (int ch = 0; ch < c; ch++) {
        float *dst = img->pixels + (size_t)ch * plane + (size_t)y * (size_t)w;
        for (int x = 0; x < w; x++)
            dst[x] = sample(row, (size_t)x * (size_t)c + (size_t)ch, sixteen);
    }
}

/* Everything between the signature and IEND; runs under read_guarded's setjmp. */
static lr_status read_body(png_reader *r)
{
    png_structp png = r->png;
    png_infop info = r->info;
    image *img = r->img;
    png_set_sig_bytes(png, 8);
    png_set_user_limits(png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);
    png_set_crc_action(png, PNG_CRC_DEFAULT, PNG_CRC_WARN_DISCARD);
    /* Every ancillary chunk but tRNS is skipped unread (libpng would allocate what a text
     * chunk's length field claims, up to 2 GiB, before finding it truncated), except the colour
     * chunks, which reach read_colour_chunk, at most 8 MB each (libpng's chunk limit). */
    static const png_byte colour_chunks[] = "gAMA\0cHRM\0sRGB\0iCCP";
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, NULL, -1);
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_ALWAYS, colour_chunks, 4);
    png_set_read_user_chunk_fn(png, r, read_colour_chunk);
    png_read_info(png, info);

    png_uint_32 width, height;
    int depth, type, interlace;
    png_get_IHDR(png, info, &width, &height, &depth, &type, &interlace, NULL, NULL);
    int channels = (type & PNG_COLOR_MASK_COLOR ? 3 : 1) + (type & PNG_COLOR_MASK_ALPHA ? 1 : 0);
    if (png_get_valid(png, info, PNG_INFO_tRNS) && !(type & PNG_COLOR_MASK_ALPHA))
        channels++;
    uint64_t pixels = (uint64_t)width * height;
    if (r->max_pixels && pixels > r->max_pixels) {
        r->limit_status = LR_ERR_NOMEM;
        snprintf(r->limit_msg, sizeof r->limit_msg,
                 "image is %" PRIu32 "x%" PRIu32 " = %" PRIu64 " pixels, more than --max-pixels %" PRIu64,
                 (uint32_t)width, (uint32_t)height, pixels, r->max_pixels);
        return r->limit_status;
    }
    /* palette -> RGB(A), grey below 8 bits -> 8 bits (v * 255 / (2^d - 1): exact), tRNS -> alpha */
    png_set_expand(png);
    int passes = png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if ((int)png_get_channels(png, info) != channels) {
        r->limit_status = LR_ERR_INTERNAL;
        snprintf(r->limit_msg, sizeof r->limit_msg, "libpng gave %d channels, expected %d",
                 (int)png_get_channels(png, info), channels);
        return r->limit_status;
    }
    /* not image_alloc: that would clear the colour chunks already taken */
    size_t floats = pixel_floats(width, height, channels);
    img->pixels = floats ? malloc(floats * sizeof(float)) : NULL;
    if (!img->pixels) {
        r->limit_status = LR_ERR_NOMEM;
        snprintf(r->limit_msg, sizeof r->limit_msg, "out of memory for a %" PRIu32 "x%" PRIu32 " image",
                 (uint32_t)width, (uint32_t)height);
        return r->limit_status;
    }
    img->width = (int)width;
    img->height = (int)height;
    img->channels = channels;
    img->bit_depth = depth == 16 ? 16 : 8;
    size_t rowbytes = png_get_rowbytes(png, info);
    r->in_image_data = true;
    if (passes == 1) {
        r->row = malloc(rowbytes);
        if (!r->row)
            png_error(png, "out of memory for a row");
        for (png_uint_32 y = 0; y < height; y++) {
            png_read_row(png, r->row, NULL);
            scatter_row(img, r->row, (int)y);
        }
    } else {
        if (rowbytes > SIZE_MAX / height)
            png_error(png, "out of memory for the interlaced image");
        r->whole = malloc(rowbytes * height);
        r->row_pointers = malloc(height * sizeof *r->row_pointers);
        if (!r->whole || !r->row_pointers)
            png_error(png, "out of memory for the interlaced image");
        for (png_uint_32 y = 0; y < height; y++)
            r->row_pointers[y] = r->whole + (size_t)y * rowbytes;
        png_read_image(png, r->row_pointers);
        for (png_uint_32 y = 0; y < height; y++)
            scatter_row(img, r->row_pointers[y], (int)y);
    }
    png_read_end(png, NULL); /* the rest of IDAT (checksums) and IEND; nothing after it */
    return LR_OK;
}

/* The only frame with a setjmp: no locals, so none can be clobbered. */
static lr_status read_guarded(png_reader *r)
{
    if (setjmp(png_jmpbuf(r->png)))
        return LR_ERR_DATA; /* r->err says why */
    return read_body(r);
}

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

/* The one-line reason for a libpng error, from what read_bytes and libpng recorded. */
static lr_status read_failure(lr_ctx *ctx, png_reader *r)
{
    png_uint_32 chunk = png_get_io_chunk_type(r->png);
    char name[5] = {0};
    for (int i = 0; i < 4; i++) {
        unsigned char ch = (unsigned char)(chunk >> (24 - 8 * i));
        name[i] = (char)((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ? ch : '?');
    }
    if (r->io_error)
        return lr_fail(ctx, LR_ERR_IO, "read error: %s", r->err.msg);
    if (r->truncated) {
        if (chunk == 0)
            return lr_fail(ctx, LR_ERR_DATA, "truncated PNG (IHDR)");
        if (png_get_io_state(r->png) & PNG_IO_CHUNK_HDR)
            return lr_fail(ctx, LR_ERR_DATA, "truncated PNG (chunk header after %s)", name);
        return lr_fail(ctx, LR_ERR_DATA, "truncated PNG (%s)", name);
    }
    const char *msg = r->err.msg;
    if (has_suffix(msg, "CRC error"))
        return lr_fail(ctx, LR_ERR_DATA, "CRC error in chunk %s", name);
    if (strstr(msg, "memory") || strstr(msg, "Memory"))
        return lr_fail(ctx, LR_ERR_NOMEM, "out of memory reading PNG: %s", msg);
    /* libpng inflates IDAT as it arrives, so damage shows as a zlib error before the CRC */
    if (current_chunk_damaged(r))
        return lr_fail(ctx, LR_ERR_DATA, "CRC error in chunk %s", name);
    if (!strcmp(name, "IHDR"))
        return lr_fail(ctx, LR_ERR_DATA, "bad PNG header: %s",
                       !strcmp(msg, "Invalid IHDR data") && r->err.warn[0] ? r->err.warn : msg);
    return lr_fail(ctx, LR_ERR_DATA, "bad PNG: %s", msg);
}

static lr_status read_png(lr_ctx *ctx, png_reader *r, image *img)
{
    memset(img, 0, sizeof *img);
    unsigned char sig[8];
    size_t got;
    if (r->f) {
        got = fread(sig, 1, sizeof sig, r->f);
        if (got < sizeof sig && ferror(r->f))
            return lr_fail(ctx, LR_ERR_IO, "read error: %s", strerror(errno));
    } else {
        got = r->size < sizeof sig ? r->size : sizeof sig;
        if (got)
            memcpy(sig, r->data, got);
        r->pos = got;
    }
    if (got < sizeof sig || png_sig_cmp(sig, 0, sizeof sig) != 0)
        return lr_fail(ctx, LR_ERR_DATA, got == 0 ? "not a PNG file (empty)" : "not a PNG file");

    r->img = img;
    r->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &r->err, on_png_error, on_png_warning);
    if (r->png)
        r->info = png_create_info_struct(r->png);
    if (!r->png || !r->info) {
        png_destroy_read_struct(&r->png, NULL, NULL);
        return lr_fail(ctx, LR_ERR_NOMEM, "out of memory starting libpng");
    }
    png_set_read_fn(r->png, r, read_bytes);
    lr_status s = read_guarded(r);
    if (s != LR_OK)
        s = r->limit_status != LR_OK ? lr_fail(ctx, r->limit_status, "%s", r->limit_msg)
                                     : read_failure(ctx, r);
    png_destroy_read_struct(&r->png, &r->info, NULL);
    free_chunks(&r->held);
    free(r->row);
    free(r->whole);
    free(r->row_pointers);
    if (s != LR_OK)
        image_free(img);
    return s;
}

lr_status image_read_png(lr_ctx *ctx, FILE *f, uint64_t max_pixels, image *img)
{
    png_reader r;
    memset(&r, 0, sizeof r);
    if (!f || !img)
        return lr_fail(ctx, LR_ERR_ARG, "image_read_png: NULL argument");
    r.f = f;
    r.max_pixels = max_pixels;
    return read_png(ctx, &r, img);
}

lr_status image_read_png_memory(lr_ctx *ctx, const void *data, size_t size,
                                uint64_t max_pixels, image *img)
{
    png_reader r;
    memset(&r, 0, sizeof r);
    if ((!data && size) || !img)
        return lr_fail(ctx, LR_ERR_ARG, "image_read_png_memory: NULL argument");
    r.data = data;
    r.size = size;
    r.max_pixels = max_pixels;
    return read_png(ctx, &r, img);
}

/* ---- writing ---- */

struct image_png_writer {
    png_err err;
    png_structp png;
    png_infop info;
    FILE *f;
    int width, height, channels, bit_depth;
    int rows_done;
    bool failed, finished;
    unsigned char *row;
    bool io_error;
    const float *planes; /* the band being written (for write_band) */
    int band_rows;
};

static void write_bytes(png_structp png, png_bytep data, size_t n)
{
    image_png_writer *w = png_get_io_ptr(png);
    if (fwrite(data, 1, n, w->f) != n) {
        w->io_error = true;
        png_error(png, strerror(errno));
    }
}

static void flush_bytes(png_structp png)
{
    image_png_writer *w = png_get_io_ptr(png);
    if (fflush(w->f) != 0) {
        w->io_error = true;
        png_error(png, strerror(errno));
    }
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* iCCP body: keyword, NUL, method 0, zlib stream of the profile. NULL when out of memory. */
static unsigned char *iccp_body(const image *like, size_t *len)
{
    size_t name_len = strlen(like->iccp_name);
    uLong bound = compressBound(like->iccp_length);
    unsigned char *body = malloc(name_len + 2 + bound);
    if (!body)
        return NULL;
    memcpy(body, like->iccp_name, name_len);
    body[name_len] = 0;
    body[name_len + 1] = 0;
    uLongf zlen = bound;
    if (compress2(body + name_len + 2, &zlen, like->iccp_profile, like->iccp_length, 6) != Z_OK) {
        free(body);
        return NULL;
    }
    *len = name_len + 2 + zlen;
    return body;
}

static void write_header(image_png_writer *w, const image *like, unsigned char *iccp,
                         size_t iccp_len)
{
    static const int types[5] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA,
                                 PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA};
    png_set_IHDR(w->png, w->info, (png_uint_32)w->width, (png_uint_32)w->height, w->bit_depth,
                 types[w->channels], PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    /* zlib level 3, not libpng's 6: files 8-14% larger, but deflate was half of an upscaling
     * run (1024x1024 RGB from fsrcnn-x2: 0.29 s in all instead of 0.56 s). */
    png_set_compression_level(w->png, 3);
    png_write_info(w->png, w->info);
    /* Colour chunks raw, before IDAT (there is never a PLTE), in the order the spec lists. */
    unsigned char buf[32];
    if (iccp)
        png_write_chunk(w->png, (png_const_bytep) "iCCP", iccp, iccp_len);
    if (like->has_srgb) {
        buf[0] = (unsigned char)like->srgb_intent;
        png_write_chunk(w->png, (png_const_bytep) "sRGB", buf, 1);
    }
    if (like->has_gama) {
        put_be32(buf, like->gama);
        png_write_chunk(w->png, (png_const_bytep) "gAMA", buf, 4);
    }
    if (like->has_chrm) {
        for (int i = 0; i < 8; i++)
            put_be32(buf + 4 * i, like->chrm[i]);
        png_write_chunk(w->png, (png_const_bytep) "cHRM", buf, 32);
    }
}

static lr_status write_header_guarded(image_png_writer *w, const image *like, unsigned char *iccp,
                                      size_t iccp_len)
{
    if (setjmp(png_jmpbuf(w->png)))
        return LR_ERR_IO;
    write_header(w, like, iccp, iccp_len);
    return LR_OK;
}

static unsigned quantise(float v, float max)
{
    if (!(v > 0.0f)) /* also NaN */
        return 0;
    if (v >= 1.0f)
        return (unsigned)max;
    return (unsigned)(v * max + 0.5f);
}

static void write_band(image_png_writer *w)
{
    const int width = w->width, c = w->channels;
    const size_t plane = (size_t)width * (size_t)w->band_rows;
    for (int y = 0; y < w->band_rows; y++) {
        for (int ch = 0; ch < c; ch++) {
            const float *src = w->planes + (size_t)ch * plane + (size_t)y * (size_t)width;
            if (w->bit_depth == 16) {
                for (int x = 0; x < width; x++) {
                    unsigned v = quantise(src[x], 65535.0f);
                    unsigned char *p = w->row + 2 * ((size_t)x * (size_t)c + (size_t)ch);
                    p[0] = (unsigned char)(v >> 8);
                    p[1] = (unsigned char)v;
                }
            } else {
                for (int x = 0; x < width; x++)
                    w->row[(size_t)x * (size_t)c + (size_t)ch] =
                        (unsigned char)quantise(src[x], 255.0f);
            }
        }
        png_write_row(w->png, w->row);
        w->rows_done++;
    }
}

static lr_status write_band_guarded(image_png_writer *w)
{
    if (setjmp(png_jmpbuf(w->png)))
        return LR_ERR_IO;
    write_band(w);
    return LR_OK;
}

static lr_status write_end_guarded(image_png_writer *w)
{
    if (setjmp(png_jmpbuf(w->png)))
        return LR_ERR_IO;
    png_write_end(w->png, NULL);
    return LR_OK;
}

static lr_status writer_failed(lr_ctx *ctx, image_png_writer *w)
{
    w->failed = true;
    if (strstr(w->err.msg, "memory") || strstr(w->err.msg, "Memory"))
        return lr_fail(ctx, LR_ERR_NOMEM, "out of memory writing PNG: %s", w->err.msg);
    return lr_fail(ctx, LR_ERR_IO, "%s: %s", w->io_error ? "write error" : "cannot write PNG",
                   w->err.msg);
}

lr_status image_png_writer_open(lr_ctx *ctx, FILE *f, const image *like, image_png_writer **out)
{
    *out = NULL;
    if (!f || !like)
        return lr_fail(ctx, LR_ERR_ARG, "image_png_writer_open: NULL argument");
    if (like->width < 1 || like->height < 1 || like->channels < 1 || like->channels > 4 ||
        (like->bit_depth != 8 && like->bit_depth != 16))
        return lr_fail(ctx, LR_ERR_ARG, "cannot write a %dx%d image with %d channels at %d bits",
                       like->width, like->height, like->channels, like->bit_depth);
    size_t sample_bytes = like->bit_depth == 16 ? 2 : 1;
    if ((size_t)like->width > SIZE_MAX / 8)
        return lr_fail(ctx, LR_ERR_NOMEM, "image too wide");
    image_png_writer *w = calloc(1, sizeof *w);
    if (!w)
        return lr_fail(ctx, LR_ERR_NOMEM, "out of memory for the PNG writer");
    w->f = f;
    w->width = like->width;
    w->height = like->height;
    w->channels = like->channels;
    w->bit_depth = like->bit_depth;
    w->row = malloc((size_t)like->width * (size_t)like->channels * sample_bytes);
    w->png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &w->err, on_png_error, on_png_warning);
    if (w->png)
        w->info = png_create_info_struct(w->png);
    size_t iccp_len = 0;
    unsigned char *iccp = like->iccp_name && like->iccp_profile ? iccp_body(like, &iccp_len) : NULL;
    if (!w->row || !w->png || !w->info || (like->iccp_name && like->iccp_profile && !iccp)) {
        free(iccp);
        image_png_writer_free(w);
        return lr_fail(ctx, LR_ERR_NOMEM, "out of memory for the PNG writer");
    }
    png_set_write_fn(w->png, w, write_bytes, flush_bytes);
    lr_status s = write_header_guarded(w, like, iccp, iccp_len);
    free(iccp);
    if (s != LR_OK) {
        s = writer_failed(ctx, w);
        image_png_writer_free(w);
        return s;
    }
    *out = w;
    return LR_OK;
}

lr_status image_png_writer_rows(lr_ctx *ctx, image_png_writer *w, const float *planes, int rows)
{
    if (!w || (!planes && rows))
        return lr_fail(ctx, LR_ERR_ARG, "image_png_writer_rows: NULL argument");
    if (w->failed || w->finished)
        return lr_fail(ctx, LR_ERR_ARG, "image_png_writer_rows: the writer has %s",
                       w->failed ? "failed" : "finished");
    if (rows < 0 || rows > w->height - w->rows_done)
        return lr_fail(ctx, LR_ERR_ARG, "image_png_writer_rows: %d rows after %d of %d", rows,
                       w->rows_done, w->height);
    if (rows == 0)
        return LR_OK;
    w->planes = planes;
    w->band_rows = rows;
    lr_status s = write_band_guarded(w);
    return s == LR_OK ? LR_OK : writer_failed(ctx, w);
}

lr_status image_png_writer_finish(lr_ctx *ctx, image_png_writer *w)
{
    if (!w)
        return lr_fail(ctx, LR_ERR_ARG, "image_png_writer_finish: NULL writer");
    if (w->failed || w->finished)
        return lr_fail(ctx, LR_ERR_ARG, "image_png_writer_finish: the writer has %s",
                       w->failed ? "failed" : "finished");
    if (w->rows_done != w->height) {
        w->failed = true;
        return lr_fail(ctx, LR_ERR_ARG, "PNG writer finished after %d of %d rows", w->rows_done,
                       w->height);
    }
    if (write_end_guarded(w) != LR_OK)
        return writer_failed(ctx, w);
    w->finished = true;
    if (fflush(w->f) != 0 || ferror(w->f)) {
        w->failed = true;
        return lr_fail(ctx, LR_ERR_IO, "write error: %s", strerror(errno));
    }
    return LR_OK;
}

void image_png_writer_free(image_png_writer *w)
{
    if (!w)
        return;
    png_destroy_write_struct(&w->png, &w->info);
    free(w->row);
    free(w);
}

lr_status image_write_png(lr_ctx *ctx, FILE *f, const image *img)
{
    if (!img || !img->pixels)
        return lr_fail(ctx, LR_ERR_ARG, "image_write_png: no image");
    image_png_writer *w;
    lr_status s = image_png_writer_open(ctx, f, img, &w);
    if (s == LR_OK)
        s = image_png_writer_rows(ctx, w, img->pixels, img->height);
    if (s == LR_OK)
        s = image_png_writer_finish(ctx, w);
    image_png_writer_free(w);
    return s;
}

/* ---- colour ---- */

void image_rgb_to_ycbcr(const float *r, const float *g, const float *b, float *y, float *cb,
                        float *cr, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        float R = r[i], G = g[i], B = b[i];
        float Y = 0.299f * R + 0.587f * G + 0.114f * B;
        y[i] = Y;
        cb[i] = 0.564f * (B - Y) + 0.5f;
        cr[i] = 0.713f * (R - Y) + 0.5f;
    }
}

void image_ycbcr_to_rgb(const float *y, const float *cb, const float *cr, float *r, float *g,
                        float *b, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        float Y = y[i], Cb = cb[i] - 0.5f, Cr = cr[i] - 0.5f;
        r[i] = Y + 1.403f * Cr;
        g[i] = Y - 0.714f * Cr - 0.344f * Cb;
        b[i] = Y + 1.773f * Cb;
    }
}

void image_luma_studio(const float *r, const float *g, const float *b, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = (16.0f + 65.481f * r[i] + 128.553f * g[i] + 24.966f * b[i]) / 255.0f;
}
