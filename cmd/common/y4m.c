/* YUV4MPEG2 streams: see y4m.h. */
#include "y4m.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *tag;
    y4m_subsampling subsampling;
    y4m_siting siting;
    int depth;
} chroma_kind;

static const chroma_kind CHROMA_KINDS[] = {
    {"420jpeg", Y4M_420, Y4M_SITING_CENTRED, 8},  {"420", Y4M_420, Y4M_SITING_CENTRED, 8},
    {"420mpeg2", Y4M_420, Y4M_SITING_LEFT, 8},    {"420paldv", Y4M_420, Y4M_SITING_TOPLEFT, 8},
    {"422", Y4M_422, Y4M_SITING_LEFT, 8},         {"444", Y4M_444, Y4M_SITING_CENTRED, 8},
    {"mono", Y4M_MONO, Y4M_SITING_CENTRED, 8},    {"420p10", Y4M_420, Y4M_SITING_CENTRED, 10},
    {"420p12", Y4M_420, Y4M_SITING_CENTRED, 12},  {"420p16", Y4M_420, Y4M_SITING_CENTRED, 16},
    {"422p10", Y4M_422, Y4M_SITING_LEFT, 10},     {"422p12", Y4M_422, Y4M_SITING_LEFT, 12},
    {"422p16", Y4M_422, Y4M_SITING_LEFT, 16},     {"444p10", Y4M_444, Y4M_SITING_CENTRED, 10},
    {"444p12", Y4M_444, Y4M_SITING_CENTRED, 12},  {"444p16", Y4M_444, Y4M_SITING_CENTRED, 16},
    {"mono10", Y4M_MONO, Y4M_SITING_CENTRED, 10}, {"mono12", Y4M_MONO, Y4M_SITING_CENTRED, 12},
    {"mono16", Y4M_MONO, Y4M_SITING_CENTRED, 16},
};

static const chroma_kind *find_chroma(const char *tag, size_t len)
{
    for (size_t i = 0; i < sizeof CHROMA_KINDS / sizeof *CHROMA_KINDS; i++)
        if (strlen(CHROMA_KINDS[i].tag) == len && memcmp(CHROMA_KINDS[i].tag, tag, len) == 0)
            return &CHROMA_KINDS[i];
    return NULL;
}

static void set_chroma(y4m_info *info, const chroma_kind *k)
{
    snprintf(info->chroma, sizeof info->chroma, "%s", k->tag);
    info->subsampling = k->subsampling;
    info->siting = k->siting;
    info->depth = k->depth;
}

static void set_defaults(y4m_info *info)
{
    memset(info, 0, sizeof *info);
    info->fps_num = 25;
    info->fps_den = 1;
    info->interlace = 'p';
    set_chroma(info, &CHROMA_KINDS[0]);
}

lr_status y4m_info_init(lr_ctx *ctx, y4m_info *info, int width, int height, const char *chroma)
{
    set_defaults(info);
    if (width < 1 || height < 1)
        return lr_fail(ctx, LR_ERR_ARG, "Y4M frame size %dx%d is not positive", width, height);
    if (!chroma)
        chroma = "420jpeg";
    const chroma_kind *k = find_chroma(chroma, strlen(chroma));
    if (!k)
        return lr_fail(ctx, LR_ERR_UNSUPPORTED, "unsupported Y4M chroma 'C%s'", chroma);
    set_chroma(info, k);
    info->width = width;
    info->height = height;
    return LR_OK;
}

/* Plane shapes of info (64-bit, so that a hostile header cannot overflow them). */
static int plane_shapes(const y4m_info *info, int64_t w[3], int64_t h[3])
{
    int64_t cw = ((int64_t)info->width + 1) / 2, ch = ((int64_t)info->height + 1) / 2;
    w[0] = info->width;
    h[0] = info->height;
    w[1] = h[1] = 0; /* mono */
    if (info->subsampling == Y4M_420)
        w[1] = cw, h[1] = ch;
    else if (info->subsampling == Y4M_422)
        w[1] = cw, h[1] = info->height;
    else if (info->subsampling == Y4M_444)
        w[1] = info->width, h[1] = info->height;
    w[2] = w[1];
    h[2] = h[1];
    return info->subsampling == Y4M_MONO ? 1 : 3;
}

