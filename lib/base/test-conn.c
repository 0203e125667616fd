/* test-conn.c - unit tests for conn.c (non-blocking client connections)
 * over socketpairs: pipelined and too-long lines, raw bytes, output to
 * a slow reader with on_drain, deadlines, pause, unread, hand-over and
 * closing from inside callbacks. */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "event.h"
#include "msg.h"
#include "unit.h"

/* now_ms - monotonic milliseconds */
static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* pair - a connected stream socketpair or fatal */
static void pair(int sv[2])
{
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
	msg_fatal("socketpair: %m");
}

/* What a test connection saw. */
struct seen {
    char trace[4096];
    int closes;
    enum conn_close_reason why;
    int drains;
    int mode;			/* what on_input does, per test */
    size_t literal;		/* bytes to read raw next */
    struct conn *c;
    int taken_fd;
    char leftover[64];
    long long produce_left;	/* on_drain producer */
    int inputs;
};

/* add - append a tag to the trace */
static void add(struct seen *s, const char *tag)
{
    size_t len = strlen(s->trace);

    if (len + strlen(tag) + 2 >= sizeof(s->trace))
	msg_panic("trace overflow");
    if (len)
	s->trace[len++] = ' ';
    memcpy(s->trace + len, tag, strlen(tag) + 1);
}

enum { M_ONE_LINE, M_ALL_LINES, M_LITERAL, M_CLOSE, M_PAUSE, M_TAKE, M_ECHO_QUIT, M_NOTHING, M_FLOOD };

/* on_input - behaviour chosen by s->mode */
static void on_input(struct conn *c, void *ctx)
{
    struct seen *s = ctx;
    const char *line;
    const void *data;
    size_t len;
    enum conn_read_status r;

    s->inputs++;
    switch (s->mode) {
    case M_NOTHING:
	return;
    case M_ONE_LINE:
	r = conn_read_line(c, &line, &len);
	if (r == CONN_LINE)
	    add(s, line);
	else if (r == CONN_TOOLONG)
	    add(s, "TOOLONG");
	return;
    case M_ALL_LINES:
	while ((r = conn_read_line(c, &line, &len)) != CONN_NONE)
	    add(s, r == CONN_LINE ? line : "TOOLONG");
	return;
    case M_LITERAL:
	for (;;) {
	    if (s->literal) {
		if (conn_read_bytes(c, s->literal, &data) != CONN_BYTES)
		    return;
		char buf[64];

		memcpy(buf, data, s->literal);
		buf[s->literal] = 0;
		add(s, "bytes:");
		add(s, buf);
		s->literal = 0;
		continue;
	    }
	    if (conn_read_line(c, &line, &len) != CONN_LINE)
		return;
	    add(s, line);
	    if (len > 2 && line[0] == '{')
		s->literal = (size_t) (line[1] - '0');
	}
    case M_CLOSE:
	if (conn_read_line(c, &line, &len) == CONN_LINE) {
	    add(s, line);
	    conn_close(c, CONN_CLOSE_LOCAL);
	    /* still allowed until we return: ignored */
	    conn_puts(c, "after close\r\n");
	    unit_assert_inteq(s->closes, 0);
	    unit_assert_inteq(conn_close_reason(c), CONN_CLOSE_LOCAL);
	}
	return;
    case M_PAUSE:
	if (conn_read_line(c, &line, &len) == CONN_LINE) {
	    add(s, line);
	    conn_pause_input(c, true);
	}
	return;
    case M_TAKE:
	if (conn_read_line(c, &line, &len) == CONN_LINE) {
	    add(s, line);
	    if (strcmp(line, "PASS x") == 0) {
		size_t n = conn_input_avail(c);

		memcpy(s->leftover, conn_input_peek(c), n);
		s->leftover[n] = 0;
		s->taken_fd = conn_take_fd(c);
	    }
	}
	return;
    case M_FLOOD:
	if (conn_read_line(c, &line, &len) == CONN_LINE) {
	    static char big[4 * 1024 * 1024];

	    conn_write(c, big, sizeof(big));
	}
	return;
    case M_ECHO_QUIT:
	while (conn_read_line(c, &line, &len) == CONN_LINE) {
	    add(s, line);
	    conn_printf(c, "+OK %s\r\n", line);
	    if (strcmp(line, "QUIT") == 0)
		conn_close_after_flush(c);
	}
	return;
    }
}

