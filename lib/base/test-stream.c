/* test-stream.c - unit tests for stream.c (buffered streams with
 * deadlines), over socketpairs, pipes, a temporary file and a mock
 * I/O layer. */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mem.h"
#include "msg.h"
#include "str.h"
#include "stream.h"
#include "unit.h"

/* now_ms - monotonic milliseconds */
static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* write_all - write a buffer to a raw fd */
static void write_all(int fd, const void *data, size_t len)
{
    const char *p = data;

    while (len > 0) {
	ssize_t n = write(fd, p, len);

	if (n < 0 && errno == EINTR)
	    continue;
	if (n <= 0)
	    msg_fatal("test write: %m");
	p += n;
	len -= (size_t) n;
    }
}

/* read_to_eof - read a raw fd until EOF into out */
static void read_to_eof(int fd, struct str *out)
{
    char buf[4096];
    ssize_t n;

    while ((n = read(fd, buf, sizeof(buf))) != 0) {
	if (n < 0 && errno == EINTR)
	    continue;
	if (n < 0)
	    msg_fatal("test read: %m");
	if (!str_try_append(out, buf, (size_t) n))
	    msg_fatal("test read: too much data");
    }
}

/* make_socketpair - a connected AF_UNIX stream pair */
static void make_socketpair(int sv[2])
{
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
	msg_fatal("socketpair: %m");
}

/* stream_over - a stream reading the given bytes, then EOF */
static struct stream *stream_over(const char *data, size_t len)
{
    int sv[2];

    make_socketpair(sv);
    write_all(sv[1], data, len);
    close(sv[1]);
    return stream_open(sv[0]);
}

/* One getline step: expected status and line. */
struct line_step {
    size_t max;
    enum stream_status status;
    const char *line;
};

struct line_case {
    const char *input;
    struct line_step steps[6];		/* ends at status -1 */
};

#define END { 0, (enum stream_status) -1, NULL }

static const struct line_case line_cases[] = {
    {"a\r\nb\nlast", {{100, STREAM_OK, "a\r\n"}, {100, STREAM_OK, "b\n"},
		      {100, STREAM_OK, "last"}, {100, STREAM_EOF, ""}, {100, STREAM_EOF, ""}, END}},
    {"", {{100, STREAM_EOF, ""}, END}},
    {"\n\r\n", {{100, STREAM_OK, "\n"}, {100, STREAM_OK, "\r\n"}, {100, STREAM_EOF, ""}, END}},
    /* a line of exactly max bytes, "\n" included, fits */
    {"123456789\nx", {{10, STREAM_OK, "123456789\n"}, {10, STREAM_OK, "x"}, END}},
    /* max bytes without "\n": TOOLONG, the rest stays unread */
    {"0123456789abc\nnext\n", {{10, STREAM_TOOLONG, "0123456789"}, {10, STREAM_OK, "abc\n"},
			       {10, STREAM_OK, "next\n"}, {10, STREAM_EOF, ""}, END}},
    {"0123456789", {{10, STREAM_TOOLONG, "0123456789"}, {10, STREAM_EOF, ""}, END}},
};

/* stream_over_memory - stream_over without a descriptor */
static struct stream *stream_over_memory(const char *data, size_t len)
{
    return stream_open_memory(data, len, NULL);
}

/* run_line_cases - the getline table over streams made by open */
static void run_line_cases(struct stream *(*open)(const char *data, size_t len))
{
    struct str *line = str_new(1000);

    for (size_t i = 0; i < sizeof(line_cases) / sizeof(line_cases[0]); i++) {
	const struct line_case *c = line_cases + i;
	struct stream *s = open(c->input, strlen(c->input));

	for (size_t j = 0; c->steps[j].status != (enum stream_status) -1; j++) {
	    enum stream_status st = stream_getline(s, line, c->steps[j].max);

	    unit_assert_idx(st == c->steps[j].status, i * 10 + j);
	    unit_assert_streq_idx(str_cstr(line), c->steps[j].line, i * 10 + j);
	}
	unit_assert_inteq(stream_close(&s), 0);
	unit_assert(s == NULL);
    }
    str_free(&line);
}

/* test_lines - the getline table over a socket */
static void test_lines(void)
{
    unit_begin("getline: CRLF, bare LF, unterminated last line, EOF, max");
    run_line_cases(stream_over);
    unit_end();
}

/* test_memory_lines - the same table over memory streams */
static void test_memory_lines(void)
{
    unit_begin("memory stream: getline reads as a socket stream does");
    run_line_cases(stream_over_memory);
    unit_end();
}

/* test_memory_long_input - input longer than the read buffer, skip_line,
 * read_exact, getc, then EOF */