static uint64_t frame_samples(const y4m_info *info)
{
    int64_t w[3], h[3];
    int planes = plane_shapes(info, w, h);
    uint64_t n = 0;
    for (int p = 0; p < planes; p++)
        n += (uint64_t)w[p] * (uint64_t)h[p];
    return n;
}

uint64_t y4m_frame_bytes(const y4m_info *info)
{
    return frame_samples(info) * (info->depth > 8 ? 2u : 1u);
}

lr_status y4m_frame_alloc(lr_ctx *ctx, const y4m_info *info, y4m_frame *frame)
{
    memset(frame, 0, sizeof *frame);
    int64_t w[3], h[3];
    int planes = plane_shapes(info, w, h);
    uint64_t n = frame_samples(info);
    if (n == 0 || n > SIZE_MAX / 4)
        return lr_fail(ctx, LR_ERR_NOMEM, "Y4M frame of %" PRIu64 " samples is too large", n);
    frame->samples = calloc((size_t)n, sizeof(uint16_t));
    if (!frame->samples)
        return lr_fail(ctx, LR_ERR_NOMEM, "out of memory for a Y4M frame of %" PRIu64 " samples",
                       n);
    frame->planes = planes;
    frame->count = (size_t)n;
    size_t at = 0;
    for (int p = 0; p < planes; p++) {
        frame->width[p] = (int)w[p];
        frame->height[p] = (int)h[p];
        frame->plane[p] = frame->samples + at;
        at += (size_t)w[p] * (size_t)h[p];
    }
    return LR_OK;
}

void y4m_frame_free(y4m_frame *frame)
{
    free(frame->samples);
    memset(frame, 0, sizeof *frame);
}

/* ---- Reading ---- */

struct y4m_reader {
    FILE *f;                 /* NULL when reading memory */
    const unsigned char *mem;
    size_t mem_size, mem_pos;
    y4m_info info;
    y4m_frame frame;
    size_t frame_bytes;
    int64_t frames;
    bool failed;
};

static int src_getc(y4m_reader *r)
{
    if (r->f)
        return getc(r->f);
    return r->mem_pos < r->mem_size ? r->mem[r->mem_pos++] : EOF;
}

static size_t src_read(y4m_reader *r, void *buf, size_t n)
{
    if (r->f)
        return fread(buf, 1, n, r->f);
    size_t left = r->mem_size - r->mem_pos;
    if (n > left)
        n = left;
    memcpy(buf, r->mem + r->mem_pos, n);
    r->mem_pos += n;
    return n;
}

static bool src_error(const y4m_reader *r)
{
    return r->f && ferror(r->f);
}

/* Reads one line (without its newline) into line[Y4M_MAX_LINE]: its length, -1 at EOF before
 * the newline (*len the bytes read), -2 when longer than Y4M_MAX_LINE bytes with its newline. */
static int read_line(y4m_reader *r, char *line, size_t *len)
{
    *len = 0;
    for (;;) {
        int c = src_getc(r);
        if (c == EOF) {
            line[*len] = 0;
            return -1;
        }
        if (c == '\n') {
            line[*len] = 0;
            return 0;
        }
        if (*len + 2 > Y4M_MAX_LINE) /* this byte and the newline would not fit */
            return -2;
        line[(*len)++] = (char)c;
    }
}

/* A decimal number of 1..max digits-only characters: true and *out, or false. */
static bool parse_uint(const char *s, size_t len, int64_t max, int64_t *out)
{
    if (len == 0)
        return false;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
        if (v > max)
            return false;
    }
    *out = v;
    return true;
}

