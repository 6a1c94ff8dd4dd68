/* Model files: the malformed corpus, good files and Hugging Face directories, lr_model_get's
 * checks, memory opens, and the writer. Fixtures come from tools/make_bad_models.py; paths
 * are relative to the repository root, where the tests run. */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "files.h"
#include "longrange/model.h"

#define BAD "tests/fixtures/models/bad/"
#define GOOD "tests/fixtures/models/good/"

static lr_ctx *ctx;

/* Every entry of the malformed corpus, with what its message must say. */
static const struct {
    const char *name;
    const char *keyword;
    const char *tensor; /* the tensor the message must name, if any */
} bad_cases[] = {
    {"empty.safetensors", "file is empty", NULL},
    {"truncated_length.safetensors", "truncated", NULL},
    {"truncated_data.safetensors", "out of range", "'w'"},
    {"header_beyond_file.safetensors", "runs past the end of the file", NULL},
    {"header_over_cap.safetensors", "exceeds the limit", NULL},
    {"invalid_json.safetensors", "header is not valid JSON: offset 37: unexpected end", NULL},
    {"trailing_comma.safetensors", "not valid JSON: offset 54: unexpected character '}'", NULL},
    {"comment_in_header.safetensors", "unexpected character '/'", NULL},
    {"invalid_utf8.safetensors", "invalid UTF-8", NULL},
    {"lone_surrogate.safetensors", "unpaired high surrogate", NULL},
    {"deep_nesting.safetensors", "nesting deeper than 64", NULL},
    {"header_not_object.safetensors", "header is not a JSON object", NULL},
    {"duplicate_tensor.safetensors", "duplicate key \"w\"", NULL},
    {"nul_in_name.safetensors", "NUL character", NULL},
    {"overlapping_offsets.safetensors", "overlap", "'a' and 'b'"},
    {"offsets_out_of_range.safetensors", "out of range", "'w'"},
    {"offsets_reversed.safetensors", "begin after their end", "'w'"},
    {"offsets_not_pair.safetensors", "not a pair", "'w'"},
    {"gap_not_covered.safetensors", "not covered by any tensor", "'b'"},
    {"trailing_bytes.safetensors", "not covered by any tensor", NULL},
    {"subbyte_not_whole.safetensors", "shape [3] of F4 is not a whole number of bytes", "'w'"},
    {"unknown_dtype.safetensors", "unknown dtype 'F24'", "'w'"},
    {"dtype_not_string.safetensors", "dtype is not a string", "'w'"},
    {"size_mismatch.safetensors", "byte size mismatch", "'w'"},
    {"shape_overflow.safetensors", "overflows", "'w'"},
    {"bytes_overflow.safetensors", "overflows", "'w'"},
    {"negative_dim.safetensors", "negative dimension", "'w'"},
    {"non_integer_dim.safetensors", "dimension 0 (2.5) is not an integer", "'w'"},
    {"string_dim.safetensors", "is not an integer", "'w'"},
    {"dim_beyond_int64.safetensors", "is not an integer", "'w'"},
    {"too_many_dims.safetensors", "more than the 8 supported", "'w'"},
    {"unknown_key.safetensors", "unknown key 'layout'", "'w'"},
    {"missing_offsets.safetensors", "missing \"data_offsets\"", "'w'"},
    {"tensor_not_object.safetensors", "not a JSON object", "'w'"},
    {"metadata_non_string.safetensors", "value of 'd_model' is not a string", NULL},
    {"metadata_nul.safetensors", "value of 'arch' contains a NUL character", NULL},
    {"metadata_not_object.safetensors", "__metadata__ is not a JSON object", NULL},
    {"wrong_arch.safetensors", "wrong arch 'not-a-model', expected 'test-model'", NULL},
    {"sharded_missing_tensor", "listed in the index is missing", "'b'"},
    {"sharded_duplicate", "duplicate tensor", "'a'"},
    {"sharded_unlisted", "is not listed in", "'extra'"},
    {"sharded_path_escape", "not a file name in the same directory", "'a'"},
    {"sharded_bad_shard", "out of range", "'a'"},
    {"dir_invalid_config", "config.json: not valid JSON: offset 44: number with a leading zero", NULL},
    {"dir_without_weights", "needs model.safetensors or model.safetensors.index.json", NULL},
};
#define N_BAD (sizeof bad_cases / sizeof bad_cases[0])