static void test_memory_long_input(void)
{
    size_t len = 3 * 8192 + 17;
    char *data = mem_alloc(len);
    char exact[10];
    struct str *line = str_new(100);
    struct stream *s;

    unit_begin("memory stream: long input, skip_line, read_exact, getc, EOF");
    memset(data, 'x', len);
    data[len - 12] = '\n';
    memcpy(data + len - 11, "0123456789", 10);
    data[len - 1] = '!';
    s = stream_open_memory(data, len, NULL);
    mem_free(&data);			/* the stream read a copy */
    unit_assert(stream_fd(s) == -1);
    unit_assert(stream_getline(s, line, 100) == STREAM_TOOLONG);
    unit_assert(stream_skip_line(s) == STREAM_OK);
    unit_assert(stream_read_exact(s, exact, 10) == STREAM_OK);
    unit_assert(memcmp(exact, "0123456789", 10) == 0);
    unit_assert_inteq(stream_getc(s), '!');
    unit_assert_inteq(stream_getc(s), -1);
    unit_assert(stream_error(s) == STREAM_EOF);
    stream_free(&s);
    str_free(&line);
    unit_end();
}

/* test_memory_output - writes reach the caller's str at flush; past its
 * maximum (or with no str) they fail as a write error */
static void test_memory_output(void)
{
    struct str *out = str_new(16);
    struct stream *s;

    unit_begin("memory stream: output at flush, bounded by the str, timeouts moot");
    s = stream_open_memory("", 0, out);
    stream_set_timeout(s, 0);		/* nothing can block: no timeout */
    unit_assert_inteq(stream_printf(s, "%d %s\r\n", 250, "Ok"), 0);
    unit_assert_inteq(str_len(out), 0);	/* buffered, as on a descriptor */
    unit_assert_inteq(stream_flush(s), 0);
    unit_assert_streq(str_cstr(out), "250 Ok\r\n");
    unit_assert_inteq(stream_puts(s, "0123456789"), 0);
    unit_assert_inteq(stream_flush(s), -1);
    unit_assert(errno == ENOSPC);
    unit_assert(stream_error(s) == STREAM_ERROR);
    unit_assert_streq(str_cstr(out), "250 Ok\r\n");
    unit_assert_inteq(stream_close(&s), -1);
    s = stream_open_memory("in", 2, NULL);
    unit_assert_inteq(stream_puts(s, "x"), 0);
    unit_assert_inteq(stream_close(&s), -1);
    str_free(&out);
    unit_end();
}

/* test_skip_line - TOOLONG followed by stream_skip_line, with a long
 * line spanning several buffer fills */
static void test_skip_line(void)
{
    struct str *input = str_new(STR_MAX_DEFAULT);
    struct str *line = str_new(1000);
    struct stream *s;
    int sv[2];
    pid_t pid;

    unit_begin("TOOLONG then skip_line discards the rest of the line");
    for (int i = 0; i < 30000; i++)
	str_appendc_or_panic(input, (char) ('a' + i % 26));
    str_appends_or_panic(input, "\r\nafter\nxyz");
    make_socketpair(sv);
    if ((pid = fork()) == 0) {
	close(sv[0]);
	write_all(sv[1], input->data, input->len);
	_exit(0);
    }
    close(sv[1]);
    s = stream_open(sv[0]);
    stream_set_timeout(s, 5000);
    unit_assert(stream_getline(s, line, 512) == STREAM_TOOLONG);
    unit_assert_inteq(str_len(line), 512);
    unit_assert(memcmp(str_cstr(line), input->data, 512) == 0);
    unit_assert(stream_skip_line(s) == STREAM_OK);
    unit_assert(stream_getline(s, line, 512) == STREAM_OK);
    unit_assert_streq(str_cstr(line), "after\n");
    /* skip_line at an unterminated remainder: ok, then EOF */
    unit_assert(stream_skip_line(s) == STREAM_OK);
    unit_assert(stream_skip_line(s) == STREAM_EOF);
    unit_assert(stream_error(s) == STREAM_EOF);
    waitpid(pid, NULL, 0);
    stream_close(&s);
    str_free(&input);
    str_free(&line);
    unit_end();
}

