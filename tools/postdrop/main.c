/* main.c - postdrop, the setgid helper that stores one message in maildrop/.
 *
 *   postdrop [-c config_dir] [-v]       read a maildrop file on stdin
 *   postdrop [-c config_dir] [-v] -q    ask qmgr to flush the queue
 *
 * sendmail (unprivileged) runs postdrop with the records of a maildrop
 * file (maildrop.h) on a pipe. postdrop runs setgid $setgid_group, the
 * only group that may write into maildrop/ (mode 1730: write, no read)
 * and reach public/. It trusts nothing it reads: every record passes the
 * maildrop checker (the untrusted whitelist, size limits) before it is
 * copied. The commit is:
 *
 *   maildrop/tmp.PID.TIME.N   created O_EXCL, written, flushed, fsync
 *   maildrop/QUEUE_ID         no-replace rename (the ID carries the inode)
 *   fsync(maildrop/)          then exit 0: the message is on disk
 *
 * then one "W" on public/pickup (non-blocking; a failure is logged, never
 * fatal: pickup scans on a timer and at start). On any failure the temp
 * file is removed and the exit status says why (sysexits.h).
 *
 * The file belongs to the caller (pickup takes the submitting uid from
 * the owner), mode 0444: the directory is closed to everyone but the
 * mail owner, and nobody writes the file after postdrop closes it.
 *
 * A caller who is not root may name another configuration directory
 * (-c) only when postdrop runs without privilege, or when the directory
 * is listed in alternate_config_directories of the default main.cf. */

/* System library. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

/* Base library. */
#include "msg.h"
#include "safe_file.h"
#include "str.h"
#include "stream.h"

/* Mail library. */
#include "config.h"
#include "mail_proto.h"
#include "maildrop.h"
#include "queue_file.h"
#include "queue_id.h"
#include "record_grammar.h"
#include "trigger.h"

#define MAILDROP_DIR	"maildrop"
#define DEF_SIZE_LIMIT	10240000L	/* message_size_limit when unset */

/* The temp file, for removal on any failure (also from a signal). */
static char pd_temp_path[sizeof(MAILDROP_DIR) + QUEUE_TEMP_NAME_SIZE + 2];
static volatile sig_atomic_t pd_temp_live;
static const char *pd_queue_dir;	/* $queue_directory, our cwd */

/* pd_cleanup - remove the temp file (msg_fatal hook) */
static void pd_cleanup(void)
{
    if (pd_temp_live) {
	(void) unlink(pd_temp_path);
	pd_temp_live = 0;
    }
}

/* pd_signal - remove the temp file and exit */
static void pd_signal(int sig)
{
    (void) sig;
    if (pd_temp_live)
	(void) unlink(pd_temp_path);
    _exit(EX_TEMPFAIL);
}

/* pd_sanitize_fds - make sure 0, 1 and 2 are open, so that no file we
 * open later can become someone's stdout or stderr */
static void pd_sanitize_fds(void)
{
    for (int fd = 0; fd < 3; fd++) {
	if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
	    int nfd = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);

	    if (nfd != fd)
		_exit(EX_OSERR);
	}
    }
}

/* pd_dir_listed - true if dir is an element of the list value */
struct pd_listed {
    const char *dir;
    bool found;
};

/* pd_match_dir - config_split callback */
static void pd_match_dir(const char *item, void *ctx)
{
    struct pd_listed *l = ctx;

    if (strcmp(item, l->dir) == 0)
	l->found = true;
}

/* pd_config - the expanded value of one parameter (msg_fatal if it
 * cannot be expanded). postdrop uses four parameters; expanding and
 * converting the whole table (config_apply) was most of its start-up
 * work. */
static const char *pd_config(const char *name)
{
    const char *value, *error;

    if ((value = config_value_why(name, &error)) == NULL)
	msg_fatal_status(EX_CONFIG, "main.cf: parameter %s: %s", name, error);
    return value;
}

/* pd_check_config_dir - a privileged postdrop trusts only the default
 * configuration, or directories that it lists */
static void pd_check_config_dir(const char *dir)
{
    struct pd_listed l = {dir, false};
    const char *value, *error;

    if (getuid() == 0 || getegid() == getgid() || strcmp(dir, DEF_CONFIG_DIR) == 0)
	return;
    config_init();
    if (config_load(DEF_CONFIG_DIR, &error) < 0)
	msg_fatal_status(EX_NOPERM, "-c %s: not permitted (the default configuration "
			 "cannot be read: %s)", dir, error);
    value = pd_config("alternate_config_directories");
    config_split(value, pd_match_dir, &l);
    if (!l.found)
	msg_fatal_status(EX_NOPERM, "-c %s: not permitted: not listed in "
			 "alternate_config_directories of %s/main.cf", dir, DEF_CONFIG_DIR);
}

