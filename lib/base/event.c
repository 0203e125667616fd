/* event.c - a small poll(2)-based event loop with one-shot timers
 * (see event.h).
 *
 * Registrations live in a table indexed by fd. Each registration gets a
 * generation number that is never reused; an iteration remembers the
 * generations it polled for and calls a callback only if its generation
 * is still current. So a callback can remove or replace any registration
 * (and close the fd, and let a new fd with the same number be
 * registered) without a stale callback running later in that iteration.
 *
 * Timers are kept in an array sorted latest-first by (due time, id), so
 * the next timer is at the end: popping is O(1), adding is a binary
 * search and a memmove, cancelling a linear search. That is plenty for
 * the few thousand timers of a busy server. */

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "event.h"
#include "mem.h"
#include "msg.h"

struct event_dir {
    event_fd_fn fn;			/* NULL: no interest */
    void *ctx;
    uint64_t gen;			/* 0: no interest */
};

struct event_fd {
    struct event_dir rd;
    struct event_dir wr;
};

struct event_timer {
    long long due;			/* monotonic ms */
    event_timer_id id;
    event_timer_fn fn;
    void *ctx;
};

/* what one iteration polled for */
struct event_poll_gen {
    uint64_t rd, wr;
};

static struct event_fd *event_fds;	/* indexed by fd */
static int event_fds_cap;
static uint64_t event_gen_next = 1;

static struct event_timer *event_timers;	/* sorted latest first */
static size_t event_timers_len, event_timers_cap;
static event_timer_id event_timer_next = 1;

static struct pollfd *event_pfd;
static struct event_poll_gen *event_pgen;
static size_t event_pfd_cap;

static volatile sig_atomic_t event_stop_flag;
static bool event_dispatching;