/* Moves the contents of a read_file buffer one byte up, to an odd address. */
static char *shifted(char *buf, size_t size)
{
    memmove(buf + 1, buf, size);
    return buf + 1;
}

/* The model rejects with LR_ERR_MODEL, and the message starts with `where` and contains
 * the keyword and tensor name. */
static int rejected(lr_status s, const char *where, const char *keyword, const char *tensor)
{
    const char *msg = lr_ctx_last_error(ctx);
    int ok = s == LR_ERR_MODEL && strncmp(msg, where, strlen(where)) == 0 && strstr(msg, keyword) &&
             (!tensor || strstr(msg, tensor)) && !strchr(msg, '\n');
    if (!ok)
        printf("  %s: status %d, message \"%s\"; wanted \"%s\" and %s\n", where, s, msg, keyword,
               tensor ? tensor : "no tensor");
    return ok;
}

static void test_bad_corpus(void)
{
    for (size_t i = 0; i < N_BAD; i++) {
        char path[256];
        snprintf(path, sizeof path, BAD "%s", bad_cases[i].name);
        lr_model *m = (lr_model *)1;
        lr_status s = lr_model_open(ctx, path, &m);
        if (strcmp(bad_cases[i].name, "wrong_arch.safetensors") == 0) {
            REQUIRE(s == LR_OK);
            CHECK(lr_model_expect_arch(ctx, m, "not-a-model") == LR_OK);
            s = lr_model_expect_arch(ctx, m, "test-model");
            lr_model_close(m);
        } else {
            CHECK(m == NULL);
        }
        CHECK(rejected(s, path, bad_cases[i].keyword, bad_cases[i].tensor));
    }
}

/* Every file in the corpus directory has a case above, so none goes untested. */
static void test_bad_corpus_complete(void)
{
    DIR *d = opendir(BAD);
    REQUIRE(d);
    size_t seen = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        seen++;
        size_t i = 0;
        while (i < N_BAD && strcmp(bad_cases[i].name, e->d_name) != 0)
            i++;
        CHECKF(i < N_BAD, "%s has no test case", e->d_name);
    }
    closedir(d);
    CHECK(seen == N_BAD);
}

/* The single-file cases fail the same way from memory, at an odd address too. */
static void test_bad_corpus_in_memory(void)
{
    for (size_t i = 0; i < N_BAD; i++) {
        const char *name = bad_cases[i].name;
        if (!strstr(name, ".safetensors") || strcmp(name, "wrong_arch.safetensors") == 0)
            continue;
        char path[256];
        snprintf(path, sizeof path, BAD "%s", name);
        size_t size;
        char *buf = read_file(path, &size);
        REQUIRE(buf);
        for (int shift = 0; shift < 2; shift++) {
            lr_model *m = (lr_model *)1;
            lr_status s = lr_model_open_memory(ctx, "embedded", shift ? shifted(buf, size) : buf,
                                               size, &m);
            CHECK(m == NULL);
            CHECK(rejected(s, "embedded: ", bad_cases[i].keyword, bad_cases[i].tensor));
        }
        free(buf);
    }
}

static int aligned(const void *p, size_t n) { return (uintptr_t)p % n == 0; }

