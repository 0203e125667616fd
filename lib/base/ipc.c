/* ipc.c - the attribute-list codec for every Unix-socket conversation.
 *
 * One message is a sequence of netstring pairs (name, value) closed by an
 * empty name; see ipc.h for the interface and docs/ipc.md for the wire
 * format. The decoder is written once over a small "source" abstraction
 * so that the stream reader (ipc_recv, ipc_recv_list) and the memory
 * decoder (ipc_decode_list) share every check: netstring syntax, name
 * syntax, per-value limits and the IPC_MSG_MAX bound on the whole
 * message. Every error leaves a text naming the attribute in a static
 * buffer (valid until the next call into this module); the stream is
 * then in an undefined position and the caller drops the conversation. */

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errtext.h"
#include "ipc.h"
#include "mem.h"
#include "msg.h"
#include "str.h"
#include "stream.h"

#define IPC_INT_MAX_LEN	24		/* "-9223372036854775808" fits */
#define IPC_RECV_MAX_ATTRS 64		/* attributes one ipc_recv can list */
#define IPC_PROTO_MAX	64		/* handshake protocol name */
#define IPC_LIST_MAX_ATTRS 100000	/* attributes in one decoded list */

static struct errtext ipc_error;	/* the text behind error_r */

/* ipc_name_valid - true if name is [a-z0-9_]{1,IPC_NAME_MAX} */
static bool ipc_name_valid(const char *name, size_t len)
{
    if (len == 0 || len > IPC_NAME_MAX)
	return false;
    for (size_t i = 0; i < len; i++) {
	char c = name[i];

	if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
	    return false;
    }
    return true;
}

/* ipc_printable - copy peer text into buf for an error message */
static const char *ipc_printable(char *buf, size_t size, const char *text, size_t len)
{
    size_t o = 0;

    for (size_t i = 0; i < len && o + 1 < size; i++) {
	unsigned char c = (unsigned char) text[i];

	buf[o++] = (c >= 0x20 && c < 0x7f) ? (char) c : '?';
    }
    buf[o] = 0;
    return buf;
}

/* ipc_parse_long - strict decimal: [+-]?[0-9]+, no junk, in range */
static bool ipc_parse_long(const char *text, size_t len, long *value)
{
    char buf[IPC_INT_MAX_LEN + 1];
    char *end;
    size_t i = 0;
    long v;

    if (len == 0 || len > IPC_INT_MAX_LEN)
	return false;
    if (text[0] == '-' || text[0] == '+')
	i = 1;
    if (i == len)
	return false;
    for (; i < len; i++)
	if (text[i] < '0' || text[i] > '9')
	    return false;
    memcpy(buf, text, len);
    buf[len] = 0;
    errno = 0;
    v = strtol(buf, &end, 10);
    if (errno == ERANGE || *end != 0)
	return false;
    *value = v;
    return true;
}

/*
 * Encoding.
 */

/* ipc_put_netstring - append "len:data," to out; false if out is full */
static bool ipc_put_netstring(struct str *out, const void *data, size_t len)
{
    char head[32];
    char *cp = head + sizeof(head);
    size_t n = len;

    /* Digits right to left: this runs for every name and value, and
     * printf-style formatting costs more than the rest of the encoding. */
    *--cp = ':';
    do {
	*--cp = (char) ('0' + n % 10);
	n /= 10;
    } while (n > 0);
    return str_try_append(out, cp, (size_t) (head + sizeof(head) - cp))
	&& str_try_append(out, data, len) && str_try_appendc(out, ',');
}

/* ipc_put_attr - append one attribute; false if out is full */
static bool ipc_put_attr(struct str *out, const char *name, const void *value, size_t len)
{
    if (!ipc_name_valid(name, strlen(name)))
	msg_panic("ipc: invalid attribute name \"%s\"", name);
    return ipc_put_netstring(out, name, strlen(name)) && ipc_put_netstring(out, value, len);
}

/* ipc_encode_attr - append one attribute; panics if out is too small */
void ipc_encode_attr(struct str *out, const char *name, const void *value, size_t len)
{
    if (!ipc_put_attr(out, name, value, len))
	msg_panic("ipc_encode_attr: attribute \"%s\" overflows the buffer", name);
}

