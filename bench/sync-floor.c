/* sync-floor.c - a floor measurement for bench/ingest, not part of posthorn.
 *
 * Usage: sync-floor DIR COUNT SIZE
 *
 * Does, COUNT times, nothing but the file system steps that posthorn
 * promises for one message (docs/queue.md, docs/cleanup.md,
 * local-delivery/maildir.c), with SIZE bytes of message data, in one
 * process and without any IPC, parsing or logging:
 *
 *   cleanup         create incoming/tmp.N (O_EXCL, mode 0200), rename it
 *                   to incoming/ID at once, write the queue file (SIZE plus
 *                   ~200 bytes), fchmod 0600, fsync(file), fsync(incoming/)
 *   qmgr            rename incoming/ID -> active/ID, read the file
 *   local-delivery  an unnamed file in tmp/ (O_TMPFILE, 0600), write SIZE
 *                   bytes, fsync(file), link it to new/NAME through
 *                   /proc/self/fd, fsync(new/) (without O_TMPFILE: tmp/NAME
 *                   with O_EXCL and a rename, as local-delivery does)
 *   qmgr            unlink active/ID
 *
 * and then unlinks new/NAME, so that new/ does not grow.  A second pass
 * does the same without the four syncs.  The time and CPU per message of
 * the first pass are what no server that keeps posthorn's syncs can go
 * below on this file system; the second pass shows what the syncs alone
 * cost.  Prints one JSON line:
 *
 *   {"messages": N, "wall_ms_per_msg": x, "cpu_ms_per_msg": y,
 *    "syncs_per_msg": 4, "no_sync_wall_ms_per_msg": a,
 *    "no_sync_cpu_ms_per_msg": b}
 *
 * (syncs_per_msg is counted, not assumed).  CPU is getrusage(RUSAGE_SELF),
 * user + system.  DIR must exist; sync-floor makes incoming/, active/,
 * tmp/ and new/ in it and removes them at the end, leaving DIR itself.
 *
 * DIAGNOSTICS: any failed system call prints "sync-floor: what: why" on
 * stderr and exits 1 (DIR may then hold leftovers). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define QF_HEADER_SIZE	200		/* envelope records of a queue file */
#define MAX_SIZE	(64L * 1024 * 1024)
#define MAX_COUNT	10000000L

struct dirs {
    int     top;
    int     incoming;
    int     active;
    int     tmp;
    int     new;
};

static const char *const subdirs[] = {"incoming", "active", "tmp", "new"};
static bool tmpfile_ok = true;	/* O_TMPFILE works here (cleared on the first refusal) */

