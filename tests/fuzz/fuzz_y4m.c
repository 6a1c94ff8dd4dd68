/* libFuzzer target for the Y4M reader (cmd/common/y4m.h), through the memory path and the FILE
 * path (fmemopen) alike. Any input either fails with a one-line message, or gives a header
 * within the pixel limit and frames until a clean end or a one-line error; the frames read,
 * written back and read again, come back identical, and both paths agree. The colour
 * conversions run on every frame and give RGB in 0..1. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "y4m.h"

#define MAX_PIXELS 4096
#define MAX_FRAMES 16

static void check_message(lr_ctx *ctx)
{
    const char *msg = lr_ctx_last_error(ctx);
    EXPECT(msg[0] != 0 && strchr(msg, '\n') == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lr_ctx *ctx = fuzz_ctx();
    y4m_reader *r, *rf = NULL;
    lr_status s = y4m_reader_open_memory(ctx, data, size, MAX_PIXELS, &r);
    FILE *f = size ? fmemopen((void *)data, size, "rb") : NULL;
    lr_status sf = f ? y4m_reader_open(ctx, f, MAX_PIXELS, &rf) : s;
    EXPECT(sf == s);
    if (s != LR_OK) {
        EXPECT(r == NULL && rf == NULL);
        check_message(ctx);
        if (f)
            fclose(f);
        return 0;
    }
    const y4m_info *info = y4m_reader_info(r);
    EXPECT(info->width >= 1 && info->height >= 1);
    EXPECT((uint64_t)info->width * (uint64_t)info->height <= MAX_PIXELS);
    char *out = NULL;
    size_t out_len = 0;
    FILE *w = open_memstream(&out, &out_len);
    EXPECT(w);
    EXPECT(y4m_write_header(ctx, w, info) == LR_OK);
    size_t n = (size_t)info->width * (size_t)info->height;
    float *rgb = malloc(3 * n * sizeof(float));
    EXPECT(rgb);
    y4m_frame copy;
    EXPECT(y4m_frame_alloc(ctx, info, &copy) == LR_OK);
    int frames = 0, rc;
    y4m_frame *fr, *ff;
    while (frames < MAX_FRAMES && (rc = y4m_reader_next(ctx, r, &fr)) == 1) {
        if (rf) {
            EXPECT(y4m_reader_next(ctx, rf, &ff) == 1);
            EXPECT(memcmp(ff->samples, fr->samples, fr->count * 2) == 0);
        }
        for (size_t i = 0; i < fr->count; i++)
            EXPECT(fr->samples[i] < (1u << info->depth));
        EXPECT(y4m_write_frame(ctx, w, info, fr) == LR_OK);
        y4m_frame_to_rgb(info, fr, frames % 2 ? Y4M_BT709 : Y4M_BT601,
                         frames % 3 ? Y4M_UPSAMPLE_BILINEAR : Y4M_UPSAMPLE_NEAREST, rgb);
        for (size_t i = 0; i < 3 * n; i++)
            EXPECT(rgb[i] >= 0.0f && rgb[i] <= 1.0f);
        y4m_frame_from_rgb(info, rgb, Y4M_BT601, &copy);
        for (size_t i = 0; i < copy.count; i++)
            EXPECT(copy.samples[i] < (1u << info->depth));
        frames++;
    }
    if (frames < MAX_FRAMES) {
        if (rc < 0)
            check_message(ctx);
        if (rf)
            EXPECT(y4m_reader_next(ctx, rf, &ff) == rc);
    }
    EXPECT(fclose(w) == 0);
    /* What was read comes back the same. */
    y4m_reader *again;
    EXPECT(y4m_reader_open_memory(ctx, out, out_len, MAX_PIXELS, &again) == LR_OK);
    y4m_reader_free(r);
    EXPECT(y4m_reader_open_memory(ctx, data, size, MAX_PIXELS, &r) == LR_OK);
    for (int k = 0; k < frames; k++) {
        EXPECT(y4m_reader_next(ctx, r, &fr) == 1);
        EXPECT(y4m_reader_next(ctx, again, &ff) == 1);
        EXPECT(memcmp(ff->samples, fr->samples, fr->count * 2) == 0);
    }
    EXPECT(y4m_reader_next(ctx, again, &ff) == 0);
    y4m_reader_free(again);
    y4m_frame_free(&copy);
    free(rgb);
    free(out);
    y4m_reader_free(r);
    y4m_reader_free(rf);
    if (f)
        fclose(f);
    return 0;
}
