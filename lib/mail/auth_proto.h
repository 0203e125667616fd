/* auth_proto.h - both halves of the auth protocol (mail_proto.h,
 * conversation 5): a login process (pop3d-login, imapd-login, later
 * smtpd) or a post-login daemon (pop3d, imapd) -> private/auth.
 *
 * The server speaks first: {proto=auth, version=AUTH_VERSION}. Then any
 * number of requests, one reply each, on one connection.
 *
 * A SASL exchange (RFC 4422) over one connection:
 *   client: {request=auth, service, mechanism, client_address, response}
 *   client: {request=continue, response}      (answer to a challenge)
 *   server: {status=continue, challenge}
 *         | {status=ok, user, token}
 *         | {status=fail, reason}
 *         | {status=tempfail, reason}
 *
 *   service         "smtp", "pop3" or "imap" (AUTH_SERVICE_*): what the
 *                   token is good for
 *   mechanism       "PLAIN", "LOGIN" or "SCRAM-SHA-256" (any case)
 *   client_address  the network client's address, for throttling and
 *                   logging ("" when unknown)
 *   response        base64 (RFC 4648, no line breaks); in request=auth
 *                   it is the initial response, "" for none (no
 *                   mechanism here has an empty initial response; a
 *                   protocol's "=" for an empty one is sent as "")
 *   challenge       base64; "" is an empty challenge
 *   user            the authenticated address, as the users table has it
 *   token           AUTH_TOKEN_LEN hex digits: one-time, valid for
 *                   auth_token_lifetime, bound to user and service
 *   reason          fail: ALWAYS the same text (AUTH_FAIL_TEXT) for an
 *                   unknown user, a wrong password, a locked or disabled
 *                   account, a mechanism the stored secret cannot serve
 *                   (SCRAM-SHA-256 without a SCRAM secret) and a
 *                   malformed response; the reply comes after the
 *                   failure delay (auth sleeps on a timer, not the
 *                   client). tempfail: a limit of failed attempts per
 *                   client address or per user is exceeded, or the table
 *                   could not be read: try later (POP3 [SYS/TEMP], SMTP
 *                   454).
 *
 * A request=auth starts a new exchange and abandons one in progress; a
 * request=continue without an exchange in progress, or an unknown
 * mechanism, gets status=fail. A client that cancels (SASL "*") answers
 * its own client and simply starts over with request=auth. SCRAM-SHA-256
 * takes three rounds: client-first -> continue(server-first);
 * client-final -> continue(server-final, "v=..."); "" -> ok. So a
 * protocol without "additional data with success" (POP3, RFC 5034) sends
 * the server-final message as a challenge.
 *
 * Redeeming a token (the post-login daemon learns who the user is from
 * auth, never from the login process):
 *   client: {request=redeem, token, service}
 *   server: {status=ok, user, mail_location, uid, gid, quota}
 *         | {status=fail, reason}
 *   mail_location   the Maildir, an absolute path (a relative one in the
 *                   users table is resolved against virtual_mailbox_base)
 *   uid, gid        numeric ids the mailbox belongs to (the users table's,
 *                   else virtual_mailbox_owner's)
 *   quota           bytes; 0 = no quota
 * A token is redeemed once: the first redeem consumes it whatever the
 * answer; an unknown, expired, replayed or other-service token fails.
 *
 * The decoders point into the list they read (keep it while you use the
 * result). The blocking client calls are in auth_client.h.
 *
 * DIAGNOSTICS: decoders return -1 with *error_r (static text, see
 * proto_attr.h), e.g. "auth request: attribute 2 is \"mechanism\",
 * expected \"service\"". The caller ends the conversation. */
#ifndef POSTHORN_AUTH_PROTO_H
#define POSTHORN_AUTH_PROTO_H

#include <stdbool.h>
#include <stddef.h>

/* base */
#include "ipc.h"
#include "str.h"

/* mail */
#include "proto_attr.h"