/* Checks the contents of good/with_metadata.safetensors, however it was opened. */
static void check_with_metadata(const lr_model *m)
{
    static const char *names[] = {"embed.weight", "norm.bias", "head.bf16", "ids",
                                  "mask", "positions", "empty", "scalar"};
    REQUIRE(lr_model_tensor_count(m) == 8);
    for (size_t i = 0; i < 8; i++)
        CHECK(strcmp(lr_model_tensor_at(m, i)->name, names[i]) == 0);
    CHECK(lr_model_tensor_at(m, 8) == NULL);

    lr_tensor t;
    int64_t shape34[] = {3, 4};
    REQUIRE(lr_model_get(ctx, m, "embed.weight", LR_F32, 2, shape34, &t) == LR_OK);
    CHECK(t.ndim == 2 && t.shape[0] == 3 && t.shape[1] == 4 && t.stride[0] == 4 && aligned(t.data, 4));
    for (int i = 0; i < 12; i++)
        CHECK(((const float *)t.data)[i] == 0.5f * (float)i);

    int64_t any[] = {-1};
    REQUIRE(lr_model_get(ctx, m, "norm.bias", LR_F16, 1, any, &t) == LR_OK);
    const uint16_t *h = t.data;
    CHECK(aligned(h, 2) && lr_f16_to_f32(h[0]) == -1 && lr_f16_to_f32(h[3]) == 2.5f);
    REQUIRE(lr_model_get(ctx, m, "head.bf16", LR_BF16, 1, NULL, &t) == LR_OK);
    const uint16_t *bf = t.data;
    CHECK(lr_bf16_to_f32(bf[0]) == 1.5f && lr_bf16_to_f32(bf[1]) == -2 && lr_bf16_to_f32(bf[2]) == 0.25f);
    REQUIRE(lr_model_get(ctx, m, "ids", LR_I32, 1, NULL, &t) == LR_OK);
    const int32_t *ids = t.data;
    CHECK(ids[0] == 7 && ids[1] == -3 && ids[2] == INT32_MAX);
    REQUIRE(lr_model_get(ctx, m, "mask", LR_U8, 1, NULL, &t) == LR_OK);
    CHECK(((const uint8_t *)t.data)[2] == 255);
    int64_t shape04[] = {0, 4};
    CHECK(lr_model_get(ctx, m, "empty", LR_F32, 2, shape04, &t) == LR_OK && lr_tensor_numel(&t) == 0);
    REQUIRE(lr_model_get(ctx, m, "scalar", LR_F32, 0, NULL, &t) == LR_OK);
    CHECK(t.ndim == 0 && *(const float *)t.data == 42);

    /* A dtype libcore does not compute in loads, and fails only when asked for. */
    const lr_model_tensor *pos = lr_model_find(m, "positions");
    REQUIRE(pos);
    CHECK(pos->dtype == -1 && strcmp(pos->dtype_name, "I64") == 0 && pos->nbytes == 24);
    CHECK(pos->ndim == 1 && pos->shape[0] == 3);
    CHECK(lr_model_get(ctx, m, "positions", LR_I32, 1, NULL, &t) == LR_ERR_MODEL);
    CHECK(strstr(lr_ctx_last_error(ctx), "'positions': expected dtype I32, found I64 (not a dtype"));

    REQUIRE(lr_model_meta_count(m) == 4);
    const char *key, *value;
    lr_model_meta_at(m, 0, &key, &value);
    CHECK(strcmp(key, "arch") == 0 && strcmp(value, "test-model") == 0);
    lr_model_meta_at(m, 4, &key, &value);
    CHECK(key == NULL && value == NULL);
    CHECK(strcmp(lr_model_meta(m, "note"), "line\nbreak, \"quoted\", caf\xc3\xa9") == 0);
    CHECK(lr_model_meta(m, "nope") == NULL);
    int64_t d = 0;
    double eps = 0;
    CHECK(lr_model_meta_int(ctx, m, "d_model", false, 0, &d) == LR_OK && d == 4);
    CHECK(lr_model_meta_float(ctx, m, "eps", false, 0, &eps) == LR_OK && eps == 1e-05);
    CHECK(lr_model_meta_int(ctx, m, "n_layers", true, 7, &d) == LR_OK && d == 7);
    CHECK(lr_model_meta_int(ctx, m, "n_layers", false, 7, &d) == LR_ERR_MODEL);
    CHECK(strstr(lr_ctx_last_error(ctx), "metadata 'n_layers' is missing"));
    CHECK(lr_model_meta_int(ctx, m, "eps", false, 0, &d) == LR_ERR_MODEL);
    CHECK(strstr(lr_ctx_last_error(ctx), "metadata 'eps' is \"1e-05\", not an integer"));
    CHECK(lr_model_meta_float(ctx, m, "arch", true, 0, &eps) == LR_ERR_MODEL);
    CHECK(strstr(lr_ctx_last_error(ctx), "not a number"));
    CHECK(lr_model_expect_arch(ctx, m, "test-model") == LR_OK);
}