/* ipc_encode_str - append a text attribute; NULL is "" */
void ipc_encode_str(struct str *out, const char *name, const char *value)
{
    if (value == NULL)
	value = "";
    ipc_encode_attr(out, name, value, strlen(value));
}

/* ipc_encode_long - append a decimal integer attribute */
void ipc_encode_long(struct str *out, const char *name, long value)
{
    char buf[32];
    char *p = buf + sizeof(buf);
    unsigned long v = value < 0 ? 0UL - (unsigned long) value : (unsigned long) value;

    do {
	*--p = (char) ('0' + v % 10);
	v /= 10;
    } while (v);
    if (value < 0)
	*--p = '-';
    ipc_encode_attr(out, name, p, (size_t) (buf + sizeof(buf) - p));
}

/* ipc_encode_end - append the end-of-message marker */
void ipc_encode_end(struct str *out)
{
    if (!str_try_append(out, "0:,", 3))
	msg_panic("ipc_encode_end: buffer full");
}

/* ipc_write_msg - send an encoded message and flush */
static int ipc_write_msg(struct stream *s, const struct str *msg)
{
    if (stream_write(s, msg->data, msg->len) < 0 || stream_flush(s) < 0)
	return -1;
    return 0;
}

/* ipc_send - write one message (varargs, IPC_END-terminated) and flush */
int ipc_send(struct stream *s, ...)
{
    struct str msg;
    va_list ap;
    int type;
    bool ok = true;
    int ret;

    str_init(&msg, IPC_MSG_MAX);
    va_start(ap, s);
    while ((type = va_arg(ap, int)) != IPC_TYPE_END) {
	const char *name = va_arg(ap, const char *);

	switch (type) {
	case IPC_TYPE_STR: {
	    const char *val = va_arg(ap, const char *);

	    if (val == NULL)
		msg_panic("ipc_send: attribute \"%s\": NULL string", name);
	    ok = ok && ipc_put_attr(&msg, name, val, strlen(val));
	    break;
	}
	case IPC_TYPE_INT: {
	    char num[IPC_INT_MAX_LEN + 1];
	    long val = va_arg(ap, long);

	    fmt_buf_or_panic(num, sizeof(num), "%ld", val);
	    ok = ok && ipc_put_attr(&msg, name, num, strlen(num));
	    break;
	}
	case IPC_TYPE_DATA: {
	    const void *data = va_arg(ap, const void *);
	    size_t len = va_arg(ap, size_t);

	    if (data == NULL && len > 0)
		msg_panic("ipc_send: attribute \"%s\": NULL data", name);
	    ok = ok && ipc_put_attr(&msg, name, data ? data : "", len);
	    break;
	}
	default:
	    msg_panic("ipc_send: bad attribute type %d", type);
	}
    }
    va_end(ap);
    if (ok)
	ok = str_try_append(&msg, "0:,", 3);
    if (!ok) {
	msg_warn("ipc_send: message larger than %zu bytes; not sent", (size_t) IPC_MSG_MAX);
	ret = -1;
    } else {
	ret = ipc_write_msg(s, &msg);
    }
    str_fini(&msg);
    return ret;
}

/* ipc_send_list - write a list as one message and flush */
int ipc_send_list(struct stream *s, const struct ipc_list *list)
{
    struct str msg;
    bool ok = true;
    int ret;

    str_init(&msg, IPC_MSG_MAX);
    for (size_t i = 0; ok && i < list->count; i++)
	ok = ipc_put_attr(&msg, list->attrs[i].name, list->attrs[i].value, list->attrs[i].len);
    if (ok)
	ok = str_try_append(&msg, "0:,", 3);
    if (!ok) {
	msg_warn("ipc_send_list: message larger than %zu bytes; not sent", (size_t) IPC_MSG_MAX);
	ret = -1;
    } else {
	ret = ipc_write_msg(s, &msg);
    }
    str_fini(&msg);
    return ret;
}

/*
 * Lists.
 */

