/* ph-failstart - a test daemon that always fails in pre_init.
 *
 * It exits 1 (msg_fatal) before serving anyone, so master must throttle
 * the service instead of respawning it in a loop. */

#include <stddef.h>

/* base */
#include "msg.h"
#include "stream.h"

/* mail */
#include "server.h"

/* failstart_pre_init - fail on purpose */
static void failstart_pre_init(int argc, char **argv)
{
    (void) argc;
    (void) argv;
    msg_fatal("ph-failstart: failing in pre_init on purpose");
}

/* failstart_service - never reached */
static void failstart_service(struct stream *client)
{
    (void) client;
    msg_panic("ph-failstart: serving a client");
}

int main(int argc, char **argv)
{
    static const struct server_spec spec = {
	.kind = SERVER_SINGLE,
	.name = "ph-failstart",
	.pre_init = failstart_pre_init,
	.single_service = failstart_service,
    };

    return server_main(argc, argv, &spec);
}
