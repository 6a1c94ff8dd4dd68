/* The strict JSON parser: what it accepts, what it decodes, and every class of rejection. */
#include <locale.h>
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "longrange/json.h"

static lr_ctx *ctx;

static lr_json_doc *parse(const char *text)
{
    lr_json_doc *doc = NULL;
    lr_status s = lr_json_parse(ctx, text, strlen(text), &doc);
    if (s != LR_OK)
        printf("  parse failed: %s\n", lr_ctx_last_error(ctx));
    return doc;
}

/* Rejected with LR_ERR_DATA and a message "offset <offset>: ...<keyword>...". */
static int rejects(const char *text, size_t len, long offset, const char *keyword)
{
    lr_json_doc *doc = (lr_json_doc *)1;
    lr_status s = lr_json_parse(ctx, text, len, &doc);
    const char *msg = lr_ctx_last_error(ctx);
    char prefix[32];
    snprintf(prefix, sizeof prefix, "offset %ld: ", offset);
    int ok = s == LR_ERR_DATA && doc == NULL && strstr(msg, keyword) &&
             (offset < 0 ? strncmp(msg, "offset ", 7) == 0 : strncmp(msg, prefix, strlen(prefix)) == 0);
    if (!ok)
        printf("  input %.40s: status %d, message \"%s\", wanted offset %ld and \"%s\"\n", text, s,
               msg, offset, keyword);
    if (s == LR_OK)
        lr_json_free(doc);
    return ok;
}
#define REJECTS(text, offset, keyword) CHECK(rejects(text, strlen(text), offset, keyword))

static void test_values(void)
{
    lr_json_doc *doc = parse(" {\"a\": [1, -2.5e3, true, false, null, \"x\"], \"b\": {}, \"c\": []}\n");
    REQUIRE(doc);
    const lr_json *root = lr_json_root(doc);
    CHECK(root->type == LR_JSON_OBJECT && root->len == 3);
    CHECK(root->raw[0] == '{' && root->raw[root->raw_len - 1] == '}');
    const lr_json *a = lr_json_get(root, "a");
    REQUIRE(a && a->type == LR_JSON_ARRAY && a->len == 6);
    CHECK(a->key_len == 1 && strcmp(a->key, "a") == 0);
    const lr_json *v = a->child;
    CHECK(v->type == LR_JSON_NUMBER && v->num == 1 && v->key == NULL);
    v = v->next;
    CHECK(v->type == LR_JSON_NUMBER && v->num == -2500 && v->raw_len == 6 &&
          memcmp(v->raw, "-2.5e3", 6) == 0);
    v = v->next;
    CHECK(v->type == LR_JSON_TRUE);
    v = v->next;
    CHECK(v->type == LR_JSON_FALSE);
    v = v->next;
    CHECK(v->type == LR_JSON_NULL);
    v = v->next;
    CHECK(v->type == LR_JSON_STRING && v->len == 1 && strcmp(v->str, "x") == 0 && v->next == NULL);
    const lr_json *b = lr_json_get(root, "b");
    CHECK(b && b->type == LR_JSON_OBJECT && b->len == 0 && b->child == NULL);
    const lr_json *c = lr_json_get(root, "c");
    CHECK(c && c->type == LR_JSON_ARRAY && c->len == 0 && c->raw_len == 2);
    CHECK(lr_json_get(root, "d") == NULL && lr_json_get(a, "a") == NULL);
    lr_json_free(doc);

    /* Any value may be the whole document. */
    doc = parse("\"only\"");
    CHECK(doc && lr_json_root(doc)->type == LR_JSON_STRING);
    lr_json_free(doc);
    doc = parse(" -0 ");
    CHECK(doc && lr_json_root(doc)->num == 0 && lr_json_root(doc)->raw_len == 2);
    lr_json_free(doc);
}

