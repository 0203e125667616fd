/* store_watch.c - change notification for IDLE: one inotify descriptor
 * per handle watching new/ (deliveries), cur/ (flag renames, expunges,
 * copies) and the mailbox directory (the index and keyword files
 * replaced). Readable means "may have changed": the caller drains it
 * and synchronises unless every event was the handle's own replacement
 * of a file in the mailbox directory (counted by store_watch_own as it
 * is written: a count, not a flag, so that another process replacing
 * the same file in between is still seen). */

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

/* sw_add - watch path/sub (sub NULL: path itself) for mask; the watch
 * descriptor into *wd_r when not NULL */
static int sw_add(int fd, const char *path, const char *sub, uint32_t mask, int *wd_r,
		  const char **error_r)
{
    char buf[4096 + 8];
    int wd;

    if (sub)
	fmt_buf_or_panic(buf, sizeof(buf), "%.4000s/%s", path, sub);
    else
	fmt_buf_or_panic(buf, sizeof(buf), "%.4000s", path);
    if ((wd = inotify_add_watch(fd, buf, mask | IN_DONT_FOLLOW | IN_ONLYDIR)) < 0)
	return errtext_fail(&store_error, error_r, "inotify_add_watch %s: %s", buf,
			    strerror(errno));
    if (wd_r)
	*wd_r = wd;
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
    memset(mb->watch_own, 0, sizeof(mb->watch_own));
    if (sw_add(fd, mb->path, "new", IN_MOVED_TO | IN_CREATE | IN_CLOSE_WRITE, NULL, error_r) < 0
	|| sw_add(fd, mb->path, "cur", IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE,
		  NULL, error_r) < 0
	|| sw_add(fd, mb->path, NULL, IN_MOVED_TO, &mb->watch_dir_wd, error_r) < 0) {
	(void) close(fd);
	return -1;
    }
    mb->watch_fd = fd;
    return fd;
}

/* store_watch_own - this handle replaced name in the mailbox directory:
 * one event for it is not a change (a full table: counted as a change) */
void store_watch_own(struct store_mailbox *mb, const char *name)
{
    size_t i, n = sizeof(mb->watch_own) / sizeof(mb->watch_own[0]);

    if (mb->watch_fd < 0)
	return;
    for (i = 0; i < n; i++)
	if (mb->watch_own[i].name == NULL || strcmp(mb->watch_own[i].name, name) == 0) {
	    mb->watch_own[i].name = name;
	    mb->watch_own[i].count++;
	    return;
	}
}

/* sw_own_event - ev is one of the counted own replacements (uncounts it) */
static bool sw_own_event(struct store_mailbox *mb, const struct inotify_event *ev)
{
    size_t i, n = sizeof(mb->watch_own) / sizeof(mb->watch_own[0]);

    if (ev->wd != mb->watch_dir_wd || ev->len == 0 || (ev->mask & ~(uint32_t) IN_MOVED_TO))
	return false;
    for (i = 0; i < n && mb->watch_own[i].name; i++)
	if (mb->watch_own[i].count > 0 && strcmp(mb->watch_own[i].name, ev->name) == 0) {
	    mb->watch_own[i].count--;
	    return true;
	}
    return false;
}

/* store_watch_clear - read everything pending (never blocks): true when
 * something other than this handle's own replacements happened */
bool store_watch_clear(struct store_mailbox *mb)
{
    char buf[4096 + sizeof(struct inotify_event) + 256]
	__attribute__((aligned(__alignof__(struct inotify_event))));
    const struct inotify_event *ev;
    ssize_t n, off;
    int rounds;
    bool changed = false;

    if (mb->watch_fd < 0)
	return true;
    for (rounds = 0; rounds < 1000; rounds++) {
	n = read(mb->watch_fd, buf, sizeof(buf));
	if (n < 0 && errno == EINTR)
	    continue;
	if (n <= 0)
	    break;
	for (off = 0; off + (ssize_t) sizeof(*ev) <= n; off += (ssize_t) (sizeof(*ev) + ev->len)) {
	    ev = (const struct inotify_event *) (buf + off);
	    if (!sw_own_event(mb, ev))
		changed = true;
	}
    }
    if (rounds >= 1000)
	changed = true;
    /* every own replacement's event was queued when its rename returned:
     * a count left over is one never seen (start afresh) */
    memset(mb->watch_own, 0, sizeof(mb->watch_own));
    return changed;
}

/* store_watch_close - at store_close */
void store_watch_close(struct store_mailbox *mb)
{
    if (mb->watch_fd >= 0)
	(void) close(mb->watch_fd);
    mb->watch_fd = -1;
}
