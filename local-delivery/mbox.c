/* mbox.c - mbox delivery: append one message to a file in mbox format,
 * locked against mail readers with BOTH a dotlock (FILE.lock, created
 * with O_EXCL, holding "PID HOST"; one whose holder on this host is gone
 * is broken at once, one older than stale_lock_time is removed) and an
 * fcntl write lock. A failed or partial write is rolled back with ftruncate to
 * the old size, so a mailbox never keeps half a message. The file must
 * be a regular file with one link (no symlinks: O_NOFOLLOW), owned by
 * the delivering user when asked. Runs with the recipient's rights. */

/* System library. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Base library. */
#include "msg.h"
#include "safe_file.h"
#include "str.h"

/* Mail library. */
#include "config.h"

/* This program. */
#include "local.h"

static char mbox_errbuf[1024];

#define MB_LOCK_TEXT_MAX	300	/* "PID HOST\n" */

/* mb_lock_holder_gone - lock text is "PID HOST\n" as mbox_dotlock
 * writes it, HOST is this host and no process PID exists */
static bool mb_lock_holder_gone(const char *text, long *pid_r)
{
    const char *sp = strchr(text, ' ');
    size_t hlen = strlen(var_myhostname);
    struct str *num;
    long pid;
    bool ok;

    if (sp == NULL || strncmp(sp + 1, var_myhostname, hlen) != 0
	|| strcmp(sp + 1 + hlen, "\n") != 0)
	return false;
    num = str_new(32);
    ok = str_try_setn(num, text, (size_t) (sp - text)) && parse_long(str_cstr(num), &pid)
	&& pid > 0 && pid <= 0x7fffffffL;
    str_free(&num);
    if (!ok)
	return false;
    *pid_r = pid;
    /* EPERM (another user's process) means alive, like success */
    return kill((pid_t) pid, 0) < 0 && errno == ESRCH;
}

/*
 * mb_break_dead_lock - remove lock if it names a process of this host
 * that is gone (a delivery killed between its write and its unlock).
 * Safely: the lock is renamed to a name of ours first, and removed only
 * if that is still the file whose text we judged (same inode); a lock
 * another delivery made in between is put back. true if it went.
 */
static bool mb_break_dead_lock(const char *lock)
{
    char buf[MB_LOCK_TEXT_MAX + 1];
    struct str *aside = str_new(8192);
    struct stat st, st2;
    bool broken = false;
    ssize_t n;
    long pid = 0;
    int fd;

    if ((fd = open(lock, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)) < 0)
	goto out;
    n = (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) ? read(fd, buf, MB_LOCK_TEXT_MAX) : -1;
    (void) close(fd);
    if (n <= 0)
	goto out;
    buf[n] = 0;
    if (strlen(buf) != (size_t) n || !mb_lock_holder_gone(buf, &pid))
	goto out;
    if (!str_try_printf(aside, "%s.dead.%ld", lock, (long) getpid())
	|| rename(lock, str_cstr(aside)) < 0)
	goto out;
    if (lstat(str_cstr(aside), &st2) == 0 && st2.st_ino == st.st_ino && st2.st_dev == st.st_dev) {
	(void) unlink(str_cstr(aside));
	msg_warn("removed lock file %s of process %ld, which no longer exists", lock, pid);
	broken = true;
    } else if (renameat2(AT_FDCWD, str_cstr(aside), AT_FDCWD, lock, RENAME_NOREPLACE) < 0) {
	msg_warn("cannot put back lock file %s (moved aside as %s): %s", lock,
		 str_cstr(aside), strerror(errno));
    }
  out:
    str_free(&aside);
    return broken;
}

