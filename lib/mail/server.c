/* server.c - the daemon skeleton: options, configuration, logging,
 * privilege drop, and the SINGLE, MULTI and TRIGGER service loops
 * (see server.h for the life cycle, and master_proto.h for what master
 * hands over).
 *
 * Order matters and is fixed here, once, for every daemon: the log file
 * is opened and pre_init runs while the process may still be root; the
 * privilege drop (chroot, setgroups, setgid, setuid, verified) comes
 * before the first accept(2) or read(2) from a peer.
 *
 * SINGLE waits with epoll(7) on the listeners (EPOLLEXCLUSIVE: one
 * connection wakes one idle process, not all of them; an idle process
 * also polls the listeners once a second, as the woken one may die before
 * its accept) and a self-pipe that the SIGHUP handler writes to, so a
 * reload is never missed between a check and a wait. MULTI and TRIGGER
 * run on the event loop (event.h), which the daemon may use for its own
 * descriptors and timers.
 *
 * System calls per connection or trigger are kept few: the watchdog
 * alarm(2) is armed once and moved lazily (a reset only notes the time;
 * the SIGALRM handler re-arms for the rest when there was progress), the
 * master's pid is compared with getppid(2) at most once a second (a dead
 * master also ends us by PR_SET_PDEATHSIG and by EPIPE on the status
 * pipe), our pid is cached, and a trigger connection is accepted
 * non-blocking and read at once (its byte is usually there already). */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* base */
#include "event.h"
#include "mem.h"
#include "msg.h"
#include "privs.h"
#include "sock.h"
#include "str.h"
#include "stream.h"

/* mail */
#include "config.h"
#include "master_proto.h"
#include "server.h"
#include "table.h"

/* Options and state of this process. */
static const struct server_spec *srv_spec;
static char srv_config_dir[PATH_MAX];
static char srv_service_name[256];
static char srv_service_type[16];
static int srv_listen_count;
static bool srv_stdin;
static int srv_status_fd = -1;
static int srv_config_fd = -1;		/* master's main.cf snapshot, until read */
static long srv_use_count;
static pid_t srv_master_pid;
static pid_t srv_pid;			/* refreshed in a forked child */
static time_t srv_ppid_checked = -1;	/* second of the last getppid(2) */

/* The watchdog: the second of the last progress, whether an alarm is
 * pending, and whether the process only waits for work (not stuck). */
static volatile sig_atomic_t srv_watch_progress;
static volatile sig_atomic_t srv_watch_armed;
static volatile sig_atomic_t srv_watch_waiting;

/* Set by signal handlers or server_request_exit. */
static volatile sig_atomic_t srv_exit_requested;
static int srv_wake_pipe[2] = {-1, -1};

/* MULTI and TRIGGER. */
struct srv_client {
    struct stream *stream;
    void *ctx;
    event_timer_id timer;
    bool gone;
};
static struct srv_client **srv_clients;
static size_t srv_client_count;
static size_t srv_client_cap;
static event_timer_id srv_idle_timer;
static bool srv_idle_expired;

/* server_service_name - -n, or the program name */
const char *server_service_name(void)
{
    return srv_service_name;
}

/* server_service_type - -t, or "" */
const char *server_service_type(void)
{
    return srv_service_type;
}

/* server_stdin_mode - -S was given */
bool server_stdin_mode(void)
{
    return srv_stdin;
}

/* server_config_dir - the configuration directory in use */
const char *server_config_dir(void)
{
    return srv_config_dir;
}

/* srv_wake - write one byte to the self-pipe (async-signal-safe) */
static void srv_wake(void)
{
    int saved_errno = errno;

    if (srv_wake_pipe[1] >= 0)
	(void) !write(srv_wake_pipe[1], "x", 1);
    errno = saved_errno;
}

/* server_request_exit - finish the work at hand, then exit */
void server_request_exit(void)
{
    srv_exit_requested = 1;
    srv_wake();
}

/* srv_close_listeners - give up the listeners at once (async-signal-safe):
 * a busy process must not keep a socket that master closed on reload
 * accepting connections that nobody will serve. Only once, so that a
 * second signal cannot close a descriptor the daemon opened meanwhile. */
static volatile sig_atomic_t srv_listeners_closed;

static void srv_close_listeners(void)
{
    if (srv_listeners_closed || srv_stdin)
	return;
    srv_listeners_closed = 1;
    for (int i = 0; i < srv_listen_count; i++)
	(void) close(MASTER_LISTEN_FD + i);
}

/* srv_sighup - master reloads: finish the client at hand, then exit */
static void srv_sighup(int sig)
{
    (void) sig;
    srv_exit_requested = 1;
    /* SINGLE polls its listeners itself; the event loop of MULTI and
     * TRIGGER must drop them first (srv_stop_listening). */
    if (srv_spec->kind == SERVER_SINGLE)
	srv_close_listeners();
    srv_wake();
}

