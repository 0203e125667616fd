/* mail_proto.h - the internal mail protocols: names, versions, sockets
 * and attribute names, in one place (this comment is their reference;
 * docs/ipc.md explains the framing, the handshake and strict decoding).
 *
 * Every conversation uses lib/base/ipc.h framing and opens with the
 * server's handshake {proto, version}; decoding is strict.
 *
 * 1. cleanup (public/cleanup; clients: smtpd, pickup, bounce)
 *      client: IPC message {flags, origin}
 *      client: queue-file records (queue_file.h qf_put*): envelope
 *              (T optional, S, A*, [O] [N] R ...), M, content (L/C
 *              lines without terminators), X, optional trailer, E
 *      server: IPC message {status, queue_id, reason}
 *    status is a CLEANUP_STAT_* bit mask (0 = queued; see cleanup_stat.h
 *    for the one table that maps it to SMTP replies and exit codes). The
 *    reply comes only after the queue file AND its directory entry are on
 *    disk. One connection may carry several messages, one after another.
 *    A client that closes before E abandons the message (nothing queued).
 *
 * Both halves of conversations 2 and 3 live in lib/mail (encode and
 * strict decode of every request and reply): deliver_proto.h,
 * bounce_proto.h, and proto_attr.h for the envelope group they share and
 * the rules of every attribute (names in order, sizes, numbers, no NUL).
 * Every client checks the handshake with ipc_handshake_check (directly,
 * or through ipc_handshake_client).
 *
 *    envelope group (proto_attr.h), in this order: queue_id, queue_file,
 *    sender, arrival_time, dsn_envid, dsn_ret
 *
 * 2. deliver (private/<transport>: private/local, private/smtp; clients:
 *    qmgr, smtpd for verify) - deliver_proto.h
 *      server: handshake; then for each request:
 *      client: IPC list {request=deliver, <envelope group>, data_offset,
 *              data_size, nexthop, then per recipient, in order:
 *              rcpt_address, rcpt_orig, rcpt_orcpt, rcpt_notify,
 *              rcpt_offset}
 *      server: IPC list {then per recipient, in the same order:
 *              rcpt_offset, rcpt_status ("sent"|"defer"|"bounce"),
 *              rcpt_dsn ("2.0.0", "4.2.2", ...), rcpt_reason, relay;
 *              then dest_status ("ok"|"dead"), dest_reason ("" when
 *              ok), conn_use (deliveries on the agent's SMTP session,
 *              this one included; 0: no session), tls (the
 *              session's TLS for the log: "", "none" or
 *              "Verified:TLSv1.3:cipher")}
 *    queue_file is relative to queue_directory ("active/ID"); the agent
 *    opens and reads it itself, from data_offset (the M record). The
 *    agent never marks recipients done: qmgr owns the queue file state.
 *    One connection carries any number of requests until qmgr closes it.
 *    request "verify" (same socket):
 *      client: {request=verify, rcpt_address, size}
 *      server: {rcpt_status ("ok"|"unknown"|"over_quota"|"defer"),
 *              rcpt_dsn, rcpt_reason}
 *    lets smtpd ask local-delivery about a recipient at RCPT time.
 *    Version 2: the envelope group moved before data_offset and
 *    data_size (version 1 sent them in between). Version 3: the reply
 *    ends with dest_status, dest_reason and conn_use (qmgr's destination
 *    feedback, docs/qmgr-scheduling.md). Version 4: rcpt_status may also
 *    be "relayed" or "relayed_dsn" (delivered to another MTA; RFC 3461
 *    success notices). Version 5: the reply ends with tls.
 *
 * 3. bounce (private/bounce; client: qmgr) - bounce_proto.h
 *      client: IPC list {request ("failure"|"delay"|"success"),
 *              <envelope group>, then per recipient: rcpt_address,
 *              rcpt_orig, rcpt_orcpt, rcpt_dsn, rcpt_action ("failed"|
 *              "delayed"|"delivered"|"relayed"|"expanded"), rcpt_reason,
 *              relay}
 *      server: IPC message {status (0 or -1), queue_id (of the notice,
 *              "" if none was needed), reason}
 *    bounce writes the RFC 3464 notice through cleanup, null sender.
 *
 * 4. triggers (trigger.h): a few bytes written to public/qmgr or
 *    public/pickup, fifos by default (master.cf may make them unix
 *    sockets; master's wake-up "W" too). QMGR_TRIGGER_SCAN ("I") = look
 *    at incoming/ now; "I", a queue ID and a newline = take incoming/ID
 *    now without a directory scan (cleanup sends this after each commit);
 *    QMGR_TRIGGER_FLUSH ("F") = retry deferred mail now;
 *    QMGR_TRIGGER_GONE ("D", a queue ID and a newline) = the operator
 *    deleted active/ID (or moved it away): qmgr forgets the message if
 *    the file is really gone (it never deletes anything on this word);
 *    PICKUP_TRIGGER_SCAN ("W") = look at maildrop/ now. A lost trigger
 *    only delays: both daemons also scan on a timer.
 *
 * 5. auth (private/auth; clients: pop3d-login, pop3d, later imapd and
 *    smtpd) - auth_proto.h has the conversation in full
 *      client: {request=auth, service, mechanism, client_address,
 *              response} | {request=continue, response}
 *      server: {status=continue, challenge} | {status=ok, user, token}
 *              | {status=fail, reason} | {status=tempfail, reason}
 *      client: {request=redeem, token, service}
 *      server: {status=ok, user, mail_location, uid, gid, quota}
 *              | {status=fail, reason}
 *    auth is the only reader of the password table; a token is one-time,
 *    short-lived and bound to user and service.
 *
 * 6. login (private/pop3d, reached by pop3d-login through a hard link
 *    in its chroot; later private/imapd) - login_proto.h has it in full
 *      server: {proto=login, version}
 *      client: one byte "F" carrying the client's descriptor (SCM_RIGHTS)
 *      client: {token, client_address, client_port, input}
 *      server: {status=ok}
 *    the post-login daemon redeems the token with auth (5) and trusts
 *    the login process for nothing else.
 *
 * 7. client-limits (private/client-limits; clients: smtpd, smtp-front,
 *    pop3d-login, imapd-login, posthorn limits) - limits_proto.h
 *      client: {request, service, client_address}
 *      server: {status, count, conn_rate, message_rate, recipient_rate,
 *              tls_rate, auth_rate}
 *    counts per (service, client address); the clients decide.
 *
 * 8. pass (private/smtpd, a master.cf service of type pass; client:
 *    smtp-front) - pass_proto.h
 *      server: {proto=pass, version}
 *      client: one byte "F" carrying the client's socket (SCM_RIGHTS)
 *      client: {client_address, client_port, greeted, input}
 *      server: {status=ok} */
