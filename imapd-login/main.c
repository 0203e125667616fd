/* main.c - imapd-login: the pre-authentication half of the IMAP server.
 *
 * One MULTI process on the imap port serves many clients at once on the
 * event loop (login_front.h), as login_user chrooted to
 * $queue_directory/login, like pop3d-login. It speaks the
 * not-authenticated state of RFC 3501: the greeting with CAPABILITY,
 * CAPABILITY, NOOP, LOGOUT, ID (RFC 2971), LOGIN (astrings: atom,
 * quoted or literal, synchronising or LITERAL+), AUTHENTICATE with
 * SASL-IR (RFC 4959) and "+ " continuations ("*" cancels). Commands are
 * parsed by imap_parse.h. When auth accepts a login the client is handed
 * to imapd with the token and the command's tag (login_proto.h
 * login_tag): imapd redeems the token and sends the tagged OK, so the
 * client sees "TAG OK [CAPABILITY ...] Logged in" from the process that
 * serves its session.
 *
 * TLS (issue 13): STARTTLS (RFC 3501 6.2.1, RFC 2595) when a
 * certificate is configured (imapd_tls_*), or TLS from the first byte
 * with imapd_tls_wrappermode (IMAPS, port 993). LOGIN and AUTHENTICATE
 * need TLS unless the client's address is in
 * imapd_cleartext_login_networks: until then CAPABILITY says
 * LOGINDISABLED and lists no AUTH= mechanism, and both commands get
 * NO [PRIVACYREQUIRED] (RFC 5530). After a TLS client's login this
 * process relays the session for imapd (login_front.h).
 *
 * Client limits (issue 14, login_client_*_limit): a client over the
 * connection count or rate gets "* BYE [UNAVAILABLE] Too many
 * connections from your address" instead of the greeting; over the new
 * TLS session rate "* BYE [UNAVAILABLE] Too many TLS sessions ..." after
 * the handshake; over the failed-login rate, at its next LOGIN or
 * AUTHENTICATE, "TAG NO [UNAVAILABLE] Too many failed logins" and a
 * BYE; each then closed (the engine checks, login_front.h). */

/* system */
#include <string.h>
#include <strings.h>

/* base */
#include "base64.h"
#include "conn.h"
#include "mem.h"
#include "msg.h"
#include "str.h"

/* mail */
#include "auth_proto.h"
#include "config.h"
#include "imap_parse.h"
#include "login_front.h"
#include "login_proto.h"

#define IL_CAPS		"IMAP4rev1 SASL-IR LITERAL+ ID ENABLE IDLE"
#define IL_AUTH_CAPS	"AUTH=PLAIN AUTH=LOGIN AUTH=SCRAM-SHA-256"
#define IL_ID_PAIRS	30		/* RFC 2971 */

/* One client. */
struct imap_login {
    struct login_client *lc;
    struct conn *c;
    struct imap_parser *p;
    bool in_command;		/* lines of one command (after a literal) */
    uint64_t literal_left;	/* bytes of the pending literal to feed */
    uint64_t skip_left;		/* bytes of a refused literal to discard */
    bool skip_line;		/* then the rest of that command's line */
    char tag[LOGIN_TAG_MAX + 1];	/* of the exchange running */
};

/* il_caps - the capability list before login, for this client now */
static const char *il_caps(struct login_client *lc)
{
    static char buf[256];
    bool clear = login_cleartext_ok(lc);

    fmt_buf_or_panic(buf, sizeof(buf), "%s%s%s%s", IL_CAPS,
		     login_tls_offer(lc) ? " STARTTLS" : "",
		     clear ? " " IL_AUTH_CAPS : "",
		     var_imapd_login_disabled || !clear ? " LOGINDISABLED" : "");
    return buf;
}

/* il_tagged - "TAG STATUS text" */
static void il_tagged(struct imap_login *il, const char *tag, const char *status, const char *text)
{
    conn_printf(il->c, "%s %s %s\r\n", tag ? tag : "*", status, text);
}

