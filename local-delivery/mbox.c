/* mbox.c - mbox delivery: append one message to a file in mbox format,
 * locked against mail readers with BOTH a dotlock (FILE.lock, created
 * with O_EXCL; one older than stale_lock_time is removed) and an fcntl
 * write lock. A failed or partial write is rolled back with ftruncate to
 * the old size, so a mailbox never keeps half a message. The file must
 * be a regular file with one link (no symlinks: O_NOFOLLOW), owned by
 * the delivering user when asked. Runs with the recipient's rights. */

/* System library. */
#include <errno.h>
#include <fcntl.h>
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

/* mbox_dotlock - create path.lock; stale ones are removed */
int mbox_dotlock(const char *path, const char **error_r)
{
    struct str *lock = str_new(8192);
    struct stat st;
    char pid[32];
    long attempt;
    int fd, rc = -1;

    (void) str_printf(lock, "%s.lock", path);
    for (attempt = 0; attempt < var_deliver_lock_attempts; attempt++) {
	fd = open(str_cstr(lock), O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY,
		  0600);
	if (fd >= 0) {
	    (void) fmt_buf(pid, sizeof(pid), "%ld\n", (long) getpid());
	    (void) write_all_fd(fd, pid, strlen(pid));
	    (void) close(fd);
	    rc = 0;
	    goto out;
	}
	if (errno == EACCES || errno == EROFS || errno == EPERM) {
	    (void) fmt_buf(mbox_errbuf, sizeof(mbox_errbuf), "cannot create %s: %s",
			   str_cstr(lock), strerror(errno));
	    *error_r = mbox_errbuf;
	    rc = 1;
	    goto out;
	}
	if (errno != EEXIST) {
	    (void) fmt_buf(mbox_errbuf, sizeof(mbox_errbuf), "cannot create %s: %s",
			   str_cstr(lock), strerror(errno));
	    *error_r = mbox_errbuf;
	    goto out;
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
    (void) fmt_buf(mbox_errbuf, sizeof(mbox_errbuf), "cannot lock %s: %s exists",
		   path, str_cstr(lock));
    *error_r = mbox_errbuf;
  out:
    str_free(&lock);
    return rc;
}

/* mbox_dotunlock - remove path.lock */
void mbox_dotunlock(const char *path)
{
    struct str *lock = str_new(8192);

    (void) str_printf(lock, "%s.lock", path);
    if (unlink(str_cstr(lock)) < 0 && errno != ENOENT)
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
	    (void) str_setn(dir, path, (size_t) (slash - path));
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

    ms.err = 0;
    ms.fd = open(path, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
    if (ms.fd < 0 && errno == ENOENT && opts->create)
	ms.fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY,
		     0600);
    if (ms.fd < 0) {
	if (errno == ELOOP)
	    ld_result_set(res, LD_DEFER, "4.2.0", "mailbox %s is a symbolic link", path);
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