static bool parse_ratio(const char *s, size_t len, int *num, int *den)
{
    const char *colon = memchr(s, ':', len);
    int64_t n, d;
    if (!colon || !parse_uint(s, (size_t)(colon - s), INT_MAX, &n) ||
        !parse_uint(colon + 1, len - (size_t)(colon - s) - 1, INT_MAX, &d))
        return false;
    *num = (int)n;
    *den = (int)d;
    return true;
}

static lr_status parse_header(lr_ctx *ctx, y4m_reader *r, uint64_t max_pixels)
{
    static const char MAGIC[] = "YUV4MPEG2 ";
    char line[Y4M_MAX_LINE];
    size_t len;
    int rc = read_line(r, line, &len);
    if (rc == -2)
        return memcmp(line, MAGIC, 10) == 0
                   ? lr_fail(ctx, LR_ERR_DATA, "Y4M header longer than %d bytes", Y4M_MAX_LINE)
                   : lr_fail(ctx, LR_ERR_DATA, "not a Y4M stream");
    if (src_error(r))
        return lr_fail(ctx, LR_ERR_IO, "read error in the Y4M header: %s", strerror(errno));
    if (len < 10 || memcmp(line, MAGIC, 10) != 0) {
        /* "YUV4MPEG2" alone, or a prefix of it at the end of the input, is a cut header. */
        size_t n = len < 10 ? len : 10;
        if (rc == -1 && len > 0 && memcmp(line, MAGIC, n) == 0)
            return lr_fail(ctx, LR_ERR_DATA, "truncated Y4M header");
        if (rc == 0 && len == 9 && memcmp(line, MAGIC, 9) == 0)
            return lr_fail(ctx, LR_ERR_DATA, "Y4M header without W");
        return lr_fail(ctx, LR_ERR_DATA, "not a Y4M stream");
    }
    if (rc == -1)
        return lr_fail(ctx, LR_ERR_DATA, "truncated Y4M header");
    y4m_info *info = &r->info;
    set_defaults(info);
    bool have_w = false, have_h = false, have_c = false;
    char alt[16];
    size_t alt_len = 0;
    int64_t v;
    const char *p = line + 10, *end = line + len;
    while (p < end) {
        if (*p == ' ') {
            p++;
            continue;
        }
        const char *tok = p;
        while (p < end && *p != ' ')
            p++;
        size_t tlen = (size_t)(p - tok);
        const char *val = tok + 1;
        size_t vlen = tlen - 1;
        bool ok = true;
        switch (*tok) {
        case 'W':
            ok = parse_uint(val, vlen, INT_MAX, &v) && v > 0;
            if (ok)
                info->width = (int)v, have_w = true;
            break;
        case 'H':
            ok = parse_uint(val, vlen, INT_MAX, &v) && v > 0;
            if (ok)
                info->height = (int)v, have_h = true;
            break;
        case 'F':
            ok = parse_ratio(val, vlen, &info->fps_num, &info->fps_den);
            if (ok && (info->fps_num == 0 || info->fps_den == 0))
                info->fps_num = 25, info->fps_den = 1;
            break;
        case 'A':
            ok = parse_ratio(val, vlen, &info->sar_num, &info->sar_den);
            break;
        case 'I':
            ok = vlen == 1 && strchr("ptbm?", val[0]);
            if (ok)
                info->interlace = val[0] == '?' ? 'p' : val[0];
            break;
        case 'C': {
            const chroma_kind *k = find_chroma(val, vlen);
            if (!k)
                return lr_fail(ctx, LR_ERR_UNSUPPORTED, "unsupported Y4M chroma '%.*s'",
                               (int)(tlen > 40 ? 40 : tlen), tok);
            set_chroma(info, k);
            have_c = true;
            break;
        }
        case 'X':
            if (vlen == 15 && memcmp(val, "COLORRANGE=FULL", 15) == 0)
                info->full_range = true;
            else if (vlen == 18 && memcmp(val, "COLORRANGE=LIMITED", 18) == 0)
                info->full_range = false;
            else if (vlen > 6 && memcmp(val, "YSCSS=", 6) == 0 && vlen - 6 < sizeof alt) {
                /* ffmpeg's older spelling of the chroma tag, upper case: used without a C. */
                alt_len = vlen - 6;
                for (size_t i = 0; i < alt_len; i++)
                    alt[i] = (char)(val[6 + i] >= 'A' && val[6 + i] <= 'Z' ? val[6 + i] + 32
                                                                        : val[6 + i]);
            }
            break;
        default: /* unknown letters */
            break;
        }
        if (!ok) {
            char shown[41];
            size_t n = tlen > 40 ? 40 : tlen;
            for (size_t i = 0; i < n; i++)
                shown[i] = tok[i] >= ' ' && tok[i] <= '~' ? tok[i] : '?';
            shown[n] = 0;
            return lr_fail(ctx, LR_ERR_DATA, "bad Y4M header parameter '%s'", shown);
        }
    }
    if (!have_c && alt_len) {
        const chroma_kind *k = find_chroma(alt, alt_len);
        if (!k)
            return lr_fail(ctx, LR_ERR_UNSUPPORTED, "unsupported Y4M chroma 'XYSCSS=%.*s'",
                           (int)alt_len, alt);
        set_chroma(info, k);
    }
    if (!have_w)
        return lr_fail(ctx, LR_ERR_DATA, "Y4M header without W");
    if (!have_h)
        return lr_fail(ctx, LR_ERR_DATA, "Y4M header without H");
    uint64_t pixels = (uint64_t)info->width * (uint64_t)info->height;
    if (max_pixels && pixels > max_pixels)
        return lr_fail(ctx, LR_ERR_NOMEM,
                       "Y4M frame is %dx%d = %" PRIu64 " pixels, more than --max-pixels %" PRIu64,
                       info->width, info->height, pixels, max_pixels);
    return LR_OK;
}