/* il_privacy_required - no password before TLS (unless allowed) */
static bool il_privacy_required(struct imap_login *il, const char *tag)
{
    if (login_cleartext_ok(il->lc))
	return false;
    il_tagged(il, tag, "NO", login_tls_offer(il->lc)
	      ? "[PRIVACYREQUIRED] Authentication disallowed on non-secure connections, "
	      "use STARTTLS first"
	      : "[PRIVACYREQUIRED] Authentication disallowed on non-secure connections");
    return true;
}

/* il_reset - ready for the next command */
static void il_reset(struct imap_login *il)
{
    imap_parser_reset(il->p);
    il->in_command = false;
    il->literal_left = 0;
}

/* cmd_id - ID NIL | ID (field value ...) (RFC 2971) */
static void cmd_id(struct imap_login *il, const char *tag, const struct imap_arg *args, size_t n)
{
    const struct imap_arg *list;
    size_t count;

    if (n != 1) {
	il_tagged(il, tag, "BAD", "ID takes one argument: NIL or a list");
	return;
    }
    if (args[0].type != IMAP_ARG_NIL) {
	if (!imap_arg_list(&args[0], &list, &count) || count % 2 != 0
	    || count > 2 * IL_ID_PAIRS) {
	    il_tagged(il, tag, "BAD", "ID takes NIL or a list of field and value pairs");
	    return;
	}
	for (size_t i = 0; i < count; i++) {
	    const char *s;
	    size_t len;

	    if (i % 2 == 0 ? !imap_arg_string(&list[i], &s, &len) || len > 30
		: !imap_arg_nstring(&list[i], &s, &len) || (s && len > 1024)) {
		il_tagged(il, tag, "BAD", "ID: bad field or value");
		return;
	    }
	}
    }
    conn_puts(il->c, "* ID (\"name\" \"posthorn\")\r\n");
    il_tagged(il, tag, "OK", "ID completed");
}

/* il_tag_ok - the tag can travel in the hand-over */
static bool il_tag_ok(struct imap_login *il, const char *tag)
{
    if (!str_try_copy_out(il->tag, sizeof(il->tag), tag)) {
	il_tagged(il, tag, "BAD", "Tag too long");
	return false;
    }
    return true;
}

/* cmd_login - LOGIN user password: a PLAIN exchange on the client's
 * behalf */
static void cmd_login(struct imap_login *il, const char *tag, const struct imap_arg *args, size_t n)
{
    const char *user, *pass;
    size_t ulen, plen;
    struct str *plain, *b64;

    if (n != 2 || !imap_arg_astring(&args[0], &user, &ulen)
	|| !imap_arg_astring(&args[1], &pass, &plen)) {
	il_tagged(il, tag, "BAD", "Syntax: LOGIN user password");
	return;
    }
    if (il_privacy_required(il, tag))
	return;
    if (var_imapd_login_disabled) {
	il_tagged(il, tag, "NO", "[PRIVACYREQUIRED] LOGIN is disabled, use AUTHENTICATE");
	return;
    }
    if (memchr(user, 0, ulen) || memchr(pass, 0, plen)) {
	il_tagged(il, tag, "NO", "[AUTHENTICATIONFAILED] Authentication failed");
	return;
    }
    if (!il_tag_ok(il, tag))
	return;
    plain = str_new(ulen + plen + 2);
    b64 = str_new(AUTH_RESPONSE_MAX);
    if (!str_try_appendc(plain, 0) || !str_try_append(plain, user, ulen)
	|| !str_try_appendc(plain, 0) || !str_try_append(plain, pass, plen)
	|| !base64_encode(str_cstr(plain), str_len(plain), b64))
	il_tagged(il, tag, "BAD", "User name or password too long");
    else
	login_sasl_start(il->lc, AUTH_MECH_PLAIN, str_cstr(b64), il->tag);
    explicit_bzero(plain->data, plain->len);
    explicit_bzero(b64->data, b64->len);
    str_free(&plain);
    str_free(&b64);
}

