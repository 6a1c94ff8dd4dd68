/* cmd/common/writers and output: TSV/CSV/JSONL fields, NPY headers and their fix-up, atomic
 * output files, the refusal to put binary data on a terminal. */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "capture.h"
#include "check.h"
#include "files.h"
#include "cli.h"
#include "output.h"
#include "writers.h"

static char dir[] = "/tmp/lr-test-writers-XXXXXX";

static char *path_in_dir(const char *name)
{
    static char buf[4][256];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", dir, name);
    return p;
}

/* Reads a whole file (NULL if it does not exist); *size gets its length. */
/* Names in dir other than . and .., to find leftover temporary files. */
static int entries_in_dir(void)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

static void clear_dir(void)
{
    DIR *d = opendir(dir);
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            unlink(path_in_dir(e->d_name));
    closedir(d);
}

static const char *const columns[] = {"id", "value", "note"};

/* One table with the awkward cases, written in the given format. */
static char *write_table(data_format format)
{
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    table_writer t;
    table_begin(&t, f, format, columns, 3);
    table_str(&t, "plain");
    table_f32(&t, 0.1f);
    table_missing(&t);
    table_end_row(&t);
    table_str(&t, "a\tb,\"c\"\nd");
    table_f64(&t, -2.5);
    table_int(&t, -7);
    table_end_row(&t);
    table_str(&t, "nan");
    table_f32(&t, (float)NAN);
    table_f32(&t, -(float)INFINITY);
    table_end_row(&t);
    fclose(f);
    return text;
}

static void test_tsv(void)
{
    char *text = write_table(FORMAT_TSV);
    CHECKF(strcmp(text, "id\tvalue\tnote\n"
                        "plain\t0.100000001\t\n"
                        "a b,\"c\" d\t-2.5\t-7\n"
                        "nan\tnan\t-inf\n") == 0, "%s", text);
    free(text);
}

static void test_csv(void)
{
    char *text = write_table(FORMAT_CSV);
    CHECKF(strcmp(text, "id,value,note\n"
                        "plain,0.100000001,\n"
                        "\"a\tb,\"\"c\"\"\nd\",-2.5,-7\n"
                        "nan,nan,-inf\n") == 0, "%s", text);
    free(text);
}

static void test_jsonl(void)
{
    char *text = write_table(FORMAT_JSONL);
    CHECKF(strcmp(text, "{\"id\": \"plain\", \"value\": 0.100000001, \"note\": null}\n"
                        "{\"id\": \"a\\tb,\\\"c\\\"\\nd\", \"value\": -2.5, \"note\": -7}\n"
                        "{\"id\": \"nan\", \"value\": null, \"note\": null}\n") == 0, "%s", text);
    free(text);

    /* Control characters escaped, valid UTF-8 kept, invalid bytes replaced. */
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    /* é, €, an emoji; a stray byte, a cut sequence, a surrogate, an overlong slash */
    write_json_string(f, "\x01\xc3\xa9\xe2\x82\xac\xf0\x9f\x99\x82"
                         "|\xff|\xc3|\xed\xa0\x80|\xc0\xaf");
    fclose(f);
    CHECKF(strcmp(text, "\"\\u0001\xc3\xa9\xe2\x82\xac\xf0\x9f\x99\x82|\\ufffd|\\ufffd|"
                        "\\ufffd\\ufffd\\ufffd|\\ufffd\\ufffd\"") == 0, "%s", text);
    free(text);
}

static void test_npy_header(void)
{
    unsigned char h[NPY_HEADER_SIZE];
    npy_header(h, 3, 4);
    CHECK(memcmp(h, "\x93NUMPY\x01\x00", 8) == 0);
    CHECK(h[8] + 256 * h[9] == NPY_HEADER_SIZE - 10);
    CHECK(NPY_HEADER_SIZE % 64 == 0);
    static const char dict[] = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }";
    CHECK(memcmp(h + 10, dict, sizeof dict - 1) == 0);
    for (size_t i = 10 + sizeof dict - 1; i < NPY_HEADER_SIZE - 1; i++)
        CHECK(h[i] == ' ');
    CHECK(h[NPY_HEADER_SIZE - 1] == '\n');
    /* The largest counts still fit the fixed size. */
    npy_header(h, UINT64_MAX, UINT64_MAX);
    CHECK(h[NPY_HEADER_SIZE - 1] == '\n');
    CHECK(memmem(h, sizeof h, "(18446744073709551615, 18446744073709551615)", 44));
}

static const float rows[2][3] = {{1.0f, -2.5f, 0.1f}, {3.0f, 1e-7f, -0.0f}};

static int write_matrix(output *o, data_format format)
{
    matrix_writer *w;
    int rc = matrix_open(&w, o, format, "embedding", 3);
    if (rc != CLI_EXIT_OK)
        return rc;
    matrix_row(w, "seq1", rows[0]);
    matrix_row(w, "seq\t2", rows[1]);
    return matrix_finish(w);
}

