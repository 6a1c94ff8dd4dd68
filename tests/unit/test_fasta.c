/* cmd/common/fasta: the streaming FASTA/FASTQ reader of dna-embed. Every input is read through
 * every source (memory, a FILE, gzip in one member and in many) with windows of 1, 2, 3, 7 bytes
 * and the default, and must give the same transcript each time: records, the exact error
 * messages and the recovery after them. Then gzip damage (truncation at every byte, corruption,
 * trailing junk), pipes, a 10 Mbp line, and the real genomes of ../shared/data/dna (skipped,
 * with a note, when they are absent). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "check.h"
#include "fasta.h"

#define DATA "../shared/data/dna/"
#define FIXTURES "tests/fixtures/fasta/"

/* ---- a growable string ---- */

typedef struct {
    char *s;
    size_t len, cap;
} str;

static void put(str *t, const char *s, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 256;
        while (cap < t->len + n + 1)
            cap *= 2;
        char *g = realloc(t->s, cap);
        if (!g) {
            printf("  out of memory in the test\n");
            exit(1);
        }
        t->s = g;
        t->cap = cap;
    }
    memcpy(t->s + t->len, s, n);
    t->len += n;
    t->s[t->len] = '\0';
}

static void puts_(str *t, const char *s) { put(t, s, strlen(s)); }

/* ---- transcripts ---- */

/* Everything a reader says, one line per call until it returns 0: "id|description|sequence"
 * (and "|quality" when kept) for a record, "E message" for a record-level error and
 * "F message" for a stream-level one. Caller frees. */
static char *transcript_of(fasta_reader *r)
{
    str t = {0};
    puts_(&t, "");
    fasta_record rec;
    int rc, calls = 0;
    while ((rc = fasta_next(r, &rec)) != 0) {
        if (++calls > 100000) {
            puts_(&t, "LOOP\n");
            break;
        }
        if (rc < 0) {
            puts_(&t, fasta_fatal(r) ? "F " : "E ");
            puts_(&t, fasta_error(r));
            puts_(&t, "\n");
            continue;
        }
        if (rc != 1 || !rec.seq || (int64_t)strlen(rec.seq) > rec.length) {
            puts_(&t, "BAD RECORD\n");
            continue;
        }
        puts_(&t, rec.id);
        puts_(&t, "|");
        puts_(&t, rec.description);
        puts_(&t, "|");
        put(&t, rec.seq, (size_t)rec.length);
        if (rec.quality) {
            puts_(&t, "|");
            put(&t, rec.quality, strlen(rec.quality));
        }
        puts_(&t, "\n");
    }
    /* The end is final. */
    if (fasta_next(r, &rec) != 0 || fasta_next(r, &rec) != 0)
        puts_(&t, "NOT AT END\n");
    return t.s;
}

/* gzip of data in members of at most member bytes (0: one member). Caller frees. */
static unsigned char *gzip_bytes(const void *data, size_t size, size_t member, size_t *out_size)
{
    str t = {0};
    puts_(&t, "");
    const unsigned char *p = data;
    size_t left = size;
    do {
        size_t n = member && left > member ? member : left;
        z_stream zs;
        memset(&zs, 0, sizeof zs);
        if (deflateInit2(&zs, size > 1000000 ? 1 : 6, Z_DEFLATED, 15 + 16, 8,
                         Z_DEFAULT_STRATEGY) != Z_OK)
            exit(1);
        unsigned char chunk[16384];
        zs.next_in = (unsigned char *)p;
        zs.avail_in = (uInt)n;
        int ret;
        do {
            zs.next_out = chunk;
            zs.avail_out = sizeof chunk;
            ret = deflate(&zs, Z_FINISH);
            put(&t, (const char *)chunk, sizeof chunk - zs.avail_out);
        } while (ret == Z_OK);
        deflateEnd(&zs);
        p += n;
        left -= n;
    } while (left > 0);
    *out_size = t.len;
    return (unsigned char *)t.s;
}

/* Inputs of 1000 bytes or more get 64 members instead of members of 5 bytes. */
enum { SRC_MEM, SRC_FILE, SRC_GZ, SRC_GZ_FILE, SRC_GZ_MEMBERS, N_SRC };
static const char *const src_names[N_SRC] = {"memory", "FILE", "gzip", "gzip FILE",
                                             "gzip members of 5 bytes"};

static FILE *file_of(const void *data, size_t size)
{
    FILE *f = tmpfile();
    if (!f || fwrite(data, 1, size, f) != size || fseek(f, 0, SEEK_SET) != 0) {
        printf("  tmpfile failed\n");
        exit(1);
    }
    return f;
}

