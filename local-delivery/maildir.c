/* maildir.c - Maildir delivery, with the guarantees the 250 reply made:
 * write the message into tmp/<unique> (one write(2) for most messages),
 * fsync it, move it to new/<unique>,S=<size> without ever replacing a
 * file (renameat2 RENAME_NOREPLACE; where the file system cannot, link
 * and unlink the tmp name), then fsync new/ so that the directory entry
 * is on disk before the recipient is reported "sent". A missing Maildir (dir,
 * tmp, new, cur) is created when the tmp file or the link finds it
 * missing. Runs with the mailbox owner's rights (worker.c). */

/* System library. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
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

    ok = str_printf(s, "%ld.M%06ldP%ldR%016llx.", sec, usec, pid, (unsigned long long) rnd);
    for (; ok && *host; host++) {
	switch (*host) {
	case '/':
	    ok = str_appends(s, "\\057");
	    break;
	case ':':
	    ok = str_appends(s, "\\072");
	    break;
	case ',':
	    ok = str_appends(s, "\\054");
	    break;
	default:
	    ok = str_appendc(s, *host);
	    break;
	}
    }
    if (ok)
	ok = str_copy_out(buf, size, str_cstr(s));
    str_free(&s);
    return ok;
}

/* maildir_make - create dir and its tmp, new, cur (0700) if missing */
int maildir_make(const char *dir, const char **error_r)
{
    static const char *const subs[] = {"tmp", "new", "cur"};
    struct str *path = str_new(8192);
    size_t i;
    int rc = 0;

    for (i = 0; i < sizeof(subs) / sizeof(subs[0]) && rc == 0; i++) {
	(void) str_printf(path, "%s/%s", dir, subs[i]);
	if (mkdir(str_cstr(path), 0700) < 0 && errno != EEXIST)
	    rc = mkdir_p(str_cstr(path), 0700, error_r);
    }
    str_free(&path);
    return rc;
}

/* md_path - out = base + "/" + sub + ("/" + name) */
static void md_path(struct str *out, const struct str *base, const char *sub, const char *name)
{
    (void) str_setn(out, str_cstr(base), str_len(base));
    (void) str_appendc(out, '/');
    (void) str_appends(out, sub);
    if (name) {
	(void) str_appendc(out, '/');
	(void) str_appends(out, name);
    }
}

/*
 * maildir_deliver - deliver msg into Maildir dir. The Maildir is assumed
 * to exist (the common case costs no mkdir or stat); only when creating
 * the tmp file or the link fails with ENOENT is it made (if create) and
 * the step retried.
 */
void maildir_deliver(const char *dir, bool create, long quota, const struct ld_msg *msg,
		     const struct copy_spec *spec, struct ld_result *res)
{
    struct str *base = str_new(8192), *tmp = str_new(8192), *new = str_new(8192);
    char unique[512], sizebuf[32];
    const char *err;
    struct ld_fd_sink ms;
    struct timespec ts;
    struct stat st;
    uint64_t rnd;
    off_t size = 0;
    long used;
    int attempt, e;
    bool made = false;

    (void) str_set(base, dir);
    while (str_len(base) > 1 && base->data[base->len - 1] == '/')
	(void) str_truncate(base, str_len(base) - 1);
    if (!create && (stat(str_cstr(base), &st) < 0 || !S_ISDIR(st.st_mode))) {
	ld_result_set(res, LD_DEFER, "4.2.0", "maildir %s does not exist", str_cstr(base));
	goto out;
    }

    /* The message, in tmp/ under a name no other delivery can have. */
    ms.fd = -1;
    ms.err = 0;
    for (attempt = 0; attempt < 5 && ms.fd < 0; attempt++) {
	(void) clock_gettime(CLOCK_REALTIME, &ts);
	if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t) sizeof(rnd))
	    rnd = (uint64_t) ts.tv_nsec ^ ((uint64_t) getpid() << 32) ^ (uint64_t) attempt;
	if (!maildir_unique(unique, sizeof(unique), (long) ts.tv_sec, ts.tv_nsec / 1000,
			    (long) getpid(), rnd, var_myhostname)) {
	    ld_result_set(res, LD_DEFER, "4.3.5", "maildir file name too long (myhostname?)");
	    goto out;
	}
	md_path(tmp, base, "tmp", unique);
	ms.fd = open(str_cstr(tmp), O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY,
		     0600);
	if (ms.fd < 0 && errno == ENOENT && create && !made) {
	    made = true;
	    if (maildir_make(str_cstr(base), &err) < 0) {
		ld_result_set(res, LD_DEFER, "4.2.0", "cannot create maildir %s: %s",
			      str_cstr(base), err);
		goto out;
	    }
	    attempt--;			/* that one does not count */
	    continue;
	}
	if (ms.fd < 0 && errno != EEXIST) {
	    ld_result_from_errno(res, errno, "cannot create maildir file", str_cstr(tmp));
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
	    ld_result_from_errno(res, ms.err, "cannot write", str_cstr(tmp));
	goto fail_tmp;
    }
    if (fsync(ms.fd) < 0) {
	ld_result_from_errno(res, errno, "cannot fsync", str_cstr(tmp));
	goto fail_tmp;
    }
    if (close(ms.fd) < 0) {
	ms.fd = -1;
	ld_result_from_errno(res, errno, "cannot close", str_cstr(tmp));
	goto fail_tmp;
    }
    ms.fd = -1;

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

    /* The commit: move into new/ (never replacing), sync the directory. */
    (void) fmt_buf(sizebuf, sizeof(sizebuf), ",S=%lld", (long long) size);
    md_path(new, base, "new", unique);
    (void) str_appends(new, sizebuf);
    for (;;) {
	if (renameat2(AT_FDCWD, str_cstr(tmp), AT_FDCWD, str_cstr(new), RENAME_NOREPLACE) == 0)
	    break;
	e = errno;
	if (e == EINVAL || e == ENOSYS || e == EOPNOTSUPP) {
	    /* no rename without replacing here: link, which never replaces */
	    if (link(str_cstr(tmp), str_cstr(new)) == 0) {
		(void) unlink(str_cstr(tmp));
		break;
	    }
	    e = errno;
	}
	if (e == ENOENT && create && !made) {
	    /* tmp/ was there, new/ was not: complete the Maildir */
	    made = true;
	    if (maildir_make(str_cstr(base), &err) < 0) {
		ld_result_set(res, LD_DEFER, "4.2.0", "cannot create maildir %s: %s",
			      str_cstr(base), err);
		goto fail_tmp;
	    }
	    continue;
	}
	ld_result_from_errno(res, e, "cannot move into", str_cstr(new));
	goto fail_tmp;
    }
    md_path(new, base, "new", NULL);
    if (fsync_dir(str_cstr(new), &err) < 0) {
	/* on disk or not: we cannot tell, so deliver again later */
	ld_result_set(res, LD_DEFER, "4.3.0", "%s", err);
	goto out;
    }
    quota_maildir_add(str_cstr(base), (long) size);	/* if there is a maildirsize */
    ld_result_set(res, LD_SENT, "2.0.0", "delivered to maildir");
    goto out;

  fail_tmp:
    if (ms.fd >= 0)
	(void) close(ms.fd);
    (void) unlink(str_cstr(tmp));
  out:
    str_free(&base);
    str_free(&tmp);
    str_free(&new);
}
