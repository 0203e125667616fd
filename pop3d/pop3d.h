/* pop3d.h - pop3d's modules: the session after login (pop3d_session.c)
 * and the message transfer with CRLF line ends and dot-stuffing
 * (pop3d_send.c). main.c takes the hand-over and redeems the token. */
#ifndef POSTHORN_POP3D_H
#define POSTHORN_POP3D_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* base */
#include "stream.h"

/* mail */
#include "store.h"

/* pop3d_session - serve TRANSACTION and UPDATE states (RFC 1939) on
 * client for user's open, locked mailbox mb; replies "+OK" to the login
 * first. Closes nothing. */
void pop3d_session(struct stream *client, struct store_mailbox *mb, const char *user,
		   const char *client_addr);

/* pop3d_send_msg - write the message on fd as RFC 1939 multi-line data
 * (CRLF line ends, dot-stuffed, ended by ".\r\n"): all of it, or with
 * body_lines >= 0 the header, the empty line and that many body lines
 * (TOP). *sent_r: bytes of the message read. 0, or -1 on a read error
 * (the response is then cut; the caller ends the session) or a write
 * error (stream_error). */
int pop3d_send_msg(struct stream *client, int fd, long body_lines, off_t *sent_r);

#endif
