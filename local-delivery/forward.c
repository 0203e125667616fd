/* forward.c - mail that leaves a local recipient for somewhere else.
 *
 * forward_path_candidates() expands forward_path (kept unexpanded by
 * main.cf) for one recipient with a small bounded expander of its own;
 * forward_read() reads the first candidate that exists (by default
 * .forward+EXT for user+EXT@, then .forward), running as the user: the
 * file must be a regular file
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
#include "mem.h"
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
#define FP_DEPTH_MAX		8	/* nested ${name?...} */

static char fw_errbuf[1024];

/*
 * ld_list_file_unsafe - the one rule for files whose targets are obeyed
 * with their owner's rights (.forward, :include:): a regular file that
 * neither its group nor others may write (else another account could
 * choose where mail goes and which commands run), and, when owner is
 * not (uid_t) -1, owned by owner or root. true with the reason in buf.
 */
bool ld_list_file_unsafe(const struct stat *st, const char *path, uid_t owner, char *buf,
			 size_t size)
{
    if (!S_ISREG(st->st_mode))
	fmt_buf_cut(buf, size, "%s is not a regular file", path);
    else if (owner != (uid_t) -1 && st->st_uid != owner && st->st_uid != 0)
	fmt_buf_cut(buf, size, "%s is owned by uid %ld, not by the recipient (uid %ld)",
		       path, (long) st->st_uid, (long) owner);
    else if (st->st_mode & (S_IWGRP | S_IWOTH))
	fmt_buf_cut(buf, size, "%s is writable by group or others", path);
    else
	return false;
    return true;
}

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
	fmt_buf_cut(fw_errbuf, sizeof(fw_errbuf), "cannot open %s: %s", path, strerror(errno));
	*error_r = fw_errbuf;
	return -1;
    }
    if (fstat(fd, &st) < 0) {
	fmt_buf_cut(fw_errbuf, sizeof(fw_errbuf), "cannot stat %s: %s", path, strerror(errno));
	rc = -1;
    } else if (ld_list_file_unsafe(&st, path, uid, fw_errbuf, sizeof(fw_errbuf))) {
	rc = -1;
    }
    while (rc == 1) {
	n = read(fd, buf, sizeof(buf));
	if (n < 0 && errno == EINTR)
	    continue;
	if (n < 0) {
	    fmt_buf_cut(fw_errbuf, sizeof(fw_errbuf), "cannot read %s: %s", path,
			   strerror(errno));
	    rc = -1;
	} else if (n == 0) {
	    break;
	} else if (!str_try_append(text, buf, (size_t) n)) {
	    fmt_buf_cut(fw_errbuf, sizeof(fw_errbuf), "%s is longer than %d bytes", path,
			   FORWARD_FILE_MAX);
	    rc = -1;
	}
    }
    (void) close(fd);
    if (rc < 0)
	*error_r = fw_errbuf;
    else if (str_has_nul(text)) {
	fmt_buf_cut(fw_errbuf, sizeof(fw_errbuf), "%s contains a NUL byte", path);
	*error_r = fw_errbuf;
	rc = -1;
    }
    return rc;
}

/* forward_read - the first of the candidate paths that exists */
int forward_read(const char *paths, uid_t uid, struct str *text, size_t *found,
		 const char **error_r)
{
    struct str *path = str_new(FP_PATH_MAX), *buf = str_new(FORWARD_FILE_MAX);
    const char *cp = paths, *nl;
    size_t i;
    int rc = 0;

    for (i = 0; rc == 0 && *cp; i++) {
	nl = strchr(cp, '\n');
	if (!str_try_setn(path, cp, nl ? (size_t) (nl - cp) : strlen(cp)) || str_cstr(path)[0] != '/') {
	    fmt_buf_cut(fw_errbuf, sizeof(fw_errbuf), "candidate %zu is not an absolute "
			   "path (forward_path)", i + 1);
	    *error_r = fw_errbuf;
	    rc = -1;
	    break;
	}
	str_reset(buf);
	if ((rc = fw_read_one(str_cstr(path), uid, buf, error_r)) > 0)
	    *found = i;
	cp = nl ? nl + 1 : cp + strlen(cp);
    }
    if (rc > 0)
	str_set_or_panic(text, str_cstr(buf));
    str_free(&path);
    str_free(&buf);
    return rc;
}

/* ---- forward_path */

/* fp_unsafe - an address-derived value that must not become part of a
 * path: empty is fine (handled as "no value"); "/", a newline, "." or
 * ".." are not */
static bool fp_unsafe(const char *value)
{
    return strchr(value, '/') != NULL || strchr(value, '\n') != NULL
	|| strcmp(value, ".") == 0 || strcmp(value, "..") == 0;
}

/* The state of one expansion. */
struct fp_ctx {
    const struct fp_attr *attrs;
    size_t n;
    unsigned used;		/* bit i: attrs[i] went into the path */
    bool skip;			/* a plain $name without a (safe) value */
};

