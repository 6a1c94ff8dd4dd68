/* Replays inputs through a libFuzzer target without libFuzzer, so that `make test` (and
 * `make asan`) run every fuzz target over its committed seeds.
 * Usage: fuzz_<name> FILE|DIR...  (directories are read recursively, in name order)
 * Prints "PASS fuzz_<name>-replay (N inputs)"; a crash fails by exit status. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *target;

static int fail(const char *path, const char *why)
{
    printf("FAIL %s-replay: %s: %s\n", target, path, why);
    return -1;
}

/* Each input gets a buffer of exactly its size, so that ASan sees any read past the end. */
static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return fail(path, "cannot open");
    size_t cap = 4096, size = 0;
    uint8_t *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + size, 1, cap - size, f)) > 0) {
        size += got;
        if (size == cap) {
            uint8_t *grown = realloc(buf, cap *= 2);
            if (!grown)
                free(buf);
            buf = grown;
        }
    }
    int err = ferror(f);
    fclose(f);
    if (!buf || err) {
        free(buf);
        return fail(path, "cannot read");
    }
    uint8_t *exact = malloc(size ? size : 1);
    if (!exact) {
        free(buf);
        return fail(path, "out of memory");
    }
    memcpy(exact, buf, size);
    free(buf);
    LLVMFuzzerTestOneInput(exact, size);
    free(exact);
    return 1;
}

static int skip_dots(const struct dirent *e) { return e->d_name[0] != '.'; }

/* Number of inputs replayed under path, or -1 after a failure. */
static int replay(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return fail(path, "no such file or directory");
    if (!S_ISDIR(st.st_mode))
        return replay_file(path);
    struct dirent **entries;
    int n = scandir(path, &entries, skip_dots, alphasort);
    if (n < 0)
        return fail(path, "cannot list directory");
    int total = 0;
    for (int i = 0; i < n; i++) {
        size_t len = strlen(path) + strlen(entries[i]->d_name) + 2;
        char *child = malloc(len);
        int r = child ? (snprintf(child, len, "%s/%s", path, entries[i]->d_name), replay(child))
                      : fail(path, "out of memory");
        free(child);
        if (r < 0 || total < 0)
            total = -1;
        else
            total += r;
        free(entries[i]);
    }
    free(entries);
    return total;
}

int main(int argc, char **argv)
{
    target = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    if (argc < 2) {
        printf("FAIL %s-replay: usage: %s FILE|DIR...\n", target, target);
        return 2;
    }
    int total = 0;
    for (int i = 1; i < argc && total >= 0; i++) {
        int r = replay(argv[i]);
        total = r < 0 ? -1 : total + r;
    }
    if (total < 0)
        return 1;
    if (total == 0) {
        printf("FAIL %s-replay: no inputs found\n", target);
        return 1;
    }
    printf("PASS %s-replay (%d inputs)\n", target, total);
    return 0;
}