/* mbox_dotlock - create path.lock; stale ones are removed */
int mbox_dotlock(const char *path, const char **error_r)
{
    struct str *lock = str_new(8192), *text = str_new(MB_LOCK_TEXT_MAX);
    struct stat st;
    long attempt;
    int fd, rc = -1;

    if (!str_try_printf(lock, "%s.lock", path)) {
	*error_r = "mailbox path too long for its lock file name";
	goto out;
    }
    for (attempt = 0; attempt < var_deliver_lock_attempts; attempt++) {
	fd = open(str_cstr(lock), O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY,
		  0600);
	if (fd >= 0) {
	    /* who holds it, so that a dead holder is seen at once */
	    if (!str_try_printf(text, "%ld %s\n", (long) getpid(), var_myhostname))
		str_printf_or_panic(text, "%ld\n", (long) getpid());	/* no host: never ours */
	    (void) write_all_fd(fd, str_cstr(text), str_len(text));
	    (void) close(fd);
	    rc = 0;
	    goto out;
	}
	if (errno == EACCES || errno == EROFS || errno == EPERM) {
	    fmt_buf_cut(mbox_errbuf, sizeof(mbox_errbuf), "cannot create %s: %s",
			   str_cstr(lock), strerror(errno));
	    *error_r = mbox_errbuf;
	    rc = 1;
	    goto out;
	}
	if (errno != EEXIST) {
	    fmt_buf_cut(mbox_errbuf, sizeof(mbox_errbuf), "cannot create %s: %s",
			   str_cstr(lock), strerror(errno));
	    *error_r = mbox_errbuf;
	    goto out;
	}
	if (mb_break_dead_lock(str_cstr(lock))) {
	    attempt--;			/* that one does not count */
	    continue;
	}
	if (lstat(str_cstr(lock), &st) == 0 && time(NULL) - st.st_mtime > var_stale_lock_time) {
	    if (unlink(str_cstr(lock)) == 0)
		msg_warn("removed stale lock file %s (%ld seconds old)", str_cstr(lock),
			 (long) (time(NULL) - st.st_mtime));
	    attempt--;			/* that one does not count */
	    continue;
	}
	if (attempt + 1 < var_deliver_lock_attempts)
	    sleep((unsigned) var_deliver_lock_delay);
    }
    fmt_buf_cut(mbox_errbuf, sizeof(mbox_errbuf), "cannot lock %s: %s exists",
		   path, str_cstr(lock));
    *error_r = mbox_errbuf;
  out:
    str_free(&lock);
    str_free(&text);
    return rc;
}

/* mbox_dotunlock - remove path.lock */
void mbox_dotunlock(const char *path)
{
    struct str *lock = str_new(8192);

    if (str_try_printf(lock, "%s.lock", path) && unlink(str_cstr(lock)) < 0 && errno != ENOENT)
	msg_warn("cannot remove %s: %s", str_cstr(lock), strerror(errno));
    str_free(&lock);
}

/* mb_fcntl_lock - an fcntl write lock on the whole file, with retries */
static bool mb_fcntl_lock(int fd)
{
    struct flock fl;
    long attempt;

    memset(&fl, 0, sizeof(fl));
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    for (attempt = 0; attempt < var_deliver_lock_attempts; attempt++) {
	if (fcntl(fd, F_SETLK, &fl) == 0)
	    return true;
	if (errno != EAGAIN && errno != EACCES && errno != EINTR)
	    return false;
	if (attempt + 1 < var_deliver_lock_attempts)
	    sleep((unsigned) var_deliver_lock_delay);
    }
    errno = EAGAIN;
    return false;
}

