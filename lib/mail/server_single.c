/* server_single.c - the SINGLE skeleton loop: one client per process at
 * a time (smtpd, cleanup, local-delivery).
 *
 * An idle process waits with epoll(7) on the listeners (EPOLLEXCLUSIVE:
 * one connection wakes one idle process, not all of them; an idle process
 * also polls the listeners once a second, as the woken one may die before
 * its accept) and on a self-pipe that the SIGHUP handler writes to, so a
 * reload is never missed between a check and a wait. Each connection is
 * served by single_service on a struct stream, then closed. */

/* system */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

/* base */
#include "msg.h"
#include "sock.h"
#include "stream.h"

/* mail */
#include "config.h"
#include "master_proto.h"
#include "server.h"
#include "server_internal.h"

/* -t pass: every connection hands over a client (not with -S) */
static bool srv_pass_mode;

/* srv_single_serve - one connection; with -t pass, the client handed
 * over on it (a bad hand-over is logged and closed, and counts as a use) */
static void srv_single_serve(int fd)
{
    struct stream *s;

    srv_use_count++;
    server_watchdog_reset();
    if (srv_pass_mode) {
	if ((s = srv_pass_take(fd)) == NULL)
	    return;
	srv_spec->single_service(s);
	srv_stress_unwatch(s);
	(void) stream_close(&s);
	srv_pass_done();
	return;
    }
    s = srv_open_client(fd);
    srv_spec->single_service(s);
    srv_stress_unwatch(s);
    (void) stream_close(&s);
}

/* srv_single_epoll - the wait set of an idle SINGLE process, made once.
 * The listeners are added with EPOLLEXCLUSIVE: a new connection wakes one
 * idle process (or a few), not every idle process of the service, which
 * with poll(2) would all run, race for accept(2) and all but one get
 * EAGAIN (kernels before 4.5 lack the flag: then plain EPOLLIN). After a
 * reload closed the listeners the set is never waited on again: the loop
 * exits first. */
static int srv_single_epoll(void)
{
    struct epoll_event ev;
    int ep;

    if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
	msg_fatal("epoll_create1: %m");
    for (int i = 0; i < srv_listen_count; i++) {
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLEXCLUSIVE;
	ev.data.u32 = (uint32_t) i;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, MASTER_LISTEN_FD + i, &ev) < 0) {
	    ev.events = EPOLLIN;
	    if (errno != EINVAL || epoll_ctl(ep, EPOLL_CTL_ADD, MASTER_LISTEN_FD + i, &ev) < 0)
		msg_fatal("epoll_ctl listener %d: %m", i);
	}
    }
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;
    ev.data.u32 = (uint32_t) srv_listen_count;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, srv_wake_pipe[0], &ev) < 0)
	msg_fatal("epoll_ctl wake pipe: %m");
    return ep;
}


/* srv_single_pending - a listener with a connection waiting, or -1.
 * EPOLLEXCLUSIVE wakes one idle process per new connection; if that
 * process dies or leaves before its accept(2) (SIGKILL, a reload, its
 * max_use), no other idle process is woken for that connection until the
 * next one arrives, and master, which still counts idle processes, does
 * not step in. So an idle process also looks for itself, once per
 * SERVER_RECHECK_MS: a connection waits at most that long. */
static int srv_single_pending(void)
{
    struct pollfd pfd[MASTER_LISTEN_MAX];

    for (int i = 0; i < srv_listen_count; i++) {
	pfd[i].fd = MASTER_LISTEN_FD + i;
	pfd[i].events = POLLIN;
	pfd[i].revents = 0;
    }
    if (poll(pfd, (nfds_t) srv_listen_count, 0) <= 0)
	return -1;
    for (int i = 0; i < srv_listen_count; i++)
	if (pfd[i].revents & POLLIN)
	    return i;
    return -1;
}

/* srv_single_accept - accept on listener i and serve; false if there was
 * nothing to accept after all (another process was quicker, the client
 * left) or accept(2) failed. A failure (out of descriptors or memory)
 * would repeat at once, as the connection stays ready: the process
 * pauses before it tries again, which lets another idle process take the
 * connection, and gives up after SERVER_ACCEPT_ERRORS_MAX in a row (master
 * starts a fresh one when needed). */