/* pd_size_limit - message_size_limit, whoever declares it */
static long long pd_size_limit(void)
{
    const char *value = config_value("message_size_limit");
    long n;

    if (value && parse_long(value, &n) && n >= 0)
	return n;
    return DEF_SIZE_LIMIT;
}

/* pd_check_space - queue_minfree (0: 1.5 x message_size_limit) free in
 * the queue's file system, else a clear temporary failure before any
 * file is made (sendmail passes the text to its user) */
static void pd_check_space(void)
{
    const char *value = config_value("queue_minfree");
    unsigned long long need, avail;
    struct statvfs vfs;
    long n = 0;

    if (!(value && parse_long(value, &n) && n > 0))
	n = 0;
    need = n > 0 ? (unsigned long long) n : (unsigned long long) pd_size_limit() / 2 * 3;
    if (statvfs(".", &vfs) < 0) {
	msg_warn("statvfs %s: %m", pd_queue_dir);
	return;
    }
    avail = (unsigned long long) vfs.f_bavail * (vfs.f_frsize ? vfs.f_frsize : vfs.f_bsize);
    if (avail < need)
	msg_fatal_status(EX_TEMPFAIL, "not enough free space in the queue file system %s: "
			 "%llu bytes free, %llu needed (queue_minfree): try again later",
			 pd_queue_dir, avail, need);
}

/* pd_log_trigger_failure - a lost wake-up only delays; say so quietly */
static void pd_log_trigger_failure(const char *why)
{
    int sinks = msg_get_sinks();

    if (!msg_verbose)
	msg_set_sinks(MSG_TO_SYSLOG);
    msg_warn("cannot wake up pickup: %s (the message waits in maildrop)", why);
    msg_set_sinks(sinks);
}

/* pd_commit - fsync, no-replace rename to the queue ID, fsync maildrop/ */
static void pd_commit(int dirfd, bool dir_readable, int fd, char *id, size_t id_size)
{
    const char *temp_name = pd_temp_path + sizeof(MAILDROP_DIR);
    struct stat st;

    if (fsync(fd) < 0)
	msg_fatal_status(EX_TEMPFAIL, "fsync %s: %m", pd_temp_path);
    if (fstat(fd, &st) < 0)
	msg_fatal_status(EX_TEMPFAIL, "fstat %s: %m", pd_temp_path);
    for (int attempt = 0;; attempt++) {
	if (!queue_id_new(id, id_size, (uint64_t) st.st_ino))
	    msg_fatal_status(EX_TEMPFAIL, "cannot make a queue ID (clock out of range?)");
	if (renameat2(dirfd, temp_name, dirfd, id, RENAME_NOREPLACE) == 0)
	    break;
	if (errno == EINVAL || errno == ENOSYS) {
	    /* No renameat2 here: link is no-replace too. */
	    if (linkat(dirfd, temp_name, dirfd, id, 0) == 0) {
		(void) unlinkat(dirfd, temp_name, 0);
		break;
	    }
	}
	if (errno != EEXIST || attempt >= 100)
	    msg_fatal_status(EX_TEMPFAIL, "rename %s to %s/%s: %m", pd_temp_path, MAILDROP_DIR, id);
	/* The same microsecond and a reused inode: wait for the clock. */
	struct timespec ts = {0, 1000};

	(void) nanosleep(&ts, NULL);
    }
    pd_temp_live = 0;
    /* The directory entry is the commit. A caller in the setgid group
     * cannot open maildrop/ for reading (mode 1730), so it cannot fsync
     * it; a second fsync of the file makes a journaling file system
     * commit the transaction that holds the rename. */
    if (dir_readable ? fsync(dirfd) < 0 : fsync(fd) < 0) {
	int saved = errno;

	(void) unlinkat(dirfd, id, 0);
	errno = saved;
	msg_fatal_status(EX_TEMPFAIL, "fsync %s: %m", MAILDROP_DIR);
    }
}

