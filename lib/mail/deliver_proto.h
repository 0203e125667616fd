/* deliver_proto.h - both halves of the deliver protocol (mail_proto.h,
 * conversation 2): qmgr (client) -> private/<transport> (delivery agent).
 *
 * One request names a queue file and some of its recipients; the agent
 * answers with one result per recipient, in the same order:
 *
 *   client: {request=deliver, <envelope group: queue_id, queue_file,
 *            sender, arrival_time, dsn_envid, dsn_ret>, data_offset,
 *            data_size, nexthop, (rcpt_address, rcpt_orig, rcpt_orcpt,
 *            rcpt_notify, rcpt_offset) per recipient, at least one}
 *   server: {(rcpt_offset, rcpt_status, rcpt_dsn, rcpt_reason, relay)
 *            per recipient, dest_status, dest_reason, conn_use, tls}
 *
 * The envelope group and the rules every attribute follows are in
 * proto_attr.h. data_offset is the offset of the M record; data_size the
 * message size in bytes; rcpt_offset the offset of the recipient's R
 * record (its identity in the reply); rcpt_address is not empty;
 * addresses are at most PROTO_ADDR_MAX bytes, other texts PROTO_TEXT_MAX.
 * rcpt_status is sent, relayed or relayed_dsn (all delivered: to a
 * mailbox, to an MTA without DSN, to an MTA that took the DSN request and
 * reports success itself; RFC 3461 section 6.2), defer or bounce, and
 * rcpt_dsn an RFC 3463 code of the matching class (2, 4 or 5).
 *
 * The three attributes after the results (version 3) are the agent's
 * word about the next hop, qmgr's destination feedback
 * (docs/qmgr-scheduling.md): dest_status "ok" (the next hop answered:
 * an SMTP greeting was read, or local delivery) with dest_reason "", or
 * "dead" (no address of the next hop could be reached) with a non-empty
 * dest_reason, and then every result is a defer; conn_use is the number
 * of deliveries the agent's SMTP session has carried, this one included
 * (1: a new session; 0: no session); tls (version 5) is the agent's
 * word about that session's TLS for the delivery log line: "" (no SMTP
 * session, or not known), "none" (cleartext) or
 * "Trust:protocol:cipher" ("Verified:TLSv1.3:TLS_AES_256_GCM_SHA384";
 * Trust is Verified, Trusted, Untrusted or Anonymous). The request decoder does not judge
 * queue_file: the agent calls proto_queue_file_ok and defers the
 * recipients when it fails.
 *
 * The verify request (smtpd's RCPT-time question, same socket):
 *   client: {request=verify, rcpt_address, size}
 *   server: {rcpt_status (ok|unknown|over_quota|defer), rcpt_dsn,
 *            rcpt_reason}
 *
 * deliver_request_kind tells a server which request a message is. The
 * decoders point into the list they read (keep it while you use the
 * result). The blocking client calls are in deliver_client.h.
 *
 * DIAGNOSTICS: decoders return -1 with *error_r (static text, see
 * proto_attr.h), e.g. "deliver reply: result 1 is for offset \"160\",
 * expected 120". The caller ends the conversation. */
#ifndef POSTHORN_DELIVER_PROTO_H
#define POSTHORN_DELIVER_PROTO_H

#include <stdbool.h>
#include <stddef.h>

/* base */
#include "ipc.h"
#include "str.h"

/* mail */
#include "proto_attr.h"

struct deliver_rcpt {
    const char *address;	/* rcpt_address */
    const char *orig;		/* rcpt_orig ("" if none) */
    const char *orcpt;		/* rcpt_orcpt ("" if none) */
    const char *notify;		/* rcpt_notify ("" if none) */
    long offset;		/* rcpt_offset */
};

struct deliver_request {
    struct proto_envelope env;
    long data_offset;
    long data_size;
    const char *nexthop;
    struct deliver_rcpt *rcpts;	/* decode: allocated (deliver_request_free) */
    size_t rcpt_count;
};

struct deliver_result {
    long offset;		/* rcpt_offset of the request's recipient */
    const char *status;		/* RCPT_STAT_SENT, _RELAYED, _RELAYED_DSN,
				 * _DEFER, _BOUNCE */
    const char *dsn;		/* "2.0.0" */
    const char *reason;
    const char *relay;
};

/* the agent's word about the next hop, after the results */
struct deliver_reply_status {
    const char *dest_status;	/* DEST_STAT_OK, DEST_STAT_DEAD */
    const char *dest_reason;	/* "" when ok; why it is dead */
    long conn_use;		/* deliveries on this SMTP session; 0: none */
    const char *tls;		/* the session's TLS ("" or NULL: none known) */
};

struct deliver_verify {
    const char *address;
    long size;
};

struct deliver_verify_reply {
    const char *status;		/* RCPT_STAT_OK, _UNKNOWN, _OVER_QUOTA, _DEFER */
    const char *dsn;
    const char *reason;
};

enum deliver_kind { DELIVER_KIND_DELIVER, DELIVER_KIND_VERIFY };

/* deliver_request_kind - which request list is: -1 with *error_r when it
 * does not start with request=deliver or request=verify */
int deliver_request_kind(const struct ipc_list *list, const char **error_r);

/* deliver_request_encode - the whole request message into out (reset) */
void deliver_request_encode(struct str *out, const struct deliver_request *req);
/* deliver_request_decode - check and decode; free with
 * deliver_request_free (also after a failure) */
int deliver_request_decode(const struct ipc_list *list, struct deliver_request *req,
			   const char **error_r);
void deliver_request_free(struct deliver_request *req);

/* deliver_reply_encode - results[0..count) and status into out (reset) */
void deliver_reply_encode(struct str *out, const struct deliver_result *results, size_t count,
			  const struct deliver_reply_status *status);
/* deliver_reply_decode - check a reply against req: one result per
 * recipient, in order, then the status; fills results[0..req->rcpt_count)
 * and *status */
int deliver_reply_decode(const struct ipc_list *reply, const struct deliver_request *req,
			 struct deliver_result *results, struct deliver_reply_status *status,
			 const char **error_r);

/* deliver_verify_encode, deliver_verify_decode - the verify request */
void deliver_verify_encode(struct str *out, const struct deliver_verify *req);
int deliver_verify_decode(const struct ipc_list *list, struct deliver_verify *req,
			  const char **error_r);
/* deliver_verify_reply_encode, deliver_verify_reply_decode - its answer */
void deliver_verify_reply_encode(struct str *out, const struct deliver_verify_reply *reply);
int deliver_verify_reply_decode(const struct ipc_list *list, struct deliver_verify_reply *reply,
				const char **error_r);

/* deliver_status_class - '2' for sent, relayed and relayed_dsn, '4' for
 * defer, '5' for bounce, 0 for anything else */
char deliver_status_class(const char *status);

/* deliver_dsn_valid - "C.SSS.DDD" with class 2, 4 or 5 */
bool deliver_dsn_valid(const char *dsn);

#endif
