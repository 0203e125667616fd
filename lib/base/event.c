/* event.c - a small epoll(7)-based event loop with one-shot timers
 * (see event.h).
 *
 * Registrations live in a table indexed by fd. Each registration gets a
 * generation number that is never reused; an iteration remembers the
 * generations that were registered when it waited and calls a callback
 * only if its generation is still current. So a callback can remove or
 * replace any registration (and close the fd, and let a new fd with the
 * same number be registered) without a stale callback running later in
 * that iteration.
 *
 * The kernel's interest set follows the table at once: every add and
 * remove is an epoll_ctl (an add always re-registers, so a new file
 * under an old number is picked up). So an iteration costs O(ready fds),
 * not O(registered fds): a process that holds 10,000 idle clients
 * (smtp-front) does not scan them per event, as poll(2) did. A removal
 * must happen before the close (event.h says so): the kernel's entry
 * belongs to the open file, which may live on in another process after
 * a hand-over. An event for an fd that has no registration (a close
 * before the removal) drops the kernel's entry; if that fails, the
 * interest set is rebuilt. A regular file, which epoll refuses, is
 * "always ready" (as poll(2) says). A child forked without
 * event_reset_after_fork gets its own epoll instance at its first use
 * (the parent's is shared across fork). Which process made the instance
 * is known without a getpid(2) per call: a pthread_atfork child handler
 * marks the instance as inherited (a vfork child must not use the loop
 * before it execs).
 *
 * Timers are kept in an array sorted latest-first by (due time, id), so
 * the next timer is at the end: popping is O(1), adding is a binary
 * search and a memmove, cancelling a linear search. That is plenty for
 * the few thousand timers of a busy server. */

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "event.h"
#include "mem.h"
#include "msg.h"

#define EVENT_WAIT_MAX	1024		/* events taken per epoll_wait */

struct event_dir {
    event_fd_fn fn;			/* NULL: no interest */
    void *ctx;
    uint64_t gen;			/* 0: no interest */
};

struct event_fd {
    struct event_dir rd;
    struct event_dir wr;
    uint32_t kernel;			/* EPOLLIN/EPOLLOUT registered with the
					 * kernel (or EVENT_ALWAYS) */
};

#define EVENT_ALWAYS	(1u << 31)	/* a regular file: always ready */

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

static int event_epfd = -1;		/* the epoll instance */
static volatile sig_atomic_t event_epfd_inherited; /* set in a forked child */
static bool event_atfork_done;
static long event_always;		/* fds with EVENT_ALWAYS */
static unsigned event_epoch;		/* event_reset_after_fork count */
static struct epoll_event event_ready[EVENT_WAIT_MAX];
static struct event_poll_gen event_ready_gen[EVENT_WAIT_MAX];

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

static void event_kernel_sync(int fd, bool renew);

/* event_forked - atfork child handler: the instance is the parent's */
static void event_forked(void)
{
    event_epfd_inherited = 1;
}

/* event_instance - the epoll instance of this process; a child forked
 * without event_reset_after_fork makes its own and registers what its
 * table holds (the parent's is shared across fork) */
