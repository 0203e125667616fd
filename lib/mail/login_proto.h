/* login_proto.h - the hand-over of an authenticated client from a login
 * process (pop3d-login, imapd-login) to its post-login daemon (pop3d,
 * imapd). Both halves run on event loops and never block: the client
 * half is in login_front.c, the server half in session_host.c.
 *
 * The conversation (mail_proto.h, 6), on a fresh connection to the post-login daemon's
 * unix socket (reached through a hard link in the login process's
 * chroot, docs/login-split.md):
 *   server: {proto=login, version=LOGIN_VERSION}
 *   client: one byte "F" carrying the client connection (SCM_RIGHTS,
 *           sock_send_fd)
 *   client: {token, client_address, client_port, input}
 *   server: {status=ok}                   (the server owns the client now)
 *
 *   token           what auth issued for the login (auth_proto.h): the
 *                   ONLY thing the post-login daemon acts on; it learns
 *                   the user by redeeming it, never from this message
 *   client_address, client_port
 *                   for logging only
 *   login_tag       optional (IMAP): the tag of the LOGIN/AUTHENTICATE
 *                   command, which the post-login daemon answers; at most
 *                   LOGIN_TAG_MAX printable ASCII characters
 *   input           bytes the login process had read from the client but
 *                   not consumed (pipelined commands after the
 *                   successful PASS/AUTH), at most LOGIN_INPUT_MAX; the
 *                   post-login daemon reads them before the socket
 *   tls             optional (issue 13): present when the client speaks
 *                   TLS to the login process, which then stays as the
 *                   TLS proxy: the descriptor passed is one end of a
 *                   socketpair carrying the session's plaintext, not the
 *                   client's socket. The value (tls_info_summary text,
 *                   "TLSv1.3 with cipher ...", at most LOGIN_TLS_MAX
 *                   printable characters) is for the daemon's logs.
 */
#ifndef POSTHORN_LOGIN_PROTO_H
#define POSTHORN_LOGIN_PROTO_H

#include <stddef.h>

/* base */
#include "ipc.h"
#include "str.h"
#include "stream.h"

/* mail */
#include "mail_proto.h"		/* LOGIN_PROTO, LOGIN_VERSION */

#define LOGIN_FD_BYTE		'F'
#define LOGIN_INPUT_MAX		65536	/* bytes of unconsumed input */
#define LOGIN_TOKEN_MAX		256	/* bytes of a token */

#define LOGIN_ATTR_TOKEN	"token"
#define LOGIN_ATTR_CLIENT_ADDR	"client_address"
#define LOGIN_ATTR_CLIENT_PORT	"client_port"
#define LOGIN_ATTR_INPUT	"input"
#define LOGIN_ATTR_LOGIN_TAG	"login_tag"	/* optional (IMAP) */
#define LOGIN_TAG_MAX		128	/* bytes of a login_tag */
#define LOGIN_ATTR_TLS		"tls"		/* optional (TLS proxy) */
#define LOGIN_TLS_MAX		160	/* bytes of the tls attribute */
#define LOGIN_ATTR_STATUS	"status"
#define LOGIN_STAT_OK		"ok"

#endif
