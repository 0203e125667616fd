/* main.c - qmgr, the queue manager: moves mail from incoming/ into
 * active/, routes each recipient, runs deliveries through the delivery
 * agents with per-transport and per-destination limits, records each
 * recipient's result in place, defers with exponential backoff, expires
 * old mail and asks bounce for notices. See man/qmgr.8 and
 * docs/queue.md. */

/* mail */
#include "server.h"

/* qmgr */
#include "qmgr.h"

int main(int argc, char **argv)
{
    static const struct server_spec spec = {
	.kind = SERVER_TRIGGER,
	.trigger_notify_once = true,	/* one qmgr: master decides nothing per trigger */
	.name = "qmgr",
	.flags = SERVER_FLAG_NO_IDLE_EXIT | SERVER_FLAG_NO_MAX_USE,
	.pre_init = qmgr_pre_init,
	.post_init = qmgr_post_init,
	.trigger = qmgr_trigger,
	.drain = qmgr_drain,
	.on_exit = qmgr_remove_finish,
	.on_terminate = qmgr_remove_terminate,
    };

    return server_main(argc, argv, &spec);
}