/* pd_drop - copy one checked maildrop file from stdin into maildrop/ */
static void pd_drop(void)
{
    struct record_grammar grammar;
    struct stream *in, *out;
    struct qf_reader reader;
    struct str *data;
    char id[QUEUE_ID_SIZE];
    char temp[QUEUE_TEMP_NAME_SIZE];
    bool dir_readable = true;
    const char *error, *why;
    int dirfd, fd, type, ret;

    pd_check_space();
    /* maildrop/ is write-only for the group: open it for *at() calls. */
    dirfd = open(MAILDROP_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dirfd < 0 && errno == EACCES) {
	dir_readable = false;
	dirfd = open(MAILDROP_DIR, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (dirfd < 0)
	msg_fatal_status(EX_TEMPFAIL, "open %s/%s: %m", pd_queue_dir, MAILDROP_DIR);

    queue_temp_name(temp, sizeof(temp));
    fmt_buf_or_panic(pd_temp_path, sizeof(pd_temp_path), "%s/%s", MAILDROP_DIR, temp);
    /* Created read-only (umask 0333, set in main): the descriptor is
     * writable all the same, and no fchmod (a second journaled inode
     * change per message) is needed. */
    fd = openat(dirfd, temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0444);
    if (fd < 0)
	msg_fatal_status(EX_TEMPFAIL, "create %s/%s: %m", pd_queue_dir, pd_temp_path);
    pd_temp_live = 1;

    in = stream_open(STDIN_FILENO);
    stream_set_timeout(in, -1);
    out = stream_open(fd);
    stream_set_timeout(out, -1);
    data = str_new(MAILDROP_RECORD_MAX);
    qf_reader_init(&reader, in, 0);
    record_grammar_init(&grammar, RECORD_PROFILE_MAILDROP, pd_size_limit());
    while ((ret = record_grammar_get(&grammar, &reader, &type, data, NULL, &error)) > 0) {
	if (qf_put(out, type, data->data, data->len) < 0)
	    msg_fatal_status(EX_TEMPFAIL, "write %s: %m", pd_temp_path);
    }
    if (ret < 0) {
	if (stream_error(in) == STREAM_ERROR)
	    msg_fatal_status(EX_IOERR, "read input: %s", error);
	msg_fatal_status(EX_DATAERR, "maildrop file: %s", error);
    }
    if (stream_flush(out) < 0)
	msg_fatal_status(EX_TEMPFAIL, "write %s: %m", pd_temp_path);
    pd_commit(dirfd, dir_readable, fd, id, sizeof(id));
    str_free(&data);
    stream_free(&in);
    stream_free(&out);
    (void) close(fd);
    (void) close(dirfd);
    if (msg_verbose)
	msg_info("queued as %s/%s", MAILDROP_DIR, id);
    if (!trigger_send(PICKUP_SOCKET, PICKUP_TRIGGER_SCAN, 1, 1000, NULL, &why))
	pd_log_trigger_failure(why);
}

/* pd_usage - exit with the usage text */
static _Noreturn void pd_usage(void)
{
    msg_fatal_status(EX_USAGE, "usage: postdrop [-c config_dir] [-v] [-q]");
}

int main(int argc, char **argv)
{
    const char *config_dir = DEF_CONFIG_DIR;
    const char *error, *why, *value;
    bool flush = false;
    int ch;

    pd_sanitize_fds();
    umask(0333);			/* postdrop creates one file, mode 0444 */
    if (clearenv() != 0)
	_exit(EX_OSERR);
    msg_init("postdrop", MSG_TO_STDERR);
    msg_set_fatal_hook(pd_cleanup);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, pd_signal);
    signal(SIGINT, pd_signal);
    signal(SIGQUIT, pd_signal);
    signal(SIGTERM, pd_signal);

    while ((ch = getopt(argc, argv, "c:qv")) != -1) {
	switch (ch) {
	case 'c':
	    config_dir = optarg;
	    break;
	case 'q':
	    flush = true;
	    break;
	case 'v':
	    msg_verbose++;
	    break;
	default:
	    pd_usage();
	}
    }
    if (optind != argc || config_dir[0] != '/')
	pd_usage();
    pd_check_config_dir(config_dir);

    config_init();
    config_set("config_directory", config_dir);
    if (config_load(config_dir, &error) < 0)
	msg_fatal_status(EX_CONFIG, "%s", error);
    value = pd_config("syslog_facility");
    if (!msg_set_syslog_facility(value))
	msg_warn("unknown syslog_facility %s", value);
    pd_queue_dir = pd_config("queue_directory");
    if (chdir(pd_queue_dir) < 0)
	msg_fatal_status(EX_TEMPFAIL, "chdir %s: %m", pd_queue_dir);

    if (flush) {
	if (!trigger_send(QMGR_SOCKET, QMGR_TRIGGER_FLUSH, 1, 1000, NULL, &why))
	    msg_fatal_status(EX_UNAVAILABLE, "cannot flush the queue: %s", why);
	return 0;
    }
    pd_drop();
    return 0;
}