static char *transcript(const void *data, size_t size, const fasta_options *opt, int src,
                        size_t buffer)
{
    fasta_options o = opt ? *opt : (fasta_options){0};
    o.buffer_size = buffer;
    size_t gz_size = 0;
    unsigned char *gz = NULL;
    if (src >= SRC_GZ)
        gz = gzip_bytes(data, size, src == SRC_GZ_MEMBERS ? (size < 1000 ? 5 : size / 64) : 0,
                        &gz_size);
    FILE *f = NULL;
    fasta_reader *r;
    if (src == SRC_MEM)
        r = fasta_open_buffer(data, size, &o);
    else if (src == SRC_GZ || src == SRC_GZ_MEMBERS)
        r = fasta_open_buffer(gz, gz_size, &o);
    else
        r = fasta_open(f = file_of(src == SRC_FILE ? data : gz, src == SRC_FILE ? size : gz_size),
                       &o);
    char *t = transcript_of(r);
    if (src >= SRC_GZ && !fasta_is_gzip(r)) { /* gzip must be detected */
        str u = {0};
        puts_(&u, "NOT GZIP\n");
        puts_(&u, t);
        free(t);
        t = u.s;
    }
    fasta_close(r);
    if (f)
        fclose(f);
    free(gz);
    return t;
}

static const size_t buffers[] = {0, 1, 2, 3, 7};
#define N_BUFFERS (sizeof buffers / sizeof buffers[0])

/* The transcript of text through every source and window size must be expected; plain_only
 * leaves out the gzip sources (for inputs whose meaning changes when compressed). */
static void check_read_(const char *file, int line, const void *data, size_t size,
                        const fasta_options *opt, const char *expected, bool plain_only)
{
    for (int src = 0; src < N_SRC; src++) {
        if (plain_only && src >= SRC_GZ)
            break;
        for (size_t b = 0; b < N_BUFFERS; b++) {
            char *t = transcript(data, size, opt, src, buffers[b]);
            if (strcmp(t, expected) != 0) {
                if (check_failures_++ < 5)
                    printf("  %s:%d: %s, window %zu: transcript\n---- got\n%s---- want\n%s----\n",
                           file, line, src_names[src], buffers[b], t, expected);
                free(t);
                return;
            }
            free(t);
        }
    }
}

#define CHECK_READ(text, opt, expected) \
    check_read_(__FILE__, __LINE__, text, strlen(text), opt, expected, false)
#define CHECK_READ_N(text, size, opt, expected) \
    check_read_(__FILE__, __LINE__, text, size, opt, expected, false)
#define CHECK_READ_PLAIN(text, opt, expected) \
    check_read_(__FILE__, __LINE__, text, strlen(text), opt, expected, true)

static const fasta_options keep = {.keep_quality = true};

/* ---- FASTA ---- */

static void test_fasta_layouts(void)
{
    CHECK_READ("", NULL, "");
    CHECK_READ("\n\n  \t\r\n", NULL, "");
    CHECK_READ(">a x\nACGT\n>b\nAC\nGT\n", NULL, "a|x|ACGT\nb||ACGT\n");
    /* Any width, blank lines inside and between records, no final line end. */
    CHECK_READ("\n\n>a\nA\nCGTAC\n\nGT\n \n>b\nACGTACGTACGTACGTACGTACGT", NULL,
               "a||ACGTACGT\nb||ACGTACGTACGTACGTACGTACGT\n");
    /* CRLF everywhere; a lone CR at the very end. */
    CHECK_READ(">a d e\r\nAC\r\nGT\r\n\r\n>b\r\nA\r", NULL, "a|d e|ACGT\nb||A\n");
    /* Case, IUPAC codes, gaps and '*' kept as given; trailing blanks dropped. */
    CHECK_READ(">m\nacgtNNnnRYKMSWbdhv\nU-.*xX  \t\r\n", NULL, "m||acgtNNnnRYKMSWbdhvU-.*xX\n");
    /* Header: id up to the first blank, description without the blanks around it, UTF-8 kept. */
    CHECK_READ(">a \t b  c \t\nA\n>\xc3\xa9t\xc3\xa9\tcaf\xc3\xa9\nC\n>id|x|y|\nG\n", NULL,
               "a|b  c|A\n\xc3\xa9t\xc3\xa9|caf\xc3\xa9|C\nid|x|y|||G\n");
    /* A UTF-8 byte-order mark is skipped. */
    CHECK_READ("\xef\xbb\xbf>a\nAC\n", NULL, "a||AC\n");
    /* Empty records only with allow_empty. */
    fasta_options empty = {.allow_empty = true};
    CHECK_READ(">a\n>b\nAC\n>c\n\n", &empty, "a||\nb||AC\nc||\n");

    /* Record numbers and header lines. */
    const char *text = "\n>a\nA\n\n>b\nC\nG\n>c\nT";
    fasta_reader *r = fasta_open_buffer(text, strlen(text), NULL);
    REQUIRE(r);
    fasta_record rec;
    int64_t want_line[3] = {2, 5, 8};
    for (int i = 0; i < 3; i++) {
        CHECK(fasta_next(r, &rec) == 1);
        CHECKF(rec.number == i + 1 && rec.line == want_line[i], "record %d: number %lld line %lld",
               i, (long long)rec.number, (long long)rec.line);
        CHECK(rec.quality == NULL && rec.seq[rec.length] == '\0');
    }
    CHECK(fasta_next(r, &rec) == 0 && fasta_get_format(r) == FASTA_FORMAT_FASTA);
    CHECK(!fasta_is_gzip(r) && !fasta_fatal(r) && !strcmp(fasta_error(r), ""));
    fasta_close(r);
    CHECK(!strcmp(fasta_format_name(FASTA_FORMAT_FASTQ), "FASTQ"));
    /* No data at all. */
    r = fasta_open_buffer(NULL, 0, NULL);
    REQUIRE(r);
    CHECK(fasta_next(r, &rec) == 0 && fasta_get_format(r) == FASTA_FORMAT_UNKNOWN);
    fasta_close(r);
}

