/* main.c - pop3d: the post-login half of the POP3 server.
 *
 * One MULTI process, root (master.cf "pop3d unix - n n"), on
 * session_host.h: pop3d-login hands it an authenticated client and
 * auth's one-time token (login_proto.h); it learns who the user is only
 * by redeeming the token with auth (a forged, replayed or expired token
 * gets "-ERR [AUTH]" and nothing else) and passes the session to a
 * worker process of the mailbox's uid/gid (forked once, dropped for
 * good: real and effective ids, no supplementary groups), which serves
 * many sessions of that uid on one event loop (pop3d_session.c). */

/* mail */
#include "auth_proto.h"
#include "session_host.h"

/* pop3d */
#include "pop3d.h"

int main(int argc, char **argv)
{
    static const struct session_host_spec spec = {
	.name = "pop3d",
	.auth_service = AUTH_SERVICE_POP3,
	.reply_auth_failed = "-ERR [AUTH] Authentication failed\r\n",
	.reply_temp_failure = "-ERR [SYS/TEMP] Mail service unavailable, try again later\r\n",
	.reply_perm_failure = "-ERR [SYS/PERM] Mailbox not available\r\n",
	.session_start = pop3d_session_start,
	.worker_retire = pop3d_session_retire,
    };

    return session_host_main(argc, argv, &spec);
}
