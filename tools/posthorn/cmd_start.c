/* cmd_start.c - posthorn start, stop, reload, status: the master's life.
 *
 * The master holds a fcntl write lock on $queue_directory/pid/master.pid
 * for as long as it lives. That lock, not the pid written in the file,
 * is the truth: F_GETLK names the holder, and a stale file left by a
 * crash holds no lock. So "running" means "somebody holds the lock",
 * "stopped" means "the lock is free", and stop waits for the lock to be
 * released and then for that process to be gone. */

/* System library. */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Base library. */
#include "msg.h"
#include "str.h"

/* Mail library. */
#include "config.h"

/* This program. */
#include "posthorn.h"

/* pid_from_file - the pid written in the pid file (for OFD locks, whose
 * holder F_GETLK cannot name); 0 if none */
static pid_t pid_from_file(int fd)
{
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    long pid;

    if (n <= 0)
	return 0;
    buf[n] = 0;
    pid = strtol(buf, NULL, 10);
    return pid > 0 ? (pid_t) pid : 0;
}

/* ph_master_pid - who holds the master lock */
pid_t ph_master_pid(const char **error_r)
{
    static char error[4200];
    char path[4096];
    struct flock lock;
    pid_t pid;
    int fd;

    if (!fmt_try_buf(path, sizeof(path), "%s/pid/master.pid", var_queue_directory)) {
	*error_r = "queue_directory: path too long";
	return -1;
    }
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)) < 0) {
	if (errno == ENOENT)
	    return 0;
	fmt_buf_cut(error, sizeof(error), "open %s: %s", path, strerror(errno));
	*error_r = error;
	return -1;
    }
    memset(&lock, 0, sizeof(lock));
    lock.l_type = F_WRLCK;
    lock.l_whence = SEEK_SET;
    if (fcntl(fd, F_GETLK, &lock) < 0) {
	fmt_buf_cut(error, sizeof(error), "lock test %s: %s", path, strerror(errno));
	*error_r = error;
	close(fd);
	return -1;
    }
    if (lock.l_type == F_UNLCK)
	pid = 0;
    else if ((pid = lock.l_pid) <= 0 && (pid = pid_from_file(fd)) <= 0)
	pid = 1;			/* locked, holder unknown */
    close(fd);
    return pid;
}

/* load_or_fail - configuration for start, which refuses a broken one:
 * PH_EXIT_CONFIG when main.cf has errors */
static int load_or_fail(void)
{
    if (ph_load_config(false) < 0) {
	fprintf(stderr, "posthorn: fix %s/main.cf first\n", ph_config_dir);
	return -1;
    }
    return 0;
}

/* invoker_may_start - root, or the mail_owner of a private configuration
 * (a normal user's sandbox); else say so before touching anything */
static bool invoker_may_start(void)
{
    struct passwd *owner, *self;

    if (geteuid() == 0)
	return true;
    owner = getpwnam(var_mail_owner);
    if (owner != NULL && owner->pw_uid == geteuid())
	return true;
    self = getpwuid(geteuid());
    ph_error("start must be run as root (or use a private configuration): "
	     "%s/main.cf has mail_owner = %s, and you are %s; a private configuration "
	     "(posthorn -c DIR) with mail_owner = %s runs everything as you",
	     ph_config_dir, var_mail_owner, self ? self->pw_name : "another user",
	     self ? self->pw_name : "you");
    return false;
}

/* load_paths - configuration for status and stop: finding and stopping a
 * running master must not depend on main.cf being valid (the pid lock
 * under queue_directory is what counts), so errors are only warnings and
 * the values that could be read are used */
static void load_paths(void)
{
    if (ph_load_config(true) < 0)
	fprintf(stderr, "posthorn: warning: %s/main.cf has errors (see posthorn check); "
		"using what could be read\n", ph_config_dir);
}

/* running_pid - the master's pid, 0 if none; reports errors */
static pid_t running_pid(void)
{
    const char *error;
    pid_t pid = ph_master_pid(&error);

    if (pid < 0)
	ph_error("%s", error);
    return pid;
}

/* cmd_status - posthorn status */
int cmd_status(int argc, char **argv)
{
    pid_t pid;

    (void) argv;
    if (argc != 1)
	return ph_usage("status");
    load_paths();
    if ((pid = running_pid()) < 0)
	return 1;
    if (pid == 0) {
	printf("posthorn: not running\n");
	return 1;
    }
    printf("posthorn: running (master pid %ld)\n", (long) pid);
    return 0;
}

/* process_gone - the process no longer runs (it may be a zombie) */
static bool process_gone(pid_t pid)
{
    char path[64], buf[256];
    const char *state;
    ssize_t n;
    int fd;

    if (kill(pid, 0) < 0 && errno == ESRCH)
	return true;
    fmt_buf_or_panic(path, sizeof(path), "/proc/%ld/stat", (long) pid);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
	return false;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
	return false;
    buf[n] = 0;
    /* "pid (comm) S ...": the state follows the last ')' */
    state = strrchr(buf, ')');
    return state != NULL && state[1] == ' ' && (state[2] == 'Z' || state[2] == 'X');
}

/* wait_for_stop - poll until the lock is free and the master process is
 * gone (it may release the lock a moment before it exits), or the
 * deadline passes */
static bool wait_for_stop(pid_t pid, long seconds)
{
    struct timespec tick = {0, 50 * 1000 * 1000};
    const char *error;
    long rounds = seconds * 20;

    for (long i = 0; i <= rounds; i++) {
	if (ph_master_pid(&error) == 0 && process_gone(pid))
	    return true;
	if (i < rounds)
	    nanosleep(&tick, NULL);
    }
    return false;
}