/* ipc_list_init - an empty list */
void ipc_list_init(struct ipc_list *list)
{
    list->attrs = NULL;
    list->count = 0;
    list->cap = 0;
}

/* ipc_list_reset - drop every attribute, keep the array */
void ipc_list_reset(struct ipc_list *list)
{
    for (size_t i = 0; i < list->count; i++) {
	mem_free(&list->attrs[i].name);
	mem_free(&list->attrs[i].value);
    }
    list->count = 0;
}

/* ipc_list_fini - free everything */
void ipc_list_fini(struct ipc_list *list)
{
    ipc_list_reset(list);
    mem_free(&list->attrs);
    list->cap = 0;
}

/* ipc_list_add - append a copy of (name, value) */
void ipc_list_add(struct ipc_list *list, const char *name, const void *value, size_t len)
{
    struct ipc_attr *a;
    char *copy;

    if (!ipc_name_valid(name, strlen(name)))
	msg_panic("ipc_list_add: invalid attribute name \"%s\"", name);
    if (list->count == list->cap) {
	list->cap = list->cap ? mem_size_mul(list->cap, 2) : 8;
	list->attrs = mem_realloc(list->attrs, mem_size_mul(list->cap, sizeof(*list->attrs)));
    }
    copy = mem_alloc(mem_size_add(len, 1));
    if (len)
	memcpy(copy, value, len);
    copy[len] = 0;
    a = &list->attrs[list->count++];
    a->name = mem_strdup(name);
    a->value = copy;
    a->len = len;
}

/* ipc_list_get - the value of the first attribute called name, or NULL */
const char *ipc_list_get(const struct ipc_list *list, const char *name)
{
    for (size_t i = 0; i < list->count; i++)
	if (strcmp(list->attrs[i].name, name) == 0)
	    return list->attrs[i].value;
    return NULL;
}

/*
 * Decoding: a source is either a stream or a memory buffer.
 */

struct ipc_src {
    struct stream *stream;		/* stream source, or NULL */
    const char *buf;			/* memory source */
    size_t len;
    size_t pos;				/* bytes consumed so far */
    bool short_input;			/* memory ran out (incomplete) */
    bool started;			/* at least one byte consumed */
    int saved_timeout;			/* the stream's own timeout */
    int cur_timeout;			/* the timeout set on the stream now */
    long long deadline;			/* whole-message deadline (ms), or -1 */
    unsigned char ahead[2];		/* next netstring's first bytes, read */
    size_t nahead;			/* with the last body (0 or 2) */
};

/* ipc_now_ms - monotonic milliseconds */
static long long ipc_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ipc_src_stream - a stream source whose timeout bounds the whole message */
static void ipc_src_stream(struct ipc_src *src, struct stream *s)
{
    memset(src, 0, sizeof(*src));
    src->stream = s;
    src->saved_timeout = stream_get_timeout(s);
    src->cur_timeout = src->saved_timeout;
    src->deadline = src->saved_timeout < 0 ? -1 : ipc_now_ms() + src->saved_timeout;
}

/* ipc_src_done - give the stream its own timeout back */
static void ipc_src_done(struct ipc_src *src)
{
    if (src->stream)
	stream_set_timeout(src->stream, src->saved_timeout);
}

/* ipc_src_arm - before a read, allow only the time left if it may block.
 * When the bytes are already buffered the read cannot wait: the stream
 * then gets no timeout, which spares it a clock reading per call. */
static void ipc_src_arm(struct ipc_src *src, size_t need)
{
    long long left;
    int t;

    if (src->deadline < 0)
	return;
    if (stream_buffered_here(src->stream) >= need) {
	t = -1;
    } else {
	left = src->deadline - ipc_now_ms();
	t = left <= 0 ? 0 : left > INT_MAX ? INT_MAX : (int) left;
    }
    if (t != src->cur_timeout) {
	stream_set_timeout(src->stream, t);
	src->cur_timeout = t;
    }
}

/* ipc_what - what is being read, for error texts: a name or the value
 * of attribute name (name == NULL: an attribute name) */
