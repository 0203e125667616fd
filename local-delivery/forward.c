/* forward.c - mail that leaves a local recipient for somewhere else.
 *
 * forward_read() reads a system user's .forward (or .forward+EXT for
 * user+EXT@), running as that user: the file must be a regular file
 * owned by the user (or root) and writable by nobody else, or the
 * recipient is deferred (as qmail does for a writable .qmail) rather
 * than letting another account decide where the user's mail goes.
 *
 * forward_submit() hands a copy of the message to cleanup for addresses
 * that are not delivered here (an alias or .forward pointing at another
 * host): envelope sender unchanged (or owner-NAME@$myorigin when the
 * alias NAME has an owner- alias: deliver.c decides), DSN ORCPT/NOTIFY
 * kept, and
 * "Delivered-To: <the forwarding address>" prepended so that the copy is
 * recognised if it ever comes back (loop detection). The new queue file
 * exists once cleanup answers status 0; only then is the recipient
 * "sent" ("forwarded as ID"). */

/* System library. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Base library. */
#include "msg.h"
#include "str.h"
#include "stream.h"

/* Mail library. */
#include "cleanup_client.h"
#include "config.h"
#include "mail_proto.h"
#include "queue_file.h"

/* This program. */
#include "local.h"

#define FORWARD_FILE_MAX	(64 * 1024)

static char fw_errbuf[1024];

/* fw_read_one - one candidate file: 1 read, 0 absent, -1 unsafe/error */
static int fw_read_one(const char *path, uid_t uid, struct str *text, const char **error_r)
{
    char buf[8192];
    struct stat st;
    ssize_t n;
    int fd, rc = 1;

    if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)) < 0) {
	if (errno == ENOENT || errno == ENOTDIR || errno == EACCES)
	    return 0;
	(void) fmt_buf(fw_errbuf, sizeof(fw_errbuf), "cannot open %s: %s", path, strerror(errno));
	*error_r = fw_errbuf;
	return -1;
    }
    if (fstat(fd, &st) < 0) {
	(void) fmt_buf(fw_errbuf, sizeof(fw_errbuf), "cannot stat %s: %s", path, strerror(errno));
	rc = -1;
    } else if (!S_ISREG(st.st_mode)) {
	(void) fmt_buf(fw_errbuf, sizeof(fw_errbuf), "%s is not a regular file", path);
	rc = -1;
    } else if (st.st_uid != uid && st.st_uid != 0) {
	(void) fmt_buf(fw_errbuf, sizeof(fw_errbuf), "%s is owned by uid %ld, not by the "
		       "recipient (uid %ld)", path, (long) st.st_uid, (long) uid);
	rc = -1;
    } else if (st.st_mode & (S_IWGRP | S_IWOTH)) {
	(void) fmt_buf(fw_errbuf, sizeof(fw_errbuf), "%s is writable by group or others", path);
	rc = -1;
    }
    while (rc == 1) {
	n = read(fd, buf, sizeof(buf));
	if (n < 0 && errno == EINTR)
	    continue;
	if (n < 0) {
	    (void) fmt_buf(fw_errbuf, sizeof(fw_errbuf), "cannot read %s: %s", path,
			   strerror(errno));
	    rc = -1;
	} else if (n == 0) {
	    break;
	} else if (!str_append(text, buf, (size_t) n)) {
	    (void) fmt_buf(fw_errbuf, sizeof(fw_errbuf), "%s is longer than %d bytes", path,
			   FORWARD_FILE_MAX);
	    rc = -1;
	}
    }
    (void) close(fd);
    if (rc < 0)
	*error_r = fw_errbuf;
    else if (str_has_nul(text)) {
	(void) fmt_buf(fw_errbuf, sizeof(fw_errbuf), "%s contains a NUL byte", path);
	*error_r = fw_errbuf;
	rc = -1;
    }
    return rc;
}