static lr_status open_common(lr_ctx *ctx, y4m_reader *r, uint64_t max_pixels, y4m_reader **out)
{
    lr_status s = parse_header(ctx, r, max_pixels);
    if (s == LR_OK)
        s = y4m_frame_alloc(ctx, &r->info, &r->frame);
    if (s != LR_OK) {
        y4m_reader_free(r);
        return s;
    }
    r->frame_bytes = (size_t)y4m_frame_bytes(&r->info);
    *out = r;
    return LR_OK;
}

lr_status y4m_reader_open(lr_ctx *ctx, FILE *f, uint64_t max_pixels, y4m_reader **out)
{
    *out = NULL;
    y4m_reader *r = calloc(1, sizeof *r);
    if (!r)
        return lr_fail(ctx, LR_ERR_NOMEM, "out of memory");
    r->f = f;
    return open_common(ctx, r, max_pixels, out);
}

lr_status y4m_reader_open_memory(lr_ctx *ctx, const void *data, size_t size,
                                 uint64_t max_pixels, y4m_reader **out)
{
    *out = NULL;
    y4m_reader *r = calloc(1, sizeof *r);
    if (!r)
        return lr_fail(ctx, LR_ERR_NOMEM, "out of memory");
    r->mem = data;
    r->mem_size = data ? size : 0;
    return open_common(ctx, r, max_pixels, out);
}

const y4m_info *y4m_reader_info(const y4m_reader *r) { return &r->info; }
int64_t y4m_reader_frames(const y4m_reader *r) { return r->frames; }

void y4m_reader_free(y4m_reader *r)
{
    if (!r)
        return;
    y4m_frame_free(&r->frame);
    free(r);
}

static bool host_is_little_endian(void)
{
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 1;
}

/* Reads the plane bytes straight into the sample buffer: 16-bit samples are already in place
 * (swapped on a big-endian host); 8-bit ones land in the upper half and are widened forwards,
 * which never overwrites a byte before it has been read (sample i is read from byte n + i and
 * written to bytes 2i and 2i+1, both <= n + i). */