/* cmd_authenticate - AUTHENTICATE mechanism [initial-response] */
static void cmd_authenticate(struct imap_login *il, const char *tag, const struct imap_arg *args,
			     size_t n)
{
    const char *mech, *initial = "";
    char upper[32];
    size_t i;

    if (n < 1 || n > 2 || !imap_arg_atom(&args[0], &mech)
	|| (n == 2 && !imap_arg_atom(&args[1], &initial))) {
	il_tagged(il, tag, "BAD", "Syntax: AUTHENTICATE mechanism [initial-response]");
	return;
    }
    if (il_privacy_required(il, tag))
	return;
    for (i = 0; mech[i] && i < sizeof(upper) - 1; i++)
	upper[i] = (char) (mech[i] >= 'a' && mech[i] <= 'z' ? mech[i] - 'a' + 'A' : mech[i]);
    upper[i] = 0;
    if (mech[i] || !auth_mechanism_known(upper)) {
	il_tagged(il, tag, "NO", "Unsupported authentication mechanism");
	return;
    }
    if (n == 2) {
	if (strcmp(initial, "=") == 0)
	    initial = "";		/* an empty initial response */
	else if (strlen(initial) > AUTH_RESPONSE_MAX) {
	    il_tagged(il, tag, "BAD", "Initial response too long");
	    return;
	}
    }
    if (!il_tag_ok(il, tag))
	return;
    login_sasl_start(il->lc, upper, initial, il->tag);
}

/* il_command - a whole command */
static void il_command(struct imap_login *il)
{
    const char *tag = imap_parser_tag(il->p);
    const char *name = imap_parser_name(il->p);
    size_t n;
    const struct imap_arg *args = imap_parser_args(il->p, &n);
    static const char *const after_login[] = {
	"SELECT", "EXAMINE", "CREATE", "DELETE", "RENAME", "SUBSCRIBE", "UNSUBSCRIBE",
	"LIST", "LSUB", "STATUS", "APPEND", "CHECK", "CLOSE", "EXPUNGE", "SEARCH",
	"FETCH", "STORE", "COPY", "MOVE", "UID", "IDLE", "ENABLE", "NAMESPACE",
	"UNSELECT", "GETQUOTA", "GETQUOTAROOT", NULL,
    };

    if (strcmp(name, "CAPABILITY") == 0) {
	if (n != 0) {
	    il_tagged(il, tag, "BAD", "CAPABILITY takes no arguments");
	    return;
	}
	conn_printf(il->c, "* CAPABILITY %s\r\n", il_caps(il->lc));
	il_tagged(il, tag, "OK", "CAPABILITY completed");
    } else if (strcmp(name, "NOOP") == 0) {
	if (n != 0) {
	    il_tagged(il, tag, "BAD", "NOOP takes no arguments");
	    return;
	}
	il_tagged(il, tag, "OK", "NOOP completed");
    } else if (strcmp(name, "LOGOUT") == 0) {
	if (n != 0) {
	    il_tagged(il, tag, "BAD", "LOGOUT takes no arguments");
	    return;
	}
	conn_puts(il->c, "* BYE Logging out\r\n");
	il_tagged(il, tag, "OK", "LOGOUT completed");
	login_client_quit(il->lc);
    } else if (strcmp(name, "ID") == 0) {
	cmd_id(il, tag, args, n);
    } else if (strcmp(name, "LOGIN") == 0) {
	cmd_login(il, tag, args, n);
    } else if (strcmp(name, "AUTHENTICATE") == 0) {
	cmd_authenticate(il, tag, args, n);
    } else if (strcmp(name, "STARTTLS") == 0) {
	if (n != 0)
	    il_tagged(il, tag, "BAD", "STARTTLS takes no arguments");
	else if (login_client_tls(il->lc))
	    il_tagged(il, tag, "BAD", "TLS is already active");
	else if (!login_tls_offer(il->lc))
	    il_tagged(il, tag, "BAD", "STARTTLS is not available");
	else {
	    il_tagged(il, tag, "OK", "Begin TLS negotiation now");
	    login_starttls(il->lc);
	}
    } else {
	for (size_t i = 0; after_login[i]; i++)
	    if (strcmp(name, after_login[i]) == 0) {
		il_tagged(il, tag, "BAD", "Log in first (LOGIN or AUTHENTICATE)");
		return;
	    }
	il_tagged(il, tag, "BAD", "Unknown command");
    }
}

