/* libFuzzer target for the FASTA/FASTQ reader (cmd/common/fasta), over the memory reader.
 * Every record must be well formed (an id without blanks, a sequence of accepted characters
 * within the length limit, a quality of the same length), every error one line, record numbers
 * consecutive, the end final. And the readings must agree with one another: windows of 1 and 3
 * bytes read as the default does; gzip of the input, in one member or three, reads as the input
 * itself; allow_empty only adds empty records; a small length limit only turns the longer
 * records into errors. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "fasta.h"

/* As in fuzz.h, which this target does not include: it needs no libcore context. */
#define EXPECT(cond) \
    do {             \
        if (!(cond)) \
            abort(); \
    } while (0)

#define SMALL_LIMIT 16

typedef struct {
    char *s;
    size_t len, cap;
} str;

static void put(str *t, const void *s, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 256;
        while (cap < t->len + n + 1)
            cap *= 2;
        t->s = realloc(t->s, cap);
        EXPECT(t->s);
        t->cap = cap;
    }
    memcpy(t->s + t->len, s, n);
    t->len += n;
    t->s[t->len] = '\0';
}

static void puts_(str *t, const char *s) { put(t, s, strlen(s)); }

static bool seq_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '-' || c == '.' || c == '*';
}

static void check_record(const fasta_record *rec, const fasta_options *opt)
{
    int64_t limit = opt->max_length > 0 ? opt->max_length : FASTA_DEFAULT_MAX_LENGTH;
    EXPECT(rec->id && rec->description && rec->seq);
    size_t id_len = strlen(rec->id);
    EXPECT(id_len > 0 && id_len <= FASTA_MAX_HEADER);
    for (size_t i = 0; i < id_len; i++) {
        unsigned char c = (unsigned char)rec->id[i];
        EXPECT(c > 0x20 && c != 0x7f);
    }
    size_t d = strlen(rec->description);
    for (size_t i = 0; i < d; i++) {
        unsigned char c = (unsigned char)rec->description[i];
        EXPECT((c >= 0x20 || c == '\t') && c != 0x7f);
    }
    EXPECT(d == 0 || (rec->description[0] != ' ' && rec->description[0] != '\t' &&
                      rec->description[d - 1] != ' ' && rec->description[d - 1] != '\t'));
    EXPECT(rec->length >= (opt->allow_empty ? 0 : 1) && rec->length <= limit);
    EXPECT(rec->seq[rec->length] == '\0');
    for (int64_t i = 0; i < rec->length; i++)
        EXPECT(seq_char((unsigned char)rec->seq[i]));
    if (rec->quality) {
        EXPECT(opt->keep_quality && (int64_t)strlen(rec->quality) == rec->length);
        for (int64_t i = 0; i < rec->length; i++)
            EXPECT(rec->quality[i] >= '!' && rec->quality[i] <= '~');
    }
    EXPECT(rec->line >= 1);
}

static void check_error(const char *msg)
{
    size_t len = strlen(msg);
    EXPECT(len > 0 && len < 512);
    EXPECT(strchr(msg, '\n') == NULL && strchr(msg, '\r') == NULL);
}

/* Reads everything; returns the transcript (records whose length is within [min, max], and
 * the errors when errors is set). Caller frees. */
static char *read_all(const void *data, size_t size, const fasta_options *opt, int64_t min,
                      int64_t max, bool errors)
{
    fasta_reader *r = fasta_open_buffer(data, size, opt);
    EXPECT(r);
    str t = {0};
    puts_(&t, "");
    fasta_record rec;
    int rc;
    int64_t number = 0;
    while ((rc = fasta_next(r, &rec)) != 0) {
        EXPECT(rc == 1 || rc == -1);
        if (rc < 0) {
            check_error(fasta_error(r));
            /* A record-level error is a record; a stream-level one may be outside any. */
            if (!fasta_fatal(r))
                EXPECT(rec.number == ++number);
            else
                EXPECT(rec.number == 0 || rec.number == number + 1);
            EXPECT(rec.seq == NULL && rec.id && rec.description);
            if (errors) {
                puts_(&t, fasta_fatal(r) ? "F " : "E ");
                puts_(&t, fasta_error(r));
                puts_(&t, "\n");
            }
            continue;
        }
        EXPECT(!fasta_fatal(r) && fasta_error(r)[0] == '\0');
        EXPECT(rec.number == ++number);
        check_record(&rec, opt);
        EXPECT(fasta_get_format(r) != FASTA_FORMAT_UNKNOWN);
        if (rec.length < min || rec.length > max)
            continue;
        puts_(&t, rec.id);
        puts_(&t, "|");
        puts_(&t, rec.description);
        puts_(&t, "|");
        put(&t, rec.seq, (size_t)rec.length);
        if (rec.quality) {
            puts_(&t, "|");
            puts_(&t, rec.quality);
        }
        puts_(&t, "\n");
    }
    EXPECT(fasta_next(r, &rec) == 0 && fasta_next(r, &rec) == 0);
    fasta_close(r);
    return t.s;
}