/* srv_sigterm - exit now (after the daemon's async-signal-safe
 * on_terminate, if any) */
static void srv_sigterm(int sig)
{
    (void) sig;
    if (srv_spec && srv_spec->on_terminate)
	srv_spec->on_terminate();
    _exit(0);
}

/* srv_now_sec - monotonic seconds (vDSO, no system call; signal-safe) */
static time_t srv_now_sec(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) < 0
	&& clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
	return 0;
    return ts.tv_sec;
}

/* srv_watch_seconds - daemon_timeout as an alarm(2) argument, 0: none */
static unsigned srv_watch_seconds(void)
{
    long t = var_daemon_timeout;

    return t <= 0 ? 0 : (unsigned) (t > 100000000 ? 100000000 : t);
}

/* srv_watchdog - the alarm: daemon_timeout passed without progress, or
 * progress was made meanwhile and the alarm moves on */
static void srv_watchdog(int sig)
{
    int saved_errno = errno;
    unsigned t = srv_watch_seconds();
    time_t elapsed = srv_now_sec() - (time_t) srv_watch_progress;

    (void) sig;
    if (t > 0 && (srv_watch_waiting || elapsed < (time_t) t)) {
	alarm(srv_watch_waiting || elapsed < 0 ? t : t - (unsigned) elapsed);
	errno = saved_errno;
	return;
    }
    srv_watch_armed = 0;
    /* If logging itself hangs, the default action ends us 5s later. */
    signal(SIGALRM, SIG_DFL);
    alarm(5);
    msg_fatal("watchdog timeout -- no progress for %ld seconds", var_daemon_timeout);
}

/* srv_watch_wait - waiting for work is not a stuck job */
static void srv_watch_wait(void)
{
    srv_watch_waiting = 1;
}

/* srv_watch_off - no watchdog any more (exit, or a child) */
static void srv_watch_off(void)
{
    alarm(0);
    srv_watch_armed = 0;
    srv_watch_waiting = 0;
}

/* srv_atfork_child - a forked child has its own pid and no alarm */
static void srv_atfork_child(void)
{
    srv_pid = getpid();
    srv_watch_armed = 0;
}

/* srv_loop_once - one event-loop step: the wait is bounded by half the
 * watchdog time and the watchdog restarts before it, so the watchdog
 * fires only when one callback (the daemon's own ones included) runs for
 * longer than daemon_timeout / 2 .. daemon_timeout */
static void srv_loop_once(void)
{
    long half = var_daemon_timeout > 1 ? var_daemon_timeout / 2 : 1;

    server_watchdog_reset();
    (void) event_loop_once((int) (half > INT_MAX / 1000 ? INT_MAX : half * 1000));
}

/* server_watchdog_reset - restart the watchdog: note the time; the
 * alarm is armed only when none is pending (srv_watchdog moves it) */
void server_watchdog_reset(void)
{
    unsigned t = srv_watch_seconds();

    if (t == 0)
	return;
    srv_watch_progress = (sig_atomic_t) srv_now_sec();
    srv_watch_waiting = 0;
    if (!srv_watch_armed) {
	srv_watch_armed = 1;
	alarm(t);
    }
}

/* srv_signals - install handlers; SIGPIPE is ignored */
static void srv_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    sa.sa_flags = SA_RESTART;
    sa.sa_handler = srv_sighup;
    sigaction(SIGHUP, &sa, NULL);
    sa.sa_handler = srv_sigterm;
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = srv_watchdog;
    sigaction(SIGALRM, &sa, NULL);
}

/* srv_notify - tell master that this process is busy or idle again */
static void srv_notify(int status)
{
    struct master_status st;
    ssize_t n;

    if (srv_status_fd < 0)
	return;
    memset(&st, 0, sizeof(st));
    st.pid = (int32_t) srv_pid;
    st.status = status;
    do {
	n = write(srv_status_fd, &st, sizeof(st));
    } while (n < 0 && errno == EINTR);
    if (n != (ssize_t) sizeof(st)) {
	/* master is gone (EPIPE): finish what we do, then leave */
	if (msg_verbose)
	    msg_info("status write to master failed: %s -- exiting after this client",
		     n < 0 ? strerror(errno) : "short write");
	close(srv_status_fd);
	srv_status_fd = -1;
	srv_exit_requested = 1;
    }
}

/* srv_usage - bad command line */
static _Noreturn void srv_usage(const char *prog)
{
    msg_fatal("usage: %s [-c config_dir] [-n service] [-t inet|unix|fifo] [-s count] "
	      "[-o name=value] [-u] [-C] [-v] [-S] [args...]", prog);
}

/* srv_fd_open - fd is an open descriptor */
static bool srv_fd_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

