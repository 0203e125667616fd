/* store_watch.c - change notification for IDLE: one inotify descriptor
 * per handle watching new/ (deliveries), cur/ (flag renames, expunges,
 * copies) and the mailbox directory (the index and keyword files
 * replaced). Readable means "may have changed": the caller drains it
 * and synchronises. */

/* System library. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

/* Base library. */
#include "errtext.h"
#include "mem.h"
#include "str.h"

/* This library. */
#include "store.h"
#include "store_int.h"

/* sw_add - watch path/sub (sub NULL: path itself) for mask */
static int sw_add(int fd, const char *path, const char *sub, uint32_t mask, const char **error_r)
{
    char buf[4096 + 8];

    if (sub)
	fmt_buf_or_panic(buf, sizeof(buf), "%.4000s/%s", path, sub);
    else
	fmt_buf_or_panic(buf, sizeof(buf), "%.4000s", path);
    if (inotify_add_watch(fd, buf, mask | IN_DONT_FOLLOW | IN_ONLYDIR) < 0)
	return errtext_fail(&store_error, error_r, "inotify_add_watch %s: %s", buf,
			    strerror(errno));
    return 0;
}

/* store_watch_fd - the descriptor, made on the first call */
int store_watch_fd(struct store_mailbox *mb, const char **error_r)
{
    int fd;

    if (mb->watch_fd >= 0)
	return mb->watch_fd;
    if ((fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0)
	return errtext_fail(&store_error, error_r, "inotify_init1: %s", strerror(errno));
    if (sw_add(fd, mb->path, "new", IN_MOVED_TO | IN_CREATE | IN_CLOSE_WRITE, error_r) < 0
	|| sw_add(fd, mb->path, "cur", IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE,
		  error_r) < 0
	|| sw_add(fd, mb->path, NULL, IN_MOVED_TO, error_r) < 0) {
	(void) close(fd);
	return -1;
    }
    mb->watch_fd = fd;
    return fd;
}

/* store_watch_clear - read everything pending (never blocks) */
void store_watch_clear(struct store_mailbox *mb)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    ssize_t n;
    int rounds;

    if (mb->watch_fd < 0)
	return;
    for (rounds = 0; rounds < 1000; rounds++) {
	n = read(mb->watch_fd, buf, sizeof(buf));
	if (n < 0 && errno == EINTR)
	    continue;
	if (n <= 0)
	    break;
    }
}

/* store_watch_close - at store_close */
void store_watch_close(struct store_mailbox *mb)
{
    if (mb->watch_fd >= 0)
	(void) close(mb->watch_fd);
    mb->watch_fd = -1;
}
