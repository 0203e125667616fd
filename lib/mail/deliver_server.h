/* deliver_server.h - the server half of the deliver protocol's
 * conversation, shared by the delivery agents (smtp-client,
 * local-delivery).
 *
 * deliver_server_run() serves one client connection: the handshake
 * (DELIVER_PROTO, DELIVER_VERSION), then requests until the client
 * closes it. Each request is read as a list and handed, by its kind, to
 * the agent's deliver or verify callback, which decodes it and writes
 * the reply; a callback returns false to end the connection (it could
 * not answer). The daemon_timeout watchdog is reset per request. A
 * request of no known kind and a protocol error (anything but a plain
 * EOF) are warned about and end the connection. Every read and write is
 * bounded by ipc_timeout.
 *
 * wait, when set, is called before each wait for the next request: the
 * agent may block there until the client's socket is readable (so
 * smtp-client keeps its cached SMTP session alive between requests). */
#ifndef POSTHORN_DELIVER_SERVER_H
#define POSTHORN_DELIVER_SERVER_H

#include <stdbool.h>

/* Base library. */
#include "ipc.h"
#include "stream.h"

struct deliver_server {
    bool (*deliver)(struct stream *client, const struct ipc_list *request);
    bool (*verify)(struct stream *client, const struct ipc_list *request);
    void (*wait)(struct stream *client);	/* optional */
};

/* deliver_server_run - serve one client connection until it ends */
void deliver_server_run(struct stream *client, const struct deliver_server *server);

#endif
