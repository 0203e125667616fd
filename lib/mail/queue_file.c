/* queue_file.c - queue file records: writer, whitelisted reader, grammar
 * check, in-place done marks and a readable dump (see queue_file.h and
 * docs/queue-file.md).
 *
 * The reader trusts nothing in the file: the type byte is checked
 * against the caller's whitelist before the length is even read, the
 * length against the caller's limit before any data is read or any
 * memory reserved, and a short read anywhere is "corrupt", never a
 * partial record. */

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* base */
#include "mem.h"
#include "msg.h"
#include "str.h"
#include "stream.h"

/* mail */
#include "queue_file.h"


static char qf_errbuf[320];

/* qf_error - format an error text into the module buffer, return -1 */
static int __attribute__((format(printf, 2, 3))) qf_error(const char **error_r, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(qf_errbuf, sizeof(qf_errbuf), fmt, ap);
    va_end(ap);
    if (error_r)
	*error_r = qf_errbuf;
    return -1;
}

/* qf_type_show - a type byte as 'X' or \xNN for messages */
const char *qf_type_show(char *buf, size_t size, int type)
{
    if (type > 0x20 && type < 0x7f)
	fmt_buf_or_panic(buf, size, "'%c'", type);
    else
	fmt_buf_or_panic(buf, size, "\\x%02x", (unsigned) (type & 0xff));
    return buf;
}

/* qf_type_name - readable name of a record type */
const char *qf_type_name(int type)
{
    switch (type) {
    case QF_REC_VERSION: return "version";
    case QF_REC_TIME: return "time";
    case QF_REC_SENDER: return "sender";
    case QF_REC_ATTR: return "attribute";
    case QF_REC_ORCPT: return "orcpt";
    case QF_REC_NOTIFY: return "notify";
    case QF_REC_RCPT: return "recipient";
    case QF_REC_DONE: return "done";
    case QF_REC_MESSAGE: return "message";
    case QF_REC_LINE: return "line";
    case QF_REC_CONT: return "continued";
    case QF_REC_XEND: return "end-of-content";
    case QF_REC_END: return "end";
    default: return "unknown";
    }
}

/* qf_type_known - true for a type this format defines (a switch: this
 * runs for every record written) */
static bool qf_type_known(int type)
{
    switch (type) {
    case QF_REC_VERSION: case QF_REC_TIME: case QF_REC_SENDER: case QF_REC_ATTR:
    case QF_REC_ORCPT: case QF_REC_NOTIFY: case QF_REC_RCPT: case QF_REC_DONE:
    case QF_REC_MESSAGE: case QF_REC_LINE: case QF_REC_CONT: case QF_REC_XEND:
    case QF_REC_END:
	return true;
    default:
	return false;
    }
}

/*
 * Writing.
 */

/* qf_header - the 5 header bytes for (type, len) */
static void qf_header(unsigned char head[QF_HEADER_SIZE], int type, size_t len)
{
    if (!qf_type_known(type))
	msg_panic("queue file: writing unknown record type 0x%02x", (unsigned) (type & 0xff));
    if (len > QF_RECORD_MAX)
	msg_panic("queue file: record '%c' of %zu bytes exceeds %zu", type, len, (size_t) QF_RECORD_MAX);
    head[0] = (unsigned char) type;
    head[1] = (unsigned char) (len >> 24);
    head[2] = (unsigned char) (len >> 16);
    head[3] = (unsigned char) (len >> 8);
    head[4] = (unsigned char) len;
}

/* qf_encode - append one record to a memory buffer */
void qf_encode(struct str *out, int type, const void *data, size_t len)
{
    unsigned char head[QF_HEADER_SIZE];

    qf_header(head, type, len);
    if (!str_try_append(out, head, sizeof(head)) || !str_try_append(out, data, len))
	msg_panic("qf_encode: buffer full");
}

/* qf_put - write one record to a stream; a short record (most content
 * lines) goes to the stream's buffer in one piece */
int qf_put(struct stream *s, int type, const void *data, size_t len)
{
    unsigned char rec[QF_HEADER_SIZE + 256];

    qf_header(rec, type, len);
    if (len <= sizeof(rec) - QF_HEADER_SIZE) {
	if (len)
	    memcpy(rec + QF_HEADER_SIZE, data, len);
	return stream_write(s, rec, QF_HEADER_SIZE + len);
    }
    if (stream_write(s, rec, QF_HEADER_SIZE) < 0)
	return -1;
    return stream_write(s, data, len);
}

/* qf_puts - write a record with text data */
int qf_puts(struct stream *s, int type, const char *text)
{
    return qf_put(s, type, text, strlen(text));
}

/* qf_put_version - the version record */
int qf_put_version(struct stream *s)
{
    char buf[64];

    fmt_buf_or_panic(buf, sizeof(buf), "%s %d", QF_MAGIC, QF_VERSION);
    return qf_puts(s, QF_REC_VERSION, buf);
}

