/* server.c - the daemon skeleton's common part, what its loops share
 * at run time: the process's state, the status reports to master, the
 * watchdog, the exit conditions (max_use, a changed table, master gone, a
 * signal's self-pipe), -S's stdio relay and the event-loop helpers of
 * MULTI and TRIGGER. server_main.c starts a daemon up and calls the loop of
 * its kind (server_single.c, server_multi.c, server_trigger.c); those
 * call in here, and nothing here calls them (server_internal.h).
 *
 * System calls per connection or trigger are kept few: the watchdog
 * alarm(2) is armed once and moved lazily (a reset only notes the time;
 * the SIGALRM handler re-arms for the rest when there was progress), the
 * master's pid is compared with getppid(2) at most once a second (a dead
 * master also ends us by PR_SET_PDEATHSIG and by EPIPE on the status
 * pipe) and our pid is cached. */

/* system */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* base */
#include "event.h"
#include "mem.h"
#include "msg.h"
#include "stream.h"

/* mail */
#include "config.h"
#include "master_proto.h"
#include "scoreboard.h"
#include "server.h"
#include "server_internal.h"
#include "table.h"

/* Options and state of this process. */
const struct server_spec *srv_spec;
char srv_config_dir[PATH_MAX];
char srv_service_name[SRV_SERVICE_NAME_SIZE];
char srv_service_type[SRV_SERVICE_TYPE_SIZE];
int srv_listen_count;
bool srv_stdin;
bool srv_chroot;
int srv_status_fd = -1;
long srv_use_count;
pid_t srv_master_pid;
pid_t srv_pid;			/* refreshed in a forked child */
static time_t srv_ppid_checked = -1;	/* second of the last getppid(2) */

/* The service's scoreboard (master_proto.h), when master passed one. */
static scoreboard_slot *srv_sb;
static size_t srv_sb_count;		/* slots */
static size_t srv_sb_self;		/* ours */
static bool srv_sb_busy;		/* the state we stored last */

/* The watchdog: the second of the last progress, whether an alarm is
 * pending, and whether the process only waits for work (not stuck). */
static volatile sig_atomic_t srv_watch_progress;
static volatile sig_atomic_t srv_watch_armed;
static volatile sig_atomic_t srv_watch_waiting;

/* Set by signal handlers or server_request_exit. */
volatile sig_atomic_t srv_exit_requested;
int srv_wake_pipe[2] = {-1, -1};

/* MULTI and TRIGGER: the max_idle timer. */
static event_timer_id srv_idle_timer;
bool srv_idle_expired;

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

/* Stress mode (master_proto.h): started with stress=yes, or told since
 * by MASTER_STRESS_SIGNAL (the handler sets srv_stress; the parameters
 * follow in the normal flow, srv_stress_apply). */
volatile sig_atomic_t srv_stress;
static bool srv_stress_applied;		/* var_* have their stress values */

/* The one client stream whose deadline follows stress mode. */
static struct {
    struct stream *stream;
    const long *timeout_var;		/* seconds */
    bool cut;				/* the wait in progress was cut */
} srv_stress_watch;

/* server_stress - the service is (or was, since this process started) in
 * stress mode */
bool server_stress(void)
{
    return srv_stress != 0;
}

/* srv_stress_started - the process started with stress=yes */
void srv_stress_started(void)
{
    srv_stress = 1;
    srv_stress_applied = true;
}

/* srv_stress_apply - after the signal: stress=yes, and the number
 * parameters again (${stress?{10}:{300}}s and the like), once. The
 * strings stay: the daemon may hold pointers into them (config.h). */
void srv_stress_apply(void)
{
    const char *err;

    if (!srv_stress || srv_stress_applied)
	return;
    srv_stress_applied = true;
    config_set("stress", "yes");
    if (config_apply_numbers(&err) < 0) {
	msg_warn("stress mode: %s -- keeping the settings", err);
	return;
    }
    msg_info("stress mode: shorter timeouts and limits from now on");
}

/* srv_stress_hook - the wait hook of the watched stream */
static void srv_stress_hook(struct stream *s, void *ctx)
{
    long sec;
    int ms;

    (void) ctx;
    if (!srv_stress || s != srv_stress_watch.stream)
	return;
    srv_stress_apply();
    sec = *srv_stress_watch.timeout_var;
    ms = sec > INT_MAX / 1000 ? INT_MAX : (int) sec * 1000;
    if (stream_get_timeout(s) < 0 || stream_get_timeout(s) > ms)
	stream_set_timeout(s, ms);
    if (!srv_stress_watch.cut) {
	srv_stress_watch.cut = true;
	stream_cut_deadline(s, ms);
    }
}

/* server_stress_watch - the deadlines of stream s follow stress mode */
void server_stress_watch(struct stream *s, const long *timeout_var)
{
    srv_stress_watch.stream = s;
    srv_stress_watch.timeout_var = timeout_var;
    srv_stress_watch.cut = srv_stress_applied;
    stream_set_wait_hook(s, srv_stress_hook, NULL);
}