/* on_drain - count; in producer mode, produce until 256 KiB are queued */
static void on_drain(struct conn *c, void *ctx)
{
    struct seen *s = ctx;
    char chunk[8192];

    s->drains++;
    memset(chunk, 'x', sizeof(chunk));
    while (s->produce_left > 0 && conn_output_pending(c) < 256 * 1024) {
	size_t n = s->produce_left > (long long) sizeof(chunk) ? sizeof(chunk) : (size_t) s->produce_left;

	conn_write(c, chunk, n);
	s->produce_left -= (long long) n;
    }
}

/* on_close - count and remember why */
static void on_close(struct conn *c, void *ctx)
{
    struct seen *s = ctx;

    s->closes++;
    s->why = conn_close_reason(c);
    s->c = NULL;
}

static const struct conn_handlers handlers = { on_input, on_drain, on_close };
static const struct conn_handlers handlers_nodrain = { on_input, NULL, on_close };

/* run_until - loop until *flag becomes true or ms pass */
static void run_until(const int *flag, int ms)
{
    long long end = now_ms() + ms;

    while (!*flag && now_ms() < end)
	event_loop_once(20);
}

/* spin - run the loop for ms */
static void spin(int ms)
{
    long long end = now_ms() + ms;

    while (now_ms() < end)
	event_loop_once(10);
}

/* wait_trace - loop until the trace is want or 3 s pass (a loaded
 * machine may need more than one iteration) */
static void wait_trace(const struct seen *s, const char *want)
{
    long long end = now_ms() + 3000;

    while (strcmp(s->trace, want) != 0 && now_ms() < end)
	event_loop_once(20);
}

/* test_pipelined - several lines in one packet are offered in order */
static void test_pipelined(void)
{
    struct seen s = { .mode = M_ONE_LINE };
    int sv[2];

    unit_begin("pipelined lines, one per on_input call");
    pair(sv);
    s.c = conn_new(sv[0], &handlers, &s, 64);
    unit_assert_inteq(write(sv[1], "A\r\nB\nC\r\nparti", 13), 13);
    wait_trace(&s, "A B C");
    unit_assert_streq(s.trace, "A B C");
    unit_assert_inteq(conn_input_avail(s.c), 5);
    unit_assert_inteq(write(sv[1], "al\r\n", 4), 4);
    wait_trace(&s, "A B C partial");
    unit_assert_streq(s.trace, "A B C partial");
    conn_close(s.c, CONN_CLOSE_LOCAL);
    unit_assert_inteq(s.closes, 1);
    unit_assert_inteq(s.why, CONN_CLOSE_LOCAL);
    close(sv[1]);
    unit_end();
}

/* test_toolong - an over-long line is reported once and skipped */
static void test_toolong(void)
{
    struct seen s = { .mode = M_ALL_LINES };
    int sv[2];
    char big[100];

    unit_begin("too-long lines: reported once, skipped to LF");
    pair(sv);
    s.c = conn_new(sv[0], &handlers, &s, 16);
    memset(big, 'a', sizeof(big));
    unit_assert_inteq(write(sv[1], big, sizeof(big)), sizeof(big));
    unit_assert_inteq(write(sv[1], "\r\nok\r\n", 6), 6);
    /* exactly at the limit: 14 + CRLF = 16 passes, 15 + CRLF does not */
    unit_assert_inteq(write(sv[1], "bbbbbbbbbbbbbb\r\n", 16), 16);
    unit_assert_inteq(write(sv[1], "ccccccccccccccc\r\nend\n", 21), 21);
    wait_trace(&s, "TOOLONG ok bbbbbbbbbbbbbb TOOLONG end");
    unit_assert_streq(s.trace, "TOOLONG ok bbbbbbbbbbbbbb TOOLONG end");
    conn_close(s.c, CONN_CLOSE_LOCAL);
    close(sv[1]);
    unit_end();
}

/* test_bytes - conn_read_bytes for a literal between lines */
static void test_bytes(void)
{
    struct seen s = { .mode = M_LITERAL };
    int sv[2];

    unit_begin("conn_read_bytes: literal split across packets");
    pair(sv);
    s.c = conn_new(sv[0], &handlers, &s, 64);
    unit_assert_inteq(write(sv[1], "{5}\r\nhe", 7), 7);
    wait_trace(&s, "{5}");
    unit_assert_streq(s.trace, "{5}");
    unit_assert_inteq(write(sv[1], "l\nlo tail\r\n", 11), 11);
    wait_trace(&s, "{5} bytes: hel\nl o tail");
    unit_assert_streq(s.trace, "{5} bytes: hel\nl o tail");
    conn_close(s.c, CONN_CLOSE_LOCAL);
    close(sv[1]);
    unit_end();
}