/* qf_put_time - "SECONDS.UUUUUU" */
int qf_put_time(struct stream *s, int64_t sec, long usec)
{
    char buf[64];

    if (sec < 0 || usec < 0 || usec > 999999)
	msg_panic("qf_put_time: bad time %lld.%ld", (long long) sec, usec);
    fmt_buf_or_panic(buf, sizeof(buf), "%lld.%06ld", (long long) sec, usec);
    return qf_puts(s, QF_REC_TIME, buf);
}

/* qf_attr_name_valid - [a-z0-9_]{1,64} */
static bool qf_attr_name_valid(const char *name, size_t len)
{
    if (len == 0 || len > QF_ATTR_NAME_MAX)
	return false;
    for (size_t i = 0; i < len; i++)
	if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') || name[i] == '_'))
	    return false;
    return true;
}

/* qf_put_attr - "name=value" */
int qf_put_attr(struct stream *s, const char *name, const char *value)
{
    size_t nlen = strlen(name), vlen = strlen(value);
    unsigned char head[QF_HEADER_SIZE];

    if (!qf_attr_name_valid(name, nlen))
	msg_panic("qf_put_attr: invalid attribute name \"%s\"", name);
    qf_header(head, QF_REC_ATTR, mem_size_add(nlen, mem_size_add(1, vlen)));
    if (stream_write(s, head, sizeof(head)) < 0 || stream_write(s, name, nlen) < 0
	|| stream_write(s, "=", 1) < 0)
	return -1;
    return vlen ? stream_write(s, value, vlen) : 0;
}

/* qf_put_line - C records of max bytes, then L with the rest */
int qf_put_line(struct stream *s, const void *data, size_t len, size_t max)
{
    const char *p = data;

    if (max == 0 || max > QF_RECORD_MAX)
	msg_panic("qf_put_line: bad limit %zu", max);
    while (len > max) {
	if (qf_put(s, QF_REC_CONT, p, max) < 0)
	    return -1;
	p += max;
	len -= max;
    }
    return qf_put(s, QF_REC_LINE, p, len);
}

/* qf_attr_split - "name=value" with a valid name */
bool qf_attr_split(const char *data, size_t len, size_t *name_len, const char **value)
{
    const char *eq = memchr(data, '=', len);

    if (eq == NULL || !qf_attr_name_valid(data, (size_t) (eq - data)))
	return false;
    *name_len = (size_t) (eq - data);
    *value = eq + 1;
    return true;
}

/*
 * Reading.
 */

/* qf_reader_init - start reading at offset */
void qf_reader_init(struct qf_reader *r, struct stream *s, off_t offset)
{
    r->stream = s;
    r->buf = NULL;
    r->len = 0;
    r->offset = offset;
}

/* qf_reader_init_mem - read records from the len bytes of a whole file */
void qf_reader_init_mem(struct qf_reader *r, const void *buf, size_t len)
{
    r->stream = NULL;
    r->buf = buf;
    r->len = len;
    r->offset = 0;
}

/* qf_io_error - a failed read that is not a clean EOF */
static int qf_io_error(enum stream_status st, off_t at, const char *what, const char **error_r)
{
    if (st == STREAM_EOF || st == STREAM_OK)
	return qf_error(error_r, "corrupt queue file: %s at offset %lld", what, (long long) at);
    return qf_error(error_r, "queue file read error (%s) at offset %lld",
		    stream_status_text(st), (long long) at);
}

/* qf_rec_len - the 4-byte big-endian length of a record header */
static size_t qf_rec_len(const unsigned char *b)
{
    return ((size_t) b[0] << 24) | ((size_t) b[1] << 16) | ((size_t) b[2] << 8) | (size_t) b[3];
}

/* qf_check_len - len fits the caller's max, QF_RECORD_MAX and data */
static int qf_check_len(int type, size_t len, size_t max, const struct str *data, long long at,
			const char **error_r)
{
    char show[8];

    if (max > QF_RECORD_MAX)
	max = QF_RECORD_MAX;
    if (max > data->max)
	max = data->max;
    if (len > max)
	return qf_error(error_r, "corrupt queue file: record %s of %zu bytes exceeds the limit of %zu at offset %lld",
			qf_type_show(show, sizeof(show), type), len, max, at);
    return 0;
}

/* qf_past_end - the text for a record that runs past the end */
static const char *qf_past_end(char *what, size_t size, int type, size_t len)
{
    char show[8];

    fmt_buf_cut(what, size, "record %s length %zu runs past end of file",
		   qf_type_show(show, sizeof(show), type), len);
    return what;
}

/* qf_check_bytes - no NUL in a record other than content lines, and no
 * line feed in a content line: a content record is (a piece of) one line,
 * so that every reader sees the same lines (an LF inside a record would
 * hide a header from cleanup and a "From " line from the mbox writer) */
static int qf_check_bytes(int type, const struct str *data, long long at, const char **error_r)
{
    char show[8];

    if (type != QF_REC_LINE && type != QF_REC_CONT) {
	if (memchr(data->data, 0, data->len) != NULL)
	    return qf_error(error_r, "corrupt queue file: NUL byte in record %s at offset %lld",
			    qf_type_show(show, sizeof(show), type), at);
    } else if (memchr(data->data, '\n', data->len) != NULL) {
	return qf_error(error_r, "corrupt queue file: line feed inside content record %s "
			"at offset %lld", qf_type_show(show, sizeof(show), type), at);
    }
    return 0;
}

