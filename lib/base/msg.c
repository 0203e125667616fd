/* msg.c - diagnostics to stderr, syslog and an append-only log file.
 *
 * Each message is formatted once into a bounded stack buffer and written
 * with a single write(2) per sink, so lines from many processes sharing
 * one O_APPEND log file never interleave. Newlines and control characters
 * in the text are replaced, so a log line is always one line.
 *
 * Cost per log-file line: the process id is cached (a pthread_atfork
 * child handler refreshes it, so a forked child logs its own pid; a
 * vfork child must not log before it execs), the formatted time stamp is
 * reused while the second does not change, and the fixed parts of the
 * line are copied, not formatted. */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "errtext.h"
#include "msg.h"

#define MSG_LINE_MAX 4096

int msg_verbose;

static char msg_name[64] = "posthorn";
static int msg_sinks = MSG_TO_STDERR;
static int msg_file_fd = -1;
static int msg_facility = LOG_MAIL;
static bool msg_syslog_open;
static void (*msg_fatal_hook)(void);
static struct errtext msg_error;	/* the text behind error_r */
static char msg_hostname[256];

/* The pid, refreshed in a forked child (msg_pid_refresh). */
static pid_t msg_pid;
static bool msg_atfork_done;

/* " host name[pid]: " of a log-file line, rebuilt when a part changes */
static char msg_file_prefix[512];
static size_t msg_file_prefix_len;
static pid_t msg_file_prefix_pid;

/* The last time stamp: its second and its text ("%b %e %H:%M:%S"). */
static time_t msg_stamp_time = (time_t) -1;
static char msg_stamp[64];
static size_t msg_stamp_len;

/* msg_pid_refresh - atfork child handler: the child has a new pid */
static void msg_pid_refresh(void)
{
    msg_pid = getpid();
}

/* msg_pid_get - the pid of this process, without a system call after
 * the first one */
static pid_t msg_pid_get(void)
{
    if (!msg_atfork_done) {
	msg_atfork_done = true;
	(void) pthread_atfork(NULL, NULL, msg_pid_refresh);
	msg_pid = getpid();
    }
    return msg_pid;
}

pid_t msg_getpid(void)
{
    return msg_pid_get();
}

/* msg_file_prefix_build - " host name[pid]: " for this pid */
static void msg_file_prefix_build(pid_t pid)
{
    int len = snprintf(msg_file_prefix, sizeof(msg_file_prefix), " %s %s[%ld]: ",
		       msg_hostname[0] ? msg_hostname : "localhost", msg_name, (long) pid);

    if (len < 0)
	len = 0;
    msg_file_prefix_len = (size_t) len < sizeof(msg_file_prefix)
	? (size_t) len : sizeof(msg_file_prefix) - 1;
    msg_file_prefix_pid = pid;
}

/* msg_stamp_get - the time stamp of now, formatted once per second */
static const char *msg_stamp_get(size_t *len_r)
{
    time_t now = time(NULL);

    if (now != msg_stamp_time) {
	struct tm tm;

	localtime_r(&now, &tm);
	msg_stamp_len = strftime(msg_stamp, sizeof(msg_stamp), "%b %e %H:%M:%S", &tm);
	msg_stamp_time = now;
    }
    *len_r = msg_stamp_len;
    return msg_stamp;
}

void msg_init(const char *progname, int sinks)
{
    snprintf(msg_name, sizeof(msg_name), "%s", progname);
    msg_sinks = sinks;
    if (gethostname(msg_hostname, sizeof(msg_hostname) - 1) != 0)
	snprintf(msg_hostname, sizeof(msg_hostname), "localhost");
    msg_hostname[strcspn(msg_hostname, ".")] = 0;
    msg_file_prefix_pid = 0;			/* rebuild the prefix */
    if (msg_syslog_open) {
	closelog();
	msg_syslog_open = false;
    }
}

const char *msg_progname(void)
{
    return msg_name;
}

void msg_set_sinks(int sinks)
{
    msg_sinks = sinks;
}

int msg_get_sinks(void)
{
    return msg_sinks;
}

void msg_set_fatal_hook(void (*hook)(void))
{
    msg_fatal_hook = hook;
}

bool msg_set_syslog_facility(const char *name)
{
    static const struct {
	const char *name;
	int facility;
    } facilities[] = {
	{"mail", LOG_MAIL}, {"daemon", LOG_DAEMON}, {"user", LOG_USER},
	{"local0", LOG_LOCAL0}, {"local1", LOG_LOCAL1}, {"local2", LOG_LOCAL2},
	{"local3", LOG_LOCAL3}, {"local4", LOG_LOCAL4}, {"local5", LOG_LOCAL5},
	{"local6", LOG_LOCAL6}, {"local7", LOG_LOCAL7},
    };
    for (size_t i = 0; i < sizeof(facilities) / sizeof(facilities[0]); i++) {
	if (strcmp(facilities[i].name, name) == 0) {
	    msg_facility = facilities[i].facility;
	    return true;
	}
    }
    return false;
}