/* test_read_functions - stream_read, read_exact, getc, buffered */
static void test_read_functions(void)
{
    struct stream *s = stream_over("hello world", 11);
    char buf[16];

    unit_begin("read, read_exact, getc, buffered");
    unit_assert_inteq(stream_getc(s), 'h');
    unit_assert_inteq(stream_buffered(s), 10);
    unit_assert(stream_read_exact(s, buf, 4) == STREAM_OK);
    unit_assert(memcmp(buf, "ello", 4) == 0);
    unit_assert_inteq(stream_read(s, buf, sizeof(buf)), 6);
    unit_assert(memcmp(buf, " world", 6) == 0);
    unit_assert_inteq(stream_buffered(s), 0);
    unit_assert_inteq(stream_read(s, buf, sizeof(buf)), 0);
    unit_assert_inteq(stream_getc(s), -1);
    stream_close(&s);

    s = stream_over("abc", 3);
    unit_assert(stream_read_exact(s, buf, 4) == STREAM_EOF);
    stream_close(&s);
    unit_end();
}

/* test_timeout - a silent peer and a slow-drip peer both time out */
static void test_timeout(void)
{
    struct str *line = str_new(1000);
    struct stream *s;
    long long t0, dt;
    int sv[2];
    pid_t pid;
    char buf[8];

    unit_begin("timeout on a silent peer; reads sticky, writes still work");
    make_socketpair(sv);
    s = stream_open(sv[0]);
    stream_set_timeout(s, 100);
    unit_assert_inteq(stream_get_timeout(s), 100);
    t0 = now_ms();
    unit_assert(stream_getline(s, line, 100) == STREAM_TIMEOUT);
    dt = now_ms() - t0;
    unit_assert(dt >= 95 && dt < 1000);
    unit_assert(stream_error(s) == STREAM_TIMEOUT);
    t0 = now_ms();
    unit_assert(stream_getline(s, line, 100) == STREAM_TIMEOUT);
    unit_assert_inteq(stream_read(s, buf, 1), -1);
    unit_assert_inteq(errno, ETIMEDOUT);
    unit_assert(now_ms() - t0 < 50);
    unit_assert_inteq(stream_puts(s, "421 timeout\r\n"), 0);
    unit_assert_inteq(stream_flush(s), 0);
    unit_assert_inteq(read(sv[1], buf, sizeof(buf)), 8);
    unit_assert(memcmp(buf, "421 time", 8) == 0);
    stream_clear_error(s);
    unit_assert(stream_error(s) == STREAM_OK);
    write_all(sv[1], "ok\n", 3);
    unit_assert(stream_getline(s, line, 100) == STREAM_OK);
    unit_assert_streq(str_cstr(line), "ok\n");
    close(sv[1]);
    stream_close(&s);
    unit_end();

    unit_begin("deadline covers the whole line (slow-drip peer)");
    make_socketpair(sv);
    if ((pid = fork()) == 0) {
	close(sv[0]);
	for (int i = 0; i < 20; i++) {
	    write_all(sv[1], "x", 1);
	    usleep(20000);
	}
	_exit(0);
    }
    close(sv[1]);
    s = stream_open(sv[0]);
    stream_set_timeout(s, 100);
    t0 = now_ms();
    unit_assert(stream_getline(s, line, 100) == STREAM_TIMEOUT);
    dt = now_ms() - t0;
    unit_assert(dt >= 95 && dt < 1000);	/* per-read timeouts would run to EOF (400 ms) */
    unit_assert(str_len(line) >= 1 && str_len(line) <= 10);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    stream_close(&s);
    unit_end();

    unit_begin("non-blocking fd, data arriving later");
    make_socketpair(sv);
    fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
    if ((pid = fork()) == 0) {
	close(sv[0]);
	usleep(30000);
	write_all(sv[1], "late ", 5);
	usleep(30000);
	write_all(sv[1], "line\n", 5);
	_exit(0);
    }
    close(sv[1]);
    s = stream_open(sv[0]);
    stream_set_timeout(s, 5000);
    unit_assert(stream_getline(s, line, 100) == STREAM_OK);
    unit_assert_streq(str_cstr(line), "late line\n");
    unit_assert(stream_getline(s, line, 100) == STREAM_EOF);
    waitpid(pid, NULL, 0);
    stream_close(&s);
    str_free(&line);
    unit_end();
}

/* test_recv_timeout - a blocking socket with a deadline waits in recv(2)
 * under SO_RCVTIMEO (half the timeout), and still ends at the deadline;
 * a non-blocking one goes on polling */
