/* maildir.c - Maildir delivery, with the guarantees the 250 reply made:
 * open the Maildir and its tmp/ and new/ without following a symlink a
 * user owns (safe_open_dir, per component), then, relative to those
 * descriptors only: write the message into tmp/<unique> (one write(2)
 * for most messages), fsync it, move it to new/<unique>,S=<size>
 * without ever replacing a file (renameat2 RENAME_NOREPLACE; where the
 * file system cannot, link and unlink the tmp name), then fsync new/ so
 * that the directory entry is on disk before the recipient is reported
 * "sent"; if that fsync fails, the message is taken out of new/ again
 * and the recipient deferred, so that the retry's copy is the only one.
 * A missing Maildir (dir, tmp, new, cur) is created. Runs with the
 * mailbox owner's rights (worker.c).
 *
 * Where the file system has O_TMPFILE, the file in tmp/ has no name: it
 * is written, fsynced and then linked into new/ (md_open_unnamed).
 *
 * The fsync of new/ is a group commit (lib/base/group_sync.h), as
 * cleanup's of incoming/: deliveries into the same Maildir from several
 * local-delivery processes meet in .posthorn-sync in the Maildir (the
 * mailbox owner's, mode 0600; a regular file, which no reader takes for
 * a Maildir++ folder, as those are directories), and a
 * delivery returns "sent" only after an fsync of new/ that STARTED after
 * its rename has succeeded, whoever ran it. A worker keeps the state of
 * the last few Maildirs open (MD_SYNC_CACHE). */

/* System library. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Base library. */
#include "group_sync.h"
#include "msg.h"
#include "safe_file.h"
#include "str.h"

/* Mail library. */
#include "config.h"

/* This program. */
#include "local.h"

/*
 * maildir_unique - "SEC.M<usec>P<pid>R<random>.<host>". The host name
 * has "/", ":" and "," escaped (as \057, \072, \054), since "/" cannot
 * be in a file name, ":" starts the info part and "," the Maildir++
 * size fields.
 */
bool maildir_unique(char *buf, size_t size, long sec, long usec, long pid, uint64_t rnd,
		    const char *host)
{
    struct str *s = str_new(size > 0 ? size - 1 : 0);
    bool ok;

    ok = str_try_printf(s, "%ld.M%06ldP%ldR%016llx.", sec, usec, pid, (unsigned long long) rnd);
    for (; ok && *host; host++) {
	switch (*host) {
	case '/':
	    ok = str_try_appends(s, "\\057");
	    break;
	case ':':
	    ok = str_try_appends(s, "\\072");
	    break;
	case ',':
	    ok = str_try_appends(s, "\\054");
	    break;
	default:
	    ok = str_try_appendc(s, *host);
	    break;
	}
    }
    if (ok)
	ok = str_try_copy_out(buf, size, str_cstr(s));
    str_free(&s);
    return ok;
}

#define MD_SYNC_FILE	".posthorn-sync"	/* the group commit's state */
#define MD_SYNC_CACHE	8			/* Maildirs whose state stays open */

/* The group commit state of the last few new/ directories this process
 * delivered into, by the directory's identity; each keeps its own
 * descriptor of new/ (the delivery closes its own). */
static struct md_sync {
    dev_t dev;
    ino_t ino;
    struct group_sync *gs;		/* NULL: a free slot */
    int dirfd;
    unsigned long used;			/* LRU stamp */
} md_sync_cache[MD_SYNC_CACHE];
static unsigned long md_sync_clock;
static pid_t md_sync_pid;		/* the process the cache belongs to */
static int (*md_sync_fn)(int) = fsync;

void maildir_set_fsync(int (*fn)(int fd))
{
    md_sync_fn = fn;
    for (int i = 0; i < MD_SYNC_CACHE; i++)
	if (md_sync_cache[i].gs)
	    group_sync_set_fsync(md_sync_cache[i].gs, fn);
}

