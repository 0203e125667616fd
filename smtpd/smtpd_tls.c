/* smtpd_tls.c - TLS for the SMTP server: STARTTLS (RFC 3207) on 25 and
 * 587, wrapper mode (implicit TLS, RFC 8314) on 465, through lib/tls
 * (tls.h: OpenSSL lives in a plugin loaded here, before the privilege
 * drop, with the keys).
 *
 * smtpd_tls_security_level: none (STARTTLS not offered: 502 5.5.1),
 * may (offered), encrypt (required: 530 5.7.0 before it, smtpd_proto.c);
 * empty means may when a certificate is configured. A TLS server that
 * could not be made (no plugin, unreadable key) is logged at start-up;
 * STARTTLS then gets 454 4.7.0 and a wrapper-mode session is closed.
 *
 * After "220 2.0.0 Ready to start TLS" the session starts over (RFC 3207
 * 4.2): HELO/EHLO, the transaction and AUTH are forgotten, and whatever
 * the client sent behind STARTTLS before the handshake is discarded
 * (tls_stream_server_start drops the stream's buffer; the count is
 * logged): plaintext injected there must never run as a command inside
 * TLS (CVE-2011-0411). The handshake has smtpd_starttls_timeout.
 *
 * Each full handshake (tls_info.resumed false) is a new TLS session for
 * smtpd_client_new_tls_session_rate_limit (smtpd_limits.c); a client
 * over it gets 421 inside TLS, and 454 to its next STARTTLS. */

#include <string.h>

/* base */
#include "mem.h"
#include "msg.h"
#include "str.h"
#include "stream.h"

/* mail */
#include "config.h"

/* tls */
#include "tls.h"

/* smtpd */
#include "smtpd.h"

static enum { LEVEL_NONE, LEVEL_MAY, LEVEL_ENCRYPT } tls_level;
static struct tls_server *tls_srv;	/* NULL: TLS not available */

/* smtpd_tls_init - the level, and the server with its keys */
void smtpd_tls_init(void)
{
    struct tls_server_settings set;
    const char *v = var_smtpd_tls_security_level;
    char *err = NULL;
    bool have_cert;

    memset(&set, 0, sizeof(set));
    tls_server_settings_from_config(&set, "smtpd");
    have_cert = (set.chain_files && *set.chain_files) || (set.cert_file && *set.cert_file)
	|| (set.eccert_file && *set.eccert_file);
    if (*v == 0)
	tls_level = have_cert ? LEVEL_MAY : LEVEL_NONE;
    else if (strcmp(v, "none") == 0)
	tls_level = LEVEL_NONE;
    else if (strcmp(v, "may") == 0)
	tls_level = LEVEL_MAY;
    else if (strcmp(v, "encrypt") == 0)
	tls_level = LEVEL_ENCRYPT;
    else
	msg_fatal("smtpd_tls_security_level: bad value \"%s\" (use none, may or encrypt)", v);
    if (tls_level == LEVEL_NONE && !var_smtpd_tls_wrappermode)
	return;
    if (!have_cert) {
	msg_warn("smtpd_tls_security_level = %s%s but no server certificate is configured "
		 "(smtpd_tls_chain_files or smtpd_tls_cert_file): TLS is not available",
		 *v ? v : "may", var_smtpd_tls_wrappermode ? " (wrapper mode)" : "");
	return;
    }
    if ((tls_srv = tls_server_new(&set, &err)) == NULL) {
	msg_warn("TLS is not available: %s", err ? err : "unknown error");
	mem_free(&err);
    }
}

/* smtpd_tls_offered - STARTTLS in EHLO */
bool smtpd_tls_offered(const struct smtpd_state *st)
{
    return tls_level != LEVEL_NONE && !st->tls && !var_smtpd_tls_wrappermode && tls_srv != NULL;
}

/* smtpd_tls_required - encrypt and not yet TLS */
bool smtpd_tls_required(const struct smtpd_state *st)
{
    return tls_level == LEVEL_ENCRYPT && !st->tls;
}

/* tls_handshake - the handshake on the client stream; false: logged,
 * the session is over */
static bool tls_handshake(struct smtpd_state *st)
{
    struct tls_info info;
    char *err = NULL;
    int timeout_ms = (int) (var_smtpd_timeout > 86400 ? 86400 : var_smtpd_timeout) * 1000;

    stream_set_timeout(st->client, (int) var_smtpd_starttls_timeout * 1000);
    memset(&info, 0, sizeof(info));
    if (tls_stream_server_start(st->client, tls_srv, &info, &err) < 0) {
	msg_info("SSL_accept error from %s: %s", st->namaddr, err ? err : "handshake failed");
	mem_free(&err);
	st->hangup = true;
	return false;
    }
    stream_set_timeout(st->client, timeout_ms);
    st->tls = true;
    tls_info_summary(&info, st->tls_summary, sizeof(st->tls_summary));
    tls_info_log("from", st->namaddr, &info);
    /* a resumed session cost no handshake: only new ones count */
    if (!info.resumed && !smtpd_limits_newtls(st))
	return false;
    return true;
}

/* smtpd_tls_wrapper - wrapper mode: TLS from the first byte */
bool smtpd_tls_wrapper(struct smtpd_state *st)
{
    if (tls_srv == NULL) {
	msg_warn("%s: wrapper mode, but TLS is not available: closing", st->namaddr);
	return false;
    }
    st->where = "CONNECT";
    return tls_handshake(st);
}

/* smtpd_cmd_starttls - STARTTLS */
void smtpd_cmd_starttls(struct smtpd_state *st, const char *args, size_t len)
{
    size_t pending;

    (void) args;
    if (len) {
	smtpd_reply(st, 501, "5.5.4", "%s", "Syntax: STARTTLS");
	return;
    }
    if (st->tls) {
	smtpd_reply(st, 503, "5.5.1", "%s", "Error: TLS already active");
	return;
    }
    if (tls_level == LEVEL_NONE && !var_smtpd_tls_wrappermode) {
	smtpd_reply_id(st, SR_NOT_IMPLEMENTED);
	return;
    }
    if (tls_srv == NULL) {
	smtpd_reply(st, 454, "4.7.0", "%s", "TLS not available due to local problem");
	return;
    }
    if (!smtpd_limits_starttls(st))
	return;
    smtpd_reply(st, 220, "2.0.0", "%s", "Ready to start TLS");
    if (!smtpd_flush(st))
	return;
    /* RFC 3207 4.2 and CVE-2011-0411: nothing the client sent before the
     * handshake may run as a command inside TLS */
    if ((pending = stream_buffered(st->client)) > 0)
	msg_info("improper command pipelining after STARTTLS from %s: %zu bytes discarded",
		 st->namaddr, pending);
    /* the session starts over: no HELO, no transaction, no AUTH */
    smtpd_reset(st);
    mem_free(&st->helo);
    st->esmtp = false;
    st->ext = 0;
    smtpd_auth_reset(st);
    tls_handshake(st);
}

/* smtpd_tls_end - close_notify (best effort: a client that stopped
 * reading does not hold the process for another smtpd_timeout) */
void smtpd_tls_end(struct smtpd_state *st)
{
    if (st->tls && st->client) {
	stream_set_timeout(st->client, 1000);
	tls_stream_close_notify(st->client);
    }
}