/* gzip of data, cut into members at the given offsets (increasing, within size). */
static unsigned char *gzip_members(const uint8_t *data, size_t size, const size_t *cuts,
                                   int n_cuts, size_t *out_size)
{
    str t = {0};
    puts_(&t, "");
    size_t from = 0;
    for (int m = 0; m <= n_cuts; m++) {
        size_t to = m < n_cuts ? cuts[m] : size;
        z_stream zs;
        memset(&zs, 0, sizeof zs);
        EXPECT(deflateInit2(&zs, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
        unsigned char buf[8192];
        zs.next_in = (unsigned char *)data + from;
        zs.avail_in = (uInt)(to - from);
        int ret;
        do {
            zs.next_out = buf;
            zs.avail_out = sizeof buf;
            ret = deflate(&zs, Z_FINISH);
            EXPECT(ret == Z_OK || ret == Z_STREAM_END);
            put(&t, buf, sizeof buf - zs.avail_out);
        } while (ret == Z_OK);
        deflateEnd(&zs);
        from = to;
    }
    *out_size = t.len;
    return (unsigned char *)t.s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const int64_t all = INT64_MAX;
    fasta_options keep = {.keep_quality = true};
    char *base = read_all(data, size, &keep, 0, all, true);

    /* Any window size reads the same. */
    static const size_t windows[] = {1, 3};
    for (size_t i = 0; i < sizeof windows / sizeof windows[0]; i++) {
        fasta_options o = keep;
        o.buffer_size = windows[i];
        char *t = read_all(data, size, &o, 0, all, true);
        EXPECT(strcmp(t, base) == 0);
        free(t);
    }

    /* allow_empty adds empty records and nothing else. */
    fasta_options empty = {.keep_quality = true, .allow_empty = true};
    char *a = read_all(data, size, &keep, 1, all, false);
    char *b = read_all(data, size, &empty, 1, all, false);
    EXPECT(strcmp(a, b) == 0);
    free(b);

    /* A small limit keeps exactly the records within it. */
    fasta_options small = {.keep_quality = true, .max_length = SMALL_LIMIT};
    b = read_all(data, size, &small, 0, all, false);
    char *c = read_all(data, size, &keep, 0, SMALL_LIMIT, false);
    EXPECT(strcmp(b, c) == 0);
    free(a);
    free(b);
    free(c);

    /* gzip of the input reads as the input, unless the input means something else compressed:
     * gzip itself, or the bzip2/xz/zstd magic numbers refused only on the raw stream. */
    bool magic = size >= 2 && ((data[0] == 0x1f && data[1] == 0x8b) ||
                               (size >= 3 && !memcmp(data, "BZh", 3)) ||
                               (size >= 5 && !memcmp(data, "\xfd" "7zXZ", 5)) ||
                               (size >= 4 && !memcmp(data, "\x28\xb5\x2f\xfd", 4)));
    if (!magic && size <= 65536) {
        size_t cuts[2] = {size / 3, 2 * size / 3};
        for (int n_cuts = 0; n_cuts <= 2; n_cuts += 2) {
            size_t gz_size;
            unsigned char *gz = gzip_members(data, size, cuts, n_cuts, &gz_size);
            fasta_options o = keep;
            o.buffer_size = n_cuts ? 5 : 0;
            char *t = read_all(gz, gz_size, &o, 0, all, true);
            EXPECT(strcmp(t, base) == 0);
            free(t);
            /* Cut short: the same up to a truncation error. (One member only: a cut between
             * members leaves a valid gzip stream.) */
            if (n_cuts == 0 && gz_size > 2) {
                size_t cut = 2 + size % (gz_size - 2);
                t = read_all(gz, cut, &o, 0, all, true);
                char *last = strrchr(t, '\n');
                EXPECT(last);
                *last = '\0';
                char *line = strrchr(t, '\n');
                line = line ? line + 1 : t;
                if (strncmp(line, "F truncated gzip input", 22) == 0) {
                    EXPECT(strncmp(t, base, (size_t)(line - t)) == 0);
                } else { /* a stream-level error before the cut ends both readings */
                    *last = '\n';
                    EXPECT(line[0] == 'F' && strcmp(t, base) == 0);
                }
                free(t);
            }
            free(gz);
        }
    }
    free(base);
    return 0;
}