/* qf_take - n bytes at the reader's position from its source:
 * STREAM_OK, or why not (STREAM_EOF for the end of a memory source) */
static enum stream_status qf_take(struct qf_reader *r, off_t pos, void *buf, size_t n)
{
    if (r->buf == NULL)
	return stream_read_exact(r->stream, buf, n);
    if ((size_t) pos > r->len || n > r->len - (size_t) pos)
	return STREAM_EOF;
    if (n > 0)
	memcpy(buf, r->buf + pos, n);
    return STREAM_OK;
}

/* qf_get - one whitelisted, bounded record */
int qf_get(struct qf_reader *r, int *type, struct str *data, size_t max,
	   const char *allowed, off_t *rec_offset, const char **error_r)
{
    unsigned char len_bytes[4];
    char show[8];
    off_t at = r->offset;
    enum stream_status st;
    size_t len;
    int c;

    if (r->buf) {
	if ((size_t) at >= r->len)
	    return 0;
	c = r->buf[at];
    } else if ((c = stream_getc(r->stream)) < 0) {
	st = stream_error(r->stream);
	if (st == STREAM_EOF || st == STREAM_OK)
	    return 0;
	return qf_io_error(st, at, "record type", error_r);
    }
    if (c == 0 || strchr(allowed, c) == NULL)
	return qf_error(error_r, "corrupt queue file: unexpected record type %s at offset %lld",
			qf_type_show(show, sizeof(show), c), (long long) at);
    if ((st = qf_take(r, at + 1, len_bytes, sizeof(len_bytes))) != STREAM_OK)
	return qf_io_error(st, at, "truncated record header", error_r);
    len = qf_rec_len(len_bytes);
    if (qf_check_len(c, len, max, data, (long long) at, error_r) < 0)
	return -1;
    str_reset(data);
    if (len > data->cap && !str_reserve(data, len))
	msg_panic("qf_get: reserve");
    if (len > 0 && (st = qf_take(r, at + QF_HEADER_SIZE, data->data, len)) != STREAM_OK) {
	char what[64];

	return qf_io_error(st, at, qf_past_end(what, sizeof(what), c, len), error_r);
    }
    data->len = len;
    data->data[len] = 0;
    if (qf_check_bytes(c, data, (long long) at, error_r) < 0)
	return -1;
    r->offset = at + QF_HEADER_SIZE + (off_t) len;
    *type = c;
    if (rec_offset)
	*rec_offset = at;
    return 1;
}

/* qf_expect_eof - nothing may follow the end record */
int qf_expect_eof(struct qf_reader *r, const char **error_r)
{
    enum stream_status st;

    if (r->buf) {
	if ((size_t) r->offset < r->len)
	    return qf_error(error_r, "corrupt queue file: data after the end record at offset %lld",
			    (long long) r->offset);
	return 0;
    }
    if (stream_getc(r->stream) >= 0)
	return qf_error(error_r, "corrupt queue file: data after the end record at offset %lld",
			(long long) r->offset);
    if ((st = stream_error(r->stream)) != STREAM_EOF)
	return qf_io_error(st, r->offset, "after end record", error_r);
    return 0;
}

/*
 * Done marks.
 */

/* qf_mark_done_nosync - 'R' -> 'D' at offset, without sync */
int qf_mark_done_nosync(int fd, off_t offset, const char **error_r)
{
    unsigned char c;
    ssize_t n;

    if (offset < 0)
	return qf_error(error_r, "mark done: bad offset %lld", (long long) offset);
    while ((n = pread(fd, &c, 1, offset)) < 0 && errno == EINTR)
	;
    if (n < 0)
	return qf_error(error_r, "mark done: read at offset %lld: %s", (long long) offset, strerror(errno));
    if (n == 0)
	return qf_error(error_r, "mark done: offset %lld is past the end of the file", (long long) offset);
    if (c == QF_REC_DONE)
	return 0;
    if (c != QF_REC_RCPT) {
	char show[8];

	return qf_error(error_r, "mark done: no recipient record at offset %lld (found %s)",
			(long long) offset, qf_type_show(show, sizeof(show), c));
    }
    c = QF_REC_DONE;
    while ((n = pwrite(fd, &c, 1, offset)) < 0 && errno == EINTR)
	;
    if (n != 1)
	return qf_error(error_r, "mark done: write at offset %lld: %s", (long long) offset,
			n < 0 ? strerror(errno) : "short write");
    return 0;
}

/* qf_mark_done - 'R' -> 'D' at offset, then fdatasync */
int qf_mark_done(int fd, off_t offset, const char **error_r)
{
    if (qf_mark_done_nosync(fd, offset, error_r) < 0)
	return -1;
    if (fdatasync(fd) < 0)
	return qf_error(error_r, "mark done: fdatasync: %s", strerror(errno));
    return 0;
}

