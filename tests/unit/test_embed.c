/* Built-in models (tests/unit/test_embed.models embeds two fixtures): the default, -m NAME,
 * -m PATH, failures, --dump-model and the --help line that names the default. */
#include <stdlib.h>
#include <string.h>

#include "capture.h"
#include "check.h"
#include "cli.h"
#include "embed.h"
#include "models.h"

static const char *const default_path = "tests/fixtures/models/good/with_metadata.safetensors";

static lr_ctx *ctx;

static void test_table(void)
{
    const cli_embedded_model *b = lr_embedded_models;
    CHECK(b[0].name && strcmp(b[0].name, "with_metadata") == 0);
    CHECK(b[1].name && strcmp(b[1].name, "unaligned_header") == 0);
    CHECK(b[2].name == NULL);
    CHECK((uintptr_t)b[0].data % 64 == 0); /* tools/embed.sh aligns the data */
}

/* No -m: the first built-in model, holding exactly the bytes of the file it came from. */
static void test_default(void)
{
    lr_model *m, *file;
    REQUIRE(cli_open_model(ctx, NULL, &m) == CLI_EXIT_OK);
    CHECK(strcmp(lr_model_path(m), "with_metadata") == 0);
    const char *arch = lr_model_meta(m, "arch");
    CHECK(arch && strcmp(arch, "test-model") == 0);
    REQUIRE(lr_model_open(ctx, default_path, &file) == LR_OK);
    REQUIRE(lr_model_tensor_count(m) == lr_model_tensor_count(file));
    CHECK(lr_model_tensor_count(m) > 0);
    for (size_t i = 0; i < lr_model_tensor_count(m); i++) {
        const lr_model_tensor *a = lr_model_tensor_at(m, i), *b = lr_model_tensor_at(file, i);
        CHECK(strcmp(a->name, b->name) == 0 && a->nbytes == b->nbytes);
        CHECK(a->nbytes == 0 || memcmp(a->data, b->data, a->nbytes) == 0);
    }
    lr_model_close(file);
    lr_model_close(m);
}

static void test_by_name_and_path(void)
{
    lr_model *m;
    REQUIRE(cli_open_model(ctx, "unaligned_header", &m) == CLI_EXIT_OK);
    CHECK(strcmp(lr_model_path(m), "unaligned_header") == 0);
    CHECK(lr_model_find(m, "b") != NULL);
    lr_model_close(m);
    REQUIRE(cli_open_model(ctx, "tests/fixtures/models/good/hf_dir", &m) == CLI_EXIT_OK);
    CHECK(strcmp(lr_model_path(m), "tests/fixtures/models/good/hf_dir") == 0);
    lr_model_close(m);
}

static void test_failures(void)
{
    lr_model *m = NULL;
    capture err;
    capture_begin(&err, 2);
    int missing = cli_open_model(ctx, "no-such-model", &m);
    int bad = cli_open_model(ctx, "tests/fixtures/models/bad/empty.safetensors", &m);
    capture_end(&err);
    CHECK(missing == CLI_EXIT_MODEL && bad == CLI_EXIT_MODEL && m == NULL);
    CHECKF(strcmp(err.text, "test-embed: no-such-model: No such file or directory\n"
                            "test-embed: tests/fixtures/models/bad/empty.safetensors: file is "
                            "empty (truncated: no 8-byte header length)\n") == 0, "%s", err.text);
}

static void test_dump_and_help(void)
{
    char path[] = "/tmp/lr-test-embed-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    close(fd);
    lr_model *m;
    REQUIRE(cli_open_model(ctx, NULL, &m) == CLI_EXIT_OK);
    cli_args args = {.output = path};
    CHECK(cli_dump_model(&args, m) == CLI_EXIT_OK);
    lr_model_close(m);
    FILE *f = fopen(path, "r");
    REQUIRE(f);
    char text[4096];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    unlink(path);
    static const char head[] = "model: with_metadata\nmetadata:\n  arch: test-model\n";
    CHECKF(strncmp(text, head, strlen(head)) == 0, "%s", text);
    CHECK(strstr(text, "\n  embed.weight  F32    [3, 4]  48\n"));

    cli_program prog = {"test-embed", "[OPTIONS]", "Test built-in models.", NULL, 0, NULL, NULL};
    char *help = NULL;
    size_t size = 0;
    f = open_memstream(&help, &size);
    REQUIRE(f);
    cli_print_help(&prog, f);
    fclose(f);
    CHECK(strstr(help, "(default: with_metadata)"));
    CHECK(strstr(help, "--dump-model"));
    free(help);
}

int main(void)
{
    cli_set_tool("test-embed");
    if (lr_ctx_create(&ctx, NULL) != LR_OK) {
        printf("FAIL test_embed: no context\n");
        return 1;
    }
    RUN(test_table);
    RUN(test_default);
    RUN(test_by_name_and_path);
    RUN(test_failures);
    RUN(test_dump_and_help);
    lr_ctx_destroy(ctx);
    return CHECK_DONE();
}