static const char *ipc_what(char *buf, size_t size, const char *name)
{
    if (name == NULL)
	return "attribute name";
    /* names are checked to be at most IPC_NAME_MAX bytes before this */
    fmt_buf_or_panic(buf, size, "attribute \"%s\"", name);
    return buf;
}

/* ipc_src_fail - turn a failed read into an error text */
static int ipc_src_fail(struct ipc_src *src, const char *name, const char **error_r)
{
    int read_errno = errno;		/* the failed read's, before anything else */
    char wbuf[IPC_NAME_MAX + 32];
    const char *what = ipc_what(wbuf, sizeof(wbuf), name);

    if (src->stream == NULL) {
	src->short_input = true;
	return errtext_fail(&ipc_error, error_r, "incomplete message (%s)", what);
    }
    switch (stream_error(src->stream)) {
    case STREAM_TIMEOUT:
	return errtext_fail(&ipc_error, error_r, "timeout while reading %s", what);
    case STREAM_EOF:
    case STREAM_OK:
	if (!src->started)
	    return errtext_fail(&ipc_error, error_r, "connection closed by peer");
	return errtext_fail(&ipc_error, error_r, "unexpected end of input while reading %s", what);
    default:
	/* ECONNRESET before the first byte: the peer closed while
	 * something we sent (our handshake) was still unread there; it
	 * asked nothing, as at EOF (the stream leaves the read's errno) */
	if (!src->started && read_errno == ECONNRESET)
	    return errtext_fail(&ipc_error, error_r, "connection closed by peer");
	return errtext_fail(&ipc_error, error_r, "read error while reading %s", what);
    }
}

/* ipc_src_getc - one byte, or -1 (error text set) */
static int ipc_src_getc(struct ipc_src *src, const char *name, const char **error_r)
{
    int c;

    if (src->stream) {
	ipc_src_arm(src, 1);
	if ((c = stream_getc(src->stream)) < 0)
	    return ipc_src_fail(src, name, error_r);
    } else {
	if (src->pos >= src->len)
	    return ipc_src_fail(src, name, error_r);
	c = (unsigned char) src->buf[src->pos];
    }
    src->pos++;
    src->started = true;
    return c;
}

/* ipc_src_read - exactly len bytes into buf; 0 or -1 (error text set) */
static int ipc_src_read(struct ipc_src *src, void *buf, size_t len, const char *name,
			const char **error_r)
{
    if (len == 0)
	return 0;
    if (src->stream) {
	ipc_src_arm(src, len);
	if (stream_read_exact(src->stream, buf, len) != STREAM_OK)
	    return ipc_src_fail(src, name, error_r);
    } else {
	if (src->len - src->pos < len)
	    return ipc_src_fail(src, name, error_r);
	memcpy(buf, src->buf + src->pos, len);
    }
    src->pos += len;
    src->started = true;
    return 0;
}

/* ipc_len_error - the texts for a bad netstring length */
static int ipc_len_error(const char *name, const char *fmt_what, const char **error_r)
{
    char wbuf[IPC_NAME_MAX + 32];

    return errtext_fail(&ipc_error, error_r, fmt_what, ipc_what(wbuf, sizeof(wbuf), name));
}

/* ipc_read_len - read "digits:" of a netstring, bounded by IPC_MSG_MAX.
 * Every netstring, the end marker "0:," included, has at least three
 * bytes, so when two are buffered they are taken in one call: they
 * belong to this message (or it is malformed, and the same check on the
 * same byte says so). Byte at a time otherwise, so that a short or
 * silent peer gets the same diagnostics. */
