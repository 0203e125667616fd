/* pop3d_send.c - a stored message on the wire as RFC 1939 multi-line
 * data, one chunk at a time (the session produces the next chunk when
 * the client has taken the previous ones: conn.h's on_drain): every
 * line end becomes CRLF (the store may keep bare LF), a line that
 * starts with "." gets another one, and ".\r\n" ends it. The octet
 * counts of STAT/LIST are the store's crlf_size, which counts exactly
 * the bytes this writes before the dot-stuffing. */

/* system */
#include <errno.h>
#include <string.h>
#include <unistd.h>

/* pop3d */
#include "pop3d.h"

/* send_put - append to the output chunk */
static inline char *send_put(char *o, const char *p, size_t n)
{
    memcpy(o, p, n);
    return o + n;
}

/* send_convert - convert buf,len into out; returns the end of the
 * output; *stop when TOP has sent enough */
static char *send_convert(struct pop3d_send *st, const char *buf, size_t len, char *o, bool *stop)
{
    size_t i = 0;

    while (i < len) {
	const char *nl;
	size_t run;

	if (st->body_left == 0 && !st->in_header) {
	    *stop = true;
	    return o;
	}
	if (st->line_start && buf[i] == '.')
	    *o++ = '.';				/* dot-stuffing */
	st->line_start = false;
	/* the rest of this line (up to and including its LF) */
	nl = memchr(buf + i, '\n', len - i);
	run = nl ? (size_t) (nl - (buf + i)) : len - i;
	if (st->in_header && run > 0 && !(run == 1 && buf[i] == '\r'))
	    st->header_line_empty = false;
	if (run > 0) {
	    o = send_put(o, buf + i, run);
	    st->prev_cr = buf[i + run - 1] == '\r';
	}
	i += run;
	if (nl == NULL)
	    break;
	/* the LF: make it CRLF */
	if (!st->prev_cr)
	    *o++ = '\r';
	*o++ = '\n';
	i++;
	st->prev_cr = false;
	st->line_start = true;
	if (st->in_header) {
	    if (st->header_line_empty)
		st->in_header = false;		/* the empty line ends the header */
	    st->header_line_empty = true;
	} else if (st->body_left > 0) {
	    st->body_left--;
	}
    }
    if (st->body_left == 0 && !st->in_header)
	*stop = true;
    return o;
}

/* pop3d_send_begin - the whole message, or its header and body_lines */
void pop3d_send_begin(struct pop3d_send *st, int fd, long body_lines, off_t size)
{
    memset(st, 0, sizeof(*st));
    st->fd = fd;
    st->size = size;
    st->line_start = true;
    st->in_header = body_lines >= 0;
    st->header_line_empty = true;
    st->body_left = body_lines;
}

/* pop3d_send_next - the next chunk of output */
ssize_t pop3d_send_next(struct pop3d_send *st, char *out, bool *done_r)
{
    static char buf[POP3D_SEND_CHUNK];
    bool stop = false;
    char *o = out;
    ssize_t n;

    *done_r = false;
    if (st->done) {
	*done_r = true;
	return 0;
    }
    if (st->size >= 0 && st->read_bytes >= st->size) {
	n = 0;				/* all of it: no read to see the end */
    } else {
	do {
	    n = read(st->fd, buf, sizeof(buf));
	} while (n < 0 && errno == EINTR);
	if (n < 0)
	    return -1;
    }
    if (n > 0) {
	st->read_bytes += n;
	o = send_convert(st, buf, (size_t) n, o, &stop);
    }
    if (n == 0 || stop) {
	/* a last line without its LF is ended here, for the terminator */
	if (!st->line_start)
	    o = send_put(o, "\r\n", 2);
	o = send_put(o, ".\r\n", 3);
	st->done = true;
	*done_r = true;
    }
    return o - out;
}