static void test_recv_timeout(void)
{
    struct str *line = str_new(100);
    struct stream *s;
    struct timeval tv;
    socklen_t len = sizeof(tv);
    long long t0, dt;
    int sv[2];

    unit_begin("blocking socket: the wait is recv(2) with SO_RCVTIMEO, deadline kept");
    make_socketpair(sv);
    s = stream_open(sv[0]);
    stream_set_timeout(s, 300);
    write_all(sv[1], "one\n", 4);
    unit_assert_inteq(stream_getline(s, line, 100), STREAM_OK);
    unit_assert(getsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, &len) == 0);
    dt = tv.tv_sec * 1000 + tv.tv_usec / 1000;	/* the kernel rounds to its tick */
    unit_assert(dt >= 140 && dt <= 170);
    t0 = now_ms();
    unit_assert_inteq(stream_getline(s, line, 100), STREAM_TIMEOUT);
    dt = now_ms() - t0;
    unit_assert(dt >= 295 && dt < 1000);	/* the slice (150) alone would stop early */
    stream_free(&s);
    close(sv[0]);
    close(sv[1]);
    unit_end();

    unit_begin("non-blocking socket: no receive timeout, the poll waits");
    make_socketpair(sv);
    fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
    s = stream_open(sv[0]);
    stream_set_timeout(s, 200);
    t0 = now_ms();
    unit_assert_inteq(stream_getline(s, line, 100), STREAM_TIMEOUT);
    dt = now_ms() - t0;
    unit_assert(dt >= 195 && dt < 1000);
    stream_free(&s);
    close(sv[0]);
    close(sv[1]);
    str_free(&line);
    unit_end();
}

/* checksum - a simple position-dependent sum */
static uint64_t checksum(const unsigned char *p, size_t len, uint64_t sum)
{
    for (size_t i = 0; i < len; i++)
	sum = sum * 31 + p[i];
    return sum;
}

/* test_large_pipe - many sizes of writes through a non-blocking pipe,
 * with a child that counts and checksums what arrives */
static void test_large_pipe(void)
{
    static const size_t sizes[] = {1, 7, 100, 8191, 8192, 8193, 40000, 65535, 65536, 300000, 3, 1};
    unsigned char *data = mem_alloc(300000);
    uint64_t sum = 0, got_sum = 0;
    size_t total = 0, got_total = 0;
    struct stream *s;
    int data_pipe[2], result_pipe[2];
    pid_t pid;

    unit_begin("large writes through a pipe to a reader");
    for (size_t i = 0; i < 300000; i++)
	data[i] = (unsigned char) (i * 7 + i / 251);
    if (pipe(data_pipe) < 0 || pipe(result_pipe) < 0)
	msg_fatal("pipe: %m");
    if ((pid = fork()) == 0) {
	unsigned char buf[1000];	/* small reads: the writer must wait */
	uint64_t csum = 0;
	size_t count = 0;
	ssize_t n;

	close(data_pipe[1]);
	close(result_pipe[0]);
	while ((n = read(data_pipe[0], buf, sizeof(buf))) > 0) {
	    csum = checksum(buf, (size_t) n, csum);
	    count += (size_t) n;
	}
	write_all(result_pipe[1], &count, sizeof(count));
	write_all(result_pipe[1], &csum, sizeof(csum));
	_exit(0);
    }
    close(data_pipe[0]);
    close(result_pipe[1]);
    fcntl(data_pipe[1], F_SETFL, fcntl(data_pipe[1], F_GETFL) | O_NONBLOCK);
    s = stream_open(data_pipe[1]);
    stream_set_timeout(s, 10000);
    for (int round = 0; round < 3; round++) {
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
	    unit_assert_idx(stream_write(s, data, sizes[i]) == 0, i);
	    sum = checksum(data, sizes[i], sum);
	    total += sizes[i];
	}
    }
    unit_assert_inteq(stream_close(&s), 0);
    unit_assert_inteq(read(result_pipe[0], &got_total, sizeof(got_total)), sizeof(got_total));
    unit_assert_inteq(read(result_pipe[0], &got_sum, sizeof(got_sum)), sizeof(got_sum));
    unit_assert_inteq(got_total, total);
    unit_assert(got_sum == sum);
    close(result_pipe[0]);
    waitpid(pid, NULL, 0);
    mem_free(&data);
    unit_end();
}

/* file_contents - rewind a file and read it all */
static void file_contents(int fd, struct str *out)
{
    str_reset(out);
    lseek(fd, 0, SEEK_SET);
    read_to_eof(fd, out);
}