static int ipc_read_len(struct ipc_src *src, const char *name, size_t *len_r, const char **error_r)
{
    unsigned char head[2];
    size_t nhead = 0, ihead = 0;
    size_t len = 0;
    int digits = 0;
    int c;

    if (src->nahead) {
	memcpy(head, src->ahead, sizeof(head));
	nhead = sizeof(head);
	src->nahead = 0;
	src->pos += sizeof(head);
    } else if (src->stream) {
	if (stream_buffered_here(src->stream) >= sizeof(head)) {
	    if (ipc_src_read(src, head, sizeof(head), name, error_r) < 0)
		return -1;
	    nhead = sizeof(head);
	}
    } else if (src->len - src->pos >= sizeof(head)) {
	memcpy(head, src->buf + src->pos, sizeof(head));
	src->pos += sizeof(head);
	src->started = true;
	nhead = sizeof(head);
    }
    for (;;) {
	if (ihead < nhead)
	    c = head[ihead++];
	else if ((c = ipc_src_getc(src, name, error_r)) < 0)
	    return -1;
	if (c == ':')
	    break;
	if (c < '0' || c > '9')
	    return ipc_len_error(name, "malformed netstring length in %s", error_r);
	if (digits == 1 && len == 0)
	    return ipc_len_error(name, "netstring length with leading zero in %s", error_r);
	len = len * 10 + (size_t) (c - '0');
	digits++;
	if (len > IPC_MSG_MAX) {
	    char wbuf[IPC_NAME_MAX + 32];

	    return errtext_fail(&ipc_error, error_r, "%s: length exceeds the message limit of %zu bytes",
			     ipc_what(wbuf, sizeof(wbuf), name), (size_t) IPC_MSG_MAX);
	}
    }
    if (digits == 0)
	return ipc_len_error(name, "empty netstring length in %s", error_r);
    if (src->pos > IPC_MSG_MAX || len + 1 > IPC_MSG_MAX - src->pos) {
	char wbuf[IPC_NAME_MAX + 32];

	return errtext_fail(&ipc_error, error_r, "%s: message exceeds the limit of %zu bytes",
			 ipc_what(wbuf, sizeof(wbuf), name), (size_t) IPC_MSG_MAX);
    }
    *len_r = len;
    return 0;
}

/* ipc_read_body - len bytes and the terminating ',' into buf (len + 1
 * bytes of room, len + 3 with ahead) in one read; the ',' is replaced by
 * a NUL. ahead: another netstring of this message follows (this is not
 * the end marker), so from a stream its first two bytes come with this
 * read when they are buffered; ipc_read_len takes them from there. */
static int ipc_read_body(struct ipc_src *src, char *buf, size_t len, bool ahead,
			 const char *name, const char **error_r)
{
    if (ahead && src->stream && stream_buffered_here(src->stream) >= len + 3) {
	if (ipc_src_read(src, buf, len + 3, name, error_r) < 0)
	    return -1;
	memcpy(src->ahead, buf + len + 1, 2);
	src->nahead = 2;
	src->pos -= 2;				/* counted when used */
    } else if (ipc_src_read(src, buf, len + 1, name, error_r) < 0) {
	return -1;
    }
    if (buf[len] != ',')
	return ipc_len_error(name, "missing ',' after %s", error_r);
    buf[len] = 0;
    return 0;
}

/* ipc_read_name - next name into name[]: length, 1 = attribute, 0 = end, -1 = error */
static int ipc_read_name(struct ipc_src *src, char name[IPC_NAME_MAX + 4], size_t *len_r,
			 const char **error_r)
{
    char shown[IPC_NAME_MAX + 1];
    size_t len = 0;

    if (ipc_read_len(src, NULL, &len, error_r) < 0)
	return -1;
    if (len > IPC_NAME_MAX)
	return errtext_fail(&ipc_error, error_r, "attribute name longer than %d bytes", IPC_NAME_MAX);
    if (ipc_read_body(src, name, len, len > 0, NULL, error_r) < 0)
	return -1;
    if (len == 0)
	return 0;
    if (!ipc_name_valid(name, len))
	return errtext_fail(&ipc_error, error_r, "invalid attribute name \"%s\"",
			 ipc_printable(shown, sizeof(shown), name, len));
    *len_r = len;
    return 1;
}

/* ipc_read_value_len - the length of the value of attribute name, checked */
static int ipc_read_value_len(struct ipc_src *src, const char *name, size_t limit, size_t *len_r,
			      const char **error_r)
{
    size_t len = 0;

    if (ipc_read_len(src, name, &len, error_r) < 0)
	return -1;
    if (len > limit)
	return errtext_fail(&ipc_error, error_r, "attribute \"%s\": value too long (%zu bytes, limit %zu)",
			 name, len, limit);
    *len_r = len;
    return 0;
}