/*
 * This process: its pid and a random seed for the R part of the names,
 * taken once per process (getpid and getrandom are system calls, and a
 * worker delivers many messages). A fork clears them in the child
 * (pthread_atfork), which takes its own at its first delivery.
 */
static pid_t md_pid;			/* 0: not taken yet, or forked */
static uint64_t md_seed;		/* random, per process */
static uint64_t md_count;		/* names made by this process */

static void md_forked(void)
{
    md_pid = 0;
}

/* md_self - this process's pid (see above) */
static pid_t md_self(void)
{
    static bool registered;

    if (md_pid == 0) {
	if (!registered && pthread_atfork(NULL, NULL, md_forked) == 0)
	    registered = true;
	md_pid = getpid();
	if (getrandom(&md_seed, sizeof(md_seed), 0) != (ssize_t) sizeof(md_seed)) {
	    struct timespec ts;

	    (void) clock_gettime(CLOCK_REALTIME, &ts);
	    md_seed = (uint64_t) ts.tv_nsec ^ ((uint64_t) md_pid << 32);
	}
	md_count = 0;
	if (!registered)			/* no fork detection: ask each time */
	    md_pid = 0;
    }
    return md_pid ? md_pid : getpid();
}

/* md_sync_get - the group commit state of new/ (new_fd, in the Maildir
 * base_fd); NULL if it cannot be had (then sync alone) */
static struct md_sync *md_sync_get(int base_fd, int new_fd)
{
    struct md_sync *slot = NULL;
    struct stat st;
    const char *err;
    int fd, dirfd;

    if (fstat(new_fd, &st) < 0)
	return NULL;
    if (md_sync_pid != md_self()) {
	/* forked: the state's lock belongs to the open file description,
	 * which the parent shares, and a worker closes what it inherits;
	 * start afresh (without touching the parent's descriptors) */
	memset(md_sync_cache, 0, sizeof(md_sync_cache));
	md_sync_pid = md_self();
    }
    for (int i = 0; i < MD_SYNC_CACHE; i++) {
	struct md_sync *m = &md_sync_cache[i];

	if (m->gs && m->dev == st.st_dev && m->ino == st.st_ino) {
	    m->used = ++md_sync_clock;
	    return m;
	}
	if (slot == NULL || (slot->gs && (m->gs == NULL || m->used < slot->used)))
	    slot = m;
    }
    if (slot->gs) {				/* evict the least recently used */
	group_sync_close(&slot->gs);
	(void) close(slot->dirfd);
    }
    if ((fd = openat(base_fd, MD_SYNC_FILE, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC
		     | O_NOCTTY, 0600)) < 0)
	return NULL;
    if ((dirfd = fcntl(new_fd, F_DUPFD_CLOEXEC, 3)) < 0) {
	(void) close(fd);
	return NULL;
    }
    if ((slot->gs = group_sync_open_fd(fd, dirfd, &err)) == NULL) {
	static bool warned;		/* once per process, not per delivery */

	if (!warned)
	    msg_warn("maildir group commit: %s (syncing alone)", err);
	warned = true;
	(void) close(dirfd);
	return NULL;
    }
    group_sync_set_fsync(slot->gs, md_sync_fn);
    slot->dev = st.st_dev;
    slot->ino = st.st_ino;
    slot->dirfd = dirfd;
    slot->used = ++md_sync_clock;
    return slot;
}

/* md_sync_new - make the rename into new/ durable: 0, or -1 with errno */
static int md_sync_new(int base_fd, int new_fd)
{
    struct md_sync *m = md_sync_get(base_fd, new_fd);
    const char *err;

    if (m == NULL)
	return md_sync_fn(new_fd);
    return group_sync_dir(m->gs, &err);
}

/* md_open_sub - tmp/, new/ or cur/ of the open Maildir, no symlink */
static int md_open_sub(int base_fd, const char *sub, bool create, const char **error_r)
{
    return safe_openat_dir(base_fd, sub, create, 0700, error_r);
}

