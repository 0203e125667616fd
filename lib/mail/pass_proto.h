/* pass_proto.h - the hand-over of an SMTP client from the port-25 front
 * (smtp-front, the role of Postfix's postscreen) to an smtpd process
 * (mail_proto.h, 8).
 *
 * master.cf gives smtpd a service of type "pass" (a unix socket under
 * private/, like unix; default name "smtpd", smtp_front_pass_service):
 *     smtp    inet  n  -  y  -  1  smtp-front
 *     smtpd   pass  -  -  n  -  -  smtpd
 * master starts its children with -t pass. The server skeleton
 * (server.h, SERVER_SINGLE) accepts a connection on such a listener,
 * takes the client from it, answers, and calls single_service with a
 * stream on the CLIENT's socket, whose read buffer already holds the
 * bytes the front read (input). The daemon learns the rest from
 * server_pass_info().
 *
 * The conversation (both halves must bound every step by ipc_timeout;
 * the front never blocks: it runs it on its event loop). The client
 * speaks first, at once after connect(2), without waiting for an
 * announcement: its request waits in the socket until a process accepts
 * the connection, and the answer comes in one write, so a hand-over
 * costs the front one wake-up.
 *   client: one byte PASS_FD_BYTE carrying the client socket (SCM_RIGHTS),
 *           and in the same sendmsg(2) (sock_send_fd_once) or after it:
 *           {client_address, client_port, greeted, input}
 *   server: {proto=pass, version=PASS_VERSION} {status=ok}, in one write
 *           (the smtpd process owns the client now; the front closes its
 *           copy)
 *
 *   client_address, client_port  as the front saw them (getpeername on
 *           the passed socket gives the same; these are for logging and
 *           a cross-check)
 *   greeted "1": the front already sent the complete 220 greeting
 *           (smtpd must not send another); "0": it sent nothing (smtpd
 *           greets as usual)
 *   input   bytes the front read from the client and did not answer: the
 *           client's first command line (CRLF or LF included) and anything
 *           pipelined after it, at most PASS_INPUT_MAX bytes. smtpd reads
 *           them before the socket.
 * A server that cannot take the client (bad message) answers the
 * announcement alone and closes; one that closes without a word (it was
 * exiting) never touched the client. Either way the front still owns
 * the client: it answers it 421 4.3.2 and closes after a refusal, and
 * tries another process after silence. (Version 1 announced itself
 * first, at accept; a front of version 1 waited for nothing either,
 * but an answer in two writes woke it twice.) */
#ifndef POSTHORN_PASS_PROTO_H
#define POSTHORN_PASS_PROTO_H

#define PASS_PROTO		"pass"
#define PASS_VERSION		2
#define PASS_FD_BYTE		'F'
#define PASS_INPUT_MAX		8192	/* bytes of input handed over */

#define PASS_ATTR_CLIENT_ADDR	"client_address"
#define PASS_ATTR_CLIENT_PORT	"client_port"
#define PASS_ATTR_GREETED	"greeted"
#define PASS_ATTR_INPUT		"input"
#define PASS_STAT_OK		"ok"

#endif