/* ipc_read_value - the value of attribute name into dst (at most limit bytes) */
static int ipc_read_value(struct ipc_src *src, const char *name, struct str *dst,
			  size_t limit, const char **error_r)
{
    size_t len = 0;
    bool ahead;

    if (ipc_read_value_len(src, name, limit < dst->max ? limit : dst->max, &len, error_r) < 0)
	return -1;
    str_reset(dst);
    /* str_reserve leaves room for one more byte: reserving len + 2 (if
     * the str allows) makes room for the ',' and two bytes ahead */
    ahead = dst->max - len >= 2;
    if (!str_reserve(dst, ahead ? len + 2 : len))
	msg_panic("ipc_read_value: reserve");
    if (ipc_read_body(src, dst->data, len, ahead, name, error_r) < 0) {
	dst->data[0] = 0;
	return -1;
    }
    dst->len = len;
    return 0;
}

/* ipc_list_take - append (name, value) taking ownership of value */
static void ipc_list_take(struct ipc_list *list, const char *name, size_t name_len,
			  char *value, size_t len)
{
    struct ipc_attr *a;
    char *copy;

    if (list->count == list->cap) {
	list->cap = list->cap ? mem_size_mul(list->cap, 2) : 8;
	list->attrs = mem_realloc(list->attrs, mem_size_mul(list->cap, sizeof(*list->attrs)));
    }
    copy = mem_alloc(name_len + 1);
    memcpy(copy, name, name_len + 1);
    a = &list->attrs[list->count++];
    a->name = copy;
    a->value = value;
    a->len = len;
}

/* ipc_parse_list - read one whole message from src into list */
static int ipc_parse_list(struct ipc_src *src, struct ipc_list *list, const char **error_r)
{
    char name[IPC_NAME_MAX + 4];
    size_t name_len = 0;
    int rc;

    ipc_list_reset(list);
    while ((rc = ipc_read_name(src, name, &name_len, error_r)) > 0) {
	size_t len = 0;
	char *value;

	if (list->count >= IPC_LIST_MAX_ATTRS) {
	    rc = errtext_fail(&ipc_error, error_r, "more than %d attributes in one message", IPC_LIST_MAX_ATTRS);
	    break;
	}
	if ((rc = ipc_read_value_len(src, name, IPC_VALUE_MAX, &len, error_r)) < 0)
	    break;
	/* the value goes straight into its own copy: len + 3 holds the ','
	 * and the two bytes read ahead */
	value = mem_alloc(len + 3);
	if ((rc = ipc_read_body(src, value, len, true, name, error_r)) < 0) {
	    mem_free(&value);
	    break;
	}
	ipc_list_take(list, name, name_len, value, len);
    }
    if (rc < 0)
	ipc_list_reset(list);
    return rc < 0 ? -1 : 0;
}

/* ipc_recv_list - read one message into list (reset first) */
int ipc_recv_list(struct stream *s, struct ipc_list *list, const char **error_r)
{
    struct ipc_src src;
    int rc;

    ipc_src_stream(&src, s);
    rc = ipc_parse_list(&src, list, error_r);
    ipc_src_done(&src);
    return rc;
}

/* ipc_decode_list - decode one message from memory: bytes used, 0, or -1 */
long ipc_decode_list(const char *buf, size_t len, struct ipc_list *list, const char **error_r)
{
    struct ipc_src src = {.buf = buf, .len = len};

    if (ipc_parse_list(&src, list, error_r) < 0)
	return src.short_input ? 0 : -1;
    return (long) src.pos;
}

/*
 * Strict receive.
 */

struct ipc_want {
    int type;
    const char *name;
    void *target;			/* struct str * or long * */
    bool optional;
    bool seen;
};

