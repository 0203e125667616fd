/* main.c - pickup, the daemon that takes locally submitted mail from
 * maildrop/ and hands it to cleanup.
 *
 * pickup is a SERVER_TRIGGER daemon on the public/pickup fifo (master.cf:
 * "pickup fifo n - n 60 1 pickup"): postdrop writes "W" after each drop,
 * master's wakeup timer every 60 seconds, and pickup scans once when it
 * starts, so mail dropped while the system was down goes out at start.
 *
 * For each file in maildrop/ whose name is a valid queue ID, oldest
 * first: open it (no symlinks, a regular file with one link), take the
 * submitting uid from its owner, check every record with the maildrop
 * rules (record_grammar.h, the maildrop profile), and copy it to cleanup
 * with CLEANUP_FLAG_LOCAL | CLEANUP_FLAG_UNTRUSTED (plus
 * CLEANUP_FLAG_EXTRACT for sendmail -t), origin "pickup", the file's
 * mtime as the arrival time and submit_uid=<owner>. Then:
 *   cleanup said queued      unlink maildrop/ID (fsync maildrop/ once
 *                            per scan); the message is in incoming/
 *   permanent error, or a    rename to corrupt/ID (fsync both
 *   file that breaks rules   directories) and log why: never dropped
 *   temporary error          leave it; the next trigger retries
 * Files named like postdrop's temp files that are older than a day
 * (postdrop was killed) are removed; any other name goes to corrupt/.
 *
 * SECURITY: maildrop files come from local users; pickup trusts nothing
 * in them (size limits, record whitelist, attribute whitelist) and
 * never lets them set the arrival time, client attributes or done
 * marks. pickup runs as the mail owner (unpriv y). */

/* System library. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Base library. */
#include "mem.h"
#include "msg.h"
#include "str.h"
#include "stream.h"

/* Mail library. */
#include "cleanup_client.h"
#include "cleanup_stat.h"
#include "config.h"
#include "mail_proto.h"
#include "maildrop.h"
#include "maildrop_cleanup.h"
#include "queue_file.h"
#include "queue_id.h"
#include "record_grammar.h"
#include "server.h"

#define MAILDROP_DIR		"maildrop"
#define CORRUPT_DIR		"corrupt"
#define PICKUP_ORIGIN		"pickup"
#define PICKUP_BATCH_MAX	10000		/* names per directory pass */
#define PICKUP_STALE_TEMP	(24 * 3600)	/* seconds */

enum pk_result { PK_DONE, PK_GONE, PK_BAD, PK_TEMP };

struct pk_state {
    struct cleanup_client *cleanup;	/* open during one scan */
    bool dirty;				/* maildrop/ changed: fsync it */
    bool cleanup_down;			/* stop this scan */
    size_t taken;			/* files gone from maildrop/ */
};

/* pk_fsync_dir - fsync a queue subdirectory, warn on failure */
static void pk_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd < 0 || fsync(fd) < 0)
	msg_warn("fsync %s: %m", dir);
    if (fd >= 0)
	(void) close(fd);
}

/* pk_to_corrupt - move maildrop/name to corrupt/name, durably */
static void pk_to_corrupt(struct pk_state *st, const char *name, const char *why)
{
    char from[300], to[300];

    fmt_buf_or_panic(from, sizeof(from), "%s/%s", MAILDROP_DIR, name);
    fmt_buf_or_panic(to, sizeof(to), "%s/%s", CORRUPT_DIR, name);
    if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) < 0) {
	msg_warn("%s: %s; cannot move it to %s: %m (left in place)", from, why, to);
	return;
    }
    pk_fsync_dir(CORRUPT_DIR);
    st->dirty = true;
    st->taken++;
    msg_warn("%s: %s; moved to %s", from, why, to);
}

/* pk_copy - check one opened maildrop file and send it to cleanup
 * (maildrop_cleanup.h): the owner is the submitter, the mtime the
 * arrival time */
static enum pk_result pk_copy(struct pk_state *st, int fd, const struct stat *sb,
			      struct str *sender, struct cleanup_result *result,
			      const char **why)
{
    struct maildrop_submission sub = {
	.uid = (unsigned long) sb->st_uid,
	.sec = (int64_t) sb->st_mtim.tv_sec,
	.usec = sb->st_mtim.tv_nsec / 1000,
	.origin = PICKUP_ORIGIN,
	.size_limit = var_message_size_limit,
    };
    struct stream *in = stream_open(fd);
    enum maildrop_result res;

    stream_set_timeout(in, (int) (var_ipc_timeout * 1000));
    res = maildrop_to_cleanup(&st->cleanup, in, &sub, sender, result, why, &st->cleanup_down);
    stream_free(&in);
    return res == MAILDROP_QUEUED ? PK_DONE : res == MAILDROP_BAD ? PK_BAD : PK_TEMP;	/* TEMP, NO_CLEANUP */
}