static bool srv_single_accept(int i)
{
    static int errors;			/* accept(2) failures in a row */
    struct timespec pause = {.tv_sec = 0, .tv_nsec = SERVER_ACCEPT_PAUSE_MS * 1000000L};
    int fd;

    if (srv_tables_changed())
	return false;
    if ((fd = sock_accept(MASTER_LISTEN_FD + i)) < 0) {
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR
	    || errno == ECONNABORTED || errno == EPROTO || srv_exit_requested)
	    return false;
	msg_warn("accept: %m");
	if (++errors >= SERVER_ACCEPT_ERRORS_MAX)
	    msg_fatal("accept failed %d times in a row -- exiting", errors);
	(void) nanosleep(&pause, NULL);	/* a signal may cut it short */
	return false;
    }
    errors = 0;
    srv_notify(MASTER_STAT_TAKEN);
    srv_single_serve(fd);
    if (!srv_limit_reached() && !srv_exit_requested)
	srv_notify(MASTER_STAT_AVAIL);
    return true;
}

/* srv_single_loop - accept and serve until a limit or a signal */
_Noreturn void srv_single_loop(void)
{
    struct epoll_event ready[MASTER_LISTEN_MAX + 1];
    int ep = srv_single_epoll();
    bool idle_exit = !(srv_spec->flags & SERVER_FLAG_NO_IDLE_EXIT);
    long long max_idle_ms = var_max_idle > LLONG_MAX / 2000 ? LLONG_MAX / 2 : var_max_idle * 1000LL;
    long long idle_since = srv_now_ms(), now, left;
    bool idle_hook_due = false;		/* served one since the last hook */
    int n, wait_ms, i;

    srv_pass_mode = strcmp(srv_service_type, "pass") == 0;
    for (;;) {
	srv_stress_apply();			/* a stress signal came meanwhile */
	if (srv_exit_requested || srv_listeners_closed || srv_limit_reached()
	    || srv_master_gone())
	    srv_done();
	srv_watch_wait();			/* waiting is not a stuck job */
	wait_ms = idle_hook_due ? SERVER_IDLE_HOOK_MS : SERVER_RECHECK_MS;
	if (idle_exit) {
	    left = idle_since + max_idle_ms - srv_now_ms();
	    if (left < wait_ms)
		wait_ms = left > 0 ? (int) left : 0;
	}
	n = epoll_wait(ep, ready, srv_listen_count + 1, wait_ms);
	if (n < 0) {
	    if (errno == EINTR)
		continue;
	    msg_fatal("epoll_wait: %m");
	}
	if (n == 0) {
	    if (idle_hook_due) {
		/* a quiet second: let go of what was kept for a successor */
		idle_hook_due = false;
		srv_spec->single_idle();
	    }
	    if (srv_exit_requested || srv_listeners_closed)
		continue;
	    if ((i = srv_single_pending()) >= 0 && srv_single_accept(i)) {
		idle_hook_due = srv_spec->single_idle != NULL;
		idle_since = srv_now_ms();
		continue;
	    }
	    now = srv_now_ms();
	    if (idle_exit && now - idle_since >= max_idle_ms) {
		if (msg_verbose)
		    msg_info("idle timeout -- exiting");
		srv_done();
	    }
	    continue;
	}
	for (int k = 0; k < n; k++) {
	    i = (int) ready[k].data.u32;
	    if (i == srv_listen_count) {
		srv_drain_wake();
		continue;
	    }
	    if (srv_exit_requested || srv_listeners_closed)
		continue;
	    if (!srv_single_accept(i))
		continue;
	    idle_hook_due = srv_spec->single_idle != NULL;
	    idle_since = srv_now_ms();
	    break;				/* re-check limits and signals */
	}
    }
}

/* srv_single_stdin - -S for SINGLE: one client on stdin/stdout */
_Noreturn void srv_single_stdin(void)
{
    int fd = srv_stdio_fd();

    srv_single_serve(fd);
    srv_stdio_end();
    srv_done();
}