/* srv_done - run on_exit and exit normally */
static _Noreturn void srv_done(void)
{
    srv_watch_off();
    if (srv_spec->on_exit)
	srv_spec->on_exit();
    exit(0);
}

/* srv_limit_reached - max_use served */
static bool srv_limit_reached(void)
{
    return !(srv_spec->flags & SERVER_FLAG_NO_MAX_USE) && srv_use_count >= var_max_use;
}

/* srv_tables_changed - a lookup table this process has open was rebuilt
 * (table_changed): log it and finish like on SIGHUP, so that master
 * starts a fresh process that opens the new file (as Postfix does). Asked
 * before every accept or trigger read, so the work that is waiting goes
 * to the fresh process, not to this one with the old data. */
static bool srv_tables_changed(void)
{
    const char *name;

    if ((name = table_changed()) == NULL)
	return false;
    msg_info("table %s has changed -- restarting", name);
    srv_exit_requested = 1;
    return true;
}

/* srv_master_gone - master died: its children must not linger
 * (getppid(2) at most once a second; the first call always checks) */
static bool srv_master_gone(void)
{
    time_t now;

    if (srv_master_pid <= 1)
	return false;
    now = srv_now_sec();
    if (now == srv_ppid_checked)
	return false;
    srv_ppid_checked = now;
    return getppid() != srv_master_pid;
}

/* srv_drain_wake - empty the self-pipe */
static void srv_drain_wake(void)
{
    char buf[64];

    while (read(srv_wake_pipe[0], buf, sizeof(buf)) > 0)
	 /* void */ ;
}

/* ---------------------------------------------------------------- */
/* -S: one client on stdin/stdout.                                  */

static pid_t srv_relay_pid = -1;

/* srv_relay - copy stdin to sock and sock to stdout until both end */
static _Noreturn void srv_relay(int sock)
{
    char buf[8192];
    bool in_open = true;

    for (;;) {
	struct pollfd p[2];
	int np = 0;
	ssize_t n;

	p[np].fd = sock;
	p[np].events = POLLIN;
	np++;
	if (in_open) {
	    p[np].fd = STDIN_FILENO;
	    p[np].events = POLLIN;
	    np++;
	}
	if (poll(p, (nfds_t) np, -1) < 0) {
	    if (errno == EINTR)
		continue;
	    _exit(1);
	}
	if (p[0].revents) {
	    n = read(sock, buf, sizeof(buf));
	    if (n <= 0)
		_exit(0);			/* the daemon closed */
	    for (ssize_t off = 0; off < n;) {
		ssize_t w = write(STDOUT_FILENO, buf + off, (size_t) (n - off));

		if (w < 0 && errno == EINTR)
		    continue;
		if (w <= 0)
		    _exit(1);
		off += w;
	    }
	}
	if (in_open && np > 1 && p[1].revents) {
	    n = read(STDIN_FILENO, buf, sizeof(buf));
	    if (n < 0 && errno == EINTR)
		continue;
	    if (n <= 0) {
		in_open = false;
		shutdown(sock, SHUT_WR);
		continue;
	    }
	    for (ssize_t off = 0; off < n;) {
		ssize_t w = write(sock, buf + off, (size_t) (n - off));

		if (w < 0 && errno == EINTR)
		    continue;
		if (w <= 0)
		    _exit(1);
		off += w;
	    }
	}
    }
}

/* srv_stdio_fd - one descriptor for both directions of stdin/stdout:
 * stdin itself if it is a socket, else a socketpair with a relay child */