/* fp_attr_index - the attribute called name[0..len), or -1 */
static long fp_attr_index(const struct fp_ctx *c, const char *name, size_t len)
{
    for (size_t i = 0; i < c->n; i++)
	if (strlen(c->attrs[i].name) == len && strncmp(c->attrs[i].name, name, len) == 0)
	    return (long) i;
    return -1;
}

/* fp_lookup - config_expander lookup: an attribute, else a main.cf
 * parameter; an unknown name fails the expansion */
static int fp_lookup(void *ctx, const char *name, size_t len, const char **value_r,
		     const char **error_r)
{
    struct fp_ctx *c = ctx;
    long idx = fp_attr_index(c, name, len);
    char buf[128];

    if (idx >= 0) {
	*value_r = c->attrs[idx].value ? c->attrs[idx].value : "";
	return 0;
    }
    if (len < sizeof(buf)) {
	memcpy(buf, name, len);
	buf[len] = 0;
	if ((*value_r = config_value(buf)) != NULL)
	    return 0;
    }
    fmt_buf_cut(fw_errbuf, sizeof(fw_errbuf), "unknown name \"$%.*s\"", (int) len, name);
    *error_r = fw_errbuf;
    return -1;
}

/* fp_insert - config_expander insert for a plain $name: its value, or
 * mark the element skipped (no value, or unsafe address text) */
static int fp_insert(void *ctx, struct str *out, const char *name, size_t len,
		     const char *value, const char **error_r)
{
    struct fp_ctx *c = ctx;
    long idx = fp_attr_index(c, name, len);

    if (*value == 0 || (idx >= 0 && c->attrs[idx].untrusted && fp_unsafe(value))) {
	c->skip = true;
	return 0;
    }
    if (!str_try_appends(out, value)) {
	fmt_buf_cut(fw_errbuf, sizeof(fw_errbuf), "expansion longer than %zu bytes",
		       out->max);
	*error_r = fw_errbuf;
	return -1;
    }
    if (idx >= 0 && idx < 32)
	c->used |= 1u << idx;
    return 0;
}

/* forward_path_expand - one element of forward_path (main.cf's syntax,
 * config_expand_with, with the recipient's names) */
int forward_path_expand(const char *text, size_t len, const struct fp_attr *attrs, size_t n,
			struct str *out, unsigned *used, const char **error_r)
{
    struct fp_ctx c = {attrs, n, 0, false};
    struct config_expander x = {fp_lookup, fp_insert, &c, FP_DEPTH_MAX};
    char *element = mem_strndup(text, len);
    int rc;

    str_reset(out);
    rc = config_expand_with(element, out, &x, error_r);
    mem_free(&element);
    if (rc < 0)
	return -1;
    *used = c.used;
    if (c.skip || str_cstr(out)[0] != '/' || strchr(str_cstr(out), '\n') != NULL)
	return 0;
    return 1;
}

/* forward_path_candidates - every element of list, expanded */
int forward_path_candidates(const char *list, const struct fp_attr *attrs, size_t n,
			    struct str *paths, unsigned *used, size_t max, size_t *count,
			    const char **error_r)
{
    struct str *one = str_new(FP_PATH_MAX);
    const char *cp = list, *start;
    int level, rc = 0;

    str_reset(paths);
    *count = 0;
    while (*cp && rc == 0) {
	if (*cp == ',' || *cp == ' ' || *cp == '\t' || *cp == '\n' || *cp == '\r') {
	    cp++;
	    continue;
	}
	/* one element: up to a separator outside brackets */
	for (start = cp, level = 0; *cp; cp++) {
	    if (*cp == '{' || *cp == '(')
		level++;
	    else if ((*cp == '}' || *cp == ')') && level > 0)
		level--;
	    else if (level == 0 && (*cp == ',' || *cp == ' ' || *cp == '\t' || *cp == '\n'
				    || *cp == '\r'))
		break;
	}
	if (*count >= max) {
	    fmt_buf_cut(fw_errbuf, sizeof(fw_errbuf), "forward_path has more than %zu "
			   "elements", max);
	    *error_r = fw_errbuf;
	    rc = -1;
	    break;
	}
	if ((rc = forward_path_expand(start, (size_t) (cp - start), attrs, n, one, &used[*count],
				      error_r)) < 0)
	    break;
	if (rc == 0)
	    continue;			/* skipped element */
	rc = 0;
	if ((*count > 0 && !str_try_appendc(paths, '\n')) || !str_try_appends(paths, str_cstr(one))) {
	    fmt_buf_cut(fw_errbuf, sizeof(fw_errbuf), "forward_path expands to more than "
			   "%zu bytes", paths->max);
	    *error_r = fw_errbuf;
	    rc = -1;
	    break;
	}
	(*count)++;
    }
    str_free(&one);
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
    if (!str_try_appends(hdr, "Delivered-To: ") || !content_header_value(hdr, delivered_to, false)) {
	ld_result_set(res, LD_DEFER, "4.3.0",
		      "cannot forward: the Delivered-To: address is too long");
	cleanup_client_abandon(&c);
	goto out;
    }
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