/* test_printf - formatted output, short and long, into a file */
static void test_printf(void)
{
    char path[] = "/tmp/test-stream.XXXXXX";
    struct str *out = str_new(STR_MAX_DEFAULT);
    struct str *big = str_new(STR_MAX_DEFAULT);
    struct stream *s;
    int fd;

    unit_begin("printf, puts and flush");
    if ((fd = mkstemp(path)) < 0)
	msg_fatal("mkstemp: %m");
    unlink(path);
    s = stream_open(dup(fd));
    unit_assert_inteq(stream_printf(s, "%d %s %03u|", -42, "abc", 7u), 0);
    unit_assert_inteq(stream_puts(s, "250 ok\r\n"), 0);
    /* buffered until flushed */
    file_contents(fd, out);
    unit_assert_inteq(str_len(out), 0);
    unit_assert_inteq(stream_flush(s), 0);
    file_contents(fd, out);
    unit_assert_streq(str_cstr(out), "-42 abc 007|250 ok\r\n");
    for (int i = 0; i < 100000; i++)
	str_appendc_or_panic(big, (char) ('A' + i % 26));
    unit_assert_inteq(stream_printf(s, "<%s>", str_cstr(big)), 0);
    unit_assert_inteq(stream_printf(s, "%s", "end"), 0);
    unit_assert_inteq(stream_close(&s), 0);
    file_contents(fd, out);
    unit_assert_inteq(str_len(out), 20 + 100002 + 3);
    unit_assert(memcmp(out->data + 21, big->data, 100000) == 0);
    unit_assert(memcmp(out->data + str_len(out) - 4, ">end", 4) == 0);
    close(fd);
    str_free(&out);
    str_free(&big);
    unit_end();
}

/* A mock I/O layer: input from memory (ROT13), output to memory, in
 * small pieces, with EAGAIN now and then. */
struct mock_io {
    const char *in;
    size_t in_len, in_pos;
    int read_calls, write_calls;
    struct str *out;
};

/* rot13 - rotate letters by 13 */
static char rot13(char c)
{
    if (c >= 'a' && c <= 'z')
	return (char) ('a' + (c - 'a' + 13) % 26);
    if (c >= 'A' && c <= 'Z')
	return (char) ('A' + (c - 'A' + 13) % 26);
    return c;
}

/* mock_read - up to 5 bytes per call, EAGAIN on every third call */
static ssize_t mock_read(void *ctx, void *buf, size_t len)
{
    struct mock_io *m = ctx;
    char *out = buf;
    size_t n = m->in_len - m->in_pos;

    if (++m->read_calls % 3 == 0) {
	errno = EAGAIN;
	return -1;
    }
    if (n > 5)
	n = 5;
    if (n > len)
	n = len;
    for (size_t i = 0; i < n; i++)
	out[i] = rot13(m->in[m->in_pos + i]);
    m->in_pos += n;
    return (ssize_t) n;
}

/* mock_write - up to 3 bytes per call, EAGAIN on every second call */
static ssize_t mock_write(void *ctx, const void *buf, size_t len)
{
    struct mock_io *m = ctx;
    const char *in = buf;

    if (++m->write_calls % 2 == 0) {
	errno = EAGAIN;
	return -1;
    }
    if (len > 3)
	len = 3;
    for (size_t i = 0; i < len; i++)
	str_appendc_or_panic(m->out, rot13(in[i]));
    return (ssize_t) len;
}

/* mock_pending - what is left in memory */
static size_t mock_pending(void *ctx)
{
    struct mock_io *m = ctx;

    return m->in_len - m->in_pos;
}

static const struct stream_io mock_funcs = {mock_read, mock_write, mock_pending, NULL};

/* test_custom_io - reads and writes go through stream_io */
static void test_custom_io(void)
{
    struct mock_io m = {"uryyb\r\nfrpbaq yvar\n", 19, 0, 0, 0, NULL};
    struct str *line = str_new(1000);
    struct stream *s;
    int sv[2];
    char buf[4];

    unit_begin("custom stream_io: pending data is read without polling");
    m.out = str_new(1000);
    make_socketpair(sv);
    /* something readable on the fd that the mock layer must hide */
    write_all(sv[1], "RAW", 3);
    s = stream_open(sv[0]);
    stream_set_timeout(s, 2000);
    stream_set_io(s, &mock_funcs, &m);
    unit_assert_inteq(stream_buffered(s), 19);
    unit_assert(stream_getline(s, line, 100) == STREAM_OK);
    unit_assert_streq(str_cstr(line), "hello\r\n");
    unit_assert(stream_getline(s, line, 100) == STREAM_OK);
    unit_assert_streq(str_cstr(line), "second line\n");
    unit_assert(m.read_calls > 4);
    unit_assert_inteq(stream_printf(s, "%s %d\r\n", "Reply", 250), 0);
    unit_assert_inteq(str_len(m.out), 0);
    unit_assert_inteq(stream_flush(s), 0);
    unit_assert_streq(str_cstr(m.out), "Ercyl 250\r\n");
    unit_assert_inteq(m.write_calls, 7);	/* 4 writes, 3 EAGAIN */
    /* with the mock drained, the stream polls the fd ("RAW" makes it
     * readable) and the mock says EOF */
    unit_assert(stream_getline(s, line, 100) == STREAM_EOF);
    /* back to the plain fd */
    stream_clear_error(s);
    stream_set_io(s, NULL, NULL);
    unit_assert(stream_read_exact(s, buf, 3) == STREAM_OK);
    unit_assert(memcmp(buf, "RAW", 3) == 0);
    stream_close(&s);
    close(sv[1]);
    str_free(&m.out);
    str_free(&line);
    unit_end();
}

