/* test-event.c - unit tests for event.c (epoll loop and timers). */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

/* make_pipe - a pipe or fatal */
static void make_pipe(int p[2])
{
    if (pipe(p) < 0)
	msg_fatal("pipe: %m");
}

/* A log of callback names, in call order. */
static char trace[256];

/* trace_add - append a tag to the trace */
static void trace_add(const char *tag)
{
    size_t len = strlen(trace);

    if (len + strlen(tag) + 2 >= sizeof(trace))
	msg_panic("trace overflow");
    if (len)
	trace[len++] = ' ';
    memcpy(trace + len, tag, strlen(tag) + 1);
}

/* read_cb - consume one byte, log the context tag */
static void read_cb(int fd, void *ctx)
{
    char c;
    ssize_t n = read(fd, &c, 1);

    trace_add(n == 1 ? (const char *) ctx : "eof");
}

/* write_cb - log, and stop write interest */
static void write_cb(int fd, void *ctx)
{
    trace_add(ctx);
    event_remove_write(fd);
}

/* test_fd_ready - read and write readiness, hangup, growth of the table */
static void test_fd_ready(void)
{
    int p[2];
    long long t0;

    unit_begin("fd readiness: read, write, hangup, timeout");
    make_pipe(p);
    trace[0] = 0;
    event_add_read(p[0], read_cb, "r");
    t0 = now_ms();
    unit_assert_inteq(event_loop_once(50), 0);
    unit_assert(now_ms() - t0 >= 45);
    unit_assert_streq(trace, "");
    unit_assert_inteq(write(p[1], "ab", 2), 2);
    unit_assert_inteq(event_loop_once(1000), 1);
    unit_assert_inteq(event_loop_once(1000), 1);
    unit_assert_streq(trace, "r r");
    event_add_write(p[1], write_cb, "w");
    unit_assert_inteq(event_loop_once(1000), 1);
    unit_assert_inteq(event_loop_once(0), 0);	/* write_cb removed itself */
    unit_assert_streq(trace, "r r w");
    close(p[1]);
    unit_assert_inteq(event_loop_once(1000), 1);	/* hangup wakes the reader */
    unit_assert_streq(trace, "r r w eof");
    event_remove(p[0]);
    close(p[0]);
    unit_assert_inteq(event_loop_once(0), 0);
    unit_end();

    unit_begin("high fd numbers grow the table");
    make_pipe(p);
    trace[0] = 0;
    unit_assert_inteq(dup2(p[0], 300), 300);
    event_add_read(300, read_cb, "high");
    unit_assert_inteq(write(p[1], "x", 1), 1);
    unit_assert_inteq(event_loop_once(1000), 1);
    unit_assert_streq(trace, "high");
    event_remove(300);
    close(300);
    close(p[0]);
    close(p[1]);
    unit_end();
}

/* timer_cb - log the context tag */
static void timer_cb(void *ctx)
{
    trace_add(ctx);
}

/* run_until - run iterations until the trace has want entries or 2 s */
static void run_until(size_t want_words)
{
    long long end = now_ms() + 2000;

    for (;;) {
	size_t words = trace[0] ? 1 : 0;

	for (const char *p = trace; *p; p++)
	    words += *p == ' ';
	if (words >= want_words || now_ms() > end)
	    return;
	event_loop_once(100);
    }
}

/* test_timers - order, ties, cancel */
static void test_timers(void)
{
    event_timer_id a, b, c;
    long long t0;

    unit_begin("timers fire in due order; ties in insertion order");
    trace[0] = 0;
    t0 = now_ms();
    event_timer_add(60, timer_cb, "t60");
    event_timer_add(20, timer_cb, "t20a");
    event_timer_add(40, timer_cb, "t40");
    event_timer_add(20, timer_cb, "t20b");
    event_timer_add(0, timer_cb, "t0");
    run_until(5);
    unit_assert_streq(trace, "t0 t20a t20b t40 t60");
    unit_assert(now_ms() - t0 >= 60);
    unit_assert(now_ms() - t0 < 1000);
    unit_end();

    unit_begin("timer cancel");
    trace[0] = 0;
    a = event_timer_add(10, timer_cb, "a");
    b = event_timer_add(20, timer_cb, "b");
    c = event_timer_add(30, timer_cb, "c");
    unit_assert(a != 0 && a != b && b != c);
    unit_assert(event_timer_cancel(b));
    unit_assert(!event_timer_cancel(b));
    run_until(2);
    unit_assert_streq(trace, "a c");
    unit_assert(!event_timer_cancel(a));	/* already fired */
    unit_assert(!event_timer_cancel(c));
    unit_assert(!event_timer_cancel(0));
    unit_end();

    unit_begin("loop_once waits no longer than the next timer");
    trace[0] = 0;
    t0 = now_ms();
    event_timer_add(30, timer_cb, "x");
    unit_assert_inteq(event_loop_once(-1), 1);
    unit_assert(now_ms() - t0 >= 30 && now_ms() - t0 < 500);
    unit_assert_streq(trace, "x");
    unit_end();
}

