/* trigger.c - wake-up requests to a daemon's public endpoint.
 *
 * A trigger is a few bytes ("I", "F", "I<queue ID>\n", ...) that tell a
 * daemon to look at the queue now. master makes the endpoint a fifo (one
 * write, never a connection; what Postfix does for qmgr and pickup) or a
 * unix stream socket (connect, write, close), as master.cf says; the
 * sender does not care which. Requests are at most PIPE_BUF bytes, so
 * fifo writes from many senders never interleave. */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* base */
#include "sock.h"
#include "str.h"

/* mail */
#include "mail_proto.h"
#include "queue_id.h"
#include "trigger.h"

#define TRIGGER_QMGR_MS		1000	/* a unix-socket qmgr: connect deadline */

static char trigger_reason[256];

/* trigger_fail - false, with the reason in *why */
static bool trigger_fail(const char **why, const char *path, const char *what, int err)
{
    fmt_buf_cut(trigger_reason, sizeof(trigger_reason), "%s %s: %s", what, path,
		   err == ENXIO ? "no reader (is the mail system running?)"
		   : err == EAGAIN ? "full (the daemon is behind; its periodic scan will see the mail)"
		   : strerror(err));
    *why = trigger_reason;
    errno = err;
    return false;
}

/* trigger_fifo_write - one atomic write; errno set when it fails */
static bool trigger_fifo_write(int fd, const char *msg, size_t len)
{
    ssize_t n;

    do {
	n = write(fd, msg, len);
    } while (n < 0 && errno == EINTR);
    if (n == (ssize_t) len)
	return true;
    if (n >= 0)
	errno = EIO;			/* cannot happen below PIPE_BUF */
    return false;
}

bool trigger_send(const char *path, const char *msg, size_t len, int timeout_ms,
		  int *keep_fd, const char **why)
{
    struct stat st;
    const char *error;
    int fd, err;

    if (len > PIPE_BUF)
	return trigger_fail(why, path, "request too long for", EMSGSIZE);
    if (keep_fd && *keep_fd >= 0) {
	if (trigger_fifo_write(*keep_fd, msg, len))
	    return true;
	if (errno == EAGAIN)
	    return trigger_fail(why, path, "write", EAGAIN);
	/* The reader went away (EPIPE: master restarted?): open it again. */
	(void) close(*keep_fd);
	*keep_fd = -1;
    }
    if (lstat(path, &st) < 0)
	return trigger_fail(why, path, "stat", errno);
    if (S_ISFIFO(st.st_mode)) {
	if ((fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW)) < 0)
	    return trigger_fail(why, path, "open", errno);
	if (!trigger_fifo_write(fd, msg, len)) {
	    err = errno;
	    (void) close(fd);
	    return trigger_fail(why, path, "write", err);
	}
	if (keep_fd)
	    *keep_fd = fd;
	else
	    (void) close(fd);
	return true;
    }
    if (!S_ISSOCK(st.st_mode)) {
	fmt_buf_cut(trigger_reason, sizeof(trigger_reason), "%s: not a fifo or socket", path);
	*why = trigger_reason;
	errno = ENOTSOCK;
	return false;
    }
    if ((fd = sock_connect_unix(path, timeout_ms, &error)) < 0) {
	err = errno ? errno : ECONNREFUSED;
	fmt_buf_cut(trigger_reason, sizeof(trigger_reason), "%s", error);
	*why = trigger_reason;
	errno = err == EAGAIN ? ETIMEDOUT : err;	/* EAGAIN means a full fifo */
	return false;
    }
    if (send(fd, msg, len, MSG_NOSIGNAL) != (ssize_t) len) {
	err = errno;
	(void) close(fd);
	return trigger_fail(why, path, "write", err);
    }
    (void) close(fd);
    return true;
}

bool trigger_qmgr_incoming(const char *queue_id, const char **why)
{
    static int qmgr_fd = -1;
    char msg[QUEUE_ID_SIZE + 8];

    if (!fmt_try_buf(msg, sizeof(msg), "%s%s\n", QMGR_TRIGGER_SCAN, queue_id))
	str_copy_out_or_panic(msg, sizeof(msg), QMGR_TRIGGER_SCAN);	/* a plain scan */
    return trigger_send(QMGR_SOCKET, msg, strlen(msg), TRIGGER_QMGR_MS, &qmgr_fd, why);
}