/* request names */
#define AUTH_REQ_AUTH		"auth"
#define AUTH_REQ_CONTINUE	"continue"
#define AUTH_REQ_REDEEM		"redeem"

/* status values */
#define AUTH_STAT_OK		"ok"
#define AUTH_STAT_CONTINUE	"continue"
#define AUTH_STAT_FAIL		"fail"
#define AUTH_STAT_TEMPFAIL	"tempfail"

/* services */
#define AUTH_SERVICE_SMTP	"smtp"
#define AUTH_SERVICE_POP3	"pop3"
#define AUTH_SERVICE_IMAP	"imap"

/* mechanisms */
#define AUTH_MECH_PLAIN		"PLAIN"
#define AUTH_MECH_LOGIN		"LOGIN"
#define AUTH_MECH_SCRAM_SHA_256	"SCRAM-SHA-256"

/* the one failure text of status=fail */
#define AUTH_FAIL_TEXT		"authentication failed"

#define AUTH_TOKEN_LEN		32	/* hex digits: 128 random bits */
#define AUTH_RESPONSE_MAX	8192	/* bytes of a base64 response */
#define AUTH_CHALLENGE_MAX	8192	/* bytes of a base64 challenge */

enum auth_kind { AUTH_KIND_AUTH, AUTH_KIND_CONTINUE, AUTH_KIND_REDEEM };

struct auth_request {		/* request=auth */
    const char *service;
    const char *mechanism;
    const char *client_address;
    const char *response;	/* base64; "" = no initial response */
};

struct auth_reply {		/* reply to request=auth or continue */
    const char *status;		/* AUTH_STAT_* */
    const char *challenge;	/* continue: base64 */
    const char *user;		/* ok */
    const char *token;		/* ok */
    const char *reason;		/* fail, tempfail */
};

struct auth_redeem {		/* request=redeem */
    const char *token;
    const char *service;
};

struct auth_redeem_reply {
    const char *status;		/* AUTH_STAT_OK or AUTH_STAT_FAIL */
    const char *user;		/* ok: */
    const char *mail_location;
    long uid;
    long gid;
    long quota;			/* 0: none */
    const char *reason;		/* fail */
};

/* auth_request_kind - which request list is (by its first attribute):
 * AUTH_KIND_*, or -1 with *error_r */
int auth_request_kind(const struct ipc_list *list, const char **error_r);

/* auth_request_encode, auth_request_decode - request=auth */
void auth_request_encode(struct str *out, const struct auth_request *req);
int auth_request_decode(const struct ipc_list *list, struct auth_request *req,
			const char **error_r);

/* auth_continue_encode, auth_continue_decode - request=continue */
void auth_continue_encode(struct str *out, const char *response);
int auth_continue_decode(const struct ipc_list *list, const char **response,
			 const char **error_r);

/* auth_reply_encode, auth_reply_decode - the answer to auth/continue;
 * encode sends only the attributes of reply->status; decode sets the
 * others to NULL */
void auth_reply_encode(struct str *out, const struct auth_reply *reply);
int auth_reply_decode(const struct ipc_list *list, struct auth_reply *reply,
		      const char **error_r);

/* auth_redeem_encode, auth_redeem_decode - request=redeem */
void auth_redeem_encode(struct str *out, const struct auth_redeem *req);
int auth_redeem_decode(const struct ipc_list *list, struct auth_redeem *req,
		       const char **error_r);

/* auth_redeem_reply_encode, auth_redeem_reply_decode - its answer */
void auth_redeem_reply_encode(struct str *out, const struct auth_redeem_reply *reply);
int auth_redeem_reply_decode(const struct ipc_list *list, struct auth_redeem_reply *reply,
			     const char **error_r);

/* auth_service_valid, auth_mechanism_known - names this protocol knows
 * (a mechanism in any case) */
bool auth_service_valid(const char *service);
bool auth_mechanism_known(const char *mechanism);

#endif