/* Callbacks that change registrations during dispatch. */
static int pipe_a[2], pipe_b[2];
static event_timer_id victim_timer;

/* remove_both_cb - whichever of two ready fds runs first removes both */
static void remove_both_cb(int fd, void *ctx)
{
    (void) fd;
    trace_add(ctx);
    event_remove(pipe_a[0]);
    event_remove(pipe_b[0]);
}

/* close_reuse_cb - remove and close the other fd, then register a fresh
 * pipe (empty, so not ready) under the same number */
static int reuse_writer = -1;

static void close_reuse_cb(int fd, void *ctx)
{
    int other = fd == pipe_a[0] ? pipe_b[0] : pipe_a[0];
    int p[2];

    trace_add(ctx);
    event_remove(fd);
    event_remove(other);
    make_pipe(p);				/* before the close: p[0] != other */
    close(other);
    if (dup2(p[0], other) != other)
	msg_fatal("dup2: %m");
    close(p[0]);
    reuse_writer = p[1];			/* keep open: no hangup */
    fcntl(other, F_SETFL, O_NONBLOCK);	/* a wrong call must not hang */
    event_add_read(other, read_cb, "stale");
}

/* timer_cancel_cb - cancel another due timer, add a zero-delay one */
static void timer_cancel_cb(void *ctx)
{
    trace_add(ctx);
    unit_assert(event_timer_cancel(victim_timer));
    event_timer_add(0, timer_cb, "new");
}

/* stop_cb - stop the loop */
static void stop_cb(void *ctx)
{
    trace_add(ctx);
    event_loop_stop();
}

/* test_unregister_in_callback - dispatch survives changes */
static void test_unregister_in_callback(void)
{
    unit_begin("a callback removes another ready fd");
    make_pipe(pipe_a);
    make_pipe(pipe_b);
    trace[0] = 0;
    event_add_read(pipe_a[0], remove_both_cb, "A");
    event_add_read(pipe_b[0], remove_both_cb, "B");
    unit_assert_inteq(write(pipe_a[1], "x", 1), 1);
    unit_assert_inteq(write(pipe_b[1], "x", 1), 1);
    unit_assert_inteq(event_loop_once(1000), 1);
    unit_assert(strcmp(trace, "A") == 0 || strcmp(trace, "B") == 0);
    unit_assert_inteq(event_loop_once(0), 0);
    close(pipe_a[0]);
    close(pipe_b[0]);
    close(pipe_a[1]);
    close(pipe_b[1]);
    unit_end();

    unit_begin("a callback closes another fd and its number is reused");
    make_pipe(pipe_a);
    make_pipe(pipe_b);
    trace[0] = 0;
    event_add_read(pipe_a[0], close_reuse_cb, "A");
    event_add_read(pipe_b[0], close_reuse_cb, "B");
    unit_assert_inteq(write(pipe_a[1], "x", 1), 1);
    unit_assert_inteq(write(pipe_b[1], "x", 1), 1);
    /* the reused fd's stale readiness must not call the new callback */
    unit_assert_inteq(event_loop_once(1000), 1);
    unit_assert(strcmp(trace, "A") == 0 || strcmp(trace, "B") == 0);
    unit_assert_inteq(event_loop_once(0), 0);
    unit_assert(reuse_writer >= 0);
    unit_assert_inteq(write(reuse_writer, "y", 1), 1);
    unit_assert_inteq(event_loop_once(1000), 1);	/* now it is ready */
    unit_assert(strcmp(trace, "A stale") == 0 || strcmp(trace, "B stale") == 0);
    event_remove(pipe_a[0]);
    event_remove(pipe_b[0]);
    close(pipe_a[0]);
    close(pipe_b[0]);
    close(pipe_a[1]);
    close(pipe_b[1]);
    close(reuse_writer);
    unit_end();

    unit_begin("a timer cancels another due timer; new timers wait");
    trace[0] = 0;
    event_timer_add(0, timer_cancel_cb, "first");
    victim_timer = event_timer_add(0, timer_cb, "victim");
    usleep(2000);
    unit_assert_inteq(event_loop_once(0), 1);
    unit_assert_streq(trace, "first");
    unit_assert_inteq(event_loop_once(1000), 1);
    unit_assert_streq(trace, "first new");
    unit_end();

    unit_begin("event_loop_run until event_loop_stop");
    trace[0] = 0;
    event_timer_add(10, timer_cb, "one");
    event_timer_add(20, stop_cb, "stop");
    event_timer_add(5000, timer_cb, "never");
    event_loop_run();
    unit_assert_streq(trace, "one stop");
    unit_end();
}