/* test_slow_reader - 2 MiB queued at once reach a reader that reads in
 * small bites, in order; on_drain is called as the queue empties */
static void test_slow_reader(void)
{
    struct seen s = { .mode = M_NOTHING };
    int sv[2];
    static char buf[2 * 1024 * 1024];
    size_t got = 0, i;
    bool ok = true;
    long long end;
    int small = 4096;

    unit_begin("output to a slow reader: all bytes, in order, on_drain");
    pair(sv);
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    s.c = conn_new(sv[0], &handlers, &s, 64);
    for (i = 0; i < sizeof(buf); i++)
	buf[i] = (char) (i * 7 + i / 1000);
    conn_write(s.c, buf, sizeof(buf));
    unit_assert_inteq(conn_output_pending(s.c), sizeof(buf));
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    end = now_ms() + 10000;
    while (got < sizeof(buf) && now_ms() < end) {
	char rb[3000];
	ssize_t n;

	event_loop_once(5);
	while ((n = read(sv[1], rb, sizeof(rb))) > 0) {
	    for (i = 0; i < (size_t) n; i++)
		if (rb[i] != buf[got + i])
		    ok = false;
	    got += (size_t) n;
	}
    }
    unit_assert_inteq(got, sizeof(buf));
    unit_assert(ok);
    unit_assert_inteq(conn_output_pending(s.c), 0);
    unit_assert(s.drains >= 1);
    unit_assert_inteq(s.closes, 0);
    conn_close(s.c, CONN_CLOSE_LOCAL);
    close(sv[1]);
    unit_end();
}

/* test_write_space - bytes written into conn_write_space and queued with
 * conn_write_done go out in order with conn_write's */
static void test_write_space(void)
{
    struct seen s = { .mode = M_NOTHING };
    int sv[2];
    char rb[64];
    char *p;
    size_t got = 0;
    long long end;

    unit_begin("conn_write_space/conn_write_done: in order with conn_write");
    pair(sv);
    s.c = conn_new(sv[0], &handlers, &s, 64);
    conn_write(s.c, "ab", 2);
    p = conn_write_space(s.c, 10);
    unit_assert(p != NULL);
    memcpy(p, "cdefXXXXXX", 10);
    conn_write_done(s.c, 4);
    conn_write(s.c, "g", 1);
    unit_assert_inteq(conn_output_pending(s.c), 7);
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    end = now_ms() + 5000;
    while (got < 7 && now_ms() < end) {
	ssize_t n;

	event_loop_once(5);
	if ((n = read(sv[1], rb + got, sizeof(rb) - got)) > 0)
	    got += (size_t) n;
    }
    unit_assert_inteq(got, 7);
    unit_assert(memcmp(rb, "abcdefg", 7) == 0);
    conn_close(s.c, CONN_CLOSE_LOCAL);
    close(sv[1]);
    unit_end();
}

/* test_producer - on_drain produces 8 MiB, never more than ~256 KiB
 * queued at a time */
static void test_producer(void)
{
    struct seen s = { .mode = M_NOTHING };
    int sv[2];
    long long total = 8LL * 1024 * 1024, got = 0, end;
    size_t max_pending = 0;

    unit_begin("on_drain producer: bounded queue, every byte delivered");
    pair(sv);
    s.c = conn_new(sv[0], &handlers, &s, 64);
    s.produce_left = total;
    on_drain(s.c, &s);		/* start producing, as a RETR would */
    s.drains = 0;
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    end = now_ms() + 20000;
    while (got < total && now_ms() < end) {
	char rb[65536];
	ssize_t n;

	if (s.c && conn_output_pending(s.c) > max_pending)
	    max_pending = conn_output_pending(s.c);
	event_loop_once(5);
	while ((n = read(sv[1], rb, sizeof(rb))) > 0)
	    got += n;
    }
    unit_assert_inteq(got, total);
    unit_assert(s.drains > 1);
    unit_assert(max_pending < 256 * 1024 + 8192 + 1);
    conn_close(s.c, CONN_CLOSE_LOCAL);
    close(sv[1]);
    unit_end();
}

