/* Program output: stdout, or a file replaced atomically (see output.h). */
#include "output.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

enum { MAX_TEMP_FILES = 8 }; /* outputs open at once: a program's data plus a sidecar or two */

/* Temporary files not yet renamed. The signal handler reads them, hence fixed storage and an
 * "active" flag that is set only while the path is complete. A forked child inherits the
 * table and the handlers, but only the process that created a file removes it. */
static char temp_paths[MAX_TEMP_FILES][PATH_MAX];
static pid_t temp_owner[MAX_TEMP_FILES];
static volatile sig_atomic_t temp_active[MAX_TEMP_FILES];

struct output {
    FILE *f;
    char *path;   /* as given, NULL for stdout */
    char *target; /* the file replaced: path, or the file a symbolic link at path points to */
    int temp;     /* slot in temp_paths, -1 when written in place */
};

/* Only async-signal-safe calls: it runs from the signal handler too. */
static void remove_temp_files(void)
{
    pid_t self = getpid();
    for (int i = 0; i < MAX_TEMP_FILES; i++)
        if (temp_active[i] && temp_owner[i] == self)
            unlink(temp_paths[i]);
}

static void remove_temp_files_and_die(int sig)
{
    remove_temp_files();
    signal(sig, SIG_DFL); /* end by the same signal, so that the parent (make) sees why */
    raise(sig);
}

static void install_cleanup(void)
{
    static bool installed;
    if (installed)
        return;
    installed = true;
    atexit(remove_temp_files); /* a program that exits without committing leaves nothing */
    static const int signals[] = {SIGINT, SIGTERM, SIGHUP};
    for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++) {
        struct sigaction old, sa;
        /* A signal the parent made us ignore (nohup) stays ignored. */
        if (sigaction(signals[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN)
            continue;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = remove_temp_files_and_die;
        sigemptyset(&sa.sa_mask);
        sigaction(signals[i], &sa, NULL);
    }
}

/* Creates the temporary file beside path (same directory, so rename is atomic). Returns its
 * descriptor with *slot set, or -1 with errno set. */
static int create_temp(const char *path, mode_t mode, int *slot)
{
    int s = 0;
    while (s < MAX_TEMP_FILES && temp_active[s])
        s++;
    if (s == MAX_TEMP_FILES) {
        errno = EMFILE;
        return -1;
    }
    /* Names with our pid do not collide with other runs; a leftover of an earlier run with
     * the same pid moves us on to the next suffix. */
    temp_owner[s] = getpid();
    for (int attempt = 0; attempt < 100; attempt++) {
        int n = snprintf(temp_paths[s], PATH_MAX, "%s.tmp.%ld.%d", path, (long)temp_owner[s],
                         attempt);
        if (n < 0 || n >= PATH_MAX) {
            errno = ENAMETOOLONG;
            return -1;
        }
        temp_active[s] = 1;
        int fd = open(temp_paths[s], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        if (fd >= 0) {
            *slot = s;
            return fd;
        }
        temp_active[s] = 0;
        if (errno != EEXIST)
            return -1;
    }
    return -1;
}

int output_open(const char *path, bool binary, bool force, output **out)
{
    *out = NULL;
    output *o = calloc(1, sizeof *o);
    if (!o) {
        cli_error(NULL, "out of memory");
        return CLI_EXIT_DATA;
    }
    o->temp = -1;
    if (!path || strcmp(path, "-") == 0) {
        if (binary && !force && isatty(STDOUT_FILENO)) {
            free(o);
            return cli_usage_error("refusing to write binary output to a terminal "
                                   "(use -o FILE, a pipe, or --force)");
        }
        o->f = stdout;
        *out = o;
        return CLI_EXIT_OK;
    }

    struct stat st;
    bool exists = stat(path, &st) == 0;
    o->path = strdup(path);
    /* A symbolic link stays one: the file it points to is what gets replaced. */
    o->target = exists && S_ISREG(st.st_mode) ? realpath(path, NULL) : strdup(path);
    if (!o->path || !o->target) {
        cli_error(path, "%s", strerror(errno));
        output_abort(o);
        return CLI_EXIT_DATA;
    }
    if (exists && !S_ISREG(st.st_mode)) {
        o->f = fopen(path, "w");
    } else {
        install_cleanup();
        /* A replaced file keeps its permissions; a new one gets the umask's. */
        int fd = create_temp(o->target, exists ? st.st_mode & 07777 : 0666, &o->temp);
        if (fd >= 0 && exists)
            fchmod(fd, st.st_mode & 07777);
        o->f = fd >= 0 ? fdopen(fd, "w") : NULL;
        if (fd >= 0 && !o->f)
            close(fd);
    }
    if (!o->f) {
        cli_error(path, "cannot create: %s", strerror(errno));
        output_abort(o);
        return CLI_EXIT_DATA;
    }
    *out = o;
    return CLI_EXIT_OK;
}

FILE *output_stream(const output *o) { return o->f; }
const char *output_path(const output *o) { return o->path; }
const char *output_name(const output *o) { return o->path ? o->path : "stdout"; }

static void release(output *o)
{
    if (o->temp >= 0) {
        unlink(temp_paths[o->temp]);
        temp_active[o->temp] = 0;
    }
    free(o->path);
    free(o->target);
    free(o);
}

int output_commit(output *o)
{
    /* A write that failed earlier left only the error flag; its errno is gone. */
    int err = 0;
    if (fflush(o->f) != 0)
        err = errno;
    else if (ferror(o->f))
        err = EIO;
    if (o->f != stdout && fclose(o->f) != 0 && !err)
        err = errno;
    o->f = NULL;
    if (err) {
        cli_error(output_name(o), "write error: %s", strerror(err));
    } else if (o->temp >= 0) {
        if (rename(temp_paths[o->temp], o->target) == 0) {
            temp_active[o->temp] = 0;
            o->temp = -1;
        } else {
            err = errno;
            cli_error(o->path, "cannot replace: %s", strerror(err));
        }
    }
    release(o);
    return err ? CLI_EXIT_DATA : CLI_EXIT_OK;
}

void output_abort(output *o)
{
    if (o->f && o->f != stdout)
        fclose(o->f);
    release(o);
}
