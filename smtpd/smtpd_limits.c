/* smtpd_limits.c - the client limits of the SMTP server: what smtpd asks
 * the client-limits service (the role of Postfix's anvil; limits_proto.h)
 * and how it answers a client that is over a limit.
 *
 * client-limits counts, smtpd decides: each event is reported for the
 * service (server_service_name()) and the client's address, and the
 * figure that comes back, counted with this event, is compared with the
 * limit parameter; a figure above the limit refuses (Postfix's rule),
 * 0 turns a limit off. An event is reported only when a limit can
 * refuse on its figure (Postfix's anvil does the same): not for clients
 * in smtpd_client_event_limit_exceptions ($mynetworks), never refused,
 * and not while the event's limits are all 0. Each report is a round
 * trip to another process; counting what no limit reads cost 0.4 ms of
 * CPU and 6 context switches per message (docs/architecture.md,
 * decision 54).
 *
 *   connect     at the start of the session, before the greeting, the
 *               TLS handshake of wrapper mode or a name lookup:
 *               smtpd_client_connection_count_limit (concurrent
 *               connections) and smtpd_client_connection_rate_limit;
 *               over: "421 4.7.0 HOST Error: too many connections from
 *               ADDR" and the session ends (in wrapper mode the
 *               connection is closed without a reply: no handshake is
 *               spent on a refused client). Every connect that was
 *               counted is matched by a disconnect when the session
 *               ends, whatever ends it (a crashed process's connects are
 *               released by the service when its connection closes).
 *   message     at MAIL FROM: smtpd_client_message_rate_limit, 450 4.7.1
 *   recipient   at RCPT TO: smtpd_client_recipient_rate_limit, 450 4.7.1
 *   newtls      after each full TLS handshake (STARTTLS and wrapper
 *               mode; a resumed session is no new session):
 *               smtpd_client_new_tls_session_rate_limit; over: 421 4.7.0
 *               (inside TLS) and the session ends. Before STARTTLS a
 *               client already over the limit gets 454 4.7.0 without a
 *               handshake (as Postfix: the handshake is the CPU the limit
 *               protects).
 *   authfail    after each failed AUTH (535); before each AUTH the
 *               failures so far plus this attempt are compared with
 *               smtpd_client_auth_rate_limit: over, 450 4.7.1 "too many
 *               AUTH commands" and no exchange with the auth service.
 *
 * Each refusal is logged once, naming the limit and its value:
 *   warning: Connection count limit exceeded: 51 from [192.0.2.1] for
 *   service smtp (smtpd_client_connection_count_limit = 50)
 * (at connect the client is [ADDR]: its name is looked up only after
 * the check; later lines name it as name[ADDR]).
 *
 * Failing open: when client-limits cannot be reached or errs, the event
 * is not counted and nothing is refused (limits_client.h logs a warning
 * at most once a minute). The -S mode of tests (one session on stdin)
 * consults nothing. */

#include <string.h>

/* base */
#include "msg.h"

/* mail */
#include "cidr_match.h"
#include "config.h"
#include "limits_client.h"
#include "server.h"

/* smtpd */
#include "smtpd.h"

/* smtpd_limits_init - check the exception list at start-up (a bad value
 * is fatal, as for the other network lists) */
void smtpd_limits_init(void)
{
    struct cidr_list *list;
    const char *err;

    if ((list = cidr_list_parse(var_smtpd_client_event_limit_exceptions, &err)) == NULL)
	msg_fatal("smtpd_client_event_limit_exceptions: %s", err);
    cidr_list_free(&list);
}

/* limits_report - report one event of the session's client; true with
 * the figures, false (fail open) if not counted */
static bool limits_report(const char *request, const struct smtpd_state *st,
			  struct limits_counts *counts)
{
    if (server_stdin_mode())
	return false;
    memset(counts, 0, sizeof(*counts));
    return limits_client_call(request, server_service_name(), st->addr, counts) == 0;
}

/* limits_over - is figure over limit for this client? If so, log the
 * refusal (who is named as "from WHO") */
static bool limits_over(const struct smtpd_state *st, const char *who, long figure, long limit,
			const char *what, const char *param)
{
    if (limit <= 0 || figure <= limit || st->limits_exempt)
	return false;
    msg_warn("%s limit exceeded: %ld from %s for service %s (%s = %ld)", what, figure, who,
	     server_service_name(), param, limit);
    return true;
}

/* smtpd_limits_connect - count the connection; false: refused, the
 * client got 421 and the session is to end */
bool smtpd_limits_connect(struct smtpd_state *st)
{
    struct limits_counts c;
    char who[SMTPD_ADDR_MAX + 2];

    st->limits_exempt = limits_client_exempt(var_smtpd_client_event_limit_exceptions, st->addr);
    if (st->limits_exempt || (var_smtpd_client_connection_count_limit <= 0
			      && var_smtpd_client_connection_rate_limit <= 0))
	return true;
    if (!limits_report(LIMITS_REQ_CONNECT, st, &c))
	return true;
    st->limits_connected = true;
    smtpd_join(who, sizeof(who), "[", st->addr, "]", (char *) NULL);
    if (limits_over(st, who, c.count, var_smtpd_client_connection_count_limit,
		    "Connection count", "smtpd_client_connection_count_limit")
	|| limits_over(st, who, c.conn_rate, var_smtpd_client_connection_rate_limit,
		       "Connection rate", "smtpd_client_connection_rate_limit")) {
	/* in wrapper mode the client waits for a TLS handshake, which the
	 * limit saves us: a plaintext reply would be noise to it */
	if (!var_smtpd_tls_wrappermode) {
	    smtpd_reply(st, 421, "4.7.0", "%s Error: too many connections from %s", var_myhostname,
			st->addr);
	    smtpd_flush(st);
	}
	st->hangup = true;
	return false;
    }
    return true;
}