static void test_good_file(void)
{
    lr_model *m = NULL;
    REQUIRE(lr_model_open(ctx, GOOD "with_metadata.safetensors", &m) == LR_OK);
    CHECK(strcmp(lr_model_path(m), GOOD "with_metadata.safetensors") == 0);
    check_with_metadata(m);
    lr_model_close(m);
}

static void test_memory_open(void)
{
    size_t size;
    char *buf = read_file(GOOD "with_metadata.safetensors", &size);
    REQUIRE(buf);
    /* Shifted to an odd address, every tensor is misaligned in memory and must be copied. */
    for (int shift = 0; shift < 2; shift++) {
        lr_model *m = NULL;
        const char *data = shift ? shifted(buf, size) : buf;
        REQUIRE(lr_model_open_memory(ctx, "builtin", data, size, &m) == LR_OK);
        CHECK(strcmp(lr_model_path(m), "builtin") == 0);
        check_with_metadata(m);
        lr_tensor t;
        int64_t wrong[] = {4, 3};
        CHECK(lr_model_get(ctx, m, "embed.weight", LR_F32, 2, wrong, &t) == LR_ERR_MODEL);
        CHECK(strncmp(lr_ctx_last_error(ctx), "builtin: tensor 'embed.weight'", 30) == 0);
        lr_model_close(m);
    }
    free(buf);
}

static void test_get_mismatch(void)
{
    lr_model *m = NULL;
    REQUIRE(lr_model_open(ctx, GOOD "with_metadata.safetensors", &m) == LR_OK);
    lr_tensor t;
    int64_t s35[] = {3, 5}, sx5[] = {-1, 5}, s3[] = {3};
    CHECK(lr_model_get(ctx, m, "embed.weight", LR_F32, 2, s35, &t) == LR_ERR_MODEL);
    CHECK(strcmp(lr_ctx_last_error(ctx), GOOD "with_metadata.safetensors: tensor 'embed.weight': "
                                         "expected shape [3, 5], found [3, 4]") == 0);
    CHECK(lr_model_get(ctx, m, "embed.weight", LR_F32, 2, sx5, &t) == LR_ERR_MODEL);
    CHECK(strstr(lr_ctx_last_error(ctx), "expected shape [*, 5], found [3, 4]"));
    CHECK(lr_model_get(ctx, m, "embed.weight", LR_F32, 1, s3, &t) == LR_ERR_MODEL);
    CHECK(strstr(lr_ctx_last_error(ctx), "expected shape [3], found [3, 4]"));
    CHECK(lr_model_get(ctx, m, "embed.weight", LR_F32, 3, NULL, &t) == LR_ERR_MODEL);
    CHECK(strstr(lr_ctx_last_error(ctx), "expected shape [*, *, *], found [3, 4]"));
    CHECK(lr_model_get(ctx, m, "embed.weight", LR_F16, 2, NULL, &t) == LR_ERR_MODEL);
    CHECK(strstr(lr_ctx_last_error(ctx), "'embed.weight': expected dtype F16, found F32"));
    CHECK(lr_model_get(ctx, m, "embed.bias", LR_F32, 1, NULL, &t) == LR_ERR_MODEL);
    CHECK(strcmp(lr_ctx_last_error(ctx),
                 GOOD "with_metadata.safetensors: tensor 'embed.bias' not found") == 0);
    CHECK(lr_model_get(ctx, m, "embed.weight", LR_F32, 5, NULL, &t) == LR_ERR_ARG);
    CHECK(lr_model_find(m, "embed.weight") == lr_model_tensor_at(m, 0));
    CHECK(lr_model_find(m, "embed") == NULL);
    lr_model_close(m);
}