static int read_planes(lr_ctx *ctx, y4m_reader *r, int64_t number)
{
    size_t n = r->frame.count;
    unsigned char *bytes = (unsigned char *)r->frame.samples;
    unsigned char *dst = r->info.depth > 8 ? bytes : bytes + n;
    size_t got = src_read(r, dst, r->frame_bytes);
    if (got < r->frame_bytes) {
        r->failed = true;
        if (src_error(r))
            lr_fail(ctx, LR_ERR_IO, "read error in frame %" PRId64 ": %s", number, strerror(errno));
        else
            lr_fail(ctx, LR_ERR_DATA, "truncated frame %" PRId64 ": %zu of %zu bytes", number, got,
                    r->frame_bytes);
        return -1;
    }
    uint16_t *s = r->frame.samples;
    if (r->info.depth == 8) {
        for (size_t i = 0; i < n; i++)
            s[i] = dst[i];
    } else if (!host_is_little_endian()) {
        for (size_t i = 0; i < n; i++)
            s[i] = (uint16_t)(bytes[2 * i] | bytes[2 * i + 1] << 8);
    }
    if (r->info.depth == 10 || r->info.depth == 12) {
        /* Stray high bits would break every consumer's range assumption: clamp them. */
        const uint16_t max = (uint16_t)((1u << r->info.depth) - 1);
        for (size_t i = 0; i < n; i++)
            s[i] = s[i] > max ? max : s[i];
    }
    return 1;
}

int y4m_reader_next(lr_ctx *ctx, y4m_reader *r, y4m_frame **frame)
{
    *frame = NULL;
    if (r->failed)
        return lr_fail(ctx, LR_ERR_DATA, "the Y4M reader stopped after an error"), -1;
    int64_t number = r->frames + 1;
    char line[Y4M_MAX_LINE];
    size_t len;
    int rc = read_line(r, line, &len);
    if (rc == -1 && src_error(r)) {
        r->failed = true;
        lr_fail(ctx, LR_ERR_IO, "read error in frame %" PRId64 ": %s", number, strerror(errno));
        return -1;
    }
    if (rc == -1 && len == 0)
        return 0;
    bool frame_line = len >= 5 && memcmp(line, "FRAME", 5) == 0 && (len == 5 || line[5] == ' ');
    if (rc == -2 && memcmp(line, "FRAME", 5) == 0 && line[5] == ' ') {
        r->failed = true;
        lr_fail(ctx, LR_ERR_DATA, "frame %" PRId64 ": FRAME line longer than %d bytes", number,
                Y4M_MAX_LINE);
        return -1;
    }
    if (rc == -1 && (frame_line || (len < 5 && memcmp(line, "FRAME", len) == 0))) {
        r->failed = true;
        lr_fail(ctx, LR_ERR_DATA, "truncated frame %" PRId64 " (in its FRAME line)", number);
        return -1;
    }
    if (!frame_line) {
        r->failed = true;
        char shown[17];
        size_t n = len > 16 ? 16 : len;
        for (size_t i = 0; i < n; i++)
            shown[i] = line[i] >= ' ' && line[i] <= '~' ? line[i] : '?';
        shown[n] = 0;
        lr_fail(ctx, LR_ERR_DATA, "frame %" PRId64 ": expected FRAME, got '%s'", number, shown);
        return -1;
    }
    if (read_planes(ctx, r, number) < 0)
        return -1;
    r->frames = number;
    *frame = &r->frame;
    return 1;
}

/* ---- Writing ---- */

lr_status y4m_write_header(lr_ctx *ctx, FILE *f, const y4m_info *info)
{
    if (fprintf(f, "YUV4MPEG2 W%d H%d F%d:%d I%c A%d:%d C%s%s\n", info->width, info->height,
                info->fps_num, info->fps_den, info->interlace, info->sar_num, info->sar_den,
                info->chroma, info->full_range ? " XCOLORRANGE=FULL" : "") < 0)
        return lr_fail(ctx, LR_ERR_IO, "write error: %s", strerror(errno));
    return LR_OK;
}

