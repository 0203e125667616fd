/* pop3d.h - pop3d's modules: the session after login, one state machine
 * per client on the worker's event loop (pop3d_session.c), and the
 * message transfer with CRLF line ends and dot-stuffing, one chunk at a
 * time (pop3d_send.c). main.c hands both to session_host.h. */
#ifndef POSTHORN_POP3D_H
#define POSTHORN_POP3D_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* mail */
#include "session_host.h"

/* pop3d_session_start - a new session in this worker (session_host.h's
 * session_start): open and lock the mailbox, answer the login, serve */
void pop3d_session_start(int fd, const struct session_info *info);

/* pop3d_session_retire - the worker retires: sessions end at their next
 * command (a reload lets each finish what it is doing) */
void pop3d_session_retire(void);

#define POP3D_SEND_CHUNK	16384	/* bytes of the message per step (the
				 * buffers stay resident in a worker) */
/* the most one step writes: every byte doubled, plus the ending */
#define POP3D_SEND_OUT_MAX	(2 * POP3D_SEND_CHUNK + 8)

/* the converter between two steps */
struct pop3d_send {
    int fd;
    bool line_start;		/* the next byte begins a line */
    bool prev_cr;		/* the previous byte was "\r" */
    bool in_header;		/* TOP: still in the header */
    bool header_line_empty;	/* TOP: the current header line is empty so far */
    long body_left;		/* TOP: body lines still to send; -1 = all */
    bool done;
    off_t size;			/* of the file, if known (else -1) */
    off_t read_bytes;
};

/* pop3d_send_begin - send the message on fd as RFC 1939 multi-line data
 * (CRLF line ends, dot-stuffed, ended by ".\r\n"): all of it, or with
 * body_lines >= 0 the header, the empty line and that many body lines
 * (TOP). size: the file's size if known (Maildir files never change:
 * the end is seen without a read that returns 0), else -1. Does not
 * read yet. */
void pop3d_send_begin(struct pop3d_send *st, int fd, long body_lines, off_t size);

/* pop3d_send_next - read the next chunk and put its wire form into out
 * (POP3D_SEND_OUT_MAX bytes); *done_r once the terminator is in. Bytes
 * in out, or -1 on a read error (errno; the response is then cut and
 * the caller ends the session). */
ssize_t pop3d_send_next(struct pop3d_send *st, char *out, bool *done_r);

#endif