/* set_io_unflushed - switching I/O layers with pending output is a bug */
static void set_io_unflushed(void *arg)
{
    struct stream *s = stream_open(1);
    struct mock_io *m = arg;

    stream_puts(s, "x");
    stream_set_io(s, &mock_funcs, m);
}

/* getline_zero - a zero maximum is a bug */
static void getline_zero(void *arg)
{
    struct stream *s = stream_open(0);
    struct str *line = str_new(10);

    (void) arg;
    stream_getline(s, line, 0);
}

/* test_sticky_error - EPIPE on a socket without SIGPIPE, sticky writes */
static void test_sticky_error(void)
{
    struct str *line = str_new(1000);
    struct mock_io m = {"", 0, 0, 0, 0, NULL};
    struct stream *s;
    int sv[2];

    unit_begin("sticky write error; socket EPIPE raises no SIGPIPE");
    make_socketpair(sv);
    write_all(sv[1], "still here\n", 11);
    close(sv[1]);
    s = stream_open(sv[0]);
    stream_set_timeout(s, 1000);
    unit_assert_inteq(stream_puts(s, "data\r\n"), 0);
    unit_assert_inteq(stream_flush(s), -1);
    unit_assert_inteq(errno, EPIPE);
    unit_assert(stream_error(s) == STREAM_ERROR);
    errno = 0;
    unit_assert_inteq(stream_puts(s, "more"), -1);
    unit_assert_inteq(errno, EPIPE);
    unit_assert_inteq(stream_printf(s, "%d", 1), -1);
    unit_assert_inteq(stream_flush(s), -1);
    /* the read side still works: the peer's last words can be read */
    unit_assert(stream_getline(s, line, 100) == STREAM_OK);
    unit_assert_streq(str_cstr(line), "still here\n");
    unit_assert(stream_getline(s, line, 100) == STREAM_EOF);
    unit_assert(stream_error(s) == STREAM_ERROR);	/* the first failure */
    stream_clear_error(s);
    unit_assert(stream_error(s) == STREAM_OK);
    unit_assert_inteq(stream_close(&s), -1);	/* the unsent data */
    unit_end();

    unit_begin("stream_close flushes; stream_free keeps the fd open");
    make_socketpair(sv);
    s = stream_open(sv[0]);
    stream_puts(s, "bye\r\n");
    unit_assert_inteq(stream_close(&s), 0);
    str_reset(line);
    read_to_eof(sv[1], line);
    unit_assert_streq(str_cstr(line), "bye\r\n");
    close(sv[1]);
    make_socketpair(sv);
    s = stream_open(sv[0]);
    unit_assert_inteq(stream_fd(s), sv[0]);
    stream_free(&s);
    unit_assert(s == NULL);
    unit_assert_inteq(write(sv[0], "y", 1), 1);
    close(sv[0]);
    close(sv[1]);
    unit_end();

    unit_begin("status texts and expected panics");
    unit_assert_streq(stream_status_text(STREAM_TIMEOUT), "timeout");
    unit_assert_streq(stream_status_text(STREAM_TOOLONG), "line too long");
    unit_assert(unit_expect_exit(set_io_unflushed, &m, UNIT_EXIT_SIGNAL, SIGABRT, "unflushed"));
    unit_assert(unit_expect_exit(getline_zero, NULL, UNIT_EXIT_SIGNAL, SIGABRT, "zero maximum"));
    unit_end();
    str_free(&line);
}

/* A layer like TLS: a read takes the socket's bytes, then must write
 * first (EAGAIN, want POLLOUT, nothing pending) before handing them out;
 * release() is called when the stream is freed. */
struct want_io {
    int fd;
    char buf[128];
    size_t off, len;
    bool must_write;
    int released;
};

static ssize_t want_read(void *ctx, void *out, size_t len)
{
    struct want_io *w = ctx;
    size_t n;

    if (w->must_write) {
	w->must_write = false;		/* the fd was writable: go on */
    } else if (w->off == w->len) {
	ssize_t r = recv(w->fd, w->buf, sizeof(w->buf), MSG_DONTWAIT);

	if (r <= 0)
	    return r;
	w->off = 0;
	w->len = (size_t) r;
	w->must_write = true;
	errno = EAGAIN;
	return -1;
    }
    n = w->len - w->off < len ? w->len - w->off : len;
    memcpy(out, w->buf + w->off, n);
    w->off += n;
    return (ssize_t) n;
}