static void test_unaligned_header(void)
{
    lr_model *m = NULL;
    REQUIRE(lr_model_open(ctx, GOOD "unaligned_header.safetensors", &m) == LR_OK);
    REQUIRE(lr_model_tensor_count(m) == 3);
    CHECK(strcmp(lr_model_tensor_at(m, 0)->name, "a\xc3\xaf") == 0);
    CHECK(strcmp(lr_model_tensor_at(m, 1)->name, "b") == 0);
    CHECK(lr_model_meta_count(m) == 0);
    lr_tensor t;
    REQUIRE(lr_model_get(ctx, m, "b", LR_F32, 1, NULL, &t) == LR_OK);
    const float *b = t.data;
    CHECK(aligned(b, 4) && b[0] == 1 && b[1] == 2 && b[2] == 3);
    REQUIRE(lr_model_get(ctx, m, "a\xc3\xaf", LR_F16, 1, NULL, &t) == LR_OK);
    const uint16_t *a = t.data;
    CHECK(aligned(a, 2) && lr_f16_to_f32(a[0]) == 0.5f && lr_f16_to_f32(a[1]) == -0.5f);
    int64_t zero[] = {0};
    CHECK(lr_model_get(ctx, m, "z", LR_U8, 1, zero, &t) == LR_OK);
    CHECK(lr_model_expect_arch(ctx, m, "test-model") == LR_ERR_MODEL);
    CHECK(strstr(lr_ctx_last_error(ctx), "no architecture in the metadata"));
    lr_model_close(m);
}

static void test_hf_directory(void)
{
    const char *paths[] = {GOOD "hf_dir", GOOD "hf_dir/"};
    for (int k = 0; k < 2; k++) {
        lr_model *m = NULL;
        REQUIRE(lr_model_open(ctx, paths[k], &m) == LR_OK);
        CHECK(strcmp(lr_model_path(m), paths[k]) == 0);
        REQUIRE(lr_model_tensor_count(m) == 1);
        lr_tensor t;
        int64_t shape[] = {2, 4};
        REQUIRE(lr_model_get(ctx, m, "embed.weight", LR_F32, 2, shape, &t) == LR_OK);
        CHECK(((const float *)t.data)[7] == 7);
        /* __metadata__ first, then config.json's members in file order. */
        static const char *expect[][2] = {
            {"format", "pt"}, {"architectures", "[\n    \"TestModel\"\n  ]"},
            {"model_type", "test-model"}, {"hidden_size", "4"}, {"layer_norm_eps", "1e-05"},
            {"tie_word_embeddings", "false"}, {"name", "tiny"}};
        REQUIRE(lr_model_meta_count(m) == 7);
        for (size_t i = 0; i < 7; i++) {
            const char *key, *value;
            lr_model_meta_at(m, i, &key, &value);
            CHECKF(strcmp(key, expect[i][0]) == 0 && strcmp(value, expect[i][1]) == 0,
                   "meta %zu: %s = %s", i, key, value);
        }
        int64_t hidden = 0;
        double eps = 0;
        CHECK(lr_model_meta_int(ctx, m, "hidden_size", false, 0, &hidden) == LR_OK && hidden == 4);
        CHECK(lr_model_meta_float(ctx, m, "layer_norm_eps", false, 0, &eps) == LR_OK && eps == 1e-5);
        CHECK(lr_model_expect_arch(ctx, m, "test-model") == LR_OK);
        CHECK(lr_model_expect_arch(ctx, m, "hyenadna") == LR_ERR_MODEL);
        CHECK(strstr(lr_ctx_last_error(ctx), "wrong arch 'test-model', expected 'hyenadna'"));
        int64_t wrong[] = {4, 2};
        CHECK(lr_model_get(ctx, m, "embed.weight", LR_F32, 2, wrong, &t) == LR_ERR_MODEL);
        CHECK(strstr(lr_ctx_last_error(ctx), "hf_dir/model.safetensors: tensor 'embed.weight': "
                                             "expected shape [4, 2], found [2, 4]"));
        lr_model_close(m);
    }
}