static void test_fasta_errors(void)
{
    /* Each record-level error names the record and line; the next record is still read. */
    CHECK_READ(">a\nAC\x01GT\n>b\nACGT\n", NULL,
               "E record 1 ('a'), line 2: unexpected character '\\x01' in the sequence\n"
               "b||ACGT\n");
    CHECK_READ(">chr1\nACGT\n>chr2 x\nACGT\nAC5T\nACGT\n", NULL,
               "chr1||ACGT\nE record 2 ('chr2'), line 5: unexpected character '5' in the "
               "sequence\n");
    CHECK_READ(">a\nAC GT\n>b\nAC\tGT\n>c\nAC\rGT\n>d\nA\xc3\xa9\n>e\nA\n", NULL,
               "E record 1 ('a'), line 2: unexpected character ' ' in the sequence\n"
               "E record 2 ('b'), line 4: unexpected character '\\t' in the sequence\n"
               "E record 3 ('c'), line 6: unexpected character '\\r' in the sequence\n"
               "E record 4 ('d'), line 8: unexpected character '\\xc3' in the sequence\n"
               "e||A\n");
    CHECK_READ_N(">a\nAC\0GT\n>b\nA\n", 14, NULL,
                 "E record 1 ('a'), line 2: unexpected character '\\x00' in the sequence\nb||A\n");
    /* Only the first error of a record; the rest of it is skipped. */
    CHECK_READ(">a\nA1\nA2\n\n>b\nA\n", NULL,
               "E record 1 ('a'), line 2: unexpected character '1' in the sequence\nb||A\n");
    CHECK_READ(">a\n>b\nACGT\n>c\n", NULL,
               "E record 1 ('a'): empty sequence\nb||ACGT\nE record 3 ('c'): empty sequence\n");
    CHECK_READ(">a\n\n  \n>b\nA", NULL, "E record 1 ('a'): empty sequence\nb||A\n");
    CHECK_READ("> x\nAC\n>\nA\n>b\nA\n", NULL,
               "E record 1, line 1: header without an id\nE record 2, line 3: header without an "
               "id\nb||A\n");
    CHECK_READ(">a\x02z\nAC\n>b\nA\n", NULL,
               "E record 1, line 1: unexpected character '\\x02' in the header\nb||A\n");
    CHECK_READ(">a\x7f\nAC\n", NULL,
               "E record 1, line 1: unexpected character '\\x7f' in the header\n");
    /* FASTQ inside FASTA. */
    CHECK_READ(">a\nAC\n@q\nAC\n+\nII\n>c\nA\n", NULL,
               "E record 1 ('a'), line 3: unexpected character '@' at the start of a sequence line "
               "(FASTQ in FASTA input?)\nc||A\n");
    /* Ids in messages: control characters cannot occur, long ones are cut. */
    CHECK_READ(">0123456789012345678901234567890123456789xyz\nA-1\n", NULL,
               "E record 1 ('0123456789012345678901234567890123456789...'), line 2: unexpected "
               "character '1' in the sequence\n");

    /* Stream-level errors stop the reader. */
    CHECK_READ("x\n>a\nAC\n", NULL, "F line 1: not FASTA or FASTQ (first character 'x')\n");
    CHECK_READ("\n \r\nhello\n", NULL, "F line 3: not FASTA or FASTQ (first character 'h')\n");
    CHECK_READ(" >a\nAC\n", NULL, "F line 1: not FASTA or FASTQ (first character ' ')\n");
    CHECK_READ(";comment\n>a\nAC\n", NULL,
               "F line 1: not FASTA or FASTQ (first character ';')\n");
    CHECK_READ("\xef\xbbx", NULL, "F line 1: not FASTA or FASTQ (first character '\\xef')\n");
    CHECK_READ_N("\0>a\nA\n", 6, NULL,
                 "F line 1: not FASTA or FASTQ (first character '\\x00')\n");
    CHECK_READ_PLAIN("BZh91AY&SY...", NULL,
                     "F bzip2-compressed input: only gzip is read (decompress it first)\n");
    CHECK_READ_PLAIN("\xfd" "7zXZ\0\0", NULL,
                     "F xz-compressed input: only gzip is read (decompress it first)\n");
    CHECK_READ_PLAIN("\x28\xb5\x2f\xfd....", NULL,
                     "F zstd-compressed input: only gzip is read (decompress it first)\n");

    /* fasta_fatal tells the two kinds apart. */
    const char *text = ">a\nA1\n>b\nA\n";
    fasta_reader *r = fasta_open_buffer(text, strlen(text), NULL);
    REQUIRE(r);
    fasta_record rec;
    CHECK(fasta_next(r, &rec) == -1 && !fasta_fatal(r));
    CHECK(rec.number == 1 && rec.line == 1 && !strcmp(rec.id, "a") && rec.seq == NULL);
    CHECK(fasta_next(r, &rec) == 1 && !strcmp(fasta_error(r), "") && !strcmp(rec.id, "b"));
    CHECK(fasta_next(r, &rec) == 0);
    fasta_close(r);
    r = fasta_open_buffer("x", 1, NULL);
    REQUIRE(r);
    CHECK(fasta_next(r, &rec) == -1 && fasta_fatal(r) && rec.number == 0 && !strcmp(rec.id, ""));
    CHECK(fasta_next(r, &rec) == 0 && fasta_fatal(r));
    fasta_close(r);
}