static int srv_stdio_fd(void)
{
    int type;
    socklen_t len = sizeof(type);
    int sv[2];

    if (getsockopt(STDIN_FILENO, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM)
	return STDIN_FILENO;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
	msg_fatal("socketpair: %m");
    fflush(stdout);
    switch (srv_relay_pid = fork()) {
    case -1:
	msg_fatal("fork: %m");
    case 0:
	close(sv[0]);
	signal(SIGHUP, SIG_IGN);
	signal(SIGTERM, SIG_DFL);
	srv_watch_off();
	srv_relay(sv[1]);
    default:
	close(sv[1]);
	return sv[0];
    }
}

/* srv_stdio_end - wait until the relay wrote everything out */
static void srv_stdio_end(void)
{
    int status;

    if (srv_relay_pid > 0) {
	while (waitpid(srv_relay_pid, &status, 0) < 0 && errno == EINTR)
	     /* void */ ;
	srv_relay_pid = -1;
    }
}

/* srv_open_client - a stream with the default deadline */
static struct stream *srv_open_client(int fd)
{
    struct stream *s = stream_open(fd);

    stream_set_timeout(s, (int) (var_ipc_timeout > INT_MAX / 1000 ? INT_MAX : var_ipc_timeout * 1000));
    return s;
}

/* ---------------------------------------------------------------- */
/* SINGLE                                                           */

/* srv_single_serve - one connection */
static void srv_single_serve(int fd)
{
    struct stream *s = srv_open_client(fd);

    srv_use_count++;
    server_watchdog_reset();
    srv_spec->single_service(s);
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

/* srv_now_ms - monotonic milliseconds */
static long long srv_now_ms(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
	return 0;
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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
static _Noreturn void srv_single_loop(void)
{
    struct epoll_event ready[MASTER_LISTEN_MAX + 1];
    int ep = srv_single_epoll();
    bool idle_exit = !(srv_spec->flags & SERVER_FLAG_NO_IDLE_EXIT);
    long long max_idle_ms = var_max_idle > LLONG_MAX / 2000 ? LLONG_MAX / 2 : var_max_idle * 1000LL;
    long long idle_since = srv_now_ms(), now, left;
    bool idle_hook_due = false;		/* served one since the last hook */
    int n, wait_ms, i;

    for (;;) {
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

/* ---------------------------------------------------------------- */
/* MULTI                                                            */

static void srv_multi_input_cb(int fd, void *ctx);

/* srv_idle_fire - max_idle passed without work */
static void srv_idle_fire(void *ctx)
{
    (void) ctx;
    srv_idle_timer = 0;
    srv_idle_expired = true;
}

/* srv_idle_arm - (re)start the idle timer */
static void srv_idle_arm(void)
{
    if (srv_idle_timer)
	event_timer_cancel(srv_idle_timer);
    srv_idle_timer = 0;
    if (srv_spec->flags & SERVER_FLAG_NO_IDLE_EXIT || srv_stdin)
	return;
    srv_idle_timer = event_timer_add((int) (var_max_idle > INT_MAX / 1000 ? INT_MAX
					       : var_max_idle * 1000), srv_idle_fire, NULL);
}

/* srv_idle_disarm - work arrived */
static void srv_idle_disarm(void)
{
    if (srv_idle_timer)
	event_timer_cancel(srv_idle_timer);
    srv_idle_timer = 0;
}

/* srv_client_timeout_ms - the silence limit of a MULTI client, <0: none */
static int srv_client_timeout_ms(void)
{
    long t = srv_spec->client_timeout;

    if (t == 0)
	t = var_ipc_timeout;
    if (t < 0)
	return -1;
    return (int) (t > INT_MAX / 1000 ? INT_MAX : t * 1000);
}

/* srv_client_drop - disconnect one client */
static void srv_client_drop(struct srv_client *c)
{
    if (c->gone)
	return;
    c->gone = true;
    event_remove(stream_fd(c->stream));
    if (c->timer)
	event_timer_cancel(c->timer);
    c->timer = 0;
    if (srv_spec->multi_disconnect)
	srv_spec->multi_disconnect(c->stream, c->ctx);
    (void) stream_close(&c->stream);
}

/* srv_client_reap - forget dropped clients; re-arm idle when none left */
static void srv_client_reap(void)
{
    size_t j = 0;

    for (size_t i = 0; i < srv_client_count; i++) {
	if (srv_clients[i]->gone)
	    mem_free(&srv_clients[i]);
	else
	    srv_clients[j++] = srv_clients[i];
    }
    if (j == 0 && srv_client_count > 0)
	srv_idle_arm();
    srv_client_count = j;
}

/* srv_client_timeout - a MULTI client was silent too long */
static void srv_client_timeout(void *ctx)
{
    struct srv_client *c = ctx;

    c->timer = 0;
    if (msg_verbose)
	msg_info("client timeout -- disconnecting");
    srv_client_drop(c);
}

/* srv_client_rearm - restart a client's silence timer */
static void srv_client_rearm(struct srv_client *c)
{
    int ms = srv_client_timeout_ms();

    if (c->timer)
	event_timer_cancel(c->timer);
    c->timer = ms < 0 ? 0 : event_timer_add(ms, srv_client_timeout, c);
}

/* srv_multi_add - register a new client */
static struct srv_client *srv_multi_add(int fd)
{
    struct srv_client *c = mem_zalloc(sizeof(*c));

    if (srv_client_count == srv_client_cap) {
	srv_client_cap = srv_client_cap ? srv_client_cap * 2 : 16;
	srv_clients = mem_realloc(srv_clients, mem_size_mul(srv_client_cap, sizeof(*srv_clients)));
    }
    srv_clients[srv_client_count++] = c;
    srv_idle_disarm();
    c->stream = srv_open_client(fd);
    c->ctx = srv_spec->multi_connect ? srv_spec->multi_connect(c->stream) : NULL;
    srv_client_rearm(c);
    event_add_read(fd, srv_multi_input_cb, c);
    return c;
}

/* srv_multi_input_cb - a client has input */
static void srv_multi_input_cb(int fd, void *ctx)
{
    struct srv_client *c = ctx;

    (void) fd;
    if (c->gone)
	return;
    server_watchdog_reset();
    for (;;) {
	size_t before = stream_buffered(c->stream);

	if (!srv_spec->multi_input(c->stream, c->ctx) || stream_error(c->stream) != STREAM_OK) {
	    srv_client_drop(c);
	    return;
	}
	/* more buffered input: serve it, unless the daemon took none */
	if (stream_buffered(c->stream) == 0 || stream_buffered(c->stream) >= before)
	    break;
    }
    srv_client_rearm(c);
}

/* srv_multi_accept_cb - a listener is readable */
static void srv_multi_accept_cb(int lfd, void *ctx)
{
    int fd;

    (void) ctx;
    if (srv_exit_requested || srv_limit_reached() || srv_tables_changed())
	return;
    if ((fd = sock_accept(lfd)) < 0) {
	if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR
	    && errno != ECONNABORTED && errno != EPROTO)
	    msg_warn("accept: %m");
	return;
    }
    /* A MULTI process stays available for more clients. */
    srv_notify(MASTER_STAT_TAKEN);
    srv_use_count++;
    if (!srv_limit_reached())
	srv_notify(MASTER_STAT_AVAIL);
    srv_multi_add(fd);
}

/* srv_wake_cb - the self-pipe: a signal asked us to exit */
static void srv_wake_cb(int fd, void *ctx)
{
    (void) fd;
    (void) ctx;
    srv_drain_wake();
}

/* srv_stop_listening - no new clients for this process */
static void srv_stop_listening(void)
{
    if (srv_listeners_closed)
	return;
    for (int i = 0; i < srv_listen_count; i++)
	event_remove(MASTER_LISTEN_FD + i);
    srv_close_listeners();
}

/* srv_multi_loop - run the event loop until there is nothing left to do */
static _Noreturn void srv_multi_loop(void)
{
    bool listening = true;

    event_add_read(srv_wake_pipe[0], srv_wake_cb, NULL);
    for (int i = 0; i < srv_listen_count; i++)
	event_add_read(MASTER_LISTEN_FD + i, srv_multi_accept_cb, NULL);
    srv_idle_arm();
    for (;;) {
	srv_client_reap();
	if (listening && (srv_exit_requested || srv_limit_reached() || srv_master_gone())) {
	    srv_stop_listening();
	    listening = false;
	}
	if (!listening && srv_client_count == 0)
	    break;
	if (srv_idle_expired && srv_client_count == 0) {
	    if (msg_verbose)
		msg_info("idle timeout -- exiting");
	    break;
	}
	srv_idle_expired = false;
	srv_loop_once();
    }
    srv_done();
}

/* srv_multi_stdin - -S for MULTI: one client on stdin/stdout */
static _Noreturn void srv_multi_stdin(void)
{
    struct srv_client *c;

    event_add_read(srv_wake_pipe[0], srv_wake_cb, NULL);
    c = srv_multi_add(srv_stdio_fd());
    srv_use_count++;
    while (!c->gone) {
	srv_loop_once();
    }
    srv_client_reap();
    srv_stdio_end();
    srv_done();
}

/* ---------------------------------------------------------------- */
/* TRIGGER                                                          */

/* srv_trigger_run - pass one request to the daemon */
static void srv_trigger_run(const char *buf, size_t len)
{
    srv_notify(MASTER_STAT_TAKEN);
    srv_use_count++;
    srv_idle_disarm();
    server_watchdog_reset();
    srv_spec->trigger(buf, len);
    if (!srv_limit_reached() && !srv_exit_requested)
	srv_notify(MASTER_STAT_AVAIL);
    srv_idle_arm();
}

/* srv_trigger_fifo_cb - bytes in the FIFO: all that is there, in one go */
static void srv_trigger_fifo_cb(int fd, void *ctx)
{
    static char buf[SERVER_FIFO_READ_MAX];
    ssize_t n;

    (void) ctx;
    if (srv_exit_requested || srv_limit_reached() || srv_tables_changed())
	return;
    n = read(fd, buf, sizeof(buf));
    if (n < 0) {
	if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
	    msg_fatal("read trigger fifo: %m");
	return;
    }
    if (n == 0)
	return;
    srv_trigger_run(buf, (size_t) n);
}

/* A trigger connection waiting for its bytes: never blocks the loop. */
struct srv_trigger_conn {
    int fd;
    event_timer_id timer;
};

#define SRV_TRIGGER_WAIT_MS	5000	/* a sender writes at once */
#define SRV_TRIGGER_PENDING_MAX	64	/* connections waiting for bytes */

static int srv_trigger_pending;

/* srv_trigger_conn_end - forget a trigger connection */
static void srv_trigger_conn_end(struct srv_trigger_conn *tc)
{
    event_remove(tc->fd);
    if (tc->timer)
	event_timer_cancel(tc->timer);
    close(tc->fd);
    srv_trigger_pending--;
    mem_free(&tc);
}

/* srv_trigger_conn_timeout - the sender wrote nothing in time */
static void srv_trigger_conn_timeout(void *ctx)
{
    struct srv_trigger_conn *tc = ctx;

    tc->timer = 0;
    msg_warn("trigger connection: timeout");
    srv_trigger_conn_end(tc);
}

/* srv_trigger_conn_cb - the bytes of one trigger connection */
static void srv_trigger_conn_cb(int fd, void *ctx)
{
    struct srv_trigger_conn *tc = ctx;
    char buf[SERVER_TRIGGER_MAX];
    ssize_t n = read(fd, buf, sizeof(buf));

    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
	return;
    if (n < 0)
	msg_warn("trigger connection: %m");
    srv_trigger_conn_end(tc);
    if (n >= 0)
	srv_trigger_run(buf, (size_t) n);
}

/* srv_trigger_stream_cb - a connection on a trigger socket */
static void srv_trigger_stream_cb(int lfd, void *ctx)
{
    struct srv_trigger_conn *tc;
    int fd;

    (void) ctx;
    if (srv_exit_requested || srv_limit_reached() || srv_tables_changed())
	return;
    if ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) < 0) {
	if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR
	    && errno != ECONNABORTED && errno != EPROTO)
	    msg_warn("accept: %m");
	return;
    }
    /* The sender writes at once: its bytes are usually there already. */
    {
	char buf[SERVER_TRIGGER_MAX];
	ssize_t n = read(fd, buf, sizeof(buf));

	if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
	    if (n < 0)
		msg_warn("trigger connection: %m");
	    close(fd);
	    if (n >= 0)
		srv_trigger_run(buf, (size_t) n);
	    return;
	}
    }
    if (srv_trigger_pending >= SRV_TRIGGER_PENDING_MAX) {
	msg_warn("trigger connection: too many pending -- dropped");
	close(fd);
	return;
    }
    tc = mem_zalloc(sizeof(*tc));
    tc->fd = fd;
    tc->timer = event_timer_add(SRV_TRIGGER_WAIT_MS, srv_trigger_conn_timeout, tc);
    srv_trigger_pending++;
    event_add_read(fd, srv_trigger_conn_cb, tc);
}