static void test_hf_sharded(void)
{
    lr_model *m = NULL;
    REQUIRE(lr_model_open(ctx, GOOD "hf_sharded", &m) == LR_OK);
    REQUIRE(lr_model_tensor_count(m) == 3);
    CHECK(strcmp(lr_model_tensor_at(m, 0)->name, "embed") == 0);
    CHECK(strcmp(lr_model_tensor_at(m, 1)->name, "layers.0.w") == 0);
    CHECK(strcmp(lr_model_tensor_at(m, 2)->name, "layers.1.w") == 0);
    lr_tensor t;
    int64_t shape[] = {2, 2};
    REQUIRE(lr_model_get(ctx, m, "layers.1.w", LR_F32, 2, shape, &t) == LR_OK);
    CHECK(((const float *)t.data)[3] == 2);
    REQUIRE(lr_model_get(ctx, m, "layers.0.w", LR_F32, 2, shape, &t) == LR_OK);
    CHECK(((const float *)t.data)[0] == 1);
    /* Each shard says "format": "pt"; the key appears once. */
    CHECK(lr_model_meta_count(m) == 3);
    CHECK(strcmp(lr_model_meta(m, "format"), "pt") == 0);
    int64_t layers = 0;
    CHECK(lr_model_meta_int(ctx, m, "num_layers", false, 0, &layers) == LR_OK && layers == 2);
    CHECK(lr_model_expect_arch(ctx, m, "test-sharded") == LR_OK);
    CHECK(lr_model_get(ctx, m, "layers.1.w", LR_F32, 1, NULL, &t) == LR_ERR_MODEL);
    CHECK(strstr(lr_ctx_last_error(ctx), "hf_sharded/model-00002-of-00002.safetensors: tensor 'layers.1.w'"));
    lr_model_close(m);

    CHECK(lr_model_open(ctx, "tests/fixtures/models/no-such-model", &m) == LR_ERR_IO && m == NULL);
    CHECK(strstr(lr_ctx_last_error(ctx), "no-such-model: No such file or directory"));
}

/* A fresh directory under $TMPDIR for files a test writes. */
static int make_temp_dir(char *dir, size_t size)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, size, "%s/lr-test-model-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    return mkdtemp(dir) != NULL;
}

static int count_temporaries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += strstr(e->d_name, ".tmp.") != NULL;
    if (d)
        closedir(d);
    return n;
}