static void test_fasta_limits(void)
{
    fasta_options small = {.max_length = 5};
    CHECK_READ(">a\nACG\nTAC\n>b\nACGTA\n>c\nACGTAC\n", &small,
               "E record 1 ('a'), line 3: sequence longer than the limit of 5 bases\nb||ACGTA\n"
               "E record 3 ('c'), line 7: sequence longer than the limit of 5 bases\n");
    /* Headers: FASTA_MAX_HEADER bytes are fine, one more is not. */
    size_t n = FASTA_MAX_HEADER + 40;
    char *text = malloc(n);
    REQUIRE(text);
    memset(text, 'h', n);
    text[0] = '>';
    memcpy(text + 1 + FASTA_MAX_HEADER, "\nAC\n>b\nA\n", 10);
    fasta_reader *r = fasta_open_buffer(text, strlen(text), NULL);
    REQUIRE(r);
    fasta_record rec;
    CHECK(fasta_next(r, &rec) == 1 && strlen(rec.id) == FASTA_MAX_HEADER && rec.length == 2);
    fasta_close(r);
    memset(text, 'h', n);
    text[0] = '>';
    memcpy(text + 2 + FASTA_MAX_HEADER, "\nAC\n>b\nA\n", 10);
    check_read_(__FILE__, __LINE__, text, strlen(text), NULL,
                "E record 1, line 1: header longer than 65536 bytes\nb||A\n", false);
    free(text);
}

/* ---- FASTQ ---- */