/* event_now - monotonic clock in milliseconds */
static long long event_now(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
	msg_fatal("clock_gettime(CLOCK_MONOTONIC): %m");
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* event_slot - the table entry for fd, growing the table */
static struct event_fd *event_slot(int fd)
{
    if (fd < 0)
	msg_panic("event: bad file descriptor %d", fd);
    if (fd >= event_fds_cap) {
	int cap = event_fds_cap ? event_fds_cap : 64;

	while (cap <= fd) {
	    if (cap > INT_MAX / 2)
		msg_panic("event: file descriptor %d too large", fd);
	    cap *= 2;
	}
	event_fds = mem_realloc(event_fds, mem_size_mul((size_t) cap, sizeof(*event_fds)));
	memset(event_fds + event_fds_cap, 0, (size_t) (cap - event_fds_cap) * sizeof(*event_fds));
	event_fds_cap = cap;
    }
    return event_fds + fd;
}

/* event_dir_set - register one direction */
static void event_dir_set(struct event_dir *dir, event_fd_fn fn, void *ctx)
{
    if (fn == NULL)
	msg_panic("event: null callback");
    dir->fn = fn;
    dir->ctx = ctx;
    dir->gen = event_gen_next++;
}

/* event_add_read - call fn(fd, ctx) while fd is readable */
void event_add_read(int fd, event_fd_fn fn, void *ctx)
{
    event_dir_set(&event_slot(fd)->rd, fn, ctx);
}

/* event_add_write - call fn(fd, ctx) while fd is writable */
void event_add_write(int fd, event_fd_fn fn, void *ctx)
{
    event_dir_set(&event_slot(fd)->wr, fn, ctx);
}

/* event_remove_read - drop read interest */
void event_remove_read(int fd)
{
    if (fd >= 0 && fd < event_fds_cap)
	memset(&event_fds[fd].rd, 0, sizeof(event_fds[fd].rd));
}

/* event_remove_write - drop write interest */
void event_remove_write(int fd)
{
    if (fd >= 0 && fd < event_fds_cap)
	memset(&event_fds[fd].wr, 0, sizeof(event_fds[fd].wr));
}

/* event_remove - drop read and write interest */
void event_remove(int fd)
{
    event_remove_read(fd);
    event_remove_write(fd);
}

/* event_timer_later - true if a runs after b */
static bool event_timer_later(const struct event_timer *a, const struct event_timer *b)
{
    return a->due > b->due || (a->due == b->due && a->id > b->id);
}

/* event_timer_add - one-shot timer; returns its id */
event_timer_id event_timer_add(int delay_ms, event_timer_fn fn, void *ctx)
{
    struct event_timer t;
    size_t lo = 0, hi = event_timers_len;

    if (fn == NULL)
	msg_panic("event_timer_add: null callback");
    t.due = event_now() + (delay_ms > 0 ? delay_ms : 0);
    t.id = event_timer_next++;
    t.fn = fn;
    t.ctx = ctx;
    /* first position whose timer runs before t; all before it run after */
    while (lo < hi) {
	size_t mid = lo + (hi - lo) / 2;

	if (event_timer_later(&event_timers[mid], &t))
	    lo = mid + 1;
	else
	    hi = mid;
    }
    if (event_timers_len == event_timers_cap) {
	event_timers_cap = event_timers_cap ? event_timers_cap * 2 : 16;
	event_timers = mem_realloc(event_timers, mem_size_mul(event_timers_cap, sizeof(*event_timers)));
    }
    memmove(event_timers + lo + 1, event_timers + lo,
	    (event_timers_len - lo) * sizeof(*event_timers));
    event_timers[lo] = t;
    event_timers_len++;
    return t.id;
}

/* event_timer_cancel - remove a pending timer; false if it is not pending */
bool event_timer_cancel(event_timer_id id)
{
    for (size_t i = 0; i < event_timers_len; i++) {
	if (event_timers[i].id == id) {
	    memmove(event_timers + i, event_timers + i + 1,
		    (event_timers_len - i - 1) * sizeof(*event_timers));
	    event_timers_len--;
	    return true;
	}
    }
    return false;
}

/* event_build_pollset - one pollfd per fd with interest; returns count */
static size_t event_build_pollset(void)
{
    size_t n = 0;

    for (int fd = 0; fd < event_fds_cap; fd++) {
	const struct event_fd *e = event_fds + fd;

	if (e->rd.fn == NULL && e->wr.fn == NULL)
	    continue;
	if (n == event_pfd_cap) {
	    event_pfd_cap = event_pfd_cap ? event_pfd_cap * 2 : 64;
	    event_pfd = mem_realloc(event_pfd, mem_size_mul(event_pfd_cap, sizeof(*event_pfd)));
	    event_pgen = mem_realloc(event_pgen, mem_size_mul(event_pfd_cap, sizeof(*event_pgen)));
	}
	event_pfd[n].fd = fd;
	event_pfd[n].events = (short) ((e->rd.fn ? POLLIN : 0) | (e->wr.fn ? POLLOUT : 0));
	event_pfd[n].revents = 0;
	event_pgen[n].rd = e->rd.gen;
	event_pgen[n].wr = e->wr.gen;
	n++;
    }
    return n;
}

/* event_dispatch_fd - run the callbacks of one ready pollfd that are
 * still the ones polled for; returns how many ran */
static int event_dispatch_fd(const struct pollfd *p, const struct event_poll_gen *g)
{
    int fd = p->fd, ran = 0;
    struct event_dir dir;

    if (p->revents & POLLNVAL) {
	if (fd < event_fds_cap && ((g->rd && event_fds[fd].rd.gen == g->rd)
				   || (g->wr && event_fds[fd].wr.gen == g->wr)))
	    msg_panic("event: fd %d was closed while registered", fd);
	return 0;
    }
    if ((p->revents & (POLLIN | POLLHUP | POLLERR)) && g->rd
	&& fd < event_fds_cap && event_fds[fd].rd.gen == g->rd) {
	dir = event_fds[fd].rd;			/* copy: the table may move */
	dir.fn(fd, dir.ctx);
	ran++;
    }
    if ((p->revents & (POLLOUT | POLLHUP | POLLERR)) && g->wr
	&& fd < event_fds_cap && event_fds[fd].wr.gen == g->wr) {
	dir = event_fds[fd].wr;
	dir.fn(fd, dir.ctx);
	ran++;
    }
    return ran;
}

/* event_loop_once - wait at most timeout_ms, then dispatch */
int event_loop_once(int timeout_ms)
{
    long long now;
    event_timer_id last_id;
    size_t npfd;
    int wait_ms = timeout_ms < 0 ? -1 : timeout_ms;
    int n, ran = 0;

    if (event_dispatching)
	msg_panic("event_loop_once: called from a callback");
    if (event_timers_len > 0) {
	long long left = event_timers[event_timers_len - 1].due - event_now();

	if (left < 0)
	    left = 0;
	if (wait_ms < 0 || left < wait_ms)
	    wait_ms = left > INT_MAX ? INT_MAX : (int) left;
    }
    npfd = event_build_pollset();
    n = poll(event_pfd, (nfds_t) npfd, wait_ms);
    if (n < 0) {
	if (errno == EINTR)
	    return 0;
	msg_fatal("event: poll: %m");
    }
    now = event_now();
    last_id = event_timer_next - 1;
    event_dispatching = true;
    for (size_t i = 0; i < npfd && n > 0; i++) {
	if (event_pfd[i].revents == 0)
	    continue;
	n--;
	ran += event_dispatch_fd(event_pfd + i, event_pgen + i);
    }

    /*
     * Timers added during this dispatch have due >= now, and a larger id
     * than any older timer due at the same time, so every runnable older
     * timer sits behind them in the array: stop at the first that is not
     * due or is new.
     */
    while (event_timers_len > 0) {
	struct event_timer t = event_timers[event_timers_len - 1];

	if (t.due > now || t.id > last_id)
	    break;
	event_timers_len--;
	t.fn(t.ctx);
	ran++;
    }
    event_dispatching = false;
    return ran;
}

/* event_loop_run - iterate until event_loop_stop() */
void event_loop_run(void)
{
    while (!event_stop_flag)
	(void) event_loop_once(-1);
    event_stop_flag = 0;
}

/* event_loop_stop - make event_loop_run() return */
void event_loop_stop(void)
{
    event_stop_flag = 1;
}

/* event_reset_after_fork - a forked child starts with an empty loop */
void event_reset_after_fork(void)
{
    if (event_fds_cap > 0)
	memset(event_fds, 0, (size_t) event_fds_cap * sizeof(*event_fds));
    event_timers_len = 0;
    event_stop_flag = 0;
    event_dispatching = false;
}
