/* libFuzzer target for the PNG reader (cmd/common/image.h). Any input either fails with a
 * one-line message and no image, or gives an image within the pixel limit whose samples are
 * in 0..1; written back and read again, that image comes back with the same shape, samples
 * and colour chunks (every sample read is k / (2^depth - 1), which the writer stores exactly). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "image.h"

#define MAX_PIXELS (1u << 20)

static void check_image(const image *img)
{
    EXPECT(img->width >= 1 && img->height >= 1);
    EXPECT((uint64_t)img->width * (uint64_t)img->height <= MAX_PIXELS);
    EXPECT(img->channels >= 1 && img->channels <= 4);
    EXPECT(img->bit_depth == 8 || img->bit_depth == 16);
    EXPECT(img->pixels);
    EXPECT(!img->iccp_name == !img->iccp_profile);
    size_t n = (size_t)img->width * (size_t)img->height * (size_t)img->channels;
    for (size_t i = 0; i < n; i++)
        EXPECT(img->pixels[i] >= 0.0f && img->pixels[i] <= 1.0f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lr_ctx *ctx = fuzz_ctx();
    image img;
    if (image_read_png_memory(ctx, data, size, MAX_PIXELS, &img) != LR_OK) {
        const char *msg = lr_ctx_last_error(ctx);
        EXPECT(img.pixels == NULL && img.iccp_name == NULL);
        EXPECT(msg[0] != 0 && strchr(msg, '\n') == NULL);
        EXPECT(strncmp(msg, "libpng gave", 11) != 0); /* our channel count disagreed with libpng's */
        return 0;
    }
    check_image(&img);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    EXPECT(f);
    EXPECT(image_write_png(ctx, f, &img) == LR_OK);
    EXPECT(fclose(f) == 0);
    image again;
    EXPECT(image_read_png_memory(ctx, buf, len, MAX_PIXELS, &again) == LR_OK);
    check_image(&again);
    EXPECT(again.width == img.width && again.height == img.height);
    EXPECT(again.channels == img.channels && again.bit_depth == img.bit_depth);
    size_t n = (size_t)img.width * (size_t)img.height * (size_t)img.channels;
    EXPECT(memcmp(again.pixels, img.pixels, n * sizeof(float)) == 0);
    EXPECT(again.has_gama == img.has_gama && (!img.has_gama || again.gama == img.gama));
    EXPECT(again.has_chrm == img.has_chrm &&
           (!img.has_chrm || memcmp(again.chrm, img.chrm, sizeof img.chrm) == 0));
    EXPECT(again.has_srgb == img.has_srgb && (!img.has_srgb || again.srgb_intent == img.srgb_intent));
    EXPECT(!again.iccp_name == !img.iccp_name);
    if (img.iccp_name)
        EXPECT(strcmp(again.iccp_name, img.iccp_name) == 0 &&
               again.iccp_length == img.iccp_length &&
               memcmp(again.iccp_profile, img.iccp_profile, img.iccp_length) == 0);
    image_free(&again);
    image_free(&img);
    free(buf);
    return 0;
}
