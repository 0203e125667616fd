/* main.c - master, the supervisor: options, start-up, the main loop,
 * reload and stop.
 *
 *   master [-c config_dir] [-F] [-t] [-v]
 *
 * -t tests main.cf and master.cf and exits 0, or 1 with "file:line: why".
 * -F stays in the foreground and logs to stderr as well (so do the
 * children). Without -F master daemonizes, but the starting process waits
 * until the daemon holds the pid-file lock and has opened every listener,
 * and exits 0, or 1 after copying the daemon's error message to stderr:
 * `posthorn start` can report a failed start.
 *
 * Signals arrive through a self-pipe into one poll(2) loop, which also
 * watches the children's status pipes and, for services without an idle
 * child, their listeners. Each wake-up first recounts the idle children
 * from the services' scoreboards (master_recount). SIGHUP rereads both
 * files (a broken file is logged with file:line and the old
 * configuration stays); SIGTERM and SIGINT stop everything within
 * master_stop_timeout. */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* base */
#include "mem.h"
#include "msg.h"
#include "str.h"

/* mail */
#include "config.h"
#include "manifest.h"
#include "master_proto.h"
#include "mastercf.h"

/* master */
#include "master.h"

static int master_sig_pipe[2] = {-1, -1};
static int master_pid_fd = -1;
static bool master_daemon_starting;	/* stderr is the readiness pipe */
static int master_stderr_pipe = -1;	/* read end of the children's stderr */
static char master_stderr_buf[1024];	/* a partial line from it */
static size_t master_stderr_len;
static int master_sinks;

/* The poll set of the main loop (global, so that master_stop frees it). */
static struct pollfd *master_pfd;
static struct master_watch *master_watch_of;
static size_t master_poll_cap;

/* The last line the daemon writes into the readiness pipe. */
#define MASTER_READY_MARK	"\001master-ready\n"

/* master_sig - signal handler: the signal number into the self-pipe */
static void master_sig(int sig)
{
    int saved_errno = errno;
    unsigned char c = (unsigned char) sig;

    (void) !write(master_sig_pipe[1], &c, 1);
    errno = saved_errno;
}

