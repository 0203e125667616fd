/* smtpd_auth.c - the AUTH command (RFC 4954): SASL PLAIN, LOGIN and
 * SCRAM-SHA-256, relayed to the auth service (auth_client.h), which
 * alone knows the passwords and keeps the exchange's state.
 *
 * smtpd only frames the exchange: "334 challenge" lines out, base64
 * response lines in, "*" cancels (501 5.7.0). It checks that a response
 * is base64 before passing it on (501 5.5.2), and answers with what auth
 * says: ok 235 2.7.0, fail 535 5.7.8 (after auth's failure delay, which
 * grows with the client address's failures: auth throttles, smtpd
 * passes the address), tempfail or no auth service 454 4.7.0. A failed
 * AUTH is an error reply like any other, so smtpd_hard_error_limit ends
 * a guessing session, and is counted for smtpd_client_auth_rate_limit
 * (smtpd_limits.c), which refuses AUTH (450 4.7.1) to a client that
 * failed that often in the time unit, in any session. SCRAM's server-final message comes as a last
 * challenge that the client answers with an empty line (RFC 4954 4:
 * "additional data with success" the long way).
 *
 * When AUTH is offered (smtpd_auth_offered): smtpd_sasl_auth_enable,
 * after EHLO, and under TLS unless smtpd_tls_auth_only = no; else 538
 * 5.7.11 over cleartext, 503 5.5.1 when not enabled. Once per session
 * (503 5.5.1), never inside a mail transaction (503 5.5.1). */

#include <string.h>
#include <strings.h>

/* base */
#include "base64.h"
#include "mem.h"
#include "msg.h"
#include "str.h"
#include "stream.h"

/* mail */
#include "auth_client.h"
#include "auth_proto.h"
#include "config.h"

/* smtpd */
#include "smtpd.h"

/* A response line: base64 of AUTH_RESPONSE_MAX bytes at most, CRLF. */
#define AUTH_LINE_MAX	(AUTH_RESPONSE_MAX + 2)

static const char *const auth_mechs[] = {
    AUTH_MECH_PLAIN, AUTH_MECH_LOGIN, AUTH_MECH_SCRAM_SHA_256,
};

/* smtpd_auth_offered - may this session AUTH now (and does EHLO say so) */
bool smtpd_auth_offered(const struct smtpd_state *st)
{
    return var_smtpd_sasl_auth_enable && (st->tls || !var_smtpd_tls_auth_only);
}

/* smtpd_auth_mechanisms - the EHLO AUTH line's mechanism list */
const char *smtpd_auth_mechanisms(void)
{
    return "PLAIN LOGIN SCRAM-SHA-256";
}

/* auth_base64_ok - text[0..len) is base64 that decodes (or "=" for an
 * empty initial response, which the caller handles) */
static bool auth_base64_ok(const char *text, size_t len)
{
    struct str *out;
    bool ok;

    if (len == 0)
	return true;
    out = str_new(len);
    ok = base64_decode(text, len, out);
    str_free(&out);
    return ok;
}

/* smtpd_auth_reset - forget the auth connection and identity (STARTTLS,
 * end of session) */
void smtpd_auth_reset(struct smtpd_state *st)
{
    auth_client_close(&st->auth);
    st->authenticated = false;
    mem_free(&st->sasl_username);
    mem_free(&st->sasl_method);
}

/* auth_tempfail - 454 and drop the auth connection (it may be broken) */
static void auth_tempfail(struct smtpd_state *st, const char *mech, const char *why)
{
    msg_warn("%s: SASL %s authentication aborted: %s", st->namaddr, mech, why);
    auth_client_close(&st->auth);
    smtpd_reply(st, 454, "4.7.0", "%s", "Temporary authentication failure");
}

/* auth_read_response - the client's next line: 1 a base64 response in
 * line (CRLF stripped), 0 the exchange ended (reply sent or session
 * over) */
static int auth_read_response(struct smtpd_state *st, const char *mech, struct str *line)
{
    enum stream_status status;

    if (!smtpd_flush(st))
	return 0;
    status = stream_getline(st->client, line, AUTH_LINE_MAX);
    if (status == STREAM_TIMEOUT) {
	smtpd_reply_id(st, SR_TIMEOUT);
	msg_info("timeout after AUTH from %s", st->namaddr);
	st->hangup = true;
	return 0;
    }
    if (status == STREAM_EOF || status == STREAM_ERROR) {
	msg_info("lost connection after AUTH from %s", st->namaddr);
	st->hangup = true;
	return 0;
    }
    if (status == STREAM_TOOLONG) {
	if (stream_skip_line(st->client) != STREAM_OK)
	    st->hangup = true;
	smtpd_reply(st, 500, "5.5.6", "%s", "Authentication Exchange line is too long");
	return 0;
    }
    str_chomp(line);
    if (str_len(line) == 1 && str_cstr(line)[0] == '*') {
	msg_info("%s: SASL %s authentication cancelled by the client", st->namaddr, mech);
	smtpd_reply(st, 501, "5.7.0", "%s", "Authentication aborted");
	return 0;
    }
    if (str_has_nul(line) || !auth_base64_ok(str_cstr(line), str_len(line))) {
	smtpd_reply(st, 501, "5.5.2", "%s", "Cannot decode response");
	return 0;
    }
    return 1;
}