/* test_idle - no input: closed with CONN_CLOSE_TIMEOUT after the idle
 * deadline; input pushes the deadline back */
static void test_idle(void)
{
    struct seen s = { .mode = M_ONE_LINE };
    int sv[2];
    long long t0;

    unit_begin("idle deadline");
    pair(sv);
    s.c = conn_new(sv[0], &handlers, &s, 64);
    t0 = now_ms();
    conn_set_idle_timeout(s.c, 400);
    spin(150);
    unit_assert_inteq(write(sv[1], "x\n", 2), 2);
    spin(150);
    unit_assert_inteq(s.closes, 0);
    unit_assert_streq(s.trace, "x");
    run_until(&s.closes, 3000);
    unit_assert_inteq(s.closes, 1);
    unit_assert_inteq(s.why, CONN_CLOSE_TIMEOUT);
    unit_assert(now_ms() - t0 >= 540);
    unit_assert(now_ms() - t0 < 3000);
    close(sv[1]);
    unit_end();
}

/* test_write_deadline - a peer that never reads is closed after the
 * write deadline, even with no idle deadline */
static void test_write_deadline(void)
{
    struct seen s = { .mode = M_NOTHING };
    int sv[2];
    static char buf[4 * 1024 * 1024];
    long long t0;

    unit_begin("write deadline: a client that does not read");
    pair(sv);
    s.c = conn_new(sv[0], &handlers_nodrain, &s, 64);
    conn_set_write_timeout(s.c, 150);
    t0 = now_ms();
    conn_write(s.c, buf, sizeof(buf));
    run_until(&s.closes, 3000);
    unit_assert_inteq(s.closes, 1);
    unit_assert_inteq(s.why, CONN_CLOSE_TIMEOUT);
    unit_assert(now_ms() - t0 >= 140);
    close(sv[1]);
    unit_end();
}

/* test_write_deadline_inside - a big reply queued inside on_input to a
 * peer that never reads: the write deadline still applies */
static void test_write_deadline_inside(void)
{
    struct seen s = { .mode = M_FLOOD };
    int sv[2];

    unit_begin("write deadline for a reply queued inside on_input");
    pair(sv);
    s.c = conn_new(sv[0], &handlers_nodrain, &s, 64);
    conn_set_write_timeout(s.c, 150);
    unit_assert_inteq(write(sv[1], "RETR 1\r\n", 8), 8);
    run_until(&s.closes, 3000);
    unit_assert_inteq(s.closes, 1);
    unit_assert_inteq(s.why, CONN_CLOSE_TIMEOUT);
    close(sv[1]);
    unit_end();
}

/* test_pause - no input is offered while paused; resuming offers what
 * was buffered without new input */
static void test_pause(void)
{
    struct seen s = { .mode = M_PAUSE };
    int sv[2];

    unit_begin("pause and resume");
    pair(sv);
    s.c = conn_new(sv[0], &handlers, &s, 64);
    unit_assert_inteq(write(sv[1], "one\r\ntwo\r\n", 10), 10);
    wait_trace(&s, "one");
    unit_assert_streq(s.trace, "one");
    conn_pause_input(s.c, false);
    wait_trace(&s, "one two");
    unit_assert_streq(s.trace, "one two");
    conn_close(s.c, CONN_CLOSE_LOCAL);
    close(sv[1]);
    unit_end();
}

/* test_take - hand-over inside on_input: no on_close, the fd is usable
 * (blocking again), the pipelined rest is in hand; conn_unread puts it
 * back in a new conn */
