/* content.c - the message as local-delivery sees it: content records read
 * from the queue file (M, then L/C lines, then X), the Delivered-To
 * values of its header (for loop detection), and the formatted copy that
 * goes into a mailbox, a file or a command (From_ line, Return-Path:,
 * Delivered-To:, >From quoting, final blank line). Lines are written with
 * "\n" endings: the queue file keeps lines without terminators. */

/* System library. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* Base library. */
#include "mem.h"
#include "msg.h"
#include "safe_file.h"
#include "str.h"
#include "stream.h"

/* Mail library. */
#include "mail_date.h"
#include "queue_file.h"

/* This program. */
#include "local.h"

#define CONTENT_HEADER_MAX	(64 * 1024)	/* one unfolded header we look at */
#define CONTENT_DELIVERED_MAX	(256 * 1024)	/* all Delivered-To values kept */
#define COPY_BUF_SIZE		(64 * 1024)	/* the copy buffer at first */
#define COPY_BUF_MAX		(4 * 1024 * 1024)	/* and at most: one write(2) up to this */

#define CT_READ_SIZE		(64 * 1024)	/* one pread of the queue file */

/* ct_rec_len - the length field of a record header (4 bytes after the type) */
static size_t ct_rec_len(const char *hdr)
{
    const unsigned char *p = (const unsigned char *) hdr + 1;

    return ((size_t) p[0] << 24) | ((size_t) p[1] << 16) | ((size_t) p[2] << 8) | (size_t) p[3];
}

/* ld_result_init - no outcome yet */
void ld_result_init(struct ld_result *r)
{
    r->status = LD_NONE;
    r->dsn[0] = 0;
    r->reason[0] = 0;
    r->sent_count = 0;
}

/* ld_result_set - one outcome with a formatted reason */
void ld_result_set(struct ld_result *r, int status, const char *dsn, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    (void) vsnprintf(r->reason, sizeof(r->reason), fmt, ap);	/* bounded; may cut */
    va_end(ap);
    r->status = status;
    str_copy_out_or_panic(r->dsn, sizeof(r->dsn), dsn);
    r->sent_count = status == LD_SENT ? 1 : 0;
}

/* ld_result_from_errno - a failed mailbox operation: quotas are special */
void ld_result_from_errno(struct ld_result *res, int err, const char *what, const char *path)
{
    if (err == EDQUOT || err == EFBIG)
	ld_result_set(res, LD_BOUNCE, "5.2.2", "mailbox full: %s %s: %s", what, path, strerror(err));
    else if (err == ENOSPC)
	ld_result_set(res, LD_DEFER, "4.3.1", "%s %s: %s", what, path, strerror(err));
    else
	ld_result_set(res, LD_DEFER, "4.2.0", "%s %s: %s", what, path, strerror(err));
}

/* ld_fd_sink_write - content_copy sink: write everything to the descriptor */
int ld_fd_sink_write(void *ctx, const char *buf, size_t len)
{
    struct ld_fd_sink *sink = ctx;

    if (write_all_fd(sink->fd, buf, len) < 0) {
	sink->err = errno;
	return -1;
    }
    return 0;
}

/*
 * ld_result_merge - fold one outcome into an aggregate: the most severe
 * status wins (defer, then bounce, then sent); its first reason is kept.
 * Several successful destinations say how many there were.
 */
void ld_result_merge(struct ld_result *agg, const struct ld_result *one)
{
    if (one->status == LD_NONE)
	return;
    if (one->status == LD_SENT)
	agg->sent_count += one->sent_count ? one->sent_count : 1;
    if (agg->status == LD_NONE || one->status > agg->status) {
	unsigned count = agg->sent_count;

	agg->status = one->status;
	str_copy_out_or_panic(agg->dsn, sizeof(agg->dsn), one->dsn);
	str_copy_out_or_panic(agg->reason, sizeof(agg->reason), one->reason);
	agg->sent_count = count;
    }
}