/* forward_read - home/.forward+ext, then home/.forward */
int forward_read(const char *home, const char *ext, uid_t uid, struct str *text,
		 const char **error_r)
{
    struct str *path = str_new(8192), *buf = str_new(FORWARD_FILE_MAX);
    int rc = 0;

    if (ext && *ext && var_recipient_delimiter[0]) {
	(void) str_printf(path, "%s/.forward%c%s", home, var_recipient_delimiter[0], ext);
	if (strchr(ext, '/') == NULL)
	    rc = fw_read_one(str_cstr(path), uid, buf, error_r);
    }
    if (rc == 0) {
	(void) str_printf(path, "%s/.forward", home);
	str_reset(buf);
	rc = fw_read_one(str_cstr(path), uid, buf, error_r);
    }
    if (rc > 0)
	(void) str_set(text, str_cstr(buf));
    str_free(&path);
    str_free(&buf);
    return rc;
}

/* fw_piece - content_walk callback: copy each record as it was */
static int fw_piece(const char *data, size_t len, int flags, void *ctx)
{
    struct stream *s = ctx;

    return qf_put(s, (flags & CONTENT_LINE_END) ? QF_REC_LINE : QF_REC_CONT, data, len) < 0 ? -1 : 0;
}

/* forward_submit - resubmit msg to cleanup for the addresses */
void forward_submit(const struct ld_msg *msg, const char *sender, const char *delivered_to,
		    char **addresses, size_t n, const char *orcpt, const char *notify,
		    struct ld_result *res)
{
    struct str *hdr = str_new(8192);
    struct cleanup_client *c;
    struct cleanup_result cr;
    const char *err = NULL;
    size_t i;
    int bad = 0;

    if ((c = cleanup_client_open(NULL, &err)) == NULL) {
	ld_result_set(res, LD_DEFER, "4.3.0", "cannot forward: %s", err);
	goto out;
    }
    if (cleanup_client_begin(c, 0, "local-delivery", &err) < 0) {
	ld_result_set(res, LD_DEFER, "4.3.0", "cannot forward: %s", err);
	cleanup_client_abandon(&c);
	goto out;
    }
    bad |= cleanup_client_sender(c, sender);
    if (msg->dsn_envid && *msg->dsn_envid)
	bad |= cleanup_client_attr(c, QATTR_DSN_ENVID, msg->dsn_envid);
    if (msg->dsn_ret && *msg->dsn_ret)
	bad |= cleanup_client_attr(c, QATTR_DSN_RET, msg->dsn_ret);
    for (i = 0; i < n; i++)
	bad |= cleanup_client_rcpt(c, addresses[i], orcpt && *orcpt ? orcpt : NULL,
				   notify && *notify ? notify : NULL);
    bad |= cleanup_client_message(c);
    (void) str_appends(hdr, "Delivered-To: ");
    content_header_value(hdr, delivered_to, false);
    bad |= cleanup_client_line(c, str_cstr(hdr), str_len(hdr));
    if (bad == 0 && content_walk(msg->fd, msg->data_offset, fw_piece,
				 cleanup_client_stream(c), &err) < 0) {
	ld_result_set(res, LD_DEFER, "4.3.0", "cannot forward: %s",
		      err ? err : "cleanup connection lost");
	cleanup_client_abandon(&c);
	goto out;
    }
    bad |= cleanup_client_xend(c);
    if (cleanup_client_finish(c, &cr, &err) < 0)
	ld_result_set(res, LD_DEFER, "4.3.0", "cannot forward: %s", err);
    else if (cr.status != 0)
	ld_result_set(res, LD_DEFER, "4.3.0", "cannot forward: cleanup: %s",
		      cr.reason[0] ? cr.reason : "message not queued");
    else
	ld_result_set(res, LD_SENT, "2.0.0", "forwarded as %s", cr.queue_id);
    cleanup_client_close(&c);
  out:
    str_free(&hdr);
}
