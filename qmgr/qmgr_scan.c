/* qmgr_scan.c - directory scans and the moves between queue states.
 *
 *   start-up        active/ID   load (a crash or restart left them);
 *                              beyond the active limit: back to incoming/
 *   incoming scan   incoming/ID -> active/ID, load
 *   deferred scan   deferred/ID whose mtime (next attempt) has come, or
 *                   all of them on a flush -> active/ID, load
 *   corrupt file    -> corrupt/ID with a warning
 *
 * Entries that are not regular files (a FIFO, a socket, a directory, a
 * symbolic link) are set aside before anything else is done with them:
 * the directory scans look at the type (d_type, else lstat), and the
 * load opens without following links and without blocking and checks
 * the type again with fstat (qmgr_open_queue_file). A FIFO opened for
 * reading would block qmgr for good.
 *
 * Names that are not queue IDs are skipped (cleanup's temp names,
 * tmp.*, live only for the moment between its create and its rename).
 * A file in incoming/ whose owner may not read it (mode 0200) is still
 * being written by cleanup, which names a new file by its ID before it
 * writes it and sets 0600 only once it is complete (queue_mode_ready,
 * architecture.md decision 51): it is not taken, neither by a scan nor
 * by a trigger that names it; cleanup's own trigger, or the next scan,
 * takes it once ready. A check of the mode and then the rename is safe:
 * a file never goes back from ready to in progress. Files of either kind
 * that a crash abandoned are removed by the deferred scan once older
 * than twice daemon_timeout (cleanup's watchdog ends a process stuck in
 * one message after daemon_timeout, so no live cleanup still writes
 * them), with a log line. hold/ is never looked at. None of these
 * renames needs a directory fsync: after a crash the file is found under
 * either name, and both are recovered (docs/queue.md). */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* base */
#include "msg.h"
#include "safe_file.h"
#include "str.h"

/* mail */
#include "config.h"
#include "queue_id.h"

/* qmgr */
#include "qmgr.h"

static bool incoming_blocked;	/* stopped at the active limit */
static bool deferred_blocked;
static bool deferred_blocked_all;

/* qmgr_scan_blocked - a scan left work behind because of the limit */
bool qmgr_scan_blocked(void)
{
    return incoming_blocked || deferred_blocked;
}

/* room - may one more message come into memory? */
static bool room(void)
{
    return qmgr_active_count < var_qmgr_message_active_limit;
}

/* qmgr_move_corrupt - a file that cannot be delivered goes aside. An
 * entry that is not even a regular file and cannot be moved is removed
 * (it holds no message, and left in place it would be met again and
 * again). */
void qmgr_move_corrupt(const char *queue, const char *id, const char *why)
{
    char from[64], to[64];
    const char *err;
    struct stat st;

    fmt_buf_or_panic(from, sizeof(from), "%s/%s", queue, id);
    fmt_buf_or_panic(to, sizeof(to), "corrupt/%s", id);
    if (durable_rename(from, to, &err) == 0) {
	msg_warn("%s: %s; moved to corrupt/", id, why);
	return;
    }
    if (lstat(from, &st) == 0 && !S_ISREG(st.st_mode)
	&& (S_ISDIR(st.st_mode) ? rmdir(from) : unlink(from)) == 0)
	msg_warn("%s: %s; cannot move it to corrupt/ (%s): removed", id, why, err);
    else
	msg_warn("%s: %s; cannot move it to corrupt/: %s", id, why, err);
}

/* qmgr_open_queue_file - open queue/ID (path) without following a
 * symbolic link and without blocking (a FIFO would block a plain open
 * for good), then check that it is a regular file. Returns the fd
 * (O_NONBLOCK left on: no effect on a regular file), or -1: errno
 * ENOENT (gone), or with the entry already moved to corrupt/ (*corrupt
 * = true), or another error (logged by the caller). */