static void test_write_round_trip(void)
{
    char dir[256];
    REQUIRE(make_temp_dir(dir, sizeof dir));
    char path[300];
    snprintf(path, sizeof path, "%s/out.safetensors", dir);

    float w[6] = {1, -2, 3.5f, 1e-8f, 0, 65504};
    uint16_t half[3] = {lr_f32_to_f16(0.5f), lr_f32_to_f16(-1), lr_f32_to_f16(2)};
    uint16_t bf[2] = {lr_f32_to_bf16(1.5f), lr_f32_to_bf16(-3)};
    int32_t ids[2] = {INT32_MIN, 5};
    uint8_t bytes[3] = {1, 2, 3};
    int64_t s23[] = {2, 3}, s3[] = {3}, s2[] = {2}, s0[] = {0, 7};
    /* Small elements first in the header, so that only the writer's ordering keeps the data
     * aligned. */
    lr_named_tensor tensors[] = {
        {"bytes", lr_tensor_from(bytes, LR_U8, 1, s3)},
        {"layers.0.w", lr_tensor_from(w, LR_F32, 2, s23)},
        {"half \"quoted\"", lr_tensor_from(half, LR_F16, 1, s3)},
        {"bf", lr_tensor_from(bf, LR_BF16, 1, s2)},
        {"ids", lr_tensor_from(ids, LR_I32, 1, s2)},
        {"none", lr_tensor_from(NULL, LR_F32, 2, s0)},
        {"scalar", lr_tensor_from(w + 2, LR_F32, 0, NULL)},
    };
    const char *meta[] = {"arch", "test-model", "note", "tab\there \xc3\xa9\n", NULL};
    REQUIRE(lr_safetensors_write(ctx, path, meta, tensors, 7) == LR_OK);
    CHECK(count_temporaries(dir) == 0);

    size_t size;
    char *file = read_file(path, &size);
    REQUIRE(file);
    uint64_t header_len = 0;
    memcpy(&header_len, file, 8);
    CHECK((8 + header_len) % 8 == 0);
    CHECK(size == 8 + header_len + 3 + 24 + 6 + 4 + 8 + 4);
    free(file);

    lr_model *m = NULL;
    REQUIRE(lr_model_open(ctx, path, &m) == LR_OK);
    REQUIRE(lr_model_tensor_count(m) == 7);
    for (size_t i = 0; i < 7; i++) {
        const lr_model_tensor *t = lr_model_tensor_at(m, i);
        const lr_tensor *src = &tensors[i].tensor;
        size_t nbytes;
        lr_shape_nbytes(src->dtype, src->ndim, src->shape, &nbytes);
        CHECK(strcmp(t->name, tensors[i].name) == 0 && t->dtype == (int)src->dtype);
        CHECK(t->ndim == src->ndim && t->nbytes == nbytes);
        CHECK(nbytes == 0 || memcmp(t->data, src->data, nbytes) == 0);
        CHECK(aligned(t->data, lr_dtype_size(src->dtype)));
    }
    CHECK(lr_model_meta_count(m) == 2 && strcmp(lr_model_meta(m, "note"), "tab\there \xc3\xa9\n") == 0);
    lr_model_close(m);

    /* Overwriting replaces the file. */
    REQUIRE(lr_safetensors_write(ctx, path, NULL, tensors + 1, 1) == LR_OK);
    REQUIRE(lr_model_open(ctx, path, &m) == LR_OK);
    CHECK(lr_model_tensor_count(m) == 1 && lr_model_meta_count(m) == 0);
    lr_model_close(m);

    /* What a reader would reject is refused before anything is written. */
    lr_named_tensor dup[] = {tensors[0], tensors[0]};
    CHECK(lr_safetensors_write(ctx, path, NULL, dup, 2) == LR_ERR_ARG);
    CHECK(strstr(lr_ctx_last_error(ctx), "duplicate key \"bytes\""));
    lr_named_tensor bad_name[] = {{"w\xff", tensors[0].tensor}};
    CHECK(lr_safetensors_write(ctx, path, NULL, bad_name, 1) == LR_ERR_ARG);
    CHECK(strstr(lr_ctx_last_error(ctx), "invalid UTF-8"));
    lr_named_tensor reserved[] = {{"__metadata__", tensors[0].tensor}};
    CHECK(lr_safetensors_write(ctx, path, NULL, reserved, 1) == LR_ERR_ARG);
    lr_named_tensor strided[] = {tensors[1]};
    lr_tensor_transpose(ctx, &tensors[1].tensor, 0, 1, &strided[0].tensor);
    CHECK(lr_safetensors_write(ctx, path, NULL, strided, 1) == LR_ERR_ARG);
    CHECK(strstr(lr_ctx_last_error(ctx), "not contiguous"));
    const char *odd_meta[] = {"arch", NULL};
    CHECK(lr_safetensors_write(ctx, path, odd_meta, tensors, 1) == LR_ERR_ARG);
    REQUIRE(lr_model_open(ctx, path, &m) == LR_OK);
    CHECK(lr_model_tensor_count(m) == 1);
    lr_model_close(m);

    char missing[300];
    snprintf(missing, sizeof missing, "%s/no-such-dir/out.safetensors", dir);
    CHECK(lr_safetensors_write(ctx, missing, NULL, tensors, 1) == LR_ERR_IO);
    CHECK(strstr(lr_ctx_last_error(ctx), "no-such-dir/out.safetensors"));
    CHECK(count_temporaries(dir) == 0);

    unlink(path);
    rmdir(dir);
}

