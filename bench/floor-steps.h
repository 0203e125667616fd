/* floor-steps.h - the file system steps of one message that posthorn
 * promises (docs/queue.md, docs/cleanup.md, local-delivery/maildir.c),
 * shared by the floor programs of bench/ingest (sync-floor.c,
 * session-floor.c); not part of posthorn. die() reports a failed step
 * and exits; each program names itself and its usage in floor_prog and
 * floor_usage first.
 *
 *   floor_commit    cleanup's part, before the 250: create
 *                   incoming/tmp.N (O_EXCL, mode 0200), rename it to
 *                   incoming/ID at once, write the queue file, fchmod
 *                   0600, fsync(file), fsync(incoming/)
 *   floor_deliver   the rest, which is three parts:
 *     floor_take    qmgr renames incoming/ID -> active/ID and reads it
 *     floor_maildir local-delivery reads active/ID and writes the message
 *                   into an unnamed file in tmp/ (O_TMPFILE; a named tmp/
 *                   file and a rename where the file system has none),
 *                   fsync(file), links it into new/NAME, fsync(new/);
 *                   then new/NAME is unlinked (not a server step: it
 *                   keeps new/ from growing)
 *     floor_done    qmgr unlinks active/ID
 *
 * With sync false the four syncs are left out; syncs are counted. */
#ifndef FLOOR_STEPS_H
#define FLOOR_STEPS_H

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct floor_dirs {
    int     top;
    int     incoming;
    int     active;
    int     tmp;
    int     new;
};

/* What die() and usage() say; main() sets them first. */
static const char *floor_prog = "floor";
static const char *floor_usage = "";

/* die - report a failed step ("PROG: what: why") and exit 1 */
static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    int     err = errno;
    va_list ap;

    fprintf(stderr, "%s: ", floor_prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, ": %s\n", strerror(err));
    exit(1);
}

/* usage - the command line, then exit 1 */
static void usage(void) __attribute__((noreturn));
static void usage(void)
{
    fprintf(stderr, "usage: %s %s\n", floor_prog, floor_usage);
    exit(1);
}

/* number - a decimal argument in [min, max], else usage() */
static long number(const char *s, long min, long max)
{
    char   *end;
    long    v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != 0 || v < min || v > max)
	usage();
    return v;
}

static const char *const floor_subdirs[] = {"incoming", "active", "tmp", "new"};
static bool floor_tmpfile_ok = true;	/* O_TMPFILE works (cleared on a refusal) */

/* floor_write_all - write len bytes or die */
static void floor_write_all(int fd, const char *buf, size_t len, const char *what)
{
    ssize_t n;

    while (len > 0) {
	if ((n = write(fd, buf, len)) < 0) {
	    if (errno == EINTR)
		continue;
	    die("write %s", what);
	}
	buf += n;
	len -= (size_t) n;
    }
}

/* floor_sync - fsync a descriptor and count it */
static void floor_sync(int fd, long *syncs, const char *what)
{
    if (fsync(fd) < 0)
	die("fsync %s", what);
    ++*syncs;
}

/* floor_commit - cleanup's steps; the queue ID goes to id */
static void floor_commit(const struct floor_dirs *d, long seq, const char *qf, size_t qf_len,
			 bool sync, long *syncs, char *id, size_t id_size)
{
    char    tmp_name[64];
    int     fd;

    snprintf(tmp_name, sizeof(tmp_name), "tmp.%ld.%ld", (long) getpid(), seq);
    snprintf(id, id_size, "F%ldQ%ld", (long) getpid(), seq);
    if ((fd = openat(d->incoming, tmp_name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW
		     | O_CLOEXEC, 0200)) < 0)
	die("create incoming/%s", tmp_name);
    if (renameat2(d->incoming, tmp_name, d->incoming, id, RENAME_NOREPLACE) < 0)
	die("rename incoming/%s to incoming/%s", tmp_name, id);
    floor_write_all(fd, qf, qf_len, "queue file");
    if (fchmod(fd, 0600) < 0)
	die("fchmod incoming/%s", id);
    if (sync) {
	floor_sync(fd, syncs, "queue file");
	floor_sync(d->incoming, syncs, "incoming/");
    }
    if (close(fd) < 0)
	die("close incoming/%s", id);
}

/* floor_read_all - read file fd (qf_len bytes) into rbuf (room for
 * qf_len + 1), or die */
static void floor_read_all(int fd, const char *what, size_t qf_len, char *rbuf)
{
    ssize_t n;
    size_t  got = 0;

    while ((n = pread(fd, rbuf, qf_len + 1, (off_t) got)) != 0) {
	if (n < 0 && errno == EINTR)
	    continue;
	if (n < 0)
	    die("read %s", what);
	got += (size_t) n;
	if (got > qf_len)
	    break;
    }
    if (got != qf_len) {
	errno = EIO;
	die("read %s: %zu bytes, expected %zu", what, got, qf_len);
    }
}