lr_status y4m_write_frame(lr_ctx *ctx, FILE *f, const y4m_info *info, const y4m_frame *frame)
{
    int64_t w[3], h[3];
    int planes = plane_shapes(info, w, h);
    if (frame->planes != planes)
        return lr_fail(ctx, LR_ERR_ARG, "Y4M frame has %d planes, the stream %d", frame->planes,
                       planes);
    for (int p = 0; p < planes; p++)
        if (frame->width[p] != w[p] || frame->height[p] != h[p])
            return lr_fail(ctx, LR_ERR_ARG, "Y4M frame plane %d is %dx%d, the stream's %dx%d", p,
                           frame->width[p], frame->height[p], (int)w[p], (int)h[p]);
    if (fputs("FRAME\n", f) == EOF)
        return lr_fail(ctx, LR_ERR_IO, "write error: %s", strerror(errno));
    const unsigned max = (1u << info->depth) - 1;
    const bool wide = info->depth > 8;
    unsigned char buf[8192];
    size_t fill = 0;
    for (int p = 0; p < planes; p++) {
        size_t n = (size_t)w[p] * (size_t)h[p];
        const uint16_t *s = frame->plane[p];
        for (size_t i = 0; i < n; i++) {
            unsigned v = s[i] > max ? max : s[i];
            if (wide) {
                buf[fill++] = (unsigned char)(v & 0xff);
                buf[fill++] = (unsigned char)(v >> 8);
            } else {
                buf[fill++] = (unsigned char)v;
            }
            if (fill + 2 > sizeof buf) {
                if (fwrite(buf, 1, fill, f) != fill)
                    return lr_fail(ctx, LR_ERR_IO, "write error: %s", strerror(errno));
                fill = 0;
            }
        }
    }
    if (fill && fwrite(buf, 1, fill, f) != fill)
        return lr_fail(ctx, LR_ERR_IO, "write error: %s", strerror(errno));
    return LR_OK;
}

/* ---- Colour ---- */

typedef struct {
    float kr, kb;
    float y_off, y_scale, c_off, c_scale; /* in sample units at the frame's depth */
    float max;
} colour;

static colour colour_of(const y4m_info *info, y4m_matrix matrix)
{
    colour c;
    c.kr = matrix == Y4M_BT709 ? 0.2126f : 0.299f;
    c.kb = matrix == Y4M_BT709 ? 0.0722f : 0.114f;
    float s = (float)(1 << (info->depth - 8));
    c.max = (float)((1 << info->depth) - 1);
    c.y_off = info->full_range ? 0 : 16 * s;
    c.y_scale = info->full_range ? c.max : 219 * s;
    c.c_off = 128 * s;
    c.c_scale = info->full_range ? c.max : 224 * s;
    return c;
}

static float clamp01(float v) { return v < 0 ? 0 : v > 1 ? 1 : v; }

/* The chroma index pair and weight of the second for luma coordinate x along an axis that is
 * subsampled by 2 with chroma sample i at 2i + offset, n chroma samples. */
static void chroma_tap(int x, float offset, int n, int *i0, int *i1, float *w1)
{
    float u = ((float)x - offset) / 2.0f;
    int lo = (int)floorf(u);
    float f = u - (float)lo;
    int hi = lo + 1;
    if (lo < 0)
        lo = 0;
    if (lo > n - 1)
        lo = n - 1;
    if (hi < 0)
        hi = 0;
    if (hi > n - 1)
        hi = n - 1;
    *i0 = lo;
    *i1 = hi;
    *w1 = f;
}