/* A FIFO or device given as a model is refused, without blocking in open(). */
static void test_not_regular_file(void)
{
    char dir[256];
    REQUIRE(make_temp_dir(dir, sizeof dir));
    char fifo[300];
    snprintf(fifo, sizeof fifo, "%s/fifo.safetensors", dir);
    REQUIRE(mkfifo(fifo, 0600) == 0);
    lr_model *m = NULL;
    CHECK(lr_model_open(ctx, fifo, &m) == LR_ERR_IO && m == NULL);
    CHECK(strstr(lr_ctx_last_error(ctx), "not a regular file"));
    unlink(fifo);
    rmdir(dir);
}

/* F16 and BF16 weights come out of lr_model_get_f32 widened, once; F32 ones in place; the
 * usual checks still name the tensor. */
static void test_get_f32_widens(void)
{
    char dir[256];
    REQUIRE(make_temp_dir(dir, sizeof dir));
    char path[300];
    snprintf(path, sizeof path, "%s/half.safetensors", dir);
    float w[2] = {1.25f, -7};
    uint16_t half[3] = {lr_f32_to_f16(0.5f), lr_f32_to_f16(-1), lr_f32_to_f16(65504)};
    uint16_t bf[2] = {lr_f32_to_bf16(1.5f), lr_f32_to_bf16(-3)};
    int32_t ids[1] = {4};
    int64_t s3[] = {3}, s2[] = {2}, s1[] = {1};
    lr_named_tensor tensors[] = {
        {"w", lr_tensor_from(w, LR_F32, 1, s2)},
        {"half", lr_tensor_from(half, LR_F16, 1, s3)},
        {"bf", lr_tensor_from(bf, LR_BF16, 1, s2)},
        {"ids", lr_tensor_from(ids, LR_I32, 1, s1)},
    };
    REQUIRE(lr_safetensors_write(ctx, path, NULL, tensors, 4) == LR_OK);
    lr_model *m = NULL;
    REQUIRE(lr_model_open(ctx, path, &m) == LR_OK);
    lr_tensor t, again;
    CHECK(lr_model_get_f32(ctx, m, "w", 1, s2, &t) == LR_OK);
    CHECK(t.dtype == LR_F32 && ((float *)t.data)[0] == 1.25f && ((float *)t.data)[1] == -7);
    CHECK(lr_model_get_f32(ctx, m, "half", 1, s3, &t) == LR_OK);
    CHECK(t.dtype == LR_F32 && ((float *)t.data)[0] == 0.5f && ((float *)t.data)[1] == -1 &&
          ((float *)t.data)[2] == 65504);
    CHECK(lr_model_get_f32(ctx, m, "half", 1, NULL, &again) == LR_OK);
    CHECK(again.data == t.data); /* widened once */
    CHECK(lr_model_get_f32(ctx, m, "bf", 1, s2, &t) == LR_OK);
    CHECK(((float *)t.data)[0] == 1.5f && ((float *)t.data)[1] == -3);
    CHECK(lr_model_get_f32(ctx, m, "half", 1, s2, &t) == LR_ERR_MODEL);
    CHECK(strstr(lr_ctx_last_error(ctx), "tensor 'half': expected shape [2], found [3]") != NULL);
    CHECK(lr_model_get_f32(ctx, m, "ids", 1, s1, &t) == LR_ERR_MODEL);
    CHECK(strstr(lr_ctx_last_error(ctx), "expected dtype F32, found I32") != NULL);
    CHECK(lr_model_get_f32(ctx, m, "absent", 1, s1, &t) == LR_ERR_MODEL);
    lr_model_close(m);
    remove(path);
    rmdir(dir);
}

int main(void)
{
    lr_ctx_params p = lr_ctx_default_params();
    p.n_threads = 1;
    if (lr_ctx_create(&ctx, &p) != LR_OK)
        return 1;
    RUN(test_bad_corpus);
    RUN(test_bad_corpus_complete);
    RUN(test_bad_corpus_in_memory);
    RUN(test_good_file);
    RUN(test_memory_open);
    RUN(test_get_mismatch);
    RUN(test_unaligned_header);
    RUN(test_hf_directory);
    RUN(test_hf_sharded);
    RUN(test_write_round_trip);
    RUN(test_not_regular_file);
    RUN(test_get_f32_widens);
    lr_ctx_destroy(ctx);
    return CHECK_DONE();
}
