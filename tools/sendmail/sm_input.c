/* sm_input.c - what sendmail reads: the message on stdin (turned into
 * content records), recipient lists and option values from the command
 * line. Kept apart from the process plumbing so the unit test can drive
 * it with memory files. */

/* System library. */
#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Base library. */
#include "mem.h"
#include "msg.h"
#include "str.h"
#include "stream.h"

/* Mail library. */
#include "maildrop.h"
#include "queue_file.h"
#include "record_grammar.h"

/* This program. */
#include "sendmail.h"

#define SM_HEADER_BUFFER_MAX	((size_t) 256 << 10)	/* header held back for -F */
#define SM_SOURCE_BLOCK		((size_t) 64 << 10)	/* read(2) size for stdin */

/* sm_source_fd - lines straight from a blocking descriptor */
void sm_source_fd(struct sm_source *src, int fd)
{
    memset(src, 0, sizeof(*src));
    src->fd = fd;
    src->buf = mem_alloc(SM_SOURCE_BLOCK);
}

/* sm_source_stream - lines from a stream (the unit test compares it with
 * the descriptor reader) */
void sm_source_stream(struct sm_source *src, struct stream *stream)
{
    memset(src, 0, sizeof(*src));
    src->fd = -1;
    src->stream = stream;
}

/* sm_source_fini - release the buffer (not the descriptor) */
void sm_source_fini(struct sm_source *src)
{
    mem_free(&src->buf);
}

/* sm_source_fill - one read(2) into the empty buffer (poll only if the
 * descriptor is non-blocking) */
static enum stream_status sm_source_fill(struct sm_source *src)
{
    ssize_t n;

    if (src->status != STREAM_OK)
	return src->status;
    src->pos = src->len = 0;
    while ((n = read(src->fd, src->buf, SM_SOURCE_BLOCK)) < 0) {
	struct pollfd pfd = {src->fd, POLLIN, 0};

	if (errno == EINTR)
	    continue;
	if (errno != EAGAIN && errno != EWOULDBLOCK)
	    break;
	(void) poll(&pfd, 1, -1);	/* a caller's non-blocking stdin */
    }
    if (n > 0) {
	src->len = (size_t) n;
	return STREAM_OK;
    }
    return src->status = (n == 0 ? STREAM_EOF : STREAM_ERROR);
}

/* sm_source_getline - stream_getline's contract: a line with its "\n",
 * STREAM_TOOLONG after max bytes without one, a final unterminated line
 * as STREAM_OK, STREAM_EOF when nothing was left */
static enum stream_status sm_source_getline(struct sm_source *src, struct str *line, size_t max)
{
    enum stream_status status;

    if (src->stream)
	return stream_getline(src->stream, line, max);
    if (max > line->max)
	max = line->max;
    str_reset(line);
    for (;;) {
	size_t room = max - line->len;
	size_t avail = src->len - src->pos;
	size_t take = avail < room ? avail : room;
	const char *start = src->buf + src->pos;
	const char *nl = take ? memchr(start, '\n', take) : NULL;

	if (nl)
	    take = (size_t) (nl - start) + 1;
	if (take > 0) {
	    if (!str_try_append(line, start, take))
		msg_panic("sm_source_getline: append within max failed");
	    src->pos += take;
	}
	if (nl)
	    return STREAM_OK;
	if (line->len >= max)
	    return STREAM_TOOLONG;
	if ((status = sm_source_fill(src)) != STREAM_OK) {
	    if (status == STREAM_EOF && line->len > 0)
		return STREAM_OK;
	    return status;
	}
    }
}

/* Copy state. */
struct sm_copy {
    struct stream *out;
    long long size;
    long long limit;
    bool too_big;
    bool write_error;
    /* -F: the header is held back until we know it has no From: */
    const char *header_from;
    struct str *held;		/* encoded records */
    bool holding;
    bool seen_from;
};

/* sm_emit - one content record (or into the held header) */
static void sm_emit(struct sm_copy *cp, int type, const char *data, size_t len)
{
    cp->size += (long long) len + (type == QF_REC_LINE ? 2 : 0);
    if (cp->limit > 0 && cp->size > cp->limit)
	cp->too_big = true;
    if (cp->too_big || cp->write_error || cp->out == NULL)
	return;
    if (cp->holding) {
	qf_encode(cp->held, type, data, len);
	return;
    }
    if (qf_put(cp->out, type, data, len) < 0)
	cp->write_error = true;
}

