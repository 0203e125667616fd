/* server.c - the daemon skeleton's common part: options, configuration,
 * logging, privilege drop, status reports to master, the watchdog,
 * signals, the table-change check, -S's stdio relay and the event-loop
 * helpers that MULTI and TRIGGER share (see server.h for the life cycle,
 * server_internal.h for how the skeleton is cut, and master_proto.h for
 * what master hands over). The loop of each kind is in server_single.c,
 * server_multi.c and server_trigger.c.
 *
 * Order matters and is fixed here, once, for every daemon: the log file
 * is opened and pre_init runs while the process may still be root; the
 * privilege drop (chroot, setgroups, setgid, setuid, verified) comes
 * before the first accept(2) or read(2) from a peer.
 *
 * System calls per connection or trigger are kept few: the watchdog
 * alarm(2) is armed once and moved lazily (a reset only notes the time;
 * the SIGALRM handler re-arms for the rest when there was progress), the
 * master's pid is compared with getppid(2) at most once a second (a dead
 * master also ends us by PR_SET_PDEATHSIG and by EPIPE on the status
 * pipe) and our pid is cached. */

/* system */
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
#include <sys/prctl.h>
#include <sys/socket.h>
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
#include "server_internal.h"
#include "table.h"


/* Options and state of this process. */
const struct server_spec *srv_spec;
static char srv_config_dir[PATH_MAX];
static char srv_service_name[256];
static char srv_service_type[16];
int srv_listen_count;
bool srv_stdin;
static int srv_status_fd = -1;
static int srv_config_fd = -1;		/* master's main.cf snapshot, until read */
long srv_use_count;
static pid_t srv_master_pid;
static pid_t srv_pid;			/* refreshed in a forked child */
static time_t srv_ppid_checked = -1;	/* second of the last getppid(2) */

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
volatile sig_atomic_t srv_listeners_closed;

void srv_close_listeners(void)
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
void srv_loop_once(void)
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
void srv_notify(int status)
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
    return !(srv_spec->flags & SERVER_FLAG_NO_MAX_USE) && srv_use_count >= var_max_use;
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

/* srv_stop_listening - no new clients for this process */
void srv_stop_listening(void)
{
    if (srv_listeners_closed)
	return;
    for (int i = 0; i < srv_listen_count; i++)
	event_remove(MASTER_LISTEN_FD + i);
    srv_close_listeners();
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
	case SERVER_SINGLE:
	    srv_single_stdin();
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
