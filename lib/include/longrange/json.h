/* A small strict JSON parser (RFC 8259) for model headers and config files.
 * Strict: no trailing commas, comments, NaN, leading zeros or control characters in strings;
 * valid UTF-8 only; duplicate object keys rejected; nesting depth capped. The whole document
 * lives in one arena-like block owned by the lr_json_doc, freed with lr_json_free. */
#ifndef LONGRANGE_JSON_H
#define LONGRANGE_JSON_H

#include <stdbool.h>

#include "longrange/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { LR_JSON_NULL, LR_JSON_FALSE, LR_JSON_TRUE, LR_JSON_NUMBER, LR_JSON_STRING,
               LR_JSON_ARRAY, LR_JSON_OBJECT } lr_json_type;

typedef struct lr_json lr_json;
struct lr_json {
    lr_json_type type;
    const char *key;     /* member name when inside an object, else NULL */
    size_t key_len;
    const char *str;     /* STRING: decoded, NUL-terminated (may contain \0 escapes: see len) */
    size_t len;          /* STRING: decoded bytes; ARRAY/OBJECT: number of children */
    const char *raw;     /* NUMBER: the literal text; any value: its source text */
    size_t raw_len;
    double num;          /* NUMBER */
    lr_json *child;      /* ARRAY/OBJECT: first child */
    lr_json *next;       /* next sibling */
};

typedef struct lr_json_doc lr_json_doc;

#define LR_JSON_MAX_DEPTH 64

/* Parses text[0..len). On error returns LR_ERR_DATA with "offset N: reason" in ctx.
 * Decoded strings live in the doc; `raw` points into text, which must outlive the doc. */
lr_status lr_json_parse(lr_ctx *ctx, const char *text, size_t len, lr_json_doc **out);
const lr_json *lr_json_root(const lr_json_doc *doc);
void lr_json_free(lr_json_doc *doc);

const lr_json *lr_json_get(const lr_json *obj, const char *key);
/* Integer value of a NUMBER written without fraction or exponent that fits in int64. */
bool lr_json_int(const lr_json *v, int64_t *out);
/* The same rules applied to text that must be exactly one JSON number (no whitespace):
 * for numbers held as text, such as safetensors metadata values. */
bool lr_json_text_int(const char *text, size_t len, int64_t *out);
bool lr_json_text_number(const char *text, size_t len, double *out);

#ifdef __cplusplus
}
#endif
#endif