/* ld_status_name - "sent", "bounce", "defer" */
const char *ld_status_name(int status)
{
    switch (status) {
    case LD_SENT:
	return "sent";
    case LD_BOUNCE:
	return "bounce";
    case LD_DEFER:
	return "defer";
    default:
	return "none";
    }
}

/*
 * content_walk - read the content segment of the queue file at offset:
 * an M record, then L and C records until X. Each record is handed to fn
 * as a piece of a line (flags say whether it starts and/or ends one).
 *
 * The records are parsed in memory from large pread()s (CT_READ_SIZE at
 * a time, more only for a record that does not fit), not read one by
 * one: a typical message is one system call. pread leaves the file
 * offset alone, so the delivery processes sharing this descriptor never
 * disturb each other. The checks are qf_get()'s: the record types, the
 * length limit QF_RECORD_MAX, an M record without data first.
 */
int content_walk(int fd, off_t offset, content_piece_fn fn, void *ctx, const char **error_r)
{
    static char errbuf[160];
    static char *ct_buf;		/* CT_READ_SIZE bytes, kept */
    char *buf, *big = NULL;
    size_t size = CT_READ_SIZE, have = 0, pos = 0, len;
    off_t file_pos = offset;		/* where buf[have] comes from */
    int type, rc = 0, flags = CONTENT_LINE_START;
    bool first = true, eof = false;
    ssize_t n;

    if (ct_buf == NULL)
	ct_buf = mem_alloc(CT_READ_SIZE);
    buf = ct_buf;
    for (;;) {
	/* One whole record in buf[pos..have), reading more as needed. */
	while (!eof && (have - pos < QF_HEADER_SIZE
			|| have - pos < QF_HEADER_SIZE + ct_rec_len(buf + pos))) {
	    if (pos > 0) {
		memmove(buf, buf + pos, have - pos);
		have -= pos;
		pos = 0;
	    }
	    if (have >= QF_HEADER_SIZE && QF_HEADER_SIZE + ct_rec_len(buf) > size) {
		/* a record larger than the buffer: room for exactly it */
		size_t need = QF_HEADER_SIZE + ct_rec_len(buf);
		char *nbuf;

		if (ct_rec_len(buf) > QF_RECORD_MAX)
		    break;			/* refused below */
		nbuf = mem_alloc(need);
		memcpy(nbuf, buf, have);
		mem_free(&big);
		big = buf = nbuf;
		size = need;
	    }
	    while ((n = pread(fd, buf + have, size - have, file_pos)) < 0 && errno == EINTR)
		 /* void */ ;
	    if (n < 0) {
		fmt_buf_cut(errbuf, sizeof(errbuf), "cannot read the queue file: %s",
			       strerror(errno));
		*error_r = errbuf;
		rc = -1;
		goto out;
	    }
	    if (n == 0)
		eof = true;
	    have += (size_t) n;
	    file_pos += n;
	}
	if (have - pos == 0) {
	    *error_r = first ? "queue file: no message content at data_offset"
		: "queue file: premature end of content";
	    rc = -1;
	    break;
	}
	type = (unsigned char) buf[pos];
	if (have - pos < QF_HEADER_SIZE || (len = ct_rec_len(buf + pos)) > QF_RECORD_MAX
	    || have - pos - QF_HEADER_SIZE < len) {
	    if (have - pos >= QF_HEADER_SIZE && ct_rec_len(buf + pos) > QF_RECORD_MAX)
		fmt_buf_cut(errbuf, sizeof(errbuf), "corrupt queue file: record of %zu bytes "
			       "exceeds the limit at offset %lld", ct_rec_len(buf + pos),
			       (long long) (file_pos - (off_t) (have - pos)));
	    else
		fmt_buf_cut(errbuf, sizeof(errbuf), "corrupt queue file: truncated record "
			       "at offset %lld", (long long) (file_pos - (off_t) (have - pos)));
	    *error_r = errbuf;
	    rc = -1;
	    break;
	}
	if (first) {
	    if (type != QF_REC_MESSAGE || len != 0) {
		fmt_buf_cut(errbuf, sizeof(errbuf), "corrupt queue file: expected an empty "
			       "M record at offset %lld", (long long) offset);
		*error_r = errbuf;
		rc = -1;
		break;
	    }
	    first = false;
	    pos += QF_HEADER_SIZE;
	    continue;
	}
	if (type != QF_REC_LINE && type != QF_REC_CONT && type != QF_REC_XEND) {
	    fmt_buf_cut(errbuf, sizeof(errbuf), "corrupt queue file: unexpected record type "
			   "0x%02x at offset %lld", type,
			   (long long) (file_pos - (off_t) (have - pos)));
	    *error_r = errbuf;
	    rc = -1;
	    break;
	}
	if (type == QF_REC_XEND) {
	    rc = (flags & CONTENT_LINE_START) ? 0 : -1;
	    if (rc < 0)
		*error_r = "queue file: continued line without an end";
	    break;
	}
	if (type == QF_REC_LINE)
	    flags |= CONTENT_LINE_END;
	pos += QF_HEADER_SIZE;
	if ((rc = fn(buf + pos, len, flags, ctx)) != 0) {
	    if (rc < 0) {
		*error_r = NULL;
		rc = -1;
	    }
	    break;
	}
	pos += len;
	flags = (type == QF_REC_LINE) ? CONTENT_LINE_START : 0;
    }
  out:
    mem_free(&big);
    return rc;
}

