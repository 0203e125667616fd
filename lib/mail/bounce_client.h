/* bounce_client.h - the client side of the bounce protocol (mail_proto.h,
 * conversation 3): qmgr -> private/bounce.
 *
 *   client: {request (failure|delay|success), queue_id, queue_file,
 *            sender, arrival_time, dsn_envid, dsn_ret,
 *            (rcpt_address, rcpt_orig, rcpt_orcpt, rcpt_dsn,
 *             rcpt_action, rcpt_reason, relay) per recipient}
 *   server: {status (0 or -1), queue_id (of the notice, "" if none was
 *            needed), reason}
 *
 * bounce reads the original message from queue_file (relative to the
 * queue directory) to quote it, and writes the notice through cleanup
 * before it answers status=0. qmgr marks the recipients done only after
 * that answer. arrival_time is whole seconds since the epoch.
 *
 * bounce_request_encode and bounce_reply_parse are the codec (qmgr runs
 * the conversation from its event loop); bounce_client_call is the
 * blocking form on a stream (tests, tools).
 *
 * Diagnostics: -1 and an error text (a static buffer, valid until the
 * next call into this module) on a protocol
 * error; a reply with status -1 is not a protocol error (the caller
 * sees *status_r and the reason). */
#ifndef POSTHORN_BOUNCE_CLIENT_H
#define POSTHORN_BOUNCE_CLIENT_H

#include <stddef.h>

#include "ipc.h"
#include "str.h"
#include "stream.h"

struct bounce_rcpt {
    const char *address;
    const char *orig;
    const char *orcpt;
    const char *dsn;		/* "5.1.1" */
    const char *action;		/* "failed", "delayed", "delivered", ... */
    const char *reason;
    const char *relay;
};

struct bounce_request {
    const char *request;	/* BOUNCE_REQ_FAILURE, _DELAY, _SUCCESS */
    const char *queue_id;
    const char *queue_file;
    const char *sender;
    long arrival_time;
    const char *dsn_envid;
    const char *dsn_ret;
    const struct bounce_rcpt *rcpts;
    size_t rcpt_count;
};

/* bounce_request_encode - the whole request message into out (reset) */
void bounce_request_encode(struct str *out, const struct bounce_request *req);
/* bounce_reply_parse - {status, queue_id, reason} from a decoded reply;
 * notice_id and reason may be NULL */
int bounce_reply_parse(const struct ipc_list *reply, long *status_r, struct str *notice_id,
		       struct str *reason, const char **error_r);
/* bounce_client_call - blocking request and reply (after the caller's
 * ipc_handshake_client) */
int bounce_client_call(struct stream *s, const struct bounce_request *req, long *status_r,
		       struct str *notice_id, struct str *reason, const char **error_r);

#endif
