/* deliver_client.h - blocking client calls of the deliver protocol
 * (deliver_proto.h has the protocol and its codec) on a struct stream,
 * after the caller's ipc_handshake_client: for tests, and for smtpd's
 * RCPT-time verify. qmgr drives its connections from its event loop
 * with the codec itself.
 *
 * DIAGNOSTICS: -1 and an error text (a transport error, or a decoder's
 * text from deliver_proto.h). The caller ends the conversation. */
#ifndef POSTHORN_DELIVER_CLIENT_H
#define POSTHORN_DELIVER_CLIENT_H

/* base */
#include "ipc.h"
#include "str.h"
#include "stream.h"

/* mail */
#include "deliver_proto.h"

/* deliver_client_call - send req on s and read the reply into the
 * caller's list; results[0..req->rcpt_count) and *status point into it */
int deliver_client_call(struct stream *s, const struct deliver_request *req,
			struct ipc_list *reply, struct deliver_result *results,
			struct deliver_reply_status *status, const char **error_r);

/* deliver_verify - RCPT-time check: {request=verify, rcpt_address,
 * size} -> status ("ok", "unknown", "over_quota", "defer"), dsn and
 * reason (dsn and reason may be NULL) */
int deliver_verify(struct stream *s, const char *address, long size, struct str *status,
		   struct str *dsn, struct str *reason, const char **error_r);

#endif