static void test_fastq(void)
{
    CHECK_READ("@r1 d\nACGT\n+\nIIII\n@r2\nAC\n+r2\n!~\n", &keep, "r1|d|ACGT|IIII\nr2||AC|!~\n");
    CHECK_READ("@r1 d\nACGT\n+\nIIII\n", NULL, "r1|d|ACGT\n");
    /* The '+' line may repeat the whole header or the id; blank lines between records; CRLF;
     * quality lines that start with '@' or '+'. */
    CHECK_READ("\n@q1 x  y\r\nacgtN\r\n+q1 x  y\r\n@@+>I\r\n\r\n@q2 z\nA \n+q2\n+\n\n", &keep,
               "q1|x  y|acgtN|@@+>I\nq2|z|A|+\n");
    /* Empty records. */
    CHECK_READ("@q1\n\n+\n\n@q2\nA\n+\nI\n", &keep, "E record 1 ('q1'): empty sequence\nq2||A|I\n");
    fasta_options empty = {.allow_empty = true, .keep_quality = true};
    CHECK_READ("@q1\n\n+\n\n@q2\nA\n+\nI\n@q3\n\n+\n", &empty, "q1|||\nq2||A|I\nq3|||\n");

    /* Record-level errors: the layout is intact, the next record is read. */
    CHECK_READ("@q1\nACGT\n+\nIII\n@q2\nA\n+\nI\n", &keep,
               "E record 1 ('q1'), line 4: quality has 3 characters for 4 bases\nq2||A|I\n");
    CHECK_READ("@q1\nACGT\n+\nIIIII\n@q2\nA\n+\nI\n", &keep,
               "E record 1 ('q1'), line 4: quality has 5 characters for 4 bases\nq2||A|I\n");
    CHECK_READ("@q1\nACGT\n+\nII I\n@q2\nA\n+\nI  \n", &keep,
               "E record 1 ('q1'), line 4: unexpected character ' ' in the quality\nq2||A|I\n");
    CHECK_READ("@q1\nACGT\n+\nII\x01I\n", NULL,
               "E record 1 ('q1'), line 4: unexpected character '\\x01' in the quality\n");
    CHECK_READ("@q1\nA1GT\n+\nIIII\n@q2\nA\n+\nI\n", NULL,
               "E record 1 ('q1'), line 2: unexpected character '1' in the sequence\nq2||A\n");
    CHECK_READ("@q1 x\nAC\n+q2\nII\n@q3\nA\n+q3 y\nI\n@q4\nA\n+\nI\n", NULL,
               "E record 1 ('q1'), line 3: the '+' line ('q2') does not repeat the header\n"
               "E record 2 ('q3'), line 7: the '+' line ('q3 y') does not repeat the header\n"
               "q4||A\n");
    CHECK_READ_N("@q1\nA\n+q1\0x\nI\n", 14, NULL,
                 "E record 1 ('q1'), line 3: the '+' line ('q1?x') does not repeat the header\n");
    CHECK_READ("@\nAC\n+\nII\n@q2\nA\n+\nI\n", NULL,
               "E record 1, line 1: header without an id\nq2||A\n");
    fasta_options small = {.max_length = 3, .keep_quality = true};
    CHECK_READ("@q1\nACGTACGT\n+\n", &small,
               "E record 1 ('q1'), line 2: sequence longer than the limit of 3 bases\n");
    CHECK_READ("@q1\nACGT\n+\nIIII\n@q2\nACG\n+\nIII\n", &small,
               "E record 1 ('q1'), line 2: sequence longer than the limit of 3 bases\n"
               "q2||ACG|III\n");

    /* Stream-level errors: the layout is lost. */
    CHECK_READ("@q1\nAC\nGT\n+\nIIII\n", NULL,
               "F record 1 ('q1'), line 3: expected a '+' line after the sequence, found 'G' "
               "(wrapped FASTQ is not read)\n");
    CHECK_READ("@q1\nA\n+\nI\nxyz\n", NULL,
               "q1||A\nF line 5: expected '@' at the start of a FASTQ record, found 'x'\n");
    CHECK_READ("@q1\nA\n+\nI\n\n>a\nAC\n", NULL,
               "q1||A\nF line 6: expected '@' at the start of a FASTQ record, found '>' (FASTA in "
               "FASTQ input?)\n");
    CHECK_READ("@q1\nA\n+\nI\n @q2\nA\n+\nI\n", NULL,
               "q1||A\nF line 5: expected '@' at the start of a FASTQ record, found ' '\n");
    CHECK_READ("@q1\n", NULL,
               "F record 1 ('q1'): the input ends inside the record (no sequence line)\n");
    CHECK_READ("@q1\nAC", NULL,
               "F record 1 ('q1'): the input ends inside the record (no '+' line)\n");
    CHECK_READ("@q1\nAC\n+\n", NULL,
               "F record 1 ('q1'): the input ends inside the record (no quality line)\n");
    CHECK_READ("@q1\nAC\n+", NULL,
               "F record 1 ('q1'): the input ends inside the record (no quality line)\n");
    /* A stream-level error replaces a record-level one of the same record. */
    CHECK_READ("@q1\nA1\nGT\n+\nIIII\n", NULL,
               "F record 1 ('q1'), line 3: expected a '+' line after the sequence, found 'G' "
               "(wrapped FASTQ is not read)\n");

    /* The fixture, from a file. */
    FILE *f = fopen(FIXTURES "reads.fq", "rb");
    REQUIRE(f);
    fasta_reader *r = fasta_open(f, &keep);
    REQUIRE(r);
    char *t = transcript_of(r);
    CHECKF(!strcmp(t, "r1|lane=1|ACGTNacgt|IIIIIIIII\nr2||GGGG|!!~~\n"
                      "r3|x y|TTTTTTTTTTTTTTTTTTTT|@@@@@@@@@@+++++++++>\n"),
           "%s", t);
    CHECK(fasta_get_format(r) == FASTA_FORMAT_FASTQ);
    free(t);
    fasta_close(r);
    fclose(f);
}

/* ---- gzip ---- */

static char *file_transcript(const char *path, const fasta_options *opt)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        printf("  cannot open %s\n", path);
        return NULL;
    }
    fasta_reader *r = fasta_open(f, opt);
    char *t = transcript_of(r);
    fasta_close(r);
    fclose(f);
    return t;
}

static const char small_fa[] =
    "seq1|first test sequence|ACGTACGTACGTACGTACacgtNNNNRYKM\n"
    "seq2|tab separated  description|ACGTTGCA\n"
    "seq3||acgtacgtacgtacgtacgtacgtacgtacgtacgtacgtacgtacgtacgtacgtacgtacgtacgtacgtacgtACGT\n";