#ifndef POSTHORN_MAIL_PROTO_H
#define POSTHORN_MAIL_PROTO_H

/* Protocol names and versions (handshake). */
#define CLEANUP_PROTO		"cleanup"
#define CLEANUP_VERSION		1
#define DELIVER_PROTO		"deliver"
#define DELIVER_VERSION		5
#define BOUNCE_PROTO		"bounce"
#define BOUNCE_VERSION		1
#define AUTH_PROTO		"auth"
#define AUTH_VERSION		1
#define LOGIN_PROTO		"login"
#define LOGIN_VERSION		1

/* Socket paths, relative to queue_directory. */
#define CLEANUP_SOCKET		"public/cleanup"
#define QMGR_SOCKET		"public/qmgr"
#define PICKUP_SOCKET		"public/pickup"
#define SUBMIT_DIR		"submit"	/* reachable by every local user */
#define SUBMIT_SOCKET		"submit/submit"	/* submit(8): sendmail's socket */
#define BOUNCE_SOCKET		"private/bounce"
#define DELIVER_SOCKET_DIR	"private"	/* private/<transport> */
#define AUTH_SOCKET		"private/auth"

/* The state file of the cleanup processes' group commit of incoming/
 * (lib/base/group_sync.h); no queue ID starts with a dot, so every
 * directory scan passes it by. */
#define CLEANUP_GROUP_SYNC_FILE	"incoming/.group-sync"

/* Triggers. */
#define QMGR_TRIGGER_SCAN	"I"
#define QMGR_TRIGGER_FLUSH	"F"
#define QMGR_TRIGGER_GONE	"D"
#define PICKUP_TRIGGER_SCAN	"W"

/* cleanup request flags. */
#define CLEANUP_FLAG_LOCAL	(1 << 0)	/* local submission: add missing
						 * From:, qualify addresses with
						 * $myorigin */
#define CLEANUP_FLAG_UNTRUSTED	(1 << 1)	/* pickup: smaller record set */
#define CLEANUP_FLAG_BOUNCE	(1 << 2)	/* a notice from bounce */
#define CLEANUP_FLAG_EXTRACT	(1 << 3)	/* sendmail -t: recipients from
						 * To:/Cc:/Bcc:, Bcc: removed */
#define CLEANUP_FLAG_NO_ALIAS	(1 << 4)	/* skip virtual_alias_maps */
#define CLEANUP_FLAG_CLIENT_TRIGGER (1 << 5)	/* the client wakes qmgr itself
						 * once it has answered its own
						 * client (smtpd, after its 250):
						 * cleanup does not, unless the
						 * client is gone before the reply */

