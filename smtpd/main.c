/* smtpd - the SMTP server (RFC 5321), one session per process at a time
 * on the server skeleton (SERVER_SINGLE; -S serves one session on
 * stdin/stdout for scripted tests). See man/smtpd.8 and docs/smtpd.md. */

#include <stdlib.h>

/* base */
#include "msg.h"
#include "stream.h"

/* mail */
#include "config.h"
#include "limits_client.h"
#include "resolve.h"
#include "server.h"

/* smtpd */
#include "smtpd.h"

/* smtpd_pre_init - open tables and check parameters while privileged */
static void smtpd_pre_init(int argc, char **argv)
{
    struct smtpd_reply_buf r;
    const char *err;

    (void) argc;
    (void) argv;
    if (resolve_init(&err) < 0)
	msg_fatal("address tables: %s", err);
    smtpd_check_init();
    smtpd_check_init_restrictions();
    smtpd_limits_init();
    smtpd_tls_init();			/* the plugin and the keys, still privileged */
    if (!smtpd_parse_vrfy_reply(var_smtpd_vrfy_reply, &r, &err))
	msg_fatal("smtpd_vrfy_reply: %s", err);
    if (var_line_length_limit < 80)
	msg_fatal("line_length_limit: must be at least 80");
}

/* smtpd_idle - a second without a session: let go of the connections
 * kept for a quick successor (cleanup, client-limits), so an idle
 * process holds no other process's resources */
static void smtpd_idle(void)
{
    smtpd_message_idle();
    limits_client_close();
}

/* smtpd_on_exit - release tables */
static void smtpd_on_exit(void)
{
    resolve_fini();
}

int main(int argc, char **argv)
{
    static const struct server_spec spec = {
	.kind = SERVER_SINGLE,
	.name = "smtpd",
	.pre_init = smtpd_pre_init,
	.on_exit = smtpd_on_exit,
	.single_service = smtpd_session,
	.single_idle = smtpd_idle,
    };

    return server_main(argc, argv, &spec);
}