/* ct_trim - strip white space and one pair of <> around text */
static void ct_trim(const char **start, const char **end)
{
    const char *b = *start, *e = *end;

    while (b < e && isspace((unsigned char) *b))
	b++;
    while (e > b && isspace((unsigned char) e[-1]))
	e--;
    if (e - b >= 2 && *b == '<' && e[-1] == '>') {
	b++;
	e--;
    }
    *start = b;
    *end = e;
}

/*
 * content_header_delivered_to - if line is an unfolded header line
 * "Delivered-To: value" (name case-insensitive), put the value,
 * trimmed, without <>, in lower case, into out.
 */
bool content_header_delivered_to(const char *line, size_t len, struct str *out)
{
    static const char name[] = "delivered-to";
    const char *b, *e;
    size_t i;

    if (len < sizeof(name) || strncasecmp(line, name, sizeof(name) - 1) != 0)
	return false;
    i = sizeof(name) - 1;
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
	i++;
    if (i >= len || line[i] != ':')
	return false;
    b = line + i + 1;
    e = line + len;
    ct_trim(&b, &e);
    str_reset(out);
    for (; b < e; b++) {
	char c = *b;

	if (c == '\r' || c == '\n')
	    c = ' ';
	if (!str_try_appendc(out, (char) tolower((unsigned char) c)))
	    return false;
    }
    return str_len(out) > 0;
}

struct ct_scan {
    struct ld_msg *msg;
    struct str *header;		/* the header being unfolded */
    struct str *value;
    bool header_too_long;
};

/* ct_scan_flush - look at one complete header */
static void ct_scan_flush(struct ct_scan *sc)
{
    if (str_len(sc->header) > 0 && !sc->header_too_long
	&& content_header_delivered_to(str_cstr(sc->header), str_len(sc->header), sc->value)) {
	if (str_len(sc->msg->delivered) + str_len(sc->value) + 1 <= sc->msg->delivered->max) {
	    str_append_or_panic(sc->msg->delivered, str_cstr(sc->value), str_len(sc->value));
	    str_appendc_or_panic(sc->msg->delivered, '\n');
	}
    }
    str_reset(sc->header);
    sc->header_too_long = false;
}

/* ct_scan_piece - content_walk callback: stop at the end of the header */
static int ct_scan_piece(const char *data, size_t len, int flags, void *ctx)
{
    struct ct_scan *sc = ctx;

    if ((flags & CONTENT_LINE_START) && (flags & CONTENT_LINE_END) && len == 0) {
	ct_scan_flush(sc);
	return 1;			/* end of the header */
    }
    if ((flags & CONTENT_LINE_START) && len > 0 && data[0] != ' ' && data[0] != '\t')
	ct_scan_flush(sc);
    if ((flags & CONTENT_LINE_START) && str_len(sc->header) > 0
	&& !str_try_appendc(sc->header, ' '))
	sc->header_too_long = true;
    if (!sc->header_too_long && !str_try_append(sc->header, data, len))
	sc->header_too_long = true;
    return 0;
}

