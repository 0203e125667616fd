/* job.c - the pieces of delivery work that run with a user's rights: a
 * Maildir or mbox delivery, a command or file target, reading a .forward
 * or :include: file, measuring a mailbox for verify. ld_job_run() does
 * one job in the calling process; worker.c and runas.c decide which
 * process that is (one that has dropped to the user's ids for good). */

/* System library. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Base library. */
#include "msg.h"
#include "str.h"

/* Mail library. */
#include "table.h"

/* Store. */
#include "store.h"

/* This program. */
#include "local.h"

/* jb_read_include - read an :include: file; payload "OWNER\nTEXT" */
static void jb_read_include(const char *path, struct ld_result *res, struct str *payload)
{
    char buf[8192], why[LD_REASON_MAX - 64];
    struct str *text = str_new(TABLE_ENTRY_MAX);
    struct stat st;
    ssize_t n;
    int fd;

    if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)) < 0) {
	ld_result_set(res, errno == ENOENT ? LD_BOUNCE : LD_DEFER, errno == ENOENT ? "5.3.0" : "4.3.0",
		      "cannot open include file %s: %s", path, strerror(errno));
	goto out;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
	ld_result_set(res, LD_BOUNCE, "5.3.0", "include file %s is not a regular file", path);
	goto out_close;
    }
    if (ld_list_file_unsafe(&st, path, (uid_t) -1, why, sizeof(why))) {
	ld_result_set(res, LD_DEFER, "4.7.0", "unsafe include file: %s", why);
	goto out_close;
    }
    for (;;) {
	n = read(fd, buf, sizeof(buf));
	if (n < 0 && errno == EINTR)
	    continue;
	if (n < 0) {
	    ld_result_set(res, LD_DEFER, "4.3.0", "cannot read %s: %s", path, strerror(errno));
	    goto out_close;
	}
	if (n == 0)
	    break;
	if (!str_try_append(text, buf, (size_t) n)) {
	    ld_result_set(res, LD_BOUNCE, "5.3.0", "include file %s is too long", path);
	    goto out_close;
	}
    }
    if (payload)
	str_printf_or_panic(payload, "%ld\n%s", (long) st.st_uid, str_cstr(text));
    ld_result_set(res, LD_SENT, "2.0.0", "read %s", path);
  out_close:
    (void) close(fd);
  out:
    str_free(&text);
}

/* jb_usage - bytes used by a mailbox; payload "BYTES" */
static void jb_usage(const char *path, long quota, struct ld_result *res, struct str *payload)
{
    size_t len = strlen(path);
    const char *err;
    struct stat st;
    long used = 0;

    if (len > 0 && path[len - 1] == '/') {
	if (stat(path, &st) == 0 && quota_maildir_usage(path, quota, &used, &err) < 0) {
	    ld_result_set(res, LD_DEFER, "4.3.0", "%s", err);
	    return;
	}
    } else if (stat(path, &st) == 0) {
	used = (long) st.st_size;
    }
    if (payload)
	str_printf_or_panic(payload, "%ld", used);
    ld_result_set(res, LD_SENT, "2.0.0", "usage");
}

/* jb_maildir - a Maildir delivery; a mailbox this delivery made (it
 * made cur/) gets the special-use folders (Drafts, Sent, Trash, Junk)
 * every new user has (store_folders_ensure_special; imapd makes them at
 * the first login otherwise). A failure there is only logged. */
static void jb_maildir(const struct ld_job *job, struct ld_result *res)
{
    const char *err;
    bool fresh;

    maildir_deliver(job->path, true, job->quota, job->msg, &job->spec, res, &fresh);
    if (fresh && res->status == LD_SENT && store_folders_ensure_special(job->path, &err) < 0)
	msg_warn("%s: cannot make the special-use folders: %s", job->path, err);
}

/* ld_job_needs_msg - does this kind of job read the message? */
bool ld_job_needs_msg(enum ld_job_kind kind)
{
    return kind == LD_JOB_MAILDIR || kind == LD_JOB_MBOX || kind == LD_JOB_COMMAND
	|| kind == LD_JOB_FILE;
}

/* ld_job_run - do one job here */
void ld_job_run(const struct ld_job *job, struct ld_result *res, struct str *payload)
{
    const char *err = "";
    size_t found = 0;
    int rc;

    switch (job->kind) {
    case LD_JOB_MAILDIR:
	jb_maildir(job, res);
	break;
    case LD_JOB_MBOX:
	mbox_deliver(job->path, &job->mbox, job->msg, &job->spec, res);
	break;
    case LD_JOB_COMMAND:
	command_deliver(job->command, &job->env, job->msg, &job->spec, res);
	break;
    case LD_JOB_FILE:
	file_deliver(job->path, job->msg, &job->spec, res);
	break;
    case LD_JOB_FORWARD_FILE:
	if ((rc = forward_read(job->path, job->uid, payload, &found, &err)) < 0)
	    ld_result_set(res, LD_DEFER, "4.7.0", "unsafe or unreadable .forward: %s", err);
	else if (rc > 0)
	    ld_result_set(res, LD_SENT, "2.0.0", "found %zu", found);
	else
	    ld_result_set(res, LD_SENT, "2.0.0", "none");
	break;
    case LD_JOB_INCLUDE_FILE:
	jb_read_include(job->path, res, payload);
	break;
    case LD_JOB_USAGE:
	jb_usage(job->path, job->quota, res, payload);
	break;
    }
}
