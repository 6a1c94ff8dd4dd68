/* libFuzzer target for video-animate's reader (cmd/video-animate/video.h): the bytes are a file
 * (a memfd, opened by path as a user's file would be), read through libavformat or the Y4M
 * path. Any input either fails with a one-line message or gives frames within the pixel limit,
 * all of the first frame's size, with RGB in 0..1 and increasing frame numbers, until a clean
 * end or a one-line error. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../cmd/video-animate/video.h"
#include "fuzz.h"

#define MAX_PIXELS 16384
#define MAX_FRAMES 8

static void check_message(lr_ctx *ctx)
{
    const char *msg = lr_ctx_last_error(ctx);
    EXPECT(msg[0] != 0 && strchr(msg, '\n') == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lr_ctx *ctx = fuzz_ctx();
    int fd = memfd_create("fuzz-video", 0);
    EXPECT(fd >= 0);
    EXPECT(size == 0 || write(fd, data, size) == (ssize_t)size);
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    video_reader *r = NULL;
    lr_status s = video_reader_open(ctx, path, MAX_PIXELS, &r);
    if (s != LR_OK) {
        EXPECT(r == NULL);
        check_message(ctx);
        close(fd);
        return 0;
    }
    const video_info *info = video_reader_info(r);
    EXPECT(info->width >= 1 && info->height >= 1);
    EXPECT((uint64_t)info->width * (uint64_t)info->height <= MAX_PIXELS);
    EXPECT(info->tb_num >= 1 && info->tb_den >= 1 && info->fps_num >= 1 && info->fps_den >= 1);
    video_reader_drop_streams(r);
    const size_t n = (size_t)3 * info->width * info->height;
    video_frame f;
    int got, frames = 0;
    while (frames < MAX_FRAMES && (got = video_reader_next(ctx, r, &f)) == 1) {
        EXPECT(f.index == frames + 1);
        for (size_t i = 0; i < n; i++)
            EXPECT(f.rgb[i] >= 0.0f && f.rgb[i] <= 1.0f);
        frames++;
    }
    if (frames < MAX_FRAMES && got < 0) {
        check_message(ctx);
        EXPECT(video_reader_next(ctx, r, &f) == -1);
    }
    video_reader_free(r);
    close(fd);
    return 0;
}