/* smtpd_limits_disconnect - the session ended: release its connect */
void smtpd_limits_disconnect(struct smtpd_state *st)
{
    struct limits_counts c;

    if (!st->limits_connected)
	return;
    st->limits_connected = false;
    (void) limits_report(LIMITS_REQ_DISCONNECT, st, &c);
}

/* smtpd_limits_message - count a MAIL FROM; false: 450 sent */
bool smtpd_limits_message(struct smtpd_state *st)
{
    struct limits_counts c;

    if (var_smtpd_client_message_rate_limit <= 0 || st->limits_exempt)
	return true;
    if (!limits_report(LIMITS_REQ_MESSAGE, st, &c))
	return true;
    if (limits_over(st, st->namaddr, c.message_rate, var_smtpd_client_message_rate_limit,
		    "Message delivery request rate", "smtpd_client_message_rate_limit")) {
	smtpd_reply(st, 450, "4.7.1", "Error: too much mail from %s", st->addr);
	return false;
    }
    return true;
}

/* smtpd_limits_recipient - count a RCPT TO; false: 450 sent */
bool smtpd_limits_recipient(struct smtpd_state *st)
{
    struct limits_counts c;

    if (var_smtpd_client_recipient_rate_limit <= 0 || st->limits_exempt)
	return true;
    if (!limits_report(LIMITS_REQ_RECIPIENT, st, &c))
	return true;
    if (limits_over(st, st->namaddr, c.recipient_rate, var_smtpd_client_recipient_rate_limit,
		    "Recipient address rate", "smtpd_client_recipient_rate_limit")) {
	smtpd_reply(st, 450, "4.7.1", "Error: too many recipients from %s", st->addr);
	return false;
    }
    return true;
}

/* smtpd_limits_starttls - before STARTTLS: is the client already over
 * the new-session limit (nothing counted)? false: 454 sent */
bool smtpd_limits_starttls(struct smtpd_state *st)
{
    struct limits_counts c;

    if (var_smtpd_client_new_tls_session_rate_limit <= 0 || st->limits_exempt)
	return true;
    if (!limits_report(LIMITS_REQ_LOOKUP, st, &c))
	return true;
    if (limits_over(st, st->namaddr, c.tls_rate, var_smtpd_client_new_tls_session_rate_limit,
		    "New TLS session rate", "smtpd_client_new_tls_session_rate_limit")) {
	smtpd_reply(st, 454, "4.7.0", "Error: too many new TLS sessions from %s", st->addr);
	return false;
    }
    return true;
}

/* smtpd_limits_newtls - a full handshake completed (not a resumption):
 * count it; false: 421 sent (inside TLS), the session is to end */
bool smtpd_limits_newtls(struct smtpd_state *st)
{
    struct limits_counts c;

    if (var_smtpd_client_new_tls_session_rate_limit <= 0 || st->limits_exempt)
	return true;
    if (!limits_report(LIMITS_REQ_NEWTLS, st, &c))
	return true;
    if (limits_over(st, st->namaddr, c.tls_rate, var_smtpd_client_new_tls_session_rate_limit,
		    "New TLS session rate", "smtpd_client_new_tls_session_rate_limit")) {
	smtpd_reply(st, 421, "4.7.0", "%s Error: too many new TLS sessions from %s",
		    var_myhostname, st->addr);
	smtpd_flush(st);
	st->hangup = true;
	return false;
    }
    return true;
}

/* smtpd_limits_auth - before an AUTH exchange: would one more failure
 * be over smtpd_client_auth_rate_limit? false: 450 sent */
bool smtpd_limits_auth(struct smtpd_state *st)
{
    struct limits_counts c;

    if (var_smtpd_client_auth_rate_limit <= 0 || st->limits_exempt)
	return true;
    if (!limits_report(LIMITS_REQ_LOOKUP, st, &c))
	return true;
    /* the failures so far and this attempt: the limit is the number of
     * failed AUTHs a client may make per time unit */
    if (limits_over(st, st->namaddr, c.auth_rate + 1, var_smtpd_client_auth_rate_limit,
		    "AUTH failure rate", "smtpd_client_auth_rate_limit")) {
	smtpd_reply(st, 450, "4.7.1", "Error: too many AUTH commands from %s", st->addr);
	return false;
    }
    return true;
}

/* smtpd_limits_authfail - an AUTH failed: count it */
void smtpd_limits_authfail(struct smtpd_state *st)
{
    struct limits_counts c;

    if (var_smtpd_client_auth_rate_limit <= 0 || st->limits_exempt)
	return;
    (void) limits_report(LIMITS_REQ_AUTHFAIL, st, &c);
}
