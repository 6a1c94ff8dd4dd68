/* Strict RFC 8259 parser.
 *
 * Two passes over the text share one recursive-descent parser: the first validates the
 * grammar, the UTF-8 and the escapes and counts the nodes and decoded string bytes; the
 * second fills a single block sized exactly from those counts, so a document costs one
 * allocation however many values it holds. Duplicate keys are found in the second pass by
 * sorting each object's members (a hostile header may have millions of them, so no
 * quadratic scan). */
#include "longrange/json.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct lr_json_doc {
    lr_json *root;
};

typedef struct {
    const char *text;
    size_t len;
    size_t pos;
    int depth;
    /* Fill pass only (NULL while counting). */
    lr_json *nodes;
    char *chars;
    lr_json **scratch; /* max_members entries, for the duplicate-key sort */
    size_t n_nodes;
    size_t n_chars;
    size_t max_members;
    /* First error: where and why. */
    size_t err_pos;
    char err[160];
} parser;

/* Objects up to this size are checked for duplicate keys pairwise; larger ones are sorted. */
#define PAIRWISE_MAX 8

static bool fail_at(parser *p, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool fail_at(parser *p, size_t pos, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err, sizeof p->err, fmt, ap);
    va_end(ap);
    p->err_pos = pos;
    return false;
}

static bool fail_char(parser *p, const char *expected)
{
    if (p->pos >= p->len)
        return fail_at(p, p->pos, "unexpected end of input, expected %s", expected);
    unsigned char c = (unsigned char)p->text[p->pos];
    if (c >= 0x20 && c < 0x7f)
        return fail_at(p, p->pos, "unexpected character '%c', expected %s", c, expected);
    return fail_at(p, p->pos, "unexpected byte 0x%02x, expected %s", c, expected);
}

