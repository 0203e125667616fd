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
	if (!str_setn(path, cp, nl ? (size_t) (nl - cp) : strlen(cp)) || str_cstr(path)[0] != '/') {
	    (void) fmt_buf(fw_errbuf, sizeof(fw_errbuf), "candidate %zu is not an absolute "
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
	(void) str_set(text, str_cstr(buf));
    str_free(&path);
    str_free(&buf);
    return rc;
}

/* ---- forward_path */

/* fp_name_char - may c appear in a $name? */
static bool fp_name_char(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

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
    struct str *out;
    unsigned used;		/* bit i: attrs[i] went into out */
    bool skip;			/* a plain $name without a (safe) value */
    const char **error_r;
};

/* fp_error - fail the expansion with a message */
static int fp_error(struct fp_ctx *c, const char *fmt, const char *name, size_t len)
{
    (void) fmt_buf(fw_errbuf, sizeof(fw_errbuf), fmt, (int) len, name);
    *c->error_r = fw_errbuf;
    return -1;
}

/* fp_value - the value of a name: an attribute (*idx its index), else a
 * main.cf parameter (*idx = -1); -1 if unknown */
static int fp_value(struct fp_ctx *c, const char *name, size_t len, const char **value,
		    long *idx)
{
    char buf[128];
    size_t i;

    for (i = 0; i < c->n; i++) {
	if (strlen(c->attrs[i].name) == len && strncmp(c->attrs[i].name, name, len) == 0) {
	    *value = c->attrs[i].value ? c->attrs[i].value : "";
	    *idx = (long) i;
	    return 0;
	}
    }
    if (len < sizeof(buf)) {
	memcpy(buf, name, len);
	buf[len] = 0;
	if ((*value = config_value(buf)) != NULL) {
	    *idx = -1;
	    return 0;
	}
    }
    return fp_error(c, "unknown name \"$%.*s\"", name, len);
}

/* fp_insert - a plain $name: its value, or mark the element skipped */
static int fp_insert(struct fp_ctx *c, const char *value, long idx)
{
    if (*value == 0 || (idx >= 0 && c->attrs[idx].untrusted && fp_unsafe(value))) {
	c->skip = true;
	return 0;
    }
    if (!str_appends(c->out, value)) {
	(void) fmt_buf(fw_errbuf, sizeof(fw_errbuf), "expansion longer than %zu bytes",
		       c->out->max);
	*c->error_r = fw_errbuf;
	return -1;
    }
    if (idx >= 0 && idx < 32)
	c->used |= 1u << idx;
    return 0;
}

/* fp_expand - expand text[0..len) into c->out (depth bounds nesting) */
static int fp_expand(struct fp_ctx *c, const char *text, size_t len, int depth)
{
    const char *cp = text, *end = text + len, *name, *np, *close, *value;
    char open, want;
    size_t nlen;
    long idx;
    int level;

    if (depth > FP_DEPTH_MAX)
	return fp_error(c, "conditionals nested too deeply%.*s", "", 0);
    while (cp < end) {
	if (*cp != '$') {
	    if (!str_appendc(c->out, *cp))
		return fp_error(c, "expansion too long%.*s", "", 0);
	    cp++;
	    continue;
	}
	cp++;
	if (cp < end && *cp == '$') {		/* $$: a literal $ */
	    if (!str_appendc(c->out, '$'))
		return fp_error(c, "expansion too long%.*s", "", 0);
	    cp++;
	} else if (cp < end && (*cp == '{' || *cp == '(')) {
	    open = *cp;
	    want = open == '{' ? '}' : ')';
	    for (close = cp + 1, level = 1; close < end; close++) {
		if (*close == open)
		    level++;
		else if (*close == want && --level == 0)
		    break;
	    }
	    if (close >= end)
		return fp_error(c, "missing closing bracket after \"$%.*s\"", cp, 1);
	    name = np = cp + 1;
	    while (np < close && fp_name_char(*np))
		np++;
	    nlen = (size_t) (np - name);
	    if (nlen == 0 || (np < close && *np != '?' && *np != ':'))
		return fp_error(c, "bad name in \"$%.*s\"", cp, (size_t) (close - cp + 1));
	    if (fp_value(c, name, nlen, &value, &idx) < 0)
		return -1;
	    if (np == close) {
		if (fp_insert(c, value, idx) < 0)
		    return -1;
	    } else if ((*np == '?') == (*value != 0)) {
		/* ${name?text}: text if it has a value; ${name:text}: if not */
		if (fp_expand(c, np + 1, (size_t) (close - np - 1), depth + 1) < 0)
		    return -1;
	    }
	    cp = close + 1;
	} else if (cp < end && fp_name_char(*cp)) {
	    name = cp;
	    while (cp < end && fp_name_char(*cp))
		cp++;
	    if (fp_value(c, name, (size_t) (cp - name), &value, &idx) < 0
		|| fp_insert(c, value, idx) < 0)
		return -1;
	} else if (!str_appendc(c->out, '$')) {	/* a lone $ */
	    return fp_error(c, "expansion too long%.*s", "", 0);
	}
    }
    return 0;
}

/* forward_path_expand - one element of forward_path */
int forward_path_expand(const char *text, size_t len, const struct fp_attr *attrs, size_t n,
			struct str *out, unsigned *used, const char **error_r)
{
    struct fp_ctx c;

    c.attrs = attrs;
    c.n = n;
    c.out = out;
    c.used = 0;
    c.skip = false;
    c.error_r = error_r;
    str_reset(out);
    if (fp_expand(&c, text, len, 0) < 0)
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
	    (void) fmt_buf(fw_errbuf, sizeof(fw_errbuf), "forward_path has more than %zu "
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
	if ((*count > 0 && !str_appendc(paths, '\n')) || !str_appends(paths, str_cstr(one))) {
	    (void) fmt_buf(fw_errbuf, sizeof(fw_errbuf), "forward_path expands to more than "
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
