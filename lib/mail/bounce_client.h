/* bounce_client.h - the blocking client call of the bounce protocol
 * (bounce_proto.h has the protocol and its codec) on a struct stream,
 * after the caller's ipc_handshake_client: for tests and tools. qmgr
 * drives its connections from its event loop with the codec itself.
 *
 * DIAGNOSTICS: -1 and an error text (a transport error, or a decoder's
 * text from bounce_proto.h; valid until the next call into this module
 * or bounce_proto); a reply with status -1 is not an error. */
#ifndef POSTHORN_BOUNCE_CLIENT_H
#define POSTHORN_BOUNCE_CLIENT_H

/* base */
#include "ipc.h"
#include "stream.h"

/* mail */
#include "bounce_proto.h"

/* bounce_client_call - send req on s and read the reply into the
 * caller's list; *rep points into it */
int bounce_client_call(struct stream *s, const struct bounce_request *req,
		       struct ipc_list *reply, struct bounce_reply *rep, const char **error_r);

#endif