/* content_scan_headers - collect the Delivered-To values of the header */
int content_scan_headers(struct ld_msg *msg, const char **error_r)
{
    struct ct_scan sc;
    int rc;

    if (msg->delivered == NULL)
	msg->delivered = str_new(CONTENT_DELIVERED_MAX);
    str_reset(msg->delivered);
    sc.msg = msg;
    sc.header = str_new(CONTENT_HEADER_MAX);
    sc.value = str_new(CONTENT_HEADER_MAX);
    sc.header_too_long = false;
    rc = content_walk(msg->fd, msg->data_offset, ct_scan_piece, &sc, error_r);
    if (rc == 0)
	ct_scan_flush(&sc);		/* a message that is all header */
    str_free(&sc.header);
    str_free(&sc.value);
    return rc < 0 ? -1 : 0;
}

/* content_has_delivered_to - the header already names address? */
bool content_has_delivered_to(const struct ld_msg *msg, const char *address)
{
    const char *cp, *nl;
    size_t alen = strlen(address);

    if (msg->delivered == NULL || alen == 0)
	return false;
    for (cp = str_cstr(msg->delivered); (nl = strchr(cp, '\n')) != NULL; cp = nl + 1) {
	if ((size_t) (nl - cp) == alen && strncasecmp(cp, address, alen) == 0)
	    return true;
    }
    return false;
}

/* content_from_line - "From SENDER Www Mmm dd hh:mm:ss yyyy\n"; false if
 * it does not fit in out */
bool content_from_line(struct str *out, const char *sender, time_t when)
{
    char date[MAIL_DATE_SIZE];

    str_reset(out);
    (void) mail_date_mbox(date, sizeof(date), when);	/* the epoch on error */
    return str_try_appends(out, "From ")
	&& content_header_value(out, *sender ? sender : "MAILER-DAEMON", true)
	&& str_try_appendf(out, " %s\n", date);
}

/*
 * content_header_value - append text so that it stays on one header
 * line: control characters become "?"; with no_space, white space
 * becomes "_" (for the From_ line, whose fields are space separated).
 */
bool content_header_value(struct str *out, const char *text, bool no_space)
{
    for (; *text; text++) {
	unsigned char c = (unsigned char) *text;

	if (c < 0x20 || c == 0x7f)
	    c = '?';
	else if (no_space && c == ' ')
	    c = '_';
	if (!str_try_appendc(out, (char) c))
	    return false;
    }
    return true;
}

/* content_need_quote - line (its first piece) starts with "From " */
bool content_need_quote(const char *data, size_t len)
{
    return len >= 5 && memcmp(data, "From ", 5) == 0;
}

/* The buffered writer behind content_copy. */
struct ct_copy {
    const struct copy_spec *spec;
    copy_sink_fn sink;
    void *sink_ctx;
    char *buf;
    size_t len;
    size_t size;
    off_t total;
    bool failed;
};

/* ct_flush - hand the buffer to the sink */
static int ct_flush(struct ct_copy *cc)
{
    if (cc->len > 0 && !cc->failed) {
	if (cc->sink(cc->sink_ctx, cc->buf, cc->len) < 0)
	    cc->failed = true;
    }
    cc->len = 0;
    return cc->failed ? -1 : 0;
}

/* ct_put - buffer bytes; the buffer grows (doubling) to COPY_BUF_MAX so
 * that most messages reach the sink in one piece */
