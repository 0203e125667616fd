/* deliver_client.h - the client side of the deliver protocol
 * (mail_proto.h, conversation 2): qmgr -> private/<transport>.
 *
 * One request names a queue file and some of its recipients; the agent
 * answers with one result per recipient, in the same order:
 *
 *   client: {request=deliver, queue_id, queue_file, data_offset,
 *            data_size, sender, arrival_time, dsn_envid, dsn_ret,
 *            nexthop, (rcpt_address, rcpt_orig, rcpt_orcpt,
 *            rcpt_notify, rcpt_offset) per recipient}
 *   server: {(rcpt_offset, rcpt_status, rcpt_dsn, rcpt_reason, relay)
 *            per recipient}
 *
 * Values: queue_file is relative to queue_directory ("active/ID");
 * data_offset is the offset of the M record; data_size is the message
 * size in bytes (content lines with LF terminators); arrival_time is
 * whole seconds since the epoch; rcpt_offset is the offset of the
 * recipient's R record (its identity in the reply). rcpt_status is
 * sent, defer or bounce, and rcpt_dsn must be an RFC 3463 code of the
 * matching class (2, 4 or 5).
 *
 * The codec is separate from the transport so that qmgr can drive many
 * connections from its event loop (deliver_request_encode,
 * deliver_reply_parse on a decoded ipc_list); deliver_client_call and
 * deliver_verify are the blocking forms on a struct stream (tests,
 * smtpd's RCPT-time verify).
 *
 * Diagnostics: -1 and an error text (static buffer, valid until the
 * next call into this module) for any protocol error: wrong attribute
 * names or order, a result for another recipient, a bad status or DSN.
 * A caller treats that as a failed delivery attempt (defer). */
#ifndef POSTHORN_DELIVER_CLIENT_H
#define POSTHORN_DELIVER_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "ipc.h"
#include "str.h"
#include "stream.h"

struct deliver_rcpt {
    const char *address;	/* rcpt_address */
    const char *orig;		/* rcpt_orig ("" if none) */
    const char *orcpt;		/* rcpt_orcpt ("" if none) */
    const char *notify;		/* rcpt_notify ("" if none) */
    long offset;		/* rcpt_offset */
};

struct deliver_request {
    const char *queue_id;
    const char *queue_file;
    long data_offset;
    long data_size;
    const char *sender;
    long arrival_time;
    const char *dsn_envid;
    const char *dsn_ret;
    const char *nexthop;
    const struct deliver_rcpt *rcpts;
    size_t rcpt_count;
};

#define DELIVER_DSN_SIZE	16
#define DELIVER_STATUS_SIZE	8

struct deliver_result {
    long offset;
    char status[DELIVER_STATUS_SIZE];	/* "sent", "defer", "bounce" */
    char dsn[DELIVER_DSN_SIZE];		/* "2.0.0" */
    char *reason;			/* allocated */
    char *relay;			/* allocated */
};

/* deliver_request_encode - the whole request message into out (reset) */
void deliver_request_encode(struct str *out, const struct deliver_request *req);
/* deliver_reply_parse - check a decoded reply against req; fills
 * results[0..req->rcpt_count) (free with deliver_results_free) */
int deliver_reply_parse(const struct ipc_list *reply, const struct deliver_request *req,
			struct deliver_result *results, const char **error_r);
/* deliver_results_free - free what deliver_reply_parse allocated */
void deliver_results_free(struct deliver_result *results, size_t count);
/* deliver_dsn_valid - "C.SSS.DDD" with class 2, 4 or 5 */
bool deliver_dsn_valid(const char *dsn);

/* deliver_client_call - blocking: send req on s (after the caller's
 * ipc_handshake_client) and read the reply */
int deliver_client_call(struct stream *s, const struct deliver_request *req,
			struct deliver_result *results, const char **error_r);

/* deliver_verify - blocking RCPT-time check: {request=verify,
 * rcpt_address, size} -> status ("ok", "unknown", "over_quota",
 * "defer"), dsn and reason (may be NULL) */
int deliver_verify(struct stream *s, const char *address, long size, struct str *status,
		   struct str *dsn, struct str *reason, const char **error_r);

#endif