static int event_instance(void)
{
    if (event_epfd >= 0 && !event_epfd_inherited)
	return event_epfd;
    if (!event_atfork_done) {
	if (pthread_atfork(NULL, NULL, event_forked) != 0)
	    msg_fatal("event: pthread_atfork failed");
	event_atfork_done = true;
    }
    if (event_epfd >= 0)
	(void) close(event_epfd);
    if ((event_epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
	msg_fatal("event: epoll_create1: %m");
    event_epfd_inherited = 0;
    event_always = 0;
    for (int fd = 0; fd < event_fds_cap; fd++)
	event_fds[fd].kernel = 0;
    for (int fd = 0; fd < event_fds_cap; fd++)
	if (event_fds[fd].rd.fn || event_fds[fd].wr.fn)
	    event_kernel_sync(fd, true);
    return event_epfd;
}

/* event_kernel_sync - make the kernel's interest in fd what the table
 * says; renew: register again even if it looks the same (the fd may
 * name a new file) */
static void event_kernel_sync(int fd, bool renew)
{
    struct event_fd *e = event_fds + fd;
    uint32_t want = (e->rd.fn ? EPOLLIN : 0) | (e->wr.fn ? EPOLLOUT : 0);
    struct epoll_event ev;
    int epfd = event_instance();

    if (e->kernel & EVENT_ALWAYS) {
	if (want == 0) {
	    e->kernel = 0;
	    event_always--;
	} else if (renew) {
	    e->kernel = 0;			/* maybe no longer a file */
	    event_always--;
	} else
	    return;
    }
    if (want == 0) {
	if (e->kernel != 0 && epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL) < 0
	    && errno != ENOENT && errno != EBADF)
	    msg_fatal("event: epoll_ctl DEL fd %d: %m", fd);
	e->kernel = 0;
	return;
    }
    if (want == e->kernel && !renew)
	return;
    memset(&ev, 0, sizeof(ev));
    ev.events = want;
    ev.data.fd = fd;
    if (e->kernel != 0) {
	if (epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev) == 0) {
	    e->kernel = want;
	    return;
	}
	if (errno != ENOENT)
	    msg_panic("event: epoll_ctl MOD fd %d: %m", fd);
	/* the old file went (closed before its removal): a new one */
    }
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == 0
	|| (errno == EEXIST && epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev) == 0)) {
	e->kernel = want;
	return;
    }
    if (errno == EPERM) {			/* a regular file */
	e->kernel = EVENT_ALWAYS;
	event_always++;
	return;
    }
    if (errno == EBADF) {
	/* not open (a bug of the caller, or a registration made ahead of
	 * the open): nothing to wait for; an add after the open registers */
	e->kernel = 0;
	return;
    }
    msg_fatal("event: epoll_ctl ADD fd %d: %m", fd);
}

/* event_add_read - call fn(fd, ctx) while fd is readable */
void event_add_read(int fd, event_fd_fn fn, void *ctx)
{
    event_dir_set(&event_slot(fd)->rd, fn, ctx);
    event_kernel_sync(fd, true);
}

/* event_add_write - call fn(fd, ctx) while fd is writable */
void event_add_write(int fd, event_fd_fn fn, void *ctx)
{
    event_dir_set(&event_slot(fd)->wr, fn, ctx);
    event_kernel_sync(fd, true);
}

/* event_remove_read - drop read interest */
void event_remove_read(int fd)
{
    if (fd >= 0 && fd < event_fds_cap && event_fds[fd].rd.fn) {
	memset(&event_fds[fd].rd, 0, sizeof(event_fds[fd].rd));
	event_kernel_sync(fd, false);
    }
}

/* event_remove_write - drop write interest */
void event_remove_write(int fd)
{
    if (fd >= 0 && fd < event_fds_cap && event_fds[fd].wr.fn) {
	memset(&event_fds[fd].wr, 0, sizeof(event_fds[fd].wr));
	event_kernel_sync(fd, false);
    }
}

