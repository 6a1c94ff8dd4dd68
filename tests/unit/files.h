/* Reading test files whole, and patching a model file's header, for the unit tests. */
#ifndef LR_TEST_FILES_H
#define LR_TEST_FILES_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The whole file, followed by a NUL byte (so text can be searched and a buffer can be moved one
 * byte up); *size is the file's length. NULL if it cannot be read. */
static __attribute__((unused)) char *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf)
        buf[n] = '\0';
    *size = buf ? (size_t)n : 0;
    return buf;
}

/* The file with the first occurrence of `from` in its first 8 KiB (a safetensors header)
 * replaced by `to`, of the same length: a model that is wrong in one known way. NULL if the
 * file cannot be read, `from` is not there or the lengths differ. */
static __attribute__((unused)) char *read_patched(const char *path, const char *from,
                                                  const char *to, size_t *size)
{
    char *buf = strlen(from) == strlen(to) ? read_file(path, size) : NULL;
    char *hit = buf ? memmem(buf, *size < 8192 ? *size : 8192, from, strlen(from)) : NULL;
    if (!hit) {
        free(buf);
        return NULL;
    }
    memcpy(hit, to, strlen(to));
    return buf;
}

#endif