static void test_gzip_files(void)
{
    char *plain = file_transcript(FIXTURES "small.fa", NULL);
    char *gz = file_transcript(FIXTURES "small.fa.gz", NULL);
    REQUIRE(plain && gz);
    CHECKF(!strcmp(plain, small_fa), "%s", plain);
    CHECKF(!strcmp(gz, small_fa), "%s", gz);
    free(plain);
    free(gz);

    /* Two members (made with gzip, then cat), the second starting inside a sequence line. */
    FILE *f = fopen(FIXTURES "two_members.fa.gz", "rb");
    REQUIRE(f);
    fasta_reader *r = fasta_open(f, NULL);
    fasta_record rec;
    static const char *const ids[3] = {"m1", "m2", "m3"};
    static const int64_t lengths[3] = {150, 200, 50};
    for (int i = 0; i < 3; i++) {
        CHECK(fasta_next(r, &rec) == 1 && !strcmp(rec.id, ids[i]) && rec.length == lengths[i]);
        CHECK(strspn(rec.seq, "ACGT") == (size_t)rec.length);
    }
    CHECK(!strcmp(rec.description, "") && fasta_next(r, &rec) == 0 && fasta_is_gzip(r));
    fasta_close(r);
    fclose(f);

    /* BGZF-like (bgzip): members with an extra field ("BC", block size) and an empty last
     * member as the end-of-file marker. */
    const char *text = ">b1 x\nACGT\nAC\n>b2\nGGGG\n";
    str bgzf = {0};
    puts_(&bgzf, "");
    for (int m = 0; m < 3; m++) {
        size_t len = strlen(text), from[3] = {0, 9, len}, to[3] = {9, len, len};
        z_stream zs;
        memset(&zs, 0, sizeof zs);
        REQUIRE(deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
        unsigned char extra[6] = {'B', 'C', 2, 0, 0, 0}, out[256];
        gz_header h;
        memset(&h, 0, sizeof h);
        h.extra = extra;
        h.extra_len = sizeof extra;
        h.os = 255;
        REQUIRE(deflateSetHeader(&zs, &h) == Z_OK);
        zs.next_in = (unsigned char *)text + from[m];
        zs.avail_in = (uInt)(to[m] - from[m]);
        zs.next_out = out;
        zs.avail_out = sizeof out;
        REQUIRE(deflate(&zs, Z_FINISH) == Z_STREAM_END);
        put(&bgzf, (const char *)out, sizeof out - zs.avail_out);
        deflateEnd(&zs);
    }
    for (size_t b = 0; b < N_BUFFERS; b++) {
        char *bt = transcript(bgzf.s, bgzf.len, NULL, SRC_MEM, buffers[b]);
        CHECKF(!strcmp(bt, "b1|x|ACGTAC\nb2||GGGG\n"), "%s", bt);
        free(bt);
    }
    free(bgzf.s);

    /* Cut inside record t2 (made with head -c 500 of a gzip file). */
    char *t = file_transcript(FIXTURES "truncated.fa.gz", NULL);
    REQUIRE(t);
    const char *second = strchr(t, '\n');
    CHECK(!strncmp(t, "t1||", 4) && second && second - t == 4 + 100);
    CHECKF(second && !strcmp(second + 1, "F truncated gzip input in record 2 ('t2')\n"), "%s", t);
    free(t);

    /* Through a pipe, as from stdin. */
    FILE *p = popen("cat " FIXTURES "small.fa.gz", "r");
    REQUIRE(p);
    r = fasta_open(p, NULL);
    t = transcript_of(r);
    fasta_close(r);
    CHECK(pclose(p) == 0);
    CHECKF(!strcmp(t, small_fa), "%s", t);
    free(t);
    p = popen("cat " FIXTURES "small.fa", "r");
    REQUIRE(p);
    r = fasta_open(p, &(fasta_options){.buffer_size = 3});
    t = transcript_of(r);
    fasta_close(r);
    CHECK(pclose(p) == 0);
    CHECKF(!strcmp(t, small_fa), "%s", t);
    free(t);
}

static unsigned char *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    str t = {0};
    char buf[4096];
    size_t n;
    puts_(&t, "");
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        put(&t, buf, n);
    fclose(f);
    *size = t.len;
    return (unsigned char *)t.s;
}