/* event_remove - drop read and write interest */
void event_remove(int fd)
{
    if (fd >= 0 && fd < event_fds_cap && (event_fds[fd].rd.fn || event_fds[fd].wr.fn)) {
	memset(&event_fds[fd].rd, 0, sizeof(event_fds[fd].rd));
	memset(&event_fds[fd].wr, 0, sizeof(event_fds[fd].wr));
	event_kernel_sync(fd, false);
    }
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

/* event_dispatch_fd - run the callbacks of one ready fd that are still
 * the ones waited for; returns how many ran */
static int event_dispatch_fd(int fd, uint32_t revents, const struct event_poll_gen *g)
{
    struct event_dir dir;
    int ran = 0;

    if ((revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) && g->rd
	&& fd < event_fds_cap && event_fds[fd].rd.gen == g->rd) {
	dir = event_fds[fd].rd;			/* copy: the table may move */
	dir.fn(fd, dir.ctx);
	ran++;
    }
    if ((revents & (EPOLLOUT | EPOLLHUP | EPOLLERR)) && g->wr
	&& fd < event_fds_cap && event_fds[fd].wr.gen == g->wr) {
	dir = event_fds[fd].wr;
	dir.fn(fd, dir.ctx);
	ran++;
    }
    return ran;
}

/* event_stale - the kernel reported an fd the table has no interest in:
 * it was closed before its removal while its file lives on elsewhere
 * (or its number is another file now). Drop the kernel's entry; when
 * that is impossible, start a fresh interest set. */
static void event_stale(int fd)
{
    if (epoll_ctl(event_epfd, EPOLL_CTL_DEL, fd, NULL) == 0)
	return;
    if (errno == ENOENT)
	return;
    (void) close(event_epfd);
    event_epfd = -1;
    (void) event_instance();
}

/* event_loop_once - wait at most timeout_ms, then dispatch */
int event_loop_once(int timeout_ms)
{
    long long now;
    event_timer_id last_id;
    unsigned epoch;
    int wait_ms = timeout_ms < 0 ? -1 : timeout_ms;
    int n, nalways = 0, ran = 0;
    int epfd;

    if (event_dispatching)
	msg_panic("event_loop_once: called from a callback");
    epfd = event_instance();
    if (event_timers_len > 0) {
	long long left = event_timers[event_timers_len - 1].due - event_now();

	if (left < 0)
	    left = 0;
	if (wait_ms < 0 || left < wait_ms)
	    wait_ms = left > INT_MAX ? INT_MAX : (int) left;
    }
    if (event_always > 0)
	wait_ms = 0;
    n = epoll_wait(epfd, event_ready, EVENT_WAIT_MAX, wait_ms);
    if (n < 0) {
	if (errno == EINTR)
	    return 0;
	msg_fatal("event: epoll_wait: %m");
    }
    /* the fds that are always ready (regular files), after the others */
    for (int fd = 0; event_always > 0 && fd < event_fds_cap && n + nalways < EVENT_WAIT_MAX;
	 fd++) {
	if (event_fds[fd].kernel & EVENT_ALWAYS) {
	    event_ready[n + nalways].events = (event_fds[fd].rd.fn ? EPOLLIN : 0)
		| (event_fds[fd].wr.fn ? EPOLLOUT : 0);
	    event_ready[n + nalways].data.fd = fd;
	    nalways++;
	}
    }
    n += nalways;
    /* what was registered while we waited: nothing ran since */
    for (int i = 0; i < n; i++) {
	int fd = event_ready[i].data.fd;

	if (fd >= 0 && fd < event_fds_cap) {
	    event_ready_gen[i].rd = event_fds[fd].rd.gen;
	    event_ready_gen[i].wr = event_fds[fd].wr.gen;
	} else
	    event_ready_gen[i].rd = event_ready_gen[i].wr = 0;
    }
    now = event_now();
    last_id = event_timer_next - 1;
    epoch = event_epoch;
    event_dispatching = true;
    for (int i = 0; i < n && event_epoch == epoch; i++) {
	int fd = event_ready[i].data.fd;

	if (event_ready_gen[i].rd == 0 && event_ready_gen[i].wr == 0) {
	    event_stale(fd);
	    continue;
	}
	ran += event_dispatch_fd(fd, event_ready[i].events, event_ready_gen + i);
    }
    if (event_epoch != epoch) {
	/* a forked child reset the loop inside a callback and ran its own */
	event_dispatching = false;
	return ran;
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
	if (event_epoch != epoch)
	    break;
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
    /* the parent's epoll instance is shared: let go of our reference,
     * and make a fresh one at the next use */
    if (event_epfd >= 0)
	(void) close(event_epfd);
    event_epfd = -1;
    event_always = 0;
    event_epoch++;
    event_timers_len = 0;
    event_stop_flag = 0;
    event_dispatching = false;
}