static void test_strings(void)
{
    lr_json_doc *doc = parse("[\"q\\\"b\\\\s\\/n\\n\\t\\r\\b\\f\", \"\\u00e9\\u20ac\", \"\\ud83d\\ude00\","
                             " \"a\\u0000b\", \"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"]");
    REQUIRE(doc);
    const lr_json *s = lr_json_root(doc)->child;
    CHECK(strcmp(s->str, "q\"b\\s/n\n\t\r\b\f") == 0);
    s = s->next;
    CHECK(strcmp(s->str, "\xc3\xa9\xe2\x82\xac") == 0 && s->len == 5);
    s = s->next;
    CHECK(strcmp(s->str, "\xf0\x9f\x98\x80") == 0);
    s = s->next;
    CHECK(s->len == 3 && memcmp(s->str, "a\0b", 4) == 0);
    s = s->next;
    CHECK(strcmp(s->str, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80") == 0);
    lr_json_free(doc);

    doc = parse("{\"k\\u0041\": 1}");
    CHECK(doc && lr_json_get(lr_json_root(doc), "kA") != NULL);
    lr_json_free(doc);
}

static void test_rejects_syntax(void)
{
    CHECK(rejects("", 0, 0, "end of input"));
    REJECTS("   ", 3, "end of input");
    REJECTS("[1,]", 3, "unexpected character ']'");
    REJECTS("{\"a\":1,}", 7, "expected a string key");
    REJECTS("{\"a\" 1}", 5, "expected ':'");
    REJECTS("[1 2]", 3, "expected ',' or ']'");
    REJECTS("{'a':1}", 1, "expected a string key");
    REJECTS("{a:1}", 1, "expected a string key");
    REJECTS("[1] // note", 4, "end of input after the value");
    REJECTS("/* c */ 1", 0, "unexpected character '/'");
    REJECTS("1 2", 2, "end of input after the value");
    REJECTS("[tru]", 1, "expected a value");
    REJECTS("[NaN]", 1, "unexpected character 'N'");
    REJECTS("[Infinity]", 1, "unexpected character 'I'");
    REJECTS("[-Infinity]", 1, "invalid number");
    REJECTS("[01]", 1, "leading zero");
    REJECTS("[-01]", 1, "leading zero");
    REJECTS("[1.]", 1, "decimal point");
    REJECTS("[.5]", 1, "unexpected character '.'");
    REJECTS("[+1]", 1, "unexpected character '+'");
    REJECTS("[1e]", 1, "exponent");
    REJECTS("[1e+]", 1, "exponent");
    REJECTS("[0x10]", 2, "expected ',' or ']'");
    REJECTS("[1e400]", 1, "out of range");
    REJECTS("\xef\xbb\xbf{}", 0, "unexpected byte 0xef");
    REJECTS("[\"abc", 1, "unterminated string");
    REJECTS("[\"abc\\", 1, "unterminated string");
    REJECTS("{\"a\":1", 6, "expected ',' or '}'");
    CHECK(rejects("[1,\0]", 5, 3, "unexpected byte 0x00"));
}

static void test_rejects_strings(void)
{
    REJECTS("[\"a\tb\"]", 3, "control character 0x09");
    REJECTS("[\"a\nb\"]", 3, "control character 0x0a");
    REJECTS("[\"\\x41\"]", 2, "invalid escape");
    REJECTS("[\"\\u12\"]", 6, "invalid hex digit");
    REJECTS("[\"\\ud800\"]", 2, "unpaired high surrogate");
    REJECTS("[\"\\ud800x\"]", 2, "unpaired high surrogate");
    REJECTS("[\"\\udc00\"]", 2, "unpaired low surrogate");
    REJECTS("[\"\\ud800\\u0041\"]", 2, "not followed by a low");
    REJECTS("[\"\xff\"]", 2, "invalid UTF-8");
    REJECTS("[\"\xc0\x80\"]", 2, "invalid UTF-8");         /* overlong NUL */
    REJECTS("[\"\xe0\x80\xaf\"]", 2, "invalid UTF-8");     /* overlong '/' */
    REJECTS("[\"\xed\xa0\x80\"]", 2, "invalid UTF-8");     /* encoded surrogate */
    REJECTS("[\"\xf4\x90\x80\x80\"]", 2, "invalid UTF-8"); /* above U+10FFFF */
    REJECTS("[\"\xf5\x80\x80\x80\"]", 2, "invalid UTF-8");
    REJECTS("[\"\xe2\x82\"]", 2, "invalid UTF-8");         /* cut short */
    REJECTS("[\"\x80\"]", 2, "invalid UTF-8");             /* lone continuation */
    REJECTS("[\"\xc3\xa9", 1, "unterminated string");
}

/* A duplicate is reported at the offset of its value. */
static void test_duplicates_and_depth(void)
{
    REJECTS("{\"a\":1,\"b\":2,\"a\":3}", 17, "duplicate key \"a\"");
    REJECTS("{\"a\":{\"x\":1,\"x\":1}}", 16, "duplicate key \"x\"");
    /* The same key spelled with an escape is the same key. */
    REJECTS("{\"A\":1,\"\\u0041\":2}", 16, "duplicate key \"A\"");
    lr_json_doc *doc = parse("{\"a\":{\"a\":1},\"b\":{\"a\":2}}");
    CHECK(doc != NULL);
    lr_json_free(doc);

    /* Large objects take the sorting path. */
    size_t n = 2000, cap = n * 16 + 32, pos = 0;
    char *big = malloc(cap);
    REQUIRE(big);
    pos += (size_t)snprintf(big + pos, cap - pos, "{");
    for (size_t i = 0; i < n; i++)
        pos += (size_t)snprintf(big + pos, cap - pos, "%s\"k%zu\":%zu", i ? "," : "", i, i);
    snprintf(big + pos, cap - pos, "}");
    doc = parse(big);
    CHECK(doc && lr_json_root(doc)->len == n);
    const lr_json *v = lr_json_get(lr_json_root(doc), "k1234");
    CHECK(v && v->num == 1234);
    lr_json_free(doc);
    snprintf(big + pos, cap - pos, ",\"k777\":0}");
    CHECK(rejects(big, strlen(big), (long)pos + 8, "duplicate key \"k777\""));
    free(big);

    char deep[2 * LR_JSON_MAX_DEPTH + 3];
    memset(deep, '[', LR_JSON_MAX_DEPTH);
    memset(deep + LR_JSON_MAX_DEPTH, ']', LR_JSON_MAX_DEPTH);
    deep[2 * LR_JSON_MAX_DEPTH] = 0;
    doc = parse(deep);
    CHECK(doc != NULL);
    lr_json_free(doc);
    memset(deep, '[', LR_JSON_MAX_DEPTH + 1);
    memset(deep + LR_JSON_MAX_DEPTH + 1, ']', LR_JSON_MAX_DEPTH + 1);
    deep[2 * LR_JSON_MAX_DEPTH + 2] = 0;
    REJECTS(deep, LR_JSON_MAX_DEPTH, "nesting deeper than 64");
}

static void test_integers(void)
{
    lr_json_doc *doc = parse("[9223372036854775807, -9223372036854775808, 9223372036854775808,"
                             " 1.0, 1e3, -0, 12]");
    REQUIRE(doc);
    const lr_json *v = lr_json_root(doc)->child;
    int64_t x = 0;
    CHECK(lr_json_int(v, &x) && x == INT64_MAX);
    v = v->next;
    CHECK(lr_json_int(v, &x) && x == INT64_MIN);
    v = v->next;
    CHECK(!lr_json_int(v, &x));
    v = v->next;
    CHECK(!lr_json_int(v, &x));
    v = v->next;
    CHECK(!lr_json_int(v, &x) && v->num == 1000);
    v = v->next;
    CHECK(lr_json_int(v, &x) && x == 0);
    v = v->next;
    CHECK(lr_json_int(v, &x) && x == 12);
    CHECK(!lr_json_int(lr_json_root(doc), &x));
    lr_json_free(doc);

    CHECK(lr_json_text_int("42", 2, &x) && x == 42);
    CHECK(!lr_json_text_int(" 42", 3, &x) && !lr_json_text_int("42 ", 3, &x));
    CHECK(!lr_json_text_int("042", 3, &x) && !lr_json_text_int("", 0, &x));
    CHECK(!lr_json_text_int("-", 1, &x) && !lr_json_text_int("4a", 2, &x));
    double d = 0;
    CHECK(lr_json_text_number("1e-05", 5, &d) && d == 1e-05);
    CHECK(lr_json_text_number("-0.25", 5, &d) && d == -0.25);
    CHECK(!lr_json_text_number("1e999", 5, &d) && !lr_json_text_number("nan", 3, &d));
    CHECK(!lr_json_text_number("1.5 ", 4, &d) && !lr_json_text_number("", 0, &d));
}

/* strtod would read "1.5" as 1 under a locale whose decimal separator is a comma. */
static void test_locale_independent(void)
{
    const char *names[] = {"de_DE.UTF-8", "fr_FR.UTF-8", "de_DE", "C.UTF-8"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (setlocale(LC_NUMERIC, names[i]))
            break;
    lr_json_doc *doc = parse("[1.5, 2.25e1]");
    CHECK(doc && lr_json_root(doc)->child->num == 1.5 && lr_json_root(doc)->child->next->num == 22.5);
    lr_json_free(doc);
    setlocale(LC_NUMERIC, "C");
}

int main(void)
{
    lr_ctx_params p = lr_ctx_default_params();
    p.n_threads = 1;
    if (lr_ctx_create(&ctx, &p) != LR_OK)
        return 1;
    RUN(test_values);
    RUN(test_strings);
    RUN(test_rejects_syntax);
    RUN(test_rejects_strings);
    RUN(test_duplicates_and_depth);
    RUN(test_integers);
    RUN(test_locale_independent);
    lr_ctx_destroy(ctx);
    return CHECK_DONE();
}