/* Attribute names. */
#define ATTR_PROTO		"proto"
#define ATTR_VERSION		"version"
#define ATTR_REQUEST		"request"
#define ATTR_FLAGS		"flags"
#define ATTR_ORIGIN		"origin"
#define ATTR_STATUS		"status"
#define ATTR_QUEUE_ID		"queue_id"
#define ATTR_QUEUE_FILE		"queue_file"
#define ATTR_REASON		"reason"
#define ATTR_DATA_OFFSET	"data_offset"
#define ATTR_DATA_SIZE		"data_size"
#define ATTR_SENDER		"sender"
#define ATTR_ARRIVAL_TIME	"arrival_time"
#define ATTR_DSN_ENVID		"dsn_envid"
#define ATTR_DSN_RET		"dsn_ret"
#define ATTR_NEXTHOP		"nexthop"
#define ATTR_SIZE		"size"
#define ATTR_RELAY		"relay"
#define ATTR_RCPT_ADDRESS	"rcpt_address"
#define ATTR_RCPT_ORIG		"rcpt_orig"
#define ATTR_RCPT_ORCPT		"rcpt_orcpt"
#define ATTR_RCPT_NOTIFY	"rcpt_notify"
#define ATTR_RCPT_OFFSET	"rcpt_offset"
#define ATTR_RCPT_STATUS	"rcpt_status"
#define ATTR_RCPT_DSN		"rcpt_dsn"
#define ATTR_RCPT_REASON	"rcpt_reason"
#define ATTR_RCPT_ACTION	"rcpt_action"
#define ATTR_DEST_STATUS	"dest_status"	/* deliver reply: DEST_STAT_* */
#define ATTR_DEST_REASON	"dest_reason"	/* why the next hop is dead */
#define ATTR_CONN_USE		"conn_use"	/* deliveries on this session (1: new) */
#define ATTR_TLS		"tls"		/* the session's TLS, for the log */
#define ATTR_SERVICE		"service"	/* auth: smtp, pop3, imap */
#define ATTR_MECHANISM		"mechanism"	/* auth: SASL mechanism */
#define ATTR_CLIENT_ADDRESS	"client_address"	/* auth: network client */
#define ATTR_RESPONSE		"response"	/* auth: base64 client data */
#define ATTR_CHALLENGE		"challenge"	/* auth: base64 server data */
#define ATTR_USER		"user"		/* auth: authenticated address */
#define ATTR_TOKEN		"token"		/* auth: one-time login token */
#define ATTR_MAIL_LOCATION	"mail_location"	/* auth redeem: Maildir path */
#define ATTR_UID		"uid"
#define ATTR_GID		"gid"
#define ATTR_QUOTA		"quota"		/* bytes, 0: none */

/* deliver request names and per-recipient results. */
#define DELIVER_REQ_DELIVER	"deliver"
#define DELIVER_REQ_VERIFY	"verify"
#define RCPT_STAT_SENT		"sent"		/* delivered (mailbox, file, ...) */
#define RCPT_STAT_RELAYED	"relayed"	/* to an MTA without DSN: a success
						 * notice here says "relayed" */
#define RCPT_STAT_RELAYED_DSN	"relayed_dsn"	/* to an MTA that took NOTIFY: it
						 * sends success notices, not we */
#define RCPT_STAT_DEFER		"defer"
#define RCPT_STAT_BOUNCE	"bounce"
#define RCPT_STAT_OK		"ok"
#define RCPT_STAT_UNKNOWN	"unknown"
#define RCPT_STAT_OVER_QUOTA	"over_quota"
#define DEST_STAT_OK		"ok"		/* the next hop answered */
#define DEST_STAT_DEAD		"dead"		/* no address of it could be reached */

/* bounce request names. */
#define BOUNCE_REQ_FAILURE	"failure"
#define BOUNCE_REQ_DELAY	"delay"
#define BOUNCE_REQ_SUCCESS	"success"

/* Well-known queue-file attribute names ('A' records). */
#define QATTR_CLIENT_NAME	"client_name"
#define QATTR_CLIENT_ADDRESS	"client_address"
#define QATTR_HELO		"helo"
#define QATTR_PROTOCOL		"protocol"
#define QATTR_SASL_USERNAME	"sasl_username"
#define QATTR_DSN_ENVID		"dsn_envid"
#define QATTR_DSN_RET		"dsn_ret"
#define QATTR_ORIGIN		"origin"
#define QATTR_SUBMIT_UID	"submit_uid"
#define QATTR_SIZE		"size"
#define QATTR_BODY		"body"
#define QATTR_SMTPUTF8		"smtputf8"
#define QATTR_RCPT_ORIG		"rcpt_orig"	/* before alias expansion,
						 * for the next R */

#endif