static void check_npy_bytes(const char *data, size_t size)
{
    REQUIRE(size == NPY_HEADER_SIZE + sizeof rows);
    unsigned char h[NPY_HEADER_SIZE];
    npy_header(h, 2, 3);
    CHECK(memcmp(data, h, sizeof h) == 0);
    CHECK(memcmp(data + NPY_HEADER_SIZE, rows, sizeof rows) == 0);
}

/* Written to a file: the header is fixed up in place, and the ids go to a sidecar. */
static void test_npy_file(void)
{
    output *o;
    REQUIRE(output_open(path_in_dir("emb.npy"), true, false, &o) == CLI_EXIT_OK);
    REQUIRE(write_matrix(o, FORMAT_NPY) == CLI_EXIT_OK);
    REQUIRE(output_commit(o) == CLI_EXIT_OK);
    size_t size;
    char *data = read_file(path_in_dir("emb.npy"), &size);
    REQUIRE(data);
    check_npy_bytes(data, size);
    free(data);
    data = read_file(path_in_dir("emb.ids.tsv"), &size);
    REQUIRE(data);
    CHECKF(strcmp(data, "index\tid\n0\tseq1\n1\tseq 2\n") == 0, "%s", data);
    free(data);
    CHECK(entries_in_dir() == 2);
    clear_dir();
}

/* Written to a pipe: the rows are held until the count is known; no sidecar. */
static void test_npy_pipe(void)
{
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    fflush(stdout);
    int saved = dup(1);
    dup2(fds[1], 1);
    close(fds[1]);
    output *o;
    int rc = output_open(NULL, true, false, &o);
    if (rc == CLI_EXIT_OK)
        rc = write_matrix(o, FORMAT_NPY);
    if (rc == CLI_EXIT_OK)
        rc = output_commit(o);
    dup2(saved, 1); /* closes the pipe's last write end */
    close(saved);
    CHECK(rc == CLI_EXIT_OK);
    char data[1024];
    size_t size = 0;
    for (ssize_t n; (n = read(fds[0], data + size, sizeof data - size)) > 0;)
        size += (size_t)n;
    close(fds[0]);
    check_npy_bytes(data, size);
    CHECK(entries_in_dir() == 0);
}

static void test_matrix_text(void)
{
    output *o;
    REQUIRE(output_open(path_in_dir("emb.tsv"), false, false, &o) == CLI_EXIT_OK);
    REQUIRE(write_matrix(o, FORMAT_TSV) == CLI_EXIT_OK);
    REQUIRE(output_commit(o) == CLI_EXIT_OK);
    REQUIRE(output_open(path_in_dir("emb.jsonl"), false, false, &o) == CLI_EXIT_OK);
    REQUIRE(write_matrix(o, FORMAT_JSONL) == CLI_EXIT_OK);
    REQUIRE(output_commit(o) == CLI_EXIT_OK);
    size_t size;
    char *data = read_file(path_in_dir("emb.tsv"), &size);
    REQUIRE(data);
    CHECKF(strcmp(data, "id\td0\td1\td2\nseq1\t1\t-2.5\t0.100000001\n"
                        "seq 2\t3\t1.00000001e-07\t-0\n") == 0, "%s", data);
    free(data);
    data = read_file(path_in_dir("emb.jsonl"), &size);
    REQUIRE(data);
    CHECKF(strcmp(data, "{\"id\": \"seq1\", \"embedding\": [1, -2.5, 0.100000001]}\n"
                        "{\"id\": \"seq\\t2\", \"embedding\": [3, 1.00000001e-07, -0]}\n") == 0,
           "%s", data);
    free(data);
    CHECK(entries_in_dir() == 2); /* no sidecar for text formats */
    clear_dir();
}