int qmgr_open_queue_file(const char *queue, const char *id, int flags, struct stat *st,
			 bool *corrupt)
{
    char path[64];
    int fd;

    *corrupt = false;
    fmt_buf_or_panic(path, sizeof(path), "%s/%s", queue, id);
    if ((fd = open(path, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)) < 0) {
	if (errno == ELOOP || errno == ENXIO || errno == EISDIR) {
	    /* a symbolic link; a FIFO opened for writing, a socket; a directory */
	    qmgr_move_corrupt(queue, id, "not a regular file");
	    *corrupt = true;
	}
	return -1;
    }
    if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
	close(fd);
	qmgr_move_corrupt(queue, id, "not a regular file");
	*corrupt = true;
	return -1;
    }
    /* O_NONBLOCK stays: on a regular file Linux ignores it (reads and
     * writes block as usual), and clearing it cost two system calls */
    return fd;
}

/* entry_regular - is the directory entry a regular file? Others go to
 * corrupt/ at once (and false). d_type saves the lstat where the file
 * system fills it in. */
static bool entry_regular(const char *queue, const struct dirent *de)
{
    char path[64];
    struct stat st;

    if (de->d_type == DT_REG)
	return true;
    if (de->d_type == DT_UNKNOWN) {
	fmt_buf_or_panic(path, sizeof(path), "%s/%s", queue, de->d_name);
	if (lstat(path, &st) < 0)
	    return false;		/* gone: nothing to do */
	if (S_ISREG(st.st_mode))
	    return true;
    }
    qmgr_move_corrupt(queue, de->d_name, "not a regular file");
    return false;
}

/* in_progress - is path a regular file that cleanup is still writing
 * (its owner may not read it)? Gone: true too (nothing to take). */