/* die - report a failed step and exit */
static void die(const char *fmt, ...)
{
    int     err = errno;
    va_list ap;

    fputs("sync-floor: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, ": %s\n", strerror(err));
    exit(1);
}

/* usage - the command line, then exit */
static void usage(void)
{
    fputs("usage: sync-floor DIR COUNT SIZE\n", stderr);
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

/* now_ms - the monotonic clock in milliseconds */
static double now_ms(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
	die("clock_gettime");
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* cpu_ms - user plus system CPU of this process in milliseconds */
static double cpu_ms(void)
{
    struct rusage ru;

    if (getrusage(RUSAGE_SELF, &ru) < 0)
	die("getrusage");
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3
	+ (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

/* write_all - write len bytes or die */
static void write_all(int fd, const char *buf, size_t len, const char *what)
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

/* sync_fd - fsync a descriptor and count it */
static void sync_fd(int fd, long *syncs, const char *what)
{
    if (fsync(fd) < 0)
	die("fsync %s", what);
    ++*syncs;
}

/* fill - size bytes of 78-column text lines, as a message body has */
static void fill(char *buf, size_t size)
{
    for (size_t i = 0; i < size; i++)
	buf[i] = (i % 80 == 78) ? '\r' : (i % 80 == 79) ? '\n' : 'x';
}

/* one_message - the file system steps of one message; syncs counted */
static void one_message(const struct dirs *d, long seq, const char *qf, size_t qf_len,
			const char *msg, size_t msg_len, char *rbuf, bool sync,
			long *syncs)
{
    char    tmp_name[64];
    char    id[64];
    char    md_name[64];
    ssize_t n;
    size_t  got;
    int     fd;

    /* cleanup: create in progress (0200), name it by its ID at once */
    snprintf(tmp_name, sizeof(tmp_name), "tmp.%ld.%ld", (long) getpid(), seq);
    snprintf(id, sizeof(id), "F%ldQ%ld", (long) getpid(), seq);
    if ((fd = openat(d->incoming, tmp_name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW
		     | O_CLOEXEC, 0200)) < 0)
	die("create incoming/%s", tmp_name);
    if (renameat2(d->incoming, tmp_name, d->incoming, id, RENAME_NOREPLACE) < 0)
	die("rename incoming/%s to incoming/%s", tmp_name, id);
    write_all(fd, qf, qf_len, "queue file");
    if (fchmod(fd, 0600) < 0)
	die("fchmod incoming/%s", id);
    if (sync) {
	sync_fd(fd, syncs, "queue file");
	sync_fd(d->incoming, syncs, "incoming/");
    }
    if (close(fd) < 0)
	die("close incoming/%s", id);

    /* qmgr: take it into active/ and read it */
    if (renameat(d->incoming, id, d->active, id) < 0)
	die("rename incoming/%s to active/%s", id, id);
    if ((fd = openat(d->active, id, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
	die("open active/%s", id);
    got = 0;
    while ((n = read(fd, rbuf, qf_len + 1)) != 0) {
	if (n < 0 && errno == EINTR)
	    continue;
	if (n < 0)
	    die("read active/%s", id);
	got += (size_t) n;
    }
    if (got != qf_len) {
	errno = EIO;
	die("read active/%s: %zu bytes, expected %zu", id, got, qf_len);
    }
    if (close(fd) < 0)
	die("close active/%s", id);

    /* local-delivery: an unnamed file in tmp/ (O_TMPFILE), sync, linked
     * into new/, sync new/; a named tmp/NAME and a rename where the file
     * system has no O_TMPFILE (as local-delivery/maildir.c does) */
    snprintf(md_name, sizeof(md_name), "%ld.M%ldP%ld.floor,S=%zu", (long) time(NULL),
	     seq, (long) getpid(), msg_len);
    fd = -1;
    if (tmpfile_ok) {
	fd = openat(d->tmp, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL))
	    tmpfile_ok = false;
	else if (fd < 0)
	    die("create an unnamed file in tmp/");
    }
    if (fd >= 0) {
	char proc[64];

	write_all(fd, msg, msg_len, "maildir file");
	if (sync)
	    sync_fd(fd, syncs, "maildir file");
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (linkat(AT_FDCWD, proc, d->new, md_name, AT_SYMLINK_FOLLOW) < 0)
	    die("link the unnamed file to new/%s", md_name);
	if (close(fd) < 0)
	    die("close new/%s", md_name);
    } else {
	if ((fd = openat(d->tmp, md_name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW
			 | O_CLOEXEC, 0600)) < 0)
	    die("create tmp/%s", md_name);
	write_all(fd, msg, msg_len, "maildir file");
	if (sync)
	    sync_fd(fd, syncs, "maildir file");
	if (close(fd) < 0)
	    die("close tmp/%s", md_name);
	if (renameat2(d->tmp, md_name, d->new, md_name, RENAME_NOREPLACE) < 0)
	    die("rename tmp/%s to new/%s", md_name, md_name);
    }
    if (sync)
	sync_fd(d->new, syncs, "new/");

    /* qmgr: the message is delivered */
    if (unlinkat(d->active, id, 0) < 0)
	die("unlink active/%s", id);

    /* not a server step: keep new/ from growing */
    if (unlinkat(d->new, md_name, 0) < 0)
	die("unlink new/%s", md_name);
}

/* open_dirs - make and open the four directories in DIR */
static void open_dirs(struct dirs *d, const char *top)
{
    int    *fds[] = {&d->incoming, &d->active, &d->tmp, &d->new};

    if ((d->top = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
	die("open %s", top);
    for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
	if (mkdirat(d->top, subdirs[i], 0700) < 0)
	    die("mkdir %s/%s", top, subdirs[i]);
	if ((*fds[i] = openat(d->top, subdirs[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW
			      | O_CLOEXEC)) < 0)
	    die("open %s/%s", top, subdirs[i]);
    }
    /* set-up, not measured: the new directories are on disk */
    if (fsync(d->top) < 0)
	die("fsync %s", top);
}

/* close_dirs - close and remove the four directories */
static void close_dirs(struct dirs *d, const char *top)
{
    int     fds[] = {d->incoming, d->active, d->tmp, d->new};

    for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
	if (close(fds[i]) < 0)
	    die("close %s/%s", top, subdirs[i]);
	if (unlinkat(d->top, subdirs[i], AT_REMOVEDIR) < 0)
	    die("rmdir %s/%s", top, subdirs[i]);
    }
    if (close(d->top) < 0)
	die("close %s", top);
}

int     main(int argc, char **argv)
{
    struct dirs d;
    long    count;
    long    size;
    long    syncs = 0;
    long    no_syncs = 0;
    size_t  qf_len;
    char   *qf;
    char   *msg;
    char   *rbuf;
    double  t0, t1, t2, c0, c1, c2;

    if (argc != 4)
	usage();
    count = number(argv[2], 1, MAX_COUNT);
    size = number(argv[3], 1, MAX_SIZE);
    qf_len = (size_t) size + QF_HEADER_SIZE;
    if ((qf = malloc(qf_len)) == NULL || (msg = malloc((size_t) size)) == NULL
	|| (rbuf = malloc(qf_len + 1)) == NULL)
	die("malloc");
    fill(qf, qf_len);
    fill(msg, (size_t) size);
    open_dirs(&d, argv[1]);

    /* the promised sequence, then the same without its syncs */
    c0 = cpu_ms();
    t0 = now_ms();
    for (long i = 0; i < count; i++)
	one_message(&d, i, qf, qf_len, msg, (size_t) size, rbuf, true, &syncs);
    t1 = now_ms();
    c1 = cpu_ms();
    for (long i = 0; i < count; i++)
	one_message(&d, count + i, qf, qf_len, msg, (size_t) size, rbuf, false, &no_syncs);
    t2 = now_ms();
    c2 = cpu_ms();

    close_dirs(&d, argv[1]);
    free(qf);
    free(msg);
    free(rbuf);
    printf("{\"messages\": %ld, \"wall_ms_per_msg\": %.4f, \"cpu_ms_per_msg\": %.4f, "
	   "\"syncs_per_msg\": %.4g, \"no_sync_wall_ms_per_msg\": %.4f, "
	   "\"no_sync_cpu_ms_per_msg\": %.4f}\n",
	   count, (t1 - t0) / count, (c1 - c0) / count, (double) syncs / count,
	   (t2 - t1) / count, (c2 - c1) / count);
    if (fflush(stdout) == EOF || ferror(stdout))
	die("write stdout");
    return 0;
}
