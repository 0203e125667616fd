/* main.c - imapd: the post-login half of the IMAP server.
 *
 * The dispatcher and per-uid worker framework of session_host.h does
 * the process work: imapd (root, MULTI) takes hand-overs from
 * imapd-login, redeems the token with auth and passes each session to a
 * long-lived worker running as the mailbox owner, which serves many
 * sessions of that uid on one event loop (imapd_session.c). */

/* base */
#include "msg.h"

/* mail */
#include "auth_proto.h"
#include "session_host.h"

/* imapd */
#include "imapd.h"

static const struct session_host_spec spec = {
    .name = "imapd",
    .auth_service = AUTH_SERVICE_IMAP,
    .reply_auth_failed = "* BYE [AUTHENTICATIONFAILED] Authentication failed\r\n",
    .reply_temp_failure = "* BYE [UNAVAILABLE] Temporary failure, try again later\r\n",
    .worker_init = NULL,
    .session_start = imapd_session_start,
    .worker_retire = imapd_worker_retire,
};

int main(int argc, char **argv)
{
    return session_host_main(argc, argv, &spec);
}