/* ipc_recv_one - read the value of one expected attribute into its target */
static int ipc_recv_one(struct ipc_src *src, struct ipc_want *w, struct str *scratch,
			const char **error_r)
{
    struct str *dst;

    switch (w->type) {
    case IPC_TYPE_INT:
	if (ipc_read_value(src, w->name, scratch, IPC_INT_MAX_LEN, error_r) < 0)
	    return -1;
	if (!ipc_parse_long(scratch->data, scratch->len, (long *) w->target)) {
	    char shown[IPC_INT_MAX_LEN + 1];

	    return errtext_fail(&ipc_error, error_r, "attribute \"%s\": bad integer value \"%s\"", w->name,
			     ipc_printable(shown, sizeof(shown), scratch->data, scratch->len));
	}
	return 0;
    case IPC_TYPE_STR:
    case IPC_TYPE_DATA:
	dst = w->target;
	if (ipc_read_value(src, w->name, dst, IPC_MSG_MAX, error_r) < 0)
	    return -1;
	if (w->type == IPC_TYPE_STR && memchr(dst->data, 0, dst->len) != NULL)
	    return errtext_fail(&ipc_error, error_r, "attribute \"%s\": NUL byte in a string value", w->name);
	return 0;
    default:
	msg_panic("ipc_recv_one: type %d", w->type);
    }
}

/* ipc_recv - read one message; every listed attribute exactly once */
int ipc_recv(struct stream *s, const char **error_r, ...)
{
    struct ipc_want want[IPC_RECV_MAX_ATTRS];
    size_t nwant = 0;
    struct ipc_src src;
    struct str scratch;
    char name[IPC_NAME_MAX + 4];
    size_t name_len = 0;
    bool optional = false;
    va_list ap;
    int type;
    int rc;

    va_start(ap, error_r);
    while ((type = va_arg(ap, int)) != IPC_TYPE_END) {
	if (type == IPC_TYPE_OPT) {
	    optional = true;
	    continue;
	}
	if (type != IPC_TYPE_STR && type != IPC_TYPE_INT && type != IPC_TYPE_DATA)
	    msg_panic("ipc_recv: bad attribute type %d", type);
	if (nwant >= IPC_RECV_MAX_ATTRS)
	    msg_panic("ipc_recv: more than %d attributes", IPC_RECV_MAX_ATTRS);
	want[nwant].type = type;
	want[nwant].name = va_arg(ap, const char *);
	if (type == IPC_TYPE_INT)
	    want[nwant].target = va_arg(ap, long *);
	else
	    want[nwant].target = va_arg(ap, struct str *);
	want[nwant].optional = optional;
	want[nwant].seen = false;
	if (!ipc_name_valid(want[nwant].name, strlen(want[nwant].name)) || want[nwant].target == NULL)
	    msg_panic("ipc_recv: bad request for attribute \"%s\"", want[nwant].name);
	for (size_t i = 0; i < nwant; i++)
	    if (strcmp(want[i].name, want[nwant].name) == 0)
		msg_panic("ipc_recv: attribute \"%s\" listed twice", want[i].name);
	optional = false;
	nwant++;
    }
    va_end(ap);
    if (optional)
	msg_panic("ipc_recv: IPC_OPT without a following attribute");

    ipc_src_stream(&src, s);
    str_init(&scratch, IPC_INT_MAX_LEN);
    while ((rc = ipc_read_name(&src, name, &name_len, error_r)) > 0) {
	struct ipc_want *w = NULL;

	for (size_t i = 0; i < nwant; i++) {
	    if (strcmp(want[i].name, name) == 0) {
		w = &want[i];
		break;
	    }
	}
	if (w == NULL) {
	    rc = errtext_fail(&ipc_error, error_r, "unexpected attribute \"%s\"", name);
	    break;
	}
	if (w->seen) {
	    rc = errtext_fail(&ipc_error, error_r, "duplicate attribute \"%s\"", name);
	    break;
	}
	w->seen = true;
	if ((rc = ipc_recv_one(&src, w, &scratch, error_r)) < 0)
	    break;
    }
    str_fini(&scratch);
    ipc_src_done(&src);
    if (rc < 0)
	return -1;
    for (size_t i = 0; i < nwant; i++)
	if (!want[i].seen && !want[i].optional)
	    return errtext_fail(&ipc_error, error_r, "missing attribute \"%s\"", want[i].name);
    return 0;
}

/*
 * Handshake.
 */

