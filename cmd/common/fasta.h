/* A streaming FASTA/FASTQ reader: one record at a time, from a FILE (a file, a pipe, stdin) or
 * from memory, plain or gzip-compressed.
 *
 * Input: gzip is recognised by its magic bytes (1f 8b) and inflated with zlib; concatenated
 * members (bgzip, `cat a.gz b.gz`) read as one stream; data after the last member that is not
 * gzip is an error. Damaged gzip is an error once reached: the records before the damage come
 * out first. bzip2, xz and zstd inputs are recognised and refused with a message. A UTF-8
 * byte-order mark at the start is skipped. Lines end in LF or CRLF; the last line may lack its
 * line end. The format is that of the first non-blank line: '>' FASTA, '@' FASTQ, anything else
 * an error; mixing is an error too (a FASTA sequence line that starts with '@' is a bad record,
 * a FASTQ record that starts with '>' ends the reading). Blank lines (empty or only spaces, tabs
 * and CR) are skipped between records and inside FASTA sequences (inside a FASTQ record a blank
 * line is an empty sequence or quality line). An empty input (or only blank lines) holds no
 * records: fasta_next returns 0 at once.
 *
 * FASTA: a header line ">id description" followed by any number of sequence lines of any length
 * and width (a 10 Mbp sequence on one line is fine), up to the next line that starts with '>'.
 * FASTQ: four lines per record, "@id description", the sequence on one line, a '+' line that is
 * either bare or repeats the header (all of it, or only the id), the quality on one line with
 * exactly as many characters as the sequence ('!' to '~'). Wrapped FASTQ (sequence or quality
 * over several lines) is not read: the line after the sequence must be the '+' line.
 *
 * Headers: the id is the text after '>' or '@' up to the first space or tab; the description is
 * the rest, without the blanks around it (may be empty). Bytes 0x80-0xff (UTF-8) are kept;
 * control characters other than tab are errors. At most FASTA_MAX_HEADER bytes.
 *
 * Sequences are returned byte for byte as given, case kept (soft-masked lowercase reaches the
 * caller): letters A-Z and a-z (IUPAC codes or not: the tokenizer decides), '-' and '.' (gaps)
 * and '*' (a stop or an unknown residue). Digits, punctuation, spaces or tabs inside a line,
 * control characters and bytes >= 0x80 are errors. Spaces, tabs and CR at the end of a line are
 * tolerated and dropped.
 *
 * Errors are one line of text (input bytes shown as 'c', '\t', '\r' or '\x01'; ids cut after 40
 * bytes, control characters as '?'), with the record number (from 1, counting bad records too)
 * and its id when known, and the line (from 1, of the decompressed text) where the problem is:
 *     record 3 ('chr2'), line 57: unexpected character '\x01' in the sequence
 *     record 2 ('r2'): empty sequence
 *     record 4, line 12: header without an id
 *     line 1: not FASTA or FASTQ (first character 'x')
 *     truncated gzip input in record 7 ('x')
 * Only the first error of a record is reported, except that a stream-level error replaces a
 * record-level one. The caller adds the file name.
 *
 *  - Record-level errors (the reader goes on with the next record; fasta_fatal() is false):
 *    bad characters in a header, sequence or quality line; a header without an id or longer
 *    than FASTA_MAX_HEADER; an empty sequence (unless allow_empty); a sequence longer than
 *    max_length; a quality line of the wrong length; a '+' line that differs from the header.
 *    The whole record is consumed first (FASTA: up to the next line starting with '>').
 *  - Stream-level errors (the reader stops: fasta_fatal() is true and every later call returns
 *    0): not FASTA or FASTQ, bzip2/xz/zstd input, a broken FASTQ layout (a record that does not
 *    start with '@', no '+' line after the sequence, the input ending inside a record), read
 *    errors, truncated or corrupt gzip, non-gzip data after gzip, out of memory.
 * So a program reads with
 *     while ((rc = fasta_next(r, &rec)) != 0)
 *         if (rc < 0) report(fasta_error(r)), status = 1; else process(&rec);
 * and handles every record it can.
 *
 * Memory: the largest record read so far (sequence, header, and quality when kept), in buffers
 * that grow geometrically and never past max_length + 1 bytes, plus two I/O buffers of
 * buffer_size bytes (64 KiB). A record longer than max_length is refused as soon as its length
 * passes the limit, before any allocation beyond it. Time is linear in the input. */
#ifndef CLI_FASTA_H
#define CLI_FASTA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define FASTA_MAX_HEADER 65536                          /* bytes in a header line */
#define FASTA_DEFAULT_MAX_LENGTH ((int64_t)1 << 30)     /* bases in a record: 1 G */

typedef enum { FASTA_FORMAT_UNKNOWN, FASTA_FORMAT_FASTA, FASTA_FORMAT_FASTQ } fasta_format;

typedef struct {
    int64_t max_length; /* bases per record; 0 or less: FASTA_DEFAULT_MAX_LENGTH */
    bool allow_empty;   /* return records with an empty sequence instead of an error */
    bool keep_quality;  /* FASTQ: return the quality string (else record.quality is NULL) */
    size_t buffer_size; /* bytes per read and per inflate; 0: 64 KiB (tests use 1, 2, 3...) */
} fasta_options;

/* One record. The strings belong to the reader and stay valid (and writable) until the next
 * call of fasta_next or fasta_close. After an error (-1) only number, line, id and description
 * are set, id and description being "" when the header could not be read. */
typedef struct {
    const char *id;          /* NUL-terminated, not empty, no blanks or control characters */
    const char *description; /* NUL-terminated, "" when absent */
    char *seq;               /* length bytes as given, then a NUL */
    int64_t length;          /* bases: 1..max_length (0 only with allow_empty) */
    char *quality;           /* FASTQ with keep_quality: length bytes and a NUL; else NULL */
    int64_t number;          /* 1 for the first record of the input (bad records count) */
    int64_t line;            /* the line of its header */
} fasta_record;

typedef struct fasta_reader fasta_reader;

/* A reader of f (not closed by fasta_close) or of size bytes at data (not copied: they must stay
 * until fasta_close). Nothing is read before the first fasta_next. opt may be NULL (defaults).
 * NULL when out of memory. */
fasta_reader *fasta_open(FILE *f, const fasta_options *opt);
fasta_reader *fasta_open_buffer(const void *data, size_t size, const fasta_options *opt);

/* The next record: 1 (rec filled), 0 at the end of the input or after a stream-level error
 * (reported by an earlier -1), -1 on an error, whose text fasta_error gives. */
int fasta_next(fasta_reader *r, fasta_record *rec);

/* The message of the last error ("" before any); valid until the next fasta_next. */
const char *fasta_error(const fasta_reader *r);
/* True after a stream-level error: no record will follow. */
bool fasta_fatal(const fasta_reader *r);
/* FASTA_FORMAT_UNKNOWN until fasta_next has read the first line that is not blank. */
fasta_format fasta_get_format(const fasta_reader *r);
/* Whether the input is gzip, once fasta_next has been called. */
bool fasta_is_gzip(const fasta_reader *r);
const char *fasta_format_name(fasta_format f); /* "FASTA", "FASTQ", "unknown" */

void fasta_close(fasta_reader *r);

#endif