/* il_error - a command the parser refused */
static void il_error(struct imap_login *il)
{
    il_tagged(il, imap_parser_tag(il->p), "BAD", imap_parser_error(il->p));
    il->skip_left = imap_parser_skip(il->p);
    il_reset(il);
}

/* il_input - lines and literal bytes as they come; returns after each
 * whole command (the engine offers the rest again, unless a login
 * started) */
static void il_input(struct login_client *lc, void *ctx)
{
    struct imap_login *il = ctx;
    const char *line;
    size_t len;

    for (int steps = 0; steps < 1000; steps++) {
	struct conn *c = il->c;
	size_t avail = conn_input_avail(c);

	if (il->skip_left > 0) {
	    size_t k = avail < il->skip_left ? avail : (size_t) il->skip_left;

	    conn_input_consume(c, k);
	    il->skip_left -= k;
	    if (il->skip_left > 0)
		return;
	    il->skip_line = true;
	    continue;
	}
	if (il->skip_line) {
	    enum conn_read_status r = login_read_continuation(lc, &line, &len);

	    if (r != CONN_LINE && r != CONN_TOOLONG)
		return;
	    il->skip_line = false;
	    continue;
	}
	if (il->in_command && il->literal_left > 0) {
	    size_t k = avail < il->literal_left ? avail : (size_t) il->literal_left;

	    if (k == 0)
		return;
	    il->literal_left = imap_parser_feed_literal(il->p, conn_input_peek(c), k);
	    conn_input_consume(c, k);
	    if (il->literal_left > 0)
		return;
	    continue;
	}
	switch (il->in_command ? login_read_continuation(lc, &line, &len)
		: login_read_line(lc, &line, &len)) {
	case CONN_LINE:
	    break;
	case CONN_TOOLONG:
	    conn_puts(c, "* BAD Command line too long\r\n");
	    il_reset(il);
	    return;
	default:
	    return;
	}
	switch (imap_parser_feed_line(il->p, line, len)) {
	case IMAP_PARSE_DONE:
	    il_command(il);
	    il_reset(il);
	    return;
	case IMAP_PARSE_ERROR:
	    il_error(il);
	    return;
	case IMAP_PARSE_LITERAL:{
		const struct imap_literal_info *li = imap_parser_literal(il->p);

		il->in_command = true;
		if (!li->mem_ok || li->size > (uint64_t) var_imapd_login_literal_limit) {
		    il->skip_left = imap_parser_literal_refuse(il->p);
		    il_tagged(il, imap_parser_tag(il->p), "BAD", "Literal too large");
		    il_reset(il);
		    return;
		}
		if (li->sync)
		    conn_puts(c, "+ Ready for literal data\r\n");
		il->literal_left = li->size;
		if (il->literal_left == 0)
		    (void) imap_parser_feed_literal(il->p, "", 0);
		continue;
	    }
	}
    }
}

/* il_new - a client: greet it */
static void *il_new(struct login_client *lc)
{
    struct imap_login *il = mem_zalloc(sizeof(*il));
    struct imap_parse_limits lim = {
	.command_max = (size_t) var_imapd_login_line_limit + 2 * (size_t) var_imapd_login_literal_limit,
	.literal_mem_max = (uint64_t) var_imapd_login_literal_limit,
	.literal_max = (uint64_t) var_imapd_login_literal_limit,
	.depth_max = 4,
	.args_max = 2 * IL_ID_PAIRS + 8,
    };

    il->lc = lc;
    il->c = login_client_conn(lc);
    il->p = imap_parser_new(&lim);
    conn_printf(il->c, "* OK [CAPABILITY %s] posthorn IMAP ready\r\n", il_caps(lc));
    return il;
}