/* md_refused - the result for a Maildir (or part) that cannot be used */
static void md_refused(struct ld_result *res, int err, const char *dir, const char *why)
{
    if (err == ENOSPC || err == EDQUOT)
	ld_result_from_errno(res, err, "cannot create maildir", dir);
    else
	ld_result_set(res, LD_DEFER, "4.2.0", "maildir %s: %s", dir, why);
}

/* md_unique - a fresh unique name (maildir_unique) for this attempt */
static bool md_unique(char *buf, size_t size, int attempt)
{
    struct timespec ts;
    pid_t pid = md_self();
    uint64_t rnd;

    (void) clock_gettime(CLOCK_REALTIME, &ts);
    /* the seed plus a count, spread (an odd multiplier is a bijection):
     * no two names of this process share it, whatever the clock does */
    rnd = md_seed + ++md_count * UINT64_C(0x9e3779b97f4a7c15) + (uint64_t) attempt;
    return maildir_unique(buf, size, (long) ts.tv_sec, ts.tv_nsec / 1000, (long) pid, rnd,
			  var_myhostname);
}

/*
 * Unnamed files (O_TMPFILE). The message is written and fsynced in a
 * file that has no name at all, then linked into new/ under its final
 * name: nothing ever appears in tmp/, so a crash leaves no half-written
 * file there, and the fsync of the file does not also have to write
 * tmp/ (ext4 without a journal syncs the parent of a new file with it:
 * one block write fewer per delivery). The link goes through
 * /proc/self/fd/N (linkat AT_SYMLINK_FOLLOW, which, unlike AT_EMPTY_PATH,
 * needs no privilege) and, like the rename, never replaces a name.
 * md_tmpfile_state: 0 untried, 1 works, -1 not here (the file system
 * has no O_TMPFILE, or /proc is not mounted): named files in tmp/, as
 * before, for the rest of this process.
 */
static int md_tmpfile_state;

/* md_proc_fd - "/proc/self/fd/N" */
static void md_proc_fd(char *buf, size_t size, int fd)
{
    fmt_buf_or_panic(buf, size, "/proc/self/fd/%d", fd);
}

/* md_open_unnamed - an unnamed file in tmp/, or -1: with errno, or with
 * md_tmpfile_state now -1 (take a named one) */
static int md_open_unnamed(int tmp_fd)
{
    char path[64];
    struct stat fst, pst;
    int fd;

    if ((fd = openat(tmp_fd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC | O_NOCTTY, 0600)) < 0) {
	if (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL) {
	    md_tmpfile_state = -1;
	    msg_info("maildir: no O_TMPFILE here (%m): files are written under tmp/ names");
	}
	return -1;
    }
    if (md_tmpfile_state == 0) {
	/* once: can the file be named later through /proc? */
	md_proc_fd(path, sizeof(path), fd);
	if (fstat(fd, &fst) < 0 || stat(path, &pst) < 0 || fst.st_ino != pst.st_ino
	    || fst.st_dev != pst.st_dev) {
	    md_tmpfile_state = -1;
	    msg_info("maildir: %s cannot be used: files are written under tmp/ names", path);
	    (void) close(fd);
	    return -1;
	}
	md_tmpfile_state = 1;
    }
    return fd;
}

/* md_link_unnamed - give the unnamed file fd the name new/name, never
 * replacing one: 0 or an errno (EEXIST: the name is taken) */
static int md_link_unnamed(int fd, int new_fd, const char *name)
{
    char path[64];

    md_proc_fd(path, sizeof(path), fd);
    return linkat(AT_FDCWD, path, new_fd, name, AT_SYMLINK_FOLLOW) == 0 ? 0 : errno;
}

/*
 * maildir_deliver - deliver msg into Maildir dir. The Maildir and its
 * tmp/ and new/ are opened first, every component without following a
 * symlink that a user owns (safe_open_dir), and all later steps work
 * relative to those descriptors: nothing is ever written, moved or
 * synced through a name that could be swapped for a link meanwhile.
 * Missing directories are made (dir and its parents, tmp, new, cur)
 * when create is set; *made_cur_r (if not NULL) tells whether this call
 * made cur/, i.e. whether the Maildir is new.
 */