static void test_gzip_damage(void)
{
    size_t size;
    unsigned char *gz = read_file(FIXTURES "small.fa.gz", &size);
    REQUIRE(gz);
    char *full = transcript(gz, size, NULL, SRC_MEM, 0);
    CHECKF(!strcmp(full, small_fa), "%s", full);
    /* Cut at every byte: the records before the cut, then a truncation error, never a record
     * made of a partial text. */
    for (size_t cut = 2; cut < size; cut++) {
        for (size_t b = 0; b < N_BUFFERS; b++) {
            char *t = transcript(gz, cut, NULL, SRC_MEM, buffers[b]);
            char *last = strrchr(t, '\n');
            *last = '\0';
            char *line = strrchr(t, '\n');
            line = line ? line + 1 : t;
            size_t before = (size_t)(line - t);
            CHECKF(!strncmp(line, "F truncated gzip input", 22) && !strncmp(t, full, before),
                   "cut %zu window %zu: %s", cut, buffers[b], t);
            free(t);
        }
    }
    char *t = transcript(gz, 1, NULL, SRC_MEM, 0);
    CHECKF(!strcmp(t, "F line 1: not FASTA or FASTQ (first character '\\x1f')\n"), "%s", t);
    free(t);
    t = transcript(gz, 2, NULL, SRC_MEM, 0);
    CHECKF(!strcmp(t, "F truncated gzip input\n"), "%s", t);
    free(t);

    /* Trailing junk after the gzip data: it is read as another member, which fails. */
    unsigned char *junk = malloc(size + 6);
    REQUIRE(junk);
    memcpy(junk, gz, size);
    memcpy(junk + size, "hello\n", 6);
    t = transcript(junk, size + 6, NULL, SRC_MEM, 0);
    CHECKF(!strcmp(t, "seq1|first test sequence|ACGTACGTACGTACGTACacgtNNNNRYKM\n"
                      "seq2|tab separated  description|ACGTTGCA\n"
                      "F data that is not gzip after the gzip input in record 3 ('seq3')\n"),
           "%s", t);
    free(t);
    free(junk);

    /* Corrupt data (a flipped byte in the compressed body or in the CRC). */
    for (size_t at = 12; at < size; at += 7) {
        unsigned char *bad = malloc(size);
        REQUIRE(bad);
        memcpy(bad, gz, size);
        bad[at] ^= 0x55;
        t = transcript(bad, size, NULL, SRC_MEM, 0);
        char *last = strrchr(t, '\n');
        *last = '\0';
        char *line = strrchr(t, '\n');
        line = line ? line + 1 : t;
        /* Damage may also turn into bad FASTA before zlib notices (then the CRC fails). */
        CHECKF(!strncmp(line, "F corrupt gzip input", 20) ||
                   !strncmp(line, "F truncated gzip input", 22),
               "flip at %zu: %s", at, t);
        free(t);
        free(bad);
    }
    free(full);
    free(gz);

    /* A damaged CRC: every record comes out, then the error. */
    const char *two = "@q1\nACGT\n+\nIIII\n@q2\nA\n+\nI\n";
    size_t two_size;
    unsigned char *two_gz = gzip_bytes(two, strlen(two), 0, &two_size);
    two_gz[two_size - 8] ^= 1;
    for (size_t b = 0; b < N_BUFFERS; b++) {
        t = transcript(two_gz, two_size, NULL, SRC_MEM, buffers[b]);
        CHECKF(!strcmp(t, "q1||ACGT\nq2||A\nF corrupt gzip input after record 2 ('q2') "
                          "(incorrect data check)\n"),
               "%s", t);
        free(t);
    }
    free(two_gz);

    /* A stream cut between records: the error comes after the last whole record. */
    const char *fq = "@q1\nACGT\n+\nIIII\n@q2\nA\n+\nI\n";
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    REQUIRE(deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    unsigned char out[256];
    zs.next_in = (unsigned char *)fq;
    zs.avail_in = 16; /* the first record */
    zs.next_out = out;
    zs.avail_out = sizeof out;
    REQUIRE(deflate(&zs, Z_SYNC_FLUSH) == Z_OK);
    size_t n = sizeof out - zs.avail_out;
    deflateEnd(&zs);
    for (size_t b = 0; b < N_BUFFERS; b++) {
        t = transcript(out, n, NULL, SRC_MEM, buffers[b]);
        CHECKF(!strcmp(t, "q1||ACGT\nF truncated gzip input after record 1 ('q1')\n"), "%s", t);
        free(t);
    }
}

/* ---- long lines ---- */

static void test_long_line(void)
{
    const size_t n = 10 * 1000 * 1000;
    const char *head = ">big one line of 10 M bases\n", *tail = "\n>small\nAC\n";
    size_t hn = strlen(head), tn = strlen(tail), size = hn + n + tn;
    char *text = malloc(size);
    REQUIRE(text);
    memcpy(text, head, hn);
    uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        text[hn + i] = "ACGTacgtN"[(x >> 16) % 9];
    }
    memcpy(text + hn + n, tail, tn);
    size_t gz_all_size;
    unsigned char *gz_all = gzip_bytes(text, size, 0, &gz_all_size);
    for (int src = SRC_MEM; src <= SRC_GZ_FILE; src++) {
        fasta_options o = {0};
        size_t gz_size = src >= SRC_GZ ? gz_all_size : 0;
        unsigned char *gz = src >= SRC_GZ ? gz_all : NULL;
        FILE *f = NULL;
        fasta_reader *r;
        if (src == SRC_MEM)
            r = fasta_open_buffer(text, size, &o);
        else if (src == SRC_GZ)
            r = fasta_open_buffer(gz, gz_size, &o);
        else
            r = fasta_open(f = file_of(gz ? (void *)gz : text, gz ? gz_size : size), &o);
        fasta_record rec;
        CHECKF(fasta_next(r, &rec) == 1 && rec.length == (int64_t)n &&
                   !memcmp(rec.seq, text + hn, n) &&
                   !strcmp(rec.description, "one line of 10 M bases"),
               "%s: %s", src_names[src], fasta_error(r));
        CHECK(fasta_next(r, &rec) == 1 && !strcmp(rec.id, "small") && rec.length == 2);
        CHECK(fasta_next(r, &rec) == 0);
        fasta_close(r);
        /* Over a limit: refused, then the next record. */
        o.max_length = n - 1;
        if (f)
            rewind(f);
        r = src == SRC_MEM  ? fasta_open_buffer(text, size, &o)
            : src == SRC_GZ ? fasta_open_buffer(gz, gz_size, &o)
                            : fasta_open(f, &o);
        CHECK(fasta_next(r, &rec) == -1 && !fasta_fatal(r));
        CHECKF(!strcmp(fasta_error(r), "record 1 ('big'), line 2: sequence longer than the limit "
                                       "of 9999999 bases"),
               "%s", fasta_error(r));
        CHECK(fasta_next(r, &rec) == 1 && !strcmp(rec.id, "small"));
        fasta_close(r);
        if (f)
            fclose(f);
    }
    free(gz_all);
    free(text);
}