static int ct_put(struct ct_copy *cc, const char *data, size_t len)
{
    cc->total += (off_t) len;
    while (len > 0) {
	size_t room, n;

	if (cc->size - cc->len < len && cc->size < COPY_BUF_MAX) {
	    size_t want = cc->size;

	    while (want - cc->len < len && want < COPY_BUF_MAX)
		want *= 2;
	    if (want > COPY_BUF_MAX)
		want = COPY_BUF_MAX;
	    cc->buf = mem_realloc(cc->buf, want);
	    cc->size = want;
	}
	room = cc->size - cc->len;
	n = len < room ? len : room;
	memcpy(cc->buf + cc->len, data, n);
	cc->len += n;
	data += n;
	len -= n;
	if (cc->len == cc->size && ct_flush(cc) < 0)
	    return -1;
    }
    return 0;
}

/* ct_copy_piece - content_walk callback: one piece of a line. The mbox
 * quoting works on the lines written, not on records: a line that starts
 * after an LF inside a record (records no longer hold one, but older
 * queue files may) is quoted as well. */
static int ct_copy_piece(const char *data, size_t len, int flags, void *ctx)
{
    struct ct_copy *cc = ctx;
    bool quote = (cc->spec->flags & COPY_QUOTE) != 0;
    bool line_start = (flags & CONTENT_LINE_START) != 0;

    for (;;) {
	const char *nl = quote ? memchr(data, '\n', len) : NULL;
	size_t n = nl ? (size_t) (nl - data) + 1 : len;

	if (quote && line_start && content_need_quote(data, len) && ct_put(cc, ">", 1) < 0)
	    return -1;
	if (ct_put(cc, data, n) < 0)
	    return -1;
	if (nl == NULL)
	    break;
	data += n;
	len -= n;
	line_start = true;
    }
    if ((flags & CONTENT_LINE_END) && ct_put(cc, "\n", 1) < 0)
	return -1;
    return 0;
}

/* content_copy - write the formatted message to sink */
int content_copy(const struct ld_msg *msg, const struct copy_spec *spec,
		 copy_sink_fn sink, void *sink_ctx, off_t *size_r, const char **error_r)
{
    struct ct_copy cc;
    struct str *line = str_new(8192);
    int rc = -1;

    cc.spec = spec;
    cc.sink = sink;
    cc.sink_ctx = sink_ctx;
    cc.buf = mem_alloc(COPY_BUF_SIZE);
    cc.size = COPY_BUF_SIZE;
    cc.len = 0;
    cc.total = 0;
    cc.failed = false;

    if (spec->flags & COPY_FROM_LINE) {
	if (!content_from_line(line, spec->sender, spec->now))
	    goto too_long;
	if (ct_put(&cc, str_cstr(line), str_len(line)) < 0)
	    goto sink_failed;
    }
    if (spec->flags & COPY_RETURN_PATH) {
	str_reset(line);
	if (!str_try_appends(line, "Return-Path: <")
	    || !content_header_value(line, spec->sender, false)
	    || !str_try_appends(line, ">\n"))
	    goto too_long;
	if (ct_put(&cc, str_cstr(line), str_len(line)) < 0)
	    goto sink_failed;
    }
    if ((spec->flags & COPY_DELIVERED_TO) && spec->delivered_to && *spec->delivered_to) {
	str_reset(line);
	if (!str_try_appends(line, "Delivered-To: ")
	    || !content_header_value(line, spec->delivered_to, false)
	    || !str_try_appends(line, "\n"))
	    goto too_long;
	if (ct_put(&cc, str_cstr(line), str_len(line)) < 0)
	    goto sink_failed;
    }
    if (content_walk(msg->fd, msg->data_offset, ct_copy_piece, &cc, error_r) < 0) {
	if (*error_r == NULL || cc.failed)
	    goto sink_failed;
	goto out;
    }
    if ((spec->flags & COPY_BLANK) && ct_put(&cc, "\n", 1) < 0)
	goto sink_failed;
    if (ct_flush(&cc) < 0)
	goto sink_failed;
    *size_r = cc.total;
    rc = 0;
    goto out;

  too_long:
    *error_r = "an envelope address is too long for a header line";
    goto out;
  sink_failed:
    *error_r = NULL;
  out:
    mem_free(&cc.buf);
    str_free(&line);
    return rc;
}