static void test_atomic_output(void)
{
    const char *target = path_in_dir("out.txt");
    output *o;
    size_t size;

    /* Aborted: nothing appears, no temporary file stays. */
    REQUIRE(output_open(target, false, false, &o) == CLI_EXIT_OK);
    fputs("partial", output_stream(o));
    fflush(output_stream(o));
    CHECK(access(target, F_OK) != 0);
    CHECK(entries_in_dir() == 1); /* the temporary file, beside the target */
    output_abort(o);
    CHECK(access(target, F_OK) != 0);
    CHECK(entries_in_dir() == 0);

    /* Committed: the target appears whole. */
    REQUIRE(output_open(target, false, false, &o) == CLI_EXIT_OK);
    fputs("old", output_stream(o));
    REQUIRE(output_commit(o) == CLI_EXIT_OK);
    char *data = read_file(target, &size);
    CHECK(data && strcmp(data, "old") == 0);
    free(data);

    /* An existing target stays as it was through an aborted run, and keeps its permissions
     * through a committed one. */
    chmod(target, 0640);
    REQUIRE(output_open(target, false, false, &o) == CLI_EXIT_OK);
    fputs("new", output_stream(o));
    output_abort(o);
    data = read_file(target, &size);
    CHECK(data && strcmp(data, "old") == 0);
    free(data);
    REQUIRE(output_open(target, false, false, &o) == CLI_EXIT_OK);
    fputs("new", output_stream(o));
    REQUIRE(output_commit(o) == CLI_EXIT_OK);
    data = read_file(target, &size);
    CHECK(data && strcmp(data, "new") == 0);
    free(data);
    struct stat st;
    CHECK(stat(target, &st) == 0 && (st.st_mode & 07777) == 0640);
    CHECK(entries_in_dir() == 1);

    /* A symbolic link stays a link; the file it points to gets the new contents. */
    REQUIRE(symlink("out.txt", path_in_dir("link.txt")) == 0);
    REQUIRE(output_open(path_in_dir("link.txt"), false, false, &o) == CLI_EXIT_OK);
    fputs("linked", output_stream(o));
    REQUIRE(output_commit(o) == CLI_EXIT_OK);
    CHECK(lstat(path_in_dir("link.txt"), &st) == 0 && S_ISLNK(st.st_mode));
    data = read_file(target, &size);
    CHECK(data && strcmp(data, "linked") == 0);
    free(data);
    CHECK(entries_in_dir() == 2);
    clear_dir();

    /* A device is written in place, never replaced. */
    REQUIRE(output_open("/dev/null", false, false, &o) == CLI_EXIT_OK);
    fputs("gone", output_stream(o));
    CHECK(output_commit(o) == CLI_EXIT_OK);
    CHECK(stat("/dev/null", &st) == 0 && S_ISCHR(st.st_mode));

    /* A directory that does not exist: a clear error naming the file. */
    capture err;
    capture_begin(&err, 2);
    int rc = output_open(path_in_dir("missing/out.txt"), false, false, &o);
    capture_end(&err);
    CHECK(rc == CLI_EXIT_DATA);
    CHECKF(strstr(err.text, "missing/out.txt: cannot create: No such file or directory\n"), "%s",
           err.text);
}

/* A run killed while writing leaves neither the target nor the temporary file. */
static void test_interrupted_output(void)
{
    fflush(stdout);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        output *o;
        if (output_open(path_in_dir("killed.txt"), false, false, &o) != CLI_EXIT_OK)
            _exit(1);
        fputs("half", output_stream(o));
        fflush(output_stream(o));
        raise(SIGTERM);
        _exit(2);
    }
    int status;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECKF(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM, "status %d", status);
    CHECK(entries_in_dir() == 0);

    /* Exiting without a commit also cleans up. */
    pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        output *o;
        if (output_open(path_in_dir("forgotten.txt"), false, false, &o) != CLI_EXIT_OK)
            _exit(1);
        fputs("half", output_stream(o));
        exit(1);
    }
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1);
    CHECK(entries_in_dir() == 0);

    /* A forked child that exits leaves its parent's temporary file alone. */
    output *o;
    REQUIRE(output_open(path_in_dir("parent.txt"), false, false, &o) == CLI_EXIT_OK);
    fflush(stdout);
    pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0)
        exit(0);
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECK(entries_in_dir() == 1);
    CHECK(output_commit(o) == CLI_EXIT_OK);
    CHECK(access(path_in_dir("parent.txt"), F_OK) == 0);
    clear_dir();
}

/* Binary data is not sent to a terminal unless forced. */
static void test_binary_to_terminal(void)
{
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    REQUIRE(master >= 0);
    REQUIRE(grantpt(master) == 0 && unlockpt(master) == 0);
    int terminal = open(ptsname(master), O_RDWR | O_NOCTTY);
    REQUIRE(terminal >= 0);
    fflush(stdout);
    int saved = dup(1);
    dup2(terminal, 1);
    capture err;
    output *o;
    capture_begin(&err, 2);
    int refused = output_open(NULL, true, false, &o);
    int forced = output_open(NULL, true, true, &o);
    if (forced == CLI_EXIT_OK)
        output_abort(o);
    int text = output_open(NULL, false, false, &o);
    if (text == CLI_EXIT_OK)
        output_abort(o);
    capture_end(&err);
    dup2(saved, 1);
    close(saved);
    close(terminal);
    close(master);
    CHECK(refused == CLI_EXIT_USAGE);
    CHECK(forced == CLI_EXIT_OK && text == CLI_EXIT_OK);
    CHECKF(strstr(err.text, "test-writers: refusing to write binary output to a terminal"), "%s",
           err.text);
}

int main(void)
{
    if (!mkdtemp(dir)) {
        printf("FAIL test_writers: cannot create a temporary directory\n");
        return 1;
    }
    cli_set_tool("test-writers");
    RUN(test_tsv);
    RUN(test_csv);
    RUN(test_jsonl);
    RUN(test_npy_header);
    RUN(test_npy_file);
    RUN(test_npy_pipe);
    RUN(test_matrix_text);
    RUN(test_atomic_output);
    RUN(test_interrupted_output);
    RUN(test_binary_to_terminal);
    clear_dir();
    rmdir(dir);
    return CHECK_DONE();
}