/* master_signals - self-pipe and handlers */
static void master_signals(void)
{
    struct sigaction sa;
    static const int sigs[] = {SIGCHLD, SIGHUP, SIGTERM, SIGINT};

    if (pipe2(master_sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
	msg_fatal("pipe: %m");
    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    sa.sa_handler = master_sig;
    sa.sa_flags = SA_RESTART;
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
	sigaction(sigs[i], &sa, NULL);
}

/* master_usage - bad command line */
static _Noreturn void master_usage(void)
{
    msg_fatal("usage: master [-c config_dir] [-F] [-t] [-v]");
}

/* master_daemonize - fork; the parent waits for the daemon to be ready */
static void master_daemonize(void)
{
    int p[2], nullfd;
    pid_t pid;

    if (pipe2(p, O_CLOEXEC) < 0)
	msg_fatal("pipe: %m");
    fflush(stdout);
    fflush(stderr);
    if ((pid = fork()) < 0)
	msg_fatal("fork: %m");
    if (pid > 0) {
	struct str *text = str_new(65536);
	char buf[4096];
	ssize_t n;
	size_t mark = strlen(MASTER_READY_MARK);

	close(p[1]);
	while ((n = read(p[0], buf, sizeof(buf))) != 0) {
	    if (n < 0) {
		if (errno == EINTR)
		    continue;
		break;
	    }
	    if (!str_try_append(text, buf, (size_t) n))
		continue;		/* full: the start says what went wrong */
	}
	if (str_len(text) >= mark
	    && memcmp(str_cstr(text) + str_len(text) - mark, MASTER_READY_MARK, mark) == 0)
	    _exit(0);
	if (str_len(text) == 0)
	    str_appends_or_panic(text, "master: fatal: the daemon process died during start-up\n");
	(void) !write(STDERR_FILENO, str_cstr(text), str_len(text));
	_exit(1);
    }
    close(p[0]);
    if (setsid() < 0)
	msg_fatal("setsid: %m");
    if ((nullfd = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)
	msg_fatal("open /dev/null: %m");
    if (dup2(nullfd, STDIN_FILENO) < 0 || dup2(nullfd, STDOUT_FILENO) < 0
	|| dup2(p[1], STDERR_FILENO) < 0)
	msg_fatal("dup2: %m");
    close(nullfd);
    close(p[1]);
    master_daemon_starting = true;
}

/* master_ready - tell the waiting parent; stderr becomes a pipe that
 * master reads (the children inherit it), so what a child writes to
 * stderr before its own logging is set up still reaches the log */
static void master_ready(void)
{
    int p[2];

    if (!master_daemon_starting)
	return;
    (void) !write(STDERR_FILENO, MASTER_READY_MARK, strlen(MASTER_READY_MARK));
    /* Non-blocking on both ends: a child never waits for master. */
    if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
	msg_fatal("pipe: %m");
    msg_set_sinks(master_sinks & ~MSG_TO_STDERR);
    if (dup2(p[1], STDERR_FILENO) < 0)
	msg_fatal("dup2: %m");
    close(p[1]);
    master_stderr_pipe = p[0];
    master_daemon_starting = false;
}

/* master_stderr_line - log one line a child wrote to stderr */
static void master_stderr_line(const char *line, size_t len)
{
    char text[sizeof(master_stderr_buf) + 1];
    size_t n = 0;

    for (size_t i = 0; i < len && n < sizeof(text) - 1; i++)
	text[n++] = (line[i] >= 0x20 && line[i] < 0x7f) ? line[i] : '?';
    text[n] = 0;
    if (n > 0)
	msg_warn("child stderr: %s", text);
}

/* master_stderr_read - what the children wrote to stderr, line by line */
static void master_stderr_read(void)
{
    char buf[4096];
    ssize_t got;

    while ((got = read(master_stderr_pipe, buf, sizeof(buf))) > 0) {
	for (ssize_t i = 0; i < got; i++) {
	    if (buf[i] == '\n' || master_stderr_len == sizeof(master_stderr_buf)) {
		master_stderr_line(master_stderr_buf, master_stderr_len);
		master_stderr_len = 0;
		if (buf[i] == '\n')
		    continue;
	    }
	    master_stderr_buf[master_stderr_len++] = buf[i];
	}
    }
}

/* master_lock_pid - take $queue_directory/pid/master.pid for life */
static void master_lock_pid(void)
{
    char path[PATH_MAX], buf[32];
    struct flock fl;
    int fd;

    if (!fmt_try_buf(path, sizeof(path), "%s/%s", master_conf->queue_directory, MASTER_PID_FILE))
	msg_fatal("queue_directory too long");
    if ((fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644)) < 0)
	msg_fatal("open %s: %m", path);
    memset(&fl, 0, sizeof(fl));
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (fcntl(fd, F_SETLK, &fl) < 0) {
	if (errno != EAGAIN && errno != EACCES)
	    msg_fatal("lock %s: %m", path);
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	if (fcntl(fd, F_GETLK, &fl) < 0)
	    fl.l_pid = 0;
	msg_fatal("another master process (pid %ld) is using queue_directory %s",
		  (long) fl.l_pid, master_conf->queue_directory);
    }
    if (ftruncate(fd, 0) < 0)
	msg_fatal("truncate %s: %m", path);
    fmt_buf_or_panic(buf, sizeof(buf), "%10ld\n", (long) getpid());
    if (pwrite(fd, buf, strlen(buf), 0) != (ssize_t) strlen(buf))
	msg_fatal("write %s: %m", path);
    master_pid_fd = fd;
}

/* master_manifest_report - findings of the directory check */
static void master_manifest_report(enum manifest_level level, const char *text, void *ctx)
{
    (void) ctx;
    if (level == MANIFEST_FIXED)
	msg_info("%s", text);
    else
	msg_warn("%s", text);
}

/* master_check_dirs - the queue directories exist with the right modes */
static void master_check_dirs(void)
{
    struct manifest_ids ids;
    const char *err;

    if (manifest_ids_resolve(master_conf->mail_owner, master_conf->setgid_group, &ids, &err) < 0)
	msg_fatal("%s", err);
    (void) manifest_check(master_conf->queue_directory, master_conf->data_directory, &ids,
			  MANIFEST_REPAIR, master_manifest_report, NULL);
}

/* master_logging - "$syslog_name/master" to maillog_file or syslog */
static void master_logging(void)
{
    char progname[128];
    const char *err;

    if (!fmt_try_buf(progname, sizeof(progname), "%s/master", var_syslog_name))
	msg_fatal("syslog_name too long");
    /* stderr until ready, or for good with -F; but not when stderr is the
     * systemd journal, which gets the syslog lines already (once, not
     * twice) */
    master_sinks = master_stderr_is_journal() ? 0 : MSG_TO_STDERR;
    if (*var_maillog_file) {
	if (!msg_set_file(var_maillog_file, &err))
	    msg_fatal("maillog_file: %s", err);
	master_sinks |= MSG_TO_FILE;
    } else {
	master_sinks |= MSG_TO_SYSLOG;
    }
    if (master_sinks == 0)
	master_sinks = MSG_TO_STDERR;
    msg_init(progname, master_sinks);
    if (!msg_set_syslog_facility(var_syslog_facility))
	msg_warn("unknown syslog_facility \"%s\" -- using mail", var_syslog_facility);
}

/* master_logging_reload - after a reload: the (maybe new) maillog_file
 * or syslog, so that master's own lines (a child's fatal error) go where
 * the daemons' go; stderr only as before (master -F) */
static void master_logging_reload(void)
{
    char progname[128];
    const char *err;
    int sinks = master_sinks & MSG_TO_STDERR;

    if (!master_foreground)
	sinks = 0;
    if (!fmt_try_buf(progname, sizeof(progname), "%s/master", var_syslog_name))
	return;
    if (*var_maillog_file) {
	if (!msg_set_file(var_maillog_file, &err)) {
	    msg_warn("reload: maillog_file: %s -- keeping the old log destination", err);
	    return;
	}
	sinks |= MSG_TO_FILE;
    } else {
	sinks |= MSG_TO_SYSLOG;
    }
    master_sinks = sinks;
    msg_init(progname, sinks);
    (void) msg_set_syslog_facility(var_syslog_facility);
}

/* master_reload - SIGHUP: reread both files */
static void master_reload(void)
{
    struct master_conf *newconf;
    const char *err;

    if ((newconf = master_conf_load(master_conf->config_dir, &err)) == NULL) {
	msg_warn("reload: %s -- keeping the old configuration", err);
	return;
    }
    if (strcmp(newconf->queue_directory, master_conf->queue_directory) != 0) {
	msg_warn("reload: queue_directory changed to %s -- that needs a restart; "
		 "keeping %s", newconf->queue_directory, master_conf->queue_directory);
	mem_free(&newconf->queue_directory);
	newconf->queue_directory = mem_strdup(master_conf->queue_directory);
    }
    if (geteuid() == 0 && !newconf->owner_known) {
	msg_warn("reload: mail_owner %s: unknown user -- keeping the old configuration",
		 newconf->mail_owner);
	master_conf_free(&newconf);
	return;
    }
    if (master_services_reload(newconf) < 0)
	return;
    master_logging_reload();
    msg_info("reload -- version %s, configuration %s", POSTHORN_VERSION, master_conf->config_dir);
}

/* master_drain_signals - read the self-pipe; returns a bit per signal */
static unsigned master_drain_signals(int *term_sig)
{
    unsigned char buf[64];
    unsigned got = 0;
    ssize_t n;

    while ((n = read(master_sig_pipe[0], buf, sizeof(buf))) > 0) {
	for (ssize_t i = 0; i < n; i++) {
	    switch (buf[i]) {
	    case SIGCHLD:
		got |= 1;
		break;
	    case SIGHUP:
		got |= 2;
		break;
	    case SIGTERM:
	    case SIGINT:
		got |= 4;
		*term_sig = buf[i];
		break;
	    }
	}
    }
    return got;
}

/* master_stop - close listeners, stop children, exit 0 */
static _Noreturn void master_stop(int sig)
{
    long long deadline;
    int dummy;

    master_stopping = true;
    msg_info("terminating on signal %d", sig);
    master_services_stop();
    master_children_kill(SIGTERM);
    deadline = master_now_ms() + master_conf->master_stop_timeout * 1000LL;
    while (master_child_count() > 0 && master_now_ms() < deadline) {
	struct pollfd p = {.fd = master_sig_pipe[0], .events = POLLIN};

	(void) poll(&p, 1, 100);
	(void) master_drain_signals(&dummy);
	master_reap();
    }
    if (master_child_count() > 0) {
	msg_warn("%d process%s did not stop within %lds -- killing", master_child_count(),
		 master_child_count() == 1 ? "" : "es", master_conf->master_stop_timeout);
	master_children_kill(SIGKILL);
	while (master_child_count() > 0) {
	    struct pollfd p = {.fd = master_sig_pipe[0], .events = POLLIN};

	    (void) poll(&p, 1, 100);
	    (void) master_drain_signals(&dummy);
	    master_reap();
	}
    }
    close(master_pid_fd);				/* releases the lock */
    master_pid_fd = -1;
    mem_free(&master_pfd);
    mem_free(&master_watch_of);
    master_conf_free(&master_conf);
    exit(0);
}

/* What one pollfd stands for. */
struct master_watch {
    struct master_service *serv;
    int what;				/* -2 children's stderr, -1 status pipe,
					 * 0.. listener index */
};

/* master_loop - wait, then handle signals, status, and spawn requests */
static _Noreturn void master_loop(void)
{
    struct pollfd *pfd = master_pfd;
    struct master_watch *watch = master_watch_of;
    size_t cap = master_poll_cap;

    for (;;) {
	int timeout;
	size_t n = 0, need = 2;
	unsigned got;
	int term_sig = 0;

	/* idle counts from the scoreboards, before any decision */
	master_recount();
	timeout = master_service_timers();
	for (struct master_service *s = master_services; s; s = s->next)
	    need += 1 + (size_t) s->listen_count;
	if (need > cap) {
	    cap = need * 2;
	    master_pfd = pfd = mem_realloc(pfd, mem_size_mul(cap, sizeof(*pfd)));
	    master_watch_of = watch = mem_realloc(watch, mem_size_mul(cap, sizeof(*watch)));
	    master_poll_cap = cap;
	}
	pfd[n] = (struct pollfd) {.fd = master_sig_pipe[0], .events = POLLIN};
	watch[n++] = (struct master_watch) {NULL, -1};
	/* always present (fd -1 is ignored by poll), so it is pfd[1] */
	pfd[n] = (struct pollfd) {.fd = master_stderr_pipe, .events = POLLIN};
	watch[n++] = (struct master_watch) {NULL, -2};
	for (struct master_service *s = master_services; s; s = s->next) {
	    pfd[n] = (struct pollfd) {.fd = s->status_fd[0], .events = POLLIN};
	    watch[n++] = (struct master_watch) {s, -1};
	    if (!master_service_wants_spawn(s) && !master_stress_wants_watch(s))
		continue;
	    for (int i = 0; i < s->listen_count; i++) {
		pfd[n] = (struct pollfd) {.fd = s->listen[i].fd, .events = POLLIN};
		watch[n++] = (struct master_watch) {s, i};
	    }
	}
	if (poll(pfd, (nfds_t) n, timeout) < 0) {
	    if (errno == EINTR)
		continue;
	    msg_fatal("poll: %m");
	}
	got = pfd[0].revents ? master_drain_signals(&term_sig) : 0;
	if (pfd[1].revents)
	    master_stderr_read();
	if (got & 4)
	    master_stop(term_sig);
	for (size_t i = 2; i < n; i++)
	    if (pfd[i].revents && watch[i].what == -1)
		master_status_read(watch[i].serv);
	if (got & 1) {
	    master_status_drain_all();
	    master_reap();
	}
	master_recount();			/* after the records and the reaping */
	for (size_t i = 2; i < n; i++) {
	    struct master_service *s = watch[i].serv;

	    if (!pfd[i].revents || watch[i].what < 0)
		continue;
	    if (master_service_wants_spawn(s))
		master_spawn(s);
	    else if (master_stress_wants_watch(s))
		master_stress_on(s, watch[i].what);
	}
	if (got & 2)
	    master_reload();
    }
}

int main(int argc, char **argv)
{
    const char *config_dir = NULL;
    bool test_only = false;
    const char *err;
    int ch;

    umask(022);
    msg_init("posthorn/master", MSG_TO_STDERR);
    while ((ch = getopt(argc, argv, "c:Ftv")) != -1) {
	switch (ch) {
	case 'c':
	    config_dir = optarg;
	    break;
	case 'F':
	    master_foreground = true;
	    break;
	case 't':
	    test_only = true;
	    break;
	case 'v':
	    msg_verbose++;
	    break;
	default:
	    master_usage();
	}
    }
    if (optind != argc)
	master_usage();
    if (config_dir == NULL)
	config_dir = getenv(MASTER_ENV_CONFIG_DIR);
    if (config_dir == NULL || *config_dir == 0)
	config_dir = DEF_CONFIG_DIR;

    if ((master_conf = master_conf_load(config_dir, &err)) == NULL)
	msg_fatal("%s", err);
    if (master_conf_check(master_conf, &err) < 0)
	msg_fatal("%s", err);
    if (geteuid() == 0 && !master_conf->owner_known)
	msg_fatal("%s: mail_owner = %s: unknown user",
		  config_where("mail_owner") ? config_where("mail_owner") : "main.cf",
		  master_conf->mail_owner);
    if (geteuid() == 0 && master_conf->owner_uid == 0)
	msg_fatal("mail_owner = %s: must not be root", master_conf->mail_owner);
    if (test_only)
	exit(0);
    /* Not root: everything runs as the invoking user, which only works
     * with a private configuration that says so (not a system one). */
    if (geteuid() != 0 && (!master_conf->owner_known || master_conf->owner_uid != geteuid())) {
	struct passwd *pw = getpwuid(geteuid());

	msg_fatal("must be run as root (or use a private configuration): mail_owner = %s, "
		  "and this is uid %ld%s%s%s", master_conf->mail_owner, (long) geteuid(),
		  pw ? " (" : "", pw ? pw->pw_name : "", pw ? ")" : "");
    }

    master_logging();
    if (!master_foreground)
	master_daemonize();
    if (chdir(master_conf->queue_directory) < 0)
	msg_fatal("chdir %s: %m", master_conf->queue_directory);
    master_check_dirs();
    master_lock_pid();
    master_signals();
    master_services_start(master_conf);
    msg_info("daemon started -- version %s, configuration %s", POSTHORN_VERSION,
	     master_conf->config_dir);
    master_ready();
    (void) malloc_trim(0);		/* the start-up's freed heap */
    master_loop();
}