/* srv_drain - let a TRIGGER daemon finish the work it started (spec's
 * drain) before it exits; at most ipc_timeout, and not without master */
static void srv_drain(void)
{
    time_t deadline = srv_now_sec() + (time_t) var_ipc_timeout;

    while (srv_spec->drain()) {
	if (srv_master_gone() || srv_now_sec() >= deadline) {
	    msg_warn("exiting with work still in progress");
	    return;
	}
	srv_loop_once();
    }
}

/* srv_trigger_loop - wait for triggers until a limit or a signal */
static _Noreturn void srv_trigger_loop(void)
{
    bool fifo = strcmp(srv_service_type, "fifo") == 0;

    event_add_read(srv_wake_pipe[0], srv_wake_cb, NULL);
    for (int i = 0; i < srv_listen_count; i++)
	event_add_read(MASTER_LISTEN_FD + i,
		       fifo ? srv_trigger_fifo_cb : srv_trigger_stream_cb, NULL);
    srv_idle_arm();
    for (;;) {
	if (srv_exit_requested || srv_limit_reached() || srv_master_gone()) {
	    srv_stop_listening();
	    break;
	}
	if (srv_idle_expired) {
	    if (msg_verbose)
		msg_info("idle timeout -- exiting");
	    break;
	}
	srv_loop_once();
    }
    if (srv_spec->drain)
	srv_drain();
    srv_done();
}

