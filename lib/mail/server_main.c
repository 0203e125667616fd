/* server_main.c - the daemon skeleton's start-up, server_main(): options,
 * configuration,
 * logging, the privilege drop, the inherited descriptors and the signal
 * handlers, then the loop of the daemon's kind (see server.h for the life
 * cycle, server_internal.h for how the skeleton is cut, and
 * master_proto.h for what master hands over). The loops are in
 * server_single.c, server_multi.c and server_trigger.c, what they share
 * in server.c.
 *
 * Order matters and is fixed here, once, for every daemon: the log file
 * is opened and pre_init runs while the process may still be root; the
 * privilege drop (chroot, setgroups, setgid, setuid, verified) comes
 * before the first accept(2) or read(2) from a peer. */

/* system */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

/* base */
#include "mem.h"
#include "msg.h"
#include "privs.h"
#include "sock.h"
#include "str.h"

/* mail */
#include "config.h"
#include "master_proto.h"
#include "server.h"
#include "server_internal.h"

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

/* srv_sigstress - master: the service is in stress mode. The parameters
 * follow in the normal flow (srv_stress_apply); the self-pipe wakes an
 * idle loop, and a wait in progress returns EINTR to its wait hook. */
static void srv_sigstress(int sig)
{
    (void) sig;
    srv_stress = 1;
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
    sa.sa_handler = srv_sigstress;
    sigaction(MASTER_STRESS_SIGNAL, &sa, NULL);
}

/* srv_usage - bad command line */
static _Noreturn void srv_usage(const char *prog)
{
    msg_fatal("usage: %s [-c config_dir] [-n service] [-t inet|unix|fifo|pass] [-s count] "
	      "[-o name=value] [-u] [-C] [-v] [-S] [args...]", prog);
}

/* srv_fd_open - fd is an open descriptor */
static bool srv_fd_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

/* ---------------------------------------------------------------- */
/* Set-up                                                           */

/* master's main.cf snapshot, until read */
static int srv_config_fd = -1;

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
	if (spec->multi_input == NULL && spec->multi_accept == NULL)
	    msg_panic("server_main: MULTI without multi_input or multi_accept");
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

    if (!fmt_try_buf(progname, sizeof(progname), "%s/%s", var_syslog_name, srv_spec->name))
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

/* srv_take_scoreboard - the service's scoreboard and our slot in it
 * ("FD:SLOT" in MASTER_ENV_SCOREBOARD; the descriptor follows main.cf's).
 * The descriptor is closed once mapped. A board that cannot be mapped
 * leaves the status records alone to tell master (as without one). */
static void srv_take_scoreboard(void)
{
    const char *env = getenv(MASTER_ENV_SCOREBOARD);
    const char *colon;
    char fd_text[16];
    scoreboard_slot *slots;
    size_t count;
    long fd, slot;
    const char *err;

    if (env == NULL)
	return;
    if ((colon = strchr(env, ':')) == NULL || (size_t) (colon - env) >= sizeof(fd_text)
	|| !fmt_try_buf(fd_text, sizeof(fd_text), "%.*s", (int) (colon - env), env)
	|| !parse_long(fd_text, &fd) || !parse_long(colon + 1, &slot) || slot < 0
	|| fd != MASTER_LISTEN_FD + srv_listen_count + 1 || srv_config_fd < 0
	|| !srv_fd_open((int) fd))
	msg_fatal("%s=%.100s: not the scoreboard descriptor from master", MASTER_ENV_SCOREBOARD,
		  env);
    if (scoreboard_map((int) fd, &count, &slots, &err) < 0) {
	msg_warn("%s -- telling master by status records only", err);
    } else if ((size_t) slot >= count) {
	msg_warn("scoreboard slot %ld of %zu -- telling master by status records only", slot,
		 count);
	scoreboard_unmap(&slots, count);
    } else {
	srv_scoreboard_attach(slots, count, (size_t) slot);
    }
    (void) close((int) fd);
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
	srv_take_scoreboard();
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
    fmt_buf_or_panic(early_name, sizeof(early_name), "posthorn/%s", spec->name);
    msg_init(early_name, MSG_TO_STDERR | MSG_TO_SYSLOG);
    srv_signals();
    srv_master_pid = getppid();
    srv_pid = getpid();
    (void) pthread_atfork(NULL, NULL, srv_atfork_child);

    overrides = mem_alloc_array((size_t) argc + 1, sizeof(char *));
    str_copy_out_or_panic(srv_service_name, sizeof(srv_service_name), spec->name);
    opterr = 0;
    while ((ch = getopt(argc, argv, "+c:n:t:s:o:uCvS")) != -1) {
	switch (ch) {
	case 'c':
	    config_dir = optarg;
	    break;
	case 'n':
	    if (!str_try_copy_out(srv_service_name, sizeof(srv_service_name), optarg))
		msg_fatal("service name too long: %.100s", optarg);
	    break;
	case 't':
	    if (strcmp(optarg, "inet") != 0 && strcmp(optarg, "unix") != 0
		&& strcmp(optarg, "fifo") != 0 && strcmp(optarg, "pass") != 0)
		msg_fatal("bad service type: %.100s", optarg);
	    str_copy_out_or_panic(srv_service_type, sizeof(srv_service_type), optarg);
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
	    srv_chroot = true;
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
    if (!str_try_copy_out(srv_config_dir, sizeof(srv_config_dir), config_dir))
	msg_fatal("configuration directory name too long");

    /* Configuration: from master, the main.cf text that it validated (so
     * an edit that no reload accepted never reaches a new child); run by
     * hand, the file. */
    config_init();
    if (srv_config_fd >= 0) {
	char path[PATH_MAX];

	fmt_buf_cut(path, sizeof(path), "%s/main.cf", srv_config_dir);
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
    if (strcmp(var_stress, "yes") == 0)
	srv_stress_started();		/* -o stress=yes from master */

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
    if (spec->kind != SERVER_SINGLE && strcmp(srv_service_type, "pass") == 0)
	msg_fatal("only a single-client server can take handed-over clients (-t pass)");

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
    /* give back the heap the start-up freed (configuration files read,
     * tables grown by doubling): 4-20 KiB of PSS per process */
    (void) malloc_trim(0);
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