/* Chroma value (Pb or Pr in -0.5..0.5 units) of plane p at luma (x, y). */
static float chroma_at(const y4m_info *info, const y4m_frame *fr, int p, int x, int y,
                       y4m_upsample up, const colour *c)
{
    const uint16_t *pl = fr->plane[p];
    int cw = fr->width[p], ch = fr->height[p];
    bool sub_x = info->subsampling != Y4M_444, sub_y = info->subsampling == Y4M_420;
    float v;
    if (up == Y4M_UPSAMPLE_NEAREST || !(sub_x || sub_y)) {
        int cx = sub_x ? x / 2 : x, cy = sub_y ? y / 2 : y;
        v = pl[(size_t)cy * cw + cx];
    } else {
        int x0 = x, x1 = x, y0 = y, y1 = y;
        float wx = 0, wy = 0;
        if (sub_x)
            chroma_tap(x, info->siting == Y4M_SITING_CENTRED ? 0.5f : 0.0f, cw, &x0, &x1, &wx);
        if (sub_y)
            chroma_tap(y, info->siting == Y4M_SITING_TOPLEFT ? 0.0f : 0.5f, ch, &y0, &y1, &wy);
        float a = pl[(size_t)y0 * cw + x0], b = pl[(size_t)y0 * cw + x1];
        float d = pl[(size_t)y1 * cw + x0], e = pl[(size_t)y1 * cw + x1];
        float top = a + (b - a) * wx, bottom = d + (e - d) * wx;
        v = top + (bottom - top) * wy;
    }
    return (v - c->c_off) / c->c_scale;
}

void y4m_frame_to_rgb(const y4m_info *info, const y4m_frame *frame, y4m_matrix matrix,
                      y4m_upsample upsample, float *rgb)
{
    colour c = colour_of(info, matrix);
    int w = info->width, h = info->height;
    size_t plane = (size_t)w * (size_t)h;
    float kg = 1 - c.kr - c.kb;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            size_t i = (size_t)y * w + x;
            float yy = ((float)frame->plane[0][i] - c.y_off) / c.y_scale;
            float r = yy, g = yy, b = yy;
            if (frame->planes == 3) {
                float pb = chroma_at(info, frame, 1, x, y, upsample, &c);
                float pr = chroma_at(info, frame, 2, x, y, upsample, &c);
                r = yy + 2 * (1 - c.kr) * pr;
                b = yy + 2 * (1 - c.kb) * pb;
                g = (yy - c.kr * r - c.kb * b) / kg;
            }
            rgb[i] = clamp01(r);
            rgb[plane + i] = clamp01(g);
            rgb[2 * plane + i] = clamp01(b);
        }
}

static uint16_t quantise(float v, float max)
{
    v = roundf(v);
    return (uint16_t)(v < 0 ? 0 : v > max ? max : v);
}

void y4m_frame_from_rgb(const y4m_info *info, const float *rgb, y4m_matrix matrix,
                        y4m_frame *frame)
{
    colour c = colour_of(info, matrix);
    int w = info->width, h = info->height;
    size_t plane = (size_t)w * (size_t)h;
    const float *R = rgb, *G = rgb + plane, *B = rgb + 2 * plane;
    for (size_t i = 0; i < plane; i++) {
        float yy = c.kr * R[i] + (1 - c.kr - c.kb) * G[i] + c.kb * B[i];
        frame->plane[0][i] = quantise(c.y_off + c.y_scale * yy, c.max);
    }
    if (frame->planes != 3)
        return;
    int fx = info->subsampling == Y4M_444 ? 1 : 2, fy = info->subsampling == Y4M_420 ? 2 : 1;
    int cw = frame->width[1], ch = frame->height[1];
    for (int cy = 0; cy < ch; cy++)
        for (int cx = 0; cx < cw; cx++) {
            float r = 0, g = 0, b = 0;
            int n = 0;
            for (int y = cy * fy; y < cy * fy + fy && y < h; y++)
                for (int x = cx * fx; x < cx * fx + fx && x < w; x++) {
                    size_t i = (size_t)y * w + x;
                    r += R[i], g += G[i], b += B[i];
                    n++;
                }
            r /= (float)n, g /= (float)n, b /= (float)n;
            float yy = c.kr * r + (1 - c.kr - c.kb) * g + c.kb * b;
            float pb = (b - yy) / (2 * (1 - c.kb)), pr = (r - yy) / (2 * (1 - c.kr));
            size_t o = (size_t)cy * cw + cx;
            frame->plane[1][o] = quantise(c.c_off + c.c_scale * pb, c.max);
            frame->plane[2][o] = quantise(c.c_off + c.c_scale * pr, c.max);
        }
}