/* il_challenge - "+ challenge" */
static void il_challenge(struct login_client *lc, void *ctx, const char *challenge)
{
    struct imap_login *il = ctx;

    (void) lc;
    conn_printf(il->c, "+ %s\r\n", challenge);
}

/* il_result - an exchange ended without a login */
static void il_result(struct login_client *lc, void *ctx, enum login_auth_result r)
{
    struct imap_login *il = ctx;

    switch (r) {
    case LOGIN_AUTH_FAIL:
	il_tagged(il, il->tag, "NO", "[AUTHENTICATIONFAILED] Authentication failed");
	if (login_failures_exhausted(lc))
	    conn_puts(il->c, "* BYE Too many failed logins\r\n");
	return;
    case LOGIN_AUTH_TEMPFAIL:
	il_tagged(il, il->tag, "NO", "[UNAVAILABLE] Too many failed logins, try again later");
	return;
    case LOGIN_AUTH_UNAVAILABLE:
	il_tagged(il, il->tag, "NO", "[UNAVAILABLE] Authentication service unavailable, try again later");
	return;
    case LOGIN_AUTH_HANDOVER:
	il_tagged(il, il->tag, "NO", "[UNAVAILABLE] Mail service unavailable, try again later");
	return;
    case LOGIN_AUTH_CANCELLED:
	il_tagged(il, il->tag, "BAD", "Authentication cancelled");
	return;
    case LOGIN_AUTH_TOOLONG:
	il_tagged(il, il->tag, "BAD", "Authentication response too long");
	return;
    case LOGIN_AUTH_ROUNDS:
	il_tagged(il, il->tag, "BAD", "Too many authentication rounds");
	login_client_quit(lc);
	return;
    case LOGIN_AUTH_LIMIT:
	il_tagged(il, il->tag, "NO", "[UNAVAILABLE] Too many failed logins");
	conn_puts(il->c, "* BYE [UNAVAILABLE] Too many failed logins from your address\r\n");
	return;				/* the engine closes */
    }
}

/* il_free - the client is gone */
static void il_free(struct login_client *lc, void *ctx)
{
    struct imap_login *il = ctx;

    (void) lc;
    imap_parser_free(&il->p);
    mem_free(&il);
}

int main(int argc, char **argv)
{
    static const struct login_protocol imap = {
	.name = "imapd-login",
	.auth_service = AUTH_SERVICE_IMAP,
	.handover_param = "imapd_login_service",
	.handover_service = &var_imapd_login_service,
	.line_limit = &var_imapd_login_line_limit,
	.command_limit = &var_imapd_login_command_limit,
	.failure_limit = &var_imapd_login_failure_limit,
	.login_timeout = &var_imapd_login_timeout,
	.client_new = il_new,
	.input = il_input,
	.sasl_challenge = il_challenge,
	.auth_result = il_result,
	.client_free = il_free,
	.reply_too_many_commands = "* BYE Too many commands\r\n",
	.reply_timeout = "* BYE Autologout; idle for too long\r\n",
	.reply_busy = "* BYE [UNAVAILABLE] Too many connections, try again later\r\n",
	.reply_too_many_connections = "* BYE [UNAVAILABLE] Too many connections from your address\r\n",
	.reply_too_many_tls_sessions = "* BYE [UNAVAILABLE] Too many TLS sessions from your address\r\n",
	.tls_prefix = "imapd",
	.tls_wrappermode = &var_imapd_tls_wrappermode,
	.cleartext_networks = &var_imapd_cleartext_login_networks,
	.tls_started = NULL,
    };

    return login_front_main(argc, argv, &imap);
}