/* srv_trigger_stdin - -S for TRIGGER: read stdin, one trigger */
static _Noreturn void srv_trigger_stdin(void)
{
    char buf[SERVER_TRIGGER_MAX];
    size_t len = 0;

    while (len < sizeof(buf)) {
	ssize_t n = read(STDIN_FILENO, buf + len, sizeof(buf) - len);

	if (n < 0 && errno == EINTR)
	    continue;
	if (n < 0)
	    msg_fatal("read stdin: %m");
	if (n == 0)
	    break;
	len += (size_t) n;
    }
    srv_use_count++;
    server_watchdog_reset();
    srv_spec->trigger(buf, len);
    srv_done();
}

/* ---------------------------------------------------------------- */
/* Set-up                                                           */

/* srv_check_spec - the daemon filled in what its kind needs */
static void srv_check_spec(const struct server_spec *spec)
{
    if (spec->name == NULL || *spec->name == 0)
	msg_panic("server_main: no program name");
    switch (spec->kind) {
    case SERVER_SINGLE:
	if (spec->single_service == NULL)
	    msg_panic("server_main: SINGLE without single_service");
	break;
    case SERVER_MULTI:
	if (spec->multi_input == NULL)
	    msg_panic("server_main: MULTI without multi_input");
	break;
    case SERVER_TRIGGER:
	if (spec->trigger == NULL)
	    msg_panic("server_main: TRIGGER without trigger");
	break;
    default:
	msg_panic("server_main: bad kind %d", (int) spec->kind);
    }
}

