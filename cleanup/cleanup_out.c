/* cleanup_out.c - the queue file that cleanup writes: named by its
 * queue ID from the start, "in progress" until its content is complete,
 * then made ready and durable (the commit point; docs/queue.md and
 * docs/cleanup.md, architecture.md decision 51).
 *
 *   open     create incoming/tmp.PID.SECUSEC.N with mode 0200 (owner
 *            write-only), take the inode, make the ID, rename the temp
 *            name to incoming/ID without replacing (a fresh ID on EEXIST)
 *   write    the records, through a buffered stream
 *   commit   flush, fchmod 0600 (ready: qmgr takes only files its owner
 *            may read), fsync the file (content, mode and, on a
 *            journaled file system, the entry made at open), fsync
 *            incoming/ unless an fsync of it that another cleanup
 *            started after our rename has finished (group commit,
 *            lib/base/group_sync.h: the arrival is counted at open, so
 *            under load most commits find their entry already covered)
 *   abandon  unlink incoming/ID (a refusal, an error, a lost client)
 *
 * The rename comes before the content, so that the fsync of the file is
 * the last change of the directory's entry: the directory fsync that
 * follows finds nothing left to commit on a journaled file system (one
 * journal commit per message instead of two). The mode is what keeps
 * qmgr away meanwhile, not the name. */

/* System. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Base. */
#include "group_sync.h"
#include "mem.h"
#include "msg.h"
#include "str.h"
#include "stream.h"

/* Mail. */
#include "queue_id.h"

/* Cleanup. */
#include "cleanup.h"

#define CLEANUP_RENAME_TRIES	20

struct cleanup_out {
    int dirfd;				/* incoming/ (not owned) */
    int fd;
    struct stream *stream;
    char name[QUEUE_ID_SIZE];		/* incoming/ID, once renamed */
    uint64_t sync_ticket;		/* group_sync_arrive after the rename */
};

static char cleanup_out_errbuf[512];
static struct group_sync *cleanup_out_gs;

void cleanup_out_group_sync(struct group_sync *gs)
{
    cleanup_out_gs = gs;
}

/* out_error - format an error */
static const char *out_error(const char *what, const char *name)
{
    fmt_buf_cut(cleanup_out_errbuf, sizeof(cleanup_out_errbuf), "%s incoming/%s: %s",
	    what, name, strerror(errno));
    return cleanup_out_errbuf;
}

/* out_rename - rename without replacing; link+unlink where the file
 * system lacks RENAME_NOREPLACE */
static int out_rename(int dirfd, const char *from, const char *to)
{
    if (renameat2(dirfd, from, dirfd, to, RENAME_NOREPLACE) == 0)
	return 0;
    if (errno != EINVAL && errno != ENOSYS)
	return -1;
    if (linkat(dirfd, from, dirfd, to, 0) < 0)
	return -1;
    if (unlinkat(dirfd, from, 0) < 0)
	msg_warn("remove incoming/%s: %m", from);
    return 0;
}

/* out_name - the temp file gets its queue ID: (time, inode), renamed
 * without replacing; an inode reused within the same microsecond gets
 * a fresh time. 0, or -1 with errno (the temp name is still there). */
static int out_name(int dirfd, const char *temp, uint64_t inode, char *id, size_t id_size)
{
    for (int tries = 0;; tries++) {
	if (!queue_id_new(id, id_size, inode))
	    msg_fatal("cannot make a queue ID: the system clock is out of range");
	if (out_rename(dirfd, temp, id) == 0)
	    return 0;
	if (errno != EEXIST || tries >= CLEANUP_RENAME_TRIES)
	    return -1;
	{
	    struct timespec ts = {0, 1000};

	    (void) nanosleep(&ts, NULL);
	}
    }
}

/* cleanup_out_open - create incoming/<temp> (0200), name it incoming/ID */
struct cleanup_out *cleanup_out_open(int dirfd, char *id, size_t id_size, const char **error_r)
{
    struct cleanup_out *o = mem_zalloc(sizeof(*o));
    char temp[QUEUE_TEMP_NAME_SIZE];
    struct stat st;

    o->dirfd = dirfd;
    queue_temp_name(temp, sizeof(temp));
    if ((o->fd = openat(dirfd, temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
			QUEUE_MODE_IN_PROGRESS)) < 0) {
	*error_r = out_error("create", temp);
	mem_free(&o);
	return NULL;
    }
    if (fstat(o->fd, &st) < 0 || out_name(dirfd, temp, (uint64_t) st.st_ino, id, id_size) < 0) {
	*error_r = out_error("name", temp);	/* fstat or rename */
	(void) close(o->fd);
	(void) unlinkat(dirfd, temp, 0);
	mem_free(&o);
	return NULL;
    }
    str_copy_out_or_panic(o->name, sizeof(o->name), id);
    /* The entry is made: from now on any fsync of incoming/, whoever runs
     * it, covers it (often another cleanup's commit during our DATA). */
    if (cleanup_out_gs)
	o->sync_ticket = group_sync_arrive(cleanup_out_gs);
    o->stream = stream_open(o->fd);
    stream_set_timeout(o->stream, -1);
    return o;
}

struct stream *cleanup_out_stream(struct cleanup_out *o)
{
    return o->stream;
}

/* out_close - close the file and free (the name stays) */
static void out_close(struct cleanup_out *o)
{
    if (o->stream) {
	stream_set_timeout(o->stream, 0);
	(void) stream_close(&o->stream);	/* also closes fd */
    }
}

/* cleanup_out_abandon - close and unlink incoming/ID. Before the commit
 * began the file was never ready, so nobody else took it; after (a
 * failed fsync), qmgr may have: then the unlink finds nothing, and the
 * message is delivered although the client was told to retry (at least
 * once, never lost). */
void cleanup_out_abandon(struct cleanup_out **op)
{
    struct cleanup_out *o = *op;

    if (o == NULL)
	return;
    out_close(o);
    if (unlinkat(o->dirfd, o->name, 0) < 0 && errno != ENOENT)
	msg_warn("remove incoming/%s: %m", o->name);
    mem_free(op);
}

/* cleanup_out_commit - flush, make ready (0600), fsync the file, fsync
 * the directory */
int cleanup_out_commit(struct cleanup_out **op, const char **error_r)
{
    struct cleanup_out *o = *op;
    const char *what = NULL;

    if (stream_flush(o->stream) < 0 || stream_error(o->stream) != STREAM_OK) {
	errno = errno ? errno : EIO;
	what = "write";
    } else if (fchmod(o->fd, QUEUE_MODE_READY) < 0) {
	what = "fchmod";
    } else if (fsync(o->fd) < 0) {
	what = "fsync";
    } else if (cleanup_out_gs ? group_sync_wait(cleanup_out_gs, o->sync_ticket, error_r) < 0
	       : fsync(o->dirfd) < 0) {
	what = "fsync directory for";
    }
    if (what) {
	/* Not durable: take it back (qmgr may already have it, see
	 * cleanup_out_abandon). */
	*error_r = out_error(what, o->name);
	cleanup_out_abandon(op);
	return -1;
    }
    out_close(o);
    mem_free(op);
    return 0;
}