/* test_close_registered - a registered fd closed without its removal
 * (a bug) is never reported again, and its number can be registered
 * anew (epoll forgets the closed file; the table's stale entry must not
 * stop the new registration) */
static void test_close_registered(void)
{
    int p[2], q[2];

    unit_begin("a registered fd closed without removal: silent; its number reusable");
    trace[0] = 0;
    make_pipe(p);
    event_add_read(p[0], read_cb, "old");
    unit_assert_inteq(write(p[1], "x", 1), 1);
    close(p[0]);
    unit_assert_inteq(event_loop_once(50), 0);
    make_pipe(q);
    if (q[0] != p[0] && dup2(q[0], p[0]) != p[0])
	msg_fatal("dup2: %m");
    if (q[0] != p[0])
	close(q[0]);
    event_add_read(p[0], read_cb, "new");
    unit_assert_inteq(write(q[1], "y", 1), 1);
    unit_assert_inteq(event_loop_once(1000), 1);
    unit_assert_streq(trace, "new");
    event_remove(p[0]);
    close(p[0]);
    close(p[1]);
    close(q[1]);
    unit_end();
}

/* forked_child - a child forked without event_reset_after_fork: its
 * changes must not reach the parent's interest set */
static void forked_child(void *arg)
{
    int *p = arg;

    event_remove(p[0]);
    _exit(0);
}

/* test_fork_private - the epoll instance is not shared with a child */
static void test_fork_private(void)
{
    int p[2];

    unit_begin("a child's event_remove does not touch the parent's registration");
    trace[0] = 0;
    make_pipe(p);
    event_add_read(p[0], read_cb, "parent");
    unit_assert(unit_expect_exit(forked_child, p, UNIT_EXIT_STATUS, 0, NULL));
    unit_assert_inteq(write(p[1], "x", 1), 1);
    unit_assert_inteq(event_loop_once(1000), 1);
    unit_assert_streq(trace, "parent");
    event_remove(p[0]);
    close(p[0]);
    close(p[1]);
    unit_end();
}

/* test_regular_file - epoll refuses regular files: they are always
 * ready, as poll(2) has them */
static void test_regular_file(void)
{
    char name[] = "event-file-XXXXXX";
    int fd = mkstemp(name);

    unit_begin("a regular file is always readable");
    unit_assert(fd >= 0);
    (void) unlink(name);
    trace[0] = 0;
    event_add_read(fd, read_cb, "file");
    unit_assert_inteq(event_loop_once(1000), 1);
    unit_assert_streq(trace, "eof");
    event_remove(fd);
    unit_assert_inteq(event_loop_once(0), 0);
    close(fd);
    unit_end();
}

/* reset_timer_cb - log the context tag */
static void reset_timer_cb(void *ctx)
{
    trace_add(ctx);
}

/* reset_in_callback - what a forked child does inside a callback */
static void reset_in_callback(int fd, void *ctx)
{
    int *p = ctx;
    char c;

    (void) read(fd, &c, 1);
    event_reset_after_fork();
    trace_add("reset");
    /* the old registrations are gone, and a loop may run from here */
    event_add_read(p[0], read_cb, "again");
    if (write(p[1], "y", 1) != 1)
	msg_fatal("write: %m");
    unit_assert(event_loop_once(1000) == 1);
}

/* test_reset_after_fork - nothing registered survives; a loop runs
 * again even from inside a callback */
static void test_reset_after_fork(void)
{
    int p[2], q[2];

    unit_begin("event_reset_after_fork forgets fds and timers");
    trace[0] = 0;
    make_pipe(q);			/* lower fds: q's callback runs first */
    make_pipe(p);
    event_add_read(p[0], read_cb, "p");
    event_add_read(q[0], reset_in_callback, q);
    (void) event_timer_add(0, reset_timer_cb, "timer");
    if (write(q[1], "x", 1) != 1 || write(p[1], "z", 1) != 1)
	msg_fatal("write: %m");
    (void) event_loop_once(1000);
    /* the reset dropped p's registration and the timer */
    unit_assert_streq(trace, "reset again");
    unit_assert(event_loop_once(50) == 0);
    event_remove(q[0]);
    close(p[0]);
    close(p[1]);
    close(q[0]);
    close(q[1]);
    unit_end();
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    test_fd_ready();
    test_timers();
    test_unregister_in_callback();
    test_reset_after_fork();
    test_close_registered();
    test_fork_private();
    test_regular_file();
    return unit_done();
}
