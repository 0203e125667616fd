/* pop3d_send.c - a stored message on the wire as RFC 1939 multi-line
 * data: every line end becomes CRLF (the store may keep bare LF), a line
 * that starts with "." gets another one, and ".\r\n" ends it. The octet
 * counts of STAT/LIST are the store's crlf_size, which counts exactly
 * the bytes this writes before the dot-stuffing. */

/* system */
#include <errno.h>
#include <string.h>
#include <unistd.h>

/* base */
#include "stream.h"

/* pop3d */
#include "pop3d.h"

#define SEND_CHUNK	65536

/* send_state - where the converter is between two reads */
struct send_state {
    bool line_start;		/* the next byte begins a line */
    bool prev_cr;		/* the previous byte was "\r" */
    bool in_header;		/* TOP: still in the header */
    bool header_line_empty;	/* TOP: the current header line is empty so far */
    long body_left;		/* TOP: body lines still to send; -1 = all */
};

/* send_chunk - convert and write buf,len; false when TOP has sent enough */
static bool send_chunk(struct stream *s, struct send_state *st, const char *buf, size_t len)
{
    size_t i = 0;

    while (i < len) {
	const char *nl;
	size_t run;

	if (st->body_left == 0 && !st->in_header)
	    return false;
	if (st->line_start && buf[i] == '.')
	    (void) stream_write(s, ".", 1);	/* dot-stuffing */
	st->line_start = false;
	/* the rest of this line (up to and including its LF) */
	nl = memchr(buf + i, '\n', len - i);
	run = nl ? (size_t) (nl - (buf + i)) : len - i;
	if (st->in_header && run > 0 && !(run == 1 && buf[i] == '\r'))
	    st->header_line_empty = false;
	if (run > 0) {
	    (void) stream_write(s, buf + i, run);
	    st->prev_cr = buf[i + run - 1] == '\r';
	}
	i += run;
	if (nl == NULL)
	    break;
	/* the LF: make it CRLF */
	if (!st->prev_cr)
	    (void) stream_write(s, "\r\n", 2);
	else
	    (void) stream_write(s, "\n", 1);
	i++;
	st->prev_cr = false;
	st->line_start = true;
	if (st->in_header) {
	    if (st->header_line_empty)
		st->in_header = false;	/* the empty line ends the header */
	    st->header_line_empty = true;
	} else if (st->body_left > 0) {
	    st->body_left--;
	}
    }
    return true;
}

/* pop3d_send_msg - the whole message, or its header and body_lines lines */
int pop3d_send_msg(struct stream *client, int fd, long body_lines, off_t *sent_r)
{
    struct send_state st = {
	.line_start = true,
	.in_header = body_lines >= 0,
	.header_line_empty = true,
	.body_left = body_lines,
    };
    static char buf[SEND_CHUNK];
    ssize_t n;
    int ret = 0;

    *sent_r = 0;
    for (;;) {
	n = read(fd, buf, sizeof(buf));
	if (n < 0 && errno == EINTR)
	    continue;
	if (n < 0) {
	    ret = -1;
	    break;
	}
	if (n == 0)
	    break;
	*sent_r += n;
	if (!send_chunk(client, &st, buf, (size_t) n))
	    break;
	if (stream_error(client) != STREAM_OK)
	    return -1;
    }
    /* a last line without its LF is ended here, for the terminator */
    if (!st.line_start)
	(void) stream_write(client, "\r\n", 2);
    (void) stream_write(client, ".\r\n", 3);
    return stream_error(client) != STREAM_OK ? -1 : ret;
}
