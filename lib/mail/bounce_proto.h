/* bounce_proto.h - both halves of the bounce protocol (mail_proto.h,
 * conversation 3): qmgr (client) -> private/bounce.
 *
 *   client: {request (failure|delay|success), <envelope group: queue_id,
 *            queue_file, sender, arrival_time, dsn_envid, dsn_ret>,
 *            (rcpt_address, rcpt_orig, rcpt_orcpt, rcpt_dsn,
 *             rcpt_action, rcpt_reason, relay) per recipient, at least one}
 *   server: {status (0 or -1), queue_id (of the notice, "" if none was
 *            needed), reason}
 *
 * The envelope group and the rules every attribute follows are in
 * proto_attr.h. On top of them the request decoder requires queue_file
 * to pass proto_queue_file_ok, a non-empty rcpt_address and an RFC 3464
 * rcpt_action (failed, delayed, delivered, relayed, expanded); addresses
 * are at most PROTO_ADDR_MAX bytes, other texts PROTO_TEXT_MAX. The reply
 * decoder requires status 0 or -1 and a queue_id that is "" or valid.
 *
 * bounce reads the original message from queue_file to quote it, and
 * writes the notice through cleanup before it answers status=0. qmgr
 * marks the recipients done only after that answer. The blocking client
 * call is in bounce_client.h.
 *
 * DIAGNOSTICS: decoders return -1 with *error_r (static text, see
 * proto_attr.h), e.g. "bounce request: bad rcpt_action \"bounced\"". A
 * reply with status -1 is not a protocol error. */
#ifndef POSTHORN_BOUNCE_PROTO_H
#define POSTHORN_BOUNCE_PROTO_H

#include <stdbool.h>
#include <stddef.h>

/* base */
#include "ipc.h"
#include "str.h"

/* mail */
#include "proto_attr.h"

enum bounce_type { BOUNCE_TYPE_FAILURE, BOUNCE_TYPE_DELAY, BOUNCE_TYPE_SUCCESS };

struct bounce_rcpt {
    const char *address;
    const char *orig;		/* before alias expansion, or "" */
    const char *orcpt;		/* DSN ORCPT "type;address", or "" */
    const char *dsn;		/* "5.1.1" */
    const char *action;		/* failed, delayed, delivered, relayed, expanded */
    const char *reason;
    const char *relay;
};

struct bounce_request {
    enum bounce_type type;
    struct proto_envelope env;
    struct bounce_rcpt *rcpts;	/* decode: allocated (bounce_request_free) */
    size_t rcpt_count;
};

struct bounce_reply {
    long status;		/* 0: done; -1: failed, see reason */
    const char *queue_id;	/* the notice's, "" if none */
    const char *reason;
};

/* bounce_type_name - "failure", "delay", "success" */
const char *bounce_type_name(enum bounce_type type);
/* bounce_type_parse - the type of a request name; false if none */
bool bounce_type_parse(const char *name, enum bounce_type *type);
/* bounce_action_valid - one of RFC 3464's five actions */
bool bounce_action_valid(const char *action);

/* bounce_request_encode - the whole request message into out (reset) */
void bounce_request_encode(struct str *out, const struct bounce_request *req);
/* bounce_request_decode - check and decode; the strings point into list;
 * free with bounce_request_free (also after a failure) */
int bounce_request_decode(const struct ipc_list *list, struct bounce_request *req,
			  const char **error_r);
void bounce_request_free(struct bounce_request *req);

/* bounce_reply_encode - the reply message into out (reset) */
void bounce_reply_encode(struct str *out, const struct bounce_reply *reply);
/* bounce_reply_decode - exactly {status, queue_id, reason}, in order */
int bounce_reply_decode(const struct ipc_list *list, struct bounce_reply *reply,
			const char **error_r);

#endif