void maildir_deliver(const char *dir, bool create, long quota, const struct ld_msg *msg,
		     const struct copy_spec *spec, struct ld_result *res, bool *made_cur_r)
{
    struct str *base = str_new(8192);
    char unique[512], newname[560];
    const char *err;
    struct ld_fd_sink ms;
    off_t size = 0;
    long used;
    bool named;
    int attempt, e, base_fd = -1, tmp_fd = -1, new_fd = -1;

    if (made_cur_r)
	*made_cur_r = false;
    ms.fd = -1;
    ms.err = 0;
    str_set_or_panic(base, dir);
    while (str_len(base) > 1 && base->data[base->len - 1] == '/')
	(void) str_truncate(base, str_len(base) - 1);
    if ((base_fd = safe_open_dir(str_cstr(base), create, 0700, &err)) < 0) {
	e = errno;
	if (e == ENOENT)
	    ld_result_set(res, LD_DEFER, "4.2.0", "maildir %s does not exist", str_cstr(base));
	else
	    ld_result_set(res, LD_DEFER, "4.2.0", "%s", err);
	if (e == ELOOP)
	    msg_warn("%s", res->reason);
	goto out;
    }
    if ((tmp_fd = md_open_sub(base_fd, "tmp", create, &err)) < 0
	|| (new_fd = md_open_sub(base_fd, "new", create, &err)) < 0) {
	e = errno;
	md_refused(res, e, str_cstr(base), err);
	if (e == ELOOP)
	    msg_warn("%s", res->reason);
	goto out;
    }
    if (create) {
	/* a new Maildir needs cur/ as well (readers expect all three);
	 * nothing is written there, so one mkdirat(2) that finds a name
	 * (EEXIST) is enough, where an open and a close were */
	if (mkdirat(base_fd, "cur", 0700) == 0) {
	    if (made_cur_r)
		*made_cur_r = true;
	} else if (errno != EEXIST) {
	    char why[160];

	    e = errno;
	    fmt_buf_cut(why, sizeof(why), "cannot make cur/: %s", strerror(e));
	    md_refused(res, e, str_cstr(base), why);
	    goto out;
	}
    }

    /* The message: an unnamed file in tmp/ (O_TMPFILE) where the file
     * system has them, else tmp/ under a name no other delivery can have. */
    named = md_tmpfile_state < 0;
    if (!named) {
	ms.fd = md_open_unnamed(tmp_fd);
	if (ms.fd < 0 && md_tmpfile_state >= 0) {
	    ld_result_from_errno(res, errno, "cannot create maildir file in", str_cstr(base));
	    goto out;
	}
	named = ms.fd < 0;
    }
    for (attempt = 0; named && attempt < 5 && ms.fd < 0; attempt++) {
	if (!md_unique(unique, sizeof(unique), attempt)) {
	    ld_result_set(res, LD_DEFER, "4.3.5", "maildir file name too long (myhostname?)");
	    goto out;
	}
	ms.fd = openat(tmp_fd, unique, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC
		       | O_NOCTTY, 0600);
	if (ms.fd < 0 && errno != EEXIST) {
	    ld_result_from_errno(res, errno, "cannot create maildir file in", str_cstr(base));
	    goto out;
	}
    }
    if (ms.fd < 0) {
	ld_result_set(res, LD_DEFER, "4.2.0", "cannot find a unique name in %s/tmp",
		      str_cstr(base));
	goto out;
    }
    if (content_copy(msg, spec, ld_fd_sink_write, &ms, &size, &err) < 0) {
	if (err)
	    ld_result_set(res, LD_DEFER, "4.3.0", "%s", err);
	else
	    ld_result_from_errno(res, ms.err, "cannot write to maildir", str_cstr(base));
	goto fail_tmp;
    }
    if (md_sync_fn(ms.fd) < 0) {
	ld_result_from_errno(res, errno, "cannot fsync maildir file in", str_cstr(base));
	goto fail_tmp;
    }
    if (named) {
	e = close(ms.fd);
	ms.fd = -1;
	if (e < 0) {
	    ld_result_from_errno(res, errno, "cannot close maildir file in", str_cstr(base));
	    goto fail_tmp;
	}
    }

    /* The quota, now that the exact size is known. */
    if (quota > 0) {
	if (quota_maildir_usage(str_cstr(base), quota, &used, &err) < 0) {
	    ld_result_set(res, LD_DEFER, "4.2.0", "cannot determine the mailbox size: %s", err);
	    goto fail_tmp;
	}
	if (quota_exceeded(used, (long) size, quota)) {
	    ld_result_set(res, LD_BOUNCE, "5.2.2", "mailbox full: %ld of %ld bytes used, "
			  "message of %lld bytes", used, quota, (long long) size);
	    goto fail_tmp;
	}
    }

    /* The commit: into new/ (never replacing), sync the directory. */
    if (!named) {
	for (attempt = 0;; attempt++) {
	    if (!md_unique(unique, sizeof(unique), attempt)) {
		ld_result_set(res, LD_DEFER, "4.3.5", "maildir file name too long (myhostname?)");
		goto fail_tmp;
	    }
	    fmt_buf_or_panic(newname, sizeof(newname), "%s,S=%lld", unique, (long long) size);
	    if ((e = md_link_unnamed(ms.fd, new_fd, newname)) != EEXIST || attempt >= 4)
		break;
	}
	if (e != 0) {
	    ld_result_from_errno(res, e, "cannot move into new/ of", str_cstr(base));
	    goto fail_tmp;
	}
	(void) close(ms.fd);
	ms.fd = -1;
    } else {
	fmt_buf_or_panic(newname, sizeof(newname), "%s,S=%lld", unique, (long long) size);
	if (renameat2(tmp_fd, unique, new_fd, newname, RENAME_NOREPLACE) < 0) {
	    e = errno;
	    if (e == EINVAL || e == ENOSYS || e == EOPNOTSUPP) {
		/* no rename without replacing here: link, which never replaces */
		e = linkat(tmp_fd, unique, new_fd, newname, 0) == 0 ? 0 : errno;
		if (e == 0)
		    (void) unlinkat(tmp_fd, unique, 0);
	    }
	    if (e != 0) {
		ld_result_from_errno(res, e, "cannot move into new/ of", str_cstr(base));
		goto fail_tmp;
	    }
	}
    }
    if (md_sync_new(base_fd, new_fd) < 0) {
	/*
	 * On disk or not, we cannot tell. Take the message back out of
	 * new/ so that the retry's copy is the only one (cleanup does the
	 * same with its queue file); a crash right here may still leave
	 * it, which is the at-least-once of docs/queue.md.
	 */
	e = errno;
	if (unlinkat(new_fd, newname, 0) < 0)
	    msg_warn("cannot remove %s/new/%s after a failed fsync: %s (the retry may "
		     "deliver a second copy)", str_cstr(base), newname, strerror(errno));
	else
	    (void) fsync(new_fd);
	ld_result_set(res, LD_DEFER, "4.3.0", "cannot fsync %s/new: %s (message removed, "
		      "will retry)", str_cstr(base), strerror(e));
	goto out;
    }
    quota_maildir_add(str_cstr(base), (long) size);	/* if there is a maildirsize */
    ld_result_set(res, LD_SENT, "2.0.0", "delivered to maildir");
    goto out;

  fail_tmp:
    if (ms.fd >= 0)
	(void) close(ms.fd);		/* an unnamed file goes with it */
    ms.fd = -1;
    if (named)
	(void) unlinkat(tmp_fd, unique, 0);
  out:
    if (base_fd >= 0)
	(void) close(base_fd);
    if (tmp_fd >= 0)
	(void) close(tmp_fd);
    if (new_fd >= 0)
	(void) close(new_fd);
    str_free(&base);
}