/* sm_release_header - write the held header, with From: first if the
 * header had none */
static void sm_release_header(struct sm_copy *cp)
{
    if (!cp->holding)
	return;
    cp->holding = false;
    if (cp->out == NULL)
	return;
    if (!cp->seen_from && !cp->too_big && !cp->write_error) {
	struct str *line = str_new(STR_MAX_DEFAULT);

	str_appends_or_panic(line, "From: ");
	str_appends_or_panic(line, cp->header_from);
	cp->size += (long long) line->len + 2;
	if (qf_put_line(cp->out, line->data, line->len, MAILDROP_LINE_CHUNK) < 0)
	    cp->write_error = true;
	str_free(&line);
    }
    if (!cp->too_big && !cp->write_error && cp->held->len > 0
	&& stream_write(cp->out, cp->held->data, cp->held->len) < 0)
	cp->write_error = true;
    str_free(&cp->held);
}

/* sm_copy_message - stdin to L/C records */
enum sm_copy_status sm_copy_message(struct sm_source *in, struct stream *out, int flags,
				    long long size_limit, const char *header_from,
				    long long *size_r)
{
    struct sm_copy cp = {out, 0, size_limit, false, false, header_from, NULL, false, false};
    struct str *line = str_new(MAILDROP_LINE_CHUNK + 1);
    enum sm_copy_status result = SM_COPY_OK;
    bool line_start = true;		/* the next piece starts a line */
    bool pending_cr = false;		/* a chunk ended in CR: maybe CRLF */
    bool in_header = true;

    if (header_from && *header_from) {
	cp.holding = true;
	cp.held = str_new(SM_HEADER_BUFFER_MAX + QF_HEADER_SIZE + MAILDROP_LINE_CHUNK);
    }
    for (;;) {
	enum stream_status st = sm_source_getline(in, line, MAILDROP_LINE_CHUNK);
	const char *data;
	size_t len;
	bool complete;

	if (st == STREAM_EOF) {
	    if (!line_start) {		/* a long last line without "\n" */
		if (pending_cr)
		    sm_emit(&cp, QF_REC_CONT, "\r", 1);
		sm_emit(&cp, QF_REC_LINE, "", 0);
	    }
	    break;
	}
	if (st != STREAM_OK && st != STREAM_TOOLONG) {
	    result = SM_COPY_READ_ERROR;
	    break;
	}
	data = line->data;
	len = line->len;
	complete = st == STREAM_OK;
	if (complete && len > 0 && data[len - 1] == '\n') {
	    len--;
	    if (len > 0 && data[len - 1] == '\r')
		len--;
	}
	if (pending_cr) {
	    pending_cr = false;
	    if (!(complete && len == 0 && line->len > 0 && data[0] == '\n'))
		sm_emit(&cp, QF_REC_CONT, "\r", 1);
	}
	if (!complete && len > 0 && data[len - 1] == '\r') {
	    pending_cr = true;
	    len--;
	}
	if (line_start) {
	    if ((flags & SM_COPY_DOT) && complete && len == 1 && data[0] == '.')
		break;
	    if (in_header) {
		if (complete && len == 0)
		    in_header = false;
		else if (len >= 5 && strncasecmp(data, "From:", 5) == 0)
		    cp.seen_from = true;
	    }
	    if (!in_header || (cp.held && cp.held->len > SM_HEADER_BUFFER_MAX))
		sm_release_header(&cp);
	}
	sm_emit(&cp, complete ? QF_REC_LINE : QF_REC_CONT, data, len);
	line_start = complete;
	if (cp.write_error)
	    break;
    }
    sm_release_header(&cp);
    str_free(&line);
    mem_free(&cp.held);
    if (size_r)
	*size_r = cp.size;
    if (result != SM_COPY_OK)
	return result;
    if (cp.write_error)
	return SM_COPY_WRITE_ERROR;
    if (cp.too_big)
	return SM_COPY_TOO_BIG;
    return SM_COPY_OK;
}