/* mbox_deliver - append msg to the mbox file path, locked */
void mbox_deliver(const char *path, const struct mbox_opts *opts, const struct ld_msg *msg,
		  const struct copy_spec *spec, struct ld_result *res)
{
    const char *err = "";
    struct ld_fd_sink ms;
    struct stat st;
    bool dotlocked = false;
    off_t orig = -1, size = 0;
    int rc;

    /* A virtual mbox may live in a directory that is not there yet. */
    if (opts->create_parent) {
	struct str *dir = str_new(8192);
	const char *slash = strrchr(path, '/');

	if (slash != NULL && slash != path) {
	    str_setn_or_panic(dir, path, (size_t) (slash - path));
	    if (mkdir_p(str_cstr(dir), 0700, &err) < 0) {
		ld_result_set(res, LD_DEFER, "4.2.0", "%s", err);
		str_free(&dir);
		return;
	    }
	}
	str_free(&dir);
    }

    /* Lock first (the dotlock protects the creation, too). */
    if ((rc = mbox_dotlock(path, &err)) < 0) {
	ld_result_set(res, LD_DEFER, "4.2.0", "%s", err);
	return;
    }
    if (rc > 0 && opts->dotlock_required) {
	ld_result_set(res, LD_DEFER, "4.2.0", "%s (the mail spool directory must be "
		      "writable by its group)", err);
	return;
    }
    dotlocked = rc == 0;

    /* O_NONBLOCK: a FIFO (or device) in the file's place must not block
     * the open; it is refused below (or here: ENXIO, a FIFO without a
     * reader) as not a regular file */
    ms.err = 0;
    ms.fd = open(path, O_WRONLY | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (ms.fd < 0 && errno == ENOENT && opts->create)
	ms.fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK
		     | O_CLOEXEC | O_NOCTTY, 0600);
    if (ms.fd < 0) {
	if (errno == ELOOP)
	    ld_result_set(res, LD_DEFER, "4.2.0", "mailbox %s is a symbolic link", path);
	else if (errno == ENXIO)
	    ld_result_set(res, LD_BOUNCE, "5.2.0", "%s is not a regular file", path);
	else
	    ld_result_from_errno(res, errno, "cannot open", path);
	goto out;
    }
    if (fstat(ms.fd, &st) < 0) {
	ld_result_from_errno(res, errno, "cannot stat", path);
	goto out_close;
    }
    if (!S_ISREG(st.st_mode)) {
	ld_result_set(res, LD_BOUNCE, "5.2.0", "%s is not a regular file", path);
	goto out_close;
    }
    if (fcntl(ms.fd, F_SETFL, O_APPEND) < 0) {	/* blocking writes again */
	ld_result_from_errno(res, errno, "cannot set flags of", path);
	goto out_close;
    }
    if (st.st_nlink != 1) {
	ld_result_set(res, LD_DEFER, "4.2.0", "mailbox %s has %ld hard links", path,
		      (long) st.st_nlink);
	goto out_close;
    }
    if (opts->check_owner && st.st_uid != geteuid()) {
	ld_result_set(res, LD_DEFER, "4.2.0", "mailbox %s is owned by uid %ld, not by uid %ld",
		      path, (long) st.st_uid, (long) geteuid());
	goto out_close;
    }
    if (st.st_mode & (S_IXUSR | S_IXGRP | S_IXOTH)) {
	ld_result_set(res, LD_BOUNCE, "5.2.0", "refusing to append to executable file %s", path);
	goto out_close;
    }
    if (!mb_fcntl_lock(ms.fd)) {
	ld_result_set(res, LD_DEFER, "4.2.0", "cannot lock %s: %s", path, strerror(errno));
	goto out_close;
    }
    if ((orig = lseek(ms.fd, 0, SEEK_END)) < 0) {
	ld_result_from_errno(res, errno, "cannot seek", path);
	goto out_close;
    }
    if (content_copy(msg, spec, ld_fd_sink_write, &ms, &size, &err) < 0) {
	if (err)
	    ld_result_set(res, LD_DEFER, "4.3.0", "%s", err);
	else
	    ld_result_from_errno(res, ms.err, "cannot write", path);
	goto rollback;
    }
    if (quota_exceeded((long) orig, (long) size, opts->quota)) {
	ld_result_set(res, LD_BOUNCE, "5.2.2", "mailbox full: %lld bytes used, quota %ld, "
		      "message of %lld bytes", (long long) orig, opts->quota, (long long) size);
	goto rollback;
    }
    if (quota_exceeded((long) orig, (long) size, opts->size_limit)) {
	ld_result_set(res, LD_BOUNCE, "5.2.2", "mailbox full: %s would exceed "
		      "mailbox_size_limit (%ld bytes)", path, opts->size_limit);
	goto rollback;
    }
    if (fsync(ms.fd) < 0) {
	ld_result_from_errno(res, errno, "cannot fsync", path);
	goto rollback;
    }
    ld_result_set(res, LD_SENT, "2.0.0", "delivered to mailbox");
    goto out_close;

  rollback:
    if (orig >= 0 && ftruncate(ms.fd, orig) < 0)
	msg_warn("cannot truncate %s back to %lld bytes: %s", path, (long long) orig,
		 strerror(errno));
  out_close:
    (void) close(ms.fd);			/* releases the fcntl lock */
  out:
    if (dotlocked)
	mbox_dotunlock(path);
}