static void skip_ws(parser *p)
{
    while (p->pos < p->len) {
        char c = p->text[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

static lr_json *new_node(parser *p)
{
    lr_json *n = p->nodes ? &p->nodes[p->n_nodes] : NULL;
    p->n_nodes++;
    if (n)
        memset(n, 0, sizeof *n);
    return n;
}

static void put_byte(parser *p, unsigned char c)
{
    if (p->chars)
        p->chars[p->n_chars] = (char)c;
    p->n_chars++;
}

static void put_utf8(parser *p, unsigned cp)
{
    if (cp < 0x80) {
        put_byte(p, (unsigned char)cp);
    } else if (cp < 0x800) {
        put_byte(p, (unsigned char)(0xc0 | (cp >> 6)));
        put_byte(p, (unsigned char)(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
        put_byte(p, (unsigned char)(0xe0 | (cp >> 12)));
        put_byte(p, (unsigned char)(0x80 | ((cp >> 6) & 0x3f)));
        put_byte(p, (unsigned char)(0x80 | (cp & 0x3f)));
    } else {
        put_byte(p, (unsigned char)(0xf0 | (cp >> 18)));
        put_byte(p, (unsigned char)(0x80 | ((cp >> 12) & 0x3f)));
        put_byte(p, (unsigned char)(0x80 | ((cp >> 6) & 0x3f)));
        put_byte(p, (unsigned char)(0x80 | (cp & 0x3f)));
    }
}

/* Four hex digits at p->pos. */
static bool read_hex4(parser *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        if (p->pos >= p->len)
            return fail_at(p, p->pos, "unexpected end of input in \\u escape");
        char c = p->text[p->pos];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            d = (unsigned)(c - 'A' + 10);
        else
            return fail_at(p, p->pos, "invalid hex digit in \\u escape");
        v = v * 16 + d;
        p->pos++;
    }
    *out = v;
    return true;
}

/* p->pos is just past the backslash of a \u escape. Surrogates must come as a pair. */
static bool read_unicode_escape(parser *p)
{
    size_t start = p->pos - 2;
    unsigned cp;
    if (!read_hex4(p, &cp))
        return false;
    if (cp >= 0xdc00 && cp <= 0xdfff)
        return fail_at(p, start, "unpaired low surrogate \\u%04x", cp);
    if (cp >= 0xd800 && cp <= 0xdbff) {
        if (p->pos + 2 > p->len || p->text[p->pos] != '\\' || p->text[p->pos + 1] != 'u')
            return fail_at(p, start, "unpaired high surrogate \\u%04x", cp);
        p->pos += 2;
        unsigned lo;
        if (!read_hex4(p, &lo))
            return false;
        if (lo < 0xdc00 || lo > 0xdfff)
            return fail_at(p, start, "high surrogate \\u%04x not followed by a low one", cp);
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
    }
    put_utf8(p, cp);
    return true;
}

/* Length of the well-formed UTF-8 sequence starting at s[0] (a byte >= 0x80), or 0.
 * Overlong forms, surrogates and code points above U+10FFFF are ill-formed. */
static size_t utf8_sequence(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    unsigned char lo = 0x80, hi = 0xbf;
    size_t n;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else {
        return 0;
    }
    if (avail < n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return n;
}

/* A string at p->pos (which is '"'); its decoded, NUL-terminated bytes go to the chars
 * area, and out and out_len describe them (fill pass only). */
static bool parse_string(parser *p, const char **out, size_t *out_len)
{
    size_t start = p->pos++;
    size_t first = p->n_chars;
    for (;;) {
        if (p->pos >= p->len)
            return fail_at(p, start, "unterminated string");
        unsigned char c = (unsigned char)p->text[p->pos];
        if (c == '"') {
            p->pos++;
            break;
        }
        if (c < 0x20)
            return fail_at(p, p->pos, "control character 0x%02x in string", c);
        if (c == '\\') {
            if (p->pos + 1 >= p->len)
                return fail_at(p, start, "unterminated string");
            char e = p->text[p->pos + 1];
            p->pos += 2;
            switch (e) {
            case '"': put_byte(p, '"'); break;
            case '\\': put_byte(p, '\\'); break;
            case '/': put_byte(p, '/'); break;
            case 'b': put_byte(p, '\b'); break;
            case 'f': put_byte(p, '\f'); break;
            case 'n': put_byte(p, '\n'); break;
            case 'r': put_byte(p, '\r'); break;
            case 't': put_byte(p, '\t'); break;
            case 'u':
                if (!read_unicode_escape(p))
                    return false;
                break;
            default:
                return fail_at(p, p->pos - 2, "invalid escape in string");
            }
            continue;
        }
        if (c < 0x80) {
            put_byte(p, c);
            p->pos++;
            continue;
        }
        size_t n = utf8_sequence((const unsigned char *)p->text + p->pos, p->len - p->pos);
        if (n == 0)
            return fail_at(p, p->pos, "invalid UTF-8 in string");
        for (size_t i = 0; i < n; i++)
            put_byte(p, (unsigned char)p->text[p->pos + i]);
        p->pos += n;
    }
    put_byte(p, 0);
    if (p->chars) {
        *out = p->chars + first;
        *out_len = p->n_chars - first - 1;
    }
    return true;
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* Advances over one number in RFC 8259 grammar, starting at p->pos. */
static bool scan_number(parser *p)
{
    size_t start = p->pos;
    const char *t = p->text;
    if (p->pos < p->len && t[p->pos] == '-')
        p->pos++;
    if (p->pos >= p->len || !is_digit(t[p->pos]))
        return fail_at(p, start, "invalid number");
    if (t[p->pos] == '0') {
        p->pos++;
        if (p->pos < p->len && is_digit(t[p->pos]))
            return fail_at(p, start, "number with a leading zero");
    } else {
        while (p->pos < p->len && is_digit(t[p->pos]))
            p->pos++;
    }
    if (p->pos < p->len && t[p->pos] == '.') {
        p->pos++;
        if (p->pos >= p->len || !is_digit(t[p->pos]))
            return fail_at(p, start, "invalid number: no digit after the decimal point");
        while (p->pos < p->len && is_digit(t[p->pos]))
            p->pos++;
    }
    if (p->pos < p->len && (t[p->pos] == 'e' || t[p->pos] == 'E')) {
        p->pos++;
        if (p->pos < p->len && (t[p->pos] == '+' || t[p->pos] == '-'))
            p->pos++;
        if (p->pos >= p->len || !is_digit(t[p->pos]))
            return fail_at(p, start, "invalid number: no digit in the exponent");
        while (p->pos < p->len && is_digit(t[p->pos]))
            p->pos++;
    }
    return true;
}

/* strtod follows LC_NUMERIC, which a program may have changed; JSON numbers always use '.'. */
static locale_t c_numeric_locale;
static pthread_once_t c_numeric_once = PTHREAD_ONCE_INIT;
static void make_c_numeric_locale(void)
{
    c_numeric_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
}

/* Converts a literal already known to match the number grammar. 0: ok, ERANGE: magnitude
 * beyond double, ENOMEM: no memory for a very long literal's copy. */
static int literal_to_double(const char *s, size_t n, double *out)
{
    char local[128];
    char *buf = n < sizeof local ? local : malloc(n + 1);
    if (!buf)
        return ENOMEM;
    memcpy(buf, s, n);
    buf[n] = 0;
    pthread_once(&c_numeric_once, make_c_numeric_locale);
    double v = c_numeric_locale ? strtod_l(buf, NULL, c_numeric_locale) : strtod(buf, NULL);
    if (buf != local)
        free(buf);
    if (isinf(v))
        return ERANGE;
    *out = v;
    return 0;
}

static bool parse_number(parser *p, lr_json *node)
{
    size_t start = p->pos;
    if (!scan_number(p))
        return false;
    if (!node)
        return true;
    int err = literal_to_double(p->text + start, p->pos - start, &node->num);
    if (err == ERANGE)
        return fail_at(p, start, "number out of range");
    if (err)
        return fail_at(p, start, "out of memory");
    return true;
}

static bool parse_literal(parser *p, const char *word, lr_json_type type, lr_json *node)
{
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->text + p->pos, word, n) != 0)
        return fail_char(p, "a value");
    p->pos += n;
    if (node)
        node->type = type;
    return true;
}

static bool parse_value(parser *p, lr_json *node);

static bool enter(parser *p)
{
    if (++p->depth > LR_JSON_MAX_DEPTH)
        return fail_at(p, p->pos, "nesting deeper than %d levels", LR_JSON_MAX_DEPTH);
    p->pos++;
    skip_ws(p);
    return true;
}

static bool parse_array(parser *p, lr_json *node)
{
    if (!enter(p))
        return false;
    size_t count = 0;
    lr_json *last = NULL;
    if (p->pos < p->len && p->text[p->pos] == ']') {
        p->pos++;
    } else {
        for (;;) {
            lr_json *child = new_node(p);
            if (!parse_value(p, child))
                return false;
            if (node) {
                if (last)
                    last->next = child;
                else
                    node->child = child;
                last = child;
            }
            count++;
            skip_ws(p);
            if (p->pos < p->len && p->text[p->pos] == ',') {
                p->pos++;
                continue;
            }
            if (p->pos < p->len && p->text[p->pos] == ']') {
                p->pos++;
                break;
            }
            return fail_char(p, "',' or ']'");
        }
    }
    p->depth--;
    if (node) {
        node->type = LR_JSON_ARRAY;
        node->len = count;
    }
    return true;
}

static int compare_keys(const void *a, const void *b)
{
    const lr_json *x = *(const lr_json *const *)a, *y = *(const lr_json *const *)b;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->key, y->key, n);
    if (c)
        return c;
    return (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

static bool same_key(const lr_json *a, const lr_json *b)
{
    return a->key_len == b->key_len && memcmp(a->key, b->key, a->key_len) == 0;
}

static bool fail_duplicate(parser *p, const lr_json *a, const lr_json *b)
{
    const lr_json *later = a->raw > b->raw ? a : b;
    char shown[64];
    size_t n = 0;
    for (size_t i = 0; i < later->key_len && n + 1 < sizeof shown; i++) {
        unsigned char c = (unsigned char)later->key[i];
        shown[n++] = c >= 0x20 && c != 0x7f ? (char)c : '?';
    }
    shown[n] = 0;
    return fail_at(p, (size_t)(later->raw - p->text), "duplicate key \"%s%s\"", shown,
                   n < later->key_len ? "..." : "");
}

static bool check_duplicates(parser *p, lr_json *obj)
{
    size_t n = obj->len;
    if (n <= PAIRWISE_MAX) {
        for (const lr_json *a = obj->child; a; a = a->next)
            for (const lr_json *b = a->next; b; b = b->next)
                if (same_key(a, b))
                    return fail_duplicate(p, a, b);
        return true;
    }
    size_t i = 0;
    for (lr_json *c = obj->child; c; c = c->next)
        p->scratch[i++] = c;
    qsort(p->scratch, n, sizeof *p->scratch, compare_keys);
    for (i = 1; i < n; i++)
        if (same_key(p->scratch[i - 1], p->scratch[i]))
            return fail_duplicate(p, p->scratch[i - 1], p->scratch[i]);
    return true;
}

static bool parse_object(parser *p, lr_json *node)
{
    if (!enter(p))
        return false;
    size_t count = 0;
    lr_json *last = NULL;
    if (p->pos < p->len && p->text[p->pos] == '}') {
        p->pos++;
    } else {
        for (;;) {
            if (p->pos >= p->len || p->text[p->pos] != '"')
                return fail_char(p, "a string key");
            const char *key = NULL;
            size_t key_len = 0;
            if (!parse_string(p, &key, &key_len))
                return false;
            skip_ws(p);
            if (p->pos >= p->len || p->text[p->pos] != ':')
                return fail_char(p, "':'");
            p->pos++;
            lr_json *child = new_node(p);
            if (!parse_value(p, child))
                return false;
            if (node) {
                child->key = key;
                child->key_len = key_len;
                if (last)
                    last->next = child;
                else
                    node->child = child;
                last = child;
            }
            count++;
            skip_ws(p);
            if (p->pos < p->len && p->text[p->pos] == ',') {
                p->pos++;
                skip_ws(p);
                continue;
            }
            if (p->pos < p->len && p->text[p->pos] == '}') {
                p->pos++;
                break;
            }
            return fail_char(p, "',' or '}'");
        }
    }
    p->depth--;
    if (count > p->max_members)
        p->max_members = count;
    if (node) {
        node->type = LR_JSON_OBJECT;
        node->len = count;
        return check_duplicates(p, node);
    }
    return true;
}

static bool parse_value(parser *p, lr_json *node)
{
    skip_ws(p);
    if (p->pos >= p->len)
        return fail_char(p, "a value");
    size_t start = p->pos;
    bool ok;
    switch (p->text[p->pos]) {
    case '{': ok = parse_object(p, node); break;
    case '[': ok = parse_array(p, node); break;
    case '"': {
        const char *s = NULL;
        size_t n = 0;
        ok = parse_string(p, &s, &n);
        if (ok && node) {
            node->type = LR_JSON_STRING;
            node->str = s;
            node->len = n;
        }
        break;
    }
    case 't': ok = parse_literal(p, "true", LR_JSON_TRUE, node); break;
    case 'f': ok = parse_literal(p, "false", LR_JSON_FALSE, node); break;
    case 'n': ok = parse_literal(p, "null", LR_JSON_NULL, node); break;
    default:
        if (p->text[p->pos] == '-' || is_digit(p->text[p->pos])) {
            ok = parse_number(p, node);
            if (ok && node)
                node->type = LR_JSON_NUMBER;
        } else {
            ok = fail_char(p, "a value");
        }
    }
    if (ok && node) {
        node->raw = p->text + start;
        node->raw_len = p->pos - start;
    }
    return ok;
}

static bool parse_document(parser *p)
{
    lr_json *root = new_node(p);
    if (!parse_value(p, root))
        return false;
    skip_ws(p);
    if (p->pos != p->len)
        return fail_char(p, "the end of input after the value");
    return true;
}

lr_status lr_json_parse(lr_ctx *ctx, const char *text, size_t len, lr_json_doc **out)
{
    *out = NULL;
    parser p = {.text = text, .len = len};
    if (!parse_document(&p))
        return lr_fail(ctx, LR_ERR_DATA, "offset %zu: %s", p.err_pos, p.err);

    /* Layout of the block: the doc, the nodes, then the decoded strings. Node and byte
     * counts are bounded by len, but check the arithmetic anyway. */
    size_t head = (sizeof(lr_json_doc) + _Alignof(lr_json) - 1) / _Alignof(lr_json) *
                  _Alignof(lr_json);
    size_t node_bytes, total;
    if (__builtin_mul_overflow(p.n_nodes, sizeof(lr_json), &node_bytes) ||
        __builtin_add_overflow(head, node_bytes, &total) ||
        __builtin_add_overflow(total, p.n_chars, &total))
        return lr_fail(ctx, LR_ERR_NOMEM, "JSON document too large");
    unsigned char *block = malloc(total);
    lr_json **scratch = NULL;
    if (p.max_members > PAIRWISE_MAX)
        scratch = calloc(p.max_members, sizeof *scratch);
    if (!block || (p.max_members > PAIRWISE_MAX && !scratch)) {
        free(block);
        free(scratch);
        return lr_fail(ctx, LR_ERR_NOMEM, "out of memory for a JSON document of %zu bytes", len);
    }
    lr_json_doc *doc = (lr_json_doc *)block;
    parser fill = {.text = text, .len = len, .nodes = (lr_json *)(block + head),
                   .chars = (char *)block + head + node_bytes, .scratch = scratch};
    bool ok = parse_document(&fill);
    free(scratch);
    if (!ok) {
        free(block);
        return lr_fail(ctx, LR_ERR_DATA, "offset %zu: %s", fill.err_pos, fill.err);
    }
    assert(fill.n_nodes == p.n_nodes && fill.n_chars == p.n_chars);
    doc->root = fill.nodes;
    *out = doc;
    return LR_OK;
}

const lr_json *lr_json_root(const lr_json_doc *doc) { return doc ? doc->root : NULL; }

void lr_json_free(lr_json_doc *doc) { free(doc); }

const lr_json *lr_json_get(const lr_json *obj, const char *key)
{
    if (!obj || obj->type != LR_JSON_OBJECT)
        return NULL;
    size_t n = strlen(key);
    for (const lr_json *c = obj->child; c; c = c->next)
        if (c->key_len == n && memcmp(c->key, key, n) == 0)
            return c;
    return NULL;
}

bool lr_json_text_int(const char *text, size_t len, int64_t *out)
{
    size_t i = 0;
    bool negative = len > 0 && text[0] == '-';
    if (negative)
        i++;
    if (i >= len || !is_digit(text[i]) || (text[i] == '0' && len - i > 1))
        return false;
    /* Accumulate the magnitude as unsigned so that INT64_MIN fits. */
    uint64_t limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    uint64_t v = 0;
    for (; i < len; i++) {
        if (!is_digit(text[i]))
            return false;
        unsigned d = (unsigned)(text[i] - '0');
        if (v > (limit - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = negative ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

bool lr_json_text_number(const char *text, size_t len, double *out)
{
    parser p = {.text = text, .len = len};
    if (len == 0 || !scan_number(&p) || p.pos != len)
        return false;
    return literal_to_double(text, len, out) == 0;
}

bool lr_json_int(const lr_json *v, int64_t *out)
{
    return v && v->type == LR_JSON_NUMBER && lr_json_text_int(v->raw, v->raw_len, out);
}
