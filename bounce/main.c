/* main.c - bounce(8): writes delivery status notifications for qmgr.
 * The work is in bounce_service.c; this file wires up the skeleton and
 * the parameters. */

/* mail */
#include "config.h"
#include "server.h"

#include "bounce.h"

/* bounce_post_init - take the parameters, after the privilege drop */
static void bounce_post_init(int argc, char **argv)
{
    (void) argc;
    (void) argv;
    bounce_cfg.myhostname = var_myhostname;
    bounce_cfg.myorigin = var_myorigin;
    bounce_cfg.size_limit = var_bounce_size_limit;
    bounce_cfg.header_limit = var_header_size_limit;
    bounce_cfg.queue_lifetime = var_maximal_queue_lifetime;
    bounce_cfg.notice_recipient = var_bounce_notice_recipient;
    bounce_cfg.double_recipient = var_double_bounce_notice_recipient;
    bounce_cfg.delay_recipient = var_delay_notice_recipient;
    bounce_notify_classes(var_notify_classes);
}

/* main - run the daemon */
int main(int argc, char **argv)
{
    static const struct server_spec spec = {
	.kind = SERVER_SINGLE,
	.name = "bounce",
	.post_init = bounce_post_init,
	.single_service = bounce_service,
    };

    return server_main(argc, argv, &spec);
}