/* cmd_stop - posthorn stop: SIGTERM, then wait for the lock */
int cmd_stop(int argc, char **argv)
{
    long timeout;
    pid_t pid;

    (void) argv;
    if (argc != 1)
	return ph_usage("stop");
    load_paths();
    if ((pid = running_pid()) < 0)
	return 1;
    if (pid == 0) {
	fprintf(stderr, "posthorn: not running\n");
	return 1;
    }
    if (kill(pid, SIGTERM) < 0 && errno != ESRCH) {
	ph_error("kill -TERM %ld (master): %s", (long) pid, strerror(errno));
	return 1;
    }
    /* The master gives its children master_stop_timeout, then kills. */
    timeout = var_master_stop_timeout + 10;
    if (!wait_for_stop(pid, timeout)) {
	ph_error("master (pid %ld) has not exited %ld seconds after SIGTERM",
		 (long) pid, timeout);
	return 1;
    }
    fprintf(stderr, "posthorn: stopped (master pid %ld)\n", (long) pid);
    return 0;
}

/* log_refused_reload - the operator's terminal is not the only witness:
 * the mail log says too that the running configuration stays */
static void log_refused_reload(int errors)
{
    const char *err;
    int sinks = msg_get_sinks();

    if (*var_maillog_file) {
	if (!msg_set_file(var_maillog_file, &err))
	    return;
	msg_set_sinks(MSG_TO_FILE);
    } else {
	msg_set_sinks(MSG_TO_SYSLOG);
    }
    msg_warn("reload refused, master keeps the running configuration: %s%s", ph_first_error,
	     errors > 1 ? " (and more: run posthorn check)" : "");
    msg_set_sinks(sinks);
}

/* cmd_reload - posthorn reload: check, then SIGHUP */
int cmd_reload(int argc, char **argv)
{
    pid_t pid;
    int errors;

    (void) argv;
    if (argc != 1)
	return ph_usage("reload");
    /* a table the running system needs must exist before a reload: the
     * operator is here to fix it (at start it only warns: see cmd_start) */
    errors = ph_check_config();
    errors += ph_check_tables();
    if (errors > 0) {
	fprintf(stderr, "posthorn: not reloading: fix the errors above first\n");
	log_refused_reload(errors);
	return PH_EXIT_CONFIG;
    }
    if ((pid = running_pid()) < 0)
	return 1;
    if (pid == 0) {
	fprintf(stderr, "posthorn: not running\n");
	return 1;
    }
    if (kill(pid, SIGHUP) < 0) {
	ph_error("kill -HUP %ld (master): %s", (long) pid, strerror(errno));
	return 1;
    }
    fprintf(stderr, "posthorn: reloading (master pid %ld)\n", (long) pid);
    return 0;
}

/* cmd_start - posthorn start [-F]: check and repair, then run master */
int cmd_start(int argc, char **argv)
{
    bool foreground = false;
    char master[4096];
    char *margv[8];
    int margc = 0;
    int status;
    pid_t pid;
    int ch;

    while ((ch = getopt(argc, argv, "+F")) != -1) {
	switch (ch) {
	case 'F':
	    foreground = true;
	    break;
	default:
	    return ph_usage("start");
	}
    }
    if (optind != argc)
	return ph_usage("start");
    if (load_or_fail() < 0)
	return PH_EXIT_CONFIG;
    if (!invoker_may_start())
	return 1;
    if ((pid = running_pid()) < 0)
	return 1;
    if (pid > 0) {
	ph_error("already running (master pid %ld)", (long) pid);
	return 1;
    }
    /* A missing table must not keep everything else from running (after
     * a reboot, say): it is a warning here, and the mail that needs it
     * is deferred (4.3.0) until it is built. */
    ph_tables_warn_only = true;
    if (ph_check_all() > 0) {
	fprintf(stderr, "posthorn: not starting: fix the errors above first\n");
	return PH_EXIT_CONFIG;
    }
    if (!fmt_try_buf(master, sizeof(master), "%s/master", var_daemon_directory)) {
	ph_error("daemon_directory: path too long");
	return 1;
    }
    margv[margc++] = master;
    margv[margc++] = (char *) "-c";
    margv[margc++] = (char *) ph_config_dir;
    if (foreground)
	margv[margc++] = (char *) "-F";
    if (msg_verbose)
	margv[margc++] = (char *) "-v";
    margv[margc] = NULL;
    fflush(stdout);
    fflush(stderr);

    /* Foreground: become the master, so Ctrl-C and the service manager's
     * signals reach it directly. */
    if (foreground) {
	execv(master, margv);
	ph_error("exec %s: %s", master, strerror(errno));
	return 1;
    }

    /* Background: the master's first process exits 0 once the daemon is
     * ready (listeners open, lock held), or 1 after printing the error. */
    switch (pid = fork()) {
    case -1:
	ph_error("fork: %s", strerror(errno));
	return 1;
    case 0:
	execv(master, margv);
	fprintf(stderr, "posthorn: error: exec %s: %s\n", master, strerror(errno));
	_exit(127);
    }
    while (waitpid(pid, &status, 0) < 0) {
	if (errno != EINTR) {
	    ph_error("waitpid: %s", strerror(errno));
	    return 1;
	}
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
	if (WIFSIGNALED(status))
	    ph_error("master was killed by signal %d while starting", WTERMSIG(status));
	else
	    ph_error("master did not start (exit status %d)", WEXITSTATUS(status));
	return 1;
    }
    if ((pid = running_pid()) > 0)
	fprintf(stderr, "posthorn: started (master pid %ld)\n", (long) pid);
    else
	fprintf(stderr, "posthorn: started\n");
    return 0;
}