/* srv_logging - "$syslog_name/name" to maillog_file or syslog (+stderr) */
static void srv_logging(bool to_stderr)
{
    char progname[128];
    const char *err;
    int sinks = 0;

    if (!fmt_buf(progname, sizeof(progname), "%s/%s", var_syslog_name, srv_spec->name))
	msg_fatal("syslog_name too long: %s", var_syslog_name);
    if (to_stderr)
	sinks |= MSG_TO_STDERR;
    if (*var_maillog_file) {
	if (!msg_set_file(var_maillog_file, &err))
	    msg_fatal("maillog_file: %s", err);
	sinks |= MSG_TO_FILE;
    } else {
	sinks |= MSG_TO_SYSLOG;
    }
    msg_init(progname, sinks);
    if (!msg_set_syslog_facility(var_syslog_facility))
	msg_warn("unknown syslog_facility \"%s\" -- using mail", var_syslog_facility);
}

/* srv_drop_privileges - chroot (-C) and/or become mail_owner (-u) */
static void srv_drop_privileges(bool opt_u, bool opt_C)
{
    const char *err;

    if (opt_u) {
	/* privs.h: look up, chroot + chdir /, setgroups, setgid, setuid, verify */
	if (priv_drop(var_mail_owner, (gid_t) -1, opt_C ? var_queue_directory : NULL, &err) < 0)
	    msg_fatal("privilege drop to %s: %s", var_mail_owner, err);
    } else if (opt_C) {
	if (geteuid() != 0) {
	    msg_warn("not running as root: skipping chroot to %s", var_queue_directory);
	} else {
	    if (chroot(var_queue_directory) < 0)
		msg_fatal("chroot %s: %m", var_queue_directory);
	    if (chdir("/") < 0)
		msg_fatal("chdir / after chroot %s: %m", var_queue_directory);
	}
    }
}

/* srv_take_config_fd - master's main.cf snapshot, when the environment
 * names the descriptor right after the listeners and it is open */
static void srv_take_config_fd(void)
{
    const char *env = getenv(MASTER_ENV_CONFIG_FD);
    long fd;

    if (env == NULL || !parse_long(env, &fd))
	return;
    if (fd != MASTER_LISTEN_FD + srv_listen_count || !srv_fd_open((int) fd))
	msg_fatal("%s=%s: not the main.cf descriptor from master", MASTER_ENV_CONFIG_FD, env);
    srv_config_fd = (int) fd;
    sock_set_cloexec(srv_config_fd, true);
}

/* srv_setup_fds - check and take over the descriptors from master; runs
 * before anything else opens a file, so that a log file or the config
 * file can never be mistaken for an inherited descriptor */