static void test_take(void)
{
    struct seen s = { .mode = M_TAKE, .taken_fd = -1 };
    struct seen t = { .mode = M_ALL_LINES };
    int sv[2];
    char rb[16];

    unit_begin("conn_take_fd and conn_unread");
    pair(sv);
    s.c = conn_new(sv[0], &handlers, &s, 64);
    unit_assert_inteq(write(sv[1], "USER a\r\nPASS x\r\nSTAT\r\nLI", 24), 24);
    wait_trace(&s, "USER a PASS x");
    unit_assert_streq(s.trace, "USER a PASS x");
    unit_assert_inteq(s.closes, 0);
    unit_assert_inteq(s.taken_fd, sv[0]);
    unit_assert_streq(s.leftover, "STAT\r\nLI");
    unit_assert(!(fcntl(s.taken_fd, F_GETFL) & O_NONBLOCK));
    unit_assert_inteq(write(s.taken_fd, "hi", 2), 2);
    unit_assert_inteq(recv(sv[1], rb, sizeof(rb), MSG_DONTWAIT), 2);
    /* the receiving side: a new conn with the leftover put back */
    t.c = conn_new(s.taken_fd, &handlers, &t, 64);
    conn_unread(t.c, s.leftover, strlen(s.leftover));
    wait_trace(&t, "STAT");
    unit_assert_streq(t.trace, "STAT");
    unit_assert_inteq(write(sv[1], "ST\r\n", 4), 4);
    wait_trace(&t, "STAT LIST");
    unit_assert_streq(t.trace, "STAT LIST");
    /* unread in front of buffered input */
    conn_unread(t.c, "X\r\n", 3);
    wait_trace(&t, "STAT LIST X");
    unit_assert_streq(t.trace, "STAT LIST X");
    conn_close(t.c, CONN_CLOSE_LOCAL);
    unit_assert_inteq(t.closes, 1);
    close(sv[1]);
    unit_end();
}

/* test_take_pending - output not yet flushed: conn_take_fd refuses */
static void test_take_pending(void)
{
    struct seen s = { .mode = M_NOTHING };
    int sv[2];

    unit_begin("conn_take_fd with output queued: -1");
    pair(sv);
    s.c = conn_new(sv[0], &handlers, &s, 64);
    conn_puts(s.c, "+OK\r\n");
    unit_assert_inteq(conn_take_fd(s.c), -1);
    for (int i = 0; i < 100 && conn_output_pending(s.c) > 0; i++)
	event_loop_once(20);
    unit_assert_inteq(conn_output_pending(s.c), 0);
    unit_assert_inteq(conn_take_fd(s.c), sv[0]);
    unit_assert_inteq(s.closes, 0);
    close(sv[0]);
    close(sv[1]);
    unit_end();
}

/* test_close_inside - conn_close inside on_input: on_close runs once,
 * after the callback; later pipelined lines are not offered */
static void test_close_inside(void)
{
    struct seen s = { .mode = M_CLOSE };
    int sv[2];
    char rb[64];

    unit_begin("conn_close inside on_input");
    pair(sv);
    s.c = conn_new(sv[0], &handlers, &s, 64);
    unit_assert_inteq(write(sv[1], "bye\r\nmore\r\n", 11), 11);
    wait_trace(&s, "bye");
    unit_assert_streq(s.trace, "bye");
    unit_assert_inteq(s.closes, 1);
    unit_assert_inteq(s.why, CONN_CLOSE_LOCAL);
    unit_assert_inteq(recv(sv[1], rb, sizeof(rb), MSG_DONTWAIT), 0);	/* closed, nothing sent */
    close(sv[1]);
    unit_end();
}

/* test_eof_pipelined - a client that sends commands and shuts down its
 * side gets every answer before the close (reason EOF or LOCAL) */
static void test_eof_pipelined(void)
{
    struct seen s = { .mode = M_ECHO_QUIT };
    struct seen t = { .mode = M_ECHO_QUIT };
    int sv[2];
    char rb[256];
    ssize_t n, got = 0;

    unit_begin("half-closed pipelined client gets its answers");
    pair(sv);
    s.c = conn_new(sv[0], &handlers, &s, 64);
    unit_assert_inteq(write(sv[1], "NOOP\r\nQUIT\r\nIGNORED\r\n", 21), 21);
    shutdown(sv[1], SHUT_WR);
    run_until(&s.closes, 1000);
    unit_assert_streq(s.trace, "NOOP QUIT");
    unit_assert_inteq(s.why, CONN_CLOSE_LOCAL);
    while ((n = read(sv[1], rb + got, sizeof(rb) - 1 - (size_t) got)) > 0)
	got += n;
    rb[got] = 0;
    unit_assert_streq(rb, "+OK NOOP\r\n+OK QUIT\r\n");
    close(sv[1]);

    pair(sv);
    t.c = conn_new(sv[0], &handlers, &t, 64);
    unit_assert_inteq(write(sv[1], "NOOP\r\nnoend", 11), 11);
    shutdown(sv[1], SHUT_WR);
    run_until(&t.closes, 1000);
    unit_assert_streq(t.trace, "NOOP");
    unit_assert_inteq(t.why, CONN_CLOSE_EOF);
    got = read(sv[1], rb, sizeof(rb) - 1);
    unit_assert_inteq(got, 10);
    close(sv[1]);
    unit_end();
}

