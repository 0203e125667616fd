/* auth_client.h - blocking client calls of the auth protocol
 * (auth_proto.h has the protocol and its codec): for pop3d-login,
 * pop3d, the tests and later imapd and smtpd.
 *
 *   struct auth_client *ac = auth_client_open(NULL, &error);
 *   auth_client_start(ac, &req, &reply, &error);     status "continue"?
 *   auth_client_continue(ac, response_b64, &reply, &error);  ... until
 *                                 ok, fail or tempfail
 *   auth_client_redeem(ac, token, AUTH_SERVICE_POP3, &rr, &error);
 *   auth_client_close(&ac);
 *
 * The reply's strings point into the client's last reply list: valid
 * until the next call on the same client. The stream's timeout is
 * ipc_timeout (a failed reply comes only after auth's failure delay,
 * which auth_failure_delay_max keeps far below it).
 *
 * DIAGNOSTICS: -1 (NULL for open) and an error text in the module's
 * buffer (valid until its next error): a connect, handshake, transport
 * or decoder error. The caller closes the client. A status=fail or
 * tempfail reply is not an error (0). */
#ifndef POSTHORN_AUTH_CLIENT_H
#define POSTHORN_AUTH_CLIENT_H

/* base */
#include "ipc.h"
#include "stream.h"

/* mail */
#include "auth_proto.h"

struct auth_client;

/* auth_client_open - connect to path (NULL: AUTH_SOCKET, relative to the
 * cwd, which is queue_directory in a daemon) and check the handshake */
struct auth_client *auth_client_open(const char *path, const char **error_r);

/* auth_client_stream - the connection (e.g. to set another timeout) */
struct stream *auth_client_stream(struct auth_client *ac);

/* auth_client_start - request=auth; the reply in *reply */
int auth_client_start(struct auth_client *ac, const struct auth_request *req,
		      struct auth_reply *reply, const char **error_r);

/* auth_client_continue - request=continue with a base64 response */
int auth_client_continue(struct auth_client *ac, const char *response,
			 struct auth_reply *reply, const char **error_r);

/* auth_client_redeem - request=redeem */
int auth_client_redeem(struct auth_client *ac, const char *token, const char *service,
		       struct auth_redeem_reply *reply, const char **error_r);

/* auth_client_close - close and free *acp, set it to NULL (NULL is fine) */
void auth_client_close(struct auth_client **acp);

#endif
