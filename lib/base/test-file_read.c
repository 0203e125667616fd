/* test-file_read.c - unit tests for file_read.c: whole files into a
 * bounded string, from a path, a shared descriptor and a pipe. Files are
 * made in the working directory (tests/run-unit gives a scratch one). */

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "file_read.h"
#include "str.h"
#include "unit.h"

/* put_file - create name with len bytes of data */
static void put_file(const char *name, const void *data, size_t len)
{
    int fd = open(name, O_WRONLY | O_CREAT | O_TRUNC, 0600);

    unit_assert(fd >= 0);
    unit_assert(write(fd, data, len) == (ssize_t) len);
    (void) close(fd);
}

/* test_path_whole_and_binary - the bytes as they are, out replaced */
static void test_path_whole_and_binary(void)
{
    struct str *out = str_new(STR_MAX_DEFAULT);
    const char *err = NULL;

    unit_begin("file_read_path: the whole file, NUL bytes kept, out replaced");
    put_file("binary", "ab\0cd\n", 6);
    str_set_or_panic(out, "old content");
    unit_assert_inteq(file_read_path("binary", out, 100, &err), 0);
    unit_assert_inteq(str_len(out), 6);
    unit_assert(memcmp(str_cstr(out), "ab\0cd\n", 6) == 0);
    put_file("empty", "", 0);
    unit_assert_inteq(file_read_path("empty", out, 100, &err), 0);
    unit_assert_inteq(str_len(out), 0);
    str_free(&out);
    unit_end();
}

/* test_bounds_are_errors - max and out->max, never a silent cut */
static void test_bounds_are_errors(void)
{
    static char big[20000];
    struct str *out = str_new(STR_MAX_DEFAULT), *small = str_new(10);
    const char *err = NULL;

    unit_begin("file_read: a file past max, or past out->max, is an error");
    memset(big, 'x', sizeof(big));
    put_file("big", big, sizeof(big));
    unit_assert_inteq(file_read_path("big", out, sizeof(big), &err), 0);
    unit_assert_inteq(str_len(out), sizeof(big));
    unit_assert_inteq(file_read_path("big", out, sizeof(big) - 1, &err), -1);
    unit_assert_streq(err, "read big: file is larger than 19999 bytes");
    unit_assert_inteq(str_len(out), 0);
    unit_assert_inteq(file_read_path("big", small, 1000, &err), -1);
    unit_assert_streq(err, "read big: file is larger than 10 bytes");
    str_free(&out);
    str_free(&small);
    unit_end();
}

/* test_open_error - the path and the reason */
static void test_open_error(void)
{
    struct str *out = str_new(100);
    const char *err = NULL;

    unit_begin("file_read_path: a missing file names the path and the reason");
    unit_assert_inteq(file_read_path("no-such-file", out, 100, &err), -1);
    unit_assert_streq(err, "open no-such-file: No such file or directory");
    str_free(&out);
    unit_end();
}

/* test_fd_from_offset_zero - the offset is neither used nor moved */
static void test_fd_from_offset_zero(void)
{
    struct str *out = str_new(100);
    const char *err = NULL;
    int fd;

    unit_begin("file_read_fd: from offset 0, twice, the offset unmoved");
    put_file("snapshot", "a = b\n", 6);
    fd = open("snapshot", O_RDONLY);
    unit_assert(fd >= 0);
    unit_assert(lseek(fd, 3, SEEK_SET) == 3);
    unit_assert_inteq(file_read_fd(fd, "main.cf", out, 100, &err), 0);
    unit_assert_streq(str_cstr(out), "a = b\n");
    unit_assert_inteq(file_read_fd(fd, "main.cf", out, 100, &err), 0);
    unit_assert_streq(str_cstr(out), "a = b\n");
    unit_assert(lseek(fd, 0, SEEK_CUR) == 3);
    unit_assert_inteq(file_read_fd(fd, "main.cf", out, 5, &err), -1);
    unit_assert_streq(err, "read main.cf: file is larger than 5 bytes");
    (void) close(fd);
    unit_assert_inteq(file_read_fd(fd, "closed", out, 100, &err), -1);
    unit_assert_streq(err, "read closed: Bad file descriptor");
    str_free(&out);
    unit_end();
}

/* test_fd_pipe - a descriptor that cannot seek is read to its end */
static void test_fd_pipe(void)
{
    struct str *out = str_new(100);
    const char *err = NULL;
    int p[2];

    unit_begin("file_read_fd: a pipe is read to its end");
    unit_assert(pipe(p) == 0);
    unit_assert(write(p[1], "through a pipe", 14) == 14);
    (void) close(p[1]);
    unit_assert_inteq(file_read_fd(p[0], "pipe", out, 100, &err), 0);
    unit_assert_streq(str_cstr(out), "through a pipe");
    (void) close(p[0]);
    str_free(&out);
    unit_end();
}

int main(void)
{
    test_path_whole_and_binary();
    test_bounds_are_errors();
    test_open_error();
    test_fd_from_offset_zero();
    test_fd_pipe();
    return unit_done();
}
