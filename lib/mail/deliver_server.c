/* deliver_server.c - the delivery agents' side of one deliver-protocol
 * connection: handshake, then requests until EOF, each dispatched to
 * the agent's deliver or verify callback (deliver_server.h). */

/* System library. */
#include <string.h>

/* Base library. */
#include "ipc.h"
#include "msg.h"
#include "stream.h"

/* Mail library. */
#include "config.h"
#include "deliver_proto.h"
#include "deliver_server.h"
#include "mail_proto.h"
#include "server.h"

/* deliver_server_run - handshake, then requests until EOF */
void deliver_server_run(struct stream *client, const struct deliver_server *server)
{
    struct ipc_list list;
    const char *err = "";
    bool more = true;

    stream_set_timeout(client, (int) var_ipc_timeout * 1000);
    if (ipc_handshake_server(client, DELIVER_PROTO, DELIVER_VERSION) < 0)
	return;
    ipc_list_init(&list);
    while (more) {
	if (server->wait)
	    server->wait(client);
	if (ipc_recv_list(client, &list, &err) < 0) {
	    if (stream_error(client) != STREAM_EOF && strcmp(err, "connection closed by peer") != 0)
		msg_warn("deliver protocol: %s", err);
	    break;
	}
	server_watchdog_reset();
	switch (deliver_request_kind(&list, &err)) {
	case DELIVER_KIND_DELIVER:
	    more = server->deliver(client, &list);
	    break;
	case DELIVER_KIND_VERIFY:
	    more = server->verify(client, &list);
	    break;
	default:
	    msg_warn("%s", err);
	    more = false;
	    break;
	}
    }
    ipc_list_fini(&list);
}