static bool in_progress(const char *path)
{
    struct stat st;

    if (fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
	return errno == ENOENT;
    return S_ISREG(st.st_mode) && !queue_mode_ready(st.st_mode);
}

/* activate - queue/ID -> active/ID, then load it; a file in incoming/
 * that cleanup is still writing is left where it is */
static void activate(const char *queue, const char *id)
{
    char from[64], to[64];

    if (qmgr_message_busy(id))
	return;				/* the next scan takes it */
    fmt_buf_or_panic(from, sizeof(from), "%s/%s", queue, id);
    fmt_buf_or_panic(to, sizeof(to), "active/%s", id);
    if (strcmp(queue, "incoming") == 0 && in_progress(from)) {
	if (msg_verbose)
	    msg_info("%s: still being written -- not taken yet", id);
	return;				/* cleanup's trigger or the next scan */
    }
    if (rename(from, to) < 0) {
	if (errno != ENOENT)
	    msg_warn("%s: move %s to active/: %m", id, from);
	return;
    }
    qmgr_message_load(id);
}

/* stale_incoming - remove what a crashed cleanup left in incoming/: a
 * temp file (tmp.*) or a queue file still in progress (mode 0200), once
 * older than twice daemon_timeout */
static void stale_incoming(const char *name, bool temp, double now)
{
    char path[512];
    struct stat st;

    if (!fmt_try_buf(path, sizeof(path), "incoming/%s", name) || lstat(path, &st) < 0)
	return;
    if (!S_ISREG(st.st_mode) || (!temp && queue_mode_ready(st.st_mode))
	|| (double) st.st_mtime >= now - 2.0 * (double) var_daemon_timeout)
	return;
    if (unlink(path) < 0)
	return;
    if (temp)
	msg_info("removed stale temporary file %s", path);
    else
	msg_warn("%s: removed stale incomplete queue file %s (mode %04o, not written since "
		 "%.0f s: its cleanup process died; never acknowledged)", name, path,
		 (unsigned) (st.st_mode & 07777), now - (double) st.st_mtime);
}

/* qmgr_scan_incoming - take new messages */
void qmgr_scan_incoming(void)
{
    DIR *dir;
    struct dirent *de;

    incoming_blocked = false;
    if ((dir = opendir("incoming")) == NULL) {
	msg_warn("open incoming/: %m");
	return;
    }
    while ((de = readdir(dir)) != NULL) {
	if (!queue_id_valid(de->d_name))
	    continue;
	if (!room()) {
	    incoming_blocked = true;
	    break;
	}
	if (entry_regular("incoming", de))
	    activate("incoming", de->d_name);
    }
    closedir(dir);
}

/* qmgr_scan_take_incoming - the trigger named incoming/ID: take it
 * without reading the directory. Gone already (a scan took it): fine.
 * No room: the next scan takes it. */
void qmgr_scan_take_incoming(const char *id)
{
    if (!room()) {
	incoming_blocked = true;
	return;
    }
    activate("incoming", id);
}

/* qmgr_scan_deferred - retry messages whose time has come (all: now) */
void qmgr_scan_deferred(bool all)
{
    DIR *dir;
    struct dirent *de;
    double now = qmgr_now();
    DIR *inc;

    deferred_blocked = false;
    all = all || deferred_blocked_all;
    deferred_blocked_all = false;
    if ((dir = opendir("deferred")) == NULL) {
	msg_warn("open deferred/: %m");
	return;
    }
    while ((de = readdir(dir)) != NULL) {
	char path[64];
	struct stat st;

	if (!queue_id_valid(de->d_name))
	    continue;
	if (!room()) {
	    deferred_blocked = true;
	    deferred_blocked_all = all;
	    break;
	}
	fmt_buf_or_panic(path, sizeof(path), "deferred/%s", de->d_name);
	if (lstat(path, &st) < 0)
	    continue;
	if (!S_ISREG(st.st_mode)) {
	    qmgr_move_corrupt("deferred", de->d_name, "not a regular file");
	    continue;
	}
	if (!all && (double) st.st_mtime > now)
	    continue;
	activate("deferred", de->d_name);
    }
    closedir(dir);
    /* the periodic scan also sweeps what crashed cleanup processes left:
     * temp files, and queue files still in progress (an ID not taken,
     * i.e. still in incoming/ after the scan, is looked at) */
    if ((inc = opendir("incoming")) != NULL) {
	while ((de = readdir(inc)) != NULL) {
	    if (queue_temp_name_valid(de->d_name))
		stale_incoming(de->d_name, true, now);
	    else if (queue_id_valid(de->d_name) && (de->d_type == DT_REG || de->d_type == DT_UNKNOWN))
		stale_incoming(de->d_name, false, now);
	}
	closedir(inc);
    }
}

/* qmgr_scan_recover - at start-up: what a previous qmgr left in active/ */
void qmgr_scan_recover(void)
{
    DIR *dir;
    struct dirent *de;
    long loaded = 0, returned = 0;

    if ((dir = opendir("active")) == NULL)
	msg_fatal("open active/: %m");
    while ((de = readdir(dir)) != NULL) {
	if (!queue_id_valid(de->d_name)) {
	    if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
		msg_warn("active/%s: not a queue file name -- skipped", de->d_name);
	    continue;
	}
	if (!entry_regular("active", de))
	    continue;
	if (room()) {
	    qmgr_message_load(de->d_name);
	    loaded++;
	} else {
	    char from[64], to[64];

	    fmt_buf_or_panic(from, sizeof(from), "active/%s", de->d_name);
	    fmt_buf_or_panic(to, sizeof(to), "incoming/%s", de->d_name);
	    if (rename(from, to) < 0)
		msg_warn("move %s back to incoming/: %m", from);
	    else
		returned++;
	}
    }
    closedir(dir);
    if (loaded || returned)
	msg_info("recovered %ld message%s from active/%s", loaded, loaded == 1 ? "" : "s",
		 returned ? " (the rest went back to incoming/)" : "");
}
