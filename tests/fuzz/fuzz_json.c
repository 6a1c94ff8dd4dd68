/* libFuzzer target for the strict JSON parser. A parsed document must be internally
 * consistent, and writing it back out (escaping every string) must give text that parses
 * to the same tree. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "longrange/json.h"

typedef struct {
    char *buf;
    size_t len, cap;
} out_buf;

static void put(out_buf *o, const char *s, size_t n)
{
    if (o->cap - o->len < n) {
        while (o->cap - o->len < n)
            o->cap = o->cap ? 2 * o->cap : 256;
        o->buf = realloc(o->buf, o->cap);
        EXPECT(o->buf);
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

static void put_string(out_buf *o, const char *s, size_t n)
{
    put(o, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == '"' || c == '\\') {
            char esc[8];
            snprintf(esc, sizeof esc, "\\u%04x", c);
            put(o, esc, 6);
        } else {
            put(o, s + i, 1);
        }
    }
    put(o, "\"", 1);
}

/* Checks one value and writes it out; returns the number of nodes in it. */
static size_t check_and_write(const lr_json *v, const char *text, size_t len, out_buf *o, int depth)
{
    EXPECT(depth <= LR_JSON_MAX_DEPTH + 1);
    EXPECT(v->raw >= text && v->raw_len <= len && (size_t)(v->raw - text) <= len - v->raw_len);
    size_t nodes = 1, count = 0;
    int64_t iv;
    switch (v->type) {
    case LR_JSON_NULL: put(o, "null", 4); break;
    case LR_JSON_TRUE: put(o, "true", 4); break;
    case LR_JSON_FALSE: put(o, "false", 5); break;
    case LR_JSON_NUMBER:
        if (lr_json_int(v, &iv))
            EXPECT((double)iv == v->num);
        put(o, v->raw, v->raw_len);
        break;
    case LR_JSON_STRING:
        EXPECT(v->str[v->len] == 0);
        put_string(o, v->str, v->len);
        break;
    case LR_JSON_ARRAY:
    case LR_JSON_OBJECT:
        put(o, v->type == LR_JSON_ARRAY ? "[" : "{", 1);
        for (const lr_json *c = v->child; c; c = c->next, count++) {
            if (count)
                put(o, ",", 1);
            if (v->type == LR_JSON_OBJECT) {
                EXPECT(c->key && c->key[c->key_len] == 0);
                if (strlen(c->key) == c->key_len)
                    EXPECT(lr_json_get(v, c->key) == c);
                put_string(o, c->key, c->key_len);
                put(o, ":", 1);
            } else {
                EXPECT(c->key == NULL);
            }
            nodes += check_and_write(c, text, len, o, depth + 1);
        }
        EXPECT(count == v->len);
        put(o, v->type == LR_JSON_ARRAY ? "]" : "}", 1);
        break;
    default: abort();
    }
    return nodes;
}

static size_t count_nodes(const lr_json *v)
{
    size_t n = 1;
    for (const lr_json *c = v->child; c; c = c->next)
        n += count_nodes(c);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lr_ctx *ctx = fuzz_ctx();
    const char *text = (const char *)data;
    double d;
    int64_t iv;
    if (lr_json_text_int(text, size, &iv))
        EXPECT(lr_json_text_number(text, size, &d));

    lr_json_doc *doc = NULL;
    if (lr_json_parse(ctx, text, size, &doc) != LR_OK) {
        EXPECT(doc == NULL && strncmp(lr_ctx_last_error(ctx), "offset ", 7) == 0);
        return 0;
    }
    out_buf o = {0};
    size_t nodes = check_and_write(lr_json_root(doc), text, size, &o, 1);
    lr_json_doc *again = NULL;
    EXPECT(lr_json_parse(ctx, o.buf, o.len, &again) == LR_OK);
    EXPECT(count_nodes(lr_json_root(again)) == nodes);
    out_buf o2 = {0};
    check_and_write(lr_json_root(again), o.buf, o.len, &o2, 1);
    EXPECT(o2.len == o.len && memcmp(o2.buf, o.buf, o.len) == 0);
    free(o.buf);
    free(o2.buf);
    lr_json_free(again);
    lr_json_free(doc);
    return 0;
}