/* sm_trim - a copy of text[0..len) without surrounding white space */
static char *sm_trim(const char *text, size_t len)
{
    while (len > 0 && isspace((unsigned char) *text)) {
	text++;
	len--;
    }
    while (len > 0 && isspace((unsigned char) text[len - 1]))
	len--;
    return mem_strndup(text, len);
}

/* sm_strip_angle - "<addr>" -> "addr" */
char *sm_strip_angle(const char *arg)
{
    char *t = sm_trim(arg, strlen(arg));
    size_t len = strlen(t);

    if (len >= 2 && t[0] == '<' && t[len - 1] == '>') {
	char *inner = sm_trim(t + 1, len - 2);

	mem_free(&t);
	return inner;
    }
    return t;
}

/* sm_one_address - the address of one list element */
static void sm_one_address(const char *elem, size_t len, void (*fn)(const char *, void *),
			   void *ctx)
{
    const char *open = NULL, *close = NULL;
    bool quoted = false;
    char *addr;

    for (size_t i = 0; i < len; i++) {
	if (elem[i] == '\\' && quoted && i + 1 < len)
	    i++;
	else if (elem[i] == '"')
	    quoted = !quoted;
	else if (!quoted && elem[i] == '<')
	    open = elem + i;
	else if (!quoted && elem[i] == '>' && open)
	    close = elem + i;
    }
    if (open && close && close > open)
	addr = sm_trim(open + 1, (size_t) (close - open - 1));
    else
	addr = sm_trim(elem, len);
    if (*addr)
	fn(addr, ctx);
    mem_free(&addr);
}

/* sm_split_addresses - a command-line recipient argument */
void sm_split_addresses(const char *arg, void (*fn)(const char *addr, void *ctx), void *ctx)
{
    const char *start = arg;
    bool quoted = false;
    int angle = 0;

    for (const char *p = arg;; p++) {
	if (*p == 0 || (*p == ',' && !quoted && angle == 0)) {
	    sm_one_address(start, (size_t) (p - start), fn, ctx);
	    if (*p == 0)
		return;
	    start = p + 1;
	} else if (*p == '\\' && quoted && p[1]) {
	    p++;
	} else if (*p == '"') {
	    quoted = !quoted;
	} else if (!quoted && *p == '<') {
	    angle++;
	} else if (!quoted && *p == '>' && angle > 0) {
	    angle--;
	}
    }
}

/* sm_parse_notify - -N value */
char *sm_parse_notify(const char *arg)
{
    struct str *s = str_new(64);
    char *result = NULL;

    for (const char *p = arg; *p; p++) {
	if (isspace((unsigned char) *p))
	    continue;
	if (!str_try_appendc(s, (char) tolower((unsigned char) *p)))
	    break;
    }
    if (s->len < s->max && record_grammar_notify_valid(s->data, s->len))
	result = mem_strdup(s->data);
    str_free(&s);
    return result;
}

/* sm_header_from - "Name <address>", or the address alone */
void sm_header_from(struct str *out, const char *full_name, const char *address)
{
    static const char atext_specials[] = "!#$%&'*+-/=?^_`{|}~ ";
    bool plain = true;
    struct str *name = str_new(1024);

    for (const char *p = full_name; *p; p++) {
	unsigned char ch = (unsigned char) *p;

	if (ch < 0x20 || ch == 0x7f)
	    continue;			/* no header injection */
	if (!str_try_appendc(name, (char) ch))
	    break;
	if (!isalnum(ch) && ch < 0x80 && strchr(atext_specials, ch) == NULL)
	    plain = false;
    }
    if (name->len > 0) {
	if (plain) {
	    str_append_or_panic(out, name->data, name->len);
	} else {
	    str_appendc_or_panic(out, '"');
	    for (size_t i = 0; i < name->len; i++) {
		if (name->data[i] == '"' || name->data[i] == '\\')
		    str_appendc_or_panic(out, '\\');
		str_appendc_or_panic(out, name->data[i]);
	    }
	    str_appendc_or_panic(out, '"');
	}
	str_appends_or_panic(out, " <");
	str_appends_or_panic(out, address);
	str_appendc_or_panic(out, '>');
    } else {
	str_appends_or_panic(out, address);
    }
    str_free(&name);
}
