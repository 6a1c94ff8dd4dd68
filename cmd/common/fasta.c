/* Streaming FASTA/FASTQ reader (see fasta.h).
 *
 * Three layers: raw bytes (fread chunks, or windows of the caller's memory), decoded bytes
 * (the raw ones, or zlib's inflate of them into a buffer), and the parser, which only ever
 * looks at the window [p, end) of decoded bytes and asks more() for the next one. Nothing
 * assumes a line fits in a window: every scanner keeps its state across windows, which is why
 * the tests read the same inputs with windows of 1, 2, 3 ... bytes. */
#include "fasta.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define ZLIB_CONST
#include <zlib.h>

#define MSG_MAX 512
#define SHOWN_MAX 40
#define DEFAULT_BUFFER 65536
#define MAX_INFLATE_IN ((size_t)1 << 30) /* zlib counts input in uInt */

typedef struct {
    char *data;
    size_t len, cap;
} buffer;

struct fasta_reader {
    fasta_options opt;
    /* raw input: a FILE or memory */
    FILE *f;
    const unsigned char *mem;
    size_t mem_size, mem_pos;
    size_t chunk;             /* raw bytes per read */
    unsigned char *raw;       /* FILE reads */
    size_t raw_cap;
    const unsigned char *pend; /* the first read, made to look at the magic bytes */
    size_t pend_len;
    bool started, raw_eof;
    /* gzip */
    bool gz, zs_live, member_done;
    int64_t members; /* gzip members started */
    bool gz_failed, gz_junk; /* inflate failed (reported after the bytes before the damage) */
    char gz_msg[128];
    z_stream zs;
    unsigned char *out;
    size_t out_cap;
    /* decoded window */
    const unsigned char *p, *end;
    bool eof, fatal;
    int64_t line; /* the line of *p */
    /* parser */
    fasta_format format;
    bool bad;                 /* this record has an error (the message is set) */
    bool in_record, id_known; /* for the context of stream errors */
    int64_t number;           /* of the current or last record */
    int64_t rec_line;         /* its header's line */
    buffer hdr;               /* the header line as read (trimmed) */
    buffer names;             /* "id\0description\0" */
    buffer plus;              /* a FASTQ '+' line */
    buffer seq, qual;
    int64_t qual_count;       /* quality characters, stored or not */
    char msg[MSG_MAX];
};

/* ---- messages ---- */

typedef struct {
    char s[SHOWN_MAX + 4];
} shown;