/* floor_take - qmgr: take queue file id into active/ and read it */
static void floor_take(const struct floor_dirs *d, const char *id, size_t qf_len, char *rbuf)
{
    int     fd;

    if (renameat(d->incoming, id, d->active, id) < 0)
	die("rename incoming/%s to active/%s", id, id);
    if ((fd = openat(d->active, id, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
	die("open active/%s", id);
    floor_read_all(fd, "active/ queue file", qf_len, rbuf);
    if (close(fd) < 0)
	die("close active/%s", id);
}

/* floor_maildir - local-delivery: the message of active/id (its last
 * msg_len of qf_len bytes, read into rbuf) into the Maildir */
static void floor_maildir(const struct floor_dirs *d, long seq, const char *id, size_t qf_len,
			  size_t msg_len, char *rbuf, bool sync, long *syncs)
{
    char    md_name[80];
    const char *msg = rbuf + (qf_len - msg_len);
    int     fd;

    if ((fd = openat(d->active, id, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
	die("open active/%s", id);
    floor_read_all(fd, "active/ queue file", qf_len, rbuf);
    if (close(fd) < 0)
	die("close active/%s", id);
    snprintf(md_name, sizeof(md_name), "%ld.M%ldP%ld.floor,S=%zu", (long) time(NULL),
	     seq, (long) getpid(), msg_len);
    fd = -1;
    if (floor_tmpfile_ok) {
	fd = openat(d->tmp, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL))
	    floor_tmpfile_ok = false;
	else if (fd < 0)
	    die("create an unnamed file in tmp/");
    }
    if (fd >= 0) {
	char    proc[64];

	floor_write_all(fd, msg, msg_len, "maildir file");
	if (sync)
	    floor_sync(fd, syncs, "maildir file");
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (linkat(AT_FDCWD, proc, d->new, md_name, AT_SYMLINK_FOLLOW) < 0)
	    die("link the unnamed file to new/%s", md_name);
	if (close(fd) < 0)
	    die("close new/%s", md_name);
    } else {
	if ((fd = openat(d->tmp, md_name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW
			 | O_CLOEXEC, 0600)) < 0)
	    die("create tmp/%s", md_name);
	floor_write_all(fd, msg, msg_len, "maildir file");
	if (sync)
	    floor_sync(fd, syncs, "maildir file");
	if (close(fd) < 0)
	    die("close tmp/%s", md_name);
	if (renameat2(d->tmp, md_name, d->new, md_name, RENAME_NOREPLACE) < 0)
	    die("rename tmp/%s to new/%s", md_name, md_name);
    }
    if (sync)
	floor_sync(d->new, syncs, "new/");
    /* not a server step: keep new/ from growing */
    if (unlinkat(d->new, md_name, 0) < 0)
	die("unlink new/%s", md_name);
}

/* floor_done - qmgr: the message is delivered */
static void floor_done(const struct floor_dirs *d, const char *id)
{
    if (unlinkat(d->active, id, 0) < 0)
	die("unlink active/%s", id);
}

/* floor_deliver - floor_take, floor_maildir and floor_done in one process
 * (rbuf has room for qf_len + 1 bytes) */
static inline void floor_deliver(const struct floor_dirs *d, long seq, const char *id,
				 size_t qf_len, size_t msg_len, char *rbuf, bool sync,
				 long *syncs)
{
    floor_take(d, id, qf_len, rbuf);
    floor_maildir(d, seq, id, qf_len, msg_len, rbuf, sync, syncs);
    floor_done(d, id);
}

/* floor_open_dirs - make and open the four directories in top */
static void floor_open_dirs(struct floor_dirs *d, const char *top)
{
    int    *fds[] = {&d->incoming, &d->active, &d->tmp, &d->new};

    if ((d->top = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
	die("open %s", top);
    for (size_t i = 0; i < sizeof(floor_subdirs) / sizeof(floor_subdirs[0]); i++) {
	if (mkdirat(d->top, floor_subdirs[i], 0700) < 0)
	    die("mkdir %s/%s", top, floor_subdirs[i]);
	if ((*fds[i] = openat(d->top, floor_subdirs[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW
			      | O_CLOEXEC)) < 0)
	    die("open %s/%s", top, floor_subdirs[i]);
    }
    /* set-up, not measured: the new directories are on disk */
    if (fsync(d->top) < 0)
	die("fsync %s", top);
}

/* floor_fill - size bytes of 78-column text lines, as a message body has */
static inline void floor_fill(char *buf, size_t size)
{
    for (size_t i = 0; i < size; i++)
	buf[i] = (i % 80 == 78) ? '\r' : (i % 80 == 79) ? '\n' : 'x';
}

#endif