/* smtpd_cmd_auth - AUTH mechanism [initial-response] */
void smtpd_cmd_auth(struct smtpd_state *st, const char *args, size_t len)
{
    struct auth_request req;
    struct auth_reply reply;
    struct str *line;
    const char *mech = NULL, *initial, *err;
    size_t mlen, ilen;
    char *initial_copy = NULL;
    int rc, rounds = 0;

    if (!var_smtpd_sasl_auth_enable) {
	smtpd_reply(st, 503, "5.5.1", "%s", "Error: authentication not enabled");
	return;
    }
    if (!st->tls && var_smtpd_tls_auth_only) {
	smtpd_reply(st, 538, "5.7.11", "%s", "Encryption required for requested authentication mechanism");
	return;
    }
    if (!st->esmtp) {
	smtpd_reply(st, 503, "5.5.1", "%s", "Error: send EHLO first");
	return;
    }
    if (st->authenticated) {
	smtpd_reply(st, 503, "5.5.1", "%s", "Error: already authenticated");
	return;
    }
    if (st->in_mail) {
	smtpd_reply(st, 503, "5.5.1", "%s", "Error: MAIL transaction in progress");
	return;
    }
    if (!smtpd_limits_auth(st))		/* failed AUTHs per time unit */
	return;
    mlen = len;
    if ((initial = memchr(args, ' ', len)) != NULL) {
	mlen = (size_t) (initial - args);
	initial++;
	ilen = len - mlen - 1;
    } else {
	ilen = 0;
    }
    for (size_t i = 0; i < sizeof(auth_mechs) / sizeof(auth_mechs[0]); i++)
	if (strlen(auth_mechs[i]) == mlen && strncasecmp(auth_mechs[i], args, mlen) == 0)
	    mech = auth_mechs[i];
    if (mlen == 0) {
	smtpd_reply(st, 501, "5.5.4", "%s", "Syntax: AUTH mechanism");
	return;
    }
    if (mech == NULL) {
	smtpd_reply(st, 504, "5.5.4", "%s", "Unrecognized authentication type");
	return;
    }
    if (initial != NULL) {
	if (ilen == 1 && initial[0] == '=') {
	    ilen = 0;			/* RFC 4954: "=" is an empty initial response */
	} else if (ilen == 0 || !auth_base64_ok(initial, ilen)) {
	    smtpd_reply(st, 501, "5.5.2", "%s", "Cannot decode response");
	    return;
	}
	initial_copy = mem_strndup(initial, ilen);
    }
    if (st->auth == NULL && (st->auth = auth_client_open(NULL, &err)) == NULL) {
	mem_free(&initial_copy);
	auth_tempfail(st, mech, err);
	return;
    }
    req.service = AUTH_SERVICE_SMTP;
    req.mechanism = mech;
    req.client_address = st->addr;
    req.response = initial_copy ? initial_copy : "";
    rc = auth_client_start(st->auth, &req, &reply, &err);
    mem_free(&initial_copy);
    line = str_new(AUTH_LINE_MAX);
    /* every round is bounded by smtpd_timeout and ipc_timeout; SCRAM
     * needs three, a misbehaving auth gets ten */
    while (rc == 0 && strcmp(reply.status, AUTH_STAT_CONTINUE) == 0 && ++rounds <= 10) {
	smtpd_reply(st, 334, NULL, "%s", reply.challenge ? reply.challenge : "");
	if (auth_read_response(st, mech, line) == 0)
	    goto out;			/* auth starts over at the next AUTH */
	rc = auth_client_continue(st->auth, str_cstr(line), &reply, &err);
    }
    if (rc < 0) {
	auth_tempfail(st, mech, err);
    } else if (strcmp(reply.status, AUTH_STAT_OK) == 0 && reply.user && *reply.user) {
	st->authenticated = true;
	st->sasl_username = mem_strdup(reply.user);
	st->sasl_method = mem_strdup(mech);
	msg_info("%s: sasl_method=%s, sasl_username=%s", st->namaddr, mech, reply.user);
	smtpd_reply(st, 235, "2.7.0", "%s", "Authentication successful");
    } else if (strcmp(reply.status, AUTH_STAT_TEMPFAIL) == 0) {
	msg_warn("%s: SASL %s authentication refused for now: %s", st->namaddr, mech,
		 reply.reason ? reply.reason : "tempfail");
	smtpd_reply(st, 454, "4.7.0", "%s", "Temporary authentication failure");
    } else if (strcmp(reply.status, AUTH_STAT_FAIL) == 0) {
	msg_warn("%s: SASL %s authentication failed", st->namaddr, mech);
	smtpd_limits_authfail(st);
	smtpd_reply(st, 535, "5.7.8", "%s", "Error: authentication failed");
    } else {
	auth_tempfail(st, mech, "unexpected answer from the auth service");
    }
  out:
    str_free(&line);
}