/* srv_stress_unwatch - s is closed */
void srv_stress_unwatch(const struct stream *s)
{
    if (srv_stress_watch.stream == s)
	srv_stress_watch.stream = NULL;
}

/* server_stdin_mode - -S was given */
bool server_stdin_mode(void)
{
    return srv_stdin;
}

/* server_chroot_mode - -C was given: the process chroots after pre_init */
bool server_chroot_mode(void)
{
    return srv_chroot;
}

/* server_config_dir - the configuration directory in use */
const char *server_config_dir(void)
{
    return srv_config_dir;
}

/* srv_wake - write one byte to the self-pipe (async-signal-safe) */
void srv_wake(void)
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
volatile sig_atomic_t srv_listeners_closed;

void srv_close_listeners(void)
{
    if (srv_listeners_closed || srv_stdin)
	return;
    srv_listeners_closed = 1;
    for (int i = 0; i < srv_listen_count; i++)
	(void) close(MASTER_LISTEN_FD + i);
}

/* srv_now_sec - monotonic seconds (vDSO, no system call; signal-safe) */
time_t srv_now_sec(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) < 0
	&& clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
	return 0;
    return ts.tv_sec;
}

/* srv_now_ms - monotonic milliseconds */
long long srv_now_ms(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
	return 0;
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* srv_watch_seconds - daemon_timeout as an alarm(2) argument, 0: none */
static unsigned srv_watch_seconds(void)
{
    long t = var_daemon_timeout;

    return t <= 0 ? 0 : (unsigned) (t > 100000000 ? 100000000 : t);
}

/* srv_watchdog - the alarm: daemon_timeout passed without progress, or
 * progress was made meanwhile and the alarm moves on */
void srv_watchdog(int sig)
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
void srv_watch_wait(void)
{
    srv_watch_waiting = 1;
}

/* srv_watch_off - no watchdog any more (exit, or a child) */
void srv_watch_off(void)
{
    alarm(0);
    srv_watch_armed = 0;
    srv_watch_waiting = 0;
}

/* srv_atfork_child - a forked child has its own pid and no alarm, and
 * no scoreboard (the mapping is MADV_DONTFORK) */
void srv_atfork_child(void)
{
    srv_pid = getpid();
    srv_watch_armed = 0;
    srv_sb = NULL;
}

/* srv_loop_once - one event-loop step: the wait is bounded by half the
 * watchdog time and the watchdog restarts before it, so the watchdog
 * fires only when one callback (the daemon's own ones included) runs for
 * longer than daemon_timeout / 2 .. daemon_timeout */
void srv_loop_once(void)
{
    long half = var_daemon_timeout > 1 ? var_daemon_timeout / 2 : 1;

    server_watchdog_reset();
    srv_stress_apply();			/* a stress signal came meanwhile */
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

/* srv_notify_records - write count status records in ONE write(2) */
static void srv_notify_records(const int *statuses, size_t count)
{
    struct master_status st[2];
    ssize_t n;

    if (srv_status_fd < 0)
	return;
    memset(st, 0, sizeof(st));
    for (size_t i = 0; i < count; i++) {
	st[i].pid = (int32_t) srv_pid;
	st[i].status = statuses[i];
    }
    do {
	n = write(srv_status_fd, st, count * sizeof(st[0]));
    } while (n < 0 && errno == EINTR);
    if (n != (ssize_t) (count * sizeof(st[0]))) {
	/* master is gone (EPIPE): finish what we do, then leave */
	if (msg_verbose)
	    msg_info("status write to master failed: %s -- exiting after this client",
		     n < 0 ? strerror(errno) : "short write");
	close(srv_status_fd);
	srv_status_fd = -1;
	srv_exit_requested = 1;
    }
}

/* srv_scoreboard_attach - master passed a scoreboard: slot self of
 * count is ours (master marked it FRESH: idle) */
void srv_scoreboard_attach(scoreboard_slot *slots, size_t count, size_t self)
{
    if (self >= count || scoreboard_word(srv_pid, SCOREBOARD_BUSY) == 0)
	return;				/* a pid that does not fit: records only */
    srv_sb = slots;
    srv_sb_count = count;
    srv_sb_self = self;
    srv_sb_busy = false;
}

/* srv_sb_report - store our state in the scoreboard; true if master need
 * not be told: our state did not change, or another process of the
 * service is idle (so the service's idle count neither reached nor left
 * zero; scoreboard.c has why the store-then-scan cannot miss the last
 * idle process going busy) */
static bool srv_sb_report(bool busy)
{
    bool changed = busy != srv_sb_busy;
    bool other_idle;

    srv_sb_busy = busy;
    other_idle = scoreboard_set(srv_sb, srv_sb_count, srv_sb_self,
				scoreboard_word(srv_pid, busy ? SCOREBOARD_BUSY : SCOREBOARD_IDLE));
    return !changed || other_idle;
}

/* srv_notify - tell master that this process is busy or idle again: in
 * the scoreboard, and with a status record only when the service's idle
 * count reaches or leaves zero (or there is no scoreboard) */
void srv_notify(int status)
{
    if (srv_sb != NULL && srv_sb_report(status == MASTER_STAT_TAKEN))
	return;
    srv_notify_records(&status, 1);
}

/* srv_notify_used - MULTI took a client and stays available: TAKEN
 * (master counts the use) and AVAIL in one write, so that master never
 * reads the one without the other and, seeing no available process for
 * that instant, starts another one for a connection that this process
 * is about to accept. With a scoreboard the slot says IDLE (has served)
 * and no record is needed: the idle count did not change. */
void srv_notify_used(void)
{
    static const int both[2] = {MASTER_STAT_TAKEN, MASTER_STAT_AVAIL};

    if (srv_sb != NULL && srv_sb_report(false))
	return;
    srv_notify_records(both, 2);
}

/* srv_done - run on_exit and exit normally */
_Noreturn void srv_done(void)
{
    srv_watch_off();
    if (srv_spec->on_exit)
	srv_spec->on_exit();
    exit(0);
}

/* srv_limit_reached - max_use served */
bool srv_limit_reached(void)
{
    return !(srv_spec->flags & SERVER_FLAG_NO_MAX_USE)
	&& srv_use_count >= (srv_spec->max_use ? *srv_spec->max_use : var_max_use);
}

/* srv_tables_changed - a lookup table this process has open was rebuilt
 * (table_changed): log it and finish like on SIGHUP, so that master
 * starts a fresh process that opens the new file (as Postfix does). Asked
 * before every accept or trigger read, so the work that is waiting goes
 * to the fresh process, not to this one with the old data. */
bool srv_tables_changed(void)
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
bool srv_master_gone(void)
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
void srv_drain_wake(void)
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
int srv_stdio_fd(void)
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
void srv_stdio_end(void)
{
    int status;

    if (srv_relay_pid > 0) {
	while (waitpid(srv_relay_pid, &status, 0) < 0 && errno == EINTR)
	     /* void */ ;
	srv_relay_pid = -1;
    }
}

/* srv_open_client - a stream with the default deadline */
struct stream *srv_open_client(int fd)
{
    struct stream *s = stream_open(fd);

    stream_set_timeout(s, (int) (var_ipc_timeout > INT_MAX / 1000 ? INT_MAX : var_ipc_timeout * 1000));
    return s;
}


/* ---------------------------------------------------------------- */
/* Event-loop helpers of MULTI and TRIGGER                          */

/* srv_idle_fire - max_idle passed without work */
static void srv_idle_fire(void *ctx)
{
    (void) ctx;
    srv_idle_timer = 0;
    srv_idle_expired = true;
}

/* srv_idle_arm - (re)start the idle timer */
void srv_idle_arm(void)
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
void srv_idle_disarm(void)
{
    if (srv_idle_timer)
	event_timer_cancel(srv_idle_timer);
    srv_idle_timer = 0;
}

/* srv_wake_cb - the self-pipe: a signal asked us to exit */
void srv_wake_cb(int fd, void *ctx)
{
    (void) fd;
    (void) ctx;
    srv_drain_wake();
}

/* The daemon's own descriptors in the event loop (server_watch_fd). */
static int srv_watched[SERVER_WATCH_MAX];
static int srv_watched_count;

/* server_watch_fd - (MULTI, TRIGGER) call fn(fd, ctx) whenever fd is
 * readable; watching a watched fd again replaces its callback */
void server_watch_fd(int fd, void (*fn)(int fd, void *ctx), void *ctx)
{
    int i;

    if (srv_spec == NULL || srv_spec->kind == SERVER_SINGLE)
	msg_panic("server_watch_fd: only MULTI and TRIGGER servers have an event loop");
    if (fd < 0 || fn == NULL)
	msg_panic("server_watch_fd: bad arguments");
    for (i = 0; i < srv_watched_count && srv_watched[i] != fd; i++)
	 /* void */ ;
    if (i == srv_watched_count) {
	if (srv_watched_count >= SERVER_WATCH_MAX)
	    msg_panic("server_watch_fd: more than %d descriptors", SERVER_WATCH_MAX);
	srv_watched[srv_watched_count++] = fd;
    }
    event_add_read(fd, fn, ctx);
}

/* server_unwatch_fd - stop watching fd (not watched: nothing happens) */
void server_unwatch_fd(int fd)
{
    for (int i = 0; i < srv_watched_count; i++) {
	if (srv_watched[i] == fd) {
	    srv_watched[i] = srv_watched[--srv_watched_count];
	    event_remove_read(fd);
	    return;
	}
    }
}

/* srv_stop_listening - no new clients for this process */
void srv_stop_listening(void)
{
    if (srv_listeners_closed)
	return;
    for (int i = 0; i < srv_listen_count; i++)
	event_remove(MASTER_LISTEN_FD + i);
    srv_close_listeners();
}
