/* test-server_watch.c - unit tests for server_watch_fd and
 * server_unwatch_fd (server.c): a MULTI or TRIGGER daemon's own
 * descriptors in the skeleton's event loop. */

#include <unistd.h>

/* base */
#include "event.h"
#include "unit.h"

/* mail */
#include "server.h"
#include "server_internal.h"

static int calls;
static int last_fd;

/* on_readable - note the call, and read the byte away */
static void on_readable(int fd, void *ctx)
{
    char c;

    calls += *(int *) ctx;
    last_fd = fd;
    (void) !read(fd, &c, 1);
}

/* watch_in_single - SINGLE has no event loop: a bug */
static void watch_in_single(void *arg)
{
    static const struct server_spec single = {.kind = SERVER_SINGLE, .name = "t"};

    (void) arg;
    srv_spec = &single;
    server_watch_fd(0, on_readable, NULL);
}

/* watch_too_many - more than SERVER_WATCH_MAX descriptors: a bug */
static void watch_too_many(void *arg)
{
    static int one = 1;

    (void) arg;
    for (int fd = 100; fd < 100 + SERVER_WATCH_MAX + 1; fd++)
	server_watch_fd(fd, on_readable, &one);
}

int main(void)
{
    static const struct server_spec multi = {.kind = SERVER_MULTI, .name = "t"};
    int p[2], one = 1, ten = 10;

    srv_spec = &multi;
    if (pipe(p) < 0)
	return 1;

    unit_begin("a watched descriptor's callback runs when it is readable");
    server_watch_fd(p[0], on_readable, &one);
    (void) !write(p[1], "x", 1);
    (void) event_loop_once(1000);
    unit_assert_inteq(calls, 1);
    unit_assert_inteq(last_fd, p[0]);
    unit_end();

    unit_begin("watching again replaces the callback's context");
    server_watch_fd(p[0], on_readable, &ten);
    (void) !write(p[1], "x", 1);
    (void) event_loop_once(1000);
    unit_assert_inteq(calls, 11);
    unit_end();

    unit_begin("an unwatched descriptor is left alone");
    server_unwatch_fd(p[0]);
    server_unwatch_fd(p[0]);			/* twice: nothing happens */
    (void) !write(p[1], "x", 1);
    (void) event_loop_once(100);
    unit_assert_inteq(calls, 11);
    unit_end();

    unit_begin("misuse panics");
    unit_assert(unit_expect_exit(watch_in_single, NULL, UNIT_EXIT_SIGNAL, 6,
				 "only MULTI and TRIGGER"));
    unit_assert(unit_expect_exit(watch_too_many, NULL, UNIT_EXIT_SIGNAL, 6,
				 "more than 64 descriptors"));
    unit_end();
    return unit_done();
}