/* ipc_handshake_encode - the announcement {proto, version} into out */
void ipc_handshake_encode(struct str *out, const char *proto, long version)
{
    ipc_encode_str(out, "proto", proto);
    ipc_encode_long(out, "version", version);
    ipc_encode_end(out);
}

/* ipc_handshake_server - announce {proto, version} */
int ipc_handshake_server(struct stream *s, const char *proto, long version)
{
    struct str msg;
    int ret;

    str_init(&msg, IPC_NAME_MAX + IPC_PROTO_MAX + 64);
    ipc_handshake_encode(&msg, proto, version);
    ret = ipc_write_msg(s, &msg);
    str_fini(&msg);
    return ret;
}

/* ipc_handshake_check - a decoded announcement must be exactly
 * {proto, version} and match: the one check of every client, blocking
 * (ipc_handshake_client) or event-driven (qmgr) */
int ipc_handshake_check(const struct ipc_list *list, const char *proto, long version,
			const char **error_r)
{
    char shown[IPC_PROTO_MAX + 1];
    const struct ipc_attr *got[2] = {NULL, NULL};
    static const char *const names[2] = {"proto", "version"};
    long got_version = 0;

    for (size_t i = 0; i < list->count; i++) {
	const struct ipc_attr *a = list->attrs + i;
	size_t k = strcmp(a->name, names[0]) == 0 ? 0 : strcmp(a->name, names[1]) == 0 ? 1 : 2;

	if (k == 2)
	    return errtext_fail(&ipc_error, error_r, "handshake: unexpected attribute \"%s\"", a->name);
	if (got[k] != NULL)
	    return errtext_fail(&ipc_error, error_r, "handshake: duplicate attribute \"%s\"", a->name);
	got[k] = a;
    }
    for (size_t k = 0; k < 2; k++)
	if (got[k] == NULL)
	    return errtext_fail(&ipc_error, error_r, "handshake: missing attribute \"%s\"", names[k]);
    if (got[0]->len > IPC_PROTO_MAX || strlen(got[0]->value) != got[0]->len)
	return errtext_fail(&ipc_error, error_r, "handshake: bad attribute \"proto\"");
    if (!ipc_parse_long(got[1]->value, got[1]->len, &got_version))
	return errtext_fail(&ipc_error, error_r, "handshake: attribute \"version\": bad integer value \"%s\"",
			 ipc_printable(shown, sizeof(shown), got[1]->value, got[1]->len));
    if (strcmp(got[0]->value, proto) != 0 || got_version != version)
	return errtext_fail(&ipc_error, error_r, "protocol mismatch: expected %s version %ld, got %s version %ld",
			 proto, version, ipc_printable(shown, sizeof(shown), got[0]->value,
						       got[0]->len), got_version);
    return 0;
}

/* ipc_handshake_client - read the announcement and require a match */
int ipc_handshake_client(struct stream *s, const char *proto, long version, const char **error_r)
{
    struct ipc_list list;
    int ret;

    ipc_list_init(&list);
    if ((ret = ipc_recv_list(s, &list, error_r)) < 0) {
	/* Prefix the decoder's text so the log says where it failed. */
	ret = errtext_fail(&ipc_error, error_r, "handshake: %s", ipc_error.text);
    } else {
	ret = ipc_handshake_check(&list, proto, version, error_r);
    }
    ipc_list_fini(&list);
    return ret;
}

/* ipc_send_encoded - write a message encoded with ipc_encode_* and flush */
int ipc_send_encoded(struct stream *s, const struct str *msg)
{
    return ipc_write_msg(s, msg);
}

/* ipc_call - write an encoded request (ipc_encode_*), flush it, and read
 * the reply into list; 0, or -1 with *error_r */
int ipc_call(struct stream *s, const struct str *request, struct ipc_list *reply,
	     const char **error_r)
{
    if (stream_write(s, str_cstr(request), str_len(request)) < 0 || stream_flush(s) < 0)
	return errtext_fail(&ipc_error, error_r, "request: write: %s", stream_status_text(stream_error(s)));
    return ipc_recv_list(s, reply, error_r);
}