bool msg_set_file(const char *path, const char **error_r)
{
    /* 0640: log lines hold addresses, not for every local user */
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);

    if (fd < 0) {
	(void) errtext_fail(&msg_error, error_r, "open %s: %s", path, strerror(errno));
	return false;
    }
    if (msg_file_fd >= 0)
	close(msg_file_fd);
    msg_file_fd = fd;
    return true;
}

/* write_all - one write(2), retried only for the unwritten tail */
static void write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
	ssize_t n = write(fd, buf, len);

	if (n < 0 && errno == EINTR)
	    continue;
	if (n <= 0)
	    return;
	buf += n;
	len -= (size_t) n;
    }
}

void msg_vlog(int level, const char *fmt, va_list ap)
{
    static const char *const prefix[] = {"", "warning: ", "fatal: ", "panic: "};
    static const int priority[] = {LOG_INFO, LOG_WARNING, LOG_CRIT, LOG_CRIT};
    char text[MSG_LINE_MAX];
    char line[MSG_LINE_MAX + 512];
    int saved_errno = errno;
    size_t text_len;
    char *cp;
    int len;

    errno = saved_errno;			/* for %m */
    len = vsnprintf(text, sizeof(text), fmt, ap);
    if (len < 0)
	text[0] = 0;
    for (cp = text; *cp; cp++)
	if ((unsigned char) *cp < 0x20 || *cp == 0x7f)
	    *cp = '?';
    text_len = (size_t) (cp - text);

    if (msg_sinks & MSG_TO_STDERR) {
	len = snprintf(line, sizeof(line), "%s: %s%s\n", msg_name, prefix[level], text);
	if (len > 0)
	    write_all(STDERR_FILENO, line, (size_t) len < sizeof(line) ? (size_t) len : sizeof(line) - 1);
    }
    if ((msg_sinks & MSG_TO_FILE) && msg_file_fd >= 0) {
	/* "stamp host name[pid]: <level>text\n", as one write */
	pid_t pid = msg_pid_get();
	size_t stamp_len, pos = 0;
	const char *stamp = msg_stamp_get(&stamp_len);
	const char *parts[4];
	size_t lens[4];

	if (pid != msg_file_prefix_pid)
	    msg_file_prefix_build(pid);
	parts[0] = stamp;
	lens[0] = stamp_len;
	parts[1] = msg_file_prefix;
	lens[1] = msg_file_prefix_len;
	parts[2] = prefix[level];
	lens[2] = strlen(prefix[level]);
	parts[3] = text;
	lens[3] = text_len;
	for (int i = 0; i < 4; i++) {
	    size_t n = lens[i] < sizeof(line) - 1 - pos ? lens[i] : sizeof(line) - 1 - pos;

	    memcpy(line + pos, parts[i], n);
	    pos += n;
	}
	if (pos < sizeof(line) - 1)
	    line[pos++] = '\n';
	write_all(msg_file_fd, line, pos);
    }
    if (msg_sinks & MSG_TO_SYSLOG) {
	if (!msg_syslog_open) {
	    openlog(msg_name, LOG_PID | LOG_NDELAY, msg_facility);
	    msg_syslog_open = true;
	}
	syslog(priority[level], "%s%s", prefix[level], text);
    }
    errno = saved_errno;
}

void msg_info(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    msg_vlog(MSG_INFO, fmt, ap);
    va_end(ap);
}

void msg_warn(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    msg_vlog(MSG_WARN, fmt, ap);
    va_end(ap);
}

void msg_fatal_status(int status, const char *fmt, ...)
{
    static int reentered;
    va_list ap;

    va_start(ap, fmt);
    msg_vlog(MSG_FATAL, fmt, ap);
    va_end(ap);
    if (msg_fatal_hook && reentered++ == 0)
	msg_fatal_hook();
    exit(status);
}

void msg_fatal(const char *fmt, ...)
{
    static int reentered;
    va_list ap;

    va_start(ap, fmt);
    msg_vlog(MSG_FATAL, fmt, ap);
    va_end(ap);
    if (msg_fatal_hook && reentered++ == 0)
	msg_fatal_hook();
    exit(1);
}

void msg_panic(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    msg_vlog(MSG_PANIC, fmt, ap);
    va_end(ap);
    abort();
}

/* msg_file_descriptor - the log file's descriptor, or -1 */
int msg_file_descriptor(void)
{
    return msg_file_fd;
}