/* ---- real data ---- */

static bool have_data(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        printf("  skipped: %s is absent (../shared/data is not here)\n", path);
        return false;
    }
    fclose(f);
    return true;
}

typedef struct {
    int64_t records, bases, gc, lower;
    char first_id[64], last_id[64];
    int64_t last_length;
    char tail[21]; /* the last bases of the last record */
    bool gzip;
} summary;

/* Sums over a whole file; false after an error (printed). */
static bool summarize(const char *path, summary *s)
{
    memset(s, 0, sizeof *s);
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    fasta_reader *r = fasta_open(f, NULL);
    fasta_record rec;
    int rc;
    bool ok = true;
    while ((rc = fasta_next(r, &rec)) != 0) {
        if (rc < 0) {
            printf("  %s: %s\n", path, fasta_error(r));
            ok = false;
            continue;
        }
        if (s->records++ == 0)
            snprintf(s->first_id, sizeof s->first_id, "%s", rec.id);
        snprintf(s->last_id, sizeof s->last_id, "%s", rec.id);
        s->last_length = rec.length;
        s->bases += rec.length;
        for (int64_t i = 0; i < rec.length; i++) {
            char c = rec.seq[i];
            s->gc += c == 'G' || c == 'C' || c == 'g' || c == 'c';
            s->lower += c >= 'a' && c <= 'z';
        }
        size_t k = rec.length < 20 ? (size_t)rec.length : 20;
        memcpy(s->tail, rec.seq + rec.length - (int64_t)k, k);
        s->tail[k] = '\0';
    }
    s->gzip = fasta_is_gzip(r);
    fasta_close(r);
    fclose(f);
    return ok;
}

/* Expected values computed independently with the shell, e.g. for the genome:
 *   zcat F | grep -c '>'                                   records
 *   zcat F | grep -v '>' | tr -d '\n' | wc -c              bases
 *   zcat F | grep -v '>' | tr -cd 'GCgc' | wc -c           G+C
 *   zcat F | grep -v '>' | tr -d '\n' | tail -c 20         the last bases */
static void test_real_data(void)
{
    summary s;
    const char *mtb = DATA "NC_000962.3_Mtb_H37Rv.fna.gz";
    if (have_data(mtb)) {
        CHECK(summarize(mtb, &s) && s.gzip);
        CHECK(s.records == 1 && s.bases == 4411532 && s.gc == 2894612 && s.lower == 0);
        CHECK(!strcmp(s.first_id, "NC_000962.3") && !strcmp(s.tail, "AGAACCAGGGAGATACGTCG"));
    }
    const char *dm3 = DATA "dm3_upstream2000.first2000.fa.gz";
    if (have_data(dm3)) {
        CHECK(summarize(dm3, &s) && s.gzip);
        CHECK(s.records == 2000 && s.bases == 4000000 && s.gc == 1719354);
        CHECK(s.lower == 4000000); /* soft-masked: every base is lowercase here */
        CHECK(!strcmp(s.first_id, "NM_078863_up_2000_chr2L_16764737_f"));
        CHECK(!strcmp(s.last_id, "NM_135245_up_2000_chr2L_6958426_f") && s.last_length == 2000);
    }
    const char *lambda = DATA "lambda_virus.fa";
    if (have_data(lambda)) {
        CHECK(summarize(lambda, &s) && !s.gzip);
        CHECK(s.records == 1 && s.bases == 48502 && s.gc == 24182);
        CHECK(!strcmp(s.first_id, "gi|9626243|ref|NC_001416.1|"));
    }
    const char *genes = DATA "genes.fasta";
    if (have_data(genes)) {
        CHECK(summarize(genes, &s) && !s.gzip);
        CHECK(s.records == 20 && s.bases == 69469 && s.gc == 32085);
        CHECK(!strcmp(s.last_id, "gi|530364724|ref|XR_241079.1|") && s.last_length == 2819);
    }
    /* The same genome through a pipe, with odd windows. */
    if (have_data(mtb)) {
        FILE *p = popen("cat " DATA "NC_000962.3_Mtb_H37Rv.fna.gz", "r");
        REQUIRE(p);
        fasta_reader *r = fasta_open(p, &(fasta_options){.buffer_size = 1000});
        fasta_record rec;
        CHECK(fasta_next(r, &rec) == 1 && rec.length == 4411532);
        CHECK(!strcmp(rec.description, "Mycobacterium tuberculosis H37Rv, complete genome"));
        CHECK(fasta_next(r, &rec) == 0);
        fasta_close(r);
        CHECK(pclose(p) == 0);
    }
}

int main(void)
{
    RUN(test_fasta_layouts);
    RUN(test_fasta_errors);
    RUN(test_fasta_limits);
    RUN(test_fastq);
    RUN(test_gzip_files);
    RUN(test_gzip_damage);
    RUN(test_long_line);
    RUN(test_real_data);
    return CHECK_DONE();
}