static void srv_setup_fds(void)
{
    if (!srv_stdin) {
	if (srv_listen_count <= 0)
	    msg_fatal("no listeners (-s count) -- run from master, or use -S for stdin");
	for (int i = 0; i < srv_listen_count; i++) {
	    int fd = MASTER_LISTEN_FD + i;

	    if (!srv_fd_open(fd))
		msg_fatal("listener descriptor %d is not open", fd);
	    sock_set_cloexec(fd, true);
	    sock_set_nonblock(fd, true);
	}
	if (srv_fd_open(MASTER_STATUS_FD)) {
	    srv_status_fd = MASTER_STATUS_FD;
	    sock_set_cloexec(srv_status_fd, true);
	}
	srv_take_config_fd();
    }
    if (pipe2(srv_wake_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
	msg_fatal("pipe: %m");
}

/* server_main - run the daemon */
int server_main(int argc, char **argv, const struct server_spec *spec)
{
    bool opt_u = false, opt_C = false;
    const char *config_dir = NULL;
    const char *err;
    char **overrides;
    int noverrides = 0;
    int ch;
    long count;
    char early_name[128];

    srv_spec = spec;
    srv_check_spec(spec);
    (void) fmt_buf(early_name, sizeof(early_name), "posthorn/%s", spec->name);
    msg_init(early_name, MSG_TO_STDERR | MSG_TO_SYSLOG);
    srv_signals();
    srv_master_pid = getppid();
    srv_pid = getpid();
    (void) pthread_atfork(NULL, NULL, srv_atfork_child);

    overrides = mem_alloc_array((size_t) argc + 1, sizeof(char *));
    (void) str_copy_out(srv_service_name, sizeof(srv_service_name), spec->name);
    opterr = 0;
    while ((ch = getopt(argc, argv, "+c:n:t:s:o:uCvS")) != -1) {
	switch (ch) {
	case 'c':
	    config_dir = optarg;
	    break;
	case 'n':
	    if (!str_copy_out(srv_service_name, sizeof(srv_service_name), optarg))
		msg_fatal("service name too long: %.100s", optarg);
	    break;
	case 't':
	    if (strcmp(optarg, "inet") != 0 && strcmp(optarg, "unix") != 0
		&& strcmp(optarg, "fifo") != 0)
		msg_fatal("bad service type: %.100s", optarg);
	    (void) str_copy_out(srv_service_type, sizeof(srv_service_type), optarg);
	    break;
	case 's':
	    if (!parse_long(optarg, &count) || count < 0 || count > MASTER_LISTEN_MAX)
		msg_fatal("bad listener count: %.100s", optarg);
	    srv_listen_count = (int) count;
	    break;
	case 'o':
	    overrides[noverrides++] = optarg;
	    break;
	case 'u':
	    opt_u = true;
	    break;
	case 'C':
	    opt_C = true;
	    break;
	case 'v':
	    msg_verbose++;
	    break;
	case 'S':
	    srv_stdin = true;
	    break;
	default:
	    srv_usage(argv[0]);
	}
    }
    srv_setup_fds();
    if (config_dir == NULL)
	config_dir = getenv(MASTER_ENV_CONFIG_DIR);
    if (config_dir == NULL || *config_dir == 0)
	config_dir = DEF_CONFIG_DIR;
    if (!str_copy_out(srv_config_dir, sizeof(srv_config_dir), config_dir))
	msg_fatal("configuration directory name too long");

    /* Configuration: from master, the main.cf text that it validated (so
     * an edit that no reload accepted never reaches a new child); run by
     * hand, the file. */
    config_init();
    if (srv_config_fd >= 0) {
	char path[PATH_MAX];

	(void) fmt_buf(path, sizeof(path), "%s/main.cf", srv_config_dir);
	if (config_load_fd(srv_config_fd, path, &err) < 0)
	    msg_fatal("%s", err);
	(void) close(srv_config_fd);
	srv_config_fd = -1;
    } else if (config_load(srv_config_dir, &err) < 0)
	msg_fatal("%s", err);
    config_set("config_directory", srv_config_dir);
    for (int i = 0; i < noverrides; i++)
	if (config_override(overrides[i], &err) < 0)
	    msg_fatal("%s", err);
    if (config_apply(&err) < 0)
	msg_fatal("%s", err);
    mem_free(&overrides);

    /* Logging, before any privilege drop. */
    {
	const char *env = getenv(MASTER_ENV_LOG_STDERR);

	/* stderr too with -S, under master -F, or when run by hand */
	srv_logging(srv_stdin || (env && strcmp(env, "1") == 0)
		    || srv_status_fd < 0);
    }
    if (spec->kind == SERVER_SINGLE && strcmp(srv_service_type, "fifo") == 0)
	msg_fatal("a single-client server cannot serve a fifo");
    if (spec->kind == SERVER_MULTI && strcmp(srv_service_type, "fifo") == 0)
	msg_fatal("a multi-client server cannot serve a fifo");

    if (chdir(var_queue_directory) < 0)
	msg_fatal("chdir %s: %m", var_queue_directory);

    if (spec->pre_init)
	spec->pre_init(argc - optind, argv + optind);

    /* Drop privileges before any byte from a peer is read. */
    srv_drop_privileges(opt_u, opt_C);
    if (srv_status_fd >= 0) {
	/* Children of a dead master must not linger. */
	(void) prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (srv_master_gone())
	    msg_fatal("master went away during start-up");
    } else {
	srv_master_pid = 0;
    }

    if (spec->post_init)
	spec->post_init(argc - optind, argv + optind);
    if (msg_verbose)
	msg_info("%s: ready (service %s, %d listener%s)", spec->name, srv_service_name,
		 srv_listen_count, srv_listen_count == 1 ? "" : "s");

    if (srv_stdin) {
	switch (spec->kind) {
	case SERVER_SINGLE: {
		int fd = srv_stdio_fd();

		srv_single_serve(fd);
		srv_stdio_end();
		srv_done();
	    }
	case SERVER_MULTI:
	    srv_multi_stdin();
	case SERVER_TRIGGER:
	    srv_trigger_stdin();
	}
    }
    switch (spec->kind) {
    case SERVER_SINGLE:
	srv_single_loop();
    case SERVER_MULTI:
	srv_multi_loop();
    case SERVER_TRIGGER:
	srv_trigger_loop();
    }
    return 0;
}