/* Input text for a message: control bytes as '?', cut after SHOWN_MAX bytes. */
static shown show(const char *s, size_t len)
{
    shown out;
    size_t n = len < SHOWN_MAX ? len : SHOWN_MAX;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        out.s[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    if (len > SHOWN_MAX)
        memcpy(out.s + n, "...", 3), n += 3;
    out.s[n] = '\0';
    return out;
}

/* One input byte, quoted: 'c', '\t', '\r' or '\x01'. */
typedef struct {
    char s[8];
} shown_char;

static shown_char show_char(int c)
{
    shown_char out;
    if (c == '\t')
        snprintf(out.s, sizeof out.s, "'\\t'");
    else if (c == '\r')
        snprintf(out.s, sizeof out.s, "'\\r'");
    else if (c >= 0x20 && c < 0x7f)
        snprintf(out.s, sizeof out.s, "'%c'", c);
    else
        snprintf(out.s, sizeof out.s, "'\\x%02x'", (unsigned)c & 0xff);
    return out;
}

/* "record N ('id'), line L: ", "record N, line L: ", "record N ('id'): " or "line L: ". */
static int record_prefix(const fasta_reader *r, int64_t line, char *buf, size_t size)
{
    char rec[SHOWN_MAX + 48] = "";
    if (r->in_record && r->id_known)
        snprintf(rec, sizeof rec, "record %lld ('%s')", (long long)r->number,
                 show(r->names.data, strlen(r->names.data)).s);
    else if (r->in_record)
        snprintf(rec, sizeof rec, "record %lld", (long long)r->number);
    int n;
    if (rec[0] && line > 0)
        n = snprintf(buf, size, "%s, line %lld: ", rec, (long long)line);
    else if (rec[0])
        n = snprintf(buf, size, "%s: ", rec);
    else if (line > 0)
        n = snprintf(buf, size, "line %lld: ", (long long)line);
    else
        n = snprintf(buf, size, "%s", "");
    return n < 0 || (size_t)n >= size ? 0 : n;
}

static void vset(fasta_reader *r, int64_t line, const char *fmt, va_list ap)
{
    int n = record_prefix(r, line, r->msg, MSG_MAX);
    vsnprintf(r->msg + n, MSG_MAX - (size_t)n, fmt, ap);
}

/* A record-level error: the first one of the record is kept. */
static void rec_fail(fasta_reader *r, int64_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void rec_fail(fasta_reader *r, int64_t line, const char *fmt, ...)
{
    if (r->bad)
        return;
    r->bad = true;
    va_list ap;
    va_start(ap, fmt);
    vset(r, line, fmt, ap);
    va_end(ap);
}

/* A stream-level error: replaces any record-level one and stops the reader. */
static void fatal(fasta_reader *r, int64_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fatal(fasta_reader *r, int64_t line, const char *fmt, ...)
{
    if (r->fatal)
        return;
    r->fatal = r->bad = true;
    va_list ap;
    va_start(ap, fmt);
    vset(r, line, fmt, ap);
    va_end(ap);
}

/* An error of the input stream (I/O, gzip), placed by the record being read:
 * "what in record 7 ('x')", "what after record 6 ('y')" or just "what". */
static void source_fail(fasta_reader *r, const char *what, const char *detail)
{
    if (r->fatal)
        return;
    char where[SHOWN_MAX + 48] = "";
    if (r->number > 0) {
        const char *rel = r->in_record ? "in" : "after";
        if (r->id_known)
            snprintf(where, sizeof where, " %s record %lld ('%s')", rel, (long long)r->number,
                     show(r->names.data, strlen(r->names.data)).s);
        else
            snprintf(where, sizeof where, " %s record %lld", rel, (long long)r->number);
    }
    snprintf(r->msg, MSG_MAX, "%s%s%s%s%s", what, where, detail ? " (" : "", detail ? detail : "",
             detail ? ")" : "");
    r->fatal = r->bad = true;
}

/* ---- raw and decoded bytes ---- */

/* The next raw chunk: 1, 0 at the end, -1 on a read error (reported). */
static int raw_read(fasta_reader *r, const unsigned char **data, size_t *len)
{
    if (r->pend) {
        *data = r->pend;
        *len = r->pend_len;
        r->pend = NULL;
        return 1;
    }
    if (r->mem) {
        if (r->mem_pos == r->mem_size)
            return 0;
        size_t n = r->mem_size - r->mem_pos;
        if (n > r->chunk)
            n = r->chunk;
        *data = r->mem + r->mem_pos;
        *len = n;
        r->mem_pos += n;
        return 1;
    }
    errno = 0;
    size_t got = fread(r->raw, 1, r->chunk, r->f);
    if (got > 0) {
        *data = r->raw;
        *len = got;
        return 1;
    }
    if (ferror(r->f)) {
        int e = errno;
        source_fail(r, "read error", strerror(e ? e : EIO));
        return -1;
    }
    return 0;
}

static bool starts_with(const unsigned char *s, size_t n, const char *magic, size_t m)
{
    return n >= m && memcmp(s, magic, m) == 0;
}

/* Looks at the first bytes: gzip or plain (other compressors are refused). */
static void start(fasta_reader *r)
{
    r->started = true;
    const unsigned char *head;
    size_t n;
    if (r->mem) {
        head = r->mem;
        n = r->mem_size;
    } else {
        /* One read of at least 8 bytes, handed to the decoder as the first chunk. */
        errno = 0;
        size_t got = fread(r->raw, 1, r->raw_cap, r->f);
        if (got == 0 && ferror(r->f)) {
            int e = errno;
            source_fail(r, "read error", strerror(e ? e : EIO));
            return;
        }
        head = r->raw;
        n = got;
        if (got > 0) {
            r->pend = r->raw;
            r->pend_len = got;
        }
    }
    static const struct {
        const char *magic;
        size_t len;
        const char *name;
    } refused[] = {
        {"BZh", 3, "bzip2"},
        {"\xfd" "7zXZ", 5, "xz"},
        {"\x28\xb5\x2f\xfd", 4, "zstd"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        if (starts_with(head, n, refused[i].magic, refused[i].len)) {
            fatal(r, 0, "%s-compressed input: only gzip is read (decompress it first)",
                  refused[i].name);
            return;
        }
    if (!starts_with(head, n, "\x1f\x8b", 2))
        return;
    r->gz = true;
    r->out_cap = r->opt.buffer_size ? r->opt.buffer_size : DEFAULT_BUFFER;
    r->out = malloc(r->out_cap);
    memset(&r->zs, 0, sizeof r->zs);
    if (!r->out || inflateInit2(&r->zs, 15 + 16) != Z_OK) {
        fatal(r, 0, "out of memory");
        return;
    }
    r->zs_live = true;
    r->members = 1;
}

/* Inflates the next decoded bytes into the window. */
static void gz_refill(fasta_reader *r)
{
    for (;;) {
        if (r->gz_failed) {
            if (r->gz_junk)
                source_fail(r, "data that is not gzip after the gzip input", NULL);
            else
                source_fail(r, "corrupt gzip input", r->gz_msg);
            return;
        }
        if (r->zs.avail_in == 0 && !r->raw_eof) {
            const unsigned char *d;
            size_t n;
            int rc = raw_read(r, &d, &n);
            if (rc < 0)
                return;
            if (rc == 0) {
                r->raw_eof = true;
            } else {
                r->zs.next_in = d;
                r->zs.avail_in = (uInt)n;
            }
        }
        if (r->member_done) {
            if (r->zs.avail_in == 0) {
                if (r->raw_eof) {
                    r->eof = true;
                    return;
                }
                continue;
            }
            /* Another member follows (bgzip, cat a.gz b.gz). */
            if (inflateReset(&r->zs) != Z_OK) {
                source_fail(r, "corrupt gzip input", NULL);
                return;
            }
            r->member_done = false;
            r->members++;
        }
        r->zs.next_out = r->out;
        r->zs.avail_out = (uInt)r->out_cap;
        int ret = inflate(&r->zs, Z_NO_FLUSH);
        size_t produced = r->out_cap - r->zs.avail_out;
        if (ret == Z_STREAM_END) {
            r->member_done = true;
        } else if (ret == Z_BUF_ERROR) {
            /* No progress: needs input, and there is none left. */
            if (r->raw_eof) {
                source_fail(r, "truncated gzip input", NULL);
                return;
            }
        } else if (ret == Z_MEM_ERROR) {
            source_fail(r, "out of memory while decompressing", NULL);
            return;
        } else if (ret != Z_OK) {
            /* The bytes inflated before the damage go to the parser first, so that what it
             * sees does not depend on the buffer size; the error comes with the next refill. */
            r->gz_failed = true;
            /* A member after the first that fails before giving a byte is not gzip at all. */
            r->gz_junk = r->members > 1 && r->zs.total_out == 0;
            snprintf(r->gz_msg, sizeof r->gz_msg, "%s", r->zs.msg ? r->zs.msg : "invalid data");
        }
        if (produced > 0) {
            r->p = r->out;
            r->end = r->out + produced;
            return;
        }
    }
}

/* Makes at least one decoded byte available at r->p; false at the end of the input or after a
 * stream-level error. */
static bool more(fasta_reader *r)
{
    while (r->p == r->end) {
        if (r->eof || r->fatal)
            return false;
        if (!r->started) {
            start(r);
            continue;
        }
        if (r->gz) {
            gz_refill(r);
            continue;
        }
        const unsigned char *d;
        size_t n;
        int rc = raw_read(r, &d, &n);
        if (rc < 0)
            return false;
        if (rc == 0) {
            r->eof = true;
        } else {
            r->p = d;
            r->end = d + n;
        }
    }
    return true;
}

/* ---- buffers ---- */

/* Room for need bytes, growing geometrically but never past limit (>= need). */
static bool reserve(buffer *b, size_t need, size_t limit)
{
    if (need <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? SIZE_MAX : 2 * cap;
    if (cap > limit)
        cap = limit;
    char *d = realloc(b->data, cap);
    if (!d)
        return false;
    b->data = d;
    b->cap = cap;
    return true;
}

static void seq_add(fasta_reader *r, const unsigned char *s, size_t n, int64_t line)
{
    if (r->bad)
        return;
    size_t max = (size_t)r->opt.max_length;
    if (n > max - r->seq.len) {
        rec_fail(r, line, "sequence longer than the limit of %lld bases",
                 (long long)r->opt.max_length);
        return;
    }
    if (!reserve(&r->seq, r->seq.len + n + 1, max + 1)) {
        fatal(r, line, "out of memory (a sequence of %zu bases)", r->seq.len + n);
        return;
    }
    memcpy(r->seq.data + r->seq.len, s, n);
    r->seq.len += n;
}

/* Counts quality characters; keeps at most as many as there are bases (more is an error). */
static void qual_add(fasta_reader *r, const unsigned char *s, size_t n, int64_t line)
{
    r->qual_count += (int64_t)n;
    if (r->bad || !r->opt.keep_quality || r->qual.len >= r->seq.len)
        return;
    size_t room = r->seq.len - r->qual.len;
    if (n > room)
        n = room;
    if (!reserve(&r->qual, r->qual.len + n + 1, r->seq.len + 1)) {
        fatal(r, line, "out of memory (a quality of %zu characters)", r->qual.len + n);
        return;
    }
    memcpy(r->qual.data + r->qual.len, s, n);
    r->qual.len += n;
}

/* ---- lines ---- */

static bool is_blank(unsigned c) { return c == ' ' || c == '\t' || c == '\r'; }

static bool is_seq_char(unsigned c)
{
    return (c | 0x20) - 'a' < 26u || c == '-' || c == '.' || c == '*';
}

static bool is_qual_char(unsigned c) { return c >= '!' && c <= '~'; }

/* Consumes the rest of the line, its line end included. */
static void skip_line(fasta_reader *r)
{
    while (more(r)) {
        const unsigned char *nl = memchr(r->p, '\n', (size_t)(r->end - r->p));
        if (nl) {
            r->p = nl + 1;
            r->line++;
            return;
        }
        r->p = r->end;
    }
}

/* Skips blank lines. Returns the first byte of the next line that is not blank (r->p is then at
 * its first non-blank byte), or -1 at the end of the input. */
static int skip_blank_lines(fasta_reader *r)
{
    int first = -1;
    while (more(r)) {
        unsigned c = *r->p;
        if (c == '\n') {
            r->p++;
            r->line++;
            first = -1;
            continue;
        }
        if (first < 0)
            first = (int)c;
        if (!is_blank(c))
            return first;
        r->p++;
    }
    return -1;
}

enum { LINE_SEQ, LINE_QUAL };

/* Reads a sequence or quality line from r->p through its line end: the characters of the kind,
 * then optionally blanks. After an error the rest of the line is only skipped. */
static void data_line(fasta_reader *r, int kind)
{
    int64_t line = r->line;
    int blank = -1; /* the first blank seen: only blanks may follow it */
    while (more(r)) {
        if (r->bad) {
            skip_line(r);
            return;
        }
        const unsigned char *p = r->p, *end = r->end;
        if (blank < 0) {
            const unsigned char *q = p;
            if (kind == LINE_SEQ)
                while (q < end && is_seq_char(*q))
                    q++;
            else
                while (q < end && is_qual_char(*q))
                    q++;
            if (q > p) {
                r->p = q;
                if (kind == LINE_SEQ)
                    seq_add(r, p, (size_t)(q - p), line);
                else
                    qual_add(r, p, (size_t)(q - p), line);
                continue;
            }
        }
        unsigned c = *p;
        r->p = p + 1;
        if (c == '\n') {
            r->line++;
            return;
        }
        if (is_blank(c)) {
            if (blank < 0)
                blank = (int)c;
            continue;
        }
        rec_fail(r, line, "unexpected character %s in the %s",
                 show_char(blank >= 0 ? blank : (int)c).s,
                 kind == LINE_SEQ ? "sequence" : "quality");
        r->p = p; /* c is not a line end: skip_line goes on from it */
    }
}

/* Reads the rest of a line into b, without its line end and trailing blanks. False when it is
 * longer than FASTA_MAX_HEADER (b then holds a prefix; the line is consumed all the same). */
static bool text_line(fasta_reader *r, buffer *b)
{
    b->len = 0;
    if (!reserve(b, 1, FASTA_MAX_HEADER + 1)) {
        fatal(r, r->line, "out of memory");
        return false;
    }
    bool ok = true;
    while (more(r)) {
        const unsigned char *p = r->p, *end = r->end;
        const unsigned char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((nl ? nl : end) - p);
        if (ok && n > FASTA_MAX_HEADER - b->len) {
            ok = false;
        } else if (ok) {
            if (!reserve(b, b->len + n + 1, FASTA_MAX_HEADER + 1)) {
                fatal(r, r->line, "out of memory");
                return false;
            }
            memcpy(b->data + b->len, p, n);
            b->len += n;
        }
        r->p = nl ? nl + 1 : end;
        if (nl) {
            r->line++;
            break;
        }
    }
    while (b->len > 0 && is_blank((unsigned char)b->data[b->len - 1]))
        b->len--;
    b->data[b->len] = '\0';
    return ok;
}

/* Reads a header line (after its '>' or '@') and splits it into r->names. */
static void header(fasta_reader *r)
{
    int64_t line = r->line;
    if (!text_line(r, &r->hdr)) {
        rec_fail(r, line, "header longer than %d bytes", FASTA_MAX_HEADER);
        return;
    }
    const char *h = r->hdr.data;
    size_t n = r->hdr.len;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)h[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            rec_fail(r, line, "unexpected character %s in the header", show_char(c).s);
            return;
        }
    }
    size_t id_len = 0;
    while (id_len < n && h[id_len] != ' ' && h[id_len] != '\t')
        id_len++;
    if (id_len == 0) {
        rec_fail(r, line, "header without an id");
        return;
    }
    size_t d = id_len;
    while (d < n && (h[d] == ' ' || h[d] == '\t'))
        d++;
    if (!reserve(&r->names, n + 2, n + 2)) {
        fatal(r, line, "out of memory");
        return;
    }
    memcpy(r->names.data, h, id_len);
    r->names.data[id_len] = '\0';
    memcpy(r->names.data + id_len + 1, h + d, n - d);
    r->names.data[id_len + 1 + (n - d)] = '\0';
    r->id_known = true;
}

/* ---- records ---- */

/* Starts record number + 1 at its '>' or '@'. */
static void begin_record(fasta_reader *r)
{
    r->number++;
    r->rec_line = r->line;
    r->in_record = true;
    r->id_known = false;
    r->seq.len = r->qual.len = 0;
    r->qual_count = 0;
    r->p++;
    if (!reserve(&r->names, 2, 2) || !reserve(&r->seq, 1, (size_t)r->opt.max_length + 1) ||
        !reserve(&r->qual, 1, (size_t)r->opt.max_length + 1)) {
        fatal(r, r->line, "out of memory");
        return;
    }
    r->names.data[0] = r->names.data[1] = '\0';
}

static int finish(fasta_reader *r, fasta_record *rec)
{
    rec->number = r->number;
    rec->line = r->rec_line;
    if (r->names.data) {
        rec->id = r->names.data;
        rec->description = r->names.data + strlen(r->names.data) + 1;
    }
    r->in_record = false;
    if (r->bad)
        return -1;
    r->seq.data[r->seq.len] = '\0';
    rec->seq = r->seq.data;
    rec->length = (int64_t)r->seq.len;
    if (r->format == FASTA_FORMAT_FASTQ && r->opt.keep_quality) {
        r->qual.data[r->qual.len] = '\0';
        rec->quality = r->qual.data;
    }
    return 1;
}

static void check_empty(fasta_reader *r)
{
    if (r->seq.len == 0 && !r->opt.allow_empty)
        rec_fail(r, 0, "empty sequence");
}

/* At a line that starts with '>' (or at the end of the input). */
static int next_fasta(fasta_reader *r, fasta_record *rec)
{
    if (!more(r))
        return r->fatal ? -1 : 0;
    begin_record(r);
    header(r);
    while (more(r) && *r->p != '>') {
        if (*r->p == '@')
            rec_fail(r, r->line,
                     "unexpected character '@' at the start of a sequence line (FASTQ in FASTA "
                     "input?)");
        data_line(r, LINE_SEQ);
    }
    check_empty(r);
    return finish(r, rec);
}

static bool same(const buffer *b, const char *s, size_t len)
{
    return b->len == len && memcmp(b->data, s, len) == 0;
}

static int next_fastq(fasta_reader *r, fasta_record *rec)
{
    int first = skip_blank_lines(r);
    if (first < 0)
        return r->fatal ? -1 : 0;
    if (first != '@') {
        fatal(r, r->line, "expected '@' at the start of a FASTQ record, found %s%s",
              show_char(first).s, first == '>' ? " (FASTA in FASTQ input?)" : "");
        return -1;
    }
    begin_record(r);
    header(r);
    if (!more(r)) {
        fatal(r, 0, "the input ends inside the record (no sequence line)");
        return finish(r, rec);
    }
    data_line(r, LINE_SEQ);
    check_empty(r);
    if (!more(r)) {
        fatal(r, 0, "the input ends inside the record (no '+' line)");
        return finish(r, rec);
    }
    int64_t line = r->line;
    if (*r->p != '+') {
        fatal(r, line, "expected a '+' line after the sequence, found %s (wrapped FASTQ is not "
                       "read)",
              show_char(*r->p).s);
        return finish(r, rec);
    }
    r->p++;
    if (!text_line(r, &r->plus)) {
        rec_fail(r, line, "'+' line longer than %d bytes", FASTA_MAX_HEADER);
    } else if (r->plus.len > 0 && !r->bad && !same(&r->plus, r->hdr.data, r->hdr.len) &&
               !same(&r->plus, r->names.data, strlen(r->names.data))) {
        rec_fail(r, line, "the '+' line ('%s') does not repeat the header",
                 show(r->plus.data, r->plus.len).s);
    }
    line = r->line;
    if (more(r))
        data_line(r, LINE_QUAL);
    else if (!r->bad && r->seq.len > 0) /* (after an error seq.len may be partial) */
        fatal(r, 0, "the input ends inside the record (no quality line)");
    if (r->qual_count != (int64_t)r->seq.len)
        rec_fail(r, line, "quality has %lld characters for %lld bases", (long long)r->qual_count,
                 (long long)r->seq.len);
    return finish(r, rec);
}

/* Finds the format from the first line that is not blank. 1 known, 0 empty input, -1 error. */
static int detect(fasta_reader *r)
{
    if (more(r) && *r->p == 0xef) { /* a UTF-8 byte-order mark, or not text */
        static const unsigned char bom[3] = {0xef, 0xbb, 0xbf};
        for (int i = 0; i < 3; i++) {
            if (!more(r) || *r->p != bom[i]) {
                if (!r->fatal)
                    fatal(r, 1, "not FASTA or FASTQ (first character '\\xef')");
                return -1;
            }
            r->p++;
        }
    }
    int first = skip_blank_lines(r);
    if (first < 0)
        return r->fatal ? -1 : 0;
    if (first == '>')
        r->format = FASTA_FORMAT_FASTA;
    else if (first == '@')
        r->format = FASTA_FORMAT_FASTQ;
    else {
        fatal(r, r->line, "not FASTA or FASTQ (first character %s)", show_char(first).s);
        return -1;
    }
    return 1;
}

/* ---- the API ---- */

static fasta_reader *open_reader(const fasta_options *opt, size_t default_chunk)
{
    fasta_reader *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    if (opt)
        r->opt = *opt;
    if (r->opt.max_length <= 0)
        r->opt.max_length = FASTA_DEFAULT_MAX_LENGTH;
    if ((uint64_t)r->opt.max_length > SIZE_MAX / 2)
        r->opt.max_length = (int64_t)(SIZE_MAX / 2);
    if (r->opt.buffer_size > MAX_INFLATE_IN)
        r->opt.buffer_size = MAX_INFLATE_IN;
    r->chunk = r->opt.buffer_size ? r->opt.buffer_size : default_chunk;
    r->line = 1;
    return r;
}

fasta_reader *fasta_open(FILE *f, const fasta_options *opt)
{
    fasta_reader *r = open_reader(opt, DEFAULT_BUFFER);
    if (!r)
        return NULL;
    r->f = f;
    r->raw_cap = r->chunk < 8 ? 8 : r->chunk; /* the first read sees every magic number */
    r->raw = malloc(r->raw_cap);
    if (!r->raw) {
        free(r);
        return NULL;
    }
    return r;
}

fasta_reader *fasta_open_buffer(const void *data, size_t size, const fasta_options *opt)
{
    fasta_reader *r = open_reader(opt, MAX_INFLATE_IN);
    if (!r)
        return NULL;
    r->mem = data ? data : (const void *)"";
    r->mem_size = data ? size : 0;
    return r;
}

int fasta_next(fasta_reader *r, fasta_record *rec)
{
    memset(rec, 0, sizeof *rec);
    rec->id = rec->description = "";
    if (r->fatal)
        return 0;
    r->bad = false;
    r->msg[0] = '\0';
    if (r->format == FASTA_FORMAT_UNKNOWN) {
        int rc = detect(r);
        if (rc <= 0)
            return rc;
    }
    return r->format == FASTA_FORMAT_FASTA ? next_fasta(r, rec) : next_fastq(r, rec);
}

const char *fasta_error(const fasta_reader *r) { return r->msg; }

bool fasta_fatal(const fasta_reader *r) { return r->fatal; }

fasta_format fasta_get_format(const fasta_reader *r) { return r->format; }

bool fasta_is_gzip(const fasta_reader *r) { return r->gz; }

const char *fasta_format_name(fasta_format f)
{
    return f == FASTA_FORMAT_FASTA ? "FASTA" : f == FASTA_FORMAT_FASTQ ? "FASTQ" : "unknown";
}

void fasta_close(fasta_reader *r)
{
    if (!r)
        return;
    if (r->zs_live)
        inflateEnd(&r->zs);
    free(r->raw);
    free(r->out);
    free(r->hdr.data);
    free(r->names.data);
    free(r->plus.data);
    free(r->seq.data);
    free(r->qual.data);
    free(r);
}