/* pk_one - pick up maildrop/id */
static void pk_one(struct pk_state *st, const char *id, struct str *sender)
{
    struct cleanup_result result;
    char path[sizeof(MAILDROP_DIR) + QUEUE_ID_SIZE + 1];
    const char *why = NULL;
    enum pk_result res;
    struct stat sb;
    int fd;

    fmt_buf_or_panic(path, sizeof(path), "%s/%s", MAILDROP_DIR, id);
    if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)) < 0) {
	if (errno == ENOENT)
	    return;
	if (errno == ELOOP) {
	    pk_to_corrupt(st, id, "symbolic link");
	    return;
	}
	msg_warn("open %s: %m", path);
	return;
    }
    if (fstat(fd, &sb) < 0) {
	msg_warn("fstat %s: %m", path);
	(void) close(fd);
	return;
    }
    if (!S_ISREG(sb.st_mode) || sb.st_nlink != 1) {
	(void) close(fd);
	pk_to_corrupt(st, id, S_ISREG(sb.st_mode) ? "file has more than one link"
		      : "not a regular file");
	return;
    }
    server_watchdog_reset();
    res = pk_copy(st, fd, &sb, sender, &result, &why);
    (void) close(fd);
    switch (res) {
    case PK_DONE:
	msg_info("%s: uid=%lu from=<%s>", result.queue_id, (unsigned long) sb.st_uid,
		 sender->data);
	if (msg_verbose)
	    msg_info("%s: from %s", result.queue_id, path);
	if (unlink(path) < 0 && errno != ENOENT)
	    msg_warn("remove %s: %m (it will be picked up again)", path);
	st->dirty = true;
	st->taken++;
	break;
    case PK_GONE:
	break;
    case PK_BAD:{
	    char text[CLEANUP_REASON_MAX + 128];

	    fmt_buf_cut(text, sizeof(text), "uid=%lu from=<%s>: rejected: %s",
			   (unsigned long) sb.st_uid, sender->data, why);
	    pk_to_corrupt(st, id, text);
	    break;
	}
    case PK_TEMP:
	msg_warn("%s: uid=%lu from=<%s>: deferred: %s", path, (unsigned long) sb.st_uid,
		 sender->data, why);
	break;
    }
}

/* pk_name_cmp - qsort: oldest queue ID first */
static int pk_name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

/* pk_odd_name - a file that is neither a queue ID nor a live temp file */
static void pk_odd_name(struct pk_state *st, const char *name)
{
    char path[300];
    struct stat sb;

    if (!queue_temp_name_valid(name)) {
	pk_to_corrupt(st, name, "unexpected file name");
	return;
    }
    fmt_buf_or_panic(path, sizeof(path), "%s/%s", MAILDROP_DIR, name);
    if (lstat(path, &sb) == 0 && sb.st_mtime < time(NULL) - PICKUP_STALE_TEMP) {
	if (unlink(path) == 0) {
	    msg_warn("%s: removed a stale temporary file (postdrop died)", path);
	    st->dirty = true;
	}
    }
}

/* pk_scan_pass - one pass over maildrop/ */
static void pk_scan_pass(struct pk_state *st, struct str *sender)
{
    char **names = NULL;
    size_t count = 0, cap = 0;
    struct dirent *de;
    DIR *dir;

    if ((dir = opendir(MAILDROP_DIR)) == NULL) {
	msg_warn("open directory %s: %m", MAILDROP_DIR);
	return;
    }
    while ((de = readdir(dir)) != NULL && count < PICKUP_BATCH_MAX) {
	if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
	    continue;
	if (!queue_id_valid(de->d_name)) {
	    pk_odd_name(st, de->d_name);
	    continue;
	}
	if (count == cap) {
	    cap = cap ? cap * 2 : 64;
	    names = mem_realloc(names, mem_size_mul(cap, sizeof(*names)));
	}
	names[count++] = mem_strdup(de->d_name);
    }
    (void) closedir(dir);
    if (count > 1)
	qsort(names, count, sizeof(*names), pk_name_cmp);
    for (size_t i = 0; i < count; i++) {
	if (!st->cleanup_down)
	    pk_one(st, names[i], sender);
	mem_free(&names[i]);
    }
    mem_free(&names);
}

/* pk_scan - pass after pass until maildrop/ is empty or cleanup is down */
static void pk_scan(void)
{
    struct pk_state st = {NULL, false, false, 0};
    struct str *sender = str_new(MAILDROP_ADDR_MAX);
    size_t before;

    /* Again while passes make progress: files may arrive meanwhile. */
    do {
	before = st.taken;
	pk_scan_pass(&st, sender);
    } while (st.taken > before && !st.cleanup_down);
    if (st.cleanup)
	cleanup_client_close(&st.cleanup);
    if (st.dirty)
	pk_fsync_dir(MAILDROP_DIR);
    str_free(&sender);
}

/* pk_trigger - any wake-up means: scan */
static void pk_trigger(const char *buf, size_t len)
{
    (void) buf;
    (void) len;
    pk_scan();
}

/* pk_post_init - scan once at start: mail dropped while we were down */
static void pk_post_init(int argc, char **argv)
{
    (void) argv;
    if (argc > 0)
	msg_fatal("unexpected arguments");
    if (!server_stdin_mode())
	pk_scan();
}

int main(int argc, char **argv)
{
    static const struct server_spec spec = {
	.kind = SERVER_TRIGGER,
	.name = "pickup",
	.post_init = pk_post_init,
	.trigger = pk_trigger,
    };

    return server_main(argc, argv, &spec);
}
