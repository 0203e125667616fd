/* limits_proto.h - the client-limits protocol (mail_proto.h, 7): what the
 * client-limits service (the role of Postfix's anvil) and its clients
 * (smtpd, smtp-front, pop3d-login, imapd-login, `posthorn limits`) say.
 *
 * client-limits COUNTS; it never decides. Each client compares the
 * figures it gets back with its own limit parameters (so master.cf -o
 * can give each service its own limits) and exempts its own exception
 * list (smtpd_client_event_limit_exceptions, ...), but reports events of
 * exempt clients too, so the operator's figures are complete.
 *
 * Keys: a counter belongs to (service, client_address). service is the
 * master.cf service name of the client process (server_service_name():
 * "smtp", "submission", "pop3", ...), client_address the printable
 * address ("192.0.2.1", "2001:db8::1"; IPv4-mapped IPv6 written as IPv4).
 *
 * Conversation, on private/client-limits (LIMITS_SOCKET; from a chroot,
 * the same relative path), any number of requests per connection, one
 * reply per request in order (a client may pipeline):
 *   server: {proto=limits, version=LIMITS_VERSION}
 *   client: {request, service, client_address}
 *   server: {status, count, conn_rate, message_rate, recipient_rate,
 *            tls_rate, auth_rate}          (status=ok)
 *         | {status=error, reason}         (bad request: the connection
 *                                           is closed after the reply)
 *
 * request:
 *   connect     one more concurrent connection of the client (count + 1)
 *               and one more connection in this time unit (conn_rate + 1)
 *   disconnect  that connection ended (count - 1; never below 0)
 *   message     a MAIL FROM (message_rate + 1)
 *   recipient   a RCPT TO (recipient_rate + 1)
 *   newtls      a new TLS session: a full handshake, not a resumption
 *               (tls_rate + 1)
 *   authfail    a failed authentication (auth_rate + 1)
 *   lookup      nothing counted: the current figures
 * Every reply carries all six figures of (service, client_address) AFTER
 * the request was counted, as decimal numbers.
 *
 * Connection binding: a connect is bound to the connection it came on.
 * When that connection closes (the client process ended or crashed),
 * every connect it made and did not disconnect is released, so counts
 * never leak. A disconnect takes back a connect made on the same
 * connection only: one that has none outstanding there changes nothing
 * (its connect went with an earlier connection, already released).
 *
 * Rates count events in the current window of client_limits_rate_time_unit
 * seconds, which starts at a client's first event after the previous
 * window ended (Postfix's anvil_rate_time_unit semantics).
 *
 * Bounded memory: an entry with count 0 whose window has ended is
 * dropped (client_limits_status_update_time also logs the largest
 * figures seen, as anvil does). At most client_limits_max_entries
 * entries exist; when a new key would exceed it, entries with count 0
 * are dropped oldest first; if none can go, the request is answered
 * with figures for the key as if new (all 1 or 0) and not stored, and a
 * warning is logged (at most once a minute): a flood of addresses can
 * neither exhaust the service nor lock out other clients.
 *
 * Operator listing: request=list {request=list, max} answers
 *   {status=ok, entries=N, then per entry in order of descending count,
 *    then conn_rate: service, client_address, count, conn_rate,
 *    message_rate, recipient_rate, tls_rate, auth_rate}
 * with at most max (<= LIMITS_LIST_MAX) entries.
 *
 * Clients fail open: when client-limits cannot be reached or answers an
 * error, the client logs a warning (limits_client.h rate-limits it) and
 * lets the connection go on, as Postfix's smtpd does when anvil is down.
 * Over a limit a client answers its protocol's "try later" and logs one
 * line naming the limit, e.g.
 *   warning: Connection count limit exceeded: 51 from [192.0.2.1] for
 *   service smtp (smtpd_client_connection_count_limit = 50) */
#ifndef POSTHORN_LIMITS_PROTO_H
#define POSTHORN_LIMITS_PROTO_H

#define LIMITS_PROTO		"limits"
#define LIMITS_VERSION		1
#define LIMITS_SOCKET		"private/client-limits"

#define LIMITS_REQ_CONNECT	"connect"
#define LIMITS_REQ_DISCONNECT	"disconnect"
#define LIMITS_REQ_MESSAGE	"message"
#define LIMITS_REQ_RECIPIENT	"recipient"
#define LIMITS_REQ_NEWTLS	"newtls"
#define LIMITS_REQ_AUTHFAIL	"authfail"
#define LIMITS_REQ_LOOKUP	"lookup"
#define LIMITS_REQ_LIST		"list"

#define LIMITS_ATTR_COUNT	"count"
#define LIMITS_ATTR_CONN_RATE	"conn_rate"
#define LIMITS_ATTR_MSG_RATE	"message_rate"
#define LIMITS_ATTR_RCPT_RATE	"recipient_rate"
#define LIMITS_ATTR_TLS_RATE	"tls_rate"
#define LIMITS_ATTR_AUTH_RATE	"auth_rate"
#define LIMITS_ATTR_ENTRIES	"entries"
#define LIMITS_ATTR_MAX		"max"
/* also ATTR_REQUEST, ATTR_SERVICE, ATTR_CLIENT_ADDRESS, ATTR_STATUS,
 * ATTR_REASON (mail_proto.h) */

#define LIMITS_STAT_OK		"ok"
#define LIMITS_STAT_ERROR	"error"

#define LIMITS_SERVICE_MAX	64	/* bytes of a service name */
#define LIMITS_ADDRESS_MAX	64	/* bytes of a client address */
#define LIMITS_LIST_MAX		10000	/* entries in one list reply */

/* The figures of one (service, client_address). */
struct limits_counts {
    long count;			/* concurrent connections */
    long conn_rate;		/* connections in this time unit */
    long message_rate;
    long recipient_rate;
    long tls_rate;
    long auth_rate;
};

#endif
