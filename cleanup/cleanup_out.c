/* cleanup_out.c - the queue file that cleanup writes: created under a
 * temp name in incoming/, made durable and then visible under its queue
 * ID (the commit point; docs/queue.md and docs/cleanup.md). The fsync of
 * incoming/ after the rename is shared with the other cleanup processes
 * that commit at the same moment (lib/base/group_sync.h). */

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
    char temp[QUEUE_TEMP_NAME_SIZE];
    uint64_t inode;
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

/* cleanup_out_open - create incoming/<temp> */
struct cleanup_out *cleanup_out_open(int dirfd, char *id, size_t id_size, const char **error_r)
{
    struct cleanup_out *o = mem_zalloc(sizeof(*o));
    struct stat st;

    o->dirfd = dirfd;
    queue_temp_name(o->temp, sizeof(o->temp));
    if ((o->fd = openat(dirfd, o->temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
			0600)) < 0) {
	*error_r = out_error("create", o->temp);
	mem_free(&o);
	return NULL;
    }
    if (fstat(o->fd, &st) < 0) {
	*error_r = out_error("fstat", o->temp);
	(void) close(o->fd);
	(void) unlinkat(dirfd, o->temp, 0);
	mem_free(&o);
	return NULL;
    }
    o->inode = (uint64_t) st.st_ino;
    if (!queue_id_new(id, id_size, o->inode))
	msg_fatal("cannot make a queue ID: the system clock is out of range");
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

/* cleanup_out_abandon - close and unlink the temp file */
void cleanup_out_abandon(struct cleanup_out **op)
{
    struct cleanup_out *o = *op;

    if (o == NULL)
	return;
    out_close(o);
    if (unlinkat(o->dirfd, o->temp, 0) < 0 && errno != ENOENT)
	msg_warn("remove incoming/%s: %m", o->temp);
    mem_free(op);
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

/* cleanup_out_commit - fsync, rename to the ID, fsync the directory */
int cleanup_out_commit(struct cleanup_out **op, char *id, size_t id_size, const char **error_r)
{
    struct cleanup_out *o = *op;
    int tries;

    if (stream_flush(o->stream) < 0 || stream_error(o->stream) != STREAM_OK) {
	errno = errno ? errno : EIO;
	*error_r = out_error("write", o->temp);
	cleanup_out_abandon(op);
	return -1;
    }
    if (fsync(o->fd) < 0) {
	*error_r = out_error("fsync", o->temp);
	cleanup_out_abandon(op);
	return -1;
    }
    for (tries = 0;; tries++) {
	if (out_rename(o->dirfd, o->temp, id) == 0)
	    break;
	if (errno != EEXIST || tries >= CLEANUP_RENAME_TRIES) {
	    *error_r = out_error("rename", o->temp);
	    cleanup_out_abandon(op);
	    return -1;
	}
	/* an inode reused within the same microsecond: a fresh time */
	{
	    struct timespec ts = {0, 1000};

	    (void) nanosleep(&ts, NULL);
	}
	if (!queue_id_new(id, id_size, o->inode))
	    msg_fatal("cannot make a queue ID: the system clock is out of range");
    }
    if (cleanup_out_gs ? group_sync_dir(cleanup_out_gs, error_r) < 0 : fsync(o->dirfd) < 0) {
	/* Not durable: take it back. qmgr may already have it; then it is
	 * delivered although we say no (at least once, never lost). */
	*error_r = out_error("fsync directory for", id);
	if (unlinkat(o->dirfd, id, 0) < 0 && errno != ENOENT)
	    msg_warn("remove incoming/%s: %m", id);
	out_close(o);
	mem_free(op);
	return -1;
    }
    out_close(o);
    mem_free(op);
    return 0;
}