/* test_peer_gone - the peer closes: on_close with EOF */
static void test_peer_gone(void)
{
    struct seen s = { .mode = M_ONE_LINE };
    int sv[2];

    unit_begin("peer closes: CONN_CLOSE_EOF");
    pair(sv);
    s.c = conn_new(sv[0], &handlers, &s, 64);
    close(sv[1]);
    run_until(&s.closes, 1000);
    unit_assert_inteq(s.closes, 1);
    unit_assert_inteq(s.why, CONN_CLOSE_EOF);
    unit_end();
}

/* close_from_drain - on_drain that closes */
static void drain_close(struct conn *c, void *ctx)
{
    struct seen *s = ctx;

    s->drains++;
    conn_close(c, CONN_CLOSE_LOCAL);
    unit_assert_inteq(s->closes, 0);
}

/* test_close_in_drain - conn_close inside on_drain */
static void test_close_in_drain(void)
{
    static const struct conn_handlers h = { on_input, drain_close, on_close };
    struct seen s = { .mode = M_NOTHING };
    int sv[2];
    char rb[16];

    unit_begin("conn_close inside on_drain");
    pair(sv);
    s.c = conn_new(sv[0], &h, &s, 64);
    conn_puts(s.c, "bye\r\n");
    run_until(&s.closes, 1000);
    unit_assert_inteq(s.drains, 1);
    unit_assert_inteq(s.closes, 1);
    unit_assert_inteq(recv(sv[1], rb, sizeof(rb), MSG_DONTWAIT), 5);
    close(sv[1]);
    unit_end();
}

/* test_close_after_flush - everything queued goes out, then the close */
static void test_close_after_flush(void)
{
    struct seen s = { .mode = M_NOTHING };
    int sv[2];
    static char buf[512 * 1024];
    ssize_t n, got = 0;
    char rb[65536];
    long long end;

    unit_begin("conn_close_after_flush delivers a big reply, then closes");
    pair(sv);
    s.c = conn_new(sv[0], &handlers_nodrain, &s, 64);
    conn_write(s.c, buf, sizeof(buf));
    conn_close_after_flush(s.c);
    unit_assert_inteq(s.closes, 0);
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    end = now_ms() + 5000;
    while (now_ms() < end) {
	event_loop_once(5);
	while ((n = read(sv[1], rb, sizeof(rb))) > 0)
	    got += n;
	if (n == 0)
	    break;
    }
    unit_assert_inteq(got, sizeof(buf));
    unit_assert_inteq(s.closes, 1);
    unit_assert_inteq(s.why, CONN_CLOSE_LOCAL);
    close(sv[1]);
    unit_end();
}

/* test_input_max - reading stops at input_max; raising it lets more in */
static void test_input_max(void)
{
    struct seen s = { .mode = M_NOTHING };
    int sv[2];
    static char buf[100];

    unit_begin("input is bounded by input_max; conn_set_input_max raises it");
    pair(sv);
    s.c = conn_new(sv[0], &handlers, &s, 32);
    unit_assert_inteq(write(sv[1], buf, sizeof(buf)), sizeof(buf));
    for (int i = 0; i < 100 && conn_input_avail(s.c) < 32; i++)
	event_loop_once(20);
    spin(30);
    unit_assert_inteq(conn_input_avail(s.c), 32);
    conn_set_input_max(s.c, 200);
    for (int i = 0; i < 100 && conn_input_avail(s.c) < 100; i++)
	event_loop_once(20);
    unit_assert_inteq(conn_input_avail(s.c), 100);
    conn_set_input_max(s.c, 10);	/* never below what is buffered */
    conn_input_consume(s.c, 100);
    unit_assert_inteq(conn_input_avail(s.c), 0);
    conn_close(s.c, CONN_CLOSE_LOCAL);
    close(sv[1]);
    unit_end();
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    test_pipelined();
    test_toolong();
    test_bytes();
    test_slow_reader();
    test_write_space();
    test_producer();
    test_idle();
    test_write_deadline();
    test_write_deadline_inside();
    test_pause();
    test_take();
    test_take_pending();
    test_close_inside();
    test_eof_pipelined();
    test_peer_gone();
    test_close_in_drain();
    test_close_after_flush();
    test_input_max();
    return unit_done();
}