static ssize_t want_write(void *ctx, const void *buf, size_t len)
{
    struct want_io *w = ctx;

    return write(w->fd, buf, len);
}

static size_t want_pending(void *ctx)
{
    struct want_io *w = ctx;

    return w->must_write ? 0 : w->len - w->off;
}

static short want_want(void *ctx)
{
    struct want_io *w = ctx;

    return w->must_write ? POLLOUT : POLLIN;
}

static void want_release(void *ctx)
{
    struct want_io *w = ctx;

    w->released++;
}

static const struct stream_io want_funcs = {want_read, want_write, want_pending, want_want};

/* test_io_want - a read whose layer waits for POLLOUT completes well
 * before the timeout (polling POLLIN would wait for it); release */
static void test_io_want(void)
{
    struct want_io w = {0};
    struct str *line = str_new(100);
    struct stream *s;
    int sv[2];
    void *ctx = NULL;
    struct timespec t0, t1;
    long ms;

    unit_begin("stream io: want() POLLOUT for a read; release with the stream");
    unit_assert(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    w.fd = sv[0];
    s = stream_open(sv[0]);
    stream_set_timeout(s, 3000);
    stream_set_io(s, &want_funcs, &w);
    stream_set_io_release(s, want_release);
    unit_assert(stream_get_io(s, &ctx) == &want_funcs && ctx == &w);
    unit_assert_inteq(write(sv[1], "one\ntwo\n", 8), 8);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    unit_assert_inteq(stream_getline(s, line, 100), STREAM_OK);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    unit_assert_streq(str_cstr(line), "one\n");
    unit_assert(ms < 1000);
    unit_assert_inteq(stream_discard_input(s), 4);	/* "two\n" */
    stream_free(&s);
    unit_assert_inteq(w.released, 1);
    close(sv[0]);
    close(sv[1]);
    str_free(&line);
    unit_end();
}

/* The wait hook test: a signal during a wait, and what the hook does. */
static volatile sig_atomic_t hook_signalled;
static int hook_calls, hook_cuts;

static void hook_on_signal(int sig)
{
    (void) sig;
    hook_signalled = 1;
}

static void hook_fn(struct stream *s, void *ctx)
{
    (void) ctx;
    hook_calls++;
    if (hook_signalled && hook_cuts == 0) {
	hook_cuts++;
	stream_set_timeout(s, 500);
	stream_cut_deadline(s, 200);
    }
}

/* test_wait_hook - a signal in a wait runs the hook, which cuts it */
static void test_wait_hook(void)
{
    struct str *line = str_new(100);
    struct sigaction sa, old;
    struct itimerval it;
    struct stream *s;
    long long t0, ms;
    int sv[2];

    unit_begin("stream_set_wait_hook: a signal cuts the wait in progress");
    unit_assert(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    s = stream_open(sv[0]);
    stream_set_timeout(s, 5000);
    stream_set_wait_hook(s, hook_fn, NULL);
    /* no signal: the hook runs before the wait and changes nothing */
    unit_assert(write(sv[1], "a\n", 2) == 2);
    unit_assert_inteq(stream_getline(s, line, 100), STREAM_OK);
    unit_assert_inteq(hook_cuts, 0);
    /* a signal 100 ms into a silent wait (SA_RESTART: poll(2) returns
     * EINTR all the same) */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = hook_on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, &old);
    memset(&it, 0, sizeof(it));
    it.it_value.tv_usec = 100000;
    unit_assert(setitimer(ITIMER_REAL, &it, NULL) == 0);
    t0 = now_ms();
    unit_assert_inteq(stream_getline(s, line, 100), STREAM_TIMEOUT);
    ms = now_ms() - t0;
    unit_assert(ms >= 250 && ms < 1500);		/* 100 + 200, not 5000 */
    unit_assert_inteq(hook_cuts, 1);
    unit_assert(hook_calls >= 3);
    unit_assert_inteq(stream_get_timeout(s), 500);
    /* the next operation has the (new) timeout, not the cut */
    stream_clear_error(s);
    t0 = now_ms();
    unit_assert_inteq(stream_getline(s, line, 100), STREAM_TIMEOUT);
    ms = now_ms() - t0;
    unit_assert(ms >= 450 && ms < 2000);
    sigaction(SIGALRM, &old, NULL);
    stream_free(&s);
    close(sv[0]);
    close(sv[1]);
    str_free(&line);
    unit_end();
}

/* test_preload - preloaded bytes come first, then the descriptor's */
static void test_preload(void)
{
    struct str *line = str_new(STREAM_PRELOAD_MAX + 16);
    static char big[STREAM_PRELOAD_MAX + 1];
    struct stream *s;
    int sv[2];

    unit_begin("stream_preload_input: read before the socket");
    unit_assert(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    s = stream_open(sv[0]);
    stream_set_timeout(s, 2000);
    unit_assert(write(sv[1], "RCPT TO:<b>\r\n", 13) == 13);
    unit_assert_inteq(stream_preload_input(s, "EHLO x\r\nMAIL FROM:<a>\r\n", 23), 0);
    unit_assert_inteq(stream_buffered_here(s), 23);
    unit_assert_inteq(stream_getline(s, line, 100), STREAM_OK);
    unit_assert_streq(str_cstr(line), "EHLO x\r\n");
    /* what is still buffered stays behind a second preload */
    unit_assert_inteq(stream_preload_input(s, "X\n", 2), 0);
    unit_assert_inteq(stream_getline(s, line, 100), STREAM_OK);
    unit_assert_streq(str_cstr(line), "X\n");
    unit_assert_inteq(stream_getline(s, line, 100), STREAM_OK);
    unit_assert_streq(str_cstr(line), "MAIL FROM:<a>\r\n");
    unit_assert_inteq(stream_getline(s, line, 100), STREAM_OK);
    unit_assert_streq(str_cstr(line), "RCPT TO:<b>\r\n");
    unit_assert_inteq(stream_preload_input(s, "", 0), 0);
    /* the limit: all of it fits an empty buffer, one byte more does not */
    memset(big, 'a', sizeof(big));
    unit_assert_inteq(stream_preload_input(s, big, STREAM_PRELOAD_MAX + 1), -1);
    unit_assert_inteq(stream_preload_input(s, big, STREAM_PRELOAD_MAX), 0);
    unit_assert_inteq(stream_preload_input(s, "b", 1), -1);
    unit_assert_inteq(stream_buffered_here(s), STREAM_PRELOAD_MAX);
    stream_free(&s);
    close(sv[0]);
    close(sv[1]);
    str_free(&line);
    unit_end();
}

/* test_no_spurious_wakeup - a request and its answer over a unix
 * stream socket: the asking side waits once, not also when the peer
 * reads the request (the kernel wakes a recv(2) waiter for the freed
 * send space; stream.c waits in poll(2) after a send) */
static void test_no_spurious_wakeup(void)
{
    int sv[2];
    pid_t pid;
    int status;

    unit_begin("unix socket: an answer is waited for once, not woken by the peer's read");
    unit_assert(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    pid = fork();
    unit_assert(pid >= 0);
    if (pid == 0) {
	struct stream *s;
	struct str *line = str_new(100);
	struct rusage before, after;
	long waits;

	(void) close(sv[1]);
	s = stream_open(sv[0]);
	stream_set_timeout(s, 10000);
	(void) stream_puts(s, "request\n");
	(void) stream_flush(s);
	(void) getrusage(RUSAGE_SELF, &before);
	if (stream_getline(s, line, 100) != STREAM_OK || strcmp(str_cstr(line), "answer\n") != 0)
	    _exit(2);
	(void) getrusage(RUSAGE_SELF, &after);
	waits = after.ru_nvcsw - before.ru_nvcsw;
	_exit(waits == 1 ? 0 : 10 + (int) (waits > 50 ? 50 : waits));
    }
    (void) close(sv[0]);
    {
	struct timespec pause = {0, 50 * 1000000L};
	char buf[64];

	(void) nanosleep(&pause, NULL);	/* the child is waiting by now */
	unit_assert(read(sv[1], buf, sizeof(buf)) == 8);	/* frees its send space */
	(void) nanosleep(&pause, NULL);	/* a woken waiter would have run */
	write_all(sv[1], "answer\n", 7);
    }
    unit_assert(waitpid(pid, &status, 0) == pid);
    unit_assert(WIFEXITED(status));
    if (WEXITSTATUS(status) != 0)
	fprintf(stderr, "# child: exit %d (10 + voluntary switches while waiting)\n",
		WEXITSTATUS(status));
    unit_assert_inteq(WEXITSTATUS(status), 0);
    (void) close(sv[1]);
    unit_end();
}

int main(void)
{
    /* first, with SIGPIPE at its default: sockets must not raise it */
    signal(SIGPIPE, SIG_DFL);
    test_sticky_error();
    signal(SIGPIPE, SIG_IGN);
    test_lines();
    test_skip_line();
    test_read_functions();
    test_timeout();
    test_recv_timeout();
    test_large_pipe();
    test_printf();
    test_custom_io();
    test_memory_lines();
    test_memory_long_input();
    test_memory_output();
    test_io_want();
    test_preload();
    test_wait_hook();
    test_no_spurious_wakeup();
    return unit_done();
}
